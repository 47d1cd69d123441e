#!/usr/bin/env bats
# tests/21-claim-stress.bats -- many claimers on one store at once: every
# step is claimed exactly once and the batch's concurrency is never
# exceeded at any instant.
#
# The instant check is exact and made afterwards: every attempt holds a
# slot from its claimed_at (taken under the batch lock, after the count)
# to its ended_at (written before its slot is released), so the number
# of those intervals that overlap, evaluated at every claimed_at (the
# only instants at which it can grow), is the number of queued or running
# attempts at that instant.  A sampler also watches the _active/ index
# live while the claimers run.

load helper

setup() {
	phn_setup
	phn-init >/dev/null 2>&1
}

# The most attempts of batch $1 queued or running at any one instant.
max_overlap() {
	cat runs/$1/*/steps/*/attempts/*/state.json |
	    jq -r '"\(.claimed_at) 1\n\(.ended_at) 0"' | sort | awk '$2 == 1 { n++; if (n > m) m = n } $2 == 0 { n-- }
	    END { print m + 0 }'
}

# Run N claimers (phn-claim --follow -j J | t-finish -w WORK -) to
# completion: each attempt runs WORK seconds, so that the claimers keep
# the batch at its concurrency.  A claimer that hangs is stopped after
# 300 s (timeout's 124 in its rc file).
claimers() {	# claimers N J WORK
	local i pids=
	for i in $(seq "$1"); do
		( timeout 300 phn-claim --follow -j "$2" | tee "claims.$i" |
		    "$T_FINISH" -w "$3" -
		  echo "${PIPESTATUS[*]}" >"rc.$i" ) &
		pids="$pids $!"
	done
	( shopt -s nullglob
	while [ ! -e done ]; do
		a=("runs/$B/_active/"*)
		echo "${#a[@]}" >>samples
		sleep 0.02
	done ) &
	sampler=$!
	for i in $pids; do wait "$i"; done
	touch done
	wait "$sampler"
	for i in $(seq "$1"); do
		[ "$(cat "rc.$i")" = "0 0 0" ] || fail "claimer $i: $(cat "rc.$i")"
	done
}

@test "stress: 500 steps, 8 claimers: each step claimed once, concurrency never exceeded" {
	mklt lt.json '{concurrency: 5, jobs: [range(50) as $j | {job_id: "j\($j)",
	    working_directory: ".", steps: [range(10) as $s |
	    {step_id: "s\($s)", prompt: "p"}]}]}'
	B=$(phn-ingest lt.json)
	claimers 8 2 0.01
	[ "$(cat claims.* | wc -l)" = 500 ]
	[ "$(cat claims.* | sort -u | wc -l)" = 500 ]
	[ "$(ls -d runs/$B/*/steps/*/attempts/* | wc -l)" = 500 ]
	[ "$(ls -d runs/$B/*/steps/*/attempts/* | sed 's|/attempts/.*||' |
	    sort -u | wc -l)" = 500 ]
	[ "$(cat runs/$B/*/steps/*/attempts/*/state.json |
	    jq -r .status | sort -u)" = succeeded ]
	m=$(max_overlap "$B")
	echo "max overlap: $m; samples: $(wc -l <samples), max $(sort -n samples | tail -1)"
	# 16 claims wanted at a time: the cap is reached, never passed
	[ "$m" -eq 5 ]
	[ "$(sort -n samples | tail -1)" -le 5 ]
	[ "$(ls "runs/$B/_active" | wc -l)" = 0 ]
	[ "$(ls "runs/$B/_ready" | wc -l)" = 0 ]
}

@test "stress: chains across jobs, 6 claimers: dependencies respected, each step once" {
	mklt lt.json '{concurrency: 4, jobs: [range(20) as $j | {job_id: "j\($j)",
	    working_directory: ".", steps: [range(5) as $s |
	    {step_id: "s\($s)", prompt: "p"} + (if $s > 0 then
	    {depends_on: (["s\($s - 1)"] + (if $j > 0 then ["j\($j - 1)/s\($s - 1)"]
	    else [] end))} else {} end)]}]}'
	B=$(phn-ingest lt.json)
	claimers 6 1 0.01
	[ "$(cat claims.* | sort -u | wc -l)" = 100 ]
	[ "$(ls -d runs/$B/*/steps/*/attempts/* | wc -l)" = 100 ]
	m=$(max_overlap "$B")
	echo "max overlap: $m"
	[ "$m" -le 4 ]
	[ "$m" -ge 2 ]
	# every step was claimed after its dependencies ended
	jq -r '[input_filename, .claimed_at, .ended_at] | @tsv' \
	    runs/$B/*/steps/*/attempts/*/state.json |
	    sed 's|^runs/[^/]*/j\([0-9]*\)/steps/s\([0-9]\)/[^\t]*|\1 \2|' >times
	run -0 awk -F'[ \t]' '{ c[$1 "/" $2] = $3; e[$1 "/" $2] = $4 }
	    END { for (k in c) { split(k, p, "/"); j = p[1]; s = p[2]
		if (s == 0) continue
		if (!(e[j "/" (s - 1)] < c[k])) { print "early: " k; bad = 1 }
		if (j > 0 && !(e[(j - 1) "/" (s - 1)] < c[k])) {
			print "early: " k; bad = 1 } }
	      exit bad }' times
	[ "$(wc -l <times)" = 100 ]
}
