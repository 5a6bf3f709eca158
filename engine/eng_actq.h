/* eng_actq.h — fake quantization of activations (docs/algorithms.md, Activation quantization):
 * per-token dynamic min/max and per-tensor static (scale, zero) on the inputs of the seven
 * linears and on the K/V projections' outputs (before RoPE for K), with the straight-through
 * backward; calibration of static ranges from streamed statistics (min/max, a percentile, an MSE
 * search over a histogram).
 *
 * Sites per decoder block (the seven linears read four distinct tensors: q/k/v share rms1(x),
 * gate/up share rms2(h)):
 *   ENG_AQ_ATTN_IN  (N,D)   input of q, k, v        ENG_AQ_O_IN    (N,H·Dh) input of o
 *   ENG_AQ_FFN_IN   (N,D)   input of gate, up       ENG_AQ_DOWN_IN (N,F)    input of down
 *   ENG_AQ_K_OUT    (N,KVH·Dh) k_proj output        ENG_AQ_V_OUT   (N,KVH·Dh) v_proj output
 * Input sites use `bits`, K/V sites `kv_bits`; 16 (or more) = that site is not quantized.
 * Codes are q ∈ [0, 2^b − 1], x̂ = s·(q − z), as for weights. */
#ifndef ENG_ACTQ_H
#define ENG_ACTQ_H
#include <stddef.h>
#include <stdint.h>
#include "lrq_err.h"

enum eng_aq_site { ENG_AQ_ATTN_IN = 0, ENG_AQ_O_IN, ENG_AQ_FFN_IN, ENG_AQ_DOWN_IN, ENG_AQ_K_OUT, ENG_AQ_V_OUT,
                   ENG_AQ_NSITE };
extern const char *const eng_aq_site_name[ENG_AQ_NSITE]; /* "attn_in", "o_in", … */
/* The activation site a linear reads (ENG_Q → ENG_AQ_ATTN_IN, …, ENG_DOWN → ENG_AQ_DOWN_IN). */
int eng_aq_site_of_linear(int lin);

typedef enum { ENG_AQ_PER_TOKEN = 0, ENG_AQ_PER_TENSOR = 1 } eng_aq_gran_t;
typedef enum { ENG_AQ_CAL_MINMAX = 0, ENG_AQ_CAL_PERCENTILE = 1, ENG_AQ_CAL_MSE = 2 } eng_aq_cal_t;

typedef struct eng_aqcfg {
    int bits;              /* linear inputs: 2..8, ≥ 16 = off */
    int kv_bits;           /* K/V outputs: 2..8, ≥ 16 = off */
    eng_aq_gran_t granularity;
    int symmetric;         /* z = 2^(b−1), s = max|x| / (2^(b−1) − 1) */
    eng_aq_cal_t calibrate;  /* per-tensor only */
    double percentile;     /* for ENG_AQ_CAL_PERCENTILE, in (50, 100] */
} eng_aqcfg_t;

/* Bits of site (16 = off). */
int eng_aq_site_bits(const eng_aqcfg_t *cfg, int site);

/* One block's quantizers. Mutable only through the masks the forward saves for the backward. */
typedef struct eng_actq_layer {
    const eng_aqcfg_t *cfg;            /* borrowed */
    float scale[ENG_AQ_NSITE];         /* per-tensor static: s > 0; unused per-token */
    float zero[ENG_AQ_NSITE];          /* integer-valued, in [0, 2^b − 1] */
    uint8_t *mask[ENG_AQ_NSITE];       /* STE masks (borrowed scratch, NULL = none), mask_cap bytes each */
    size_t mask_cap;
    size_t saved[ENG_AQ_NSITE];        /* elements whose mask the last saving forward wrote (0 = none) */
    struct eng_aq_stats *stats;        /* non-NULL: observe the site's FP input (calibration), don't quantize */
} eng_actq_layer_t;

/* ---- the quantizer itself (element-wise, shapes (N rows = tokens, C cols)) ----
 * Per-token (dynamic), row t:  lo = min(min_c x_tc, 0), hi = max(max_c x_tc, 0)
 *   asymmetric: s = max((hi − lo)/M, 1e-8), z = clamp(rint(−lo/s), 0, M)
 *   symmetric:  s = max(max(−lo, hi)/(2^(b−1) − 1), 1e-8), z = 2^(b−1)
 * Per-tensor (static): (s, z) given.
 *   x̂ = s · (clamp(rint(x/s) + z, 0, M) − z),  M = 2^b − 1. */
/* Per-token scale and zero of one row x (C). */
void eng_aq_token_params(const float *x, int C, int bits, int symmetric, float *s, float *z);
/* x (N,C) → x̂ in place, per token. mask (N·C bytes, NULL = skip) receives 1 where the STE passes
 * the gradient (every element: the range covers the token). */
void eng_aq_fq_token(float *x, uint8_t *mask, int N, int C, int bits, int symmetric);
/* x (n) → x̂ in place with static (s, z). mask (n, NULL = skip) = 1[−z ≤ rint(x/s) ≤ M − z]
 * (the clamp did not bite). */
void eng_aq_fq_tensor(float *x, uint8_t *mask, size_t n, float s, float z, int bits);
/* Straight-through backward: dx (n) ⊙= mask (in place). mask NULL = identity. */
void eng_aq_ste_backward(float *dx, const uint8_t *mask, size_t n);

/* ---- block hooks (eng_block.c): aq NULL or the site off = no-op ----
 * Forward: x (N,C) quantized in place (or observed for calibration); per-tensor with save != 0
 * keeps the STE mask in aq->mask[site] (requires N·C ≤ mask_cap: the training batch's size);
 * per-token needs none (nothing is clipped).
 * Backward: dx (N,C) in place through the saved mask (per-token: identity). */
void eng_actq_forward(eng_actq_layer_t *aq, int site, float *x, int N, int C, int save);
void eng_actq_backward(const eng_actq_layer_t *aq, int site, float *dx, int N, int C);

/* ---- statistics for calibration, streamed over batches ----
 * Per site: exact min/max, a histogram of NBINS bins over [−R, R) whose range doubles (bins merged
 * pairwise) when a value falls outside, and optionally per-channel max |x| (SmoothQuant). */
#define ENG_AQ_NBINS 4096
typedef struct eng_aq_stats {
    int C;                    /* channels (per-channel max only) */
    int want_channels;
    double count;
    float min, max;
    float R;                  /* histogram half-range, 0 until the first non-zero value */
    double *hist;             /* (ENG_AQ_NBINS) */
    float *chmax;             /* (C) max |x| per channel, when want_channels */
} eng_aq_stats_t;
int eng_aq_stats_init(eng_aq_stats_t *st, int C, int want_channels, lrq_err_t *err);
void eng_aq_stats_close(eng_aq_stats_t *st);
/* Accumulate x (N,C). */
void eng_aq_stats_add(eng_aq_stats_t *st, const float *x, int N, int C);
/* Static (s, z) for `bits` from the statistics with the configured method (docs/algorithms.md,
 * Activation quantization: calibration). Empty or all-zero statistics give s = 1, z = 2^(b−1)
 * (or 0 asymmetric, with lo = 0) — finite, and 0 stays exact. */
void eng_aq_calibrate(const eng_aq_stats_t *st, const eng_aqcfg_t *cfg, int bits, float *s, float *z);

/* Per-layer stats set for the calibration pass: [L][ENG_AQ_NSITE]. */
typedef struct eng_aq_calib {
    int L;
    eng_aq_stats_t *st;       /* [L * ENG_AQ_NSITE] */
    eng_actq_layer_t *layers; /* [L], .stats pointing into st, for eng_block_w_t.aq */
} eng_aq_calib_t;
/* C of each site from the shapes: widths[site]. channels: collect per-channel max (attn/ffn inputs). */
int eng_aq_calib_init(eng_aq_calib_t *c, int L, const int widths[ENG_AQ_NSITE], int channels, lrq_err_t *err);
void eng_aq_calib_close(eng_aq_calib_t *c);

/* The whole model's quantizers, owned: cfg, [L] layers, STE mask scratch (one block at a time). */
typedef struct eng_actq {
    eng_aqcfg_t cfg;
    int L;
    eng_actq_layer_t *layer;  /* [L], masks NULL */
    eng_actq_layer_t train;   /* a copy of one layer with masks (eng_actq_train_view) */
    uint8_t *mask_mem;
} eng_actq_t;
int eng_actq_init(eng_actq_t *q, const eng_aqcfg_t *cfg, int L, lrq_err_t *err);
void eng_actq_close(eng_actq_t *q);
/* Static ranges of every layer and site from the calibration statistics. */
void eng_actq_set_from_calib(eng_actq_t *q, const eng_aq_calib_t *c);
/* Allocate STE masks for batches of up to `elems` elements per site (N · max width). */
int eng_actq_alloc_masks(eng_actq_t *q, size_t elems, lrq_err_t *err);
/* Layer l with the masks attached (valid until the next call). */
eng_actq_layer_t *eng_actq_train_view(eng_actq_t *q, int l);

#endif
