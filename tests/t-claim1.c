/*
 * t-claim1 - test helper: claim one step as a new attempt, exactly as the
 * shared contract says phn-claim does (attempt dir, meta.json, state.json
 * queued with claimed_at, current.json), without any scheduling: no
 * runnable check, no ready index, no limits.  Prints the attempt dir.
 *
 * usage: t-claim1 [-r root] [-u runner_id] batch job step
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

static struct json_object *
find(struct json_object *arr, const char *key, const char *id)
{
	size_t i, n = json_object_is_type(arr, json_type_array) ?
	    json_object_array_length(arr) : 0;

	for (i = 0; i < n; i++) {
		struct json_object *o = json_object_array_get_idx(arr, i);
		const char *s = phn_jstr(o, key);
		if (s && strcmp(s, id) == 0)
			return o;
	}
	return NULL;
}

static struct json_object *
str(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

/* Attempts of a step that count toward max_attempts, plus one. */
static int
attempt_number(const char *ad)
{
	char **v;
	size_t n, i;
	int k = 1;

	if ((v = phn_dir_list(ad, &n)) == NULL)
		return 1;
	for (i = 0; i < n; i++) {
		char *d = phn_path_join(ad, v[i]);
		struct json_object *st = phn_state_read(d);
		const char *fk = phn_jstr(st, "failure_kind");
		if (fk == NULL || (strcmp(fk, "orphaned") &&
		    strcmp(fk, "claim_expired")))
			k++;
		json_object_put(st);
		free(d);
	}
	phn_dir_list_free(v, n);
	return k;
}

int
main(int argc, char *argv[])
{
	struct phn_paths p;
	struct phn_attempt a;
	struct json_object *bm, *job, *step, *eff, *m, *st, *v, *rf;
	const char *root = NULL, *runner = NULL, *mode, *schema_rel = NULL;
	char msg[512], *run_id, *dir, *ad, *f, *src = NULL, *why = NULL;
	char iso[PHN_ISO_LEN], *sp[3];
	int ch, i;

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
	phn_paths_init(&p, root, NULL, NULL);
	if ((bm = phn_batch_meta(&p, argv[0], msg, sizeof(msg))) == NULL)
		phn_die(PHN_EXIT_PERM, "%s", msg);
	if ((job = find(json_object_object_get(bm, "jobs"), "job_id",
	    argv[1])) == NULL || (step = find(json_object_object_get(job,
	    "steps"), "step_id", argv[2])) == NULL)
		phn_die(PHN_EXIT_PERM, "no step %s/%s", argv[1], argv[2]);
	eff = json_object_object_get(bm, "effective_defaults");
	run_id = phn_id_new("run");
	ad = phn_asprintf("%s/%s/%s/steps/%s/attempts", p.runs, argv[0],
	    argv[1], argv[2]);
	dir = phn_asprintf("%s/%.16s_%s", ad, run_id + 4, run_id);
	phn_iso(phn_now(), iso);

	m = json_object_new_object();
	json_object_object_add(m, "batch_id", str(argv[0]));
	json_object_object_add(m, "job_id", str(argv[1]));
	json_object_object_add(m, "step_id", str(argv[2]));
	json_object_object_add(m, "run_id", str(run_id));
	json_object_object_add(m, "runner_id", runner ? str(runner) :
	    json_object_new_string(phn_hostname()));
	json_object_object_add(m, "claimed_at", str(iso));
	json_object_object_add(m, "attempt_number",
	    json_object_new_int(attempt_number(ad)));
	json_object_object_add(m, "prompt_sha256", str(phn_jstr(step,
	    "prompt_sha256")));
	json_object_object_add(m, "policy_snapshot", json_object_get(
	    json_object_object_get(eff, "execution_policy")));
	v = json_object_object_get(step, "timeout_seconds");
	if (!phn_json_is_num(v))
		v = phn_json_path_get(eff, "timeouts.step_timeout_seconds");
	json_object_object_add(m, "timeout_seconds", phn_json_is_num(v) &&
	    json_object_get_double(v) > 0 ? json_object_get(v) : NULL);
	json_object_object_add(m, "workdir", str(phn_jstr(job, "job_workdir")));
	mode = phn_jstr(json_object_object_get(job, "workspace_policy"), "mode");
	if (mode == NULL)
		mode = json_object_get_string(phn_json_path_get(eff,
		    "workspace_policy.mode"));
	json_object_object_add(m, "workspace_mode", str(mode ? mode : "shared"));
	sp[0] = phn_asprintf("%s/%s/%s/steps/%s/output_schema.json", p.runs,
	    argv[0], argv[1], argv[2]);
	sp[1] = phn_path_join(p.root, "run_report.schema.json");
	sp[2] = phn_path_join(p.runs, "_system/run_report.schema.json");
	for (i = 0; i < 3 && schema_rel == NULL; i++)
		if (access(sp[i], F_OK) == 0)
			schema_rel = sp[i];
	if (schema_rel != NULL) {
		char *rel = phn_path_rel(p.runs, schema_rel);
		json_object_object_add(m, "output_schema", str(rel));
		free(rel);
	}
	json_object_object_add(m, "invocation", str("exec"));
	if ((rf = json_object_object_get(step, "resume_from")) != NULL) {
		if ((src = phn_resume_resolve(&p, argv[0], argv[1], rf,
		    &why)) == NULL)
			phn_die(1, "not runnable: %s", why);
		v = json_object_new_object();
		json_object_object_add(v, "step_id", str(phn_jstr(rf, "step_id")));
		json_object_object_add(v, "job_id", str(argv[1]));
		json_object_object_add(v, "selector", str(phn_jstr(rf,
		    "selector") ? phn_jstr(rf, "selector") : "latest_successful"));
		json_object_object_add(v, "selected_run_id", str(strstr(src,
		    "run_")));
		f = phn_path_rel(p.runs, src);
		json_object_object_add(v, "source_attempt_dir", str(f));
		free(f);
		json_object_object_add(m, "resume_from", v);
		json_object_object_add(m, "invocation", str("resume"));
		f = phn_attempt_thread(src);
		json_object_object_add(m, "codex_thread_id", str(phn_jstr(rf,
		    "codex_thread_id") ? phn_jstr(rf, "codex_thread_id") : f));
		free(f);
	}

	if (phn_mkdirs(dir, 0755) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to create %s:", dir);
	f = phn_path_join(dir, "meta.json");
	if (phn_json_write(f, m, PHN_DURABLE | PHN_ONCE) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to write %s:", f);
	free(f);
	st = json_object_new_object();
	json_object_object_add(st, "claimed_at", str(iso));
	json_object_object_add(st, "runner_id", json_object_get(
	    json_object_object_get(m, "runner_id")));
	if (phn_state_update(dir, "queued", st) != 1)
		phn_die(PHN_EXIT_TEMP, "unable to write state.json in %s:", dir);
	json_object_put(st);
	if (phn_attempt_parse(&p, dir, &a) == -1)
		phn_die(PHN_EXIT_TEMP, "%s: not an attempt dir", dir);
	st = phn_state_read(dir);
	if (phn_current_note(&p, &a, st) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to update current.json:");
	printf("%s\n", dir);
	json_object_put(st);
	json_object_put(m);
	json_object_put(bm);
	phn_attempt_free(&a);
	for (i = 0; i < 3; i++)
		free(sp[i]);
	free(src);
	free(why);
	free(run_id);
	free(ad);
	free(dir);
	phn_paths_free(&p);
	return 0;
}
