/*
 * path.c - where things are: the root, the runs and runners roots, and
 * paths stored relative to the runs root (so a store can be moved).
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

#ifndef PHN_DATADIR
#define PHN_DATADIR "/usr/local/share/phn"
#endif

/* Lexically clean an absolute or relative path: "//", ".", "..". */
static char *
path_norm(const char *path)
{
	size_t n = strlen(path), ns = 0, i;
	char *tmp = phn_strdup(path), *out = phn_malloc(n + 2), *save = NULL;
	char **seg = phn_malloc((n / 2 + 2) * sizeof(*seg)), *s;
	int abs = path[0] == '/';

	for (s = strtok_r(tmp, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (strcmp(s, ".") == 0)
			continue;
		if (strcmp(s, "..") == 0) {
			if (ns > 0 && strcmp(seg[ns - 1], "..") != 0)
				ns--;
			else if (!abs)
				seg[ns++] = s;
			continue;
		}
		seg[ns++] = s;
	}
	out[0] = '\0';
	if (abs)
		strcat(out, "/");
	for (i = 0; i < ns; i++) {
		if (i > 0)
			strcat(out, "/");
		strcat(out, seg[i]);
	}
	if (out[0] == '\0')
		strcpy(out, ".");
	free(seg);
	free(tmp);
	return out;
}

char *
phn_path_join(const char *a, const char *b)
{
	size_t n = strlen(a);

	if (n > 0 && a[n - 1] == '/')
		return phn_asprintf("%s%s", a, b);
	return phn_asprintf("%s/%s", a, b);
}

/* p made absolute against base (base itself absolute), then cleaned. */
char *
phn_path_abs(const char *base, const char *p)
{
	char *j, *r;

	if (p[0] == '/')
		return path_norm(p);
	j = phn_path_join(base, p);
	r = path_norm(j);
	free(j);
	return r;
}

char *
phn_path_dirname(const char *p)
{
	const char *s = strrchr(p, '/');

	if (s == NULL)
		return phn_strdup(".");
	if (s == p)
		return phn_strdup("/");
	return phn_asprintf("%.*s", (int)(s - p), p);
}

/* abs relative to root when it lies below it; else abs unchanged. */
char *
phn_path_rel(const char *root, const char *abs)
{
	size_t n = strlen(root);

	while (n > 1 && root[n - 1] == '/')
		n--;
	if (strncmp(abs, root, n) == 0 && abs[n] == '/')
		return phn_strdup(abs + n + 1);
	if (strncmp(abs, root, n) == 0 && abs[n] == '\0')
		return phn_strdup(".");
	return phn_strdup(abs);
}

/*
 * The roots, absolute: root (else $PHN_ROOT, else the current
 * directory), runs (else ROOT/runs), runners (else ROOT/runners).  0, or
 * -1 with errno when the current directory cannot be had (then p is
 * empty).
 */
int
phn_paths_init(struct phn_paths *p, const char *root, const char *runs,
    const char *runners)
{
	char *c = getcwd(NULL, 0);

	memset(p, 0, sizeof(*p));
	if (c == NULL)
		return -1;

	if (root == NULL || *root == '\0')
		root = getenv("PHN_ROOT");
	if (root == NULL || *root == '\0')
		root = ".";
	p->root = phn_path_abs(c, root);
	p->runs = runs && *runs ? phn_path_abs(c, runs) :
	    phn_path_join(p->root, "runs");
	p->runners = runners && *runners ? phn_path_abs(c, runners) :
	    phn_path_join(p->root, "runners");
	free(c);
	return 0;
}

void
phn_paths_free(struct phn_paths *p)
{
	free(p->root);
	free(p->runs);
	free(p->runners);
}

/*
 * Find an installed data file: $PHN_DATADIR, the compiled-in data
 * directory, then the build tree (the binary's ../ directory), so that
 * the toolkit works both installed and from a checkout.
 */
char *
phn_datadir_file(const char *name)
{
	char exe[PATH_MAX], *d, *dd, *f;
	const char *env = getenv("PHN_DATADIR");
	ssize_t n;

	if (env && *env) {
		f = phn_path_join(env, name);
		if (access(f, R_OK) == 0)
			return f;
		free(f);
	}
	f = phn_path_join(PHN_DATADIR, name);
	if (access(f, R_OK) == 0)
		return f;
	free(f);
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
		exe[n] = '\0';
		d = phn_path_dirname(exe);
		dd = phn_path_dirname(d);
		f = phn_path_join(dd, name);
		free(d);
		free(dd);
		if (access(f, R_OK) == 0)
			return f;
		free(f);
	}
	return NULL;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of a directory, without dotfiles; NULL + errno on error. */
char **
phn_dir_list(const char *dir, size_t *np)
{
	DIR *d;
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;

	*np = 0;
	if ((d = opendir(dir)) == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		v = phn_realloc(v, (n + 2) * sizeof(*v));
		v[n++] = phn_strdup(de->d_name);
	}
	closedir(d);
	if (v == NULL)
		v = phn_malloc(sizeof(*v));
	v[n] = NULL;
	qsort(v, n, sizeof(*v), name_cmp);
	*np = n;
	return v;
}

void
phn_dir_list_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}
