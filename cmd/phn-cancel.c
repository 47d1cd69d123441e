/*
 * phn-cancel - cancel attempts.
 *
 * Input: attempt directories as operands, or one attempt by its ids.
 * Output: one JSON object per attempt: what was done.
 *
 * Invariants: a signal goes only to a process whose identity (host,
 * boot id, pid and start time) matches the attempt's record (see
 * lib/ops.c); a terminal attempt is left untouched, not even a lock
 * file is created in it; a canceled attempt is recorded in current.json
 * and its step handed back to the scheduler, like any other ending.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phn.h"

static struct phn_paths P;


static void
usage(void)
{
	fprintf(stderr, "usage: phn-cancel [-g seconds] [-r root] "
	    "[--runs-root dir] attempt_dir ...\n"
	    "       phn-cancel [-g seconds] [-r root] [--runs-root dir] "
	    "-b batch -j job -s step -R run_id\n");
	exit(PHN_EXIT_PERM);
}

static int
one(const char *dir, double grace)
{
	struct phn_attempt a;
	struct json_object *res = NULL;
	int r;

	if (phn_attempt_parse(&P, dir, &a) == -1)
		phn_die(PHN_EXIT_PERM, "%s: not an attempt directory", dir);
	r = phn_cancel(&P, &a, grace, &res);
	if (r == -1)
		phn_warn("%s: unable to cancel:", a.dir);
	else
		phn_json_emit(stdout, res);
	json_object_put(res);
	phn_attempt_free(&a);
	return r == -1 ? PHN_EXIT_TEMP : r == 0 ? PHN_EXIT_NO : 0;
}

int
main(int argc, char *argv[])
{
	static const struct option lopts[] = {
		{ "grace", required_argument, NULL, 'g' },
		{ "grace-seconds", required_argument, NULL, 'g' },
		PHN_ATTEMPT_LOPTS,
		{ NULL, 0, NULL, 0 }
	};
	struct phn_attempt_opts ao = { 0 };
	const char *root = NULL, *runs = NULL, *runners = NULL, *b = NULL,
	    *j = NULL, *s = NULL, *run = NULL, *adir = NULL;
	struct phn_config C;
	struct phn_errs e = { 0 };
	double grace = -1;
	char *d, *end;
	int ch, code = 0, c, i;

	PROG = "phn-cancel";
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((ch = getopt_long(argc, argv, "a:b:g:j:r:R:s:", lopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'g':
			errno = 0;
			grace = strtod(optarg, &end);
			if (*optarg == '\0' || *end != '\0' || errno ||
			    !(grace >= 0 && grace <= 86400))
				phn_die(PHN_EXIT_PERM, "--grace: invalid value "
				    "'%s' (want 0..86400 seconds)", optarg);
			break;
		default:
			if (!phn_attempt_opt(&ao, ch, optarg))
				usage();
		}
	}
	adir = ao.adir;
	b = ao.batch;
	j = ao.job;
	s = ao.step;
	run = ao.run;
	root = ao.root;
	runs = ao.runs;
	runners = ao.runners;
	argc -= optind;
	argv += optind;
	if ((argc == 0) == (adir == NULL && b == NULL && j == NULL &&
	    s == NULL && run == NULL))
		usage();
	phn_paths_init(&P, root, runs, runners);
	if (phn_config_read(&P, 0, &C, &e) == -1)
		phn_errs_die(&e);
	if (grace < 0)
		grace = phn_config_num(&C, "defaults.kill_grace_seconds", 10);
	phn_config_free(&C);
	if (argc == 0) {
		if ((d = phn_attempt_select(&P, adir, b, j, s, run, &e)) == NULL)
			phn_errs_die(&e);
		code = one(d, grace);
		free(d);
	}
	for (i = 0; i < argc; i++) {
		if ((d = phn_attempt_select(&P, argv[i], NULL, NULL, NULL, NULL,
		    &e)) == NULL)
			phn_errs_die(&e);
		c = one(d, grace);
		free(d);
		if (c == PHN_EXIT_TEMP || (c == PHN_EXIT_NO && code == 0))
			code = c;
	}
	phn_paths_free(&P);
	phn_stdout_close();
	return code;
}
