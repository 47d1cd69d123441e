#!/usr/bin/env bats
# tests/52-drain.bats -- draining: phn-claim --follow on SIGHUP (or while
# runs/_system/HALT exists) claims nothing more, lets the attempts it
# claimed finish and exits 0; a second SIGHUP, or SIGTERM while draining,
# cancels them.  phn tick and phn serve do the same on SIGHUP.  The agent
# is phn-spawn --no-codex with the step's fake_sleep_seconds (a slow
# fake agent).

load helper
load score-helper

setup() {
	mk_store
}

teardown() {
	bg_cleanup
}

# lt N SLEEP: N independent steps of job j that each take SLEEP seconds.
lt() {
	jq -n --arg goal "$(goal_words 151)" --argjson n "$1" --argjson s "$2" \
	    '{batch_goal_summary: $goal, concurrency: 10,
	    jobs: [{job_id: "j", working_directory: ".",
	    steps: [range($n) | {step_id: "s\(.)", prompt: "x",
	        fake_sleep_seconds: $s}]}]}' >lt.json
	B=$(phn submit --new lt.json)
}

attempts() {
	ls -d "runs/$B/j/steps/"*/attempts/* 2>/dev/null | wc -l
}

# follow J: phn-claim --follow -j J -b $B in the background (bg): what
# it claims in claimed.txt, its stderr in claim.err, its pid in
# claim.pid, its exit status in claim.rc once it ends.
follow() {
	bg sh -c 'phn-claim --follow -j "$2" -b "$1" 2>claim.err &
	    echo $! >claim.pid; wait $!; echo $? >claim.rc' sh "$B" "$1" \
	    >claimed.txt
}

# running_is N: N steps of $B are running (phn-score --steps).
running_is() {
	[ "$(phn-score -b "$B" --steps |
	    jq -s '[.[] | select(.state_status == "running")] | length')" \
	    -eq "$1" ]
}

# drained PID: PID (a tick or serve sent SIGHUP) ends by itself with 0
# (a bounded wait: one that ticks on fails here), its 2 attempts
# succeeded.
drained() {
	local st=0
	wait_for sh -c "! kill -0 $1 2>/dev/null"
	wait "$1" || st=$?
	[ "$st" -eq 0 ]
	[ "$(attempts)" -eq 2 ]
	run -3 phn-score -b "$B" --json
	[ "$(jq -r .batch.counts.succeeded <<<"$output")" -eq 2 ]
}

@test "phn-claim --follow: SIGHUP drains; the claimed attempts finish, nothing new is claimed, exit 0" {
	lt 4 3
	follow 2
	wait_for test -s claim.pid
	# run what it claims, as xargs would
	wait_for sh -c '[ "$(wc -l <claimed.txt)" -ge 2 ]'
	for a in $(cat claimed.txt); do bg_hold phn-spawn --no-codex "$a"; done
	wait_for running_is 2
	kill -HUP "$(cat claim.pid)"
	wait_for test -s claim.rc
	[ "$(cat claim.rc)" -eq 0 ]
	grep -q 'draining: claiming nothing more; waiting for 2 claimed attempts to end' claim.err
	[ "$(wc -l <claimed.txt)" -eq 2 ]
	[ "$(attempts)" -eq 2 ]
	run -3 phn-score -b "$B" --json
	[ "$(jq -r .batch.counts.succeeded <<<"$output")" -eq 2 ]
	[ "$(jq -r .batch.counts.ready <<<"$output")" -eq 2 ]
}

@test "phn-claim --follow: a second SIGHUP cancels the claimed attempts; so does SIGTERM while draining" {
	for sig in HUP TERM; do
		rm -f claim.pid claim.rc claimed.txt
		lt 2 60
		follow 2
		wait_for sh -c '[ "$(wc -l <claimed.txt 2>/dev/null)" -ge 2 ]'
		for a in $(cat claimed.txt); do bg_hold phn-spawn --no-codex "$a"; done
		wait_for running_is 2
		kill -HUP "$(cat claim.pid)"
		wait_for grep -q draining claim.err
		[ ! -s claim.rc ]
		kill -"$sig" "$(cat claim.pid)"
		wait_for test -s claim.rc
		[ "$(cat claim.rc)" -eq 0 ]
		grep -q 'canceling 2 claimed attempts' claim.err
		run -1 phn-score -b "$B" --json
		[ "$(jq -r .batch.counts.canceled <<<"$output")" -eq 2 ]
	done
}

@test "phn-claim --follow: SIGTERM before any SIGHUP still ends it at once" {
	lt 1 60
	follow 1
	wait_for sh -c '[ "$(wc -l <claimed.txt 2>/dev/null)" -ge 1 ]'
	kill -TERM "$(cat claim.pid)"
	wait_for test -s claim.rc
	[ "$(cat claim.rc)" -eq 143 ]
}

@test "runs/_system/HALT: a following claimer drains while it exists; one started under it claims nothing" {
	lt 3 3
	follow 1
	wait_for sh -c '[ "$(wc -l <claimed.txt 2>/dev/null)" -ge 1 ]'
	bg_hold phn-spawn --no-codex "$(head -n 1 claimed.txt)"
	touch runs/_system/HALT
	wait_for test -s claim.rc
	[ "$(cat claim.rc)" -eq 0 ]
	grep -q draining claim.err
	[ "$(attempts)" -eq 1 ]
	run -0 --separate-stderr phn-claim --follow -b "$B"
	[ -z "$output" ]
	assert_stderr_line --partial 'draining: claiming nothing more; waiting for 0 claimed attempts'
	rm runs/_system/HALT
	run -0 phn-claim -b "$B" -n 1
	[ -d "$output" ]
}

@test "phn tick: SIGHUP drains (claimed attempts finish, nothing new, exit 0); a second SIGHUP cancels (130)" {
	lt 4 3
	bg_hold phn tick --no-codex --concurrency 2
	tick=$BG_PID
	wait_for running_is 2
	kill -HUP "$tick"
	drained "$tick"
	# scoreboards written at the end of the drained tick
	[ "$(jq -r .counts.succeeded "runs/$B/scoreboard.batch.json")" -eq 2 ]

	lt 2 60
	bg_hold phn tick --no-codex --concurrency 2 -b "$B"
	tick=$BG_PID
	wait_for running_is 2
	kill -HUP "$tick"
	sleep 1
	kill -0 "$tick"
	kill -HUP "$tick"
	st=0
	wait "$tick" || st=$?
	[ "$st" -eq 130 ]
	run -1 phn-score -b "$B" --json
	[ "$(jq -r .batch.counts.canceled <<<"$output")" -eq 2 ]
}

@test "phn serve: SIGHUP drains the tick under way, then stops serving (exit 0)" {
	lt 4 3
	bg_hold phn serve --no-codex --concurrency 2 --interval-seconds 0.2
	srv=$BG_PID
	wait_for running_is 2
	kill -HUP "$srv"
	drained "$srv"
}
