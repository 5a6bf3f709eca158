#!/bin/sh
# test_slurm.sh — the Slurm executor on a REAL one-node Slurm cluster (issue 14):
# munged, slurmctld and slurmd started by tests/slurm/cluster.sh in this test's temp
# dir, lrqd with executor = slurm, the real lrq-worker on stories260K.
#   1. a job runs through Slurm (scontrol shows the Slurm job: no slurmdbd, so no
#      sacct — docs/daemon.md) and its artifact's sha256 equals the local executor's;
#   2. an operator's scancel of the Slurm job → the lrq job is cancelled;
#   3. the worker SIGKILLed on the node mid-job → lrqd submits a second Slurm job, the
#      worker resumes from its checkpoint, the artifact is identical;
#   4. lrqd SIGKILLed and restarted while the Slurm job runs → the job is adopted
#      (one Slurm job, one attempt, not resumed: the worker never stopped), identical;
#   5. lrqd SIGTERMed while a Slurm job runs → it exits at once and leaves the job to
#      the next lrqd, which adopts it;
#   7. (run before 6) slurmctld stopped mid-job and restarted: the running job carries on,
#      a submission during the outage waits without using an attempt;
#   8. (before 6) preempted by a job of a higher partition → requeued uncounted, resumed;
#   9. (before 6) the Slurm time limit → failed, naming it;
#  10. a parallel-pipeline job with "tasks": 5 runs as a Slurm job array of 5 elements (one
#      block range each) and an assemble job that waits for it (afterok); lrqd relays the
#      elements' progress and block events; the artifact equals the local executor's
#      one-worker parallel job's;
#  11. an array element's worker SIGKILLed mid-range → the attempt ends (the other elements
#      checkpoint and stop), lrqd submits a new array + assemble job, the element resumes
#      from its task checkpoint, identical artifact;
#  12. (after 9) slurm_parallel = allocation: the same job as one Slurm job whose worker runs
#      the 5 tasks inside it (CPUs = threads × tasks, capped by slurm_max_cpus), identical;
#   6. a refused submission (unknown partition) → the start-up probe names sbatch's
#      error and the queue is held; sbatch arguments lrqd sets itself are refused.
# Slurm that cannot start FAILS the suite (Bail out), it never skips: make check-slurm
# exists to run on a real cluster. Every wait is driven by the jobs' own events and
# states and bounded by "no change for" (lib_api.sh), never by the clock.
. "$(dirname "$0")/../integration/lib_real.sh"
. "$SRC/tests/slurm/cluster.sh"
ITERS=300
trap 'slurm_stop; cleanup' EXIT
echo "1..25"

# Slurm's job output and the worker's files live in $T, which the "node" (this host)
# shares with lrqd, as a cluster's nodes share the state dir.
SLURM_KILLWAIT=5 slurm_start "$T/slurm" 2> "$T/slurm.err" || {
  sed 's/^/# /' "$T/slurm.err"; echo "Bail out! the test Slurm cluster did not start (see above)"; exit 1; }
diag "Slurm $(sinfo --version 2>/dev/null): node $(sinfo -h -N -p lrq -o '%N %t %c CPUs %m MB')"

# sid_of ID: the Slurm job id lrqd recorded for job ID (schema/0003_slurm.sql)
sid_of() { sql "$STATE/lrq.db" "SELECT ifnull(slurm_job_id, '') FROM job WHERE id = $1"; }
# sjob SID KEY: a field of `scontrol show job` (kept for MinJobAge = 1 day)
sjob() { scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# slurm_jobs ID: Slurm jobs (any state) lrqd submitted for job ID
slurm_jobs() { squeue -h -t all -n "lrq-$1" -o %i 2>/dev/null | sort -n | tr '\n' ' ' | sed 's/ $//'; }
# events ID: the current attempt's event file (Slurm's --output, the worker's stdout)
events() { echo "$STATE/jobs/$1/slurm-$(sid_of "$1").out"; }
# wait_ckpt ID: until the current attempt has written a checkpoint (or ended)
wait_ckpt() {
  stall_reset
  until grep -q '"event":"checkpoint"' "$(events "$1")" 2>/dev/null; do
    case $(job_field "$1" state) in succeeded|failed|cancelled) return 1 ;; esac
    stalled "$(jobs_sig)$(cat "$(events "$1")" 2>/dev/null | wc -c)" "$STALL_S" && return 1
    sleep 0.1
  done
}
NCPU=$(nproc)
slurmd_opts="--executor slurm --slurm-poll-ms 300 --slurm-max-cpus $NCPU"

# 0. The local executor's artifact for the spec used below.
STATE=$T/local
start_daemon || { echo "Bail out! lrqd (local) did not start"; exit 1; }
submit "$(spec ref $ITERS)"; L=$JOB
wait_state "$L" succeeded
LOCAL_SHA=$(sha "$STATE/jobs/$L/artifacts/hf/model.safetensors")
submit "$(spec pref $ITERS ',"pipeline":"parallel"')"; LP=$JOB
wait_state "$LP" succeeded
LOCAL_PSHA=$(sha "$STATE/jobs/$LP/artifacts/hf/model.safetensors")
submit "$(spec pkref 1500 ',"pipeline":"parallel"')"; LK=$JOB
wait_state "$LK" succeeded
LOCAL_KSHA=$(sha "$STATE/jobs/$LK/artifacts/hf/model.safetensors")
stop_daemon TERM
diag "local executor: sha256 $LOCAL_SHA; parallel pipeline, one worker: $LOCAL_PSHA"

STATE=$T/state
# shellcheck disable=SC2086
start_daemon $slurmd_opts || { echo "Bail out! lrqd (slurm) did not start"; exit 1; }
wait_for 'grep -q "the state dir is shared; taking jobs" "$T/lrqd.out"'
expect "start-up probe: a Slurm job wrote into the state dir, lrqd takes jobs" \
  'grep -q "slurm: probe job [0-9]* on node $(hostname -s) wrote into $STATE/jobs" "$T/lrqd.out"'

# 1. One job through Slurm.
submit "$(spec viaslurm $ITERS)"; A=$JOB
wait_state "$A" succeeded
SA=$(sid_of "$A")
A_SHA=$(sha "$STATE/jobs/$A/artifacts/hf/model.safetensors")
expect "job $A ran as Slurm job $SA: scontrol shows it COMPLETED, exit 0:0, named lrq-$A, stdout = its events file" \
  '[ -n "$SA" ] && [ "$(sjob "$SA" JobState)" = COMPLETED ] && [ "$(sjob "$SA" ExitCode)" = 0:0 ] && [ "$(sjob "$SA" JobName)" = "lrq-$A" ] && [ "$(sjob "$SA" StdOut)" = "$STATE/jobs/$A/slurm-$SA.out" ] && grep -q "\"event\":\"done\"" "$STATE/jobs/$A/slurm-$SA.out"' \
  "Slurm job $SA: $(scontrol -o show job "$SA" 2>/dev/null | tr ' ' '\n' | grep -E '^(JobState|ExitCode|NodeList|TRES|TimeLimit)=' | tr '\n' ' ')"
expect "…resources from the spec: 1 CPU (threads = 1), --mem from the estimate" \
  '[ "$(sjob "$SA" NumCPUs)" = 1 ] && sjob "$SA" TRES | grep -q "mem=[0-9]*M"'
expect "…artifact sha256 = the local executor's" '[ ${#A_SHA} = 64 ] && [ "$A_SHA" = "$LOCAL_SHA" ]' "sha256 $A_SHA"
expect "…progress reached lrqd from the events file (final progress 'export', fraction 1)" \
  '[ "$(curl -s "$URL/v1/jobs/$A" | $PY -c "import sys,json; p=json.load(sys.stdin)[\"progress\"]; print(p[\"stage\"], p[\"fraction\"])")" = "export 1.0" ]'

# 10. A parallel job with 5 tasks through Slurm: a job array and an assemble job.
# array_of ID: the block-task array of job ID's current attempt (DIR/slurm-array.id: "AID SID")
array_of() { cut -d' ' -f1 "$STATE/jobs/$1/slurm-array.id" 2>/dev/null; }
# elems AID STATE: how many elements of array AID scontrol shows in STATE
elems() { scontrol -o show job "$1" 2>/dev/null | grep "ArrayJobId=$1 " | grep -c "JobState=$2 "; }
submit "$(spec ptasks $ITERS ',"pipeline":"parallel","tasks":5')"; PT=$JOB
wait_state "$PT" succeeded
SPT=$(sid_of "$PT"); APT=$(array_of "$PT")
PT_SHA=$(sha "$STATE/jobs/$PT/artifacts/hf/model.safetensors")
nblk=0
for k in 0 1 2 3 4; do
  [ "$(grep -c '"event":"block"' "$STATE/jobs/$PT/slurm-${APT}_$k.out" 2>/dev/null)" = 1 ] && nblk=$((nblk + 1))
done
expect "tasks 5: Slurm array $APT, 5 elements COMPLETED with 1 CPU each, one block each in its own output; then assemble job $SPT COMPLETED" \
  '[ -n "$APT" ] && [ "$(elems "$APT" COMPLETED)" = 5 ] && [ "$(scontrol -o show job "$APT" | grep -c "NumCPUs=1 ")" = 5 ] && [ $nblk = 5 ] && [ "$(sjob "$SPT" JobState)" = COMPLETED ] && [ "$(sjob "$SPT" JobName)" = "lrq-$PT" ] && [ "$(slurm_jobs $PT)" = "$SPT" ]' \
  "array $APT: $(elems "$APT" COMPLETED) COMPLETED, $nblk with one block; assemble $SPT: $(sjob "$SPT" JobState); $(grep -o "job $PT: succeeded.*" "$T/lrqd.out")"
expect "…the assemble job ran no task and trained nothing: every block file verified; sha256 = the local one-worker parallel job's" \
  '! grep -q "\"event\":\"task\"" "$STATE/jobs/$PT/slurm-$SPT.out" && ! grep -q "\"stage\":\"reconstruct\"" "$STATE/jobs/$PT/slurm-$SPT.out" && [ "$PT_SHA" = "$LOCAL_PSHA" ]' \
  "sha256 $PT_SHA"
hist=$(curl -s "$URL/v1/jobs/$PT/progress")
nrec=$(printf '%s' "$hist" | $PY -c 'import sys,json; h=json.load(sys.stdin); print(sum(s["stage"]=="reconstruct" for s in h["samples"]), sorted(b["block"] for b in h["blocks"]))')
expect "…lrqd relayed the elements' events: reconstruct progress and the 5 blocks in the job's history" \
  '[ "${nrec#* }" = "[1, 2, 3, 4, 5]" ] && [ "${nrec%% *}" -gt 0 ]' "history: $nrec"

# 11. An array element's worker SIGKILLed mid-range.
submit "$(spec ptkill 1500 ',"pipeline":"parallel","tasks":5')"; PK=$JOB
stall_reset
kel=
until [ -n "$kel" ]; do
  APK=$(array_of "$PK")
  [ -n "$APK" ] && kel=$(grep -l '"event":"checkpoint"' "$STATE/jobs/$PK/slurm-${APK}"_*.out 2>/dev/null | head -1)
  case $(job_field "$PK" state) in succeeded|failed|cancelled) break ;; esac
  stalled "$(jobs_sig)$(cat "$STATE/jobs/$PK"/slurm-*.out 2>/dev/null | wc -c)" "$STALL_S" && break
  sleep 0.1
done
k=${kel##*_}; k=${k%.out}
kpid=$(pgrep -f -- "run --task $k --spec $STATE/jobs/$PK/spec.json" | head -1)
landed=0
[ -n "$kpid" ] && ! grep -q '"event":"done"' "$kel" && kill -KILL "$kpid" && landed=1
wait_state "$PK" succeeded
APK2=$(array_of "$PK")
expect "element $k of array $APK SIGKILLed → the attempt ended, requeued; a new array $APK2 and assemble job; succeeded on attempt 2" \
  '[ $landed = 1 ] && [ "$(job_field $PK attempts)" = 2 ] && [ "$APK2" != "$APK" ] && grep -q "job $PK: block task $k (Slurm job ${APK}_$k): state FAILED" "$T/lrqd.out" && grep -q "job $PK: requeued (worker killed by signal 9" "$T/lrqd.out" && [ "$(slurm_jobs $PK | wc -w)" = 2 ]' \
  "element $k pid $kpid; attempts $(job_field "$PK" attempts); $(grep "job $PK: " "$T/lrqd.out" | grep -E "block task [0-9]|requeued" | head -2 | cut -c1-200 | tr '\n' ' ')"
expect "…element $k resumed from its task checkpoint in array $APK2; artifact identical to one uninterrupted worker's" \
  'grep -q "\"event\":\"resume\"" "$STATE/jobs/$PK/slurm-${APK2}_$k.out" && [ "$(sha "$STATE/jobs/$PK/artifacts/hf/model.safetensors")" = "$LOCAL_KSHA" ]' \
  "$(grep -c '"event":"resume"' "$STATE/jobs/$PK/slurm-${APK2}_$k.out" 2>/dev/null) resume events; sha256 $(sha "$STATE/jobs/$PK/artifacts/hf/model.safetensors")"

# 2. An operator cancels the Slurm job.
submit "$(spec opcancel 100000)"; B=$JOB
wait_ckpt "$B"
SB=$(sid_of "$B")
scancel "$SB"
wait_state "$B" cancelled
expect "operator scancel of Slurm job $SB → job $B cancelled, the reason names Slurm" \
  '[ "$(job_field $B state)" = cancelled ] && job_field $B error | grep -q "cancelled in Slurm (job $SB"' \
  "error: $(job_field "$B" error); Slurm state $(sjob "$SB" JobState); worker left: $(worker_pids "$STATE/jobs/$B")"
expect "…one attempt, no resubmission, no worker left" \
  '[ "$(job_field $B attempts)" = 1 ] && [ "$(slurm_jobs $B)" = "$SB" ] && [ -z "$(worker_pids "$STATE/jobs/$B")" ]'

# 3. SIGKILL the worker on the node mid-job.
submit "$(spec killworker $ITERS)"; C=$JOB
wait_ckpt "$C"
SC1=$(sid_of "$C")
pid=$(worker_pids "$STATE/jobs/$C")
landed=0
[ -n "$pid" ] && [ ! -f "$STATE/jobs/$C/metrics.json" ] && kill -KILL $pid && landed=1
wait_state "$C" succeeded
SC2=$(sid_of "$C")
C_SHA=$(sha "$STATE/jobs/$C/artifacts/hf/model.safetensors")
expect "worker (pid $pid) SIGKILLed in Slurm job $SC1 → requeued, resubmitted as Slurm job $SC2, succeeded" \
  '[ $landed = 1 ] && [ "$(job_field $C state)" = succeeded ] && [ "$(job_field $C attempts)" = 2 ] && [ "$(slurm_jobs $C)" = "$SC1 $SC2" ] && grep -q "job $C: requeued (worker killed by signal 9)" "$T/lrqd.out"' \
  "Slurm job $SC1: $(sjob "$SC1" JobState) $(sjob "$SC1" ExitCode); attempts $(job_field "$C" attempts)"
expect "…the second attempt resumed from the checkpoint; artifact identical" \
  'grep -q "\"event\":\"resume\"" "$STATE/jobs/$C/slurm-$SC2.out" && grep -q "resuming from" "$STATE/jobs/$C/log" && [ "$C_SHA" = "$LOCAL_SHA" ]' \
  "$(grep '"event":"resume"' "$STATE/jobs/$C/slurm-$SC2.out" 2>/dev/null | head -1); sha256 $C_SHA"

# 4. SIGKILL lrqd while the Slurm job runs, restart it.
submit "$(spec killdaemon $ITERS)"; D=$JOB
wait_ckpt "$D"
SD1=$(sid_of "$D")
kill -KILL "$DPID"; wait "$DPID" 2>/dev/null; DPID=
st_after=$(squeue -h -j "$SD1" -o %T 2>/dev/null)
# shellcheck disable=SC2086
start_daemon $slurmd_opts || { echo "Bail out! lrqd did not restart"; exit 1; }
wait_state "$D" succeeded
D_SHA=$(sha "$STATE/jobs/$D/artifacts/hf/model.safetensors")
expect "lrqd SIGKILLed while Slurm job $SD1 was $st_after; restarted: adopted, one Slurm job, one attempt" \
  '[ "$st_after" = RUNNING ] && [ "$(job_field $D state)" = succeeded ] && [ "$(job_field $D attempts)" = 1 ] && [ "$(slurm_jobs $D)" = "$SD1" ] && grep -q "job $D: was running when lrqd stopped; following its Slurm job $SD1 again" "$T/lrqd.out"' \
  "Slurm jobs for job $D: $(slurm_jobs "$D"); attempts $(job_field "$D" attempts)"
expect "…the worker ran on uninterrupted (no resume), artifact identical" \
  '! grep -q "resuming from" "$STATE/jobs/$D/log" && [ "$D_SHA" = "$LOCAL_SHA" ]' "sha256 $D_SHA"

# 5. SIGTERM lrqd while the Slurm job runs: it leaves it running; the next lrqd adopts it.
submit "$(spec termdaemon $ITERS)"; E=$JOB
wait_ckpt "$E"
SE=$(sid_of "$E")
stop_daemon TERM
st_after=$(squeue -h -j "$SE" -o %T 2>/dev/null)
# shellcheck disable=SC2086
start_daemon $slurmd_opts || { echo "Bail out! lrqd did not restart"; exit 1; }
wait_state "$E" succeeded
expect "lrqd SIGTERM → exit 0 at once, Slurm job $SE left $st_after; adopted by the next lrqd: one Slurm job, one attempt, identical artifact" \
  '[ "$DRC" = 0 ] && [ "$st_after" = RUNNING ] && grep -q "job $E: left running in Slurm (job $SE)" "$T/lrqd.out" && [ "$(job_field $E attempts)" = 1 ] && [ "$(slurm_jobs $E)" = "$SE" ] && [ "$(sha "$STATE/jobs/$E/artifacts/hf/model.safetensors")" = "$LOCAL_SHA" ]'
stop_daemon TERM

# 7. A controller outage: slurmctld stopped while a job runs and another is submitted.
#    The running one carries on (its end is read when slurmctld is back), the new one's
#    sbatch cannot reach slurmctld: requeued without using an attempt, the queue held.
# shellcheck disable=SC2086
start_daemon $slurmd_opts --workers 2 || { echo "Bail out! lrqd did not restart"; exit 1; }
submit "$(spec outage $ITERS)"; F=$JOB
wait_ckpt "$F"
SF=$(sid_of "$F")
slurm_ctld_stop
submit "$(spec during-outage 20)"; G=$JOB
wait_for 'grep -q "job $G: requeued (Slurm unavailable: " "$T/lrqd.out"'
g_att=$(job_field "$G" attempts); g_state=$(job_field "$G" state)
slurm_ctld_start
wait_state "$F" succeeded
wait_state "$G" succeeded
expect "slurmctld down: job $G's sbatch could not reach it → requeued, attempt not counted ($g_state, attempts $g_att)" \
  '[ "$g_state" = queued ] && [ "$g_att" = 0 ] && grep -q "slurm: sbatch could not reach slurmctld" "$T/lrqd.out"' \
  "$(grep "job $G: requeued (Slurm unavailable" "$T/lrqd.out" | head -1 | cut -c1-250)"
expect "…slurmctld back: both succeed; job $F ran on in Slurm job $SF through the outage (one attempt, identical artifact)" \
  '[ "$(job_field $G attempts)" = 1 ] && [ "$(job_field $F attempts)" = 1 ] && [ "$(slurm_jobs $F)" = "$SF" ] && [ "$(sha "$STATE/jobs/$F/artifacts/hf/model.safetensors")" = "$LOCAL_SHA" ]'
stop_daemon TERM

# 8. Preemption: a job of the higher-tier partition "urgent" needs every CPU of the node,
#    Slurm cancels ours (state PREEMPTED): requeued without using an attempt, resubmitted,
#    resumed from its checkpoint, identical artifact.
# shellcheck disable=SC2086
start_daemon $slurmd_opts || { echo "Bail out! lrqd did not restart"; exit 1; }
# (its reference is the local pkref job's LOCAL_KSHA). After its first checkpoint the worker
# is SIGSTOPped, so the job cannot end before Slurm preempts it however fast the machine; the
# preemption's SIGCONT/SIGTERM (or KillWait's SIGKILL) ends the stopped worker.
submit "$(spec preempted 1500 ',"pipeline":"parallel"')"; P=$JOB
wait_ckpt "$P"
SP1=$(sid_of "$P")
ppid=$(worker_pids "$STATE/jobs/$P")
[ -n "$ppid" ] && kill -STOP $ppid
U=$(sbatch --parsable -p urgent -c "$(nproc)" --mem=64 -o /dev/null -J urgent --wrap 'sleep 1')
wait_state "$P" succeeded
SP2=$(sid_of "$P")
expect "Slurm job $SP1 PREEMPTED by urgent job $U → requeued without an attempt, resubmitted as $SP2, resumed, identical artifact" \
  '[ "$(sjob "$SP1" JobState)" = PREEMPTED ] && grep -q "job $P: requeued (preempted in Slurm (job $SP1); will resume)" "$T/lrqd.out" && [ "$(job_field $P attempts)" = 1 ] && [ "$(slurm_jobs $P)" = "$SP1 $SP2" ] && grep -q "\"event\":\"resume\"" "$STATE/jobs/$P/slurm-$SP2.out" && [ "$(sha "$STATE/jobs/$P/artifacts/hf/model.safetensors")" = "$LOCAL_KSHA" ]' \
  "Slurm job $SP1: $(sjob "$SP1" JobState) $(sjob "$SP1" ExitCode); urgent job $U: $(sjob "$U" JobState)"
stop_daemon TERM

# 9. The Slurm time limit (slurm_time_limit_min = 1): Slurm signals the worker at the
#    limit (it checkpoints), the job ends TIMEOUT → failed with that reason, not retried.
# shellcheck disable=SC2086
start_daemon $slurmd_opts --slurm-time-limit-min 1 || { echo "Bail out! lrqd did not restart"; exit 1; }
submit "$(spec timelimit 100000)"; Q=$JOB
wait_ckpt "$Q"
SQ=$(sid_of "$Q")
wait_state "$Q" failed 150
expect "Slurm time limit: Slurm job $SQ TIMEOUT → job $Q failed naming the limit, one attempt" \
  '[ "$(sjob "$SQ" JobState)" = TIMEOUT ] && [ "$(sjob "$SQ" TimeLimit)" = 00:01:00 ] && [ "$(job_field $Q error)" = "exceeded the Slurm time limit (job $SQ)" ] && [ "$(job_field $Q attempts)" = 1 ]' \
  "Slurm job $SQ: $(sjob "$SQ" JobState) $(sjob "$SQ" ExitCode), TimeLimit $(sjob "$SQ" TimeLimit); error: $(job_field "$Q" error)"
stop_daemon TERM

# 12. slurm_parallel = allocation: the block tasks inside one Slurm job.
# shellcheck disable=SC2086
start_daemon $slurmd_opts --slurm-parallel allocation || { echo "Bail out! lrqd did not restart"; exit 1; }
submit "$(spec palloc $ITERS ',"pipeline":"parallel","tasks":5')"; PA=$JOB
wait_state "$PA" succeeded
SPA=$(sid_of "$PA")
WANT_CPUS=$(( NCPU < 5 ? NCPU : 5 ))
ntask=$(grep -c '"event":"task"' "$STATE/jobs/$PA/slurm-$SPA.out" 2>/dev/null)
expect "slurm_parallel = allocation, tasks 5: one Slurm job $SPA COMPLETED with $WANT_CPUS CPUs, its worker's 5 tasks in its events, no array; identical artifact" \
  '[ -n "$SPA" ] && [ "$(sjob "$SPA" JobState)" = COMPLETED ] && [ "$(sjob "$SPA" NumCPUs)" = "$WANT_CPUS" ] && [ "${ntask:-0}" = 5 ] && [ ! -e "$STATE/jobs/$PA/slurm-array.id" ] && [ "$(sha "$STATE/jobs/$PA/artifacts/hf/model.safetensors")" = "$LOCAL_PSHA" ] && [ "$(slurm_jobs $PA)" = "$SPA" ]' \
  "Slurm job $SPA: $(sjob "$SPA" JobState) NumCPUs=$(sjob "$SPA" NumCPUs), $ntask task events; $(grep -o "job $PA: succeeded.*" "$T/lrqd.out")"
stop_daemon TERM

# 6. A submission Slurm refuses: the probe says why and the queue is held.
STATE=$T/badpart
# shellcheck disable=SC2086
start_daemon $slurmd_opts --slurm-partition nosuchpart || { echo "Bail out! lrqd did not start"; exit 1; }
wait_for 'grep -q "slurm: cannot submit the start-up probe" "$T/lrqd.out"'
submit "$(spec held 10)"; H=$JOB
expect "unknown partition: the probe's error names sbatch's message; the job stays queued" \
  'grep -q "cannot submit the start-up probe (sbatch exit 1: sbatch: error: .*[Pp]artition" "$T/lrqd.out" && [ "$(job_field $H state)" = queued ] && [ "$(job_field $H attempts)" = 0 ]' \
  "$(grep "cannot submit the start-up probe" "$T/lrqd.out" | head -1 | cut -c1-300)"
stop_daemon TERM
# (a start-up refusal exits at once without freeing, as every refusal in main.c: no leak check)
ASAN_OPTIONS=detect_leaks=0 "$LRQD" --state-dir "$T/badargs" --listen 127.0.0.1:0 --executor slurm \
  --slurm-sbatch-args "--qos=x --output=/tmp/o" > "$T/badargs.out" 2>&1; brc=$?
expect "slurm_sbatch_args naming an option lrqd sets itself → lrqd refuses to start (exit 2), naming it" \
  '[ $brc = 2 ] && grep -q "slurm_sbatch_args: --output=/tmp/o is set by lrqd itself" "$T/badargs.out"' "$(tail -n 1 "$T/badargs.out")"
expect "no lrq Slurm job left running or pending" '[ -z "$(squeue -h -o %i -n lrq-$A,lrq-$B,lrq-$C,lrq-$D,lrq-$E,lrq-$F,lrq-$G,lrq-$P,lrq-$Q,lrq-$PT,lrq-$PT-tasks,lrq-$PK,lrq-$PK-tasks,lrq-$PA 2>/dev/null)" ]'
exit 0
