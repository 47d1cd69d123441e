/*
 * phn-init - create a runs store and its harness config.
 *
 * Creates ROOT/runs (with _system/ and _queue/) and ROOT/runners, writes
 * the default runs/_system/harness_config.json unless one exists (an
 * existing config is validated and kept; --force replaces it), snapshots
 * its version, and copies the installed run_report.schema.json into
 * runs/_system/.  Prints one JSON object describing the store.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

static void
usage(void)
{
	fprintf(stderr, "usage: phn-init [-f] [-r root] [--runs-root dir] "
	    "[--runners-root dir]\n");
	exit(PHN_EXIT_PERM);
}

static void
mkdir_or_die(const char *d)
{
	if (phn_mkdirs(d, 0755) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to create %s:", d);
}

int
main(int argc, char *argv[])
{
	static const struct option lopts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "root", required_argument, NULL, 'r' },
		{ "runs-root", required_argument, NULL, 'R' },
		{ "runners-root", required_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static const char *dirs[] = { "_system", "_queue/incoming",
	    "_queue/processed", "_queue/rejected", NULL };
	const char *root = NULL, *runs = NULL, *runners = NULL;
	struct phn_paths p;
	struct phn_config cfg;
	struct phn_errs e = { 0 };
	struct json_object *out;
	char *d, *schema, *dst;
	int ch, fflag = 0, created, i;

	PROG = "phn-init";
	while ((ch = getopt_long(argc, argv, "fr:", lopts, NULL)) != -1) {
		switch (ch) {
		case 'f': fflag = 1; break;
		case 'r': root = optarg; break;
		case 'R': runs = optarg; break;
		case 'U': runners = optarg; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	phn_paths_init(&p, root, runs, runners);
	for (i = 0; dirs[i]; i++) {
		d = phn_path_join(p.runs, dirs[i]);
		mkdir_or_die(d);
		free(d);
	}
	mkdir_or_die(p.runners);
	if ((created = phn_config_write(&p, fflag, &e)) == -1 ||
	    phn_config_read(&p, PHN_CONFIG_SNAPSHOT, &cfg, &e) == -1)
		phn_errs_die(&e);
	dst = phn_path_join(p.runs, "_system/run_report.schema.json");
	if ((schema = phn_datadir_file("run_report.schema.json")) == NULL)
		phn_warn("warning: run_report.schema.json is not installed; "
		    "set PHN_DATADIR or run make install");
	else if ((fflag || access(dst, F_OK) == -1) &&
	    phn_copy_file(schema, dst, PHN_DURABLE) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to copy %s to %s:", schema, dst);
	out = json_object_new_object();
	json_object_object_add(out, "ok", json_object_new_boolean(1));
	json_object_object_add(out, "runs_root", json_object_new_string(p.runs));
	json_object_object_add(out, "runners_root",
	    json_object_new_string(p.runners));
	json_object_object_add(out, "harness_config_version",
	    json_object_new_string(cfg.version));
	json_object_object_add(out, "config_written",
	    json_object_new_boolean(created));
	phn_json_emit(stdout, out);
	json_object_put(out);
	free(schema);
	free(dst);
	phn_config_free(&cfg);
	phn_paths_free(&p);
	phn_stdout_close();
	return 0;
}
