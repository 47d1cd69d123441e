/*
 * time.c - UTC ISO-8601 timestamps with microseconds and 'Z', and the
 * monotonic clock for timeouts and intervals.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "phn.h"

double
phn_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Seconds on the monotonic clock: for deadlines, immune to clock steps. */
double
phn_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void
phn_iso(double t, char out[PHN_ISO_LEN])
{
	time_t s = (time_t)t;
	long us = (long)((t - (double)s) * 1e6 + 0.5);
	struct tm tm;

	if (us >= 1000000) {
		s++;
		us -= 1000000;
	}
	gmtime_r(&s, &tm);
	snprintf(out, PHN_ISO_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, us);
}

void
phn_stamp(double t, char out[PHN_STAMP_LEN])
{
	time_t s = (time_t)t;
	struct tm tm;

	gmtime_r(&s, &tm);
	strftime(out, PHN_STAMP_LEN, "%Y%m%dT%H%M%SZ", &tm);
}

/*
 * Parse YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) into epoch seconds.
 * Accepts both the form with microseconds and the one without.
 */
int
phn_iso_parse(const char *s, double *out)
{
	struct tm tm;
	const char *p;
	double frac = 0, scale = 0.1;
	int off = 0;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || (p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p)) {
			frac += (*p++ - '0') * scale;
			scale /= 10;
		}
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-') {
		int h, m;
		if (sscanf(p + 1, "%2d:%2d", &h, &m) != 2)
			return -1;
		off = (h * 60 + m) * 60 * (*p == '-' ? -1 : 1);
		p += 6;
	} else
		return -1;
	if (*p != '\0')
		return -1;
	*out = (double)timegm(&tm) - off + frac;
	return 0;
}
