/* eng_lowrank.h — low-rank correction factors of a quantized linear (docs/algorithms.md,
 * Low-rank factors): W ≈ Ŵ + L·R with L (m,k), R (k,n), so that
 *
 *   y (N,m) = x (N,n) Ŵᵀ + (x Rᵀ) Lᵀ
 *
 * In LQER's notation (Zhang et al., arXiv 2402.02446) A = Rᵀ (n,k) and B = Lᵀ (k,m); in PEFT's
 * (LoRA) lora_A = R and lora_B = L. L and R hold the values that are used, already rounded to
 * their storage type: bits 16 = fp16 values, bits 8 = symmetric int8 codes with one fp16 scale
 * per row (L: per output channel, R: per rank component), kept in Lq/Rq/Ls/Rs for the artifact. */
#ifndef ENG_LOWRANK_H
#define ENG_LOWRANK_H
#include <stddef.h>
#include <stdint.h>
#include "lrq_err.h"
#include "eng_pool.h"

typedef struct eng_lowrank {
    int m, n, k, bits;        /* k = 0: no factors (everything NULL) */
    float *L;                 /* (m,k) owned */
    float *R;                 /* (k,n) owned */
    int8_t *Lq, *Rq;          /* bits 8: codes (m,k), (k,n); NULL otherwise */
    float *Ls, *Rs;           /* bits 8: fp16-valued scales (m), (k) */
} eng_lowrank_t;

/* Zeroed factors of rank k (k = 0 allocates nothing); bits 16 or 8. */
int eng_lowrank_init(eng_lowrank_t *f, int m, int n, int k, int bits, lrq_err_t *err);
void eng_lowrank_close(eng_lowrank_t *f);
/* Round L and R in place to the storage type (fp16, or int8 per row with an fp16 scale);
 * idempotent. Non-finite values are refused upstream; ±inf-overflowing values saturate. */
void eng_lowrank_round(eng_lowrank_t *f);
/* y (N,m) += (x (N,n) · Rᵀ) · Lᵀ, in row chunks (no allocation for k ≤ 4096). pool: borrowed,
 * NULL = serial. The forward of the factored term; it has no backward (factors are not trained
 * through the block). */
void eng_lowrank_forward(eng_pool_t *pool, const eng_lowrank_t *f, const float *x, float *y, int N);
/* W (m,n) += L · R (dense merge, for the hf export and for errors). */
void eng_lowrank_add_dense(const eng_lowrank_t *f, float *W);
/* Storage of the factors in bits: k(m+n)·16 for fp16; k(m+n)·8 + (m+k)·16 for int8. */
double eng_lowrank_storage_bits(int m, int n, int k, int bits);

#endif
