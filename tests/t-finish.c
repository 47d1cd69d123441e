/*
 * t-finish - test helper: "run" claimed attempts the way an ender does,
 * without codex: phn_state_update(running), then the terminal state,
 * phn_current_note, phn_sched_attempt_ended.
 *
 * usage: t-finish [-FHR] [-a secs-ago] [-k kind] [-r root] [-s status]
 *                 [-t thread] [-w secs] dir... | -
 * "-" reads attempt directories from stdin, one per line (as phn-claim
 * writes them), finishing each as it arrives.  -w makes each attempt
 * run that long (between running and its end), so that it holds a slot.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t-lib.h"

static struct t_end E = { .ago = -1 };
static struct phn_paths P;

static int
finish(const char *dir)
{
	return t_finish(&P, dir, &E);
}

int
main(int argc, char *argv[])
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int ch, i, rc = 0;
	const char *root = NULL;

	PROG = "t-finish";
	while ((ch = getopt(argc, argv, "FHRa:k:r:s:t:w:")) != -1) {
		switch (ch) {
		case 'F': E.fault = 1; break;
		case 'H': E.home = 1; break;
		case 'R': E.running = 1; break;
		case 'a': E.ago = atof(optarg); break;
		case 'k': E.kind = optarg; break;
		case 'r': root = optarg; break;
		case 's': E.status = optarg; break;
		case 't': E.thread = optarg; break;
		case 'w': E.work = atof(optarg); break;
		default:
			fprintf(stderr, "usage: t-finish [-FHR] [-a secs] [-k kind] "
			    "[-r root] [-s status] [-t thread] [-w secs] dir... | -\n");
			return 100;
		}
	}
	if (phn_paths_init(&P, root, NULL, NULL) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to get the current directory:");
	for (i = optind; i < argc; i++) {
		if (strcmp(argv[i], "-") != 0) {
			rc |= finish(argv[i]);
			continue;
		}
		while ((n = getline(&line, &cap, stdin)) > 0) {
			line[strcspn(line, "\n")] = '\0';
			if (*line)
				rc |= finish(line);
		}
	}
	free(line);
	phn_paths_free(&P);
	return rc;
}
