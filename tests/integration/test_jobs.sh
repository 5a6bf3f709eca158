#!/bin/sh
# test_jobs.sh — job life cycle against the real lrqd + fake worker: submit →
# progress → succeeded → artifacts (sha256, Range, ETag) → metrics, log, SSE →
# delete; cancel (running, queued), permanent failure, retries, priority.
. "$(dirname "$0")/lib.sh"
echo "1..24"
export FAKE_STEP_S=0.1
start_daemon || { echo "Bail out! lrqd did not start"; exit 1; }

submit '{"model":"model.bin","method":"rtn","name":"ok steps30"}'; J=$JOB
expect "submit → 201" '[ "$CODE" = 201 ] && [ -n "$J" ]'
curl -s -N -m 600 "$URL/v1/jobs/$J/events" > "$T/sse" &
SSE=$!
# progress and state from the same reply: 27 steps of margin, not a race with the job
expect "progress visible while running" 'wait_progress $J 3 && [ "$PSTATE" = running ]'
expect "job succeeds" 'wait_state $J succeeded'
wait_for '! kill -0 $SSE 2>/dev/null'
expect "SSE: state first, progress events, final state succeeded, stream ends" \
  'head -n 1 "$T/sse" | grep -q "^event: state" && grep -q "^event: progress" "$T/sse" && ! kill -0 $SSE 2>/dev/null && tail -n 3 "$T/sse" | grep -q "\"state\":\"succeeded\""'
api GET /v1/jobs/$J/artifacts
sha=$($PY -c "import json; a={x['path']:x for x in json.load(open('$T/body'))['artifacts']}; print(a['hf/model.safetensors']['sha256'])")
expect "artifacts listed with size and sha256" '[ "$CODE" = 200 ] && [ ${#sha} = 64 ] && body_has "\"path\":\"hf/config.json\""'
api GET /v1/jobs/$J/artifacts/hf/model.safetensors; cp "$T/body" "$T/dl"
expect "download: sha256 matches the listing, ETag = sha256" \
  '[ "$CODE" = 200 ] && [ "$(sha256sum < "$T/dl" | cut -c1-64)" = "$sha" ] && hdr_has "^ETag: \"$sha\"" && hdr_has "^Accept-Ranges: bytes"'
api GET /v1/jobs/$J/artifacts/hf/model.safetensors -H 'Range: bytes=1000-5999'; cp "$T/body" "$T/part"
expect "Range → 206 with the exact slice" \
  '[ "$CODE" = 206 ] && hdr_has "^Content-Range: bytes 1000-5999/" && [ "$(wc -c < "$T/part")" = 5000 ] && dd if="$T/dl" bs=1000 skip=1 count=5 2>/dev/null | cmp -s - "$T/part"'
# resume a partial download the way lrqctl does: keep the first 100 kB, fetch the rest
head -c 100000 "$T/dl" > "$T/resumed"
curl -s -m "$CURL_M" -H 'Range: bytes=100000-' "$URL/v1/jobs/$J/artifacts/hf/model.safetensors" >> "$T/resumed"
expect "Range bytes=N- resumes a partial file to the same sha256" '[ "$(sha256sum < "$T/resumed" | cut -c1-64)" = "$sha" ]'
api GET /v1/jobs/$J/artifacts/hf/model.safetensors -H 'Range: bytes=99999999-'
expect "unsatisfiable Range → 416" '[ "$CODE" = 416 ] && hdr_has "^Content-Range: bytes \*/"'
CODE=$(curl -s -m "$CURL_M" -o /dev/null -w '%{http_code}' --path-as-is "$URL/v1/jobs/$J/artifacts/hf/%2e%2e/%2e%2e/spec.json")
C2=$(curl -s -m "$CURL_M" -o /dev/null -w '%{http_code}' --path-as-is "$URL/v1/jobs/$J/artifacts/../log")
expect "percent-encoded and plain .. cannot leave artifacts/ → 404" '[ "$CODE" = 404 ] && [ "$C2" = 404 ]'
api GET /v1/jobs/$J/metrics
expect "metrics → the worker's metrics.json" '[ "$CODE" = 200 ] && body_has "\"ppl_quant\":11.25"'
api GET /v1/jobs/$J/log
expect "log → the worker's stderr" '[ "$CODE" = 200 ] && body_has "fake-worker\[" && body_has "lrqd: attempt 1/3"'
api DELETE /v1/jobs/$J
expect "delete finished job → 204, then 404, work dir gone" \
  '[ "$CODE" = 204 ] && [ "$(curl -s -m "$CURL_M" -o /dev/null -w %{http_code} $URL/v1/jobs/$J)" = 404 ] && [ ! -d "$T/state/jobs/$J" ]'

# Cancel a running job, then a queued one.
submit '{"model":"model.bin","method":"rtn","name":"steps300"}'; R=$JOB
submit '{"model":"model.bin","method":"rtn","name":"steps300"}'; Q=$JOB
wait_progress $R 2
api DELETE /v1/jobs/$R
expect "delete running job → 409 conflict" '[ "$CODE" = 409 ] && body_has "\"code\":\"conflict\""'
api POST /v1/jobs/$Q/cancel
expect "cancel queued → 200 cancelled at once" '[ "$CODE" = 200 ] && body_has "\"state\":\"cancelled\""'
api POST /v1/jobs/$R/cancel
expect "cancel running → 200 cancel_requested" '[ "$CODE" = 200 ] && body_has "\"cancel_requested\":true"'
expect "running job becomes cancelled (SIGTERM, worker checkpoints)" 'wait_state $R cancelled'
api POST /v1/jobs/$R/cancel
expect "cancel finished → 409" '[ "$CODE" = 409 ]'
api GET /v1/jobs/$R
expect "cancelled job has its error/reason" 'body_has "\"error\":\"cancelled by request\""'

# Permanent failure and retries.
submit '{"model":"model.bin","method":"rtn","name":"fail"}'; F=$JOB
expect "exit 65 → failed, no retry, message from the error event (field named once)" \
  'wait_state $F failed && [ "$(job_field $F attempts)" = 1 ] && [ "$(job_field $F error)" = "weight.bits: unsupported by the fake model" ]'
submit '{"model":"model.bin","method":"rtn","name":"crash steps5","max_attempts":2}'; C=$JOB
expect "always crashing → failed after max_attempts with the reason" \
  'wait_state $C failed && [ "$(job_field $C attempts)" = 2 ] && [ "$(job_field $C error)" = "worker exited with code 3" ]'

# Priority: with the only slot busy, the higher priority job runs first.
# B runs until both are queued and is then cancelled, so the slot frees only after
# the submissions, however slow the machine.
submit '{"model":"model.bin","method":"rtn","name":"steps3000"}'; B=$JOB
wait_state $B running
submit '{"model":"model.bin","method":"rtn","name":"low steps3","priority":-1}'; L=$JOB
submit '{"model":"model.bin","method":"rtn","name":"high steps3","priority":5}'; H=$JOB
api POST /v1/jobs/$B/cancel
wait_state $L succeeded
started_line() { grep -n "job $1: started worker" "$T/lrqd.out" | head -n 1 | cut -d: -f1; }
expect "claim order: priority, then age" '[ "$(job_field $H state)" = succeeded ] && [ "$(started_line $H)" -lt "$(started_line $L)" ]'
api GET /v1/jobs/$H/events
expect "events of a finished job: one state event, stream closed" '[ "$CODE" = 200 ] && [ "$(grep -c "^event:" "$T/body")" = 1 ]'
stop_daemon TERM
expect "SIGTERM with no jobs → exit 0" '[ "$DRC" = 0 ]'
exit 0
