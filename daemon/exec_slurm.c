/* exec_slurm.c — the "slurm" executor: each attempt is one Slurm job running
 * `lrq-worker run` on a node (docs/daemon.md, "Deploying with Slurm").
 *
 * Nothing here blocks the loop: sbatch, squeue and scancel are child processes
 * (uv_spawn, stdout and stderr piped into bounded buffers) and one 250 ms timer
 * follows the workers' stdout files and, every slurm_poll_ms, asks squeue for the
 * state of every Slurm job lrqd follows, in one call.
 *
 *   submit   the batch script DIR/slurm.sh (exec lrq-worker run …) goes to
 *            `sbatch --parsable` with --output=DIR/slurm-%j.out (the worker's
 *            stdout: its events), --error=DIR/log, CPUs = threads, --mem from the
 *            estimate (slurm.h), --time, --no-requeue (lrqd counts the attempts),
 *            --job-name=lrq-ID and --comment=lrq:DIR (found again after a crash).
 *   follow   DIR/slurm-SID.out is read from where the last read stopped, through
 *            the same bounded line splitter as a local worker's pipe (lines.h):
 *            a line longer than max_line gets the job cancelled.
 *   state    squeue -t all -j SID,…: PENDING (no timeouts run), RUNNING, and the
 *            end states mapped by slurm_map_state. COMPLETING is still running: a
 *            run ends when every process of the Slurm job is gone. A job squeue no
 *            longer knows (MinJobAge passed while lrqd was down) ends as "lost",
 *            unless its events end with "done" and metrics.json exists.
 *   signals  SIGTERM → scancel --full --signal=TERM (the worker checkpoints and
 *            exits 75); SIGKILL, or any signal to a job not started → scancel.
 *   restart  adopt() follows a recorded Slurm job again; detach() (lrqd's
 *            shutdown) leaves it running for the next lrqd.
 *   probe    at start-up one tiny job writes a file into state_dir/jobs from a
 *            node; until it has, ready() holds the queue (a state dir the nodes
 *            do not share would fail every job).
 *
 * A run ends (on_exit, once) when its end is known and its sbatch has answered. */
#include "cfg.h"
#include "exec.h"
#include "lines.h"
#include "log.h"
#include "lrq_buf.h"
#include "lrq_clock.h"
#include "lrq_fs.h"
#include "slurm.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { XS_TICK_MS = 250, XS_OUT_CAP = 4 << 20, XS_ERR_CAP = 16 << 10, XS_READ_PER_TICK = 64, XS_HOLD_MS = 10000 };

typedef struct xs xs_t;
typedef struct xs_cmd xs_cmd_t;
typedef void (*xs_done_fn)(xs_t *x, void *ctx, int status, const char *out, const char *errs);

/* One child process (sbatch, squeue, scancel): three handles, refcounted. */
struct xs_cmd {
    xs_cmd_t *next;
    xs_t *x;
    uv_process_t proc;
    uv_pipe_t out, err;
    lrq_buf_t ob, eb;
    char rbuf[2][4096];
    int refs, status, spawned;
    xs_done_fn done;
    void *ctx;
};

typedef struct xs_run {
    struct xs_run *next;
    xs_t *x;
    int64_t job_id, sid;      /* sid: the Slurm job id, 0 until known */
    char *workdir;
    exec_cbs_t cbs;
    void *owner;
    int submitting;           /* an sbatch (or the name lookup) is in flight */
    int lookup;               /* adopted without an id: find it by name and comment */
    int started, ended, overlong, pending_sig, missing, last_done;
    int fd;                   /* the events file, -1 until it exists */
    lines_t lines;
    exec_exit_t ex;
    char detail[1024];
} xs_run_t;

struct xs {
    uv_loop_t *loop;
    char *worker, *jobs_dir;
    char *partition, *account;
    char **extra;             /* slurm_sbatch_args split */
    int nextra;
    size_t max_line;
    int64_t poll_ms, mem_mb, cache_mb, time_limit_min, job_timeout_s, grace_s, max_cpus;
    uv_timer_t tick;
    uint64_t last_query, last_warn;
    uint64_t hold_until;      /* no dispatch before (slurmctld unreachable at the last sbatch) */
    int query_inflight;
    xs_run_t *runs;
    xs_cmd_t *cmds;           /* live children (freed by destroy if the loop ends first) */
    /* the start-up probe */
    int probe_on, ready, probe_busy;
    int64_t probe_sid;
    uint64_t probe_retry_at;
    char probe_base[PATH_MAX];
};

/* ---- child processes ------------------------------------------------------ */

static void xs__cmd_unlink(xs_cmd_t *c)
{
    for (xs_cmd_t **p = &c->x->cmds; *p; p = &(*p)->next)
        if (*p == c) { *p = c->next; break; }
}

static void xs__cmd_release(uv_handle_t *h)
{
    xs_cmd_t *c = h->data;
    if (--c->refs) return;
    xs__cmd_unlink(c);
    if (c->done) c->done(c->x, c->ctx, c->status, c->ob.p ? c->ob.p : "", c->eb.p ? c->eb.p : "");
    lrq_buf_free(&c->ob);
    lrq_buf_free(&c->eb);
    free(c);
}

static void xs__cmd_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    xs_cmd_t *c = h->data;
    int i = h == (uv_handle_t *)&c->err;
    *buf = uv_buf_init(c->rbuf[i], sizeof c->rbuf[i]);
}

static void xs__cmd_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    xs_cmd_t *c = s->data;
    int i = s == (uv_stream_t *)&c->err;
    lrq_buf_t *b = i ? &c->eb : &c->ob;
    size_t cap = i ? XS_ERR_CAP : XS_OUT_CAP;
    if (n > 0) {
        size_t k = b->len + (size_t)n > cap ? (b->len < cap ? cap - b->len : 0) : (size_t)n;
        if (k && lrq_buf_append(b, buf->base, k)) log_err("slurm: out of memory reading a command's output");
    } else if (n < 0) {
        uv_read_stop(s);
        uv_close((uv_handle_t *)s, xs__cmd_release);
    }
}

static void xs__cmd_exit(uv_process_t *p, int64_t status, int sig)
{
    xs_cmd_t *c = p->data;
    c->status = sig ? 128 + sig : (int)status;
    uv_close((uv_handle_t *)p, xs__cmd_release);
}

/* Run argv[0] (PATH lookup) with stdout/stderr collected; done(ctx, status, out, err)
 * when it exited and both pipes closed (status 127 + a message if it could not start). */
static void xs__cmd(xs_t *x, char *const *argv, xs_done_fn done, void *ctx)
{
    xs_cmd_t *c = calloc(1, sizeof *c);
    if (!c) {
        if (done) done(x, ctx, 127, "", "out of memory");
        return;
    }
    c->x = x;
    c->done = done;
    c->ctx = ctx;
    uv_pipe_init(x->loop, &c->out, 0);
    uv_pipe_init(x->loop, &c->err, 0);
    c->proc.data = c->out.data = c->err.data = c;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->err},
    };
    uv_process_options_t po = {.exit_cb = xs__cmd_exit, .file = argv[0], .args = (char **)argv,
                               .stdio_count = 3, .stdio = stdio};
    c->next = x->cmds;
    x->cmds = c;
    int e = uv_spawn(x->loop, &c->proc, &po);
    c->refs = 3;
    if (e) {
        c->status = 127;
        lrq_buf_printf(&c->eb, "cannot run %s: %s", argv[0], uv_strerror(e));
        uv_close((uv_handle_t *)&c->proc, xs__cmd_release);
        uv_close((uv_handle_t *)&c->out, xs__cmd_release);
        uv_close((uv_handle_t *)&c->err, xs__cmd_release);
        return;
    }
    c->spawned = 1;
    if (uv_read_start((uv_stream_t *)&c->out, xs__cmd_alloc, xs__cmd_read))
        uv_close((uv_handle_t *)&c->out, xs__cmd_release);
    if (uv_read_start((uv_stream_t *)&c->err, xs__cmd_alloc, xs__cmd_read))
        uv_close((uv_handle_t *)&c->err, xs__cmd_release);
}

/* The first line of a command's stderr, for messages. */
static void xs__first_line(const char *s, char *out, size_t n)
{
    while (*s == '\n' || *s == ' ') s++;
    size_t l = strcspn(s, "\n");
    snprintf(out, n, "%.*s", (int)(l < n ? l : n - 1), s);
}

/* ---- runs ----------------------------------------------------------------- */

static xs_run_t *xs__find(xs_t *x, int64_t sid)
{
    for (xs_run_t *r = x->runs; r; r = r->next)
        if (r->sid == sid && !r->ended) return r;
    return NULL;
}

static int xs__line(void *ud, char *line, size_t len)
{
    xs_run_t *r = ud;
    if (r->overlong) return 0;
    r->last_done = !strncmp(line, "{\"event\":\"done\"", 15);
    r->cbs.on_line(r->owner, line, len);
    return 0;
}

static void xs__kill_sid(xs_t *x, xs_run_t *r, int sig);

/* Read what the worker appended to its events file (bounded per tick). */
static void xs__follow(xs_run_t *r)
{
    if (!r->sid || r->overlong) return;
    if (r->fd < 0) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/slurm-%lld.out", r->workdir, (long long)r->sid);
        if ((r->fd = open(p, O_RDONLY | O_CLOEXEC)) < 0) return;   /* not created yet */
    }
    for (int i = 0; i < XS_READ_PER_TICK; i++) {
        char *p;
        size_t n;
        lines_space(&r->lines, &p, &n);
        ssize_t k = read(r->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k < 0) log_warn("job %lld: reading Slurm job %lld's output: %s", (long long)r->job_id,
                                (long long)r->sid, strerror(errno));
            return;
        }
        if (lines_commit(&r->lines, (size_t)k, xs__line, r) == LINES_EOVERLONG) {
            r->overlong = 1;
            r->cbs.on_overlong(r->owner);   /* sched asks for SIGKILL: scancel */
            return;
        }
    }
}

static void xs__free_run(xs_run_t *r)
{
    if (r->fd >= 0) close(r->fd);
    lines_close(&r->lines);
    free(r->workdir);
    free(r);
}

/* The run's end is known: once no command refers to it, report it and free it. */
static void xs__maybe_finish(xs_run_t *r)
{
    if (!r->ended || r->submitting) return;
    xs_t *x = r->x;
    for (xs_run_t **p = &x->runs; *p; p = &(*p)->next)
        if (*p == r) { *p = r->next; break; }
    if (r->ex.cause != EXEC_DETACHED) {
        xs__follow(r);   /* the last lines (the job is over: the file is complete) */
        if (!r->overlong) lines_finish(&r->lines, xs__line, r);
    }
    exec_cbs_t cbs = r->cbs;
    void *owner = r->owner;
    exec_exit_t ex = r->ex;
    char detail[sizeof r->detail];
    memcpy(detail, r->detail, sizeof detail);
    ex.detail = detail;
    xs__free_run(r);
    cbs.on_exit(owner, &ex);
}

static void xs__end(xs_run_t *r, int status, int sig, int cause, const char *detail)
{
    if (r->ended) return;
    r->ended = 1;
    r->ex.status = sig ? -1 : status;
    r->ex.sig = sig;
    r->ex.cause = cause;
    snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
    xs__maybe_finish(r);
}

/* ---- scancel -------------------------------------------------------------- */

static void xs__scancel_done(xs_t *x, void *ctx, int status, const char *out, const char *errs)
{
    int64_t sid = (int64_t)(intptr_t)ctx;
    if (status) {
        char m[300];
        xs__first_line(errs, m, sizeof m);
        log_warn("slurm: scancel of job %lld: exit %d: %s", (long long)sid, status, m);
    }
}

static void xs__kill_sid(xs_t *x, xs_run_t *r, int sig)
{
    char id[32], sg[32];
    snprintf(id, sizeof id, "%lld", (long long)r->sid);
    if (sig == SIGKILL || !r->started) {
        char *argv[] = {"scancel", id, NULL};
        xs__cmd(x, argv, xs__scancel_done, (void *)(intptr_t)r->sid);
    } else {
        /* --full: the batch step is the worker itself (the script execs it). */
        snprintf(sg, sizeof sg, "--signal=%d", sig);
        char *argv[] = {"scancel", "--full", sg, id, NULL};
        xs__cmd(x, argv, xs__scancel_done, (void *)(intptr_t)r->sid);
    }
}

/* ---- squeue --------------------------------------------------------------- */

#define XS_FMT "JobID:|,State:|,Reason:|,exit_code:|,BatchHost:|,Comment:|"

static void xs__probe_row(xs_t *x, const slurm_row_t *row);

static void xs__row(xs_t *x, slurm_row_t *row)
{
    if (x->probe_sid && row->id == x->probe_sid) { xs__probe_row(x, row); return; }
    xs_run_t *r = xs__find(x, row->id);
    if (!r) return;
    r->missing = 0;
    slurm_outcome_t o;
    slurm_map_state(row->state, row->raw, &o);
    if (!o.known) log_warn("job %lld: Slurm job %lld in state %s, unknown to lrqd: following it as running",
                           (long long)r->job_id, (long long)r->sid, row->state);
    if (o.phase == SLURM_PENDING) return;
    if (!r->started) {
        r->started = 1;
        if (r->cbs.on_running) r->cbs.on_running(r->owner);
    }
    if (o.phase == SLURM_RUNNING) return;
    char detail[400];
    snprintf(detail, sizeof detail, "state %s%s%s%s%s", row->state, *row->reason && strcmp(row->reason, "None") ? ", " : "",
             *row->reason && strcmp(row->reason, "None") ? row->reason : "", *row->host ? ", node " : "", row->host);
    xs__end(r, o.status, o.sig, o.cause, detail);
}

/* A job squeue does not know: gone (MinJobAge) while lrqd was away. Its own files
 * tell whether it finished. */
static void xs__missing(xs_run_t *r)
{
    if (++r->missing < 2) return;   /* asked twice before believing it */
    char p[PATH_MAX];
    struct stat st;
    xs__follow(r);
    snprintf(p, sizeof p, "%s/metrics.json", r->workdir);
    if (r->last_done && !stat(p, &st)) xs__end(r, 0, 0, EXEC_EXITED, "finished; no longer in squeue");
    else xs__end(r, 1, 0, EXEC_LOST, "no longer in squeue (after MinJobAge?), and its events do not end with done");
}

static void xs__query_done(xs_t *x, void *ctx, int status, const char *out, const char *errs)
{
    char *ids = ctx;   /* ",SID,SID,…," that were asked about */
    x->query_inflight = 0;
    int invalid = status && strstr(errs, "Invalid job id");
    if (status && !invalid) {
        uint64_t now = lrq_mono_ms();
        if (now - x->last_warn > 60000) {
            char m[300];
            xs__first_line(errs, m, sizeof m);
            log_warn("slurm: squeue exit %d: %s (retrying every %lld ms)", status, m, (long long)x->poll_ms);
            x->last_warn = now;
        }
        free(ids);
        return;
    }
    /* Rows first; then whatever was asked about and not listed is missing. */
    char *text = strdup(out);
    if (!text) { free(ids); return; }
    for (char *line = text, *nl; line && *line; line = nl) {
        nl = strchr(line, '\n');
        if (nl) *nl++ = 0;
        slurm_row_t row;
        if (!*line) continue;
        if (slurm_parse_row(line, &row)) { log_warn("slurm: unexpected squeue line: %.200s", line); continue; }
        char key[32];
        snprintf(key, sizeof key, ",%lld,", (long long)row.id);
        char *k = strstr(ids, key);
        if (k) k[1] = '-';   /* seen */
        xs__row(x, &row);
    }
    free(text);
    for (char *p = ids; *p;) {
        char *end;
        long long sid = strtoll(p + 1, &end, 10);
        if (p[1] != '-' && end != p + 1) {
            xs_run_t *r = xs__find(x, sid);
            if (r) xs__missing(r);
            else if (sid == x->probe_sid) {
                log_warn("slurm: probe job %lld vanished from squeue; retrying", sid);
                x->probe_sid = 0;
                x->probe_retry_at = lrq_mono_ms() + 60000;
            }
        }
        p = strchr(p + 1, ',');
        if (!p || !p[1]) break;
    }
    free(ids);
}

static void xs__query(xs_t *x)
{
    lrq_buf_t ids = {0};
    int n = 0;
    if (lrq_buf_append(&ids, ",", 1)) return;
    for (xs_run_t *r = x->runs; r; r = r->next)
        if (r->sid && !r->ended && !lrq_buf_printf(&ids, "%lld,", (long long)r->sid)) n++;
    if (x->probe_sid && !lrq_buf_printf(&ids, "%lld,", (long long)x->probe_sid)) n++;
    if (!n) { lrq_buf_free(&ids); return; }
    char *list = strndup(ids.p + 1, ids.len - 2);   /* "SID,SID" */
    char *ctx = lrq_buf_take(&ids, NULL);
    if (!list || !ctx) { free(list); free(ctx); return; }
    char *argv[] = {"squeue", "--noheader", "--states=all", "--jobs", list, "--Format=" XS_FMT, NULL};
    x->query_inflight = 1;
    x->last_query = lrq_mono_ms();
    xs__cmd(x, argv, xs__query_done, ctx);
    free(list);
}

/* adopt() without an id: the newest live Slurm job named lrq-ID whose comment is ours. */
static void xs__lookup_done(xs_t *x, void *ctx, int status, const char *out, const char *errs)
{
    xs_run_t *r = ctx;
    r->submitting = 0;
    r->lookup = 0;
    if (r->ended) { xs__maybe_finish(r); return; }
    char want[PATH_MAX + 8];
    snprintf(want, sizeof want, "lrq:%s", r->workdir);
    int64_t best = 0;
    char *text = strdup(out);
    for (char *line = text, *nl; line && *line; line = nl) {
        nl = strchr(line, '\n');
        if (nl) *nl++ = 0;
        slurm_row_t row;
        if (*line && !slurm_parse_row(line, &row) && !strcmp(row.comment, want) && row.id > best) best = row.id;
    }
    free(text);
    if (status) {
        char m[300];
        xs__first_line(errs, m, sizeof m);
        xs__end(r, 1, 0, EXEC_LOST, m);
        return;
    }
    if (!best) {
        /* Never accepted by Slurm (lrqd died before sbatch answered): nothing runs. */
        xs__end(r, 75, 0, EXEC_EXITED, "no Slurm job found for it");
        return;
    }
    r->sid = best;
    log_notice("job %lld: found its Slurm job %lld by name", (long long)r->job_id, (long long)best);
    if (r->cbs.on_submitted) r->cbs.on_submitted(r->owner, best);
    if (r->pending_sig) xs__kill_sid(x, r, r->pending_sig);
}

/* ---- sbatch --------------------------------------------------------------- */

static void xs__sbatch_done(xs_t *x, void *ctx, int status, const char *out, const char *errs)
{
    xs_run_t *r = ctx;
    r->submitting = 0;
    int64_t sid = 0;
    char m[1000];
    if (status || slurm_parse_jobid(out, &sid)) {
        xs__first_line(*errs ? errs : out, m, sizeof m);
        if (!*m) snprintf(m, sizeof m, "exit %d", status);
        if (r->ended) { xs__maybe_finish(r); return; }   /* detached meanwhile: nothing was submitted */
        if (slurm_unreachable(errs)) {
            /* Hold the queue a while instead of burning every queued job's attempts. */
            x->hold_until = lrq_mono_ms() + XS_HOLD_MS;
            log_warn("slurm: sbatch could not reach slurmctld (%s); holding the queue for %d s", m, XS_HOLD_MS / 1000);
            xs__end(r, 1, 0, EXEC_UNAVAILABLE, m);
            return;
        }
        xs__end(r, 1, 0, EXEC_SUBMIT_FAILED, m);
        return;
    }
    r->sid = sid;
    if (r->cbs.on_submitted) r->cbs.on_submitted(r->owner, sid);
    if (r->ended) { xs__maybe_finish(r); return; }   /* detached while submitting: adopted at restart */
    if (r->pending_sig) xs__kill_sid(x, r, r->pending_sig);
}

/* The common sbatch arguments; argv has room for 40 + nextra entries. */
static int xs__sbatch_argv(xs_t *x, char **argv, char buf[][PATH_MAX + 32], int cpus, int64_t mem_mb, int64_t time_min)
{
    int k = 0, b = 0;
    argv[k++] = "sbatch";
    argv[k++] = "--parsable";
    argv[k++] = "--no-requeue";
    argv[k++] = "--ntasks=1";
    snprintf(buf[b], sizeof buf[b], "--cpus-per-task=%d", cpus);
    argv[k++] = buf[b++];
    snprintf(buf[b], sizeof buf[b], "--mem=%lld", (long long)mem_mb);
    argv[k++] = buf[b++];
    if (time_min > 0) {
        snprintf(buf[b], sizeof buf[b], "--time=%lld", (long long)time_min);
        argv[k++] = buf[b++];
    }
    if (*x->partition) {
        snprintf(buf[b], sizeof buf[b], "--partition=%s", x->partition);
        argv[k++] = buf[b++];
    }
    if (*x->account) {
        snprintf(buf[b], sizeof buf[b], "--account=%s", x->account);
        argv[k++] = buf[b++];
    }
    for (int i = 0; i < x->nextra; i++) argv[k++] = x->extra[i];
    argv[k] = NULL;
    return k;
}

/* DIR/slurm.sh: the thread budget, the cache budget, then exec the worker (so that
 * the batch step is the worker and scancel's signals reach it). */
static int xs__script(xs_t *x, const exec_job_t *job, const slurm_res_t *res, char *path, size_t pn, lrq_err_t *err)
{
    lrq_buf_t b = {0};
    int t = res->cpus, rc = 0;
    rc |= lrq_buf_printf(&b, "#!/bin/sh\n# written by lrqd: one attempt of job %lld (docs/daemon.md)\n", (long long)job->job_id);
    rc |= lrq_buf_printf(&b, "OPENBLAS_NUM_THREADS=%d OMP_NUM_THREADS=%d LRQ_JOB_ID=%lld LRQ_CACHE_MEM_MB=%lld\n", t, t,
                         (long long)job->job_id, (long long)res->cache_mb);
    rc |= lrq_buf_printf(&b, "export OPENBLAS_NUM_THREADS OMP_NUM_THREADS LRQ_JOB_ID LRQ_CACHE_MEM_MB\nexec ");
    rc |= slurm_sh_quote(&b, x->worker);
    rc |= lrq_buf_printf(&b, " run --spec ");
    rc |= slurm_sh_quote(&b, job->spec_path);
    rc |= lrq_buf_printf(&b, " --workdir ");
    rc |= slurm_sh_quote(&b, job->workdir);
    rc |= lrq_buf_printf(&b, "\n");
    if (rc) { lrq_buf_free(&b); return lrq_errf(err, LRQ_ENOMEM, "out of memory"); }
    snprintf(path, pn, "%s/slurm.sh", job->workdir);
    rc = lrq_write_atomic(path, b.p, b.len, err);
    lrq_buf_free(&b);
    if (!rc && chmod(path, 0750)) rc = lrq_errf(err, -errno, "%s: %s", path, strerror(errno));
    return rc;
}

static xs_run_t *xs__run_new(xs_t *x, const exec_job_t *job, const exec_cbs_t *cbs, void *owner)
{
    xs_run_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (lines_init(&r->lines, x->max_line) || !(r->workdir = strdup(job->workdir))) {
        lines_close(&r->lines);
        free(r);
        return NULL;
    }
    r->x = x;
    r->fd = -1;
    r->job_id = job->job_id;
    r->cbs = *cbs;
    r->owner = owner;
    return r;
}

static int xs_start(void *self, const exec_job_t *job, const exec_cbs_t *cbs, void *owner, void **handle,
                    lrq_err_t *err)
{
    xs_t *x = self;
    slurm_res_in_t ri = {.threads = job->threads, .model_bytes = job->model_bytes, .tasks = job->tasks, .max_cpus = x->max_cpus, .mem_mb = x->mem_mb,
                         .cache_mb = x->cache_mb, .time_limit_min = x->time_limit_min,
                         .job_timeout_s = x->job_timeout_s, .grace_s = x->grace_s};
    slurm_res_t res;
    slurm_resources(&ri, &res);
    char script[PATH_MAX];
    int rc = xs__script(x, job, &res, script, sizeof script, err);
    if (rc) return rc;
    xs_run_t *r = xs__run_new(x, job, cbs, owner);
    if (!r) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    char **argv = calloc((size_t)x->nextra + 48, sizeof *argv);
    char (*buf)[PATH_MAX + 32] = calloc(12, sizeof *buf);
    if (!argv || !buf) { free(argv); free(buf); xs__free_run(r); return lrq_errf(err, LRQ_ENOMEM, "out of memory"); }
    int k = xs__sbatch_argv(x, argv, buf, res.cpus, res.mem_mb, res.time_min);
    int b = 6;
    snprintf(buf[b], sizeof buf[b], "--job-name=lrq-%lld", (long long)job->job_id);
    argv[k++] = buf[b++];
    snprintf(buf[b], sizeof buf[b], "--comment=lrq:%s", job->workdir);
    argv[k++] = buf[b++];
    snprintf(buf[b], sizeof buf[b], "--chdir=%s", job->workdir);
    argv[k++] = buf[b++];
    snprintf(buf[b], sizeof buf[b], "--output=%s/slurm-%%j.out", job->workdir);
    argv[k++] = buf[b++];
    snprintf(buf[b], sizeof buf[b], "--error=%s", job->log_path);
    argv[k++] = buf[b++];
    argv[k++] = "--open-mode=append";
    argv[k++] = script;
    argv[k] = NULL;
    r->submitting = 1;
    r->next = x->runs;
    x->runs = r;
    log_info("job %lld: sbatch --cpus-per-task=%d --mem=%lldM --time=%lld%s%s (LRQ_CACHE_MEM_MB=%lld)",
             (long long)job->job_id, res.cpus, (long long)res.mem_mb, (long long)res.time_min,
             *x->partition ? " --partition=" : "", x->partition, (long long)res.cache_mb);
    xs__cmd(x, argv, xs__sbatch_done, r);
    free(argv);
    free(buf);
    *handle = r;
    return 0;
}

static int xs_adopt(void *self, const exec_job_t *job, int64_t sid, const exec_cbs_t *cbs, void *owner, void **handle,
                    lrq_err_t *err)
{
    xs_t *x = self;
    xs_run_t *r = xs__run_new(x, job, cbs, owner);
    if (!r) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    r->next = x->runs;
    x->runs = r;
    *handle = r;
    if (sid > 0) {
        r->sid = sid;
        return 0;
    }
    /* Unknown id: look for a live job with our name and comment. */
    char name[64];
    snprintf(name, sizeof name, "--name=lrq-%lld", (long long)job->job_id);
    char *argv[] = {"squeue", "--noheader", name, "--Format=" XS_FMT, NULL};
    r->submitting = r->lookup = 1;
    xs__cmd(x, argv, xs__lookup_done, r);
    return 0;
}

static int xs_kill(void *self, void *handle, int sig)
{
    xs_t *x = self;
    xs_run_t *r = handle;
    if (r->ended) return UV_ESRCH;
    if (!r->sid) {   /* sbatch has not answered yet: signal when it has */
        if (sig == SIGKILL || !r->pending_sig) r->pending_sig = sig;
        return 0;
    }
    xs__kill_sid(x, r, sig);
    return 0;
}

static void xs_detach(void *self, void *handle)
{
    xs_run_t *r = handle;
    xs__end(r, 0, 0, EXEC_DETACHED, "");
}

static int64_t xs_pid(void *self, void *handle) { return 0; }

/* ---- the start-up probe ----------------------------------------------------- */

static void xs__probe_paths(xs_t *x, const char *ext, char *p, size_t n) { snprintf(p, n, "%s%s", x->probe_base, ext); }

static void xs__probe_clean(xs_t *x)
{
    static const char *const ext[] = {".sh", ".ok", ".tmp", ".err"};
    char p[PATH_MAX + 8];
    for (int i = 0; i < 4; i++) {
        xs__probe_paths(x, ext[i], p, sizeof p);
        unlink(p);
    }
}

static void xs__probe_row(xs_t *x, const slurm_row_t *row)
{
    slurm_outcome_t o;
    slurm_map_state(row->state, row->raw, &o);
    if (o.phase != SLURM_ENDED) return;
    char ok[PATH_MAX + 8], er[PATH_MAX + 8], msg[300] = "";
    xs__probe_paths(x, ".ok", ok, sizeof ok);
    xs__probe_paths(x, ".err", er, sizeof er);
    struct stat st;
    if (!stat(ok, &st)) {
        log_notice("slurm: probe job %lld on node %s wrote into %s: the state dir is shared; taking jobs",
                   (long long)row->id, row->host, x->jobs_dir);
        x->ready = 1;
    } else {
        char *text = NULL;
        if (!lrq_read_file(er, &text, NULL, 4096, NULL)) xs__first_line(text, msg, sizeof msg);
        free(text);
        log_err("slurm: probe job %lld (state %s, node %s) could not write into %s: state_dir must be on a "
                "filesystem every Slurm node mounts at the same path, writable by the jobs' user "
                "(docs/daemon.md, \"Deploying with Slurm\"); holding the queue, retrying in 60 s%s%s",
                (long long)row->id, row->state, row->host, x->jobs_dir, *msg ? "; the job said: " : "", msg);
        x->probe_retry_at = lrq_mono_ms() + 60000;
    }
    x->probe_sid = 0;
    xs__probe_clean(x);
}

static void xs__probe_done(xs_t *x, void *ctx, int status, const char *out, const char *errs)
{
    x->probe_busy = 0;
    int64_t sid;
    if (status || slurm_parse_jobid(out, &sid)) {
        char m[600];
        xs__first_line(*errs ? errs : out, m, sizeof m);
        int down = slurm_unreachable(errs);
        log_err("slurm: cannot submit the start-up probe (sbatch exit %d: %s); holding the queue, retrying in %d s",
                status, m, down ? XS_HOLD_MS / 1000 : 60);
        x->probe_retry_at = lrq_mono_ms() + (down ? XS_HOLD_MS : 60000);
        return;
    }
    x->probe_sid = sid;
    log_info("slurm: probe job %lld submitted: checking that a node can write into %s", (long long)sid, x->jobs_dir);
}

static void xs__probe_start(xs_t *x)
{
    char sh[PATH_MAX + 8], ok[PATH_MAX + 8], tmp[PATH_MAX + 8], er[PATH_MAX + 40];
    lrq_err_t err;
    snprintf(x->probe_base, sizeof x->probe_base, "%s/.slurm-probe-%lld-%llu", x->jobs_dir, (long long)getpid(),
             (unsigned long long)lrq_wall_ms());
    xs__probe_paths(x, ".sh", sh, sizeof sh);
    xs__probe_paths(x, ".ok", ok, sizeof ok);
    xs__probe_paths(x, ".tmp", tmp, sizeof tmp);
    lrq_buf_t b = {0};
    int rc = lrq_buf_printf(&b, "#!/bin/sh\n# lrqd's start-up probe: can a node write into the state dir?\nhostname > ");
    rc |= slurm_sh_quote(&b, tmp);
    rc |= lrq_buf_printf(&b, " && mv ");
    rc |= slurm_sh_quote(&b, tmp);
    rc |= lrq_buf_printf(&b, " ");
    rc |= slurm_sh_quote(&b, ok);
    rc |= lrq_buf_printf(&b, "\n");
    if (rc || lrq_write_atomic(sh, b.p, b.len, &err) || chmod(sh, 0750)) {
        log_err("slurm: cannot write the probe script %s; holding the queue, retrying in 60 s", sh);
        lrq_buf_free(&b);
        x->probe_retry_at = lrq_mono_ms() + 60000;
        return;
    }
    lrq_buf_free(&b);
    char **argv = calloc((size_t)x->nextra + 48, sizeof *argv);
    char (*buf)[PATH_MAX + 32] = calloc(12, sizeof *buf);
    if (!argv || !buf) { free(argv); free(buf); x->probe_retry_at = lrq_mono_ms() + 60000; return; }
    int k = xs__sbatch_argv(x, argv, buf, 1, 16, 5);
    snprintf(er, sizeof er, "--error=%s.err", x->probe_base);
    argv[k++] = "--job-name=lrq-probe";
    argv[k++] = "--output=/dev/null";
    argv[k++] = er;
    snprintf(buf[8], sizeof buf[8], "--chdir=%s", x->jobs_dir);
    argv[k++] = buf[8];
    argv[k++] = sh;
    argv[k] = NULL;
    x->probe_busy = 1;
    xs__cmd(x, argv, xs__probe_done, NULL);
    free(argv);
    free(buf);
}

static int xs_ready(void *self)
{
    xs_t *x = self;
    return x->ready && lrq_mono_ms() >= x->hold_until;
}

/* ---- the timer ------------------------------------------------------------------ */

static void xs__tick(uv_timer_t *t)
{
    xs_t *x = t->data;
    uint64_t now = lrq_mono_ms();
    for (xs_run_t *r = x->runs; r; r = r->next)
        if (!r->ended) xs__follow(r);
    if (x->probe_on && !x->ready && !x->probe_busy && !x->probe_sid && now >= x->probe_retry_at) xs__probe_start(x);
    if (!x->query_inflight && now - x->last_query >= (uint64_t)x->poll_ms) xs__query(x);
}

/* ---- life cycle -------------------------------------------------------------- */

static void xs_destroy(void *self)
{
    xs_t *x = self;
    /* The loop has ended (main closed every handle): free what is left without callbacks. */
    for (xs_cmd_t *c = x->cmds, *n; c; c = n) {
        n = c->next;
        if (c->done == xs__query_done) free(c->ctx);   /* its list of ids; other contexts are runs or ids */
        lrq_buf_free(&c->ob);
        lrq_buf_free(&c->eb);
        free(c);
    }
    for (xs_run_t *r = x->runs, *n; r; r = n) {
        n = r->next;
        xs__free_run(r);
    }
    if (x->probe_sid || x->probe_busy) xs__probe_clean(x);
    slurm_args_free(x->extra);
    free(x->worker);
    free(x->jobs_dir);
    free(x->partition);
    free(x->account);
    free(x);
}

static const exec_ops_t xs_ops = {
    .name = "slurm", .start = xs_start, .kill = xs_kill, .pid = xs_pid, .reap_orphan = NULL, .destroy = xs_destroy,
    .adopt = xs_adopt, .detach = xs_detach, .ready = xs_ready,
};

int exec_slurm_new(exec_t *out, uv_loop_t *loop, const char *worker_path, const cfg_t *cfg, const char *jobs_dir,
                   lrq_err_t *err)
{
    xs_t *x = calloc(1, sizeof *x);
    if (!x) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    int rc = slurm_split_args(cfg->slurm_sbatch_args, &x->extra, &x->nextra, err);
    if (rc) { free(x); return rc; }
    if (!(x->worker = strdup(worker_path)) || !(x->jobs_dir = strdup(jobs_dir)) ||
        !(x->partition = strdup(cfg->slurm_partition ? cfg->slurm_partition : "")) ||
        !(x->account = strdup(cfg->slurm_account ? cfg->slurm_account : ""))) {
        xs_destroy(x);
        return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    }
    x->loop = loop;
    x->max_line = (size_t)cfg->max_line;
    x->poll_ms = cfg->slurm_poll_ms;
    x->mem_mb = cfg->slurm_mem_mb;
    x->cache_mb = cfg->slurm_cache_mb;
    x->time_limit_min = cfg->slurm_time_limit_min;
    x->max_cpus = cfg->slurm_max_cpus;
    x->job_timeout_s = cfg->job_timeout_s;
    x->grace_s = cfg->grace_s;
    x->probe_on = cfg->slurm_probe;
    x->ready = !x->probe_on;
    uv_timer_init(loop, &x->tick);
    x->tick.data = x;
    uv_timer_start(&x->tick, xs__tick, 0, XS_TICK_MS);
    out->ops = &xs_ops;
    out->self = x;
    return 0;
}
