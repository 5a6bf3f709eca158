#!/usr/bin/python3
"""mkmodel.py — write a synthetic Hugging Face Llama checkpoint directory.

    tools/mkmodel.py --out DIR [--hidden 128 --ffn 256 --layers 2 --heads 4 --kv-heads 2
                     --vocab 512 --dtype f32|f16|bf16 --seed 0 --shards N --ref REF.safetensors]

DIR gets config.json and model.safetensors (or, with --shards N > 1,
model-0000i-of-0000N.safetensors + model.safetensors.index.json). Tensors are written
one at a time, so a 1B-shaped checkpoint needs memory for one tensor only.
--ref writes the same tensors as F32 holding exactly the values stored (after rounding
to the dtype, decoded by numpy), for tests that check a loader's conversion.
--init zeros skips the random numbers (fast, for RSS/size benchmarks).
Only numpy is needed (Debian python3-numpy).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np


def to_storage(x, dtype):
    """float32 array -> (bytes, float32 values actually stored)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if dtype == "f32":
        return x.tobytes(), x
    if dtype == "f16":
        h = x.astype("<f2")
        return h.tobytes(), h.astype(np.float32)
    # bf16: round to nearest even on the upper 16 bits
    u = x.view(np.uint32).astype(np.uint64)
    h = (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF).astype("<u2")
    back = (h.astype(np.uint32) << 16).view(np.float32)
    return h.tobytes(), back


ST_DTYPE = {"f32": "F32", "f16": "F16", "bf16": "BF16"}
ESIZE = {"f32": 4, "f16": 2, "bf16": 2}


def tensor_specs(a):
    D, F, L, H, KV, V = a.hidden, a.ffn, a.layers, a.heads, a.kv_heads, a.vocab
    Dh = a.head_dim or D // H
    specs = [("model.embed_tokens.weight", (V, D), "w"), ("model.norm.weight", (D,), "n")]
    if not a.tie:
        specs.append(("lm_head.weight", (V, D), "w"))
    for l in range(L):
        p = "model.layers.%d." % l
        specs += [
            (p + "input_layernorm.weight", (D,), "n"),
            (p + "post_attention_layernorm.weight", (D,), "n"),
            (p + "self_attn.q_proj.weight", (H * Dh, D), "w"),
            (p + "self_attn.k_proj.weight", (KV * Dh, D), "w"),
            (p + "self_attn.v_proj.weight", (KV * Dh, D), "w"),
            (p + "self_attn.o_proj.weight", (D, H * Dh), "w"),
            (p + "mlp.gate_proj.weight", (F, D), "w"),
            (p + "mlp.up_proj.weight", (F, D), "w"),
            (p + "mlp.down_proj.weight", (D, F), "w"),
        ]
    return specs


CHUNK = 1 << 22  # elements generated at a time (bounds memory for 1B-shaped checkpoints)


def make_chunks(rng, shape, kind, init):
    """float32 values of a tensor, in row-major chunks (same stream whatever the chunking)."""
    n = int(np.prod(shape))
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        if init == "zeros":
            yield np.full(m, 1.0 if kind == "n" else 0.0, np.float32)
            continue
        x = rng.standard_normal(size=m, dtype=np.float32)
        yield (1.0 + 0.1 * x) if kind == "n" else 0.05 * x


def write_st(path, specs, esize, st_dtype, produce):
    """Write a safetensors file; produce(name) yields the raw bytes of a tensor in chunks."""
    specs = sorted(specs, key=lambda s: s[0])  # one dtype: alignment order = name order
    hdr, off = {}, 0
    for name, shape, _ in specs:
        n = int(np.prod(shape)) * esize
        hdr[name] = {"dtype": st_dtype, "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    hdr["__metadata__"] = {"format": "pt"}
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name, shape, _ in specs:
            nb = 0
            for b in produce(name):
                f.write(b)
                nb += len(b)
            assert nb == hdr[name]["data_offsets"][1] - hdr[name]["data_offsets"][0]
    os.replace(tmp, path)
    return off


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--ffn", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=None)
    ap.add_argument("--head-dim", type=int, default=None, help="written to config.json only if given")
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--max-pos", type=int, default=512)
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tie", action="store_true", help="tie_word_embeddings (no lm_head.weight)")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--init", choices=["normal", "zeros"], default="normal")
    ap.add_argument("--ref", default=None, help="also write the stored values as F32 safetensors here")
    a = ap.parse_args()
    if a.kv_heads is None:
        a.kv_heads = a.heads
    if (a.head_dim is None and a.hidden % a.heads) or a.heads % a.kv_heads:
        sys.exit("mkmodel: inconsistent heads/kv-heads/hidden")
    os.makedirs(a.out, exist_ok=True)
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": a.hidden, "intermediate_size": a.ffn, "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads,
        "vocab_size": a.vocab, "max_position_embeddings": a.max_pos, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "rope_scaling": None, "hidden_act": "silu", "attention_bias": False,
        "mlp_bias": False, "tie_word_embeddings": bool(a.tie), "bos_token_id": 1, "eos_token_id": 2,
        "torch_dtype": {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[a.dtype],
    }
    if a.head_dim is not None:
        cfg["head_dim"] = a.head_dim
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")

    specs = tensor_specs(a)
    # Values depend only on (seed, tensor name), whatever the sharding or write order.
    def values(name):
        shape, kind = next((s[1], s[2]) for s in specs if s[0] == name)
        seed = [a.seed] + list(name.encode())
        return make_chunks(np.random.default_rng(seed), shape, kind, a.init)

    def produce(name):
        return (to_storage(c, a.dtype)[0] for c in values(name))

    if a.shards <= 1:
        write_st(os.path.join(a.out, "model.safetensors"), specs, ESIZE[a.dtype], ST_DTYPE[a.dtype], produce)
        if os.path.exists(os.path.join(a.out, "model.safetensors.index.json")):
            os.remove(os.path.join(a.out, "model.safetensors.index.json"))
    else:
        n = a.shards
        groups = [specs[i::n] for i in range(n)]
        wmap, total = {}, 0
        for i, g in enumerate(groups):
            fn = "model-%05d-of-%05d.safetensors" % (i + 1, n)
            total += write_st(os.path.join(a.out, fn), g, ESIZE[a.dtype], ST_DTYPE[a.dtype], produce)
            for s in g:
                wmap[s[0]] = fn
        with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(wmap.items()))}, f, indent=2)
            f.write("\n")
    if a.ref:
        write_st(a.ref, specs, 4, "F32", lambda name: (to_storage(c, a.dtype)[1].tobytes() for c in values(name)))


if __name__ == "__main__":
    main()
