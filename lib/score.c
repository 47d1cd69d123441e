/*
 * score.c - derived step statuses and the scoreboards.
 *
 * A batch's scoreboard is computed from batch_meta.json, each job's
 * overrides.json and every attempt's state.json (the source of truth);
 * current.json is consulted only for a pending force-retry.  Nothing is
 * written and no file is created while reading: liveness is tested with
 * phn_lock_held(), which never creates a lock file.
 *
 * Cost: one readdir per step and one read per attempt.  Only a few
 * fields of each state.json are picked, by a small scanner, without
 * building a json-c tree; each step's focal attempt (the active one, else
 * the latest) is parsed fully, and only when an output needs it.
 *
 * Derived status of a step, in this order (the reference's precedence,
 * with its known faults fixed):
 *  1. running: an attempt is queued or running (or has no state.json
 *     yet); attention "orphaned" when its spawner is gone or its claim
 *     lease ran out, "stuck" when the spawner lives but codex has been
 *     silent for stuck_after_seconds (phn_attempt_fault()).
 *  2. forced terminal: an operator mark-failed in overrides.json, read
 *     directly (visible at once), listed in failures and attention;
 *     dependents still count an earlier success, as phn-claim does.
 *  3. succeeded: any attempt succeeded, unless a force-retry is pending.
 *  4. a terminal non-success that the step's retry policy will retry
 *     (attempts left, status or failure kind in retry_on_statuses, or a
 *     harness fault within limits.max_harness_retries, or a pending
 *     force-retry) falls through to 5 with not_before = end + backoff;
 *     otherwise the latest attempt's status: failed, needs_attention or
 *     canceled (attention "failed" / "needs_attention").
 *  5. blocked (with reasons: unmet depends_on, unresolvable resume
 *     source, missing resume base, runner locality, closed batch) or
 *     ready.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

enum { A_QUEUED, A_RUNNING, A_SUCCEEDED, A_FAILED, A_NEEDS, A_CANCELED };
static const char *astatus[] = { "queued", "running", "succeeded", "failed",
    "needs_attention", "canceled", NULL };

enum { D_BLOCKED, D_READY, D_RUNNING, D_SUCCEEDED, D_FAILED, D_NEEDS,
    D_CANCELED, D_N };
static const char *dname[] = { "blocked", "ready", "running", "succeeded",
    "failed", "needs_attention", "canceled" };

/* Attention kinds, in order of severity (the reference's stuck <
 * needs_attention < failed, with orphaned first). */
enum { K_NONE, K_ORPHANED, K_STUCK, K_NEEDS, K_FAILED };
static const char *kname[] = { NULL, "orphaned", "stuck", "needs_attention",
    "failed" };

static const char *ukeys[] = { "input_tokens", "cached_input_tokens",
    "output_tokens", "reasoning_output_tokens" };

struct att {
	char	*name;		/* <stamp>_<run_id> */
	const char *run_id;	/* inside name */
	int	 st;		/* A_* */
	int	 hf;		/* harness fault: does not count */
	double	 started, ended;	/* -1: unknown */
	char	*fk;		/* failure_kind or NULL */
	char	*runner;	/* runner_id or NULL */
};

struct job {
	const char *id;
	struct json_object *def;
	struct json_object *ov;		/* overrides.json steps, or NULL */
	struct json_object *ovdoc;
	struct json_object *cur;	/* current.json, loaded on demand */
	int	 curloaded;
};

struct step {
	const char *id;
	struct json_object *def;
	struct job *jb;
	struct att *a;
	size_t	 na;
	long	 act;		/* index of the active attempt, -1 */
	long	 focal;		/* active, else latest; -1 if none */
	struct json_object *fst; /* focal attempt's state, parsed on demand */
	char	*fbuf;		/* its text until then */
	size_t	 flen;
	long	 lsucc;		/* latest successful (by ended_at), -1 */
	long long usage[4];
	int	 d, kind, fault;
	int	 forced;	/* D_* of a forced terminal, or -1 */
	struct json_object *forced_obj;
	int	 force_pending;
	double	 not_before;	/* ready only: not before (0: now) */
	const char *why_ready;	/* "new", "retry", "force_retry", ... */
	struct json_object *reasons;
	struct json_object *rfr;	/* resume_from_resolved */
};

struct ctx {
	const struct phn_paths *p;
	struct json_object *cfg;
	const char *batch;
	double	 now, lease, stale, stuck;
	long long max_hr;
	struct json_object *meta, *sb;	/* settings: scoreboard object */
	struct job *jobs;
	size_t	 nj;
	struct step *steps;
	size_t	 ns;
	struct step **ix;	/* steps sorted by job, id */
	struct json_object *closed;
	int	 shared_fs, transfer;
	struct json_object *runners;	/* available runner ids, lazily */
	struct json_tokener *tok;
	int	 bfd;		/* the batch directory */
};

/* A JSON object file, parsed without the strict pre-scan (our own). */
static struct json_object *
load(struct ctx *c, const char *path)
{
	char *buf;
	size_t len;
	struct json_object *o;

	if (phn_read_file(path, &buf, &len, PHN_JSON_MAXSZ) == -1)
		return NULL;
	json_tokener_reset(c->tok);
	o = json_tokener_parse_ex(c->tok, buf, (int)len);
	if (o != NULL && (json_tokener_get_error(c->tok) != json_tokener_success
	    || !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	free(buf);
	return o;
}

static void
jset(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add(o, k, v);
}

static struct json_object *
jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static struct json_object *
jcopy(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get(v) : NULL;
}

static double
jtime(struct json_object *o, const char *k)
{
	double t;

	return phn_iso_parse(phn_jstr(o, k), &t) == 0 ? t : -1;
}

static struct json_object *
jage(double now, double t)
{
	return t < 0 ? NULL : json_object_new_int64((int64_t)(now - t));
}

/* A number: the batch's effective scoreboard settings, else the config. */
static double
setting(struct ctx *c, const char *sbkey, const char *cfgpath, double dflt)
{
	struct json_object *v = NULL;

	if (sbkey != NULL && c->sb != NULL)
		json_object_object_get_ex(c->sb, sbkey, &v);
	if (!phn_json_is_num(v))
		v = phn_json_path_get(c->cfg, cfgpath);
	return phn_json_is_num(v) ? json_object_get_double(v) : dflt;
}

static int
astatus_of(const char *s)
{
	int i;

	for (i = 0; s && astatus[i]; i++)
		if (strcmp(s, astatus[i]) == 0)
			return i;
	return -1;
}

static char *
attempt_rel(struct ctx *c, struct step *s, long i)
{
	return phn_asprintf("%s/%s/steps/%s/attempts/%s", c->batch, s->jb->id,
	    s->id, s->a[i].name);
}

static char *
attempt_abs(struct ctx *c, struct step *s, long i)
{
	return phn_asprintf("%s/%s/%s/steps/%s/attempts/%s", c->p->runs,
	    c->batch, s->jb->id, s->id, s->a[i].name);
}

/* Harness faults: the spawner died or the claim was never picked up. */
static int
harness_kind(const char *fk)
{
	return fk != NULL && (strcmp(fk, "orphaned") == 0 ||
	    strcmp(fk, "claim_expired") == 0);
}

/*
 * The fast path: pick the few fields needed from every state.json
 * without building a json-c tree (which dominates the cost for big
 * batches).  Any surprise (an escape in a wanted string, a missing or
 * unknown status, bad syntax) returns -1 and the caller parses the file
 * properly.
 */
static const char *
skipws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
		p++;
	return p;
}

/* p at '"': the end of the string; *esc tells whether it has escapes. */
static const char *
skipstr(const char *p, const char *e, int *esc)
{
	*esc = 0;
	for (p++; p < e; p++) {
		if (*p == '\\') {
			*esc = 1;
			p++;
		} else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static const char *
skipval(const char *p, const char *e, int depth)
{
	int esc;

	p = skipws(p, e);
	if (p >= e || depth > PHN_JSON_MAX_DEPTH)
		return NULL;
	if (*p == '"')
		return skipstr(p, e, &esc);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		p = skipws(p + 1, e);
		if (p < e && *p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				if (p >= e || *p != '"' ||
				    (p = skipstr(p, e, &esc)) == NULL)
					return NULL;
				p = skipws(p, e);
				if (p >= e || *p++ != ':')
					return NULL;
			}
			if ((p = skipval(p, e, depth + 1)) == NULL)
				return NULL;
			p = skipws(p, e);
			if (p < e && *p == ',') {
				p = skipws(p + 1, e);
				continue;
			}
			return p < e && *p == close ? p + 1 : NULL;
		}
	}
	while (p < e && (strchr("+-.0123456789eE", *p) || (*p >= 'a' &&
	    *p <= 'z')))
		p++;
	return p;
}

/* The usage object's four counters. */
static const char *
scan_usage(const char *p, const char *e, long long u[4], int *found)
{
	const char *k, *q;
	size_t kl;
	int esc, i;

	p = skipws(p, e);
	if (p >= e || *p != '{')
		return skipval(p, e, 1);
	p = skipws(p + 1, e);
	if (p < e && *p == '}')
		return p + 1;
	for (;;) {
		if (p >= e || *p != '"' || (q = skipstr(p, e, &esc)) == NULL)
			return NULL;
		k = p + 1;
		kl = (size_t)(q - p - 2);
		p = skipws(q, e);
		if (p >= e || *p++ != ':')
			return NULL;
		p = skipws(p, e);
		for (i = 0; i < 4; i++)
			if (strlen(ukeys[i]) == kl && memcmp(k, ukeys[i], kl) == 0)
				break;
		if (i < 4 && p < e && (*p == '-' || (*p >= '0' && *p <= '9'))) {
			u[i] = strtoll(p, NULL, 10);
			*found = 1;
		}
		if ((p = skipval(p, e, 2)) == NULL)
			return NULL;
		p = skipws(p, e);
		if (p < e && *p == ',') {
			p = skipws(p + 1, e);
			continue;
		}
		return p < e && *p == '}' ? p + 1 : NULL;
	}
}

static int
scan_state(const char *buf, size_t len, struct att *a, long long usage[4])
{
	const char *p = buf, *e = buf + len, *k, *q;
	long long u[4] = { 0 }, ua[4] = { 0 };
	int esc, hu = 0, hua = 0, i;
	size_t kl;
	char tmp[PHN_ISO_LEN];

	a->st = -1;
	a->started = a->ended = -1;
	p = skipws(p, e);
	if (p >= e || *p != '{')
		return -1;
	p = skipws(p + 1, e);
	while (p < e && *p != '}') {
		if (*p != '"' || (q = skipstr(p, e, &esc)) == NULL || esc)
			return -1;
		k = p + 1;
		kl = (size_t)(q - p - 2);
		p = skipws(q, e);
		if (p >= e || *p++ != ':')
			return -1;
		p = skipws(p, e);
#define KEY(s) (kl == sizeof(s) - 1 && memcmp(k, s, kl) == 0)
		if (KEY("usage"))
			q = scan_usage(p, e, u, &hu);
		else if (KEY("usage_attempt"))
			q = scan_usage(p, e, ua, &hua);
		else if (KEY("harness_fault")) {
			a->hf = p + 4 <= e && memcmp(p, "true", 4) == 0;
			q = skipval(p, e, 1);
		} else if (*p == '"' && (KEY("status") || KEY("started_at") ||
		    KEY("ended_at") || KEY("failure_kind") || KEY("runner_id"))) {
			if ((q = skipstr(p, e, &esc)) == NULL || esc ||
			    q - p - 2 >= PHN_ISO_LEN)
				return -1;
			snprintf(tmp, sizeof(tmp), "%.*s", (int)(q - p - 2), p + 1);
			if (KEY("status"))
				a->st = astatus_of(tmp);
			else if (KEY("started_at"))
				phn_iso_parse(tmp, &a->started);
			else if (KEY("ended_at"))
				phn_iso_parse(tmp, &a->ended);
			else if (KEY("failure_kind"))
				a->fk = phn_strdup(tmp);
			else
				a->runner = phn_strdup(tmp);
		} else
			q = skipval(p, e, 1);
#undef KEY
		if ((p = q) == NULL)
			return -1;
		p = skipws(p, e);
		if (p < e && *p == ',')
			p = skipws(p + 1, e);
		else if (p >= e || *p != '}')
			return -1;
	}
	if (a->st < 0)
		return -1;
	a->hf |= harness_kind(a->fk);
	for (i = 0; i < 4; i++)
		usage[i] += hua ? ua[i] : u[i];
	return 0;
}

/* The full path: fields from a parsed state. */
static void
from_state(struct step *s, struct json_object *st, struct att *a)
{
	struct json_object *u, *v;
	int i;

	a->st = astatus_of(phn_jstr(st, "status"));
	a->hf = json_object_object_get_ex(st, "harness_fault", &v) &&
	    json_object_get_boolean(v);
	a->started = jtime(st, "started_at");
	a->ended = jtime(st, "ended_at");
	free(a->fk);
	free(a->runner);
	a->fk = phn_jstr(st, "failure_kind") ?
	    phn_strdup(phn_jstr(st, "failure_kind")) : NULL;
	a->runner = phn_jstr(st, "runner_id") ?
	    phn_strdup(phn_jstr(st, "runner_id")) : NULL;
	a->hf |= harness_kind(a->fk);
	/* usage is cumulative per codex thread; a resumed attempt also
	 * records its own share as usage_attempt. */
	if (json_object_object_get_ex(st, "usage_attempt", &u) ||
	    json_object_object_get_ex(st, "usage", &u))
		for (i = 0; i < 4; i++)
			if (json_object_object_get_ex(u, ukeys[i], &v) &&
			    phn_json_is_int(v))
				s->usage[i] += json_object_get_int64(v);
}

/* A stand-in state for a missing or broken state.json. */
static struct json_object *
fake_state(struct ctx *c, int dfd, const char *name, int missing)
{
	struct json_object *st = json_object_new_object();
	char iso[PHN_ISO_LEN];
	struct stat sb;

	if (missing) {
		/* Being created, or its claimer died: queued since the dir. */
		jset(st, "status", json_object_new_string("queued"));
		phn_iso(fstatat(dfd, name, &sb, 0) == 0 ? (double)sb.st_mtime :
		    c->now, iso);
		jset(st, "claimed_at", json_object_new_string(iso));
		jset(st, "current_item",
		    json_object_new_string("queued/initializing"));
		jset(st, "state_missing", json_object_new_boolean(1));
	} else {
		jset(st, "status", json_object_new_string("needs_attention"));
		jset(st, "errors", json_object_new_array());
		json_object_array_add(json_object_object_get(st, "errors"),
		    json_object_new_string("state.json unreadable or invalid"));
		jset(st, "state_corrupt", json_object_new_boolean(1));
	}
	return st;
}

static struct json_object *
parse(struct ctx *c, const char *buf, size_t len)
{
	struct json_object *o;

	json_tokener_reset(c->tok);
	o = json_tokener_parse_ex(c->tok, buf, (int)len);
	if (o != NULL && (json_tokener_get_error(c->tok) != json_tokener_success
	    || !json_object_is_type(o, json_type_object) ||
	    astatus_of(phn_jstr(o, "status")) < 0)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

/* Read a file relative to a directory fd; -1 with errno. */
static int
read_at(int dfd, const char *rel, char **bufp, size_t *lenp)
{
	struct stat sb;
	char *buf;
	size_t len = 0, cap;
	ssize_t n;
	int fd, e;

	if ((fd = openat(dfd, rel, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	cap = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) ?
	    (size_t)sb.st_size + 1 : 4096;
	buf = phn_malloc(cap + 1);
	for (;;) {
		if (len == cap) {
			if (cap > PHN_JSON_MAXSZ) {
				free(buf);
				close(fd);
				errno = EFBIG;
				return -1;
			}
			cap *= 2;
			buf = phn_realloc(buf, cap + 1);
		}
		if ((n = read(fd, buf + len, cap - len)) == -1) {
			if (errno == EINTR)
				continue;
			e = errno;
			free(buf);
			close(fd);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
}

static int
namecmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static void
read_step(struct ctx *c, struct step *s)
{
	char *ad = phn_asprintf("%s/steps/%s/attempts", s->jb->id, s->id);
	char **v = NULL, *buf, *fbuf = NULL, *rel;
	size_t n = 0, i, len = 0, flen = 0;
	struct dirent *de;
	DIR *d;
	int dfd, dfd2;

	s->act = s->focal = s->lsucc = -1;
	s->forced = -1;
	dfd = openat(c->bfd, ad, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(ad);
	if (dfd == -1)
		return;
	if ((dfd2 = dup(dfd)) == -1 || (d = fdopendir(dfd2)) == NULL) {
		if (dfd2 != -1)
			close(dfd2);
		close(dfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		v = phn_realloc(v, (n + 1) * sizeof(*v));
		v[n++] = phn_strdup(de->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), namecmp);
	s->a = phn_malloc((n ? n : 1) * sizeof(*s->a));
	for (i = 0; i < n; i++) {
		struct att *a = &s->a[s->na];
		struct json_object *st = NULL;
		const char *rid;
		int focal;

		memset(a, 0, sizeof(*a));
		a->name = v[i];
		rid = strstr(v[i], "run_");
		a->run_id = rid ? rid : v[i];
		rel = phn_asprintf("%s/state.json", v[i]);
		if (read_at(dfd, rel, &buf, &len) == -1) {
			st = fake_state(c, dfd, v[i], errno == ENOENT);
			buf = NULL;
			from_state(s, st, a);
		} else if (scan_state(buf, len, a, s->usage) == -1) {
			if ((st = parse(c, buf, len)) == NULL)
				st = fake_state(c, dfd, v[i], 0);
			from_state(s, st, a);
		}
		free(rel);
		focal = a->st == A_QUEUED || a->st == A_RUNNING || s->act < 0;
		if (a->st == A_QUEUED || a->st == A_RUNNING)
			s->act = (long)s->na;
		if (focal) {
			/* keep this one's state; parse it fully later */
			json_object_put(s->fst);
			free(fbuf);
			s->fst = st;
			fbuf = st ? NULL : buf;
			flen = len;
			if (st != NULL)
				free(buf);
			s->focal = (long)s->na;
		} else {
			json_object_put(st);
			free(buf);
		}
		if (a->st == A_SUCCEEDED && (s->lsucc < 0 ||
		    a->ended >= s->a[s->lsucc].ended))
			s->lsucc = (long)s->na;
		s->na++;
	}
	s->fbuf = fbuf;
	s->flen = flen;
	free(v);	/* the names now belong to s->a */
	close(dfd);
}

/* The focal attempt's state, parsed when first needed. */
static struct json_object *
fst(struct ctx *c, struct step *s)
{
	if (s->fst == NULL && s->fbuf != NULL) {
		if ((s->fst = parse(c, s->fbuf, s->flen)) == NULL)
			s->fst = fake_state(c, -1, NULL, 0);
		free(s->fbuf);
		s->fbuf = NULL;
	}
	return s->fst;
}

static int
ixcmp(const void *x, const void *y)
{
	const struct step *a = *(struct step *const *)x;
	const struct step *b = *(struct step *const *)y;
	int r = strcmp(a->jb->id, b->jb->id);

	return r ? r : strcmp(a->id, b->id);
}

/* The step a depends_on / resume_from entry names: STEP or JOB/STEP. */
static struct step *
find_step(struct ctx *c, const char *job, const char *ref)
{
	const char *sl = strchr(ref, '/');
	struct job jk;
	struct step sk, *kp = &sk, **r;
	char *j = NULL;

	if (sl != NULL) {
		j = phn_asprintf("%.*s", (int)(sl - ref), ref);
		jk.id = j;
		sk.id = sl + 1;
	} else {
		jk.id = job;
		sk.id = ref;
	}
	sk.jb = &jk;
	r = bsearch(&kp, c->ix, c->ns, sizeof(*c->ix), ixcmp);
	free(j);
	return r ? *r : NULL;
}

/* A dependency is met when the step has a succeeded attempt (even if an
 * operator marked it failed later, as phn-claim sees it). */
static int
dep_ok(struct step *d)
{
	return d->lsucc >= 0;
}

static struct json_object *
ov_step(struct step *s)
{
	struct json_object *o;

	if (s->jb->ov == NULL ||
	    !json_object_object_get_ex(s->jb->ov, s->id, &o) ||
	    !json_object_is_type(o, json_type_object))
		return NULL;
	return o;
}

/*
 * A force-retry is pending when overrides.json's force_retry_nonce is
 * greater than the nonce the claimer applied: force_retry_applied_nonce
 * in current.json or in the newest meta.json that has it.
 */
static int
force_pending(struct ctx *c, struct step *s)
{
	struct json_object *o = ov_step(s), *v;
	int64_t want, have = 0;
	size_t i;

	if (o == NULL || !json_object_object_get_ex(o, "force_retry_nonce", &v) ||
	    !phn_json_is_int(v) || (want = json_object_get_int64(v)) <= 0)
		return 0;
	if (!s->jb->curloaded) {
		s->jb->cur = phn_current_read(c->p, c->batch, s->jb->id);
		s->jb->curloaded = 1;
	}
	v = phn_json_path_get(s->jb->cur, "steps");
	if (v && json_object_object_get_ex(v, s->id, &v) &&
	    json_object_object_get_ex(v, "force_retry_applied_nonce", &v) &&
	    phn_json_is_int(v))
		have = json_object_get_int64(v);
	for (i = s->na; i > 0 && have < want; i--) {
		char *f = phn_asprintf("%s/%s/%s/steps/%s/attempts/%s/meta.json",
		    c->p->runs, c->batch, s->jb->id, s->id, s->a[i - 1].name);
		struct json_object *m = load(c, f);
		int got = 0;
		free(f);
		if (m && json_object_object_get_ex(m,
		    "force_retry_applied_nonce", &v) && phn_json_is_int(v)) {
			if (json_object_get_int64(v) > have)
				have = json_object_get_int64(v);
			got = 1;
		}
		json_object_put(m);
		if (got)
			break;
	}
	return want > have;
}

static void
read_forced(struct step *s)
{
	struct json_object *o = ov_step(s), *f;
	const char *st;

	if (o == NULL || !json_object_object_get_ex(o, "forced_terminal", &f) ||
	    (st = phn_jstr(f, "status")) == NULL)
		return;
	if (strcmp(st, "failed") == 0)
		s->forced = D_FAILED;
	else if (strcmp(st, "needs_attention") == 0)
		s->forced = D_NEEDS;
	else if (strcmp(st, "canceled") == 0)
		s->forced = D_CANCELED;
	if (s->forced >= 0)
		s->forced_obj = f;
}

/* The step's retry policy: its own retry_policy, else the batch's. */
static struct json_object *
policy(struct ctx *c, struct step *s)
{
	struct json_object *v;

	if (json_object_object_get_ex(s->def, "retry_policy", &v) &&
	    json_object_is_type(v, json_type_object) &&
	    json_object_object_length(v) > 0)
		return v;
	v = phn_json_path_get(c->meta, "effective_defaults.retries");
	return json_object_is_type(v, json_type_object) ? v : NULL;
}

static int
in_list(struct json_object *l, const char *a, const char *b)
{
	size_t i, n;

	if (!json_object_is_type(l, json_type_array))
		return a && strcmp(a, "failed") == 0;
	n = json_object_array_length(l);
	for (i = 0; i < n; i++) {
		const char *x = json_object_get_string(
		    json_object_array_get_idx(l, i));
		if (x && ((a && strcmp(x, a) == 0) || (b && strcmp(x, b) == 0)))
			return 1;
	}
	return 0;
}

/* phn-claim's deterministic jitter in [0, 1) from the attempt's name. */
static double
unit_hash(const char *s)
{
	unsigned long long h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (double)(h % 1000003ULL) / 1000003.0;
}

/* Backoff before the attempt after n counted ones, the latest named
 * name: a number, or {base, factor, max, jitter} as phn-claim has it. */
static double
backoff(struct json_object *pol, long n, const char *name)
{
	struct json_object *b = NULL, *v;
	double base = 0, factor = 2, max = -1, jit = 0, d;

	json_object_object_get_ex(pol, "backoff_seconds", &b);
	if (phn_json_is_num(b))
		return json_object_get_double(b) > 0 ?
		    json_object_get_double(b) : 0;
	if (!json_object_is_type(b, json_type_object))
		return 0;
	if (json_object_object_get_ex(b, "base", &v) && phn_json_is_num(v))
		base = json_object_get_double(v);
	if (json_object_object_get_ex(b, "factor", &v) && phn_json_is_num(v))
		factor = json_object_get_double(v);
	if (json_object_object_get_ex(b, "max", &v) && phn_json_is_num(v))
		max = json_object_get_double(v);
	if (json_object_object_get_ex(b, "jitter", &v) && phn_json_is_num(v))
		jit = json_object_get_double(v);
	d = base * pow(factor, (double)(n > 0 ? n - 1 : 0));
	if (max >= 0 && d > max)
		d = max;
	if (jit > 0)
		d *= 1 + jit * (2 * unit_hash(name) - 1);
	return d > 0 && isfinite(d) ? d : 0;
}

/*
 * Will the claimer run this step (again)?  Sets not_before and why.
 */
static int
wants_run(struct ctx *c, struct step *s)
{
	struct json_object *pol, *v;
	struct att *l;
	long counted = 0, hf = 0, i, max = 1;

	if (s->force_pending) {
		s->why_ready = "force_retry";
		return 1;
	}
	if (s->na == 0) {
		s->why_ready = "new";
		return 1;
	}
	l = &s->a[s->na - 1];
	if (l->st == A_SUCCEEDED)
		return 0;
	for (i = (long)s->na - 1; i >= 0 && s->a[i].hf; i--)
		hf++;
	if (hf > 0) {
		s->why_ready = "harness_retry";
		return hf <= c->max_hr;
	}
	for (i = 0; i < (long)s->na; i++)
		if (!s->a[i].hf)
			counted++;
	pol = policy(c, s);
	if (pol && json_object_object_get_ex(pol, "max_attempts", &v) &&
	    phn_json_is_int(v))
		max = json_object_get_int64(v);
	v = NULL;
	if (pol)
		json_object_object_get_ex(pol, "retry_on_statuses", &v);
	if (counted >= max || !in_list(v, astatus[l->st], l->fk))
		return 0;
	if (l->ended >= 0)
		s->not_before = l->ended + backoff(pol, counted, l->name);
	if (s->not_before <= c->now)
		s->not_before = 0;
	s->why_ready = "retry";
	return 1;
}

static void
reason(struct step *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
reason(struct step *s, const char *fmt, ...)
{
	va_list ap;
	char *m;

	va_start(ap, fmt);
	m = phn_vasprintf(fmt, ap);
	va_end(ap);
	if (s->reasons == NULL)
		s->reasons = json_object_new_array();
	json_object_array_add(s->reasons, json_object_new_string(m));
	free(m);
}

static struct json_object *
available_runners(struct ctx *c)
{
	struct json_object *ids = phn_json_path_get(c->cfg,
	    "defaults.runner_pool.runner_ids");
	char **v;
	size_t n, i;

	if (c->runners != NULL)
		return c->runners;
	c->runners = json_object_new_array();
	if (json_object_is_type(ids, json_type_array) &&
	    json_object_array_length(ids) > 0) {
		for (i = 0; i < json_object_array_length(ids); i++)
			json_object_array_add(c->runners, json_object_get(
			    json_object_array_get_idx(ids, i)));
		return c->runners;
	}
	if ((v = phn_dir_list(c->p->runners, &n)) == NULL)
		return c->runners;
	for (i = 0; i < n; i++) {
		char *f = phn_asprintf("%s/%s/health.json", c->p->runners, v[i]);
		if (access(f, F_OK) == 0)
			json_object_array_add(c->runners,
			    json_object_new_string(v[i]));
		free(f);
	}
	phn_dir_list_free(v, n);
	return c->runners;
}

/*
 * Resolve a resume source with its selector; fills s->rfr and adds a
 * reason when the step could not start from it.
 */
static void
resolve_resume(struct ctx *c, struct step *s)
{
	struct json_object *rf, *r;
	const char *ref, *sel, *rid;
	struct step *src;
	char *err = NULL, *rel = NULL, *base = NULL, *abs;
	long i, pick = -1;
	struct stat sb;

	if (!json_object_object_get_ex(s->def, "resume_from", &rf) ||
	    !json_object_is_type(rf, json_type_object))
		return;
	ref = phn_jstr(rf, "step_id");
	sel = phn_jstr(rf, "selector");
	rid = phn_jstr(rf, "run_id");
	if (sel == NULL)
		sel = rid ? "run_id" : "latest_successful";
	r = json_object_new_object();
	jset(r, "resume_from_step_id", jstr(ref));
	jset(r, "selector", json_object_new_string(sel));
	s->rfr = r;
	if (ref == NULL) {
		err = phn_strdup("resume_from.step_id is required");
		goto fail;
	}
	if ((src = find_step(c, s->jb->id, ref)) == NULL) {
		err = phn_asprintf("resume_from source step not found: %s", ref);
		goto fail;
	}
	if (strcmp(sel, "run_id") == 0) {
		if (rid == NULL) {
			err = phn_strdup("resume_from.run_id is required when "
			    "selector=run_id");
			goto fail;
		}
		for (i = 0; i < (long)src->na; i++)
			if (strcmp(src->a[i].run_id, rid) == 0)
				pick = i;
		if (pick < 0) {
			err = phn_asprintf("resume_from cannot resolve source "
			    "attempt: %s selector=run_id run_id=%s", ref, rid);
			goto fail;
		}
		if (src->a[pick].st == A_QUEUED || src->a[pick].st == A_RUNNING) {
			err = phn_asprintf("resume_from source attempt not "
			    "terminal: %s run_id=%s status=%s", ref, rid,
			    astatus[src->a[pick].st]);
			goto fail;
		}
	} else if (src->act >= 0) {
		err = phn_asprintf("resume_from source has an unfinished "
		    "attempt: %s run_id=%s", ref, src->a[src->act].run_id);
		goto fail;
	} else if (strcmp(sel, "latest") == 0) {
		for (i = (long)src->na - 1; i >= 0 && pick < 0; i--)
			if (src->a[i].st != A_QUEUED && src->a[i].st != A_RUNNING)
				pick = i;
	} else
		pick = src->lsucc;
	if (pick < 0) {
		err = phn_asprintf("resume_from cannot resolve source attempt: "
		    "%s selector=%s", ref, sel);
		goto fail;
	}
	rel = attempt_rel(c, src, pick);
	base = phn_asprintf("%s/codex_home", rel);
	jset(r, "selected_run_id", json_object_new_string(src->a[pick].run_id));
	jset(r, "resume_base_dir", json_object_new_string(base));
	abs = phn_path_join(c->p->runs, base);
	if (stat(abs, &sb) == -1 || !S_ISDIR(sb.st_mode))
		reason(s, "resume_from: resume base missing: %s", base);
	else if (!c->shared_fs && !c->transfer) {
		struct json_object *av = available_runners(c);
		const char *sr = src->a[pick].runner;
		size_t k, n = json_object_array_length(av);
		int found = 0;

		for (k = 0; sr && k < n; k++)
			if (strcmp(json_object_get_string(
			    json_object_array_get_idx(av, k)), sr) == 0)
				found = 1;
		if (sr == NULL)
			reason(s, "resume_from locality: cannot determine source "
			    "runner_id for %s.%s", src->jb->id, src->id);
		else if (n > 0 && !found)
			reason(s, "resume_from locality: source runner %s not "
			    "available (shared_filesystem=false)", sr);
	}
	free(abs);
	free(rel);
	free(base);
	return;
fail:
	jset(r, "selected_run_id", NULL);
	jset(r, "resume_base_dir", NULL);
	jset(r, "error", json_object_new_string(err));
	reason(s, "resume_from: cannot resolve source: %s", err);
	free(err);
}

static void
derive(struct ctx *c, struct step *s)
{
	struct json_object *deps;
	size_t i, n;

	s->force_pending = force_pending(c, s);
	resolve_resume(c, s);
	if (s->act >= 0) {
		char *dir = attempt_abs(c, s, s->act);
		s->d = D_RUNNING;
		s->fault = phn_attempt_fault(dir, fst(c, s), c->now, c->lease,
		    c->stale, c->stuck);
		free(dir);
		if (s->fault == PHN_FAULT_ORPHAN || s->fault == PHN_FAULT_LEASE)
			s->kind = K_ORPHANED;
		else if (s->fault == PHN_FAULT_STUCK)
			s->kind = K_STUCK;
		return;
	}
	if (s->forced >= 0) {
		s->d = s->forced;
		goto terminal;
	}
	if (s->lsucc >= 0 && !s->force_pending) {
		s->d = D_SUCCEEDED;
		return;
	}
	if (c->closed != NULL || !wants_run(c, s)) {
		if (s->na == 0 || s->a[s->na - 1].st == A_SUCCEEDED) {
			/* closed before it ran (or before its force-retry) */
			s->d = s->lsucc >= 0 ? D_SUCCEEDED : D_BLOCKED;
			if (s->d == D_BLOCKED)
				reason(s, "batch closed: %s", phn_jstr(c->closed,
				    "reason") ? phn_jstr(c->closed, "reason") :
				    "no reason given");
			return;
		}
		s->d = s->a[s->na - 1].st == A_NEEDS ? D_NEEDS :
		    s->a[s->na - 1].st == A_CANCELED ? D_CANCELED : D_FAILED;
		goto terminal;
	}
	if (json_object_object_get_ex(s->def, "depends_on", &deps) &&
	    json_object_is_type(deps, json_type_array)) {
		n = json_object_array_length(deps);
		for (i = 0; i < n; i++) {
			const char *ref = json_object_get_string(
			    json_object_array_get_idx(deps, i));
			struct step *d = ref ? find_step(c, s->jb->id, ref) : NULL;
			if (d == NULL)
				reason(s, "depends_on: %s not found", ref ? ref : "?");
			else if (!dep_ok(d))
				reason(s, "depends_on: %s.%s not succeeded",
				    d->jb->id, d->id);
		}
	}
	if (s->reasons != NULL) {
		/* The resume reasons were added first; dependencies go first. */
		size_t nr = json_object_array_length(s->reasons), k;
		struct json_object *o = json_object_new_array();
		for (k = 0; k < nr; k++) {
			struct json_object *x = json_object_array_get_idx(
			    s->reasons, k);
			if (strncmp(json_object_get_string(x), "depends_on", 10) == 0)
				json_object_array_add(o, json_object_get(x));
		}
		for (k = 0; k < nr; k++) {
			struct json_object *x = json_object_array_get_idx(
			    s->reasons, k);
			if (strncmp(json_object_get_string(x), "depends_on", 10))
				json_object_array_add(o, json_object_get(x));
		}
		json_object_put(s->reasons);
		s->reasons = o;
		s->d = D_BLOCKED;
		s->not_before = 0;
	} else
		s->d = D_READY;
	return;
terminal:
	s->kind = s->d == D_FAILED ? K_FAILED : s->d == D_NEEDS ? K_NEEDS :
	    K_NONE;
}

/* --- building the outputs ------------------------------------------ */

static struct json_object *
running_item(struct ctx *c, struct step *s)
{
	struct json_object *o = json_object_new_object(), *st = fst(c, s);
	const char *ci = phn_jstr(st, "current_item");
	char *rel = attempt_rel(c, s, s->act);
	double hb = jtime(st, "last_heartbeat_at"), sa = jtime(st, "started_at");
	double ev = jtime(st, "last_event_at");

	jset(o, "job_id", json_object_new_string(s->jb->id));
	jset(o, "step_id", json_object_new_string(s->id));
	jset(o, "run_id", json_object_new_string(s->a[s->act].run_id));
	jset(o, "runner_id", jstr(s->a[s->act].runner));
	jset(o, "attempt_dir", json_object_new_string(rel));
	jset(o, "state_status", jstr(phn_jstr(st, "status")));
	if ((ci == NULL || *ci == '\0') && s->a[s->act].st == A_QUEUED)
		ci = "queued/initializing";
	jset(o, "current_item", ci && *ci ? json_object_new_string(ci) : NULL);
	jset(o, "last_heartbeat_at", jcopy(st, "last_heartbeat_at"));
	jset(o, "seconds_since_last_heartbeat", jage(c->now, hb));
	jset(o, "last_event_at", jcopy(st, "last_event_at"));
	jset(o, "seconds_since_last_event", jage(c->now, ev));
	jset(o, "started_at", jcopy(st, "started_at"));
	jset(o, "run_duration_seconds", jage(c->now, sa));
	if (s->rfr)
		jset(o, "resume_from_resolved", json_object_get(s->rfr));
	free(rel);
	return o;
}

static const char *
fault_reason(int fault)
{
	switch (fault) {
	case PHN_FAULT_LEASE:
		return "claim lease expired before phn-spawn picked it up";
	case PHN_FAULT_ORPHAN:
		return "spawner gone (spawn.lock free or heartbeat stale)";
	case PHN_FAULT_STUCK:
		return "no codex event for stuck_after_seconds";
	}
	return NULL;
}

static void
final_fields(struct ctx *c, struct step *s, struct json_object *o)
{
	char *dir, *f;
	struct json_object *fin = NULL;

	if (s->focal >= 0) {
		dir = attempt_abs(c, s, s->focal);
		f = phn_path_join(dir, "final.json");
		fin = load(c, f);
		free(f);
		free(dir);
	}
	jset(o, "final_status", fin ? jcopy(fin, "status") : NULL);
	jset(o, "final_summary", fin ? jcopy(fin, "summary") : NULL);
	json_object_put(fin);
}

static struct json_object *
failure_item(struct ctx *c, struct step *s)
{
	struct json_object *o = json_object_new_object(), *st = fst(c, s);
	char *rel = s->focal >= 0 ? attempt_rel(c, s, s->focal) : NULL;

	jset(o, "job_id", json_object_new_string(s->jb->id));
	jset(o, "step_id", json_object_new_string(s->id));
	jset(o, "run_id", s->focal >= 0 ?
	    json_object_new_string(s->a[s->focal].run_id) : NULL);
	jset(o, "attempt_dir", jstr(rel));
	jset(o, "state_status", st ? jcopy(st, "status") : NULL);
	jset(o, "exit_code", st ? jcopy(st, "exit_code") : NULL);
	jset(o, "failure_kind", st ? jcopy(st, "failure_kind") : NULL);
	final_fields(c, s, o);
	if (s->forced >= 0)
		jset(o, "forced_terminal", json_object_get(s->forced_obj));
	if (s->rfr)
		jset(o, "resume_from_resolved", json_object_get(s->rfr));
	free(rel);
	return o;
}

static struct json_object *
usage_obj(const long long u[4])
{
	struct json_object *o = json_object_new_object();
	int i;

	for (i = 0; i < 4; i++)
		jset(o, ukeys[i], json_object_new_int64(u[i]));
	return o;
}

static struct json_object *
iso_or_null(double t)
{
	char iso[PHN_ISO_LEN];

	if (t <= 0)
		return NULL;
	phn_iso(t, iso);
	return json_object_new_string(iso);
}

/* The per-step record (phn-score --steps). */
static struct json_object *
step_record(struct ctx *c, struct step *s)
{
	struct json_object *o = json_object_new_object(), *st = fst(c, s);
	char *rel = s->focal >= 0 ? attempt_rel(c, s, s->focal) : NULL;
	long counted = 0;
	size_t i;

	for (i = 0; i < s->na; i++)
		if (!s->a[i].hf)
			counted++;
	jset(o, "batch_id", json_object_new_string(c->batch));
	jset(o, "job_id", json_object_new_string(s->jb->id));
	jset(o, "step_id", json_object_new_string(s->id));
	jset(o, "status", json_object_new_string(dname[s->d]));
	jset(o, "attention", jstr(kname[s->kind]));
	jset(o, "attention_reason", s->kind == K_ORPHANED || s->kind ==
	    K_STUCK ? jstr(fault_reason(s->fault)) : NULL);
	jset(o, "reasons", s->reasons ? json_object_get(s->reasons) :
	    json_object_new_array());
	jset(o, "attempts", json_object_new_int64((int64_t)s->na));
	jset(o, "attempts_counted", json_object_new_int64(counted));
	jset(o, "run_id", s->focal >= 0 ?
	    json_object_new_string(s->a[s->focal].run_id) : NULL);
	jset(o, "attempt_dir", jstr(rel));
	jset(o, "state_status", st ? jcopy(st, "status") : NULL);
	jset(o, "failure_kind", st ? jcopy(st, "failure_kind") : NULL);
	jset(o, "exit_code", st ? jcopy(st, "exit_code") : NULL);
	jset(o, "runner_id", s->focal >= 0 ? jstr(s->a[s->focal].runner) :
	    NULL);
	jset(o, "claimed_at", st ? jcopy(st, "claimed_at") : NULL);
	jset(o, "started_at", st ? jcopy(st, "started_at") : NULL);
	jset(o, "ended_at", st ? jcopy(st, "ended_at") : NULL);
	jset(o, "last_heartbeat_at", st ? jcopy(st, "last_heartbeat_at") : NULL);
	jset(o, "last_event_at", st ? jcopy(st, "last_event_at") : NULL);
	if (s->act >= 0 && s->a[s->act].st == A_QUEUED &&
	    (phn_jstr(st, "current_item") == NULL ||
	    *phn_jstr(st, "current_item") == '\0'))
		jset(o, "current_item",
		    json_object_new_string("queued/initializing"));
	else
		jset(o, "current_item", st ? jcopy(st, "current_item") : NULL);
	jset(o, "usage", usage_obj(s->usage));
	jset(o, "not_before", s->d == D_READY ? iso_or_null(s->not_before) :
	    NULL);
	jset(o, "forced_terminal", s->forced >= 0 ?
	    json_object_get(s->forced_obj) : NULL);
	jset(o, "force_retry_pending", json_object_new_boolean(
	    s->force_pending));
	jset(o, "resume_from_resolved", s->rfr ? json_object_get(s->rfr) : NULL);
	free(rel);
	return o;
}

static int
attn_cmp(const void *x, const void *y)
{
	struct json_object *a = *(struct json_object *const *)x;
	struct json_object *b = *(struct json_object *const *)y;
	int ka = 0, kb = 0, i;
	const char *sa = phn_jstr(a, "kind"), *sb = phn_jstr(b, "kind");

	for (i = 1; i <= K_FAILED; i++) {
		if (sa && strcmp(sa, kname[i]) == 0)
			ka = i;
		if (sb && strcmp(sb, kname[i]) == 0)
			kb = i;
	}
	if (ka != kb)
		return ka - kb;
	/* stable: the original position, stored while building */
	return json_object_get_int(json_object_object_get(a, "_pos")) -
	    json_object_get_int(json_object_object_get(b, "_pos"));
}

static void
settings(struct ctx *c)
{
	struct json_object *v;

	v = phn_json_path_get(c->meta, "effective_defaults.scoreboard");
	c->sb = json_object_is_type(v, json_type_object) &&
	    json_object_object_length(v) > 0 ? v : NULL;
	c->stale = setting(c, "heartbeat_stale_after_seconds",
	    "defaults.scoreboard.heartbeat_stale_after_seconds", 300);
	c->stuck = setting(c, "stuck_after_seconds",
	    "defaults.scoreboard.stuck_after_seconds", 1800);
	c->lease = setting(c, NULL, "defaults.claim_lease_seconds", 300);
	c->max_hr = phn_json_is_int(v = phn_json_path_get(c->cfg,
	    "limits.max_harness_retries")) ? json_object_get_int64(v) : 3;
	v = phn_json_path_get(c->meta, "effective_defaults.runner_pool");
	if (!json_object_is_type(v, json_type_object) ||
	    json_object_object_length(v) == 0)
		v = phn_json_path_get(c->cfg, "defaults.runner_pool");
	c->shared_fs = 1;
	c->transfer = 0;
	if (json_object_is_type(v, json_type_object)) {
		struct json_object *x;
		if (json_object_object_get_ex(v, "shared_filesystem", &x) &&
		    json_object_is_type(x, json_type_boolean))
			c->shared_fs = json_object_get_boolean(x);
		if (json_object_object_get_ex(v, "resume_base_transfer_enabled",
		    &x) && json_object_is_type(x, json_type_boolean))
			c->transfer = json_object_get_boolean(x);
	}
}

static void
ctx_free(struct ctx *c)
{
	size_t i, k;

	for (i = 0; i < c->ns; i++) {
		struct step *s = &c->steps[i];
		for (k = 0; k < s->na; k++) {
			free(s->a[k].name);
			free(s->a[k].fk);
			free(s->a[k].runner);
		}
		free(s->a);
		json_object_put(s->fst);
		free(s->fbuf);
		json_object_put(s->reasons);
		json_object_put(s->rfr);
	}
	for (i = 0; i < c->nj; i++) {
		json_object_put(c->jobs[i].ovdoc);
		json_object_put(c->jobs[i].cur);
	}
	free(c->steps);
	free(c->jobs);
	free(c->ix);
	json_object_put(c->closed);
	json_object_put(c->runners);
	json_object_put(c->meta);
	if (c->tok)
		json_tokener_free(c->tok);
	if (c->bfd > 0)
		close(c->bfd);
}

/* Load the batch: jobs, steps, overrides, attempts. */
static int
load_batch(struct ctx *c, char *msg, size_t msglen)
{
	struct json_object *jobs, *steps, *v;
	size_t i, k, nj, ns = 0;
	char *f;

	if ((c->meta = phn_batch_meta(c->p, c->batch, msg, msglen)) == NULL)
		return -1;
	if (!json_object_is_type(c->meta, json_type_object) ||
	    !json_object_object_get_ex(c->meta, "jobs", &jobs) ||
	    !json_object_is_type(jobs, json_type_array)) {
		snprintf(msg, msglen, "%s/%s/batch_meta.json: no jobs array",
		    c->p->runs, c->batch);
		errno = EINVAL;
		return -1;
	}
	settings(c);
	f = phn_path_join(c->p->runs, c->batch);
	if ((c->bfd = open(f, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(msg, msglen, "%s: %s", f, strerror(errno));
		free(f);
		return -1;
	}
	free(f);
	f = phn_asprintf("%s/%s/batch_closed.json", c->p->runs, c->batch);
	c->closed = load(c, f);
	if (c->closed == NULL && access(f, F_OK) == 0)
		c->closed = json_object_new_object();
	free(f);
	nj = json_object_array_length(jobs);
	for (i = 0; i < nj; i++) {
		steps = json_object_object_get(json_object_array_get_idx(jobs, i),
		    "steps");
		if (json_object_is_type(steps, json_type_array))
			ns += json_object_array_length(steps);
	}
	c->jobs = phn_malloc((nj ? nj : 1) * sizeof(*c->jobs));
	c->steps = phn_malloc((ns ? ns : 1) * sizeof(*c->steps));
	c->ix = phn_malloc((ns ? ns : 1) * sizeof(*c->ix));
	memset(c->steps, 0, (ns ? ns : 1) * sizeof(*c->steps));
	for (i = 0; i < nj; i++) {
		struct job *jb = &c->jobs[c->nj];
		struct json_object *job = json_object_array_get_idx(jobs, i);

		memset(jb, 0, sizeof(*jb));
		if ((jb->id = phn_jstr(job, "job_id")) == NULL)
			continue;
		jb->def = job;
		c->nj++;
		f = phn_asprintf("%s/%s/%s/overrides.json", c->p->runs, c->batch,
		    jb->id);
		if ((jb->ovdoc = load(c, f)) != NULL &&
		    json_object_object_get_ex(jb->ovdoc, "steps", &v) &&
		    json_object_is_type(v, json_type_object))
			jb->ov = v;
		free(f);
		steps = json_object_object_get(job, "steps");
		ns = json_object_is_type(steps, json_type_array) ?
		    json_object_array_length(steps) : 0;
		for (k = 0; k < ns; k++) {
			struct step *s = &c->steps[c->ns];
			s->def = json_object_array_get_idx(steps, k);
			if ((s->id = phn_jstr(s->def, "step_id")) == NULL)
				continue;
			s->jb = jb;
			read_step(c, s);
			read_forced(s);
			c->ix[c->ns] = s;
			c->ns++;
		}
	}
	qsort(c->ix, c->ns, sizeof(*c->ix), ixcmp);
	return 0;
}

/*
 * Compute the scoreboard of one batch.  With steps non-NULL, one record
 * per step is appended to it.  NULL on error, with msg set.
 */
struct json_object *
phn_score_batch(const struct phn_paths *p, struct json_object *cfg,
    const char *batch, double now, struct json_object *steps, char *msg,
    size_t msglen)
{
	struct ctx c;
	struct json_object *sb, *counts, *attn, *run, *blk, *fail, *res, *rdy, *v;
	long long usage[4] = { 0 }, cnt[D_N] = { 0 }, natt = 0, stuck = 0,
	    orph = 0;
	double start, end = -1;
	size_t i, k, n;
	int progress;

	memset(&c, 0, sizeof(c));
	c.p = p;
	c.cfg = cfg;
	c.batch = batch;
	c.now = now;
	if ((c.tok = json_tokener_new_ex(PHN_JSON_MAX_DEPTH + 1)) == NULL)
		phn_die(PHN_EXIT_TEMP, "out of memory");
	if (load_batch(&c, msg, msglen) == -1) {
		ctx_free(&c);
		return NULL;
	}
	for (i = 0; i < c.ns; i++)
		derive(&c, &c.steps[i]);

	sb = json_object_new_object();
	attn = json_object_new_array();
	run = json_object_new_array();
	blk = json_object_new_array();
	fail = json_object_new_array();
	res = json_object_new_array();
	rdy = json_object_new_array();
	for (i = 0; i < c.ns; i++) {
		struct step *s = &c.steps[i];
		struct json_object *it;

		cnt[s->d]++;
		natt += (long long)s->na;
		for (k = 0; k < 4; k++)
			usage[k] += s->usage[k];
		for (k = 0; k < s->na; k++)
			if (s->a[k].ended > end)
				end = s->a[k].ended;
		if (s->d == D_RUNNING) {
			it = running_item(&c, s);
			if (s->kind != K_NONE) {
				struct json_object *a = NULL;
				json_object_deep_copy(it, &a, NULL);
				jset(a, "kind", json_object_new_string(
				    kname[s->kind]));
				jset(a, "reason", json_object_new_string(
				    fault_reason(s->fault)));
				json_object_array_add(attn, a);
				if (s->kind == K_STUCK)
					stuck++;
				else
					orph++;
			}
			json_object_array_add(run, it);
		} else if (s->d == D_BLOCKED) {
			it = json_object_new_object();
			jset(it, "job_id", json_object_new_string(s->jb->id));
			jset(it, "step_id", json_object_new_string(s->id));
			jset(it, "reasons", json_object_get(s->reasons));
			if (s->rfr)
				jset(it, "resume_from_resolved",
				    json_object_get(s->rfr));
			json_object_array_add(blk, it);
		} else if (s->d == D_READY) {
			it = json_object_new_object();
			jset(it, "job_id", json_object_new_string(s->jb->id));
			jset(it, "step_id", json_object_new_string(s->id));
			jset(it, "attempts", json_object_new_int64(
			    (int64_t)s->na));
			jset(it, "why", json_object_new_string(s->why_ready ?
			    s->why_ready : "new"));
			jset(it, "not_before", iso_or_null(s->not_before));
			json_object_array_add(rdy, it);
		} else if (s->d == D_FAILED || s->d == D_NEEDS) {
			json_object_array_add(fail, failure_item(&c, s));
			it = json_object_new_object();
			jset(it, "job_id", json_object_new_string(s->jb->id));
			jset(it, "step_id", json_object_new_string(s->id));
			jset(it, "kind", json_object_new_string(kname[s->kind]));
			jset(it, "run_id", s->focal >= 0 ? json_object_new_string(
			    s->a[s->focal].run_id) : NULL);
			jset(it, "failure_kind", fst(&c, s) ? jcopy(fst(&c, s),
			    "failure_kind") : NULL);
			json_object_array_add(attn, it);
		}
		if (s->rfr) {
			it = json_object_new_object();
			jset(it, "job_id", json_object_new_string(s->jb->id));
			jset(it, "step_id", json_object_new_string(s->id));
			jset(it, "derived_status", json_object_new_string(
			    dname[s->d]));
			jset(it, "resume_from_resolved", json_object_get(s->rfr));
			json_object_array_add(res, it);
		}
		if (steps != NULL)
			json_object_array_add(steps, step_record(&c, s));
	}
	n = json_object_array_length(attn);
	for (i = 0; i < n; i++)
		jset(json_object_array_get_idx(attn, i), "_pos",
		    json_object_new_int((int)i));
	json_object_array_sort(attn, attn_cmp);
	for (i = 0; i < n; i++)
		json_object_object_del(json_object_array_get_idx(attn, i), "_pos");

	counts = json_object_new_object();
	for (i = 0; i < D_N; i++)
		jset(counts, dname[i], json_object_new_int64(cnt[i]));
	progress = cnt[D_READY] + cnt[D_RUNNING] > 0;
	jset(sb, "batch_id", json_object_new_string(batch));
	jset(sb, "submitted_at", jcopy(c.meta, "submitted_at"));
	jset(sb, "computed_at", iso_or_null(now));
	jset(sb, "batch_goal_summary", jcopy(c.meta, "batch_goal_summary"));
	jset(sb, "jobs_total", json_object_new_int64((int64_t)c.nj));
	jset(sb, "steps_total", json_object_new_int64((int64_t)c.ns));
	jset(sb, "attempts_total", json_object_new_int64(natt));
	jset(sb, "heartbeat_stale_after_seconds",
	    json_object_new_int64((int64_t)c.stale));
	jset(sb, "stuck_after_seconds", json_object_new_int64((int64_t)c.stuck));
	jset(sb, "runner_shared_filesystem", json_object_new_boolean(c.shared_fs));
	jset(sb, "closed", json_object_new_boolean(c.closed != NULL));
	jset(sb, "counts", counts);
	jset(sb, "stuck_steps", json_object_new_int64(stuck));
	jset(sb, "orphaned_steps", json_object_new_int64(orph));
	jset(sb, "outcome", json_object_new_string(progress ? "in_progress" :
	    cnt[D_SUCCEEDED] == (long long)c.ns ? "succeeded" : "failed"));
	jset(sb, "usage", usage_obj(usage));
	start = jtime(c.meta, "submitted_at");
	if (progress || end < 0)
		end = now;
	jset(sb, "elapsed_seconds", start < 0 ? NULL :
	    json_object_new_int64((int64_t)(end - start)));
	v = NULL;
	if (!progress)
		v = json_object_new_int64(0);
	else if (start >= 0 && end > start) {
		long long done = cnt[D_SUCCEEDED] + cnt[D_FAILED] + cnt[D_NEEDS] +
		    cnt[D_CANCELED];
		long long left = cnt[D_READY] + cnt[D_RUNNING] + cnt[D_BLOCKED];
		if (done > 0)
			v = json_object_new_int64((int64_t)((double)left *
			    (end - start) / (double)done));
	}
	jset(sb, "remaining_seconds_estimate", v);
	jset(sb, "attention", attn);
	jset(sb, "running", run);
	jset(sb, "ready", rdy);
	jset(sb, "blocked", blk);
	jset(sb, "failures", fail);
	jset(sb, "resume_steps", res);
	ctx_free(&c);
	return sb;
}

/* 3 in progress, 1 failed or stopped short, 0 all succeeded. */
int
phn_score_exit(struct json_object *sb)
{
	const char *o = phn_jstr(sb, "outcome");

	if (o && strcmp(o, "in_progress") == 0)
		return 3;
	if (o && strcmp(o, "succeeded") == 0)
		return 0;
	return 1;
}

/* The goal, one line, at most 120 characters (code points) + "…". */
static char *
preview(const char *g)
{
	size_t i, cp = 0, cut = 0, n;
	char *s;

	if (g == NULL)
		return NULL;
	n = strlen(g);
	for (i = 0; i < n; i++) {
		if (((unsigned char)g[i] & 0xc0) != 0x80) {
			if (cp == 120)
				cut = i;
			cp++;
		}
	}
	s = cp > 120 ? phn_asprintf("%.*s\xe2\x80\xa6", (int)cut, g) :
	    phn_strdup(g);
	for (i = 0; s[i]; i++)
		if (s[i] == '\n')
			s[i] = ' ';
	return s;
}

/* The system scoreboard's row for a batch scoreboard. */
struct json_object *
phn_score_row(struct json_object *sb)
{
	struct json_object *r = json_object_new_object(), *c;
	char *pv = preview(phn_jstr(sb, "batch_goal_summary"));
	static const char *keep[] = { "batch_id", "submitted_at", "jobs_total",
	    "steps_total", "attempts_total", "counts", "closed", "outcome",
	    "usage", "elapsed_seconds", "remaining_seconds_estimate", NULL };
	int64_t a;
	int i;

	for (i = 0; keep[i]; i++)
		jset(r, keep[i], jcopy(sb, keep[i]));
	jset(r, "batch_goal_summary_preview", jstr(pv));
	free(pv);
	c = json_object_object_get(sb, "counts");
	jset(r, "running_steps", jcopy(c, "running"));
	a = json_object_get_int64(json_object_object_get(c, "needs_attention")) +
	    json_object_get_int64(json_object_object_get(c, "failed")) +
	    json_object_get_int64(json_object_object_get(sb, "stuck_steps")) +
	    json_object_get_int64(json_object_object_get(sb, "orphaned_steps"));
	jset(r, "attention_steps", json_object_new_int64(a));
	return r;
}

static int
row_group(struct json_object *r)
{
	if (json_object_get_int64(json_object_object_get(r, "attention_steps")))
		return 0;
	if (json_object_get_int64(json_object_object_get(r, "running_steps")))
		return 1;
	return 2;
}

static int
row_cmp(const void *x, const void *y)
{
	struct json_object *a = *(struct json_object *const *)x;
	struct json_object *b = *(struct json_object *const *)y;
	double ta = jtime(a, "submitted_at"), tb = jtime(b, "submitted_at");
	int ga = row_group(a), gb = row_group(b);

	if (ga != gb)
		return ga - gb;
	ta = ta < 0 ? 0 : floor(ta);
	tb = tb < 0 ? 0 : floor(tb);
	if (ta != tb)
		return ta < tb ? 1 : -1;
	return strcmp(phn_jstr(a, "batch_id"), phn_jstr(b, "batch_id"));
}

/* Order system rows: attention first, then running, newest first. */
void
phn_score_sort_rows(struct json_object *rows)
{
	json_object_array_sort(rows, row_cmp);
}
