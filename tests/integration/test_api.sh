#!/bin/sh
# test_api.sh — lrqd REST errors, validation, path confinement (issue 5),
# listing, limits and auth, against the real daemon on 127.0.0.1.
. "$(dirname "$0")/lib.sh"
echo "1..38"
start_daemon --max-body 4096 || { echo "Bail out! lrqd did not start"; exit 1; }
json_error() { body_has '"error":{"code":"'"$1"'"'; }

api GET /healthz
if [ "$CODE" = 200 ] && body_has '"status":"ok"'; then ok "GET /healthz → 200 ok"; else nok "GET /healthz → 200 ok"; fi
api GET /readyz
if [ "$CODE" = 200 ]; then ok "GET /readyz → 200 ready"; else nok "GET /readyz → 200 ready"; fi
api POST /v1/jobs --data-binary '{"model": "model.bin", "method": '
if [ "$CODE" = 400 ] && json_error invalid_json; then ok "bad JSON → 400 invalid_json"; else nok "bad JSON → 400 invalid_json"; fi
api POST /v1/jobs --data-binary '{"model":"model.bin","method":"rtn","weight":{"bits":"four"}}'
if [ "$CODE" = 422 ] && json_error invalid_spec && body_has '"field":"weight.bits"'; then ok "wrong type → 422 invalid_spec field weight.bits"; else nok "wrong type → 422 invalid_spec field weight.bits"; fi
api POST /v1/jobs --data-binary '{"model":"model.bin","method":"rtn","bogus":1}'
if [ "$CODE" = 422 ] && body_has '"field":"bogus"'; then ok "unknown field → 422 naming it"; else nok "unknown field → 422 naming it"; fi
api POST /v1/jobs --data-binary '{"method":"rtn"}'
if [ "$CODE" = 422 ] && body_has '"field":"model"'; then ok "missing model → 422 field model"; else nok "missing model → 422 field model"; fi
api POST /v1/jobs --data-binary '[1,2]'
if [ "$CODE" = 422 ]; then ok "non-object body → 422"; else nok "non-object body → 422"; fi
head -c 8000 /dev/zero | tr '\0' ' ' > "$T/big.json"
api POST /v1/jobs --data-binary "@$T/big.json"
if [ "$CODE" = 413 ] && json_error body_too_large; then ok "body over max_body → 413 body_too_large"; else nok "body over max_body → 413 body_too_large"; fi
api GET /v1/nope
if [ "$CODE" = 404 ] && json_error not_found; then ok "unknown route → 404 JSON"; else nok "unknown route → 404 JSON"; fi
api PUT /v1/jobs
if [ "$CODE" = 405 ] && json_error method_not_allowed && hdr_has '^Allow: GET, HEAD, POST'; then ok "wrong method → 405 with Allow"; else nok "wrong method → 405 with Allow"; fi
api GET /v1/jobs/abc
if [ "$CODE" = 404 ]; then ok "non-numeric id → 404"; else nok "non-numeric id → 404"; fi
api GET /v1/jobs/999
if [ "$CODE" = 404 ] && json_error not_found; then ok "missing job → 404"; else nok "missing job → 404"; fi

# Path confinement: each case → 403 naming the field.
ln -s /etc/passwd "$DATA/link-out"
ln -s /dev/zero "$DATA/zero"
mkfifo "$DATA/fifo"
mkdir -p "$T/outside" && echo x > "$T/outside/secret.txt"
ln -s "$T/outside" "$DATA/dirlink"
forbid() { # NAME FIELD JSON
  api POST /v1/jobs --data-binary "$3"
  if [ "$CODE" = 403 ] && json_error forbidden_path && body_has "\"field\":\"$2\""; then ok "$1 → 403 field $2"; else nok "$1 → 403 field $2"; fi
}
forbid "absolute path outside" model '{"model":"/etc/passwd","method":"rtn"}'
forbid "../ escape" model '{"model":"../outside/secret.txt","method":"rtn"}'
forbid "symlink pointing out" model '{"model":"link-out","method":"rtn"}'
forbid "symlinked dir pointing out" model '{"model":"dirlink/secret.txt","method":"rtn"}'
forbid "/dev/zero" model '{"model":"/dev/zero","method":"rtn"}'
forbid "symlink to /dev/zero" model '{"model":"zero","method":"rtn"}'
forbid "FIFO" model '{"model":"fifo","method":"rtn"}'
forbid "missing file" model '{"model":"nope.bin","method":"rtn"}'
forbid "tokenizer outside" tokenizer '{"model":"model.bin","tokenizer":"/etc/hostname","method":"rtn"}'
forbid "calibration.path outside" calibration.path '{"model":"model.bin","method":"rtn","calibration":{"path":"/etc/hostname"}}'
forbid "tokenizer is a directory" tokenizer '{"model":"model.bin","tokenizer":"hfmodel","method":"rtn"}'

# FAKE_STEP_S keeps jobs running long enough to queue behind one another.
api POST /v1/jobs --data-binary '{"model":"hfmodel","method":"rtn","name":"steps200","priority":-5}'
if [ "$CODE" = 201 ] && hdr_has '^Location: /v1/jobs/1'; then ok "HF model directory accepted → 201 + Location"; else nok "HF model directory accepted → 201 + Location"; fi
if body_has "\"model\":\"$(cd "$DATA" && pwd -P)/hfmodel\""; then ok "stored spec holds the resolved absolute path"; else nok "stored spec holds the resolved absolute path"; fi
for i in 2 3 4 5; do submit '{"model":"model.bin","method":"rtn","name":"steps200"}'; done
api GET '/v1/jobs?limit=2'
if [ "$CODE" = 200 ] && body_has '^{"jobs":\[{"id":5,' && body_has '"next_after":4'; then ok "list: newest first, limit, next_after"; else nok "list: newest first, limit, next_after"; fi
api GET '/v1/jobs?limit=2&after=4'
if body_has '^{"jobs":\[{"id":3,' && body_has '{"id":2,'; then ok "list: after= continues"; else nok "list: after= continues"; fi
api GET '/v1/jobs?state=queued&limit=500'
if [ "$CODE" = 200 ] && ! body_has '"state":"running"' && body_has '"state":"queued"'; then ok "list: state filter"; else nok "list: state filter"; fi
api GET '/v1/jobs?limit=0'
if [ "$CODE" = 400 ] && body_has '"field":"limit"'; then ok "list: bad limit → 400"; else nok "list: bad limit → 400"; fi
api GET '/v1/jobs?state=done'
if [ "$CODE" = 400 ]; then ok "list: bad state → 400"; else nok "list: bad state → 400"; fi
wait_state 1 running   # the daemon claims asynchronously: running_workers below needs it
api GET /metrics
if [ "$CODE" = 200 ] && body_has '^lrq_jobs{state="queued"} '  && body_has '^lrq_queue_depth ' && body_has '^lrq_running_workers 1' && body_has 'lrq_http_requests_total{route="/v1/jobs",status="201"} 5'  && body_has '^lrq_job_duration_seconds_bucket{le="+Inf"}'; then ok "/metrics: Prometheus text with jobs, queue, http counters"; else nok "/metrics: Prometheus text with jobs, queue, http counters"; fi
stop_daemon TERM
if [ "$DRC" = 0 ]; then ok "SIGTERM → exit 0"; else nok "SIGTERM → exit 0"; fi

# Queue limit → 429 + Retry-After.
start_daemon --queue-max 5 --retry-after-s 7 || echo "Bail out! restart failed"
submit '{"model":"model.bin","method":"rtn"}'
if [ "$CODE" = 429 ] && json_error queue_full && hdr_has '^Retry-After: 7'; then ok "queue_max reached → 429 queue_full + Retry-After"; else nok "queue_max reached → 429 queue_full + Retry-After"; fi
stop_daemon TERM

# Auth: token file with a read and a submit token.
tok_r=read-token-123; tok_s=submit-token-456
printf '# test tokens\nreader:read:%s\nalice:submit:%s\n' "$(printf %s $tok_r | sha256sum | cut -c1-64)"  "$(printf %s $tok_s | sha256sum | cut -c1-64)" > "$T/tokens"
STATE=$T/state-auth start_daemon --token-file "$T/tokens" || echo "Bail out! auth daemon failed"
api GET /v1/jobs
if [ "$CODE" = 401 ] && json_error unauthorized && hdr_has '^WWW-Authenticate: Bearer'; then ok "auth: no token → 401 + WWW-Authenticate"; else nok "auth: no token → 401 + WWW-Authenticate"; fi
api GET /v1/jobs -H "Authorization: Bearer wrong"
if [ "$CODE" = 401 ]; then ok "auth: wrong token → 401"; else nok "auth: wrong token → 401"; fi
api POST /v1/jobs -H "Authorization: Bearer $tok_r" --data-binary '{"model":"model.bin","method":"rtn"}'
if [ "$CODE" = 403 ]; then ok "auth: read token cannot submit → 403"; else nok "auth: read token cannot submit → 403"; fi
api POST /v1/jobs -H "Authorization: Bearer $tok_s" --data-binary '{"model":"model.bin","method":"rtn","name":"steps2"}'
if [ "$CODE" = 201 ] && body_has '"owner":"alice"'  && [ "$(curl -s -m "$CURL_M" -o /dev/null -w '%{http_code}' "$URL/healthz")" = 200 ]; then ok "auth: submit token → 201, owner recorded; /healthz stays open"; else nok "auth: submit token → 201, owner recorded; /healthz stays open"; fi
stop_daemon TERM

"$LRQD" --state-dir "$T/state-x" --listen 0.0.0.0:0 --schema-dir "$SRC/schema" --data-root "$DATA" > "$T/noauth.out" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && grep -q "without authentication" "$T/noauth.out"; then ok "no token file on a non-loopback address → refuses to start"; else nok "no token file on a non-loopback address → refuses to start"; fi
exit 0
