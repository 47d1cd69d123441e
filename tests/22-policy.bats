#!/usr/bin/env bats
# tests/22-policy.bats -- the one step policy (lib/policy.c): phn-claim
# records its decision in meta.json, phn-spawn runs exactly that, and
# phn-score and phn-claim agree on every step (the differential test).
#
# PHN_DIFF_CASES (default 1000) and PHN_DIFF_SEED (default 1) size and
# seed the differential test: PHN_DIFF_CASES=20000 PHN_DIFF_SEED=$RANDOM
# bats tests/22-policy.bats for a longer run.

bats_require_minimum_version 1.5.0

load helper

FAKE=$PHN_REPO/tests/fake-codex/codex

setup() {
	phn_setup
	export HOME=$T/home
	mkdir -p "$HOME" w
	phn-init >/dev/null
	export PHN_CODEX=$FAKE
	unset PHN_CODEX_CONFIG CODEX_HOME FAKE_CODEX_MODE
}

teardown() {
	if [ -n "${DIFF_ROOT:-}" ]; then
		rm -rf "$DIFF_ROOT"
	fi
}

# retry_batch BATCH_RETRIES STEP_RETRY_POLICY: one step s whose codex
# fails (exit 1); ingested as $B.
retry_batch() {
	jq -n --arg g "$(goal_words 151)" --argjson r "$1" --argjson p "$2" '{
		batch_goal_summary: $g, retries: $r,
		execution_policy: { skip_git_repo_check: true },
		jobs: [{ job_id: "j", working_directory: "w",
		    steps: [{ step_id: "s", prompt: "FAKE:exit:1",
		        retry_policy: $p }] }]
	}' >lt.json
	B=$(phn-ingest lt.json 2>/dev/null)
}

# run_once: claim one attempt and run it; sets A.
run_once() {
	A=$(phn-claim -n 1)
	[ -n "$A" ]
	run phn-spawn "$A"
	[ "$status" -eq 1 ]
}

meta() { jq -r "$1" "$A/meta.json"; }

@test "a step's retry_policy replaces the batch's retries whole: no mode, a fresh exec" {
	retry_batch '{"max_attempts": 3, "mode": "resume_last_attempt"}' \
	    '{"max_attempts": 3}'
	run_once
	A1=$A
	[ "$(jq -r .codex_thread_id "$A1/state.json")" != null ]
	run_once
	[ "$(meta .attempt_number)" = 2 ]
	[ "$(meta .invocation)" = exec ]
	[ "$(meta .resume_source)" = null ]
	run grep -c ' resume ' "$A/codex.command.txt"
	[ "$output" = 0 ]
}

@test "retry mode resume_last_attempt: meta.json says resume, and phn-spawn runs it" {
	retry_batch '{"max_attempts": 1}' \
	    '{"max_attempts": 3, "mode": "resume_last_attempt"}'
	run_once
	A1=$A
	tid=$(jq -r .codex_thread_id "$A1/state.json")
	[ "$tid" != null ]
	run_once
	[ "$(meta .invocation)" = resume ]
	[ "$(meta .codex_thread_id)" = "$tid" ]
	[ "runs/$(meta .resume_source)" = "${A1#"$T"/}" ]
	grep -q " exec resume .* $tid -\$" "$A/codex.command.txt"
}

@test "the batch's retries mode applies when the step has no retry_policy" {
	retry_batch '{"max_attempts": 2, "mode": "resume_last_attempt"}' '{}'
	run_once
	run_once
	[ "$(meta .invocation)" = resume ]
	grep -q ' exec resume ' "$A/codex.command.txt"
}

@test "resume_last_attempt with no earlier thread: a fresh exec, said in meta.json and the scoreboard" {
	retry_batch '{"max_attempts": 1}' \
	    '{"max_attempts": 2, "mode": "resume_last_attempt"}'
	A=$(phn-claim -n 1)
	"$PHN_REPO/tests/t-finish" -s failed -k codex_exit "$A"
	run -3 phn-score --steps
	run jq -r .invocation_note <<<"$output"
	assert_output --partial 'no earlier attempt has a codex thread id'
	A=$(phn-claim -n 1)
	[ "$(meta .invocation)" = exec ]
	run meta .invocation_note
	assert_output --partial 'no earlier attempt has a codex thread id'
}

@test "phn-spawn refuses a recorded resume whose source is gone, and says which" {
	retry_batch '{"max_attempts": 1}' \
	    '{"max_attempts": 3, "mode": "resume_last_attempt"}'
	run_once
	A1=$A
	A=$(phn-claim -n 1)
	[ "$(meta .invocation)" = resume ]
	rm -rf "$A1/codex_home"
	run --separate-stderr phn-spawn "$A"
	[ "$status" -eq 1 ]
	assert_stderr_line --partial "its codex_home is gone"
	[ ! -e "$A/codex.command.txt" ]
	[ "$(jq -r .failure_kind "$A/state.json")" = spawn_error ]
}

@test "phn-spawn runs meta.json's invocation, not the table's: an exec stays an exec" {
	retry_batch '{"max_attempts": 1}' \
	    '{"max_attempts": 3, "mode": "resume_last_attempt"}'
	run_once
	A=$(phn-claim -n 1)
	[ "$(meta .invocation)" = resume ]
	# The record is what runs: rewrite it (as root may) to an exec.
	chmod u+w "$A/meta.json"
	jq_edit "$A/meta.json" '.invocation = "exec" | del(.resume_source, .codex_thread_id, .retry_resume_from)'
	run phn-spawn "$A"
	[ "$status" -eq 1 ]
	run grep -c ' resume ' "$A/codex.command.txt"
	[ "$output" = 0 ]
}

@test "differential: phn-score's ready steps are what phn-claim claims; invocations are what phn-spawn runs" {
	if [ -w /dev/shm ]; then
		DIFF_ROOT=$(mktemp -d /dev/shm/phn-diff.XXXXXX)
	else
		DIFF_ROOT=$(mktemp -d "$T/diff.XXXXXX")
	fi
	mkdir "$DIFF_ROOT/w"
	phn-init --root "$DIFF_ROOT" >/dev/null
	run -0 --separate-stderr "$PHN_REPO/tests/t-policy-diff" -n "${PHN_DIFF_CASES:-1000}" \
	    -s "${PHN_DIFF_SEED:-1}" -S 10 "$DIFF_ROOT"
	assert_output --regexp "^${PHN_DIFF_CASES:-1000} cases agree"
	spawned=$(sed -n 's/.*, \([0-9]*\) attempts spawned$/\1/p' <<<"$output")
	[ "$spawned" -gt 50 ]
}

@test "differential: a claimer that misses dependents is caught" {
	# -D breaks the store on purpose: the schedule index forgets every
	# step's dependents, so an ending attempt readies none of them.
	DIFF_ROOT=$(mktemp -d "$T/diff.XXXXXX")
	mkdir "$DIFF_ROOT/w"
	phn-init --root "$DIFF_ROOT" >/dev/null
	run -1 --separate-stderr "$PHN_REPO/tests/t-policy-diff" -D -n 300 \
	    -s 1 -S 0 "$DIFF_ROOT"
	assert_stderr_line --partial 'phn-claim did not claim it'
}
