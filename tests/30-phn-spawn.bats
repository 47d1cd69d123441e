#!/usr/bin/env bats
# tests/30-phn-spawn.bats -- phn-spawn against fake codex scripts
# (tests/fake-codex/codex: its behaviour is picked by a FAKE:<mode> marker
# in the prompt).  Attempts are claimed with tests/t-claim1, which writes
# exactly what the shared contract says phn-claim writes.  Every outcome
# is checked as status, failure_kind and exit status; every exit status of
# SPEC 6.6 has a test.

load helper
load spawn-helper

FAKE=$PHN_REPO/tests/fake-codex/codex

setup() {
	# Fast stops: 1 s between SIGTERM and SIGKILL.
	spawn_setup 1
	export PHN_CODEX=$FAKE FAKE_CODEX_LOG=$T/codex.log
	unset PHN_CODEX_CONFIG FAKE_CODEX_MODE FAKE_CODEX_NO_WEB_SEARCH
}

teardown() {
	spawn_teardown	# nothing a test started may outlive it
}

no_group_left() { # nothing is alive in codex's process group (zombies
	# count as gone: reaping orphans is init's business)
	local g
	g=$(st .pgid)
	[ -n "$g" ]
	[ "$g" != null ]
	[ "$(alive_in_group "$g")" -eq 0 ]
}

@test "success: exit 0, silent, every artifact, state and current.json" {
	one "Say hello."
	run --separate-stderr phn-spawn "$A"
	assert_success
	assert_output ""
	[ -z "$stderr" ]
	assert_outcome succeeded null
	[ "$(st .exit_code)" = 0 ]
	[ "$(st '.errors | length')" = 0 ]
	# Who ran it, and codex's identity.
	[ "$(st .host)" = "$(hostname)" ]
	[ "$(st .boot_id)" = "$(cat /proc/sys/kernel/random/boot_id)" ]
	[ "$(st '.spawner_pid | type')" = number ]
	[ "$(st '.spawner_start | type')" = number ]
	[ "$(st .pid)" = "$(st .pgid)" ]
	[ "$(st '.codex_start | type')" = number ]
	jq -e '[.started_at, .ended_at, .last_heartbeat_at, .last_event_at]
	    | all(type == "string")' "$A/state.json"
	# What the events said.
	[ "$(st .codex_thread_id)" = "$(jq -r 'select(.type == "thread.started")
	    .thread_id' "$A/codex.events.jsonl")" ]
	jq -e '.usage == {input_tokens: 100, cached_input_tokens: 10,
	    output_tokens: 20, reasoning_output_tokens: 5}' "$A/state.json"
	[ "$(st .current_item)" = "command: /bin/sh -c true" ]
	# The files.
	[ "$(cat "$A/prompt.txt")" = "Say hello." ]
	jq -e . "$A/meta.json" >/dev/null
	[ "$(wc -l <"$A/codex.events.jsonl")" -eq 6 ]
	[ -f "$A/codex.stderr.txt" ]
	jq -e --slurpfile f "$A/final.txt" '. == $f[0]' "$A/final.json"
	jq -e '.status == "ok" and .run_id != null
	    and (.final_json_path | endswith("final.json"))' "$A/handoff.json"
	[ -d "$A/codex_home" ]
	[ -d "$A/tmp" ]
	# current.json points at it.
	jq -e --arg r "$(basename "$A" | sed 's/^[^_]*_//')" '
	    .steps.s.latest_successful.run_id == $r
	    and .steps.s.by_run_id[$r].status == "succeeded"' \
	    "runs/$B/j/current.json"
}

@test "codex runs in the workdir with CODEX_HOME and TMPDIR of the attempt" {
	one "hi"
	run phn-spawn "$A"
	assert_success
	IFS=$(printf '\t') read -r cwd home tmp _ <"$T/codex.log"
	[ "$cwd" = "$T/w" ]
	[ "$home" = "$A/codex_home" ]
	[ "$tmp" = "$A/tmp" ]
}

@test "--json: one summary object on stdout" {
	one "hi"
	run --separate-stderr phn-spawn --json "$A"
	assert_success
	assert_json_lines
	[ "${#lines[@]}" -eq 1 ]
	[ -n "$output" ]
	jq -e --arg a "$A" '.attempt_dir == $a and .status == "succeeded"
	    and .exit_status == 0 and .failure_kind == null
	    and (.codex_thread_id | startswith("01fake00"))' <<<"$output"
}

@test "exec argv: exactly SPEC 6.1, shell-quoted in codex.command.txt" {
	one "hi"
	jq_edit "$A/meta.json" '.policy_snapshot += {model: "gpt-5.5",
	    model_reasoning_effort: "low", add_dirs: ["/tmp/x y", "rel"],
	    sandbox: "read-only", approval_policy: "never"}'
	run phn-spawn "$A"
	assert_success
	want="$FAKE exec -C $T/w --color never --output-schema $T/runs/_system/run_report.schema.json -m gpt-5.5 -c 'model_reasoning_effort=\"low\"' -s read-only --add-dir '/tmp/x y' --add-dir $T/w/rel -c 'approval_policy=\"never\"' --skip-git-repo-check --json -o $A/final.txt -"
	assert_equal "$(cat "$A/codex.command.txt")" "$want"
	# The argv codex really got is that one.
	[ "$(cut -f4- "$T/codex.log" | tr '\t' ' ')" = \
	    "exec -C $T/w --color never --output-schema $T/runs/_system/run_report.schema.json -m gpt-5.5 -c model_reasoning_effort=\"low\" -s read-only --add-dir /tmp/x y --add-dir $T/w/rel -c approval_policy=\"never\" --skip-git-repo-check --json -o $A/final.txt -" ]
}

@test "resume: exec resume ... THREAD - in the workdir, codex_home copied, source untouched" {
	echo secret >"$T/auth.json"
	mkdir -p "$HOME/.codex"
	ln -s "$T/auth.json" "$HOME/.codex/auth.json"
	printf 'model = "x"\n' >"$T/cfg.toml"
	export PHN_CODEX_CONFIG=$T/cfg.toml
	batch '[{"step_id": "s1", "prompt": "first"},
	    {"step_id": "s2", "prompt": "second", "depends_on": ["s1"],
	     "resume_from": {"step_id": "s1"}}]'
	claim s1
	A1=$A
	run phn-spawn "$A1"
	assert_success
	mkdir -p "$A1/codex_home/sessions/2026"
	echo rollout >"$A1/codex_home/sessions/2026/rollout-x.jsonl"
	ln -s sessions/2026 "$A1/codex_home/rel-link"
	tid=$(jq -r .codex_thread_id "$A1/state.json")
	before=$(cd "$A1" && find codex_home | sort | xargs ls -ld --time-style=+%s)
	claim s2
	jq -e --arg t "$tid" '.invocation == "resume" and .codex_thread_id == $t' \
	    "$A/meta.json"
	run phn-spawn "$A"
	assert_success
	assert_outcome succeeded null
	[ "$(st .codex_thread_id)" = "$tid" ]
	want="$FAKE exec resume --json -o $A/final.txt --output-schema $T/runs/_system/run_report.schema.json -c 'sandbox_mode=\"workspace-write\"' -c 'approval_policy=\"never\"' --skip-git-repo-check $tid -"
	assert_equal "$(cat "$A/codex.command.txt")" "$want"
	[ "$(tail -n 1 "$T/codex.log" | cut -f1)" = "$T/w" ]
	# The session store came along; auth and config are fresh links.
	[ "$(cat "$A/codex_home/sessions/2026/rollout-x.jsonl")" = rollout ]
	[ "$(readlink "$A/codex_home/rel-link")" = sessions/2026 ]
	[ "$(readlink "$A/codex_home/auth.json")" = "$HOME/.codex/auth.json" ]
	[ "$(readlink "$A/codex_home/config.toml")" = "$T/cfg.toml" ]
	[ "$(readlink "$A1/codex_home/config.toml")" = "$T/cfg.toml" ]
	# Nothing of the source changed.
	[ "$(cd "$A1" && find codex_home | sort | xargs ls -ld --time-style=+%s)" = "$before" ]
	# Nothing under runs/ holds the secret.
	run grep -rl secret runs
	assert_failure
}

@test "resume: codex reporting another thread fails spawn_error (never a silent new session)" {
	resume_ran first "second FAKE:newthread"
	claim s2
	run --separate-stderr phn-spawn "$A"
	assert_failure 1
	assert_outcome failed spawn_error
	st '.errors[]' | grep -q 'started a new thread'
}

@test "resume: source gone before start -> failed spawn_error, exit 1, not left queued" {
	resume_ran first second
	claim s2
	rm -rf "$A1/codex_home"
	run --separate-stderr phn-spawn "$A"
	assert_failure 1
	assert_outcome failed spawn_error
	st '.errors[]' | grep -q 'codex_home is gone'
	[ "$(wc -l <"$T/codex.log")" -eq 1 ]
	assert_stderr_prefix phn-spawn
}

@test "resume with no recorded thread id refuses to guess (never --last)" {
	resume_ran first second
	jq_edit "$A1/state.json" 'del(.codex_thread_id)'
	claim s2
	jq_edit "$A/meta.json" 'del(.codex_thread_id)'
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed spawn_error
	run -1 grep -q -- --last "$T/codex.log"
	st '.errors[]' | grep -q 'never --last'
}

codex_exit_case() { # FAKE-MODE CODE: the attempt fails codex_exit, keeping CODE
	one "FAKE:$1"
	run --separate-stderr phn-spawn "$A"
	assert_failure 1
	assert_outcome failed codex_exit
	[ "$(st .exit_code)" = "$2" ]
}

@test "a completed turn with a valid report but a non-zero exit is not a success" {
	codex_exit_case ok_exit:2 2
	# the turn did complete and the report was valid: only the exit fails it
	grep -q '"type":"turn.completed"' "$A/codex.events.jsonl"
	jq -e '.status == "ok"' "$A/final.txt"
	st '.errors[0]' | grep -q 'status 2: fake codex: turn done'
	jq -e --arg r "$(basename "$A" | sed 's/^[^_]*_//')" '
	    .steps.s.latest_successful == null
	    and .steps.s.by_run_id[$r].status == "failed"' \
	    "runs/$B/j/current.json"
}

@test "codex exits non-zero -> failed codex_exit, the real exit code kept" {
	codex_exit_case exit:3 3
	st '.errors[0]' | grep -q 'status 3: fake codex: failing with status 3'
	assert_stderr_prefix phn-spawn
	[ -f "$A/handoff.json" ]
	[ ! -e "$A/final.json" ]
}

@test "turn.failed -> failed model_error" {
	one "FAKE:turn_failed"
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed model_error
	[ "$(st .exit_code)" = 1 ]
	st '.errors[0]' | grep -q 'stream disconnected'
}

@test "codex exits 0 without turn.completed -> failed codex_exit" {
	one "FAKE:no_turn"
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed codex_exit
	[ "$(st .exit_code)" = 0 ]
}

@test "codex killed by a signal -> failed codex_exit with the signal" {
	one "FAKE:selfkill"
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed codex_exit
	[ "$(st .signal)" = 9 ]
	[ "$(st .exit_code)" = null ]
}

@test "final message not JSON -> needs_attention invalid_report, exit 3" {
	one "FAKE:not_json"
	run phn-spawn "$A"
	assert_failure 3
	assert_outcome needs_attention invalid_report
	[ ! -e "$A/final.json" ]
	jq -e '.schema_version == "unknown" and .final_json_path == null' \
	    "$A/handoff.json"
	st '.errors[0]' | grep -q 'not valid JSON'
}

@test "schema-invalid report -> needs_attention invalid_report" {
	one "FAKE:schema_invalid"
	run phn-spawn "$A"
	assert_failure 3
	assert_outcome needs_attention invalid_report
	st '.errors[0]' | grep -q 'schema validation failed'
	[ ! -e "$A/final.json" ]
}

@test "the step's own output schema is the one used" {
	jq -n '{type: "object", required: ["answer"],
	    properties: {answer: {type: "integer"}}}' >w/schema.json
	one "hi" '{"output_schema_ref": "schema.json"}'
	run phn-spawn "$A"
	assert_failure 3
	assert_outcome needs_attention invalid_report
	grep -q -- "--output-schema $T/runs/$B/j/steps/s/output_schema.json" \
	    "$A/codex.command.txt"
	st '.errors[0]' | grep -q answer
}

@test "the report's own status is honoured: failed -> 1, needs_attention -> 3" {
	one "FAKE:report_failed"
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed report_failed
	[ -e "$A/final.json" ]
	one "FAKE:needs_attention"
	run phn-spawn "$A"
	assert_failure 3
	assert_outcome needs_attention report_failed
}

@test "artifacts_expected missing -> needs_attention missing_artifacts" {
	one "hi" '{"artifacts_expected": [{"name": "final.json"}, "nope.txt"]}'
	run phn-spawn "$A"
	assert_failure 3
	assert_outcome needs_attention missing_artifacts
	st '.errors[0]' | grep -q 'missing expected artifacts: nope.txt'
	one "hi" '{"artifacts_expected": [{"name": "final.json"}, "handoff.json"]}'
	run phn-spawn "$A"
	assert_success
}

@test "timeout: TERM to the group, failed timeout, exit 124" {
	one "FAKE:sleep:60" '{"timeout_seconds": 1}'
	run --separate-stderr phn-spawn "$A"
	assert_failure 124
	assert_outcome failed timeout
	[ "$(st .signal)" = 15 ]
	st '.errors[0]' | grep -q 'step timeout after 1s'
	no_group_left
}

@test "timeout: a codex ignoring SIGTERM is killed after kill_grace_seconds" {
	one "FAKE:ignore_term:60" '{"timeout_seconds": 1}'
	run phn-spawn "$A"
	assert_failure 124
	assert_outcome failed timeout
	[ "$(st .signal)" = 9 ]
}

cancel_with() { # SIGNAL
	one "FAKE:sleep:60"
	spawn_bg
	codex_started
	stop_bg "$1" 4
	assert_outcome canceled canceled
	no_group_left
}

@test "cancel: SIGTERM to phn-spawn -> canceled, exit 4, nothing left running" {
	cancel_with TERM
	st '.errors[0]' | grep -q 'signal 15'
}

@test "cancel: SIGINT and SIGHUP cancel too" {
	cancel_with INT
	cancel_with HUP
}

@test "a canceled claim is not run: exit 4" {
	one "hi"
	jq_edit "$A/state.json" '.status = "canceled"'
	run --separate-stderr phn-spawn "$A"
	assert_failure 4
	[ ! -e "$T/codex.log" ]
}

@test "--json: a refused attempt still gets one object" {
	one "hi"
	jq_edit "$A/state.json" '.status = "canceled"'
	run -4 --separate-stderr phn-spawn --json "$A"
	assert_json_lines
	[ -n "$output" ]
	jq -e --arg a "$A" '.attempt_dir == $a and .started == false and
	    .status == "canceled" and .exit_status == 4' <<<"$output"
	run -100 --separate-stderr phn-spawn --json "$T/nope"
	assert_stderr_prefix phn-spawn
	[ -n "$output" ]
	jq -e '.started == false and .status == null and .exit_status == 100' \
	    <<<"$output"
}

@test "codex not found -> failed spawn_error, exit 127" {
	one "hi"
	PHN_CODEX=$T/no-such-codex run -127 --separate-stderr phn-spawn "$A"
	assert_failure 127
	assert_outcome failed spawn_error
	st '.errors[0]' | grep -q 'no-such-codex'
	[ "$(st .pid)" = null ]
}

@test "codex not on PATH -> exit 127 with a hint" {
	one "hi"
	run -127 --separate-stderr env -u PHN_CODEX PATH=/nonexistent \
	    "$(command -v phn-spawn)" "$A"
	assert_failure 127
	assert_outcome failed spawn_error
	st '.errors[0]' | grep -q 'PHN_CODEX'
}

@test "codex not executable -> failed spawn_error, exit 126" {
	one "hi"
	printf 'not a program\n' >"$T/codex"
	chmod 644 "$T/codex"
	PHN_CODEX=$T/codex run phn-spawn "$A"
	assert_failure 126
	assert_outcome failed spawn_error
	mkdir "$T/dir"
	one "hi"
	PHN_CODEX=$T/dir run phn-spawn "$A"
	assert_failure 126
}

@test "exec fails after fork (bad interpreter) -> spawn_error" {
	one "hi"
	printf '#!/nonexistent/interp\n' >"$T/codex"
	chmod 755 "$T/codex"
	PHN_CODEX=$T/codex run -127 phn-spawn "$A"
	assert_failure 127
	assert_outcome failed spawn_error
	st '.errors[0]' | grep -q 'unable to run'
}

@test "missing prompt snapshot -> failed spawn_error, exit 1" {
	one "hi"
	rm "runs/$B/j/steps/s/prompt.txt"
	run --separate-stderr phn-spawn "$A"
	assert_failure 1
	assert_outcome failed spawn_error
	st '.errors[0]' | grep -q 'prompt snapshot'
	[ ! -e "$T/codex.log" ]
}

@test "a prompt snapshot changed after ingest is refused" {
	one "hi"
	printf 'evil' >"runs/$B/j/steps/s/prompt.txt"
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed spawn_error
	st '.errors[0]' | grep -q prompt_sha256
}

@test "unreadable or unusable output schema -> failed spawn_error" {
	one "hi"
	jq_edit "$A/meta.json" '.output_schema = "nope.json"'
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed spawn_error
	st '.errors[0]' | grep -q 'output schema'
	one "hi"
	echo '{"type": "object", "pattern": "("}' >"$T/bad.json"
	jq_edit "$A/meta.json" --arg s "$T/bad.json" '.output_schema = $s'
	run phn-spawn "$A"
	assert_failure 1
	st '.errors[0]' | grep -q unusable
}

@test "a grandchild holding stdout does not hang phn-spawn" {
	one "FAKE:grandchild"
	run phn-spawn "$A"
	assert_success
	assert_outcome succeeded null
	st '.errors[0]' | grep -q 'kept its output open'
	no_group_left
}

@test "a huge event line is recorded as received; later events still parsed" {
	one "FAKE:huge:10485760"
	run phn-spawn "$A"
	assert_success
	pre='{"type":"item.completed","item":{"id":"item_9","type":"agent_message","text":"'
	want=$(( ${#pre} + 10485760 + 4 ))
	[ "$(sed -n 3p "$A/codex.events.jsonl" | wc -c)" -eq "$want" ]
	sed -n 3p "$A/codex.events.jsonl" | tail -c 4 | grep -q '"}}$'

	[ "$(wc -l <"$A/codex.events.jsonl")" -eq 7 ]
	[ "$(st .usage.input_tokens)" = 100 ]
}

@test "a large event line under the limit is parsed" {
	one "FAKE:huge:1000000"
	run phn-spawn "$A"
	assert_success
	[ "$(sed -n 3p "$A/codex.events.jsonl" | jq -r '.item.text | length')" = 1000000 ]
}

@test "heartbeats and the thread id reach state.json while codex runs" {
	# batch_meta.json is write-once (the schedule index copies it at the
	# first claim): the interval comes from the harness config.
	jq_edit runs/_system/harness_config.json \
	    '.defaults.scoreboard.heartbeat_interval_seconds = 1'
	one "FAKE:sleep:60"
	spawn_bg
	wait_for eval '[ "$(st .codex_thread_id)" != null ]'
	h1=$(st .last_heartbeat_at)
	wait_for eval '[ "$(st .last_heartbeat_at)" != "$h1" ]'
	[ "$(st .status)" = running ]
	jq -e '.steps.s.by_run_id[].codex_thread_id | startswith("01fake00")' \
	    "runs/$B/j/current.json"
	stop_bg TERM 4
}

@test "a terminal state written by someone else while codex runs stands" {
	# batch_meta.json is write-once (the schedule index copies it at the
	# first claim): the interval comes from the harness config.
	jq_edit runs/_system/harness_config.json \
	    '.defaults.scoreboard.heartbeat_interval_seconds = 1'
	one "FAKE:sleep:60"
	spawn_bg
	codex_started
	jq_edit "$A/state.json" '.status = "failed" | .failure_kind = "claim_expired"'
	rc=0
	wait "$BG" || rc=$?
	BG=
	[ "$rc" -eq 1 ]
	assert_outcome failed claim_expired
	no_group_left
}

@test "not a claimed attempt: running, terminal, missing state, not a dir -> 100" {
	one "hi"
	jq_edit "$A/state.json" '.status = "running"'
	run --separate-stderr phn-spawn "$A"
	assert_failure 100
	assert_stderr_line --partial "its status is running"
	jq_edit "$A/state.json" '.status = "succeeded"'
	run phn-spawn "$A"
	assert_failure 100
	rm "$A/state.json"
	run phn-spawn "$A"
	assert_failure 100
	run --separate-stderr phn-spawn "$T/w"
	assert_failure 100
	assert_stderr_prefix phn-spawn
	run phn-spawn "runs/$B/j/steps/s/attempts/nope_run_x"
	assert_failure 100
}

@test "an attempt already being run (spawn.lock held) -> 100" {
	one "hi"
	exec 8>"$A/spawn.lock"
	flock -x 8
	run --separate-stderr phn-spawn "$A"
	exec 8>&-
	assert_failure 100
	assert_stderr_line --partial "already being run"
	[ "$(st .status)" = queued ]
}

@test "usage errors -> 100" {
	run --separate-stderr phn-spawn
	assert_failure 100
	assert_stderr_line --partial "usage: phn-spawn"
	run phn-spawn a b
	assert_failure 100
	run phn-spawn --bogus x
	assert_failure 100
}

@test "state.json cannot be written -> 111" {
	one "hi"
	mkdir "$A/state.lock.d"
	rm -f "$A/state.lock"
	mv "$A/state.lock.d" "$A/state.lock"
	run --separate-stderr phn-spawn "$A"
	assert_failure 111
	assert_stderr_prefix phn-spawn
}

@test "no file descriptors left for codex's pipes -> failed spawn_error, 111, not left queued" {
	one "hi"
	run --separate-stderr sh -c 'ulimit -n 12 && exec phn-spawn "$1"' sh "$A"
	assert_failure 111
	assert_stderr_line --partial "unable to create pipes: Too many open files"
	assert_outcome failed spawn_error
	[ ! -e "$A/codex.events.jsonl" ] || [ ! -s "$A/codex.events.jsonl" ]
}

@test "attempt paths relative to the runs root work with --root" {
	one "hi"
	rel=${A#"$T"/runs/}
	cd /
	run phn-spawn --root "$T" "$rel"
	assert_success
	[ "$(st .status)" = succeeded ]
}

@test "meta.json missing: everything is derived from batch_meta.json" {
	one "hi"
	rm "$A/meta.json"
	run phn-spawn "$A"
	assert_success
	assert_outcome succeeded null
	st '.errors[0]' | grep -q 'derived from batch_meta.json'
}

@test "--no-codex: a schema-valid fake report through the same lifecycle" {
	one "hi"
	PHN_CODEX=$T/no-such run --separate-stderr phn-spawn --no-codex "$A"
	assert_success
	assert_outcome succeeded null
	[ ! -e "$T/codex.log" ]
	[ ! -e "$A/codex.command.txt" ]
	jq -e '.status == "ok" and (.summary | startswith("fake run report"))' \
	    "$A/final.json"
	[ -f "$A/handoff.json" ]
	jq -e '.steps.s.latest_successful != null' "runs/$B/j/current.json"
}

@test "--no-codex: a custom schema gets a generated instance" {
	jq -n '{type: "object", required: ["answer", "tags"], additionalProperties: false,
	    properties: {answer: {type: "integer", minimum: 3},
	    tags: {type: "array", minItems: 2, items: {enum: ["a", "b"]}}}}' \
	    >w/schema.json
	one "hi" '{"output_schema_ref": "schema.json"}'
	run phn-spawn -D "$A"
	assert_success
	jq -e '. == {answer: 3, tags: ["a", "a"]}' "$A/final.json"
}

@test "--no-codex: fake_exit_codes, fake writes and markers" {
	one "hi" '{"fake_exit_codes": [2, 0], "fake_workspace_writes":
	    [{"path": "sub/f.txt", "content": "x"}], "fake_codex_home_marker": "mk"}'
	run phn-spawn -D "$A"
	assert_failure 1
	assert_outcome failed codex_exit
	[ "$(st .exit_code)" = 2 ]
	[ "$(cat w/sub/f.txt)" = x ]
	[ -f "$A/codex_home/mk" ]
	one "hi" '{"fake_workspace_assert_exists": ["nope"]}'
	run phn-spawn -D "$A"
	assert_failure 3
	assert_outcome needs_attention missing_artifacts
}

@test "--no-codex: fake_sleep_seconds can be canceled and timed out" {
	one "hi" '{"fake_sleep_seconds": 60, "timeout_seconds": 1}'
	run phn-spawn -D "$A"
	assert_failure 124
	assert_outcome failed timeout
	one "hi" '{"fake_sleep_seconds": 60}'
	spawn_bg -D
	wait_for eval '[ "$(st .status)" = running ]'
	stop_bg TERM 4
	assert_outcome canceled canceled
}

@test "web_search_enabled: the key the installed codex accepts, else spawn_error" {
	one "hi"
	jq_edit "$A/meta.json" '.policy_snapshot.web_search_enabled = true'
	run phn-spawn "$A"
	assert_success
	grep -q -- "-c 'web_search=\"live\"'" "$A/codex.command.txt"
	one "hi"
	jq_edit "$A/meta.json" '.policy_snapshot.web_search_enabled = true'
	FAKE_CODEX_NO_WEB_SEARCH=1 run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed spawn_error
	st '.errors[0]' | grep -q web_search_enabled
}

@test "CODEX_HOME: auth.json and config.toml are symlinked, never copied" {
	mkdir -p "$HOME/.codex"
	echo '{"k": 1}' >"$HOME/.codex/auth.json"
	echo 'model = "m"' >"$HOME/.codex/config.toml"
	one "hi"
	run phn-spawn "$A"
	assert_success
	[ "$(readlink "$A/codex_home/auth.json")" = "$HOME/.codex/auth.json" ]
	[ "$(readlink "$A/codex_home/config.toml")" = "$HOME/.codex/config.toml" ]
	echo 'model = "n"' >"$T/other.toml"
	one "hi"
	PHN_CODEX_CONFIG=$T/other.toml run phn-spawn "$A"
	assert_success
	[ "$(readlink "$A/codex_home/config.toml")" = "$T/other.toml" ]
	one "hi"
	PHN_CODEX_CONFIG=$T/missing.toml run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed spawn_error
}

git_repo() { # DIR: a git repo with one commit
	git -C "$1" init -q
	git -C "$1" -c user.email=t@t -c user.name=t add -A
	git -C "$1" -c user.email=t@t -c user.name=t commit -qm init
}

@test "isolated workspace: one worktree per job, created once, shared by its steps" {
	mkdir -p w/sub
	echo tracked >w/sub/README
	git_repo w
	batch '[{"step_id": "s1", "prompt": "FAKE:write_file:made.txt"},
	    {"step_id": "s2", "prompt": "hi", "depends_on": ["s1"]}]' \
	    '.jobs[0].working_directory = "w/sub" |
	     .workspace_policy = {mode: "isolated"}'
	claim s1
	run phn-spawn "$A"
	assert_success
	ws=$T/runs/$B/j/_workspace
	[ -f "$ws/.git" ]
	[ "$(head -n 1 "$T/codex.log" | cut -f1)" = "$ws/sub" ]
	[ -f "$ws/sub/made.txt" ]
	[ ! -e w/sub/made.txt ]
	grep -q -- "-C $ws/sub " "$A/codex.command.txt"
	claim s2
	run phn-spawn "$A"
	assert_success
	[ "$(tail -n 1 "$T/codex.log" | cut -f1)" = "$ws/sub" ]
	[ "$(git -C w worktree list | wc -l)" -eq 2 ]
}

@test "git capture: head, status, diff and files touched" {
	echo one >w/a.txt
	git_repo w
	batch '[{"step_id": "s", "prompt": "FAKE:write_file:new.txt"}]' \
	    '.execution_policy.capture_git_artifacts = true'
	claim s
	echo two >w/a.txt
	run phn-spawn "$A"
	assert_success
	[ "$(cat "$A/git_head.txt")" = "$(git -C w rev-parse HEAD)" ]
	grep -q '^?? new.txt' "$A/git_status.txt"
	grep -q '^+two' "$A/git_diff.patch"
	jq -e '.files_touched == ["a.txt", "new.txt"]' "$A/files_touched.json"
	st '.artifacts[].path' | grep -q 'files_touched.json$'
}

@test "--no-codex: a resume chain runs without codex threads" {
	batch '[{"step_id": "s1", "prompt": "first", "fake_codex_home_marker": "m"},
	    {"step_id": "s2", "prompt": "second", "resume_from": {"step_id": "s1"}}]'
	claim s1
	run phn-spawn -D "$A"
	assert_success
	claim s2
	run phn-spawn -D "$A"
	assert_success
	assert_outcome succeeded null
	[ -f "$A/codex_home/m" ]
}

@test "retry mode resume_last_attempt: the next attempt resumes the last one's thread" {
	one "FAKE:exit:1" '{"retry_policy": {"max_attempts": 2,
	    "mode": "resume_last_attempt"}}'
	run phn-spawn "$A"
	assert_failure 1
	tid=$(st .codex_thread_id)
	[ "$tid" != null ]
	claim s
	run phn-spawn "$A"
	assert_failure 1
	grep -q " exec resume .* $tid -\$" "$A/codex.command.txt"
	[ "$(st .codex_thread_id)" = "$tid" ]
}

@test "man page EXAMPLES run" {
	if ! command -v phn-claim >/dev/null; then
		skip "phn-claim is not built"
	fi
	batch '[{"step_id": "s1", "prompt": "one"},
	    {"step_id": "s2", "prompt": "two", "depends_on": ["s1"]}]'
	run sh -c 'phn-claim --follow -j 8 | xargs -P 8 -n 1 phn-spawn'
	assert_success
	batch '[{"step_id": "s", "prompt": "dry"}]' '.batch_goal_summary += " x"'
	run --separate-stderr sh -c 'phn-spawn --no-codex --json "$(phn-claim -n 1)"'
	assert_success
	[ -n "$output" ]
	jq -e '.status == "succeeded"' <<<"$output"
	id=$B
	run sh -c 'for s in runs/'"$id"'/*/steps/*/attempts/*/state.json; do
	    jq -c "[.status, .failure_kind, .exit_code]" "$s"; done'
	assert_success
	assert_output '["succeeded",null,0]'
}
