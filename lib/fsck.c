/*
 * fsck.c - phn-fsck: check the invariants of a runs store, and repair
 * what is derived.
 *
 * The attempt directories are the source of truth; the write-once files
 * (batch_meta.json, prompt.txt, output_schema.json, an attempt's
 * meta.json and final.json) are never changed, only reported.  What is
 * derived - the schedule index _sched/, the slot entries _active/ and
 * runners/R/active/, the ready index _ready/ and _claimed/, current.json
 * - is rebuilt by the code that owns it: phn_sched_rescan (sched.c) and
 * phn_current_check (store.c); faulted attempts (expired lease, dead
 * spawner, never given a state) are ended by the same rescan, through the
 * reaping rules of liveness.c.  Temp files a dead writer left
 * (phn_atomic_is_temp) are removed.
 *
 * A check is one pass that collects problems; --repair then fixes what
 * it can and checks again: a problem that is gone was repaired, one that
 * is left was not.  Checks assume a quiescent store (no tick, claimer or
 * spawner running); --repair makes sure no tick is (runs/_system/
 * tick.lock).
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"
#include "claim.h"

/* What --repair does about a kind of problem; NULL: it cannot. */
static const struct {
	const char *kind, *action;
} kinds[] = {
	{ "temp", "removed" },
	{ "batch_meta", NULL },
	{ "write_once", NULL },
	{ "sched_index", "rebuilt" },
	{ "attempt_state", "ended" },
	{ "attempt_incomplete", NULL },
	{ "live_attempts", NULL },
	{ "fault", "reaped" },
	{ "active_index", "rebuilt" },
	{ "ready_index", "rebuilt" },
	{ "claimed_index", "rebuilt" },
	{ "slot", "rebuilt" },
	{ "current", "rebuilt" },
};

static const char *
action_of(const char *kind)
{
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(*kinds); i++)
		if (strcmp(kinds[i].kind, kind) == 0)
			return kinds[i].action;
	return NULL;
}

struct problem {
	char	*kind, *path, *msg;
	char	*batch, *job;	/* what a repair rebuilds, or NULL */
};

struct fsck {
	const struct phn_paths *p;
	struct phn_sched s;
	struct problem *v;
	size_t	 n;
	double	 now;
};

static void
add(struct fsck *f, const char *kind, const char *path, const char *batch,
    const char *job, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void
add(struct fsck *f, const char *kind, const char *path, const char *batch,
    const char *job, const char *fmt, ...)
{
	struct problem *pr;
	va_list ap;
	char buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	f->v = phn_realloc(f->v, (f->n + 1) * sizeof(*f->v));
	pr = &f->v[f->n++];
	pr->kind = phn_strdup(kind);
	pr->path = phn_strdup(path);
	pr->msg = phn_strdup(buf);
	pr->batch = batch ? phn_strdup(batch) : NULL;
	pr->job = job ? phn_strdup(job) : NULL;
}

static void
problems_free(struct fsck *f)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		free(f->v[i].kind);
		free(f->v[i].path);
		free(f->v[i].msg);
		free(f->v[i].batch);
		free(f->v[i].job);
	}
	free(f->v);
	f->v = NULL;
	f->n = 0;
}

/* Temp files anywhere under dir, but not inside an agent's own trees. */
static int
scan_temp(struct fsck *f, const char *dir, int depth)
{
	DIR *d;
	struct dirent *de;
	struct stat sb;
	char *e;

	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    strcmp(de->d_name, "codex_home") == 0 ||
		    strcmp(de->d_name, "_workspace") == 0)
			continue;
		e = phn_path_join(dir, de->d_name);
		if (phn_atomic_is_temp(de->d_name))
			add(f, "temp", e, NULL, NULL,
			    "a temp file a dead writer left");
		else if (depth < 8 && lstat(e, &sb) == 0 && S_ISDIR(sb.st_mode))
			scan_temp(f, e, depth + 1);
		free(e);
	}
	closedir(d);
	return 0;
}

/* A write-once snapshot and the digest batch_meta.json recorded for it. */
static void
check_digest(struct fsck *f, const char *path, const char *want)
{
	char *buf, hex[PHN_SHA256_HEX];
	size_t len;

	if (want == NULL)
		return;
	if (phn_read_file(path, &buf, &len, PHN_JSON_MAXSZ) == -1) {
		add(f, "write_once", path, NULL, NULL, "unreadable: %s",
		    strerror(errno));
		return;
	}
	phn_sha256_hex(buf, len, hex);
	free(buf);
	if (strcmp(hex, want) != 0)
		add(f, "write_once", path, NULL, NULL, "its SHA-256 is not "
		    "the one batch_meta.json recorded (%.12s...)", want);
}

/*
 * One attempt: write-once meta.json intact, state.json readable, the
 * files its state needs there.  Returns 1 if it is live (queued or
 * running), else 0.
 */
static int
check_attempt(struct fsck *f, const char *batch, const char *job,
    const char *step, const char *dir)
{
	struct phn_attempt a;
	struct json_object *meta, *st;
	char *mf = phn_path_join(dir, "meta.json"), *sf, *ff, msg[512], *ae;
	const char *status, *kind;
	int live = 0, missing, fault;

	if (phn_attempt_parse(f->p, dir, &a) == -1) {
		add(f, "attempt_incomplete", dir, NULL, NULL,
		    "not an attempt directory name");
		free(mf);
		return 0;
	}
	sf = phn_path_join(dir, "state.json");
	st = phn_json_load(sf, msg, sizeof(msg));
	missing = st == NULL && access(sf, F_OK) == -1 && errno == ENOENT;
	status = phn_jstr(st, "status");
	kind = phn_jstr(st, "failure_kind");
	if (st == NULL && missing)
		add(f, "attempt_state", sf, batch, job, "missing: a claimer "
		    "died creating the attempt");
	else if (st == NULL || status == NULL || phn_ast_of(status) < 0)
		add(f, "attempt_state", sf, batch, job, "%s", st == NULL ?
		    msg : "no valid status");
	meta = phn_json_load(mf, msg, sizeof(msg));
	if (meta == NULL) {
		/* A claim that died before its meta.json never ran. */
		if (!(kind && strcmp(kind, "claim_expired") == 0) &&
		    !(st == NULL && missing))
			add(f, "write_once", mf, NULL, NULL, "%s", msg);
	} else if (phn_jstr(meta, "run_id") == NULL ||
	    strcmp(phn_jstr(meta, "run_id"), a.run_id) != 0 ||
	    phn_jstr(meta, "step_id") == NULL ||
	    strcmp(phn_jstr(meta, "step_id"), step) != 0 ||
	    phn_jstr(meta, "job_id") == NULL ||
	    strcmp(phn_jstr(meta, "job_id"), job) != 0 ||
	    phn_jstr(meta, "batch_id") == NULL ||
	    strcmp(phn_jstr(meta, "batch_id"), batch) != 0)
		add(f, "write_once", mf, NULL, NULL, "its ids (batch_id, "
		    "job_id, step_id, run_id) are not the directory's");
	if (status != NULL && phn_status_terminal(status)) {
		if (phn_jstr(st, "ended_at") == NULL)
			add(f, "attempt_incomplete", sf, NULL, NULL,
			    "%s without ended_at", status);
		if (strcmp(status, "succeeded") == 0) {
			struct json_object *fj;
			ff = phn_path_join(dir, "final.json");
			if ((fj = phn_json_load(ff, msg, sizeof(msg))) == NULL)
				add(f, "attempt_incomplete", ff, NULL, NULL,
				    "succeeded without a Run Report: %s", msg);
			json_object_put(fj);
			free(ff);
		}
	} else if (st != NULL || missing) {
		live = 1;
		if (st != NULL) {
			fault = phn_attempt_judge(f->p, dir, st, f->now,
			    f->s.lim.lease, f->s.lim.stale, f->s.lim.stuck);
			if (fault == PHN_FAULT_LEASE)
				add(f, "fault", dir, batch, job, "queued, its "
				    "claim lease expired");
			else if (fault == PHN_FAULT_ORPHAN)
				add(f, "fault", dir, batch, job, "running, its "
				    "spawner is gone");
		}
		ae = phn_active_entry(f->p, batch, job, step, a.name);
		if (access(ae, F_OK) == -1)
			add(f, "active_index", ae, batch, job, "missing for "
			    "a %s attempt", status ? status : "new");
		free(ae);
	}
	json_object_put(meta);
	json_object_put(st);
	free(mf);
	free(sf);
	phn_attempt_free(&a);
	return live;
}

/* Whether a _claimed/ entry for job@step exists. */
static int
claimed(const struct phn_paths *p, const char *batch, const char *job,
    const char *step)
{
	char *d = phn_batch_path(p, batch, "_claimed"), **v;
	char *pre = phn_asprintf("%s@%s@", job, step);
	size_t n, i, k = strlen(pre);
	int r = 0;

	if ((v = phn_dir_list(d, &n)) != NULL)
		for (i = 0; i < n && !r; i++)
			r = strncmp(v[i], pre, k) == 0;
	phn_dir_list_free(v, n);
	free(pre);
	free(d);
	return r;
}

/* One step: its snapshots, its attempts, and its ready entry. */
static void
check_step(struct fsck *f, const char *batch, const char *job,
    struct json_object *sm, struct json_object *jd, struct json_object *ov)
{
	const char *step = phn_jstr(sm, "step_id");
	char *sd, *ad, **v, *d, *re;
	size_t n, i;
	int live = 0;
	struct phn_verdict ev;

	if (step == NULL)
		return;
	sd = phn_step_path(f->p, batch, job, step, "prompt.txt");
	check_digest(f, sd, phn_jstr(sm, "prompt_sha256"));
	free(sd);
	sd = phn_step_path(f->p, batch, job, step, "output_schema.json");
	check_digest(f, sd, phn_jstr(sm, "output_schema_sha256"));
	free(sd);
	ad = phn_attempt_path(f->p, batch, job, step, NULL, NULL);
	if ((v = phn_dir_list(ad, &n)) != NULL) {
		for (i = 0; i < n; i++) {
			d = phn_path_join(ad, v[i]);
			live += check_attempt(f, batch, job, step, d);
			free(d);
		}
	}
	phn_dir_list_free(v, n);
	if (live > 1)
		add(f, "live_attempts", ad, NULL, NULL, "%d attempts queued "
		    "or running at once (at most one may be)", live);
	free(ad);
	if (jd == NULL || live > 0)
		return;
	/* Runnable (now or after a backoff): the ready index must say so. */
	if (phn_sched_step_verdict(&f->s, batch, jd, step, ov, &ev) <=
	    PHN_V_WAIT) {
		re = phn_ready_entry(f->p, batch, job, step);
		if (access(re, F_OK) == -1 && !claimed(f->p, batch, job, step))
			add(f, "ready_index", re, batch, job, "missing for a "
			    "runnable step (%s)", ev.why_ready ? ev.why_ready :
			    "backoff");
		free(re);
	}
	phn_verdict_free(&ev);
}

/* Slot entries (of _active/ or a runner's or workdir's) for live attempts. */
static void
check_slots(struct fsck *f, const char *dir, const char *batch, int want)
{
	char **v, *ad, *e, *part[4];
	size_t n, i;
	struct json_object *st;
	const char *s;

	if ((v = phn_dir_list(dir, &n)) == NULL)
		return;
	for (i = 0; i < n; i++) {
		e = phn_path_join(dir, v[i]);
		if (phn_entry_split(v[i], part, want) == -1) {
			add(f, want == 3 ? "active_index" : "slot", e, batch,
			    NULL, "not an entry name");
			free(e);
			continue;
		}
		ad = phn_attempt_path(f->p, want == 3 ? batch : part[0],
		    part[want - 3], part[want - 2], part[want - 1], NULL);
		st = phn_state_read(ad);
		s = phn_jstr(st, "status");
		if (access(ad, F_OK) == -1)
			add(f, want == 3 ? "active_index" : "slot", e,
			    want == 3 ? batch : part[0], NULL,
			    "its attempt does not exist");
		else if (s != NULL && phn_status_terminal(s))
			add(f, want == 3 ? "active_index" : "slot", e,
			    want == 3 ? batch : part[0], NULL,
			    "its attempt ended (%s)", s);
		json_object_put(st);
		free(ad);
		free(part[0]);	/* the parts share it */
		free(e);
	}
	phn_dir_list_free(v, n);
}

static void
check_batch(struct fsck *f, const char *batch)
{
	struct json_object *meta, *jobs, *info, *jd, *ov;
	char msg[512], *mf, *d;
	size_t i, k, nj, ns;
	int bad, idx_ok, ready_built;

	mf = phn_batch_path(f->p, batch, "batch_meta.json");
	if ((meta = phn_json_load(mf, msg, sizeof(msg))) == NULL ||
	    !json_object_is_type(jobs = phn_json_get(meta, "jobs"),
	    json_type_array)) {
		add(f, "batch_meta", mf, NULL, NULL, "%s (the batch is not "
		    "checked further)", meta == NULL ? msg : "no jobs array");
		json_object_put(meta);
		free(mf);
		return;
	}
	free(mf);
	/* The claimer builds the schedule index on first use: only one that
	 * was built (its directory exists) can be damaged. */
	info = phn_sched_info(f->p, batch);
	idx_ok = info != NULL;
	json_object_put(info);
	d = phn_batch_path(f->p, batch, "_sched");
	if (!idx_ok && access(d, F_OK) == 0) {
		free(d);
		d = phn_batch_path(f->p, batch, "_sched/index.json");
		add(f, "sched_index", d, batch, NULL, "missing or unreadable");
	}
	free(d);
	/* Likewise the ready index (_sched/ready.json: it was built). */
	d = phn_batch_path(f->p, batch, "_sched/ready.json");
	ready_built = access(d, F_OK) == 0;
	free(d);
	nj = json_object_array_length(jobs);
	for (i = 0; i < nj; i++) {
		struct json_object *jm = json_object_array_get_idx(jobs, i);
		const char *job = phn_jstr(jm, "job_id");
		struct json_object *steps = phn_json_get(jm, "steps");
		if (job == NULL)
			continue;
		jd = idx_ok ? phn_sched_job(f->p, batch, job) : NULL;
		if (idx_ok && jd == NULL) {
			d = phn_batch_path(f->p, batch, "_sched/jobs");
			add(f, "sched_index", d, batch, NULL, "%s.json: missing "
			    "or unreadable", job);
			free(d);
		}
		ov = phn_overrides_read(f->p, batch, job, &bad, msg,
		    sizeof(msg));
		ns = json_object_is_type(steps, json_type_array) ?
		    json_object_array_length(steps) : 0;
		for (k = 0; k < ns; k++)
			check_step(f, batch, job, json_object_array_get_idx(
			    steps, k), ready_built ? jd : NULL, bad ? NULL : ov);
		if (phn_current_check(f->p, batch, job, 0, msg,
		    sizeof(msg)) == 1) {
			d = phn_job_path(f->p, batch, job, "current.json");
			add(f, "current", d, batch, job, "%s", msg);
			free(d);
		}
		json_object_put(ov);
		json_object_put(jd);
	}
	d = phn_batch_path(f->p, batch, "_active");
	check_slots(f, d, batch, 3);
	free(d);
	d = phn_batch_path(f->p, batch, "_claimed");
	{
		char **v;
		size_t n, j;
		if ((v = phn_dir_list(d, &n)) != NULL)
			for (j = 0; j < n; j++) {
				char *e = phn_path_join(d, v[j]);
				add(f, "claimed_index", e, batch, NULL, "a claim "
				    "a claimer did not finish");
				free(e);
			}
		phn_dir_list_free(v, n);
	}
	free(d);
	json_object_put(meta);
}

/* runners/R/active/ and runs/_system/workdir_slots/H/. */
static void
check_runner_slots(struct fsck *f)
{
	char **v, *d, *sys;
	size_t n, i;

	if ((v = phn_dir_list(f->p->runners, &n)) != NULL)
		for (i = 0; i < n; i++) {
			d = phn_runner_path(f->p, v[i], "active");
			check_slots(f, d, NULL, 4);
			free(d);
		}
	phn_dir_list_free(v, n);
	sys = phn_system_path(f->p, "workdir_slots");
	if ((v = phn_dir_list(sys, &n)) != NULL)
		for (i = 0; i < n; i++) {
			d = phn_path_join(sys, v[i]);
			check_slots(f, d, NULL, 4);
			free(d);
		}
	phn_dir_list_free(v, n);
	free(sys);
}

static int
check(struct fsck *f)
{
	char **v;
	size_t n, i;

	f->now = phn_now();
	if ((v = phn_dir_list(f->p->runs, &n)) == NULL) {
		phn_warn("unable to list %s:", f->p->runs);
		return -1;
	}
	scan_temp(f, f->p->runs, 0);
	for (i = 0; i < n; i++) {
		char *bd = phn_path_join(f->p->runs, v[i]);
		struct stat sb;
		if (v[i][0] != '_' && stat(bd, &sb) == 0 &&
		    S_ISDIR(sb.st_mode))
			check_batch(f, v[i]);
		free(bd);
	}
	phn_dir_list_free(v, n);
	check_runner_slots(f);
	return 0;
}

/* Count a slot directory again, under its lock, dropping stale entries. */
static void
slots_repair(struct fsck *f, const char *entry)
{
	char *dir = phn_path_dirname(entry), *lp = phn_path_join(dir, ".lock");
	int fd;

	if ((fd = phn_lock_wait(lp, 30)) != -1) {
		phn_sched_slots(&f->s, dir, NULL, 1, phn_now());
		phn_lock_close(fd);
	}
	free(lp);
	free(dir);
}

/* Whether batch b is in the list (a repair does each batch once). */
static int
seen(char ***v, size_t *n, const char *b)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp((*v)[i], b) == 0)
			return 1;
	*v = phn_realloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = phn_strdup(b);
	return 0;
}

static void
repair(struct fsck *f)
{
	char **done = NULL, **jobs = NULL, msg[512];
	size_t nd = 0, nj = 0, i;
	struct json_object *sum;

	for (i = 0; i < f->n; i++) {
		struct problem *pr = &f->v[i];
		if (strcmp(pr->kind, "temp") == 0) {
			struct stat sb;
			if (lstat(pr->path, &sb) == 0 && S_ISDIR(sb.st_mode))
				phn_rmtree(pr->path);
			else
				unlink(pr->path);
		} else if (strcmp(pr->kind, "slot") == 0)
			slots_repair(f, pr->path);
	}
	/* Then every batch with a derived problem: one rescan each. */
	for (i = 0; i < f->n; i++) {
		struct problem *pr = &f->v[i];
		if (pr->batch == NULL || action_of(pr->kind) == NULL ||
		    seen(&done, &nd, pr->batch))
			continue;
		if (phn_sched_rescan(&f->s, pr->batch, PHN_RESCAN_QUIESCENT,
		    &sum, msg, sizeof(msg)) == -1)
			phn_warn("%s: unable to rebuild: %s", pr->batch, msg);
		json_object_put(sum);
	}
	/* current.json last: the rescan may have ended attempts. */
	for (i = 0; i < nd; i++) {
		struct json_object *meta = phn_batch_meta(f->p, done[i], msg,
		    sizeof(msg)), *jl = phn_json_get(meta, "jobs");
		size_t k, n = json_object_is_type(jl, json_type_array) ?
		    json_object_array_length(jl) : 0;
		for (k = 0; k < n; k++) {
			const char *job = phn_jstr(json_object_array_get_idx(jl,
			    k), "job_id");
			if (job != NULL && phn_current_check(f->p, done[i], job,
			    1, msg, sizeof(msg)) == -1)
				phn_warn("%s/%s: unable to rebuild current.json:",
				    done[i], job);
		}
		json_object_put(meta);
	}
	for (i = 0; i < nd; i++)
		free(done[i]);
	free(done);
	free(jobs);
	(void)nj;
}

static int
same(const struct problem *a, const struct problem *b)
{
	return strcmp(a->kind, b->kind) == 0 && strcmp(a->path, b->path) == 0;
}

static void
report(const struct fsck *f, const struct problem *pr, int repairing,
    int repaired, const struct phn_fsck_opts *o)
{
	const char *act = action_of(pr->kind);
	char *rel = phn_path_rel(f->p->runs, pr->path);
	const char *path = rel[0] == '/' ? pr->path : rel;

	if (o->json) {
		struct json_object *j = json_object_new_object();
		json_object_object_add(j, "kind", json_object_new_string(
		    pr->kind));
		json_object_object_add(j, "path", json_object_new_string(path));
		json_object_object_add(j, "problem", json_object_new_string(
		    pr->msg));
		json_object_object_add(j, "repairable",
		    json_object_new_boolean(act != NULL));
		if (repairing) {
			json_object_object_add(j, "repaired",
			    json_object_new_boolean(repaired));
			json_object_object_add(j, "action", repaired && act ?
			    json_object_new_string(act) : NULL);
		}
		fputs(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
		    JSON_C_TO_STRING_NOSLASHESCAPE), o->out);
		fputc('\n', o->out);
		json_object_put(j);
	} else if (repairing)
		fprintf(o->out, "%s: %s: %s (%s)\n", path, pr->kind, pr->msg,
		    repaired ? act ? act : "gone" : act ? "not repaired" :
		    "not repaired: write-once or needs an operator");
	else
		fprintf(o->out, "%s: %s: %s\n", path, pr->kind, pr->msg);
	free(rel);
}

int
phn_fsck_run(const struct phn_paths *p, const struct phn_config *cfg,
    const struct phn_fsck_opts *o)
{
	struct fsck f, g;
	size_t i, k;
	char *lp;
	int fd = -1, left;

	memset(&f, 0, sizeof(f));
	f.p = p;
	phn_sched_init(&f.s, p, cfg);
	f.s.reap = 0;
	if (o->repair) {
		lp = phn_system_path(p, "tick.lock");
		fd = phn_lock_open(lp, LOCK_EX | LOCK_NB);
		if (fd == -1 && errno == EWOULDBLOCK) {
			phn_warn("a tick is running on %s (it holds %s); "
			    "repair a quiescent store", p->runs, lp);
			free(lp);
			return -1;
		}
		free(lp);
	}
	if (check(&f) == -1) {
		phn_lock_close(fd);
		return -1;
	}
	if (!o->repair) {
		for (i = 0; i < f.n; i++)
			report(&f, &f.v[i], 0, 0, o);
		left = (int)f.n;
		problems_free(&f);
		return left;
	}
	repair(&f);
	g = f;
	g.v = NULL;
	g.n = 0;
	if (check(&g) == -1) {
		problems_free(&f);
		phn_lock_close(fd);
		return -1;
	}
	for (i = 0; i < f.n; i++) {
		for (k = 0; k < g.n && !same(&f.v[i], &g.v[k]); k++)
			;
		report(&f, &f.v[i], 1, k == g.n, o);
	}
	/* Anything the repair turned up (it should not): not repaired. */
	for (k = 0; k < g.n; k++) {
		for (i = 0; i < f.n && !same(&f.v[i], &g.v[k]); i++)
			;
		if (i == f.n)
			report(&g, &g.v[k], 1, 0, o);
	}
	left = (int)g.n;
	problems_free(&f);
	problems_free(&g);
	phn_lock_close(fd);
	return left;
}
