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
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

#define SCHED_LOCK_WAIT	60

static char *
bpath(const struct phn_paths *p, const char *batch, const char *rest)
{
	return phn_asprintf("%s/%s/%s", p->runs, batch, rest);
}

static long long
jint(struct json_object *o, const char *k, long long dflt)
{
	struct json_object *v = phn_json_get(o, k);

	return phn_json_is_int(v) ? (long long)json_object_get_int64(v) : dflt;
}

static double
jnum(struct json_object *o, const char *k, double dflt)
{
	struct json_object *v = phn_json_get(o, k);

	return phn_json_is_num(v) ? json_object_get_double(v) : dflt;
}

/* "JOB/STEP" for a reference made from job (STEP or JOB/STEP). */
static char *
ref_norm(const char *job, const char *s)
{
	return strchr(s, '/') ? phn_strdup(s) : phn_asprintf("%s/%s", job, s);
}

/* Split "JOB/STEP"; 0 if both parts are valid ids. */
static int
ref_split(const char *ref, char **job, char **step)
{
	const char *sl = strchr(ref, '/');

	*job = *step = NULL;
	if (sl == NULL || !phn_id_valid(ref, (size_t)(sl - ref)) ||
	    !phn_id_valid(sl + 1, strlen(sl + 1)))
		return -1;
	*job = phn_asprintf("%.*s", (int)(sl - ref), ref);
	*step = phn_strdup(sl + 1);
	return 0;
}

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

/* Write a small file by temp + rename, without fsync: for derived files
 * whose loss or truncation the readers tolerate. */
static int
write_hint(const char *path, const char *buf)
{
	char *dir = phn_path_dirname(path), *tmp;
	const char *base = strrchr(path, '/') + 1;
	size_t len = strlen(buf);
	int fd, e;

	tmp = phn_asprintf("%s/.%s.XXXXXX", dir, base);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1 && errno == ENOENT &&
	    phn_mkdirs(dir, 0755) == 0) {
		free(tmp);	/* mkostemp consumed the template */
		tmp = phn_asprintf("%s/.%s.XXXXXX", dir, base);
		fd = mkostemp(tmp, O_CLOEXEC);
	}
	free(dir);
	if (fd == -1) {
		free(tmp);
		return -1;
	}
	if (fchmod(fd, 0644) == -1 || write(fd, buf, len) != (ssize_t)len ||
	    close(fd) == -1 || rename(tmp, path) == -1) {
		e = errno;
		close(fd);
		unlink(tmp);
		free(tmp);
		errno = e;
		return -1;
	}
	free(tmp);
	return 0;
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

static struct json_object *
step_entry(struct json_object *st, const char *job, size_t k,
    struct json_object *ed, struct json_object *rdeps)
{
	struct json_object *o = json_object_new_object(), *v, *a, *x;
	const char *sid = phn_jstr(st, "step_id");
	char *full = phn_asprintf("%s/%s", job, sid), *r;
	size_t i, n;
	double t;

	json_object_object_add(o, "index", json_object_new_int64((int64_t)k));
	a = json_object_new_array();
	v = phn_json_get(st, "depends_on");
	n = json_object_is_type(v, json_type_array) ?
	    json_object_array_length(v) : 0;
	for (i = 0; i < n; i++) {
		const char *d = json_object_get_string(
		    json_object_array_get_idx(v, i));
		if (d == NULL)
			continue;
		r = ref_norm(job, d);
		json_object_array_add(a, json_object_new_string(r));
		free(r);
	}
	json_object_object_add(o, "depends_on", a);
	v = phn_json_get(st, "resume_from");
	if (json_object_is_type(v, json_type_object) &&
	    phn_jstr(v, "step_id") != NULL) {
		char *sj, *ss;
		r = ref_norm(job, phn_jstr(v, "step_id"));
		if (ref_split(r, &sj, &ss) == 0) {
			x = json_object_new_object();
			json_object_object_add(x, "job_id",
			    json_object_new_string(sj));
			json_object_object_add(x, "step_id",
			    json_object_new_string(ss));
			json_object_object_add(x, "selector", json_object_new_string(
			    phn_jstr(v, "selector") ? phn_jstr(v, "selector") :
			    "latest_successful"));
			if (phn_jstr(v, "run_id"))
				json_object_object_add(x, "run_id",
				    json_object_new_string(phn_jstr(v, "run_id")));
			if (phn_jstr(v, "codex_thread_id"))
				json_object_object_add(x, "codex_thread_id",
				    json_object_new_string(phn_jstr(v,
				    "codex_thread_id")));
			json_object_object_add(o, "resume_from", x);
		}
		free(sj);
		free(ss);
		free(r);
	}
	/* The policy is replaced whole, as in the reference. */
	v = phn_json_get(st, "retry_policy");
	if (!json_object_is_type(v, json_type_object) ||
	    json_object_object_length(v) == 0)
		v = phn_json_get(ed, "retries");
	if (json_object_is_type(v, json_type_object))
		json_object_object_add(o, "retry", json_object_get(v));
	else
		json_object_object_add(o, "retry", json_object_new_object());
	if (phn_jstr(st, "runner_affinity"))
		json_object_object_add(o, "affinity", json_object_new_string(
		    phn_jstr(st, "runner_affinity")));
	/* A step's null falls back to the default (reference bug 13). */
	t = jnum(st, "timeout_seconds", 0);
	if (t <= 0)
		t = jnum(phn_json_get(ed, "timeouts"), "step_timeout_seconds", 0);
	json_object_object_add(o, "timeout_seconds", t <= 0 ? NULL :
	    t == floor(t) && t < 1e15 ? json_object_new_int64((int64_t)t) :
	    json_object_new_double(t));
	if (phn_jstr(st, "prompt_sha256"))
		json_object_object_add(o, "prompt_sha256", json_object_new_string(
		    phn_jstr(st, "prompt_sha256")));
	json_object_object_add(o, "output_schema", json_object_new_boolean(
	    phn_jstr(st, "output_schema_sha256") != NULL));
	if (json_object_object_get_ex(rdeps, full, &v))
		json_object_object_add(o, "rdeps", json_object_get(v));
	else
		json_object_object_add(o, "rdeps", json_object_new_array());
	free(full);
	return o;
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

/* Build runs/B/_sched from batch_meta.json: in a temp dir, then rename. */
static int
index_build(const struct phn_paths *p, const char *batch, char *msg,
    size_t msglen)
{
	struct json_object *meta, *ed, *jobs, *job, *steps, *st, *v, *info,
	    *jl, *rdeps, *jd, *sd;
	char *tmp = NULL, *jdir = NULL, *dst, *name;
	const char *jid, *mode, *dmode;
	size_t i, k, nj, ns, n, q;
	int r = -1;

	if ((meta = phn_batch_meta(p, batch, msg, msglen)) == NULL)
		return -1;
	ed = phn_json_get(meta, "effective_defaults");
	jobs = phn_json_get(meta, "jobs");
	nj = json_object_is_type(jobs, json_type_array) ?
	    json_object_array_length(jobs) : 0;
	rdeps = json_object_new_object();
	for (i = 0; i < nj; i++) {
		job = json_object_array_get_idx(jobs, i);
		jid = phn_jstr(job, "job_id");
		steps = phn_json_get(job, "steps");
		ns = json_object_is_type(steps, json_type_array) ?
		    json_object_array_length(steps) : 0;
		for (k = 0; jid && k < ns; k++) {
			char *me, *t;
			st = json_object_array_get_idx(steps, k);
			if (phn_jstr(st, "step_id") == NULL)
				continue;
			me = phn_asprintf("%s/%s", jid, phn_jstr(st, "step_id"));
			v = phn_json_get(st, "depends_on");
			n = json_object_is_type(v, json_type_array) ?
			    json_object_array_length(v) : 0;
			for (q = 0; q < n; q++) {
				const char *d = json_object_get_string(
				    json_object_array_get_idx(v, q));
				if (d == NULL)
					continue;
				t = ref_norm(jid, d);
				rdeps_add(rdeps, t, me);
				free(t);
			}
			if (phn_jstr(phn_json_get(st, "resume_from"), "step_id")) {
				t = ref_norm(jid, phn_jstr(phn_json_get(st, "resume_from"),
				    "step_id"));
				rdeps_add(rdeps, t, me);
				free(t);
			}
			free(me);
		}
	}
	tmp = bpath(p, batch, ".sched-XXXXXX");
	if (mkdtemp(tmp) == NULL || chmod(tmp, 0755) == -1) {
		snprintf(msg, msglen, "unable to create %s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	jdir = phn_path_join(tmp, "jobs");
	if (mkdir(jdir, 0755) == -1) {
		snprintf(msg, msglen, "unable to create %s: %s", jdir,
		    strerror(errno));
		goto out;
	}
	dmode = phn_jstr(phn_json_get(ed, "workspace_policy"), "mode");
	if (dmode == NULL)
		dmode = "shared";
	info = json_object_new_object();
	json_object_object_add(info, "version", json_object_new_int(1));
	json_object_object_add(info, "batch_id", json_object_new_string(batch));
	v = phn_json_get(meta, "concurrency");
	json_object_object_add(info, "concurrency", phn_json_is_int(v) ?
	    json_object_new_int64(json_object_get_int64(v)) : NULL);
	v = phn_json_get(ed, "execution_policy");
	json_object_object_add(info, "execution_policy",
	    json_object_is_type(v, json_type_object) ? json_object_get(v) :
	    json_object_new_object());
	v = phn_json_get(ed, "scoreboard");
	json_object_object_add(info, "scoreboard",
	    json_object_is_type(v, json_type_object) ? json_object_get(v) :
	    json_object_new_object());
	jl = json_object_new_array();
	json_object_object_add(info, "jobs", jl);
	for (i = 0; i < nj; i++) {
		job = json_object_array_get_idx(jobs, i);
		if ((jid = phn_jstr(job, "job_id")) == NULL)
			continue;
		json_object_array_add(jl, json_object_new_string(jid));
		mode = phn_jstr(phn_json_get(job, "workspace_policy"), "mode");
		jd = json_object_new_object();
		json_object_object_add(jd, "job_id", json_object_new_string(jid));
		json_object_object_add(jd, "index",
		    json_object_new_int64((int64_t)i));
		json_object_object_add(jd, "workdir", phn_jstr(job, "job_workdir") ?
		    json_object_new_string(phn_jstr(job, "job_workdir")) : NULL);
		json_object_object_add(jd, "workspace_mode",
		    json_object_new_string(mode ? mode : dmode));
		sd = json_object_new_object();
		json_object_object_add(jd, "steps", sd);
		steps = phn_json_get(job, "steps");
		ns = json_object_is_type(steps, json_type_array) ?
		    json_object_array_length(steps) : 0;
		for (k = 0; k < ns; k++) {
			st = json_object_array_get_idx(steps, k);
			if (phn_jstr(st, "step_id"))
				json_object_object_add(sd, phn_jstr(st, "step_id"),
				    step_entry(st, jid, k, ed, rdeps));
		}
		name = phn_asprintf("%s.json", jid);
		if (put_doc(jdir, name, jd) == -1) {
			snprintf(msg, msglen, "unable to write %s/%s: %s", jdir,
			    name, strerror(errno));
			free(name);
			json_object_put(jd);
			json_object_put(info);
			goto out;
		}
		free(name);
		json_object_put(jd);
	}
	if (put_doc(tmp, "index.json", info) == -1) {
		snprintf(msg, msglen, "unable to write %s/index.json: %s", tmp,
		    strerror(errno));
		json_object_put(info);
		goto out;
	}
	json_object_put(info);
	if (phn_syncfs(tmp) == -1) {
		snprintf(msg, msglen, "unable to sync %s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	dst = bpath(p, batch, "_sched");
	if (rename(tmp, dst) == -1 && errno != EEXIST && errno != ENOTEMPTY) {
		snprintf(msg, msglen, "unable to rename %s to %s: %s", tmp, dst,
		    strerror(errno));
		free(dst);
		goto out;
	}
	free(dst);
	r = 0;
out:
	if (tmp != NULL)
		phn_rmtree(tmp);	/* gone after a successful rename */
	free(tmp);
	free(jdir);
	json_object_put(rdeps);
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
	char *f = bpath(p, batch, "_sched/index.json"), *lp;
	int fd, r;

	if (access(f, F_OK) == 0) {
		free(f);
		return 0;
	}
	lp = bpath(p, batch, "_sched.lock");
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
	char *f = bpath(p, batch, "_sched/index.json"), msg[512];
	struct json_object *o = phn_json_load(f, msg, sizeof(msg));

	free(f);
	if (o != NULL && !json_object_is_type(phn_json_get(o, "jobs"),
	    json_type_array)) {
		json_object_put(o);
		errno = EINVAL;
		return NULL;
	}
	return o;
}

/* A job's index document, or NULL (no such job, or no index). */
struct json_object *
phn_sched_job(const struct phn_paths *p, const char *batch, const char *job)
{
	char *f, msg[512];
	struct json_object *o;

	if (!phn_id_valid(job, strlen(job))) {
		errno = ENOENT;
		return NULL;
	}
	f = phn_asprintf("%s/%s/_sched/jobs/%s.json", p->runs, batch, job);
	o = phn_json_load(f, msg, sizeof(msg));
	free(f);
	if (o != NULL && !json_object_is_type(phn_json_get(o, "steps"),
	    json_type_object)) {
		json_object_put(o);
		errno = EINVAL;
		return NULL;
	}
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
	char *f = phn_asprintf("%s/%s/_ready/%s@%s", p->runs, batch, job, step);
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
 * Attempts of a step, oldest first (names start with the claim stamp).
 */
static void
atts_load(const struct phn_paths *p, const char *batch, const char *job,
    const char *step, struct phn_atts *as)
{
	char *ad = phn_asprintf("%s/%s/%s/steps/%s/attempts", p->runs, batch,
	    job, step), **v;
	struct json_object *st, *x;
	size_t n, i;

	memset(as, 0, sizeof(*as));
	if ((v = phn_dir_list(ad, &n)) == NULL) {
		free(ad);
		return;
	}
	as->v = phn_malloc((n + 1) * sizeof(*as->v));
	for (i = 0; i < n; i++) {
		struct phn_att *a = &as->v[i];
		const char *s;

		memset(a, 0, sizeof(*a));
		a->name = v[i];
		a->dir = phn_path_join(ad, v[i]);
		st = phn_state_read(a->dir);
		s = phn_jstr(st, "status");
		snprintf(a->status, sizeof(a->status), "%s",
		    phn_status_valid(s) ? s : "");
		if (phn_jstr(st, "failure_kind"))
			a->kind = phn_strdup(phn_jstr(st, "failure_kind"));
		if (phn_jstr(st, "codex_thread_id"))
			a->thread = phn_strdup(phn_jstr(st, "codex_thread_id"));
		x = phn_json_get(st, "harness_fault");
		a->fault = (json_object_is_type(x, json_type_boolean) &&
		    json_object_get_boolean(x)) || (a->kind &&
		    (strcmp(a->kind, "orphaned") == 0 ||
		    strcmp(a->kind, "claim_expired") == 0));
		if (phn_iso_parse(phn_jstr(st, "ended_at"), &a->ended) == -1)
			a->ended = 0;
		if (phn_iso_parse(phn_jstr(st, "claimed_at"), &a->claimed) == -1)
			a->claimed = 0;
		json_object_put(st);
	}
	free(v);	/* the names now belong to as */
	as->n = n;
	free(ad);
}

void
phn_sched_atts_free(struct phn_atts *as)
{
	size_t i;

	for (i = 0; i < as->n; i++) {
		free(as->v[i].name);
		free(as->v[i].dir);
		free(as->v[i].kind);
		free(as->v[i].thread);
	}
	free(as->v);
	memset(as, 0, sizeof(*as));
}

static int
att_active(const struct phn_att *a)
{
	return !phn_status_terminal(a->status);
}

static struct json_object *
att_meta(const char *dir)
{
	char *f = phn_path_join(dir, "meta.json"), msg[512];
	struct json_object *o = phn_json_load(f, msg, sizeof(msg));

	free(f);
	if (o != NULL && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

/* A small cache of attempt lists by "JOB/STEP", for rescans. */
struct acache {
	char	**key;
	struct phn_atts *v;
	size_t	 n, cap;
};

static struct phn_atts *
atts_get(struct phn_sched *s, const char *batch, const char *job,
    const char *step, struct phn_atts *tmp)
{
	struct acache *c = s->cache;
	char *k;
	size_t h, i;

	if (c == NULL) {
		atts_load(s->p, batch, job, step, tmp);
		return tmp;
	}
	k = phn_asprintf("%s/%s", job, step);
	for (h = 5381, i = 0; k[i]; i++)
		h = h * 33 + (unsigned char)k[i];
	for (i = h % c->cap; c->key[i]; i = (i + 1) % c->cap)
		if (strcmp(c->key[i], k) == 0) {
			free(k);
			return &c->v[i];
		}
	if (c->n * 2 >= c->cap) {	/* callers size it; stop caching */
		free(k);
		atts_load(s->p, batch, job, step, tmp);
		return tmp;
	}
	c->key[i] = k;
	c->n++;
	atts_load(s->p, batch, job, step, &c->v[i]);
	return &c->v[i];
}

static void
atts_put(struct phn_sched *s, struct phn_atts *as, struct phn_atts *tmp)
{
	(void)s;
	if (as == tmp)
		phn_sched_atts_free(tmp);
}

/* Reload a cached list after its attempts changed. */
static void
acache_drop(struct phn_sched *s, const char *batch, const char *job,
    const char *step)
{
	struct acache *c = s->cache;
	char *k;
	size_t h, i;

	if (c == NULL)
		return;
	k = phn_asprintf("%s/%s", job, step);
	for (h = 5381, i = 0; k[i]; i++)
		h = h * 33 + (unsigned char)k[i];
	for (i = h % c->cap; c->key[i]; i = (i + 1) % c->cap)
		if (strcmp(c->key[i], k) == 0) {
			phn_sched_atts_free(&c->v[i]);
			atts_load(s->p, batch, job, step, &c->v[i]);
			break;
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
		fault = phn_attempt_fault(dir, st, now, s->lease, s->stale,
		    s->stuck);
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
		r = phn_attempt_reap_locked(s->p, &a, s->lease, s->stale, &kind);
	}
	phn_attempt_free(&a);
	return r == 1;
}

/* Deterministic jitter in [0, 1) from an attempt name. */
static double
unit_hash(const char *s)
{
	unsigned long long h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (double)(h % 1000003ULL) / 1000003.0;
}

static int
in_list(struct json_object *a, const char *s)
{
	size_t i, n;

	if (s == NULL || !json_object_is_type(a, json_type_array))
		return 0;
	n = json_object_array_length(a);
	for (i = 0; i < n; i++) {
		const char *x = json_object_get_string(
		    json_object_array_get_idx(a, i));
		if (x && strcmp(x, s) == 0)
			return 1;
	}
	return 0;
}

/* Backoff delay after the n-th counted attempt (n >= 1). */
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
	base = jnum(b, "base", 0);
	factor = jnum(b, "factor", 2);
	max = jnum(b, "max", -1);
	jit = jnum(b, "jitter", 0);
	d = base * pow(factor, (double)(n > 0 ? n - 1 : 0));
	if (max >= 0 && d > max)
		d = max;
	if (jit > 0)
		d *= 1 + jit * (2 * unit_hash(latest) - 1);
	return d > 0 && isfinite(d) ? d : 0;
}

/* The newest attempt's meta value of key (carried forward at claim). */
static long long
applied_nonce(struct phn_atts *as, const char *key)
{
	struct json_object *m;
	size_t i;
	long long v;

	for (i = as->n; i > 0; i--) {
		if ((m = att_meta(as->v[i - 1].dir)) == NULL)
			continue;
		if (phn_json_get(m, key) != NULL) {
			v = jint(m, key, 0);
			json_object_put(m);
			return v;
		}
		json_object_put(m);
	}
	return 0;
}

static long long
ov_nonce(struct json_object *ovs, const char *key, const char *legacy)
{
	long long n = jint(ovs, key, 0);

	if (n <= 0 && legacy != NULL)
		n = jint(phn_json_get(ovs, legacy), "nonce", 0);
	return n > 0 ? n : 0;
}

void
phn_sched_eval_free(struct phn_eval *ev)
{
	free(ev->requeue_target);
	free(ev->last_runner);
	free(ev->src_runner);
	free(ev->thread_id);
	json_object_put(ev->resume);
	json_object_put(ev->retry_resume);
	memset(ev, 0, sizeof(*ev));
}

static int
verdict(struct phn_eval *ev, int v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
verdict(struct phn_eval *ev, int v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ev->why, sizeof(ev->why), fmt, ap);
	va_end(ap);
	ev->verdict = v;
	return v;
}

/* Resolve resume_from against the source's attempts. */
static int
resume_resolve(struct phn_sched *s, const char *batch,
    struct json_object *rf, struct phn_eval *ev)
{
	const char *sj = phn_jstr(rf, "job_id"), *ss = phn_jstr(rf, "step_id");
	const char *sel = phn_jstr(rf, "selector"), *rid = phn_jstr(rf, "run_id");
	struct phn_atts tmp, *as;
	struct phn_att *best = NULL;
	struct json_object *m, *o;
	struct stat sb;
	char *home, *rel;
	size_t i, l, rl;

	if (sj == NULL || ss == NULL)
		return verdict(ev, PHN_EVAL_DONE, "resume_from: bad source");
	if (sel == NULL)
		sel = "latest_successful";
	as = atts_get(s, batch, sj, ss, &tmp);
	if (strcmp(sel, "run_id") != 0)
		for (i = 0; i < as->n; i++)
			if (att_active(&as->v[i])) {
				verdict(ev, PHN_EVAL_BLOCKED, "resume_from %s/%s: "
				    "an attempt of the source is not finished",
				    sj, ss);
				atts_put(s, as, &tmp);
				return ev->verdict;
			}
	for (i = 0; i < as->n; i++) {
		struct phn_att *a = &as->v[i];
		if (strcmp(sel, "latest_successful") == 0) {
			if (strcmp(a->status, "succeeded") == 0 && (best == NULL ||
			    a->ended >= best->ended))
				best = a;
		} else if (strcmp(sel, "latest") == 0) {
			if (phn_status_terminal(a->status))
				best = a;
		} else if (rid != NULL) {
			l = strlen(a->name);
			rl = strlen(rid);
			if (strcmp(a->name, rid) == 0 || (l > rl &&
			    a->name[l - rl - 1] == '_' &&
			    strcmp(a->name + l - rl, rid) == 0))
				best = a;
		}
	}
	if (best == NULL) {
		verdict(ev, PHN_EVAL_BLOCKED, "resume_from %s/%s: no %s attempt",
		    sj, ss, strcmp(sel, "latest_successful") == 0 ? "succeeded" :
		    strcmp(sel, "latest") == 0 ? "finished" : rid ? rid : "?");
		atts_put(s, as, &tmp);
		return ev->verdict;
	}
	if (!phn_status_terminal(best->status)) {
		verdict(ev, PHN_EVAL_BLOCKED, "resume_from %s/%s: attempt %s is "
		    "not finished", sj, ss, best->name);
		atts_put(s, as, &tmp);
		return ev->verdict;
	}
	home = phn_path_join(best->dir, "codex_home");
	rel = phn_path_rel(s->p->runs, best->dir);
	if (stat(home, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		verdict(ev, PHN_EVAL_BLOCKED, "resume_from %s/%s: resume base "
		    "missing: %s/codex_home", sj, ss, rel);
		free(home);
		free(rel);
		atts_put(s, as, &tmp);
		return ev->verdict;
	}
	free(home);
	m = att_meta(best->dir);
	o = json_object_new_object();
	json_object_object_add(o, "job_id", json_object_new_string(sj));
	json_object_object_add(o, "step_id", json_object_new_string(ss));
	json_object_object_add(o, "selector", json_object_new_string(sel));
	json_object_object_add(o, "selected_run_id", json_object_new_string(
	    strstr(best->name, "run_") ? strstr(best->name, "run_") :
	    best->name));
	json_object_object_add(o, "source_attempt_dir",
	    json_object_new_string(rel));
	if (phn_jstr(rf, "codex_thread_id"))
		ev->thread_id = phn_strdup(phn_jstr(rf, "codex_thread_id"));
	else if (best->thread)
		ev->thread_id = phn_strdup(best->thread);
	else if (phn_jstr(m, "codex_thread_id"))
		ev->thread_id = phn_strdup(phn_jstr(m, "codex_thread_id"));
	if (phn_jstr(m, "runner_id"))
		ev->src_runner = phn_strdup(phn_jstr(m, "runner_id"));
	ev->resume = o;
	ev->resume_src = 1;
	json_object_put(m);
	free(rel);
	atts_put(s, as, &tmp);
	return PHN_EVAL_RUN;
}

/*
 * The runnable predicate (SPEC 5), from the attempts: forced terminal,
 * succeeded (unless a force-retry is pending), an active attempt, the
 * retry policy (counted attempts, retry classes, backoff; harness faults
 * do not count and retry at once, at most max_harness_retries in a row),
 * depends_on, resume_from.  The caller checks the closed batch and the
 * overrides' readability.  With s->reap, faulted attempts of the step
 * (expired lease, dead spawner, missing state) are ended on the way.
 */
int
phn_sched_eval(struct phn_sched *s, const char *batch, struct json_object *jd,
    const char *step, struct json_object *ov, double now, struct phn_eval *ev)
{
	struct json_object *sd, *ovs, *retry, *ft, *deps, *m;
	struct phn_atts tmp, *as;
	const char *job = phn_jstr(jd, "job_id");
	long long maxa, counted = 0, trailing = 0, fn, rn;
	size_t i, n;
	int succ = 0, active = 0, again, pending, rounds = 0;

	memset(ev, 0, sizeof(*ev));
	sd = phn_json_get(phn_json_get(jd, "steps"), step);
	if (job == NULL || sd == NULL)
		return verdict(ev, PHN_EVAL_DONE, "no such step");
	ovs = phn_json_get(phn_json_get(ov, "steps"), step);
	ft = phn_json_get(ovs, "forced_terminal");
	if (json_object_is_type(ft, json_type_object) && phn_jstr(ft, "status"))
		return verdict(ev, PHN_EVAL_DONE, "forced terminal: %s",
		    phn_jstr(ft, "status"));
	for (;;) {
		as = atts_get(s, batch, job, step, &tmp);
		again = 0;
		for (i = 0; s->reap && rounds++ < 3 && i < as->n; i++)
			if (att_active(&as->v[i]) && expire(s, as->v[i].dir, now))
				again = 1;
		if (!again)
			break;
		atts_put(s, as, &tmp);
		acache_drop(s, batch, job, step);
	}
	for (i = 0; i < as->n; i++) {
		struct phn_att *a = &as->v[i];
		if (strcmp(a->status, "succeeded") == 0)
			succ = 1;
		if (att_active(a))
			active = 1;
		if (a->fault) {
			trailing++;
			continue;
		}
		trailing = 0;
		if (phn_status_terminal(a->status))
			counted++;
	}
	fn = ov_nonce(ovs, "force_retry_nonce", NULL);
	ev->applied_force = fn > 0 ? applied_nonce(as, "force_retry_applied_nonce") :
	    0;
	pending = fn > ev->applied_force;
	if (pending)
		ev->force_nonce = fn;
	rn = ov_nonce(ovs, "requeue_nonce", "requeue");
	ev->applied_requeue = rn > 0 ? applied_nonce(as, "requeue_applied_nonce") :
	    0;
	if (as->n > 0 && (m = att_meta(as->v[as->n - 1].dir)) != NULL) {
		if (phn_jstr(m, "runner_id"))
			ev->last_runner = phn_strdup(phn_jstr(m, "runner_id"));
		json_object_put(m);
	}
	ev->attempt_number = counted + 1;
	ev->attempts = (long long)as->n;
	if (succ && !pending) {
		atts_put(s, as, &tmp);
		return verdict(ev, PHN_EVAL_DONE, "succeeded");
	}
	if (active) {
		for (i = 0; i < as->n && !att_active(&as->v[i]); i++)
			;
		verdict(ev, PHN_EVAL_BLOCKED, "attempt %s is %s", as->v[i].name,
		    as->v[i].status[0] ? as->v[i].status : "being created");
		atts_put(s, as, &tmp);
		return ev->verdict;
	}
	retry = phn_json_get(sd, "retry");
	maxa = jint(retry, "max_attempts", 1);
	if (!pending && as->n > 0) {
		struct phn_att *l = &as->v[as->n - 1];
		if (l->fault && trailing > s->max_harness) {
			verdict(ev, PHN_EVAL_DONE, "%lld harness faults in a row "
			    "(limits.max_harness_retries is %lld)", trailing,
			    s->max_harness);
			atts_put(s, as, &tmp);
			return ev->verdict;
		}
		if (!l->fault) {
			struct json_object *on = phn_json_get(retry, "retry_on_statuses");
			struct json_object *dflt = NULL;
			double nb;
			if (counted >= maxa) {
				verdict(ev, PHN_EVAL_DONE, "%s after %lld of "
				    "max_attempts %lld", l->status, counted, maxa);
				atts_put(s, as, &tmp);
				return ev->verdict;
			}
			if (on == NULL)
				on = dflt = json_tokener_parse("[\"failed\"]");
			if (!in_list(on, l->status) && !in_list(on, l->kind)) {
				verdict(ev, PHN_EVAL_DONE, "%s%s%s is not in "
				    "retry_on_statuses", l->status, l->kind ?
				    "/" : "", l->kind ? l->kind : "");
				json_object_put(dflt);
				atts_put(s, as, &tmp);
				return ev->verdict;
			}
			json_object_put(dflt);
			nb = l->ended > 0 ? l->ended + backoff(retry, counted,
			    l->name) : 0;
			if (nb > now) {
				ev->not_before = nb;
				verdict(ev, PHN_EVAL_WAIT, "backoff until %.3f", nb);
				atts_put(s, as, &tmp);
				return ev->verdict;
			}
		}
	}
	/* Retry mode resume_last_attempt: the newest attempt with a session. */
	if (phn_json_get(sd, "resume_from") == NULL && as->n > 0 && phn_jstr(retry,
	    "mode") && strcmp(phn_jstr(retry, "mode"), "resume_last_attempt") == 0) {
		for (i = as->n; i > 0 && ev->retry_resume == NULL; i--) {
			struct phn_att *a = &as->v[i - 1];
			char *home = phn_path_join(a->dir, "codex_home");
			char *th = a->thread ? phn_strdup(a->thread) : NULL;
			struct stat sb;
			if (th == NULL && (m = att_meta(a->dir)) != NULL) {
				if (phn_jstr(m, "codex_thread_id"))
					th = phn_strdup(phn_jstr(m,
					    "codex_thread_id"));
				json_object_put(m);
			}
			if (th != NULL && stat(home, &sb) == 0 &&
			    S_ISDIR(sb.st_mode)) {
				char *rel = phn_path_rel(s->p->runs, a->dir);
				ev->retry_resume = json_object_new_object();
				json_object_object_add(ev->retry_resume, "run_id",
				    json_object_new_string(strstr(a->name, "run_") ?
				    strstr(a->name, "run_") : a->name));
				json_object_object_add(ev->retry_resume,
				    "attempt_dir", json_object_new_string(rel));
				ev->thread_id = th;
				th = NULL;
				free(rel);
			}
			free(th);
			free(home);
		}
	}
	atts_put(s, as, &tmp);
	deps = phn_json_get(sd, "depends_on");
	n = json_object_is_type(deps, json_type_array) ?
	    json_object_array_length(deps) : 0;
	for (i = 0; i < n; i++) {
		const char *d = json_object_get_string(
		    json_object_array_get_idx(deps, i));
		char *dj, *ds;
		size_t k;
		int ok = 0;
		if (d == NULL || ref_split(d, &dj, &ds) == -1)
			return verdict(ev, PHN_EVAL_DONE, "bad depends_on %s",
			    d ? d : "?");
		as = atts_get(s, batch, dj, ds, &tmp);
		for (k = as->n; k > 0 && !ok; k--)
			ok = strcmp(as->v[k - 1].status, "succeeded") == 0;
		atts_put(s, as, &tmp);
		free(dj);
		free(ds);
		if (!ok)
			return verdict(ev, PHN_EVAL_BLOCKED, "depends_on %s not "
			    "succeeded", d);
	}
	if (phn_json_get(sd, "resume_from") != NULL && resume_resolve(s, batch,
	    phn_json_get(sd, "resume_from"), ev) != PHN_EVAL_RUN)
		return ev->verdict;
	if (rn > ev->applied_requeue) {
		struct json_object *rq = phn_json_get(ovs, "requeue");
		ev->requeue_nonce = rn;
		if (phn_jstr(rq, "target_runner_id") &&
		    *phn_jstr(rq, "target_runner_id"))
			ev->requeue_target = phn_strdup(phn_jstr(rq,
			    "target_runner_id"));
		else if (json_object_get_boolean(phn_json_get(rq, "different_from_last")))
			ev->requeue_different = 1;
	}
	return verdict(ev, PHN_EVAL_RUN, "runnable");
}

/*
 * Slot directories: _active/ of a batch, runners/R/active/, and
 * workdir_slots/H/.  Entry names locate the attempt.
 */
char *
phn_sched_workdir_dir(const struct phn_paths *p, const char *workdir)
{
	char hex[PHN_SHA256_HEX];

	phn_sha256_hex(workdir, strlen(workdir), hex);
	return phn_asprintf("%s/_system/workdir_slots/%.16s", p->runs, hex);
}

/* The attempt dir an entry names; batch NULL means the name starts with it. */
static char *
slot_attempt(const struct phn_paths *p, const char *batch, const char *name,
    char **bp, char **jp, char **sp)
{
	char *s = phn_strdup(name), *f[4], *save = NULL, *t, *r;
	int n = 0, want = batch ? 3 : 4;

	for (t = strtok_r(s, "@", &save); t && n < 4; t = strtok_r(NULL, "@",
	    &save))
		f[n++] = t;
	if (n != want || t != NULL) {
		free(s);
		return NULL;
	}
	if (batch == NULL)
		batch = f[0];
	r = phn_asprintf("%s/%s/%s/steps/%s/attempts/%s", p->runs, batch,
	    f[want - 3], f[want - 2], f[want - 1]);
	if (bp)
		*bp = phn_strdup(batch);
	if (jp)
		*jp = phn_strdup(f[want - 3]);
	if (sp)
		*sp = phn_strdup(f[want - 2]);
	free(s);
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

/* Whether runner R is drained: drain.json exists, unless {"drain": false}. */
int
phn_sched_drained(const struct phn_paths *p, const char *runner)
{
	char *f = phn_asprintf("%s/%s/drain.json", p->runners, runner), msg[256];
	struct json_object *o, *v;
	int r;

	if (access(f, F_OK) == -1) {
		free(f);
		return 0;
	}
	o = phn_json_load(f, msg, sizeof(msg));
	free(f);
	r = !(json_object_object_get_ex(o, "drain", &v) &&
	    json_object_is_type(v, json_type_boolean) &&
	    !json_object_get_boolean(v));
	json_object_put(o);
	return r;
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
				r = ref_norm(jid, d);
				hit = strcmp(r, full) == 0;
				free(r);
			}
			if (!hit && phn_jstr(phn_json_get(st, "resume_from"), "step_id")) {
				r = ref_norm(jid, phn_jstr(phn_json_get(st,
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
			if (ref_split(json_object_get_string(
			    json_object_array_get_idx(rd, i)), &dj, &ds) == 0 &&
			    phn_sched_ready_add(p, a->batch, dj, ds, 0) == -1)
				r = -1;
			free(dj);
			free(ds);
		}
		json_object_put(jd);
	}
	f = phn_asprintf("%s/%s/_active/%s@%s@%s", p->runs, a->batch, a->job,
	    a->step, a->name);
	if (unlink_quiet(f) == -1)
		r = -1;
	free(f);
	meta = att_meta(a->dir);
	if ((rid = phn_jstr(meta, "runner_id")) != NULL &&
	    phn_id_valid(rid, strlen(rid))) {
		f = phn_asprintf("%s/%s/active/%s@%s@%s@%s", p->runners, rid,
		    a->batch, a->job, a->step, a->name);
		if (unlink_quiet(f) == -1)
			r = -1;
		free(f);
	}
	if (phn_jstr(meta, "workdir") != NULL) {
		wd = phn_sched_workdir_dir(p, phn_jstr(meta, "workdir"));
		f = phn_asprintf("%s/%s@%s@%s@%s", wd, a->batch, a->job, a->step,
		    a->name);
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
	s->lease = (double)jint(d, "claim_lease_seconds", 300);
	s->stale = (double)jint(phn_json_get(d, "scoreboard"),
	    "heartbeat_stale_after_seconds", 300);
	s->stuck = (double)jint(phn_json_get(d, "scoreboard"), "stuck_after_seconds",
	    1800);
	s->max_harness = jint(phn_json_get(cfg->doc, "limits"), "max_harness_retries", 3);
	v = phn_json_get(d, "runner_capacity");
	s->runner_cap = phn_json_is_int(v) ? json_object_get_int64(v) : 0;
	v = phn_json_get(phn_json_get(d, "runner_pool"), "shared_filesystem");
	s->shared_fs = !json_object_is_type(v, json_type_boolean) ||
	    json_object_get_boolean(v);
	v = phn_json_get(phn_json_get(d, "runner_pool"), "resume_base_transfer_enabled");
	s->transfer = json_object_is_type(v, json_type_boolean) &&
	    json_object_get_boolean(v);
	s->resume_affinity = phn_jstr(phn_json_get(d, "runner_affinity"),
	    "resume_steps");
	s->grace = jnum(phn_json_get(d, "runner_affinity"), "prefer_grace_seconds", 30);
	s->workdirs = phn_json_get(phn_json_get(cfg->doc, "limits"), "per_workdir_concurrency");
	s->reap = 1;
}

/* The limit for a workdir, 0 if none. */
long long
phn_sched_workdir_limit(struct phn_sched *s, const char *workdir)
{
	return workdir ? jint(s->workdirs, workdir, 0) : 0;
}

/*
 * Rebuild a batch's ready index and active slots from its attempts: end
 * faulted attempts, make sure every queued or running attempt holds its
 * slot entries and that no entry outlives its attempt, and add a ready
 * entry for every step that is runnable now or after a backoff.  Stale
 * ready entries are left alone: they are harmless hints, and removing one
 * could race with an ender that just added a good one.
 */
static int rescan(struct phn_sched *, const char *, struct json_object **,
    char *, size_t);

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
	lp = bpath(p, batch, "_sched.lock");
	if ((fd = phn_lock_wait(lp, 300)) == -1) {
		snprintf(msg, msglen, "unable to lock %s: %s", lp,
		    strerror(errno));
		free(lp);
		return -1;
	}
	free(lp);
	f = bpath(p, batch, "_sched/ready.json");
	r = bpath(p, batch, "_ready");
	if ((flags & PHN_RESCAN_IF_NEEDED) && access(f, F_OK) == 0 &&
	    access(r, F_OK) == 0)
		goto out;
	if (!index_ok(p, batch)) {
		/* Set the damaged index aside, build a new one. */
		char *d = bpath(p, batch, "_sched");
		old = bpath(p, batch, ".sched-old-XXXXXX");
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
		rc = rescan(s, batch, summary, msg, msglen);
out:
	free(f);
	free(r);
	phn_lock_close(fd);
	return rc;
}

static int
rescan(struct phn_sched *s, const char *batch, struct json_object **summary,
    char *msg, size_t msglen)
{
	const struct phn_paths *p = s->p;
	struct json_object *info, *jl, *jd, *ov, *sd;
	struct acache cache;
	struct phn_eval ev;
	char *lp, *ad, *f, **names;
	long long nready = 0, nwait = 0, nactive = 0, nsteps = 0, nfaults = 0;
	size_t i, k, nj, nn;
	double now = phn_now();
	int fd, closed, bad;

	if ((info = phn_sched_info(p, batch)) == NULL) {
		snprintf(msg, msglen, "%s/_sched/index.json: unreadable", batch);
		return -1;
	}
	f = bpath(p, batch, "_ready");
	if (mkdir(f, 0755) == -1 && errno != EEXIST) {
		snprintf(msg, msglen, "unable to create %s: %s", f,
		    strerror(errno));
		free(f);
		json_object_put(info);
		return -1;
	}
	free(f);
	f = bpath(p, batch, "batch_closed.json");
	closed = access(f, F_OK) == 0;
	free(f);
	ad = bpath(p, batch, "_active");
	if (phn_mkdirs(ad, 0755) == -1) {
		snprintf(msg, msglen, "unable to create %s: %s", ad,
		    strerror(errno));
		free(ad);
		json_object_put(info);
		return -1;
	}
	lp = phn_path_join(ad, ".lock");
	if ((fd = phn_lock_wait(lp, SCHED_LOCK_WAIT)) == -1) {
		snprintf(msg, msglen, "unable to lock %s: %s", lp,
		    strerror(errno));
		free(lp);
		free(ad);
		json_object_put(info);
		return -1;
	}
	free(lp);
	/* Stale entries first; the faulted attempts end through expire(). */
	phn_sched_slots(s, ad, batch, 1, now);
	jl = phn_json_get(info, "jobs");
	nj = json_object_array_length(jl);
	for (i = 0; i < nj; i++) {
		const char *job = json_object_get_string(
		    json_object_array_get_idx(jl, i));
		if ((jd = phn_sched_job(p, batch, job)) == NULL)
			continue;
		json_object_object_foreach(phn_json_get(jd, "steps"), sid, sv) {
			struct phn_atts as;
			(void)sv;
			atts_load(p, batch, job, sid, &as);
			for (k = 0; k < as.n; k++) {
				struct phn_att *a = &as.v[k];
				struct json_object *m;
				const char *rid;
				char *e;
				if (!att_active(a))
					continue;
				if (expire(s, a->dir, now)) {
					nfaults++;
					continue;
				}
				nactive++;
				e = phn_asprintf("%s/%s@%s@%s", ad, job, sid,
				    a->name);
				touch_new(e);
				free(e);
				m = att_meta(a->dir);
				rid = phn_jstr(m, "runner_id");
				if (rid && phn_id_valid(rid, strlen(rid))) {
					e = phn_asprintf("%s/%s/active", p->runners,
					    rid);
					phn_mkdirs(e, 0755);
					free(e);
					e = phn_asprintf("%s/%s/active/%s@%s@%s@%s",
					    p->runners, rid, batch, job, sid,
					    a->name);
					touch_new(e);
					free(e);
				}
				if (phn_sched_workdir_limit(s, phn_jstr(m,
				    "workdir")) > 0) {
					char *wd = phn_sched_workdir_dir(p,
					    phn_jstr(m, "workdir"));
					phn_mkdirs(wd, 0755);
					e = phn_asprintf("%s/%s@%s@%s@%s", wd, batch,
					    job, sid, a->name);
					touch_new(e);
					free(e);
					free(wd);
				}
				json_object_put(m);
			}
			phn_sched_atts_free(&as);
		}
		json_object_put(jd);
	}
	phn_lock_close(fd);

	/* Stale claims: a claimer died between its rename and its unlink. */
	f = bpath(p, batch, "_claimed");
	if ((names = phn_dir_list(f, &nn)) != NULL) {
		for (i = 0; i < nn; i++) {
			char *e = phn_path_join(f, names[i]);
			struct stat sb;
			if (stat(e, &sb) == 0 && now - (double)sb.st_ctime > 120)
				unlink_quiet(e);
			free(e);
		}
		phn_dir_list_free(names, nn);
	}
	free(f);

	memset(&cache, 0, sizeof(cache));
	cache.cap = 64;
	for (i = 0; i < nj; i++)
		cache.cap += 64;
	cache.cap = cache.cap > 1u << 22 ? 1u << 22 : cache.cap;
	cache.key = calloc(cache.cap, sizeof(*cache.key));
	cache.v = calloc(cache.cap, sizeof(*cache.v));
	if (cache.key == NULL || cache.v == NULL)
		phn_die(PHN_EXIT_TEMP, "out of memory");
	s->cache = &cache;
	for (i = 0; i < nj && !closed; i++) {
		const char *job = json_object_get_string(
		    json_object_array_get_idx(jl, i));
		char m2[256];
		if ((jd = phn_sched_job(p, batch, job)) == NULL)
			continue;
		ov = phn_overrides_read(p, batch, job, &bad, m2, sizeof(m2));
		json_object_object_foreach(phn_json_get(jd, "steps"), sid, sv2) {
			(void)sv2;
			nsteps++;
			if (bad)
				continue;
			phn_sched_eval(s, batch, jd, sid, ov, now, &ev);
			if (ev.verdict == PHN_EVAL_RUN || ev.verdict ==
			    PHN_EVAL_WAIT) {
				if (ev.verdict == PHN_EVAL_RUN)
					nready++;
				else
					nwait++;
				if (phn_sched_ready_add(p, batch, job, sid,
				    ev.not_before) == -1)
					phn_warn("unable to write %s/_ready/%s@%s:",
					    batch, job, sid);
			}
			phn_sched_eval_free(&ev);
		}
		json_object_put(ov);
		json_object_put(jd);
	}
	s->cache = NULL;
	for (i = 0; i < cache.cap; i++)
		if (cache.key[i]) {
			free(cache.key[i]);
			phn_sched_atts_free(&cache.v[i]);
		}
	free(cache.key);
	free(cache.v);
	sd = json_object_new_object();
	{
		char iso[PHN_ISO_LEN];
		phn_iso(now, iso);
		json_object_object_add(sd, "rebuilt_at", json_object_new_string(iso));
	}
	f = bpath(p, batch, "_sched/ready.json");
	{
		char *s2 = phn_json_pretty(sd);
		write_hint(f, s2);
		free(s2);
	}
	free(f);
	json_object_put(sd);
	if (summary != NULL) {
		*summary = json_object_new_object();
		json_object_object_add(*summary, "batch_id",
		    json_object_new_string(batch));
		json_object_object_add(*summary, "closed",
		    json_object_new_boolean(closed));
		json_object_object_add(*summary, "steps",
		    json_object_new_int64(nsteps));
		json_object_object_add(*summary, "ready",
		    json_object_new_int64(nready));
		json_object_object_add(*summary, "backoff",
		    json_object_new_int64(nwait));
		json_object_object_add(*summary, "active",
		    json_object_new_int64(nactive));
		json_object_object_add(*summary, "expired",
		    json_object_new_int64(nfaults));
	}
	free(ad);
	json_object_put(info);
	return 0;
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
		f = phn_asprintf("%s/%s/%s/steps/%s/output_schema.json", p->runs,
		    batch, job, step);
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

static struct json_object *
meta_build(struct phn_sched *s, const char *batch, struct json_object *info,
    struct json_object *jd, const char *step, struct phn_eval *ev,
    const char *run_id, const char *iso)
{
	struct json_object *m = json_object_new_object(), *sd, *v;
	const char *job = phn_jstr(jd, "job_id");
	char *pf;

	sd = phn_json_get(phn_json_get(jd, "steps"), step);
	json_object_object_add(m, "batch_id", json_object_new_string(batch));
	json_object_object_add(m, "job_id", json_object_new_string(job));
	json_object_object_add(m, "step_id", json_object_new_string(step));
	json_object_object_add(m, "run_id", json_object_new_string(run_id));
	json_object_object_add(m, "runner_id", json_object_new_string(s->runner));
	json_object_object_add(m, "claimed_at", json_object_new_string(iso));
	json_object_object_add(m, "attempt_number",
	    json_object_new_int64(ev->attempt_number));
	json_object_object_add(m, "invocation", json_object_new_string(
	    ev->resume != NULL || ev->retry_resume != NULL ? "resume" : "exec"));
	if (phn_jstr(sd, "prompt_sha256"))
		json_object_object_add(m, "prompt_sha256", json_object_new_string(
		    phn_jstr(sd, "prompt_sha256")));
	pf = phn_asprintf("%s/%s/steps/%s/prompt.txt", batch, job, step);
	json_object_object_add(m, "prompt_file", json_object_new_string(pf));
	free(pf);
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
	if (ev->resume != NULL) {
		json_object_object_add(m, "resume_from",
		    json_object_get(ev->resume));
		json_object_object_add(m, "parent_run_id", json_object_get(
		    phn_json_get(ev->resume, "selected_run_id")));
	}
	if (ev->retry_resume != NULL) {
		json_object_object_add(m, "retry_resume_from",
		    json_object_get(ev->retry_resume));
		json_object_object_add(m, "parent_run_id", json_object_get(
		    phn_json_get(ev->retry_resume, "run_id")));
	}
	if (ev->resume != NULL || ev->retry_resume != NULL)
		json_object_object_add(m, "codex_thread_id", ev->thread_id ?
		    json_object_new_string(ev->thread_id) : NULL);
	if (ev->force_nonce > 0 || ev->applied_force > 0)
		json_object_object_add(m, "force_retry_applied_nonce",
		    json_object_new_int64(ev->force_nonce > 0 ? ev->force_nonce :
		    ev->applied_force));
	if (ev->requeue_nonce > 0 || ev->applied_requeue > 0)
		json_object_object_add(m, "requeue_applied_nonce",
		    json_object_new_int64(ev->requeue_nonce > 0 ?
		    ev->requeue_nonce : ev->applied_requeue));
	return m;
}

/* Whether this runner may take a runnable step now (0), or when (*at). */
static int
placement(struct phn_sched *s, struct json_object *sd, struct phn_eval *ev,
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
	if (!ev->resume_src || ev->src_runner == NULL ||
	    strcmp(ev->src_runner, s->runner) == 0)
		return 0;
	aff = phn_jstr(sd, "affinity");
	if (aff == NULL)
		aff = s->resume_affinity ? s->resume_affinity :
		    "pin_resume_source";
	locality = !s->shared_fs && !s->transfer;
	if (locality || strcmp(aff, "pin_resume_source") == 0)
		return 1;
	if (strcmp(aff, "prefer_resume_source") != 0)
		return 0;
	if (phn_sched_drained(s->p, ev->src_runner) || now >= since + s->grace)
		return 0;
	*at = since + s->grace;
	return 1;
}

static int
claim_res(struct phn_claim *res, int v, double at, const char *why)
{
	res->verdict = v;
	res->at = at;
	snprintf(res->why, sizeof(res->why), "%s", why);
	return v;
}

/*
 * Claim one step for s->runner, given that the caller took its ready
 * entry: under the step lock, re-check the predicate against the
 * attempts, then the placement rules and the limits (batch concurrency
 * conc, runner capacity, workdir), then create the attempt (meta.json,
 * state.json queued, slot entries, current.json).  since is when the
 * entry became ready (for prefer_resume_source).  The verdict says what
 * to do with the entry: PHN_CLAIM_OK (drop it: claimed, res->dir),
 * PHN_CLAIM_DROP (drop it: not runnable), PHN_CLAIM_LATER (rewrite it
 * with not_before res->at), PHN_CLAIM_NOTME, PHN_CLAIM_*_FULL and
 * PHN_CLAIM_ERROR (put it back).
 */
int
phn_sched_claim(struct phn_sched *s, const char *batch,
    struct json_object *info, struct json_object *jd, const char *step,
    long long conc, double since, struct phn_claim *res)
{
	const struct phn_paths *p = s->p;
	const char *job = phn_jstr(jd, "job_id"), *wdp;
	struct json_object *ov, *meta, *f, *st;
	struct phn_eval ev;
	struct phn_attempt a;
	char *lp, *ad = NULL, *rd = NULL, *wd = NULL, *e1 = NULL, *e2 = NULL,
	    *e3 = NULL, *run_id = NULL, *name = NULL, *dir = NULL, m[512];
	char stamp[PHN_STAMP_LEN], iso[PHN_ISO_LEN];
	int sfd, bfd = -1, rfd = -1, wfd = -1, bad, tries, made;
	long long wlim;
	double now = phn_now(), at;

	memset(res, 0, sizeof(*res));
	lp = phn_asprintf("%s/%s/%s/steps/%s/step.lock", p->runs, batch, job,
	    step);
	if ((sfd = phn_lock_wait(lp, 30)) == -1) {
		snprintf(m, sizeof(m), "unable to lock %s: %s", lp,
		    strerror(errno));
		free(lp);
		return claim_res(res, PHN_CLAIM_ERROR, 0, m);
	}
	free(lp);
	lp = bpath(p, batch, "batch_closed.json");
	if (access(lp, F_OK) == 0) {
		free(lp);
		phn_lock_close(sfd);
		return claim_res(res, PHN_CLAIM_DROP, 0, "batch closed");
	}
	free(lp);
	ov = phn_overrides_read(p, batch, job, &bad, m, sizeof(m));
	if (bad) {
		phn_lock_close(sfd);
		return claim_res(res, PHN_CLAIM_DROP, 0, m);
	}
	phn_sched_eval(s, batch, jd, step, ov, now, &ev);
	json_object_put(ov);
	if (ev.verdict == PHN_EVAL_WAIT) {
		claim_res(res, PHN_CLAIM_LATER, ev.not_before, ev.why);
		goto out;
	}
	if (ev.verdict != PHN_EVAL_RUN) {
		claim_res(res, PHN_CLAIM_DROP, 0, ev.why);
		goto out;
	}
	if (placement(s, phn_json_get(phn_json_get(jd, "steps"), step), &ev, now, since, &at)) {
		claim_res(res, PHN_CLAIM_NOTME, at, ev.requeue_nonce ?
		    "requeued to another runner" : "affinity: for runner of the "
		    "resume source");
		goto out;
	}

	ad = bpath(p, batch, "_active");
	if ((bfd = slot_lock(ad)) == -1) {
		snprintf(m, sizeof(m), "unable to lock %s/.lock: %s", ad,
		    strerror(errno));
		claim_res(res, PHN_CLAIM_ERROR, 0, m);
		goto out;
	}
	if (phn_sched_slots(s, ad, batch, 0, now) >= conc &&
	    phn_sched_slots(s, ad, batch, 1, now) >= conc) {
		claim_res(res, PHN_CLAIM_BATCH_FULL, 0, "batch concurrency");
		goto out;
	}
	if (s->runner_cap > 0) {
		rd = phn_asprintf("%s/%s/active", p->runners, s->runner);
		if ((rfd = slot_lock(rd)) == -1) {
			snprintf(m, sizeof(m), "unable to lock %s/.lock: %s", rd,
			    strerror(errno));
			claim_res(res, PHN_CLAIM_ERROR, 0, m);
			goto out;
		}
		if (phn_sched_slots(s, rd, NULL, 0, now) >= s->runner_cap &&
		    phn_sched_slots(s, rd, NULL, 1, now) >= s->runner_cap) {
			claim_res(res, PHN_CLAIM_RUNNER_FULL, 0,
			    "runner capacity");
			goto out;
		}
	}
	wdp = phn_jstr(jd, "workdir");
	if ((wlim = phn_sched_workdir_limit(s, wdp)) > 0) {
		wd = phn_sched_workdir_dir(p, wdp);
		if ((wfd = slot_lock(wd)) == -1) {
			snprintf(m, sizeof(m), "unable to lock %s/.lock: %s", wd,
			    strerror(errno));
			claim_res(res, PHN_CLAIM_ERROR, 0, m);
			goto out;
		}
		lp = phn_path_join(wd, ".path");
		if (access(lp, F_OK) == -1) {
			char *t = phn_asprintf("%s\n", wdp);
			write_hint(lp, t);
			free(t);
		}
		free(lp);
		if (phn_sched_slots(s, wd, NULL, 0, now) >= wlim &&
		    phn_sched_slots(s, wd, NULL, 1, now) >= wlim) {
			claim_res(res, PHN_CLAIM_WORKDIR_FULL, 0,
			    "per_workdir_concurrency");
			goto out;
		}
	}

	/* One clock read for the directory name and the run id. */
	for (tries = 0, made = 0; tries < 5 && !made; tries++) {
		now = phn_now();
		phn_stamp(now, stamp);
		free(run_id);
		free(name);
		free(dir);
		/*
		 * The 8 hex digits are the microseconds (5) and 3 random
		 * ones, so that attempt names, which begin with a stamp of
		 * whole seconds, sort in claim order within a second too.
		 */
		run_id = phn_asprintf("run_%s_%05lx%03x", stamp,
		    (unsigned long)((now - floor(now)) * 1e6) & 0xfffff,
		    (unsigned)(phn_random32() & 0xfff));
		name = phn_asprintf("%s_%s", stamp, run_id);
		dir = phn_asprintf("%s/%s/%s/steps/%s/attempts/%s", p->runs, batch,
		    job, step, name);
		lp = phn_path_dirname(dir);
		phn_mkdirs(lp, 0755);
		free(lp);
		if (mkdir(dir, 0755) == 0)
			made = 1;
		else if (errno != EEXIST)
			break;
	}
	if (!made) {
		snprintf(m, sizeof(m), "unable to create %s: %s", dir,
		    strerror(errno));
		free(dir);
		dir = NULL;
		goto fail;
	}
	e1 = phn_asprintf("%s/%s@%s@%s", ad, job, step, name);
	if (rd != NULL)
		e2 = phn_asprintf("%s/%s@%s@%s@%s", rd, batch, job, step, name);
	if (wd != NULL)
		e3 = phn_asprintf("%s/%s@%s@%s@%s", wd, batch, job, step, name);
	phn_iso(now, iso);
	if (touch_new(e1) == -1 ||
	    (e2 && touch_new(e2) == -1) || (e3 && touch_new(e3) == -1)) {
		snprintf(m, sizeof(m), "unable to create %s: %s", dir,
		    strerror(errno));
		goto fail;
	}
	meta = meta_build(s, batch, info, jd, step, &ev, run_id, iso);
	lp = phn_path_join(dir, "meta.json");
	if (phn_json_write_once(lp, meta) == -1) {
		snprintf(m, sizeof(m), "unable to write %s: %s", lp,
		    strerror(errno));
		free(lp);
		json_object_put(meta);
		goto fail;
	}
	free(lp);
	json_object_put(meta);
	f = json_object_new_object();
	json_object_object_add(f, "claimed_at", json_object_new_string(iso));
	json_object_object_add(f, "runner_id", json_object_new_string(s->runner));
	if (phn_state_update(dir, "queued", f) != 1) {
		snprintf(m, sizeof(m), "unable to write %s/state.json: %s", dir,
		    strerror(errno));
		json_object_put(f);
		goto fail;
	}
	json_object_put(f);
	phn_lock_close(wfd);
	phn_lock_close(rfd);
	phn_lock_close(bfd);
	wfd = rfd = bfd = -1;
	if (phn_attempt_parse(p, dir, &a) == 0) {
		if ((st = phn_state_read(dir)) != NULL)
			phn_current_note(p, &a, st);
		json_object_put(st);
		phn_attempt_free(&a);
	}
	if (ev.force_nonce > 0)
		phn_current_step_set(p, batch, job, step,
		    "force_retry_applied_nonce",
		    json_object_new_int64(ev.force_nonce));
	if (ev.requeue_nonce > 0)
		phn_current_step_set(p, batch, job, step, "requeue_applied_nonce",
		    json_object_new_int64(ev.requeue_nonce));
	claim_res(res, PHN_CLAIM_OK, 0, "claimed");
	res->dir = dir;
	res->entry = phn_asprintf("%s@%s@%s", job, step, name);
	dir = NULL;
	goto out;
fail:
	if (e1)
		unlink_quiet(e1);
	if (e2)
		unlink_quiet(e2);
	if (e3)
		unlink_quiet(e3);
	if (dir != NULL)
		phn_rmtree(dir);
	claim_res(res, PHN_CLAIM_ERROR, 0, m);
out:
	phn_lock_close(wfd);
	phn_lock_close(rfd);
	phn_lock_close(bfd);
	phn_lock_close(sfd);
	phn_sched_eval_free(&ev);
	free(ad);
	free(rd);
	free(wd);
	free(e1);
	free(e2);
	free(e3);
	free(run_id);
	free(name);
	free(dir);
	return res->verdict;
}
