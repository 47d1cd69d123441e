/*
 * claim.h - the claimer's engine (phn-claim): settings, the claim of one
 * step under its lock, the slot directories, the rescan.  The decision
 * whether a step may run is the step policy's (policy.h).
 */
#ifndef PHN_CLAIM_H
#define PHN_CLAIM_H

#include "policy.h"

/* Settings and context of scheduling decisions. */
struct phn_sched {
	const struct phn_paths *p;
	struct phn_limits lim;
	double	 grace;
	long long runner_cap;	/* 0: unlimited */
	int	 reap;
	const char *resume_affinity;
	struct json_object *workdirs;	/* limits.per_workdir_concurrency */
	const char *runner;
};
#define PHN_CLAIM_OK		0
#define PHN_CLAIM_DROP		1
#define PHN_CLAIM_LATER		2
#define PHN_CLAIM_NOTME		3
#define PHN_CLAIM_BATCH_FULL	4
#define PHN_CLAIM_RUNNER_FULL	5
#define PHN_CLAIM_WORKDIR_FULL	6
#define PHN_CLAIM_ERROR		7
struct phn_claim {
	int	 verdict;
	double	 at;
	char	 why[512];
	char	*dir, *entry;	/* PHN_CLAIM_OK: attempt dir, _active entry */
};
void	phn_sched_init(struct phn_sched *, const struct phn_paths *,
	    const struct phn_config *);
double	phn_sched_ready_time(const char *);
char	*phn_sched_workdir_dir(const struct phn_paths *, const char *);
long long phn_sched_workdir_limit(struct phn_sched *, const char *);
long long phn_sched_slots(struct phn_sched *, const char *, const char *,
	    int, double);
int	phn_sched_claim(struct phn_sched *, const char *, struct json_object *,
	    struct json_object *, const char *, long long, double,
	    struct phn_claim *);
int	phn_sched_create(struct phn_sched *, const char *, struct json_object *,
	    struct json_object *, const char *, struct phn_claim *);
#define PHN_RESCAN_IF_NEEDED	1
#define PHN_RESCAN_QUIESCENT	2	/* no claimer runs: drop every
					 * _claimed/ entry (phn-fsck) */
int	phn_sched_rescan(struct phn_sched *, const char *, int,
	    struct json_object **, char *, size_t);
int	phn_sched_step_verdict(struct phn_sched *, const char *,
	    struct json_object *, const char *, struct json_object *,
	    struct phn_verdict *);

/* claim.c: the claimer (phn-claim) */
struct phn_claim_opts {
	const char **batches;	/* none: every batch, new ones too */
	size_t	 nbatches;
	long long n;		/* at most n claims; 0: no limit */
	long long jobs;		/* at most this many outstanding; 0: no cap */
	long long concurrency;	/* overrides each batch's; 0: the batch's */
	int	 follow, nul;
	const char *runner;
	double	 memfree, maxload;	/* admission (runner.c); 0: config's */
	FILE	*out;
};
int	phn_claim_run(const struct phn_paths *, const struct phn_config *,
	    const struct phn_claim_opts *);

#endif
