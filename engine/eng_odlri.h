/* eng_odlri.h — Q + LR decomposition with alternating updates (CALDERA: Saha et al.,
 * arXiv 2405.18886) and the outlier-driven low-rank initialisation ODLRI (Cho et al., Findings
 * of ACL 2025, arXiv 2506.02077); docs/algorithms.md, ODLRI.
 *
 *   min_{Q, L, R} tr((W − Q − LR) H (W − Q − LR)ᵀ),   H = Σ x xᵀ + λI
 *   Q-step:  Q = GPTQ(W − LR)             (scalar uniform quantizer; CALDERA uses an E8 lattice)
 *   LR-step: LR = argmin_{rank ≤ r} ‖(W − Q − LR) C‖_F,  H = C Cᵀ  (closed form: truncated SVD
 *            of (W − Q) C, then LR = U_r Σ_r V_rᵀ C⁻¹)
 * Inits: zero (Q first), lr_first (an LR-step on W), odlri (the LR-step restricted to the k
 * input channels of largest diag(H): with k ≤ r it reproduces those columns of W exactly and
 * leaves the others to Q). */
#ifndef ENG_ODLRI_H
#define ENG_ODLRI_H
#include "lrq_err.h"
#include "eng_pool.h"
#include "eng_quant.h"
#include "eng_gptq.h"
#include "eng_lowrank.h"

typedef enum { ENG_ODLRI_ZERO = 0, ENG_ODLRI_LR_FIRST = 1, ENG_ODLRI_OUTLIER = 2 } eng_odlri_init_t;

typedef struct eng_odlri_cfg {
    int rank, outliers, iterations;
    eng_odlri_init_t init;
} eng_odlri_cfg_t;

/* The k input channels of largest diag(H) (ties: lower index first), ascending order in idx. */
void eng_odlri_outliers(const double *H, int n, int k, int *idx);

/* LR-step without rounding: L (m,r), R (r,n) minimising tr((Wr − LR) H (Wr − LR)ᵀ) over rank ≤ r,
 * H (n,n) symmetric positive definite. cols/ncols restrict the problem to those input columns
 * (the others of R are 0): NULL = all. r is capped at min(m, ncols); the unused rank is 0. */
int eng_odlri_lr_step(const float *Wr, int m, int n, const double *H, const int *cols, int ncols, int r, float *L,
                      float *R, lrq_err_t *err);

/* Full decomposition of W (m,n) with statistics H (n,n, raw Σ x xᵀ): codes into ql (allocated),
 * factors into f (eng_lowrank_init with rank cfg->rank), keeping the iterate of lowest error;
 * errs[it] (cfg->iterations entries, may be NULL) = √(tr(E H Eᵀ)/tr(W H Wᵀ)) after iteration it,
 * with E = W − Ŵ − LR, raw H. *init_err = the same for the initial LR (Q = 0). */
int eng_odlri_run(eng_pool_t *pool, const float *W, int m, int n, const double *H, const eng_qcfg_t *qcfg,
                  const eng_gptq_cfg_t *g, const eng_odlri_cfg_t *o, eng_qlinear_t *ql, eng_lowrank_t *f,
                  double *errs, lrq_err_t *err);

#endif
