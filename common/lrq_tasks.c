/* lrq_tasks.c — block ranges of a parallel job's tasks and their summed progress (lrq_tasks.h). */
#include "lrq_tasks.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int lrq_task_count(int tasks, int L)
{
    int n = tasks < L ? tasks : L;
    return n < 1 ? 1 : n;
}

void lrq_task_range(int k, int n, int L, int *b0, int *b1)
{
    *b0 = (int)((long)k * L / n);
    *b1 = (int)((long)(k + 1) * L / n);
}

int lrq_taskprog_init(lrq_taskprog_t *p, int n)
{
    memset(p, 0, sizeof *p);
    p->done = calloc((size_t)n, sizeof *p->done);
    p->finished = calloc((size_t)n, 1);
    if (!p->done || !p->finished) {
        lrq_taskprog_close(p);
        return -ENOMEM;
    }
    p->n = n;
    return 0;
}

void lrq_taskprog_close(lrq_taskprog_t *p)
{
    free(p->done);
    free(p->finished);
    memset(p, 0, sizeof *p);
}

static void taskprog__sum(const lrq_taskprog_t *p, long *sum, long *total)
{
    int n = lrq_task_count(p->n, (int)p->L);
    long s = 0;
    for (int k = 0; k < n; k++) {
        int b0, b1;
        lrq_task_range(k, n, (int)p->L, &b0, &b1);
        s += p->finished[k] ? (long)(b1 - b0) * p->iters : p->done[k];
    }
    *sum = s;
    *total = p->L * p->iters;
}

int lrq_taskprog_update(lrq_taskprog_t *p, int k, const json_t *ev, long *sum, long *total)
{
    const char *stage = json_string_value(json_object_get(ev, "stage"));
    if (k < 0 || k >= p->n || !stage || strcmp(stage, "reconstruct")) return 0;
    long L = (long)json_integer_value(json_object_get(ev, "blocks"));
    long it = (long)json_integer_value(json_object_get(ev, "iterations"));
    if (L <= 0 || it <= 0 || (p->L && (L != p->L || it != p->iters))) return 0; /* not one of this job's */
    p->L = L;
    p->iters = it;
    int n = lrq_task_count(p->n, (int)L), b0, b1;
    if (k < n) {
        lrq_task_range(k, n, (int)L, &b0, &b1);
        long d = (long)json_integer_value(json_object_get(ev, "done")) - (long)b0 * it;
        if (d >= 0 && d <= (long)(b1 - b0) * it) p->done[k] = d;
    }
    taskprog__sum(p, sum, total);
    return 1;
}

void lrq_taskprog_finish(lrq_taskprog_t *p, int k)
{
    if (k >= 0 && k < p->n) p->finished[k] = 1;
}
