#!/usr/bin/env bats
# tests/11-hostile-refs.bats -- the Launch Table's file references and
# hostile values (issue 13): FIFOs, devices and sockets as a table, a
# prompt_ref, an output_schema_ref or a working directory; references
# outside the job's working directory, the table's directory and
# limits.ref_roots; the snapshots' permissions; working directories that
# are files or empty; integers beyond 2^53.
#
# Each test starts in a fresh $T (PHN_ROOT) holding lt.json, a minimal
# valid table from write_lt.  Every phn-ingest that could block on a FIFO
# runs under timeout(1), so a regression fails instead of hanging.

load helper

setup_file() {
	write_lt "$BATS_FILE_TMPDIR/base.json"
}

setup() {
	phn_setup
	umask 022
	cp "$BATS_FILE_TMPDIR/base.json" lt.json
	# A directory outside both the table's directory and the workdir.
	OUT=$(mktemp -d "$BATS_TEST_TMPDIR/out.XXXXXX")
	OUT=$(cd "$OUT" && pwd -P)
}

# ingest ARG...: phn-ingest ARG..., never for more than 30 seconds.
ingest() {
	timeout 30 phn-ingest "$@"
}

# reject [JQ-OPTION...] FILTER: exit 100, nothing on stdout.
reject() {
	jq "$@" "$BATS_FILE_TMPDIR/base.json" >lt.json
	run -100 --separate-stderr ingest lt.json
	assert_output ''
	assert_stderr_prefix phn-ingest
}

# accept [JQ-OPTION...] FILTER: exit 0, a batch id on stdout, in $ID.
accept() {
	jq "$@" "$BATS_FILE_TMPDIR/base.json" >lt.json
	run -0 --separate-stderr ingest lt.json
	assert_output --regexp '^batch_[0-9]{8}T[0-9]{6}Z_[0-9a-f]{8}$'
	ID=$output
}

# mode FILE: its permission bits, in octal.
mode() {
	stat -c %a "$1"
}

# init_config [JQ-OPTION...] FILTER: a harness config edited with jq.
init_config() {
	phn-init >/dev/null
	jq_edit runs/_system/harness_config.json "$@"
}

# sock FILE: a Unix socket at FILE (bound, then left behind).
sock() {
	python3 -c 'import socket, sys
socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$1"
}

no_batch() {
	[ ! -e runs ] || [ "$(find runs -name batch_meta.json | wc -l)" -eq 0 ]
}

E='phn-ingest: lt.json:'
OUTSIDE="outside the job's working directory, the table's directory and limits.ref_roots"

# --- FIFOs, devices and sockets ------------------------------------------

@test "table: a FIFO given as the table is refused at once, exit 100" {
	mkfifo t.fifo
	run -100 --separate-stderr ingest t.fifo
	assert_output ''
	assert_stderr_line 'phn-ingest: t.fifo: is a FIFO, not a regular file'
	no_batch
}

@test "table: a character device given as the table is refused" {
	run -100 --separate-stderr ingest /dev/null
	assert_stderr_line 'phn-ingest: /dev/null: is a character device, not a regular file'
	no_batch
}

@test "table: a symlink to a FIFO is refused; one to a table is read" {
	mkfifo t.fifo
	ln -s t.fifo link.json
	run -100 --separate-stderr ingest link.json
	assert_stderr_line 'phn-ingest: link.json: is a FIFO, not a regular file'
	ln -s lt.json good.json
	run -0 --separate-stderr ingest good.json
	assert_output --regexp '^batch_'
}

@test "table: - still reads standard input, a pipe" {
	run -0 --separate-stderr bash -c 'cat lt.json | timeout 30 phn-ingest -'
	assert_output --regexp '^batch_'
}

@test "--queue: a FIFO in incoming/ is rejected, the next table ingested" {
	phn-init >/dev/null
	mkfifo runs/_queue/incoming/a.json
	cp lt.json runs/_queue/incoming/b.json
	run -1 --separate-stderr ingest --queue
	assert_output --regexp '^batch_'
	[ -p runs/_queue/rejected/a.json ]
	grep -qx 'phn-ingest: _queue/incoming/a.json: is a FIFO, not a regular file' \
	    runs/_queue/rejected/a.json.error.txt
	[ -f runs/_queue/processed/b.json ]
	[ -f runs/_queue/processed/b.ack.json ]
	[ -z "$(ls runs/_queue/incoming)" ]
}

@test "--queue: a device in incoming/ (by a symlink) is rejected, never read" {
	phn-init >/dev/null
	ln -s /dev/zero runs/_queue/incoming/a.json
	cp lt.json runs/_queue/incoming/b.json
	run -1 --separate-stderr ingest --queue
	assert_output --regexp '^batch_'
	[ -L runs/_queue/rejected/a.json ]
	grep -qx 'phn-ingest: _queue/incoming/a.json: is a character device, not a regular file' \
	    runs/_queue/rejected/a.json.error.txt
	[ -f runs/_queue/processed/b.json ]
}

@test "--queue: a FIFO prompt_ref rejects its table, the next one is ingested" {
	phn-init >/dev/null
	mkdir wd
	mkfifo wd/p.fifo
	jq '.jobs[0].working_directory = "wd" |
	    .jobs[0].steps[0] = {prompt_ref: "p.fifo"}' lt.json \
	    >runs/_queue/incoming/a.json
	cp lt.json runs/_queue/incoming/b.json
	run -1 --separate-stderr ingest --queue
	assert_output --regexp '^batch_'
	[ "${#lines[@]}" -eq 1 ]
	[ -f runs/_queue/rejected/a.json ]
	grep -qx "phn-ingest: _queue/incoming/a.json: jobs\\[0\\].steps\\[0\\].prompt_ref: $T/wd/p.fifo: is a FIFO, not a regular file" \
	    runs/_queue/rejected/a.json.error.txt
	[ -f runs/_queue/processed/b.json ]
	[ "$(find runs -name batch_meta.json | wc -l)" -eq 1 ]
}

@test "prompt_ref: a FIFO is refused with its JSON path" {
	mkfifo p.fifo
	reject '.jobs[0].steps[0] = {prompt_ref: "p.fifo"}'
	assert_stderr_line "$E jobs[0].steps[0].prompt_ref: $T/p.fifo: is a FIFO, not a regular file"
	no_batch
}

@test "prompt_ref: a symlink to a FIFO is refused" {
	mkfifo p.fifo
	ln -s p.fifo p.txt
	reject '.jobs[0].steps[0] = {prompt_ref: "p.txt"}'
	assert_stderr_line "$E jobs[0].steps[0].prompt_ref: $T/p.txt: is a FIFO, not a regular file"
}

@test "prompt_ref: a character device is refused" {
	reject '.jobs[0].steps[0] = {prompt_ref: "/dev/zero"}'
	assert_stderr_line "$E jobs[0].steps[0].prompt_ref: /dev/zero: is a character device, not a regular file"
}

@test "prompt_ref: a symlink in the workdir to a device is refused" {
	ln -s /dev/zero zero.txt
	reject '.jobs[0].steps[0] = {prompt_ref: "zero.txt"}'
	assert_stderr_line "$E jobs[0].steps[0].prompt_ref: $T/zero.txt: is a character device, not a regular file"
}

@test "prompt_ref: a socket is refused" {
	sock p.sock
	[ -S p.sock ]
	reject '.jobs[0].steps[0] = {prompt_ref: "p.sock"}'
	assert_stderr_line "$E jobs[0].steps[0].prompt_ref: $T/p.sock: is a socket, not a regular file"
}

@test "prompt_ref: a directory is refused" {
	mkdir d
	reject '.jobs[0].steps[0] = {prompt_ref: "d"}'
	assert_stderr_line "$E jobs[0].steps[0].prompt_ref: $T/d: Is a directory"
}

@test "output_schema_ref: a FIFO is refused with its JSON path" {
	mkfifo s.fifo
	reject '.jobs[0].steps[0].output_schema_ref = "s.fifo"'
	assert_stderr_line "$E jobs[0].steps[0].output_schema_ref: $T/s.fifo: is a FIFO, not a regular file"
	no_batch
}

@test "output_schema_ref: a character device is refused" {
	reject '.jobs[0].steps[0].output_schema_ref = "/dev/null"'
	assert_stderr_line "$E jobs[0].steps[0].output_schema_ref: /dev/null: is a character device, not a regular file"
}

@test "working_directory: a FIFO is refused with its JSON path" {
	mkfifo wd
	reject '.jobs[0].working_directory = "wd"'
	assert_stderr_line "$E jobs[0].working_directory: $T/wd is a FIFO, not a directory"
}

@test "working_directory: a character device is refused" {
	reject '.jobs[0].working_directory = "/dev/null"'
	assert_stderr_line "$E jobs[0].working_directory: /dev/null is a character device, not a directory"
}

@test "working_directory: a regular file is refused" {
	echo hi >wd
	reject '.jobs[0].working_directory = "wd"'
	assert_stderr_line "$E jobs[0].working_directory: $T/wd is a regular file, not a directory"
	no_batch
}

@test "working_directory: an empty string is refused" {
	reject '.jobs[0].working_directory = ""'
	assert_stderr_line "$E jobs[0].working_directory: must not be empty"
	reject '.jobs[1] = {working_directory: "", steps: [{prompt: "x"}]}'
	assert_stderr_line "$E jobs[1].working_directory: must not be empty"
}

@test "working_directory: a missing one is still only a warning" {
	accept '.jobs[0].working_directory = "later"'
	assert_stderr_line "phn-ingest: warning: lt.json: jobs[0].working_directory: $T/later does not exist yet"
}

# --- where references may lie ---------------------------------------------

@test "prompt_ref: an absolute file outside the roots is refused" {
	reject '.jobs[0].steps[0] = {prompt_ref: "/etc/passwd"}'
	assert_stderr_line "$E jobs[0].steps[0].prompt_ref: /etc/passwd lies $OUTSIDE"
	no_batch
}

@test "prompt_ref: /etc/shadow is refused" {
	reject '.jobs[0].steps[0] = {prompt_ref: "/etc/shadow"}'
	assert_stderr_line --partial "$E jobs[0].steps[0].prompt_ref: /etc/shadow"
	no_batch
}

@test "prompt_ref: ../ out of the table's directory is refused" {
	echo secret >"$OUT/p.txt"
	rel=../$(basename "$OUT")/p.txt
	reject --arg r "$rel" '.jobs[0].steps[0] = {prompt_ref: $r}'
	assert_stderr_line "$E jobs[0].steps[0].prompt_ref: $OUT/p.txt lies $OUTSIDE"
}

@test "prompt_ref: a symlink in the workdir pointing outside is refused" {
	mkdir wd
	echo secret >"$OUT/p.txt"
	ln -s "$OUT/p.txt" wd/p.txt
	reject '.jobs[0].working_directory = "wd" |
	    .jobs[0].steps[0] = {prompt_ref: "p.txt"}'
	assert_stderr_line "$E jobs[0].steps[0].prompt_ref: $T/wd/p.txt resolves to $OUT/p.txt, $OUTSIDE"
}

@test "prompt_ref: a symlinked directory pointing outside is refused" {
	echo secret >"$OUT/p.txt"
	ln -s "$OUT" sub
	reject '.jobs[0].steps[0] = {prompt_ref: "sub/p.txt"}'
	assert_stderr_line "$E jobs[0].steps[0].prompt_ref: $T/sub/p.txt resolves to $OUT/p.txt, $OUTSIDE"
}

@test "output_schema_ref: a symlink pointing outside is refused" {
	echo '{"type": "object"}' >"$OUT/s.json"
	ln -s "$OUT/s.json" s.json
	reject '.jobs[0].steps[0].output_schema_ref = "s.json"'
	assert_stderr_line "$E jobs[0].steps[0].output_schema_ref: $T/s.json resolves to $OUT/s.json, $OUTSIDE"
}

@test "output_schema_ref: an absolute file outside the roots is refused" {
	echo '{"type": "object"}' >"$OUT/s.json"
	reject --arg s "$OUT/s.json" '.jobs[0].steps[0].output_schema_ref = $s'
	assert_stderr_line "$E jobs[0].steps[0].output_schema_ref: $OUT/s.json lies $OUTSIDE"
}

@test "prompt_ref: in the workdir, itself outside the table's directory, is read" {
	echo 'from the workdir' >"$OUT/p.txt"
	accept --arg w "$OUT" '.jobs[0].working_directory = $w |
	    .jobs[0].steps[0] = {prompt_ref: "p.txt"}'
	[ "$(cat "runs/$ID/job_0001/steps/step1/prompt.txt")" = 'from the workdir' ]
}

@test "prompt_ref: a symlink staying inside the roots is read" {
	mkdir -p wd real
	echo 'inside' >real/p.txt
	ln -s ../real/p.txt wd/p.txt
	ln -s "$OUT" wdlink
	echo 'via the workdir link' >"$OUT/q.txt"
	accept '.jobs[0].working_directory = "wd" |
	    .jobs[0].steps[0] = {prompt_ref: "p.txt"} |
	    .jobs[1] = {working_directory: "wdlink",
	    steps: [{prompt_ref: "q.txt"}]}'
	[ "$(cat "runs/$ID/job_0001/steps/step1/prompt.txt")" = 'inside' ]
	[ "$(cat "runs/$ID/job_0002/steps/step1/prompt.txt")" = 'via the workdir link' ]
}

@test "limits.ref_roots: a file under a configured root is read" {
	echo 'shared prompt' >"$OUT/p.txt"
	echo '{"type": "object"}' >"$OUT/s.json"
	init_config --arg r "$OUT" '.limits.ref_roots = [$r]'
	accept --arg p "$OUT/p.txt" --arg s "$OUT/s.json" \
	    '.jobs[0].steps[0] = {prompt_ref: $p, output_schema_ref: $s}'
	[ "$(cat "runs/$ID/job_0001/steps/step1/prompt.txt")" = 'shared prompt' ]
	[ -f "runs/$ID/job_0001/steps/step1/output_schema.json" ]
}

@test "limits.ref_roots: a symlink in a root pointing out of every root is refused" {
	mkdir "$OUT/root" "$OUT/else"
	echo secret >"$OUT/else/p.txt"
	ln -s ../else/p.txt "$OUT/root/p.txt"
	init_config --arg r "$OUT/root" '.limits.ref_roots = [$r]'
	reject --arg p "$OUT/root/p.txt" '.jobs[0].steps[0] = {prompt_ref: $p}'
	assert_stderr_line "$E jobs[0].steps[0].prompt_ref: $OUT/root/p.txt resolves to $OUT/else/p.txt, $OUTSIDE"
}

@test "limits.ref_roots: a root's sibling with a common prefix is not under it" {
	mkdir "$OUT/root" "$OUT/rootx"
	echo secret >"$OUT/rootx/p.txt"
	init_config --arg r "$OUT/root" '.limits.ref_roots = [$r]'
	reject --arg p "$OUT/rootx/p.txt" '.jobs[0].steps[0] = {prompt_ref: $p}'
	assert_stderr_line "$E jobs[0].steps[0].prompt_ref: $OUT/rootx/p.txt lies $OUTSIDE"
}

@test "limits.ref_roots: empty in the default config" {
	phn-init >/dev/null
	[ "$(jq -c .limits.ref_roots runs/_system/harness_config.json)" = '[]' ]
}

@test "limits.ref_roots: not an array is an invalid config" {
	init_config '.limits.ref_roots = "/tmp"'
	run -100 --separate-stderr ingest lt.json
	assert_stderr_line "phn-ingest: $T/runs/_system/harness_config.json: limits.ref_roots: must be an array of absolute directory paths (is a string)"
}

@test "limits.ref_roots: a relative path is an invalid config" {
	init_config '.limits.ref_roots = ["/ok", "rel/dir"]'
	run -100 --separate-stderr ingest lt.json
	assert_stderr_line "phn-ingest: $T/runs/_system/harness_config.json: limits.ref_roots[1]: must be an absolute directory path (is \"rel/dir\")"
}

@test "limits.ref_roots: an empty string or a non-string is an invalid config" {
	init_config '.limits.ref_roots = ["", 5]'
	run -100 --separate-stderr ingest lt.json
	assert_stderr_line "phn-ingest: $T/runs/_system/harness_config.json: limits.ref_roots[0]: must be an absolute directory path (is \"\")"
	assert_stderr_line "phn-ingest: $T/runs/_system/harness_config.json: limits.ref_roots[1]: must be an absolute directory path (is 5)"
}

# --- the snapshots' permissions --------------------------------------------

@test "snapshots: prompt.txt keeps a 0600 prompt_ref's mode" {
	echo 'private' >p.txt
	chmod 600 p.txt
	accept '.jobs[0].steps[0] = {prompt_ref: "p.txt"}'
	[ "$(mode "runs/$ID/job_0001/steps/step1/prompt.txt")" = 600 ]
	# and so does the attempt's copy, the prompt phn-spawn sends
	A=$(phn-claim)
	run -0 phn-spawn -D "$A"
	[ "$(mode "$A/prompt.txt")" = 600 ]
}

@test "snapshots: output_schema.json keeps a 0640 schema's mode" {
	echo '{"type": "object"}' >s.json
	chmod 640 s.json
	accept '.jobs[0].steps[0].output_schema_ref = "s.json"'
	[ "$(mode "runs/$ID/job_0001/steps/step1/output_schema.json")" = 640 ]
	[ "$(mode "runs/$ID/job_0001/steps/step1/prompt.txt")" = 644 ]
}

@test "snapshots: never wider than 0644, even from a 0666 or 0755 file" {
	echo 'wide' >p.txt
	chmod 666 p.txt
	echo '{"type": "object"}' >s.json
	chmod 755 s.json
	accept '.jobs[0].steps[0] = {prompt_ref: "p.txt", output_schema_ref: "s.json"}'
	[ "$(mode "runs/$ID/job_0001/steps/step1/prompt.txt")" = 644 ]
	[ "$(mode "runs/$ID/job_0001/steps/step1/output_schema.json")" = 644 ]
}

@test "snapshots: the umask still narrows them" {
	echo 'x' >p.txt
	chmod 644 p.txt
	umask 077
	accept '.jobs[0].steps[0] = {prompt_ref: "p.txt"}'
	[ "$(mode "runs/$ID/job_0001/steps/step1/prompt.txt")" = 600 ]
}

@test "snapshots: the batch directory is readable once it is in place" {
	accept '.'
	[ "$(mode "runs/$ID")" = 755 ]
}

# --- integers beyond 2^53 -------------------------------------------------

# big PATH VALUE: lt.json with PATH set to the literal VALUE (sed, not jq,
# so the digits are kept as written).
big() {
	jq "$1 = 424242" "$BATS_FILE_TMPDIR/base.json" | sed "s/424242/$2/" >lt.json
	grep -q -- "$2" lt.json
}

@test "integers: concurrency 2^63-1 is out of range" {
	big .concurrency 9223372036854775807
	run -100 --separate-stderr ingest lt.json
	assert_stderr_line "$E concurrency: out of range: beyond 2^53 (is 9223372036854775807)"
}

@test "integers: concurrency beyond int64 is out of range" {
	big .concurrency 99999999999999999999
	run -100 --separate-stderr ingest lt.json
	assert_stderr_line --partial "$E concurrency: out of range: beyond 2^53"
}

@test "integers: 2^53 is accepted, 2^53+1 is out of range" {
	big .concurrency 9007199254740992
	run -0 --separate-stderr ingest lt.json
	big .concurrency 9007199254740993
	run -100 --separate-stderr ingest lt.json
	assert_stderr_line "$E concurrency: out of range: beyond 2^53 (is 9007199254740993)"
}

@test "integers: a huge negative concurrency is out of range" {
	big .concurrency -9223372036854775808
	run -100 --separate-stderr ingest lt.json
	assert_stderr_line "$E concurrency: out of range: beyond 2^53 (is -9223372036854775808)"
}

@test "integers: every integer field beyond 2^53 is out of range, by its JSON path" {
	while read -r path value; do
		big "$path" "$value"
		run -100 --separate-stderr ingest lt.json
		assert_stderr_line "$E ${path#.}: out of range: beyond 2^53 (is $value)"
	done <<-'EOF'
	.retries.max_attempts 9223372036854775807
	.jobs[0].steps[0].retry_policy.max_attempts 9223372036854775807
	.scoreboard.stuck_after_seconds 9223372036854775807
	.timeouts.step_timeout_seconds 9223372036854775807
	.jobs[0].steps[0].timeout_seconds 9223372036854775807
	.jobs[0].steps[0].timeout_seconds 1e300
	EOF
}

@test "integers: defaults_overrides are checked the same way" {
	big .defaults_overrides.retries.max_attempts 9223372036854775807
	run -100 --separate-stderr ingest lt.json
	assert_stderr_line "$E defaults_overrides.retries.max_attempts: out of range: beyond 2^53 (is 9223372036854775807)"
}

@test "integers: a harness config limit of 2^63-1 is out of range" {
	phn-init >/dev/null
	f=runs/_system/harness_config.json
	jq '.limits.max_jobs_per_batch = 424242' "$f" |
	    sed 's/424242/9223372036854775807/' >cfg.tmp
	mv cfg.tmp "$f"
	run -100 --separate-stderr ingest lt.json
	assert_stderr_line "phn-ingest: $T/$f: limits.max_jobs_per_batch: out of range: beyond 2^53 (is 9223372036854775807)"
}
