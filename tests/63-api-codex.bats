#!/usr/bin/env bats
# tests/63-api-codex.bats -- phn-api end to end with the REAL Codex CLI
# against the project's mock Responses API (tests/mock/), as in
# 85-e2e-codex.bats: a table submitted over HTTP, ticked over HTTP, its
# events read back; and a no_codex tick that must not reach the model.
# If codex cannot run, the tests fail saying why.

load api-helper

setup_file() {
	codex_setup_file
}

teardown_file() {
	codex_teardown_file
}

setup() {
	[ -z "$CODEX_SKIP" ] || fail "the real codex cannot run: $CODEX_SKIP"
	phn_setup
	API_PID=
	export HOME=$T/home
	mkdir -p "$HOME" w
	unset CODEX_HOME
	api_conf
	jq -n --arg g "$(goal_words 151)" '{batch_goal_summary: $g,
	    execution_policy: {skip_git_repo_check: true,
	    sandbox: "workspace-write", approval_policy: "never"},
	    timeouts: {step_timeout_seconds: 120},
	    jobs: [{job_id: "j", working_directory: "w",
	    steps: [{step_id: "s", prompt: "Say hello. MOCK:ok"}]}]}' >lt.json
	start_api
}

teardown() {
	stop_api
}

@test "api e2e: submit, tick with the real codex, read the scoreboard and the events" {
	run -0 curl -s --data-binary @lt.json "$URL/v1/batches"
	B=$(jq -r .batch_id <<<"$output")
	[ -d "runs/$B" ]
	run -0 curl -s -m 300 -w '\n%{http_code}' -X POST "$URL/v1/tick"
	[ "${lines[-1]}" = 200 ] || fail "$output $(cat "$T/api.err")"
	run -0 curl -s "$URL/v1/batches/$B/scoreboard"
	[ "$(jq -r .batch.counts.succeeded <<<"$output")" = 1 ] || fail "$output"
	jq -e '.batch.usage.input_tokens > 0' <<<"$output"
	run -0 curl -s "$URL/v1/attempts/events?batch_id=$B&job_id=j&step_id=s&lines=1000"
	grep -q '"type":"thread.started"' <<<"$output"
	grep -q '"type":"turn.completed"' <<<"$output"
	tid=$(jq -r 'select(.type == "thread.started") | .thread_id' <<<"$output")
	[ -n "$(mock_requests "$tid")" ]
}

@test "api e2e: a no_codex tick never reaches the model" {
	before=$(cat "$MOCK_LOG" 2>/dev/null | wc -l)
	run -0 curl -s --data-binary @lt.json "$URL/v1/batches"
	B=$(jq -r .batch_id <<<"$output")
	run -0 curl -s -X POST "$URL/v1/tick?no_codex=true"
	[ "$(jq -r .ok <<<"$output")" = true ]
	run -0 phn-score -b "$B" --steps
	[ "$(jq -r .status <<<"$output")" = succeeded ]
	[ "$(cat "$MOCK_LOG" 2>/dev/null | wc -l)" -eq "$before" ]
}
