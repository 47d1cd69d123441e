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
#include <stdio.h>

#include "phn.h"

static const char usage[] =
    "usage: phn-mark-failed [-m reason] [-r root] [--runs-root dir] "
    "[--runners-root dir]\n"
    "                       batch job step\n";

int
main(int argc, char *argv[])
{
	struct phn_override_req req = { .action = "mark-failed" };
	const struct phn_option options[] = {
		PHN_STR('m', "reason", &req.reason),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage, .nargs = 3 };
	struct phn_paths P;
	struct phn_errs e = { 0 };
	struct json_object *out;

	PROG = "phn-mark-failed";
	setvbuf(stdout, NULL, _IOLBF, 0);
	phn_opts_parse(&opts, &argc, &argv, options);
	req.batch = argv[0];
	req.job = argv[1];
	req.step = argv[2];
	phn_opts_paths(&opts, &P);
	if (phn_override_step(&P, &req, &out, &e) == -1)
		phn_errs_die(&e);
	phn_json_emit(stdout, out);
	json_object_put(out);
	phn_paths_free(&P);
	phn_stdout_close();
	return PHN_EXIT_OK;
}
