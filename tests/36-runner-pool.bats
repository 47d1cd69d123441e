#!/usr/bin/env bats
# tests/36-runner-pool.bats -- the runner pool without Slurm:
# runners/<id>/health.json from every claimer, admission by pressure
# (phn-claim --memfree/--load, runner_pool config keys), the runner view
# of phn-score, several runners in one phn tick, and liveness across
# hosts judged by heartbeat age and the runner's health.

load helper
load score-helper

setup() {
	mk_store
}

teardown() {
	bg_cleanup
}

# N independent steps in job j.
steps_lt() {
	jq -n --arg goal "$(goal_words 151)" --argjson n "$1" '{
	    batch_goal_summary: $goal, concurrency: 10, jobs: [{job_id: "j",
	    working_directory: ".", steps: [range($n) | {step_id: "s\(.)",
	    prompt: "x"}]}]}' >lt.json
	B=$(phn submit lt.json)
}

# A crafted runners/R/health.json: state running, seen now, then FILTER.
mk_health() {
	mkdir -p "runners/$1"
	jq -n --arg id "$1" --arg now "$(iso_ago 0)" '{runner_id: $id,
	    host: "elsewhere", boot_id: "b-1", pid: 42, state: "running",
	    current_load: 0, started_at: $now, last_seen_at: $now}' |
	    jq "${2:-.}" >"runners/$1/health.json"
}

config() {
	jq "$@" runs/_system/harness_config.json >cfg.json
	mv cfg.json runs/_system/harness_config.json
}

# A fake /proc/meminfo with MemAvailable MB megabytes.
meminfo() {
	printf 'MemTotal:       %d kB\nMemAvailable:   %d kB\n' \
	    $((64 * 1024 * 1024)) $(($1 * 1024)) >"$T/meminfo.new"
	mv "$T/meminfo.new" "$T/meminfo"
}

health() {
	jq -r "$2" "runners/$1/health.json"
}

# health_is R FILTER VALUE: for wait_for, which runs it again each time.
health_is() {
	[ "$(jq -r "$2" "runners/$1/health.json" 2>/dev/null)" = "$3" ]
}

health_isnt() {
	if health_is "$@"; then
		return 1
	fi
}

@test "every claimer registers: health.json with host, boot, pressure; stopped on exit" {
	steps_lt 1
	run -0 phn-claim -i r1
	h=runners/r1/health.json
	[ "$(jq -r .runner_id "$h")" = r1 ]
	[ "$(jq -r .host "$h")" = "$(cat /proc/sys/kernel/hostname)" ]
	[ "$(jq -r .boot_id "$h")" = "$(cat /proc/sys/kernel/random/boot_id)" ]
	[ "$(jq -r .state "$h")" = stopped ]
	run jq -c '[(.pid | type), (.started_at | type), (.last_seen_at | type),
	    (.stopped_at | type), (.pressure.memory.available_bytes > 0),
	    (.pressure.disk_runs_root.free_bytes > 0),
	    (.pressure.loadavg["1m"] >= 0), .drain_mode, .admission]' "$h"
	assert_output '["number","string","string","string",true,true,true,false,{"max_load":null,"min_free_memory_bytes":null}]'
	# the default runner is host-qualified
	run -1 phn-claim
	[ -f "runners/runner_$(hostname | tr -c 'A-Za-z0-9.\n-' _)/health.json" ]
}

@test "a --follow claimer keeps its health current while idle and marks it stopped on SIGTERM" {
	config '.defaults.scoreboard.heartbeat_interval_seconds = 1 |
	    .defaults.scoreboard.heartbeat_stale_after_seconds = 3'
	steps_lt 1
	# the claim is never spawned: the claimer waits for it
	bg phn-claim --follow -j 1 -i rf >claims.txt 2>&1
	wait_for test -s claims.txt
	wait_for health_is rf .current_load 1
	[ "$(health rf .state)" = running ]
	[ "$(health rf .jobs)" = 1 ]
	[ "$(health rf .pid)" = "$BG_PID" ]
	seen=$(health rf .last_seen_at)
	wait_for health_isnt rf .last_seen_at "$seen"
	[ "$(health rf .state)" = running ]
	kill -TERM "$BG_PID"
	st=0
	wait "$BG_PID" || st=$?
	[ "$st" -eq 143 ]
	[ "$(health rf .state)" = stopped ]
}

@test "--memfree: nothing claimed below it; without --follow exit 1 and why" {
	steps_lt 2
	meminfo 50
	export PHN_MEMINFO=$T/meminfo
	run -1 --separate-stderr phn-claim -i rm --memfree 100M
	[ -z "$output" ]
	assert_stderr_line "phn-claim: runner rm claimed nothing: free memory 50 MB is below 100 MB"
	[ "$(health rm .admission.min_free_memory_bytes)" = 104857600 ]
	[ "$(find runs/"$B"/j/steps -name meta.json | wc -l)" -eq 0 ]
	run -0 phn-claim -i rm --memfree 10M
	[ "$(find runs/"$B"/j/steps -name meta.json | wc -l)" -eq 1 ]
}

@test "--follow waits under pressure, says why in health and the scoreboard, resumes when it falls" {
	steps_lt 1
	meminfo 50
	export PHN_MEMINFO=$T/meminfo
	bg phn-claim --follow -i rw --memfree 1G >claims.txt 2>err.txt
	wait_for health_is rw .state waiting
	[ "$(health rw .waiting_reason)" = "free memory 50 MB is below 1024 MB" ]
	[ ! -s claims.txt ]
	run -3 phn-score --json
	run jq -c '.runners[] | select(.runner_id == "rw") | [.status, .waiting_reason]' <<<"$output"
	assert_output '["waiting","free memory 50 MB is below 1024 MB"]'
	run -3 phn-score
	assert_line --regexp '^rw +waiting +.* free memory 50 MB is below 1024 MB$'
	meminfo 4096
	wait_for test -s claims.txt
	[ "$(health rw .state)" = running ]
	[ "$(health rw .waiting_reason)" = null ]
}

@test "--load: nothing claimed above it" {
	steps_lt 1
	echo '7.50 3.00 1.00 2/100 1234' >"$T/loadavg"
	export PHN_LOADAVG=$T/loadavg
	run -1 --separate-stderr phn-claim -i rl --load 4
	assert_stderr_line "phn-claim: runner rl claimed nothing: 1-minute load average 7.50 is above 4.00"
	run -0 phn-claim -i rl --load 8
}

@test "runner_pool.min_free_memory_bytes and max_load are the defaults; the options win" {
	steps_lt 1
	meminfo 50
	export PHN_MEMINFO=$T/meminfo
	config '.defaults.runner_pool.min_free_memory_bytes = 104857600 |
	    .defaults.runner_pool.max_load = null'
	run -1 --separate-stderr phn-claim -i rc
	assert_stderr_line --partial "free memory 50 MB is below 100 MB"
	[ "$(health rc .admission.max_load)" = null ]
	run -0 phn-claim -i rc --memfree 1M
}

@test "bad admission settings: the option or the config field named, exit 100" {
	steps_lt 1
	run -100 --separate-stderr phn-claim --memfree 12Q
	assert_stderr_line --partial "phn-claim: --memfree: invalid size '12Q'"
	run -100 --separate-stderr phn-claim --load -1
	assert_stderr_line --partial "phn-claim: --load: invalid value '-1'"
	run -100 --separate-stderr phn-claim --memfree 0
	assert_stderr_line --partial "phn-claim: --memfree: invalid size '0'"
	run -100 --separate-stderr phn-claim --rescan --load 3
	config '.defaults.runner_pool.min_free_memory_bytes = "1G" |
	    .defaults.runner_pool.max_load = -2'
	run -100 --separate-stderr phn-claim
	assert_stderr_line --partial "defaults.runner_pool.min_free_memory_bytes: must be an integer >= 0 or null"
	assert_stderr_line --partial "defaults.runner_pool.max_load: must be a number >= 0 or null (is -2)"
}

@test "phn-score shows runners alive, waiting, draining, gone and stopped" {
	config '.defaults.scoreboard.heartbeat_interval_seconds = 1 |
	    .defaults.scoreboard.heartbeat_stale_after_seconds = 60'
	mk_health ra
	mk_health rw '.state = "waiting" | .waiting_reason = "load"'
	mk_health rd
	echo '{"drain": true}' >runners/rd/drain.json
	mk_health rg ".last_seen_at = \"$(iso_ago 120)\""
	mk_health rs '.state = "stopped"'
	mk_health rold ".state = \"stopped\" | .last_seen_at = \"$(iso_ago 7200)\""
	run -0 phn-score --json
	run jq -c '[.runners[] | [.runner_id, .status]]' <<<"$output"
	assert_output '[["ra","alive"],["rd","draining"],["rg","gone"],["rold","stopped"],["rs","stopped"],["rw","waiting"]]'
	run -0 phn-score
	assert_line --regexp '^RUNNER +STATUS +HOST +LOAD +SEEN +WHY$'
	assert_line --regexp '^ra +alive +elsewhere +0 '
	assert_line --regexp '^rg +gone '
	assert_line --regexp '^rw +waiting +elsewhere +0 +[0-9]+s +load$'
	# stopped over an hour ago: only in --json
	refute_line --partial rold
}

@test "phn tick runs each runner of PARALLELHASSNES_RUNNER_IDS, else runner_pool.runner_ids" {
	steps_lt 6
	run -0 env PARALLELHASSNES_RUNNER_IDS=' ta, tb ' phn-claim --runner-ids
	assert_output $'ta\ntb'
	PARALLELHASSNES_RUNNER_IDS=' ta, tb ' run -0 phn tick --no-codex -c 2
	[ "$(health ta .state)" = stopped ]
	[ "$(health tb .state)" = stopped ]
	run sh -c "jq -r .runner_id runs/$B/j/steps/*/attempts/*/meta.json | sort -u"
	[[ "$output" =~ ^(ta|tb|ta.tb)$ ]]
	run -0 phn-score -b "$B" --json
	run jq -r .batch.counts.succeeded <<<"$output"
	assert_output 6
	config '.defaults.runner_pool.runner_ids = ["tc"]'
	run -0 phn-claim --runner-ids
	assert_output tc
	run -0 phn tick --no-codex
	[ "$(health tc .state)" = stopped ]
	config '.defaults.runner_pool.runner_ids = ["a/b"]'
	run -100 --separate-stderr phn-claim --runner-ids
	assert_stderr_line --partial "defaults.runner_pool.runner_ids[0]: not a valid runner id"
	run -100 --separate-stderr env PARALLELHASSNES_RUNNER_IDS='x y' phn-claim --runner-ids
	assert_stderr_line "phn-claim: PARALLELHASSNES_RUNNER_IDS: invalid runner id 'x y'"
}

@test "liveness across hosts: a remote attempt is judged by its runner's health, never a local pid" {
	config '.defaults.scoreboard.heartbeat_interval_seconds = 1 |
	    .defaults.scoreboard.heartbeat_stale_after_seconds = 60'
	mk_batch '[{"job_id": "j", "working_directory": ".", "steps": [
	    {"step_id": "a", "prompt": "x"}, {"step_id": "b", "prompt": "x"},
	    {"step_id": "c", "prompt": "x"}, {"step_id": "d", "prompt": "x"},
	    {"step_id": "e", "prompt": "x"}, {"step_id": "f", "prompt": "x"},
	    {"step_id": "g", "prompt": "x"}]}]'
	remote='.host = "elsewhere" | .boot_id = "b-1" | .spawner_pid = 1 |
	    .last_heartbeat_at = $now'
	# a: its runner stopped 40 s ago (> stale/2), no heartbeat since
	mk_attempt j a running "$remote | .runner_id = \"rs\" | .last_heartbeat_at = \"$(iso_ago 45)\""
	A=$ATT
	mk_health rs ".state = \"stopped\" | .stopped_at = \"$(iso_ago 40)\""
	# b: its runner stopped just now: the spawner may still be ending
	mk_attempt j b running "$remote | .runner_id = \"rn\" | .last_heartbeat_at = \"$(iso_ago 5)\""
	Bt=$ATT
	mk_health rn ".state = \"stopped\" | .stopped_at = \"$(iso_ago 1)\""
	# c: its host came back with another boot: the attempt died with it
	mk_attempt j c running "$remote | .runner_id = \"rr\" | .last_heartbeat_at = \"$(iso_ago 5)\""
	C=$ATT
	mk_health rr '.boot_id = "b-2"'
	# d: runner alive, heartbeat fresh: alive, whatever pid 1 is here
	mk_attempt j d running "$remote | .runner_id = \"ra\""
	mk_health ra
	# e: queued by a runner that stopped 40 s ago: left to its lease
	# (a one-shot phn-claim stops right after claiming)
	mk_attempt j e queued '.runner_id = "rs"'
	E=$ATT
	# f: running for a runner gone, heartbeat fresh: its spawner lives
	mk_attempt j f running "$remote | .runner_id = \"rg\""
	mk_health rg ".last_seen_at = \"$(iso_ago 70)\""
	# g: the same, heartbeat stale: orphaned by its heartbeat
	mk_attempt j g running "$remote | .runner_id = \"rg\" | .last_heartbeat_at = \"$(iso_ago 65)\""
	run -1 phn-heartbeat --stale -J
	run jq -r -s -c 'map([.step_id, .fault]) | sort' <<<"$output"
	assert_output '[["a","orphaned"],["c","orphaned"],["g","orphaned"]]'
	run -0 phn-heartbeat --reap -J
	[ "$(jq -r .failure_kind "runs/$A/state.json")" = orphaned ]
	[ "$(jq -r .failure_kind "runs/$C/state.json")" = orphaned ]
	[ "$(jq -r .status "runs/$E/state.json")" = queued ]
	[ "$(jq -r .status "runs/$Bt/state.json")" = running ]
	# a spawn.lock held is life, whatever the runner says
	mk_attempt j b running "$remote | .runner_id = \"rs\" | .last_heartbeat_at = \"$(iso_ago 45)\""
	bg_lock "runs/$ATT/spawn.lock"
	run phn-heartbeat --stale -b "$B" -J
	refute_output --partial "$ATT"
}
