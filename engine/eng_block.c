/* eng_block.c — one Llama decoder block over a (B,T) batch: workspace arena, forward, backward.
 *
 * Shapes: B batch, T seq, D model dim, H heads, KVH kv heads, Dh head dim, F ffn dim,
 * N = B*T rows, QD = H*Dh, KD = KVH*Dh. A linear W (m,n) computes y = x Wᵀ:
 *   forward  y  (N,m) = x (N,n) · Wᵀ        sgemm(NoTrans, Trans)
 *   backward dW (m,n) = dyᵀ (m,N) · x (N,n) sgemm(Trans, NoTrans)
 *            dx (N,n) = dy (N,m) · W (m,n)  sgemm(NoTrans, NoTrans)
 * Every buffer lives in one arena laid out from a sizes table (llm.c); forward and
 * backward never allocate. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "eng_block.h"
#include "eng_actq.h"
#include "eng_kernels.h"
#include "eng_pool.h"
#include "eng_mm.h"

enum {
    /* forward (saved for backward when with_backward) */
    WS_XN1,   /* (N,D)   rms1(x) ⊙ w1 */
    WS_RSTD1, /* (N) */
    WS_Q,     /* (N,QD)  after RoPE, features in canonical (interleaved) order */
    WS_K,     /* (N,KD)  same */
    WS_V,     /* (N,KD) */
    WS_AO,    /* (N,QD)  attention output, input of o */
    WS_XN2,   /* (N,D)   rms2(h) ⊙ w2 */
    WS_RSTD2, /* (N) */
    WS_GATE,  /* (N,F) */
    WS_UP,    /* (N,F) */
    WS_ACT,   /* (N,F)   silu(gate) ⊙ up, input of down (inference: aliases GATE, size 0) */
    WS_ATT,   /* (B,H,T,T) probabilities; inference: (threads,chunk,T) scratch */
    /* backward only */
    WS_X,     /* (N,D)   block input */
    WS_H,     /* (N,D)   x + attention branch */
    WS_DF1,   /* (N,F)   d act, then d gate (in place) */
    WS_DF2,   /* (N,F)   d up */
    WS_DXN,   /* (N,D)   d xn2, later d xn1 */
    WS_DH,    /* (N,D) */
    WS_DAO,   /* (N,QD) */
    WS_DQ,    /* (N,QD) */
    WS_DK,    /* (N,KD) */
    WS_DV,    /* (N,KD) */
    WS_DATT,  /* (threads,chunk,T) */
    WS_COUNT
};

struct eng_block_ws {
    int B, T, with_backward, nthreads;
    eng_pool_t *pool;          /* borrowed: GEMM slabs, SwiGLU ranges, attention per (b, kv head) */
    eng_mm_t *mm;              /* borrowed matmul backend, NULL = OpenBLAS fp32 */
    float *mem;
    float *p[WS_COUNT];
    const eng_lowrank_t *const *lr; /* borrowed [ENG_NLIN] or NULL (eng_block_ws_set_lowrank) */
};

void eng_block_ws_set_lowrank(eng_block_ws_t *ws, const eng_lowrank_t *const *lr) { ws->lr = lr; }

const float *eng_block_ws_input(const eng_block_ws_t *ws, int lin)
{
    switch (lin) {
    case ENG_Q: case ENG_K: case ENG_V: return ws->p[WS_XN1];
    case ENG_O: return ws->p[WS_AO];
    case ENG_GATE: case ENG_UP: return ws->p[WS_XN2];
    default: return ws->p[WS_ACT];
    }
}

/* y (N,m) += (x Rᵀ) Lᵀ for a factored linear (docs/algorithms.md, Low-rank factors). */
#define LR_ADD(ws, i, y, x, N) do { if ((ws)->lr && (ws)->lr[i]) eng_lowrank_forward((ws)->pool, (ws)->lr[i], x, y, N); } while (0)

/* nth = attention threads: each has its own (chunk,T) scratch. */
static void ws_sizes(const eng_config_t *c, int B, int T, int wb, int nth, size_t s[WS_COUNT])
{
    size_t N = (size_t)B * T, D = c->dim, F = c->ffn_dim, QD = (size_t)c->n_heads * c->head_dim,
           KD = (size_t)c->n_kv_heads * c->head_dim, chunk = (size_t)nth * eng__att_chunk(T);
    memset(s, 0, WS_COUNT * sizeof *s);
    s[WS_XN1] = N * D;  s[WS_RSTD1] = N;
    s[WS_Q] = N * QD;   s[WS_K] = N * KD;   s[WS_V] = N * KD;   s[WS_AO] = N * QD;
    s[WS_XN2] = N * D;  s[WS_RSTD2] = N;
    s[WS_GATE] = N * F; s[WS_UP] = N * F;   s[WS_ACT] = wb ? N * F : 0;
    s[WS_ATT] = wb ? (size_t)B * c->n_heads * T * T : chunk * T;
    if (!wb) return;
    s[WS_X] = N * D;    s[WS_H] = N * D;
    s[WS_DF1] = N * F;  s[WS_DF2] = N * F;  s[WS_DXN] = N * D;  s[WS_DH] = N * D;
    s[WS_DAO] = N * QD; s[WS_DQ] = N * QD;  s[WS_DK] = N * KD;  s[WS_DV] = N * KD;
    s[WS_DATT] = chunk * T;
}

/* Each tensor starts on a 64-byte boundary (16 floats). */
static size_t ws_total(const size_t s[WS_COUNT])
{
    size_t n = 0;
    for (int i = 0; i < WS_COUNT; i++) n += (s[i] + 15) & ~(size_t)15;
    return n;
}

size_t eng_block_ws_bytes(const eng_config_t *c, int B, int T, int with_backward, const eng_pool_t *pool)
{
    size_t s[WS_COUNT];
    ws_sizes(c, B, T, with_backward, eng_pool_threads(pool), s);
    return ws_total(s) * sizeof(float) + sizeof(eng_block_ws_t);
}

eng_block_ws_t *eng_block_ws_new(const eng_config_t *c, int B, int T, int with_backward, eng_pool_t *pool)
{
    if (B <= 0 || T <= 0 || c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads) return NULL;
    size_t s[WS_COUNT];
    eng_block_ws_t *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->pool = pool;
    ws->nthreads = eng_pool_threads(pool);
    ws_sizes(c, B, T, with_backward, ws->nthreads, s);
    if (posix_memalign((void **)&ws->mem, 64, ws_total(s) * sizeof(float))) {
        free(ws);
        return NULL;
    }
    float *it = ws->mem;
    for (int i = 0; i < WS_COUNT; i++) {
        ws->p[i] = s[i] ? it : NULL;
        it += (s[i] + 15) & ~(size_t)15;
    }
    if (!with_backward) ws->p[WS_ACT] = ws->p[WS_GATE]; /* act overwrites gate in place */
    ws->B = B;
    ws->T = T;
    ws->with_backward = with_backward;
    return ws;
}

void eng_block_ws_set_mm(eng_block_ws_t *ws, eng_mm_t *mm) { ws->mm = mm; }

void eng_block_ws_free(eng_block_ws_t *ws)
{
    if (!ws) return;
    free(ws->mem);
    free(ws);
}

/* GEMM, row-major, through the workspace's matmul backend over the pool (eng_mm.h). */
static void gemm(eng_block_ws_t *ws, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    eng_mm_gemm(ws->mm, ws->pool, ta == CblasTrans, tb == CblasTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

/* y (N,m) = x (N,n) Wᵀ + beta·y */
static void lin_fwd(eng_block_ws_t *ws, float *y, const float *x, const float *W, int N, int m, int n, float beta)
{
    gemm(ws, CblasNoTrans, CblasTrans, N, m, n, x, n, W, n, beta, y, m);
}
/* dW (m,n) = dyᵀ x */
static void lin_bwd_w(eng_block_ws_t *ws, float *dW, const float *dy, const float *x, int N, int m, int n)
{
    if (dW) gemm(ws, CblasTrans, CblasNoTrans, m, n, N, dy, m, x, n, 0.0f, dW, n);
}
/* dx (N,n) = dy W + beta·dx */
static void lin_bwd_x(eng_block_ws_t *ws, float *dx, const float *dy, const float *W, int N, int m, int n, float beta)
{
    gemm(ws, CblasNoTrans, CblasNoTrans, N, n, m, dy, m, W, n, beta, dx, n);
}

/* SwiGLU over the pool: contiguous element ranges, one per thread. */
typedef struct {
    float *out, *dg, *du;
    const float *g, *u, *dout;
    size_t n;
    int parts;
} swiglu_job_t;

static void swiglu_task(void *ctx, int task, int thread)
{
    const swiglu_job_t *j = ctx;
    (void)thread;
    size_t i0 = j->n * task / j->parts, i1 = j->n * (task + 1) / j->parts;
    if (j->out) eng_swiglu_forward(j->out + i0, j->g + i0, j->u + i0, i1 - i0);
    else eng_swiglu_backward(j->dg + i0, j->du + i0, j->dout + i0, j->g + i0, j->u + i0, i1 - i0);
}

static void swiglu(eng_block_ws_t *ws, float *out, float *dg, float *du, const float *dout, const float *g,
                   const float *u, size_t n)
{
    swiglu_job_t j = {out, dg, du, g, u, dout, n, n >= 65536 ? ws->nthreads : 1};
    eng_pool_run(ws->pool, j.parts, swiglu_task, &j);
}

void eng_block_forward(const eng_config_t *c, const eng_block_w_t *w, const eng_rope_tab_t *rope,
                       const float *x, float *y, eng_block_ws_t *ws, int B, int T)
{
    const int N = B * T, D = c->dim, F = c->ffn_dim, H = c->n_heads, KVH = c->n_kv_heads,
              Dh = c->head_dim, QD = H * Dh, KD = KVH * Dh;
    float **p = ws->p;
    assert(B <= ws->B && T <= ws->T && T <= rope->T);
    /* attention: xn1 = rmsnorm(x) ⊙ w_attn; q,k,v = xn1 Wᵀ; RoPE on q, k */
    eng_rmsnorm_forward(p[WS_XN1], p[WS_RSTD1], x, w->attn_norm, N, D, c->norm_eps);
    eng_actq_forward(w->aq, ENG_AQ_ATTN_IN, p[WS_XN1], N, D, ws->with_backward); /* input of q, k, v */
    lin_fwd(ws, p[WS_Q], p[WS_XN1], w->lin[ENG_Q], N, QD, D, 0.0f);
    lin_fwd(ws, p[WS_K], p[WS_XN1], w->lin[ENG_K], N, KD, D, 0.0f);
    lin_fwd(ws, p[WS_V], p[WS_XN1], w->lin[ENG_V], N, KD, D, 0.0f);
    LR_ADD(ws, ENG_Q, p[WS_Q], p[WS_XN1], N);
    LR_ADD(ws, ENG_K, p[WS_K], p[WS_XN1], N);
    LR_ADD(ws, ENG_V, p[WS_V], p[WS_XN1], N);
    eng_actq_forward(w->aq, ENG_AQ_K_OUT, p[WS_K], N, KD, ws->with_backward); /* KV cache: K before RoPE */
    eng_actq_forward(w->aq, ENG_AQ_V_OUT, p[WS_V], N, KD, ws->with_backward);
    eng__rope_fwd_canon(p[WS_Q], rope, c->rope, B, T, H, Dh); /* stored in canonical order */
    eng__rope_fwd_canon(p[WS_K], rope, c->rope, B, T, KVH, Dh);
    /* ao = softmax(q kᵀ/√Dh + mask) v */
    eng__attention_fwd(p[WS_AO], p[WS_ATT], ws->with_backward, p[WS_ATT], ws->pool, ws->mm, p[WS_Q], p[WS_K], p[WS_V],
                       B, T, H, KVH, Dh);
    eng_actq_forward(w->aq, ENG_AQ_O_IN, p[WS_AO], N, QD, ws->with_backward);
    /* h = x + ao Woᵀ, built in y */
    memcpy(y, x, (size_t)N * D * sizeof(float));
    lin_fwd(ws, y, p[WS_AO], w->lin[ENG_O], N, D, QD, 1.0f);
    LR_ADD(ws, ENG_O, y, p[WS_AO], N);
    if (ws->with_backward) {
        memcpy(p[WS_X], x, (size_t)N * D * sizeof(float));
        memcpy(p[WS_H], y, (size_t)N * D * sizeof(float));
    }
    /* FFN: xn2 = rmsnorm(h) ⊙ w_ffn; y = h + down(silu(gate(xn2)) ⊙ up(xn2)) */
    eng_rmsnorm_forward(p[WS_XN2], p[WS_RSTD2], y, w->ffn_norm, N, D, c->norm_eps);
    eng_actq_forward(w->aq, ENG_AQ_FFN_IN, p[WS_XN2], N, D, ws->with_backward); /* input of gate, up */
    lin_fwd(ws, p[WS_GATE], p[WS_XN2], w->lin[ENG_GATE], N, F, D, 0.0f);
    lin_fwd(ws, p[WS_UP], p[WS_XN2], w->lin[ENG_UP], N, F, D, 0.0f);
    LR_ADD(ws, ENG_GATE, p[WS_GATE], p[WS_XN2], N);
    LR_ADD(ws, ENG_UP, p[WS_UP], p[WS_XN2], N);
    swiglu(ws, p[WS_ACT], NULL, NULL, NULL, p[WS_GATE], p[WS_UP], (size_t)N * F);
    eng_actq_forward(w->aq, ENG_AQ_DOWN_IN, p[WS_ACT], N, F, ws->with_backward);
    lin_fwd(ws, y, p[WS_ACT], w->lin[ENG_DOWN], N, D, F, 1.0f);
    LR_ADD(ws, ENG_DOWN, y, p[WS_ACT], N);
}

/* Mirror of the forward, in reverse order. */
void eng_block_backward(const eng_config_t *c, const eng_block_w_t *w, const eng_rope_tab_t *rope,
                        const float *dy, float *dx, eng_block_g_t *g, eng_block_ws_t *ws, int B, int T)
{
    const int N = B * T, D = c->dim, F = c->ffn_dim, H = c->n_heads, KVH = c->n_kv_heads,
              Dh = c->head_dim, QD = H * Dh, KD = KVH * Dh;
    float **p = ws->p;
    eng_block_g_t none = {0};
    if (!g) g = &none;
    assert(ws->with_backward && B <= ws->B && T <= ws->T);
    if (!ws->with_backward) return; /* nothing saved (NDEBUG builds) */
    /* y = h + act Wdᵀ */
    lin_bwd_w(ws, g->lin[ENG_DOWN], dy, p[WS_ACT], N, D, F);
    lin_bwd_x(ws, p[WS_DF1], dy, w->lin[ENG_DOWN], N, D, F, 0.0f);               /* d act (N,F) */
    eng_actq_backward(w->aq, ENG_AQ_DOWN_IN, p[WS_DF1], N, F);                    /* STE */
    swiglu(ws, NULL, p[WS_DF1], p[WS_DF2], p[WS_DF1], p[WS_GATE], p[WS_UP], (size_t)N * F);
    /* gate, up = xn2 Wᵀ */
    lin_bwd_w(ws, g->lin[ENG_GATE], p[WS_DF1], p[WS_XN2], N, F, D);
    lin_bwd_w(ws, g->lin[ENG_UP], p[WS_DF2], p[WS_XN2], N, F, D);
    lin_bwd_x(ws, p[WS_DXN], p[WS_DF1], w->lin[ENG_GATE], N, F, D, 0.0f);
    lin_bwd_x(ws, p[WS_DXN], p[WS_DF2], w->lin[ENG_UP], N, F, D, 1.0f);            /* d xn2 (N,D) */
    eng_actq_backward(w->aq, ENG_AQ_FFN_IN, p[WS_DXN], N, D);
    /* xn2 = rmsnorm(h); dh = dy (residual) + rmsnorm backward */
    if (g->ffn_norm) memset(g->ffn_norm, 0, (size_t)D * sizeof(float));
    eng__rmsnorm_bwd(p[WS_DH], g->ffn_norm, p[WS_DXN], p[WS_H], w->ffn_norm, p[WS_RSTD2], dy, N, D);
    /* h = x + ao Woᵀ */
    lin_bwd_w(ws, g->lin[ENG_O], p[WS_DH], p[WS_AO], N, D, QD);
    lin_bwd_x(ws, p[WS_DAO], p[WS_DH], w->lin[ENG_O], N, D, QD, 0.0f);
    eng_actq_backward(w->aq, ENG_AQ_O_IN, p[WS_DAO], N, QD);
    /* attention, then RoPE (the saved q, k are post-RoPE; their grads are too) */
    eng__attention_bwd(p[WS_DQ], p[WS_DK], p[WS_DV], p[WS_DAO], p[WS_ATT], p[WS_Q], p[WS_K], p[WS_V],
                       B, T, H, KVH, Dh, p[WS_DATT], eng__att_chunk(T), ws->pool, ws->mm);
    eng__rope_bwd_canon(p[WS_DQ], rope, c->rope, B, T, H, Dh);
    eng__rope_bwd_canon(p[WS_DK], rope, c->rope, B, T, KVH, Dh);
    eng_actq_backward(w->aq, ENG_AQ_K_OUT, p[WS_DK], N, KD);                       /* K was quantized before RoPE */
    eng_actq_backward(w->aq, ENG_AQ_V_OUT, p[WS_DV], N, KD);
    lin_bwd_w(ws, g->lin[ENG_Q], p[WS_DQ], p[WS_XN1], N, QD, D);
    lin_bwd_w(ws, g->lin[ENG_K], p[WS_DK], p[WS_XN1], N, KD, D);
    lin_bwd_w(ws, g->lin[ENG_V], p[WS_DV], p[WS_XN1], N, KD, D);
    if (!dx && !g->attn_norm) return; /* nobody needs d xn1: skip 3 GEMMs and the norm */
    lin_bwd_x(ws, p[WS_DXN], p[WS_DQ], w->lin[ENG_Q], N, QD, D, 0.0f);
    lin_bwd_x(ws, p[WS_DXN], p[WS_DK], w->lin[ENG_K], N, KD, D, 1.0f);
    lin_bwd_x(ws, p[WS_DXN], p[WS_DV], w->lin[ENG_V], N, KD, D, 1.0f);             /* d xn1 (N,D) */
    eng_actq_backward(w->aq, ENG_AQ_ATTN_IN, p[WS_DXN], N, D);
    /* x → xn1, plus the residual path: dx = dh + rmsnorm backward */
    if (g->attn_norm) memset(g->attn_norm, 0, (size_t)D * sizeof(float));
    eng__rmsnorm_bwd(dx, g->attn_norm, p[WS_DXN], p[WS_X], w->attn_norm, p[WS_RSTD1], p[WS_DH], N, D);
}
