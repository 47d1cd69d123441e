/*
 * phn-score - derive step statuses and print or write the scoreboards.
 *
 * Input: the runs store (read only, unless --write).  Output, one of: a
 * human table (default), --json (one object: {"batch": ...} with
 * --batch-id, else {"system": [...]}), --steps (JSON Lines, one object
 * per step), --watch (a view refreshed in place until nothing is in
 * flight), or nothing (--quiet).  --write replaces scoreboard.batch.json
 * of each batch and _system/scoreboard.system.json atomically.
 *
 * Exit status says where the batches stand: 3 while any step is ready,
 * queued, running or waiting out a backoff; else 1 if any failed, needs
 * attention, was canceled or is blocked; else 0.
 *
 * Invariants: reading creates no file (not even a lock); one unreadable
 * batch is reported and skipped, never hides the others.
 */
#include <sys/ioctl.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "score.h"

static int Jflag, qflag, Sflag, wflag, Wflag, Lflag;
static double interval = 2;
static int color, tty;
static struct phn_paths P;
static struct phn_config C;

static const char usage[] =
    "usage: phn-score [-J | -S | -w [-I seconds] | -q] [-W] [-b batch] "
    "[-r root]\n"
    "                 [--runs-root dir] [--runners-root dir]\n"
    "       phn-score --joblog [-b batch] [-r root] [--runs-root dir]\n"
    "                 [--runners-root dir]\n";

/* --- human output -------------------------------------------------- */

static const char *
paint(const char *status)
{
	static const struct { const char *s, *c; } tab[] = {
		{ "succeeded", "32" }, { "failed", "31" },
		{ "needs_attention", "33" }, { "canceled", "35" },
		{ "running", "36" }, { "ready", "34" }, { "blocked", "2" },
		{ "orphaned", "1;31" }, { "stuck", "1;33" },
		{ "in_progress", "36" }, { "alive", "32" }, { "waiting", "33" },
		{ "draining", "35" }, { "gone", "1;31" }, { "stopped", "2" },
		{ NULL, NULL }
	};
	int i;

	for (i = 0; color && status && tab[i].s; i++)
		if (strcmp(status, tab[i].s) == 0)
			return tab[i].c;
	return NULL;
}

static void
cput(const char *s, int width)
{
	const char *c = paint(s);

	if (c)
		printf("\033[%sm%-*s\033[0m", c, width, s);
	else
		printf("%-*s", width, s);
}

static char *dur(struct json_object *);
static long long cnt(struct json_object *, const char *);

/*
 * The runner view, after a blank line: every runner but those stopped
 * (or gone) for over an hour; with brief, only the live ones.
 */
static void
runner_table(struct json_object *rv, int brief)
{
	size_t i, n = json_object_array_length(rv), shown = 0;

	for (i = 0; i < n; i++) {
		struct json_object *r = json_object_array_get_idx(rv, i);
		const char *st = phn_jstr(r, "status"), *w;
		long long age = cnt(r, "last_seen_age_seconds");
		char *a, load[48];
		int dead = strcmp(st, "stopped") == 0 || strcmp(st, "gone") == 0;

		if ((dead && (brief || age > 3600)))
			continue;
		if (shown++ == 0)
			printf("\n%-32s %-8s %-16s %7s %8s  %s\n", "RUNNER",
			    "STATUS", "HOST", "LOAD", "SEEN", "WHY");
		if (phn_json_is_int(phn_json_get(r, "capacity")))
			snprintf(load, sizeof(load), "%lld/%lld",
			    cnt(r, "current_load"), cnt(r, "capacity"));
		else if (phn_json_is_int(phn_json_get(r, "jobs")))
			snprintf(load, sizeof(load), "%lld/%lld",
			    cnt(r, "current_load"), cnt(r, "jobs"));
		else
			snprintf(load, sizeof(load), "%lld",
			    cnt(r, "current_load"));
		a = dur(phn_json_get(r, "last_seen_age_seconds"));
		w = phn_jstr(r, "waiting_reason");
		printf("%-32s ", phn_jstr(r, "runner_id"));
		cput(st, 8);
		printf(" %-16.16s %7s %8s  %s\n", phn_jstr(r, "host") ?
		    phn_jstr(r, "host") : "-", load, a, w ? w : "");
		free(a);
	}
}

static char *
dur(struct json_object *v)
{
	long long s;

	if (v == NULL || !phn_json_is_num(v))
		return phn_strdup("-");
	s = json_object_get_int64(v);
	if (s < 0)
		s = 0;
	if (s < 60)
		return phn_asprintf("%llds", s);
	if (s < 3600)
		return phn_asprintf("%lldm%02llds", s / 60, s % 60);
	if (s < 86400)
		return phn_asprintf("%lldh%02lldm", s / 3600, s % 3600 / 60);
	return phn_asprintf("%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

static long long
cnt(struct json_object *o, const char *k)
{
	return json_object_get_int64(phn_json_path_get(o, k));
}

static void
system_table(struct json_object *rows)
{
	size_t i, n = json_object_array_length(rows);

	printf("%-34s %5s %5s %4s %5s %5s %4s %4s %8s %8s  %s\n", "BATCH",
	    "STEPS", "DONE", "RUN", "READY", "BLOCK", "FAIL", "ATTN", "ELAPSED",
	    "ETA", "GOAL");
	for (i = 0; i < n; i++) {
		struct json_object *r = json_object_array_get_idx(rows, i);
		char *el = dur(json_object_object_get(r, "elapsed_seconds"));
		char *eta = dur(json_object_object_get(r,
		    "remaining_seconds_estimate"));
		const char *g = phn_jstr(r, "batch_goal_summary_preview");

		printf("%-34s %5lld %5lld %4lld %5lld %5lld %4lld %4lld %8s %8s  "
		    "%.40s\n", phn_jstr(r, "batch_id"), cnt(r, "steps_total"),
		    cnt(r, "counts.succeeded"), cnt(r, "counts.running"),
		    cnt(r, "counts.ready"), cnt(r, "counts.blocked"),
		    cnt(r, "counts.failed") + cnt(r, "counts.needs_attention") +
		    cnt(r, "counts.canceled"), cnt(r, "attention_steps"), el, eta,
		    g ? g : "");
		free(el);
		free(eta);
	}
}

static char *
step_time(struct json_object *s)
{
	double a, b;
	struct json_object *v;
	char *r;

	if (phn_iso_parse(phn_jstr(s, "started_at"), &a) == -1)
		return phn_strdup("-");
	if (phn_iso_parse(phn_jstr(s, "ended_at"), &b) == -1)
		b = phn_now();
	v = json_object_new_int64((int64_t)(b - a));
	r = dur(v);
	json_object_put(v);
	return r;
}

static char *
step_detail(struct json_object *s)
{
	const char *st = phn_jstr(s, "status"), *x;
	struct json_object *v;
	char *d = phn_strdup(""), *t;
	size_t i, n;

	if (strcmp(st, "blocked") == 0) {
		v = json_object_object_get(s, "reasons");
		n = json_object_array_length(v);
		for (i = 0; i < n; i++) {
			t = phn_asprintf("%s%s%s", d, i ? "; " : "",
			    json_object_get_string(json_object_array_get_idx(v,
			    i)));
			free(d);
			d = t;
		}
	} else if (strcmp(st, "running") == 0) {
		x = phn_jstr(s, "current_item");
		free(d);
		d = phn_asprintf("%s%s%s%s", phn_jstr(s, "attention") ? "[" : "",
		    phn_jstr(s, "attention") ? phn_jstr(s, "attention") : "",
		    phn_jstr(s, "attention") ? "] " : "", x ? x : "");
	} else if (strcmp(st, "ready") == 0 &&
	    (x = phn_jstr(s, "not_before")) != NULL) {
		free(d);
		d = phn_asprintf("retry not before %s", x);
	} else if ((x = phn_jstr(s, "state_error")) != NULL) {
		free(d);
		d = phn_strdup(x);
	} else if ((x = phn_jstr(s, "failure_kind")) != NULL) {
		v = json_object_object_get(s, "exit_code");
		free(d);
		d = v ? phn_asprintf("%s (exit %s)", x,
		    json_object_get_string(v)) : phn_strdup(x);
	}
	if (json_object_object_get(s, "forced_terminal")) {
		t = phn_asprintf("forced by operator%s%s", *d ? "; " : "", d);
		free(d);
		d = t;
	}
	return d;
}

static void
usage_line(struct json_object *sb)
{
	printf("tokens: input %lld (cached %lld), output %lld (reasoning %lld)\n",
	    cnt(sb, "usage.input_tokens"), cnt(sb, "usage.cached_input_tokens"),
	    cnt(sb, "usage.output_tokens"),
	    cnt(sb, "usage.reasoning_output_tokens"));
}

static void
batch_head(struct json_object *sb)
{
	char *el = dur(json_object_object_get(sb, "elapsed_seconds"));
	char *eta = dur(json_object_object_get(sb, "remaining_seconds_estimate"));

	printf("batch %s  ", phn_jstr(sb, "batch_id"));
	cput(phn_jstr(sb, "outcome"), 0);
	printf("  %lld/%lld steps succeeded  elapsed %s  eta %s%s\n",
	    cnt(sb, "counts.succeeded"), cnt(sb, "steps_total"), el, eta,
	    json_object_get_boolean(json_object_object_get(sb, "closed")) ?
	    "  (closed)" : "");
	free(el);
	free(eta);
}

static void
step_table(struct json_object *steps)
{
	size_t i, n = json_object_array_length(steps), wj = 3, ws = 4, l;

	for (i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(steps, i);
		if ((l = strlen(phn_jstr(s, "job_id"))) > wj)
			wj = l;
		if ((l = strlen(phn_jstr(s, "step_id"))) > ws)
			ws = l;
	}
	printf("%-*s  %-*s  %-15s  %3s  %-32s  %7s  %s\n", (int)wj, "JOB",
	    (int)ws, "STEP", "STATUS", "ATT", "RUN", "TIME", "DETAIL");
	for (i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(steps, i);
		const char *run = phn_jstr(s, "run_id");
		char *t = step_time(s), *d = step_detail(s);

		printf("%-*s  %-*s  ", (int)wj, phn_jstr(s, "job_id"), (int)ws,
		    phn_jstr(s, "step_id"));
		cput(phn_jstr(s, "status"), 15);
		printf("  %3lld  %-32s  %7s  %s\n", cnt(s, "attempts"),
		    run ? run : "-", t, d);
		free(t);
		free(d);
	}
}

static void
batch_table(struct json_object *sb, struct json_object *steps)
{
	const char *g = phn_jstr(sb, "batch_goal_summary");

	batch_head(sb);
	if (g != NULL)
		printf("goal: %.100s%s\n", g, strlen(g) > 100 ? "..." : "");
	usage_line(sb);
	step_table(steps);
}

static int
termwidth(void)
{
	struct winsize ws;

	if (tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
		return ws.ws_col;
	return 80;
}

static void
bar(struct json_object *sb)
{
	long long tot = cnt(sb, "steps_total"), ok = cnt(sb, "counts.succeeded");
	long long bad = cnt(sb, "counts.failed") + cnt(sb, "counts.needs_attention")
	    + cnt(sb, "counts.canceled");
	int w = termwidth() - 50, i, nok, nbad;
	char *el = dur(json_object_object_get(sb, "elapsed_seconds"));
	char *eta = dur(json_object_object_get(sb, "remaining_seconds_estimate"));

	if (w < 10)
		w = 10;
	if (w > 60)
		w = 60;
	nok = tot ? (int)(ok * w / tot) : 0;
	nbad = tot ? (int)(bad * w / tot) : 0;
	printf("%s\n  [", phn_jstr(sb, "batch_id"));
	for (i = 0; i < w; i++) {
		const char *c = i < nok ? "#" : i < nok + nbad ? "!" : ".";
		if (color && i < nok + nbad)
			printf("\033[%sm%s\033[0m", i < nok ? "32" : "31", c);
		else
			fputs(c, stdout);
	}
	printf("] %lld/%lld  run %lld ready %lld blocked %lld failed %lld  "
	    "%s eta %s\n", ok + bad, tot, cnt(sb, "counts.running"),
	    cnt(sb, "counts.ready"), cnt(sb, "counts.blocked"), bad, el, eta);
	free(el);
	free(eta);
}

static void
attention_lines(struct json_object *sb, int max)
{
	struct json_object *a = json_object_object_get(sb, "attention");
	size_t i, n = json_object_array_length(a);

	for (i = 0; i < n && (int)i < max; i++) {
		struct json_object *x = json_object_array_get_idx(a, i);
		const char *why = phn_jstr(x, "reason");
		printf("  ! ");
		cput(phn_jstr(x, "kind"), 0);
		printf(" %s/%s %s%s\n", phn_jstr(x, "job_id"),
		    phn_jstr(x, "step_id"), why ? why : phn_jstr(x,
		    "failure_kind") ? phn_jstr(x, "failure_kind") : "",
		    "");
	}
	if ((int)n > max)
		printf("  ... and %zu more\n", n - (size_t)max);
}

/* --- computing ----------------------------------------------------- */

struct scores {
	struct json_object *sbs;	/* batch scoreboards */
	struct json_object *rows;	/* system rows */
	struct json_object *steps;	/* step records, if wanted */
	struct json_object *runners;	/* the runner view */
	int	 code;
};

static int
worse(int a, int b)
{
	if (a == PHN_EXIT_RUNNING || b == PHN_EXIT_RUNNING)
		return PHN_EXIT_RUNNING;
	return a > b ? a : b;
}

static void
compute(const char *only, int want_steps, struct scores *sc)
{
	char **v, msg[512];
	size_t n, i;
	double now = phn_now();
	struct json_object *sb;

	sc->sbs = json_object_new_array();
	sc->rows = json_object_new_array();
	sc->steps = want_steps ? json_object_new_array() : NULL;
	sc->runners = phn_score_runners(&P, C.doc, now);
	sc->code = PHN_EXIT_OK;
	if ((v = phn_batches(&P, only, &n)) == NULL) {
		if (errno != ENOENT)
			phn_die(PHN_EXIT_TEMP, "unable to read %s:", P.runs);
		n = 0;
	}
	for (i = 0; i < n; i++) {
		/* A batch at rest: its kept row, while nothing changed
		 * (summary.c); else computed, and with -W kept. */
		char key[128];
		struct json_object *row;
		int haskey = phn_summary_key(&P, v[i], C.version, key,
		    sizeof(key)) == 0;
		if (haskey && !want_steps && !Wflag && only == NULL &&
		    (row = phn_summary_get(&P, v[i], key)) != NULL) {
			sc->code = worse(sc->code, phn_score_exit(row));
			json_object_array_add(sc->rows, row);
			continue;
		}
		sb = phn_score_batch(&P, C.doc, v[i], now, sc->steps, msg,
		    sizeof(msg));
		if (sb == NULL) {
			if (only != NULL)
				phn_die(PHN_EXIT_PERM, "%s", msg);
			phn_warn("warning: %s (batch skipped)", msg);
			sc->code = worse(sc->code, PHN_EXIT_NO);
			continue;
		}
		sc->code = worse(sc->code, phn_score_exit(sb));
		row = phn_score_row(sb);
		if (haskey && Wflag)	/* reading alone writes nothing */
			phn_summary_put(&P, v[i], key, row);
		json_object_array_add(sc->rows, row);
		json_object_array_add(sc->sbs, sb);
	}
	phn_dir_list_free(v, n);
	phn_score_sort_rows(sc->rows);
}

static void
scores_free(struct scores *sc)
{
	json_object_put(sc->sbs);
	json_object_put(sc->rows);
	json_object_put(sc->steps);
	json_object_put(sc->runners);
}

static void
write_files(struct scores *sc)
{
	size_t i, n = json_object_array_length(sc->sbs);
	char *f, *d;

	for (i = 0; i < n; i++) {
		struct json_object *sb = json_object_array_get_idx(sc->sbs, i);
		f = phn_asprintf("%s/%s/scoreboard.batch.json", P.runs,
		    phn_jstr(sb, "batch_id"));
		if (phn_json_write(f, sb, 0) == -1)
			phn_die(PHN_EXIT_TEMP, "unable to write %s:", f);
		free(f);
	}
	d = phn_path_join(P.runs, "_system");
	if (phn_mkdirs(d, 0755) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to create %s:", d);
	f = phn_path_join(d, "scoreboard.system.json");
	if (phn_json_write(f, sc->rows, 0) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to write %s:", f);
	free(f);
	free(d);
}

/* The selected batch's scoreboard among the computed ones. */
static struct json_object *
pick(struct scores *sc, const char *batch)
{
	size_t i, n = json_object_array_length(sc->sbs);

	for (i = 0; i < n; i++) {
		struct json_object *sb = json_object_array_get_idx(sc->sbs, i);
		if (strcmp(phn_jstr(sb, "batch_id"), batch) == 0)
			return sb;
	}
	return NULL;
}

/* The step records of one batch. */
static struct json_object *
of_batch(struct json_object *steps, const char *batch)
{
	struct json_object *o = json_object_new_array(), *x;
	size_t i, n = json_object_array_length(steps);

	for (i = 0; i < n; i++) {
		x = json_object_array_get_idx(steps, i);
		if (strcmp(phn_jstr(x, "batch_id"), batch) == 0)
			json_object_array_add(o, json_object_get(x));
	}
	return o;
}

/* The store's rate-limit pause, if one is in force: one line. */
static void
pause_line(void)
{
	struct json_object *pz = phn_score_pause(&P, phn_now());

	if (pz == NULL)
		return;
	printf("PAUSED until %s (%s, %llds left; seen by %s): nothing is "
	    "claimed\n", phn_jstr(pz, "until"), phn_jstr(pz, "reason") ?
	    phn_jstr(pz, "reason") : "rate_limit",
	    (long long)phn_json_int(pz, "remaining_seconds", 0),
	    phn_jstr(pz, "attempt") ? phn_jstr(pz, "attempt") : "?");
	json_object_put(pz);
}

static void
output(struct scores *sc, const char *batch)
{
	struct json_object *o, *pz, *sb = batch ? pick(sc, batch) : NULL;
	size_t i, n;

	if (qflag)
		return;
	if (Jflag) {
		o = json_object_new_object();
		json_object_object_add(o, batch ? "batch" : "system",
		    json_object_get(batch ? sb : sc->rows));
		json_object_object_add(o, "runners",
		    json_object_get(sc->runners));
		if ((pz = phn_score_pause(&P, phn_now())) != NULL)
			json_object_object_add(o, "pause", pz);
		phn_json_emit(stdout, o);
		json_object_put(o);
	} else if (Sflag) {
		n = json_object_array_length(sc->steps);
		for (i = 0; i < n; i++) {
			o = json_object_array_get_idx(sc->steps, i);
			if (batch == NULL || strcmp(phn_jstr(o, "batch_id"),
			    batch) == 0)
				phn_json_emit(stdout, o);
		}
	} else if (batch != NULL) {
		pause_line();
		o = of_batch(sc->steps, batch);
		batch_table(sb, o);
		json_object_put(o);
	} else {
		pause_line();
		system_table(sc->rows);
		runner_table(sc->runners, 0);
	}
}

static void
frame(struct scores *sc, const char *batch)
{
	size_t i, n = json_object_array_length(sc->sbs);
	char iso[PHN_ISO_LEN];

	if (tty)
		fputs("\033[H\033[2J", stdout);
	phn_iso(phn_now(), iso);
	printf("phn-score --watch  %.19sZ  %s\n\n", iso, P.runs);
	pause_line();
	if (n == 0)
		printf("no batches\n");
	for (i = 0; i < n; i++) {
		struct json_object *sb = json_object_array_get_idx(sc->sbs, i);
		if (batch && strcmp(phn_jstr(sb, "batch_id"), batch))
			continue;
		bar(sb);
		attention_lines(sb, batch ? 20 : 5);
	}
	if (batch == NULL)
		runner_table(sc->runners, 1);
	if (batch != NULL) {
		struct json_object *o = of_batch(sc->steps, batch);
		printf("\n");
		step_table(o);
		json_object_put(o);
	}
	if (!tty)
		printf("\n");
	fflush(stdout);
}

static int
watch(const char *batch)
{
	struct scores sc;
	struct timespec ts;
	int code;

	for (;;) {
		compute(Wflag ? NULL : batch, batch != NULL, &sc);
		if (Wflag)
			write_files(&sc);
		frame(&sc, batch);
		code = batch ? phn_score_exit(pick(&sc, batch)) : sc.code;
		scores_free(&sc);
		if (code != PHN_EXIT_RUNNING)
			return code;
		ts.tv_sec = (time_t)interval;
		ts.tv_nsec = (long)((interval - floor(interval)) * 1e9);
		nanosleep(&ts, NULL);
	}
}

int
main(int argc, char *argv[])
{
	const struct phn_option options[] = {
		PHN_SECS('I', "interval", &interval, 0.1, 3600),
		PHN_FLAG('q', "quiet", &qflag),
		PHN_FLAG('S', "steps", &Sflag),
		PHN_FLAG('w', "watch", &wflag),
		PHN_FLAG('W', "write", &Wflag),
		PHN_FLAG(0, "joblog", &Lflag),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage,
	    .take = PHN_TAKE_BATCH | PHN_TAKE_JSON };
	const char *batch;
	struct scores sc;
	struct phn_errs e = { 0 };
	int code;

	PROG = "phn-score";
	setvbuf(stdout, NULL, _IOLBF, 0);
	phn_opts_parse(&opts, &argc, &argv, options);
	Jflag = opts.json;
	batch = opts.batch;
	if (Jflag + Sflag + wflag + qflag > 1 || (Lflag && Jflag + Sflag +
	    wflag + qflag + Wflag > 0))
		phn_usage(&opts, PHN_EXIT_PERM);
	phn_opts_paths(&opts, &P);
	if (batch != NULL && phn_sched_step_check(&P, batch, NULL, NULL,
	    &e) == -1)
		phn_errs_die(&e);
	if (phn_config_read(&P, 0, &C, &e) == -1)
		phn_errs_die(&e);
	if (Lflag) {
		code = phn_joblog(&P, batch, stdout) == -1 ? PHN_EXIT_TEMP :
		    PHN_EXIT_OK;
		phn_config_free(&C);
		phn_paths_free(&P);
		phn_stdout_close();
		return code;
	}
	tty = isatty(STDOUT_FILENO);
	color = tty && getenv("NO_COLOR") == NULL;
	if (wflag)
		code = watch(batch);
	else {
		/* --write rewrites every batch, and the system file needs all. */
		compute(Wflag ? NULL : batch, Sflag || (batch && !Jflag && !qflag),
		    &sc);
		if (Wflag)
			write_files(&sc);
		if (batch != NULL && Wflag)
			sc.code = phn_score_exit(pick(&sc, batch));
		output(&sc, batch);
		code = sc.code;
		scores_free(&sc);
	}
	phn_config_free(&C);
	phn_paths_free(&P);
	phn_stdout_close();
	return code;
}
