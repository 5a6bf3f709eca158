#!/bin/sh
# make demo: start lrqd on a temporary state dir, submit an LRQ job on the bundled
# stories260K model through the REST API with lrqctl, follow it, print the metrics
# and the artifact list, stop the daemon.
set -eu
build=${1:-.}
src=${2:-.}
build=$(cd "$build" && pwd) || exit 2
src=$(cd "$src" && pwd) || exit 2
shared=$(cd "$src/../shared" && pwd)
state=$(mktemp -d "${TMPDIR:-/tmp}/lrq-demo.XXXXXX")
lrqd="$build/lrqd"
lrqctl="$build/lrqctl"
port=${LRQ_DEMO_PORT:-0}

cleanup() {
    if [ -n "${dpid:-}" ] && kill -0 "$dpid" 2>/dev/null; then
        kill -TERM "$dpid"; wait "$dpid" 2>/dev/null || true
    fi
    [ "${LRQ_DEMO_KEEP:-0}" = 1 ] || rm -rf "$state"
}
trap cleanup EXIT INT TERM

echo "== starting lrqd (state dir $state)"
"$lrqd" --listen "127.0.0.1:$port" --state-dir "$state" --data-root "$shared" \
    --worker "$build/lrq-worker" --port-file "$state/port" \
    --no-auth 2> "$state/lrqd.log" &
dpid=$!
# lrqd writes the port file once it listens; waiting is bounded by lrqd itself
# (it either listens or exits), with a 5-minute backstop for a hung start.
i=0
while [ ! -s "$state/port" ]; do
    i=$((i + 1)); [ $i -lt 3000 ] || { echo "lrqd did not start:"; cat "$state/lrqd.log"; exit 1; }
    kill -0 "$dpid" 2>/dev/null || { echo "lrqd exited:"; cat "$state/lrqd.log"; exit 1; }
    sleep 0.1
done
export LRQ_SERVER="http://127.0.0.1:$(cat "$state/port")"
echo "== lrqd listening on $LRQ_SERVER"

cat > "$state/job.json" <<EOS
{"name": "demo: stories260K W4 LRQ",
 "model": "$shared/models/stories260K/stories260K.bin", "method": "lrq",
 "weight": {"bits": 4, "group_size": 0, "init": "mse"},
 "calibration": {"path": "$shared/data/tinystories/calib.txt", "samples": 128, "seq_len": 256},
 "eval": {"path": "$shared/data/tinystories/eval.txt", "seq_len": 256},
 "lrq": {"iterations": ${LRQ_DEMO_ITERS:-400}, "lr": 3e-3, "batch_size": 2, "checkpoint_every_s": 10},
 "export": ["hf"], "seed": 0, "threads": 2}
EOS
echo "== submitting"
cat "$state/job.json"
id=$("$lrqctl" submit "$state/job.json")
echo "== job $id submitted; following it"
"$lrqctl" watch "$id" || true
"$lrqctl" wait "$id" > /dev/null
echo "== metrics"
"$lrqctl" metrics "$id"
echo "== artifacts"
"$lrqctl" artifacts "$id"
echo "== job"
"$lrqctl" status "$id"
