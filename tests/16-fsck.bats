#!/usr/bin/env bats
# tests/16-fsck.bats -- phn-fsck: every kind of problem is found and named,
# --repair rebuilds what is derived (and only that), exit statuses.

load helper
load score-helper

setup() {
	phn_setup
	phn init >/dev/null
	# three steps: s0 -> s1, and s2 alone; all run once
	jq -n --arg goal "$(goal_words 151)" '{batch_goal_summary: $goal,
	    concurrency: 3, jobs: [{job_id: "j", working_directory: ".",
	    steps: [{step_id: "s0", prompt: "a"},
	      {step_id: "s1", prompt: "b", depends_on: ["s0"]},
	      {step_id: "s2", prompt: "c"}]}]}' >lt.json
	B=$(phn submit lt.json)
	export B
	phn tick --no-codex >/dev/null
	S0=$(ls -d "runs/$B/j/steps/s0/attempts/"*)
}

teardown() {
	bg_cleanup
}

# A store path as phn-fsck prints it: relative to the runs root.
phn_rel() {
	local p=${1#"$T/"}
	echo "${p#runs/}"
}

# A second, unrun batch of one step; sets B2.
second_batch() {
	jq -n --arg goal "$(goal_words 151)" '{batch_goal_summary: $goal,
	    jobs: [{job_id: "k", working_directory: ".",
	    steps: [{step_id: "t", prompt: "x"}]}]}' >lt2.json
	B2=$(phn-ingest lt2.json)
}

@test "a clean store: no output, exit 0 (text and --json)" {
	run -0 --separate-stderr phn-fsck
	assert_output ''
	[ -z "$stderr" ]
	run -0 phn-fsck --json
	assert_output ''
}

@test "temp files a dead writer left are found and removed" {
	touch "runs/$B/j/.current.json.Ab12Cd"
	mkdir runs/.ingest-xY34zz
	run -1 phn-fsck
	assert_line "$B/j/.current.json.Ab12Cd: temp: a temp file a dead writer left"
	assert_line ".ingest-xY34zz: temp: a temp file a dead writer left"
	run -0 phn-fsck --repair
	assert_line --partial "$B/j/.current.json.Ab12Cd: temp: a temp file a dead writer left (removed)"
	[ ! -e "runs/$B/j/.current.json.Ab12Cd" ]
	[ ! -e runs/.ingest-xY34zz ]
	# lock files and the store's own dot files are not temp files
	[ -e runs/_queue/.queue.lock ] || touch runs/_queue/.queue.lock
	run -0 phn-fsck
}

@test "derived indexes: a lost schedule index, a stale _active entry, a leftover claim, a torn current.json; --repair rebuilds them" {
	printf '{"jobs": [' >"runs/$B/_sched/index.json"
	touch "runs/$B/_active/j@s2@20260101T000000Z_run_gone"
	touch "runs/$B/_claimed/j@s1@tok"
	printf '{"steps": {' >"runs/$B/j/current.json"
	run -1 phn-fsck
	assert_line "$B/_sched/index.json: sched_index: missing or unreadable"
	assert_line "$B/_active/j@s2@20260101T000000Z_run_gone: active_index: its attempt does not exist"
	assert_line "$B/_claimed/j@s1@tok: claimed_index: a claim a claimer did not finish"
	assert_line --partial "$B/j/current.json: current: "
	run -0 phn-fsck --repair --json
	assert_json_lines
	run jq -sc 'map([.kind, .repaired, .action]) | unique' <<<"$output"
	assert_output '[["active_index",true,"rebuilt"],["claimed_index",true,"rebuilt"],["current",true,"rebuilt"],["sched_index",true,"rebuilt"]]'
	run -0 phn-fsck
	[ -f "runs/$B/_sched/index.json" ]
	run jq -r '.steps.s0.latest.status' "runs/$B/j/current.json"
	assert_output succeeded
}

@test "current.json that disagrees with the attempts is found and rebuilt" {
	jq_edit "runs/$B/j/current.json" '.steps.s0.latest.status = "failed"'
	run -1 phn-fsck
	assert_output "$B/j/current.json: current: steps.s0.latest disagrees with the attempts"
	run -0 phn-fsck --repair
	run jq -r '.steps.s0.latest.status' "runs/$B/j/current.json"
	assert_output succeeded
}

@test "a runnable step missing from the ready index, and a live attempt missing its _active entry" {
	second_batch
	run -0 phn-claim --rescan -b "$B2"
	[ -f "runs/$B2/_ready/k@t" ]
	rm "runs/$B2/_ready/k@t"
	run -1 phn-fsck
	assert_output "$B2/_ready/k@t: ready_index: missing for a runnable step (new)"
	run -0 phn-fsck --repair
	[ -f "runs/$B2/_ready/k@t" ]
	# a claimed (queued) attempt holds an _active entry
	A=$(phn-claim -n 1 -b "$B2")
	[ -n "$A" ]
	run -0 phn-fsck
	rm "runs/$B2/_active/"k@t@*
	run -1 phn-fsck
	assert_output --partial "active_index: missing for a queued attempt"
	run -0 phn-fsck --repair
	run -0 phn-fsck
}

@test "faulted attempts (an expired lease, a dead spawner, no state.json) are found and reaped" {
	second_batch
	A=$(phn-claim -n 1 -b "$B2")
	jq_edit "$A/state.json" --arg t "$(iso_ago 4000)" '.claimed_at = $t'
	run -1 phn-fsck
	assert_output "$(phn_rel "$A"): fault: queued, its claim lease expired"
	run -0 phn-fsck --repair
	assert_output "$(phn_rel "$A"): fault: queued, its claim lease expired (reaped)"
	run jq -r '.failure_kind' "$A/state.json"
	assert_output claim_expired
	# a new attempt of t, claimed, whose state went missing (claimer died)
	A2=$(phn-claim -n 1 -b "$B2")
	[ "$A2" != "$A" ]
	rm "$A2/state.json"
	run -1 phn-fsck
	assert_output "$(phn_rel "$A2")/state.json: attempt_state: missing: a claimer died creating the attempt"
	run -0 phn-fsck --repair
	run jq -r '.failure_kind' "$A2/state.json"
	assert_output claim_expired
	# running on this host, spawn.lock free: its spawner is gone
	A3=$(phn-claim -n 1 -b "$B2")
	jq_edit "$A3/state.json" --arg h "$(cat /proc/sys/kernel/hostname)" \
	    --arg b "$(cat /proc/sys/kernel/random/boot_id)" \
	    '.status = "running" | .host = $h | .boot_id = $b'
	run -1 phn-fsck
	assert_line "$(phn_rel "$A3"): fault: running, its spawner is gone"
	run -0 phn-fsck --repair
	run jq -r '.failure_kind' "$A3/state.json"
	assert_output orphaned
}

@test "two live attempts of one step are found and not repaired" {
	second_batch
	A=$(phn-claim -n 1 -b "$B2")
	cp -r "$A" "${A%_run_*}_run_20260101T000000Z_deadbeef"
	jq_edit "${A%_run_*}_run_20260101T000000Z_deadbeef/meta.json" \
	    '.run_id = "run_20260101T000000Z_deadbeef"'
	run -1 phn-fsck
	assert_line "$B2/k/steps/t/attempts: live_attempts: 2 attempts queued or running at once (at most one may be)"
	run -1 phn-fsck --repair
	assert_line --partial "live_attempts: 2 attempts queued or running at once (at most one may be) (not repaired"
}

@test "write-once records: a changed prompt.txt, meta.json, a lost Run Report, a torn state; never touched by --repair" {
	echo more >>"runs/$B/j/steps/s2/prompt.txt"
	jq_edit "$S0/meta.json" '.step_id = "s9"'
	rm "runs/$B/j/steps/s1/attempts/"*/final.json
	S2=$(ls -d "runs/$B/j/steps/s2/attempts/"*)
	jq_edit "$S2/state.json" 'del(.ended_at)'
	run -1 phn-fsck
	assert_line --partial "$B/j/steps/s2/prompt.txt: write_once: its SHA-256 is not the one batch_meta.json recorded"
	assert_line "$(phn_rel "$S0")/meta.json: write_once: its ids (batch_id, job_id, step_id, run_id) are not the directory's"
	assert_line --partial "/final.json: attempt_incomplete: succeeded without a Run Report"
	assert_line "$(phn_rel "$S2")/state.json: attempt_incomplete: succeeded without ended_at"
	before=$(cat "runs/$B/j/steps/s2/prompt.txt" "$S0/meta.json" | sha256sum)
	run -1 phn-fsck --repair
	assert_line --partial "prompt.txt: write_once: its SHA-256 is not the one batch_meta.json recorded"
	assert_line --partial "(not repaired: write-once or needs an operator)"
	refute_line --partial "(removed)"
	refute_line --partial "(rebuilt)"
	after=$(cat "runs/$B/j/steps/s2/prompt.txt" "$S0/meta.json" | sha256sum)
	[ "$before" = "$after" ]
	# a torn state.json
	printf '{"status": "succ' >"$S2/state.json"
	run -1 phn-fsck
	assert_line --partial "$(phn_rel "$S2")/state.json: attempt_state: "
}

@test "an unreadable batch_meta.json is named and its batch not checked further" {
	printf '{"jobs": [' >"runs/$B/batch_meta.json"
	run -1 phn-fsck
	assert_output --partial "$B/batch_meta.json: batch_meta: "
	assert_output --partial "(the batch is not checked further)"
	[ "${#lines[@]}" -eq 1 ]
	run -1 phn-fsck --repair
	assert_output --partial "(not repaired"
}

@test "a runner's slot entry whose attempt ended is found and dropped" {
	R=$(ls runners)
	mkdir -p "runners/$R/active"
	touch "runners/$R/active/$B@j@s0@$(basename "$S0")"
	run -1 phn-fsck
	assert_output "$T/runners/$R/active/$B@j@s0@$(basename "$S0"): slot: its attempt ended (succeeded)"
	run -0 phn-fsck --repair
	[ ! -e "runners/$R/active/$B@j@s0@$(basename "$S0")" ]
	run -0 phn-fsck
}

@test "exit statuses: 100 usage, 111 when --repair finds a tick running, --help 0" {
	run -100 --separate-stderr phn-fsck extra
	assert_usage_error phn-fsck
	run -100 --separate-stderr phn-fsck --bogus
	assert_usage_error phn-fsck
	run -100 --separate-stderr phn-fsck -r "$T/nowhere"
	assert_stderr_line --partial "no runs store"
	run -0 phn-fsck --help
	assert_output --partial 'usage: phn-fsck'
	bg_lock runs/_system/tick.lock
	run -111 --separate-stderr phn-fsck --repair
	assert_stderr_line --partial "a tick is running on"
	# a check alone does not need the lock
	run -0 phn-fsck
}
