/* metrics.c — see metrics.h. */
#include "metrics.h"

static const double hist_le[METRICS_HIST_N] = {1, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400};

void metrics_http(metrics_t *m, const char *route, int status)
{
    for (int i = 0; i < m->nhttp; i++)
        if (m->http[i].route == route && m->http[i].status == status) { m->http[i].n++; return; }
    if (m->nhttp < METRICS_MAX_SERIES) {
        m->http[m->nhttp].route = route;
        m->http[m->nhttp].status = status;
        m->http[m->nhttp].n = 1;
        m->nhttp++;
    }
}

void metrics_job_done(metrics_t *m, int64_t run_ms)
{
    double s = run_ms / 1000.0;
    int b = 0;
    while (b < METRICS_HIST_N && s > hist_le[b]) b++;
    m->hist[b]++;
    m->hist_n++;
    m->hist_sum += s;
}

int metrics_render(const metrics_t *m, const metrics_gauges_t *g, lrq_buf_t *b)
{
    int rc = 0;
#define P(...) do { if (!rc) rc = lrq_buf_printf(b, __VA_ARGS__); } while (0)
    P("# HELP lrq_jobs Jobs in the database by state.\n# TYPE lrq_jobs gauge\n");
    for (int i = 0; i < DB_NSTATES; i++) P("lrq_jobs{state=\"%s\"} %lld\n", db_state_name[i], (long long)g->jobs[i]);
    P("# HELP lrq_queue_depth Jobs waiting for a worker.\n# TYPE lrq_queue_depth gauge\nlrq_queue_depth %lld\n",
      (long long)g->jobs[DB_QUEUED]);
    P("# HELP lrq_running_workers Worker processes running now.\n# TYPE lrq_running_workers gauge\n"
      "lrq_running_workers %d\n", g->running_workers);
    P("# HELP lrq_worker_slots Maximum concurrent workers.\n# TYPE lrq_worker_slots gauge\nlrq_worker_slots %lld\n",
      (long long)g->worker_slots);
    P("# HELP lrq_job_duration_seconds Wall time of finished attempts (since lrqd start).\n"
      "# TYPE lrq_job_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < METRICS_HIST_N; i++) {
        cum += m->hist[i];
        P("lrq_job_duration_seconds_bucket{le=\"%g\"} %llu\n", hist_le[i], (unsigned long long)cum);
    }
    P("lrq_job_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)m->hist_n);
    P("lrq_job_duration_seconds_sum %.3f\nlrq_job_duration_seconds_count %llu\n", m->hist_sum,
      (unsigned long long)m->hist_n);
    P("# HELP lrq_http_requests_total HTTP requests by route and status.\n# TYPE lrq_http_requests_total counter\n");
    for (int i = 0; i < m->nhttp; i++)
        P("lrq_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", m->http[i].route, m->http[i].status,
          (unsigned long long)m->http[i].n);
#undef P
    return rc;
}
