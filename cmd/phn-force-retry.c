/*
 * phn-force-retry - run a step once more, even if it succeeded or ran out
 * of attempts; this also undoes phn-mark-failed.
 *
 * Output: one JSON object, {"ok":true,"action":"force-retry",...}.
 * Bumps steps[STEP].force_retry_nonce in JOB/overrides.json under its
 * lock and puts the step in the ready index; phn-claim applies the nonce
 * (several requests before the next claim make one retry).
 */
#include <stdio.h>

#include "phn.h"

static const char usage[] =
    "usage: phn-force-retry [-m reason] [-r root] [--runs-root dir] "
    "[--runners-root dir]\n"
    "                       batch job step\n";

int
main(int argc, char *argv[])
{
	struct phn_override_req req = { .action = "force-retry" };
	const struct phn_option options[] = {
		PHN_STR('m', "reason", &req.reason),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage, .nargs = 3 };
	struct phn_paths P;
	struct phn_errs e = { 0 };
	struct json_object *out;

	PROG = "phn-force-retry";
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
