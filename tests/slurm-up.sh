#!/bin/sh
# tests/slurm-up.sh DIR -- start a one-node Slurm cluster on localhost for
# the tests: a private munged, slurmctld and slurmd, all as root, no
# systemd, no cgroups (../shared/reference/slurm-localhost.md has the
# measured notes this follows).  Everything lives in DIR (which must be
# short: munge's socket path is limited to 108 bytes): etc/slurm.conf,
# the munge key and socket, state, spool, log/, and run/*.pid, one per
# daemon this script started; tests/slurm-down.sh DIR stops exactly
# those.  DIR/env.sh exports SLURM_CONF for the clients.
#
# Prints nothing on success; exits 0 once the node is idle.  On failure
# (a missing program, a port in use, a daemon that dies or a node that is
# not idle within SLURM_UP_TIMEOUT seconds, default 60) it prints why
# and the tail of every daemon log on stderr, stops what it started, and
# exits 1.
#
#   SLURM_UP_OVERSUBSCRIBE=N   N jobs per core (default 4: 4 x cores
#                              one-CPU tasks run at once)
#   SLURM_UP_CTLD_PORT, SLURM_UP_SLURMD_PORT   (default 6817, 6818)
set -u

dir=${1:?usage: slurm-up.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
over=${SLURM_UP_OVERSUBSCRIBE:-4}
cport=${SLURM_UP_CTLD_PORT:-6817}
dport=${SLURM_UP_SLURMD_PORT:-6818}
timeout=${SLURM_UP_TIMEOUT:-60}

say() { printf 'slurm-up: %s\n' "$*" >&2; }

# The daemons must not keep our caller's stdout open, and a reader that
# leaves early must not kill us halfway (the notes, pitfalls 12 and 13).
trap '' PIPE

logs() {
	for f in "$dir"/log/*.log "$dir"/log/*.stdout; do
		[ -s "$f" ] || continue
		printf '=== %s (last 40 lines)\n' "$f" >&2
		tail -n 40 "$f" >&2
	done
}

fail() {
	say "$*"
	logs
	sh "$here/slurm-down.sh" "$dir" >&2
	exit 1
}

for p in munged munge unmunge slurmctld slurmd sinfo; do
	command -v "$p" >/dev/null 2>&1 ||
	    { say "$p not found: install Debian's slurm-wlm and munge (make deps)"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { say "must run as root (SlurmUser=root)"; exit 1; }
for port in "$cport" "$dport"; do
	if command -v ss >/dev/null 2>&1 &&
	    ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
		say "TCP port $port is in use (another cluster?); set SLURM_UP_CTLD_PORT/SLURM_UP_SLURMD_PORT"
		exit 1
	fi
done

mkdir -p "$dir" || exit 1
dir=$(cd "$dir" && pwd -P)
node=$(hostname -s)
mkdir -p "$dir/etc" "$dir/state" "$dir/spool/$node" "$dir/log" \
    "$dir/run" "$dir/munge" || exit 1
# munged refuses a socket dir that is not searchable by all (pitfall 1).
chmod 0755 "$dir" "$dir/munge" || exit 1
if [ ! -s "$dir/etc/munge.key" ]; then
	dd if=/dev/urandom of="$dir/etc/munge.key" bs=1024 count=1 \
	    2>/dev/null || exit 1
fi
chmod 0400 "$dir/etc/munge.key"

# The node's topology and memory exactly as slurmd sees them (pitfall 3).
hw=$(slurmd -C 2>/dev/null | sed -n 's/^NodeName=[^ ]* //p' |
    sed 's/ UpTime=.*//')
[ -n "$hw" ] || { say "slurmd -C printed no node line"; exit 1; }
sched=""
[ "$over" -gt 1 ] && sched=" OverSubscribe=FORCE:$over"
cat >"$dir/etc/slurm.conf" <<EOF
# written by tests/slurm-up.sh
ClusterName=phntest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$cport
SlurmdPort=$dport
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket.2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
# Without these two, array tasks start about once a second (the notes,
# pitfall 6): Epilog makes slurmd send EPILOG_COMPLETE, so the next task
# is scheduled at once; batch_sched_delay=0 starts the first at once.
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
Epilog=/bin/true
MailProg=/bin/true
ReturnToService=2
MinJobAge=1800
MaxJobCount=50000
MaxArraySize=10001
KillWait=5
NodeName=$node NodeAddr=127.0.0.1 $hw
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP$sched
EOF
printf 'SLURM_CONF=%s\nexport SLURM_CONF\n' "$dir/etc/slurm.conf" \
    >"$dir/env.sh"
SLURM_CONF=$dir/etc/slurm.conf
export SLURM_CONF

# munged forks and returns once its socket is ready; it writes its pid.
munged --key-file="$dir/etc/munge.key" --socket="$dir/munge/munge.socket.2" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munged.seed" </dev/null >"$dir/log/munged.stdout" \
    2>&1 || fail "munged did not start"
munge -n -S "$dir/munge/munge.socket.2" 2>/dev/null |
    unmunge -S "$dir/munge/munge.socket.2" >/dev/null 2>&1 ||
    fail "munge -n | unmunge failed against our munged"

# The daemons in the foreground (-D) of their own sessions, in the
# background; each one's pid is recorded at once (they write the same).
start() {
	name=$1
	shift
	env --default-signal=PIPE setsid "$@" </dev/null \
	    >"$dir/log/$name.stdout" 2>&1 &
	echo $! >"$dir/run/$name.pid"
}
rm -rf "$dir/state"/*
start slurmctld slurmctld -D -c -f "$SLURM_CONF"
start slurmd slurmd -D -N "$node" -f "$SLURM_CONF"

alive() {
	pid=$(cat "$dir/run/$1.pid" 2>/dev/null) || return 1
	st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' \
	    "/proc/$pid/status" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# Poll every 0.1 s until the node is idle.
n=$(awk -v t="$timeout" 'BEGIN { print int(t * 10) }')
i=0
while :; do
	for d in slurmctld slurmd; do
		alive "$d" || fail "$d died while starting"
	done
	s=$(sinfo -h -n "$node" -o %T 2>/dev/null)
	[ "$s" = idle ] && break
	i=$((i + 1))
	[ "$i" -lt "$n" ] || fail "node $node not idle after $timeout s (sinfo: ${s:-nothing})"
	sleep 0.1
done
exit 0
