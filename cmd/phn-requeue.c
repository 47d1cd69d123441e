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
#include "phn.h"

int
main(int argc, char *argv[])
{
	PROG = "phn-requeue";
	return phn_override_main(argc, argv, "requeue",
	    "usage: phn-requeue -d | -i runner-id [-m reason] [-r root] "
	    "[--runs-root dir] batch job step\n");
}
