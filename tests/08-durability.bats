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

# traced_all CMD...: traced, with the renames and links too.
traced_all() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	    strace -f -y -e trace=fsync,fdatasync,syncfs,rename,link -o tr "$@"
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

# syncfs_lines FILE: the line numbers of the store's syncfs calls.
syncfs_lines() {
	grep -nE "syncfs\([0-9]+<$T/runs>\)" "$1" | cut -d: -f1
}

# chain: a job of two steps, s2 after s1.
chain() {
	mklt lt.json '{jobs: [{job_id: "a", working_directory: "w",
	    steps: [{step_id: "s1", prompt: "p"},
	    {step_id: "s2", prompt: "p", depends_on: ["s1"]}]}]}'
}

@test "claim: the claim is synced, by one syncfs of the store, before the attempt is printed" {
	B=$(phn-ingest lt.json)
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	    run -0 strace -f -y -s 4096 -e trace=fsync,fdatasync,syncfs,write -o tr \
	    phn-claim
	A=$output
	[ -d "$A" ]
	[ -f "$A/meta.json" ]
	# (the batch's first claim builds its schedule: synced apart)
	run sh -c "grep -E '(fsync|fdatasync|syncfs)\\(' tr | grep -v '/\\.sched-'"
	# one sync, of the whole store: meta.json, state.json, current.json
	[ "${#lines[@]}" -eq 1 ]
	assert_line --regexp "syncfs\([0-9]+<$T/runs>\)"
	s=$(syncfs_lines tr)
	w=$(grep -nF "write(1<" tr | grep -F "$A" | head -n 1 | cut -d: -f1)
	[ -n "$w" ]
	[ "$s" -lt "$w" ]
}

@test "claim: nothing is printed, and the claim is undone, when the store cannot be synced" {
	mklt lt.json '{concurrency: 2, jobs: [{job_id: "a", working_directory: "w",
	    steps: [{step_id: "s1", prompt: "p"}]}, {job_id: "b",
	    working_directory: "w", steps: [{step_id: "s1", prompt: "p"}]}]}'
	B=$(phn-ingest lt.json)
	run -0 phn-claim -b "$B" -n 1	# the schedule is built
	first=$output
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	    run -111 strace -f -o /dev/null -e trace=syncfs \
	    -e inject=syncfs:error=EIO phn-claim
	[ -z "$(printf '%s' "$output" | grep -v '^phn-claim:')" ]
	assert_output --partial "unable to sync the store $T/runs"
	run sh -c "cat runs/$B/*/steps/s1/attempts/*/state.json | jq -r .status | sort"
	assert_line --index 0 failed
	assert_line --index 1 queued
	[ "${#lines[@]}" -eq 2 ]
}

@test "spawn: the files synced, then the terminal state, before the dependents are released" {
	chain
	B=$(phn-ingest lt.json)
	A=$(phn-claim)
	run -0 traced_all phn-spawn --no-codex "$A"
	run syncs tr
	[ "${#lines[@]}" -eq 2 ]
	set -- $(syncfs_lines tr)
	[ "$#" -eq 2 ]
	# the terminal state is put in place between the two syncs ...
	st=$(grep -nE "rename\(.*<?$A/\.state\.json\.[^\"]*\", .*$A/state\.json" tr |
	    tail -n 1 | cut -d: -f1)
	[ -n "$st" ]
	[ "$st" -gt "$1" ]
	[ "$st" -lt "$2" ]
	# ... the final.json and handoff.json links before the first one ...
	fj=$(grep -nE "link\(.*\", \"$A/final\.json\"" tr | cut -d: -f1)
	[ -n "$fj" ]
	[ "$fj" -gt "$1" ]
	# ... and the dependent s2 is made ready only after the second
	rd=$(grep -nE "rename\(.*_ready/\.a@s2\.[^\"]*\", \"[^\"]*_ready/a@s2\"" tr |
	    head -n 1 | cut -d: -f1)
	[ -n "$rd" ]
	[ "$rd" -gt "$2" ]
	run jq -r .status "$A/state.json"
	[ "$output" = succeeded ]
}

@test "spawn: a terminal state that cannot be synced does not release its dependents: 111" {
	chain
	B=$(phn-ingest lt.json)
	A=$(phn-claim)
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	    run -111 strace -f -o /dev/null -e trace=syncfs \
	    -e inject=syncfs:error=EIO:when=2 phn-spawn --no-codex "$A"
	assert_output --partial "unable to sync the terminal state.json"
	[ ! -e "runs/$B/_ready/a@s2" ]
	# a rescan releases it, once the store syncs again (phn(5))
	run -0 phn-claim --rescan
	[ -e "runs/$B/_ready/a@s2" ]
}

@test "tick: at most 4 fsync-class calls per attempt on the claim, run, end path" {
	mklt lt.json '{jobs: [range(20) as $i | {job_id: "j\($i)",
	    working_directory: "w", steps: [{step_id: "s", prompt: "p"}]}]}'
	phn-ingest lt.json >/dev/null
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	    run -0 strace -f -c -o counts phn tick --no-codex -c 4
	n=$(awk '$NF ~ /^(fsync|fdatasync|syncfs)$/ { s += $4 } END { print s + 0 }' counts)
	[ "$n" -gt 0 ]
	[ "$n" -le 80 ]
	run sh -c 'cat runs/*/j*/steps/s/attempts/*/state.json | jq -r .status | sort | uniq -c'
	assert_output --regexp '^ *20 succeeded$'
}
