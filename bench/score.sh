#!/bin/sh
# bench/score.sh -- how long phn-score takes to compute the scoreboard of
# one batch of 1k, 10k and 100k steps with three attempts per step (two
# failed, then a succeeded one; every tenth step has a running third
# attempt instead), steps chained by depends_on within their job.
#
#   sh bench/score.sh [STEPS ...]        (default: 1000 10000 100000)
#
# Prints, per size, the best of three runs of `phn-score -b BATCH -q`
# (the batch scoreboard, computed and thrown away) and of --json, and the
# time per attempt.  Not run by make check.  Needs about 1.5 GB of disk
# for 100k steps (and a minute or two to build the store).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
PATH=${PHN_BIN_DIR:-$here/cmd}:$PATH
export PATH
work=$(mktemp -d "${TMPDIR:-/tmp}/phn-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

now_ns() {
	date +%s%N
}

# best of three: seconds with millisecond precision
best() {
	b=
	for _ in 1 2 3; do
		t0=$(now_ns)
		"$@" >/dev/null || [ $? -eq 3 ]
		t1=$(now_ns)
		t=$((t1 - t0))
		if [ -z "$b" ] || [ "$t" -lt "$b" ]; then
			b=$t
		fi
	done
	echo "$b"
}

# attempts BATCHDIR STEPS dirs|states: print the attempt directories of
# the bench batch, or write their state.json files.
attempts() {
	awk -v r="$1" -v n="$2" -v mode="$3" \
	    -v host="$(cat /proc/sys/kernel/hostname)" 'BEGIN {
		for (s = 0; s < n; s++) {
			d = sprintf("%s/j%05d/steps/s%03d/attempts", r, s / 100, s % 100)
			for (a = 1; a <= 3; a++) {
				run = sprintf("run_20260101T0000%02dZ_%08x", a, s * 4 + a)
				ad = sprintf("%s/20260101T0000%02dZ_%s", d, a, run)
				if (mode == "dirs")
					print ad
				else
					state(ad "/state.json", s, a)
			}
		}
	}
	function state(f, s, a,    st) {
		st = a < 3 ? "failed" : (s % 10 == 9 ? "running" : "succeeded")
		printf "{\n  \"claimed_at\": \"2026-01-01T00:00:0%d.000000Z\",\n", a >f
		printf "  \"started_at\": \"2026-01-01T00:00:0%d.100000Z\",\n", a >f
		if (st != "running") {
			printf "  \"ended_at\": \"2026-01-01T00:01:0%d.000000Z\",\n", a >f
			printf "  \"exit_code\": %d,\n", (st == "failed") >f
		} else {
			printf "  \"last_heartbeat_at\": \"2099-01-01T00:00:00.000000Z\",\n" >f
			printf "  \"last_event_at\": \"2099-01-01T00:00:00.000000Z\",\n" >f
		}
		if (st == "failed") printf "  \"failure_kind\": \"codex_exit\",\n" >f
		printf "  \"host\": \"other-%s\",\n  \"boot_id\": \"x\",\n", host >f
		printf "  \"pid\": %d,\n  \"pgid\": %d,\n", 1000 + s, 1000 + s >f
		printf "  \"runner_id\": \"runner_bench\",\n" >f
		printf "  \"codex_thread_id\": \"0199a213-81c0-7800-8aa1-%012d\",\n", s >f
		printf "  \"current_item\": \"done\",\n  \"errors\": [],\n" >f
		printf "  \"status\": \"%s\",\n", st >f
		printf "  \"usage\": {\n    \"cached_input_tokens\": 10,\n" >f
		printf "    \"input_tokens\": 1000,\n    \"output_tokens\": 300,\n" >f
		printf "    \"reasoning_output_tokens\": 20\n  }\n}\n" >f
		close(f)
	}'
}

build() {	# ROOT STEPS: a batch; prints its id
	root=$1 n=$2
	phn-init -r "$root" >/dev/null
	awk -v n="$n" 'BEGIN {
		printf "{\"batch_goal_summary\": \""
		for (i = 1; i <= 151; i++) printf "w%d ", i
		printf "\", \"working_root\": \".\", \"concurrency\": 64, \"jobs\": ["
		for (s = 0; s < n; s++) {
			k = s % 100
			if (k == 0) printf "%s{\"job_id\": \"j%05d\", \"working_directory\": \".\", \"steps\": [", (s ? "]}, " : ""), s / 100
			printf "%s{\"step_id\": \"s%03d\", \"prompt\": \"do step %d\"", (k ? ", " : ""), k, s
			if (k) printf ", \"depends_on\": [\"s%03d\"]", k - 1
			printf "}"
		}
		print "]}]}"
	}' >"$root/lt.json"
	b=$(phn-ingest -r "$root" "$root/lt.json")
	# Three attempts per step: the directories first, then their states.
	attempts "$root/runs/$b" "$n" dirs | xargs mkdir -p
	attempts "$root/runs/$b" "$n" states
	echo "$b"
}

printf '%8s %9s %10s %10s %12s\n' steps attempts "-q (s)" "--json (s)" "us/attempt"
[ $# -gt 0 ] || set -- 1000 10000 100000
for n in "$@"; do
	root=$work/$n
	mkdir -p "$root"
	b=$(build "$root" "$n")
	q=$(best phn-score -r "$root" -b "$b" -q)
	j=$(best phn-score -r "$root" -b "$b" --json)
	awk -v n="$n" -v q="$q" -v j="$j" 'BEGIN {
		printf "%8d %9d %10.3f %10.3f %12.1f\n", n, 3 * n, q / 1e9, j / 1e9,
		    q / 1e3 / (3 * n)
	}'
	rm -rf "$root"
done
