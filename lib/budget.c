/*
 * budget.c - a batch's token budget.
 *
 * The limit: runs/B/budget.json (phn-budget, the operator's, newest
 * wins), else the batch's effective_defaults.budget.max_total_tokens (the
 * Launch Table's budget over the harness config's defaults.budget; null
 * or absent: none).  on_exhausted ("wait", default, or "cancel") comes
 * from effective_defaults.budget.
 *
 * Tokens used: the sum over the batch's attempts of input_tokens +
 * output_tokens of each state.json's usage_attempt, else usage (what a
 * running attempt has reported so far counts) - phn_budget_tokens() is
 * the one rule, phn_budget_used() the one walk.  phn-score sums the
 * usage it reads anyway; a claimer asks phn_budget_cached(), which walks
 * a batch's attempts at most every 0.25 s per process (or less often
 * for a batch whose walk is slow), and only for a batch that has a
 * limit.
 *
 * Once used >= the limit the batch is exhausted: the step policy blocks
 * every step that would run (reason budget_exhausted), so nothing new is
 * claimed; with on_exhausted cancel, phn-heartbeat --remediate cancels
 * its running attempts (phn_budget_enforce).  Raising the limit
 * (phn-budget) resumes the batch.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

#define CACHE_TTL	0.25	/* seconds a claimer's budget view lives */
#define CACHE_N		16

/* The tokens a usage object counts for: input + output. */
long long
phn_budget_tokens(long long input, long long output)
{
	return input + output;
}

static long long
ukey(struct json_object *u, const char *k)
{
	struct json_object *v = phn_json_get(u, k);

	return phn_json_is_int(v) && json_object_get_int64(v) > 0 ?
	    (long long)json_object_get_int64(v) : 0;
}

/* The tokens attempt directory ad used, added to *arg (long long). */
static void
add_used(const char *ad, void *arg)
{
	struct json_object *st = phn_state_read(ad), *u;

	if ((u = phn_json_get(st, "usage_attempt")) == NULL)
		u = phn_json_get(st, "usage");
	*(long long *)arg += phn_budget_tokens(ukey(u, "input_tokens"),
	    ukey(u, "output_tokens"));
	json_object_put(st);
}

/* The tokens used by the attempts of batch (a walk of every attempt). */
long long
phn_budget_used(const struct phn_paths *p, const char *batch)
{
	long long used = 0;

	phn_batch_attempts(p, batch, add_used, &used);
	return used;
}

/* From batch_meta.json bm (write-once): the table's (or the config's)
 * limit and what to do when it is spent. */
static void
base(struct json_object *bm, struct phn_budget *b)
{
	struct json_object *eb = phn_json_path_get(bm,
	    "effective_defaults.budget"), *v;
	const char *w;

	memset(b, 0, sizeof(*b));
	b->max = -1;
	if ((v = phn_json_get(eb, "max_total_tokens")) != NULL &&
	    phn_json_is_int(v))
		b->max = json_object_get_int64(v);
	w = phn_jstr(eb, "on_exhausted");
	b->cancel = w != NULL && strcmp(w, "cancel") == 0;
}

/* The operator's limit (budget.json, phn-budget), else dflt. */
static long long
operator_max(const struct phn_paths *p, const char *batch, long long dflt)
{
	char *f = phn_batch_path(p, batch, "budget.json"), msg[256];
	struct json_object *op, *v;
	long long r = dflt;

	if ((op = phn_json_load(f, msg, sizeof(msg))) != NULL &&
	    (v = phn_json_get(op, "max_total_tokens")) != NULL &&
	    phn_json_is_int(v))
		r = json_object_get_int64(v);
	json_object_put(op);
	free(f);
	return r;
}

/* Set b->used and b->exhausted. */
void
phn_budget_set_used(struct phn_budget *b, long long used)
{
	b->used = used;
	b->exhausted = b->max >= 0 && used >= b->max;
}

/*
 * The budget of batch, whose batch_meta.json is bm (NULL: read it).
 * With walk, the tokens used are counted (phn_budget_used) when there is
 * a limit; else the caller sets them (phn_budget_set_used).  Returns 0,
 * or -1 when batch_meta.json cannot be read (b: no limit).
 */
int
phn_budget_get(const struct phn_paths *p, const char *batch,
    struct json_object *bm, int walk, struct phn_budget *b)
{
	struct json_object *own = NULL;
	char msg[512];

	if (bm == NULL && (bm = own = phn_batch_meta(p, batch, msg,
	    sizeof(msg))) == NULL) {
		memset(b, 0, sizeof(*b));
		b->max = -1;
		return -1;
	}
	base(bm, b);
	b->max = operator_max(p, batch, b->max);
	json_object_put(own);
	if (walk && b->max >= 0)
		phn_budget_set_used(b, phn_budget_used(p, batch));
	return 0;
}

/*
 * A claimer's view of the budget of batch, kept per process: the limit
 * of batch_meta.json is read once (the file is write-once); budget.json
 * and the tokens used are read again when the view is older than
 * CACHE_TTL seconds, or than ten times what the last walk of the
 * attempts took, so that counting costs a claimer at most about a tenth
 * of its time however large the batch.
 */
const struct phn_budget *
phn_budget_cached(const struct phn_paths *p, const char *batch, double now)
{
	static struct {
		char	*batch;
		int	 loaded;
		double	 at, ttl;
		long long table_max;
		struct phn_budget b;
	} c[CACHE_N];
	static unsigned next;
	struct json_object *bm;
	char msg[512];
	double t0;
	unsigned i;

	for (i = 0; i < CACHE_N; i++)
		if (c[i].batch && strcmp(c[i].batch, batch) == 0)
			break;
	if (i == CACHE_N) {
		i = next++ % CACHE_N;
		free(c[i].batch);
		memset(&c[i], 0, sizeof(c[i]));
		c[i].batch = phn_strdup(batch);
	}
	if (c[i].loaded && now >= c[i].at && now - c[i].at < c[i].ttl)
		return &c[i].b;
	if (!c[i].loaded) {
		if ((bm = phn_batch_meta(p, batch, msg, sizeof(msg))) == NULL) {
			memset(&c[i].b, 0, sizeof(c[i].b));
			c[i].b.max = -1;
			return &c[i].b;	/* read again next time */
		}
		base(bm, &c[i].b);
		json_object_put(bm);
		c[i].table_max = c[i].b.max;
		c[i].loaded = 1;
	}
	c[i].at = now;
	c[i].ttl = CACHE_TTL;
	c[i].b.max = operator_max(p, batch, c[i].table_max);
	if (c[i].b.max >= 0) {
		t0 = phn_mono();
		phn_budget_set_used(&c[i].b, phn_budget_used(p, batch));
		if (10 * (phn_mono() - t0) > c[i].ttl)
			c[i].ttl = 10 * (phn_mono() - t0);
	} else
		phn_budget_set_used(&c[i].b, 0);
	return &c[i].b;
}

/* The scoreboards' object: {max_total_tokens, used_tokens, exhausted}. */
struct json_object *
phn_budget_json(const struct phn_budget *b)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "max_total_tokens", b->max >= 0 ?
	    json_object_new_int64(b->max) : NULL);
	json_object_object_add(o, "used_tokens", json_object_new_int64(b->used));
	json_object_object_add(o, "exhausted",
	    json_object_new_boolean(b->exhausted));
	return o;
}
