#!/bin/sh
# lrqd over HTTPS (tls_cert/tls_key): a self-signed certificate made by the test.
set -u
: "${LRQ_BUILDDIR:?}" "${LRQ_SRCDIR:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/lrq-tls.XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
echo "1..5"
if ! command -v openssl >/dev/null 2>&1; then
    for i in 1 2 3 4; do echo "ok $i # SKIP openssl not installed"; done; exit 0
fi
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
mkdir -p "$T/state" "$T/data"
"$LRQ_BUILDDIR/lrqd" --listen 127.0.0.1:0 --state-dir "$T/state" --schema-dir "$LRQ_SRCDIR/schema" \
    --data-root "$T/data" --port-file "$T/port" --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" \
    --no-auth 2> "$T/lrqd.log" &
pid=$!
# until lrqd wrote its port or died (a hang guard of 6000 polls, not a time budget)
i=0
while [ ! -s "$T/port" ] && [ $i -lt 6000 ] && kill -0 $pid 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
port=$(cat "$T/port" 2>/dev/null)
code=$(curl -s -m 30 --cacert "$T/cert.pem" -o "$T/h.json" -w '%{http_code}' "https://127.0.0.1:$port/healthz")
[ "$code" = 200 ] && grep -q '"ok"' "$T/h.json" && echo "ok 1 - GET https://…/healthz verified against the certificate" \
    || { echo "not ok 1 - https healthz: $code"; sed 's/^/# /' "$T/lrqd.log" | tail -5; }
code=$(curl -s -m 30 --cacert "$T/cert.pem" -o "$T/b.json" -w '%{http_code}' -X POST -d '{"method":"rtn"}' \
    "https://127.0.0.1:$port/v1/jobs")
[ "$code" = 422 ] && grep -q '"field":"model"' "$T/b.json" && echo "ok 2 - POST over TLS validated (422 naming model)" \
    || echo "not ok 2 - POST over TLS: $code $(cat "$T/b.json")"
code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")
[ "$code" != 200 ] && echo "ok 3 - plain HTTP on the TLS port is not served" || echo "not ok 3 - plain HTTP answered 200"
out=$(LRQ_CACERT="$T/cert.pem" "$LRQ_BUILDDIR/lrqctl" --server "https://127.0.0.1:$port" list 2>&1)
[ $? -eq 0 ] && echo "ok 4 - lrqctl over https with LRQ_CACERT" || echo "not ok 4 - lrqctl: $out"
kill "$pid"; wait "$pid"; pid=
"$LRQ_BUILDDIR/lrqd" --listen 127.0.0.1:0 --state-dir "$T/state2" --schema-dir "$LRQ_SRCDIR/schema" \
    --tls-cert "$T/cert.pem" --no-auth 2> "$T/lrqd2.log"
rc=$?
[ $rc -ne 0 ] && grep -q "tls_cert and tls_key must be given together" "$T/lrqd2.log" \
    && echo "ok 5 - tls_cert without tls_key is refused at start" || echo "not ok 5 - exit $rc: $(tail -1 "$T/lrqd2.log")"
