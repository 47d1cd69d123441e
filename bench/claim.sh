#!/bin/sh
# bench/claim.sh - the cost of a claim as the store grows.
#
# For batches of 1k, 10k and 100k steps (jobs of 10 steps: independent
# ones, and 10-step chains), time
#     phn-claim --follow -j 64 | t-finish -
# from the first claim to the last, where tests/t-finish ends each attempt
# as phn-spawn would (state.json running then succeeded, current.json,
# phn_sched_attempt_ended), and print the cost per claim: wall-clock time,
# and CPU time (user + system of both processes), which other load on
# the machine disturbs less.  The time
# includes building the batch's schedule and ready indexes on first sight;
# ingesting the table does not count.  The claim cost must not grow with
# the store: the last line prints the 100k/1k ratio of each shape.
#
# The store lives on tmpfs (/dev/shm) by default, so that the figures
# measure the claim algorithm rather than the disk's fsync latency; set
# BENCH_DIR to measure a disk.  BENCH_SIZES (default "1000 10000 100000")
# and BENCH_SHAPES (default "indep chain") choose the cases.
# Needs jq, bc, GNU time(1), and a build: make all tests/t-finish.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
PATH=$here/cmd:$here/tests:$PATH
export PATH PHN_DATADIR=$here
sizes=${BENCH_SIZES:-1000 10000 100000}
shapes=${BENCH_SHAPES:-indep chain}
if [ -z "${BENCH_DIR:-}" ]; then
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then
		BENCH_DIR=/dev/shm
	else
		BENCH_DIR=${TMPDIR:-/tmp}
	fi
fi
work=$(mktemp -d "$BENCH_DIR/phn-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
# Private copies: a rebuild of the tree during the run cannot disturb it.
mkdir "$work/bin"
for p in phn-init phn-ingest phn-claim t-finish jq bc time; do
	f=$(command -v "$p" 2>/dev/null) || {
		echo "bench/claim.sh: $p not found; run: make all tests/t-finish" >&2
		exit 100
	}
	case $p in time) timer=$f ;; *) cp "$f" "$work/bin/" ;; esac
done
PATH=$work/bin:$PATH

# table JOBS SHAPE: 10 steps per job, independent or chained.
table() {
	jq -n --argjson nj "$1" --arg shape "$2" \
	    --arg goal "$(awk 'BEGIN { for (i = 1; i <= 151; i++)
		printf "w%d ", i }')" '{
	    batch_goal_summary: $goal, concurrency: 1000000,
	    jobs: [range($nj) as $j | {job_id: "j\($j)", working_directory: ".",
		steps: [range(10) as $s | {step_id: "s\($s)", prompt: "p"} +
		    (if $shape == "chain" and $s > 0 then
			{depends_on: ["s\($s - 1)"]} else {} end)]}]}'
}

now() { date +%s.%N; }

echo "store: $BENCH_DIR ($(stat -f -c %T "$BENCH_DIR" 2>/dev/null || echo ?))"
printf '%-6s %8s %9s %9s %13s %13s\n' shape steps wall_s cpu_s \
    wall_us/claim cpu_us/claim
results=
for shape in $shapes; do
	for n in $sizes; do
		root=$work/$shape-$n
		mkdir -p "$root"
		export PHN_ROOT=$root
		phn-init >/dev/null 2>&1
		table $((n / 10)) "$shape" >"$root/lt.json"
		batch=$(phn-ingest "$root/lt.json")
		t0=$(now)
		"$timer" -o "$root/cpu" -f '%U %S' \
		    sh -c 'phn-claim --follow -j 64 | t-finish -'
		t1=$(now)
		claims=$(find "$root/runs/$batch" -name meta.json | wc -l)
		[ "$claims" -eq "$n" ] || {
			echo "bench/claim.sh: $shape $n: $claims claims" >&2
			exit 1
		}
		secs=$(echo "$t1 - $t0" | bc -l)
		cpu=$(tail -1 "$root/cpu" | awk '{ print $1 + $2 }')
		per=$(echo "$secs * 1000000 / $n" | bc -l)
		cper=$(echo "$cpu * 1000000 / $n" | bc -l)
		printf '%-6s %8d %9.2f %9.2f %13.1f %13.1f\n' "$shape" "$n" \
		    "$secs" "$cpu" "$per" "$cper"
		results="$results $shape:$n:$per:$cper"
		rm -rf "$root"
	done
done
lo=${sizes%% *}
hi=${sizes##* }
for shape in $shapes; do
	a= b=
	for r in $results; do
		case $r in
		"$shape:$lo:"*) a=${r#"$shape:$lo:"} ;;
		"$shape:$hi:"*) b=${r#"$shape:$hi:"} ;;
		esac
	done
	[ -n "$a" ] && [ -n "$b" ] &&
	    printf 'ratio %s %s/%s: wall %.2f, cpu %.2f\n' "$shape" "$hi" \
		"$lo" "$(echo "${b%:*} / ${a%:*}" | bc -l)" \
		"$(echo "${b#*:} / ${a#*:}" | bc -l)"
done
