/*
 * atomic.c - crash-safe writes.
 *
 * One writer, phn_atomic_write(path, buf, len, flags): write
 * "<dir>/.<name>.XXXXXX" (mkstemp: unique, O_EXCL), then rename it over
 * the target.  A reader sees the old file or the new one, never a torn
 * one.  The flags say what else is wanted:
 *
 *   PHN_DURABLE  fsync the file before and its directory after, so the
 *                new content survives a crash (records); without it the
 *                write is only atomic (derived hints, cursors, indexes
 *                that are rebuilt from the records).
 *   PHN_ONCE     write-once: link(2) the temp file to the target instead
 *                of renaming it; link fails with EEXIST if anyone got
 *                there first, which makes the check and the creation one
 *                atomic step (an exists-check followed by rename would
 *                not).  The temp file is unlinked either way.
 *   PHN_MKDIR    create the target's directory when it is missing.
 *
 * phn_atomic_open/commit/abort are its two halves, for content that is
 * not one buffer (a gzip stream, a file staged now and linked later).
 *
 * Group commit: a process that makes many durable writes on its way to
 * one point that must be durable (phn-claim before it prints an attempt,
 * phn-spawn before it releases dependents) opens a group on the store
 * with phn_durable_group; from then on PHN_DURABLE writes below the store
 * are only atomic, and phn_durable_flush makes all of them durable at
 * once with one syncfs(2) of the store's file system, before the point
 * that needs them.  A group still unflushed at exit is flushed then.
 * The protocol, what survives a crash and a power loss where: phn(5)
 * DURABILITY.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#ifdef __linux__
#include <linux/openat2.h>
#endif

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

/*
 * The store is written through real directories only.  phn_store_confine
 * names the runs root of this process (phn_opts_paths does it); from then
 * on phn_mkdirs, phn_atomic_open, phn_write_new and lock.c's
 * phn_lock_open refuse a path below that root unless every directory
 * between the root and the file is a real directory, not a symbolic
 * link: each is opened with O_DIRECTORY|O_NOFOLLOW from the one before
 * (openat), so a link planted where a batch, job, step, attempts or
 * attempt directory belongs fails with ELOOP and nothing is written
 * through it.  The root itself may be a link (a store moved to a bigger
 * disk).  phn_write_new creates its file (O_NOFOLLOW) in the descriptor
 * so opened; the others go on by path, so a link swapped in between the
 * check and the write is not caught there.  layout.c's phn_store_dir is
 * the same check with a message naming the link, for the programs that
 * create attempts (claim, spawn) to say which one.
 */
static char *confine;

static char *group;		/* the store of an open group commit */
static int groupfd = -1;	/* its descriptor, for syncfs */
static int group_dirty;		/* a write in it is not yet durable */

void
phn_store_confine(const char *runs)
{
	free(confine);
	confine = runs ? phn_strdup(runs) : NULL;
}

/* The part of dir below top ("" for top itself), or NULL if none. */
static const char *
below(const char *top, const char *dir)
{
	size_t n = strlen(top);

	while (n > 1 && top[n - 1] == '/')
		n--;
	if (strncmp(dir, top, n) != 0 || (dir[n] != '/' && dir[n] != '\0'))
		return NULL;
	while (dir[n] == '/')
		n++;
	return dir + n;
}

/* Is path's directory, dir, below the confined root? */
static int
in_store(const char *dir)
{
	return confine != NULL && below(confine, dir) != NULL;
}

/*
 * The directories a process has walked, kept open: it writes many files
 * into the same few (an attempt's, its job's, a batch's indexes), and a
 * walk costs an open(2) per level.  An entry stands while lstat(2) of its
 * path still finds the directory that was walked; an entry's path whose
 * last part has been made a link, or replaced, finds another file and the
 * entry is dropped, so the walk runs again and refuses the link.  (A link
 * planted above an entry that leads back to the very same directory is
 * let through: what is written lands in that real directory.)
 */
#define DIRCACHE	64
static struct dircache {
	char	*top, *dir;
	size_t	 len;		/* of dir */
	int	 fd;
	dev_t	 dev;
	ino_t	 ino;
} dircache[DIRCACHE];
static unsigned dirnext;

/* How many to keep: none where descriptors are scarce (a low ulimit -n). */
static size_t
dircache_cap(void)
{
	static size_t cap = (size_t)-1;
	struct rlimit rl;

	if (cap == (size_t)-1) {
		cap = 0;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= 256)
			cap = rl.rlim_cur / 16 < DIRCACHE ? rl.rlim_cur / 16 :
			    DIRCACHE;
		else if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur == RLIM_INFINITY)
			cap = DIRCACHE;
	}
	return cap;
}

static void
dircache_drop(struct dircache *d)
{
	free(d->top);
	free(d->dir);
	if (d->fd != -1)
		close(d->fd);
	memset(d, 0, sizeof(*d));
	d->fd = -1;
}

/*
 * The cached directory of top that is dir or its nearest ancestor, still
 * valid: its descriptor (the cache's), *restp the part of dir below it;
 * or -1.
 */
static int
dircache_get(const char *top, const char *dir, const char **restp)
{
	struct dircache *best = NULL;
	struct stat st;
	const char *rest = NULL, *r;
	size_t i, len = strlen(dir);

	/* (the cheap tests first: most entries share a long prefix) */
	for (i = 0; i < DIRCACHE; i++) {
		struct dircache *d = &dircache[i];
		if (d->dir == NULL || d->len > len || (best != NULL &&
		    d->len <= best->len) || (dir[d->len] != '/' &&
		    dir[d->len] != '\0') || d->dir[d->len - 1] !=
		    dir[d->len - 1] || strncmp(d->dir, dir, d->len) != 0 ||
		    strcmp(d->top, top) != 0)
			continue;
		for (r = dir + d->len; *r == '/'; r++)
			;
		best = d;
		rest = r;
	}
	if (best == NULL)
		return -1;
	if (lstat(best->dir, &st) == 0 && S_ISDIR(st.st_mode) &&
	    st.st_dev == best->dev && st.st_ino == best->ino) {
		*restp = rest;
		return best->fd;
	}
	dircache_drop(best);
	return dircache_get(top, dir, restp);
}

/* Keep fd, walked to dir below top: returns it, now the cache's, or -1. */
static int
dircache_put(const char *top, const char *dir, int fd)
{
	struct dircache *d;
	struct stat st;
	int e;

	if (dircache_cap() == 0)
		return fd;	/* not kept: dir_walk says it is the caller's */
	d = &dircache[dirnext++ % dircache_cap()];
	if (fstat(fd, &st) == -1) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (d->dir != NULL)
		dircache_drop(d);
	d->top = phn_strdup(top);
	d->dir = phn_strdup(dir);
	d->len = strlen(d->dir);
	while (d->len > 1 && d->dir[d->len - 1] == '/')
		d->dir[--d->len] = '\0';
	d->fd = fd;
	d->dev = st.st_dev;
	d->ino = st.st_ino;
	return fd;
}

/* Are descriptors scarce (a low ulimit -n)?  Then none is kept open
 * between calls: not the walked directories, the group's store, or
 * summary.c's changes file. */
int
phn_fds_scarce(void)
{
	return dircache_cap() == 0;
}

/* Forget every walked directory (a tree was moved or removed). */
void
phn_dir_forget(void)
{
	size_t i;

	for (i = 0; i < DIRCACHE; i++)
		if (dircache[i].dir != NULL)
			dircache_drop(&dircache[i]);
}

/* Has path a "." or ".." part? */
static int
dotted(const char *path)
{
	const char *s = path;

	while (*s != '\0') {
		if (s[0] == '.' && (s[1] == '/' || s[1] == '\0' ||
		    (s[1] == '.' && (s[2] == '/' || s[2] == '\0'))))
			return 1;
		if ((s = strchr(s, '/')) == NULL)
			break;
		while (*s == '/')
			s++;
	}
	return 0;
}

/*
 * The directory rel below the directory fd, in one openat2(2) that
 * refuses every symbolic link on the way (what the walk below does a
 * level at a time); -1 when that fails for any reason, or the system has
 * no openat2: the walk then does it again, and says why.
 */
static int
open_beneath(int fd, const char *rel)
{
#if defined(__linux__) && defined(SYS_openat2) && defined(RESOLVE_NO_SYMLINKS)
	struct open_how how;

	if (*rel == '\0' || dotted(rel))
		return -1;
	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH |
	    RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
	return (int)syscall(SYS_openat2, fd, rel, &how, sizeof(how));
#else
	(void)fd;
	(void)rel;
	errno = ENOSYS;
	return -1;
#endif
}

/*
 * Open directory dir, which lies below top, through real directories
 * only (see above); with mode != 0 the missing ones are made.  Returns
 * a descriptor the caller must not close (the cache's), or -1 with errno
 * (ELOOP: a symbolic link, ENOTDIR: not a directory, EXDEV: dir is not
 * below top) and, when badp is not NULL, *badp the path that failed (to
 * free).
 */
static int
dir_walk(const char *top, const char *dir, int mode, char **badp, int *ownp)
{
	const char *rel = below(top, dir), *from;
	char *cp, *s, *save = NULL, *sub;
	struct stat st;
	int fd, nfd, e, made;

	if (badp)
		*badp = NULL;
	*ownp = 0;
	if (rel == NULL) {
		if (badp)
			*badp = phn_strdup(dir);
		errno = EXDEV;
		return -1;
	}
	if ((fd = dircache_get(top, dir, &from)) != -1) {
		if (*from == '\0')
			return fd;
		if ((nfd = open_beneath(fd, from)) != -1) {
			*ownp = dircache_cap() == 0;
			return dircache_put(top, dir, nfd);
		}
		fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		rel = from;
	} else if ((fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) !=
	    -1 && dircache_cap() > 0) {
		/* the top, kept: the walks below it start there */
		if ((nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) != -1 &&
		    dircache_put(top, top, nfd) == -1)
			errno = 0;
		if ((nfd = open_beneath(fd, rel)) != -1) {
			close(fd);
			return dircache_put(top, dir, nfd);
		}
	}
	if (fd == -1) {
		if (badp)
			*badp = phn_strdup(top);
		return -1;
	}
	cp = phn_strdup(rel);
	made = 0;
	for (s = strtok_r(cp, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
			nfd = -1;
			errno = EXDEV;
		} else if (made && mode != 0 && (mkdirat(fd, s,
		    (mode_t)mode) == 0 || errno == EEXIST)) {
			/* below a directory just made: make, then open */
			nfd = openat(fd, s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			    O_CLOEXEC);
		} else if ((nfd = openat(fd, s, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC)) == -1 && errno == ENOENT &&
		    mode != 0 && (mkdirat(fd, s, (mode_t)mode) == 0 ||
		    errno == EEXIST)) {
			made = 1;
			nfd = openat(fd, s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			    O_CLOEXEC);
		}
		if (nfd == -1) {
			e = errno;
			/* Linux says ENOTDIR for a link with O_DIRECTORY. */
			if (fstatat(fd, s, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				e = ELOOP;
			if (badp)
				*badp = phn_asprintf("%.*s", (int)(rel - dir +
				    (s - cp) + strlen(s)), dir);
			close(fd);
			free(cp);
			errno = e;
			return -1;
		}
		close(fd);
		fd = nfd;
		/* The levels on the way, for the walks to their siblings
		 * (not those just made: a new tree has few siblings). */
		if (!made && dircache_cap() > 0 && save != NULL &&
		    *save != '\0' &&
		    (e = fcntl(fd,
		    F_DUPFD_CLOEXEC, 0)) != -1) {
			sub = phn_asprintf("%.*s", (int)(rel - dir + (s - cp) +
			    strlen(s)), dir);
			if (dircache_put(top, sub, e) == -1)
				errno = 0;
			free(sub);
		}
	}
	free(cp);
	*ownp = dircache_cap() == 0;
	return dircache_put(top, dir, fd);
}

/*
 * Open directory dir, which lies below top, through real directories
 * only (see above); with mode != 0 the missing ones are made.  Returns
 * its descriptor (the caller's to close), or -1 with errno (ELOOP: a
 * symbolic link, ENOTDIR: not a directory, EXDEV: dir is not below top)
 * and, when badp is not NULL, *badp the path that failed (to free).
 */
int
phn_dir_open(const char *top, const char *dir, int mode, char **badp)
{
	int own, fd = dir_walk(top, dir, mode, badp, &own);

	return fd == -1 || own ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

/* phn_dir_open, closed again: 0 or -1. */
static int
dir_check(const char *top, const char *dir, int mode)
{
	int own, fd = dir_walk(top, dir, mode, NULL, &own);

	if (fd != -1 && own)
		close(fd);
	return fd == -1 ? -1 : 0;
}

/* 0 if dir is outside the confined store or reached through real
 * directories only; else -1 with errno (for writers elsewhere: lock.c). */
int
phn_store_confined(const char *dir)
{
	return in_store(dir) ? dir_check(confine, dir, 0) : 0;
}

static int
mkdirs_plain(const char *path, int mode)
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

/* mkdir -p; below the confined root, through real directories only. */
int
phn_mkdirs(const char *path, int mode)
{
	static char *made;	/* the confined root, known to be there */

	if (!in_store(path))
		return mkdirs_plain(path, mode);
	if (made == NULL || strcmp(made, confine) != 0) {
		if (mkdirs_plain(confine, mode) == -1)
			return -1;
		free(made);
		made = phn_strdup(confine);
	}
	return dir_check(confine, path, mode);
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

/* Write all of buf to fd, through short writes and EINTR. */
int
phn_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/*
 * Whether a directory entry's name is one of the store's temp names, which
 * only a writer that died leaves behind: the atomic writer's
 * ".<name>.XXXXXX" (below), and the "-XXXXXX" directories of mkdtemp that
 * phn-ingest (".ingest-XXXXXX") and the schedule index (".sched-XXXXXX",
 * ".sched-old-XXXXXX") build before a rename.  phn-fsck removes them.
 */
int
phn_atomic_is_temp(const char *name)
{
	size_t n = strlen(name), i;

	if (n < 8 || name[0] != '.' || (name[n - 7] != '.' &&
	    name[n - 7] != '-'))
		return 0;
	for (i = n - 6; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9')))
			return 0;
	return 1;
}

/*
 * Open a new temp file beside path ("<dir>/.<name>.XXXXXX", mode 0644)
 * for phn_atomic_commit or phn_atomic_abort; PHN_MKDIR creates the
 * directory when it is missing.  Returns the fd, *tmpp its name.
 */
int
phn_atomic_open(const char *path, int flags, char **tmpp)
{
	char *dir = phn_path_dirname(path), *tmp;
	const char *base = strrchr(path, '/');
	int fd, e;

	base = base ? base + 1 : path;
	tmp = phn_asprintf("%s/.%s.XXXXXX", dir, base);
	if (in_store(dir) && ((flags & PHN_MKDIR) ? phn_mkdirs(dir, 0755) :
	    dir_check(confine, dir, 0)) == -1)
		fd = -1;
	else
		fd = mkostemp(tmp, O_CLOEXEC);
	if (fd == -1 && errno == ENOENT && (flags & PHN_MKDIR) &&
	    phn_mkdirs(dir, 0755) == 0) {
		memcpy(tmp + strlen(tmp) - 6, "XXXXXX", 6);
		fd = mkostemp(tmp, O_CLOEXEC);
	}
	if (fd != -1 && fchmod(fd, 0644) == -1) {
		e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		fd = -1;
	}
	e = errno;
	free(dir);
	if (fd == -1) {
		free(tmp);
		errno = e;
		return -1;
	}
	*tmpp = tmp;
	return fd;
}

/* Give up a temp file from phn_atomic_open; errno is kept. */
void
phn_atomic_abort(int fd, char *tmp)
{
	int e = errno;

	close(fd);
	unlink(tmp);
	free(tmp);
	errno = e;
}

/*
 * Put a temp file from phn_atomic_open in place at path: rename over it,
 * or with PHN_ONCE link (EEXIST if path exists).  PHN_DURABLE fsyncs the
 * file first and the directory after.  fd is closed and tmp freed either
 * way; on failure the temp file is gone and errno says why.
 */
int
phn_atomic_commit(int fd, char *tmp, const char *path, int flags)
{
	char *dir;
	int r = 0, e;

	if ((flags & PHN_DURABLE) && phn_durable_deferred(path))
		flags &= ~PHN_DURABLE;
	if ((flags & PHN_DURABLE) && fsync(fd) == -1)
		r = -1;
	e = errno;
	if (close(fd) == -1 && r == 0) {
		r = -1;
		e = errno;
	}
	if (r == 0 && (r = (flags & PHN_ONCE) ? link(tmp, path) :
	    rename(tmp, path)) == -1)
		e = errno;
	if (r == -1 || (flags & PHN_ONCE))
		unlink(tmp);
	free(tmp);
	if (r == 0 && (flags & PHN_DURABLE)) {
		dir = phn_path_dirname(path);
		r = phn_fsync_dir(dir);
		e = errno;
		free(dir);
	}
	errno = e;
	return r;
}

/*
 * Open a group commit on the store runs (see the top): PHN_DURABLE
 * writes below it wait for phn_durable_flush.
 */
void
phn_durable_group(const char *runs)
{
	static int registered;

	free(group);
	group = phn_strdup(runs);
	if (groupfd != -1)
		close(groupfd);
	groupfd = -1;
	if (!registered && atexit(phn_durable_atexit) == 0)
		registered = 1;
}

/* Does a durable write of path wait for the group's flush?  It is noted. */
int
phn_durable_deferred(const char *path)
{
	if (group == NULL || below(group, path) == NULL)
		return 0;
	group_dirty = 1;
	return 1;
}

/*
 * Make every write of the open group durable: one syncfs(2) of the
 * store's file system, if any write waits for it.  0, or -1 with errno
 * (the writes are then not known to be durable, and stay waiting).
 */
int
phn_durable_flush(void)
{
	int r, e;

	if (group == NULL || !group_dirty)
		return 0;
	if (groupfd == -1 && (groupfd = open(group, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return -1;
	r = syncfs(groupfd);
	e = errno;
	if (phn_fds_scarce()) {
		close(groupfd);
		groupfd = -1;
	}
	errno = e;
	if (r == -1)
		return -1;
	group_dirty = 0;
	return 0;
}

/* At exit: what the group still holds is flushed, as best it can be. */
void
phn_durable_atexit(void)
{
	int e = errno;

	(void)phn_durable_flush();
	errno = e;
}

/* The atomic writer: buf as path's new content (see the flags above). */
int
phn_atomic_write(const char *path, const void *buf, size_t len, int flags)
{
	char *tmp;
	int fd;

	if ((fd = phn_atomic_open(path, flags, &tmp)) == -1)
		return -1;
	if (phn_write_all(fd, buf, len) == -1) {
		phn_atomic_abort(fd, tmp);
		return -1;
	}
	return phn_atomic_commit(fd, tmp, path, flags);
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
phn_copy_file(const char *from, const char *to, int flags)
{
	char *buf;
	size_t len;
	int r;

	if (phn_read_file(from, &buf, &len, 0) == -1)
		return -1;
	r = phn_atomic_write(to, buf, len, flags);
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
	char *dir = phn_path_dirname(path);
	const char *base = strrchr(path, '/');
	int fd, dfd = AT_FDCWD, e, own = 0;

	if (in_store(dir) && (dfd = dir_walk(confine, dir, 0, NULL, &own)) ==
	    -1) {
		free(dir);
		return -1;
	}
	fd = openat(dfd, dfd == AT_FDCWD ? path : base + 1, O_WRONLY | O_CREAT |
	    O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	e = errno;
	if (own)
		close(dfd);
	free(dir);
	errno = e;
	if (fd == -1)
		return -1;
	if (phn_write_all(fd, buf, len) == -1) {
		int e = errno;
		close(fd);
		unlink(path);
		errno = e;
		return -1;
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

static int
copy_fail(struct phn_copy *c, const char *what, const char *path)
{
	int e = errno;

	if (c->failed == NULL) {
		c->what = what;
		c->failed = phn_strdup(path);
	}
	errno = e;
	return -1;
}

static int
copy_leaf(struct phn_copy *c, const char *s, const char *t,
    const struct stat *st)
{
	char lnk[PATH_MAX], buf[65536];
	ssize_t n;
	int in, out, r = 0;

	if (S_ISLNK(st->st_mode)) {
		if ((n = readlink(s, lnk, sizeof(lnk) - 1)) == -1)
			return copy_fail(c, "read the symlink", s);
		lnk[n] = '\0';
		if (symlink(lnk, t) == -1 && errno != EEXIST)
			return copy_fail(c, "create the symlink", t);
		return 0;
	}
	if (!S_ISREG(st->st_mode))
		return 0;	/* FIFOs, devices, sockets: never */
	if ((in = open(s, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return copy_fail(c, "read", s);
	if ((out = open(t, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    st->st_mode & 07777)) == -1) {
		close(in);
		return copy_fail(c, "create", t);
	}
	while (r == 0 && (n = read(in, buf, sizeof(buf))) != 0)
		if (n == -1 ? errno != EINTR : phn_write_all(out, buf,
		    (size_t)n) == -1)
			r = copy_fail(c, "write", t);
	close(in);
	if (close(out) == -1 && r == 0)
		r = copy_fail(c, "write", t);
	return r;
}

static int
copy_dir(struct phn_copy *c, const char *from, const char *to, mode_t mode,
    int top)
{
	struct dirent *de;
	struct stat st;
	char *s, *t;
	size_t i;
	DIR *d;
	int r = 0, skip;

	if (mkdir(to, 0700) == -1 && errno != EEXIST)
		return copy_fail(c, "create", to);
	if ((d = opendir(from)) == NULL)
		return copy_fail(c, "open", from);
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		for (i = 0, skip = 0; top && c->skip_top && c->skip_top[i]; i++)
			skip |= strcmp(de->d_name, c->skip_top[i]) == 0;
		if (skip || (c->skip != NULL && c->skip(c->ctx, de->d_name)))
			continue;
		s = phn_path_join(from, de->d_name);
		t = phn_path_join(to, de->d_name);
		if (lstat(s, &st) == -1)
			r = copy_fail(c, "stat", s);
		else if (!S_ISDIR(st.st_mode))
			r = copy_leaf(c, s, t, &st);
		else if (!c->skip_dir || st.st_dev != c->dir_dev ||
		    st.st_ino != c->dir_ino)
			r = copy_dir(c, s, t, st.st_mode, 0);
		free(s);
		free(t);
	}
	closedir(d);
	if (r == 0 && chmod(to, mode & 07777) == -1)
		r = copy_fail(c, "chmod", to);
	return r;
}

/*
 * Copy the tree from into to (created, or merged into when it exists):
 * directories and regular files with their modes, symlinks as symlinks;
 * FIFOs, devices and sockets are left out, and so is what c says to
 * leave out.  0, or -1 with errno and c->what and c->failed (the path;
 * the caller frees it) saying what failed.
 */
int
phn_copy_tree(const char *from, const char *to, struct phn_copy *c)
{
	struct stat st;

	c->failed = NULL;
	c->what = NULL;
	if (lstat(from, &st) == -1)
		return copy_fail(c, "stat", from);
	return copy_dir(c, from, to, st.st_mode, 1);
}
