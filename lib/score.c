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
 *     silent for stuck_after_seconds (phn_attempt_judge()).
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

#include "policy.h"
#include "score.h"


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
	struct phn_asum *a;
	size_t	 na;
	struct phn_asums view;	/* a, na for the step policy */
	struct json_object *sd;	/* its definition (phn_policy_stepdef) */
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
	char	*note;		/* the policy's note on the next attempt */
	struct json_object *reasons;
	struct json_object *rfr;	/* resume_from_resolved */
};

struct ctx {
	const struct phn_paths *p;
	struct json_object *cfg;
	const char *batch;
	double	 now;
	struct phn_limits lim;
	struct phn_policy_env env;
	struct json_object *meta, *sb;	/* settings: scoreboard object */
	struct job *jobs;
	size_t	 nj;
	struct step *steps;
	size_t	 ns;
	struct step **ix;	/* steps sorted by job, id */
	struct json_object *closed;
	struct phn_budget budget;	/* the batch's token budget */
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

static char *
attempt_rel(struct ctx *c, struct step *s, long i)
{
	return phn_attempt_rel(c->batch, s->jb->id, s->id, s->a[i].name);
}

static char *
attempt_abs(struct ctx *c, struct step *s, long i)
{
	return phn_attempt_path(c->p, c->batch, s->jb->id, s->id,
	    s->a[i].name, NULL);
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
scan_state(const char *buf, size_t len, struct phn_asum *a, long long usage[4])
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
		} else if (KEY("rate_limited")) {
			a->rl = p + 4 <= e && memcmp(p, "true", 4) == 0;
		} else if (KEY("auto_remediation")) {
			a->remedied = *p == '{';
			q = skipval(p, e, 1);
		} else if (*p == '"' && (KEY("status") || KEY("started_at") ||
		    KEY("ended_at") || KEY("failure_kind") || KEY("runner_id") ||
		    KEY("codex_thread_id"))) {
			if ((q = skipstr(p, e, &esc)) == NULL || esc ||
			    q - p - 2 >= PHN_ISO_LEN)
				return -1;
			snprintf(tmp, sizeof(tmp), "%.*s", (int)(q - p - 2), p + 1);
			if (KEY("status"))
				a->st = phn_ast_of(tmp);
			else if (KEY("started_at"))
				phn_iso_parse(tmp, &a->started);
			else if (KEY("ended_at"))
				phn_iso_parse(tmp, &a->ended);
			else if (KEY("failure_kind"))
				a->kind = phn_strdup(tmp);
			else if (KEY("codex_thread_id"))
				a->thread = phn_strdup(tmp);
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
	a->hf |= phn_fault_kind(a->kind);
	for (i = 0; i < 4; i++)
		usage[i] += hua ? ua[i] : u[i];
	return 0;
}

/* The full path: fields from a parsed state. */
static void
from_state(struct step *s, struct json_object *st, struct phn_asum *a)
{
	struct json_object *u, *v;
	int i;

	phn_asum_state(a, st);
	/* usage is cumulative per codex thread; a resumed attempt also
	 * records its own share as usage_attempt. */
	if (json_object_object_get_ex(st, "usage_attempt", &u) ||
	    json_object_object_get_ex(st, "usage", &u))
		for (i = 0; i < 4; i++)
			if (json_object_object_get_ex(u, ukeys[i], &v) &&
			    phn_json_is_int(v))
				s->usage[i] += json_object_get_int64(v);
}

/*
 * A stand-in state for a missing or broken state.json; why names the
 * file and says what is wrong with it (broken only).
 */
static struct json_object *
fake_state(struct ctx *c, int dfd, const char *name, const char *why)
{
	struct json_object *st = json_object_new_object();
	char iso[PHN_ISO_LEN];
	struct stat sb;

	if (why == NULL) {
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
		    json_object_new_string(why));
		jset(st, "state_corrupt", json_object_new_boolean(1));
		jset(st, "state_error", json_object_new_string(why));
	}
	return st;
}

/* A broken state.json's message, for rel (relative to the runs root). */
static char *
state_why(const char *rel, const char *what)
{
	return phn_asprintf("%s/state.json: %s", rel, what);
}

/*
 * An attempt's state.json text, parsed; NULL if it is not a state, and
 * then *why (when why is not NULL) says what is wrong with it (to free).
 */
static struct json_object *
parse(struct ctx *c, const char *buf, size_t len, char **why)
{
	struct json_object *o;
	enum json_tokener_error e;
	const char *w = NULL;
	char t[160];

	json_tokener_reset(c->tok);
	o = json_tokener_parse_ex(c->tok, buf, (int)len);
	e = json_tokener_get_error(c->tok);
	if (o == NULL || e != json_tokener_success) {
		snprintf(t, sizeof(t), "not valid JSON (%s)", len == 0 ?
		    "empty file" : e == json_tokener_continue ? "truncated" :
		    json_tokener_error_desc(e));
		w = t;
	} else if (!json_object_is_type(o, json_type_object))
		w = "not a JSON object";
	else if (phn_ast_of(phn_jstr(o, "status")) < 0)
		w = "no valid status (queued, running, succeeded, failed, "
		    "needs_attention or canceled)";
	if (w == NULL)
		return o;
	json_object_put(o);
	if (why != NULL)
		*why = phn_strdup(w);
	return NULL;
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
	/* relative to the batch directory c->bfd */
	char *ad = phn_attempt_rel(c->batch, s->jb->id, s->id, NULL);
	char **v = NULL, *buf, *fbuf = NULL, *rel, *why, *ar, *w;
	size_t n = 0, i, len = 0, flen = 0;
	struct dirent *de;
	DIR *d;
	int dfd, dfd2;

	s->act = s->focal = s->lsucc = -1;
	s->forced = -1;
	dfd = openat(c->bfd, ad + strlen(c->batch) + 1, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
		struct phn_asum *a = &s->a[s->na];
		struct json_object *st = NULL;
		int focal;

		phn_asum_init(a, v[i]);
		rel = phn_asprintf("%s/state.json", v[i]);
		why = NULL;
		if (read_at(dfd, rel, &buf, &len) == -1) {
			if (errno != ENOENT)
				why = phn_asprintf("unable to read: %s",
				    strerror(errno));
			buf = NULL;
		} else if (scan_state(buf, len, a, s->usage) == -1)
			st = parse(c, buf, len, &why);
		if (st == NULL && (buf == NULL || why != NULL)) {
			ar = attempt_rel(c, s, (long)s->na);
			w = why ? state_why(ar, why) : NULL;
			st = fake_state(c, dfd, v[i], w);
			free(w);
			free(ar);
		}
		if (st != NULL)
			from_state(s, st, a);
		free(why);
		free(rel);
		focal = a->st == PHN_AST_QUEUED || a->st == PHN_AST_RUNNING || s->act < 0;
		if (a->st == PHN_AST_QUEUED || a->st == PHN_AST_RUNNING)
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
		if (a->st == PHN_AST_SUCCEEDED && (s->lsucc < 0 ||
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
	char *why = NULL, *rel, *w;

	if (s->fst == NULL && s->fbuf != NULL) {
		if ((s->fst = parse(c, s->fbuf, s->flen, &why)) == NULL) {
			rel = attempt_rel(c, s, s->focal);
			w = state_why(rel, why);
			s->fst = fake_state(c, -1, NULL, w);
			free(w);
			free(rel);
			free(why);
		}
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

/* The step policy's view of a step's attempts (phn_policy_env.atts). */
static const struct phn_asums *
step_atts(void *ctx, const char *job, const char *step)
{
	struct step *s = find_step(ctx, job, step);

	if (s == NULL)
		return NULL;
	s->view.v = s->a;
	s->view.n = s->na;
	return &s->view;
}

/* The derived status of a step: the step policy's verdict. */
static void
derive(struct ctx *c, struct step *s)
{
	static const int dstatus[] = { D_RUNNING, D_RUNNING, D_SUCCEEDED,
	    D_FAILED, D_NEEDS, D_CANCELED };
	struct json_object *ovs = ov_step(s);
	struct phn_verdict v;
	char *dir;

	phn_policy_eval(&c->env, s->jb->id, s->id, s->sd, ovs, &v);
	s->rfr = json_object_get(v.resume_from);
	s->force_pending = v.force_nonce > 0;
	s->why_ready = v.why_ready;
	if (v.note != NULL && (v.verdict == PHN_V_READY ||
	    v.verdict == PHN_V_WAIT))
		s->note = phn_strdup(v.note);
	switch (v.verdict) {
	case PHN_V_ACTIVE:
		s->d = D_RUNNING;
		dir = attempt_abs(c, s, s->act);
		s->fault = phn_attempt_judge(c->p, dir, fst(c, s), c->now,
		    c->lim.lease, c->lim.stale, c->lim.stuck);
		free(dir);
		if (s->fault == PHN_FAULT_ORPHAN || s->fault == PHN_FAULT_LEASE)
			s->kind = K_ORPHANED;
		else if (s->fault == PHN_FAULT_STUCK)
			s->kind = K_STUCK;
		break;
	case PHN_V_DONE:
		s->d = dstatus[v.status];
		if (v.forced) {
			s->forced = s->d;
			s->forced_obj = phn_json_get(ovs, "forced_terminal");
		}
		s->kind = s->d == D_FAILED ? K_FAILED : s->d == D_NEEDS ?
		    K_NEEDS : K_NONE;
		break;
	case PHN_V_BLOCKED:
		s->d = D_BLOCKED;
		s->reasons = json_object_get(v.reasons);
		break;
	default:
		s->d = D_READY;
		s->not_before = v.not_before;
		break;
	}
	phn_verdict_free(&v);
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
	jset(o, "runner_id", phn_json_string(s->a[s->act].runner));
	jset(o, "attempt_dir", json_object_new_string(rel));
	jset(o, "state_status", phn_json_string(phn_jstr(st, "status")));
	if ((ci == NULL || *ci == '\0') && s->a[s->act].st == PHN_AST_QUEUED)
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

/* What is wrong with a broken state.json (fake_state), or NULL. */
static const char *
state_error(struct json_object *st)
{
	return phn_json_bool(st, "state_corrupt", 0) ? phn_jstr(st,
	    "state_error") : NULL;
}

/* The focal attempt's run, directory and outcome, into o. */
static void
focal_fields(struct ctx *c, struct step *s, struct json_object *o)
{
	struct json_object *st = fst(c, s);
	char *rel = s->focal >= 0 ? attempt_rel(c, s, s->focal) : NULL;

	jset(o, "run_id", s->focal >= 0 ?
	    json_object_new_string(s->a[s->focal].run_id) : NULL);
	jset(o, "attempt_dir", phn_json_string(rel));
	jset(o, "state_status", st ? jcopy(st, "status") : NULL);
	jset(o, "exit_code", st ? jcopy(st, "exit_code") : NULL);
	jset(o, "failure_kind", st ? jcopy(st, "failure_kind") : NULL);
	if (state_error(st) != NULL)
		jset(o, "state_error", json_object_new_string(state_error(st)));
	free(rel);
}

static struct json_object *
failure_item(struct ctx *c, struct step *s)
{
	struct json_object *o = json_object_new_object();

	jset(o, "job_id", json_object_new_string(s->jb->id));
	jset(o, "step_id", json_object_new_string(s->id));
	focal_fields(c, s, o);
	final_fields(c, s, o);
	if (s->forced >= 0)
		jset(o, "forced_terminal", json_object_get(s->forced_obj));
	if (s->rfr)
		jset(o, "resume_from_resolved", json_object_get(s->rfr));
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
	long counted = 0;
	size_t i;

	for (i = 0; i < s->na; i++)
		if (phn_asum_counted(&s->a[i]))
			counted++;
	jset(o, "batch_id", json_object_new_string(c->batch));
	jset(o, "job_id", json_object_new_string(s->jb->id));
	jset(o, "step_id", json_object_new_string(s->id));
	jset(o, "status", json_object_new_string(dname[s->d]));
	jset(o, "attention", phn_json_string(kname[s->kind]));
	jset(o, "attention_reason", s->kind == K_ORPHANED || s->kind ==
	    K_STUCK ? phn_json_string(fault_reason(s->fault)) :
	    phn_json_string(state_error(st)));
	jset(o, "reasons", s->reasons ? json_object_get(s->reasons) :
	    json_object_new_array());
	jset(o, "attempts", json_object_new_int64((int64_t)s->na));
	jset(o, "attempts_counted", json_object_new_int64(counted));
	focal_fields(c, s, o);
	jset(o, "runner_id", s->focal >= 0 ? phn_json_string(s->a[s->focal].runner) :
	    NULL);
	jset(o, "claimed_at", st ? jcopy(st, "claimed_at") : NULL);
	jset(o, "started_at", st ? jcopy(st, "started_at") : NULL);
	jset(o, "ended_at", st ? jcopy(st, "ended_at") : NULL);
	jset(o, "last_heartbeat_at", st ? jcopy(st, "last_heartbeat_at") : NULL);
	jset(o, "last_event_at", st ? jcopy(st, "last_event_at") : NULL);
	jset(o, "slurm", st ? jcopy(st, "slurm") : NULL);
	if (s->act >= 0 && s->a[s->act].st == PHN_AST_QUEUED &&
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
	jset(o, "invocation_note", phn_json_string(s->note));
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
	struct json_object *ed = phn_json_get(c->meta, "effective_defaults");

	phn_limits_init(&c->lim, c->cfg, ed);
	c->env.p = c->p;
	c->env.batch = c->batch;
	c->env.lim = &c->lim;
	c->env.atts = step_atts;
	c->env.ctx = c;
	c->env.now = c->now;
	c->env.pause_until = phn_pause_until(c->p, c->now, NULL);
	c->env.locality = 1;
	c->env.runner_ids = phn_json_path_get(c->cfg,
	    "defaults.runner_pool.runner_ids");
}

static void
ctx_free(struct ctx *c)
{
	size_t i;

	for (i = 0; i < c->ns; i++) {
		struct step *s = &c->steps[i];
		s->view.v = s->a;
		s->view.n = s->na;
		phn_asums_free(&s->view);
		json_object_put(s->sd);
		free(s->note);
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
	phn_policy_env_free(&c->env);
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

	/* Written by phn-ingest after the strict parse: no pre-scan again. */
	f = phn_batch_path(c->p, c->batch, "batch_meta.json");
	errno = 0;
	if ((c->meta = load(c, f)) == NULL) {
		snprintf(msg, msglen, "%s: %s", f, errno ? strerror(errno) :
		    "not a JSON object");
		free(f);
		return -1;
	}
	free(f);
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
	f = phn_batch_path(c->p, c->batch, "batch_closed.json");
	c->closed = load(c, f);
	if (c->closed == NULL && access(f, F_OK) == 0)
		c->closed = json_object_new_object();
	if (c->closed != NULL)
		c->env.closed = phn_jstr(c->closed, "reason") ?
		    phn_jstr(c->closed, "reason") : "no reason given";
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
		f = phn_job_path(c->p, c->batch, jb->id, "overrides.json");
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
			s->sd = phn_policy_stepdef(jb->id, s->def,
			    phn_json_get(c->meta, "effective_defaults"));
			c->ix[c->ns] = s;
			c->ns++;
		}
	}
	qsort(c->ix, c->ns, sizeof(*c->ix), ixcmp);
	return 0;
}

/* The scoreboard's lists and tallies, filled step by step. */
struct lists {
	struct json_object *attn, *run, *blk, *fail, *res, *rdy;
	long long usage[4], cnt[D_N], natt, stuck, orph;
	double	 end;		/* the last end of any attempt, -1 */
};

static struct json_object *
ids_item(struct step *s)
{
	struct json_object *it = json_object_new_object();

	jset(it, "job_id", json_object_new_string(s->jb->id));
	jset(it, "step_id", json_object_new_string(s->id));
	return it;
}

/* A running step, and its attention when orphaned or stuck. */
static void
list_running(struct ctx *c, struct step *s, struct lists *l)
{
	struct json_object *it = running_item(c, s), *a = NULL;

	if (s->kind != K_NONE) {
		json_object_deep_copy(it, &a, NULL);
		jset(a, "kind", json_object_new_string(kname[s->kind]));
		jset(a, "reason", json_object_new_string(fault_reason(s->fault)));
		json_object_array_add(l->attn, a);
		if (s->kind == K_STUCK)
			l->stuck++;
		else
			l->orph++;
	}
	json_object_array_add(l->run, it);
}

/* The step in the lists its derived status puts it in. */
static void
list_step(struct ctx *c, struct step *s, struct lists *l)
{
	struct json_object *it;
	size_t k;

	l->cnt[s->d]++;
	l->natt += (long long)s->na;
	for (k = 0; k < 4; k++)
		l->usage[k] += s->usage[k];
	for (k = 0; k < s->na; k++)
		if (s->a[k].ended > l->end)
			l->end = s->a[k].ended;
	if (s->d == D_RUNNING)
		list_running(c, s, l);
	else if (s->d == D_BLOCKED) {
		it = ids_item(s);
		jset(it, "reasons", json_object_get(s->reasons));
		if (s->rfr)
			jset(it, "resume_from_resolved", json_object_get(s->rfr));
		json_object_array_add(l->blk, it);
	} else if (s->d == D_READY) {
		it = ids_item(s);
		jset(it, "attempts", json_object_new_int64((int64_t)s->na));
		jset(it, "why", json_object_new_string(s->why_ready ?
		    s->why_ready : "new"));
		jset(it, "not_before", iso_or_null(s->not_before));
		if (s->note != NULL)
			jset(it, "invocation_note", phn_json_string(s->note));
		json_object_array_add(l->rdy, it);
	} else if (s->d == D_FAILED || s->d == D_NEEDS) {
		json_object_array_add(l->fail, failure_item(c, s));
		it = ids_item(s);
		jset(it, "kind", json_object_new_string(kname[s->kind]));
		jset(it, "run_id", s->focal >= 0 ? json_object_new_string(
		    s->a[s->focal].run_id) : NULL);
		jset(it, "failure_kind", fst(c, s) ? jcopy(fst(c, s),
		    "failure_kind") : NULL);
		if (state_error(fst(c, s)) != NULL)
			jset(it, "reason", json_object_new_string(
			    state_error(fst(c, s))));
		json_object_array_add(l->attn, it);
	}
	if (s->rfr) {
		it = ids_item(s);
		jset(it, "derived_status", json_object_new_string(dname[s->d]));
		jset(it, "resume_from_resolved", json_object_get(s->rfr));
		json_object_array_add(l->res, it);
	}
}

/* Attention items by kind, stable. */
static void
sort_attention(struct json_object *attn)
{
	size_t i, n = json_object_array_length(attn);

	for (i = 0; i < n; i++)
		jset(json_object_array_get_idx(attn, i), "_pos",
		    json_object_new_int((int)i));
	json_object_array_sort(attn, attn_cmp);
	for (i = 0; i < n; i++)
		json_object_object_del(json_object_array_get_idx(attn, i), "_pos");
}

/* Elapsed time and the estimate of the time left, into sb. */
static void
times(struct ctx *c, struct lists *l, int progress, struct json_object *sb)
{
	struct json_object *v = NULL;
	double start = jtime(c->meta, "submitted_at"), end = l->end;
	long long done, left;

	if (progress || end < 0)
		end = c->now;
	jset(sb, "elapsed_seconds", start < 0 ? NULL :
	    json_object_new_int64((int64_t)(end - start)));
	if (!progress)
		v = json_object_new_int64(0);
	else if (start >= 0 && end > start) {
		done = l->cnt[D_SUCCEEDED] + l->cnt[D_FAILED] +
		    l->cnt[D_NEEDS] + l->cnt[D_CANCELED];
		left = l->cnt[D_READY] + l->cnt[D_RUNNING] + l->cnt[D_BLOCKED];
		if (done > 0)
			v = json_object_new_int64((int64_t)((double)left *
			    (end - start) / (double)done));
	}
	jset(sb, "remaining_seconds_estimate", v);
}

/* The batch scoreboard object from the lists. */
static struct json_object *
board(struct ctx *c, struct lists *l)
{
	struct json_object *sb = json_object_new_object(), *counts;
	int progress = l->cnt[D_READY] + l->cnt[D_RUNNING] > 0, i;

	counts = json_object_new_object();
	for (i = 0; i < D_N; i++)
		jset(counts, dname[i], json_object_new_int64(l->cnt[i]));
	jset(sb, "batch_id", json_object_new_string(c->batch));
	jset(sb, "submitted_at", jcopy(c->meta, "submitted_at"));
	jset(sb, "computed_at", iso_or_null(c->now));
	jset(sb, "batch_goal_summary", jcopy(c->meta, "batch_goal_summary"));
	jset(sb, "jobs_total", json_object_new_int64((int64_t)c->nj));
	jset(sb, "steps_total", json_object_new_int64((int64_t)c->ns));
	jset(sb, "attempts_total", json_object_new_int64(l->natt));
	jset(sb, "heartbeat_stale_after_seconds",
	    json_object_new_int64((int64_t)c->lim.stale));
	jset(sb, "stuck_after_seconds",
	    json_object_new_int64((int64_t)c->lim.stuck));
	jset(sb, "runner_shared_filesystem",
	    json_object_new_boolean(c->lim.shared_fs));
	jset(sb, "closed", json_object_new_boolean(c->closed != NULL));
	jset(sb, "counts", counts);
	jset(sb, "stuck_steps", json_object_new_int64(l->stuck));
	jset(sb, "orphaned_steps", json_object_new_int64(l->orph));
	jset(sb, "outcome", json_object_new_string(progress ? "in_progress" :
	    l->cnt[D_SUCCEEDED] == (long long)c->ns ? "succeeded" : "failed"));
	jset(sb, "usage", usage_obj(l->usage));
	jset(sb, "budget", phn_budget_json(&c->budget));
	times(c, l, progress, sb);
	sort_attention(l->attn);
	jset(sb, "attention", l->attn);
	jset(sb, "running", l->run);
	jset(sb, "ready", l->rdy);
	jset(sb, "blocked", l->blk);
	jset(sb, "failures", l->fail);
	jset(sb, "resume_steps", l->res);
	jset(sb, "pause", phn_score_pause(c->p, c->now));
	return sb;
}

/* The batch's token budget from the usage read (budget.c), for the
 * step policy and the scoreboard. */
static void
budget(struct ctx *c)
{
	long long in = 0, out = 0;
	size_t i;

	phn_budget_get(c->p, c->batch, c->meta, 0, &c->budget);
	for (i = 0; i < c->ns; i++) {
		in += c->steps[i].usage[0];	/* ukeys: input_tokens */
		out += c->steps[i].usage[2];	/* output_tokens */
	}
	phn_budget_set_used(&c->budget, phn_budget_tokens(in, out));
	c->env.budget = &c->budget;
}

/*
 * The store's rate-limit pause in force at now (pause.c): pause.json
 * with "remaining_seconds", or NULL if there is none.
 */
struct json_object *
phn_score_pause(const struct phn_paths *p, double now)
{
	double until = phn_pause_until(p, now, NULL);
	struct json_object *o;

	if (until <= 0 || (o = phn_pause_read(p)) == NULL)
		return NULL;
	jset(o, "remaining_seconds", json_object_new_int64((int64_t)ceil(
	    until - now)));
	return o;
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
	struct lists l;
	struct json_object *sb;
	size_t i;

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
	budget(&c);
	memset(&l, 0, sizeof(l));
	l.end = -1;
	l.attn = json_object_new_array();
	l.run = json_object_new_array();
	l.blk = json_object_new_array();
	l.fail = json_object_new_array();
	l.res = json_object_new_array();
	l.rdy = json_object_new_array();
	for (i = 0; i < c.ns; i++) {
		derive(&c, &c.steps[i]);
		list_step(&c, &c.steps[i], &l);
		if (steps != NULL)
			json_object_array_add(steps, step_record(&c,
			    &c.steps[i]));
	}
	sb = board(&c, &l);
	ctx_free(&c);
	return sb;
}

/* 3 in progress, 1 failed or stopped short, 0 all succeeded. */
int
phn_score_exit(struct json_object *sb)
{
	const char *o = phn_jstr(sb, "outcome");

	if (o && strcmp(o, "in_progress") == 0)
		return PHN_EXIT_RUNNING;
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
	    "usage", "budget", "elapsed_seconds", "remaining_seconds_estimate",
	    NULL };
	int64_t a;
	int i;

	for (i = 0; keep[i]; i++)
		jset(r, keep[i], jcopy(sb, keep[i]));
	jset(r, "batch_goal_summary_preview", phn_json_string(pv));
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

/*
 * The runner view: one object per runner under the runners root, with
 * its status at now by phn_runner_status (alive, waiting, draining,
 * gone, stopped), its health's age, load and why it waits.
 */
struct json_object *
phn_score_runners(const struct phn_paths *p, struct json_object *cfg,
    double now)
{
	struct json_object *rv = json_object_new_array(), *h, *o;
	struct phn_limits lim;
	char **v;
	size_t n, i;
	double t;

	phn_limits_init(&lim, cfg, NULL);
	v = phn_runner_list(p, &n);
	for (i = 0; i < n; i++) {
		if ((h = phn_runner_health(p, v[i])) == NULL)
			continue;
		o = json_object_new_object();
		jset(o, "runner_id", json_object_new_string(v[i]));
		jset(o, "status", json_object_new_string(phn_runner_status(p,
		    v[i], h, now, lim.stale)));
		jset(o, "host", jcopy(h, "host"));
		jset(o, "pid", jcopy(h, "pid"));
		jset(o, "current_load", jcopy(h, "current_load"));
		jset(o, "max_load_observed", jcopy(h, "max_load_observed"));
		jset(o, "capacity", jcopy(h, "capacity"));
		jset(o, "jobs", jcopy(h, "jobs"));
		jset(o, "started_at", jcopy(h, "started_at"));
		jset(o, "last_seen_at", jcopy(h, "last_seen_at"));
		jset(o, "last_seen_age_seconds", phn_iso_parse(phn_jstr(h,
		    "last_seen_at"), &t) == 0 ? json_object_new_int64(
		    (int64_t)(now - t)) : NULL);
		jset(o, "waiting_reason", jcopy(h, "waiting_reason"));
		jset(o, "admission", jcopy(h, "admission"));
		jset(o, "pressure", jcopy(h, "pressure"));
		jset(o, "slurm", jcopy(h, "slurm"));
		json_object_array_add(rv, o);
		json_object_put(h);
	}
	phn_dir_list_free(v, n);
	return rv;
}
