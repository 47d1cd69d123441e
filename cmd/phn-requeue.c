/*
 * phn-requeue - make the next attempt of a step run on a given runner, or
 * on any runner but the one that ran the last attempt.
 *
 * Output: one JSON object, {"ok":true,"action":"requeue",...}.  Bumps
 * steps[STEP].requeue_nonce and writes steps[STEP].requeue in
 * JOB/overrides.json under its lock.  Like the reference, a requeue does
 * not make a step runnable by itself (its retry policy, or
 * phn-force-retry, does); it decides where its next attempt runs, and it
 * overrides runner affinity.
 */
#include "override.h"

/* Exactly one of -d and -i. */
static int
requeue_valid(const struct phn_override_req *r)
{
	return r->different != (r->runner != NULL);
}

int
main(int argc, char *argv[])
{
	struct phn_override_req req = { .action = "requeue" };
	const struct phn_option options[] = {
		PHN_FLAG('d', "different", &req.different),
		PHN_ID('i', "runner-id", &req.runner),
		PHN_END
	};

	PROG = "phn-requeue";
	return override_main(&req, "-d | -i runner-id ", options, requeue_valid, argc, argv);
}
