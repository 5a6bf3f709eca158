/* eng_block.h — one Llama decoder block, forward and backward, fp32, sgemm.
 *
 *   x (B,T,D) → h = x + o(attn(rope(q(rms1(x))), rope(k(rms1(x))), v(rms1(x))))
 *             → y = h + down(silu(gate(rms2(h))) ⊙ up(rms2(h)))
 *
 * Causal GQA attention: head h uses kv head h / (H/KVH). RoPE in either layout
 * (cfg->rope). Forward saves into the workspace what backward needs. */
#ifndef ENG_BLOCK_H
#define ENG_BLOCK_H
#include "eng_model.h"
#include "eng_pool.h"
#include "eng_lowrank.h"
#include "eng_mm.h"

typedef struct eng_block_w {
    const float *attn_norm;        /* (D) */
    const float *ffn_norm;         /* (D) */
    const float *lin[ENG_NLIN];    /* shapes as eng_layer_tensors_t */
    struct eng_actq_layer *aq;     /* activation fake-quant (eng_actq.h), NULL = none; borrowed */
} eng_block_w_t;

/* Gradients; NULL members are not computed. Backward OVERWRITES them. */
typedef struct eng_block_g {
    float *attn_norm;              /* (D) */
    float *ffn_norm;               /* (D) */
    float *lin[ENG_NLIN];
} eng_block_g_t;

/* cos/sin tables for positions [0, T) and Dh/2 frequencies: theta^(-2i/Dh). */
typedef struct eng_rope_tab {
    int T, half;                   /* half = Dh/2 */
    float *cos, *sin;              /* (T, Dh/2) */
} eng_rope_tab_t;
int eng_rope_tab_init(eng_rope_tab_t *r, const eng_config_t *c, int T);
void eng_rope_tab_close(eng_rope_tab_t *r);

/* Workspace for a (B,T) batch: saved activations and scratch, one arena.
 * with_backward = 0 allocates only what forward needs (inference). pool is borrowed (NULL =
 * serial) and must outlive the workspace; per-thread scratch is sized for its thread count. */
typedef struct eng_block_ws eng_block_ws_t;
eng_block_ws_t *eng_block_ws_new(const eng_config_t *c, int B, int T, int with_backward, eng_pool_t *pool);
void eng_block_ws_free(eng_block_ws_t *ws);
/* Matmul backend for the workspace's products (borrowed, NULL = OpenBLAS fp32, the default). */
void eng_block_ws_set_mm(eng_block_ws_t *ws, eng_mm_t *mm);
size_t eng_block_ws_bytes(const eng_config_t *c, int B, int T, int with_backward, const eng_pool_t *pool);

/* Low-rank factors added to the linears' outputs in the forward (y += (x Rᵀ) Lᵀ, eng_lowrank.h):
 * lr[ENG_NLIN] borrowed until the next call, NULL (the default) or lr[i] = NULL / rank 0 = none.
 * Evaluation of factored methods only: the backward ignores them. */
void eng_block_ws_set_lowrank(eng_block_ws_t *ws, const eng_lowrank_t *const *lr);
/* Input of linear `lin` in the last forward (N = B·T rows): rms1(x) for q/k/v, the attention
 * output for o, rms2(h) for gate/up, silu(gate) ⊙ up for down. Valid until the next forward. */
const float *eng_block_ws_input(const eng_block_ws_t *ws, int lin);

/* y (B,T,D) may not alias x. B,T ≤ the workspace's. */
void eng_block_forward(const eng_config_t *c, const eng_block_w_t *w, const eng_rope_tab_t *rope,
                       const float *x, float *y, eng_block_ws_t *ws, int B, int T);
/* dy (B,T,D) → dx (B,T,D, NULL = skip: saves the input-gradient GEMMs of q/k/v
 * and the first RMSNorm backward) and g. Requires the forward just before. */
void eng_block_backward(const eng_config_t *c, const eng_block_w_t *w, const eng_rope_tab_t *rope,
                        const float *dy, float *dx, eng_block_g_t *g, eng_block_ws_t *ws, int B, int T);

/* ---- ops (exposed for tests; forward/backward pairs, shapes (N rows, C cols)) ---- */
void eng_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps);
void eng_rmsnorm_backward(float *dx, float *dw /*accumulates*/, const float *dout, const float *x,
                          const float *w, const float *rstd, int N, int C);
/* In place on (B,T,nh,Dh) rows. */
void eng_rope_forward(float *x, const eng_rope_tab_t *r, eng_rope_layout_t layout, int B, int T, int nh, int Dh);
void eng_rope_backward(float *dx, const eng_rope_tab_t *r, eng_rope_layout_t layout, int B, int T, int nh, int Dh);
/* out = silu(g) ⊙ u, (N) elements */
void eng_swiglu_forward(float *out, const float *g, const float *u, size_t N);
void eng_swiglu_backward(float *dg, float *du, const float *dout, const float *g, const float *u, size_t N);
/* Causal GQA attention. q (B,T,H,Dh), k,v (B,T,KVH,Dh) → out (B,T,H,Dh); att (B,H,T,T) softmax probs saved. */
void eng_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                           int B, int T, int H, int KVH, int Dh);
void eng_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                            const float *q, const float *k, const float *v, int B, int T, int H, int KVH, int Dh);

#endif
