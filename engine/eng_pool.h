/* eng_pool.h — a tiny persistent thread pool for work that OpenBLAS cannot thread well
 * (many small per-head attention GEMMs). Private to libeng_num.
 *
 * eng_pool_run deals tasks 0..n-1 to the calling thread and the workers; a task's result
 * must not depend on which thread runs it (the `thread` index only selects scratch), so
 * results are deterministic. While tasks run, OpenBLAS is set to one thread (each task's
 * GEMMs run single-threaded, side by side) and restored afterwards. */
#ifndef ENG_POOL_H
#define ENG_POOL_H

typedef struct eng_pool eng_pool_t;
typedef void (*eng_pool_fn)(void *ctx, int task, int thread);

/* nthreads ≤ 0: OpenBLAS's current thread count. NULL on failure. */
eng_pool_t *eng_pool_new(int nthreads);
void eng_pool_free(eng_pool_t *p);
int eng_pool_threads(const eng_pool_t *p);
/* Runs fn(ctx, task, thread) for every task; returns when all are done. p may be NULL (serial). */
void eng_pool_run(eng_pool_t *p, int ntasks, eng_pool_fn fn, void *ctx);

#endif
