#!/usr/bin/env bats
# tests/60-phn-api.bats -- the HTTP façade, against a server on 127.0.0.1.

load helper

start_api() {
	phn-api --root "$T" --port 0 --port-file "$T/api.port" "$@" \
	    </dev/null >"$T/api.out" 2>"$T/api.err" 3>&- &
	API_PID=$!
	for _ in $(seq 100); do
		[ -s "$T/api.port" ] && break
		sleep 0.1
	done
	[ -s "$T/api.port" ]
	URL=http://127.0.0.1:$(cat "$T/api.port")
}

setup() {
	phn_setup
	write_lt lt.json
	API_PID=
}

teardown() {
	[ -z "$API_PID" ] || kill "$API_PID" 2>/dev/null || true
	[ -z "$API_PID" ] || wait "$API_PID" 2>/dev/null || true
}

@test "health answers and the start line is JSON" {
	start_api
	run -0 curl -sf "$URL/health"
	[ "$(echo "$output" | jq -r .ok)" = true ]
	[ "$(jq -r .port "$T/api.out")" = "$(cat "$T/api.port")" ]
}

@test "POST /v1/batches ingests a table; GET /v1/batches/ID returns its meta" {
	start_api
	run -0 curl -s -w '\n%{http_code}' --data-binary @lt.json "$URL/v1/batches"
	[ "${lines[1]}" = 200 ]
	id=$(echo "${lines[0]}" | jq -r .batch_id)
	[[ $id =~ ^batch_[0-9]{8}T[0-9]{6}Z_[0-9a-f]{8}$ ]]
	[ -f "runs/$id/batch_meta.json" ]
	run -0 curl -s "$URL/v1/batches/$id"
	[ "$(echo "$output" | jq -r .batch_id)" = "$id" ]
}

@test "an invalid table is a 400 with every error, and nothing is written" {
	start_api
	jq '.concurrency = 0 | del(.jobs)' lt.json >bad.json
	run -0 curl -s -w '\n%{http_code}' --data-binary @bad.json "$URL/v1/batches"
	[ "${lines[-1]}" = 400 ]
	body=$(printf '%s\n' "${lines[@]}" | sed '$d')
	[ "$(echo "$body" | jq '.errors | length')" -eq 2 ]
	echo "$body" | jq -e '.errors[] | select(test("concurrency: must be an integer >= 1"))'
	[ -z "$(find runs -mindepth 1 -maxdepth 1 -name 'batch_*')" ]
}

@test "unknown routes and bad ids are refused" {
	start_api
	run -0 curl -s -o /dev/null -w '%{http_code}' "$URL/nope"
	[ "$output" = 404 ]
	run -0 curl -s -o /dev/null -w '%{http_code}' "$URL/v1/batches/..%2Fetc"
	[ "$output" = 400 ]
	run -0 curl -s -o /dev/null -w '%{http_code}' \
	    "$URL/v1/artifact?batch_id=b&job_id=j&step_id=s&run_id=r&name=../x"
	[ "$output" = 400 ]
	run -0 curl -s -o /dev/null -w '%{http_code}' \
	    "$URL/v1/artifact?batch_id=../b&job_id=j&step_id=s&run_id=r&name=x"
	[ "$output" = 400 ]
	# refused by the API itself, before any program runs
	run -0 curl -s "$URL/v1/artifact?batch_id=..&job_id=j&step_id=s&run_id=r&name=x"
	[ "$(jq -r .error <<<"$output")" = "batch_id, job_id, step_id and run_id must be valid ids" ]
	run -0 curl -s -X POST "$URL/v1/cancel?batch_id=b&job_id=j/k&step_id=s&run_id=r"
	[ "$(jq -r .error <<<"$output")" = "batch_id, job_id, step_id and run_id must be valid ids" ]
}

@test "token auth: a missing, wrong, empty, short or long token is 401, the right one works" {
	PARALLELHASSNES_API_TOKEN=s3cret-t0ken start_api --auth token
	run -0 curl -s -o /dev/null -w '%{http_code}' --data-binary @lt.json \
	    "$URL/v1/batches"
	[ "$output" = 401 ]
	run -0 curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' \
	    --data-binary @lt.json "$URL/v1/batches"
	[ "$output" = 401 ]
	# empty, a prefix, the token with more after it, the token twice
	for t in '' s3cret s3cret-t0ke s3cret-t0ken! s3cret-t0kens3cret-t0ken; do
		run -0 curl -s -o /dev/null -w '%{http_code}' \
		    -H "Authorization: Bearer $t" --data-binary @lt.json \
		    "$URL/v1/batches"
		[ "$output" = 401 ] || fail "token '$t': HTTP $output"
	done
	[ -z "$(find runs -mindepth 1 -maxdepth 1 -name 'batch_*')" ]
	run -0 curl -s -o /dev/null -w '%{http_code}' \
	    -H 'Authorization: Bearer s3cret-t0ken' --data-binary @lt.json \
	    "$URL/v1/batches"
	[ "$output" = 200 ]
	run -0 curl -s -o /dev/null -w '%{http_code}' "$URL/health"
	[ "$output" = 200 ]
}

@test "auth none is refused off loopback; token needs the variable; bad usage" {
	run -100 --separate-stderr phn-api --host 0.0.0.0 --port 0
	assert_stderr_line --partial "phn-api: --host 0.0.0.0: auth none is allowed only on a loopback address"
	PARALLELHASSNES_API_TOKEN= run -100 --separate-stderr phn-api --auth token --port 0
	assert_stderr_line --partial "PARALLELHASSNES_API_TOKEN is not set"
	run -100 --separate-stderr phn-api --auth magic
	assert_usage_error phn-api
	run -100 --separate-stderr phn-api extra
	assert_usage_error phn-api
	run -100 --separate-stderr phn-api --port 70000
	assert_usage_error phn-api
}

@test "a port in use is a temporary failure (111)" {
	start_api
	run -111 --separate-stderr phn-api --root "$T" --port "$(cat "$T/api.port")"
	assert_stderr_line --partial "phn-api: unable to listen on 127.0.0.1:"
}

@test "SIGTERM stops the server with status 0" {
	start_api
	kill -TERM "$API_PID"
	rc=0
	wait "$API_PID" || rc=$?
	API_PID=
	[ "$rc" -eq 0 ]
}

@test "a toolkit program that cannot be found answers 404 with exit 127" {
	mkdir lone
	cp "$(command -v phn-api)" lone/
	(PATH=/usr/bin:/bin exec lone/phn-api --root "$T" --port 0 \
	    --port-file "$T/api.port" </dev/null >"$T/api.out" 2>&1 3>&- &
	    echo $! >"$T/api.pid")
	API_PID=$(cat "$T/api.pid")
	for _ in $(seq 100); do
		[ -s "$T/api.port" ] && break
		sleep 0.1
	done
	URL=http://127.0.0.1:$(cat "$T/api.port")
	run -0 curl -s -w '\n%{http_code}' "$URL/v1/scoreboard"
	[ "${lines[-1]}" = 404 ]
	[ "$(printf '%s\n' "${lines[0]}" | jq -r .exit_code)" = 127 ]
}
