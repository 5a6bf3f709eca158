#!/bin/sh
# The statistics-based methods stream their results through the block store (docs/memory.md, Block
# files): stories260K, W4 g32, 8 calibration windows × 128 tokens, 8 eval windows, one thread (~20 s).
#   1-2  gptq and lqer (L²QER on a GPTQ base, rank 8, int8 factors) complete uninterrupted
#   3-4  the same jobs SIGKILLed at moments that follow their own "layer" events (the cumulative count
#        in progress.jsonl reaching 3, 9, 14, 20, 28 of 35, then 0-20 ms) and restarted on the same
#        work dir until done: the factored and hf artifacts are bit-identical to the uninterrupted
#        run's, and so is metrics.json without its timings; at least one restart resumed
#   5    every block file of the finished lqer job, read here with its own parser (wk_ckpt.h layout),
#        is version 2 and holds the factor header (8 bits, rank 8 for the seven linears), codes equal
#        to the artifact's, and L (m,k), R (k,n) equal to the artifact's int8 codes × fp16 scales (the
#        file keeps the rounded values: exact equality); no lin-BBB-I.bin remains
#   6    a flipped byte in block 2's L of linear o: the re-run logs the file as unusable with the
#        checksum reason, quantizes exactly that block's 7 linears again, and the artifact is unchanged
#   7    block 3's R of linear up cut short under a valid checksum: the re-run names "low-rank factors
#        of the wrong size", recomputes that block only, and the artifact is unchanged
set -u
: "${LRQ_BUILDDIR:?}" "${LRQ_SHARED:?}"
W="$LRQ_BUILDDIR/lrq-worker"
M="$LRQ_SHARED/models/stories260K/stories260K.bin"
D="$LRQ_SHARED/data/tinystories"
PY=/usr/bin/python3; [ -x $PY ] || PY=python3
[ -r "$M" ] && [ -r "$D/calib.txt" ] && [ -r "$D/eval.txt" ] || { echo "1..0 # SKIP no stories260K/tinystories under $LRQ_SHARED"; exit 0; }
[ -x "$W" ] || { echo "1..0 # SKIP $W not built"; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lrq-qstore.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n=0
check() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
echo "1..7"

spec() { # name method extra-json
    cat > "$tmp/$1.json" <<EOS
{"model": "$M", "method": "$2", "weight": {"bits": 4, "group_size": 32},
 "calibration": {"path": "$D/calib.txt", "samples": 8, "seq_len": 128},
 "eval": {"path": "$D/eval.txt", "seq_len": 128, "max_windows": 8}$3,
 "export": ["hf"], "seed": 0, "threads": 1}
EOS
}
spec gptq gptq ', "gptq": {"damp": 0.01, "block_size": 128}'
spec lqer lqer ', "lqer": {"rank": 8, "factor_bits": 8, "base": "gptq"}'
# same DIR1 DIR2: artifacts and metrics.json (timings dropped) equal
same() {
    for f in factored/model.safetensors hf/model.safetensors; do
        [ "$(sha256sum < "$1/artifacts/$f")" = "$(sha256sum < "$2/artifacts/$f" 2>/dev/null)" ] || { echo "# $f differs"; return 1; }
    done
    $PY - "$1/metrics.json" "$2/metrics.json" <<'EOPY'
import json, sys
def strip(x):
    if isinstance(x, dict): return {k: strip(v) for k, v in x.items() if k != "seconds"}
    if isinstance(x, list): return [strip(v) for v in x]
    return x
a, b = (strip(json.load(open(p))) for p in sys.argv[1:3])
if a != b: print("# metrics differ in", [k for k in a if a.get(k) != b.get(k)])
sys.exit(0 if a == b else 1)
EOPY
}
layers() { _c=$(grep -c '"event":"layer"' "$1/progress.jsonl" 2>/dev/null); echo "${_c:-0}"; }

for m in gptq lqer; do
    "$W" run --spec "$tmp/$m.json" --workdir "$tmp/$m" > "$tmp/$m.out" 2> "$tmp/$m.err"
    rc=$?
    [ $rc -eq 0 ] && [ -s "$tmp/$m/artifacts/factored/model.safetensors" ]
    check $? "$m job completes uninterrupted"
    [ $rc -eq 0 ] || tail -3 "$tmp/$m.err" | sed 's/^/# /'
done

for m in gptq lqer; do
    k="$tmp/k$m" kills=0 resumed=0 i=0
    for target in 3 9 14 20 28; do
        i=$((i + 1))
        "$W" run --spec "$tmp/$m.json" --workdir "$k" > "$tmp/k.out" 2>> "$tmp/k$m.err" &
        pid=$!
        while [ "$(layers "$k")" -lt $target ] && kill -0 $pid 2>/dev/null; do sleep 0.005; done
        sleep "$(awk -v s="$i$$" 'BEGIN { srand(s); printf "%.3f", 0.02 * rand() }')"
        kill -9 $pid 2>/dev/null
        wait $pid 2>/dev/null
        [ $? -eq 137 ] && kills=$((kills + 1))
        grep -q '"event":"resume"' "$tmp/k.out" && resumed=$((resumed + 1))
    done
    "$W" run --spec "$tmp/$m.json" --workdir "$k" > "$tmp/k.out" 2>> "$tmp/k$m.err"
    rc=$?
    grep -q '"event":"resume"' "$tmp/k.out" && resumed=$((resumed + 1))
    echo "# $m: $kills SIGKILLs landed, $resumed runs resumed, $(layers "$k") linears quantized in all (35 in one run); exit $rc"
    [ $rc -eq 0 ] && [ $kills -ge 1 ] && [ $resumed -ge 1 ] && same "$tmp/$m" "$k"
    check $? "$m killed and restarted $kills times: artifacts and metrics bit-identical to the uninterrupted run"
done

$PY - "$tmp/lqer" <<'EOPY'
import hashlib, json, os, struct, sys
import numpy as np
d = sys.argv[1]
def sections(p):
    b = open(p, "rb").read()
    assert b[:8] == b"LRQCKPT1", p
    off, out = 8, {}
    while True:
        tag, _, ln = struct.unpack_from("<IIQ", b, off)
        body = b[off + 16: off + 16 + ln]
        if tag == struct.unpack("<I", b"END!")[0]:
            assert hashlib.sha256(b[:off + 16]).digest() == body, p + ": checksum"  # it covers the trailer's header
            return out
        out[struct.pack("<I", tag).rstrip(b"\0").decode()] = body
        off += 16 + ln
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); base = 8 + n
    dt = {"F32": np.float32, "F16": np.float16, "U8": np.uint8, "I8": np.int8}
    return {k: np.frombuffer(b[base + v["data_offsets"][0]: base + v["data_offsets"][1]], dt[v["dtype"]]).reshape(v["shape"])
            for k, v in h.items() if k != "__metadata__"}
art = load(d + "/artifacts/factored/model.safetensors")
hf = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
bad = 0
for b in range(5):
    s = sections(f"{d}/ckpt/block-{b:03d}.bin")
    version, block = struct.unpack_from("<II", s["BHDR"])
    bits, *ks = struct.unpack("<8I", s["BFAC"])
    metrics = json.loads(s["BMET"])
    if (version, block, bits, ks) != (2, b, 8, [8] * 7) or len(metrics) != 7: bad += 1; print(f"# block {b}: header {version} {block} {bits} {ks}")
    for i, name in enumerate(hf):
        p = f"model.layers.{b}.{name}"
        codes = np.frombuffer(s[f"QC{i}"], np.uint8).reshape(art[p + ".codes"].shape)
        m, n = codes.shape
        L = np.frombuffer(s[f"FL{i}"], np.float32).reshape(m, 8)
        R = np.frombuffer(s[f"FR{i}"], np.float32).reshape(8, n)
        Lr = art[p + ".lora_B"].astype(np.float32) * art[p + ".lora_B_scale"].astype(np.float32)[:, None]
        Rr = art[p + ".lora_A"].astype(np.float32) * art[p + ".lora_A_scale"].astype(np.float32)[:, None]
        if not (np.array_equal(codes, art[p + ".codes"]) and np.array_equal(L, Lr) and np.array_equal(R, Rr)):
            bad += 1; print(f"# {p}: block file and artifact differ")
left = [f for f in os.listdir(d + "/ckpt") if f.startswith("lin-")]
if left: bad += 1; print("# left over:", left)
sys.exit(1 if bad else 0)
EOPY
check $? "lqer block files hold version 2, the factor header, codes and L, R equal to the factored artifact's"

$PY - "$tmp/lqer/ckpt/block-002.bin" "$tmp/flip.bin" <<'EOPY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read()); off = 8
while True:
    tag, _, ln = struct.unpack_from("<IIQ", b, off)
    if tag == struct.unpack("<I", b"FL3\0")[0]: b[off + 16 + ln // 2] ^= 0x10; break
    off += 16 + ln
open(sys.argv[2], "wb").write(b)
EOPY
cp -r "$tmp/lqer" "$tmp/flip" && cp "$tmp/flip.bin" "$tmp/flip/ckpt/block-002.bin"
"$W" run --spec "$tmp/lqer.json" --workdir "$tmp/flip" > "$tmp/flip.out" 2> "$tmp/flip.err"
rc=$?
redone=$(grep -c '"event":"layer"' "$tmp/flip.out")
grep 'block-002.bin' "$tmp/flip.err" | head -1 | sed 's/^/# /'
[ $rc -eq 0 ] && [ "$redone" -eq 7 ] && grep -q 'block 2: its file is not usable (.*block-002.bin.*checksum' "$tmp/flip.err" && same "$tmp/lqer" "$tmp/flip"
check $? "a flipped byte in a factor section: refused for its checksum, that block recomputed ($redone linears), artifact unchanged"

$PY - "$tmp/lqer/ckpt/block-003.bin" "$tmp/cut.bin" <<'EOPY'
import hashlib, struct, sys
b = open(sys.argv[1], "rb").read(); off = 8; out = bytearray(b[:8])
while True:
    tag, _, ln = struct.unpack_from("<IIQ", b, off)
    body = b[off + 16: off + 16 + ln]
    if tag == struct.unpack("<I", b"END!")[0]: break
    if tag == struct.unpack("<I", b"FR5\0")[0]: body = body[:-4]
    out += struct.pack("<IIQ", tag, 0, len(body)) + body
    off += 16 + ln
out += struct.pack("<IIQ", tag, 0, 32)
out += hashlib.sha256(out).digest()  # over everything before the digest, the trailer's header included
open(sys.argv[2], "wb").write(out)
EOPY
cp -r "$tmp/lqer" "$tmp/cut" && cp "$tmp/cut.bin" "$tmp/cut/ckpt/block-003.bin"
"$W" run --spec "$tmp/lqer.json" --workdir "$tmp/cut" > "$tmp/cut.out" 2> "$tmp/cut.err"
rc=$?
redone=$(grep -c '"event":"layer"' "$tmp/cut.out")
grep 'block-003.bin' "$tmp/cut.err" | head -1 | sed 's/^/# /'
[ $rc -eq 0 ] && [ "$redone" -eq 7 ] && grep -q 'block 3: its file is not usable (.*block-003.bin: linear up has low-rank factors of the wrong size' "$tmp/cut.err" && same "$tmp/lqer" "$tmp/cut"
check $? "a factor section cut short under a valid checksum: refused naming it, that block recomputed, artifact unchanged"
