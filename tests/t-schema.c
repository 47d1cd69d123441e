/*
 * t-schema - test driver for phn_schema_validate.
 *
 * t-schema SCHEMA DOC validates the JSON file DOC against the JSON
 * Schema file SCHEMA and prints each problem on standard output.  Exit
 * 0 if DOC is valid, 1 if it is not, 100 if SCHEMA is broken or either
 * file cannot be read or parsed.
 */
#include <stdio.h>

#include <json-c/json.h>

#include "phn.h"

int
main(int argc, char *argv[])
{
	struct phn_errs errs = { 0 };
	struct json_object *schema, *doc;
	char msg[256];
	size_t i;
	int r;

	PROG = "t-schema";
	if (argc != 3) {
		fprintf(stderr, "usage: t-schema schema doc\n");
		return PHN_EXIT_PERM;
	}
	if ((schema = phn_json_load(argv[1], msg, sizeof(msg))) == NULL)
		phn_die(PHN_EXIT_PERM, "%s", msg);
	if ((doc = phn_json_load(argv[2], msg, sizeof(msg))) == NULL)
		phn_die(PHN_EXIT_PERM, "%s", msg);
	r = phn_schema_validate(schema, doc, &errs);
	for (i = 0; i < errs.n; i++)
		printf("%s\n", errs.v[i]);
	phn_errs_free(&errs);
	json_object_put(schema);
	json_object_put(doc);
	phn_stdout_close();
	return r == -1 ? PHN_EXIT_PERM : r;
}
