#!/usr/bin/env bash
#! A single-node Slurm for the tests, in a folder of its own:
#!   setup-slurm.sh start DIR   installs Debian's slurm-wlm and munge (once, as root), writes
#!                              DIR/slurm.conf for this host, starts munged (if none runs),
#!                              slurmctld and slurmd, waits until the node is idle; prints
#!                              SLURM_CONF=DIR/slurm.conf
#!   setup-slurm.sh stop DIR    stops the daemons it started, by their pids in DIR
#! Without root or apt it says so and exits 1: the Slurm test then fails, naming this script.
set -euo pipefail
cmd=${1:?usage: setup-slurm.sh start|stop DIR}
DIR=${2:?usage: setup-slurm.sh start|stop DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

stop() {
  for p in "$@"; do
    if [ -f "$DIR/$p.pid" ]; then
      pid=$(cat "$DIR/$p.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$DIR/$p.pid"
    fi
  done
}

# Jobs still running (a test that failed half-way) are cancelled before their daemons go.
cancel_jobs() {
  [ -f "$DIR/slurm.conf" ] && [ -f "$DIR/slurmctld.pid" ] || return 0
  export SLURM_CONF=$DIR/slurm.conf
  scancel --user="$(id -un)" 2>/dev/null || true
  for _ in $(seq 100); do
    [ -z "$(squeue -h 2>/dev/null)" ] && break
    sleep 0.2
  done
}

if [ "$cmd" = stop ]; then cancel_jobs; stop slurmd slurmctld munged; exit 0; fi
[ "$cmd" = start ] || { echo "usage: setup-slurm.sh start|stop DIR" >&2; exit 2; }

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-slurm: slurm-wlm and munge are not installed and apt-get is not usable here (needs root): sudo apt-get install slurm-wlm munge" >&2
    exit 1
  fi
  echo "setup-slurm: installing Debian's slurm-wlm and munge (once)" >&2
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1) \
    || (apt-get update -qq >/dev/null && apt-get install -y -qq slurm-wlm munge >/dev/null)
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup-slurm: slurmd must run as root here (SlurmUser=root); run the tests as root" >&2
  exit 1
fi

# munge: a key owned by munge, mode 0400; one munged for the machine.
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n >/dev/null 2>&1; then
  su -s /bin/sh munge -c "munged --pid-file=/run/munge/munged.pid"
  for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
  cp /run/munge/munged.pid "$DIR/munged.pid" 2>/dev/null || true
fi
munge -n >/dev/null || { echo "setup-slurm: munged did not start" >&2; exit 1; }

host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
cat > "$DIR/slurm.conf" <<CONF
ClusterName=iscp-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=${ISCP_SLURMCTLD_PORT:-6817}
SlurmdPort=${ISCP_SLURMD_PORT:-6818}
KillWait=30
InactiveLimit=0
MinJobAge=300
JobAcctGatherType=jobacct_gather/none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
export SLURM_CONF=$DIR/slurm.conf
# Stale daemons of an earlier start in this folder go first.
stop slurmd slurmctld
slurmctld -f "$SLURM_CONF" -c
slurmd -f "$SLURM_CONF" -c
for _ in $(seq 150); do
  if sinfo -h -o %t 2>/dev/null | grep -Eq '^(idle|mix|alloc)'; then
    echo "SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.2
done
echo "setup-slurm: the node did not become idle: $(sinfo 2>&1 | tail -3)" >&2
tail -n 5 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
exit 1
