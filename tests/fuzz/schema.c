/*
 * tests/fuzz/schema.c - libFuzzer target: the JSON Schema validator.
 *
 * The input is two documents, the schema and the instance, split at the
 * first NUL byte (no NUL: the instance is the schema itself); each is
 * parsed strictly (phn_json_parse) and, when both parse,
 * phn_schema_validate (lib/schema.c) must answer 0, 1 or -1, with
 * errors exactly when it is not 0.  Seeds: tests/fuzz/schema/ (the Run
 * Report schema and small schemas with an instance).  Built and run by
 * make fuzz-check (seconds) and make fuzz (FUZZ_SECONDS each).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "phn.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *nul;
	struct json_object *schema, *doc;
	struct phn_errs errs = { 0 };
	size_t slen = size;
	char msg[512];
	int r;

	if ((nul = memchr(buf, '\0', size)) != NULL)
		slen = (size_t)(nul - buf);
	if ((schema = phn_json_parse(buf, slen, "schema", msg,
	    sizeof(msg))) == NULL)
		return 0;
	if (nul == NULL)
		doc = json_object_get(schema);
	else if ((doc = phn_json_parse(nul + 1, size - slen - 1, "doc", msg,
	    sizeof(msg))) == NULL) {
		json_object_put(schema);
		return 0;
	}
	r = phn_schema_validate(schema, doc, &errs);
	if (r < -1 || r > 1 || (r == 0) != (errs.n == 0))
		abort();
	phn_errs_free(&errs);
	json_object_put(schema);
	json_object_put(doc);
	return 0;
}
