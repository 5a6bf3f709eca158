/* eng_forward.h — full-model forward (layer-major over a batch), evaluation, generation. */
#ifndef ENG_FORWARD_H
#define ENG_FORWARD_H
#include "eng_model.h"
#include "eng_block.h"
#include "eng_tok.h"

/* A runner owns: rope tables, block workspace for (B,T), fp32 conversion scratch.
 * Layer weights come from the model (converted per layer when not F32 in the file —
 * the whole model is never held in fp32 at once unless it is small) unless a
 * linear is overridden (quantized evaluation). pool: borrowed (NULL = serial), must outlive it. */
typedef struct eng_runner eng_runner_t;
int eng_runner_new(const eng_model_t *m, int B, int T, eng_pool_t *pool, eng_runner_t **out, lrq_err_t *err);
void eng_runner_free(eng_runner_t *r);
/* Matmul backend of the runner's products (blocks and lm_head); borrowed, NULL = OpenBLAS fp32. */
void eng_runner_set_mm(eng_runner_t *r, eng_mm_t *mm);
/* Use w (m×n fp32, borrowed, NULL = back to the model's) for linear `lin` of layer l. */
void eng_runner_set_linear(eng_runner_t *r, int l, int lin, const float *w);
/* Linears supplied per layer by fn (e.g. dequantized from the job's store on disk) wherever no
 * override is set: fn fills W (the model tensor's rows × cols, fp32) for (l, lin); the runner keeps
 * one layer of them, so a quantized model is never held in fp32 at once. NULL fn = the model's. */
typedef int (*eng_linear_fn)(void *ctx, int l, int lin, float *W, lrq_err_t *err);
int eng_runner_set_linear_fn(eng_runner_t *r, eng_linear_fn fn, void *ctx, lrq_err_t *err);
/* Release the model's file pages of each layer once a forward is past it (eng_model_release), so
 * that a forward over a model larger than RAM keeps one layer resident; off by default. */
void eng_runner_set_release(eng_runner_t *r, int on);
/* Low-rank factors added to the linears in the forward (factored methods: y = x Ŵᵀ + (x Rᵀ) Lᵀ,
 * eng_lowrank.h), supplied per layer by fn (e.g. read with the layer's block from the job's store, so
 * that the factors of all layers are never in memory at once): fn points f[0..ENG_NLIN) at layer l's
 * factors (NULL or rank 0 = none), valid until its next call; it is called once per layer and
 * forward, after that layer's linears. NULL fn = no factors. */
typedef int (*eng_lowrank_fn)(void *ctx, int l, const eng_lowrank_t *f[ENG_NLIN], lrq_err_t *err);
void eng_runner_set_lowrank_fn(eng_runner_t *r, eng_lowrank_fn fn, void *ctx);
/* fp32 views of layer l (valid until the next call for another layer). */
int eng_runner_layer(eng_runner_t *r, int l, eng_block_w_t *w, lrq_err_t *err);
/* x (B,T,D) = embeddings of tokens. */
int eng_runner_embed(eng_runner_t *r, const int32_t *tokens, int B, int T, float *x, lrq_err_t *err);
/* logits (B,T,V) from hidden (B,T,D) after the last block: final norm + lm_head. */
int eng_runner_head(eng_runner_t *r, const float *h, int B, int T, float *logits, lrq_err_t *err);
/* Whole forward: tokens (B,T) → logits (B,T,V). */
int eng_runner_logits(eng_runner_t *r, const int32_t *tokens, int B, int T, float *logits, lrq_err_t *err);
const eng_rope_tab_t *eng_runner_rope(const eng_runner_t *r);
/* Activation quantizers for every layer: aq [L] (eng_actq.h, borrowed, NULL = none); eng_runner_layer
 * hands layer l's to the block forward. */
void eng_runner_set_actq(eng_runner_t *r, struct eng_actq_layer *aq);

/* Perplexity protocol of GPTQ (Frantar et al., arXiv 2210.17323; its llama eval loop) and of the
 * Hugging Face "Perplexity of fixed-length models" guide with stride = T: non-overlapping windows of T tokens,
 * predicts tokens 1..T-1 of each; partial last window dropped; ppl = exp(mean NLL).
 * With q != NULL also KL(FP‖Q) per predicted token (mean) and top-1 agreement,
 * on the same windows. max_windows 0 = all. */
typedef struct eng_eval_result {
    double perplexity;        /* of fp (or of q when q given: see q_perplexity) */
    double q_perplexity;
    double kl_divergence;
    double top1_agreement;
    long tokens;              /* predicted tokens counted */
    int windows;
} eng_eval_result_t;
typedef void (*eng_progress_fn)(void *ctx, int done, int total);
int eng_eval(eng_runner_t *fp, eng_runner_t *q, const int32_t *ids, size_t n, int T, int max_windows,
             eng_eval_result_t *res, eng_progress_fn progress, void *ctx, lrq_err_t *err);

/* Greedy generation from BOS for `steps` tokens (stops at EOS/BOS); calls emit with each piece. */
typedef void (*eng_emit_fn)(void *ctx, const char *piece);
int eng_generate(eng_runner_t *r, const eng_tok_t *tok, int steps, eng_emit_fn emit, void *ctx, lrq_err_t *err);

#endif
