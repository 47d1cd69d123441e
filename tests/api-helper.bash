# tests/api-helper.bash -- phn-api in the bats suites (60-62).
#
#   api_conf JQ      phn init, then set interfaces.api_mode to
#                    {enabled: true, auto_tick: false} + JQ (an object)
#   start_api ARG... phn-api --root $T --port 0 ARG... in the background;
#                    waits for its port; sets API_PID, URL (its log in
#                    $T/api.out, $T/api.err)
#   stop_api         SIGTERM it and wait (teardown calls it)
#   code ARGS...     curl ARGS, printing only the HTTP status
#   rss_kb           the server's VmRSS in kB
#   hwm_kb           the server's VmHWM (its peak RSS so far) in kB

load helper

api_conf() {
	[ -f runs/_system/harness_config.json ] || phn-init >/dev/null
	jq_edit runs/_system/harness_config.json --argjson x "${1:-{\}}" \
	    '.interfaces.api_mode = ({enabled: true, auth_mode: "none",
	    auto_tick: false} + $x)'
}

start_api() {
	rm -f "$T/api.port"
	phn-api --root "$T" --port 0 --port-file "$T/api.port" "$@" \
	    </dev/null >"$T/api.out" 2>"$T/api.err" 3>&- &
	API_PID=$!
	for _ in $(seq 100); do
		[ -s "$T/api.port" ] && break
		kill -0 "$API_PID" 2>/dev/null || break
		sleep 0.1
	done
	[ -s "$T/api.port" ] || fail "phn-api did not start: $(cat "$T/api.err")"
	URL=http://127.0.0.1:$(cat "$T/api.port")
}

stop_api() {
	[ -n "${API_PID:-}" ] || return 0
	kill -TERM "$API_PID" 2>/dev/null || :
	for _ in $(seq 50); do
		kill -0 "$API_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$API_PID" 2>/dev/null || :
	wait "$API_PID" 2>/dev/null || :
	API_PID=
}

code() {
	curl -s -o /dev/null -w '%{http_code}' "$@"
}

rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$API_PID/status"
}

hwm_kb() {
	awk '/^VmHWM:/ { print $2 }' "/proc/$API_PID/status"
}
