#!/usr/bin/python3
"""gen_corpus.py — write tiny seed inputs to tests/fuzz/corpus/<name>/ (run from anywhere)."""
import hashlib
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


# SentencePiece .model (fuzz_tok_spm): protobuf wire format written here
def pv(v):
    o = b""
    while True:
        c = v & 0x7F
        v >>= 7
        o += bytes([c | (0x80 if v else 0)])
        if not v:
            return o


def pf(num, wt, payload):
    if wt == 2:
        payload = pv(len(payload)) + payload
    return pv(num << 3 | wt) + payload


def spm(pcs, bpe=2, byte_fallback=1, junk=False):
    m = b""
    for s, score, ty in pcs:
        m += pf(1, 2, pf(1, 2, s.encode()) + pf(2, 5, struct.pack("<f", score)) + pf(3, 0, pv(ty)))
    tr = pf(3, 0, pv(bpe)) + pf(35, 0, pv(byte_fallback)) + pf(40, 0, pv(0)) + pf(41, 0, pv(1)) + pf(42, 0, pv(2))
    if junk:  # unknown fields of every wire type, a group included
        tr += pf(7, 2, b"text") + pf(10, 5, struct.pack("<f", 1.0)) + pf(99, 1, b"\0" * 8) + pv(100 << 3 | 3) + \
            pf(1, 0, pv(5)) + pv(100 << 3 | 4)
    return m + pf(2, 2, tr) + pf(3, 2, pf(1, 2, b"identity") + pf(3, 0, pv(1)) + pf(4, 0, pv(0)))


base = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)]
norm = [("\u2581", -1.0, 1), ("a", -2.0, 1), ("b", -3.0, 1), ("\u2581a", 0.0, 1), ("ab", -0.5, 1), ("\u2581ab", -0.25, 1)]
out("tok_spm", "bytes.model", spm(base + [("<0x%02X>" % i, 0.0, 6) for i in range(256)] + norm))
out("tok_spm", "nobytes.model", spm(base + norm, byte_fallback=0, junk=True))

# job specs (fuzz_spec): a minimal and a full valid one, typical refusals
out("spec", "rtn.json", b'{"model":"m.bin","method":"rtn"}')
out("spec", "full.json", json.dumps({
    "model": "models/m.safetensors", "tokenizer": "tok.model", "method": "lrq", "name": "n",
    "weight": {"bits": 3, "group_size": 128, "symmetric": True, "init": "minmax"},
    "calibration": {"path": "calib.txt", "samples": 4, "seq_len": 64},
    "eval": {"path": "eval.txt", "seq_len": 64, "max_windows": 2},
    "lrq": {"iterations": 10, "lr": 0.001, "batch_size": 2, "rank_policy": "fixed", "rank": 4,
            "rank_ratio": 0.5, "checkpoint_every_s": 0},
    "export": ["hf", "gptq"], "seed": 7, "threads": 1, "priority": -3, "max_attempts": 2}).encode())
out("spec", "act.json", b'{"model":"m","method":"lrq","calibration":{"path":"c"},"activation":{"bits":8,'
    b'"granularity":"per_tensor","kv_bits":8,"calibrate":"percentile","percentile":99.9,'
    b'"simulate_during_reconstruction":true},"smooth":{"alpha":0.8,"pow2":true}}')
out("spec", "bad.json", b'{"model":"m","method":"flexround","calibration":{"path":"c","samples":2},'
    b'"lrq":{"batch_size":4,"lr":1e999},"export":["onnx"],"weight":{"group_size":48}}')

# worker stdout (fuzz_lines): [max_line-1, seed hi, seed lo, flags] + stream
ev = (b'{"event":"start","job_method":"lrq","resumed":true}\n'
      b'{"event":"progress","stage":"reconstruct","done":3,"total":10,"fraction":0.3}\r\n'
      b'not json\n\n{"event":"error","message":"weight.bits: must be 2..8","field":"weight.bits"}\n'
      b'{"event":"done","metrics":{"ppl":12.5}}')
out("lines", "events.bin", bytes([255, 0x12, 0x34, 0]) + ev)
out("lines", "overlong.bin", bytes([15, 0x00, 0x07, 0]) + b'{"event":"progress"}\nshort\n' + b"x" * 40 + b"\ntail")
out("lines", "stop.bin", bytes([63, 0xab, 0xcd, 1]) + b'a\nb\nc\n')

# request targets (fuzz_router): [method, allow mask/buffer] + target
for i, (m, t) in enumerate([(0, b"/v1/jobs?state=running&limit=50&after=12"),
                            (2, b"/v1/jobs/42/cancel"),
                            (0, b"/v1/jobs/9007199254740991/artifacts/hf/model.safetensors"),
                            (0, b"/v1/jobs/7/artifacts/%2e%2e/%2E%2E/etc/passwd"),
                            (3, b"/v1/jobs/0012"),
                            (6, b"/healthz"),
                            (0, b"/v1/jobs?limit=%35%30&state=qu%65ued+&after=-1&x")]):
    out("router", "t%d.bin" % i, bytes([m, 0x3f if i % 2 else 40]) + t)


# checkpoints (fuzz_ckpt): [flags] + file; flags bit 0 = harness appends magic/trailer
def sect(tag, data):
    return tag + b"\0\0\0\0" + struct.pack("<Q", len(data)) + data


body = sect(b"HEAD", b'{"block":1}') + sect(b"PARM", struct.pack("<4f", 1, 2, 3, 4)) + sect(b"QS0\0", b"")
trailer_hdr = b"END!\0\0\0\0" + struct.pack("<Q", 32)
whole = b"LRQCKPT1" + body + trailer_hdr
out("ckpt", "raw.ckpt", b"\0" + whole + hashlib.sha256(whole).digest())
out("ckpt", "body.bin", b"\1" + body)


# HF directory (fuzz_hf): u16 config length, u16 index length, config.json, index, safetensors
def hf(tie, dt, index):
    D, F, H, KV, V = 8, 16, 2, 1, 8
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": D,
           "intermediate_size": F, "num_hidden_layers": 1, "num_attention_heads": H, "num_key_value_heads": KV,
           "vocab_size": V, "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "hidden_act": "silu", "tie_word_embeddings": tie}
    one = {"F16": b"\x00\x3c", "BF16": b"\x80\x3f", "F32": struct.pack("<f", 1.0)}[dt]
    L = "model.layers.0."
    shapes = [("model.embed_tokens.weight", [V, D]), ("model.norm.weight", [D]),
              (L + "input_layernorm.weight", [D]), (L + "post_attention_layernorm.weight", [D]),
              (L + "self_attn.q_proj.weight", [D, D]), (L + "self_attn.k_proj.weight", [KV * D // H, D]),
              (L + "self_attn.v_proj.weight", [KV * D // H, D]), (L + "self_attn.o_proj.weight", [D, D]),
              (L + "mlp.gate_proj.weight", [F, D]), (L + "mlp.up_proj.weight", [F, D]),
              (L + "mlp.down_proj.weight", [D, F])]
    if not tie:
        shapes.append(("lm_head.weight", [V, D]))
    tensors = []
    for name, shape in shapes:
        n = 1
        for s in shape:
            n *= s
        tensors.append((name, dt, shape, one * n))
    c = json.dumps(cfg).encode()
    i = json.dumps({"metadata": {}, "weight_map": {name: "s.safetensors" for name, _ in shapes}}).encode() \
        if index else b""
    return struct.pack("<HH", len(c), len(i)) + c + i + st(tensors)


out("hf", "f16.bin", hf(False, "F16", False))
out("hf", "bf16_tied_index.bin", hf(True, "BF16", True))
