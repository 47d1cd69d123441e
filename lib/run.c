/*
 * run.c - run a toolkit program and capture what it says.
 *
 * For façades (phn-api) that compose the programs rather than duplicate
 * them: fork+exec argv with the given bytes on stdin, collect stdout and
 * stderr with poll() (so neither side can deadlock on a full pipe), and
 * return the exit status.  Programs are looked up beside the running
 * binary first, then on PATH.
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

/*
 * Returns the exit status (128+n for a signal), or -1 if the program
 * could not be run at all (errno says why).  *out and *err are always
 * set to NUL-terminated buffers the caller frees.
 */
int
phn_run_capture(char *const argv[], const char *in, size_t inlen, char **out,
    size_t *outlen, char **err)
{
	struct phn_buf so = { NULL, 0, 0 }, se = { NULL, 0, 0 };
	int pin[2], pout[2], perr[2], st, e;
	struct pollfd pf[3];
	size_t off = 0;
	pid_t pid;
	char buf[8192];

	phn_buf_put(&so, "", 0);
	phn_buf_put(&se, "", 0);
	*out = so.s;
	*err = se.s;
	if (pipe2(pin, O_CLOEXEC) == -1)
		return -1;
	if (pipe2(pout, O_CLOEXEC) == -1 || pipe2(perr, O_CLOEXEC) == -1) {
		e = errno;
		close(pin[0]);
		close(pin[1]);
		errno = e;
		return -1;
	}
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		_exit(errno == ENOENT ? 127 : 126);
	}
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	if (inlen == 0) {
		close(pin[1]);
		pin[1] = -1;
	}
	for (;;) {
		pf[0].fd = pin[1];
		pf[0].events = POLLOUT;
		pf[1].fd = pout[0];
		pf[1].events = POLLIN;
		pf[2].fd = perr[0];
		pf[2].events = POLLIN;
		if (pf[0].fd < 0 && pf[1].fd < 0 && pf[2].fd < 0)
			break;
		if (poll(pf, 3, -1) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[0].fd >= 0 && pf[0].revents) {
			ssize_t w = write(pin[1], in + off, inlen - off);
			if (w > 0)
				off += (size_t)w;
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				off = inlen;
			if (off == inlen) {
				close(pin[1]);
				pin[1] = -1;
			}
		}
		for (int i = 1; i <= 2; i++) {
			struct phn_buf *k = i == 1 ? &so : &se;
			int *fd = i == 1 ? &pout[0] : &perr[0];
			ssize_t r;

			if (*fd < 0 || pf[i].revents == 0)
				continue;
			r = read(*fd, buf, sizeof(buf));
			if (r > 0)
				phn_buf_put(k, buf, (size_t)r);
			else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
				close(*fd);
				*fd = -1;
			}
		}
	}
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return -1;
	*out = so.s;
	*err = se.s;
	if (outlen)
		*outlen = so.len;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}
