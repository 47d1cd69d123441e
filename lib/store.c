/*
 * store.c - the runs store: batches, attempts, the state.json guard, the
 * current.json job index, and harness-fault recovery (lease expiry and
 * orphans), shared by every command.  The ready index is sched.c's.
 *
 * Attempt directories are the source of truth.  current.json, _ready/ and
 * the scoreboards are derived and may be rebuilt from them at any time.
 *
 * Locks (see lock.c): <attempt>/state.lock guards the read-check-write of
 * state.json; <job>/current.lock guards current.json; <attempt>/spawn.lock
 * is held by phn-spawn for its whole life ("held" means "alive" on this
 * host).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

/* An attempt's statuses (state.json "status"), in PHN_AST_* order. */
const char *const phn_ast_name[] = { "queued", "running", "succeeded",
    "failed", "needs_attention", "canceled", NULL };

/* The PHN_AST_* of a status, or -1 if it is none. */
int
phn_ast_of(const char *s)
{
	int i;

	for (i = 0; s != NULL && phn_ast_name[i] != NULL; i++)
		if (strcmp(s, phn_ast_name[i]) == 0)
			return i;
	return -1;
}

static int
status_valid(const char *s)
{
	return phn_ast_of(s) >= 0;
}

int
phn_status_terminal(const char *s)
{
	return phn_ast_of(s) >= PHN_AST_SUCCEEDED;
}

/* Harness faults: the spawner died or the claim was never picked up. */
int
phn_fault_kind(const char *kind)
{
	return kind != NULL && (strcmp(kind, "orphaned") == 0 ||
	    strcmp(kind, "claim_expired") == 0);
}

/*
 * Split an attempt directory (absolute, relative to the cwd, or relative
 * to the runs root) into its ids: RUNS/B/J/steps/S/attempts/NAME, where
 * NAME is <stamp>_<run_id> (or just the run id).
 */
int
phn_attempt_parse(const struct phn_paths *p, const char *path,
    struct phn_attempt *a)
{
	char *c = getcwd(NULL, 0), *abs, *rel, *parts[6], *save = NULL, *s;
	struct stat st;
	int n = 0;

	memset(a, 0, sizeof(*a));
	if (c == NULL)
		return -1;
	abs = phn_path_abs(c, path);
	free(c);
	if (stat(abs, &st) == -1 && path[0] != '/') {
		free(abs);
		abs = phn_path_abs(p->runs, path);
	}
	rel = phn_path_rel(p->runs, abs);
	if (rel[0] == '/') {
		free(rel);
		free(abs);
		errno = EINVAL;
		return -1;
	}
	for (s = strtok_r(rel, "/", &save); s && n < 6; s = strtok_r(NULL, "/",
	    &save))
		parts[n++] = s;
	if (n != 6 || s != NULL || strcmp(parts[2], "steps") ||
	    strcmp(parts[4], "attempts")) {
		free(rel);
		free(abs);
		errno = EINVAL;
		return -1;
	}
	a->dir = abs;
	a->batch = phn_strdup(parts[0]);
	a->job = phn_strdup(parts[1]);
	a->step = phn_strdup(parts[3]);
	s = strstr(parts[5], "run_");
	a->run_id = phn_strdup(s ? s : parts[5]);
	a->name = phn_strdup(parts[5]);
	a->jobdir = phn_job_path(p, a->batch, a->job, NULL);
	a->rel = phn_path_rel(p->runs, abs);
	free(rel);
	return 0;
}

void
phn_attempt_free(struct phn_attempt *a)
{
	free(a->dir);
	free(a->batch);
	free(a->job);
	free(a->step);
	free(a->run_id);
	free(a->name);
	free(a->jobdir);
	free(a->rel);
	memset(a, 0, sizeof(*a));
}

/* state.json as an object, or NULL (missing or corrupt: errno says). */
struct json_object *
phn_state_read(const char *dir)
{
	char *f = phn_path_join(dir, "state.json");
	struct json_object *o = phn_json_load_doc(f, NULL, json_type_object);

	free(f);
	return o;
}

/*
 * The guarded state change.  Under state.lock: read the current status,
 * refuse an illegal transition (-1, EINVAL), keep a terminal state frozen
 * (0: not written), else merge fields into the state, set status (NULL:
 * keep the current one) and replace state.json atomically (1).
 *
 * Legal: none -> any; queued -> queued | running | any terminal (a spawn
 * that fails before codex starts ends the attempt); running -> running |
 * any terminal.
 */
int
phn_state_update(const char *dir, const char *status, struct json_object *fields)
{
	char *lp = phn_path_join(dir, "state.lock"), *sp, keep[32];
	struct json_object *cur;
	const char *prev;
	int fd, r;

	if (status != NULL && !status_valid(status)) {
		free(lp);
		errno = EINVAL;
		return -1;
	}
	if ((fd = phn_lock_wait(lp, 30)) == -1) {
		free(lp);
		return -1;
	}
	free(lp);
	cur = phn_state_read(dir);
	if (cur == NULL)
		cur = json_object_new_object();
	prev = phn_jstr(cur, "status");
	if (prev != NULL && phn_status_terminal(prev)) {
		json_object_put(cur);
		phn_lock_close(fd);
		return 0;
	}
	/* prev dies when "status" is replaced below: keep a copy. */
	if (status == NULL) {
		snprintf(keep, sizeof(keep), "%s", prev ? prev : "queued");
		status = keep;
	}
	if (prev != NULL && (!status_valid(prev) ||
	    (strcmp(prev, "running") == 0 && strcmp(status, "queued") == 0))) {
		json_object_put(cur);
		phn_lock_close(fd);
		errno = EINVAL;
		return -1;
	}
	if (fields != NULL) {
		json_object_object_foreach(fields, k, val)
			json_object_object_add(cur, k, json_object_get(val));
	}
	json_object_object_add(cur, "status", json_object_new_string(status));
	if (phn_status_terminal(status) &&
	    phn_json_get(cur, "ended_at") == NULL) {
		char iso[PHN_ISO_LEN];
		phn_iso(phn_now(), iso);
		json_object_object_add(cur, "ended_at", json_object_new_string(iso));
	}
	sp = phn_path_join(dir, "state.json");
	r = phn_json_write(sp, cur, PHN_DURABLE) == -1 ? -1 : 1;
	free(sp);
	if (r == 1 && (sp = phn_attempt_batchdir(dir)) != NULL) {
		phn_batch_changed(sp);	/* after the change (summary.c) */
		free(sp);
	}
	json_object_put(cur);
	phn_lock_close(fd);
	return r;
}




/* Batches: directories of runs/ not starting with '_' or '.' that hold a
 * batch_meta.json, sorted by name. */
char **
phn_batch_list(const struct phn_paths *p, size_t *np)
{
	char **v = phn_dir_list(p->runs, np), **out;
	size_t i, n = 0;

	if (v == NULL)
		return NULL;
	out = phn_malloc((*np + 1) * sizeof(*out));
	for (i = 0; i < *np; i++) {
		char *f = phn_batch_path(p, v[i], "batch_meta.json");
		if (v[i][0] != '_' && access(f, F_OK) == 0)
			out[n++] = v[i];
		else
			free(v[i]);
		free(f);
	}
	free(v);
	out[n] = NULL;
	*np = n;
	return out;
}

struct json_object *
phn_batch_meta(const struct phn_paths *p, const char *batch, char *msg,
    size_t msglen)
{
	char *f = phn_batch_path(p, batch, "batch_meta.json");
	struct json_object *o = phn_json_load(f, msg, msglen);

	free(f);
	return o;
}

/*
 * Whether a batch's batch_meta.json can be read, for a claimer opening
 * the batch (its derived index may be older than the damage): parsed
 * whole up to PHN_META_CHECK_MAX bytes; a larger one (100k jobs) only
 * read at both ends, a JSON object whose last byte arrived.  Returns 0,
 * or -1 with msg naming the file and the fault.
 */
#define PHN_META_CHECK_MAX	(4 << 20)
#define BLANK(c)	((c) == ' ' || (c) == '\t' || (c) == '\r' || (c) == '\n')
int
phn_batch_meta_ok(const struct phn_paths *p, const char *batch, char *msg,
    size_t msglen)
{
	char *f = phn_batch_path(p, batch, "batch_meta.json"), buf[4096];
	struct json_object *o;
	struct stat sb;
	ssize_t n;
	off_t off;
	int fd, k, ok = 0;

	if ((fd = open(f, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &sb) == -1) {
		snprintf(msg, msglen, "%s: %s", f, strerror(errno));
		if (fd != -1)
			close(fd);
		free(f);
		return -1;
	}
	if (sb.st_size <= PHN_META_CHECK_MAX) {
		close(fd);
		o = phn_json_load(f, msg, msglen);
		free(f);
		if (o == NULL)
			return -1;
		json_object_put(o);
		return 0;
	}
	/* the first and the last non-blank bytes: '{' and '}' */
	n = pread(fd, buf, sizeof(buf), 0);
	for (k = 0; k < n && BLANK(buf[k]); k++)
		;
	if (k < n && buf[k] == '{')
		for (off = sb.st_size; off > 0 && !ok; ) {
			size_t want = off < (off_t)sizeof(buf) ? (size_t)off :
			    sizeof(buf);
			off -= (off_t)want;
			if ((n = pread(fd, buf, want, off)) <= 0)
				break;
			while (n > 0 && BLANK(buf[n - 1]))
				n--;
			if (n > 0) {
				ok = buf[n - 1] == '}';
				break;
			}
		}
	close(fd);
	if (!ok)
		snprintf(msg, msglen, "%s: not a whole JSON object", f);
	free(f);
	return ok ? 0 : -1;
}

/* One attempt's entry for current.json: ids, relative dir, status. */
static struct json_object *
index_entry(const struct phn_paths *p, const char *dir, const char *run_id,
    struct json_object *st)
{
	struct json_object *e = json_object_new_object(), *v;
	char *rel = phn_path_rel(p->runs, dir), base[4096];
	static const char *keep[] = { "status", "ended_at", "codex_thread_id",
	    "failure_kind", NULL };
	int i;

	snprintf(base, sizeof(base), "%s/codex_home", rel);
	json_object_object_add(e, "run_id", json_object_new_string(run_id));
	json_object_object_add(e, "attempt_dir", json_object_new_string(rel));
	json_object_object_add(e, "resume_base_dir", json_object_new_string(base));
	for (i = 0; keep[i]; i++)
		if (json_object_object_get_ex(st, keep[i], &v))
			json_object_object_add(e, keep[i], json_object_get(v));
	if (!json_object_object_get_ex(e, "status", NULL))
		json_object_object_add(e, "status",
		    json_object_new_string("queued"));
	free(rel);
	return e;
}

/* Rebuild current.json's content for a job from its attempt directories. */
static struct json_object *
current_rebuild(const struct phn_paths *p, const char *batch,
    const char *job)
{
	char *sd = phn_job_path(p, batch, job, "steps"), iso[PHN_ISO_LEN];
	struct json_object *cur = json_object_new_object(), *steps;
	char **sv, **av;
	size_t ns, na, i, k;

	steps = json_object_new_object();
	phn_iso(phn_now(), iso);
	json_object_object_add(cur, "batch_id", json_object_new_string(batch));
	json_object_object_add(cur, "job_id", json_object_new_string(job));
	json_object_object_add(cur, "updated_at", json_object_new_string(iso));
	json_object_object_add(cur, "steps", steps);
	if ((sv = phn_dir_list(sd, &ns)) == NULL) {
		free(sd);
		return cur;
	}
	for (i = 0; i < ns; i++) {
		char *ad = phn_attempt_path(p, batch, job, sv[i], NULL, NULL);
		struct json_object *se = NULL, *by = NULL, *latest = NULL,
		    *lsucc = NULL;

		if ((av = phn_dir_list(ad, &na)) == NULL || na == 0) {
			phn_dir_list_free(av, na);
			free(ad);
			continue;
		}
		se = json_object_new_object();
		by = json_object_new_object();
		for (k = 0; k < na; k++) {
			char *dir = phn_path_join(ad, av[k]);
			const char *rid = strstr(av[k], "run_");
			struct json_object *st = phn_state_read(dir), *e;

			e = index_entry(p, dir, rid ? rid : av[k], st);
			json_object_object_add(by, rid ? rid : av[k], e);
			latest = e;	/* names sort by claim time */
			if (st && phn_jstr(st, "status") &&
			    strcmp(phn_jstr(st, "status"), "succeeded") == 0)
				lsucc = e;
			json_object_put(st);
			free(dir);
		}
		json_object_object_add(se, "by_run_id", by);
		json_object_object_add(se, "latest", json_object_get(latest));
		if (lsucc)
			json_object_object_add(se, "latest_successful",
			    json_object_get(lsucc));
		json_object_object_add(steps, sv[i], se);
		phn_dir_list_free(av, na);
		free(ad);
	}
	phn_dir_list_free(sv, ns);
	free(sd);
	return cur;
}

/* current.json, rebuilt in memory when missing or corrupt. */
static struct json_object *
current_read(const struct phn_paths *p, const char *batch, const char *job)
{
	char *f = phn_job_path(p, batch, job, "current.json");
	char msg[512];
	struct json_object *o = phn_json_load(f, msg, sizeof(msg));

	free(f);
	if (!json_object_is_type(phn_json_get(o, "steps"), json_type_object)) {
		json_object_put(o);
		return current_rebuild(p, batch, job);
	}
	return o;
}

/* The job's current.json under its lock (fd returned), rebuilt if bad. */
static int
current_lock(const struct phn_paths *p, const char *batch, const char *job,
    struct json_object **cur)
{
	char *lp = phn_job_path(p, batch, job, "current.lock");
	int fd = phn_lock_wait(lp, 30);

	free(lp);
	*cur = fd == -1 ? NULL : current_read(p, batch, job);
	return fd;
}

/* Write cur back (unless nochange), stamped, and release the lock. */
static int
current_unlock(const struct phn_paths *p, const char *batch, const char *job,
    int fd, struct json_object *cur, int nochange)
{
	char *f, iso[PHN_ISO_LEN];
	int r = 0;

	if (!nochange) {
		f = phn_job_path(p, batch, job, "current.json");
		phn_iso(phn_now(), iso);
		json_object_object_add(cur, "batch_id",
		    json_object_new_string(batch));
		json_object_object_add(cur, "job_id", json_object_new_string(job));
		json_object_object_add(cur, "updated_at",
		    json_object_new_string(iso));
		r = phn_json_write(f, cur, PHN_DURABLE);
		free(f);
	}
	json_object_put(cur);
	phn_lock_close(fd);
	return r;
}

/* The fields of an index entry phn-fsck compares (not the times). */
static int
entry_same(struct json_object *a, struct json_object *b)
{
	static const char *k[] = { "run_id", "attempt_dir", "status", NULL };
	const char *x, *y;
	int i;

	if ((a == NULL) != (b == NULL))
		return 0;
	for (i = 0; a != NULL && k[i]; i++) {
		x = phn_jstr(a, k[i]);
		y = phn_jstr(b, k[i]);
		if ((x == NULL) != (y == NULL) || (x && strcmp(x, y) != 0))
			return 0;
	}
	return 1;
}

/*
 * Whether a job's current.json agrees with its attempt directories (what
 * a rebuild would write): every step's latest, latest_successful and
 * by_run_id entries (ids, directory, status).  Returns 0 if it does, 1
 * if not (why says where; with repair, it is rewritten from the rebuild
 * under the job's lock), -1 on error.  For phn-fsck.
 */
int
phn_current_check(const struct phn_paths *p, const char *batch,
    const char *job, int repair, char *why, size_t whylen)
{
	char *f = phn_job_path(p, batch, job, "current.json"), msg[512];
	struct json_object *cur = phn_json_load(f, msg, sizeof(msg));
	struct json_object *want = current_rebuild(p, batch, job), *hs, *ws;
	int bad = 0, fd;

	hs = phn_json_get(cur, "steps");
	ws = phn_json_get(want, "steps");
	if (!json_object_is_type(hs, json_type_object)) {
		if (json_object_object_length(ws) > 0 || cur != NULL) {
			snprintf(why, whylen, "%s", cur == NULL ? msg :
			    "no steps object");
			bad = 1;
		}
	} else {
		json_object_object_foreach(hs, hid, he) {
			if (json_object_object_length(phn_json_get(he,
			    "by_run_id")) > 0 && phn_json_get(ws, hid) == NULL) {
				snprintf(why, whylen, "steps.%s names attempts "
				    "that do not exist", hid);
				bad = 1;
			}
		}
	}
	if (!bad && json_object_is_type(hs, json_type_object)) {
		json_object_object_foreach(ws, sid, we) {
			struct json_object *he = phn_json_get(hs, sid);
			struct json_object *hb = phn_json_get(he, "by_run_id");
			struct json_object *wb = phn_json_get(we, "by_run_id");
			const char *k = NULL;
			if (!entry_same(phn_json_get(he, "latest"),
			    phn_json_get(we, "latest")))
				k = "latest";
			else if (!entry_same(phn_json_get(he,
			    "latest_successful"), phn_json_get(we,
			    "latest_successful")))
				k = "latest_successful";
			else if (json_object_object_length(hb) !=
			    json_object_object_length(wb))
				k = "by_run_id";
			else {
				json_object_object_foreach(wb, rid, e)
					if (!entry_same(phn_json_get(hb, rid), e))
						k = "by_run_id";
			}
			if (k != NULL) {
				snprintf(why, whylen, "steps.%s.%s disagrees "
				    "with the attempts", sid, k);
				bad = 1;
				break;
			}
		}
	}
	json_object_put(cur);
	json_object_put(want);
	if (bad && repair) {
		if ((fd = current_lock(p, batch, job, &cur)) == -1) {
			free(f);
			return -1;
		}
		json_object_put(cur);
		cur = current_rebuild(p, batch, job);
		if (current_unlock(p, batch, job, fd, cur, 0) == -1) {
			free(f);
			return -1;
		}
	}
	free(f);
	return bad;
}

/* o[k] as an object: made, or replacing a non-object, when it is not. */
static struct json_object *
child(struct json_object *o, const char *k)
{
	struct json_object *v = phn_json_get(o, k);

	if (!json_object_is_type(v, json_type_object)) {
		v = json_object_new_object();
		json_object_object_add(o, k, v);
	}
	return v;
}

/*
 * Record an attempt in current.json under the job's lock: its by_run_id
 * entry (status and fields from state), latest if it is the newest, and
 * latest_successful when it succeeded.  A corrupt file is rebuilt.
 */
int
phn_current_note(const struct phn_paths *p, const struct phn_attempt *a,
    struct json_object *st)
{
	struct json_object *cur, *se, *e, *lat;
	const char *status = phn_jstr(st, "status"), *ld;
	int fd;

	if ((fd = current_lock(p, a->batch, a->job, &cur)) == -1)
		return -1;
	se = child(phn_json_get(cur, "steps"), a->step);
	e = index_entry(p, a->dir, a->run_id, st);
	json_object_object_add(child(se, "by_run_id"), a->run_id, e);
	lat = phn_json_get(se, "latest");
	ld = phn_jstr(lat, "attempt_dir");
	if (ld == NULL || strcmp(ld, phn_jstr(e, "attempt_dir")) <= 0 ||
	    strcmp(phn_jstr(lat, "run_id") ? phn_jstr(lat, "run_id") : "",
	    a->run_id) == 0)
		json_object_object_add(se, "latest", json_object_get(e));
	if (status && strcmp(status, "succeeded") == 0)
		json_object_object_add(se, "latest_successful",
		    json_object_get(e));
	return current_unlock(p, a->batch, a->job, fd, cur, 0);
}

/* Set (val, a reference taken) or delete (NULL) a key of steps[step]. */
int
phn_current_step_set(const struct phn_paths *p, const char *batch,
    const char *job, const char *step, const char *key,
    struct json_object *val)
{
	struct json_object *cur, *steps;
	int fd;

	if ((fd = current_lock(p, batch, job, &cur)) == -1) {
		json_object_put(val);
		return -1;
	}
	steps = phn_json_get(cur, "steps");
	if (val != NULL)
		json_object_object_add(child(steps, step), key, val);
	else if (json_object_is_type(phn_json_get(steps, step),
	    json_type_object))
		json_object_object_del(phn_json_get(steps, step), key);
	else
		return current_unlock(p, batch, job, fd, cur, 1);
	return current_unlock(p, batch, job, fd, cur, 0);
}

/*
 * Find an attempt by ids: current.json's by_run_id, then a directory
 * named <run_id> or ending in _<run_id>.  NULL with errno ENOENT (none)
 * or EEXIST (ambiguous).
 */
char *
phn_attempt_find(const struct phn_paths *p, const char *batch, const char *job,
    const char *step, const char *run_id)
{
	struct json_object *cur = current_read(p, batch, job), *e;
	char *ad, **v, *found = NULL, *suffix;
	const char *rel;
	size_t n, i, hits = 0;
	struct stat st;

	e = phn_json_get(phn_json_get(phn_json_get(phn_json_get(cur, "steps"),
	    step), "by_run_id"), run_id);
	if ((rel = phn_jstr(e, "attempt_dir")) != NULL) {
		char *d = phn_path_abs(p->runs, rel);
		if (stat(d, &st) == 0 && S_ISDIR(st.st_mode)) {
			json_object_put(cur);
			return d;
		}
		free(d);
	}
	json_object_put(cur);
	ad = phn_attempt_path(p, batch, job, step, NULL, NULL);
	suffix = phn_asprintf("_%s", run_id);
	if ((v = phn_dir_list(ad, &n)) != NULL) {
		for (i = 0; i < n; i++) {
			size_t l = strlen(v[i]), sl = strlen(suffix);
			if (strcmp(v[i], run_id) == 0 ||
			    (l > sl && strcmp(v[i] + l - sl, suffix) == 0)) {
				if (hits++ == 0)
					found = phn_path_join(ad, v[i]);
			}
		}
		phn_dir_list_free(v, n);
	}
	free(suffix);
	free(ad);
	if (hits > 1) {
		free(found);
		errno = EEXIST;
		return NULL;
	}
	if (found == NULL)
		errno = ENOENT;
	return found;
}

/* Process identity, from /proc: start time in clock ticks since boot. */
unsigned long long
phn_proc_start(pid_t pid)
{
	char *f = phn_asprintf("/proc/%d/stat", (int)pid), *buf, *s;
	unsigned long long t = 0;
	size_t len;
	int i;

	if (phn_read_file(f, &buf, &len, 65536) == -1) {
		free(f);
		return 0;
	}
	free(f);
	/* Field 2 (comm) may hold spaces and parens; count after the last ')'. */
	if ((s = strrchr(buf, ')')) != NULL) {
		for (i = 2; i < 22 && s; i++)
			s = strchr(s + 1, ' ');
		if (s)
			t = strtoull(s + 1, NULL, 10);
	}
	free(buf);
	return t;
}

const char *
phn_boot_id(void)
{
	static char id[64];
	char *buf;
	size_t len;

	if (id[0] == '\0') {
		if (phn_read_file("/proc/sys/kernel/random/boot_id", &buf, &len,
		    256) == 0) {
			snprintf(id, sizeof(id), "%.*s", (int)strcspn(buf, "\n"),
			    buf);
			free(buf);
		} else
			strcpy(id, "unknown");
	}
	return id;
}

const char *
phn_hostname(void)
{
	static char host[256];

	if (host[0] == '\0' && gethostname(host, sizeof(host) - 1) == -1)
		strcpy(host, "localhost");
	return host;
}

/* Whether state's recorded process (pid_key, start_key) is on this
 * machine and still the same process. */
int
phn_state_proc_alive(struct json_object *st, const char *pid_key,
    const char *start_key)
{
	const char *host = phn_jstr(st, "host"), *boot = phn_jstr(st, "boot_id");
	long long pid;
	unsigned long long want;

	if (host == NULL || boot == NULL || strcmp(host, phn_hostname()) ||
	    strcmp(boot, phn_boot_id()))
		return 0;
	if ((pid = phn_json_int(st, pid_key, 0)) <= 1)
		return 0;
	want = (unsigned long long)phn_json_int(st, start_key, 0);
	return want != 0 && phn_proc_start((pid_t)pid) == want;
}



/*
 * phn_store_dir for the attempt directory path names (as
 * phn_attempt_parse finds it), before anything is written into it: 0
 * also when path names no attempt (the caller says so).
 */
int
phn_store_attempt_dir(const struct phn_paths *p, const char *path,
    char *msg, size_t msglen)
{
	struct phn_attempt a;
	int r;

	if (phn_attempt_parse(p, path, &a) == -1)
		return 0;
	r = phn_store_dir(p, a.dir, 0, msg, msglen);
	phn_attempt_free(&a);
	return r;
}

/*
 * A job's overrides: NULL when there are none.  An unreadable file sets
 * *bad (and msg): its steps must not run on a guess, since it may hold a
 * forced terminal state.
 */
struct json_object *
phn_overrides_read(const struct phn_paths *p, const char *batch,
    const char *job, int *bad, char *msg, size_t msglen)
{
	char *f = phn_job_path(p, batch, job, "overrides.json");
	struct json_object *o;

	*bad = 0;
	o = phn_json_load(f, msg, msglen);
	if (o == NULL && errno != ENOENT)
		*bad = 1;
	else if (o != NULL && (!json_object_is_type(o, json_type_object) ||
	    (phn_json_get(o, "steps") != NULL && !json_object_is_type(phn_json_get(o, "steps"),
	    json_type_object)))) {
		snprintf(msg, msglen, "%s: not an overrides object", f);
		*bad = 1;
		json_object_put(o);
		o = NULL;
	}
	free(f);
	return o;
}

/*
 * fn(attempt directory, arg) for every attempt of batch, job by job, step
 * by step (the entries starting with '_' are not jobs).  What cannot be
 * listed is passed over.
 */
void
phn_batch_attempts(const struct phn_paths *p, const char *batch,
    void (*fn)(const char *, void *), void *arg)
{
	char **jobs, **steps, **atts, *d;
	size_t i, k, m, nj, ns, na;

	d = phn_batch_path(p, batch, NULL);
	jobs = phn_dir_list(d, &nj);
	free(d);
	for (i = 0; jobs && i < nj; i++) {
		if (jobs[i][0] == '_')
			continue;
		d = phn_job_path(p, batch, jobs[i], "steps");
		steps = phn_dir_list(d, &ns);
		free(d);
		for (k = 0; steps && k < ns; k++) {
			d = phn_attempt_path(p, batch, jobs[i], steps[k], NULL,
			    NULL);
			atts = phn_dir_list(d, &na);
			for (m = 0; atts && m < na; m++) {
				char *ad = phn_path_join(d, atts[m]);
				fn(ad, arg);
				free(ad);
			}
			phn_dir_list_free(atts, na);
			free(d);
		}
		phn_dir_list_free(steps, ns);
	}
	phn_dir_list_free(jobs, nj);
}

/*
 * The batches a command visits: batch alone, or (NULL) every batch of the
 * store (phn_batch_list), NULL-terminated; free with phn_dir_list_free.
 * NULL if they cannot be listed (errno; ENOENT: no store).
 */
char **
phn_batches(const struct phn_paths *p, const char *batch, size_t *np)
{
	char **v;

	if (batch == NULL)
		return phn_batch_list(p, np);
	v = phn_malloc(2 * sizeof(*v));
	v[0] = phn_strdup(batch);
	v[1] = NULL;
	*np = 1;
	return v;
}
