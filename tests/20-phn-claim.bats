#!/usr/bin/env bats
# tests/20-phn-claim.bats -- phn-claim: the runnable predicate, selectors,
# retries and backoff, limits, fairness, leases, --follow, the ready index.
#
# Attempts are "run" by tests/t-finish, which ends them exactly as an ender
# does (state.json running then terminal, current.json, and
# phn_sched_attempt_ended); -a SECS back-dates ended_at, so backoff tests
# need no sleeping.

load helper

setup() {
	phn_setup
	phn-init >/dev/null 2>&1
	CFG=runs/_system/harness_config.json
}

teardown() {
	bg_cleanup
}

# A table of jobs a, b, ... each with N independent steps s1..sN.
indep() {	# indep FILE JOBS STEPS CONCURRENCY
	mklt "$1" "{concurrency: $4, jobs: [range($2) as \$j |
	    {job_id: ([\"a\",\"b\",\"c\",\"d\",\"e\",\"f\"][\$j]),
	     working_directory: \".\",
	     steps: [range($3) as \$s | {step_id: \"s\(\$s + 1)\",
	         prompt: \"p\"}]}]}"
}

# Attempt dirs of a step, oldest first.
atts() { ls -d "runs/$1/$2/steps/$3/attempts/"* 2>/dev/null; }
natts() { atts "$@" | wc -l; }
st() { jq -r "${2:-.status}" "$1/state.json"; }
meta() { jq -r "$2" "$1/meta.json"; }
cfg() { jq_edit "$CFG" "$1"; }
hint() { mkdir -p "runs/$1/_ready" && echo '{}' >"runs/$1/_ready/$2@$3"; }
backdate() {	# backdate ATTEMPT SECONDS: it ended that long ago
	jq --arg t "$(date -u -d "-$2 seconds" +%Y-%m-%dT%H:%M:%S.000000Z)" \
	    '.ended_at = $t' "$1/state.json" >"$1/state.x" &&
	    mv "$1/state.x" "$1/state.json"
}

# -- output and exit status -------------------------------------------------

@test "claims one attempt: prints its directory, meta.json, state.json, current.json" {
	indep lt.json 1 1 1
	B=$(phn-ingest lt.json)
	run -0 --separate-stderr phn-claim
	[ -z "$stderr" ]
	d=$output
	[ "${d#/}" != "$d" ]
	[ "$d" = "$T/runs/$B/a/steps/s1/attempts/$(basename "$d")" ]
	rid=$(meta "$d" .run_id)
	[[ $rid =~ ^run_[0-9]{8}T[0-9]{6}Z_[0-9a-f]{8}$ ]]
	[ "$(basename "$d")" = "${rid:4:16}_$rid" ]
	[ "$(st "$d")" = queued ]
	[ "$(st "$d" .claimed_at)" = "$(meta "$d" .claimed_at)" ]
	[ "$(meta "$d" .batch_id)/$(meta "$d" .job_id)/$(meta "$d" .step_id)" = "$B/a/s1" ]
	[ "$(meta "$d" .runner_id)" = "runner_$(hostname | tr -c 'A-Za-z0-9.\n-' _)" ]
	[ "$(meta "$d" .attempt_number)" = 1 ]
	[ "$(meta "$d" .invocation)" = exec ]
	[ "$(meta "$d" .prompt_sha256)" = "$(jq -r '.jobs[0].steps[0].prompt_sha256' runs/$B/batch_meta.json)" ]
	[ "$(meta "$d" .policy_snapshot.sandbox)" = workspace-write ]
	[ "$(meta "$d" .timeout_seconds)" = 3600 ]
	[ "$(meta "$d" .workdir)" = "$T" ]
	[ "$(meta "$d" .workspace_mode)" = shared ]
	[ "$(meta "$d" .output_schema)" != null ]
	[ "$(jq -r ".steps.s1.latest.run_id" runs/$B/a/current.json)" = "$rid" ]
	[ "$(jq -r ".steps.s1.by_run_id[\"$rid\"].status" runs/$B/a/current.json)" = queued ]
	[ -e "runs/$B/_active/a@s1@$(basename "$d")" ]
	# meta.json is write-once: a second write would fail
	[ "$(stat -c %h "$d/meta.json")" = 1 ]
}

@test "exit 1 when nothing can be claimed, quietly" {
	run -1 --separate-stderr phn-claim
	[ -z "$output" ]
	[ -z "$stderr" ]
	indep lt.json 1 1 1
	phn-ingest lt.json >/dev/null
	run -0 phn-claim
	run -1 --separate-stderr phn-claim
	[ -z "$output" ]
	[ -z "$stderr" ]
}

@test "exit 100 on usage errors, an unknown batch, a bad runner id" {
	run -100 --separate-stderr phn-claim --bogus
	[[ $stderr == *"usage: phn-claim"* ]]
	run -100 --separate-stderr phn-claim -j 2
	[[ $stderr == *"usage: phn-claim"* ]]
	run -100 --separate-stderr phn-claim extra
	assert_usage_error phn-claim
	run -100 --separate-stderr phn-claim -n x
	assert_stderr_prefix phn-claim
	run -100 --separate-stderr phn-claim --batch nosuch
	assert_stderr_line --partial "no such batch: nosuch"
	run -100 --separate-stderr phn-claim --batch ../x
	assert_stderr_prefix phn-claim
	run -100 --separate-stderr phn-claim --runner-id 'a/b'
	assert_stderr_prefix phn-claim
	run -100 --separate-stderr phn-claim --rescan --follow
	assert_usage_error phn-claim
}

@test "exit 111 when stdout fails; the claim nobody received is ended" {
	indep lt.json 1 1 1
	B=$(phn-ingest lt.json)
	run -111 --separate-stderr sh -c 'phn-claim >/dev/full'
	assert_stderr_line --partial "unable to write standard output"
	d=$(atts $B a s1)
	[ "$(st "$d")" = failed ]
	[ "$(st "$d" .failure_kind)" = claim_expired ]
	# a harness fault: claimable again at once, still attempt 1
	run -0 phn-claim
	[ "$(meta "$output" .attempt_number)" = 1 ]
}

@test "-n N claims at most N; -0 separates with NUL; --batch restricts" {
	indep lt.json 1 4 10
	B=$(phn-ingest lt.json)
	indep lt2.json 1 1 10
	C=$(phn-ingest --new lt2.json)
	run -0 phn-claim -b "$B" -n 2
	[ "${#lines[@]}" = 2 ]
	[[ ${lines[0]} == *"/$B/"* && ${lines[1]} == *"/$B/"* ]]
	phn-claim -0 -b "$B" -n 5 >out
	[ "$(tr -cd '\0' <out | wc -c)" = 2 ]
	[ "$(tr '\0' '\n' <out | grep -c "/$B/")" = 2 ]
	[ "$(natts "$C" a s1)" = 0 ]
	run -0 phn-claim
	[[ $output == *"/$C/"* ]]
}

# -- the runnable predicate ---------------------------------------------------

@test "predicate: a succeeded step is not claimed again" {
	indep lt.json 1 1 1
	B=$(phn-ingest lt.json)
	finish "$(phn-claim)"
	hint $B a s1	# a stale hint
	run -1 phn-claim
	[ "$(natts $B a s1)" = 1 ]
	[ ! -e "runs/$B/_ready/a@s1" ]
}

@test "predicate: a step with a queued or running attempt is not claimed again" {
	indep lt.json 1 1 5
	B=$(phn-ingest lt.json)
	d=$(phn-claim)
	hint $B a s1
	run -1 phn-claim
	finish -R "$d"
	[ "$(st "$d")" = running ]
	hint $B a s1
	run -1 phn-claim
	[ "$(natts $B a s1)" = 1 ]
}

@test "predicate: an operator's forced terminal state is never claimed" {
	indep lt.json 1 1 1
	B=$(phn-ingest lt.json)
	phn-mark-failed "$B" a s1 >/dev/null
	run -1 phn-claim
	hint $B a s1
	run -1 phn-claim
}

@test "predicate: an unreadable overrides.json keeps the job's steps from running" {
	indep lt.json 1 1 1
	B=$(phn-ingest lt.json)
	echo '{not json' >"runs/$B/a/overrides.json"
	run -1 phn-claim
}

@test "predicate: a closed batch is not claimed from" {
	indep lt.json 1 2 5
	B=$(phn-ingest lt.json)
	phn-close-batch "$B" >/dev/null
	run -1 phn-claim
	hint $B a s1
	run -1 phn-claim -b "$B"
	[ "$(natts $B a s1)" = 0 ]
}

@test "retries: max_attempts counts attempts; a failed step retries until then" {
	mklt lt.json '{concurrency: 1, retries: {max_attempts: 2},
	    jobs: [{job_id: "a", working_directory: ".",
	    steps: [{step_id: "s1", prompt: "p"}]}]}'
	B=$(phn-ingest lt.json)
	finish -s failed -k codex_exit "$(phn-claim)"
	d=$(phn-claim)
	[ "$(meta "$d" .attempt_number)" = 2 ]
	finish -s failed -k codex_exit "$d"
	run -1 phn-claim
	[ "$(natts $B a s1)" = 2 ]
}

@test "retries: a step's retry_policy replaces the batch's; default retry_on is failed" {
	mklt lt.json '{concurrency: 5, retries: {max_attempts: 1}, jobs: [
	    {job_id: "a", working_directory: ".", steps: [
	      {step_id: "s1", prompt: "p", retry_policy: {max_attempts: 3}},
	      {step_id: "s2", prompt: "p", retry_policy: {max_attempts: 3}},
	      {step_id: "s3", prompt: "p"}]}]}'
	B=$(phn-ingest lt.json)
	for d in $(phn-claim -n 3); do
		case $d in
		*/s1/*) finish -s failed -k codex_exit "$d" ;;
		*/s2/*) finish -s needs_attention -k invalid_report "$d" ;;
		*/s3/*) finish -s failed "$d" ;;
		esac
	done
	run -0 phn-claim -n 3
	[ "${#lines[@]}" = 1 ]
	[[ $output == */a/steps/s1/* ]]
}

@test "retries: retry_on_statuses names statuses and failure kinds" {
	mklt lt.json '{concurrency: 9, jobs: [{job_id: "a", working_directory: ".",
	    steps: [
	      {step_id: "na", prompt: "p", retry_policy: {max_attempts: 2,
	        retry_on_statuses: ["needs_attention"]}},
	      {step_id: "to", prompt: "p", retry_policy: {max_attempts: 2,
	        retry_on_statuses: ["timeout"]}},
	      {step_id: "ce", prompt: "p", retry_policy: {max_attempts: 2,
	        retry_on_statuses: ["timeout"]}},
	      {step_id: "ca", prompt: "p", retry_policy: {max_attempts: 2,
	        retry_on_statuses: ["canceled"]}}]}]}'
	B=$(phn-ingest lt.json)
	for d in $(phn-claim -n 4); do
		case $d in
		*/na/*) finish -s needs_attention -k missing_artifacts "$d" ;;
		*/to/*) finish -s failed -k timeout "$d" ;;
		*/ce/*) finish -s failed -k codex_exit "$d" ;;
		*/ca/*) finish -s canceled -k canceled "$d" ;;
		esac
	done
	run -0 phn-claim -n 9
	[ "${#lines[@]}" = 3 ]
	[[ $output == */na/* && $output == */to/* && $output == */ca/* ]]
	[[ $output != */ce/* ]]
}

# Steps a/s1..a/sN (default 1; up to 9 attempts each) with backoff_seconds
# BACKOFF (JSON); their first attempts are claimed: all in ds, s1's in d.
backoff_batch() {	# backoff_batch BACKOFF [N]
	mklt lt.json "{concurrency: ${2:-1}, jobs: [{job_id: \"a\",
	    working_directory: \".\", steps: [range(${2:-1}) as \$i |
	    {step_id: \"s\(\$i + 1)\", prompt: \"p\", retry_policy:
	    {max_attempts: 9, backoff_seconds: $1}}]}]}"
	B=$(phn-ingest lt.json)
	ds=$(phn-claim -n "${2:-1}")
	d=$(atts $B a s1)
}

# The not_before of a step's ready entry (default s1); the whole seconds
# from attempt D's ended_at to its step's.
not_before() { jq .not_before "runs/$B/_ready/a@${1:-s1}"; }
delay_of() {	# delay_of D
	local nb
	nb=$(not_before "$(meta "$1" .step_id)")
	echo $(( ${nb%.*} - $(date -d "$(st "$1" .ended_at)" +%s) ))
}

# Attempt D ended SECONDS ago: the retry is claimed (its directory in output).
retry_after() {	# retry_after D SECONDS
	backdate "$1" "$2"
	hint $B a s1
	run -0 phn-claim
}

@test "backoff: a fixed backoff_seconds delays the retry from ended_at" {
	backoff_batch 100
	finish -s failed -a 50 "$d"
	run -1 phn-claim
	delay=$(delay_of "$d")
	[ "$delay" -ge 99 ]
	[ "$delay" -le 101 ]
	retry_after "$d" 101
	[ "$(meta "$output" .attempt_number)" = 2 ]
}

@test "backoff: exponential {base, factor, max} grows per attempt and is capped" {
	backoff_batch '{base: 10, factor: 3, max: 50}'
	# delay after attempt n: 10, 30, then 90 capped to 50
	for pair in "5 11" "20 31" "49 51"; do
		set -- $pair
		finish -s failed -a "$1" "$d"
		run -1 phn-claim
		retry_after "$d" "$2"
		d=$output
	done
	[ "$(natts $B a s1)" = 4 ]
	[ "$(meta "$d" .attempt_number)" = 4 ]
}

@test "backoff: jitter is deterministic and within [1-j, 1+j] of the delay" {
	backoff_batch '{base: 100, jitter: 0.5}' 20
	for a in $ds; do finish -s failed -a 40 "$a"; done
	run -1 phn-claim
	# 20 attempts: all delays within [50, 150], on both sides of 100
	# (all on one side by chance: 2 in a million)
	for a in $ds; do delay_of "$a"; done | sort -n >delays
	[ "$(wc -l <delays)" -eq 20 ]
	[ "$(head -1 delays)" -ge 49 ]
	[ "$(head -1 delays)" -lt 100 ]
	[ "$(tail -1 delays)" -gt 100 ]
	[ "$(tail -1 delays)" -le 151 ]
	nb=$(not_before)
	hint $B a s1
	run -1 phn-claim
	[ "$(not_before)" = "$nb" ]
	retry_after "$d" 160
	[ "$(meta "$output" .attempt_number)" = 2 ]
}

@test "depends_on: a step waits for its dependency in the same job to succeed" {
	mklt lt.json '{concurrency: 5, jobs: [{job_id: "a", working_directory: ".",
	    steps: [{step_id: "s1", prompt: "p"},
	            {step_id: "s2", prompt: "p", depends_on: ["s1"]}]}]}'
	B=$(phn-ingest lt.json)
	d=$(phn-claim)
	[[ $d == */s1/* ]]
	run -1 phn-claim
	finish "$d"
	run -0 phn-claim
	[[ $output == */a/steps/s2/* ]]
}

@test "depends_on: a failed dependency blocks its dependents for good" {
	mklt lt.json '{concurrency: 5, jobs: [{job_id: "a", working_directory: ".",
	    steps: [{step_id: "s1", prompt: "p"},
	            {step_id: "s2", prompt: "p", depends_on: ["s1"]}]}]}'
	B=$(phn-ingest lt.json)
	finish -s failed "$(phn-claim)"
	run -1 phn-claim
	hint $B a s2
	run -1 phn-claim
	[ "$(natts $B a s2)" = 0 ]
}

@test "depends_on: JOB/STEP waits for a step of another job" {
	mklt lt.json '{concurrency: 5, jobs: [
	    {job_id: "a", working_directory: ".", steps: [{step_id: "s1", prompt: "p"}]},
	    {job_id: "b", working_directory: ".", steps: [{step_id: "t1", prompt: "p",
	      depends_on: ["a/s1"]}]}]}'
	B=$(phn-ingest lt.json)
	d=$(phn-claim)
	run -1 phn-claim
	finish "$d"
	run -0 phn-claim
	[[ $output == */b/steps/t1/* ]]
}

resume_lt() {	# resume_lt SELECTOR [RUN_ID]
	mklt lt.json "{concurrency: 5, jobs: [{job_id: \"a\", working_directory: \".\",
	    steps: [{step_id: \"s1\", prompt: \"p\", retry_policy: {max_attempts: 2}},
	      {step_id: \"s2\", prompt: \"p\", resume_from: ({step_id: \"s1\",
	        selector: \"$1\"} + (if \"${2:-}\" == \"\" then {} else
	        {run_id: \"${2:-}\"} end))}]}]}"
}

@test "resume_from latest_successful: the succeeded source, its thread id, codex_home required" {
	resume_lt latest_successful
	B=$(phn-ingest lt.json)
	d1=$(phn-claim)
	finish -s failed -H -t thread-1 "$d1"
	d2=$(phn-claim)
	[[ $d2 == */s1/* ]]
	run -1 phn-claim
	finish -t thread-2 "$d2"	# succeeded, but no codex_home
	run -1 phn-claim
	mkdir "$d2/codex_home"
	hint $B a s2
	run -0 phn-claim
	d3=$output
	[ "$(meta "$d3" .invocation)" = resume ]
	[ "$(meta "$d3" .resume_from.selector)" = latest_successful ]
	[ "$(meta "$d3" .resume_from.step_id)" = s1 ]
	[ "$(meta "$d3" .resume_from.job_id)" = a ]
	[ "$(meta "$d3" .resume_from.selected_run_id)" = "$(meta "$d2" .run_id)" ]
	[ "$(meta "$d3" .resume_from.source_attempt_dir)" = "${d2#$T/runs/}" ]
	[ "$(meta "$d3" .codex_thread_id)" = thread-2 ]
}

@test "resume_from latest: the newest finished source attempt, failed too" {
	resume_lt latest
	B=$(phn-ingest lt.json)
	d1=$(phn-claim)
	finish -R -H "$d1"
	run -1 phn-claim	# the source is still running
	finish -s needs_attention -k invalid_report -H -t th "$d1"
	run -0 phn-claim
	[ "$(meta "$output" .resume_from.selected_run_id)" = "$(meta "$d1" .run_id)" ]
	[ "$(meta "$output" .codex_thread_id)" = th ]
}

@test "resume_from run_id: that attempt, once finished" {
	rid=run_20260101T000000Z_0badcafe
	resume_lt run_id "$rid"
	B=$(phn-ingest lt.json)
	src=runs/$B/a/steps/s1/attempts/20260101T000000Z_$rid
	mkdir -p "$src/codex_home"
	now=$(date -u +%Y-%m-%dT%H:%M:%S.000000Z)
	echo "{\"status\": \"running\", \"started_at\": \"$now\",
	    \"last_heartbeat_at\": \"$now\"}" >"$src/state.json"
	phn-claim --rescan >/dev/null
	run -1 phn-claim -n 9
	echo '{"status": "failed", "ended_at": "2026-01-01T00:00:01Z"}' >"$src/state.json"
	phn-claim --rescan >/dev/null
	run -0 phn-claim -n 9
	[[ $output == */s2/* ]]
	d=$(atts $B a s2)
	[ "$(meta "$d" .resume_from.selected_run_id)" = "$rid" ]
	[ "$(meta "$d" .resume_from.selector)" = run_id ]
	[ "$(meta "$d" .resume_from.source_attempt_dir)" = "${src#runs/}" ]
}

@test "resume_from run_id: a run id with no attempt never resolves" {
	resume_lt run_id run_20260101T000000Z_00000000
	B=$(phn-ingest lt.json)
	finish -H "$(phn-claim)"
	run -1 phn-claim
	[ "$(natts $B a s2)" = 0 ]
}

@test "retry mode resume_last_attempt resumes the previous attempt's session" {
	mklt lt.json '{concurrency: 1, jobs: [{job_id: "a", working_directory: ".",
	    steps: [{step_id: "s1", prompt: "p", retry_policy: {max_attempts: 2,
	      mode: "resume_last_attempt"}}]}]}'
	B=$(phn-ingest lt.json)
	d1=$(phn-claim)
	[ "$(meta "$d1" .invocation)" = exec ]
	finish -s failed -H -t th1 "$d1"
	d2=$(phn-claim)
	[ "$(meta "$d2" .invocation)" = resume ]
	[ "$(meta "$d2" .retry_resume_from.run_id)" = "$(meta "$d1" .run_id)" ]
	[ "$(meta "$d2" .retry_resume_from.attempt_dir)" = "${d1#$T/runs/}" ]
	[ "$(meta "$d2" .codex_thread_id)" = th1 ]
}

# -- leases and harness faults --------------------------------------------------

@test "lease: a claim not picked up in claim_lease_seconds is expired by the next claimer" {
	cfg '.defaults.claim_lease_seconds = 1'
	indep lt.json 1 1 1
	B=$(phn-ingest lt.json)
	d1=$(phn-claim)
	run -1 phn-claim
	sleep 2
	run -0 phn-claim
	d2=$output
	[ "$(st "$d1")" = failed ]
	[ "$(st "$d1" .failure_kind)" = claim_expired ]
	[ "$(st "$d1" .harness_fault)" = true ]
	[ "$(jq -r ".steps.s1.by_run_id[\"$(meta "$d1" .run_id)\"].status" runs/$B/a/current.json)" = failed ]
	[ "$(meta "$d2" .attempt_number)" = 1 ]	# faults do not count
}

@test "lease: a claim whose spawn.lock is held does not expire" {
	cfg '.defaults.claim_lease_seconds = 1'
	indep lt.json 1 1 1
	B=$(phn-ingest lt.json)
	d1=$(phn-claim)
	bg flock "$d1/spawn.lock" sleep 4
	sleep 2
	run -1 phn-claim
	[ "$(st "$d1")" = queued ]
	wait "$BG_PID"
}

@test "harness faults: at most limits.max_harness_retries retries in a row" {
	cfg '.limits.max_harness_retries = 2'
	indep lt.json 1 1 1
	B=$(phn-ingest lt.json)
	finish -s failed -k orphaned -F "$(phn-claim)"
	finish -s failed -k claim_expired -F "$(phn-claim)"
	d=$(phn-claim)
	[ "$(meta "$d" .attempt_number)" = 1 ]
	finish -s failed -k orphaned -F "$d"
	run -1 phn-claim	# three faults in a row: 1 + 2 retries used
	[ "$(natts $B a s1)" = 3 ]
}

@test "a claimer that died while creating an attempt: its dir is expired and the step claimed again" {
	indep lt.json 1 1 1
	B=$(phn-ingest lt.json)
	mkdir -p "runs/$B/a/steps/s1/attempts/20260101T000000Z_run_20260101T000000Z_00000001"
	hint $B a s1
	run -0 phn-claim
	[ "$(st "runs/$B/a/steps/s1/attempts/20260101T000000Z_run_20260101T000000Z_00000001")" = failed ]
	[ "$(natts $B a s1)" = 2 ]
}

# -- limits -----------------------------------------------------------------------

@test "limits: batch concurrency counts queued and running attempts" {
	indep lt.json 1 5 2
	B=$(phn-ingest lt.json)
	run -0 phn-claim -n 5
	[ "${#lines[@]}" = 2 ]
	d=${lines[0]}
	run -1 phn-claim
	finish -R "$d"
	run -1 phn-claim
	finish "$d"
	run -0 phn-claim -n 5
	[ "${#lines[@]}" = 1 ]
}

@test "limits: a batch without concurrency runs one at a time; --concurrency overrides" {
	mklt lt.json '{jobs: [{job_id: "a", working_directory: ".",
	    steps: [{step_id: "s1", prompt: "p"}, {step_id: "s2", prompt: "p"},
	    {step_id: "s3", prompt: "p"}]}]}'
	B=$(phn-ingest lt.json)
	run -0 phn-claim -n 5
	[ "${#lines[@]}" = 1 ]
	run -0 phn-claim -n 5 --concurrency 3
	[ "${#lines[@]}" = 2 ]
}

@test "limits: a leaked active entry (crashed ender) does not hold a slot" {
	indep lt.json 1 2 1
	B=$(phn-ingest lt.json)
	d=$(phn-claim)
	finish -R "$d"
	# the ender crashed after state.json: no phn_sched_attempt_ended
	jq '.status = "succeeded" | .ended_at = "2026-01-01T00:00:00Z"' \
	    "$d/state.json" >x && mv x "$d/state.json"
	[ "$(ls runs/$B/_active | wc -l)" = 1 ]
	run -0 phn-claim
	[ "$(ls runs/$B/_active | wc -l)" = 1 ]
	[ "$(jq -r ".steps.$(meta "$d" .step_id).latest.status" runs/$B/a/current.json)" = succeeded ]
}

@test "limits: runner capacity counts this runner's attempts across batches" {
	cfg '.defaults.runner_capacity = 1'
	indep lt.json 1 2 5
	B=$(phn-ingest lt.json)
	indep lt2.json 1 1 5
	C=$(phn-ingest --new lt2.json)
	run -0 phn-claim -n 5
	[ "${#lines[@]}" = 1 ]
	d=${lines[0]}
	run -1 phn-claim
	run -0 phn-claim --runner-id other -n 5
	[ "${#lines[@]}" = 1 ]
	finish "$d"
	run -0 phn-claim -n 5
	[ "${#lines[@]}" = 1 ]
}

@test "limits: a drained runner claims nothing; drain false does not drain" {
	indep lt.json 1 1 5
	B=$(phn-ingest lt.json)
	mkdir -p runners/r1
	echo '{"drain": true}' >runners/r1/drain.json
	run -1 phn-claim --runner-id r1
	echo '{"drain": false}' >runners/r1/drain.json
	run -0 phn-claim --runner-id r1
}

@test "limits: per_workdir_concurrency holds across batches and processes" {
	mkdir w1 w2
	cfg ".limits.per_workdir_concurrency = {\"$T/w1\": 1}"
	mklt lt.json '{concurrency: 9, jobs: [
	    {job_id: "a", working_directory: "w1", steps: [{step_id: "s1", prompt: "p"}]},
	    {job_id: "b", working_directory: "w1", steps: [{step_id: "s1", prompt: "p"}]},
	    {job_id: "c", working_directory: "w2", steps: [{step_id: "s1", prompt: "p"},
	      {step_id: "s2", prompt: "p"}]}]}'
	B=$(phn-ingest lt.json)
	C=$(phn-ingest --new lt.json)
	run -0 phn-claim -n 9 -b "$B"
	[ "${#lines[@]}" = 3 ]
	[ "$(printf '%s\n' "${lines[@]}" | grep -c '/[ab]/steps/')" = 1 ]
	d=$(printf '%s\n' "${lines[@]}" | grep '/[ab]/steps/')
	run -0 phn-claim -n 9 -b "$C"
	[ "$(printf '%s\n' "${lines[@]}" | grep -c '/[ab]/steps/')" = 0 ]
	finish "$d"
	run -0 phn-claim -n 9
	[ "$(printf '%s\n' "${lines[@]}" | grep -c '/[ab]/steps/')" = 1 ]
}

# A batch (B) whose step s2 resumes s1 with runner_affinity AFFINITY;
# s1 has run on runner rA.
affinity_batch() {	# affinity_batch AFFINITY
	mklt lt.json "{concurrency: 5, jobs: [{job_id: \"a\", working_directory: \".\",
	    steps: [{step_id: \"s1\", prompt: \"p\"},
	      {step_id: \"s2\", prompt: \"p\", resume_from: {step_id: \"s1\"},
	       runner_affinity: \"$1\"}]}]}"
	B=$(phn-ingest lt.json)
	finish -H "$(phn-claim --runner-id rA)"
}

@test "affinity: pin_resume_source runs a resume step on the source's runner only" {
	affinity_batch pin_resume_source
	run -1 phn-claim --runner-id rB
	run -0 phn-claim --runner-id rA
	[ "$(meta "$output" .runner_id)" = rA ]
}

@test "affinity: prefer_resume_source lets another runner take it after the grace" {
	cfg '.defaults.runner_affinity.prefer_grace_seconds = 1'
	affinity_batch prefer_resume_source
	run -1 phn-claim --runner-id rB
	sleep 1.5
	run -0 phn-claim --runner-id rB
	[ "$(meta "$output" .runner_id)" = rB ]
}

@test "affinity: none lets any runner take a resume step at once" {
	affinity_batch none
	run -0 phn-claim --runner-id rB
	[[ $output == */a/steps/s2/* ]]
	[ "$(meta "$output" .runner_id)" = rB ]
}

@test "affinity: without a shared filesystem even none is pinned to the source" {
	cfg '.defaults.runner_pool.shared_filesystem = false'
	affinity_batch none
	run -1 phn-claim --runner-id rB
	run -0 phn-claim --runner-id rA
}

# -- fairness -----------------------------------------------------------------------

@test "fairness: batches are served round-robin" {
	indep lt.json 1 3 9
	B=$(phn-ingest lt.json)
	C=$(phn-ingest --new lt.json)
	run -0 phn-claim -n 6
	[ "${#lines[@]}" = 6 ]
	for i in 0 2 4; do
	b1=$(echo "${lines[i]}" | sed 's|.*/runs/\([^/]*\)/.*|\1|')
		b2=$(echo "${lines[i+1]}" | sed 's|.*/runs/\([^/]*\)/.*|\1|')
		[ "$b1" != "$b2" ]
	done
}

@test "fairness: jobs within a batch are served round-robin, across invocations too" {
	indep lt.json 3 3 20
	B=$(phn-ingest lt.json)
	run -0 phn-claim -n 6
	jobs=$(printf '%s\n' "${lines[@]}" | sed 's|.*/runs/[^/]*/\([^/]*\)/steps/.*|\1|' | tr -d '\n')
	[ "$jobs" = abcabc ]
	order=
	for i in 1 2 3; do
		order=$order$(phn-claim | sed 's|.*/runs/[^/]*/\([^/]*\)/steps/.*|\1|')
	done
	[ "$order" = abc ]
}

# -- --follow ----------------------------------------------------------------------

# Wait until the claims file (a follower's output) has N lines.
claims_reach() {	# claims_reach N
	wait_for eval "[ \"\$(wc -l <claims)\" -ge $1 ]"
}

# A batch B of one job with N steps at concurrency 1, served by a
# phn-claim --follow in the background (pid), once it claimed the first.
follow_batch() {	# follow_batch N
	indep lt.json 1 "$1" 1
	B=$(phn-ingest lt.json)
	bg phn-claim --follow >claims
	pid=$BG_PID
	claims_reach 1
}

@test "follow: claims as dependencies succeed and exits 0 when all is done" {
	mklt lt.json '{concurrency: 3, jobs: [range(4) as $j | {job_id: "j\($j)",
	    working_directory: ".", steps: [range(3) as $s | {step_id: "s\($s)",
	    prompt: "p"} + (if $s > 0 then {depends_on: ["s\($s - 1)"]} else {} end)]}]}'
	B=$(phn-ingest lt.json)
	run -0 bash -c 'phn-claim --follow -j 2 | "$0" -' "$T_FINISH"
	[ "$(ls -d runs/$B/*/steps/*/attempts/* | wc -l)" = 12 ]
	for d in runs/$B/*/steps/*/attempts/*; do [ "$(st "$d")" = succeeded ]; done
}

@test "follow: waits out a backoff, then claims the retry" {
	mklt lt.json '{concurrency: 1, jobs: [{job_id: "a", working_directory: ".",
	    steps: [{step_id: "s1", prompt: "p", retry_policy: {max_attempts: 2,
	      backoff_seconds: 1}}]}]}'
	B=$(phn-ingest lt.json)
	run -0 bash -c 'n=0; phn-claim --follow | while read -r d; do
		n=$((n + 1)); if [ $n = 1 ]; then "$0" -s failed "$d";
		else "$0" "$d"; fi; done' "$T_FINISH"
	[ "$(natts $B a s1)" = 2 ]
	[ "$(st "$(atts $B a s1 | tail -1)")" = succeeded ]
}

@test "follow: a batch submitted while it runs is served without a restart" {
	follow_batch 1
	[ "$(wc -l <claims)" = 1 ]
	C=$(phn-ingest --new lt.json)
	claims_reach 2
	[ "$(wc -l <claims)" = 2 ]
	grep -q "/$C/" claims
	finish $(cat claims)
	wait $pid
}

@test "follow: never spins while it waits" {
	follow_batch 2
	sleep 3	# at its concurrency limit: it must sleep
	ticks=$(awk '{print $14 + $15}' /proc/$pid/stat)
	hz=$(getconf CLK_TCK)
	# a spinning loop would burn ~3 s of CPU; allow a tenth of that
	[ "$ticks" -lt $(( hz * 3 / 10 )) ]
	finish "$(cat claims)"
	claims_reach 2
	finish "$(tail -1 claims)"
	wait $pid
}

@test "follow: exits 0 at once when there is nothing at all; waits for others' attempts" {
	run -0 phn-claim --follow
	indep lt.json 1 2 1
	B=$(phn-ingest lt.json)
	d=$(phn-claim)
	bg phn-claim --follow >claims
	pid=$BG_PID
	sleep 1
	kill -0 $pid	# still waiting: an attempt is queued
	finish "$d"
	claims_reach 1
	finish "$(cat claims)"
	wait $pid
}

# -- the ready index -------------------------------------------------------------

@test "index: built on first sight; --rescan rebuilds it from the attempts" {
	indep lt.json 2 2 9
	B=$(phn-ingest lt.json)
	[ ! -e "runs/$B/_sched" ]
	finish "$(phn-claim -b "$B")"
	[ -e "runs/$B/_sched/jobs/a.json" ]
	d=$(phn-claim)
	rm -rf "runs/$B/_ready" "runs/$B/_active" "runs/$B/_sched"
	run -0 --separate-stderr phn-claim --rescan
	assert_json_lines
	[ "$(echo "$output" | jq -r .ready)" = 2 ]
	[ "$(echo "$output" | jq -r .active)" = 1 ]
	[ -e "runs/$B/_active/$(meta "$d" .job_id)@$(meta "$d" .step_id)@$(basename "$d")" ]
	run -0 phn-claim -n 9
	[ "${#lines[@]}" = 2 ]
}

@test "index: a missing ready index is rebuilt, with backoff times" {
	mklt lt.json '{concurrency: 2, jobs: [{job_id: "a", working_directory: ".",
	    steps: [{step_id: "s1", prompt: "p", retry_policy: {max_attempts: 2,
	      backoff_seconds: 500}}, {step_id: "s2", prompt: "p"}]}]}'
	B=$(phn-ingest lt.json)
	finish -s failed "$(phn-claim)"
	rm "runs/$B/_sched/ready.json"
	rm -rf "runs/$B/_ready"
	run -0 phn-claim
	[[ $output == */s2/* ]]
	[ "$(jq '.not_before > 0' "runs/$B/_ready/a@s1")" = true ]
}

@test "index: a deleted ready directory or a damaged job index is repaired by the next claimer" {
	indep lt.json 2 2 9
	B=$(phn-ingest lt.json)
	finish "$(phn-claim)"
	rm -rf "runs/$B/_ready"
	run -0 phn-claim
	[ -d "runs/$B/_ready" ]
	echo '{broken' >"runs/$B/_sched/jobs/b.json"
	echo '{}' >"runs/$B/_ready/b@s2"
	run -0 phn-claim -n 9
	[ "${#lines[@]}" -ge 1 ]
	jq -e .steps.s2 "runs/$B/_sched/jobs/b.json" >/dev/null
	[ "$(ls -d runs/$B/*/steps/*/attempts/* | wc -l)" = 4 ]
}

@test "index: a one-shot claim finds a runnable step among many stale entries" {
	mklt lt.json '{concurrency: 5, jobs: ([{job_id: "root",
	    working_directory: ".", steps: [{step_id: "s0", prompt: "p"}]}] +
	    [range(20) as $j | {job_id: "j\($j)", working_directory: ".",
	    steps: [range(100) as $s | {step_id: "s\($s)", prompt: "p",
	    depends_on: ["root/s0"]}]}])}'
	B=$(phn-ingest lt.json)
	phn-claim --rescan >/dev/null
	for j in $(seq 0 19); do
		for s in $(seq 0 99); do : >"runs/$B/_ready/j$j@s$s"; done
	done
	[ "$(ls "runs/$B/_ready" | wc -l)" = 2001 ]
	run -0 phn-claim
	[[ $output == */root/steps/s0/* ]]
	# the stale entries it met on the way were dropped
	[ "$(ls "runs/$B/_ready" | wc -l)" -lt 2001 ]
}

@test "current.json: a corrupt one is rebuilt from the attempt directories" {
	indep lt.json 1 2 9
	B=$(phn-ingest lt.json)
	d1=$(phn-claim)
	finish "$d1"
	echo 'garbage' >"runs/$B/a/current.json"
	d2=$(phn-claim)
	jq -e . "runs/$B/a/current.json" >/dev/null
	[ "$(jq -r '.steps.s1.latest_successful.run_id' runs/$B/a/current.json)" = "$(meta "$d1" .run_id)" ]
	[ "$(jq -r '.steps.s2.latest.run_id' runs/$B/a/current.json)" = "$(meta "$d2" .run_id)" ]
}

@test "two claimers on one store never claim one step twice" {
	indep lt.json 3 10 100
	B=$(phn-ingest lt.json)
	for i in 1 2 3 4; do phn-claim -n 30 >"c$i" & done
	wait
	[ "$(cat c1 c2 c3 c4 | wc -l)" = 30 ]
	[ "$(cat c1 c2 c3 c4 | sort -u | wc -l)" = 30 ]
	[ "$(ls -d runs/$B/*/steps/*/attempts/* | wc -l)" = 30 ]
}

@test "phn-claim(1) EXAMPLES run as written (phn-spawn stubbed by t-finish)" {
	mkdir stub
	printf '#!/bin/sh\nexec "%s" "$@"\n' "$T_FINISH" >stub/phn-spawn
	chmod +x stub/phn-spawn
	PATH=$T/stub:$PATH
	mklt lt.json '{concurrency: 4, jobs: [range(3) as $j | {working_directory: ".",
	    steps: [{prompt: "p"}, {prompt: "p", depends_on: ["step1"]}]}]}'
	batch=$(phn-ingest lt.json)
	phn-spawn "$(phn-claim)"
	phn-claim --follow -j 4 | xargs -P 4 -n 1 phn-spawn
	[ "$(cat runs/$batch/*/steps/*/attempts/*/state.json | jq -r .status |
	    sort | uniq -c | awk '{print $1, $2}')" = "6 succeeded" ]
	batch=$(phn-ingest --new lt.json)
	phn-claim -0 -f -j 8 -b "$batch" -i gpu1 | xargs -0 -P 8 -n 1 phn-spawn
	[ "$(cat runs/$batch/*/steps/*/attempts/*/meta.json | jq -r .runner_id |
	    sort -u)" = gpu1 ]
	run -0 bash -c "phn-claim --rescan | jq -c '{batch_id, ready, active}'"
	[ "${#lines[@]}" = 2 ]
	[[ ${lines[0]} == '{"batch_id":"batch_'*'","ready":0,"active":0}' ]]
}
