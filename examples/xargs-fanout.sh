#!/bin/sh
# xargs-fanout.sh -- run every runnable step with N agents at a time.
#
#   sh examples/xargs-fanout.sh [-n] [-j N] [-b BATCH]
#
# phn-claim hands out one attempt directory per runnable step as slots
# free up and dependencies succeed (-j N keeps at most N of its claims
# queued or running, so none waits in the pipe), and xargs runs one
# phn-spawn per attempt, N at a time.  The pipe ends when nothing is
# runnable, queued or running; then the scoreboard is printed, and the
# script exits as phn-score(1) does: 0 all succeeded, 1 not.
#
# -n is a dry run (phn-spawn --no-codex); -b serves only BATCH.  The
# store is $PHN_ROOT, else the current directory.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$here/../cmd" ] && PATH=$here/../cmd:$PATH

n=4 dry='' batch=''
while getopts nj:b: opt; do
	case $opt in
	n) dry=1 ;;
	j) n=$OPTARG ;;
	b) batch=$OPTARG ;;
	*) echo "usage: xargs-fanout.sh [-n] [-j N] [-b BATCH]" >&2; exit 100 ;;
	esac
done
set --
[ -z "$batch" ] || set -- -b "$batch"

# xargs exits 123 when some phn-spawn reported a failed step: the
# scoreboard below tells which.
phn-claim --follow -0 -j "$n" "$@" |
	xargs -0 -r -P "$n" -n 1 phn-spawn ${dry:+--no-codex} ||
	[ $? -eq 123 ]
exec phn-score "$@"
