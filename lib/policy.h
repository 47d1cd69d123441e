/*
 * policy.h - the step policy: the one place that decides what should
 * happen to a step (SPEC 5, 6.5).  phn-claim asks it under the step lock
 * and records its decision in the attempt's meta.json; phn-score asks it
 * for every step; phn-spawn only executes what meta.json says.
 */
#ifndef PHN_POLICY_H
#define PHN_POLICY_H

#include "phn.h"


/* One attempt of a step, as the policy sees it. */
struct phn_asum {
	char	*name;		/* <stamp>_<run_id>: sorts in claim order */
	const char *run_id;	/* inside name */
	int	 st;		/* PHN_AST_*; no state.json yet: queued */
	int	 hf;		/* harness fault: orphaned or claim_expired */
	int	 rl;		/* rate-limited: not counted (pause.c) */
	double	 ended;		/* -1: unknown */
	char	*kind;		/* failure_kind, or NULL */
	char	*thread;	/* codex_thread_id, or NULL */
	char	*runner;	/* runner_id, or NULL */
	double	 started;	/* -1: unknown (phn-score only) */
	int	 remedied;	/* state.json has an auto_remediation record */
};
/* A step's attempts, oldest first. */
struct phn_asums {
	struct phn_asum *v;
	size_t	 n;
};
void	phn_asum_init(struct phn_asum *, char *);
int	phn_asum_state(struct phn_asum *, struct json_object *);
void	phn_asums_free(struct phn_asums *);
int	phn_asum_counted(const struct phn_asum *);

/*
 * Where the policy gets what it does not hold: the attempts of any step
 * of the batch, loaded the caller's way (NULL: no such step).  The
 * rest it reads itself under p (codex_home of a resume source, the
 * nonces an earlier claim applied, the runners that exist).
 */
struct phn_policy_env {
	const struct phn_paths *p;
	const char *batch;
	const struct phn_limits *lim;
	const struct phn_asums *(*atts)(void *, const char *, const char *);
	void	*ctx;
	double	 now;
	const char *closed;	/* the batch is closed: its reason, else NULL */
	const struct phn_budget *budget;	/* the batch's, or NULL */
	int	 locality;	/* judge resume sources' runners (phn-score) */
	struct json_object *runner_ids;	/* runner_pool.runner_ids */
	struct json_object *runners;	/* cache: the available runners */
	double	 pause_until;	/* the store's rate-limit pause, or 0 */
};
void	phn_policy_env_free(struct phn_policy_env *);

/* Verdicts */
#define PHN_V_READY	0	/* runnable now */
#define PHN_V_WAIT	1	/* runnable at not_before (backoff) */
#define PHN_V_BLOCKED	2	/* waits for another step (reasons) */
#define PHN_V_ACTIVE	3	/* an attempt is queued or running */
#define PHN_V_DONE	4	/* terminal until an operator acts */

struct phn_verdict {
	int	 verdict;
	int	 status;	/* DONE: PHN_AST_* the step ended with */
	int	 forced;	/* DONE: by an operator's mark-failed */
	long	 active;	/* ACTIVE: index of the active attempt */
	double	 not_before;	/* WAIT */
	const char *why_ready;	/* new, retry, harness_retry, force_retry,
				   rate_limit_retry */
	char	 why[512];	/* the first reason, in words */
	struct json_object *reasons;	/* BLOCKED: every reason */
	long long attempt_number;	/* of the next attempt */
	long long force_nonce, applied_force;	/* force_nonce: to apply */
	long long requeue_nonce, applied_requeue;
	char	*requeue_target;
	int	 requeue_different;
	char	*last_runner;	/* of the newest attempt */
	/* The invocation of the next attempt. */
	int	 resume;	/* 1: exec resume */
	struct json_object *resume_from;	/* the resolved resume_from */
	struct json_object *retry_resume;	/* mode resume_last_attempt */
	char	*resume_source;	/* the attempt resumed, rel. to runs */
	char	*thread_id;	/* the thread resumed */
	char	*src_runner;	/* runner of the resume source */
	char	*note;		/* retry resume without a session, ... */
};
int	phn_policy_eval(struct phn_policy_env *, const char *, const char *,
	    struct json_object *, struct json_object *, struct phn_verdict *);
void	phn_verdict_free(struct phn_verdict *);
void	phn_policy_meta(const struct phn_verdict *, struct json_object *);

/* A step's definition as the policy reads it, from batch_meta.json. */
struct json_object *phn_policy_stepdef(const char *, struct json_object *,
	    struct json_object *);
int	phn_ref_split(const char *, char **, char **);
char	*phn_ref_norm(const char *, const char *);

#endif
