/*
 * phn-gc - apply the retention policy to ended attempts.
 *
 * Input: the runs store (every batch, or -b's).  Output: one JSON object
 * per action (a file deleted or compressed), also with -n, which only
 * says what would be done.
 *
 * The policy of an attempt is the harness config's
 * defaults.retention_policy, overlaid by the batch's effective_defaults,
 * the batch's own retention_policy and its job's.  Ages count from the
 * attempt's ended_at, in days; a limit of null keeps forever.
 *
 * Invariants: an attempt that has not ended (or whose spawner still
 * holds spawn.lock) is never touched; meta.json, state.json,
 * handoff.json, prompt.txt and codex.command.txt are never deleted (the
 * attempt is the source of truth, and they are small); final.json and
 * final.txt of a succeeded attempt go only when
 * allow_delete_success_final_outputs is true; final outputs and
 * codex_home go only in closed batches (an open batch may still resume
 * from any attempt).  A file is compressed or deleted in one pass, never
 * both.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

static struct phn_paths P;
static int Dflag;
static double now;
static int failed;

static const char *pkeys[] = { "keep_raw_events_days",
    "keep_git_artifacts_days", "keep_resume_bases_days",
    "compress_raw_events_after_days", "keep_reduced_state_days",
    "keep_final_outputs_days", "allow_delete_success_final_outputs", NULL };

static const char usage[] =
    "usage: phn-gc [-D] [-b batch] [-r root] [--runs-root dir] "
    "[--runners-root dir]\n";

/* Overlay the known keys of o onto pol. */
static void
overlay(struct json_object *pol, struct json_object *o)
{
	struct json_object *v;
	int i;

	if (!json_object_is_type(o, json_type_object))
		return;
	for (i = 0; pkeys[i]; i++)
		if (json_object_object_get_ex(o, pkeys[i], &v))
			json_object_object_add(pol, pkeys[i], json_object_get(v));
}

/* Days, or -1 for "keep forever" (null, absent, negative). */
static double
days(struct json_object *pol, const char *k)
{
	struct json_object *v = json_object_object_get(pol, k);

	return phn_json_is_num(v) && json_object_get_double(v) >= 0 ?
	    json_object_get_double(v) : -1;
}

static void
action(const char *what, const char *path, const char *rule, double age,
    const char *attempt)
{
	struct json_object *o = json_object_new_object();
	char *rel = phn_path_rel(P.runs, path), *arel = phn_path_rel(P.runs,
	    attempt);
	int r = 0;

	if (!Dflag) {
		if (strcmp(what, "compress") == 0)
			r = phn_gzip_file(path);
		else
			r = phn_rmtree(path);
		if (r == -1) {
			phn_warn("unable to %s %s:", what, path);
			failed = 1;
		}
	}
	if (r == 0) {
		json_object_object_add(o, "action", json_object_new_string(what));
		json_object_object_add(o, "path", json_object_new_string(rel));
		json_object_object_add(o, "attempt_dir",
		    json_object_new_string(arel));
		json_object_object_add(o, "rule", json_object_new_string(rule));
		json_object_object_add(o, "age_days", json_object_new_int64(
		    (int64_t)age));
		json_object_object_add(o, "dry_run", json_object_new_boolean(
		    Dflag));
		phn_json_emit(stdout, o);
	}
	json_object_put(o);
	free(rel);
	free(arel);
}

/* Delete name in dir when present and older than the limit. */
static void
expire(const char *dir, const char *name, struct json_object *pol,
    const char *rule, double age)
{
	char *f = phn_path_join(dir, name);
	double d = days(pol, rule);

	if (d >= 0 && age > d && access(f, F_OK) == 0)
		action("delete", f, rule, age, dir);
	free(f);
}

static void
attempt(const char *dir, struct json_object *pol, int closed)
{
	static const char *raw[] = { "codex.events.jsonl", "codex.stderr.txt",
	    "codex.stdout.txt", NULL };
	static const char *git[] = { "git_head.txt", "git_status.txt",
	    "git_diff.patch", "files_touched.json", NULL };
	struct json_object *st = phn_state_read(dir), *v;
	const char *status = phn_jstr(st, "status");
	double ended, age, keep, comp;
	char *lp, *f, *gz;
	int i;

	if (st == NULL || !phn_status_terminal(status) ||
	    phn_iso_parse(phn_jstr(st, "ended_at"), &ended) == -1) {
		json_object_put(st);
		return;
	}
	lp = phn_path_join(dir, "spawn.lock");
	i = phn_lock_held(lp);
	free(lp);
	if (i == 1) {
		json_object_put(st);
		return;
	}
	age = (now - ended) / 86400;
	keep = days(pol, "keep_raw_events_days");
	comp = days(pol, "compress_raw_events_after_days");
	for (i = 0; raw[i]; i++) {
		f = phn_path_join(dir, raw[i]);
		gz = phn_asprintf("%s.gz", f);
		if (keep >= 0 && age > keep) {
			if (access(f, F_OK) == 0)
				action("delete", f, "keep_raw_events_days", age,
				    dir);
			if (access(gz, F_OK) == 0)
				action("delete", gz, "keep_raw_events_days", age,
				    dir);
		} else if (comp >= 0 && age > comp && access(f, F_OK) == 0 &&
		    access(gz, F_OK) == -1)
			action("compress", f, "compress_raw_events_after_days",
			    age, dir);
		free(f);
		free(gz);
	}
	for (i = 0; git[i]; i++)
		expire(dir, git[i], pol, "keep_git_artifacts_days", age);
	if (closed) {
		v = json_object_object_get(pol,
		    "allow_delete_success_final_outputs");
		if (strcmp(status, "succeeded") != 0 ||
		    json_object_get_boolean(v)) {
			expire(dir, "final.json", pol, "keep_final_outputs_days",
			    age);
			expire(dir, "final.txt", pol, "keep_final_outputs_days",
			    age);
		}
		expire(dir, "codex_home", pol, "keep_resume_bases_days", age);
	}
	json_object_put(st);
}

static void
batch(const char *b, struct json_object *base)
{
	struct json_object *meta, *jobs, *job, *pol = NULL;
	char msg[512], *f, *sd, *ad, **sv, **av;
	size_t i, nj, k, ns, m, na;
	int closed;

	if ((meta = phn_batch_meta(&P, b, msg, sizeof(msg))) == NULL) {
		phn_warn("warning: %s (batch skipped)", msg);
		failed = 1;
		return;
	}
	f = phn_asprintf("%s/%s/batch_closed.json", P.runs, b);
	closed = access(f, F_OK) == 0;
	free(f);
	jobs = json_object_object_get(meta, "jobs");
	nj = json_object_is_type(jobs, json_type_array) ?
	    json_object_array_length(jobs) : 0;
	for (i = 0; i < nj; i++) {
		job = json_object_array_get_idx(jobs, i);
		if (phn_jstr(job, "job_id") == NULL ||
		    !phn_id_valid(phn_jstr(job, "job_id"),
		    strlen(phn_jstr(job, "job_id"))))
			continue;
		json_object_deep_copy(base, &pol, NULL);
		overlay(pol, phn_json_path_get(meta,
		    "effective_defaults.retention_policy"));
		overlay(pol, json_object_object_get(meta, "retention_policy"));
		overlay(pol, json_object_object_get(job, "retention_policy"));
		sd = phn_job_path(&P, b, phn_jstr(job, "job_id"), "steps");
		if ((sv = phn_dir_list(sd, &ns)) != NULL) {
			for (k = 0; k < ns; k++) {
				ad = phn_attempt_path(&P, b, phn_jstr(job,
				    "job_id"), sv[k], NULL, NULL);
				if ((av = phn_dir_list(ad, &na)) != NULL) {
					for (m = 0; m < na; m++) {
						f = phn_path_join(ad, av[m]);
						attempt(f, pol, closed);
						free(f);
					}
				}
				phn_dir_list_free(av, na);
				free(ad);
			}
		}
		phn_dir_list_free(sv, ns);
		free(sd);
		json_object_put(pol);
		pol = NULL;
	}
	json_object_put(meta);
}

int
main(int argc, char *argv[])
{
	const struct phn_option options[] = {
		PHN_FLAG('D', "dry-run", &Dflag),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage, .take = PHN_TAKE_BATCH };
	/* static: still reachable if we die, so leak checkers stay quiet */
	static struct json_object *base, *dflt;
	static struct phn_config C;
	struct phn_errs e = { 0 };
	char **v;
	size_t n, i;

	PROG = "phn-gc";
	setvbuf(stdout, NULL, _IOLBF, 0);
	phn_opts_parse(&opts, &argc, &argv, options);
	phn_opts_paths(&opts, &P);
	if (opts.batch != NULL && phn_sched_step_check(&P, opts.batch, NULL,
	    NULL, &e) == -1)
		phn_errs_die(&e);
	if (phn_config_read(&P, 0, &C, &e) == -1)
		phn_errs_die(&e);
	/* Missing keys fall back to the defaults phn-init writes. */
	dflt = phn_config_default();
	base = json_object_new_object();
	overlay(base, phn_json_path_get(dflt, "defaults.retention_policy"));
	overlay(base, phn_json_path_get(C.doc, "defaults.retention_policy"));
	json_object_put(dflt);
	now = phn_now();
	if (opts.batch != NULL)
		batch(opts.batch, base);
	else if ((v = phn_batch_list(&P, &n)) != NULL) {
		for (i = 0; i < n; i++)
			batch(v[i], base);
		phn_dir_list_free(v, n);
	} else if (errno != ENOENT)
		phn_die(PHN_EXIT_TEMP, "unable to read %s:", P.runs);
	json_object_put(base);
	phn_config_free(&C);
	phn_paths_free(&P);
	phn_stdout_close();
	return failed ? PHN_EXIT_TEMP : PHN_EXIT_OK;
}
