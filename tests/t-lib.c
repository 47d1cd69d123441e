/*
 * t-lib.c - ending an attempt the way an ender does, without codex:
 * phn_state_update(running), then the terminal state, phn_current_note,
 * phn_sched_attempt_ended.  0, or 1 with a warning.
 */
#include <sys/stat.h>

#include <stdlib.h>
#include <time.h>

#include "t-lib.h"

static void
add(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add(o, k, v);
}

int
t_finish(const struct phn_paths *p, const char *dir, const struct t_end *e)
{
	struct phn_attempt a;
	struct json_object *f, *st;
	char iso[PHN_ISO_LEN], *h;
	int r;

	if (phn_attempt_parse(p, dir, &a) == -1) {
		phn_warn("%s: not an attempt directory", dir);
		return 1;
	}
	phn_iso(phn_now(), iso);
	f = json_object_new_object();
	add(f, "started_at", json_object_new_string(iso));
	add(f, "last_heartbeat_at", json_object_new_string(iso));
	if ((r = phn_state_update(a.dir, "running", f)) != 1 && !e->quiet)
		phn_warn("%s: not started (%d)", a.dir, r);
	json_object_put(f);
	if (e->work > 0) {
		struct timespec ts = { (time_t)e->work,
		    (long)((e->work - (time_t)e->work) * 1e9) };
		nanosleep(&ts, NULL);
	}
	if (e->home) {
		h = phn_path_join(a.dir, "codex_home");
		mkdir(h, 0700);
		free(h);
	}
	f = json_object_new_object();
	if (e->thread)
		add(f, "codex_thread_id", json_object_new_string(e->thread));
	if (!e->running) {
		if (e->kind)
			add(f, "failure_kind", json_object_new_string(e->kind));
		if (e->fault)
			add(f, "harness_fault", json_object_new_boolean(1));
		if (e->ago >= 0) {
			phn_iso(phn_now() - e->ago, iso);
			add(f, "ended_at", json_object_new_string(iso));
		}
	}
	if ((!e->running || e->thread) && phn_state_update(a.dir, e->running ?
	    NULL : e->status ? e->status : "succeeded", f) == -1)
		phn_warn("%s: unable to end:", a.dir);
	json_object_put(f);
	st = phn_state_read(a.dir);
	phn_current_note(p, &a, st);
	json_object_put(st);
	if (!e->running)
		phn_sched_attempt_ended(p, &a);
	phn_attempt_free(&a);
	return 0;
}
