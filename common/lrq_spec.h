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
    uint64_t seed;
    int threads;             /* 0 = all cores, ≤ 1024 */
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
