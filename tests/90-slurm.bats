#!/usr/bin/env bats
# tests/90-slurm.bats -- phn-slurm against a real one-node Slurm cluster
# on localhost (tests/slurm-up.sh: munged, slurmctld, slurmd as root, no
# systemd, no cgroups), started once for the file and stopped at its end
# (tests/slurm-down.sh stops exactly the daemons it started).  A cluster
# that cannot start fails every test here with the daemons' logs.

load helper

setup_file() {
	SLURM_DIR=$(mktemp -d /tmp/phn-slurm.XXXXXX)
	export SLURM_DIR
	if ! SLURM_UP_LOG=$(sh "$PHN_REPO/tests/slurm-up.sh" "$SLURM_DIR" 2>&1); then
		printf 'tests/slurm-up.sh failed:\n%s\n' "$SLURM_UP_LOG" >&3
		printf 'tests/slurm-up.sh failed:\n%s\n' "$SLURM_UP_LOG" >&2
		return 1
	fi
}

teardown_file() {
	[ -n "${SLURM_DIR:-}" ] || return 0
	sh "$PHN_REPO/tests/slurm-down.sh" "$SLURM_DIR"
	rm -rf "$SLURM_DIR"
}

setup() {
	phn_setup
	# shellcheck source=/dev/null
	. "$SLURM_DIR/env.sh"
	# The agent: logs each `codex exec` it runs, then answers at once
	# (tests/fake-codex/codex-fast); while $T/slow exists, it waits.
	cat >"$T/agent" <<EOF
#!/bin/sh
[ "\$1" = exec ] || exec "$PHN_REPO/tests/fake-codex/codex-fast" "\$@"
echo "\$\$" >>"$T/invocations"
while [ -e "$T/slow" ]; do
	sleep 0.1
done
exec "$PHN_REPO/tests/fake-codex/codex-fast" "\$@"
EOF
	chmod +x "$T/agent"
	PHN_CODEX=$T/agent
	export PHN_CODEX
	phn init >/dev/null
}

teardown() {
	local j
	for j in ${JOBS:-}; do
		scancel "$j" 2>/dev/null || :
	done
	bg_cleanup
}

# A batch of JOBS jobs of STEPS steps each, extra step fields EXTRA.
slurm_lt() {
	jq -n --arg goal "$(goal_words 151)" --argjson nj "$1" --argjson ns "$2" \
	    --argjson extra "${3:-{\}}" '{batch_goal_summary: $goal,
	    concurrency: 1000, jobs: [range($nj) as $j | {job_id: "j\($j)",
	    working_directory: ".", steps: [range($ns) | {step_id: "s\(.)",
	    prompt: "x"} + $extra]}]}'
}

invoked_at_least() {
	[ -f "$T/invocations" ] || return 1
	[ "$(wc -l <"$T/invocations")" -ge "$1" ]
}

array_gone() {
	[ -z "$(squeue -h -r -j "$1" -o %i 2>/dev/null)" ]
}

@test "200 steps through 4 array tasks: every step exactly once, runners registered" {
	slurm_lt 4 50 >lt.json
	B=$(phn submit lt.json)
	run -0 --separate-stderr phn-slurm --tasks 4 --per-task 4 --wait
	# the job id, alone
	[ "${#lines[@]}" -eq 1 ]
	[[ "${lines[0]}" =~ ^[0-9]+$ ]]
	J=${lines[0]}
	JOBS=$J
	# the agent ran 200 times, once per step
	[ "$(wc -l <"$T/invocations")" -eq 200 ]
	run -0 phn-score -b "$B" --json
	run jq -c '[.batch.counts.succeeded, .batch.attempts_total, .batch.outcome]' <<<"$output"
	assert_output '[200,200,"succeeded"]'
	# every step has one attempt, and it ran under one of the tasks
	run -0 phn-score -b "$B" --steps
	run jq -s -c '[length, ([.[] | select(.attempts == 1)] | length),
	    ([.[] | .slurm.job_id] | unique), ([.[] | .slurm.array_task_id] |
	    unique | length <= 4), ([.[] | .slurm.node] | unique)]' <<<"$output"
	assert_output "[200,200,[\"$J\"],true,[\"$(hostname -s)\"]]"
	# the four runners registered, and stopped cleanly
	for i in 0 1 2 3; do
		h=runners/$(hostname -s)-${J}_$i/health.json
		[ -f "$h" ]
		[ "$(jq -r .state "$h")" = stopped ]
		[ "$(jq -r .slurm.job_id "$h")" = "$J" ]
		[ "$(jq -r .slurm.array_task_id "$h")" = "$i" ]
		[ "$(jq -r .jobs "$h")" = 4 ]
	done
	run -0 phn-score --json
	run jq -r "[.runners[] | select(.runner_id | startswith(\"$(hostname -s)-${J}_\")) | .status] | join(\" \")" <<<"$output"
	assert_output "stopped stopped stopped stopped"
	# each task wrote its log under runs/_system/slurm
	[ -f "runs/_system/slurm/${J}_0.out" ]
}

@test "scancel mid-run: the killed attempts are retried without counting; a new phn-slurm --wait finishes" {
	jq '.defaults.scoreboard.heartbeat_interval_seconds = 1 |
	    .defaults.scoreboard.heartbeat_stale_after_seconds = 3' \
	    runs/_system/harness_config.json >cfg.json
	mv cfg.json runs/_system/harness_config.json
	# max_attempts 1: a retry that counted would be refused
	slurm_lt 2 4 '{"retry_policy": {"max_attempts": 1}}' >lt.json
	B=$(phn submit lt.json)
	touch "$T/slow"
	run -0 phn-slurm --tasks 2 --per-task 2
	J=$output
	JOBS=$J
	# four agents hang, two tasks of two
	wait_for invoked_at_least 4
	run -0 scancel "$J"
	wait_for array_gone "$J"
	rm "$T/slow"
	# every attempt ends: canceled by its spawner (a harness fault), or
	# reaped once its runner is known stopped
	wait_for sh -c 'phn-heartbeat --reap >/dev/null; ! phn-score -S |
	    jq -e "select(.status == \"running\")" >/dev/null'
	# ready again (harness retries), so still in progress
	run -3 phn-score -b "$B" --steps
	run jq -s -c '[.[] | select(.attempts > 0)] | length' <<<"$output"
	[ "$output" -ge 4 ]
	for st in runs/"$B"/j*/steps/*/attempts/*/state.json; do
		[ "$(jq -r .harness_fault "$st")" = true ]
		run jq -r .status "$st"
		[[ "$output" =~ ^(canceled|failed)$ ]]
	done
	# the runners said they stopped
	[ "$(jq -r .state "runners/$(hostname -s)-${J}_0/health.json")" = stopped ]
	# a new array finishes the batch, every step succeeded exactly once
	run -0 --separate-stderr phn-slurm --tasks 2 --per-task 4 --wait
	JOBS="$JOBS $output"
	run -0 phn-score -b "$B" --steps
	run jq -s -c '[length, ([.[] | select(.status == "succeeded")] | length),
	    ([.[] | select(.attempts_counted == 1)] | length)]' <<<"$output"
	assert_output '[8,8,8]'
	for s in runs/"$B"/j*/steps/*; do
		run sh -c "jq -r .status $s/attempts/*/state.json | grep -c succeeded"
		assert_output 1
	done
}

@test "phn-slurm: usage, bad values, no store, no sbatch" {
	run -0 --separate-stderr phn-slurm --help
	assert_output --regexp '^usage: phn-slurm '
	[ -z "$stderr" ]
	run -0 --separate-stderr phn slurm -h
	assert_output --regexp '^usage: phn-slurm '
	run -100 --separate-stderr phn-slurm
	assert_usage_error phn-slurm
	assert_stderr_line 'phn-slurm: --tasks is required'
	run -100 --separate-stderr phn-slurm --tasks 0
	assert_stderr_line "phn-slurm: --tasks: invalid value '0' (want an integer >= 1)"
	run -100 --separate-stderr phn-slurm --tasks 2 -j x
	assert_stderr_line "phn-slurm: --per-task: invalid value 'x' (want an integer >= 1)"
	run -100 --separate-stderr phn-slurm --tasks 2 -b 'a/b'
	assert_stderr_line "phn-slurm: --batch: invalid batch id 'a/b'"
	run -100 --separate-stderr phn-slurm --tasks 2 --bogus
	assert_usage_error phn-slurm
	run -100 --separate-stderr phn-slurm --tasks 2 --root "$T/nowhere"
	assert_stderr_line "phn-slurm: no runs store at $T/nowhere/runs (run phn init, or give --root)"
	# no Slurm client on PATH: 111, and nothing submitted
	mkdir bin
	for p in phn-slurm sh dirname sed mkdir; do
		ln -s "$(command -v "$p")" bin/
	done
	run -111 --separate-stderr env PATH="$T/bin" phn-slurm --tasks 2
	assert_stderr_line 'phn-slurm: sbatch not found: is this a Slurm login node?'
	# --task outside a Slurm job
	run -100 --separate-stderr env -u SLURM_JOB_ID -u SLURM_ARRAY_JOB_ID phn-slurm --task
	assert_stderr_line 'phn-slurm: --task runs only inside a Slurm job'
}

@test "phn-slurm --wait exits 3 when the array ends before the batch" {
	slurm_lt 1 2 >lt.json
	B=$(phn submit lt.json)
	touch "$T/slow"
	bg sh -c 'phn-slurm --tasks 1 --per-task 1 --throttle 1 --wait \
	    --sbatch-arg --job-name=phn-w3 >job.txt'
	wait_for test -s job.txt
	J=$(cat job.txt)
	JOBS=$J
	# --sbatch-arg reaches sbatch; --throttle is the array's %N
	run -0 scontrol show job "$J"
	assert_output --partial "JobName=phn-w3"
	assert_output --partial "ArrayTaskThrottle=1"
	wait_for invoked_at_least 1
	run -0 scancel "$J"
	st=0
	wait "$BG_PID" || st=$?
	[ "$st" -eq 3 ]
}

@test "examples/slurm.sh: a dry-run batch on two tasks, the runners listed" {
	slurm_lt 2 3 >lt.json
	run -0 --separate-stderr sh "$PHN_REPO/examples/slurm.sh" -n -t 2 -j 2 lt.json
	[ -z "$output" ]
	J=$(sed -n 's/^batch batch_[^ ]*: Slurm job \([0-9][0-9]*\), 2 tasks of 2 agents$/\1/p' <<<"$stderr")
	[ -n "$J" ]
	JOBS=$J
	assert_stderr_line "{\"runner_id\":\"$(hostname -s)-${J}_0\",\"status\":\"stopped\",\"max_load_observed\":$(jq .max_load_observed "runners/$(hostname -s)-${J}_0/health.json")}"
	run -0 phn-score --json
	run jq -r '.system[0].counts.succeeded' <<<"$output"
	assert_output 6
	# a dry run: the agent never ran
	[ ! -e "$T/invocations" ]
}

@test "a task goes on when one of its phn-spawn is killed; the killed attempt is reaped and retried" {
	slurm_lt 1 4 '{"retry_policy": {"max_attempts": 1}}' >lt.json
	B=$(phn submit lt.json)
	touch "$T/slow"
	run -0 phn-slurm --tasks 1 --per-task 2
	J=$output
	JOBS=$J
	wait_for invoked_at_least 2
	wait_for sh -c "jq -e 'select(.status == \"running\") | .spawner_pid' runs/$B/j0/steps/*/attempts/*/state.json >/dev/null"
	pid=$(jq -r 'select(.status == "running") | .spawner_pid' runs/"$B"/j0/steps/*/attempts/*/state.json | head -n 1)
	kill -KILL "$pid"
	rm "$T/slow"
	# the task (its xargs) goes on and the array ends with the batch done
	WAIT_TRIES=600 wait_for array_gone "$J"
	run -0 phn-score -b "$B" --steps
	run jq -s -c '[length, ([.[] | select(.status == "succeeded")] | length)]' <<<"$output"
	assert_output '[4,4]'
	run sh -c "jq -r 'select(.failure_kind == \"orphaned\") | .harness_fault' runs/$B/j0/steps/*/attempts/*/state.json"
	assert_output true
}
