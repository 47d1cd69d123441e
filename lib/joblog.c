/*
 * joblog.c - the attempts as GNU parallel's joblog (phn-score --joblog),
 * so that tools reading a joblog (parallel --resume-failed,
 * --retry-failed, scripts with awk) work unchanged.
 *
 * A header line, then one line per ended attempt, tab-separated:
 *   Seq         the step's number (1, 2, ...) among the steps listed, in
 *               the batches' order and the table's order: a step is a
 *               "job", its attempts are its runs (same Seq, claim order)
 *   Host        state.json host, else ":" (parallel's local host)
 *   Starttime   started_at (else claimed_at) as epoch seconds, %.3f
 *   JobRuntime  ended_at - start, %10.3f (parallel's width)
 *   Send        0
 *   Receive     bytes of final.txt (the agent's output), else 0
 *   Exitval     phn-spawn's exit status for the outcome: 0 succeeded,
 *               1 failed, 3 needs_attention, 4 canceled, 124 timeout
 *   Signal      0
 *   Command     phn-force-retry --runs-root RUNS BATCH JOB STEP: what
 *               runs the step again (parallel --retry-failed runs it)
 * Attempts still queued or running are not listed, as parallel writes a
 * line when a job ends.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "phn.h"

/* s quoted for sh when it needs it. */
static void
shquote(FILE *out, const char *s)
{
	const char *p;

	if (s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789/._-+=:,@%")] == '\0' && *s != '\0') {
		fputs(s, out);
		return;
	}
	fputc('\'', out);
	for (p = s; *p; p++) {
		if (*p == '\'')
			fputs("'\\''", out);
		else if (*p == '\t' || *p == '\n')
			fputc(' ', out);	/* would break the line format */
		else
			fputc(*p, out);
	}
	fputc('\'', out);
}

static int
exitval(const char *status, const char *kind)
{
	if (kind != NULL && strcmp(kind, "timeout") == 0)
		return PHN_EXIT_TIMEOUT;
	switch (phn_ast_of(status)) {
	case PHN_AST_SUCCEEDED:
		return 0;
	case PHN_AST_NEEDS:
		return PHN_EXIT_ATTENTION;
	case PHN_AST_CANCELED:
		return PHN_EXIT_CANCELED;
	}
	return 1;
}

/* The ended attempts of one step; *seq is the step's number if any. */
static void
step_lines(const struct phn_paths *p, const char *batch, const char *job,
    const char *step, long *seq, FILE *out)
{
	char *d = phn_attempt_path(p, batch, job, step, NULL, NULL), **v, *f;
	struct json_object *st;
	struct stat sb;
	const char *host, *status;
	double t0, t1;
	size_t n, i;
	int listed = 0;

	v = phn_dir_list(d, &n);
	for (i = 0; v != NULL && i < n; i++) {
		f = phn_path_join(d, v[i]);
		st = phn_state_read(f);
		status = phn_jstr(st, "status");
		if (st == NULL || !phn_status_terminal(status)) {
			json_object_put(st);
			free(f);
			continue;
		}
		if (!listed++)
			(*seq)++;
		if (phn_iso_parse(phn_jstr(st, "started_at"), &t0) == -1 &&
		    phn_iso_parse(phn_jstr(st, "claimed_at"), &t0) == -1 &&
		    phn_iso_parse(phn_jstr(st, "ended_at"), &t0) == -1)
			t0 = 0;
		if (phn_iso_parse(phn_jstr(st, "ended_at"), &t1) == -1 ||
		    t1 < t0)
			t1 = t0;
		host = phn_jstr(st, "host");
		if (host == NULL || *host == '\0' || strpbrk(host, " \t\n"))
			host = ":";
		free(f);
		f = phn_attempt_path(p, batch, job, step, v[i], "final.txt");
		fprintf(out, "%ld\t%s\t%.3f\t%10.3f\t0\t%lld\t%d\t0\t"
		    "phn-force-retry --runs-root ", *seq, host, t0, t1 - t0,
		    stat(f, &sb) == 0 ? (long long)sb.st_size : 0LL,
		    exitval(status, phn_jstr(st, "failure_kind")));
		shquote(out, p->runs);
		fprintf(out, " %s %s %s\n", batch, job, step);
		json_object_put(st);
		free(f);
	}
	phn_dir_list_free(v, n);
	free(d);
}

/*
 * Print the joblog of batch (NULL: every batch, in name order, Seq going
 * on across them).  Returns 0, or -1 if a batch could not be read (said
 * on stderr; the others are printed).
 */
int
phn_joblog(const struct phn_paths *p, const char *batch, FILE *out)
{
	struct json_object *bm, *jobs, *steps;
	char **v, msg[512];
	size_t n, i, j, k, nj, ns;
	long seq = 0;
	int r = 0;

	if ((v = phn_batches(p, batch, &n)) == NULL) {
		if (errno != ENOENT)
			return -1;
		n = 0;
	}
	fputs("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\t"
	    "Signal\tCommand\n", out);
	for (i = 0; i < n; i++) {
		if ((bm = phn_batch_meta(p, v[i], msg, sizeof(msg))) == NULL) {
			phn_warn("%s", msg);
			r = -1;
			continue;
		}
		jobs = phn_json_get(bm, "jobs");
		nj = json_object_is_type(jobs, json_type_array) ?
		    json_object_array_length(jobs) : 0;
		for (j = 0; j < nj; j++) {
			struct json_object *jb = json_object_array_get_idx(jobs,
			    j);
			const char *jid = phn_jstr(jb, "job_id");
			steps = phn_json_get(jb, "steps");
			ns = jid && json_object_is_type(steps, json_type_array) ?
			    json_object_array_length(steps) : 0;
			for (k = 0; k < ns; k++) {
				const char *sid = phn_jstr(
				    json_object_array_get_idx(steps, k),
				    "step_id");
				if (sid != NULL)
					step_lines(p, v[i], jid, sid, &seq, out);
			}
		}
		json_object_put(bm);
	}
	phn_dir_list_free(v, n);
	return r;
}
