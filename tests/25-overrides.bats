#!/usr/bin/env bats
# tests/25-overrides.bats -- operator overrides and their effect on
# phn-claim: phn-force-retry, phn-mark-failed, phn-requeue, phn-close-batch.

load helper

setup() {
	phn_setup
	phn-init >/dev/null 2>&1
}

teardown() {
	bg_cleanup
}

one_step() {	# one_step [RETRY-POLICY]
	mklt lt.json "{concurrency: 5, jobs: [{job_id: \"a\",
	    working_directory: \".\", steps: [{step_id: \"s1\", prompt: \"p\"${1:+,
	    retry_policy: $1}}, {step_id: \"s2\", prompt: \"p\",
	    depends_on: [\"s1\"]}]}]}"
	B=$(phn-ingest lt.json)
}

atts() { ls -d "runs/$B/a/steps/$1/attempts/"* 2>/dev/null; }
natts() { atts "$@" | wc -l; }
st() { jq -r "${2:-.status}" "$1/state.json"; }
meta() { jq -r "$2" "$1/meta.json"; }

@test "force-retry: a succeeded step runs once more; the nonce is applied once" {
	one_step
	d1=$(phn-claim)
	finish "$d1"
	run -0 --separate-stderr phn-force-retry "$B" a s1
	assert_json_lines
	[ "$(echo "$output" | jq -r '.ok, .action, .batch_id, .job_id, .step_id' |
	    tr '\n' ' ')" = "true force-retry $B a s1 " ]
	[ "$(echo "$output" | jq .step.force_retry_nonce)" = 1 ]
	[ "$(echo "$output" | jq -r .overrides_path)" = "$T/runs/$B/a/overrides.json" ]
	[ "$(jq .steps.s1.force_retry_nonce runs/$B/a/overrides.json)" = 1 ]
	run -0 phn-claim -n 9
	[ "${#lines[@]}" = 2 ]	# s2 (s1 succeeded) and s1 again
	d2=$(printf '%s\n' "${lines[@]}" | grep /s1/)
	[ "$(meta "$d2" .force_retry_applied_nonce)" = 1 ]
	[ "$(meta "$d2" .attempt_number)" = 2 ]
	[ "$(jq .steps.s1.force_retry_applied_nonce runs/$B/a/current.json)" = 1 ]
	finish "$d2"
	run -1 phn-claim
	[ "$(natts s1)" = 2 ]
}

@test "force-retry: a step that ran out of attempts runs again; requests collapse" {
	one_step
	finish -s failed "$(phn-claim)"
	run -1 phn-claim
	phn-force-retry "$B" a s1 >/dev/null
	phn-force-retry "$B" a s1 >/dev/null
	run -0 phn-claim
	[ "$(meta "$output" .force_retry_applied_nonce)" = 2 ]
	finish -s failed "$output"
	run -1 phn-claim
	[ "$(natts s1)" = 2 ]
}

@test "force-retry: concurrent requests are serialized (no lost update)" {
	one_step
	for i in $(seq 8); do phn-force-retry "$B" a s1 >/dev/null & done
	wait
	[ "$(jq .steps.s1.force_retry_nonce runs/$B/a/overrides.json)" = 8 ]
}

@test "mark-failed: forced terminal, mirrored in current.json, never claimed" {
	one_step
	run -0 --separate-stderr phn-mark-failed --reason "bad prompt" "$B" a s1
	assert_json_lines
	[ "$(echo "$output" | jq -r .step.forced_terminal.status)" = failed ]
	[ "$(echo "$output" | jq -r .step.forced_terminal.reason)" = "bad prompt" ]
	[ "$(echo "$output" | jq -c .ended_queued)" = '[]' ]
	[ "$(jq -r .steps.s1.forced_terminal.status runs/$B/a/current.json)" = failed ]
	run -1 phn-claim
	[ "$(natts s1)" = 0 ]
}

@test "mark-failed: ends a queued attempt nobody spawned, leaves a running one" {
	mklt lt.json '{concurrency: 5, jobs: [{job_id: "a", working_directory: ".",
	    steps: [{step_id: "s1", prompt: "p"}, {step_id: "s2", prompt: "p"}]}]}'
	B=$(phn-ingest lt.json)
	q=$(phn-claim -n 2 | grep /s1/)
	r=$(atts s2)
	finish -R "$r"
	run -0 phn-mark-failed "$B" a s1
	[ "$(echo "$output" | jq -r '.ended_queued[0]')" = "${q#$T/runs/}" ]
	[ "$(st "$q")" = canceled ]
	[ "$(st "$q" .failure_kind)" = canceled ]
	[ "$(jq -r ".steps.s1.latest.status" runs/$B/a/current.json)" = canceled ]
	[ ! -e "runs/$B/_active/a@s1@$(basename "$q")" ]
	run -0 phn-mark-failed "$B" a s2
	[ "$(echo "$output" | jq -c .ended_queued)" = '[]' ]
	[ "$(st "$r")" = running ]
}

@test "mark-failed: a queued attempt whose spawner holds spawn.lock is left alone" {
	one_step
	q=$(phn-claim)
	flock "$q/spawn.lock" sleep 3 &
	sleep 0.5
	run -0 phn-mark-failed "$B" a s1
	[ "$(echo "$output" | jq -c .ended_queued)" = '[]' ]
	[ "$(st "$q")" = queued ]
	wait
}

@test "force-retry undoes mark-failed" {
	one_step
	phn-mark-failed "$B" a s1 >/dev/null
	run -1 phn-claim
	run -0 phn-force-retry "$B" a s1
	[ "$(echo "$output" | jq .step.forced_terminal)" = null ]
	[ "$(jq .steps.s1.forced_terminal runs/$B/a/current.json)" = null ]
	run -0 phn-claim
	[[ $output == */s1/* ]]
}

@test "requeue --runner-id: the next attempt runs on that runner only" {
	one_step '{max_attempts: 3}'
	finish -s failed "$(phn-claim --runner-id rA)"
	run -0 --separate-stderr phn-requeue --runner-id rB --reason move "$B" a s1
	[ "$(echo "$output" | jq -r .step.requeue.target_runner_id)" = rB ]
	[ "$(echo "$output" | jq .step.requeue_nonce)" = 1 ]
	run -1 phn-claim --runner-id rA
	run -0 phn-claim --runner-id rB
	[ "$(meta "$output" .requeue_applied_nonce)" = 1 ]
	[ "$(jq .steps.s1.requeue_applied_nonce runs/$B/a/current.json)" = 1 ]
	finish -s failed "$output"
	run -0 phn-claim --runner-id rA	# applied: any runner again
}

@test "requeue --different: any runner but the last attempt's" {
	one_step '{max_attempts: 3}'
	finish -s failed "$(phn-claim --runner-id rA)"
	run -0 phn-requeue --different "$B" a s1
	[ "$(echo "$output" | jq .step.requeue.different_from_last)" = true ]
	run -1 phn-claim --runner-id rA
	run -0 phn-claim --runner-id rC
}

@test "requeue does not make a finished step runnable" {
	one_step
	finish "$(phn-claim)"
	d=$(phn-claim)	# s2
	finish "$d"
	phn-requeue --runner-id rB "$B" a s1 >/dev/null
	run -1 phn-claim --runner-id rB
}

@test "close-batch: write-once marker; claims stop; a second close says so (exit 1)" {
	one_step
	run -0 --separate-stderr phn-close-batch --reason done "$B"
	assert_json_lines
	[ "$(echo "$output" | jq -r .action)" = close-batch ]
	[ "$(jq -r .reason runs/$B/batch_closed.json)" = done ]
	[ "$(jq -r .batch_id runs/$B/batch_closed.json)" = "$B" ]
	run -1 phn-claim
	run -1 --separate-stderr phn-close-batch "$B"
	[ -z "$output" ]
	assert_stderr_line --partial "$B: already closed at"
	assert_stderr_prefix phn-close-batch
}

@test "exit 100: usage errors and unknown batch, job or step" {
	one_step
	run -100 --separate-stderr phn-force-retry "$B" a
	[[ $stderr == "usage: phn-force-retry"* ]]
	run -100 --separate-stderr phn-force-retry "$B" a nosuch
	assert_stderr_line "phn-force-retry: no such step in $B/a: nosuch"
	run -100 --separate-stderr phn-mark-failed "$B" nosuch s1
	assert_stderr_line "phn-mark-failed: no such job in batch $B: nosuch"
	run -100 --separate-stderr phn-mark-failed nosuch a s1
	assert_stderr_line --partial "phn-mark-failed: no such batch: nosuch"
	run -100 --separate-stderr phn-force-retry "$B" a ../s1
	assert_stderr_prefix phn-force-retry
	run -100 --separate-stderr phn-requeue "$B" a s1
	[[ $stderr == "usage: phn-requeue"* ]]
	run -100 --separate-stderr phn-requeue -d -i r1 "$B" a s1
	assert_usage_error phn-requeue
	run -100 --separate-stderr phn-requeue -i 'r/1' "$B" a s1
	assert_stderr_prefix phn-requeue
	run -100 --separate-stderr phn-mark-failed -d "$B" a s1
	assert_usage_error phn-mark-failed
	run -100 --separate-stderr phn-close-batch
	[[ $stderr == "usage: phn-close-batch"* ]]
	run -100 --separate-stderr phn-close-batch nosuch
	assert_stderr_line --partial "no such batch: nosuch"
	[ ! -e runs/nosuch ]
}

@test "exit 111: the overrides lock cannot be taken" {
	one_step
	mkdir "runs/$B/a/overrides.lock"
	run -111 --separate-stderr phn-force-retry "$B" a s1
	assert_stderr_line --partial "unable to lock"
	run -111 --separate-stderr phn-requeue -d "$B" a s1
	run -111 --separate-stderr phn-mark-failed "$B" a s1
}

@test "exit 111: close-batch cannot write its marker" {
	one_step
	chattr +i "runs/$B" 2>/dev/null || skip "chattr +i not supported here"
	run -111 --separate-stderr phn-close-batch "$B"
	chattr -i "runs/$B"
	assert_stderr_line --partial "unable to write"
}

@test "the phn front end maps the verbs" {
	one_step
	run -0 phn force-retry "$B" a s1
	[ "$(echo "$output" | jq -r .action)" = force-retry ]
	run -0 phn claim
	[[ $output == */s1/* ]]
}

@test "the override man pages' EXAMPLES run as written" {
	mklt lt.json '{concurrency: 5, retries: {max_attempts: 2}, jobs: [
	    {working_directory: ".", steps: [{prompt: "p"},
	    {prompt: "p", depends_on: ["step1"]}]}]}'
	batch=$(phn-ingest lt.json)
	B=$batch
	finish "$(phn-claim)"
	run -0 bash -c 'phn-force-retry "$0" job_0001 step1 && phn-claim' "$batch"
	[[ ${lines[1]} == */step1/* || ${lines[1]} == */step2/* ]]
	run -0 bash -c 'phn-mark-failed -m "wrong prompt" "$0" job_0001 step2 | jq .ended_queued' "$batch"
	[ "$(jq -r .steps.step2.forced_terminal.reason runs/$batch/job_0001/overrides.json)" = "wrong prompt" ]
	run -0 bash -c 'phn-requeue -d "$0" job_0001 step1 && phn-force-retry "$0" job_0001 step1' "$batch"
	jq -e '.steps.step1 | .requeue.different_from_last == true
	    and .force_retry_nonce == 2' "runs/$batch/job_0001/overrides.json"
	run -0 phn-close-batch -m "superseded" "$batch"
	[ "$(jq -r .reason "runs/$batch/batch_closed.json")" = superseded ]
}

@test "a batch closed while a claimer waits for the step lock: the re-check under the lock claims nothing" {
	one_step
	# Hold the step lock, close the batch, then let go: a claimer that
	# came in before the close must see it under the lock.
	bg_hold flock "runs/$B/a/steps/s1/step.lock" \
	    sh -c 'sleep 1.5; phn-close-batch "$0" >/dev/null' "$B"
	wait_for test -f "runs/$B/a/steps/s1/step.lock"
	sleep 0.3
	run -1 phn-claim
	[ -f "runs/$B/batch_closed.json" ]
	run atts s1
	[ -z "$output" ]
}

