#!/usr/bin/env bats
# tests/45-ops.bats -- the operator commands: phn-cancel, phn-artifact,
# phn-tail, phn-gc, on attempt directories built by hand (live processes
# stand in for phn-spawn and codex).

load helper
load score-helper

setup() {
	mk_store '[{"job_id": "j", "working_directory": ".", "steps": [
	    {"step_id": "a", "prompt": "x"},
	    {"step_id": "b", "prompt": "y", "depends_on": ["a"]}]}]'
	HOSTNAME_=$(cat /proc/sys/kernel/hostname)
	BOOT=$(cat /proc/sys/kernel/random/boot_id)
}

teardown() {
	bg_cleanup
	mock_cleanup
}

# True when PID is gone (or a zombie waiting to be reaped).
gone() {
	[ ! -e "/proc/$1" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" = Z ]
}

# A stand-in for phn-spawn: on SIGTERM it records canceled and exits 4.
fake_spawner() {
	cat >spawner.sh <<'EOF'
st=$1
trap 'jq ".status = \"canceled\" | .failure_kind = \"canceled\" | .ended_at = (now | todate)" "$st" >"$st.new" && mv "$st.new" "$st"; exit 4' TERM
while :; do sleep 0.1; done
EOF
	bg_hold sh spawner.sh "$T/runs/$ATT/state.json"
}

record() {	# KEY_PID KEY_START PID [START]
	jq_edit "runs/$ATT/state.json" --arg h "$HOSTNAME_" --arg b "$BOOT" \
	    --argjson p "$3" --argjson s "${4:-$(proc_start "$3")}" \
	    ".host = \$h | .boot_id = \$b | .$1 = \$p | .$2 = \$s"
}

# --- phn-cancel -------------------------------------------------------

# A real codex attempt (need_codex) hanging in the mock: its directory a,
# its phn-spawn sp, codex's process group pg (alive).
hanging_codex() {
	need_codex
	# (skip_git_repo_check: else codex quits at once, not a git repo)
	mk_batch '[{"job_id": "j", "working_directory": ".", "steps": [
	    {"step_id": "h", "prompt": "MOCK:hang Wait for the answer."}]}]' \
	    '.execution_policy = {skip_git_repo_check: true}'
	a=$(phn-claim -b "$B")
	bg_hold phn-spawn "$a"
	sp=$BG_PID
	wait_for jq -e '.status == "running" and .pgid != null' "$a/state.json"
	pg=$(jq -r .pgid "$a/state.json")
	kill -0 -- "-$pg"
}

@test "cancel: a terminal attempt is left exactly as it was (exit 0)" {
	mk_attempt j a succeeded
	before=$(find "runs/$ATT" -printf '%p %T@ %s\n' | sort)
	run -0 phn-cancel "runs/$ATT"
	assert_json_lines
	run jq -c '[.ok, .already_terminal, .status, .run_id]' <<<"$output"
	assert_output "[true,true,\"succeeded\",\"$RUN\"]"
	[ "$(find "runs/$ATT" -printf '%p %T@ %s\n' | sort)" = "$before" ]
}

@test "cancel: a queued attempt ends canceled, in current.json too, step handed back" {
	mk_attempt j a queued
	run -0 phn-cancel "$ATT"
	run jq -c '[.canceled, .status, .via, .killed]' <<<"$output"
	assert_output '[true,"canceled","queued",false]'
	run jq -r '.status + " " + .failure_kind + " " + .current_item + " " + (.ended_at | type)' "runs/$ATT/state.json"
	assert_output 'canceled canceled canceled before start string'
	run jq -r --arg r "$RUN" '.steps.a.by_run_id[$r].status' "runs/$B/j/current.json"
	assert_output canceled
	[ -f "runs/$B/_ready/j@a" ]
	run -1 phn-score -b "$B" --steps
	run jq -r 'select(.step_id == "a") | .status' <<<"$output"
	assert_output canceled
}

@test "cancel: an attempt without state.json yet" {
	mk_attempt j a queued
	rm "runs/$ATT/state.json"
	run -0 phn-cancel -b "$B" --job j -s a -R "$RUN"
	run jq -r .status "runs/$ATT/state.json"
	assert_output canceled
}

@test "cancel: a live spawner gets SIGTERM and records the cancel itself" {
	mk_attempt j a running
	fake_spawner
	sp=$BG_PID
	record spawner_pid spawner_start "$sp"
	run -0 phn-cancel --grace-seconds 1 --attempt-dir "runs/$ATT"
	run jq -c '[.canceled, .status, .via]' <<<"$output"
	assert_output '[true,"canceled","spawner"]'
	gone "$sp"
}

@test "cancel: without a spawner, codex's group gets TERM, grace, KILL" {
	mk_attempt j a running
	bg_hold setsid sh -c 'trap "" TERM; while :; do sleep 0.1; done'
	pg=$BG_PID
	record pgid codex_start "$pg"
	jq_edit "runs/$ATT/state.json" '.spawner_pid = 999999 | .spawner_start = 1'
	run -0 phn-cancel -g 0.3 "runs/$ATT"
	run jq -c '[.canceled, .via, .killed]' <<<"$output"
	assert_output '[true,"process_group",true]'
	gone "$pg"
	run jq -r .status "runs/$ATT/state.json"
	assert_output canceled
}

@test "cancel: never signals a process whose identity does not match" {
	mk_attempt j a running
	bg_hold setsid sleep 1000
	pg=$BG_PID
	record pgid codex_start "$pg" 12345
	bg_hold sleep 1000
	sp=$BG_PID
	jq_edit "runs/$ATT/state.json" --argjson p "$sp" '.spawner_pid = $p | .spawner_start = 1'
	run -0 phn-cancel -g 0.2 "runs/$ATT"
	run jq -c '[.canceled, .via, .killed]' <<<"$output"
	assert_output '[true,"identity_mismatch",false]'
	kill -0 "$pg"
	kill -0 "$sp"
	run -1 gone "$pg"
	run -1 gone "$sp"
}

@test "cancel: an attempt run by another host is marked canceled there" {
	mk_attempt j a running '.host = "elsewhere" | .boot_id = "x" | .pgid = 4242 | .codex_start = 1'
	run -0 phn-cancel "runs/$ATT"
	run jq -r .via <<<"$output"
	assert_output remote
}

@test "cancel: several attempts, one line each; exit 0 when one had ended" {
	mk_attempt j a succeeded
	done_=$ATT
	mk_attempt j b queued
	run -0 phn-cancel "runs/$done_" "runs/$ATT"
	assert_json_lines
	[ "${#lines[@]}" -eq 2 ]
	run jq -r '.status' <<<"$output"
	assert_output 'succeeded
canceled'
}

@test "cancel: usage errors and unknown attempts exit 100; a failed write 111" {
	mk_attempt j a queued
	run -100 --separate-stderr phn-cancel
	assert_stderr_line --partial 'usage: phn-cancel'
	run -100 --separate-stderr phn-cancel -g -1 "runs/$ATT"
	assert_usage_error phn-cancel
	run -100 --separate-stderr phn-cancel -b "$B" --job j -s a
	assert_stderr_line --partial 'name an attempt'
	run -100 --separate-stderr phn-cancel -b "$B" --job j -s a -R run_nope
	assert_stderr_line "phn-cancel: $B/j/a: no attempt with that run id"
	run -100 --separate-stderr phn-cancel "runs/$B"
	assert_stderr_prefix phn-cancel
	run -100 --separate-stderr phn-cancel -b ../x --job j -s a -R r
	assert_usage_error phn-cancel
	rm "runs/$ATT/state.json"
	mkdir -p "runs/$ATT/state.json/x"
	run -111 --separate-stderr phn-cancel "runs/$ATT"
	assert_stderr_line --partial 'unable to cancel'
}

@test "cancel: a live real-codex attempt, through its spawner" {
	hanging_codex
	run -0 phn-cancel -g 2 "$a"
	run jq -c '[.canceled, .status, .via]' <<<"$output"
	assert_output '[true,"canceled","spawner"]'
	st=0
	wait "$sp" || st=$?
	[ "$st" -eq 4 ]
	wait_for sh -c "! kill -0 -- -$pg 2>/dev/null"
	run jq -r '.status + " " + .failure_kind' "$a/state.json"
	assert_output 'canceled canceled'
	run -1 phn-score -b "$B" --steps
	run jq -r .status <<<"$output"
	assert_output canceled
	# an ended attempt stays as it is
	run -0 phn-cancel "$a"
}

@test "cancel: a real codex whose spawner died is stopped by its group" {
	hanging_codex
	kill -9 "$sp"
	wait "$sp" 2>/dev/null || :
	kill -0 -- "-$pg"
	run -3 phn-score -b "$B" --steps
	run jq -r .attention <<<"$output"
	assert_output orphaned
	run -0 phn-cancel -g 2 "$a"
	run jq -c '[.canceled, .via, .killed]' <<<"$output"
	assert_output '[true,"process_group",true]'
	wait_for sh -c "! kill -0 -- -$pg 2>/dev/null"
	run -1 phn-score -b "$B" --steps
	run jq -r '.status + " " + (.attention | tostring)' <<<"$output"
	assert_output 'canceled null'
}

# --- phn-artifact -----------------------------------------------------

@test "artifact: by directory or by ids, raw bytes; -o writes a file" {
	mk_attempt j a succeeded
	printf '{"status":"ok"}\n' >"runs/$ATT/final.json"
	run -0 phn-artifact "runs/$ATT" final.json
	assert_output '{"status":"ok"}'
	run -0 phn-artifact -b "$B" --job j -s a -R "$RUN" final.json
	assert_output '{"status":"ok"}'
	run -0 phn-artifact --batch-id "$B" --job-id j --step-id a --run-id "$RUN" --name meta.json
	run jq -r .run_id <<<"$output"
	assert_output "$RUN"
	run -0 phn-artifact --attempt-dir "runs/$ATT" --name final.json --out got.json
	assert_json_lines
	run jq -c '[.ok, .name, .bytes]' <<<"$output"
	assert_output '[true,"final.json",16]'
	cmp got.json "runs/$ATT/final.json"
}

@test "artifact: missing exits 1; names leaving the attempt are refused (100)" {
	mk_attempt j a succeeded
	run -1 --separate-stderr phn-artifact "runs/$ATT" final.json
	assert_stderr_line --partial 'artifact not found'
	run -100 --separate-stderr phn-artifact "runs/$ATT" ../../../../../batch_meta.json
	assert_stderr_line --partial 'not a file inside the attempt directory'
	run -100 --separate-stderr phn-artifact "runs/$ATT" /etc/passwd
	assert_usage_error phn-artifact
	ln -s /etc/passwd "runs/$ATT/codex_home/auth.json"
	run -100 --separate-stderr phn-artifact "runs/$ATT" codex_home/auth.json
	assert_usage_error phn-artifact
	run -100 --separate-stderr phn-artifact "runs/$ATT" codex_home
	assert_stderr_line --partial 'is a directory'
	run -100 --separate-stderr phn-artifact "runs/$ATT"
	assert_stderr_line --partial 'usage: phn-artifact'
	run -100 --separate-stderr phn-artifact -b "$B" --job j -s a -R nope final.json
	assert_usage_error phn-artifact
	run -111 --separate-stderr phn-artifact -o /nonexistent/dir/x "runs/$ATT" meta.json
	assert_stderr_prefix phn-artifact
}

# --- phn-tail ---------------------------------------------------------

@test "tail: the last lines, -n, long options, and a compressed file" {
	mk_attempt j a succeeded
	for i in 1 2 3 4 5; do echo "{\"n\":$i}"; done >"runs/$ATT/codex.events.jsonl"
	run -0 phn-tail "runs/$ATT"
	[ "${#lines[@]}" -eq 5 ]
	run -0 phn-tail -n 2 "runs/$ATT"
	assert_output '{"n":4}
{"n":5}'
	run -0 phn-tail --lines 1 -b "$B" --job j -s a -R "$RUN"
	assert_output '{"n":5}'
	run -0 phn-tail -n 0 "runs/$ATT"
	assert_output ''
	gzip "runs/$ATT/codex.events.jsonl"
	run -0 phn-tail -n 1 "runs/$ATT"
	assert_output '{"n":5}'
}

@test "tail -f follows complete lines until the attempt ends" {
	mk_attempt j a running
	ev=runs/$ATT/codex.events.jsonl
	st=runs/$ATT/state.json
	(
		sleep 0.5; echo '{"n":1}' >>"$ev"
		printf '{"n":' >>"$ev"; sleep 0.5; echo '2}' >>"$ev"
		sleep 0.3
		jq '.status = "succeeded" | .ended_at = (now | todate)' "$st" >"$st.new" && mv "$st.new" "$st"
	) 3>&- &
	run -0 phn-tail --follow "runs/$ATT"
	assert_output '{"n":1}
{"n":2}'
}

@test "tail: no events file exits 1; usage errors 100" {
	mk_attempt j a succeeded
	run -1 --separate-stderr phn-tail "runs/$ATT"
	assert_stderr_line --partial 'no events'
	run -1 --separate-stderr phn-tail -f "runs/$ATT"
	run -100 --separate-stderr phn-tail
	assert_usage_error phn-tail
	run -100 --separate-stderr phn-tail -n x "runs/$ATT"
	assert_stderr_prefix phn-tail
	mkdir "runs/$ATT/codex.events.jsonl"
	run -111 --separate-stderr phn-tail "runs/$ATT"
}

# --- phn-gc -----------------------------------------------------------

old_attempt() {	# STEP STATUS: ended 100 days ago, with every artifact
	mk_attempt j "$1" "$2" '.ended_at = "2020-01-01T00:00:00Z"'
	for f in codex.events.jsonl codex.stderr.txt git_diff.patch git_head.txt final.json final.txt handoff.json codex.command.txt; do
		echo "{\"f\":\"$f\"}" >"runs/$ATT/$f"
	done
	echo x >"runs/$ATT/codex_home/sessions.jsonl"
}

@test "gc --dry-run says what would go and changes nothing" {
	old_attempt a succeeded
	before=$(store_snapshot)
	run -0 phn-gc --dry-run
	assert_json_lines
	[ "$(store_snapshot)" = "$before" ]
	run jq -r 'select(.dry_run) | .action + " " + (.path | split("/") | last) + " " + .rule' <<<"$output"
	assert_output 'delete codex.events.jsonl keep_raw_events_days
delete codex.stderr.txt keep_raw_events_days
delete git_head.txt keep_git_artifacts_days
delete git_diff.patch keep_git_artifacts_days'
}

@test "gc deletes by policy; never a running attempt, meta, state or (open batch) codex_home" {
	old_attempt a succeeded
	done_=$ATT
	mk_attempt j b running '.started_at = "2020-01-01T00:00:00Z"'
	echo '{}' >"runs/$ATT/codex.events.jsonl"
	run -0 phn-gc
	[ ! -e "runs/$done_/codex.events.jsonl" ]
	[ ! -e "runs/$done_/git_diff.patch" ]
	for f in meta.json state.json final.json final.txt handoff.json codex.command.txt codex_home/sessions.jsonl; do
		[ -e "runs/$done_/$f" ]
	done
	[ -e "runs/$ATT/codex.events.jsonl" ]
	run -0 phn-gc
	assert_output ''
}

# The batch snapshots the config's policy at ingest: edit, then ingest anew.
rebatch() {
	jq_edit runs/_system/harness_config.json "$1"
	mk_batch '[{"job_id": "j", "working_directory": ".", "steps": [
	    {"step_id": "a", "prompt": "x"}, {"step_id": "b", "prompt": "y"}]}]'
}

@test "gc compresses raw events when the policy says so" {
	rebatch '.defaults.retention_policy.compress_raw_events_after_days = 0 | .defaults.retention_policy.keep_raw_events_days = 100000'
	old_attempt a failed
	run -0 phn-gc
	run jq -r '.action + " " + (.path | split("/") | last)' <<<"$output"
	assert_line 'compress codex.events.jsonl'
	[ ! -e "runs/$ATT/codex.events.jsonl" ]
	run gzip -dc "runs/$ATT/codex.events.jsonl.gz"
	assert_output '{"f":"codex.events.jsonl"}'
	run -0 phn-gc
	refute_output --partial compress
}

@test "gc in a closed batch: final outputs and codex_home; a success's report only if allowed" {
	old_attempt a succeeded
	ok=$ATT
	old_attempt b failed
	bad=$ATT
	jq -n '{closed_at: "2020-01-01T00:00:00Z"}' >"runs/$B/batch_closed.json"
	run -0 phn-gc -b "$B"
	# defaults: final outputs kept 3650 days, resume bases 30
	[ -e "runs/$bad/final.json" ]
	[ ! -e "runs/$ok/codex_home" ]
	jq_edit "runs/$B/batch_meta.json" '.effective_defaults.retention_policy.keep_final_outputs_days = 1'
	run -0 phn-gc -b "$B"
	[ -e "runs/$ok/final.json" ]
	[ ! -e "runs/$bad/final.json" ]
	[ -e "runs/$bad/handoff.json" ]
	jq_edit "runs/$B/batch_meta.json" '.retention_policy.allow_delete_success_final_outputs = true'
	run -0 phn-gc -b "$B"
	[ ! -e "runs/$ok/final.json" ]
}

@test "gc: the job's own retention_policy wins" {
	mk_batch '[{"job_id": "j", "working_directory": ".", "retention_policy": {"keep_raw_events_days": null, "compress_raw_events_after_days": null},
	    "steps": [{"step_id": "a", "prompt": "x"}]}]'
	old_attempt a succeeded
	run -0 phn-gc -b "$B"
	[ -e "runs/$ATT/codex.events.jsonl" ]
	[ ! -e "runs/$ATT/git_diff.patch" ]
}

@test "gc: errors" {
	run -100 --separate-stderr phn-gc -b nope
	assert_stderr_line "phn-gc: no such batch: nope (in $T/runs)"
	run -100 --separate-stderr phn-gc extra
	assert_usage_error phn-gc
	rebatch '.defaults.retention_policy.compress_raw_events_after_days = 0 | .defaults.retention_policy.keep_raw_events_days = 100000'
	old_attempt a failed
	run -111 --separate-stderr env PATH=/nonexistent "$(command -v phn-gc)"
	assert_stderr_line --partial 'unable to compress'
}
