/*
 * pause.c - the store-wide rate-limit pause (runs/_system/pause.json)
 * and the drain switch (runs/_system/HALT).
 *
 * When an attempt ends because the model provider rate-limited it (HTTP
 * 429, a usage limit, an exhausted quota), its spawner records a pause:
 * every claimer on the store claims nothing until the pause's `until`
 * (the step policy sees it as a wait, policy.c), and the attempt is
 * retried without counting against max_attempts.
 *
 * Classifying: codex reports a plain rate limit as "exceeded retry
 * limit, last status: 429 Too Many Requests" (no reset time survives)
 * and a usage limit as "You've hit your usage limit. ... try again at
 * 1:01 AM." (today or tomorrow) or "... try again at Dec 9th, 2026 12:59
 * AM." (a later day), in the time zone of the codex process: phn-spawn
 * runs codex with TZ=UTC, so both forms are read as UTC.  The time is
 * shown to the minute (truncated), so the pause lasts to the end of that
 * minute.  "try again in 20s" and "retry after 20 seconds" are read as
 * reset hints too.
 *
 * Writing: under runs/_system/pause.lock, read, modify, write (atomic):
 *  - the provider's reset time, when there is one, is the pause's end;
 *  - else defaults.rate_limit.pause_seconds (30), doubled for each pause
 *    in a row (one seen by an attempt that started after the previous
 *    pause began, at most 15 minutes after it ended), times a jitter of
 *    1 to 1.25, at most 15 minutes;
 *  - an attempt claimed before the current pause began was
 *    rate-limited by the same episode: it does not double the backoff;
 *  - whatever is written, a later `until` already there is kept (two
 *    spawners at once: the later wins).
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "phn.h"

#define PAUSE_MAX	900.0	/* the longest backoff: 15 minutes */

static const char *
find(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return hay;
	return NULL;
}

/* "H:MM AM|PM" at *pp: seconds since midnight, or -1. */
static long
clock_time(const char **pp)
{
	const char *p = *pp;
	long h = 0, m = 0;
	int nd = 0;

	while (isdigit((unsigned char)*p) && nd < 2)
		h = h * 10 + (*p++ - '0'), nd++;
	if (nd == 0 || *p++ != ':' || !isdigit((unsigned char)p[0]) ||
	    !isdigit((unsigned char)p[1]))
		return -1;
	m = (p[0] - '0') * 10 + (p[1] - '0');
	p += 2;
	while (*p == ' ')
		p++;
	if (h < 1 || h > 12 || m > 59)
		return -1;
	if (strncasecmp(p, "AM", 2) == 0)
		h %= 12;
	else if (strncasecmp(p, "PM", 2) == 0)
		h = h % 12 + 12;
	else
		return -1;
	*pp = p + 2;
	return h * 3600 + m * 60;
}

/* "Mon Dth, YYYY " at *pp: that day's midnight UTC, or -1. */
static double
day_date(const char **pp)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	const char *p = *pp;
	struct tm tm;
	long d = 0, y = 0;
	int i, nd;

	memset(&tm, 0, sizeof(tm));
	for (i = 0; i < 12; i++)
		if (strncasecmp(p, mon[i], 3) == 0)
			break;
	if (i == 12)
		return -1;
	p += 3;
	while (isalpha((unsigned char)*p))	/* "December" too */
		p++;
	if (*p++ != ' ')
		return -1;
	for (nd = 0; isdigit((unsigned char)*p) && nd < 2; nd++)
		d = d * 10 + (*p++ - '0');
	if (nd == 0 || d < 1 || d > 31)
		return -1;
	while (isalpha((unsigned char)*p))	/* st, nd, rd, th */
		p++;
	if (*p == ',')
		p++;
	if (*p++ != ' ')
		return -1;
	for (nd = 0; isdigit((unsigned char)*p) && nd < 4; nd++)
		y = y * 10 + (*p++ - '0');
	if (nd != 4 || *p++ != ' ')
		return -1;
	tm.tm_year = (int)y - 1900;
	tm.tm_mon = i;
	tm.tm_mday = (int)d;
	*pp = p;
	return (double)timegm(&tm);
}

/*
 * "try again at ..." (codex's usage limit, read as UTC): the end of the
 * minute shown, or -1.
 */
static double
reset_at(const char *m, double now)
{
	const char *p = find(m, "try again at ");
	double day, t;
	time_t tn = (time_t)now;
	struct tm tm;
	long s;

	if (p == NULL)
		return -1;
	p += strlen("try again at ");
	if ((day = day_date(&p)) >= 0) {
		if ((s = clock_time(&p)) < 0)
			return -1;
		return day + s + 60;
	}
	if ((s = clock_time(&p)) < 0)
		return -1;
	gmtime_r(&tn, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	t = (double)timegm(&tm) + s;
	if (t + 60 <= now)	/* that time today has passed: tomorrow */
		t += 86400;
	return t + 60;
}

/* "try again in 20s" / "retry after 1.5 seconds": now plus that, or -1. */
static double
reset_in(const char *m, double now)
{
	static const char *const lead[] = { "try again in ", "retry after ",
	    "retry-after: ", NULL };
	const char *p = NULL;
	char *e;
	double v;
	int i;

	for (i = 0; lead[i] && p == NULL; i++)
		if ((p = find(m, lead[i])) != NULL)
			p += strlen(lead[i]);
	if (p == NULL || !isdigit((unsigned char)*p))
		return -1;
	v = strtod(p, &e);
	while (*e == ' ')
		e++;
	if (strncasecmp(e, "ms", 2) == 0)
		v /= 1000;
	else if (strncasecmp(e, "min", 3) == 0 ||
	    (*e == 'm' && !isalpha((unsigned char)e[1])))
		v *= 60;
	else if (strncasecmp(e, "hour", 4) == 0 ||
	    (*e == 'h' && !isalpha((unsigned char)e[1])))
		v *= 3600;
	if (!isfinite(v) || v < 0 || v > 7 * 86400)
		return -1;
	return now + v;
}

/*
 * Is message m (an error event, turn.failed, stderr) a rate limit?
 * PHN_RL_USAGE (a usage limit or exhausted quota), PHN_RL_RATE, or
 * PHN_RL_NONE.  *reset: the provider's reset time, or 0 if none.
 */
int
phn_ratelimit_classify(const char *m, double now, double *reset)
{
	static const char *const usage[] = { "usage limit",
	    "usage_limit_reached", "insufficient_quota", "exceeded your "
	    "current quota", "quota exceeded", "quota exhausted", NULL };
	static const char *const rate[] = { "429 too many requests",
	    "too many requests", "rate limit", "rate_limit", "ratelimit",
	    "status: 429", "status 429", "http 429", NULL };
	double t;
	int i, k = PHN_RL_NONE;

	*reset = 0;
	if (m == NULL)
		return PHN_RL_NONE;
	for (i = 0; usage[i] && k == PHN_RL_NONE; i++)
		if (find(m, usage[i]))
			k = PHN_RL_USAGE;
	for (i = 0; rate[i] && k == PHN_RL_NONE; i++)
		if (find(m, rate[i]))
			k = PHN_RL_RATE;
	if (k == PHN_RL_NONE)
		return k;
	if ((t = reset_at(m, now)) > 0 || (t = reset_in(m, now)) > 0)
		*reset = t;
	return k;
}

const char *
phn_ratelimit_name(int kind)
{
	return kind == PHN_RL_USAGE ? "usage_limit" : kind == PHN_RL_RATE ?
	    "rate_limit" : "none";
}

/* pause.json, or NULL (none, or unreadable: no pause). */
struct json_object *
phn_pause_read(const struct phn_paths *p)
{
	char *f = phn_pause_path(p), msg[256];
	struct json_object *o = NULL;

	if (access(f, F_OK) == 0) {
		o = phn_json_load(f, msg, sizeof(msg));
		if (o != NULL && !json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			o = NULL;
		}
	}
	free(f);
	return o;
}

static double
tget(struct json_object *o, const char *k)
{
	double t;

	return phn_iso_parse(phn_jstr(o, k), &t) == 0 ? t : 0;
}

/*
 * The end of the pause in force at now, or 0 if there is none.  Cheap
 * when there is no pause (one stat); the file is re-read only when it
 * changed (the cache is the caller's, zeroed at first).
 */
double
phn_pause_until(const struct phn_paths *p, double now,
    struct phn_pause_cache *c)
{
	struct phn_pause_cache tmp = { 0 };
	struct json_object *o;
	struct stat sb;
	char *f;
	int r;

	if (c == NULL)
		c = &tmp;
	f = phn_pause_path(p);
	r = stat(f, &sb);
	free(f);
	if (r == -1) {
		c->until = 0;
		c->ino = 0;
		return 0;
	}
	if (c->ino != sb.st_ino || c->mtime != sb.st_mtim.tv_sec ||
	    c->mtime_ns != sb.st_mtim.tv_nsec || c->size != sb.st_size) {
		o = phn_pause_read(p);
		c->until = tget(o, "until");
		json_object_put(o);
		c->ino = sb.st_ino;
		c->mtime = sb.st_mtim.tv_sec;
		c->mtime_ns = sb.st_mtim.tv_nsec;
		c->size = sb.st_size;
	}
	return c->until > now ? c->until : 0;
}

static void
put_time(struct json_object *o, const char *k, double t)
{
	char iso[PHN_ISO_LEN];

	phn_iso(t, iso);
	json_object_object_add(o, k, json_object_new_string(iso));
}

/*
 * Record a pause for a rate limit of kind (PHN_RL_*) seen by attempt
 * (its directory relative to the runs root), which was claimed at
 * started (-1: unknown), with the provider's reset time (0: none) and message.
 * base: defaults.rate_limit.pause_seconds.  0, or -1 with errno; *out
 * (if not NULL) gets pause.json as written.
 */
int
phn_pause_note(const struct phn_paths *p, double base, int kind,
    double reset, const char *message, const char *attempt, double started,
    double now, struct json_object **out)
{
	struct json_object *prev, *o;
	char *lp = phn_system_path(p, "pause.lock"), *f, *s;
	double puntil = 0, psince = 0, since = now, secs, until;
	long long streak = 0, ps = 0;
	int fd, rc, e, same = 0;

	if (out)
		*out = NULL;
	if ((fd = phn_lock_open(lp, LOCK_EX)) == -1) {
		f = phn_path_join(p->runs, "_system");
		phn_mkdirs(f, 0755);
		free(f);
		if ((fd = phn_lock_open(lp, LOCK_EX)) == -1) {
			free(lp);
			return -1;
		}
	}
	free(lp);
	if ((prev = phn_pause_read(p)) != NULL) {
		puntil = tget(prev, "until");
		psince = tget(prev, "since");
		ps = phn_json_int(prev, "streak", 0);
		if (ps < 0)
			ps = 0;
	}
	if (base <= 0)
		base = 30;
	if (prev != NULL && psince > 0 && started >= 0 && started < psince &&
	    puntil > 0) {
		same = 1;		/* the episode already paused for */
		streak = ps;
		since = psince;
	} else if (prev != NULL && puntil > 0 && now <= puntil + PAUSE_MAX)
		streak = ps + 1;	/* again, soon after the last one */
	if (same && reset <= 0)
		until = puntil;
	else if (reset > 0)
		until = reset;
	else {
		secs = base * pow(2, (double)(streak < 20 ? streak : 20));
		secs *= 1 + (phn_random32() % 1000) / 4000.0;
		if (secs > PAUSE_MAX)
			secs = PAUSE_MAX;
		until = now + secs;
	}
	if (puntil > until)
		until = puntil;		/* the later one stands */
	o = json_object_new_object();
	put_time(o, "until", until);
	put_time(o, "since", since);
	json_object_object_add(o, "seconds",
	    json_object_new_int64((int64_t)llround(until - since)));
	json_object_object_add(o, "streak", json_object_new_int64(streak));
	json_object_object_add(o, "reason", json_object_new_string(
	    phn_ratelimit_name(kind)));
	json_object_object_add(o, "message", phn_json_string(message));
	json_object_object_add(o, "attempt", phn_json_string(attempt));
	if (reset > 0)
		put_time(o, "reset_hint", reset);
	put_time(o, "updated_at", now);
	json_object_object_add(o, "pauses", json_object_new_int64(
	    phn_json_int(prev, "pauses", 0) + 1));
	json_object_put(prev);
	f = phn_pause_path(p);
	s = phn_json_pretty(o);
	rc = phn_atomic_write(f, s, strlen(s), PHN_DURABLE | PHN_MKDIR);
	e = errno;
	free(s);
	free(f);
	phn_lock_close(fd);
	if (rc == -1 || out == NULL)
		json_object_put(o);
	else
		*out = o;
	errno = e;
	return rc == -1 ? -1 : 0;
}

/* Whether the drain switch runs/_system/HALT exists. */
int
phn_halted(const struct phn_paths *p)
{
	char *f = phn_halt_path(p);
	int r = access(f, F_OK) == 0;

	free(f);
	return r;
}
