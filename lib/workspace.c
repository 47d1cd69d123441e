/*
 * workspace.c - where a job's agent works.
 *
 * shared: the job's working directory itself.  isolated: one git worktree
 * per (batch, job) at runs/<batch>/<job>/_workspace, detached at the
 * source repository's HEAD, created once under <job>/_workspace.lock and
 * reused by every later step and attempt of the job; the agent works in
 * the worktree's copy of the source directory.  The worktree holds the
 * committed tree only: uncommitted changes in the source are not there.
 * A source outside any git repository gets, when its policy has
 * allow_isolated_copy_fallback true, a copy of the source directory at
 * _workspace instead (without copy_exclude_names and the usual caches,
 * at any depth; symlinks stay symlinks), made once under the same lock
 * and renamed into place whole.
 *
 * Also the submit-time checks of isolated jobs (phn_preflight, run by
 * phn-ingest): the directory exists, is in a git repository with a
 * commit or may be copied, and the repository is within the size guards
 * limits.max_isolated_git_root_du_bytes and _tracked_bytes.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
 * The value of key in a job's workspace policy: the job's
 * workspace_policy key by key over the batch's effective one (bws).
 */
struct json_object *
phn_workspace_key(struct json_object *job, struct json_object *bws,
    const char *key)
{
	struct json_object *jw = phn_json_get(job, "workspace_policy"), *v;

	if (json_object_is_type(jw, json_type_object) &&
	    json_object_object_get_ex(jw, key, &v))
		return v;
	return phn_json_get(bws, key);
}

static int
copy_allowed(struct json_object *job, struct json_object *bws)
{
	struct json_object *v = phn_workspace_key(job, bws,
	    "allow_isolated_copy_fallback");

	return json_object_is_type(v, json_type_boolean) &&
	    json_object_get_boolean(v);
}

static void
trim(char *s)
{
	size_t n = s ? strlen(s) : 0;

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' ||
	    s[n - 1] == ' '))
		s[--n] = '\0';
}

/*
 * The top of the git repository holding the directory real: 1 found
 * (*top), 0 it is in none, -1 git failed otherwise (why in e, after
 * what).
 */
static int
git_top(const char *real, char **top, struct phn_errs *e, const char *what)
{
	struct phn_buf ob = { 0 }, eb = { 0 };
	int st, r = 1;

	st = phn_git(real, (char *[]){ "rev-parse", "--show-toplevel", NULL },
	    &ob, &eb);
	trim(ob.s);
	trim(eb.s);
	if (st == 0 && ob.s != NULL && *ob.s != '\0') {
		*top = ob.s;
		free(eb.s);
		return 1;
	}
	if (st > 0 && eb.s != NULL && strstr(eb.s, "not a git repository"))
		r = 0;
	else
		r = phn_errs_fail(e, st == -1, "%s: git rev-parse "
		    "--show-toplevel in %s: %s", what, real, st == -1 ?
		    strerror(errno) : st == 127 ? "git not found" :
		    eb.s && *eb.s ? eb.s : "git failed");
	free(ob.s);
	free(eb.s);
	return r;
}

static void
no_repo(struct phn_errs *e, const char *what, const char *real)
{
	phn_errs_add(e, "%s: %s is not inside a git repository; "
	    "workspace_policy.mode \"isolated\" needs one with at least one "
	    "commit, or workspace_policy.allow_isolated_copy_fallback true "
	    "for a copy (or use mode \"shared\")", what, real);
}

static int
has_commit(const char *top)
{
	return git(top, (char *[]){ "rev-parse", "--verify", "-q",
	    "HEAD^{commit}", NULL }, NULL, NULL, NULL) == 0;
}

/* What a copied workspace leaves out, at any depth, besides the policy's. */
static const char *const cache_names[] = { ".DS_Store", "__pycache__",
    ".pytest_cache", ".mypy_cache", ".ruff_cache", ".ipynb_checkpoints",
    ".venv", ".direnv", "node_modules", NULL };

/* A name copy_exclude_names (ctx) or the cache names leave out. */
static int
excluded(void *ctx, const char *name)
{
	struct json_object *ex = ctx;
	size_t i, n;

	for (i = 0; cache_names[i]; i++)
		if (strcmp(name, cache_names[i]) == 0)
			return 1;
	n = json_object_is_type(ex, json_type_array) ?
	    json_object_array_length(ex) : 0;
	for (i = 0; i < n; i++) {
		const char *x = json_object_get_string(
		    json_object_array_get_idx(ex, i));
		if (x != NULL && strcmp(name, x) == 0)
			return 1;
	}
	return 0;
}

/*
 * The copy fallback: real copied to ws through ws.tmp (any left by a
 * crash is removed first), made durable, then renamed into place.
 */
static int
copy_workspace(const struct phn_paths *p, const char *real, const char *ws,
    struct json_object *ex, struct phn_errs *e)
{
	char *tmp = phn_asprintf("%s.tmp", ws), *dir = phn_path_dirname(ws);
	/* the store itself is never copied into a job's workspace */
	struct phn_copy c = { .skip = excluded, .ctx = ex, .skip_dir = 1 };
	struct stat st;
	int r = -1;

	if (stat(p->runs, &st) == -1)
		phn_errs_fail(e, 1, "isolated workspace: unable to stat %s:",
		    p->runs);
	else if ((c.dir_dev = st.st_dev, c.dir_ino = st.st_ino,
	    access(tmp, F_OK) == 0) && phn_rmtree(tmp) == -1)
		phn_errs_fail(e, 1, "isolated workspace: unable to remove %s:",
		    tmp);
	else if (phn_copy_tree(real, tmp, &c) == -1) {
		phn_errs_fail(e, 1, "isolated workspace: unable to %s %s:",
		    c.what, c.failed);
		free(c.failed);
	} else {
		if (phn_syncfs(tmp) == -1 || rename(tmp, ws) == -1 ||
		    phn_fsync_dir(dir) == -1)
			phn_errs_fail(e, 1, "isolated workspace: unable to put "
			    "the copy %s in place:", ws);
		else
			r = 0;
	}
	if (r == -1)
		phn_rmtree(tmp);
	free(tmp);
	free(dir);
	return r;
}

/* Whether p is a directory with something in it (dotfiles count). */
static int
nonempty_dir(const char *p)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	if ((d = opendir(p)) == NULL)
		return 0;
	while (n == 0 && (de = readdir(d)) != NULL)
		n = strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

/*
 * The isolated workspace of a job whose source directory is src (job:
 * the job in batch_meta.json, bws: the batch's effective
 * workspace_policy): returns the directory the agent works in (inside
 * the worktree, or the copy), or NULL with the reason in e.  In order:
 * a worktree there is reused, then a copy there, else a worktree is
 * made if src is in a git repository, else a copy if the policy allows.
 */
char *
phn_workspace_isolated(const struct phn_paths *p, const char *batch,
    const char *job, const char *src, struct json_object *jobobj,
    struct json_object *bws, struct phn_errs *e)
{
	char *ws = phn_job_path(p, batch, job, "_workspace");
	char *lp = phn_asprintf("%s.lock", ws), *top = NULL, *head = NULL;
	char *dotgit = phn_path_join(ws, ".git"), *rel, *res = NULL;
	char real[PATH_MAX];
	int fd, g;

	if (realpath(src, real) == NULL) {
		phn_errs_add(e, "isolated workspace: %s: %s", src,
		    strerror(errno));
		goto out;
	}
	if ((g = git_top(real, &top, e, "isolated workspace")) == -1)
		goto out;
	if ((fd = phn_lock_wait(lp, 600)) == -1) {
		phn_errs_add(e, "isolated workspace: unable to lock %s: %s", lp,
		    strerror(errno));
		goto out;
	}
	if (access(dotgit, F_OK) == -1 && nonempty_dir(ws)) {
		/* The copy made earlier. */
		phn_lock_close(fd);
		res = phn_strdup(ws);
		goto out;
	}
	if (g == 0) {
		if (!copy_allowed(jobobj, bws))
			no_repo(e, "isolated workspace", real);
		else {
			/* An empty one (from a crash) is replaced. */
			if (is_dir(ws))
				rmdir(ws);
			if (copy_workspace(p, real, ws, phn_workspace_key(
			    jobobj, bws, "copy_exclude_names"), e) == 0)
				res = phn_strdup(ws);
		}
		phn_lock_close(fd);
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

/* Disk usage of the tree at path as du -s counts it, less the store. */
static long long
du_bytes(const char *path, const struct stat *runs)
{
	struct dirent *de;
	struct stat st;
	long long n;
	char *s;
	DIR *d;

	if (lstat(path, &st) == -1)
		return 0;
	n = (long long)st.st_blocks * 512;
	if (S_ISDIR(st.st_mode) && st.st_dev == runs->st_dev &&
	    st.st_ino == runs->st_ino)
		return 0;
	if (!S_ISDIR(st.st_mode) || (d = opendir(path)) == NULL)
		return n;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		s = phn_path_join(path, de->d_name);
		n += du_bytes(s, runs);
		free(s);
	}
	closedir(d);
	return n;
}

/* The sum of the sizes of the files git tracks in top; -1 on error. */
static long long
tracked_bytes(const char *top, struct phn_errs *e)
{
	struct phn_buf ob = { 0 };
	struct stat st;
	long long n = 0;
	char *s, *f;

	if (phn_git(top, (char *[]){ "ls-files", "-z", NULL }, &ob,
	    NULL) != 0) {
		free(ob.s);
		return phn_errs_fail(e, 1, "git ls-files in %s failed", top);
	}
	for (s = ob.s; s != NULL && s < ob.s + ob.len; s += strlen(s) + 1) {
		f = phn_path_join(top, s);
		if (lstat(f, &st) == 0)
			n += (long long)st.st_size;
		free(f);
	}
	free(ob.s);
	return n;
}

/* One git root's checks, for the first isolated job using it (path jp). */
static void
preflight_root(const struct phn_paths *p, const struct phn_config *cfg,
    const char *top, const char *jp, struct phn_errs *e)
{
	long long dmax = phn_config_int(cfg,
	    "limits.max_isolated_git_root_du_bytes", -1);
	long long tmax = phn_config_int(cfg,
	    "limits.max_isolated_git_root_tracked_bytes", -1);
	struct stat runs;
	long long n;

	if (!has_commit(top)) {
		phn_errs_add(e, "%s: the git repository %s has no commit yet; "
		    "an isolated job's worktree is made from its HEAD: commit "
		    "something first", jp, top);
		return;
	}
	if (dmax >= 0) {
		if (stat(p->runs, &runs) == -1)
			memset(&runs, 0, sizeof(runs));
		if ((n = du_bytes(top, &runs)) > dmax)
			phn_errs_add(e, "%s: the git repository %s takes %lld "
			    "bytes on disk, more than limits."
			    "max_isolated_git_root_du_bytes (%lld); each "
			    "isolated job gets a worktree of it", jp, top, n,
			    dmax);
	}
	if (tmax >= 0 && (n = tracked_bytes(top, e)) > tmax)
		phn_errs_add(e, "%s: the git repository %s tracks %lld bytes, "
		    "more than limits.max_isolated_git_root_tracked_bytes "
		    "(%lld); each isolated job gets a worktree of it", jp, top,
		    n, tmax);
}

/* One isolated job's checks: jp its path, roots the git roots seen. */
static void
preflight_job(const struct phn_paths *p, const struct phn_config *cfg,
    struct json_object *job, struct json_object *bws, const char *jp,
    struct json_object *roots, struct phn_errs *e)
{
	const char *wd = phn_jstr(job, "job_workdir"), *why;
	char real[PATH_MAX], *top = NULL;
	struct stat st;

	why = stat(wd, &st) == -1 ? strerror(errno) :
	    !S_ISDIR(st.st_mode) ? "not a directory" : NULL;
	if (why != NULL) {
		phn_errs_add(e, "%s: %s: %s; an isolated job's directory must "
		    "exist when the table is submitted", jp, wd, why);
		return;
	}
	if (realpath(wd, real) == NULL) {
		phn_errs_fail(e, 1, "%s: unable to resolve %s:", jp, wd);
		return;
	}
	switch (git_top(real, &top, e, jp)) {
	case 0:
		if (!copy_allowed(job, bws))
			no_repo(e, jp, real);
		break;
	case 1:
		/* Each repository is checked once, for its first job. */
		if (!json_object_object_get_ex(roots, top, NULL)) {
			json_object_object_add(roots, top, NULL);
			preflight_root(p, cfg, top, jp, e);
		}
		break;
	}
	free(top);
}

/*
 * The submit-time checks of a normalized table's isolated jobs (meta,
 * its effective_defaults included): each one's working directory must
 * exist and be in a git repository with a commit, within the size
 * guards of the harness config, or be allowed a copy.  Every problem
 * goes to e as "jobs[N].working_directory: message" (temp when a system
 * call failed).  Returns 0, or -1.
 */
int
phn_preflight(const struct phn_paths *p, const struct phn_config *cfg,
    struct json_object *meta, struct phn_errs *e)
{
	struct json_object *jobs = phn_json_get(meta, "jobs"), *job, *mode;
	struct json_object *bws = phn_json_path_get(meta,
	    "effective_defaults.workspace_policy"), *roots;
	size_t i, n, before = e->n;
	char *jp;

	n = json_object_is_type(jobs, json_type_array) ?
	    json_object_array_length(jobs) : 0;
	roots = json_object_new_object();
	for (i = 0; i < n; i++) {
		job = json_object_array_get_idx(jobs, i);
		mode = phn_workspace_key(job, bws, "mode");
		if (!json_object_is_type(mode, json_type_string) ||
		    strcmp(json_object_get_string(mode), "isolated") != 0 ||
		    phn_jstr(job, "job_workdir") == NULL)
			continue;
		jp = phn_asprintf("jobs[%zu].working_directory", i);
		preflight_job(p, cfg, job, bws, jp, roots, e);
		free(jp);
	}
	json_object_put(roots);
	return e->n > before ? -1 : 0;
}
