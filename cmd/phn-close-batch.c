/*
 * phn-close-batch - close a batch: phn-claim claims nothing more from it.
 *
 * Output: one JSON object, {"ok":true,"action":"close-batch",...}.
 * Writes runs/BATCH/batch_closed.json write-once ({batch_id, closed_at,
 * reason}); attempts already queued or running are left to finish.  A
 * batch that is already closed is a negative answer (exit 1).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phn.h"

int
main(int argc, char *argv[])
{
	const char *reason = NULL;
	struct phn_paths P;
	struct json_object *o, *old;
	char msg[512], iso[PHN_ISO_LEN], *f, *bdir;

	argv = phn_batch_cmd("phn-close-batch", "", 1, &reason, NULL, &P,
	    argc, argv);
	phn_iso(phn_now(), iso);
	o = json_object_new_object();
	json_object_object_add(o, "batch_id", json_object_new_string(argv[0]));
	json_object_object_add(o, "closed_at", json_object_new_string(iso));
	json_object_object_add(o, "reason", reason ?
	    json_object_new_string(reason) : NULL);
	f = phn_asprintf("%s/%s/batch_closed.json", P.runs, argv[0]);
	if (phn_json_write(f, o, PHN_DURABLE | PHN_ONCE) == -1) {
		if (errno != EEXIST)
			phn_die(PHN_EXIT_TEMP, "unable to write %s:", f);
		old = phn_json_load(f, msg, sizeof(msg));
		phn_warn("%s: already closed at %s", argv[0],
		    phn_jstr(old, "closed_at") ? phn_jstr(old, "closed_at") : "?");
		json_object_put(old);
		json_object_put(o);
		free(f);
		phn_paths_free(&P);
		return PHN_EXIT_NO;
	}
	bdir = phn_batch_path(&P, argv[0], NULL);
	phn_batch_changed(bdir);	/* after the change (summary.c) */
	free(bdir);
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "action", json_object_new_string(
	    "close-batch"));
	json_object_object_add(o, "closed_path", json_object_new_string(f));
	phn_json_emit(stdout, o);
	json_object_put(o);
	free(f);
	phn_paths_free(&P);
	phn_stdout_close();
	return PHN_EXIT_OK;
}
