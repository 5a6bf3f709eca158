/* exec.h — the executor interface: how a claimed job's worker is run.
 *
 * The worker's whole contract is its spec file, its work dir and its progress
 * stream (docs/daemon.md), so an executor only has to start
 * `lrq-worker run --spec DIR/spec.json --workdir DIR` somewhere, hand back the
 * stdout lines, deliver signals and report the exit. "local" (exec_local.c)
 * uses uv_spawn; "slurm" (exec_slurm.c) submits the same command with sbatch,
 * follows the worker's stdout file (Slurm's --output) with the same bounded line
 * splitter, reads the job's state with squeue and signals it with scancel.
 *
 * Callbacks run on the loop thread. on_exit is called exactly once, after the
 * executor released everything it holds for the run; the owner may free its
 * state there. A start() that fails calls no callback. */
#ifndef LRQD_EXEC_H
#define LRQD_EXEC_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "lrq_err.h"
#include "slurm.h"

typedef struct exec_job {
    int64_t job_id;
    const char *workdir;    /* absolute */
    const char *spec_path;  /* DIR/spec.json */
    const char *log_path;   /* DIR/log: the worker's stderr, appended */
    int threads;            /* > 0: OPENBLAS_NUM_THREADS/OMP_NUM_THREADS for the worker */
    uint64_t model_bytes;   /* the model's size on disk (slurm: the memory estimate) */
    int tasks;              /* the spec's "tasks" (1 = one worker process): the worker runs this many
                               block tasks of `threads` each at once (worker/wk_tasks.c) */
} exec_job_t;

/* How a run ended. cause (slurm.h, enum exec_cause) is EXEC_EXITED for a plain exit;
 * the Slurm executor also reports cancellations outside lrqd, node failures,
 * preemption, its time and memory limits, a job Slurm forgot, and detaching. */
typedef struct exec_exit {
    int status;             /* the exit code, or -1 when killed by sig */
    int sig;
    int cause;
    const char *detail;     /* "" or what the executor knows (sbatch's message, the node) */
} exec_exit_t;

typedef struct exec_cbs {
    void (*on_line)(void *owner, char *line, size_t len);   /* one stdout line, NUL-terminated */
    void (*on_overlong)(void *owner);                       /* a line exceeded max_line (once) */
    void (*on_exit)(void *owner, const exec_exit_t *x);
    /* Optional, for executors with a queue of their own (slurm): the attempt has an
     * id there (to be stored for re-adoption), and it started running. */
    void (*on_submitted)(void *owner, int64_t ext_id);
    void (*on_running)(void *owner);
} exec_cbs_t;

typedef struct exec_ops {
    const char *name;
    int (*start)(void *self, const exec_job_t *job, const exec_cbs_t *cbs, void *owner, void **handle,
                 lrq_err_t *err);
    int (*kill)(void *self, void *handle, int sig);
    int64_t (*pid)(void *self, void *handle);   /* for recovery bookkeeping; 0 if none */
    /* Start-up recovery: a worker of an earlier lrqd (pid from the db) may still
     * run this job; make sure it is gone (TERM, then KILL after grace_ms).
     * Returns 1 if one was found, 0 if not. Blocking, called before serving. */
    int (*reap_orphan)(void *self, int64_t job_id, int64_t pid, const char *workdir, int grace_ms);
    void (*destroy)(void *self);
    /* Optional (NULL for local). adopt: start-up recovery for workers that outlive
     * lrqd — follow the attempt ext_id (0: lrqd died before it learnt the id; the
     * executor looks for it) instead of starting a new one; callbacks as for start.
     * detach: stop following a run that keeps going (on_exit with EXEC_DETACHED).
     * ready: 0 while the executor cannot take jobs yet (the start-up probe). */
    int (*adopt)(void *self, const exec_job_t *job, int64_t ext_id, const exec_cbs_t *cbs, void *owner,
                 void **handle, lrq_err_t *err);
    void (*detach)(void *self, void *handle);
    int (*ready)(void *self);
} exec_ops_t;

typedef struct exec {
    const exec_ops_t *ops;
    void *self;
} exec_t;

int exec_local_new(exec_t *out, uv_loop_t *loop, const char *worker_path, size_t max_line, lrq_err_t *err);

struct cfg;
/* The Slurm executor (options slurm_* of cfg, state_dir's jobs/ for the probe). */
int exec_slurm_new(exec_t *out, uv_loop_t *loop, const char *worker_path, const struct cfg *cfg,
                   const char *jobs_dir, lrq_err_t *err);

#endif
