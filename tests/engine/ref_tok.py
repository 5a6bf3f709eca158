#!/usr/bin/python3
"""ref_tok.py — independent reference for llama2.c run.c `encode` (naive O(n^2) loop).

    ref_tok.py TOKENIZER.bin < texts.json > ids.json

texts.json: a JSON list of strings; output: a JSON list of id lists, each encoded
with BOS (id 1), the dummy-prefix " ", per-UTF-8-char lookup with byte fallback
(id = byte + 3), then repeated merging of the best-scoring adjacent pair (first pair
on ties, only scores > -1e10), exactly as llama2.c does it. Used by test_tok.c.
"""
import json
import struct
import sys


def load(path):
    b = open(path, "rb").read()
    o, vocab, scores = 4, [], []
    while o < len(b):
        s, n = struct.unpack_from("<fi", b, o)
        o += 8
        vocab.append(b[o:o + n])
        scores.append(s)
        o += n
    lookup = {}
    for i, p in enumerate(vocab):
        lookup.setdefault(p, i)
    return vocab, scores, lookup


def encode(text, vocab, scores, lookup):
    data = text.encode("utf-8")
    toks = [1]
    if data:
        toks.append(lookup[b" "])
    i = 0
    while i < len(data):
        j = i + 1
        while j < len(data) and (data[j] & 0xC0) == 0x80 and j - i < 4:
            j += 1
        ch = data[i:j]
        if ch in lookup:
            toks.append(lookup[ch])
        else:
            toks.extend(c + 3 for c in ch)
        i = j
    while True:
        best, best_id, best_i = -1e10, -1, -1
        for k in range(len(toks) - 1):
            cid = lookup.get(vocab[toks[k]] + vocab[toks[k + 1]], -1)
            if cid != -1 and scores[cid] > best:
                best, best_id, best_i = scores[cid], cid, k
        if best_i == -1:
            break
        toks[best_i:best_i + 2] = [best_id]
    return toks


def main():
    vocab, scores, lookup = load(sys.argv[1])
    texts = json.load(sys.stdin)
    json.dump([encode(t, vocab, scores, lookup) for t in texts], sys.stdout)


if __name__ == "__main__":
    main()
