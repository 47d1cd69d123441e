/*
 * remedy.c - auto-remediation (the reference's scoreboard.auto_remediation):
 * cancel a stuck attempt and force a retry of its step, or force a retry
 * of a step whose orphaned (or failed) attempt ended it.
 *
 * Settings: harness config defaults.scoreboard.auto_remediation =
 * {enabled, kinds, action, max_actions_per_tick, cancel_grace_seconds,
 * max_applies_per_step}, and the legacy switch
 * defaults.scoreboard.stuck_auto_remediation_enabled (true by default, as
 * in the reference): when it is on and the structured object is not
 * enabled, remediation is on with kinds ["stuck", "needs_attention"],
 * action cancel_and_force_retry and one apply per step, any key of the
 * structured object overlaid.  config.c validates both.
 *
 * One pass (phn_remedy_apply) walks each open batch's scoreboard
 * attention list (stuck, then needs_attention, then failed, as
 * phn-score orders it) until max_actions_per_tick actions.  Each action
 * on a step runs under the step's step.lock, so no claimer creates an
 * attempt between the cancel and the forced retry, and two remediating
 * processes act once:
 *   stuck (cancel_and_force_retry only): the record goes into the
 *     running attempt's state.json (key auto_remediation), then the
 *     attempt is canceled through its spawner (phn_cancel, with
 *     cancel_grace_seconds), then the force-retry;
 *   needs_attention (an orphaned or lease-expired attempt that the
 *     harness-fault retries no longer retry; with action force_retry
 *     under the structured config, any needs_attention) and failed:
 *     the force-retry only.
 * The force-retry goes through the operator's override
 * (phn_override_step, by "auto_remediation"), which also appends the
 * record to overrides.json steps.STEP.auto_remediation.actions: that
 * list is the count max_applies_per_step is held to, and an attempt
 * already named in it is never acted on twice, across processes and
 * restarts.  The attempt canceled does not count against max_attempts
 * (phn_asum_counted, policy.c).  A stuck action cut short between its
 * cancel and its retry (a crash) is finished by the next pass: the
 * canceled attempt's record says so (interrupted()).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"
#include "score.h"

#define K_STUCK		1
#define K_NEEDS		2
#define K_FAILED	4

static const char *const kind_names[] = { "stuck", "needs_attention",
    "failed", NULL };

static double
num(struct json_object *o, const char *k, double dflt)
{
	struct json_object *v = phn_json_get(o, k);

	return phn_json_is_num(v) ? json_object_get_double(v) : dflt;
}

/* The settings from the harness config document. */
void
phn_remedy_init(struct phn_remedy *r, struct json_object *cfg)
{
	struct json_object *sb = phn_json_path_get(cfg, "defaults.scoreboard");
	struct json_object *ar = phn_json_get(sb, "auto_remediation"), *v, *k;
	const char *a;
	size_t i, n;
	int j, structured;

	memset(r, 0, sizeof(*r));
	structured = json_object_is_type(phn_json_get(ar, "enabled"),
	    json_type_boolean) && json_object_get_boolean(phn_json_get(ar,
	    "enabled"));
	v = phn_json_get(sb, "stuck_auto_remediation_enabled");
	r->legacy = !structured && json_object_is_type(v, json_type_boolean) &&
	    json_object_get_boolean(v);
	r->enabled = structured || r->legacy;
	r->kinds = r->legacy ? K_STUCK | K_NEEDS : K_STUCK;
	r->per_step = r->legacy ? 1 : 5;
	r->per_tick = 10;
	r->grace = 1.0;
	r->action = "cancel_and_force_retry";
	if (json_object_is_type((v = phn_json_get(ar, "kinds")),
	    json_type_array) && json_object_array_length(v) > 0) {
		r->kinds = 0;
		n = json_object_array_length(v);
		for (i = 0; i < n; i++) {
			k = json_object_array_get_idx(v, i);
			for (j = 0; kind_names[j]; j++)
				if (json_object_is_type(k, json_type_string) &&
				    strcmp(json_object_get_string(k),
				    kind_names[j]) == 0)
					r->kinds |= 1 << j;
		}
	}
	if ((a = phn_jstr(ar, "action")) != NULL)
		r->action = strcmp(a, "force_retry") == 0 ? "force_retry" :
		    strcmp(a, "cancel_and_force_retry") == 0 ?
		    "cancel_and_force_retry" : NULL;
	if ((v = phn_json_get(ar, "max_actions_per_tick")) != NULL &&
	    phn_json_is_int(v) && json_object_get_int64(v) > 0)
		r->per_tick = json_object_get_int64(v);
	if ((v = phn_json_get(ar, "max_applies_per_step")) != NULL &&
	    phn_json_is_int(v))
		r->per_step = json_object_get_int64(v) > 0 ?
		    json_object_get_int64(v) : 1;
	r->grace = num(ar, "cancel_grace_seconds", 1.0);
	if (!(r->grace >= 0) || !isfinite(r->grace))
		r->grace = 1.0;
}

/* The remediation kind of an attention item, or NULL. */
static const char *
item_kind(const struct phn_remedy *r, struct json_object *it)
{
	const char *k = phn_jstr(it, "kind"), *fk = phn_jstr(it,
	    "failure_kind");
	int orphan = fk && phn_fault_kind(fk);

	if (k == NULL)
		return NULL;
	if (strcmp(k, "stuck") == 0)
		return (r->kinds & K_STUCK) &&
		    strcmp(r->action, "cancel_and_force_retry") == 0 ?
		    "stuck" : NULL;
	if (strcmp(k, "failed") != 0 && strcmp(k, "needs_attention") != 0)
		return NULL;	/* orphaned while running: phn-heartbeat --reap */
	if (orphan || (strcmp(k, "needs_attention") == 0 && !r->legacy &&
	    strcmp(r->action, "force_retry") == 0))
		return r->kinds & K_NEEDS ? "needs_attention" : NULL;
	if (strcmp(k, "failed") == 0 && (r->kinds & K_FAILED))
		return "failed";
	return NULL;
}

/* The step's auto_remediation record in overrides.json: how many actions,
 * and whether run_id was acted on (or the operator marked the step
 * failed: hands off).  -1 when it cannot be read. */
static long long
applied(const struct phn_paths *p, const char *batch, const char *job,
    const char *step, const char *run_id, int *done)
{
	struct json_object *ov, *l, *se;
	char msg[512];
	size_t i, n;
	int bad;

	*done = 0;
	ov = phn_overrides_read(p, batch, job, &bad, msg, sizeof(msg));
	if (bad) {
		phn_warn("%s", msg);
		return -1;
	}
	se = phn_json_get(phn_json_get(ov, "steps"), step);
	/* An operator's mark-failed stands: a retry would undo it. */
	if (phn_json_get(se, "forced_terminal") != NULL)
		*done = 1;
	l = phn_json_get(phn_json_get(se, "auto_remediation"), "actions");
	n = json_object_is_type(l, json_type_array) ?
	    json_object_array_length(l) : 0;
	for (i = 0; i < n; i++) {
		const char *r = phn_jstr(json_object_array_get_idx(l, i),
		    "run_id");
		if (r && strcmp(r, run_id) == 0)
			*done = 1;
	}
	json_object_put(ov);
	return (long long)n;
}

/* The newest attempt of a step is the one named run_id? */
static int
is_latest(const struct phn_paths *p, const char *batch, const char *job,
    const char *step, const char *run_id)
{
	char *d = phn_attempt_path(p, batch, job, step, NULL, NULL), **v, *u;
	size_t n;
	int r = 0;

	if ((v = phn_dir_list(d, &n)) != NULL && n > 0) {
		u = strstr(v[n - 1], "_");
		r = u != NULL && strcmp(u + 1, run_id) == 0;
	}
	phn_dir_list_free(v, n);
	free(d);
	return r;
}

/* Is the attempt at dir still stuck (under the batch's thresholds)? */
static int
still_stuck(const struct phn_paths *p, const struct phn_config *cfg,
    const char *batch, const char *dir)
{
	struct json_object *bm, *st;
	struct phn_limits lim;
	char msg[512];
	int r;

	if ((bm = phn_batch_meta(p, batch, msg, sizeof(msg))) == NULL)
		return 0;
	phn_limits_init(&lim, cfg->doc, phn_json_get(bm, "effective_defaults"));
	json_object_put(bm);
	st = phn_state_read(dir);
	r = st != NULL && !phn_status_terminal(phn_jstr(st, "status")) &&
	    phn_attempt_judge(p, dir, st, phn_now(), lim.lease, lim.stale,
	    lim.stuck) == PHN_FAULT_STUCK;
	json_object_put(st);
	return r;
}

/*
 * A stuck action interrupted between its cancel and its retry: the
 * attempt at dir ended canceled with our record for run_id in its
 * state.json (the record goes there first).  A copy of the record, or
 * NULL.
 */
static struct json_object *
interrupted(const char *dir, const char *run_id)
{
	struct json_object *st = phn_state_read(dir), *r = NULL, *ar;
	const char *by, *rid;

	ar = phn_json_get(st, "auto_remediation");
	by = phn_jstr(ar, "by");
	rid = phn_jstr(ar, "run_id");
	if (phn_ast_of(phn_jstr(st, "status")) == PHN_AST_CANCELED &&
	    by != NULL && strcmp(by, "auto_remediation") == 0 &&
	    rid != NULL && strcmp(rid, run_id) == 0)
		json_object_deep_copy(ar, &r, NULL);
	json_object_put(st);
	return r;
}

struct act {
	const struct phn_paths *p;
	const struct phn_config *cfg;
	const struct phn_remedy *r;
	const char *batch, *job, *step, *run_id, *kind, *why;
	int	 dry;
	FILE	*out;
	int	 resume;	/* finish an interrupted stuck action */
};

static void
put(struct json_object *o, const char *k, const char *s)
{
	json_object_object_add(o, k, phn_json_string(s));
}

/*
 * Act on one step, under its step.lock.  1 acted (or would, dry), 0
 * skipped, -1 on error (said).
 */
static int
act(struct act *c)
{
	struct json_object *rec = NULL, *res = NULL, *out = NULL, *st, *f;
	struct phn_override_req req = { .action = "force-retry" };
	struct phn_errs e = { 0 };
	struct phn_attempt a;
	char iso[PHN_ISO_LEN], *lp, *dir, *why;
	const char *action = strcmp(c->kind, "stuck") == 0 ?
	    "cancel_and_force_retry" : "force_retry";
	long long n;
	int fd, done, ret = 0, u;

	lp = phn_step_path(c->p, c->batch, c->job, c->step, "step.lock");
	fd = phn_lock_wait(lp, 30);
	if (fd == -1) {
		phn_warn("unable to lock %s:", lp);
		free(lp);
		return -1;
	}
	free(lp);
	dir = phn_attempt_find(c->p, c->batch, c->job, c->step, c->run_id);
	if ((n = applied(c->p, c->batch, c->job, c->step, c->run_id,
	    &done)) < 0 || done || n >= c->r->per_step || dir == NULL ||
	    !is_latest(c->p, c->batch, c->job, c->step, c->run_id) ||
	    (strcmp(c->kind, "stuck") == 0 && (c->resume ?
	    (rec = interrupted(dir, c->run_id)) == NULL :
	    !still_stuck(c->p, c->cfg, c->batch, dir)))) {
		ret = n < 0 ? -1 : 0;
		goto done;
	}
	if (phn_attempt_parse(c->p, dir, &a) == -1) {
		json_object_put(rec);
		ret = 0;
		goto done;
	}
	phn_iso(phn_now(), iso);
	if (c->resume) {
		/* The cancel happened, the retry did not: finish it. */
		why = phn_strdup(phn_jstr(rec, "reason") ? phn_jstr(rec,
		    "reason") : "stuck");
		put(rec, "completed_at", iso);
		if (c->dry) {
			out = json_object_new_object();
			json_object_object_add(out, "ok",
			    json_object_new_boolean(1));
			json_object_object_add(out, "dry_run",
			    json_object_new_boolean(1));
			goto emit;
		}
		goto retry;
	}
	why = phn_asprintf("%s: %s", c->kind, c->why ? c->why : "attention");
	rec = json_object_new_object();
	put(rec, "by", "auto_remediation");
	put(rec, "kind", c->kind);
	put(rec, "action", action);
	put(rec, "reason", why);
	put(rec, "at", iso);
	put(rec, "run_id", c->run_id);
	put(rec, "attempt_dir", a.rel);
	if (c->dry) {
		out = json_object_new_object();
		json_object_object_add(out, "ok", json_object_new_boolean(1));
		json_object_object_add(out, "dry_run",
		    json_object_new_boolean(1));
		goto emit;
	}
	if (strcmp(c->kind, "stuck") == 0) {
		/* The record first, in the attempt still running: the
		 * spawner's terminal write keeps it. */
		f = json_object_new_object();
		json_object_object_add(f, "auto_remediation",
		    json_object_get(rec));
		u = phn_state_update(a.dir, NULL, f);
		json_object_put(f);
		if (u != 1) {
			if (u == -1)
				phn_warn("%s: unable to update state.json:",
				    a.dir);
			ret = u;
			goto free;
		}
		if (phn_cancel(c->p, &a, c->r->grace, &res) == -1) {
			phn_warn("%s: unable to cancel:", a.dir);
			ret = -1;
			goto free;
		}
		st = phn_state_read(a.dir);
		if (strcmp(phn_jstr(st, "status") ? phn_jstr(st, "status") :
		    "", "canceled") != 0) {
			/* It ended by itself meanwhile: nothing to retry. */
			json_object_put(st);
			ret = 0;
			goto free;
		}
		json_object_put(st);
		json_object_object_add(rec, "cancel", json_object_get(res));
	}
retry:
	req.batch = c->batch;
	req.job = c->job;
	req.step = c->step;
	req.reason = why;
	req.by = "auto_remediation";
	req.record = rec;
	if (phn_override_step(c->p, &req, &out, &e) == -1) {
		phn_warn("%s/%s/%s: unable to force a retry: %s", c->batch,
		    c->job, c->step, e.n ? e.v[0] : "?");
		phn_errs_free(&e);
		ret = -1;
		goto free;
	}
emit:
	json_object_object_add(out, "batch_id", json_object_new_string(c->batch));
	json_object_object_add(out, "job_id", json_object_new_string(c->job));
	json_object_object_add(out, "step_id", json_object_new_string(c->step));
	json_object_object_add(out, "remediation", json_object_get(rec));
	json_object_object_add(out, "applied_count_total",
	    json_object_new_int64(n + 1));
	json_object_object_del(out, "overrides");
	json_object_object_del(out, "step");
	json_object_object_add(out, "action", json_object_new_string(action));
	if (c->out != NULL)
		phn_json_emit(c->out, out);
	ret = 1;
free:
	json_object_put(out);
	json_object_put(res);
	json_object_put(rec);
	free(why);
	phn_attempt_free(&a);
done:
	free(dir);
	phn_lock_close(fd);
	return ret;
}

/*
 * Act as c says on the step item it names (job_id, step_id, run_id); an
 * action is one more in *acted and one less in *left.  act()'s answer;
 * 0 when it names no step.
 */
static int
act_item(struct act *c, struct json_object *it, int *acted,
    long long *left)
{
	int x;

	c->job = phn_jstr(it, "job_id");
	c->step = phn_jstr(it, "step_id");
	c->run_id = phn_jstr(it, "run_id");
	if (c->job == NULL || c->step == NULL || c->run_id == NULL)
		return 0;
	if ((x = act(c)) == 1) {
		(*acted)++;
		(*left)--;
	}
	return x;
}

static int
closed(const struct phn_paths *p, const char *batch)
{
	char *f = phn_batch_path(p, batch, "batch_closed.json");
	int r = access(f, F_OK) == 0;

	free(f);
	return r;
}

/*
 * One remediation pass over batch (NULL: every batch), as the harness
 * config says; with dry, only say what would be done.  One JSON line per
 * action to out (or none).  Returns the number of actions, or -1 if some
 * step could not be handled (said on stderr; the others were).
 */
int
phn_remedy_apply(const struct phn_paths *p, const struct phn_config *cfg,
    const char *batch, int dry, FILE *out)
{
	struct phn_remedy r;
	struct json_object *sb, *attn, *it, *steps;
	char **v, msg[512];
	size_t n, i, k, na;
	long long left;
	int acted = 0, failed = 0;

	phn_remedy_init(&r, cfg->doc);
	if (!r.enabled || r.action == NULL)
		return 0;
	if ((v = phn_batches(p, batch, &n)) == NULL)
		return errno == ENOENT ? 0 : -1;
	left = r.per_tick;
	for (i = 0; i < n && left > 0; i++) {
		if (closed(p, v[i]))
			continue;
		steps = json_object_new_array();
		sb = phn_score_batch(p, cfg->doc, v[i], phn_now(), steps, msg,
		    sizeof(msg));
		if (sb == NULL) {
			phn_warn("%s", msg);
			json_object_put(steps);
			failed = 1;
			continue;
		}
		attn = phn_json_get(sb, "attention");
		na = json_object_is_type(attn, json_type_array) ?
		    json_object_array_length(attn) : 0;
		for (k = 0; k < na && left > 0; k++) {
			struct act c = { p, cfg, &r, v[i], NULL, NULL, NULL,
			    NULL, NULL, dry, out, 0 };
			it = json_object_array_get_idx(attn, k);
			c.why = phn_jstr(it, "reason");
			if ((c.kind = item_kind(&r, it)) != NULL &&
			    act_item(&c, it, &acted, &left) == -1)
				failed = 1;
		}
		/* Stuck actions a crash cut between cancel and retry. */
		na = json_object_array_length(steps);
		for (k = 0; k < na && left > 0; k++) {
			struct act c = { p, cfg, &r, v[i], NULL, NULL, NULL,
			    "stuck", NULL, dry, out, 1 };
			it = json_object_array_get_idx(steps, k);
			if ((r.kinds & K_STUCK) && strcmp(phn_jstr(it,
			    "status") ? phn_jstr(it, "status") : "",
			    "canceled") == 0 &&
			    act_item(&c, it, &acted, &left) == -1)
				failed = 1;
		}
		json_object_put(steps);
		json_object_put(sb);
	}
	phn_dir_list_free(v, n);
	return failed ? -1 : acted;
}

/* An exhausted batch's attempts being canceled (phn_budget_enforce). */
struct enforce {
	const struct phn_paths *p;
	const struct phn_budget *b;
	double	 grace;
	int	 dry;
	FILE	*out;
	int	 count, failed;
};

/* Cancel attempt directory ad unless it has ended (struct enforce *arg). */
static void
cancel_one(const char *ad, void *arg)
{
	struct enforce *c = arg;
	struct json_object *res, *st = phn_state_read(ad);
	struct phn_attempt a;

	if (st != NULL && !phn_status_terminal(phn_jstr(st, "status")) &&
	    phn_attempt_parse(c->p, ad, &a) == 0) {
		res = NULL;
		if (c->dry) {
			res = json_object_new_object();
			json_object_object_add(res, "attempt_dir",
			    json_object_new_string(a.rel));
			json_object_object_add(res, "dry_run",
			    json_object_new_boolean(1));
		} else if (phn_cancel(c->p, &a, c->grace, &res) == -1) {
			phn_warn("%s: unable to cancel:", a.dir);
			c->failed = 1;
		}
		if (res != NULL && c->out != NULL) {
			json_object_object_add(res, "action",
			    json_object_new_string("budget_cancel"));
			json_object_object_add(res, "budget",
			    phn_budget_json(c->b));
			phn_json_emit(c->out, res);
		}
		json_object_put(res);
		c->count++;
		phn_attempt_free(&a);
	}
	json_object_put(st);
}

/*
 * With on_exhausted cancel, cancel the queued and running attempts of an
 * exhausted batch (NULL: every batch), with defaults.kill_grace_seconds.
 * One JSON line per attempt canceled to out.  Returns how many, or -1
 * if some could not be canceled (said on stderr).
 */
int
phn_budget_enforce(const struct phn_paths *p, const struct phn_config *cfg,
    const char *batch, int dry, FILE *out)
{
	struct phn_budget b;
	struct enforce c = { p, &b, phn_config_num(cfg,
	    "defaults.kill_grace_seconds", 10), dry, out, 0, 0 };
	char **v;
	size_t n, i;

	if ((v = phn_batches(p, batch, &n)) == NULL)
		return errno == ENOENT ? 0 : -1;
	for (i = 0; i < n; i++) {
		if (phn_budget_get(p, v[i], NULL, 0, &b) == -1 || !b.cancel ||
		    b.max < 0)
			continue;
		phn_budget_set_used(&b, phn_budget_used(p, v[i]));
		if (b.exhausted)
			phn_batch_attempts(p, v[i], cancel_one, &c);
	}
	phn_dir_list_free(v, n);
	return c.failed ? -1 : c.count;
}
