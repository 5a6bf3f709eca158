/* eng_export.h — artifacts (docs/formats.md, HF checkpoint layout and GPTQ v1/v2 packing): hf (dequantized, source dtype) and gptq (packed). */
#ifndef ENG_EXPORT_H
#define ENG_EXPORT_H
#include "eng_model.h"
#include "eng_quant.h"

/* ql: [L * ENG_NLIN] quantized linears in the model's own row order (for a
 * llama2.c source, q/k rows are in interleaved-RoPE order; the exporters permute
 * them to HF rotate-half order). Embeddings, norms, lm_head copied as they are.
 * Tokenizer files beside the source (tokenizer.json, tokenizer.model, tok*.bin,
 * tok*.model) are copied. outdir is created. */
int eng_export_hf(const eng_model_t *src, const eng_qlinear_t *ql, const char *outdir, lrq_err_t *err);
/* The same layout with dense weights: dense[l·ENG_NLIN + k] (m,n fp32, model row order; NULL = from
 * ql) replaces s·(q − z), e.g. Ŵ + L·R of a factored method (docs/formats.md, Factored artifact). */
int eng_export_hf_dense(const eng_model_t *src, const eng_qlinear_t *ql, const float *const *dense, const char *outdir,
                        lrq_err_t *err);
/* GPTQ v1 (sym) / gptq_v2 (asym) packed checkpoint, bits 2/3/4/8. Refuses layers whose
 * in/out features are not multiples of 32, naming the layer and shape. */
int eng_export_gptq(const eng_model_t *src, const eng_qlinear_t *ql, const char *outdir, lrq_err_t *err);
/* Check only: 0 when eng_export_gptq would accept these shapes/bits. */
int eng_export_gptq_check(const eng_model_t *src, const eng_qlinear_t *ql, lrq_err_t *err);

#endif
