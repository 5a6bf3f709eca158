#!/bin/sh
# test_startup.sh — a newcomer's first hour (issue 8), with the real lrqd,
# lrqctl and lrq-worker:
#   - lrqd runs from the build tree with a relative --worker and no
#     --schema-dir (migrations compiled in), and completes a job that
#     `lrqctl submit --wait` follows to the end;
#   - relative --state-dir / --data-root / --port-file are resolved at start-up;
#   - a missing or non-executable worker stops lrqd at once, naming --worker;
#   - a job that fails before its worker says anything (the worker cannot be
#     spawned) still ends every watcher: SSE, watch, wait and submit --wait see
#     "failed" and exit 1;
#   - a worker error names its spec field once.
# No step depends on timing: waits follow lrqd's own output (port file, SSE
# events, lrqctl's lines) and each has a generous backstop (BACKSTOP seconds).
set -u
SRC=${LRQ_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BLD=${LRQ_BUILDDIR:-$SRC}
SHARED=${LRQ_SHARED:-$SRC/../shared}
SHARED=$(cd "$SHARED" && pwd) || { echo "1..0 # SKIP no shared dir"; exit 0; }
PY=/usr/bin/python3; [ -x $PY ] || PY=python3
BACKSTOP=${LRQ_TEST_BACKSTOP:-600}
command -v curl >/dev/null || { echo "1..0 # SKIP curl(1) is not installed"; exit 0; }
[ -f "$SHARED/models/stories260K/stories260K.bin" ] || { echo "1..0 # SKIP stories260K not found"; exit 0; }
T=$(mktemp -d "${TMPDIR:-/tmp}/lrq-start.XXXXXX")
T=$(cd "$T" && pwd -P)
n=0; fails=0; DPID=; BG=
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
expect() { _n=$1; shift; if eval "$1"; then ok "$_n"; else nok "$_n"; [ -n "${2:-}" ] && echo "# $2"; fi; }
diag() { echo "# $*"; }
cleanup() {
  for p in $DPID $BG; do kill -KILL "$p" 2>/dev/null; done
  for f in "$T"/*/jobs/*/ckpt/pid; do [ -f "$f" ] && kill -KILL -- "-$(cat "$f")" 2>/dev/null; done
  if [ "$fails" -ne 0 ]; then
    diag "kept $T"; for f in "$T"/*.log; do [ -f "$f" ] && sed "s|^|# $(basename "$f"): |" "$f" | tail -n 30; done
  else rm -rf "$T"; fi
}
trap cleanup EXIT
# until_file FILE PATTERN PID: wait until FILE has a line matching PATTERN, while PID lives (backstop)
until_file() {
  _end=$(( $(date +%s) + BACKSTOP ))
  while ! grep -q -- "$2" "$1" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || grep -q -- "$2" "$1" 2>/dev/null || return 1
    [ "$(date +%s)" -le "$_end" ] || return 1
    sleep 0.05
  done
}
# start_lrqd DIR LOG PORTFILE ARGS...: lrqd in DIR (cwd) with --port-file PORTFILE
# (relative to DIR); sets DPID, URL
start_lrqd() {
  _dir=$1 _log=$2 _pf=$3; shift 3
  case $_pf in /*) _pa=$_pf ;; *) _pa=$_dir/$_pf ;; esac
  rm -f "$_pa"
  (cd "$_dir" && exec "$BLD/lrqd" --listen 127.0.0.1:0 --no-auth --grace-s 3 --port-file "$_pf" "$@") > "$_log" 2>&1 &
  DPID=$!
  until_file "$_pa" . "$DPID" || { diag "lrqd did not start: $(tail -n 3 "$_log")"; return 1; }
  URL=http://127.0.0.1:$(cat "$_pa")
}
stop_lrqd() { kill -TERM "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; DPID=; }
ctl() { LRQ_SERVER=$URL timeout "$BACKSTOP" "$BLD/lrqctl" "$@"; }
job_field() {
  curl -s -m 30 "$URL/v1/jobs/$1" | $PY -c "import sys,json; v=json.load(sys.stdin).get('$2'); print('' if v is None else v)" 2>/dev/null
}
relpath() { $PY -c "import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))" "$1" "$2"; }

echo "1..10"

# 1–2. A missing or non-executable worker: refused at start-up, naming --worker.
out=$(timeout "$BACKSTOP" "$BLD/lrqd" --state-dir "$T/st0" --listen 127.0.0.1:0 --no-auth --worker /nonexistent 2>&1)
rc=$?
expect "lrqd --worker /nonexistent exits non-zero at once, naming --worker" \
  '[ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "$out" | grep -q -- "--worker /nonexistent: No such file"' "rc $rc: $out"
printf '#!/bin/sh\nexit 0\n' > "$T/noexec"; chmod 644 "$T/noexec"
out=$(timeout "$BACKSTOP" "$BLD/lrqd" --state-dir "$T/st0" --listen 127.0.0.1:0 --no-auth --worker "$T/noexec" 2>&1)
rc=$?
expect "…and a non-executable one likewise" \
  '[ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "$out" | grep -q -- "--worker .*not executable"' "rc $rc: $out"

# 3–5. From the build dir: relative --worker, no --schema-dir, relative paths in the spec.
mkdir -p "$T/a"
cat > "$T/job.json" <<EOS
{"name": "startup-rtn", "model": "models/stories260K/stories260K.bin", "method": "rtn",
 "weight": {"bits": 4, "group_size": 0},
 "calibration": {"path": "data/tinystories/calib.txt", "samples": 2, "seq_len": 64},
 "eval": {"path": "data/tinystories/eval.txt", "seq_len": 64, "max_windows": 2},
 "export": ["hf"], "threads": 1}
EOS
start_lrqd "$BLD" "$T/a.log" "$T/a/port" --worker ./lrq-worker --state-dir "$T/a/state" --data-root "$SHARED" \
  || { echo "Bail out! lrqd did not start from the build dir"; exit 1; }
ctl submit "$T/job.json" --wait > "$T/sub.out" 2> "$T/sub.err"
rc=$?
id=$(head -n 1 "$T/sub.out")
expect "from the build dir (--worker ./lrq-worker, no --schema-dir): submit --wait completes the job" \
  '[ $rc -eq 0 ] && [ "$(job_field "$id" state)" = succeeded ]' "rc $rc; $(tail -n 3 "$T/sub.out" "$T/sub.err" | tr '\n' ' ')"
expect "…the migrations are the built-in ones; the worker path is absolute" \
  'grep -q "schema v$(ls "$SRC/schema" | sed -n "s/^0*\([0-9][0-9]*\)_.*\.sql$/\1/p" | sort -n | tail -n 1), worker $BLD/lrq-worker," "$T/a.log"' "$(grep listening "$T/a.log")"
# A worker error names its field once.
sed 's|"models/stories260K/stories260K.bin"|"models/stories260K/tok512.bin"|' "$T/job.json" > "$T/bad.json"
ctl submit "$T/bad.json" --wait > "$T/bad.out" 2>&1
rc=$?
bid=$(head -n 1 "$T/bad.out")
berr=$(job_field "$bid" error)
expect "a worker error names its spec field once (and submit --wait exits 1)" \
  '[ $rc -eq 1 ] && case "$berr" in "model: /"*) true ;; *) false ;; esac && ! echo "$berr" | grep -q "model: model:"' \
  "rc $rc, error: $berr"
stop_lrqd

# 6. Relative --state-dir, --data-root, --worker and --port-file, resolved at start-up.
mkdir -p "$T/b"
rw=$(relpath "$BLD/lrq-worker" "$T/b"); rd=$(relpath "$SHARED" "$T/b")
start_lrqd "$T/b" "$T/b.log" port --worker "$rw" --state-dir state --data-root "$rd" \
  || { echo "Bail out! lrqd did not start with relative paths"; exit 1; }
ctl submit "$T/job.json" --wait > "$T/sub2.out" 2>&1
rc=$?
id2=$(head -n 1 "$T/sub2.out")
expect "relative --state-dir/--data-root/--worker/--port-file (cwd $T/b): the job succeeds in state/jobs" \
  '[ $rc -eq 0 ] && [ -f "$T/b/state/jobs/$id2/artifacts/hf/model.safetensors" ]' "rc $rc; $(tail -n 2 "$T/sub2.out")"
stop_lrqd

# 7–10. A job that fails before its worker speaks. workers = 1: job A's worker
# holds the slot until we release it, so B's watchers attach while B is queued;
# then the worker script loses its x bit, and B's spawns fail (max_attempts 2).
mkdir -p "$T/c"
cat > "$T/c/w.sh" <<EOS
#!/bin/sh
# holds until released (bounded), then fails permanently
i=0; while [ ! -f "$T/c/release" ] && [ \$i -lt $((BACKSTOP * 20)) ]; do sleep 0.05; i=\$((i + 1)); done
echo '{"event":"error","message":"held","field":null}'; exit 65
EOS
chmod 755 "$T/c/w.sh"
start_lrqd "$T/c" "$T/c.log" "$T/c/port" --worker "$T/c/w.sh" --state-dir "$T/c/state" --data-root "$SHARED" \
  --workers 1 || { echo "Bail out! lrqd did not start"; exit 1; }
ctl submit "$T/job.json" > "$T/c/a.id"
sed 's|"threads": 1}|"threads": 1, "max_attempts": 2}|' "$T/job.json" > "$T/c/b.json"
# wait until A runs (its worker holds), so that B stays queued
until_file "$T/c.log" "job $(cat "$T/c/a.id"): started worker" "$DPID"
LRQ_SERVER=$URL timeout "$BACKSTOP" "$BLD/lrqctl" submit "$T/c/b.json" --wait > "$T/c/sw.out" 2>&1 &
SW=$!; BG="$BG $SW"
until_file "$T/c/sw.out" "queued" "$SW"
B=$(head -n 1 "$T/c/sw.out")
timeout "$BACKSTOP" curl -s -N "$URL/v1/jobs/$B/events" > "$T/c/sse.out" 2>&1 &
SE=$!; BG="$BG $SE"
LRQ_SERVER=$URL timeout "$BACKSTOP" "$BLD/lrqctl" watch "$B" > "$T/c/watch.out" 2>&1 &
WA=$!; BG="$BG $WA"
LRQ_SERVER=$URL timeout "$BACKSTOP" "$BLD/lrqctl" wait "$B" > "$T/c/wait.out" 2>&1 &
WT=$!; BG="$BG $WT"
until_file "$T/c/sse.out" "event: state" "$SE"
until_file "$T/c/watch.out" "queued" "$WA"
chmod 644 "$T/c/w.sh"
touch "$T/c/release"
wait "$SW"; rsw=$?
wait "$SE"; rse=$?
wait "$WA"; rwa=$?
wait "$WT"; rwt=$?
BG=
berr=$(job_field "$B" error)
expect "spawn failures: the job fails after its 2 attempts with the reason" \
  '[ "$(job_field "$B" state)" = failed ] && [ "$(job_field "$B" attempts)" = 2 ] && echo "$berr" | grep -q "cannot start the worker"' \
  "state $(job_field "$B" state), attempts $(job_field "$B" attempts), error: $berr"
expect "…the SSE stream ends (curl exit 0) after a final state event \"failed\"" \
  '[ $rse -eq 0 ] && tail -n 3 "$T/c/sse.out" | grep -q "\"state\":\"failed\""' "curl rc $rse; $(tail -c 300 "$T/c/sse.out")"
expect "…submit --wait and wait exit 1" '[ $rsw -eq 1 ] && [ $rwt -eq 1 ]' "submit --wait rc $rsw, wait rc $rwt"
expect "…watch prints the failure and exits 1" '[ $rwa -eq 1 ] && grep -q "job $B: failed" "$T/c/watch.out"' \
  "watch rc $rwa: $(tail -n 2 "$T/c/watch.out")"
stop_lrqd
[ "$fails" -eq 0 ]
