/*
 * supervise.c - running codex and watching it: one process, no threads.
 *
 * codex runs in its own session (so its pid is its process group) with
 * the prompt on a pipe to its stdin, closed once written.  It is forked
 * behind a gate: the attempt becomes running, naming codex's pid, group
 * and start time, before codex may exec, so that a reaper can always find
 * and verify it, and a spawner that dies first takes codex along.  One
 * poll()
 * loop reads its stdout (the --json events, appended to
 * codex.events.jsonl one whole line per write, and parsed for the thread
 * id, cumulative usage, the current item and the turn's end; the time
 * each line was received, in seconds since codex was started, goes to
 * codex.events.times, one line per event line, for phn-replay) and stderr
 * (appended to codex.stderr.txt), feeds stdin, and wakes for signals (a
 * self-pipe), heartbeats, the timeout and the kill grace.
 *
 * Stopping (timeout, cancel by SIGTERM/SIGINT/SIGHUP, a wrong resume
 * thread, the attempt ended by someone else) is SIGTERM to the group,
 * kill_grace_seconds, SIGKILL.  codex's exit is seen with WNOWAIT, so its
 * zombie keeps the group id reserved until the end: after it exits, the
 * pipes get a short drain, then whatever is left in the group (a
 * grandchild holding a pipe, a daemon the agent started) is killed, and
 * only then is codex reaped.  A line longer than PHN_EVENT_LINE_MAX is
 * recorded as received but not parsed.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "run.h"

#define DRAIN_SECONDS	2.0	/* pipes held open after codex exited */
#define DIRTY_SECONDS	1.0	/* a new thread id is written this soon */
#define TAIL_MAX	1024	/* stderr kept for the error message */
#define READ_MAX	65536	/* bytes read from a pipe at a time */

struct sup {
	struct phn_run *r;
	int	 in, out, err;		/* our ends of codex's pipes */
	int	 evfd, errfd;		/* codex.events.jsonl, codex.stderr.txt */
	int	 tmfd;			/* codex.events.times */
	size_t	 inoff;
	char	*line;
	size_t	 len, cap;
	int	 overlong, thread_noted, werr;
	double	 t0, deadline, kill_at, drain_at, hb_at, dirty_at, fake_end;
	char	 tail[TAIL_MAX];
	size_t	 tlen;
	struct json_tokener *tok;
};

static void
stop(struct sup *s, int why)
{
	struct phn_run *r = s->r;

	if (r->stop != PHN_STOP_NONE)
		return;
	r->stop = why;
	if (r->pid > 1 && !r->exited) {
		kill(-r->pid, s->r->grace > 0 ? SIGTERM : SIGKILL);
		s->kill_at = s->r->grace > 0 ? phn_mono() + s->r->grace : 0;
	}
}

static void
wfile(struct sup *s, int fd, const char *p, size_t n, const char *name)
{
	while (fd >= 0 && n > 0) {
		ssize_t w = write(fd, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1) {
			if (!s->werr++)
				phn_errs_add(&s->r->errs, "unable to write %s: %s",
				    name, strerror(errno));
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

/* An event line was received whole: when, for codex.events.times. */
static void
stamp(struct sup *s)
{
	char b[32];
	int n;

	if (s->tmfd < 0)
		return;
	n = snprintf(b, sizeof(b), "%.3f\n", phn_mono() - s->t0);
	wfile(s, s->tmfd, b, (size_t)n, "codex.events.times");
}

static char *
describe(struct json_object *item)
{
	struct json_object *v;
	const char *t = phn_jstr(item, "type"), *x;

	if (t == NULL)
		return NULL;
	if (strcmp(t, "command_execution") == 0 &&
	    (x = phn_jstr(item, "command")) != NULL)
		return phn_asprintf("command: %.300s", x);
	if (strcmp(t, "file_change") == 0 && json_object_object_get_ex(item,
	    "changes", &v) && json_object_is_type(v, json_type_array) &&
	    json_object_array_length(v) > 0 &&
	    (x = phn_jstr(json_object_array_get_idx(v, 0), "path")) != NULL)
		return phn_asprintf("file_change: %.300s%s", x,
		    json_object_array_length(v) > 1 ? " ..." : "");
	if (strcmp(t, "mcp_tool_call") == 0 && phn_jstr(item, "tool"))
		return phn_asprintf("tool: %s.%s", phn_jstr(item, "server") ?
		    phn_jstr(item, "server") : "?", phn_jstr(item, "tool"));
	if (strcmp(t, "web_search") == 0 && (x = phn_jstr(item, "query")))
		return phn_asprintf("web_search: %.300s", x);
	return phn_strdup(t);
}

static void
set_usage(struct phn_run *r, struct json_object *u)
{
	static const char *keys[] = { "input_tokens", "cached_input_tokens",
	    "output_tokens", "reasoning_output_tokens", NULL };
	struct json_object *o = json_object_new_object(), *d, *v, *b;
	int i;

	d = r->usage_base ? json_object_new_object() : NULL;
	for (i = 0; keys[i]; i++) {
		int64_t n = json_object_object_get_ex(u, keys[i], &v) &&
		    phn_json_is_int(v) ? json_object_get_int64(v) : 0, bn = 0;
		json_object_object_add(o, keys[i], json_object_new_int64(n));
		if (d == NULL)
			continue;
		if (json_object_object_get_ex(r->usage_base, keys[i], &b) &&
		    phn_json_is_int(b))
			bn = json_object_get_int64(b);
		json_object_object_add(d, keys[i],
		    json_object_new_int64(n >= bn ? n - bn : n));
	}
	json_object_put(r->usage);
	r->usage = o;
	json_object_put(r->usage_attempt);
	r->usage_attempt = d;
}

static void
event(struct sup *s, const char *p, size_t n)
{
	struct phn_run *r = s->r;
	struct json_object *o, *v;
	const char *t, *m;

	r->last_event_at = phn_now();
	json_tokener_reset(s->tok);
	o = json_tokener_parse_ex(s->tok, p, (int)n);
	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    (t = phn_jstr(o, "type")) == NULL) {
		json_object_put(o);
		return;
	}
	if (strcmp(t, "thread.started") == 0 && r->thread_id == NULL &&
	    (m = phn_jstr(o, "thread_id")) != NULL) {
		r->thread_id = phn_strdup(m);
		s->dirty_at = phn_mono() + DIRTY_SECONDS;
		if (r->thread_want && strcmp(m, r->thread_want) != 0) {
			phn_errs_add(&r->errs, "resume: codex started a new "
			    "thread %s instead of resuming %s (the source "
			    "session is not in codex_home)", m, r->thread_want);
			stop(s, PHN_STOP_THREAD);
		}
	} else if (strcmp(t, "turn.completed") == 0) {
		r->turn_completed = 1;
		if (json_object_object_get_ex(o, "usage", &v))
			set_usage(r, v);
	} else if (strcmp(t, "turn.failed") == 0) {
		r->turn_failed = 1;
		m = phn_jstr(json_object_object_get(o, "error"), "message");
		free(r->model_error);
		r->model_error = phn_strdup(m ? m : "turn failed");
	} else if (strcmp(t, "error") == 0 && (m = phn_jstr(o, "message"))) {
		free(r->last_error);
		r->last_error = phn_strdup(m);
	} else if (strcmp(t, "item.started") == 0 &&
	    json_object_object_get_ex(o, "item", &v)) {
		char *d = describe(v);
		if (d != NULL) {
			free(r->current_item);
			r->current_item = d;
		}
	}
	json_object_put(o);
}

/* Stream stdout: whole lines to the events file, each parsed. */
static void
out_data(struct sup *s, const char *p, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t seg = nl ? (size_t)(nl - p) + 1 : n;

		if (s->overlong) {
			wfile(s, s->evfd, p, seg, "codex.events.jsonl");
			if (nl) {
				s->overlong = 0;
				stamp(s);
			}
		} else if (s->len + seg > PHN_EVENT_LINE_MAX) {
			wfile(s, s->evfd, s->line, s->len, "codex.events.jsonl");
			wfile(s, s->evfd, p, seg, "codex.events.jsonl");
			s->r->last_event_at = phn_now();
			s->len = 0;
			s->overlong = nl == NULL;
			if (nl)
				stamp(s);
		} else {
			if (s->len + seg > s->cap) {
				s->cap = (s->len + seg) * 2;
				if (s->cap > PHN_EVENT_LINE_MAX + 1)
					s->cap = PHN_EVENT_LINE_MAX + 1;
				s->line = phn_realloc(s->line, s->cap);
			}
			memcpy(s->line + s->len, p, seg);
			s->len += seg;
			if (nl) {
				wfile(s, s->evfd, s->line, s->len,
				    "codex.events.jsonl");
				stamp(s);
				event(s, s->line, s->len - 1);
				s->len = 0;
			}
		}
		p += seg;
		n -= seg;
	}
}

static void
err_data(struct sup *s, const char *p, size_t n)
{
	wfile(s, s->errfd, p, n, "codex.stderr.txt");
	if (n >= TAIL_MAX) {
		memcpy(s->tail, p + n - TAIL_MAX, TAIL_MAX);
		s->tlen = TAIL_MAX;
	} else {
		if (s->tlen + n > TAIL_MAX) {
			memmove(s->tail, s->tail + (s->tlen + n - TAIL_MAX),
			    TAIL_MAX - n);
			s->tlen = TAIL_MAX - n;
		}
		memcpy(s->tail + s->tlen, p, n);
		s->tlen += n;
	}
}

/* stdout ended: a last line without its newline. */
static void
out_end(struct sup *s)
{
	if (s->len > 0) {
		wfile(s, s->evfd, s->line, s->len, "codex.events.jsonl");
		stamp(s);
		event(s, s->line, s->len);
		s->len = 0;
	}
}

static void
rd(struct sup *s, int *fd, int isout)
{
	char buf[READ_MAX];
	ssize_t n;

	for (;;) {
		n = read(*fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(*fd);
			*fd = -1;
			if (isout)
				out_end(s);
			return;
		}
		if (isout)
			out_data(s, buf, (size_t)n);
		else
			err_data(s, buf, (size_t)n);
		if ((size_t)n < sizeof(buf))
			return;
	}
}

static void
wr(struct sup *s)
{
	struct phn_run *r = s->r;
	ssize_t n;

	while (s->inoff < r->prompt_len) {
		n = write(s->in, r->prompt + s->inoff, r->prompt_len - s->inoff);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n == -1)
			break;	/* EPIPE: codex is not reading */
		s->inoff += (size_t)n;
	}
	close(s->in);
	s->in = -1;
}

/* A heartbeat: progress into state.json; the thread id into current.json. */
static void
beat(struct sup *s)
{
	struct phn_run *r = s->r;
	struct json_object *f = json_object_new_object(), *st;
	char iso[PHN_ISO_LEN];
	int rc;

	phn_iso(phn_now(), iso);
	json_object_object_add(f, "last_heartbeat_at", json_object_new_string(iso));
	if (r->last_event_at > 0) {
		phn_iso(r->last_event_at, iso);
		json_object_object_add(f, "last_event_at",
		    json_object_new_string(iso));
	}
	if (r->current_item)
		json_object_object_add(f, "current_item",
		    json_object_new_string(r->current_item));
	if (r->usage)
		json_object_object_add(f, "usage", json_object_get(r->usage));
	if (r->thread_id)
		json_object_object_add(f, "codex_thread_id",
		    json_object_new_string(r->thread_id));
	rc = phn_state_update(r->a.dir, NULL, f);
	json_object_put(f);
	if (rc == 0) {
		phn_errs_add(&r->errs, "the attempt was ended by someone else "
		    "while codex ran");
		stop(s, PHN_STOP_ENDED);
	} else if (rc == 1 && r->thread_id && !s->thread_noted) {
		s->thread_noted = 1;
		if ((st = phn_state_read(r->a.dir)) != NULL)
			phn_current_note(r->p, &r->a, st);
		json_object_put(st);
	}
	s->hb_at = phn_mono() + r->hb;
	s->dirty_at = 0;
}

/*
 * codex could not be started for want of a resource (pipes, a process):
 * a harness error, temporary (exit 111), that ends the attempt failed
 * with kind spawn_error.  fds holds the five pipes' ten ends (-1: none).
 */
static int
start_failed(struct phn_run *r, const char *what, char **envp, size_t n,
    int *fds)
{
	int e = errno, i;

	for (i = 0; i < 10; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(envp[n - 1]);
	free(envp[n - 2]);
	free(envp);
	phn_errs_add(&r->errs, "%s: %s", what, strerror(e));
	r->status = "failed";
	r->kind = "spawn_error";
	r->code = PHN_EXIT_TEMP;
	return -1;
}

/*
 * Fork codex, record it (queued -> running with its pid, group and start
 * time), then let it exec.  The child waits on a gate pipe first: if we
 * die before the state names it, or the attempt was ended meanwhile, it
 * exits without ever running.  -1 if codex did not start.
 */
static int
start(struct sup *s)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE };
	struct phn_run *r = s->r;
	int fds[10], *in = fds, *out = fds + 2, *err = fds + 4, *ep = fds + 6;
	int *gate = fds + 8, e = 0, rc, fd;
	char **envp, *tmp = phn_path_join(r->a.dir, "tmp"), c;
	sigset_t all, old, none;
	size_t n = 0, i;
	ssize_t k;
	pid_t pid;

	for (i = 0; environ[i]; i++)
		;
	envp = phn_malloc((i + 4) * sizeof(*envp));
	for (i = 0; environ[i]; i++)
		if (strncmp(environ[i], "CODEX_HOME=", 11) != 0 &&
		    strncmp(environ[i], "TMPDIR=", 7) != 0 &&
		    strncmp(environ[i], "TZ=", 3) != 0)
			envp[n++] = environ[i];
	/* codex prints a usage limit's reset time in its TZ (pause.c) */
	envp[n++] = "TZ=UTC";
	envp[n++] = phn_asprintf("CODEX_HOME=%s", r->home);
	envp[n++] = phn_asprintf("TMPDIR=%s", tmp);
	envp[n] = NULL;
	free(tmp);
	for (i = 0; i < 10; i++)
		fds[i] = -1;
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1 ||
	    pipe2(err, O_CLOEXEC) == -1 || pipe2(ep, O_CLOEXEC) == -1 ||
	    pipe2(gate, O_CLOEXEC) == -1)
		return start_failed(r, "unable to create pipes", envp, n, fds);
	sigfillset(&all);
	sigemptyset(&none);
	sigprocmask(SIG_BLOCK, &all, &old);
	if ((pid = fork()) == 0) {
		for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], SIG_DFL);
		setsid();
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		/* The exec error pipe goes to fd 3, the gate to 4, no more. */
		fd = fcntl(ep[1], F_DUPFD_CLOEXEC, 10);
		dup3(fd, 3, O_CLOEXEC);
		fd = fcntl(gate[0], F_DUPFD_CLOEXEC, 10);
		dup3(fd, 4, O_CLOEXEC);
		closefrom(5);
		sigprocmask(SIG_SETMASK, &none, NULL);
		while ((k = read(4, &c, 1)) == -1 && errno == EINTR)
			;
		if (k != 1)
			_exit(0);
		close(4);
		if (chdir(r->workdir) == 0)
			execve(r->argv[0], r->argv, envp);
		e = errno;
		k = write(3, &e, sizeof(e));
		(void)k;
		_exit(e == ENOENT ? 127 : 126);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid == -1)
		return start_failed(r, "unable to fork", envp, n, fds);
	free(envp[n - 1]);
	free(envp[n - 2]);
	free(envp);
	close(in[0]);
	close(out[1]);
	close(err[1]);
	close(ep[1]);
	close(gate[0]);
	r->pid = pid;
	r->codex_start = phn_proc_start(pid);
	if ((rc = phn_run_running(r)) == 1) {
		while ((k = write(gate[1], "", 1)) == -1 && errno == EINTR)
			;
	}
	close(gate[1]);
	if (rc == 1) {
		while ((k = read(ep[0], &e, sizeof(e))) == -1 && errno == EINTR)
			;
		if (k != (ssize_t)sizeof(e))
			e = 0;
	}
	close(ep[0]);
	if (rc != 1 || e != 0) {
		waitpid(pid, &r->wstatus, 0);
		r->pid = 0;
		close(in[1]);
		close(out[0]);
		close(err[0]);
		if (rc == 0) {
			phn_errs_add(&r->errs, "the attempt was ended by someone "
			    "else before codex started");
			r->stop = PHN_STOP_ENDED;
		} else if (rc == -1) {
			phn_errs_add(&r->errs, "unable to update state.json: %s",
			    strerror(errno));
			r->status = "failed";
			r->kind = "spawn_error";
			r->code = PHN_EXIT_TEMP;
		} else
			r->exec_errno = e;
		return -1;
	}
	s->in = in[1];
	s->out = out[0];
	s->err = err[0];
	fcntl(s->in, F_SETFL, O_NONBLOCK);
	fcntl(s->out, F_SETFL, O_NONBLOCK);
	fcntl(s->err, F_SETFL, O_NONBLOCK);
	return 0;
}

static void
child_check(struct sup *s)
{
	struct phn_run *r = s->r;
	siginfo_t si;

	if (r->pid <= 1 || r->exited)
		return;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)r->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid == r->pid)
		r->exited = 1;
}

static double
soonest(double a, double b)
{
	return b > 0 && (a <= 0 || b < a) ? b : a;
}

static void
loop(struct sup *s)
{
	struct phn_run *r = s->r;
	char buf[256];

	for (;;) {
		struct pollfd pf[4];
		double now = phn_mono(), next = s->hb_at;
		int ms;

		if (!r->stop && s->deadline > 0)
			next = soonest(next, s->deadline);
		next = soonest(next, s->kill_at);
		next = soonest(next, s->dirty_at);
		next = soonest(next, s->drain_at);
		next = soonest(next, s->fake_end);
		ms = next <= now ? 0 : (int)((next - now) * 1000) + 1;
		pf[0] = (struct pollfd){ phn_signal_fd(), POLLIN, 0 };
		pf[1] = (struct pollfd){ s->out, POLLIN, 0 };
		pf[2] = (struct pollfd){ s->err, POLLIN, 0 };
		pf[3] = (struct pollfd){ s->in, POLLOUT, 0 };
		/* With four valid fds poll fails only for want of kernel
		 * memory: out of memory, as in the allocation wrappers. */
		if (poll(pf, 4, ms) == -1 && errno != EINTR)
			phn_die(PHN_EXIT_TEMP, "poll:");
		while (read(phn_signal_fd(), buf, sizeof(buf)) > 0)
			;
		/* Once codex has exited, a cancel or a timeout comes too late:
		 * its outcome stands. */
		if (phn_signal_canceled() && !r->stop && !r->exited)
			stop(s, PHN_STOP_CANCEL);
		if (s->out >= 0 && pf[1].revents)
			rd(s, &s->out, 1);
		if (s->err >= 0 && pf[2].revents)
			rd(s, &s->err, 0);
		if (s->in >= 0 && pf[3].revents)
			wr(s);
		child_check(s);
		now = phn_mono();
		if (!r->stop && !r->exited && s->deadline > 0 &&
		    now >= s->deadline) {
			phn_errs_add(&r->errs, "step timeout after %gs",
			    r->timeout);
			stop(s, PHN_STOP_TIMEOUT);
		}
		if (s->kill_at > 0 && now >= s->kill_at) {
			if (!r->exited)
				kill(-r->pid, SIGKILL);
			s->kill_at = 0;
		}
		if (r->pid == 0 && (r->stop || now >= s->fake_end))
			r->exited = 1;
		if (now >= s->hb_at || (s->dirty_at > 0 && now >= s->dirty_at))
			beat(s);
		if (!r->exited)
			continue;
		if (s->in >= 0) {
			close(s->in);
			s->in = -1;
		}
		if (s->out < 0 && s->err < 0)
			break;
		if (s->drain_at == 0)
			s->drain_at = now + DRAIN_SECONDS;
		else if (now >= s->drain_at) {
			phn_errs_add(&r->errs, "codex exited but something in "
			    "its process group kept its output open; killed");
			break;
		}
	}
}

static int
open_log(struct phn_run *r, const char *name)
{
	char *f = phn_path_join(r->a.dir, name);
	int fd = open(f, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd == -1)
		phn_errs_add(&r->errs, "unable to open %s: %s", f,
		    strerror(errno));
	free(f);
	return fd;
}

static void
tail_line(struct sup *s)
{
	char *e, *b;

	if (s->tlen == 0)
		return;
	s->tail[s->tlen < TAIL_MAX ? s->tlen : TAIL_MAX - 1] = '\0';
	e = s->tail + strlen(s->tail);
	while (e > s->tail && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' '))
		*--e = '\0';
	b = strrchr(s->tail, '\n');
	free(s->r->stderr_tail);
	s->r->stderr_tail = phn_strdup(b ? b + 1 : s->tail);
}

/* A supervision of r with no descriptors open yet. */
static void
sup_init(struct sup *s, struct phn_run *r)
{
	memset(s, 0, sizeof(*s));
	s->r = r;
	s->in = s->out = s->err = s->evfd = s->errfd = s->tmfd = -1;
}

/*
 * Parse bytes as codex's whole stdout, read as rd() reads it (at most 64
 * KiB at a time, then end of file), into r; no events file is written.
 * For the fuzzer (tests/fuzz/events.c): r need not be running.
 */
void
phn_events_feed(struct phn_run *r, const char *p, size_t n)
{
	struct sup s;
	size_t k;

	sup_init(&s, r);
	s.tok = json_tokener_new();
	for (; n > 0; p += k, n -= k) {
		k = n < READ_MAX ? n : READ_MAX;
		out_data(&s, p, k);
	}
	out_end(&s);
	free(s.line);
	json_tokener_free(s.tok);
}

/*
 * Run codex (or, with nocodex, the dry run's wait) and supervise it to
 * the end.  Afterwards r says what happened: exec_errno, stop, wstatus,
 * the events seen.
 */
void
phn_run_supervise(struct phn_run *r, double fake_sleep)
{
	struct sup s;
	int st;

	sup_init(&s, r);
	s.t0 = phn_mono();
	s.hb_at = s.t0 + r->hb;
	if (r->timeout > 0)
		s.deadline = s.t0 + r->timeout;
	if (phn_signal_canceled()) {
		r->stop = PHN_STOP_CANCEL;
		return;
	}
	if (r->nocodex) {
		if ((st = phn_run_running(r)) == 1) {
			s.fake_end = s.t0 + (fake_sleep > 0 ? fake_sleep : 0);
			loop(&s);
		} else if (st == 0) {
			phn_errs_add(&r->errs, "the attempt was ended by someone "
			    "else before the dry run started");
			r->stop = PHN_STOP_ENDED;
		} else {
			phn_errs_add(&r->errs, "unable to update state.json: %s",
			    strerror(errno));
			r->status = "failed";
			r->kind = "spawn_error";
			r->code = PHN_EXIT_TEMP;
		}
		return;
	}
	s.tok = json_tokener_new();
	if (!json_object_is_type(phn_json_path_get(r->policy,
	    "capture_events_jsonl"), json_type_boolean) ||
	    json_object_get_boolean(phn_json_path_get(r->policy,
	    "capture_events_jsonl")))
		s.evfd = open_log(r, "codex.events.jsonl");
	if (s.evfd >= 0)
		s.tmfd = open_log(r, "codex.events.times");
	s.errfd = open_log(r, "codex.stderr.txt");
	if (start(&s) == 0) {
		loop(&s);
		if (s.out >= 0)
			close(s.out);
		if (s.err >= 0)
			close(s.err);
		/* The zombie still holds the group id: no stray kill. */
		kill(-r->pid, SIGKILL);
		while (waitpid(r->pid, &st, 0) == -1 && errno == EINTR)
			;
		r->wstatus = st;
		r->exited = 1;
	}
	if (s.evfd >= 0 && close(s.evfd) == -1)
		phn_errs_add(&r->errs, "codex.events.jsonl: %s", strerror(errno));
	if (s.tmfd >= 0 && close(s.tmfd) == -1)
		phn_errs_add(&r->errs, "codex.events.times: %s", strerror(errno));
	if (s.errfd >= 0 && close(s.errfd) == -1)
		phn_errs_add(&r->errs, "codex.stderr.txt: %s", strerror(errno));
	tail_line(&s);
	free(s.line);
	json_tokener_free(s.tok);
}
