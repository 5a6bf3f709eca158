#!/usr/bin/python3
"""tok_bin2json.py — convert a llama2.c tokenizer.bin into an HF tokenizer.json
(Llama-2 SentencePiece-BPE layout), for the equivalence test in test_tok.c.

    tok_bin2json.py TOKENIZER.bin OUT.json [--pair-merges]

Pieces: " " -> "▁", ids 0/1/2 -> <unk>/<s>/</s>. Merges are derived from the vocab:
for each multi-character piece, every split into two existing pieces, ranked by the
merged piece's score (highest first; a piece's splits are consecutive). --pair-merges
writes merges as ["a", "b"] arrays (tokenizers >= 0.20) instead of "a b" strings.
"""
import json
import struct
import sys


def main():
    src, dst = sys.argv[1], sys.argv[2]
    pair = "--pair-merges" in sys.argv[3:]
    b = open(src, "rb").read()
    o, pieces, scores = 4, [], []
    while o < len(b):
        s, n = struct.unpack_from("<fi", b, o)
        o += 8
        pieces.append(b[o:o + n].decode("utf-8"))
        scores.append(s)
        o += n
    names = [p.replace(" ", "\u2581") for p in pieces]
    names[0], names[1], names[2] = "<unk>", "<s>", "</s>"
    vocab = {}
    for i, p in enumerate(names):
        vocab.setdefault(p, i)
    cands = []
    for i, p in enumerate(names):
        if i < 3 + 256 or len(p) < 2 or vocab[p] != i:
            continue
        for k in range(1, len(p)):
            if p[:k] in vocab and p[k:] in vocab:
                cands.append((-scores[i], i, k, p[:k], p[k:]))
    cands.sort()
    merges = [[a, c] if pair else a + " " + c for _, _, _, a, c in cands]
    special = [{"id": i, "content": names[i], "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True} for i in range(3)]
    tj = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": special,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "vocab": vocab, "merges": merges},
    }
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
