/*
 * phn-replay - a drop-in for the codex binary (PHN_CODEX=phn-replay)
 * that replays a recorded attempt, named by PHN_REPLAY (its directory):
 * its stderr, its codex.events.jsonl with the recorded timing (scaled
 * by PHN_REPLAY_SPEED, default 1), its final message to the -o file and
 * its exit status.  It accepts the command line phn-spawn gives codex
 * (exec [options] -, exec resume [options] THREAD -) and reads the
 * prompt on standard input to its end; only -o matters.  See
 * lib/replay.c.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

static const char usage[] =
    "usage: phn-replay [-r root] [--runs-root dir] [--runners-root dir] "
    "exec [codex options] -\n"
    "       phn-replay --version\n";

/* Codex's command line: only -o matters. */
static const char *
out_file(int argc, char *argv[])
{
	const char *out = NULL;
	int i;

	for (i = 2; i < argc; i++) {
		if ((strcmp(argv[i], "-o") == 0 ||
		    strcmp(argv[i], "--output-last-message") == 0) &&
		    i + 1 < argc)
			out = argv[++i];
		else if (strncmp(argv[i], "--output-last-message=", 22) == 0)
			out = argv[i] + 22;
	}
	return out;
}

int
main(int argc, char *argv[])
{
	const char *dir = getenv("PHN_REPLAY"), *sp = getenv("PHN_REPLAY_SPEED");
	int vflag = 0;
	const struct phn_option options[] = {
		PHN_FLAG(0, "version", &vflag),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage, .nargs = PHN_ARGS_ANY };
	double speed = 1;
	char buf[65536], *e;

	PROG = "phn-replay";
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2 || strcmp(argv[1], "exec") != 0) {
		/* Not codex's command line: our own options. */
		phn_opts_parse(&opts, &argc, &argv, options);
		if (!vflag || argc > 0)
			phn_usage(&opts, PHN_EXIT_PERM);
		printf("codex-cli phn-replay\n");
		return PHN_EXIT_OK;
	}
	if (dir == NULL || *dir == '\0') {
		phn_warn("PHN_REPLAY is not set (want the directory of the "
		    "attempt to replay)");
		return PHN_EXIT_PERM;
	}
	if (sp != NULL && *sp != '\0') {
		speed = strtod(sp, &e);
		if (*e != '\0' || !isfinite(speed) || speed <= 0) {
			phn_warn("PHN_REPLAY_SPEED=%s: want a number > 0", sp);
			return PHN_EXIT_PERM;
		}
	}
	/* The prompt, as codex reads it: to the end, then ignored. */
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return phn_replay(dir, speed, out_file(argc, argv));
}
