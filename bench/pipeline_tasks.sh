#!/bin/sh
# pipeline_tasks.sh BUILD_DIR SHARED_DIR — wall time of the block pipelines (issue 14,
# docs/daemon.md "Block-parallel tasks") on stories260K and babyllama-tok105 (5 blocks each):
# the LRQ job of tests/slurm/pipeline_quality.sh (W3 per-channel, mse init, 16 × 128
# calibration tokens, ITERS iterations per block, eval on 20 windows, hf export, threads 1 per
# process) run by lrq-worker as
#   sequential            one process (the paper's pipeline)
#   parallel              one process, every block from the FP inputs
#   parallel, tasks 2     the coordinator and 2 block tasks at once (2 ranges: blocks 0-1, 2-4)
#   parallel, tasks 5     the coordinator and 5 block tasks at once (one block each)
# Prints the wall time of each run, its ratio to the sequential run measured in the same
# invocation, the CPU count, and whether the tasks' hf artifact is bit-equal to the one-process
# parallel run's (it must be). Tasks at once are bounded by the cores: on 2 cores 5 tasks
# time-slice, so the ratio is bounded by about 2, not 5. Not a test; numbers are reported only.
set -eu
B=$(cd "$1" && pwd); S=$(cd "$2" && pwd)
W=$B/lrq-worker
D=$S/data/tinystories
ITERS=${LRQ_ITERS:-200}
O=$(mktemp -d "${TMPDIR:-/tmp}/lrq-ptasks.XXXXXX")
trap 'rm -rf "$O"' EXIT
export OPENBLAS_NUM_THREADS=1
echo "# $(nproc) CPUs (affinity), load average $(cut -d' ' -f1-3 /proc/loadavg); $ITERS iterations per block; threads 1 per process"
printf '| model | run | wall s | vs sequential | hf sha256 (first 12) | quantized ppl |\n|---|---|---|---|---|---|\n'
for m in stories260K:models/stories260K/stories260K.bin:models/stories260K/tok512.bin \
         babyllama-tok105:models/babyllama-tok105/model5000.bin:models/babyllama-tok105/tok105.bin; do
  name=${m%%:*}; r=${m#*:}; model=${r%%:*}; tok=${r#*:}
  seq_s=
  for run in sequential:1 parallel:1 parallel:2 parallel:5; do
    p=${run%%:*}; k=${run#*:}
    wd=$O/$name-$p-$k
    cat > "$wd.json" <<EOS
{"model": "$S/$model", "tokenizer": "$S/$tok", "method": "lrq", "pipeline": "$p", "tasks": $k,
 "weight": {"bits": 3, "group_size": 0, "init": "mse"},
 "calibration": {"path": "$D/calib.txt", "samples": 16, "seq_len": 128},
 "lrq": {"iterations": $ITERS, "lr": 3e-3, "batch_size": 2, "checkpoint_every_s": 0},
 "eval": {"path": "$D/eval.txt", "seq_len": 256, "max_windows": 20},
 "export": ["hf"], "seed": 1, "threads": 1}
EOS
    t0=$(date +%s.%N)
    "$W" run --spec "$wd.json" --workdir "$wd" > "$wd.out" 2> "$wd.err" || { echo "| $name | $p tasks $k | failed: $(tail -n 1 "$wd.err") |"; continue; }
    t1=$(date +%s.%N)
    s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    [ -n "$seq_s" ] || seq_s=$s
    sha=$(sha256sum "$wd/artifacts/hf/model.safetensors" | cut -c1-12)
    ppl=$(/usr/bin/python3 -c "import json,sys; print('%.4f' % json.load(open(sys.argv[1]))['quantized']['perplexity'])" "$wd/metrics.json")
    label=$p; [ "$p" = parallel ] && label="parallel, tasks $k"
    printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$label" "$s" "$(awk -v a="$seq_s" -v b="$s" 'BEGIN { printf "%.2f×", a / b }')" "$sha" "$ppl"
  done
done
