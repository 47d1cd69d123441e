/*
 * report.c - the outcome of an attempt once codex has ended (SPEC 6.4,
 * 6.5): how codex ended, then the Run Report in final.txt (strict JSON,
 * valid against the step's output schema: final.json), handoff.json,
 * artifacts_expected, the git capture, and the status, failure kind and
 * exit status that follow.  Also the --no-codex dry run's fake report.
 *
 * Precedence: canceled > timeout > spawn_error > model_error | codex_exit
 * > invalid_report > report_failed > missing_artifacts > succeeded.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

#define FINAL_MAX	(64L * 1024 * 1024)

static void
set(struct phn_run *r, const char *status, const char *kind, int code)
{
	r->status = status;
	r->kind = kind;
	r->code = code;
}

static void
artifact(struct phn_run *r, const char *name, const char *kind,
    const char *desc)
{
	struct json_object *a = json_object_new_object();
	char *f = phn_path_join(r->a.dir, name), *rel = phn_path_rel(r->p->runs,
	    f);

	if (r->artifacts == NULL)
		r->artifacts = json_object_new_array();
	json_object_object_add(a, "path", json_object_new_string(rel));
	json_object_object_add(a, "kind", json_object_new_string(kind));
	json_object_object_add(a, "description", json_object_new_string(desc));
	json_object_array_add(r->artifacts, a);
	free(f);
	free(rel);
}

/*
 * Did the provider rate-limit the attempt?  The turn's error, the last
 * error event, then stderr's last line, as pause.c reads them.
 */
static int
rate_limited(struct phn_run *r)
{
	const char *m[3] = { r->model_error, r->last_error, r->stderr_tail };
	double now = phn_now();
	int i;

	for (i = 0; i < 3 && r->rl == PHN_RL_NONE; i++)
		if ((r->rl = phn_ratelimit_classify(m[i], now,
		    &r->rl_reset)) != PHN_RL_NONE)
			r->rl_msg = m[i];
	return r->rl != PHN_RL_NONE;
}

/* How codex itself ended; leaves r->status NULL if that part succeeded. */
static void
ended(struct phn_run *r)
{
	int st = r->wstatus;

	if (!r->nocodex && r->pid > 1) {
		if (WIFEXITED(st))
			r->exit_code = WEXITSTATUS(st);
		else if (WIFSIGNALED(st))
			r->signal = WTERMSIG(st);
	}
	if (r->stop == PHN_STOP_CANCEL || r->stop == PHN_STOP_ENDED) {
		if (r->stop == PHN_STOP_CANCEL)
			phn_errs_add(&r->errs, "canceled (signal %d to phn-spawn)",
			    phn_signal_canceled());
		set(r, "canceled", "canceled", PHN_EXIT_CANCELED);
	} else if (r->stop == PHN_STOP_TIMEOUT)
		set(r, "failed", "timeout", PHN_EXIT_TIMEOUT);
	else if (r->stop == PHN_STOP_THREAD)
		set(r, "failed", "spawn_error", 1);
	else if (r->exec_errno != 0) {
		phn_errs_add(&r->errs, "unable to run %s in %s: %s", r->argv[0],
		    r->workdir, strerror(r->exec_errno));
		set(r, "failed", "spawn_error", r->exec_errno == ENOENT ?
		    PHN_EXIT_NOTFOUND : PHN_EXIT_NOEXEC);
	} else if (r->nocodex) {
		if (r->exit_code != 0) {
			phn_errs_add(&r->errs, "fake codex exit status %d",
			    r->exit_code);
			set(r, "failed", "codex_exit", 1);
		}
	} else if (r->turn_failed || (r->exit_code != 0 && r->last_error &&
	    !r->turn_completed)) {
		phn_errs_add(&r->errs, "model error: %s", r->model_error ?
		    r->model_error : r->last_error);
		set(r, "failed", "model_error", 1);
		rate_limited(r);
	} else if (r->exit_code != 0 && r->signal == 0 && rate_limited(r)) {
		phn_errs_add(&r->errs, "model error: codex exited with status "
		    "%d: %s", r->exit_code, r->rl_msg);
		set(r, "failed", "model_error", 1);
	} else if (r->exit_code != 0) {
		if (r->signal > 0)
			phn_errs_add(&r->errs, "codex killed by signal %d%s%s",
			    r->signal, r->stderr_tail ? ": " : "",
			    r->stderr_tail ? r->stderr_tail : "");
		else
			phn_errs_add(&r->errs, "codex exited with status %d%s%s",
			    r->exit_code, r->stderr_tail ? ": " : "",
			    r->stderr_tail ? r->stderr_tail : "");
		set(r, "failed", "codex_exit", 1);
	} else if (!r->turn_completed) {
		phn_errs_add(&r->errs, "codex exited 0 without a turn.completed "
		    "event");
		set(r, "failed", "codex_exit", 1);
	}
}

static void
join_errs(struct phn_errs *e, char *buf, size_t len)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < e->n && i < 5; i++) {
		if (i > 0)
			strncat(buf, "; ", len - strlen(buf) - 1);
		strncat(buf, e->v[i], len - strlen(buf) - 1);
	}
	if (e->n > 5)
		strncat(buf, "; ...", len - strlen(buf) - 1);
}

/* Parse and validate final.txt: the report, or NULL and *bad. */
static struct json_object *
parse_final(struct phn_run *r, struct json_object **any, char **bad)
{
	char *f = phn_path_join(r->a.dir, "final.txt"), *buf, msg[600];
	struct phn_errs e = { 0 };
	struct json_object *doc;
	size_t len;
	int v;

	*any = NULL;
	*bad = NULL;
	if (phn_read_file(f, &buf, &len, FINAL_MAX) == -1) {
		*bad = phn_asprintf("no final report: final.txt: %s",
		    errno == EFBIG ? "larger than 64 MiB" : strerror(errno));
		free(f);
		return NULL;
	}
	free(f);
	if (len == 0) {
		*bad = phn_strdup("no final report: final.txt is empty");
		free(buf);
		return NULL;
	}
	artifact(r, "final.txt", "log", "the agent's last message, as written "
	    "by codex");
	doc = phn_json_parse(buf, len, "final.txt", msg, sizeof(msg));
	free(buf);
	if (doc == NULL) {
		*bad = phn_asprintf("final output is not valid JSON: %s", msg);
		return NULL;
	}
	*any = doc;
	v = phn_schema_validate(r->schema, doc, &e);
	if (v != 0) {
		join_errs(&e, msg, sizeof(msg));
		*bad = phn_asprintf("%s: %s", v == 1 ? "schema validation "
		    "failed" : "output schema unusable", msg);
		phn_errs_free(&e);
		return NULL;
	}
	phn_errs_free(&e);
	return json_object_get(doc);
}

static struct json_object *
or_default(struct json_object *doc, const char *k, struct json_object *d)
{
	struct json_object *v;

	if ((v = phn_json_get(doc, k)) != NULL) {
		json_object_put(d);
		return json_object_get(v);
	}
	return d;
}

static void
handoff(struct phn_run *r, struct json_object *doc)
{
	struct json_object *h = json_object_new_object();
	char *x, *rel;

	json_object_object_add(h, "schema_version", or_default(doc,
	    "schema_version", json_object_new_string("unknown")));
	json_object_object_add(h, "status", or_default(doc, "status", NULL));
	json_object_object_add(h, "summary", or_default(doc, "summary", NULL));
	json_object_object_add(h, "files_read", or_default(doc, "files_read",
	    json_object_new_array()));
	json_object_object_add(h, "files_written", or_default(doc,
	    "files_written", json_object_new_array()));
	json_object_object_add(h, "artifacts", or_default(doc, "artifacts",
	    json_object_new_array()));
	x = phn_path_join(r->a.dir, "final.json");
	rel = phn_path_rel(r->p->runs, x);
	json_object_object_add(h, "final_json_path", r->report ?
	    json_object_new_string(rel) : NULL);
	free(x);
	free(rel);
	x = phn_path_join(r->a.dir, "final.txt");
	rel = phn_path_rel(r->p->runs, x);
	json_object_object_add(h, "final_txt_path", json_object_new_string(rel));
	free(x);
	free(rel);
	json_object_object_add(h, "codex_thread_id", r->thread_id ?
	    json_object_new_string(r->thread_id) : NULL);
	json_object_object_add(h, "run_id", json_object_new_string(r->a.run_id));
	if (phn_run_stage_json(r, "handoff.json", h) == -1)
		phn_errs_add(&r->errs, "unable to write handoff.json: %s",
		    strerror(errno));
	else
		artifact(r, "handoff.json", "report", "summary for downstream "
		    "steps");
	json_object_put(h);
}

/* A path for a fake write: relative, inside the workdir. */
static char *
inside(struct phn_run *r, const char *rel)
{
	if (rel == NULL || *rel == '/' || strstr(rel, "..") != NULL)
		return NULL;
	return phn_path_join(r->workdir, rel);
}

/* Whether path is a file staged to appear at the end. */
static int
staged(struct phn_run *r, const char *path)
{
	size_t i;

	for (i = 0; i < r->nstaged; i++)
		if (strcmp(r->staged[i * 2 + 1], path) == 0)
			return 1;
	return 0;
}

/*
 * artifacts_expected: names that must exist in the attempt directory;
 * in a dry run also fake_workspace_assert_exists, in the workdir.
 */
static char *
missing_artifacts(struct phn_run *r)
{
	struct json_object *v = NULL, *a, *nm;
	char *miss = NULL, *t, *f;
	size_t i, n;

	v = phn_json_get(r->step, "artifacts_expected");
	n = json_object_is_type(v, json_type_array) ?
	    json_object_array_length(v) : 0;
	for (i = 0; i < n; i++) {
		a = nm = json_object_array_get_idx(v, i);
		if (json_object_is_type(a, json_type_object))
			nm = phn_json_get(a, "name");
		if (!json_object_is_type(nm, json_type_string))
			continue;
		f = phn_path_join(r->a.dir, json_object_get_string(nm));
		if (access(f, F_OK) == -1 && !staged(r, f)) {
			t = phn_asprintf("%s%s%s", miss ? miss : "", miss ?
			    ", " : "", json_object_get_string(nm));
			free(miss);
			miss = t;
		}
		free(f);
	}
	v = r->nocodex ? phn_json_get(r->step, "fake_workspace_assert_exists") :
	    NULL;
	n = json_object_is_type(v, json_type_array) ?
	    json_object_array_length(v) : 0;
	for (i = 0; i < n; i++) {
		const char *x = json_object_get_string(
		    json_object_array_get_idx(v, i));
		f = inside(r, x);
		if (f == NULL || access(f, F_OK) == -1) {
			t = phn_asprintf("%s%sworkdir/%s", miss ? miss : "",
			    miss ? ", " : "", x ? x : "?");
			free(miss);
			miss = t;
		}
		free(f);
	}
	return miss;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* git ARGS in the workdir; its output staged as name (NULL: not) and/or
 * kept in *keep. */
static void
git_file(struct phn_run *r, char *const args[], const char *name,
    const char *kind, const char *desc, char **keep)
{
	struct phn_buf out = { 0 };

	if (phn_git(r->workdir, args, &out, NULL) != 0) {
		free(out.s);
		return;
	}
	if (name != NULL && phn_run_stage(r, name, out.s, out.len) == 0)
		artifact(r, name, kind, desc);
	if (keep)
		*keep = out.s;
	else
		free(out.s);
}

/* git_head.txt, git_status.txt, git_diff.patch, files_touched.json. */
static void
git_capture(struct phn_run *r, struct json_object *doc)
{
	char *head = NULL, *status = NULL, *names = NULL, *s, *save = NULL;
	char **v = NULL;
	struct json_object *fw = NULL, *o, *arr;
	size_t n = 0, i;

	git_file(r, (char *[]){ "rev-parse", "HEAD", NULL },
	    "git_head.txt", "log", "git rev-parse HEAD", &head);
	if (head == NULL) {
		phn_warn("%s: warning: git capture: %s is not a git repository "
		    "with a commit", r->a.dir, r->workdir);
		return;
	}
	git_file(r, (char *[]){ "status", "--porcelain=v1", NULL },
	    "git_status.txt", "log", "git status --porcelain=v1", &status);
	git_file(r, (char *[]){ "diff", "HEAD", NULL },
	    "git_diff.patch", "patch", "git diff HEAD", NULL);
	git_file(r, (char *[]){ "diff", "HEAD", "--name-only", NULL }, NULL,
	    NULL, NULL, &names);
	for (s = names ? strtok_r(names, "\n", &save) : NULL; s;
	    s = strtok_r(NULL, "\n", &save)) {
		v = phn_realloc(v, (n + 1) * sizeof(*v));
		v[n++] = phn_strdup(s);
	}
	save = NULL;
	for (s = status ? strtok_r(status, "\n", &save) : NULL; s;
	    s = strtok_r(NULL, "\n", &save))
		if (strncmp(s, "?? ", 3) == 0) {
			v = phn_realloc(v, (n + 1) * sizeof(*v));
			v[n++] = phn_strdup(s + 3);
		}
	if (json_object_object_get_ex(doc, "files_written", &fw) &&
	    json_object_is_type(fw, json_type_array))
		for (i = 0; i < json_object_array_length(fw); i++) {
			const char *x = json_object_get_string(
			    json_object_array_get_idx(fw, i));
			if (x && *x) {
				v = phn_realloc(v, (n + 1) * sizeof(*v));
				v[n++] = phn_strdup(x);
			}
		}
	if (v)
		qsort(v, n, sizeof(*v), str_cmp);
	o = json_object_new_object();
	arr = json_object_new_array();
	for (i = 0; i < n; i++)
		if (i == 0 || strcmp(v[i], v[i - 1]) != 0)
			json_object_array_add(arr, json_object_new_string(v[i]));
	json_object_object_add(o, "files_touched", arr);
	if (phn_run_stage_json(r, "files_touched.json", o) == 0)
		artifact(r, "files_touched.json", "report", "files changed in "
		    "the workdir, and those the report says it wrote");
	json_object_put(o);
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
	free(head);
	free(status);
	free(names);
}

/* The CLI version codex recorded in this thread's rollout file. */
static char *
cli_version(const char *dir, const char *tid, int depth)
{
	char **v, *res = NULL;
	size_t n, i, tl = strlen(tid);

	if ((v = phn_dir_list(dir, &n)) == NULL)
		return NULL;
	for (i = 0; i < n && res == NULL; i++) {
		char *p = phn_path_join(dir, v[i]);
		size_t l = strlen(v[i]);
		if (depth < 4 && strncmp(v[i], "rollout-", 8) != 0)
			res = cli_version(p, tid, depth + 1);
		else if (l > tl + 6 && strcmp(v[i] + l - 6, ".jsonl") == 0 &&
		    strncmp(v[i] + l - 6 - tl, tid, tl) == 0) {
			FILE *fp = fopen(p, "re");
			char *line = NULL;
			size_t cap = 0;
			struct json_object *o;
			if (fp && getline(&line, &cap, fp) > 0 &&
			    (o = json_tokener_parse(line)) != NULL) {
				const char *x = phn_jstr(json_object_object_get(o,
				    "payload"), "cli_version");
				if (x)
					res = phn_strdup(x);
				json_object_put(o);
			}
			free(line);
			if (fp)
				fclose(fp);
		}
		free(p);
	}
	phn_dir_list_free(v, n);
	return res;
}

/*
 * After codex (or the dry run) ended: decide status, kind and exit code,
 * and write final.json, handoff.json and the git capture.  An outcome
 * decided before codex started (r->status set) stands.
 */
void
phn_run_outcome(struct phn_run *r)
{
	struct json_object *any = NULL, *v;
	char *bad = NULL, *miss, *sd;
	const char *rs;

	if (r->status != NULL)
		return;
	ended(r);
	if (r->thread_id && r->version == NULL) {
		sd = phn_path_join(r->home, "sessions");
		r->version = cli_version(sd, r->thread_id, 0);
		free(sd);
	}
	r->report = parse_final(r, &any, &bad);
	if (r->report != NULL) {
		if (phn_run_stage_json(r, "final.json", r->report) == -1)
			phn_errs_add(&r->errs, "unable to write final.json: %s",
			    strerror(errno));
		else
			artifact(r, "final.json", "report", "the validated Run "
			    "Report");
	}
	handoff(r, r->report ? r->report : any);
	v = phn_json_path_get(r->policy, "capture_git_artifacts");
	if (json_object_is_type(v, json_type_boolean) &&
	    json_object_get_boolean(v))
		git_capture(r, r->report);
	miss = missing_artifacts(r);
	if (r->status == NULL) {
		rs = phn_jstr(r->report, "status");
		if (bad != NULL) {
			phn_errs_add(&r->errs, "%s", bad);
			set(r, "needs_attention", "invalid_report",
			    PHN_EXIT_ATTENTION);
		} else if (rs && (strcmp(rs, "failed") == 0 ||
		    strcmp(rs, "needs_attention") == 0)) {
			phn_errs_add(&r->errs, "the agent's report says %s: %s", rs,
			    phn_jstr(r->report, "summary") ? phn_jstr(r->report,
			    "summary") : "");
			set(r, strcmp(rs, "failed") == 0 ? "failed" :
			    "needs_attention", "report_failed",
			    strcmp(rs, "failed") == 0 ? 1 : PHN_EXIT_ATTENTION);
		} else if (miss != NULL) {
			phn_errs_add(&r->errs, "missing expected artifacts: %s",
			    miss);
			set(r, "needs_attention", "missing_artifacts",
			    PHN_EXIT_ATTENTION);
		} else
			set(r, "succeeded", NULL, 0);
	}
	json_object_put(any);
	free(bad);
	free(miss);
}

/* ------------------------------------------------------------ dry run -- */

static struct json_object *
resolve_ref(struct json_object *root, struct json_object *s)
{
	const char *ref = phn_jstr(s, "$ref");
	char *p, *tok, *save = NULL;
	struct json_object *cur = root;

	if (ref == NULL || strncmp(ref, "#", 1) != 0)
		return s;
	p = phn_strdup(ref + 1);
	for (tok = strtok_r(p, "/", &save); tok && cur; tok = strtok_r(NULL,
	    "/", &save))
		if (!json_object_object_get_ex(cur, tok, &cur))
			cur = NULL;
	free(p);
	return cur ? cur : s;
}

/* A minimal instance of a schema: required keys, first enum values. */
static struct json_object *
gen(struct json_object *root, struct json_object *s, const char *name,
    const char *summary, int depth)
{
	struct json_object *v, *o, *props = NULL, *req;
	const char *t = NULL;
	size_t i, n;

	s = resolve_ref(root, s);
	if (depth > 16 || !json_object_is_type(s, json_type_object))
		return NULL;
	if (json_object_object_get_ex(s, "const", &v))
		return json_object_get(v);
	if (json_object_object_get_ex(s, "enum", &v) &&
	    json_object_is_type(v, json_type_array) &&
	    json_object_array_length(v) > 0) {
		for (i = 0; i < json_object_array_length(v); i++) {
			const char *x = json_object_get_string(
			    json_object_array_get_idx(v, i));
			if (x && strcmp(x, "ok") == 0)
				return json_object_new_string("ok");
		}
		return json_object_get(json_object_array_get_idx(v, 0));
	}
	if (json_object_object_get_ex(s, "type", &v)) {
		if (json_object_is_type(v, json_type_array))
			v = json_object_array_get_idx(v, 0);
		t = json_object_get_string(v);
	}
	json_object_object_get_ex(s, "properties", &props);
	if (t == NULL)
		t = props ? "object" : "null";
	if (strcmp(t, "object") == 0) {
		o = json_object_new_object();
		if (json_object_object_get_ex(s, "required", &req) &&
		    json_object_is_type(req, json_type_array))
			for (i = 0; i < json_object_array_length(req); i++) {
				const char *k = json_object_get_string(
				    json_object_array_get_idx(req, i));
				struct json_object *ps = NULL;
				if (k == NULL)
					continue;
				json_object_object_get_ex(props, k, &ps);
				json_object_object_add(o, k, gen(root, ps, k,
				    summary, depth + 1));
			}
		return o;
	}
	if (strcmp(t, "array") == 0) {
		o = json_object_new_array();
		n = json_object_object_get_ex(s, "minItems", &v) ?
		    (size_t)json_object_get_int(v) : 0;
		json_object_object_get_ex(s, "items", &v);
		for (i = 0; i < n && i < 16; i++)
			json_object_array_add(o, gen(root, v, NULL, summary,
			    depth + 1));
		return o;
	}
	if (strcmp(t, "string") == 0) {
		if (name && strcmp(name, "schema_version") == 0)
			return json_object_new_string("1.0.0");
		return json_object_new_string(name && strcmp(name,
		    "summary") == 0 ? summary : "");
	}
	if (strcmp(t, "integer") == 0 || strcmp(t, "number") == 0)
		return json_object_new_int(json_object_object_get_ex(s,
		    "minimum", &v) ? json_object_get_int(v) : 0);
	if (strcmp(t, "boolean") == 0)
		return json_object_new_boolean(0);
	return NULL;
}

static int
valid(struct phn_run *r, struct json_object *doc)
{
	struct phn_errs e = { 0 };
	int v = phn_schema_validate(r->schema, doc, &e);

	phn_errs_free(&e);
	return v == 0;
}

/*
 * The dry run: the step's fake_* knobs (fake_exit_code(s),
 * fake_workspace_writes, fake_workspace_assert_exists,
 * fake_codex_home_marker), then a fake report in final.txt that is valid
 * against the step's schema (the standard Run Report, else an instance
 * generated from the schema).  Returns fake_sleep_seconds.
 */
double
phn_run_fake_begin(struct phn_run *r)
{
	struct json_object *v, *w;
	const char *m;
	char *f;
	size_t i, n;
	int an = 1;

	an = (int)phn_json_int(r->meta, "attempt_number", 1);
	r->exit_code = 0;
	if (json_object_object_get_ex(r->step, "fake_exit_codes", &v) &&
	    json_object_is_type(v, json_type_array) &&
	    (n = json_object_array_length(v)) > 0)
		r->exit_code = json_object_get_int(json_object_array_get_idx(v,
		    (size_t)an - 1 < n ? (size_t)an - 1 : n - 1));
	else
		r->exit_code = (int)phn_json_int(r->step, "fake_exit_code", 0);
	if (json_object_object_get_ex(r->step, "fake_workspace_writes", &v) &&
	    json_object_is_type(v, json_type_array))
		for (i = 0; i < json_object_array_length(v); i++) {
			w = json_object_array_get_idx(v, i);
			if ((f = inside(r, phn_jstr(w, "path"))) == NULL) {
				phn_errs_add(&r->errs, "fake_workspace_writes[%zu]: "
				    "path must be relative, inside the workdir", i);
				continue;
			}
			m = phn_jstr(w, "content");
			if (phn_atomic_write(f, m ? m : "", m ? strlen(m) : 0,
			    PHN_DURABLE | PHN_MKDIR) == -1)
				phn_errs_add(&r->errs, "fake write %s: %s", f,
				    strerror(errno));
			free(f);
		}
	if ((m = phn_jstr(r->step, "fake_codex_home_marker")) != NULL &&
	    strchr(m, '/') == NULL && *m != '.') {
		char *txt = phn_asprintf("marker for %s/%s/%s\n", r->a.batch,
		    r->a.job, r->a.step);
		f = phn_path_join(r->home, m);
		if (phn_atomic_write(f, txt, strlen(txt), PHN_DURABLE) == -1)
			phn_errs_add(&r->errs, "fake marker %s: %s", f,
			    strerror(errno));
		free(f);
		free(txt);
	}
	return phn_json_num(r->step, "fake_sleep_seconds", 0);
}

void
phn_run_fake_end(struct phn_run *r)
{
	struct json_object *rep;
	char *sum, *f, *s;

	if (r->stop != PHN_STOP_NONE)
		return;
	sum = phn_asprintf("fake run report for %s/%s/%s/%s", r->a.batch,
	    r->a.job, r->a.step, r->a.run_id);
	rep = json_object_new_object();
	json_object_object_add(rep, "schema_version",
	    json_object_new_string("1.0.0"));
	json_object_object_add(rep, "status", json_object_new_string(
	    r->exit_code == 0 ? "ok" : "failed"));
	json_object_object_add(rep, "summary", json_object_new_string(sum));
	json_object_object_add(rep, "files_read", json_object_new_array());
	json_object_object_add(rep, "files_written", json_object_new_array());
	json_object_object_add(rep, "artifacts", json_object_new_array());
	if (!valid(r, rep)) {
		struct json_object *g = gen(r->schema, r->schema, NULL, sum, 0);
		if (g != NULL && valid(r, g)) {
			json_object_put(rep);
			rep = g;
		} else
			json_object_put(g);
	}
	s = phn_strdup(json_object_to_json_string_ext(rep,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	f = phn_path_join(r->a.dir, "final.txt");
	if (phn_atomic_write(f, s, strlen(s), PHN_DURABLE | PHN_ONCE) == -1)
		phn_errs_add(&r->errs, "unable to write %s: %s", f,
		    strerror(errno));
	free(f);
	free(s);
	free(sum);
	json_object_put(rep);
}
