#!/bin/sh
# The algorithms still work: LRQ and FlexRound on the real stories260K model (W3, per-channel,
# mse init, 16 calibration windows × 128 tokens, 200 iterations per block, 20 eval windows) must
#   - lower EVERY block's reconstruction loss well below its RTN-initialised value, and
#   - beat RTN (same bits and init) on KL(FP ‖ Q) by a clear margin.
# Deterministic (seed 0, one thread): the figures do not depend on machine speed.
#
# Margins, from measured runs (5 seeds × W3/W4 × minmax/mse, see the commit message): with this spec
# the smallest per-block reduction seen was 32 % for LRQ and 46 % for FlexRound (loss_end/loss_start
# ≤ 0.68 and ≤ 0.54), and KL/KL_RTN was at most 0.56 (LRQ) and 0.43 (FlexRound), seed spread ±4 %.
# The test asks for half of that: loss_end ≤ 0.85·loss_start on every block, KL ≤ 0.80·KL_RTN.
# A broken optimiser (learning rate ~0, gradient sign flipped, quantizer not in the loop) leaves
# loss_end ≈ loss_start (ratio ≈ 1) or above it, and KL ≈ KL_RTN or worse, so it cannot pass.
# Override the margins only to experiment: LRQ_ALGO_LOSS_RATIO, LRQ_ALGO_KL_RATIO.
set -u
: "${LRQ_BUILDDIR:?}" "${LRQ_SHARED:?}"
W="$LRQ_BUILDDIR/lrq-worker"
M="$LRQ_SHARED/models/stories260K/stories260K.bin"
D="$LRQ_SHARED/data/tinystories"
PY=/usr/bin/python3; [ -x $PY ] || PY=python3
LOSS_RATIO=${LRQ_ALGO_LOSS_RATIO:-0.85}
KL_RATIO=${LRQ_ALGO_KL_RATIO:-0.80}
[ -r "$M" ] && [ -r "$D/calib.txt" ] && [ -r "$D/eval.txt" ] || { echo "1..0 # SKIP no stories260K/tinystories under $LRQ_SHARED"; exit 0; }
[ -x "$W" ] || { echo "1..0 # SKIP $W not built"; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lrq-algo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { if [ "$1" -eq 0 ]; then ok "$2"; else nok "$2"; fi; }
echo "1..8"

WEIGHT='"weight": {"bits": 3, "group_size": 0, "symmetric": false, "init": "mse"}'
EVAL="\"eval\": {\"path\": \"$D/eval.txt\", \"seq_len\": 256, \"max_windows\": 20}"
cat > "$tmp/rtn.json" <<EOS
{"model": "$M", "method": "rtn", $WEIGHT, $EVAL, "export": [], "seed": 0, "threads": 1}
EOS
for m in lrq flexround; do
    cat > "$tmp/$m.json" <<EOS
{"model": "$M", "method": "$m", $WEIGHT,
 "calibration": {"path": "$D/calib.txt", "samples": 16, "seq_len": 128},
 "lrq": {"iterations": 200, "lr": 3e-3, "batch_size": 2, "rank_policy": "ratio", "rank_ratio": 0.25,
         "checkpoint_every_s": 0},
 $EVAL, "export": [], "seed": 0, "threads": 1}
EOS
done

for m in rtn lrq flexround; do
    "$W" run --spec "$tmp/$m.json" --workdir "$tmp/$m" > "$tmp/$m.out" 2> "$tmp/$m.err"
    rc=$?
    [ $rc -eq 0 ] && [ -s "$tmp/$m/metrics.json" ] && tail -1 "$tmp/$m.out" | grep -q '"event":"done"'
    r=$?
    check $r "$m job on stories260K W3 per-channel (mse init) completes with metrics.json"
    [ $r -eq 0 ] || { echo "# exit $rc"; tail -5 "$tmp/$m.err" | sed 's/^/# /'; }
done

# Per-block losses: metrics.json "blocks" and the block events of progress.jsonl must agree,
# one entry per block, and every loss_end must be at most LOSS_RATIO · loss_start.
for m in lrq flexround; do
    $PY - "$tmp/$m/metrics.json" "$tmp/$m/progress.jsonl" "$LOSS_RATIO" "$m" <<'EOPY'
import json, sys
mpath, ppath, ratio, name = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
try:
    m = json.load(open(mpath))
    ev = [json.loads(l) for l in open(ppath) if l.strip()]
except Exception as e:
    print("# %s: no metrics/progress (%s)" % (name, e)); sys.exit(1)
blocks = m.get("blocks", [])
evb = [e for e in ev if e.get("event") == "block"]
okay = len(blocks) == 5 and len(evb) == 5
for i, b in enumerate(blocks):
    r = b["loss_end"] / b["loss_start"]
    print("# %s block %d: loss %.5g -> %.5g (ratio %.3f, %.1f %% lower)" % (name, b["block"], b["loss_start"],
          b["loss_end"], r, 100 * (1 - r)))
    okay &= b["block"] == i and b["loss_start"] > 0 and r <= ratio
for a, e in zip(blocks, evb):
    okay &= a["block"] == e["block"] and abs(a["loss_start"] - e["loss_start"]) <= 1e-9 * a["loss_start"] \
        and abs(a["loss_end"] - e["loss_end"]) <= 1e-9 * a["loss_start"]
sys.exit(0 if okay else 1)
EOPY
    check $? "$m: every one of the 5 blocks ends with loss <= $LOSS_RATIO x its RTN-initialised loss (metrics = block events)"
done

# Both methods start from the same RTN quantizer (S = 0 reproduces RTN exactly), so block 0, whose
# input is the FP embedding for both, must start from the same loss.
$PY - "$tmp/lrq/metrics.json" "$tmp/flexround/metrics.json" <<'EOPY'
import json, sys
try:
    a, b = (json.load(open(p))["blocks"][0]["loss_start"] for p in sys.argv[1:3])
except Exception as e:
    print("# %s" % e); sys.exit(1)
print("# block 0 loss_start: lrq %.9g, flexround %.9g" % (a, b))
sys.exit(0 if a > 0 and abs(a - b) <= 1e-9 * a else 1)
EOPY
check $? "block 0 starts from the same RTN loss for lrq and flexround"

# KL(FP ‖ Q) on the same 20 eval windows: each method at most KL_RATIO × RTN's.
for m in lrq flexround; do
    $PY - "$tmp/rtn/metrics.json" "$tmp/$m/metrics.json" "$KL_RATIO" "$m" <<'EOPY'
import json, sys
try:
    r, q = (json.load(open(p)) for p in sys.argv[1:3])
except Exception as e:
    print("# %s" % e); sys.exit(1)
ratio, name = float(sys.argv[3]), sys.argv[4]
kr, kq = r["quantized"]["kl_divergence"], q["quantized"]["kl_divergence"]
print("# KL: rtn %.5f, %s %.5f (ratio %.3f); ppl fp %.4f, rtn %.4f, %s %.4f; top-1 rtn %.4f, %s %.4f" % (
    kr, name, kq, kq / kr, r["fp"]["perplexity"], r["quantized"]["perplexity"], name, q["quantized"]["perplexity"],
    r["quantized"]["top1_agreement"], name, q["quantized"]["top1_agreement"]))
same = r["quantized"]["tokens"] == q["quantized"]["tokens"] == 20 * 255
sys.exit(0 if same and kr > 0 and kq <= ratio * kr else 1)
EOPY
    check $? "$m: KL to the FP model <= $KL_RATIO x RTN's KL (same 20 x 255 eval tokens)"
done
