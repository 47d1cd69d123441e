/*
 * workspace.c - where a job's agent works.
 *
 * shared: the job's working directory itself.  isolated: one git worktree
 * per (batch, job) at runs/<batch>/<job>/_workspace, detached at the
 * source repository's HEAD, created once under <job>/_workspace.lock and
 * reused by every later step and attempt of the job; the agent works in
 * the worktree's copy of the source directory.  The worktree holds the
 * committed tree only: uncommitted changes in the source are not there.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

/* Run git; its trimmed stdout in *out (may be NULL).  0 if it exited 0. */
static int
git(const char *dir, char *const args[], char **out, struct phn_errs *e,
    const char *what)
{
	struct phn_buf ob = { 0 }, eb = { 0 };
	char *o, *err;
	int st;
	size_t n;

	st = phn_git(dir, args, &ob, &eb);
	o = ob.s;
	err = eb.s;
	if (st != 0) {
		n = err ? strlen(err) : 0;
		while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
		if (e != NULL)
			phn_errs_add(e, "%s: %s", what, st == -1 ?
			    strerror(errno) : err && *err ? err :
			    "git failed");
		free(o);
		free(err);
		return -1;
	}
	free(err);
	if (out != NULL) {
		n = strlen(o);
		while (n > 0 && (o[n - 1] == '\n' || o[n - 1] == '\r'))
			o[--n] = '\0';
		*out = o;
	} else
		free(o);
	return 0;
}

static int
is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * The isolated workspace of a job whose source directory is src: returns
 * the directory the agent works in (inside the worktree), or NULL with
 * the reason in e.
 */
char *
phn_workspace_isolated(const struct phn_paths *p, const char *batch,
    const char *job, const char *src, struct phn_errs *e)
{
	char *ws = phn_job_path(p, batch, job, "_workspace");
	char *lp = phn_asprintf("%s.lock", ws), *top = NULL, *head = NULL;
	char *dotgit = phn_path_join(ws, ".git"), *rel, *res = NULL;
	char real[PATH_MAX];
	int fd;

	if (realpath(src, real) == NULL) {
		phn_errs_add(e, "isolated workspace: %s: %s", src,
		    strerror(errno));
		goto out;
	}
	if (git(real, (char *[]){ "rev-parse", "--show-toplevel", NULL },
	    &top, NULL, NULL) == -1) {
		phn_errs_add(e, "isolated workspace: %s is not inside a git "
		    "repository; workspace_policy.mode \"isolated\" needs one "
		    "with at least one commit (or use mode \"shared\")", real);
		goto out;
	}
	if ((fd = phn_lock_wait(lp, 600)) == -1) {
		phn_errs_add(e, "isolated workspace: unable to lock %s: %s", lp,
		    strerror(errno));
		goto out;
	}
	if (access(dotgit, F_OK) == -1) {
		/* A crash may have left an empty directory: git wants none. */
		if (is_dir(ws) && rmdir(ws) == -1) {
			phn_errs_add(e, "isolated workspace: %s exists and is not "
			    "a git worktree; remove it", ws);
			phn_lock_close(fd);
			goto out;
		}
		if (git(top, (char *[]){ "rev-parse", "--verify", "-q",
		    "HEAD^{commit}", NULL }, &head, NULL, NULL) == -1) {
			phn_errs_add(e, "isolated workspace: the git repository "
			    "%s has no commit yet; commit something first", top);
			phn_lock_close(fd);
			goto out;
		}
		if (git(top, (char *[]){ "worktree", "add", "--detach", ws,
		    head, NULL }, NULL, e, "isolated workspace: git worktree "
		    "add") == -1) {
			phn_lock_close(fd);
			goto out;
		}
	}
	phn_lock_close(fd);
	rel = phn_path_rel(top, real);
	res = strcmp(rel, ".") == 0 ? phn_strdup(ws) : phn_path_join(ws, rel);
	free(rel);
	if (!is_dir(res)) {
		phn_errs_add(e, "isolated workspace: %s does not exist in the "
		    "worktree (is %s committed?)", res, real);
		free(res);
		res = NULL;
	}
out:
	free(ws);
	free(lp);
	free(top);
	free(head);
	free(dotgit);
	return res;
}
