/*
 * lock.c - the lock protocol.
 *
 * Every lock is flock(2) LOCK_EX on a sidecar file that is never renamed
 * or deleted ("x.lock" beside x, or "dir/.lock"): a lock on a file that
 * gets replaced by rename would protect nothing.  The lock lives as long
 * as the open file description, so the kernel drops it when the holder
 * exits or crashes: no pid files, no staleness guesses.  Each acquisition
 * opens the file anew, so two acquisitions in one process exclude each
 * other too.  Lock files are opened for writing, because on Linux NFS
 * flock is carried by fcntl locks, which need a writable descriptor.
 *
 * Liveness of a holder is tested with LOCK_SH|LOCK_NB: EWOULDBLOCK means
 * someone holds it.
 */
#include <sys/file.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "phn.h"

/* Open and lock; how is LOCK_EX or LOCK_EX|LOCK_NB.  Returns the fd. */
int
phn_lock_open(const char *path, int how)
{
	char *dir = phn_path_dirname(path);
	int fd, e;

	/* Never through a symbolic link in the store (atomic.c). */
	e = phn_store_confined(dir);
	free(dir);
	if (e == -1 || (fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0644)) == -1)
		return -1;
	while (flock(fd, how) == -1) {
		if (errno == EINTR)
			continue;
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * Lock with a timeout in seconds (< 0: forever); ETIMEDOUT when it runs
 * out.  Polls with a short sleep rather than using alarm(), so callers'
 * signal handling is left alone.
 */
int
phn_lock_wait(const char *path, double timeout)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	double end = phn_now() + timeout;
	int fd;

	if (timeout < 0)
		return phn_lock_open(path, LOCK_EX);
	for (;;) {
		if ((fd = phn_lock_open(path, LOCK_EX | LOCK_NB)) != -1)
			return fd;
		if (errno != EWOULDBLOCK)
			return -1;
		if (phn_now() >= end) {
			errno = ETIMEDOUT;
			return -1;
		}
		nanosleep(&ts, NULL);
		if (ts.tv_nsec < 100 * 1000 * 1000)
			ts.tv_nsec *= 2;
	}
}

/* 1 if someone holds the lock, 0 if not (or no lock file), -1 on error. */
int
phn_lock_held(const char *path)
{
	int fd;

	if ((fd = open(path, O_RDWR | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	if (flock(fd, LOCK_SH | LOCK_NB) == -1) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return 1;
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

void
phn_lock_close(int fd)
{
	if (fd >= 0)
		close(fd);
}
