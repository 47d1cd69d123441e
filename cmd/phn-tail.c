/*
 * phn-tail - print, and with -f follow, an attempt's codex events.
 *
 * Input: an attempt (its directory, or its ids).  Output: the last lines
 * of its codex.events.jsonl (JSON Lines, as codex wrote them; a
 * compressed codex.events.jsonl.gz is read through gzip -dc), then with
 * -f every complete line appended, until the attempt has ended and
 * nothing more comes.  Only complete lines are printed.
 *
 * Following polls (every 0.2 s) rather than using inotify, so that it
 * also sees writes made by other hosts sharing the store.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "phn.h"


static const char usage[] =
    "usage: phn-tail [-f] [-n lines] [-r root] [--runs-root dir] "
    "[--runners-root dir]\n"
    "                attempt_dir\n"
    "       phn-tail [-f] [-n lines] [-r root] [--runs-root dir] "
    "[--runners-root dir]\n"
    "                -a attempt_dir | -b batch --job job -s step -R run_id\n";

/* The last n lines seen, as a ring. */
struct ring {
	char	**l;
	long	  n, next, count;
};

static void
ring_add(struct ring *r, const char *s, size_t len)
{
	if (r->n == 0)
		return;
	free(r->l[r->next]);
	r->l[r->next] = phn_asprintf("%.*s", (int)len, s);
	r->next = (r->next + 1) % r->n;
	if (r->count < r->n)
		r->count++;
}

static void
ring_print(struct ring *r)
{
	long i, k;

	for (i = 0; i < r->count; i++) {
		k = (r->next - r->count + i + r->n) % r->n;
		printf("%s\n", r->l[k]);
		free(r->l[k]);
		r->l[k] = NULL;
	}
	r->count = 0;
}

/* Feed fd's complete lines to fn; keeps a partial last line in *pend. */
static int
lines(int fd, char **pend, size_t *plen, struct ring *r)
{
	char buf[65536], *nl, *p;
	ssize_t n;
	int got = 0;

	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got = 1;
		*pend = phn_realloc(*pend, *plen + (size_t)n + 1);
		memcpy(*pend + *plen, buf, (size_t)n);
		*plen += (size_t)n;
		p = *pend;
		while ((nl = memchr(p, '\n', *plen - (size_t)(p - *pend))) != NULL) {
			if (r != NULL)
				ring_add(r, p, (size_t)(nl - p));
			else
				printf("%.*s\n", (int)(nl - p), p);
			p = nl + 1;
		}
		*plen -= (size_t)(p - *pend);
		memmove(*pend, p, *plen);
	}
	return got;
}

static int
ended(const char *dir)
{
	struct json_object *st = phn_state_read(dir);
	int r = st != NULL && phn_status_terminal(phn_jstr(st, "status"));

	json_object_put(st);
	return r;
}

static void
nap(void)
{
	struct timespec ts = { 0, 200 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

int
main(int argc, char *argv[])
{
	long long nlines = 50;
	int fflag = 0, ch, fd, done;
	const struct phn_option options[] = {
		PHN_FLAG('f', "follow", &fflag),
		PHN_NUM('n', "lines", &nlines, 0, 1000000),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage, .take = PHN_TAKE_ATTEMPT,
	    .nargs = PHN_ARGS_ANY };
	struct phn_paths P;
	struct phn_errs e = { 0 };
	struct ring r = { NULL, 50, 0, 0 };
	char *dir, *ev, *gz, *pend = NULL;
	size_t plen = 0;
	pid_t pid;

	PROG = "phn-tail";
	setvbuf(stdout, NULL, _IOLBF, 0);
	phn_opts_parse(&opts, &argc, &argv, options);
	r.n = (long)nlines;
	if (argc == 1 && !phn_opts_attempt(&opts))
		opts.adir = argv[0];
	else if (argc != 0 || !phn_opts_attempt(&opts))
		phn_usage(&opts, PHN_EXIT_PERM);
	phn_opts_paths(&opts, &P);
	if ((dir = phn_attempt_select(&P, opts.adir, opts.batch, opts.job,
	    opts.step, opts.run, &e)) == NULL)
		phn_errs_die(&e);
	ev = phn_path_join(dir, "codex.events.jsonl");
	gz = phn_path_join(dir, "codex.events.jsonl.gz");
	r.l = phn_malloc((size_t)(r.n ? r.n : 1) * sizeof(*r.l));
	memset(r.l, 0, (size_t)(r.n ? r.n : 1) * sizeof(*r.l));
	while ((fd = open(ev, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno != ENOENT)
			phn_die(PHN_EXIT_TEMP, "unable to open %s:", ev);
		if (access(gz, F_OK) == 0) {
			/* compressed by phn-gc: the attempt is long over */
			if ((fd = phn_gzip_open(gz, &pid)) == -1)
				phn_die(PHN_EXIT_TEMP, "unable to run gzip:");
			if (lines(fd, &pend, &plen, &r) == -1)
				phn_die(PHN_EXIT_TEMP, "unable to read %s:", gz);
			if (phn_gzip_close(fd, pid) == -1)
				phn_die(PHN_EXIT_TEMP, "%s: gzip -dc failed", gz);
			ring_print(&r);
			goto out;
		}
		if (!fflag || ended(dir))
			phn_die(PHN_EXIT_NO, "%s: no events (capture_events_jsonl "
			    "off, or codex never started)", ev);
		nap();
	}
	if (lines(fd, &pend, &plen, &r) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to read %s:", ev);
	ring_print(&r);
	while (fflag) {
		/* Decide on the end before reading, so nothing is lost. */
		done = ended(dir);
		if ((ch = lines(fd, &pend, &plen, NULL)) == -1)
			phn_die(PHN_EXIT_TEMP, "unable to read %s:", ev);
		if (done && ch == 0)
			break;
		if (ch == 0)
			nap();
	}
	close(fd);
out:
	free(r.l);
	free(pend);
	free(ev);
	free(gz);
	free(dir);
	phn_paths_free(&P);
	phn_stdout_close();
	return PHN_EXIT_OK;
}
