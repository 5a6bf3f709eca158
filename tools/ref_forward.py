#!/usr/bin/python3
"""ref_forward.py — independent numpy (float64) reference for the engine's forward pass
and the evaluation protocol of docs/algorithms.md (Evaluation), written from the maths, not from the C.

It reads a llama2.c checkpoint (.bin, legacy 7×int32 header) and a llama2.c tokenizer
(.bin), encodes the evaluation text itself (documents separated by "<|endoftext|>" lines,
each str.strip()ped, skipped if empty, encoded on its own with BOS and llama2.c's
dummy-prefix / best-score BPE / byte-fallback rules) and computes:
  - FP perplexity over non-overlapping windows of seq_len tokens (tokens 1..T-1 of each
    window predicted; partial last window dropped), ppl = exp(mean NLL);
  - for a perturbed copy of the model ("q": one linear scaled in float32), KL(P_fp ‖ P_q),
    top-1 agreement and q perplexity on the first --q-windows windows;
  - a few raw logits of window 0 (spot check of the C forward).
Output: JSON on stdout (committed as tests/data/stories260K_eval_ref.json).

Usage:
  tools/ref_forward.py MODEL.bin TOKENIZER.bin EVAL.txt [--seq-len 256] [--q-windows 32]
      [--q-layer 2 --q-lin down --q-scale 0.8]
"""
import argparse
import heapq
import json
import struct
import sys

import numpy as np

LIN_FIELDS = ["q", "k", "v", "o", "gate", "up", "down"]


def load_model(path):
    with open(path, "rb") as f:
        data = f.read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("<7i", data[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    hd = dim // n_heads
    a = np.frombuffer(data, dtype="<f4", offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        t = a[pos:pos + n].reshape(shape)
        pos += n
        return t

    w = {}
    w["emb"] = take(vocab, dim)
    w["rms_att"] = take(n_layers, dim)
    w["q"] = take(n_layers, n_heads * hd, dim)
    w["k"] = take(n_layers, n_kv * hd, dim)
    w["v"] = take(n_layers, n_kv * hd, dim)
    w["o"] = take(n_layers, dim, n_heads * hd)
    w["rms_ffn"] = take(n_layers, dim)
    w["gate"] = take(n_layers, hidden, dim)   # w1
    w["down"] = take(n_layers, dim, hidden)   # w2
    w["up"] = take(n_layers, hidden, dim)     # w3
    w["rms_final"] = take(dim)
    take(seq_len * hd // 2)  # freq_cis_real (unused: recomputed)
    take(seq_len * hd // 2)  # freq_cis_imag
    w["cls"] = w["emb"] if shared else take(vocab, dim)
    cfg = dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads, n_kv=n_kv,
               vocab=vocab, seq_len=seq_len, hd=hd, eps=1e-5, theta=10000.0)
    return cfg, w


def load_tokenizer(path):
    with open(path, "rb") as f:
        data = f.read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    off = 4
    pieces, scores = [], []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        pieces.append(data[off:off + n])
        scores.append(score)
        off += n
    lookup = {}
    for i, p in enumerate(pieces):
        lookup.setdefault(p, i)
    return pieces, np.array(scores, dtype=np.float32), lookup


def encode(text, tok, bos=True):
    """llama2.c encode(): BOS, dummy prefix " ", code points (byte fallback +3), then
    repeatedly merge the adjacent pair whose concatenation has the best score (leftmost
    on ties). Heap with lazy invalidation; same result as the quadratic loop."""
    pieces, scores, lookup = tok
    ids = [1] if bos else []
    if not text:
        return ids
    seq = [lookup[b" "]]
    for ch in text:
        b = ch.encode("utf-8")
        if b in lookup:
            seq.append(lookup[b])
        else:
            seq.extend(x + 3 for x in b)
    n = len(seq)
    nxt = list(range(1, n + 1))
    prv = list(range(-1, n - 1))
    alive = [True] * n
    heap = []

    def push(i):
        j = nxt[i]
        if j >= n:
            return
        m = lookup.get(pieces[seq[i]] + pieces[seq[j]])
        if m is not None:
            heapq.heappush(heap, (-float(scores[m]), i, seq[i], seq[j], j, m))

    for i in range(n - 1):
        push(i)
    while heap:
        _, i, a, b, j, m = heapq.heappop(heap)
        if not (alive[i] and alive[j] and nxt[i] == j and seq[i] == a and seq[j] == b):
            continue
        seq[i] = m
        alive[j] = False
        nxt[i] = nxt[j]
        if nxt[j] < n:
            prv[nxt[j]] = i
        if prv[i] >= 0:
            push(prv[i])
        push(i)
    ids.extend(seq[i] for i in range(n) if alive[i])
    return ids


def load_stream(path, tok):
    with open(path, "r", encoding="utf-8") as f:
        lines = f.read().split("\n")
    docs, cur = [], []
    for ln in lines:
        if ln.rstrip("\r") == "<|endoftext|>":
            docs.append("\n".join(cur))
            cur = []
        else:
            cur.append(ln)
    docs.append("\n".join(cur))
    ids = []
    for d in docs:
        d = d.strip()
        if d:
            ids.extend(encode(d, tok))
    return ids


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope_interleaved(x, T, hd, theta):
    """x (..., T, nh, hd): rotate pairs (2i, 2i+1) by t·theta^(-2i/hd)."""
    i = np.arange(hd // 2)
    ang = np.arange(T)[:, None] * theta ** (-2.0 * i / hd)[None, :]     # (T, hd/2)
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    re, im = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = re * c - im * s
    out[..., 1::2] = re * s + im * c
    return out


def forward(cfg, w, tokens):
    """tokens (B, T) → logits (B, T, V), float64."""
    B, T = tokens.shape
    D, H, KVH, hd = cfg["dim"], cfg["n_heads"], cfg["n_kv"], cfg["hd"]
    f64 = lambda a: a.astype(np.float64)
    x = f64(w["emb"][tokens])
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(cfg["n_layers"]):
        xn = rmsnorm(x, f64(w["rms_att"][l]), cfg["eps"])
        q = (xn @ f64(w["q"][l]).T).reshape(B, T, H, hd)
        k = (xn @ f64(w["k"][l]).T).reshape(B, T, KVH, hd)
        v = (xn @ f64(w["v"][l]).T).reshape(B, T, KVH, hd)
        q = rope_interleaved(q, T, hd, cfg["theta"])
        k = rope_interleaved(k, T, hd, cfg["theta"])
        rep = H // KVH
        k = np.repeat(k, rep, axis=2)    # head h uses kv head h // rep
        v = np.repeat(v, rep, axis=2)
        s = np.einsum("bthd,bshd->bhts", q, k) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        p = s / s.sum(-1, keepdims=True)
        ao = np.einsum("bhts,bshd->bthd", p, v).reshape(B, T, H * hd)
        x = x + ao @ f64(w["o"][l]).T
        xn = rmsnorm(x, f64(w["rms_ffn"][l]), cfg["eps"])
        g = xn @ f64(w["gate"][l]).T
        u = xn @ f64(w["up"][l]).T
        x = x + (g / (1.0 + np.exp(-g)) * u) @ f64(w["down"][l]).T
    x = rmsnorm(x, f64(w["rms_final"]), cfg["eps"])
    return x @ f64(w["cls"]).T


def log_softmax(z):
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("tokenizer")
    ap.add_argument("data")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--q-windows", type=int, default=32)
    ap.add_argument("--q-layer", type=int, default=2)
    ap.add_argument("--q-lin", default="down", choices=LIN_FIELDS)
    ap.add_argument("--q-scale", type=float, default=0.8)
    a = ap.parse_args()

    cfg, w = load_model(a.model)
    tok = load_tokenizer(a.tokenizer)
    ids = np.array(load_stream(a.data, tok), dtype=np.int64)
    T = a.seq_len
    nw = len(ids) // T
    win = ids[: nw * T].reshape(nw, T)

    wq = dict(w)
    wq[a.q_lin] = w[a.q_lin].copy()
    wq[a.q_lin][a.q_layer] = (np.float32(a.q_scale) * w[a.q_lin][a.q_layer]).astype(np.float32)

    nll = 0.0
    q_nll = q_kl = q_fp_nll = 0.0
    q_agree = q_count = 0
    spot = {}
    for b0 in range(0, nw, a.batch):
        tk = win[b0:b0 + a.batch]
        lp = log_softmax(forward(cfg, w, tk))[:, :-1]              # predicts tokens 1..T-1
        tgt = tk[:, 1:]
        nll += -np.take_along_axis(lp, tgt[..., None], -1).sum()
        if b0 == 0:
            lg = forward(cfg, w, tk[:1])[0]
            spot = {str(t): lg[t, :16].tolist() for t in (0, 100, T - 1)}
        nq = min(len(tk), a.q_windows - b0)
        if nq > 0:
            lpq = log_softmax(forward(cfg, wq, tk[:nq]))[:, :-1]
            lpf = lp[:nq]
            q_nll += -np.take_along_axis(lpq, tgt[:nq, :, None], -1).sum()
            q_fp_nll += -np.take_along_axis(lpf, tgt[:nq, :, None], -1).sum()
            q_kl += (np.exp(lpf) * (lpf - lpq)).sum()
            q_agree += int((lpf.argmax(-1) == lpq.argmax(-1)).sum())
            q_count += lpf.shape[0] * lpf.shape[1]
    count = nw * (T - 1)
    out = {
        "command": "tools/ref_forward.py " + " ".join(sys.argv[1:]),
        "seq_len": T,
        "stream_tokens": int(len(ids)),
        "stream_checksum": int(sum(int(x) * (i % 1000 + 1) for i, x in enumerate(ids))),
        "first_ids": ids[:16].tolist(),
        "windows": int(nw),
        "predicted_tokens": int(count),
        "perplexity": float(np.exp(nll / count)),
        "logits_window0": spot,
        "q": {
            "layer": a.q_layer, "lin": a.q_lin, "scale": a.q_scale, "windows": min(a.q_windows, nw),
            "predicted_tokens": int(q_count),
            "perplexity": float(np.exp(q_fp_nll / q_count)),
            "q_perplexity": float(np.exp(q_nll / q_count)),
            "kl_divergence": float(q_kl / q_count),
            "top1_agreement": float(q_agree / q_count),
        },
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
