#!/bin/sh
# tests/valgrind.sh -- the main paths of the programs under valgrind
# (memcheck, --leak-check=full): ingest, claim (one-shot and -f), spawn
# (-D and with tests/fake-codex), score (--json, --steps, --joblog),
# heartbeat (--reap, --remediate -D), fsck (--repair on a damaged store),
# budget, replay (as phn-spawn's codex) and phn-api (a few requests, then
# SIGTERM).  Any invalid read or write, use of uninitialised memory, or
# definite or indirect leak fails it, as does an unexpected exit status.
# Run by `make valgrind` on the build in cmd/ (not part of make check:
# it is slow).  Keeps its directory when it fails, and says where.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
PATH=$repo/cmd:$PATH
T=$(mktemp -d "${TMPDIR:-/tmp}/phn-valgrind.XXXXXX") || exit 111
T=$(cd "$T" && pwd -P)
VG=$T/vg
mkdir -p "$VG" "$T/home" "$T/w"
cd "$T" || exit 111
PHN_ROOT=$T PHN_DATADIR=$repo HOME=$T/home
export PATH PHN_ROOT PHN_DATADIR HOME
unset CODEX_HOME PHN_CODEX_CONFIG FAKE_CODEX_MODE
fails=0
bgpid=

VALGRIND="valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect
    --error-exitcode=9 --track-fds=no --num-callers=30"

cleanup() {
	[ -n "$bgpid" ] && kill -9 "$bgpid" 2>/dev/null
	pkill -9 -f "$T/" 2>/dev/null
}
trap cleanup EXIT

bad() {
	echo "valgrind: FAIL: $*" >&2
	fails=$((fails + 1))
}

# vg WANT NAME PROG ARG...: PROG under valgrind, its log in $VG/NAME.*.log;
# its stdout in $T/out; fails unless it exits WANT.
vg() {
	want=$1 name=$2
	shift 2
	# shellcheck disable=SC2086
	$VALGRIND --log-file="$VG/$name.%p.log" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		bad "$name: $* exited $rc, not $want: $(head -c 2000 "$T/err")"
	fi
	return 0
}

goal=$(awk 'BEGIN { for (i = 1; i <= 151; i++)
    printf "%sw%d", (i > 1 ? " " : ""), i; print "" }')
lt() { # FILE STEPS_JSON
	jq -n --arg g "$goal" --argjson steps "$2" '{
		batch_goal_summary: $g, concurrency: 4,
		execution_policy: { skip_git_repo_check: true,
		    sandbox: "workspace-write", approval_policy: "never" },
		jobs: [{ job_id: "j", working_directory: "w", steps: $steps }]
	}' >"$1"
}

# ---------------------------------------------------------------- store ---
vg 0 init phn-init
jq '.defaults.kill_grace_seconds = 1' runs/_system/harness_config.json \
    >cfg.tmp && mv cfg.tmp runs/_system/harness_config.json
lt lt.json '[{"step_id": "a", "prompt": "FAKE:ok"},
    {"step_id": "b", "prompt": "FAKE:report_failed"},
    {"step_id": "c", "prompt": "FAKE:ok", "depends_on": ["a"]},
    {"step_id": "d", "prompt": "x"}]'
vg 0 ingest phn-ingest lt.json
B=$(cat "$T/out")
vg 100 ingest-bad phn-ingest "$T/no-such-file.json"

# ---------------------------------------------------------------- claim ---
vg 0 claim phn-claim -b "$B" -n 2
A1=$(sed -n 1p "$T/out") A2=$(sed -n 2p "$T/out")
if [ ! -d "$A1" ] || [ ! -d "$A2" ]; then
	bad "claim: no attempts: $(cat "$T/out")"
fi

# ---------------------------------------------------------------- spawn ---
export PHN_CODEX="$repo/tests/fake-codex/codex"
vg 0 spawn phn-spawn "$A1"
vg 1 spawn-failed phn-spawn "$A2"
vg 0 claim-follow phn-claim -f -b "$B" -n 1 -i vgrunner
A3=$(sed -n 1p "$T/out")
vg 0 spawn-no-codex phn-spawn -D "$A3"
vg 0 claim2 phn-claim -b "$B" -n 1
A4=$(sed -n 1p "$T/out")
[ -d "$A4" ] || bad "claim2: no attempt"

# a follow claimer feeding spawners, until the batch is done (-j 1)
lt lt4.json '[{"step_id": "p", "prompt": "FAKE:ok"},
    {"step_id": "q", "prompt": "FAKE:ok", "depends_on": ["p"]}]'
B4=$(phn-ingest lt4.json)
# shellcheck disable=SC2086
{ $VALGRIND --log-file="$VG/claim-follow-j.%p.log" phn-claim -f -j 1 \
    -b "$B4" 2>"$T/err"; echo $? >"$T/rc"; } |
    while read -r a; do phn-spawn "$a" </dev/null >/dev/null 2>&1; done
[ "$(cat "$T/rc")" -eq 0 ] || bad "claim-follow-j: exited $(cat "$T/rc")"
vg 0 score-follow phn-score -b "$B4"
vg 0 tail phn-tail -n 3 "$A1"
vg 0 artifact phn-artifact "$A1" final.json
vg 0 gc phn-gc -D

# --------------------------------------------------------------- replay ---
printf '#!/bin/sh\nexec %s --log-file=%s/replay.%%p.log %s/cmd/phn-replay "$@"\n' \
    "$(echo "$VALGRIND" | tr '\n' ' ')" "$VG" "$repo" >"$T/vg-replay"
chmod +x "$T/vg-replay"
PHN_CODEX=$T/vg-replay PHN_REPLAY=$A1 vg 0 spawn-replay phn-spawn "$A4"
unset PHN_REPLAY
vg 100 replay-unset phn-replay exec -

# ---------------------------------------------------------------- score ---
# (step b failed: exit 1)
vg 1 score phn-score -b "$B"
vg 1 score-json phn-score --json
vg 1 score-steps phn-score --steps -b "$B"
vg 0 score-joblog phn-score --joblog -b "$B"
vg 0 budget phn-budget -m "valgrind" "$B" 1000000
vg 1 score-budget phn-score --json -b "$B"
vg 0 force-retry phn-force-retry -m valgrind "$B" j b
vg 3 score-retry phn-score -b "$B"

# ------------------------------------------------------------ heartbeat ---
# a running attempt whose spawner is killed: --reap ends it as orphaned
lt lt3.json '[{"step_id": "r", "prompt": "FAKE:sleep:60"}]'
B3=$(phn-ingest lt3.json)
A5=$(phn-claim -b "$B3" -n 1)
phn-spawn "$A5" </dev/null >/dev/null 2>&1 &
spid=$!
i=0
until [ "$(jq -r .status "$A5/state.json" 2>/dev/null)" = running ] ||
    [ $i -ge 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
vg 0 heartbeat-beat phn-heartbeat "$A5" "valgrind beat"
vg 0 heartbeat-list phn-heartbeat -l
vg 0 heartbeat-json phn-heartbeat -l --json -b "$B3"
vg 0 heartbeat-remediate phn-heartbeat --remediate -D
vg 0 tail-running phn-tail -n 2 "$A5"
kill -9 "$spid"
wait "$spid" 2>/dev/null
vg 0 heartbeat-reap phn-heartbeat --reap
[ "$(jq -r .failure_kind "$A5/state.json")" = orphaned ] ||
    bad "heartbeat --reap: $A5 is $(jq -c '[.status, .failure_kind]' "$A5/state.json")"
pkill -9 -f "$T/" 2>/dev/null

# ----------------------------------------------------------------- fsck ---
touch "runs/$B/j/.current.json.Ab12Cd"
printf '{"jobs": [' >"runs/$B/_sched/index.json"
printf '{"steps": {' >"runs/$B/j/current.json"
touch "runs/$B/_claimed/j@d@tok"
vg 1 fsck-damaged phn-fsck
vg 0 fsck-repair phn-fsck --repair --json
vg 0 fsck-clean phn-fsck
vg 0 close-batch phn-close-batch -m valgrind "$B3"

# ------------------------------------------------------------------ api ---
jq '.interfaces.api_mode = {enabled: true, auth_mode: "none",
    auto_tick: false}' runs/_system/harness_config.json >cfg.tmp &&
    mv cfg.tmp runs/_system/harness_config.json
# shellcheck disable=SC2086
$VALGRIND --log-file="$VG/api.%p.log" phn-api --root "$T" --port 0 \
    --port-file "$T/api.port" </dev/null >"$T/api.out" 2>"$T/api.err" &
bgpid=$!
i=0
while [ ! -s "$T/api.port" ] && [ $i -lt 600 ] && kill -0 "$bgpid" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
if [ -s "$T/api.port" ]; then
	URL=http://127.0.0.1:$(cat "$T/api.port")
	ids="batch_id=$B&job_id=j&step_id=a"
	for u in /health /v1/scoreboards/system "/v1/batches/$B" \
	    "/v1/batches/$B/scoreboard" "/v1/batches/$B/steps" /v1/runners \
	    "/v1/batches/$B/jobs/j/current" "/v1/attempts/resolve?$ids" \
	    "/v1/attempts/artifact?$ids&name=meta.json" \
	    "/v1/attempts/events?$ids&lines=2" /v1/no-such-route; do
		curl -s -o /dev/null "$URL$u" || bad "api: GET $u failed"
	done
	lt lt2.json '[{"step_id": "s", "prompt": "x"}]'
	curl -s -o /dev/null --data-binary @lt2.json "$URL/v1/batches" ||
	    bad "api: POST /v1/batches failed"
	for u in "/v1/tick?no_codex=1" \
	    "/v1/batches/$B/jobs/j/steps/b/force-retry"; do
		curl -s -o /dev/null -X POST "$URL$u" || bad "api: POST $u failed"
	done
	echo '{' >bad.json
	curl -s -o /dev/null --data-binary @bad.json "$URL/v1/batches" ||
	    bad "api: POST bad batch failed"
else
	bad "api: phn-api did not start: $(cat "$T/api.err")"
fi
kill -TERM "$bgpid" 2>/dev/null
wait "$bgpid"
rc=$?
bgpid=
[ "$rc" -eq 9 ] && bad "api: valgrind found errors"

# -------------------------------------------------------------- verdict ---
for f in "$VG"/*.log; do
	# (a log without a summary is a child that exec'd another program)
	if grep -q 'ERROR SUMMARY: [1-9]' "$f"; then
		bad "$(basename "$f"): $(grep -m1 'ERROR SUMMARY' "$f")"
		grep -v "^--" "$f" | head -n 80 >&2
	fi
done
n=$(find "$VG" -name "*.log" | wc -l)
if [ "$fails" -ne 0 ]; then
	echo "valgrind: $fails failure(s) in $n valgrind logs; they are in $VG" >&2
	trap - EXIT
	cleanup
	exit 1
fi
echo "valgrind: $n valgrind logs clean"
rm -rf "$T"
