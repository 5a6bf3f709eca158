/* lrq-bench gptq | svd — GPTQ and truncated-SVD costs on 7B-shaped SYNTHETIC weights
 * (docs/algorithms.md, GPTQ and LQER and L²QER), next to the machine's own GEMM rates measured
 * in the same run.
 *
 *   lrq-bench gptq [--dim 4096] [--ffn 11008] [--tokens 2048] [--threads 2] [--linears 7] [--first 0] [--bits 4]
 *       one Llama-2-7B-shaped block: q, k, v, o (4096×4096), gate, up (11008×4096), down (4096×11008);
 *       per linear: statistics H = XᵀX of `tokens` synthetic inputs (dsyrk), GPTQ (damp 0.01, block 128,
 *       per-channel, minmax init); time, peak RSS, and the time sgemm / dgemm would need for the
 *       FLOPs GPTQ does: 2n³/3 (dpotrf + dtrtri) + m·n² (lazy updates) + m·n·128 (in-batch).
 *       Also spotrf+strtri against dpotrf+dtrtri on the same H (why the factorisation is double).
 *   lrq-bench svd [--m 4096] [--n 4096] [--rank 32]
 *       sgesdd of the whole matrix against the randomized range finder (rank + 10 columns, 2 power
 *       iterations), on a quantization residual of synthetic weights (flat spectrum, the LQER case):
 *       time and ‖A − A_k‖_F of both. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <cblas.h>
#include <lapacke.h>
#include "eng_gptq.h"
#include "eng_lqer.h"
#include "eng_pool.h"

int bench_methods(int argc, char **argv);

static double bm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *bm_randn(size_t n, uint64_t *rng, float std)
{
    float *p = malloc(n * sizeof *p);
    if (!p) { fprintf(stderr, "lrq-bench: out of memory (%zu floats)\n", n); exit(1); }
    for (size_t i = 0; i < n; i += 2) {
        float u1 = eng_rng_uniform(rng) + 1e-7f, u2 = eng_rng_uniform(rng), r = sqrtf(-2.f * logf(u1)) * std;
        p[i] = r * cosf(6.2831853f * u2);
        if (i + 1 < n) p[i + 1] = r * sinf(6.2831853f * u2);
    }
    return p;
}

static double bm_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

/* GFLOP/s of one n³ product (best of 3), single precision or double. */
static double bm_gemm_rate(int n, int dbl)
{
    uint64_t rng = 9;
    float *a = bm_randn((size_t)n * n, &rng, 1), *b = bm_randn((size_t)n * n, &rng, 1), *c = calloc((size_t)n * n, 4);
    double *ad = NULL, *bd = NULL, *cd = NULL, best = 1e30;
    if (dbl) {
        ad = malloc((size_t)n * n * 8); bd = malloc((size_t)n * n * 8); cd = calloc((size_t)n * n, 8);
        for (size_t i = 0; i < (size_t)n * n; i++) { ad[i] = a[i]; bd[i] = b[i]; }
    }
    for (int r = 0; r < 4; r++) {
        double t = bm_now();
        if (dbl) cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, ad, n, bd, n, 0, cd, n);
        else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        t = bm_now() - t;
        if (r && t < best) best = t; /* r = 0 warms OpenBLAS's threads up */
    }
    free(a); free(b); free(c); free(ad); free(bd); free(cd);
    return 2.0 * n * n * n / best / 1e9;
}

static int bm_gptq(int argc, char **argv)
{
    int D = 4096, F = 11008, N = 2048, threads = 2, nlin = 7, bits = 4, first = 0;
    static const struct option opts[] = {{"dim", 1, 0, 'd'}, {"ffn", 1, 0, 'f'}, {"tokens", 1, 0, 'n'},
                                         {"threads", 1, 0, 't'}, {"linears", 1, 0, 'l'}, {"bits", 1, 0, 'b'},
                                         {"first", 1, 0, 'F'}, {0, 0, 0, 0}};
    int o;
    optind = 2;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'd': D = atoi(optarg); break;
        case 'f': F = atoi(optarg); break;
        case 'n': N = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'l': nlin = atoi(optarg); break;
        case 'b': bits = atoi(optarg); break;
        case 'F': first = atoi(optarg); break;
        default: return 64;
        }
    }
    if (first < 0 || first > 6) { fprintf(stderr, "lrq-bench: --first is 0 (q) … 6 (down)\n"); return 64; }
    if (D < 16 || F < 16 || N < 1 || nlin < 1 || nlin > 7 || threads < 1) { fprintf(stderr, "lrq-bench: bad options\n"); return 64; }
    printf("GPTQ on a 7B-shaped block: weights and inputs are SYNTHETIC (Gaussian; every 7th input channel ×4)\n");
    printf("dim %d, ffn %d, %d calibration tokens, W%d per-channel, damp 0.01, block 128, %d threads\n", D, F, N, bits, threads);
    openblas_set_num_threads(threads);
    double srate = bm_gemm_rate(2048, 0), drate = bm_gemm_rate(2048, 1);
    printf("sgemm %.1f GFLOP/s, dgemm %.1f GFLOP/s (2048³, OpenBLAS %d threads)\n", srate, drate, threads);
    openblas_set_num_threads(1);
    eng_pool_t *pool = eng_pool_new(threads);
    const int shp[7][2] = {{D, D}, {D, D}, {D, D}, {D, D}, {F, D}, {F, D}, {D, F}};
    const char *nm[7] = {"q", "k", "v", "o", "gate", "up", "down"};
    double tot_t = 0, tot_fl = 0, tot_st = 0;
    uint64_t rng = 1;
    for (int i = first; i < first + nlin && i < 7; i++) {
        int m = shp[i][0], n = shp[i][1];
        float *W = bm_randn((size_t)m * n, &rng, 0.02f), *X = bm_randn((size_t)N * n, &rng, 1);
        for (int t = 0; t < N; t++) for (int j = 0; j < n; j += 7) X[(size_t)t * n + j] *= 4;
        eng_hstat_t st;
        lrq_err_t err;
        if (eng_hstat_init(&st, n, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
        double t0 = bm_now();
        eng_hstat_add(&st, X, N);
        eng_hstat_finish(&st);
        double ts = bm_now() - t0;
        free(X);
        eng_qcfg_t cfg = {.bits = bits, .group_size = 0, .symmetric = 0, .init = ENG_INIT_MINMAX};
        eng_qlinear_t ql;
        if (eng_qlinear_init(&ql, m, n, &cfg, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
        eng_gptq_cfg_t g = {0.01, 128, 0, 0};
        t0 = bm_now();
        if (eng_gptq_quantize(pool, W, m, n, st.H, &cfg, &g, &ql, NULL, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
        double tg = bm_now() - t0, fl = 2.0 * n * n * (double)n / 3 + (double)m * n * n + (double)m * n * 128;
        printf("%-5s %5dx%-5d  H %6.2f s   GPTQ %7.2f s   its FLOPs: sgemm %6.2f s, dgemm %6.2f s   (GPTQ/dgemm %.1f×)   peak RSS %.0f MiB\n",
               nm[i], m, n, ts, tg, fl / srate / 1e9, fl / drate / 1e9, tg / (fl / drate / 1e9), bm_rss_mb());
        fflush(stdout);
        tot_t += tg; tot_fl += fl; tot_st += ts;
        if (i == first) { /* single vs double factorisation of the same H (n = dim) */
            double *Hd = malloc((size_t)n * n * 8), mean = 0;
            float *Hs = malloc((size_t)n * n * 4);
            for (int k = 0; k < n; k++) mean += st.H[(size_t)k * n + k];
            for (size_t k = 0; k < (size_t)n * n; k++) Hd[k] = st.H[k];
            for (int k = 0; k < n; k++) Hd[(size_t)k * n + k] += 0.01 * mean / n;
            for (size_t k = 0; k < (size_t)n * n; k++) Hs[k] = (float)Hd[k];
            openblas_set_num_threads(threads);
            t0 = bm_now();
            int is = LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'L', n, Hs, n);
            if (!is) is = LAPACKE_strtri(LAPACK_ROW_MAJOR, 'L', 'N', n, Hs, n);
            double tsf = bm_now() - t0;
            t0 = bm_now();
            int id = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', n, Hd, n);
            if (!id) id = LAPACKE_dtrtri(LAPACK_ROW_MAJOR, 'L', 'N', n, Hd, n);
            double tdf = bm_now() - t0;
            openblas_set_num_threads(1);
            printf("      Cholesky + triangular inverse of H + λI (n %d, OpenBLAS %d threads): spotrf+strtri %.2f s (info %d), "
                   "dpotrf+dtrtri %.2f s (info %d)\n", n, threads, tsf, is, tdf, id);
            free(Hd); free(Hs);
        }
        eng_qlinear_close(&ql);
        eng_hstat_close(&st);
        free(W);
    }
    printf("block: statistics %.1f s, GPTQ %.1f s; its FLOPs at sgemm speed %.1f s, at dgemm speed %.1f s; peak RSS %.0f MiB\n",
           tot_st, tot_t, tot_fl / srate / 1e9, tot_fl / drate / 1e9, bm_rss_mb());
    eng_pool_free(pool);
    return 0;
}

static int bm_svd(int argc, char **argv)
{
    int m = 4096, n = 4096, k = 32;
    static const struct option opts[] = {{"m", 1, 0, 'm'}, {"n", 1, 0, 'n'}, {"rank", 1, 0, 'r'}, {0, 0, 0, 0}};
    int o;
    optind = 2;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'm': m = atoi(optarg); break;
        case 'n': n = atoi(optarg); break;
        case 'r': k = atoi(optarg); break;
        default: return 64;
        }
    }
    if (m < 16 || n < 16 || k < 1 || k + 10 >= (m < n ? m : n)) { fprintf(stderr, "lrq-bench: bad options\n"); return 64; }
    printf("truncated SVD of a W4 RTN residual of SYNTHETIC Gaussian weights, %dx%d, rank %d\n", m, n, k);
    uint64_t rng = 3;
    float *W = bm_randn((size_t)m * n, &rng, 0.02f), *E = malloc((size_t)m * n * 4), *D = malloc((size_t)m * n * 4);
    eng_qcfg_t cfg = {.bits = 4, .group_size = 0, .symmetric = 0, .init = ENG_INIT_MINMAX};
    eng_qlinear_t ql;
    lrq_err_t err;
    if (eng_qlinear_init(&ql, m, n, &cfg, &err)) return 1;
    eng_quant_rtn(NULL, W, &cfg, &ql);
    eng_qlinear_dequant(&ql, D);
    double tot = 0;
    for (size_t i = 0; i < (size_t)m * n; i++) { E[i] = W[i] - D[i]; tot += (double)E[i] * E[i]; }
    float *U = malloc((size_t)m * k * 4), *S = malloc((size_t)k * 4), *Vt = malloc((size_t)k * n * 4);
    for (int meth = 0; meth < 2; meth++) {
        double t0 = bm_now();
        if (eng_svd_topk(E, m, n, k, (eng_svd_method_t)meth, 1, U, S, Vt, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
        double t = bm_now() - t0;
        /* ‖E − U S Vt‖² = ‖E‖² − Σ σ_i² for exact singular triplets; computed directly here */
        for (int i = 0; i < m; i++) for (int c = 0; c < k; c++) U[(size_t)i * k + c] *= S[c];
        memcpy(D, E, (size_t)m * n * 4);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, -1, U, k, Vt, n, 1, D, n);
        double r = 0, cap = 0;
        for (size_t i = 0; i < (size_t)m * n; i++) r += (double)D[i] * D[i];
        for (int c = 0; c < k; c++) cap += (double)S[c] * S[c];
        printf("%-10s %7.2f s   ‖E − E_k‖/‖E‖ = %.6f   captured Σσ² / ‖E‖² = %.5f   σ_1 %.4g σ_k %.4g\n",
               meth ? "randomized" : "sgesdd", t, sqrt(r / tot), cap / tot, S[0], S[k - 1]);
        fflush(stdout);
    }
    eng_qlinear_close(&ql);
    free(W); free(E); free(D); free(U); free(S); free(Vt);
    return 0;
}

int bench_methods(int argc, char **argv)
{
    if (!strcmp(argv[1], "gptq")) return bm_gptq(argc, argv);
    return bm_svd(argc, argv);
}
