#!/usr/bin/env bats
# tests/38-remedy.bats -- auto-remediation (defaults.scoreboard.
# auto_remediation, the legacy stuck_auto_remediation_enabled):
# phn-heartbeat --remediate and phn tick cancel a stuck agent through its
# spawner and force a retry that does not count against max_attempts,
# recorded in overrides.json and the canceled attempt's state.json, at
# most max_applies_per_step times per step.

load helper
load spawn-helper
load score-helper

setup() {
	spawn_setup 1
	unset PHN_CODEX_CONFIG FAKE_CODEX_MODE FAKE_CODEX_LOG
	# The first codex run hangs after its first events; the others work.
	cat >codex <<EOF
#!/bin/sh
if [ "\$1" != --version ] && [ ! -e "$T/hung" ]; then
	: >"$T/hung"
	FAKE_CODEX_MODE=sleep:60
	export FAKE_CODEX_MODE
fi
exec "$PHN_REPO/tests/fake-codex/codex" "\$@"
EOF
	chmod +x codex
	export PHN_CODEX=$T/codex
	cfg '.defaults.scoreboard.heartbeat_interval_seconds = 1 |
	    .defaults.scoreboard.stuck_after_seconds = 2'
}

teardown() {
	spawn_teardown
	bg_cleanup
}

cfg() {
	jq_edit runs/_system/harness_config.json "$1"
}

ov() {
	jq -r "$1" "runs/$B/j/overrides.json"
}

# The attempt directories of step s of job j, oldest first.
atts() {
	ls -d "runs/$B/j/steps/s/attempts/"*
}

@test "phn tick cancels a stuck agent, retries it once (not counted), the retry succeeds" {
	batch '[{"step_id": "s", "prompt": "x"}]'
	run -0 phn tick
	run atts
	[ "${#lines[@]}" -eq 2 ]
	a1=${lines[0]} a2=${lines[1]}
	[ "$(jq -r .status "$a1/state.json")" = canceled ]
	[ "$(jq -r .auto_remediation.by "$a1/state.json")" = auto_remediation ]
	[ "$(jq -r .auto_remediation.kind "$a1/state.json")" = stuck ]
	[ "$(jq -r .auto_remediation.action "$a1/state.json")" = cancel_and_force_retry ]
	[ "$(jq -r .auto_remediation.at "$a1/state.json")" != null ]
	[ "$(jq -r .auto_remediation.reason "$a1/state.json")" != null ]
	[ "$(jq -r .status "$a2/state.json")" = succeeded ]
	# max_attempts is 1: the forced retry is attempt 1 again
	[ "$(jq -r .attempt_number "$a2/meta.json")" = 1 ]
	[ "$(jq -r .force_retry_applied_nonce "$a2/meta.json")" = 1 ]
	[ "$(ov '.steps.s.auto_remediation.applied_count_total')" = 1 ]
	[ "$(ov '.steps.s.auto_remediation.actions | length')" = 1 ]
	[ "$(ov '.steps.s.auto_remediation.actions[0].by')" = auto_remediation ]
	[ "$(ov '.steps.s.auto_remediation.actions[0].cancel.status')" = canceled ]
	[ "$(ov '.steps.s.auto_remediation.actions[0].cancel.via')" = spawner ]
	[ "$(ov '.steps.s.force_retry_by')" = auto_remediation ]
	run -0 phn-score -b "$B" --json
	run jq -c '[.batch.counts.succeeded, .batch.outcome]' <<<"$output"
	assert_output '[1,"succeeded"]'
}

@test "--remediate --dry-run says and does nothing; --remediate acts once, only once" {
	one "x"
	spawn_bg
	codex_started
	sleep 2.2
	run -0 --separate-stderr phn-heartbeat --remediate --dry-run
	[ "${#lines[@]}" -eq 1 ]
	jq -e '.dry_run == true and .action == "cancel_and_force_retry" and
	    .remediation.kind == "stuck" and .step_id == "s"' <<<"$output"
	[ "$(st .status)" = running ]
	[ ! -e "runs/$B/j/overrides.json" ]
	run -0 --separate-stderr phn-heartbeat --remediate
	[ "${#lines[@]}" -eq 1 ]
	jq -e '.ok == true and .action == "cancel_and_force_retry" and
	    .remediation.run_id != null and .applied_count_total == 1 and
	    .remediation.cancel.canceled == true' <<<"$output"
	# the spawner ended the attempt canceled, and exited 4
	st=0
	wait "$BG" || st=$?
	[ "$st" -eq 4 ]
	[ "$(st .status)" = canceled ]
	[ "$(st .auto_remediation.by)" = auto_remediation ]
	[ "$(ov '.steps.s.force_retry_nonce')" = 1 ]
	run -0 phn-heartbeat --remediate
	assert_output ""
	[ "$(ov '.steps.s.auto_remediation.actions | length')" = 1 ]
}

@test "needs_attention: a step whose orphan retries ran out is force-retried, max_applies_per_step times" {
	cfg '.limits.max_harness_retries = 0'
	batch '[{"step_id": "s", "prompt": "x"}]'
	mk_attempt j s failed '.failure_kind = "orphaned" | .harness_fault = true'
	run -0 phn-heartbeat --remediate
	[ "${#lines[@]}" -eq 1 ]
	jq -e '.action == "force_retry" and .remediation.kind ==
	    "needs_attention" and .remediation.run_id == "'"$RUN"'"' <<<"$output"
	[ "$(ov '.steps.s.force_retry_nonce')" = 1 ]
	run -0 phn-heartbeat --remediate
	assert_output ""
	# the legacy default: one apply per step, across attempts
	mk_attempt j s failed '.failure_kind = "orphaned" | .harness_fault = true'
	jq_edit "runs/$ATT/meta.json" '.force_retry_applied_nonce = 1'
	run -1 phn-score -b "$B" --steps
	[ "$(jq -r .status <<<"$output")" = failed ]
	run -0 phn-heartbeat --remediate
	assert_output ""
	cfg '.defaults.scoreboard.auto_remediation = {max_applies_per_step: 2}'
	run -0 phn-heartbeat --remediate
	[ "${#lines[@]}" -eq 1 ]
	[ "$(ov '.steps.s.auto_remediation.applied_count_total')" = 2 ]
}

@test "a stuck action cut between its cancel and its retry is finished by the next pass" {
	batch '[{"step_id": "s", "prompt": "x"}]'
	# canceled with our record in state.json, but no retry recorded
	mk_attempt j s canceled '.auto_remediation = {by: "auto_remediation",
	    kind: "stuck", action: "cancel_and_force_retry", run_id: $r,
	    reason: "stuck: no codex event for stuck_after_seconds"}'
	run -0 phn-heartbeat --remediate --dry-run
	jq -e '.dry_run == true and .remediation.run_id == "'"$RUN"'"' <<<"$output"
	[ ! -e "runs/$B/j/overrides.json" ]
	run -0 phn-heartbeat --remediate
	[ "${#lines[@]}" -eq 1 ]
	jq -e '.action == "cancel_and_force_retry" and
	    .remediation.completed_at != null and .applied_count_total == 1' <<<"$output"
	[ "$(ov '.steps.s.force_retry_nonce')" = 1 ]
	[ "$(ov '.steps.s.auto_remediation.actions[0].run_id')" = "$RUN" ]
	run -0 phn-heartbeat --remediate
	assert_output ""
	# an operator's cancel (no record) is left alone
	batch '[{"step_id": "s", "prompt": "y"}]'
	mk_attempt j s canceled
	run -0 phn-heartbeat --remediate
	assert_output ""
	[ ! -e "runs/$B/j/overrides.json" ]
}

@test "kinds and action: failed only when asked, force_retry never cancels" {
	batch '[{"step_id": "s", "prompt": "x"}]'
	mk_attempt j s failed '.failure_kind = "codex_exit"'
	run -0 phn-heartbeat --remediate
	assert_output ""
	cfg '.defaults.scoreboard.auto_remediation = {enabled: true,
	    kinds: ["failed"], action: "force_retry"}'
	# an operator's mark-failed is never undone
	run -0 phn-mark-failed -m "by hand" "$B" j s
	run -0 phn-heartbeat --remediate
	assert_output ""
	[ "$(ov '.steps.s.forced_terminal.status')" = failed ]
	run -0 phn-force-retry "$B" j s
	mk_attempt j s failed '.failure_kind = "codex_exit"'
	jq_edit "runs/$ATT/meta.json" '.force_retry_applied_nonce = 1'
	run -0 phn-heartbeat --remediate
	jq -e '.action == "force_retry" and .remediation.kind == "failed"' <<<"$output"
}

@test "disabled: stuck_auto_remediation_enabled false does nothing" {
	cfg '.defaults.scoreboard.stuck_auto_remediation_enabled = false'
	batch '[{"step_id": "s", "prompt": "x"}]'
	cfg '.limits.max_harness_retries = 0'
	mk_attempt j s failed '.failure_kind = "orphaned" | .harness_fault = true'
	run -0 phn-heartbeat --remediate
	assert_output ""
	[ ! -e "runs/$B/j/overrides.json" ]
}

@test "an attempt auto-remediation canceled does not count against max_attempts" {
	batch '[{"step_id": "s", "prompt": "x", "retry_policy": {"max_attempts": 2}}]'
	mk_attempt j s canceled '.auto_remediation = {by: "auto_remediation", kind: "stuck"}'
	mk_attempt j s failed '.failure_kind = "codex_exit"'
	run phn-score -b "$B" --steps
	[ "$(jq -r .status <<<"$output")" = ready ]
	[ "$(jq -r .attempts_counted <<<"$output")" = 1 ]
	# an operator's cancel counts
	jq_edit "runs/$B/j/steps/s/attempts/$(ls "runs/$B/j/steps/s/attempts" | head -1)/state.json" 'del(.auto_remediation)'
	run phn-score -b "$B" --steps
	[ "$(jq -r .status <<<"$output")" = failed ]
}

@test "the config is validated: each bad key named, exit 100" {
	cfg '.defaults.scoreboard.stuck_auto_remediation_enabled = "yes"'
	run -100 --separate-stderr phn-heartbeat --remediate
	assert_stderr_line --partial 'defaults.scoreboard.stuck_auto_remediation_enabled: must be true or false'
	cfg '.defaults.scoreboard.stuck_auto_remediation_enabled = true |
	    .defaults.scoreboard.auto_remediation = {enabled: 1, kinds: ["stuck", "bogus"],
	    action: "reboot", max_actions_per_tick: 0, cancel_grace_seconds: -1,
	    max_applies_per_step: 1.5, colour: 1}'
	run -100 --separate-stderr phn-heartbeat --remediate
	assert_stderr_line --partial 'auto_remediation.enabled: must be true or false'
	assert_stderr_line --partial 'auto_remediation.kinds[1]: must be "stuck", "needs_attention" or "failed"'
	assert_stderr_line --partial 'auto_remediation.action: must be "cancel_and_force_retry" or "force_retry"'
	assert_stderr_line --partial 'auto_remediation.max_actions_per_tick: must be an integer >= 1'
	assert_stderr_line --partial 'auto_remediation.cancel_grace_seconds: must be a number'
	assert_stderr_line --partial 'auto_remediation.max_applies_per_step: must be an integer >= 1'
	assert_stderr_line --partial 'auto_remediation.colour: unknown key'
	cfg '.defaults.scoreboard.auto_remediation = {kinds: []}'
	run -100 --separate-stderr phn-heartbeat --remediate
	assert_stderr_line --partial 'auto_remediation.kinds: must be a non-empty array'
	cfg '.defaults.scoreboard.auto_remediation = "on"'
	run -100 --separate-stderr phn-heartbeat --remediate
	assert_stderr_line --partial 'auto_remediation: must be an object'
}

@test "phn-init writes the legacy switch on, as the reference does" {
	[ "$(jq .defaults.scoreboard.stuck_auto_remediation_enabled runs/_system/harness_config.json)" = true ]
}

@test "usage errors exit 100" {
	run -100 --separate-stderr phn-heartbeat --dry-run --stale
	assert_usage_error phn-heartbeat
	run -100 --separate-stderr phn-heartbeat --remediate somedir
	assert_usage_error phn-heartbeat
	run -100 --separate-stderr phn-heartbeat --remediate --reap
	assert_usage_error phn-heartbeat
	run -100 --separate-stderr phn-heartbeat --remediate --interval 1
	assert_usage_error phn-heartbeat
	run -100 --separate-stderr phn-heartbeat --remediate --batch nosuch
	assert_stderr_line --partial 'no such batch: nosuch'
}

@test "--remediate --follow repeats until SIGTERM, then exits 0" {
	bg phn-heartbeat --remediate --follow --interval 0.2 >out 2>err
	sleep 0.5
	kill -TERM "$BG_PID"
	st=0
	wait "$BG_PID" || st=$?
	BG_PIDS=
	[ "$st" -eq 0 ]
}
