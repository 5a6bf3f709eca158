/* metrics.h — lrqd's Prometheus counters and their text exposition.
 * Pure: the counters live in a metrics_t the owner (main.c) keeps; HTTP
 * completions and finished job attempts are fed in, /metrics renders. */
#ifndef LRQD_METRICS_H
#define LRQD_METRICS_H
#include <stdint.h>
#include "db.h"
#include "lrq_buf.h"

#define METRICS_HIST_N 10
#define METRICS_MAX_SERIES 256

typedef struct metrics {
    struct { const char *route; int status; uint64_t n; } http[METRICS_MAX_SERIES];
    int nhttp;                      /* series beyond METRICS_MAX_SERIES are dropped */
    uint64_t hist[METRICS_HIST_N + 1], hist_n;
    double hist_sum;
} metrics_t;

/* route: a static string (the route pattern or "unmatched"); status 0 = no reply. */
void metrics_http(metrics_t *m, const char *route, int status);
/* One finished attempt's wall time, into lrq_job_duration_seconds. */
void metrics_job_done(metrics_t *m, int64_t run_ms);

typedef struct metrics_gauges {
    int64_t jobs[DB_NSTATES];       /* by state */
    int running_workers;
    int64_t worker_slots;
} metrics_gauges_t;
/* Appends the text exposition (format 0.0.4). 0 or LRQ_ENOMEM. */
int metrics_render(const metrics_t *m, const metrics_gauges_t *g, lrq_buf_t *out);
#endif
