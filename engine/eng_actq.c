/* eng_actq.c — activation fake quantization, its straight-through backward, and the streamed
 * statistics that calibrate static ranges (docs/algorithms.md, Activation quantization).
 *
 * Shapes: N rows (tokens, B·T), C columns (the site's width). Everything here is element-wise or
 * per row; no allocation on the hot path (masks are scratch lent by the caller). */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "eng_actq.h"
#include "eng_model.h"

const char *const eng_aq_site_name[ENG_AQ_NSITE] = {"attn_in", "o_in", "ffn_in", "down_in", "k_out", "v_out"};

int eng_aq_site_of_linear(int lin)
{
    static const int map[ENG_NLIN] = {ENG_AQ_ATTN_IN, ENG_AQ_ATTN_IN, ENG_AQ_ATTN_IN, ENG_AQ_O_IN,
                                      ENG_AQ_FFN_IN,  ENG_AQ_FFN_IN,  ENG_AQ_DOWN_IN};
    return lin >= 0 && lin < ENG_NLIN ? map[lin] : -1;
}

int eng_aq_site_bits(const eng_aqcfg_t *cfg, int site)
{
    if (!cfg || site < 0 || site >= ENG_AQ_NSITE) return 16;
    return site >= ENG_AQ_K_OUT ? cfg->kv_bits : cfg->bits;
}

static int aq__on(int bits) { return bits >= 1 && bits < 16; }

/* (s, z) from a range [lo, hi] that contains 0 (lo ≤ 0 ≤ hi). */
static void aq__range_params(float lo, float hi, int bits, int symmetric, float *s, float *z)
{
    const float M = (float)((1 << bits) - 1);
    if (symmetric) {
        float a = -lo > hi ? -lo : hi;
        float sc = a / (float)((1 << (bits - 1)) - 1);
        *s = sc > 1e-8f ? sc : 1e-8f;
        *z = (float)(1 << (bits - 1));
        return;
    }
    float sc = (hi - lo) / M;
    *s = sc > 1e-8f ? sc : 1e-8f;
    float zz = rintf(-lo / *s);
    *z = zz < 0 ? 0 : zz > M ? M : zz;
}

void eng_aq_token_params(const float *x, int C, int bits, int symmetric, float *s, float *z)
{
    float lo = 0, hi = 0; /* the range always contains 0 (docs/algorithms.md: deviation from the released code) */
    for (int c = 0; c < C; c++) {
        lo = x[c] < lo ? x[c] : lo;
        hi = x[c] > hi ? x[c] : hi;
    }
    aq__range_params(lo, hi, bits, symmetric, s, z);
}

/* x̂ = s·(clamp(rint(x/s) + z, 0, M) − z); returns whether the clamp did not bite. */
static inline int aq__fq1(float *x, float s, float z, float M)
{
    float q = rintf(*x / s) + z;
    int in = q >= 0.0f && q <= M;
    q = q < 0.0f ? 0.0f : q > M ? M : q;
    *x = s * (q - z);
    return in;
}

void eng_aq_fq_token(float *x, uint8_t *mask, int N, int C, int bits, int symmetric)
{
    const float M = (float)((1 << bits) - 1);
    for (int t = 0; t < N; t++) {
        float *row = x + (size_t)t * C, s, z;
        eng_aq_token_params(row, C, bits, symmetric, &s, &z);
        for (int c = 0; c < C; c++) {
            int in = aq__fq1(&row[c], s, z, M);
            if (mask) mask[(size_t)t * C + c] = (uint8_t)in;
        }
    }
}

void eng_aq_fq_tensor(float *x, uint8_t *mask, size_t n, float s, float z, int bits)
{
    const float M = (float)((1 << bits) - 1);
    for (size_t i = 0; i < n; i++) {
        int in = aq__fq1(&x[i], s, z, M);
        if (mask) mask[i] = (uint8_t)in;
    }
}

/* STE: dx̂/dx = 1 where the clamp did not bite (rounding is the identity), 0 where it did. */
void eng_aq_ste_backward(float *dx, const uint8_t *mask, size_t n)
{
    if (!mask) return;
    for (size_t i = 0; i < n; i++)
        if (!mask[i]) dx[i] = 0.0f;
}

void eng_actq_forward(eng_actq_layer_t *aq, int site, float *x, int N, int C, int save)
{
    if (!aq) return;
    if (aq->stats) {
        eng_aq_stats_add(&aq->stats[site], x, N, C);
        return;
    }
    int bits = eng_aq_site_bits(aq->cfg, site);
    if (!aq__on(bits)) return;
    size_t n = (size_t)N * C;
    if (aq->cfg->granularity == ENG_AQ_PER_TOKEN) { /* the range covers the row: the STE mask is all ones */
        aq->saved[site] = 0;
        eng_aq_fq_token(x, NULL, N, C, bits, aq->cfg->symmetric);
        return;
    }
    uint8_t *mask = NULL;
    if (save) {
        assert(aq->mask[site] && n <= aq->mask_cap); /* eng_actq_alloc_masks for the training batch */
        if (aq->mask[site] && n <= aq->mask_cap) mask = aq->mask[site];
        aq->saved[site] = mask ? n : 0;
    }
    eng_aq_fq_tensor(x, mask, n, aq->scale[site], aq->zero[site], bits);
}

void eng_actq_backward(const eng_actq_layer_t *aq, int site, float *dx, int N, int C)
{
    if (!aq || aq->stats || !aq__on(eng_aq_site_bits(aq->cfg, site))) return;
    size_t n = (size_t)N * C;
    if (aq->saved[site] == n) eng_aq_ste_backward(dx, aq->mask[site], n);
}

/* ------------------------------------------------------------------------------------
 * Statistics */

int eng_aq_stats_init(eng_aq_stats_t *st, int C, int want_channels, lrq_err_t *err)
{
    memset(st, 0, sizeof *st);
    st->C = C;
    st->want_channels = want_channels;
    st->hist = calloc(ENG_AQ_NBINS, sizeof *st->hist);
    if (want_channels && C > 0) st->chmax = calloc((size_t)C, sizeof *st->chmax);
    if (!st->hist || (want_channels && C > 0 && !st->chmax)) {
        eng_aq_stats_close(st);
        return lrq_errf(err, LRQ_ENOMEM, "activation statistics: out of memory");
    }
    return 0;
}

void eng_aq_stats_close(eng_aq_stats_t *st)
{
    free(st->hist);
    free(st->chmax);
    st->hist = NULL;
    st->chmax = NULL;
}

/* Double the histogram range: old bin j of [−R, R) lands in new bin NBINS/4 + j/2 of [−2R, 2R). */
static void aq__hist_double(eng_aq_stats_t *st)
{
    double tmp[ENG_AQ_NBINS] = {0};
    for (int j = 0; j < ENG_AQ_NBINS; j++) tmp[ENG_AQ_NBINS / 4 + j / 2] += st->hist[j];
    memcpy(st->hist, tmp, sizeof tmp);
    st->R *= 2.0f;
}

void eng_aq_stats_add(eng_aq_stats_t *st, const float *x, int N, int C)
{
    size_t n = (size_t)N * C;
    float lo = st->count > 0 ? st->min : INFINITY, hi = st->count > 0 ? st->max : -INFINITY, amax = 0;
    for (size_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        float a = fabsf(x[i]);
        amax = a > amax ? a : amax;
    }
    if (n == 0) return;
    st->min = lo;
    st->max = hi;
    if (st->chmax && C == st->C)
        for (int t = 0; t < N; t++)
            for (int c = 0; c < C; c++) {
                float a = fabsf(x[(size_t)t * C + c]);
                st->chmax[c] = a > st->chmax[c] ? a : st->chmax[c];
            }
    if (amax > 0) {
        if (st->R == 0) st->R = exp2f(floorf(log2f(amax)) + 1.0f); /* the least power of two > amax */
        while (amax >= st->R) aq__hist_double(st);
    }
    if (st->R > 0) {
        const double inv_w = ENG_AQ_NBINS / (2.0 * st->R);
        for (size_t i = 0; i < n; i++) {
            long k = (long)floor(((double)x[i] + st->R) * inv_w);
            k = k < 0 ? 0 : k >= ENG_AQ_NBINS ? ENG_AQ_NBINS - 1 : k;
            st->hist[k] += 1.0;
        }
    } else {
        st->hist[ENG_AQ_NBINS / 2] += (double)n; /* all zero so far: bin of 0 whatever R becomes */
    }
    st->count += (double)n;
}

/* Value below which a fraction p of the mass lies (linear inside a bin), clipped to [min, max]. */
static float aq__quantile(const eng_aq_stats_t *st, double p)
{
    if (st->R <= 0) return 0.0f;
    double target = p * st->count, cum = 0, w = 2.0 * st->R / ENG_AQ_NBINS;
    double v = st->max;
    for (int k = 0; k < ENG_AQ_NBINS; k++) {
        if (cum + st->hist[k] >= target && st->hist[k] > 0) {
            v = -st->R + (k + (target - cum) / st->hist[k]) * w;
            break;
        }
        cum += st->hist[k];
    }
    v = v < st->min ? st->min : v > st->max ? st->max : v;
    return (float)v;
}

/* Σ_bins count · (c − fq(c))² over bin centres c, for (s, z). */
static double aq__hist_mse(const eng_aq_stats_t *st, float s, float z, int bits)
{
    const float M = (float)((1 << bits) - 1);
    double w = 2.0 * st->R / ENG_AQ_NBINS, e = 0;
    for (int k = 0; k < ENG_AQ_NBINS; k++) {
        if (st->hist[k] == 0) continue;
        float c = (float)(-st->R + (k + 0.5) * w), q = c;
        aq__fq1(&q, s, z, M);
        double d = (double)c - q;
        e += st->hist[k] * d * d;
    }
    return e;
}

void eng_aq_calibrate(const eng_aq_stats_t *st, const eng_aqcfg_t *cfg, int bits, float *s, float *z)
{
    float lo = 0, hi = 0;
    if (st->count > 0) {
        lo = st->min < 0 ? st->min : 0;
        hi = st->max > 0 ? st->max : 0;
    }
    if (st->count > 0 && cfg->calibrate == ENG_AQ_CAL_PERCENTILE) {
        double p = cfg->percentile / 100.0;
        float ql = aq__quantile(st, 1.0 - p), qh = aq__quantile(st, p);
        lo = ql < 0 ? ql : 0;
        hi = qh > 0 ? qh : 0;
    }
    if (lo == 0 && hi == 0) { /* nothing seen, or only zeros */
        *s = 1.0f;
        *z = cfg->symmetric ? (float)(1 << (bits - 1)) : 0.0f;
        return;
    }
    aq__range_params(lo, hi, bits, cfg->symmetric, s, z);
    if (cfg->calibrate != ENG_AQ_CAL_MSE || st->R <= 0) return;
    /* MSE search: the range [lo, hi] shrunk by i/100, i = 1 … 100, scored on the histogram. */
    double best = aq__hist_mse(st, *s, *z, bits);
    for (int i = 1; i < 100; i++) {
        float si, zi;
        aq__range_params(lo * i / 100.0f, hi * i / 100.0f, bits, cfg->symmetric, &si, &zi);
        double e = aq__hist_mse(st, si, zi, bits);
        if (e < best) {
            best = e;
            *s = si;
            *z = zi;
        }
    }
}

int eng_aq_calib_init(eng_aq_calib_t *c, int L, const int widths[ENG_AQ_NSITE], int channels, lrq_err_t *err)
{
    memset(c, 0, sizeof *c);
    c->L = L;
    c->st = calloc((size_t)L * ENG_AQ_NSITE, sizeof *c->st);
    c->layers = calloc((size_t)L, sizeof *c->layers);
    if (!c->st || !c->layers) {
        eng_aq_calib_close(c);
        return lrq_errf(err, LRQ_ENOMEM, "activation statistics: out of memory");
    }
    for (int l = 0; l < L; l++) {
        c->layers[l].stats = c->st + (size_t)l * ENG_AQ_NSITE;
        for (int k = 0; k < ENG_AQ_NSITE; k++) {
            int ch = channels && (k == ENG_AQ_ATTN_IN || k == ENG_AQ_FFN_IN);
            int rc = eng_aq_stats_init(&c->st[(size_t)l * ENG_AQ_NSITE + k], widths[k], ch, err);
            if (rc) {
                eng_aq_calib_close(c);
                return rc;
            }
        }
    }
    return 0;
}

void eng_aq_calib_close(eng_aq_calib_t *c)
{
    if (c->st)
        for (size_t i = 0; i < (size_t)c->L * ENG_AQ_NSITE; i++) eng_aq_stats_close(&c->st[i]);
    free(c->st);
    free(c->layers);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------------------------
 * The model's quantizers */

int eng_actq_init(eng_actq_t *q, const eng_aqcfg_t *cfg, int L, lrq_err_t *err)
{
    memset(q, 0, sizeof *q);
    q->cfg = *cfg;
    q->L = L;
    if (!(q->layer = calloc((size_t)L, sizeof *q->layer))) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    for (int l = 0; l < L; l++) {
        q->layer[l].cfg = &q->cfg;
        for (int k = 0; k < ENG_AQ_NSITE; k++) {
            int b = eng_aq_site_bits(cfg, k);
            q->layer[l].scale[k] = 1.0f;
            q->layer[l].zero[k] = cfg->symmetric && aq__on(b) ? (float)(1 << (b - 1)) : 0.0f;
        }
    }
    q->train.cfg = &q->cfg;
    return 0;
}

void eng_actq_close(eng_actq_t *q)
{
    free(q->layer);
    free(q->mask_mem);
    memset(q, 0, sizeof *q);
}

void eng_actq_set_from_calib(eng_actq_t *q, const eng_aq_calib_t *c)
{
    for (int l = 0; l < q->L && l < c->L; l++)
        for (int k = 0; k < ENG_AQ_NSITE; k++) {
            int b = eng_aq_site_bits(&q->cfg, k);
            if (aq__on(b))
                eng_aq_calibrate(&c->st[(size_t)l * ENG_AQ_NSITE + k], &q->cfg, b, &q->layer[l].scale[k],
                                 &q->layer[l].zero[k]);
        }
}

int eng_actq_alloc_masks(eng_actq_t *q, size_t elems, lrq_err_t *err)
{
    free(q->mask_mem);
    q->mask_mem = NULL;
    if (elems && (elems > SIZE_MAX / ENG_AQ_NSITE || !(q->mask_mem = malloc(elems * ENG_AQ_NSITE))))
        return lrq_errf(err, LRQ_ENOMEM, "activation STE masks: out of memory (%zu bytes)", elems * ENG_AQ_NSITE);
    q->train.mask_cap = elems;
    for (int k = 0; k < ENG_AQ_NSITE; k++) q->train.mask[k] = q->mask_mem ? q->mask_mem + (size_t)k * elems : NULL;
    return 0;
}

eng_actq_layer_t *eng_actq_train_view(eng_actq_t *q, int l)
{
    if (l < 0 || l >= q->L) return NULL;
    memcpy(q->train.scale, q->layer[l].scale, sizeof q->train.scale);
    memcpy(q->train.zero, q->layer[l].zero, sizeof q->train.zero);
    memset(q->train.saved, 0, sizeof q->train.saved);
    q->train.cfg = &q->cfg;
    return &q->train;
}
