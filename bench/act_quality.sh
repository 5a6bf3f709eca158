#!/bin/sh
# Weight-activation quality table (issue 11; docs/algorithms.md, Activation quantization):
# W8A8 per-tensor static and W4A8-KV8 per-token, against FP and the weight-only rows, on
# stories260K and babyllama-tok105. Calibration: calib.txt; evaluation: eval.txt (seq 256).
# usage: bench/act_quality.sh BUILDDIR SHAREDDIR [MODEL...]   (MODEL: stories260K, babyllama-tok105)
# Environment: LRQ_ITERS (100), BABY_ITERS (60), SAMPLES (32), WINDOWS (48 eval windows), LRQ_LR (3e-3),
# THREADS (1), OUT (a directory to keep the jobs in; default a temporary one).
set -eu
build=$(cd "${1:-.}" && pwd) || exit 2
shared=$(cd "${2:-../shared}" && pwd) || exit 2
shift 2 2>/dev/null || shift $#
models=${*:-stories260K babyllama-tok105}
iters=${LRQ_ITERS:-100}
baby_iters=${BABY_ITERS:-60}
samples=${SAMPLES:-32}
windows=${WINDOWS:-48}
lr=${LRQ_LR:-3e-3}
threads=${THREADS:-1}
if [ -n "${OUT:-}" ]; then out=$OUT; mkdir -p "$out"; else
    out=$(mktemp -d "${TMPDIR:-/tmp}/lrq-actq.XXXXXX"); trap 'rm -rf "$out"' EXIT; fi
worker="$build/lrq-worker"
data="$shared/data/tinystories"

# run MODEL NAME METHOD WBITS ACTIVATION-JSON SMOOTH-JSON SIMULATE
run() {
    model=$1 name=$2 method=$3 wbits=$4 act=$5 smooth=$6 sim=$7
    case $model in
    stories260K) mpath="$shared/models/stories260K/stories260K.bin" tok="$shared/models/stories260K/tok512.bin" it=$iters ;;
    babyllama-tok105) mpath="$shared/models/babyllama-tok105/model5000.bin" tok="$shared/models/babyllama-tok105/tok105.bin" it=$baby_iters ;;
    *) echo "act_quality: unknown model $model" >&2; exit 2 ;;
    esac
    dir="$out/$model/$name"
    [ -s "$dir/metrics.json" ] && return 0 # kept from an earlier run (OUT)
    mkdir -p "$out/$model"
    extra=""
    [ "$method" = rtn ] || extra=", \"lrq\": {\"iterations\": $it, \"lr\": $lr, \"batch_size\": 2, \"checkpoint_every_s\": 0}"
    if [ -n "$act" ]; then
        [ "$sim" = 1 ] && act=$(echo "$act" | sed 's/}$/, "simulate_during_reconstruction": true}/')
        extra="$extra, \"activation\": $act"
    fi
    [ -n "$smooth" ] && extra="$extra, \"smooth\": $smooth"
    init=mse
    [ "$wbits" -ge 8 ] && init=minmax # the 100 x 256-candidate MSE search is slow at 8 bits and buys nothing there
    cat > "$out/$model/$name.json" <<EOS
{ "model": "$mpath", "tokenizer": "$tok", "method": "$method",
  "weight": {"bits": $wbits, "init": "$init"},
  "calibration": {"path": "$data/calib.txt", "samples": $samples, "seq_len": 256},
  "eval": {"path": "$data/eval.txt", "seq_len": 256, "max_windows": $windows}$extra,
  "export": [], "seed": 0, "threads": $threads }
EOS
    "$worker" run --spec "$out/$model/$name.json" --workdir "$dir" > "$out/$model/$name.out" 2> "$out/$model/$name.err" || {
        echo "act_quality: $model $name failed:" >&2; tail -5 "$out/$model/$name.err" >&2; exit 1; }
}

A8T='{"bits": 8, "granularity": "per_tensor", "calibrate": "minmax"}'
A8KV8='{"bits": 8, "granularity": "per_token", "kv_bits": 8}'
SQ='{"alpha": 0.8}'
for m in $models; do # most important rows first
    run "$m" W8-rtn rtn 8 "" "" 0
    run "$m" W8A8-rtn rtn 8 "$A8T" "" 0
    run "$m" W8A8-sq-rtn rtn 8 "$A8T" "$SQ" 0
    run "$m" W4-rtn rtn 4 "" "" 0
    run "$m" W4A8KV8-rtn rtn 4 "$A8KV8" "" 0
    run "$m" W4A8KV8-lrq lrq 4 "$A8KV8" "" 0
    run "$m" W8A8-lrq lrq 8 "$A8T" "" 0
    run "$m" W4A8KV8-flexround flexround 4 "$A8KV8" "" 0
    run "$m" W8A8-flexround flexround 8 "$A8T" "" 0
    run "$m" W8A8-sq-lrq lrq 8 "$A8T" "$SQ" 0
    run "$m" W4A8KV8-lrq-sim lrq 4 "$A8KV8" "" 1
    run "$m" W8A8-lrq-sim lrq 8 "$A8T" "" 1
    run "$m" W4-lrq lrq 4 "" "" 0
    run "$m" W4-flexround flexround 4 "" "" 0
    run "$m" W8-lrq lrq 8 "" "" 0
    run "$m" W4A8KV8-flexround-sim flexround 4 "$A8KV8" "" 1
    run "$m" W8A8-flexround-sim flexround 8 "$A8T" "" 1
done

/usr/bin/python3 - "$out" "$iters" "$baby_iters" "$samples" "$windows" "$lr" $models <<'EOPY'
import json, os, sys
out, iters, baby_iters, samples, windows, lr = sys.argv[1:7]
print(f"calibration calib.txt ({samples} x 256 tokens; also the static activation ranges and SmoothQuant maxima), "
      f"evaluation eval.txt, first {windows} windows of 256; LRQ/FlexRound {iters} (stories260K) / {baby_iters} "
      f"(babyllama-tok105) iterations per block, batch 2, lr {lr}, rank ratio 0.25, weight init mse at W4 and minmax at W8; "
      f"A8 per-tensor: asymmetric static min/max; A8-KV8 per-token: asymmetric dynamic; SmoothQuant alpha 0.8")
rows = [("W8", "rtn"), ("W8", "lrq"), ("W8A8", "rtn"), ("W8A8", "sq-rtn"), ("W8A8", "flexround"),
        ("W8A8", "flexround-sim"), ("W8A8", "lrq"), ("W8A8", "lrq-sim"), ("W8A8", "sq-lrq"),
        ("W4", "rtn"), ("W4", "flexround"), ("W4", "lrq"), ("W4A8KV8", "rtn"), ("W4A8KV8", "flexround"),
        ("W4A8KV8", "flexround-sim"), ("W4A8KV8", "lrq"), ("W4A8KV8", "lrq-sim")]
for model in sys.argv[7:]:
    def load(name):
        p = os.path.join(out, model, name, "metrics.json")
        return json.load(open(p)) if os.path.exists(p) else None
    fp = load("W8-rtn")["fp"]
    print(f"\n{model}")
    print(f"| setting | method | ppl | KL | top-1 | KL / RTN of the setting | seconds |")
    print(f"|---|---|---|---|---|---|---|")
    print(f"| FP32 | - | {fp['perplexity']:.4f} | - | - | - | - |")
    for cfg, m in rows:
        j = load(f"{cfg}-{m}")
        if j is None:
            continue
        q = j["quantized"]
        base = load(f"{cfg}-rtn")["quantized"]["kl_divergence"]
        name = m.replace("sq-", "SmoothQuant+").replace("-sim", " (simulated)").replace("rtn", "RTN").replace(
            "lrq", "LRQ").replace("flexround", "FlexRound")
        print(f"| {cfg} | {name} | {q['perplexity']:.4f} | {q['kl_divergence']:.5f} | {q['top1_agreement']:.4f} | "
              f"{q['kl_divergence'] / base:.3f} | {j['seconds']:.0f} |")
EOPY
