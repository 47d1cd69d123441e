/*
 * phn-claim - decide which steps may run and claim them as new attempts.
 *
 * Output: one claimed attempt directory (absolute) per line, or NUL-
 * terminated with -0, written as each claim is made.  With --rescan:
 * one JSON object per batch whose ready index was rebuilt.
 *
 * Invariants (see lib/sched.c and lib/claim.c): a step is claimed by
 * exactly one claimer, across processes and hosts sharing the store,
 * because the runnable predicate is re-checked under the step's lock
 * after its ready entry was taken by rename(2); the batch's concurrency,
 * the runner's capacity and the workdir limits are counted under their
 * directories' locks; --follow sleeps on inotify and a bounded poll,
 * never spins, and exits when nothing is runnable, queued or running.
 */
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phn.h"
#include "claim.h"

static const char usage[] =
    "usage: phn-claim [-0] [-b batch ...] [-c concurrency] [-i runner-id] "
    "[-n count]\n"
    "                 [--memfree size] [--load max] [-r root]\n"
    "                 [--runs-root dir] [--runners-root dir]\n"
    "       phn-claim -f [-0] [-b batch ...] [-c concurrency] [-i runner-id]\n"
    "                 [-j jobs] [-n count] [--memfree size] [--load max]\n"
    "                 [-r root] [--runs-root dir] [--runners-root dir]\n"
    "       phn-claim --rescan [-b batch ...] [-r root] [--runs-root dir]\n"
    "                 [--runners-root dir]\n"
    "       phn-claim --runner-ids [-r root] [--runs-root dir]\n";

/* -b, --batch: one more batch to serve. */
static void
add_batch(void *v, const char *batch)
{
	struct phn_claim_opts *o = v;

	o->batches[o->nbatches++] = batch;
}

/* --memfree SIZE: 100M, 2G (powers of 1024). */
static void
set_memfree(void *v, const char *s)
{
	double *d = v;

	if ((*d = phn_size_parse(s)) <= 0)
		phn_die(PHN_EXIT_PERM, "--memfree: invalid size '%s' (want a "
		    "number > 0 with an optional K, M, G or T suffix: 100M, "
		    "2G)", s);
}

/* --load MAX: a 1-minute load average, > 0. */
static void
set_load(void *v, const char *s)
{
	double *d = v;
	char *end;

	*d = strtod(s, &end);
	if (end == s || *end != '\0' || !isfinite(*d) || *d <= 0)
		phn_die(PHN_EXIT_PERM, "--load: invalid value '%s' (want a "
		    "load average > 0, such as 4 or 1.5)", s);
}

/* runner_<hostname>, with characters ids may not hold replaced. */
static char *
default_runner(void)
{
	char *r = phn_asprintf("runner_%s", phn_hostname()), *s;

	for (s = r; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '.' || *s == '-'))
			*s = '_';
	if (strlen(r) > PHN_ID_MAX)
		r[PHN_ID_MAX] = '\0';
	return r;
}

/*
 * --runner-ids: the runners a tick runs, one per line: the comma list in
 * PARALLELHASSNES_RUNNER_IDS (trimmed), else the config's
 * runner_pool.runner_ids, else the default runner.  An invalid id is an
 * error naming where it came from.
 */
static int
runner_ids(const struct phn_config *cfg)
{
	const char *env = getenv("PARALLELHASSNES_RUNNER_IDS");
	struct json_object *v = phn_json_path_get(cfg->doc,
	    "defaults.runner_pool.runner_ids"), *x;
	char *buf, *tok, *save, *e, *d;
	size_t i, n = 0;

	if (env != NULL && *env) {
		buf = phn_strdup(env);
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL,
		    ",", &save)) {
			while (*tok == ' ' || *tok == '\t')
				tok++;
			for (e = tok + strlen(tok); e > tok && (e[-1] == ' ' ||
			    e[-1] == '\t'); e--)
				;
			*e = '\0';
			if (*tok == '\0')
				continue;
			if (!phn_id_valid(tok, strlen(tok)))
				phn_die(PHN_EXIT_PERM, "PARALLELHASSNES_RUNNER_IDS: "
				    "invalid runner id '%s'", tok);
			printf("%s\n", tok);
			n++;
		}
		free(buf);
		if (n > 0)
			return 0;
	}
	for (i = 0; json_object_is_type(v, json_type_array) &&
	    i < json_object_array_length(v); i++) {
		x = json_object_array_get_idx(v, i);
		if (!json_object_is_type(x, json_type_string) ||
		    !phn_id_valid(json_object_get_string(x),
		    strlen(json_object_get_string(x))))
			phn_die(PHN_EXIT_PERM, "%s: defaults.runner_pool."
			    "runner_ids[%zu]: not a valid runner id", cfg->path, i);
		printf("%s\n", json_object_get_string(x));
		n++;
	}
	if (n == 0) {
		printf("%s\n", d = default_runner());
		free(d);
	}
	return 0;
}

static int
rescan(const struct phn_paths *p, const struct phn_config *cfg,
    const char **bv, size_t nb)
{
	struct phn_sched s;
	struct json_object *sum;
	char **all = NULL, msg[1024];
	size_t n = nb, i;
	int rc = 0;

	phn_sched_init(&s, p, cfg);
	if (nb == 0) {
		if ((all = phn_batch_list(p, &n)) == NULL)
			phn_die(PHN_EXIT_TEMP, "unable to read %s:", p->runs);
		bv = (const char **)all;
	}
	for (i = 0; i < n; i++) {
		if (phn_sched_rescan(&s, bv[i], 0, &sum, msg, sizeof(msg)) ==
		    -1) {
			phn_warn("%s: %s", bv[i], msg);
			rc = PHN_EXIT_TEMP;
			continue;
		}
		phn_json_emit(stdout, sum);
		json_object_put(sum);
	}
	phn_dir_list_free(all, n);
	return rc;
}

int
main(int argc, char *argv[])
{
	struct phn_claim_opts o;
	const char *runner = NULL;
	int sflag = 0, iflag = 0, code;
	const struct phn_option options[] = {
		PHN_FLAG('0', "null", &o.nul),
		PHN_FN('b', "batch", add_batch, &o),
		PHN_FN('b', "batch-id", add_batch, &o),
		PHN_NUM('c', "concurrency", &o.concurrency, 1, 1000000000),
		PHN_FLAG('f', "follow", &o.follow),
		PHN_ID('i', "runner-id", &runner),
		PHN_NUM('j', "jobs", &o.jobs, 1, 1000000000),
		PHN_FN(0, "load", set_load, &o.maxload),
		PHN_FN(0, "memfree", set_memfree, &o.memfree),
		PHN_NUM('n', "count", &o.n, 0, (double)LLONG_MAX),
		PHN_FLAG(0, "rescan", &sflag),
		PHN_FLAG(0, "runner-ids", &iflag),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage };
	struct phn_paths P;
	struct phn_config C;
	struct phn_errs e = { 0 };
	char *dflt = NULL;
	size_t i;

	PROG = "phn-claim";
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);	/* a closed pipe is a write error */
	memset(&o, 0, sizeof(o));
	o.batches = phn_malloc((size_t)argc * sizeof(*o.batches));
	o.n = -1;	/* not given */
	phn_opts_parse(&opts, &argc, &argv, options);
	if ((o.jobs > 0 && !o.follow) || ((sflag || iflag) && (o.follow ||
	    o.n >= 0 || o.jobs || o.nul || o.memfree > 0 || o.maxload > 0)) ||
	    (iflag && (sflag || o.nbatches || runner || o.concurrency)))
		phn_usage(&opts, PHN_EXIT_PERM);
	if (o.n < 0)
		o.n = o.follow ? 0 : 1;
	phn_opts_paths(&opts, &P);
	if (phn_config_read(&P, PHN_CONFIG_SNAPSHOT, &C, &e) == -1)
		phn_errs_die(&e);
	for (i = 0; i < o.nbatches; i++)
		if (phn_sched_step_check(&P, o.batches[i], NULL, NULL, &e) == -1)
			phn_errs_die(&e);
	if (iflag)
		code = runner_ids(&C);
	else if (sflag)
		code = rescan(&P, &C, o.batches, o.nbatches);
	else {
		o.runner = runner ? runner : (dflt = default_runner());
		o.out = stdout;
		code = phn_claim_run(&P, &C, &o);
	}
	free(dflt);
	free(o.batches);
	phn_config_free(&C);
	phn_paths_free(&P);
	if (code != PHN_EXIT_TEMP)	/* else said already */
		phn_stdout_close();
	return code;
}
