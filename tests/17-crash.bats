#!/usr/bin/env bats
# tests/17-crash.bats -- crash safety: a phn-spawn killed with SIGKILL
# during phn tick stops nothing, and a bounded seeded run of the crash
# harness (bench/crash.sh; `make crash` is the long run).

load helper

setup() {
	phn_setup
	PHN_CODEX=$PHN_REPO/tests/fake-codex/codex
	FAKE_CODEX_LOG=$T/codex.log
	export PHN_CODEX FAKE_CODEX_LOG
}

teardown() {
	bg_cleanup
}

# The pids of this test's phn-spawn processes (other suites may run).
my_spawns() {
	local p
	for p in $(pgrep -x phn-spawn); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "$T/" &&
		    echo "$p"
	done
	return 0
}

# N steps of job j, each prompt PROMPT, max_attempts 1 (no retries).
steps_lt() {
	jq -n --arg goal "$(goal_words 151)" --argjson n "$1" --arg p "$2" \
	    '{batch_goal_summary: $goal, concurrency: 3,
	    execution_policy: {skip_git_repo_check: true},
	    jobs: [{job_id: "j", working_directory: ".",
	    steps: [range($n) | {step_id: "s\(.)", prompt: $p,
	    retry_policy: {max_attempts: 1}}]}]}'
}

# A phn-spawn of this test whose attempt is running: its pid in VICTIM.
spawn_running() {
	local p a
	for p in $(my_spawns); do
		a=$(tr '\0' '\n' <"/proc/$p/cmdline" | tail -1)
		if [ "$(jq -r .status "$a/state.json" 2>/dev/null)" = running ]
		then
			VICTIM=$p
			return 0
		fi
	done
	return 1
}

@test "a phn-spawn killed with SIGKILL mid-tick stops nothing: tick ends 0, the orphan is retried and not counted" {
	phn init >/dev/null
	# a short lease: without the guard, the tick would fail after it
	jq_edit runs/_system/harness_config.json '.defaults.claim_lease_seconds = 5'
	steps_lt 5 'FAKE:sleep:2' >lt.json
	B=$(phn submit lt.json)
	bg phn tick -c 3
	tick=$BG_PID
	wait_for spawn_running
	kill -9 "$VICTIM"
	rc=0
	wait "$tick" || rc=$?
	[ "$rc" -eq 0 ]
	# every step succeeded, even with max_attempts 1
	run -0 phn-score -b "$B" --json
	run jq -c '[.batch.counts.succeeded, .batch.outcome]' <<<"$output"
	assert_output '[5,"succeeded"]'
	# exactly one attempt ended orphaned, and one step has two attempts
	run -0 sh -c "cat runs/$B/j/steps/*/attempts/*/state.json |
	    jq -s -c '[.[] | select(.failure_kind == \"orphaned\")] | length'"
	assert_output 1
	run -0 sh -c "ls -d runs/$B/j/steps/*/attempts/* | wc -l"
	[ "$output" -eq 6 ]
}

@test "the crash harness, bounded: 10 seeded trials of kill -9 (ingest, claim, spawn, tick), then recovery; no torn JSON, no lost result, nothing run twice to success, phn-fsck clean" {
	run sh "$PHN_REPO/bench/crash.sh" 10 "${CRASH_SEED:-917}"
	echo "$output"
	[ "$status" -eq 0 ]
	assert_line --partial "crash: 10 trials, 0 failed"
}

# A batch of job $1 with two independent steps s and t; prints its id.
two_step_batch() {
	jq -n --arg goal "$(goal_words 151)" --arg j "$1" '{
	    batch_goal_summary: $goal, concurrency: 4, jobs: [{job_id: $j,
	    working_directory: ".", steps: [{step_id: "s", prompt: "x"},
	    {step_id: "t", prompt: "y"}]}]}' >"lt-$1.json"
	phn-ingest "lt-$1.json"
}

@test "a read-only store: phn-claim exits 111 with the cause, not 1 (\"nothing to claim\")" {
	phn init >/dev/null
	B=$(two_step_batch j)
	# the schedule index not built yet: its lock cannot be taken
	run -111 --separate-stderr unshare -m sh -c \
	    'mount --bind -o ro runs runs && exec phn-claim -n 1'
	[ -z "$output" ]
	assert_stderr_line --partial "_sched.lock: Read-only file system"
	run -111 --separate-stderr unshare -m sh -c \
	    'mount --bind -o ro runs runs && exec phn-claim --follow'
	# built: the claim's rename fails
	run -0 phn-claim -n 1
	run -111 --separate-stderr unshare -m sh -c \
	    'mount --bind -o ro runs runs && exec phn-claim -n 1'
	assert_stderr_line --partial "Read-only file system"
	[ -z "$output" ]
	# writable again, the step is claimable: nothing was lost
	run -0 phn-claim -n 1
	[ -n "$output" ]
}

@test "a full disk: phn-ingest names the cause and the file, exits 111, leaves no batch" {
	mkdir full
	run -111 --separate-stderr unshare -m sh -c '
	    mount -t tmpfs -o size=64k tmpfs full || exit 99
	    PHN_ROOT=$PWD/full phn init >/dev/null || exit 98
	    head -c 60000 /dev/zero >full/fill 2>/dev/null
	    PHN_ROOT=$PWD/full phn-ingest "$1"' sh "$PHN_REPO/examples/launch_table.example.json"
	[[ $stderr =~ ^phn-ingest:\ unable\ to\ write\ [^\ ]*/full/runs/\.ingest-[A-Za-z0-9]{6}/[^\ ]+:\ No\ space\ left\ on\ device$ ]]
}

@test "a full store: phn-claim exits 111 naming ENOSPC and the file, and leaves the store clean (phn-fsck)" {
	phn init >/dev/null
	two_step_batch j >/dev/null	# writes lt-j.json
	mkdir full
	run -111 --separate-stderr unshare -m sh -c '
	    mount -t tmpfs -o size=256k tmpfs full || exit 99
	    cd full || exit 98
	    PHN_ROOT=$PWD
	    export PHN_ROOT
	    phn init >/dev/null || exit 97
	    B=$(phn-ingest "$1") || exit 96
	    phn-claim --rescan -b "$B" >/dev/null || exit 95
	    head -c 10000000 /dev/zero >fill 2>/dev/null
	    phn-claim -n 1
	    st=$?
	    phn-fsck >&2 || exit 94
	    exit "$st"' sh "$T/lt-j.json"
	[ -z "$output" ]
	assert_stderr_line --partial "/meta.json: No space left on device"
}

@test "a batch whose batch_meta.json is unreadable is skipped with a warning naming it; nothing is claimed from it" {
	phn init >/dev/null
	B1=$(two_step_batch a)
	B2=$(two_step_batch b)
	# claimed once (the index is built), then the meta is damaged
	run -0 phn-claim -n 1 -b "$B1"
	printf '{"jobs": [' >"runs/$B1/batch_meta.json"
	run -0 --separate-stderr phn-claim -n 5
	assert_stderr_line --partial "warning: batch $B1: $T/runs/$B1/batch_meta.json:"
	assert_stderr_line --partial "skipped, nothing claimed from it"
	[ "${#lines[@]}" -eq 2 ]
	assert_line --partial "/runs/$B2/b/steps/s/attempts/"
	refute_line --partial "/runs/$B1/"
	# only that batch: nothing else to claim is a plain "no" (1)
	run -1 --separate-stderr phn-claim -n 1 -b "$B1"
	assert_stderr_line --partial "runs/$B1/batch_meta.json"
	[ -z "$output" ]
	# a large one (over 4 MiB) is read at both ends: whole, it serves ...
	B3=$(two_step_batch c)
	run -0 phn-claim -n 1 -b "$B3"
	cp "runs/$B3/batch_meta.json" meta.good
	{ cat meta.good; head -c 5000000 /dev/zero | tr '\0' ' '; } \
	    >"runs/$B3/batch_meta.json"
	run -0 --separate-stderr phn-claim -n 1 -b "$B3"
	assert_output --partial "/runs/$B3/c/steps/"
	# ... cut short, it is skipped, named
	{ head -c 100 meta.good; head -c 5000000 /dev/zero | tr '\0' ' '; } \
	    >"runs/$B3/batch_meta.json"
	run -1 --separate-stderr phn-claim -n 1 -b "$B3"
	assert_stderr_line --partial "runs/$B3/batch_meta.json: not a whole JSON object; skipped, nothing claimed from it"
}

# CLOCK_BOOTTIME now, in seconds (/proc/uptime reads it).
boottime() {
	cut -d' ' -f1 /proc/uptime
}

@test "a lease does not trust the wall clock alone: a claim from the future is reaped after the lease by the boot clock" {
	phn init >/dev/null
	B=$(two_step_batch j)
	A=$(phn-claim -n 1)
	# the claim records the claim clock
	run jq -r '[.claimed_host == $h, .claimed_boot_id == $b,
	    (.claimed_boottime | type)] | @tsv' \
	    --arg h "$(cat /proc/sys/kernel/hostname)" \
	    --arg b "$(cat /proc/sys/kernel/random/boot_id)" "$A/state.json"
	assert_output "$(printf 'true\ttrue\tnumber')"
	future=$(jq -nr '(now + 86400) | strftime("%Y-%m-%dT%H:%M:%SZ")')
	# the wall clock was stepped back a day, the claim is fresh: kept
	jq_edit "$A/state.json" --arg t "$future" '.claimed_at = $t'
	run -0 phn-heartbeat --reap
	run jq -r .status "$A/state.json"
	assert_output queued
	# 400 s ago by the boot clock (lease 300): reaped, though claimed_at
	# lies in the future
	jq_edit "$A/state.json" --argjson bt "$(boottime)" \
	    '.claimed_boottime = ($bt - 400)'
	run -0 phn-heartbeat --reap
	run jq -r '.status + " " + .failure_kind' "$A/state.json"
	assert_output 'failed claim_expired'
	# a claim of this host's previous boot: no spawner of it lives
	A2=$(phn-claim -n 1 -b "$B")
	[ "$A2" != "$A" ]
	jq_edit "$A2/state.json" --arg t "$future" \
	    '.claimed_at = $t | .claimed_boot_id = "00000000-0000-0000-0000-000000000000"'
	run -0 phn-heartbeat --reap
	run jq -r '.status + " " + .failure_kind' "$A2/state.json"
	assert_output 'failed claim_expired'
	# another host's claim: the wall clock alone (in the future: kept)
	A3=$(phn-claim -n 1 -b "$B")
	jq_edit "$A3/state.json" --arg t "$future" \
	    '.claimed_at = $t | .claimed_host = "elsewhere" | .claimed_boottime = 1'
	run -0 phn-heartbeat --reap
	run jq -r .status "$A3/state.json"
	assert_output queued
}

@test "a claim whose claimer died (its token names a dead process of this host) is ready again at the next claimer, not after 120 s" {
	phn init >/dev/null
	B=$(two_step_batch j)
	run -0 phn-claim --rescan -b "$B"
	mkdir -p "runs/$B/_claimed"
	host=$(cat /proc/sys/kernel/hostname)
	# a live claimer (this shell) keeps its claim of s ...
	mv "runs/$B/_ready/j@s" "runs/$B/_claimed/j@s@$host.$$.0000beef"
	# ... a dead one's claim of t is returned
	sleep 30 &
	dead=$!
	kill -9 "$dead"
	wait "$dead" || :
	mv "runs/$B/_ready/j@t" "runs/$B/_claimed/j@t@$host.$dead.0000dead"
	run -0 phn tick --no-codex
	# 3: s is still ready (claimed by a live claimer)
	run -3 phn-score -b "$B" --json
	run jq -c '[.batch.counts.succeeded, .batch.counts.ready]' <<<"$output"
	assert_output '[1,1]'
	[ -f "runs/$B/j/steps/t/attempts/"*/state.json ]
	[ -f "runs/$B/_claimed/j@s@$host.$$.0000beef" ]
	[ ! -e "runs/$B/_claimed/j@t@$host.$dead.0000dead" ]
}

@test "phn-heartbeat --reap ATTEMPT: the attempt of a spawner seen dead is reaped at once, queued or running, never under a live spawner" {
	phn init >/dev/null
	B=$(two_step_batch j)
	A=$(phn-claim -n 1)
	# a spawner holds its spawn.lock: hands off (1), and it stays queued
	flock_pid_file=$T/held
	bg_hold sh -c 'exec 9>>"$1" && flock 9 && touch "$2" && exec sleep 1000' \
	    sh "$A/spawn.lock" "$flock_pid_file"
	wait_for test -e "$flock_pid_file"
	run -1 --separate-stderr phn-heartbeat --reap "$A"
	assert_stderr_line --partial "not reaped: its spawn.lock is held: a spawner lives"
	run jq -r .status "$A/state.json"
	assert_output queued
	bg_cleanup
	# the spawner died while preparing (queued, lease not expired): at once
	run -0 phn-heartbeat --reap "$A"
	assert_output "${A#"$T/runs/"}"
	run jq -r '.status + " " + .failure_kind + " " + (.harness_fault | tostring)' "$A/state.json"
	assert_output 'failed orphaned true'
	# ended: nothing to do (1)
	run -1 --separate-stderr phn-heartbeat --reap "$A"
	assert_stderr_line --partial "not reaped: it is not queued or running"
	# the step is claimable again, its attempt number not advanced
	run -0 phn-claim -n 2 -b "$B"
	A2=$(grep "^$(dirname "$A")/" <<<"$output")
	[ -n "$A2" ]
	[ "$A2" != "$A" ]
	run jq -r .attempt_number "$A2/meta.json"
	assert_output 1
	# usage: no batch or -0 with an attempt
	run -100 --separate-stderr phn-heartbeat --reap -b "$B" "$A"
	assert_usage_error phn-heartbeat
}
