/* main.c — lrqd start-up, signals and orderly shutdown.
 *
 * Start: config → state dir (+ single-instance lock) → database (migrations)
 * → executor → recovery of jobs left running → HTTP → dispatcher → READY=1.
 * SIGTERM/SIGINT: stop accepting connections, SIGTERM every worker (they
 * checkpoint and exit 75 → requeued), wait up to grace_s (+SIGKILL), exit 0.
 * A second signal kills the workers at once. */
#include "lrqd.h"
#include "log.h"
#include "lrq_clock.h"
#include "lrq_fs.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

static void notify(const char *msg)
{
#ifdef HAVE_LIBSYSTEMD
    sd_notify(0, msg);
#else
    (void)msg;
#endif
}

/* ---- wiring: what the lower modules report ------------------------------ */

/* Leave the loop on a policy verdict: CRON_EXIT, CRON_EXIT_LATE (or 0: stay). */
static void lrqd__exit_on(lrqd_t *d, int v)
{
    if (v & CRON_EXIT_LATE) {
        log_err("shutdown: %d worker(s) still running after the grace period; exiting anyway", d->nruns);
        d->exit_code = 1;
    }
    if (v & (CRON_EXIT | CRON_EXIT_LATE)) uv_stop(d->loop);
}

/* Asked whenever a run ends or a shutdown starts: is the shutdown complete? */
static void lrqd__maybe_exit(lrqd_t *d)
{
    lrqd__exit_on(d, policy_exit_now(d->stopping, d->nruns, lrq_mono_ms(), d->stop_deadline));
}

static void lrqd__hist_flush(lrqd_t *d)
{
    lrq_err_t err = {0};
    if (hist_flush(&d->hist, lrq_mono_ms(), &err)) log_warn("progress history: %s", err.msg);
    if (d->hist.dropped != d->hist.dropped_logged) {
        log_warn("progress history: %lld sample(s) dropped so far (not written)", (long long)d->hist.dropped);
        d->hist.dropped_logged = d->hist.dropped;
    }
}

/* A state change ends what the history holds in memory for the job: write it now. */
static void ev_state(lrqd_t *d, int64_t id)
{
    hist_job_done(&d->hist, id);
    lrqd__hist_flush(d);
    api_publish_state(d, id);
}

static void ev_progress(lrqd_t *d, int64_t id, json_t *p)
{
    lrq_err_t err = {0};
    sse_publish(&d->sse, id, "progress", p, 0);
    if (hist_add(&d->hist, id, p, (int64_t)lrq_wall_ms(), &err))   /* counted; the next flush reports it */
        log_debug("job %lld: progress history: %s", (long long)id, err.msg);
}

/* "block" events: into the history, and to SSE watchers numbered from 1 like progress lines. */
static void ev_worker_event(lrqd_t *d, int64_t id, const char *name, json_t *ev)
{
    if (strcmp(name, "block")) return;
    lrq_err_t err = {0};
    if (hist_block(&d->hist, id, ev, (int64_t)lrq_wall_ms(), &err)) log_warn("job %lld: %s", (long long)id, err.msg);
    json_t *o = json_deep_copy(ev);
    json_t *b = json_object_get(o, "block");
    if (o && json_is_integer(b)) {
        json_object_del(o, "event");
        json_object_set_new(o, "block", json_integer(json_integer_value(b) + 1));
        sse_publish(&d->sse, id, "block", o, 0);
    }
    json_decref(o);
}
static void ev_attempt_done(lrqd_t *d, int64_t run_ms) { metrics_job_done(&d->metrics, run_ms); }
static void ev_run_ended(lrqd_t *d) { lrqd__maybe_exit(d); }
static void http_completed(lrqd_t *d, const char *route, int status) { metrics_http(&d->metrics, route, status); }
static void sse_kick(void *ctx) { http_kick(ctx); }

/* The periodic tick (redis's serverCron): policy_cron decides, this acts. */
static void on_cron(uv_timer_t *t)
{
    lrqd_t *d = t->data;
    uint64_t now = lrq_mono_ms();
    sched_tick(d, now);
    if (hist_due(&d->hist, now)) lrqd__hist_flush(d);
    policy_cron_in_t in = {.now = now, .last_ping = d->last_ping, .ping_ms = 15000, .last_watchdog = d->last_watchdog,
                           .watchdog_usec = d->watchdog_usec, .stopping = d->stopping, .nruns = d->nruns,
                           .workers = d->cfg.workers, .stop_deadline = d->stop_deadline};
    int m = policy_cron(&in);
    if (m & CRON_PING) { sse_ping(&d->sse); d->last_ping = now; }
    if (m & CRON_WATCHDOG) { notify("WATCHDOG=1"); d->last_watchdog = now; }
    if (m & CRON_DISPATCH) sched_kick(d);
    lrqd__exit_on(d, m);
}

static void on_signal(uv_signal_t *s, int signum)
{
    lrqd_t *d = s->data;
    if (d->stopping) {
        log_warn("second %s: killing the workers now", signum == SIGINT ? "SIGINT" : "SIGTERM");
        sched_kill_all(d);
        return;
    }
    log_notice("%s: shutting down (stop accepting, stop %d worker(s), grace %lld s)",
               signum == SIGINT ? "SIGINT" : "SIGTERM", d->nruns, (long long)d->cfg.grace_s);
    d->stopping = 1;
    d->stop_deadline = lrq_mono_ms() + (uint64_t)d->cfg.grace_s * 1000 + 5000;
    notify("STOPPING=1");
    http_quiesce(d);
    sched_shutdown(d);
    lrqd__maybe_exit(d);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

int main(int argc, char **argv)
{
    lrqd_t *d = calloc(1, sizeof *d);
    lrq_err_t err = {0};
    int rc, lockfd = -1;
    uv_loop_t loop;
    if (!d) return 1;
    rc = cfg_load(&d->cfg, argc, argv, &err);
    if (rc == 1) { cfg_free(&d->cfg); free(d); return 0; }
    if (rc) { fprintf(stderr, "lrqd: %s\n", err.msg); return 2; }
    int lv = log_level_parse(d->cfg.log_level);
    if (lv < 0) { fprintf(stderr, "lrqd: log_level must be error, warning, notice, info or debug\n"); return 2; }
    log_init(lv);
    signal(SIGPIPE, SIG_IGN);

    char self[PATH_MAX];
    ssize_t sn = readlink("/proc/self/exe", self, sizeof self - 1);
    self[sn > 0 ? sn : 0] = 0;
    if ((rc = cfg_resolve_paths(&d->cfg, sn > 0 ? self : NULL, &err))) {
        log_err("%s", err.msg);
        return 2;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/lrqd.lock", d->cfg.state_dir);
    lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB)) {
        log_err("%s: %s (is another lrqd using this state dir?)", path, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/jobs", d->cfg.state_dir);
    if ((rc = lrq_mkdirs_mode(path, 0750, &err))) { log_err("%s", err.msg); return 1; }
    if (!(d->jobs_dir = strdup(path))) return 1;
    for (int i = 0; i < d->cfg.n_data_root; i++) {
        if (!(d->roots[d->nroots] = strdup(d->cfg.data_root[i]))) return 1;
        d->nroots++;
    }
    if (!d->nroots) log_warn("no data_root configured: every job will be refused (403)");
    if (!(d->worker_path = strdup(d->cfg.worker))) return 1;

    if (d->cfg.token_file && *d->cfg.token_file) {
        if (d->cfg.no_auth) { log_err("token_file and no_auth contradict each other"); return 2; }
        char *text = NULL;
        rc = lrq_read_file(d->cfg.token_file, &text, NULL, 16 << 20, &err);
        if (!rc) rc = auth_parse(text, d->cfg.token_file, &d->tokens, &d->ntokens, &err);
        free(text);
        if (rc) { log_err("%s", err.msg); return 1; }
        d->auth = 1;
    }

    snprintf(path, sizeof path, "%s/lrq.db", d->cfg.state_dir);
    if ((rc = db_open(&d->db, path, d->cfg.schema_dir, &err))) { log_err("%s", err.msg); return 1; }
    if (uv_loop_init(&loop)) { log_err("uv_loop_init failed"); return 1; }
    d->loop = &loop;
    if (!strcmp(d->cfg.executor, "slurm")) rc = exec_slurm_new(&d->exec, d->loop, d->worker_path, &d->cfg, d->jobs_dir, &err);
    else if (!strcmp(d->cfg.executor, "local")) rc = exec_local_new(&d->exec, d->loop, d->worker_path, (size_t)d->cfg.max_line, &err);
    else { log_err("executor \"%s\" is not available (local, slurm)", d->cfg.executor); return 2; }
    if (rc) {
        log_err("%s", err.msg);
        return rc == LRQ_ESPEC ? 2 : 1;
    }
    hist_init(&d->hist, d->db);
    static const sched_events_t events = {.state = ev_state, .progress = ev_progress,
                                          .attempt_done = ev_attempt_done, .run_ended = ev_run_ended,
                                          .worker_event = ev_worker_event};
    sched_init(d, &events);
    if ((rc = sched_recover(d, &err))) { log_err("recovery: %s", err.msg); return 1; }
    static const http_hooks_t hooks = {.dispatch = api_dispatch, .completed = http_completed};
    d->sse.kick = sse_kick;
    d->sse.kick_ctx = d;
    if ((rc = http_start(d, &hooks, &err))) { log_err("%s", err.msg); return 1; }
    if (!d->auth && !d->loopback) {
        log_err("refusing to serve %s without authentication: set token_file (no_auth is for loopback only)",
                d->cfg.listen);
        return 2;
    }
    if (!d->auth)
        log_warn("AUTHENTICATION IS OFF: anyone who can reach %s:%d may submit jobs (loopback only)",
                 d->listen_host, d->port);
    log_notice("listening on %s:%d (schema v%d, worker %s, %lld slot(s), %d data root(s))", d->listen_host, d->port,
               db_user_version(d->db), d->worker_path, (long long)d->cfg.workers, d->nroots);
    if (d->cfg.port_file && *d->cfg.port_file) {
        char num[16];
        int n = snprintf(num, sizeof num, "%d\n", d->port);
        if (lrq_write_atomic(d->cfg.port_file, num, (size_t)n, &err)) log_err("port_file: %s", err.msg);
    }
    uv_signal_init(d->loop, &d->sig_term);
    uv_signal_init(d->loop, &d->sig_int);
    d->sig_term.data = d->sig_int.data = d;
    uv_signal_start(&d->sig_term, on_signal, SIGTERM);
    uv_signal_start(&d->sig_int, on_signal, SIGINT);
    uv_timer_init(d->loop, &d->cron);
    d->cron.data = d;
    uv_timer_start(&d->cron, on_cron, 250, 250);
    sched_kick(d);
#ifdef HAVE_LIBSYSTEMD
    uint64_t wd_usec = 0;
    if (sd_watchdog_enabled(0, &wd_usec) > 0) d->watchdog_usec = wd_usec;
    sd_notifyf(0, "READY=1\nSTATUS=listening on %s:%d", d->listen_host, d->port);
#endif

    uv_run(d->loop, UV_RUN_DEFAULT);

    http_stop(d);
    uv_walk(d->loop, close_walk, NULL);
    uv_run(d->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(d->loop)) log_warn("event loop closed with handles pending");
    d->exec.ops->destroy(d->exec.self);
    lrqd__hist_flush(d);
    hist_close(&d->hist);
    db_close(d->db);
    log_notice("stopped");
    int code = d->exit_code;
    for (int i = 0; i < d->nroots; i++) free(d->roots[i]);
    free(d->tokens);
    free(d->jobs_dir);
    free(d->worker_path);
    cfg_free(&d->cfg);
    free(d);
    close(lockfd);
    return code;
}
