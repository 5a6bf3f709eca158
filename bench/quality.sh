#!/bin/sh
# Quality table on stories260K: FP, RTN, FlexRound, LRQ at W4, W3 (per-channel) and W4 g32.
# Calibration: calib.txt; evaluation: eval.txt (seq 256). Settings below were chosen on
# calib/eval only; test.txt is for final figures (QUALITY_DATA=test to report on it).
# usage: bench/quality.sh BUILDDIR SHAREDDIR
set -eu
build=${1:-.}
shared=${2:-../shared}
build=$(cd "$build" && pwd) || exit 2
shared=$(cd "$shared" && pwd) || exit 2
data=${QUALITY_DATA:-eval}
iters=${LRQ_ITERS:-400}
samples=${LRQ_SAMPLES:-128}
lr_lrq=${LRQ_LR:-3e-3}
lr_flex=${FLEX_LR:-3e-3}
threads=${THREADS:-2}
out=$(mktemp -d "${TMPDIR:-/tmp}/lrq-quality.XXXXXX")
trap 'rm -rf "$out"' EXIT
worker="$build/lrq-worker"

run() { # name method bits group lr
    name=$1 method=$2 bits=$3 group=$4 lr=$5
    lrqpart=""
    if [ "$method" != rtn ]; then
        lrqpart=", \"calibration\": {\"path\": \"$shared/data/tinystories/calib.txt\", \"samples\": $samples, \"seq_len\": 256},
  \"lrq\": {\"iterations\": $iters, \"lr\": $lr, \"batch_size\": 2, \"checkpoint_every_s\": 0}"
    fi
    cat > "$out/$name.json" <<EOS
{ "model": "$shared/models/stories260K/stories260K.bin", "method": "$method",
  "weight": {"bits": $bits, "group_size": $group, "init": "mse"},
  "eval": {"path": "$shared/data/tinystories/$data.txt", "seq_len": 256}$lrqpart,
  "export": [], "seed": 0, "threads": $threads }
EOS
    "$worker" run --spec "$out/$name.json" --workdir "$out/$name" > "$out/$name.out" 2> "$out/$name.err" || {
        echo "quality: $name failed:"; tail -5 "$out/$name.err"; exit 1; }
}

run "W8-rtn" rtn 8 0 0
for cfg in "W4 4 0" "W3 3 0" "W4g32 4 32"; do
    set -- $cfg
    run "$1-rtn" rtn "$2" "$3" 0
    run "$1-flexround" flexround "$2" "$3" "$lr_flex"
    run "$1-lrq" lrq "$2" "$3" "$lr_lrq"
done

/usr/bin/python3 - "$out" "$iters" "$samples" "$lr_lrq" "$lr_flex" "$data" <<'EOPY'
import json, sys, os
out, iters, samples, lr_lrq, lr_flex, data = sys.argv[1:]
print(f"stories260K, calibration calib.txt ({samples} x 256 tokens), evaluation {data}.txt seq 256; "
      f"LRQ/FlexRound: {iters} iterations/block, batch 2, lr {lr_lrq}/{lr_flex}, rank ratio 0.25, mse init")
fp = json.load(open(os.path.join(out, "W4-rtn", "metrics.json")))["fp"]
print(f"{'config':<8} {'method':<10} {'ppl':>9} {'KL':>9} {'top-1':>7} {'seconds':>8}  vs RTN")
print(f"{'FP32':<8} {'-':<10} {fp['perplexity']:>9.4f} {'-':>9} {'-':>7} {'-':>8}")
w8 = json.load(open(os.path.join(out, "W8-rtn", "metrics.json")))
q = w8["quantized"]
print(f"{'W8':<8} {'rtn':<10} {q['perplexity']:>9.4f} {q['kl_divergence']:>9.5f} {q['top1_agreement']:>7.4f} {w8['seconds']:>8.1f}")
for cfg in ("W4", "W3", "W4g32"):
    rtn = json.load(open(os.path.join(out, f"{cfg}-rtn", "metrics.json")))["quantized"]
    for m in ("rtn", "flexround", "lrq"):
        j = json.load(open(os.path.join(out, f"{cfg}-{m}", "metrics.json")))
        q = j["quantized"]
        rel = "" if m == "rtn" else f"  ppl {q['perplexity']-rtn['perplexity']:+.4f}, KL {100*(q['kl_divergence']/rtn['kl_divergence']-1):+.1f}%"
        print(f"{cfg:<8} {m:<10} {q['perplexity']:>9.4f} {q['kl_divergence']:>9.5f} {q['top1_agreement']:>7.4f} {j['seconds']:>8.1f}{rel}")
EOPY
