/*
 * liveness.c - the thresholds that tell a live attempt from an orphan
 * (struct phn_limits: the one reading of them), and reaping that cannot
 * race a spawner.
 *
 * phn_attempt_fault (store.c) classifies without locks.  Between that and
 * the reap a phn-spawn could take the attempt (queued -> running), so
 * phn_attempt_reap_locked first takes the attempt's spawn.lock itself
 * (non-blocking: busy means a spawner is alive, hands off), re-reads the
 * state and re-checks the fault with the lock held (no spawner can start
 * now), and only then reaps with phn_attempt_reap, the code phn-claim's
 * lease expiry uses too.
 */
#include <sys/file.h>
#include <sys/types.h>

#include <signal.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "phn.h"

static int phn_attempt_fault(const char *, struct json_object *, double,
    double, double, double);

static double
num(struct json_object *o, const char *path, double dflt)
{
	struct json_object *v = phn_json_path_get(o, path);

	return phn_json_is_num(v) ? json_object_get_double(v) : dflt;
}

static int
flag(struct json_object *o, const char *path, int dflt)
{
	struct json_object *v = phn_json_path_get(o, path);

	return json_object_is_type(v, json_type_boolean) ?
	    json_object_get_boolean(v) : dflt;
}

/* A batch's own section of effective_defaults, if it has a non-empty one. */
static struct json_object *
section(struct json_object *ed, const char *k)
{
	struct json_object *v = phn_json_get(ed, k);

	return json_object_is_type(v, json_type_object) &&
	    json_object_object_length(v) > 0 ? v : NULL;
}

/*
 * The limits from the harness config cfg, where a batch's effective
 * defaults ed (or NULL) win for the liveness thresholds (its scoreboard
 * section) and the runner pool (its runner_pool section).
 */
void
phn_limits_init(struct phn_limits *l, struct json_object *cfg,
    struct json_object *ed)
{
	struct json_object *sb = section(ed, "scoreboard");
	struct json_object *rp = section(ed, "runner_pool");

	if (rp == NULL)
		rp = phn_json_path_get(cfg, "defaults.runner_pool");
	l->lease = num(cfg, "defaults.claim_lease_seconds", 300);
	l->stale = num(sb, "heartbeat_stale_after_seconds", num(cfg,
	    "defaults.scoreboard.heartbeat_stale_after_seconds", 300));
	l->stuck = num(sb, "stuck_after_seconds", num(cfg,
	    "defaults.scoreboard.stuck_after_seconds", 1800));
	l->max_harness = (long long)num(cfg, "limits.max_harness_retries", 3);
	l->shared_fs = flag(rp, "shared_filesystem", 1);
	l->transfer = flag(rp, "resume_base_transfer_enabled", 0);
}

/*
 * The claim clock: a lease must not trust the wall clock alone.  A claim
 * records, beside claimed_at (wall clock), the claiming host, its boot id
 * and CLOCK_BOOTTIME (seconds since boot, suspend included, never
 * stepped).  A claim's age is then, on the same host and boot, the
 * larger of the wall clock's and the difference of CLOCK_BOOTTIME
 * readings, so a wall clock stepped back cannot keep a claim alive; on
 * the same host after a reboot, infinite (no spawner of that boot lives);
 * on another host, or for a claim without them, the wall clock's.
 */
static double
boottime(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_BOOTTIME, &ts) == -1)
		return -1;
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Add the claim clock's fields to a claim's state fields f. */
void
phn_claim_clock(struct json_object *f)
{
	double bt = boottime();

	json_object_object_add(f, "claimed_host",
	    json_object_new_string(phn_hostname()));
	json_object_object_add(f, "claimed_boot_id",
	    json_object_new_string(phn_boot_id()));
	if (bt >= 0)
		json_object_object_add(f, "claimed_boottime",
		    json_object_new_double(bt));
}

/* The age of a queued attempt's claim at wall time now; NAN: unknown. */
double
phn_claim_age(struct json_object *st, double now)
{
	const char *host = phn_jstr(st, "claimed_host");
	const char *boot = phn_jstr(st, "claimed_boot_id");
	struct json_object *v = phn_json_get(st, "claimed_boottime");
	double t, bt;

	if (host != NULL && boot != NULL &&
	    strcmp(host, phn_hostname()) == 0) {
		if (strcmp(boot, phn_boot_id()) != 0)
			return INFINITY;
		if (phn_json_is_num(v) && (bt = boottime()) >= 0) {
			bt -= json_object_get_double(v);
			if (phn_iso_parse(phn_jstr(st, "claimed_at"), &t) == 0 &&
			    now - t > bt)
				return now - t;
			return bt;
		}
	}
	if (phn_iso_parse(phn_jstr(st, "claimed_at"), &t) == -1)
		return NAN;
	return now - t;
}

/*
 * Whether the claimer that took a ready entry is known to be dead: its
 * token ("HOST.PID.RANDOM", claim.c, the last part of a _claimed/ entry's
 * name) names this host and a process that does not exist.  A recycled
 * pid makes it look alive: then only the entry's age (CLAIMED_STALE)
 * returns it.
 */
int
phn_claim_token_dead(const char *token)
{
	const char *r = strrchr(token, '.'), *h = phn_hostname(), *p;
	char *end;
	size_t n, i;
	long pid;

	if (r == NULL || r == token)
		return 0;
	for (p = r - 1; p > token && *p != '.'; p--)
		;
	if (*p != '.')
		return 0;
	pid = strtol(p + 1, &end, 10);
	if (end != r || pid <= 0)
		return 0;
	n = (size_t)(p - token);
	if (n != (strlen(h) < 40 ? strlen(h) : 40))
		return 0;
	for (i = 0; i < n; i++)	/* claim.c wrote '@' and '/' as '_' */
		if (token[i] != ((h[i] == '@' || h[i] == '/') ? '_' : h[i]))
			return 0;
	return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}


/*
 * Liveness across hosts (phn(5), "Runners and liveness"): a running
 * attempt of another host, or of an earlier boot of this one, is never
 * judged by a pid; phn_attempt_fault judges it by its heartbeat age, and
 * this by the health of the runner that claimed it (state.json
 * runner_id), orphaned when:
 *  - that runner's health names the attempt's host with another boot
 *    id, written after the attempt's last heartbeat: the host rebooted,
 *    the attempt died with it;
 *  - that runner stopped (a clean exit, or a signal: a Slurm task's
 *    cancel) more than stale/2 seconds ago and the attempt was not heard
 *    of since (last heartbeat, else start, before stopped_at).  stale/2
 *    exceeds the heartbeat interval (phn(5)), so a spawner still alive
 *    has written since.
 * A running attempt of a runner merely gone may still have a live
 * spawner: its own heartbeat decides.  A queued attempt is left to its
 * claim lease (a one-shot claimer stops right after claiming).
 * A spawn.lock held is always life.  Returns a PHN_FAULT_*.
 */
int
phn_attempt_runner_rule(const struct phn_paths *p, struct json_object *st, double now,
    double stale)
{
	const char *s = phn_jstr(st, "status"), *rid = phn_jstr(st,
	    "runner_id"), *host = phn_jstr(st, "host"), *boot, *hs;
	struct json_object *h;
	double t, seen, stop;
	int fault = PHN_FAULT_NONE;

	if (s == NULL || strcmp(s, "running") != 0 || rid == NULL ||
	    !phn_id_valid(rid, strlen(rid)))
		return PHN_FAULT_NONE;
	if ((h = phn_runner_health(p, rid)) == NULL)
		return PHN_FAULT_NONE;
	if (phn_iso_parse(phn_jstr(st, "last_heartbeat_at"), &t) == -1 &&
	    phn_iso_parse(phn_jstr(st, "started_at"), &t) == -1)
		t = 0;
	hs = phn_jstr(h, "state");
	boot = phn_jstr(st, "boot_id");
	if (host && boot && phn_jstr(h, "host") &&
	    phn_jstr(h, "boot_id") && strcmp(host, phn_jstr(h, "host")) == 0 &&
	    strcmp(boot, phn_jstr(h, "boot_id")) != 0 &&
	    phn_iso_parse(phn_jstr(h, "last_seen_at"), &seen) == 0 && seen > t)
		fault = PHN_FAULT_ORPHAN;
	else if (hs != NULL && strcmp(hs, "stopped") == 0 &&
	    phn_iso_parse(phn_jstr(h, "stopped_at"), &stop) == 0 &&
	    t < stop && now - stop > stale / 2)
		fault = PHN_FAULT_ORPHAN;
	json_object_put(h);
	return fault;
}

int
phn_attempt_runner_fault(const struct phn_paths *p, const char *dir,
    struct json_object *st, double now, double stale)
{
	int fault = phn_attempt_runner_rule(p, st, now, stale);
	char *lp;

	if (fault != PHN_FAULT_NONE) {
		lp = phn_path_join(dir, "spawn.lock");
		if (phn_lock_held(lp) == 1)
			fault = PHN_FAULT_NONE;
		free(lp);
	}
	return fault;
}

/* The one judgement of an attempt's liveness: phn_attempt_fault (pids on
 * this host, heartbeat age elsewhere), then its runner's health. */
int
phn_attempt_judge(const struct phn_paths *p, const char *dir,
    struct json_object *st, double now, double lease, double stale,
    double stuck)
{
	int fault = phn_attempt_fault(dir, st, now, lease, stale, stuck), rf;

	if ((fault == PHN_FAULT_NONE || fault == PHN_FAULT_STUCK) &&
	    (rf = phn_attempt_runner_fault(p, dir, st, now, stale)) !=
	    PHN_FAULT_NONE)
		fault = rf;
	return fault;
}


/*
 * Classify an attempt for recovery.  PHN_FAULT_NONE: nothing to do.
 * PHN_FAULT_LEASE: queued, not picked up within claim_lease_seconds.
 * PHN_FAULT_ORPHAN: running (or claimed by a spawner that died), and the
 * spawner is gone: spawn.lock free on this host, or on another host a
 * heartbeat older than heartbeat_stale_after_seconds.
 * PHN_FAULT_STUCK: spawner alive, but no codex event for
 * stuck_after_seconds (reported, never reaped).
 */
static int
phn_attempt_fault(const char *dir, struct json_object *st, double now,
    double lease, double stale, double stuck)
{
	const char *status = phn_jstr(st, "status"), *host;
	char *lp;
	double t;
	int held, local;

	if (status == NULL || phn_status_terminal(status))
		return PHN_FAULT_NONE;
	lp = phn_path_join(dir, "spawn.lock");
	held = phn_lock_held(lp);
	free(lp);
	host = phn_jstr(st, "host");
	local = host == NULL || (strcmp(host, phn_hostname()) == 0 &&
	    phn_jstr(st, "boot_id") && strcmp(phn_jstr(st, "boot_id"),
	    phn_boot_id()) == 0);
	if (strcmp(status, "queued") == 0) {
		if (held == 1)
			return PHN_FAULT_NONE;
		if (phn_claim_age(st, now) > lease)
			return PHN_FAULT_LEASE;
		return PHN_FAULT_NONE;
	}
	if (held == 1)
		goto alive;
	if (local && phn_jstr(st, "host") != NULL)
		return PHN_FAULT_ORPHAN;
	if (phn_iso_parse(phn_jstr(st, "last_heartbeat_at"), &t) == -1 &&
	    phn_iso_parse(phn_jstr(st, "started_at"), &t) == -1)
		return PHN_FAULT_ORPHAN;
	if (now - t > stale)
		return PHN_FAULT_ORPHAN;
alive:
	if (phn_iso_parse(phn_jstr(st, "last_event_at"), &t) == -1 &&
	    phn_iso_parse(phn_jstr(st, "started_at"), &t) == -1)
		return PHN_FAULT_NONE;
	return now - t > stuck ? PHN_FAULT_STUCK : PHN_FAULT_NONE;
}

/*
 * The fault of an attempt whose spawn.lock its caller holds (so no
 * spawner of this host lives): PHN_FAULT_LEASE, a queued claim older
 * than lease by the claim clock; PHN_FAULT_ORPHAN, running on this host
 * and boot, or elsewhere with no heartbeat for stale seconds, or by its
 * runner's health (phn_attempt_runner_rule); else PHN_FAULT_NONE.
 */
int
phn_attempt_fault_locked(const struct phn_paths *p, struct json_object *st,
    double now, double lease, double stale)
{
	const char *s = phn_jstr(st, "status"), *host = phn_jstr(st, "host"),
	    *boot = phn_jstr(st, "boot_id");
	int fault = PHN_FAULT_NONE;
	double t;

	if (s != NULL && strcmp(s, "queued") == 0) {
		if (phn_claim_age(st, now) > lease)	/* NAN: false */
			fault = PHN_FAULT_LEASE;
	} else if (s != NULL && strcmp(s, "running") == 0) {
		/* With the lock held, no spawner on this host lives. */
		if (host && boot && strcmp(host, phn_hostname()) == 0 &&
		    strcmp(boot, phn_boot_id()) == 0)
			fault = PHN_FAULT_ORPHAN;
		else if ((phn_iso_parse(phn_jstr(st, "last_heartbeat_at"),
		    &t) == -1 && phn_iso_parse(phn_jstr(st, "started_at"),
		    &t) == -1) || now - t > stale)
			fault = PHN_FAULT_ORPHAN;
	}
	if (fault == PHN_FAULT_NONE)	/* liveness across hosts */
		fault = phn_attempt_runner_rule(p, st, now, stale);
	return fault;
}
