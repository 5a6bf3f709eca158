#!/bin/sh
# test_faults_real.sh — fault injection with the REAL lrqd and lrq-worker on
# stories260K (issue 5, "Fault-injection tests"):
#   1. the worker SIGKILLed at 20 random moments during one job: the job
#      finishes and its artifact is bit-identical to an uninterrupted run;
#   2. lrqd SIGKILLed 5 times during a job and restarted on the same state dir:
#      no job lost or duplicated, never two workers on one job (sampled every
#      ~10 ms), PRAGMA integrity_check = ok, identical artifact.
# LRQ_FAULT_SEED seeds the kill moments (printed);
# LRQ_FAULT_KILLS / LRQ_FAULT_DKILLS change the counts. Bounded: < 90 s on 2 cores.
. "$(dirname "$0")/lib_real.sh"
SEED=${LRQ_FAULT_SEED:-$$}
KILLS=${LRQ_FAULT_KILLS:-20}
DKILLS=${LRQ_FAULT_DKILLS:-5}
ITERS=300
echo "1..9"
diag "seed $SEED (set LRQ_FAULT_SEED=$SEED to draw the same kill moments)"
start_daemon || { echo "Bail out! lrqd did not start"; exit 1; }

# 0. Reference: one uninterrupted job through the daemon.
t0=$(now)
submit "$(spec ref $ITERS)"; REF=$JOB
wait_state "$REF" succeeded 60
DUR=$(secs "$t0" "$(now)")
REF_SHA=$(sha "$STATE/jobs/$REF/artifacts/hf/model.safetensors")
reg_sha=$(curl -s -m 5 "$URL/v1/jobs/$REF/artifacts" | $PY -c "import sys,json
print([a['sha256'] for a in json.load(sys.stdin)['artifacts'] if a['path']=='hf/model.safetensors'][0])" 2>/dev/null)
expect "uninterrupted job succeeds; registered sha256 = file sha256" \
  '[ "$(job_field $REF state)" = succeeded ] && [ ${#REF_SHA} = 64 ] && [ "$reg_sha" = "$REF_SHA" ]' \
  "uninterrupted: ${DUR} s, attempts $(job_field $REF attempts), sha256 $REF_SHA"

# 1. SIGKILL the worker at KILLS random moments of one job.
# wait_new_worker WD OLDPID SECONDS: print a live worker pid for WD other than OLDPID
wait_new_worker() {
  _wend=$(( $(date +%s) + $3 ))
  [ "$DEADLINE" -lt "$_wend" ] && _wend=$DEADLINE
  while [ "$(date +%s)" -le "$_wend" ]; do
    for p in $(worker_pids "$1"); do [ "$p" != "$2" ] && alive "$p" && { echo "$p"; return 0; }; done
    [ -f "$1/metrics.json" ] && return 1   # finished
    sleep 0.01
  done
  return 1
}
# done_frac WD: fraction of the reconstruction finished, from the last checkpoint
# or block event in WD/progress.jsonl (stories260K has 5 blocks).
done_frac() {
  tail -n 40 "$1/progress.jsonl" 2>/dev/null | awk -v it="$ITERS" '
    function num(k) { return match($0, "\"" k "\":[0-9]+") ? substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3) : 0 }
    /"event":"checkpoint"/ { p = (num("block") + num("iteration") / it) / 5 }
    /"event":"block"/ { p = (num("block") + 1) / 5 }
    END { printf "%.3f", p + 0 }'
}
# Kill moments are drawn as points of the job's progress, so that they land
# inside the job whatever the machine's speed: K sorted uniform targets in
# [0, 0.9) of the reconstruction; for each, wait until the work dir's progress
# reaches it, then a further uniform 0–50 ms (one checkpoint period), so kills
# also hit checkpoint writes, start-up and the activation replay of a resume
# (targets closer together than one attempt's progress kill the next worker
# before it reaches the block loop).
targets() { awk -v s="$1" -v k="$2" 'BEGIN { srand(s); for (i = 0; i < k; i++) printf "%.3f\n", 0.8 * rand() }' | sort -n; }
# kill_at WD TARGET SEED PID: wait (bounded; while PID lives) until WD's progress >= TARGET, then the extra delay
kill_at() {
  _kend=$(( $(date +%s) + 30 ))
  [ "$DEADLINE" -lt "$_kend" ] && _kend=$DEADLINE
  while [ "$(date +%s)" -le "$_kend" ] && alive "$4" && awk -v f="$(done_frac "$1")" -v t="$2" 'BEGIN { exit !(f < t) }'; do
    sleep 0.005
  done
  sleep "$(awk -v s="$3" 'BEGIN { srand(s); printf "%.3f", 0.02 * rand() }')"
}
submit "$(spec killworker $ITERS ',"max_attempts":30')"; K=$JOB
KWD=$STATE/jobs/$K
kills=0; last=; ki=0; at=; t0=$(now)
for tg in $(targets "$SEED" "$KILLS"); do
  ki=$((ki + 1))
  pid=$(wait_new_worker "$KWD" "$last" 20) || break
  kill_at "$KWD" "$tg" "$SEED$ki" "$pid"
  [ -f "$KWD/metrics.json" ] && break
  f=$(done_frac "$KWD")
  if kill -KILL "$pid" 2>/dev/null; then kills=$((kills + 1)); last=$pid; at="$at $f"; fi
done
wait_state "$K" succeeded 60
k_sha=$(sha "$KWD/artifacts/hf/model.safetensors")
k_att=$(job_field "$K" attempts)
resumed=$(grep -c "resuming from" "$KWD/log")
requeued=$(grep -c "job $K: requeued (worker killed by signal 9)" "$T/lrqd.out")
expect "worker SIGKILLed at $KILLS random moments: job succeeded" \
  '[ "$kills" -eq "$KILLS" ] && [ "$(job_field $K state)" = succeeded ]' \
  "kills $kills, attempts $k_att, requeued $requeued, resumed $resumed, $(secs "$t0" "$(now)") s"
expect "…every kill counted as an attempt and requeued; the job resumed from checkpoints" \
  '[ "$k_att" = $((kills + 1)) ] && [ "$requeued" = "$kills" ] && [ "$resumed" -ge 1 ]' \
  "reconstruction progress at the kills:$at"
expect "…artifact bit-identical to the uninterrupted run" '[ ${#k_sha} = 64 ] && [ "$k_sha" = "$REF_SHA" ]' "sha256 $k_sha"

# 2. SIGKILL lrqd DKILLS times during a job, restarting it at once on the same
#    state dir. A second job waits in the queue behind it (workers = 1).
submit "$(spec killdaemon $ITERS ',"max_attempts":30')"; D=$JOB
submit "{\"name\":\"queued-rtn\",\"model\":\"$MODEL\",\"method\":\"rtn\",\"weight\":{\"bits\":4,\"group_size\":0},\"export\":[\"hf\"],\"threads\":1}"; Q=$JOB
DWD=$STATE/jobs/$D
# Monitor: the most lrq-worker processes ever seen at once for D's work dir.
echo 0 > "$T/mon.max"
touch "$T/mon.run"
( max=0
  while [ -f "$T/mon.run" ]; do
    c=0; for p in $(worker_pids "$DWD"); do alive "$p" && c=$((c + 1)); done
    [ $c -gt $max ] && { max=$c; echo $max > "$T/mon.max"; [ $c -gt 1 ] && worker_pids "$DWD" > "$T/mon.two"; }
    sleep 0.01
  done ) &
MONPID=$!
dkills=0; orphans_alive=0; restarts_ok=0; t0=$(now)
di=0; dat=
for tg in $(targets "$SEED$SEED" "$DKILLS"); do
  di=$((di + 1))
  pid=$(wait_new_worker "$DWD" "" 20) || break
  kill_at "$DWD" "$tg" "$SEED$di$di" "$pid"
  [ -f "$DWD/metrics.json" ] && break
  dat="$dat $(done_frac "$DWD")"
  kill -KILL "$DPID" && dkills=$((dkills + 1))
  wait "$DPID" 2>/dev/null; DPID=
  alive "$pid" && orphans_alive=$((orphans_alive + 1))
  start_daemon && restarts_ok=$((restarts_ok + 1))
done
wait_state "$D" succeeded 60
wait_state "$Q" succeeded 30
rm -f "$T/mon.run"; wait "$MONPID" 2>/dev/null; MONPID=
maxw=$(cat "$T/mon.max")
d_sha=$(sha "$DWD/artifacts/hf/model.safetensors")
reaped=$(grep -c "job $D: worker pid [0-9]* of an earlier lrqd still runs; stopping it" "$T/lrqd.out")
recovered=$(grep -c "job $D: was running when lrqd stopped" "$T/lrqd.out")
expect "lrqd SIGKILLed $DKILLS times mid-job and restarted: both jobs succeeded" \
  '[ "$dkills" -eq "$DKILLS" ] && [ "$restarts_ok" -eq "$dkills" ] && [ "$(job_field $D state)" = succeeded ] && [ "$(job_field $Q state)" = succeeded ]' \
  "lrqd kills $dkills, restarts $restarts_ok, recoveries of the job $recovered, orphan workers alive right after the kill $orphans_alive, stopped by recovery $reaped, attempts $(job_field $D attempts), $(secs "$t0" "$(now)") s; progress at the kills:$dat"
expect "never two workers on one job (max seen at once: $maxw)" '[ "$maxw" = 1 ]' \
  "$( [ -f "$T/mon.two" ] && echo "two workers: $(tr '\n' ' ' < "$T/mon.two")" || echo "sampled every ~10 ms")"
expect "…artifact bit-identical to the uninterrupted run" '[ ${#d_sha} = 64 ] && [ "$d_sha" = "$REF_SHA" ]' "sha256 $d_sha"

listed=$(curl -s -m 5 "$URL/v1/jobs?limit=500" | $PY -c "import sys,json; j=json.load(sys.stdin)['jobs']; print(' '.join(str(x['id']) for x in sorted(j, key=lambda x: x['id'])))")
stop_daemon TERM
rows=$(sql "$STATE/lrq.db" "SELECT group_concat(id || ':' || name || ':' || state, ' ') FROM (SELECT * FROM job ORDER BY id)" 2>&1)
ic=$(sql "$STATE/lrq.db" 'PRAGMA integrity_check' 2>&1)
expect "no job lost or duplicated (job table = the 4 submitted jobs)" \
  '[ "$rows" = "$REF:ref:succeeded $K:killworker:succeeded $D:killdaemon:succeeded $Q:queued-rtn:succeeded" ] && [ "$listed" = "$REF $K $D $Q" ]' \
  "job table: $rows"
expect "PRAGMA integrity_check = ok; final SIGTERM → exit 0; no worker left" \
  '[ "$ic" = ok ] && [ "$DRC" = 0 ] && [ -z "$(test_pids)" ]' "integrity_check: $ic"
exit 0
