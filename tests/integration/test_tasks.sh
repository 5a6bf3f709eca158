#!/bin/sh
# test_tasks.sh — block-parallel jobs as separate tasks (issue 14; worker/wk_tasks.c,
# docs/daemon.md "Block-parallel tasks") through the REAL lrqd and lrq-worker on stories260K
# (5 blocks, threads 1):
#   1. "tasks" is refused with 422 naming the field where it cannot apply;
#   2. a parallel-pipeline job with "tasks": 5 runs its 5 block ranges as 5 child workers that
#      are all started before the first block finishes, and its hf artifact is bit-identical
#      to the same job run as one worker (tasks 1);
#   3. a task SIGKILLed after its first mid-block checkpoint (found from the job's own events)
#      is restarted by the coordinator, resumes from its checkpoint, and the artifact is still
#      identical; the daemon saw one attempt;
#   4. cancelling a job stops every task.
# No sleeps decide anything: the waits follow progress.jsonl and the job's state, bounded by
# "no change for" a multiple of the reference job's duration.
. "$(dirname "$0")/lib_real.sh"
ITERS=300
echo "1..9"
start_daemon || { echo "Bail out! lrqd did not start"; exit 1; }
pspec() { spec "$1" "$2" ",\"pipeline\":\"parallel\"${3:-}"; }

# 1. refusals
api POST /v1/jobs -H 'Content-Type: application/json' --data-binary "$(spec bad1 10 ',"tasks":5')"
c1=$CODE; b1=$(cat "$T/body")
api POST /v1/jobs -H 'Content-Type: application/json' --data-binary "$(pspec bad2 10 ',"tasks":0')"
c2=$CODE; b2=$(cat "$T/body")
expect "tasks with the sequential pipeline, or out of range: 422 naming tasks" \
  '[ "$c1" = 422 ] && echo "$b1" | grep -q "\"field\":\"tasks\"" && echo "$b1" | grep -q parallel &&
   [ "$c2" = 422 ] && echo "$b2" | grep -q "\"field\":\"tasks\""' "sequential: $b1; 0: $b2"

# task mode refusals of the worker itself: exit 65 with an error event naming --blocks
mkdir -p "$T/w"
spec seq 10 | sed "s|\"$MODEL\"|\"$SHARED/$MODEL\"|; s|\"$CALIB\"|\"$SHARED/$CALIB\"|" > "$T/seq.json"
pspec par 10 | sed "s|\"$MODEL\"|\"$SHARED/$MODEL\"|; s|\"$CALIB\"|\"$SHARED/$CALIB\"|" > "$T/par.json"
"$WORKER" run --blocks 0-1 --spec "$T/seq.json" --workdir "$T/w/a" > "$T/wa.out" 2>/dev/null; ra=$?
"$WORKER" run --blocks 3-9 --spec "$T/par.json" --workdir "$T/w/b" > "$T/wb.out" 2>/dev/null; rb=$?
"$WORKER" run --blocks 2-2 --spec "$T/par.json" --workdir "$T/w/c" > /dev/null 2>&1; rc_=$?
expect "worker --blocks: sequential spec, range past the model, empty range → exit 65 naming --blocks" \
  '[ $ra = 65 ] && grep -q "\"field\":\"--blocks\"" "$T/wa.out" && [ $rb = 65 ] &&
   grep "\"field\":\"--blocks\"" "$T/wb.out" | grep -q "5 blocks" && [ $rc_ = 65 ]' \
  "$(grep '"error"' "$T/wa.out") $(grep '"error"' "$T/wb.out")"

# --task K (a Slurm array element): K beyond the spec's ranges has nothing to do (exit 0, no
# block file); a bad index, a sequential spec, or two modes at once are refused
"$WORKER" run --task 7 --spec "$T/par.json" --workdir "$T/w/d" > "$T/wd.out" 2> "$T/wd.err"; rd=$?
"$WORKER" run --task x --spec "$T/par.json" --workdir "$T/w/e" > /dev/null 2>&1; re=$?
"$WORKER" run --task 0 --spec "$T/seq.json" --workdir "$T/w/f" > "$T/wf.out" 2>/dev/null; rf=$?
"$WORKER" run --task 0 --assemble --spec "$T/par.json" --workdir "$T/w/g" > /dev/null 2>&1; rg=$?
expect "worker --task: past the ranges → exit 0 with nothing done; bad index 65; sequential spec 65 naming --task; with --assemble 64" \
  '[ $rd = 0 ] && grep -q "task 7: the model.s 5 blocks are in tasks" "$T/wd.err" && ! ls "$T/w/d/ckpt"/block-* > /dev/null 2>&1 &&
   [ $re = 65 ] && [ $rf = 65 ] && grep -q "\"field\":\"--task\"" "$T/wf.out" && [ $rg = 64 ]' \
  "exit $rd $re $rf $rg; $(tail -n 1 "$T/wd.err")"

# 2. reference (one worker) and the same job with 5 tasks
t0=$(now)
submit "$(pspec ref $ITERS)"; REF=$JOB
wait_state "$REF" succeeded
DUR=$(secs "$t0" "$(now)")
REF_SHA=$(sha "$STATE/jobs/$REF/artifacts/hf/model.safetensors")
STALL_S=$(awk -v d="$DUR" 'BEGIN { s = 10 * d; printf "%d", s < 60 ? 60 : s }')
DEADLINE=$(( $(date +%s) + $(awk -v d="$DUR" 'BEGIN { s = 80 * d; printf "%d", s < 600 ? 600 : s }') ))
expect "parallel job in one worker succeeds" '[ "$(job_field $REF state)" = succeeded ] && [ ${#REF_SHA} = 64 ]' \
  "one worker: $DUR s, sha256 $REF_SHA; waits give up after $STALL_S s without change"

t0=$(now)
submit "$(pspec tasks $ITERS ',"tasks":5')"; TJ=$JOB
wait_state "$TJ" succeeded
TDUR=$(secs "$t0" "$(now)")
P=$STATE/jobs/$TJ/progress.jsonl
TSHA=$(sha "$STATE/jobs/$TJ/artifacts/hf/model.safetensors")
# the task events: 5 distinct ranges and pids, all before the first block event; block events from 5 pids
facts=$($PY - "$P" <<'EOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
first_block = min((i for i, e in enumerate(ev) if e.get('event') == 'block'), default=-1)
starts = [(i, e) for i, e in enumerate(ev) if e.get('event') == 'task']
ranges = sorted((e['block_first'], e['block_end']) for _, e in starts)
pids = {e['pid'] for _, e in starts}
bpids = {e['pid'] for e in ev if e.get('event') == 'block'}
blocks = sorted(e['block'] for e in ev if e.get('event') == 'block')
ok = (ranges == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)] and len(pids) == 5 and first_block > 0 and
      all(i < first_block for i, _ in starts) and bpids == pids and blocks == [0, 1, 2, 3, 4])
print('ok' if ok else 'bad', 'ranges', ranges, 'pids', len(pids), 'block events from', len(bpids), 'pids', blocks)
EOF
)
expect "tasks 5: five child workers (one per block), all started before the first block ended" \
  'case "$facts" in ok*) true ;; *) false ;; esac' "$facts"
expect "tasks 5: succeeds, hf sha256 = the one-worker parallel job's" \
  '[ "$(job_field $TJ state)" = succeeded ] && [ "$TSHA" = "$REF_SHA" ]' \
  "5 tasks: $TDUR s (one worker: $DUR s; 2 shared cores, threads 1 per task), sha256 $TSHA"

# 3. SIGKILL task 2 after its first checkpoint
submit "$(pspec kill $ITERS ',"tasks":5')"; KJ=$JOB
P=$STATE/jobs/$KJ/progress.jsonl
stall_reset; KP=
while [ -z "$KP" ] && ! stalled "$( { wc -c < "$P"; } 2>/dev/null)" "$STALL_S"; do
  KP=$(grep '"event":"checkpoint"' "$P" 2>/dev/null | grep '"task":2,' | head -n 1 | sed 's/.*"pid":\([0-9]*\).*/\1/')
  [ -z "$KP" ] && sleep 0.01
done
landed=no
[ -n "$KP" ] && kill -KILL "$KP" 2>/dev/null && landed=yes
wait_state "$KJ" succeeded
KSHA=$(sha "$STATE/jobs/$KJ/artifacts/hf/model.safetensors")
late=$(grep '"event":"block"' "$P" | grep -c "\"pid\":$KP}" )
if [ "$landed" = yes ] && [ "$late" = 0 ]; then
  expect "task 2 SIGKILLed mid-block: restarted, resumed from its checkpoint, one daemon attempt" \
    'grep "\"event\":\"task\"" "$P" | grep "\"task\":2," | grep -q "\"start\":2" &&
     grep "\"event\":\"task_resume\"" "$P" | grep -q "\"task\":2," && [ "$(job_field $KJ attempts)" = 1 ]' \
    "killed pid $KP; $(grep 'task_resume' "$P" | head -n 1)"
else
  echo "ok $((n = n + 1)) - task 2 SIGKILLed mid-block # SKIP the kill did not land mid-block (pid '$KP', landed $landed)"
fi
expect "after the kill: the job succeeds with the identical artifact" \
  '[ "$(job_field $KJ state)" = succeeded ] && [ "$KSHA" = "$REF_SHA" ]' "sha256 $KSHA"

# 4. cancel stops every task
submit "$(pspec cancel 100000 ',"tasks":5')"; CJ=$JOB
P=$STATE/jobs/$CJ/progress.jsonl
stall_reset
ntask() { _c=$(grep -c '"event":"task"' "$P" 2>/dev/null); echo "${_c:-0}"; }
until [ "$(ntask)" -ge 5 ] && grep -q '"event":"checkpoint"' "$P" ||
      stalled "$( { wc -c < "$P"; } 2>/dev/null)" "$STALL_S"; do sleep 0.02; done
CPIDS=$(grep '"event":"task"' "$P" | sed 's/.*"pid":\([0-9]*\).*/\1/')
api POST /v1/jobs/$CJ/cancel
wait_state "$CJ" cancelled
stall_reset; left=x
while [ -n "$left" ] && ! stalled y "$STALL_S"; do
  left=; for p in $CPIDS; do alive "$p" && left="$left $p"; done
  [ -n "$left" ] && sleep 0.05
done
expect "cancel: the job is cancelled and none of its $(echo $CPIDS | wc -w) tasks is left running" \
  '[ "$(job_field $CJ state)" = cancelled ] && [ -z "$left" ] && [ "$(echo $CPIDS | wc -w)" = 5 ]' "left:${left:- none}"
exit 0
