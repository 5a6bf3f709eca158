/* eng_smooth.h — SmoothQuant migration (Xiao et al., arXiv 2211.10438; docs/algorithms.md,
 * SmoothQuant): per input channel j of the linears that follow an RMSNorm,
 *
 *     s_j = max(a_j, 1e-5)^α / max(w_j, 1e-5)^(1−α),   a_j = max |X_j| (calibration), w_j = max_i |W_ij|
 *
 * over q, k, v (after the attention norm) and gate, up (after the MLP norm); the norm weight is
 * divided by s and those linears' columns multiplied by it, which leaves the function unchanged.
 * o and down have no preceding norm and are left alone (the paper's choice). With pow2 the factors
 * are rounded to powers of two, so the fold is exact in floating point (bit-identical logits). */
#ifndef ENG_SMOOTH_H
#define ENG_SMOOTH_H
#include "eng_model.h"

/* s (n) from activation maxima a (n) and the column maxima of nW weights W[k] (m[k], n). */
void eng_smooth_factors(const float *a, const float *const *W, const int *m, int nW, int n, float alpha, int pow2,
                        float *s);

/* A smoothed view of src: `view` is a model whose attention/MLP norms and q, k, v, gate, up are owned
 * fp32 copies with the factors folded in; everything else (embeddings, o, down, lm_head, files) is
 * borrowed from src, which must outlive it. Never pass `view` to eng_model_free. */
typedef struct eng_smooth {
    eng_model_t view;
    float *s;             /* (L, 2, D) factors: [l][0] attention input, [l][1] MLP input */
    float **bufs;         /* owned fp32 tensors */
    int nbufs;
} eng_smooth_t;
/* amax (L, 2, D): per-channel max |x| at the attention and MLP inputs (eng_aq_stats chmax). */
int eng_smooth_init(eng_smooth_t *sm, const eng_model_t *src, const float *amax, float alpha, int pow2,
                    lrq_err_t *err);
void eng_smooth_close(eng_smooth_t *sm);

#endif
