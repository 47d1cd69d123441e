/*
 * runner.c - the runner pool: runners/R/health.json (phn(5)), the
 * pressure a runner admits work under, and where a process runs under
 * Slurm.
 *
 * Every claimer (phn-claim, so every phn tick runner and every phn-slurm
 * task) registers its runner with phn_runner_open, keeps health.json
 * current with phn_runner_beat (when what it reports changes, at most
 * every BEAT_MIN seconds, and at least every heartbeat interval while
 * idle), asks phn_runner_admit before each claim, and marks the runner
 * stopped with phn_runner_close on its way out.  health.json is derived:
 * replaced atomically, never fsynced.  Readers (phn-score, liveness.c)
 * read it with phn_runner_health.
 */
#include <sys/statvfs.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "claim.h"

#define BEAT_MIN	0.5	/* seconds between two writes, at least */

/* The value of "Key:" in a /proc/meminfo-style file, in bytes; -1. */
static double
meminfo(const char *file, const char *key)
{
	char *buf, *s;
	size_t len, kl = strlen(key);
	double v = -1;

	if (phn_read_file(file, &buf, &len, 1 << 16) == -1)
		return -1;
	for (s = buf; s != NULL && *s; s = strchr(s, '\n') ? strchr(s, '\n') +
	    1 : NULL)
		if (strncmp(s, key, kl) == 0 && s[kl] == ':') {
			v = strtod(s + kl + 1, NULL) * 1024.0;
			break;
		}
	free(buf);
	return v;
}

/* The test hooks: PHN_MEMINFO and PHN_LOADAVG name other files. */
static const char *
procfile(const char *env, const char *dflt)
{
	const char *f = getenv(env);

	return f != NULL && *f ? f : dflt;
}

/* The load averages (1, 5, 15 min); -1 when unreadable. */
static int
loadavg(double v[3])
{
	char *buf;
	size_t len;
	int n;

	v[0] = v[1] = v[2] = -1;
	if (phn_read_file(procfile("PHN_LOADAVG", "/proc/loadavg"), &buf,
	    &len, 4096) == -1)
		return -1;
	n = sscanf(buf, "%lf %lf %lf", &v[0], &v[1], &v[2]);
	free(buf);
	return n == 3 ? 0 : -1;
}

double
phn_runner_memfree(void)
{
	return meminfo(procfile("PHN_MEMINFO", "/proc/meminfo"),
	    "MemAvailable");
}

double
phn_runner_load1(void)
{
	double v[3];

	return loadavg(v) == 0 ? v[0] : -1;
}

/* A number as /proc wrote it, to two places: 0.76, not 0.7600000001. */
static struct json_object *
dbl(double v)
{
	char b[64];

	snprintf(b, sizeof(b), "%.2f", v);
	return json_object_new_double_s(v, b);
}

/* The pressure object of health.json: what the box has left. */
struct json_object *
phn_runner_pressure(const struct phn_paths *p)
{
	struct json_object *o = json_object_new_object(), *x;
	struct statvfs sv;
	double v[3], t, a;
	const char *mf = procfile("PHN_MEMINFO", "/proc/meminfo");

	if (statvfs(p->runs, &sv) == 0) {
		x = json_object_new_object();
		json_object_object_add(x, "total_bytes", json_object_new_int64(
		    (int64_t)sv.f_blocks * (int64_t)sv.f_frsize));
		json_object_object_add(x, "free_bytes", json_object_new_int64(
		    (int64_t)sv.f_bavail * (int64_t)sv.f_frsize));
		json_object_object_add(o, "disk_runs_root", x);
	}
	t = meminfo(mf, "MemTotal");
	a = meminfo(mf, "MemAvailable");
	if (t >= 0 || a >= 0) {
		x = json_object_new_object();
		if (t >= 0)
			json_object_object_add(x, "total_bytes",
			    json_object_new_int64((int64_t)t));
		if (a >= 0)
			json_object_object_add(x, "available_bytes",
			    json_object_new_int64((int64_t)a));
		json_object_object_add(o, "memory", x);
	}
	if (loadavg(v) == 0) {
		x = json_object_new_object();
		json_object_object_add(x, "1m", dbl(v[0]));
		json_object_object_add(x, "5m", dbl(v[1]));
		json_object_object_add(x, "15m", dbl(v[2]));
		json_object_object_add(o, "loadavg", x);
	}
	return o;
}

/* {job_id, array_task_id, node} when this process runs under Slurm,
 * else NULL.  An array task's job id is the array's (SLURM_ARRAY_JOB_ID). */
struct json_object *
phn_runner_slurm(void)
{
	const char *job = getenv("SLURM_ARRAY_JOB_ID"), *task, *node;
	struct json_object *o;

	if (job == NULL || *job == '\0')
		job = getenv("SLURM_JOB_ID");
	if (job == NULL || *job == '\0')
		return NULL;
	task = getenv("SLURM_ARRAY_TASK_ID");
	node = getenv("SLURMD_NODENAME");
	o = json_object_new_object();
	json_object_object_add(o, "job_id", json_object_new_string(job));
	json_object_object_add(o, "array_task_id", task && *task ?
	    json_object_new_string(task) : NULL);
	json_object_object_add(o, "node", node && *node ?
	    json_object_new_string(node) : NULL);
	return o;
}

/*
 * Parse a size: digits, an optional fraction, an optional suffix K, M, G
 * or T (powers of 1024; a trailing B is allowed).  -1 if invalid.
 */
double
phn_size_parse(const char *s)
{
	char *end;
	double v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v *= 1024.0; end++; break;
	case 'm': case 'M': v *= 1024.0 * 1024; end++; break;
	case 'g': case 'G': v *= 1024.0 * 1024 * 1024; end++; break;
	case 't': case 'T': v *= 1024.0 * 1024 * 1024 * 1024; end++; break;
	default: break;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	return *end == '\0' ? v : -1;
}

/*
 * The admission limits: the options where given (> 0), else the
 * config's defaults.runner_pool.min_free_memory_bytes and max_load
 * (null or absent: off).
 */
void
phn_runner_limits(struct phn_runner *r, const struct phn_config *cfg,
    double memfree, double maxload)
{
	r->memfree = memfree > 0 ? memfree : phn_config_num(cfg,
	    "defaults.runner_pool.min_free_memory_bytes", -1);
	r->maxload = maxload > 0 ? maxload : phn_config_num(cfg,
	    "defaults.runner_pool.max_load", -1);
	r->every = phn_config_num(cfg,
	    "defaults.scoreboard.heartbeat_interval_seconds", 30);
	if (r->every <= 0)
		r->every = 30;
}

/* Register runner id: its health.json says it runs here, now. */
void
phn_runner_open(struct phn_runner *r, const struct phn_paths *p,
    const char *id, long long capacity, long long jobs)
{
	r->p = p;
	r->id = phn_strdup(id);
	r->capacity = capacity;
	r->jobs = jobs;
	r->started = phn_now();
	r->written = 0;
	r->inflight = r->maxobs = 0;
	r->waiting[0] = '\0';
	r->drain = r->stopped = 0;
	phn_runner_beat(r, 0, 0, 1);
}

/*
 * Whether the runner may claim now: 1 yes, 0 no (pressure; r->waiting
 * says why, and health.json says so too).
 */
int
phn_runner_admit(struct phn_runner *r)
{
	char why[sizeof(r->waiting)];
	double v;

	why[0] = '\0';
	if (r->memfree >= 0 && (v = phn_runner_memfree()) >= 0 &&
	    v < r->memfree)
		snprintf(why, sizeof(why), "free memory %.0f MB is below "
		    "%.0f MB", v / 1048576.0, r->memfree / 1048576.0);
	else if (r->maxload >= 0 && (v = phn_runner_load1()) >= 0 &&
	    v > r->maxload)
		snprintf(why, sizeof(why), "1-minute load average %.2f is "
		    "above %.2f", v, r->maxload);
	if (strcmp(why, r->waiting) != 0) {
		snprintf(r->waiting, sizeof(r->waiting), "%s", why);
		phn_runner_beat(r, r->inflight, r->drain, 1);
	}
	return why[0] == '\0';
}

static struct json_object *
limit(double v)
{
	if (v < 0)
		return NULL;
	if (v == (double)(long long)v)
		return json_object_new_int64((int64_t)v);
	return dbl(v);
}

/*
 * Keep health.json current: inflight attempts outstanding, drain as the
 * claimer sees it.  Writes when something changed (at most every
 * BEAT_MIN seconds), when the heartbeat interval has passed, or with
 * force.  Errors are ignored: health is advisory.
 */
void
phn_runner_beat(struct phn_runner *r, long long inflight, int drain,
    int force)
{
	struct json_object *o, *x;
	char iso[PHN_ISO_LEN], *f;
	double now = phn_now();
	int changed;

	if (r->id == NULL)
		return;
	changed = inflight != r->inflight || drain != r->drain;
	r->inflight = inflight;
	r->drain = drain;
	if (inflight > r->maxobs)
		r->maxobs = inflight;
	r->changed |= changed;
	if (!force && !(r->changed && now - r->written >= BEAT_MIN) &&
	    now - r->written < r->every)
		return;
	r->changed = 0;
	r->written = now;
	o = json_object_new_object();
	json_object_object_add(o, "runner_id", json_object_new_string(r->id));
	json_object_object_add(o, "host", json_object_new_string(
	    phn_hostname()));
	json_object_object_add(o, "boot_id", json_object_new_string(
	    phn_boot_id()));
	json_object_object_add(o, "pid", json_object_new_int64(getpid()));
	json_object_object_add(o, "state", json_object_new_string(r->stopped ?
	    "stopped" : r->waiting[0] ? "waiting" : "running"));
	json_object_object_add(o, "waiting_reason", r->waiting[0] && !r->stopped ?
	    json_object_new_string(r->waiting) : NULL);
	json_object_object_add(o, "capacity", r->capacity > 0 ?
	    json_object_new_int64(r->capacity) : NULL);
	json_object_object_add(o, "jobs", r->jobs > 0 ?
	    json_object_new_int64(r->jobs) : NULL);
	json_object_object_add(o, "current_load", json_object_new_int64(
	    r->inflight));
	json_object_object_add(o, "max_load_observed", json_object_new_int64(
	    r->maxobs));
	phn_iso(r->started, iso);
	json_object_object_add(o, "started_at", json_object_new_string(iso));
	phn_iso(now, iso);
	json_object_object_add(o, "last_seen_at", json_object_new_string(iso));
	if (r->stopped)
		json_object_object_add(o, "stopped_at",
		    json_object_new_string(iso));
	json_object_object_add(o, "drain_mode", json_object_new_boolean(
	    r->drain));
	x = json_object_new_object();
	json_object_object_add(x, "min_free_memory_bytes", limit(r->memfree));
	json_object_object_add(x, "max_load", limit(r->maxload));
	json_object_object_add(o, "admission", x);
	json_object_object_add(o, "pressure", phn_runner_pressure(r->p));
	if ((x = phn_runner_slurm()) != NULL)
		json_object_object_add(o, "slurm", x);
	f = phn_runner_health_path(r->p, r->id);
	(void)phn_json_write(f, o, PHN_MKDIR);
	free(f);
	json_object_put(o);
}

/* A clean exit: the runner is marked stopped (its history stays). */
void
phn_runner_close(struct phn_runner *r)
{
	if (r->id == NULL)
		return;
	r->stopped = 1;
	phn_runner_beat(r, 0, r->drain, 1);
	free(r->id);
	r->id = NULL;
}

/* A runner's health.json, or NULL (none, or unreadable). */
struct json_object *
phn_runner_health(const struct phn_paths *p, const char *id)
{
	char *f = phn_runner_health_path(p, id), msg[256];
	struct json_object *o = phn_json_load(f, msg, sizeof(msg));

	free(f);
	if (o != NULL && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

/*
 * What a runner's health says of it at now: "stopped" (it said so on
 * exit), "gone" (not seen for stale seconds), "draining" (drain.json),
 * "waiting" (pressure), else "alive".
 */
const char *
phn_runner_status(const struct phn_paths *p, const char *id,
    struct json_object *h, double now, double stale)
{
	const char *s = phn_jstr(h, "state");
	double t;

	if (s != NULL && strcmp(s, "stopped") == 0)
		return "stopped";
	if (phn_iso_parse(phn_jstr(h, "last_seen_at"), &t) == -1 ||
	    now - t > stale)
		return "gone";
	if (phn_runner_drained(p, id))
		return "draining";
	if (s != NULL && strcmp(s, "waiting") == 0)
		return "waiting";
	return "alive";
}

/* The runner ids under RUNNERS (directories with a valid id for a name),
 * sorted; NULL with *n 0 when there is no runners root. */
char **
phn_runner_list(const struct phn_paths *p, size_t *n)
{
	char **v = phn_dir_list(p->runners, n);
	size_t i, k;

	if (v == NULL) {
		*n = 0;
		return NULL;
	}
	for (i = k = 0; i < *n; i++)
		if (phn_id_valid(v[i], strlen(v[i])))
			v[k++] = v[i];
		else
			free(v[i]);
	v[k] = NULL;
	*n = k;
	return v;
}

/* Whether runner R is drained: drain.json exists, unless {"drain": false}. */
int
phn_runner_drained(const struct phn_paths *p, const char *runner)
{
	char *f = phn_runner_path(p, runner, "drain.json"), msg[256];
	struct json_object *o, *v;
	int r;

	if (access(f, F_OK) == -1) {
		free(f);
		return 0;
	}
	o = phn_json_load(f, msg, sizeof(msg));
	free(f);
	r = !(json_object_object_get_ex(o, "drain", &v) &&
	    json_object_is_type(v, json_type_boolean) &&
	    !json_object_get_boolean(v));
	json_object_put(o);
	return r;
}
