/* exec.h — the executor interface: how a claimed job's worker is run.
 *
 * The worker's whole contract is its spec file, its work dir and its progress
 * stream (docs/daemon.md), so an executor only has to start
 * `lrq-worker run --spec DIR/spec.json --workdir DIR` somewhere, hand back the
 * stdout lines, deliver signals and report the exit. "local" (exec_local.c)
 * uses uv_spawn; a Slurm executor (sbatch + tailing DIR/progress.jsonl) can
 * implement the same table later.
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

typedef struct exec_job {
    int64_t job_id;
    const char *workdir;    /* absolute */
    const char *spec_path;  /* DIR/spec.json */
    const char *log_path;   /* DIR/log: the worker's stderr, appended */
    int threads;            /* > 0: OPENBLAS_NUM_THREADS/OMP_NUM_THREADS for the worker */
} exec_job_t;

typedef struct exec_cbs {
    void (*on_line)(void *owner, char *line, size_t len);   /* one stdout line, NUL-terminated */
    void (*on_overlong)(void *owner);                       /* a line exceeded max_line (once) */
    /* exit_status: the exit code, or -1 when killed by term_signal. */
    void (*on_exit)(void *owner, int exit_status, int term_signal);
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
} exec_ops_t;

typedef struct exec {
    const exec_ops_t *ops;
    void *self;
} exec_t;

int exec_local_new(exec_t *out, uv_loop_t *loop, const char *worker_path, size_t max_line, lrq_err_t *err);

#endif
