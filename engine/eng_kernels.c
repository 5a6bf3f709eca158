/* eng_kernels.c — the ops of a Llama block as forward/backward pairs (llm.c style).
 *
 * Shapes: B batch, T seq, D model dim, H heads, KVH kv heads, Dh head dim, F ffn dim,
 * N = B*T rows. Activations are row-major (B,T,·); a head's slice of a (B,T,H,Dh)
 * tensor is a (T,Dh) matrix with leading dimension H*Dh, which cblas takes directly
 * (no transposes or copies anywhere). Kernels never allocate. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "eng_block.h"
#include "eng_kernels.h"
#include "eng_pool.h"

/* ------------------------------------------------------------------------------------
 * RMSNorm: out = x · rstd · w, rstd = 1/sqrt(mean(x²) + eps)       x, out (N,C); w (C) */

static float row_sumsq(const float *restrict x, int C)
{
    float a[8] = {0};
    int i = 0;
    for (; i + 8 <= C; i += 8)
        for (int j = 0; j < 8; j++) a[j] += x[i + j] * x[i + j];
    float s = 0.0f;
    for (; i < C; i++) s += x[i] * x[i];
    return s + ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

static float row_dot(const float *restrict x, const float *restrict y, int C)
{
    float a[8] = {0};
    int i = 0;
    for (; i + 8 <= C; i += 8)
        for (int j = 0; j < 8; j++) a[j] += x[i + j] * y[i + j];
    float s = 0.0f;
    for (; i < C; i++) s += x[i] * y[i];
    return s + ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* rstd (N) may be NULL (inference). */
void eng_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps)
{
    for (int n = 0; n < N; n++) {
        const float *restrict x_n = x + (size_t)n * C;
        float *restrict o_n = out + (size_t)n * C;
        float r = 1.0f / sqrtf(row_sumsq(x_n, C) / (float)C + eps);
        if (rstd) rstd[n] = r;
        for (int i = 0; i < C; i++) o_n[i] = x_n[i] * r * w[i];
    }
}

/* xhat = x·r, out = xhat ⊙ w:  dxhat = dout ⊙ w,  dx = r·(dxhat − xhat·mean(dxhat ⊙ xhat)),
 * dw += Σ dout ⊙ xhat. */
void eng__rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w,
                      const float *rstd, const float *dres, int N, int C)
{
    for (int n = 0; n < N; n++) {
        const float *restrict x_n = x + (size_t)n * C;
        const float *restrict d_n = dout + (size_t)n * C;
        float r = rstd[n];
        if (dw)
            for (int i = 0; i < C; i++) dw[i] += d_n[i] * x_n[i] * r;
        if (!dx) continue;
        /* mean(dxhat ⊙ xhat) = r/C · Σ dout·w·x */
        float m = 0.0f;
        {
            float a[8] = {0};
            int i = 0;
            for (; i + 8 <= C; i += 8)
                for (int j = 0; j < 8; j++) a[j] += d_n[i + j] * w[i + j] * x_n[i + j];
            for (; i < C; i++) m += d_n[i] * w[i] * x_n[i];
            m += ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
        }
        float c = m * r * r / (float)C; /* coefficient of x (xhat = x·r, one more r outside) */
        float *dx_n = dx + (size_t)n * C;
        const float *dr_n = dres ? dres + (size_t)n * C : NULL;
        if (dr_n)
            for (int i = 0; i < C; i++) dx_n[i] = dr_n[i] + r * (d_n[i] * w[i] - x_n[i] * c);
        else
            for (int i = 0; i < C; i++) dx_n[i] = r * (d_n[i] * w[i] - x_n[i] * c);
    }
}

/* dx (N,C) overwritten; dw (C) accumulates. */
void eng_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x,
                          const float *w, const float *rstd, int N, int C)
{
    eng__rmsnorm_bwd(dx, dw, dout, x, w, rstd, NULL, N, C);
}

/* ------------------------------------------------------------------------------------
 * RoPE, in place on x (B,T,nh,Dh). Position t rotates pair i by angle t·theta^(-2i/Dh).
 * INTERLEAVED pairs are (2i, 2i+1) (llama2.c), HALF pairs are (i, i+Dh/2) (HF).
 * Backward is the rotation by −angle. */

int eng_rope_tab_init(eng_rope_tab_t *r, const eng_config_t *c, int T)
{
    memset(r, 0, sizeof *r);
    if (T <= 0 || c->head_dim <= 0 || c->head_dim % 2) return LRQ_EFORMAT;
    int half = c->head_dim / 2;
    r->cos = malloc((size_t)T * half * sizeof(float));
    r->sin = malloc((size_t)T * half * sizeof(float));
    if (!r->cos || !r->sin) {
        eng_rope_tab_close(r);
        return LRQ_ENOMEM;
    }
    r->T = T;
    r->half = half;
    double theta = c->rope_theta > 0 ? c->rope_theta : 10000.0;
    for (int i = 0; i < half; i++) {
        double freq = pow(theta, -2.0 * i / (double)c->head_dim);
        for (int t = 0; t < T; t++) {
            r->cos[(size_t)t * half + i] = (float)cos(t * freq);
            r->sin[(size_t)t * half + i] = (float)sin(t * freq);
        }
    }
    return 0;
}

void eng_rope_tab_close(eng_rope_tab_t *r)
{
    free(r->cos);
    free(r->sin);
    r->cos = r->sin = NULL;
    r->T = r->half = 0;
}

/* sign +1 forward, −1 backward (transpose of the rotation). */
static void rope_apply(float *x, const eng_rope_tab_t *r, eng_rope_layout_t layout,
                       int B, int T, int nh, int Dh, float sign)
{
    int half = Dh / 2;
    assert(half == r->half && T <= r->T);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *restrict c = r->cos + (size_t)t * half;
            const float *restrict s = r->sin + (size_t)t * half;
            float *x_bt = x + ((size_t)b * T + t) * nh * Dh;
            for (int h = 0; h < nh; h++) {
                float *restrict xh = x_bt + (size_t)h * Dh;
                if (layout == ENG_ROPE_INTERLEAVED) {
                    for (int i = 0; i < half; i++) {
                        float x0 = xh[2 * i], x1 = xh[2 * i + 1], si = sign * s[i];
                        xh[2 * i] = x0 * c[i] - x1 * si;
                        xh[2 * i + 1] = x0 * si + x1 * c[i];
                    }
                } else {
                    for (int i = 0; i < half; i++) {
                        float x0 = xh[i], x1 = xh[i + half], si = sign * s[i];
                        xh[i] = x0 * c[i] - x1 * si;
                        xh[i + half] = x0 * si + x1 * c[i];
                    }
                }
            }
        }
}

void eng_rope_forward(float *x, const eng_rope_tab_t *r, eng_rope_layout_t layout, int B, int T, int nh, int Dh)
{
    rope_apply(x, r, layout, B, T, nh, Dh, 1.0f);
}

void eng_rope_backward(float *dx, const eng_rope_tab_t *r, eng_rope_layout_t layout, int B, int T, int nh, int Dh)
{
    rope_apply(dx, r, layout, B, T, nh, Dh, -1.0f);
}

/* Canonical form for the block: the HALF layout's output is stored with pair i at
 * features (2i, 2i+1), as INTERLEAVED stores it. Attention only takes q·k dot products,
 * which a common permutation of q and k features leaves unchanged; storing one order
 * makes them sum in the same order for both layouts, so an HF checkpoint (rows of
 * Wq/Wk permuted) gives bit-identical scores to its llama2.c twin. */
void eng__rope_fwd_canon(float *x, const eng_rope_tab_t *r, eng_rope_layout_t layout, int B, int T, int nh, int Dh)
{
    if (layout == ENG_ROPE_INTERLEAVED) {
        rope_apply(x, r, layout, B, T, nh, Dh, 1.0f);
        return;
    }
    int half = Dh / 2;
    assert(half == r->half && T <= r->T && Dh <= 1024);
    float tmp[1024];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *restrict c = r->cos + (size_t)t * half;
            const float *restrict s = r->sin + (size_t)t * half;
            for (int h = 0; h < nh; h++) {
                float *restrict xh = x + (((size_t)b * T + t) * nh + h) * Dh;
                for (int i = 0; i < half; i++) {
                    float x0 = xh[i], x1 = xh[i + half];
                    tmp[2 * i] = x0 * c[i] - x1 * s[i];
                    tmp[2 * i + 1] = x0 * s[i] + x1 * c[i];
                }
                memcpy(xh, tmp, (size_t)Dh * sizeof(float));
            }
        }
}

/* dx in canonical order in, gradient w.r.t. the layout's pre-RoPE features out. */
void eng__rope_bwd_canon(float *dx, const eng_rope_tab_t *r, eng_rope_layout_t layout, int B, int T, int nh, int Dh)
{
    if (layout == ENG_ROPE_INTERLEAVED) {
        rope_apply(dx, r, layout, B, T, nh, Dh, -1.0f);
        return;
    }
    int half = Dh / 2;
    assert(half == r->half && T <= r->T && Dh <= 1024);
    float tmp[1024];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *restrict c = r->cos + (size_t)t * half;
            const float *restrict s = r->sin + (size_t)t * half;
            for (int h = 0; h < nh; h++) {
                float *restrict dh = dx + (((size_t)b * T + t) * nh + h) * Dh;
                for (int i = 0; i < half; i++) {
                    float d0 = dh[2 * i], d1 = dh[2 * i + 1];
                    tmp[i] = d0 * c[i] + d1 * s[i];
                    tmp[i + half] = d1 * c[i] - d0 * s[i];
                }
                memcpy(dh, tmp, (size_t)Dh * sizeof(float));
            }
        }
}

/* ------------------------------------------------------------------------------------
 * SwiGLU: out = silu(g) ⊙ u, silu(g) = g·σ(g).                            g, u, out (N)
 * Backward: du = dout ⊙ silu(g), dg = dout ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))).
 * out may alias g; dg may alias dout (element-wise, read before written). */

/* Hot element-wise loops get AVX-512/AVX2 clones (ifunc dispatch at load time) on x86-64;
 * elsewhere the plain version. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define ENG_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#define ENG_CLONES
#endif

/* Blocks of SW elements go through local arrays, so the loops vectorize even when the
 * caller's buffers alias (out = g, dg = dout), with no run-time alias checks. */
enum { SW = 256 };

ENG_CLONES
void eng_swiglu_forward(float *out, const float *g, const float *u, size_t N)
{
    float gl[SW], ul[SW];
    for (size_t i0 = 0; i0 < N; i0 += SW) {
        size_t n = N - i0 < SW ? N - i0 : SW;
        memcpy(gl, g + i0, n * sizeof(float));
        memcpy(ul, u + i0, n * sizeof(float));
        for (size_t i = 0; i < n; i++) gl[i] = gl[i] / (1.0f + eng__expf(-gl[i])) * ul[i];
        memcpy(out + i0, gl, n * sizeof(float));
    }
}

ENG_CLONES
void eng_swiglu_backward(float *dg, float *du, const float *dout, const float *g, const float *u, size_t N)
{
    float gl[SW], ul[SW], dl[SW], s[SW];
    for (size_t i0 = 0; i0 < N; i0 += SW) {
        size_t n = N - i0 < SW ? N - i0 : SW;
        memcpy(gl, g + i0, n * sizeof(float));
        memcpy(ul, u + i0, n * sizeof(float));
        memcpy(dl, dout + i0, n * sizeof(float));
        for (size_t i = 0; i < n; i++) s[i] = 1.0f / (1.0f + eng__expf(-gl[i]));
        for (size_t i = 0; i < n; i++) {
            float si = s[i];
            ul[i] = dl[i] * ul[i] * si * (1.0f + gl[i] * (1.0f - si)); /* dg */
            gl[i] = dl[i] * gl[i] * si;                                /* du */
        }
        memcpy(dg + i0, ul, n * sizeof(float));
        memcpy(du + i0, gl, n * sizeof(float));
    }
}

/* ------------------------------------------------------------------------------------
 * Causal GQA attention, per (b,h):  S = q kᵀ/√Dh (T,T), P = softmax(S + causal mask),
 * out = P v. Head h reads kv head h / (H/KVH). q, out (B,T,H,Dh); k, v (B,T,KVH,Dh).
 * Rows are processed in chunks [r0,r1) that only see keys [0,r1). */

/* In place: p[0..t] = softmax(p[0..t]); p[t+1..n) = 0. */
ENG_CLONES
static void softmax_causal_row(float *p, int t, int n)
{
    float mx[8], a[8] = {0};
    for (int i = 0; i < 8; i++) mx[i] = p[0];
    int j = 0;
    for (; j + 8 <= t + 1; j += 8)
        for (int i = 0; i < 8; i++) mx[i] = p[j + i] > mx[i] ? p[j + i] : mx[i];
    float m = mx[0];
    for (int i = 1; i < 8; i++) m = mx[i] > m ? mx[i] : m;
    for (; j <= t; j++) m = p[j] > m ? p[j] : m;
    for (j = 0; j <= t; j++) p[j] = eng__expf(p[j] - m);
    float sum = 0.0f;
    for (j = 0; j + 8 <= t + 1; j += 8)
        for (int i = 0; i < 8; i++) a[i] += p[j + i];
    for (; j <= t; j++) sum += p[j];
    sum += ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    float inv = 1.0f / sum;
    for (j = 0; j <= t; j++) p[j] *= inv;
    if (t + 1 < n) memset(p + t + 1, 0, (size_t)(n - t - 1) * sizeof(float));
}

/* One task = one (b, kv head g) and the H/KVH query heads that share it: a task owns
 * its rows of out/dq and of dk/dv, so tasks never write the same memory. */
typedef struct {
    float *out, *att, *scratch;        /* scratch: (chunk,T) per thread */
    float *dq, *dk, *dv;
    const float *dout, *q, *k, *v;
    eng_mm_t *mm;                      /* borrowed, NULL = OpenBLAS fp32 */
    int save, B, T, H, KVH, Dh, chunk;
} att_job_t;

static void att_fwd_task(void *ctx, int task, int thread)
{
    const att_job_t *j = ctx;
    const int T = j->T, H = j->H, KVH = j->KVH, Dh = j->Dh, rep = H / KVH, ldq = H * Dh, ldk = KVH * Dh;
    const int b = task / KVH, g = task % KVH, chunk = j->chunk;
    const float scale = 1.0f / sqrtf((float)Dh);
    const float *k_bg = j->k + (size_t)b * T * ldk + (size_t)g * Dh;           /* (T,Dh) ld ldk */
    const float *v_bg = j->v + (size_t)b * T * ldk + (size_t)g * Dh;
    for (int h = g * rep; h < (g + 1) * rep; h++) {
        const float *q_bh = j->q + (size_t)b * T * ldq + (size_t)h * Dh;     /* (T,Dh) ld ldq */
        float *o_bh = j->out + (size_t)b * T * ldq + (size_t)h * Dh;
        for (int r0 = 0; r0 < T; r0 += chunk) {
            int r1 = r0 + chunk < T ? r0 + chunk : T, R = r1 - r0;
            float *P = j->save ? j->att + ((size_t)(b * H + h) * T + r0) * T     /* (R, r1) ld T */
                               : j->scratch + (size_t)thread * chunk * T;
            /* S = scale · q[r0:r1] k[0:r1]ᵀ */
            eng_mm_gemm1(j->mm, thread, 0, 1, R, r1, Dh, scale,
                        q_bh + (size_t)r0 * ldq, ldq, k_bg, ldk, 0.0f, P, T);
            for (int i = 0; i < R; i++) softmax_causal_row(P + (size_t)i * T, r0 + i, r1);
            /* out[r0:r1] = P v[0:r1] */
            eng_mm_gemm1(j->mm, thread, 0, 0, R, Dh, r1, 1.0f,
                        P, T, v_bg, ldk, 0.0f, o_bh + (size_t)r0 * ldq, ldq);
        }
    }
}

void eng__attention_fwd(float *out, float *att, int save, float *scratch, eng_pool_t *pool, eng_mm_t *mm,
                        const float *q, const float *k, const float *v, int B, int T, int H, int KVH, int Dh)
{
    assert(H % KVH == 0);
    att_job_t j = {.out = out, .att = att, .scratch = scratch, .q = q, .k = k, .v = v, .mm = mm, .save = save,
                   .B = B, .T = T, .H = H, .KVH = KVH, .Dh = Dh, .chunk = eng__att_chunk(T)};
    eng_pool_run(pool, B * KVH, att_fwd_task, &j);
}

/* Public form: att fully defined (the block leaves columns ≥ r1 of a chunk unwritten:
 * nothing reads them). */
void eng_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                           int B, int T, int H, int KVH, int Dh)
{
    memset(att, 0, (size_t)B * H * T * T * sizeof(float));
    eng__attention_fwd(out, att, 1, NULL, NULL, NULL, q, k, v, B, T, H, KVH, Dh);
}

/* dP = dout vᵀ; dS = P ⊙ (dP − rowsum(P ⊙ dP)) / √Dh; dq = dS k; dk += dSᵀ q; dv += Pᵀ dout.
 * The kv gradients of the H/KVH heads sharing a kv head accumulate (inside one task). */
static void att_bwd_task(void *ctx, int task, int thread)
{
    const att_job_t *j = ctx;
    const int T = j->T, H = j->H, KVH = j->KVH, Dh = j->Dh, rep = H / KVH, ldq = H * Dh, ldk = KVH * Dh;
    const int b = task / KVH, g = task % KVH, chunk = j->chunk;
    const float scale = 1.0f / sqrtf((float)Dh);
    size_t ko = (size_t)b * T * ldk + (size_t)g * Dh;
    const float *k_bg = j->k + ko, *v_bg = j->v + ko;
    float *dk_bg = j->dk + ko, *dv_bg = j->dv + ko;                             /* (T,Dh) ld ldk */
    for (int t = 0; t < T; t++) {
        memset(dk_bg + (size_t)t * ldk, 0, (size_t)Dh * sizeof(float));
        memset(dv_bg + (size_t)t * ldk, 0, (size_t)Dh * sizeof(float));
    }
    float *dS = j->scratch + (size_t)thread * chunk * T;                        /* (R, r1) ld r1 */
    for (int h = g * rep; h < (g + 1) * rep; h++) {
        size_t qo = (size_t)b * T * ldq + (size_t)h * Dh;
        const float *q_bh = j->q + qo, *do_bh = j->dout + qo;
        float *dq_bh = j->dq + qo;
        const float *P_bh = j->att + (size_t)(b * H + h) * T * T;              /* (T,T) */
        for (int r0 = 0; r0 < T; r0 += chunk) {
            int r1 = r0 + chunk < T ? r0 + chunk : T, R = r1 - r0;
            const float *P = P_bh + (size_t)r0 * T;                             /* (R, r1) ld T */
            /* dv[0:r1] += Pᵀ dout[r0:r1] */
            eng_mm_gemm1(j->mm, thread, 1, 0, r1, Dh, R, 1.0f,
                        P, T, do_bh + (size_t)r0 * ldq, ldq, 1.0f, dv_bg, ldk);
            /* dP = dout[r0:r1] v[0:r1]ᵀ */
            eng_mm_gemm1(j->mm, thread, 0, 1, R, r1, Dh, 1.0f,
                        do_bh + (size_t)r0 * ldq, ldq, v_bg, ldk, 0.0f, dS, r1);
            for (int i = 0; i < R; i++) {
                const float *restrict p = P + (size_t)i * T;
                float *restrict d = dS + (size_t)i * r1;
                int t = r0 + i;
                float dot = row_dot(p, d, t + 1);
                for (int c = 0; c <= t; c++) d[c] = p[c] * (d[c] - dot) * scale;
                for (int c = t + 1; c < r1; c++) d[c] = 0.0f;
            }
            /* dq[r0:r1] = dS k[0:r1] */
            eng_mm_gemm1(j->mm, thread, 0, 0, R, Dh, r1, 1.0f,
                        dS, r1, k_bg, ldk, 0.0f, dq_bh + (size_t)r0 * ldq, ldq);
            /* dk[0:r1] += dSᵀ q[r0:r1] */
            eng_mm_gemm1(j->mm, thread, 1, 0, r1, Dh, R, 1.0f,
                        dS, r1, q_bh + (size_t)r0 * ldq, ldq, 1.0f, dk_bg, ldk);
        }
    }
}

void eng__attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *att,
                        const float *q, const float *k, const float *v, int B, int T, int H,
                        int KVH, int Dh, float *scratch, int chunk, eng_pool_t *pool, eng_mm_t *mm)
{
    assert(H % KVH == 0 && chunk >= 1);
    att_job_t j = {.att = (float *)att, .scratch = scratch, .dq = dq, .dk = dk, .dv = dv, .dout = dout,
                   .q = q, .k = k, .v = v, .mm = mm, .B = B, .T = T, .H = H, .KVH = KVH, .Dh = Dh, .chunk = chunk};
    eng_pool_run(pool, B * KVH, att_bwd_task, &j);
}

void eng_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                            const float *q, const float *k, const float *v, int B, int T, int H, int KVH, int Dh)
{
    enum { SCRATCH = 16384 };
    float scratch[SCRATCH];
    assert(T <= SCRATCH);
    int chunk = SCRATCH / T < T ? SCRATCH / T : T;
    eng__attention_bwd(dq, dk, dv, dout, att, q, k, v, B, T, H, KVH, Dh, scratch, chunk, NULL, NULL);
}
