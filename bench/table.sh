#!/bin/sh
# bench/table.sh -- the performance goals of phn in one table.
#
#   sh bench/table.sh            (or: make bench)
#   BENCH_SIZES="1000 10000" sh bench/table.sh
#
# For each size N of BENCH_SIZES (default "1000 10000 100000"), a store
# with one batch of N one-step jobs, and in it:
#   ingest     wall time of phn-ingest of the table (goal: 100k under 5 s)
#   sys/att    fsync-class calls (fsync, fdatasync, syncfs) and opens
#              (open, openat, openat2) per attempt, from strace -f -c of
#                phn-claim --follow -j 8 -n 100 | xargs -P 8 phn-spawn
#              (--no-codex) on the first 100 steps of the store
#              (goal: at most 4 syncs, about 30 opens)
#   claim      CPU time (user + system, which other load on the machine
#              disturbs less than wall time) per attempt of
#                phn-claim --follow -j 64 | t-finish -
#              over the rest of the store (tests/t-finish ends each
#              attempt as phn-spawn would), and its ratio to the first
#              size's (goal: 100k within 1.2x of 1k)
#   full_s     wall time of phn-score --json on the finished store,
#              computed from every attempt
#   score_s    the same after phn-score --write (as phn tick ends), which
#              keeps the row of the batch at rest, best of three (goal:
#              under 0.1 s at 10k steps, 1 s at 100k)
# and, for N up to BENCH_DISPATCH_MAX (default 1000), a second store of N
# jobs whose agent (tests/fake-codex/codex-fast) exits at once, dispatched
#   phn        phn-claim --follow -j 8 | xargs -P 8 -n 1 phn-spawn
#   xargs      xargs -P 8 running the agent directly (the floor)
#   parallel   GNU parallel -j 8 --joblog running the agent directly
# with the ratios phn/xargs (goal: 1.5 or less) and phn/parallel (goal:
# under 1).  Every figure is measured in the same run; the machine's other
# load moves them, the ratios less.  Run the 100k size sparingly (it
# takes minutes and about 1 GB of disk).  The store is on tmpfs
# (/dev/shm) when there is one, so that the figures measure phn rather
# than the disk; set BENCH_DIR for a disk.  Needs jq, strace, GNU
# parallel, and a build: make all tests/t-finish.  Not run by make check.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
PATH=$here/cmd:$here/tests:$PATH
PHN_DATADIR=$here
export PATH PHN_DATADIR
sizes=${BENCH_SIZES:-1000 10000 100000}
dmax=${BENCH_DISPATCH_MAX:-1000}
par=8
fast=$here/tests/fake-codex/codex-fast
if [ -z "${BENCH_DIR:-}" ]; then
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then
		BENCH_DIR=/dev/shm
	else
		BENCH_DIR=${TMPDIR:-/tmp}
	fi
fi
timer=/usr/bin/time	# GNU time, for the CPU time of a pipeline
[ -x "$timer" ] || {
	echo "bench/table.sh: GNU time (/usr/bin/time) not found" >&2
	exit 100
}
for p in phn-init phn-ingest phn-claim phn-spawn phn-score t-finish jq \
    strace parallel; do
	command -v "$p" >/dev/null 2>&1 || {
		echo "bench/table.sh: $p not found; run: make all tests/t-finish" >&2
		exit 100
	}
done
work=$(mktemp -d "$BENCH_DIR/phn-table.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
HOME=$work/home PHN_CODEX=$fast
export HOME PHN_CODEX
unset PHN_CODEX_CONFIG CODEX_HOME
mkdir -p "$work/home"

now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{ printf "%.3f", $1 - $2 }'; }

# table N: N one-step jobs.
table() {
	jq -n --argjson n "$1" --arg goal "$(awk 'BEGIN {
	    for (i = 1; i <= 151; i++) printf "w%d ", i }')" '{
	    batch_goal_summary: $goal, concurrency: 1000000,
	    execution_policy: {skip_git_repo_check: true},
	    jobs: [range($n) as $j | {job_id: "j\($j)", working_directory: "w",
		steps: [{step_id: "s", prompt: "go"}]}]}'
}

# store DIR N: a new store with the table of N jobs, not yet ingested.
store() {
	mkdir -p "$1/w"
	PHN_ROOT=$1
	export PHN_ROOT
	phn-init >/dev/null
	# more jobs than limits.max_jobs_per_batch (10000) allows by default
	c=$1/runs/_system/harness_config.json
	jq --argjson n "$2" '.limits.max_jobs_per_batch |=
	    (if . < $n then $n else . end)' "$c" >"$c.new"
	mv "$c.new" "$c"
	table "$2" >"$1/lt.json"
}

# calls FILE NAME...: the calls strace -c counted of those system calls.
calls() {
	f=$1
	shift
	for n; do
		awk -v n="$n" '$NF == n { print $4 }' "$f"
	done | awk '{ s += $1 } END { print s + 0 }'
}

echo "store: $BENCH_DIR ($(stat -f -c %T "$BENCH_DIR" 2>/dev/null || echo ?)), $(nproc) cores, parallel $par"
printf '%7s %8s %6s %6s %9s %6s %7s %8s | %7s %7s %7s %6s %6s\n' steps \
    ingest_s sync/a open/a claim_cpu ratio full_s score_s phn_s xargs_s \
    par_s /xargs /par
first=
for n in $sizes; do
	root=$work/s$n
	store "$root" "$n"
	t0=$(now)
	b=$(phn-ingest "$root/lt.json")
	ing=$(since "$t0")
	# the system calls of the claim -> run -> end path, per attempt
	# (the batch's schedule, built once on first sight, built before)
	phn-claim --rescan -b "$b" >/dev/null
	k=100
	[ "$n" -ge "$k" ] || k=$n
	strace -f -c -o "$root/strace" sh -c 'phn-claim --follow -j 8 -0 \
	    -n "$1" | xargs -0 -r -P 8 -n 1 phn-spawn --no-codex' sh "$k" \
	    >/dev/null
	sy=$(calls "$root/strace" fsync fdatasync syncfs)
	op=$(calls "$root/strace" open openat openat2)
	sy=$(echo "$sy $k" | awk '{ printf "%.1f", $1 / $2 }')
	op=$(echo "$op $k" | awk '{ printf "%.0f", $1 / $2 }')
	# the claim cost over the rest
	rest=$((n - k))
	cl=-
	ratio=-
	if [ "$rest" -gt 0 ]; then
		"$timer" -o "$root/cpu" -f '%U %S' sh -c \
		    'phn-claim --follow -j 64 -b "$1" | t-finish -' sh "$b"
		cl=$(awk -v n="$rest" '{ printf "%.0f", ($1 + $2) / n * 1e6 }' \
		    "$root/cpu")
		[ -n "$first" ] || first=$cl
		ratio=$(echo "$cl $first" | awk '{ printf "%.2f", $1 / $2 }')
	fi
	# the scoreboard: computed, then kept (as after a tick), best of three
	t0=$(now)
	phn-score --json >/dev/null
	full=$(since "$t0")
	phn-score --write --quiet
	sc=
	for _ in 1 2 3; do
		t0=$(now)
		phn-score --json >/dev/null
		t=$(since "$t0")
		sc=$(echo "$t ${sc:-$t}" | awk '{ print ($1 < $2) ? $1 : $2 }')
	done
	# dispatch against its baselines
	ph=- xa=- pa=- rx=- rp=-
	if [ "$n" -le "$dmax" ]; then
		d=$work/d$n
		store "$d" "$n"
		b=$(phn-ingest "$d/lt.json")
		mkdir "$d/floor" "$d/par"
		i=0
		while [ "$i" -lt "$n" ]; do
			echo "$i"
			i=$((i + 1))
		done >"$d/ids"
		t0=$(now)
		sed "s|.*|-o\\n$d/floor/&.txt|" "$d/ids" |
		    xargs -P "$par" -n 2 "$fast" exec --json >/dev/null
		xa=$(since "$t0")
		t0=$(now)
		parallel -j "$par" --joblog "$d/joblog" "$fast" exec --json \
		    -o "$d/par/{}.txt" <"$d/ids" >/dev/null
		pa=$(since "$t0")
		t0=$(now)
		phn-claim --follow -j "$par" -b "$b" |
		    xargs -P "$par" -n 1 phn-spawn
		ph=$(since "$t0")
		ok=$(find "$d/runs/$b" -name state.json -exec \
		    jq -r .status {} + | grep -c '^succeeded$' || true)
		[ "$ok" -eq "$n" ] || echo "bench/table.sh: dispatch of $n:" \
		    "only $ok succeeded" >&2
		rx=$(echo "$ph $xa" | awk '{ printf "%.2f", $1 / $2 }')
		rp=$(echo "$ph $pa" | awk '{ printf "%.2f", $1 / $2 }')
		rm -rf "$d"
	fi
	printf '%7s %8s %6s %6s %9s %6s %7s %8s | %7s %7s %7s %6s %6s\n' "$n" \
	    "$ing" "$sy" "$op" "$cl" "$ratio" "$full" "$sc" "$ph" "$xa" \
	    "$pa" "$rx" "$rp"
	rm -rf "$root"
done
echo "goals: sync/a <= 4, open/a ~30; claim ratio (to the first size) <= 1.2;"
echo "       score_s < 0.1 at 10k, < 1 at 100k; ingest_s < 5 at 100k;"
echo "       dispatch phn/xargs <= 1.5 and phn/parallel < 1 at 1k"
