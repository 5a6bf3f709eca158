/* eng_quant.c — uniform affine weight quantizer: minmax and mse init, RTN (docs/algorithms.md,
 * RTN and min-max/MSE init grid search).
 *
 * Conventions shared with eng_lrq.c (so that LRQ at reset reproduces RTN bit for bit):
 *   Wint = clamp(rint(w / s), −z, M − z),  q = Wint + z,  Ŵ = s·Wint,  M = 2^b − 1.
 *   s is always representable as expf(logf(s)) (canonicalised below) so a = logf(s) round-trips.
 *
 * Asymmetric (default): x_min = min(w, 0), x_max = max(w, 0), s = (x_max − x_min)/M,
 *   z = clamp(−rint(x_min/s), 0, M).
 * Symmetric: z = 2^(b−1) fixed (GPTQ convention), s = max|w| / (2^(b−1) − 1): the positive side
 *   [0, 2^(b−1)−1] reaches max|w| exactly, the negative side has one spare level. mse mode
 *   searches the same 100 range fractions of that s (z stays fixed).
 * mse (the official LRQ code's init, arXiv 2407.11534; docs/algorithms.md, MSE init grid search): for i = 1..100 and every zero point zp, Δ = s_minmax·i/100; score
 *   Σ|w − Ŵ|^2.4 (the mean's 1/n is common to all candidates); first argmin in (i, zp) order.
 * Scales are floored at 1e-8 (official) and capped at 3e38 (finite expf(logf(s)));
 * |w| up to ~1e38 gives a finite Ŵ (beyond that z·s may overflow).
 *
 * The mse search is exact in its candidate set but avoids the 100·2^b·n brute force:
 * the row is sorted once; for each i the elements whose level rint(w/Δ) ∈ [−zp, M−zp] form a
 * contiguous run, so the in-range part of every zp's score is a difference of prefix sums over
 * per-level sums (one |ε|^2.4 per element per i), and only clipped elements are evaluated per zp,
 * outermost first, abandoning a candidate as soon as its partial score exceeds the best (all
 * terms are ≥ 0, so the partial sum is a lower bound). i runs from 100 down, after seeding the
 * bound with the minmax candidate, so most bad candidates die after one block. */
#include "eng_quant.h"
#include "eng_qsimd.h"
#include "eng_half.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define QUANT_SMIN 1e-8f
#define QUANT_SMAX 3e38f
#define QUANT_PAD 8

/* ---------------------------------------------------------------------------------------------
 * quantized linear container */

int eng_quant_ngroups(int n, int group_size)
{
    if (n <= 0 || group_size < 0) return 0;
    if (group_size == 0) return 1;
    return n / group_size + (n % group_size != 0); /* no n + gs − 1: gs may be near INT_MAX */
}

int eng_qlinear_init(eng_qlinear_t *ql, int m, int n, const eng_qcfg_t *cfg, lrq_err_t *err)
{
    memset(ql, 0, sizeof *ql);
    if (m <= 0 || n <= 0) return lrq_errf(err, LRQ_ESPEC, "quantizer: bad shape %dx%d", m, n);
    if (!cfg || cfg->bits < 2 || cfg->bits > 8)
        return lrq_errf(err, LRQ_ESPEC, "quantizer: bits must be 2..8 (got %d)", cfg ? cfg->bits : 0);
    int gs = cfg->group_size == 0 ? n : cfg->group_size;
    if (gs <= 0) return lrq_errf(err, LRQ_ESPEC, "quantizer: bad group_size %d", cfg->group_size);
    ql->m = m;
    ql->n = n;
    ql->bits = cfg->bits;
    ql->gs = gs;
    ql->G = eng_quant_ngroups(n, gs);
    ql->symmetric = cfg->symmetric != 0;
    ql->scale_store = cfg->scale_store;
    ql->q = malloc((size_t)m * n);
    ql->scale = malloc((size_t)m * ql->G * sizeof(float));
    ql->zero = malloc((size_t)m * ql->G * sizeof(float));
    if (!ql->q || !ql->scale || !ql->zero) {
        eng_qlinear_close(ql);
        return lrq_errf(err, LRQ_ENOMEM, "quantizer: out of memory for %dx%d codes", m, n);
    }
    return 0;
}

void eng_qlinear_close(eng_qlinear_t *ql)
{
    free(ql->q);
    free(ql->scale);
    free(ql->zero);
    ql->q = NULL;
    ql->scale = ql->zero = NULL;
}

void eng_qlinear_dequant(const eng_qlinear_t *ql, float *What)
{
    for (size_t i = 0; i < (size_t)ql->m; i++)
        for (int g = 0; g < ql->G; g++) {
            float s = ql->scale[i * ql->G + g], z = ql->zero[i * ql->G + g];
            size_t j0 = (size_t)g * ql->gs, j1 = j0 + ql->gs < (size_t)ql->n ? j0 + ql->gs : (size_t)ql->n;
            const uint8_t *q = ql->q + i * ql->n;
            float *o = What + i * ql->n;
            for (size_t j = j0; j < j1; j++) o[j] = s * ((float)q[j] - z);
        }
}

/* ---------------------------------------------------------------------------------------------
 * stored scale types (docs/formats.md, Evaluated = exported) */

int eng_quant_scale_ok(float s, float z, int store)
{
    if (!(s > 0) || !isfinite(s)) return 1;
    if ((store & ENG_SCALE_F16) && eng_f16_to_f32(eng_f32_to_f16(s)) != s) return 1;
    if ((store & ENG_SCALE_BF16) && eng_bf16_to_f32(eng_f32_to_bf16(s)) != s) return 1;
    if (store & ENG_SCALE_ZF16) {
        double sz = (double)s * (double)z; /* exact: ≤ 24 + 8 significant bits */
        float f = (float)sz;
        if ((double)f != sz || eng_f16_to_f32(eng_f32_to_f16(f)) != f) return 1;
    }
    return 0;
}

/* s rounded to nearest-even on `bits` significant bits (1..24). */
static float quant__round_bits(float s, int bits)
{
    int e;
    double fr = frexp((double)s, &e); /* s = fr·2^e, fr in [0.5, 1) */
    double sc = ldexp(fr, bits);      /* integer part has `bits` bits */
    return (float)ldexp(nearbyint(sc), e - bits);
}

float eng_quant_store_scale(float s, float z, int store)
{
    if (!store || !(s > 0) || !isfinite(s)) return s;
    int top = (store & ENG_SCALE_BF16) ? 8 : (store & (ENG_SCALE_F16 | ENG_SCALE_ZF16)) ? 11 : 24;
    for (int b = top; b >= 1; b--) {
        float r = quant__round_bits(s, b);
        if (!eng_quant_scale_ok(r, z, store)) return r;
    }
    /* below fp16's subnormal range (an all-zero group's floor scale): the smallest positive binary16,
     * 2^-24, which is also a bfloat16 and times any zero point ≤ 2047 a binary16 */
    float tiny = 0x1p-24f;
    if (s < tiny && !eng_quant_scale_ok(tiny, z, store)) return tiny;
    /* above fp16's maximum: nothing fits; the exporter refuses it */
    return (store & (ENG_SCALE_F16 | ENG_SCALE_ZF16)) ? eng_f16_to_f32(eng_f32_to_f16(s)) : s;
}

/* ---------------------------------------------------------------------------------------------
 * init: minmax and the mse grid search */

static float quant__canon(double raw)
{
    float s = (float)raw;
    if (!(s >= QUANT_SMIN)) s = QUANT_SMIN; /* also NaN */
    if (s > QUANT_SMAX) s = QUANT_SMAX;
    return expf(logf(s)); /* a fixed point of expf∘logf (checked in test_lrq) */
}

static inline uint32_t quant__key(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static inline float quant__unkey(uint32_t k)
{
    uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Ascending sort of x[0..n) (total order on bit patterns: NaNs go to the ends, no crash). */
static void quant__sort(float *x, int n, uint32_t *k0, uint32_t *k1)
{
    if (n < 64) {
        for (int i = 1; i < n; i++) {
            uint32_t k = quant__key(x[i]);
            float v = x[i];
            int j = i - 1;
            while (j >= 0 && quant__key(x[j]) > k) { x[j + 1] = x[j]; j--; }
            x[j + 1] = v;
        }
        return;
    }
    for (int i = 0; i < n; i++) k0[i] = quant__key(x[i]);
    for (int sh = 0; sh < 32; sh += 8) { /* LSD radix, 4 passes */
        int cnt[257] = { 0 };
        for (int i = 0; i < n; i++) cnt[((k0[i] >> sh) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++) cnt[b + 1] += cnt[b];
        for (int i = 0; i < n; i++) k1[cnt[(k0[i] >> sh) & 0xff]++] = k0[i];
        uint32_t *t = k0; k0 = k1; k1 = t;
    }
    for (int i = 0; i < n; i++) x[i] = quant__unkey(k0[i]); /* 4 passes: result is back in k0 */
}


typedef struct {
    const float *W;
    int m, n, gs, G, M, bits, sym, mse, store;
    float *scale, *zero;
} quant_init_ctx_t;

static void quant__init_rows(void *p, int tid, long r0, long r1)
{
    (void)tid;
    const quant_init_ctx_t *c = p;
    int gs = c->gs, M = c->M;
    int gmax = gs < c->n ? gs : c->n; /* longest group */
    float *buf = NULL;
    uint32_t *k0 = NULL, *k1 = NULL;
    eng__qlevels_t lv = { 2 * 256 + 2, NULL, NULL };
    if (c->mse) {
        buf = malloc(((size_t)gmax + 2 * QUANT_PAD) * sizeof(float));
        k0 = malloc((size_t)gmax * sizeof(uint32_t));
        k1 = malloc((size_t)gmax * sizeof(uint32_t));
        lv.bnd = malloc((lv.cap + 1) * sizeof(int));
        lv.pr = malloc((lv.cap + 1) * sizeof(double));
    }
    int can_search = buf && k0 && k1 && lv.bnd && lv.pr; /* else degrade to minmax */
    for (long i = r0; i < r1; i++)
        for (int g = 0; g < c->G; g++) {
            const float *w = c->W + (size_t)i * c->n + (size_t)g * gs;
            int gl = g < c->G - 1 ? gs : c->n - (c->G - 1) * gs; /* the last group may be partial */
            float xmin = 0, xmax = 0;
            for (int j = 0; j < gl; j++) { /* comparisons skip NaN */
                if (w[j] < xmin) xmin = w[j];
                if (w[j] > xmax) xmax = w[j];
            }
            int Z = 1 << (c->bits - 1);
            double D100;
            int zlo, zhi, z0;
            if (c->sym) {
                D100 = fmax(-(double)xmin, (double)xmax) / (Z - 1);
                zlo = zhi = z0 = Z;
            } else {
                D100 = ((double)xmax - (double)xmin) / M;
                zlo = 0;
                zhi = M;
                float D = (float)D100;
                if (!(D >= QUANT_SMIN)) D = QUANT_SMIN;
                float zf = -eng_rint1(xmin / D);
                z0 = zf < 0 ? 0 : zf > M ? M : (int)zf;
            }
            double D = D100;
            int z = z0;
            if (can_search && D100 > 0 && isfinite(D100)) {
                float *ws = buf + QUANT_PAD;
                memset(buf, 0, QUANT_PAD * sizeof(float));
                memcpy(ws, w, gl * sizeof(float));
                memset(ws + gl, 0, QUANT_PAD * sizeof(float));
                quant__sort(ws, gl, k0, k1);
                float Df;
                int zf;
                if (ENG__QK_PICK(eng__qsearch)(ws, gl, M, D100, zlo, zhi, z0, &lv, &Df, &zf)) { D = Df; z = zf; }
            }
            c->scale[i * c->G + g] = eng_quant_store_scale(quant__canon(D), (float)z, c->store);
            c->zero[i * c->G + g] = (float)z;
        }
    free(buf); free(k0); free(k1); free(lv.bnd); free(lv.pr);
}

void eng_quant_init_params(eng_pool_t *pool, const float *W, int m, int n, const eng_qcfg_t *cfg, float *scale,
                           float *zero)
{
    int gs = cfg->group_size == 0 ? n : cfg->group_size;
    if (cfg->bits < 2 || cfg->bits > 8 || gs <= 0 || m <= 0 || n <= 0) return; /* validated upstream */
    quant_init_ctx_t c = { W, m, n, gs, eng_quant_ngroups(n, gs), (1 << cfg->bits) - 1, cfg->bits, cfg->symmetric != 0,
                           cfg->init == ENG_INIT_MSE, cfg->scale_store, scale, zero };
    long work = (long)m * n * (c.mse ? 64 : 1);
    eng_pool_range(pool, m, eng__qparts(pool, work), quant__init_rows, &c);
}

/* ---------------------------------------------------------------------------------------------
 * RTN */

void eng_quant_rtn(eng_pool_t *pool, const float *W, const eng_qcfg_t *cfg, eng_qlinear_t *ql)
{
    /* shape from ql (as allocated); init method and symmetry from cfg */
    eng_qcfg_t c = { ql->bits, ql->gs == ql->n ? 0 : ql->gs, cfg->symmetric, cfg->init, cfg->scale_store };
    ql->scale_store = cfg->scale_store;
    eng_quant_init_params(pool, W, ql->m, ql->n, &c, ql->scale, ql->zero);
    float M = (float)((1 << ql->bits) - 1);
    for (size_t i = 0; i < (size_t)ql->m; i++)
        for (int g = 0; g < ql->G; g++) {
            float s = ql->scale[i * ql->G + g], z = ql->zero[i * ql->G + g];
            float lo = 0.0f - z, hi = M - z; /* 0 − z: +0, never −0, as in eng_lrq.c */
            size_t off = i * ql->n + (size_t)g * ql->gs;
            int gl = g < ql->G - 1 ? ql->gs : ql->n - (ql->G - 1) * ql->gs; /* last group may be partial */
            for (int j = 0; j < gl; j++) {
                float v = eng_rint1(W[off + j] / s);
                v = v < lo ? lo : v;
                v = v > hi ? hi : v;
                if (v != v) v = 0; /* NaN weight: refused upstream; keep the cast defined */
                ql->q[off + j] = (uint8_t)(int)(v + z);
            }
        }
}

double eng_quant_rel_error(const float *W, const float *What, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)What[i] - W[i];
        num += d * d;
        den += (double)W[i] * W[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num); /* all-zero W: absolute error */
}

/* ---------------------------------------------------------------------------------------------
 * Adam, cosine schedule, rng */

void eng_adam_step(eng_pool_t *pool, const eng_adam_t *o, float *p, const float *g, float *m, float *v, size_t n, float lr, long t)
{
    double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    eng__adam_pass_t c = { o->beta1, o->beta2, o->eps, (float)(lr / bc1), (float)(1.0 / sqrt(bc2)), p, m, v, g };
    /* element-wise, so the result does not depend on the split; chunks of ≥ 64K elements */
    long blocks = (long)((n + 65535) / 65536);
    int T = eng__qparts(pool, (long)n);
    if (T > blocks) T = (int)blocks;
    eng_pool_range(pool, (long)n, T, ENG__QK_PICK(eng__adam_rows), &c); /* eng_qkern.h, per ISA */
}

float eng_cosine_lr(float lr0, long it, long iters)
{
    if (iters <= 0) return lr0;
    if (it >= iters) return 0.0f;
    return (float)(lr0 * 0.5 * (1.0 + cos(M_PI * (double)it / (double)iters)));
}

uint64_t eng_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float eng_rng_uniform(uint64_t *s)
{
    return (float)(eng_rng_next(s) >> 40) * (1.0f / 16777216.0f);
}
