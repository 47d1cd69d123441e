/*
 * summary.c - a batch's scoreboard row, kept between phn-score runs.
 *
 * Computing a batch's scoreboard reads every attempt (score.c): 0.2 s at
 * 10k steps, seconds at 100k.  A batch that has come to rest does not
 * change unless someone writes to it, so its system row is kept in
 * _sched/summary.json with the key it was computed under, and used as
 * long as the key still holds:
 *
 *  - _sched/changes, a file every change to the batch's records appends
 *    one byte to (phn_batch_changed: each state.json transition in
 *    store.c, each override, closing the batch), after the change is
 *    written.  Appends are atomic, so the file's size only grows, one by
 *    change, under any number of concurrent writers; its size and mtime
 *    are the key's first part.  A reader that takes the key before it
 *    reads the attempts and finds it unchanged after has seen every
 *    change (a change made meanwhile moves the key on, and the next
 *    reader recomputes).  The mtime guards a file that shrank in a crash
 *    (it is never synced) and grew back to the same size.
 *  - the harness config's version (retry limits change statuses).
 *
 * Only a batch at rest is kept: nothing ready or running, an attempt
 * ended (its figures then depend on no clock).  A summary that is
 * missing, torn, stale or of another key is simply recomputed, and
 * rewritten (atomically, without sync: it is derived) -- so it is always
 * rebuildable from the attempts, and deleting it is always safe.
 * Without _sched/changes (a store written by an older phn) nothing is
 * kept.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

/* The last changes file appended to, kept open (a spawner or a claimer
 * touches the same batch again and again). */
static char *chpath;
static int chfd = -1;

/*
 * Note a change to the batch whose directory is bdir: one byte appended
 * to its _sched/changes (created when missing, but not _sched/ itself,
 * which the first claim makes).  Best effort: a failure is not the
 * change's, and only costs a recomputed scoreboard... unless the file
 * exists and cannot be appended to, which is then said on stderr.
 */
void
phn_batch_changed(const char *bdir)
{
	char *f = phn_changes_path(bdir);
	struct stat st;
	int again = 1;

reopen:
	if (chpath == NULL || strcmp(chpath, f) != 0) {
		if (chfd != -1)
			close(chfd);
		free(chpath);
		chpath = f;
		chfd = open(f, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
		    O_CLOEXEC, 0644);
		f = NULL;
	}
	if (chfd == -1) {
		if (errno != ENOENT)
			phn_warn("warning: unable to open %s:", chpath);
		free(chpath);
		chpath = NULL;
		free(f);
		return;
	}
	if (phn_write_all(chfd, "\n", 1) == -1)
		phn_warn("warning: unable to append to %s:", chpath);
	/* The file kept open was replaced (phn-claim --rescan makes _sched/
	 * anew): append to the one there now. */
	if (again-- > 0 && fstat(chfd, &st) == 0 && st.st_nlink == 0) {
		free(f);	/* the same path as chpath, when not NULL */
		f = phn_strdup(chpath);
		close(chfd);
		chfd = -1;
		free(chpath);
		chpath = NULL;
		goto reopen;
	}
	free(f);
	if (phn_fds_scarce()) {
		close(chfd);
		chfd = -1;
		free(chpath);
		chpath = NULL;
	}
}

/* The batch directory of an attempt directory
 * (RUNS/BATCH/JOB/steps/STEP/attempts/NAME), or NULL. */
char *
phn_attempt_batchdir(const char *adir)
{
	char *d = phn_strdup(adir), *s;
	int i;

	for (i = 0; i < 5; i++) {
		while ((s = strrchr(d, '/')) != NULL && s[1] == '\0' && s > d)
			*s = '\0';
		if ((s = strrchr(d, '/')) == NULL || s == d) {
			free(d);
			return NULL;
		}
		*s = '\0';
	}
	return d;
}

/* The key of a batch's summary now, in key (size 64): 0, or -1 when the
 * batch has no changes file (nothing is kept then). */
int
phn_summary_key(const struct phn_paths *p, const char *batch,
    const char *cfgversion, char *key, size_t keylen)
{
	char *bdir = phn_batch_path(p, batch, NULL), *f = phn_changes_path(bdir);
	struct stat st;
	int r;

	r = stat(f, &st);
	free(f);
	free(bdir);
	if (r == -1)
		return -1;
	snprintf(key, keylen, "%lld.%lld.%09ld.%s", (long long)st.st_size,
	    (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, cfgversion);
	return 0;
}

/* The kept row of the batch if it was computed under key, else NULL. */
struct json_object *
phn_summary_get(const struct phn_paths *p, const char *batch,
    const char *key)
{
	char *f = phn_summary_path(p, batch);
	struct json_object *o = phn_json_load_doc(f, NULL, json_type_object),
	    *row = NULL;
	const char *k = phn_jstr(o, "key"), *t = phn_jstr(o, "row"), *b;

	free(f);
	/* the row as text: its keys in the order phn_score_row made them */
	if (k != NULL && strcmp(k, key) == 0 && t != NULL)
		row = json_tokener_parse(t);
	json_object_put(o);
	if (!json_object_is_type(row, json_type_object) || (b = phn_jstr(row,
	    "batch_id")) == NULL || strcmp(b, batch) != 0) {
		json_object_put(row);
		return NULL;
	}
	return row;
}

/* Keep row, computed under key (taken before the attempts were read),
 * if the batch is at rest (see the top). */
void
phn_summary_put(const struct phn_paths *p, const char *batch,
    const char *key, struct json_object *row)
{
	const char *out = phn_jstr(row, "outcome");
	struct json_object *o;
	char *f;

	if (out == NULL || strcmp(out, "in_progress") == 0 ||
	    phn_json_int(row, "attempts_total", 0) <= 0)
		return;
	o = json_object_new_object();
	json_object_object_add(o, "key", json_object_new_string(key));
	json_object_object_add(o, "row", json_object_new_string(
	    json_object_to_json_string_ext(row, JSON_C_TO_STRING_PLAIN)));
	f = phn_summary_path(p, batch);
	(void)phn_json_write(f, o, 0);	/* derived: a failure costs a recompute */
	free(f);
	json_object_put(o);
}
