# lib_real.sh — helpers for the fault-injection tests that run the REAL lrqd and
# lrq-worker on the bundled stories260K model (sourced): TAP output, a daemon on
# 127.0.0.1 (helpers shared with lib.sh in lib_api.sh), an
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
# Waits end on "no change for STALL_S" (lib_api.sh); DEADLINE (epoch seconds) is only
# a last-resort cap so that a livelocked build still ends. Scripts rescale both from
# their reference run.
DEADLINE=$(( $(date +%s) + ${LRQ_TEST_BUDGET_S:-900} ))
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

DAEMON_WORKER=$WORKER DAEMON_DATA=$SHARED
. "$SRC/tests/integration/lib_api.sh"


# spec NAME ITERATIONS [EXTRA]: the small LRQ job (3-6 s); EXTRA is appended to the top-level object
spec() {
  printf '{"name":"%s","model":"%s","method":"lrq","weight":{"bits":3,"group_size":0,"init":"minmax"},' "$1" "$MODEL"
  printf '"calibration":{"path":"%s","samples":12,"seq_len":64},' "$CALIB"
  printf '"lrq":{"iterations":%s,"lr":2e-3,"batch_size":2,"checkpoint_every_s":0.05},' "$2"
  printf '"export":["hf"],"seed":3,"threads":1%s}\n' "${3:-}"
}
# worker_pids WORKDIR: live lrq-worker processes for that work dir. A task whose
# parent is itself one of them is not a second worker: LeakSanitizer's tracer, which
# an ASan build clone()s at exit, is a separate process with the worker's cmdline.
worker_pids() {
  _wp=$(pgrep -f -- "--workdir $1\$" 2>/dev/null) || return 0
  for _p in $_wp; do
    _pp=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$_p/status" 2>/dev/null)
    case " $(echo $_wp) " in *" $_pp "*) ;; *) echo "$_p" ;; esac
  done
}
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
