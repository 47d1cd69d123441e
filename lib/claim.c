/*
 * claim.c - the claimer: which ready entry to try next, and when to wait.
 *
 * A claimer keeps, per batch it serves, an in-memory copy of the ready
 * index (_ready/, see sched.c): entries grouped by job, the jobs in a
 * ring for round-robin, entries whose time has not come (backoff, another
 * runner's turn) in a heap.  It reads _ready/ once, then learns about new
 * entries from inotify (names of entries renamed into _ready/) and, for
 * changes made on other hosts, which raise no inotify event, from a
 * bounded poll that re-reads a directory only as often as its size allows
 * (so that listing costs a small share of the time), which keeps the cost
 * of a claim independent of the size of the store.  Batches are served
 * round-robin, one claim per batch per turn; jobs within a batch likewise.
 *
 * Taking an entry is a rename(2) into _claimed/ (only one claimer wins);
 * the winner then runs phn_sched_claim(), which re-checks the step under
 * its lock and creates the attempt, and puts the entry back if a limit
 * was in the way.  Its own renames back into _ready/ are remembered so
 * that their inotify events do not wake it up again: it never spins.
 *
 * While the store's rate-limit pause lasts (pause.c), a claimer claims
 * nothing.  A --follow claimer drains on SIGHUP or while runs/_system/HALT
 * exists: it claims nothing more, waits for the attempts it claimed to
 * end, and returns 0; a second SIGHUP, or SIGTERM while draining,
 * cancels those attempts first.
 */
#include <sys/stat.h>
#include <sys/types.h>
#ifdef __linux__
#include <sys/inotify.h>
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "claim.h"

#define CLAIM_TRIES	3	/* failed claims of an entry before it waits */
#define POLL_SECONDS	1.0	/* the longest sleep: other hosts' changes */
#define CHECK_SECONDS	10.0	/* re-validate active slots (leases) */
#define CLAIMED_STALE	120.0	/* a _claimed entry this old lost its owner */
#define LIST_CHUNK	512	/* names a one-shot claimer reads at a time */

/* A string-keyed hash table of pointers (keys are not owned). */
struct tab {
	const char **k;
	void	**v;
	size_t	 n, used, cap;
};

static const char tomb[] = "";

static size_t
hash(const char *s)
{
	size_t h = 5381;

	for (; *s; s++)
		h = h * 33 + (unsigned char)*s;
	return h;
}

static void tab_put(struct tab *, const char *, void *);

static void
tab_grow(struct tab *t)
{
	struct tab o = *t;
	size_t i;

	t->cap = o.cap ? o.cap * 2 : 64;
	while (o.n * 4 >= t->cap)
		t->cap *= 2;
	t->k = calloc(t->cap, sizeof(*t->k));
	t->v = calloc(t->cap, sizeof(*t->v));
	if (t->k == NULL || t->v == NULL)
		phn_die(PHN_EXIT_TEMP, "out of memory");
	t->n = t->used = 0;
	for (i = 0; i < o.cap; i++)
		if (o.k[i] && o.k[i] != tomb)
			tab_put(t, o.k[i], o.v[i]);
	free(o.k);
	free(o.v);
}

static void *
tab_get(struct tab *t, const char *k)
{
	size_t i;

	if (t->cap == 0)
		return NULL;
	for (i = hash(k) & (t->cap - 1); t->k[i]; i = (i + 1) & (t->cap - 1))
		if (t->k[i] != tomb && strcmp(t->k[i], k) == 0)
			return t->v[i];
	return NULL;
}

static void
tab_put(struct tab *t, const char *k, void *v)
{
	size_t i;

	if ((t->used + 1) * 2 >= t->cap)
		tab_grow(t);
	for (i = hash(k) & (t->cap - 1); t->k[i]; i = (i + 1) & (t->cap - 1))
		if (t->k[i] != tomb && strcmp(t->k[i], k) == 0) {
			t->v[i] = v;
			return;
		}
	t->k[i] = k;
	t->v[i] = v;
	t->n++;
	t->used++;
}

static void
tab_del(struct tab *t, const char *k)
{
	size_t i;

	if (t->cap == 0)
		return;
	for (i = hash(k) & (t->cap - 1); t->k[i]; i = (i + 1) & (t->cap - 1))
		if (t->k[i] != tomb && strcmp(t->k[i], k) == 0) {
			t->k[i] = tomb;
			t->v[i] = NULL;
			t->n--;
			return;
		}
}

static void
tab_free(struct tab *t)
{
	free(t->k);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

struct batch;
struct job;
struct wdir;

enum { E_NONE, E_LIST, E_HEAP };

struct ent {			/* one allocation, name included */
	const char *step;
	struct job *j;
	long	 sidx;
	double	 at;		/* in the heap: when to try again */
	int	 known;		/* not_before read */
	int	 where;
	int	 notme;		/* waiting for another runner's turn */
	int	 self;		/* own renames into _ready/ not yet seen */
	int	 errs;		/* claims of it that failed on a system call */
	size_t	 hpos;
	struct ent *next;
	char	 name[];	/* JOB@STEP */
};

struct job {
	char	*id;
	long	 idx;
	char	**steps;	/* step ids in declared order, once loaded */
	size_t	 nsteps;
	int	 loaded;
	struct ent *head;
	struct job *rn, *rp;	/* the batch's ring */
	int	 inring;
	struct wdir *wd;	/* its workdir, when limited */
	int	 parked, listed;
	struct job *pnext;
	struct batch *b;
};

struct batch {
	char	*id;
	char	*dir;
	struct json_object *info;
	struct tab ents, jobs, jidx;
	struct job *ring;
	long long conc;
	int	 full, closed, gone, dirty, warned, rescanned;
	double	 listed, listcost, checked, swept;
	DIR	*dp;		/* a listing in progress (one-shot) */
	long long claims;
	const char *lastjob;
};

struct wdir {
	char	*path;
	char	*dir;
	long long limit;
	int	 full;
	struct job *parked;
};

struct out {			/* an attempt this claimer made */
	struct batch *b;
	char	*entry;		/* _active/ entry name */
	char	*dir;
};

enum { W_RUNS, W_BATCH, W_READY, W_ACTIVE, W_RUNNER, W_RACTIVE, W_WDIR };

struct wmap {
	int	 wd, kind;
	void	*ptr;
};

struct claimer {
	const struct phn_claim_opts *o;
	struct phn_sched s;
	struct batch **bv;
	size_t	 nb, cursor;
	struct tab wdirs, bad;
	struct wdir **wv;
	size_t	 nwv;
	struct ent **heap;
	size_t	 nh, caph;
	struct out **ov;
	size_t	 nov;
	struct tab outs;
	int	 drained, rfull;
	int	 ifd;
	struct wmap *wm;
	size_t	 nwm;
	double	 tick, outchecked;
	long long total;
	int	 werr;		/* writing standard output failed */
	int	 serr;		/* syncing the store failed */
	int	 cerr;		/* a claim failed on a system call */
	char	 token[96];
	struct phn_runner run;	/* its health.json, its admission */
	struct phn_pause_cache pause;
	double	 pause_said;	/* the pause last reported on stderr */
	int	 drain_said, canceled;
	double	 kill_grace;	/* defaults.kill_grace_seconds */
};

/*
 * Signals.  With --follow, SIGHUP drains (claim nothing more, let what
 * was claimed end) and a second SIGHUP, or a SIGTERM while draining,
 * cancels what was claimed.  Any other SIGTERM, SIGINT or SIGHUP ends
 * the loop (no SA_RESTART: it wakes the wait), so that the runner is
 * marked stopped; then it is raised again.
 */
static volatile sig_atomic_t claim_sig, sig_hups, sig_terms, sig_follow;

static void
on_signal(int sig)
{
	if (sig_follow && sig == SIGHUP)
		sig_hups++;
	else if (sig_follow && sig == SIGTERM && sig_hups > 0)
		sig_terms++;
	else if (claim_sig == 0)
		claim_sig = sig;
}

/* The store's rate-limit pause: 1 while it lasts (said once on stderr). */
static int
paused(struct claimer *c, double now)
{
	double until = phn_pause_until(c->s.p, now, &c->pause);
	char iso[PHN_ISO_LEN];

	if (until <= 0)
		return 0;
	if (until != c->pause_said) {
		phn_iso(until, iso);
		phn_warn("rate-limit pause: claiming nothing until %s (%s/"
		    "_system/pause.json)", iso, c->s.p->runs);
		c->pause_said = until;
	}
	return 1;
}

/*
 * Draining: 1 once a SIGHUP came or HALT exists; then, on a second
 * SIGHUP or a SIGTERM, cancel what this claimer claimed (once).
 */
static int
draining(struct claimer *c)
{
	struct json_object *res;
	struct phn_attempt a;
	double grace;
	size_t i;

	if (!c->o->follow || (sig_hups == 0 && !phn_halted(c->s.p)))
		return 0;
	if (!c->drain_said) {
		phn_warn("draining: claiming nothing more; waiting for %zu "
		    "claimed attempt%s to end (SIGHUP again or SIGTERM "
		    "cancels them)", c->nov, c->nov == 1 ? "" : "s");
		c->drain_said = 1;
		if (sig_hups == 0)
			sig_hups = 1;	/* HALT: a SIGHUP now cancels */
	}
	if ((sig_hups > 1 || sig_terms > 0) && !c->canceled) {
		c->canceled = 1;
		grace = c->kill_grace;
		phn_warn("canceling %zu claimed attempt%s", c->nov,
		    c->nov == 1 ? "" : "s");
		for (i = 0; i < c->nov; i++) {
			if (phn_attempt_parse(c->s.p, c->ov[i]->dir, &a) == -1)
				continue;
			res = NULL;
			if (phn_cancel(c->s.p, &a, grace, &res) == -1)
				phn_warn("%s: unable to cancel:", a.dir);
			json_object_put(res);
			phn_attempt_free(&a);
		}
	}
	return 1;
}

/*
 * inotify, where there is one; elsewhere the poll does all the work.
 */
#ifdef __linux__
#define M_NEW	(IN_CREATE | IN_MOVED_TO)
#define M_GONE	(IN_DELETE | IN_MOVED_FROM)
#define M_ANY	(M_NEW | M_GONE | IN_CLOSE_WRITE)

static int
watch_init(void)
{
	return inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
}

static void
watch(struct claimer *c, const char *path, unsigned mask, int kind, void *ptr)
{
	int wd;

	if (c->ifd == -1 || (wd = inotify_add_watch(c->ifd, path,
	    mask | IN_ONLYDIR)) == -1)
		return;	/* ENOSPC (watch limit) and others: the poll covers it */
	c->wm = phn_realloc(c->wm, (c->nwm + 1) * sizeof(*c->wm));
	c->wm[c->nwm].wd = wd;
	c->wm[c->nwm].kind = kind;
	c->wm[c->nwm].ptr = ptr;
	c->nwm++;
}
#else
#define M_NEW	1
#define M_GONE	2
#define M_ANY	3

static int
watch_init(void)
{
	return -1;
}

static void
watch(struct claimer *c, const char *path, unsigned mask, int kind, void *ptr)
{
	(void)c; (void)path; (void)mask; (void)kind; (void)ptr;
}
#endif

/*
 * The heap of entries waiting for their time.
 */
static void
hswap(struct claimer *c, size_t i, size_t j)
{
	struct ent *t = c->heap[i];

	c->heap[i] = c->heap[j];
	c->heap[j] = t;
	c->heap[i]->hpos = i;
	c->heap[j]->hpos = j;
}

static void
hup(struct claimer *c, size_t i)
{
	while (i > 0 && c->heap[(i - 1) / 2]->at > c->heap[i]->at) {
		hswap(c, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
hdown(struct claimer *c, size_t i)
{
	size_t l, m;

	for (;;) {
		l = 2 * i + 1;
		m = i;
		if (l < c->nh && c->heap[l]->at < c->heap[m]->at)
			m = l;
		if (l + 1 < c->nh && c->heap[l + 1]->at < c->heap[m]->at)
			m = l + 1;
		if (m == i)
			return;
		hswap(c, i, m);
		i = m;
	}
}

static void
heap_del(struct claimer *c, struct ent *e)
{
	size_t i = e->hpos;

	c->nh--;
	if (i != c->nh) {
		c->heap[i] = c->heap[c->nh];
		c->heap[i]->hpos = i;
		hdown(c, i);
		hup(c, i);
	}
	e->where = E_NONE;
}

/*
 * Entries in job lists, jobs in the ring.
 */
static void
ring_add(struct batch *b, struct job *j)
{
	if (j->inring || j->parked)
		return;
	if (b->ring == NULL) {
		j->rn = j->rp = j;
		b->ring = j;
	} else {		/* at the end of the current turn */
		j->rn = b->ring;
		j->rp = b->ring->rp;
		j->rp->rn = j;
		b->ring->rp = j;
	}
	j->inring = 1;
}

static void
ring_del(struct batch *b, struct job *j)
{
	if (!j->inring)
		return;
	if (j->rn == j)
		b->ring = NULL;
	else {
		j->rp->rn = j->rn;
		j->rn->rp = j->rp;
		if (b->ring == j)
			b->ring = j->rn;
	}
	j->inring = 0;
}

static void
list_add(struct ent *e)
{
	struct ent **pp;

	for (pp = &e->j->head; *pp && (*pp)->sidx <= e->sidx; pp = &(*pp)->next)
		;
	e->next = *pp;
	*pp = e;
	e->where = E_LIST;
	ring_add(e->j->b, e->j);
}

static void
list_del(struct ent *e)
{
	struct ent **pp;

	for (pp = &e->j->head; *pp && *pp != e; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = e->next;
	e->next = NULL;
	e->where = E_NONE;
}

static void
ent_unplace(struct claimer *c, struct ent *e)
{
	if (e->where == E_LIST)
		list_del(e);
	else if (e->where == E_HEAP)
		heap_del(c, e);
}

static void
heap_add(struct claimer *c, struct ent *e, double at, int notme)
{
	ent_unplace(c, e);
	if (c->nh == c->caph) {
		c->caph = c->caph ? c->caph * 2 : 64;
		c->heap = phn_realloc(c->heap, c->caph * sizeof(*c->heap));
	}
	e->at = at;
	e->notme = notme;
	e->where = E_HEAP;
	e->hpos = c->nh;
	c->heap[c->nh++] = e;
	hup(c, e->hpos);
}

static void
ent_free(struct claimer *c, struct ent *e)
{
	ent_unplace(c, e);
	tab_del(&e->j->b->ents, e->name);
	free(e);
}

/* A step's position in its job, LONG_MAX if unknown (not loaded yet). */
static long
step_idx(struct job *j, const char *step)
{
	size_t i;

	for (i = 0; i < j->nsteps; i++)
		if (strcmp(j->steps[i], step) == 0)
			return (long)i;
	return LONG_MAX;
}

/*
 * Learn a job's step order and workdir from its index document on first
 * use, and order its list.  Only that is kept: the document itself is
 * read again for each claim, so that memory stays proportional to the
 * ready entries, not to the batch.
 */
static int
job_load(struct claimer *c, struct job *j)
{
	struct json_object *doc;
	struct ent *e, *l;
	const char *wdp;

	if (j->loaded)
		return 0;
	if ((doc = phn_sched_job(c->s.p, j->b->id, j->id)) == NULL)
		return -1;
	j->loaded = 1;
	json_object_object_foreach(json_object_object_get(doc, "steps"), k, v) {
		size_t at = (size_t)json_object_get_int64(
		    json_object_object_get(v, "index"));
		if (at >= 4096)
			continue;
		if (at >= j->nsteps) {
			j->steps = phn_realloc(j->steps, (at + 1) *
			    sizeof(*j->steps));
			memset(j->steps + j->nsteps, 0, (at + 1 - j->nsteps) *
			    sizeof(*j->steps));
			j->nsteps = at + 1;
		}
		free(j->steps[at]);
		j->steps[at] = phn_strdup(k);
	}
	l = j->head;
	j->head = NULL;
	while ((e = l) != NULL) {	/* re-sort, dropping unknown steps */
		l = e->next;
		e->next = NULL;
		e->where = E_NONE;
		if ((e->sidx = step_idx(j, e->step)) == LONG_MAX) {
			tab_del(&j->b->ents, e->name);
			free(e);
			continue;
		}
		list_add(e);
	}
	wdp = json_object_get_string(json_object_object_get(doc, "workdir"));
	if (phn_sched_workdir_limit(&c->s, wdp) > 0) {
		struct wdir *w = tab_get(&c->wdirs, wdp);
		if (w == NULL) {
			w = phn_malloc(sizeof(*w));
			memset(w, 0, sizeof(*w));
			w->path = phn_strdup(wdp);
			w->dir = phn_sched_workdir_dir(c->s.p, wdp);
			w->limit = phn_sched_workdir_limit(&c->s, wdp);
			phn_mkdirs(w->dir, 0755);
			tab_put(&c->wdirs, w->path, w);
			c->wv = phn_realloc(c->wv, (c->nwv + 1) * sizeof(*c->wv));
			c->wv[c->nwv++] = w;
			watch(c, w->dir, M_GONE, W_WDIR, w);
		}
		j->wd = w;
	}
	json_object_put(doc);
	return 0;
}

/* The batch's index document and settings, loaded when first needed. */
static int
batch_load(struct claimer *c, struct batch *b)
{
	struct json_object *jl, *v;
	size_t i, n;

	if (b->info != NULL)
		return 0;
	if ((b->info = phn_sched_info(c->s.p, b->id)) == NULL) {
		if (!b->warned)
			phn_warn("warning: batch %s: unreadable %s/_sched/"
			    "index.json; remove %s/_sched to rebuild it", b->id,
			    b->dir, b->dir);
		b->warned = 1;
		return -1;
	}
	jl = json_object_object_get(b->info, "jobs");
	n = json_object_array_length(jl);
	for (i = 0; i < n; i++)
		tab_put(&b->jidx, json_object_get_string(
		    json_object_array_get_idx(jl, i)), (void *)(uintptr_t)(i + 1));
	v = json_object_object_get(b->info, "concurrency");
	b->conc = c->o->concurrency > 0 ? c->o->concurrency :
	    phn_json_is_int(v) && json_object_get_int64(v) > 0 ?
	    json_object_get_int64(v) : 1;
	return 0;
}

/*
 * A name seen in _ready/, by a listing or (event) an inotify event.
 * Returns a new entry, already in its job's list; an event also puts the
 * job in the ring, a listing leaves that to relist() (in job order).
 */
static struct ent *
ent_seen(struct claimer *c, struct batch *b, const char *name, int event)
{
	struct ent *e = tab_get(&b->ents, name), **pp;
	struct job *j;
	char *part[2];
	char *jid;
	void *ix;

	if (e != NULL) {
		if (!event)
			return NULL;
		if (e->self > 0) {
			e->self--;
			return NULL;
		}
		/* Someone else re-added it: its fate may have changed. */
		e->known = 0;
		if (e->where != E_LIST) {
			ent_unplace(c, e);
			list_add(e);
		}
		return NULL;
	}
	if (phn_entry_split(name, part, 2) == -1)
		return NULL;
	if (!phn_id_valid(part[0], strlen(part[0])) ||
	    !phn_id_valid(part[1], strlen(part[1])) || batch_load(c, b) == -1) {
		free(part[0]);
		return NULL;
	}
	jid = part[0];	/* frees the step's part too */
	if ((j = tab_get(&b->jobs, jid)) == NULL) {
		if ((ix = tab_get(&b->jidx, jid)) == NULL) {
			free(jid);	/* not a job of this batch */
			return NULL;
		}
		j = phn_malloc(sizeof(*j));
		memset(j, 0, sizeof(*j));
		j->id = jid;
		j->idx = (long)(uintptr_t)ix - 1;
		j->b = b;
		tab_put(&b->jobs, j->id, j);
	} else
		free(jid);
	e = phn_malloc(sizeof(*e) + strlen(name) + 1);
	memset(e, 0, sizeof(*e));
	strcpy(e->name, name);
	e->step = e->name + strlen(j->id) + 1;
	e->j = j;
	e->sidx = LONG_MAX;
	if (j->loaded && (e->sidx = step_idx(j, e->step)) == LONG_MAX) {
		/* not a step of this job */
		free(e);
		return NULL;
	}
	tab_put(&b->ents, e->name, e);
	for (pp = &j->head; *pp && (*pp)->sidx <= e->sidx; pp = &(*pp)->next)
		;
	e->next = *pp;
	*pp = e;
	e->where = E_LIST;
	if (event)
		ring_add(b, j);
	return e;
}

static int
job_cmp(const void *a, const void *b)
{
	const struct job *x = *(struct job *const *)a, *y = *(struct job *const *)b;

	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Read _ready/ and add what is new; new jobs join the ring in job order.
 * A one-shot claimer (max > 0) reads at most max names at a time and
 * keeps the directory stream open to read on if those yield no claim, so
 * that one claim does not cost a listing of a huge ready index.
 */
static void
relist(struct claimer *c, struct batch *b, size_t max)
{
	struct job **nj = NULL;
	size_t n = 0, cap = 0, i, seen = 0;
	double t0 = phn_now();
	struct dirent *de;
	struct ent *e;
	char *d;

	if (b->dp == NULL) {
		d = phn_asprintf("%s/_ready", b->dir);
		b->dp = opendir(d);
		free(d);
		if (b->dp == NULL)
			return;
	}
	while ((max == 0 || seen < max) && (de = readdir(b->dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		seen++;
		if ((e = ent_seen(c, b, de->d_name, 0)) == NULL ||
		    e->j->inring || e->j->parked || e->j->listed)
			continue;
		e->j->listed = 1;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			nj = phn_realloc(nj, cap * sizeof(*nj));
		}
		nj[n++] = e->j;
	}
	if (max == 0 || seen < max) {
		closedir(b->dp);
		b->dp = NULL;
	}
	if (n > 0)
		qsort(nj, n, sizeof(*nj), job_cmp);
	for (i = 0; i < n; i++) {
		nj[i]->listed = 0;
		ring_add(b, nj[i]);
	}
	free(nj);
	b->listed = phn_now();
	if (max == 0)
		b->listcost = b->listed - t0;
}

static void
batch_free(struct claimer *c, struct batch *b)
{
	size_t i, k;

	for (i = 0; i < c->nwv; i++) {	/* parked jobs of this batch */
		struct job **pp = &c->wv[i]->parked;
		while (*pp)
			if ((*pp)->b == b)
				*pp = (*pp)->pnext;
			else
				pp = &(*pp)->pnext;
	}
	for (i = 0; i < b->ents.cap; i++)
		if (b->ents.k[i] && b->ents.k[i] != tomb) {
			struct ent *e = b->ents.v[i];
			ent_unplace(c, e);
			free(e);
		}
	for (i = 0; i < b->jobs.cap; i++)
		if (b->jobs.k[i] && b->jobs.k[i] != tomb) {
			struct job *j = b->jobs.v[i];
			for (k = 0; k < j->nsteps; k++)
				free(j->steps[k]);
			free(j->steps);
			free(j->id);
			free(j);
		}
	if (b->dp != NULL)
		closedir(b->dp);
	tab_free(&b->ents);
	tab_free(&b->jobs);
	tab_free(&b->jidx);
	json_object_put(b->info);
	free(b->id);
	free(b->dir);
	free(b);
}

/* The persisted round-robin cursors, advisory (written without fsync). */
static char *
cursor_read(const char *path)
{
	char *buf;
	size_t len;

	if (phn_read_file(path, &buf, &len, 4096) == -1)
		return NULL;
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

static void
cursor_write(const char *path, const char *val)
{
	char *t = phn_asprintf("%s\n", val);

	phn_atomic_write(path, t, strlen(t), 0);
	free(t);
}

/*
 * Open a batch: its schedule index (built on first sight), its ready
 * index (rebuilt from the attempts if it was never built), watches, and
 * a first listing.  NULL if the batch cannot be served now (warned).
 */
static void sweep_claimed(struct claimer *, struct batch *, double);

static struct batch *
batch_open(struct claimer *c, const char *id)
{
	struct batch *b;
	char msg[512], *f, *lp, *cur;
	size_t i;
	int fd;

	/*
	 * A batch whose batch_meta.json is unreadable is skipped, named: its
	 * (derived) index may be older than the damage.  A system call that
	 * fails here (a read-only or full store) is a temporary failure: if
	 * nothing is claimed, exit 111 with its cause, not "nothing".
	 */
	if (phn_batch_meta_ok(c->s.p, id, msg, sizeof(msg)) == -1) {
		phn_warn("warning: batch %s: %s; skipped, nothing claimed "
		    "from it", id, msg);
		return NULL;
	}
	if (phn_sched_index(c->s.p, id, msg, sizeof(msg)) == -1) {
		phn_warn("warning: batch %s: %s; skipped", id, msg);
		c->cerr = 1;
		return NULL;
	}
	/* The ready index, built from the attempts if it never was. */
	f = phn_batch_path(c->s.p, id, "_sched/ready.json");
	lp = phn_batch_path(c->s.p, id, "_ready");
	if ((access(f, F_OK) == -1 || access(lp, F_OK) == -1) &&
	    phn_sched_rescan(&c->s, id, PHN_RESCAN_IF_NEEDED, NULL, msg,
	    sizeof(msg)) == -1) {
		phn_warn("warning: batch %s: %s", id, msg);
		c->cerr = 1;
	}
	free(lp);
	free(f);
	b = phn_malloc(sizeof(*b));
	memset(b, 0, sizeof(*b));
	b->id = phn_strdup(id);
	b->dir = phn_path_join(c->s.p->runs, id);
	f = phn_path_join(b->dir, "batch_closed.json");
	b->closed = access(f, F_OK) == 0;
	free(f);
	for (i = 0; i < 3; i++) {
		static const char *sub[] = { "_ready", "_active", "_claimed" };
		f = phn_path_join(b->dir, sub[i]);
		if (mkdir(f, 0755) == -1 && errno != EEXIST)
			phn_warn("warning: unable to create %s:", f);
		free(f);
	}
	watch(c, b->dir, M_NEW, W_BATCH, b);
	f = phn_path_join(b->dir, "_ready");
	watch(c, f, M_NEW, W_READY, b);
	free(f);
	f = phn_path_join(b->dir, "_active");
	watch(c, f, M_GONE, W_ACTIVE, b);
	free(f);
	/* Expire leases and drop leaked slots: this claimer is "the next". */
	f = phn_path_join(b->dir, "_active");
	if (phn_sched_slots(&c->s, f, b->id, 0, phn_now()) > 0) {
		char *lp2 = phn_path_join(f, ".lock");
		if ((fd = phn_lock_wait(lp2, 30)) != -1) {
			phn_sched_slots(&c->s, f, b->id, 1, phn_now());
			phn_lock_close(fd);
		}
		free(lp2);
	}
	free(f);
	b->checked = phn_now();
	/* Claims whose claimer died (liveness.c) are ready again. */
	sweep_claimed(c, b, b->checked);
	relist(c, b, c->o->follow ? 0 : LIST_CHUNK);
	/* Start the job turn after the last job any claimer served. */
	f = phn_path_join(b->dir, "_sched/cursor");
	if ((cur = cursor_read(f)) != NULL && b->ring != NULL) {
		void *ix = tab_get(&b->jidx, cur);
		long want = ix ? (long)(uintptr_t)ix - 1 : -1;
		struct job *j0 = b->ring;
		do {
			if (b->ring->idx > want)
				break;
			b->ring = b->ring->rn;
		} while (b->ring != j0);
	}
	free(cur);
	free(f);
	return b;
}

static int
bcmp_id(const void *a, const void *b)
{
	return strcmp((*(struct batch *const *)a)->id,
	    (*(struct batch *const *)b)->id);
}

static void
batch_add(struct claimer *c, struct batch *b)
{
	size_t i;
	struct batch *cur = c->nb ? c->bv[c->cursor % c->nb] : NULL;

	c->bv = phn_realloc(c->bv, (c->nb + 1) * sizeof(*c->bv));
	c->bv[c->nb++] = b;
	qsort(c->bv, c->nb, sizeof(*c->bv), bcmp_id);
	for (i = 0; cur && i < c->nb; i++)
		if (c->bv[i] == cur)
			c->cursor = i;
}

static struct batch *
batch_find(struct claimer *c, const char *id)
{
	size_t i;

	for (i = 0; i < c->nb; i++)
		if (strcmp(c->bv[i]->id, id) == 0)
			return c->bv[i];
	return NULL;
}

/* Serve every batch in runs/ (not closed) that is not served yet. */
static void
batches_scan(struct claimer *c)
{
	char **v, *f;
	size_t n, i;
	struct batch *b;

	if ((v = phn_batch_list(c->s.p, &n)) == NULL)
		return;
	for (i = 0; i < n; i++) {
		if (batch_find(c, v[i]) != NULL || tab_get(&c->bad, v[i]))
			continue;
		f = phn_batch_path(c->s.p, v[i], "batch_closed.json");
		if (access(f, F_OK) == -1) {
			if ((b = batch_open(c, v[i])) != NULL)
				batch_add(c, b);
			else {	/* warned once; not again every poll */
				char *k = phn_strdup(v[i]);
				tab_put(&c->bad, k, k);
			}
		}
		free(f);
	}
	phn_dir_list_free(v, n);
}

static void
unpark(struct claimer *c, struct wdir *w)
{
	struct job *j;

	(void)c;
	w->full = 0;
	while ((j = w->parked) != NULL) {
		w->parked = j->pnext;
		j->parked = 0;
		if (j->head)
			ring_add(j->b, j);
	}
}

/* Put a claimed entry back into _ready/ (our own event will be skipped). */
static void
put_back(struct batch *b, struct ent *e, const char *claimed)
{
	char *r = phn_asprintf("%s/_ready/%s", b->dir, e->name);

	if (rename(claimed, r) == 0)
		e->self++;
	else
		phn_warn("warning: unable to rename %s to %s:", claimed, r);
	free(r);
}

/* Undo a claim nobody received (stdout failed): end it at once. */
static void
unclaim(struct claimer *c, const char *dir)
{
	struct json_object *f = json_object_new_object(), *st;
	struct phn_attempt a;

	json_object_object_add(f, "failure_kind",
	    json_object_new_string("claim_expired"));
	json_object_object_add(f, "harness_fault", json_object_new_boolean(1));
	json_object_object_add(f, "current_item", json_object_new_string(
	    "claim could not be handed over: standard output failed"));
	if (phn_state_update(dir, "failed", f) == 1 &&
	    phn_attempt_parse(c->s.p, dir, &a) == 0) {
		st = phn_state_read(dir);
		phn_current_note(c->s.p, &a, st);
		json_object_put(st);
		phn_sched_attempt_ended(c->s.p, &a);
		phn_attempt_free(&a);
	}
	json_object_put(f);
}

enum { T_CLAIMED, T_NEXT, T_STOP };

/*
 * One try of an entry, as named steps that share one cleanup path
 * (try_done): try_take renames the entry into _claimed/ if its time has
 * come; try_claim runs phn_sched_claim on it; then try_hand hands a
 * claimed attempt over on standard output, or try_settle does what the
 * verdict says with the entry.
 */
struct tryop {
	struct claimer *c;
	struct batch *b;
	struct ent *e;
	struct phn_claim res;
	char	*cl;		/* the entry in _claimed/ */
	double	 since;		/* when the entry became ready */
	double	 now;
};

static int
try_take(struct tryop *t)
{
	struct ent *e = t->e;
	struct stat sb;
	char *r = phn_asprintf("%s/_ready/%s", t->b->dir, e->name);
	double nb = 0;
	int ret = -1;

	if (!e->known) {
		nb = phn_sched_ready_time(r);
		e->known = 1;
	}
	if (nb > t->now)
		heap_add(t->c, e, nb, 0);
	else if (nb < 0 || stat(r, &sb) == -1)
		ent_free(t->c, e);
	else {
		t->since = (double)sb.st_mtim.tv_sec + sb.st_mtim.tv_nsec / 1e9;
		t->cl = phn_asprintf("%s/_claimed/%s@%s", t->b->dir, e->name,
		    t->c->token);
		if (rename(r, t->cl) == 0)
			ret = 0;
		else {
			if (errno != ENOENT) {
				/* a read-only or full store: 111 if nothing
				 * is claimed (claimer_done) */
				phn_warn("warning: unable to rename %s:", r);
				t->c->cerr = 1;
			}
			ent_free(t->c, e);	/* another claimer took it */
		}
	}
	free(r);
	return ret;
}

/* Re-check and create the attempt; returns phn_sched_claim's verdict. */
static int
try_claim(struct tryop *t)
{
	struct claimer *c = t->c;
	struct batch *b = t->b;
	struct json_object *doc;
	int v;

	if ((doc = phn_sched_job(c->s.p, b->id, t->e->j->id)) == NULL &&
	    !b->rescanned) {
		/* A damaged schedule index: rebuild it, once per process. */
		char m[512];
		b->rescanned = 1;
		if (phn_sched_rescan(&c->s, b->id, 0, NULL, m, sizeof(m)) == -1)
			phn_warn("warning: batch %s: %s", b->id, m);
		doc = phn_sched_job(c->s.p, b->id, t->e->j->id);
	}
	if (doc == NULL) {
		t->res.verdict = PHN_CLAIM_ERROR;
		snprintf(t->res.why, sizeof(t->res.why), "unreadable "
		    "_sched/jobs/%s.json; run phn-claim --rescan", t->e->j->id);
		v = PHN_CLAIM_ERROR;
	} else
		v = phn_sched_claim(&c->s, b->id, b->info, doc, t->e->step,
		    b->conc, t->since, &t->res);
	json_object_put(doc);
	return v;
}

/* Hand the attempt over and keep it as outstanding; the job's turn is over. */
static int
try_hand(struct tryop *t)
{
	struct job *j = t->e->j;
	struct claimer *c = t->c;
	struct batch *b = t->b;
	struct out *o;

	unlink(t->cl);
	/* The claim durable before anyone can start it (phn(5)). */
	if (phn_durable_flush() == -1) {
		c->serr = errno ? errno : EIO;
		unclaim(c, t->res.dir);
		return T_STOP;
	}
	if (fprintf(c->o->out, "%s%c", t->res.dir, c->o->nul ? '\0' :
	    '\n') < 0 || fflush(c->o->out) == EOF) {
		c->werr = errno ? errno : EIO;
		unclaim(c, t->res.dir);
		return T_STOP;
	}
	o = phn_malloc(sizeof(*o));
	o->b = b;
	o->entry = t->res.entry;
	o->dir = t->res.dir;
	t->res.entry = t->res.dir = NULL;
	c->ov = phn_realloc(c->ov, (c->nov + 1) * sizeof(*c->ov));
	c->ov[c->nov++] = o;
	tab_put(&c->outs, o->entry, o);
	b->claims++;
	b->lastjob = j->id;
	c->total++;
	if (b->ring == j)
		b->ring = j->rn;
	ent_free(c, t->e);
	if (j->head == NULL)
		ring_del(b, j);
	return T_CLAIMED;
}

/* Not claimed: drop the entry, or put it back, as verdict v says. */
static int
try_settle(struct tryop *t, int v)
{
	struct claimer *c = t->c;
	struct batch *b = t->b;
	struct ent *e = t->e;

	switch (v) {
	case PHN_CLAIM_DROP:
		unlink(t->cl);
		ent_free(c, e);
		break;
	case PHN_CLAIM_LATER:
		if (phn_sched_ready_add(c->s.p, b->id, e->j->id, e->step,
		    t->res.at) == 0)
			e->self++;
		unlink(t->cl);
		heap_add(c, e, t->res.at, 0);
		break;
	case PHN_CLAIM_NOTME:
		put_back(b, e, t->cl);
		heap_add(c, e, t->res.at, 1);
		break;
	case PHN_CLAIM_BATCH_FULL:
		put_back(b, e, t->cl);
		b->full = 1;
		break;
	case PHN_CLAIM_RUNNER_FULL:
		put_back(b, e, t->cl);
		c->rfull = 1;
		return T_STOP;
	case PHN_CLAIM_WORKDIR_FULL:
		put_back(b, e, t->cl);
		if (e->j->wd != NULL) {
			e->j->wd->full = 1;
			ring_del(b, e->j);
			e->j->parked = 1;
			e->j->pnext = e->j->wd->parked;
			e->j->wd->parked = e->j;
		} else
			heap_add(c, e, t->now + POLL_SECONDS, 0);
		break;
	default:
		put_back(b, e, t->cl);
		c->cerr = 1;
		phn_warn("warning: %s/%s: %s", b->id, e->name, t->res.why);
		/* A claim that keeps failing (a link planted in the store, a
		 * full disk) must not hold --follow open for ever: after a few
		 * tries the entry waits, in _ready/, until someone re-adds it. */
		if (++e->errs < CLAIM_TRIES)
			heap_add(c, e, t->now + POLL_SECONDS, 0);
		else {
			ent_unplace(c, e);
			phn_warn("warning: %s/%s: giving up on it after %d "
			    "failed claims", b->id, e->name, e->errs);
		}
		break;
	}
	return T_NEXT;
}

/* The one cleanup: what the try made and did not hand on. */
static int
try_done(struct tryop *t, int r)
{
	free(t->cl);
	free(t->res.dir);
	free(t->res.entry);
	return r;
}

/* Try one entry of batch b. */
static int
try_ent(struct claimer *c, struct batch *b, struct ent *e)
{
	struct tryop t;
	int v, r = T_NEXT;

	memset(&t, 0, sizeof(t));
	t.c = c;
	t.b = b;
	t.e = e;
	t.now = phn_now();
	if (try_take(&t) == 0) {
		v = try_claim(&t);
		r = v == PHN_CLAIM_OK ? try_hand(&t) : try_settle(&t, v);
	}
	return try_done(&t, r);
}

static int
at_cap(struct claimer *c)
{
	return (c->o->jobs > 0 && (long long)c->nov >= c->o->jobs) ||
	    (c->o->n > 0 && c->total >= c->o->n);
}

/* One claim from batch b, round-robin over its jobs. */
static int
serve(struct claimer *c, struct batch *b)
{
	struct job *j;
	struct ent *e;
	int r;

	while (!b->full && !b->closed) {
		if ((j = b->ring) == NULL) {
			if (b->dp == NULL)
				break;
			relist(c, b, LIST_CHUNK);	/* read on */
			continue;
		}
		if ((e = j->head) == NULL) {
			ring_del(b, j);
			continue;
		}
		if (!j->loaded && job_load(c, j) == -1 && !b->rescanned) {
			char m[512];
			b->rescanned = 1;
			if (phn_sched_rescan(&c->s, b->id, 0, NULL, m,
			    sizeof(m)) == -1)
				phn_warn("warning: batch %s: %s", b->id, m);
		}
		if (!j->loaded && job_load(c, j) == -1) {
			phn_warn("warning: batch %s: no index for job %s; run "
			    "phn-claim --rescan", b->id, j->id);
			while ((e = j->head) != NULL)
				ent_free(c, e);
			ring_del(b, j);
			continue;
		}
		if ((e = j->head) == NULL) {	/* job_load() re-sorted it */
			ring_del(b, j);
			continue;
		}
		if (j->wd != NULL && j->wd->full) {
			ring_del(b, j);
			j->parked = 1;
			j->pnext = j->wd->parked;
			j->wd->parked = j;
			continue;
		}
		if ((r = try_ent(c, b, e)) != T_NEXT)
			return r;
		if (j->head == NULL && !j->parked)
			ring_del(b, j);
	}
	return T_NEXT;
}

static void
heap_due(struct claimer *c, double now)
{
	struct ent *e;

	while (c->nh > 0 && c->heap[0]->at <= now) {
		e = c->heap[0];
		heap_del(c, e);
		e->known = e->notme;	/* a time we set ourselves is known */
		e->notme = 0;
		list_add(e);
	}
}

/* Events, if any; returns after draining them. */
static void
events(struct claimer *c)
{
#ifdef __linux__
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	char *p;
	size_t i;

	if (c->ifd == -1)
		return;
	while ((n = read(c->ifd, buf, sizeof(buf))) > 0) {
		for (p = buf; p < buf + n; p += sizeof(struct inotify_event) +
		    ((struct inotify_event *)p)->len) {
			struct inotify_event *ev = (struct inotify_event *)p;
			struct wmap *w = NULL;
			if (ev->mask & IN_Q_OVERFLOW) {
				for (i = 0; i < c->nb; i++) {
					c->bv[i]->dirty = 1;
					c->bv[i]->full = 0;
				}
				c->rfull = 0;
				for (i = 0; i < c->nwv; i++)
					unpark(c, c->wv[i]);
				continue;
			}
			for (i = 0; i < c->nwm; i++)
				if (c->wm[i].wd == ev->wd)
					w = &c->wm[i];
			if (w == NULL || ev->len == 0)
				continue;
			switch (w->kind) {
			case W_RUNS:
				if (ev->name[0] != '_' && ev->name[0] != '.')
					c->tick = 0;	/* scan now */
				break;
			case W_BATCH:
				if (strcmp(ev->name, "batch_closed.json") == 0)
					((struct batch *)w->ptr)->closed = 1;
				break;
			case W_READY:
				if (ev->name[0] != '.')
					ent_seen(c, w->ptr, ev->name, 1);
				break;
			case W_ACTIVE: {
				struct batch *b = w->ptr;
				struct out *o;
				b->full = 0;
				if ((o = tab_get(&c->outs, ev->name)) != NULL &&
				    o->b == b)
					o->b = NULL;	/* done: compacted later */
				break;
			}
			case W_RUNNER:
				if (strcmp(ev->name, "drain.json") == 0)
					c->drained = phn_runner_drained(c->s.p,
					    c->o->runner);
				break;
			case W_RACTIVE:
				c->rfull = 0;
				break;
			case W_WDIR:
				unpark(c, w->ptr);
				break;
			}
		}
	}
#else
	(void)c;
#endif
}

/* Drop finished attempts from this claimer's outstanding set. */
static void
outs_compact(struct claimer *c, int poll)
{
	size_t i, k;
	char *f;

	for (i = k = 0; i < c->nov; i++) {
		struct out *o = c->ov[i];
		if (o->b != NULL && poll) {
			f = phn_asprintf("%s/_active/%s", o->b->dir, o->entry);
			if (access(f, F_OK) == -1 && errno == ENOENT)
				o->b = NULL;
			free(f);
		}
		if (o->b != NULL) {
			c->ov[k++] = o;
			continue;
		}
		tab_del(&c->outs, o->entry);
		free(o->entry);
		free(o->dir);
		free(o);
	}
	c->nov = k;
}

/* Count (and with check, validate) a slot directory under its lock. */
static long long
slots(struct claimer *c, const char *dir, const char *batch, int check)
{
	char *lp;
	long long n;
	int fd;

	if (!check)
		return phn_sched_slots(&c->s, dir, batch, 0, phn_now());
	lp = phn_path_join(dir, ".lock");
	if ((fd = phn_lock_wait(lp, 30)) == -1) {
		free(lp);
		return phn_sched_slots(&c->s, dir, batch, 0, phn_now());
	}
	free(lp);
	n = phn_sched_slots(&c->s, dir, batch, 1, phn_now());
	phn_lock_close(fd);
	return n;
}

/* Return _claimed/ entries whose claimer died to _ready/. */
static void
sweep_claimed(struct claimer *c, struct batch *b, double now)
{
	char *d = phn_path_join(b->dir, "_claimed"), **v;
	size_t n, i;
	struct stat sb;

	(void)c;
	if ((v = phn_dir_list(d, &n)) != NULL) {
		for (i = 0; i < n; i++) {
			char *f = phn_path_join(d, v[i]), *at, *r;
			at = strrchr(v[i], '@');
			if (at != NULL && stat(f, &sb) == 0 &&
			    (now - (double)sb.st_ctime > CLAIMED_STALE ||
			    phn_claim_token_dead(at + 1))) {
				*at = '\0';
				r = phn_asprintf("%s/_ready/%s", b->dir, v[i]);
				if (access(r, F_OK) == -1)
					rename(f, r);
				else
					unlink(f);
				free(r);
			}
			free(f);
		}
		phn_dir_list_free(v, n);
	}
	free(d);
}

/*
 * The periodic work, at most every POLL_SECONDS: what inotify cannot see
 * (other hosts), limits that may have eased, leases to expire.
 */
static void
poll_tick(struct claimer *c, double now)
{
	size_t i;
	char *f;

	c->tick = now;
	if (c->o->nbatches == 0)
		batches_scan(c);
	c->drained = phn_runner_drained(c->s.p, c->o->runner);
	if (c->rfull) {
		f = phn_runner_path(c->s.p, c->o->runner, "active");
		if (slots(c, f, NULL, 0) < c->s.runner_cap ||
		    slots(c, f, NULL, 1) < c->s.runner_cap)
			c->rfull = 0;
		free(f);
	}
	for (i = 0; i < c->nwv; i++)
		if (c->wv[i]->full && (slots(c, c->wv[i]->dir, NULL, 0) <
		    c->wv[i]->limit || slots(c, c->wv[i]->dir, NULL, 1) <
		    c->wv[i]->limit))
			unpark(c, c->wv[i]);
	for (i = 0; i < c->nb; i++) {
		struct batch *b = c->bv[i];
		if (!b->closed) {
			f = phn_path_join(b->dir, "batch_closed.json");
			b->closed = access(f, F_OK) == 0;
			free(f);
		}
		if (b->closed)
			continue;
		f = phn_path_join(b->dir, "_active");
		if (now - b->checked >= CHECK_SECONDS) {
			/* Expire leases, reap orphans, drop leaked slots. */
			b->checked = now;
			if (slots(c, f, b->id, 0) > 0)
				slots(c, f, b->id, 1);
		}
		if (b->full && slots(c, f, b->id, 0) < b->conc)
			b->full = 0;
		free(f);
		if (b->dirty || (b->ring == NULL && now - b->listed >=
		    POLL_SECONDS) || now - b->listed >= 2 + 50 * b->listcost) {
			b->dirty = 0;
			relist(c, b, 0);
		}
		if (now - b->swept >= 30) {
			b->swept = now;
			sweep_claimed(c, b, now);
		}
	}
	outs_compact(c, 1);
	if (c->nov > 0 && now - c->outchecked >= CHECK_SECONDS) {
		/* A crashed ender leaves its slot: validate our batches. */
		c->outchecked = now;
		for (i = 0; i < c->nb; i++) {
			size_t k;
			for (k = 0; k < c->nov && c->ov[k]->b != c->bv[i]; k++)
				;
			if (k < c->nov) {
				f = phn_path_join(c->bv[i]->dir, "_active");
				slots(c, f, c->bv[i]->id, 1);
				free(f);
			}
		}
		outs_compact(c, 1);
	}
}

/*
 * Whether a --follow claimer is done: nothing it could claim now or
 * later, nothing of its own outstanding, and no queued or running
 * attempt in the batches it serves (whose end may make more runnable).
 */
static int
finished(struct claimer *c)
{
	size_t i;
	char *f;
	double now = phn_now();

	if (c->nov > 0)
		return 0;
	if (!c->drained) {
		for (i = 0; i < c->nh; i++)
			if (!c->heap[i]->notme)
				return 0;
		for (i = 0; i < c->nb; i++)
			if (!c->bv[i]->closed && (c->bv[i]->ring != NULL ||
			    c->bv[i]->full))
				return 0;
		for (i = 0; i < c->nwv; i++)
			if (c->wv[i]->parked != NULL)
				return 0;
		if (c->rfull)
			return 0;
	}
	for (i = 0; i < c->nb; i++) {
		struct batch *b = c->bv[i];
		if (b->closed)
			continue;
		f = phn_path_join(b->dir, "_active");
		if (slots(c, f, b->id, 0) > 0) {
			/* Validated at most every CHECK_SECONDS: leaks, leases. */
			if (now - b->checked < CHECK_SECONDS ||
			    (b->checked = now, slots(c, f, b->id, 1) > 0)) {
				free(f);
				return 0;
			}
		}
		free(f);
		/* A last look for entries no event told us about. */
		relist(c, b, 0);
		if (b->ring != NULL && !c->drained)
			return 0;
	}
	return 1;
}

static void
wait_events(struct claimer *c, double now)
{
	struct pollfd pf;
	double t = POLL_SECONDS - (now - c->tick);
	int ms;

	if (c->nh > 0 && c->heap[0]->at - now < t)
		t = c->heap[0]->at - now;
	if (t < 0.001)
		t = 0.001;
	ms = (int)(t * 1000) + 1;
	if (c->ifd == -1) {
		poll(NULL, 0, ms);
		return;
	}
	pf.fd = c->ifd;
	pf.events = POLLIN;
	pf.revents = 0;
	if (poll(&pf, 1, ms) > 0)
		events(c);
}

/*
 * A claimer's run, as named steps that share one cleanup path
 * (claimer_done): claimer_init sets up its token and watches;
 * claimer_open finds the batches to serve and the cursor; claimer_loop
 * claims, a turn at a time, until done; claimer_save remembers where the
 * turns stopped, for the next claimer.
 */
static void
claimer_init(struct claimer *c, const struct phn_paths *p,
    const struct phn_config *cfg, const struct phn_claim_opts *o)
{
	char *f;
	size_t i;

	memset(c, 0, sizeof(*c));
	c->o = o;
	phn_sched_init(&c->s, p, cfg);
	c->s.runner = o->runner;
	snprintf(c->token, sizeof(c->token), "%.40s.%ld.%08x", phn_hostname(),
	    (long)getpid(), phn_random32());
	for (i = 0; c->token[i]; i++)
		if (c->token[i] == '@' || c->token[i] == '/')
			c->token[i] = '_';
	phn_runner_limits(&c->run, cfg, o->memfree, o->maxload);
	phn_runner_open(&c->run, p, o->runner, c->s.runner_cap, o->jobs);
	c->ifd = o->follow ? watch_init() : -1;
	if (o->follow) {
		watch(c, p->runs, M_NEW, W_RUNS, NULL);
		f = phn_path_join(p->runners, o->runner);
		phn_mkdirs(f, 0755);
		watch(c, f, M_ANY, W_RUNNER, NULL);
		free(f);
	}
	if (c->s.runner_cap > 0) {
		f = phn_runner_path(p, o->runner, "active");
		phn_mkdirs(f, 0755);
		watch(c, f, M_GONE, W_RACTIVE, NULL);
		free(f);
	}
}

/* The batches to serve, from the batch after the last claimer's last. */
static void
claimer_open(struct claimer *c)
{
	const struct phn_claim_opts *o = c->o;
	struct batch *b;
	char *f, *cur;
	size_t i;

	if (o->nbatches > 0) {
		for (i = 0; i < o->nbatches; i++)
			if ((b = batch_open(c, o->batches[i])) != NULL &&
			    batch_find(c, b->id) == NULL)
				batch_add(c, b);
			else if (b != NULL)
				batch_free(c, b);
	} else
		batches_scan(c);
	f = phn_path_join(c->s.p->runs, "_system/claim_cursor");
	if ((cur = cursor_read(f)) != NULL) {
		for (c->cursor = 0; c->cursor < c->nb &&
		    strcmp(c->bv[c->cursor]->id, cur) <= 0; c->cursor++)
			;
		if (c->nb > 0)
			c->cursor %= c->nb;
		free(cur);
	}
	free(f);
	c->drained = phn_runner_drained(c->s.p, o->runner);
	c->tick = phn_now();
}

/* One claim, from the batches in turn; 1 if it claimed one. */
static int
claimer_turn(struct claimer *c)
{
	size_t k;
	int r;

	if (!c->drained && !c->rfull && !at_cap(c) && c->nb > 0 &&
	    !phn_runner_admit(&c->run))
		return 0;	/* pressure: health.json says why */
	for (k = 0; k < c->nb && !c->drained && !c->rfull && !at_cap(c);
	    k++) {
		r = serve(c, c->bv[(c->cursor + k) % c->nb]);
		if (r == T_CLAIMED) {
			c->cursor = (c->cursor + k + 1) % c->nb;
			return 1;
		}
		if (r == T_STOP)
			break;
	}
	return 0;
}

static void
claimer_loop(struct claimer *c)
{
	const struct phn_claim_opts *o = c->o;
	double now;
	int claimed;

	for (;;) {
		now = phn_now();
		phn_runner_beat(&c->run, (long long)c->nov, c->drained ||
		    c->drain_said, 0);
		if (claim_sig)
			break;
		events(c);
		outs_compact(c, c->ifd == -1);
		heap_due(c, now);
		if (now - c->tick >= POLL_SECONDS)
			poll_tick(c, now);
		if (draining(c)) {
			outs_compact(c, 1);
			if (c->nov == 0)
				break;
			wait_events(c, phn_now());
			continue;
		}
		claimed = paused(c, now) ? 0 : claimer_turn(c);
		if (c->werr || c->serr)
			break;
		if (claimed)
			continue;
		if (o->n > 0 && c->total >= o->n)
			break;
		if (!o->follow)
			break;
		if (!at_cap(c) && finished(c))
			break;
		wait_events(c, phn_now());
	}
}

/* Remember where the turns stopped, for the next claimer. */
static void
claimer_save(struct claimer *c)
{
	char *f;
	size_t i;

	for (i = 0; i < c->nb; i++)
		if (c->bv[i]->claims > 0 && c->bv[i]->lastjob != NULL) {
			f = phn_path_join(c->bv[i]->dir, "_sched/cursor");
			cursor_write(f, c->bv[i]->lastjob);
			free(f);
		}
	if (c->total > 0 && c->nb > 0) {
		f = phn_path_join(c->s.p->runs, "_system/claim_cursor");
		cursor_write(f, c->bv[(c->cursor + c->nb - 1) % c->nb]->id);
		free(f);
	}
}

/* The one cleanup; returns phn_claim_run's result. */
static int
claimer_done(struct claimer *c)
{
	size_t i;
	int r;

	/* Nothing claimed because a claim failed: 111, not "nothing". */
	r = c->total > 0 ? 0 : c->cerr ? PHN_EXIT_TEMP : c->o->follow ? 0 : 1;
	if (r == 1 && c->run.waiting[0])
		phn_warn("runner %s claimed nothing: %s", c->o->runner,
		    c->run.waiting);
	if (c->serr) {
		errno = c->serr;
		phn_warn("unable to sync the store %s:", c->s.p->runs);
		r = PHN_EXIT_TEMP;
	}
	phn_runner_close(&c->run);
	if (c->werr) {
		errno = c->werr;
		phn_warn("unable to write standard output:");
		r = PHN_EXIT_TEMP;
	}
	for (i = 0; i < c->nb; i++)
		batch_free(c, c->bv[i]);
	free(c->bv);
	for (i = 0; i < c->nwv; i++) {
		free(c->wv[i]->path);
		free(c->wv[i]->dir);
		free(c->wv[i]);
	}
	free(c->wv);
	tab_free(&c->wdirs);
	for (i = 0; i < c->bad.cap; i++)
		if (c->bad.k[i] && c->bad.k[i] != tomb)
			free(c->bad.v[i]);
	tab_free(&c->bad);
	for (i = 0; i < c->nov; i++) {
		free(c->ov[i]->entry);
		free(c->ov[i]->dir);
		free(c->ov[i]);
	}
	free(c->ov);
	tab_free(&c->outs);
	free(c->heap);
	free(c->wm);
	if (c->ifd != -1)
		close(c->ifd);
	return r;
}

/*
 * Claim runnable steps as c->o says (see phn-claim(1)).  Returns 0 if it
 * claimed anything (or, with follow, when it is done), 1 if nothing was
 * claimable.
 */
int
phn_claim_run(const struct phn_paths *p, const struct phn_config *cfg,
    const struct phn_claim_opts *o)
{
	struct claimer c;
	struct sigaction sa;
	int r, sigs[] = { SIGTERM, SIGINT, SIGHUP };
	size_t i;

	sig_follow = o->follow;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	claimer_init(&c, p, cfg, o);
	c.kill_grace = phn_config_num(cfg, "defaults.kill_grace_seconds", 10);
	phn_durable_group(p->runs);	/* flushed before each hand-over */
	claimer_open(&c);
	claimer_loop(&c);
	claimer_save(&c);
	r = claimer_done(&c);
	if (claim_sig) {
		fflush(NULL);
		signal(claim_sig, SIG_DFL);
		raise(claim_sig);
	}
	return r;
}
