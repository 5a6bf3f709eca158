#!/bin/sh
# bf16 vs fp32 reconstruction quality on stories260K (issue 12): LRQ and FlexRound at W3
# (per-channel, mse init), calibration calib.txt 128 × 256 tokens, 500 iterations per block,
# lr 3e-3, batch 2, evaluated on eval.txt (seq 256, always in fp32). Same seed for all runs, so
# the only difference between a pair is compute.precision (and, across backends, the last bits).
# usage: bench/precision.sh BUILDDIR SHAREDDIR [BACKEND]
set -eu
build=$(cd "${1:-.}" && pwd) || exit 2
shared=$(cd "${2:-../shared}" && pwd) || exit 2
backend=${3:-openblas}
iters=${LRQ_ITERS:-500}
threads=${THREADS:-2}
out=$(mktemp -d "${TMPDIR:-/tmp}/lrq-precision.XXXXXX")
trap 'rm -rf "$out"' EXIT
for method in lrq flexround; do
    for prec in fp32 bf16; do
        name=$method-$prec
        cat > "$out/$name.json" <<EOS
{ "model": "$shared/models/stories260K/stories260K.bin", "method": "$method",
  "weight": {"bits": 3, "group_size": 0, "init": "mse"},
  "calibration": {"path": "$shared/data/tinystories/calib.txt", "samples": 128, "seq_len": 256},
  "eval": {"path": "$shared/data/tinystories/eval.txt", "seq_len": 256},
  "lrq": {"iterations": $iters, "lr": 3e-3, "batch_size": 2, "checkpoint_every_s": 0},
  "compute": {"precision": "$prec", "backend": "$backend"},
  "export": [], "seed": 0, "threads": $threads }
EOS
        "$build/lrq-worker" run --spec "$out/$name.json" --workdir "$out/$name" > "$out/$name.out" 2> "$out/$name.err" || {
            echo "precision: $name failed:"; tail -5 "$out/$name.err"; exit 1; }
    done
done
/usr/bin/python3 - "$out" "$backend" "$iters" <<'EOPY'
import json, os, sys
out, backend, iters = sys.argv[1:]
print(f"stories260K W3 per-channel, calib 128x256, {iters} it/block, lr 3e-3, backend {backend}; eval.txt seq 256")
print(f"{'method':<10} {'precision':<10} {'bf16':<9} {'ppl':>9} {'KL':>9} {'top-1':>7} {'last loss':>10} {'seconds':>8} {'ppl vs fp32':>12}")
for m in ("lrq", "flexround"):
    ref = None
    for p in ("fp32", "bf16"):
        j = json.load(open(os.path.join(out, f"{m}-{p}", "metrics.json")))
        q = j["quantized"]
        if ref is None: ref = q["perplexity"]
        last = j["blocks"][-1]["loss_end"] if "blocks" in j else float("nan")
        print(f"{m:<10} {p:<10} {j['compute']['bf16']:<9} {q['perplexity']:>9.4f} {q['kl_divergence']:>9.5f} "
              f"{q['top1_agreement']:>7.4f} {last:>10.4g} {j['seconds']:>8.1f} {100*(q['perplexity']/ref-1):>+11.2f}%")
print(f"FP32 model ppl {j['fp']['perplexity']:.4f}")
EOPY
