/*
 * config.c - the harness config, runs/_system/harness_config.json.
 *
 * Its version is "hc_" plus the first 12 hex of the SHA-256 of the
 * config's canonical form (phn_json_pretty: sorted keys, 2-space indent,
 * final newline) without the top-level keys written_at and
 * harness_config_version, so any edit makes a new version, a reformat
 * does not, and writing the version into the file (as the key
 * harness_config_version, which the original's readers expect) does not
 * change it.  The key is a record of the version, never its source: a
 * missing or stale one is ignored on read, and PHN_CONFIG_STAMP (phn-init)
 * brings it up to date.  Each version recorded is snapshotted write-once
 * under _system/harness_config_versions/.
 *
 * This file owns the file: phn_config_read() is the one reader (a
 * missing file means the defaults; PHN_CONFIG_SNAPSHOT records the
 * version) and phn_config_write() the one writer.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

static const char default_config[] =
"{"
" \"interfaces\": {"
"  \"api_mode\": {\"enabled\": false, \"auth_mode\": \"none\"},"
"  \"filesystem_queue_mode\": {\"enabled\": true}"
" },"
" \"defaults\": {"
"  \"execution_policy\": {"
"   \"sandbox\": \"workspace-write\", \"approval_policy\": \"on-request\","
"   \"skip_git_repo_check\": false, \"web_search_enabled\": false,"
"   \"capture_git_artifacts\": false, \"capture_events_jsonl\": true,"
"   \"capture_codex_thread_id\": true"
"  },"
"  \"timeouts\": {\"step_timeout_seconds\": 3600},"
"  \"retries\": {\"max_attempts\": 1},"
"  \"runner_capacity\": null,"
"  \"runner_pool\": {\"shared_filesystem\": true, \"runner_ids\": [],"
"   \"resume_base_transfer_enabled\": false},"
"  \"runner_affinity\": {\"resume_steps\": \"pin_resume_source\","
"   \"non_resume_steps\": \"none\"},"
"  \"scheduler\": {\"multi_batch\": true},"
"  \"retention_policy\": {\"keep_raw_events_days\": 30,"
"   \"keep_git_artifacts_days\": 7, \"keep_resume_bases_days\": 30,"
"   \"compress_raw_events_after_days\": 2, \"keep_reduced_state_days\": 3650,"
"   \"keep_final_outputs_days\": 3650,"
"   \"allow_delete_success_final_outputs\": false},"
"  \"scoreboard\": {\"heartbeat_interval_seconds\": 30,"
"   \"heartbeat_stale_after_seconds\": 300, \"stuck_after_seconds\": 1800,"
"   \"stuck_auto_remediation_enabled\": true},"
"  \"workspace_policy\": {\"mode\": \"shared\"},"
"  \"rate_limit\": {\"pause_seconds\": 30},"
"  \"budget\": {\"max_total_tokens\": null},"
"  \"claim_lease_seconds\": 300,"
"  \"kill_grace_seconds\": 10"
" },"
" \"limits\": {"
"  \"max_jobs_per_batch\": 10000, \"max_steps_per_job\": 100,"
"  \"per_workdir_concurrency\": {},"
"  \"max_isolated_git_root_du_bytes\": null,"
"  \"max_isolated_git_root_tracked_bytes\": null,"
"  \"min_goal_summary_words\": 151, \"max_harness_retries\": 3,"
"  \"ref_roots\": []"
" }"
"}";

struct json_object *
phn_config_default(void)
{
	struct json_object *o = json_tokener_parse(default_config);

	if (o == NULL)	/* out of memory: the text is a constant */
		phn_die(PHN_EXIT_TEMP, "out of memory");
	return o;
}

/* Split a key into lowercase word parts at non-alphanumerics and case. */
static int
secret_key(const char *k)
{
	static const char *bad[] = { "secret", "secrets", "password",
	    "passwords", "passwd", "token", "apikey", "privatekey",
	    "accesskey", NULL };
	char part[8][64];
	size_t np = 0, n = 0, i, j;
	const char *p;

	for (p = k; ; p++) {
		int split = *p == '\0' || !isalnum((unsigned char)*p) ||
		    (p > k && isupper((unsigned char)*p) &&
		    islower((unsigned char)p[-1]));
		if (split && n > 0) {
			part[np][n] = '\0';
			if (++np == 8)
				break;
			n = 0;
		}
		if (*p == '\0')
			break;
		if (isalnum((unsigned char)*p) && n < 63)
			part[np][n++] = tolower((unsigned char)*p);
	}
	for (i = 0; i < np; i++) {
		char two[128];
		for (j = 0; bad[j]; j++)
			if (strcmp(part[i], bad[j]) == 0)
				return 1;
		if (i + 1 < np) {
			snprintf(two, sizeof(two), "%.63s%.63s", part[i],
			    part[i + 1]);
			for (j = 0; bad[j]; j++)
				if (strcmp(two, bad[j]) == 0)
					return 1;
		}
	}
	return 0;
}

/* Does this name (a config key, an environment variable) look like a
 * secret's?  One rule for both. */
int
phn_secret_name(const char *name)
{
	return secret_key(name);
}

/*
 * Walk the whole tree for secret-like keys and private key material.
 * path holds the JSON path of o (grown and cut back on the way down, not
 * made afresh for every key).
 */
static void
secrets_at(struct json_object *o, struct phn_buf *path, struct phn_errs *e)
{
	size_t i, n, at = path->len;
	char idx[32];

	switch (json_object_get_type(o)) {
	case json_type_object: {	/* a block: the macro declares */
		json_object_object_foreach(o, k, v) {
			if (at > 0)
				phn_buf_put(path, ".", 1);
			phn_buf_put(path, k, strlen(k));
			if (secret_key(k))
				phn_errs_add(e, "%s: secret-like key not allowed "
				    "(keep credentials out of the runs store)",
				    path->s);
			secrets_at(v, path, e);
			path->len = at;
			path->s[at] = '\0';
		}
		break;
	}
	case json_type_array:
		n = json_object_array_length(o);
		for (i = 0; i < n; i++) {
			snprintf(idx, sizeof(idx), "[%zu]", i);
			phn_buf_put(path, idx, strlen(idx));
			secrets_at(json_object_array_get_idx(o, i), path, e);
			path->len = at;
			path->s[at] = '\0';
		}
		break;
	case json_type_string: {
		const char *s = json_object_get_string(o);
		if (strstr(s, "-----BEGIN") && strstr(s, "PRIVATE KEY-----"))
			phn_errs_add(e, "%s: private key material not allowed",
			    at > 0 ? path->s : "(root)");
		break;
	}
	default:
		break;
	}
}

static void
secrets(struct json_object *o, struct phn_errs *e)
{
	struct phn_buf path = { NULL, 0, 0 };

	phn_buf_put(&path, "", 0);
	secrets_at(o, &path, e);
	free(path.s);
}

static void
check_int(struct json_object *doc, const char *path, long long min,
    int nullok, struct phn_errs *e)
{
	struct json_object *v;
	char *parent = phn_strdup(path), *last = strrchr(parent, '.');

	*last = '\0';
	if (!json_object_object_get_ex(phn_json_path_get(doc, parent),
	    last + 1, &v)) {
		free(parent);
		return;
	}
	free(parent);
	if (v == NULL && nullok)
		return;
	if (phn_json_is_num(v) && !phn_json_is_int(v) &&
	    isfinite(json_object_get_double(v)) &&
	    json_object_get_double(v) == floor(json_object_get_double(v)))
		phn_errs_add(e, "%s: out of range: beyond 2^53 (is %s)", path,
		    json_object_to_json_string(v));
	else if (!phn_json_is_int(v) || json_object_get_int64(v) < min)
		phn_errs_add(e, "%s: must be an integer >= %lld%s (is %s)", path,
		    min, nullok ? " or null" : "", json_object_to_json_string(v));
}

/* A number >= 0, or null (off): defaults.runner_pool.max_load. */
static void
check_num(struct json_object *doc, const char *path, struct phn_errs *e)
{
	struct json_object *v;
	char *parent = phn_strdup(path), *last = strrchr(parent, '.');

	*last = '\0';
	if (json_object_object_get_ex(phn_json_path_get(doc, parent),
	    last + 1, &v) && v != NULL && (!phn_json_is_num(v) ||
	    !isfinite(json_object_get_double(v)) ||
	    json_object_get_double(v) < 0))
		phn_errs_add(e, "%s: must be a number >= 0 or null (is %s)",
		    path, json_object_to_json_string(v));
	free(parent);
}

/*
 * A list of absolute directories at path (limits.ref_roots,
 * interfaces.api_mode.allowed_roots): absent, or an array of them.
 */
static void
check_dirs(struct json_object *doc, const char *path, struct phn_errs *e)
{
	struct json_object *v = phn_json_path_get(doc, path), *x;
	size_t i, n;

	if (v == NULL)
		return;
	if (!json_object_is_type(v, json_type_array)) {
		phn_errs_add(e, "%s: must be an array of absolute directory "
		    "paths (is %s)", path, phn_json_type(v));
		return;
	}
	n = json_object_array_length(v);
	for (i = 0; i < n; i++) {
		x = json_object_array_get_idx(v, i);
		if (!json_object_is_type(x, json_type_string) ||
		    strlen(json_object_get_string(x)) !=
		    (size_t)json_object_get_string_len(x) ||
		    json_object_get_string(x)[0] != '/')
			phn_errs_add(e, "%s[%zu]: must be an absolute directory "
			    "path (is %s)", path, i,
			    json_object_to_json_string_ext(x,
			    JSON_C_TO_STRING_NOSLASHESCAPE));
	}
}

/*
 * interfaces.api_mode (phn-api(1)): enabled, auth_mode, auto_tick,
 * tick_interval_seconds, allowed_roots and the service's limits.
 */
static void
check_api(struct json_object *doc, struct phn_errs *e)
{
	static const char *ints[] = { "max_body_bytes", "max_connections",
	    "max_connections_per_ip", "connection_timeout_seconds",
	    "max_pending_requests", NULL };
	struct json_object *am = phn_json_path_get(doc, "interfaces.api_mode"),
	    *v;
	const char *s;
	char *path;
	size_t i;

	if (am == NULL)
		return;
	if (!json_object_is_type(am, json_type_object)) {
		phn_errs_add(e, "interfaces.api_mode: must be an object (is %s)",
		    phn_json_type(am));
		return;
	}
	if ((v = phn_json_get(am, "enabled")) != NULL &&
	    !json_object_is_type(v, json_type_boolean))
		phn_errs_add(e, "interfaces.api_mode.enabled: must be true or "
		    "false (is %s)", phn_json_type(v));
	if ((v = phn_json_get(am, "auto_tick")) != NULL &&
	    !json_object_is_type(v, json_type_boolean))
		phn_errs_add(e, "interfaces.api_mode.auto_tick: must be true or "
		    "false (is %s)", phn_json_type(v));
	if (json_object_object_get_ex(am, "auth_mode", &v) &&
	    (!json_object_is_type(v, json_type_string) ||
	    ((s = json_object_get_string(v)), strcmp(s, "none") != 0 &&
	    strcmp(s, "local_trust") != 0 && strcmp(s, "token") != 0)))
		phn_errs_add(e, "interfaces.api_mode.auth_mode: must be \"none\", "
		    "\"local_trust\" or \"token\" (is %s)",
		    json_object_to_json_string(v));
	if (json_object_object_get_ex(am, "tick_interval_seconds", &v) &&
	    (!phn_json_is_num(v) || json_object_get_double(v) < 0.05 ||
	    json_object_get_double(v) > 86400))
		phn_errs_add(e, "interfaces.api_mode.tick_interval_seconds: "
		    "must be a number of seconds in [0.05, 86400] (is %s)",
		    json_object_to_json_string(v));
	for (i = 0; ints[i]; i++) {
		path = phn_asprintf("interfaces.api_mode.%s", ints[i]);
		check_int(doc, path, i == 4 ? 0 : 1, 0, e);
		free(path);
	}
	if ((v = phn_json_get(am, "max_body_bytes")) != NULL &&
	    phn_json_is_int(v) && json_object_get_int64(v) > PHN_LT_MAX_BYTES)
		phn_errs_add(e, "interfaces.api_mode.max_body_bytes: at most "
		    "%ld (64 MiB, the largest Launch Table)", PHN_LT_MAX_BYTES);
	check_dirs(doc, "interfaces.api_mode.allowed_roots", e);
}

/*
 * defaults.scoreboard.auto_remediation (remedy.c reads it) and the
 * legacy switch stuck_auto_remediation_enabled.
 */
static void
check_remedy(struct json_object *doc, struct phn_errs *e)
{
	static const char *kinds[] = { "stuck", "needs_attention", "failed",
	    NULL };
	struct json_object *sb = phn_json_path_get(doc, "defaults.scoreboard");
	struct json_object *ar, *v, *k;
	const char *P = "defaults.scoreboard.auto_remediation";
	size_t i, n;
	int j, ok;

	if (json_object_object_get_ex(sb, "stuck_auto_remediation_enabled",
	    &v) && !json_object_is_type(v, json_type_boolean))
		phn_errs_add(e, "defaults.scoreboard.stuck_auto_remediation_"
		    "enabled: must be true or false (is %s)", phn_json_type(v));
	if (!json_object_object_get_ex(sb, "auto_remediation", &ar) ||
	    ar == NULL)
		return;
	if (!json_object_is_type(ar, json_type_object)) {
		phn_errs_add(e, "%s: must be an object (is %s)", P,
		    phn_json_type(ar));
		return;
	}
	json_object_object_foreach(ar, key, val) {
		(void)val;
		if (strcmp(key, "enabled") && strcmp(key, "kinds") &&
		    strcmp(key, "action") && strcmp(key, "max_actions_per_tick")
		    && strcmp(key, "cancel_grace_seconds") &&
		    strcmp(key, "max_applies_per_step"))
			phn_errs_add(e, "%s.%s: unknown key (known: enabled, "
			    "kinds, action, max_actions_per_tick, "
			    "cancel_grace_seconds, max_applies_per_step)", P, key);
	}
	if (json_object_object_get_ex(ar, "enabled", &v) &&
	    !json_object_is_type(v, json_type_boolean))
		phn_errs_add(e, "%s.enabled: must be true or false (is %s)", P,
		    phn_json_type(v));
	if (json_object_object_get_ex(ar, "kinds", &v)) {
		n = json_object_is_type(v, json_type_array) ?
		    json_object_array_length(v) : 0;
		if (n == 0)
			phn_errs_add(e, "%s.kinds: must be a non-empty array of "
			    "\"stuck\", \"needs_attention\", \"failed\"", P);
		for (i = 0; i < n; i++) {
			k = json_object_array_get_idx(v, i);
			for (j = 0, ok = 0; kinds[j] && !ok; j++)
				ok = json_object_is_type(k, json_type_string) &&
				    strcmp(json_object_get_string(k),
				    kinds[j]) == 0;
			if (!ok)
				phn_errs_add(e, "%s.kinds[%zu]: must be \"stuck\", "
				    "\"needs_attention\" or \"failed\" (is %s)", P,
				    i, json_object_to_json_string(k));
		}
	}
	if (json_object_object_get_ex(ar, "action", &v) &&
	    (!json_object_is_type(v, json_type_string) ||
	    (strcmp(json_object_get_string(v), "cancel_and_force_retry") &&
	    strcmp(json_object_get_string(v), "force_retry"))))
		phn_errs_add(e, "%s.action: must be \"cancel_and_force_retry\" "
		    "or \"force_retry\" (is %s)", P,
		    json_object_to_json_string(v));
	check_int(doc, "defaults.scoreboard.auto_remediation."
	    "max_actions_per_tick", 1, 0, e);
	check_int(doc, "defaults.scoreboard.auto_remediation."
	    "max_applies_per_step", 1, 0, e);
	if (json_object_object_get_ex(ar, "cancel_grace_seconds", &v) &&
	    (!phn_json_is_num(v) || !(json_object_get_double(v) >= 0) ||
	    json_object_get_double(v) > 86400))
		phn_errs_add(e, "%s.cancel_grace_seconds: must be a number of "
		    "seconds in [0, 86400] (is %s)", P,
		    json_object_to_json_string(v));
}

/* defaults.budget: the batches' token budget (budget.c, phn(5)). */
static void
check_budget(struct json_object *doc, struct phn_errs *e)
{
	struct json_object *b = phn_json_path_get(doc, "defaults.budget"), *v;

	if (b == NULL)
		return;
	if (!json_object_is_type(b, json_type_object)) {
		phn_errs_add(e, "defaults.budget: must be an object (is %s)",
		    phn_json_type(b));
		return;
	}
	json_object_object_foreach(b, key, val) {
		(void)val;
		if (strcmp(key, "max_total_tokens") &&
		    strcmp(key, "on_exhausted"))
			phn_errs_add(e, "defaults.budget.%s: unknown key (known: "
			    "max_total_tokens, on_exhausted)", key);
	}
	check_int(doc, "defaults.budget.max_total_tokens", 1, 1, e);
	if (json_object_object_get_ex(b, "on_exhausted", &v) &&
	    (!json_object_is_type(v, json_type_string) ||
	    (strcmp(json_object_get_string(v), "wait") &&
	    strcmp(json_object_get_string(v), "cancel"))))
		phn_errs_add(e, "defaults.budget.on_exhausted: must be \"wait\" "
		    "or \"cancel\" (is %s)", json_object_to_json_string(v));
}

static int
check(struct json_object *doc, struct phn_errs *e)
{
	static const char *objs[] = { "interfaces", "defaults", "limits", NULL };
	struct json_object *v, *iv, *sv, *pw;
	size_t before = e->n;
	int i;

	if (!json_object_is_type(doc, json_type_object)) {
		phn_errs_add(e, "(root): must be an object");
		return -1;
	}
	for (i = 0; objs[i]; i++)
		if (json_object_object_get_ex(doc, objs[i], &v) &&
		    !json_object_is_type(v, json_type_object))
			phn_errs_add(e, "%s: must be an object", objs[i]);
	if (json_object_object_get_ex(doc, "harness_config_version", &v) &&
	    !json_object_is_type(v, json_type_string))
		phn_errs_add(e, "harness_config_version: must be a string "
		    "(is %s)", phn_json_type(v));
	if (e->n > before)
		return -1;
	check_int(doc, "defaults.scoreboard.heartbeat_interval_seconds", 1, 0, e);
	check_int(doc, "defaults.scoreboard.heartbeat_stale_after_seconds", 1, 0,
	    e);
	check_int(doc, "defaults.scoreboard.stuck_after_seconds", 1, 0, e);
	check_int(doc, "defaults.claim_lease_seconds", 1, 0, e);
	check_int(doc, "defaults.kill_grace_seconds", 0, 0, e);
	if ((v = phn_json_path_get(doc, "defaults.rate_limit")) != NULL &&
	    !json_object_is_type(v, json_type_object))
		phn_errs_add(e, "defaults.rate_limit: must be an object "
		    "{\"pause_seconds\": N} (is %s)", phn_json_type(v));
	check_int(doc, "defaults.rate_limit.pause_seconds", 1, 0, e);
	check_int(doc, "defaults.runner_capacity", 1, 1, e);
	check_int(doc, "defaults.runner_pool.min_free_memory_bytes", 0, 1, e);
	check_num(doc, "defaults.runner_pool.max_load", e);
	check_int(doc, "limits.max_jobs_per_batch", 1, 0, e);
	check_int(doc, "limits.max_steps_per_job", 1, 0, e);
	check_int(doc, "limits.min_goal_summary_words", 0, 0, e);
	check_int(doc, "limits.max_harness_retries", 0, 0, e);
	check_int(doc, "limits.max_isolated_git_root_du_bytes", 0, 1, e);
	check_int(doc, "limits.max_isolated_git_root_tracked_bytes", 0, 1, e);
	iv = phn_json_path_get(doc, "defaults.scoreboard.heartbeat_interval_seconds");
	sv = phn_json_path_get(doc,
	    "defaults.scoreboard.heartbeat_stale_after_seconds");
	if (phn_json_is_int(iv) && phn_json_is_int(sv) &&
	    json_object_get_int64(sv) <= 2 * json_object_get_int64(iv))
		phn_errs_add(e, "defaults.scoreboard.heartbeat_stale_after_seconds:"
		    " must exceed twice heartbeat_interval_seconds (%lld)",
		    (long long)json_object_get_int64(iv));
	pw = phn_json_path_get(doc, "limits.per_workdir_concurrency");
	if (pw != NULL && !json_object_is_type(pw, json_type_object))
		phn_errs_add(e, "limits.per_workdir_concurrency: must be an object "
		    "of {absolute workdir: N}");
	else if (pw != NULL) {
		json_object_object_foreach(pw, k, n) {
			if (k[0] != '/')
				phn_errs_add(e, "limits.per_workdir_concurrency.%s: "
				    "key must be an absolute directory", k);
			if (!phn_json_is_int(n) || json_object_get_int64(n) < 1)
				phn_errs_add(e, "limits.per_workdir_concurrency.%s: "
				    "must be an integer >= 1", k);
		}
	}
	check_dirs(doc, "limits.ref_roots", e);
	check_api(doc, e);
	check_remedy(doc, e);
	check_budget(doc, e);
	secrets(doc, e);
	return e->n > before ? -1 : 0;
}

/* The version of doc: see the top of this file. */
static void
version(struct json_object *doc, char out[32])
{
	struct json_object *c = NULL;
	char hex[PHN_SHA256_HEX], *s;

	json_object_deep_copy(doc, &c, NULL);
	json_object_object_del(c, "written_at");
	json_object_object_del(c, "harness_config_version");
	s = phn_json_pretty(c);
	phn_sha256_hex(s, strlen(s), hex);
	snprintf(out, 32, "hc_%.12s", hex);
	free(s);
	json_object_put(c);
}

/*
 * Write the default config (with written_at and harness_config_version)
 * to runs/_system: write-once,
 * or with force replacing what is there.  Returns 1 written, 0 one was
 * there already, -1 on error (e: temporary).
 */
int
phn_config_write(const struct phn_paths *p, int force, struct phn_errs *e)
{
	char *f = phn_path_join(p->runs, "_system/harness_config.json");
	char iso[PHN_ISO_LEN];
	struct json_object *doc = phn_config_default();
	char v[32];
	int r;

	phn_iso(phn_now(), iso);
	json_object_object_add(doc, "written_at", json_object_new_string(iso));
	version(doc, v);
	json_object_object_add(doc, "harness_config_version",
	    json_object_new_string(v));
	r = phn_json_write(f, doc, PHN_DURABLE | PHN_MKDIR |
	    (force ? 0 : PHN_ONCE));
	if (r == 0)
		r = 1;
	else if (errno == EEXIST && !force)
		r = 0;
	else
		phn_errs_fail(e, 1, "unable to write %s:", f);
	json_object_put(doc);
	free(f);
	return r;
}

/* The version's write-once copy, _system/harness_config_versions/V.json. */
static int
snapshot(const struct phn_paths *p, struct phn_config *cfg,
    struct phn_errs *e)
{
	char *snap = phn_asprintf("%s/_system/harness_config_versions/%s.json",
	    p->runs, cfg->version);
	int r = 0;

	if (access(snap, F_OK) == -1 && phn_json_write(snap, cfg->doc,
	    PHN_DURABLE | PHN_ONCE | PHN_MKDIR) == -1 && errno != EEXIST)
		r = phn_errs_fail(e, 1, "unable to write %s:", snap);
	free(snap);
	return r;
}

/*
 * cfg->doc gets the right harness_config_version; with PHN_CONFIG_STAMP
 * the file too, when its key was missing or stale.  0, or -1 (e: temp).
 */
static int
stamp(struct phn_config *cfg, int flags, struct phn_errs *e)
{
	const char *had = phn_jstr(cfg->doc, "harness_config_version");

	if (had != NULL && strcmp(had, cfg->version) == 0)
		return 0;
	json_object_object_add(cfg->doc, "harness_config_version",
	    json_object_new_string(cfg->version));
	if ((flags & PHN_CONFIG_STAMP) && phn_json_write(cfg->path, cfg->doc,
	    PHN_DURABLE) == -1)
		return phn_errs_fail(e, 1, "unable to write %s:", cfg->path);
	return 0;
}

/*
 * Read the harness config into cfg.  The one rule for a missing file:
 * the config is the defaults (cfg->missing is set).  With
 * PHN_CONFIG_SNAPSHOT the version is recorded: a missing file is first
 * written with the defaults, and the version's snapshot is written too.
 * With PHN_CONFIG_STAMP a file whose harness_config_version is missing
 * or stale is rewritten with the right one (same content otherwise).
 * Without them nothing is written.  cfg->doc always carries the right
 * harness_config_version.  Returns 0, or -1 with every problem in
 * e (temp when the file could not be read or written).
 */
int
phn_config_read(const struct phn_paths *p, int flags, struct phn_config *cfg,
    struct phn_errs *e)
{
	struct phn_errs ce = { 0 };
	char msg[512], *buf;
	size_t len, i;
	int tries = 0;

	memset(cfg, 0, sizeof(*cfg));
	cfg->path = phn_path_join(p->runs, "_system/harness_config.json");
again:
	if (phn_read_file(cfg->path, &buf, &len, PHN_JSON_MAXSZ) == -1) {
		if (errno == EFBIG)
			return phn_errs_fail(e, 0, "%s: file too large",
			    cfg->path);
		if (errno != ENOENT)
			return phn_errs_fail(e, 1, "unable to read %s:",
			    cfg->path);
		if ((flags & PHN_CONFIG_SNAPSHOT) && tries++ == 0) {
			if (phn_config_write(p, 0, e) == -1)
				return -1;
			goto again;
		}
		cfg->missing = 1;
		cfg->doc = phn_config_default();
	} else {
		cfg->doc = phn_json_parse(buf, len, cfg->path, msg, sizeof(msg));
		free(buf);
		if (cfg->doc == NULL)
			return phn_errs_fail(e, 0, "%s", msg);
		if (check(cfg->doc, &ce) == -1) {
			for (i = 0; i < ce.n; i++)
				phn_errs_add(e, "%s: %s", cfg->path, ce.v[i]);
			phn_errs_free(&ce);
			json_object_put(cfg->doc);
			cfg->doc = NULL;
			return phn_errs_fail(e, 0, "%s: invalid harness config; "
			    "fix it, or recreate it with phn-init --force",
			    cfg->path);
		}
	}
	version(cfg->doc, cfg->version);
	if (stamp(cfg, cfg->missing ? 0 : flags, e) == -1)
		return -1;
	if ((flags & PHN_CONFIG_SNAPSHOT) && snapshot(p, cfg, e) == -1)
		return -1;
	return 0;
}

void
phn_config_free(struct phn_config *cfg)
{
	json_object_put(cfg->doc);
	free(cfg->path);
	cfg->doc = NULL;
	cfg->path = NULL;
}

/* The integer or number at path ("defaults.x.y"), else dflt. */
long long
phn_config_int(const struct phn_config *cfg, const char *path, long long dflt)
{
	struct json_object *v = phn_json_path_get(cfg->doc, path);

	return phn_json_is_int(v) ? (long long)json_object_get_int64(v) : dflt;
}

double
phn_config_num(const struct phn_config *cfg, const char *path, double dflt)
{
	struct json_object *v = phn_json_path_get(cfg->doc, path);

	return phn_json_is_num(v) ? json_object_get_double(v) : dflt;
}
