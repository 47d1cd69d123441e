/*
 * phn.h - the one header of the phn toolkit's internal library.
 *
 * Commands include libc, json-c and this file, nothing else.
 */
#ifndef PHN_H
#define PHN_H

#include <sys/types.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#ifndef JSON_C_TO_STRING_NOSLASHESCAPE
#define JSON_C_TO_STRING_NOSLASHESCAPE 0
#endif

#define PHN_EXIT_OK	0
#define PHN_EXIT_NO	1	/* a documented negative answer */
#define PHN_EXIT_PERM	100	/* permanent failure: usage, bad input */
#define PHN_EXIT_TEMP	111	/* temporary failure: a system call failed */
#define PHN_EXIT_RUNNING	3	/* phn-score: a step is still in flight */

#ifndef PHN_VERSION
#define PHN_VERSION	"0.1"	/* the toolkit's (meta.json phn_version) */
#endif
#define PHN_ID_MAX	128
#define PHN_JSON_MAX_DEPTH	32
#define PHN_LT_MAX_BYTES	(64L * 1024 * 1024)
#define PHN_PROMPT_MAX_BYTES	(1024L * 1024)

/* err.c */
extern const char *PROG;
void	phn_die(int, const char *, ...)
	    __attribute__((noreturn, format(printf, 2, 3)));
void	phn_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	*phn_malloc(size_t);
void	*phn_realloc(void *, size_t);
char	*phn_strdup(const char *);
char	*phn_asprintf(const char *, ...) __attribute__((format(printf, 1, 2)));
char	*phn_vasprintf(const char *, va_list);
void	phn_stdout_close(void);
long long phn_parse_num(const char *, const char *, long long, long long);

/* Error messages, collected instead of exiting (see err.c). */
struct phn_errs {
	char	**v;
	size_t	  n, cap;
	int	  temp;		/* a system call failed: retrying may help */
};
void	phn_errs_add(struct phn_errs *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	phn_errs_fail(struct phn_errs *, int, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
void	phn_errs_die(struct phn_errs *) __attribute__((noreturn));
void	phn_errs_free(struct phn_errs *);

/* atomic.c: the one atomic writer; flags for phn_atomic_write */
#define PHN_DURABLE	1	/* fsync the file and its directory */
#define PHN_ONCE	2	/* write-once: EEXIST if the file exists */
#define PHN_MKDIR	4	/* create the directory if it is missing */
void	phn_store_confine(const char *);
int	phn_dir_open(const char *, const char *, int, char **);
void	phn_dir_forget(void);
int	phn_fds_scarce(void);
int	phn_store_confined(const char *);
int	phn_mkdirs(const char *, int);
int	phn_fsync_dir(const char *);
int	phn_write_all(int, const void *, size_t);
int	phn_atomic_write(const char *, const void *, size_t, int);
int	phn_atomic_open(const char *, int, char **);
int	phn_atomic_commit(int, char *, const char *, int);
void	phn_atomic_abort(int, char *);
int	phn_atomic_is_temp(const char *);
int	phn_read_file(const char *, char **, size_t *, size_t);
int	phn_copy_file(const char *, const char *, int);
int	phn_rmtree(const char *);
int	phn_write_new(const char *, const void *, size_t);
int	phn_syncfs(const char *);
void	phn_durable_group(const char *);
int	phn_durable_deferred(const char *);
int	phn_durable_flush(void);
void	phn_durable_atexit(void);

/* The one tree copier (atomic.c): what to leave out, and what failed. */
struct phn_copy {
	const char *const *skip_top;	/* names left out at the top */
	int	(*skip)(void *, const char *);	/* names left out anywhere */
	void	*ctx;
	int	 skip_dir;		/* leave out the directory dir_dev/ino */
	dev_t	 dir_dev;
	ino_t	 dir_ino;
	const char *what;		/* on failure: the verb */
	char	*failed;		/* on failure: the path (to free) */
};
int	phn_copy_tree(const char *, const char *, struct phn_copy *);

/* lock.c */
int	phn_lock_open(const char *, int);
int	phn_lock_wait(const char *, double);
int	phn_lock_held(const char *);
void	phn_lock_close(int);

/* jscan.c: strict RFC 8259 pre-scan; 0 if clean, else -1 and msg. */
int	phn_json_prescan(const char *, size_t, int, char *, size_t);
int	phn_utf8_valid(const char *, size_t);

/* json.c; struct phn_buf: a growing, always NUL-terminated byte buffer */
struct phn_buf {
	char	*s;
	size_t	 len, cap;
};
void	phn_buf_put(struct phn_buf *, const char *, size_t);
#define PHN_JSON_MAXSZ	((size_t)PHN_LT_MAX_BYTES)
#define PHN_JSON_INT_MAX	9007199254740992LL	/* 2^53: integers beyond are out of range */
struct json_object *phn_json_parse(const char *, size_t, const char *,
	    char *, size_t);
struct json_object *phn_json_load(const char *, char *, size_t);
struct json_object *phn_json_load_doc(const char *, const char *,
	    enum json_type);
struct json_object *phn_json_find(struct json_object *, const char *,
	    const char *);
char	*phn_json_pretty(struct json_object *);
int	phn_json_write(const char *, struct json_object *, int);
void	phn_json_emit(FILE *, struct json_object *);
const char *phn_json_type(struct json_object *);
struct json_object *phn_json_get(struct json_object *, const char *);
const char *phn_jstr(struct json_object *, const char *);
long long phn_json_int(struct json_object *, const char *, long long);
double	phn_json_num(struct json_object *, const char *, double);
int	phn_json_bool(struct json_object *, const char *, int);
struct json_object *phn_json_string(const char *);
struct json_object *phn_json_path_get(struct json_object *, const char *);
struct json_object *phn_json_merge(struct json_object *,
	    struct json_object *);
int	phn_json_is_int(struct json_object *);
int	phn_json_is_num(struct json_object *);

/* sha.c */
#define PHN_SHA256_HEX	65
void	phn_sha256_hex(const void *, size_t, char [PHN_SHA256_HEX]);

/* time.c */
#define PHN_ISO_LEN	64
#define PHN_STAMP_LEN	20
double	phn_now(void);
double	phn_mono(void);
void	phn_iso(double, char [PHN_ISO_LEN]);
void	phn_stamp(double, char [PHN_STAMP_LEN]);
int	phn_iso_parse(const char *, double *);

/* id.c */
int	phn_id_valid(const char *, size_t);
const char *phn_id_problem(struct json_object *);
char	*phn_id_new(const char *);
uint32_t phn_random32(void);

/* path.c */
struct phn_paths {
	char	*root;		/* absolute */
	char	*runs;		/* absolute runs root */
	char	*runners;	/* absolute runners root */
};
int	phn_paths_init(struct phn_paths *, const char *, const char *,
	    const char *);
void	phn_paths_free(struct phn_paths *);
char	**phn_dir_list(const char *, size_t *);
void	phn_dir_list_free(char **, size_t);
char	*phn_path_abs(const char *, const char *);
char	*phn_path_join(const char *, const char *);
char	*phn_path_rel(const char *, const char *);
char	*phn_path_dirname(const char *);
char	*phn_datadir_file(const char *);

/* summary.c: a batch's scoreboard row kept while the batch is at rest */
void	phn_batch_changed(const char *);
char	*phn_attempt_batchdir(const char *);
int	phn_summary_key(const struct phn_paths *, const char *, const char *,
	    char *, size_t);
struct json_object *phn_summary_get(const struct phn_paths *, const char *,
	    const char *);
void	phn_summary_put(const struct phn_paths *, const char *, const char *,
	    struct json_object *);

/* layout.c: the runs store's paths and index entry names (phn(5)) */
char	*phn_system_path(const struct phn_paths *, const char *);
char	*phn_pause_path(const struct phn_paths *);
char	*phn_halt_path(const struct phn_paths *);
char	*phn_batch_path(const struct phn_paths *, const char *, const char *);
char	*phn_job_path(const struct phn_paths *, const char *, const char *,
	    const char *);
char	*phn_changes_path(const char *);
char	*phn_summary_path(const struct phn_paths *, const char *);
char	*phn_step_path(const struct phn_paths *, const char *, const char *,
	    const char *, const char *);
char	*phn_attempt_rel(const char *, const char *, const char *,
	    const char *);
char	*phn_attempt_path(const struct phn_paths *, const char *,
	    const char *, const char *, const char *, const char *);
char	*phn_runner_path(const struct phn_paths *, const char *,
	    const char *);
char	*phn_runner_health_path(const struct phn_paths *, const char *);
char	*phn_entry_name(const char *, const char *, const char *,
	    const char *);
int	phn_entry_split(const char *, char *[], int);
char	*phn_ready_entry(const struct phn_paths *, const char *, const char *,
	    const char *);
char	*phn_active_entry(const struct phn_paths *, const char *,
	    const char *, const char *, const char *);
char	*phn_slot_entry(const char *, const char *, const char *,
	    const char *, const char *);
int	phn_store_dir(const struct phn_paths *, const char *, int, char *,
	    size_t);
/*
 * opt.c: the command line.  A program's options are a table of struct
 * phn_option, ended by PHN_END; phn_opts_parse() adds the shared ones
 * (-h, -r, --runs-root, --runners-root, and the groups in take) and
 * parses argv.  One letter, one meaning: phn(7), Conventions.
 */
#define PHN_OPT_FLAG	1	/* int *val = 1 */
#define PHN_OPT_STR	2	/* const char **val */
#define PHN_OPT_ID	3	/* const char **val, a valid id */
#define PHN_OPT_NUM	4	/* long long *val in [min, max] */
#define PHN_OPT_SECS	5	/* double *val, seconds in [min, max] */
#define PHN_OPT_FN	6	/* fn(val, the value) */
struct phn_option {
	int	 type;
	int	 letter;		/* 0: a long option only */
	const char *name;		/* the long option, without "--" */
	void	*val;
	double	 min, max;
	void	(*fn)(void *, const char *);
};
#define PHN_FLAG(c, name, v)	{ PHN_OPT_FLAG, c, name, v, 0, 0, NULL }
#define PHN_STR(c, name, v)	{ PHN_OPT_STR, c, name, v, 0, 0, NULL }
#define PHN_ID(c, name, v)	{ PHN_OPT_ID, c, name, v, 0, 0, NULL }
#define PHN_NUM(c, name, v, min, max) \
	{ PHN_OPT_NUM, c, name, v, min, max, NULL }
#define PHN_SECS(c, name, v, min, max) \
	{ PHN_OPT_SECS, c, name, v, min, max, NULL }
#define PHN_FN(c, name, fn, v)	{ PHN_OPT_FN, c, name, v, 0, 0, fn }
#define PHN_END			{ 0, 0, NULL, NULL, 0, 0, NULL }
#define PHN_TAKE_JSON	0x1	/* -J, --json */
#define PHN_TAKE_BATCH	0x2	/* -b, --batch, --batch-id */
#define PHN_TAKE_ATTEMPT 0x4	/* those and -a, --job, -s, -R: one attempt */
#define PHN_ARGS_ANY	(-1)	/* the program counts its operands */
struct phn_opts {
	const char *usage;		/* the usage text, ending in a newline */
	int	 take;			/* PHN_TAKE_* */
	int	 nargs;			/* how many operands, or PHN_ARGS_ANY */
	const char *root, *runs, *runners;
	int	 json;
	const char *batch;
	const char *adir, *job, *step, *run;	/* PHN_TAKE_ATTEMPT */
	int	 mkstore;	/* may run without a store at the root (it makes
				 * one, or finds its store from an attempt's
				 * path); else the store must exist */
};
void	phn_opts_parse(struct phn_opts *, int *, char **[],
	    const struct phn_option *);
int	phn_opts_attempt(const struct phn_opts *);
void	phn_opts_paths(const struct phn_opts *, struct phn_paths *);
void	phn_usage(const struct phn_opts *, int) __attribute__((noreturn));

/* config.c: runs/_system/harness_config.json */
struct phn_config {
	struct json_object *doc;	/* the whole config */
	char	 version[32];		/* hc_<12 hex> */
	char	*path;
	int	 missing;		/* no file: doc is the defaults */
};
#define PHN_CONFIG_SNAPSHOT	1	/* record the version (writes) */
#define PHN_CONFIG_STAMP	2	/* write harness_config_version in */
struct json_object *phn_config_default(void);
int	phn_config_read(const struct phn_paths *, int, struct phn_config *,
	    struct phn_errs *);
int	phn_config_write(const struct phn_paths *, int, struct phn_errs *);
int	phn_secret_name(const char *);
void	phn_config_free(struct phn_config *);
long long phn_config_int(const struct phn_config *, const char *, long long);
double	phn_config_num(const struct phn_config *, const char *, double);

/* lt.c: the Launch Table */
struct phn_lt_step {
	const char *job, *step;	/* borrowed from the normalized table */
	char	*prompt;	/* composed prompt */
	char	*schema;	/* output schema document text, or NULL */
	struct json_object *obj; /* the step in the normalized table */
	mode_t	 prompt_mode;	/* the snapshots' permissions: at most these */
	mode_t	 schema_mode;	/* (the source file's & 0644) */
};
struct phn_lt_ctx {
	const char *name;	/* file name for messages */
	const char *base;	/* directory relative paths resolve against */
	const struct phn_config *cfg;
	/*
	 * A table from an untrusted source (phn-api), or NULL: the
	 * directories (NULL-terminated) its jobs' working directories and
	 * add_dirs must lie under; its prompt_ref and output_schema_ref may
	 * then lie only under the job's own working directory.
	 */
	char *const *wd_roots;
	struct phn_errs errs;
	struct phn_errs warns;
	struct phn_lt_step *steps;
	size_t	 nsteps;
};
void	phn_lt_ctx_free(struct phn_lt_ctx *);
/* A Launch Table input file, read by phn_lt_read (regular files only). */
struct phn_lt_file {
	char	*buf;		/* its bytes, NUL-terminated */
	size_t	 len;
	mode_t	 mode;		/* its permission bits */
	char	*real;		/* the file read, symlinks resolved */
};
int	phn_lt_read(const char *, size_t, struct phn_lt_file *, char *, size_t);
struct json_object *phn_lt_validate(struct json_object *, struct phn_lt_ctx *);


/* store.c: batches, attempts, state.json, current.json, faults */
struct phn_attempt {
	char	*dir;		/* absolute attempt directory */
	char	*rel;		/* relative to the runs root */
	char	*batch, *job, *step, *run_id;
	char	*name;		/* <stamp>_<run_id> */
	char	*jobdir;	/* absolute runs/<batch>/<job> */
};
#define PHN_FAULT_NONE		0
#define PHN_FAULT_LEASE		1	/* queued, lease expired */
#define PHN_FAULT_ORPHAN	2	/* spawner gone */
#define PHN_FAULT_STUCK		3	/* alive, no codex event for long */
/* An attempt's status (state.json "status"). */
enum {
	PHN_AST_QUEUED, PHN_AST_RUNNING, PHN_AST_SUCCEEDED, PHN_AST_FAILED,
	PHN_AST_NEEDS, PHN_AST_CANCELED
};
extern const char *const phn_ast_name[];
int	phn_ast_of(const char *);
int	phn_status_terminal(const char *);
int	phn_fault_kind(const char *);
int	phn_attempt_parse(const struct phn_paths *, const char *,
	    struct phn_attempt *);
void	phn_attempt_free(struct phn_attempt *);
char	*phn_attempt_find(const struct phn_paths *, const char *, const char *,
	    const char *, const char *);
struct json_object *phn_state_read(const char *);
int	phn_state_update(const char *, const char *, struct json_object *);
char	**phn_batch_list(const struct phn_paths *, size_t *);
void	phn_batch_attempts(const struct phn_paths *, const char *,
	    void (*)(const char *, void *), void *);
char	**phn_batches(const struct phn_paths *, const char *, size_t *);
int	phn_store_attempt_dir(const struct phn_paths *, const char *, char *,
	    size_t);
struct json_object *phn_batch_meta(const struct phn_paths *, const char *,
	    char *, size_t);
int	phn_batch_meta_ok(const struct phn_paths *, const char *, char *,
	    size_t);
int	phn_current_check(const struct phn_paths *, const char *,
	    const char *, int, char *, size_t);
int	phn_current_note(const struct phn_paths *, const struct phn_attempt *,
	    struct json_object *);
int	phn_current_step_set(const struct phn_paths *, const char *,
	    const char *, const char *, const char *, struct json_object *);
struct json_object *phn_overrides_read(const struct phn_paths *, const char *,
	    const char *, int *, char *, size_t);
unsigned long long phn_proc_start(pid_t);
const char *phn_boot_id(void);
const char *phn_hostname(void);
int	phn_state_proc_alive(struct json_object *, const char *, const char *);

/* schema.c: JSON Schema validation; 0 valid, 1 invalid, -1 broken schema */
#define PHN_SCHEMA_MAXERRS	50
int	phn_schema_validate(struct json_object *, struct json_object *,
	    struct phn_errs *);

/* proc.c: the child-process runner, capturing output */
#define PHN_PROC_GROUP	1	/* own session; the whole group is killed */
struct phn_proc {
	char	*const *argv;
	const char *in;		/* bytes for its stdin; none: /dev/null */
	size_t	 inlen;
	const char *cwd;	/* NULL: ours */
	char	*const *env;	/* "K=V" added to its environment, or NULL */
	double	 timeout;	/* seconds; 0: none */
	size_t	 max;		/* bytes kept of each stream; 0: all */
	int	 flags;
	void	(*started)(void *, pid_t);	/* told the child's pid, or NULL */
	void	*ctx;				/* its first argument */
};
char	*phn_tool_path(const char *);
int	phn_proc_run(const struct phn_proc *, struct phn_buf *,
	    struct phn_buf *);
int	phn_git(const char *, char *const [], struct phn_buf *,
	    struct phn_buf *);

/* workspace.c: a job's workspace policy; submit-time checks (preflight) */
struct json_object *phn_workspace_key(struct json_object *,
	    struct json_object *, const char *);
int	phn_preflight(const struct phn_paths *, const struct phn_config *,
	    struct json_object *, struct phn_errs *);

/* sched.c: the schedule and ready indexes (the claimer's side is claim.h);
 * ending a faulted attempt (reaping) and releasing its dependents */
int	phn_attempt_reap(const struct phn_paths *, const struct phn_attempt *,
	    int);
int	phn_attempt_reap_locked(const struct phn_paths *,
	    const struct phn_attempt *, double, double, const char **);
int	phn_attempt_reap_dead_spawner(const struct phn_paths *,
	    const struct phn_attempt *, const char **);
int	phn_sched_attempt_ended(const struct phn_paths *,
	    const struct phn_attempt *);
int	phn_sched_index(const struct phn_paths *, const char *, char *, size_t);
struct json_object *phn_sched_info(const struct phn_paths *, const char *);
struct json_object *phn_sched_job(const struct phn_paths *, const char *,
	    const char *);
struct json_object *phn_sched_jobview(const struct phn_paths *, const char *,
	    const char *, char *, size_t);
int	phn_sched_ready_add(const struct phn_paths *, const char *,
	    const char *, const char *, double);
int	phn_sched_step_check(const struct phn_paths *, const char *,
	    const char *, const char *, struct phn_errs *);
/* overrides.c: runs/B/J/overrides.json */
/* One operator override of a step, checked to exist first. */
struct phn_override_req {
	const char *action;	/* "force-retry", "mark-failed", "requeue" */
	const char *batch, *job, *step;
	const char *reason;	/* or NULL */
	const char *runner;	/* requeue: this runner, or NULL */
	int	 different;	/* requeue: any runner but the last one's */
	const char *by;		/* force-retry: who asks (NULL: operator) */
	struct json_object *record;	/* force-retry: an auto_remediation
					 * action to record (remedy.c) */
};
int	phn_override_step(const struct phn_paths *,
	    const struct phn_override_req *, struct json_object **,
	    struct phn_errs *);

/* fsck.c: phn-fsck, the store's invariants checked and what is derived
 * repaired; returns the problems left, or -1 on error */
struct phn_fsck_opts {
	int	 repair, json;
	FILE	*out;
};
int	phn_fsck_run(const struct phn_paths *, const struct phn_config *,
	    const struct phn_fsck_opts *);

/* phn-spawn's exit statuses (SPEC 6.6) */
#define PHN_EXIT_ATTENTION	3	/* needs_attention */
#define PHN_EXIT_CANCELED	4	/* canceled */
#define PHN_EXIT_TIMEOUT	124	/* timed out, as timeout(1) */
#define PHN_EXIT_NOEXEC	126	/* codex not executable */
#define PHN_EXIT_NOTFOUND	127	/* codex not found */

/* The thresholds and runner-pool settings of the config, where a batch's
 * effective_defaults (or NULL) win (liveness.c). */
struct phn_limits {
	double	 lease, stale, stuck;
	long long max_harness;
	int	 shared_fs, transfer;
};
void	phn_limits_init(struct phn_limits *, struct json_object *,
	    struct json_object *);
/* runner.c: the runner pool, runners/R/health.json (phn(5)) */
struct phn_runner {
	const struct phn_paths *p;
	char	*id;
	long long capacity, jobs;	/* 0: unlimited */
	double	 memfree, maxload;	/* admission limits; < 0: off */
	double	 started, written, every;
	long long inflight, maxobs;
	char	 waiting[160];		/* why it admits nothing, or "" */
	int	 drain, changed, stopped;
};
void	phn_runner_limits(struct phn_runner *, const struct phn_config *,
	    double, double);
void	phn_runner_open(struct phn_runner *, const struct phn_paths *,
	    const char *, long long, long long);
int	phn_runner_admit(struct phn_runner *);
void	phn_runner_beat(struct phn_runner *, long long, int, int);
void	phn_runner_close(struct phn_runner *);
int	phn_runner_drained(const struct phn_paths *, const char *);
char	**phn_runner_list(const struct phn_paths *, size_t *);
struct json_object *phn_runner_health(const struct phn_paths *, const char *);
const char *phn_runner_status(const struct phn_paths *, const char *,
	    struct json_object *, double, double);
struct json_object *phn_runner_pressure(const struct phn_paths *);
struct json_object *phn_runner_slurm(void);
double	phn_runner_memfree(void);
double	phn_runner_load1(void);
double	phn_size_parse(const char *);
int	phn_attempt_runner_fault(const struct phn_paths *, const char *,
	    struct json_object *, double, double);
int	phn_attempt_runner_rule(const struct phn_paths *, struct json_object *,
	    double, double);
int	phn_attempt_fault_locked(const struct phn_paths *, struct json_object *,
	    double, double, double);
int	phn_attempt_judge(const struct phn_paths *, const char *,
	    struct json_object *, double, double, double, double);
/* pause.c: the store-wide rate-limit pause, the drain switch */
#define PHN_RL_NONE	0
#define PHN_RL_RATE	1	/* a rate limit: back off */
#define PHN_RL_USAGE	2	/* a usage limit or quota: until its reset */
struct phn_pause_cache {
	double	 until;
	ino_t	 ino;
	time_t	 mtime;
	long	 mtime_ns;
	off_t	 size;
};
int	phn_ratelimit_classify(const char *, double, double *);
const char *phn_ratelimit_name(int);
struct json_object *phn_pause_read(const struct phn_paths *);
double	phn_pause_until(const struct phn_paths *, double,
	    struct phn_pause_cache *);
int	phn_pause_note(const struct phn_paths *, double, int, double,
	    const char *, const char *, double, double, struct json_object **);
int	phn_halted(const struct phn_paths *);
/* replay.c: a recorded attempt replayed as codex (phn-replay) */
int	phn_replay(const char *, double, const char *);
void	phn_claim_clock(struct json_object *);
int	phn_claim_token_dead(const char *);
double	phn_claim_age(struct json_object *, double);
/* codex.c: the codex binary (PHN_CODEX, else PATH) and its version */
char	*phn_codex_find(int *, char **);
char	*phn_codex_version(const struct phn_paths *, const char *,
	    const char *);
/* ops.c: what the operator commands share (phn-cancel, phn-artifact,
 * phn-tail, phn-gc; phn_batch_cmd: phn-budget, phn-close-batch) */
char	*phn_attempt_select(const struct phn_paths *, const char *,
	    const char *, const char *, const char *, const char *,
	    struct phn_errs *);
char	*phn_attempt_store(const char *, struct phn_paths *);
char	*phn_attempt_locate(const struct phn_paths *, const char *,
	    struct phn_paths *, struct phn_errs *);
char	*phn_artifact_path(const char *, const char *);
int	phn_cancel(const struct phn_paths *, const struct phn_attempt *,
	    double, struct json_object **);
int	phn_gzip_file(const char *);
int	phn_gzip_open(const char *, pid_t *);
int	phn_gzip_close(int, pid_t);
char	**phn_batch_cmd(const char *, const char *, int, const char **,
	    void (*)(char *[]), struct phn_paths *, int, char *[]);
/* budget.c: a batch's token budget (budget.json, effective_defaults) */
struct phn_budget {
	long long max;		/* max_total_tokens; -1: none */
	long long used;		/* input + output tokens of its attempts */
	int	 exhausted;	/* max >= 0 && used >= max */
	int	 cancel;	/* on_exhausted: cancel */
};
long long phn_budget_tokens(long long, long long);
long long phn_budget_used(const struct phn_paths *, const char *);
void	phn_budget_set_used(struct phn_budget *, long long);
int	phn_budget_get(const struct phn_paths *, const char *,
	    struct json_object *, int, struct phn_budget *);
const struct phn_budget *phn_budget_cached(const struct phn_paths *,
	    const char *, double);
struct json_object *phn_budget_json(const struct phn_budget *);
/* joblog.c: the attempts as GNU parallel's joblog (phn-score --joblog) */
int	phn_joblog(const struct phn_paths *, const char *, FILE *);
/* remedy.c: auto-remediation (defaults.scoreboard.auto_remediation) */
struct phn_remedy {
	int	 enabled, legacy;
	unsigned kinds;			/* 1 stuck, 2 needs_attention, 4 failed */
	const char *action;		/* NULL: an unknown action, none */
	long long per_tick, per_step;
	double	 grace;
};
void	phn_remedy_init(struct phn_remedy *, struct json_object *);
int	phn_remedy_apply(const struct phn_paths *, const struct phn_config *,
	    const char *, int, FILE *);
int	phn_budget_enforce(const struct phn_paths *, const struct phn_config *,
	    const char *, int, FILE *);

#endif
