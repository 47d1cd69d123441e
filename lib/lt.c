/*
 * lt.c - the Launch Table: validate everything, report every problem
 * with its JSON path, and build the normalized table (batch_meta.json
 * without the harness-assigned ids and hashes).
 *
 * The validator never exits and never writes: it returns NULL with
 * ctx->errs filled, or the normalized table with the composed prompts
 * and schema texts in ctx->steps.  That keeps it drivable by a fuzzer.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

#define E(...)	phn_errs_add(&c->errs, __VA_ARGS__)
#define W(...)	phn_errs_add(&c->warns, __VA_ARGS__)

static const char *sections[] = { "execution_policy", "timeouts", "retries",
    "retention_policy", "scoreboard", "workspace_policy", "budget", NULL };

static const char *retry_classes[] = { "failed", "needs_attention",
    "canceled", "timeout", "spawn_error", "codex_exit", "model_error",
    "invalid_report", "report_failed", "missing_artifacts", "orphaned",
    "claim_expired", NULL };

struct node {
	char	*key;		/* "JOB/STEP" */
	const char *path;	/* "jobs[i].steps[k]" (owned by paths[]) */
	size_t	*edges;
	size_t	 nedges;
};

struct graph {
	struct node *v;
	size_t	 n, cap;
	struct json_object *index;	/* "JOB/STEP" -> node number */
};

static int
in(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return 1;
	return 0;
}

static char *
join_set(const char *const *set)
{
	char *s = phn_strdup(""), *t;

	for (; *set; set++) {
		t = phn_asprintf("%s%s%s", s, *s ? " | " : "", *set);
		free(s);
		s = t;
	}
	return s;
}

static int
is_str(struct json_object *o)
{
	return json_object_is_type(o, json_type_string) &&
	    strlen(json_object_get_string(o)) ==
	    (size_t)json_object_get_string_len(o);
}

static void
want_enum(struct phn_lt_ctx *c, struct json_object *v, const char *path,
    const char *const *set)
{
	char *all;

	if (is_str(v) && in(json_object_get_string(v), set))
		return;
	all = join_set(set);
	if (json_object_is_type(v, json_type_string))
		E("%s: \"%s\" is not one of %s", path, json_object_get_string(v),
		    all);
	else
		E("%s: must be one of %s (is %s)", path, all, phn_json_type(v));
	free(all);
}

static void
want_bool(struct phn_lt_ctx *c, struct json_object *v, const char *path)
{
	if (!json_object_is_type(v, json_type_boolean))
		E("%s: must be true or false (is %s)", path, phn_json_type(v));
}

/* A number beyond 2^53, which phn_json_is_int never takes for an integer. */
static int
too_big(struct json_object *v)
{
	int64_t i;

	if (json_object_is_type(v, json_type_int)) {
		i = json_object_get_int64(v);
		return i > PHN_JSON_INT_MAX || i < -PHN_JSON_INT_MAX;
	}
	return json_object_is_type(v, json_type_double) &&
	    isfinite(json_object_get_double(v)) &&
	    fabs(json_object_get_double(v)) > PHN_JSON_INT_MAX;
}

static void
want_int(struct phn_lt_ctx *c, struct json_object *v, const char *path,
    long long min)
{
	if (too_big(v))
		E("%s: out of range: beyond 2^53 (is %s)", path,
		    json_object_to_json_string(v));
	else if (!phn_json_is_int(v) || json_object_get_int64(v) < min)
		E("%s: must be an integer >= %lld (is %s)", path, min,
		    v ? json_object_to_json_string(v) : "null");
}

static void
want_num(struct phn_lt_ctx *c, struct json_object *v, const char *path,
    double min, int strict, int nullok)
{
	double d;

	if (v == NULL && nullok)
		return;
	if (!phn_json_is_num(v)) {
		E("%s: must be a number%s (is %s)", path,
		    nullok ? " or null" : "", phn_json_type(v));
		return;
	}
	d = json_object_get_double(v);
	if (!isfinite(d))
		E("%s: must be a finite number", path);
	else if (too_big(v))
		E("%s: out of range: beyond 2^53 (is %s)", path,
		    json_object_to_json_string(v));
	else if (strict ? d <= min : d < min)
		E("%s: must be %s %g (is %s)", path, strict ? ">" : ">=", min,
		    json_object_to_json_string(v));
}

static void
want_strs(struct phn_lt_ctx *c, struct json_object *v, const char *path)
{
	size_t i, n;

	if (!json_object_is_type(v, json_type_array)) {
		E("%s: must be an array of strings (is %s)", path,
		    phn_json_type(v));
		return;
	}
	n = json_object_array_length(v);
	for (i = 0; i < n; i++)
		if (!is_str(json_object_array_get_idx(v, i)))
			E("%s[%zu]: must be a string", path, i);
}

static void
unknown_key(struct phn_lt_ctx *c, const char *path, const char *k)
{
	W("%s.%s: unknown key (kept; is it a typo?)", path, k);
}

static void
v_execution_policy(struct phn_lt_ctx *c, struct json_object *o,
    const char *p)
{
	static const char *sandbox[] = { "read-only", "workspace-write",
	    "danger-full-access", NULL };
	static const char *approval[] = { "untrusted", "on-failure",
	    "on-request", "never", NULL };
	static const char *bools[] = { "skip_git_repo_check",
	    "web_search_enabled", "capture_events_jsonl",
	    "capture_codex_thread_id", "capture_git_artifacts", NULL };

	json_object_object_foreach(o, k, v) {
		char *kp = phn_asprintf("%s.%s", p, k);
		if (strcmp(k, "sandbox") == 0)
			want_enum(c, v, kp, sandbox);
		else if (strcmp(k, "approval_policy") == 0)
			want_enum(c, v, kp, approval);
		else if (strcmp(k, "model") == 0 ||
		    strcmp(k, "model_reasoning_effort") == 0) {
			if (v != NULL && (!is_str(v) ||
			    json_object_get_string_len(v) == 0))
				E("%s: must be a non-empty string or null", kp);
		} else if (in(k, bools))
			want_bool(c, v, kp);
		else if (strcmp(k, "add_dirs") == 0)
			want_strs(c, v, kp);
		else if (strcmp(k, "add_dir") == 0) {
			if (!is_str(v))
				want_strs(c, v, kp);
		} else
			unknown_key(c, p, k);
		free(kp);
	}
}

static void
v_timeouts(struct phn_lt_ctx *c, struct json_object *o, const char *p)
{
	json_object_object_foreach(o, k, v) {
		char *kp = phn_asprintf("%s.%s", p, k);
		if (strcmp(k, "step_timeout_seconds") == 0)
			want_num(c, v, kp, 0, 1, 1);
		else
			unknown_key(c, p, k);
		free(kp);
	}
}

static void
v_retries(struct phn_lt_ctx *c, struct json_object *o, const char *p)
{
	static const char *modes[] = { "fresh", "resume_last_attempt", NULL };
	size_t i, n;

	json_object_object_foreach(o, k, v) {
		char *kp = phn_asprintf("%s.%s", p, k);
		if (strcmp(k, "max_attempts") == 0)
			want_int(c, v, kp, 1);
		else if (strcmp(k, "retry_on_statuses") == 0) {
			if (!json_object_is_type(v, json_type_array))
				E("%s: must be an array of statuses and failure "
				    "kinds (is %s)", kp, phn_json_type(v));
			else {
				n = json_object_array_length(v);
				for (i = 0; i < n; i++) {
					char *ip = phn_asprintf("%s[%zu]", kp, i);
					want_enum(c, json_object_array_get_idx(v,
					    i), ip, retry_classes);
					free(ip);
				}
			}
		} else if (strcmp(k, "backoff_seconds") == 0) {
			if (json_object_is_type(v, json_type_object)) {
				json_object_object_foreach(v, bk, bv) {
					char *bp = phn_asprintf("%s.%s", kp, bk);
					if (strcmp(bk, "base") == 0 ||
					    strcmp(bk, "max") == 0)
						want_num(c, bv, bp, 0, 0, 0);
					else if (strcmp(bk, "factor") == 0)
						want_num(c, bv, bp, 1, 0, 0);
					else if (strcmp(bk, "jitter") == 0) {
						want_num(c, bv, bp, 0, 0, 0);
						if (phn_json_is_num(bv) &&
						    json_object_get_double(bv) > 1)
							E("%s: must be between 0 and 1",
							    bp);
					} else
						E("%s: unknown key (want base, "
						    "factor, max, jitter)", bp);
					free(bp);
				}
			} else
				want_num(c, v, kp, 0, 0, 0);
		} else if (strcmp(k, "mode") == 0)
			want_enum(c, v, kp, modes);
		else
			unknown_key(c, p, k);
		free(kp);
	}
}

static void
v_retention(struct phn_lt_ctx *c, struct json_object *o, const char *p)
{
	json_object_object_foreach(o, k, v) {
		char *kp = phn_asprintf("%s.%s", p, k);
		if (strcmp(k, "allow_delete_success_final_outputs") == 0)
			want_bool(c, v, kp);
		else if (strncmp(k, "keep_", 5) == 0 ||
		    strncmp(k, "compress_", 9) == 0)
			want_num(c, v, kp, 0, 0, 1);
		else
			unknown_key(c, p, k);
		free(kp);
	}
}

static void
v_scoreboard(struct phn_lt_ctx *c, struct json_object *o, const char *p)
{
	json_object_object_foreach(o, k, v) {
		char *kp = phn_asprintf("%s.%s", p, k);
		if (strcmp(k, "heartbeat_interval_seconds") == 0 ||
		    strcmp(k, "heartbeat_stale_after_seconds") == 0 ||
		    strcmp(k, "stuck_after_seconds") == 0)
			want_int(c, v, kp, 1);
		else if (strcmp(k, "stuck_auto_remediation_enabled") == 0)
			want_bool(c, v, kp);
		else
			unknown_key(c, p, k);
		free(kp);
	}
}

/* budget: {max_total_tokens: N >= 1 or null, on_exhausted} (budget.c) */
static void
v_budget(struct phn_lt_ctx *c, struct json_object *o, const char *p)
{
	static const char *whens[] = { "wait", "cancel", NULL };

	json_object_object_foreach(o, k, v) {
		char *kp = phn_asprintf("%s.%s", p, k);
		if (strcmp(k, "max_total_tokens") == 0) {
			if (v != NULL)
				want_int(c, v, kp, 1);
		} else if (strcmp(k, "on_exhausted") == 0)
			want_enum(c, v, kp, whens);
		else
			unknown_key(c, p, k);
		free(kp);
	}
}

static void
v_workspace(struct phn_lt_ctx *c, struct json_object *o, const char *p)
{
	static const char *modes[] = { "shared", "isolated", NULL };

	json_object_object_foreach(o, k, v) {
		char *kp = phn_asprintf("%s.%s", p, k);
		if (strcmp(k, "mode") == 0)
			want_enum(c, v, kp, modes);
		else if (strcmp(k, "allow_isolated_copy_fallback") == 0)
			want_bool(c, v, kp);
		else if (strcmp(k, "copy_exclude_names") == 0)
			want_strs(c, v, kp);
		else
			unknown_key(c, p, k);
		free(kp);
	}
}

/* Validate one defaults section; null is allowed where nullok. */
static void
v_section(struct phn_lt_ctx *c, const char *name, struct json_object *o,
    const char *p, int nullok)
{
	if (o == NULL) {
		if (!nullok)
			E("%s: must be an object (is null)", p);
		return;
	}
	if (!json_object_is_type(o, json_type_object)) {
		E("%s: must be an object (is %s)", p, phn_json_type(o));
		return;
	}
	if (strcmp(name, "execution_policy") == 0)
		v_execution_policy(c, o, p);
	else if (strcmp(name, "timeouts") == 0)
		v_timeouts(c, o, p);
	else if (strcmp(name, "retries") == 0)
		v_retries(c, o, p);
	else if (strcmp(name, "retention_policy") == 0)
		v_retention(c, o, p);
	else if (strcmp(name, "scoreboard") == 0)
		v_scoreboard(c, o, p);
	else if (strcmp(name, "workspace_policy") == 0)
		v_workspace(c, o, p);
	else if (strcmp(name, "budget") == 0)
		v_budget(c, o, p);
}

/* Count words as Python's str.split() does (its whitespace set). */
static int
goal_words(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int words = 0, inword = 0;

	while (*p) {
		unsigned long cp;
		size_t n;
		int sp;

		if (*p < 0x80) {
			cp = *p;
			n = 1;
		} else if ((*p & 0xe0) == 0xc0 && p[1]) {
			cp = (unsigned long)(*p & 0x1f) << 6 | (p[1] & 0x3f);
			n = 2;
		} else if ((*p & 0xf0) == 0xe0 && p[1] && p[2]) {
			cp = (unsigned long)(*p & 0x0f) << 12 |
			    (unsigned long)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
			n = 3;
		} else {
			cp = 0xffff;
			n = 1;
			while (p[n] && (p[n] & 0xc0) == 0x80)
				n++;
		}
		sp = (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) ||
		    cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
		    (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
		    cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
		    cp == 0x3000;
		if (sp)
			inword = 0;
		else if (!inword) {
			inword = 1;
			words++;
		}
		p += n;
	}
	return words;
}

static size_t
node_add(struct graph *g, const char *job, const char *step, const char *path)
{
	struct node *nd;

	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 64;
		g->v = phn_realloc(g->v, g->cap * sizeof(*g->v));
	}
	nd = &g->v[g->n];
	nd->key = phn_asprintf("%s/%s", job, step);
	nd->path = path;
	nd->edges = NULL;
	nd->nedges = 0;
	json_object_object_add(g->index, nd->key,
	    json_object_new_int64((int64_t)g->n));
	return g->n++;
}

static long
node_find(struct graph *g, const char *job, const char *ref)
{
	struct json_object *v;
	char *key = strchr(ref, '/') ? phn_strdup(ref) :
	    phn_asprintf("%s/%s", job, ref);
	long r = -1;

	if (json_object_object_get_ex(g->index, key, &v))
		r = (long)json_object_get_int64(v);
	free(key);
	return r;
}

static void
edge_add(struct graph *g, size_t from, size_t to)
{
	struct node *nd = &g->v[from];

	nd->edges = phn_realloc(nd->edges, (nd->nedges + 1) *
	    sizeof(*nd->edges));
	nd->edges[nd->nedges++] = to;
}

/* Iterative DFS (chains may be long); report each cycle's first sighting. */
static void
cycles(struct phn_lt_ctx *c, struct graph *g)
{
	unsigned char *color = calloc(g->n + 1, 1);
	size_t *stack = phn_malloc((g->n + 1) * sizeof(*stack));
	size_t *pos = phn_malloc((g->n + 1) * sizeof(*pos));
	size_t s, sp, i;

	if (color == NULL)
		phn_die(PHN_EXIT_TEMP, "out of memory");
	for (s = 0; s < g->n; s++) {
		if (color[s])
			continue;
		sp = 0;
		stack[sp] = s;
		pos[sp++] = 0;
		color[s] = 1;
		while (sp > 0) {
			size_t u = stack[sp - 1];
			if (pos[sp - 1] == g->v[u].nedges) {
				color[u] = 2;
				sp--;
				continue;
			}
			size_t w = g->v[u].edges[pos[sp - 1]++];
			if (color[w] == 0) {
				color[w] = 1;
				stack[sp] = w;
				pos[sp++] = 0;
			} else if (color[w] == 1) {
				char *msg = phn_strdup(""), *t;
				for (i = 0; i < sp && stack[i] != w; i++)
					;
				for (; i < sp; i++) {
					t = phn_asprintf("%s%s -> ", msg,
					    g->v[stack[i]].key);
					free(msg);
					msg = t;
				}
				E("%s: dependency cycle: %s%s", g->v[w].path, msg,
				    g->v[w].key);
				free(msg);
			}
		}
	}
	free(color);
	free(stack);
	free(pos);
}

/*
 * Where a prompt_ref or output_schema_ref may lie, symlinks resolved:
 * the table's directory and the limits.ref_roots (the job's working
 * directory is its jobinfo's realwd).
 */
struct refroots {
	char	**v;
	size_t	 n;
};

struct jobinfo {
	const char *id;
	char	*workdir;
	char	*realwd;	/* workdir, symlinks resolved, if it exists */
	const struct refroots *roots;
	char	*path;
	int	 ok;
};

/* Find a referenced file: the job's workdir first, then the table's dir. */
static char *
find_ref(struct phn_lt_ctx *c, const char *workdir, const char *ref,
    const char *path)
{
	char *a = phn_path_abs(workdir, ref), *b;
	struct stat st;

	if (stat(a, &st) == 0)
		return a;
	if (c->wd_roots != NULL) {	/* untrusted: the workdir only */
		E("%s: %s: %s", path, a, strerror(errno));
		free(a);
		return NULL;
	}
	b = phn_path_abs(c->base, ref);
	if (stat(b, &st) == 0) {
		free(a);
		return b;
	}
	if (strcmp(a, b) == 0)
		E("%s: %s: %s", path, a, strerror(errno));
	else
		E("%s: \"%s\" not found (looked for %s and %s)", path, ref, a, b);
	free(a);
	free(b);
	return NULL;
}

/* What a file of mode m is, for messages. */
static const char *
file_kind(mode_t m)
{
	return S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" :
	    S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device" :
	    S_ISDIR(m) ? "a directory" : S_ISREG(m) ? "a regular file" :
	    "a special file";
}

/*
 * Read a Launch Table input (the table, a prompt_ref, an
 * output_schema_ref) of at most max bytes.  Only a regular file is read:
 * anything else (a FIFO, a device, a socket) is refused after a stat and
 * never opened for reading, so it cannot block; a regular file is opened
 * non-blocking, checked again and read through that descriptor, so one
 * swapped in meanwhile cannot block either.  Fills f (the caller frees
 * f->buf and f->real); returns 0, or -1 with errno (EINVAL: not a
 * regular file) and the reason, without the path, in msg.
 */
int
phn_lt_read(const char *path, size_t max, struct phn_lt_file *f, char *msg,
    size_t msglen)
{
	struct stat st;
	char fdp[64], rl[PATH_MAX];
	ssize_t n;
	int fd = -1, e;

	memset(f, 0, sizeof(*f));
	if (stat(path, &st) == -1)
		goto fail;
	if (S_ISREG(st.st_mode) && ((fd = open(path, O_RDONLY | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC)) == -1 || fstat(fd, &st) == -1))
		goto fail;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(msg, msglen, "is %s, not a regular file",
		    file_kind(st.st_mode));
		if (fd != -1)
			close(fd);
		errno = EINVAL;
		return -1;
	}
	/* /dev/fd/N is the file just checked, whatever path names now. */
	snprintf(fdp, sizeof(fdp), "/dev/fd/%d", fd);
	if (phn_read_file(fdp, &f->buf, &f->len, max) == -1)
		goto fail;
	snprintf(fdp, sizeof(fdp), "/proc/self/fd/%d", fd);
	if ((n = readlink(fdp, rl, sizeof(rl) - 1)) > 0 && rl[0] == '/') {
		rl[n] = '\0';
		f->real = phn_strdup(rl);
	} else if ((f->real = realpath(path, NULL)) == NULL)
		goto fail;
	f->mode = st.st_mode & 07777;
	close(fd);
	return 0;
fail:
	e = errno;
	if (fd != -1)
		close(fd);
	free(f->buf);
	f->buf = NULL;
	if (e == EFBIG)
		snprintf(msg, msglen, "larger than %zu MiB", max >> 20);
	else
		snprintf(msg, msglen, "%s", strerror(e));
	errno = e;
	return -1;
}

/* Is file (absolute, no symlinks) under the directory root (the same)? */
static int
under(const char *root, const char *file)
{
	size_t n = strlen(root);

	return strncmp(file, root, n) == 0 && (file[n] == '/' ||
	    (n == 1 && file[1] != '\0'));
}

static void
roots_add(struct refroots *rr, const char *dir)
{
	char *r = realpath(dir, NULL);

	if (r == NULL)
		return;
	rr->v = phn_realloc(rr->v, (rr->n + 1) * sizeof(*rr->v));
	rr->v[rr->n++] = r;
}

/*
 * dir (absolute) with symbolic links resolved as far as it exists: the
 * real path of its deepest existing ancestor and the rest as written.
 */
static char *
real_prefix(const char *dir)
{
	char *r, *d, *t;

	if ((r = realpath(dir, NULL)) != NULL || strcmp(dir, "/") == 0)
		return r;
	d = phn_path_dirname(dir);
	if ((r = real_prefix(d)) != NULL) {
		t = phn_path_join(r, strrchr(dir, '/') + 1);
		free(r);
		r = t;
	}
	free(d);
	return r;
}

/*
 * An untrusted table's directory dir (a working directory, an add_dirs
 * entry) must lie under one of c->wd_roots, symbolic links resolved;
 * else the error at path.
 */
static void
check_wd_root(struct phn_lt_ctx *c, const char *dir, const char *path)
{
	char *real, *root;
	size_t i;
	int ok = 0;

	if (c->wd_roots == NULL)
		return;
	real = real_prefix(dir);
	for (i = 0; !ok && real != NULL && c->wd_roots[i] != NULL; i++) {
		if ((root = realpath(c->wd_roots[i], NULL)) == NULL)
			continue;
		ok = strcmp(real, root) == 0 || under(root, real);
		free(root);
	}
	if (!ok)
		E("%s: %s lies outside interfaces.api_mode.allowed_roots (a "
		    "table submitted over HTTP may work only there)", path, dir);
	free(real);
}

/*
 * Read the file a prompt_ref or output_schema_ref names (path: its JSON
 * path): a regular file (see phn_lt_read) that lies, symlinks resolved,
 * under the job's working directory, the table's directory or a
 * limits.ref_roots directory.  Returns the path it was found at, with f
 * filled, or NULL with the error added.
 */
static char *
read_ref(struct phn_lt_ctx *c, const struct jobinfo *j, const char *ref,
    const char *path, size_t max, struct phn_lt_file *f)
{
	char *file, msg[256];
	size_t i;
	int ok;

	if ((file = find_ref(c, j->workdir, ref, path)) == NULL)
		return NULL;
	if (phn_lt_read(file, max, f, msg, sizeof(msg)) == -1) {
		E("%s: %s: %s", path, file, msg);
		free(file);
		return NULL;
	}
	ok = j->realwd != NULL && under(j->realwd, f->real);
	for (i = 0; !ok && c->wd_roots == NULL && i < j->roots->n; i++)
		ok = under(j->roots->v[i], f->real);
	if (ok)
		return file;
	if (c->wd_roots != NULL)
		E("%s: %s resolves to %s, outside the job's working directory "
		    "(a table submitted over HTTP may refer only to files "
		    "there)", path, file, f->real);
	else if (strcmp(file, f->real) == 0)
		E("%s: %s lies outside the job's working directory, the "
		    "table's directory and limits.ref_roots", path, file);
	else
		E("%s: %s resolves to %s, outside the job's working directory, "
		    "the table's directory and limits.ref_roots", path, file,
		    f->real);
	free(f->buf);
	free(f->real);
	free(file);
	return NULL;
}

static char *
trim(const char *s)
{
	const char *e;

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
	    e[-1] == '\r'))
		e--;
	return phn_asprintf("%.*s", (int)(e - s), s);
}

static const char *step_keys[] = { "step_id", "prompt", "prompt_ref",
    "append_prompt", "pack_id", "depends_on", "resume_from", "retry_policy",
    "timeout_seconds", "output_schema_ref", "runner_affinity",
    "artifacts_expected", "description", "title", "fake_exit_code",
    "fake_exit_codes", "fake_sleep_seconds", "fake_codex_home_marker",
    "fake_workspace_writes", "fake_workspace_assert_exists", NULL };
static const char *job_keys[] = { "job_id", "working_directory", "steps",
    "pack_id", "workspace_policy", "retention_policy", "description",
    "title", NULL };

static const char *
pack_text(struct json_object *packs, const char *id)
{
	struct json_object *p = NULL, *t = NULL;

	if (id == NULL)
		return NULL;
	json_object_object_get_ex(packs, id, &p);
	json_object_object_get_ex(p, "text", &t);
	return is_str(t) ? json_object_get_string(t) : NULL;
}

/* The step's pack: its own pack_id, else pack (the job's or the default). */
static const char *
v_step_pack(struct phn_lt_ctx *c, struct json_object *st, const char *sp,
    struct json_object *packs, const char *pack)
{
	struct json_object *v;
	char *kp;

	if ((v = phn_json_get(st, "pack_id")) == NULL)
		return pack;
	kp = phn_asprintf("%s.pack_id", sp);
	if (!is_str(v))
		E("%s: must be a string", kp);
	else if (!json_object_object_get_ex(packs, json_object_get_string(v),
	    NULL))
		E("%s: pack \"%s\" is not in packs", kp,
		    json_object_get_string(v));
	else
		pack = json_object_get_string(v);
	free(kp);
	return pack;
}

/*
 * The step's own prompt: inline, or read from prompt_ref into *buf;
 * *mode: the permissions its snapshot may have.
 */
static const char *
v_step_prompt(struct phn_lt_ctx *c, struct json_object *st, const char *sp,
    const struct jobinfo *j, char **buf, mode_t *mode)
{
	struct json_object *pr = NULL, *pf = NULL;
	const char *base = NULL;
	char *kp, *file;
	struct phn_lt_file f;

	*buf = NULL;
	*mode = 0644;
	json_object_object_get_ex(st, "prompt", &pr);
	json_object_object_get_ex(st, "prompt_ref", &pf);
	if (pr != NULL && pf != NULL)
		E("%s: has both prompt and prompt_ref; give exactly one", sp);
	else if (pr == NULL && pf == NULL)
		E("%s: needs a prompt or a prompt_ref", sp);
	else if (pr != NULL) {
		if (!is_str(pr))
			E("%s.prompt: must be a string without \\u0000 (is %s)", sp,
			    phn_json_type(pr));
		else if (json_object_get_string_len(pr) > PHN_PROMPT_MAX_BYTES)
			E("%s.prompt: larger than 1 MiB", sp);
		else if (json_object_get_string_len(pr) == 0)
			E("%s.prompt: must not be empty", sp);
		else
			base = json_object_get_string(pr);
	} else {
		kp = phn_asprintf("%s.prompt_ref", sp);
		if (!is_str(pf) || json_object_get_string_len(pf) == 0)
			E("%s: must be a non-empty file path without \\u0000",
			    kp);
		else if (j->workdir && (file = read_ref(c, j,
		    json_object_get_string(pf), kp, PHN_PROMPT_MAX_BYTES,
		    &f)) != NULL) {
			if (!phn_utf8_valid(f.buf, f.len) ||
			    strlen(f.buf) != f.len) {
				E("%s: %s: not UTF-8 text", kp, file);
				free(f.buf);
			} else {
				base = *buf = f.buf;
				*mode = f.mode & 0644;
			}
			free(f.real);
			free(file);
		}
		free(kp);
	}
	return base;
}

/* The composed prompt: the pack's text, the prompt, append_prompt. */
static void
v_step_compose(struct phn_lt_ctx *c, struct json_object *st, const char *sp,
    const char *pt, const char *base, struct phn_lt_step *ls)
{
	struct json_object *v;

	if ((v = phn_json_get(st, "append_prompt")) != NULL &&
	    !is_str(v))
		E("%s.append_prompt: must be a string or null (is %s)", sp,
		    phn_json_type(v));
	if (base != NULL) {
		char *tp = pt ? trim(pt) : NULL, *s;
		const char *ap = is_str(v) ? json_object_get_string(v) : NULL;

		s = phn_asprintf("%s%s%s%s%s", tp && *tp ? tp : "",
		    tp && *tp ? "\n\n" : "", base, ap && *ap ? "\n\n" : "",
		    ap && *ap ? ap : "");
		ls->prompt = s;
		if (strlen(s) > PHN_PROMPT_MAX_BYTES)
			E("%s: the composed prompt is larger than 1 MiB", sp);
		free(tp);
	}
}

/* output_schema_ref: a JSON object, kept pretty-printed in ls->schema. */
static void
v_step_schema(struct phn_lt_ctx *c, struct json_object *st, const char *sp,
    const struct jobinfo *j, struct phn_lt_step *ls)
{
	struct json_object *v;
	char *kp, *file;
	struct phn_lt_file f;

	ls->schema_mode = 0644;
	if ((v = phn_json_get(st, "output_schema_ref")) == NULL)
		return;
	kp = phn_asprintf("%s.output_schema_ref", sp);
	if (!is_str(v) || json_object_get_string_len(v) == 0)
		E("%s: must be a non-empty file path without \\u0000",
		    kp);
	else if (j->workdir && (file = read_ref(c, j,
	    json_object_get_string(v), kp, PHN_JSON_MAXSZ, &f)) != NULL) {
		char msg[512];
		struct json_object *sch = phn_json_parse(f.buf, f.len, file,
		    msg, sizeof(msg));
		if (sch == NULL)
			E("%s: %s", kp, msg);
		else if (!json_object_is_type(sch, json_type_object))
			E("%s: %s: a JSON Schema must be an object", kp,
			    file);
		else {
			ls->schema = phn_json_pretty(sch);
			ls->schema_mode = f.mode & 0644;
		}
		json_object_put(sch);
		free(f.buf);
		free(f.real);
		free(file);
	}
	free(kp);
}

static void
v_step_artifacts(struct phn_lt_ctx *c, struct json_object *st, const char *sp)
{
	struct json_object *v;
	size_t i, n;

	if ((v = phn_json_get(st, "artifacts_expected")) == NULL)
		return;
	if (!json_object_is_type(v, json_type_array)) {
		E("%s.artifacts_expected: must be an array (is %s)", sp,
		    phn_json_type(v));
		return;
	}
	n = json_object_array_length(v);
	for (i = 0; i < n; i++) {
		struct json_object *a = json_object_array_get_idx(v, i);
		struct json_object *nm = a;

		if (json_object_is_type(a, json_type_object))
			json_object_object_get_ex(a, "name", &nm);
		if (!is_str(nm) || json_object_get_string_len(nm) == 0)
			E("%s.artifacts_expected[%zu]: must be "
			    "{\"name\": FILE} or a file name", sp, i);
		else if (json_object_get_string(nm)[0] == '/' ||
		    strstr(json_object_get_string(nm), ".."))
			E("%s.artifacts_expected[%zu]: must be a "
			    "relative path inside the attempt "
			    "directory", sp, i);
	}
}

/*
 * One step's fields, in this order: keys, pack, prompt (composed into
 * ls->prompt), output schema (ls->schema), timeout, retry policy,
 * runner affinity, expected artifacts.
 */
static void
v_step(struct phn_lt_ctx *c, struct json_object *st, const char *sp,
    struct jobinfo *j, struct json_object *packs, const char *dflt_pack,
    const char *job_pack, struct phn_lt_step *ls)
{
	static const char *affinity[] = { "none", "pin_resume_source",
	    "prefer_resume_source", NULL };
	struct json_object *v;
	const char *pack, *base;
	char *kp, *refbuf;

	json_object_object_foreach(st, k, val) {
		(void)val;
		if (!in(k, step_keys))
			unknown_key(c, sp, k);
	}
	pack = v_step_pack(c, st, sp, packs, job_pack ? job_pack : dflt_pack);
	base = v_step_prompt(c, st, sp, j, &refbuf, &ls->prompt_mode);
	v_step_compose(c, st, sp, pack_text(packs, pack), base, ls);
	free(refbuf);
	v_step_schema(c, st, sp, j, ls);
	if (json_object_object_get_ex(st, "timeout_seconds", &v)) {
		kp = phn_asprintf("%s.timeout_seconds", sp);
		want_num(c, v, kp, 0, 1, 1);
		free(kp);
	}
	if (json_object_object_get_ex(st, "retry_policy", &v)) {
		kp = phn_asprintf("%s.retry_policy", sp);
		v_section(c, "retries", v, kp, 1);
		free(kp);
	}
	if ((v = phn_json_get(st, "runner_affinity")) != NULL) {
		kp = phn_asprintf("%s.runner_affinity", sp);
		want_enum(c, v, kp, affinity);
		free(kp);
	}
	v_step_artifacts(c, st, sp);
}

/* Second pass: depends_on and resume_from, now that every id is known. */
static void
v_edges(struct phn_lt_ctx *c, struct graph *g, size_t self,
    struct json_object *st, const char *sp, const char *job)
{
	static const char *selectors[] = { "latest_successful", "latest",
	    "run_id", NULL };
	struct json_object *v, *x;
	size_t i, n;
	long t;

	if ((v = phn_json_get(st, "depends_on")) != NULL) {
		if (!json_object_is_type(v, json_type_array))
			E("%s.depends_on: must be an array of step ids (is %s)", sp,
			    phn_json_type(v));
		else {
			n = json_object_array_length(v);
			for (i = 0; i < n; i++) {
				x = json_object_array_get_idx(v, i);
				if (!is_str(x)) {
					E("%s.depends_on[%zu]: must be a string "
					    "(STEP or JOB/STEP)", sp, i);
					continue;
				}
				if ((t = node_find(g, job,
				    json_object_get_string(x))) < 0)
					E("%s.depends_on[%zu]: no step \"%s\"%s", sp,
					    i, json_object_get_string(x),
					    strchr(json_object_get_string(x), '/') ?
					    "" : " in this job (use JOB/STEP for "
					    "another job)");
				else
					edge_add(g, self, (size_t)t);
			}
		}
	}
	if ((v = phn_json_get(st, "resume_from")) == NULL)
		return;
	if (!json_object_is_type(v, json_type_object)) {
		E("%s.resume_from: must be an object (is %s)", sp,
		    phn_json_type(v));
		return;
	}
	json_object_object_foreach(v, k, val) {
		(void)val;
		if (strcmp(k, "step_id") && strcmp(k, "selector") &&
		    strcmp(k, "run_id") && strcmp(k, "codex_thread_id")) {
			char *rp = phn_asprintf("%s.resume_from", sp);
			unknown_key(c, rp, k);
			free(rp);
		}
	}
	x = NULL;
	json_object_object_get_ex(v, "step_id", &x);
	if (!is_str(x) || json_object_get_string_len(x) == 0)
		E("%s.resume_from.step_id: required: the step whose session to "
		    "resume (STEP or JOB/STEP)", sp);
	else if ((t = node_find(g, job, json_object_get_string(x))) < 0)
		E("%s.resume_from.step_id: no step \"%s\"", sp,
		    json_object_get_string(x));
	else
		edge_add(g, self, (size_t)t);
	if (json_object_object_get_ex(v, "selector", &x)) {
		char *kp = phn_asprintf("%s.resume_from.selector", sp);
		want_enum(c, x, kp, selectors);
		free(kp);
		if (is_str(x) && strcmp(json_object_get_string(x), "run_id") == 0) {
			struct json_object *r = NULL;
			json_object_object_get_ex(v, "run_id", &r);
			if (!is_str(r) || phn_id_problem(r) != NULL)
				E("%s.resume_from.run_id: selector run_id needs a "
				    "valid run_id", sp);
		}
	} else
		json_object_object_add(v, "selector",
		    json_object_new_string("latest_successful"));
	if ((x = phn_json_get(v, "codex_thread_id")) != NULL &&
	    !is_str(x))
		E("%s.resume_from.codex_thread_id: must be a string", sp);
}

static void
v_top(struct phn_lt_ctx *c, struct json_object *lt)
{
	static const char *forbidden[] = { "effective_defaults",
	    "harness_config_version", "launch_table_sha256", NULL };
	struct json_object *v;
	regex_t re;
	int i;

	for (i = 0; forbidden[i]; i++)
		if (json_object_object_get_ex(lt, forbidden[i], NULL))
			E("%s: set by the harness; remove it from the Launch Table",
			    forbidden[i]);
	if (json_object_object_get_ex(lt, "spec_version", &v)) {
		if (!is_str(v))
			E("spec_version: must be a string like \"1.0.0\" (is %s)",
			    phn_json_type(v));
		else {
			const char *s = json_object_get_string(v);
			regcomp(&re, "^[0-9]+\\.[0-9]+\\.[0-9]+$", REG_EXTENDED |
			    REG_NOSUB);
			if (regexec(&re, s, 0, NULL, 0) != 0)
				E("spec_version: \"%s\" is not MAJOR.MINOR.PATCH "
				    "(e.g. 1.0.0)", s);
			else if (strncmp(s, "1.", 2) != 0)
				E("spec_version: unsupported major version in "
				    "\"%s\"; supported: 1.x.y", s);
			regfree(&re);
		}
	} else
		json_object_object_add(lt, "spec_version",
		    json_object_new_string("1.0.0"));
	if (json_object_object_get_ex(lt, "batch_id", &v)) {
		const char *why = phn_id_problem(v);
		if (why)
			E("batch_id: %s", why);
	}
	if (json_object_object_get_ex(lt, "submitted_at", &v)) {
		double t;
		if (!is_str(v) || phn_iso_parse(json_object_get_string(v), &t))
			E("submitted_at: must be an ISO-8601 time such as "
			    "2026-01-14T14:43:09Z (or leave it out)");
	}
	if (!json_object_object_get_ex(lt, "batch_goal_summary", &v) ||
	    !is_str(v) || json_object_get_string_len(v) == 0)
		E("batch_goal_summary: required: a string describing the batch");
	else {
		long long min = c->cfg ? phn_config_int(c->cfg,
		    "limits.min_goal_summary_words", 151) : 151;
		int w = goal_words(json_object_get_string(v));
		if (w < min)
			E("batch_goal_summary: has %d words; at least %lld are "
			    "required (limits.min_goal_summary_words in the "
			    "harness config)", w, min);
	}
	if ((v = phn_json_get(lt, "concurrency")) != NULL)
		want_int(c, v, "concurrency", 1);
	for (i = 0; sections[i]; i++)
		if (json_object_object_get_ex(lt, sections[i], &v))
			v_section(c, sections[i], v, sections[i], 1);
}

static struct json_object *
v_overrides(struct phn_lt_ctx *c, struct json_object *lt)
{
	struct json_object *ov = NULL;
	const char *name = "defaults_overrides";

	json_object_object_get_ex(lt, "defaults_overrides", &ov);
	if (ov == NULL && json_object_object_get_ex(lt,
	    "effective_defaults_overrides", &ov))
		name = "effective_defaults_overrides";
	if (ov == NULL)
		return NULL;
	if (!json_object_is_type(ov, json_type_object)) {
		E("%s: must be an object (is %s)", name, phn_json_type(ov));
		return NULL;
	}
	json_object_object_foreach(ov, k, v) {
		char *kp = phn_asprintf("%s.%s", name, k);
		if (!in(k, sections)) {
			char *all = join_set(sections);
			E("%s: not a defaults section (want %s)", kp, all);
			free(all);
		} else
			v_section(c, k, v, kp, 1);
		free(kp);
	}
	return ov;
}

/* add_dirs (and its alias add_dir) resolve against the table's directory. */
static void
resolve_dirs(struct phn_lt_ctx *c, struct json_object *ep)
{
	static const char *keys[] = { "add_dirs", "add_dir", NULL };
	struct json_object *v, *out;
	size_t i, n;
	int k;

	for (k = 0; keys[k]; k++) {
		if ((v = phn_json_get(ep, keys[k])) == NULL)
			continue;
		if (is_str(v)) {
			char *a = phn_path_abs(c->base, json_object_get_string(v));
			check_wd_root(c, a, keys[k]);
			json_object_object_add(ep, keys[k], json_object_new_string(a));
			free(a);
			continue;
		}
		if (!json_object_is_type(v, json_type_array))
			continue;
		out = json_object_new_array();
		n = json_object_array_length(v);
		for (i = 0; i < n; i++) {
			struct json_object *x = json_object_array_get_idx(v, i);
			char *a;
			if (!is_str(x))
				continue;
			a = phn_path_abs(c->base, json_object_get_string(x));
			check_wd_root(c, a, keys[k]);
			json_object_array_add(out, json_object_new_string(a));
			free(a);
		}
		json_object_object_add(ep, keys[k], out);
	}
}

/* harness defaults, then the table's top-level sections, then overrides. */
static void
effective(struct phn_lt_ctx *c, struct json_object *lt, struct json_object *ov,
    struct json_object *out)
{
	struct json_object *eff = json_object_new_object(), *d = NULL, *v, *m;
	struct json_object *iv, *sv;
	int i;

	if (c->cfg)
		json_object_object_get_ex(c->cfg->doc, "defaults", &d);
	for (i = 0; sections[i]; i++) {
		struct json_object *cur = NULL;
		if (json_object_object_get_ex(d, sections[i], &v) &&
		    json_object_is_type(v, json_type_object))
			json_object_deep_copy(v, &cur, NULL);
		else
			cur = json_object_new_object();
		if ((v = phn_json_get(lt, sections[i])) != NULL) {
			m = phn_json_merge(cur, v);
			json_object_put(cur);
			cur = m;
		}
		if (ov && json_object_object_get_ex(ov, sections[i], &v)) {
			m = phn_json_merge(cur, v);
			json_object_put(cur);
			cur = m;
		}
		json_object_object_add(eff, sections[i], cur);
	}
	resolve_dirs(c, json_object_object_get(eff, "execution_policy"));
	iv = phn_json_path_get(eff, "scoreboard.heartbeat_interval_seconds");
	sv = phn_json_path_get(eff, "scoreboard.heartbeat_stale_after_seconds");
	if (phn_json_is_int(iv) && phn_json_is_int(sv) &&
	    json_object_get_int64(sv) <= 2 * json_object_get_int64(iv))
		E("scoreboard.heartbeat_stale_after_seconds: the effective value "
		    "(%lld) must exceed twice heartbeat_interval_seconds (%lld)",
		    (long long)json_object_get_int64(sv),
		    (long long)json_object_get_int64(iv));
	json_object_object_add(out, "effective_defaults", eff);
}

static void
v_packs(struct phn_lt_ctx *c, struct json_object *lt, struct json_object **packs,
    const char **dflt)
{
	struct json_object *v;

	*packs = NULL;
	*dflt = NULL;
	if ((v = phn_json_get(lt, "packs")) != NULL) {
		if (!json_object_is_type(v, json_type_object))
			E("packs: must be an object of {PACK_ID: {\"text\": ...}} "
			    "(is %s)", phn_json_type(v));
		else {
			*packs = v;
			json_object_object_foreach(v, k, p) {
				struct json_object *t = NULL;
				if (!phn_id_valid(k, strlen(k)))
					E("packs.%s: pack ids must be 1-128 "
					    "characters of [A-Za-z0-9._-]", k);
				if (!json_object_is_type(p, json_type_object) ||
				    !json_object_object_get_ex(p, "text", &t) ||
				    !is_str(t))
					E("packs.%s: must be an object with a "
					    "string \"text\"", k);
			}
		}
	}
	if ((v = phn_json_get(lt, "default_pack_id")) != NULL) {
		if (!is_str(v))
			E("default_pack_id: must be a string (is %s)",
			    phn_json_type(v));
		else if (!json_object_object_get_ex(*packs,
		    json_object_get_string(v), NULL))
			E("default_pack_id: pack \"%s\" is not in packs",
			    json_object_get_string(v));
		else
			*dflt = json_object_get_string(v);
	}
}

/*
 * One validation, as named steps that share one cleanup path (val_done):
 * val_init copies the table and reads the limits; val_top checks its top
 * level (sections, overrides, packs, working_root) and the jobs array;
 * v_job checks each job and its steps and makes the graph's nodes (pass
 * 1); val_graph adds the dependency edges and looks for cycles (pass 2),
 * then composes the effective defaults.
 */
struct valop {
	struct phn_lt_ctx *c;
	struct json_object *lt, *jobs, *packs, *ov;
	struct json_object *jobids;	/* job id -> its index in jobs */
	const char *dflt_pack;
	char	*wrabs;			/* working_root, absolute */
	char	*lastwd, *lastreal;	/* the last job's workdir, realpath */
	struct jobinfo *ji;
	size_t	 nj;
	struct graph g;
	char	**paths;		/* the steps' JSON paths */
	size_t	 npaths;
	long long maxj, maxs;
	struct refroots roots;
};

static int
val_init(struct valop *r, struct json_object *raw, struct phn_lt_ctx *c)
{
	memset(r, 0, sizeof(*r));
	r->c = c;
	if (!json_object_is_type(raw, json_type_object)) {
		E("(root): a Launch Table must be a JSON object (is %s)",
		    phn_json_type(raw));
		return -1;
	}
	json_object_deep_copy(raw, &r->lt, NULL);
	r->maxj = c->cfg ? phn_config_int(c->cfg, "limits.max_jobs_per_batch",
	    10000) : 10000;
	r->maxs = c->cfg ? phn_config_int(c->cfg, "limits.max_steps_per_job",
	    100) : 100;
	return 0;
}

/* The table's directory and limits.ref_roots (checked by config.c). */
static void
val_roots(struct valop *r)
{
	struct json_object *v = r->c->cfg ? phn_json_path_get(r->c->cfg->doc,
	    "limits.ref_roots") : NULL;
	size_t i, n = json_object_is_type(v, json_type_array) ?
	    json_object_array_length(v) : 0;

	roots_add(&r->roots, r->c->base);
	for (i = 0; i < n; i++)
		if (is_str(json_object_array_get_idx(v, i)))
			roots_add(&r->roots, json_object_get_string(
			    json_object_array_get_idx(v, i)));
}

static void
val_top(struct valop *r)
{
	struct phn_lt_ctx *c = r->c;
	struct json_object *v;
	const char *wr = NULL;

	v_top(c, r->lt);
	r->ov = v_overrides(c, r->lt);
	v_packs(c, r->lt, &r->packs, &r->dflt_pack);
	if ((v = phn_json_get(r->lt, "working_root")) != NULL) {
		if (!is_str(v))
			E("working_root: must be a string (is %s)", phn_json_type(v));
		else
			wr = json_object_get_string(v);
	}
	r->wrabs = wr && *wr ? phn_path_abs(c->base, wr) : phn_strdup(c->base);
	val_roots(r);

	if (!json_object_object_get_ex(r->lt, "jobs", &r->jobs) ||
	    !json_object_is_type(r->jobs, json_type_array) ||
	    json_object_array_length(r->jobs) == 0) {
		E("jobs: required: a non-empty array of jobs");
		r->jobs = NULL;
	} else if ((long long)json_object_array_length(r->jobs) > r->maxj) {
		E("jobs: %zu jobs exceed limits.max_jobs_per_batch (%lld)",
		    json_object_array_length(r->jobs), r->maxj);
		r->jobs = NULL;
	}
	r->nj = r->jobs ? json_object_array_length(r->jobs) : 0;
	r->ji = calloc(r->nj + 1, sizeof(*r->ji));
	r->g.index = json_object_new_object();
	r->jobids = json_object_new_object();
	if (r->ji == NULL)
		phn_die(PHN_EXIT_TEMP, "out of memory");
}

/* jobs[i].job_id: valid (or generated) and unique, else ji[i].ok is 0. */
static void
v_job_id(struct valop *r, size_t i, struct json_object *job)
{
	struct phn_lt_ctx *c = r->c;
	struct jobinfo *j = &r->ji[i];
	struct json_object *v;

	if (json_object_object_get_ex(job, "job_id", &v)) {
		const char *why = phn_id_problem(v);
		if (why)
			E("%s.job_id: %s", j->path, why);
	} else {
		char gen[32];
		snprintf(gen, sizeof(gen), "job_%04zu", i + 1);
		json_object_object_add(job, "job_id",
		    json_object_new_string(gen));
	}
	/*
	 * A job with a bad or duplicate id is still checked field by
	 * field, so every problem shows at once; it only stays out of
	 * the dependency graph.
	 */
	v = json_object_object_get(job, "job_id");
	j->ok = phn_id_problem(v) == NULL;
	j->id = j->ok ? json_object_get_string(v) : "?";
	if (j->ok && json_object_object_get_ex(r->jobids, j->id, &v)) {
		E("%s.job_id: \"%s\" is used by jobs[%d] too; job ids must "
		    "be unique", j->path, j->id, json_object_get_int(v));
		j->ok = 0;
	} else if (j->ok)
		json_object_object_add(r->jobids, j->id,
		    json_object_new_int((int)i));
}

/* The job's other fields; returns its pack_id, if valid. */
static const char *
v_job_fields(struct valop *r, struct jobinfo *j, struct json_object *job)
{
	struct phn_lt_ctx *c = r->c;
	struct json_object *v;
	const char *jp = j->path, *job_pack = NULL;
	struct stat st;

	if (!json_object_object_get_ex(job, "working_directory", &v))
		E("%s.working_directory: required: a directory path", jp);
	else if (!is_str(v))
		E("%s.working_directory: must be a directory path (is %s)",
		    jp, phn_json_type(v));
	else if (json_object_get_string_len(v) == 0)
		E("%s.working_directory: must not be empty", jp);
	else {
		j->workdir = phn_path_abs(r->wrabs, json_object_get_string(v));
		if (c->wd_roots != NULL) {
			char *kp = phn_asprintf("%s.working_directory", jp);
			check_wd_root(c, j->workdir, kp);
			free(kp);
		}
		/* stat, never open: a FIFO there cannot block. */
		if (stat(j->workdir, &st) == -1)
			W("%s.working_directory: %s does not exist yet", jp,
			    j->workdir);
		else if (!S_ISDIR(st.st_mode))
			E("%s.working_directory: %s is %s, not a directory", jp,
			    j->workdir, file_kind(st.st_mode));
		else if (r->lastwd != NULL && strcmp(r->lastwd,
		    j->workdir) == 0 && r->lastreal != NULL)
			j->realwd = phn_strdup(r->lastreal);	/* as the last job's */
		else {
			j->realwd = realpath(j->workdir, NULL);
			free(r->lastwd);
			free(r->lastreal);
			r->lastwd = phn_strdup(j->workdir);
			r->lastreal = j->realwd ? phn_strdup(j->realwd) : NULL;
		}
		json_object_object_add(job, "job_workdir",
		    json_object_new_string(j->workdir));
	}
	if ((v = phn_json_get(job, "pack_id")) != NULL) {
		if (!is_str(v) || !json_object_object_get_ex(r->packs,
		    json_object_get_string(v), NULL))
			E("%s.pack_id: not a pack in packs", jp);
		else
			job_pack = json_object_get_string(v);
	}
	if (json_object_object_get_ex(job, "workspace_policy", &v)) {
		char *kp = phn_asprintf("%s.workspace_policy", jp);
		v_section(c, "workspace_policy", v, kp, 1);
		free(kp);
	}
	if (json_object_object_get_ex(job, "retention_policy", &v)) {
		char *kp = phn_asprintf("%s.retention_policy", jp);
		v_section(c, "retention_policy", v, kp, 1);
		free(kp);
	}
	return job_pack;
}

/*
 * steps[k].step_id: valid (or generated) and unique in the job (stepids);
 * *sid is the id if valid.  Returns 0, or -1 if the step must stay out
 * of the graph.
 */
static int
v_step_id(struct valop *r, struct json_object *st, const char *sp, size_t k,
    struct json_object *stepids, const char **sid)
{
	struct phn_lt_ctx *c = r->c;
	struct json_object *v;
	int ret = 0;

	*sid = NULL;
	if (json_object_object_get_ex(st, "step_id", &v)) {
		const char *why = phn_id_problem(v);
		if (why) {
			E("%s.step_id: %s", sp, why);
			ret = -1;
		}
	} else {
		char gen[32];
		snprintf(gen, sizeof(gen), "step%zu", k + 1);
		json_object_object_add(st, "step_id",
		    json_object_new_string(gen));
	}
	if (phn_id_problem(json_object_object_get(st, "step_id")) == NULL) {
		*sid = json_object_get_string(
		    json_object_object_get(st, "step_id"));
		if (json_object_object_get_ex(stepids, *sid, &v)) {
			E("%s.step_id: \"%s\" is used by steps[%d] "
			    "too; step ids must be unique in a job",
			    sp, *sid, json_object_get_int(v));
			ret = -1;
		} else
			json_object_object_add(stepids, *sid,
			    json_object_new_int((int)k));
	}
	return ret;
}

/*
 * jobs[i].steps[k]: a step with a valid id in a job with a valid id
 * becomes a node of the graph and an entry of c->steps; any other is
 * checked all the same, into a scratch entry.
 */
static void
v_job_step(struct valop *r, struct jobinfo *j, size_t k,
    struct json_object *st, struct json_object *stepids, const char *job_pack)
{
	struct phn_lt_ctx *c = r->c;
	char *sp = phn_asprintf("%s.steps[%zu]", j->path, k);
	const char *sid;
	struct phn_lt_step scratch = { NULL, NULL, NULL, NULL, NULL, 0, 0 };

	r->paths = phn_realloc(r->paths, (r->npaths + 1) * sizeof(*r->paths));
	r->paths[r->npaths++] = sp;
	if (!json_object_is_type(st, json_type_object)) {
		E("%s: must be an object (is %s)", sp, phn_json_type(st));
		return;
	}
	if (v_step_id(r, st, sp, k, stepids, &sid) == -1 || !j->ok) {
		v_step(c, st, sp, j, r->packs, r->dflt_pack, job_pack,
		    &scratch);
		free(scratch.prompt);
		free(scratch.schema);
		return;
	}
	node_add(&r->g, j->id, sid, sp);
	c->steps = phn_realloc(c->steps, (c->nsteps + 1) * sizeof(*c->steps));
	c->steps[c->nsteps].job = j->id;
	c->steps[c->nsteps].step = sid;
	c->steps[c->nsteps].prompt = NULL;
	c->steps[c->nsteps].schema = NULL;
	c->steps[c->nsteps].obj = st;
	c->nsteps++;
	v_step(c, st, sp, j, r->packs, r->dflt_pack, job_pack,
	    &c->steps[c->nsteps - 1]);
}

/* jobs[i] and its steps (pass 1: ids, fields, prompts; the graph's nodes). */
static void
v_job(struct valop *r, size_t i)
{
	struct phn_lt_ctx *c = r->c;
	struct json_object *job = json_object_array_get_idx(r->jobs, i);
	struct json_object *steps, *stepids;
	struct jobinfo *j = &r->ji[i];
	const char *job_pack;
	size_t k, ns;

	j->path = phn_asprintf("jobs[%zu]", i);
	j->roots = &r->roots;
	if (!json_object_is_type(job, json_type_object)) {
		E("%s: must be an object (is %s)", j->path, phn_json_type(job));
		return;
	}
	json_object_object_foreach(job, jk, jv) {
		(void)jv;
		if (!in(jk, job_keys))
			unknown_key(c, j->path, jk);
	}
	v_job_id(r, i, job);
	job_pack = v_job_fields(r, j, job);
	if (!json_object_object_get_ex(job, "steps", &steps) ||
	    !json_object_is_type(steps, json_type_array) ||
	    json_object_array_length(steps) == 0) {
		E("%s.steps: required: a non-empty array of steps", j->path);
		return;
	}
	ns = json_object_array_length(steps);
	if ((long long)ns > r->maxs) {
		E("%s.steps: %zu steps exceed limits.max_steps_per_job "
		    "(%lld)", j->path, ns, r->maxs);
		return;
	}
	stepids = json_object_new_object();
	for (k = 0; k < ns; k++)
		v_job_step(r, j, k, json_object_array_get_idx(steps, k),
		    stepids, job_pack);
	json_object_put(stepids);
}

/* Pass 2: dependency edges (node i is c->steps[i]); then cycles. */
static void
val_graph(struct valop *r)
{
	struct phn_lt_ctx *c = r->c;
	size_t i;

	for (i = 0; i < c->nsteps; i++)
		v_edges(c, &r->g, i, c->steps[i].obj, r->g.v[i].path,
		    c->steps[i].job);
	cycles(c, &r->g);
	effective(c, r->lt, r->ov, r->lt);
}

/* The one cleanup: returns the table, or NULL if there were errors. */
static struct json_object *
val_done(struct valop *r)
{
	size_t i;

	for (i = 0; i < r->g.n; i++) {
		free(r->g.v[i].key);
		free(r->g.v[i].edges);
	}
	free(r->g.v);
	json_object_put(r->g.index);
	json_object_put(r->jobids);
	for (i = 0; i < r->nj; i++) {
		free(r->ji[i].workdir);
		free(r->ji[i].realwd);
		free(r->ji[i].path);
	}
	free(r->ji);
	for (i = 0; i < r->roots.n; i++)
		free(r->roots.v[i]);
	free(r->roots.v);
	for (i = 0; i < r->npaths; i++)
		free(r->paths[i]);
	free(r->paths);
	free(r->wrabs);
	free(r->lastwd);
	free(r->lastreal);
	if (r->c->errs.n > 0) {
		json_object_put(r->lt);
		return NULL;
	}
	return r->lt;
}

/* Record each snapshot's digest in the table itself. */
static void
val_digests(struct phn_lt_ctx *c)
{
	size_t i;

	for (i = 0; i < c->nsteps; i++) {
		char hex[PHN_SHA256_HEX];

		phn_sha256_hex(c->steps[i].prompt, strlen(c->steps[i].prompt), hex);
		json_object_object_add(c->steps[i].obj, "prompt_sha256",
		    json_object_new_string(hex));
		if (c->steps[i].schema) {
			phn_sha256_hex(c->steps[i].schema,
			    strlen(c->steps[i].schema), hex);
			json_object_object_add(c->steps[i].obj,
			    "output_schema_sha256", json_object_new_string(hex));
		}
	}
}

struct json_object *
phn_lt_validate(struct json_object *raw, struct phn_lt_ctx *c)
{
	struct valop r;
	struct json_object *lt;
	size_t i;

	if (val_init(&r, raw, c) == -1)
		return NULL;
	val_top(&r);
	for (i = 0; i < r.nj; i++)
		v_job(&r, i);
	val_graph(&r);
	if ((lt = val_done(&r)) != NULL)
		val_digests(c);
	return lt;
}

void
phn_lt_ctx_free(struct phn_lt_ctx *c)
{
	size_t i;

	for (i = 0; i < c->nsteps; i++) {
		free(c->steps[i].prompt);
		free(c->steps[i].schema);
	}
	free(c->steps);
	c->steps = NULL;
	c->nsteps = 0;
	phn_errs_free(&c->errs);
	phn_errs_free(&c->warns);
}
