/* wk_methods.h — GPTQ, LQER / L²QER and ODLRI jobs (issue 10; docs/algorithms.md, Calibration
 * statistics, GPTQ, LQER and L²QER, ODLRI, Equal-bits accounting). */
#ifndef WK_METHODS_H
#define WK_METHODS_H
#include "wk_job.h"

/* Refuse settings that depend on the model's shapes (lqer.rank / odlri.rank above min(in, out),
 * odlri.outliers above in) before any work, naming the field. */
int wk_methods_check(wk_job_t *job, lrq_err_t *err);
/* Calibration statistics streamed block by block on the quantized model's inputs, then per
 * linear GPTQ / LQER / ODLRI into job->ql and job->lr, with per-linear checkpoints (resume from
 * the last finished linear). For lqer on base lrq / flexround, runs wk_recon_run first. */
int wk_methods_run(wk_job_t *job, double f0, double f1, lrq_err_t *err);
/* Bits per weight of linear idx (codes, scales, zeros, factors: docs/algorithms.md,
 * Equal-bits accounting) and its storage in bits. */
double wk_layer_bits(const wk_job_t *job, int idx, double *weights);
/* metrics.bits_per_weight {model, codes, scales_zeros, factors} over every quantized linear. */
void wk_bits_metrics(wk_job_t *job);
/* Write artifacts/factored/model.safetensors (docs/formats.md, Factored artifact). */
int wk_methods_export(wk_job_t *job, lrq_err_t *err);
void wk_lr_free(wk_job_t *job);
/* hf export of job->ql, with the factors merged into dense weights when job->lr is set. */
int wk_export_hf(wk_job_t *job, const char *dir, lrq_err_t *err);

#endif
