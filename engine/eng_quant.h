/* eng_quant.h — weight quantizers (docs/algorithms.md: RTN, min-max/MSE init, FlexRound, LRQ, Adam/cosine
 * schedule): RTN with minmax/mse init,
 * LRQ / FlexRound learnable rounding with hand-derived gradients, Adam, cosine schedule.
 *
 * A linear W is (m, n). Groups run along the input dim (as GPTQ): g = j / gs, G = ⌈n / gs⌉; when gs
 * does not divide n the last group is partial (n − (G−1)·gs columns); gs > n is one partial group
 * (same result as per-channel). Per-channel: gs = n, G = 1. Codes q ∈ [0, 2^b−1]; Ŵ = s·(q − z). */
#ifndef ENG_QUANT_H
#define ENG_QUANT_H
#include <stddef.h>
#include <stdint.h>
#include "lrq_err.h"
#include "eng_pool.h"
#include "eng_mm.h"

typedef enum { ENG_INIT_MINMAX = 0, ENG_INIT_MSE = 1 } eng_qinit_t;

/* Stored-scale constraints (docs/formats.md, Evaluated = exported): a bit set of what every export
 * of the job stores. The quantizer rounds each scale to the nearest value meeting all of them
 * *before* it chooses the codes, so Ŵ = s·(q − z) in fp32 is what each file dequantizes to.
 *   ENG_SCALE_F16   s is exactly an IEEE binary16 (GPTQ scales, GGUF block d)
 *   ENG_SCALE_BF16  s is exactly a bfloat16 (compressed-tensors weight_scale in a bf16 model)
 *   ENG_SCALE_ZF16  s·z is exactly a binary16 too (GGUF Q4_1 stores m = −s·z in fp16)
 * 0 = fp32 (no rounding: the former behaviour). */
enum { ENG_SCALE_F16 = 1, ENG_SCALE_BF16 = 2, ENG_SCALE_ZF16 = 4 };

typedef struct eng_qcfg {
    int bits;          /* 2..8 */
    int group_size;    /* 0 = per-channel; else > 0 (need not divide n: the last group is partial) */
    int symmetric;     /* zero fixed at 2^(b-1) (GPTQ convention) */
    eng_qinit_t init;
    int scale_store;   /* ENG_SCALE_* bits, 0 = fp32 */
} eng_qcfg_t;

typedef struct eng_qlinear {
    int m, n, bits, gs, G, symmetric; /* gs as configured (may exceed n), G = eng_quant_ngroups(n, gs) */
    uint8_t *q;        /* (m, n) codes */
    float *scale;      /* (m, G) */
    float *zero;       /* (m, G) integer-valued, in [0, 2^b−1] */
    int scale_store;   /* ENG_SCALE_* the scales were rounded to (from the config) */
} eng_qlinear_t;

/* Number of groups G = ⌈n / gs⌉ for group_size gs (0 = per-channel → 1); 0 if n ≤ 0 or gs < 0.
 * Group g covers columns [g·gs, min((g+1)·gs, n)). */
int eng_quant_ngroups(int n, int group_size);
int eng_qlinear_init(eng_qlinear_t *ql, int m, int n, const eng_qcfg_t *cfg, lrq_err_t *err);
void eng_qlinear_close(eng_qlinear_t *ql);
void eng_qlinear_dequant(const eng_qlinear_t *ql, float *What /* (m,n) */);

/* The nearest positive scale to s (round to nearest, ties to even, on fewer significant bits as
 * needed) that meets the ENG_SCALE_* constraints `store` with zero point z. store = 0 returns s.
 * When no value can (s beyond fp16's range), returns the fp16 rounding: the exporter refuses it. */
float eng_quant_store_scale(float s, float z, int store);
/* 0 when s meets the constraints exactly (the exporters' check), else nonzero. */
int eng_quant_scale_ok(float s, float z, int store);

/* Per row (group) scale and zero (scales rounded per cfg->scale_store). minmax, or the official mse grid search
 * (100 range fractions × every zero point, error mean|w−ŵ|^2.4). Degenerate
 * rows/groups (all zero, constant) get a finite positive scale. W must be finite. */
void eng_quant_init_params(eng_pool_t *pool, const float *W, int m, int n, const eng_qcfg_t *cfg, float *scale,
                           float *zero);
/* RTN: init + round into ql (allocated by eng_qlinear_init). pool: borrowed, NULL = serial
 * (as for every pool argument below). */
void eng_quant_rtn(eng_pool_t *pool, const float *W, const eng_qcfg_t *cfg, eng_qlinear_t *ql);
/* Relative Frobenius error ‖Ŵ−W‖/‖W‖. */
double eng_quant_rel_error(const float *W, const float *What, size_t n);

/* ---- LRQ (arXiv 2407.11534) / FlexRound (arXiv 2306.00317); docs/algorithms.md, LRQ ----
 * Divisor s1·exp(S): Wint = clamp(round(W / (exp(a)·exp(S))), −z, 2^b−1−z), Ŵ = exp(a)·Wint.
 *   LRQ:        S = L·U + r·1ᵀ + 1·cᵀ   L (m,k), U (k,n), r (m), c (n)
 *   FlexRound:  S = S2 + r·1ᵀ            S2 (m,n), r (m)
 * a = log s1 is (m, G). zero z fixed from init. */
typedef struct eng_lrq {
    int m, n, k, gs, G, bits;
    int scale_store;          /* ENG_SCALE_*: freeze rounds exp(a) to it before choosing codes */
    int full;                 /* 1: FlexRound-style S2; 0: low-rank L·U + c */
    const float *W;           /* (m,n) borrowed */
    float *zero;              /* (m,G) owned, fixed */
    /* views into the caller's parameter arena (eng_lrq_bind) */
    float *a, *L, *U, *S2, *r, *c;
    float *ga, *gL, *gU, *gS2, *gr, *gc;
    /* owned scratch (m,n): S, then the per-element factor for backward */
    float *S, *t;
    uint8_t *in;              /* unused (NULL): backward recomputes the clamp mask from t */
    eng_pool_t *pool;         /* borrowed, NULL (as left by init) = serial; set by the caller */
    eng_mm_t *mm;             /* borrowed matmul backend of L·U and its gradients, NULL = OpenBLAS fp32 */
} eng_lrq_t;

/* Rank from policy: "ratio" → round(ratio·min(m,n)), "fixed" → rank, "paper" → the official code's
 * shape rule (docs/algorithms.md, rank policies).
 * Returns k; *full = 1 when k ≥ min(m,n) (or the paper rule says full). */
int eng_lrq_rank(int m, int n, const char *policy, int rank, double ratio, int *full);
size_t eng_lrq_param_count(int m, int n, int k, int G, int full);
int eng_lrq_init(eng_lrq_t *q, const float *W, int m, int n, int k, int full, const eng_qcfg_t *cfg, lrq_err_t *err);
void eng_lrq_close(eng_lrq_t *q);
/* Lay out a, (L, U | S2), r, c over params/grads (eng_lrq_param_count floats each). */
void eng_lrq_bind(eng_lrq_t *q, float *params, float *grads);
/* Initial values (a from the minmax/mse init, L=0, U~U(−1/√n, 1/√n) from the rng, r=c=S2=0). */
void eng_lrq_reset(eng_lrq_t *q, const eng_qcfg_t *cfg, uint64_t *rng);
/* Ŵ (m,n) from the current parameters; saves what backward needs. */
void eng_lrq_forward(eng_lrq_t *q, float *What);
/* dŴ (m,n) → ga, gL, gU | gS2, gr, gc (overwritten). STE through round, clamp mask. */
void eng_lrq_backward(eng_lrq_t *q, const float *dWhat);
/* Integer codes of the current parameters into ql (same m, n, bits, group size). The scales are
 * exp(a) rounded to the stored type first (eng_quant_store_scale); the codes are then the learned
 * rounding with that scale as s1 (divisor s·exp(S)), so Ŵ = s·(q − z) holds exactly. */
void eng_lrq_freeze(const eng_lrq_t *q, eng_qlinear_t *ql);

/* ---- optimizer ---- */
typedef struct eng_adam { float beta1, beta2, eps; } eng_adam_t;
/* One Adam step (t ≥ 1) over n parameters. */
void eng_adam_step(eng_pool_t *pool, const eng_adam_t *o, float *p, const float *g, float *m, float *v, size_t n, float lr, long t);
/* Cosine annealing to 0: lr0·(1+cos(π·it/iters))/2 for step it ∈ [0, iters). */
float eng_cosine_lr(float lr0, long it, long iters);

/* ---- deterministic RNG (splitmix64), state is one uint64 (checkpointable) ---- */
uint64_t eng_rng_next(uint64_t *s);
float eng_rng_uniform(uint64_t *s); /* [0,1) */

#endif
