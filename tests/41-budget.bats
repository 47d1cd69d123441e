#!/usr/bin/env bats
# tests/41-budget.bats -- a batch's token budget: the Launch Table's
# budget and the harness default, claims stop once it is spent (steps
# blocked, reason budget_exhausted), the scoreboards show it, phn-budget
# raises it and the batch resumes; on_exhausted cancel.

load helper
load score-helper

setup() {
	phn_setup
	phn-init >/dev/null
	mkdir w
	export PHN_CODEX=$PHN_REPO/tests/fake-codex/codex
	unset FAKE_CODEX_MODE FAKE_CODEX_LOG PHN_CODEX_CONFIG
}

teardown() {
	bg_cleanup
	mock_cleanup
}

# A batch of N steps run one at a time; each fake codex run reports
# 100 input and 20 output tokens.  $2: the budget object (JSON).
budget_lt() {
	jq -n --arg g "$(goal_words 151)" --argjson n "$1" --argjson b "$2" '{
	    batch_goal_summary: $g, concurrency: 1, budget: $b,
	    execution_policy: {skip_git_repo_check: true},
	    jobs: [{job_id: "j", working_directory: "w",
	        steps: [range($n) | {step_id: "s\(.)", prompt: "FAKE:sleep:0.4"}]}]}' >lt.json
	B=$(phn-ingest lt.json)
	export B
}

@test "a spent budget blocks the steps left; the scoreboards show it; phn-budget resumes" {
	budget_lt 5 '{"max_total_tokens": 250}'
	run -0 phn tick
	run -1 phn-score -b "$B" --json
	sb=$output
	# 3 runs of 120 tokens: the third crossed 250, nothing more ran
	run jq -c '[.batch.counts.succeeded, .batch.counts.blocked]' <<<"$sb"
	assert_output '[3,2]'
	run jq -c .batch.budget <<<"$sb"
	assert_output '{"max_total_tokens":250,"used_tokens":360,"exhausted":true}'
	run jq -r '.batch.blocked[0].reasons[0]' <<<"$sb"
	[[ "$output" == budget_exhausted* ]]
	run -1 phn-score --json
	run jq -c '.system[0].budget' <<<"$output"
	assert_output '{"max_total_tokens":250,"used_tokens":360,"exhausted":true}'
	run jq -c '.budget.exhausted' "runs/$B/scoreboard.batch.json"
	assert_output true
	# raising it resumes the batch
	run -0 phn-budget "$B" 1000 -m "more"
	run jq -c '[.ok, .budget.max_total_tokens, .budget.used_tokens, .budget.exhausted]' <<<"$output"
	assert_output '[true,1000,360,false]'
	[ "$(jq -r .reason "runs/$B/budget.json")" = more ]
	# the system row kept while the batch rested is not used again
	run -3 phn-score --json
	run jq -c '.system[0].budget.exhausted' <<<"$output"
	assert_output false
	run -0 phn tick
	run -0 phn-score -b "$B" --json
	run jq -c '[.batch.counts.succeeded, .batch.budget.used_tokens, .batch.budget.exhausted]' <<<"$output"
	assert_output '[5,600,false]'
	# a second setting keeps the first in its history
	run -0 phn-budget "$B" 2000
	[ "$(jq -r '.history[0].max_total_tokens' "runs/$B/budget.json")" = 1000 ]
}

@test "the real codex CLI against the mock: the tokens it reports spend the budget" {
	need_codex
	jq -n --arg g "$(goal_words 151)" '{batch_goal_summary: $g,
	    concurrency: 1, budget: {max_total_tokens: 1},
	    execution_policy: {skip_git_repo_check: true},
	    jobs: [{job_id: "j", working_directory: "w",
	        steps: [range(3) | {step_id: "s\(.)", prompt: "Say hello."}]}]}' >lt.json
	B=$(phn-ingest lt.json)
	run -0 phn tick
	run -1 phn-score -b "$B" --json
	run jq -c '[.batch.counts.succeeded, .batch.counts.blocked,
	    .batch.budget.exhausted, .batch.budget.used_tokens > 1,
	    .batch.budget.used_tokens == .batch.usage.input_tokens + .batch.usage.output_tokens]' <<<"$output"
	assert_output '[1,2,true,true,true]'
}

@test "no budget: nothing is blocked, the scoreboard says null" {
	budget_lt 2 'null'
	run -0 phn tick
	run -0 phn-score -b "$B" --json
	run jq -c '[.batch.counts.succeeded, .batch.budget]' <<<"$output"
	assert_output '[2,{"max_total_tokens":null,"used_tokens":240,"exhausted":false}]'
}

@test "the harness default defaults.budget.max_total_tokens applies; the table's wins" {
	jq_edit runs/_system/harness_config.json '.defaults.budget.max_total_tokens = 100'
	budget_lt 3 '{}'
	run -0 phn tick
	run -1 phn-score -b "$B" --json
	run jq -c '[.batch.counts.succeeded, .batch.budget.max_total_tokens]' <<<"$output"
	assert_output '[1,100]'
	budget_lt 2 '{"max_total_tokens": 10000}'
	run -0 phn tick --batch "$B"
	run -0 phn-score -b "$B" --json
	run jq -c '[.batch.counts.succeeded, .batch.budget.max_total_tokens]' <<<"$output"
	assert_output '[2,10000]'
}

# spent ON_EXHAUSTED: a batch whose budget (100 tokens, on_exhausted
# ON_EXHAUSTED) its steps have spent: a succeeded (160 tokens) and b
# running (6 so far; its attempt in ATT).
spent() {
	mk_batch '[{"job_id": "j", "working_directory": "w", "steps": [
	    {"step_id": "a", "prompt": "x"}, {"step_id": "b", "prompt": "x"}]}]' \
	    ".budget = {max_total_tokens: 100, on_exhausted: \"$1\"}"
	mk_attempt j a succeeded '.usage = {input_tokens: 150, output_tokens: 10}'
	mk_attempt j b running '.usage = {input_tokens: 5, output_tokens: 1}'
}

@test "on_exhausted cancel: phn-heartbeat --remediate cancels the running attempts; wait does not" {
	spent wait
	run -0 phn-heartbeat --remediate
	assert_output ""
	[ "$(jq -r .status "runs/$ATT/state.json")" = running ]
	spent cancel
	run -0 phn-heartbeat --remediate --dry-run
	jq -e '.action == "budget_cancel" and .dry_run == true' <<<"$output"
	[ "$(jq -r .status "runs/$ATT/state.json")" = running ]
	run -0 phn-heartbeat --remediate
	jq -e '.action == "budget_cancel" and .budget.used_tokens == 166 and
	    .budget.exhausted == true' <<<"$output"
	[ "$(jq -r .status "runs/$ATT/state.json")" = canceled ]
}

@test "the Launch Table's budget and the config's are validated" {
	jq -n --arg g "$(goal_words 151)" '{batch_goal_summary: $g,
	    budget: {max_total_tokens: 0, on_exhausted: "stop", colour: 1},
	    jobs: [{working_directory: "w", steps: [{prompt: "x"}]}]}' >lt.json
	run -100 --separate-stderr phn-ingest lt.json
	assert_stderr_line --partial 'budget.max_total_tokens: must be an integer >= 1'
	assert_stderr_line --partial 'budget.on_exhausted'
	assert_stderr_line --partial 'colour'
	jq_edit lt.json '.budget = 5'
	run -100 --separate-stderr phn-ingest lt.json
	assert_stderr_line --partial 'budget: must be an object'
	jq_edit runs/_system/harness_config.json '.defaults.budget = {max_total_tokens: -1, on_exhausted: 1, x: 2}'
	run -100 --separate-stderr phn-score
	assert_stderr_line --partial 'defaults.budget.max_total_tokens: must be an integer >= 1 or null'
	assert_stderr_line --partial 'defaults.budget.on_exhausted: must be "wait" or "cancel"'
	assert_stderr_line --partial 'defaults.budget.x: unknown key'
}

@test "phn-budget: usage errors and an unknown batch exit 100" {
	budget_lt 1 'null'
	run -100 --separate-stderr phn-budget "$B" 0
	assert_usage_error phn-budget
	run -100 --separate-stderr phn-budget "$B" lots
	assert_usage_error phn-budget
	run -100 --separate-stderr phn-budget "$B"
	assert_usage_error phn-budget
	run -100 --separate-stderr phn-budget nosuch 10
	assert_stderr_line --partial 'no such batch: nosuch'
	[ ! -e "runs/$B/budget.json" ]
	run -0 phn-budget --help
	[[ "${lines[0]}" == "usage: phn-budget"* ]]
}
