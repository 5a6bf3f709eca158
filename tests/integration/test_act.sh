#!/bin/sh
# Weight-activation quantization end to end on stories260K (issue 11; docs/algorithms.md,
# Activation quantization, SmoothQuant; docs/formats.md, activation.json):
#   - a W8A8 per-tensor static RTN job with SmoothQuant writes artifacts/activation.json (listed in
#     artifacts.json) with a range for every linear of every layer;
#   - `lrq-worker eval --activation` on the exported hf checkpoint reproduces the job's quantized
#     perplexity and KL (same numbers: the same model, the same quantizers; printed with 9-10
#     digits, compared to 1e-7 relative);
#   - the activation quantizers are applied: KL of W8A8 > KL of the W8 weight-only job (at 8-bit
#     weights the weight error is small and the activation error dominates: measured KL 0.00030 vs
#     0.00635, ×21; asked > ×2 — an evaluation that skipped the quantizers gives ×1);
#   - a W4A8-KV8 per-token LRQ job with simulate_during_reconstruction lowers every block's loss
#     (20 iterations: a broken STE/backward leaves the loss flat or raises it).
# Deterministic (seed 0, one thread).
set -u
: "${LRQ_BUILDDIR:?}" "${LRQ_SHARED:?}"
W="$LRQ_BUILDDIR/lrq-worker"
M="$LRQ_SHARED/models/stories260K/stories260K.bin"
D="$LRQ_SHARED/data/tinystories"
PY=/usr/bin/python3; [ -x $PY ] || PY=python3
[ -r "$M" ] && [ -r "$D/calib.txt" ] && [ -r "$D/eval.txt" ] || { echo "1..0 # SKIP no stories260K/tinystories under $LRQ_SHARED"; exit 0; }
[ -x "$W" ] || { echo "1..0 # SKIP $W not built"; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lrq-act.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { if [ "$1" -eq 0 ]; then ok "$2"; else nok "$2"; fi; }
echo "1..7"

CAL="\"calibration\": {\"path\": \"$D/calib.txt\", \"samples\": 8, \"seq_len\": 128}"
EVAL="\"eval\": {\"path\": \"$D/eval.txt\", \"seq_len\": 128, \"max_windows\": 16}"
A8T='"activation": {"bits": 8, "granularity": "per_tensor"}'
job() { # name method bits extra export
    cat > "$tmp/$1.json" <<EOS
{"model": "$M", "method": "$2", "weight": {"bits": $3, "init": "mse"}, $CAL, $EVAL$4,
 "export": $5, "seed": 0, "threads": 1}
EOS
    "$W" run --spec "$tmp/$1.json" --workdir "$tmp/$1" > "$tmp/$1.out" 2> "$tmp/$1.err" &&
        [ -s "$tmp/$1/metrics.json" ] || { echo "# $1: exit $?"; tail -5 "$tmp/$1.err" | sed 's/^/# /'; return 1; }
}
job w8 rtn 8 "" '[]'
check $? "W8 weight-only RTN job completes"
job w8a8 rtn 8 ", $A8T" '[]'
check $? "W8A8 per-tensor RTN job completes"
job sq rtn 8 ", $A8T, \"smooth\": {\"alpha\": 0.8}" '["hf"]'
r=$?
[ $r -eq 0 ] && $PY - "$tmp/sq" <<'EOPY'
import json, sys
d = sys.argv[1]
a = json.load(open(d + "/artifacts/activation.json"))
listed = {x["path"] for x in json.load(open(d + "/artifacts.json"))["artifacts"]}
assert "activation.json" in listed, listed
assert a["settings"]["granularity"] == "per_tensor" and a["smooth"]["alpha"] == 0.8, a["settings"]
names = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
         "mlp.up_proj", "mlp.down_proj"]
assert len(a["layers"]) == 5
for l in a["layers"]:
    for k in names:
        e = l["input"][k]
        assert e["scale"] > 0 and 0 <= e["zero_point"] <= 255 and e["zero_point"] == int(e["zero_point"]), e
EOPY
check $? "SmoothQuant + W8A8 job writes activation.json with a range for every linear"

# the consumer side: the exported checkpoint + activation.json give the job's numbers
"$W" eval --model "$M" --quantized "$tmp/sq/artifacts/hf" --activation "$tmp/sq/artifacts/activation.json" \
    --data "$D/eval.txt" --seq-len 128 --max-windows 16 --threads 1 > "$tmp/ev.json" 2> "$tmp/ev.err"
r=$?
[ $r -eq 0 ] && $PY - "$tmp/sq/metrics.json" "$tmp/ev.json" <<'EOPY'
import json, sys
m = json.load(open(sys.argv[1]))["quantized"]
e = json.load(open(sys.argv[2]))
for a, b in (("perplexity", "quantized_perplexity"), ("kl_divergence", "kl_divergence"),
             ("top1_agreement", "top1_agreement")):
    assert abs(m[a] - e[b]) <= 1e-7 * abs(m[a]) + 1e-12, (a, m[a], e[b])
EOPY
r=$?
check $r "eval --activation on the exported checkpoint reproduces the job's ppl, KL and top-1"
[ $r -eq 0 ] || sed 's/^/# /' "$tmp/ev.err" "$tmp/ev.json" | tail -5

$PY - "$tmp/w8/metrics.json" "$tmp/w8a8/metrics.json" "$tmp/sq/metrics.json" <<'EOPY'
import json, sys
w8, a8, sq = (json.load(open(p))["quantized"]["kl_divergence"] for p in sys.argv[1:4])
print(f"# KL: W8 {w8:.5f}, W8A8 {a8:.5f}, SmoothQuant+W8A8 {sq:.5f}")
assert a8 > 2 * w8, "activation quantizers must be applied in evaluation"
EOPY
check $? "W8A8 costs more KL than W8 weight-only (the quantizers are applied)"

job lrq lrq 4 ", \"activation\": {\"bits\": 8, \"granularity\": \"per_token\", \"kv_bits\": 8, \"simulate_during_reconstruction\": true},
 \"lrq\": {\"iterations\": 20, \"lr\": 3e-3, \"batch_size\": 2, \"checkpoint_every_s\": 0}" '[]'
check $? "W4A8-KV8 LRQ job with simulated activation quantization completes"
$PY - "$tmp/lrq/metrics.json" <<'EOPY'
import json, sys
b = json.load(open(sys.argv[1]))["blocks"]
assert len(b) == 5 and all(x["loss_end"] < x["loss_start"] for x in b), b
EOPY
check $? "every block's loss decreases with simulated activation quantization"
