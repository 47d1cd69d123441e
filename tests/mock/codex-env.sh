# shellcheck shell=sh
# tests/mock/codex-env.sh -- source me (POSIX sh or bash) from tests and
# `make demo` to run the REAL codex CLI against the local mock model server.
#
#   phn_mock_start DIR   start tests/mock/mock_model_server.py in the
#                        background (DIR/mock.port, DIR/mock.log.jsonl,
#                        DIR/mock.stderr); wait (<= ~10 s) for the port file;
#                        export MOCK_PORT, MOCK_PID, MOCK_LOG
#   phn_mock_stop        SIGTERM the mock (SIGKILL after ~5 s), unset MOCK_PID
#   phn_codex_config DIR write DIR/config.toml (hardened: loopback only, see
#                        reference/codex-cli.md section 3) pointing at
#                        127.0.0.1:$MOCK_PORT; export PHN_CODEX_CONFIG
#
# On sourcing, PHN_CODEX is set from .ci/codex-path.sh unless already set (it
# stays unset when codex is not installed; tests then skip).
#
# Extra knobs: PHN_MOCK_SCENARIO (server-wide default scenario),
# PHN_MOCK_STREAM_IDLE_MS (default 3000), PHN_PYTHON (default python3).

if [ -n "${BASH_SOURCE:-}" ]; then
    # shellcheck disable=SC3028,SC3054 # bash only; guarded
    PHN_MOCK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
elif [ -z "${PHN_MOCK_DIR:-}" ]; then
    # Plain sh cannot tell where a sourced file lives: assume the checkout
    # root (or tests/mock) is the cwd unless PHN_MOCK_DIR was given.
    if [ -f tests/mock/mock_model_server.py ]; then
        PHN_MOCK_DIR=$(pwd)/tests/mock
    else
        PHN_MOCK_DIR=$(pwd)
    fi
fi
PHN_MOCK_REPO=$(cd "$PHN_MOCK_DIR/../.." && pwd)

if [ -z "${PHN_CODEX:-}" ]; then
    if PHN_CODEX=$(sh "$PHN_MOCK_REPO/.ci/codex-path.sh" 2>/dev/null) && [ -n "$PHN_CODEX" ]; then
        export PHN_CODEX
    else
        unset PHN_CODEX
    fi
fi

phn_mock_start() {
    _pm_dir=${1:?phn_mock_start: DIR required}
    mkdir -p "$_pm_dir" || return 1
    _pm_dir=$(cd "$_pm_dir" && pwd)
    rm -f "$_pm_dir/mock.port"
    # The mock must not inherit the caller's stdout or bats' fd 3: bats (and
    # $(...)) wait for every holder of their pipes to close them.
    "${PHN_PYTHON:-python3}" "$PHN_MOCK_DIR/mock_model_server.py" \
        --port 0 --port-file "$_pm_dir/mock.port" \
        --log "$_pm_dir/mock.log.jsonl" \
        --scenario "${PHN_MOCK_SCENARIO:-ok}" \
        </dev/null >/dev/null 2>"$_pm_dir/mock.stderr" 3>&- &
    MOCK_PID=$!
    _pm_i=0
    while [ ! -s "$_pm_dir/mock.port" ]; do
        if ! kill -0 "$MOCK_PID" 2>/dev/null; then
            echo "phn_mock_start: mock server died:" >&2
            cat "$_pm_dir/mock.stderr" >&2
            unset MOCK_PID
            return 1
        fi
        _pm_i=$((_pm_i + 1))
        if [ "$_pm_i" -gt 100 ]; then
            echo "phn_mock_start: no port file after 10 s" >&2
            kill "$MOCK_PID" 2>/dev/null
            unset MOCK_PID
            return 1
        fi
        sleep 0.1
    done
    MOCK_PORT=$(cat "$_pm_dir/mock.port")
    MOCK_LOG=$_pm_dir/mock.log.jsonl
    export MOCK_PORT MOCK_PID MOCK_LOG
}

phn_mock_stop() {
    [ -n "${MOCK_PID:-}" ] || return 0
    if kill "$MOCK_PID" 2>/dev/null; then
        _pm_i=0
        while kill -0 "$MOCK_PID" 2>/dev/null && [ "$_pm_i" -lt 50 ]; do
            sleep 0.1
            _pm_i=$((_pm_i + 1))
        done
        kill -9 "$MOCK_PID" 2>/dev/null
    fi
    wait "$MOCK_PID" 2>/dev/null
    unset MOCK_PID
    return 0
}

phn_codex_config() {
    _pc_dir=${1:?phn_codex_config: DIR required}
    if [ -z "${MOCK_PORT:-}" ]; then
        echo "phn_codex_config: MOCK_PORT is not set (run phn_mock_start first)" >&2
        return 1
    fi
    mkdir -p "$_pc_dir" || return 1
    _pc_dir=$(cd "$_pc_dir" && pwd)
    cat >"$_pc_dir/config.toml" <<EOF
# Written by tests/mock/codex-env.sh: codex against the local mock model
# server only.  No auth, no network but 127.0.0.1:$MOCK_PORT.
model = "mock-model"
model_provider = "mock"
approval_policy = "never"
sandbox_mode = "workspace-write"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false         # else: git ls-remote github.com at start-up
apps = false            # else: DNS lookups of chatgpt.com
shell_snapshot = false  # else: a bash -l snapshot at start-up

[model_providers.mock]
name = "mock"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
supports_websockets = false
stream_idle_timeout_ms = ${PHN_MOCK_STREAM_IDLE_MS:-3000}
EOF
    PHN_CODEX_CONFIG=$_pc_dir/config.toml
    export PHN_CODEX_CONFIG
}
