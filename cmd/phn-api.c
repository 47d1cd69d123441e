/*
 * phn-api - the toolkit as an HTTP service (libmicrohttpd): the Python
 * version's routes, a live dashboard page, limits that hold under load
 * and abuse.
 *
 * Threads: libmicrohttpd's internal polling thread with one thread per
 * connection.  This is the one place in the toolkit where threads are
 * justified: a request may take long (a tick runs until the batches are
 * idle; an events follow streams until the attempt ends), and such a
 * request must never hold up /health or a scoreboard read, which a single
 * event loop would.  The threads share no toolkit state: every request
 * that touches the store beyond reading a file runs the program that owns
 * the job (phn-ingest, phn tick, phn-score, phn-cancel, phn-force-retry,
 * phn-mark-failed, phn-requeue, phn-tail) as a child process, so a
 * failure, a lock or an exit in it stays in that child; the threads only
 * admit, limit and relay (cmd/api-routes.c).
 *
 * Limits: the connection count, connections per client address and idle
 * time per connection are libmicrohttpd's; the credentials are checked
 * in the first call for a request, before any byte of its body is read,
 * and so is a Content-Length over the body limit (413); at most WORKERS
 * requests run programs at once and max_pending_requests more wait, the
 * rest are answered 503 at once; ticks are serialized in their own queue,
 * where requests for the same tick share the next one.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"

#define WORKERS		8	/* requests running programs at once */
#define STREAMS_MAX	32	/* events follows at once */
#define CHILDREN_MAX	256

struct api A;

static const char usage[] =
    "usage: phn-api [-A none | local_trust | token] [-H host] [-p port] "
    "[-P port-file]\n"
    "               [--enable] [--auto-tick | --no-auto-tick] [-r root]\n"
    "               [--runs-root dir] [--runners-root dir]\n";

/* The gates and the tick queue, under gm. */
static pthread_mutex_t gm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gcond = PTHREAD_COND_INITIALIZER;
static int work_active, work_waiting, streams;
static long long pending_max = 64;

struct tickjob {
	char	*key;		/* its arguments, joined */
	int	 started, done, st, refs;
	struct phn_buf out, err;
	struct tickjob *next;
};
static struct tickjob *tq_head;
static int tq_len, tick_running;

/* Children to stop when the server stops, under cm. */
static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static pid_t children[CHILDREN_MAX];

enum MHD_Result
api_reply(struct MHD_Connection *c, unsigned code, const char *type,
    const char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (code == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		    "Bearer realm=\"phn\"");
	if (code == MHD_HTTP_SERVICE_UNAVAILABLE)
		MHD_add_response_header(r, "Retry-After", "1");
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result
api_reply_obj(struct MHD_Connection *c, unsigned code, struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	enum MHD_Result r = api_reply(c, code, "application/json", s,
	    strlen(s));

	json_object_put(o);
	return r;
}

/* {"ok": false, "error": MSG, "detail": MSG} (detail: the original's). */
enum MHD_Result
api_reply_err(struct MHD_Connection *c, unsigned code, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	va_list ap;
	char *m;

	va_start(ap, fmt);
	m = phn_vasprintf(fmt, ap);
	va_end(ap);
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(m));
	json_object_object_add(o, "detail", json_object_new_string(m));
	free(m);
	return api_reply_obj(c, code, o);
}

int
api_gate_enter(int g)
{
	int r = 0;

	pthread_mutex_lock(&gm);
	if (g == GATE_STREAM) {
		if (streams >= STREAMS_MAX)
			r = -1;
		else
			streams++;
	} else if (g == GATE_WORK) {
		if (work_active >= WORKERS && work_waiting >= pending_max)
			r = -1;
		else {
			work_waiting++;
			while (work_active >= WORKERS)
				pthread_cond_wait(&gcond, &gm);
			work_waiting--;
			work_active++;
		}
	}
	pthread_mutex_unlock(&gm);
	return r;
}

void
api_gate_leave(int g)
{
	pthread_mutex_lock(&gm);
	if (g == GATE_STREAM)
		streams--;
	else if (g == GATE_WORK)
		work_active--;
	pthread_cond_broadcast(&gcond);
	pthread_mutex_unlock(&gm);
}

void
api_child_add(void *ctx, pid_t pid)
{
	int i;

	if (ctx != NULL)
		*(pid_t *)ctx = pid;
	pthread_mutex_lock(&cm);
	for (i = 0; i < CHILDREN_MAX; i++)
		if (children[i] == 0) {
			children[i] = pid;
			break;
		}
	pthread_mutex_unlock(&cm);
}

void
api_child_del(pid_t pid)
{
	int i;

	pthread_mutex_lock(&cm);
	for (i = 0; pid > 0 && i < CHILDREN_MAX; i++)
		if (children[i] == pid)
			children[i] = 0;
	pthread_mutex_unlock(&cm);
}

static void
children_stop(void)
{
	int i;

	pthread_mutex_lock(&cm);
	for (i = 0; i < CHILDREN_MAX; i++)
		if (children[i] > 0)
			kill(children[i], SIGTERM);
	pthread_mutex_unlock(&cm);
}

static void
tickjob_put(struct tickjob *j)
{
	if (--j->refs > 0)
		return;
	free(j->key);
	free(j->out.s);
	free(j->err.s);
	free(j);
}

/*
 * Run `phn tick` with argv (argv[0] the phn front end), after the ticks
 * before it; a request whose arguments match a tick still waiting joins
 * it.  Returns its exit status, with what it said in out and err, or
 * API_TICK_BUSY when the queue is full, -1 when it could not run.
 */
int
api_tick(char *const argv[], struct phn_buf *out, struct phn_buf *err)
{
	struct phn_buf key = { 0 };
	struct tickjob *j, **jp;
	int st, i;

	for (i = 1; argv[i] != NULL; i++) {
		phn_buf_put(&key, argv[i], strlen(argv[i]));
		phn_buf_put(&key, "\037", 1);
	}
	pthread_mutex_lock(&gm);
	for (j = tq_head; j != NULL; j = j->next)
		if (!j->started && strcmp(j->key, key.s) == 0)
			break;
	if (j == NULL) {
		if (tq_len > pending_max) {
			pthread_mutex_unlock(&gm);
			free(key.s);
			return API_TICK_BUSY;
		}
		j = phn_malloc(sizeof(*j));
		memset(j, 0, sizeof(*j));
		j->key = key.s;
		key.s = NULL;
		for (jp = &tq_head; *jp != NULL; jp = &(*jp)->next)
			;
		*jp = j;
		tq_len++;
	}
	free(key.s);
	j->refs++;
	while (!j->done) {
		if (!tick_running && tq_head == j) {
			pid_t pid = 0;
			struct phn_proc pr = { .argv = argv,
			    .started = api_child_add, .ctx = &pid,
			    .max = 1 << 20 };
			struct phn_buf o = { 0 }, e = { 0 };
			j->started = tick_running = 1;
			pthread_mutex_unlock(&gm);
			/* No new tick once the server is stopping. */
			st = A.stopping ? -1 : phn_proc_run(&pr, &o, &e);
			api_child_del(pid);
			pthread_mutex_lock(&gm);
			j->st = st;
			j->out = o;
			j->err = e;
			j->done = 1;
			tick_running = 0;
			tq_head = j->next;
			tq_len--;
			pthread_cond_broadcast(&gcond);
			break;
		}
		pthread_cond_wait(&gcond, &gm);
	}
	phn_buf_put(out, j->out.s ? j->out.s : "", j->out.len);
	phn_buf_put(err, j->err.s ? j->err.s : "", j->err.len);
	st = j->st;
	tickjob_put(j);
	pthread_mutex_unlock(&gm);
	return st;
}

/* A loopback address: 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104. */
static int
peer_loopback(const struct sockaddr *sa)
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr)
		    >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) &&
		    a->s6_addr[12] == 127);
	}
	return 0;
}

/* Is h, an Authorization header or NULL, "Bearer" and the token? */
static int
bearer_ok(const char *h)
{
	size_t i, n, m = strlen(A.token);
	unsigned char d = 0;

	if (h == NULL)
		return 0;
	while (*h == ' ' || *h == '\t')
		h++;
	if (strncasecmp(h, "bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
		return 0;
	for (h += 6; *h == ' ' || *h == '\t'; h++)
		;
	n = strlen(h);
	while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	/* Constant time in the length of the presented token. */
	for (i = 0; i < n; i++)
		d |= (unsigned char)h[i] ^ (unsigned char)A.token[i % (m ? m : 1)];
	return d == 0 && n == m && m > 0;
}

/* 0 if c may use the protected routes, else the HTTP status to answer. */
static unsigned
auth_check(struct MHD_Connection *c, const char **why)
{
	const union MHD_ConnectionInfo *ci;

	if (strcmp(A.auth, "local_trust") == 0) {
		ci = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ci != NULL && peer_loopback(ci->client_addr))
			return 0;
		*why = "local_trust requires a loopback client";
		return MHD_HTTP_FORBIDDEN;
	}
	if (strcmp(A.auth, "token") == 0 && !bearer_ok(
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION))) {
		*why = "missing or wrong bearer token";
		return MHD_HTTP_UNAUTHORIZED;
	}
	return 0;
}

/*
 * The first call for a request has its headers and none of its body:
 * route, authenticate, check the declared length and admit it here, so
 * that nothing is read from a request that is refused.
 */
static enum MHD_Result
first_call(struct MHD_Connection *c, struct req *rq, const char *url,
    const char *method)
{
	const char *why = NULL, *cl;
	unsigned code;
	int bad;

	rq->rt = api_route_of(method, url, rq, &bad);
	if (rq->gate != GATE_NONE && (code = auth_check(c, &why)) != 0) {
		rq->answered = 1;
		return api_reply_err(c, code, "%s", why);
	}
	if (bad != 0) {
		rq->answered = 1;
		return api_reply_err(c, bad, bad == MHD_HTTP_NOT_FOUND ?
		    "no such route: %s %s" : "%s %s: method not allowed",
		    method, url);
	}
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL && strtoull(cl, NULL, 10) > A.body_max) {
		rq->answered = 1;
		return api_reply_err(c, MHD_HTTP_CONTENT_TOO_LARGE,
		    "request body larger than %zu bytes "
		    "(interfaces.api_mode.max_body_bytes)", A.body_max);
	}
	if (rq->gate == GATE_WORK) {
		if (api_gate_enter(GATE_WORK) == -1) {
			rq->answered = 1;
			return api_reply_err(c, MHD_HTTP_SERVICE_UNAVAILABLE,
			    "busy: %lld requests are waiting already "
			    "(interfaces.api_mode.max_pending_requests)",
			    pending_max);
		}
		rq->held = 1;
	}
	return MHD_YES;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *data, size_t *size,
    void **con_cls)
{
	struct req *rq = *con_cls;
	enum MHD_Result r;

	(void)cls;
	(void)version;
	if (rq == NULL) {
		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		*con_cls = rq;
		return first_call(c, rq, url, method);
	}
	if (rq->answered) {
		*size = 0;
		return MHD_YES;
	}
	if (*size > 0) {
		/* Only a table is kept; any other body is dropped. */
		if (rq->rt == RT_SUBMIT && !rq->toobig) {
			if (rq->len + *size > A.body_max) {
				rq->toobig = 1;
				free(rq->body);
				rq->body = NULL;
				rq->len = 0;
			} else {
				rq->body = phn_realloc(rq->body, rq->len +
				    *size + 1);
				memcpy(rq->body + rq->len, data, *size);
				rq->len += *size;
				rq->body[rq->len] = '\0';
			}
		}
		*size = 0;
		return MHD_YES;
	}
	rq->answered = 1;
	if (rq->toobig)
		r = api_reply_err(c, MHD_HTTP_CONTENT_TOO_LARGE,
		    "request body larger than %zu bytes "
		    "(interfaces.api_mode.max_body_bytes)", A.body_max);
	else
		r = api_dispatch(c, rq);
	if (rq->held) {
		api_gate_leave(GATE_WORK);
		rq->held = 0;
	}
	return r;
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (rq == NULL)
		return;
	if (rq->held)
		api_gate_leave(GATE_WORK);
	free(rq->body);
	free(rq->path);
	free(rq);
	*con_cls = NULL;
}

static int
loopback(const char *host)
{
	struct in_addr a;

	if (strcmp(host, "localhost") == 0)
		return 1;
	return inet_pton(AF_INET, host, &a) == 1 &&
	    (ntohl(a.s_addr) >> 24) == 127;
}

/* The auto tick: `phn tick` every interval after the last one ended. */
static double tick_interval = 0.5;
static pthread_mutex_t sm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t scond = PTHREAD_COND_INITIALIZER;

static void *
auto_tick(void *arg)
{
	char *phn = phn_tool_path("phn");
	char *argv[] = { phn, "tick", "--root", A.P.root, "--runs-root",
	    A.P.runs, "--runners-root", A.P.runners, NULL };
	struct timespec ts;
	double t;

	(void)arg;
	for (;;) {
		struct phn_buf o = { 0 }, e = { 0 };
		pthread_mutex_lock(&sm);
		clock_gettime(CLOCK_REALTIME, &ts);
		t = (double)ts.tv_sec + ts.tv_nsec / 1e9 + tick_interval;
		ts.tv_sec = (time_t)t;
		ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
		while (!A.stopping && pthread_cond_timedwait(&scond, &sm,
		    &ts) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&sm);
		if (A.stopping)
			break;
		/* As the original, its failures are not news: the next one
		 * tries again. */
		api_tick(argv, &o, &e);
		free(o.s);
		free(e.s);
	}
	free(phn);
	return NULL;
}

static long long
cfg_int(const struct phn_config *C, const char *key, long long dflt)
{
	char *k = phn_asprintf("interfaces.api_mode.%s", key);
	long long v = phn_config_int(C, k, dflt);

	free(k);
	return v;
}

int
main(int argc, char *argv[])
{
	const char *host = "127.0.0.1", *auth = NULL, *portfile = NULL;
	long long portarg = 8765;
	int enable = 0, at_on = 0, at_off = 0, port, auto_on, sig;
	const struct phn_option options[] = {
		PHN_STR('A', "auth", &auth),
		PHN_STR('H', "host", &host),
		PHN_NUM('p', "port", &portarg, 0, 65535),
		PHN_STR('P', "port-file", &portfile),
		PHN_FLAG(0, "enable", &enable),
		PHN_FLAG(0, "auto-tick", &at_on),
		PHN_FLAG(0, "no-auto-tick", &at_off),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage, .mkstore = 1 };
	struct phn_config C;
	struct phn_errs e = { 0 };
	struct sockaddr_in sa;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	struct json_object *o, *am;
	sigset_t ss;
	pthread_t tt;

	PROG = "phn-api";
	setvbuf(stdout, NULL, _IOLBF, 0);
	phn_opts_parse(&opts, &argc, &argv, options);
	if (at_on && at_off)
		phn_usage(&opts, PHN_EXIT_PERM);
	if (auth != NULL && strcmp(auth, "none") != 0 &&
	    strcmp(auth, "local_trust") != 0 && strcmp(auth, "token") != 0)
		phn_die(PHN_EXIT_PERM, "--auth: want none, local_trust or token, "
		    "not '%s'", auth);
	port = (int)portarg;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" :
	    host, &sa.sin_addr) != 1)
		phn_die(PHN_EXIT_PERM, "--host %s: not an IPv4 address", host);
	phn_opts_paths(&opts, &A.P);
	if (phn_config_read(&A.P, 0, &C, &e) == -1)
		phn_errs_die(&e);
	am = phn_json_path_get(C.doc, "interfaces.api_mode");
	if (!enable && !phn_json_bool(am, "enabled", 0))
		phn_die(PHN_EXIT_PERM, "interfaces.api_mode.enabled is not true "
		    "in %s: set it, or pass --enable", C.path);
	A.auth = auth != NULL ? auth : phn_jstr(am, "auth_mode") ?
	    phn_jstr(am, "auth_mode") : "none";
	A.auth = phn_strdup(A.auth);
	if (strcmp(A.auth, "token") == 0) {
		A.token = getenv("PARALLELHASSNES_API_TOKEN");
		if (A.token == NULL || *A.token == '\0')
			phn_die(PHN_EXIT_PERM, "auth token: "
			    "PARALLELHASSNES_API_TOKEN is not set");
	} else if (strcmp(A.auth, "none") == 0 && !loopback(host))
		phn_die(PHN_EXIT_PERM, "--host %s: auth none is allowed only on "
		    "a loopback address; use --auth token", host);
	A.body_max = (size_t)cfg_int(&C, "max_body_bytes", 8 << 20);
	pending_max = cfg_int(&C, "max_pending_requests", 64);
	tick_interval = phn_config_num(&C,
	    "interfaces.api_mode.tick_interval_seconds", 0.5);
	auto_on = at_on || (!at_off && phn_json_bool(am, "enabled", 0) &&
	    phn_json_bool(am, "auto_tick", 1));

	/* Few malloc arenas: 200 connection threads must not mean 200. */
	mallopt(M_ARENA_MAX, 2);
	/* The signals are taken by sigwait() below, in this thread only. */
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);

	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL,
	    (uint16_t)port, NULL, NULL, handler, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
	    MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)cfg_int(&C, "max_connections", 256),
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned)cfg_int(&C, "max_connections_per_ip", 32),
	    MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)cfg_int(&C, "connection_timeout_seconds", 10),
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
	    MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
	    MHD_OPTION_END);
	if (d == NULL)
		phn_die(PHN_EXIT_TEMP, "unable to listen on %s:%d", host, port);
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (info != NULL)
		port = info->port;
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "host", json_object_new_string(host));
	json_object_object_add(o, "port", json_object_new_int(port));
	json_object_object_add(o, "auth", json_object_new_string(A.auth));
	json_object_object_add(o, "auto_tick", json_object_new_boolean(auto_on));
	phn_json_emit(stdout, o);
	json_object_put(o);
	fflush(stdout);
	if (portfile != NULL) {
		char buf[16];
		snprintf(buf, sizeof(buf), "%d\n", port);
		if (phn_atomic_write(portfile, buf, strlen(buf), 0) == -1)
			phn_die(PHN_EXIT_TEMP, "unable to write %s:", portfile);
	}
	if (auto_on && pthread_create(&tt, NULL, auto_tick, NULL) != 0)
		phn_die(PHN_EXIT_TEMP, "unable to start the auto tick:");
	while (sigwait(&ss, &sig) != 0)
		;
	/* Stop: the auto tick, every child (a tick, a follow), the rest. */
	pthread_mutex_lock(&sm);
	A.stopping = 1;
	pthread_cond_broadcast(&scond);
	pthread_mutex_unlock(&sm);
	children_stop();
	if (auto_on)
		pthread_join(tt, NULL);
	children_stop();
	MHD_stop_daemon(d);
	phn_config_free(&C);
	phn_paths_free(&A.P);
	return PHN_EXIT_OK;
}
