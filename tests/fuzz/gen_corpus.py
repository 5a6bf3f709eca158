#!/usr/bin/python3
"""gen_corpus.py — write tiny seed inputs to tests/fuzz/corpus/<name>/ (run from anywhere)."""
import json
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def out(name, fn, data):
    d = os.path.join(here, "corpus", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, fn), "wb") as f:
        f.write(data)


def st(tensors):
    hdr, off, blob = {}, 0, b""
    for name, dt, shape, raw in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blob += raw
    hdr["__metadata__"] = {"format": "pt"}
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + blob


out("safetensors", "two.safetensors", st([("a", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)),
                                          ("b", "BF16", [3], b"\x80\x3f" * 3)]))
out("safetensors", "empty.safetensors", st([]))
out("safetensors", "zero.safetensors", st([("z", "F16", [0, 4], b"")]))
# llama2.c: dim 4, hidden 4, 1 layer, 2 heads, 1 kv head, vocab 3, seq 2 (shared)
D, F, L, V, S, Dh, KV = 4, 4, 1, 3, 2, 2, 2
nfl = V * D + L * D + L * D * D + 2 * L * KV * D + L * D * D + L * D + 3 * L * F * D + D + S * Dh
out("llama2c", "tiny.bin", struct.pack("<7i", D, F, L, 2, 1, V, S) + struct.pack("<%df" % nfl, *[0.5] * nfl))
out("llama2c", "unshared.bin", struct.pack("<7i", D, F, L, 2, 1, -V, S) +
    struct.pack("<%df" % (nfl + V * D), *[0.25] * (nfl + V * D)))
# tokenizer.bin: <unk> <s> </s>, 256 byte pieces, a few merges
pieces = [(b"<unk>", 0.0), (b"\n<s>\n", 0.0), (b"\n</s>\n", 0.0)]
pieces += [(("<0x%02X>" % i).encode(), 0.0) for i in range(256)]
pieces += [(b" ", -1.0), (b"a", -2.0), (b"b", -3.0), (b" a", 0.0), (b"ab", -0.5), (b" ab", -0.25)]
out("tok_bin", "small.bin", struct.pack("<i", 3) + b"".join(struct.pack("<fi", s, len(p)) + p for p, s in pieces))
vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "\u2581": 3, "a": 4, "b": 5, "\u2581a": 6, "ab": 7}
out("tok_json", "small.json", json.dumps({
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"}]},
    "model": {"type": "BPE", "byte_fallback": True, "unk_token": "<unk>", "vocab": vocab,
              "merges": ["\u2581 a", ["a", "b"]]}}).encode())
