#!/bin/sh
# run.sh — the dashboard in a real browser (make check-browser): headless Debian chromium
# driven by playwright-core (installed by scripts/setup with `npm ci`; nothing is downloaded
# here) against a real lrqd and real lrq-worker on stories260K, on ephemeral ports.
# dashboard.test.mjs prints the TAP lines; this script starts and stops the daemons.
# Screenshots go to $LRQ_BROWSER_OUT (default: BUILDDIR/tests/browser/out).
. "$(dirname "$0")/../integration/lib_real.sh"
CHROMIUM=${LRQ_CHROMIUM:-/usr/bin/chromium}
NODE=$(command -v node || true)
MODS=$SRC/tests/browser/node_modules
[ -x "$CHROMIUM" ] || { echo "1..0 # SKIP $CHROMIUM is not installed (scripts/setup installs it)"; exit 0; }
[ -n "$NODE" ] || { echo "1..0 # SKIP node is not installed (scripts/setup installs it)"; exit 0; }
[ -d "$MODS/playwright-core" ] || { echo "1..0 # SKIP $MODS/playwright-core missing (scripts/setup runs npm ci)"; exit 0; }
OUT=${LRQ_BROWSER_OUT:-$BLD/tests/browser/out}
mkdir -p "$OUT"

tok_r=reader-$$-token; tok_a=admin-$$-token
printf 'reader:read:%s\nboss:admin:%s\n' "$(printf %s "$tok_r" | sha256sum | cut -c1-64)" \
  "$(printf %s "$tok_a" | sha256sum | cut -c1-64)" > "$T/tokens"
# A second lrqd without a token file (loopback): the page must say that auth is off.
STATE=$T/state-open start_daemon || { echo "Bail out! lrqd (no auth) did not start"; exit 1; }
URL_OPEN=$URL; BGPIDS="$BGPIDS $DPID"; DPID=
start_daemon --token-file "$T/tokens" || { echo "Bail out! lrqd did not start"; exit 1; }

# The long job holds the one worker slot until the test cancels it; the short one is watched
# from the moment it is queued, so the page sees every progress event of its run.
URL=$URL URL_OPEN=$URL_OPEN TOK_ADMIN=$tok_a TOK_READ=$tok_r STATE=$STATE OUT=$OUT STALL_S=$STALL_S \
SPEC_LONG=$(spec browser-long 100000) SPEC_SHORT=$(spec browser-short 400 ",\"eval\":{\"path\":\"data/tinystories/eval.txt\",\"seq_len\":64,\"max_windows\":8}") \
SPEC_BAD=$(spec browser-bad 10 | sed 's/"bits":3/"bits":99/') CHROMIUM=$CHROMIUM \
NODE_PATH=$MODS "$NODE" "$SRC/tests/browser/dashboard.test.mjs"
rc=$?
[ $rc -eq 0 ] || fails=1
stop_daemon TERM
exit $rc
