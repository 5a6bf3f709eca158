/* eng_tok.h — tokenizers (llama2.c tokenizer.bin, SentencePiece BPE .model, HF tokenizer.json
 * SentencePiece-BPE)
 * and data streams (text with <|endoftext|> separators, .tok uint32, JSON id arrays). */
#ifndef ENG_TOK_H
#define ENG_TOK_H
#include <stddef.h>
#include <stdint.h>
#include "lrq_err.h"

typedef struct eng_tok eng_tok_t;

/* Load by name and content: a `.model` name or a protobuf ModelProto → SentencePiece; a JSON
 * object with "model" → tokenizer.json; otherwise llama2.c .bin. Byte-level BPE (Llama-3
 * style) and non-BPE SentencePiece models are refused with LRQ_EUNSUPP and a clear message. */
int eng_tok_load(const char *path, eng_tok_t **out, lrq_err_t *err);
/* Same from an in-memory image (`path` only names it in messages; used by fuzzers). */
int eng_tok_load_mem(const uint8_t *buf, size_t n, const char *path, eng_tok_t **out, lrq_err_t *err);
void eng_tok_free(eng_tok_t *t);
/* The tokenizer to use: `explicit_path` if not NULL, else tokenizer.json, tokenizer.model,
 * tokenizer.bin, then tok*.bin, tok*.model in the model's directory. *out_path is malloc'd. */
int eng_tok_locate(const char *model_path, const char *explicit_path, char **out_path, lrq_err_t *err);

int eng_tok_vocab_size(const eng_tok_t *t);
int eng_tok_bos(const eng_tok_t *t);
int eng_tok_eos(const eng_tok_t *t);
int eng_tok_unk(const eng_tok_t *t);
/* 1 when the scores are SentencePiece piece scores (tokenizer.bin, .model), 0 for merge ranks (json). */
int eng_tok_scored(const eng_tok_t *t);
int eng_tok_dummy_prefix(const eng_tok_t *t);
/* SentencePiece type of `id` (ENG_SPM_NORMAL … ENG_SPM_BYTE, eng_spm.h): stored in a .model;
 * for .bin / .json derived (<unk> UNKNOWN, BOS/EOS CONTROL, <0xXX> BYTE, else NORMAL).
 * 0 when id is out of range. */
int eng_tok_type(const eng_tok_t *t, int id);
/* Piece of `id` as stored (a space stands for "▁"; BOS/EOS as the llama2.c export wrote them),
 * its byte length and score; NULL when id is out of range. Borrowed. */
const char *eng_tok_piece(const eng_tok_t *t, int id, int *len, float *score);

/* llama2.c `encode` rules: optional BOS, dummy-prefix space (if text non-empty),
 * BPE merging the best-scored pair (tokenizer.json: merge rank), byte fallback to the
 * <0xXX> pieces when the vocabulary has them (.bin: id 3 + byte), else <unk> per unknown
 * character. Appends to the growable array (*ids, *n, *cap). */
int eng_tok_encode(const eng_tok_t *t, const char *text, size_t len, int bos,
                   int32_t **ids, size_t *n, size_t *cap, lrq_err_t *err);
/* llama2.c `decode`: piece of `tok` after `prev` (leading space stripped after BOS,
 * <0xXX> pieces become the raw byte). Returns a pointer into the tokenizer or buf. */
const char *eng_tok_decode(const eng_tok_t *t, int prev, int tok, char buf[8]);

/* Token stream for calibration/evaluation (docs/formats.md, tokenizers; text is encoded per
 * document with BOS first, as llama2.c's run.c encode with bos = 1):
 *  - *.tok: raw little-endian uint32 ids;
 *  - *.json: a JSON array of ids;
 *  - otherwise UTF-8 text: documents separated by lines that are exactly
 *    "<|endoftext|>", each document stripped and encoded on its own with BOS,
 *    concatenated. `tok` is needed only for text.
 * Every id must be < vocab_limit (LRQ_EFORMAT naming the position otherwise). */
int eng_data_load(const char *path, const eng_tok_t *tok, int vocab_limit,
                  int32_t **ids, size_t *n, lrq_err_t *err);

#endif
