/* slurm.h — the pure part of the Slurm executor (no processes, no loop), so that
 * each rule is unit-tested (tests/unit/test_slurm.c); exec_slurm.c carries them out.
 *   - what a Slurm job state and its wait status mean for the run (docs/daemon.md,
 *     "Deploying with Slurm": the state table);
 *   - one line of lrqd's squeue query;
 *   - the resources asked of sbatch (CPUs = threads, memory from the job's estimate,
 *     a time limit) and the checked extra arguments;
 *   - shell quoting for the batch script. */
#ifndef LRQD_SLURM_H
#define LRQD_SLURM_H
#include <stddef.h>
#include <stdint.h>
#include "lrq_buf.h"
#include "lrq_err.h"

/* Why a run ended, beyond its wait status (exec.h passes it to sched.c → policy.c). */
enum exec_cause {
    EXEC_EXITED = 0,      /* the worker exited (status) or was killed (signal) */
    EXEC_SUBMIT_FAILED,   /* never started: sbatch refused it (detail: sbatch's message) */
    EXEC_CANCELLED,       /* cancelled outside lrqd (an operator's scancel) */
    EXEC_NODE_FAIL,       /* its node failed (NODE_FAIL, BOOT_FAIL) */
    EXEC_PREEMPTED,       /* preempted by the scheduler */
    EXEC_TIMELIMIT,       /* the scheduler's time limit (TIMEOUT, DEADLINE) */
    EXEC_OOM,             /* the scheduler's memory limit (OUT_OF_MEMORY) */
    EXEC_LOST,            /* the scheduler no longer knows the job */
    EXEC_DETACHED,        /* lrqd stopped following it (shutdown): it runs on, adopted at restart */
    EXEC_UNAVAILABLE,     /* never started: the scheduler could not be reached (detail: the message) */
};

enum slurm_phase { SLURM_PENDING = 0, SLURM_RUNNING, SLURM_ENDED };

typedef struct slurm_outcome {
    int phase;            /* enum slurm_phase */
    int status, sig;      /* SLURM_ENDED: exit code (sig == 0) or terminating signal */
    int cause;            /* SLURM_ENDED: enum exec_cause */
    int known;            /* 0: a state name this table does not know (treated as running) */
} slurm_outcome_t;

/* state: squeue's State (e.g. "COMPLETED", "CANCELLED"); raw: its exit_code field,
 * a wait(2) status (19200 = exit 75, 9 = SIGKILL). COMPLETING stays RUNNING: the
 * run ends only when every process of the job is gone, so a resubmission never
 * overlaps the old attempt. */
void slurm_map_state(const char *state, int raw, slurm_outcome_t *out);

/* One line of `squeue -h -r -O JobID:|,ArrayJobID:|,ArrayTaskID:|,State:|,Reason:|,exit_code:|,
 * BatchHost:|,Comment:|` (fields end with '|'; squeue pads nothing with that format). Fields
 * point into line, which is modified. An array element (ArrayTaskID not "N/A") has id = the
 * array's id and task = its index; a range ("0-4", elements not split yet) gives
 * task = SLURM_TASKS_PENDING. 0, or LRQ_EFORMAT. */
enum { SLURM_TASKS_PENDING = -2 };
typedef struct slurm_row {
    int64_t id;
    int task;                     /* array element, -1: not an array element */
    const char *state, *reason, *host, *comment;
    int raw;
} slurm_row_t;
int slurm_parse_row(char *line, slurm_row_t *row);
/* sbatch --parsable's answer: "ID" or "ID;CLUSTER". 0 and *id, or LRQ_EFORMAT. */
int slurm_parse_jobid(const char *text, int64_t *id);

/* Resources of one attempt. */
typedef struct slurm_res_in {
    int threads;                /* the spec's threads (already filled from the config), 0 = 1 */
    uint64_t model_bytes;       /* the model's size on disk */
    int tasks;                  /* block tasks run at once by the job's worker (spec "tasks"), 0 = 1 */
    int64_t max_cpus;           /* slurm_max_cpus: > 0 caps the CPUs (the tasks then share them) */
    int64_t mem_mb;             /* slurm_mem_mb: > 0 overrides the estimate */
    int64_t cache_mb;           /* slurm_cache_mb: the activation caches' budget */
    int64_t time_limit_min;     /* slurm_time_limit_min: > 0 overrides */
    int64_t job_timeout_s, grace_s;
} slurm_res_in_t;
typedef struct slurm_res {
    int cpus;
    int64_t mem_mb;             /* --mem */
    int64_t time_min;           /* --time, 0 = the partition's default */
    int64_t cache_mb;           /* LRQ_CACHE_MEM_MB for the worker */
} slurm_res_t;
/* CPUs: threads × tasks (a parallel-pipeline job's worker runs its block tasks side by side in
 * the allocation), at most max_cpus when that is set. Memory estimate: the model as fp32 for the per-layer conversions and the quantized
 * copy (2 × its size on disk, the mmap counted once), the activation caches (the
 * worker keeps them under cache_mb, spilling to files beyond), 512 MB for the rest — once per
 * task when there are tasks (each is a worker process of its own).
 * Time: job_timeout_s + grace_s rounded up to minutes, + 1, so that lrqd's own timeout
 * (a clean stop with a checkpoint) comes before Slurm's. */
void slurm_resources(const slurm_res_in_t *in, slurm_res_t *out);

/* slurm_sbatch_args → argv (space-separated, no quoting). Options lrqd sets itself
 * (output files, job name, comment, array, wrap, requeue) are refused, naming the
 * option. *argv is NULL-terminated, free with slurm_args_free. */
int slurm_split_args(const char *s, char ***argv, int *argc, lrq_err_t *err);
void slurm_args_free(char **argv);

/* Does a Slurm command's stderr say that slurmctld could not be reached (a controller
 * down or restarting, not a refusal)? 1 or 0. */
int slurm_unreachable(const char *errs);

/* Append s single-quoted for sh(1) ('…' with ' as '\''). 0 or LRQ_ENOMEM. */
int slurm_sh_quote(lrq_buf_t *b, const char *s);
#endif
