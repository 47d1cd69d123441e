/*
 * phn-artifact - print one file of an attempt.
 *
 * Input: an attempt (its directory, or its ids) and a file name inside
 * it.  Output: the file's bytes, unchanged; with -o, the file is copied
 * there instead and one JSON object reports it.
 *
 * Invariant: only files inside the attempt directory are served: a name
 * with "..", an absolute name, or a symbolic link leading out of it (as
 * codex_home/auth.json does) is refused.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

static const char usage[] =
    "usage: phn-artifact [-o file] [--name name] [-r root] [--runs-root dir]\n"
    "                    [--runners-root dir] attempt_dir [name]\n"
    "       phn-artifact [-o file] [--name name] [-r root] [--runs-root dir]\n"
    "                    [--runners-root dir]\n"
    "                    -a attempt_dir | -b batch --job job -s step "
    "-R run_id [name]\n";

/* Copy fd to stdout. */
static void
cat(int fd, const char *path)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			phn_die(PHN_EXIT_TEMP, "unable to read %s:", path);
		}
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			phn_die(PHN_EXIT_TEMP, "unable to write standard output:");
	}
}

int
main(int argc, char *argv[])
{
	const char *adir, *name = NULL, *out = NULL;
	const struct phn_option options[] = {
		PHN_STR(0, "name", &name),
		PHN_STR('o', "out", &out),
		PHN_END
	};
	struct phn_opts opts = { .usage = usage, .take = PHN_TAKE_ATTEMPT,
	    .nargs = PHN_ARGS_ANY };
	struct phn_paths P;
	struct phn_errs e = { 0 };
	struct json_object *o;
	char *dir, *f, *buf, *rel;
	struct stat sb;
	size_t len;
	int fd;

	PROG = "phn-artifact";
	phn_opts_parse(&opts, &argc, &argv, options);
	adir = opts.adir;
	if (!phn_opts_attempt(&opts) && argc > 0) {
		adir = argv[0];
		argc--;
		argv++;
	}
	if (name == NULL && argc == 1)
		name = argv[0];
	else if (argc != 0)
		phn_usage(&opts, PHN_EXIT_PERM);
	if (name == NULL || (adir == NULL && !phn_opts_attempt(&opts)))
		phn_usage(&opts, PHN_EXIT_PERM);
	phn_opts_paths(&opts, &P);
	if ((dir = phn_attempt_select(&P, adir, opts.batch, opts.job,
	    opts.step, opts.run, &e)) == NULL)
		phn_errs_die(&e);
	if ((f = phn_artifact_path(dir, name)) == NULL) {
		if (errno == ENOENT)
			phn_die(PHN_EXIT_NO, "%s/%s: artifact not found", dir, name);
		if (errno == EPERM)
			phn_die(PHN_EXIT_PERM, "%s: not a file inside the attempt "
			    "directory %s", name, dir);
		phn_die(PHN_EXIT_TEMP, "%s/%s:", dir, name);
	}
	if (out != NULL) {
		if (phn_read_file(f, &buf, &len, 0) == -1)
			phn_die(errno == EISDIR ? PHN_EXIT_PERM : PHN_EXIT_TEMP,
			    "unable to read %s:", f);
		if (phn_atomic_write(out, buf, len, PHN_DURABLE) == -1)
			phn_die(PHN_EXIT_TEMP, "unable to write %s:", out);
		free(buf);
		setvbuf(stdout, NULL, _IOLBF, 0);
		o = json_object_new_object();
		rel = phn_path_rel(P.runs, dir);
		json_object_object_add(o, "ok", json_object_new_boolean(1));
		json_object_object_add(o, "attempt_dir", json_object_new_string(rel));
		json_object_object_add(o, "name", json_object_new_string(name));
		json_object_object_add(o, "out", json_object_new_string(out));
		json_object_object_add(o, "bytes", json_object_new_int64(
		    (int64_t)len));
		phn_json_emit(stdout, o);
		json_object_put(o);
		free(rel);
	} else {
		if ((fd = open(f, O_RDONLY | O_CLOEXEC)) == -1)
			phn_die(PHN_EXIT_TEMP, "unable to open %s:", f);
		if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode))
			phn_die(PHN_EXIT_PERM, "%s: is a directory", f);
		cat(fd, f);
		close(fd);
	}
	free(f);
	free(dir);
	phn_paths_free(&P);
	phn_stdout_close();
	return PHN_EXIT_OK;
}
