/* test_pool.c — eng_pool: every task exactly once (1 and N threads, repeated runs, zero
 * tasks, nested and concurrent runs), range splits, the pooled sgemm, and that quantizer
 * results do not depend on the pool's thread count. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "eng_pool.h"
#include "eng_quant.h"

enum { MAXT = 2000 };

typedef struct {
    int count[MAXT];      /* per task, atomically incremented */
    int bad_thread;       /* set if a task saw a thread index out of range */
    int nthreads;
    eng_pool_t *pool;     /* for the nested test */
    int inner[MAXT];
} count_ctx_t;

static void count_task(void *ctx, int task, int thread)
{
    count_ctx_t *c = ctx;
    __atomic_fetch_add(&c->count[task], 1, __ATOMIC_RELAXED);
    if (thread < 0 || thread >= c->nthreads) __atomic_store_n(&c->bad_thread, 1, __ATOMIC_RELAXED);
}

static void check_once(eng_pool_t *p, int ntasks, int reps)
{
    count_ctx_t *c = calloc(1, sizeof *c);
    cr_assert(c);
    c->nthreads = eng_pool_threads(p);
    for (int r = 0; r < reps; r++) {
        memset(c->count, 0, sizeof c->count);
        eng_pool_run(p, ntasks, count_task, c);
        for (int t = 0; t < ntasks; t++)
            cr_assert_eq(c->count[t], 1, "task %d of %d ran %d times (threads %d, rep %d)", t, ntasks, c->count[t],
                         c->nthreads, r);
        for (int t = ntasks > 0 ? ntasks : 0; t < MAXT; t++) cr_assert_eq(c->count[t], 0);
    }
    cr_assert_eq(c->bad_thread, 0, "thread index out of range");
    free(c);
}

Test(pool, every_task_once)
{
    const int threads[] = { 1, 2, 4, 7 }, tasks[] = { 0, 1, 2, 3, 7, 100, MAXT };
    for (size_t i = 0; i < sizeof threads / sizeof *threads; i++) {
        eng_pool_t *p = eng_pool_new(threads[i]);
        cr_assert(p);
        cr_assert_eq(eng_pool_threads(p), threads[i]);
        for (size_t k = 0; k < sizeof tasks / sizeof *tasks; k++) check_once(p, tasks[k], 20);
        eng_pool_free(p);
    }
}

Test(pool, null_is_serial_and_bad_sizes)
{
    cr_assert_eq(eng_pool_threads(NULL), 1);
    check_once(NULL, 0, 1);
    check_once(NULL, 5, 2);
    eng_pool_t *p = eng_pool_new(0); /* < 1: one thread */
    cr_assert(p);
    cr_assert_eq(eng_pool_threads(p), 1);
    check_once(p, -3, 1);
    check_once(p, 9, 1);
    eng_pool_free(p);
    eng_pool_free(NULL);
    eng_pool_free(eng_pool_new(3)); /* never run */
}

static void nest_task(void *ctx, int task, int thread)
{
    count_ctx_t *c = ctx;
    (void)thread;
    __atomic_fetch_add(&c->count[task], 1, __ATOMIC_RELAXED);
    count_ctx_t *in = calloc(1, sizeof *in);
    if (!in) return;
    in->nthreads = eng_pool_threads(c->pool);
    eng_pool_run(c->pool, 10, count_task, in); /* the pool is busy: runs here, serially */
    int ok = 1;
    for (int t = 0; t < 10; t++) ok &= in->count[t] == 1;
    if (ok && !in->bad_thread) __atomic_fetch_add(&c->inner[task], 1, __ATOMIC_RELAXED);
    free(in);
}

Test(pool, nested_run_is_serial)
{
    eng_pool_t *p = eng_pool_new(3);
    cr_assert(p);
    count_ctx_t *c = calloc(1, sizeof *c);
    cr_assert(c);
    c->pool = p;
    eng_pool_run(p, 12, nest_task, c);
    for (int t = 0; t < 12; t++) cr_assert(c->count[t] == 1 && c->inner[t] == 1, "task %d", t);
    check_once(p, 50, 3); /* still usable afterwards */
    free(c);
    eng_pool_free(p);
}

typedef struct {
    eng_pool_t *p;
    int ok;
} caller_arg_t;

static void *caller(void *arg)
{
    caller_arg_t *a = arg;
    count_ctx_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->nthreads = eng_pool_threads(a->p);
    a->ok = 1;
    for (int r = 0; r < 200; r++) {
        memset(c->count, 0, sizeof c->count);
        eng_pool_run(a->p, 37, count_task, c);
        for (int t = 0; t < 37; t++) a->ok &= c->count[t] == 1;
    }
    a->ok &= !c->bad_thread;
    free(c);
    return NULL;
}

Test(pool, two_callers_share_one_pool)
{
    eng_pool_t *p = eng_pool_new(3);
    cr_assert(p);
    caller_arg_t a[2] = { { p, 0 }, { p, 0 } };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, caller, &a[1]), 0);
    caller(&a[0]);
    pthread_join(th, NULL);
    cr_assert(a[0].ok && a[1].ok);
    eng_pool_free(p);
}

typedef struct {
    long n;
    int parts;
    int hits[64];
    long covered[1000];
    int bad;
} range_ctx_t;

static void range_fn(void *ctx, int part, long lo, long hi)
{
    range_ctx_t *c = ctx;
    if (part < 0 || part >= 64 || lo > hi || lo < 0 || hi > c->n) { c->bad = 1; return; }
    __atomic_fetch_add(&c->hits[part], 1, __ATOMIC_RELAXED);
    for (long i = lo; i < hi; i++) c->covered[i]++; /* ranges are disjoint */
}

Test(pool, range_covers_exactly)
{
    eng_pool_t *p = eng_pool_new(4);
    cr_assert(p);
    const long ns[] = { 0, 1, 3, 17, 1000 };
    const int parts[] = { 0, 1, 3, 4, 9, 50 };
    for (size_t a = 0; a < 5; a++)
        for (size_t b = 0; b < 6; b++) {
            range_ctx_t c = { .n = ns[a], .parts = parts[b] };
            eng_pool_range(p, ns[a], parts[b], range_fn, &c);
            cr_assert_eq(c.bad, 0);
            int want = ns[a] == 0 ? 0 : parts[b] < 1 ? 1 : parts[b] > ns[a] ? (int)ns[a] : parts[b];
            for (int k = 0; k < 64; k++) cr_assert_eq(c.hits[k], k < want ? 1 : 0, "n %ld parts %d", ns[a], parts[b]);
            for (long i = 0; i < ns[a]; i++) cr_assert_eq(c.covered[i], 1);
        }
    eng_pool_free(p);
}

static void fill(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 9) & 0xffff) / 32768.0f - 1.0f;
    }
}

/* The pooled sgemm agrees with cblas_sgemm (to rounding: slabs are separate calls) and
 * gives the same bits for the NULL pool and for 1, 2 and 3 threads. */
Test(pool, sgemm_matches_cblas_and_thread_count)
{
    openblas_set_num_threads(1);
    eng_pool_t *pools[4] = { NULL, eng_pool_new(1), eng_pool_new(2), eng_pool_new(3) };
    cr_assert(pools[1] && pools[2] && pools[3]);
    const int shapes[][3] = { { 300, 70, 50 }, { 40, 700, 60 }, { 2500, 97, 33 }, { 8, 8, 8 } };
    for (int s = 0; s < 4; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                int lda = ta ? M : K, ldb = tb ? K : N;
                size_t mn = (size_t)M * N;
                float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N),
                      *C0 = malloc(sizeof(float) * mn), *C[4];
                cr_assert(A && B && C0);
                fill(A, (size_t)M * K, 1);
                fill(B, (size_t)K * N, 2);
                fill(C0, mn, 3);
                for (int i = 0; i < 4; i++) {
                    cr_assert(C[i] = malloc(sizeof(float) * mn));
                    memcpy(C[i], C0, sizeof(float) * mn);
                    eng_pool_sgemm(pools[i], ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, C[i], N);
                }
                cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                            0.5f, A, lda, B, ldb, 0.25f, C0, N);
                for (size_t e = 0; e < mn; e++)
                    cr_assert_float_eq(C[0][e], C0[e], 1e-5f, "shape %d ta %d tb %d elem %zu", s, ta, tb, e);
                for (int i = 1; i < 4; i++)
                    cr_assert(memcmp(C[0], C[i], sizeof(float) * mn) == 0, "shape %d ta %d tb %d threads %d", s, ta,
                              tb, i);
                free(A); free(B); free(C0);
                for (int i = 0; i < 4; i++) free(C[i]);
            }
    for (int i = 1; i < 4; i++) eng_pool_free(pools[i]);
}

/* LRQ forward (S = L·U included), freeze and Adam do not depend on the thread count;
 * backward is deterministic at a fixed one. */
Test(pool, lrq_results_independent_of_threads)
{
    openblas_set_num_threads(1);
    enum { m = 300, n = 1100, k = 8 }; /* m ≥ 2 slabs: S = L·U is split too */
    float *W = malloc(sizeof(float) * m * n), *A1 = malloc(sizeof(float) * m * n),
          *A2 = malloc(sizeof(float) * m * n), *D = malloc(sizeof(float) * m * n);
    cr_assert(W && A1 && A2 && D);
    fill(W, (size_t)m * n, 7);
    fill(D, (size_t)m * n, 8);
    eng_qcfg_t cfg = {.bits = 3, .group_size = 128, .symmetric = 0, .init = ENG_INIT_MSE};
    eng_pool_t *p3 = eng_pool_new(3);
    cr_assert(p3);
    eng_lrq_t q;
    cr_assert_eq(eng_lrq_init(&q, W, m, n, k, 0, &cfg, NULL), 0);
    size_t np = eng_lrq_param_count(m, n, k, q.G, 0);
    float *P1 = calloc(np, 4), *P2 = calloc(np, 4), *G1 = calloc(np, 4), *G2 = calloc(np, 4),
          *M1 = calloc(np, 4), *V1 = calloc(np, 4), *M2 = calloc(np, 4), *V2 = calloc(np, 4);
    cr_assert(P1 && P2 && G1 && G2 && M1 && V1 && M2 && V2);
    uint64_t r1 = 5, r2 = 5;
    eng_lrq_bind(&q, P1, G1);
    eng_lrq_reset(&q, &cfg, &r1); /* serial mse init */
    for (int i = 0; i < m * k; i++) q.L[i] = 0.01f * (float)((i % 7) - 3);
    eng_lrq_forward(&q, A1);
    eng_lrq_backward(&q, D);
    q.pool = p3;
    eng_lrq_bind(&q, P2, G2);
    eng_lrq_reset(&q, &cfg, &r2); /* pooled mse init */
    for (int i = 0; i < m * k; i++) q.L[i] = 0.01f * (float)((i % 7) - 3);
    cr_assert(memcmp(P1, P2, np * 4) == 0, "init depends on the thread count");
    eng_lrq_forward(&q, A2);
    cr_assert(memcmp(A1, A2, sizeof(float) * m * n) == 0, "forward depends on the thread count");
    eng_lrq_backward(&q, D);
    float *G3 = malloc(np * 4);
    cr_assert(G3);
    memcpy(G3, G2, np * 4);
    eng_lrq_backward(&q, D);
    cr_assert(memcmp(G2, G3, np * 4) == 0, "backward not deterministic at a fixed thread count");
    /* gS… sums differ only by the order of the per-part column sums: close, not equal */
    for (size_t i = 0; i < np; i++) cr_assert_float_eq(G1[i], G2[i], 1e-4f + 1e-4f * fabsf(G1[i]), "grad %zu", i);
    eng_lrq_close(&q);
    /* Adam over enough elements to be split (≥ 64K per part) */
    size_t na = 300000;
    float *ap[2], *am[2], *av[2], *ag = malloc(na * 4);
    cr_assert(ag);
    fill(ag, na, 9);
    for (int r = 0; r < 2; r++) {
        cr_assert((ap[r] = malloc(na * 4)) && (am[r] = calloc(na, 4)) && (av[r] = calloc(na, 4)));
        fill(ap[r], na, 10);
    }
    eng_adam_t o = { 0.9f, 0.999f, 1e-8f };
    for (long t = 1; t <= 3; t++) {
        eng_adam_step(NULL, &o, ap[0], ag, am[0], av[0], na, 1e-3f, t);
        eng_adam_step(p3, &o, ap[1], ag, am[1], av[1], na, 1e-3f, t);
    }
    cr_assert(memcmp(ap[0], ap[1], na * 4) == 0 && memcmp(av[0], av[1], na * 4) == 0, "adam depends on the thread count");
    for (int r = 0; r < 2; r++) { free(ap[r]); free(am[r]); free(av[r]); }
    free(ag);
    eng_pool_free(p3);
    free(W); free(A1); free(A2); free(D); free(P1); free(P2); free(G1); free(G2); free(G3);
    free(M1); free(V1); free(M2); free(V2);
}
