# lib_api.sh — talking to a test lrqd (sourced by lib.sh and lib_real.sh, after they set
# T, SRC, LRQD, PY, diag, and DAEMON_WORKER / DAEMON_DATA for start_daemon).
# State dir: $STATE (default $T/state).
#
# No wait here has a wall-clock budget for the work itself: a wait gives up when
# nothing has changed for STALL_S seconds (the daemon's job list, a work dir's
# progress.jsonl, a process still starting), so a slow or loaded machine only makes
# the tests slower. DEADLINE (epoch seconds, if set) is a last-resort cap so that a
# livelocked build still ends. curl's -m is a hang guard, far above any real reply.
STALL_S=${LRQ_TEST_STALL_S:-60}
CURL_M=${LRQ_TEST_CURL_S:-30}

# stalled SIGNATURE LIMIT: true once SIGNATURE has not changed for LIMIT seconds (or past
# DEADLINE). Reset with stall_reset before each wait.
stall_reset() { _st_sig=__none__; _st_t=$(date +%s); }
stalled() {
  _st_now=$(date +%s)
  if [ "$1" != "$_st_sig" ]; then _st_sig=$1; _st_t=$_st_now; fi
  [ -n "${DEADLINE:-}" ] && [ "$_st_now" -gt "$DEADLINE" ] && { diag "DEADLINE reached"; return 0; }
  [ $((_st_now - _st_t)) -gt "$2" ]
}

# start_daemon [extra flags...]: sets DPID and URL (waits while lrqd lives and has not
# written its port file; a hang guard of STALL_S)
start_daemon() {
  rm -f "$T/port"
  "$LRQD" --state-dir "${STATE:-$T/state}" --listen 127.0.0.1:0 --port-file "$T/port" \
    --data-root "$DAEMON_DATA" --worker "$DAEMON_WORKER" --grace-s 3 "$@" >> "$T/lrqd.out" 2>&1 &
  DPID=$!
  stall_reset
  while [ ! -s "$T/port" ] && kill -0 "$DPID" 2>/dev/null && ! stalled x "$STALL_S"; do sleep 0.02; done
  [ -s "$T/port" ] || { diag "lrqd did not start"; return 1; }
  URL=http://127.0.0.1:$(cat "$T/port")
}
# stop_daemon [SIG]: signal and wait for the exit (lrqd's own bound is grace_s = 3 s for
# its workers; the guard here is STALL_S); sets DRC
stop_daemon() {
  kill -"${1:-TERM}" "$DPID" 2>/dev/null
  stall_reset
  while kill -0 "$DPID" 2>/dev/null && ! stalled x "$STALL_S"; do sleep 0.05; done
  if kill -0 "$DPID" 2>/dev/null; then kill -KILL "$DPID"; DRC=timeout; else wait "$DPID"; DRC=$?; fi
  DPID=
}
# api METHOD PATH [curl args...]: body in $T/body, status in $CODE, headers in $T/hdr
api() {
  m=$1; p=$2; shift 2
  CODE=$(curl -s -m "$CURL_M" -X "$m" -o "$T/body" -D "$T/hdr" -w '%{http_code}' "$@" "$URL$p")
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
  curl -s -m "$CURL_M" "$URL/v1/jobs/$1" | $PY -c "import sys,json; v=json.load(sys.stdin).get('$2'); print('' if v is None else v)" 2>/dev/null
}
# jobs_sig: changes whenever any job of the daemon changes (state, attempts, progress)
jobs_sig() { curl -s -m "$CURL_M" "$URL/v1/jobs?limit=500" 2>/dev/null | cksum; }
# wait_state ID STATE [STALL]: until the job is in STATE; gives up when it reaches another
# terminal state or when no job of the daemon changed for STALL seconds (default STALL_S)
wait_state() {
  stall_reset
  while :; do
    s=$(job_field "$1" state)
    [ "$s" = "$2" ] && return 0
    case $s in succeeded|failed|cancelled) break ;; esac
    stalled "$(jobs_sig)" "${3:-$STALL_S}" && break
    sleep 0.1
  done
  diag "job $1: state $(job_field "$1" state), wanted $2 (error: $(job_field "$1" error))"; return 1
}
# wait_for 'SHELL CONDITION' [STALL]: until the condition holds; gives up when no job of
# the daemon changed for STALL seconds (for effects of the daemon: log lines, held jobs)
wait_for() {
  stall_reset
  until eval "$1"; do
    stalled "$(jobs_sig)$(wc -c < "$T/lrqd.out" 2>/dev/null)" "${2:-$STALL_S}" && return 1
    sleep 0.1
  done
}
# alive PID: running and not a zombie (orphans may not be reaped in containers)
alive() { [ -r "/proc/$1/stat" ] && ! awk '{exit !($3 == "Z")}' "/proc/$1/stat" 2>/dev/null; }
