#!/usr/bin/env bats
# tests/13-workspace.bats -- isolated workspaces outside git (the copy
# fallback, allow_isolated_copy_fallback and copy_exclude_names), the
# submit-time checks of isolated jobs (phn-ingest's preflight, its size
# guards and --skip-preflight), and dry runs whose working directories do
# not exist.  Attempts run through phn-spawn with the fake codex of
# tests/fake-codex, as in 30-phn-spawn.bats.

load helper
load spawn-helper

FAKE=$PHN_REPO/tests/fake-codex/codex
ISO='.workspace_policy = {mode: "isolated"}'
COPY='.workspace_policy = {mode: "isolated",
    allow_isolated_copy_fallback: true}'
E='phn-ingest: lt.json:'

setup() {
	spawn_setup 1
	export PHN_CODEX=$FAKE FAKE_CODEX_LOG=$T/codex.log
	unset PHN_CODEX_CONFIG FAKE_CODEX_MODE FAKE_CODEX_NO_WEB_SEARCH
}

teardown() {
	spawn_teardown
}

git_repo() { # DIR: a git repo with one commit
	git -C "$1" init -q
	git -C "$1" -c user.email=t@t -c user.name=t add -A
	git -C "$1" -c user.email=t@t -c user.name=t commit -qm init
}

# lt JQ_FILTER: lt.json, the spawn suites' one-job table (job j, workdir
# w, one step s), edited by the filter; not ingested.
lt() {
	jq -n --arg g "$(goal_words 151)" '{batch_goal_summary: $g,
	    execution_policy: {skip_git_repo_check: true,
	        sandbox: "workspace-write", approval_policy: "never"},
	    jobs: [{job_id: "j", working_directory: "w",
	        steps: [{step_id: "s", prompt: "hi"}]}]}' | jq "$1" >lt.json
}

# mk JQ_FILTER [OPTION...]: lt, then ingested with the options: B.
mk() {
	lt "$1"
	shift
	B=$(phn-ingest "$@" lt.json)
}

# submit [OPTION...]: phn-ingest lt.json with the options, as run.
submit() {
	run --separate-stderr phn-ingest "$@" lt.json
}

# ------------------------------------------------------------ copy fallback

@test "copy fallback: a non-git source is copied to _workspace once, reused by later steps" {
	echo one >w/a.txt
	batch '[{"step_id": "s1", "prompt": "FAKE:write_file:made.txt"},
	    {"step_id": "s2", "prompt": "hi", "depends_on": ["s1"]}]' "$COPY"
	[ -n "$B" ]
	claim s1
	run phn-spawn "$A"
	assert_success
	ws=$T/runs/$B/j/_workspace
	[ "$(head -n 1 "$T/codex.log" | cut -f1)" = "$ws" ]
	[ "$(cat "$ws/a.txt")" = one ]
	[ -f "$ws/made.txt" ]
	[ ! -e w/made.txt ]
	[ ! -e "$ws/.git" ]
	[ ! -e "$ws.tmp" ]
	grep -q -- "-C $ws " "$A/codex.command.txt"
	# The second step works in the same copy; the source is not copied again.
	echo two >w/a.txt
	claim s2
	run phn-spawn "$A"
	assert_success
	[ "$(tail -n 1 "$T/codex.log" | cut -f1)" = "$ws" ]
	[ -f "$ws/made.txt" ]
	[ "$(cat "$ws/a.txt")" = one ]
}

@test "copy fallback: a copy holding only dotfiles is reused too" {
	echo h >w/.hidden
	batch '[{"step_id": "s1", "prompt": "hi"},
	    {"step_id": "s2", "prompt": "hi", "depends_on": ["s1"]}]' "$COPY"
	claim s1
	run phn-spawn "$A"
	assert_success
	echo changed >w/.hidden
	claim s2
	run phn-spawn "$A"
	assert_success
	[ "$(cat "runs/$B/j/_workspace/.hidden")" = h ]
}

@test "copy fallback: copy_exclude_names and the caches are left out at any depth" {
	mkdir -p w/sub/node_modules w/__pycache__ w/sub/.venv w/keep
	echo a >w/a.txt
	echo b >w/sub/b.txt
	echo x >w/secret.env
	echo x >w/sub/secret.env
	echo x >w/sub/node_modules/m.js
	echo x >w/__pycache__/c.pyc
	echo x >w/sub/.venv/v
	echo k >w/keep/k
	mk "$COPY | .workspace_policy.copy_exclude_names = [\"secret.env\"]"
	claim s
	run phn-spawn "$A"
	assert_success
	ws=$T/runs/$B/j/_workspace
	[ -f "$ws/a.txt" ]
	[ -f "$ws/sub/b.txt" ]
	[ -f "$ws/keep/k" ]
	[ ! -e "$ws/secret.env" ]
	[ ! -e "$ws/sub/secret.env" ]
	[ ! -e "$ws/sub/node_modules" ]
	[ ! -e "$ws/__pycache__" ]
	[ ! -e "$ws/sub/.venv" ]
}

@test "copy fallback: symlinks are copied as symlinks, modes are kept" {
	echo a >w/a.txt
	chmod 0751 w/a.txt
	ln -s a.txt w/rel
	ln -s /nonexistent/target w/dangling
	mkdir w/d
	ln -s ../a.txt w/d/up
	mk "$COPY"
	claim s
	run phn-spawn "$A"
	assert_success
	ws=$T/runs/$B/j/_workspace
	[ -L "$ws/rel" ]
	[ "$(readlink "$ws/rel")" = a.txt ]
	[ -L "$ws/dangling" ]
	[ "$(readlink "$ws/dangling")" = /nonexistent/target ]
	[ "$(readlink "$ws/d/up")" = ../a.txt ]
	[ "$(stat -c %a "$ws/a.txt")" = 751 ]
}

@test "copy fallback: a store inside the source directory is not copied" {
	echo a >top.txt
	mk "$COPY | .jobs[0].working_directory = \".\""
	claim s
	run phn-spawn "$A"
	assert_success
	ws=$T/runs/$B/j/_workspace
	[ -f "$ws/top.txt" ]
	[ -d "$ws/w" ]
	[ ! -e "$ws/runs" ]
}

@test "copy fallback: a leftover _workspace.tmp or empty _workspace is replaced" {
	echo a >w/a.txt
	mk "$COPY"
	mkdir -p "runs/$B/j/_workspace.tmp/junk" "runs/$B/j/_workspace"
	claim s
	run phn-spawn "$A"
	assert_success
	[ -f "runs/$B/j/_workspace/a.txt" ]
	[ ! -e "runs/$B/j/_workspace/junk" ]
	[ ! -e "runs/$B/j/_workspace.tmp" ]
}

@test "copy fallback: a copy that cannot be put in place is a spawn_error (111)" {
	mk "$COPY"
	echo not-a-dir >"runs/$B/j/_workspace"
	claim s
	run phn-spawn "$A"
	assert_failure 111
	assert_outcome failed spawn_error
	st '.errors[-1]' | grep -q 'isolated workspace: unable to put the copy .*/_workspace in place: Not a directory'
	[ ! -e "runs/$B/j/_workspace.tmp" ]
}

@test "copy fallback not allowed (absent or false): spawn_error saying so" {
	mk "$ISO" --skip-preflight
	claim s
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed spawn_error
	st '.errors[0]' | grep -q "$T/w is not inside a git repository"
	st '.errors[0]' | grep -q 'allow_isolated_copy_fallback true for a copy'
	[ ! -e "runs/$B/j/_workspace" ]
	jq_edit lt.json '.workspace_policy.allow_isolated_copy_fallback = false'
	B=$(phn-ingest --skip-preflight lt.json)
	claim s
	run phn-spawn "$A"
	assert_failure 1
	st '.errors[0]' | grep -q 'not inside a git repository'
}

@test "isolated: a git repository with no commit at run time is a spawn_error" {
	mk "$ISO" --skip-preflight
	git -C w init -q
	claim s
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed spawn_error
	st '.errors[0]' | grep -q "the git repository $T/w has no commit yet"
}

@test "copy fallback: a job's workspace_policy keys override the batch's, key by key" {
	mk "$ISO | .jobs[0].workspace_policy = {allow_isolated_copy_fallback: true}"
	[ -n "$B" ]
	claim s
	run phn-spawn "$A"
	assert_success
	[ -d "runs/$B/j/_workspace" ]
}

@test "isolated in a git repository still makes a worktree, even with the fallback allowed" {
	echo t >w/t.txt
	git_repo w
	mk "$COPY"
	claim s
	run phn-spawn "$A"
	assert_success
	[ -f "runs/$B/j/_workspace/.git" ]
	[ "$(git -C w worktree list | wc -l)" -eq 2 ]
}

@test "isolated: a source that is missing at run time is a spawn_error" {
	mk "$COPY"
	rmdir w
	claim s
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed spawn_error
	st '.errors[0]' | grep -q "isolated workspace: $T/w: No such file or directory"
}

# ---------------------------------------------------------------- preflight

@test "preflight: isolated outside git without the fallback is refused at submit (100), nothing written" {
	lt "$ISO"
	submit
	[ "$status" -eq 100 ]
	assert_output ''
	assert_stderr_line "$E jobs[0].working_directory: $T/w is not inside a git repository; workspace_policy.mode \"isolated\" needs one with at least one commit, or workspace_policy.allow_isolated_copy_fallback true for a copy (or use mode \"shared\")"
	assert_stderr_line "$E preflight failed; --skip-preflight skips these checks"
	[ -z "$(ls runs | grep -v '^_')" ]
	[ ! -e runs/_queue/index/by_launch_table_sha256 ]
}

@test "preflight: --skip-preflight, phn submit --skip-preflight, and the fallback let it through" {
	lt "$ISO"
	submit --skip-preflight
	[ "$status" -eq 0 ]
	[ -d "runs/$output" ]
	jq_edit lt.json '.batch_id = "b2"'
	run -0 phn submit --skip-preflight lt.json
	assert_output b2
	jq_edit lt.json '.batch_id = "b3"'
	run -100 --separate-stderr phn submit lt.json
	assert_stderr_line --partial "$E jobs[0].working_directory: $T/w is not inside a git repository"
	jq_edit lt.json '.workspace_policy.allow_isolated_copy_fallback = true'
	run -0 phn submit lt.json
	assert_output b3
}

@test "preflight: --check runs it too; --queue does not (a queued table was submitted)" {
	lt "$ISO"
	run -100 --separate-stderr phn-ingest --check lt.json
	assert_stderr_line --partial "$E jobs[0].working_directory: $T/w is not inside a git repository"
	run -0 phn-ingest --check --skip-preflight lt.json
	mkdir -p runs/_queue/incoming
	cp lt.json runs/_queue/incoming/q.json
	run -0 phn-ingest --queue
	[ -f runs/_queue/processed/q.json ]
	[ -d "runs/$output" ]
}

@test "preflight: an isolated job's directory must exist" {
	lt "$ISO | .jobs[0].working_directory = \"nope\""
	submit
	[ "$status" -eq 100 ]
	assert_stderr_line "$E jobs[0].working_directory: $T/nope: No such file or directory; an isolated job's directory must exist when the table is submitted"
}

@test "preflight: an isolated job's directory must be a directory" {
	echo f >afile
	lt "$ISO | .jobs[0].working_directory = \"afile\""
	submit
	[ "$status" -eq 100 ]
	assert_stderr_line --partial "$E jobs[0].working_directory: "
}

@test "preflight: a git repository with no commit is refused" {
	git -C w init -q
	lt "$COPY"
	submit
	[ "$status" -eq 100 ]
	assert_stderr_line "$E jobs[0].working_directory: the git repository $T/w has no commit yet; an isolated job's worktree is made from its HEAD: commit something first"
}

@test "preflight: git that cannot run is an error naming the job" {
	lt "$ISO"
	mkdir bin
	ln -s "$(command -v phn-ingest)" bin/phn-ingest
	run -100 --separate-stderr env PATH="$T/bin" phn-ingest lt.json
	assert_stderr_line "$E jobs[0].working_directory: git rev-parse --show-toplevel in $T/w: git not found"
}

@test "preflight: shared jobs are not checked; per job, the job's policy wins" {
	mkdir v
	lt '.jobs[0].working_directory = "nope"'
	submit
	[ "$status" -eq 0 ]
	lt "$ISO | .jobs[0].workspace_policy = {mode: \"shared\"} |
	    .jobs[1] = {job_id: \"k\", working_directory: \"v\",
	    steps: [{prompt: \"x\"}]}"
	submit
	[ "$status" -eq 100 ]
	assert_stderr_line --partial "$E jobs[1].working_directory: $T/v is not inside a git repository"
	run grep -c 'jobs\[0\]' <<<"$stderr"
	assert_output 0
}

@test "preflight: a committed git repository passes, checked once for all its jobs" {
	echo t >w/t.txt
	git_repo w
	lt "$ISO | .jobs[1] = (.jobs[0] | .job_id = \"k\")"
	submit
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	rm -rf w/.git
	git -C w init -q
	jq_edit lt.json '.batch_id = "b2"'
	submit
	[ "$status" -eq 100 ]
	run grep -c 'has no commit yet' <<<"$stderr"
	assert_output 1
}

@test "preflight: limits.max_isolated_git_root_du_bytes" {
	printf 0123456789 >w/ten
	git_repo w
	lt "$ISO"
	jq_edit runs/_system/harness_config.json \
	    '.limits.max_isolated_git_root_du_bytes = 1'
	submit
	[ "$status" -eq 100 ]
	grep -Eqx "$E jobs\\[0\\]\\.working_directory: the git repository $T/w takes [0-9]+ bytes on disk, more than limits\\.max_isolated_git_root_du_bytes \\(1\\); each isolated job gets a worktree of it" <<<"$stderr"
	jq_edit runs/_system/harness_config.json \
	    '.limits.max_isolated_git_root_du_bytes = 100000000'
	submit
	[ "$status" -eq 0 ]
}

@test "preflight: limits.max_isolated_git_root_tracked_bytes counts tracked files only" {
	printf 0123456789 >w/ten
	git_repo w
	head -c 5000 /dev/zero >w/untracked
	lt "$ISO"
	jq_edit runs/_system/harness_config.json \
	    '.limits.max_isolated_git_root_tracked_bytes = 9'
	submit
	[ "$status" -eq 100 ]
	assert_stderr_line "$E jobs[0].working_directory: the git repository $T/w tracks 10 bytes, more than limits.max_isolated_git_root_tracked_bytes (9); each isolated job gets a worktree of it"
	jq_edit runs/_system/harness_config.json \
	    '.limits.max_isolated_git_root_tracked_bytes = 10'
	submit
	[ "$status" -eq 0 ]
}

@test "preflight: the du guard does not count the store inside the repository" {
	git_repo_root() { git -C . init -q; echo t >t.txt
		git -C . -c user.email=t@t -c user.name=t add t.txt
		git -C . -c user.email=t@t -c user.name=t commit -qm init; }
	git_repo_root
	head -c 2000000 /dev/urandom >runs/big
	lt "$ISO | .jobs[0].working_directory = \".\""
	jq_edit runs/_system/harness_config.json \
	    '.limits.max_isolated_git_root_du_bytes = 1000000'
	submit
	[ "$status" -eq 0 ]
}

@test "harness config: the size guards are null or integers >= 0" {
	lt "$ISO"
	jq_edit runs/_system/harness_config.json \
	    '.limits.max_isolated_git_root_du_bytes = -1'
	run -100 --separate-stderr phn-ingest --skip-preflight lt.json
	assert_stderr_line --partial "limits.max_isolated_git_root_du_bytes: must be an integer >= 0 or null (is -1)"
	jq_edit runs/_system/harness_config.json \
	    '.limits.max_isolated_git_root_du_bytes = null |
	    .limits.max_isolated_git_root_tracked_bytes = "x"'
	run -100 --separate-stderr phn-ingest --skip-preflight lt.json
	assert_stderr_line --partial "limits.max_isolated_git_root_tracked_bytes: must be an integer >= 0 or null (is \"x\")"
	# The defaults: null (no guard).
	phn-init --force >/dev/null
	run jq -c '[.limits.max_isolated_git_root_du_bytes,
	    .limits.max_isolated_git_root_tracked_bytes]' \
	    runs/_system/harness_config.json
	assert_output '[null,null]'
}

# ------------------------------------------------------------------ dry run

@test "dry run: a missing working directory is not needed (phn-spawn --no-codex)" {
	mk '.jobs[0].working_directory = "elsewhere/not/here"'
	claim s
	run --separate-stderr phn-spawn --no-codex "$A"
	assert_success
	assert_outcome succeeded null
	assert_stderr_line "phn-spawn: $A: warning: dry run: working directory $T/elsewhere/not/here: No such file or directory (a real run fails)"
	[ -f "$A/final.json" ]
	[ ! -e elsewhere ]
}

@test "dry run: an isolated job whose directory is missing goes through too" {
	mk "$ISO | .jobs[0].working_directory = \"gone\"" --skip-preflight
	claim s
	run phn-spawn -D "$A"
	assert_success
	assert_outcome succeeded null
	[ ! -e "runs/$B/j/_workspace" ]
}

@test "dry run: a real run still fails with spawn_error when the workdir is missing" {
	mk '.jobs[0].working_directory = "gone"'
	claim s
	run phn-spawn "$A"
	assert_failure 1
	assert_outcome failed spawn_error
	st '.errors[0]' | grep -q "working directory $T/gone: No such file or directory"
}

@test "dry run: phn tick --no-codex rehearses a table whose directories are missing" {
	jq -n --arg g "$(goal_words 151)" '{batch_goal_summary: $g,
	    jobs: [{job_id: "a", working_directory: "/nonexistent/phn/a",
	        steps: [{step_id: "s1", prompt: "x"},
	            {step_id: "s2", prompt: "y", depends_on: ["s1"]}]},
	    {job_id: "b", working_directory: "missing/b",
	        workspace_policy: {mode: "isolated"},
	        steps: [{step_id: "s", prompt: "z", depends_on: ["a/s2"]}]}]}' \
	    >lt.json
	run -100 phn submit lt.json
	B=$(phn submit --skip-preflight lt.json)
	run -0 phn tick --no-codex
	run -0 phn-score -b "$B" --json
	run jq -c '[.batch.counts.succeeded, .batch.outcome]' <<<"$output"
	assert_output '[3,"succeeded"]'
}
