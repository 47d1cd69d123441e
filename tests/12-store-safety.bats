#!/usr/bin/env bats
# tests/12-store-safety.bats -- the store is written through real
# directories only (a symbolic link planted where a store directory
# belongs is refused with 111 and nothing is written through it), the
# programs that need a store do not make one (100), and a corrupt
# state.json is named in phn-score.

load helper

setup() {
	phn_setup
	E=$BATS_TEST_TMPDIR/elsewhere
	mkdir -p "$E"
}

# A store with one batch of one job a and one step s1; B is its id.
store() {
	phn-init >/dev/null
	write_lt lt.json
	jq_edit lt.json '.jobs[0].job_id = "a" | .jobs[0].steps[0].step_id = "s1"'
	B=$(phn-ingest lt.json)
	S=runs/$B/a/steps/s1
}

# Move store directory DIR to $E/NAME and leave a symbolic link there.
plant() {	# plant DIR NAME
	mv "$1" "$E/$2"
	ln -s "$E/$2" "$1"
}

# Everything under $E, for a before/after comparison.
listing() {
	(cd "$E" && find . | LC_ALL=C sort)
}

# -- a symbolic link in the store --------------------------------------------

@test "phn-claim: attempts/ a symbolic link: 111, named, nothing written" {
	store
	rmdir "$S/attempts"
	ln -s "$E" "$S/attempts"
	run -111 --separate-stderr phn-claim
	[ -z "$output" ]
	assert_stderr_line --partial "$T/$S/attempts: a symbolic link where the store has a directory"
	[ -z "$(ls -A "$E")" ]
}

@test "phn-claim --follow (phn tick): a link that keeps the claim failing stops nothing and ends" {
	store
	rmdir "$S/attempts"
	ln -s "$E" "$S/attempts"
	run --separate-stderr timeout 60 phn-claim --follow -j 2
	[ "$status" -eq 111 ]
	assert_stderr_line --partial "$T/$S/attempts: a symbolic link where the store has a directory"
	assert_stderr_line --partial "giving up on it after 3 failed claims"
	[ -z "$(ls -A "$E")" ]
	# the entry waits in _ready/ for whoever mends the store
	[ -f "runs/$B/_ready/a@s1" ]
}

@test "phn-claim: a step directory a symbolic link: 111, named, nothing written" {
	store
	plant "$S" s1
	before=$(listing)
	run -111 --separate-stderr phn-claim
	assert_stderr_line --partial "$T/$S: a symbolic link where the store has a directory"
	[ "$(listing)" = "$before" ]
	[ -z "$(ls -A "$E/s1/attempts")" ]
}

@test "phn-claim: a job directory a symbolic link: 111, named, nothing written" {
	store
	plant "runs/$B/a" a
	before=$(listing)
	run -111 --separate-stderr phn-claim
	assert_stderr_line --partial "$T/runs/$B/a: a symbolic link where the store has a directory"
	[ "$(listing)" = "$before" ]
}

@test "phn-claim: the runs root itself may be a symbolic link" {
	store
	mv runs "$E/runs"
	ln -s "$E/runs" runs
	run -0 phn-claim
	[ -d "$output" ]
}

@test "phn-spawn: the attempt directory a symbolic link: 111, named, nothing written" {
	store
	A=$(phn-claim)
	plant "$A" att
	before=$(listing)
	run -111 --separate-stderr phn-spawn --no-codex "$A"
	[ -z "$output" ]
	assert_stderr_line "phn-spawn: $A: a symbolic link where the store has a directory; refusing to write through it"
	[ "$(listing)" = "$before" ]
}

@test "phn-spawn --json: a refused attempt's record says 111" {
	store
	A=$(phn-claim)
	plant "$A" att
	run -111 --separate-stderr phn-spawn --json --no-codex "$A"
	[ "$(jq -r .exit_status <<<"$output")" = 111 ]
	[ "$(jq -r .started <<<"$output")" = false ]
}

@test "phn-spawn: attempts/ a symbolic link: 111, named, nothing written" {
	store
	A=$(phn-claim)
	plant "$S/attempts" attempts
	before=$(listing)
	run -111 --separate-stderr phn-spawn --no-codex "$A"
	assert_stderr_line --partial "$T/$S/attempts: a symbolic link where the store has a directory"
	[ "$(listing)" = "$before" ]
}

@test "phn-ingest: runs/_queue a symbolic link: 111, named, nothing written" {
	store
	plant runs/_queue _queue
	before=$(listing)
	run -111 --separate-stderr phn-ingest --new lt.json
	[ -z "$output" ]
	assert_stderr_line --partial "$T/runs/_queue/"
	assert_stderr_line --partial "Too many levels of symbolic links"
	[ "$(listing)" = "$before" ]
	[ "$(ls runs | grep -c '^batch_')" -eq 1 ]
}

@test "phn-heartbeat: the attempt directory a symbolic link: 111, nothing written" {
	store
	A=$(phn-claim)
	plant "$A" att
	before=$(listing)
	run -111 --separate-stderr phn-heartbeat "$A" hello
	assert_stderr_line --partial "$A"
	[ "$(listing)" = "$before" ]
}

# -- no store ----------------------------------------------------------------

# Run PROG ARG... in an empty directory with no PHN_ROOT: 100, said, and
# nothing created.
nostore() {
	mkdir empty
	cd empty
	unset PHN_ROOT
	run -100 --separate-stderr "$@"
	[ -z "$output" ]
	assert_stderr_line "$1: no runs store at $T/empty/runs (run phn init, or give --root)"
	[ -z "$(ls -A)" ]
}

@test "no store: phn-claim" { nostore phn-claim; }
@test "no store: phn-claim --follow" { nostore phn-claim --follow; }
@test "no store: phn-score" { nostore phn-score; }
@test "no store: phn-score --write" { nostore phn-score --write; }
@test "no store: phn-heartbeat --reap" { nostore phn-heartbeat --reap; }
@test "no store: phn-heartbeat -l" { nostore phn-heartbeat -l; }
@test "no store: phn-cancel" { nostore phn-cancel -b B --job j -s s -R r; }
@test "no store: phn-gc" { nostore phn-gc; }
@test "no store: phn-artifact" { nostore phn-artifact x final.json; }
@test "no store: phn-tail" { nostore phn-tail -a x; }
@test "no store: phn-close-batch" { nostore phn-close-batch B; }
@test "no store: phn-force-retry" { nostore phn-force-retry B j s; }
@test "no store: phn-mark-failed" { nostore phn-mark-failed B j s; }
@test "no store: phn-requeue" { nostore phn-requeue -d B j s; }
@test "no store: phn-spawn" { nostore phn-spawn --no-codex x; }

@test "no store: phn tick says so, exits 100 and creates nothing" {
	mkdir empty
	cd empty
	unset PHN_ROOT
	run -100 --separate-stderr phn tick
	assert_stderr_line "phn: tick: no runs store at ./runs (run phn init, or give --root)"
	[ -z "$(ls -A)" ]
}

@test "no store: phn serve says so, exits 100 and creates nothing" {
	mkdir empty
	cd empty
	unset PHN_ROOT
	run -100 --separate-stderr phn serve
	assert_stderr_line "phn: serve: no runs store at ./runs (run phn init, or give --root)"
	[ -z "$(ls -A)" ]
}

@test "no store: --runs-root naming a missing directory is 100" {
	run -100 --separate-stderr phn-score --runs-root "$T/nope"
	assert_stderr_line "phn-score: no runs store at $T/nope (run phn init, or give --root)"
	[ ! -e "$T/nope" ]
}

@test "no store: a runs root that is a file is 100" {
	: >runs
	run -100 --separate-stderr phn-claim
	assert_stderr_line "phn-claim: no runs store at $T/runs (run phn init, or give --root)"
}

@test "no store: phn-init makes one" {
	mkdir empty
	cd empty
	unset PHN_ROOT
	run -0 phn-init
	[ -d runs/_system ]
}

@test "no store: phn-ingest makes one, as documented" {
	write_lt lt.json
	mkdir empty
	cd empty
	unset PHN_ROOT
	run -0 --separate-stderr phn-ingest ../lt.json
	[ -d "runs/$output" ]
}

# -- a corrupt state.json in phn-score ---------------------------------------

# Claim the step and give its attempt state.json TEXT; F is its path
# relative to the runs root.
corrupt() {	# corrupt TEXT
	store
	A=$(phn-claim)
	F=${A#"$T/runs/"}/state.json
	printf '%s' "$1" >"runs/$F"
}

@test "corrupt state.json: not JSON: phn-score --steps names the file" {
	corrupt '{bad'
	run -1 phn-score --steps
	[ "$(jq -r .status <<<"$output")" = needs_attention ]
	[ "$(jq -r .state_error <<<"$output")" = "$F: not valid JSON (quoted object property name expected)" ]
	[ "$(jq -r .attention_reason <<<"$output")" = "$F: not valid JSON (quoted object property name expected)" ]
}

@test "corrupt state.json: truncated: phn-score --json's attention item names it" {
	corrupt '{"status": "runn'
	run -1 phn-score --json -b "$B"
	[ "$(jq -r '.batch.attention[0].reason' <<<"$output")" = "$F: not valid JSON (truncated)" ]
	[ "$(jq -r '.batch.failures[0].state_error' <<<"$output")" = "$F: not valid JSON (truncated)" ]
}

@test "corrupt state.json: empty: the table's DETAIL names it" {
	corrupt ''
	run -1 phn-score -b "$B"
	assert_line --partial "$F: not valid JSON (empty file)"
}

@test "corrupt state.json: not an object: named" {
	corrupt '[1, 2]'
	run -1 phn-score --steps
	[ "$(jq -r .state_error <<<"$output")" = "$F: not a JSON object" ]
}

@test "corrupt state.json: no valid status: named" {
	corrupt '{"status": "bogus"}'
	run -1 phn-score --steps
	[ "$(jq -r .state_error <<<"$output")" = "$F: no valid status (queued, running, succeeded, failed, needs_attention or canceled)" ]
}

@test "a sound state.json has no state_error" {
	store
	phn-claim >/dev/null
	run -3 phn-score --steps
	[ "$(jq -r 'has("state_error")' <<<"$output")" = false ]
	[ "$(jq -r .attention_reason <<<"$output")" = null ]
}
