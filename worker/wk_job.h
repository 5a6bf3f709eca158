/* wk_job.h — one quantization job inside lrq-worker. */
#ifndef WK_JOB_H
#define WK_JOB_H
#include <signal.h>
#include <jansson.h>
#include "lrq_spec.h"
#include "eng_model.h"
#include "eng_tok.h"
#include "eng_quant.h"
#include "eng_lowrank.h"
#include "wk_proto.h"

typedef struct wk_job {
    lrq_spec_t spec;
    json_t *spec_json;            /* as read */
    char workdir[2048];
    wk_proto_t proto;
    eng_model_t *model;
    eng_tok_t *tok;
    eng_qcfg_t qcfg;
    eng_qlinear_t *ql;            /* [L * ENG_NLIN] results, model row order */
    eng_lowrank_t *lr;            /* [L * ENG_NLIN] low-rank factors (lqer, odlri), NULL = none; rank 0 = none */
    struct wk_act *aq;            /* activation quantization + SmoothQuant (wk_act.h), NULL = weight-only */
    eng_pool_t *pool;             /* the job's threads (owned by wk_job_run); NULL = serial */
    eng_mm_t *mm, *mm_fp32;       /* matmul backends (owned by wk_job_run): spec.compute for the reconstruction's
                                     training; fp32, same backend, for targets and evaluation (NULL: use mm) */
    json_t *metrics;              /* built up as stages finish */
    json_t *artifacts;            /* [{path, size, sha256}] after export (in the done event) */
    const volatile sig_atomic_t *stop; /* set by SIGTERM/SIGINT */
    double t0;
    /* Task mode (lrq-worker run --blocks A-B, docs/daemon.md "Block-parallel tasks"): reconstruct
     * blocks [task_b0, task_b1) only, from the FP model's inputs; task_b1 = 0: the whole job. */
    int task_b0, task_b1;
    /* --task K (a Slurm array element): task_k = K + 1, the K-th range of lrq_task_range, resolved
     * by wk_recon_run once L is known; 0 otherwise. task_mode: --blocks or --task (no eval, no export). */
    int task_k, task_mode;
    /* --assemble: a multi-task job whose tasks ran elsewhere (the array): use their block files
     * (train any block still missing) instead of spawning the tasks. */
    int assemble;
    const char *spec_path;        /* the spec file (a coordinating worker hands it to its tasks) */
} wk_job_t;

/* Exit statuses of `lrq-worker run` (docs/worker-protocol.md). */
enum { WK_EXIT_OK = 0, WK_EXIT_FAIL = 65, WK_EXIT_STOPPED = 75, WK_EXIT_TRANSIENT = 70 };

int wk_job_run(wk_job_t *job, lrq_err_t *err);
static inline eng_mm_t *wk_job_mm_fp32(const wk_job_t *job) { return job->mm_fp32 ? job->mm_fp32 : job->mm; }
/* LRQ / FlexRound block-wise reconstruction with checkpoint/resume into job->ql. */
int wk_recon_run(wk_job_t *job, double frac0, double frac1, lrq_err_t *err);
/* The coordinator of a job with spec.tasks > 1 (wk_tasks.c): runs the block ranges as child
 * `lrq-worker run --blocks A-B` processes, relays their events, restarts a killed one; returns
 * when every range's block files are written (then wk_recon_run assembles). */
int wk_tasks_run(wk_job_t *job, double frac0, double frac1, lrq_err_t *err);
/* Weight rounding for the whole model with RTN into job->ql. */
int wk_rtn_run(wk_job_t *job, double frac0, double frac1, lrq_err_t *err);

#endif
