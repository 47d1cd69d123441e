/*
 * sched.c - what the scheduler learns when an attempt ends.
 *
 * phn_sched_attempt_ended() is called by whoever ends an attempt
 * (phn-spawn, reaping, cancel, operator commands): it puts back into the
 * batch's ready index the steps whose fate may have changed: the step
 * itself (its retry policy may allow another try) and every step that
 * depends on it or resumes from it, in any job.  Entries are hints that
 * claimers re-check under the step lock, so adding too many is safe.
 */
#include <stdlib.h>
#include <string.h>

#include "phn.h"

static int
refers(struct json_object *st, const char *job, const char *self_job,
    const char *step)
{
	struct json_object *v, *x;
	size_t i, n;
	char *full = phn_asprintf("%s/%s", job, step);
	int hit = 0;

	if (json_object_object_get_ex(st, "depends_on", &v) &&
	    json_object_is_type(v, json_type_array)) {
		n = json_object_array_length(v);
		for (i = 0; i < n && !hit; i++) {
			const char *d = json_object_get_string(
			    json_object_array_get_idx(v, i));
			if (d && (strcmp(d, full) == 0 || (strcmp(job,
			    self_job) == 0 && strcmp(d, step) == 0)))
				hit = 1;
		}
	}
	if (!hit && json_object_object_get_ex(st, "resume_from", &v) &&
	    json_object_object_get_ex(v, "step_id", &x)) {
		const char *d = json_object_get_string(x);
		if (d && (strcmp(d, full) == 0 || (strcmp(job, self_job) == 0 &&
		    strcmp(d, step) == 0)))
			hit = 1;
	}
	free(full);
	return hit;
}

int
phn_sched_attempt_ended(const struct phn_paths *p, const struct phn_attempt *a)
{
	struct json_object *meta, *jobs, *job, *steps, *st;
	char msg[512];
	size_t i, k, nj, ns;
	int r = 0;

	if (phn_ready_add(p, a->batch, a->job, a->step, 0) == -1)
		r = -1;
	if ((meta = phn_batch_meta(p, a->batch, msg, sizeof(msg))) == NULL)
		return -1;
	jobs = json_object_object_get(meta, "jobs");
	nj = json_object_is_type(jobs, json_type_array) ?
	    json_object_array_length(jobs) : 0;
	for (i = 0; i < nj; i++) {
		const char *jid;
		job = json_object_array_get_idx(jobs, i);
		jid = phn_jstr(job, "job_id");
		steps = json_object_object_get(job, "steps");
		if (jid == NULL || !json_object_is_type(steps, json_type_array))
			continue;
		ns = json_object_array_length(steps);
		for (k = 0; k < ns; k++) {
			st = json_object_array_get_idx(steps, k);
			if (phn_jstr(st, "step_id") && refers(st, a->job, jid,
			    a->step) && phn_ready_add(p, a->batch, jid,
			    phn_jstr(st, "step_id"), 0) == -1)
				r = -1;
		}
	}
	json_object_put(meta);
	return r;
}
