/*
 * atomic.c - crash-safe writes.
 *
 * Atomic replace: write "<dir>/.<name>.XXXXXX" (mkstemp: unique, O_EXCL),
 * fsync it, rename it over the target, fsync the directory.  A reader sees
 * the old file or the new one, never a torn one.
 *
 * Write-once: the same temp file, then link(2) to the target; link fails
 * with EEXIST if anyone got there first, which makes the check and the
 * creation one atomic step (an exists-check followed by rename would not).
 * The temp file is unlinked either way.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

int
phn_mkdirs(const char *path, int mode)
{
	char *p = phn_strdup(path), *s;
	struct stat st;

	for (s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) == -1 && errno != EEXIST) {
			int e = errno;
			free(p);
			errno = e;
			return -1;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	if (stat(path, &st) == -1)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int
phn_fsync_dir(const char *dir)
{
	int fd, r;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	r = fsync(fd);
	/* Some file systems refuse fsync on directories; that is not fatal. */
	if (r == -1 && (errno == EINVAL || errno == EROFS))
		r = 0;
	close(fd);
	return r;
}

static char *
tmpname(const char *path, char **dirp)
{
	char *dir = phn_path_dirname(path);
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	*dirp = dir;
	return phn_asprintf("%s/.%s.XXXXXX", dir, base);
}

static int
writetmp(const char *path, const void *buf, size_t len, char **tmpp,
    char **dirp)
{
	char *tmp = tmpname(path, dirp);
	const char *p = buf;
	int fd, e;

	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		goto fail;
	if (fchmod(fd, 0644) == -1)
		goto failfd;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			goto failfd;
		}
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) == -1)
		goto failfd;
	if (close(fd) == -1) {
		fd = -1;
		goto failfd;
	}
	*tmpp = tmp;
	return 0;
failfd:
	e = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	errno = e;
fail:
	e = errno;
	free(tmp);
	free(*dirp);
	*dirp = NULL;
	errno = e;
	return -1;
}

int
phn_atomic_write(const char *path, const void *buf, size_t len)
{
	char *tmp, *dir;
	int e;

	if (writetmp(path, buf, len, &tmp, &dir) == -1)
		return -1;
	if (rename(tmp, path) == -1) {
		e = errno;
		unlink(tmp);
		free(tmp);
		free(dir);
		errno = e;
		return -1;
	}
	free(tmp);
	e = phn_fsync_dir(dir);
	free(dir);
	return e;
}

int
phn_write_once(const char *path, const void *buf, size_t len)
{
	char *tmp, *dir;
	int r, e;

	if (writetmp(path, buf, len, &tmp, &dir) == -1)
		return -1;
	r = link(tmp, path);
	e = errno;
	unlink(tmp);
	free(tmp);
	if (r == 0)
		r = phn_fsync_dir(dir);
	else
		errno = e;
	free(dir);
	return r;
}

/* Read a whole file; a file larger than max fails with EFBIG. */
int
phn_read_file(const char *path, char **bufp, size_t *lenp, size_t max)
{
	struct stat st;
	char *buf;
	size_t len = 0, cap;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == -1)
		goto fail;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto fail;
	}
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
	if (max && cap > max + 1)
		cap = max + 1;
	buf = phn_malloc(cap + 1);
	for (;;) {
		ssize_t r;
		if (len == cap) {
			if (max && len > max) {
				free(buf);
				errno = EFBIG;
				goto fail;
			}
			cap *= 2;
			buf = phn_realloc(buf, cap + 1);
		}
		r = read(fd, buf + len, cap - len);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			e = errno;
			free(buf);
			errno = e;
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (max && len > max) {
		free(buf);
		errno = EFBIG;
		goto fail;
	}
	close(fd);
	buf[len] = '\0';
	*bufp = buf;
	if (lenp)
		*lenp = len;
	return 0;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

int
phn_copy_file(const char *from, const char *to)
{
	char *buf;
	size_t len;
	int r;

	if (phn_read_file(from, &buf, &len, 0) == -1)
		return -1;
	r = phn_atomic_write(to, buf, len);
	free(buf);
	return r;
}

/* Remove a tree without following symbolic links. */
int
phn_rmtree(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *sub = phn_path_join(path, de->d_name);
		if (phn_rmtree(sub) == -1)
			r = -1;
		free(sub);
	}
	closedir(d);
	if (rmdir(path) == -1)
		r = -1;
	return r;
}

/*
 * Create a new file (O_EXCL) without fsync: for trees that are built
 * under a temporary name and made durable as a whole with phn_syncfs
 * before they are renamed into place.
 */
int
phn_write_new(const char *path, const void *buf, size_t len)
{
	const char *p = buf;
	int fd, e;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) == -1)
		return -1;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			e = errno;
			close(fd);
			unlink(path);
			errno = e;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return close(fd);
}

int
phn_syncfs(const char *path)
{
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	r = syncfs(fd);
	close(fd);
	return r;
}
