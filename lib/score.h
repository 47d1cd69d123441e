/*
 * score.h - the scoreboards' engine (phn-score): a batch's scoreboard
 * from its attempts, through the step policy, and the system rows.
 */
#ifndef PHN_SCORE_H
#define PHN_SCORE_H

#include "phn.h"

struct json_object *phn_score_batch(const struct phn_paths *,
	    struct json_object *, const char *, double, struct json_object *,
	    char *, size_t);
int	phn_score_exit(struct json_object *);
struct json_object *phn_score_row(struct json_object *);
void	phn_score_sort_rows(struct json_object *);
struct json_object *phn_score_runners(const struct phn_paths *,
	    struct json_object *, double);
struct json_object *phn_score_pause(const struct phn_paths *, double);

#endif
