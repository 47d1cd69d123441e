/*
 * phn-fsck - check the invariants of a runs store; with --repair, rebuild
 * what is derived and remove temp files (lib/fsck.c).
 *
 * Output: one line per problem, "PATH: KIND: WHAT" (PATH relative to the
 * runs root), or with --json one object per line.  Exit 0 clean, 1
 * problems (with --repair: problems left), 100 usage, 111 error.
 */
#include <stdio.h>

#include "phn.h"

static const char usage[] =
    "usage: phn-fsck [-J] [--repair] [-r root] [--runs-root dir] "
    "[--runners-root dir]\n";

int
main(int argc, char *argv[])
{
	int repair = 0, left;
	const struct phn_option options[] = {
		PHN_FLAG(0, "repair", &repair),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage, .take = PHN_TAKE_JSON,
	    .nargs = 0 };
	struct phn_fsck_opts fo = { 0 };
	struct phn_paths P;
	struct phn_config C;
	struct phn_errs e = { 0 };

	PROG = "phn-fsck";
	setvbuf(stdout, NULL, _IOLBF, 0);
	phn_opts_parse(&opts, &argc, &argv, options);
	phn_opts_paths(&opts, &P);
	if (phn_config_read(&P, 0, &C, &e) == -1)
		phn_errs_die(&e);
	fo.repair = repair;
	fo.json = opts.json;
	fo.out = stdout;
	left = phn_fsck_run(&P, &C, &fo);
	phn_config_free(&C);
	phn_paths_free(&P);
	phn_stdout_close();
	if (left < 0)
		return PHN_EXIT_TEMP;
	return left > 0 ? PHN_EXIT_NO : PHN_EXIT_OK;
}
