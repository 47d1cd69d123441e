#!/usr/bin/env bats
# tests/85-e2e-codex.bats -- phn-spawn end to end with the REAL Codex CLI
# (npm @openai/codex 0.171.0, cached by .ci/deps.sh, found by
# .ci/codex-path.sh) against the project's mock Responses API on 127.0.0.1
# (tests/mock/).  PHN_CODEX_CONFIG points every attempt's CODEX_HOME at
# the hardened, loopback-only config of tests/mock/codex-env.sh; HOME is a
# scratch directory, so no real account or auth is ever linked.
#
# The mock picks its behaviour from a MOCK:<scenario> marker in the prompt.
# Attempts are claimed by phn-claim.  When .ci/codex-path.sh finds no
# codex, every test fails saying why.

load helper
load spawn-helper

codex_spawn_suite

# claim STEP: the next claimed attempt in A, claimed by phn-claim itself
# (STEP, for spawn-helper's one, is the only step it can claim).
claim() {
	A=$(phn-claim -b "$B" -n 1)
	[ -d "$A" ]
}

@test "e2e: two steps, step 2 resumes step 1's thread with its history" {
	batch '[{"step_id": "step1", "prompt": "First turn. MOCK:ok"},
	    {"step_id": "step2", "prompt": "Second turn. MOCK:ok",
	     "depends_on": ["step1"], "resume_from": {"step_id": "step1"}}]'
	if command -v phn-claim >/dev/null; then
		run sh -c "phn-claim --follow -j 2 -b '$B' | xargs -P 2 -n 1 phn-spawn"
		assert_success
	else
		claim step1
		phn-spawn "$A"
		claim step2
		phn-spawn "$A"
	fi
	a1=$(ls -d "runs/$B/j/steps/step1/attempts/"*)
	a2=$(ls -d "runs/$B/j/steps/step2/attempts/"*)
	jq -e '.status == "succeeded"' "$a1/state.json" "$a2/state.json"
	tid=$(jq -r .codex_thread_id "$a1/state.json")
	[ "$(jq -r .codex_thread_id "$a2/state.json")" = "$tid" ]
	grep -q " exec resume .* $tid -\$" "$a2/codex.command.txt"
	jq -r 'select(.type == "thread.started") | .thread_id' \
	    "$a2/codex.events.jsonl" | grep -qx "$tid"
	jq -e '.summary == "mock ok: 1 prior user message(s) in input"' \
	    "$a2/final.json"
	# The model got the whole history: first prompt, first answer, new one.
	mock_requests "$tid" | tail -n 1 | jq -e '.prior_prompts == 1
	    and (.last_prompt | startswith("Second turn."))
	    and any(.body.input[]; .role == "assistant")
	    and any(.body.input[]; .role == "user"
	        and (.content[0].text | startswith("First turn.")))'
	# Both rounds appended to one rollout, copied on resume.
	ls "$a2"/codex_home/sessions/*/*/*/rollout-*-"$tid".jsonl
	jq -e '.codex_cli_version == "0.171.0"' "$a1/state.json" "$a2/state.json"
	u1=$(jq .usage.input_tokens "$a1/state.json")
	u2=$(jq .usage.input_tokens "$a2/state.json")
	[ "$u2" -gt "$u1" ]
	[ "$(jq .usage_attempt.input_tokens "$a2/state.json")" -eq $((u2 - u1)) ]
	jq -e '.steps.step2.latest_successful != null' "runs/$B/j/current.json"
}

@test "e2e: HTTP 500 -> failed model_error, exit 1" {
	one "MOCK:http500"
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed model_error
	[ "$(st .exit_code)" = 1 ]
	[ ! -s "$A/final.txt" ]
	[ ! -e "$A/final.json" ]
}

@test "e2e: dropped stream -> failed model_error" {
	one "MOCK:drop"
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed model_error
	st '.errors[0]' | grep -q 'stream closed before response.completed'
}

@test "e2e: a model that never answers -> failed timeout, exit 124, codex gone" {
	one "MOCK:hang" '{"timeout_seconds": 3}'
	run phn-spawn "$A"
	assert_failure 124
	assert_outcome failed timeout
	[ "$(alive_in_group "$(st .pgid)")" -eq 0 ]
	tid=$(st .codex_thread_id)
	wait_for eval "mock_requests $tid | grep -q hang_end"
	mock_requests "$tid" | jq -e '.hang_end == "client_gone"'
}

@test "e2e: SIGTERM to phn-spawn cancels the running codex, exit 4" {
	one "MOCK:hang"
	spawn_bg
	wait_for eval 'grep -q turn.started "$A/codex.events.jsonl" 2>/dev/null'
	sleep 0.5
	stop_bg TERM 4
	assert_outcome canceled canceled
	[ "$(alive_in_group "$(st .pgid)")" -eq 0 ]
}

@test "e2e: a tool call writes a file in the isolated workspace" {
	echo "# repo" >w/README.md
	git -C w init -q
	git -C w -c user.email=t@t -c user.name=t add -A
	git -C w -c user.email=t@t -c user.name=t commit -qm init
	batch '[{"step_id": "s", "prompt": "Write the file. MOCK:write_file:out.txt"}]' \
	    '.workspace_policy = {mode: "isolated"}'
	claim s
	run phn-spawn "$A"
	assert_success
	assert_outcome succeeded null
	ws=$T/runs/$B/j/_workspace
	[ "$(cat "$ws/out.txt")" = "written by mock" ]
	[ ! -e w/out.txt ]
	jq -e '.files_written == ["out.txt"]' "$A/final.json"
	jq -e -s 'any(.[]; .type == "item.completed"
	    and .item.type == "command_execution" and .item.exit_code == 0)' \
	    "$A/codex.events.jsonl"
	st .current_item | grep -q '^command: .*out.txt'
}

@test "e2e: codex accepts a schema-invalid reply; phn-spawn does not" {
	one "MOCK:schema_invalid"
	run phn-spawn "$A"
	assert_failure 3
	assert_outcome needs_attention invalid_report
	[ "$(st .exit_code)" = 0 ]
	one "MOCK:report_failed"
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed report_failed
}

@test "e2e: resuming an unknown thread fails; a thread name never starts a new one silently" {
	resume_ran "First. MOCK:ok" "Second. MOCK:ok"
	claim s2
	jq_edit "$A/meta.json" '.codex_thread_id = "01a21f30-0d11-7b13-8987-a027ca203137"'
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed codex_exit
	grep -q 'no rollout found' "$A/codex.stderr.txt"
	A=$("$T_CLAIM" "$B" j s2)
	jq_edit "$A/meta.json" '.codex_thread_id = "not-a-uuid"'
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed spawn_error
	st '.errors[0]' | grep -q 'instead of resuming not-a-uuid'
}

@test "e2e: CODEX_HOME links the mock config only; codex connects to loopback only" {
	if ! command -v strace >/dev/null; then
		skip "strace not installed: cannot watch connect(2)"
	fi
	one "MOCK:ok"
	# (LeakSanitizer cannot run under ptrace: no leak check here.)
	ASAN_OPTIONS=detect_leaks=0 run strace -f -qq -e trace=connect \
	    -o "$T/trace" phn-spawn "$A"
	assert_success
	[ "$(readlink "$A/codex_home/config.toml")" = "$PHN_CODEX_CONFIG" ]
	[ ! -e "$A/codex_home/auth.json" ]
	# Every inet connect() goes to 127.0.0.1 (or ::1); none to port 53.
	grep -E 'sin6?_' "$T/trace" >"$T/inet" || true
	[ -s "$T/inet" ]
	run grep -Ev 'inet_addr\("127\.0\.0\.1"\)|inet_pton\(AF_INET6, "::1"' "$T/inet"
	assert_failure
	run grep 'htons(53)' "$T/trace"
	assert_failure
}
