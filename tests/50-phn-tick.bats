#!/usr/bin/env bats
# tests/50-phn-tick.bats -- the phn front end's tick, serve and scoreboard
# verbs, the quickstart as users of the Python version type it, and the
# verb mapping onto the phn-* programs.

load helper
load score-helper

setup() {
	phn_setup
}

teardown() {
	bg_cleanup
	mock_cleanup
}

# N independent steps in job j, each with extra step fields (JSON).
steps_lt() {
	jq -n --arg goal "$(goal_words 151)" --argjson n "$1" \
	    --argjson extra "${2:-{\}}" '{batch_goal_summary: $goal,
	    concurrency: 4, jobs: [{job_id: "j", working_directory: ".",
	    steps: [range($n) | {step_id: "s\(.)", prompt: "x"} + $extra]}]}'
}

@test "the quickstart, verbatim, with the real codex CLI" {
	need_codex
	cp -r "$PHN_REPO/examples" .
	run -0 phn init --root .
	run -0 phn submit examples/launch_table.example.json --root .
	B=$output
	run -0 phn tick --root . --concurrency 4
	run -0 phn scoreboard --root . --json
	run jq -c ".system[] | select(.batch_id == \"$B\") | [.counts.succeeded, .outcome, .usage.input_tokens > 0]" <<<"$output"
	assert_output '[2,"succeeded",true]'
	run -0 phn tick --root . --no-codex
	[ -f "runs/$B/scoreboard.batch.json" ]
	run jq -r '.resume_steps[0].resume_from_resolved.resume_from_step_id' "runs/$B/scoreboard.batch.json"
	assert_output step1
}

@test "tick --no-codex runs every step, writes the scoreboards, returns when done" {
	phn init >/dev/null
	steps_lt 5 >lt.json
	B=$(phn submit lt.json)
	run -0 phn tick --no-codex --concurrency 2
	run -0 phn-score -b "$B" --json
	run jq -c '[.batch.counts.succeeded, .batch.outcome]' <<<"$output"
	assert_output '[5,"succeeded"]'
	run jq -r '.counts.succeeded' "runs/$B/scoreboard.batch.json"
	assert_output 5
	run jq -r '.[0].batch_id' runs/_system/scoreboard.system.json
	assert_output "$B"
	# nothing left: another tick is a no-op
	run -0 phn tick --no-codex
	[ "$(ls "runs/$B/j/steps/s0/attempts" | wc -l)" -eq 1 ]
}

@test "tick ingests the queue; a rejected table does not stop it" {
	phn init >/dev/null
	steps_lt 2 >runs/_queue/incoming/good.json
	echo '{"jobs": []}' >runs/_queue/incoming/bad.json
	run -0 --separate-stderr phn tick --no-codex
	assert_stderr_line --partial 'rejected'
	[ -f runs/_queue/rejected/bad.json ]
	run -0 phn-score --json
	run jq -r '.system[0].counts.succeeded' <<<"$output"
	assert_output 2
}

@test "tick reaps an orphaned attempt and runs the step again" {
	phn init >/dev/null
	steps_lt 1 >lt.json
	B=$(phn submit lt.json)
	export B
	mk_attempt j s0 running '.host = $host | .boot_id = $boot | .last_heartbeat_at = $now | .spawner_pid = 999999 | .spawner_start = 1'
	dead=$ATT
	run -0 phn tick --no-codex
	run jq -r '.status + " " + .failure_kind' "runs/$dead/state.json"
	assert_output 'failed orphaned'
	run -0 phn-score -b "$B" --steps
	run jq -r '.status + " " + (.attempts | tostring)' <<<"$output"
	assert_output 'succeeded 2'
}

@test "a second tick on the same store exits 1 at once with a message" {
	phn init >/dev/null
	bg_lock runs/_system/tick.lock
	run -1 --separate-stderr phn tick --no-codex
	assert_stderr_line "phn: tick: another tick is running on $T/runs (it holds $T/runs/_system/tick.lock)"
	bg_cleanup
	run -0 phn tick --no-codex
}

@test "interrupting a tick cancels its running attempts and ends it (130)" {
	phn init >/dev/null
	steps_lt 1 '{"fake_sleep_seconds": 60}' >lt.json
	B=$(phn submit lt.json)
	bg_hold phn tick --no-codex
	tick=$BG_PID
	wait_for sh -c "phn-score -b $B --steps | grep -q '\"state_status\":\"running\"'"
	kill -TERM "$tick"
	st=0
	wait "$tick" || st=$?
	[ "$st" -eq 130 ]
	run -1 phn-score -b "$B" --steps
	run jq -r '.status + " " + .failure_kind' <<<"$output"
	assert_output 'canceled canceled'
}

@test "serve ticks until interrupted, and picks up new tables" {
	phn init >/dev/null
	bg_hold phn serve --no-codex --interval-seconds 0.2
	srv=$BG_PID
	# producers write elsewhere and rename into the queue
	steps_lt 2 >t.json
	mv t.json runs/_queue/incoming/t.json
	wait_for sh -c 'phn-score -q; [ $? -eq 0 ] && [ -d runs/_queue/processed ] && ls runs/_queue/processed | grep -q t.json'
	kill -TERM "$srv"
	wait "$srv"
	run -0 phn-score --json
	run jq -r '.system[0].counts.succeeded' <<<"$output"
	assert_output 2
}

@test "tick and serve: usage errors exit 100, options before or after" {
	phn init >/dev/null
	run -100 --separate-stderr phn tick --bogus
	assert_stderr_line --partial 'usage: phn tick'
	run -100 --separate-stderr phn tick extra
	assert_usage_error phn
	run -100 --separate-stderr phn tick --concurrency x
	assert_stderr_line --partial -- '--concurrency: invalid value'
	run -100 --separate-stderr phn serve --interval-seconds abc
	assert_usage_error phn
	run -100 --separate-stderr phn tick --concurrency
	assert_usage_error phn
	mkdir sub
	cd sub
	run -0 phn tick --no-codex --root .. --concurrency=2
	run -0 phn --root .. tick --no-codex
	cd ..
	[ ! -e sub/runs ]
	[ -d runs/_system ]
	jq_edit runs/_system/harness_config.json '.defaults.kill_grace_seconds = -1'
	run -100 --separate-stderr phn tick --no-codex
	assert_stderr_line --partial 'defaults.kill_grace_seconds: must be an integer >= 0'
	run -100 --separate-stderr phn serve --no-codex
	assert_stderr_line --partial 'defaults.kill_grace_seconds: must be an integer >= 0'
	# no store there: tick makes none
	touch afile
	run -100 --separate-stderr phn tick --no-codex --runs-root afile/runs
	assert_stderr_line "phn: tick: no runs store at afile/runs (run phn init, or give --root)"
}

@test "the Python version's verbs map onto the phn-* programs" {
	phn init >/dev/null
	steps_lt 1 >lt.json
	B=$(phn submit lt.json --root .)
	run -0 phn tick --no-codex --root .
	run -0 phn scoreboard --root . --batch-id "$B" --json
	run jq -r '.batch.counts.succeeded' <<<"$output"
	assert_output 1
	run -0 phn scoreboard --root .
	assert_line --index 0 --partial BATCH
	dir=$(phn-score -b "$B" --steps | jq -r .attempt_dir)
	run_id=$(phn-score -b "$B" --steps | jq -r .run_id)
	run -0 phn artifact --root . --batch-id "$B" --job-id j --step-id s0 --run-id "$run_id" --name final.json
	run jq -r .status <<<"$output"
	assert_output ok
	run -1 phn tail-events --root . --attempt-dir "$dir"
	echo '{"type":"turn.completed"}' >"runs/$dir/codex.events.jsonl"
	run -0 phn tail-events --root . --attempt-dir "$dir" --lines 1
	assert_output '{"type":"turn.completed"}'
	run -0 phn cancel --root . --attempt-dir "$dir"
	run jq -r .already_terminal <<<"$output"
	assert_output true
	run -0 phn gc --root . --dry-run
	run -0 phn force-retry --root . "$B" j s0
	[ "$(jq -r '[.action, .step.force_retry_nonce] | @tsv' <<<"$output")" = "$(printf 'force-retry\t1')" ]
	run -3 phn scoreboard --root . -q
	run -0 phn tick --no-codex
	[ "$(ls -d "runs/$B"/j/steps/s0/attempts/* | wc -l)" -eq 2 ]
	run -0 phn mark-failed --root . "$B" j s0 --reason done
	jq -e '.steps.s0.forced_terminal | .status == "failed" and .reason == "done"' "runs/$B/j/overrides.json"
	run -0 phn requeue --root . "$B" j s0 --different
	jq -e '.steps.s0.requeue.different_from_last == true' "runs/$B/j/overrides.json"
	run -0 phn close-batch --root . "$B"
	[ -f "runs/$B/batch_closed.json" ]
	run -1 phn scoreboard --root . --batch-id "$B" --json
	jq -e '.batch.closed == true and .batch.counts.failed == 1' <<<"$output"
}
