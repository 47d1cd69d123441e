/*
 * tests/fuzz/json.c - libFuzzer target: the strict JSON scanner.
 *
 * Bytes in: phn_json_prescan (lib/jscan.c) must accept or refuse them
 * with a message, and phn_json_parse (lib/json.c) must agree with it:
 * every document the pre-scan accepts, json-c parses (only a bare null
 * parses to nothing).  A parsed document is printed back, which must
 * parse again.  Seeds: tests/fuzz/json/.  Built and run by make
 * fuzz-check (seconds) and make fuzz (FUZZ_SECONDS each).
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
	const char *buf = (const char *)data;
	struct json_object *o, *again;
	char msg[512];
	const char *s;
	int clean;

	clean = phn_json_prescan(buf, size, PHN_JSON_MAX_DEPTH, msg,
	    sizeof(msg)) == 0;
	if (!clean && msg[0] == '\0')
		abort();	/* a refusal always says why */
	o = phn_json_parse(buf, size, "fuzz", msg, sizeof(msg));
	if (o == NULL) {
		if (msg[0] == '\0')
			abort();
		/* The scanner's clean documents all parse, but null. */
		if (clean && strstr(msg, "the document is null") == NULL)
			abort();
		return 0;
	}
	if (!clean)
		abort();	/* the pre-scan is the gate */
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if ((again = phn_json_parse(s, strlen(s), "again", msg,
	    sizeof(msg))) == NULL)
		abort();
	json_object_put(again);
	json_object_put(o);
	return 0;
}
