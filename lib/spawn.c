/*
 * spawn.c - preparing and ending one attempt for phn-spawn.
 *
 * phn_run_start takes the attempt (spawn.lock for the process's life)
 * and checks it is queued; phn_run_prepare works out what to run from
 * meta.json, deriving anything missing there from batch_meta.json
 * (workdir and workspace, prompt snapshot, output schema, CODEX_HOME and
 * its resume seed, the codex binary and argv, see codex.c);
 * phn_run_running records who runs it once codex is forked; phn_run_end
 * freezes the terminal state and tells current.json and the scheduler.
 * Supervision is in supervise.c, the outcome in report.c.
 *
 * Durability: the attempt's own files (prompt.txt, codex.command.txt, the
 * event and stderr logs, codex's final.txt, and final.json, handoff.json
 * and the git files staged under temporary names) are written without
 * fsync while the attempt runs and fsynced together at its end; then the
 * staged files are linked into place and the terminal state is written,
 * whose directory fsync also makes those links durable.  So a terminal
 * state never outlives its files, and no file is ever seen torn.
 *
 * Whatever fails before codex starts ends the attempt "failed" with kind
 * spawn_error: an attempt is never left queued or running by a spawner
 * that is still alive.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

#define PROMPT_SLACK	(64 * 1024)

/* ------------------------------------------------------------ start -- */

void
phn_run_init(struct phn_run *r, const struct phn_paths *p)
{
	memset(r, 0, sizeof(*r));
	r->p = p;
	r->lockfd = -1;
	r->exit_code = -1;
}

void
phn_run_free(struct phn_run *r)
{
	size_t i;

	phn_attempt_free(&r->a);
	phn_lock_close(r->lockfd);
	json_object_put(r->meta);
	json_object_put(r->bmeta);
	json_object_put(r->cfg);
	json_object_put(r->schema);
	json_object_put(r->usage);
	json_object_put(r->usage_base);
	json_object_put(r->usage_attempt);
	json_object_put(r->report);
	json_object_put(r->artifacts);
	free(r->schema_path);
	free(r->workdir);
	free(r->home);
	free(r->prompt);
	free(r->codex);
	free(r->thread_want);
	free(r->thread_id);
	free(r->current_item);
	free(r->model_error);
	free(r->last_error);
	free(r->resume_src);
	free(r->version);
	free(r->stderr_tail);
	for (i = 0; i < r->nstaged * 2; i++) {
		if (i % 2 == 0)
			unlink(r->staged[i]);
		free(r->staged[i]);
	}
	free(r->staged);
	for (i = 0; i < r->argc; i++)
		free(r->argv[i]);
	free(r->argv);
	phn_errs_free(&r->errs);
	memset(r, 0, sizeof(*r));
	r->lockfd = -1;
}

static int
status_code(const char *status)
{
	if (status == NULL)
		return PHN_EXIT_TEMP;
	if (strcmp(status, "succeeded") == 0)
		return 0;
	if (strcmp(status, "needs_attention") == 0)
		return PHN_EXIT_ATTENTION;
	if (strcmp(status, "canceled") == 0)
		return PHN_EXIT_CANCELED;
	return 1;
}

/*
 * Take the attempt: spawn.lock for life, and check that it is queued.  It
 * stays queued while we prepare (the held lock keeps the lease from
 * expiring); phn_run_running moves it to running once codex is forked.
 * Returns 0 to go on, else phn-spawn's exit status (a message has been
 * printed).
 */
int
phn_run_start(struct phn_run *r, const char *dir)
{
	struct json_object *st;
	char *lp, msg[512], *mp;
	struct stat sb;
	const char *s;
	int rc;

	if (phn_attempt_parse(r->p, dir, &r->a) == -1 || stat(r->a.dir,
	    &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		phn_warn("%s: not an attempt directory (want "
		    "RUNS/BATCH/JOB/steps/STEP/attempts/NAME)", dir);
		return PHN_EXIT_PERM;
	}
	/* Durable writes wait for phn_run_end's two flushes (phn(5)). */
	phn_durable_group(r->p->runs);
	lp = phn_path_join(r->a.dir, "spawn.lock");
	if ((r->lockfd = phn_lock_open(lp, LOCK_EX | LOCK_NB)) == -1) {
		rc = errno == EWOULDBLOCK ? PHN_EXIT_PERM : PHN_EXIT_TEMP;
		if (errno == EWOULDBLOCK)
			phn_warn("%s: already being run by another phn-spawn",
			    r->a.dir);
		else
			phn_warn("%s: unable to lock spawn.lock:", r->a.dir);
		free(lp);
		return rc;
	}
	free(lp);
	if ((st = phn_state_read(r->a.dir)) == NULL) {
		phn_warn("%s: no readable state.json: not a claimed attempt "
		    "(phn-claim creates them)", r->a.dir);
		return PHN_EXIT_PERM;
	}
	s = phn_jstr(st, "status");
	if (s == NULL || strcmp(s, "queued") != 0) {
		rc = s && strcmp(s, "canceled") == 0 ? PHN_EXIT_CANCELED :
		    PHN_EXIT_PERM;
		phn_warn("%s: not a claimed attempt: its status is %s", r->a.dir,
		    s ? s : "missing");
		json_object_put(st);
		return rc;
	}
	json_object_put(st);
	mp = phn_path_join(r->a.dir, "meta.json");
	r->meta = phn_json_load(mp, msg, sizeof(msg));
	if (r->meta != NULL && !json_object_is_type(r->meta, json_type_object)) {
		json_object_put(r->meta);
		r->meta = NULL;
	}
	free(mp);
	return 0;
}

/* Who runs the attempt: this host, this boot, this process. */
static void
identity(struct phn_run *r, struct json_object *f)
{
	struct json_object *slurm;

	json_object_object_add(f, "host", json_object_new_string(phn_hostname()));
	json_object_object_add(f, "boot_id", json_object_new_string(
	    phn_boot_id()));
	json_object_object_add(f, "spawner_pid", json_object_new_int64(getpid()));
	json_object_object_add(f, "spawner_start", json_object_new_int64(
	    (int64_t)phn_proc_start(getpid())));
	if (phn_jstr(r->meta, "runner_id"))
		json_object_object_add(f, "runner_id", json_object_new_string(
		    phn_jstr(r->meta, "runner_id")));
	if ((slurm = phn_runner_slurm()) != NULL)	/* runner.c */
		json_object_object_add(f, "slurm", slurm);
}

/*
 * Whether the attempt ended by a signal from the harness, not the
 * operator: with PHN_HARNESS_SIGNALS=1 (phn-slurm sets it: Slurm's
 * scancel and time limit signal every process of a task), an attempt
 * that did not succeed and whose spawner got SIGTERM, SIGINT or SIGHUP
 * (canceled, or failed because codex got the same signal first) is a
 * harness fault, which the step policy retries without counting against
 * max_attempts.
 */
static int
harness_signal(const struct phn_run *r)
{
	const char *e = getenv("PHN_HARNESS_SIGNALS");

	return e != NULL && strcmp(e, "1") == 0 && (r->stop ==
	    PHN_STOP_CANCEL || phn_signal_canceled() != 0) &&
	    r->status != NULL && strcmp(r->status, "succeeded") != 0;
}

/*
 * queued -> running, with who runs it and (pid > 0) codex's pid, process
 * group and start time, in one write.  1 done, 0 the attempt has ended
 * meanwhile (a cancel), -1 error.
 */
int
phn_run_running(struct phn_run *r)
{
	struct json_object *f = json_object_new_object();
	char iso[PHN_ISO_LEN];
	int rc;

	r->started = phn_now();
	phn_iso(r->started, iso);
	json_object_object_add(f, "started_at", json_object_new_string(iso));
	json_object_object_add(f, "last_heartbeat_at",
	    json_object_new_string(iso));
	identity(r, f);
	if (r->pid > 0) {
		json_object_object_add(f, "pid", json_object_new_int64(r->pid));
		json_object_object_add(f, "pgid", json_object_new_int64(r->pid));
		json_object_object_add(f, "codex_start",
		    json_object_new_int64((int64_t)r->codex_start));
	}
	json_object_object_add(f, "current_item", json_object_new_string(
	    r->nocodex ? "dry run" : "codex started"));
	json_object_object_add(f, "codex_cli_version", phn_json_string(
	    r->version));
	rc = phn_state_update(r->a.dir, "running", f);
	json_object_put(f);
	return rc;
}

/* ---------------------------------------------------------- prepare -- */

static int
fail(struct phn_run *r, int code, const char *fmt, ...)
{
	va_list ap;
	char *m;

	va_start(ap, fmt);
	m = phn_vasprintf(fmt, ap);
	va_end(ap);
	phn_errs_add(&r->errs, "%s", m);
	free(m);
	r->status = "failed";
	r->kind = "spawn_error";
	r->code = code;
	return -1;
}

/* meta's value for key, else NULL (JSON null counts as given: *has). */
static struct json_object *
meta(struct phn_run *r, const char *key, int *has)
{
	struct json_object *v = NULL;

	*has = json_object_is_type(r->meta, json_type_object) &&
	    json_object_object_get_ex(r->meta, key, &v);
	return v;
}

static double
num(struct json_object *v, double dflt)
{
	return phn_json_is_num(v) ? json_object_get_double(v) : dflt;
}

static struct json_object *
eff(struct phn_run *r, const char *path)
{
	struct json_object *e = phn_json_get(r->bmeta, "effective_defaults");
	struct json_object *v = phn_json_path_get(e, path);
	char *dp;

	if (v == NULL && r->cfg != NULL) {
		dp = phn_asprintf("defaults.%s", path);
		v = phn_json_path_get(r->cfg, dp);
		free(dp);
	}
	return v;
}

static int
load_batch(struct phn_run *r)
{
	struct phn_config cfg;
	struct phn_errs e = { 0 };
	char msg[512];

	if (phn_config_read(r->p, 0, &cfg, &e) == -1) {
		fail(r, e.temp ? PHN_EXIT_TEMP : 1, "%s", e.n > 0 ? e.v[0] :
		    "harness config unreadable");
		phn_errs_free(&e);
		return -1;
	}
	r->cfg = json_object_get(cfg.doc);
	phn_config_free(&cfg);
	if ((r->bmeta = phn_sched_jobview(r->p, r->a.batch, r->a.job, msg,
	    sizeof(msg))) == NULL)
		return fail(r, 1, "batch_meta.json: %s", msg);
	r->job = phn_json_find(phn_json_get(r->bmeta, "jobs"), "job_id",
	    r->a.job);
	r->step = phn_json_find(phn_json_get(r->job, "steps"), "step_id",
	    r->a.step);
	if (r->step == NULL)
		return fail(r, 1, "batch_meta.json: no step %s/%s", r->a.job,
		    r->a.step);
	return 0;
}

static void
load_policy(struct phn_run *r)
{
	struct json_object *v;
	int has;

	r->policy = meta(r, "policy_snapshot", &has);
	if (!json_object_is_type(r->policy, json_type_object))
		r->policy = eff(r, "execution_policy");
	v = meta(r, "timeout_seconds", &has);
	if (!has) {
		v = phn_json_get(r->step, "timeout_seconds");
		if (!phn_json_is_num(v))
			v = eff(r, "timeouts.step_timeout_seconds");
	}
	r->timeout = num(v, 0);
	r->hb = num(eff(r, "scoreboard.heartbeat_interval_seconds"), 30);
	if (r->hb <= 0)
		r->hb = 30;
	r->grace = num(phn_json_path_get(r->cfg, "defaults.kill_grace_seconds"),
	    10);
	if (r->grace < 0)
		r->grace = 0;
}

/*
 * The directory codex works in: the job's working directory, or its
 * isolated workspace (workspace.c).  A dry run does not need it to
 * exist (it is how a table is rehearsed on another machine): then
 * nothing is made and a warning says so.
 */
static int
load_workdir(struct phn_run *r)
{
	struct json_object *bws = eff(r, "workspace_policy"), *v;
	const char *wd, *mode;
	struct stat st;
	char *ws;
	int has;

	wd = json_object_get_string(meta(r, "workdir", &has));
	if (!json_object_is_type(meta(r, "workdir", &has), json_type_string))
		wd = phn_jstr(r->job, "job_workdir");
	if (wd == NULL)
		return fail(r, 1, "no working directory: neither meta.json "
		    "workdir nor batch_meta.json job_workdir");
	r->workdir = phn_path_abs(r->p->runs, wd);
	if (r->nocodex && stat(r->workdir, &st) == -1) {
		phn_warn("%s: warning: dry run: working directory %s: %s (a "
		    "real run fails)", r->a.dir, r->workdir, strerror(errno));
		return 0;
	}
	mode = phn_jstr(r->meta, "workspace_mode");
	if (mode == NULL && (v = phn_workspace_key(r->job, bws, "mode")) != NULL)
		mode = json_object_get_string(v);
	ws = phn_path_join(r->a.jobdir, "_workspace");
	if (mode && strcmp(mode, "isolated") == 0 &&
	    strncmp(r->workdir, ws, strlen(ws)) != 0) {
		char *w = phn_workspace_isolated(r->p, r->a.batch, r->a.job,
		    r->workdir, r->job, bws, &r->errs);
		if (w == NULL) {
			free(ws);
			r->status = "failed";
			r->kind = "spawn_error";
			r->code = r->errs.temp ? PHN_EXIT_TEMP : 1;
			return -1;
		}
		free(r->workdir);
		r->workdir = w;
	}
	free(ws);
	if (stat(r->workdir, &st) == -1)
		return fail(r, 1, "working directory %s: %s", r->workdir,
		    strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail(r, 1, "working directory %s: not a directory",
		    r->workdir);
	return 0;
}

static int
load_prompt(struct phn_run *r)
{
	char *f = phn_path_join(r->a.dir, "prompt.txt"), *snap, hex[PHN_SHA256_HEX];
	const char *want = phn_jstr(r->meta, "prompt_sha256");
	struct stat sb;
	int rc = 0;

	if (want == NULL)
		want = phn_jstr(r->step, "prompt_sha256");
	if (phn_read_file(f, &r->prompt, &r->prompt_len,
	    PHN_PROMPT_MAX_BYTES + PROMPT_SLACK) == -1) {
		snap = phn_step_path(r->p, r->a.batch, r->a.job, r->a.step,
		    "prompt.txt");
		if (phn_read_file(snap, &r->prompt, &r->prompt_len,
		    PHN_PROMPT_MAX_BYTES + PROMPT_SLACK) == -1)
			rc = fail(r, 1, "prompt snapshot %s: %s", snap,
			    strerror(errno));
		else if (phn_write_new(f, r->prompt, r->prompt_len) == -1 &&
		    errno != EEXIST)
			rc = fail(r, PHN_EXIT_TEMP, "unable to write %s: %s", f,
			    strerror(errno));
		/* never wider than the snapshot (a prompt_ref's own mode) */
		else if (stat(snap, &sb) == 0 && chmod(f, sb.st_mode & 0644) == -1)
			rc = fail(r, PHN_EXIT_TEMP, "unable to chmod %s: %s", f,
			    strerror(errno));
		free(snap);
	}
	if (rc == 0 && want != NULL) {
		phn_sha256_hex(r->prompt, r->prompt_len, hex);
		if (strcmp(hex, want) != 0)
			rc = fail(r, 1, "prompt.txt: its SHA-256 is %s, not the "
			    "prompt_sha256 %s recorded at ingest", hex, want);
	}
	free(f);
	return rc;
}

static int
load_schema(struct phn_run *r)
{
	const char *ms = phn_jstr(r->meta, "output_schema");
	char msg[512], *cand[3];
	struct json_object *empty;
	struct phn_errs e = { 0 };
	int i, v;

	if (ms != NULL)
		r->schema_path = phn_path_abs(r->p->runs, ms);
	else {
		cand[0] = phn_step_path(r->p, r->a.batch, r->a.job, r->a.step,
		    "output_schema.json");
		cand[1] = phn_path_join(r->p->root, "run_report.schema.json");
		cand[2] = phn_path_join(r->p->runs,
		    "_system/run_report.schema.json");
		for (i = 0; i < 3; i++) {
			if (r->schema_path == NULL && access(cand[i], F_OK) == 0)
				r->schema_path = cand[i];
			else
				free(cand[i]);
		}
		if (r->schema_path == NULL &&
		    (r->schema_path = phn_datadir_file(
		    "run_report.schema.json")) == NULL)
			return fail(r, 1, "no output schema: no step snapshot, no "
			    "%s/run_report.schema.json, no runs/_system copy and "
			    "none installed (set PHN_DATADIR)", r->p->root);
	}
	if ((r->schema = phn_json_load(r->schema_path, msg,
	    sizeof(msg))) == NULL)
		return fail(r, 1, "output schema %s", msg);
	empty = json_object_new_object();
	v = phn_schema_validate(r->schema, empty, &e);
	json_object_put(empty);
	if (v == -1)
		fail(r, 1, "output schema %s: unusable: %s", r->schema_path,
		    e.n ? e.v[0] : "unsupported");
	phn_errs_free(&e);
	return v == -1 ? -1 : 0;
}

/* Symlink name in codex_home to target, unless it is there already. */
static int
link_in(struct phn_run *r, const char *target, const char *name)
{
	char *l = phn_path_join(r->home, name);
	int rc = 0;

	if (symlink(target, l) == -1 && errno != EEXIST)
		rc = fail(r, PHN_EXIT_TEMP, "unable to link %s: %s", l,
		    strerror(errno));
	free(l);
	return rc;
}

/*
 * What to resume: phn-claim decided it under the step lock and recorded
 * it in meta.json (invocation, resume_source, codex_thread_id; see
 * policy.c).  phn-spawn runs exactly that and never decides again; it
 * only refuses when the recorded source is not usable.
 */
static int
load_resume(struct phn_run *r)
{
	const char *inv = phn_jstr(r->meta, "invocation"), *src, *tid;

	if (inv == NULL || strcmp(inv, "resume") != 0)
		return 0;
	if ((src = phn_jstr(r->meta, "resume_source")) == NULL &&
	    (src = phn_jstr(phn_json_get(r->meta, "resume_from"),
	    "source_attempt_dir")) == NULL)
		src = phn_jstr(phn_json_get(r->meta, "retry_resume_from"),
		    "attempt_dir");
	if (src == NULL)
		return fail(r, 1, "meta.json: invocation is resume, but no "
		    "resume_source is recorded");
	r->resume_src = phn_path_abs(r->p->runs, src);
	if ((tid = phn_jstr(r->meta, "codex_thread_id")) != NULL)
		r->thread_want = phn_strdup(tid);
	return 0;
}

/* Is an API key in the environment?  Then codex logs in with it, and
 * auth.json is not linked (as in the original). */
static int
api_key(void)
{
	const char *c = getenv("CODEX_API_KEY"), *o = getenv("OPENAI_API_KEY");

	return (c != NULL && *c != '\0') || (o != NULL && *o != '\0');
}

/*
 * The attempt's CODEX_HOME: the resume source's copied in (without its
 * auth.json and config.toml), then ~/.codex/auth.json (unless an API key
 * is set) and config.toml (or PHN_CODEX_CONFIG) linked in.
 */
static int
load_home(struct phn_run *r)
{
	static const char *const skip[] = { "auth.json", "config.toml", NULL };
	struct phn_copy cp = { .skip_top = skip };
	const char *ch = getenv("CODEX_HOME"), *home = getenv("HOME");
	const char *cfg = getenv("PHN_CODEX_CONFIG");
	char *src, *auth = NULL, *conf = NULL, *h, *c;
	struct json_object *st;
	int rc = 0;

	r->home = phn_path_join(r->a.dir, "codex_home");
	if (mkdir(r->home, 0700) == -1 && errno != EEXIST)
		return fail(r, PHN_EXIT_TEMP, "unable to create %s: %s", r->home,
		    strerror(errno));
	if (r->resume_src != NULL) {
		h = phn_path_join(r->resume_src, "codex_home");
		if (access(h, F_OK) == -1)
			rc = fail(r, 1, "resume source %s: its codex_home is "
			    "gone: %s", r->resume_src, strerror(errno));
		else if (phn_copy_tree(h, r->home, &cp) == -1) {
			rc = fail(r, PHN_EXIT_TEMP, "unable to copy %s to %s: "
			    "unable to %s %s: %s", h, r->home, cp.what, cp.failed,
			    strerror(errno));
			free(cp.failed);
		}
		free(h);
		if (rc == -1)
			return rc;
		st = phn_state_read(r->resume_src);
		if (json_object_is_type(phn_json_get(st, "usage"), json_type_object))
			r->usage_base = json_object_get(phn_json_get(st, "usage"));
		json_object_put(st);
	}
	if (ch && *ch)
		src = phn_strdup(ch);
	else
		src = phn_path_join(home && *home ? home : "/", ".codex");
	auth = phn_path_join(src, "auth.json");
	if (!api_key() && access(auth, R_OK) == 0 && *auth == '/')
		rc = link_in(r, auth, "auth.json");
	if (rc == 0 && cfg && *cfg) {
		c = getcwd(NULL, 0);
		conf = phn_path_abs(c ? c : "/", cfg);
		free(c);
		if (access(conf, R_OK) == -1)
			rc = fail(r, 1, "PHN_CODEX_CONFIG=%s: %s", cfg,
			    strerror(errno));
		else
			rc = link_in(r, conf, "config.toml");
	} else if (rc == 0) {
		conf = phn_path_join(src, "config.toml");
		if (access(conf, R_OK) == 0 && *conf == '/')
			rc = link_in(r, conf, "config.toml");
	}
	free(src);
	free(auth);
	free(conf);
	return rc;
}

static int
truthy(struct json_object *o, const char *k)
{
	struct json_object *v = phn_json_get(o, k);

	return json_object_is_type(v, json_type_boolean) &&
	    json_object_get_boolean(v);
}

/*
 * Everything between taking the attempt and starting codex.  0, or -1
 * with the attempt's outcome set (failed, spawn_error, the exit code).
 */
int
phn_run_prepare(struct phn_run *r)
{
	const char *ws = NULL;
	char *f, *q, *why = NULL, *t;
	int code;

	if (r->meta == NULL)
		phn_errs_add(&r->errs, "meta.json missing or unreadable: "
		    "derived from batch_meta.json");
	if (load_batch(r) == -1)
		return -1;
	load_policy(r);
	if (load_workdir(r) == -1 || load_prompt(r) == -1 ||
	    load_schema(r) == -1 || load_resume(r) == -1)
		return -1;
	if (load_home(r) == -1)
		return -1;
	t = phn_path_join(r->a.dir, "tmp");
	if (mkdir(t, 0700) == -1 && errno != EEXIST) {
		fail(r, PHN_EXIT_TEMP, "unable to create %s: %s", t,
		    strerror(errno));
		free(t);
		return -1;
	}
	free(t);
	if (r->nocodex)
		return 0;
	if (r->resume_src != NULL && r->thread_want == NULL)
		return fail(r, 1, "resume source %s: no codex thread id "
		    "recorded; refusing to guess (never --last)", r->resume_src);
	if ((r->codex = phn_codex_find(&code, &why)) == NULL) {
		fail(r, code, "%s", why);
		free(why);
		return -1;
	}
	t = phn_path_join(r->a.dir, "tmp/version_probe");
	r->version = phn_codex_version(r->p, r->codex, t);
	free(t);
	if (truthy(r->policy, "web_search_enabled") &&
	    (ws = phn_codex_web_search(r)) == NULL)
		return fail(r, 1, "execution_policy.web_search_enabled: the "
		    "installed codex accepts none of web_search=\"live\", "
		    "tools.web_search, features.web_search_request; turn web "
		    "search off or upgrade codex");
	phn_codex_argv(r, ws);
	f = phn_path_join(r->a.dir, "codex.command.txt");
	q = phn_shquote(r->argv);
	t = phn_asprintf("%s\n", q);
	if (phn_write_new(f, t, strlen(t)) == -1 && errno != EEXIST) {
		fail(r, PHN_EXIT_TEMP, "unable to write %s: %s", f,
		    strerror(errno));
		free(f);
		free(q);
		free(t);
		return -1;
	}
	free(f);
	free(q);
	free(t);
	return 0;
}

/* -------------------------------------------------------------- end -- */

/*
 * Stage a write-once file of the attempt: its content goes to a temp file
 * now; phn_run_end fsyncs it and links it into place, so it is never seen
 * torn, and the terminal state's directory fsync makes the link durable.
 */
int
phn_run_stage(struct phn_run *r, const char *name, const void *buf, size_t len)
{
	char *path = phn_path_join(r->a.dir, name), *tmp;
	int fd;

	if ((fd = phn_atomic_open(path, 0, &tmp)) == -1) {
		free(path);
		return -1;
	}
	if (phn_write_all(fd, buf, len) == -1) {
		phn_atomic_abort(fd, tmp);
		free(path);
		return -1;
	}
	if (close(fd) == -1) {
		phn_atomic_abort(-1, tmp);
		free(path);
		return -1;
	}
	r->staged = phn_realloc(r->staged, (r->nstaged + 1) * 2 *
	    sizeof(*r->staged));
	r->staged[r->nstaged * 2] = tmp;
	r->staged[r->nstaged * 2 + 1] = path;
	r->nstaged++;
	return 0;
}

int
phn_run_stage_json(struct phn_run *r, const char *name, struct json_object *o)
{
	char *s = phn_json_pretty(o);
	int rc = phn_run_stage(r, name, s, strlen(s));

	free(s);
	return rc;
}

static int
fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd == -1)
		return errno == ENOENT ? 0 : -1;
	r = fsync(fd);
	close(fd);
	return r;
}

/*
 * Make durable what the attempt wrote without it, and the staged files:
 * with the group commit phn_run_start opened, one syncfs covers them all
 * (and the running state); else each is fsynced.
 */
static int
sync_files(struct phn_run *r)
{
	static const char *names[] = { "prompt.txt", "codex.command.txt",
	    "codex.events.jsonl", "codex.events.times", "codex.stderr.txt",
	    "final.txt", NULL };
	size_t i;
	int rc = 0;

	if (phn_durable_deferred(r->a.dir))
		return phn_durable_flush();
	for (i = 0; names[i]; i++) {
		char *f = phn_path_join(r->a.dir, names[i]);
		if (fsync_path(f) == -1)
			rc = -1;
		free(f);
	}
	for (i = 0; i < r->nstaged; i++)
		if (fsync_path(r->staged[i * 2]) == -1)
			rc = -1;
	return rc;
}

static void
link_staged(struct phn_run *r)
{
	size_t i;

	for (i = 0; i < r->nstaged; i++) {
		if (link(r->staged[i * 2], r->staged[i * 2 + 1]) == -1 &&
		    errno != EEXIST)
			phn_errs_add(&r->errs, "unable to write %s: %s",
			    r->staged[i * 2 + 1], strerror(errno));
		unlink(r->staged[i * 2]);
		free(r->staged[i * 2]);
		free(r->staged[i * 2 + 1]);
	}
	free(r->staged);
	r->staged = NULL;
	r->nstaged = 0;
}

static struct json_object *
errs_json(struct phn_errs *e)
{
	struct json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < e->n; i++)
		json_object_array_add(a, json_object_new_string(e->v[i]));
	return a;
}

static struct json_object *
jstr_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

/*
 * A rate-limited attempt: record the store-wide pause (pause.c) first,
 * so that no claimer retries the step before it; then the attempt says
 * so in state.json (rate_limited, which the step policy does not count
 * against max_attempts).  If the pause cannot be written, the attempt
 * counts as any other failure.
 */
static void
note_pause(struct phn_run *r, struct json_object *f)
{
	struct json_object *pz = NULL, *o;
	double base = num(phn_json_path_get(r->cfg,
	    "defaults.rate_limit.pause_seconds"), 30);
	double claimed = r->started > 0 ? r->started : -1;
	char *rel;

	if (r->rl == PHN_RL_NONE || r->status == NULL ||
	    strcmp(r->status, "failed") != 0)
		return;
	/* when it was claimed: whether a pause held it back */
	if (phn_iso_parse(phn_jstr(r->meta, "claimed_at"), &claimed) == -1)
		claimed = r->started > 0 ? r->started : -1;
	rel = phn_path_rel(r->p->runs, r->a.dir);
	if (phn_pause_note(r->p, base, r->rl, r->rl_reset, r->rl_msg, rel,
	    claimed, phn_now(), &pz) == -1) {
		phn_errs_add(&r->errs, "unable to record the rate-limit pause "
		    "in _system/pause.json: %s", strerror(errno));
		free(rel);
		return;
	}
	free(rel);
	phn_errs_add(&r->errs, "%s: every claimer pauses until %s",
	    phn_ratelimit_name(r->rl), phn_jstr(pz, "until"));
	json_object_object_add(f, "rate_limited", json_object_new_boolean(1));
	o = json_object_new_object();
	json_object_object_add(o, "reason", json_object_new_string(
	    phn_ratelimit_name(r->rl)));
	json_object_object_add(o, "pause_until", json_object_get(
	    phn_json_get(pz, "until")));
	json_object_object_add(o, "reset_hint", json_object_get(
	    phn_json_get(pz, "reset_hint")));
	json_object_object_add(f, "rate_limit", o);
	json_object_put(pz);
}

/*
 * Freeze the outcome: terminal state.json, then current.json, then the
 * scheduler's bookkeeping.  Returns phn-spawn's exit status.  If someone
 * else ended the attempt first (a cancel, a reaper), theirs stands.
 */
int
phn_run_end(struct phn_run *r, int json)
{
	struct json_object *f = json_object_new_object(), *st, *o;
	char iso[PHN_ISO_LEN];
	const char *s;
	int rc, code = r->code;

	/* The files first: the terminal state must not outlive them. */
	if (sync_files(r) == -1)
		phn_errs_add(&r->errs, "unable to sync %s: %s", r->a.dir,
		    strerror(errno));
	link_staged(r);
	identity(r, f);
	note_pause(r, f);
	json_object_object_add(f, "failure_kind", jstr_or_null(r->kind));
	if (harness_signal(r))
		phn_errs_add(&r->errs, "the signal came from the harness "
		    "(PHN_HARNESS_SIGNALS=1): a harness fault, retried");
	json_object_object_add(f, "harness_fault", json_object_new_boolean(
	    harness_signal(r)));
	json_object_object_add(f, "errors", errs_json(&r->errs));
	json_object_object_add(f, "exit_code", r->exit_code >= 0 ?
	    json_object_new_int(r->exit_code) : NULL);
	json_object_object_add(f, "signal", r->signal > 0 ?
	    json_object_new_int(r->signal) : NULL);
	if (r->usage)
		json_object_object_add(f, "usage", json_object_get(r->usage));
	if (r->usage_attempt)
		json_object_object_add(f, "usage_attempt",
		    json_object_get(r->usage_attempt));
	if (r->thread_id)
		json_object_object_add(f, "codex_thread_id",
		    json_object_new_string(r->thread_id));
	if (r->last_event_at > 0) {
		phn_iso(r->last_event_at, iso);
		json_object_object_add(f, "last_event_at",
		    json_object_new_string(iso));
	}
	json_object_object_add(f, "current_item", jstr_or_null(r->current_item));
	json_object_object_add(f, "codex_cli_version", jstr_or_null(r->version));
	if (r->artifacts)
		json_object_object_add(f, "artifacts",
		    json_object_get(r->artifacts));
	rc = phn_state_update(r->a.dir, r->status, f);
	json_object_put(f);
	if (rc == -1) {
		phn_warn("%s: unable to write the terminal state.json:",
		    r->a.dir);
		return PHN_EXIT_TEMP;
	}
	st = phn_state_read(r->a.dir);
	s = phn_jstr(st, "status");
	if (rc == 0) {
		phn_warn("%s: warning: already ended as %s by someone else; "
		    "that stands", r->a.dir, s ? s : "?");
		code = status_code(s);
	}
	if (st != NULL && phn_current_note(r->p, &r->a, st) == -1)
		phn_warn("%s: warning: unable to update current.json:",
		    r->a.jobdir);
	/* The terminal state and current.json durable before dependents
	 * are released (the second flush of the group commit). */
	if (phn_durable_flush() == -1) {
		phn_warn("%s: unable to sync the terminal state.json; its "
		    "dependents are not released:", r->a.dir);
		json_object_put(st);
		return PHN_EXIT_TEMP;
	}
	if (phn_sched_attempt_ended(r->p, &r->a) == -1)
		phn_warn("%s: warning: unable to update the ready index",
		    r->a.batch);
	if (rc == 1 && code != 0)
		phn_warn("%s: %s (%s)%s%s", r->a.dir, r->status,
		    r->kind ? r->kind : "report", r->errs.n ? ": " : "",
		    r->errs.n ? r->errs.v[r->errs.n - 1] : "");
	if (json) {
		o = json_object_new_object();
		json_object_object_add(o, "attempt_dir",
		    json_object_new_string(r->a.dir));
		json_object_object_add(o, "batch_id",
		    json_object_new_string(r->a.batch));
		json_object_object_add(o, "job_id", json_object_new_string(r->a.job));
		json_object_object_add(o, "step_id",
		    json_object_new_string(r->a.step));
		json_object_object_add(o, "run_id",
		    json_object_new_string(r->a.run_id));
		json_object_object_add(o, "status", jstr_or_null(s));
		json_object_object_add(o, "failure_kind",
		    jstr_or_null(phn_jstr(st, "failure_kind")));
		json_object_object_add(o, "exit_code", json_object_get(phn_json_get(st,
		    "exit_code")));
		json_object_object_add(o, "codex_thread_id", jstr_or_null(
		    phn_jstr(st, "codex_thread_id")));
		json_object_object_add(o, "usage", json_object_get(phn_json_get(st,
		    "usage")));
		json_object_object_add(o, "exit_status", json_object_new_int(code));
		phn_json_emit(stdout, o);
		json_object_put(o);
	}
	json_object_put(st);
	return code;
}
