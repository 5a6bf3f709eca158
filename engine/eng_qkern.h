/* eng_qkern.h — hot loops of the quantizers, compiled once per instruction set.
 *
 * Included only by eng_qkern_sse.c (baseline, 4 lanes), eng_qkern_avx2.c (8 lanes) and
 * eng_qkern_avx512.c (16 lanes), the wider ones chosen at run time by CPU feature, each defining
 * QK(name) to suffix the exported symbols. All variants do the same IEEE operations per element
 * (no FMA contraction: the avx2 target has no FMA, and the library is built with -ffp-contract=off
 * for the avx512f one, which has), so per-element results (codes, Ŵ, t, G, Adam's p, m, v) are
 * identical; lane-order reductions (ga, gr, gc, the mse scores) may round differently. */
#include "eng_qsimd.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define QK_SMIN 1e-8f
#define QK_GRID 100

/* ==== mse grid search (see eng_quant.c for the method) ==== */

/* first index in [lo, n) with rint(ws[idx]·inv) ≥ r (ws ascending) */
static int quant__bound(const float *ws, int lo, int n, float inv, float r)
{
    int hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (eng_rint1(ws[mid] * inv) >= r) hi = mid; else lo = mid + 1;
    }
    return lo;
}


/* Σ_{idx∈[b0,b1)} |ws·inv − off|^2.4  (ws padded by ≥ 8 zeros on both sides) */
static float quant__segsum(const float *ws, int b0, int b1, float inv, float off)
{
    v8f acc = v8_set1(0.0f);
    for (int j = b0; j < b1; j += ENG_VL) {
        v8f p = v8_pow24(v8_ld(ws + j) * inv - off);
        v8i live = (v8_iota() + (float)j) < (float)b1;
        acc += (v8f)((v8i)p & live);
    }
    return v8_hsum(acc);
}

/* Score one candidate (Δ = D, zero zp) in grid units Σ|ε|^2.4, or return 0 when it provably
 * exceeds `best` (absolute units, scale Dp = D^2.4). pr/bnd: per-level prefix sums / bounds of
 * this Δ; levels start at rl. */
static int quant__cand(const float *ws, int n, int M, float inv, double Dp, int zp, int rl,
                       const eng__qlevels_t *lv, double best, double *score)
{
    int k0 = -zp - rl, k1 = M - zp - rl; /* in-range level indices */
    double tot = lv->pr[k1 + 1] - lv->pr[k0];
    if (tot * Dp > best) return 0;
    int nlow = lv->bnd[k0], hstart = lv->bnd[k1 + 1];
    float fz = (float)zp, top = (float)(M - zp);
    for (int j = 0; j < nlow; j += ENG_VL) { /* below the grid: ε = u + zp, outermost first */
        v8f p = v8_pow24(v8_ld(ws + j) * inv + fz);
        v8i live = (v8_iota() + (float)j) < (float)nlow;
        tot += v8_hsum((v8f)((v8i)p & live));
        if (tot * Dp > best) return 0;
    }
    for (int j = n - ENG_VL; j + ENG_VL > hstart; j -= ENG_VL) { /* above: ε = u − (M − zp), from the top */
        v8f p = v8_pow24(v8_ld(ws + j) * inv - top);
        v8i live = (v8_iota() + (float)j) >= (float)hstart;
        tot += v8_hsum((v8f)((v8i)p & live));
        if (tot * Dp > best) return 0;
    }
    *score = tot * Dp;
    return 1;
}

/* mse search over one sorted, padded group (n = its actual length, short for a partial last group).
 * D100 = the minmax step; zero points zlo..zhi; z0 = minmax zero (seeds the bound). Returns 0 if no finite candidate (caller uses minmax). */
int QK(eng__qsearch)(const float *ws, int n, int M, double D100, int zlo, int zhi, int z0,
                     eng__qlevels_t *lv, float *Dout, int *zout)
{
    int rl = -zhi, rh = M - zlo, nl = rh - rl + 1; /* levels that are in range for some zp */
    if (nl > lv->cap) return 0;
    double best = INFINITY;
    int bi = -1, bz = -1;
    float Dbest = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = QK_GRID; i >= 1; i--) {
            if (pass == 0 && i != QK_GRID) break; /* pass 0: seed with (100, z0) */
            float D = (float)(D100 * i / QK_GRID);
            if (!(D >= QK_SMIN)) D = QK_SMIN;
            float inv = 1.0f / D;
            double Dp = pow((double)D, 2.4);
            int b = 0;
            /* levels outside [level(first), level(last)] have trivial bounds: skip their search */
            float lv0 = eng_rint1(ws[0] * inv), lv1 = eng_rint1(ws[n - 1] * inv);
            for (int k = 0; k <= nl; k++) {
                float r = (float)(rl + k);
                if (r <= lv0) b = 0;
                else if (r > lv1) b = n;
                else b = quant__bound(ws, b, n, inv, r);
                lv->bnd[k] = b;
            }
            lv->pr[0] = 0;
            for (int k = 0; k < nl; k++)
                lv->pr[k + 1] = lv->pr[k] + quant__segsum(ws, lv->bnd[k], lv->bnd[k + 1], inv, (float)(rl + k));
            int za = pass == 0 ? z0 : zlo, zb = pass == 0 ? z0 : zhi;
            for (int zp = za; zp <= zb; zp++) {
                double sc;
                if (!quant__cand(ws, n, M, inv, Dp, zp, rl, lv, best, &sc)) continue;
                if (sc < best || (sc == best && (bi < 0 || i < bi || (i == bi && zp < bz)))) {
                    best = sc; bi = i; bz = zp; Dbest = D;
                }
            }
        }
    }
    if (bi < 0) return 0;
    *Dout = Dbest;
    *zout = bz;
    return 1;
}

/* ==== LRQ / FlexRound row passes (see eng_lrq.c for the maths) ==== */

/* ENG_VL lanes. e = exponent base (S or S2 row), c = column vector or NULL. Outputs optional.
 * The clamp mask is not stored: backward recomputes it from t (same rint, same bounds). */
static inline __attribute__((always_inline)) void lrq__fwd_vec(const float *w, const float *e, const float *c,
                                                               float r, float s1, float lo, float hi,
                                                               float *t, float *what, uint8_t *code, float z)
{
    v8f ev = v8_ld(e) + r;
    if (c) ev = ev + v8_ld(c);
    v8f tt = v8_ld(w) / (s1 * v8_exp(ev));
    v8f v = v8_rint(tt);
    v8f wi = v8_min(v8_max(v, v8_set1(lo)), v8_set1(hi));
    if (t) v8_st(t, tt);
    if (what) v8_st(what, s1 * wi);
    if (code)
        for (int l = 0; l < ENG_VL; l++) {
            float x = wi[l] + z;
            code[l] = x == x ? (uint8_t)(int)x : 0; /* NaN only if training diverged */
        }
}

void QK(eng__lrq_fwd_rows)(void *p, int tid, long r0, long r1)
{
    (void)tid;
    const eng__lrq_pass_t *P = p;
    const eng_lrq_t *q = P->q;
    size_t n = q->n;
    float M = (float)((1 << q->bits) - 1);
    for (long i = r0; i < r1; i++) {
        size_t off = (size_t)i * n;
        const float *e = q->full ? q->S2 + off : q->S + off;
        const float *c = q->full ? NULL : q->c;
        for (int g = 0; g < q->G; g++) {
            float s1 = P->s1 ? P->s1[i * q->G + g] : expf(q->a[i * q->G + g]), z = q->zero[i * q->G + g];
            size_t j = (size_t)g * q->gs, j1 = j + q->gs < n ? j + q->gs : n; /* last group may be partial */
            for (; j + ENG_VL <= j1; j += ENG_VL)
                lrq__fwd_vec(q->W + off + j, e + j, c ? c + j : NULL, q->r[i], s1, 0.0f - z, M - z,
                             P->save ? q->t + off + j : NULL, P->What ? P->What + off + j : NULL, P->codes ? P->codes + off + j : NULL, z);
            if (j < j1) { /* tail: same kernel on zero-padded lanes */
                float tw[ENG_VL] = { 0 }, te[ENG_VL] = { 0 }, tc[ENG_VL] = { 0 }, tt[ENG_VL], tw2[ENG_VL];
                uint8_t tq[ENG_VL];
                size_t nt = j1 - j;
                memcpy(tw, q->W + off + j, nt * sizeof(float));
                memcpy(te, e + j, nt * sizeof(float));
                if (c) memcpy(tc, c + j, nt * sizeof(float));
                lrq__fwd_vec(tw, te, c ? tc : NULL, q->r[i], s1, 0.0f - z, M - z, tt, tw2, tq, z);
                if (P->save) memcpy(q->t + off + j, tt, nt * sizeof(float));
                if (P->What) memcpy(P->What + off + j, tw2, nt * sizeof(float));
                if (P->codes) memcpy(P->codes + off + j, tq, nt);
            }
        }
    }
}

static inline __attribute__((always_inline)) void lrq__bwd_vec(const float *dw, const float *t,
                                                               float s1, float lo, float hi, float *G,
                                                               v8f *ga, v8f *gr, float *gc)
{
    v8f d = v8_ld(dw), tt = v8_ld(t), v = v8_rint(tt);
    v8i inm = (v >= lo) & (v <= hi); /* the forward's clamp mask */
    v8f wi = v8_min(v8_max(v, v8_set1(lo)), v8_set1(hi));
    v8f it = (v8f)((v8i)tt & inm); /* in·t */
    v8f Gv = (-s1 * d) * it;
    *ga += d * (wi - it);
    *gr += Gv;
    v8_st(G, Gv);
    if (gc) v8_st(gc, v8_ld(gc) + Gv);
}

void QK(eng__lrq_bwd_rows)(void *p, int tid, long r0, long r1)
{
    const eng__lrq_pass_t *P = p;
    eng_lrq_t *q = P->q;
    size_t n = q->n;
    float M = (float)((1 << q->bits) - 1);
    float *gc = q->full ? NULL : (P->gcp ? P->gcp + (size_t)tid * n : q->gc);
    if (gc) memset(gc, 0, n * sizeof(float));
    for (long i = r0; i < r1; i++) {
        size_t off = (size_t)i * n;
        v8f gr = v8_set1(0.0f);
        for (int g = 0; g < q->G; g++) {
            float s1 = expf(q->a[i * q->G + g]), z = q->zero[i * q->G + g];
            v8f ga = v8_set1(0.0f);
            size_t j = (size_t)g * q->gs, j1 = j + q->gs < n ? j + q->gs : n; /* last group may be partial */
            for (; j + ENG_VL <= j1; j += ENG_VL)
                lrq__bwd_vec(P->dW + off + j, q->t + off + j, s1, 0.0f - z, M - z, P->Gm + off + j,
                             &ga, &gr, gc ? gc + j : NULL);
            if (j < j1) {
                float td[ENG_VL] = { 0 }, tt[ENG_VL] = { 0 }, tg[ENG_VL], tc[ENG_VL] = { 0 };
                size_t nt = j1 - j;
                memcpy(td, P->dW + off + j, nt * sizeof(float));
                memcpy(tt, q->t + off + j, nt * sizeof(float));
                if (gc) memcpy(tc, gc + j, nt * sizeof(float));
                lrq__bwd_vec(td, tt, s1, 0.0f - z, M - z, tg, &ga, &gr, gc ? tc : NULL);
                memcpy(P->Gm + off + j, tg, nt * sizeof(float));
                if (gc) memcpy(gc + j, tc, nt * sizeof(float));
            }
            q->ga[i * q->G + g] = s1 * v8_hsum(ga);
        }
        q->gr[i] = v8_hsum(gr);
    }
}


/* ==== Adam (see eng_quant.c, eng_adam_step) ==== */

void QK(eng__adam_rows)(void *p, int tid, long i0, long i1)
{
    const eng__adam_pass_t *c = p;
    (void)tid;
    const float b1 = c->b1, b2 = c->b2, eps = c->eps, step = c->step, rbc2 = c->rbc2;
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    long i = i0;
    for (; i + ENG_VL <= i1; i += ENG_VL) {
        v8f g = v8_ld(c->g + i), m = v8_ld(c->m + i), v = v8_ld(c->v + i);
        m = b1 * m + c1 * g;
        v = b2 * v + c2 * g * g;
        v8_st(c->m + i, m);
        v8_st(c->v + i, v);
        v8_st(c->p + i, v8_ld(c->p + i) - step * m / (v8_sqrt(v) * rbc2 + eps));
    }
    for (; i < i1; i++) { /* tail: the same operations, one lane */
        float g = c->g[i], m = b1 * c->m[i] + c1 * g, v = b2 * c->v[i] + c2 * g * g;
        c->m[i] = m;
        c->v[i] = v;
        c->p[i] -= step * m / (__builtin_sqrtf(v) * rbc2 + eps);
    }
}
