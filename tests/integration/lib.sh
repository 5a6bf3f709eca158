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

# start_daemon [extra flags...]: sets DPID and URL
start_daemon() {
  rm -f "$T/port"
  "$LRQD" --state-dir "${STATE:-$T/state}" --listen 127.0.0.1:0 --port-file "$T/port" --schema-dir "$SRC/schema" \
    --data-root "$DATA" --worker "$FAKE" --grace-s 3 "$@" >> "$T/lrqd.out" 2>&1 &
  DPID=$!
  i=0
  while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  [ -s "$T/port" ] || { diag "lrqd did not start"; return 1; }
  URL=http://127.0.0.1:$(cat "$T/port")
}

# stop_daemon [SIG]: signal and wait (bounded) for the exit; sets DRC
stop_daemon() {
  kill -"${1:-TERM}" "$DPID" 2>/dev/null
  i=0
  while kill -0 "$DPID" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
  if kill -0 "$DPID" 2>/dev/null; then kill -KILL "$DPID"; DRC=timeout; else wait "$DPID"; DRC=$?; fi
  DPID=
}

# api METHOD PATH [curl args...]: body in $T/body, status in $CODE, headers in $T/hdr
api() {
  m=$1; p=$2; shift 2
  CODE=$(curl -s -m 10 -X "$m" -o "$T/body" -D "$T/hdr" -w '%{http_code}' "$@" "$URL$p")
}
body_has() { grep -q -- "$1" "$T/body"; }
hdr_has() { tr -d '\r' < "$T/hdr" | grep -qi -- "$1"; }

# submit JSON: sets JOB
submit() {
  api POST /v1/jobs -H 'Content-Type: application/json' --data-binary "$1"
  JOB=$(sed -n 's/^{"id":\([0-9]*\),.*/\1/p' "$T/body")
}
# field ID KEY: a top-level scalar of the job object (state, attempts, error...)
job_field() {
  curl -s -m 5 "$URL/v1/jobs/$1" | $PY -c "import sys,json; v=json.load(sys.stdin).get('$2'); print('' if v is None else v)" 2>/dev/null
}
# wait_state ID STATE [SECONDS]
wait_state() {
  end=$(( $(date +%s) + ${3:-20} ))
  while [ "$(date +%s)" -le "$end" ]; do
    [ "$(job_field "$1" state)" = "$2" ] && return 0
    sleep 0.1
  done
  diag "job $1: state $(job_field "$1" state), wanted $2"; return 1
}
# wait_progress ID MIN_DONE [SECONDS]: until the job's progress.done >= MIN_DONE
wait_progress() {
  end=$(( $(date +%s) + ${3:-20} ))
  while [ "$(date +%s)" -le "$end" ]; do
    d=$(curl -s -m 5 "$URL/v1/jobs/$1" | $PY -c "import sys,json; p=json.load(sys.stdin).get('progress') or {}; print(p.get('done',0))" 2>/dev/null)
    [ "${d:-0}" -ge "$2" ] && return 0
    sleep 0.05
  done
  return 1
}
worker_pid() { # the live worker of job ID (from the work dir's log)
  cat "${STATE:-$T/state}/jobs/$1/ckpt/pid" 2>/dev/null
}
# expect NAME 'SHELL CONDITION' — the whole condition is evaluated (with && chains).
expect() { _n=$1; shift; if eval "$1"; then ok "$_n"; else nok "$_n"; fi; }
# alive PID: running and not a zombie (orphans may not be reaped in containers)
alive() { [ -r "/proc/$1/stat" ] && ! awk '{exit !($3 == "Z")}' "/proc/$1/stat" 2>/dev/null; }
