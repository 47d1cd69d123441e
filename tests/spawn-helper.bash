# tests/spawn-helper.bash -- attempts run by phn-spawn, for the spawn,
# heartbeat and real-codex suites.  Load after helper.bash:
#
#   load helper; load spawn-helper
#
#   spawn_setup GRACE    phn_setup, HOME=$T/home (so no real account is
#                        used), a workdir w/, phn-init, and
#                        defaults.kill_grace_seconds = GRACE
#   spawn_teardown       kill -9 $BG and whatever still runs from $T/
#   codex_spawn_suite    call at the top of a real-codex spawn file
#                        (85-e2e-codex, 86-ratelimit, 88-replay): its
#                        setup_file/teardown_file (codex_setup_file, one
#                        mock), setup (spawn_setup 2, failing with
#                        $CODEX_SKIP when codex cannot run) and teardown;
#                        wait_for waits ~30 s and a step may take 120 s
#   batch STEPS_JSON [JQ_FILTER]
#                        ingest a one-job table (job j, workdir w/, no git
#                        check, workspace-write, approval never, plus the
#                        JSON object $SPAWN_LT_EXTRA) with these steps,
#                        edited by JQ_FILTER; sets B
#   claim STEP           a new claimed attempt of STEP of job j (t-claim1):
#                        sets A
#   one PROMPT [STEP_JSON_EXTRA]
#                        a batch with one step s, claimed: B and A
#   resume_ran PROMPT1 PROMPT2
#                        a batch of s1 and s2 (s2 resumes s1) where s1 has
#                        run (phn-spawn, succeeded): its attempt in A1
#   st FILTER            a value of $A/state.json
#   assert_outcome STATUS KIND|null
#                        the attempt's status and failure_kind
#   alive_in_group PGID  how many live (not zombie) processes the group has
#   spawn_bg [OPTION...] phn-spawn [OPTION...] $A in the background, stderr
#                        to $T/spawn.err; its pid in BG
#   codex_started        wait until state.json says codex started
#   stop_bg SIGNAL STATUS
#                        send SIGNAL to $BG, which must exit STATUS

spawn_setup() {
	phn_setup
	export HOME=$T/home
	mkdir -p "$HOME" w
	unset CODEX_HOME
	phn-init >/dev/null
	jq_edit runs/_system/harness_config.json \
	    ".defaults.kill_grace_seconds = $1"
}

spawn_teardown() {
	if [ -n "${BG:-}" ]; then
		kill -9 "$BG" 2>/dev/null || true
	fi
	# No $T when setup failed before spawn_setup: pkill -f "/" would
	# kill every process of the user.
	if [ -n "${T:-}" ]; then
		pkill -9 -f "$T/" 2>/dev/null || true
	fi
}

# The variables are read by wait_for and batch, the functions by bats.
# shellcheck disable=SC2034,SC2317
codex_spawn_suite() {
	WAIT_TRIES=300	# real codex is slower
	SPAWN_LT_EXTRA='{"timeouts": {"step_timeout_seconds": 120}}'
	setup_file() {
		codex_setup_file
	}
	teardown_file() {
		codex_teardown_file
	}
	setup() {
		[ -z "$CODEX_SKIP" ] ||
		    fail "the real codex cannot run: $CODEX_SKIP"
		spawn_setup 2
	}
	teardown() {
		spawn_teardown
	}
}

batch() {
	jq -n --arg g "$(goal_words 151)" --argjson steps "$1" \
	    --argjson extra "${SPAWN_LT_EXTRA:-{\}}" '{
		batch_goal_summary: $g,
		execution_policy: { skip_git_repo_check: true,
		    sandbox: "workspace-write", approval_policy: "never" },
		jobs: [{ job_id: "j", working_directory: "w", steps: $steps }]
	} + $extra' >lt.json
	if [ -n "${2:-}" ]; then
		jq_edit lt.json "$2"
	fi
	B=$(phn-ingest lt.json 2>/dev/null)
}

claim() {
	A=$("$T_CLAIM" "$B" j "$1")
}

one() {
	batch "[$(jq -n --arg p "$1" --argjson x "${2:-{\}}" \
	    '{step_id: "s", prompt: $p} + $x')]"
	claim s
}

resume_ran() {
	batch "$(jq -n --arg p1 "$1" --arg p2 "$2" '[{step_id: "s1", prompt: $p1},
	    {step_id: "s2", prompt: $p2, resume_from: {step_id: "s1"}}]')"
	claim s1
	A1=$A
	phn-spawn "$A1"
}

st() {
	jq -r "$1" "$A/state.json"
}

assert_outcome() {
	[ "$(st .status)" = "$1" ] ||
	    fail "status $(st .status), want $1: $(jq -c .errors "$A/state.json")"
	[ "$(st .failure_kind)" = "$2" ] ||
	    fail "failure_kind $(st .failure_kind), want $2"
}

alive_in_group() {
	ps -eo pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/' | wc -l
}

spawn_bg() {
	phn-spawn "$@" "$A" 2>"$T/spawn.err" 3>&- &
	BG=$!
}

codex_started() {
	# shellcheck disable=SC2016 # expanded by eval, each try
	wait_for eval '[ "$(st .current_item 2>/dev/null)" = "codex started" ]'
}

stop_bg() {
	local rc=0
	kill -"$1" "$BG"
	wait "$BG" || rc=$?
	BG=
	[ "$rc" -eq "$2" ] || fail "exit $rc, want $2"
}
