#!/usr/bin/env bats
# tests/60-phn-api.bats -- phn-api's routes, config and auth, with curl
# against a real store on 127.0.0.1.  Steps run through the fake codex
# (tests/fake-codex), whose runs FAKE_CODEX_LOG records.

load api-helper

setup() {
	phn_setup
	API_PID=
	export PHN_CODEX=$PHN_REPO/tests/fake-codex/codex
	export FAKE_CODEX_LOG=$T/codex.log
	write_lt lt.json
	jq_edit lt.json '.jobs[0].job_id = "j" | .jobs[0].steps[0].step_id = "s"'
}

teardown() {
	stop_api
	bg_cleanup
}

# Submit lt.json (or $1); B is the batch id.
submit() {
	run -0 curl -s -w '\n%{http_code}' --data-binary @"${1:-lt.json}" \
	    "$URL/v1/batches"
	[ "${lines[-1]}" = 200 ] || fail "submit: $output"
	B=$(jq -r .batch_id <<<"${lines[0]}")
}

# tick_running SECONDS: the API up, lt.json's step a fake codex sleeping
# SECONDS, submitted and ticked by POST /v1/tick in the background (its
# pid in tick, its answer in tick.out) until the step runs.
tick_running() {
	api_conf
	start_api
	jq_edit lt.json ".jobs[0].steps[0].prompt = \"FAKE:sleep:$1\""
	submit
	bg curl -s -X POST "$URL/v1/tick" >tick.out
	tick=$BG_PID
	wait_for sh -c "phn-score -b $B --steps | grep -q '\"state_status\":\"running\"'"
}

@test "health answers without auth; the start line is JSON" {
	api_conf
	start_api
	run -0 curl -sf "$URL/health"
	[ "$(jq -r .ok <<<"$output")" = true ]
	[ "$(jq -r .port "$T/api.out")" = "$(cat "$T/api.port")" ]
	[ "$(jq -r .auth "$T/api.out")" = none ]
	[ "$(jq -r .auto_tick "$T/api.out")" = false ]
}

@test "a store whose api_mode is not enabled is served only with --enable" {
	phn-init >/dev/null
	run -100 --separate-stderr phn-api --root "$T" --port 0
	assert_stderr_line "phn-api: interfaces.api_mode.enabled is not true in $T/runs/_system/harness_config.json: set it, or pass --enable"
	start_api --enable
	[ "$(code "$URL/health")" = 200 ]
}

@test "interfaces.api_mode is validated: every bad key is named" {
	api_conf '{"auth_mode": "magic", "auto_tick": 1, "tick_interval_seconds": 0.01, "allowed_roots": ["rel"], "max_body_bytes": 0, "max_connections_per_ip": -1, "max_pending_requests": "x"}'
	run -100 --separate-stderr phn-api --root "$T" --port 0
	assert_stderr_line --partial 'interfaces.api_mode.auth_mode: must be "none", "local_trust" or "token" (is "magic")'
	assert_stderr_line --partial 'interfaces.api_mode.auto_tick: must be true or false (is an integer)'
	assert_stderr_line --partial 'interfaces.api_mode.tick_interval_seconds: must be a number of seconds in [0.05, 86400] (is 0.01)'
	assert_stderr_line --partial 'interfaces.api_mode.allowed_roots[0]: must be an absolute directory path (is "rel")'
	assert_stderr_line --partial 'interfaces.api_mode.max_body_bytes: must be an integer >= 1 (is 0)'
	assert_stderr_line --partial 'interfaces.api_mode.max_connections_per_ip: must be an integer >= 1 (is -1)'
	assert_stderr_line --partial 'interfaces.api_mode.max_pending_requests: must be an integer >= 0 (is "x")'
	api_conf '{"enabled": "yes", "max_body_bytes": 67108865}'
	run -100 --separate-stderr phn-api --root "$T" --port 0
	assert_stderr_line --partial 'interfaces.api_mode.enabled: must be true or false (is a string)'
	assert_stderr_line --partial 'interfaces.api_mode.max_body_bytes: at most 67108864'
}

@test "POST /v1/batches: batch id and job ids; GET the batch; invalid is 400 with every error" {
	api_conf
	start_api
	submit
	[[ $B =~ ^batch_[0-9]{8}T[0-9]{6}Z_[0-9a-f]{8}$ ]]
	[ "$(jq -c .accepted_job_ids <<<"${lines[0]}")" = '["j"]' ]
	[ -f "runs/$B/batch_meta.json" ]
	run -0 curl -s "$URL/v1/batches/$B"
	[ "$(jq -r .batch_id <<<"$output")" = "$B" ]
	jq '.concurrency = 0 | del(.jobs)' lt.json >bad.json
	run -0 curl -s -w '\n%{http_code}' --data-binary @bad.json "$URL/v1/batches"
	[ "${lines[-1]}" = 400 ]
	[ "$(jq '.errors | length' <<<"${lines[0]}")" -eq 2 ]
	jq -e '.errors[] | select(test("concurrency: must be an integer >= 1"))' <<<"${lines[0]}"
	jq -e '.error | test("concurrency|jobs")' <<<"${lines[0]}"
	[ "$(code -X POST "$URL/v1/batches")" = 400 ]
	[ "$(find runs -mindepth 1 -maxdepth 1 -name 'batch_*' | wc -l)" -eq 1 ]
}

@test "an HTTP table: relative paths from the store's directory, workdirs under allowed_roots, refs under the workdir" {
	api_conf
	start_api
	mkdir -p w sub
	echo "Do it." >w/p.txt
	echo "Outside." >sub/o.txt
	# relative working directory: against the directory holding the store
	jq '.jobs[0].working_directory = "w" | .jobs[0].steps[0] |= (del(.prompt) + {prompt_ref: "p.txt"})' lt.json >ok.json
	submit ok.json
	[ "$(jq -r .jobs[0].job_workdir "runs/$B/batch_meta.json")" = "$T/w" ]
	grep -q "Do it." runs/"$B"/j/steps/s/prompt.txt
	# a ref that leaves the working directory: refused (a file table may)
	jq '.jobs[0].working_directory = "w" | .jobs[0].steps[0] |= (del(.prompt) + {prompt_ref: "../sub/o.txt"})' lt.json >out.json
	run -0 curl -s -w '\n%{http_code}' --data-binary @out.json "$URL/v1/batches"
	[ "${lines[-1]}" = 400 ]
	jq -e '.errors[] | select(test("outside the job.s working directory"))' <<<"${lines[0]}"
	run -0 phn-ingest --check out.json
	# a working directory outside allowed_roots
	jq '.jobs[0].working_directory = "/usr"' lt.json >wd.json
	run -0 curl -s -w '\n%{http_code}' --data-binary @wd.json "$URL/v1/batches"
	[ "${lines[-1]}" = 400 ]
	jq -e '.errors[] | select(test("/usr lies outside interfaces.api_mode.allowed_roots"))' <<<"${lines[0]}"
	# ... and with allowed_roots naming it, accepted
	stop_api
	api_conf '{"allowed_roots": ["/usr"]}'
	start_api
	submit wd.json
}

@test "prompt_ref /etc/shadow or an absolute path outside is refused and nothing is written" {
	api_conf
	start_api
	before=$(find runs | wc -l)
	for ref in /etc/shadow /etc/passwd "$T/../x"; do
		jq --arg r "$ref" '.jobs[0].steps[0] |= (del(.prompt) + {prompt_ref: $r})' lt.json >sh.json
		run -0 curl -s -w '\n%{http_code}' --data-binary @sh.json "$URL/v1/batches"
		[ "${lines[-1]}" = 400 ] || fail "$ref: $output"
	done
	jq -e '.errors[] | select(test("prompt_ref"))' <<<"${lines[0]}"
	[ "$(find runs | wc -l)" -eq "$before" ]
	run ! grep -rl root: runs
}

@test "POST /v1/tick honours no_codex; without it codex runs" {
	api_conf
	start_api
	submit
	run -0 curl -s -X POST "$URL/v1/tick?no_codex=true&concurrency=2"
	[ "$(jq -r .ok <<<"$output")" = true ]
	[ "$(jq -r .no_codex <<<"$output")" = true ]
	[ ! -e codex.log ]
	run -0 phn-score -b "$B" --steps
	[ "$(jq -r .status <<<"$output")" = succeeded ]
	run -0 curl -s -X POST "$URL/v1/batches/$B/jobs/j/steps/s/force-retry"
	run -0 curl -s -X POST "$URL/v1/tick?batch_id=$B"
	[ "$(jq -r .no_codex <<<"$output")" = false ]
	[ -s codex.log ]
	[ "$(code -X POST "$URL/v1/tick?no_codex=maybe")" = 400 ]
	[ "$(code -X POST "$URL/v1/tick?concurrency=-1")" = 400 ]
	[ "$(code -X POST "$URL/v1/tick?batch_id=batch_nope")" = 404 ]
}

@test "a tick while another holds the store's tick lock is 409" {
	api_conf
	start_api
	bg_hold bash -c "exec 9>>runs/_system/tick.lock; flock 9; exec sleep 60"
	wait_for sh -c '! flock -n runs/_system/tick.lock true'
	run -0 curl -s -w '\n%{http_code}' -X POST "$URL/v1/tick?no_codex=1"
	[ "${lines[-1]}" = 409 ]
	jq -e '.error | test("another tick is running")' <<<"${lines[0]}"
}

@test "scoreboards are phn-score --json's, and write the scoreboard files" {
	api_conf
	start_api
	submit
	curl -s -X POST "$URL/v1/tick?no_codex=1" >/dev/null
	rm -f runs/_system/scoreboard.system.json "runs/$B/scoreboard.batch.json"
	run -0 curl -s "$URL/v1/scoreboards/system"
	api=$(jq -S 'del(.system[].computed_at)' <<<"$output")
	[ -f runs/_system/scoreboard.system.json ]
	run -0 phn-score --json
	[ "$api" = "$(jq -S 'del(.system[].computed_at)' <<<"$output")" ]
	run -0 curl -s "$URL/v1/batches/$B/scoreboard"
	[ "$(jq -r .batch.batch_id <<<"$output")" = "$B" ]
	[ "$(jq -r '.batch.counts.succeeded' <<<"$output")" = 1 ]
	[ -f "runs/$B/scoreboard.batch.json" ]
	# the old route stays, as an alias
	run -0 curl -s "$URL/v1/scoreboard?batch_id=$B"
	[ "$(jq -r .batch.batch_id <<<"$output")" = "$B" ]
	# the dashboard's additions: every step, and the runners
	run -0 curl -s "$URL/v1/batches/$B/steps"
	[ "$(jq -c '[.steps[] | [.job_id, .step_id, .status]]' <<<"$output")" = '[["j","s","succeeded"]]' ]
	[ "$(code "$URL/v1/batches/batch_nope/steps")" = 404 ]
	mkdir -p runners/r9
	echo '{"runner_id": "r9", "state": "idle"}' >runners/r9/health.json
	run -0 curl -s "$URL/v1/runners"
	[ "$(jq -r '.runners[] | select(.runner_id == "r9") | .health.state' <<<"$output")" = idle ]
	[ "$(code "$URL/v1/batches/batch_nope/scoreboard")" = 404 ]
	[ "$(code "$URL/v1/batches/bad%20id/scoreboard")" = 400 ]
	[ "$(code "$URL/v1/batches/batch_nope")" = 404 ]
}

@test "current, resolve, artifact and events of an attempt" {
	api_conf
	start_api
	submit
	curl -s -X POST "$URL/v1/tick" >/dev/null
	run -0 curl -s "$URL/v1/batches/$B/jobs/j/current"
	R=$(jq -r .steps.s.latest.run_id <<<"$output")
	[ -n "$R" ]
	[ "$(code "$URL/v1/batches/$B/jobs/nope/current")" = 404 ]
	run -0 curl -s "$URL/v1/attempts/resolve?batch_id=$B&job_id=j&step_id=s&run_id=$R"
	A=$(jq -r .attempt_dir <<<"$output")
	[ -d "$A" ]
	[[ $A == "$T/runs/$B/j/steps/s/attempts/"*"_$R" ]]
	[ "$(jq -r .run_id <<<"$output")" = "$R" ]
	# without run_id: the step's latest attempt
	run -0 curl -s "$URL/v1/attempts/resolve?batch_id=$B&job_id=j&step_id=s"
	[ "$(jq -r .attempt_dir <<<"$output")" = "$A" ]
	[ "$(code "$URL/v1/attempts/resolve?batch_id=$B&job_id=j&step_id=s&run_id=run_nope")" = 404 ]
	[ "$(code "$URL/v1/attempts/resolve?attempt_dir=/etc")" = 404 ]
	[ "$(code "$URL/v1/attempts/resolve?batch_id=..&job_id=j&step_id=s")" = 400 ]
	ids="batch_id=$B&job_id=j&step_id=s&run_id=$R"
	run -0 curl -s -D hdr "$URL/v1/attempts/artifact?$ids&name=meta.json"
	[ "$(jq -r .run_id <<<"$output")" = "$R" ]
	grep -qi '^content-type: application/json' hdr
	run -0 curl -s "$URL/v1/artifact?$ids&name=final.txt"
	cmp <(printf '%s' "$output") <(cat "$A/final.txt")
	[ "$(code "$URL/v1/attempts/artifact?$ids&name=../x")" = 400 ]
	[ "$(code "$URL/v1/attempts/artifact?$ids&name=nope")" = 404 ]
	ln -s /etc/passwd "$A/pw"
	[ "$(code "$URL/v1/attempts/artifact?$ids&name=pw")" = 400 ]
	mkfifo "$A/ff"
	[ "$(code "$URL/v1/attempts/artifact?$ids&name=ff")" = 400 ]
	run -0 curl -s "$URL/v1/attempts/events?$ids&lines=2"
	[ "${#lines[@]}" -eq 2 ]
	[ "$output" = "$(tail -n 2 "$A/codex.events.jsonl")" ]
	[ "$(code "$URL/v1/attempts/events?$ids&lines=x")" = 400 ]
}

@test "events follow streams while the attempt runs and ends with it; /health answers meanwhile" {
	tick_running 3
	[ "$(code -m 2 "$URL/health")" = 200 ]
	[ "$(code -m 5 "$URL/v1/scoreboards/system")" = 200 ]
	curl -sN "$URL/v1/attempts/events?batch_id=$B&job_id=j&step_id=s&follow=1" >follow.out &
	fol=$!
	wait_for test -s follow.out
	# the attempt is still running while the first lines have arrived
	run -3 phn-score -b "$B" --steps
	[ "$(jq -r .state_status <<<"$output")" = running ]
	wait "$fol"
	wait "$tick"
	[ "$(jq -r .ok tick.out)" = true ]
	A=$(curl -s "$URL/v1/attempts/resolve?batch_id=$B&job_id=j&step_id=s" | jq -r .attempt_dir)
	cmp follow.out "$A/codex.events.jsonl"
}

@test "cancel through the API; bad grace is 400" {
	tick_running 30
	R=$(curl -s "$URL/v1/attempts/resolve?batch_id=$B&job_id=j&step_id=s" | jq -r .run_id)
	[ "$(code -X POST "$URL/v1/attempts/cancel?batch_id=$B&job_id=j&step_id=s&run_id=$R&grace_seconds=x")" = 400 ]
	run -0 curl -s -w '\n%{http_code}' -X POST "$URL/v1/attempts/cancel?batch_id=$B&job_id=j&step_id=s&run_id=$R&grace_seconds=1"
	[ "${lines[-1]}" = 200 ]
	[ "$(jq -r .ok <<<"${lines[0]}")" = true ]
	wait "$tick"
	run -1 phn-score -b "$B" --steps
	[ "$(jq -r .status <<<"$output")" = canceled ]
	# the old route, an alias: the attempt has ended already
	run -0 curl -s -w '\n%{http_code}' -X POST "$URL/v1/cancel?batch_id=$B&job_id=j&step_id=s&run_id=$R"
	[ "${lines[-1]}" = 200 ]
	[ "$(code -X POST "$URL/v1/attempts/cancel?batch_id=$B&job_id=j&step_id=s&run_id=run_x")" = 404 ]
}

@test "force-retry, mark-failed and requeue answer the overrides" {
	api_conf
	start_api
	submit
	S="$URL/v1/batches/$B/jobs/j/steps/s"
	run -0 curl -s -X POST "$S/force-retry"
	[ "$(jq -r .overrides.steps.s.force_retry_nonce <<<"$output")" = 1 ]
	[ "$(jq -r .overrides_path <<<"$output")" = "$T/runs/$B/j/overrides.json" ]
	run -0 curl -s -X POST "$S/mark-failed?reason=by%20hand"
	[ "$(jq -r .overrides.steps.s.forced_terminal.reason <<<"$output")" = "by hand" ]
	run -0 curl -s -X POST "$S/requeue?different=true"
	[ "$(jq -r .overrides.steps.s.requeue.different_from_last <<<"$output")" = true ]
	[ "$(code -X POST "$S/requeue")" = 400 ]
	[ "$(code -X POST "$S/requeue?runner_id=r1&different=true")" = 400 ]
	[ "$(code -X POST "$URL/v1/batches/$B/jobs/j/steps/nope/force-retry")" = 404 ]
	[ "$(code -X POST "$URL/v1/batches/$B/jobs/nope/steps/s/force-retry")" = 404 ]
	[ "$(code -X POST "$URL/v1/batches/batch_x/jobs/j/steps/s/force-retry")" = 404 ]
	[ "$(code -X POST "$S/explode")" = 404 ]
	[ "$(code -X POST "$S/force-retry/more")" = 404 ]
	[ "$(jq -r .steps.s.force_retry_nonce "runs/$B/j/overrides.json")" = 1 ]
	[ "$(code "$S/force-retry")" = 405 ]
}

@test "unknown routes are 404, wrong methods 405, errors are JSON" {
	api_conf
	start_api
	run -0 curl -s -w '\n%{http_code}' "$URL/nope"
	[ "${lines[-1]}" = 404 ]
	[ "$(jq -r .ok <<<"${lines[0]}")" = false ]
	jq -e '.error | test("no such route")' <<<"${lines[0]}"
	[ "$(code -X DELETE "$URL/v1/tick")" = 405 ]
	[ "$(code "$URL/v1/tick")" = 405 ]
	[ "$(code "$URL/v1/batches/b/jobs/j/steps/s/t/u/v/w")" = 404 ]
}

@test "token auth: 401 with WWW-Authenticate for a missing, wrong or partial token; the right one works" {
	api_conf '{"auth_mode": "token"}'
	PARALLELHASSNES_API_TOKEN=s3cret-t0ken start_api
	[ "$(jq -r .auth "$T/api.out")" = token ]
	run -0 curl -s -D hdr -w '\n%{http_code}' --data-binary @lt.json "$URL/v1/batches"
	[ "${lines[-1]}" = 401 ]
	grep -qi '^www-authenticate: Bearer' hdr
	jq -e '.error == "missing or wrong bearer token"' <<<"${lines[0]}"
	for t in '' nope s3cret s3cret-t0ke s3cret-t0ken! s3cret-t0kens3cret-t0ken; do
		[ "$(code -H "Authorization: Bearer $t" --data-binary @lt.json "$URL/v1/batches")" = 401 ] || fail "token '$t'"
	done
	[ "$(code -H "Authorization: Basic s3cret-t0ken" "$URL/v1/scoreboards/system")" = 401 ]
	[ "$(code "$URL/v1/scoreboards/system")" = 401 ]
	[ "$(code "$URL/nope")" = 401 ]
	[ -z "$(find runs -mindepth 1 -maxdepth 1 -name 'batch_*')" ]
	[ "$(code -H 'Authorization: bearer  s3cret-t0ken ' --data-binary @lt.json "$URL/v1/batches")" = 200 ]
	[ "$(code -H 'Authorization: Bearer s3cret-t0ken' "$URL/v1/scoreboards/system")" = 200 ]
	[ "$(code "$URL/health")" = 200 ]
	[ "$(code "$URL/")" = 200 ]
}

@test "local_trust admits a loopback client; --auth overrides the config" {
	api_conf '{"auth_mode": "token"}'
	PARALLELHASSNES_API_TOKEN= run -100 --separate-stderr phn-api --root "$T" --port 0
	assert_stderr_line --partial "PARALLELHASSNES_API_TOKEN is not set"
	start_api --auth local_trust
	[ "$(jq -r .auth "$T/api.out")" = local_trust ]
	[ "$(code "$URL/v1/scoreboards/system")" = 200 ]
}

@test "auth none is refused off loopback; bad usage" {
	api_conf
	run -100 --separate-stderr phn-api --host 0.0.0.0 --port 0
	assert_stderr_line --partial "phn-api: --host 0.0.0.0: auth none is allowed only on a loopback address"
	run -100 --separate-stderr phn-api --auth magic
	assert_stderr_line "phn-api: --auth: want none, local_trust or token, not 'magic'"
	run -100 --separate-stderr phn-api extra
	assert_usage_error phn-api
	run -100 --separate-stderr phn-api --port 70000
	assert_usage_error phn-api
	run -100 --separate-stderr phn-api --auto-tick --no-auto-tick
	assert_usage_error phn-api
	run -0 phn-api --help
	assert_line --partial "usage: phn-api"
}

@test "a port in use is a temporary failure (111); SIGTERM stops the server with 0" {
	api_conf
	start_api
	run -111 --separate-stderr phn-api --root "$T" --port "$(cat "$T/api.port")"
	assert_stderr_line --partial "phn-api: unable to listen on 127.0.0.1:"
	kill -TERM "$API_PID"
	rc=0
	wait "$API_PID" || rc=$?
	API_PID=
	[ "$rc" -eq 0 ]
}

@test "auto_tick runs ticks on its own, every tick_interval_seconds" {
	api_conf '{"auto_tick": true, "tick_interval_seconds": 0.2}'
	start_api
	[ "$(jq -r .auto_tick "$T/api.out")" = true ]
	submit
	wait_for sh -c "phn-score -q -b $B"
	[ -s codex.log ]
}

@test "a toolkit program that cannot be run is a JSON 500 naming it" {
	api_conf
	mkdir lone
	cp "$(command -v phn-api)" lone/
	(PATH=/usr/bin:/bin exec lone/phn-api --root "$T" --port 0 \
	    --port-file "$T/api.port" </dev/null >"$T/api.out" 2>"$T/api.err" \
	    3>&- & echo $! >"$T/api.pid")
	API_PID=$(cat "$T/api.pid")
	wait_for test -s "$T/api.port"
	URL=http://127.0.0.1:$(cat "$T/api.port")
	run -0 curl -s -w '\n%{http_code}' "$URL/v1/scoreboards/system"
	[ "${lines[-1]}" = 500 ]
	[ "$(jq -r .exit_code <<<"${lines[0]}")" = 127 ]
}

@test "phn-ingest --untrusted reads only stdin, and not with --queue" {
	phn-init >/dev/null
	run -100 --separate-stderr phn-ingest --untrusted lt.json
	assert_usage_error phn-ingest
	run -100 --separate-stderr phn-ingest --untrusted -Q
	assert_usage_error phn-ingest
	mkdir w
	jq '.jobs[0].working_directory = "w"' lt.json >w.json
	run -0 --separate-stderr phn-ingest --untrusted - <w.json
	[ "$(jq -r .jobs[0].job_workdir "runs/$output/batch_meta.json")" = "$T/w" ]
}
