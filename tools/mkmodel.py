#!/usr/bin/python3
"""mkmodel.py — write a synthetic Hugging Face Llama checkpoint directory.

    tools/mkmodel.py --out DIR [--hidden 128 --ffn 256 --layers 2 --heads 4 --kv-heads 2
                     --vocab 512 --dtype f32|f16|bf16 --seed 0 --shards N --ref REF.safetensors]
    tools/mkmodel.py --preset llama2-7b --out DIR [--layers N]

--preset llama2-7b: Llama-2-7B's shape and layout (hidden 4096, intermediate 11008, 32 heads,
32 KV heads, 32 layers, vocab 32000, max_position_embeddings 4096, bf16), its config.json as
transformers writes it, two shards model-0000N-of-00002.safetensors filled in HF's tensor order
(embeddings, layers 0…, norm, lm_head) plus model.safetensors.index.json, weights normal(0, 0.02)
and norms 1, a README.md saying the weights are synthetic, and a tokenizer.bin (llama2.c format)
of exactly 32000 pieces (--tokenizer-text). --layers N keeps the width and changes the depth.
Any option given explicitly overrides the preset.

--tokenizer-text FILE writes DIR/tokenizer.bin with --vocab pieces: <unk>, <s>, </s>, the 256
byte pieces <0x00>…<0xFF>, then the characters of FILE and its most frequent substrings of
space-prefixed words (as SentencePiece's "▁word", written with a plain space as llama2.c
does), each scored −rank so that BPE merges take frequent pieces first; deterministic.

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


def make_chunks(rng, shape, kind, init, std=0.05, norms="jitter"):
    """float32 values of a tensor, in row-major chunks (same stream whatever the chunking)."""
    n = int(np.prod(shape))
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        if init == "zeros" or (kind == "n" and norms == "ones"):
            yield np.full(m, 1.0 if kind == "n" else 0.0, np.float32)
            continue
        x = rng.standard_normal(size=m, dtype=np.float32)
        yield (1.0 + 0.1 * x) if kind == "n" else std * x


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


BASE = {"hidden": 128, "ffn": 256, "layers": 2, "heads": 4, "vocab": 512, "max_pos": 512, "dtype": "f32",
        "shards": 1, "shard_order": "interleave", "std": 0.05, "norms": "jitter"}
# Llama-2-7B (meta-llama/Llama-2-7b-hf config.json); the release's two shards are in HF order.
PRESETS = {
    "llama2-7b": {"hidden": 4096, "ffn": 11008, "layers": 32, "heads": 32, "kv_heads": 32, "vocab": 32000,
                  "max_pos": 4096, "dtype": "bf16", "shards": 2, "shard_order": "hf", "std": 0.02,
                  "norms": "ones",
                  "tokenizer_text": os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "..", "..", "shared", "data", "tinystories", "calib.txt")},
}
SYNTHETIC = "SYNTHETIC: random weights (normal(0, %g), norms %s), not a trained model"


def llama2_config(a):
    """config.json as transformers writes it for Llama-2-7b-hf (4.31), at this checkpoint's shape."""
    cfg = {
        "_name_or_path": "lrq-synthetic/llama-2-7b-shaped", "architectures": ["LlamaForCausalLM"],
        "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": a.hidden,
        "initializer_range": 0.02, "intermediate_size": a.ffn, "max_position_embeddings": a.max_pos,
        "model_type": "llama", "num_attention_heads": a.heads, "num_hidden_layers": a.layers,
        "num_key_value_heads": a.kv_heads, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None,
        "tie_word_embeddings": bool(a.tie),
        "torch_dtype": {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[a.dtype],
        "transformers_version": "4.31.0.dev0", "use_cache": True, "vocab_size": a.vocab,
    }
    if a.head_dim is not None:
        cfg["head_dim"] = a.head_dim
    return cfg


def synthetic_note(a):
    if a.init == "zeros":
        return "SYNTHETIC: all-zero weights and unit norms, not a trained model"
    return SYNTHETIC % (a.std, "exactly 1" if a.norms == "ones" else "1 + 0.1·normal")


def write_readme(a):
    with open(os.path.join(a.out, "README.md"), "w") as f:
        f.write("# %s\n\n" % synthetic_note(a))
        f.write("Written by lrq's tools/mkmodel.py --preset %s (seed %d): the shape and file layout of\n"
                "Llama-2-7B (hidden %d, intermediate %d, %d heads, %d KV heads, %d layers, vocab %d, %s,\n"
                "%d shard(s)), for memory, disk and time measurements. Perplexities of this model mean\n"
                "nothing; the tokenizer.bin is built from text frequencies, not SentencePiece's.\n"
                % (a.preset, a.seed, a.hidden, a.ffn, a.heads, a.kv_heads, a.layers, a.vocab, a.dtype, a.shards))


def tokenizer_pieces(text, vocab):
    """[(piece bytes, score)] of exactly `vocab` entries (see the module docstring)."""
    import collections
    import re
    specials = [b"<unk>", b"<s>", b"</s>"]
    out = [(p, 0.0) for p in specials] + [(b"<0x%02X>" % i, 0.0) for i in range(256)]
    taken = set(p for p, _ in out)
    words = collections.Counter(re.findall(r" ?[^\s]+", text))
    counts = collections.Counter()
    for w, n in words.items():
        for i in range(len(w)):
            for j in range(i + 1, min(len(w), i + 32) + 1):
                counts[w[i:j]] += n
    # Characters first (every piece then splits into its prefix + its last character, and a
    # prefix is at least as frequent, so it sorts earlier), then by frequency, shorter first.
    chars = sorted((c for c in counts if len(c) == 1), key=lambda c: (-counts[c], c))
    multi = sorted((c for c in counts if len(c) > 1), key=lambda c: (-counts[c], len(c), c))
    need = vocab - len(out)
    picked = []
    for c in chars + multi:
        b = c.encode("utf-8")
        if b in taken:
            continue
        taken.add(b)
        picked.append(b)
        if len(picked) == need:
            break
    if len(picked) < need:
        sys.exit("mkmodel: the tokenizer text has only %d distinct substrings; %d needed for vocab %d"
                 % (len(picked), need, vocab))
    nchar = len(chars)
    # scores: merged pieces −rank (frequent merges first), characters below them (never merge results)
    for r, b in enumerate(picked):
        out.append((b, -float(r - nchar) if r >= nchar else -float(need + r)))
    return out


def write_tokenizer_bin(path, text_path, vocab):
    """llama2.c tokenizer.bin: int32 max_token_length, then per piece f32 score, int32 length, bytes."""
    with open(text_path, encoding="utf-8") as f:
        pieces = tokenizer_pieces(f.read(), vocab)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<i", max(len(p) for p, _ in pieces)))
        for p, sc in pieces:
            f.write(struct.pack("<fi", sc, len(p)))
            f.write(p)
    os.replace(tmp, path)


def hf_order(name):
    """HF's state-dict order: embeddings, layers 0…L−1 (names sorted inside a layer), norm, lm_head."""
    if name.startswith("model.layers."):
        rest = name[len("model.layers."):]
        return (1, int(rest.split(".")[0]), rest)
    return ({"model.embed_tokens.weight": 0, "model.norm.weight": 2}.get(name, 3), 0, name)


def hf_groups(specs, n, esize):
    """Shards in HF order as transformers' shard_checkpoint cuts them (a new shard when the next tensor
    would pass max_shard_size, 10 GB); when that does not give n shards, cut at total·i/n instead."""
    order = sorted(specs, key=lambda s: hf_order(s[0]))
    sizes = [int(np.prod(s[1])) * esize for s in order]
    total = sum(sizes)
    cap = 10 ** 10
    groups, cur, cur_size = [], [], 0
    for s, b in zip(order, sizes):
        if cur and cur_size + b > cap:
            groups.append(cur)
            cur, cur_size = [], 0
        cur.append(s)
        cur_size += b
    groups.append(cur)
    if len(groups) == n:
        return groups
    groups, off = [[] for _ in range(n)], 0
    for s, b in zip(order, sizes):
        groups[min(n - 1, off * n // total)].append(s)
        off += b
    return [g for g in groups if g]


def base_config(a):
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",        "hidden_size": a.hidden, "intermediate_size": a.ffn, "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads,
        "vocab_size": a.vocab, "max_position_embeddings": a.max_pos, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "rope_scaling": None, "hidden_act": "silu", "attention_bias": False,
        "mlp_bias": False, "tie_word_embeddings": bool(a.tie), "bos_token_id": 1, "eos_token_id": 2,
        "torch_dtype": {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[a.dtype],
    }
    if a.head_dim is not None:
        cfg["head_dim"] = a.head_dim
    return cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", choices=sorted(PRESETS), default=None)
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--ffn", type=int)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--kv-heads", type=int, default=None)
    ap.add_argument("--head-dim", type=int, default=None, help="written to config.json only if given")
    ap.add_argument("--vocab", type=int)
    ap.add_argument("--max-pos", type=int)
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tie", action="store_true", help="tie_word_embeddings (no lm_head.weight)")
    ap.add_argument("--shards", type=int)
    ap.add_argument("--shard-order", choices=["interleave", "hf"],
                    help="interleave: tensor i in shard i mod N (default); hf: HF's tensor order, each shard "
                         "filled up to 10 GB (transformers' old default max_shard_size) or total/N if that "
                         "gives fewer than N shards")
    ap.add_argument("--init", choices=["normal", "zeros"], default="normal")
    ap.add_argument("--std", type=float, help="standard deviation of the weights (default 0.05)")
    ap.add_argument("--norms", choices=["jitter", "ones"],
                    help="norm weights: 1 + 0.1·normal (jitter, default) or exactly 1 (ones)")
    ap.add_argument("--tokenizer-text", default=None, help="build DIR/tokenizer.bin from this text (see above)")
    ap.add_argument("--ref", default=None, help="also write the stored values as F32 safetensors here")
    a = ap.parse_args()
    # explicit options > preset > base defaults
    for k, v in dict(BASE, **(PRESETS[a.preset] if a.preset else {})).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.tokenizer_text == "":
        a.tokenizer_text = None
    if a.kv_heads is None:
        a.kv_heads = a.heads
    if (a.head_dim is None and a.hidden % a.heads) or a.heads % a.kv_heads:
        sys.exit("mkmodel: inconsistent heads/kv-heads/hidden")
    os.makedirs(a.out, exist_ok=True)
    if a.tokenizer_text and a.vocab < 3 + 256 + 1:
        sys.exit("mkmodel: --tokenizer-text needs --vocab > 259 (3 specials + 256 byte pieces + text pieces)")
    if a.tokenizer_text and not os.path.isfile(a.tokenizer_text):
        sys.exit("mkmodel: --tokenizer-text %s: no such file" % a.tokenizer_text)
    if a.preset == "llama2-7b":
        cfg = llama2_config(a)
    else:
        cfg = base_config(a)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=a.preset is not None)
        f.write("\n")
    if a.preset:
        write_readme(a)
    if a.tokenizer_text:
        write_tokenizer_bin(os.path.join(a.out, "tokenizer.bin"), a.tokenizer_text, a.vocab)


    specs = tensor_specs(a)
    # Values depend only on (seed, tensor name), whatever the sharding or write order.
    def values(name):
        shape, kind = next((s[1], s[2]) for s in specs if s[0] == name)
        seed = [a.seed] + list(name.encode())
        return make_chunks(np.random.default_rng(seed), shape, kind, a.init, a.std, a.norms)

    def produce(name):
        return (to_storage(c, a.dtype)[0] for c in values(name))

    if a.shards <= 1:
        write_st(os.path.join(a.out, "model.safetensors"), specs, ESIZE[a.dtype], ST_DTYPE[a.dtype], produce)
        if os.path.exists(os.path.join(a.out, "model.safetensors.index.json")):
            os.remove(os.path.join(a.out, "model.safetensors.index.json"))
    else:
        n = a.shards
        groups = hf_groups(specs, n, ESIZE[a.dtype]) if a.shard_order == "hf" else [specs[i::n] for i in range(n)]
        n = len(groups)
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
