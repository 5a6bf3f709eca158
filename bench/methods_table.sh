#!/bin/sh
# Quality table of issue 10 (docs/algorithms.md, GPTQ, LQER and L²QER, ODLRI): both real models,
# W4 and W3 per-channel and W2 g32, rows RTN, GPTQ, LQER and L²QER (ranks 8, 16), ODLRI (inits
# zero, lr_first, odlri), LRQ, FlexRound, LRQ + L²QER, FlexRound + L²QER: perplexity, KL(FP ‖ Q),
# top-1 agreement, bits per weight (codes, scales, zeros, factors), seconds. Then the per-layer
# activation-aware error of the three ODLRI inits.
# Calibration calib.txt (SAMPLES × 256 tokens, default 64), evaluation eval.txt (seq 256, the first
# WINDOWS windows, default 64 = 16320 predicted tokens;
# QUALITY_DATA=test for the final report). LRQ/FlexRound use a short schedule: ITERS iterations
# per block (default 200), lr 3e-3, batch 2 (the official schedule is 5000 iterations); ODLRI runs
# ODLRI_ITERS alternations (default 15, the ODLRI setting), rank 8 with 4 outliers.
# usage: nice -n 10 bench/methods_table.sh BUILDDIR SHAREDDIR [OUTDIR]   (keeps OUTDIR: job dirs, table.md)
set -eu
build=$(cd "${1:-.}" && pwd)
shared=$(cd "${2:-../shared}" && pwd)
out=${3:-$(mktemp -d "${TMPDIR:-/tmp}/lrq-methods.XXXXXX")}
mkdir -p "$out"
data=${QUALITY_DATA:-eval}
iters=${ITERS:-200}
samples=${SAMPLES:-64}
windows=${WINDOWS:-64}
threads=${THREADS:-2}
oiters=${ODLRI_ITERS:-15}
models=${MODELS:-"stories260K babyllama"}
settings=${SETTINGS:-"W4 W3 W2g32"}
refs=${REF_SETTINGS:-"W5 W6 W7"}   # RTN only: equal-bits references for the factored rows
worker="$build/lrq-worker"
PY=/usr/bin/python3; [ -x $PY ] || PY=python3

model_path() { case $1 in stories260K) echo "$shared/models/stories260K/stories260K.bin";;
                          babyllama) echo "$shared/models/babyllama-tok105/model5000.bin";; esac; }
run() { # model setting row method extra-json
    mdl=$1 set=$2 row=$3 method=$4 extra=$5
    case $set in W2g32) b=2 g=32;; W*) b=${set#W} g=0;; esac
    d="$out/$mdl-$set-$row"
    [ -s "$d/metrics.json" ] && return 0
    cat > "$d.json" <<EOS
{ "model": "$(model_path $mdl)", "method": "$method",
  "weight": {"bits": $b, "group_size": $g, "init": "mse"},
  "calibration": {"path": "$shared/data/tinystories/calib.txt", "samples": $samples, "seq_len": 256},
  "eval": {"path": "$shared/data/tinystories/$data.txt", "seq_len": 256, "max_windows": $windows}$extra,
  "export": [], "seed": 0, "threads": $threads }
EOS
    "$worker" run --spec "$d.json" --workdir "$d" > "$d.out" 2> "$d.err" || { echo "methods_table: $mdl $set $row failed:"; tail -3 "$d.err"; }
}
LRQ=", \"lrq\": {\"iterations\": $iters, \"lr\": 3e-3, \"batch_size\": 2, \"checkpoint_every_s\": 0}"
for mdl in $models; do
  for set in $settings; do
    run $mdl $set rtn rtn ""
    run $mdl $set gptq gptq ""
    for k in 8 16; do
      run $mdl $set lqer-r$k lqer ", \"lqer\": {\"rank\": $k, \"scaled\": false}"
      run $mdl $set l2qer-r$k lqer ", \"lqer\": {\"rank\": $k, \"scaled\": true}"
    done
    for init in zero lr_first odlri; do
      run $mdl $set odlri-$init odlri ", \"odlri\": {\"rank\": 8, \"outliers\": 4, \"init\": \"$init\", \"iterations\": $oiters}"
    done
    run $mdl $set lrq lrq "$LRQ"
    run $mdl $set flexround flexround "$LRQ"
    run $mdl $set lrq+l2qer-r8 lqer ", \"lqer\": {\"rank\": 8, \"base\": \"lrq\"}$LRQ"
    run $mdl $set flexround+l2qer-r8 lqer ", \"lqer\": {\"rank\": 8, \"base\": \"flexround\"}$LRQ"
  done
done
for mdl in $models; do for set in $refs; do run $mdl $set rtn rtn ""; done; done
$PY - "$out" "$models" "$settings" "$refs" <<'EOPY' | tee "$out/table.md"
import json, os, sys
out, models, settings, refs = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
rows = ["rtn", "gptq", "lqer-r8", "l2qer-r8", "lqer-r16", "l2qer-r16", "odlri-zero", "odlri-lr_first", "odlri-odlri",
        "lrq", "flexround", "lrq+l2qer-r8", "flexround+l2qer-r8"]
for mdl in models:
    for st in settings:
        fp = None
        print(f"\n### {mdl} {st}\n")
        print("| row | ppl | KL | top-1 | bits/weight | seconds |\n|---|---|---|---|---|---|")
        for r in rows:
            p = f"{out}/{mdl}-{st}-{r}/metrics.json"
            if not os.path.exists(p): print(f"| {r} | not finished | | | | |"); continue
            m = json.load(open(p)); q = m["quantized"]; fp = m["fp"]["perplexity"]
            print(f"| {r} | {q['perplexity']:.4f} | {q['kl_divergence']:.4f} | {q['top1_agreement']:.4f} | "
                  f"{m['bits_per_weight']['model']:.3f} | {m['seconds']:.1f} |")
        if fp: print(f"\nFP perplexity {fp:.4f}")
for mdl in models:
    print(f"\n### {mdl}: RTN per-channel at more bits (equal-bits references)\n")
    print("| setting | ppl | KL | top-1 | bits/weight | seconds |\n|---|---|---|---|---|---|")
    for st in refs:
        p = f"{out}/{mdl}-{st}-rtn/metrics.json"
        if not os.path.exists(p): print(f"| {st} | not run | | | | |"); continue
        m = json.load(open(p)); q = m["quantized"]
        print(f"| {st} | {q['perplexity']:.4f} | {q['kl_divergence']:.4f} | {q['top1_agreement']:.4f} | "
              f"{m['bits_per_weight']['model']:.3f} | {m['seconds']:.1f} |")
print("\n### ODLRI per-layer activation-aware error √(tr(E H Eᵀ)/tr(W H Wᵀ)) after the last iteration (best kept)\n")
for mdl in models:
    for st in settings:
        e = {}
        for init in ("zero", "lr_first", "odlri"):
            p = f"{out}/{mdl}-{st}-odlri-{init}/metrics.json"
            if os.path.exists(p): e[init] = {L["name"]: L for L in json.load(open(p))["method_layers"]}
        if len(e) < 3: continue
        print(f"\n{mdl} {st}: | layer | zero | lr_first | odlri | odlri init: first → last iteration |\n|---|---|---|---|---|")
        for name in e["odlri"]:
            it = e["odlri"][name]["odlri_errors"]
            print(f"| {name} | {e['zero'][name]['act_error']:.4f} | {e['lr_first'][name]['act_error']:.4f} | "
                  f"{e['odlri'][name]['act_error']:.4f} | {it[0]:.4f} → {it[-1]:.4f} |")
        mean = {k: sum(v[n]["act_error"] for n in v) / len(v) for k, v in e.items()}
        wins = sum(e["odlri"][n]["act_error"] <= min(e["zero"][n]["act_error"], e["lr_first"][n]["act_error"]) for n in e["odlri"])
        print(f"\nmean: zero {mean['zero']:.4f}, lr_first {mean['lr_first']:.4f}, odlri {mean['odlri']:.4f}; "
              f"odlri lowest on {wins} of {len(e['odlri'])} layers")
EOPY
