# lib.sh — helpers for the lrqd integration tests (sourced). TAP output, a
# daemon on 127.0.0.1 with an ephemeral port and a temp state dir, curl calls,
# and bounded waits. Requires curl(1) and sha256sum(1).
set -u
SRC=${LRQ_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BLD=${LRQ_BUILDDIR:-$SRC}
LRQD=${LRQD:-$BLD/lrqd}
FAKE=$SRC/tests/integration/fake-worker.sh
PY=/usr/bin/python3; [ -x $PY ] || PY=python3
T=$(mktemp -d "${TMPDIR:-/tmp}/lrq-it.XXXXXX")
DATA=$T/data
mkdir -p "$DATA"
printf 'model bytes\n' > "$DATA/model.bin"
printf 'calibration text\n' > "$DATA/calib.txt"
mkdir -p "$DATA/hfmodel" && printf '{}' > "$DATA/hfmodel/config.json"
n=0; fails=0; DPID=
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { # check NAME CMD...: ok if the single command CMD succeeds
  name=$1; shift
  if "$@"; then ok "$name"; else nok "$name"; fi
}
diag() { echo "# $*"; }

command -v curl >/dev/null || { echo "1..0 # SKIP curl(1) is not installed"; exit 0; }
[ -x "$LRQD" ] || { echo "1..0 # SKIP $LRQD not built"; exit 0; }

cleanup() {
  if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then kill -KILL "$DPID" 2>/dev/null; fi
  # workers run in their own sessions: stop leftovers of this test by their pid files
  for f in "$T"/state*/jobs/*/ckpt/pid; do [ -f "$f" ] && kill -KILL -- "-$(cat "$f")" 2>/dev/null; done
  if [ "$fails" -ne 0 ] || [ -n "${KEEP:-}" ]; then
    diag "kept $T"; [ -f "$T/lrqd.out" ] && sed 's/^/# lrqd: /' "$T/lrqd.out" | tail -n 40
  else rm -rf "$T"; fi
}
trap cleanup EXIT

DAEMON_WORKER=$FAKE DAEMON_DATA=$DATA
. "$SRC/tests/integration/lib_api.sh"


# wait_progress ID MIN_DONE [STALL]: until the job's progress.done >= MIN_DONE; PSTATE is
# the job's state in that same reply. Gives up when no job changed for STALL seconds.
wait_progress() {
  stall_reset
  while :; do
    r=$(curl -s -m "$CURL_M" "$URL/v1/jobs/$1" | $PY -c "import sys,json; j=json.load(sys.stdin); p=j.get('progress') or {}; print(p.get('done',0), j.get('state'))" 2>/dev/null)
    d=${r%% *}; PSTATE=${r#* }
    [ "${d:-0}" -ge "$2" ] 2>/dev/null && return 0
    stalled "$(jobs_sig)" "${3:-$STALL_S}" && return 1
    sleep 0.05
  done
}
worker_pid() { # the live worker of job ID (from the work dir's log)
  cat "${STATE:-$T/state}/jobs/$1/ckpt/pid" 2>/dev/null
}
# expect NAME 'SHELL CONDITION' — the whole condition is evaluated (with && chains).
expect() { _n=$1; shift; if eval "$1"; then ok "$_n"; else nok "$_n"; fi; }
