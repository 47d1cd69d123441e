/*
 * overrides.c - operator overrides, runs/B/J/overrides.json:
 *
 *   {"version": 1, "updated_at": ISO, "steps": {STEP: {
 *       "force_retry_nonce": N, "force_retry_reason": R,
 *       "force_retry_requested_at": ISO,
 *       "forced_terminal": {"status": "failed", "reason": R, "set_at": ISO},
 *       "requeue_nonce": N,
 *       "requeue": {"nonce": N, "target_runner_id": R|null,
 *                   "different_from_last": BOOL, "reason": R,
 *                   "requested_at": ISO}}}}
 *
 * the reference's format.  Every change is a read-modify-write under
 * J/overrides.lock (the reference had no lock).  A pending nonce is one
 * greater than the one recorded in the newest attempt's meta.json, where
 * phn-claim writes it when it applies it; current.json mirrors the
 * applied nonces and forced_terminal for readers of the reference's keys.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"


/*
 * End the queued attempts of a step that no spawner holds, as canceled
 * (mark-failed).  Under the step lock, so that a concurrent claim either
 * sees the forced terminal state or has finished creating its attempt;
 * and under each attempt's spawn.lock, so that no phn-spawn is starting
 * it.  A running attempt is left alone: stopping it is phn-cancel's job.
 * Returns the relative dirs of the attempts it ended.
 */
static struct json_object *
end_queued(const struct phn_paths *p, const char *batch, const char *job,
    const char *step, const char *reason)
{
	struct json_object *out = json_object_new_array(), *st, *f, *e;
	char *ad, *lp, **v;
	size_t n, i;
	int sfd, fd;

	lp = phn_step_path(p, batch, job, step, "step.lock");
	sfd = phn_lock_wait(lp, 30);
	free(lp);
	if (sfd == -1)
		return out;
	ad = phn_attempt_path(p, batch, job, step, NULL, NULL);
	if ((v = phn_dir_list(ad, &n)) == NULL)
		n = 0;
	for (i = 0; i < n; i++) {
		char *dir = phn_path_join(ad, v[i]);
		struct phn_attempt a;

		st = phn_state_read(dir);
		if (st == NULL || strcmp(phn_jstr(st, "status") ?
		    phn_jstr(st, "status") : "", "queued") != 0) {
			json_object_put(st);
			free(dir);
			continue;
		}
		json_object_put(st);
		lp = phn_path_join(dir, "spawn.lock");
		fd = phn_lock_open(lp, LOCK_EX | LOCK_NB);
		free(lp);
		if (fd == -1) {
			free(dir);
			continue;
		}
		st = phn_state_read(dir);
		if (st != NULL && strcmp(phn_jstr(st, "status") ?
		    phn_jstr(st, "status") : "", "queued") == 0) {
			json_object_put(st);
			f = json_object_new_object();
			json_object_object_add(f, "failure_kind",
			    json_object_new_string("canceled"));
			json_object_object_add(f, "current_item",
			    json_object_new_string("canceled before start: step "
			    "marked failed by the operator"));
			e = json_object_new_array();
			json_object_array_add(e, json_object_new_string(reason ?
			    reason : "step marked failed by the operator"));
			json_object_object_add(f, "errors", e);
			if (phn_state_update(dir, "canceled", f) == 1 &&
			    phn_attempt_parse(p, dir, &a) == 0) {
				st = phn_state_read(dir);
				phn_current_note(p, &a, st);
				phn_sched_attempt_ended(p, &a);
				json_object_array_add(out, json_object_new_string(
				    a.rel));
				phn_attempt_free(&a);
			}
			json_object_put(f);
		}
		json_object_put(st);
		phn_lock_close(fd);
		free(dir);
	}
	phn_dir_list_free(v, n);
	free(ad);
	phn_lock_close(sfd);
	return out;
}

/*
 * Append an auto-remediation action record to a step's entry se:
 * steps.STEP.auto_remediation = {"applied_count_total": N, "last_applied_at":
 * ISO, "last_applied_run_id": R, "actions": [...]}, N the number of
 * actions (remedy.c counts them against max_applies_per_step).
 */
static void
remedy_record(struct json_object *se, struct json_object *rec)
{
	struct json_object *ar = phn_json_get(se, "auto_remediation"), *l;

	if (!json_object_is_type(ar, json_type_object)) {
		ar = json_object_new_object();
		json_object_object_add(se, "auto_remediation", ar);
	}
	if (!json_object_is_type((l = phn_json_get(ar, "actions")),
	    json_type_array)) {
		l = json_object_new_array();
		json_object_object_add(ar, "actions", l);
	}
	json_object_array_add(l, json_object_get(rec));
	json_object_object_add(ar, "applied_count_total",
	    json_object_new_int64((int64_t)json_object_array_length(l)));
	json_object_object_add(ar, "last_applied_at",
	    json_object_get(phn_json_get(rec, "at")));
	json_object_object_add(ar, "last_applied_run_id",
	    json_object_get(phn_json_get(rec, "run_id")));
}

/*
 * Apply one override to a step (the caller checked that it exists):
 * action is "force-retry", "mark-failed" or "requeue" (with runner or
 * different).  *out gets the command's result object.  Returns 0, or -1
 * with msg (a system call failed).
 */
static int
overrides_apply(const struct phn_paths *p, const struct phn_override_req *r,
    struct json_object **out, char *msg, size_t msglen)
{
	const char *batch = r->batch, *job = r->job, *step = r->step;
	const char *action = r->action, *reason = r->reason;
	const char *runner = r->runner;
	int different = r->different;
	char *lp = phn_job_path(p, batch, job, "overrides.lock");
	char *f = phn_job_path(p, batch, job, "overrides.json");
	char iso[PHN_ISO_LEN], *lp2;
	struct json_object *ov, *steps, *se, *o, *ended = NULL;
	long long n;
	int fd, bad;

	*out = NULL;
	if ((fd = phn_lock_wait(lp, 30)) == -1) {
		snprintf(msg, msglen, "unable to lock %s: %s", lp,
		    strerror(errno));
		free(lp);
		free(f);
		return -1;
	}
	ov = phn_overrides_read(p, batch, job, &bad, msg, msglen);
	if (bad) {
		/* Keep the broken file for the operator; start afresh. */
		char *keep = phn_asprintf("%s.broken", f);
		phn_warn("warning: %s; moved to %s", msg, keep);
		rename(f, keep);
		free(keep);
	}
	if (ov == NULL) {
		ov = json_object_new_object();
		json_object_object_add(ov, "version", json_object_new_int(1));
	}
	if ((steps = phn_json_get(ov, "steps")) == NULL) {
		steps = json_object_new_object();
		json_object_object_add(ov, "steps", steps);
	}
	if ((se = phn_json_get(steps, step)) == NULL ||
	    !json_object_is_type(se, json_type_object)) {
		se = json_object_new_object();
		json_object_object_add(steps, step, se);
	}
	phn_iso(phn_now(), iso);
	if (strcmp(action, "force-retry") == 0) {
		n = phn_json_int(se, "force_retry_nonce", 0);
		json_object_object_add(se, "force_retry_nonce",
		    json_object_new_int64(n > 0 ? n + 1 : 1));
		json_object_object_add(se, "force_retry_reason",
		    phn_json_string(reason));
		json_object_object_add(se, "force_retry_requested_at",
		    json_object_new_string(iso));
		json_object_object_add(se, "force_retry_by",
		    json_object_new_string(r->by ? r->by : "operator"));
		json_object_object_del(se, "forced_terminal");
		if (r->record != NULL)
			remedy_record(se, r->record);
	} else if (strcmp(action, "mark-failed") == 0) {
		o = json_object_new_object();
		json_object_object_add(o, "status", json_object_new_string(
		    "failed"));
		json_object_object_add(o, "reason", phn_json_string(reason));
		json_object_object_add(o, "set_at", json_object_new_string(iso));
		json_object_object_add(se, "forced_terminal", o);
	} else {
		n = phn_json_int(se, "requeue_nonce", 0);
		n = n > 0 ? n + 1 : 1;
		json_object_object_add(se, "requeue_nonce",
		    json_object_new_int64(n));
		o = json_object_new_object();
		json_object_object_add(o, "nonce", json_object_new_int64(n));
		json_object_object_add(o, "target_runner_id",
		    phn_json_string(runner));
		json_object_object_add(o, "different_from_last",
		    json_object_new_boolean(different));
		json_object_object_add(o, "reason", phn_json_string(reason));
		json_object_object_add(o, "requested_at",
		    json_object_new_string(iso));
		json_object_object_add(se, "requeue", o);
	}
	json_object_object_add(ov, "updated_at", json_object_new_string(iso));
	if (phn_json_write(f, ov, PHN_DURABLE) == -1) {
		snprintf(msg, msglen, "unable to write %s: %s", f,
		    strerror(errno));
		json_object_put(ov);
		phn_lock_close(fd);
		free(lp);
		free(f);
		return -1;
	}
	phn_lock_close(fd);
	lp2 = phn_batch_path(p, batch, NULL);
	phn_batch_changed(lp2);		/* after the change (summary.c) */
	free(lp2);

	/* The mirror in current.json, for readers of the reference's keys. */
	if (strcmp(action, "mark-failed") == 0) {
		phn_current_step_set(p, batch, job, step, "forced_terminal",
		    json_object_get(phn_json_get(se, "forced_terminal")));
		ended = end_queued(p, batch, job, step, reason);
	} else if (strcmp(action, "force-retry") == 0)
		phn_current_step_set(p, batch, job, step, "forced_terminal", NULL);
	if (phn_sched_ready_add(p, batch, job, step, 0) == -1)
		phn_warn("warning: unable to add %s/%s/%s to the ready index:",
		    batch, job, step);
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "action", json_object_new_string(action));
	json_object_object_add(o, "batch_id", json_object_new_string(batch));
	json_object_object_add(o, "job_id", json_object_new_string(job));
	json_object_object_add(o, "step_id", json_object_new_string(step));
	json_object_object_add(o, "step", json_object_get(se));
	if (ended != NULL)
		json_object_object_add(o, "ended_queued", ended);
	json_object_object_add(o, "overrides_path", json_object_new_string(f));
	json_object_object_add(o, "overrides", ov);
	*out = o;
	free(lp);
	free(f);
	return 0;
}

/*
 * Check that batch/job/step exist (job and step may be NULL).  Returns 0,
 * or -1 with the reason in e: temp when the store could not be read,
 * else the ids are wrong.
 */
int
phn_sched_step_check(const struct phn_paths *p, const char *batch,
    const char *job, const char *step, struct phn_errs *e)
{
	struct json_object *jd;
	char *f, msg[512];

	if (!phn_id_valid(batch, strlen(batch)) || (job &&
	    !phn_id_valid(job, strlen(job))) || (step &&
	    !phn_id_valid(step, strlen(step))))
		return phn_errs_fail(e, 0, "%s%s%s%s%s: not a valid id", batch,
		    job ? "/" : "", job ? job : "", step ? "/" : "",
		    step ? step : "");
	f = phn_batch_path(p, batch, "batch_meta.json");
	if (access(f, F_OK) == -1) {
		free(f);
		return phn_errs_fail(e, 0, "no such batch: %s (in %s)", batch,
		    p->runs);
	}
	free(f);
	if (job == NULL)
		return 0;
	if (phn_sched_index(p, batch, msg, sizeof(msg)) == -1)
		return phn_errs_fail(e, 1, "%s", msg);
	if ((jd = phn_sched_job(p, batch, job)) == NULL)
		return phn_errs_fail(e, 0, "no such job in batch %s: %s", batch,
		    job);
	if (step != NULL && phn_json_get(phn_json_get(jd, "steps"), step) == NULL) {
		json_object_put(jd);
		return phn_errs_fail(e, 0, "no such step in %s/%s: %s", batch,
		    job, step);
	}
	json_object_put(jd);
	return 0;
}

/*
 * Apply one override (r->action, as overrides_apply) to a step that
 * is checked to exist first.  Returns 0 with *out, the result object, or
 * -1 with e (e->temp: the store could not be read or written).
 */
int
phn_override_step(const struct phn_paths *p, const struct phn_override_req *r,
    struct json_object **out, struct phn_errs *e)
{
	char msg[1024];

	*out = NULL;
	if (r->runner != NULL && !phn_id_valid(r->runner, strlen(r->runner)))
		return phn_errs_fail(e, 0, "--runner-id: '%s': not a runner id",
		    r->runner);
	if (phn_sched_step_check(p, r->batch, r->job, r->step, e) == -1)
		return -1;
	if (overrides_apply(p, r, out, msg, sizeof(msg)) == -1)
		return phn_errs_fail(e, 1, "%s", msg);
	return 0;
}
