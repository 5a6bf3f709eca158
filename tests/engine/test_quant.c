/* test_quant.c — RTN / init (docs/algorithms.md: "Quantizer grid", "RTN", "MSE init") against closed forms,
 * a double-precision reference, and a brute-force mse grid search. */
#include <criterion/criterion.h>
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "eng_quant.h"

static eng_qlinear_t rtn(const float *W, int m, int n, int bits, int gs, int sym, eng_qinit_t init)
{
    eng_qcfg_t cfg = {.bits = bits, .group_size = gs, .symmetric = sym, .init = init};
    eng_qlinear_t ql;
    lrq_err_t err;
    cr_assert_eq(eng_qlinear_init(&ql, m, n, &cfg, &err), 0, "%s", err.msg);
    eng_quant_rtn(NULL, W, &cfg, &ql);
    return ql;
}

/* Hand-computed rows: codes exact, scale/Ŵ to 1e-6 relative. */
static void check_hand(const float *W, int n, int bits, int gs, int sym, const uint8_t *q,
                       const double *scale, const double *zero, const double *What)
{
    eng_qlinear_t ql = rtn(W, 1, n, bits, gs, sym, ENG_INIT_MINMAX);
    float out[16];
    eng_qlinear_dequant(&ql, out);
    for (int g = 0; g < ql.G; g++) {
        cr_expect_float_eq(ql.scale[g], scale[g], 1e-6 * scale[g], "scale[%d] %g vs %g", g, ql.scale[g], scale[g]);
        cr_expect_eq(ql.zero[g], (float)zero[g], "zero[%d] %g vs %g", g, ql.zero[g], zero[g]);
    }
    for (int j = 0; j < n; j++) {
        cr_expect_eq(ql.q[j], q[j], "bits %d q[%d] = %d, want %d", bits, j, ql.q[j], q[j]);
        cr_expect(fabs(out[j] - What[j]) <= 1e-6 * fmax(1, fabs(What[j])), "What[%d] %g vs %g", j, out[j], What[j]);
    }
    eng_qlinear_close(&ql);
}

Test(rtn, asym_2bit_hand)
{
    /* x_min −1, x_max 3: s = 4/3, z = −rint(−0.75) = 1 */
    const float W[] = { -1.0f, 0.2f, 0.5f, 3.0f };
    const uint8_t q[] = { 0, 1, 1, 3 };
    const double s[] = { 4.0 / 3 }, z[] = { 1 }, Wh[] = { -4.0 / 3, 0, 0, 8.0 / 3 };
    check_hand(W, 4, 2, 0, 0, q, s, z, Wh);
}

Test(rtn, asym_3bit_hand)
{
    /* range 1.4, s = 0.2, z = −rint(−3.1) = 3; w/s = −3.1, −1, 1.65, 3.9 */
    const float W[] = { -0.62f, -0.2f, 0.33f, 0.78f };
    const uint8_t q[] = { 0, 2, 5, 7 };
    const double s[] = { 0.2 }, z[] = { 3 }, Wh[] = { -0.6, -0.2, 0.4, 0.8 };
    check_hand(W, 4, 3, 0, 0, q, s, z, Wh);
}

Test(rtn, asym_4bit_positive_row_hand)
{
    /* x_min clamps to 0: s = 1.5/15 = 0.1, z = 0 */
    const float W[] = { 0.1f, 0.4f, 1.5f, 0.26f };
    const uint8_t q[] = { 1, 4, 15, 3 };
    const double s[] = { 0.1 }, z[] = { 0 }, Wh[] = { 0.1, 0.4, 1.5, 0.3 };
    check_hand(W, 4, 4, 0, 0, q, s, z, Wh);
}

Test(rtn, asym_8bit_hand)
{
    /* range 2.55, s = 0.01, z = 100 */
    const float W[] = { -1.0f, 0.0f, 0.5f, 1.55f, 0.123f };
    const uint8_t q[] = { 0, 100, 150, 255, 112 };
    const double s[] = { 0.01 }, z[] = { 100 }, Wh[] = { -1, 0, 0.5, 1.55, 0.12 };
    check_hand(W, 5, 8, 0, 0, q, s, z, Wh);
}

Test(rtn, sym_hand)
{
    { /* 3 bits: z = 4, s = max|w|/3 = 2/3; w/s = −3, −1.35, 0.75, 1.95 */
        const float W[] = { -2.0f, -0.9f, 0.5f, 1.3f };
        const uint8_t q[] = { 1, 3, 5, 6 };
        const double s[] = { 2.0 / 3 }, z[] = { 4 }, Wh[] = { -2, -2.0 / 3, 2.0 / 3, 4.0 / 3 };
        check_hand(W, 4, 3, 0, 1, q, s, z, Wh);
    }
    { /* 2 bits: z = 2, s = max|w|/1 = 1 */
        const float W[] = { 0.3f, -0.8f, 1.0f, -1.0f };
        const uint8_t q[] = { 2, 1, 3, 1 };
        const double s[] = { 1 }, z[] = { 2 }, Wh[] = { 0, -1, 1, -1 };
        check_hand(W, 4, 2, 0, 1, q, s, z, Wh);
    }
    { /* 4 bits: z = 8, s = 1.4/7 = 0.2; +max reaches code 15 exactly */
        const float W[] = { 1.4f, -0.35f, 0.0f, -1.25f };
        const uint8_t q[] = { 15, 6, 8, 2 };
        const double s[] = { 0.2 }, z[] = { 8 }, Wh[] = { 1.4, -0.4, 0, -1.2 };
        check_hand(W, 4, 4, 0, 1, q, s, z, Wh);
    }
}

Test(rtn, groups_hand)
{
    /* gs 4, 2 bits: group 0 as asym_2bit_hand, group 1 x_min 0, s = 0.3, z = 0 */
    const float W[] = { -1.0f, 0.2f, 0.5f, 3.0f, 0.3f, 0.6f, 0.9f, 0.0f };
    const uint8_t q[] = { 0, 1, 1, 3, 1, 2, 3, 0 };
    const double s[] = { 4.0 / 3, 0.3 }, z[] = { 1, 0 }, Wh[] = { -4.0 / 3, 0, 0, 8.0 / 3, 0.3, 0.6, 0.9, 0 };
    check_hand(W, 8, 2, 4, 0, q, s, z, Wh);
}

Test(rtn, partial_group_hand)
{
    /* gs 4, n 10: groups of 4, 4, 2. Groups 0/1 as groups_hand; the 2-column tail {−0.3, 0.6}:
     * s = 0.9/3 = 0.3, z = −rint(−1) = 1, w/s = −1, 2 → q = 0, 3. If the tail were treated as a
     * full group it would read past the row (m = 1: ASan) or see other columns. */
    const float W[] = { -1.0f, 0.2f, 0.5f, 3.0f, 0.3f, 0.6f, 0.9f, 0.0f, -0.3f, 0.6f };
    const uint8_t q[] = { 0, 1, 1, 3, 1, 2, 3, 0, 0, 3 };
    const double s[] = { 4.0 / 3, 0.3, 0.3 }, z[] = { 1, 0, 1 };
    const double Wh[] = { -4.0 / 3, 0, 0, 8.0 / 3, 0.3, 0.6, 0.9, 0, -0.3, 0.6 };
    check_hand(W, 10, 2, 4, 0, q, s, z, Wh);
    { /* symmetric 3 bits, gs 3, n 4: {1.1, −2, 0.5 | −0.9}: s = 2/3 (w/s = 1.65, −3, 0.75), then
       * 0.9/3 = 0.3 (w/s = −3); z = 4 */
        const float W2[] = { 1.1f, -2.0f, 0.5f, -0.9f };
        const uint8_t q2[] = { 6, 1, 5, 1 };
        const double s2[] = { 2.0 / 3, 0.3 }, z2[] = { 4, 4 }, Wh2[] = { 4.0 / 3, -2, 2.0 / 3, -0.9 };
        check_hand(W2, 4, 3, 3, 1, q2, s2, z2, Wh2);
    }
}

Test(rtn, ngroups_closed_form)
{
    cr_assert_eq(eng_quant_ngroups(172, 32), 6); /* stories260K down_proj: 5·32 + 12 */
    cr_assert_eq(eng_quant_ngroups(20, 8), 3);
    cr_assert_eq(eng_quant_ngroups(64, 32), 2);
    cr_assert_eq(eng_quant_ngroups(64, 0), 1);
    cr_assert_eq(eng_quant_ngroups(64, 64), 1);
    cr_assert_eq(eng_quant_ngroups(64, 128), 1);
    cr_assert_eq(eng_quant_ngroups(1, 1), 1);
    cr_assert_eq(eng_quant_ngroups(2147483647, 2147483647), 1);
    cr_assert_eq(eng_quant_ngroups(2147483647, 2), 1073741824);
    cr_assert_eq(eng_quant_ngroups(0, 32), 0);
    cr_assert_eq(eng_quant_ngroups(64, -1), 0);
}

/* A partial-group quantizer must equal, group by group, per-channel quantization of that group's
 * columns taken as their own matrix (same init, same bits): scales, zeros and codes bit for bit. */
Test(rtn, groups_equal_per_channel_on_column_blocks)
{
    enum { m = 5 };
    static const int shapes[][2] = { { 172, 32 }, { 20, 8 }, { 64, 24 }, { 64, 128 }, { 37, 36 } };
    float W[m * 172], Wb[m * 172];
    uint64_t st = 17;
    for (int i = 0; i < m * 172; i++) W[i] = (float)(0.02 * ((eng_rng_next(&st) >> 11) * 0x1p-53 - 0.5));
    W[3] = 0.4f;                 /* outliers in the first and the last group */
    W[m * 172 - 2] = -0.3f;
    int checked = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int n = shapes[si][0], gs = shapes[si][1];
        for (int bits = 2; bits <= 8; bits += 2)
            for (int sym = 0; sym <= 1; sym++)
                for (int init = 0; init <= 1; init++) {
                    eng_qlinear_t a = rtn(W, m, n, bits, gs, sym, init);
                    cr_assert_eq(a.G, (n + gs - 1) / gs);
                    for (int g = 0; g < a.G; g++) {
                        int j0 = g * gs, gl = n - j0 < gs ? n - j0 : gs;
                        for (int i = 0; i < m; i++) memcpy(Wb + i * gl, W + i * n + j0, gl * sizeof(float));
                        eng_qlinear_t b = rtn(Wb, m, gl, bits, 0, sym, init);
                        for (int i = 0; i < m; i++) {
                            cr_assert_eq(a.scale[i * a.G + g], b.scale[i], "n %d gs %d bits %d g %d", n, gs, bits, g);
                            cr_assert_eq(a.zero[i * a.G + g], b.zero[i]);
                            cr_assert(memcmp(a.q + i * n + j0, b.q + i * gl, gl) == 0, "codes n %d gs %d g %d", n, gs, g);
                        }
                        eng_qlinear_close(&b);
                        checked++;
                    }
                    eng_qlinear_close(&a);
                }
    }
    cr_assert_eq(checked, 4 * 2 * 2 * (6 + 3 + 3 + 1 + 2));
}

/* group_size > n is one (partial) group: identical to per-channel. */
Test(rtn, group_larger_than_width_is_per_channel)
{
    enum { m = 4, n = 48 };
    float W[m * n], A[m * n], B[m * n];
    uint64_t st = 3;
    for (int i = 0; i < m * n; i++) W[i] = (float)((eng_rng_next(&st) >> 11) * 0x1p-53 - 0.3);
    for (int init = 0; init <= 1; init++) {
        eng_qlinear_t a = rtn(W, m, n, 3, 64, 0, init), b = rtn(W, m, n, 3, 0, 0, init);
        cr_assert(a.G == 1 && a.gs == 64 && b.gs == n);
        eng_qlinear_dequant(&a, A);
        eng_qlinear_dequant(&b, B);
        cr_assert(memcmp(A, B, sizeof A) == 0 && memcmp(a.q, b.q, m * n) == 0);
        cr_assert(memcmp(a.scale, b.scale, m * sizeof(float)) == 0);
        eng_qlinear_close(&a);
        eng_qlinear_close(&b);
    }
}

/* ---- double-precision reference of minmax RTN over random rows, bits 2..8 ---- */

static double gauss(uint64_t *s)
{
    double u1 = (eng_rng_next(s) >> 11) * 0x1p-53 + 1e-300, u2 = (eng_rng_next(s) >> 11) * 0x1p-53;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static void fill(float *W, size_t n, uint64_t seed, int outliers)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) W[i] = (float)(0.02 * gauss(&s));
    for (int o = 0; o < outliers; o++) W[eng_rng_next(&s) % n] = (float)(0.2 * gauss(&s));
}

Test(rtn, reference_sweep_bits_2_to_8)
{
    enum { m = 5, n = 64 };
    float W[m * n], Wh[m * n];
    fill(W, m * n, 7, 6);
    for (int bits = 2; bits <= 8; bits++)
        for (int sym = 0; sym <= 1; sym++)
            for (int gsi = 0; gsi < 4; gsi++) {
                static const int gsv[] = { 0, 16, 24, 28 }; /* 24, 28: partial last group (16, 8) */
                int gs = gsi ? gsv[gsi] : n, M = (1 << bits) - 1, Z = 1 << (bits - 1);
                eng_qlinear_t ql = rtn(W, m, n, bits, gsv[gsi], sym, ENG_INIT_MINMAX);
                cr_assert_eq(ql.G, (n + gs - 1) / gs);
                eng_qlinear_dequant(&ql, Wh);
                int checked = 0;
                for (int i = 0; i < m; i++)
                    for (int g = 0; g < ql.G; g++) {
                        const float *w = W + i * n + g * gs;
                        int gl = n - g * gs < gs ? n - g * gs : gs;
                        double mn = 0, mx = 0, am = 0;
                        for (int j = 0; j < gl; j++) { mn = fmin(mn, w[j]); mx = fmax(mx, w[j]); am = fmax(am, fabs(w[j])); }
                        double s = sym ? am / (Z - 1) : (mx - mn) / M;
                        double z = sym ? Z : fmin(fmax(-nearbyint(mn / s), 0), M);
                        int gi = i * ql.G + g;
                        cr_assert(fabs(ql.scale[gi] - s) <= 1e-6 * s, "bits %d sym %d scale %g vs %g", bits, sym, ql.scale[gi], s);
                        cr_assert_eq(ql.zero[gi], (float)z);
                        for (int j = 0; j < gl; j++) {
                            double u = w[j] / s;
                            if (fabs(u - floor(u) - 0.5) < 1e-4) continue; /* float/double may split a tie */
                            double qq = fmin(fmax(nearbyint(u) + z, 0), M);
                            size_t e = (size_t)i * n + g * gs + j;
                            cr_assert_eq(ql.q[e], (uint8_t)qq, "bits %d sym %d gs %d elem %zu: %d vs %g", bits, sym, gs, e, ql.q[e], qq);
                            cr_assert(fabs(Wh[e] - s * (qq - z)) <= 1e-6 * s * M);
                            checked++;
                        }
                    }
                cr_assert(checked > m * n * 9 / 10);
                eng_qlinear_close(&ql);
            }
}

/* ---- degenerate rows ---- */

/* scales finite and positive, zeros and codes in range; Ŵ finite except rows ≥ skip_from */
static void check_finite(const eng_qlinear_t *ql, const float *Wh, int skip_from)
{
    for (int i = 0; i < ql->m * ql->G; i++) {
        cr_assert(isfinite(ql->scale[i]) && ql->scale[i] > 0, "scale %g", ql->scale[i]);
        cr_assert(ql->zero[i] >= 0 && ql->zero[i] <= (1 << ql->bits) - 1);
    }
    for (int i = 0; i < ql->m * ql->n; i++) {
        cr_assert(ql->q[i] <= (1 << ql->bits) - 1);
        if (i < skip_from * ql->n) cr_assert(isfinite(Wh[i]), "What[%d] = %g", i, Wh[i]);
    }
}

Test(rtn, degenerate_rows)
{
    enum { n = 8 };
    const float rows[][n] = {
        { 0, 0, 0, 0, 0, 0, 0, 0 },                           /* all zero */
        { 0.7f, 0.7f, 0.7f, 0.7f, 0.7f, 0.7f, 0.7f, 0.7f },   /* constant > 0 */
        { -0.7f, -0.7f, -0.7f, -0.7f, -0.7f, -0.7f, -0.7f, -0.7f },
        { 1e38f, -1e38f, 1, 0, -1, 5e37f, -2e37f, 5 },         /* ±huge */
        { 1e-30f, -2e-30f, 3e-31f, 0, 1e-38f, -1e-40f, 0, 0 }, /* tiny, denormal */
        { FLT_MAX, -FLT_MAX, 0, 0, 1, -1, 0, 0 },              /* ±max representable: Ŵ may overflow */
    };
    enum { R = sizeof rows / sizeof rows[0] };
    float Wh[R * n];
    for (int bits = 2; bits <= 8; bits++)
        for (int sym = 0; sym <= 1; sym++)
            for (int init = 0; init <= 1; init++)
                for (int gs = 0; gs <= 4; gs += gs == 0 ? 3 : 1) { /* 0, 3 (groups 3, 3, 2), 4 */
                    eng_qlinear_t ql = rtn(&rows[0][0], R, n, bits, gs, sym, init);
                    eng_qlinear_dequant(&ql, Wh);
                    check_finite(&ql, Wh, R - 1);
                    for (int j = 0; j < n; j++) {
                        cr_assert_eq(Wh[j], 0.0f);                       /* zero row → 0 exactly */
                        cr_assert(fabs(Wh[4 * n + j]) < 1e-7);            /* tiny row → ~0 */
                        if (!sym) { /* constant rows are reproduced (asym: the constant is the range end) */
                            cr_assert(fabs(Wh[n + j] - 0.7) < 1e-6, "%g", Wh[n + j]);
                            cr_assert(fabs(Wh[2 * n + j] + 0.7) < 1e-6);
                        }
                    }
                    if (init == ENG_INIT_MINMAX) { /* ±huge: the extremes survive within one step */
                        double s = ql.scale[3 * ql.G];
                        cr_assert(fabs(Wh[3 * n] - 1e38) <= s && fabs(Wh[3 * n + 1] + 1e38) <= s,
                                  "bits %d sym %d: %g %g (s %g)", bits, sym, Wh[3 * n], Wh[3 * n + 1], s);
                    }
                    eng_qlinear_close(&ql);
                }
}

Test(rtn, nonfinite_input_does_not_crash)
{
    enum { n = 16 };
    float W[2 * n], Wh[2 * n];
    fill(W, 2 * n, 3, 0);
    W[3] = NAN;
    W[n + 5] = INFINITY;
    W[n + 6] = -INFINITY;
    for (int init = 0; init <= 1; init++)
        for (int sym = 0; sym <= 1; sym++) {
            eng_qlinear_t ql = rtn(W, 2, n, 4, 0, sym, init);
            eng_qlinear_dequant(&ql, Wh);
            for (int i = 0; i < 2; i++) cr_assert(ql.scale[i] > 0 && isfinite(ql.scale[i]));
            for (int i = 0; i < 2 * n; i++) cr_assert(ql.q[i] <= 15);
            eng_qlinear_close(&ql);
        }
}

/* ---- mse init: brute force over the official grid, in double ---- */

static double score24(const float *w, int n, double s, double z, int M)
{
    double t = 0;
    for (int j = 0; j < n; j++) {
        double q = fmin(fmax(nearbyint(w[j] / s) + z, 0), M);
        t += pow(fabs(w[j] - s * (q - z)), 2.4);
    }
    return t;
}

static double brute_best(const float *w, int n, int M, int sym)
{
    double mn = 0, mx = 0, am = 0;
    for (int j = 0; j < n; j++) { mn = fmin(mn, w[j]); mx = fmax(mx, w[j]); am = fmax(am, fabs(w[j])); }
    int Z = (M + 1) / 2;
    double best = INFINITY;
    for (int i = 1; i <= 100; i++) {
        double D = sym ? am * i / 100 / (Z - 1) : (mx - mn) * i / 100 / M;
        for (int zp = sym ? Z : 0; zp <= (sym ? Z : M); zp++) best = fmin(best, score24(w, n, D, zp, M));
    }
    return best;
}

Test(mse, matches_brute_force_and_beats_minmax)
{
    enum { m = 6, n = 96 };
    float W[m * n];
    int cases = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        fill(W, m * n, seed, (int)seed * 3);
        W[5] = 0.5f; /* one lonely outlier, so clipping pays off */
        for (int bits = 2; bits <= 8; bits++) {
            if (bits >= 5 && bits <= 7 && seed > 1) continue;
            int M = (1 << bits) - 1;
            for (int sym = 0; sym <= 1; sym++)
                for (int gs = 0; gs <= 40; gs += gs == 32 ? 8 : 32) { /* 0, 32, 40 (40, 40, 16) */
                    eng_qlinear_t a = rtn(W, m, n, bits, gs, sym, ENG_INIT_MSE);
                    eng_qlinear_t b = rtn(W, m, n, bits, gs, sym, ENG_INIT_MINMAX);
                    int gsz = gs ? gs : n;
                    int ng = bits >= 6 ? 2 * a.G : m * a.G; /* brute force at 8 bits is 25600 candidates */
                    for (int i = 0; i < ng; i++) {
                        int g = i % a.G, g_n = n - g * gsz < gsz ? n - g * gsz : gsz;
                        const float *w = W + (size_t)(i / a.G) * n + (size_t)g * gsz;
                        double sm = score24(w, g_n, a.scale[i], a.zero[i], M);
                        double sb = score24(w, g_n, b.scale[i], b.zero[i], M);
                        double bf = brute_best(w, g_n, M, sym);
                        cr_assert(sm <= sb * (1 + 1e-5), "bits %d sym %d: mse %g > minmax %g", bits, sym, sm, sb);
                        cr_assert(sm <= bf * (1 + 1e-4), "bits %d sym %d gs %d row %d: mse %.9g vs brute %.9g", bits, sym, gs, i, sm, bf);
                        if (sym) cr_assert_eq(a.zero[i], (float)((M + 1) / 2));
                        cases++;
                    }
                    eng_qlinear_close(&a);
                    eng_qlinear_close(&b);
                }
        }
    }
    cr_assert(cases > 80);
}

/* stories260K's down_proj shape: in_features 172 = 5·32 + 12; the 12-column tail is searched alone. */
Test(mse, partial_group_matches_brute_force)
{
    enum { m = 3, n = 172, gs = 32 };
    float W[m * n];
    fill(W, m * n, 21, 4);
    W[n - 3] = 0.3f; /* outlier in row 0's tail group */
    for (int bits = 2; bits <= 4; bits++)
        for (int sym = 0; sym <= 1; sym++) {
            int M = (1 << bits) - 1;
            eng_qlinear_t a = rtn(W, m, n, bits, gs, sym, ENG_INIT_MSE);
            cr_assert_eq(a.G, 6);
            for (int i = 0; i < m; i++)
                for (int g = 0; g < a.G; g++) {
                    int gl = g < 5 ? gs : 12;
                    const float *w = W + (size_t)i * n + g * gs;
                    double sm = score24(w, gl, a.scale[i * a.G + g], a.zero[i * a.G + g], M);
                    double bf = brute_best(w, gl, M, sym);
                    cr_assert(sm <= bf * (1 + 1e-4), "bits %d sym %d row %d g %d: mse %.9g vs brute %.9g",
                              bits, sym, i, g, sm, bf);
                }
            eng_qlinear_close(&a);
        }
}

Test(mse, clips_a_gaussian_row)
{
    /* 4-bit, Gaussian row: min/max is set by the tails; the |e|^2.4 optimum clips them */
    enum { n = 4096 };
    float *W = malloc(sizeof(float) * n);
    cr_assert(W);
    fill(W, n, 11, 0);
    eng_qlinear_t a = rtn(W, 1, n, 4, 0, 0, ENG_INIT_MSE), b = rtn(W, 1, n, 4, 0, 0, ENG_INIT_MINMAX);
    cr_assert(a.scale[0] < 0.9f * b.scale[0], "mse scale %g minmax %g", a.scale[0], b.scale[0]);
    double sa = score24(W, n, a.scale[0], a.zero[0], 15), sb = score24(W, n, b.scale[0], b.zero[0], 15);
    cr_assert(sa < 0.9 * sb, "score mse %g minmax %g", sa, sb);
    eng_qlinear_close(&a);
    eng_qlinear_close(&b);
    free(W);
}

Test(mse, independent_of_thread_count)
{
    enum { m = 48, n = 1024 };
    float *W = malloc(sizeof(float) * m * n);
    cr_assert(W);
    fill(W, (size_t)m * n, 5, 40);
    float s1[m * 8], z1[m * 8], s2[m * 8], z2[m * 8];
    for (int gs = 128; gs <= 136; gs += 8) { /* 136: 7 full groups + a 72-column tail */
        eng_qcfg_t cfg = {.bits = 4, .group_size = gs, .symmetric = 0, .init = ENG_INIT_MSE};
        eng_pool_t *pool = eng_pool_new(3);
        cr_assert_not_null(pool);
        eng_quant_init_params(NULL, W, m, n, &cfg, s1, z1);
        eng_quant_init_params(pool, W, m, n, &cfg, s2, z2);
        eng_pool_free(pool);
        /* exact: the pool splits whole rows, each row's search runs as on one thread */
        cr_assert(memcmp(s1, s2, sizeof s1) == 0 && memcmp(z1, z2, sizeof z1) == 0);
    }
    free(W);
}

/* ---- misc ---- */

Test(rtn, rel_error_closed_form)
{
    const float W[] = { 3, 4 }, Wh[] = { 3, 0 }, Z[] = { 0, 0 };
    cr_assert_float_eq(eng_quant_rel_error(W, Wh, 2), 0.8, 1e-12);
    cr_assert_float_eq(eng_quant_rel_error(W, W, 2), 0.0, 0);
    cr_assert_float_eq(eng_quant_rel_error(Z, Wh, 2), 3.0, 1e-12); /* ‖W‖ = 0 → absolute */
}

Test(rtn, qlinear_init_validates)
{
    eng_qlinear_t ql;
    lrq_err_t err;
    eng_qcfg_t c1 = {.bits = 1, .group_size = 0, .symmetric = 0, .init = 0}, c9 = {.bits = 9, .group_size = 0, .symmetric = 0, .init = 0}, cg = {.bits = 4, .group_size = -16, .symmetric = 0, .init = 0}, ok = {.bits = 4, .group_size = 32, .symmetric = 0, .init = 0};
    eng_qcfg_t part = {.bits = 4, .group_size = 48, .symmetric = 0, .init = 0}, wide = {.bits = 4, .group_size = 128, .symmetric = 0, .init = 0};
    cr_assert_eq(eng_qlinear_init(&ql, 4, 64, &c1, &err), LRQ_ESPEC);
    cr_assert_eq(eng_qlinear_init(&ql, 4, 64, &c9, &err), LRQ_ESPEC);
    cr_assert_eq(eng_qlinear_init(&ql, 4, 64, &cg, &err), LRQ_ESPEC);
    cr_assert(strstr(err.msg, "group_size") != NULL, "%s", err.msg);
    cr_assert_eq(eng_qlinear_init(&ql, 4, 64, &part, &err), 0, "%s", err.msg); /* 48 + 16 */
    cr_assert(ql.G == 2 && ql.gs == 48);
    eng_qlinear_close(&ql);
    cr_assert_eq(eng_qlinear_init(&ql, 4, 64, &wide, &err), 0, "%s", err.msg); /* one partial group */
    cr_assert(ql.G == 1 && ql.gs == 128);
    eng_qlinear_close(&ql);
    cr_assert_eq(eng_qlinear_init(&ql, 0, 64, &ok, &err), LRQ_ESPEC);
    cr_assert_eq(eng_qlinear_init(&ql, 4, 64, &ok, &err), 0);
    cr_assert(ql.G == 2 && ql.gs == 32);
    eng_qlinear_close(&ql);
}
