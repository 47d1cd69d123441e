#!/bin/sh
# examples/demo.sh -- run the example Launch Table end to end (`make demo`).
#
# A scratch store (PHN_DEMO_DIR, default a new /tmp/phn-demo.XXXXXX, kept
# afterwards), examples/launch_table.example.json ingested (its job works in
# examples/workdir), then every step run by the REAL Codex CLI against the
# project's mock model server on 127.0.0.1 (tests/mock/): step2 resumes
# step1's Codex session.  Claims come from
#     phn-claim --follow -j 2 | xargs -P 2 -n 1 phn-spawn
# Prints each attempt's outcome and final Run Report.  Only when codex is not
# installed (`make deps` could not) does it fall back to a dry run
# (phn-spawn --no-codex), and it says so.  Exit status: 0 if every step
# succeeded.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
PATH=${PHN_BIN_DIR:-$here/cmd}:$PATH
export PATH
demo=${PHN_DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/phn-demo.XXXXXX")}
mkdir -p "$demo"
demo=$(cd "$demo" && pwd)

# The user's own codex login and config stay out of it: an empty CODEX_HOME
# to link from, and PHN_CODEX_CONFIG pointing at the mock.
PHN_ROOT=$demo
PHN_DATADIR=$here
CODEX_HOME=$demo/no-user-codex-home
export PHN_ROOT PHN_DATADIR CODEX_HOME
mkdir -p "$CODEX_HOME"

nocodex=
if PHN_CODEX=$(sh "$here/.ci/codex-path.sh"); then
	export PHN_CODEX
	# sh cannot tell a sourced file where it lives: say it.
	PHN_MOCK_DIR=$here/tests/mock
	export PHN_MOCK_DIR
	# shellcheck source=tests/mock/codex-env.sh disable=SC1091
	. "$here/tests/mock/codex-env.sh"
	trap 'phn_mock_stop || :' EXIT
	trap 'exit 130' INT TERM
	phn_mock_start "$demo/mock"
	phn_codex_config "$demo/mock"
	echo "demo: real codex $("$PHN_CODEX" --version 2>/dev/null </dev/null | head -n 1) ($PHN_CODEX)"
	echo "demo: mock model server on 127.0.0.1:$MOCK_PORT"
else
	nocodex=--no-codex
	echo "demo: the Codex CLI is not installed (make deps could not install it):"
	echo "demo: falling back to a dry run, phn-spawn --no-codex"
fi

echo "demo: store $demo"
phn-init >/dev/null
batch=$(phn-ingest "$here/examples/launch_table.example.json")
echo "demo: batch $batch"

if command -v phn-claim >/dev/null 2>&1; then
	echo "demo: phn-claim --follow -j 2 | xargs -P 2 -n 1 phn-spawn $nocodex"
	phn-claim --follow -j 2 -b "$batch" |
	    xargs -P 2 -n 1 phn-spawn $nocodex || true
else
	# No phn-claim yet: claim each step with the test helper, in order.
	make -s -C "$here" tests/t-claim1 >/dev/null
	echo "demo: (no phn-claim: claiming with tests/t-claim1)"
	for step in step1 step2; do
		a=$("$here/tests/t-claim1" "$batch" inventory "$step")
		phn-spawn $nocodex "$a" || true
	done
fi

rc=0
for st in "$demo/runs/$batch"/*/steps/*/attempts/*/state.json; do
	a=$(dirname "$st")
	rel=${a#"$demo/runs/"}
	echo
	jq -r --arg a "$rel" '"\($a)\n  status \(.status)" +
	    (if .failure_kind then " (\(.failure_kind))" else "" end) +
	    "  exit \(.exit_code)  thread \(.codex_thread_id)" +
	    "  tokens \(.usage.input_tokens // 0) in / \(.usage.output_tokens // 0) out"' \
	    "$st"
	if [ -f "$a/final.json" ]; then
		jq . "$a/final.json" | sed 's/^/  /'
	else
		jq -r '.errors[]? | "  error: " + .' "$st"
	fi
	[ "$(jq -r .status "$st")" = succeeded ] || rc=1
done
echo
echo "demo: the scoreboard (phn-score --root $demo):"
phn-score --root "$demo" || true
echo
if [ -n "$nocodex" ]; then
	echo "demo: done (dry run: codex was not installed)"
else
	echo "demo: done; step2 resumed thread $(jq -r .codex_thread_id \
	    "$demo/runs/$batch"/inventory/steps/step1/attempts/*/state.json)"
fi
exit "$rc"
