#!/bin/sh
# pipeline_quality.sh BUILD_DIR SHARED_DIR [OUT_DIR] — sequential vs parallel block
# inputs (spec "pipeline", docs/daemon.md) on stories260K and babyllama-tok105: the same
# LRQ job (W3 per-channel, mse init, 16 × 128 calibration tokens, 200 iterations per
# block, threads 1) run twice by lrq-worker, and the worker's own evaluation on 20
# windows of 256 eval tokens. Prints one table row per run: the final block losses,
# the perplexity of the quantized model, KL(FP ‖ Q), top-1 agreement and the wall time
# of the run. The block losses of the two modes are not comparable (different inputs);
# the end-to-end numbers are.
# Not a test (its numbers are reported, not asserted); ~1 min on 2 idle cores.
set -eu
B=$1; S=$2; O=${3:-$(mktemp -d "${TMPDIR:-/tmp}/lrq-pipe.XXXXXX")}
W=$B/lrq-worker
D=$S/data/tinystories
export OPENBLAS_NUM_THREADS=1
printf '| model | pipeline | loss of each block (end, vs the FP block on its own input) | quantized ppl | FP ppl | KL(FP‖Q) | top-1 agreement | wall s |\n|---|---|---|---|---|---|---|---|\n'
for m in stories260K:models/stories260K/stories260K.bin:models/stories260K/tok512.bin \
         babyllama-tok105:models/babyllama-tok105/model5000.bin:models/babyllama-tok105/tok105.bin; do
  name=${m%%:*}; r=${m#*:}; model=${r%%:*}; tok=${r#*:}
  for p in sequential parallel; do
    wd=$O/$name-$p
    rm -rf "$wd"; mkdir -p "$wd"
    cat > "$wd.json" <<EOS
{"model": "$S/$model", "tokenizer": "$S/$tok", "method": "lrq", "pipeline": "$p",
 "weight": {"bits": 3, "group_size": 0, "init": "mse"},
 "calibration": {"path": "$D/calib.txt", "samples": 16, "seq_len": 128},
 "lrq": {"iterations": 200, "lr": 3e-3, "batch_size": 2, "checkpoint_every_s": 0},
 "eval": {"path": "$D/eval.txt", "seq_len": 256, "max_windows": 20},
 "export": [], "seed": 1, "threads": 1}
EOS
    t0=$(date +%s.%N)
    "$W" run --spec "$wd.json" --workdir "$wd" > "$wd.out" 2> "$wd.err" || { echo "| $name | $p | failed: $(tail -n 1 "$wd.err") |"; continue; }
    t1=$(date +%s.%N)
    /usr/bin/python3 - "$wd/metrics.json" "$name" "$p" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
q, fp = m.get("quantized", {}), m.get("fp", {})
blocks = " ".join("%.3g" % b["loss_end"] for b in m.get("blocks", []))
print("| %s | %s | %s | %.4f | %.4f | %.4f | %.3f | %s |" % (sys.argv[2], sys.argv[3], blocks,
      q.get("perplexity", float("nan")), fp.get("perplexity", float("nan")),
      q.get("kl_divergence", float("nan")), q.get("top1_agreement", float("nan")), sys.argv[4]))
PY
  done
done
