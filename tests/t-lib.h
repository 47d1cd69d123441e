/*
 * t-lib.h - what the test programs share: ending an attempt the way an
 * ender does, without codex.
 */
#ifndef T_LIB_H
#define T_LIB_H

#include "phn.h"

struct t_end {
	const char *status;	/* terminal status (default succeeded) */
	const char *kind;	/* failure_kind, or NULL */
	const char *thread;	/* codex_thread_id to record, or NULL */
	double	 ago;		/* ended this many seconds ago; <0: now */
	double	 work;		/* seconds between running and the end */
	int	 fault;		/* harness_fault: true */
	int	 home;		/* create codex_home */
	int	 running;	/* only start it (running), do not end it */
	int	 quiet;		/* no warning when it has ended already */
};
int	t_finish(const struct phn_paths *, const char *, const struct t_end *);

#endif
