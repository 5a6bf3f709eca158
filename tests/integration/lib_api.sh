# lib_api.sh — talking to a test lrqd (sourced by lib.sh and lib_real.sh, after they set
# T, SRC, LRQD, PY, diag, and DAEMON_WORKER / DAEMON_DATA for start_daemon).
# State dir: $STATE (default $T/state). Every wait is bounded (and by DEADLINE if set).

# start_daemon [extra flags...]: sets DPID and URL
start_daemon() {
  rm -f "$T/port"
  "$LRQD" --state-dir "${STATE:-$T/state}" --listen 127.0.0.1:0 --port-file "$T/port" --schema-dir "$SRC/schema" \
    --data-root "$DAEMON_DATA" --worker "$DAEMON_WORKER" --grace-s 3 "$@" >> "$T/lrqd.out" 2>&1 &
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
# api METHOD PATH [curl args...]: body in $T/body, status in $CODE, headers in $T/hdr
api() {
  m=$1; p=$2; shift 2
  CODE=$(curl -s -m 10 -X "$m" -o "$T/body" -D "$T/hdr" -w '%{http_code}' "$@" "$URL$p")
}
body_has() { grep -q -- "$1" "$T/body"; }
hdr_has() { tr -d '\r' < "$T/hdr" | grep -qi -- "$1"; }
# submit JSON: sets JOB (empty on failure)
submit() {
  api POST /v1/jobs -H 'Content-Type: application/json' --data-binary "$1"
  JOB=$(sed -n 's/^{"id":\([0-9]*\),.*/\1/p' "$T/body")
  [ -n "$JOB" ] || diag "submit failed: HTTP $CODE $(head -c 300 "$T/body")"
}
# job_field ID KEY: a top-level scalar of the job object (state, attempts, error...)
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
# alive PID: running and not a zombie (orphans may not be reaped in containers)
alive() { [ -r "/proc/$1/stat" ] && ! awk '{exit !($3 == "Z")}' "/proc/$1/stat" 2>/dev/null; }
