# tests/helper.bash -- shared setup for the phn bats suites.
#
# Load it from a .bats file with `load helper` (it requires bats 1.5.0,
# for `run -N`), then call phn_setup from setup().  What it gives:
#
#   PATH             $PHN_BIN_DIR (default: the build's cmd/) comes first
#   PHN_REPO         the source tree (absolute)
#   phn_setup        fresh empty dir under $BATS_TEST_TMPDIR, cd into it,
#                    PHN_ROOT=that dir, PHN_DATADIR=$PHN_REPO (so
#                    run_report.schema.json is found); sets $T to the dir
#   goal_words N     print N words on one line (for batch_goal_summary)
#   write_lt FILE    a minimal valid Launch Table: a 151-word goal, one job
#                    (working_directory "."), one step with a prompt; edit
#                    it afterwards with jq (see jq_edit)
#   jq_edit FILE [JQ-OPTION...] FILTER
#                    rewrite FILE in place through jq
#   mklt FILE JQ-OBJECT
#                    a Launch Table: a 151-word goal plus JQ-OBJECT (jq
#                    syntax, so keys need no quotes)
#   T_FINISH, T_CLAIM    the test programs tests/t-finish, tests/t-claim1
#   finish ARG...    run t-finish: end claimed attempts as an ender does
#   bg CMD...        run CMD in the background (stdin /dev/null, bats'
#                    fd 3 closed; redirect its output at the call); its
#                    pid goes to BG_PID and BG_PIDS, killed by bg_cleanup
#   bg_hold CMD...   bg with stdout and stderr to /dev/null
#   bg_cleanup       kill -9 and reap what bg started (call it from
#                    teardown, so a failed check never leaves one behind)
#   wait_for CMD...  retry CMD every 0.1 s, up to $WAIT_TRIES tries
#                    (default 200: ~20 s), until it succeeds; else fail
#   codex_find       the real codex CLI: PHN_CODEX from $PHN_CODEX_E2E,
#                    else .ci/codex-path.sh (a general PHN_CODEX is
#                    ignored: other suites point it at fakes); CODEX_SKIP
#                    says why codex cannot run, empty when it can
#   codex_setup_file / codex_teardown_file
#                    setup_file and teardown_file of the real-codex
#                    suites: codex_find, one mock model server and its
#                    codex config for the file (tests/mock/codex-env.sh)
#   mock_requests THREAD_ID
#                    the mock's log lines for that thread, one JSON each
#   assert_json_lines    every line of $output parses as JSON (jq -e .)
#   assert_stderr_prefix PROG
#                    every line of $stderr (run --separate-stderr) starts
#                    with "PROG: "
#   assert_stderr_line [--partial] TEXT
#                    some line of $stderr equals (contains) TEXT
#   assert_usage_error PROG
#                    after run -100 --separate-stderr: nothing on stdout,
#                    and stderr says why, in lines "PROG: ..." or a usage
#                    ("usage: PROG ...", continued on indented lines)

bats_require_minimum_version 1.5.0

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

PHN_REPO=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
PATH="${PHN_BIN_DIR:-$PHN_REPO/cmd}:$PATH"
export PATH PHN_REPO
T_FINISH=${T_FINISH:-$PHN_REPO/tests/t-finish}
T_CLAIM=${T_CLAIM:-$PHN_REPO/tests/t-claim1}
BG_PIDS=

phn_setup() {
	T=$(mktemp -d "$BATS_TEST_TMPDIR/t.XXXXXX")
	cd "$T" || return 1
	T=$(pwd -P)
	PHN_ROOT=$T
	PHN_DATADIR=$PHN_REPO
	export T PHN_ROOT PHN_DATADIR
}

goal_words() {
	awk -v n="$1" 'BEGIN { for (i = 1; i <= n; i++)
	    printf "%sw%d", (i > 1 ? " " : ""), i; print "" }'
}

write_lt() {
	jq -n --arg goal "$(goal_words 151)" '{
		batch_goal_summary: $goal,
		jobs: [{ working_directory: ".",
		    steps: [{ prompt: "Say hello." }] }]
	}' >"$1"
}

mklt() {
	jq -n --arg goal "$(goal_words 151)" \
	    "{batch_goal_summary: \$goal} + ($2)" >"$1"
}

finish() {
	"$T_FINISH" "$@"
}

bg() {
	"$@" </dev/null 3>&- &
	BG_PID=$!
	BG_PIDS="$BG_PIDS $BG_PID"
}

bg_hold() {
	bg "$@" >/dev/null 2>&1
}

bg_cleanup() {
	local p
	for p in $BG_PIDS; do
		{ kill -9 "$p" && wait "$p"; } 2>/dev/null || :
	done
	BG_PIDS=
}

wait_for() {
	local _
	for _ in $(seq "${WAIT_TRIES:-200}"); do
		"$@" && return 0
		sleep 0.1
	done
	fail "timed out waiting for: $*"
}

codex_find() {
	local v
	unset PHN_CODEX
	if [ -n "${PHN_CODEX_E2E:-}" ]; then
		PHN_CODEX=$PHN_CODEX_E2E
	fi
	# shellcheck source=tests/mock/codex-env.sh
	. "$PHN_REPO/tests/mock/codex-env.sh"
	PHN_CODEX=${PHN_CODEX:-}
	CODEX_SKIP=
	if [ -z "$PHN_CODEX" ] || [ ! -x "$PHN_CODEX" ]; then
		CODEX_SKIP="codex CLI not installed (.ci/codex-path.sh found nothing; run 'make deps')"
	else
		v=$(CODEX_HOME="${BATS_TEST_TMPDIR:-$BATS_FILE_TMPDIR}/version_home" \
		    "$PHN_CODEX" --version 2>/dev/null </dev/null) || v=
		case $v in
		"codex-cli "*) ;;
		*) CODEX_SKIP="codex at $PHN_CODEX does not run (--version printed: $v)" ;;
		esac
	fi
	export PHN_CODEX CODEX_SKIP
}

codex_setup_file() {
	codex_find
	phn_mock_start "$BATS_FILE_TMPDIR/mock"
	phn_codex_config "$BATS_FILE_TMPDIR/cfg"
	export MOCK_PORT MOCK_PID MOCK_LOG PHN_CODEX_CONFIG
}

mock_requests() {
	jq -c --arg t "$1" 'select(.thread_id == $t)' "$MOCK_LOG"
}

codex_teardown_file() {
	# shellcheck source=tests/mock/codex-env.sh
	. "$PHN_REPO/tests/mock/codex-env.sh"
	phn_mock_stop
}

jq_edit() {
	local f=$1 tmp
	shift
	tmp=$(mktemp "$f.XXXXXX") || return 1
	jq "$@" "$f" >"$tmp" && mv "$tmp" "$f"
}

assert_json_lines() {
	local line
	[ -z "$output" ] && return 0
	while IFS= read -r line; do
		printf '%s\n' "$line" | jq -e . >/dev/null 2>&1 ||
		    fail "stdout line is not JSON: $line"
	done <<<"$output"
}

assert_stderr_prefix() {
	local line
	while IFS= read -r line; do
		[ -z "$line" ] && continue
		case $line in
		"$1: "*) ;;
		*) fail "stderr line does not start with '$1: ': $line" ;;
		esac
	done <<<"$stderr"
}

assert_usage_error() {
	local line
	[ -z "$output" ] || fail "stdout is not empty: $output"
	[ -n "$stderr" ] || fail "nothing on stderr"
	while IFS= read -r line; do
		case $line in
		"$1: "* | "usage: $1"* | " "*) ;;
		*) fail "stderr line is neither '$1: ' nor a usage: $line" ;;
		esac
	done <<<"$stderr"
}

assert_stderr_line() {
	local partial= how='equal to' line
	if [ "$1" = --partial ]; then
		partial=1
		how=containing
		shift
	fi
	while IFS= read -r line; do
		if [ -n "$partial" ]; then
			case $line in *"$1"*) return 0 ;; esac
		elif [ "$line" = "$1" ]; then
			return 0
		fi
	done <<<"$stderr"
	printf 'no stderr line %s: %s\nstderr:\n%s\n' \
	    "$how" "$1" "$stderr" |
	    fail
}
