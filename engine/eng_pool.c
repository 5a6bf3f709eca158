/* eng_pool.c — persistent worker threads, one run at a time (see eng_pool.h). */
#include <pthread.h>
#include <stdlib.h>
#include <cblas.h>
#include "eng_pool.h"

struct eng_pool {
    int n;                   /* threads including the caller */
    pthread_t *tid;          /* [n-1] */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    unsigned long gen;       /* run generation: workers wait for it to change */
    int quit, running;       /* running: a run is in progress (later runs go serial) */
    int busy;                /* workers still inside the current run */
    /* current run, all under mu */
    eng_pool_fn fn;
    void *ctx;
    int ntasks, next;        /* next task to hand out */
};

/* Take tasks until none are left. Tasks are coarse (one per thread or per head), so a
 * mutex per task costs nothing measurable. */
static void pool_drain(eng_pool_t *p, int thread)
{
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int t = p->next < p->ntasks ? p->next++ : -1;
        eng_pool_fn fn = p->fn;
        void *ctx = p->ctx;
        pthread_mutex_unlock(&p->mu);
        if (t < 0) return;
        fn(ctx, t, thread);
    }
}

typedef struct {
    eng_pool_t *p;
    int thread;
} worker_arg_t;

static void *pool_worker(void *arg)
{
    worker_arg_t *wa = arg;
    eng_pool_t *p = wa->p;
    int thread = wa->thread;
    free(wa);
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->gen == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit) break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        pool_drain(p, thread);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

eng_pool_t *eng_pool_new(int nthreads)
{
    if (nthreads < 1) nthreads = 1;
    eng_pool_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = 1;
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->wake, NULL)) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->done, NULL)) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    if (nthreads > 1 && !(p->tid = calloc((size_t)nthreads - 1, sizeof *p->tid))) {
        eng_pool_free(p);
        return NULL;
    }
    for (int i = 1; i < nthreads; i++) {
        worker_arg_t *wa = malloc(sizeof *wa);
        if (!wa) break;
        wa->p = p;
        wa->thread = i;
        if (pthread_create(&p->tid[i - 1], NULL, pool_worker, wa)) {
            free(wa);
            break; /* fewer threads is still correct */
        }
        p->n++;
    }
    return p;
}

void eng_pool_free(eng_pool_t *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n - 1; i++) pthread_join(p->tid[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->tid);
    free(p);
}

int eng_pool_threads(const eng_pool_t *p) { return p ? p->n : 1; }

static void run_serial(int ntasks, eng_pool_fn fn, void *ctx)
{
    for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
}

void eng_pool_run(eng_pool_t *p, int ntasks, eng_pool_fn fn, void *ctx)
{
    if (ntasks <= 0) return;
    if (!p || p->n == 1 || ntasks == 1) {
        run_serial(ntasks, fn, ctx);
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (p->running) { /* nested in a task, or a second caller: never wait on ourselves */
        pthread_mutex_unlock(&p->mu);
        run_serial(ntasks, fn, ctx);
        return;
    }
    p->running = 1;
    p->fn = fn;
    p->ctx = ctx;
    p->ntasks = ntasks;
    p->next = 0;
    p->busy = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    pool_drain(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) pthread_cond_wait(&p->done, &p->mu);
    p->running = 0;
    pthread_mutex_unlock(&p->mu);
}

typedef struct {
    eng_pool_range_fn fn;
    void *ctx;
    long n;
    int parts;
} range_job_t;

static void range_task(void *ctx, int task, int thread)
{
    const range_job_t *j = ctx;
    (void)thread;
    j->fn(j->ctx, task, j->n * task / j->parts, j->n * (task + 1) / j->parts);
}

void eng_pool_range(eng_pool_t *p, long n, int parts, eng_pool_range_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (parts < 1) parts = 1;
    if (parts > n) parts = (int)n;
    range_job_t j = { fn, ctx, n, parts };
    eng_pool_run(p, parts, range_task, &j);
}

/* ---------------------------------------------------------------------------------------------
 * sgemm over the pool: C is cut into slabs of rows (or of columns when C is wide and short),
 * one single-threaded sgemm each. OpenBLAS's result for an element can depend on the size
 * of the call it is part of (its small-matrix paths fuse alpha and beta differently), so
 * the slabs depend only on the shape, never on the thread count: 1 and N threads, and the
 * NULL pool, give the same bits. */

typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc, parts, by_rows;
    float alpha, beta;
    const float *A, *B;
    float *C;
} gemm_job_t;

static void gemm_task(void *ctx, int task, int thread)
{
    const gemm_job_t *j = ctx;
    (void)thread;
    int len = j->by_rows ? j->M : j->N;
    int i0 = (int)((long)len * task / j->parts), i1 = (int)((long)len * (task + 1) / j->parts);
    if (i1 <= i0) return;
    CBLAS_TRANSPOSE ta = j->ta ? CblasTrans : CblasNoTrans, tb = j->tb ? CblasTrans : CblasNoTrans;
    if (j->by_rows) { /* rows i0..i1 of op(A) and of C */
        const float *A = j->ta ? j->A + i0 : j->A + (size_t)i0 * j->lda;
        cblas_sgemm(CblasRowMajor, ta, tb, i1 - i0, j->N, j->K, j->alpha, A, j->lda, j->B, j->ldb, j->beta,
                    j->C + (size_t)i0 * j->ldc, j->ldc);
    } else {          /* columns i0..i1 of op(B) and of C */
        const float *B = j->tb ? j->B + (size_t)i0 * j->ldb : j->B + i0;
        cblas_sgemm(CblasRowMajor, ta, tb, j->M, i1 - i0, j->K, j->alpha, j->A, j->lda, B, j->ldb, j->beta,
                    j->C + i0, j->ldc);
    }
}

void eng_pool_sgemm(eng_pool_t *p, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc)
{
    int by_rows = M >= N, len = by_rows ? M : N;
    int parts = len / ENG_POOL_GEMM_SLAB; /* ≥ SLAB rows each: enough work per kernel call */
    if (parts > ENG_POOL_GEMM_PARTS) parts = ENG_POOL_GEMM_PARTS;
    if (parts > 1 && (double)M * N * K >= ENG_POOL_GEMM_MIN) {
        gemm_job_t j = { ta != 0, tb != 0, M, N, K, lda, ldb, ldc, parts, by_rows, alpha, beta, A, B, C };
        eng_pool_run(p, parts, gemm_task, &j);
    } else {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha,
                    A, lda, B, ldb, beta, C, ldc);
    }
}
