/*
 * layout.c - the runs store's vocabulary: every path of a batch, job,
 * step and attempt, and the names of the derived index entries, are
 * built and parsed here and nowhere else.  phn(5) FILES is the same
 * layout in words:
 *
 *   RUNS/_system/FILE
 *   RUNS/BATCH/FILE                     batch_meta.json, _sched/, _ready/
 *   RUNS/BATCH/JOB/FILE                 current.json, overrides.json
 *   RUNS/BATCH/JOB/steps/STEP/FILE      prompt.txt, step.lock
 *   RUNS/BATCH/JOB/steps/STEP/attempts/NAME/FILE
 *   RUNNERS/RUNNER/FILE                 health.json, drain.json, active/
 *
 * Index entries name what they stand for with '@' between ids (ids never
 * hold '@'): _ready/JOB@STEP, _active/JOB@STEP@ATTEMPT,
 * runners/R/active/BATCH@JOB@STEP@ATTEMPT.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

/* "BASE/A/B/C" of the non-NULL parts, in order: one allocation. */
static char *
join(const char *base, const char *a, const char *b, const char *c)
{
	const char *v[4] = { base, a, b, c };
	size_t len[4], n = 0;
	char *r, *p;
	int i;

	for (i = 0; i < 4; i++)
		n += v[i] ? (len[i] = strlen(v[i])) + 1 : 0;
	p = r = phn_malloc(n + 1);
	for (i = 0; i < 4; i++) {
		if (v[i] == NULL)
			continue;
		if (p != r)
			*p++ = '/';
		memcpy(p, v[i], len[i]);
		p += len[i];
	}
	*p = '\0';
	return r;
}

/* RUNS/_system[/FILE] */
char *
phn_system_path(const struct phn_paths *p, const char *file)
{
	return join(p->runs, "_system", file, NULL);
}

/* RUNS/_system/pause.json: the store-wide rate-limit pause (pause.c) */
char *
phn_pause_path(const struct phn_paths *p)
{
	return join(p->runs, "_system", "pause.json", NULL);
}

/* RUNS/_system/HALT: claimers drain while it exists (pause.c) */
char *
phn_halt_path(const struct phn_paths *p)
{
	return join(p->runs, "_system", "HALT", NULL);
}

/* RUNS/BATCH[/FILE] */
char *
phn_batch_path(const struct phn_paths *p, const char *batch,
    const char *file)
{
	return join(p->runs, batch, file, NULL);
}

/* BATCHDIR/_sched/changes: one byte per change to the batch (summary.c) */
char *
phn_changes_path(const char *bdir)
{
	return join(bdir, "_sched", "changes", NULL);
}

/* RUNS/BATCH/_sched/summary.json: the batch's kept row (summary.c) */
char *
phn_summary_path(const struct phn_paths *p, const char *batch)
{
	return join(p->runs, batch, "_sched", "summary.json");
}

/* RUNS/BATCH/JOB[/FILE] */
char *
phn_job_path(const struct phn_paths *p, const char *batch, const char *job,
    const char *file)
{
	return join(p->runs, batch, job, file);
}

/* The concatenation of the strings up to a NULL: one allocation. */
static char *
cat(const char *s, ...)
{
	va_list ap;
	const char *t;
	size_t n = 0;
	char *r, *p;

	va_start(ap, s);
	for (t = s; t != NULL; t = va_arg(ap, const char *))
		n += strlen(t);
	va_end(ap);
	p = r = phn_malloc(n + 1);
	va_start(ap, s);
	for (t = s; t != NULL; t = va_arg(ap, const char *)) {
		n = strlen(t);
		memcpy(p, t, n);
		p += n;
	}
	va_end(ap);
	*p = '\0';
	return r;
}

/* RUNS/BATCH/JOB/steps/STEP[/FILE] */
char *
phn_step_path(const struct phn_paths *p, const char *batch, const char *job,
    const char *step, const char *file)
{
	return cat(p->runs, "/", batch, "/", job, "/steps/", step,
	    file ? "/" : "", file ? file : "", (char *)NULL);
}

/* BATCH/JOB/steps/STEP/attempts[/NAME], relative to the runs root. */
char *
phn_attempt_rel(const char *batch, const char *job, const char *step,
    const char *name)
{
	return cat(batch, "/", job, "/steps/", step, "/attempts",
	    name ? "/" : "", name ? name : "", (char *)NULL);
}

/* RUNS/BATCH/JOB/steps/STEP/attempts[/NAME[/FILE]] */
char *
phn_attempt_path(const struct phn_paths *p, const char *batch,
    const char *job, const char *step, const char *name, const char *file)
{
	if (name == NULL)
		file = NULL;
	return cat(p->runs, "/", batch, "/", job, "/steps/", step, "/attempts",
	    name ? "/" : "", name ? name : "", file ? "/" : "", file ? file : "",
	    (char *)NULL);
}



/* RUNNERS/RUNNER[/FILE] */
char *
phn_runner_path(const struct phn_paths *p, const char *runner,
    const char *file)
{
	return join(p->runners, runner, file, NULL);
}

/* RUNNERS/RUNNER/health.json: the runner's health (runner.c) */
char *
phn_runner_health_path(const struct phn_paths *p, const char *runner)
{
	return join(p->runners, runner, "health.json", NULL);
}


/* An index entry's name: the non-NULL ids joined by '@'. */
char *
phn_entry_name(const char *a, const char *b, const char *c, const char *d)
{
	const char *v[4] = { a, b, c, d };
	char *r = NULL, *t;
	int i;

	for (i = 0; i < 4; i++) {
		if (v[i] == NULL)
			continue;
		t = r ? phn_asprintf("%s@%s", r, v[i]) : phn_strdup(v[i]);
		free(r);
		r = t;
	}
	return r ? r : phn_strdup("");
}

/*
 * Split an index entry's name into exactly n parts (pointers into a copy
 * that parts[0] owns: free(parts[0]) frees them all).  0, or -1 when the
 * name has another number of parts or an empty one.
 */
int
phn_entry_split(const char *name, char *parts[], int n)
{
	char *s = phn_strdup(name), *at;
	int k = 0;

	parts[k++] = s;
	while ((at = strchr(s, '@')) != NULL && k < n) {
		*at = '\0';
		s = at + 1;
		parts[k++] = s;
	}
	if (k != n || strchr(s, '@') != NULL) {
		free(parts[0]);
		return -1;
	}
	for (k = 0; k < n; k++)
		if (*parts[k] == '\0') {
			free(parts[0]);
			return -1;
		}
	return 0;
}

/* RUNS/BATCH/_ready/JOB@STEP */
char *
phn_ready_entry(const struct phn_paths *p, const char *batch,
    const char *job, const char *step)
{
	char *e = phn_entry_name(job, step, NULL, NULL);
	char *r = join(p->runs, batch, "_ready", e);

	free(e);
	return r;
}

/* RUNS/BATCH/_active/JOB@STEP@ATTEMPT */
char *
phn_active_entry(const struct phn_paths *p, const char *batch,
    const char *job, const char *step, const char *name)
{
	char *e = phn_entry_name(job, step, name, NULL);
	char *r = join(p->runs, batch, "_active", e);

	free(e);
	return r;
}

/* DIR/BATCH@JOB@STEP@ATTEMPT: an entry of a runner's or a workdir's
 * slot directory DIR. */
char *
phn_slot_entry(const char *dir, const char *batch, const char *job,
    const char *step, const char *name)
{
	char *e = phn_entry_name(batch, job, step, name);
	char *r = join(dir, e, NULL, NULL);

	free(e);
	return r;
}

/*
 * Check that store directory dir (below the runs root) is reached through
 * real directories only, none a symbolic link (atomic.c, phn_dir_open);
 * with mode != 0 the missing ones are made.  0, or -1 with errno and a
 * message naming the path that failed in msg.
 */
int
phn_store_dir(const struct phn_paths *p, const char *dir, int mode,
    char *msg, size_t msglen)
{
	char *bad;
	int fd, e;

	if ((fd = phn_dir_open(p->runs, dir, mode, &bad)) != -1) {
		close(fd);
		return 0;
	}
	e = errno;
	if (e == ELOOP)
		snprintf(msg, msglen, "%s: a symbolic link where the store has "
		    "a directory; refusing to write through it", bad);
	else if (e == EXDEV)
		snprintf(msg, msglen, "%s: not below the runs root %s", bad,
		    p->runs);
	else
		snprintf(msg, msglen, "unable to %s %s: %s", mode ? "create" :
		    "open", bad, strerror(e));
	free(bad);
	errno = e;
	return -1;
}

