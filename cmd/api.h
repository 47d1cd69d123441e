/*
 * api.h - phn-api's parts: the server (cmd/phn-api.c: options, config,
 * the daemon, authentication, limits, the request gates and the tick
 * queue) and its routes (cmd/api-routes.c).
 */
#ifndef PHN_API_H
#define PHN_API_H

#include <microhttpd.h>

#include "phn.h"

/* What the server was started with. */
struct api {
	struct phn_paths P;
	const char *auth;	/* none, local_trust, token */
	const char *token;	/* token mode: the expected token */
	size_t	 body_max;	/* the largest request body */
	volatile int stopping;
};
extern struct api A;

/* The routes (api_route_of). */
enum { RT_NONE, RT_PAGE, RT_HEALTH, RT_SUBMIT, RT_TICK, RT_SYSSCORE,
	RT_BSCORE, RT_SCORE, RT_BATCH, RT_CURRENT, RT_RESOLVE, RT_ARTIFACT,
	RT_EVENTS, RT_CANCEL, RT_OVERRIDE, RT_STEPS, RT_RUNNERS };

/* How a route is admitted (struct route.gate). */
enum { GATE_NONE, GATE_WORK, GATE_TICK, GATE_STREAM };

/* One request, from its first call to its completion. */
struct req {
	int	 rt;
	int	 gate;		/* GATE_* of the route */
	int	 held;		/* holds a GATE_WORK slot */
	int	 answered;	/* a response is queued */
	char	*seg[8];	/* the path's segments (into path) */
	int	 nseg;
	char	*path;
	char	*body;
	size_t	 len;
	int	 toobig;
};

int	api_route_of(const char *, const char *, struct req *, int *);
enum MHD_Result api_dispatch(struct MHD_Connection *, struct req *);

/* Replies (phn-api.c). */
enum MHD_Result api_reply(struct MHD_Connection *, unsigned, const char *,
	    const char *, size_t);
enum MHD_Result api_reply_obj(struct MHD_Connection *, unsigned,
	    struct json_object *);
enum MHD_Result api_reply_err(struct MHD_Connection *, unsigned,
	    const char *, ...) __attribute__((format(printf, 3, 4)));

/* Gates (phn-api.c): 0 admitted, -1 busy (answer 503). */
int	api_gate_enter(int);
void	api_gate_leave(int);

/* The tick queue (phn-api.c): run `phn tick ARGS` serialized, requests
 * with the same arguments waiting for the same next tick. */
int	api_tick(char *const [], struct phn_buf *, struct phn_buf *);
#define API_TICK_BUSY	(-2)

/* Child processes the server must stop when it stops. */
void	api_child_add(void *, pid_t);
void	api_child_del(pid_t);

#endif
