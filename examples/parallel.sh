#!/bin/sh
# parallel.sh -- the xargs fan-out, with GNU parallel instead: its
# --joblog records when each agent ran and how it ended.
#
#   sh examples/parallel.sh [-n] [-j N] [-b BATCH] [-l JOBLOG]
#
# -n is a dry run (phn-spawn --no-codex); -j N agents at a time (default
# 4); -b serves only BATCH; -l writes parallel's job log there.  Exits as
# phn-score(1) does: 0 all succeeded, 1 not.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$here/../cmd" ] && PATH=$here/../cmd:$PATH

n=4 dry='' batch='' log=/dev/null
while getopts nj:b:l: opt; do
	case $opt in
	n) dry=1 ;;
	j) n=$OPTARG ;;
	b) batch=$OPTARG ;;
	l) log=$OPTARG ;;
	*) echo "usage: parallel.sh [-n] [-j N] [-b BATCH] [-l JOBLOG]" >&2
	   exit 100 ;;
	esac
done
command -v parallel >/dev/null 2>&1 || {
	echo "parallel.sh: GNU parallel is not installed" >&2
	exit 111
}
set --
[ -z "$batch" ] || set -- -b "$batch"

# parallel exits with the number of failed agents (up to 100): the
# scoreboard below tells which steps; 101 and more are its own errors.
st=0
phn-claim --follow -0 -j "$n" "$@" |
	parallel --will-cite --null -j "$n" --joblog "$log" \
	    phn-spawn ${dry:+--no-codex} '{}' || st=$?
[ "$st" -le 100 ] || exit 111
exec phn-score "$@"
