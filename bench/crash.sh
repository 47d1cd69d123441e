#!/bin/sh
# bench/crash.sh -- the crash harness: kill -9 phn-ingest, phn-claim,
# phn-spawn or a whole phn tick at a random point, then reap and continue
# until every step is done, and check the store.
#
# usage: bench/crash.sh [TRIALS [SEED]]
#   TRIALS   default $CRASH_TRIALS, else 200 (`make crash`)
#   SEED     default $CRASH_SEED, else the time; printed, and on a failure
#            the failing trial's seed is printed so it can be rerun alone:
#            bench/crash.sh 1 SEED
#
# Each trial, in a fresh store, with an instant agent (PHN_CODEX is a
# script that writes a valid Run Report and appends "ok CODEX_HOME" to a
# log, after 0.5 s) and a claim lease of 2 s:
#   1. submit a table of 3 jobs x 2 chained steps with phn-ingest, killed
#      with SIGKILL after a random delay when the target is "ingest";
#      submit again until it prints the batch id;
#   2. run phn tick -c 3 and, after a random delay, kill -9 the target:
#      "claim" (phn-claim), "spawn" (one phn-spawn), "tick" (every process
#      of the tick: the front end, the claimer, xargs, the spawners);
#   3. record every terminal attempt, then recover as phn-fsck(1) says:
#      phn-heartbeat --reap, phn-fsck --repair (temp files, a claim whose
#      claimer died between its rename and its attempt), then phn tick
#      until every step succeeded;
#   4. check: every *.json parses (jq empty), every terminal attempt
#      recorded in 3 is unchanged (no lost terminal result), every step has
#      exactly one succeeded attempt and it is its last (none ran twice to
#      success), each succeeded attempt's agent really finished (the
#      log), and phn-fsck exits 0.
# Prints one line per trial and a summary; exits 1 if a trial failed.
# Needs the built programs on PATH first (the Makefile's `crash` target
# puts cmd/ there) and jq.

set -u
trials=${1:-${CRASH_TRIALS:-200}}
seed=${2:-${CRASH_SEED:-$(date +%s)}}
repo=$(cd "$(dirname "$0")/.." && pwd)
PATH=$repo/cmd:$PATH
PHN_DATADIR=$repo
export PATH PHN_DATADIR
work=$(mktemp -d "${TMPDIR:-/tmp}/phn-crash.XXXXXX") || exit 111
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# The instant agent: a codex that answers at once.
cat >"$work/agent" <<'EOF'
#!/bin/sh
if [ "${1:-}" = --version ]; then echo 'codex-cli 0.171.0-crash'; exit 0; fi
o=
while [ $# -gt 0 ]; do [ "$1" = -o ] && o=$2; shift; done
cat >/dev/null
sleep 0.5
echo '{"type":"thread.started","thread_id":"01fa5700-0000-7000-8000-000000000000"}'
echo '{"type":"turn.started"}'
echo '{"type":"turn.completed","usage":{"input_tokens":1,"cached_input_tokens":0,"output_tokens":1,"reasoning_output_tokens":0}}'
echo '{"schema_version": "1.0.0", "status": "ok", "summary": "crash", "files_read": [], "files_written": [], "artifacts": []}' >"$o"
echo "ok $CODEX_HOME" >>"$CRASH_AGENT_LOG"
EOF
chmod +x "$work/agent"

goal=$(awk 'BEGIN { for (i = 1; i <= 151; i++) printf "%sw%d", (i > 1 ? " " : ""), i }')
jq -n --arg goal "$goal" '{batch_goal_summary: $goal, concurrency: 3,
    execution_policy: {skip_git_repo_check: true},
    jobs: [range(3) | {job_id: "j\(.)", working_directory: ".",
      steps: [{step_id: "s0", prompt: "first"},
        {step_id: "s1", prompt: "second", depends_on: ["s0"]}]}]}' \
    >"$work/lt.json" || exit 111

# A pseudo-random integer in [0, $2) from the seed $1 (its CRC).
rnd() {
	set -- "$(printf 'phn%s' "$1" | cksum)" "$2"
	echo $(( ${1%% *} % $2 ))
}

# The pids of this trial's processes named $1 (PHN_ROOT=$dir in their
# environment: other stores' are not touched).
mine() {
	for p in $(pgrep -x "$1"); do
		{ tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null |
		    grep -qx "PHN_ROOT=$dir" && echo "$p"
	done
	return 0
}

# Kill -9 this trial's processes named $1 (all, or one if $2 is "one");
# killed counts them.
kill_named() {
	for p in $(mine "$1"); do
		kill -9 "$p" 2>/dev/null && killed=$((killed + 1))
		[ "${2:-}" = one ] && return 0
	done
	return 0
}

# Kill -9 the whole tick $1: its fan-out (a session and process group of
# its own, led by the tick's child) and the tick itself.
kill_tick() {
	for c in $(pgrep -P "$1"); do
		kill -9 -- "-$c" 2>/dev/null && killed=$((killed + 1))
	done
	kill -9 "$1" 2>/dev/null && killed=$((killed + 1))
	return 0
}

# The statuses of every attempt: "DIR STATUS" lines.
statuses() {
	for s in "$dir"/runs/batch_*/*/steps/*/attempts/*/state.json; do
		[ -f "$s" ] || continue
		printf '%s %s\n' "${s%/state.json}" \
		    "$(jq -r .status "$s" 2>/dev/null)"
	done
}

steps_done() {
	[ "$(phn-score --json 2>/dev/null | jq -r '.batch.counts.succeeded // .system[0].counts.succeeded // 0' 2>/dev/null)" = 6 ]
}

fail() {
	echo "FAIL trial $t (seed $ts, target $target, delay ${delay}ms): $*"
	failed=$((failed + 1))
	ok=
}

failed=0 repaired=0 hits=0
echo "crash: $trials trials, seed $seed"
t=0
while [ "$t" -lt "$trials" ]; do
	t=$((t + 1))
	ts=$((seed + t))
	dir=$work/t$t
	mkdir -p "$dir"
	PHN_ROOT=$dir PHN_CODEX=$work/agent CRASH_AGENT_LOG=$dir/agent.log
	export PHN_ROOT PHN_CODEX CRASH_AGENT_LOG
	: >"$dir/agent.log"
	case $(rnd "$ts" 4) in
	0) target=ingest ;; 1) target=claim ;; 2) target=spawn ;; *) target=tick ;;
	esac
	delay=$(rnd "$((ts * 7 + 1))" 1000)
	ok=1 killed=0
	phn init >/dev/null 2>&1 || { fail "phn init"; continue; }
	jq '.defaults.claim_lease_seconds = 2' \
	    "$dir/runs/_system/harness_config.json" >"$dir/hc" &&
	    mv "$dir/hc" "$dir/runs/_system/harness_config.json"
	# 1. submit (killed when the target is ingest)
	if [ "$target" = ingest ]; then
		phn-ingest "$work/lt.json" >/dev/null 2>&1 &
		ip=$!
		sleep "$(awk -v d="$delay" 'BEGIN { print d / 250000 }')"
		kill -9 "$ip" 2>/dev/null && killed=1
		wait "$ip" 2>/dev/null
	fi
	n=0
	until B=$(phn-ingest "$work/lt.json" 2>"$dir/ingest.err"); do
		n=$((n + 1))
		[ "$n" -lt 5 ] || break
	done
	[ -n "$B" ] || { fail "phn-ingest: $(cat "$dir/ingest.err")"; continue; }
	# 2. a tick, killed
	phn tick -c 3 >/dev/null 2>&1 &
	tp=$!
	sleep "$(awk -v d="$delay" 'BEGIN { print d / 1000 }')"
	case $target in
	claim) kill_named phn-claim ;;
	spawn) kill_named phn-spawn one ;;
	tick) kill_tick "$tp" ;;
	esac
	wait "$tp" 2>/dev/null
	# whatever the kill left running ends now (a crash takes it all)
	for n in phn-claim phn-spawn xargs; do kill_named "$n" >/dev/null; done
	# 3. recover
	statuses | awk '$2 != "queued" && $2 != "running"' >"$dir/terminal"
	phn-heartbeat --reap >/dev/null 2>&1
	phn-fsck --repair >"$dir/repair.out" 2>&1
	[ -s "$dir/repair.out" ] && repaired=$((repaired + 1))
	n=0
	while ! steps_done; do
		n=$((n + 1))
		[ "$n" -le 8 ] || break
		phn-heartbeat --reap >/dev/null 2>&1
		before=$(statuses | sort | cksum)
		phn tick -c 3 >/dev/null 2>"$dir/tick.err"
		# a queued attempt whose claimer died waits out its 2 s lease
		[ "$(statuses | sort | cksum)" != "$before" ] || sleep 1
	done
	# 4. check
	steps_done || fail "not every step succeeded after $n ticks: $(phn-score --json 2>/dev/null | jq -c .batch.counts)"
	bad=$(find "$dir/runs" -name '*.json' -type f -exec sh -c \
	    'for f do jq empty "$f" >/dev/null 2>&1 || echo "$f"; done' sh {} +)
	[ -z "$bad" ] || fail "torn JSON: $bad"
	statuses >"$dir/after"
	while read -r d s; do
		grep -qx "$d $s" "$dir/after" ||
		    fail "terminal result lost: $d was $s, now $(grep "^$d " "$dir/after")"
	done <"$dir/terminal"
	for sd in "$dir"/runs/"$B"/*/steps/*; do
		[ -d "$sd/attempts" ] || continue
		last=$(ls "$sd/attempts" | tail -1)
		succ=$(grep -c "^$sd/attempts/[^ ]* succeeded$" "$dir/after")
		[ "$succ" -eq 1 ] || fail "$sd: $succ succeeded attempts"
		[ "$(jq -r .status "$sd/attempts/$last/state.json" 2>/dev/null)" = succeeded ] ||
		    fail "$sd: its last attempt $last did not succeed"
	done
	grep ' succeeded$' "$dir/after" | while read -r d s; do
		grep -qx "ok $d/codex_home" "$dir/agent.log" ||
		    echo "$d"
	done >"$dir/unran"
	[ ! -s "$dir/unran" ] || fail "succeeded without its agent finishing: $(cat "$dir/unran")"
	fo=$(phn-fsck 2>&1) || fail "phn-fsck: $fo"
	if [ -n "$ok" ]; then
		echo "ok trial $t (seed $ts, target $target, delay ${delay}ms, killed $killed)"
		hits=$((hits + (killed > 0)))
		rm -rf "$dir"
	else
		cp -r "$dir" "${TMPDIR:-/tmp}/phn-crash-failed-$ts" 2>/dev/null &&
		    echo "  store kept in ${TMPDIR:-/tmp}/phn-crash-failed-$ts"
		rm -rf "$dir"
	fi
done
echo "crash: $trials trials, $failed failed, $hits killed something, phn-fsck --repair changed something in $repaired (seed $seed)"
[ "$failed" -eq 0 ]
