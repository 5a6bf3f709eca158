/* lrq_spec.h — the job spec: parse + validate (shared by lrq-worker and lrqd).
 *
 * Every invalid value is reported as err->field ("weight.bits") + err->msg
 * ("must be an integer in 2..8"). Unknown keys are an error. Validation here is
 * about values only; file existence and path confinement are checked by the
 * caller (lrq_spec_check_paths). */
#ifndef LRQ_SPEC_H
#define LRQ_SPEC_H
#include <stdint.h>
#include <jansson.h>
#include "lrq_err.h"

/* Block inputs of the quantized model during reconstruction: sequential feeds block b
 * the output of the already quantized blocks 0..b-1 (the paper's choice); parallel
 * feeds it the FP model's input, so the blocks are independent of each other. */
enum lrq_pipeline { LRQ_PIPE_SEQUENTIAL = 0, LRQ_PIPE_PARALLEL };
enum lrq_method { LRQ_M_RTN = 0, LRQ_M_LRQ, LRQ_M_FLEXROUND, LRQ_M_GPTQ, LRQ_M_LQER, LRQ_M_ODLRI };
enum lrq_lqer_base { LRQ_BASE_RTN = 0, LRQ_BASE_GPTQ, LRQ_BASE_LRQ, LRQ_BASE_FLEXROUND };
enum lrq_odlri_init { LRQ_ODLRI_ZERO = 0, LRQ_ODLRI_LR_FIRST, LRQ_ODLRI_OUTLIER };

/* "gptq": also the Q-step of odlri and the base of lqer with base "gptq" (docs/algorithms.md, GPTQ) */
typedef struct lrq_gptq_spec {
    double damp;             /* [0, 1], default 0.01 (of mean diag H) */
    int block_size;          /* power of two 1..65536, default 128 */
    int act_order, static_groups; /* default false; act_order with groups needs static_groups */
} lrq_gptq_spec_t;
/* "lqer": LQER (scaled false) / L²QER (scaled true) on a base quantizer */
typedef struct lrq_lqer_spec {
    int rank;                /* ≥ 1, default 32; ≤ min(in, out) of every linear (checked by the worker) */
    int scaled;              /* default true (L²QER) */
    int factor_bits;         /* 16 (fp16, default) or 8 (int8 per row + fp16 scale) */
    int base;                /* enum lrq_lqer_base, default rtn */
    int svd;                 /* 0 auto (exact up to min(in, out) 1024, randomized above), 1 exact, 2 randomized */
} lrq_lqer_spec_t;
/* "odlri": alternating Q (GPTQ) + LR with the outlier-driven init */
typedef struct lrq_odlri_spec {
    int rank;                /* default 16 */
    int outliers;            /* default 16; ≤ in of every linear (checked by the worker) */
    int init;                /* enum lrq_odlri_init, default odlri */
    int iterations;          /* 1..1000, default 15 */
    int factor_bits;         /* 16 or 8 */
} lrq_odlri_spec_t;

/* "activation": weight-activation quantization (docs/algorithms.md, Activation quantization).
 * bits / kv_bits 16 = that part off; both 16 (the default, or the object absent) = weight-only. */
typedef struct lrq_spec_act {
    int bits;                /* linear inputs: 2..8 or 16, default 16 */
    int kv_bits;             /* K/V projection outputs: 2..8 or 16, default 16 */
    int granularity;         /* 0 per_token (dynamic, default), 1 per_tensor (static, calibrated) */
    int symmetric;           /* default false */
    int calibrate;           /* per_tensor: 0 minmax (default), 1 percentile, 2 mse */
    double percentile;       /* default 99.99, (50, 100] */
    int simulate;            /* simulate_during_reconstruction, default false */
} lrq_spec_act_t;
/* "smooth": SmoothQuant migration before quantization; on = the object is present. */
typedef struct lrq_spec_smooth {
    int on;
    double alpha;            /* default 0.8 (the LRQ paper's W8A8 setting), [0, 1] */
    int pow2;                /* round factors to powers of two (exact fold), default false */
} lrq_spec_smooth_t;

typedef struct lrq_spec {
    char *model;             /* required */
    char *tokenizer;         /* optional (NULL) */
    int method;              /* enum lrq_method */
    /* weight */
    int bits;                /* 2..8, default 4 */
    int group_size;          /* 0 = per-channel, else a power of two ≥ 16; groups of that many input
                                columns, the last one partial when it does not divide (GPTQ) */
    int symmetric;           /* default false */
    int init_mse;            /* "mse" (default) or "minmax" */
    /* calibration (required for lrq/flexround; optional for rtn) */
    char *calib_path;
    int calib_samples;       /* default 128, 1..100000 */
    int calib_seq_len;       /* default 256, 8..32768 */
    /* eval (optional) */
    char *eval_path;         /* NULL = no evaluation */
    int eval_seq_len;        /* default 256 */
    int eval_max_windows;    /* 0 = all */
    /* lrq / flexround */
    long iterations;         /* default 5000, 1..1000000 */
    double lr;               /* default 5e-4, (0, 1] */
    int batch_size;          /* default 2, 1..4096 */
    int rank_policy;         /* 0 ratio (default), 1 fixed, 2 paper */
    int rank;                /* for fixed, ≥ 1 */
    double rank_ratio;       /* default 0.25, (0, 1] */
    double checkpoint_every_s; /* default 60, 0 = only at block ends */
    /* output */
    int export_hf, export_gptq;  /* default: hf only */
    int export_gguf, export_ct;  /* "gguf", "compressed-tensors" (docs/formats.md, Artifacts) */
    int gguf_type;           /* "gguf": {"type": …}: 0 auto, 1 q4_0, 2 q4_1, 3 q8_0, 4 f16, 5 f32 */
    lrq_spec_act_t act;      /* "activation" */
    lrq_spec_smooth_t smooth; /* "smooth" */
    uint64_t seed;
    int threads;             /* 0 = all cores, ≤ 1024 */
    int pipeline;            /* enum lrq_pipeline: "sequential" (default) | "parallel" */
    int tasks;               /* "tasks": blocks reconstructed by this many worker tasks at once (parallel
                                pipeline, lrq / flexround only); default 1 = the job's one worker */
    lrq_gptq_spec_t gptq;
    lrq_lqer_spec_t lqer;
    lrq_odlri_spec_t odlri;
    /* "compute": matmul backend and precision of the reconstruction (engine/eng_mm.h) */
    struct lrq_spec_compute {
        int precision;       /* lrq_precision_name: 0 fp32 (default), 1 bf16 (autocast semantics) */
        int backend;         /* lrq_backend_name: 0 openblas (default), 1 onednn */
    } compute;
    /* daemon-level (ignored by the worker) */
    char *name;
    int priority;            /* -100..100, default 0 */
    int max_attempts;        /* 1..100, default 3 */
} lrq_spec_t;

extern const char *const lrq_method_name[];      /* "rtn", "lrq", "flexround" */
extern const char *const lrq_rank_policy_name[]; /* "ratio", "fixed", "paper" */
extern const char *const lrq_pipeline_name[];    /* "sequential", "parallel" */
extern const char *const lrq_gguf_type_name[];   /* "auto", "q4_0", "q4_1", "q8_0", "f16", "f32" */
extern const char *const lrq_lqer_base_name[];   /* "rtn", "gptq", "lrq", "flexround" */
extern const char *const lrq_odlri_init_name[];  /* "zero", "lr_first", "odlri" */
extern const char *const lrq_lqer_svd_name[];    /* "auto", "exact", "randomized" */
/* 1 when the job runs LRQ/FlexRound reconstruction (methods lrq, flexround, lqer on base lrq/flexround). */
int lrq_spec_uses_recon(const lrq_spec_t *s);
/* 1 when the result has low-rank factors (lqer, odlri). */
int lrq_spec_factored(const lrq_spec_t *s);
/* The factors' rank and storage bits (lqer.*, odlri.*); 0 for methods without factors. */
int lrq_spec_rank(const lrq_spec_t *s);
int lrq_spec_factor_bits(const lrq_spec_t *s);
extern const char *const lrq_act_granularity_name[]; /* "per_token", "per_tensor" */
extern const char *const lrq_act_calibrate_name[];   /* "minmax", "percentile", "mse" */
extern const char *const lrq_precision_name[];   /* "fp32", "bf16" (= enum eng_mm_prec) */
extern const char *const lrq_backend_name[];     /* "openblas", "onednn" (= enum eng_mm_backend) */

/* Parse and validate. On success *s owns its strings (lrq_spec_close). */
int lrq_spec_parse(const json_t *j, lrq_spec_t *s, lrq_err_t *err);
int lrq_spec_load_file(const char *path, lrq_spec_t *s, json_t **json_out, lrq_err_t *err);
void lrq_spec_close(lrq_spec_t *s);

/* The spec fields that name server files, for path checks: fills up to 4
 * (field, value) pairs; returns how many. */
int lrq_spec_paths(const lrq_spec_t *s, const char *fields[4], const char *values[4]);

#endif
