/*
 * phn-force-retry - run a step once more, even if it succeeded or ran out
 * of attempts; this also undoes phn-mark-failed.
 *
 * Output: one JSON object, {"ok":true,"action":"force-retry",...}.
 * Bumps steps[STEP].force_retry_nonce in JOB/overrides.json under its
 * lock and puts the step in the ready index; phn-claim applies the nonce
 * (several requests before the next claim make one retry).
 */
#include <getopt.h>
#include <stdio.h>

#include "phn.h"

static const char usage[] =
    "usage: phn-force-retry [-m reason] [-r root] [--runs-root dir] "
    "[--runners-root dir]\n"
    "                       batch job step\n";

int
main(int argc, char *argv[])
{
	static const struct option lopts[] = {
		{ "reason", required_argument, NULL, 'm' },
		PHN_OPT_COMMON,
		{ NULL, 0, NULL, 0 }
	};
	struct phn_opts opts = { .usage = usage };
	struct phn_override_req req = { .action = "force-retry" };
	struct phn_paths P;
	struct json_object *out;
	char msg[1024];
	int ch, r;

	PROG = "phn-force-retry";
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((ch = getopt_long(argc, argv, "hm:r:", lopts, NULL)) != -1)
		if (ch == 'm')
			req.reason = optarg;
		else if (!phn_opt_common(ch, optarg, &opts))
			phn_usage(&opts, PHN_EXIT_PERM);
	argc -= optind;
	argv += optind;
	if (argc != 3)
		phn_usage(&opts, PHN_EXIT_PERM);
	req.batch = argv[0];
	req.job = argv[1];
	req.step = argv[2];
	phn_opts_paths(&opts, &P);
	if ((r = phn_override_step(&P, &req, &out, msg, sizeof(msg))) != 0)
		phn_die(r == -1 ? PHN_EXIT_PERM : PHN_EXIT_TEMP, "%s", msg);
	phn_json_emit(stdout, out);
	json_object_put(out);
	phn_paths_free(&P);
	phn_stdout_close();
	return PHN_EXIT_OK;
}
