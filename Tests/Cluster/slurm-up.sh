#!/usr/bin/env bash
# A single-node Slurm cluster for qtool's Slurm tests, as root, all state under one directory.
#   slurm-up.sh start DIR   installs slurm-wlm and munge when missing, writes a munge key and a
#                           slurm.conf naming this host (CPUs from nproc, RealMemory below the
#                           machine's), starts munged, slurmctld and slurmd, and waits (at most
#                           60 s) for sinfo to show the node idle. Prints `export SLURM_CONF=…`.
#   slurm-up.sh stop DIR    stops the three daemons by the pids they wrote.
# Exit 0 when the cluster is up; non-zero (with the reason on stderr) when it cannot start.
set -euo pipefail
command=${1:?usage: slurm-up.sh start|stop DIR}
dir=$(mkdir -p "${2:?usage: slurm-up.sh start|stop DIR}" && cd "$2" && pwd)

stop() {
  for name in slurmd slurmctld munged; do
    if [ -s "$dir/$name.pid" ]; then
      pid=$(cat "$dir/$name.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$name.pid"
    fi
  done
}

if [ "$command" = stop ]; then stop; exit 0; fi
[ "$command" = start ] || { echo "usage: slurm-up.sh start|stop DIR" >&2; exit 64; }
[ "$(id -u)" = 0 ] || { echo "slurm-up.sh: the test cluster runs as root" >&2; exit 77; }

missing=""
for p in slurm-wlm munge; do dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"; done
if [ -n "$missing" ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing) >/dev/null 2>&1 \
    || { echo "slurm-up.sh: cannot install$missing" >&2; exit 69; }
fi

stop
host=$(hostname -s)
cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
[ "$memory" -gt 256 ] || memory=256
# Ports from the directory's path, so two test runs side by side do not meet.
base=$(( 20000 + $(printf '%s' "$dir" | cksum | cut -d' ' -f1) % 20000 ))
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
chmod 700 "$dir/munge"
[ -s "$dir/munge/munge.key" ] || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
cat > "$dir/slurm.conf" <<CONF
ClusterName=qtooltest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SlurmctldPort=$base
SlurmdPort=$(( base + 1 ))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
MinJobAge=600
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
# The daemons must hold no descriptor of the caller's (a test reading this script's output to
# its end would wait for them forever): close every descriptor above 2 in this shell first.
for fd in $(ls /proc/$$/fd); do
  if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
done
munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" --pid-file="$dir/munged.pid" \
  --log-file="$dir/munged.log" --seed-file="$dir/munge/munge.seed" </dev/null >>"$dir/daemons.out" 2>&1 \
  || { echo "slurm-up.sh: munged did not start (see $dir/munged.log)" >&2; exit 69; }
# The daemons keep no descriptor of the caller's: a test reading this script's output to its end
# would otherwise wait for them.
slurmctld -f "$dir/slurm.conf" </dev/null >>"$dir/daemons.out" 2>&1 || { echo "slurm-up.sh: slurmctld did not start (see $dir/slurmctld.log)" >&2; stop; exit 69; }
slurmd -f "$dir/slurm.conf" </dev/null >>"$dir/daemons.out" 2>&1 || { echo "slurm-up.sh: slurmd did not start (see $dir/slurmd.log)" >&2; stop; exit 69; }
for _ in $(seq 120); do
  if sinfo -h -N -o '%T' 2>/dev/null | grep -qx idle; then
    echo "export SLURM_CONF=$dir/slurm.conf"
    exit 0
  fi
  sleep 0.5
done
echo "slurm-up.sh: the node did not become idle in 60 s: $(sinfo -h -N -o '%N %T %E' 2>&1) (see $dir/slurmctld.log, $dir/slurmd.log)" >&2
stop
exit 69
