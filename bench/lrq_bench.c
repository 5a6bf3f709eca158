/* lrq-bench — speed of one LRQ iteration on a synthetic block, as a ratio to the
 * machine's own sgemm throughput measured in the same run.
 *
 *   lrq-bench block --dim 4096 --ffn 11008 --heads 32 --kv-heads 32 --rank 1024
 *                   --batch 2 --seq 512 --iters 3 --threads 2 [--flexround]
 *                   [--precision fp32|bf16] [--backend openblas|onednn]
 *
 * --precision/--backend select the matmul backend (engine/eng_mm.h) of every product of the
 * iteration. `ratio` is ms_per_iter over the time the counted FLOPs take at the matmul rate of
 * that same backend and precision, measured in the same run through the same interface over the
 * same pool (mm_gflops: the better of two GEMMs shaped like the block's big products);
 * `sgemm_gflops` / `sgemm_ratio` keep the former baseline, OpenBLAS fp32 with its own threads.
 *
 * One iteration = Ŵ from the quantizer parameters for all 7 linears, block forward,
 * block backward (no input gradient: the block input is data), quantizer gradients,
 * Adam over every parameter. Weights are SYNTHETIC (Gaussian, std 0.02).
 *
 * FLOPs counted (only what the algorithm needs, 2 per multiply-add):
 *   forward linears 2·BT·Σmn; weight grads 2·BT·Σmn; input grads of o, gate, up, down
 *   (not q, k, v: their input is the data); attention QKᵀ and PV over the full T×T
 *   (that is what the sgemm calls compute) forward, and 4 products backward;
 *   low-rank S = L·U, ∂L = G·Uᵀ, ∂U = Lᵀ·G: 3 × 2·m·k·n per low-rank linear. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <cblas.h>
#include "eng_block.h"
#include "eng_quant.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *randn(size_t n, uint64_t *rng, float std)
{
    float *p = malloc(n * sizeof *p);
    if (!p) { fprintf(stderr, "lrq-bench: out of memory (%zu floats)\n", n); exit(1); }
    for (size_t i = 0; i < n; i += 2) { /* Box-Muller */
        float u1 = eng_rng_uniform(rng) + 1e-7f, u2 = eng_rng_uniform(rng);
        float r = sqrtf(-2.f * logf(u1)) * std;
        p[i] = r * cosf(6.2831853f * u2);
        if (i + 1 < n) p[i + 1] = r * sinf(6.2831853f * u2);
    }
    return p;
}

/* sgemm GFLOP/s on a GEMM shaped like the block's big products. */
static double sgemm_rate(int M, int N, int K)
{
    uint64_t rng = 42;
    float *a = randn((size_t)M * K, &rng, 1), *b = randn((size_t)K * N, &rng, 1), *c = calloc((size_t)M * N, 4);
    /* warm-up: OpenBLAS's threads have been idle (asleep) while the pool ran the iterations */
    for (int r = 0; r < 3; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.f, a, K, b, K, 0.f, c, N);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.f, a, K, b, K, 0.f, c, N);
        t = now_s() - t;
        if (t < best) best = t;
    }
    free(a); free(b); free(c);
    return 2.0 * M * N * K / best / 1e9;
}

/* The same GEMMs through the backend under test, over the pool. */
static double mm_rate(eng_mm_t *mm, eng_pool_t *pool, int M, int N, int K)
{
    uint64_t rng = 43;
    float *a = randn((size_t)M * K, &rng, 1), *b = randn((size_t)K * N, &rng, 1), *c = calloc((size_t)M * N, 4);
    for (int r = 0; r < 2; r++) eng_mm_gemm(mm, pool, 0, 1, M, N, K, 1.f, a, K, b, K, 0.f, c, N);
    double best = 1e30;
    for (int r = 0; r < 4; r++) {
        double t = now_s();
        eng_mm_gemm(mm, pool, 0, 1, M, N, K, 1.f, a, K, b, K, 0.f, c, N);
        t = now_s() - t;
        if (t < best) best = t;
    }
    free(a); free(b); free(c);
    return 2.0 * M * N * K / best / 1e9;
}

static int pick(const char *v, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(v, names[i])) return i;
    return -1;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

int bench_methods(int argc, char **argv); /* bench/lrq_bench_methods.c: gptq, svd */

int main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "gptq") || !strcmp(argv[1], "svd"))) return bench_methods(argc, argv);
    if (argc < 2 || strcmp(argv[1], "block")) {
        fprintf(stderr, "usage: lrq-bench block --dim D --ffn F --heads H --kv-heads KVH --rank K --batch B --seq T "
                        "--iters N --threads N [--flexround] [--bits 4] [--precision fp32|bf16] [--backend openblas|onednn]\n"
                        "       lrq-bench gptq [--dim 4096] [--ffn 11008] [--tokens 2048] [--threads 2] [--linears 7]\n"
                        "       lrq-bench svd [--m 4096] [--n 4096] [--rank 32]\n");
        return 64;
    }
    int D = 4096, F = 11008, H = 32, KVH = 32, K = 1024, B = 2, T = 512, iters = 3, threads = 2, flex = 0, bits = 4;
    int prec = ENG_MM_FP32, backend = ENG_MM_OPENBLAS;
    static const struct option opts[] = {{"dim", 1, 0, 'd'}, {"ffn", 1, 0, 'f'}, {"heads", 1, 0, 'h'},
                                         {"kv-heads", 1, 0, 'k'}, {"rank", 1, 0, 'r'}, {"batch", 1, 0, 'b'},
                                         {"seq", 1, 0, 's'}, {"iters", 1, 0, 'i'}, {"threads", 1, 0, 't'},
                                         {"flexround", 0, 0, 'x'}, {"bits", 1, 0, 'q'}, {"precision", 1, 0, 'p'},
                                         {"backend", 1, 0, 'e'}, {0, 0, 0, 0}};
    int o;
    optind = 2;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'd': D = atoi(optarg); break;
        case 'f': F = atoi(optarg); break;
        case 'h': H = atoi(optarg); break;
        case 'k': KVH = atoi(optarg); break;
        case 'r': K = atoi(optarg); break;
        case 'b': B = atoi(optarg); break;
        case 's': T = atoi(optarg); break;
        case 'i': iters = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'x': flex = 1; break;
        case 'q': bits = atoi(optarg); break;
        case 'p':
            if ((prec = pick(optarg, eng_mm_prec_name)) < 0) { fprintf(stderr, "lrq-bench: --precision fp32|bf16\n"); return 64; }
            break;
        case 'e':
            if ((backend = pick(optarg, eng_mm_backend_name)) < 0) {
                fprintf(stderr, "lrq-bench: --backend openblas|onednn\n");
                return 64;
            }
            break;
        default: return 64;
        }
    }
    if (D <= 0 || F <= 0 || H <= 0 || KVH <= 0 || H % KVH || D % H || iters < 1 || B < 1 || T < 2) {
        fprintf(stderr, "lrq-bench: bad shape\n");
        return 64;
    }
    /* the engine's threads are the pool's; OpenBLAS, called from its tasks, runs single-threaded
     * (eng_pool.h). The sgemm baseline below gets OpenBLAS's own `threads`. */
    openblas_set_num_threads(1);
    eng_pool_t *pool = eng_pool_new(threads);
    if (!pool) { fprintf(stderr, "lrq-bench: out of memory (pool)\n"); return 1; }
    lrq_err_t err;
    eng_mm_t *mm = NULL;
    if (eng_mm_new(backend, prec, eng_pool_threads(pool), &mm, &err)) {
        fprintf(stderr, "lrq-bench: %s\n", err.msg);
        return 1;
    }
    if (eng_mm_note(mm)) fprintf(stderr, "lrq-bench: %s\n", eng_mm_note(mm));
    int Dh = D / H;
    eng_config_t c = {.dim = D, .ffn_dim = F, .n_layers = 1, .n_heads = H, .n_kv_heads = KVH, .head_dim = Dh,
                      .vocab_size = 32000, .max_seq_len = T, .norm_eps = 1e-5f, .rope_theta = 10000.f,
                      .rope = ENG_ROPE_HALF};
    int ms[ENG_NLIN] = {H * Dh, KVH * Dh, KVH * Dh, D, F, F, D};
    int ns[ENG_NLIN] = {D, D, D, H * Dh, D, D, F};
    uint64_t rng = 1234;
    eng_qcfg_t qc = {.bits = bits, .group_size = 0, .symmetric = 0, .init = ENG_INIT_MINMAX};
    eng_lrq_t lq[ENG_NLIN];
    float *W[ENG_NLIN], *What[ENG_NLIN], *dW[ENG_NLIN];
    size_t counts[ENG_NLIN], nparams = 0;
    double flops = 0, sum_mn = 0, dx_mn = 0, lr_mn = 0;
    for (int i = 0; i < ENG_NLIN; i++) {
        size_t mn = (size_t)ms[i] * ns[i];
        W[i] = randn(mn, &rng, 0.02f);
        What[i] = malloc(mn * 4);
        dW[i] = malloc(mn * 4);
        int full = flex, k = flex ? 0 : K;
        if (!flex && k >= (ms[i] < ns[i] ? ms[i] : ns[i])) full = 1;
        if (!What[i] || !dW[i] || eng_lrq_init(&lq[i], W[i], ms[i], ns[i], k, full, &qc, &err)) {
            fprintf(stderr, "lrq-bench: setup failed\n");
            return 1;
        }
        lq[i].pool = pool;
        lq[i].mm = mm;
        counts[i] = eng_lrq_param_count(ms[i], ns[i], lq[i].k, lq[i].G, lq[i].full);
        nparams += counts[i];
        sum_mn += (double)mn;
        if (i == ENG_O || i >= ENG_GATE) dx_mn += (double)mn;
        if (!lq[i].full) lr_mn += (double)mn * lq[i].k;
    }
    float *params = calloc(nparams, 4), *grads = calloc(nparams, 4), *am = calloc(nparams, 4), *av = calloc(nparams, 4);
    if (!params || !grads || !am || !av) { fprintf(stderr, "lrq-bench: out of memory\n"); return 1; }
    size_t off = 0;
    for (int i = 0; i < ENG_NLIN; i++) {
        eng_lrq_bind(&lq[i], params + off, grads + off);
        eng_lrq_reset(&lq[i], &qc, &rng);
        off += counts[i];
    }
    double BT = (double)B * T;
    flops = 2 * BT * sum_mn       /* forward linears */
          + 2 * BT * sum_mn       /* weight gradients */
          + 2 * BT * dx_mn        /* input gradients of o, gate, up, down */
          + 12.0 * B * H * (double)T * T * Dh /* attention: 2 forward + 4 backward products of 2·T·T·Dh */
          + 6 * lr_mn;            /* S = L·U and its two gradients */
    float *norm1 = malloc(D * 4), *norm2 = malloc(D * 4);
    for (int i = 0; i < D; i++) norm1[i] = norm2[i] = 1.f + 0.1f * (eng_rng_uniform(&rng) - 0.5f);
    float *x = randn((size_t)B * T * D, &rng, 1.f), *y = malloc((size_t)B * T * D * 4),
          *dy = randn((size_t)B * T * D, &rng, 1e-3f);
    eng_rope_tab_t rope;
    eng_block_ws_t *ws = eng_block_ws_new(&c, B, T, 1, pool);
    if (!ws || !y || eng_rope_tab_init(&rope, &c, T)) { fprintf(stderr, "lrq-bench: out of memory\n"); return 1; }
    eng_block_ws_set_mm(ws, mm);
    eng_block_w_t w = {.attn_norm = norm1, .ffn_norm = norm2};
    eng_block_g_t g = {0};
    eng_adam_t opt = {0.9f, 0.999f, 1e-8f};
    double best = 1e30, total = 0, ph[5] = {0}; /* quantizer fwd, block fwd, block bwd, quantizer bwd, adam */
    struct rusage ru0, ru1; /* CPU time of the timed iterations: user, and sys (thread wake-ups, page faults) */
    for (int it = 0; it <= iters; it++) { /* iteration 0 is a warm-up */
        if (it == 1) getrusage(RUSAGE_SELF, &ru0);
        double t = now_s(), t1, t2, t3, t4;
        for (int i = 0; i < ENG_NLIN; i++) {
            eng_lrq_forward(&lq[i], What[i]);
            w.lin[i] = What[i];
            g.lin[i] = dW[i];
        }
        t1 = now_s();
        eng_block_forward(&c, &w, &rope, x, y, ws, B, T);
        t2 = now_s();
        eng_block_backward(&c, &w, &rope, dy, NULL, &g, ws, B, T);
        t3 = now_s();
        for (int i = 0; i < ENG_NLIN; i++) eng_lrq_backward(&lq[i], dW[i]);
        t4 = now_s();
        eng_adam_step(pool, &opt, params, grads, am, av, nparams, eng_cosine_lr(5e-4f, it, iters + 1), it + 1);
        double t5 = now_s();
        if (it > 0) {
            total += t5 - t;
            if (t5 - t < best) best = t5 - t;
            ph[0] += t1 - t; ph[1] += t2 - t1; ph[2] += t3 - t2; ph[3] += t4 - t3; ph[4] += t5 - t4;
        }
    }
    getrusage(RUSAGE_SELF, &ru1);
    double user_ms = ((ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1e3 + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e3) / iters;
    double sys_ms = ((ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1e3 + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e3) / iters;
    double ms_iter = total / iters * 1e3;
    if (eng_mm_status(mm, &err)) { fprintf(stderr, "lrq-bench: %s\n", err.msg); return 1; }
    eng_mm_stats_t st;
    eng_mm_stats(mm, &st);
    double mrate = mm_rate(mm, pool, B * T, D, D), mrate2 = mm_rate(mm, pool, B * T, F, D);
    if (mrate2 > mrate) mrate = mrate2;
    openblas_set_num_threads(threads);
    double rate = sgemm_rate(B * T, D, D);
    double rate2 = sgemm_rate(B * T, F, D);
    if (rate2 > rate) rate = rate2; /* the better of the two: the stricter baseline */
    double gflop = flops / 1e9, equiv_ms = gflop / rate * 1e3, mm_equiv_ms = gflop / mrate * 1e3;
    printf("{\"ms_per_iter\": %.2f, \"best_ms\": %.2f, \"gflop_per_iter\": %.2f, \"backend\": \"%s\", "
           "\"precision\": \"%s\", \"bf16\": \"%s\", \"mm_gflops\": %.1f, \"mm_equiv_ms\": %.2f, \"ratio\": %.3f, "
           "\"sgemm_gflops\": %.1f, \"sgemm_equiv_ms\": %.2f, \"sgemm_ratio\": %.3f, \"peak_rss_mb\": %.0f, "
           "\"cpu_user_ms\": %.1f, \"cpu_sys_ms\": %.1f, \"onednn_primitives\": %ld, \"onednn_fallbacks\": %ld, \"params\": %zu, "
           "\"shape\": \"D%d F%d H%d KVH%d rank%d B%d T%d %s threads%d\", \"weights\": \"synthetic\", "
           "\"phase_ms\": {\"quant_fwd\": %.1f, \"block_fwd\": %.1f, \"block_bwd\": %.1f, \"quant_bwd\": %.1f, "
           "\"adam\": %.1f}}\n",
           ms_iter, best * 1e3, gflop, eng_mm_backend_name[backend], eng_mm_prec_name[prec],
           prec == ENG_MM_FP32 ? "n/a" : eng_mm_bf16_native(mm) ? "native" : "emulated", mrate, mm_equiv_ms,
           ms_iter / mm_equiv_ms, rate, equiv_ms, ms_iter / equiv_ms, peak_rss_mb(), user_ms, sys_ms, st.primitives, st.fallbacks,
           nparams, D, F, H, KVH, K, B, T,
           flex ? "flexround" : "lrq", threads, ph[0] / iters * 1e3, ph[1] / iters * 1e3, ph[2] / iters * 1e3,
           ph[3] / iters * 1e3, ph[4] / iters * 1e3);
    eng_block_ws_free(ws);
    eng_mm_free(mm);
    eng_pool_free(pool);
    return 0;
}
