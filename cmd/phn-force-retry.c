/*
 * phn-force-retry - run a step once more, even if it succeeded or ran out
 * of attempts; this also undoes phn-mark-failed.
 *
 * Output: one JSON object, {"ok":true,"action":"force-retry",...}.
 * Bumps steps[STEP].force_retry_nonce in JOB/overrides.json under its
 * lock and puts the step in the ready index; phn-claim applies the nonce
 * (several requests before the next claim make one retry).
 */
#include "override.h"

int
main(int argc, char *argv[])
{
	struct phn_override_req req = { .action = "force-retry" };

	PROG = "phn-force-retry";
	return override_main(&req, "", NULL, NULL, argc, argv);
}
