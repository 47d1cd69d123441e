/*
 * tests/fuzz/events.c - libFuzzer target: the Codex events parser.
 *
 * The input is codex's whole stdout (codex exec --json: one JSON event a
 * line), fed through phn_events_feed (lib/supervise.c), the line
 * splitting and per-line parsing phn-spawn does while codex runs, with
 * no codex and no files.  Odd inputs run as a resume that wants another
 * thread and with a usage baseline, so every branch is reachable.  The
 * outcome must be consistent: a thread id, if any, came from a
 * thread.started line.  Seeds: tests/fuzz/events/ (event lines as
 * codex-cli 0.171 prints them).  Built and run by make fuzz-check
 * (seconds) and make fuzz (FUZZ_SECONDS each).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "run.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct phn_paths p = { 0 };
	struct phn_run r;

	phn_run_init(&r, &p);
	if (size % 2 == 1) {
		r.thread_want = phn_strdup("01a21f30-0d11-7b13-8987-a027ca203137");
		r.usage_base = json_tokener_parse("{\"input_tokens\":100,"
		    "\"cached_input_tokens\":7,\"output_tokens\":10}");
	}
	phn_events_feed(&r, (const char *)data, size);
	if (r.thread_id != NULL && (size < 14 ||
	    memmem(data, size, "thread.started", 14) == NULL))
		abort();
	if (r.stop != PHN_STOP_NONE && r.stop != PHN_STOP_THREAD)
		abort();
	if (r.turn_failed && r.model_error == NULL)
		abort();
	phn_run_free(&r);
	return 0;
}
