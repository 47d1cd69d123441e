/*
 * api-routes.c - phn-api's routes: the Python version's paths and
 * shapes, each answered by the program or library call that owns the
 * job (see phn-api.c and phn-api(1)).
 *
 * Ids in paths and queries must be ids, an attempt directory must be one
 * of this store's, an artifact name a plain name resolved inside its
 * attempt: no request names a path outside the runs store.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"

#define PAGE_MAX	(1 << 20)

/* The routes by path; "*" is one id segment. */
static const struct route {
	const char *method;
	const char *pat[8];
	int	 rt, gate;
} routes[] = {
	{ "GET", { NULL }, RT_PAGE, GATE_NONE },
	{ "GET", { "index.html", NULL }, RT_PAGE, GATE_NONE },
	{ "GET", { "health", NULL }, RT_HEALTH, GATE_NONE },
	{ "POST", { "v1", "batches", NULL }, RT_SUBMIT, GATE_WORK },
	{ "POST", { "v1", "tick", NULL }, RT_TICK, GATE_TICK },
	{ "GET", { "v1", "scoreboards", "system", NULL }, RT_SYSSCORE,
	    GATE_WORK },
	{ "GET", { "v1", "scoreboard", NULL }, RT_SCORE, GATE_WORK },
	{ "GET", { "v1", "batches", "*", NULL }, RT_BATCH, GATE_WORK },
	{ "GET", { "v1", "batches", "*", "scoreboard", NULL }, RT_BSCORE,
	    GATE_WORK },
	{ "GET", { "v1", "batches", "*", "steps", NULL }, RT_STEPS, GATE_WORK },
	{ "GET", { "v1", "runners", NULL }, RT_RUNNERS, GATE_WORK },
	{ "GET", { "v1", "batches", "*", "jobs", "*", "current", NULL },
	    RT_CURRENT, GATE_WORK },
	{ "POST", { "v1", "batches", "*", "jobs", "*", "steps", "*", "*" },
	    RT_OVERRIDE, GATE_WORK },
	{ "GET", { "v1", "attempts", "resolve", NULL }, RT_RESOLVE, GATE_WORK },
	{ "GET", { "v1", "attempts", "artifact", NULL }, RT_ARTIFACT,
	    GATE_WORK },
	{ "GET", { "v1", "artifact", NULL }, RT_ARTIFACT, GATE_WORK },
	{ "GET", { "v1", "attempts", "events", NULL }, RT_EVENTS, GATE_WORK },
	{ "POST", { "v1", "attempts", "cancel", NULL }, RT_CANCEL, GATE_WORK },
	{ "POST", { "v1", "cancel", NULL }, RT_CANCEL, GATE_WORK },
};

/* Does the request's path (its segments) match pat? */
static int
match(const struct req *rq, const char *const pat[8])
{
	int i;

	for (i = 0; i < 8 && pat[i] != NULL; i++)
		if (i >= rq->nseg || (strcmp(pat[i], "*") != 0 &&
		    strcmp(pat[i], rq->seg[i]) != 0))
			return 0;
	return i == rq->nseg;
}

/*
 * The route of method and url: RT_*, with rq's segments and gate filled;
 * *bad is 0, 404 (no such path) or 405 (not with that method).
 */
int
api_route_of(const char *method, const char *url, struct req *rq, int *bad)
{
	size_t i;
	char *s, *t;
	int path_ok = 0;

	rq->path = phn_strdup(url);
	rq->nseg = 0;
	for (s = rq->path; *s == '/'; s++)
		;
	while (*s != '\0') {
		if (rq->nseg == 8) {
			rq->nseg = 9;	/* too long: matches nothing */
			break;
		}
		rq->seg[rq->nseg++] = s;
		if ((t = strchr(s, '/')) == NULL)
			break;
		*t = '\0';
		s = t + 1;
	}
	*bad = MHD_HTTP_NOT_FOUND;
	rq->gate = GATE_WORK;	/* unknown routes are for the authorized */
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!match(rq, routes[i].pat))
			continue;
		path_ok = 1;
		if (strcmp(method, routes[i].method) != 0)
			continue;
		*bad = 0;
		rq->gate = routes[i].gate;
		return routes[i].rt;
	}
	if (path_ok)
		*bad = MHD_HTTP_METHOD_NOT_ALLOWED;
	return RT_NONE;
}

static const char *
q(struct MHD_Connection *c, const char *k)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
}

/* A boolean query argument: 1, 0, or -1 when it is not a boolean. */
static int
qbool(struct MHD_Connection *c, const char *k, int dflt)
{
	const char *v = q(c, k);

	if (v == NULL)
		return dflt;
	if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
	    strcasecmp(v, "yes") == 0 || strcasecmp(v, "on") == 0)
		return 1;
	if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0 ||
	    strcasecmp(v, "no") == 0 || strcasecmp(v, "off") == 0 || *v == '\0')
		return 0;
	return -1;
}

static int
id_ok(const char *v)
{
	return v != NULL && phn_id_valid(v, strlen(v));
}

/* stderr lines of a program, as a JSON array. */
static struct json_object *
lines(const char *s)
{
	struct json_object *a = json_object_new_array();
	const char *e;

	while (s != NULL && *s) {
		e = strchr(s, '\n');
		if (e == NULL)
			e = s + strlen(s);
		if (e > s)
			json_object_array_add(a, json_object_new_string_len(s,
			    (int)(e - s)));
		s = *e ? e + 1 : e;
	}
	return a;
}

/* Run a toolkit program: its exit status, or -1 (could not run it). */
static int
run(char *const argv[], const char *in, size_t inlen, double timeout,
    struct phn_buf *out, struct phn_buf *err)
{
	pid_t pid = 0;
	struct phn_proc pr = { .argv = argv, .in = in, .inlen = inlen,
	    .timeout = timeout, .max = 64 << 20, .started = api_child_add,
	    .ctx = &pid };
	int st = phn_proc_run(&pr, out, err);

	api_child_del(pid);
	return st;
}

/* The first line of a program's stderr without "prog: ", for "error". */
static char *
first_error(const char *err, int st)
{
	const char *s = err, *p;
	size_t n;

	if (s == NULL || *s == '\0')
		return st == -1 ? phn_strdup("unable to run a toolkit program") :
		    phn_asprintf("a toolkit program failed (status %d)", st);
	n = strcspn(s, "\n");
	if ((p = memchr(s, ':', n)) != NULL && strncmp(s, "phn", 3) == 0 &&
	    p[1] == ' ') {
		n -= (size_t)(p + 2 - s);
		s = p + 2;
	}
	return phn_asprintf("%.*s", (int)n, s);
}

/*
 * Answer with a program's result: 200 and its JSON output when it
 * answered (ok: its exit status says so), else the error: 404 when it
 * said "no such" (or exit 1, "none"), 400 for its other permanent
 * failures (100), 503 when it could not be run, 500 otherwise.
 */
static enum MHD_Result
tool_reply(struct MHD_Connection *c, int st, int ok, struct phn_buf *out,
    struct phn_buf *err)
{
	struct json_object *o = NULL;
	enum MHD_Result r;
	unsigned code;
	char *m;

	if (ok && out->s != NULL && *out->s != '\0')
		o = json_tokener_parse(out->s);
	if (o != NULL) {
		r = api_reply_obj(c, MHD_HTTP_OK, o);
		goto out;
	}
	code = st == PHN_EXIT_PERM ? (err->s && strstr(err->s, ": no such ") ?
	    MHD_HTTP_NOT_FOUND : MHD_HTTP_BAD_REQUEST) : st == PHN_EXIT_NO ?
	    MHD_HTTP_NOT_FOUND : st == -1 ? MHD_HTTP_SERVICE_UNAVAILABLE :
	    MHD_HTTP_INTERNAL_SERVER_ERROR;
	m = first_error(err->s, st);
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(m));
	json_object_object_add(o, "detail", json_object_new_string(m));
	json_object_object_add(o, "errors", lines(err->s));
	json_object_object_add(o, "exit_code", json_object_new_int(st));
	free(m);
	r = api_reply_obj(c, code, o);
out:
	free(out->s);
	free(err->s);
	return r;
}

/* The store options every program gets. */
#define STORE_ARGS(argv, i) do {					\
	(argv)[(i)++] = "--root";					\
	(argv)[(i)++] = A.P.root;					\
	(argv)[(i)++] = "--runs-root";					\
	(argv)[(i)++] = A.P.runs;					\
	(argv)[(i)++] = "--runners-root";				\
	(argv)[(i)++] = A.P.runners;					\
} while (0)

/* GET /: the dashboard page (share/dashboard.html). */
static enum MHD_Result
page(struct MHD_Connection *c)
{
	char *f = phn_datadir_file("dashboard.html"), *buf;
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t len;

	if (f == NULL)
		f = phn_datadir_file("share/dashboard.html");
	if (f == NULL || phn_read_file(f, &buf, &len, PAGE_MAX) == -1) {
		ret = api_reply_err(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "dashboard.html: %s", f ? strerror(errno) :
		    "not installed (set PHN_DATADIR)");
		free(f);
		return ret;
	}
	free(f);
	r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Content-Security-Policy",
	    "default-src 'none'; script-src 'unsafe-inline'; "
	    "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* POST /v1/batches: phn-ingest --untrusted, the body on its stdin. */
static enum MHD_Result
submit(struct MHD_Connection *c, struct req *rq)
{
	char *tool = phn_tool_path("phn-ingest"), *argv[16], msg[256];
	struct phn_buf out = { 0 }, err = { 0 };
	struct json_object *o, *meta, *jobs, *ids;
	size_t k;
	int i = 0, st;
	enum MHD_Result r;

	if (rq->len == 0) {
		free(tool);
		return api_reply_err(c, MHD_HTTP_BAD_REQUEST, "empty body: "
		    "want a Launch Table (a JSON object)");
	}
	argv[i++] = tool;
	argv[i++] = "--untrusted";
	STORE_ARGS(argv, i);
	argv[i++] = "-";
	argv[i] = NULL;
	st = run(argv, rq->body, rq->len, 300, &out, &err);
	free(tool);
	if (st != 0) {
		o = json_object_new_object();
		char *m = first_error(err.s, st);
		json_object_object_add(o, "ok", json_object_new_boolean(0));
		json_object_object_add(o, "error", json_object_new_string(m));
		json_object_object_add(o, "detail", json_object_new_string(m));
		json_object_object_add(o, "errors", lines(err.s));
		json_object_object_add(o, "exit_code", json_object_new_int(st));
		free(m);
		free(out.s);
		free(err.s);
		return api_reply_obj(c, st == PHN_EXIT_PERM ?
		    MHD_HTTP_BAD_REQUEST : st == -1 ?
		    MHD_HTTP_SERVICE_UNAVAILABLE :
		    MHD_HTTP_INTERNAL_SERVER_ERROR, o);
	}
	out.s[strcspn(out.s, "\n")] = '\0';
	o = json_object_new_object();
	ids = json_object_new_array();
	if ((meta = phn_batch_meta(&A.P, out.s, msg, sizeof(msg))) != NULL &&
	    json_object_object_get_ex(meta, "jobs", &jobs) &&
	    json_object_is_type(jobs, json_type_array))
		for (k = 0; k < json_object_array_length(jobs); k++) {
			const char *id = phn_jstr(json_object_array_get_idx(jobs,
			    k), "job_id");
			if (id != NULL)
				json_object_array_add(ids,
				    json_object_new_string(id));
		}
	json_object_put(meta);
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "batch_id", json_object_new_string(out.s));
	json_object_object_add(o, "accepted_job_ids", ids);
	json_object_object_add(o, "messages", lines(err.s));
	r = api_reply_obj(c, MHD_HTTP_OK, o);
	free(out.s);
	free(err.s);
	return r;
}

/* 404 unless batch is a batch of the store (400: not an id). */
static int
batch_check(struct MHD_Connection *c, const char *batch, enum MHD_Result *r)
{
	struct phn_errs e = { 0 };

	if (!id_ok(batch)) {
		*r = api_reply_err(c, MHD_HTTP_BAD_REQUEST, "%s: not a valid "
		    "batch id", batch ? batch : "batch_id");
		return -1;
	}
	if (phn_sched_step_check(&A.P, batch, NULL, NULL, &e) == -1) {
		*r = api_reply_err(c, e.temp ? MHD_HTTP_INTERNAL_SERVER_ERROR :
		    MHD_HTTP_NOT_FOUND, "%s", e.n ? e.v[0] : "no such batch");
		phn_errs_free(&e);
		return -1;
	}
	return 0;
}

/* POST /v1/tick?concurrency=N&no_codex=B&batch_id=B: one `phn tick`. */
static enum MHD_Result
tick(struct MHD_Connection *c)
{
	char *phn = phn_tool_path("phn"), *argv[20], conc[32];
	const char *v = q(c, "concurrency"), *b = q(c, "batch_id");
	struct phn_buf out = { 0 }, err = { 0 };
	struct json_object *o;
	int i = 0, st, nc = qbool(c, "no_codex", 0);
	enum MHD_Result r;
	char *end;
	long n = 0;

	if (v != NULL && *v != '\0' && ((n = strtol(v, &end, 10)) < 0 ||
	    *end != '\0' || n > 100000)) {
		free(phn);
		return api_reply_err(c, MHD_HTTP_BAD_REQUEST, "concurrency: "
		    "want an integer >= 0 (0: the batches' own), not '%s'", v);
	}
	if (nc == -1 || qbool(c, "multi_batch", 0) == -1) {
		free(phn);
		return api_reply_err(c, MHD_HTTP_BAD_REQUEST, "no_codex, "
		    "multi_batch: want true or false");
	}
	if (b != NULL && batch_check(c, b, &r) == -1) {
		free(phn);
		return r;
	}
	argv[i++] = phn;
	argv[i++] = "tick";
	STORE_ARGS(argv, i);
	if (n > 0) {
		snprintf(conc, sizeof(conc), "%ld", n);
		argv[i++] = "--concurrency";
		argv[i++] = conc;
	}
	if (nc)
		argv[i++] = "--no-codex";
	if (b != NULL) {
		argv[i++] = "--batch";
		argv[i++] = (char *)b;
	}
	argv[i] = NULL;
	st = api_tick(argv, &out, &err);
	free(phn);
	if (st == API_TICK_BUSY) {
		free(out.s);
		free(err.s);
		return api_reply_err(c, MHD_HTTP_SERVICE_UNAVAILABLE, "busy: "
		    "too many ticks are waiting");
	}
	if (st == PHN_EXIT_OK) {
		o = json_object_new_object();
		json_object_object_add(o, "ok", json_object_new_boolean(1));
		json_object_object_add(o, "exit_code", json_object_new_int(st));
		json_object_object_add(o, "no_codex", json_object_new_boolean(nc));
		json_object_object_add(o, "messages", lines(err.s));
		free(out.s);
		free(err.s);
		return api_reply_obj(c, MHD_HTTP_OK, o);
	}
	if (st == PHN_EXIT_NO) {	/* another tick holds the store's lock */
		char *m = first_error(err.s, st);
		free(out.s);
		free(err.s);
		r = api_reply_err(c, MHD_HTTP_CONFLICT, "%s", m);
		free(m);
		return r;
	}
	return tool_reply(c, st, 0, &out, &err);
}

/* The scoreboards: phn-score --json --write [--batch B]. */
static enum MHD_Result
score(struct MHD_Connection *c, const char *batch)
{
	char *tool = phn_tool_path("phn-score"), *argv[16];
	struct phn_buf out = { 0 }, err = { 0 };
	int i = 0, st;
	enum MHD_Result r;

	if (batch != NULL && batch_check(c, batch, &r) == -1) {
		free(tool);
		return r;
	}
	argv[i++] = tool;
	argv[i++] = "--json";
	argv[i++] = "--write";
	STORE_ARGS(argv, i);
	if (batch != NULL) {
		argv[i++] = "--batch";
		argv[i++] = (char *)batch;
	}
	argv[i] = NULL;
	st = run(argv, NULL, 0, 120, &out, &err);
	free(tool);
	/* 0, 1 and 3 tell where the batches stand: all answers. */
	return tool_reply(c, st, st == 0 || st == PHN_EXIT_NO ||
	    st == PHN_EXIT_RUNNING, &out, &err);
}

/* GET /v1/batches/B/steps: phn-score --steps, as {"steps": [...]}. */
static enum MHD_Result
steps(struct MHD_Connection *c, const char *batch)
{
	char *tool = phn_tool_path("phn-score"), *argv[16], *s, *e;
	struct phn_buf out = { 0 }, err = { 0 };
	struct json_object *o, *a, *x;
	int i = 0, st;
	enum MHD_Result r;

	if (batch_check(c, batch, &r) == -1) {
		free(tool);
		return r;
	}
	argv[i++] = tool;
	argv[i++] = "--steps";
	STORE_ARGS(argv, i);
	argv[i++] = "--batch";
	argv[i++] = (char *)batch;
	argv[i] = NULL;
	st = run(argv, NULL, 0, 120, &out, &err);
	free(tool);
	if (st != 0 && st != PHN_EXIT_NO && st != PHN_EXIT_RUNNING)
		return tool_reply(c, st, 0, &out, &err);
	a = json_object_new_array();
	for (s = out.s; s != NULL && *s != '\0'; s = e) {
		e = s + strcspn(s, "\n");
		if (*e != '\0')
			*e++ = '\0';
		if ((x = json_tokener_parse(s)) != NULL)
			json_object_array_add(a, x);
	}
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "batch_id", json_object_new_string(batch));
	json_object_object_add(o, "steps", a);
	free(out.s);
	free(err.s);
	return api_reply_obj(c, MHD_HTTP_OK, o);
}

/* GET /v1/runners: each runner's health.json (null when it has none). */
static enum MHD_Result
runners(struct MHD_Connection *c)
{
	struct json_object *o = json_object_new_object(), *a, *h, *x;
	char **v, *f, msg[512];
	size_t n = 0, i;

	a = json_object_new_array();
	v = phn_dir_list(A.P.runners, &n);
	for (i = 0; v != NULL && i < n; i++) {
		if (!phn_id_valid(v[i], strlen(v[i])))
			continue;
		f = phn_runner_path(&A.P, v[i], "health.json");
		h = phn_json_load(f, msg, sizeof(msg));
		free(f);
		x = json_object_new_object();
		json_object_object_add(x, "runner_id",
		    json_object_new_string(v[i]));
		json_object_object_add(x, "health", h);
		json_object_array_add(a, x);
	}
	phn_dir_list_free(v, n);
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "runners", a);
	return api_reply_obj(c, MHD_HTTP_OK, o);
}

/* GET /v1/batches/B/jobs/J/current: the job's current.json. */
static enum MHD_Result
current(struct MHD_Connection *c, const char *b, const char *j)
{
	char *f, msg[512];
	struct json_object *o;
	enum MHD_Result r;

	if (!id_ok(b) || !id_ok(j))
		return api_reply_err(c, MHD_HTTP_BAD_REQUEST, "%s/%s: not a "
		    "valid id", b, j);
	f = phn_job_path(&A.P, b, j, "current.json");
	o = phn_json_load(f, msg, sizeof(msg));
	free(f);
	if (o == NULL)
		return api_reply_err(c, errno == ENOENT ? MHD_HTTP_NOT_FOUND :
		    MHD_HTTP_INTERNAL_SERVER_ERROR, "current.json not found: "
		    "%s", msg);
	r = api_reply_obj(c, MHD_HTTP_OK, o);
	return r;
}

/*
 * The attempt a request names: attempt_dir (one of this store's), or
 * batch_id, job_id, step_id and run_id (the step's latest attempt when
 * run_id is missing and latest_ok).  NULL with the answer made in *r.
 */
static char *
attempt_of(struct MHD_Connection *c, int latest_ok, enum MHD_Result *r)
{
	const char *dir = q(c, "attempt_dir"), *b = q(c, "batch_id"),
	    *j = q(c, "job_id"), *s = q(c, "step_id"), *run_id = q(c, "run_id");
	struct phn_errs e = { 0 };
	struct json_object *cur = NULL;
	char *d, *f, msg[512];

	if (dir == NULL) {
		if (!id_ok(b) || !id_ok(j) || !id_ok(s) || (run_id != NULL &&
		    !id_ok(run_id)) || (run_id == NULL && !latest_ok)) {
			*r = api_reply_err(c, MHD_HTTP_BAD_REQUEST, "batch_id, "
			    "job_id, step_id and run_id must be valid ids (or "
			    "give attempt_dir)");
			return NULL;
		}
		if (run_id == NULL) {
			f = phn_job_path(&A.P, b, j, "current.json");
			cur = phn_json_load(f, msg, sizeof(msg));
			free(f);
			run_id = phn_jstr(phn_json_get(phn_json_get(
			    phn_json_get(cur, "steps"), s), "latest"), "run_id");
			if (run_id == NULL) {
				json_object_put(cur);
				*r = api_reply_err(c, MHD_HTTP_NOT_FOUND,
				    "%s/%s/%s: no attempt yet", b, j, s);
				return NULL;
			}
		}
	}
	d = phn_attempt_select(&A.P, dir, b, j, s, run_id, &e);
	json_object_put(cur);
	if (d == NULL) {
		*r = api_reply_err(c, e.temp ? MHD_HTTP_INTERNAL_SERVER_ERROR :
		    MHD_HTTP_NOT_FOUND, "%s", e.n ? e.v[0] : "no such attempt");
		phn_errs_free(&e);
	}
	return d;
}

/* GET /v1/attempts/resolve: {"attempt_dir", and its ids}. */
static enum MHD_Result
resolve(struct MHD_Connection *c)
{
	enum MHD_Result r;
	struct phn_attempt a;
	struct json_object *o;
	char *d = attempt_of(c, 1, &r);

	if (d == NULL)
		return r;
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "attempt_dir", json_object_new_string(d));
	if (phn_attempt_parse(&A.P, d, &a) == 0) {
		json_object_object_add(o, "batch_id",
		    json_object_new_string(a.batch));
		json_object_object_add(o, "job_id", json_object_new_string(a.job));
		json_object_object_add(o, "step_id",
		    json_object_new_string(a.step));
		json_object_object_add(o, "run_id",
		    json_object_new_string(a.run_id));
		phn_attempt_free(&a);
	}
	free(d);
	return api_reply_obj(c, MHD_HTTP_OK, o);
}

/*
 * GET /v1/attempts/artifact?name=F: the file F of the attempt, resolved
 * inside its directory (phn_artifact_path), a regular file only, sent
 * from its descriptor.
 */
static enum MHD_Result
artifact(struct MHD_Connection *c)
{
	const char *name = q(c, "name");
	struct MHD_Response *resp;
	enum MHD_Result r;
	struct stat st;
	char *d, *f;
	size_t n;
	int fd;

	if (name == NULL || *name == '\0' || strchr(name, '/') != NULL ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return api_reply_err(c, MHD_HTTP_BAD_REQUEST, "name must be a "
		    "file name in the attempt directory");
	if ((d = attempt_of(c, 0, &r)) == NULL)
		return r;
	f = phn_artifact_path(d, name);
	free(d);
	if (f == NULL)
		return api_reply_err(c, errno == EPERM ? MHD_HTTP_BAD_REQUEST :
		    MHD_HTTP_NOT_FOUND, "%s: artifact not found%s", name,
		    errno == EPERM ? " (it leads out of the attempt)" : "");
	fd = open(f, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		r = api_reply_err(c, fd == -1 ? MHD_HTTP_NOT_FOUND :
		    MHD_HTTP_BAD_REQUEST, "%s: %s", name, fd == -1 ?
		    strerror(errno) : "not a regular file");
		if (fd != -1)
			close(fd);
		free(f);
		return r;
	}
	free(f);
	if ((resp = MHD_create_response_from_fd((uint64_t)st.st_size,
	    fd)) == NULL) {
		close(fd);
		return MHD_NO;
	}
	n = strlen(name);
	MHD_add_response_header(resp, "Content-Type", n > 5 &&
	    strcmp(name + n - 5, ".json") == 0 ? "application/json" :
	    "application/octet-stream");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	r = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return r;
}

/* An events follow: phn-tail -f's output, streamed as it comes. */
struct stream {
	int	 fd;
	pid_t	 pid;
};

static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	ssize_t n;

	(void)pos;
	/* Blocking is right here: this connection has its own thread. */
	while ((n = read(s->fd, buf, max)) == -1 && errno == EINTR)
		;
	if (n > 0)
		return n;
	return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM :
	    MHD_CONTENT_READER_END_WITH_ERROR;
}

static void
stream_free(void *cls)
{
	struct stream *s = cls;
	int st;

	close(s->fd);
	kill(s->pid, SIGTERM);
	while (waitpid(s->pid, &st, 0) == -1 && errno == EINTR)
		;
	api_child_del(s->pid);
	api_gate_leave(GATE_STREAM);
	free(s);
}

/* GET /v1/attempts/events?lines=N[&follow=1]: phn-tail [-f] -n N. */
static enum MHD_Result
events(struct MHD_Connection *c, struct req *rq)
{
	const char *lv = q(c, "lines");
	char *d, *tool, *argv[16], nb[32], *end;
	struct phn_buf out = { 0 }, err = { 0 };
	int i = 0, st, follow = qbool(c, "follow", 0), p[2];
	long n = 50;
	enum MHD_Result r;

	if (lv != NULL && ((n = strtol(lv, &end, 10)) < 0 || *end != '\0' ||
	    n > 1000000 || *lv == '\0'))
		return api_reply_err(c, MHD_HTTP_BAD_REQUEST, "lines: want an "
		    "integer in [0, 1000000], not '%s'", lv);
	if (follow == -1)
		return api_reply_err(c, MHD_HTTP_BAD_REQUEST, "follow: want true "
		    "or false");
	if ((d = attempt_of(c, 1, &r)) == NULL)
		return r;
	snprintf(nb, sizeof(nb), "%ld", n);
	tool = phn_tool_path("phn-tail");
	argv[i++] = tool;
	argv[i++] = "-n";
	argv[i++] = nb;
	if (follow)
		argv[i++] = "-f";
	argv[i++] = "--runs-root";
	argv[i++] = A.P.runs;
	argv[i++] = d;
	argv[i] = NULL;
	if (!follow) {
		st = run(argv, NULL, 0, 60, &out, &err);
		free(tool);
		free(d);
		if (st != 0)
			return tool_reply(c, st, 0, &out, &err);
		r = api_reply(c, MHD_HTTP_OK, "text/plain; charset=utf-8",
		    out.s, out.len);
		free(out.s);
		free(err.s);
		return r;
	}
	/* A follow holds a stream, not a worker. */
	if (rq->held) {
		api_gate_leave(GATE_WORK);
		rq->held = 0;
	}
	if (api_gate_enter(GATE_STREAM) == -1) {
		free(tool);
		free(d);
		return api_reply_err(c, MHD_HTTP_SERVICE_UNAVAILABLE, "busy: "
		    "too many events follows at once");
	}
	r = MHD_NO;
	if (pipe2(p, O_CLOEXEC) == 0) {
		posix_spawn_file_actions_t fa;
		struct stream *s = phn_malloc(sizeof(*s));
		extern char **environ;
		struct MHD_Response *resp;

		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
		posix_spawn_file_actions_adddup2(&fa, p[1], 1);
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
		st = posix_spawnp(&s->pid, tool, &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
		close(p[1]);
		if (st != 0) {
			close(p[0]);
			free(s);
			api_gate_leave(GATE_STREAM);
			r = api_reply_err(c, MHD_HTTP_SERVICE_UNAVAILABLE,
			    "unable to run phn-tail: %s", strerror(st));
		} else {
			s->fd = p[0];
			api_child_add(NULL, s->pid);
			resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
			    4096, stream_read, s, stream_free);
			if (resp == NULL)
				stream_free(s);
			else {
				MHD_add_response_header(resp, "Content-Type",
				    "text/plain; charset=utf-8");
				MHD_add_response_header(resp, "Cache-Control",
				    "no-store");
				r = MHD_queue_response(c, MHD_HTTP_OK, resp);
				MHD_destroy_response(resp);
			}
		}
	} else {
		api_gate_leave(GATE_STREAM);
		r = api_reply_err(c, MHD_HTTP_SERVICE_UNAVAILABLE, "unable to "
		    "make a pipe: %s", strerror(errno));
	}
	free(tool);
	free(d);
	return r;
}

/* POST /v1/attempts/cancel?grace_seconds=G: phn-cancel. */
static enum MHD_Result
cancel(struct MHD_Connection *c)
{
	const char *g = q(c, "grace_seconds");
	char *d, *tool, *argv[16], gb[32], *end;
	struct phn_buf out = { 0 }, err = { 0 };
	enum MHD_Result r;
	double grace = 3.0;
	int i = 0, st;

	if (g != NULL && ((grace = strtod(g, &end)) < 0 || *end != '\0' ||
	    *g == '\0' || grace > 86400 || grace != grace))
		return api_reply_err(c, MHD_HTTP_BAD_REQUEST, "grace_seconds: "
		    "want a number of seconds in [0, 86400], not '%s'", g);
	if ((d = attempt_of(c, 0, &r)) == NULL)
		return r;
	snprintf(gb, sizeof(gb), "%g", grace);
	tool = phn_tool_path("phn-cancel");
	argv[i++] = tool;
	argv[i++] = "--grace";
	argv[i++] = gb;
	STORE_ARGS(argv, i);
	argv[i++] = d;
	argv[i] = NULL;
	st = run(argv, NULL, 0, grace + 120, &out, &err);
	free(tool);
	free(d);
	return tool_reply(c, st, st == 0, &out, &err);
}

/* POST /v1/batches/B/jobs/J/steps/S/ACTION: the override programs. */
static enum MHD_Result
override(struct MHD_Connection *c, struct req *rq)
{
	const char *b = rq->seg[2], *j = rq->seg[4], *s = rq->seg[6],
	    *act = rq->seg[7], *reason = q(c, "reason"), *runner = q(c,
	    "runner_id");
	char *tool, *argv[20], *name;
	struct phn_buf out = { 0 }, err = { 0 };
	int i = 0, st, diff = qbool(c, "different", 0);
	enum MHD_Result r;

	if (strcmp(act, "force-retry") != 0 && strcmp(act, "mark-failed") != 0 &&
	    strcmp(act, "requeue") != 0)
		return api_reply_err(c, MHD_HTTP_NOT_FOUND, "no such action: "
		    "%s (want force-retry, mark-failed or requeue)", act);
	if (!id_ok(j) || !id_ok(s))
		return api_reply_err(c, MHD_HTTP_BAD_REQUEST, "%s/%s: not a "
		    "valid id", j, s);
	if (batch_check(c, b, &r) == -1)
		return r;
	if (strcmp(act, "requeue") == 0 && (diff == -1 || (runner != NULL) ==
	    (diff == 1) || (runner != NULL && !id_ok(runner))))
		return api_reply_err(c, MHD_HTTP_BAD_REQUEST, "requeue: give "
		    "either runner_id=ID or different=true");
	name = phn_asprintf("phn-%s", act);
	tool = phn_tool_path(name);
	free(name);
	argv[i++] = tool;
	if (reason != NULL) {
		argv[i++] = "--reason";
		argv[i++] = (char *)reason;
	}
	if (runner != NULL && strcmp(act, "requeue") == 0) {
		argv[i++] = "--runner-id";
		argv[i++] = (char *)runner;
	}
	if (diff == 1 && strcmp(act, "requeue") == 0)
		argv[i++] = "--different";
	STORE_ARGS(argv, i);
	argv[i++] = (char *)b;
	argv[i++] = (char *)j;
	argv[i++] = (char *)s;
	argv[i] = NULL;
	st = run(argv, NULL, 0, 120, &out, &err);
	free(tool);
	return tool_reply(c, st, st == 0, &out, &err);
}

enum MHD_Result
api_dispatch(struct MHD_Connection *c, struct req *rq)
{
	char msg[512];
	struct json_object *o;
	enum MHD_Result r;

	switch (rq->rt) {
	case RT_PAGE:
		return page(c);
	case RT_HEALTH:
		o = json_object_new_object();
		json_object_object_add(o, "ok", json_object_new_boolean(1));
		return api_reply_obj(c, MHD_HTTP_OK, o);
	case RT_SUBMIT:
		return submit(c, rq);
	case RT_TICK:
		return tick(c);
	case RT_SYSSCORE:
		return score(c, NULL);
	case RT_SCORE:
		return score(c, q(c, "batch_id"));
	case RT_BSCORE:
		return score(c, rq->seg[2]);
	case RT_BATCH:
		if (batch_check(c, rq->seg[2], &r) == -1)
			return r;
		if ((o = phn_batch_meta(&A.P, rq->seg[2], msg,
		    sizeof(msg))) == NULL)
			return api_reply_err(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
			    "%s", msg);
		return api_reply_obj(c, MHD_HTTP_OK, o);
	case RT_CURRENT:
		return current(c, rq->seg[2], rq->seg[4]);
	case RT_STEPS:
		return steps(c, rq->seg[2]);
	case RT_RUNNERS:
		return runners(c);
	case RT_RESOLVE:
		return resolve(c);
	case RT_ARTIFACT:
		return artifact(c);
	case RT_EVENTS:
		return events(c, rq);
	case RT_CANCEL:
		return cancel(c);
	case RT_OVERRIDE:
		return override(c, rq);
	}
	return api_reply_err(c, MHD_HTTP_NOT_FOUND, "no such route");
}
