/*
 * phn-spawn - run one claimed attempt: codex exec (or exec resume),
 * supervised to its end, everything recorded in the attempt directory.
 *
 * Input: one attempt directory, as phn-claim prints it.  Output: nothing,
 * or with --json one summary object.  The exit status is the outcome
 * (SPEC 6.6): 0 succeeded, 1 failed, 3 needs_attention, 4 canceled,
 * 124 timed out, 126 codex not executable, 127 codex not found, 100
 * usage or not a claimed attempt, 111 a harness error.
 *
 * Invariants: spawn.lock is taken before the state changes and held to
 * exit, so "lock held" means "spawner alive"; only a queued attempt is
 * run; once running it always ends in a terminal state written by
 * phn_run_end (if even that write fails: 111, and the reaper will find
 * an orphan).  SIGTERM, SIGINT and SIGHUP cancel: phn-spawn never dies
 * from them and never exits 255, either of which would stop an xargs
 * fan-out.
 */
#include <stdio.h>
#include <stdlib.h>

#include "run.h"

static const char usage[] =
    "usage: phn-spawn [-DJ] [-r root] [--runs-root dir] [--runners-root dir] "
    "attempt_dir\n";

static int
run(struct phn_run *r, int json)
{
	double sleep;

	if (phn_run_prepare(r) == 0) {
		sleep = r->nocodex ? phn_run_fake_begin(r) : 0;
		phn_run_supervise(r, sleep);
		if (r->nocodex)
			phn_run_fake_end(r);
		phn_run_outcome(r);
	}
	return phn_run_end(r, json);
}

/* With --json, an attempt refused at start still gets its one object. */
static void
refused(const char *dir, int code)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "attempt_dir", json_object_new_string(dir));
	json_object_object_add(o, "started", json_object_new_boolean(0));
	json_object_object_add(o, "status", code == PHN_EXIT_CANCELED ?
	    json_object_new_string("canceled") : NULL);
	json_object_object_add(o, "exit_status", json_object_new_int(code));
	phn_json_emit(stdout, o);
	json_object_put(o);
}

int
main(int argc, char *argv[])
{
	int Dflag = 0, code;
	const struct phn_option options[] = {
		PHN_FLAG('D', "no-codex", &Dflag),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage, .take = PHN_TAKE_JSON,
	    .nargs = 1 };
	struct phn_paths paths;
	struct phn_run r;
	char msg[8192];

	PROG = "phn-spawn";
	setvbuf(stdout, NULL, _IOLBF, 0);
	phn_opts_parse(&opts, &argc, &argv, options);
	if (phn_signals_init() == -1)
		phn_die(PHN_EXIT_TEMP, "unable to set up signal handling:");
	phn_opts_paths(&opts, &paths);
	phn_run_init(&r, &paths);
	r.nocodex = Dflag;
	/* Not through a symbolic link in the store (layout.c). */
	if (phn_store_attempt_dir(&paths, argv[0], msg, sizeof(msg)) == -1) {
		phn_warn("%s", msg);
		code = PHN_EXIT_TEMP;
	} else
		code = phn_run_start(&r, argv[0]);
	if (code == PHN_EXIT_OK)
		code = run(&r, opts.json);
	else if (opts.json)
		refused(argv[0], code);
	phn_run_free(&r);
	phn_paths_free(&paths);
	phn_stdout_close();
	return code;
}
