/*
 * ops.c - what the observing and operator commands share: finding an
 * attempt by directory or by ids, and the store an attempt directory
 * lies in, confining artifact names to their
 * attempt, cancel, and the command line of the batch-level commands.
 *
 * Cancel protocol (shared with phn-spawn): an attempt's state.json names
 * its spawner (spawner_pid, spawner_start) and codex's process group
 * (pgid, codex_start) with host and boot_id.  A signal goes only to a
 * process whose start time still matches the record on this host, so a
 * reused pid is never hit.  A live spawner gets SIGTERM, which phn-spawn
 * treats as cancel (it stops codex's group and records the outcome
 * itself); without one, codex's group is stopped here (SIGTERM, grace,
 * SIGKILL) and the attempt ended canceled.  A terminal attempt is left
 * exactly as it is: not even a lock file is created in it.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "phn.h"

/*
 * The attempt directory named by dir (absolute, relative to the cwd or
 * to the runs root) or by the four ids.  NULL with the reason in e when
 * it cannot be found or lies outside the runs store.
 */
char *
phn_attempt_select(const struct phn_paths *p, const char *dir,
    const char *batch, const char *job, const char *step, const char *run,
    struct phn_errs *e)
{
	struct phn_attempt a;
	struct stat st;
	char *d;

	if (dir != NULL) {
		if (phn_attempt_parse(p, dir, &a) == -1) {
			phn_errs_fail(e, 0, "%s: not an attempt directory of %s "
			    "(want BATCH/JOB/steps/STEP/attempts/NAME)", dir,
			    p->runs);
			return NULL;
		}
		d = phn_strdup(a.dir);
		phn_attempt_free(&a);
		if (stat(d, &st) == -1 || !S_ISDIR(st.st_mode)) {
			phn_errs_fail(e, 0, "%s: no such attempt directory", dir);
			free(d);
			return NULL;
		}
		return d;
	}
	if (batch == NULL || job == NULL || step == NULL || run == NULL) {
		phn_errs_fail(e, 0, "name an attempt: its directory, or all of "
		    "--batch-id, --job-id, --step-id and --run-id");
		return NULL;
	}
	if (!phn_id_valid(batch, strlen(batch)) || !phn_id_valid(job,
	    strlen(job)) || !phn_id_valid(step, strlen(step)) ||
	    !phn_id_valid(run, strlen(run))) {
		phn_errs_fail(e, 0, "%s/%s/%s/%s: invalid id (ids are "
		    "[A-Za-z0-9._-], starting with a letter or digit)", batch,
		    job, step, run);
		return NULL;
	}
	if ((d = phn_attempt_find(p, batch, job, step, run)) == NULL)
		phn_errs_fail(e, 0, "%s/%s/%s: %s", batch, job, step,
		    errno == EEXIST ? "several attempt directories match that "
		    "run id" : "no attempt with that run id");
	return d;
}

/* Is runs a runs store: its _system/, or the batch's batch_meta.json? */
static int
is_store(const char *runs, const char *batch)
{
	char *f = phn_path_join(runs, "_system"), *b;
	struct stat st;
	int r = stat(f, &st) == 0 && S_ISDIR(st.st_mode);

	free(f);
	if (!r) {
		b = phn_path_join(runs, batch);
		f = phn_path_join(b, "batch_meta.json");
		r = access(f, F_OK) == 0;
		free(b);
		free(f);
	}
	return r;
}

/*
 * The store an attempt directory dir (absolute or relative to the cwd)
 * lies in, found from the path alone: an attempt is
 * RUNS/BATCH/JOB/steps/STEP/attempts/NAME, so the runs root is six levels
 * up (as written, else with symbolic links resolved) and must have
 * _system/ or the batch's batch_meta.json; the root is its parent, the
 * runners root ROOT/runners.  Returns the attempt directory's absolute
 * path in that store, with q filled; or NULL (errno EINVAL: not inside a
 * store; ENOENT: no such directory).
 */
char *
phn_attempt_store(const char *dir, struct phn_paths *q)
{
	char *c = getcwd(NULL, 0), *cand[2], real[PATH_MAX], *runs, *t;
	char *res = NULL;
	struct stat st;
	int i, k, r = -1;

	memset(q, 0, sizeof(*q));
	if (c == NULL)
		return NULL;
	cand[0] = phn_path_abs(c, dir);
	free(c);
	if (stat(cand[0], &st) == -1 || !S_ISDIR(st.st_mode)) {
		free(cand[0]);
		errno = ENOENT;
		return NULL;
	}
	cand[1] = realpath(cand[0], real) ? phn_strdup(real) : NULL;
	for (i = 0; i < 2 && r == -1 && cand[i] != NULL; i++) {
		struct phn_attempt a;
		runs = phn_strdup(cand[i]);
		for (k = 0; k < 6; k++) {
			t = phn_path_dirname(runs);
			free(runs);
			runs = t;
		}
		q->runs = runs;
		q->root = phn_path_dirname(runs);
		q->runners = phn_path_join(q->root, "runners");
		if (strcmp(runs, "/") != 0 && phn_attempt_parse(q, cand[i],
		    &a) == 0) {
			if (is_store(runs, a.batch)) {
				r = 0;
				res = phn_strdup(a.dir);
			}
			phn_attempt_free(&a);
		}
		if (r == -1)
			phn_paths_free(q);
	}
	free(cand[0]);
	free(cand[1]);
	if (r == -1) {
		memset(q, 0, sizeof(*q));
		errno = EINVAL;
	}
	return res;
}

/*
 * The attempt directory dir names, absolute, and the store it lies in:
 * p's when it is one of p's attempts (absolute, relative to the cwd or
 * to p's runs root; q is then zeroed), else the store found from its
 * path (phn_attempt_store; q gets its paths, for the caller to free).
 * NULL with the reason in e when it is neither.
 */
char *
phn_attempt_locate(const struct phn_paths *p, const char *dir,
    struct phn_paths *q, struct phn_errs *e)
{
	struct phn_attempt a;
	struct stat st;
	char *d;
	int r;

	memset(q, 0, sizeof(*q));
	if (phn_attempt_parse(p, dir, &a) == 0) {
		r = stat(a.dir, &st) == 0 && S_ISDIR(st.st_mode);
		d = phn_strdup(a.dir);
		phn_attempt_free(&a);
		if (r)
			return d;
		free(d);
	}
	if ((d = phn_attempt_store(dir, q)) == NULL) {
		phn_errs_fail(e, 0, errno == ENOENT ? "%s: no such attempt "
		    "directory" : "%s: not an attempt directory of %s, nor of "
		    "a store found from its path (want RUNS/BATCH/JOB/steps/"
		    "STEP/attempts/NAME, RUNS with _system/ or "
		    "BATCH/batch_meta.json)", dir, p->runs);
		return NULL;
	}
	phn_store_confine(q->runs);	/* its writes go there */
	return d;
}

/*
 * dir/name when it resolves (symbolic links followed) to a file inside
 * dir; NULL with errno ENOENT (missing) or EPERM (escapes: "..", an
 * absolute name, or a link out such as codex_home/auth.json).
 */
char *
phn_artifact_path(const char *dir, const char *name)
{
	char rdir[PATH_MAX], rf[PATH_MAX], *f;
	size_t n;

	if (name[0] == '\0' || name[0] == '/') {
		errno = EPERM;
		return NULL;
	}
	if (realpath(dir, rdir) == NULL)
		return NULL;
	f = phn_path_join(rdir, name);
	if (realpath(f, rf) == NULL) {
		int e = errno;
		free(f);
		errno = e == ENOENT || e == ENOTDIR ? ENOENT : e;
		return NULL;
	}
	free(f);
	n = strlen(rdir);
	if (strncmp(rf, rdir, n) != 0 || rf[n] != '/') {
		errno = EPERM;
		return NULL;
	}
	return phn_strdup(rf);
}

static void
nap(double s)
{
	struct timespec ts;

	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

/* Is the group led by the recorded codex still there (and the same)? */
static int
group_alive(struct json_object *st)
{
	pid_t pg = (pid_t)phn_json_int(st, "pgid", 0);

	if (pg <= 1)
		return 0;
	return kill(-pg, 0) == 0 || errno == EPERM;
}

/* TERM, wait up to grace for the leader to go, then KILL the group. */
static int
stop_group(struct json_object *st, double grace)
{
	pid_t pg = (pid_t)phn_json_int(st, "pgid", 0);
	double end = phn_now() + grace;

	if (pg <= 1 || kill(-pg, SIGTERM) == -1)
		return 0;
	while (phn_now() < end && phn_state_proc_alive(st, "pgid",
	    "codex_start"))
		nap(0.05);
	kill(-pg, SIGKILL);
	nap(0.05);
	return 1;
}

/* Wait up to secs for the attempt's state to become terminal. */
static struct json_object *
wait_terminal(const char *dir, double secs)
{
	double end = phn_now() + secs;
	struct json_object *st;

	for (;;) {
		st = phn_state_read(dir);
		if (st && phn_status_terminal(phn_jstr(st, "status")))
			return st;
		if (phn_now() >= end)
			return st;
		json_object_put(st);
		nap(0.05);
	}
}

static struct json_object *
result(const struct phn_attempt *a)
{
	struct json_object *r = json_object_new_object();

	json_object_object_add(r, "ok", json_object_new_boolean(1));
	json_object_object_add(r, "attempt_dir", json_object_new_string(a->rel));
	json_object_object_add(r, "batch_id", json_object_new_string(a->batch));
	json_object_object_add(r, "job_id", json_object_new_string(a->job));
	json_object_object_add(r, "step_id", json_object_new_string(a->step));
	json_object_object_add(r, "run_id", json_object_new_string(a->run_id));
	return r;
}

/*
 * Cancel one attempt.  Returns 1 canceled, 0 already terminal (nothing
 * changed), -1 on error (errno); *res gets the report object.
 */
int
phn_cancel(const struct phn_paths *p, const struct phn_attempt *a,
    double grace, struct json_object **res)
{
	struct json_object *st = phn_state_read(a->dir), *f, *r;
	const char *how = "queued", *status;
	int killed = 0, u;

	r = *res = result(a);
	if (st != NULL && phn_status_terminal(phn_jstr(st, "status"))) {
		json_object_object_add(r, "already_terminal",
		    json_object_new_boolean(1));
		json_object_object_add(r, "status",
		    json_object_new_string(phn_jstr(st, "status")));
		json_object_put(st);
		return 0;
	}
	if (st != NULL && phn_state_proc_alive(st, "spawner_pid",
	    "spawner_start")) {
		/* phn-spawn treats SIGTERM as cancel and records it itself. */
		pid_t sp = (pid_t)phn_json_int(st, "spawner_pid", 0);
		if (kill(sp, SIGTERM) == 0) {
			json_object_put(st);
			st = wait_terminal(a->dir, grace + 5);
			if (st && phn_status_terminal(phn_jstr(st, "status"))) {
				json_object_object_add(r, "canceled",
				    json_object_new_boolean(strcmp(phn_jstr(st,
				    "status"), "canceled") == 0));
				json_object_object_add(r, "status",
				    json_object_new_string(phn_jstr(st, "status")));
				json_object_object_add(r, "via",
				    json_object_new_string("spawner"));
				json_object_object_add(r, "killed",
				    json_object_new_boolean(1));
				json_object_put(st);
				return 1;
			}
			/* The spawner did not finish in time: do it here. */
		}
	}
	if (st != NULL && phn_state_proc_alive(st, "pgid", "codex_start")) {
		killed = stop_group(st, grace);
		how = "process_group";
	} else if (phn_json_get(st, "pgid") != NULL ||
	    phn_json_get(st, "spawner_pid") != NULL) {
		const char *host = phn_jstr(st, "host");
		how = host && strcmp(host, phn_hostname()) ? "remote" :
		    "no_process";
		if (strcmp(how, "no_process") == 0 && group_alive(st))
			how = "identity_mismatch";
	}
	json_object_put(st);
	f = json_object_new_object();
	json_object_object_add(f, "failure_kind",
	    json_object_new_string("canceled"));
	json_object_object_add(f, "current_item", json_object_new_string(
	    strcmp(how, "queued") == 0 ? "canceled before start" : "canceled"));
	u = phn_state_update(a->dir, "canceled", f);
	json_object_put(f);
	if (u == -1)
		return -1;
	st = phn_state_read(a->dir);
	status = st ? phn_jstr(st, "status") : NULL;
	if (u == 0) {
		/* It ended by itself meanwhile: report what it became. */
		json_object_object_add(r, "already_terminal",
		    json_object_new_boolean(1));
		json_object_object_add(r, "status", phn_json_string(status));
		json_object_put(st);
		return 0;
	}
	json_object_object_add(r, "canceled", json_object_new_boolean(1));
	json_object_object_add(r, "status", json_object_new_string("canceled"));
	json_object_object_add(r, "via", json_object_new_string(how));
	json_object_object_add(r, "killed", json_object_new_boolean(killed));
	if (st != NULL)
		phn_current_note(p, a, st);
	json_object_put(st);
	phn_sched_attempt_ended(p, a);
	return 1;
}

/*
 * Run gzip with fd 0 and 1 as given, wait for it.  Compression goes
 * through gzip(1) rather than a library so that the toolkit needs no
 * zlib; GC is rare and files are few.
 */
static int
gzip_run(char *const argv[], int in, int out)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st, r;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	r = posix_spawnp(&pid, "gzip", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0) {
		errno = r;
		return -1;
	}
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		errno = EIO;
		return -1;
	}
	return 0;
}

/* Compress src into src.gz (atomically), then remove src. */
int
phn_gzip_file(const char *src)
{
	char *dst = phn_asprintf("%s.gz", src), *tmp;
	char *argv[] = { "gzip", "-c", "-n", NULL };
	int in, out, r = -1;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1)
		goto done;
	if ((out = phn_atomic_open(dst, 0, &tmp)) == -1) {
		close(in);
		goto done;
	}
	if (gzip_run(argv, in, out) == -1) {
		phn_atomic_abort(out, tmp);
		close(in);
		goto done;
	}
	close(in);
	if (phn_atomic_commit(out, tmp, dst, PHN_DURABLE) == 0)
		r = unlink(src);
done:
	free(dst);
	return r;
}

/* A pipe reading gzip -dc path; *pid is gzip's, for phn_gzip_close. */
int
phn_gzip_open(const char *path, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = { "gzip", "-dc", (char *)path, NULL };
	int p[2], r;

	if (pipe2(p, O_CLOEXEC) == -1)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	r = posix_spawnp(pid, "gzip", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (r != 0) {
		close(p[0]);
		errno = r;
		return -1;
	}
	return p[0];
}

int
phn_gzip_close(int fd, pid_t pid)
{
	int st;

	close(fd);
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/*
 * The command line of a batch-level operator command (phn-budget,
 * phn-close-batch): [-m reason], the shared options, then the batch and
 * the other operands named in args, nargs in all (the usage text is made
 * from these).  operands, if given, judges them first (it exits on bad
 * ones); then the store is opened into *p and the batch must be in it
 * (exit 100, or 111 for the store).  Sets PROG and line-buffers stdout.
 * Returns the operands: [0] is the batch.
 */
char **
phn_batch_cmd(const char *prog, const char *args, int nargs,
    const char **reason, void (*operands)(char *[]), struct phn_paths *p,
    int argc, char *argv[])
{
	static char usage[512];
	const struct phn_option options[] = {
		PHN_STR('m', "reason", reason),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage, .nargs = nargs };
	struct phn_errs e = { 0 };

	PROG = prog;
	snprintf(usage, sizeof(usage), "usage: %s [-m reason] [-r root] "
	    "[--runs-root dir] [--runners-root dir]\n%*sbatch%s%s\n", prog,
	    (int)strlen(prog) + 8, "", *args ? " " : "", args);
	setvbuf(stdout, NULL, _IOLBF, 0);
	phn_opts_parse(&opts, &argc, &argv, options);
	if (operands != NULL)
		operands(argv);
	phn_opts_paths(&opts, p);
	if (phn_sched_step_check(p, argv[0], NULL, NULL, &e) == -1)
		phn_errs_die(&e);
	return argv;
}
