#!/usr/bin/env bats
# tests/14-records.bats -- the records the original's readers expect
# (issue 13): harness_config_version in the config, codex_cli_version in
# state.json from the start (cached per binary), prompt_ref and
# environment_snapshot in meta.json, phn-heartbeat and phn-cancel on an
# attempt of any store, and no auth.json link when an API key is set.

load helper
load spawn-helper
load score-helper

FAKE=$PHN_REPO/tests/fake-codex/codex

setup() {
	spawn_setup 1
	export PHN_CODEX=$FAKE
	unset PHN_CODEX_CONFIG FAKE_CODEX_MODE FAKE_CODEX_LOG CODEX_API_KEY \
	    OPENAI_API_KEY
}

teardown() {
	spawn_teardown
}

CFG=runs/_system/harness_config.json

# The version by its definition: hc_ and 12 hex of the SHA-256 of the
# canonical form (sorted keys, 2-space indent, final newline) without
# written_at and harness_config_version.
version_of() {
	printf 'hc_%.12s' "$(jq -S --indent 2 \
	    'del(.written_at, .harness_config_version)' "$1" | sha256sum)"
}

# A codex that counts its --version runs in $T/asked, then is the fake.
counting_codex() {
	cat >"$T/codex" <<EOF
#!/bin/sh
if [ "\${1:-}" = --version ]; then
	echo asked >>"$T/asked"
	${1:-echo 'codex-cli 9.8.7'}
	exit \$?
fi
exec "$FAKE" "\$@"
EOF
	chmod +x "$T/codex"
	export PHN_CODEX=$T/codex
}

# --- harness_config_version --------------------------------------------

@test "config: phn-init writes harness_config_version, the version it reports" {
	rm "$CFG"
	run -0 phn-init
	v=$(jq -r .harness_config_version "$CFG")
	[ "$v" = "$(jq -r .harness_config_version <<<"$output")" ]
	[ "$v" = "$(version_of "$CFG")" ]
	[ "$(jq -r .harness_config_version \
	    "runs/_system/harness_config_versions/$v.json")" = "$v" ]
	# Writing the key in did not change the version.
	[ "$(phn-init | jq -r .harness_config_version)" = "$v" ]
}

@test "config: one without harness_config_version still reads; phn-init stamps it" {
	phn-init >/dev/null
	v=$(jq -r .harness_config_version "$CFG")
	jq_edit "$CFG" 'del(.harness_config_version)'
	one "x"
	[ -n "$B" ]
	[ "$(jq -r .harness_config_version "runs/$B/batch_meta.json")" = "$v" ]
	run -0 phn-init
	[ "$(jq -r .harness_config_version "$CFG")" = "$v" ]
	run -0 jq -r .config_written <<<"$output"
	assert_output false
}

@test "config: a stale harness_config_version is ignored, and brought up to date" {
	phn-init >/dev/null
	old=$(jq -r .harness_config_version "$CFG")
	jq_edit "$CFG" '.limits.max_steps_per_job = 7'
	new=$(version_of "$CFG")
	[ "$new" != "$old" ]
	one "x"
	[ "$(jq -r .harness_config_version "runs/$B/batch_meta.json")" = "$new" ]
	# The snapshot of the new version carries the right key.
	[ "$(jq -r .harness_config_version \
	    "runs/_system/harness_config_versions/$new.json")" = "$new" ]
	[ "$(jq -r .harness_config_version "$CFG")" = "$old" ]
	run -0 phn-init
	[ "$(jq -r .harness_config_version "$CFG")" = "$new" ]
	[ "$(jq -r .limits.max_steps_per_job "$CFG")" = 7 ]
}

@test "config: a harness_config_version that is not a string is refused" {
	jq_edit "$CFG" '.harness_config_version = 5'
	run -100 --separate-stderr phn-init
	assert_stderr_line --partial "harness_config_version: must be a string (is an integer)"
	assert_stderr_prefix phn-init
	[ "$(jq .harness_config_version "$CFG")" = 5 ]
}

# --- codex_cli_version ---------------------------------------------------

@test "codex_cli_version: in state.json as soon as codex runs" {
	one "FAKE:sleep:30"
	spawn_bg
	codex_started
	[ "$(st .status)" = running ]
	[ "$(st .codex_cli_version)" = 0.171.0-fake ]
	stop_bg TERM 4
	[ "$(st .codex_cli_version)" = 0.171.0-fake ]
}

@test "codex_cli_version: codex --version runs once per binary, again when it changes" {
	counting_codex
	batch '[{"step_id": "a", "prompt": "x"}, {"step_id": "b", "prompt": "y"},
	    {"step_id": "c", "prompt": "z"}]'
	for s in a b c; do
		claim "$s"
		run -0 phn-spawn "$A"
		[ "$(st .codex_cli_version)" = 9.8.7 ]
	done
	[ "$(wc -l <"$T/asked")" -eq 1 ]
	run -0 jq -r --arg c "$T/codex" '.[$c].version' \
	    runs/_system/codex_versions.json
	assert_output 9.8.7
	# A new binary at the same path (new mtime): asked again.
	touch -d '2001-01-01' "$T/codex"
	claim a
	run -0 phn-spawn "$A"
	[ "$(wc -l <"$T/asked")" -eq 2 ]
	# No probe directory is left behind.
	[ ! -e "$A/tmp/version_probe" ]
}

@test "codex_cli_version: null when codex --version fails, and asked once" {
	counting_codex false
	batch '[{"step_id": "a", "prompt": "x"}, {"step_id": "b", "prompt": "y"}]'
	claim a
	run -0 phn-spawn "$A"
	[ "$(st .codex_cli_version)" = null ]
	claim b
	run -0 phn-spawn "$A"
	[ "$(st .codex_cli_version)" = null ]
	[ "$(wc -l <"$T/asked")" -eq 1 ]
}

@test "codex_cli_version: a corrupt cache is ignored and rewritten" {
	counting_codex
	echo '{not json' >runs/_system/codex_versions.json
	one "x"
	run -0 phn-spawn "$A"
	[ "$(st .codex_cli_version)" = 9.8.7 ]
	jq -e . runs/_system/codex_versions.json
}

# --- meta.json: prompt_ref, environment_snapshot -------------------------

@test "meta.json: prompt_ref (or null) and environment_snapshot, no secrets" {
	echo "Do it." >w/p.txt
	export CODEX_API_KEY=sk-do-not-record OPENAI_API_KEY=sk-nor-this \
	    PHN_TEST_TOKEN=tok-nor-this CODEX_FLAVOUR=plain
	mk_batch '[{"job_id": "j", "working_directory": "w", "steps": [
	    {"step_id": "r", "prompt_ref": "p.txt"}, {"step_id": "i", "prompt": "x"}]}]'
	phn-claim -c 2 -n 2 -b "$B" >claimed
	a=$(grep /steps/r/ claimed)
	i=$(grep /steps/i/ claimed)
	[ "$(jq -r .prompt_ref "$a/meta.json")" = p.txt ]
	[ "$(jq -r .prompt_ref "$i/meta.json")" = null ]
	run -0 jq -c '.environment_snapshot | [.job_workdir, .workspace_policy,
	    .workspace_root, .host, .user, .phn_version, .codex_path]' "$a/meta.json"
	assert_output "[\"$T/w\",{\"mode\":\"shared\"},\"$T/w\",\"$(hostname)\",\"$(id -un)\",\"$(jq -r .environment_snapshot.phn_version "$a/meta.json")\",\"$FAKE\"]"
	[ "$(jq -r .environment_snapshot.env.CODEX_FLAVOUR "$a/meta.json")" = plain ]
	[ "$(jq -r .environment_snapshot.env.PHN_CODEX "$a/meta.json")" = "$FAKE" ]
	run grep -c 'sk-do-not-record\|sk-nor-this\|tok-nor-this\|API_KEY\|TOKEN' "$a/meta.json"
	assert_output 0
}

@test "meta.json: an isolated job's workspace_root, codex_path null when none" {
	export PHN_CODEX=$T/no-such-codex
	mk_batch '[{"job_id": "j", "working_directory": "w",
	    "workspace_policy": {"mode": "isolated",
	    "allow_isolated_copy_fallback": true}, "steps": [{"step_id": "s", "prompt": "x"}]}]'
	a=$(phn-claim -b "$B")
	run -0 jq -c '.environment_snapshot | [.workspace_policy.mode,
	    .workspace_root, .codex_path]' "$a/meta.json"
	assert_output "[\"isolated\",\"$B/j/_workspace\",null]"
}

# --- phn-heartbeat and phn-cancel on an attempt of any store -------------

@test "heartbeat: an attempt by any path, its store found from the path" {
	one "x"
	unset PHN_ROOT
	mkdir "$T/else"
	cd "$T/else"
	run -0 phn-heartbeat "$A" one
	[ "$(st .current_item)" = one ]
	run -0 phn-heartbeat "../${A#"$T"/}" two
	[ "$(st .current_item)" = two ]
	ln -s "$A" "$T/else/att"
	run -0 phn-heartbeat att three
	[ "$(st .current_item)" = three ]
	cd "$A"
	run -0 phn-heartbeat . four
	[ "$(st .current_item)" = four ]
	# --root naming another store does not hide it.
	run -0 phn-heartbeat -r "$T/else" "$A" five
	[ "$(st .current_item)" = five ]
	[ ! -e "$T/else/runs" ]
}

@test "heartbeat: an attempt-shaped directory outside any store -> 100" {
	unset PHN_ROOT
	d=$T/other/runs/b/j/steps/s/attempts/x
	mkdir -p "$d" "$T/else"
	cd "$T/else"
	run -100 --separate-stderr phn-heartbeat "$d"
	assert_stderr_line --partial "nor of a store found from its path"
	assert_stderr_prefix phn-heartbeat
	run -100 --separate-stderr phn-heartbeat "$T/else/nowhere"
	assert_stderr_line --partial "no such attempt directory"
	[ ! -e "$d/state.json" ]
}

@test "heartbeat: a store known by batch_meta.json alone (no _system/)" {
	one "x"
	mv runs/_system "$T/system.away"
	unset PHN_ROOT
	cd /
	run -0 phn-heartbeat "$A" six
	[ "$(st .current_item)" = six ]
}

@test "cancel: an attempt by any path; one that has ended exits 0 and says so" {
	one "x"
	unset PHN_ROOT
	mkdir "$T/else"
	cd "$T/else"
	run -0 phn-cancel "../${A#"$T"/}"
	run -0 jq -c '[.canceled, .status]' <<<"$output"
	assert_output '[true,"canceled"]'
	before=$(find "$A" -printf '%p %T@ %s\n' | sort)
	run -0 phn-cancel "$A"
	run -0 jq -c '[.ok, .already_terminal, .status]' <<<"$output"
	assert_output '[true,true,"canceled"]'
	run -0 phn-cancel -a "$A"
	run -0 jq -r .already_terminal <<<"$output"
	assert_output true
	[ "$(find "$A" -printf '%p %T@ %s\n' | sort)" = "$before" ]
	[ ! -e "$T/else/runs" ]
}

@test "cancel: outside any store -> 100, nothing else done" {
	one "x"
	d=$T/other/runs/b/j/steps/s/attempts/x
	mkdir -p "$d"
	run -100 --separate-stderr phn-cancel "$d" "$A"
	assert_stderr_line --partial "nor of a store found from its path"
	[ "$(st .status)" = queued ]
}

# --- auth.json and API keys ----------------------------------------------

@test "auth.json: not linked when CODEX_API_KEY or OPENAI_API_KEY is set" {
	mkdir -p "$HOME/.codex"
	echo '{}' >"$HOME/.codex/auth.json"
	echo 'model = "m"' >"$HOME/.codex/config.toml"
	batch '[{"step_id": "a", "prompt": "x"}, {"step_id": "b", "prompt": "y"},
	    {"step_id": "c", "prompt": "z"}, {"step_id": "d", "prompt": "w"}]'
	claim a
	CODEX_API_KEY=k run -0 phn-spawn "$A"
	[ ! -e "$A/codex_home/auth.json" ]
	[ -L "$A/codex_home/config.toml" ]
	claim b
	OPENAI_API_KEY=k run -0 phn-spawn "$A"
	[ ! -e "$A/codex_home/auth.json" ]
	claim c
	CODEX_API_KEY= OPENAI_API_KEY= run -0 phn-spawn "$A"
	[ "$(readlink "$A/codex_home/auth.json")" = "$HOME/.codex/auth.json" ]
	claim d
	run -0 phn-spawn "$A"
	[ "$(readlink "$A/codex_home/auth.json")" = "$HOME/.codex/auth.json" ]
}
