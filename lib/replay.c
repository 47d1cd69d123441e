/*
 * replay.c - replaying a recorded attempt as codex would run it
 * (phn-replay): the attempt's stderr, its codex.events.jsonl on standard
 * output with the recorded timing, its final message into the -o file,
 * and its exit status.
 *
 * Timing: codex.events.times holds, per event line, the seconds since
 * codex was started when phn-spawn received it; each line is written
 * at that time divided by the speed.  An attempt recorded before that
 * file existed has its events written at once, then the recorded run
 * time (ended_at - started_at) is waited out.
 *
 * The events may have been compressed by phn-gc (read through gzip -dc).
 * The end: an attempt that was stopped (failure kind timeout or
 * canceled) hangs after its last event until it is killed, so that the
 * new attempt is stopped the same way; one that died by a signal raises
 * that signal; any other exits with the recorded exit status.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "phn.h"

#define REPLAY_MAX	(1024L * 1024 * 1024)	/* events read at most */

/* Sleep until mono time t. */
static void
sleep_until(double t)
{
	struct timespec ts;
	double d;

	while ((d = t - phn_mono()) > 0) {
		ts.tv_sec = (time_t)d;
		ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
	}
}

static char *
file(const char *dir, const char *name, size_t *len, int *missing)
{
	char *f = phn_path_join(dir, name), *buf = NULL;

	*len = 0;
	*missing = 0;
	if (phn_read_file(f, &buf, len, REPLAY_MAX) == -1) {
		*missing = errno == ENOENT;
		buf = NULL;
	}
	free(f);
	return buf;
}

/* codex.events.jsonl.gz (phn-gc compressed it): its text, or NULL. */
static char *
gz_events(const char *dir, size_t *len)
{
	char *f = phn_path_join(dir, "codex.events.jsonl.gz"), b[65536];
	struct phn_buf out = { 0 };
	ssize_t n;
	pid_t pid;
	int fd;

	*len = 0;
	if (access(f, F_OK) == -1 || (fd = phn_gzip_open(f, &pid)) == -1) {
		free(f);
		return NULL;
	}
	while ((n = read(fd, b, sizeof(b))) > 0 || (n == -1 && errno == EINTR))
		if (n > 0)
			phn_buf_put(&out, b, (size_t)n);
	if (phn_gzip_close(fd, pid) == -1 || n == -1) {
		phn_warn("warning: %s: unable to decompress it fully", f);
	}
	free(f);
	if (out.s == NULL)
		phn_buf_put(&out, "", 0);
	*len = out.len;
	return out.s;
}

/* The recorded times, one per line; *n of them. */
static double *
times(const char *dir, size_t *n)
{
	size_t len, cap = 0;
	char *buf, *p, *e;
	double *v = NULL;
	int missing;

	*n = 0;
	if ((buf = file(dir, "codex.events.times", &len, &missing)) == NULL)
		return NULL;
	for (p = buf; p < buf + len; p = e + 1) {
		double t = strtod(p, &e);
		if (e == p || !isfinite(t) || t < 0)
			break;
		if (*n == cap)
			v = phn_realloc(v, (cap = cap ? cap * 2 : 256) *
			    sizeof(*v));
		v[(*n)++] = t;
		while (e < buf + len && *e != '\n')
			e++;
	}
	free(buf);
	return v;
}

static int
put(int fd, const char *p, size_t n)
{
	if (n > 0 && phn_write_all(fd, p, n) == -1) {
		if (errno == EPIPE)
			return -1;
		phn_warn("unable to write:");
		return -1;
	}
	return 0;
}

/*
 * Replay the attempt in dir (see above); out: the -o file, or NULL.
 * Returns the exit status to exit with, or does not return (a hang, a
 * signal).  Errors: a message, and 100 (not a replayable attempt) or
 * 111.
 */
int
phn_replay(const char *dir, double speed, const char *out)
{
	struct json_object *st;
	const char *kind, *p, *e;
	char *ev, *err, *fin, msg[512], *sf;
	size_t elen, errlen, flen, nt, i;
	double *tv, t0 = phn_mono(), a, b, last = 0;
	int missing, sig, code, stop;

	sf = phn_path_join(dir, "state.json");
	st = phn_json_load(sf, msg, sizeof(msg));
	free(sf);
	if (!json_object_is_type(st, json_type_object)) {
		phn_warn("PHN_REPLAY=%s: not a recorded attempt: %s", dir, msg);
		json_object_put(st);
		return PHN_EXIT_PERM;
	}
	kind = phn_jstr(st, "failure_kind");
	if ((ev = file(dir, "codex.events.jsonl", &elen, &missing)) == NULL &&
	    missing)
		ev = gz_events(dir, &elen);
	if (ev == NULL && !missing) {
		phn_warn("%s/codex.events.jsonl:", dir);
		json_object_put(st);
		return PHN_EXIT_TEMP;
	}
	if (ev == NULL && (kind == NULL || strcmp(kind, "spawn_error") == 0 ||
	    phn_json_get(st, "started_at") == NULL)) {
		phn_warn("PHN_REPLAY=%s: nothing to replay: codex never ran "
		    "(no codex.events.jsonl)", dir);
		json_object_put(st);
		return PHN_EXIT_PERM;
	}
	tv = times(dir, &nt);
	if ((err = file(dir, "codex.stderr.txt", &errlen, &missing)) != NULL)
		put(2, err, errlen);
	free(err);
	for (p = ev, i = 0; p != NULL && p < ev + elen; p = e, i++) {
		e = memchr(p, '\n', (size_t)(ev + elen - p));
		e = e ? e + 1 : ev + elen;
		if (i < nt) {
			last = tv[i];
			sleep_until(t0 + tv[i] / speed);
		}
		if (put(1, p, (size_t)(e - p)) == -1)
			break;
	}
	free(ev);
	/* No times recorded: the run time, from the state. */
	if (nt == 0 && phn_iso_parse(phn_jstr(st, "started_at"), &a) == 0 &&
	    phn_iso_parse(phn_jstr(st, "ended_at"), &b) == 0 && b > a)
		last = b - a;
	free(tv);
	stop = kind && (strcmp(kind, "timeout") == 0 ||
	    strcmp(kind, "canceled") == 0);
	if (!stop)
		sleep_until(t0 + last / speed);
	if (out != NULL) {
		fin = file(dir, "final.txt", &flen, &missing);
		if (phn_write_new(out, fin ? fin : "", fin ? flen : 0) == -1 &&
		    (errno != EEXIST || phn_atomic_write(out, fin ? fin : "",
		    fin ? flen : 0, 0) == -1)) {
			phn_warn("unable to write %s:", out);
			free(fin);
			json_object_put(st);
			return PHN_EXIT_TEMP;
		}
		free(fin);
	}
	sig = (int)phn_json_int(st, "signal", 0);
	code = (int)phn_json_int(st, "exit_code", -1);
	json_object_put(st);
	if (stop)
		for (;;)
			pause();	/* until stopped, as it was */
	if (sig > 0 && code < 0) {
		signal(sig, SIG_DFL);
		raise(sig);
	}
	return code >= 0 ? code : 1;
}
