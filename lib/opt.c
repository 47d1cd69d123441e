/*
 * opt.c - the options every program shares, taken in one place, in the
 * spirit of git's parse-options.
 *
 * A program's getopt_long table lists its own options and the blocks of
 * shared ones it takes (PHN_OPT_COMMON always; PHN_OPT_JSON,
 * PHN_OPT_BATCH, PHN_OPT_ATTEMPT as it needs); its switch handles its
 * own letters and hands every other one to phn_opt_common(), which fills
 * struct phn_opts.  The letters are those of phn(7), CONVENTIONS: a
 * letter means one thing in every program, so a shared one never needs
 * a program's own meaning.
 *
 * --help prints the usage on standard output and exits 0; a usage error
 * prints it on standard error and exits 100.  These two exits belong to
 * the command line, like phn_die(): no library function that does work
 * exits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "phn.h"

/* Take one of the shared options; 0 if ch is none of them. */
int
phn_opt_common(int ch, const char *arg, struct phn_opts *o)
{
	switch (ch) {
	case 'h': phn_usage(o, PHN_EXIT_OK);
	case 'r': o->root = arg; break;
	case PHN_OPT_RUNS: o->runs = arg; break;
	case PHN_OPT_RUNNERS: o->runners = arg; break;
	case 'J': o->json = 1; break;
	case 'b': o->batch = arg; break;
	case 'a': o->adir = arg; break;
	case PHN_OPT_JOB: o->job = arg; break;
	case 'R': o->run = arg; break;
	case 's': o->step = arg; break;
	default: return 0;
	}
	return 1;
}

/* Was an attempt named by option (its directory or any of its ids)? */
int
phn_opts_attempt(const struct phn_opts *o)
{
	return o->adir != NULL || o->batch != NULL || o->job != NULL ||
	    o->step != NULL || o->run != NULL;
}

/* The store's directories: the options, else $PHN_ROOT, else ".". */
void
phn_opts_paths(const struct phn_opts *o, struct phn_paths *p)
{
	phn_paths_init(p, o->root, o->runs, o->runners);
}

/* An option's value in seconds, in [min, max], or exit 100. */
double
phn_opt_seconds(const char *opt, const char *s, double min, double max)
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
