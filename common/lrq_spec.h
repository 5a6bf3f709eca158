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

enum lrq_method { LRQ_M_RTN = 0, LRQ_M_LRQ, LRQ_M_FLEXROUND };
/* Block inputs of the quantized model during reconstruction: sequential feeds block b
 * the output of the already quantized blocks 0..b-1 (the paper's choice); parallel
 * feeds it the FP model's input, so the blocks are independent of each other. */
enum lrq_pipeline { LRQ_PIPE_SEQUENTIAL = 0, LRQ_PIPE_PARALLEL };

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
    uint64_t seed;
    int threads;             /* 0 = all cores, ≤ 1024 */
    int pipeline;            /* enum lrq_pipeline: "sequential" (default) | "parallel" */
    /* daemon-level (ignored by the worker) */
    char *name;
    int priority;            /* -100..100, default 0 */
    int max_attempts;        /* 1..100, default 3 */
} lrq_spec_t;

extern const char *const lrq_method_name[];      /* "rtn", "lrq", "flexround" */
extern const char *const lrq_rank_policy_name[]; /* "ratio", "fixed", "paper" */
extern const char *const lrq_pipeline_name[];    /* "sequential", "parallel" */
extern const char *const lrq_gguf_type_name[];   /* "auto", "q4_0", "q4_1", "q8_0", "f16", "f32" */

/* Parse and validate. On success *s owns its strings (lrq_spec_close). */
int lrq_spec_parse(const json_t *j, lrq_spec_t *s, lrq_err_t *err);
int lrq_spec_load_file(const char *path, lrq_spec_t *s, json_t **json_out, lrq_err_t *err);
void lrq_spec_close(lrq_spec_t *s);

/* The spec fields that name server files, for path checks: fills up to 4
 * (field, value) pairs; returns how many. */
int lrq_spec_paths(const lrq_spec_t *s, const char *fields[4], const char *values[4]);

#endif
