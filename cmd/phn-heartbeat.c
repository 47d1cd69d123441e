/*
 * phn-heartbeat - liveness of attempts: beat for one, list the orphans,
 * reap them.
 *
 * phn-heartbeat ATTEMPT [TEXT]: a heartbeat (and current_item = TEXT) in
 * the attempt's state.json, for wrapper scripts outside the agent's
 * sandbox; ATTEMPT may lie in any store (found from its path).  --stale: every attempt whose spawner is gone (spawn.lock free
 * on this host, or a heartbeat older than heartbeat_stale_after_seconds)
 * or whose claim lease expired, one path per line; exit 1 if any.
 * --reap: end each of them (kill its codex process group if it is still
 * the same process, failed with kind orphaned or claim_expired, the step
 * runnable again), printing each reaped path.  Stuck agents (spawner
 * alive, no codex event for stuck_after_seconds) are never reaped: they
 * go to stderr (or, with --json, out with "fault": "stuck").
 *
 * --remediate: one pass of auto-remediation (remedy.c, as the harness
 * config's defaults.scoreboard.auto_remediation says): one JSON line per
 * action; --dry-run says what it would do; --follow repeats the pass
 * every --interval seconds (default heartbeat_interval_seconds) until
 * SIGTERM, SIGINT or SIGHUP (phn tick runs it so while it waits).
 *
 * Invariant: a reap happens only with the attempt's spawn.lock held by
 * this process, after re-checking the state (phn_attempt_reap_locked), so
 * a live spawner is never touched.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "phn.h"

static int Jflag, zflag, kflag;
static struct phn_paths P;
static int found, failed;

static const char usage[] =
    "usage: phn-heartbeat [-r root] [--runs-root dir] [--runners-root dir]\n"
    "                     attempt_dir [text]\n"
    "       phn-heartbeat -l [-0J] [-b batch] [-r root] [--runs-root dir]\n"
    "                     [--runners-root dir]\n"
    "       phn-heartbeat -k [-0J] [-b batch] [-r root] [--runs-root dir]\n"
    "                     [--runners-root dir]\n"
    "       phn-heartbeat --remediate [-D] [-f [-I seconds]] [-b batch]\n"
    "                     [-r root] [--runs-root dir] [--runners-root dir]\n"
    "       phn-heartbeat -k [-r root] [--runs-root dir] [--runners-root dir]\n"
    "                     attempt_dir\n";

/* A beat for the attempt dir, in whichever store it lies (phn_attempt_locate). */
static int
beat(const char *dir, const char *text)
{
	struct phn_attempt a;
	struct phn_paths Q;
	struct phn_errs e = { 0 };
	struct json_object *st, *f;
	char iso[PHN_ISO_LEN], *d;
	int r;

	if ((d = phn_attempt_locate(&P, dir, &Q, &e)) == NULL)
		phn_errs_die(&e);
	r = phn_attempt_parse(Q.runs ? &Q : &P, d, &a);
	free(d);
	phn_paths_free(&Q);
	if (r == -1)
		phn_die(PHN_EXIT_PERM, "%s: not an attempt directory", dir);
	if ((st = phn_state_read(a.dir)) == NULL)
		phn_die(errno == ENOENT ? PHN_EXIT_PERM : PHN_EXIT_TEMP,
		    "%s: no readable state.json:", a.dir);
	json_object_put(st);
	f = json_object_new_object();
	phn_iso(phn_now(), iso);
	json_object_object_add(f, "last_heartbeat_at", json_object_new_string(iso));
	if (text != NULL)
		json_object_object_add(f, "current_item",
		    json_object_new_string(text));
	r = phn_state_update(a.dir, NULL, f);
	json_object_put(f);
	if (r == -1)
		phn_die(PHN_EXIT_TEMP, "%s: unable to update state.json:", a.dir);
	if (r == 0) {
		st = phn_state_read(a.dir);
		phn_warn("%s: the attempt has ended (%s); beat ignored", a.dir,
		    phn_jstr(st, "status") ? phn_jstr(st, "status") : "?");
		json_object_put(st);
	}
	phn_attempt_free(&a);
	return r == 1 ? PHN_EXIT_OK : PHN_EXIT_NO;
}

/*
 * -k ATTEMPT: reap one attempt whose spawner the caller saw die, at once
 * (liveness.c); in whichever store it lies.
 */
static int
reap_one(const char *dir)
{
	struct phn_attempt a;
	struct phn_paths Q;
	struct phn_errs e = { 0 };
	const char *why = "";
	char *d;
	int r;

	if ((d = phn_attempt_locate(&P, dir, &Q, &e)) == NULL)
		phn_errs_die(&e);
	r = phn_attempt_parse(Q.runs ? &Q : &P, d, &a);
	free(d);
	if (r == -1)
		phn_die(PHN_EXIT_PERM, "%s: not an attempt directory", dir);
	r = phn_attempt_reap_dead_spawner(Q.runs ? &Q : &P, &a, &why);
	phn_paths_free(&Q);
	if (r == -1)
		phn_die(PHN_EXIT_TEMP, "%s: unable to reap:", a.dir);
	if (r == 1)
		printf("%s%c", a.rel, zflag ? '\0' : '\n');
	else
		phn_warn("%s: not reaped: %s", a.dir, why);
	phn_attempt_free(&a);
	return r == 1 ? PHN_EXIT_OK : PHN_EXIT_NO;
}

static const char *
fault_name(int fault)
{
	return fault == PHN_FAULT_LEASE ? "claim_expired" :
	    fault == PHN_FAULT_ORPHAN ? "orphaned" : "stuck";
}

static void
report(const struct phn_attempt *a, struct json_object *st, const char *fault,
    double now, int reaped)
{
	struct json_object *o, *v;
	double t;

	if (!Jflag) {
		printf("%s%c", a->dir, zflag ? '\0' : '\n');
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "attempt_dir", json_object_new_string(a->dir));
	json_object_object_add(o, "batch_id", json_object_new_string(a->batch));
	json_object_object_add(o, "job_id", json_object_new_string(a->job));
	json_object_object_add(o, "step_id", json_object_new_string(a->step));
	json_object_object_add(o, "run_id", json_object_new_string(a->run_id));
	json_object_object_add(o, "status", phn_jstr(st, "status") ?
	    json_object_new_string(phn_jstr(st, "status")) : NULL);
	json_object_object_add(o, "fault", json_object_new_string(fault));
	if (phn_iso_parse(phn_jstr(st, "last_heartbeat_at"), &t) == 0 ||
	    phn_iso_parse(phn_jstr(st, "claimed_at"), &t) == 0)
		json_object_object_add(o, "heartbeat_age_seconds",
		    json_object_new_int64((int64_t)(now - t)));
	if (phn_iso_parse(phn_jstr(st, "last_event_at"), &t) == 0)
		json_object_object_add(o, "event_age_seconds",
		    json_object_new_int64((int64_t)(now - t)));
	json_object_object_get_ex(st, "spawner_pid", &v);
	json_object_object_add(o, "spawner_pid", json_object_get(v));
	json_object_object_add(o, "host", phn_jstr(st, "host") ?
	    json_object_new_string(phn_jstr(st, "host")) : NULL);
	if (kflag)
		json_object_object_add(o, "reaped",
		    json_object_new_boolean(reaped));
	phn_json_emit(stdout, o);
	json_object_put(o);
}

static void
one(const char *dir, double lease, double stale, double stuck)
{
	struct phn_attempt a;
	struct json_object *st = phn_state_read(dir);
	const char *kind;
	double now = phn_now(), t;
	int fault, r;

	if (st == NULL || phn_status_terminal(phn_jstr(st, "status"))) {
		json_object_put(st);
		return;
	}
	fault = phn_attempt_judge(&P, dir, st, now, lease, stale, stuck);
	if (fault == PHN_FAULT_NONE || phn_attempt_parse(&P, dir, &a) == -1) {
		json_object_put(st);
		return;
	}
	if (fault == PHN_FAULT_STUCK) {
		if (Jflag)
			report(&a, st, "stuck", now, 0);
		else if (phn_iso_parse(phn_jstr(st, "last_event_at"), &t) == 0 ||
		    phn_iso_parse(phn_jstr(st, "started_at"), &t) == 0)
			phn_warn("%s: stuck: its spawner is alive but no codex "
			    "event came for %.0f s (not reaped; phn-cancel it if "
			    "it is hung)", a.dir, now - t);
	} else if (!kflag) {
		found = 1;
		report(&a, st, fault_name(fault), now, 0);
	} else {
		r = phn_attempt_reap_locked(&P, &a, lease, stale, &kind);
		if (r == -1) {
			phn_warn("%s: unable to reap:", a.dir);
			failed = 1;
		} else if (r == 1)
			report(&a, st, kind, now, 1);
	}
	phn_attempt_free(&a);
	json_object_put(st);
}

/*
 * A batch that phn-claim manages (it has _sched/) keeps _active/, one
 * entry JOB@STEP@ATTEMPT per queued or running attempt, which
 * phn-claim --rescan rebuilds from the attempts: walking it costs
 * O(active attempts), not O(attempts).  -1: no such index, scan all.
 */
static int
scan_active(const char *batch, double lease, double stale, double stuck)
{
	char *d = phn_batch_path(&P, batch, "_sched"), **v, *part[3], *ad;
	size_t n, i;

	if (access(d, F_OK) == -1) {
		free(d);
		return -1;
	}
	free(d);
	d = phn_batch_path(&P, batch, "_active");
	v = phn_dir_list(d, &n);
	free(d);
	if (v == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (phn_entry_split(v[i], part, 3) == -1)
			continue;
		ad = phn_attempt_path(&P, batch, part[0], part[1], part[2], NULL);
		if (access(ad, F_OK) == 0)
			one(ad, lease, stale, stuck);
		free(ad);
		free(part[0]);
	}
	phn_dir_list_free(v, n);
	return 0;
}

/* one() with a batch's limits (struct phn_limits *arg). */
static void
one_limits(const char *dir, void *arg)
{
	const struct phn_limits *l = arg;

	one(dir, l->lease, l->stale, l->stuck);
}

static void
scan_batch(const char *batch, const struct phn_config *cfg)
{
	struct json_object *bm;
	struct phn_limits lim;
	char msg[512];

	if ((bm = phn_batch_meta(&P, batch, msg, sizeof(msg))) == NULL) {
		phn_warn("%s", msg);
		failed = 1;
		return;
	}
	phn_limits_init(&lim, cfg->doc, phn_json_get(bm, "effective_defaults"));
	json_object_put(bm);
	if (scan_active(batch, lim.lease, lim.stale, lim.stuck) == 0)
		return;
	phn_batch_attempts(&P, batch, one_limits, &lim);
}

static int
scan(const char *batch)
{
	struct phn_config C;
	struct phn_errs e = { 0 };
	char **v;
	size_t n, i;

	if (phn_config_read(&P, 0, &C, &e) == -1)
		phn_errs_die(&e);
	if (batch != NULL) {
		if (phn_sched_step_check(&P, batch, NULL, NULL, &e) == -1)
			phn_errs_die(&e);
		scan_batch(batch, &C);
	} else {
		if ((v = phn_batch_list(&P, &n)) == NULL) {
			if (errno != ENOENT)
				phn_die(PHN_EXIT_TEMP, "unable to list %s:", P.runs);
			n = 0;
		}
		for (i = 0; i < n; i++)
			scan_batch(v[i], &C);
		phn_dir_list_free(v, n);
	}
	phn_config_free(&C);
	if (failed)
		return PHN_EXIT_TEMP;
	return !kflag && found ? PHN_EXIT_NO : PHN_EXIT_OK;
}

static volatile sig_atomic_t stop;

static void
on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

/*
 * Auto-remediation passes: one, or with follow one every interval
 * (<= 0: the config's heartbeat_interval_seconds) until a signal.
 */
static int
remediate(const char *batch, int dry, int follow, double interval)
{
	struct sigaction sa;
	struct phn_config C;
	struct phn_errs e = { 0 };
	struct timespec ts;
	double every, end;
	int r, code = PHN_EXIT_OK;

	if (batch != NULL && phn_sched_step_check(&P, batch, NULL, NULL,
	    &e) == -1)
		phn_errs_die(&e);
	if (follow) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_stop;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
	}
	do {
		if (phn_config_read(&P, 0, &C, &e) == -1) {
			if (!follow)
				phn_errs_die(&e);
			phn_warn("%s", e.n ? e.v[0] : "unable to read the config");
			phn_errs_free(&e);
			every = interval > 0 ? interval : 30;
		} else {
			r = phn_remedy_apply(&P, &C, batch, dry, stdout);
			if (r == -1)
				code = PHN_EXIT_TEMP;
			/* on_exhausted cancel: a spent budget's attempts */
			if (phn_budget_enforce(&P, &C, batch, dry, stdout) == -1)
				code = PHN_EXIT_TEMP;
			every = interval > 0 ? interval : phn_config_num(&C,
			    "defaults.scoreboard.heartbeat_interval_seconds", 30);
			phn_config_free(&C);
		}
		fflush(stdout);
		for (end = phn_mono() + every; follow && !stop &&
		    phn_mono() < end; ) {
			ts.tv_sec = 0;
			ts.tv_nsec = 100000000;
			nanosleep(&ts, NULL);
		}
	} while (follow && !stop);
	return follow ? PHN_EXIT_OK : code;
}

int
main(int argc, char *argv[])
{
	int lflag = 0, Rflag = 0, Dflag = 0, fflag = 0, code;
	double interval = 0;
	const char *one_dir = NULL;
	const struct phn_option options[] = {
		PHN_FLAG('D', "dry-run", &Dflag),
		PHN_FLAG('f', "follow", &fflag),
		PHN_SECS('I', "interval", &interval, 0.1, 86400),
		PHN_FLAG(0, "remediate", &Rflag),
		PHN_FLAG('0', "null", &zflag),
		PHN_FLAG('k', "reap", &kflag),
		PHN_FLAG('l', "stale", &lflag),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage,
	    .take = PHN_TAKE_BATCH | PHN_TAKE_JSON, .nargs = PHN_ARGS_ANY };

	PROG = "phn-heartbeat";
	setvbuf(stdout, NULL, _IOLBF, 0);
	phn_opts_parse(&opts, &argc, &argv, options);
	Jflag = opts.json;
	if (lflag + kflag + Rflag > 1 || ((Dflag || fflag) && !Rflag) ||
	    (interval > 0 && !fflag) || (Rflag && (argc != 0 || zflag ||
	    Jflag)))
		phn_usage(&opts, PHN_EXIT_PERM);
	if (Rflag) {
		phn_opts_paths(&opts, &P);
		code = remediate(opts.batch, Dflag, fflag, interval);
		phn_paths_free(&P);
		phn_stdout_close();
		return code;
	}
	if (kflag && argc == 1 && !opts.batch && !zflag && !Jflag)
		one_dir = argv[0];
	else if ((lflag || kflag) ? argc != 0 : (argc < 1 || argc > 2 ||
	    opts.batch || zflag || Jflag))
		phn_usage(&opts, PHN_EXIT_PERM);
	/* A beat names its attempt, whose store may be found from its path. */
	opts.mkstore = (!lflag && !kflag) || one_dir != NULL;
	phn_opts_paths(&opts, &P);
	if (one_dir != NULL)
		code = reap_one(one_dir);
	else if (lflag || kflag)
		code = scan(opts.batch);
	else
		code = beat(argv[0], argc == 2 ? argv[1] : NULL);
	phn_paths_free(&P);
	phn_stdout_close();
	return code;
}
