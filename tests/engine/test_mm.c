/* test_mm.c — matmul backends (engine/eng_mm.h): bf16 rounding against a direct bit-level
 * reference; OpenBLAS vs oneDNN, fp32 and bf16, on every product shape the block, attention and
 * the LRQ quantizer use (stories260K exactly; a 7B-like set with the real inner dimensions).
 *
 * Tolerances (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., §3.1 and §3.5):
 * any fp32 evaluation order of c = alpha·Σ_k a_k b_k + beta·c0 satisfies
 *     |ĉ − c| ≤ γ_{K+2} · (|alpha|·Σ_k |a_k||b_k| + |beta|·|c0|),   γ_n = n·u / (1 − n·u), u = 2^-24,
 * (K products and sums, one multiply by alpha, one add of beta·c0). So
 *   - each backend against the exact value (a double-precision dot product of the same inputs,
 *     exact to ~2^-53 relative, negligible here) on a sample of 97 entries per product: ≤ that bound;
 *   - the two backends against each other, on every entry: ≤ twice that bound. Σ|a||b| is computed
 *     by an fp32 sgemm of |A|·|B| (its own relative error ≤ γ_K, covered by the margin factor 1.01).
 * The bound is worst-case: observed at most 0.19 of it (K = 8, the attention products), 1e-3–5e-2 at
 * K ≥ 64 (TEST_MM_VERBOSE=1 prints every ratio). A wrong product — a transposition or leading
 * dimension mixed up, alpha or beta dropped — is off by O(Σ|a||b|), i.e. by 1/(2γ_{K+2}) ≈ 750
 * bounds even at the largest K here (11008), so it cannot pass (checks_catch_a_wrong_entry).
 * bf16: the same bound against the double product of the inputs rounded by this file's own
 * reference rounding (a product of two bf16 values is exact in fp32 and in double). That bf16 is
 * really applied is checked too: some entry must differ from the fp32 product by more than the
 * fp32 bound (rounding the inputs changes products by ~2^-9 relative). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "config.h"
#include "eng_mm.h"
#include "eng_pool.h"

/* ---- bf16 reference: nearest of the two bf16 neighbours, computed in double ---- */

static float bits_f(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }
static uint32_t f_bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }

static uint32_t ref_bf16(uint32_t u) /* returns the bf16 pattern in the top half */
{
    float x = bits_f(u);
    if (isnan(x)) return 0; /* handled by the caller */
    uint32_t lo = u & 0xffff0000u;           /* truncation: toward zero */
    if (lo == u) return lo;                  /* exact (incl. ±0, ±Inf) */
    uint32_t hi = lo + 0x10000u;             /* next bf16 away from zero (max finite → Inf) */
    double dx = fabs((double)x), dlo = fabs((double)bits_f(lo));
    double dhi = (hi & 0x7fffffffu) == 0x7f800000u ? ldexp(1.0, 128) : fabs((double)bits_f(hi));
    double elo = dx - dlo, ehi = dhi - dx;
    if (elo < ehi) return lo;
    if (ehi < elo) return hi;
    return (lo & 0x10000u) ? hi : lo;        /* tie: the even one */
}

static void check_round(uint32_t u)
{
    float x = bits_f(u);
    uint16_t got = eng_f32_to_bf16(x);
    if (isnan(x)) {
        cr_assert(isnan(eng_bf16_to_f32(got)), "NaN 0x%08x rounded to non-NaN 0x%04x", u, got);
        cr_assert_eq(got >> 15, u >> 31, "NaN sign");
        return;
    }
    uint32_t want = ref_bf16(u) >> 16;
    cr_assert_eq(got, want, "bf16(0x%08x = %a): got 0x%04x, want 0x%04x", u, (double)x, got, want);
    cr_assert_eq(f_bits(eng_bf16_round(x)), want << 16);
}

Test(bf16, rounding_matches_bit_reference)
{
    /* every low half (so every rounding case: below, above, exactly half, ties odd/even) under
     * high halves that cover ±0/denormals, small, 1, large, max finite and Inf/NaN */
    const uint32_t his[] = {0x0000, 0x0001, 0x007f, 0x0080, 0x3f80, 0x3f81, 0x4049, 0x7f7e, 0x7f7f, 0x7f80,
                            0x7fc0, 0x8000, 0x8001, 0xbf80, 0xbf81, 0xff7f, 0xff80, 0xffff};
    for (size_t h = 0; h < sizeof his / sizeof *his; h++)
        for (uint32_t lo = 0; lo < 0x10000u; lo++) check_round(his[h] << 16 | lo);
    /* and a stride over all 2^32 patterns (a prime step: every bit position varies) */
    for (uint64_t u = 0; u < 0x100000000ull; u += 65521) check_round((uint32_t)u);
    /* a few by hand: 1 + 2^-8 is a tie between 1 (even) and 1 + 2^-7 → 1; 1 + 3·2^-8 → 1 + 2^-6 */
    cr_assert_eq(eng_bf16_round(1.0f + 0x1p-8f), 1.0f);
    cr_assert_eq(eng_bf16_round(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f);
    cr_assert(isinf(eng_bf16_round(3.4e38f)), "above max bf16 + half ulp → Inf");
}

Test(bf16, round_mat_strided_in_place)
{
    enum { R = 5, C = 7, LD = 9 };
    float a[R * LD], b[R * LD];
    uint64_t s = 7;
    for (int i = 0; i < R * LD; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        a[i] = b[i] = (float)((int64_t)(s >> 11) - (1ll << 52)) / (float)(1ll << 52);
    }
    eng_bf16_round_mat(a, LD, a, LD, R, C);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < LD; j++) {
            float want = j < C ? bits_f(ref_bf16(f_bits(b[i * LD + j]))) : b[i * LD + j]; /* padding untouched */
            cr_assert_eq(f_bits(a[i * LD + j]), f_bits(want), "(%d,%d)", i, j);
        }
}

/* ---- products ---- */

typedef struct {
    const char *name;
    int ta, tb, M, N, K, pad; /* pad: extra leading-dimension columns on A, B and C */
    float alpha, beta;
} shape_t;

/* stories260K: D 64, F 172, H 8, KVH 4, Dh 8, rank ratio 0.25 (k = 16), B·T = 2·256 rows. Linears
 * y = x Wᵀ (N,m,n), dW = dyᵀ x (m,n,N), dx = dy W (N,n,m); attention per (b,h) with ld = H·Dh or
 * KVH·Dh (pad); LRQ S = L·U, gL = G·Uᵀ, gU = Lᵀ·G; lm_head (V 512). */
static const shape_t small[] = {
    {"q fwd", 0, 1, 512, 64, 64, 0, 1, 0},       {"k fwd", 0, 1, 512, 32, 64, 0, 1, 0},
    {"o fwd +res", 0, 1, 512, 64, 64, 0, 1, 1},  {"gate fwd", 0, 1, 512, 172, 64, 0, 1, 0},
    {"down fwd +res", 0, 1, 512, 64, 172, 0, 1, 1},
    {"q dW", 1, 0, 64, 64, 512, 0, 1, 0},        {"k dW", 1, 0, 32, 64, 512, 0, 1, 0},
    {"gate dW", 1, 0, 172, 64, 512, 0, 1, 0},    {"down dW", 1, 0, 64, 172, 512, 0, 1, 0},
    {"down dx", 0, 0, 512, 172, 64, 0, 1, 0},    {"gate dx", 0, 0, 512, 64, 172, 0, 1, 0},
    {"up dx +acc", 0, 0, 512, 64, 172, 0, 1, 1}, {"v dx +acc", 0, 0, 512, 64, 32, 0, 1, 1},
    {"att S=qkT", 0, 1, 256, 256, 8, 56, 0.35355339f, 0},
    {"att PV", 0, 0, 256, 8, 256, 56, 1, 0},     {"att dv+=PTdo", 1, 0, 256, 8, 256, 56, 1, 1},
    {"att dP=dovT", 0, 1, 256, 256, 8, 24, 1, 0}, {"att dq=dSk", 0, 0, 256, 8, 256, 24, 1, 0},
    {"att dk+=dSTq", 1, 0, 256, 8, 256, 56, 1, 1},
    {"lrq S=LU", 0, 0, 64, 64, 16, 0, 1, 0},     {"lrq S=LU ffn", 0, 0, 172, 64, 16, 0, 1, 0},
    {"lrq gL=GUT", 0, 1, 64, 16, 172, 0, 1, 0},  {"lrq gU=LTG", 1, 0, 16, 172, 64, 0, 1, 0},
    {"lm_head", 0, 1, 512, 512, 64, 0, 1, 0},
};

/* Llama-2-7B-like: the real inner dimensions (4096, 11008, 2·512 rows, rank 1024, T 512, Dh 128,
 * ld H·Dh = 4096) and transposes; M and N cut to ≤ 1024 so a test stays small. */
static const shape_t big[] = {
    {"7B q fwd", 0, 1, 16, 1024, 4096, 0, 1, 0},        {"7B gate fwd", 0, 1, 16, 1024, 4096, 0, 1, 0},
    {"7B down fwd +res", 0, 1, 16, 1024, 11008, 0, 1, 1},
    {"7B down dx", 0, 0, 16, 1024, 4096, 0, 1, 0},      {"7B gate dx", 0, 0, 16, 512, 11008, 0, 1, 0},
    {"7B q dW", 1, 0, 32, 1024, 1024, 0, 1, 0},         {"7B down dW", 1, 0, 32, 1024, 1024, 0, 1, 0},
    {"7B att S", 0, 1, 64, 512, 128, 3968, 0.08838835f, 0}, {"7B att PV", 0, 0, 64, 128, 512, 3968, 1, 0},
    {"7B att dv+=", 1, 0, 512, 128, 64, 3968, 1, 1},    {"7B att dk+=", 1, 0, 512, 128, 64, 3968, 1, 1},
    {"7B lrq S=LU", 0, 0, 16, 1024, 1024, 0, 1, 0},     {"7B lrq gL", 0, 1, 16, 1024, 4096, 0, 1, 0},
    {"7B lrq gU", 1, 0, 1024, 1024, 16, 0, 1, 0},
};

typedef struct {
    const shape_t *s;
    int lda, ldb, ldc, ra, ca, rb, cb;
    float *A, *B, *C0, *absA, *absB, *S; /* S = |alpha|·|A||B| + |beta|·|C0| */
} prob_t;

static float urand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

static float *falloc(size_t n)
{
    float *p = malloc(n * sizeof(float));
    cr_assert(p);
    return p;
}

static void prob_init(prob_t *p, const shape_t *s, uint64_t seed)
{
    p->s = s;
    p->ra = s->ta ? s->K : s->M; p->ca = s->ta ? s->M : s->K;
    p->rb = s->tb ? s->N : s->K; p->cb = s->tb ? s->K : s->N;
    p->lda = p->ca + s->pad; p->ldb = p->cb + s->pad; p->ldc = s->N + s->pad;
    size_t na = (size_t)p->ra * p->lda, nb = (size_t)p->rb * p->ldb, nc = (size_t)s->M * p->ldc;
    p->A = falloc(na); p->B = falloc(nb); p->C0 = falloc(nc);
    p->absA = falloc(na); p->absB = falloc(nb); p->S = falloc(nc);
    for (size_t i = 0; i < na; i++) p->absA[i] = fabsf(p->A[i] = urand(&seed));
    for (size_t i = 0; i < nb; i++) p->absB[i] = fabsf(p->B[i] = urand(&seed));
    for (size_t i = 0; i < nc; i++) p->S[i] = fabsf(p->C0[i] = urand(&seed));
    cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, s->M, s->N, s->K,
                fabsf(s->alpha), p->absA, p->lda, p->absB, p->ldb, fabsf(s->beta), p->S, p->ldc);
}

static void prob_free(prob_t *p)
{
    free(p->A); free(p->B); free(p->C0); free(p->absA); free(p->absB); free(p->S);
}

static double gamma_n(int n) { double u = ldexp(1.0, -24); return n * u / (1 - n * u); }

static double elem(const float *X, int ld, int t, int r, int c) { return t ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c]; }

/* exact (double) alpha·op(A)op(B) + beta·C0 at (i,j), inputs optionally bf16-rounded first */
static double exact(const prob_t *p, int i, int j, int round)
{
    const shape_t *s = p->s;
    double acc = 0;
    for (int k = 0; k < s->K; k++) {
        double a = elem(p->A, p->lda, s->ta, i, k), b = elem(p->B, p->ldb, s->tb, k, j);
        if (round) {
            a = bits_f(ref_bf16(f_bits((float)a)));
            b = bits_f(ref_bf16(f_bits((float)b)));
        }
        acc += a * b;
    }
    return (double)s->alpha * acc + (double)s->beta * p->C0[(size_t)i * p->ldc + j];
}

typedef struct {
    eng_mm_t *mm;
    const prob_t *p;
    float *C[2];
} task_ctx_t;

static void one_task(void *ctx, int task, int thread)
{
    const task_ctx_t *t = ctx;
    const shape_t *s = t->p->s;
    eng_mm_gemm1(t->mm, thread, s->ta, s->tb, s->M, s->N, s->K, s->alpha, t->p->A, t->p->lda, t->p->B, t->p->ldb,
                 s->beta, t->C[task], t->p->ldc);
}

/* C = the product through mm: whole over the pool (eng_mm_gemm) or, in_task, twice at once in two
 * pool tasks (eng_mm_gemm1 on each task's thread slot), which must agree bit for bit. */
static float *run(eng_mm_t *mm, eng_pool_t *pool, const prob_t *p, int in_task)
{
    const shape_t *s = p->s;
    size_t nc = (size_t)s->M * p->ldc;
    float *C = falloc(nc);
    memcpy(C, p->C0, nc * sizeof(float));
    if (in_task) {
        float *C2 = falloc(nc);
        memcpy(C2, p->C0, nc * sizeof(float));
        task_ctx_t t = {mm, p, {C, C2}};
        eng_pool_run(pool, 2, one_task, &t);
        cr_assert(!memcmp(C, C2, nc * sizeof(float)), "%s: the same product in two tasks differs", s->name);
        free(C2);
    } else {
        eng_mm_gemm(mm, pool, s->ta, s->tb, s->M, s->N, s->K, s->alpha, p->A, p->lda, p->B, p->ldb, s->beta, C, p->ldc);
    }
    return C;
}

/* |C − exact| on 97 sampled entries; returns the worst ratio to the bound. bf16: exact of the
 * rounded inputs, whose Σ|â||b̂| ≤ (1 + 2^-8)²·Σ|a||b| (each rounding moves a value ≤ 2^-9 relative). */
static double vs_exact(const prob_t *p, const float *C, int bf16)
{
    const shape_t *s = p->s;
    double g = gamma_n(s->K + 2) * 1.01 * (bf16 ? (1 + 0x1p-8) * (1 + 0x1p-8) : 1.0), worst = 0;
    uint64_t seed = 99;
    for (int t = 0; t < 97; t++) {
        int i = (int)((urand(&seed) + 1) * 0.5 * s->M), j = (int)((urand(&seed) + 1) * 0.5 * s->N);
        if (i >= s->M) i = s->M - 1;
        if (j >= s->N) j = s->N - 1;
        size_t o = (size_t)i * p->ldc + j;
        double e = fabs(C[o] - exact(p, i, j, bf16)), b = g * p->S[o];
        if (e / b > worst) worst = e / b;
    }
    return worst;
}

/* Σ|C − exact(unrounded inputs)| / Σ|C − exact(rounded inputs)| over the sampled entries: ≫ 1 when
 * C was computed from bf16-rounded inputs (rounding moves a product by ~2^-9 relative, fp32
 * accumulation by ~2^-24·√K), ≪ 1 when it was computed in fp32. */
static double rounding_evidence(const prob_t *p, const float *C)
{
    const shape_t *s = p->s;
    double er = 0, eu = 0;
    uint64_t seed = 98;
    for (int t = 0; t < 97; t++) {
        int i = (int)((urand(&seed) + 1) * 0.5 * s->M), j = (int)((urand(&seed) + 1) * 0.5 * s->N);
        if (i >= s->M) i = s->M - 1;
        if (j >= s->N) j = s->N - 1;
        double c = C[(size_t)i * p->ldc + j];
        er += fabs(c - exact(p, i, j, 1));
        eu += fabs(c - exact(p, i, j, 0));
    }
    return eu / (er > 0 ? er : 1e-300);
}

/* max over all entries of |C1 − C2| / (2γ_{K+2}·S) (padding columns must be untouched: C0) */
static double vs_other(const prob_t *p, const float *C1, const float *C2, int bf16)
{
    const shape_t *s = p->s;
    double g = 2 * gamma_n(s->K + 2) * 1.01 * (bf16 ? (1 + 0x1p-8) * (1 + 0x1p-8) : 1.0), worst = 0;
    for (int i = 0; i < s->M; i++) {
        for (int j = 0; j < p->ldc; j++) {
            size_t o = (size_t)i * p->ldc + j;
            if (j >= s->N) {
                cr_assert_eq(f_bits(C1[o]), f_bits(p->C0[o]), "%s: padding of C written", s->name);
                cr_assert_eq(f_bits(C2[o]), f_bits(p->C0[o]), "%s: padding of C written", s->name);
                continue;
            }
            double r = fabs((double)C1[o] - C2[o]) / (g * p->S[o]);
            if (r > worst) worst = r;
        }
    }
    return worst;
}

static void compare_all(const shape_t *shapes, size_t n, eng_mm_prec_t prec)
{
#ifndef HAVE_DNNL
    cr_skip_test("lrq was built without oneDNN: nothing to compare OpenBLAS with");
#endif
    eng_pool_t *pool = eng_pool_new(2);
    cr_assert(pool);
    eng_mm_t *ob = NULL, *dn = NULL, *ob32 = NULL;
    lrq_err_t err = {0};
    cr_assert_eq(eng_mm_new(ENG_MM_OPENBLAS, prec, eng_pool_threads(pool), &ob, &err), 0, "%s", err.msg);
    cr_assert_eq(eng_mm_new(ENG_MM_ONEDNN, prec, eng_pool_threads(pool), &dn, &err), 0, "%s", err.msg);
    cr_assert_eq(eng_mm_new(ENG_MM_OPENBLAS, ENG_MM_FP32, eng_pool_threads(pool), &ob32, &err), 0, "%s", err.msg);
    int bf16 = prec == ENG_MM_BF16;
    for (size_t k = 0; k < n; k++) {
        prob_t p;
        prob_init(&p, &shapes[k], 1000 + k);
        for (int in_task = 0; in_task < 2; in_task++) {
            float *c1 = run(ob, pool, &p, in_task), *c2 = run(dn, pool, &p, in_task);
            double e1 = vs_exact(&p, c1, bf16), e2 = vs_exact(&p, c2, bf16), e12 = vs_other(&p, c1, c2, bf16);
            if (getenv("TEST_MM_VERBOSE")) /* the observed fractions of the bounds, for the header comment */
                fprintf(stderr, "%-18s %s %s: openblas %.2e onednn %.2e between %.2e\n", shapes[k].name,
                        eng_mm_prec_name[prec], in_task ? "task" : "pool", e1, e2, e12);
            cr_assert(e1 <= 1, "%s (%s): openblas off the exact value by %.3g bounds", shapes[k].name,
                      in_task ? "in task" : "pooled", e1);
            cr_assert(e2 <= 1, "%s (%s): onednn off the exact value by %.3g bounds", shapes[k].name,
                      in_task ? "in task" : "pooled", e2);
            cr_assert(e12 <= 1, "%s (%s): backends differ by %.3g bounds", shapes[k].name, in_task ? "in task" : "pooled",
                      e12);
            if (bf16) { /* rounding happened (and fp32 shows the opposite: the measure discriminates) */
                float *c32 = run(ob32, pool, &p, in_task);
                double r1 = rounding_evidence(&p, c1), r2 = rounding_evidence(&p, c2), r32 = rounding_evidence(&p, c32);
                cr_assert(r1 > 30 && r2 > 30 && r32 < 1.0 / 30, "%s: bf16 not applied (evidence %g, %g; fp32 %g)",
                          shapes[k].name, r1, r2, r32);
                free(c32);
            }
            free(c1);
            free(c2);
        }
        prob_free(&p);
    }
    eng_mm_stats_t st;
    eng_mm_stats(dn, &st);
    cr_assert_eq(st.fallbacks, 0, "oneDNN refused %ld products", st.fallbacks);
    cr_assert(st.onednn_execs >= (long)(2 * n), "oneDNN ran %ld of %zu products", st.onednn_execs, 2 * n);
    cr_assert_eq(eng_mm_status(ob, &err), 0);
    cr_assert_eq(eng_mm_status(dn, &err), 0);
    eng_mm_free(ob);
    eng_mm_free(dn);
    eng_mm_free(ob32);
    eng_pool_free(pool);
}

Test(mm, fp32_stories260K_shapes) { compare_all(small, sizeof small / sizeof *small, ENG_MM_FP32); }
Test(mm, fp32_7B_like_shapes) { compare_all(big, sizeof big / sizeof *big, ENG_MM_FP32); }
Test(mm, bf16_stories260K_shapes) { compare_all(small, sizeof small / sizeof *small, ENG_MM_BF16); }
Test(mm, bf16_7B_like_shapes) { compare_all(big, sizeof big / sizeof *big, ENG_MM_BF16); }

/* The checks above can fail: one entry moved by a tenth of its Σ|a||b| (what a dropped term or a
 * wrong stride does, at the least) is caught by both comparisons. */
Test(mm, checks_catch_a_wrong_entry)
{
    prob_t p;
    prob_init(&p, &small[5], 5);
    float *c = run(NULL, NULL, &p, 0), *d = falloc((size_t)p.s->M * p.ldc);
    memcpy(d, c, (size_t)p.s->M * p.ldc * sizeof(float));
    cr_assert(vs_other(&p, c, d, 0) == 0);
    for (int i = 0; i < p.s->M; i++) d[(size_t)i * p.ldc + i % p.s->N] += 0.1f * p.S[(size_t)i * p.ldc + i % p.s->N];
    cr_assert(vs_other(&p, c, d, 0) > 100);
    cr_assert(vs_exact(&p, c, 0) <= 1);
    free(c);
    free(d);
    prob_free(&p);
}

/* mm NULL is the old path; an OpenBLAS fp32 backend gives the same bits (same slabs); every backend
 * gives the same bits for 1 and 2 threads. */
Test(mm, deterministic_and_null_is_openblas)
{
    eng_pool_t *p1 = eng_pool_new(1), *p2 = eng_pool_new(2);
    cr_assert(p1 && p2);
    const shape_t *shapes[] = {&small[0], &small[5], &small[13], &big[1], &big[5]};
    for (int be = 0; be < 2; be++) {
#ifndef HAVE_DNNL
        if (be == ENG_MM_ONEDNN) continue;
#endif
        for (int prec = 0; prec < 2; prec++) {
            eng_mm_t *m1 = NULL, *m2 = NULL;
            cr_assert_eq(eng_mm_new(be, prec, 1, &m1, NULL), 0);
            cr_assert_eq(eng_mm_new(be, prec, 2, &m2, NULL), 0);
            for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
                prob_t p;
                prob_init(&p, shapes[k], 77 + k);
                size_t nc = (size_t)p.s->M * p.ldc;
                float *a = run(m1, p1, &p, 0), *b = run(m2, p2, &p, 0);
                cr_assert(!memcmp(a, b, nc * sizeof(float)), "%s %s %s: 1 and 2 threads differ", shapes[k]->name,
                          eng_mm_backend_name[be], eng_mm_prec_name[prec]);
                if (be == ENG_MM_OPENBLAS && prec == ENG_MM_FP32) {
                    float *c = run(NULL, p2, &p, 0);
                    cr_assert(!memcmp(b, c, nc * sizeof(float)), "%s: openblas backend differs from eng_pool_sgemm",
                              shapes[k]->name);
                    free(c);
                }
                free(a);
                free(b);
                prob_free(&p);
            }
            eng_mm_free(m1);
            eng_mm_free(m2);
        }
    }
    eng_pool_free(p1);
    eng_pool_free(p2);
}

Test(mm, notes_and_errors)
{
    eng_mm_t *m = NULL;
    lrq_err_t err = {0};
    cr_assert_eq(eng_mm_new(ENG_MM_OPENBLAS, ENG_MM_FP32, 2, &m, &err), 0);
    cr_assert_null(eng_mm_note(m), "fp32 has nothing to say");
    cr_assert_eq(eng_mm_bf16_native(m), 0);
    eng_mm_free(m);
    cr_assert_eq(eng_mm_new(ENG_MM_OPENBLAS, ENG_MM_BF16, 2, &m, &err), 0);
    cr_assert(eng_mm_note(m) && strstr(eng_mm_note(m), "emulated"), "bf16 on openblas must say it is emulated");
    eng_mm_free(m);
#ifdef HAVE_DNNL
    cr_assert_eq(eng_mm_new(ENG_MM_ONEDNN, ENG_MM_BF16, 2, &m, &err), 0);
    /* native exactly when oneDNN has a bf16 matmul here; otherwise a note, never silence */
    cr_assert(eng_mm_bf16_native(m) ? eng_mm_note(m) == NULL : eng_mm_note(m) != NULL);
    eng_mm_free(m);
#else
    cr_assert_eq(eng_mm_new(ENG_MM_ONEDNN, ENG_MM_FP32, 2, &m, &err), LRQ_ESPEC);
    cr_assert_str_eq(err.field, "compute.backend");
#endif
    eng_mm_free(NULL);
}
