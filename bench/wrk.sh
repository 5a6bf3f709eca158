#!/bin/sh
# wrk.sh — HTTP load on lrqd while a real LRQ job computes (not part of make check).
#
#   sh bench/wrk.sh [BUILDDIR] [SHARED]      (defaults: $LRQ_BUILDDIR or the source
#                                              dir, $LRQ_SHARED or SRC/../shared)
# Env: WRK_SECONDS (10), WRK_THREADS (1), WRK_CONNS (16), WRK_ITERS (LRQ iterations
# per block; the job must outlast the run — the script checks and says so).
#
# Starts lrqd on 127.0.0.1 (ephemeral port, temp state dir, real lrq-worker),
# submits a stories260K LRQ job, waits until it reconstructs, then runs
# `wrk --latency` against GET /v1/jobs/{id} and prints requests/s, p50/p99
# latency, errors (socket errors + non-2xx), lrqd's RSS before/after/peak, and
# how far the job advanced during the run. Cleans up everything it started.
set -u
LRQ_SRCDIR=${LRQ_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
LRQ_BUILDDIR=${1:-${LRQ_BUILDDIR:-$LRQ_SRCDIR}}
LRQ_SHARED=${2:-${LRQ_SHARED:-$LRQ_SRCDIR/../shared}}
# Absolute, so that nothing depends on the directory lrqd or a worker runs in.
LRQ_BUILDDIR=$(cd "$LRQ_BUILDDIR" && pwd) || exit 2
LRQ_SHARED=$(cd "$LRQ_SHARED" && pwd) || exit 2
export LRQ_SRCDIR LRQ_BUILDDIR LRQ_SHARED
SECS=${WRK_SECONDS:-10}
THREADS=${WRK_THREADS:-1}
CONNS=${WRK_CONNS:-16}
ITERS=${WRK_ITERS:-6000}
command -v wrk >/dev/null || { echo "wrk(1) is not installed"; exit 1; }
. "$LRQ_SRCDIR/tests/integration/lib_real.sh"

rss() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status" 2>/dev/null; }   # kB
done_now() { curl -s -m 5 "$URL/v1/jobs/$1" | $PY -c "import sys,json; p=json.load(sys.stdin).get('progress') or {}; print(p.get('done',0), p.get('total',0))" 2>/dev/null; }

start_daemon --log-level notice || { echo "lrqd did not start"; exit 1; }
# checkpoint_every_s 60: a realistic job, not the fault tests' 50 ms.
submit "$(spec wrk "$ITERS" | sed 's/"checkpoint_every_s":0.05/"checkpoint_every_s":60/')"; J=$JOB
[ -n "$J" ] || exit 1
# Wait (bounded) until the worker reports reconstruction progress.
t_end=$(( $(date +%s) + 30 ))
while [ "$(date +%s)" -le "$t_end" ]; do
  set -- $(done_now "$J"); [ "${1:-0}" -gt 0 ] && break; sleep 0.2
done
before=$(done_now "$J")
rss0=$(rss "$DPID" VmRSS)
wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "$URL/v1/jobs/$J" > "$T/wrk.out" 2>&1
rss1=$(rss "$DPID" VmRSS); hwm=$(rss "$DPID" VmHWM)
after=$(done_now "$J")
state=$(job_field "$J" state)
hz=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$URL/healthz")
api POST "/v1/jobs/$J/cancel"
wait_state "$J" cancelled 30 >/dev/null

rps=$(awk '/^Requests\/sec:/ { print $2 }' "$T/wrk.out")
reqs=$(awk '/requests in/ { print $1 }' "$T/wrk.out")
p50=$(awk '/^ +50%/ { print $2 }' "$T/wrk.out")
p99=$(awk '/^ +99%/ { print $2 }' "$T/wrk.out")
sock=$(awk '/Socket errors:/ { gsub(",", ""); print "connect " $4 ", read " $6 ", write " $8 ", timeout " $10 }' "$T/wrk.out")
non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$T/wrk.out")
echo "lrqd under wrk: GET /v1/jobs/$J for ${SECS} s, $THREADS thread(s), $CONNS connections, while job $J (LRQ, stories260K, $ITERS it/block) computes"
echo "  requests:        ${reqs:-?} (${rps:-?} req/s)"
echo "  latency:         p50 ${p50:-?}, p99 ${p99:-?}"
echo "  errors:          non-2xx ${non2xx:-0}; socket errors: ${sock:-none}"
echo "  lrqd RSS:        ${rss0:-?} kB before, ${rss1:-?} kB after, peak ${hwm:-?} kB"
echo "  job progress:    done/total ${before:-?} before → ${after:-?} after (state $state during the run; healthz $hz after)"
case $state in running) ;; *) echo "  WARNING: the job was not running for the whole run; raise WRK_ITERS" ;; esac
[ -n "$rps" ] || { echo "wrk output:"; cat "$T/wrk.out"; fails=1; exit 1; }
stop_daemon TERM
exit 0
