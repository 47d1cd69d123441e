/*
 * override.h - the command line shared by phn-force-retry, phn-mark-failed
 * and phn-requeue (cmd/override.c): each program names its request, its
 * own options with their usage words, and what makes them a usage error
 * (if anything); this parses the rest (-m reason, the shared options,
 * BATCH JOB STEP), applies the override and prints its one JSON object.
 */
#ifndef PHN_OVERRIDE_H
#define PHN_OVERRIDE_H

#include "phn.h"

int	override_main(struct phn_override_req *, const char *,
	    const struct phn_option *, int (*)(const struct phn_override_req *),
	    int, char *[]);

#endif
