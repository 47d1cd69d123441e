#!/usr/bin/env bats
# tests/41-score-summary.bats -- the system scoreboard keeps the row of a
# batch at rest in _sched/summary.json and uses it only while nothing in
# the batch changed (lib/summary.c); any other summary is recomputed.
# Only phn-score --write keeps one: reading alone writes nothing.

load helper

setup() {
	phn_setup
	phn-init >/dev/null
	mkdir w
	mklt lt.json '{concurrency: 4, jobs: [range(3) as $i | {job_id: "j\($i)",
	    working_directory: "w", steps: [{step_id: "s", prompt: "p"}]}]}'
	B=$(phn-ingest lt.json)
}

# run_all: claim and run every step (no codex).
run_all() {
	phn-claim --follow -0 | xargs -0 -r -n 1 phn-spawn --no-codex >/dev/null
}

# kept: every step run and the batch's row kept (phn-score --write).
kept() {
	run_all
	run -0 phn-score --write --quiet
}

# score_reads: phn-score --json, recording the files it opens in ./tr.
score_reads() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	    strace -f -e trace=open,openat -o tr phn-score --json
}

@test "a batch at rest: its row is kept, and the next run reads no attempt" {
	run_all
	[ -f "runs/$B/_sched/changes" ]
	run -0 phn-score --json
	first=$output
	[ ! -e "runs/$B/_sched/summary.json" ]
	run -0 phn-score --write --quiet
	[ -f "runs/$B/_sched/summary.json" ]
	run -0 score_reads
	[ "$output" = "$first" ]
	run grep -c 'state\.json' tr
	[ "$output" -eq 0 ]
	run jq -r '.system[0].counts.succeeded' <<<"$first"
	[ "$output" -eq 3 ]
}

@test "a change to the batch after the row was kept is seen at once" {
	kept
	run -0 phn-score --json
	run jq -r '.system[0].closed' <<<"$output"
	[ "$output" = false ]
	size=$(stat -c %s "runs/$B/_sched/changes")
	run -0 phn-close-batch "$B"
	[ "$(stat -c %s "runs/$B/_sched/changes")" -gt "$size" ]
	run -0 phn-score --json
	run jq -r '.system[0].closed' <<<"$output"
	[ "$output" = true ]
}

@test "an override after the row was kept is seen (mark-failed)" {
	kept
	run -0 phn-mark-failed "$B" j1 s -m test
	run phn-score --json
	run jq -r '.system[0].counts.failed' <<<"$output"
	[ "$output" -eq 1 ]
}

@test "a new attempt's state transition moves the key on" {
	kept
	size=$(stat -c %s "runs/$B/_sched/changes")
	run -0 phn-force-retry "$B" j0 s -m again
	run -0 phn-claim
	[ "$(stat -c %s "runs/$B/_sched/changes")" -gt "$size" ]
	run phn-score --json
	run jq -r '.system[0].counts.running' <<<"$output"
	[ "$output" -eq 1 ]
}

@test "a torn, foreign or missing summary is recomputed and rewritten" {
	kept
	run -0 phn-score --json
	good=$output
	printf '{"key": "x' >"runs/$B/_sched/summary.json"
	run -0 phn-score --json
	[ "$output" = "$good" ]
	run -0 phn-score --write --quiet
	run jq -r .key "runs/$B/_sched/summary.json"
	[ "$output" != x ]
	jq '.row |= (fromjson | .batch_id = "other" | tojson)' \
	    "runs/$B/_sched/summary.json" >s.json
	mv s.json "runs/$B/_sched/summary.json"
	run -0 phn-score --json
	[ "$output" = "$good" ]
	rm "runs/$B/_sched/summary.json"
	run -0 score_reads
	[ "$output" = "$good" ]
	run grep -c 'state\.json' tr
	[ "$output" -eq 3 ]
}

@test "a batch in progress is not kept; a changes file unreadable is not trusted" {
	run -0 phn-claim -n 1
	A=$output
	run phn-score --write --quiet
	[ "$status" -eq 3 ]
	[ ! -e "runs/$B/_sched/summary.json" ]
	run -0 phn-spawn --no-codex "$A"
	run_all
	rm "runs/$B/_sched/changes"
	run -0 phn-score --write --quiet
	[ ! -e "runs/$B/_sched/summary.json" ]
}
