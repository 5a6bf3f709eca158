/* wk_act.h — the job's activation quantization and SmoothQuant (issue 11; docs/algorithms.md,
 * Activation quantization, SmoothQuant; artifact in docs/formats.md, activation.json).
 *
 * Order (SmoothQuant's released pipeline): measure activation maxima on the FP model → fold the
 * smoothing factors (job->model then points at the smoothed view) → calibrate static ranges on the
 * smoothed FP model → quantize the weights (RTN / LRQ / FlexRound; with
 * simulate_during_reconstruction the block reconstruction runs the activation quantizers) →
 * evaluate with them → write artifacts/activation.json. */
#ifndef WK_ACT_H
#define WK_ACT_H
#include "wk_job.h"
#include "eng_actq.h"
#include "eng_smooth.h"

typedef struct wk_act {
    int on;                  /* any activation site quantized */
    eng_actq_t q;
    int smoothed;
    eng_smooth_t sm;
    eng_model_t *orig;       /* the model as opened (job->model points at sm.view while smoothed) */
    int calib_windows, calib_seq_len;
} wk_act_t;

/* Spec → engine settings. */
void wk_act_cfg(const lrq_spec_t *s, eng_aqcfg_t *cfg);
/* Smoothing and calibration passes; job->aq stays NULL when the spec has neither. */
int wk_act_prepare(wk_job_t *job, double frac, lrq_err_t *err);
/* Quantizers for every layer for the evaluation forward ([L]), or NULL. */
eng_actq_layer_t *wk_act_eval_layers(wk_job_t *job);
/* Block b's quantizers (with STE masks) for reconstruction, NULL unless simulate_during_reconstruction. */
eng_actq_layer_t *wk_act_recon_layer(wk_job_t *job, int b);
/* The model to use as the FP reference in evaluation (the unsmoothed one). */
const eng_model_t *wk_act_fp_model(const wk_job_t *job);
/* artifacts/activation.json (settings + every static scale) and the metrics' "activation" object. */
int wk_act_write(wk_job_t *job, lrq_err_t *err);
/* Read an activation.json into q (for `lrq-worker eval --activation`), checking it against the model. */
int wk_act_load(const char *path, const eng_model_t *m, eng_actq_t *q, lrq_err_t *err);
/* Restores job->model and frees job->aq. */
void wk_act_close(wk_job_t *job);

#endif
