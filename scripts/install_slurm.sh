#!/usr/bin/env bash
# Slurm baseline for `python -m bench throughput`: installs Debian's slurm-wlm (slurmctld,
# slurmd, munge) when missing, writes a single-node slurm.conf for this host tuned for job
# throughput (no batch scheduling delay, CPUs declared for oversubscription, no accounting),
# starts munged, slurmctld and slurmd as background daemons and waits until `sinfo` shows
# the node idle. Idempotent: a second run only restarts what is not running.
# Needs root (apt-get, daemons). Only the benchmark calls it; CI does not.
# Env: SLURM_CPUS (CPUs declared for the node, default 64), SLURM_DIR (state and logs,
# default /var/lib/bacalhau-bench-slurm).
set -euo pipefail

SLURM_CPUS="${SLURM_CPUS:-64}"
SLURM_DIR="${SLURM_DIR:-/var/lib/bacalhau-bench-slurm}"
CONF_DIR=/etc/slurm
HOST="$(hostname -s)"

if [ "$(id -u)" != 0 ]; then
  echo "install_slurm.sh needs root (apt-get and the Slurm daemons)" >&2
  exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null
fi

mkdir -p "$CONF_DIR" "$SLURM_DIR/ctld" "$SLURM_DIR/d" "$SLURM_DIR/log" \
  /run/munge /var/log/munge /var/lib/munge /etc/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
chmod 0700 /etc/munge

MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
cat > "$CONF_DIR/slurm.conf.new" <<EOF
# written by bacalhau-py scripts/install_slurm.sh: one node, tuned for job throughput
ClusterName=bench
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$SLURM_DIR/ctld
SlurmdSpoolDir=$SLURM_DIR/d
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
SlurmctldDebug=error
SlurmdDebug=error
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0,defer_batch,sched_min_interval=1,max_rpc_cnt=0
MaxJobCount=200000
MinJobAge=2
ReturnToService=2
MpiDefault=none
SlurmdParameters=config_overrides
NodeName=$HOST CPUs=$SLURM_CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=bench Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:64
EOF
if ! cmp -s "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf" 2>/dev/null; then
  mv "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"
  changed=1
else
  rm "$CONF_DIR/slurm.conf.new"
  changed=0
fi

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if ! pgrep -x munged >/dev/null; then
  runuser -u munge -- /usr/sbin/munged
fi
if [ "$changed" = 1 ]; then
  for pid_file in "$SLURM_DIR/slurmd.pid" "$SLURM_DIR/slurmctld.pid"; do
    if running "$pid_file"; then kill "$(cat "$pid_file")"; fi
  done
  for _ in $(seq 50); do
    running "$SLURM_DIR/slurmctld.pid" || running "$SLURM_DIR/slurmd.pid" || break
    sleep 0.2  # waiting for the old daemons to exit (bounded)
  done
fi
running "$SLURM_DIR/slurmctld.pid" || slurmctld -i
running "$SLURM_DIR/slurmd.pid" || slurmd

for _ in $(seq 150); do
  state="$(sinfo -h -n "$HOST" -o %t 2>/dev/null || true)"
  case "$state" in
    idle|mix|alloc) echo "slurm: node $HOST $state, $SLURM_CPUS CPUs declared"; exit 0 ;;
    down*|drain*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
  esac
  sleep 0.2  # waiting for the node to register (bounded: 30 s)
done
echo "slurm did not become idle; see $SLURM_DIR/log/slurmctld.log and slurmd.log" >&2
sinfo >&2 || true
exit 1
