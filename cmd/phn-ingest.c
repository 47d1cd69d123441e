/*
 * phn-ingest - validate a Launch Table and turn it into a batch.
 *
 * Input: one Launch Table file (or "-"), or with --queue every table
 * waiting in runs/_queue/incoming/.  Output: the batch id, one per line.
 *
 * Invariants: an invalid table writes nothing under runs/ and reports
 * every problem at once; a batch appears atomically (built under
 * runs/.ingest-XXXXXX, made durable, renamed into place); ingests are
 * serialized by runs/_queue/index/.lock, so the same table ingested twice
 * at once yields one batch; a queued file is claimed by rename and always
 * ends in processed/ or rejected/, never blocking the others.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

static int cflag;	/* --check: validate only */
static int nflag;	/* --new: a new batch even for a known table */
static int preflight;	/* the isolated jobs' checks (not --skip-preflight) */
static int cfg_pending = 1;	/* the config's version is not recorded yet */
static char **untrusted;	/* --untrusted: the allowed roots, or NULL */

static struct phn_paths P;
static struct phn_config C;

/* What happened to one table; msgs collects the lines for stderr. */
struct result {
	int	 code;		/* 0, 100, 111 */
	int	 dup;
	char	*batch_id;
	char	 sha[PHN_SHA256_HEX];
	struct json_object *job_ids;
	struct phn_errs msgs;
};

static const char usage[] =
    "usage: phn-ingest [-CN] [--skip-preflight] [-r root] [--runs-root dir]\n"
    "                  [--runners-root dir] file | -\n"
    "       phn-ingest --untrusted [-CN] [--skip-preflight] [-r root] "
    "[--runs-root dir]\n"
    "                  [--runners-root dir] -\n"
    "       phn-ingest -Q [-N] [-r root] [--runs-root dir] "
    "[--runners-root dir]\n";

static int
fail(struct result *r, int code, const char *fmt, ...)
{
	va_list ap;
	char *m;

	va_start(ap, fmt);
	m = phn_vasprintf(fmt, ap);
	va_end(ap);
	phn_errs_add(&r->msgs, "%s: %s", PROG, m);
	free(m);
	r->code = code;
	return code;
}

/* runs/.ingest-* left by a crashed ingest; safe to remove under the lock. */
static void
sweep_tmp(void)
{
	DIR *d;
	struct dirent *de;

	if ((d = opendir(P.runs)) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, ".ingest-", 8) == 0) {
			char *t = phn_path_join(P.runs, de->d_name);
			phn_rmtree(t);
			free(t);
		}
	closedir(d);
}

/* The batch directory being built, runs/.ingest-XXXXXX, by its name. */
static const char *
tmpname(const char *tmp)
{
	return tmp + strlen(P.runs) + 1;
}

/*
 * A step's write-once snapshot NAME (prompt.txt, output_schema.json),
 * with at most the permissions mode (its source file's).
 */
static int
snapshot(struct result *r, const char *tmp, const struct phn_lt_step *s,
    const char *name, const char *text, mode_t mode)
{
	char *f = phn_step_path(&P, tmpname(tmp), s->job, s->step, name);
	struct stat st;
	int rc = phn_write_new(f, text, strlen(text));

	if (rc == 0 && (stat(f, &st) == -1 ||
	    chmod(f, st.st_mode & mode & 0777) == -1))
		rc = -1;
	if (rc == -1)
		fail(r, PHN_EXIT_TEMP, "unable to write %s: %s", f,
		    strerror(errno));
	free(f);
	return rc;
}

/* Write the batch tree under tmp (the batch directory to be). */
static int
build(struct result *r, const char *tmp, struct json_object *meta,
    struct phn_lt_ctx *ctx)
{
	char *f, *dir;
	size_t i;

	f = phn_path_join(tmp, "batch_meta.json");
	if (phn_json_write(f, meta, PHN_DURABLE | PHN_ONCE) == -1) {
		fail(r, PHN_EXIT_TEMP, "unable to write %s: %s", f,
		    strerror(errno));
		free(f);
		return -1;
	}
	free(f);
	for (i = 0; i < ctx->nsteps; i++) {
		struct phn_lt_step *s = &ctx->steps[i];
		dir = phn_attempt_path(&P, tmpname(tmp), s->job, s->step, NULL,
		    NULL);
		if (phn_mkdirs(dir, 0755) == -1) {
			fail(r, PHN_EXIT_TEMP, "unable to create %s: %s", dir,
			    strerror(errno));
			free(dir);
			return -1;
		}
		free(dir);
		if (snapshot(r, tmp, s, "prompt.txt", s->prompt,
		    s->prompt_mode) == -1 || (s->schema != NULL &&
		    snapshot(r, tmp, s, "output_schema.json", s->schema,
		    s->schema_mode) == -1))
			return -1;
	}
	return 0;
}

static char *
index_path(const char *sha)
{
	return phn_asprintf("%s/_queue/index/by_launch_table_sha256/%s.json",
	    P.runs, sha);
}

/* The batch an earlier ingest of these bytes made, if it still exists. */
static char *
known_batch(const char *sha)
{
	char *ip = index_path(sha), msg[256], *id = NULL, *bm;
	struct json_object *o, *v;

	o = phn_json_load(ip, msg, sizeof(msg));
	free(ip);
	if (o == NULL)
		return NULL;
	if (json_object_object_get_ex(o, "batch_id", &v) &&
	    phn_id_problem(v) == NULL) {
		bm = phn_asprintf("%s/%s/batch_meta.json", P.runs,
		    json_object_get_string(v));
		if (access(bm, F_OK) == 0)
			id = phn_strdup(json_object_get_string(v));
		free(bm);
	}
	json_object_put(o);
	return id;
}

/* Under the index lock: find or make the batch. */
static int
commit(struct result *r, struct json_object *meta, struct phn_lt_ctx *ctx,
    const char *name, const char *source)
{
	struct json_object *v, *ix;
	char *tmp, *dst, *ip, *kb, iso[PHN_ISO_LEN];
	int explicit;

	if (!nflag && (r->batch_id = known_batch(r->sha)) != NULL) {
		r->dup = 1;
		return 0;
	}
	explicit = json_object_object_get_ex(meta, "batch_id", &v);
	for (;;) {
		r->batch_id = explicit ? phn_strdup(json_object_get_string(v)) :
		    phn_id_new("batch");
		dst = phn_path_join(P.runs, r->batch_id);
		if (access(dst, F_OK) == -1)
			break;
		if (explicit) {
			fail(r, PHN_EXIT_PERM, "%s: batch_id: batch \"%s\" already "
			    "exists in %s", name, r->batch_id, P.runs);
			free(dst);
			return -1;
		}
		free(dst);
		free(r->batch_id);
	}
	phn_iso(phn_now(), iso);
	json_object_object_add(meta, "batch_id",
	    json_object_new_string(r->batch_id));
	if (!json_object_object_get_ex(meta, "submitted_at", NULL))
		json_object_object_add(meta, "submitted_at",
		    json_object_new_string(iso));
	json_object_object_add(meta, "launch_table_sha256",
	    json_object_new_string(r->sha));
	json_object_object_add(meta, "harness_config_version",
	    json_object_new_string(C.version));

	tmp = phn_path_join(P.runs, ".ingest-XXXXXX");
	if (mkdtemp(tmp) == NULL) {
		fail(r, PHN_EXIT_TEMP, "unable to create a directory in %s: %s",
		    P.runs, strerror(errno));
		goto out;
	}
	if (build(r, tmp, meta, ctx) == -1)
		goto out;
	/*
	 * mkdtemp made it 0700, so no snapshot was readable before its mode
	 * was narrowed; a batch is as readable as the store.
	 */
	if (chmod(tmp, 0755) == -1) {
		fail(r, PHN_EXIT_TEMP, "unable to chmod %s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	if (phn_syncfs(tmp) == -1) {
		fail(r, PHN_EXIT_TEMP, "unable to sync %s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	/*
	 * The index entry goes first: if we crash before the rename, it
	 * names a batch that does not exist, which readers treat as no entry.
	 */
	ix = json_object_new_object();
	json_object_object_add(ix, "batch_id", json_object_new_string(r->batch_id));
	json_object_object_add(ix, "queued_at", json_object_new_string(iso));
	json_object_object_add(ix, "source", json_object_new_string(source));
	ip = index_path(r->sha);
	/* With --new the first batch of these bytes keeps the index entry. */
	kb = nflag ? known_batch(r->sha) : NULL;
	if (kb == NULL) {
		if (phn_json_write(ip, ix, PHN_DURABLE) == -1) {
			fail(r, PHN_EXIT_TEMP, "unable to write %s: %s", ip,
			    strerror(errno));
			json_object_put(ix);
			free(ip);
			free(kb);
			goto out;
		}
	}
	json_object_put(ix);
	free(ip);
	free(kb);
	if (rename(tmp, dst) == -1) {
		fail(r, errno == EEXIST || errno == ENOTEMPTY ? PHN_EXIT_PERM :
		    PHN_EXIT_TEMP, "unable to rename %s to %s: %s", tmp, dst,
		    strerror(errno));
		goto out;
	}
	if (phn_fsync_dir(P.runs) == -1) {
		fail(r, PHN_EXIT_TEMP, "unable to sync %s: %s", P.runs,
		    strerror(errno));
		goto out;
	}
out:
	if (r->code != 0)
		phn_rmtree(tmp);
	free(tmp);
	free(dst);
	return r->code ? -1 : 0;
}

/* The submit-time checks of the isolated jobs (workspace.c). */
static int
check_isolated(struct result *r, struct json_object *meta, const char *name)
{
	struct phn_errs e = { 0 };
	size_t i;
	int rc = phn_preflight(&P, &C, meta, &e);

	for (i = 0; i < e.n; i++)
		fail(r, e.temp ? PHN_EXIT_TEMP : PHN_EXIT_PERM, "%s: %s", name,
		    e.v[i]);
	if (rc == -1)
		phn_errs_add(&r->msgs, "%s: %s: preflight failed; "
		    "--skip-preflight skips these checks", PROG, name);
	phn_errs_free(&e);
	return rc;
}

/*
 * Validate and ingest one table's bytes.  name is how messages name the
 * file; base is where its relative paths resolve.
 */
static int
ingest(struct result *r, const char *buf, size_t len, const char *name,
    const char *base, const char *source)
{
	struct phn_lt_ctx ctx;
	struct json_object *raw, *meta, *jobs;
	char msg[512], *lockp;
	size_t i;
	int lfd = -1;

	memset(&ctx, 0, sizeof(ctx));
	if (len > (size_t)PHN_LT_MAX_BYTES)
		return fail(r, PHN_EXIT_PERM, "%s: larger than 64 MiB", name);
	if ((raw = phn_json_parse(buf, len, name, msg, sizeof(msg))) == NULL)
		return fail(r, PHN_EXIT_PERM, "%s", msg);
	ctx.name = name;
	ctx.base = base;
	ctx.cfg = &C;
	ctx.wd_roots = untrusted;
	meta = phn_lt_validate(raw, &ctx);
	json_object_put(raw);
	for (i = 0; i < ctx.warns.n; i++)
		phn_errs_add(&r->msgs, "%s: warning: %s: %s", PROG, name,
		    ctx.warns.v[i]);
	for (i = 0; i < ctx.errs.n; i++)
		fail(r, PHN_EXIT_PERM, "%s: %s", name, ctx.errs.v[i]);
	if (meta != NULL && preflight && check_isolated(r, meta, name) == -1) {
		json_object_put(meta);
		meta = NULL;
	}
	if (meta == NULL || cflag) {
		phn_lt_ctx_free(&ctx);
		json_object_put(meta);
		return r->code;
	}
	phn_sha256_hex(buf, len, r->sha);
	r->job_ids = json_object_new_array();
	jobs = json_object_object_get(meta, "jobs");
	for (i = 0; i < json_object_array_length(jobs); i++)
		json_object_array_add(r->job_ids, json_object_get(
		    json_object_object_get(json_object_array_get_idx(jobs, i),
		    "job_id")));

	if (cfg_pending) {
		struct phn_errs e = { 0 };
		phn_config_free(&C);
		if (phn_config_read(&P, PHN_CONFIG_SNAPSHOT, &C, &e) == -1)
			phn_errs_die(&e);
		cfg_pending = 0;
	}
	lockp = phn_asprintf("%s/_queue/index/by_launch_table_sha256", P.runs);
	if (phn_mkdirs(lockp, 0755) == -1)
		fail(r, PHN_EXIT_TEMP, "unable to create %s: %s", lockp,
		    strerror(errno));
	free(lockp);
	lockp = phn_asprintf("%s/_queue/index/.lock", P.runs);
	if (r->code == 0 && (lfd = phn_lock_wait(lockp, 120)) == -1)
		fail(r, PHN_EXIT_TEMP, "unable to lock %s: %s", lockp,
		    strerror(errno));
	else if (r->code == 0) {
		sweep_tmp();
		commit(r, meta, &ctx, name, source);
		phn_lock_close(lfd);
	}
	free(lockp);
	if (r->dup)
		phn_errs_add(&r->msgs, "%s: %s: already ingested as batch %s "
		    "(identical bytes); use --new for another batch", PROG, name,
		    r->batch_id);
	json_object_put(meta);
	phn_lt_ctx_free(&ctx);
	return r->code;
}

static void
result_free(struct result *r)
{
	free(r->batch_id);
	json_object_put(r->job_ids);
	phn_errs_free(&r->msgs);
	memset(r, 0, sizeof(*r));
}

static void
print_msgs(struct result *r)
{
	size_t i;

	for (i = 0; i < r->msgs.n; i++)
		fprintf(stderr, "%s\n", r->msgs.v[i]);
}

static int
one(const char *file)
{
	struct result r;
	struct phn_lt_file lf;
	char *buf, *base, *abs, *c, msg[256];
	size_t len;
	const char *name = strcmp(file, "-") == 0 ? "stdin" : file;
	int code;

	memset(&r, 0, sizeof(r));
	if (strcmp(file, "-") == 0) {
		if (phn_read_file("/dev/stdin", &buf, &len, PHN_LT_MAX_BYTES) == -1)
			phn_die(errno == EFBIG ? PHN_EXIT_PERM : PHN_EXIT_TEMP,
			    "stdin: %s", errno == EFBIG ? "larger than 64 MiB" :
			    strerror(errno));
		/* An untrusted table's: the directory holding the store. */
		base = untrusted ? phn_path_dirname(P.runs) : phn_strdup(P.root);
		abs = phn_strdup("-");
	} else {
		/* A regular file only: a FIFO there must not block. */
		if (phn_lt_read(file, PHN_LT_MAX_BYTES, &lf, msg,
		    sizeof(msg)) == -1)
			phn_die(errno == EFBIG || errno == ENOENT ||
			    errno == EISDIR || errno == EACCES ||
			    errno == EINVAL ? PHN_EXIT_PERM : PHN_EXIT_TEMP,
			    "%s: %s", file, msg);
		buf = lf.buf;
		len = lf.len;
		free(lf.real);
		if ((c = getcwd(NULL, 0)) == NULL)
			phn_die(PHN_EXIT_TEMP, "unable to get the current "
			    "directory:");
		abs = phn_path_abs(c, file);
		base = phn_path_dirname(abs);
		free(c);
	}
	code = ingest(&r, buf, len, name, base, abs);
	print_msgs(&r);
	if (code == 0 && !cflag)
		printf("%s\n", r.batch_id);
	result_free(&r);
	free(buf);
	free(base);
	free(abs);
	return code;
}

/* Move a queue entry to dir, never overwriting: NAME, else NAME.STAMP.N. */
static char *
move_to(const char *from, const char *dir, const char *name)
{
	char st[PHN_STAMP_LEN], *to = phn_path_join(dir, name);
	int n;

	phn_stamp(phn_now(), st);
	for (n = 1; access(to, F_OK) == 0; n++) {
		free(to);
		to = phn_asprintf("%s/%s.%s.%d", dir, name, st, n);
	}
	if (rename(from, to) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to rename %s to %s:", from, to);
	return to;
}

static char **
list_dir(const char *dir, size_t *np)
{
	char **v = phn_dir_list(dir, np);

	if (v == NULL)
		phn_die(PHN_EXIT_TEMP, "unable to open %s:", dir);
	return v;
}

static int
queue_one(const char *q, const char *name)
{
	struct result r;
	char *inc = phn_asprintf("%s/incoming/%s", q, name);
	char *cl = phn_asprintf("%s/claimed/%s", q, name);
	char *disp = phn_asprintf("_queue/incoming/%s", name), *buf = NULL;
	char *dir, *to, *f, msg[256];
	struct phn_lt_file lf;
	size_t i;
	int code;

	memset(&r, 0, sizeof(r));
	if (rename(inc, cl) == -1) {
		code = errno == ENOENT ? -1 : PHN_EXIT_TEMP;
		if (code != -1)
			phn_warn("unable to claim %s:", inc);
		goto out;
	}
	/* A FIFO or a device is rejected, never opened: it cannot block. */
	if (phn_lt_read(cl, PHN_LT_MAX_BYTES, &lf, msg, sizeof(msg)) == -1)
		fail(&r, PHN_EXIT_PERM, "%s: %s", disp, msg);
	else {
		buf = lf.buf;
		free(lf.real);
		ingest(&r, buf, lf.len, disp, P.root, disp);
	}
	code = r.code;
	print_msgs(&r);
	if (code == PHN_EXIT_TEMP) {
		if (rename(cl, inc) == -1)
			phn_warn("unable to return %s to incoming/:", cl);
		goto out;
	}
	dir = phn_asprintf("%s/%s", q, code == 0 ? "processed" : "rejected");
	to = move_to(cl, dir, name);
	if (code == 0) {
		struct json_object *ack = json_object_new_object();
		const char *dot = strrchr(to, '.');
		const char *slash = strrchr(to, '/');
		f = dot && dot > slash + 1 && strcmp(dot, ".json") == 0 ?
		    phn_asprintf("%.*s.ack.json", (int)(dot - to), to) :
		    phn_asprintf("%s.ack.json", to);
		json_object_object_add(ack, "batch_id",
		    json_object_new_string(r.batch_id));
		json_object_object_add(ack, "launch_table_sha256",
		    json_object_new_string(r.sha));
		json_object_object_add(ack, "accepted_job_ids",
		    json_object_get(r.job_ids));
		json_object_object_add(ack, "duplicate", json_object_new_boolean(
		    r.dup));
		if (phn_json_write(f, ack, PHN_DURABLE) == -1)
			phn_warn("unable to write %s:", f);
		json_object_put(ack);
		printf("%s\n", r.batch_id);
	} else {
		struct phn_errs *m = &r.msgs;
		char *txt = phn_strdup(""), *t;
		f = phn_asprintf("%s.error.txt", to);
		for (i = 0; i < m->n; i++) {
			t = phn_asprintf("%s%s\n", txt, m->v[i]);
			free(txt);
			txt = t;
		}
		if (phn_atomic_write(f, txt, strlen(txt), PHN_DURABLE) == -1)
			phn_warn("unable to write %s:", f);
		free(txt);
		phn_warn("%s: rejected; moved to %s", disp, to);
	}
	free(f);
	free(to);
	free(dir);
out:
	result_free(&r);
	free(buf);
	free(inc);
	free(cl);
	free(disp);
	return code;
}

static int
queue(void)
{
	static const char *sub[] = { "incoming", "processed", "rejected",
	    "claimed", NULL };
	char *q = phn_path_join(P.runs, "_queue"), *d, *lp, **names;
	size_t n, i;
	int lfd, code, rejected = 0, temp = 0;

	for (i = 0; sub[i]; i++) {
		d = phn_path_join(q, sub[i]);
		if (phn_mkdirs(d, 0755) == -1)
			phn_die(PHN_EXIT_TEMP, "unable to create %s:", d);
		free(d);
	}
	lp = phn_path_join(q, ".queue.lock");
	if ((lfd = phn_lock_wait(lp, 120)) == -1)
		phn_die(PHN_EXIT_TEMP, "unable to lock %s:", lp);
	/* Holding the queue lock, anything in claimed/ is from a crashed run. */
	d = phn_path_join(q, "claimed");
	names = list_dir(d, &n);
	for (i = 0; i < n; i++) {
		char *from = phn_asprintf("%s/%s", d, names[i]);
		char *to = phn_asprintf("%s/incoming/%s", q, names[i]);
		if (access(to, F_OK) == -1 && rename(from, to) == -1)
			phn_warn("unable to return %s to incoming/:", from);
		free(from);
		free(to);
		free(names[i]);
	}
	free(names);
	free(d);
	d = phn_path_join(q, "incoming");
	names = list_dir(d, &n);
	for (i = 0; i < n; i++) {
		code = queue_one(q, names[i]);
		if (code == PHN_EXIT_PERM)
			rejected = 1;
		else if (code == PHN_EXIT_TEMP)
			temp = 1;
		free(names[i]);
	}
	free(names);
	free(d);
	phn_lock_close(lfd);
	free(lp);
	free(q);
	return temp ? PHN_EXIT_TEMP : rejected ? PHN_EXIT_NO : PHN_EXIT_OK;
}

/*
 * --untrusted (a table from phn-api, on stdin): the directories its
 * working directories may lie under, interfaces.api_mode.allowed_roots
 * (absolute, checked by config.c), by default the one holding the store.
 */
static char **
allowed_roots(void)
{
	struct json_object *v = phn_json_path_get(C.doc,
	    "interfaces.api_mode.allowed_roots");
	size_t i, n = json_object_is_type(v, json_type_array) ?
	    json_object_array_length(v) : 0;
	char **r = phn_malloc((n + 2) * sizeof(*r));

	for (i = 0; i < n; i++)
		r[i] = phn_strdup(json_object_get_string(
		    json_object_array_get_idx(v, i)));
	if (v == NULL)
		r[n++] = phn_path_dirname(P.runs);
	r[n] = NULL;
	return r;
}

int
main(int argc, char *argv[])
{
	int qflag = 0, sflag = 0, uflag = 0, code;
	const struct phn_option options[] = {
		PHN_FLAG('C', "check", &cflag),
		PHN_FLAG('N', "new", &nflag),
		PHN_FLAG('Q', "queue", &qflag),
		PHN_FLAG(0, "skip-preflight", &sflag),
		PHN_FLAG(0, "untrusted", &uflag),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage, .nargs = PHN_ARGS_ANY,
	    .mkstore = 1 };
	struct phn_errs e = { 0 };

	PROG = "phn-ingest";
	setvbuf(stdout, NULL, _IOLBF, 0);
	phn_opts_parse(&opts, &argc, &argv, options);
	if (qflag ? argc != 0 || cflag || uflag : argc != 1 ||
	    (uflag && strcmp(argv[0], "-") != 0))
		phn_usage(&opts, PHN_EXIT_PERM);
	phn_opts_paths(&opts, &P);
	/* A queued table was submitted already: no preflight. */
	preflight = !sflag && !qflag;
	/*
	 * Validate against the config (the defaults when there is none yet)
	 * and record its version only when a valid table is committed, so
	 * that an invalid table leaves nothing under runs/.
	 */
	if (phn_config_read(&P, 0, &C, &e) == -1)
		phn_errs_die(&e);
	if (uflag)
		untrusted = allowed_roots();
	code = qflag ? queue() : one(argv[0]);
	phn_config_free(&C);
	phn_paths_free(&P);
	phn_stdout_close();
	return code;
}
