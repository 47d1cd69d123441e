/*
 * err.c - diagnostics, checked allocation, and the exit-code convention.
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

void
phn_errs_free(struct phn_errs *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = e->cap = 0;
}
