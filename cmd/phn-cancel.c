/*
 * phn-cancel - cancel attempts.
 *
 * Input: attempt directories as operands (in any store: found from the
 * path), or one attempt by its ids.  Output: one JSON object per
 * attempt: what was done, or that it had already ended (exit 0 still).
 *
 * Invariants: a signal goes only to a process whose identity (host,
 * boot id, pid and start time) matches the attempt's record (see
 * lib/ops.c); a terminal attempt is left untouched, not even a lock
 * file is created in it; a canceled attempt is recorded in current.json
 * and its step handed back to the scheduler, like any other ending.
 */
#include <stdio.h>
#include <stdlib.h>

#include "phn.h"

static struct phn_paths P;

static const char usage[] =
    "usage: phn-cancel [-g seconds] [-r root] [--runs-root dir] "
    "[--runners-root dir]\n"
    "                  attempt_dir ...\n"
    "       phn-cancel [-g seconds] [-r root] [--runs-root dir] "
    "[--runners-root dir]\n"
    "                  -a attempt_dir | -b batch --job job -s step "
    "-R run_id\n";

/*
 * Cancel the attempt dir of store p; grace < 0: the store's
 * defaults.kill_grace_seconds.  An attempt that had already ended is
 * said so on stdout ("already_terminal") and is not an error.
 */
static int
one(const struct phn_paths *p, const char *dir, double grace)
{
	struct phn_attempt a;
	struct phn_config C;
	struct phn_errs e = { 0 };
	struct json_object *res = NULL;
	int r;

	if (phn_attempt_parse(p, dir, &a) == -1)
		phn_die(PHN_EXIT_PERM, "%s: not an attempt directory", dir);
	if (grace < 0) {
		if (phn_config_read(p, 0, &C, &e) == -1)
			phn_errs_die(&e);
		grace = phn_config_num(&C, "defaults.kill_grace_seconds", 10);
		phn_config_free(&C);
	}
	r = phn_cancel(p, &a, grace, &res);
	if (r == -1)
		phn_warn("%s: unable to cancel:", a.dir);
	else
		phn_json_emit(stdout, res);
	json_object_put(res);
	phn_attempt_free(&a);
	return r == -1 ? PHN_EXIT_TEMP : PHN_EXIT_OK;
}

/* An attempt named by its directory: in P's store, or any store. */
static int
one_dir(const char *dir, double grace)
{
	struct phn_paths Q;
	struct phn_errs e = { 0 };
	char *d;
	int c;

	if ((d = phn_attempt_locate(&P, dir, &Q, &e)) == NULL)
		phn_errs_die(&e);
	c = one(Q.runs ? &Q : &P, d, grace);
	free(d);
	phn_paths_free(&Q);
	return c;
}

int
main(int argc, char *argv[])
{
	double grace = -1;
	const struct phn_option options[] = {
		PHN_SECS('g', "grace", &grace, 0, 86400),
		PHN_SECS('g', "grace-seconds", &grace, 0, 86400),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage, .take = PHN_TAKE_ATTEMPT,
	    .nargs = PHN_ARGS_ANY };
	struct phn_errs e = { 0 };
	char *d;
	int code = PHN_EXIT_OK, i;

	PROG = "phn-cancel";
	setvbuf(stdout, NULL, _IOLBF, 0);
	phn_opts_parse(&opts, &argc, &argv, options);
	if ((argc == 0) == !phn_opts_attempt(&opts))
		phn_usage(&opts, PHN_EXIT_PERM);
	/* Attempt directories may lie in a store found from their paths. */
	opts.mkstore = argc > 0 || opts.adir != NULL;
	phn_opts_paths(&opts, &P);
	if (argc == 0 && opts.adir != NULL)
		code = one_dir(opts.adir, grace);
	else if (argc == 0) {
		if ((d = phn_attempt_select(&P, NULL, opts.batch, opts.job,
		    opts.step, opts.run, &e)) == NULL)
			phn_errs_die(&e);
		code = one(&P, d, grace);
		free(d);
	}
	for (i = 0; i < argc; i++)
		if (one_dir(argv[i], grace) == PHN_EXIT_TEMP)
			code = PHN_EXIT_TEMP;
	phn_paths_free(&P);
	phn_stdout_close();
	return code;
}
