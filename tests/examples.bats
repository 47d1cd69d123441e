#!/usr/bin/env bats
# tests/examples.bats -- the porcelain scripts in examples/ (xargs, make,
# GNU parallel and watch variants) and the EXAMPLES sections of the
# phn-score, phn-cancel, phn-artifact, phn-tail and phn-gc manual pages,
# run as written, on dry-run batches (phn-spawn --no-codex).

load helper
load score-helper

EX=$PHN_REPO/examples
MINE="xargs-fanout.sh make-batch.sh parallel.sh watch.sh"

setup() {
	phn_setup
	phn init >/dev/null
}

teardown() {
	bg_cleanup
}

# A batch of four steps over two jobs, with same-job and cross-job
# dependencies: j/s0 <- j/s1 <- k/t, j/s0 <- j/s2.  Sets B.
four_steps() {
	jq -n --arg goal "$(goal_words 151)" --arg id "$1" '{batch_id: $id,
	    batch_goal_summary: $goal, concurrency: 4,
	    jobs: [{job_id: "j", working_directory: ".", steps: [
	        {step_id: "s0", prompt: "x"},
	        {step_id: "s1", prompt: "y", depends_on: ["s0"]},
	        {step_id: "s2", prompt: "z", depends_on: ["s0"]}]},
	      {job_id: "k", working_directory: ".", steps: [
	        {step_id: "t", prompt: "w", depends_on: ["j/s1"]}]}]}' >"$1.json"
	B=$(phn submit "$1.json")
	export B
}

all_succeeded() {
	run -0 phn-score -b "$1" --json
	run jq -r '.batch.counts.succeeded' <<<"$output"
	assert_output 4
}

@test "the example scripts are POSIX sh and shellcheck clean" {
	command -v shellcheck >/dev/null || skip "shellcheck not installed"
	for f in $MINE; do
		head -1 "$EX/$f" | grep -qx '#!/bin/sh'
		shellcheck -s sh "$EX/$f"
	done
}

@test "xargs-fanout.sh runs every step, then prints the scoreboard" {
	four_steps bx
	run -0 sh "$EX/xargs-fanout.sh" -n -j 2 -b bx
	assert_line --index 0 --partial 'batch bx  succeeded  4/4 steps succeeded'
	all_succeeded bx
	run -0 sh "$EX/xargs-fanout.sh" -n
	assert_line --partial 'bx'
	[ "$(ls -d runs/bx/*/steps/*/attempts/* | wc -l)" -eq 4 ]
	run -100 sh "$EX/xargs-fanout.sh" -x
}

@test "make-batch.sh: one target per step, dependencies as prerequisites" {
	four_steps bm
	run -0 sh "$EX/make-batch.sh" -n -j 3 -k Makefile.bm bm
	all_succeeded bm
	run grep -E '^(j/s1|j/s2|k/t|all):' Makefile.bm
	assert_output 'all: j/s0 j/s1 j/s2 k/t
j/s1: j/s0
j/s2: j/s0
k/t: j/s1'
	run -100 sh "$EX/make-batch.sh" -n nosuch
	run -100 sh "$EX/make-batch.sh"
}

@test "make-batch.sh: make -j bounds the agents; a failing step does not stop make" {
	jq -n --arg goal "$(goal_words 151)" '{batch_id: "bf",
	    batch_goal_summary: $goal, concurrency: 8,
	    jobs: [{job_id: "j", working_directory: ".", steps: [
	        {step_id: "a", prompt: "x", fake_exit_code: 1},
	        {step_id: "b", prompt: "y"}, {step_id: "c", prompt: "z"}]}]}' >bf.json
	phn submit bf.json >/dev/null
	run -1 sh "$EX/make-batch.sh" -n -j 1 bf
	run -1 phn-score -b bf --json
	run jq -c '[.batch.counts.succeeded, .batch.counts.failed]' <<<"$output"
	assert_output '[2,1]'
}

@test "parallel.sh: the same with GNU parallel and its job log" {
	command -v parallel >/dev/null || skip "GNU parallel not installed"
	four_steps bp
	run -0 sh "$EX/parallel.sh" -n -j 2 -b bp -l joblog
	all_succeeded bp
	[ "$(tail -n +2 joblog | wc -l)" -eq 4 ]
	run -0 awk 'NR > 1 && $7 != 0' joblog
	assert_output ''
}

@test "watch.sh waits for the batch, one line per change, then lists what failed" {
	jq -n --arg goal "$(goal_words 151)" '{batch_id: "bw",
	    batch_goal_summary: $goal, concurrency: 2,
	    jobs: [{job_id: "j", working_directory: ".", steps: [
	        {step_id: "a", prompt: "x", fake_sleep_seconds: 1},
	        {step_id: "b", prompt: "y", fake_exit_code: 1},
	        {step_id: "c", prompt: "z", depends_on: ["b"]}]}]}' >bw.json
	phn submit bw.json >/dev/null
	bg_hold phn tick --no-codex
	run -1 sh "$EX/watch.sh" bw 0.2
	assert_line --regexp '^[0-9:]{8} [0-3]/3 succeeded, '
	assert_line --regexp '^[0-9:]{8} 1/3 succeeded, 0 running, 0 ready, 1 need attention$'
	assert_line '  j/b: failed (codex_exit)'
	assert_line '  j/c: blocked: depends_on: j.b not succeeded'
	run -100 sh "$EX/watch.sh"
	run -100 sh "$EX/watch.sh" nosuch
}

# --- the EXAMPLES sections of the manual pages --------------------------

@test "phn-score(1) EXAMPLES" {
	four_steps bs
	run -3 sh -c 'phn-score'
	assert_line --index 0 --partial BATCH
	assert_line --index 1 --partial bs
	run -0 sh -c 'phn-score -b "$B" --steps | jq -c '\''select(.attention != null)'\'''
	assert_output ''
	bg_hold phn tick --no-codex
	run -0 sh -c 'while phn-score -q -b "$B"; [ $? -eq 3 ]; do sleep 5; done'
	run -0 sh -c 'phn-score -Wq'
	assert_output ''
	[ "$(jq .counts.succeeded "runs/$B/scoreboard.batch.json")" -eq 4 ]
}

@test "phn-cancel(1), phn-artifact(1), phn-tail(1) and phn-gc(1) EXAMPLES" {
	jq -n --arg goal "$(goal_words 151)" '{batch_goal_summary: $goal,
	    concurrency: 2, jobs: [{job_id: "j", working_directory: ".", steps: [
	        {step_id: "step1", prompt: "x"},
	        {step_id: "slow", prompt: "y", fake_sleep_seconds: 60}]}]}' >lt.json
	B=$(phn submit lt.json)
	export B
	bg_hold phn tick --no-codex
	wait_for sh -c 'phn-score -b "$B" --steps | grep -q "\"state_status\":\"running\""'
	wait_for sh -c 'phn-score -b "$B" --steps | jq -se "any(.[]; .step_id == \"step1\" and .status == \"succeeded\")" >/dev/null'
	run -0 sh -c 'phn-score -b "$B" --steps |
	    jq -r '\''select(.status == "running") | .attempt_dir'\'' |
	    xargs -r phn-cancel'
	run jq -r .status <<<"$output"
	assert_output canceled
	run -0 sh -c 'phn-artifact "$(phn-score -b "$B" --steps |
	    jq -r '\''select(.step_id == "step1") | .attempt_dir'\'')" final.json'
	run jq -r .status <<<"$output"
	assert_output ok
	ATTEMPT=runs/$(phn-score -b "$B" --steps | jq -r 'select(.step_id == "step1") | .attempt_dir')
	export ATTEMPT
	printf '%s\n' '{"type":"item.started","item":{"type":"command_execution","command":"make test"}}' \
	    '{"type":"turn.completed"}' >"$ATTEMPT/codex.events.jsonl"
	run -0 sh -c 'phn-tail -f -n 5 "$ATTEMPT" | jq -r '\''select(.type == "item.started") |
	    .item.command // .item.type'\'''
	assert_output 'make test'
	jq_edit "$ATTEMPT/state.json" '.ended_at = "2020-01-01T00:00:00Z"'
	run -0 sh -c 'phn-gc -D | jq -r .path | sed '\''s|^|runs/|'\'' | xargs -r du -cb | tail -1'
	assert_output --regexp '^[0-9]+	total$'
}

@test "examples/demo.sh (what make demo runs) succeeds and resumes step1's thread" {
	PHN_DEMO_DIR=$BATS_TEST_TMPDIR/demo run sh "$EX/demo.sh"
	echo "$output"
	[ "$status" -eq 0 ]
	assert_output --partial 'demo: the scoreboard'
	if sh "$PHN_REPO/.ci/codex-path.sh" >/dev/null 2>&1; then
		assert_output --partial 'step2 resumed thread'
		assert_output --partial 'mock ok: 1 prior user message(s) in input'
	else
		assert_output --partial 'dry run: codex was not installed'
	fi
}
