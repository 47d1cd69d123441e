#!/bin/sh
# bench/slurm.sh - the same batch through Slurm and through phn tick.
#
# A batch of BENCH_STEPS (default 1000) independent steps, each run by an
# instant agent (tests/fake-codex/codex-fast: three events and a Run
# Report at once), goes
#   1. through `phn-slurm --tasks 4 --per-task 2 --wait` on a one-node
#      Slurm cluster on this machine (tests/slurm-up.sh; started here and
#      stopped at the end, unless SLURM_CONF names a running one), and
#   2. through `phn tick -c 8` (the same 8 agents at a time),
# each on a fresh store, and prints the wall-clock time of each, the
# Slurm/tick ratio, and Slurm's own cost per task: an array of
# BENCH_TASKS (default 100) tasks that run `true`, from sbatch until
# squeue no longer lists it, divided by the tasks.  Each run checks that
# every step succeeded exactly once.
#
# Needs root (the cluster runs as root), slurm-wlm and munge (make deps),
# jq, and a build (make all).  The store lives on tmpfs (/dev/shm) unless
# BENCH_DIR says otherwise.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
PATH=$here/cmd:$PATH
PHN_DATADIR=$here
export PATH PHN_DATADIR
steps=${BENCH_STEPS:-1000}
ntasks=${BENCH_TASKS:-100}
if [ -z "${BENCH_DIR:-}" ]; then
	BENCH_DIR=/tmp
	[ -d /dev/shm ] && [ -w /dev/shm ] && BENCH_DIR=/dev/shm
fi
work=$(mktemp -d "$BENCH_DIR/phn-bench.XXXXXX")
cluster=''
cleanup() {
	[ -z "$cluster" ] || sh "$here/tests/slurm-down.sh" "$cluster"
	[ -z "$cluster" ] || rm -rf "$cluster"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${SLURM_CONF:-}" ]; then
	# munge's socket path must be short: not under a long BENCH_DIR
	cluster=$(mktemp -d /tmp/phn-slurm.XXXXXX)
	sh "$here/tests/slurm-up.sh" "$cluster" || exit 111
	# shellcheck source=/dev/null
	. "$cluster/env.sh"
fi
PHN_CODEX=$here/tests/fake-codex/codex-fast
export PHN_CODEX SLURM_CONF

now() { date +%s.%N; }

# store NAME: a fresh store with the batch; prints the store's root.
store() {
	d=$work/$1
	mkdir -p "$d"
	(cd "$d" && phn init >/dev/null &&
	    jq -n --argjson n "$steps" --arg goal "$(awk 'BEGIN {
		for (i = 1; i <= 151; i++) printf "w%d ", i }')" '{
		batch_goal_summary: $goal, concurrency: 1000000,
		jobs: [range($n / 10 | ceil) as $j | {job_id: "j\($j)",
		    working_directory: ".", steps: [range(10) as $s |
		    {step_id: "s\($s)", prompt: "p"}]}]}' >lt.json &&
	    phn submit lt.json >/dev/null)
	echo "$d"
}

# check ROOT: every step succeeded, once.
check() {
	n=$(phn-score --root "$1" --json | jq '[.system[] |
	    .counts.succeeded] | add')
	a=$(find "$1/runs" -name final.json | wc -l)
	if [ "$n" -ne $(( (steps + 9) / 10 * 10 )) ] || [ "$a" -ne "$n" ]; then
		echo "bench/slurm.sh: $1: $n succeeded, $a reports" >&2
		exit 1
	fi
}

d=$(store slurm)
t0=$(now)
phn-slurm --root "$d" --tasks 4 --per-task 2 --wait >/dev/null
t1=$(now)
check "$d"
slurm=$(echo "$t1 - $t0" | bc)

d=$(store tick)
t0=$(now)
phn tick --root "$d" -c 8
t1=$(now)
check "$d"
tick=$(echo "$t1 - $t0" | bc)

t0=$(now)
job=$(sbatch --parsable --array=1-"$ntasks" --output=/dev/null --wrap true)
while [ -n "$(squeue -h -r -j "$job" -o %i 2>/dev/null)" ]; do
	sleep 0.05
done
t1=$(now)
per=$(echo "scale=4; ($t1 - $t0) / $ntasks" | bc)

printf 'steps %d: slurm (4 tasks x 2) %.2f s, phn tick -c 8 %.2f s, ratio %.2f\n' \
    "$steps" "$slurm" "$tick" "$(echo "scale=4; $slurm / $tick" | bc)"
printf 'slurm cost per task: %.4f s (%d tasks of true)\n' "$per" "$ntasks"
