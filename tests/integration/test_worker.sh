#!/bin/sh
# lrq-worker end to end on the bundled stories260K model: generate, eval, an RTN job with
# evaluation and export, and the errors users get for bad input.
set -u
: "${LRQ_BUILDDIR:?}" "${LRQ_SHARED:?}"
W="$LRQ_BUILDDIR/lrq-worker"
M="$LRQ_SHARED/models/stories260K"
D="$LRQ_SHARED/data/tinystories"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lrq-worker.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { if [ "$1" -eq 0 ]; then ok "$2"; else nok "$2"; fi; }
echo "1..11"

expect="Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high"
got=$("$W" generate --model "$M/stories260K.bin" --tokenizer "$M/tok512.bin" --steps 60 2>"$tmp/g.err")
[ "$got" = "$expect" ]; check $? "generate 60 steps from the llama2.c checkpoint"
got=$("$W" generate --model "$LRQ_SHARED/models/stories260K-hf" --tokenizer "$M/tok512.bin" --steps 60 2>>"$tmp/g.err")
[ "$got" = "$expect" ]; check $? "generate 60 steps from the HF checkpoint"

cat > "$tmp/rtn.json" <<EOS
{"model": "$M/stories260K.bin", "method": "rtn", "weight": {"bits": 4, "init": "mse"},
 "eval": {"path": "$D/eval.txt", "seq_len": 256, "max_windows": 40}, "export": ["hf"], "threads": 1}
EOS
"$W" run --spec "$tmp/rtn.json" --workdir "$tmp/rtn" > "$tmp/rtn.out" 2> "$tmp/rtn.err"
rc=$?
[ $rc -eq 0 ] && tail -1 "$tmp/rtn.out" | grep -q '"event":"done"' && [ -s "$tmp/rtn/metrics.json" ] \
    && [ -s "$tmp/rtn/progress.jsonl" ] && [ -s "$tmp/rtn/log" ] && [ -s "$tmp/rtn/artifacts/hf/model.safetensors" ]
check $? "rtn job: done event, metrics.json, progress.jsonl, log, hf artifact"

/usr/bin/python3 - "$tmp/rtn/metrics.json" <<'EOPY'
import json, sys
m = json.load(open(sys.argv[1]))
fp, q = m["fp"], m["quantized"]
assert 1.0 < fp["perplexity"] < 20, fp
assert q["perplexity"] > fp["perplexity"], (q, fp)          # W4 RTN loses something
assert 0 < q["kl_divergence"] < 1 and 0.5 < q["top1_agreement"] < 1, q
assert len(m["layers"]) == 35 and all(0 < l["weight_rel_error"] < 0.5 for l in m["layers"])
assert fp["tokens"] == 40 * 255, fp["tokens"]
EOPY
check $? "metrics.json: plausible fp/quantized perplexity, KL, top-1, 35 layer errors, 40x255 tokens"

# The exported HF checkpoint, evaluated by `eval --quantized`, reproduces the in-job numbers.
"$W" eval --model "$M/stories260K.bin" --quantized "$tmp/rtn/artifacts/hf" --tokenizer "$M/tok512.bin" \
    --data "$D/eval.txt" --seq-len 256 --max-windows 40 > "$tmp/eval.out" 2> "$tmp/eval.err"
/usr/bin/python3 - "$tmp/rtn/metrics.json" "$tmp/eval.out" <<'EOPY'
import json, sys
m = json.load(open(sys.argv[1]))
e = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
assert abs(e["perplexity"] / m["fp"]["perplexity"] - 1) < 1e-6, (e, m["fp"])
assert abs(e["quantized_perplexity"] / m["quantized"]["perplexity"] - 1) < 1e-4, (e, m["quantized"])
assert abs(e["kl_divergence"] - m["quantized"]["kl_divergence"]) < 1e-4, e
EOPY
check $? "eval --quantized on the hf export matches the job's own metrics (1e-4 rel)"

# Bad input: exit 65 and an error event naming the field.
printf '{"model": "%s", "method": "rtn", "weight": {"bits": 11}}' "$M/stories260K.bin" > "$tmp/bad.json"
"$W" run --spec "$tmp/bad.json" --workdir "$tmp/bad" > "$tmp/bad.out" 2>/dev/null
rc=$?
[ $rc -eq 65 ] && grep -q '"field":"weight.bits"' "$tmp/bad.out"; check $? "bits 11 → exit 65, error event names weight.bits"

printf 'not a model' > "$tmp/junk.bin"
printf '{"model": "%s", "method": "rtn"}' "$tmp/junk.bin" > "$tmp/junk.json"
"$W" run --spec "$tmp/junk.json" --workdir "$tmp/junk" > "$tmp/junk.out" 2>/dev/null
rc=$?
[ $rc -eq 65 ] && grep -q 'junk.bin' "$tmp/junk.out"; check $? "corrupt model file → exit 65, message names the file"

head -c 500000 "$M/stories260K.bin" > "$tmp/trunc.bin"
printf '{"model": "%s", "method": "rtn"}' "$tmp/trunc.bin" > "$tmp/trunc.json"
"$W" run --spec "$tmp/trunc.json" --workdir "$tmp/trunc" > "$tmp/trunc.out" 2>/dev/null
rc=$?
[ $rc -eq 65 ] && grep -qi 'trunc' "$tmp/trunc.out"; check $? "truncated llama2.c file → exit 65, says truncated"

printf '{"model": "%s", "method": "rtn", "export": ["gptq"]}' "$M/stories260K.bin" > "$tmp/gptq.json"
"$W" run --spec "$tmp/gptq.json" --workdir "$tmp/gptq" > "$tmp/gptq.out" 2>/dev/null
rc=$?
[ $rc -eq 65 ] && grep -q '172' "$tmp/gptq.out" && grep -q 'layers\.0\.' "$tmp/gptq.out"
check $? "gptq export of stories260K refused up front, naming the layer and the 172-wide shape"

printf '{"model": "%s", "method": "lrq", "calibration": {"path": "%s/nope.txt"}}' "$M/stories260K.bin" "$tmp" > "$tmp/nocal.json"
"$W" run --spec "$tmp/nocal.json" --workdir "$tmp/nocal" > "$tmp/nocal.out" 2>/dev/null
rc=$?
[ $rc -eq 65 ] && grep -q '"field":"calibration.path"' "$tmp/nocal.out"; check $? "missing calibration file → exit 65 naming calibration.path"

printf '{"model": "%s", "method": "rtn", "weight": {"bits": 4, "group_size": 32}, "eval": {"path": "%s", "seq_len": 256, "max_windows": 40}}' \
    "$M/stories260K.bin" "$D/eval.txt" > "$tmp/gs.json"
"$W" run --spec "$tmp/gs.json" --workdir "$tmp/gs" > "$tmp/gs.out" 2>/dev/null
rc=$?
/usr/bin/python3 - "$tmp/gs/metrics.json" "$tmp/rtn/metrics.json" <<'EOPY'
import json, sys
g, pc = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert g["weight"]["group_size"] == 32
# groups of 32 (down_proj: 5 full + one of 12 columns) fit better than one scale per row
assert all(a["weight_rel_error"] < b["weight_rel_error"] for a, b in zip(g["layers"], pc["layers"]))
assert g["quantized"]["kl_divergence"] < pc["quantized"]["kl_divergence"]
EOPY
py=$?
[ $rc -eq 0 ] && [ $py -eq 0 ]; check $? "W4 g32 (partial last group on the 172-wide down_proj): every layer error and KL below per-channel"
