#!/usr/bin/env bats
# tests/88-replay.bats -- phn-replay, a drop-in for the codex binary
# (PHN_CODEX=phn-replay) that replays a recorded attempt (PHN_REPLAY):
# each test records a session with the REAL Codex CLI against the mock
# model server, then replays it through phn-spawn into a new attempt.

load helper
load spawn-helper

codex_spawn_suite

# record PROMPT [STEP_EXTRA]: a real codex run of a one-step batch; its
# attempt in R (phn-spawn's status in RS).
record() {
	one "$@"
	R=$A
	RS=0
	phn-spawn "$R" 2>/dev/null || RS=$?
}

# replay [ENV...]: a new batch with the same step, its attempt run by
# phn-spawn with phn-replay as codex; the attempt in A, status in $status.
replay() {
	jq_edit lt.json '.batch_goal_summary += " again"'
	B=$(phn-ingest lt.json 2>/dev/null)
	claim s
	run --separate-stderr env PHN_CODEX=phn-replay PHN_REPLAY="$R" "$@" \
	    phn-spawn "$A"
}

same() { # FILTER: the same in both attempts' state.json
	[ "$(jq -c "$1" "$R/state.json")" = "$(jq -c "$1" "$A/state.json")" ] ||
	    fail "$1: $(jq -c "$1" "$R/state.json") recorded, $(jq -c "$1" "$A/state.json") replayed"
}

@test "a succeeded attempt replays to the same Run Report and status, with the recorded timing" {
	record "MOCK:slow:2"
	[ "$RS" -eq 0 ]
	# one receive time per event line
	[ "$(wc -l <"$R/codex.events.times")" -eq "$(wc -l <"$R/codex.events.jsonl")" ]
	replay
	assert_success
	assert_outcome succeeded null
	cmp "$R/final.json" "$A/final.json"
	cmp "$R/codex.events.jsonl" "$A/codex.events.jsonl"
	same .status
	same .usage
	same .codex_thread_id
	same .exit_code
	# the recorded timing: no event comes earlier than it did
	rl=$(tail -n 1 "$R/codex.events.times")
	al=$(tail -n 1 "$A/codex.events.times")
	awk -v r="$rl" -v a="$al" 'BEGIN { exit !(r >= 2 && a >= r - 0.05) }'
}

@test "PHN_REPLAY_SPEED scales the timing" {
	record "MOCK:slow:1"
	replay PHN_REPLAY_SPEED=0.5
	assert_success
	rl=$(tail -n 1 "$R/codex.events.times")
	al=$(tail -n 1 "$A/codex.events.times")
	awk -v r="$rl" -v a="$al" 'BEGIN { exit !(a >= 2 * r - 0.05) }'
	cmp "$R/final.json" "$A/final.json"
}

@test "failed attempts replay to the same failure kind: model error, rate limit, schema-invalid report" {
	record "MOCK:http500"
	[ "$RS" -eq 1 ]
	replay
	assert_failure 1
	assert_outcome failed model_error
	same .errors
	same .exit_code

	record "MOCK:schema_invalid"
	replay
	assert_failure 3
	assert_outcome needs_attention invalid_report
	same .errors
	cmp "$R/final.txt" "$A/final.txt"

	record "MOCK:rate_limit"
	rm runs/_system/pause.json
	replay
	assert_failure 1
	assert_outcome failed model_error
	[ "$(st .rate_limited)" = true ]
	[ "$(jq -r .attempt runs/_system/pause.json)" = "${A#"$T"/runs/}" ]
}

@test "a hang replays as a hang: the new attempt times out too" {
	record "MOCK:hang" '{"timeout_seconds": 2}'
	[ "$RS" -eq 124 ]
	replay
	assert_failure 124
	assert_outcome failed timeout
	[ "$(alive_in_group "$(st .pgid)")" -eq 0 ]
}

@test "a record without codex.events.times (older phn) replays its events at once; compressed events are read" {
	record "MOCK:ok"
	rm "$R/codex.events.times"
	replay
	assert_success
	cmp "$R/final.json" "$A/final.json"
	cmp "$R/codex.events.jsonl" "$A/codex.events.jsonl"
	# as phn-gc leaves it
	cp "$R/codex.events.jsonl" "$T/events.orig"
	gzip "$R/codex.events.jsonl"
	replay
	assert_success
	cmp "$T/events.orig" "$A/codex.events.jsonl"
	cmp "$R/final.json" "$A/final.json"
}

@test "phn-replay: --help, --version, and its errors" {
	run -0 phn-replay --help
	assert_output --partial "usage: phn-replay "
	run -0 phn-replay --version
	assert_output "codex-cli phn-replay"
	run -100 --separate-stderr env -u PHN_REPLAY phn-replay exec -
	assert_stderr_line "phn-replay: PHN_REPLAY is not set (want the directory of the attempt to replay)"
	run -100 --separate-stderr env PHN_REPLAY="$T/nowhere" phn-replay exec -
	assert_stderr_line --partial "phn-replay: PHN_REPLAY=$T/nowhere: not a recorded attempt"
	run -100 --separate-stderr env PHN_REPLAY="$T" PHN_REPLAY_SPEED=0 phn-replay exec -
	assert_stderr_line "phn-replay: PHN_REPLAY_SPEED=0: want a number > 0"
	run -100 --separate-stderr env PHN_REPLAY="$T" PHN_REPLAY_SPEED=x phn-replay exec -
	assert_stderr_line "phn-replay: PHN_REPLAY_SPEED=x: want a number > 0"
	run -100 --separate-stderr phn-replay bogus
	assert_stderr_line --partial "usage: phn-replay "
	run -100 --separate-stderr phn-replay --no-such-option
	assert_stderr_line "phn-replay: unrecognized option '--no-such-option'"
	# an attempt that never ran codex
	one "MOCK:ok"
	jq_edit "$A/state.json" '.status = "failed" | .failure_kind = "spawn_error" | del(.started_at)'
	run -100 --separate-stderr env PHN_REPLAY="$A" phn-replay exec - </dev/null
	assert_stderr_line --partial "nothing to replay: codex never ran"
}
