/*
 * phn-init - create a runs store and its harness config.
 *
 * Creates ROOT/runs (with _system/ and _queue/) and ROOT/runners, writes
 * the default runs/_system/harness_config.json unless one exists (an
 * existing config is validated and kept, its harness_config_version
 * brought up to date; --force replaces it), snapshots its version, and copies the installed run_report.schema.json into
 * runs/_system/.  Prints one JSON object describing the store.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

static const char usage[] =
    "usage: phn-init [-F] [-r root] [--runs-root dir] [--runners-root dir]\n";

static void
mkdir_or_die(const char *d)
{
	if (phn_mkdirs(d, 0755) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to create %s:", d);
}

int
main(int argc, char *argv[])
{
	static const char *dirs[] = { "_system", "_queue/incoming",
	    "_queue/processed", "_queue/rejected", NULL };
	struct phn_opts opts = { .usage = usage, .mkstore = 1 };
	struct phn_paths p;
	struct phn_config cfg;
	struct phn_errs e = { 0 };
	struct json_object *out;
	char *d, *schema, *dst;
	int fflag = 0, created, i;
	const struct phn_option options[] = {
		PHN_FLAG('F', "force", &fflag),
		PHN_END
	};

	PROG = "phn-init";
	phn_opts_parse(&opts, &argc, &argv, options);
	phn_opts_paths(&opts, &p);
	for (i = 0; dirs[i]; i++) {
		d = phn_path_join(p.runs, dirs[i]);
		mkdir_or_die(d);
		free(d);
	}
	mkdir_or_die(p.runners);
	if ((created = phn_config_write(&p, fflag, &e)) == -1 ||
	    phn_config_read(&p, PHN_CONFIG_SNAPSHOT | PHN_CONFIG_STAMP, &cfg,
	    &e) == -1)
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
	return PHN_EXIT_OK;
}
