/*
 * run.h - the spawner's engine (phn-spawn): one attempt being run, from
 * its meta.json to its terminal state (spawn.c), codex's command line
 * (codex.c), supervision (supervise.c), the outcome (report.c) and the
 * isolated workspace (workspace.c).
 */
#ifndef PHN_RUN_H
#define PHN_RUN_H

#include "phn.h"

#define PHN_EVENT_LINE_MAX	(4L * 1024 * 1024)	/* longer: kept, not parsed */
#define PHN_STOP_NONE		0
#define PHN_STOP_CANCEL		1	/* SIGTERM, SIGINT or SIGHUP */
#define PHN_STOP_TIMEOUT	2
#define PHN_STOP_THREAD		3	/* resume reported another thread */
#define PHN_STOP_ENDED		4	/* someone else ended the attempt */
/* One attempt being run by phn-spawn: what to run, what happened. */
struct phn_run {
	const struct phn_paths *p;
	struct phn_attempt a;
	int	 lockfd;		/* spawn.lock, held for life */
	int	 nocodex;
	struct json_object *meta, *bmeta, *cfg;	/* owned; may be NULL */
	struct json_object *job, *step, *policy; /* borrowed */
	struct json_object *schema;
	char	*schema_path, *workdir, *home, *codex, *resume_src;
	char	*prompt;
	size_t	 prompt_len;
	char	*thread_want;		/* resume: the thread to continue */
	char	**argv;
	size_t	 argc;
	double	 started, timeout, hb, grace;
	pid_t	 pid;			/* codex = its process group */
	unsigned long long codex_start;
	int	 exited, wstatus, exec_errno, stop;
	int	 turn_completed, turn_failed;
	char	*thread_id, *current_item, *model_error, *last_error;
	char	*stderr_tail, *version;
	int	 rl;			/* PHN_RL_*: the provider rate-limited */
	double	 rl_reset;		/* its reset time, or 0 */
	const char *rl_msg;		/* the message that said so */
	double	 last_event_at;
	struct json_object *usage, *usage_base, *usage_attempt;
	struct phn_errs errs;
	const char *status, *kind;	/* the outcome */
	int	 code, exit_code, signal;
	struct json_object *report, *artifacts;
	char	**staged;		/* temp, target pairs for phn_run_end */
	size_t	 nstaged;
};
void	phn_run_init(struct phn_run *, const struct phn_paths *);
void	phn_run_free(struct phn_run *);
int	phn_run_start(struct phn_run *, const char *);
int	phn_run_prepare(struct phn_run *);
int	phn_run_running(struct phn_run *);
void	phn_run_supervise(struct phn_run *, double);
void	phn_events_feed(struct phn_run *, const char *, size_t);
double	phn_run_fake_begin(struct phn_run *);
void	phn_run_fake_end(struct phn_run *);
void	phn_run_outcome(struct phn_run *);
int	phn_run_end(struct phn_run *, int);
int	phn_run_stage(struct phn_run *, const char *, const void *, size_t);
int	phn_run_stage_json(struct phn_run *, const char *, struct json_object *);
int	phn_signals_init(void);
int	phn_signal_canceled(void);
int	phn_signal_fd(void);
char	*phn_shquote(char *const []);
const char *phn_codex_web_search(struct phn_run *);
void	phn_codex_argv(struct phn_run *, const char *);
char	*phn_workspace_isolated(const struct phn_paths *, const char *,
	    const char *, const char *, struct json_object *,
	    struct json_object *, struct phn_errs *);

#endif
