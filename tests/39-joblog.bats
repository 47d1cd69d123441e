#!/usr/bin/env bats
# tests/39-joblog.bats -- phn-score --joblog: GNU parallel's joblog
# format, field by field against a joblog GNU parallel itself writes, and
# parallel --retry-failed reading ours unchanged.

load helper
load score-helper

setup() {
	mk_store '[{"job_id": "j", "working_directory": ".", "steps": [
	    {"step_id": "a", "prompt": "x"}, {"step_id": "b", "prompt": "x"},
	    {"step_id": "c", "prompt": "x"}, {"step_id": "d", "prompt": "x"}]}]'
	# a: succeeded; b: failed twice; c: running; d: never ran
	mk_attempt j a succeeded '.started_at = "2026-01-01T00:00:00.250Z" |
	    .ended_at = "2026-01-01T00:00:12.500Z" | .host = "h1"'
	printf 'hello\n' >"runs/$ATT/final.txt"
	mk_attempt j b failed '.started_at = "2026-01-01T00:01:00Z" |
	    .ended_at = "2026-01-01T00:01:01Z" | .failure_kind = "codex_exit"'
	mk_attempt j b canceled '.started_at = "2026-01-01T00:02:00Z" |
	    .ended_at = "2026-01-01T00:02:00Z"'
	mk_attempt j c running '.started_at = "2026-01-01T00:03:00Z"'
}

@test "the header and one line per ended attempt, parallel's fields" {
	run -0 phn-score --joblog
	[ "${lines[0]}" = "$(printf 'Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand')" ]
	[ "${#lines[@]}" -eq 4 ]
	r=$(printf '%s' "$T/runs")
	[ "${lines[1]}" = "$(printf '1\th1\t1767225600.250\t    12.250\t0\t6\t0\t0\tphn-force-retry --runs-root %s %s j a' "$r" "$B")" ]
	[ "$(cut -f1,3,4,6,7,8 <<<"${lines[2]}")" = "$(printf '2\t1767225660.000\t     1.000\t0\t1\t0')" ]
	[ "$(cut -f1,4,7 <<<"${lines[3]}")" = "$(printf '2\t     0.000\t4')" ]
	[ "$(cut -f2 <<<"${lines[3]}")" != "" ]
	# --batch: the same; an unknown batch is a usage error
	run -0 phn-score --joblog --batch "$B"
	[ "${#lines[@]}" -eq 4 ]
	run -100 --separate-stderr phn-score --joblog --batch nosuch
	assert_stderr_line --partial 'no such batch: nosuch'
}

@test "format parity with a joblog GNU parallel writes" {
	parallel --joblog real.log ::: true false 'sleep 0.01' >/dev/null 2>&1 || :
	phn-score --joblog >ours.log
	# the same header
	[ "$(head -1 real.log)" = "$(head -1 ours.log)" ]
	# every line: 9 tab-separated fields, each field in parallel's form
	check='NR > 1 {
	    if (NF != 9) bad = bad " nf" NR
	    if ($1 !~ /^[0-9]+$/) bad = bad " seq" NR
	    if ($2 !~ /^[^ \t]+$/) bad = bad " host" NR
	    if ($3 !~ /^[0-9]+\.[0-9][0-9][0-9]$/) bad = bad " start" NR
	    if ($4 !~ /^ *[0-9]+\.[0-9][0-9][0-9]$/ || length($4) != 10) bad = bad " rt" NR
	    if ($5 !~ /^[0-9]+$/ || $6 !~ /^[0-9]+$/) bad = bad " sr" NR
	    if ($7 !~ /^-?[0-9]+$/ || $8 !~ /^[0-9]+$/) bad = bad " ex" NR
	    n++ }
	    END { print (bad == "" ? "ok" : "bad:" bad), n }'
	run awk -F '\t' "$check" real.log
	assert_output 'ok 3'
	run awk -F '\t' "$check" ours.log
	assert_output 'ok 3'
	# parallel's own resume reader accepts ours
	run -0 parallel --resume --joblog ours.log echo ::: 1 2 3
	assert_output 3
}

@test "parallel --retry-failed reads it and force-retries the failed step only" {
	phn-score --joblog --batch "$B" >jl
	run -0 parallel --retry-failed --joblog jl
	[ "$(jq -r .steps.b.force_retry_nonce "runs/$B/j/overrides.json")" = 1 ]
	[ "$(jq -r '.steps.a // "none"' "runs/$B/j/overrides.json")" = none ]
	[ "$(jq -r '.steps.c // "none"' "runs/$B/j/overrides.json")" = none ]
	run -3 phn-score -b "$B" --steps
	[ "$(jq -r 'select(.step_id == "b") | .status' <<<"$output")" = ready ]
}

@test "a runs root that needs quoting is quoted; usage errors" {
	mkdir 'my runs'
	cp -r runs/. 'my runs/'
	run -0 phn-score --runs-root "$T/my runs" --joblog
	[ "$(cut -f9 <<<"${lines[1]}")" = "phn-force-retry --runs-root '$T/my runs' $B j a" ]
	run -100 --separate-stderr phn-score --joblog --json
	assert_usage_error phn-score
	run -100 --separate-stderr phn-score --joblog --write
	assert_usage_error phn-score
}
