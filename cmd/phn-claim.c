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
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phn.h"

static const char usage[] =
    "usage: phn-claim [-0f] [-b batch]... [-c concurrency] [-i runner-id] "
    "[-j jobs]\n"
    "                 [-n count] [-r root] [--runs-root dir] "
    "[--runners-root dir]\n"
    "       phn-claim --rescan [-b batch]... [-r root] [--runs-root dir]\n"
    "                 [--runners-root dir]\n";

enum { O_RESCAN = 2000 };	/* --rescan: long only */

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
	static const struct option lopts[] = {
		{ "concurrency", required_argument, NULL, 'c' },
		{ "count", required_argument, NULL, 'n' },
		{ "follow", no_argument, NULL, 'f' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "null", no_argument, NULL, '0' },
		{ "rescan", no_argument, NULL, O_RESCAN },
		{ "runner-id", required_argument, NULL, 'i' },
		PHN_OPT_BATCH,
		PHN_OPT_COMMON,
		{ NULL, 0, NULL, 0 }
	};
	struct phn_claim_opts o;
	struct phn_opts opts = { .usage = usage };
	struct phn_paths P;
	struct phn_config C;
	char *runner = NULL, msg[1024];
	int ch, sflag = 0, nset = 0, code;
	size_t i;

	PROG = "phn-claim";
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);	/* a closed pipe is a write error */
	memset(&o, 0, sizeof(o));
	o.batches = phn_malloc((size_t)argc * sizeof(*o.batches));
	while ((ch = getopt_long(argc, argv, "0b:c:fhi:j:n:r:", lopts,
	    NULL)) != -1) {
		switch (ch) {
		case '0': o.nul = 1; break;
		case 'b':
			if (!phn_id_valid(optarg, strlen(optarg)))
				phn_die(PHN_EXIT_PERM, "--batch: not a batch id: "
				    "'%s'", optarg);
			o.batches[o.nbatches++] = optarg;
			break;
		case 'c':
			o.concurrency = phn_parse_num("--concurrency", optarg, 1,
			    1000000000);
			break;
		case 'f': o.follow = 1; break;
		case 'i':
			if (!phn_id_valid(optarg, strlen(optarg)))
				phn_die(PHN_EXIT_PERM, "--runner-id: '%s': must be "
				    "1-128 characters of [A-Za-z0-9._-] starting "
				    "with a letter or digit", optarg);
			free(runner);
			runner = phn_strdup(optarg);
			break;
		case 'j':
			o.jobs = phn_parse_num("--jobs", optarg, 1, 1000000000);
			break;
		case 'n':
			o.n = phn_parse_num("--count", optarg, 0, LLONG_MAX);
			nset = 1;
			break;
		case O_RESCAN: sflag = 1; break;
		default:
			if (!phn_opt_common(ch, optarg, &opts))
				phn_usage(&opts, PHN_EXIT_PERM);
		}
	}
	argc -= optind;
	if (argc != 0 || (o.jobs > 0 && !o.follow) || (sflag && (o.follow ||
	    nset || o.jobs || o.nul)))
		phn_usage(&opts, PHN_EXIT_PERM);
	if (!nset && !o.follow)
		o.n = 1;
	phn_opts_paths(&opts, &P);
	phn_config_load(&P, 1, &C);
	for (i = 0; i < o.nbatches; i++)
		if ((code = phn_sched_step_check(&P, o.batches[i], NULL, NULL,
		    msg, sizeof(msg))) != 0)
			phn_die(code == -1 ? PHN_EXIT_PERM : PHN_EXIT_TEMP, "%s",
			    msg);
	if (sflag)
		code = rescan(&P, &C, o.batches, o.nbatches);
	else {
		o.runner = runner ? runner : (runner = default_runner());
		o.out = stdout;
		code = phn_claim_run(&P, &C, &o);
	}
	free(runner);
	free(o.batches);
	phn_config_free(&C);
	phn_paths_free(&P);
	if (code != PHN_EXIT_TEMP)	/* else said already */
		phn_stdout_close();
	return code;
}
