/*
 * signals.c - phn-spawn's signals: SIGTERM, SIGINT and SIGHUP cancel the
 * attempt (the first one is kept), SIGCHLD wakes the supervision; each
 * is written to a self-pipe that the supervision polls (supervise.c).
 * Below the rest of the run engine: spawn.c, supervise.c and report.c
 * all ask it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

static int sigfd[2] = { -1, -1 };
static volatile sig_atomic_t sig_cancel;

static void
on_signal(int s)
{
	int e = errno;
	ssize_t n;

	if (s != SIGCHLD && sig_cancel == 0)
		sig_cancel = s;
	n = write(sigfd[1], "", 1);
	(void)n;
	errno = e;
}

/*
 * SIGTERM, SIGINT and SIGHUP mean cancel; phn-spawn never dies from them
 * (xargs stops a whole fan-out when one child dies from a signal).
 * Also makes sure fds 0-2 are open, so no pipe lands there.
 */
int
phn_signals_init(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	struct sigaction sa;
	size_t i;
	int fd;

	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd < 3)
		;
	if (fd > 2)
		close(fd);
	if (pipe2(sigfd, O_CLOEXEC | O_NONBLOCK) == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &sa, NULL) == -1)
			return -1;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int
phn_signal_canceled(void)
{
	return sig_cancel;
}

/* The read end of the self-pipe: readable after any of the signals. */
int
phn_signal_fd(void)
{
	return sigfd[0];
}
