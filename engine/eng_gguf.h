/* eng_gguf.h — GGUF v3 export for llama.cpp (docs/formats.md, GGUF): Q4_0 / Q4_1 / Q8_0 straight
 * from lrq's integer codes, F32 / F16 dequantized fallback, tokenizer metadata from the model's
 * SentencePiece-scored vocabulary, and the re-reading verifier the worker runs after writing. */
#ifndef ENG_GGUF_H
#define ENG_GGUF_H
#include <jansson.h>
#include "eng_export.h"
#include "eng_tok.h"

/* What the spec's "gguf": {"type": …} asks for. */
typedef enum { ENG_GGUF_AUTO = 0, ENG_GGUF_Q4_0, ENG_GGUF_Q4_1, ENG_GGUF_Q8_0, ENG_GGUF_F16, ENG_GGUF_F32 } eng_gguf_req_t;
extern const char *const eng_gguf_req_name[]; /* "auto", "q4_0", "q4_1", "q8_0", "f16", "f32", NULL */

/* ggml tensor type ids (ggml.h) that lrq writes. */
enum { ENG_GGML_F32 = 0, ENG_GGML_F16 = 1, ENG_GGML_Q4_0 = 2, ENG_GGML_Q4_1 = 3, ENG_GGML_Q8_0 = 8, ENG_GGML_BF16 = 30 };
const char *eng_ggml_type_name(int type);

/* ENG_SCALE_* constraints the GGUF blocks put on the quantizer's scales for this request. */
int eng_gguf_scale_store(eng_gguf_req_t req, int bits, int symmetric);

/* Up-front check (before quantizing): the request can be expressed for this model, weight
 * config (group_size 0 = per-channel) and tokenizer. types (may be NULL): [L * ENG_NLIN] ggml
 * type of each linear. Refusals are LRQ_EUNSUPP naming the rule. */
int eng_gguf_plan(const eng_model_t *src, const eng_tok_t *tok, int bits, int group_size, int symmetric,
                  eng_gguf_req_t req, int *types, lrq_err_t *err);

/* Writes outdir/model.gguf (streamed: one tensor in memory at a time) and lrq-manifest.json
 * (which lists every linear's GGUF type). *info (may be NULL) gets {"file", "types": {type: count},
 * "dequantized": [names]} (new reference). */
int eng_export_gguf(const eng_model_t *src, const eng_tok_t *tok, const eng_qsource_t *qs, eng_gguf_req_t req,
                    const char *outdir, json_t **info, lrq_err_t *err);

/* Re-read path with the GGUF reader, dequantize every linear to float32 and compare it bit for
 * bit with s·(q − z) of the source (after the q/k row order); embeddings and norms too. A mismatch
 * is LRQ_ENUMERIC naming the tensor, row and column. */
int eng_gguf_verify(const char *path, const eng_model_t *src, const eng_qsource_t *qs, lrq_err_t *err);

#endif
