/*
 * err.c - diagnostics, checked allocation, and the error convention.
 *
 * The library returns errors; only cmd/ decides exit codes.
 *
 * - Library code never exits, except out of memory: the allocation
 *   wrappers below (phn_malloc, phn_realloc, phn_strdup, phn_asprintf)
 *   and a failed poll in supervise.c die with 111.  phn_die,
 *   phn_errs_die and phn_parse_num are for cmd/ only, and for opt.c,
 *   which is the command line of every program (its usage errors exit
 *   100, --help 0) and cmd/override.c.
 * - A failure returns -1 (NULL for a pointer) and says why in one of
 *   three ways, whichever the caller needs:
 *     errno        one system call failed (atomic.c, lock.c, proc.c); the
 *                  caller names the object: "unable to write %s:".
 *     msg, msglen  one message in the caller's buffer, for a function
 *                  whose failures are all of one class, said at the
 *                  function (phn_json_load: the file cannot be used).
 *     phn_errs     every problem at once (the config, a Launch Table, a
 *                  schema), or a failure the caller must classify: the
 *                  messages in order, and temp set when a system call
 *                  failed (retrying may help) rather than the input
 *                  being wrong.  phn_errs_fail() adds one, sets temp
 *                  and returns -1.
 * - cmd/ maps them to the exit statuses of phn.h: a system call or temp
 *   to PHN_EXIT_TEMP (111), bad input to PHN_EXIT_PERM (100).
 *   phn_errs_die() prints the messages and exits with that choice.
 * - Messages start lowercase, name the object and carry no PROG (the
 *   command adds it).
 *
 * Fatal errors are "PROG: message[: strerror]" on stderr; a format that
 * ends in ':' gets the errno text appended, as sbase's eprintf does.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phn.h"

const char *PROG = "phn";

static void
vwarn(const char *fmt, va_list ap)
{
	int saved = errno;
	size_t n = strlen(fmt);

	fprintf(stderr, "%s: ", PROG);
	vfprintf(stderr, fmt, ap);
	if (n > 0 && fmt[n - 1] == ':')
		fprintf(stderr, " %s", strerror(saved));
	fputc('\n', stderr);
}

void
phn_die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	exit(code);
}

void
phn_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
}

void *
phn_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		phn_die(PHN_EXIT_TEMP, "out of memory");
	return p;
}

void *
phn_realloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		phn_die(PHN_EXIT_TEMP, "out of memory");
	return p;
}

char *
phn_strdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		phn_die(PHN_EXIT_TEMP, "out of memory");
	return p;
}

char *
phn_vasprintf(const char *fmt, va_list ap)
{
	char *s;

	if (vasprintf(&s, fmt, ap) < 0)
		phn_die(PHN_EXIT_TEMP, "out of memory");
	return s;
}

char *
phn_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = phn_vasprintf(fmt, ap);
	va_end(ap);
	return s;
}

/* Write errors on stdout (a full disk, a closed pipe) must not go unseen. */
void
phn_stdout_close(void)
{
	if (fflush(stdout) == EOF || ferror(stdout) || fclose(stdout) == EOF)
		phn_die(PHN_EXIT_TEMP, "unable to write standard output:");
}

/* Parse an option's integer value in [min, max] or die with usage status. */
long long
phn_parse_num(const char *opt, const char *s, long long min, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		phn_die(PHN_EXIT_PERM, "%s: invalid value '%s' (want %lld..%lld)",
		    opt, s, min, max);
	return v;
}

void
phn_errs_add(struct phn_errs *e, const char *fmt, ...)
{
	va_list ap;

	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 16;
		e->v = phn_realloc(e->v, e->cap * sizeof(*e->v));
	}
	va_start(ap, fmt);
	e->v[e->n++] = phn_vasprintf(fmt, ap);
	va_end(ap);
}

/*
 * Add a message (a format ending in ':' gets the errno text) and mark
 * the failure temporary when temp is set.  Returns -1.
 */
int
phn_errs_fail(struct phn_errs *e, int temp, const char *fmt, ...)
{
	int saved = errno;
	size_t n = strlen(fmt);
	va_list ap;
	char *m;

	va_start(ap, fmt);
	m = phn_vasprintf(fmt, ap);
	va_end(ap);
	if (n > 0 && fmt[n - 1] == ':')
		phn_errs_add(e, "%s %s", m, strerror(saved));
	else
		phn_errs_add(e, "%s", m);
	free(m);
	if (temp)
		e->temp = 1;
	errno = saved;
	return -1;
}

/* For cmd/: each message on stderr, then exit 111 if temp, else 100. */
void
phn_errs_die(struct phn_errs *e)
{
	int code = e->temp ? PHN_EXIT_TEMP : PHN_EXIT_PERM;
	size_t i;

	for (i = 0; i < e->n; i++)
		fprintf(stderr, "%s: %s\n", PROG, e->v[i]);
	if (e->n == 0)
		fprintf(stderr, "%s: failed\n", PROG);
	phn_errs_free(e);
	exit(code);
}

void
phn_errs_free(struct phn_errs *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = e->cap = 0;
	e->temp = 0;
}
