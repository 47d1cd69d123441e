/*
 * t-policy-diff - the differential test of the step policy.
 *
 * Seeded random batches (dependencies within and across jobs, resume_from
 * with every selector, retry policies with statuses and failure kinds,
 * backoff, mode resume_last_attempt, concurrency limits) are driven through
 * random rounds of claims, ends (every status and failure kind, harness
 * faults, with and without a codex thread and codex_home) and operator
 * actions (force-retry, mark-failed, close-batch).  After every round:
 *  - the steps phn-score calls ready now are exactly the steps phn-claim
 *    claims (a subset of them, as many as the batch's concurrency allows,
 *    when that limit holds it back);
 *  - every claimed attempt's meta.json records an invocation, and for a
 *    sample of them phn-spawn (against the fake codex) runs exactly that
 *    command: `exec resume ... THREAD -` with the recorded thread, or a
 *    fresh `exec`.
 *
 * usage: t-policy-diff [-Dv] [-n cases] [-s seed] [-S spawn_percent] root
 * root is an initialised store (phn-init) with a directory root/w; the
 * toolkit (phn-ingest, phn-spawn, phn-force-retry, phn-mark-failed,
 * phn-close-batch) is on PATH and PHN_CODEX names the fake codex.  Exits
 * 0 when every case agrees, 1 at the first disagreement (described on
 * stderr with its case seed, so `-s SEED -n 1 -v` replays it), 111 when
 * something else failed.  -D breaks the store on purpose (every batch's
 * schedule index loses its reverse dependencies, so an ending attempt
 * readies none of its dependents) to show that the test can fail.
 */
#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t-lib.h"
#include "score.h"
#include "claim.h"

#define MAXSTEPS	16

static struct phn_paths P;
static struct phn_config CFG;
static int vflag, Dflag, spawn_pct = 5;
static unsigned long long rng;
static unsigned long long case_seed;
static long nspawned;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? (unsigned)(rng % n) : 0;
}

static int
chance(unsigned pct)
{
	return rnd(100) < pct;
}

static void
fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "t-policy-diff: case seed %llu: ", case_seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Run argv with stdout to *out (if out); its exit status. */
static int
run(char *const argv[], char **out)
{
	int fd[2], st;
	pid_t pid;
	FILE *f;
	size_t cap = 0;
	ssize_t n;
	char *line = NULL;

	if (pipe(fd) == -1 || (pid = fork()) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to run %s:", argv[0]);
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		if (!vflag)
			freopen("/dev/null", "w", stderr);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fd[1]);
	f = fdopen(fd[0], "r");
	if (out != NULL)
		*out = NULL;
	while ((n = getline(&line, &cap, f)) > 0)
		if (out != NULL && *out == NULL) {
			line[strcspn(line, "\n")] = '\0';
			*out = phn_strdup(line);
		}
	free(line);
	fclose(f);
	while (waitpid(pid, &st, 0) == -1)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ------------------------------------------------------ the tables -- */

struct step {
	char	 job[8], id[8];
	int	 claimed;	/* attempts claimed so far */
};

struct tcase {
	char	*batch;
	long long conc;
	struct step s[MAXSTEPS];
	int	 n;
};

static const char *const statuses[] = { "failed", "needs_attention",
    "canceled", "codex_exit", "timeout", "model_error", "invalid_report",
    "orphaned" };

static struct json_object *
retry_policy(void)
{
	struct json_object *r = json_object_new_object(), *l, *b;
	unsigned i;

	json_object_object_add(r, "max_attempts",
	    json_object_new_int(1 + (int)rnd(3)));
	if (chance(60)) {
		l = json_object_new_array();
		for (i = 0; i < sizeof(statuses) / sizeof(*statuses); i++)
			if (chance(35))
				json_object_array_add(l,
				    json_object_new_string(statuses[i]));
		json_object_object_add(r, "retry_on_statuses", l);
	}
	/* Backoffs of 0 or far beyond the test: a verdict never flips
	 * between phn-score's clock and phn-claim's. */
	switch (rnd(4)) {
	case 0:
		json_object_object_add(r, "backoff_seconds",
		    json_object_new_int(5000));
		break;
	case 1:
		b = json_object_new_object();
		json_object_object_add(b, "base", json_object_new_int(4000));
		json_object_object_add(b, "factor", json_object_new_int(2));
		json_object_object_add(b, "jitter",
		    json_object_new_double(0.5));
		json_object_object_add(r, "backoff_seconds", b);
		break;
	default:
		json_object_object_add(r, "backoff_seconds",
		    json_object_new_int(0));
	}
	if (chance(40))
		json_object_object_add(r, "mode",
		    json_object_new_string("resume_last_attempt"));
	return r;
}

/* An earlier step than k, as a reference from the job of step k. */
static char *
earlier(struct tcase *c, int k)
{
	int j = (int)rnd((unsigned)k);

	return strcmp(c->s[j].job, c->s[k].job) == 0 ?
	    phn_strdup(c->s[j].id) :
	    phn_asprintf("%s/%s", c->s[j].job, c->s[j].id);
}

static struct json_object *
step_def(struct tcase *c, int k)
{
	static const char *const sel[] = { "latest_successful", "latest",
	    "run_id" };
	struct json_object *o = json_object_new_object(), *d, *rf;
	int i, nd;
	char *r;
	const char *sl;

	json_object_object_add(o, "step_id", json_object_new_string(c->s[k].id));
	json_object_object_add(o, "prompt", json_object_new_string("p"));
	if (k > 0 && chance(50)) {
		d = json_object_new_array();
		for (i = 0, nd = 1 + (int)rnd(2); i < nd; i++) {
			r = earlier(c, k);
			json_object_array_add(d, json_object_new_string(r));
			free(r);
		}
		json_object_object_add(o, "depends_on", d);
	}
	if (k > 0 && chance(35)) {
		rf = json_object_new_object();
		r = earlier(c, k);
		json_object_object_add(rf, "step_id", json_object_new_string(r));
		free(r);
		sl = sel[rnd(3)];
		if (strcmp(sl, "latest_successful") != 0 || chance(50))
			json_object_object_add(rf, "selector",
			    json_object_new_string(sl));
		if (strcmp(sl, "run_id") == 0)
			json_object_object_add(rf, "run_id",
			    json_object_new_string("run_nope"));
		json_object_object_add(o, "resume_from", rf);
	}
	if (chance(40))
		json_object_object_add(o, "retry_policy", retry_policy());
	return o;
}

/* -D: the schedule index forgets every step's dependents. */
static void
drop_rdeps(struct tcase *c)
{
	struct json_object *jd;
	char msg[512], *f;
	int k;

	if (phn_sched_index(&P, c->batch, msg, sizeof(msg)) == -1)
		fail("%s", msg);
	for (k = 0; k < c->n; k++) {
		if (k > 0 && strcmp(c->s[k].job, c->s[k - 1].job) == 0)
			continue;
		if ((jd = phn_sched_job(&P, c->batch, c->s[k].job)) == NULL)
			fail("no schedule index for %s", c->s[k].job);
		json_object_object_foreach(phn_json_get(jd, "steps"), id, sd) {
			(void)id;
			json_object_object_add(sd, "rdeps",
			    json_object_new_array());
		}
		f = phn_asprintf("%s/%s/_sched/jobs/%s.json", P.runs, c->batch,
		    c->s[k].job);
		if (phn_json_write(f, jd, 0) == -1)
			phn_die(PHN_EXIT_TEMP, "unable to write %s:", f);
		free(f);
		json_object_put(jd);
	}
}

/* Write and ingest a random table; fills c. */
static void
make_batch(struct tcase *c, long n)
{
	struct json_object *t = json_object_new_object(), *jobs, *job, *steps;
	char *goal = phn_strdup("w"), *g, *f, *out = NULL;
	int nj = 1 + (int)rnd(3), j, k, ns, i;

	for (i = 0; i < 160; i++) {
		g = phn_asprintf("%s w", goal);
		free(goal);
		goal = g;
	}
	json_object_object_add(t, "batch_goal_summary",
	    json_object_new_string(goal));
	free(goal);
	c->conc = chance(25) ? 1 + (int)rnd(3) : 1000;
	json_object_object_add(t, "concurrency", json_object_new_int64(c->conc));
	if (chance(60))
		json_object_object_add(t, "retries", retry_policy());
	jobs = json_object_new_array();
	json_object_object_add(t, "jobs", jobs);
	c->n = 0;
	for (j = 0; j < nj; j++) {
		job = json_object_new_object();
		json_object_array_add(jobs, job);
		snprintf(c->s[c->n].job, sizeof(c->s[c->n].job), "j%d", j + 1);
		json_object_object_add(job, "job_id",
		    json_object_new_string(c->s[c->n].job));
		json_object_object_add(job, "working_directory",
		    json_object_new_string("w"));
		steps = json_object_new_array();
		json_object_object_add(job, "steps", steps);
		for (k = 0, ns = 1 + (int)rnd(4); k < ns && c->n < MAXSTEPS;
		    k++) {
			struct step *s = &c->s[c->n];
			snprintf(s->job, sizeof(s->job), "j%d", j + 1);
			snprintf(s->id, sizeof(s->id), "s%d", k + 1);
			s->claimed = 0;
			json_object_array_add(steps, step_def(c, c->n));
			c->n++;
		}
	}
	f = phn_asprintf("%s/lt-%ld.json", P.root, n);
	if (phn_json_write(f, t, 0) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to write %s:", f);
	if (vflag)
		fprintf(stderr, "%s\n", json_object_to_json_string(t));
	{
		char *argv[] = { "phn-ingest", "--root", P.root, f, NULL };
		if (run(argv, &out) != 0 || out == NULL)
			fail("phn-ingest %s failed", f);
	}
	c->batch = out;
	free(f);
	json_object_put(t);
	if (Dflag)
		drop_rdeps(c);
}

/* ----------------------------------------------------- the checks -- */

/* The steps phn-score calls ready now, as "JOB/STEP" in ready[]. */
static int
score_ready(struct tcase *c, char ready[][20], int *nactive)
{
	struct json_object *steps = json_object_new_array(), *sb, *r;
	char msg[512];
	size_t i, n;
	int k = 0;

	sb = phn_score_batch(&P, CFG.doc, c->batch, phn_now(), steps, msg,
	    sizeof(msg));
	if (sb == NULL)
		fail("phn_score_batch: %s", msg);
	*nactive = 0;
	n = json_object_array_length(steps);
	for (i = 0; i < n; i++) {
		r = json_object_array_get_idx(steps, i);
		if (strcmp(phn_jstr(r, "status"), "running") == 0)
			(*nactive)++;
		if (strcmp(phn_jstr(r, "status"), "ready") != 0 ||
		    phn_json_get(r, "not_before") != NULL)
			continue;
		snprintf(ready[k++], 20, "%s/%s", phn_jstr(r, "job_id"),
		    phn_jstr(r, "step_id"));
	}
	json_object_put(sb);
	json_object_put(steps);
	return k;
}

/* Claim everything phn-claim will claim; the attempt dirs in dirs[]. */
static int
claim_all(struct tcase *c, char **dirs)
{
	struct phn_claim_opts o;
	const char *b[1] = { c->batch };
	char *buf = NULL, *line, *save = NULL;
	size_t len = 0;
	int n = 0;

	memset(&o, 0, sizeof(o));
	o.batches = b;
	o.nbatches = 1;
	o.runner = "r1";
	if ((o.out = open_memstream(&buf, &len)) == NULL)
		phn_die(PHN_EXIT_TEMP, "open_memstream:");
	phn_claim_run(&P, &CFG, &o);
	fclose(o.out);
	for (line = strtok_r(buf, "\n", &save); line && n < MAXSTEPS;
	    line = strtok_r(NULL, "\n", &save))
		dirs[n++] = phn_strdup(line);
	free(buf);
	return n;
}

/* "JOB/STEP" of an attempt directory .../B/J/steps/S/attempts/A. */
static void
dir_step(const char *dir, char out[20])
{
	struct phn_attempt a;

	if (phn_attempt_parse(&P, dir, &a) == -1)
		fail("claimed %s: not an attempt", dir);
	snprintf(out, 20, "%s/%s", a.job, a.step);
	phn_attempt_free(&a);
}

static int
in(char set[][20], int n, const char *s)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(set[i], s) == 0)
			return 1;
	return 0;
}

/* meta.json's invocation, and what phn-spawn ran for it. */
static void
check_invocation(const char *dir, int spawn)
{
	struct json_object *m;
	const char *inv, *tid;
	char *f = phn_path_join(dir, "meta.json"), msg[256], *cmd = NULL, *want;
	size_t len;

	if ((m = phn_json_load(f, msg, sizeof(msg))) == NULL)
		fail("%s: %s", f, msg);
	free(f);
	inv = phn_jstr(m, "invocation");
	tid = phn_jstr(m, "codex_thread_id");
	if (inv == NULL || (strcmp(inv, "exec") && strcmp(inv, "resume")))
		fail("%s: meta.json invocation %s", dir, inv ? inv : "missing");
	if (strcmp(inv, "resume") == 0 && phn_jstr(m, "resume_source") == NULL)
		fail("%s: a resume without a source", dir);
	if (spawn) {
		char *argv[] = { "phn-spawn", "--root", P.root, (char *)dir,
		    NULL };
		run(argv, NULL);
		nspawned++;
		f = phn_path_join(dir, "codex.command.txt");
		if (phn_read_file(f, &cmd, &len, 1 << 20) == -1) {
			/* A source without a thread: refused, never guessed. */
			if (strcmp(inv, "resume") == 0 && tid == NULL) {
				free(f);
				json_object_put(m);
				return;
			}
			fail("%s: phn-spawn ran no command", dir);
		}
		free(f);
		if (strcmp(inv, "resume") == 0) {
			want = phn_asprintf(" exec resume ");
			if (tid == NULL || strstr(cmd, want) == NULL ||
			    strstr(cmd, tid) == NULL)
				fail("%s: meta.json says resume %s, phn-spawn "
				    "ran: %s", dir, tid ? tid : "(no thread)", cmd);
			free(want);
		} else if (strstr(cmd, " resume ") != NULL)
			fail("%s: meta.json says exec, phn-spawn ran: %s", dir,
			    cmd);
		free(cmd);
	}
	json_object_put(m);
}

/* End an attempt as one of the outcomes that matter to the policy. */
static void
end_random(const char *dir)
{
	static const char *const st[][2] = {
		{ "succeeded", NULL }, { "succeeded", NULL },
		{ "succeeded", NULL }, { "failed", "codex_exit" },
		{ "failed", "timeout" }, { "failed", "model_error" },
		{ "needs_attention", "invalid_report" },
		{ "canceled", "canceled" }, { "failed", "orphaned" },
		{ "failed", "claim_expired" },
	};
	/* An operator may have ended it first (mark-failed, close-batch). */
	struct t_end e = { .ago = -1, .quiet = 1 };
	char thread[64];
	unsigned k = rnd(sizeof(st) / sizeof(*st));

	e.status = st[k][0];
	e.kind = st[k][1];
	e.fault = e.kind && (strcmp(e.kind, "orphaned") == 0 ||
	    strcmp(e.kind, "claim_expired") == 0);
	if (chance(60)) {
		snprintf(thread, sizeof(thread), "0199%04x-0000-7000-8000-%012x",
		    rnd(0xffff), rnd(0xfffffff));
		e.thread = thread;
	}
	e.home = chance(75);
	if (t_finish(&P, dir, &e) != 0)
		fail("%s: could not end it", dir);
}

/* Now and then an operator acts on a random step, or closes the batch. */
static void
operate(struct tcase *c)
{
	struct step *s = &c->s[rnd((unsigned)c->n)];
	char *argv[] = { NULL, "--root", P.root, c->batch, s->job, s->id,
	    NULL };

	if (chance(8)) {
		argv[0] = "phn-force-retry";
		run(argv, NULL);
	} else if (chance(5)) {
		argv[0] = "phn-mark-failed";
		run(argv, NULL);
	} else if (chance(2)) {
		argv[0] = "phn-close-batch";
		argv[4] = NULL;
		run(argv, NULL);
	}
}

static void
one_case(long n)
{
	struct tcase c;
	char ready[MAXSTEPS][20], got[MAXSTEPS][20], *dirs[MAXSTEPS];
	char *active[MAXSTEPS * 4];
	int nr, nc, na = 0, nrun, round, i, k, left;

	make_batch(&c, n);
	for (round = 0; round < 12; round++) {
		nr = score_ready(&c, ready, &nrun);
		nc = claim_all(&c, dirs);
		for (i = 0; i < nc; i++) {
			dir_step(dirs[i], got[i]);
			if (!in(ready, nr, got[i]))
				fail("round %d: phn-claim claimed %s, which "
				    "phn-score does not call ready", round,
				    got[i]);
		}
		/*
		 * A step ready before the claims but not claimed must have
		 * stopped being ready through them (its resume source got a
		 * new attempt), or the batch be full.
		 */
		left = c.conc - nrun;
		if (nc < nr && nc < left) {
			char after[MAXSTEPS][20];
			int na2, nrun2;
			na2 = score_ready(&c, after, &nrun2);
			for (i = 0; i < nr; i++)
				if (!in(got, nc, ready[i]) &&
				    in(after, na2, ready[i]))
					fail("round %d: phn-score calls %s ready, "
					    "phn-claim did not claim it (%d of "
					    "%d claimed, concurrency %lld, %d "
					    "running)", round, ready[i], nc, nr,
					    c.conc, nrun);
		}
		if (nc > left && left >= 0)
			fail("round %d: %d claimed beyond concurrency %lld with "
			    "%d running", round, nc, c.conc, nrun);
		for (i = 0; i < nc; i++) {
			int sp = chance((unsigned)spawn_pct);
			check_invocation(dirs[i], sp);
			if (sp)
				free(dirs[i]);	/* phn-spawn ended it */
			else
				active[na++] = dirs[i];
		}
		if (na == 0 && nc == 0)
			break;
		/* End some of the active attempts. */
		for (i = 0, k = 0; i < na; i++) {
			if (chance(70)) {
				end_random(active[i]);
				free(active[i]);
			} else
				active[k++] = active[i];
		}
		na = k;
		operate(&c);
	}
	for (i = 0; i < na; i++)
		free(active[i]);
	free(c.batch);
}

int
main(int argc, char *argv[])
{
	struct phn_errs e = { 0 };
	long cases = 100, i;
	unsigned long long seed = 1;
	int ch;

	PROG = "t-policy-diff";
	while ((ch = getopt(argc, argv, "Dn:s:S:v")) != -1)
		switch (ch) {
		case 'n': cases = atol(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 'S': spawn_pct = atoi(optarg); break;
		case 'D': Dflag = 1; break;
		case 'v': vflag = 1; break;
		default:
			fprintf(stderr, "usage: t-policy-diff [-Dv] [-n cases] "
			    "[-s seed] [-S spawn_percent] root\n");
			return PHN_EXIT_PERM;
		}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: t-policy-diff [-Dv] [-n cases] [-s seed] "
		    "[-S spawn_percent] root\n");
		return PHN_EXIT_PERM;
	}
	if (phn_paths_init(&P, argv[optind], NULL, NULL) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to get the current directory:");
	if (phn_config_read(&P, PHN_CONFIG_SNAPSHOT, &CFG, &e) == -1)
		phn_errs_die(&e);
	for (i = 0; i < cases; i++) {
		case_seed = seed + (unsigned long long)i;
		rng = case_seed * 0x9E3779B97F4A7C15ULL + 1;
		one_case(i);
	}
	printf("%ld cases agree (seeds %llu..%llu), %ld attempts spawned\n",
	    cases, seed, seed + (unsigned long long)cases - 1, nspawned);
	phn_config_free(&CFG);
	phn_paths_free(&P);
	return 0;
}
