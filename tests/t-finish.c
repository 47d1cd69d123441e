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
#include <sys/stat.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "phn.h"

static const char *status = "succeeded", *kind, *thread;
static double ago = -1, work;
static int fflag, hflag, rflag;
static struct phn_paths P;

static int
finish(const char *dir)
{
	struct phn_attempt a;
	struct json_object *f, *st;
	char iso[PHN_ISO_LEN], *h;
	int r;

	if (phn_attempt_parse(&P, dir, &a) == -1) {
		phn_warn("%s: not an attempt directory", dir);
		return 1;
	}
	phn_iso(phn_now(), iso);
	f = json_object_new_object();
	json_object_object_add(f, "started_at", json_object_new_string(iso));
	json_object_object_add(f, "last_heartbeat_at",
	    json_object_new_string(iso));
	if ((r = phn_state_update(a.dir, "running", f)) != 1)
		phn_warn("%s: not started (%d)", a.dir, r);
	json_object_put(f);
	if (work > 0) {
		struct timespec ts = { (time_t)work,
		    (long)((work - (time_t)work) * 1e9) };
		nanosleep(&ts, NULL);
	}
	if (hflag) {
		h = phn_path_join(a.dir, "codex_home");
		mkdir(h, 0700);
		free(h);
	}
	if (!rflag) {
		f = json_object_new_object();
		if (kind)
			json_object_object_add(f, "failure_kind",
			    json_object_new_string(kind));
		if (fflag)
			json_object_object_add(f, "harness_fault",
			    json_object_new_boolean(1));
		if (thread)
			json_object_object_add(f, "codex_thread_id",
			    json_object_new_string(thread));
		if (ago >= 0) {
			phn_iso(phn_now() - ago, iso);
			json_object_object_add(f, "ended_at",
			    json_object_new_string(iso));
		}
		if (phn_state_update(a.dir, status, f) == -1)
			phn_warn("%s: unable to end:", a.dir);
		json_object_put(f);
	} else if (thread) {
		f = json_object_new_object();
		json_object_object_add(f, "codex_thread_id",
		    json_object_new_string(thread));
		phn_state_update(a.dir, NULL, f);
		json_object_put(f);
	}
	st = phn_state_read(a.dir);
	phn_current_note(&P, &a, st);
	json_object_put(st);
	if (!rflag)
		phn_sched_attempt_ended(&P, &a);
	phn_attempt_free(&a);
	return 0;
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
		case 'F': fflag = 1; break;
		case 'H': hflag = 1; break;
		case 'R': rflag = 1; break;
		case 'a': ago = atof(optarg); break;
		case 'k': kind = optarg; break;
		case 'r': root = optarg; break;
		case 's': status = optarg; break;
		case 't': thread = optarg; break;
		case 'w': work = atof(optarg); break;
		default:
			fprintf(stderr, "usage: t-finish [-FHR] [-a secs] [-k kind] "
			    "[-r root] [-s status] [-t thread] [-w secs] dir... | -\n");
			return 100;
		}
	}
	phn_paths_init(&P, root, NULL, NULL);
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
