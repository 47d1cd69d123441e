/*
 * policy.c - the step policy (SPEC 5, 6.5): from a step's definition,
 * its attempts, the operator's overrides, the state of its dependencies
 * and of its resume source, the limits and the time, decide the verdict
 * (ready, waiting out a backoff, blocked with reasons, active, done),
 * and for a step that may run, how: exec or exec resume, from which
 * attempt, with which thread.
 *
 * This is the only place these rules are written.  phn-claim evaluates
 * a step under its step lock and records the decision in the new
 * attempt's meta.json (phn_policy_meta); phn-score evaluates every step
 * for the scoreboards; phn-spawn executes what meta.json says.  Each
 * caller loads attempts its own way and hands them over through
 * phn_policy_env.atts.
 *
 * The rules, in order:
 *  1. an attempt queued or running: active;
 *  2. an operator's mark-failed (overrides.json forced_terminal): done;
 *  3. a succeeded attempt, unless a force-retry is pending: done;
 *  4. a closed batch: done with the latest status (blocked before any
 *     attempt);
 *  5. the latest attempt a harness fault (orphaned, claim_expired):
 *     retried at once, at most limits.max_harness_retries in a row, not
 *     counted against max_attempts (nor is an attempt auto-remediation
 *     canceled, phn_asum_counted); otherwise the retry policy (the
 *     step's retry_policy, else the batch's retries, replaced whole):
 *     counted attempts below max_attempts, the latest status or failure
 *     kind in retry_on_statuses (default ["failed"]), not before the end
 *     of the latest attempt plus the backoff; the latest attempt
 *     rate-limited (state.json rate_limited, pause.c): retried, and
 *     no rate-limited attempt counts against max_attempts;
 *  6. the batch's token budget is not spent (budget.c), every
 *     depends_on step has a succeeded attempt, and resume_from
 *     resolves to a finished attempt whose codex_home exists: else
 *     blocked, with every reason (budget_exhausted first);
 *  7. ready (or waiting until not_before, at least until the end of
 *     the store's rate-limit pause, env.pause_until).
 * A step that may run is resumed from its resume_from source; else, in
 * retry mode resume_last_attempt, from the newest earlier attempt that
 * has a codex thread and a codex_home; else it is a fresh exec.
 */
#include <sys/stat.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"

/* A summary named name (which it takes), queued until told otherwise. */
void
phn_asum_init(struct phn_asum *a, char *name)
{
	const char *r = strstr(name, "run_");

	memset(a, 0, sizeof(*a));
	a->name = name;
	a->run_id = r ? r : name;
	a->st = PHN_AST_QUEUED;
	a->ended = a->started = -1;
}

static char *
dupstr(const char *s)
{
	return s ? phn_strdup(s) : NULL;
}

/* Fill from a parsed state.json; -1 if it holds no valid status. */
int
phn_asum_state(struct phn_asum *a, struct json_object *st)
{
	struct json_object *v = phn_json_get(st, "harness_fault");
	double t;

	free(a->kind);
	free(a->thread);
	free(a->runner);
	a->kind = dupstr(phn_jstr(st, "failure_kind"));
	a->thread = dupstr(phn_jstr(st, "codex_thread_id"));
	a->runner = dupstr(phn_jstr(st, "runner_id"));
	a->hf = (json_object_is_type(v, json_type_boolean) &&
	    json_object_get_boolean(v)) || phn_fault_kind(a->kind);
	a->rl = phn_json_bool(st, "rate_limited", 0);
	a->ended = phn_iso_parse(phn_jstr(st, "ended_at"), &t) == 0 ? t : -1;
	a->started = phn_iso_parse(phn_jstr(st, "started_at"), &t) == 0 ? t :
	    -1;
	a->remedied = json_object_is_type(phn_json_get(st, "auto_remediation"),
	    json_type_object);
	a->st = phn_ast_of(phn_jstr(st, "status"));
	if (a->st < 0) {
		a->st = PHN_AST_QUEUED;
		return -1;
	}
	return 0;
}

void
phn_asums_free(struct phn_asums *as)
{
	size_t i;

	for (i = 0; i < as->n; i++) {
		free(as->v[i].name);
		free(as->v[i].kind);
		free(as->v[i].thread);
		free(as->v[i].runner);
	}
	free(as->v);
	memset(as, 0, sizeof(*as));
}

/*
 * Does the attempt count against max_attempts?  Not a harness fault,
 * nor a rate-limited one (pause.c: the provider, not the agent, ended
 * it), nor an attempt that auto-remediation canceled (remedy.c): the
 * retry it forces is the attempt the stuck one should have been.
 */
int
phn_asum_counted(const struct phn_asum *a)
{
	return !a->hf && !a->rl && !(a->remedied &&
	    a->st == PHN_AST_CANCELED);
}

static int
active(const struct phn_asum *a)
{
	return a->st == PHN_AST_QUEUED || a->st == PHN_AST_RUNNING;
}

static double
num(struct json_object *o, const char *path, double dflt)
{
	struct json_object *v = phn_json_path_get(o, path);

	return phn_json_is_num(v) ? json_object_get_double(v) : dflt;
}

/* ------------------------------------------------- step definitions -- */

/* "JOB/STEP" for a reference made from job (STEP or JOB/STEP). */
char *
phn_ref_norm(const char *job, const char *s)
{
	size_t jl = strlen(job), sl = strlen(s);
	char *r;

	if (strchr(s, '/') != NULL)
		return phn_strdup(s);
	r = phn_malloc(jl + sl + 2);
	memcpy(r, job, jl);
	r[jl] = '/';
	memcpy(r + jl + 1, s, sl + 1);
	return r;
}

/* Split "JOB/STEP"; 0 if both parts are valid ids. */
int
phn_ref_split(const char *ref, char **job, char **step)
{
	const char *sl = ref ? strchr(ref, '/') : NULL;

	*job = *step = NULL;
	if (sl == NULL || !phn_id_valid(ref, (size_t)(sl - ref)) ||
	    !phn_id_valid(sl + 1, strlen(sl + 1)))
		return -1;
	*job = phn_asprintf("%.*s", (int)(sl - ref), ref);
	*step = phn_strdup(sl + 1);
	return 0;
}

static void
put(struct json_object *o, const char *k, const char *s)
{
	json_object_object_add(o, k, s ? json_object_new_string(s) : NULL);
}

/*
 * A step's definition, as the policy reads it, from step st of job in
 * batch_meta.json and the batch's effective_defaults ed: depends_on as
 * JOB/STEP references, resume_from with its job, step and selector
 * (default latest_successful), the retry policy (the step's
 * retry_policy replaced whole, else the batch's retries), the runner
 * affinity and the timeout (the step's, else the batch's; none when
 * null or not positive).
 */
struct json_object *
phn_policy_stepdef(const char *job, struct json_object *st,
    struct json_object *ed)
{
	struct json_object *o = json_object_new_object(), *v, *a, *x;
	const char *d;
	char *r, *sj, *ss;
	size_t i, n;
	double t;

	a = json_object_new_array();
	v = phn_json_get(st, "depends_on");
	n = json_object_is_type(v, json_type_array) ?
	    json_object_array_length(v) : 0;
	for (i = 0; i < n; i++) {
		if ((d = json_object_get_string(json_object_array_get_idx(v,
		    i))) == NULL)
			continue;
		r = phn_ref_norm(job, d);
		json_object_array_add(a, json_object_new_string(r));
		free(r);
	}
	json_object_object_add(o, "depends_on", a);
	v = phn_json_get(st, "resume_from");
	if ((d = phn_jstr(v, "step_id")) != NULL) {
		r = phn_ref_norm(job, d);
		if (phn_ref_split(r, &sj, &ss) == 0) {
			x = json_object_new_object();
			put(x, "job_id", sj);
			put(x, "step_id", ss);
			put(x, "ref", d);
			put(x, "selector", phn_jstr(v, "selector") ?
			    phn_jstr(v, "selector") : "latest_successful");
			if (phn_jstr(v, "run_id"))
				put(x, "run_id", phn_jstr(v, "run_id"));
			if (phn_jstr(v, "codex_thread_id"))
				put(x, "codex_thread_id", phn_jstr(v,
				    "codex_thread_id"));
			json_object_object_add(o, "resume_from", x);
		}
		free(sj);
		free(ss);
		free(r);
	}
	v = phn_json_get(st, "retry_policy");
	if (!json_object_is_type(v, json_type_object) ||
	    json_object_object_length(v) == 0)
		v = phn_json_get(ed, "retries");
	json_object_object_add(o, "retry", json_object_is_type(v,
	    json_type_object) ? json_object_get(v) : json_object_new_object());
	if (phn_jstr(st, "runner_affinity"))
		put(o, "affinity", phn_jstr(st, "runner_affinity"));
	t = phn_json_num(st, "timeout_seconds", 0);
	if (t <= 0)
		t = phn_json_num(phn_json_get(ed, "timeouts"),
		    "step_timeout_seconds", 0);
	json_object_object_add(o, "timeout_seconds", t <= 0 ? NULL :
	    t == floor(t) && t < 1e15 ? json_object_new_int64((int64_t)t) :
	    json_object_new_double(t));
	return o;
}

/* ---------------------------------------------------------- reading -- */

/* Deterministic jitter in [0, 1) from an attempt name. */
static double
unit_hash(const char *s)
{
	unsigned long long h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (double)(h % 1000003ULL) / 1000003.0;
}

/*
 * The backoff before the attempt after n counted ones, the latest named
 * latest: backoff_seconds as a number, or {base, factor, max, jitter}
 * (base * factor^(n-1), capped at max, times 1 +- jitter).
 */
static double
backoff(struct json_object *retry, long long n, const char *latest)
{
	struct json_object *b = phn_json_get(retry, "backoff_seconds");
	double base, factor, max, jit, d;

	if (phn_json_is_num(b))
		return json_object_get_double(b) > 0 ?
		    json_object_get_double(b) : 0;
	if (!json_object_is_type(b, json_type_object))
		return 0;
	base = num(b, "base", 0);
	factor = num(b, "factor", 2);
	max = num(b, "max", -1);
	jit = num(b, "jitter", 0);
	d = base * pow(factor, (double)(n > 0 ? n - 1 : 0));
	if (max >= 0 && d > max)
		d = max;
	if (jit > 0)
		d *= 1 + jit * (2 * unit_hash(latest) - 1);
	return d > 0 && isfinite(d) ? d : 0;
}

/* Does retry_on_statuses (default ["failed"]) name status or kind? */
static int
retried_on(struct json_object *retry, const char *status, const char *kind)
{
	struct json_object *l = phn_json_get(retry, "retry_on_statuses");
	size_t i, n;

	if (!json_object_is_type(l, json_type_array))
		return strcmp(status, "failed") == 0;
	n = json_object_array_length(l);
	for (i = 0; i < n; i++) {
		const char *x = json_object_get_string(
		    json_object_array_get_idx(l, i));
		if (x && (strcmp(x, status) == 0 || (kind &&
		    strcmp(x, kind) == 0)))
			return 1;
	}
	return 0;
}

static long long
jint(struct json_object *o, const char *k)
{
	struct json_object *v = phn_json_get(o, k);

	return phn_json_is_int(v) && json_object_get_int64(v) > 0 ?
	    (long long)json_object_get_int64(v) : 0;
}

static char *
attempt_rel(struct phn_policy_env *e, const char *job, const char *step,
    const struct phn_asum *a)
{
	return phn_attempt_rel(e->batch, job, step, a->name);
}

static int
has_home(struct phn_policy_env *e, const char *job, const char *step,
    const struct phn_asum *a)
{
	char *h = phn_attempt_path(e->p, e->batch, job, step, a->name,
	    "codex_home");
	struct stat sb;
	int r = stat(h, &sb) == 0 && S_ISDIR(sb.st_mode);

	free(h);
	return r;
}

/*
 * The nonce of key (force_retry_applied_nonce, requeue_applied_nonce)
 * that an earlier claim applied: the newest meta.json that has it.
 */
static long long
applied(struct phn_policy_env *e, const char *job, const char *step,
    const struct phn_asums *as, const char *key)
{
	struct json_object *m, *v;
	long long r = -1;
	size_t i;
	char *f, msg[256];

	for (i = as->n; i > 0 && r < 0; i--) {
		f = phn_attempt_path(e->p, e->batch, job, step,
		    as->v[i - 1].name, "meta.json");
		m = phn_json_load(f, msg, sizeof(msg));
		if ((v = phn_json_get(m, key)) != NULL)
			r = phn_json_is_int(v) ? json_object_get_int64(v) : 0;
		json_object_put(m);
		free(f);
	}
	return r < 0 ? 0 : r;
}

/* Runners that can take work: runner_pool.runner_ids, else every runner
 * with a health file. */
static int
runner_available(struct phn_policy_env *e, const char *runner)
{
	char **v, *f;
	size_t n, i;

	if (e->runners == NULL) {
		e->runners = json_object_new_array();
		n = json_object_is_type(e->runner_ids, json_type_array) ?
		    json_object_array_length(e->runner_ids) : 0;
		for (i = 0; i < n; i++)
			json_object_array_add(e->runners, json_object_get(
			    json_object_array_get_idx(e->runner_ids, i)));
		if (n == 0 && (v = phn_dir_list(e->p->runners, &n)) != NULL) {
			for (i = 0; i < n; i++) {
				f = phn_runner_path(e->p, v[i], "health.json");
				if (access(f, F_OK) == 0)
					json_object_array_add(e->runners,
					    json_object_new_string(v[i]));
				free(f);
			}
			phn_dir_list_free(v, n);
		}
	}
	n = json_object_array_length(e->runners);
	for (i = 0; i < n; i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(
		    e->runners, i)), runner) == 0)
			return 1;
	return n == 0 ? -1 : 0;
}

void
phn_policy_env_free(struct phn_policy_env *e)
{
	json_object_put(e->runners);
	e->runners = NULL;
}

/* ---------------------------------------------------------- verdict -- */

static void
reason(struct phn_verdict *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
reason(struct phn_verdict *v, const char *fmt, ...)
{
	va_list ap;
	char *m;

	va_start(ap, fmt);
	m = phn_vasprintf(fmt, ap);
	va_end(ap);
	if (v->reasons == NULL) {
		v->reasons = json_object_new_array();
		snprintf(v->why, sizeof(v->why), "%s", m);
	}
	json_object_array_add(v->reasons, json_object_new_string(m));
	free(m);
}

static int
decide(struct phn_verdict *v, int verdict, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
decide(struct phn_verdict *v, int verdict, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
	v->verdict = verdict;
	v->status = status;
	return verdict;
}

void
phn_verdict_free(struct phn_verdict *v)
{
	json_object_put(v->reasons);
	json_object_put(v->resume_from);
	json_object_put(v->retry_resume);
	free(v->requeue_target);
	free(v->last_runner);
	free(v->resume_source);
	free(v->thread_id);
	free(v->src_runner);
	free(v->note);
	memset(v, 0, sizeof(*v));
}

/* "STEP" for a step of job, else "JOB/STEP": as a table writes it. */
static char *
ref_name(const char *job, const char *sj, const char *ss)
{
	return strcmp(job, sj) == 0 ? phn_strdup(ss) :
	    phn_asprintf("%s/%s", sj, ss);
}

/* Pick the source attempt of resume_from rf; its index, or -1 with *err. */
static long
resume_pick(const struct phn_asums *as, struct json_object *rf,
    const char *ref, char **err)
{
	const char *sel = phn_jstr(rf, "selector"), *rid = phn_jstr(rf,
	    "run_id");
	long i, pick = -1;

	if (strcmp(sel, "run_id") == 0) {
		if (rid == NULL) {
			*err = phn_strdup("resume_from.run_id is required when "
			    "selector=run_id");
			return -1;
		}
		for (i = 0; i < (long)as->n; i++)
			if (strcmp(as->v[i].run_id, rid) == 0 ||
			    strcmp(as->v[i].name, rid) == 0)
				pick = i;
		if (pick < 0)
			*err = phn_asprintf("resume_from cannot resolve source "
			    "attempt: %s selector=run_id run_id=%s", ref, rid);
		else if (active(&as->v[pick])) {
			*err = phn_asprintf("resume_from source attempt not "
			    "terminal: %s run_id=%s status=%s", ref, rid,
			    phn_ast_name[as->v[pick].st]);
			pick = -1;
		}
		return pick;
	}
	for (i = 0; i < (long)as->n; i++)
		if (active(&as->v[i])) {
			*err = phn_asprintf("resume_from source has an "
			    "unfinished attempt: %s run_id=%s", ref,
			    as->v[i].run_id);
			return -1;
		}
	for (i = 0; i < (long)as->n; i++) {
		const struct phn_asum *a = &as->v[i];
		if (strcmp(sel, "latest") == 0)
			pick = i;
		else if (a->st == PHN_AST_SUCCEEDED && (pick < 0 ||
		    a->ended >= as->v[pick].ended))
			pick = i;
	}
	if (pick < 0)
		*err = phn_asprintf("resume_from cannot resolve source attempt: "
		    "%s selector=%s", ref, sel);
	return pick;
}

/*
 * Resolve the step's resume_from against its source's attempts: the
 * record phn-score shows and meta.json keeps, the source and its thread;
 * a reason for each thing that blocks it.
 */
static void
resume_resolve(struct phn_policy_env *e, const char *job,
    struct json_object *rf, struct phn_verdict *v)
{
	const char *sj = phn_jstr(rf, "job_id"), *ss = phn_jstr(rf, "step_id");
	const char *sel = phn_jstr(rf, "selector");
	const struct phn_asums *as;
	const struct phn_asum *a;
	struct json_object *o = json_object_new_object();
	char *ref = ref_name(job, sj, ss), *err = NULL, *base;
	long pick = -1;
	int avail;

	put(o, "resume_from_step_id", phn_jstr(rf, "ref") ?
	    phn_jstr(rf, "ref") : ref);
	put(o, "job_id", sj);
	put(o, "step_id", ss);
	put(o, "selector", sel);
	v->resume_from = o;
	if ((as = e->atts(e->ctx, sj, ss)) == NULL)
		err = phn_asprintf("resume_from source step not found: %s", ref);
	else
		pick = resume_pick(as, rf, ref, &err);
	if (pick < 0) {
		put(o, "selected_run_id", NULL);
		put(o, "resume_base_dir", NULL);
		put(o, "error", err);
		reason(v, "resume_from: cannot resolve source: %s", err);
		free(err);
		free(ref);
		return;
	}
	a = &as->v[pick];
	v->resume_source = attempt_rel(e, sj, ss, a);
	base = phn_asprintf("%s/codex_home", v->resume_source);
	put(o, "selected_run_id", a->run_id);
	put(o, "source_attempt_dir", v->resume_source);
	put(o, "resume_base_dir", base);
	v->thread_id = dupstr(phn_jstr(rf, "codex_thread_id") ?
	    phn_jstr(rf, "codex_thread_id") : a->thread);
	v->src_runner = dupstr(a->runner);
	v->resume = 1;
	if (!has_home(e, sj, ss, a))
		reason(v, "resume_from: resume base missing: %s", base);
	else if (e->locality && !e->lim->shared_fs && !e->lim->transfer) {
		if (a->runner == NULL)
			reason(v, "resume_from locality: cannot determine "
			    "source runner_id for %s.%s", sj, ss);
		else if ((avail = runner_available(e, a->runner)) == 0)
			reason(v, "resume_from locality: source runner %s not "
			    "available (shared_filesystem=false)", a->runner);
	}
	free(base);
	free(ref);
}

/* Retry mode resume_last_attempt: the newest attempt with a session. */
static void
retry_resume(struct phn_policy_env *e, const char *job, const char *step,
    const struct phn_asums *as, struct phn_verdict *v)
{
	size_t i;

	for (i = as->n; i > 0; i--) {
		const struct phn_asum *a = &as->v[i - 1];
		if (a->thread == NULL || !has_home(e, job, step, a))
			continue;
		v->resume = 1;
		v->resume_source = attempt_rel(e, job, step, a);
		v->thread_id = phn_strdup(a->thread);
		v->src_runner = dupstr(a->runner);
		v->retry_resume = json_object_new_object();
		put(v->retry_resume, "run_id", a->run_id);
		put(v->retry_resume, "attempt_dir", v->resume_source);
		return;
	}
	v->note = phn_strdup("retries.mode resume_last_attempt: no earlier "
	    "attempt has a codex thread id and a codex_home; runs a fresh exec");
}

/* Rules 2-5: may the step have another attempt?  PHN_V_READY if so. */
static int
retry_rule(struct phn_policy_env *e, const struct phn_asums *as,
    struct json_object *sd, struct json_object *ovs, struct phn_verdict *v)
{
	struct json_object *retry = phn_json_get(sd, "retry");
	const struct phn_asum *l = as->n ? &as->v[as->n - 1] : NULL;
	long long counted = 0, trailing = 0, maxa;
	const char *fst;
	int succ = 0;
	size_t i;

	for (i = 0; i < as->n; i++) {
		succ |= as->v[i].st == PHN_AST_SUCCEEDED;
		if (as->v[i].hf) {
			trailing++;
			continue;
		}
		if (!phn_asum_counted(&as->v[i]))
			continue;
		trailing = 0;
		counted++;
	}
	v->attempt_number = counted + 1;
	fst = phn_jstr(phn_json_get(ovs, "forced_terminal"), "status");
	if (phn_ast_of(fst) >= PHN_AST_FAILED) {
		v->forced = 1;
		return decide(v, PHN_V_DONE, phn_ast_of(fst),
		    "forced terminal: %s", fst);
	}
	if (e->closed != NULL && succ)
		return decide(v, PHN_V_DONE, PHN_AST_SUCCEEDED, "succeeded");
	if (e->closed != NULL && l == NULL) {
		reason(v, "batch closed: %s", e->closed);
		return v->verdict = PHN_V_BLOCKED;
	}
	if (e->closed != NULL)
		return decide(v, PHN_V_DONE, l->st, "batch closed: %s",
		    e->closed);
	if (v->force_nonce > 0) {
		v->why_ready = "force_retry";
		return PHN_V_READY;
	}
	if (succ)
		return decide(v, PHN_V_DONE, PHN_AST_SUCCEEDED, "succeeded");
	if (l == NULL) {
		v->why_ready = "new";
		return PHN_V_READY;
	}
	if (l->rl && !l->hf) {
		v->why_ready = "rate_limit_retry";
		return PHN_V_READY;
	}
	if (l->hf) {
		if (trailing > e->lim->max_harness)
			return decide(v, PHN_V_DONE, l->st, "%lld harness faults "
			    "in a row (limits.max_harness_retries is %lld)",
			    trailing, e->lim->max_harness);
		v->why_ready = "harness_retry";
		return PHN_V_READY;
	}
	maxa = jint(retry, "max_attempts");
	if (maxa == 0)
		maxa = 1;
	if (counted >= maxa)
		return decide(v, PHN_V_DONE, l->st, "%s after %lld of "
		    "max_attempts %lld", phn_ast_name[l->st], counted, maxa);
	if (!retried_on(retry, phn_ast_name[l->st], l->kind))
		return decide(v, PHN_V_DONE, l->st, "%s%s%s is not in "
		    "retry_on_statuses", phn_ast_name[l->st], l->kind ? "/" : "",
		    l->kind ? l->kind : "");
	if (l->ended >= 0)
		v->not_before = l->ended + backoff(retry, counted,
		    l->name);
	v->why_ready = "retry";
	return PHN_V_READY;
}

/* The operator's nonces: a pending force-retry, a pending requeue. */
static void
nonces(struct phn_policy_env *e, const char *job, const char *step,
    const struct phn_asums *as, struct json_object *ovs,
    struct phn_verdict *v)
{
	struct json_object *rq = phn_json_get(ovs, "requeue");
	long long fn = jint(ovs, "force_retry_nonce");
	long long rn = jint(ovs, "requeue_nonce");

	if (rn == 0)
		rn = jint(rq, "nonce");
	if (fn > 0) {
		v->applied_force = applied(e, job, step, as,
		    "force_retry_applied_nonce");
		if (fn > v->applied_force)
			v->force_nonce = fn;
	}
	if (rn > 0) {
		v->applied_requeue = applied(e, job, step, as,
		    "requeue_applied_nonce");
		if (rn > v->applied_requeue) {
			v->requeue_nonce = rn;
			if (phn_jstr(rq, "target_runner_id") &&
			    *phn_jstr(rq, "target_runner_id"))
				v->requeue_target = phn_strdup(phn_jstr(rq,
				    "target_runner_id"));
			else
				v->requeue_different = json_object_get_boolean(
				    phn_json_get(rq, "different_from_last"));
		}
	}
}

/*
 * Evaluate step of job, defined by sd (phn_policy_stepdef), with its
 * overrides ovs (overrides.json's steps.STEP, or NULL).  Returns and
 * fills in v->verdict; free v with phn_verdict_free.
 */
int
phn_policy_eval(struct phn_policy_env *e, const char *job, const char *step,
    struct json_object *sd, struct json_object *ovs, struct phn_verdict *v)
{
	static const struct phn_asums none;
	const struct phn_asums *as, *ds;
	struct json_object *deps, *rf, *rr = NULL;
	const char *mode;
	char *dj, *ds_id;
	size_t i, k, n;
	int ok;

	memset(v, 0, sizeof(*v));
	v->active = -1;
	/* The resume source is resolved for the record whatever the
	 * verdict; its reasons count only where rule 6 asks. */
	if ((rf = phn_json_get(sd, "resume_from")) != NULL) {
		resume_resolve(e, job, rf, v);
		rr = v->reasons;
		v->reasons = NULL;
		v->why[0] = '\0';
	}
	if ((as = e->atts(e->ctx, job, step)) == NULL)
		as = &none;
	if (as->n > 0 && as->v[as->n - 1].runner)
		v->last_runner = phn_strdup(as->v[as->n - 1].runner);
	for (i = 0; i < as->n; i++)
		if (active(&as->v[i]))
			v->active = (long)i;
	if (v->active >= 0) {
		json_object_put(rr);
		return decide(v, PHN_V_ACTIVE, as->v[v->active].st,
		    "attempt %s is %s", as->v[v->active].name,
		    phn_ast_name[as->v[v->active].st]);
	}
	nonces(e, job, step, as, ovs, v);
	if (retry_rule(e, as, sd, ovs, v) != PHN_V_READY) {
		json_object_put(rr);
		return v->verdict;
	}
	/* Rule 6 too: a batch whose token budget is spent runs nothing new. */
	if (e->budget != NULL && e->budget->exhausted)
		reason(v, "budget_exhausted: %lld tokens used of "
		    "max_total_tokens %lld", e->budget->used, e->budget->max);
	deps = phn_json_get(sd, "depends_on");
	n = json_object_is_type(deps, json_type_array) ?
	    json_object_array_length(deps) : 0;
	for (i = 0; i < n; i++) {
		const char *d = json_object_get_string(
		    json_object_array_get_idx(deps, i));
		if (phn_ref_split(d, &dj, &ds_id) == -1 ||
		    (ds = e->atts(e->ctx, dj, ds_id)) == NULL)
			reason(v, "depends_on: %s not found", d ? d : "?");
		else {
			for (k = 0, ok = 0; k < ds->n && !ok; k++)
				ok = ds->v[k].st == PHN_AST_SUCCEEDED;
			if (!ok)
				reason(v, "depends_on: %s.%s not succeeded", dj,
				    ds_id);
		}
		free(dj);
		free(ds_id);
	}
	n = rr ? json_object_array_length(rr) : 0;
	for (i = 0; i < n; i++)
		reason(v, "%s", json_object_get_string(
		    json_object_array_get_idx(rr, i)));
	json_object_put(rr);
	mode = phn_jstr(phn_json_get(sd, "retry"), "mode");
	if (rf == NULL && as->n > 0 && mode != NULL &&
	    strcmp(mode, "resume_last_attempt") == 0)
		retry_resume(e, job, step, as, v);
	if (v->reasons == NULL && e->pause_until > e->now &&
	    v->not_before < e->pause_until) {
		char iso[PHN_ISO_LEN];
		phn_iso(e->pause_until, iso);
		v->not_before = e->pause_until;
		return decide(v, PHN_V_WAIT, 0, "rate-limit pause until %s",
		    iso);
	}
	if (v->reasons != NULL) {
		v->not_before = 0;
		v->verdict = PHN_V_BLOCKED;
	} else if (v->not_before > e->now)
		decide(v, PHN_V_WAIT, 0, "backoff until %.3f", v->not_before);
	else {
		v->not_before = 0;
		decide(v, PHN_V_READY, 0, "runnable");
	}
	return v->verdict;
}

/*
 * Record the decision in a new attempt's meta.json m: the attempt
 * number, the invocation and what it resumes, the nonces it applies.
 * phn-spawn runs exactly this.
 */
void
phn_policy_meta(const struct phn_verdict *v, struct json_object *m)
{
	json_object_object_add(m, "attempt_number",
	    json_object_new_int64(v->attempt_number));
	put(m, "invocation", v->resume ? "resume" : "exec");
	if (v->resume_from != NULL) {
		json_object_object_add(m, "resume_from",
		    json_object_get(v->resume_from));
		json_object_object_add(m, "parent_run_id", json_object_get(
		    phn_json_get(v->resume_from, "selected_run_id")));
	}
	if (v->retry_resume != NULL) {
		json_object_object_add(m, "retry_resume_from",
		    json_object_get(v->retry_resume));
		json_object_object_add(m, "parent_run_id", json_object_get(
		    phn_json_get(v->retry_resume, "run_id")));
	}
	if (v->resume) {
		put(m, "resume_source", v->resume_source);
		put(m, "codex_thread_id", v->thread_id);
	}
	if (v->note != NULL)
		put(m, "invocation_note", v->note);
	if (v->force_nonce > 0 || v->applied_force > 0)
		json_object_object_add(m, "force_retry_applied_nonce",
		    json_object_new_int64(v->force_nonce > 0 ? v->force_nonce :
		    v->applied_force));
	if (v->requeue_nonce > 0 || v->applied_requeue > 0)
		json_object_object_add(m, "requeue_applied_nonce",
		    json_object_new_int64(v->requeue_nonce > 0 ?
		    v->requeue_nonce : v->applied_requeue));
}
