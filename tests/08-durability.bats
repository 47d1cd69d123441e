#!/usr/bin/env bats
# tests/08-durability.bats -- the records that must survive a crash are
# synced: seen from outside with strace(1), since a test cannot pull the
# power.  (What must be durable where: phn(5).)

load helper

setup() {
	phn_setup
	phn-init >/dev/null
	mkdir w
	mklt lt.json '{jobs: [{job_id: "a", working_directory: "w",
	    steps: [{step_id: "s1", prompt: "p"}]}]}'
}

# traced CMD...: CMD under strace, recording its fsync-class calls in
# ./tr (LeakSanitizer cannot run under ptrace: no leak check there).
traced() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	    strace -f -y -e trace=fsync,fdatasync,syncfs -o tr "$@"
}

# syncs FILE: the fsync-class calls strace recorded, one per line, with
# the path of the file or directory each one synced.
syncs() {
	grep -E '(fsync|fdatasync|syncfs)\(' "$1"
}

@test "ingest: the batch directory is synced before its rename, the runs directory after it" {
	run -0 traced phn-ingest lt.json
	B=$output
	[ -f "runs/$B/batch_meta.json" ]
	run syncs tr
	assert_line --regexp "syncfs\([0-9]+<$T/runs/\.ingest-[^>]*>\)"
	assert_line --regexp "fsync\([0-9]+<$T/runs>\)"
	# the directory sync comes after the batch's own
	last=$(grep -nE "fsync\([0-9]+<$T/runs>\)" tr | tail -n 1 | cut -d: -f1)
	first=$(grep -nE "syncfs\([0-9]+<$T/runs/\.ingest-" tr | head -n 1 | cut -d: -f1)
	[ "$last" -gt "$first" ]
}

@test "claim: meta.json and the queued state are synced before the attempt is printed" {
	B=$(phn-ingest lt.json)
	run -0 traced phn-claim
	A=$output
	[ -d "$A" ]
	run syncs tr
	assert_line --regexp "fsync\([0-9]+<$A/\.meta\.json\.[^>]*>\)"
	assert_line --regexp "fsync\([0-9]+<$A>\)"
}
