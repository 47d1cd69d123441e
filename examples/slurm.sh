#!/bin/sh
# slurm.sh -- run a batch on a Slurm cluster and watch it.
#
#   sh examples/slurm.sh [-n] [-t TASKS] [-j PER_TASK] TABLE.json
#
# Submits TABLE.json to the store ($PHN_ROOT, else the current
# directory, which must be on a file system every node mounts at the same
# path: NFSv4 with working flock), starts one Slurm array job of TASKS
# tasks (default 4) of PER_TASK agents each (default 4) with phn-slurm,
# keeping 2 GB free per node, then follows the scoreboard with the
# runners until the batch is done and exits as phn-score(1) does: 0 all
# succeeded, 1 not, 3 the array ended first (run this script's
# phn-slurm line again to finish: killed attempts are retried without
# counting).  -n is a dry run (phn-spawn --no-codex).
#
# Drain one task's runner while it runs (it finishes what it runs):
#   echo '{"drain": true}' > runners/HOST-JOB_TASK/drain.json
# Stop the whole array gently:  scancel --full --signal=TERM JOB
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$here/../cmd" ] && PATH=$here/../cmd:$PATH

tasks=4 per=4 dry=''
while getopts nt:j: opt; do
	case $opt in
	n) dry=--no-codex ;;
	t) tasks=$OPTARG ;;
	j) per=$OPTARG ;;
	*) echo "usage: slurm.sh [-n] [-t TASKS] [-j PER_TASK] TABLE.json" >&2
	   exit 100 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { echo "usage: slurm.sh [-n] [-t TASKS] [-j PER_TASK] TABLE.json" >&2; exit 100; }

phn init >/dev/null
batch=$(phn submit "$1")
job=$(phn-slurm --batch "$batch" --tasks "$tasks" --per-task "$per" \
    --memfree 2G ${dry:+"$dry"})
echo "batch $batch: Slurm job $job, $tasks tasks of $per agents" >&2
# --watch returns when nothing is in flight; then say how it ended.
phn-score --watch --batch "$batch" >&2 || :
while [ -n "$(squeue -h -r -j "$job" -o %i 2>/dev/null)" ]; do
	sleep 1
done
phn-score --json | jq -c --arg j "$job" \
    '.runners[] | select(.runner_id | test("-" + $j + "_")) |
     {runner_id, status, max_load_observed}' >&2
exec phn-score --batch "$batch" --quiet
