/* lrqd.h — the daemon's context and the interfaces between its modules.
 *
 * One thread: the libuv loop owns everything below; libmicrohttpd runs in
 * external-epoll mode on that loop (http.c), the dispatcher (sched.c) spawns
 * workers through the executor interface (exec.h), SQLite is one connection
 * (db.c). Nothing here is touched from another thread, except that artifact
 * hashing runs in libuv's thread pool on data it owns (sched.c). */
#ifndef LRQD_H
#define LRQD_H
#include <stdint.h>
#include <jansson.h>
#include <microhttpd.h>
#include <uv.h>
#include "cfg.h"
#include "db.h"
#include "exec.h"
#include "router.h"

enum { ROLE_READ = 1, ROLE_SUBMIT = 2, ROLE_ADMIN = 3 };

typedef struct token {
    char name[64];
    int role;
    uint8_t hash[32];      /* sha256(token) */
} token_t;

enum run_stop { STOP_NONE = 0, STOP_CANCEL, STOP_SHUTDOWN, STOP_TIMEOUT, STOP_STALLED, STOP_OVERLONG };

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
    int stop;              /* enum run_stop: why we signalled it */
    uint64_t kill_at;      /* SIGKILL deadline after a SIGTERM (0 = none) */
    int garbage;           /* non-JSON stdout lines seen */
} run_t;

typedef struct sse {
    struct sse *next, *prev;
    struct lrqd *d;
    int64_t job_id;
    struct MHD_Connection *conn;
    char *buf;
    size_t len, off, cap;
    int ended, suspended, linked, refs;
} sse_t;

#define HIST_N 10
typedef struct http_stat { const char *route; int status; uint64_t n; } http_stat_t;

typedef struct lrqd {
    cfg_t cfg;
    uv_loop_t *loop;
    char *tls_cert_pem, *tls_key_pem; /* read at start, kept for MHD */
    db_t *db;
    exec_t exec;
    int exec_ok;
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
    /* dispatcher */
    uv_timer_t tick, kick;
    uv_signal_t sig_term, sig_int;
    run_t *runs;
    int nruns;
    int hashing;           /* success finalisations in the thread pool */
    sse_t *sse;
    /* auth */
    token_t *tokens;
    int ntokens, auth;
    /* lifecycle */
    int stopping, exit_code;
    uint64_t stop_deadline, watchdog_usec, last_watchdog, low_disk_logged, last_ping;
    /* metrics */
    http_stat_t http[256];
    int nhttp;
    uint64_t hist[HIST_N + 1], hist_n;
    double hist_sum;
} lrqd_t;

uint64_t now_ms(void);          /* wall clock, unix ms */
uint64_t mono_ms(void);

/* http.c */
typedef struct req req_t;
int http_start(lrqd_t *d, lrq_err_t *err);
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
void req_set_sse(req_t *r, sse_t *s);
/* SSE: queue an event for every subscriber of job_id; end=1 closes the streams after it. */
void sse_publish(lrqd_t *d, int64_t job_id, const char *event, json_t *data /* borrowed */, int end);
void sse_end_all(lrqd_t *d);
void sse_ping(lrqd_t *d);
sse_t *sse_new(lrqd_t *d, int64_t job_id, struct MHD_Connection *c);
void sse_release(sse_t *s);
ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max);
void sse_free_cb(void *cls);
int sse_push(sse_t *s, const char *event, json_t *data);

/* api.c */
#include "routes.h"
enum MHD_Result api_dispatch(lrqd_t *d, req_t *r, struct MHD_Connection *c, int route);
json_t *api_job_json(lrqd_t *d, const db_job_t *j);   /* new reference or NULL */
void metrics_http(lrqd_t *d, const char *route, int status);
void metrics_job_done(lrqd_t *d, int64_t run_ms);

/* auth.c */
int auth_load(lrqd_t *d, const char *path, lrq_err_t *err);
/* Checks "Authorization: Bearer <token>"; returns the token or NULL. */
const token_t *auth_check(lrqd_t *d, const char *authorization);

/* sched.c */
void sched_kick(lrqd_t *d);                 /* try to claim and start jobs soon */
int sched_recover(lrqd_t *d, lrq_err_t *err);  /* start-up: requeue running jobs whose worker is gone */
int sched_start(lrqd_t *d);                 /* timers */
run_t *sched_find(lrqd_t *d, int64_t job_id);
void sched_cancel(lrqd_t *d, int64_t job_id);  /* SIGTERM the job's worker, SIGKILL after grace */
void sched_shutdown(lrqd_t *d);             /* SIGTERM all workers; main exits when none remain */
char *sched_workdir(lrqd_t *d, int64_t job_id); /* new string */
/* main.c */
void lrqd_maybe_exit(lrqd_t *d);

#endif
