/* eng_mm.h — the engine's one matrix-product interface: every GEMM of the block forward and
 * backward (linears and attention), the LRQ quantizer's L·U and its gradients, and evaluation's
 * lm_head goes through eng_mm_gemm (whole products, split over the pool) or eng_mm_gemm1 (one
 * product inside a pool task). docs/architecture.md, "Matmul backends".
 *
 * Backends: OpenBLAS (the reference and default) and oneDNN (matmul primitives created once per
 * shape and cached in the backend object). Precisions:
 *   fp32  every operand as it is, fp32 accumulation.
 *   bf16  autocast semantics: both inputs of every product rounded to bfloat16 (round to nearest,
 *         ties to even), accumulation and output in fp32; alpha and beta·C are applied in fp32.
 *         Natively through oneDNN's bf16 matmul where the CPU has it (avx512_bf16 / AMX), else
 *         emulated exactly: the inputs are rounded into fp32 scratch and multiplied in fp32 (the
 *         product of two bf16 values is exact in fp32, so only the accumulation order differs
 *         from a native bf16 kernel). eng_mm_note says which, once, for the caller to log.
 *
 * Ownership: the caller owns the object (eng_mm_new / eng_mm_free, one per job or program, next to
 * its pool) and lends it to workspaces, runners and quantizers (eng_block_ws_set_mm,
 * eng_runner_set_mm, eng_lrq_t.mm). NULL everywhere means OpenBLAS fp32 (eng_pool_sgemm), the
 * behaviour before backends existed, bit for bit.
 *
 * Threads: the object has one slot per pool thread (nthreads at creation): oneDNN primitives,
 * streams and bf16 scratch are per slot, so slabs run concurrently without locks. oneDNN is run
 * single-threaded inside each slot (its OpenMP thread count is set to 1 for the calling thread
 * only — a per-thread setting, never the process's), for the same reason OpenBLAS is
 * (eng_pool.h): the pool does all the threading. Results depend on the shape only, never on the
 * thread count. eng_mm_gemm must not be called from inside a pool task, nor concurrently on one
 * object (it uses slot scratch of every thread); eng_mm_gemm1 may run concurrently for distinct
 * `thread` values.
 *
 * Errors: the products return nothing. If bf16 scratch cannot be allocated, that call is computed
 * in fp32 and the object keeps a sticky LRQ_ENOMEM that eng_mm_status reports (the worker checks
 * it and fails the job). A shape oneDNN refuses (stride combinations it has no kernel for) runs on
 * OpenBLAS with the same semantics and is counted (eng_mm_stats.fallbacks). */
#ifndef ENG_MM_H
#define ENG_MM_H
#include <stdint.h>
#include <string.h>
#include "lrq_err.h"
#include "eng_pool.h"
#include "eng_half.h"

typedef enum { ENG_MM_OPENBLAS = 0, ENG_MM_ONEDNN = 1 } eng_mm_backend_t;
typedef enum { ENG_MM_FP32 = 0, ENG_MM_BF16 = 1 } eng_mm_prec_t;
extern const char *const eng_mm_backend_name[]; /* "openblas", "onednn", NULL */
extern const char *const eng_mm_prec_name[];    /* "fp32", "bf16", NULL */

typedef struct eng_mm eng_mm_t;

typedef struct eng_mm_stats {
    long products;      /* GEMM calls (eng_mm_gemm counts once, however many slabs) */
    long onednn_execs;  /* oneDNN primitive executions (slabs) */
    long fallbacks;     /* slabs oneDNN refused, run on OpenBLAS instead */
    long primitives;    /* oneDNN primitives created (cache misses) */
} eng_mm_stats_t;

/* nthreads = eng_pool_threads of the pool it will be used with (slots). LRQ_EUNSUPP naming
 * "compute.backend" when oneDNN was not compiled in or its engine cannot be created. */
int eng_mm_new(eng_mm_backend_t backend, eng_mm_prec_t prec, int nthreads, eng_mm_t **out, lrq_err_t *err);
void eng_mm_free(eng_mm_t *mm);
eng_mm_backend_t eng_mm_backend(const eng_mm_t *mm); /* NULL: OpenBLAS */
eng_mm_prec_t eng_mm_prec(const eng_mm_t *mm);       /* NULL: fp32 */
/* 1 when bf16 products run on bf16 hardware; 0 when fp32, or bf16 emulated. */
int eng_mm_bf16_native(const eng_mm_t *mm);
/* One line to log once when the caller asked for something this machine does not do natively
 * (bf16 emulated, and why); NULL when there is nothing to say. */
const char *eng_mm_note(const eng_mm_t *mm);
/* 0, or the sticky error of an earlier product (see Errors above). */
int eng_mm_status(const eng_mm_t *mm, lrq_err_t *err);
void eng_mm_stats(const eng_mm_t *mm, eng_mm_stats_t *st);

/* Row-major C (M,N) = alpha·op(A)·op(B) + beta·C as cblas_sgemm (ta, tb nonzero = transposed),
 * op(A) (M,K), op(B) (K,N). Split over the pool exactly like eng_pool_sgemm (same slabs). */
void eng_mm_gemm(eng_mm_t *mm, eng_pool_t *pool, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* The same product on the calling thread only, from a pool task: thread = the task's thread
 * index (selects the slot). */
void eng_mm_gemm1(eng_mm_t *mm, int thread, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* ---- bfloat16: the top 16 bits of an IEEE binary32 ----
 * eng_f32_to_bf16 (eng_half.h, shared with the exporters): round to nearest, ties to even, on the
 * bit pattern (adding 0x7fff plus the lowest kept bit carries into the kept half exactly when the
 * dropped half is above one half ulp, or exactly one half and the kept half is odd); finite values
 * beyond the largest bf16 round to ±Inf, as the arithmetic would; NaN stays NaN. */
static inline float eng_bf16_round(float x) { return eng_bf16_to_f32(eng_f32_to_bf16(x)); }
/* dst (rows,cols) ld ldd = bf16-rounded src (rows,cols) ld lds; dst may equal src (ldd = lds). */
void eng_bf16_round_mat(float *dst, int ldd, const float *src, int lds, int rows, int cols);

#endif
