/*
 * proc.c - run a program and capture what it says.
 *
 * phn_proc_run() is the one child-process runner: fork+exec argv with
 * given bytes (or /dev/null) on stdin, in a given directory with
 * additions to the environment, collect stdout and stderr with poll()
 * (so neither side can deadlock on a full pipe), kill it after a
 * timeout, and return its exit status.  phn-api runs the toolkit's
 * programs through it (found beside the running binary first, then on
 * PATH), phn-spawn runs git and the codex probe.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

/* The path of a toolkit program: beside /proc/self/exe, else its name. */
char *
phn_tool_path(const char *name)
{
	char exe[PATH_MAX], *d, *f;
	ssize_t n;

	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
		exe[n] = '\0';
		d = phn_path_dirname(exe);
		f = phn_path_join(d, name);
		free(d);
		if (access(f, X_OK) == 0)
			return f;
		free(f);
	}
	return phn_strdup(name);
}

static void
closep(int p[2])
{
	if (p[0] != -1)
		close(p[0]);
	if (p[1] != -1)
		close(p[1]);
	p[0] = p[1] = -1;
}

/* from as fd to in the child (from may already be to: then keep it open). */
static void
move(int from, int to)
{
	if (from == to)
		fcntl(to, F_SETFD, 0);
	else
		dup2(from, to);
}

static void __attribute__((noreturn))
child(const struct phn_proc *o, int in, int out, int err)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	char *const *e;

	signal(SIGPIPE, SIG_DFL);
	if (o->flags & PHN_PROC_GROUP)
		setsid();
	move(in != -1 ? in : null, 0);
	move(out != -1 ? out : null, 1);
	move(err != -1 ? err : null, 2);
	if (o->cwd != NULL && chdir(o->cwd) == -1)
		_exit(126);
	for (e = o->env; e && *e; e++)
		putenv(*e);
	execvp(o->argv[0], o->argv);
	_exit(errno == ENOENT ? 127 : 126);
}

/* Read what is there into b (up to max bytes kept); close at EOF. */
static void
slurp(int *fd, struct phn_buf *b, size_t max)
{
	char tmp[8192];
	ssize_t n = read(*fd, tmp, sizeof(tmp));

	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(*fd);
		*fd = -1;
		return;
	}
	if (max == 0 || b->len + (size_t)n <= max)
		phn_buf_put(b, tmp, (size_t)n);
}

/*
 * Run o->argv.  out and err (each may be NULL: /dev/null) get what it
 * wrote, always NUL-terminated, for the caller to free.  Returns its exit
 * status (128+N for signal N; a timeout kills it with SIGKILL), or -1
 * with errno when it could not be run at all.
 */
int
phn_proc_run(const struct phn_proc *o, struct phn_buf *out,
    struct phn_buf *err)
{
	struct phn_buf *bufs[3] = { NULL, out, err };
	int p[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } }, fds[3], st, e, i;
	double end = o->timeout > 0 ? phn_mono() + o->timeout : 0;
	pid_t pid, who;
	size_t off = 0;

	for (i = 1; i < 3; i++)
		if (bufs[i] != NULL)
			phn_buf_put(bufs[i], "", 0);
	for (i = 0; i < 3; i++) {
		if (i == 0 ? o->inlen == 0 : bufs[i] == NULL)
			continue;
		if (pipe2(p[i], O_CLOEXEC) == -1)
			goto fail;
	}
	if ((pid = fork()) == -1)
		goto fail;
	if (pid == 0)
		child(o, p[0][0], p[1][1], p[2][1]);
	if (o->started != NULL)
		o->started(o->ctx, pid);
	who = o->flags & PHN_PROC_GROUP ? -pid : pid;
	fds[0] = p[0][1];
	fds[1] = p[1][0];
	fds[2] = p[2][0];
	for (i = 0; i < 3; i++)
		if (p[i][0] != -1)
			close(p[i][i == 0 ? 0 : 1]);
	if (fds[0] != -1)
		fcntl(fds[0], F_SETFL, O_NONBLOCK);
	while (fds[0] != -1 || fds[1] != -1 || fds[2] != -1) {
		struct pollfd pf[3];
		int ms = -1;

		if (end > 0) {
			double left = end - phn_mono();
			if (left <= 0) {
				kill(who, SIGKILL);
				break;
			}
			ms = (int)(left * 1000) + 1;
		}
		for (i = 0; i < 3; i++) {
			pf[i].fd = fds[i];
			pf[i].events = i == 0 ? POLLOUT : POLLIN;
			pf[i].revents = 0;
		}
		if (poll(pf, 3, ms) == -1) {
			if (errno == EINTR)
				continue;
			kill(who, SIGKILL);
			break;
		}
		if (fds[0] != -1 && pf[0].revents) {
			ssize_t w = write(fds[0], o->in + off, o->inlen - off);
			if (w > 0)
				off += (size_t)w;
			else if (errno != EAGAIN && errno != EINTR)
				off = o->inlen;	/* it does not read: stop */
			if (off == o->inlen) {
				close(fds[0]);
				fds[0] = -1;
			}
		}
		for (i = 1; i < 3; i++)
			if (fds[i] != -1 && pf[i].revents)
				slurp(&fds[i], bufs[i], o->max);
	}
	for (i = 0; i < 3; i++)
		if (fds[i] != -1)
			close(fds[i]);
	if (o->flags & PHN_PROC_GROUP)
		kill(who, SIGKILL);	/* what it left behind */
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return -1;
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
fail:
	e = errno;
	for (i = 0; i < 3; i++)
		closep(p[i]);
	errno = e;
	return -1;
}

/*
 * git ARGS in dir, as phn-spawn runs it: no terminal prompts, its own
 * process group, killed after 300 seconds, at most 64 MiB kept of each
 * stream.
 */
int
phn_git(const char *dir, char *const args[], struct phn_buf *out,
    struct phn_buf *err)
{
	static char *const env[] = { "GIT_TERMINAL_PROMPT=0", NULL };
	char *argv[16];
	struct phn_proc o = { 0 };
	int i = 0;

	argv[i++] = "git";
	argv[i++] = "-C";
	argv[i++] = (char *)dir;
	while (*args && i < 15)
		argv[i++] = *args++;
	argv[i] = NULL;
	o.argv = argv;
	o.env = env;
	o.timeout = 300;
	o.max = 64 << 20;
	o.flags = PHN_PROC_GROUP;
	return phn_proc_run(&o, out, err);
}
