#!/usr/bin/env bats
# tests/40-phn-score.bats -- derived statuses, attention kinds, outputs and
# exit codes of phn-score, on attempt directories built by hand.

load helper
load score-helper

setup() {
	phn_setup
	phn-init >/dev/null
}

teardown() {
	bg_cleanup
}

# One job j with steps a and b (b depends on a).
two_steps() {
	mk_batch '[{"job_id": "j", "working_directory": ".", "steps": [
	    {"step_id": "a", "prompt": "x"},
	    {"step_id": "b", "prompt": "y", "depends_on": ["a"]}]}]' "${1:-.}"
}

# scored STATUS FILTER WANT PHN-SCORE-ARG...: phn-score exits STATUS, and
# its output through jq -rc FILTER is WANT.
scored() {
	local st=$1 filter=$2 want=$3
	shift 3
	run -"$st" phn-score "$@"
	run -0 jq -rc "$filter" <<<"$output"
	assert_output "$want"
}

step_field() {	# STEP FIELD: from phn-score --steps; phn-score's status
	local out rc
	out=$(phn-score -b "$B" --steps)
	rc=$?
	jq -r --arg s "$1" "select(.step_id == \$s) | $2" <<<"$out"
	return $rc
}

@test "no store yet: says so, exit 100, nothing created" {
	rm -rf runs
	run -100 --separate-stderr phn-score --json
	[ -z "$output" ]
	assert_stderr_line "phn-score: no runs store at $T/runs (run phn init, or give --root)"
	[ ! -e runs ]
}

@test "an empty store: empty system scoreboard, exit 0" {
	run -0 phn-score --json
	assert_output '{"system":[],"runners":[]}'
	run -0 phn-score
	assert_line --index 0 --partial 'BATCH'
}

@test "fresh batch: ready and blocked (with the dependency), exit 3" {
	two_steps
	run -3 phn-score -b "$B" --json
	assert_json_lines
	run jq -c '.batch.counts' <<<"$output"
	assert_output '{"blocked":1,"ready":1,"running":0,"succeeded":0,"failed":0,"needs_attention":0,"canceled":0}'
	scored 3 '.batch.blocked[0].reasons[0]' 'depends_on: j.a not succeeded' -b "$B" --json
	scored 3 '.system[0].batch_id, .system[0].steps_total, .system[0].outcome' "$B"$'\n2\nin_progress' --json
}

@test "succeeded unblocks the dependent; all succeeded exits 0" {
	two_steps
	mk_attempt j a succeeded
	scored 3 '.batch.counts | "\(.succeeded) \(.ready) \(.blocked)"' '1 1 0' -b "$B" --json
	mk_attempt j b succeeded
	scored 0 '.batch.outcome, .batch.remaining_seconds_estimate' $'succeeded\n0' -b "$B" --json
	run -0 phn-score
}

@test "any success beats a later failure" {
	two_steps
	mk_attempt j a succeeded
	mk_attempt j a failed '.failure_kind = "codex_exit" | .exit_code = 2'
	scored 3 '.batch.counts.succeeded, (.batch.failures | length)' $'1\n0' -b "$B" --json
}

@test "failed without retries: failed, attention failed, failures item, exit 1" {
	two_steps
	mk_attempt j a failed '.failure_kind = "codex_exit" | .exit_code = 2'
	printf '{"status":"failed","summary":"broke it"}\n' >"runs/$ATT/final.json"
	run -1 phn-score -b "$B" --json
	run jq -c '.batch.failures[0] | [.step_id, .state_status, .exit_code, .failure_kind, .final_status, .final_summary, .run_id]' <<<"$output"
	assert_output "[\"a\",\"failed\",2,\"codex_exit\",\"failed\",\"broke it\",\"$RUN\"]"
	scored 1 '[.batch.attention[] | [.step_id, .kind, .failure_kind]]' '[["a","failed","codex_exit"]]' -b "$B" --json
	# the dependent is blocked by the failure; nothing can run: exit 1
	run -1 step_field b '.status + " " + .reasons[0]'
	assert_output 'blocked depends_on: j.a not succeeded'
	run -1 phn-score
	run -1 phn-score -b "$B"
	assert_output --partial 'codex_exit (exit 2)'
}

@test "a failure the retry policy will retry is ready (exit 3), backoff shown" {
	two_steps '.jobs[0].steps[0].retry_policy = {max_attempts: 2, backoff_seconds: 100000}'
	mk_attempt j a failed '.failure_kind = "codex_exit"'
	run -3 step_field a '.status + " " + (.not_before != null | tostring)'
	assert_output 'ready true'
	scored 3 '.batch.ready[0].why' 'retry' -b "$B" --json
	mk_attempt j a failed '.failure_kind = "codex_exit"'
	run -1 step_field a '.status + " " + (.attempts | tostring)'
	assert_output 'failed 2'
}

@test "exponential backoff: base * factor^(n-1) after the n-th attempt" {
	two_steps '.jobs[0].steps[0].retry_policy = {max_attempts: 3, backoff_seconds: {base: 100, factor: 3}}'
	mk_attempt j a failed
	mk_attempt j a failed
	run -3 step_field a '(.not_before | sub("\\.[0-9]+Z$"; "Z") | fromdate) - (.ended_at | fromdate)'
	assert_output 300
}

@test "retry_on_statuses matches statuses and failure kinds" {
	two_steps '.jobs[0].steps[0].retry_policy = {max_attempts: 3, retry_on_statuses: ["timeout"]}'
	mk_attempt j a failed '.failure_kind = "codex_exit"'
	run -1 step_field a .status
	assert_output failed
	rm -rf "runs/$ATT"
	mk_attempt j a failed '.failure_kind = "timeout"'
	run -3 step_field a '.status + " " + (.not_before | tostring)'
	assert_output 'ready null'
}

@test "needs_attention and canceled; canceled raises no attention" {
	mk_batch '[{"job_id": "j", "working_directory": ".", "steps": [
	    {"step_id": "n", "prompt": "x"}, {"step_id": "c", "prompt": "y"}]}]'
	mk_attempt j n needs_attention '.failure_kind = "invalid_report"'
	mk_attempt j c canceled '.failure_kind = "canceled"'
	scored 1 '[.batch.counts.needs_attention, .batch.counts.canceled, [.batch.attention[].kind], [.batch.failures[].step_id]]' '[1,1,["needs_attention"],["n"]]' -b "$B" --json
	scored 1 '.system[0].attention_steps' 1 --json
}

@test "harness faults do not count, up to limits.max_harness_retries in a row" {
	two_steps
	for i in 1 2 3; do
		mk_attempt j a failed '.failure_kind = "orphaned" | .harness_fault = true'
		run -3 step_field a '.status + " " + (.attempts_counted | tostring)'
		assert_output 'ready 0'
	done
	mk_attempt j a failed '.failure_kind = "claim_expired" | .harness_fault = true'
	run -1 step_field a '.status + " " + .failure_kind'
	assert_output 'failed claim_expired'
}

@test "running with a live spawner: running, no attention" {
	two_steps
	mk_attempt j a running '.host = $host | .boot_id = $boot | .last_heartbeat_at = $now | .last_event_at = $now | .current_item = "cmd: make"'
	bg_lock "runs/$ATT/spawn.lock"
	run -3 phn-score -b "$B" --json
	run jq -c '[.batch.counts.running, .batch.attention, .batch.running[0].current_item, .batch.running[0].runner_id, .batch.running[0].run_id == "'"$RUN"'"]' <<<"$output"
	assert_output '[1,[],"cmd: make","runner_test",true]'
}

@test "stuck: spawner alive but no codex event for stuck_after_seconds" {
	two_steps
	mk_attempt j a running ".host = \$host | .boot_id = \$boot | .last_heartbeat_at = \$now | .last_event_at = \"$(iso_ago 4000)\""
	bg_lock "runs/$ATT/spawn.lock"
	scored 3 '[.batch.counts.running, [.batch.attention[] | [.kind, .step_id]], .batch.stuck_steps]' '[1,[["stuck","a"]],1]' -b "$B" --json
	scored 3 '.system[0].attention_steps' 1 --json
}

@test "orphaned: spawn.lock free on this host, or a stale heartbeat elsewhere" {
	two_steps
	mk_attempt j a running '.host = $host | .boot_id = $boot | .last_heartbeat_at = $now | .last_event_at = $now'
	scored 3 '[.batch.counts.running, [.batch.attention[] | [.kind, .reason]]]' '[1,[["orphaned","spawner gone (spawn.lock free or heartbeat stale)"]]]' -b "$B" --json
	# another host: judged by heartbeat age
	jq_edit "runs/$ATT/state.json" '.host = "elsewhere"'
	run -3 step_field a '.attention'
	assert_output null
	jq_edit "runs/$ATT/state.json" --arg t "$(iso_ago 1000)" '.last_heartbeat_at = $t'
	run -3 step_field a '.attention'
	assert_output orphaned
}

@test "queued past the claim lease is orphaned; queued within it is not" {
	two_steps
	mk_attempt j a queued
	run -3 step_field a '.status + " " + (.attention | tostring) + " " + .current_item'
	assert_output 'running null queued/initializing'
	jq_edit "runs/$ATT/state.json" --arg t "$(iso_ago 1000)" '.claimed_at = $t'
	scored 3 '.batch.attention[0] | .kind + ": " + .reason' 'orphaned: claim lease expired before phn-spawn picked it up' -b "$B" --json
}

@test "an attempt without state.json is queued/initializing; a corrupt one needs attention" {
	two_steps
	mk_attempt j a running
	rm "runs/$ATT/state.json"
	scored 3 '[.batch.counts.running, .batch.running[0].current_item]' '[1,"queued/initializing"]' -b "$B" --json
	echo '{not json' >"runs/$ATT/state.json"
	run -1 step_field a '.status + " " + .attention'
	assert_output 'needs_attention needs_attention'
}

@test "mark-failed (overrides.json) shows at once and beats success" {
	two_steps
	mk_attempt j a succeeded
	jq -n '{version: 1, steps: {a: {forced_terminal: {status: "failed", reason: "bad output", set_at: "2026-01-01T00:00:00Z"}}}}' >"runs/$B/j/overrides.json"
	scored 3 '[.batch.counts.failed, .batch.failures[0].forced_terminal.reason, [.batch.attention[].kind]]' '[1,"bad output",["failed"]]' -b "$B" --json
	# as for phn-claim, dependents look only at the success
	run -3 step_field b .status
	assert_output ready
	run -3 phn-score -b "$B"
	assert_output --partial 'forced by operator'
	# a step that never succeeded blocks its dependents
	rm -r "runs/$ATT"
	run -1 step_field b '.status + " " + .reasons[0]'
	assert_output 'blocked depends_on: j.a not succeeded'
}

@test "a pending force-retry makes a succeeded step ready again" {
	two_steps
	mk_attempt j a succeeded
	mk_attempt j b succeeded
	run -0 phn-score -b "$B" -q
	jq -n '{version: 1, steps: {a: {force_retry_nonce: 1}}}' >"runs/$B/j/overrides.json"
	run -3 step_field a '.status + " " + (.force_retry_pending | tostring)'
	assert_output 'ready true'
	# applied by the claimer: recorded in current.json or in the new meta.json
	mk_attempt j a succeeded
	jq_edit "runs/$ATT/meta.json" '.force_retry_applied_nonce = 1'
	run -0 step_field a '.status + " " + (.force_retry_pending | tostring)'
	assert_output 'succeeded false'
}

@test "closed batch: steps that never ran are blocked, exit 1" {
	two_steps
	jq -n --arg b "$B" '{batch_id: $b, closed_at: "2026-01-01T00:00:00Z", reason: "enough"}' >"runs/$B/batch_closed.json"
	scored 1 '[.batch.closed, .batch.counts.blocked, .batch.blocked[0].reasons[0], .batch.outcome]' '[true,2,"batch closed: enough","failed"]' -b "$B" --json
}

@test "cross-job dependency JOB/STEP" {
	mk_batch '[{"job_id": "p", "working_directory": ".", "steps": [{"step_id": "s", "prompt": "x"}]},
	    {"job_id": "q", "working_directory": ".", "steps": [{"step_id": "t", "prompt": "y", "depends_on": ["p/s"]}]}]'
	run -3 step_field t '.status + " " + .reasons[0]'
	assert_output 'blocked depends_on: p.s not succeeded'
	mk_attempt p s succeeded
	run -3 step_field t .status
	assert_output ready
}

@test "resume_from: resolved source, missing base, selectors, locality" {
	two_steps '.jobs[0].steps[1].resume_from = {step_id: "a"}'
	mk_attempt j a succeeded
	src=$RUN
	run -3 phn-score -b "$B" --json
	run jq -c '.batch.resume_steps[0] | [.step_id, .derived_status, .resume_from_resolved.selected_run_id == "'"$src"'", .resume_from_resolved.selector, (.resume_from_resolved.resume_base_dir | endswith("/codex_home"))]' <<<"$output"
	assert_output '["b","ready",true,"latest_successful",true]'
	rmdir "runs/$ATT/codex_home"
	run -1 step_field b '.status + " " + .reasons[0]'
	assert_output "blocked resume_from: resume base missing: $ATT/codex_home"
	mkdir "runs/$ATT/codex_home"
	# locality: shared_filesystem false, no transfer, source runner gone
	jq_edit runs/_system/harness_config.json '.defaults.runner_pool = {shared_filesystem: false, resume_base_transfer_enabled: false, runner_ids: ["runner_b"]}'
	run -1 step_field b '.reasons[0]'
	assert_output 'resume_from locality: source runner runner_test not available (shared_filesystem=false)'
}

@test "resume_from: a source with an unfinished attempt blocks" {
	two_steps '.jobs[0].steps[1].resume_from = {step_id: "a"} | .jobs[0].steps[1].depends_on = []'
	mk_attempt j a succeeded
	mk_attempt j a running '.host = "elsewhere" | .last_heartbeat_at = $now | .last_event_at = $now'
	run -3 step_field b '.status + " " + .reasons[0]'
	assert_output "blocked resume_from: cannot resolve source: resume_from source has an unfinished attempt: a run_id=$RUN"
}

@test "resume_from selector run_id: unknown and non-terminal sources" {
	two_steps '.jobs[0].steps[1].resume_from = {step_id: "a", selector: "run_id", run_id: "run_nope"}'
	run -3 step_field b '.reasons[1]'
	assert_output 'resume_from: cannot resolve source: resume_from cannot resolve source attempt: a selector=run_id run_id=run_nope'
}

@test "token usage totals, elapsed time and estimate" {
	two_steps
	mk_attempt j a succeeded '.usage = {input_tokens: 100, cached_input_tokens: 10, output_tokens: 5, reasoning_output_tokens: 1}'
	mk_attempt j b running '.host = "elsewhere" | .last_heartbeat_at = $now | .last_event_at = $now | .usage = {input_tokens: 300, cached_input_tokens: 0, output_tokens: 7, reasoning_output_tokens: 0} | .usage_attempt = {input_tokens: 200, cached_input_tokens: 0, output_tokens: 2, reasoning_output_tokens: 0}'
	scored 3 '[.batch.usage.input_tokens, .batch.usage.output_tokens, .batch.usage.cached_input_tokens, (.batch.elapsed_seconds >= 0), (.batch.remaining_seconds_estimate >= 0)]' '[300,7,10,true,true]' -b "$B" --json
	run -3 step_field a '.usage.input_tokens'
	assert_output 100
}

@test "--steps is JSON Lines, one object per step, for jq" {
	two_steps
	mk_batch '[{"job_id": "k", "working_directory": ".", "steps": [{"step_id": "z", "prompt": "x"}]}]' '.batch_id = "second"'
	run -3 phn-score --steps
	assert_json_lines
	[ "${#lines[@]}" -eq 3 ]
	run -3 phn-score --steps -b second
	[ "${#lines[@]}" -eq 1 ]
	run jq -r '[.batch_id, .job_id, .step_id, .status, .attempts] | @tsv' <<<"$output"
	assert_output "$(printf 'second\tk\tz\tready\t0')"
}

@test "system rows: attention first, then running, then newest; goal preview" {
	mk_batch '[{"job_id": "j", "working_directory": ".", "steps": [{"step_id": "a", "prompt": "x"}]}]' '.batch_id = "b1" | .batch_goal_summary = ("line\n" + .batch_goal_summary)'
	mk_attempt j a succeeded
	mk_batch '[{"job_id": "j", "working_directory": ".", "steps": [{"step_id": "a", "prompt": "x"}]}]' '.batch_id = "b2"'
	mk_attempt j a failed
	mk_batch '[{"job_id": "j", "working_directory": ".", "steps": [{"step_id": "a", "prompt": "x"}]}]' '.batch_id = "b3"'
	mk_attempt j a running '.host = "elsewhere" | .last_heartbeat_at = $now | .last_event_at = $now'
	scored 3 '[.system[].batch_id] | join(" ")' 'b2 b3 b1' --json
	run -3 phn-score --json
	run jq -r '.system[] | select(.batch_id == "b1") | .batch_goal_summary_preview' <<<"$output"
	[ "${output:0:7}" = 'line w1' ]
	[ "${output: -1}" = '…' ]
	[ "$(printf '%s' "$output" | wc -m)" -eq 121 ]
}

@test "--write replaces the scoreboard files atomically; -q prints nothing" {
	two_steps
	mk_attempt j a succeeded
	run -3 phn-score --write -q
	assert_output ''
	run jq -r '.batch_id, .counts.succeeded' "runs/$B/scoreboard.batch.json"
	assert_output "$B
1"
	run jq -r '.[0].batch_id, (. | type)' runs/_system/scoreboard.system.json
	assert_output "$B
array"
	# sorted keys, 2-space indent, trailing newline
	jq -S --indent 2 . "runs/$B/scoreboard.batch.json" | diff - "runs/$B/scoreboard.batch.json"
	# replaced, not rewritten in place: a reader holding the old file
	# keeps it whole, and each name gets a new inode
	exec 4<"runs/$B/scoreboard.batch.json"
	old=$(cat "runs/$B/scoreboard.batch.json")
	ib=$(stat -c %i "runs/$B/scoreboard.batch.json")
	is=$(stat -c %i runs/_system/scoreboard.system.json)
	run -3 phn-score --write -b "$B" --json
	assert_json_lines
	run jq -r '.batch.batch_id' <<<"$output"
	assert_output "$B"
	[ "$(cat <&4)" = "$old" ]
	exec 4<&-
	[ "$(stat -c %i "runs/$B/scoreboard.batch.json")" != "$ib" ]
	[ "$(stat -c %i runs/_system/scoreboard.system.json)" != "$is" ]
	# no temporary file is left behind
	[ -z "$(find runs -name '.scoreboard*')" ]
}

@test "reading never creates or changes a file (terminal attempt immutable)" {
	two_steps
	mk_attempt j a succeeded
	mk_attempt j b running '.host = $host | .boot_id = $boot | .last_heartbeat_at = $now'
	before=$(store_snapshot)
	run -3 phn-score
	run -3 phn-score --json
	run -3 phn-score --steps
	run -3 phn-score -b "$B"
	[ "$(store_snapshot)" = "$before" ]
	[ ! -e "runs/$B/j/steps/a/attempts/${ATT##*/}/state.lock" ]
	[ ! -e "runs/$ATT/spawn.lock" ]
}

@test "the human tables" {
	two_steps
	mk_attempt j a failed '.failure_kind = "timeout" | .exit_code = 124'
	run -1 phn-score
	assert_line --index 0 --regexp '^BATCH +STEPS +DONE +RUN +READY +BLOCK +FAIL +ATTN +ELAPSED +ETA +GOAL$'
	assert_line --index 1 --regexp "^$B +2 +0 +0 +0 +1 +1 +1 "
	run -1 phn-score -b "$B"
	assert_line --index 0 --partial "batch $B  failed  0/2 steps succeeded"
	assert_line --regexp '^j +a +failed +1 +run_[^ ]+ +1m20s +timeout \(exit 124\)$'
	assert_line --regexp '^j +b +blocked +0 +- +- +depends_on: j.a not succeeded$'
	# no colour unless a terminal
	refute_output --partial $'\033['
}

@test "--watch refreshes until nothing is in flight, then exits with the status" {
	two_steps
	mk_attempt j a succeeded
	mk_attempt j b running '.host = "elsewhere" | .last_heartbeat_at = $now | .last_event_at = $now'
	st=runs/$ATT/state.json
	( sleep 1; jq '.status = "succeeded" | .ended_at = (now | todate)' "$st" >"$st.new" && mv "$st.new" "$st" ) 3>&- &
	run -0 phn-score --watch -I 0.2 -b "$B"
	assert_output --partial "$B"
	assert_output --regexp '\[#+\] 2/2'
	[ "$(grep -c 'phn-score --watch' <<<"$output")" -ge 2 ]
	run -0 phn-score -w
	assert_output --partial '2/2'
}

@test "usage errors and unknown batches exit 100" {
	run -100 --separate-stderr phn-score --bogus
	assert_stderr_line --partial 'usage: phn-score'
	run -100 --separate-stderr phn-score --json --steps
	assert_usage_error phn-score
	run -100 --separate-stderr phn-score extra
	assert_usage_error phn-score
	run -100 --separate-stderr phn-score -w -I 0
	assert_stderr_line --partial -- '--interval: invalid value'
	run -100 --separate-stderr phn-score -b nope
	assert_stderr_line "phn-score: no such batch: nope (in $T/runs)"
	run -100 --separate-stderr phn-score -b ../x
	assert_stderr_prefix phn-score
}

@test "an invalid config exits 100; an unreadable batch is skipped with a warning" {
	two_steps
	cp runs/_system/harness_config.json cfg.bak
	jq_edit runs/_system/harness_config.json '.defaults.kill_grace_seconds = -1'
	run -100 --separate-stderr phn-score
	assert_stderr_prefix phn-score
	cp cfg.bak runs/_system/harness_config.json
	mk_batch '[{"job_id": "k", "working_directory": ".", "steps": [{"step_id": "z", "prompt": "x"}]}]' '.batch_id = "zz"'
	mk_attempt k z succeeded
	echo '{' >runs/zz/batch_meta.json
	run -3 --separate-stderr phn-score --json
	assert_stderr_line --partial 'warning:'
	assert_stderr_line --partial '(batch skipped)'
	run jq -r '.system | length' <<<"$output"
	assert_output 1
	run -100 --separate-stderr phn-score -b zz
	assert_stderr_prefix phn-score
}

@test "a write that fails exits 111" {
	two_steps
	mkdir -p "runs/$B/scoreboard.batch.json/x"
	run -111 --separate-stderr phn-score --write -q
	assert_stderr_line --partial "phn-score: unable to write $T/runs/$B/scoreboard.batch.json:"
}
