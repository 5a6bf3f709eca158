#!/bin/sh
# fake-worker.sh — a stand-in for lrq-worker in the daemon's integration tests.
# It follows the worker contract (docs/worker-protocol.md): `run --spec FILE --workdir DIR`,
# JSON progress lines on stdout (also appended to DIR/progress.jsonl), log lines
# on stderr, a checkpoint in DIR/ckpt so that a restarted run resumes, SIGTERM →
# checkpoint + exit 75, and on success DIR/metrics.json + DIR/artifacts/ whose
# content depends only on the step count (so interrupted and clean runs give
# identical artifacts).
#
# Behaviour is chosen by a word in the spec's "name" (or $FAKE_MODE):
#   fail        "error" event, exit 65            crash      exit 3 at step 3, every attempt
#   crashonce   exit 3 at step 3 on attempt 1     hang       stop printing, sleep
#   garbage     non-JSON lines between events     overlong   a 200 kB line
#   ignoreterm  ignore SIGTERM                    (default)  succeed
# Steps: $FAKE_STEPS (default 10), each $FAKE_STEP_S seconds (default 0.1);
# a name word "stepsN" overrides the step count.
set -u
spec=; wd=
while [ $# -gt 0 ]; do
  case $1 in
    run) ;;
    --spec) spec=$2; shift ;;
    --workdir) wd=$2; shift ;;
    *) echo "fake-worker: unknown argument $1" >&2; exit 64 ;;
  esac
  shift
done
[ -n "$spec" ] && [ -n "$wd" ] || { echo "fake-worker: need --spec and --workdir" >&2; exit 64; }
name=$(sed -n 's/^ *"name": *"\([^"]*\)".*/\1/p' "$spec" | head -n 1)
mode=${FAKE_MODE:-$name}
steps=${FAKE_STEPS:-10}
case $mode in *steps[0-9]*) steps=$(echo "$mode" | sed 's/.*steps\([0-9][0-9]*\).*/\1/') ;; esac
step_s=${FAKE_STEP_S:-0.1}
has() { case " $mode " in *"$1"*) return 0 ;; esac; return 1; }

emit() { echo "$1"; echo "$1" >> "$wd/progress.jsonl"; }
log() { echo "fake-worker[$$]: $*" >&2; }

mkdir -p "$wd/ckpt"
echo $$ > "$wd/ckpt/pid"
step=0; resumed=false
if [ -f "$wd/ckpt/step" ]; then step=$(cat "$wd/ckpt/step"); resumed=true; fi
attempt_file="$wd/ckpt/attempts"
attempt=$(( $(cat "$attempt_file" 2>/dev/null || echo 0) + 1 ))
echo "$attempt" > "$attempt_file"
log "start mode=$mode step=$step/$steps attempt=$attempt pid=$$"

term=0
if has ignoreterm; then trap '' TERM; else trap 'term=1' TERM; fi

emit "{\"event\":\"start\",\"job_method\":\"rtn\"}"
if [ "$resumed" = true ]; then emit "{\"event\":\"resume\",\"block\":0,\"iteration\":$step}"; fi
if has fail; then
  emit '{"event":"error","message":"weight.bits: unsupported by the fake model","field":"weight.bits"}'
  exit 65
fi
while [ "$step" -lt "$steps" ]; do
  sleep "$step_s"
  if [ "$term" = 1 ]; then
    echo "$step" > "$wd/ckpt/step.tmp" && mv "$wd/ckpt/step.tmp" "$wd/ckpt/step"
    emit "{\"event\":\"checkpoint\",\"block\":0,\"iteration\":$step}"
    log "SIGTERM: checkpoint at step $step, exit 75"
    exit 75
  fi
  step=$((step + 1))
  echo "$step" > "$wd/ckpt/step.tmp" && mv "$wd/ckpt/step.tmp" "$wd/ckpt/step"
  frac=$(awk "BEGIN{printf \"%.4f\", $step/$steps}")
  emit "{\"event\":\"progress\",\"stage\":\"reconstruct\",\"done\":$step,\"total\":$steps,\"elapsed_s\":0.5,\"fraction\":$frac,\"eta_s\":1.5,\"block\":0,\"blocks\":1,\"iteration\":$step,\"iterations\":$steps,\"loss\":0.25}"
  if has garbage; then echo "this is not json {{{"; echo '["an","array"]'; echo '{"no_event":1}'; fi
  if has overlong && [ "$step" -ge 2 ]; then head -c 200000 /dev/zero | tr '\0' 'x'; echo; fi
  if has hang && [ "$step" -ge 2 ]; then log "hanging"; while :; do sleep 1; done; fi
  if has crashonce; then
    if [ "$step" -eq 3 ] && [ "$attempt" -eq 1 ]; then log "crashing (once)"; exit 3; fi
  elif has crash && [ "$step" -ge 3 ]; then log "crashing"; exit 3; fi
done
mkdir -p "$wd/artifacts/hf"
seq 1 "$((steps * 5000))" > "$wd/artifacts/hf/model.safetensors.tmp"
mv "$wd/artifacts/hf/model.safetensors.tmp" "$wd/artifacts/hf/model.safetensors"
echo "{\"steps\":$steps}" > "$wd/artifacts/hf/config.json"
# artifacts.json: the worker owns the digests (daemon/manifest.h)
ent() { printf '{"path":"%s","size":%s,"sha256":"%s"}' "$1" "$(stat -c %s "$wd/artifacts/$1")" "$(sha256sum < "$wd/artifacts/$1" | cut -c1-64)"; }
printf '{"artifacts":[%s,%s]}\n' "$(ent hf/model.safetensors)" "$(ent hf/config.json)" > "$wd/artifacts.json.tmp"
mv "$wd/artifacts.json.tmp" "$wd/artifacts.json"
echo "{\"ppl_fp32\":10.5,\"ppl_quant\":11.25,\"steps\":$steps}" > "$wd/metrics.json.tmp"
mv "$wd/metrics.json.tmp" "$wd/metrics.json"
emit "{\"event\":\"done\",\"metrics\":{\"ppl_quant\":11.25}}"
log "done"
exit 0
