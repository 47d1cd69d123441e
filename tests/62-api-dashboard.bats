#!/usr/bin/env bats
# tests/62-api-dashboard.bats -- the dashboard page (GET /) in Debian's
# headless chromium, against a running store with a finished, a failed
# and a running step, with token auth.  The page's rendered DOM is
# checked (--dump-dom, after its scripts ran, within a virtual time
# budget); a screenshot is kept as a test artifact in
# ${PHN_TEST_ARTIFACTS:-tests/artifacts}/dashboard.png.  If chromium cannot
# start, the test fails with its log.

load api-helper

setup() {
	phn_setup
	API_PID=
	export PHN_CODEX=$PHN_REPO/tests/fake-codex/codex
	ART=${PHN_TEST_ARTIFACTS:-$PHN_REPO/tests/artifacts}
	mkdir -p "$ART"
}

teardown() {
	stop_api
	bg_cleanup
}

# chromium headless on a fresh profile: chrome OUT-FILE ARG... URL
chrome() {
	local out=$1 st=0
	shift
	timeout 120 chromium --headless --no-sandbox --disable-gpu \
	    --disable-quic --no-first-run --disable-background-networking \
	    --disable-component-update --disable-sync \
	    --user-data-dir="$(mktemp -d "$T/chrome.XXXXXX")" \
	    --virtual-time-budget=8000 "$@" >"$out" 2>"$T/chrome.log" || st=$?
	[ "$st" -eq 0 ] || fail "chromium failed (status $st): $(cat "$T/chrome.log")"
}

# A batch with a finished step, a failed one and one running (a tick
# through the API holds it); B is its id.
store() {
	api_conf '{"auth_mode": "token"}'
	PARALLELHASSNES_API_TOKEN=tok-42 start_api
	mklt lt.json '{concurrency: 3, jobs: [
	    {job_id: "done", working_directory: ".", steps: [{step_id: "a", prompt: "fine"}]},
	    {job_id: "broken", working_directory: ".", steps: [{step_id: "b", prompt: "FAKE:exit:2"}]},
	    {job_id: "busy", working_directory: ".", steps: [{step_id: "c", prompt: "FAKE:sleep:60"}]}]}'
	B=$(curl -s -H 'Authorization: Bearer tok-42' --data-binary @lt.json \
	    "$URL/v1/batches" | jq -r .batch_id)
	[ -d "runs/$B" ]
	bg curl -s -X POST -H 'Authorization: Bearer tok-42' "$URL/v1/tick" \
	    -o /dev/null
	wait_for sh -c "phn-score -b $B --steps | jq -s -e 'map(.status) | sort == [\"failed\", \"running\", \"succeeded\"]' >/dev/null"
}

@test "the page shows the batch, its steps by status, failure kinds, runners and a step's events" {
	store
	chrome dom.html --dump-dom "$URL/#token=tok-42&step=busy/c"
	grep -q '<span id="status" data-state="ok">live</span>' dom.html || fail "$(grep -o '<span id="status"[^<]*' dom.html)"
	grep -q "<tr class=\"batch selected\" data-batch-id=\"$B\" data-outcome=\"in_progress\">" dom.html
	grep -q '<tr class="step" data-step="done/a" data-status="succeeded" data-failure-kind="">' dom.html
	grep -q '<tr class="step" data-step="broken/b" data-status="failed" data-failure-kind="codex_exit">' dom.html
	grep -q '<tr class="step selected" data-step="busy/c" data-status="running" data-failure-kind="">' dom.html
	# the progress bar: 2 of 3 steps done
	grep -q 'data-done="2" data-total="3"' dom.html
	grep -q '<tr class="runner" data-runner-id="' dom.html
	# the running step's events tail
	grep -q '<pre id="events" data-step="busy/c">{"type":"thread.started"' dom.html
	# the token came from the fragment and is not in the address any more
	run ! grep -q 'tok-42' dom.html
	chrome /dev/null --window-size=1280,1000 --hide-scrollbars \
	    --screenshot="$ART/dashboard.png" "$URL/#token=tok-42&step=busy/c"
	[ "$(head -c 8 "$ART/dashboard.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
	[ "$(stat -c %s "$ART/dashboard.png")" -gt 10000 ]
}

@test "without the token the page asks for it and shows nothing of the store" {
	store
	chrome dom.html --dump-dom "$URL/"
	grep -q '<span id="status" data-state="auth">token needed</span>' dom.html
	grep -q '<section id="auth" class="show">' dom.html
	run ! grep -q "$B" dom.html
	chrome dom.html --dump-dom "$URL/#token=wrong"
	grep -q '<span id="status" data-state="auth">token needed</span>' dom.html
	run ! grep -q 'data-step=' dom.html
}

@test "the page is one self-contained file: nothing from elsewhere" {
	api_conf
	start_api
	run -0 curl -s -D hdr "$URL/"
	grep -qi '^content-type: text/html' hdr
	grep -qi "^content-security-policy: default-src 'none'" hdr
	[ "$output" = "$(cat "$PHN_REPO/share/dashboard.html")" ]
	run ! grep -Eq '(src|href)="(https?:)?//' "$PHN_REPO/share/dashboard.html"
}
