#!/bin/sh
# test_tok_spm.sh — a SentencePiece .model as the job's tokenizer (docs/formats.md, tokenizers).
#  1-2. lrq-worker tokenize gives the same id stream with tok512.model as with tok512.bin (eval.txt),
#       and with tok105.model as with tok105.bin (calib.txt).
#  3.   An RTN job on stories260K with "tokenizer": tok512.model runs (eval + gguf export, verified in
#       the job) and its GGUF and metrics are those of the same job with tok512.bin, byte for byte.
#  4-5. A truncated .model and a UNIGRAM .model fail the job before quantizing: exit 65, the error
#       event names the field "tokenizer" and the reason (the byte offset; the model type).
set -u
: "${LRQ_BUILDDIR:?}" "${LRQ_SHARED:?}"
W="$LRQ_BUILDDIR/lrq-worker"
M="$LRQ_SHARED/models/stories260K"
B="$LRQ_SHARED/models/babyllama-tok105"
D="$LRQ_SHARED/data/tinystories"
PY=/usr/bin/python3
[ -f "$M/tok512.model" ] && [ -f "$B/tok105.model" ] || { echo "1..0 # SKIP shared .model files not found"; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lrq-tokspm.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { if [ "$1" -eq 0 ]; then ok "$2"; else nok "$2"; fi; }
echo "1..5"

"$W" tokenize --model "$M/stories260K.bin" --tokenizer "$M/tok512.model" --data "$D/eval.txt" > "$tmp/m.json" 2> "$tmp/m.err" &&
  "$W" tokenize --model "$M/stories260K.bin" --tokenizer "$M/tok512.bin" --data "$D/eval.txt" > "$tmp/b.json" 2> "$tmp/b.err" &&
  [ "$(wc -c < "$tmp/m.json")" -gt 100000 ] && cmp -s "$tmp/m.json" "$tmp/b.json"
check $? "tokenize eval.txt: tok512.model = tok512.bin"
"$W" tokenize --model "$B/model5000.bin" --tokenizer "$B/tok105.model" --data "$D/calib.txt" > "$tmp/m2.json" 2> "$tmp/m2.err" &&
  "$W" tokenize --model "$B/model5000.bin" --tokenizer "$B/tok105.bin" --data "$D/calib.txt" > "$tmp/b2.json" 2> "$tmp/b2.err" &&
  [ "$(wc -c < "$tmp/m2.json")" -gt 100000 ] && cmp -s "$tmp/m2.json" "$tmp/b2.json"
check $? "tokenize calib.txt: tok105.model = tok105.bin"

spec() { # NAME TOKENIZER
  cat > "$tmp/$1.json" <<EOF
{"model": "$M/stories260K.bin", "tokenizer": "$2", "method": "rtn",
 "weight": {"bits": 8, "group_size": 32, "symmetric": true, "init": "minmax"},
 "eval": {"path": "$D/eval.txt", "seq_len": 128, "max_windows": 4},
 "export": ["gguf"], "gguf": {"type": "q8_0"}, "seed": 0, "threads": 1}
EOF
  OPENBLAS_NUM_THREADS=1 "$W" run --spec "$tmp/$1.json" --workdir "$tmp/$1" > "$tmp/$1.out" 2> "$tmp/$1.err"
}
spec jm "$M/tok512.model"; rm=$?
spec jb "$M/tok512.bin"; rb=$?
[ $rm -eq 0 ] && [ $rb -eq 0 ] && grep -q 'gguf export verified' "$tmp/jm.err" &&
  cmp -s "$tmp/jm/artifacts/gguf/model.gguf" "$tmp/jb/artifacts/gguf/model.gguf" &&
  $PY - "$tmp/jm/metrics.json" "$tmp/jb/metrics.json" <<'EOPY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["quantized"] == b["quantized"] and a["quantized"]["perplexity"] > 1, (a, b)
EOPY
check $? "RTN job with tokenizer tok512.model: done, GGUF and metrics identical to the tok512.bin job"
[ $rm -eq 0 ] || tail -3 "$tmp/jm.err" | sed 's/^/# /'

head -c 3000 "$M/tok512.model" > "$tmp/cut.model"
spec cut "$tmp/cut.model"; rc=$?
[ $rc -eq 65 ] && grep -q '"field":"tokenizer"' "$tmp/cut.out" && grep -q 'byte offset' "$tmp/cut.out" &&
  ! grep -q '"stage":"rtn"' "$tmp/cut.out"
check $? "truncated .model: exit 65 before quantizing, error names tokenizer and the byte offset"
[ $rc -eq 65 ] || { echo "# exit $rc"; tail -3 "$tmp/cut.out" | sed 's/^/# /'; }

# the same vocabulary declared UNIGRAM: trainer_spec.model_type (field 3) 2 → 1
$PY - "$M/tok512.model" "$tmp/uni.model" <<'EOPY'
import sys
b = open(sys.argv[1], "rb").read()
key = b"\x12\x0bdata/tok512\x18\x02"
assert b.count(key) == 1
open(sys.argv[2], "wb").write(b.replace(key, key[:-1] + b"\x01"))
EOPY
spec uni "$tmp/uni.model"; rc=$?
[ $rc -eq 65 ] && grep -q '"field":"tokenizer"' "$tmp/uni.out" && grep -q 'model type UNIGRAM is not supported' "$tmp/uni.out"
check $? "UNIGRAM .model: exit 65, error names tokenizer and the model type"
[ $rc -eq 65 ] || { echo "# exit $rc"; tail -3 "$tmp/uni.out" | sed 's/^/# /'; }
