/* eng_pool.h — the engine's one parallel-for: a persistent thread pool.
 *
 * The caller owns the pool (eng_pool_new / eng_pool_free, one per job or program) and lends
 * it to everything that runs in parallel: block workspaces and runners keep the borrowed
 * pointer, eng_lrq_t has a `pool` member, stateless entry points (RTN, init, Adam) take it
 * as their first argument. NULL everywhere means serial. On a failed eng_pool_new a job of
 * lrq-worker fails with LRQ_ENOMEM; `lrq-worker eval` and lrq-bench's callers of the API may
 * instead go on serially with NULL.
 *
 * eng_pool_run deals tasks 0..n-1 to the calling thread and the workers. A task's result
 * must not depend on which thread runs it: `thread` (0 ≤ thread < eng_pool_threads) only
 * selects per-thread scratch. eng_pool_range splits [0,n) into `parts` fixed contiguous
 * ranges, so a result can depend on `parts` (the caller's choice) but never on scheduling.
 *
 * One run at a time: a run issued while the pool is busy (from inside a task, or from a
 * second thread) executes serially on the calling thread, with thread = 0. Such nested
 * tasks must therefore not use thread-indexed scratch that the outer run also uses.
 *
 * OpenBLAS: the pool never touches OpenBLAS's thread count (a process-wide setting a library
 * should not toggle behind its caller's back, and not per call: 0.3.21 has no per-call or
 * thread-local count). Instead the engine does all of its threading itself: big products are
 * cut into slabs by eng_pool_sgemm, attention runs one task per (batch, kv head), and every
 * task calls a single-threaded sgemm. So the caller sets OpenBLAS to 1 thread once, before it
 * uses a pool with more than one thread (lrq-worker and lrq-bench do; the tests run with
 * OPENBLAS_NUM_THREADS=1). Measured (lrq-bench, stories260K block, 2 threads on 2 busy
 * cores): with OpenBLAS left at 2 threads under a 2-thread pool, an iteration took 93–485 ms
 * instead of ~5 ms (OpenBLAS's threads and ours fight over the cores); the former
 * set-to-1-and-restore around every run was no faster than setting it once. With a NULL
 * (serial) pool, OpenBLAS may keep its own threads: nothing calls it concurrently then. */
#ifndef ENG_POOL_H
#define ENG_POOL_H

typedef struct eng_pool eng_pool_t;
typedef void (*eng_pool_fn)(void *ctx, int task, int thread);
typedef void (*eng_pool_range_fn)(void *ctx, int part, long lo, long hi);

/* nthreads (≥ 1) threads including the caller; fewer if the system refuses to start some.
 * NULL when out of memory (callers may run serially with NULL). */
eng_pool_t *eng_pool_new(int nthreads);
void eng_pool_free(eng_pool_t *p);
/* Threads including the caller; 1 for NULL. */
int eng_pool_threads(const eng_pool_t *p);
/* fn(ctx, task, thread) for every task in [0, ntasks), each exactly once; returns when all
 * are done. p may be NULL (serial); ntasks ≤ 0 does nothing. */
void eng_pool_run(eng_pool_t *p, int ntasks, eng_pool_fn fn, void *ctx);
/* fn(ctx, part, lo, hi) for part in [0, parts): lo = n·part/parts, hi = n·(part+1)/parts.
 * parts is clamped to [1, n]; n ≤ 0 does nothing. */
void eng_pool_range(eng_pool_t *p, long n, int parts, eng_pool_range_fn fn, void *ctx);

/* Row-major C (M,N) = alpha·op(A)·op(B) + beta·C as cblas_sgemm (ta, tb nonzero = transposed).
 * At least M·N·K ≥ GEMM_MIN and 2·GEMM_SLAB rows (columns, if N > M): split into
 * min(len / GEMM_SLAB, GEMM_PARTS) slabs run on the pool. The slabs depend on the shape only,
 * so the result is the same for every thread count (it may differ in the last bits from one
 * cblas_sgemm over the whole C). Slabs are cut across the dimension whose other operand is the
 * smaller one, because every slab packs that operand again; for the same reason no more than 8
 * (16 measured slower on the 7B block's dx and forward products with 2 threads). */
#define ENG_POOL_GEMM_MIN (64.0 * 64 * 64)
#define ENG_POOL_GEMM_SLAB 128
#define ENG_POOL_GEMM_PARTS 8
void eng_pool_sgemm(eng_pool_t *p, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc);

#endif
