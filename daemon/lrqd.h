/* lrqd.h — the daemon's context and the interfaces between its modules.
 *
 * One thread: the libuv loop owns everything below; libmicrohttpd runs in
 * external-epoll mode on that loop (http.c), the dispatcher (sched.c) spawns
 * workers through the executor interface (exec.h), SQLite is one connection
 * (db.c). Nothing here is touched from another thread.
 *
 * Layers (docs/architecture.md, "Daemon call graph"): main.c on top wires
 * everything; api.c (handlers) calls http.c, sched.c, sse.c and the pure
 * modules; sched.c calls exec, db and policy and reports upwards only through
 * sched_events_t; http.c hands requests up only through http_hooks_t; sse.c
 * asks for an MHD run only through its kick hook. No file calls into one that
 * calls it. */
#ifndef LRQD_H
#define LRQD_H
#include <stdint.h>
#include <jansson.h>
#include <microhttpd.h>
#include <uv.h>
#include "auth.h"
#include "cfg.h"
#include "db.h"
#include "exec.h"
#include "hist.h"
#include "router.h"
#include "metrics.h"
#include "policy.h"
#include "sse.h"

typedef struct run {
    struct run *next;
    struct lrqd *d;
    int64_t job_id;
    char *workdir;
    void *h;               /* executor handle; NULL once exited */
    int64_t pid;
    uint64_t t_start, t_last_line, t_last_write;   /* ms, monotonic */
    json_t *progress;      /* latest progress object (owned) */
    int dirty;             /* progress not yet written to the db */
    char *last_error;      /* message of the last "error" event */
    int stop;              /* enum run_stop (policy.h): why we signalled it */
    uint64_t kill_at;      /* SIGKILL deadline after a SIGTERM (0 = none) */
    int garbage;           /* non-JSON stdout lines seen */
    int64_t ext_id;        /* slurm: the attempt's Slurm job id (0 until sbatch answered) */
    int queued_remote;     /* slurm: waiting in Slurm's queue (no timeouts yet) */
    json_t *estimate;      /* estimate_json of the job's disk use, added to its metrics (owned; may be NULL) */
} run_t;

/* How the dispatcher reports what happened to jobs, upwards: main.c wires
 * these to SSE, metrics and the shutdown check (as libuv reports through
 * callbacks), so sched.c never calls the modules above it. */
typedef struct sched_events {
    void (*state)(struct lrqd *d, int64_t job_id);      /* the job's row changed state */
    void (*progress)(struct lrqd *d, int64_t job_id, json_t *progress /* borrowed */);
    void (*attempt_done)(struct lrqd *d, int64_t run_ms);   /* an attempt ended for good */
    void (*run_ended)(struct lrqd *d);                  /* a run is gone: shutdown may be complete */
    /* any other worker event ("block", "checkpoint", …): name and the whole line, borrowed */
    void (*worker_event)(struct lrqd *d, int64_t job_id, const char *name, json_t *ev);
} sched_events_t;

typedef struct req req_t;
/* How the HTTP layer hands requests up: main.c wires dispatch to api_dispatch
 * and completed to the metrics. */
typedef struct http_hooks {
    enum MHD_Result (*dispatch)(struct lrqd *d, req_t *r, struct MHD_Connection *c, int route);
    void (*completed)(struct lrqd *d, const char *route, int status);   /* status 0: no reply */
} http_hooks_t;

typedef struct lrqd {
    cfg_t cfg;
    uv_loop_t *loop;
    char *tls_cert_pem, *tls_key_pem; /* read at start, kept for MHD */
    db_t *db;
    exec_t exec;
    char *worker_path;
    char *jobs_dir;        /* STATE/jobs */
    char *roots[CFG_MAX_ROOTS];  /* realpath'd data roots */
    int nroots;
    /* HTTP */
    struct MHD_Daemon *mhd;
    uv_poll_t mhd_poll;
    uv_timer_t mhd_timer;
    int http_up;
    int loopback;
    char listen_host[256];
    int port;
    http_hooks_t http;
    sse_hub_t sse;
    /* dispatcher */
    uv_timer_t kick;
    sched_events_t ev;
    run_t *runs;
    int nruns;
    /* main.c: signals, the periodic tick */
    uv_timer_t cron;
    uv_signal_t sig_term, sig_int;
    /* auth */
    token_t *tokens;
    int ntokens, auth;
    /* lifecycle */
    int stopping, exit_code;
    uint64_t stop_deadline, watchdog_usec, last_watchdog, low_disk_logged, last_ping;
    metrics_t metrics;
    hist_t hist;           /* progress history (batched writes) */
} lrqd_t;

/* http.c: libmicrohttpd on the loop; replies. */
int http_start(lrqd_t *d, const http_hooks_t *hooks, lrq_err_t *err);
void http_quiesce(lrqd_t *d);   /* stop accepting connections */
void http_stop(lrqd_t *d);
void http_kick(lrqd_t *d);      /* run MHD soon (after resuming a connection) */
enum MHD_Result http_reply_json(req_t *r, struct MHD_Connection *c, unsigned status, json_t *body /* stolen */);
enum MHD_Result http_reply_error(req_t *r, struct MHD_Connection *c, unsigned status, const char *code,
                                 const char *field, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
enum MHD_Result http_reply(req_t *r, struct MHD_Connection *c, unsigned status, struct MHD_Response *resp);
const char *req_body(req_t *r, size_t *len);
const rt_match_t *req_match(req_t *r);
const token_t *req_token(req_t *r);
/* Run fn(arg) when the request completes (an SSE stream's request reference). */
void req_on_complete(req_t *r, void (*fn)(void *), void *arg);

/* api.c: the REST handlers (routes.c's table). */
#include "routes.h"
enum MHD_Result api_dispatch(lrqd_t *d, req_t *r, struct MHD_Connection *c, int route);
/* Push the job's current object to its SSE watchers (closing them when terminal). */
void api_publish_state(lrqd_t *d, int64_t job_id);

/* sched.c: the dispatcher. Reports through d->ev. */
void sched_kick(lrqd_t *d);                 /* try to claim and start jobs soon */
int sched_recover(lrqd_t *d, lrq_err_t *err);  /* start-up: requeue running jobs whose worker is gone */
void sched_init(lrqd_t *d, const sched_events_t *ev);
void sched_tick(lrqd_t *d, uint64_t now);   /* per-run checks (policy_run_tick); main.c's cron calls it */
run_t *sched_find(lrqd_t *d, int64_t job_id);
void sched_cancel(lrqd_t *d, int64_t job_id);  /* SIGTERM the job's worker, SIGKILL after grace */
void sched_shutdown(lrqd_t *d);             /* SIGTERM all workers; main exits when none remain */
void sched_kill_all(lrqd_t *d);             /* second signal: SIGKILL them now */
char *sched_workdir(lrqd_t *d, int64_t job_id); /* new string */

#endif
