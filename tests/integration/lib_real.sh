# lib_real.sh — helpers for the fault-injection tests that run the REAL lrqd and
# lrq-worker on the bundled stories260K model (sourced). Adapted from lib.sh
# (which is bound to the fake worker): TAP output, a daemon on 127.0.0.1 with an
# ephemeral port and a temp state dir, bounded waits, and a cleanup trap that
# stops only the processes this test started (by pid) and unmounts its mounts.
# Requires curl(1), sha256sum(1), pgrep(1) and python3.
set -u
SRC=${LRQ_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BLD=${LRQ_BUILDDIR:-$SRC}
SHARED=${LRQ_SHARED:-$SRC/../shared}
LRQD=${LRQD:-$BLD/lrqd}
WORKER=${LRQ_WORKER:-$BLD/lrq-worker}
PY=/usr/bin/python3; [ -x $PY ] || PY=python3
MODEL=models/stories260K/stories260K.bin
CALIB=data/tinystories/calib.txt
export OPENBLAS_NUM_THREADS=1

command -v curl >/dev/null || { echo "1..0 # SKIP curl(1) is not installed"; exit 0; }
command -v pgrep >/dev/null || { echo "1..0 # SKIP pgrep(1) is not installed"; exit 0; }
[ -x "$LRQD" ] || { echo "1..0 # SKIP $LRQD not built"; exit 0; }
[ -x "$WORKER" ] || { echo "1..0 # SKIP $WORKER not built"; exit 0; }
[ -r "$SHARED/$MODEL" ] && [ -r "$SHARED/$CALIB" ] || { echo "1..0 # SKIP no stories260K under $SHARED"; exit 0; }
SHARED=$(cd "$SHARED" && pwd -P)

T=$(mktemp -d "${TMPDIR:-/tmp}/lrq-fr.XXXXXX")
T=$(cd "$T" && pwd -P)
STATE=$T/state
n=0; fails=0; DPID=; MONPID=; MOUNTS=; BGPIDS=
# Every bounded wait also stops at DEADLINE (epoch seconds), so that a broken
# build fails the script in bounded time instead of hanging the suite.
DEADLINE=$(( $(date +%s) + ${LRQ_TEST_BUDGET_S:-85} ))
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
diag() { echo "# $*"; }
# expect NAME 'SHELL CONDITION' [FIGURES]: the condition is eval'd; FIGURES go in a "# " comment.
expect() {
  if eval "$2"; then ok "$1"; else nok "$1"; fi
  [ -n "${3:-}" ] && diag "$3"
  return 0
}
# expect_todo NAME 'CONDITION' REASON: a known bug reported to the lead. Passing
# prints a plain "ok" (so a fix shows up as a pass, never as an XPASS error);
# failing prints "not ok … # TODO REASON" (an expected failure for the TAP driver).
expect_todo() {
  n=$((n + 1))
  if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1 # TODO $3"; fi
}

# Processes of this test: workers are found by their --workdir under $T.
test_pids() { pgrep -f -- "--workdir $T/" 2>/dev/null; }
cleanup() {
  [ -n "$MONPID" ] && kill "$MONPID" 2>/dev/null
  if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then kill -KILL "$DPID" 2>/dev/null; fi
  for p in $BGPIDS $(test_pids); do kill -KILL "$p" 2>/dev/null; done
  sleep 0.1
  for m in $MOUNTS; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  if [ "$fails" -ne 0 ] || [ -n "${KEEP:-}" ]; then
    diag "kept $T"; [ -f "$T/lrqd.out" ] && sed 's/^/# lrqd: /' "$T/lrqd.out" | tail -n 40
  else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# start_daemon [extra flags...]: sets DPID and URL (state dir $STATE, real worker)
start_daemon() {
  rm -f "$T/port"
  "$LRQD" --state-dir "$STATE" --listen 127.0.0.1:0 --port-file "$T/port" --schema-dir "$SRC/schema" \
    --data-root "$SHARED" --worker "$WORKER" --grace-s 3 "$@" >> "$T/lrqd.out" 2>&1 &
  DPID=$!
  _i=0
  while [ ! -s "$T/port" ] && [ $_i -lt 200 ] && kill -0 "$DPID" 2>/dev/null; do sleep 0.02; _i=$((_i + 1)); done
  [ -s "$T/port" ] || { diag "lrqd did not start"; return 1; }
  URL=http://127.0.0.1:$(cat "$T/port")
}
# stop_daemon [SIG]: signal and wait (bounded) for the exit; sets DRC
stop_daemon() {
  kill -"${1:-TERM}" "$DPID" 2>/dev/null
  _i=0
  while kill -0 "$DPID" 2>/dev/null && [ $_i -lt 400 ]; do sleep 0.05; _i=$((_i + 1)); done
  if kill -0 "$DPID" 2>/dev/null; then kill -KILL "$DPID"; DRC=timeout; else wait "$DPID"; DRC=$?; fi
  DPID=
}

# api METHOD PATH [curl args...]: body in $T/body, status in $CODE
api() {
  m=$1; p=$2; shift 2
  CODE=$(curl -s -m 10 -X "$m" -o "$T/body" -w '%{http_code}' "$@" "$URL$p")
}
# submit JSON: sets JOB (empty on failure)
submit() {
  api POST /v1/jobs -H 'Content-Type: application/json' --data-binary "$1"
  JOB=$(sed -n 's/^{"id":\([0-9]*\),.*/\1/p' "$T/body")
  [ -n "$JOB" ] || diag "submit failed: HTTP $CODE $(head -c 300 "$T/body")"
}
# job_field ID KEY: a top-level scalar of the job object
job_field() {
  curl -s -m 5 "$URL/v1/jobs/$1" | $PY -c "import sys,json; v=json.load(sys.stdin).get('$2'); print('' if v is None else v)" 2>/dev/null
}
# wait_state ID STATE [SECONDS]: also gives up when the job reaches another terminal state
wait_state() {
  _end=$(( $(date +%s) + ${3:-30} ))
  [ -n "${DEADLINE:-}" ] && [ "$DEADLINE" -lt "$_end" ] && _end=$DEADLINE
  while [ "$(date +%s)" -le "$_end" ]; do
    s=$(job_field "$1" state)
    [ "$s" = "$2" ] && return 0
    case $s in succeeded|failed|cancelled) break ;; esac
    sleep 0.1
  done
  diag "job $1: state $(job_field "$1" state), wanted $2 (error: $(job_field "$1" error))"; return 1
}
# spec NAME ITERATIONS [EXTRA]: the small LRQ job (3-6 s); EXTRA is appended to the top-level object
spec() {
  printf '{"name":"%s","model":"%s","method":"lrq","weight":{"bits":3,"group_size":0,"init":"minmax"},' "$1" "$MODEL"
  printf '"calibration":{"path":"%s","samples":12,"seq_len":64},' "$CALIB"
  printf '"lrq":{"iterations":%s,"lr":2e-3,"batch_size":2,"checkpoint_every_s":0.05},' "$2"
  printf '"export":["hf"],"seed":3,"threads":1%s}\n' "${3:-}"
}
# worker_pids WORKDIR: live lrq-worker processes for that work dir
worker_pids() { pgrep -f -- "--workdir $1\$" 2>/dev/null; }
# alive PID: running and not a zombie (orphans may not be reaped in containers)
alive() { [ -r "/proc/$1/stat" ] && ! awk '{exit !($3 == "Z")}' "/proc/$1/stat" 2>/dev/null; }
# sql DB QUERY: sqlite3(1), or Python's sqlite3 module where the CLI is missing
sql() {
  if command -v sqlite3 >/dev/null; then sqlite3 "$1" "$2"; else
    $PY -c "import sqlite3, sys; print('\n'.join('|'.join(str(x) for x in r) for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])))" "$1" "$2"
  fi
}
sha() { sha256sum "$1" 2>/dev/null | cut -c1-64; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# ckpt_ok FILE: the checkpoint's trailing sha256 (over everything before it) verifies —
# an independent check of the format in docs/worker-protocol.md (worker/wk_ckpt.c).
ckpt_ok() {
  $PY - "$1" <<'EOF'
import hashlib, sys
b = open(sys.argv[1], 'rb').read()
sys.exit(0 if len(b) > 48 and b[:8] == b'LRQCKPT1' and hashlib.sha256(b[:-32]).digest() == b[-32:] else 1)
EOF
}
