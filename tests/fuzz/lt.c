/*
 * tests/fuzz/lt.c - libFuzzer target: the Launch Table validator.
 *
 * Bytes in, errors out, nothing written, as phn-ingest --check does:
 * the strict parse (phn_json_parse), then phn_lt_validate (lib/lt.c)
 * with the default harness config and a fresh temporary directory as
 * the table's directory, holding workdir/ with prompt.md and
 * schema.json (so the seeds from examples/ are valid).  A table is valid exactly when it
 * has no errors, and then every step is listed.  Seeds:
 * tests/fuzz/lt/ (the tables of examples/ and small variations).
 * Built and run by make fuzz-check (seconds) and make fuzz
 * (FUZZ_SECONDS each); run it with stdin from /dev/null.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "phn.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct phn_config cfg;
static char base[] = "/tmp/phn-fuzz-lt.XXXXXX";

static void
cleanup(void)
{
	phn_rmtree(base);
	json_object_put(cfg.doc);
}

static void
put(const char *name, const char *text)
{
	char *f = phn_path_join(base, name);

	if (phn_atomic_write(f, text, strlen(text), PHN_MKDIR) == -1)
		abort();
	free(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct phn_lt_ctx ctx;
	struct json_object *raw, *meta;
	char msg[512];

	if (cfg.doc == NULL) {
		if (mkdtemp(base) == NULL)
			abort();
		cfg.doc = phn_config_default();
		cfg.missing = 1;
		atexit(cleanup);
		put("workdir/prompt.md", "Say hello.\n");
		put("workdir/schema.json", "{\"type\":\"object\"}\n");
	}
	if ((raw = phn_json_parse((const char *)data, size, "fuzz.json", msg,
	    sizeof(msg))) == NULL)
		return 0;
	memset(&ctx, 0, sizeof(ctx));
	ctx.name = "fuzz.json";
	ctx.base = base;
	ctx.cfg = &cfg;
	meta = phn_lt_validate(raw, &ctx);
	json_object_put(raw);
	if ((meta == NULL) != (ctx.errs.n > 0))
		abort();
	if (meta != NULL && ctx.nsteps == 0)
		abort();
	json_object_put(meta);
	phn_lt_ctx_free(&ctx);
	return 0;
}
