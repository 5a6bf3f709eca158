#!/bin/sh
# test_enospc.sh — a job whose work dir runs out of space (issue 5, "Limits and
# validation: Disk"), with the REAL lrq-worker and lrqd on stories260K.
#
# The work dir is a tmpfs made by the test and sized from a reference run's
# files, so that the failure lands where we want it:
#   S = pages of a full state.ckpt (parameters + Adam moments), B = pages of a
#   block-NNN.bin, and a state checkpoint is written as a third copy (tmp, then
#   state → state.prev, tmp → state). Block 0 peaks at 3S + a few small files;
#   block 1 at 3S + B + the small files. A tmpfs of 3S + B/2 + 4 pages lets
#   block 0 through and fails the 3rd checkpoint of block 1 with ENOSPC —
#   mid-job, with state.ckpt and state.ckpt.prev in place.
#   A tmpfs of 5B + 3S + 8 pages holds every checkpoint (block 4 peaks at
#   4B + 3S + small) but not the ~1.2 MB model.safetensors: the export fails.
# After each failure the tmpfs is grown (remount) and the worker run again on
# the same work dir: it must resume from the surviving checkpoint and produce
# the uninterrupted run's artifact bit for bit.
# Skipped (ok # SKIP) only if this machine cannot mount a tmpfs.
. "$(dirname "$0")/lib_real.sh"
PLAN=12
echo "1..$PLAN"
ITERS=300
PG=4096

# mount_tmpfs DIR KiB: a tmpfs of that size (remembered for cleanup)
mount_tmpfs() {
  mkdir -p "$1" && mount -t tmpfs -o "size=${2}k,mode=0755" tmpfs "$1" 2>"$T/mount.err" || return 1
  MOUNTS="$1 $MOUNTS"
}
grow() { mount -o remount,size=64m "$1"; }
if ! mount_tmpfs "$T/probe" 64; then
  why=$(head -c 200 "$T/mount.err" | tr '\n' ' ')
  while [ $n -lt $PLAN ]; do n=$((n + 1)); echo "ok $n # SKIP cannot mount a tmpfs: $why"; done
  exit 0
fi

# Reference: the worker alone, uninterrupted, on the normal disk.
mkdir -p "$T/ref"
spec ref $ITERS | sed "s|\"$MODEL\"|\"$SHARED/$MODEL\"|; s|\"$CALIB\"|\"$SHARED/$CALIB\"|" > "$T/spec.json"
t0=$(now)
"$WORKER" run --spec "$T/spec.json" --workdir "$T/ref/w" > "$T/ref/out" 2> "$T/ref/err"; rc=$?
REF_SHA=$(sha "$T/ref/w/artifacts/hf/model.safetensors")
pages() { _s=$(stat -c %s "$1" 2>/dev/null) || _s=0; echo $(( (_s + PG - 1) / PG )); }
S=$(pages "$T/ref/w/ckpt/state.ckpt.prev")
B=$(pages "$T/ref/w/ckpt/block-000.bin")
A=$(pages "$T/ref/w/artifacts/hf/model.safetensors")
expect "reference run on a roomy disk" '[ $rc = 0 ] && [ ${#REF_SHA} = 64 ] && [ "$S" -gt 0 ] && [ "$B" -gt 0 ]' \
  "$(secs "$t0" "$(now)") s; full state.ckpt $S pages, block file $B pages, model.safetensors $A pages (4 KiB)"
[ $fails = 0 ] || { tail -n 5 "$T/ref/err" | sed 's/^/# /'; echo "Bail out! the reference run failed"; exit 1; }
CK_KB=$(( (3 * S + B / 2 + 4) * PG / 1024 ))
EX_KB=$(( (5 * B + 3 * S + 8) * PG / 1024 ))
diag "tmpfs sizes: checkpoint failure ${CK_KB} KiB, export failure ${EX_KB} KiB"

# last_error FILE: the message of the last "error" event in a worker's stdout
last_error() {
  grep '"event":"error"' "$1" | tail -n 1 | $PY -c "import sys,json; print(json.loads(sys.stdin.read() or '{}').get('message',''))" 2>/dev/null
}
# resume_check WD OUT: grow the tmpfs, run the worker again; sets RRC RSHA
resume_check() {
  grow "$1" && "$WORKER" run --spec "$T/spec.json" --workdir "$1" > "$2" 2>> "$2.err"; RRC=$?
  RSHA=$(sha "$1/artifacts/hf/model.safetensors")
}

# 1. Worker alone: ENOSPC while writing a checkpoint in block 1.
W1=$T/w1
mount_tmpfs "$W1" "$CK_KB"
"$WORKER" run --spec "$T/spec.json" --workdir "$W1" > "$T/w1.out" 2> "$T/w1.err"; rc=$?
msg=$(last_error "$T/w1.out")
blocks_done=$(ls "$W1"/ckpt/block-*.bin 2>/dev/null | wc -l)
expect "worker alone, ENOSPC at a checkpoint: exit 65 (fails cleanly, no retry), error event says No space left on device" \
  '[ $rc = 65 ] && echo "$msg" | grep -q "No space left on device" && echo "$msg" | grep -q "checkpoint"' \
  "exit $rc after $blocks_done finished block(s); error event: $msg"
ck_state=$(ckpt_ok "$W1/ckpt/state.ckpt" && echo ok || echo BAD)
ck_prev=$(ckpt_ok "$W1/ckpt/state.ckpt.prev" && echo ok || echo BAD)
expect "…state.ckpt and state.ckpt.prev verify (sha256 trailer), no tmp file left, the log says why" \
  '[ "$blocks_done" -ge 1 ] && [ $ck_state = ok ] && [ $ck_prev = ok ] && ! ls "$W1"/ckpt/*.tmp >/dev/null 2>&1 && grep -q "error: .*No space left on device" "$W1/log"' \
  "state.ckpt $ck_state, state.ckpt.prev $ck_prev"
resume_check "$W1" "$T/w1r.out"
from=$(grep -o "resuming from [^ ]*: block [0-9]*, iteration [0-9]*" "$W1/log" | tail -n 1)
expect "…space freed: the worker resumes from that checkpoint, artifact bit-identical" \
  '[ $RRC = 0 ] && [ -n "$from" ] && [ "$RSHA" = "$REF_SHA" ]' "$from; sha256 $RSHA"

# 2. Worker alone: ENOSPC while exporting model.safetensors.
W2=$T/w2
mount_tmpfs "$W2" "$EX_KB"
"$WORKER" run --spec "$T/spec.json" --workdir "$W2" > "$T/w2.out" 2> "$T/w2.err"; rc=$?
msg=$(last_error "$T/w2.out")
expect "worker alone, ENOSPC writing the artifact: exit 65, error event says No space left on device, no partial artifact" \
  '[ $rc = 65 ] && echo "$msg" | grep -q "No space left on device" && [ ! -e "$W2/artifacts/hf/model.safetensors" ]' \
  "exit $rc; error event: $msg"
resume_check "$W2" "$T/w2r.out"
expect "…space freed: rerun exports from the finished blocks, artifact bit-identical" \
  '[ $RRC = 0 ] && [ "$RSHA" = "$REF_SHA" ]' "sha256 $RSHA"

# 3. Through lrqd: the job's work dir (STATE/jobs/1) is the small tmpfs; the
#    database and other jobs stay on the roomy disk.
mount_tmpfs "$STATE/jobs/1" "$CK_KB"
start_daemon || { echo "Bail out! lrqd did not start"; exit 1; }
submit "$(spec enospc $ITERS ',"max_attempts":1')"; J=$JOB
wait_state "$J" failed
err=$(job_field "$J" error)
curl -s -m "$CURL_M" "$URL/v1/jobs/$J/log" > "$T/j.log"
jblocks=$(ls "$STATE"/jobs/1/ckpt/block-*.bin 2>/dev/null | wc -l)
expect "lrqd: job with ENOSPC at a checkpoint fails cleanly; its log (GET …/log) says No space left on device" \
  '[ "$J" = 1 ] && [ "$(job_field $J state)" = failed ] && [ "$jblocks" -ge 1 ] && grep -q "No space left on device" "$T/j.log" && ckpt_ok "$STATE/jobs/1/ckpt/state.ckpt" && ckpt_ok "$STATE/jobs/1/ckpt/state.ckpt.prev"' \
  "failed after $jblocks finished block(s); job error: $err; log: $(grep -o "error: .*" "$T/j.log" | tail -n 1)"
expect "…the job's error names the cause (No space left on device)" \
  'echo "$err" | grep -q "No space left on device"' "job error: $err"
hz=$(curl -s -m "$CURL_M" -o /dev/null -w '%{http_code}' "$URL/healthz")
lj=$(curl -s -m "$CURL_M" -o /dev/null -w '%{http_code}' "$URL/v1/jobs")
RTN="{\"name\":\"roomy\",\"model\":\"$MODEL\",\"method\":\"rtn\",\"weight\":{\"bits\":4,\"group_size\":0},\"export\":[\"hf\"],\"threads\":1}"
submit "$RTN"; J2=$JOB
wait_state "$J2" succeeded
expect "lrqd keeps serving: /healthz 200, GET /v1/jobs 200, a job on the roomy disk succeeds" \
  '[ "$hz" = 200 ] && [ "$lj" = 200 ] && [ "$(job_field $J2 state)" = succeeded ]' "healthz $hz, /v1/jobs $lj, job $J2 $(job_field "$J2" state)"
stop_daemon TERM

# 4. Low disk before a job starts: a state dir with less than min_free_mb free
#    holds queued jobs with a clear message and /readyz says so; more space
#    releases them.
STATE=$T/state2
mount_tmpfs "$STATE" 8192
start_daemon --min-free-mb 16 || { echo "Bail out! lrqd did not start"; exit 1; }
submit "$RTN"; J3=$JOB
# wait for the daemon's decision (its log line), not a fixed sleep
wait_for 'grep -q "holding queued jobs: $STATE has" "$T/lrqd.out"'
st=$(job_field "$J3" state)
rz=$(curl -s -m "$CURL_M" -w ' %{http_code}' "$URL/readyz" | tr -d '\n')
held=$(grep -o "holding queued jobs: $STATE has [0-9]* MB free, min_free_mb = 16" "$T/lrqd.out" | head -n 1)
grow "$STATE"
wait_state "$J3" succeeded
expect "low disk: job held (queued) with a clear log line and /readyz 503; released when space returns" \
  '[ "$st" = queued ] && [ -n "$held" ] && echo "$rz" | grep -q "low disk space.* 503$" && [ "$(job_field $J3 state)" = succeeded ]' \
  "held: $held; readyz: $rz; then $(job_field "$J3" state)"
stop_daemon TERM

# 5. Per-job estimate: a state dir above min_free_mb but too small for this job's
#    checkpoints and artifacts (≈ 2 × the model file for an hf export) holds it with
#    the reason on the job itself; more space releases it.
STATE=$T/state3
mount_tmpfs "$STATE" 1800
start_daemon --min-free-mb 0 || { echo "Bail out! lrqd did not start"; exit 1; }
submit "$RTN"; J4=$JOB
wait_for 'job_field "$J4" error | grep -q "waiting for disk space"'
st=$(job_field "$J4" state)
why=$(job_field "$J4" error)
grow "$STATE"
wait_state "$J4" succeeded
expect "per-job disk estimate: job held queued with 'waiting for disk space' on it; released when space returns" \
  '[ "$st" = queued ] && echo "$why" | grep -q "waiting for disk space: needs about" && [ "$(job_field $J4 state)" = succeeded ]' \
  "held: $st ($why); then $(job_field "$J4" state)"
# The estimate lrqd recorded (metrics.disk_estimate) against what the job left on disk: the hf
# export's estimate is its files' sizes + at most the allowances (256 KiB of JSON + 160 bytes for
# each of the 150 safetensors tensors + 4 KiB blocks of du), so used ≤ estimate ≤ used + 512 KiB;
# the total covers the whole work dir.
curl -s -m "$CURL_M" "$URL/v1/jobs/$J4/metrics" > "$T/m4.json"
est=$($PY -c 'import json,sys; e=json.load(open(sys.argv[1]))["disk_estimate"]; print(e["exports"]["hf"], e["total_bytes"])' "$T/m4.json" 2>/dev/null)
hf_used=$(du -sb "$STATE/jobs/$J4/artifacts/hf" 2>/dev/null | cut -f1)
wd_used=$(du -sb "$STATE/jobs/$J4" 2>/dev/null | cut -f1)
hf_est=${est% *} tot_est=${est#* }
expect "disk estimate in the job's metrics covers what it used: hf export within its allowances, work dir below the total" \
  '[ -n "$est" ] && [ -n "$hf_used" ] && [ "$hf_used" -le "$hf_est" ] && [ "$hf_est" -le $((hf_used + 524288)) ] && [ "$wd_used" -le "$tot_est" ]' \
  "hf: estimate $hf_est B, used $hf_used B; work dir: estimate $tot_est B, used $wd_used B"
stop_daemon TERM
exit 0
