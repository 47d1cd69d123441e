/*
 * codex.c - the Codex CLI from phn-spawn's side: finding the binary, the
 * exact argv of SPEC 6.1 for `codex exec` and `codex exec resume`, its
 * version (`codex --version`, cached per binary), the --strict-config
 * probe for a web search key, and copying a tree to seed a CODEX_HOME.
 *
 * exec:   codex exec -C WORKDIR --color never --output-schema SCHEMA
 *         [-m MODEL] [-c model_reasoning_effort="E"] [-s SANDBOX]
 *         [--add-dir D]... [-c approval_policy="A"]
 *         [--skip-git-repo-check] [-c WEB_SEARCH_KEY] --json -o FINAL -
 * resume: codex exec resume --json -o FINAL --output-schema SCHEMA [-m MODEL]
 *         [-c model_reasoning_effort="E"] [-c sandbox_mode="S"]
 *         [-c sandbox_workspace_write.writable_roots=[D,...]]
 *         [-c approval_policy="A"] [--skip-git-repo-check]
 *         [-c WEB_SEARCH_KEY] THREAD_ID -
 * resume has no -C, -s, --color or --add-dir: it runs with WORKDIR as its
 * cwd, and the sandbox and extra roots go as config keys.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

static void
argv_add(struct phn_run *r, const char *s)
{
	r->argv = phn_realloc(r->argv, (r->argc + 2) * sizeof(*r->argv));
	r->argv[r->argc++] = phn_strdup(s);
	r->argv[r->argc] = NULL;
}

/* -c KEY=VALUE with VALUE a TOML basic string (JSON escapes are TOML's). */
static void
argv_cfg(struct phn_run *r, const char *key, const char *val)
{
	struct json_object *s = json_object_new_string(val);
	char *kv = phn_asprintf("%s=%s", key, json_object_to_json_string_ext(s,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

	argv_add(r, "-c");
	argv_add(r, kv);
	free(kv);
	json_object_put(s);
}

/* POSIX sh quoting: safe words bare, others in '...' ("'" as '"'"'). */
char *
phn_shquote(char *const argv[])
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-";
	size_t cap = 64, len = 0, i;
	char *out = phn_malloc(cap);
	const char *s;

	out[0] = '\0';
	for (i = 0; argv[i]; i++) {
		char *q;
		s = argv[i];
		if (*s != '\0' && strspn(s, safe) == strlen(s))
			q = phn_strdup(s);
		else {
			size_t n = 3;
			const char *c;
			char *d;
			for (c = s; *c; c++)
				n += *c == '\'' ? 5 : 1;
			q = d = phn_malloc(n);
			*d++ = '\'';
			for (c = s; *c; c++) {
				if (*c == '\'') {
					memcpy(d, "'\"'\"'", 5);
					d += 5;
				} else
					*d++ = *c;
			}
			*d++ = '\'';
			*d = '\0';
		}
		if (len + strlen(q) + 2 > cap) {
			cap = (len + strlen(q) + 2) * 2;
			out = phn_realloc(out, cap);
		}
		if (i > 0)
			out[len++] = ' ';
		memcpy(out + len, q, strlen(q) + 1);
		len += strlen(q);
		free(q);
	}
	return out;
}

/* The codex binary: $PHN_CODEX, else codex on PATH.  code: 126 or 127. */
char *
phn_codex_find(int *code, char **why)
{
	const char *env = getenv("PHN_CODEX"), *name = env && *env ? env :
	    "codex", *path = getenv("PATH");
	char *c, *f = NULL, *dirs, *s, *save = NULL;
	struct stat st;

	*why = NULL;
	if (strchr(name, '/') != NULL) {
		c = getcwd(NULL, 0);
		f = phn_path_abs(c ? c : "/", name);
		free(c);
	} else {
		dirs = phn_strdup(path && *path ? path : "/usr/bin:/bin");
		for (s = strtok_r(dirs, ":", &save); s; s = strtok_r(NULL, ":",
		    &save)) {
			char *t = phn_path_join(*s ? s : ".", name);
			if (access(t, F_OK) == 0) {
				if (f == NULL)
					f = t;
				else
					free(t);
				if (access(f, X_OK) == 0 &&
				    stat(f, &st) == 0 && S_ISREG(st.st_mode))
					break;
				continue;
			}
			free(t);
		}
		free(dirs);
		if (f == NULL) {
			*code = 127;
			*why = phn_asprintf("%s: not found on PATH (install it, "
			    "or set PHN_CODEX to its path)", name);
			return NULL;
		}
	}
	if (stat(f, &st) == -1) {
		*code = 127;
		*why = phn_asprintf("%s%s: %s", f, env && *env ?
		    " (from PHN_CODEX)" : "", strerror(errno));
		free(f);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || access(f, X_OK) == -1) {
		*code = 126;
		*why = phn_asprintf("%s: not an executable file", f);
		free(f);
		return NULL;
	}
	return f;
}

/* A codex probe: in its own group, a scratch CODEX_HOME, 30 s at most. */
static void
probe_opts(struct phn_proc *o, char **argv, const char *cwd, char **env,
    size_t max)
{
	o->argv = argv;
	o->cwd = cwd;
	o->env = env;
	o->timeout = 30;
	o->max = max;
	o->flags = PHN_PROC_GROUP;
}

/*
 * The version of the codex binary at path (absolute): the last word of
 * the first line `codex --version` prints ("codex-cli 0.171.0" gives
 * 0.171.0, the form codex records as cli_version), or NULL when it fails.
 * Asked once per binary, identified by path, size and mtime, in the
 * cache runs/_system/codex_versions.json (replaced atomically; losing it
 * costs one run more), so 1000 attempts do not run it 1000 times.  A
 * failure is cached too (as null); a timeout or a signal is not.
 * scratch: a directory made for the run, its CODEX_HOME and cwd (even
 * --version writes there), and removed after.
 */
char *
phn_codex_version(const struct phn_paths *p, const char *path,
    const char *scratch)
{
	char *cf = phn_system_path(p, "codex_versions.json"), *mt, *res = NULL;
	char msg[256], iso[PHN_ISO_LEN], *s, *e;
	char *argv[] = { (char *)path, "--version", NULL };
	char *env[] = { phn_asprintf("CODEX_HOME=%s", scratch), NULL };
	struct phn_proc o = { 0 };
	struct phn_buf out = { 0 };
	struct json_object *doc, *ent;
	struct stat st;
	int rc;

	if (stat(path, &st) == -1) {
		free(cf);
		free(env[0]);
		return NULL;
	}
	mt = phn_asprintf("%lld.%09ld", (long long)st.st_mtim.tv_sec,
	    (long)st.st_mtim.tv_nsec);
	doc = phn_json_load(cf, msg, sizeof(msg));
	if (!json_object_is_type(doc, json_type_object)) {
		json_object_put(doc);
		doc = json_object_new_object();
	}
	ent = phn_json_get(doc, path);
	if (phn_jstr(ent, "mtime") && strcmp(phn_jstr(ent, "mtime"), mt) == 0 &&
	    phn_json_int(ent, "size", -1) == (long long)st.st_size) {
		if (phn_jstr(ent, "version"))
			res = phn_strdup(phn_jstr(ent, "version"));
		goto out;
	}
	probe_opts(&o, argv, scratch, env, 64 << 10);
	if (phn_mkdirs(scratch, 0700) == -1)
		goto out;
	rc = phn_proc_run(&o, &out, NULL);
	phn_rmtree(scratch);
	if (rc == -1 || rc >= 128)
		goto out;
	if (rc == 0) {
		/* The first line's last word. */
		out.s[strcspn(out.s, "\r\n")] = '\0';
		for (e = out.s + strlen(out.s); e > out.s && (e[-1] == ' ' ||
		    e[-1] == '\t'); e--)
			;
		*e = '\0';
		for (s = e; s > out.s && s[-1] != ' ' && s[-1] != '\t'; s--)
			;
		if (*s != '\0')
			res = phn_strdup(s);
	}
	ent = json_object_new_object();
	json_object_object_add(ent, "mtime", json_object_new_string(mt));
	json_object_object_add(ent, "size", json_object_new_int64(
	    (int64_t)st.st_size));
	json_object_object_add(ent, "version", res ?
	    json_object_new_string(res) : NULL);
	phn_iso(phn_now(), iso);
	json_object_object_add(ent, "checked_at", json_object_new_string(iso));
	json_object_object_add(doc, path, ent);
	(void)phn_json_write(cf, doc, PHN_MKDIR);
out:
	free(out.s);
	json_object_put(doc);
	free(mt);
	free(cf);
	free(env[0]);
	return res;
}

/*
 * web_search_enabled: the first of these overrides that the installed
 * codex accepts under --strict-config (a config error is reported before
 * it reads the empty prompt).
 */
const char *
phn_codex_web_search(struct phn_run *r)
{
	static const char *cands[] = { "web_search=\"live\"",
	    "tools.web_search=true", "features.web_search_request=true", NULL };
	char *probe = phn_path_join(r->a.dir, "tmp/web_search_probe");
	struct phn_proc o = { 0 };
	int i, st;

	phn_mkdirs(probe, 0700);
	for (i = 0; cands[i]; i++) {
		char *argv[] = { r->codex, "exec", "--strict-config",
		    "--ignore-user-config", "--skip-git-repo-check", "-C",
		    probe, "-c", (char *)cands[i], "-", NULL };
		char *env[] = { phn_asprintf("CODEX_HOME=%s", probe), NULL };
		struct phn_buf err = { 0 };
		probe_opts(&o, argv, probe, env, 64 << 20);
		st = phn_proc_run(&o, NULL, &err);
		free(env[0]);
		if (st != -1 && strstr(err.s, "unknown configuration field") ==
		    NULL && strstr(err.s, "rror loading config") == NULL) {
			free(err.s);
			phn_rmtree(probe);
			free(probe);
			return cands[i];
		}
		free(err.s);
	}
	phn_rmtree(probe);
	free(probe);
	return NULL;
}

void
phn_codex_argv(struct phn_run *r, const char *ws)
{
	const char *model = phn_jstr(r->policy, "model");
	const char *effort = phn_jstr(r->policy, "model_reasoning_effort");
	const char *sandbox = phn_jstr(r->policy, "sandbox");
	const char *appr = phn_jstr(r->policy, "approval_policy");
	struct json_object *dirs = phn_json_get(r->policy, "add_dirs"), *roots;
	char *final = phn_path_join(r->a.dir, "final.txt"), *d;
	size_t i, n;

	if (dirs == NULL)
		dirs = phn_json_get(r->policy, "add_dir");
	argv_add(r, r->codex);
	argv_add(r, "exec");
	if (r->thread_want != NULL) {
		argv_add(r, "resume");
		argv_add(r, "--json");
		argv_add(r, "-o");
		argv_add(r, final);
		argv_add(r, "--output-schema");
		argv_add(r, r->schema_path);
	} else {
		argv_add(r, "-C");
		argv_add(r, r->workdir);
		argv_add(r, "--color");
		argv_add(r, "never");
		argv_add(r, "--output-schema");
		argv_add(r, r->schema_path);
	}
	if (model) {
		argv_add(r, "-m");
		argv_add(r, model);
	}
	if (effort)
		argv_cfg(r, "model_reasoning_effort", effort);
	if (sandbox && r->thread_want == NULL) {
		argv_add(r, "-s");
		argv_add(r, sandbox);
	} else if (sandbox)
		argv_cfg(r, "sandbox_mode", sandbox);
	n = json_object_is_type(dirs, json_type_array) ?
	    json_object_array_length(dirs) : dirs ? 1 : 0;
	roots = json_object_new_array();
	for (i = 0; i < n; i++) {
		struct json_object *x = json_object_is_type(dirs,
		    json_type_array) ? json_object_array_get_idx(dirs, i) : dirs;
		if (!json_object_is_type(x, json_type_string) ||
		    json_object_get_string_len(x) == 0)
			continue;
		d = phn_path_abs(phn_jstr(r->job, "job_workdir") ?
		    phn_jstr(r->job, "job_workdir") : r->workdir,
		    json_object_get_string(x));
		if (r->thread_want == NULL) {
			argv_add(r, "--add-dir");
			argv_add(r, d);
		} else
			json_object_array_add(roots, json_object_new_string(d));
		free(d);
	}
	if (json_object_array_length(roots) > 0) {
		/* resume has no --add-dir: the config key behind it. */
		d = phn_asprintf("sandbox_workspace_write.writable_roots=%s",
		    json_object_to_json_string_ext(roots, JSON_C_TO_STRING_PLAIN |
		    JSON_C_TO_STRING_NOSLASHESCAPE));
		argv_add(r, "-c");
		argv_add(r, d);
		free(d);
	}
	json_object_put(roots);
	if (appr)
		argv_cfg(r, "approval_policy", appr);
	if (phn_json_bool(r->policy, "skip_git_repo_check", 0))
		argv_add(r, "--skip-git-repo-check");
	if (ws) {
		argv_add(r, "-c");
		argv_add(r, ws);
	}
	if (r->thread_want != NULL)
		argv_add(r, r->thread_want);
	else {
		argv_add(r, "--json");
		argv_add(r, "-o");
		argv_add(r, final);
	}
	argv_add(r, "-");
	free(final);
}

