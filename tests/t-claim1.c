/*
 * t-claim1 - test helper: create one attempt of a step exactly as
 * phn-claim does (phn_sched_create: the step policy's decision in
 * meta.json, state.json queued, current.json), but without its checks:
 * no runnable re-check, no ready index, no limits, no slot entries.
 * Prints the attempt dir.
 *
 * usage: t-claim1 [-r root] [-u runner_id] batch job step
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "phn.h"
#include "claim.h"

int
main(int argc, char *argv[])
{
	struct phn_paths p;
	struct phn_config cfg;
	struct phn_sched s;
	struct phn_claim res;
	struct phn_errs e = { 0 };
	struct json_object *info, *jd;
	const char *root = NULL, *runner = NULL;
	char msg[512];
	int ch;

	PROG = "t-claim1";
	while ((ch = getopt(argc, argv, "r:u:")) != -1) {
		if (ch == 'r')
			root = optarg;
		else if (ch == 'u')
			runner = optarg;
		else
			exit(PHN_EXIT_PERM);
	}
	argc -= optind;
	argv += optind;
	if (argc != 3)
		phn_die(PHN_EXIT_PERM, "usage: t-claim1 [-r root] [-u runner] "
		    "batch job step");
	if (phn_paths_init(&p, root, NULL, NULL) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to get the current directory:");
	if (phn_config_read(&p, PHN_CONFIG_SNAPSHOT, &cfg, &e) == -1)
		phn_errs_die(&e);
	phn_sched_init(&s, &p, &cfg);
	s.runner = runner ? runner : phn_hostname();
	if (phn_sched_index(&p, argv[0], msg, sizeof(msg)) == -1)
		phn_die(PHN_EXIT_PERM, "%s", msg);
	if ((info = phn_sched_info(&p, argv[0])) == NULL ||
	    (jd = phn_sched_job(&p, argv[0], argv[1])) == NULL ||
	    phn_json_get(phn_json_get(jd, "steps"), argv[2]) == NULL)
		phn_die(PHN_EXIT_PERM, "no step %s/%s/%s", argv[0], argv[1],
		    argv[2]);
	if (phn_sched_create(&s, argv[0], info, jd, argv[2], &res) !=
	    PHN_CLAIM_OK)
		phn_die(PHN_EXIT_TEMP, "%s", res.why);
	printf("%s\n", res.dir);
	free(res.dir);
	free(res.entry);
	json_object_put(jd);
	json_object_put(info);
	phn_config_free(&cfg);
	phn_paths_free(&p);
	return 0;
}
