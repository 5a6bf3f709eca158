# cluster.sh — a real one-node Slurm cluster for the tests (sourced).
#
# slurm_start DIR: munged with its own key, slurmctld and slurmd in the foreground
# (-D), all with files under DIR (key, sockets, pid files, logs, StateSaveLocation,
# SlurmdSpoolDir) and a generated slurm.conf for this host alone (NodeName = the
# short hostname, NodeAddr 127.0.0.1, ports picked free by the kernel). Exports
# SLURM_CONF so that sbatch/squeue/scontrol/scancel talk to this cluster, and sets
# SLURM_PIDS. Returns non-zero with the reason on stderr (the caller bails out:
# a suite that needs the cluster must fail loudly, never skip silently).
# slurm_stop: SIGTERM each daemon it started, by pid; SIGKILL what is left.
# slurm_ctld_stop / slurm_ctld_start: a controller outage in the middle of a test.
#
# Choices (docs/daemon.md, "Deploying with Slurm"): no slurmdbd (sacct needs it and a
# MariaDB server), so finished jobs are read with `scontrol show job`, kept by a large
# MinJobAge; proctrack/linuxproc and task/none (no cgroups inside a container);
# select/cons_tres with CR_Core_Memory, so --cpus-per-task and --mem are enforced by
# the scheduler as on a real cluster; KillWait = $SLURM_KILLWAIT (SIGTERM → SIGKILL);
# partition "urgent" preempts (cancels) jobs of the default partition "lrq"
# (preempt/partition_prio, PreemptMode=CANCEL), for the preemption test.
SLURM_PIDS=
slurm__port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
slurm__wait() { # slurm__wait 'CONDITION' PID...: until CONDITION holds or a PID died (stall guard 60 s)
  _c=$1; shift; _i=0
  until eval "$_c"; do
    for _p in "$@"; do kill -0 "$_p" 2>/dev/null || return 1; done
    _i=$((_i + 1)); [ $_i -gt 600 ] && return 1
    sleep 0.1
  done
}
slurm_start() {
  SD=$1
  for b in munged slurmctld slurmd sbatch squeue scontrol scancel; do
    command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || { echo "slurm_start: $b is not installed (run ./scripts/setup)" >&2; return 1; }
  done
  PATH=$PATH:/usr/sbin
  mkdir -p "$SD/munge" "$SD/ctld" "$SD/spool" "$SD/log"
  chmod 700 "$SD/munge"
  dd if=/dev/urandom of="$SD/munge/munge.key" bs=1024 count=1 2>/dev/null && chmod 400 "$SD/munge/munge.key"
  munged --foreground --force --key-file="$SD/munge/munge.key" --socket="$SD/munge/munge.sock" \
    --pid-file="$SD/munge/munged.pid" --log-file="$SD/log/munged.log" --seed-file="$SD/munge/seed" \
    > "$SD/log/munged.out" 2>&1 &
  SLURM_PIDS=$!
  slurm__wait '[ -S "$SD/munge/munge.sock" ]' $SLURM_PIDS || { echo "slurm_start: munged did not start: $(tail -3 "$SD/log/munged.log" "$SD/log/munged.out" 2>/dev/null)" >&2; return 1; }
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ { printf "%d", $2 / 1024 / 2 }' /proc/meminfo)
  user=$(id -un)
  cat > "$SD/slurm.conf" <<CONF
ClusterName=lrqtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(slurm__port)
SlurmdPort=$(slurm__port)
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SD/munge/munge.sock
StateSaveLocation=$SD/ctld
SlurmdSpoolDir=$SD/spool
SlurmctldPidFile=$SD/slurmctld.pid
SlurmdPidFile=$SD/slurmd.pid
SlurmctldLogFile=$SD/log/slurmctld.log
SlurmdLogFile=$SD/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$SD/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=86400
KillWait=${SLURM_KILLWAIT:-5}
InactiveLimit=0
MailProg=/bin/true
PreemptType=preempt/partition_prio
PreemptMode=CANCEL
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=lrq Nodes=$host Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=$host MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
CONF
  : > "$SD/plugstack.conf"
  export SLURM_CONF=$SD/slurm.conf
  slurm_ctld_start || return 1
  slurmd -D -f "$SLURM_CONF" -N "$host" > "$SD/log/slurmd.out" 2>&1 &
  SLURM_PIDS="$SLURM_PIDS $!"
  # Ready when the node is idle in the partition (sinfo asks slurmctld; slurmd registered).
  slurm__wait '[ "$(sinfo -h -N -p lrq -o %t 2>/dev/null)" = idle ]' $SLURM_PIDS || {
    echo "slurm_start: the node did not become idle: $(sinfo -h -N -o '%t %E' 2>&1 | head -2)" >&2
    tail -5 "$SD/log/slurmctld.log" "$SD/log/slurmd.log" "$SD/log/slurmctld.out" "$SD/log/slurmd.out" >&2 2>/dev/null
    return 1; }
  return 0
}
# slurm_ctld_start / slurm_ctld_stop: (re)start or stop slurmctld alone (a controller
# outage); its state survives in StateSaveLocation. SLURM_CTLD is its pid.
slurm_ctld_start() {
  slurmctld -D -i -f "$SLURM_CONF" >> "$SD/log/slurmctld.out" 2>&1 &
  SLURM_CTLD=$!
  SLURM_PIDS="$SLURM_PIDS $SLURM_CTLD"
}
slurm_ctld_stop() {
  kill -TERM "$SLURM_CTLD" 2>/dev/null
  i=0; while kill -0 "$SLURM_CTLD" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$SLURM_CTLD" 2>/dev/null; wait "$SLURM_CTLD" 2>/dev/null
  _np=; for p in $SLURM_PIDS; do [ "$p" = "$SLURM_CTLD" ] || _np="$_np $p"; done; SLURM_PIDS=$_np
}
slurm_stop() {
  [ -n "$SLURM_PIDS" ] || return 0
  for p in $SLURM_PIDS; do kill -TERM "$p" 2>/dev/null; done
  for p in $SLURM_PIDS; do
    i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
  done
  SLURM_PIDS=
}
