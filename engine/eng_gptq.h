/* eng_gptq.h — calibration statistics and GPTQ (docs/algorithms.md, Calibration statistics, GPTQ;
 * Frantar et al., arXiv 2210.17323).
 *
 * A linear W (m,n) computes y = x Wᵀ; its calibration inputs X (N,n) give H = Xᵀ X = Σ_t x_t x_tᵀ
 * (n,n), accumulated in double, and mean |x| (n) (L²QER's scale). GPTQ minimises
 * ‖(W − Ŵ) Xᵀ‖_F² = tr((W − Ŵ) H (W − Ŵ)ᵀ) column by column with error feedback. */
#ifndef ENG_GPTQ_H
#define ENG_GPTQ_H
#include <stddef.h>
#include "lrq_err.h"
#include "eng_pool.h"
#include "eng_quant.h"

typedef struct eng_hstat {
    int n;
    long rows;          /* tokens seen */
    double *H;          /* (n,n); the upper triangle accumulates, eng_hstat_finish mirrors it */
    double *absum;      /* (n) Σ |x| */
    double *buf;        /* (ENG_HSTAT_CHUNK, n) conversion scratch */
} eng_hstat_t;
#define ENG_HSTAT_CHUNK 256

int eng_hstat_init(eng_hstat_t *s, int n, lrq_err_t *err);
void eng_hstat_close(eng_hstat_t *s);
/* H += Xᵀ X, absum += |X| over rows X (rows, n) fp32. Fixed order (chunks of ENG_HSTAT_CHUNK
 * rows, dsyrk), independent of threads. */
void eng_hstat_add(eng_hstat_t *s, const float *X, long rows);
/* Mirror the upper triangle into the lower one (call once, after the last add). */
void eng_hstat_finish(eng_hstat_t *s);
/* mean |x| per input channel (n); 0 when no rows. */
void eng_hstat_absmean(const eng_hstat_t *s, float *out);

typedef struct eng_gptq_cfg {
    double damp;        /* fraction of mean diag(H) added to the diagonal (0.01) */
    int block_size;     /* lazy batch width B, a power of two (128) */
    int act_order;      /* columns in order of decreasing diag(H) */
    int static_groups;  /* group scales from the original W up front (required with act_order and groups) */
} eng_gptq_cfg_t;

typedef struct eng_gptq_info {
    double damp;        /* the damping actually added (absolute) */
    int retries;        /* extra dampings needed because H + damp·I was not positive definite */
    int dead;           /* input channels with diag(H) = 0 (their weights are quantized as 0) */
} eng_gptq_info_t;

/* Quantize W (m,n) with Hessian H (n,n, symmetric, both triangles; not modified) into ql
 * (allocated by the caller with eng_qlinear_init for the same shape and cfg). Scales and zeros
 * come from eng_quant_init_params (cfg->init): per-channel and static groups from the original
 * W, dynamic groups from the error-updated columns when the column loop reaches the group.
 * Rounding as RTN (eng_quant.h). Cholesky and its inverse through LAPACK in double; H + λI not
 * positive definite → λ ← max(10λ, 0.01·mean diag H) (at most 8 times) and info->retries counts it; still failing, or a
 * non-finite H, is LRQ_ENUMERIC. info may be NULL. act_order with groups needs static_groups
 * (LRQ_ESPEC otherwise): stored groups are contiguous columns. */
int eng_gptq_quantize(eng_pool_t *pool, const float *W, int m, int n, const double *H, const eng_qcfg_t *cfg,
                      const eng_gptq_cfg_t *g, eng_qlinear_t *ql, eng_gptq_info_t *info, lrq_err_t *err);

/* Activation-aware error √(tr(E H Eᵀ) / tr(W H Wᵀ)), E = W − What (both (m,n)); H (n,n) full.
 * The absolute √tr(E H Eᵀ) = ‖E Xᵀ‖_F when H = Xᵀ X. */
double eng_act_error(const float *W, const float *What, int m, int n, const double *H);
double eng_hnorm2(const float *E, int m, int n, const double *H); /* tr(E H Eᵀ) */

#endif
