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
echo "1..5"

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
