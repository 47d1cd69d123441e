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
	int v[6], i, off = 0;
	static const int at[6] = { 0, 5, 8, 11, 14, 17 }, len[6] = { 4, 2, 2,
	    2, 2, 2 };
	static const char sep[6] = { '-', '-', 'T', ':', ':', 0 };
	const char *p;
	double frac = 0, scale = 0.1;
	long long y, era, yoe, doy, days;
	int m;

	/* YYYY-MM-DDTHH:MM:SS, by hand: strptime and timegm cost more than
	 * the rest of a scoreboard's reading of a state.json. */
	if (s == NULL || strlen(s) < 19)
		return -1;
	for (i = 0; i < 6; i++) {
		const char *q = s + at[i];
		int k;
		for (v[i] = 0, k = 0; k < len[i]; k++) {
			if (!isdigit((unsigned char)q[k]))
				return -1;
			v[i] = v[i] * 10 + (q[k] - '0');
		}
		if (sep[i] && q[len[i]] != sep[i] && !(i == 2 && q[2] == 't'))
			return -1;
	}
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
	    v[4] > 59 || v[5] > 60)
		return -1;
	p = s + 19;
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
	else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
	    isdigit((unsigned char)p[2]) && p[3] == ':' &&
	    isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
		off = (((p[1] - '0') * 10 + p[2] - '0') * 60 +
		    (p[4] - '0') * 10 + p[5] - '0') * 60 * (*p == '-' ? -1 : 1);
		p += 6;
	} else
		return -1;
	if (*p != '\0')
		return -1;
	/* days since the epoch of a proleptic Gregorian date (H. Hinnant) */
	m = v[1];
	y = v[0] - (m <= 2);
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + v[2] - 1;
	days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
	*out = (double)(days * 86400 + v[3] * 3600 + v[4] * 60 + v[5]) - off +
	    frac;
	return 0;
}
