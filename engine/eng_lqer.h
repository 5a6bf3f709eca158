/* eng_lqer.h — truncated SVD and LQER / L²QER (Zhang et al., ICML 2024, arXiv 2402.02446;
 * docs/algorithms.md, LQER and L²QER).
 *
 *   E = W − Ŵ (m,n);  S = diag(s) (n) (L²QER; s = 1 for LQER)
 *   E·S = U Σ Vᵀ,  keep k:  L = U_k Σ_k^½ (m,k),  R = Σ_k^½ V_kᵀ S⁻¹ (k,n),  W ≈ Ŵ + L·R
 * (the paper's A = Rᵀ, B = Lᵀ; it puts all of Σ into B, lrq splits √Σ over both sides so that
 * the per-row int8 scales of both factors see balanced magnitudes; the product is the same). */
#ifndef ENG_LQER_H
#define ENG_LQER_H
#include <stdint.h>
#include "lrq_err.h"
#include "eng_lowrank.h"

typedef enum { ENG_SVD_EXACT = 0, ENG_SVD_RANDOMIZED = 1 } eng_svd_method_t;

/* Top-k singular triplets of A (m,n) fp32: U (m,k), S (k) descending, Vt (k,n); k ≤ min(m,n).
 * EXACT: LAPACK sgesdd (all min(m,n) triplets, the first k kept). RANDOMIZED: Halko, Martinsson,
 * Tropp (arXiv 0909.4061) range finder with k+10 Gaussian columns (splitmix64 from seed) and 2
 * power iterations, orthonormalised by QR (sgeqrf/sorgqr), then sgesdd of the small projection;
 * it falls back to EXACT when k + 10 ≥ min(m,n). */
int eng_svd_topk(const float *A, int m, int n, int k, eng_svd_method_t method, uint64_t seed, float *U, float *S,
                 float *Vt, lrq_err_t *err);

/* L²QER's activation scale from mean |x| (n): s̃ = max(a, 1e-4), s = s̃ / √(min s̃ · max s̃). */
void eng_lqer_scale(const float *absmean, int n, float *s);

/* Fit f (initialised with eng_lowrank_init for (m,n), rank k ≥ 1) to the residual E (m,n):
 * scaled by s (n) when s != NULL (L²QER), plain when NULL (LQER); factors rounded to f->bits. */
int eng_lqer_fit(const float *E, const float *s, eng_svd_method_t method, eng_lowrank_t *f, lrq_err_t *err);

#endif
