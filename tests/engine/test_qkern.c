/* test_qkern.c — every instruction-set build of the quantizer kernels (engine/eng_qkern.h:
 * SSE2, AVX2, AVX-512F) against a scalar reference written here, on the paths this CPU can run;
 * the others are reported as TAP "# SKIP" with the reason (compiled, not run), never as a pass.
 *
 * What is compared and how tightly:
 *   - LRQ / FlexRound forward rows: t = W / (exp(a)·exp(S + r + c)) against the double-precision
 *     value: the kernel's exp has relative error ≤ 2e-7 (eng_qsimd.h), plus one fp32 multiply and
 *     divide (2·2^-24), so ≤ 1e-6 relative. Codes and Ŵ must be exactly the reference's, except
 *     where t lies within that 1e-6 of a rounding boundary (either side is right; counted, few).
 *   - backward rows: G = (−s1·dŴ)·(in·t) and gc (column sums in row order) are the same fp32
 *     operations in the same order as the scalar loop here, so bit-exact; ga, gr are lane-order
 *     reductions: |error| ≤ γ_n·Σ|terms| (n terms summed, Higham §3.1), with γ_n = n·2^-24/(1−n·2^-24).
 *   - Adam: the same fp32 operations per element as the scalar loop here (no FMA contraction:
 *     -ffp-contract=off), so bit-exact.
 *   - across ISAs: per-element outputs (t, Ŵ, codes, G, Adam's p, m, v) bit-identical to SSE2's.
 * A wrong kernel (a lane mask, a tail, a group boundary or a clamp bound off) changes codes by 1 and
 * t by O(1): it cannot pass. Shapes: n = 45 columns = 2·16 + 13 and groups of 16 (16, 16, 13), so
 * every ISA runs whole vectors, a partial group and the zero-padded tail. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "eng_quant.h"
#include "eng_qsimd.h"

typedef void (*rows_fn)(void *, int, long, long);
typedef struct {
    const char *name;
    rows_fn fwd, bwd, adam;
} isa_t;

static const isa_t isas[] = {
    {"sse2", eng__lrq_fwd_rows_sse, eng__lrq_bwd_rows_sse, eng__adam_rows_sse},
#ifdef ENG_HAVE_AVX2_KERNELS
    {"avx2", eng__lrq_fwd_rows_avx2, eng__lrq_bwd_rows_avx2, eng__adam_rows_avx2},
#endif
#ifdef ENG_HAVE_AVX512_KERNELS
    {"avx512f", eng__lrq_fwd_rows_avx512, eng__lrq_bwd_rows_avx512, eng__adam_rows_avx512},
#endif
};

static int cpu_has(const char *name)
{
    if (!strcmp(name, "sse2")) return 1; /* the x86-64 baseline */
#if defined(__x86_64__) && defined(__GNUC__)
    if (!strcmp(name, "avx2")) return __builtin_cpu_supports("avx2");
    if (!strcmp(name, "avx512f")) return __builtin_cpu_supports("avx512f");
#endif
    return 0;
}

static const isa_t *isa_or_skip(const char *name)
{
    const isa_t *k = NULL;
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++)
        if (!strcmp(isas[i].name, name)) k = &isas[i];
    if (!k) cr_skip_test("%s kernels not compiled (compiler/architecture without them)", name);
    if (!cpu_has(name)) cr_skip_test("this CPU has no %s: the %s kernels are compiled but cannot run here", name, name);
    return k;
}

static float urand(uint64_t *s) { return 2.0f * eng_rng_uniform(s) - 1.0f; }

enum { M = 6, N = 45, GS = 16, RK = 3, BITS = 3 };

typedef struct {
    eng_lrq_t q;
    float W[M * N], *params, *grads;
    float What[M * N], dW[M * N], G[M * N];
    uint8_t codes[M * N];
} lrq_case_t;

static void case_init(lrq_case_t *c, int full, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < M * N; i++) c->W[i] = 0.05f * urand(&seed);
    eng_qcfg_t cfg = {.bits = BITS, .group_size = GS, .symmetric = 0, .init = ENG_INIT_MINMAX};
    lrq_err_t err;
    cr_assert_eq(eng_lrq_init(&c->q, c->W, M, N, RK, full, &cfg, &err), 0, "%s", err.msg);
    size_t np = eng_lrq_param_count(M, N, c->q.k, c->q.G, c->q.full);
    c->params = calloc(np, sizeof(float));
    c->grads = calloc(np, sizeof(float));
    cr_assert(c->params && c->grads);
    eng_lrq_bind(&c->q, c->params, c->grads);
    eng_lrq_reset(&c->q, &cfg, &seed);
    /* move every parameter off its reset value so that S, r, c all matter */
    for (int i = 0; i < M * c->q.G; i++) c->q.a[i] += 0.2f * urand(&seed);
    for (int i = 0; i < M; i++) c->q.r[i] = 0.3f * urand(&seed);
    if (full) {
        for (int i = 0; i < M * N; i++) c->q.S2[i] = 0.3f * urand(&seed);
    } else {
        for (int i = 0; i < M * RK; i++) c->q.L[i] = 0.5f * urand(&seed);
        for (int j = 0; j < N; j++) c->q.c[j] = 0.3f * urand(&seed);
        for (int i = 0; i < M; i++) /* S = L·U, what eng_lrq_forward's GEMM puts there */
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int k = 0; k < RK; k++) s += (double)c->q.L[i * RK + k] * c->q.U[k * N + j];
                c->q.S[i * N + j] = (float)s;
            }
    }
    for (int i = 0; i < M * N; i++) c->dW[i] = urand(&seed);
}

static void case_close(lrq_case_t *c)
{
    eng_lrq_close(&c->q);
    free(c->params);
    free(c->grads);
}

static double exponent(const eng_lrq_t *q, int i, int j)
{
    double e = q->full ? q->S2[i * N + j] : (double)q->S[i * N + j] + q->c[j];
    return e + q->r[i];
}

/* forward and backward of one ISA into c; then the checks against the scalar reference */
static void run_isa(const isa_t *k, lrq_case_t *c)
{
    eng__lrq_pass_t P = {.q = &c->q, .What = c->What, .save = 1};
    k->fwd(&P, 0, 0, M);
    eng__lrq_pass_t Pc = {.q = &c->q, .codes = c->codes};
    k->fwd(&Pc, 0, 0, M);
    eng__lrq_pass_t B = {.q = &c->q, .dW = c->dW, .Gm = c->G};
    k->bwd(&B, 0, 0, M);
}

static void check_vs_reference(const isa_t *k, lrq_case_t *c)
{
    const eng_lrq_t *q = &c->q;
    const float qmax = (float)((1 << BITS) - 1);
    int near = 0;
    for (int i = 0; i < M; i++) {
        double gr = 0, gr_abs = 0;
        for (int g = 0; g < q->G; g++) {
            float s1 = expf(q->a[i * q->G + g]), z = q->zero[i * q->G + g], lo = 0.0f - z, hi = qmax - z;
            double ga = 0, ga_abs = 0;
            int j0 = g * GS, j1 = j0 + GS < N ? j0 + GS : N;
            for (int j = j0; j < j1; j++) {
                int o = i * N + j;
                double tr = (double)c->W[o] / ((double)s1 * exp(exponent(q, i, j)));
                float t = q->t[o];
                cr_assert(fabs(t - tr) <= 1e-6 * fabs(tr) + 1e-30, "%s: t(%d,%d) = %.9g, reference %.9g", k->name, i,
                          j, t, tr);
                double frac = tr - floor(tr);
                int ambiguous = fabs(frac - 0.5) <= 1e-6 * fabs(tr) + 1e-30;
                near += ambiguous;
                float v = rintf(t), wi = fminf(fmaxf(v, lo), hi), in = v >= lo && v <= hi;
                if (!ambiguous) {
                    float vr = (float)nearbyint(tr);
                    cr_assert_eq(v, vr, "%s: round(t)(%d,%d) = %g, reference %g", k->name, i, j, v, vr);
                }
                /* given the kernel's t, Ŵ and the code are exact functions of it */
                cr_assert_eq(c->What[o], s1 * wi, "%s: What(%d,%d)", k->name, i, j);
                cr_assert_eq(c->codes[o], (uint8_t)(int)(wi + z), "%s: code(%d,%d)", k->name, i, j);
                /* backward: G elementwise in the kernel's order; sums with their bound */
                float it = in ? t : 0.0f, Gv = (-s1 * c->dW[o]) * it;
                cr_assert_eq(c->G[o], Gv, "%s: G(%d,%d) = %g, want %g", k->name, i, j, c->G[o], Gv);
                ga += (double)c->dW[o] * (wi - it);
                ga_abs += fabs((double)c->dW[o] * (wi - it));
                gr += Gv;
                gr_abs += fabs(Gv);
            }
            double gam = (j1 - j0 + 2) * 0x1p-24 / (1 - (j1 - j0 + 2) * 0x1p-24);
            cr_assert(fabs(q->ga[i * q->G + g] - s1 * ga) <= gam * s1 * ga_abs * 1.01 + 1e-30,
                      "%s: ga(%d,%d) = %.9g, reference %.9g", k->name, i, g, q->ga[i * q->G + g], s1 * ga);
        }
        double gam = (N + 1) * 0x1p-24 / (1 - (N + 1) * 0x1p-24);
        cr_assert(fabs(q->gr[i] - gr) <= gam * gr_abs * 1.01 + 1e-30, "%s: gr(%d) = %.9g, reference %.9g", k->name, i,
                  q->gr[i], gr);
    }
    if (!q->full)
        for (int j = 0; j < N; j++) {
            float s = 0.0f; /* column sums, rows in order: the kernel's order with one part */
            for (int i = 0; i < M; i++) s += c->G[i * N + j];
            cr_assert_eq(q->gc[j], s, "%s: gc(%d) = %g, want %g", k->name, j, q->gc[j], s);
        }
    cr_assert(near <= 3, "%s: %d values of t at a rounding boundary: the data is degenerate", k->name, near);
}

static void check_lrq(const char *name, int full)
{
    const isa_t *k = isa_or_skip(name);
    lrq_case_t *c = calloc(1, sizeof *c), *ref = calloc(1, sizeof *ref);
    cr_assert(c && ref);
    case_init(c, full, 11);
    run_isa(k, c);
    check_vs_reference(k, c);
    /* and per element identical to the SSE2 build (the baseline every x86-64 runs) */
    case_init(ref, full, 11);
    run_isa(&isas[0], ref);
    cr_assert(!memcmp(c->q.t, ref->q.t, sizeof(float) * M * N), "%s: t differs from sse2", name);
    cr_assert(!memcmp(c->What, ref->What, sizeof c->What), "%s: What differs from sse2", name);
    cr_assert(!memcmp(c->codes, ref->codes, sizeof c->codes), "%s: codes differ from sse2", name);
    cr_assert(!memcmp(c->G, ref->G, sizeof c->G), "%s: G differs from sse2", name);
    case_close(c);
    case_close(ref);
    free(c);
    free(ref);
}

static void check_adam(const char *name)
{
    const isa_t *k = isa_or_skip(name);
    enum { NA = 1000 + 13 };
    static float p[NA], m[NA], v[NA], g[NA], p0[NA], m0[NA], v0[NA];
    uint64_t s = 5;
    for (int i = 0; i < NA; i++) {
        p[i] = p0[i] = urand(&s);
        m[i] = m0[i] = 0.01f * urand(&s);
        v[i] = v0[i] = i % 5 ? 1e-4f * (urand(&s) + 1.0f) : 0.0f; /* v = 0 and g tiny: ε decides the step */
        g[i] = i % 5 ? 0.1f * urand(&s) : 1e-9f * urand(&s);
    }
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, step = 1e-3f / 0.19f, rbc2 = 1.0f / sqrtf(0.002f);
    eng__adam_pass_t c = {b1, b2, eps, step, rbc2, p, m, v, g};
    k->adam(&c, 0, 0, 7);   /* a short range: tail only for every width */
    k->adam(&c, 0, 7, NA);  /* an unaligned start */
    for (int i = 0; i < NA; i++) { /* torch.optim.Adam in the kernel's operation order */
        float mi = b1 * m0[i] + (1.0f - b1) * g[i], vi = b2 * v0[i] + (1.0f - b2) * g[i] * g[i];
        float pi = p0[i] - step * mi / (sqrtf(vi) * rbc2 + eps);
        cr_assert_eq(m[i], mi, "%s: m[%d]", name, i);
        cr_assert_eq(v[i], vi, "%s: v[%d]", name, i);
        cr_assert_eq(p[i], pi, "%s: p[%d] = %.9g, want %.9g", name, i, p[i], pi);
    }
}

Test(qkern_sse2, lrq) { check_lrq("sse2", 0); }
Test(qkern_sse2, flexround) { check_lrq("sse2", 1); }
Test(qkern_sse2, adam) { check_adam("sse2"); }
Test(qkern_avx2, lrq) { check_lrq("avx2", 0); }
Test(qkern_avx2, flexround) { check_lrq("avx2", 1); }
Test(qkern_avx2, adam) { check_adam("avx2"); }
Test(qkern_avx512, lrq) { check_lrq("avx512f", 0); }
Test(qkern_avx512, flexround) { check_lrq("avx512f", 1); }
Test(qkern_avx512, adam) { check_adam("avx512f"); }
