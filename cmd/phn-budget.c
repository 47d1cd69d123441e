/*
 * phn-budget - set a batch's token budget (max_total_tokens); raising it
 * resumes a batch whose budget was spent.
 *
 * Output: one JSON object, {"ok":true,"action":"budget","budget":
 * {max_total_tokens, used_tokens, exhausted},...}.  Writes
 * runs/BATCH/budget.json ({max_total_tokens, set_at, reason, history:
 * [earlier settings]}), which wins over the batch's
 * effective_defaults.budget (budget.c), and puts every step of the batch
 * in the ready index so that claimers look at them again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phn.h"

static long long tokens;

/* The operand after the batch, judged before the store is opened. */
static void
tokens_arg(char *argv[])
{
	tokens = phn_parse_num("max_total_tokens", argv[1], 1,
	    PHN_JSON_INT_MAX);
}

/* Every step of the batch into the ready index. */
static int
ready_all(const struct phn_paths *p, const char *batch)
{
	struct json_object *bm, *jobs, *steps;
	char msg[512];
	size_t i, k, nj, ns;
	int r = 0;

	if ((bm = phn_batch_meta(p, batch, msg, sizeof(msg))) == NULL)
		return -1;
	jobs = phn_json_get(bm, "jobs");
	nj = json_object_is_type(jobs, json_type_array) ?
	    json_object_array_length(jobs) : 0;
	for (i = 0; i < nj; i++) {
		struct json_object *jb = json_object_array_get_idx(jobs, i);
		const char *job = phn_jstr(jb, "job_id");
		steps = phn_json_get(jb, "steps");
		ns = job && json_object_is_type(steps, json_type_array) ?
		    json_object_array_length(steps) : 0;
		for (k = 0; k < ns; k++) {
			const char *st = phn_jstr(json_object_array_get_idx(
			    steps, k), "step_id");
			if (st && phn_sched_ready_add(p, batch, job, st, 0) == -1)
				r = -1;
		}
	}
	json_object_put(bm);
	return r;
}

int
main(int argc, char *argv[])
{
	const char *reason = NULL;
	struct phn_paths P;
	struct phn_budget b;
	struct json_object *o, *old, *hist, *h;
	char msg[512], iso[PHN_ISO_LEN], *f, *bdir;

	argv = phn_batch_cmd("phn-budget", "max_total_tokens", 2, &reason,
	    tokens_arg, &P, argc, argv);
	f = phn_batch_path(&P, argv[0], "budget.json");
	old = phn_json_load(f, msg, sizeof(msg));
	if (old == NULL && errno != ENOENT)
		phn_warn("warning: %s; replaced", msg);
	hist = json_object_new_array();
	if (old != NULL && json_object_is_type(phn_json_get(old, "history"),
	    json_type_array))
		json_object_deep_copy(phn_json_get(old, "history"), &hist, NULL);
	if (old != NULL) {
		h = NULL;
		json_object_deep_copy(old, &h, NULL);
		json_object_object_del(h, "history");
		json_object_array_add(hist, h);
	}
	json_object_put(old);
	phn_iso(phn_now(), iso);
	o = json_object_new_object();
	json_object_object_add(o, "batch_id", json_object_new_string(argv[0]));
	json_object_object_add(o, "max_total_tokens",
	    json_object_new_int64(tokens));
	json_object_object_add(o, "set_at", json_object_new_string(iso));
	json_object_object_add(o, "reason", phn_json_string(reason));
	json_object_object_add(o, "history", hist);
	if (phn_json_write(f, o, PHN_DURABLE) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to write %s:", f);
	json_object_put(o);
	bdir = phn_batch_path(&P, argv[0], NULL);
	phn_batch_changed(bdir);	/* after the change (summary.c) */
	free(bdir);
	if (ready_all(&P, argv[0]) == -1)
		phn_die(PHN_EXIT_TEMP, "%s: unable to add its steps to the ready "
		    "index:", argv[0]);
	if (phn_budget_get(&P, argv[0], NULL, 1, &b) == -1)
		phn_die(PHN_EXIT_TEMP, "%s: unable to read batch_meta.json:",
		    argv[0]);
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "action", json_object_new_string("budget"));
	json_object_object_add(o, "batch_id", json_object_new_string(argv[0]));
	json_object_object_add(o, "budget", phn_budget_json(&b));
	json_object_object_add(o, "budget_path", json_object_new_string(f));
	phn_json_emit(stdout, o);
	json_object_put(o);
	free(f);
	phn_paths_free(&P);
	phn_stdout_close();
	return PHN_EXIT_OK;
}
