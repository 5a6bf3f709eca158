#!/bin/sh
# test_faults.sh — faults around the daemon: a worker killed with SIGKILL, a
# crashing worker, lrqd restarted (SIGTERM) and killed (SIGKILL) mid-job, and
# misbehaving workers (hang, overlong line, garbage, ignoring SIGTERM). Every
# wait is bounded by "no change for STALL_S" (lib_api.sh), not by a time budget.
# Faults are injected at a progress point (done ≥ 5 of 40 steps) and each assertion
# checks what the injection caused; 35 steps of margin keep the job running at the
# kill. progress_timeout_s is 5 s: well above a fake step (0.1 s) on a loaded machine.
. "$(dirname "$0")/lib.sh"
echo "1..15"
export FAKE_STEP_S=0.1
start_daemon --progress-timeout-s 5 || { echo "Bail out! lrqd did not start"; exit 1; }
art_sha() { curl -s -m "$CURL_M" "$URL/v1/jobs/$1/artifacts/hf/model.safetensors" | sha256sum | cut -c1-64; }

submit '{"model":"model.bin","method":"rtn","name":"ref steps40"}'; REF=$JOB
wait_state $REF succeeded
ref_sha=$(art_sha $REF)
expect "reference job (uninterrupted) succeeds" '[ "$(job_field $REF state)" = succeeded ] && [ ${#ref_sha} = 64 ]'

# 1. SIGKILL the worker mid-job: requeued (attempt counted), resumes, same artifact.
submit '{"model":"model.bin","method":"rtn","name":"kill steps40"}'; K=$JOB
wait_progress $K 5
kill -KILL "$(worker_pid $K)"
expect "worker SIGKILLed → requeued and finishes" 'wait_state $K succeeded'
expect "…attempts 2, resumed from the checkpoint, artifact identical" \
  '[ "$(job_field $K attempts)" = 2 ] && grep -q "job $K: requeued (worker killed by signal 9)" "$T/lrqd.out" && grep -q "job $K: worker resumed from its checkpoint" "$T/lrqd.out" && [ "$(art_sha $K)" = "$ref_sha" ]'

# 2. A transient crash (exit 3) is retried.
submit '{"model":"model.bin","method":"rtn","name":"crashonce steps6"}'; C=$JOB
expect "crash once (exit 3) → retried → succeeded, attempts 2" 'wait_state $C succeeded && [ "$(job_field $C attempts)" = 2 ]'

# 3. Restart lrqd (SIGTERM) mid-job: worker checkpoints (exit 75), job requeued
#    without counting the attempt, and resumes after the restart.
submit '{"model":"model.bin","method":"rtn","name":"restart steps40"}'; R=$JOB
wait_progress $R 5
stop_daemon TERM
expect "lrqd SIGTERM mid-job → exit 0, job queued again" '[ "$DRC" = 0 ] && grep -q "job $R: requeued (stopped with a checkpoint" "$T/lrqd.out"'
start_daemon --progress-timeout-s 5
expect "after restart the job resumes and succeeds, attempt not counted, same artifact" \
  'wait_state $R succeeded && [ "$(job_field $R attempts)" = 1 ] && grep -q "\"event\":\"resume\"" "$T/state/jobs/$R/progress.jsonl" && [ "$(art_sha $R)" = "$ref_sha" ]'

# 4. SIGKILL lrqd mid-job: on restart the orphan worker is stopped, the job is
#    requeued and finishes; no job lost or duplicated; integrity_check ok.
submit '{"model":"model.bin","method":"rtn","name":"dkill steps40"}'; D=$JOB
wait_progress $D 5
orphan=$(worker_pid $D)
stop_daemon KILL
start_daemon --progress-timeout-s 5
expect "lrqd SIGKILLed → recovery requeues the running job" 'wait_for "grep -q \"job $D: was running when lrqd stopped\" \"$T/lrqd.out\""'
expect "…the old worker is gone, the job finishes with the same artifact" \
  'wait_for "! alive $orphan" && wait_state $D succeeded && [ "$(sed -n "s/^{\"steps\":\([0-9]*\)}/\1/p" "$T/state/jobs/$D/artifacts/hf/config.json")" = 40 ]'
total=$(curl -s -m "$CURL_M" "$URL/v1/jobs?limit=500" | $PY -c "import sys,json; j=json.load(sys.stdin)['jobs']; print(len(j), len(set(x['id'] for x in j)))")
ic=$($PY -c "import sqlite3; print(sqlite3.connect('$T/state/lrq.db').execute('PRAGMA integrity_check').fetchone()[0])")
expect "no job lost or duplicated; PRAGMA integrity_check = ok" '[ "$total" = "5 5" ] && [ "$ic" = ok ]'

# 5. Misbehaving workers; lrqd stays responsive.
submit '{"model":"model.bin","method":"rtn","name":"hang steps10","max_attempts":1}'; H=$JOB
expect "hung worker killed after progress_timeout_s → failed with the reason" \
  'wait_state $H failed && job_field $H error | grep -q "no output from the worker for 5 s"'
submit '{"model":"model.bin","method":"rtn","name":"overlong steps10","max_attempts":1}'; O=$JOB
expect "overlong stdout line → worker killed, failed with the reason" \
  'wait_state $O failed && job_field $O error | grep -q "line longer than 65536 bytes"'
submit '{"model":"model.bin","method":"rtn","name":"garbage steps5"}'; G=$JOB
expect "garbage on stdout is ignored → succeeded" 'wait_state $G succeeded && [ "$(job_field $G attempts)" = 1 ]'
submit '{"model":"model.bin","method":"rtn","name":"ignoreterm steps400"}'; I=$JOB
wait_progress $I 2
api POST /v1/jobs/$I/cancel
t0=$(date +%s)
expect "cancel of a worker ignoring SIGTERM → SIGKILL after grace_s → cancelled" \
  'wait_state $I cancelled && grep -q "job $I: worker pid [0-9]* did not stop within 3 s; SIGKILL" "$T/lrqd.out"'
expect "lrqd stayed responsive (healthz, metrics)" \
  '[ "$(curl -s -m $CURL_M -o /dev/null -w %{http_code} $URL/healthz)" = 200 ] && curl -s -m $CURL_M $URL/metrics | grep -q "^lrq_jobs{state=\"failed\"} 2"'
stop_daemon TERM
expect "final SIGTERM → exit 0" '[ "$DRC" = 0 ]'
exit 0
