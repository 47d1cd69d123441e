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
#include <stdio.h>

#include "phn.h"

static const char usage[] =
    "usage: phn-requeue -d | -i runner-id [-m reason] [-r root] "
    "[--runs-root dir]\n"
    "                   [--runners-root dir] batch job step\n";

int
main(int argc, char *argv[])
{
	struct phn_override_req req = { .action = "requeue" };
	const struct phn_option options[] = {
		PHN_FLAG('d', "different", &req.different),
		PHN_ID('i', "runner-id", &req.runner),
		PHN_STR('m', "reason", &req.reason),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage, .nargs = 3 };
	struct phn_paths P;
	struct phn_errs e = { 0 };
	struct json_object *out;

	PROG = "phn-requeue";
	setvbuf(stdout, NULL, _IOLBF, 0);
	phn_opts_parse(&opts, &argc, &argv, options);
	if (req.different == (req.runner != NULL))
		phn_usage(&opts, PHN_EXIT_PERM);
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
