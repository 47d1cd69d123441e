#!/bin/sh
# watch.sh -- wait until a batch is done, printing a line whenever its
# progress changes, from phn-score --steps through jq; then list the steps
# that need a person and exit with the batch's outcome (0 all succeeded,
# 1 not).
#
#   sh examples/watch.sh BATCH [SECONDS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$here/../cmd" ] && PATH=$here/../cmd:$PATH

[ $# -ge 1 ] || { echo "usage: watch.sh BATCH [SECONDS]" >&2; exit 100; }
batch=$1 every=${2:-5} last=''
while :; do
	st=0
	steps=$(phn-score -b "$batch" --steps) || st=$?
	[ "$st" -le 3 ] || exit "$st"		# 100, 111: phn-score said why
	line=$(printf '%s\n' "$steps" | jq -rs '
		def n(f): map(select(f)) | length;
		"\(n(.status == "succeeded"))/\(length) succeeded, " +
		"\(n(.status == "running")) running, " +
		"\(n(.status == "ready")) ready, " +
		"\(n(.attention != null)) need attention"')
	if [ "$line" != "$last" ]; then
		printf '%s %s\n' "$(date -u +%H:%M:%S)" "$line"
		last=$line
	fi
	[ "$st" -eq 3 ] || break
	sleep "$every"
done
printf '%s\n' "$steps" | jq -r 'select(.status != "succeeded") |
	"  \(.job_id)/\(.step_id): \(.status)" +
	(if .failure_kind then " (\(.failure_kind))" else "" end) +
	(if (.reasons | length) > 0 then ": \(.reasons | join("; "))" else "" end)'
exit "$st"
