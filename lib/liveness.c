/*
 * liveness.c - the thresholds that tell a live attempt from an orphan,
 * and reaping that cannot race a spawner.
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

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "phn.h"

/* The batch's effective_defaults.KEY, else the config's defaults.KEY. */
static double
pick(struct json_object *bmeta, const struct phn_config *cfg,
    const char *key, double dflt)
{
	char *p = phn_asprintf("effective_defaults.%s", key);
	struct json_object *v = phn_json_path_get(bmeta, p);
	double d;

	free(p);
	if (phn_json_is_num(v))
		d = json_object_get_double(v);
	else {
		p = phn_asprintf("defaults.%s", key);
		d = phn_config_num(cfg, p, dflt);
		free(p);
	}
	return d > 0 ? d : dflt;
}

/* A batch's lease, stale and stuck thresholds in seconds. */
void
phn_live_limits(struct json_object *bmeta, const struct phn_config *cfg,
    double *lease, double *stale, double *stuck)
{
	double d = phn_config_num(cfg, "defaults.claim_lease_seconds", 300);

	*lease = d > 0 ? d : 300;
	*stale = pick(bmeta, cfg, "scoreboard.heartbeat_stale_after_seconds",
	    300);
	*stuck = pick(bmeta, cfg, "scoreboard.stuck_after_seconds", 1800);
}

/*
 * Reap a faulted attempt under its spawn.lock.  Returns 1 reaped, 0 not
 * (a spawner holds it, it ended, or the fault is gone), -1 on error.
 * *kind says what it was reaped as.
 */
int
phn_attempt_reap_locked(const struct phn_paths *p, const struct phn_attempt *a,
    double lease, double stale, const char **kind)
{
	char *lp = phn_path_join(a->dir, "spawn.lock");
	struct json_object *st;
	const char *s, *host, *boot;
	double t, now = phn_now();
	int fd, fault = PHN_FAULT_NONE, r;

	*kind = NULL;
	fd = phn_lock_open(lp, LOCK_EX | LOCK_NB);
	free(lp);
	if (fd == -1)
		return errno == EWOULDBLOCK ? 0 : -1;
	st = phn_state_read(a->dir);
	s = phn_jstr(st, "status");
	host = phn_jstr(st, "host");
	boot = phn_jstr(st, "boot_id");
	if (s != NULL && strcmp(s, "queued") == 0) {
		if (phn_iso_parse(phn_jstr(st, "claimed_at"), &t) == 0 &&
		    now - t > lease)
			fault = PHN_FAULT_LEASE;
	} else if (s != NULL && strcmp(s, "running") == 0) {
		/* With the lock held here, no spawner on this host lives. */
		if (host && boot && strcmp(host, phn_hostname()) == 0 &&
		    strcmp(boot, phn_boot_id()) == 0)
			fault = PHN_FAULT_ORPHAN;
		else if ((phn_iso_parse(phn_jstr(st, "last_heartbeat_at"),
		    &t) == -1 && phn_iso_parse(phn_jstr(st, "started_at"),
		    &t) == -1) || now - t > stale)
			fault = PHN_FAULT_ORPHAN;
	}
	json_object_put(st);
	r = 0;
	if (fault != PHN_FAULT_NONE) {
		*kind = fault == PHN_FAULT_LEASE ? "claim_expired" : "orphaned";
		r = phn_attempt_reap(p, a, fault);
	}
	phn_lock_close(fd);
	return r;
}
