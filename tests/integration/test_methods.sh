#!/bin/sh
# GPTQ, LQER / L²QER and ODLRI end to end on the real stories260K (W3 per-channel, mse init,
# 8 calibration windows × 128 tokens, 16 eval windows, one thread; ~30 s):
#   1-4  rtn, gptq, lqer (L²QER rank 8), odlri (rank 8, 8 outliers, 3 iterations) complete
#   5    quality order at these settings: KL(gptq) < KL(rtn), KL(lqer) < KL(rtn), KL(odlri) < KL(gptq).
#        Measured (this spec): RTN 0.60, GPTQ 0.45, L²QER 0.34, ODLRI 0.24 — the test asks only for
#        the order; a method that ignores H or drops its factors lands at or above its base.
#   6    bits_per_weight (model and per layer) equals the accounting recomputed here from the shapes
#        (metrics.json keeps 9 significant digits: 1e-7 relative)
#   7    evaluated = exported: `lrq-worker eval` of the hf export (factors merged) reproduces the
#        in-job perplexity of lqer (which adds (x Rᵀ) Lᵀ at run time) within 1e-5 relative
#        (fp32 sums in a different order; a dropped factor changes it by > 10 %)
#   8    the factored safetensors holds codes, scales, zeros, lora_A, lora_B; Ŵ + lora_B·lora_A rebuilt
#        from it with numpy equals the hf export's dense weights (v, o, gate, up, down: rows in
#        source order; q/k rows are permuted by the hf exporter) within 1e-5 relative (stories260K is
#        fp32; the merged sums differ in fp32 order, observed 1e-7; a missing factor is O(0.1))
#   9    odlri stopped by SIGTERM after its third linear (exit 75) resumes from the last finished
#        linear and writes a bit-identical factored artifact
#  10    gptq with 2 threads writes the same artifact as with 1 (rows split by shape, not threads)
#  11    lqer.rank above min(in, out) and odlri.outliers above in are refused before any work,
#        exit 65, error event naming the field
#  12    stacked L²QER on LRQ (20 iterations per block) completes and beats RTN
set -u
: "${LRQ_BUILDDIR:?}" "${LRQ_SHARED:?}"
W="$LRQ_BUILDDIR/lrq-worker"
M="$LRQ_SHARED/models/stories260K/stories260K.bin"
D="$LRQ_SHARED/data/tinystories"
PY=/usr/bin/python3; [ -x $PY ] || PY=python3
[ -r "$M" ] && [ -r "$D/calib.txt" ] && [ -r "$D/eval.txt" ] || { echo "1..0 # SKIP no stories260K/tinystories under $LRQ_SHARED"; exit 0; }
[ -x "$W" ] || { echo "1..0 # SKIP $W not built"; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lrq-methods.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n=0
check() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
echo "1..12"

spec() { # name method extra-json threads
    cat > "$tmp/$1.json" <<EOS
{"model": "$M", "method": "$2", "weight": {"bits": 3, "group_size": 0, "init": "mse"},
 "calibration": {"path": "$D/calib.txt", "samples": 8, "seq_len": 128},
 "eval": {"path": "$D/eval.txt", "seq_len": 128, "max_windows": 16}$3,
 "export": ["hf"], "seed": 0, "threads": ${4:-1}}
EOS
}
run() { "$W" run --spec "$tmp/$1.json" --workdir "$tmp/$2" > "$tmp/$2.out" 2> "$tmp/$2.err"; }
spec rtn rtn ""
spec gptq gptq ', "gptq": {"damp": 0.01, "block_size": 128}'
spec lqer lqer ', "lqer": {"rank": 8, "scaled": true, "factor_bits": 16, "base": "rtn"}'
spec odlri odlri ', "odlri": {"rank": 8, "outliers": 8, "init": "odlri", "iterations": 3}'
for m in rtn gptq lqer odlri; do
    run $m $m
    rc=$?
    [ $rc -eq 0 ] && [ -s "$tmp/$m/metrics.json" ] && tail -1 "$tmp/$m.out" | grep -q '"event":"done"'
    r=$?
    check $r "$m job on stories260K W3 completes with metrics.json"
    [ $r -eq 0 ] || { echo "# exit $rc"; tail -5 "$tmp/$m.err" | sed 's/^/# /'; }
done

$PY - "$tmp" <<'EOPY'
import json, sys
t = sys.argv[1]
kl = {m: json.load(open(f"{t}/{m}/metrics.json"))["quantized"]["kl_divergence"] for m in ("rtn", "gptq", "lqer", "odlri")}
print("# KL " + ", ".join(f"{m} {v:.4f}" for m, v in kl.items()))
sys.exit(0 if kl["gptq"] < kl["rtn"] and kl["lqer"] < kl["rtn"] and kl["odlri"] < kl["gptq"] else 1)
EOPY
check $? "KL order: gptq < rtn, lqer < rtn, odlri < gptq"

$PY - "$tmp" <<'EOPY'
import json, sys
t = sys.argv[1]
bad = 0
for m, k, fb in (("rtn", 0, 16), ("gptq", 0, 16), ("lqer", 8, 16), ("odlri", 8, 16)):
    d = json.load(open(f"{t}/{m}/metrics.json"))
    shapes = {"q": (64, 64), "k": (32, 64), "v": (32, 64), "o": (64, 64), "gate": (172, 64), "up": (172, 64), "down": (64, 172)}
    tot = w = 0
    for L in d["layers"]:
        mm, nn = shapes[L["name"].split(".")[-1]]
        b = mm * nn * 3 + mm * (16 + 3) + (k * (mm + nn) * fb)
        tot += b; w += mm * nn
        if abs(L["bits_per_weight"] - b / (mm * nn)) > 1e-7 * b / (mm * nn): bad += 1; print(f"# {m} {L['name']}: {L['bits_per_weight']} != {b / (mm * nn)}")
    if abs(d["bits_per_weight"]["model"] - tot / w) > 1e-7 * tot / w: bad += 1; print(f"# {m}: model {d['bits_per_weight']['model']} != {tot / w}")
sys.exit(1 if bad else 0)
EOPY
check $? "bits_per_weight per layer and for the model match the accounting (codes, fp16 scales, b-bit zeros, factors)"

out=$("$W" eval --model "$M" --quantized "$tmp/lqer/artifacts/hf" --data "$D/eval.txt" --seq-len 128 --max-windows 16 --threads 1 2>/dev/null)
$PY - "$tmp/lqer/metrics.json" "$out" <<'EOPY'
import json, sys
a = json.load(open(sys.argv[1]))["quantized"]["perplexity"]
b = json.loads(sys.argv[2])["quantized_perplexity"]
print(f"# in-job {a:.7f}, exported {b:.7f}")
sys.exit(0 if abs(a - b) <= 1e-5 * a else 1)
EOPY
check $? "evaluated = exported: hf export with merged factors reproduces the in-job lqer perplexity"

$PY - "$tmp/lqer/artifacts" <<'EOPY'
import json, struct, sys
import numpy as np
d = sys.argv[1]
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); base = 8 + n
    dt = {"F32": np.float32, "F16": np.float16, "U8": np.uint8, "I8": np.int8}
    return {k: np.frombuffer(b[base + v["data_offsets"][0]: base + v["data_offsets"][1]], dt[v["dtype"]]).reshape(v["shape"])
            for k, v in h.items() if k != "__metadata__"}, h.get("__metadata__", {})
f, meta = load(d + "/factored/model.safetensors")
hf, _ = load(d + "/hf/model.safetensors")
assert meta.get("lrq.format") == "factored-v1", meta
worst = 0
for l in range(5):
    for name in ("self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):
        p = f"model.layers.{l}.{name}"
        c, s, z = f[p + ".codes"].astype(np.float64), f[p + ".scales"].astype(np.float64), f[p + ".zeros"].astype(np.float64)
        gs = c.shape[1] // s.shape[1]
        Wq = s.repeat(gs, 1) * (c - z.repeat(gs, 1))
        Wf = Wq + f[p + ".lora_B"].astype(np.float64) @ f[p + ".lora_A"].astype(np.float64)
        ref = hf[p + ".weight"].astype(np.float64)
        worst = max(worst, np.abs(Wf - ref).max() / np.abs(ref).max())
print(f"# max relative difference {worst:.2e}")
sys.exit(0 if worst < 1e-5 else 1)
EOPY
check $? "factored artifact (codes, scales, zeros, lora_A, lora_B) rebuilds the merged hf weights"

# resume: SIGTERM after the third linear's checkpoint (the worker's own layer event)
"$W" run --spec "$tmp/odlri.json" --workdir "$tmp/odk" > "$tmp/odk.out" 2> "$tmp/odk.err" &
pid=$!
# (${n:-0}: the background job's redirect may not have created the file yet; an empty count
#  must not end the wait)
layers_seen() { n=$(grep -c '"event":"layer"' "$tmp/odk.out" 2>/dev/null); echo "${n:-0}"; }
while [ "$(layers_seen)" -lt 3 ] && kill -0 $pid 2>/dev/null; do sleep 0.01; done
kill -TERM $pid 2>/dev/null; wait $pid; st=$?
before=$(grep -c '"event":"layer"' "$tmp/odk.out")
"$W" run --spec "$tmp/odlri.json" --workdir "$tmp/odk" > "$tmp/odk2.out" 2>> "$tmp/odk.err"
rc=$?
a=$(sha256sum "$tmp/odlri/artifacts/factored/model.safetensors" | cut -d' ' -f1)
b=$(sha256sum "$tmp/odk/artifacts/factored/model.safetensors" 2>/dev/null | cut -d' ' -f1)
redone=$(grep -c '"event":"layer"' "$tmp/odk2.out")
echo "# SIGTERM exit $st after $before linears; resumed run quantized $redone of 35; exit $rc"
[ $st -eq 75 ] && [ $rc -eq 0 ] && [ "$a" = "$b" ] && [ $((before + redone)) -eq 35 ] && grep -q '"event":"resume"' "$tmp/odk2.out"
check $? "odlri stopped after a linear resumes from the last finished one; artifact bit-identical"

spec gptq2 gptq ', "gptq": {"damp": 0.01, "block_size": 128}' 2
run gptq2 gptq2
a=$(sha256sum "$tmp/gptq/artifacts/factored/model.safetensors" | cut -d' ' -f1)
b=$(sha256sum "$tmp/gptq2/artifacts/factored/model.safetensors" 2>/dev/null | cut -d' ' -f1)
[ "$a" = "$b" ]
check $? "gptq with 2 threads writes the artifact of 1 thread"

spec badr lqer ', "lqer": {"rank": 100}'
spec bado odlri ', "odlri": {"outliers": 65}'
run badr badr; r1=$?
run bado bado; r2=$?
[ $r1 -eq 65 ] && [ $r2 -eq 65 ] && grep -q '"field":"lqer.rank"' "$tmp/badr.out" && grep -q '"field":"odlri.outliers"' "$tmp/bado.out" \
    && ! grep -q '"stage":"calibrate"' "$tmp/badr.out"
check $? "rank above min(in, out) and outliers above in: exit 65 before any work, naming the field"

spec stack lqer ', "lqer": {"rank": 8, "base": "lrq"}, "lrq": {"iterations": 20, "lr": 3e-3, "checkpoint_every_s": 0}'
run stack stack
rc=$?
$PY - "$tmp" <<'EOPY'
import json, sys
t = sys.argv[1]
a = json.load(open(f"{t}/stack/metrics.json")); r = json.load(open(f"{t}/rtn/metrics.json"))
print(f"# L2QER+LRQ KL {a['quantized']['kl_divergence']:.4f} vs RTN {r['quantized']['kl_divergence']:.4f}; blocks {len(a['blocks'])}")
sys.exit(0 if a["quantized"]["kl_divergence"] < r["quantized"]["kl_divergence"] and len(a["blocks"]) == 5 and a["method_layers"] else 1)
EOPY
r=$?
[ $rc -eq 0 ] && [ $r -eq 0 ]
check $? "stacked L²QER on LRQ completes (reconstruction, then factors) and beats RTN"
