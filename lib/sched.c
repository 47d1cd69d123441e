/*
 * sched.c - the scheduler's derived state and its rules: the schedule
 * index, the ready index, the active-slot directories, the runnable
 * predicate, attempt creation, and what happens when an attempt ends.
 *
 * Attempt directories are the source of truth.  Everything below is
 * derived, and rebuilt from the attempts by phn_sched_rescan():
 *
 *   runs/B/_sched/index.json         batch settings and the job list
 *   runs/B/_sched/jobs/J.json        per step: depends_on, resume_from,
 *                                    retry policy, affinity, timeout, and
 *                                    rdeps (the steps that depend on it or
 *                                    resume from it, in any job)
 *   runs/B/_sched/ready.json         the ready index was (re)built
 *   runs/B/_ready/J@S                a step believed runnable, holding
 *                                    {"not_before": EPOCH}; a hint only
 *   runs/B/_claimed/J@S@TOKEN        a ready entry a claimer took by rename
 *   runs/B/_active/J@S@ATTEMPT       one per queued or running attempt
 *   runners/R/active/B@J@S@ATTEMPT   the same, per runner (capacity)
 *   runs/_system/workdir_slots/H/B@J@S@ATTEMPT
 *                                    the same, per limited workdir (H is a
 *                                    digest of its path, written in H/.path)
 *
 * Lock order: steps/S/step.lock (re-check and creation), _active/.lock,
 * runners/R/active/.lock, workdir_slots/H/.lock; state.lock and
 * current.lock are innermost.  Slot entries are created only under their
 * directory's lock, together with the attempt, and removed by anyone
 * without it; so a count taken under the lock is never too low, and an
 * entry seen under the lock always has its attempt directory behind it
 * (unless its creator crashed, which the counter repairs).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <math.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "claim.h"

#define SCHED_LOCK_WAIT	60

static int
touch_new(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd == -1)
		return errno == EEXIST ? 0 : -1;
	return close(fd);
}

static int
unlink_quiet(const char *path)
{
	return unlink(path) == -1 && errno != ENOENT ? -1 : 0;
}

/* A derived hint whose loss or truncation readers tolerate: no fsync. */
static int
write_hint(const char *path, const char *buf)
{
	return phn_atomic_write(path, buf, strlen(buf), PHN_MKDIR);
}

/*
 * The schedule index.
 */

static void
rdeps_add(struct json_object *rdeps, const char *target, const char *who)
{
	struct json_object *a;

	if (!json_object_object_get_ex(rdeps, target, &a)) {
		a = json_object_new_array();
		json_object_object_add(rdeps, target, a);
	}
	json_object_array_add(a, json_object_new_string(who));
}

/* A step's entry in the schedule index: its definition as the step
 * policy reads it, and what the claimer adds to meta.json. */
static struct json_object *
step_entry(struct json_object *st, const char *job, size_t k,
    struct json_object *ed)
{
	struct json_object *o = phn_policy_stepdef(job, st, ed);

	json_object_object_add(o, "index", json_object_new_int64((int64_t)k));
	if (phn_jstr(st, "prompt_sha256"))
		json_object_object_add(o, "prompt_sha256", json_object_new_string(
		    phn_jstr(st, "prompt_sha256")));
	json_object_object_add(o, "output_schema", json_object_new_boolean(
	    phn_jstr(st, "output_schema_sha256") != NULL));
	return o;
}

/* A job's index document: its settings, its definition, its steps. */
static struct json_object *
index_job(struct json_object *job, size_t i, struct json_object *ed)
{
	struct json_object *jd = json_object_new_object(), *sd, *st, *steps;
	const char *jid = phn_jstr(job, "job_id");
	const char *mode = json_object_get_string(phn_workspace_key(job,
	    phn_json_get(ed, "workspace_policy"), "mode"));
	size_t k, ns;

	json_object_object_add(jd, "job_id", json_object_new_string(jid));
	json_object_object_add(jd, "index", json_object_new_int64((int64_t)i));
	json_object_object_add(jd, "workdir", phn_json_string(phn_jstr(job,
	    "job_workdir")));
	json_object_object_add(jd, "workspace_mode",
	    json_object_new_string(mode ? mode : "shared"));
	json_object_object_add(jd, "job", json_object_get(job));
	sd = json_object_new_object();
	json_object_object_add(jd, "steps", sd);
	steps = phn_json_get(job, "steps");
	ns = json_object_is_type(steps, json_type_array) ?
	    json_object_array_length(steps) : 0;
	for (k = 0; k < ns; k++) {
		st = json_object_array_get_idx(steps, k);
		if (phn_jstr(st, "step_id"))
			json_object_object_add(sd, phn_jstr(st, "step_id"),
			    step_entry(st, jid, k, ed));
	}
	return jd;
}

/*
 * Every step's reverse dependencies, from the steps' definitions: the
 * steps of any job that depend on it or resume from it.
 */
static void
index_rdeps(struct json_object *jds)
{
	struct json_object *rdeps = json_object_new_object(), *v, *rf;
	size_t i, q, n, nj = json_object_array_length(jds);
	char *me, *t;

	for (i = 0; i < nj; i++) {
		struct json_object *jd = json_object_array_get_idx(jds, i);
		const char *jid = phn_jstr(jd, "job_id");
		json_object_object_foreach(phn_json_get(jd, "steps"), sid, sd) {
			me = phn_asprintf("%s/%s", jid, sid);
			v = phn_json_get(sd, "depends_on");
			n = json_object_array_length(v);
			for (q = 0; q < n; q++)
				rdeps_add(rdeps, json_object_get_string(
				    json_object_array_get_idx(v, q)), me);
			if ((rf = phn_json_get(sd, "resume_from")) != NULL) {
				t = phn_asprintf("%s/%s", phn_jstr(rf, "job_id"),
				    phn_jstr(rf, "step_id"));
				rdeps_add(rdeps, t, me);
				free(t);
			}
			free(me);
		}
	}
	for (i = 0; i < nj; i++) {
		struct json_object *jd = json_object_array_get_idx(jds, i);
		const char *jid = phn_jstr(jd, "job_id");
		json_object_object_foreach(phn_json_get(jd, "steps"), sid, sd) {
			me = phn_asprintf("%s/%s", jid, sid);
			v = phn_json_get(rdeps, me);
			json_object_object_add(sd, "rdeps", v ? json_object_get(v) :
			    json_object_new_array());
			free(me);
		}
	}
	json_object_put(rdeps);
}

/* The batch's index.json: its settings and its jobs, in order. */
static struct json_object *
index_info(const char *batch, struct json_object *meta, struct json_object *jds)
{
	struct json_object *info = json_object_new_object(), *jl, *v;
	struct json_object *ed = phn_json_get(meta, "effective_defaults");
	size_t i, nj = json_object_array_length(jds);

	json_object_object_add(info, "version", json_object_new_int(1));
	json_object_object_add(info, "batch_id", json_object_new_string(batch));
	v = phn_json_get(meta, "concurrency");
	json_object_object_add(info, "concurrency", phn_json_is_int(v) ?
	    json_object_new_int64(json_object_get_int64(v)) : NULL);
	v = phn_json_get(ed, "execution_policy");
	json_object_object_add(info, "execution_policy",
	    json_object_is_type(v, json_type_object) ? json_object_get(v) :
	    json_object_new_object());
	json_object_object_add(info, "effective_defaults",
	    json_object_is_type(ed, json_type_object) ? json_object_get(ed) :
	    json_object_new_object());
	v = phn_json_get(ed, "scoreboard");
	json_object_object_add(info, "scoreboard",
	    json_object_is_type(v, json_type_object) ? json_object_get(v) :
	    json_object_new_object());
	jl = json_object_new_array();
	for (i = 0; i < nj; i++)
		json_object_array_add(jl, json_object_get(phn_json_get(
		    json_object_array_get_idx(jds, i), "job_id")));
	json_object_object_add(info, "jobs", jl);
	return info;
}

static int
put_doc(const char *dir, const char *name, struct json_object *o)
{
	char *f = phn_path_join(dir, name), *s = phn_json_pretty(o);
	int r = phn_write_new(f, s, strlen(s));

	free(s);
	free(f);
	return r;
}

/* Write the index into the new directory tmp: jobs/J.json, index.json. */
static int
index_write(const char *tmp, struct json_object *info,
    struct json_object *jds, char *msg, size_t msglen)
{
	char *jdir = phn_path_join(tmp, "jobs"), *name;
	size_t i, nj = json_object_array_length(jds);
	int r = 0;

	if (mkdir(jdir, 0755) == -1) {
		snprintf(msg, msglen, "unable to create %s: %s", jdir,
		    strerror(errno));
		free(jdir);
		return -1;
	}
	for (i = 0; i < nj; i++) {
		struct json_object *jd = json_object_array_get_idx(jds, i);
		name = phn_asprintf("%s.json", phn_jstr(jd, "job_id"));
		r = put_doc(jdir, name, jd);
		if (r == -1)
			snprintf(msg, msglen, "unable to write %s/%s: %s", jdir,
			    name, strerror(errno));
		free(name);
		if (r == -1)
			break;
	}
	if (r == 0 && (r = put_doc(tmp, "index.json", info)) == -1)
		snprintf(msg, msglen, "unable to write %s/index.json: %s", tmp,
		    strerror(errno));
	if (r == 0 && (r = phn_syncfs(tmp)) == -1)
		snprintf(msg, msglen, "unable to sync %s: %s", tmp,
		    strerror(errno));
	free(jdir);
	return r;
}

/* Build runs/B/_sched from batch_meta.json: in a temp dir, then rename. */
static int
index_build(const struct phn_paths *p, const char *batch, char *msg,
    size_t msglen)
{
	struct json_object *meta, *jobs, *job, *jds, *info;
	char *tmp, *dst = NULL;
	size_t i, nj;
	int r = -1;

	if ((meta = phn_batch_meta(p, batch, msg, msglen)) == NULL)
		return -1;
	jobs = phn_json_get(meta, "jobs");
	nj = json_object_is_type(jobs, json_type_array) ?
	    json_object_array_length(jobs) : 0;
	jds = json_object_new_array();
	for (i = 0; i < nj; i++) {
		job = json_object_array_get_idx(jobs, i);
		if (phn_jstr(job, "job_id") != NULL)
			json_object_array_add(jds, index_job(job, i,
			    phn_json_get(meta, "effective_defaults")));
	}
	index_rdeps(jds);
	info = index_info(batch, meta, jds);
	tmp = phn_batch_path(p, batch, ".sched-XXXXXX");
	if (mkdtemp(tmp) == NULL || chmod(tmp, 0755) == -1)
		snprintf(msg, msglen, "unable to create %s: %s", tmp,
		    strerror(errno));
	else if (index_write(tmp, info, jds, msg, msglen) == 0) {
		dst = phn_batch_path(p, batch, "_sched");
		if (rename(tmp, dst) == -1 && errno != EEXIST &&
		    errno != ENOTEMPTY)
			snprintf(msg, msglen, "unable to rename %s to %s: %s",
			    tmp, dst, strerror(errno));
		else
			r = 0;
	}
	phn_rmtree(tmp);	/* gone after a successful rename */
	free(tmp);
	free(dst);
	json_object_put(info);
	json_object_put(jds);
	json_object_put(meta);
#ifdef __GLIBC__
	malloc_trim(0);	/* a big batch_meta.json is parsed only once */
#endif
	return r;
}

/*
 * Make sure batch's schedule index exists, building it on first sight.
 * Returns 1 if it was built now, 0 if it was there, -1 with msg.
 */
int
phn_sched_index(const struct phn_paths *p, const char *batch, char *msg,
    size_t msglen)
{
	char *f = phn_batch_path(p, batch, "_sched/index.json"), *lp;
	int fd, r;

	if (access(f, F_OK) == 0) {
		free(f);
		return 0;
	}
	lp = phn_batch_path(p, batch, "_sched.lock");
	if ((fd = phn_lock_wait(lp, 120)) == -1) {
		snprintf(msg, msglen, "unable to lock %s: %s", lp,
		    strerror(errno));
		free(lp);
		free(f);
		return -1;
	}
	free(lp);
	r = access(f, F_OK) == 0 ? 0 : index_build(p, batch, msg, msglen) == 0 ?
	    1 : -1;
	phn_lock_close(fd);
	free(f);
	return r;
}

struct json_object *
phn_sched_info(const struct phn_paths *p, const char *batch)
{
	char *f = phn_batch_path(p, batch, "_sched/index.json");
	struct json_object *o = phn_json_load_doc(f, "jobs", json_type_array);

	free(f);
	return o;
}

/* A job's index document, or NULL (no such job, or no index). */
struct json_object *
phn_sched_job(const struct phn_paths *p, const char *batch, const char *job)
{
	char *f, *n;
	struct json_object *o;

	if (!phn_id_valid(job, strlen(job))) {
		errno = ENOENT;
		return NULL;
	}
	n = phn_asprintf("_sched/jobs/%s.json", job);
	f = phn_batch_path(p, batch, n);
	free(n);
	o = phn_json_load_doc(f, "steps", json_type_object);
	free(f);
	return o;
}

/*
 * The one per-job view of batch_meta.json: {batch_id, effective_defaults,
 * jobs: [the job]}, shaped like batch_meta.json with only that job, from
 * the schedule index (built on first sight), so that running an attempt
 * reads its job and not the whole batch.  An index built by an older
 * version lacks the job: then batch_meta.json itself.  NULL with msg.
 */
struct json_object *
phn_sched_jobview(const struct phn_paths *p, const char *batch,
    const char *job, char *msg, size_t msglen)
{
	struct json_object *info, *jd, *o = NULL, *a;

	if (phn_sched_index(p, batch, msg, msglen) == -1)
		return NULL;
	info = phn_sched_info(p, batch);
	jd = phn_sched_job(p, batch, job);
	if (phn_json_get(jd, "job") != NULL &&
	    phn_json_get(info, "effective_defaults") != NULL) {
		o = json_object_new_object();
		json_object_object_add(o, "batch_id",
		    json_object_new_string(batch));
		json_object_object_add(o, "effective_defaults", json_object_get(
		    phn_json_get(info, "effective_defaults")));
		a = json_object_new_array();
		json_object_array_add(a, json_object_get(phn_json_get(jd, "job")));
		json_object_object_add(o, "jobs", a);
	} else if (jd != NULL || errno != ENOENT)
		o = phn_batch_meta(p, batch, msg, msglen);
	else
		snprintf(msg, msglen, "no job %s in batch %s", job, batch);
	json_object_put(jd);
	json_object_put(info);
	return o;
}

/*
 * The ready index.  An entry is a hint: claimers re-check the step under
 * its lock, so a stale or duplicate entry costs a little time, never a
 * wrong run.  Written without fsync; a torn entry reads as "now".
 */
int
phn_sched_ready_add(const struct phn_paths *p, const char *batch,
    const char *job, const char *step, double not_before)
{
	char *f = phn_ready_entry(p, batch, job, step);
	char buf[64];
	int r;

	snprintf(buf, sizeof(buf), "{\"not_before\": %.6f}\n", not_before);
	r = write_hint(f, buf);
	free(f);
	return r;
}

/* An entry's not-before time: 0 for "now" (or unreadable); -1 if gone. */
double
phn_sched_ready_time(const char *path)
{
	char buf[128], *s;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? -1 : 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if ((s = strstr(buf, "not_before")) == NULL ||
	    (s = strchr(s, ':')) == NULL)
		return 0;
	return strtod(s + 1, NULL) > 0 ? strtod(s + 1, NULL) : 0;
}

/*
 * Attempts of a step, oldest first (names start with the claim stamp),
 * as the step policy sees them.
 */
static char *
attempts_dir(const struct phn_paths *p, const char *batch, const char *job,
    const char *step)
{
	return phn_attempt_path(p, batch, job, step, NULL, NULL);
}

static void
atts_load(const struct phn_paths *p, const char *batch, const char *job,
    const char *step, struct phn_asums *as)
{
	char *ad = attempts_dir(p, batch, job, step), **v, *d;
	struct json_object *st;
	size_t n, i;

	memset(as, 0, sizeof(*as));
	if ((v = phn_dir_list(ad, &n)) == NULL) {
		free(ad);
		return;
	}
	as->v = phn_malloc((n + 1) * sizeof(*as->v));
	for (i = 0; i < n; i++) {
		phn_asum_init(&as->v[i], v[i]);
		d = phn_path_join(ad, v[i]);
		if ((st = phn_state_read(d)) != NULL)
			phn_asum_state(&as->v[i], st);
		json_object_put(st);
		free(d);
	}
	free(v);	/* the names now belong to as */
	as->n = n;
	free(ad);
}

static struct json_object *
att_meta(const char *dir)
{
	char *f = phn_path_join(dir, "meta.json");
	struct json_object *o = phn_json_load_doc(f, NULL, json_type_object);

	free(f);
	return o;
}

/*
 * The attempt lists of the steps one evaluation (or a whole rescan)
 * looked at, by "JOB/STEP": an open-addressing table that owns them.
 */
struct acache {
	const struct phn_paths *p;
	const char *batch;
	char	**key;
	struct phn_asums *v;
	size_t	 n, cap;
};

static void
acache_init(struct acache *c, const struct phn_paths *p, const char *batch,
    size_t cap)
{
	memset(c, 0, sizeof(*c));
	c->p = p;
	c->batch = batch;
	c->cap = cap < 16 ? 16 : cap;
	c->key = calloc(c->cap, sizeof(*c->key));
	c->v = calloc(c->cap, sizeof(*c->v));
	if (c->key == NULL || c->v == NULL)
		phn_die(PHN_EXIT_TEMP, "out of memory");
}

static void
acache_free(struct acache *c)
{
	size_t i;

	for (i = 0; i < c->cap; i++)
		if (c->key[i]) {
			free(c->key[i]);
			phn_asums_free(&c->v[i]);
		}
	free(c->key);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* The slot of job/step: its index; *found tells whether it is filled. */
static size_t
acache_slot(struct acache *c, const char *k, int *found)
{
	size_t h, i;

	for (h = 5381, i = 0; k[i]; i++)
		h = h * 33 + (unsigned char)k[i];
	for (i = h % c->cap; c->key[i]; i = (i + 1) % c->cap)
		if (strcmp(c->key[i], k) == 0) {
			*found = 1;
			return i;
		}
	*found = 0;
	return i;
}

static void
acache_grow(struct acache *c)
{
	struct acache n;
	size_t i, j;
	int f;

	acache_init(&n, c->p, c->batch, c->cap * 2);
	for (i = 0; i < c->cap; i++)
		if (c->key[i]) {
			j = acache_slot(&n, c->key[i], &f);
			n.key[j] = c->key[i];
			n.v[j] = c->v[i];
			n.n++;
		}
	free(c->key);
	free(c->v);
	*c = n;
}

/* The policy's view of a step's attempts (phn_policy_env.atts). */
static const struct phn_asums *
acache_get(void *ctx, const char *job, const char *step)
{
	struct acache *c = ctx;
	char *k;
	size_t i;
	int found;

	if (c->n * 2 >= c->cap)
		acache_grow(c);
	k = phn_asprintf("%s/%s", job, step);
	i = acache_slot(c, k, &found);
	if (found) {
		free(k);
		return &c->v[i];
	}
	c->key[i] = k;
	c->n++;
	atts_load(c->p, c->batch, job, step, &c->v[i]);
	return &c->v[i];
}

/* Reload a cached list after its attempts changed. */
static void
acache_drop(struct acache *c, const char *job, const char *step)
{
	char *k = phn_asprintf("%s/%s", job, step);
	size_t i;
	int found;

	i = acache_slot(c, k, &found);
	if (found) {
		phn_asums_free(&c->v[i]);
		atts_load(c->p, c->batch, job, step, &c->v[i]);
	}
	free(k);
}

/*
 * Harness faults.  End an attempt found in a fault state (lease expired,
 * spawner gone, or never given a state by a claimer that died) through
 * the shared phn_attempt_reap().  Returns 1 if it ended it.
 */
static int
expire(struct phn_sched *s, const char *dir, double now)
{
	struct json_object *st = phn_state_read(dir);
	struct phn_attempt a;
	char *sf;
	int fault, r, missing;

	sf = phn_path_join(dir, "state.json");
	missing = access(sf, F_OK) == -1 && errno == ENOENT;
	free(sf);
	if (st == NULL && missing)
		fault = PHN_FAULT_LEASE;
	else if (st == NULL)
		return 0;
	else
		fault = phn_attempt_judge(s->p, dir, st, now, s->lim.lease,
		    s->lim.stale, s->lim.stuck);
	json_object_put(st);
	if (fault != PHN_FAULT_LEASE && fault != PHN_FAULT_ORPHAN)
		return 0;
	if (phn_attempt_parse(s->p, dir, &a) == -1)
		return 0;
	/*
	 * A spawner may take the attempt between the check above and the
	 * reap: reap under its spawn.lock, re-checking there (liveness.c).
	 */
	if (missing)
		r = phn_attempt_reap(s->p, &a, fault);
	else {
		const char *kind;
		r = phn_attempt_reap_locked(s->p, &a, s->lim.lease,
		    s->lim.stale, &kind);
	}
	phn_attempt_free(&a);
	return r == 1;
}

/*
 * Evaluate a step with the step policy, from its attempts (through the
 * cache c).  With s->reap, faulted attempts of the step (expired lease,
 * dead spawner, missing state) are ended first.  The caller checks the
 * overrides' readability.  pause: the store's rate-limit pause (claims
 * only; 0 for the ready index, so that lifting a pause early frees it).
 */
static int
evaluate(struct phn_sched *s, struct acache *c, struct json_object *jd,
    const char *step, struct json_object *ov, double now, double pause,
    struct phn_verdict *v)
{
	struct phn_policy_env env;
	const struct phn_asums *as;
	const char *job = phn_jstr(jd, "job_id");
	struct json_object *sd = phn_json_get(phn_json_get(jd, "steps"), step);
	char *ad, *d;
	size_t i;
	int rounds, again;

	if (job == NULL || sd == NULL) {
		memset(v, 0, sizeof(*v));
		snprintf(v->why, sizeof(v->why), "no such step");
		return v->verdict = PHN_V_DONE;
	}
	for (rounds = 0, again = s->reap; again && rounds < 3; rounds++) {
		as = acache_get(c, job, step);
		ad = attempts_dir(s->p, c->batch, job, step);
		for (i = 0, again = 0; i < as->n; i++) {
			if (as->v[i].st != PHN_AST_QUEUED &&
			    as->v[i].st != PHN_AST_RUNNING)
				continue;
			d = phn_path_join(ad, as->v[i].name);
			again |= expire(s, d, now);
			free(d);
		}
		free(ad);
		if (again)
			acache_drop(c, job, step);
	}
	memset(&env, 0, sizeof(env));
	env.p = s->p;
	env.batch = c->batch;
	env.lim = &s->lim;
	env.atts = acache_get;
	env.ctx = c;
	env.now = now;
	env.pause_until = pause;
	env.budget = phn_budget_cached(s->p, c->batch, phn_now());
	phn_policy_eval(&env, job, step, sd, phn_json_get(phn_json_get(ov,
	    "steps"), step), v);
	phn_policy_env_free(&env);
	return v->verdict;
}

/*
 * The step policy's verdict on one step of batch (jd: its job's schedule
 * index entry, ov: the job's overrides or NULL), as the claimer would see
 * it now; with s->reap 0 nothing is ended.  For phn-fsck's ready-index
 * check.
 */
int
phn_sched_step_verdict(struct phn_sched *s, const char *batch,
    struct json_object *jd, const char *step, struct json_object *ov,
    struct phn_verdict *v)
{
	struct acache c;
	int r;

	acache_init(&c, s->p, batch, 16);
	r = evaluate(s, &c, jd, step, ov, phn_now(), 0, v);	/* as the ready index */
	acache_free(&c);
	return r;
}

/*
 * Slot directories: _active/ of a batch, runners/R/active/, and
 * workdir_slots/H/.  Entry names locate the attempt.
 */
char *
phn_sched_workdir_dir(const struct phn_paths *p, const char *workdir)
{
	char hex[PHN_SHA256_HEX];
	char *sys = phn_system_path(p, "workdir_slots"), *r;

	phn_sha256_hex(workdir, strlen(workdir), hex);
	r = phn_asprintf("%s/%.16s", sys, hex);
	free(sys);
	return r;
}

/* The attempt dir an entry names; batch NULL means the name starts with it. */
static char *
slot_attempt(const struct phn_paths *p, const char *batch, const char *name,
    char **bp, char **jp, char **sp)
{
	char *f[4], *r;
	int want = batch ? 3 : 4;

	if (phn_entry_split(name, f, want) == -1)
		return NULL;
	if (batch == NULL)
		batch = f[0];
	r = phn_attempt_path(p, batch, f[want - 3], f[want - 2], f[want - 1],
	    NULL);
	if (bp)
		*bp = phn_strdup(batch);
	if (jp)
		*jp = phn_strdup(f[want - 3]);
	if (sp)
		*sp = phn_strdup(f[want - 2]);
	free(f[0]);
	return r;
}

/*
 * Count a slot directory's entries; the caller holds its lock.  With
 * check, first drop the entries whose attempt ended or vanished (a crashed
 * ender never called phn_sched_attempt_ended) and end the ones in a fault
 * state, so a leaked entry cannot hold a slot.
 */
long long
phn_sched_slots(struct phn_sched *s, const char *dir, const char *batch,
    int check, double now)
{
	DIR *d;
	struct dirent *de;
	long long n = 0;
	struct stat sb;

	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		char *ad, *b = NULL, *j = NULL, *st = NULL, *e;
		struct json_object *state;
		if (de->d_name[0] == '.')
			continue;
		if (!check) {
			n++;
			continue;
		}
		e = phn_path_join(dir, de->d_name);
		if ((ad = slot_attempt(s->p, batch, de->d_name, &b, &j,
		    &st)) == NULL) {
			unlink_quiet(e);	/* not ours */
			free(e);
			continue;
		}
		if (stat(ad, &sb) == -1 && errno == ENOENT) {
			unlink_quiet(e);
			phn_sched_ready_add(s->p, b, j, st, 0);
		} else if ((state = phn_state_read(ad)) != NULL &&
		    phn_status_terminal(phn_jstr(state, "status"))) {
			struct phn_attempt a;
			if (phn_attempt_parse(s->p, ad, &a) == 0) {
				phn_current_note(s->p, &a, state);
				phn_sched_attempt_ended(s->p, &a);
				phn_attempt_free(&a);
			}
			unlink_quiet(e);
			json_object_put(state);
		} else {
			json_object_put(state);
			if (expire(s, ad, now))
				unlink_quiet(e);
			else
				n++;
		}
		free(e);
		free(ad);
		free(b);
		free(j);
		free(st);
	}
	closedir(d);
	return n;
}


/*
 * What the scheduler learns when an attempt ends.  Called by whoever ends
 * it (phn-spawn, reaping, lease expiry, cancel, operator commands), after
 * state.json and current.json: put the step itself and the steps that
 * depend on it or resume from it back into the ready index, then release
 * its concurrency, runner and workdir slots.  In that order, so that a
 * crash in between leaves a slot entry, which the next counter repairs.
 */
static int
ended_fallback(const struct phn_paths *p, const struct phn_attempt *a)
{
	struct json_object *meta, *jobs, *job, *steps, *st, *v;
	char msg[512], *full = phn_asprintf("%s/%s", a->job, a->step), *r;
	size_t i, k, q, nj, ns, n;
	int rc = 0;

	if ((meta = phn_batch_meta(p, a->batch, msg, sizeof(msg))) == NULL) {
		free(full);
		return -1;
	}
	jobs = phn_json_get(meta, "jobs");
	nj = json_object_is_type(jobs, json_type_array) ?
	    json_object_array_length(jobs) : 0;
	for (i = 0; i < nj; i++) {
		const char *jid;
		job = json_object_array_get_idx(jobs, i);
		jid = phn_jstr(job, "job_id");
		steps = phn_json_get(job, "steps");
		ns = jid && json_object_is_type(steps, json_type_array) ?
		    json_object_array_length(steps) : 0;
		for (k = 0; k < ns; k++) {
			int hit = 0;
			st = json_object_array_get_idx(steps, k);
			if (phn_jstr(st, "step_id") == NULL)
				continue;
			v = phn_json_get(st, "depends_on");
			n = json_object_is_type(v, json_type_array) ?
			    json_object_array_length(v) : 0;
			for (q = 0; q < n && !hit; q++) {
				const char *d = json_object_get_string(
				    json_object_array_get_idx(v, q));
				if (d == NULL)
					continue;
				r = phn_ref_norm(jid, d);
				hit = strcmp(r, full) == 0;
				free(r);
			}
			if (!hit && phn_jstr(phn_json_get(st, "resume_from"), "step_id")) {
				r = phn_ref_norm(jid, phn_jstr(phn_json_get(st,
				    "resume_from"), "step_id"));
				hit = strcmp(r, full) == 0;
				free(r);
			}
			if (hit && phn_sched_ready_add(p, a->batch, jid,
			    phn_jstr(st, "step_id"), 0) == -1)
				rc = -1;
		}
	}
	json_object_put(meta);
	free(full);
	return rc;
}

int
phn_sched_attempt_ended(const struct phn_paths *p, const struct phn_attempt *a)
{
	struct json_object *jd, *rd, *meta;
	char *f, *wd;
	const char *rid;
	size_t i, n;
	int r = 0;

	if (phn_sched_ready_add(p, a->batch, a->job, a->step, 0) == -1)
		r = -1;
	if ((jd = phn_sched_job(p, a->batch, a->job)) == NULL) {
		if (ended_fallback(p, a) == -1)
			r = -1;
	} else {
		rd = phn_json_get(phn_json_get(phn_json_get(jd, "steps"), a->step), "rdeps");
		n = json_object_is_type(rd, json_type_array) ?
		    json_object_array_length(rd) : 0;
		for (i = 0; i < n; i++) {
			char *dj, *ds;
			if (phn_ref_split(json_object_get_string(
			    json_object_array_get_idx(rd, i)), &dj, &ds) == 0 &&
			    phn_sched_ready_add(p, a->batch, dj, ds, 0) == -1)
				r = -1;
			free(dj);
			free(ds);
		}
		json_object_put(jd);
	}
	f = phn_active_entry(p, a->batch, a->job, a->step, a->name);
	if (unlink_quiet(f) == -1)
		r = -1;
	free(f);
	meta = att_meta(a->dir);
	if ((rid = phn_jstr(meta, "runner_id")) != NULL &&
	    phn_id_valid(rid, strlen(rid))) {
		wd = phn_runner_path(p, rid, "active");
		f = phn_slot_entry(wd, a->batch, a->job, a->step, a->name);
		if (unlink_quiet(f) == -1)
			r = -1;
		free(f);
		free(wd);
	}
	if (phn_jstr(meta, "workdir") != NULL) {
		wd = phn_sched_workdir_dir(p, phn_jstr(meta, "workdir"));
		f = phn_slot_entry(wd, a->batch, a->job, a->step, a->name);
		if (unlink_quiet(f) == -1)
			r = -1;
		free(f);
		free(wd);
	}
	json_object_put(meta);
	return r;
}

/*
 * Settings from the harness config.
 */
void
phn_sched_init(struct phn_sched *s, const struct phn_paths *p,
    const struct phn_config *cfg)
{
	struct json_object *d = phn_json_get(cfg->doc, "defaults"), *v;

	memset(s, 0, sizeof(*s));
	s->p = p;
	phn_limits_init(&s->lim, cfg->doc, NULL);
	v = phn_json_get(d, "runner_capacity");
	s->runner_cap = phn_json_is_int(v) ? json_object_get_int64(v) : 0;
	s->resume_affinity = phn_jstr(phn_json_get(d, "runner_affinity"),
	    "resume_steps");
	s->grace = phn_json_num(phn_json_get(d, "runner_affinity"),
	    "prefer_grace_seconds", 30);
	s->workdirs = phn_json_get(phn_json_get(cfg->doc, "limits"), "per_workdir_concurrency");
	s->reap = 1;
}

/* The limit for a workdir, 0 if none. */
long long
phn_sched_workdir_limit(struct phn_sched *s, const char *workdir)
{
	return workdir ? phn_json_int(s->workdirs, workdir, 0) : 0;
}

/*
 * Rebuild a batch's ready index and active slots from its attempts: end
 * faulted attempts, make sure every queued or running attempt holds its
 * slot entries and that no entry outlives its attempt, and add a ready
 * entry for every step that is runnable now or after a backoff.  Stale
 * ready entries are left alone: they are harmless hints, and removing one
 * could race with an ender that just added a good one.
 */
static int rescan(struct phn_sched *, const char *, int,
    struct json_object **, char *, size_t);

/* Whether the schedule index is whole: index.json and every job's file. */
static int
index_ok(const struct phn_paths *p, const char *batch)
{
	struct json_object *info = phn_sched_info(p, batch), *jl, *jd;
	size_t i, n;
	int ok = info != NULL;

	jl = json_object_object_get(info, "jobs");
	n = ok ? json_object_array_length(jl) : 0;
	for (i = 0; i < n && ok; i++) {
		const char *j = json_object_get_string(
		    json_object_array_get_idx(jl, i));
		if ((jd = phn_sched_job(p, batch, j)) == NULL)
			ok = 0;
		json_object_put(jd);
	}
	json_object_put(info);
	return ok;
}

/*
 * Rebuild a batch's derived scheduling state from its attempts, under
 * runs/B/_sched.lock (one rescan of a batch at a time): the schedule index
 * if it is missing or damaged, then the ready index and the active slots
 * (see rescan()).  With PHN_RESCAN_IF_NEEDED, only when the ready index
 * was never built or its directory is gone; returns 0 then if nothing was
 * to be done (and *summary stays NULL).
 */
int
phn_sched_rescan(struct phn_sched *s, const char *batch, int flags,
    struct json_object **summary, char *msg, size_t msglen)
{
	const struct phn_paths *p = s->p;
	char *lp, *f, *r, *old;
	int fd, rc = 0;

	if (summary != NULL)
		*summary = NULL;
	lp = phn_batch_path(p, batch, "_sched.lock");
	if ((fd = phn_lock_wait(lp, 300)) == -1) {
		snprintf(msg, msglen, "unable to lock %s: %s", lp,
		    strerror(errno));
		free(lp);
		return -1;
	}
	free(lp);
	f = phn_batch_path(p, batch, "_sched/ready.json");
	r = phn_batch_path(p, batch, "_ready");
	if ((flags & PHN_RESCAN_IF_NEEDED) && access(f, F_OK) == 0 &&
	    access(r, F_OK) == 0)
		goto out;
	if (!index_ok(p, batch)) {
		/* Set the damaged index aside, build a new one. */
		char *d = phn_batch_path(p, batch, "_sched");
		old = phn_batch_path(p, batch, ".sched-old-XXXXXX");
		if (mkdtemp(old) != NULL) {
			char *o2 = phn_path_join(old, "_sched");
			rename(d, o2);
			free(o2);
		}
		if (index_build(p, batch, msg, msglen) == -1)
			rc = -1;
		phn_rmtree(old);
		free(old);
		free(d);
	}
	if (rc == 0)
		rc = rescan(s, batch, flags, summary, msg, msglen);
out:
	free(f);
	free(r);
	phn_lock_close(fd);
	return rc;
}

/* One rescan of a batch: what its steps share, and what it counted. */
struct rescanop {
	struct phn_sched *s;
	const char *batch;
	struct json_object *info, *jobs;
	char	*ad;		/* _active/ */
	double	 now;
	int	 closed, quiescent;
	long long nready, nwait, nactive, nsteps, nfaults;
};

/* An entry for attempt name of batch/job/step in slot directory dir. */
static void
slot_touch(char *dir, const char *batch, const char *job, const char *step,
    const char *name)
{
	char *e;

	phn_mkdirs(dir, 0755);
	e = phn_slot_entry(dir, batch, job, step, name);
	touch_new(e);
	free(e);
	free(dir);
}

/* An attempt queued or running holds its slot entries (else ends). */
static void
rescan_active(struct rescanop *r, const char *job, const char *step,
    const struct phn_asum *a, const char *dir)
{
	const struct phn_paths *p = r->s->p;
	struct json_object *m;
	const char *rid, *wdp;
	char *e;

	if (expire(r->s, dir, r->now)) {
		r->nfaults++;
		return;
	}
	r->nactive++;
	e = phn_active_entry(p, r->batch, job, step, a->name);
	touch_new(e);
	free(e);
	m = att_meta(dir);
	rid = phn_jstr(m, "runner_id");
	wdp = phn_jstr(m, "workdir");
	if (rid != NULL && phn_id_valid(rid, strlen(rid)))
		slot_touch(phn_runner_path(p, rid, "active"), r->batch, job,
		    step, a->name);
	if (phn_sched_workdir_limit(r->s, wdp) > 0)
		slot_touch(phn_sched_workdir_dir(p, wdp), r->batch, job, step,
		    a->name);
	json_object_put(m);
}

/* Under _active/.lock: every live attempt in its slots, faults ended. */
static int
rescan_slots(struct rescanop *r, char *msg, size_t msglen)
{
	const struct phn_paths *p = r->s->p;
	struct json_object *jd;
	struct phn_asums as;
	char *lp = phn_path_join(r->ad, ".lock"), *atd, *d;
	size_t i, k, nj = json_object_array_length(r->jobs);
	int fd;

	if ((fd = phn_lock_wait(lp, SCHED_LOCK_WAIT)) == -1) {
		snprintf(msg, msglen, "unable to lock %s: %s", lp,
		    strerror(errno));
		free(lp);
		return -1;
	}
	free(lp);
	/* Stale entries first; the faulted attempts end through expire(). */
	phn_sched_slots(r->s, r->ad, r->batch, 1, r->now);
	for (i = 0; i < nj; i++) {
		const char *job = json_object_get_string(
		    json_object_array_get_idx(r->jobs, i));
		if ((jd = phn_sched_job(p, r->batch, job)) == NULL)
			continue;
		json_object_object_foreach(phn_json_get(jd, "steps"), sid, sv) {
			(void)sv;
			atd = attempts_dir(p, r->batch, job, sid);
			atts_load(p, r->batch, job, sid, &as);
			for (k = 0; k < as.n; k++) {
				if (as.v[k].st != PHN_AST_QUEUED &&
				    as.v[k].st != PHN_AST_RUNNING)
					continue;
				d = phn_path_join(atd, as.v[k].name);
				rescan_active(r, job, sid, &as.v[k], d);
				free(d);
			}
			phn_asums_free(&as);
			free(atd);
		}
		json_object_put(jd);
	}
	phn_lock_close(fd);
	return 0;
}

/* Stale claims: a claimer died between its rename and its unlink. */
static void
rescan_claimed(struct rescanop *r)
{
	char *f = phn_batch_path(r->s->p, r->batch, "_claimed"), **names, *e;
	struct stat sb;
	size_t i, nn;

	if ((names = phn_dir_list(f, &nn)) != NULL) {
		for (i = 0; i < nn; i++) {
			e = phn_path_join(f, names[i]);
			if (r->quiescent || (stat(e, &sb) == 0 &&
			    r->now - (double)sb.st_ctime > 120) ||
			    (strrchr(names[i], '@') != NULL &&
			    phn_claim_token_dead(strrchr(names[i], '@') + 1)))
				unlink_quiet(e);
			free(e);
		}
		phn_dir_list_free(names, nn);
	}
	free(f);
}

/* A ready entry for every step the step policy finds runnable. */
static void
rescan_ready(struct rescanop *r)
{
	const struct phn_paths *p = r->s->p;
	struct json_object *jd, *ov;
	struct acache cache;
	struct phn_verdict ev;
	size_t i, nj = json_object_array_length(r->jobs);
	char m[256];
	int bad;

	acache_init(&cache, p, r->batch, 64 * (nj + 1));
	for (i = 0; i < nj && !r->closed; i++) {
		const char *job = json_object_get_string(
		    json_object_array_get_idx(r->jobs, i));
		if ((jd = phn_sched_job(p, r->batch, job)) == NULL)
			continue;
		ov = phn_overrides_read(p, r->batch, job, &bad, m, sizeof(m));
		json_object_object_foreach(phn_json_get(jd, "steps"), sid, sv) {
			(void)sv;
			r->nsteps++;
			if (bad || evaluate(r->s, &cache, jd, sid, ov, r->now,
			    0, &ev) > PHN_V_WAIT) {
				if (!bad)
					phn_verdict_free(&ev);
				continue;
			}
			if (ev.verdict == PHN_V_READY)
				r->nready++;
			else
				r->nwait++;
			if (phn_sched_ready_add(p, r->batch, job, sid,
			    ev.not_before) == -1)
				phn_warn("unable to write %s/_ready/%s@%s:",
				    r->batch, job, sid);
			phn_verdict_free(&ev);
		}
		json_object_put(ov);
		json_object_put(jd);
	}
	acache_free(&cache);
}

/* _sched/ready.json says the ready index was rebuilt, and when. */
static struct json_object *
rescan_summary(struct rescanop *r)
{
	static const char *key[] = { "steps", "ready", "backoff", "active",
	    "expired" };
	long long *n[] = { &r->nsteps, &r->nready, &r->nwait, &r->nactive,
	    &r->nfaults };
	struct json_object *o = json_object_new_object();
	char iso[PHN_ISO_LEN], *f, *t;
	size_t i;

	phn_iso(r->now, iso);
	json_object_object_add(o, "rebuilt_at", json_object_new_string(iso));
	f = phn_batch_path(r->s->p, r->batch, "_sched/ready.json");
	t = phn_json_pretty(o);
	write_hint(f, t);
	free(t);
	free(f);
	json_object_put(o);
	o = json_object_new_object();
	json_object_object_add(o, "batch_id", json_object_new_string(r->batch));
	json_object_object_add(o, "closed", json_object_new_boolean(r->closed));
	for (i = 0; i < sizeof(key) / sizeof(*key); i++)
		json_object_object_add(o, key[i], json_object_new_int64(*n[i]));
	return o;
}

static int
rescan(struct phn_sched *s, const char *batch, int flags,
    struct json_object **summary, char *msg, size_t msglen)
{
	struct rescanop r;
	struct json_object *sum;
	char *f;
	int rc = -1;

	memset(&r, 0, sizeof(r));
	r.quiescent = (flags & PHN_RESCAN_QUIESCENT) != 0;
	r.s = s;
	r.batch = batch;
	r.now = phn_now();
	if ((r.info = phn_sched_info(s->p, batch)) == NULL) {
		snprintf(msg, msglen, "%s/_sched/index.json: unreadable", batch);
		return -1;
	}
	r.jobs = phn_json_get(r.info, "jobs");
	f = phn_batch_path(s->p, batch, "batch_closed.json");
	r.closed = access(f, F_OK) == 0;
	free(f);
	f = phn_batch_path(s->p, batch, "_ready");
	r.ad = phn_batch_path(s->p, batch, "_active");
	if (phn_mkdirs(f, 0755) == -1)
		snprintf(msg, msglen, "unable to create %s: %s", f,
		    strerror(errno));
	else if (phn_mkdirs(r.ad, 0755) == -1)
		snprintf(msg, msglen, "unable to create %s: %s", r.ad,
		    strerror(errno));
	else if (rescan_slots(&r, msg, msglen) == 0) {
		rescan_claimed(&r);
		rescan_ready(&r);
		sum = rescan_summary(&r);
		if (summary != NULL)
			*summary = sum;
		else
			json_object_put(sum);
		rc = 0;
	}
	free(f);
	free(r.ad);
	json_object_put(r.info);
	return rc;
}

/*
 * Claiming one step.
 */

/* Lock a slot directory (creating it); -1 on error. */
static int
slot_lock(const char *dir)
{
	char *lp;
	int fd;

	if (phn_mkdirs(dir, 0755) == -1)
		return -1;
	lp = phn_path_join(dir, ".lock");
	fd = phn_lock_wait(lp, SCHED_LOCK_WAIT);
	free(lp);
	return fd;
}

/* The output schema a step uses, relative to the runs root when inside it. */
static struct json_object *
schema_for(const struct phn_paths *p, const char *batch, const char *job,
    const char *step, struct json_object *sd)
{
	char *f, *r;
	struct json_object *o;

	if (json_object_get_boolean(phn_json_get(sd, "output_schema")))
		f = phn_step_path(p, batch, job, step, "output_schema.json");
	else {
		f = phn_path_join(p->root, "run_report.schema.json");
		if (access(f, F_OK) == -1) {
			free(f);
			f = phn_path_join(p->runs, "_system/run_report.schema.json");
		}
		if (access(f, F_OK) == -1) {
			free(f);
			if ((f = phn_datadir_file("run_report.schema.json")) ==
			    NULL)
				return NULL;
		}
	}
	r = phn_path_rel(p->runs, f);
	o = json_object_new_string(r);
	free(r);
	free(f);
	return o;
}

/*
 * meta.json's environment_snapshot: where and by whom the attempt runs.
 * The original's keys (job_workdir, workspace_policy, workspace_root),
 * then host, user, phn_version, codex_path (null: not found) and env, the
 * PHN_*, CODEX_* and OPENAI_* variables whose names do not look like a
 * secret (config.c's rule: CODEX_API_KEY is left out).
 */
static struct json_object *
env_snapshot(struct phn_sched *s, const char *batch, struct json_object *info,
    struct json_object *jd)
{
	static const char *const pre[] = { "PHN_", "CODEX_", "OPENAI_", NULL };
	struct json_object *o = json_object_new_object(), *wp, *env;
	const char *wd = phn_jstr(jd, "workdir"), *job = phn_jstr(jd, "job_id");
	static char *user;	/* one lookup of the password file per process */
	struct passwd *pw;
	char *codex, *why = NULL, *ws, *name;
	size_t i, k, n;
	int code;

	wp = phn_json_get(phn_json_get(jd, "job"), "workspace_policy");
	if (!json_object_is_type(wp, json_type_object))
		wp = phn_json_path_get(info,
		    "effective_defaults.workspace_policy");
	json_object_object_add(o, "job_workdir", phn_json_string(wd));
	if (json_object_is_type(wp, json_type_object))
		json_object_object_add(o, "workspace_policy", json_object_get(wp));
	else {
		wp = json_object_new_object();
		json_object_object_add(wp, "mode", json_object_new_string(
		    phn_jstr(jd, "workspace_mode") ? phn_jstr(jd,
		    "workspace_mode") : "shared"));
		json_object_object_add(o, "workspace_policy", wp);
	}
	if (phn_jstr(jd, "workspace_mode") &&
	    strcmp(phn_jstr(jd, "workspace_mode"), "isolated") == 0) {
		char *f = phn_job_path(s->p, batch, job, "_workspace");
		ws = phn_path_rel(s->p->runs, f);
		free(f);
		json_object_object_add(o, "workspace_root",
		    json_object_new_string(ws));
		free(ws);
	} else
		json_object_object_add(o, "workspace_root", phn_json_string(wd));
	json_object_object_add(o, "host", json_object_new_string(phn_hostname()));
	if (user == NULL)
		user = (pw = getpwuid(geteuid())) != NULL ?
		    phn_strdup(pw->pw_name) : phn_asprintf("%lu",
		    (unsigned long)geteuid());
	json_object_object_add(o, "user", json_object_new_string(user));
	json_object_object_add(o, "phn_version", json_object_new_string(
	    PHN_VERSION));
	codex = phn_codex_find(&code, &why);
	json_object_object_add(o, "codex_path", phn_json_string(codex));
	free(codex);
	free(why);
	env = json_object_new_object();
	for (i = 0; environ[i] != NULL; i++) {
		const char *eq = strchr(environ[i], '=');
		if (eq == NULL)
			continue;
		for (k = 0; pre[k] != NULL; k++)
			if (strncmp(environ[i], pre[k], strlen(pre[k])) == 0)
				break;
		if (pre[k] == NULL)
			continue;
		n = (size_t)(eq - environ[i]);
		name = phn_asprintf("%.*s", (int)n, environ[i]);
		if (!phn_secret_name(name))
			json_object_object_add(env, name,
			    json_object_new_string(eq + 1));
		free(name);
	}
	json_object_object_add(o, "env", env);
	return o;
}

static struct json_object *
meta_build(struct phn_sched *s, const char *batch, struct json_object *info,
    struct json_object *jd, const char *step, const struct phn_verdict *ev,
    const char *run_id, const char *iso)
{
	struct json_object *m = json_object_new_object(), *sd, *v;
	const char *job = phn_jstr(jd, "job_id");
	char *pf, *f;

	sd = phn_json_get(phn_json_get(jd, "steps"), step);
	json_object_object_add(m, "batch_id", json_object_new_string(batch));
	json_object_object_add(m, "job_id", json_object_new_string(job));
	json_object_object_add(m, "step_id", json_object_new_string(step));
	json_object_object_add(m, "run_id", json_object_new_string(run_id));
	json_object_object_add(m, "runner_id", json_object_new_string(s->runner));
	json_object_object_add(m, "claimed_at", json_object_new_string(iso));
	if (phn_jstr(sd, "prompt_sha256"))
		json_object_object_add(m, "prompt_sha256", json_object_new_string(
		    phn_jstr(sd, "prompt_sha256")));
	f = phn_step_path(s->p, batch, job, step, "prompt.txt");
	pf = phn_path_rel(s->p->runs, f);
	free(f);
	json_object_object_add(m, "prompt_file", json_object_new_string(pf));
	free(pf);
	v = phn_json_find(phn_json_get(phn_json_get(jd, "job"), "steps"),
	    "step_id", step);
	json_object_object_add(m, "prompt_ref", phn_json_string(phn_jstr(v,
	    "prompt_ref")));
	json_object_object_add(m, "environment_snapshot", env_snapshot(s, batch,
	    info, jd));
	v = phn_json_get(info, "execution_policy");
	json_object_object_add(m, "policy_snapshot", v ? json_object_get(v) :
	    json_object_new_object());
	v = phn_json_get(sd, "timeout_seconds");
	json_object_object_add(m, "timeout_seconds", phn_json_is_num(v) ?
	    json_object_get(v) : NULL);
	json_object_object_add(m, "workdir", phn_jstr(jd, "workdir") ?
	    json_object_new_string(phn_jstr(jd, "workdir")) : NULL);
	json_object_object_add(m, "workspace_mode", json_object_new_string(
	    phn_jstr(jd, "workspace_mode") ? phn_jstr(jd, "workspace_mode") :
	    "shared"));
	json_object_object_add(m, "output_schema", schema_for(s->p, batch, job,
	    step, sd));
	phn_policy_meta(ev, m);
	return m;
}

/* Whether this runner may take a runnable step now (0), or when (*at). */
static int
placement(struct phn_sched *s, struct json_object *sd,
    const struct phn_verdict *ev,
    double now, double since, double *at)
{
	const char *aff;
	int locality;

	*at = now + 5;
	if (ev->requeue_nonce > 0) {
		if (ev->requeue_target != NULL)
			return strcmp(ev->requeue_target, s->runner) != 0;
		if (ev->requeue_different && ev->last_runner != NULL)
			return strcmp(ev->last_runner, s->runner) == 0;
		return 0;
	}
	if (ev->resume_from == NULL || ev->src_runner == NULL ||
	    strcmp(ev->src_runner, s->runner) == 0)
		return 0;
	aff = phn_jstr(sd, "affinity");
	if (aff == NULL)
		aff = s->resume_affinity ? s->resume_affinity :
		    "pin_resume_source";
	locality = !s->lim.shared_fs && !s->lim.transfer;
	if (locality || strcmp(aff, "pin_resume_source") == 0)
		return 1;
	if (strcmp(aff, "prefer_resume_source") != 0)
		return 0;
	if (phn_runner_drained(s->p, ev->src_runner) || now >= since + s->grace)
		return 0;
	*at = since + s->grace;
	return 1;
}

/*
 * One claim, as named steps that share one cleanup path (claim_done):
 * claim_lock takes the step lock; claim_recheck re-checks the step with
 * the step policy and the placement rules; claim_reserve takes the
 * concurrency, runner and workdir slots' locks and counts them;
 * claim_create makes the attempt (directory, slot entries, meta.json,
 * state.json queued); claim_publish releases the slots' locks and notes
 * the attempt in current.json.
 */
struct claimop {
	struct phn_sched *s;
	const char *batch, *job, *step;
	struct json_object *info, *jd;
	struct phn_verdict ev;
	int	 sfd, bfd, rfd, wfd;
	char	*ad, *rd, *wd;		/* the slot directories used */
	char	*ent[3];		/* the slot entries made */
	char	*run_id, *name, *dir;
	double	 now;
	struct phn_claim *res;
};

static int
claim_fail(struct claimop *c, int v, double at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
claim_fail(struct claimop *c, int v, double at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->res->why, sizeof(c->res->why), fmt, ap);
	va_end(ap);
	c->res->verdict = v;
	c->res->at = at;
	return -1;
}

static int
claim_lock(struct claimop *c)
{
	char *dir = phn_step_path(c->s->p, c->batch, c->job, c->step, NULL);
	char *lp = phn_path_join(dir, "step.lock"), m[PATH_MAX + 128];
	int r = 0;

	/* Not through a symbolic link in the store (layout.c). */
	if (phn_store_dir(c->s->p, dir, 0, m, sizeof(m)) == -1)
		r = claim_fail(c, PHN_CLAIM_ERROR, 0, "%s", m);
	else if ((c->sfd = phn_lock_wait(lp, 30)) == -1)
		r = claim_fail(c, PHN_CLAIM_ERROR, 0, "unable to lock %s: %s",
		    lp, strerror(errno));
	free(lp);
	free(dir);
	return r;
}

/* Under the step lock: is the step still runnable, and by this runner? */
static int
claim_recheck(struct claimop *c, double since)
{
	struct json_object *ov;
	struct acache cache;
	char *f = phn_batch_path(c->s->p, c->batch, "batch_closed.json"), m[512];
	double at;
	int bad, closed = access(f, F_OK) == 0;

	free(f);
	if (closed)
		return claim_fail(c, PHN_CLAIM_DROP, 0, "batch closed");
	ov = phn_overrides_read(c->s->p, c->batch, c->job, &bad, m, sizeof(m));
	if (bad)
		return claim_fail(c, PHN_CLAIM_DROP, 0, "%s", m);
	acache_init(&cache, c->s->p, c->batch, 16);
	/* the rate-limit pause holds claims, not the ready index */
	evaluate(c->s, &cache, c->jd, c->step, ov, c->now,
	    phn_pause_until(c->s->p, c->now, NULL), &c->ev);
	acache_free(&cache);
	json_object_put(ov);
	if (c->ev.verdict == PHN_V_WAIT)
		return claim_fail(c, PHN_CLAIM_LATER, c->ev.not_before, "%s",
		    c->ev.why);
	if (c->ev.verdict != PHN_V_READY)
		return claim_fail(c, PHN_CLAIM_DROP, 0, "%s", c->ev.why);
	if (placement(c->s, phn_json_get(phn_json_get(c->jd, "steps"),
	    c->step), &c->ev, c->now, since, &at))
		return claim_fail(c, PHN_CLAIM_NOTME, at, "%s",
		    c->ev.requeue_nonce ? "requeued to another runner" :
		    "affinity: for runner of the resume source");
	return 0;
}

/* Lock slot directory dir into *fd and count it against lim. */
static int
claim_slot(struct claimop *c, const char *dir, const char *batch, int *fd,
    long long lim, int full, const char *what)
{
	if ((*fd = slot_lock(dir)) == -1)
		return claim_fail(c, PHN_CLAIM_ERROR, 0, "unable to lock "
		    "%s/.lock: %s", dir, strerror(errno));
	/* A full count is repaired (stale entries dropped) once. */
	if (phn_sched_slots(c->s, dir, batch, 0, c->now) >= lim &&
	    phn_sched_slots(c->s, dir, batch, 1, c->now) >= lim)
		return claim_fail(c, full, 0, "%s", what);
	return 0;
}

static int
claim_reserve(struct claimop *c, long long conc)
{
	const struct phn_paths *p = c->s->p;
	const char *wdp = phn_jstr(c->jd, "workdir");
	long long wlim;
	char *lp, *t;

	c->ad = phn_batch_path(p, c->batch, "_active");
	if (claim_slot(c, c->ad, c->batch, &c->bfd, conc,
	    PHN_CLAIM_BATCH_FULL, "batch concurrency") == -1)
		return -1;
	if (c->s->runner_cap > 0) {
		c->rd = phn_runner_path(p, c->s->runner, "active");
		if (claim_slot(c, c->rd, NULL, &c->rfd, c->s->runner_cap,
		    PHN_CLAIM_RUNNER_FULL, "runner capacity") == -1)
			return -1;
	}
	if ((wlim = phn_sched_workdir_limit(c->s, wdp)) > 0) {
		c->wd = phn_sched_workdir_dir(p, wdp);
		lp = phn_path_join(c->wd, ".path");
		if (access(lp, F_OK) == -1 && phn_mkdirs(c->wd, 0755) == 0) {
			t = phn_asprintf("%s\n", wdp);
			write_hint(lp, t);
			free(t);
		}
		free(lp);
		if (claim_slot(c, c->wd, NULL, &c->wfd, wlim,
		    PHN_CLAIM_WORKDIR_FULL, "per_workdir_concurrency") == -1)
			return -1;
	}
	return 0;
}

/* The attempt directory, named by one clock read: stamp and run id. */
static int
claim_mkdir(struct claimop *c)
{
	char stamp[PHN_STAMP_LEN], *lp, msg[PATH_MAX + 128];
	int tries, r = 0;

	for (tries = 0; tries < 5; tries++) {
		c->now = phn_now();
		phn_stamp(c->now, stamp);
		free(c->run_id);
		free(c->name);
		free(c->dir);
		/*
		 * The 8 hex digits are the microseconds (5) and 3 random
		 * ones, so that attempt names, which begin with a stamp of
		 * whole seconds, sort in claim order within a second too.
		 */
		c->run_id = phn_asprintf("run_%s_%05lx%03x", stamp,
		    (unsigned long)((c->now - floor(c->now)) * 1e6) & 0xfffff,
		    (unsigned)(phn_random32() & 0xfff));
		c->name = phn_asprintf("%s_%s", stamp, c->run_id);
		c->dir = phn_attempt_path(c->s->p, c->batch, c->job, c->step,
		    c->name, NULL);
		lp = phn_path_dirname(c->dir);
		r = phn_store_dir(c->s->p, lp, 0755, msg, sizeof(msg));
		free(lp);
		if (r == 0 && mkdir(c->dir, 0755) == 0)
			return 0;
		if (r == -1 || errno != EEXIST)
			break;
	}
	if (r == -1)
		claim_fail(c, PHN_CLAIM_ERROR, 0, "%s", msg);
	else
		claim_fail(c, PHN_CLAIM_ERROR, 0, "unable to create %s: %s",
		    c->dir, strerror(errno));
	free(c->dir);
	c->dir = NULL;
	return -1;
}

static int
claim_create(struct claimop *c)
{
	struct json_object *meta, *f;
	char iso[PHN_ISO_LEN], *lp;
	int i, r;

	if (claim_mkdir(c) == -1)
		return -1;
	if (c->ad != NULL)
		c->ent[0] = phn_active_entry(c->s->p, c->batch, c->job,
		    c->step, c->name);
	if (c->rd != NULL)
		c->ent[1] = phn_slot_entry(c->rd, c->batch, c->job, c->step,
		    c->name);
	if (c->wd != NULL)
		c->ent[2] = phn_slot_entry(c->wd, c->batch, c->job, c->step,
		    c->name);
	for (i = 0; i < 3; i++)
		if (c->ent[i] != NULL && touch_new(c->ent[i]) == -1)
			return claim_fail(c, PHN_CLAIM_ERROR, 0, "unable to "
			    "create %s: %s", c->ent[i], strerror(errno));
	phn_iso(c->now, iso);
	meta = meta_build(c->s, c->batch, c->info, c->jd, c->step, &c->ev,
	    c->run_id, iso);
	lp = phn_path_join(c->dir, "meta.json");
	r = phn_json_write(lp, meta, PHN_DURABLE | PHN_ONCE);
	json_object_put(meta);
	if (r == -1) {
		claim_fail(c, PHN_CLAIM_ERROR, 0, "unable to write %s: %s", lp,
		    strerror(errno));
		free(lp);
		return -1;
	}
	free(lp);
	f = json_object_new_object();
	json_object_object_add(f, "claimed_at", json_object_new_string(iso));
	phn_claim_clock(f);
	json_object_object_add(f, "runner_id", json_object_new_string(
	    c->s->runner));
	r = phn_state_update(c->dir, "queued", f);
	json_object_put(f);
	if (r != 1)
		return claim_fail(c, PHN_CLAIM_ERROR, 0, "unable to write "
		    "%s/state.json: %s", c->dir, strerror(errno));
	return 0;
}

static void
claim_unlock_slots(struct claimop *c)
{
	phn_lock_close(c->wfd);
	phn_lock_close(c->rfd);
	phn_lock_close(c->bfd);
	c->wfd = c->rfd = c->bfd = -1;
}

static void
claim_publish(struct claimop *c)
{
	const struct phn_paths *p = c->s->p;
	struct phn_attempt a;
	struct json_object *st;

	claim_unlock_slots(c);
	if (phn_attempt_parse(p, c->dir, &a) == 0) {
		if ((st = phn_state_read(c->dir)) != NULL)
			phn_current_note(p, &a, st);
		json_object_put(st);
		phn_attempt_free(&a);
	}
	if (c->ev.force_nonce > 0)
		phn_current_step_set(p, c->batch, c->job, c->step,
		    "force_retry_applied_nonce",
		    json_object_new_int64(c->ev.force_nonce));
	if (c->ev.requeue_nonce > 0)
		phn_current_step_set(p, c->batch, c->job, c->step,
		    "requeue_applied_nonce",
		    json_object_new_int64(c->ev.requeue_nonce));
	c->res->verdict = PHN_CLAIM_OK;
	snprintf(c->res->why, sizeof(c->res->why), "claimed");
	c->res->dir = c->dir;
	c->res->entry = phn_entry_name(c->job, c->step, c->name, NULL);
	c->dir = NULL;
}

static void
claim_init(struct claimop *c, struct phn_sched *s, const char *batch,
    struct json_object *info, struct json_object *jd, const char *step,
    struct phn_claim *res)
{
	memset(c, 0, sizeof(*c));
	memset(res, 0, sizeof(*res));
	c->s = s;
	c->batch = batch;
	c->job = phn_jstr(jd, "job_id");
	c->step = step;
	c->info = info;
	c->jd = jd;
	c->sfd = c->bfd = c->rfd = c->wfd = -1;
	c->now = phn_now();
	c->res = res;
}

/* The one cleanup: a failed creation leaves no entry and no attempt. */
static int
claim_done(struct claimop *c)
{
	int i;

	if (c->res->verdict == PHN_CLAIM_ERROR) {
		for (i = 0; i < 3; i++)
			if (c->ent[i] != NULL)
				unlink_quiet(c->ent[i]);
		if (c->dir != NULL)
			phn_rmtree(c->dir);
	}
	claim_unlock_slots(c);
	phn_lock_close(c->sfd);
	phn_verdict_free(&c->ev);
	for (i = 0; i < 3; i++)
		free(c->ent[i]);
	free(c->ad);
	free(c->rd);
	free(c->wd);
	free(c->run_id);
	free(c->name);
	free(c->dir);
	return c->res->verdict;
}

/*
 * Claim one step for s->runner, given that the caller took its ready
 * entry: under the step lock, re-check the step with the step policy,
 * then the placement rules and the limits (batch concurrency conc,
 * runner capacity, workdir), then create the attempt (meta.json with the
 * policy's decision, state.json queued, slot entries, current.json).
 * since is when the entry became ready (for prefer_resume_source).  The
 * verdict says what to do with the entry: PHN_CLAIM_OK (drop it: claimed,
 * res->dir), PHN_CLAIM_DROP (drop it: not runnable), PHN_CLAIM_LATER
 * (rewrite it with not_before res->at), PHN_CLAIM_NOTME, PHN_CLAIM_*_FULL
 * and PHN_CLAIM_ERROR (put it back).
 */
int
phn_sched_claim(struct phn_sched *s, const char *batch,
    struct json_object *info, struct json_object *jd, const char *step,
    long long conc, double since, struct phn_claim *res)
{
	struct claimop c;

	claim_init(&c, s, batch, info, jd, step, res);
	if (claim_lock(&c) == 0 && claim_recheck(&c, since) == 0 &&
	    claim_reserve(&c, conc) == 0 && claim_create(&c) == 0)
		claim_publish(&c);
	return claim_done(&c);
}

/*
 * Create an attempt of step as phn_sched_claim does, with the step
 * policy's decision, but without its checks: no re-check, no placement,
 * no limits, no slot entries, no reaping.  For tests that need an attempt of a step
 * in a given state.  PHN_CLAIM_OK, or PHN_CLAIM_ERROR with res->why.
 */
int
phn_sched_create(struct phn_sched *s, const char *batch,
    struct json_object *info, struct json_object *jd, const char *step,
    struct phn_claim *res)
{
	struct claimop c;
	struct acache cache;
	struct json_object *ov;
	char m[512];
	int bad, reap;

	claim_init(&c, s, batch, info, jd, step, res);
	if (claim_lock(&c) == 0) {
		ov = phn_overrides_read(s->p, batch, c.job, &bad, m, sizeof(m));
		acache_init(&cache, s->p, batch, 16);
		reap = s->reap;
		s->reap = 0;	/* leave the step's other attempts as they are */
		evaluate(s, &cache, jd, step, ov, c.now, 0, &c.ev);
		s->reap = reap;
		acache_free(&cache);
		json_object_put(ov);
		if (claim_create(&c) == 0)
			claim_publish(&c);
	}
	return claim_done(&c);
}

/*
 * End a faulted attempt: kill its codex process group when its identity
 * still matches (the Node launcher leaves codex running when its parent
 * dies), mark it failed with kind "orphaned" or "claim_expired", note it
 * in current.json, and put the step back in the ready index.  Returns 1
 * if reaped, 0 if the attempt was already terminal, -1 on error.
 */
int
phn_attempt_reap(const struct phn_paths *p, const struct phn_attempt *a,
    int fault)
{
	struct json_object *st = phn_state_read(a->dir), *f;
	const char *kind = fault == PHN_FAULT_LEASE ? "claim_expired" :
	    "orphaned";
	int r;

	if (phn_state_proc_alive(st, "pgid", "codex_start")) {
		pid_t pg = (pid_t)phn_json_int(st, "pgid", 0);
		kill(-pg, SIGTERM);
		usleep(200 * 1000);
		kill(-pg, SIGKILL);
	}
	json_object_put(st);
	f = json_object_new_object();
	json_object_object_add(f, "failure_kind", json_object_new_string(kind));
	json_object_object_add(f, "harness_fault", json_object_new_boolean(1));
	json_object_object_add(f, "current_item", json_object_new_string(
	    fault == PHN_FAULT_LEASE ? "claim lease expired before phn-spawn "
	    "picked it up" : "orphaned: the spawner died"));
	r = phn_state_update(a->dir, "failed", f);
	json_object_put(f);
	if (r != 1)
		return r;
	st = phn_state_read(a->dir);
	if (st != NULL)
		phn_current_note(p, a, st);
	json_object_put(st);
	phn_sched_attempt_ended(p, a);
	return 1;
}

/*
 * Reap a faulted attempt under its spawn.lock (liveness.c judges it:
 * phn_attempt_fault_locked).  Returns 1 reaped, 0 not (a spawner holds
 * it, it ended, or the fault is gone), -1 on error.  *kind says what it
 * was reaped as.
 */
int
phn_attempt_reap_locked(const struct phn_paths *p, const struct phn_attempt *a,
    double lease, double stale, const char **kind)
{
	char *lp = phn_path_join(a->dir, "spawn.lock");
	struct json_object *st;
	int fd, fault, r;

	*kind = NULL;
	fd = phn_lock_open(lp, LOCK_EX | LOCK_NB);
	free(lp);
	if (fd == -1)
		return errno == EWOULDBLOCK ? 0 : -1;
	st = phn_state_read(a->dir);
	fault = phn_attempt_fault_locked(p, st, phn_now(), lease, stale);
	json_object_put(st);
	r = 0;
	if (fault != PHN_FAULT_NONE) {
		*kind = fault == PHN_FAULT_LEASE ? "claim_expired" : "orphaned";
		r = phn_attempt_reap(p, a, fault);
	}
	phn_lock_close(fd);
	return r;
}

/*
 * Reap an attempt whose spawner its caller saw die (phn tick's guard
 * around phn-spawn, phn-heartbeat -k ATTEMPT): at once, without waiting
 * for a lease, as orphaned (a harness fault: not counted against
 * max_attempts) - but only if its spawn.lock is free, so a live spawner
 * is never touched, and only while it is queued or running.  Returns 1
 * reaped, 0 not (*why says why), -1 on error.
 */
int
phn_attempt_reap_dead_spawner(const struct phn_paths *p,
    const struct phn_attempt *a, const char **why)
{
	char *lp = phn_path_join(a->dir, "spawn.lock");
	struct json_object *st;
	const char *s;
	int fd, r = 0;

	fd = phn_lock_open(lp, LOCK_EX | LOCK_NB);
	free(lp);
	if (fd == -1) {
		*why = "its spawn.lock is held: a spawner lives";
		return errno == EWOULDBLOCK ? 0 : -1;
	}
	st = phn_state_read(a->dir);
	s = phn_jstr(st, "status");
	if (s != NULL && (strcmp(s, "queued") == 0 ||
	    strcmp(s, "running") == 0))
		r = phn_attempt_reap(p, a, PHN_FAULT_ORPHAN);
	else
		*why = "it is not queued or running";
	json_object_put(st);
	phn_lock_close(fd);
	return r;
}
