/*
 * override.c - the one command line of the operator overrides (see
 * override.h): options, the step's ids, phn_override_step(), the JSON
 * result; exit 0, 100 (usage, bad ids) or 111 (the store).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "override.h"

int
override_main(struct phn_override_req *req, const char *own_usage,
    const struct phn_option *own, int (*valid)(const struct phn_override_req *),
    int argc, char *argv[])
{
	struct phn_option options[8] = { PHN_STR('m', "reason", &req->reason) };
	char *usage = phn_asprintf("usage: %s %s[-m reason] [-r root] "
	    "[--runs-root dir]\n%*s[--runners-root dir] batch job step\n", PROG,
	    own_usage, (int)strlen(PROG) + 8, "");
	struct phn_opts opts = { .usage = usage, .nargs = 3 };
	struct phn_paths P;
	struct phn_errs e = { 0 };
	struct json_object *out;
	size_t n = 1;

	for (; own != NULL && own->type != 0 && n < 7; own++)
		options[n++] = *own;
	setvbuf(stdout, NULL, _IOLBF, 0);
	phn_opts_parse(&opts, &argc, &argv, options);
	if (valid != NULL && !valid(req))
		phn_usage(&opts, PHN_EXIT_PERM);
	req->batch = argv[0];
	req->job = argv[1];
	req->step = argv[2];
	phn_opts_paths(&opts, &P);
	if (phn_override_step(&P, req, &out, &e) == -1)
		phn_errs_die(&e);
	phn_json_emit(stdout, out);
	json_object_put(out);
	phn_paths_free(&P);
	free(usage);
	phn_stdout_close();
	return PHN_EXIT_OK;
}
