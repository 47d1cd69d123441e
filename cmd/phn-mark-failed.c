/*
 * phn-mark-failed - force a step to the terminal state failed: it is not
 * claimed again until phn-force-retry.
 *
 * Output: one JSON object, {"ok":true,"action":"mark-failed",...,
 * "ended_queued":[...]}.  Sets steps[STEP].forced_terminal in
 * JOB/overrides.json under its lock (mirrored in current.json), then, under
 * the step lock, ends as canceled each queued attempt of the step that no
 * phn-spawn has taken (its spawn.lock is free).  A running attempt is left
 * alone: stop it with phn-cancel.
 */
#include "override.h"

int
main(int argc, char *argv[])
{
	struct phn_override_req req = { .action = "mark-failed" };

	PROG = "phn-mark-failed";
	return override_main(&req, "", NULL, NULL, argc, argv);
}
