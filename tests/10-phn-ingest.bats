#!/usr/bin/env bats
# tests/10-phn-ingest.bats -- phn-ingest (Launch Table validation and
# ingest, the queue) and phn-init (the harness config).
#
# Each test starts in a fresh $T (PHN_ROOT) holding lt.json, a minimal
# valid table from write_lt.  reject/accept write lt.json as that table
# edited with a jq filter, and ingest it.

load helper

setup_file() {
	write_lt "$BATS_FILE_TMPDIR/base.json"
}

setup() {
	phn_setup
	cp "$BATS_FILE_TMPDIR/base.json" lt.json
}

# reject [JQ-OPTION...] FILTER: exit 100, nothing on stdout.
reject() {
	jq "$@" "$BATS_FILE_TMPDIR/base.json" >lt.json
	run -100 --separate-stderr phn-ingest lt.json
	assert_output ''
	assert_stderr_prefix phn-ingest
}

# accept [JQ-OPTION...] FILTER: exit 0, a batch id on stdout, in $ID.
accept() {
	jq "$@" "$BATS_FILE_TMPDIR/base.json" >lt.json
	run -0 --separate-stderr phn-ingest lt.json
	assert_output --regexp '^batch_[0-9]{8}T[0-9]{6}Z_[0-9a-f]{8}$'
	ID=$output
}

# meta FILTER: query the batch_meta.json of batch $ID.
meta() {
	jq -r "$1" "runs/$ID/batch_meta.json"
}

# init_config FILTER: a harness config edited with jq.
init_config() {
	phn-init >/dev/null
	jq_edit runs/_system/harness_config.json "$1"
}

E='phn-ingest: lt.json:'
IDMSG='must be 1-128 characters of [A-Za-z0-9._-] starting with a letter or digit'

# --- ids -------------------------------------------------------------

@test "ids: bad characters, . and .., slashes, leading punctuation are rejected" {
	for id in '../evil' 'a/b' '..' '.' 'a b' '-x' '_x' 'a@b' 'é'; do
		reject --arg id "$id" '.jobs[0].job_id = $id'
		assert_stderr_line "$E jobs[0].job_id: $IDMSG"
		reject --arg id "$id" '.jobs[0].steps[0].step_id = $id'
		assert_stderr_line "$E jobs[0].steps[0].step_id: $IDMSG"
		reject --arg id "$id" '.batch_id = $id'
		assert_stderr_line "$E batch_id: $IDMSG"
	done
}

@test "ids: 128 characters are accepted, 129 rejected" {
	long=$(printf 'a%.0s' $(seq 128))
	accept --arg id "$long" '.jobs[0].job_id = $id | .jobs[0].steps[0].step_id = $id'
	[ -d "runs/$ID/$long/steps/$long" ]
	reject --arg id "${long}b" '.jobs[0].job_id = $id'
	assert_stderr_line "$E jobs[0].job_id: is longer than 128 characters"
	reject --arg id "${long}b" '.jobs[0].steps[0].step_id = $id'
	assert_stderr_line "$E jobs[0].steps[0].step_id: is longer than 128 characters"
}

@test "ids: null, integers, empty strings and \\u0000 are rejected" {
	reject '.jobs[0].job_id = null'
	assert_stderr_line "$E jobs[0].job_id: must be a string"
	reject '.jobs[0].job_id = 5'
	assert_stderr_line "$E jobs[0].job_id: must be a string"
	reject '.jobs[0].steps[0].step_id = null'
	assert_stderr_line "$E jobs[0].steps[0].step_id: must be a string"
	reject '.jobs[0].steps[0].step_id = 7'
	assert_stderr_line "$E jobs[0].steps[0].step_id: must be a string"
	reject '.batch_id = 1'
	assert_stderr_line "$E batch_id: must be a string"
	reject '.jobs[0].job_id = ""'
	assert_stderr_line "$E jobs[0].job_id: must not be empty"
	reject '.jobs[0].job_id = "a\u0000b"'
	assert_stderr_line "$E jobs[0].job_id: must not contain \\u0000"
}

@test "ids: duplicate job ids and duplicate step ids in a job are rejected" {
	reject '.jobs += [.jobs[0]] | .jobs[0].job_id = "x" | .jobs[1].job_id = "x"'
	assert_stderr_line "$E jobs[1].job_id: \"x\" is used by jobs[0] too; job ids must be unique"
	reject '.jobs[0].steps += [.jobs[0].steps[0], .jobs[0].steps[0]] |
	    .jobs[0].steps[0].step_id = "s" | .jobs[0].steps[2].step_id = "s"'
	assert_stderr_line "$E jobs[0].steps[2].step_id: \"s\" is used by steps[0] too; step ids must be unique in a job"
	# A generated id collides with an explicit one too.
	reject '.jobs += [.jobs[0]] | .jobs[1].job_id = "job_0001"'
	assert_stderr_line "$E jobs[1].job_id: \"job_0001\" is used by jobs[0] too; job ids must be unique"
}

@test "ids: the same step id in two jobs is fine" {
	accept '.jobs += [.jobs[0]] | .jobs[].steps[0].step_id = "s"'
	[ -f "runs/$ID/job_0001/steps/s/prompt.txt" ]
	[ -f "runs/$ID/job_0002/steps/s/prompt.txt" ]
}

# --- top level -----------------------------------------------------------

@test "forbidden keys: the harness-set fields are rejected, each by name" {
	reject '.effective_defaults = {} | .launch_table_sha256 = "x" |
	    .harness_config_version = "hc_000000000000"'
	assert_stderr_line "$E effective_defaults: set by the harness; remove it from the Launch Table"
	assert_stderr_line "$E launch_table_sha256: set by the harness; remove it from the Launch Table"
	assert_stderr_line "$E harness_config_version: set by the harness; remove it from the Launch Table"
	[ "${#stderr_lines[@]}" -eq 3 ]
}

@test "spec_version: missing defaults to 1.0.0; 1.x.y accepted" {
	accept 'del(.spec_version)'
	[ "$(meta .spec_version)" = 1.0.0 ]
	accept '.spec_version = "1.12.3"'
	[ "$(meta .spec_version)" = 1.12.3 ]
}

@test "spec_version: bad form, major 2 and non-strings are rejected" {
	reject '.spec_version = "1.0"'
	assert_stderr_line "$E spec_version: \"1.0\" is not MAJOR.MINOR.PATCH (e.g. 1.0.0)"
	reject '.spec_version = "1.0.0-beta"'
	assert_stderr_line "$E spec_version: \"1.0.0-beta\" is not MAJOR.MINOR.PATCH (e.g. 1.0.0)"
	reject '.spec_version = "2.0.0"'
	assert_stderr_line "$E spec_version: unsupported major version in \"2.0.0\"; supported: 1.x.y"
	reject '.spec_version = 1'
	assert_stderr_line "$E spec_version: must be a string like \"1.0.0\" (is an integer)"
	reject '.spec_version = null'
	assert_stderr_line "$E spec_version: must be a string like \"1.0.0\" (is null)"
}

@test "goal summary: 150 words are rejected, naming the setting" {
	reject --arg g "$(goal_words 150)" '.batch_goal_summary = $g'
	assert_stderr_line "$E batch_goal_summary: has 150 words; at least 151 are required (limits.min_goal_summary_words in the harness config)"
}

@test "goal summary: 151 words are accepted, also split by Unicode spaces" {
	accept --arg g "$(goal_words 151)" '.batch_goal_summary = $g'
	# NBSP and IDEOGRAPHIC SPACE separate words as in Python's split().
	accept --arg g "$(goal_words 151 | sed 's/ /\xe3\x80\x80/; s/ /\xc2\xa0/g')" \
	    '.batch_goal_summary = $g'
	# ZERO WIDTH SPACE does not: 151 tokens glued in pairs are 76 words.
	reject --arg g "$(goal_words 151 | sed 's/\(w[0-9]*\) \(w[0-9]*\)/\1\xe2\x80\x8b\2/g')" \
	    '.batch_goal_summary = $g'
	assert_stderr_line --partial "$E batch_goal_summary: has 76 words;"
}

@test "goal summary: missing, empty or not a string is rejected" {
	for f in 'del(.batch_goal_summary)' '.batch_goal_summary = ""' \
	    '.batch_goal_summary = 5'; do
		reject "$f"
		assert_stderr_line "$E batch_goal_summary: required: a string describing the batch"
	done
}

@test "goal summary: a config with a lower limit accepts a shorter goal" {
	init_config '.limits.min_goal_summary_words = 10'
	accept --arg g "$(goal_words 10)" '.batch_goal_summary = $g'
	reject --arg g "$(goal_words 9)" '.batch_goal_summary = $g'
	assert_stderr_line "$E batch_goal_summary: has 9 words; at least 10 are required (limits.min_goal_summary_words in the harness config)"
}

@test "jobs: missing, empty, not an array, or holding non-objects" {
	for f in 'del(.jobs)' '.jobs = []' '.jobs = {}' '.jobs = "x"'; do
		reject "$f"
		assert_stderr_line "$E jobs: required: a non-empty array of jobs"
	done
	reject '.jobs += [1, null]'
	assert_stderr_line "$E jobs[1]: must be an object (is an integer)"
	assert_stderr_line "$E jobs[2]: must be an object (is null)"
}

@test "jobs: working_directory missing, null or not a string" {
	reject 'del(.jobs[0].working_directory)'
	assert_stderr_line "$E jobs[0].working_directory: required: a directory path"
	reject '.jobs[0].working_directory = null'
	assert_stderr_line "$E jobs[0].working_directory: must be a directory path (is null)"
	reject '.jobs[0].working_directory = 5'
	assert_stderr_line "$E jobs[0].working_directory: must be a directory path (is an integer)"
}

@test "jobs: a workdir that does not exist yet is a warning, not an error" {
	accept '.jobs[0].working_directory = "later"'
	assert_stderr_line "phn-ingest: warning: lt.json: jobs[0].working_directory: $T/later does not exist yet"
	[ "$(meta '.jobs[0].job_workdir')" = "$T/later" ]
}

@test "steps: missing, empty, or not objects" {
	for f in 'del(.jobs[0].steps)' '.jobs[0].steps = []' '.jobs[0].steps = {}'; do
		reject "$f"
		assert_stderr_line "$E jobs[0].steps: required: a non-empty array of steps"
	done
	reject '.jobs[0].steps += ["x"]'
	assert_stderr_line "$E jobs[0].steps[1]: must be an object (is a string)"
}

# --- prompts ----------------------------------------------------------

@test "prompt: neither, both, empty, or not a string" {
	reject '.jobs[0].steps[0] = {}'
	assert_stderr_line "$E jobs[0].steps[0]: needs a prompt or a prompt_ref"
	echo text >p.txt
	reject '.jobs[0].steps[0].prompt_ref = "p.txt"'
	assert_stderr_line "$E jobs[0].steps[0]: has both prompt and prompt_ref; give exactly one"
	reject '.jobs[0].steps[0].prompt = ""'
	assert_stderr_line "$E jobs[0].steps[0].prompt: must not be empty"
	reject '.jobs[0].steps[0].prompt = ["x"]'
	assert_stderr_line "$E jobs[0].steps[0].prompt: must be a string without \\u0000 (is an array)"
	reject '.jobs[0].steps[0].prompt = "a\u0000b"'
	assert_stderr_line "$E jobs[0].steps[0].prompt: must be a string without \\u0000 (is a string)"
	reject '.jobs[0].steps[0].append_prompt = 5'
	assert_stderr_line "$E jobs[0].steps[0].append_prompt: must be a string or null (is an integer)"
}

@test "prompt_ref: a missing file is an error naming where it looked" {
	reject '.jobs[0].steps[0] = {prompt_ref: "nope.txt"}'
	assert_stderr_line "$E jobs[0].steps[0].prompt_ref: $T/nope.txt: No such file or directory"
	mkdir wd
	reject '.jobs[0].working_directory = "wd" |
	    .jobs[0].steps[0] = {prompt_ref: "nope.txt"}'
	assert_stderr_line "$E jobs[0].steps[0].prompt_ref: \"nope.txt\" not found (looked for $T/wd/nope.txt and $T/nope.txt)"
	reject '.jobs[0].steps[0] = {prompt_ref: ""}'
	assert_stderr_line --partial "$E jobs[0].steps[0].prompt_ref: must be a non-empty file path"
}

@test "prompt_ref: a file that is not UTF-8 is rejected" {
	printf 'caf\351\n' >latin1.txt
	reject '.jobs[0].steps[0] = {prompt_ref: "latin1.txt"}'
	assert_stderr_line "$E jobs[0].steps[0].prompt_ref: $T/latin1.txt: not UTF-8 text"
}

@test "prompt_ref: looked up in the job workdir first, then the table's directory" {
	mkdir -p tables/wd
	printf 'from workdir\n' >tables/wd/p.txt
	printf 'from table dir\n' >tables/p.txt
	printf 'only in table dir\n' >tables/q.txt
	jq '.jobs[0].working_directory = "wd" |
	    .jobs[0].steps = [{step_id: "p", prompt_ref: "p.txt"},
	    {step_id: "q", prompt_ref: "q.txt"}]' lt.json >tables/lt.json
	# Run from elsewhere: nothing resolves against the current directory.
	mkdir elsewhere
	cd elsewhere
	run -0 --separate-stderr phn-ingest --root "$T" ../tables/lt.json
	ID=$output
	cd "$T"
	[ "$(meta '.jobs[0].job_workdir')" = "$T/tables/wd" ]
	[ "$(cat "runs/$ID/job_0001/steps/p/prompt.txt")" = "from workdir" ]
	[ "$(cat "runs/$ID/job_0001/steps/q/prompt.txt")" = "only in table dir" ]
	[ "$(meta '.jobs[0].steps[0].prompt_ref')" = p.txt ]
}

@test "prompt.txt: pack text, blank line, prompt, blank line, append_prompt" {
	accept '.packs = {d: {text: "  DEFAULT PACK\n"}, j: {text: "JOB PACK"},
	    s: {text: "STEP PACK"}} | .default_pack_id = "d" |
	    .jobs[0].steps = [{prompt: "one", append_prompt: "Report."},
	    {prompt: "two", pack_id: "s"}] |
	    .jobs += [{working_directory: ".", pack_id: "j",
	    steps: [{prompt: "three"}]}, {working_directory: ".",
	    steps: [{prompt: "four", append_prompt: ""}]}]'
	s=runs/$ID
	printf 'DEFAULT PACK\n\none\n\nReport.' >exp1
	cmp exp1 "$s/job_0001/steps/step1/prompt.txt"
	printf 'STEP PACK\n\ntwo' >exp2
	cmp exp2 "$s/job_0001/steps/step2/prompt.txt"
	printf 'JOB PACK\n\nthree' >exp3
	cmp exp3 "$s/job_0002/steps/step1/prompt.txt"
	printf 'DEFAULT PACK\n\nfour' >exp4
	cmp exp4 "$s/job_0003/steps/step1/prompt.txt"
	# Without a pack the prompt is the prompt.
	accept '.'
	printf 'Say hello.' >exp5
	cmp exp5 "runs/$ID/job_0001/steps/step1/prompt.txt"
	sum=$(sha256sum <"runs/$ID/job_0001/steps/step1/prompt.txt")
	[ "$(meta '.jobs[0].steps[0].prompt_sha256')" = "${sum%% *}" ]
}

# --- output schemas ----------------------------------------------------

@test "output_schema_ref: missing, not JSON, or not an object" {
	reject '.jobs[0].steps[0].output_schema_ref = "nope.json"'
	assert_stderr_line "$E jobs[0].steps[0].output_schema_ref: $T/nope.json: No such file or directory"
	printf '{"type": "object",}\n' >bad.json
	reject '.jobs[0].steps[0].output_schema_ref = "bad.json"'
	assert_stderr_line "$E jobs[0].steps[0].output_schema_ref: $T/bad.json:1:19: expected a string key"
	echo '[1]' >arr.json
	reject '.jobs[0].steps[0].output_schema_ref = "arr.json"'
	assert_stderr_line "$E jobs[0].steps[0].output_schema_ref: $T/arr.json: a JSON Schema must be an object"
}

@test "output_schema_ref: snapshotted to output_schema.json, sha256 in batch_meta" {
	mkdir schemas
	printf '{"type":"object","required":["a"]}' >schemas/s.json
	accept '.jobs[0].steps[0].output_schema_ref = "schemas/s.json"'
	f=runs/$ID/job_0001/steps/step1/output_schema.json
	[ -f "$f" ]
	[ "$(jq -c . "$f")" = '{"required":["a"],"type":"object"}' ]
	sum=$(sha256sum <"$f")
	[ "$(meta '.jobs[0].steps[0].output_schema_sha256')" = "${sum%% *}" ]
	# The run never depends on the original staying put.
	rm schemas/s.json
	[ -f "$f" ]
	# A step without a schema gets no snapshot.
	accept '.'
	[ ! -e "runs/$ID/job_0001/steps/step1/output_schema.json" ]
	[ "$(meta '.jobs[0].steps[0] | has("output_schema_sha256")')" = false ]
}

# --- dependencies -------------------------------------------------------

@test "depends_on: an unknown step, unknown JOB/STEP, or a non-array" {
	reject '.jobs[0].steps[0].depends_on = ["zz"]'
	assert_stderr_line "$E jobs[0].steps[0].depends_on[0]: no step \"zz\" in this job (use JOB/STEP for another job)"
	reject '.jobs[0].steps[0].depends_on = ["job_0001/zz"]'
	assert_stderr_line "$E jobs[0].steps[0].depends_on[0]: no step \"job_0001/zz\""
	reject '.jobs[0].steps[0].depends_on = ["nojob/step1"]'
	assert_stderr_line "$E jobs[0].steps[0].depends_on[0]: no step \"nojob/step1\""
	reject '.jobs[0].steps[0].depends_on = "step1"'
	assert_stderr_line "$E jobs[0].steps[0].depends_on: must be an array of step ids (is a string)"
	reject '.jobs[0].steps[0].depends_on = [1]'
	assert_stderr_line "$E jobs[0].steps[0].depends_on[0]: must be a string (STEP or JOB/STEP)"
}

@test "depends_on: JOB/STEP across jobs is accepted (examples/launch_table.crossjob.json)" {
	cp -R "$PHN_REPO/examples" ex
	run -0 --separate-stderr phn-ingest ex/launch_table.crossjob.json
	ID=$output
	[ "$(meta '.jobs[1].steps[0].depends_on[0]')" = collect/scan ]
	[ "$(meta '.jobs[1].job_workdir')" = "$T/ex/workdir" ]
	# A later step of the same job may be named too.
	accept '.jobs[0].steps = [{prompt: "a", depends_on: ["step2"]},
	    {prompt: "b"}]'
}

@test "cycles: a step depending on itself" {
	reject '.jobs[0].steps[0].depends_on = ["step1"]'
	assert_stderr_line "$E jobs[0].steps[0]: dependency cycle: job_0001/step1 -> job_0001/step1"
}

@test "cycles: two steps, spelled out" {
	reject '.jobs[0].steps = [{step_id: "a", prompt: "x", depends_on: ["b"]},
	    {step_id: "b", prompt: "y", depends_on: ["a"]}]'
	assert_stderr_line "$E jobs[0].steps[0]: dependency cycle: job_0001/a -> job_0001/b -> job_0001/a"
}

@test "cycles: through resume_from" {
	reject '.jobs[0].steps = [
	    {step_id: "a", prompt: "x", resume_from: {step_id: "c"}},
	    {step_id: "b", prompt: "y", depends_on: ["a"]},
	    {step_id: "c", prompt: "z", depends_on: ["b"]}]'
	assert_stderr_line "$E jobs[0].steps[0]: dependency cycle: job_0001/a -> job_0001/c -> job_0001/b -> job_0001/a"
}

@test "cycles: across jobs" {
	reject '.jobs = [
	    {job_id: "A", working_directory: ".", steps: [{step_id: "s",
	    prompt: "x", depends_on: ["B/t"]}]},
	    {job_id: "B", working_directory: ".", steps: [{step_id: "t",
	    prompt: "y", depends_on: ["A/s"]}]}]'
	assert_stderr_line "$E jobs[0].steps[0]: dependency cycle: A/s -> B/t -> A/s"
}

@test "resume_from: step_id required and known; selector checked" {
	reject '.jobs[0].steps[0].resume_from = {}'
	assert_stderr_line "$E jobs[0].steps[0].resume_from.step_id: required: the step whose session to resume (STEP or JOB/STEP)"
	reject '.jobs[0].steps[0].resume_from = "step1"'
	assert_stderr_line "$E jobs[0].steps[0].resume_from: must be an object (is a string)"
	reject '.jobs[0].steps += [{prompt: "y", resume_from: {step_id: "zz"}}]'
	assert_stderr_line "$E jobs[0].steps[1].resume_from.step_id: no step \"zz\""
	reject '.jobs[0].steps += [{prompt: "y",
	    resume_from: {step_id: "step1", selector: "newest"}}]'
	assert_stderr_line "$E jobs[0].steps[1].resume_from.selector: \"newest\" is not one of latest_successful | latest | run_id"
	reject '.jobs[0].steps += [{prompt: "y",
	    resume_from: {step_id: "step1", selector: "run_id"}}]'
	assert_stderr_line "$E jobs[0].steps[1].resume_from.run_id: selector run_id needs a valid run_id"
	reject '.jobs[0].steps += [{prompt: "y",
	    resume_from: {step_id: "step1", codex_thread_id: 5}}]'
	assert_stderr_line "$E jobs[0].steps[1].resume_from.codex_thread_id: must be a string"
}

@test "resume_from: the default selector is filled in; unknown keys warned" {
	accept '.jobs[0].steps += [{prompt: "y", resume_from: {step_id: "step1", extra: 1}},
	    {prompt: "z", resume_from: {step_id: "step1", selector: "run_id", run_id: "r1"}},
	    {prompt: "w", resume_from: {step_id: "step1", selector: "latest"}}]'
	[ "$(meta '.jobs[0].steps[1].resume_from.selector')" = latest_successful ]
	[ "$(meta '.jobs[0].steps[2].resume_from.selector')" = run_id ]
	[ "$(meta '.jobs[0].steps[3].resume_from.selector')" = latest ]
	assert_stderr_line "phn-ingest: warning: lt.json: jobs[0].steps[1].resume_from.extra: unknown key (kept; is it a typo?)"
}

# --- types and enums -----------------------------------------------------

@test "enums: sandbox and approval_policy" {
	reject '.execution_policy.sandbox = "yolo"'
	assert_stderr_line "$E execution_policy.sandbox: \"yolo\" is not one of read-only | workspace-write | danger-full-access"
	reject '.execution_policy.sandbox = 1'
	assert_stderr_line "$E execution_policy.sandbox: must be one of read-only | workspace-write | danger-full-access (is an integer)"
	reject '.execution_policy.approval_policy = "always"'
	assert_stderr_line "$E execution_policy.approval_policy: \"always\" is not one of untrusted | on-failure | on-request | never"
	reject '.execution_policy.skip_git_repo_check = "yes"'
	assert_stderr_line "$E execution_policy.skip_git_repo_check: must be true or false (is a string)"
	reject '.execution_policy.model = ""'
	assert_stderr_line "$E execution_policy.model: must be a non-empty string or null"
	accept '.execution_policy = {sandbox: "read-only", approval_policy: "never",
	    model: "gpt-x"}'
	[ "$(meta .effective_defaults.execution_policy.model)" = gpt-x ]
}

@test "enums: workspace_policy.mode (top level and per job) and runner_affinity" {
	reject '.workspace_policy.mode = "x"'
	assert_stderr_line "$E workspace_policy.mode: \"x\" is not one of shared | isolated"
	reject '.jobs[0].workspace_policy = {mode: "x"}'
	assert_stderr_line "$E jobs[0].workspace_policy.mode: \"x\" is not one of shared | isolated"
	reject '.jobs[0].steps[0].runner_affinity = "any"'
	assert_stderr_line "$E jobs[0].steps[0].runner_affinity: \"any\" is not one of none | pin_resume_source | prefer_resume_source"
	accept '.workspace_policy = {mode: "isolated",
	    allow_isolated_copy_fallback: true} |
	    .jobs[0].steps[0].runner_affinity = "prefer_resume_source"'
}

@test "concurrency and max_attempts: integers >= 1" {
	reject '.concurrency = 0'
	assert_stderr_line "$E concurrency: must be an integer >= 1 (is 0)"
	reject '.concurrency = 1.5'
	assert_stderr_line "$E concurrency: must be an integer >= 1 (is 1.5)"
	reject '.concurrency = "2"'
	assert_stderr_line "$E concurrency: must be an integer >= 1 (is \"2\")"
	reject '.retries.max_attempts = 0'
	assert_stderr_line "$E retries.max_attempts: must be an integer >= 1 (is 0)"
	reject '.jobs[0].steps[0].retry_policy = {max_attempts: -1}'
	assert_stderr_line "$E jobs[0].steps[0].retry_policy.max_attempts: must be an integer >= 1 (is -1)"
	reject '.retries.max_attempts = null'
	assert_stderr_line "$E retries.max_attempts: must be an integer >= 1 (is null)"
	accept '.concurrency = 4 | .retries.max_attempts = 3'
	[ "$(meta .concurrency)" = 4 ]
	[ "$(meta .effective_defaults.retries.max_attempts)" = 3 ]
}

@test "timeouts: numbers > 0 or null" {
	for v in 0 -1; do
		reject --argjson v "$v" '.timeouts.step_timeout_seconds = $v'
		assert_stderr_line "$E timeouts.step_timeout_seconds: must be > 0 (is $v)"
		reject --argjson v "$v" '.jobs[0].steps[0].timeout_seconds = $v'
		assert_stderr_line "$E jobs[0].steps[0].timeout_seconds: must be > 0 (is $v)"
	done
	reject '.timeouts.step_timeout_seconds = "60"'
	assert_stderr_line "$E timeouts.step_timeout_seconds: must be a number or null (is a string)"
	accept '.timeouts.step_timeout_seconds = null |
	    .jobs[0].steps[0].timeout_seconds = 0.5'
	[ "$(meta .effective_defaults.timeouts.step_timeout_seconds)" = null ]
	accept '.jobs[0].steps[0].timeout_seconds = null'
	[ "$(meta '.jobs[0].steps[0] | has("timeout_seconds")')" = true ]
}

@test "backoff_seconds: a number >= 0, or {base, factor, max, jitter}" {
	reject '.retries.backoff_seconds = -1'
	assert_stderr_line "$E retries.backoff_seconds: must be >= 0 (is -1)"
	reject '.retries.backoff_seconds = {base: -1, factor: 0.5, max: "x",
	    jitter: 2, step: 1}'
	assert_stderr_line "$E retries.backoff_seconds.base: must be >= 0 (is -1)"
	assert_stderr_line "$E retries.backoff_seconds.factor: must be >= 1 (is 0.5)"
	assert_stderr_line "$E retries.backoff_seconds.max: must be a number (is a string)"
	assert_stderr_line "$E retries.backoff_seconds.jitter: must be between 0 and 1"
	assert_stderr_line "$E retries.backoff_seconds.step: unknown key (want base, factor, max, jitter)"
	[ "${#stderr_lines[@]}" -eq 5 ]
	accept '.retries.backoff_seconds = 0'
	accept '.retries.backoff_seconds = {base: 5, factor: 2, max: 300,
	    jitter: 0.25}'
	[ "$(jq -c .effective_defaults.retries.backoff_seconds \
	    "runs/$ID/batch_meta.json")" = \
	    '{"base":5,"factor":2,"jitter":0.25,"max":300}' ]
}

@test "retry_on_statuses: statuses and failure kinds" {
	accept '.retries.retry_on_statuses = ["failed", "timeout", "model_error",
	    "needs_attention", "claim_expired"]'
	reject '.retries.retry_on_statuses = ["failed", "flaky"]'
	assert_stderr_line "$E retries.retry_on_statuses[1]: \"flaky\" is not one of failed | needs_attention | canceled | timeout | spawn_error | codex_exit | model_error | invalid_report | report_failed | missing_artifacts | orphaned | claim_expired"
	reject '.jobs[0].steps[0].retry_policy.retry_on_statuses = "failed"'
	assert_stderr_line "$E jobs[0].steps[0].retry_policy.retry_on_statuses: must be an array of statuses and failure kinds (is a string)"
	reject '.retries.mode = "again"'
	assert_stderr_line "$E retries.mode: \"again\" is not one of fresh | resume_last_attempt"
}

@test "defaults sections: must be objects; defaults_overrides keys are sections" {
	reject '.execution_policy = []'
	assert_stderr_line "$E execution_policy: must be an object (is an array)"
	reject '.defaults_overrides = {runner_pool: {}}'
	assert_stderr_line "$E defaults_overrides.runner_pool: not a defaults section (want execution_policy | timeouts | retries | retention_policy | scoreboard | workspace_policy | budget)"
	reject '.defaults_overrides = 5'
	assert_stderr_line "$E defaults_overrides: must be an object (is an integer)"
	reject '.defaults_overrides = {execution_policy: {sandbox: "x"}}'
	assert_stderr_line "$E defaults_overrides.execution_policy.sandbox: \"x\" is not one of read-only | workspace-write | danger-full-access"
	reject '.scoreboard.heartbeat_stale_after_seconds = 60'
	assert_stderr_line "$E scoreboard.heartbeat_stale_after_seconds: the effective value (60) must exceed twice heartbeat_interval_seconds (30)"
}

@test "packs: default_pack_id, job and step pack_id must name a pack" {
	reject '.packs = {p: {text: "P"}} | .default_pack_id = "q"'
	assert_stderr_line "$E default_pack_id: pack \"q\" is not in packs"
	reject '.default_pack_id = 5'
	assert_stderr_line "$E default_pack_id: must be a string (is an integer)"
	reject '.packs = 5'
	assert_stderr_line "$E packs: must be an object of {PACK_ID: {\"text\": ...}} (is an integer)"
	reject '.packs = {p: {}}'
	assert_stderr_line "$E packs.p: must be an object with a string \"text\""
	reject '.packs = {"a/b": {text: "x"}}'
	assert_stderr_line "$E packs.a/b: pack ids must be 1-128 characters of [A-Za-z0-9._-]"
	reject '.packs = {p: {text: "P"}} | .jobs[0].pack_id = "q"'
	assert_stderr_line "$E jobs[0].pack_id: not a pack in packs"
	reject '.jobs[0].steps[0].pack_id = "q"'
	assert_stderr_line "$E jobs[0].steps[0].pack_id: pack \"q\" is not in packs"
}

@test "limits: max_jobs_per_batch and max_steps_per_job from the harness config" {
	init_config '.limits.max_jobs_per_batch = 2 | .limits.max_steps_per_job = 2'
	accept '.jobs += [.jobs[0]] | .jobs[0].steps += [{prompt: "b"}]'
	reject '.jobs += [.jobs[0], .jobs[0]]'
	assert_stderr_line "$E jobs: 3 jobs exceed limits.max_jobs_per_batch (2)"
	reject '.jobs[0].steps += [{prompt: "b"}, {prompt: "c"}]'
	assert_stderr_line "$E jobs[0].steps: 3 steps exceed limits.max_steps_per_job (2)"
}

@test "unknown keys: warned about in jobs and steps, kept in batch_meta" {
	accept '.jobs[0].colour = "red" | .jobs[0].steps[0].promt = "typo"'
	assert_stderr_line "phn-ingest: warning: lt.json: jobs[0].colour: unknown key (kept; is it a typo?)"
	assert_stderr_line "phn-ingest: warning: lt.json: jobs[0].steps[0].promt: unknown key (kept; is it a typo?)"
	assert_stderr_prefix phn-ingest
	[ "$(meta '.jobs[0].colour')" = red ]
	[ "$(meta '.jobs[0].steps[0].promt')" = typo ]
}

@test "unknown keys: top-level ones are kept verbatim without a warning" {
	accept '.owner = {name: "x", tags: [1, "two", null, {"a": 1.5}]} |
	    .note = "n"'
	[ "$(jq -c .owner "runs/$ID/batch_meta.json")" = \
	    '{"name":"x","tags":[1,"two",null,{"a":1.5}]}' ]
	[ "$(meta .note)" = n ]
	[ -z "$stderr" ]
}

# --- strict JSON -----------------------------------------------------

# sx TEXT MESSAGE: printf TEXT into s.json; expect "s.json:MESSAGE".
sx() {
	printf "$1" >s.json
	run -100 --separate-stderr phn-ingest s.json
	assert_output ''
	assert_stderr_line "phn-ingest: s.json:$2"
	[ "${#stderr_lines[@]}" -eq 1 ]
}

@test "strict JSON: BOM, invalid UTF-8, NaN, Infinity, single quotes" {
	sx '\357\273\277{}' '1:1: UTF-8 byte order mark is not allowed'
	sx '{"a":"\377"}' '1:7: invalid UTF-8 in string'
	sx '{"a":"\300\257"}' '1:7: invalid UTF-8 in string'
	sx '{"a": NaN}' '1:7: NaN and Infinity are not JSON'
	sx '{"a":\n  Infinity}' '2:3: NaN and Infinity are not JSON'
	sx '{"a": -Infinity}' '1:7: NaN and Infinity are not JSON'
	sx "{'a': 1}" '1:2: single quotes are not JSON (use ")'
	sx '{"a": '"'x'"'}' '1:7: single quotes are not JSON (use ")'
}

@test "strict JSON: trailing garbage, trailing commas, empty file" {
	sx '{"a": 1} x' '1:10: trailing data after the JSON value'
	sx '{}\n{}\n' '2:1: trailing data after the JSON value'
	sx '{"a": 1,}' '1:9: expected a string key'
	sx '' '1:1: unexpected end of input'
	sx '  \n' '2:1: unexpected end of input'
}

@test "strict JSON: duplicate keys, also after unescaping" {
	sx '{"a": 1,\n "a": 2}' '2:2: duplicate key "a"'
	sx '{"a": 1, "\\u0061": 2}' '1:10: duplicate key "a"'
	sx '{"x": {"b": 1, "b": 1}}' '1:16: duplicate key "b"'
	sx '{"a\\u0000": 1}' '1:4: \u0000 is not allowed in a key'
	sx '{"a": "\\ud800"}' '1:8: unpaired UTF-16 surrogate in \u escape'
	# Equal keys in different objects are fine.
	accept '.jobs[0].steps[0].x = 1 | .jobs[0].x = 1'
}

@test "strict JSON: nesting deeper than 32 is rejected, 32 is fine" {
	open=$(printf '[%.0s' $(seq 32))
	close=$(printf ']%.0s' $(seq 32))
	sx "{\"a\":$open$close}" '1:37: nesting too deep'
	accept --argjson d "${open#[}${close#]}" '.deep = $d'
}

# nt VALUE TYPE: a table that is VALUE is "not an object (is TYPE)".
nt() {
	printf '%s' "$1" >s.json
	run -100 --separate-stderr phn-ingest s.json
	assert_output ''
	assert_stderr_line "phn-ingest: s.json: (root): a Launch Table must be a JSON object (is $2)"
	[ "${#stderr_lines[@]}" -eq 1 ]
}

@test "strict JSON: a top level that is not an object" {
	nt '[1, 2]' 'an array'
	nt '"str"' 'a string'
	nt '[]' 'an array'
	nt '3
' 'an integer'
	nt 'true
' 'a boolean'
	printf 'null\n' >s.json
	run -100 --separate-stderr phn-ingest s.json
	assert_output ''
	assert_stderr_line 'phn-ingest: s.json: the document is null, not an object'
}

@test "strict JSON: a bare scalar top level (no final newline) is not an object" {
	nt '3' 'an integer'
	nt 'true' 'a boolean'
	printf 'null' >s.json
	run -100 --separate-stderr phn-ingest s.json
	assert_stderr_line 'phn-ingest: s.json: the document is null, not an object'
}

# --- all at once, nothing written -----------------------------------------

@test "all errors are reported at once, one per line" {
	reject '.execution_policy.sandbox = "yolo" |
	    del(.jobs[0].working_directory) | .jobs[0].steps[0].depends_on = ["x"]'
	[ "${#stderr_lines[@]}" -eq 3 ]
	assert_stderr_line --partial "$E execution_policy.sandbox:"
	assert_stderr_line --partial "$E jobs[0].working_directory:"
	assert_stderr_line --partial "$E jobs[0].steps[0].depends_on[0]:"
}

@test "an invalid table writes nothing under runs/" {
	phn-init >/dev/null
	find runs | sort >before
	reject '.jobs[0].steps[0].prompt = ""'
	find runs | sort >after
	diff -u before after
	# Even with a valid goal and job, one bad step blocks the whole batch.
	reject '.jobs += [{working_directory: ".", steps: [{}]}]'
	find runs | sort >after
	diff -u before after
}

# --- success -----------------------------------------------------------

@test "success: prints the batch id; batch_meta.json is sorted 2-space JSON" {
	accept '.'
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 1 ]
	f=runs/$ID/batch_meta.json
	jq -S --indent 2 . "$f" | diff -u - "$f"
	[ "$(meta .batch_id)" = "$ID" ]
	[ "$(meta '.jobs[0].job_id')" = job_0001 ]
	[ "$(meta '.jobs[0].steps[0].step_id')" = step1 ]
	[ "$(meta '.jobs[0].job_workdir')" = "$T" ]
	meta .submitted_at | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$'
	[ -d "runs/$ID/job_0001/steps/step1/attempts" ]
}

@test "success: launch_table_sha256 and harness_config_version" {
	accept '.'
	sum=$(sha256sum lt.json)
	[ "$(meta .launch_table_sha256)" = "${sum%% *}" ]
	v=$(meta .harness_config_version)
	[[ $v =~ ^hc_[0-9a-f]{12}$ ]]
	[ -f "runs/_system/harness_config_versions/$v.json" ]
	[ "$(phn-init | jq -r .harness_config_version)" = "$v" ]
	[ -f "runs/_queue/index/by_launch_table_sha256/${sum%% *}.json" ]
	[ "$(jq -r .batch_id "runs/_queue/index/by_launch_table_sha256/${sum%% *}.json")" = "$ID" ]
}

@test "success: generated ids fill gaps around explicit ones; absolute workdirs" {
	mkdir -p w
	accept '.working_root = "w" | .jobs = [
	    {working_directory: "a", steps: [{prompt: "1"}, {step_id: "x", prompt: "2"},
	    {prompt: "3"}]},
	    {job_id: "named", working_directory: "/tmp", steps: [{prompt: "4"}]},
	    {working_directory: "../b", steps: [{prompt: "5"}]}]'
	[ "$(meta '[.jobs[].job_id] | join(" ")')" = 'job_0001 named job_0003' ]
	[ "$(meta '[.jobs[0].steps[].step_id] | join(" ")')" = 'step1 x step3' ]
	[ "$(meta '.jobs[0].job_workdir')" = "$T/w/a" ]
	[ "$(meta '.jobs[1].job_workdir')" = /tmp ]
	[ "$(meta '.jobs[2].job_workdir')" = "$T/b" ]
	[ -f "runs/$ID/job_0003/steps/step1/prompt.txt" ]
}

@test "effective_defaults: harness < top-level sections < defaults_overrides" {
	init_config '.defaults.timeouts.step_timeout_seconds = 111 |
	    .defaults.execution_policy.sandbox = "read-only" |
	    .defaults.retries.max_attempts = 5'
	accept '.execution_policy = {sandbox: "danger-full-access", model: "m1"} |
	    .timeouts = {step_timeout_seconds: 222} |
	    .retries = null |
	    .defaults_overrides = {execution_policy: {model: "m2"},
	    timeouts: {step_timeout_seconds: null}, workspace_policy: null,
	    scoreboard: {stuck_after_seconds: 60}}'
	[ "$(meta .effective_defaults.execution_policy.sandbox)" = danger-full-access ]
	[ "$(meta .effective_defaults.execution_policy.model)" = m2 ]
	[ "$(meta .effective_defaults.execution_policy.approval_policy)" = on-request ]
	[ "$(meta '.effective_defaults.timeouts | has("step_timeout_seconds")')" = true ]
	[ "$(meta .effective_defaults.timeouts.step_timeout_seconds)" = null ]
	[ "$(meta .effective_defaults.workspace_policy)" = null ]
	# A top-level null section is ignored: the harness default stays.
	[ "$(meta .effective_defaults.retries.max_attempts)" = 5 ]
	[ "$(meta .effective_defaults.scoreboard.stuck_after_seconds)" = 60 ]
	[ "$(meta .effective_defaults.scoreboard.heartbeat_interval_seconds)" = 30 ]
	# The raw sections stay as written.
	[ "$(meta .timeouts.step_timeout_seconds)" = 222 ]
}

@test "effective_defaults: effective_defaults_overrides is an alias" {
	accept '.effective_defaults_overrides = {timeouts: {step_timeout_seconds: 7}}'
	[ "$(meta .effective_defaults.timeouts.step_timeout_seconds)" = 7 ]
}

# --- batch ids and resubmission ---------------------------------------------

@test "batch_id: an explicit id is used; a second table with it fails" {
	write_lt lt.json
	jq_edit lt.json '.batch_id = "my-batch.1"'
	run -0 --separate-stderr phn-ingest lt.json
	assert_output my-batch.1
	[ -f runs/my-batch.1/batch_meta.json ]
	jq '.note = "different bytes"' lt.json >lt2.json
	run -100 --separate-stderr phn-ingest lt2.json
	assert_output ''
	assert_stderr_line "phn-ingest: lt2.json: batch_id: batch \"my-batch.1\" already exists in $T/runs"
	[ "$(jq -r .note runs/my-batch.1/batch_meta.json)" = null ]
}

@test "resubmission: identical bytes print the same id; --new makes another" {
	run -0 --separate-stderr phn-ingest lt.json
	id1=$output
	run -0 --separate-stderr phn-ingest lt.json
	assert_output "$id1"
	assert_stderr_line "phn-ingest: lt.json: already ingested as batch $id1 (identical bytes); use --new for another batch"
	[ "$(find runs -name batch_meta.json | wc -l)" -eq 1 ]
	run -0 --separate-stderr phn-ingest --new lt.json
	refute_output "$id1"
	assert_output --regexp '^batch_[0-9]{8}T[0-9]{6}Z_[0-9a-f]{8}$'
	[ -z "$stderr" ]
	[ "$(find runs -name batch_meta.json | wc -l)" -eq 2 ]
	# The index keeps naming the first batch.
	run -0 --separate-stderr phn-ingest -N lt.json
	run -0 --separate-stderr phn-ingest lt.json
	assert_output "$id1"
	# One changed byte is a new table.
	printf ' ' >>lt.json
	run -0 --separate-stderr phn-ingest lt.json
	refute_output "$id1"
	[ -z "$stderr" ]
}

@test "stdin: - reads the table; relative paths resolve against --root" {
	mkdir -p root/wd elsewhere
	echo 'from root' >root/wd/p.txt
	jq '.jobs[0].working_directory = "wd" |
	    .jobs[0].steps[0] = {prompt_ref: "p.txt"}' lt.json >elsewhere/t.json
	cd elsewhere
	run -0 --separate-stderr phn-ingest --root "$T/root" - <t.json
	ID=$output
	cd "$T/root"
	[ "$(meta '.jobs[0].job_workdir')" = "$T/root/wd" ]
	[ "$(cat "runs/$ID/job_0001/steps/step1/prompt.txt")" = 'from root' ]
	# Errors name stdin.
	run -100 --separate-stderr phn-ingest - <<<'{"jobs": []}'
	assert_stderr_line 'phn-ingest: stdin: jobs: required: a non-empty array of jobs'
}

@test "--check validates only: nothing created, nothing printed" {
	run -0 --separate-stderr phn-ingest --check lt.json
	assert_output ''
	[ ! -e runs ]
	run -0 --separate-stderr phn-ingest -C - <lt.json
	assert_output ''
	[ ! -e runs ]
	jq_edit lt.json '.concurrency = 0'
	run -100 --separate-stderr phn-ingest --check lt.json
	assert_stderr_line "$E concurrency: must be an integer >= 1 (is 0)"
	[ ! -e runs ]
}

@test "--check uses the harness config when there is one" {
	init_config '.limits.min_goal_summary_words = 500'
	run -100 --separate-stderr phn-ingest --check lt.json
	assert_stderr_line "$E batch_goal_summary: has 151 words; at least 500 are required (limits.min_goal_summary_words in the harness config)"
	[ "$(find runs -name batch_meta.json | wc -l)" -eq 0 ]
}

@test "concurrency: 10 simultaneous ingests of one table make one batch" {
	phn-init >/dev/null
	pids=
	for i in 1 2 3 4 5 6 7 8 9 10; do
		phn-ingest lt.json >out.$i 2>err.$i &
		pids="$pids $!"
	done
	for p in $pids; do
		wait "$p"
	done
	[ "$(cat out.* | sort -u | wc -l)" -eq 1 ]
	[ "$(cat out.* | wc -l)" -eq 10 ]
	[ "$(find runs -maxdepth 1 -name 'batch_*' | wc -l)" -eq 1 ]
	[ "$(grep -l 'already ingested' err.* | wc -l)" -eq 9 ]
	[ -z "$(find runs -maxdepth 1 -name '.ingest-*')" ]
}

# --- the queue ------------------------------------------------------------

@test "--queue: good tables to processed/ with an ack, bad ones to rejected/" {
	phn-init >/dev/null
	q=runs/_queue
	echo '{' >$q/incoming/a.json
	cp lt.json $q/incoming/b.json
	cp lt.json $q/incoming/.hidden.json
	jq '.concurrency = 0' lt.json >$q/incoming/c.json
	run -1 --separate-stderr phn-ingest --queue
	assert_output --regexp '^batch_[0-9]{8}T[0-9]{6}Z_[0-9a-f]{8}$'
	id=$output
	assert_stderr_prefix phn-ingest
	# The bad a.json did not block b.json, sorted after it.
	[ -f $q/processed/b.json ]
	[ "$(jq -r .batch_id $q/processed/b.ack.json)" = "$id" ]
	[ "$(jq -r '.accepted_job_ids[0]' $q/processed/b.ack.json)" = job_0001 ]
	[ "$(jq -r .duplicate $q/processed/b.ack.json)" = false ]
	[ -f "runs/$id/batch_meta.json" ]
	[ -f $q/rejected/a.json ]
	[ -f $q/rejected/c.json ]
	[ "$(cat $q/rejected/a.json.error.txt)" = 'phn-ingest: _queue/incoming/a.json:2:1: expected a string key' ]
	[ "$(cat $q/rejected/c.json.error.txt)" = 'phn-ingest: _queue/incoming/c.json: concurrency: must be an integer >= 1 (is 0)' ]
	# Each error file holds the same lines as stderr.
	for f in $q/rejected/*.error.txt; do
		while IFS= read -r l; do
			assert_stderr_line "$l"
		done <"$f"
	done
	assert_stderr_line "phn-ingest: _queue/incoming/a.json: rejected; moved to $T/runs/_queue/rejected/a.json"
	# Dotfiles are ignored.
	[ -f $q/incoming/.hidden.json ]
	[ -z "$(ls $q/incoming)" ]
	# Nothing left: exit 0, nothing printed.
	run -0 --separate-stderr phn-ingest -Q
	assert_output ''
}

@test "--queue: exit 0 when all are ingested; relative paths against --root" {
	mkdir -p root/wd
	echo 'queued ref' >root/wd/p.txt
	phn-init --root root >/dev/null
	jq '.jobs[0].working_directory = "wd" |
	    .jobs[0].steps[0] = {prompt_ref: "p.txt"}' lt.json \
	    >root/runs/_queue/incoming/t1.json
	cp lt.json root/runs/_queue/incoming/t2
	run -0 --separate-stderr phn-ingest --queue --root root
	[ "${#lines[@]}" -eq 2 ]
	[ -z "$stderr" ]
	cd root
	ID=$(jq -r .batch_id runs/_queue/processed/t1.ack.json)
	[ "$(meta '.jobs[0].job_workdir')" = "$T/root/wd" ]
	[ "$(cat "runs/$ID/job_0001/steps/step1/prompt.txt")" = 'queued ref' ]
	[ -f runs/_queue/processed/t2.ack.json ]
	# Dropping the same bytes again acks the existing batch.
	cp "$T/lt.json" runs/_queue/incoming/t3.json
	run -0 --separate-stderr phn-ingest -Q --root .
	assert_output "$(jq -r .batch_id runs/_queue/processed/t2.ack.json)"
	[ "$(jq -r .duplicate runs/_queue/processed/t3.ack.json)" = true ]
}

@test "--queue: a directory in incoming/ is rejected, never blocking" {
	phn-init >/dev/null
	mkdir runs/_queue/incoming/a.json
	cp lt.json runs/_queue/incoming/b.json
	run -1 --separate-stderr phn-ingest --queue
	assert_output --regexp '^batch_'
	[ -d runs/_queue/rejected/a.json ]
	[ -f runs/_queue/processed/b.json ]
}

# --- usage ----------------------------------------------------------

@test "usage errors and unreadable files exit 100" {
	run -100 --separate-stderr phn-ingest
	assert_stderr_line --partial 'usage: phn-ingest'
	run -100 --separate-stderr phn-ingest a.json b.json
	assert_usage_error phn-ingest
	run -100 --separate-stderr phn-ingest --bogus lt.json
	assert_stderr_line "phn-ingest: unrecognized option '--bogus'"
	run -100 --separate-stderr phn-ingest --queue lt.json
	assert_usage_error phn-ingest
	run -100 --separate-stderr phn-ingest --check --queue
	assert_usage_error phn-ingest
	run -100 --separate-stderr phn-ingest nope.json
	assert_stderr_line 'phn-ingest: nope.json: No such file or directory'
	mkdir dir.json
	run -100 --separate-stderr phn-ingest dir.json
	assert_stderr_line 'phn-ingest: dir.json: Is a directory'
	[ ! -e runs ] || [ "$(find runs -name batch_meta.json | wc -l)" -eq 0 ]
}

@test "a failing system call exits 111 and leaves no batch" {
	mkdir -p runs/_queue
	touch runs/_queue/index
	run -111 --separate-stderr phn-ingest lt.json
	assert_output ''
	assert_stderr_line "phn-ingest: unable to create $T/runs/_queue/index/by_launch_table_sha256: Not a directory"
	[ -z "$(find runs -name 'batch_*')" ]
}

# fails_cleanly MESSAGE: ingesting lt.json exits 111 with MESSAGE on
# stderr, and the store is as it was (every path, files and directories).
fails_cleanly() {
	find runs -printf '%y %p\n' | sort >before
	run -111 --separate-stderr phn-ingest lt.json
	assert_output ''
	assert_stderr_line --partial "$1"
	find runs -printf '%y %p\n' | sort >after
	diff -u before after
}

@test "an ingest that cannot write its index entry or take the index lock leaves nothing behind" {
	run -0 phn-ingest lt.json	# the store, its index and lock exist
	jq_edit lt.json '.batch_goal_summary += " two"'
	sha=$(sha256sum lt.json | cut -d' ' -f1)
	# a directory where the entry goes: only the entry's rename fails
	mkdir "runs/_queue/index/by_launch_table_sha256/$sha.json"
	fails_cleanly "phn-ingest: unable to write $T/runs/_queue/index/by_launch_table_sha256/$sha.json:"
	[ "$(find runs -mindepth 1 -maxdepth 1 -name 'batch_*' | wc -l)" -eq 1 ]
	rm -f runs/_queue/index/.lock
	mkdir runs/_queue/index/.lock
	fails_cleanly "phn-ingest: unable to lock $T/runs/_queue/index/.lock:"
}

@test "--runs-root and -r place the store" {
	mkdir r
	run -0 --separate-stderr phn-ingest --runs-root store lt.json
	[ -f "store/$output/batch_meta.json" ]
	[ ! -e runs ]
	run -0 --separate-stderr phn-ingest -r r --new lt.json
	[ -f "r/runs/$output/batch_meta.json" ]
	# The table's paths still resolve against its own directory.
	[ "$(jq -r '.jobs[0].job_workdir' "r/runs/$output/batch_meta.json")" = "$T" ]
}

# --- phn-init and the harness config ---------------------------------------

@test "phn-init: writes the default config, the store, the report schema" {
	run -0 --separate-stderr phn-init
	assert_json_lines
	[ "$(jq -r .config_written <<<"$output")" = true ]
	[ "$(jq -r .runs_root <<<"$output")" = "$T/runs" ]
	v=$(jq -r .harness_config_version <<<"$output")
	[[ $v =~ ^hc_[0-9a-f]{12}$ ]]
	c=runs/_system/harness_config.json
	jq -S --indent 2 . $c | diff -u - $c
	[ "$(jq -c .defaults.runner_capacity $c)" = null ]
	[ "$(jq .defaults.scoreboard.heartbeat_interval_seconds $c)" = 30 ]
	[ "$(jq .defaults.scoreboard.heartbeat_stale_after_seconds $c)" = 300 ]
	[ "$(jq .defaults.scoreboard.stuck_after_seconds $c)" = 1800 ]
	[ "$(jq .defaults.claim_lease_seconds $c)" = 300 ]
	[ "$(jq .defaults.kill_grace_seconds $c)" = 10 ]
	[ "$(jq .limits.min_goal_summary_words $c)" = 151 ]
	[ "$(jq .limits.max_jobs_per_batch $c)" = 10000 ]
	[ "$(jq .limits.max_steps_per_job $c)" = 100 ]
	[ "$(jq .limits.max_harness_retries $c)" = 3 ]
	[ "$(jq -c .limits.per_workdir_concurrency $c)" = '{}' ]
	[ -f "runs/_system/harness_config_versions/$v.json" ]
	cmp "$PHN_REPO/run_report.schema.json" runs/_system/run_report.schema.json
	for d in incoming processed rejected; do
		[ -d runs/_queue/$d ]
	done
	[ -d runners ]
}

@test "phn-init: a no-op on an existing config unless --force" {
	phn-init >/dev/null
	jq_edit runs/_system/harness_config.json '.limits.max_steps_per_job = 7'
	run -0 --separate-stderr phn-init
	[ "$(jq -r .config_written <<<"$output")" = false ]
	[ "$(jq .limits.max_steps_per_job runs/_system/harness_config.json)" = 7 ]
	run -0 --separate-stderr phn-init --force
	[ "$(jq -r .config_written <<<"$output")" = true ]
	[ "$(jq .limits.max_steps_per_job runs/_system/harness_config.json)" = 100 ]
	run -0 --separate-stderr phn-init -F --root sub
	[ -f sub/runs/_system/harness_config.json ]
	run -100 --separate-stderr phn-init extra
	assert_usage_error phn-init
	run -100 --separate-stderr phn-init --bogus
	assert_usage_error phn-init
}

@test "phn-init: an edited config is a new version with its own snapshot" {
	v1=$(phn-init | jq -r .harness_config_version)
	jq_edit runs/_system/harness_config.json '.defaults.kill_grace_seconds = 3'
	v2=$(phn-init | jq -r .harness_config_version)
	[[ $v2 =~ ^hc_[0-9a-f]{12}$ ]]
	[ "$v1" != "$v2" ]
	[ "$(jq .defaults.kill_grace_seconds "runs/_system/harness_config_versions/$v2.json")" = 3 ]
	[ "$(jq .defaults.kill_grace_seconds "runs/_system/harness_config_versions/$v1.json")" = 10 ]
	# Reformatting (and written_at) does not change the version.
	jq -c '.written_at = "2000-01-01T00:00:00Z"' runs/_system/harness_config.json >c
	mv c runs/_system/harness_config.json
	[ "$(phn-init | jq -r .harness_config_version)" = "$v2" ]
	accept '.'
	[ "$(meta .harness_config_version)" = "$v2" ]
}

@test "phn-init: a failing system call exits 111" {
	touch runs
	run -111 --separate-stderr phn-init
	assert_output ''
	assert_stderr_line "phn-init: unable to create $T/runs/_system: Not a directory"
}

@test "harness config: secret-like keys and private keys are rejected with their path" {
	phn-init >/dev/null
	c=runs/_system/harness_config.json
	cp $c good.json
	for k in api_token apiKey password client_secret; do
		jq --arg k "$k" '.defaults[$k] = "x"' good.json >$c
		run -100 --separate-stderr phn-init
		assert_stderr_line "phn-init: $T/$c: defaults.$k: secret-like key not allowed (keep credentials out of the runs store)"
		assert_stderr_line "phn-init: $T/$c: invalid harness config; fix it, or recreate it with phn-init --force"
		run -100 --separate-stderr phn-ingest lt.json
		assert_stderr_line "phn-ingest: $T/$c: defaults.$k: secret-like key not allowed (keep credentials out of the runs store)"
	done
	jq '.interfaces.api_mode.keys = ["ok", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbg==\n-----END OPENSSH PRIVATE KEY-----\n"]' good.json >$c
	run -100 --separate-stderr phn-init
	assert_stderr_line "phn-init: $T/$c: interfaces.api_mode.keys[1]: private key material not allowed"
	assert_stderr_prefix phn-init
	# max_tokens is not a secret ("token" is not a whole word part).
	jq '.defaults.max_tokens = 4096 | .defaults.tokenizer = "x"' good.json >$c
	run -0 --separate-stderr phn-init
	[ "$(find runs -name batch_meta.json | wc -l)" -eq 0 ]
}

@test "harness config: stale <= 2 * interval and bad integers are rejected" {
	phn-init >/dev/null
	c=runs/_system/harness_config.json
	jq_edit $c '.defaults.scoreboard.heartbeat_stale_after_seconds = 60'
	run -100 --separate-stderr phn-init
	assert_stderr_line "phn-init: $T/$c: defaults.scoreboard.heartbeat_stale_after_seconds: must exceed twice heartbeat_interval_seconds (30)"
	jq_edit $c '.defaults.scoreboard.heartbeat_stale_after_seconds = 61 |
	    .defaults.runner_capacity = 0 | .limits.max_jobs_per_batch = "many"'
	run -100 --separate-stderr phn-init
	assert_stderr_line "phn-init: $T/$c: defaults.runner_capacity: must be an integer >= 1 or null (is 0)"
	assert_stderr_line "phn-init: $T/$c: limits.max_jobs_per_batch: must be an integer >= 1 (is \"many\")"
	jq_edit $c '.defaults.runner_capacity = 4 | .limits.max_jobs_per_batch = 5'
	run -0 --separate-stderr phn-init
	# Not JSON at all.
	echo '{' >$c
	run -100 --separate-stderr phn-init
	assert_stderr_line "phn-init: $T/$c:2:1: expected a string key"
}

# --- lead's additions ------------------------------------------------------

@test "an invalid table on a fresh root creates no runs/ at all" {
	[ ! -e runs ]
	reject '.concurrency = 0'
	[ ! -e runs ]
}

@test "a valid table on a fresh root writes the default harness config" {
	[ ! -e runs ]
	accept '.'
	[ -f runs/_system/harness_config.json ]
	[ "$(meta .harness_config_version)" = \
	    "$(ls runs/_system/harness_config_versions | sed 's/\.json$//')" ]
}

@test "add_dirs resolve against the table's directory" {
	mkdir sub
	jq '.execution_policy.add_dirs = ["data", "/abs/x"]' \
	    "$BATS_FILE_TMPDIR/base.json" >sub/lt.json
	run -0 --separate-stderr phn-ingest sub/lt.json
	ID=$output
	[ "$(meta '.effective_defaults.execution_policy.add_dirs[0]')" = "$T/sub/data" ]
	[ "$(meta '.effective_defaults.execution_policy.add_dirs[1]')" = "/abs/x" ]
}

@test "numbers must be finite" {
	printf '%s' "$(jq -c '.timeouts.step_timeout_seconds = 12345' \
	    "$BATS_FILE_TMPDIR/base.json")" | sed 's/12345/1e400/' >lt.json
	run -100 --separate-stderr phn-ingest lt.json
	assert_stderr_line "$E timeouts.step_timeout_seconds: must be a finite number"
}

@test "a job with a bad id is still checked field by field" {
	reject '.jobs[0].job_id = "a/b" | del(.jobs[0].steps[0].prompt) |
	    .jobs[0].steps[0].step_id = "x y"'
	assert_stderr_line "$E jobs[0].job_id: $IDMSG"
	assert_stderr_line "$E jobs[0].steps[0].step_id: $IDMSG"
	assert_stderr_line "$E jobs[0].steps[0]: needs a prompt or a prompt_ref"
}

@test "a batch directory is as readable as the rest of the store (0755)" {
	accept '.'
	[ "$(stat -c %a "runs/$ID")" = 755 ]
	[ "$(stat -c %a "runs/$ID/batch_meta.json")" = 644 ]
}
