#!/usr/bin/env bats
# tests/86-ratelimit.bats -- the store-wide rate-limit pause
# (runs/_system/pause.json, lib/pause.c) with the REAL Codex CLI against
# the mock model server's two 429 modes: a plain rate limit
# (MOCK:rate_limit, Retry-After that codex drops) and a usage limit
# (MOCK:usage_limit:S, reset S seconds on, which codex prints in its TZ as
# "try again at H:MM AM" or "try again at Mon Dth, YYYY H:MM AM").

load helper
load spawn-helper

codex_spawn_suite
PZ=runs/_system/pause.json

# secs ISO: epoch seconds of an ISO-8601 UTC time.
secs() {
	date -u -d "$1" +%s
}

# until_reset: the pause lasts until the reset time the mock sent the
# attempt's thread, which codex shows to the minute (truncated): it ends
# within a minute after.
until_reset() {
	local r u
	r=$(mock_requests "$(st .codex_thread_id)" | jq -s 'last | .resets_at')
	u=$(secs "$(pz .until)")
	[ "$u" -ge "$r" ]
	[ "$u" -le $((r + 60)) ]
}

# pz FILTER: a value of pause.json
pz() {
	jq -r "$1" "$PZ"
}

# pause_len: until - since, in whole seconds
pause_len() {
	echo $(( $(secs "$(pz .until)") - $(secs "$(pz .since)") ))
}

# expire_pause: the pause ended SECONDS ago (default 1)
expire_pause() {
	local t
	t=$(date -u -d "@$(( $(date +%s) - ${1:-1} ))" +%Y-%m-%dT%H:%M:%SZ)
	jq_edit "$PZ" ".until = \"$t\""
}

@test "rate limit (429): model_error, a pause of pause_seconds with jitter, nothing claimed until it ends" {
	one "MOCK:rate_limit:20"
	run --separate-stderr phn-spawn "$A"
	assert_failure 1
	assert_outcome failed model_error
	[ "$(st .rate_limited)" = true ]
	[ "$(st .rate_limit.reason)" = rate_limit ]
	st '.errors[0]' | grep -q '429 Too Many Requests'
	[ "$(pz .reason)" = rate_limit ]
	[ "$(pz .attempt)" = "${A#"$T"/runs/}" ]
	[ "$(pz .streak)" -eq 0 ]
	pz .message | grep -q 'last status: 429 Too Many Requests'
	[ "$(st .rate_limit.pause_until)" = "$(pz .until)" ]
	# 30 s (defaults.rate_limit.pause_seconds) times a jitter of 1..1.25
	[ "$(pause_len)" -ge 30 ]
	[ "$(pause_len)" -le 38 ]
	# Every claimer claims nothing meanwhile, and says why.
	run --separate-stderr phn-claim -b "$B" -n 1
	assert_failure 1
	[ -z "$output" ]
	assert_stderr_line --partial "rate-limit pause: claiming nothing until $(pz .until)"
	[ "$(ls "runs/$B/j/steps/s/attempts" | wc -l)" -eq 1 ]
	# The step waits for the pause in the scoreboard.
	run -3 phn-score --json -b "$B"
	echo "$output" | jq -e --arg u "$(pz .until)" '.pause.until == $u and
	    .pause.reason == "rate_limit" and .pause.remaining_seconds > 0 and
	    .batch.pause.until == $u and
	    .batch.ready[0].why == "rate_limit_retry" and
	    .batch.ready[0].not_before == $u'
	run phn-score -b "$B"
	assert_line --partial "PAUSED until $(pz .until) (rate_limit"
	run phn-score
	assert_line --partial "PAUSED until $(pz .until)"
	# Once it ends, the step is retried although max_attempts is 1: a
	# rate-limited attempt does not count.
	expire_pause
	run -3 phn-score --json
	echo "$output" | jq -e 'has("pause") | not'
	A2=$(phn-claim -b "$B" -n 1)
	[ -d "$A2" ]
	[ "$A2" != "$A" ]
	jq -e '.attempt_number == 1' "$A2/meta.json"
}

@test "usage limit (today's form): the pause lasts until codex's reset time, whatever the caller's TZ" {
	one "MOCK:usage_limit:150"
	run env TZ=America/New_York phn-spawn "$A"
	assert_failure 1
	assert_outcome failed model_error
	[ "$(pz .reason)" = usage_limit ]
	pz .message | grep -Eq 'try again at [0-9]{1,2}:[0-9]{2} [AP]M\.'
	until_reset
	[ "$(pz .reset_hint)" = "$(pz .until)" ]
	[ "$(st .rate_limit.reason)" = usage_limit ]
}

@test "usage limit on a later day (Mon Dth, YYYY form): paused until then, not capped" {
	one "MOCK:usage_limit:200000"
	run phn-spawn "$A"
	assert_failure 1
	pz .message | grep -Eq 'try again at [A-Z][a-z]{2} [0-9]{1,2}(st|nd|rd|th), [0-9]{4} [0-9]{1,2}:[0-9]{2} [AP]M\.'
	until_reset
}

@test "pauses in a row double (with jitter) up to 15 minutes; the same episode does not" {
	one "MOCK:rate_limit"
	now=$(date +%s)
	iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
	# A pause that ended 5 s ago, begun before this attempt: again, soon.
	jq -n --arg u "$(iso $((now - 5)))" --arg s "$(iso $((now - 40)))" \
	    '{until: $u, since: $s, streak: 0, reason: "rate_limit"}' >"$PZ"
	run phn-spawn "$A"
	assert_failure 1
	[ "$(pz .streak)" -eq 1 ]
	[ "$(pause_len)" -ge 60 ]
	[ "$(pause_len)" -le 76 ]
	[ "$(pz .pauses)" -eq 1 ]
	# Many in a row: capped at 900 s.
	jq_edit "$PZ" ".until = \"$(iso $((now - 5)))\" | .streak = 10"
	claim s
	run phn-spawn "$A"
	assert_failure 1
	[ "$(pz .streak)" -eq 11 ]
	[ "$(pause_len)" -eq 900 ]
	# An attempt claimed before the current pause began (the same
	# episode) leaves it as it is.
	expire_pause
	claim s
	sleep 1
	later=$((now + 3000))
	jq_edit "$PZ" ".since = \"$(iso "$(date +%s)")\" | .until = \"$(iso $later)\" | .streak = 3"
	run phn-spawn "$A"
	assert_failure 1
	[ "$(pz .streak)" -eq 3 ]
	[ "$(secs "$(pz .until)")" -eq "$later" ]
	[ "$(secs "$(st .rate_limit.pause_until)")" -eq "$later" ]
	# The later until stands against a shorter new pause too.
	expire_pause
	claim s
	jq_edit "$PZ" ".since = \"2000-01-01T00:00:00Z\" | .until = \"$(iso $later)\""
	run phn-spawn "$A"
	assert_failure 1
	[ "$(secs "$(pz .until)")" -eq "$later" ]
}

@test "two spawners rate-limited at once: one pause, the later until stands" {
	batch '[{"step_id": "a", "prompt": "MOCK:rate_limit"},
	    {"step_id": "b", "prompt": "MOCK:rate_limit"}]'
	claim a
	A1=$A
	claim b
	A2=$A
	phn-spawn "$A1" 2>/dev/null &
	p1=$!
	phn-spawn "$A2" 2>/dev/null &
	p2=$!
	wait "$p1" || :
	wait "$p2" || :
	jq -e '.rate_limited' "$A1/state.json" "$A2/state.json"
	u=$(secs "$(pz .until)")
	u1=$(secs "$(jq -r .rate_limit.pause_until "$A1/state.json")")
	u2=$(secs "$(jq -r .rate_limit.pause_until "$A2/state.json")")
	[ "$u" -ge "$u1" ]
	[ "$u" -ge "$u2" ]
	[ "$(pz .pauses)" -eq 2 ]
}

@test "other model errors pause nothing and count against max_attempts" {
	one "MOCK:http500"
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed model_error
	[ "$(st .rate_limited)" = null ]
	[ ! -e "$PZ" ]
	run phn-claim -b "$B" -n 1
	assert_failure 1
}

@test "defaults.rate_limit.pause_seconds: used, and validated" {
	jq_edit runs/_system/harness_config.json '.defaults.rate_limit.pause_seconds = 4'
	one "MOCK:rate_limit"
	run phn-spawn "$A"
	assert_failure 1
	[ "$(pause_len)" -ge 4 ]
	[ "$(pause_len)" -le 5 ]
	jq_edit runs/_system/harness_config.json '.defaults.rate_limit.pause_seconds = 0'
	run -100 --separate-stderr phn-claim -n 1
	assert_stderr_line --partial "defaults.rate_limit.pause_seconds: must be an integer >= 1"
	jq_edit runs/_system/harness_config.json '.defaults.rate_limit = 30'
	run -100 --separate-stderr phn-claim -n 1
	assert_stderr_line --partial "defaults.rate_limit: must be an object"
}

@test "pause.json unreadable: no pause (the store is not stuck)" {
	one "MOCK:ok"
	printf '{not json' >"$PZ"
	run -3 phn-score --json
	echo "$output" | jq -e 'has("pause") | not'
	A2=$(phn-claim -n 1 -b "$B" 2>/dev/null) || :
	[ -z "$A2" ]	# the step's attempt is already claimed (one)
	run phn-spawn "$A"
	assert_success
}

@test "a following claimer waits out a pause, then claims" {
	batch '[{"step_id": "s", "prompt": "MOCK:ok"}]'
	now=$(date +%s)
	jq -n --arg u "$(date -u -d "@$((now + 3))" +%Y-%m-%dT%H:%M:%SZ)" \
	    --arg s "$(date -u -d "@$now" +%Y-%m-%dT%H:%M:%SZ)" \
	    '{until: $u, since: $s, streak: 0, reason: "usage_limit"}' >"$PZ"
	run --separate-stderr phn-claim --follow -b "$B" -n 1
	assert_success
	[ -d "$output" ]
	c=$(secs "$(jq -r .claimed_at "$output/meta.json")")
	[ "$c" -ge $((now + 3)) ]
	assert_stderr_line --partial "rate-limit pause: claiming nothing until"
}

# A scripted codex (not the real one): its turn fails with $RL_MSG, or
# with RL_STDERR set, it only says that on stderr and exits 1.
rl_codex() {
	cat >"$T/rl-codex" <<'SH'
#!/bin/sh
[ "$1" = --version ] && { echo 'codex-cli 0.171.0-test'; exit 0; }
cat >/dev/null
if [ -n "${RL_STDERR:-}" ]; then
	echo "$RL_STDERR" >&2
	exit 1
fi
echo '{"type":"thread.started","thread_id":"01fa5700-0000-7000-8000-00000000beef"}'
echo '{"type":"turn.started"}'
jq -cn --arg m "$RL_MSG" '{type: "turn.failed", error: {message: $m}}'
exit 1
SH
	chmod +x "$T/rl-codex"
}

@test "classifying: a 'try again in Ns' hint, an exhausted quota, a 429 said only on stderr" {
	rl_codex
	one "x"
	now=$(date +%s)
	run env PHN_CODEX="$T/rl-codex" RL_MSG="Rate limit reached for gpt-x. Please try again in 120s." phn-spawn "$A"
	assert_failure 1
	assert_outcome failed model_error
	[ "$(pz .reason)" = rate_limit ]
	u=$(secs "$(pz .until)")
	[ "$u" -ge $((now + 119)) ]
	[ "$u" -le $(( $(date +%s) + 121)) ]

	rm "$PZ"
	claim s
	run env PHN_CODEX="$T/rl-codex" RL_MSG="You exceeded your current quota (insufficient_quota)" phn-spawn "$A"
	assert_failure 1
	[ "$(pz .reason)" = usage_limit ]
	[ "$(pause_len)" -ge 30 ]
	[ "$(pause_len)" -le 38 ]
	[ "$(pz .reset_hint)" = null ]

	rm "$PZ"
	claim s
	run env PHN_CODEX="$T/rl-codex" RL_STDERR="Error: unexpected status 429 Too Many Requests" phn-spawn "$A"
	assert_failure 1
	assert_outcome failed model_error
	[ "$(st .rate_limited)" = true ]
	st '.errors[0]' | grep -q '429 Too Many Requests'

	# an ordinary failure is not a rate limit
	rm "$PZ"
	claim s
	run env PHN_CODEX="$T/rl-codex" RL_STDERR="Error: segfault" phn-spawn "$A"
	assert_failure 1
	assert_outcome failed codex_exit
	[ ! -e "$PZ" ]
}
