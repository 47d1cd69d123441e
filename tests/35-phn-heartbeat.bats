#!/usr/bin/env bats
# tests/35-phn-heartbeat.bats -- beats, stale listing, reaping orphans
# (kill -9 of a real phn-spawn), lease expiry, stuck agents, and that a
# live spawner is never touched.

load helper
load spawn-helper

setup() {
	spawn_setup 1
	export PHN_CODEX=$PHN_REPO/tests/fake-codex/codex
	unset PHN_CODEX_CONFIG FAKE_CODEX_MODE FAKE_CODEX_LOG
	jq -n --arg g "$(goal_words 151)" '{
		batch_goal_summary: $g,
		execution_policy: { skip_git_repo_check: true },
		jobs: [{ job_id: "j", working_directory: "w",
		    steps: [{ step_id: "s", prompt: "FAKE:sleep:60" }] }]
	}' >lt.json
}

teardown() {
	spawn_teardown
}

ingest() { # [JQ_FILTER for lt.json]
	if [ -n "${1:-}" ]; then
		jq_edit lt.json "$1"
	fi
	B=$(phn-ingest lt.json 2>/dev/null)
}

@test "beat: last_heartbeat_at and current_item, silently" {
	ingest
	claim s
	run --separate-stderr phn-heartbeat "$A" "compiling"
	assert_success
	assert_output ""
	[ "$(st .current_item)" = compiling ]
	h=$(st .last_heartbeat_at)
	[ "$h" != null ]
	sleep 0.01
	run phn-heartbeat "$A"
	assert_success
	[ "$(st .current_item)" = compiling ]
	[ "$(st .last_heartbeat_at)" != "$h" ]
	[ "$(st .status)" = queued ]
}

@test "beat on an ended attempt changes nothing: exit 1" {
	ingest
	claim s
	jq_edit "$A/state.json" '.status = "succeeded"'
	before=$(cat "$A/state.json")
	run --separate-stderr phn-heartbeat "$A" late
	assert_failure 1
	assert_stderr_line --partial "has ended (succeeded)"
	assert_stderr_prefix phn-heartbeat
	[ "$(cat "$A/state.json")" = "$before" ]
}

@test "beat: not an attempt, no state.json, usage -> 100" {
	ingest
	claim s
	run --separate-stderr phn-heartbeat "$T/w"
	assert_failure 100
	assert_stderr_prefix phn-heartbeat
	rm "$A/state.json"
	run phn-heartbeat "$A"
	assert_failure 100
	[ ! -e "$A/state.json" ]
	run phn-heartbeat
	assert_failure 100
	run phn-heartbeat "$A" a b
	assert_failure 100
	run phn-heartbeat -l "$A"
	assert_failure 100
	run phn-heartbeat -l -k
	assert_failure 100
	run phn-heartbeat --bogus
	assert_failure 100
}

@test "--stale: nothing stale -> exit 0, no output" {
	ingest
	claim s
	run --separate-stderr phn-heartbeat --stale
	assert_success
	assert_output ""
	run phn-heartbeat --stale --batch "$B"
	assert_success
}

@test "--stale and --reap never touch a live spawner" {
	ingest
	claim s
	spawn_bg
	codex_started
	run phn-heartbeat --stale
	assert_success
	assert_output ""
	run phn-heartbeat --reap
	assert_success
	assert_output ""
	[ "$(st .status)" = running ]
	stop_bg TERM 4
}

@test "kill -9 of phn-spawn: --stale lists the orphan, --reap kills codex and fails it" {
	ingest
	claim s
	spawn_bg
	codex_started
	pg=$(st .pgid)
	kill -9 "$BG"
	wait "$BG" || true
	BG=
	# codex outlives its spawner, in its own process group.
	[ "$(alive_in_group "$pg")" -gt 0 ]
	run --separate-stderr phn-heartbeat --stale
	assert_failure 1
	assert_output "$A"
	run phn-heartbeat --stale --json
	assert_failure 1
	assert_json_lines
	[ -n "$output" ]
	jq -e --arg a "$A" '.attempt_dir == $a and .fault == "orphaned"
	    and .status == "running"' <<<"$output"
	run --separate-stderr phn-heartbeat --reap
	assert_success
	assert_output "$A"
	[ "$(alive_in_group "$pg")" -eq 0 ]
	[ "$(st .status)" = failed ]
	[ "$(st .failure_kind)" = orphaned ]
	[ "$(st .harness_fault)" = true ]
	jq -e '.steps.s.by_run_id[].status == "failed"' "runs/$B/j/current.json"
	run phn-heartbeat --stale
	assert_success
	assert_output ""
	# The step is runnable again, and the fault does not count as a try.
	claim s
	jq -e '.attempt_number == 1' "$A/meta.json"
}

@test "an orphan on another host: stale by heartbeat age only" {
	ingest
	claim s
	jq_edit "$A/state.json" '.status = "running" | .host = "elsewhere" |
	    .boot_id = "x" | .pgid = 1 | .codex_start = 1 |
	    .last_heartbeat_at = "2000-01-01T00:00:00Z"'
	# the output holds a NUL: compare bytes, not $output (bash drops NULs)
	run -1 sh -c 'phn-heartbeat --stale -0 >out'
	printf '%s\0' "$A" | cmp - out
	run phn-heartbeat --reap --json
	assert_success
	[ -n "$output" ]
	jq -e '.fault == "orphaned" and .reaped == true' <<<"$output"
	[ "$(st .failure_kind)" = orphaned ]
	claim s
	jq_edit "$A/state.json" '.status = "running" | .host = "elsewhere" |
	    .boot_id = "x" | .last_heartbeat_at = (now | todate)'
	run phn-heartbeat --stale
	assert_success
}

@test "-0 separates paths with NUL" {
	ingest
	claim s
	jq_edit "$A/state.json" '.claimed_at = "2000-01-01T00:00:00Z"'
	A1=$A
	claim s
	jq_edit "$A/state.json" '.claimed_at = "2000-01-01T00:00:00Z"'
	run -1 sh -c 'phn-heartbeat --stale -0 >out'
	[ "$(tr -cd '\0' <out | wc -c)" -eq 2 ]
	printf '%s\0' "$A1" "$A" | sort -z | cmp - <(sort -z out)
}

@test "claim lease expired: --stale says claim_expired, --reap fails it" {
	ingest
	claim s
	jq_edit "$A/state.json" '.claimed_at = "2000-01-01T00:00:00Z"'
	run phn-heartbeat --stale --json
	assert_failure 1
	[ -n "$output" ]
	jq -e '.fault == "claim_expired" and .status == "queued"' <<<"$output"
	run phn-heartbeat --reap
	assert_success
	assert_output "$A"
	[ "$(st .status)" = failed ]
	[ "$(st .failure_kind)" = claim_expired ]
	# And phn-spawn will not run it any more.
	run phn-spawn "$A"
	assert_failure 100
}

@test "a batch phn-claim manages is scanned through its _active/ index" {
	ingest
	A=$(phn-claim -n 1 -b "$B")
	[ -d "$A" ]
	[ -d "runs/$B/_sched" ]
	jq_edit "$A/state.json" '.claimed_at = "2000-01-01T00:00:00Z"'
	run -1 phn-heartbeat --stale
	assert_output "$A"
	# The index is what is walked: without the entry the attempt is not
	# seen (phn-claim --rescan rebuilds the index from the attempts) ...
	mv "runs/$B/_active" "runs/$B/_active.off"
	mkdir "runs/$B/_active"
	run -0 phn-heartbeat --stale
	assert_output ''
	# ... and a batch without the index is scanned in full.
	rmdir "runs/$B/_active"
	run -1 phn-heartbeat --stale
	assert_output "$A"
	mv "runs/$B/_active.off" "runs/$B/_active"
	run -0 phn-heartbeat --reap
	assert_output "$A"
	[ "$(st .failure_kind)" = claim_expired ]
}

@test "a queued attempt held by a phn-spawn is not expired" {
	ingest
	claim s
	jq_edit "$A/state.json" '.claimed_at = "2000-01-01T00:00:00Z"'
	exec 8>"$A/spawn.lock"
	flock -x 8
	run phn-heartbeat --reap
	exec 8>&-
	assert_success
	assert_output ""
	[ "$(st .status)" = queued ]
}

@test "stuck agent: reported apart from orphans, never reaped" {
	ingest '.scoreboard = {heartbeat_interval_seconds: 1,
	    heartbeat_stale_after_seconds: 300, stuck_after_seconds: 1}'
	claim s
	spawn_bg
	codex_started
	sleep 1.2
	run --separate-stderr phn-heartbeat --stale
	assert_success
	assert_output ""
	assert_stderr_line --partial "stuck: its spawner is alive"
	run phn-heartbeat --stale --json
	assert_success
	[ -n "$output" ]
	jq -e '.fault == "stuck" and .status == "running"' <<<"$output"
	run phn-heartbeat --reap
	assert_success
	[ "$(st .status)" = running ]
	stop_bg TERM 4
}

@test "--batch: only that batch; an unknown one -> 100" {
	ingest
	claim s
	jq_edit "$A/state.json" '.claimed_at = "2000-01-01T00:00:00Z"'
	B1=$B
	ingest '.batch_goal_summary += " again"'
	run phn-heartbeat --stale --batch "$B"
	assert_success
	run phn-heartbeat --stale --batch "$B1"
	assert_failure 1
	run --separate-stderr phn-heartbeat --stale --batch nope
	assert_failure 100
	assert_stderr_prefix phn-heartbeat
	run phn-heartbeat --stale --batch ../x
	assert_failure 100
}

@test "--reap: a reap that cannot write the state -> 111" {
	ingest
	claim s
	jq_edit "$A/state.json" '.claimed_at = "2000-01-01T00:00:00Z"'
	rm -f "$A/state.lock"
	mkdir "$A/state.lock"
	run --separate-stderr phn-heartbeat --reap
	assert_failure 111
	assert_stderr_prefix phn-heartbeat
}

@test "man page EXAMPLES run" {
	jq_edit lt.json '.jobs[0].steps[0].prompt = "hi"'
	ingest
	claim s
	attempt=$A
	run phn-heartbeat "$attempt" "running the test suite"
	assert_success
	[ "$(st .current_item)" = "running the test suite" ]
	jq_edit "$A/state.json" '.claimed_at = "2000-01-01T00:00:00Z"'
	run sh -c "phn-heartbeat --stale --json | jq -r '[.fault, .attempt_dir] | @tsv'"
	assert_success
	assert_output "$(printf 'claim_expired\t%s' "$A")"
	if ! command -v phn-claim >/dev/null; then
		skip "phn-claim is not built"
	fi
	run sh -c 'phn-heartbeat --reap &&
	    phn-claim --follow -j 4 | xargs -P 4 -n 1 phn-spawn'
	assert_success
	[ "$(st .failure_kind)" = claim_expired ]
}
