/* lrq_tasks.h — how a parallel-pipeline job's L blocks split into its block tasks, and the
 * tasks' reconstruction progress summed into the job's (docs/daemon.md, "Block-parallel tasks").
 * One rule for the two places that run tasks: the worker that spawns them on its own node
 * (worker/wk_tasks.c) and lrqd's Slurm executor, whose tasks are a job array's elements
 * (daemon/exec_slurm.c). */
#ifndef LRQ_TASKS_H
#define LRQ_TASKS_H
#include <jansson.h>

/* The tasks that have blocks: min(tasks, L), at least 1. */
int lrq_task_count(int tasks, int L);
/* Task k of n (0 <= k < n) reconstructs blocks [*b0, *b1): contiguous, sizes differ by at most one. */
void lrq_task_range(int k, int n, int L, int *b0, int *b1);

/* The summed progress of tasks whose events arrive interleaved. */
typedef struct lrq_taskprog {
    int n;                       /* tasks (slots) */
    long *done;                  /* [n] iterations finished in each task's range */
    unsigned char *finished;     /* [n] its range is complete */
    long L, iters;               /* from the events (0 until one has arrived) */
} lrq_taskprog_t;
int lrq_taskprog_init(lrq_taskprog_t *p, int n);       /* 0 or -ENOMEM */
void lrq_taskprog_close(lrq_taskprog_t *p);
/* Task k's "progress" event: a reconstruct event moves its count (from its global "done" minus its
 * range's start, so a resumed task neither restarts nor double-counts). 1 and *sum, *total (every
 * block's iterations) when the event was a reconstruct one, else 0. */
int lrq_taskprog_update(lrq_taskprog_t *p, int k, const json_t *ev, long *sum, long *total);
/* Task k's range is complete (its block files verify): counts as all its iterations. */
void lrq_taskprog_finish(lrq_taskprog_t *p, int k);
#endif
