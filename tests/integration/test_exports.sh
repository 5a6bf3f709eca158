#!/bin/sh
# test_exports.sh — the export stage of lrq-worker run (docs/formats.md, Artifacts; Evaluated = exported):
# every export is re-read and verified inside the job, lrq-manifest.json carries the job's side, the hf
# dtype rule holds, and impossible exports are refused before quantizing.
#  1. babyllama-tok105 (llama2.c fp32, every dim a multiple of 32), RTN W4 g32 asymmetric, exports hf +
#     gptq + compressed-tensors: done; three "verified" log lines; each manifest has the spec, method,
#     source sha256 (equal to sha256sum of the model file), metrics equal to metrics.json's, runtimes;
#     gptq is gptq_v2 (asymmetric), the hf linears are F32 (beside packed exports).
#  2. synthetic bf16 HF model, hf only: linears stay BF16 and metrics say the evaluation used the
#     bf16-rounded weights.
#  3. stories260K with compressed-tensors is refused (exit 65) before the rtn stage, naming the rule.
#  4. babyllama-tok105 RTN W8 symmetric per-channel with static per-tensor (asymmetric) 8-bit
#     activations, exports hf + compressed-tensors: int-quantized W8A8, verified in the job;
#     ct_decode.py reads weight·weight_scale bit-equal to the hf export's F32 linears and every
#     input_scale / input_zero_point equal to activation.json's (q/k/v one site, gate/up one).
#  5. the same with dynamic per-token symmetric activations: dynamic true, strategy token, no input_scale.
#  6. W4 g32 weights beside 8-bit per_tensor activations with compressed-tensors: refused (exit 65)
#     before the rtn stage, naming weight.bits and vLLM's W8A8 rule.
set -u
: "${LRQ_BUILDDIR:?}" "${LRQ_SHARED:?}"
W="$LRQ_BUILDDIR/lrq-worker"
SRC=${LRQ_SRCDIR:-.}
B="$LRQ_SHARED/models/babyllama-tok105"
D="$LRQ_SHARED/data/tinystories"
PY=/usr/bin/python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lrq-exports.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { if [ "$1" -eq 0 ]; then ok "$2"; else nok "$2"; fi; }
[ -f "$B/model5000.bin" ] || { echo "1..0 # SKIP babyllama-tok105 not found"; exit 0; }
echo "1..9"

cat > "$tmp/a.json" <<EOS
{"model": "$B/model5000.bin", "tokenizer": "$B/tok105.bin", "method": "rtn",
 "weight": {"bits": 4, "group_size": 32, "symmetric": false, "init": "minmax"},
 "eval": {"path": "$D/eval.txt", "seq_len": 128, "max_windows": 4},
 "export": ["hf", "gptq", "compressed-tensors"], "threads": 1}
EOS
"$W" run --spec "$tmp/a.json" --workdir "$tmp/a" > "$tmp/a.out" 2> "$tmp/a.err"
rc=$?
[ $rc -eq 0 ] && [ "$(grep -c 'export verified' "$tmp/a.err")" -eq 3 ]
check $? "hf + gptq + compressed-tensors: done, each verified inside the job"
[ $rc -eq 0 ] || tail -3 "$tmp/a.err" | sed 's/^/# /'
sha=$(sha256sum "$B/model5000.bin" | cut -d' ' -f1)
$PY - "$tmp/a" "$B/model5000.bin" "$sha" <<'EOPY'
import json, struct, sys
d, model, sha = sys.argv[1:4]
met = json.load(open(d + "/metrics.json"))
for kind in ("hf", "gptq", "compressed-tensors"):
    m = json.load(open("%s/artifacts/%s/lrq-manifest.json" % (d, kind)))
    assert m["producer"] == "lrq" and m["method"] == "rtn" and m["spec"]["export"], kind
    assert m["source_sha256"][model] == sha, (kind, m["source_sha256"])
    # metrics.json prints 9 significant digits, the manifest 16: equal to that precision
    assert all(abs(m["metrics"]["quantized"][k] - v) <= 1e-8 * abs(v) for k, v in met["quantized"].items()), kind
    assert m["runtimes"] and all(r["name"] for r in m["runtimes"]) and m["verified"]["result"], kind
    for f, e in m["files"].items():
        import hashlib, os
        p = "%s/artifacts/%s/%s" % (d, kind, f)
        assert os.path.getsize(p) == e["bytes"] and hashlib.sha256(open(p, "rb").read()).hexdigest() == e["sha256"], p
g = json.load(open(d + "/artifacts/gptq/quantize_config.json"))
c = json.load(open(d + "/artifacts/gptq/config.json"))["quantization_config"]
assert g == c and g["checkpoint_format"] == "gptq_v2" and g["sym"] is False, g
rt = [r["name"] for r in json.load(open(d + "/artifacts/gptq/lrq-manifest.json"))["runtimes"]]
assert "vLLM" not in rt, rt  # vLLM's GPTQ path takes symmetric weights only
raw = open(d + "/artifacts/hf/model.safetensors", "rb").read()
h = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
assert h["model.layers.0.self_attn.q_proj.weight"]["dtype"] == "F32"
assert json.load(open(d + "/artifacts/hf/config.json"))["torch_dtype"] == "float32"
assert met["evaluated"]["scale_store"] == 1  # fp16 (gptq); the fp32 source needs nothing for compressed-tensors
EOPY
check $? "manifests: spec, method, source sha256, metrics, file hashes, runtimes; gptq_v2 config twice; hf linears F32"

$PY "$SRC/tools/mkmodel.py" --out "$tmp/synth" --hidden 64 --ffn 128 --layers 1 --heads 2 --kv-heads 1 \
    --vocab 512 --dtype bf16 --seed 3 > /dev/null 2>&1
cat > "$tmp/b.json" <<EOS
{"model": "$tmp/synth", "tokenizer": "$LRQ_SHARED/models/stories260K/tok512.bin", "method": "rtn",
 "weight": {"bits": 4, "group_size": 32, "init": "minmax"},
 "eval": {"path": "$D/eval.txt", "seq_len": 64, "max_windows": 2}, "export": ["hf"], "threads": 1}
EOS
"$W" run --spec "$tmp/b.json" --workdir "$tmp/b" > "$tmp/b.out" 2> "$tmp/b.err"
[ $? -eq 0 ] && grep -q 'hf export verified' "$tmp/b.err"
check $? "bf16 source, hf only: done and verified"
$PY - "$tmp/b" <<'EOPY'
import json, struct, sys
d = sys.argv[1]
raw = open(d + "/artifacts/hf/model.safetensors", "rb").read()
h = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
assert h["model.layers.0.self_attn.q_proj.weight"]["dtype"] == "BF16"
assert "rounded to the source dtype" in json.load(open(d + "/metrics.json"))["evaluated"]["weights"]
EOPY
check $? "bf16 source, hf only: linears BF16, evaluation on the bf16-rounded weights"

cat > "$tmp/c.json" <<EOS
{"model": "$LRQ_SHARED/models/stories260K/stories260K.bin", "method": "rtn", "weight": {"bits": 4},
 "export": ["compressed-tensors"], "threads": 1}
EOS
"$W" run --spec "$tmp/c.json" --workdir "$tmp/c" > "$tmp/c.out" 2> "$tmp/c.err"
rc=$?
[ $rc -eq 65 ] && grep -q 'multiple of 8' "$tmp/c.out" && ! grep -q '"stage":"rtn"' "$tmp/c.out"
check $? "stories260K compressed-tensors refused up front (exit 65) naming vLLM's packing rule"

w8a8() { # name activation-object export
    cat > "$tmp/$1.json" <<EOS
{"model": "$B/model5000.bin", "tokenizer": "$B/tok105.bin", "method": "rtn",
 "weight": {"bits": ${4:-8}, "group_size": ${5:-0}, "symmetric": true, "init": "minmax"}, "activation": $2,
 "calibration": {"path": "$D/calib.txt", "samples": 8, "seq_len": 64},
 "eval": {"path": "$D/eval.txt", "seq_len": 64, "max_windows": 4}, "export": $3, "threads": 1}
EOS
    "$W" run --spec "$tmp/$1.json" --workdir "$tmp/$1" > "$tmp/$1.out" 2> "$tmp/$1.err"
}
w8a8 d '{"bits": 8, "granularity": "per_tensor", "calibrate": "minmax"}' '["hf", "compressed-tensors"]'
rc=$?
[ $rc -eq 0 ] && grep -q 'int-quantized W8A8' "$tmp/d.err" && grep -q 'compressed-tensors export verified' "$tmp/d.err"
check $? "W8A8 static per-tensor: int-quantized export done and verified inside the job"
[ $rc -eq 0 ] || tail -3 "$tmp/d.err" | sed 's/^/# /'
A="$tmp/d/artifacts"
$PY "$SRC/tests/engine/ct_decode.py" "$A/compressed-tensors" "$A/hf" none "$A/activation.json" > "$tmp/d.dec" &&
$PY - "$tmp/d.dec" "$A" <<'EOPY'
import json, sys
r = json.load(open(sys.argv[1]))
qc = json.load(open(sys.argv[2] + "/compressed-tensors/config.json"))["quantization_config"]
assert qc["format"] == "int-quantized" and qc["config_groups"]["group_0"]["format"] == "int-quantized", qc
w, ia = r["weights"], r["input_activations"]
assert (w["num_bits"], w["type"], w["symmetric"], w["strategy"]) == (8, "int", True, "channel"), w
assert (ia["num_bits"], ia["type"], ia["symmetric"], ia["strategy"], ia["dynamic"]) == (8, "int", False, "tensor", False), ia
assert r["keys"] == ["config_groups", "format", "global_compression_ratio", "ignore", "kv_cache_scheme",
                     "quant_method", "quantization_status"], r["keys"]
for ly in json.load(open(sys.argv[2] + "/activation.json"))["layers"]:
    i = ly["input"]
    assert i["self_attn.q_proj"] == i["self_attn.k_proj"] == i["self_attn.v_proj"], i
    assert i["mlp.gate_proj"] == i["mlp.up_proj"], i
EOPY
check $? "W8A8 static: ct_decode.py bit-equal to the hf linears, input_scale/zero_point equal to activation.json"

w8a8 e '{"bits": 8, "granularity": "per_token", "symmetric": true}' '["hf", "compressed-tensors"]'
rc=$?
A="$tmp/e/artifacts"
[ $rc -eq 0 ] && grep -q 'compressed-tensors export verified' "$tmp/e.err" &&
$PY "$SRC/tests/engine/ct_decode.py" "$A/compressed-tensors" "$A/hf" none > "$tmp/e.dec" &&
$PY - "$tmp/e.dec" <<'EOPY'
import json, sys
ia = json.load(open(sys.argv[1]))["input_activations"]
assert (ia["symmetric"], ia["strategy"], ia["dynamic"]) == (True, "token", True), ia
EOPY
check $? "W8A8 dynamic per-token: verified, dynamic true, strategy token, no input_scale, decoded bit-equal"

w8a8 f '{"bits": 8, "granularity": "per_tensor"}' '["compressed-tensors"]' 4 32
rc=$?
[ $rc -eq 65 ] && grep -q 'weight.bits' "$tmp/f.out" && grep -q 'W8A8' "$tmp/f.out" && ! grep -q '"stage":"rtn"' "$tmp/f.out"
check $? "W4 g32 with 8-bit per_tensor activations and compressed-tensors refused up front (exit 65) naming weight.bits"
[ $rc -eq 65 ] || tail -2 "$tmp/f.out" | sed 's/^/# /'
