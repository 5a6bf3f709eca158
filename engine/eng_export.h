/* eng_export.h — artifacts (docs/formats.md, HF checkpoint layout and GPTQ v1/v2 packing): hf (dequantized, source dtype) and gptq (packed). */
#ifndef ENG_EXPORT_H
#define ENG_EXPORT_H
#include "eng_model.h"
#include "eng_quant.h"
#include "eng_actq.h"

/* Where an exporter reads the quantized model from, one layer at a time, so that the whole
 * model need not be in memory: layer(ctx, l, lin) points lin[0..ENG_NLIN) at layer l's quantized
 * linears (model row order), valid until the next call; 0 or a negative code with err set. */
typedef struct eng_qsource {
    int (*layer)(void *ctx, int l, const eng_qlinear_t *lin[ENG_NLIN], lrq_err_t *err);
    void *ctx;
} eng_qsource_t;
/* A source over an in-memory [L * ENG_NLIN] array (borrowed). */
void eng_qsource_array(eng_qsource_t *s, const eng_qlinear_t *ql);

/* ql: [L * ENG_NLIN] quantized linears in the model's own row order (for a
 * llama2.c source, q/k rows are in interleaved-RoPE order; the exporters permute
 * them to HF rotate-half order). Embeddings, norms, lm_head copied as they are.
 * Tokenizer files beside the source (tokenizer.json, tokenizer.model, tok*.bin,
 * tok*.model) are copied. outdir is created. */
int eng_export_hf(const eng_model_t *src, const eng_qlinear_t *ql, const char *outdir, lrq_err_t *err);
/* The same layout with dense linears in place of s·(q − z), generated one at a time while the file is
 * written (the whole dense model is never in memory): fn fills W (m,n fp32, model row order) for
 * (l, lin), e.g. Ŵ + L·R of a factored method read from the job's store (docs/formats.md, Factored
 * artifact); qs gives the shapes and the manifest's parameters. */
typedef int (*eng_dense_fn)(void *ctx, int l, int lin, float *W, lrq_err_t *err);
int eng_export_hf_fn(const eng_model_t *src, const eng_qsource_t *qs, eng_dense_fn fn, void *ctx, const char *outdir,
                     lrq_err_t *err);
/* GPTQ v1 (sym) / gptq_v2 (asym) packed checkpoint, bits 2/3/4/8. Refuses layers whose
 * in/out features are not multiples of 32, naming the layer and shape. */
int eng_export_gptq(const eng_model_t *src, const eng_qlinear_t *ql, const char *outdir, lrq_err_t *err);
/* The same, reading the quantized model one layer at a time (eng_qsource_t). */
int eng_export_gptq_qs(const eng_model_t *src, const eng_qsource_t *qs, const char *outdir, lrq_err_t *err);
/* Check only: 0 when eng_export_gptq would accept these shapes/bits. */
int eng_export_gptq_check(const eng_model_t *src, const eng_qlinear_t *ql, lrq_err_t *err);

/* hf with the seven linears written in `lin_dtype` instead of the source's (ENG_F32 keeps an exact
 * copy of the evaluated weights of a 16-bit source; config.json then says float32). */
int eng_export_hf_as(const eng_model_t *src, const eng_qlinear_t *ql, eng_dtype_t lin_dtype, const char *outdir,
                     lrq_err_t *err);

/* eng_export_hf_as reading the quantized model one layer at a time (eng_qsource_t). */
int eng_export_hf_qs(const eng_model_t *src, const eng_qsource_t *qs, eng_dtype_t lin_dtype, const char *outdir,
                     lrq_err_t *err);

/* Post-export verification (docs/formats.md, Evaluated = exported): re-read the artifact in dir with
 * its reader (eng_model_open for hf; the safetensors reader and a GPTQ unpacker for gptq), dequantize
 * in float32 and compare bit for bit with s·(q − z) from qs (for hf: rounded to the file's dtype).
 * A mismatch is LRQ_ENUMERIC naming the tensor, row and column. */
int eng_export_verify_hf(const char *dir, const eng_model_t *src, const eng_qsource_t *qs, lrq_err_t *err);
/* compressed-tensors pack-quantized (vLLM): 4/8-bit codes packed along K in int32, weight_scale in
 * the model dtype, weight_zero_point (asymmetric) packed along N, weight_shape; config.json's
 * quantization_config. eng_export_ct_check: vLLM's loader rules (up front), refusals naming the rule. */
int eng_export_ct_check(const eng_model_t *src, int bits, int group_size, int symmetric, lrq_err_t *err);
int eng_export_ct(const eng_model_t *src, const eng_qsource_t *qs, const char *outdir, lrq_err_t *err);
int eng_export_verify_ct(const char *dir, const eng_model_t *src, const eng_qsource_t *qs, lrq_err_t *err);
/* compressed-tensors int-quantized W8A8 (vLLM CompressedTensorsW8A8Int8): weight int8 (code − zero) [N, K],
 * weight_scale [N, 1] in the model dtype, and per linear the static range of the input site it reads
 * (aq: q/k/v share attn_in, gate/up ffn_in): input_scale F32 [1], input_zero_point I8 [1] (z − 128,
 * asymmetric activations); per-token activations: dynamic, no input ranges. _check: the rules
 * (8-bit symmetric per-channel weights, 8-bit activations, no K/V output quantization) naming the
 * spec field. The verifier re-reads weight·weight_scale (bit-equal to s·(q − z)) and the input ranges. */
int eng_export_ct_int_check(const eng_model_t *src, int bits, int group_size, int symmetric, const eng_aqcfg_t *acfg,
                            lrq_err_t *err);
int eng_export_ct_int(const eng_model_t *src, const eng_qsource_t *qs, const eng_actq_t *aq, const char *outdir,
                      lrq_err_t *err);
int eng_export_verify_ct_int(const char *dir, const eng_model_t *src, const eng_qsource_t *qs, const eng_actq_t *aq,
                             lrq_err_t *err);
int eng_export_verify_gptq(const char *dir, const eng_model_t *src, const eng_qsource_t *qs, lrq_err_t *err);

#endif
