#!/bin/sh
# bench/spawn.sh -- what phn-spawn costs over running codex itself.
#
#   sh bench/spawn.sh [JOBS] [PARALLEL]        (default: 1000 8)
#
# One batch of JOBS single-step jobs whose codex (tests/fake-codex/
# codex-fast: three events and a Run Report, at once) exits immediately,
# run through
#     phn-claim --follow -j P | xargs -P P -n 1 phn-spawn
# against the floor: xargs -P P running the same fake codex JOBS times
# directly.  Prints both wall times, their ratio, the cost per attempt,
# and the peak RSS of phn-spawn (from GNU time on a sample of 50 more
# attempts, when /usr/bin/time is there).  Without phn-claim the attempts
# are claimed beforehand by tests/t-claim1, untimed, and it says so.
# Not run by make check.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
PATH=${PHN_BIN_DIR:-$here/cmd}:$PATH
export PATH
jobs=${1:-1000}
par=${2:-8}
fast=$here/tests/fake-codex/codex-fast
tclaim=${T_CLAIM:-$here/tests/t-claim1}
work=$(mktemp -d "${TMPDIR:-/tmp}/phn-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

now_ns() {
	date +%s%N
}

ms() { # NANOSECONDS -> milliseconds
	echo $(($1 / 1000000))
}

cd "$work"
PHN_ROOT=$work PHN_DATADIR=$here PHN_CODEX=$fast HOME=$work/home
export PHN_ROOT PHN_DATADIR PHN_CODEX HOME
unset PHN_CODEX_CONFIG CODEX_HOME
mkdir -p home w floor
phn-init >/dev/null

# A table of $1 one-step jobs; prints the batch id.
table() {
	goal=$(awk 'BEGIN { for (i = 1; i <= 151; i++) printf "w%d ", i }')
	jq -n --arg g "$goal" --argjson n "$1" --argjson c "$par" '{
		batch_goal_summary: $g, concurrency: $c,
		execution_policy: { skip_git_repo_check: true },
		jobs: [range($n) | { job_id: "job\(.)", working_directory: "w",
		    steps: [{ step_id: "s", prompt: "go" }] }]
	}' | phn-ingest --new -
}

# The floor: the same fake codex, JOBS times, P at a time.
i=0
while [ "$i" -lt "$jobs" ]; do
	printf -- '-o\n%s/floor/%d.txt\n' "$work" "$i"
	i=$((i + 1))
done >floor.args
t0=$(now_ns)
xargs -P "$par" -n 2 "$fast" exec --json <floor.args >/dev/null
t1=$(now_ns)
floor=$((t1 - t0))
[ "$(find floor -type f | wc -l)" -eq "$jobs" ]

b=$(table "$jobs")
if command -v phn-claim >/dev/null 2>&1; then
	how="phn-claim --follow -j $par | xargs -P $par -n 1 phn-spawn"
	t0=$(now_ns)
	phn-claim --follow -j "$par" -b "$b" | xargs -P "$par" -n 1 phn-spawn
	t1=$(now_ns)
else
	how="xargs -P $par -n 1 phn-spawn (no phn-claim: claimed beforehand by t-claim1, untimed)"
	i=0
	while [ "$i" -lt "$jobs" ]; do
		"$tclaim" "$b" "job$i" s
		i=$((i + 1))
	done >claims
	t0=$(now_ns)
	xargs -P "$par" -n 1 phn-spawn <claims
	t1=$(now_ns)
fi
phn=$((t1 - t0))
ok=$(find "runs/$b" -name state.json -exec jq -r .status {} + |
    grep -c '^succeeded$' || true)

rss=unknown
if [ -x /usr/bin/time ]; then
	b2=$(table 50)
	i=0
	while [ "$i" -lt 50 ]; do
		a=$("$tclaim" "$b2" "job$i" s)
		/usr/bin/time -f %M -a -o rss.txt phn-spawn "$a"
		i=$((i + 1))
	done
	rss="$(sort -n rss.txt | tail -n 1) KiB (max of 50; includes codex's sh, which phn-spawn waits for)"
fi

printf 'jobs %d, parallel %d, %d succeeded\n' "$jobs" "$par" "$ok"
printf 'floor:     xargs -P %d %s: %d ms\n' "$par" "$(basename "$fast")" \
    "$(ms "$floor")"
printf 'phn-spawn: %s: %d ms\n' "$how" "$(ms "$phn")"
awk -v a="$phn" -v b="$floor" -v n="$jobs" -v p="$par" 'BEGIN {
	printf "ratio %.2f; %.2f ms more wall time per attempt at -P %d\n",
	    a / b, (a - b) / n / 1e6, p }'
printf 'peak RSS of phn-spawn: %s\n' "$rss"
[ "$ok" -eq "$jobs" ]
