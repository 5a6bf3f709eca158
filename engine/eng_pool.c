/* eng_pool.c — persistent worker threads, one job at a time (see eng_pool.h). */
#include <pthread.h>
#include <stdlib.h>
#include <cblas.h>
#include "eng_pool.h"

struct eng_pool {
    int n;                   /* threads including the caller */
    pthread_t *tid;          /* [n-1] */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    unsigned long gen;       /* job generation: workers wait for it to change */
    int quit, busy;          /* busy = workers still inside the current job */
    /* current job */
    eng_pool_fn fn;
    void *ctx;
    int ntasks, next;        /* next task to hand out (under mu) */
};

/* Take tasks until none are left. */
static void pool_drain(eng_pool_t *p, int thread)
{
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int t = p->next < p->ntasks ? p->next++ : -1;
        pthread_mutex_unlock(&p->mu);
        if (t < 0) return;
        p->fn(p->ctx, t, thread);
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
    if (nthreads <= 0) nthreads = openblas_get_num_threads();
    if (nthreads < 1) nthreads = 1;
    eng_pool_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = 1;
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p);
        return NULL;
    }
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
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

void eng_pool_run(eng_pool_t *p, int ntasks, eng_pool_fn fn, void *ctx)
{
    if (!p || p->n == 1 || ntasks <= 1) {
        for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
        return;
    }
    int blas = openblas_get_num_threads();
    openblas_set_num_threads(1);
    pthread_mutex_lock(&p->mu);
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
    pthread_mutex_unlock(&p->mu);
    openblas_set_num_threads(blas);
}
