#!/usr/bin/python3
"""gguf_decode.py — independent GGUF reader for test_gguf.c, written from ggml's docs/gguf.md and
the block layouts in docs/formats.md (GGUF), not from lrq's writer.

    gguf_decode.py MODEL.gguf REFDIR ROPE

Parses the header (magic, version 3, every kv value type, tensor infos, alignment), checks that the
data is laid out in tensor-info order at the alignment, dequantizes every blk.N.<linear>.weight to
float32 with numpy as ggml's dequantize_row_* do, undoes llama.cpp's q/k row order (ROPE "half": the
model is an HF rotate-half checkpoint; "interleaved": llama2.c, no permutation) and compares bit for
bit with REFDIR/L.K.f32 (the evaluated weights, model row order, written by the test). Prints the
metadata the test asserts on as JSON; exit 1 on any mismatch."""
import json
import struct
import sys

import numpy as np

LIN = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class R:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, n):
        if self.o + n > len(self.b):
            raise ValueError("truncated")
        v = self.b[self.o:self.o + n]
        self.o += n
        return v

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def str(self):
        return self.take(self.u64()).decode("utf-8")

    def val(self, t):
        if t == 8:
            return self.str()
        if t == 9:
            et, n = self.u32(), self.u64()
            return [self.val(et) for _ in range(n)]
        return struct.unpack(FMT[t], self.take(SIZES[t]))[0]


def nbytes(t, n):
    return {0: 4 * n, 1: 2 * n, 30: 2 * n, 2: n // 32 * 18, 3: n // 32 * 20, 8: n // 32 * 34}[t]


def dequant(raw, t, rows, n):
    if t == 0:
        return np.frombuffer(raw, "<f4").reshape(rows, n)
    if t == 1:
        return np.frombuffer(raw, "<f2").astype(np.float32).reshape(rows, n)
    bs = {2: 18, 3: 20, 8: 34}[t]
    blk = np.frombuffer(raw, np.uint8).reshape(rows * n // 32, bs)
    d = blk[:, 0:2].copy().view("<f2").astype(np.float32)  # (nb, 1)
    if t == 8:
        q = blk[:, 2:].view(np.int8).astype(np.float32)
        x = d * q
    else:
        off = 4 if t == 3 else 2
        qs = blk[:, off:off + 16]
        nib = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float32)  # low nibbles: 0..15, high: 16..31
        if t == 2:
            x = d * (nib - np.float32(8))
        else:
            m = blk[:, 2:4].copy().view("<f2").astype(np.float32)
            x = nib * d + m
    return x.astype(np.float32).reshape(rows, n)


def main():
    path, refdir, rope = sys.argv[1], sys.argv[2], sys.argv[3]
    r = R(open(path, "rb").read())
    if r.take(4) != b"GGUF" or r.u32() != 3:
        raise SystemExit("not GGUF v3")
    nt, nkv = r.u64(), r.u64()
    kv, types = {}, {}
    for _ in range(nkv):
        k = r.str()
        t = r.u32()
        if k in kv:
            raise SystemExit("duplicate key " + k)
        types[k], kv[k] = t, r.val(t)
    ti = []
    for _ in range(nt):
        name = r.str()
        nd = r.u32()
        ne = [r.u64() for _ in range(nd)]
        ti.append((name, ne, r.u32(), r.u64()))
    align = kv.get("general.alignment", 32)
    data0 = (r.o + align - 1) // align * align
    expect, bad = 0, []
    for name, ne, t, off in ti:
        n = int(np.prod(ne))
        if off != expect:
            bad.append("%s at offset %d, expected %d" % (name, off, expect))
        expect += (nbytes(t, n) + align - 1) // align * align
    if data0 + expect > len(r.b) + align:
        bad.append("data runs past the end of the file")
    L = kv["llama.block_count"]
    dh = kv["llama.rope.dimension_count"]
    tens = {name: (ne, t, off) for name, ne, t, off in ti}
    counts = {}
    for l in range(L):
        for k, nm in enumerate(LIN):
            ne, t, off = tens["blk.%d.%s.weight" % (l, nm)]
            n, rows = ne[0], ne[1]
            counts[t] = counts.get(t, 0) + 1
            x = dequant(r.b[data0 + off:data0 + off + nbytes(t, n * rows)], t, rows, n)
            if rope == "half" and k in (0, 1):  # GGUF row h*dh + 2i + j  <-  HF row h*dh + j*dh/2 + i
                x = x.reshape(rows // dh, dh // 2, 2, n).transpose(0, 2, 1, 3).reshape(rows, n)
            ref = np.fromfile("%s/%d.%d.f32" % (refdir, l, k), "<f4").reshape(rows, n)
            if t == 1:
                ref = ref.astype(np.float16).astype(np.float32)
            if not np.array_equal(x.view(np.uint32), ref.view(np.uint32)):
                i, j = np.argwhere(x.view(np.uint32) != ref.view(np.uint32))[0]
                bad.append("blk.%d.%s row %d col %d: %r != %r" % (l, nm, i, j, float(x[i, j]), float(ref[i, j])))
    out = {"bad": bad, "types": {str(t): c for t, c in counts.items()}, "nkv": nkv,
           "u32": sorted(k for k, t in types.items() if t == 4), "f32": sorted(k for k, t in types.items() if t == 6),
           "arch": kv.get("general.architecture"), "tokens": len(kv.get("tokenizer.ggml.tokens", [])),
           "tok_model": kv.get("tokenizer.ggml.model"), "file_type": kv.get("general.file_type"),
           "tok0": kv["tokenizer.ggml.tokens"][:4], "space_piece": [p for p in kv["tokenizer.ggml.tokens"] if p.startswith("\u2581")][:1],
           "token_type_counts": {str(v): kv["tokenizer.ggml.token_type"].count(v) for v in set(kv["tokenizer.ggml.token_type"])},
           "tensors": [name for name, _, _, _ in ti][:4]}
    print(json.dumps(out))
    sys.exit(1 if bad else 0)


main()
