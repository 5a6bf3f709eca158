/* test_actq.c — activation fake quantization (eng_actq.h) and SmoothQuant (eng_smooth.h) against
 * direct computations written here (docs/algorithms.md, Activation quantization; SmoothQuant).
 *
 * Tolerances (derived):
 *  - element-wise fake quant vs the double formula: the fp32 scale s = fl((hi−lo)/M) differs from
 *    the exact one by ≤ 1 ulp, so x̂ = s·k differs by ≤ 2 ulp of max|x̂| when the integer code k
 *    agrees (the test checks the codes agree: a flip would be an error of a whole step, ~1/255 of
 *    the range, four orders of magnitude above the tolerance 1e-6·max|x|).
 *  - block forward with activation quantization vs a naive double block (as test_grad.c): codes are
 *    compared site by site (they agree for this seed: pre-quant values differ by ~1e-7 relative, a
 *    code flips only if one lies within that of a rounding boundary); then the output matches to
 *    2e-6·max(1, max|y|), test_grad's forward bound. A missing or misplaced quantizer (e.g. K after
 *    RoPE instead of before) gives O(1e-2) (a step of the 8-bit grid, propagated).
 *  - STE backward: central differences (h = 1e-5, double) of the *surrogate* that defines the STE:
 *    every quantizer replaced by x ↦ x̂₀ + m₀ ⊙ (x − x₀), (x₀, x̂₀, m₀) recorded at the point — exact
 *    up to ~1e-10; bound 2e-5 relative as test_grad (fp32 backward). Leaving out a mask (plain
 *    identity through clipped elements) gives O(1e-1) on the affected gradients.
 *  - SmoothQuant, powers of two: bit-identical logits (scaling by 2^k is exact in fp32). Exact
 *    factors: W' = fl(W·s), w' = fl(w/s) perturb each product by ≤ 2 ulp relative, as much as the
 *    forward's own rounding; observed max|Δlogit| ≈ 1e-6·max|logit|, bound 1e-4·max|logit|; a fold
 *    that forgets the norm (or the columns) changes logits by O(1). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "eng_actq.h"
#include "eng_block.h"
#include "eng_forward.h"
#include "eng_smooth.h"
#include "eng_tok.h"

#define FWD_TOL 2e-6
#define GRAD_TOL 2e-5
#define FD_H 1e-5

static void *allocs[1024];
static int nallocs;
static void *talloc(size_t bytes)
{
    cr_assert_lt(nallocs, 1024);
    void *p = calloc(1, bytes ? bytes : 1);
    cr_assert(p);
    return allocs[nallocs++] = p;
}
static void free_all(void)
{
    while (nallocs) free(allocs[--nallocs]);
}
TestSuite(aq, .fini = free_all);
TestSuite(aqblock, .fini = free_all);
TestSuite(smooth, .fini = free_all);

static uint64_t rng_state;
static double urand(void) /* splitmix64 → [-1, 1) */
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}
static double *drand_vec(size_t n, double scale, double offset)
{
    double *v = talloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = offset + scale * urand();
    return v;
}
static float *to_f(const double *d, size_t n)
{
    float *f = talloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = (float)d[i];
    return f;
}

/* ---- the quantizer, directly from the definitions (double) ---- */

/* Per-token (s, z): the range [min(min x, 0), max(max x, 0)]. */
static void ref_token_params(const double *x, int C, int bits, int sym, double *s, double *z)
{
    double lo = 0, hi = 0, M = (1 << bits) - 1;
    for (int c = 0; c < C; c++) {
        lo = fmin(lo, x[c]);
        hi = fmax(hi, x[c]);
    }
    if (sym) {
        *s = fmax(fmax(-lo, hi) / ((1 << (bits - 1)) - 1), 1e-8);
        *z = 1 << (bits - 1);
    } else {
        *s = fmax((hi - lo) / M, 1e-8);
        *z = fmin(fmax(rint(-lo / *s), 0), M);
    }
}
/* Code and value; *in = the clamp did not bite. */
static double ref_fq(double x, double s, double z, int bits, int *code, int *in)
{
    double M = (1 << bits) - 1, q = rint(x / s) + z;
    if (in) *in = q >= 0 && q <= M;
    q = fmin(fmax(q, 0), M);
    if (code) *code = (int)q;
    return s * (q - z);
}

Test(aq, per_token_matches_direct)
{
    enum { N = 9, C = 37 };
    rng_state = 1;
    for (int bits = 4; bits <= 8; bits += 4)
        for (int sym = 0; sym < 2; sym++) {
            double *xd = drand_vec((size_t)N * C, 2.0, 0.3);
            for (int c = 0; c < C; c++) xd[3 * C + c] = 0.7 + 0.5 * urand(); /* one all-positive token */
            for (int c = 0; c < C; c++) xd[5 * C + c] = -0.2 + 0.1 * urand(); /* one all-negative token */
            for (int c = 0; c < C; c++) xd[7 * C + c] = 0.0;                  /* one zero token */
            xd[2 * C + 4] = 40.0;                                             /* an outlier */
            float *x = to_f(xd, (size_t)N * C);
            for (size_t i = 0; i < (size_t)N * C; i++) xd[i] = x[i];
            uint8_t mask[N * C];
            eng_aq_fq_token(x, mask, N, C, bits, sym);
            for (int t = 0; t < N; t++) {
                double s, z, m = 0;
                ref_token_params(xd + t * C, C, bits, sym, &s, &z);
                for (int c = 0; c < C; c++) m = fmax(m, fabs(xd[t * C + c]));
                for (int c = 0; c < C; c++) {
                    int code, in;
                    double r = ref_fq(xd[t * C + c], s, z, bits, &code, &in);
                    double e = fabs(x[t * C + c] - r);
                    cr_expect(e <= 1e-6 * fmax(m, 1e-30) + 1e-12, "bits %d sym %d token %d col %d: %.9g vs %.9g", bits,
                              sym, t, c, x[t * C + c], r);
                    cr_expect(in, "per-token: nothing is clipped (token %d col %d)", t, c);
                    cr_expect_eq(mask[t * C + c], 1);
                }
            }
        }
}

Test(aq, constant_token_scales)
{
    float s, z;
    float x[8];
    for (int i = 0; i < 8; i++) x[i] = 0.37f;
    eng_aq_token_params(x, 8, 8, 0, &s, &z);
    cr_expect_eq(s, 0.37f / 255.0f, "s = c/255, got %.9g", s);
    cr_expect_eq(z, 0.0f);
    eng_aq_fq_token(x, NULL, 1, 8, 8, 0);
    for (int i = 0; i < 8; i++) cr_expect(fabsf(x[i] - 0.37f) <= 0.37f * 2.4e-7f, "x̂ = c, got %.9g", x[i]);
    for (int i = 0; i < 8; i++) x[i] = -2.5f;
    eng_aq_token_params(x, 8, 8, 0, &s, &z);
    cr_expect_eq(s, 2.5f / 255.0f);
    cr_expect_eq(z, 255.0f);
    eng_aq_fq_token(x, NULL, 1, 8, 8, 0);
    for (int i = 0; i < 8; i++) cr_expect(fabsf(x[i] + 2.5f) <= 2.5f * 2.4e-7f, "x̂ = c, got %.9g", x[i]);
    for (int i = 0; i < 8; i++) x[i] = 0.37f;
    eng_aq_token_params(x, 8, 8, 1, &s, &z);
    cr_expect_eq(s, 0.37f / 127.0f);
    cr_expect_eq(z, 128.0f);
    for (int i = 0; i < 8; i++) x[i] = 0.0f;
    eng_aq_token_params(x, 8, 8, 0, &s, &z);
    cr_expect_eq(s, 1e-8f, "an all-zero token gets the floor scale");
    eng_aq_fq_token(x, NULL, 1, 8, 8, 0);
    for (int i = 0; i < 8; i++) cr_expect_eq(x[i], 0.0f);
}

Test(aq, per_tensor_and_ste_definition)
{
    enum { n = 500 };
    rng_state = 2;
    double *xd = drand_vec(n, 3.0, 0.5);
    float *x = to_f(xd, n), *dx = talloc(n * sizeof *dx);
    const float s = 0.01f, z = 100.0f; /* range [−1.00, 1.55]: clips much of [−2.5, 3.5] */
    uint8_t *mask = talloc(n);
    int clipped = 0;
    eng_aq_fq_tensor(x, mask, n, s, z, 8);
    for (int i = 0; i < n; i++) {
        int code, in;
        double r = ref_fq((float)xd[i], s, z, 8, &code, &in);
        cr_expect(fabs(x[i] - r) <= 2.4e-7 * 1.55, "elem %d: %.9g vs %.9g", i, x[i], r);
        cr_expect_eq(mask[i], in, "mask elem %d", i);
        clipped += !in;
        dx[i] = (float)(i + 1);
    }
    cr_expect(clipped > 100 && clipped < n - 100, "the test data must clip some elements (%d)", clipped);
    eng_aq_ste_backward(dx, mask, n);
    for (int i = 0; i < n; i++) cr_expect_eq(dx[i], mask[i] ? (float)(i + 1) : 0.0f, "STE elem %d", i);
}

/* Known data: values v_k = −1 + 4k/(K−1), k = 0 … K−1 (uniform on [−1, 3]), streamed in batches whose
 * range grows (the histogram's range doubles several times). */
Test(aq, calibration_on_known_data)
{
    enum { K = 40001 };
    float *v = talloc(K * sizeof *v);
    for (int k = 0; k < K; k++) v[k] = (float)(-1.0 + 4.0 * k / (K - 1));
    /* batches: the middle first (|v| < 0.01), then growing shells */
    eng_aq_stats_t st, one;
    cr_assert_eq(eng_aq_stats_init(&st, 1, 0, NULL), 0);
    cr_assert_eq(eng_aq_stats_init(&one, 1, 0, NULL), 0);
    float *perm = talloc(K * sizeof *perm);
    int np = 0;
    static const double shell[5] = {0, 0.01, 0.1, 1, 10};
    for (int r = 0; r < 4; r++)
        for (int k = 0; k < K; k++)
            if (fabsf(v[k]) >= shell[r] && fabsf(v[k]) < shell[r + 1]) perm[np++] = v[k];
    cr_assert_eq(np, K);
    for (int i = 0; i < K; i += 1000) eng_aq_stats_add(&st, perm + i, 1, K - i < 1000 ? K - i : 1000);
    eng_aq_stats_add(&one, v, K, 1);
    cr_expect_eq(st.count, (double)K);
    double tot = 0;
    for (int b = 0; b < ENG_AQ_NBINS; b++) tot += st.hist[b];
    cr_expect_eq(tot, (double)K, "histogram keeps every count across range doublings");
    cr_expect_eq(st.R, one.R, "same final range whatever the order");
    for (int b = 0; b < ENG_AQ_NBINS; b++) cr_expect_eq(st.hist[b], one.hist[b], "bin %d", b);

    eng_aqcfg_t cfg = {.bits = 8, .kv_bits = 16, .granularity = ENG_AQ_PER_TENSOR, .calibrate = ENG_AQ_CAL_MINMAX};
    float s, z;
    eng_aq_calibrate(&st, &cfg, 8, &s, &z);
    cr_expect(fabsf(s - 4.0f / 255.0f) <= 4.0f / 255.0f * 1.2e-7f, "minmax s = 4/255, got %.9g", s);
    cr_expect_eq(z, 64.0f, "minmax z = rint(1/s) = rint(63.75)");

    /* percentile 90: hi = the 0.9 quantile = −1 + 0.9·4 = 2.6, lo = the 0.1 quantile = −0.6;
     * histogram resolution 2R/4096 with R = 4 → 0.002 */
    cfg.calibrate = ENG_AQ_CAL_PERCENTILE;
    cfg.percentile = 90.0;
    eng_aq_calibrate(&st, &cfg, 8, &s, &z);
    double hi = s * (255 - z), lo = -s * z;
    cr_expect(fabs(hi - 2.6) <= 0.002 + s && fabs(lo + 0.6) <= 0.002 + s, "percentile range [%.5g, %.5g]", lo, hi);

    /* MSE: on uniform data the full range is optimal (any shrink adds clipping error of order the
     * clipped width cubed, more than the step it saves): the search keeps minmax */
    cfg.calibrate = ENG_AQ_CAL_MSE;
    eng_aq_calibrate(&st, &cfg, 8, &s, &z);
    cr_expect(fabsf(s - 4.0f / 255.0f) <= 4.0f / 255.0f * 0.011f, "mse on uniform data keeps ~the full range (s %.6g)", s);
    eng_aq_stats_close(&st);
    eng_aq_stats_close(&one);
}

/* Heavy-tailed data: the MSE search must beat min/max on the data itself, and come close to a
 * brute-force search over the same 100 candidate ranges scored on the raw values. */
Test(aq, mse_search_beats_minmax)
{
    enum { n = 20000 };
    rng_state = 3;
    float *x = talloc(n * sizeof *x);
    for (int i = 0; i < n; i++) {
        double u = urand();
        x[i] = (float)(0.3 * u * u * u * 4.0); /* peaked near 0 */
    }
    x[17] = 25.0f; /* outliers stretch the range */
    x[99] = -9.0f;
    eng_aq_stats_t st;
    cr_assert_eq(eng_aq_stats_init(&st, 1, 0, NULL), 0);
    eng_aq_stats_add(&st, x, 100, n / 100);
    eng_aqcfg_t cfg = {.bits = 4, .kv_bits = 16, .granularity = ENG_AQ_PER_TENSOR, .calibrate = ENG_AQ_CAL_MINMAX};
    float s0, z0, s1, z1;
    eng_aq_calibrate(&st, &cfg, 4, &s0, &z0);
    cfg.calibrate = ENG_AQ_CAL_MSE;
    eng_aq_calibrate(&st, &cfg, 4, &s1, &z1);
    double e0 = 0, e1 = 0, best = INFINITY;
    for (int i = 0; i < n; i++) {
        double a = ref_fq(x[i], s0, z0, 4, NULL, NULL) - x[i], b = ref_fq(x[i], s1, z1, 4, NULL, NULL) - x[i];
        e0 += a * a;
        e1 += b * b;
    }
    for (int f = 1; f <= 100; f++) {
        double lo = -9.0 * f / 100, hi = 25.0 * f / 100, s = (hi - lo) / 15, z = fmin(fmax(rint(-lo / s), 0), 15), e = 0;
        for (int i = 0; i < n; i++) {
            double d = ref_fq(x[i], s, z, 4, NULL, NULL) - x[i];
            e += d * d;
        }
        best = fmin(best, e);
    }
    cr_expect(s1 < s0 && e1 < 0.5 * e0, "mse search: s %.4g (minmax %.4g), error %.4g vs %.4g", s1, s0, e1, e0);
    cr_expect(e1 <= 1.05 * best, "histogram MSE search within 5%% of the brute-force optimum (%.5g vs %.5g)", e1, best);
    eng_aq_stats_close(&st);
}

/* ---- a whole block with activation quantization vs a naive double block ---- */

enum { B_ = 2, T_ = 5, D_ = 16, H_ = 4, KVH_ = 2, DH_ = 4, F_ = 24, N_ = B_ * T_ };
static const int lin_m[ENG_NLIN] = {H_ * DH_, KVH_ * DH_, KVH_ * DH_, D_, F_, F_, D_};
static const int lin_n[ENG_NLIN] = {D_, D_, D_, H_ * DH_, D_, D_, F_};
static const int site_w[ENG_AQ_NSITE] = {D_, H_ * DH_, D_, F_, KVH_ * DH_, KVH_ * DH_};

static void ref_rmsnorm(double *out, const double *x, const double *w, int N, int C, double eps)
{
    for (int n = 0; n < N; n++) {
        double ss = 0;
        for (int i = 0; i < C; i++) ss += x[n * C + i] * x[n * C + i];
        double r = 1.0 / sqrt(ss / C + eps);
        for (int i = 0; i < C; i++) out[n * C + i] = x[n * C + i] * r * w[i];
    }
}
static void ref_rope(double *x, int B, int T, int nh, int Dh, double theta) /* llama2.c interleaved */
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < nh; h++) {
                double *v = x + ((size_t)(b * T + t) * nh + h) * Dh;
                for (int i = 0; i < Dh / 2; i++) {
                    double a = t * pow(theta, -2.0 * i / Dh), re = v[2 * i], im = v[2 * i + 1];
                    v[2 * i] = re * cos(a) - im * sin(a);
                    v[2 * i + 1] = re * sin(a) + im * cos(a);
                }
            }
}
static void ref_attention(double *out, const double *q, const double *k, const double *v, int B, int T, int H,
                          int KVH, int Dh)
{
    double s[T_];
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / (H / KVH);
            for (int t = 0; t < T; t++) {
                const double *qt = q + ((size_t)(b * T + t) * H + h) * Dh;
                double mx = -1e300, sum = 0;
                for (int j = 0; j <= t; j++) {
                    const double *kj = k + ((size_t)(b * T + j) * KVH + g) * Dh;
                    s[j] = 0;
                    for (int d = 0; d < Dh; d++) s[j] += qt[d] * kj[d];
                    s[j] /= sqrt((double)Dh);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j <= t; j++) sum += (s[j] = exp(s[j] - mx));
                double *ot = out + ((size_t)(b * T + t) * H + h) * Dh;
                for (int d = 0; d < Dh; d++) {
                    ot[d] = 0;
                    for (int j = 0; j <= t; j++) ot[d] += s[j] / sum * v[((size_t)(b * T + j) * KVH + g) * Dh + d];
                }
            }
        }
}
static void ref_linear(double *y, const double *x, const double *W, int N, int m, int n)
{
    for (int r = 0; r < N; r++)
        for (int o = 0; o < m; o++) {
            double s = 0;
            for (int i = 0; i < n; i++) s += x[r * n + i] * W[o * n + i];
            y[r * m + o] = s;
        }
}

typedef struct {
    eng_config_t cfg;
    double *x, *n1, *n2, *W[ENG_NLIN], *dy;
    const eng_actq_layer_t *aq;
    int surrogate;                       /* 0: quantize and record; 1: the STE surrogate */
    double *x0[ENG_AQ_NSITE], *xh0[ENG_AQ_NSITE];
    int *code[ENG_AQ_NSITE];
    uint8_t *m0[ENG_AQ_NSITE];
} blk_ctx;

/* The quantizer at a site, from the definition; records (x₀, x̂₀, mask, code) or applies the surrogate. */
static void ref_site(blk_ctx *c, int site, double *x, int N, int C)
{
    int bits = eng_aq_site_bits(c->aq->cfg, site);
    if (bits >= 16) return;
    for (int t = 0; t < N; t++) {
        double s = c->aq->scale[site], z = c->aq->zero[site];
        if (c->aq->cfg->granularity == ENG_AQ_PER_TOKEN && !c->surrogate)
            ref_token_params(x + (size_t)t * C, C, bits, c->aq->cfg->symmetric, &s, &z);
        for (int j = 0; j < C; j++) {
            size_t i = (size_t)t * C + j;
            if (c->surrogate) {
                x[i] = c->xh0[site][i] + c->m0[site][i] * (x[i] - c->x0[site][i]);
                continue;
            }
            int in;
            c->x0[site][i] = x[i];
            x[i] = ref_fq(x[i], s, z, bits, &c->code[site][i], &in);
            c->xh0[site][i] = x[i];
            c->m0[site][i] = (uint8_t)in;
        }
    }
}

static void ref_block(blk_ctx *c, double *y)
{
    const int N = N_;
    size_t nd = (size_t)N * D_;
    double xn[N_ * D_], q[N_ * H_ * DH_], k[N_ * KVH_ * DH_], v[N_ * KVH_ * DH_], ao[N_ * H_ * DH_], hh[N_ * D_],
        gt[N_ * F_], up[N_ * F_];
    ref_rmsnorm(xn, c->x, c->n1, N, D_, c->cfg.norm_eps);
    ref_site(c, ENG_AQ_ATTN_IN, xn, N, D_);
    ref_linear(q, xn, c->W[ENG_Q], N, H_ * DH_, D_);
    ref_linear(k, xn, c->W[ENG_K], N, KVH_ * DH_, D_);
    ref_linear(v, xn, c->W[ENG_V], N, KVH_ * DH_, D_);
    ref_site(c, ENG_AQ_K_OUT, k, N, KVH_ * DH_); /* K before RoPE, as the LRQ evaluation does */
    ref_site(c, ENG_AQ_V_OUT, v, N, KVH_ * DH_);
    ref_rope(q, B_, T_, H_, DH_, c->cfg.rope_theta);
    ref_rope(k, B_, T_, KVH_, DH_, c->cfg.rope_theta);
    ref_attention(ao, q, k, v, B_, T_, H_, KVH_, DH_);
    ref_site(c, ENG_AQ_O_IN, ao, N, H_ * DH_);
    ref_linear(hh, ao, c->W[ENG_O], N, D_, H_ * DH_);
    for (size_t i = 0; i < nd; i++) hh[i] += c->x[i];
    ref_rmsnorm(xn, hh, c->n2, N, D_, c->cfg.norm_eps);
    ref_site(c, ENG_AQ_FFN_IN, xn, N, D_);
    ref_linear(gt, xn, c->W[ENG_GATE], N, F_, D_);
    ref_linear(up, xn, c->W[ENG_UP], N, F_, D_);
    for (size_t i = 0; i < (size_t)N * F_; i++) gt[i] = gt[i] / (1.0 + exp(-gt[i])) * up[i];
    ref_site(c, ENG_AQ_DOWN_IN, gt, N, F_);
    ref_linear(y, gt, c->W[ENG_DOWN], N, D_, F_);
    for (size_t i = 0; i < nd; i++) y[i] += hh[i];
}

static double blk_loss(blk_ctx *c)
{
    double y[N_ * D_], L = 0;
    ref_block(c, y);
    for (int i = 0; i < N_ * D_; i++) L += y[i] * c->dy[i];
    return L;
}

static void check_grad(const char *what, double *p, size_t n, blk_ctx *c, const float *g)
{
    double m = 1e-2, e = 0.0;
    for (size_t i = 0; i < n; i++) {
        double s = p[i];
        p[i] = s + FD_H;
        double lp = blk_loss(c);
        p[i] = s - FD_H;
        double lm = blk_loss(c);
        p[i] = s;
        double fd = (lp - lm) / (2 * FD_H);
        m = fmax(m, fabs(fd));
        e = fmax(e, fabs(g[i] - fd));
    }
    cr_expect(e <= GRAD_TOL * m, "%s: max abs err %.3g (scale %.3g)", what, e, m);
}

/* Engine's codes at a site from its output x̂ (per tensor: (s, z); per token: recomputed from the
 * reference's x₀, which agrees with the engine's input to ~1e-7). */
static void block_case(eng_aq_gran_t gran, int kv_bits)
{
    rng_state = 20 + gran;
    blk_ctx c = {.cfg = {.dim = D_, .ffn_dim = F_, .n_layers = 1, .n_heads = H_, .n_kv_heads = KVH_, .head_dim = DH_,
                         .max_seq_len = T_, .norm_eps = 1e-5f, .rope_theta = 100.0f, .rope = ENG_ROPE_INTERLEAVED}};
    size_t nd = (size_t)N_ * D_;
    c.x = drand_vec(nd, 1.0, 0.0);
    c.dy = drand_vec(nd, 1.0, 0.0);
    c.n1 = drand_vec(D_, 0.3, 1.0);
    c.n2 = drand_vec(D_, 0.3, 1.0);
    eng_block_w_t w = {0};
    eng_block_g_t g = {0};
    for (int l = 0; l < ENG_NLIN; l++) {
        size_t n = (size_t)lin_m[l] * lin_n[l];
        c.W[l] = drand_vec(n, (l <= ENG_K ? 2.0 : 1.0) * 1.7 / sqrt(lin_n[l]), 0.0);
        w.lin[l] = to_f(c.W[l], n);
        g.lin[l] = talloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) c.W[l][i] = w.lin[l][i];
    }
    w.attn_norm = to_f(c.n1, D_);
    w.ffn_norm = to_f(c.n2, D_);
    for (int i = 0; i < D_; i++) c.n1[i] = w.attn_norm[i], c.n2[i] = w.ffn_norm[i];
    float *x = to_f(c.x, nd), *dy = to_f(c.dy, nd), *y = talloc(nd * sizeof *y), *dx = talloc(nd * sizeof *dx);
    for (size_t i = 0; i < nd; i++) c.x[i] = x[i], c.dy[i] = dy[i];
    for (int k = 0; k < ENG_AQ_NSITE; k++) {
        size_t n = (size_t)N_ * site_w[k];
        c.x0[k] = talloc(n * sizeof(double));
        c.xh0[k] = talloc(n * sizeof(double));
        c.code[k] = talloc(n * sizeof(int));
        c.m0[k] = talloc(n);
    }
    eng_aqcfg_t cfg = {.bits = 8, .kv_bits = kv_bits, .granularity = gran};
    eng_actq_t aq;
    cr_assert_eq(eng_actq_init(&aq, &cfg, 1, NULL), 0);
    cr_assert_eq(eng_actq_alloc_masks(&aq, (size_t)N_ * F_, NULL), 0);
    if (gran == ENG_AQ_PER_TENSOR) {
        /* ranges that clip: ~60% of each site's spread on this data (from an FP pass) */
        static const float lo[ENG_AQ_NSITE] = {-1.2f, -0.6f, -1.2f, -0.3f, -1.5f, -0.8f};
        static const float hi[ENG_AQ_NSITE] = {1.2f, 0.6f, 1.2f, 0.5f, 1.5f, 0.8f};
        for (int k = 0; k < ENG_AQ_NSITE; k++) {
            float s = (hi[k] - lo[k]) / 255.0f;
            aq.layer[0].scale[k] = s;
            aq.layer[0].zero[k] = rintf(-lo[k] / s);
        }
    }
    eng_actq_layer_t *L = eng_actq_train_view(&aq, 0);
    c.aq = L;
    w.aq = L;
    eng_rope_tab_t tab;
    cr_assert_eq(eng_rope_tab_init(&tab, &c.cfg, T_), 0);
    eng_block_ws_t *ws = eng_block_ws_new(&c.cfg, B_, T_, 1, NULL);
    cr_assert(ws);
    eng_block_forward(&c.cfg, &w, &tab, x, y, ws, B_, T_);
    double yref[N_ * D_];
    ref_block(&c, yref);
    int clipped = 0;
    for (int k = 0; k < ENG_AQ_NSITE; k++)
        for (size_t i = 0; i < (size_t)N_ * site_w[k]; i++) clipped += !c.m0[k][i];
    if (gran == ENG_AQ_PER_TENSOR) cr_expect(clipped > 20, "the ranges must clip (%d clipped)", clipped);
    else cr_expect_eq(clipped, 0);
    double m = 1, e = 0;
    for (size_t i = 0; i < nd; i++) {
        m = fmax(m, fabs(yref[i]));
        e = fmax(e, fabs(y[i] - yref[i]));
    }
    cr_expect(e <= FWD_TOL * m, "block forward with activation quantization: err %.3g (scale %.3g)", e, m);
    /* the same block without quantizers is far from it: the test sees the quantization */
    eng_block_ws_t *ws0 = eng_block_ws_new(&c.cfg, B_, T_, 0, NULL);
    eng_block_w_t w0 = w;
    w0.aq = NULL;
    float *y0 = talloc(nd * sizeof *y0);
    eng_block_forward(&c.cfg, &w0, &tab, x, y0, ws0, B_, T_);
    double d0 = 0;
    for (size_t i = 0; i < nd; i++) d0 = fmax(d0, fabs(y0[i] - yref[i]));
    cr_expect(d0 > 100 * FWD_TOL * m, "quantization must be visible (%.3g)", d0);
    /* inference workspace with the same quantizers: same output bit for bit */
    w0.aq = &aq.layer[0];
    eng_block_forward(&c.cfg, &w0, &tab, x, y0, ws0, B_, T_);
    cr_expect_arr_eq(y0, y, nd * sizeof *y, "inference and training workspaces agree");
    eng_block_ws_free(ws0);

    eng_block_backward(&c.cfg, &w, &tab, dy, dx, &g, ws, B_, T_);
    c.surrogate = 1;
    static const char *names[ENG_NLIN] = {"dWq", "dWk", "dWv", "dWo", "dWgate", "dWup", "dWdown"};
    for (int l = 0; l < ENG_NLIN; l++) check_grad(names[l], c.W[l], (size_t)lin_m[l] * lin_n[l], &c, g.lin[l]);
    check_grad("dx", c.x, nd, &c, dx);
    eng_block_ws_free(ws);
    eng_rope_tab_close(&tab);
    eng_actq_close(&aq);
}

Test(aqblock, per_token_kv8_forward_and_ste) { block_case(ENG_AQ_PER_TOKEN, 8); }
Test(aqblock, per_tensor_static_forward_and_ste) { block_case(ENG_AQ_PER_TENSOR, 8); }

Test(aqblock, off_is_identity)
{
    rng_state = 30;
    eng_config_t cfg = {.dim = D_, .ffn_dim = F_, .n_layers = 1, .n_heads = H_, .n_kv_heads = KVH_, .head_dim = DH_,
                        .max_seq_len = T_, .norm_eps = 1e-5f, .rope_theta = 100.0f};
    size_t nd = (size_t)N_ * D_;
    eng_block_w_t w = {0};
    for (int l = 0; l < ENG_NLIN; l++)
        w.lin[l] = to_f(drand_vec((size_t)lin_m[l] * lin_n[l], 0.4, 0.0), (size_t)lin_m[l] * lin_n[l]);
    w.attn_norm = to_f(drand_vec(D_, 0.3, 1.0), D_);
    w.ffn_norm = to_f(drand_vec(D_, 0.3, 1.0), D_);
    float *x = to_f(drand_vec(nd, 1.0, 0.0), nd), *y1 = talloc(nd * 4), *y2 = talloc(nd * 4);
    eng_aqcfg_t acfg = {.bits = 16, .kv_bits = 16};
    eng_actq_t aq;
    cr_assert_eq(eng_actq_init(&aq, &acfg, 1, NULL), 0);
    eng_rope_tab_t tab;
    cr_assert_eq(eng_rope_tab_init(&tab, &cfg, T_), 0);
    eng_block_ws_t *ws = eng_block_ws_new(&cfg, B_, T_, 0, NULL);
    eng_block_forward(&cfg, &w, &tab, x, y1, ws, B_, T_);
    w.aq = &aq.layer[0];
    eng_block_forward(&cfg, &w, &tab, x, y2, ws, B_, T_);
    cr_expect_arr_eq(y1, y2, nd * 4, "bits 16 = off: bit-identical");
    eng_block_ws_free(ws);
    eng_rope_tab_close(&tab);
    eng_actq_close(&aq);
}

/* ---- SmoothQuant on stories260K ---- */

static const char *shared(const char *rel)
{
    static char buf[4][1024];
    static int k;
    const char *s = getenv("LRQ_SHARED"), *src = getenv("LRQ_SRCDIR");
    char *b = buf[k++ & 3];
    if (s) snprintf(b, 1024, "%s/%s", s, rel);
    else snprintf(b, 1024, "%s/../shared/%s", src ? src : ".", rel);
    return b;
}

/* Per-channel max |x| at the attention and MLP inputs over tokens (B,T) of data, through runner r. */
static void collect_amax(const eng_model_t *m, const int32_t *tok, int B, int T, float *amax)
{
    const eng_config_t *c = &m->cfg;
    int w[ENG_AQ_NSITE] = {c->dim, c->n_heads * c->head_dim, c->dim, c->ffn_dim, c->n_kv_heads * c->head_dim,
                           c->n_kv_heads * c->head_dim};
    eng_aq_calib_t cal;
    cr_assert_eq(eng_aq_calib_init(&cal, c->n_layers, w, 1, NULL), 0);
    eng_runner_t *r = NULL;
    lrq_err_t err = {0};
    cr_assert_eq(eng_runner_new(m, B, T, NULL, &r, &err), 0, "%s", err.msg);
    eng_runner_set_actq(r, cal.layers);
    float *logits = talloc((size_t)B * T * c->vocab_size * sizeof *logits);
    cr_assert_eq(eng_runner_logits(r, tok, B, T, logits, &err), 0, "%s", err.msg);
    for (int l = 0; l < c->n_layers; l++) {
        memcpy(amax + (size_t)(2 * l) * c->dim, cal.st[l * ENG_AQ_NSITE + ENG_AQ_ATTN_IN].chmax, c->dim * sizeof *amax);
        memcpy(amax + (size_t)(2 * l + 1) * c->dim, cal.st[l * ENG_AQ_NSITE + ENG_AQ_FFN_IN].chmax,
               c->dim * sizeof *amax);
    }
    eng_runner_free(r);
    eng_aq_calib_close(&cal);
}

static void smooth_case(int pow2)
{
    eng_model_t *m = NULL;
    lrq_err_t err = {0};
    const char *path = shared("models/stories260K/stories260K.bin");
    FILE *f = fopen(path, "rb");
    if (!f) cr_skip_test("no %s", path);
    fclose(f);
    cr_assert_eq(eng_model_open(path, &m, &err), 0, "%s", err.msg);
    const eng_config_t *c = &m->cfg;
    enum { B = 2, T = 32 };
    int32_t tok[B * T];
    rng_state = 40;
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)((urand() + 1) * 0.5 * (c->vocab_size - 1));
    tok[0] = tok[T] = 1;
    float *amax = talloc((size_t)c->n_layers * 2 * c->dim * sizeof *amax);
    collect_amax(m, tok, B, T, amax);
    eng_smooth_t sm;
    cr_assert_eq(eng_smooth_init(&sm, m, amax, 0.8f, pow2, &err), 0, "%s", err.msg);
    int changed = 0;
    for (size_t i = 0; i < (size_t)c->n_layers * 2 * c->dim; i++) changed += sm.s[i] != 1.0f;
    cr_expect(changed > c->dim, "smoothing must move most channels (%d factors ≠ 1)", changed);
    /* the migration: the smoothed model's per-channel maxima are amax / s */
    float *amax2 = talloc((size_t)c->n_layers * 2 * c->dim * sizeof *amax2);
    collect_amax(&sm.view, tok, B, T, amax2);
    double worst = 0;
    for (size_t i = 0; i < (size_t)c->n_layers * 2 * c->dim; i++)
        worst = fmax(worst, fabs(amax2[i] * sm.s[i] - amax[i]) / fmax(amax[i], 1e-6));
    cr_expect(worst < 1e-5, "max|X'_j| = max|X_j| / s_j (worst rel %.3g)", worst);
    /* logits unchanged */
    eng_runner_t *r0 = NULL, *r1 = NULL;
    cr_assert_eq(eng_runner_new(m, B, T, NULL, &r0, &err), 0);
    cr_assert_eq(eng_runner_new(&sm.view, B, T, NULL, &r1, &err), 0);
    size_t nl = (size_t)B * T * c->vocab_size;
    float *l0 = talloc(nl * sizeof *l0), *l1 = talloc(nl * sizeof *l1);
    cr_assert_eq(eng_runner_logits(r0, tok, B, T, l0, &err), 0);
    cr_assert_eq(eng_runner_logits(r1, tok, B, T, l1, &err), 0);
    double mx = 0, d = 0;
    for (size_t i = 0; i < nl; i++) {
        mx = fmax(mx, fabs(l0[i]));
        d = fmax(d, fabs(l0[i] - l1[i]));
    }
    cr_log_info("smooth pow2=%d: max|Δlogit| %.3g, max|logit| %.3g", pow2, d, mx);
    if (pow2) cr_expect_arr_eq(l0, l1, nl * sizeof *l0, "power-of-two factors: bit-identical logits (max diff %.3g)", d);
    else cr_expect(d <= 1e-4 * mx, "exact factors: max|Δlogit| %.3g > 1e-4 · %.3g", d, mx);
    eng_runner_free(r0);
    eng_runner_free(r1);
    eng_smooth_close(&sm);
    eng_model_free(m);
}

Test(smooth, invertible_pow2) { smooth_case(1); }
Test(smooth, invertible_exact) { smooth_case(0); }
