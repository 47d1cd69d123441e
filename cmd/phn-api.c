/*
 * phn-api - a thin HTTP façade over the toolkit (libmicrohttpd).
 *
 * Every route runs the program that already does the job (phn-ingest,
 * phn tick, phn-score, phn-artifact, phn-cancel) and answers with what it
 * printed, so the API can never disagree with the command line.  One
 * process, no threads: libmicrohttpd in external-epoll mode under our own
 * poll() loop.  Requests are handled one at a time, which also serializes
 * ticks.  Ids in requests are validated as ids, so no request can name a
 * path outside the runs store.
 *
 * Auth: "none" is allowed only on a loopback address; "token" compares
 * "Authorization: Bearer T" with $PARALLELHASSNES_API_TOKEN in constant
 * time.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "phn.h"

#define BODY_MAX	(64UL * 1024 * 1024)

static struct phn_paths P;
static const char *token;
static volatile sig_atomic_t stop;

struct req {
	char	*body;
	size_t	 len;
	int	 toobig;
};

/* The routes, by method and path (route_of). */
enum { RT_NONE, RT_HEALTH, RT_SUBMIT, RT_TICK, RT_SCORE, RT_BATCH,
	RT_ARTIFACT, RT_CANCEL };

static const char usage[] =
    "usage: phn-api [-A none | token] [-H host] [-p port] [-P port-file] "
    "[-r root]\n"
    "               [--runs-root dir] [--runners-root dir]\n";

static void
onsig(int sig)
{
	(void)sig;
	stop = 1;
}

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned code, const char *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), (void *)body,
	    MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
reply_obj(struct MHD_Connection *c, unsigned code, struct json_object *o)
{
	enum MHD_Result r = reply(c, code, json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(o);
	return r;
}

static enum MHD_Result
reply_err(struct MHD_Connection *c, unsigned code, const char *msg)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	return reply_obj(c, code, o);
}

/* stderr lines of a program, as a JSON array. */
static struct json_object *
lines(const char *s)
{
	struct json_object *a = json_object_new_array();
	const char *e;

	while (*s) {
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

/*
 * Run a toolkit program; answer 200 with its stdout when it is JSON, 400
 * for a permanent failure (100), 500 otherwise, with its stderr lines.
 */
static enum MHD_Result
run_tool(struct MHD_Connection *c, char **argv, const char *in, size_t inlen,
    int raw)
{
	struct phn_proc pr = { .argv = argv, .in = in, .inlen = inlen };
	struct phn_buf ob = { 0 }, eb = { 0 };
	char *out, *err;
	int st, answered;
	struct json_object *o;
	enum MHD_Result r;

	st = phn_proc_run(&pr, &ob, &eb);
	out = ob.s;
	err = eb.s;
	answered = st == PHN_EXIT_OK || st == PHN_EXIT_NO ||
	    st == PHN_EXIT_RUNNING;
	if (st == PHN_EXIT_OK && raw) {
		struct MHD_Response *resp = MHD_create_response_from_buffer(
		    ob.len, out, MHD_RESPMEM_MUST_COPY);
		MHD_add_response_header(resp, "Content-Type",
		    "application/octet-stream");
		r = MHD_queue_response(c, MHD_HTTP_OK, resp);
		MHD_destroy_response(resp);
	} else if (answered && *out != '\0' &&
	    (o = json_tokener_parse(out)) != NULL) {
		r = reply_obj(c, MHD_HTTP_OK, o);
	} else {
		o = json_object_new_object();
		json_object_object_add(o, "ok", json_object_new_boolean(st ==
		    PHN_EXIT_OK));
		json_object_object_add(o, "exit_code", json_object_new_int(st));
		if (*out)
			json_object_object_add(o, "output", lines(out));
		json_object_object_add(o, "errors", lines(err));
		r = reply_obj(c, answered ? MHD_HTTP_OK :
		    st == PHN_EXIT_PERM ? MHD_HTTP_BAD_REQUEST :
		    st == PHN_EXIT_NOTFOUND || st == PHN_EXIT_NOEXEC ?
		    MHD_HTTP_NOT_FOUND :
		    MHD_HTTP_INTERNAL_SERVER_ERROR, o);
	}
	free(out);
	free(err);
	return r;
}

/* POST /v1/batches: {"ok", "batch_id", "warnings"} or 400 with the errors. */
static enum MHD_Result
submit(struct MHD_Connection *c, char **argv, struct req *rq)
{
	struct phn_proc pr = { .argv = argv, .in = rq->body, .inlen = rq->len };
	struct phn_buf ob = { 0 }, eb = { 0 };
	struct json_object *o;
	char *out, *err;
	int st;

	st = phn_proc_run(&pr, &ob, &eb);
	out = ob.s;
	err = eb.s;
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(st == 0));
	if (st == 0) {
		out[strcspn(out, "\n")] = '\0';
		json_object_object_add(o, "batch_id", json_object_new_string(out));
		json_object_object_add(o, "messages", lines(err));
	} else {
		json_object_object_add(o, "exit_code", json_object_new_int(st));
		json_object_object_add(o, "errors", lines(err));
	}
	free(out);
	free(err);
	return reply_obj(c, st == 0 ? MHD_HTTP_OK : st == PHN_EXIT_PERM ?
	    MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR, o);
}

/* Is h, an Authorization header or NULL, "Bearer " and the token? */
static int
bearer_ok(const char *h)
{
	size_t i, n, m;
	unsigned char d = 0;

	if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	n = strlen(h);
	m = strlen(token);
	/* Constant time in the length of the presented token. */
	for (i = 0; i < n; i++)
		d |= (unsigned char)h[i] ^ (unsigned char)token[i % (m ? m : 1)];
	return d == 0 && n == m && m > 0;
}

static int
authorized(struct MHD_Connection *c)
{
	if (token == NULL)
		return 1;
	return bearer_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION));
}

/* A query argument of the request c (an MHD_Connection), or NULL. */
static const char *
arg(void *c, const char *k)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
}

/* The route of a request's method and (unescaped) path: RT_*. */
static int
route_of(const char *method, const char *url)
{
	int post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0;

	if (strcmp(url, "/health") == 0 && get)
		return RT_HEALTH;
	if (strcmp(url, "/v1/batches") == 0 && post)
		return RT_SUBMIT;
	if (strcmp(url, "/v1/tick") == 0 && post)
		return RT_TICK;
	if (strcmp(url, "/v1/scoreboard") == 0 && get)
		return RT_SCORE;
	if (strncmp(url, "/v1/batches/", 12) == 0 && get)
		return RT_BATCH;
	if (strcmp(url, "/v1/artifact") == 0 && get)
		return RT_ARTIFACT;
	if (strcmp(url, "/v1/cancel") == 0 && post)
		return RT_CANCEL;
	return RT_NONE;
}

/*
 * Check a routed request's path and query arguments (argf(c, key)):
 * NULL if it may run, else why not, for a 400.  Ids must be ids: that
 * keeps every request inside the store.  conc gets tick's concurrency,
 * or "".
 */
static const char *
request_check(int rt, const char *url, const char *(*argf)(void *,
    const char *), void *c, char conc[32])
{
	static const char *attempt_keys[] = { "batch_id", "job_id", "step_id",
	    "run_id", NULL };
	const char *const *k, *v;

	conc[0] = '\0';
	switch (rt) {
	case RT_TICK:
		if ((v = argf(c, "concurrency")) != NULL) {
			long n = strtol(v, NULL, 10);
			if (n < 1 || n > 100000)
				return "concurrency must be an integer >= 1";
			snprintf(conc, 32, "%ld", n);
		}
		break;
	case RT_SCORE:
		if ((v = argf(c, "batch_id")) != NULL &&
		    !phn_id_valid(v, strlen(v)))
			return "batch_id: not a valid id";
		break;
	case RT_BATCH:
		if (!phn_id_valid(url + 12, strlen(url + 12)))
			return "not a valid batch id";
		break;
	case RT_ARTIFACT:
	case RT_CANCEL:
		for (k = attempt_keys; *k; k++) {
			v = argf(c, *k);
			if (v == NULL || !phn_id_valid(v, strlen(v)))
				return "batch_id, job_id, step_id and run_id "
				    "must be valid ids";
		}
		if (rt == RT_ARTIFACT && ((v = argf(c, "name")) == NULL ||
		    *v == '\0' || strchr(v, '/') || strcmp(v, "..") == 0))
			return "name must be a file name in the attempt "
			    "directory";
		break;
	}
	return NULL;
}

static enum MHD_Result
route(struct MHD_Connection *c, const char *url, const char *method,
    struct req *rq)
{
	char *argv[16], *tool = NULL, *phn = NULL, conc[32];
	const char *v;
	enum MHD_Result r;
	int rt = route_of(method, url);

	if (rt == RT_HEALTH) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "ok", json_object_new_boolean(1));
		json_object_object_add(o, "runs_root", json_object_new_string(P.runs));
		return reply_obj(c, MHD_HTTP_OK, o);
	}
	if (!authorized(c))
		return reply_err(c, MHD_HTTP_UNAUTHORIZED, "missing or wrong "
		    "bearer token");
	if (rt == RT_NONE)
		return reply_err(c, MHD_HTTP_NOT_FOUND, "no such route");
	if (rt == RT_SUBMIT && rq->toobig)
		return reply_err(c, MHD_HTTP_CONTENT_TOO_LARGE,
		    "Launch Table larger than 64 MiB");
	if ((v = request_check(rt, url, arg, c, conc)) != NULL)
		return reply_err(c, MHD_HTTP_BAD_REQUEST, v);
	if (rt == RT_SUBMIT) {
		tool = phn_tool_path("phn-ingest");
		argv[0] = tool;
		argv[1] = "--root";
		argv[2] = P.root;
		argv[3] = "--runs-root";
		argv[4] = P.runs;
		argv[5] = "-";
		argv[6] = NULL;
		r = submit(c, argv, rq);
	} else if (rt == RT_TICK) {
		phn = phn_tool_path("phn");
		argv[0] = phn;
		argv[1] = "tick";
		argv[2] = "--root";
		argv[3] = P.root;
		argv[4] = "--runs-root";
		argv[5] = P.runs;
		argv[6] = "--runners-root";
		argv[7] = P.runners;
		argv[8] = NULL;
		if (*conc != '\0') {
			argv[8] = "--concurrency";
			argv[9] = conc;
			argv[10] = NULL;
		}
		r = run_tool(c, argv, "", 0, 0);
	} else if (rt == RT_SCORE) {
		tool = phn_tool_path("phn-score");
		argv[0] = tool;
		argv[1] = "--json";
		argv[2] = "--runs-root";
		argv[3] = P.runs;
		argv[4] = NULL;
		if ((v = arg(c, "batch_id")) != NULL) {
			argv[4] = "--batch";
			argv[5] = (char *)v;
			argv[6] = NULL;
		}
		r = run_tool(c, argv, "", 0, 0);
	} else if (rt == RT_BATCH) {
		const char *id = url + 12;
		char msg[512];
		struct json_object *o;
		if ((o = phn_batch_meta(&P, id, msg, sizeof(msg))) == NULL)
			return reply_err(c, MHD_HTTP_NOT_FOUND, "no such batch");
		return reply_obj(c, MHD_HTTP_OK, o);
	} else {
		int art = rt == RT_ARTIFACT;
		tool = phn_tool_path(art ? "phn-artifact" : "phn-cancel");
		argv[0] = tool;
		argv[1] = "--runs-root";
		argv[2] = P.runs;
		argv[3] = "-b";
		argv[4] = (char *)arg(c, "batch_id");
		argv[5] = "--job";
		argv[6] = (char *)arg(c, "job_id");
		argv[7] = "-s";
		argv[8] = (char *)arg(c, "step_id");
		argv[9] = "-R";
		argv[10] = (char *)arg(c, "run_id");
		argv[11] = art ? (char *)arg(c, "name") : NULL;
		argv[12] = NULL;
		r = run_tool(c, argv, "", 0, art);
	}
	free(tool);
	free(phn);
	return r;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *data, size_t *size,
    void **con_cls)
{
	struct req *rq = *con_cls;

	(void)cls;
	(void)version;
	if (rq == NULL) {
		rq = calloc(1, sizeof(*rq));
		if (rq == NULL)
			return MHD_NO;
		*con_cls = rq;
		return MHD_YES;
	}
	if (*size > 0) {
		if (rq->len + *size > BODY_MAX)
			rq->toobig = 1;
		else {
			rq->body = phn_realloc(rq->body, rq->len + *size + 1);
			memcpy(rq->body + rq->len, data, *size);
			rq->len += *size;
			rq->body[rq->len] = '\0';
		}
		*size = 0;
		return MHD_YES;
	}
	return route(c, url, method, rq);
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (rq != NULL) {
		free(rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

static int
loopback(const char *host)
{
	struct in_addr a;

	if (strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0)
		return 1;
	return inet_pton(AF_INET, host, &a) == 1 &&
	    (ntohl(a.s_addr) >> 24) == 127;
}

int
main(int argc, char *argv[])
{
	const char *host = "127.0.0.1", *auth = "none", *portfile = NULL;
	long long portarg = 8765;
	const struct phn_option options[] = {
		PHN_STR('A', "auth", &auth),
		PHN_STR('H', "host", &host),
		PHN_NUM('p', "port", &portarg, 0, 65535),
		PHN_STR('P', "port-file", &portfile),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage, .mkstore = 1 };
	struct sockaddr_in sa;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	struct sigaction act;
	struct json_object *o;
	int port;

	PROG = "phn-api";
	setvbuf(stdout, NULL, _IOLBF, 0);
	phn_opts_parse(&opts, &argc, &argv, options);
	port = (int)portarg;
	if (strcmp(auth, "token") == 0) {
		token = getenv("PARALLELHASSNES_API_TOKEN");
		if (token == NULL || *token == '\0')
			phn_die(PHN_EXIT_PERM, "--auth token: "
			    "PARALLELHASSNES_API_TOKEN is not set");
	} else if (strcmp(auth, "none") != 0)
		phn_die(PHN_EXIT_PERM, "--auth: want none or token, not '%s'",
		    auth);
	else if (!loopback(host))
		phn_die(PHN_EXIT_PERM, "--host %s: auth none is allowed only on "
		    "a loopback address; use --auth token", host);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" :
	    host, &sa.sin_addr) != 1)
		phn_die(PHN_EXIT_PERM, "--host %s: not an IPv4 address", host);
	phn_opts_paths(&opts, &P);

	memset(&act, 0, sizeof(act));
	act.sa_handler = onsig;
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	sigaction(SIGHUP, &act, NULL);
	signal(SIGPIPE, SIG_IGN);

	d = MHD_start_daemon(MHD_USE_EPOLL, (uint16_t)port, NULL, NULL,
	    handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
	if (d == NULL)
		phn_die(PHN_EXIT_TEMP, "unable to listen on %s:%d", host, port);
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (info != NULL)
		port = info->port;
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "host", json_object_new_string(host));
	json_object_object_add(o, "port", json_object_new_int(port));
	json_object_object_add(o, "auth", json_object_new_string(auth));
	phn_json_emit(stdout, o);
	json_object_put(o);
	fflush(stdout);
	if (portfile != NULL) {
		char buf[16];
		snprintf(buf, sizeof(buf), "%d\n", port);
		if (phn_atomic_write(portfile, buf, strlen(buf), 0) == -1)
			phn_die(PHN_EXIT_TEMP, "unable to write %s:", portfile);
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
	while (!stop) {
		struct pollfd pf = { info->epoll_fd, POLLIN, 0 };
		MHD_UNSIGNED_LONG_LONG to;
		int ms = 1000;

		if (MHD_get_timeout(d, &to) == MHD_YES && to < 1000)
			ms = (int)to;
		if (poll(&pf, 1, ms) == -1 && errno != EINTR)
			break;
		MHD_run(d);
	}
	MHD_stop_daemon(d);
	phn_paths_free(&P);
	return PHN_EXIT_OK;
}
