#!/usr/bin/env bats
# tests/61-api-load.bats -- phn-api under load and abuse, on loopback.
#
# The bounds here are correctness checks, not performance assertions:
# no request may take over 30 s (a lost or starved request would), and
# the server's peak RSS (VmHWM) must stay under 100 MB (a server that
# buffered what it was sent would be far above).

load api-helper

setup() {
	phn_setup
	API_PID=
	unset PHN_CODEX FAKE_CODEX_LOG
	write_lt lt.json
}

teardown() {
	rm -f "$T/held"
	stop_api
	bg_cleanup
}

@test "200 concurrent clients: scoreboard reads, submits and ticks (no_codex); no error, none over 30 s, memory bounded" {
	# The idle timeout is above the 30 s bound: on a loaded box a
	# connection may wait that long for its thread to read it, and the
	# timeouts have tests of their own below.
	api_conf '{"max_connections": 1024, "max_connections_per_ip": 1000, "max_pending_requests": 400, "connection_timeout_seconds": 60}'
	start_api
	goal_words 151 >goal.txt
	run -0 nice python3 "$PHN_REPO/tests/api-load.py" load \
	    "$(cat "$T/api.port")" 200 3 goal.txt
	echo "$output"
	[ "$(jq -r .requests <<<"$output")" -eq 600 ]
	[ "$(jq -r '.errors | length' <<<"$output")" -eq 0 ]
	jq -e '.max_seconds < 30' <<<"$output"
	rss=$(rss_kb)
	hwm=$(hwm_kb)
	echo "VmRSS ${rss} kB, peak ${hwm} kB"
	[ "$hwm" -lt 102400 ]
	# every submitted table became a batch, and a last tick runs them all
	[ "$(find runs -mindepth 1 -maxdepth 1 -name 'batch_*' | wc -l)" -eq 150 ]
	run -0 curl -s -X POST "$URL/v1/tick?no_codex=true"
	run -0 curl -s "$URL/v1/scoreboards/system"
	[ "$(jq '[.system[].counts.succeeded] | add' <<<"$output")" -eq 150 ]
	[ "$(code "$URL/health")" = 200 ]
}

@test "16 big unauthenticated uploads are refused before their bodies: its peak RSS does not grow" {
	api_conf '{"auth_mode": "token"}'
	PARALLELHASSNES_API_TOKEN=tok start_api
	truncate -s 60M big.json
	before=$(hwm_kb)
	pids=
	for i in $(seq 16); do
		curl -s -o /dev/null -w '%{http_code}\n' --data-binary @big.json \
		    "$URL/v1/batches" >"up.$i" &
		pids="$pids $!"
		# without Expect: 100-continue the body is sent at once
		curl -s -o /dev/null -H 'Expect:' --data-binary @big.json \
		    "$URL/v1/batches" >/dev/null 2>&1 &
		pids="$pids $!"
	done
	for p in $pids; do
		wait "$p" || :
	done
	for i in $(seq 16); do
		[ "$(cat "up.$i")" = 401 ] || fail "upload $i: $(cat "up.$i")"
	done
	after=$(hwm_kb)
	echo "peak RSS before ${before} kB, after ${after} kB"
	[ "$after" -lt $((before + 16384)) ]
	[ "$(code "$URL/health")" = 200 ]
}

@test "a body over max_body_bytes is 413, declared or chunked; an authorized one under it is read" {
	api_conf '{"auth_mode": "token", "max_body_bytes": 4096}'
	PARALLELHASSNES_API_TOKEN=tok start_api
	head -c 5000 /dev/zero | tr '\0' ' ' >pad
	cat lt.json pad >big.json
	run -0 curl -s -w '\n%{http_code}' -H 'Authorization: Bearer tok' \
	    --data-binary @big.json "$URL/v1/batches"
	[ "${lines[-1]}" = 413 ]
	jq -e '.error | test("larger than 4096 bytes")' <<<"${lines[0]}"
	[ "$(code -H 'Authorization: Bearer tok' -H 'Transfer-Encoding: chunked' --data-binary @big.json "$URL/v1/batches")" = 413 ]
	# unauthenticated: 401 comes first
	[ "$(code --data-binary @big.json "$URL/v1/batches")" = 401 ]
	[ "$(code -H 'Authorization: Bearer tok' --data-binary @lt.json "$URL/v1/batches")" = 200 ]
}

@test "1,100 half-open connections do not starve /health" {
	api_conf '{"connection_timeout_seconds": 3}'
	start_api
	bg python3 "$PHN_REPO/tests/api-load.py" halfopen "$(cat "$T/api.port")" \
	    1100 "$T/held"
	wait_for test -s "$T/held"
	# another client is served at once, while they are held
	run -0 curl -s -m 5 --interface 127.0.0.2 "$URL/health"
	[ "$(jq -r .ok <<<"$output")" = true ]
	run -0 curl -s -m 5 --interface 127.0.0.3 "$URL/v1/scoreboards/system"
	# and the holder itself too, once its idle connections time out
	run -0 curl -s -m 15 --retry 10 --retry-delay 1 --retry-all-errors \
	    "$URL/health"
	[ "$(jq -r .ok <<<"$output")" = true ]
	rm -f "$T/held"
}

@test "a FIFO as prompt_ref is refused at once and /health still answers" {
	api_conf
	start_api
	mkfifo p.fifo
	jq '.jobs[0].steps[0] |= (del(.prompt) + {prompt_ref: "p.fifo"})' lt.json >f.json
	run -0 curl -s -m 20 -w '\n%{http_code}' --data-binary @f.json "$URL/v1/batches"
	[ "${lines[-1]}" = 400 ]
	jq -e '.errors[] | select(test("p.fifo: is a FIFO, not a regular file"))' <<<"${lines[0]}"
	[ "$(code -m 5 "$URL/health")" = 200 ]
	jq '.jobs[0].steps[0] |= (del(.prompt) + {prompt_ref: "/etc/shadow"})' lt.json >s.json
	run -0 curl -s -m 20 -w '\n%{http_code}' --data-binary @s.json "$URL/v1/batches"
	[ "${lines[-1]}" = 400 ]
	[ -z "$(find runs -mindepth 1 -maxdepth 1 -name 'batch_*')" ]
}

@test "a full tick queue answers 503; a long tick never blocks /health" {
	api_conf '{"max_pending_requests": 0}'
	start_api
	jq_edit lt.json '.jobs[0].steps[0].fake_sleep_seconds = 4'
	run -0 curl -s --data-binary @lt.json "$URL/v1/batches"
	curl -s -X POST "$URL/v1/tick?no_codex=true" >tick.out &
	tick=$!
	wait_for sh -c "phn-score --steps | grep -q '\"state_status\":\"running\"'"
	run -0 curl -s -D hdr -w '\n%{http_code}' -X POST "$URL/v1/tick?no_codex=true&concurrency=1"
	[ "${lines[-1]}" = 503 ]
	grep -qi '^retry-after:' hdr
	jq -e '.error | test("busy")' <<<"${lines[0]}"
	[ "$(code -m 2 "$URL/health")" = 200 ]
	[ "$(code -m 5 "$URL/v1/scoreboards/system")" = 200 ]
	wait "$tick"
	[ "$(jq -r .ok tick.out)" = true ]
}

@test "eight requests holding the workers and a full queue: 503 at once; /health still answers" {
	api_conf '{"max_pending_requests": 0, "connection_timeout_seconds": 60}'
	start_api
	port=$(cat "$T/api.port")
	# each is admitted (a worker) and then never sends its body
	for fd in 20 21 22 23 24 25 26 27; do
		eval "exec $fd<>/dev/tcp/127.0.0.1/$port"
		printf 'POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n' >&"$fd"
	done
	wait_for sh -c "[ \"\$(curl -s -m 5 -o /dev/null -w '%{http_code}' '$URL/v1/scoreboards/system')\" = 503 ]"
	run -0 curl -s -m 5 -D hdr "$URL/v1/scoreboards/system"
	jq -e '.error | test("busy")' <<<"$output"
	grep -qi '^retry-after: 1' hdr
	[ "$(code -m 2 "$URL/health")" = 200 ]
	for fd in 20 21 22 23 24 25 26 27; do
		eval "exec $fd>&-"
	done
	wait_for sh -c "[ \"\$(curl -s -m 5 -o /dev/null -w '%{http_code}' '$URL/v1/scoreboards/system')\" = 200 ]"
}
