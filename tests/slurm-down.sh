#!/bin/sh
# tests/slurm-down.sh DIR -- stop the cluster tests/slurm-up.sh DIR
# started: cancel its jobs, then stop exactly the daemons whose pids are
# in DIR/run/*.pid, if /proc/PID/comm still names that daemon (never by
# name, never anyone else's).  Safe when nothing runs.  Exits 0.
set -u

dir=${1:?usage: slurm-down.sh DIR}
[ -d "$dir" ] || exit 0
trap '' PIPE

mine() {	# mine NAME: our daemon's pid if it still lives, else nothing
	pid=$(cat "$dir/run/$1.pid" 2>/dev/null) || return 1
	case $pid in ''|*[!0-9]*) return 1 ;; esac
	comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
	case $comm in
	"$1") ;;
	env|setsid)	# started a moment ago: not yet exec'd, but ours
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
		    grep -qF "$dir/etc/slurm.conf" || return 1 ;;
	*) return 1 ;;
	esac
	st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' \
	    "/proc/$pid/status" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ] || return 1	# a zombie is dead
	echo "$pid"
}

# Jobs first: their processes are not slurmd's children (pitfall 14).
if [ -f "$dir/etc/slurm.conf" ] && mine slurmctld >/dev/null; then
	SLURM_CONF=$dir/etc/slurm.conf
	export SLURM_CONF
	jobs=$(squeue -h -o %A 2>/dev/null | sort -u)
	if [ -n "$jobs" ]; then
		# shellcheck disable=SC2086 # one id per word
		scancel $jobs 2>/dev/null
		i=0
		while [ "$i" -lt 150 ] && [ -n "$(squeue -h -o %A 2>/dev/null)" ]; do
			sleep 0.1
			i=$((i + 1))
		done
	fi
fi

pids=
for d in slurmd slurmctld munged; do
	if p=$(mine "$d"); then
		kill -TERM "$p" 2>/dev/null
		pids="$pids $d"
	fi
done
i=0
while [ -n "$pids" ] && [ "$i" -lt 50 ]; do
	left=
	for d in $pids; do
		mine "$d" >/dev/null && left="$left $d"
	done
	pids=$left
	[ -z "$pids" ] && break
	sleep 0.1
	i=$((i + 1))
done
for d in $pids; do
	p=$(mine "$d") && kill -KILL "$p" 2>/dev/null
done
rm -f "$dir"/run/*.pid
exit 0
