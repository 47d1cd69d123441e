#!/usr/bin/env bats
# tests/80-codex-mock.bats -- drive the REAL Codex CLI (npm @openai/codex
# 0.171.0, cached by .ci/deps.sh, found by .ci/codex-path.sh) against the
# local mock Responses API (tests/mock/mock_model_server.py).  No phn code is
# involved: these tests pin down the codex behaviour phn-spawn relies on.
#
# One mock serves the whole file (setup_file); the scenario of each request is
# chosen by a MOCK:<name>[:<arg>] marker in the prompt.  Each test gets a fresh
# CODEX_HOME (config.toml -> $PHN_CODEX_CONFIG symlink, as phn-spawn does), a
# working dir and a copy of a strict Run Report schema.
#
# Sandbox: `-s workspace-write` works in this container (Debian 12, root):
# codex's bundled bubblewrap sets up the sandbox (no bwrap on PATH needed), a
# write inside the workdir succeeds and, with `-s read-only`, the same write
# fails with "Read-only file system".  So no test needs
# --dangerously-bypass-approvals-and-sandbox.
#
# Every codex run is wrapped in timeout(1) so that no test can hang.
# If codex is not installed, every codex test skips with a message.

load helper

CODEX_TIMEOUT=30
ROOT=$PHN_REPO

setup_file() {
    codex_setup_file
}

teardown_file() {
    codex_teardown_file
}

setup() {
    J=$BATS_TEST_TMPDIR/job
    H=$J/codex_home
    W=$J/work
    S=$J/run_report.schema.json
    # TMPDIR outside CODEX_HOME: else codex warns on stderr that it will not
    # create PATH aliases under a temporary dir (harmless, but noise).
    mkdir -p "$H" "$W" "$J/tmp"
    ln -s "$PHN_CODEX_CONFIG" "$H/config.toml"
    cp "$ROOT/tests/mock/run_report.schema.json" "$S"
}

need_codex() {
    if [ -n "$CODEX_SKIP" ]; then
        skip "$CODEX_SKIP"
    fi
}

# codex_exec PROMPT [EXTRA_ARGS...]: a fresh `codex exec` in $W, prompt on
# stdin; stdout (JSONL) in $output, stderr in $stderr, $J/final.txt.
codex_exec() {
    printf '%s\n' "$1" >"$J/prompt.txt"
    shift
    cd "$W" || return 1
    run --separate-stderr env CODEX_HOME="$H" TMPDIR="$J/tmp" \
        timeout "$CODEX_TIMEOUT" "$PHN_CODEX" exec --json --skip-git-repo-check \
        --output-schema "$S" -o "$J/final.txt" "$@" - <"$J/prompt.txt"
    printf '%s\n' "$output" >"$J/events.jsonl"
}

# events_has JQ_FILTER: true if some event matches; events_lack: if none
# does.  (A bare `! cmd` would not fail a bats test: errexit ignores it.)
events_has() {
    jq -e -s "any(.[]; $1)" "$J/events.jsonl" >/dev/null
}
events_lack() {
    jq -e -s "all(.[]; ($1) | not)" "$J/events.jsonl" >/dev/null
}

thread_id() {
    jq -r 'select(.type == "thread.started") | .thread_id' "$J/events.jsonl" | head -n 1
}

assert_valid_report() { # FILE STATUS
    run jq -e --arg st "$2" '
        (keys == ["artifacts","files_read","files_written","schema_version","status","summary"])
        and .schema_version == "1.0.0" and .status == $st
        and (.summary | type == "string")' "$1"
    assert_success
}

@test "mock: GET and unknown paths get 404 and are logged" {
    run python3 -c '
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen("http://127.0.0.1:%s/v1/models" % sys.argv[1], timeout=5)
except urllib.error.HTTPError as e:
    print(e.code); sys.exit(0)
sys.exit("expected an HTTP error")' "$MOCK_PORT"
    assert_success
    assert_output 404
    run jq -e -s 'any(.[]; .method == "GET" and .path == "/v1/models" and .status == 404)' "$MOCK_LOG"
    assert_success
}

@test "codex exec: ok run emits thread.started/turn.completed and a valid report in -o" {
    need_codex
    codex_exec "Say hello. MOCK:ok"
    assert_success
    events_has '.type == "thread.started"'
    events_has '.type == "turn.completed" and (.usage.input_tokens > 0)'
    events_lack '.type == "turn.failed"'
    assert_valid_report "$J/final.txt" ok
    run jq -r .summary "$J/final.txt"
    assert_output "mock ok: 0 prior user message(s) in input"

    # What the mock received: our schema as strict structured output, the
    # prompt as the last user message, no Authorization header, cwd = $W.
    tid=$(thread_id)
    [ -n "$tid" ]
    req=$(mock_requests "$tid" | tail -n 1)
    [ -n "$req" ]
    jq -e --slurpfile s "$S" '
        .path == "/v1/responses" and .auth_present == false
        and .body.stream == true
        and .body.text.format.type == "json_schema"
        and .body.text.format.strict == true
        and .body.text.format.schema == $s[0]
        and (.last_prompt | startswith("Say hello. MOCK:ok"))' <<<"$req"
    jq -e --arg w "$W" 'any(.body.input[]; .role == "user"
        and (.content[0].text | contains("<cwd>" + $w + "</cwd>")))' <<<"$req"
    # The session was recorded under CODEX_HOME, named by the thread id.
    run find "$H/sessions" -name "rollout-*-$tid.jsonl"
    assert_success
    assert_line --partial "$tid"
}

@test "codex exec resume <thread_id>: same thread, history sent to the model" {
    need_codex
    codex_exec "First turn. MOCK:ok"
    assert_success
    tid=$(thread_id)
    [ -n "$tid" ]

    # resume has no -C/-s: run it with the workdir as cwd.  It needs
    # --skip-git-repo-check too, like exec.
    printf 'Second turn. MOCK:ok\n' >"$J/prompt2.txt"
    cd "$W"
    run --separate-stderr env CODEX_HOME="$H" TMPDIR="$J/tmp" \
        timeout "$CODEX_TIMEOUT" "$PHN_CODEX" exec resume --json \
        --skip-git-repo-check --output-schema "$S" -o "$J/final2.txt" \
        "$tid" - <"$J/prompt2.txt"
    assert_success
    printf '%s\n' "$output" >"$J/events.jsonl"
    [ "$(thread_id)" = "$tid" ]
    events_has '.type == "turn.completed"'
    assert_valid_report "$J/final2.txt" ok
    run jq -r .summary "$J/final2.txt"
    assert_output "mock ok: 1 prior user message(s) in input"

    # The mock got the whole history: first prompt, first answer, new prompt.
    req=$(mock_requests "$tid" | tail -n 1)
    jq -e '.prior_prompts == 1
        and (.last_prompt | startswith("Second turn."))
        and any(.body.input[]; .role == "assistant")
        and any(.body.input[]; .role == "user"
                and (.content[0].text | startswith("First turn.")))' <<<"$req"
    # Resumed turns are appended to the same rollout file.
    run find "$H/sessions" -name "rollout-*.jsonl"
    assert_success
    [ "${#lines[@]}" -eq 1 ]
}

@test "codex exec: HTTP 500 -> exit 1, error + turn.failed, empty -o file" {
    need_codex
    codex_exec "MOCK:http500"
    assert_failure 1
    events_has '.type == "turn.failed"'
    events_has '.type == "error"'
    events_lack '.type == "turn.completed"'
    [ -f "$J/final.txt" ]
    [ ! -s "$J/final.txt" ]
}

@test "codex exec: HTTP 429 -> exit 1 at once, no retry" {
    need_codex
    codex_exec "MOCK:http429"
    assert_failure 1
    events_has '.type == "turn.failed" and (.error.message | test("429"))'
    tid=$(thread_id)
    [ "$(mock_requests "$tid" | wc -l)" -eq 1 ]
}

@test "codex exec: stream dropped before response.completed -> exit 1" {
    need_codex
    codex_exec "MOCK:drop"
    assert_failure 1
    events_has '.type == "turn.failed" and (.error.message | test("stream closed before response.completed"))'
    events_lack '.type == "item.completed" and .item.type == "agent_message"'
    [ ! -s "$J/final.txt" ]
}

@test "codex exec: non-JSON final message still exits 0 (codex does not enforce --output-schema)" {
    need_codex
    codex_exec "MOCK:not_json"
    assert_success
    events_has '.type == "turn.completed"'
    [ -s "$J/final.txt" ]
    run jq -e . "$J/final.txt"
    assert_failure
    run cat "$J/final.txt"
    assert_output "This is plain text, not a Run Report."
}

@test "codex exec: schema-invalid JSON and a 'failed' report both exit 0" {
    need_codex
    codex_exec "MOCK:schema_invalid"
    assert_success
    run jq -e 'has("status") and (has("files_written") | not)' "$J/final.txt"
    assert_success

    codex_exec "MOCK:report_failed"
    assert_success
    events_has '.type == "turn.completed"'
    assert_valid_report "$J/final.txt" failed
}

@test "codex exec -s workspace-write: tool call (exec_command) writes a file in the workdir" {
    need_codex
    codex_exec "Write the file. MOCK:write_file:out.txt" -s workspace-write
    assert_success
    [ -f "$W/out.txt" ]
    run cat "$W/out.txt"
    assert_output "written by mock"
    events_has '.type == "item.completed" and .item.type == "command_execution"
                and .item.exit_code == 0 and (.item.command | contains("out.txt"))'
    assert_valid_report "$J/final.txt" ok
    run jq -e '.files_written == ["out.txt"]' "$J/final.txt"
    assert_success
    # Two requests: the tool call, then the turn with the tool output.
    tid=$(thread_id)
    [ "$(mock_requests "$tid" | wc -l)" -eq 2 ]
    mock_requests "$tid" | tail -n 1 | jq -e '.tool_outputs | length == 1'
}

@test "codex exec -s read-only: the sandbox blocks the same write" {
    need_codex
    codex_exec "Write the file. MOCK:write_file:out.txt" -s read-only
    assert_success
    [ ! -e "$W/out.txt" ]
    assert_valid_report "$J/final.txt" failed
    run jq -r .summary "$J/final.txt"
    assert_output --partial "Read-only file system"
}

@test "codex exec -s workspace-write: apply_patch shows up as a file_change item" {
    need_codex
    codex_exec "Patch. MOCK:patch_file:patched.txt" -s workspace-write
    assert_success
    run cat "$W/patched.txt"
    assert_output "patched by mock"
    events_has '.type == "item.completed" and .item.type == "file_change"
                and .item.status == "completed"'
    run jq -e '.files_written == ["patched.txt"]' "$J/final.txt"
    assert_success
}

@test "codex exec: SSE silent after headers -> fails by itself after stream_idle_timeout_ms" {
    need_codex
    start=$SECONDS
    codex_exec "MOCK:hang_sse"
    assert_failure 1
    events_has '.type == "turn.failed" and (.error.message | test("idle timeout"))'
    # config: stream_idle_timeout_ms = 3000
    [ $((SECONDS - start)) -le 15 ]
}

@test "codex exec: model never answers -> only timeout(1) ends it, nothing left running" {
    need_codex
    # No status line at all: stream_idle_timeout_ms does not cover this wait,
    # so codex would wait for as long as the mock holds the request.
    printf 'MOCK:hang\n' >"$J/prompt.txt"
    cd "$W"
    start=$SECONDS
    run --separate-stderr env CODEX_HOME="$H" TMPDIR="$J/tmp" \
        timeout -k 2 4 "$PHN_CODEX" exec --json --skip-git-repo-check \
        --output-schema "$S" -o "$J/final.txt" - <"$J/prompt.txt"
    assert_failure 124
    [ $((SECONDS - start)) -le 10 ]
    printf '%s\n' "$output" >"$J/events.jsonl"
    events_has '.type == "turn.started"'
    events_lack '.type == "turn.completed" or .type == "turn.failed"'
    # No codex process survives (the native binary dies on SIGTERM)...
    run pgrep -f -- "$J/final.txt"
    assert_failure
    # ...and the mock noticed that the client went away and freed the request.
    tid=$(thread_id)
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        mock_requests "$tid" | grep -q hang_end && break
        sleep 0.3
    done
    mock_requests "$tid" | jq -e '.hang_end == "client_gone"'
}

@test "mock: one server serves concurrent codex runs, each with its own scenario" {
    need_codex
    cd "$W"
    pids=
    for sc in ok not_json report_failed http500; do
        d=$J/par-$sc
        mkdir -p "$d/home" "$d/tmp"
        ln -s "$PHN_CODEX_CONFIG" "$d/home/config.toml"
        (
            cd "$W" || exit 1
            rc=0
            printf 'Parallel %s. MOCK:%s\n' "$sc" "$sc" |
                CODEX_HOME=$d/home TMPDIR=$d/tmp timeout "$CODEX_TIMEOUT" \
                "$PHN_CODEX" exec --json --skip-git-repo-check --output-schema "$S" \
                -o "$d/final.txt" - >"$d/events.jsonl" 2>"$d/stderr" || rc=$?
            echo "$rc" >"$d/rc"
        ) &
        pids="$pids $!"
    done
    for p in $pids; do wait "$p"; done
    [ "$(cat "$J/par-ok/rc")" -eq 0 ]
    [ "$(cat "$J/par-not_json/rc")" -eq 0 ]
    [ "$(cat "$J/par-report_failed/rc")" -eq 0 ]
    [ "$(cat "$J/par-http500/rc")" -eq 1 ]
    assert_valid_report "$J/par-ok/final.txt" ok
    assert_valid_report "$J/par-report_failed/final.txt" failed
    run jq -e . "$J/par-not_json/final.txt"
    assert_failure
    [ ! -s "$J/par-http500/final.txt" ]
    # four different threads
    run sh -c "cat '$J'/par-*/events.jsonl | jq -r 'select(.type==\"thread.started\").thread_id' | sort -u | wc -l"
    assert_output 4
}
