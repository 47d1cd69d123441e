/*
 * opt.c - the command line of every program, parsed in one place, in the
 * spirit of git's parse-options.
 *
 * A program lists its own options in a table of struct phn_option (the
 * letter, the long name, where the value goes and what it must be) and
 * calls phn_opts_parse(), which adds the options every program shares
 * (-h/--help, -r/--root, --runs-root, --runners-root) and the groups the
 * program asks for in phn_opts.take (-J/--json; -b/--batch; the options
 * that name one attempt), then runs getopt_long(3) over argv.  Values
 * are checked as they are taken: a bad one is a usage error.
 *
 * The letters are those of phn(7), Conventions: a letter means one thing
 * in every program, so the shared ones never clash with a program's own.
 *
 * --help prints the usage on standard output and exits 0; a usage error
 * prints it on standard error and exits 100.  These exits belong to the
 * command line, as phn_die() does: no library function that does work
 * exits.
 */
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phn.h"

/* getopt_long values of the shared options that have no letter */
enum { O_RUNS = 1000, O_RUNNERS, O_JOB, O_TABLE = 2000 };

static const struct option common[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "root", required_argument, NULL, 'r' },
	{ "runners-root", required_argument, NULL, O_RUNNERS },
	{ "runs-root", required_argument, NULL, O_RUNS },
	{ NULL, 0, NULL, 0 }
}, json[] = {
	{ "json", no_argument, NULL, 'J' },
	{ NULL, 0, NULL, 0 }
}, batch[] = {
	{ "batch", required_argument, NULL, 'b' },
	{ "batch-id", required_argument, NULL, 'b' },
	{ NULL, 0, NULL, 0 }
}, attempt[] = {
	{ "attempt-dir", required_argument, NULL, 'a' },
	{ "job", required_argument, NULL, O_JOB },
	{ "job-id", required_argument, NULL, O_JOB },
	{ "run-id", required_argument, NULL, 'R' },
	{ "step", required_argument, NULL, 's' },
	{ "step-id", required_argument, NULL, 's' },
	{ NULL, 0, NULL, 0 }
};

/* Add letter c (none: 0) to the getopt string so, once. */
static void
letter(char *so, int c, int has_arg)
{
	size_t n = strlen(so);

	if (c <= 0 || c >= 128 || strchr(so, c) != NULL)
		return;
	so[n++] = (char)c;
	if (has_arg)
		so[n++] = ':';
	so[n] = '\0';
}

/* Append a shared group to the getopt tables. */
static void
add(struct option *lo, size_t *n, char *so, const struct option *g)
{
	for (; g->name != NULL; g++) {
		lo[(*n)++] = *g;
		letter(so, g->val, g->has_arg);
	}
}

/* A shared option; 0 if ch is none of them. */
static int
shared(int ch, const char *arg, struct phn_opts *o)
{
	switch (ch) {
	case 'h': phn_usage(o, PHN_EXIT_OK);
	case 'r': o->root = arg; break;
	case O_RUNS: o->runs = arg; break;
	case O_RUNNERS: o->runners = arg; break;
	case 'J': o->json = 1; break;
	case 'b': o->batch = arg; break;
	case 'a': o->adir = arg; break;
	case O_JOB: o->job = arg; break;
	case 'R': o->run = arg; break;
	case 's': o->step = arg; break;
	default: return 0;
	}
	return 1;
}

/* An option's value in seconds, in [min, max], or exit 100. */
static double
seconds(const char *opt, const char *s, double min, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !(v >= min &&
	    v <= max))
		phn_die(PHN_EXIT_PERM, "%s: invalid value '%s' (want %g..%g "
		    "seconds)", opt, s, min, max);
	return v;
}

/* Take the value of one of the program's options. */
static void
take(const struct phn_option *t, const char *arg)
{
	char *name = phn_asprintf("--%s", t->name);
	long long hi;

	switch (t->type) {
	case PHN_OPT_FLAG:
		*(int *)t->val = 1;
		break;
	case PHN_OPT_STR:
		*(const char **)t->val = arg;
		break;
	case PHN_OPT_ID:
		if (!phn_id_valid(arg, strlen(arg)))
			phn_die(PHN_EXIT_PERM, "%s: '%s': not a valid id (1-128 "
			    "characters of [A-Za-z0-9._-], starting with a "
			    "letter or digit)", name, arg);
		*(const char **)t->val = arg;
		break;
	case PHN_OPT_NUM:
		hi = t->max >= (double)LLONG_MAX ? LLONG_MAX : (long long)t->max;
		*(long long *)t->val = phn_parse_num(name, arg,
		    (long long)t->min, hi);
		break;
	case PHN_OPT_SECS:
		*(double *)t->val = seconds(name, arg, t->min, t->max);
		break;
	case PHN_OPT_FN:
		t->fn(t->val, arg);
		break;
	}
	free(name);
}

/*
 * Parse the options of *argv into o and the program's table t (ended by
 * PHN_END); *argc and *argv are left with the operands, o->nargs of them
 * unless that is PHN_ARGS_ANY.
 */
void
phn_opts_parse(struct phn_opts *o, int *argc, char **argv[],
    const struct phn_option *t)
{
	struct option *lo;
	char *so;
	size_t nt, n = 0, i;
	int ch;

	for (nt = 0; t[nt].type != 0; nt++)
		;
	lo = phn_malloc((nt + 16) * sizeof(*lo));
	so = phn_malloc(2 * nt + 32);
	so[0] = '\0';
	for (i = 0; i < nt; i++) {
		lo[n].name = t[i].name;
		lo[n].has_arg = t[i].type == PHN_OPT_FLAG ? no_argument :
		    required_argument;
		lo[n].flag = NULL;
		lo[n++].val = O_TABLE + (int)i;
		letter(so, t[i].letter, t[i].type != PHN_OPT_FLAG);
	}
	add(lo, &n, so, common);
	if (o->take & PHN_TAKE_JSON)
		add(lo, &n, so, json);
	if (o->take & (PHN_TAKE_BATCH | PHN_TAKE_ATTEMPT))
		add(lo, &n, so, batch);
	if (o->take & PHN_TAKE_ATTEMPT)
		add(lo, &n, so, attempt);
	memset(&lo[n], 0, sizeof(*lo));
	(*argv)[0] = (char *)PROG;	/* getopt's messages start with it */
	while ((ch = getopt_long(*argc, *argv, so, lo, NULL)) != -1) {
		if (ch >= O_TABLE) {
			take(&t[ch - O_TABLE], optarg);
			continue;
		}
		for (i = 0; i < nt && t[i].letter != ch; i++)
			;
		if (i < nt)
			take(&t[i], optarg);
		else if (!shared(ch, optarg, o))
			phn_usage(o, PHN_EXIT_PERM);
	}
	free(lo);
	free(so);
	*argc -= optind;
	*argv += optind;
	if (o->nargs != PHN_ARGS_ANY && *argc != o->nargs)
		phn_usage(o, PHN_EXIT_PERM);
}

/* Was an attempt named by option (its directory or any of its ids)? */
int
phn_opts_attempt(const struct phn_opts *o)
{
	return o->adir != NULL || o->batch != NULL || o->job != NULL ||
	    o->step != NULL || o->run != NULL;
}

/*
 * The store's directories: the options, else $PHN_ROOT, else ".".  The
 * runs root must exist (a directory) unless the program may create the
 * store (o->mkstore: phn-init, and phn-ingest and phn-api, which
 * initialise a missing one): run elsewhere, a program says so and exits
 * 100 instead of making a store of its own there.  Writes are then
 * confined to the runs root (phn_store_confine).
 */
void
phn_opts_paths(const struct phn_opts *o, struct phn_paths *p)
{
	struct stat st;
	int r = 0;

	if (phn_paths_init(p, o->root, o->runs, o->runners) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to get the current directory:");
	if (!o->mkstore && (r = stat(p->runs, &st)) == -1 && errno != ENOENT &&
	    errno != ENOTDIR)
		phn_die(PHN_EXIT_TEMP, "unable to read %s:", p->runs);
	if (!o->mkstore && (r == -1 || !S_ISDIR(st.st_mode)))
		phn_die(PHN_EXIT_PERM, "no runs store at %s (run phn init, or "
		    "give --root)", p->runs);
	phn_store_confine(p->runs);
}

/* The usage: on stdout for --help (code 0), else on stderr. */
void
phn_usage(const struct phn_opts *o, int code)
{
	if (code == PHN_EXIT_OK) {
		fputs(o->usage, stdout);
		phn_stdout_close();
	} else
		fputs(o->usage, stderr);
	exit(code);
}
