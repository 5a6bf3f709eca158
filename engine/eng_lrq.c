/* eng_lrq.c — LRQ / FlexRound learnable rounding: LRQ (Lee et al., NAACL 2025, arXiv 2407.11534;
 * official code onliwad101/FlexRound_LRQ), FlexRound (Lee et al., ICML 2023, arXiv 2306.00317).
 * See docs/algorithms.md, LRQ, FlexRound and rank policies.
 *
 * Shapes: W (m,n), a (m,G), L (m,k), U (k,n), r (m), c (n), S2 (m,n); g = j / gs, G = ⌈n/gs⌉
 * (the last group may hold fewer than gs columns; its ga sums over those only).
 *   LRQ        S_ij = (L·U)_ij + r_i + c_j
 *   FlexRound  S_ij = S2_ij + r_i
 *   s1 = exp(a_ig), t_ij = W_ij / (s1 · exp(S_ij)), v = rint(t)          (divisor exp(a + S))
 *   in_ij = [−z ≤ v ≤ M − z],  Wint = clamp(v, −z, M − z),  Ŵ = s1 · Wint
 * The divisor is computed as s1·exp(S) (= exp(a+S) up to rounding) so that exp(0) = 1 exactly
 * gives, at reset (S = 0), the very divisor and multiplier RTN uses: Ŵ(reset) ≡ RTN's Ŵ.
 *
 * Backward (STE through rint, clamp passes gradient only where in = 1):
 *   ∂Ŵ/∂S_ij = −s1·in·t        G = dŴ ⊙ (−s1·in·t)            (m,n)
 *   ∂Ŵ/∂a_ig = s1·(Wint − in·t)  ga_ig = s1 Σ_{j∈g} dŴ_ij (Wint_ij − in_ij t_ij)
 *   gL = G·Uᵀ (m,k), gU = Lᵀ·G (k,n), gr = G·1 (m), gc = Gᵀ·1 (n), gS2 = G.
 * Memory: S (m,n) holds L·U in forward and G in backward (LRQ); FlexRound writes G straight
 * into gS2, so it needs no S. Forward saves only t (m,n); backward recomputes the clamp mask
 * from it (same rint, same bounds), so `in` stays NULL. Hot loops: eng_qkern.h. */
#include "eng_quant.h"
#include "eng_qsimd.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int eng_lrq_rank(int m, int n, const char *policy, int rank, double ratio, int *full)
{
    int mn = m < n ? m : n, f = 0;
    double k;
    if (m <= 0 || n <= 0) return LRQ_ESPEC;
    if (!policy || strcmp(policy, "ratio") == 0) {
        if (!(ratio > 0) || !isfinite(ratio)) return LRQ_ESPEC;
        k = nearbyint(ratio * mn);
    } else if (strcmp(policy, "fixed") == 0) {
        if (rank < 1) return LRQ_ESPEC;
        k = rank;
    } else if (strcmp(policy, "paper") == 0) {
        /* the official code's shape rule (docs/algorithms.md, rank policies) */
        if ((m <= 4096 && n > 4096) || (m > 4096 && n <= 4096) || (m == 8192 && n == 8192)) f = 1;
        k = (m >= 8192 && n >= 8192) ? 2048 : 1024;
    } else {
        return LRQ_ESPEC;
    }
    if (k < 1) k = 1;
    if (k >= mn) f = 1;
    if (f) k = mn;
    if (full) *full = f;
    return (int)k;
}

size_t eng_lrq_param_count(int m, int n, int k, int G, int full)
{
    size_t M = (size_t)m, N = (size_t)n, K = (size_t)k;
    return M * G + (full ? M * N : M * K + K * N + N) + M;
}

int eng_lrq_init(eng_lrq_t *q, const float *W, int m, int n, int k, int full, const eng_qcfg_t *cfg, lrq_err_t *err)
{
    memset(q, 0, sizeof *q);
    if (m <= 0 || n <= 0) return lrq_errf(err, LRQ_ESPEC, "lrq: bad shape %dx%d", m, n);
    if (!cfg || cfg->bits < 2 || cfg->bits > 8)
        return lrq_errf(err, LRQ_ESPEC, "lrq: bits must be 2..8 (got %d)", cfg ? cfg->bits : 0);
    int gs = cfg->group_size == 0 ? n : cfg->group_size;
    if (gs <= 0) return lrq_errf(err, LRQ_ESPEC, "lrq: bad group_size %d", cfg->group_size);
    if (!full && k < 1) return lrq_errf(err, LRQ_ESPEC, "lrq: rank must be ≥ 1 (got %d)", k);
    q->m = m;
    q->n = n;
    q->k = full ? 0 : k;
    q->gs = gs;
    q->G = eng_quant_ngroups(n, gs); /* the last group may be partial */
    q->bits = cfg->bits;
    q->scale_store = cfg->scale_store;
    q->full = full != 0;
    q->W = W;
    size_t mn = (size_t)m * n;
    q->zero = malloc((size_t)m * q->G * sizeof(float));
    q->t = malloc(mn * sizeof(float));
    if (!q->full) q->S = malloc(mn * sizeof(float));
    if (!q->zero || !q->t || (!q->full && !q->S)) {
        eng_lrq_close(q);
        return lrq_errf(err, LRQ_ENOMEM, "lrq: out of memory for a %dx%d layer", m, n);
    }
    return 0;
}

void eng_lrq_close(eng_lrq_t *q)
{
    free(q->zero);
    free(q->t);
    free(q->in);
    free(q->S);
    q->zero = q->t = q->S = NULL;
    q->in = NULL;
}

void eng_lrq_bind(eng_lrq_t *q, float *params, float *grads)
{
    size_t m = q->m, n = q->n, k = q->k, o = 0;
    float **pv[] = { &q->a, &q->L, &q->U, &q->S2, &q->r, &q->c };
    float **gv[] = { &q->ga, &q->gL, &q->gU, &q->gS2, &q->gr, &q->gc };
    size_t sz[] = { m * q->G, q->full ? 0 : m * k, q->full ? 0 : k * n, q->full ? m * n : 0, m, q->full ? 0 : n };
    for (int i = 0; i < 6; i++) {
        *pv[i] = sz[i] ? params + o : NULL;
        *gv[i] = sz[i] && grads ? grads + o : NULL;
        o += sz[i];
    }
}

void eng_lrq_reset(eng_lrq_t *q, const eng_qcfg_t *cfg, uint64_t *rng)
{
    size_t m = q->m, n = q->n, k = q->k;
    eng_qcfg_t c = { q->bits, q->gs == q->n ? 0 : q->gs, cfg->symmetric, cfg->init, q->scale_store };
    /* a = log s from the minmax/mse init; s is a fixed point of expf∘logf, so exp(a) == RTN's scale */
    eng_quant_init_params(q->pool, q->W, q->m, q->n, &c, q->a, q->zero);
    for (size_t i = 0; i < m * q->G; i++) q->a[i] = logf(q->a[i]);
    memset(q->r, 0, m * sizeof(float));
    if (q->full) {
        memset(q->S2, 0, m * n * sizeof(float));
        return;
    }
    memset(q->L, 0, m * k * sizeof(float));
    memset(q->c, 0, n * sizeof(float));
    float b = 1.0f / sqrtf((float)n); /* torch Linear default: U(−1/√n, 1/√n) */
    for (size_t i = 0; i < k * n; i++) q->U[i] = (2.0f * eng_rng_uniform(rng) - 1.0f) * b;
}

/* ---------------------------------------------------------------------------------------------
 * forward: one fused pass per row over exp, divide, round, clamp, mask, Ŵ */

static void lrq__compute_S(const eng_lrq_t *q)
{
    if (q->full) return;
    /* S (m,n) = L (m,k) · U (k,n) */
    eng_mm_gemm(q->mm, q->pool, 0, 0, q->m, q->n, q->k, 1.0f, q->L, q->k, q->U, q->n, 0.0f, q->S, q->n);
}

void eng_lrq_forward(eng_lrq_t *q, float *What)
{
    lrq__compute_S(q);
    eng__lrq_pass_t P = { .q = q, .What = What, .save = 1 };
    eng_pool_range(q->pool, q->m, eng__qparts(q->pool, (long)q->m * q->n), ENG__QK_PICK(eng__lrq_fwd_rows), &P);
}

/* ---------------------------------------------------------------------------------------------
 * backward: one fused pass per row (G, ga, gr, gc), then two sgemms */

void eng_lrq_backward(eng_lrq_t *q, const float *dWhat)
{
    size_t n = q->n;
    int T = eng__qparts(q->pool, (long)q->m * q->n);
    if (T > q->m) T = q->m;
    float *gcp = NULL;
    if (!q->full && T > 1) {
        gcp = malloc((size_t)T * n * sizeof(float));
        if (!gcp) T = 1; /* out of memory: fall back to one thread rather than fail */
    }
    eng__lrq_pass_t P = { .q = q, .dW = dWhat, .Gm = q->full ? q->gS2 : q->S, .gcp = gcp };
    eng_pool_range(q->pool, q->m, T, ENG__QK_PICK(eng__lrq_bwd_rows), &P);
    if (q->full) return;
    if (gcp) { /* fixed reduction order: deterministic for a given thread count */
        memcpy(q->gc, gcp, n * sizeof(float));
        for (int t = 1; t < T; t++)
            for (size_t j = 0; j < n; j++) q->gc[j] += gcp[(size_t)t * n + j];
        free(gcp);
    }
    /* gL (m,k) = G (m,n) · Uᵀ;  gU (k,n) = Lᵀ · G */
    eng_mm_gemm(q->mm, q->pool, 0, 1, q->m, q->k, q->n, 1.0f, q->S, q->n, q->U, q->n, 0.0f, q->gL, q->k);
    eng_mm_gemm(q->mm, q->pool, 1, 0, q->k, q->n, q->m, 1.0f, q->L, q->k, q->S, q->n, 0.0f, q->gU, q->n);
}

void eng_lrq_freeze(const eng_lrq_t *q, eng_qlinear_t *ql)
{
    if (ql->m != q->m || ql->n != q->n || ql->bits != q->bits || ql->gs != q->gs) return; /* caller bug */
    lrq__compute_S(q); /* S is scratch: recomputed from the current L, U */
    /* scales first, rounded to the stored type; the codes are chosen with them (fp32: exp(a) itself,
     * the same s1 the forward uses, so nothing changes) */
    for (size_t i = 0; i < (size_t)q->m * q->G; i++) {
        ql->scale[i] = eng_quant_store_scale(expf(q->a[i]), q->zero[i], q->scale_store);
        ql->zero[i] = q->zero[i];
    }
    ql->scale_store = q->scale_store;
    eng__lrq_pass_t P = { .q = (eng_lrq_t *)q, .codes = ql->q, .s1 = ql->scale };
    eng_pool_range(q->pool, q->m, eng__qparts(q->pool, (long)q->m * q->n), ENG__QK_PICK(eng__lrq_fwd_rows), &P);
}
