# tests/score-helper.bash -- build batches and attempt directories by hand
# for the phn-score and operator-command suites, so that they do not
# depend on phn-claim or phn-spawn.  Load after helper.bash:
#
#   load helper; load score-helper
#
#   mk_store [JOBS_JSON [JQ_FILTER]]
#                    phn_setup and phn-init: an empty store; with
#                    JOBS_JSON, a batch in it too (mk_batch)
#   mk_batch JOBS_JSON [JQ_FILTER]
#                    ingest a Launch Table whose jobs are JOBS_JSON (the
#                    goal is filled in), edited by JQ_FILTER; sets B
#   mk_attempt JOB STEP STATUS [JQ_FILTER]
#                    a new attempt of STEP (named so that it sorts after
#                    the earlier ones) with meta.json and a state.json of
#                    STATUS (times filled in: ended_at for terminal ones),
#                    edited by JQ_FILTER; sets ATT (relative to runs/) and
#                    RUN (its run id).  In the filter, $host and $boot are
#                    this machine's, $now is the time as ISO-8601
#   iso_ago SECONDS  print the time SECONDS ago as ISO-8601
#   proc_start PID   the process's start time in clock ticks (/proc)
#   bg_lock FILE     hold an exclusive flock on FILE in the background
#                    (bg_hold of helper.bash: bg_cleanup frees it)
#   store_snapshot   print every path under runs/ with its mtime and size
#   need_codex       the real codex CLI against the mock model server
#                    (PHN_CODEX, PHN_CODEX_CONFIG, MOCK_*), or skip the test
#   mock_cleanup     stop the mock server if need_codex started one

ATT_N=0

mk_store() {
	phn_setup
	phn-init >/dev/null || return 1
	[ $# -eq 0 ] || mk_batch "$@"
}

mk_batch() {
	local jobs=$1 filter=${2:-.}
	jq -n --arg goal "$(goal_words 151)" --argjson jobs "$jobs" \
	    '{batch_goal_summary: $goal, jobs: $jobs}' | jq "$filter" >lt.json
	B=$(phn-ingest lt.json) || return 1
	export B
}

iso_ago() {
	jq -nr --argjson s "$1" '(now - $s) | strftime("%Y-%m-%dT%H:%M:%SZ")'
}

proc_start() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $20 }'
}

mk_attempt() {
	local job=$1 step=$2 status=$3 filter=${4:-.} stamp dir
	ATT_N=$((ATT_N + 1))
	stamp=$(printf '20260101T%06dZ' "$ATT_N")
	RUN=$(printf 'run_%s_%08x' "$stamp" "$ATT_N")
	ATT=$B/$job/steps/$step/attempts/${stamp}_$RUN
	dir=runs/$ATT
	mkdir -p "$dir/codex_home"
	jq -n --arg b "$B" --arg j "$job" --arg s "$step" --arg r "$RUN" \
	    --argjson n "$ATT_N" \
	    '{batch_id: $b, job_id: $j, step_id: $s, run_id: $r,
	      runner_id: "runner_test", attempt_number: $n,
	      claimed_at: (now | todate), invocation: "exec"}' \
	    >"$dir/meta.json"
	jq -n --arg st "$status" --arg r "$RUN" \
	    --arg host "$(cat /proc/sys/kernel/hostname)" \
	    --arg boot "$(cat /proc/sys/kernel/random/boot_id)" \
	    --arg now "$(iso_ago 0)" \
	    "{status: \$st, claimed_at: (now - 100 | todate),
	      runner_id: \"runner_test\"}
	     | if \$st != \"queued\" then .started_at = (now - 90 | todate)
	       else . end
	     | if (\$st | IN(\"queued\", \"running\") | not) then
	         .ended_at = (now - 10 | todate) else . end
	     | $filter" >"$dir/state.json"
}

# Hold an exclusive flock on FILE in the background until bg_cleanup;
# returns once it is held.  The holder is a sleep(1) that owns the lock
# itself, so killing it frees the lock.
bg_lock() {
	bg_hold sh -c 'exec 9>>"$1" && flock 9 && exec sleep 1000' sh "$1"
	while ! [ -e "$1" ] || flock -n "$1" true 2>/dev/null; do
		sleep 0.05
	done
}

store_snapshot() {
	find runs -printf '%p %T@ %s\n' | sort
}

need_codex() {
	codex_find
	if [ -n "$CODEX_SKIP" ]; then
		skip "$CODEX_SKIP"
	fi
	phn_mock_start "$BATS_TEST_TMPDIR/mock"
	phn_codex_config "$BATS_TEST_TMPDIR/cfg"
	mkdir -p "$BATS_TEST_TMPDIR/tmp"
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
}

mock_cleanup() {
	if [ -n "${MOCK_PID:-}" ]; then
		# shellcheck source=tests/mock/codex-env.sh
		. "$PHN_REPO/tests/mock/codex-env.sh"
		phn_mock_stop
	fi
}
