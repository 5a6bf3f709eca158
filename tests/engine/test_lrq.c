/* test_lrq.c — LRQ / FlexRound parameterisation (docs/algorithms.md: "FlexRound", "LRQ", "Adam"), Adam,
 * cosine schedule, rng.
 *
 * Gradient checks: loss = Σ D ⊙ Ŵ. The reference is the STE surrogate written here in double:
 * round(x) is replaced by x + sg(round(x₀) − x₀) — the identity plus a constant frozen at the base
 * point (exactly what a straight-through round is), clamp kept — and differentiated by central
 * finite differences. Test points sit ≥ 1 level inside the clamp range or ≥ 2 levels outside, and
 * |t − rint(t)| ≤ 0.35, so no kink is within reach of the step. Tolerance: |analytic − fd| ≤
 * 1e-3·|fd| + 1e-4·max|fd| of that parameter tensor. */
#include <criterion/criterion.h>
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "eng_quant.h"

static double urand(uint64_t *s) { return (eng_rng_next(s) >> 11) * 0x1p-53; }

/* ---- a small layer with controlled rounding positions ---- */

typedef struct {
    int m, n, k, gs, G, full, bits;
    eng_lrq_t q;
    float *P, *Gr, *W;
    size_t np;
} fx_t;

static void fx_open(fx_t *f, int m, int n, int k, int gs, int full, int bits, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->m = m; f->n = n; f->k = k; f->gs = gs ? gs : n; f->G = (n + f->gs - 1) / f->gs; /* last group may be partial */ f->full = full; f->bits = bits;
    eng_qcfg_t cfg = {.bits = bits, .group_size = gs, .symmetric = 0, .init = ENG_INIT_MINMAX};
    lrq_err_t err;
    f->W = calloc((size_t)m * n, sizeof(float));
    cr_assert(f->W);
    cr_assert_eq(eng_lrq_init(&f->q, f->W, m, n, k, full, &cfg, &err), 0, "%s", err.msg);
    f->np = eng_lrq_param_count(m, n, k, f->G, full);
    f->P = calloc(f->np, sizeof(float));
    f->Gr = calloc(f->np, sizeof(float));
    cr_assert(f->P && f->Gr);
    eng_lrq_bind(&f->q, f->P, f->Gr);

    /* parameters: a ≈ log 0.1, small S; zero points in the middle of the range */
    uint64_t s = seed;
    int M = (1 << bits) - 1;
    for (int i = 0; i < m * f->G; i++) {
        f->q.a[i] = (float)(log(0.1) + 0.3 * (urand(&s) - 0.5));
        f->q.zero[i] = (float)(M / 2);
    }
    for (int i = 0; i < m; i++) f->q.r[i] = (float)(0.2 * (urand(&s) - 0.5));
    if (full) {
        for (int i = 0; i < m * n; i++) f->q.S2[i] = (float)(0.4 * (urand(&s) - 0.5));
    } else {
        for (int i = 0; i < m * k; i++) f->q.L[i] = (float)(0.6 * (urand(&s) - 0.5));
        for (int i = 0; i < k * n; i++) f->q.U[i] = (float)(0.6 * (urand(&s) - 0.5));
        for (int j = 0; j < n; j++) f->q.c[j] = (float)(0.2 * (urand(&s) - 0.5));
    }
    /* W = divisor · (v + frac): v well inside [−z+1, M−z−1] or ≥ 2 levels outside */
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            int g = j / f->gs;
            double S = f->q.r[i];
            if (full) S += f->q.S2[i * n + j];
            else {
                for (int l = 0; l < k; l++) S += (double)f->q.L[i * k + l] * f->q.U[l * n + j];
                S += f->q.c[j];
            }
            double z = f->q.zero[i * f->G + g], lo = -z, hi = M - z;
            double u = urand(&s), v;
            if (u < 0.15) v = lo - 2 - (int)(3 * urand(&s));
            else if (u < 0.3) v = hi + 2 + (int)(3 * urand(&s));
            else v = lo + 1 + (int)((hi - lo - 1) * urand(&s));
            if (v > hi - 1 && v < hi + 2) v = hi - 1;
            double fr = 0.7 * (urand(&s) - 0.5);
            f->W[i * n + j] = (float)(exp(f->q.a[i * f->G + g] + S) * (v + fr));
        }
}

static void fx_close(fx_t *f)
{
    eng_lrq_close(&f->q);
    free(f->P); free(f->Gr); free(f->W);
}

/* Surrogate loss in double from a double copy of the parameter arena (layout of eng_lrq_bind:
 * a (m,G), then L (m,k), U (k,n) | S2 (m,n), then r (m), then c (n)). delta: frozen
 * round(t₀) − t₀ per element (computed when delta_out != NULL). */
static double sur_loss(const fx_t *f, const double *p, const float *D, double *delta, int compute_delta)
{
    int m = f->m, n = f->n, k = f->k, G = f->G, M = (1 << f->bits) - 1;
    const double *a = p, *L = p + m * G, *U = L + m * k, *S2 = p + m * G;
    const double *r = f->full ? S2 + (size_t)m * n : U + (size_t)k * n, *c = r + m;
    double loss = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            int g = j / f->gs;
            double S = r[i];
            if (f->full) S += S2[i * n + j];
            else {
                for (int l = 0; l < k; l++) S += L[i * k + l] * U[l * n + j];
                S += c[j];
            }
            double t = f->W[i * n + j] / exp(a[i * G + g] + S);
            if (compute_delta) delta[i * n + j] = nearbyint(t) - t;
            double z = f->q.zero[i * G + g];
            double x = fmin(fmax(t + delta[i * n + j], -z), M - z);
            loss += D[i * n + j] * exp(a[i * G + g]) * x;
        }
    return loss;
}

static void grad_check(int m, int n, int k, int gs, int full, int bits, uint64_t seed)
{
    fx_t f;
    fx_open(&f, m, n, k, gs, full, bits, seed);
    size_t mn = (size_t)m * n;
    float *D = malloc(mn * sizeof(float)), *Wh = malloc(mn * sizeof(float));
    double *p = calloc(f.np, sizeof(double)), *delta = calloc(mn, sizeof(double));
    cr_assert(D && Wh && p && delta);
    uint64_t s = seed * 77 + 1;
    for (size_t i = 0; i < mn; i++) D[i] = (float)(2 * urand(&s) - 1);
    eng_lrq_forward(&f.q, Wh);
    eng_lrq_backward(&f.q, D);
    for (size_t i = 0; i < f.np; i++) p[i] = f.P[i];
    double l0 = sur_loss(&f, p, D, delta, 1), limpl = 0;
    for (size_t i = 0; i < mn; i++) limpl += (double)D[i] * Wh[i];
    cr_assert(fabs(l0 - limpl) <= 1e-5 * (1 + fabs(l0)), "forward: surrogate %g impl %g", l0, limpl);

    /* per parameter tensor: name, offset, size (bind layout) */
    size_t aN = (size_t)m * f.G, LN = full ? 0 : (size_t)m * k, UN = full ? 0 : (size_t)k * n;
    size_t S2N = full ? mn : 0, cN = full ? 0 : (size_t)n;
    struct { const char *name; size_t off, len; } T[] = {
        { "a", 0, aN }, { "L", aN, LN }, { "U", aN + LN, UN }, { "S2", aN, S2N },
        { "r", aN + LN + UN + S2N, (size_t)m }, { "c", aN + LN + UN + S2N + m, cN },
    };
    const double h = 1e-4;
    int checked = 0;
    for (int ti = 0; ti < 6; ti++) {
        if (!T[ti].len) continue;
        double *fd = malloc(T[ti].len * sizeof(double)), mx = 0;
        for (size_t e = 0; e < T[ti].len; e++) {
            size_t idx = T[ti].off + e;
            double keep = p[idx];
            p[idx] = keep + h;
            double lp = sur_loss(&f, p, D, delta, 0);
            p[idx] = keep - h;
            double lm = sur_loss(&f, p, D, delta, 0);
            p[idx] = keep;
            fd[e] = (lp - lm) / (2 * h);
            mx = fmax(mx, fabs(fd[e]));
        }
        cr_assert(mx > 0, "%s: all-zero gradient, test point is degenerate", T[ti].name);
        for (size_t e = 0; e < T[ti].len; e++) {
            double an = f.Gr[T[ti].off + e];
            cr_assert(fabs(an - fd[e]) <= 1e-3 * fabs(fd[e]) + 1e-4 * mx,
                      "%s %s gs %d: d%s[%zu] analytic %.8g vs fd %.8g", full ? "flexround" : "lrq",
                      "", gs, T[ti].name, e, an, fd[e]);
            checked++;
        }
        free(fd);
    }
    cr_assert(checked == (int)f.np);
    free(D); free(Wh); free(p); free(delta);
    fx_close(&f);
}

Test(lrq_grad, lowrank_per_channel) { grad_check(5, 12, 3, 0, 0, 3, 1); }
Test(lrq_grad, lowrank_per_group) { grad_check(6, 16, 2, 4, 0, 4, 2); }
Test(lrq_grad, lowrank_odd_width_tails) { grad_check(4, 11, 2, 0, 0, 3, 3); }
Test(lrq_grad, flexround_per_channel) { grad_check(5, 12, 0, 0, 1, 3, 4); }
Test(lrq_grad, flexround_per_group) { grad_check(4, 18, 0, 6, 1, 4, 5); }
/* group size not dividing n: the last group's ga sums over its actual columns only */
Test(lrq_grad, lowrank_partial_group) { grad_check(4, 20, 2, 8, 0, 3, 6); }      /* 8, 8, 4 */
Test(lrq_grad, flexround_partial_group) { grad_check(3, 20, 0, 8, 1, 4, 7); }   /* 8, 8, 4 */
Test(lrq_grad, lowrank_stories_down_g32) { grad_check(3, 172, 2, 32, 0, 4, 8); } /* 5·32 + 12 */
Test(lrq_grad, flexround_group_wider_than_row) { grad_check(3, 13, 0, 16, 1, 3, 9); }

/* ---- reset reproduces RTN exactly; freeze reproduces forward exactly ---- */

static void fill_w(float *W, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        double u1 = urand(&s) + 1e-300, u2 = urand(&s);
        W[i] = (float)(0.02 * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
    }
    W[n / 3] = 0.3f;
}

Test(lrq, reset_equals_rtn_and_freeze_equals_forward)
{
    enum { m = 7, n = 40 };
    float W[m * n], Wh[m * n], Wr[m * n], Wf[m * n];
    fill_w(W, m * n, 9);
    int cases = 0;
    static const int gsv[] = { 0, 8, 12, 64 }; /* 12: groups 12, 12, 12, 4; 64 > n: one partial group */
    for (int bits = 2; bits <= 8; bits++)
        for (int sym = 0; sym <= 1; sym++)
            for (int init = 0; init <= 1; init++)
                for (int gi = 0; gi < 4; gi++)
                    for (int full = 0; full <= 1; full++) {
                        int gs = gsv[gi];
                        eng_qcfg_t cfg = {.bits = bits, .group_size = gs, .symmetric = sym, .init = init};
                        lrq_err_t err;
                        eng_lrq_t q;
                        eng_qlinear_t ql;
                        cr_assert_eq(eng_lrq_init(&q, W, m, n, 3, full, &cfg, &err), 0, "%s", err.msg);
                        size_t np = eng_lrq_param_count(m, n, 3, q.G, full);
                        float *P = calloc(np, sizeof(float)), *Gr = calloc(np, sizeof(float));
                        cr_assert(P && Gr);
                        eng_lrq_bind(&q, P, Gr);
                        uint64_t rng = 42;
                        eng_lrq_reset(&q, &cfg, &rng);
                        eng_lrq_forward(&q, Wh);
                        cr_assert_eq(eng_qlinear_init(&ql, m, n, &cfg, &err), 0);
                        eng_quant_rtn(NULL, W, &cfg, &ql);
                        eng_qlinear_dequant(&ql, Wr);
                        cr_assert(memcmp(Wh, Wr, sizeof Wh) == 0, "reset != RTN: bits %d sym %d init %d gs %d full %d",
                                  bits, sym, init, gs, full);
                        for (int i = 0; i < m * q.G; i++) cr_assert_eq(expf(q.a[i]), ql.scale[i]);
                        /* move every parameter, then freeze */
                        uint64_t s = 1000 + cases;
                        for (size_t i = 0; i < np; i++) P[i] += (float)(0.2 * (urand(&s) - 0.5));
                        eng_lrq_forward(&q, Wh);
                        eng_lrq_freeze(&q, &ql);
                        eng_qlinear_dequant(&ql, Wf);
                        cr_assert(memcmp(Wh, Wf, sizeof Wh) == 0, "freeze != forward: bits %d gs %d full %d", bits, gs, full);
                        for (int i = 0; i < m * n; i++) cr_assert(ql.q[i] <= (1 << bits) - 1);
                        eng_qlinear_close(&ql);
                        eng_lrq_close(&q);
                        free(P); free(Gr);
                        cases++;
                    }
    cr_assert_eq(cases, 7 * 2 * 2 * 4 * 2);
}

Test(lrq, reset_initial_values)
{
    enum { m = 6, n = 50, k = 4 };
    float W[m * n];
    fill_w(W, m * n, 3);
    eng_qcfg_t cfg = {.bits = 4, .group_size = 0, .symmetric = 0, .init = ENG_INIT_MSE};
    eng_lrq_t q1, q2;
    cr_assert_eq(eng_lrq_init(&q1, W, m, n, k, 0, &cfg, NULL), 0);
    cr_assert_eq(eng_lrq_init(&q2, W, m, n, k, 0, &cfg, NULL), 0);
    size_t np = eng_lrq_param_count(m, n, k, 1, 0);
    float *P1 = malloc(np * 4), *P2 = malloc(np * 4);
    cr_assert(P1 && P2);
    for (size_t i = 0; i < np; i++) P1[i] = P2[i] = 123.0f; /* reset must overwrite everything */
    eng_lrq_bind(&q1, P1, NULL);
    eng_lrq_bind(&q2, P2, NULL);
    uint64_t r1 = 5, r2 = 5;
    eng_lrq_reset(&q1, &cfg, &r1);
    eng_lrq_reset(&q2, &cfg, &r2);
    cr_assert(memcmp(P1, P2, np * 4) == 0, "same seed, different parameters");
    cr_assert_eq(r1, r2);
    float b = 1.0f / sqrtf(n);
    double mean = 0;
    for (int i = 0; i < k * n; i++) {
        cr_assert(q1.U[i] >= -b && q1.U[i] < b);
        mean += q1.U[i];
    }
    cr_assert(fabs(mean / (k * n)) < 0.2 * b);
    for (int i = 0; i < m * k; i++) cr_assert_eq(q1.L[i], 0.0f);
    for (int i = 0; i < m; i++) cr_assert_eq(q1.r[i], 0.0f);
    for (int j = 0; j < n; j++) cr_assert_eq(q1.c[j], 0.0f);
    uint64_t r3 = 6;
    eng_lrq_reset(&q2, &cfg, &r3);
    cr_assert(memcmp(P1, P2, np * 4) != 0, "different seeds, same U");
    eng_lrq_close(&q1);
    eng_lrq_close(&q2);
    free(P1); free(P2);
}

Test(lrq, exp_log_scale_fixed_point)
{
    /* eng_quant_init_params returns s = expf(logf(raw)); reset stores a = logf(s) and forward
     * multiplies by expf(a). That is exact only if expf(logf(s)) == s: check over a wide sweep. */
    long bad = 0, n = 0;
    for (uint32_t b = 0x32000000u; b < 0x7f000000u; b += 997) {
        float x;
        memcpy(&x, &b, 4);
        float s = expf(logf(x));
        if (!isfinite(s)) continue;
        bad += expf(logf(s)) != s;
        n++;
    }
    cr_assert(n > 1000000 && bad == 0, "%ld of %ld not fixed points", bad, n);
}

static void thread_check(int gs)
{
    enum { m = 64, n = 1100, k = 8 };
    float *W = malloc(sizeof(float) * m * n), *A = malloc(sizeof(float) * m * n), *B = malloc(sizeof(float) * m * n);
    cr_assert(W && A && B);
    fill_w(W, (size_t)m * n, 4);
    eng_qcfg_t cfg = {.bits = 3, .group_size = gs, .symmetric = 0, .init = ENG_INIT_MINMAX};
    eng_lrq_t q;
    cr_assert_eq(eng_lrq_init(&q, W, m, n, k, 0, &cfg, NULL), 0);
    size_t np = eng_lrq_param_count(m, n, k, q.G, 0);
    float *P = calloc(np, 4), *G1 = calloc(np, 4), *G2 = calloc(np, 4);
    cr_assert(P && G1 && G2);
    eng_lrq_bind(&q, P, G1);
    uint64_t rng = 1;
    eng_lrq_reset(&q, &cfg, &rng);
    for (int i = 0; i < m * k; i++) q.L[i] = 0.01f * (float)((i % 7) - 3);
    for (int i = 0; i < m * n; i++) B[i] = (float)((i * 37) % 11) - 5.0f; /* dŴ */
    q.pool = NULL;                         /* serial */
    eng_lrq_forward(&q, A);
    eng_lrq_backward(&q, B);
    eng_pool_t *pool = eng_pool_new(2);
    cr_assert_not_null(pool);
    q.pool = pool;                         /* two threads */
    float *A2 = malloc(sizeof(float) * m * n);
    cr_assert(A2);
    eng_lrq_forward(&q, A2);
    /* exact, not a tolerance: the pool's tasks own whole rows (and the slabs of a product are
     * fixed by its shape, not by the thread count), so no element's summation order depends on
     * the thread count — and Ŵ is rounded, so a sub-ulp change in S could flip a code. */
    cr_assert(memcmp(A, A2, sizeof(float) * m * n) == 0, "forward depends on the thread count");
    /* The backward's reductions over rows/columns are split by the pool, so gradients may
     * differ across thread counts in the last bits; what resume relies on is determinism at
     * a fixed thread count, checked exactly. */
    eng_lrq_bind(&q, P, G2);
    eng_lrq_backward(&q, B);
    memcpy(G1, G2, np * 4);
    eng_lrq_forward(&q, A2);
    eng_lrq_backward(&q, B);
    cr_assert(memcmp(G1, G2, np * 4) == 0, "backward not deterministic at a fixed thread count");
    q.pool = NULL;
    eng_pool_free(pool);
    eng_lrq_close(&q);
    free(W); free(A); free(A2); free(B); free(P); free(G1); free(G2);
}

Test(lrq, deterministic_and_thread_independent_forward) { thread_check(0); }
Test(lrq, deterministic_and_thread_independent_partial_groups) { thread_check(128); } /* 8·128 + 76 */

Test(lrq, init_validates)
{
    float W[64] = { 0 };
    eng_lrq_t q;
    lrq_err_t err;
    eng_qcfg_t bad_bits = {.bits = 9, .group_size = 0, .symmetric = 0, .init = 0}, bad_gs = {.bits = 4, .group_size = -5, .symmetric = 0, .init = 0}, ok = {.bits = 4, .group_size = 0, .symmetric = 0, .init = 0}, part = {.bits = 4, .group_size = 5, .symmetric = 0, .init = 0};
    cr_assert_eq(eng_lrq_init(&q, W, 4, 16, 2, 0, &bad_bits, &err), LRQ_ESPEC);
    cr_assert_eq(eng_lrq_init(&q, W, 4, 16, 2, 0, &bad_gs, &err), LRQ_ESPEC);
    cr_assert_eq(eng_lrq_init(&q, W, 4, 16, 2, 0, &part, &err), 0, "%s", err.msg); /* 5, 5, 5, 1 */
    cr_assert(q.G == 4 && q.gs == 5);
    eng_lrq_close(&q);
    cr_assert_eq(eng_lrq_init(&q, W, 4, 16, 0, 0, &ok, &err), LRQ_ESPEC);
    cr_assert_eq(eng_lrq_init(&q, W, 4, 16, 0, 1, &ok, &err), 0); /* full ignores k */
    eng_lrq_close(&q);
}

/* ---- rank policy ---- */

Test(lrq, rank_policy)
{
    int full;
    cr_assert_eq(eng_lrq_rank(4096, 4096, "ratio", 0, 0.25, &full), 1024); cr_assert_eq(full, 0);
    cr_assert_eq(eng_lrq_rank(11008, 4096, "ratio", 0, 0.25, &full), 1024); cr_assert_eq(full, 0);
    cr_assert_eq(eng_lrq_rank(64, 172, "ratio", 0, 0.25, &full), 16); cr_assert_eq(full, 0);
    cr_assert_eq(eng_lrq_rank(64, 64, "ratio", 0, 0.001, &full), 1); cr_assert_eq(full, 0);   /* min 1 */
    eng_lrq_rank(64, 64, "ratio", 0, 1.0, &full); cr_assert_eq(full, 1);                        /* k ≥ min */
    cr_assert_eq(eng_lrq_rank(64, 172, "fixed", 20, 0, &full), 20); cr_assert_eq(full, 0);
    eng_lrq_rank(64, 172, "fixed", 64, 0, &full); cr_assert_eq(full, 1);
    /* paper (§1.2): Llama-2-7B q/k/v/o low rank 1024, MLP full; 13B all 1024; 70B MLP 2048 */
    cr_assert_eq(eng_lrq_rank(4096, 4096, "paper", 0, 0, &full), 1024); cr_assert_eq(full, 0);
    eng_lrq_rank(11008, 4096, "paper", 0, 0, &full); cr_assert_eq(full, 1);
    eng_lrq_rank(4096, 11008, "paper", 0, 0, &full); cr_assert_eq(full, 1);
    cr_assert_eq(eng_lrq_rank(5120, 13824, "paper", 0, 0, &full), 1024); cr_assert_eq(full, 0);
    cr_assert_eq(eng_lrq_rank(28672, 8192, "paper", 0, 0, &full), 2048); cr_assert_eq(full, 0);
    eng_lrq_rank(8192, 8192, "paper", 0, 0, &full); cr_assert_eq(full, 1);
    eng_lrq_rank(1024, 8192, "paper", 0, 0, &full); cr_assert_eq(full, 1);
    eng_lrq_rank(64, 64, "paper", 0, 0, &full); cr_assert_eq(full, 1); /* 1024 ≥ 64 */
    cr_assert(eng_lrq_rank(64, 64, "bogus", 0, 0.25, &full) < 0);
    cr_assert(eng_lrq_rank(64, 64, "ratio", 0, -1, &full) < 0);
    cr_assert(eng_lrq_rank(64, 64, "fixed", 0, 0, &full) < 0);
}

Test(lrq, param_count_and_bind_layout)
{
    eng_lrq_t q;
    float W[8 * 12] = { 0 };
    eng_qcfg_t cfg = {.bits = 4, .group_size = 4, .symmetric = 0, .init = 0};
    cr_assert_eq(eng_lrq_init(&q, W, 8, 12, 3, 0, &cfg, NULL), 0);
    size_t np = eng_lrq_param_count(8, 12, 3, 3, 0);
    cr_assert_eq(np, 8 * 3 + 8 * 3 + 3 * 12 + 8 + 12);
    float P[np], Gr[np];
    eng_lrq_bind(&q, P, Gr);
    cr_assert(q.a == P && q.L == P + 24 && q.U == P + 48 && q.r == P + 84 && q.c == P + 92 && !q.S2);
    cr_assert(q.ga == Gr && q.gc == Gr + 92);
    eng_lrq_close(&q);
    cr_assert_eq(eng_lrq_init(&q, W, 8, 12, 3, 1, &cfg, NULL), 0);
    cr_assert_eq(eng_lrq_param_count(8, 12, 3, 3, 1), 8 * 3 + 96 + 8);
    eng_lrq_bind(&q, P, Gr);
    cr_assert(q.a == P && q.S2 == P + 24 && q.r == P + 120 && !q.L && !q.U && !q.c);
    eng_lrq_close(&q);
}

/* ---- Adam, cosine, rng ---- */

Test(optim, adam_two_steps_closed_form)
{
    eng_adam_t o = { 0.9f, 0.999f, 1e-8f };
    float p[3] = { 1.0f, -2.0f, 0.5f }, m[3] = { 0 }, v[3] = { 0 };
    const float g1[3] = { 0.3f, -1.5f, 0.0f }, g2[3] = { -0.1f, 2.0f, 4.0f };
    double P[3] = { 1.0, -2.0, 0.5 }, M[3] = { 0 }, V[3] = { 0 };
    const double lr = 0.01;
    eng_adam_step(NULL, &o, p, g1, m, v, 3, (float)lr, 1);
    eng_adam_step(NULL, &o, p, g2, m, v, 3, (float)lr, 2);
    for (int i = 0; i < 3; i++) { /* closed form: m̂ = m/(1−β1^t), v̂ = v/(1−β2^t), p −= lr m̂/(√v̂ + ε) */
        const double *gs[2] = { (const double[]){ g1[0], g1[1], g1[2] }, (const double[]){ g2[0], g2[1], g2[2] } };
        for (int t = 1; t <= 2; t++) {
            double g = gs[t - 1][i];
            M[i] = 0.9 * M[i] + 0.1 * g;
            V[i] = 0.999 * V[i] + 0.001 * g * g;
            P[i] -= lr * (M[i] / (1 - pow(0.9, t))) / (sqrt(V[i] / (1 - pow(0.999, t))) + 1e-8);
        }
        cr_assert(fabs(p[i] - P[i]) <= 1e-6 * fabs(P[i]) + 1e-7, "p[%d] %.9g vs %.9g", i, p[i], P[i]);
    }
    /* step 1 moves every parameter with a nonzero gradient by ≈ lr·sign(g) */
    float q[1] = { 0 }, mq[1] = { 0 }, vq[1] = { 0 }, gq[1] = { 123.0f };
    eng_adam_step(NULL, &o, q, gq, mq, vq, 1, 0.01f, 1);
    cr_assert(fabs(q[0] + 0.01f) < 1e-6);
}

Test(optim, cosine_schedule)
{
    cr_assert_float_eq(eng_cosine_lr(1e-3f, 0, 100), 1e-3f, 1e-12);
    cr_assert_float_eq(eng_cosine_lr(1e-3f, 50, 100), 5e-4f, 1e-9);
    cr_assert_float_eq(eng_cosine_lr(1e-3f, 25, 100), 1e-3 * (1 + sqrt(0.5)) / 2, 1e-9);
    cr_assert_float_eq(eng_cosine_lr(1e-3f, 75, 100), 1e-3 * (1 - sqrt(0.5)) / 2, 1e-9);
    cr_assert_float_eq(eng_cosine_lr(1e-3f, 100, 100), 0.0, 1e-12);
    float prev = 1;
    for (long it = 0; it < 100; it++) { /* strictly decreasing, positive before the end */
        float lr = eng_cosine_lr(1.0f, it, 100);
        cr_assert(lr > 0 && lr < prev + (it == 0));
        prev = lr;
    }
}

Test(optim, rng_splitmix64)
{
    uint64_t s = 0;
    /* reference values of splitmix64 from state 0 (Vigna's splitmix64.c) */
    cr_assert_eq(eng_rng_next(&s), 0xe220a8397b1dcdafull);
    cr_assert_eq(eng_rng_next(&s), 0x6e789e6aa1b965f4ull);
    uint64_t a = 99, b = 99;
    double sum = 0;
    for (int i = 0; i < 100000; i++) {
        float u = eng_rng_uniform(&a);
        cr_assert(u >= 0.0f && u < 1.0f);
        sum += u;
        cr_assert_eq(eng_rng_uniform(&b), u);
    }
    cr_assert(fabs(sum / 100000 - 0.5) < 0.01);
}
