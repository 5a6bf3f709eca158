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
 *   array    a parallel job with "tasks": K (slurm_parallel = array, the default) is two Slurm
 *            jobs: a job array of K elements, each `lrq-worker run --task $SLURM_ARRAY_TASK_ID`
 *            (DIR/slurm-task.sh, output DIR/slurm-AID_K.out, one range of blocks each, on any
 *            node), and the assemble job `lrq-worker run --assemble` with
 *            --dependency=afterok:AID, which is the run lrqd records (its id is the run's).
 *            The elements' events are followed too: their reconstruct progress is summed
 *            (lrq_tasks.h) into the job's, their block and checkpoint events pass on with
 *            "task". An element that fails ends the attempt: the others are stopped (SIGTERM,
 *            they checkpoint), the assemble job cancelled, and the run ends with the element's
 *            outcome once none of them is left; the next attempt's elements skip finished
 *            ranges and resume the others. DIR/slurm-array.id ("AID SID") finds the array again
 *            at adoption.
 *
 * A run ends (on_exit, once) when its end is known and its sbatch has answered. */
#include "cfg.h"
#include "exec.h"
#include "lines.h"
#include "log.h"
#include "lrq_buf.h"
#include "lrq_clock.h"
#include "lrq_fs.h"
#include "lrq_tasks.h"
#include "slurm.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* XS_EXIT_STOPPED: the worker's "stopped after a checkpoint, run again" (docs/worker-protocol.md) */
enum { XS_EXIT_STOPPED = 75, XS_TICK_MS = 250, XS_OUT_CAP = 4 << 20, XS_ERR_CAP = 16 << 10, XS_READ_PER_TICK = 64, XS_HOLD_MS = 10000 };

typedef struct xs xs_t;
enum { XS_ONE, XS_ASSEMBLE, XS_TASK };   /* the Slurm jobs of a run: the whole job; an array's assemble job; the array */
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
    char *workdir, *log_path;
    slurm_res_t res;          /* what each of its Slurm jobs asks for */
    exec_cbs_t cbs;
    void *owner;
    int submitting;           /* an sbatch (or the name lookup) is in flight */
    int lookup;               /* adopted without an id: find it by name and comment */
    int started, ended, overlong, pending_sig, missing, last_done;
    int fd;                   /* the events file, -1 until it exists */
    lines_t lines;
    exec_exit_t ex;
    char detail[1024];
    /* The block tasks' job array (ntask > 0; see the top of the file). */
    int ntask;
    int64_t aid;              /* the array's Slurm job id, 0 until known */
    int64_t orphan_aid;       /* adopted: an array whose assemble job lrqd never learnt of */
    struct xs_elem *el;       /* [ntask] */
    lrq_taskprog_t prog;
    uint64_t t_first;         /* monotonic ms of the first element event (elapsed_s of the summed progress) */
    int a_live;               /* elements pending or running in the last squeue answer */
    int a_failed, a_stopped;  /* an element failed (a_ex, a_detail); the array was told to stop */
    int m_running, m_ended;   /* the assemble job runs; it has ended (m_ex, m_detail), elements may remain */
    exec_exit_t a_ex, m_ex;
    char a_detail[1024], m_detail[400];
} xs_run_t;

typedef struct xs_elem {
    xs_run_t *r;
    int k, fd, overlong, ok;
    lines_t lines;
    char err[300];            /* its last error event */
} xs_elem_t;

struct xs {
    uv_loop_t *loop;
    char *worker, *jobs_dir;
    char *partition, *account;
    char **extra;             /* slurm_sbatch_args split */
    int nextra;
    size_t max_line;
    int64_t poll_ms, mem_mb, cache_mb, time_limit_min, job_timeout_s, grace_s, max_cpus;
    int array;                /* slurm_parallel = array */
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
static void xs__follow_elems(xs_run_t *r);
static void xs__array_file(xs_run_t *r);

/* Read what the worker appended to its events file (bounded per tick). */
static void xs__follow(xs_run_t *r)
{
    xs__follow_elems(r);
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

/* Pass one event on to the run's owner as a line. */
static void xs__emit(xs_run_t *r, json_t *ev)
{
    char *line = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (!line) return;   /* out of memory: one progress update fewer */
    r->cbs.on_line(r->owner, line, strlen(line));
    free(line);
}

/* One event of array element k: reconstruct progress summed over the elements (the job's
 * progress until the assemble job starts); block, checkpoint and resume events passed on with
 * the task; its error kept for the run's detail; start and done are the element's own. */
static int xs__eline(void *ud, char *line, size_t len)
{
    xs_elem_t *e = ud;
    xs_run_t *r = e->r;
    json_t *ev = json_loadb(line, len, 0, NULL);
    const char *name = json_string_value(json_object_get(ev, "event"));
    long sum, total;
    if (!r->t_first) r->t_first = lrq_mono_ms();
    if (!name) {
        json_decref(ev);
        return 0;
    }
    if (!strcmp(name, "progress")) {
        if (lrq_taskprog_update(&r->prog, e->k, ev, &sum, &total)) {
            /* the span of the job's fraction the tasks fill (the worker's stage weights) */
            json_t *sp = json_object_get(ev, "span");
            double f0 = json_number_value(json_array_get(sp, 0)), f1 = json_number_value(json_array_get(sp, 1));
            double f = total ? (double)sum / (double)total : 0, el = (double)(lrq_mono_ms() - r->t_first) / 1000.0;
            if (!(f1 > f0)) f0 = 0, f1 = 1;
            json_t *x = json_pack("{s:s, s:s, s:I, s:I, s:f, s:f, s:O?, s:I, s:O?, s:O?, s:O?, s:i, s:i}", "event", "progress",
                                  "stage", "reconstruct", "done", (json_int_t)sum, "total", (json_int_t)total, "fraction",
                                  f0 + (f1 - f0) * f, "elapsed_s", el, "block", json_object_get(ev, "block"), "blocks",
                                  (json_int_t)r->prog.L, "iteration", json_object_get(ev, "iteration"), "iterations",
                                  json_object_get(ev, "iterations"), "loss", json_object_get(ev, "loss"), "task", e->k,
                                  "tasks", r->ntask);
            /* ETA of the tasks still running (evaluation and export come after) */
            if (x && f > 0.001) json_object_set_new(x, "eta_s", json_real(el * (1.0 - f) / f));
            xs__emit(r, x);
        }
    } else if (!strcmp(name, "block") || !strcmp(name, "checkpoint") || !strcmp(name, "resume")) {
        json_object_set_new(ev, "task", json_integer(e->k));
        if (!strcmp(name, "resume")) json_object_set_new(ev, "event", json_string("task_resume")); /* not the job's */
        xs__emit(r, json_incref(ev));
    } else if (!strcmp(name, "error")) {
        const char *m = json_string_value(json_object_get(ev, "message"));
        snprintf(e->err, sizeof e->err, "%s", m ? m : "error");
    }
    json_decref(ev);
    return 0;
}

static void xs__stop_array(xs_run_t *r);

/* Read what the array's elements appended to their output files. */
static void xs__follow_elems(xs_run_t *r)
{
    for (int k = 0; r->aid && k < r->ntask; k++) {
        xs_elem_t *e = &r->el[k];
        if (e->overlong) continue;
        if (e->fd < 0) {
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%s/slurm-%lld_%d.out", r->workdir, (long long)r->aid, k);
            if ((e->fd = open(p, O_RDONLY | O_CLOEXEC)) < 0) continue;   /* not started yet */
        }
        for (int i = 0; i < XS_READ_PER_TICK; i++) {
            char *p;
            size_t n;
            lines_space(&e->lines, &p, &n);
            ssize_t got = read(e->fd, p, n);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) break;
            if (lines_commit(&e->lines, (size_t)got, xs__eline, e) == LINES_EOVERLONG) {
                e->overlong = 1;
                if (!r->overlong) {
                    r->overlong = 1;
                    r->cbs.on_overlong(r->owner);   /* sched asks for SIGKILL: scancel of both */
                }
                break;
            }
        }
    }
}

static void xs__free_run(xs_run_t *r)
{
    if (r->fd >= 0) close(r->fd);
    lines_close(&r->lines);
    for (int k = 0; r->el && k < r->ntask; k++) {
        if (r->el[k].fd >= 0) close(r->el[k].fd);
        lines_close(&r->el[k].lines);
    }
    free(r->el);
    lrq_taskprog_close(&r->prog);
    free(r->workdir);
    free(r->log_path);
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

static void xs__scancel(xs_t *x, int64_t sid, const char *a1, const char *a2, int64_t sid2)
{
    char id[32], id2[32];
    if (sid <= 0) return;
    snprintf(id, sizeof id, "%lld", (long long)sid);
    snprintf(id2, sizeof id2, "%lld", (long long)sid2);
    char *argv[6];
    int k = 0;
    argv[k++] = "scancel";
    if (a1) argv[k++] = (char *)a1;
    if (a2) argv[k++] = (char *)a2;
    argv[k++] = id;
    if (sid2) argv[k++] = id2;
    argv[k] = NULL;
    xs__cmd(x, argv, xs__scancel_done, (void *)(intptr_t)sid);
}

static void xs__kill_sid(xs_t *x, xs_run_t *r, int sig)
{
    char sg[32];
    snprintf(sg, sizeof sg, "--signal=%d", sig);
    if (r->aid && !r->m_running) {
        /* The array's phase: every element and the waiting assemble job. SIGTERM lets running
         * elements checkpoint (exit 75); pending ones and the assemble job simply go. */
        if (sig == SIGKILL) { xs__scancel(x, r->aid, NULL, NULL, r->sid); return; }
        r->a_stopped = 1;
        xs__scancel(x, r->aid, "--state=PENDING", NULL, 0);
        xs__scancel(x, r->aid, "--full", sg, 0);
        xs__scancel(x, r->sid, NULL, NULL, 0);
        return;
    }
    if (sig == SIGKILL || !r->started) xs__scancel(x, r->sid, NULL, NULL, 0);
    else xs__scancel(x, r->sid, "--full", sg, 0);   /* --full: the batch step is the worker itself (the script execs it) */
}

/* An element failed: the attempt is over. The others checkpoint and stop, the assemble job goes;
 * the run ends when none of them is left (xs__array_check). */
static void xs__stop_array(xs_run_t *r)
{
    if (r->a_stopped || r->m_running) return;
    log_notice("job %lld: %s; stopping its other block tasks (array %lld) and the assemble job %lld",
               (long long)r->job_id, r->a_detail, (long long)r->aid, (long long)r->sid);
    xs__kill_sid(r->x, r, SIGTERM);
}

/* ---- squeue --------------------------------------------------------------- */

#define XS_FMT "JobID:|,ArrayJobID:|,ArrayTaskID:|,State:|,Reason:|,exit_code:|,BatchHost:|,Comment:|"

static void xs__probe_row(xs_t *x, const slurm_row_t *row);

static xs_run_t *xs__find_array(xs_t *x, int64_t aid)
{
    for (xs_run_t *r = x->runs; r; r = r->next)
        if (r->aid == aid && !r->ended) return r;
    return NULL;
}

static void xs__detail(const slurm_row_t *row, char *detail, size_t n)
{
    int why = *row->reason && strcmp(row->reason, "None");
    snprintf(detail, n, "state %s%s%s%s%s", row->state, why ? ", " : "", why ? row->reason : "", *row->host ? ", node " : "",
             row->host);
}

static void xs__mark_started(xs_run_t *r)
{
    if (r->started) return;
    r->started = 1;
    if (r->cbs.on_running) r->cbs.on_running(r->owner);
}

/* A row of an array element (or of elements not split yet). */
static void xs__elem_row(xs_run_t *r, const slurm_row_t *row)
{
    slurm_outcome_t o;
    slurm_map_state(row->state, row->raw, &o);
    if (o.phase != SLURM_ENDED) {
        r->a_live++;
        if (o.phase == SLURM_RUNNING) xs__mark_started(r);
        return;
    }
    if (row->task < 0 || row->task >= r->ntask) return;
    xs_elem_t *e = &r->el[row->task];
    if (o.status == 0 && !o.sig && o.cause == EXEC_EXITED) {
        if (!e->ok) lrq_taskprog_finish(&r->prog, row->task);
        e->ok = 1;
        return;
    }
    if (r->a_failed) return;
    r->a_failed = 1;
    r->a_ex.status = o.sig ? -1 : o.status;
    r->a_ex.sig = o.sig;
    r->a_ex.cause = o.cause;
    char d[400];
    xs__detail(row, d, sizeof d);
    xs__follow_elems(r);   /* its error event, if it wrote one */
    snprintf(r->a_detail, sizeof r->a_detail, "block task %d (Slurm job %lld_%d): %s%s%s", row->task, (long long)r->aid,
             row->task, d, *e->err ? ": " : "", e->err);
    xs__stop_array(r);
}

static void xs__row(xs_t *x, slurm_row_t *row)
{
    if (x->probe_sid && row->id == x->probe_sid) { xs__probe_row(x, row); return; }
    if (row->task != -1) {
        xs_run_t *ar = xs__find_array(x, row->id);
        if (ar) xs__elem_row(ar, row);
        return;
    }
    xs_run_t *r = xs__find(x, row->id);
    if (!r) return;
    r->missing = 0;
    slurm_outcome_t o;
    slurm_map_state(row->state, row->raw, &o);
    if (!o.known) log_warn("job %lld: Slurm job %lld in state %s, unknown to lrqd: following it as running",
                           (long long)r->job_id, (long long)r->sid, row->state);
    if (o.phase == SLURM_PENDING) {
        if (r->aid && !r->a_failed && !strcmp(row->reason, "DependencyNeverSatisfied")) {
            /* an element failed and squeue no longer lists it (MinJobAge): its outcome is unknown */
            r->a_failed = 1;
            r->a_ex = (exec_exit_t){.status = 1, .cause = EXEC_EXITED};
            snprintf(r->a_detail, sizeof r->a_detail, "a block task of array %lld failed (the assemble job's dependency can never be satisfied)",
                     (long long)r->aid);
            xs__stop_array(r);
        }
        return;
    }
    xs__mark_started(r);
    if (o.phase == SLURM_RUNNING) {
        r->m_running = 1;
        return;
    }
    char detail[400];
    xs__detail(row, detail, sizeof detail);
    if (r->aid) { /* the run ends when no element is left either (xs__array_check) */
        if (!r->m_ended) {
            r->m_ended = 1;
            r->m_ex = (exec_exit_t){.status = o.sig ? -1 : o.status, .sig = o.sig, .cause = o.cause};
            snprintf(r->m_detail, sizeof r->m_detail, "%s", detail);
        }
        return;
    }
    xs__end(r, o.status, o.sig, o.cause, detail);
}

/* After a squeue answer: an array run whose assemble job has ended ends once no element is
 * pending or running, with the first failed element's outcome if there was one. */
static void xs__array_check(xs_run_t *r)
{
    if (!r->aid || r->ended || !r->m_ended || r->a_live) return;
    if (r->a_failed) xs__end(r, r->a_ex.status, r->a_ex.sig, r->a_ex.cause, r->a_detail);
    else xs__end(r, r->m_ex.status, r->m_ex.sig, r->m_ex.cause, r->m_detail);
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
    for (xs_run_t *r = x->runs; r; r = r->next) {
        char key[32];
        snprintf(key, sizeof key, ",%lld,", (long long)r->aid);
        if (r->aid && strstr(ids, key)) r->a_live = 0;   /* counted again from this answer */
    }
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
    /* Ending a run may start another (on_exit): look again from the top after each. */
    for (int again = 1; again;) {
        again = 0;
        for (xs_run_t *r = x->runs; r; r = r->next)
            if (r->aid && !r->ended && r->m_ended && !r->a_live) {
                xs__array_check(r);
                again = 1;
                break;
            }
    }
}

static void xs__query(xs_t *x)
{
    lrq_buf_t ids = {0};
    int n = 0;
    if (lrq_buf_append(&ids, ",", 1)) return;
    for (xs_run_t *r = x->runs; r; r = r->next) {
        if (r->sid && !r->ended && !lrq_buf_printf(&ids, "%lld,", (long long)r->sid)) n++;
        if (r->aid && !r->ended && !lrq_buf_printf(&ids, "%lld,", (long long)r->aid)) n++;
    }
    if (x->probe_sid && !lrq_buf_printf(&ids, "%lld,", (long long)x->probe_sid)) n++;
    if (!n) { lrq_buf_free(&ids); return; }
    char *list = strndup(ids.p + 1, ids.len - 2);   /* "SID,SID" */
    char *ctx = lrq_buf_take(&ids, NULL);
    if (!list || !ctx) { free(list); free(ctx); return; }
    /* --array: one row per array element (ArrayJobID, ArrayTaskID) */
    char *argv[] = {"squeue", "--noheader", "--array", "--states=all", "--jobs", list, "--Format=" XS_FMT, NULL};
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
        /* Never accepted by Slurm (lrqd died before sbatch answered): nothing runs but, maybe,
         * the array submitted before it, which nothing would follow now. */
        if (r->orphan_aid) {
            log_notice("job %lld: cancelling its block-task array %lld (its assemble job was never submitted)",
                       (long long)r->job_id, (long long)r->orphan_aid);
            xs__scancel(x, r->orphan_aid, NULL, NULL, 0);
        }
        xs__end(r, XS_EXIT_STOPPED, 0, EXEC_EXITED, "no Slurm job found for it");
        return;
    }
    r->sid = best;
    if (r->orphan_aid) { /* the assemble job was accepted after all: follow both */
        r->aid = r->orphan_aid;
        r->orphan_aid = 0;
        xs__array_file(r);
    }
    log_notice("job %lld: found its Slurm job %lld by name", (long long)r->job_id, (long long)best);
    if (r->cbs.on_submitted) r->cbs.on_submitted(r->owner, best);
    if (r->pending_sig) xs__kill_sid(x, r, r->pending_sig);
}

/* ---- sbatch --------------------------------------------------------------- */

/* sbatch refused or did not answer: the run ends without a Slurm job (of its own). */
static void xs__submit_failed(xs_t *x, xs_run_t *r, int status, const char *out, const char *errs)
{
    char m[1000];
    xs__first_line(*errs ? errs : out, m, sizeof m);
    if (!*m) snprintf(m, sizeof m, "exit %d", status);
    if (r->aid && !r->sid) xs__scancel(x, r->aid, NULL, NULL, 0);   /* its array would run unwatched */
    if (r->ended) { xs__maybe_finish(r); return; }   /* detached meanwhile: nothing was submitted */
    if (slurm_unreachable(errs)) {
        /* Hold the queue a while instead of burning every queued job's attempts. */
        x->hold_until = lrq_mono_ms() + XS_HOLD_MS;
        log_warn("slurm: sbatch could not reach slurmctld (%s); holding the queue for %d s", m, XS_HOLD_MS / 1000);
        xs__end(r, 1, 0, EXEC_UNAVAILABLE, m);
        return;
    }
    xs__end(r, 1, 0, EXEC_SUBMIT_FAILED, m);
}

static void xs__sbatch_done(xs_t *x, void *ctx, int status, const char *out, const char *errs)
{
    xs_run_t *r = ctx;
    r->submitting = 0;
    int64_t sid = 0;
    if (status || slurm_parse_jobid(out, &sid)) {
        xs__submit_failed(x, r, status, out, errs);
        return;
    }
    r->sid = sid;
    if (r->aid) xs__array_file(r);
    if (r->cbs.on_submitted) r->cbs.on_submitted(r->owner, sid);
    if (r->ended) { xs__maybe_finish(r); return; }   /* detached while submitting: adopted at restart */
    if (r->pending_sig) xs__kill_sid(x, r, r->pending_sig);
}

static int xs__submit(xs_t *x, xs_run_t *r, int kind);

/* The array is accepted: its id to the work dir, then the assemble job that waits for it. */
static void xs__array_done(xs_t *x, void *ctx, int status, const char *out, const char *errs)
{
    xs_run_t *r = ctx;
    r->submitting = 0;
    int64_t aid = 0;
    if (status || slurm_parse_jobid(out, &aid)) {
        xs__submit_failed(x, r, status, out, errs);
        return;
    }
    r->aid = aid;
    xs__array_file(r);
    log_info("job %lld: block tasks are Slurm array %lld (%d elements)", (long long)r->job_id, (long long)aid, r->ntask);
    if (r->ended || r->pending_sig) {
        /* detached (lrqd stopping) or stopped before the assemble job existed: nothing would
         * follow the array, so it goes; its elements' checkpoints stay for the next attempt */
        xs__scancel(x, aid, NULL, NULL, 0);
        if (!r->ended) xs__end(r, r->pending_sig == SIGKILL ? 0 : XS_EXIT_STOPPED, r->pending_sig == SIGKILL ? SIGKILL : 0,
                               EXEC_EXITED, "stopped before its assemble job was submitted");
        else xs__maybe_finish(r);
        return;
    }
    if (xs__submit(x, r, XS_ASSEMBLE)) {
        xs__scancel(x, aid, NULL, NULL, 0);
        xs__end(r, 1, 0, EXEC_SUBMIT_FAILED, "out of memory");
    }
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
 * the batch step is the worker and scancel's signals reach it). kind: XS_ONE (the whole job),
 * XS_ASSEMBLE (after its array; --assemble) or XS_TASK (DIR/slurm-task.sh, an array element:
 * --task $SLURM_ARRAY_TASK_ID). */
static int xs__script(xs_t *x, const exec_job_t *job, const slurm_res_t *res, int kind, char *path, size_t pn, lrq_err_t *err)
{
    lrq_buf_t b = {0};
    int t = res->cpus, rc = 0;
    rc |= lrq_buf_printf(&b, "#!/bin/sh\n# written by lrqd: %s of job %lld (docs/daemon.md)\n",
                         kind == XS_TASK ? "the block tasks (a job array)" : kind == XS_ASSEMBLE ? "the assemble step" : "one attempt",
                         (long long)job->job_id);
    rc |= lrq_buf_printf(&b, "OPENBLAS_NUM_THREADS=%d OMP_NUM_THREADS=%d LRQ_JOB_ID=%lld LRQ_CACHE_MEM_MB=%lld\n", t, t,
                         (long long)job->job_id, (long long)res->cache_mb);
    rc |= lrq_buf_printf(&b, "export OPENBLAS_NUM_THREADS OMP_NUM_THREADS LRQ_JOB_ID LRQ_CACHE_MEM_MB\nexec ");
    rc |= slurm_sh_quote(&b, x->worker);
    rc |= lrq_buf_printf(&b, " run%s --spec ", kind == XS_TASK ? " --task \"$SLURM_ARRAY_TASK_ID\"" : kind == XS_ASSEMBLE ? " --assemble" : "");
    rc |= slurm_sh_quote(&b, job->spec_path);
    rc |= lrq_buf_printf(&b, " --workdir ");
    rc |= slurm_sh_quote(&b, job->workdir);
    rc |= lrq_buf_printf(&b, "\n");
    if (rc) { lrq_buf_free(&b); return lrq_errf(err, LRQ_ENOMEM, "out of memory"); }
    snprintf(path, pn, "%s/%s", job->workdir, kind == XS_TASK ? "slurm-task.sh" : "slurm.sh");
    rc = lrq_write_atomic(path, b.p, b.len, err);
    lrq_buf_free(&b);
    if (!rc && chmod(path, 0750)) rc = lrq_errf(err, -errno, "%s: %s", path, strerror(errno));
    return rc;
}

/* DIR/slurm-array.id: "AID" once the array is accepted, "AID SID" once the assemble job is. */
static void xs__array_file(xs_run_t *r)
{
    char p[PATH_MAX], text[64];
    lrq_err_t e;
    snprintf(p, sizeof p, "%s/slurm-array.id", r->workdir);
    int n = r->sid ? snprintf(text, sizeof text, "%lld %lld\n", (long long)r->aid, (long long)r->sid)
                   : snprintf(text, sizeof text, "%lld\n", (long long)r->aid);
    if (lrq_write_atomic(p, text, (size_t)n, &e))
        log_warn("job %lld: %s (a restarted lrqd would not find its array %lld)", (long long)r->job_id, e.msg, (long long)r->aid);
}

/* Read DIR/slurm-array.id: *aid, and *sid (0 when the assemble job was never accepted). */
static int xs__array_file_read(const char *workdir, int64_t *aid, int64_t *sid)
{
    char p[PATH_MAX], *text = NULL;
    long long a = 0, b = 0;
    snprintf(p, sizeof p, "%s/slurm-array.id", workdir);
    *aid = *sid = 0;
    if (lrq_read_file(p, &text, NULL, 256, NULL)) return -1;
    int n = sscanf(text, "%lld %lld", &a, &b);
    free(text);
    if (n < 1 || a <= 0) return -1;
    *aid = a;
    *sid = n == 2 && b > 0 ? b : 0;
    return 0;
}

static xs_run_t *xs__run_new(xs_t *x, const exec_job_t *job, int ntask, const exec_cbs_t *cbs, void *owner)
{
    xs_run_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->fd = -1;
    if (lines_init(&r->lines, x->max_line) || !(r->workdir = strdup(job->workdir)) || !(r->log_path = strdup(job->log_path)) ||
        (ntask && (!(r->el = calloc((size_t)ntask, sizeof *r->el)) || lrq_taskprog_init(&r->prog, ntask)))) {
        xs__free_run(r);
        return NULL;
    }
    r->ntask = ntask;
    for (int k = 0; k < ntask; k++) {
        r->el[k] = (xs_elem_t){.r = r, .k = k, .fd = -1};
        if (lines_init(&r->el[k].lines, x->max_line)) {
            xs__free_run(r);
            return NULL;
        }
    }
    r->x = x;
    r->job_id = job->job_id;
    r->cbs = *cbs;
    r->owner = owner;
    return r;
}

/* sbatch one of the run's Slurm jobs (kind: XS_ONE, XS_ASSEMBLE after r->aid, XS_TASK the array). */
static int xs__submit(xs_t *x, xs_run_t *r, int kind)
{
    char **argv = calloc((size_t)x->nextra + 48, sizeof *argv);
    char (*buf)[PATH_MAX + 32] = calloc(16, sizeof *buf);
    if (!argv || !buf) { free(argv); free(buf); return LRQ_ENOMEM; }
    int k = xs__sbatch_argv(x, argv, buf, r->res.cpus, r->res.mem_mb, r->res.time_min);
    int b = 6;
    const int task = kind == XS_TASK;
    snprintf(buf[b], sizeof buf[b], "--job-name=lrq-%lld%s", (long long)r->job_id, task ? "-tasks" : "");
    argv[k++] = buf[b++];
    snprintf(buf[b], sizeof buf[b], "--comment=lrq%s:%s", task ? "-tasks" : "", r->workdir);
    argv[k++] = buf[b++];
    snprintf(buf[b], sizeof buf[b], "--chdir=%s", r->workdir);
    argv[k++] = buf[b++];
    snprintf(buf[b], sizeof buf[b], "--output=%s/slurm-%s.out", r->workdir, task ? "%A_%a" : "%j");
    argv[k++] = buf[b++];
    snprintf(buf[b], sizeof buf[b], "--error=%s", r->log_path);
    argv[k++] = buf[b++];
    argv[k++] = "--open-mode=append";
    if (task) {
        snprintf(buf[b], sizeof buf[b], "--array=0-%d", r->ntask - 1);
        argv[k++] = buf[b++];
    }
    if (kind == XS_ASSEMBLE) {
        /* afterok: it runs only when every element completed; a failed element ends the attempt */
        snprintf(buf[b], sizeof buf[b], "--dependency=afterok:%lld", (long long)r->aid);
        argv[k++] = buf[b++];
    }
    snprintf(buf[b], sizeof buf[b], "%s/%s", r->workdir, task ? "slurm-task.sh" : "slurm.sh");
    argv[k++] = buf[b++];
    argv[k] = NULL;
    r->submitting = 1;
    xs__cmd(x, argv, task ? xs__array_done : xs__sbatch_done, r);
    free(argv);
    free(buf);
    return 0;
}

static int xs_start(void *self, const exec_job_t *job, const exec_cbs_t *cbs, void *owner, void **handle,
                    lrq_err_t *err)
{
    xs_t *x = self;
    const int array = x->array && job->tasks > 1;
    /* In an array each element is a worker of its own: the resources of one, for each. */
    slurm_res_in_t ri = {.threads = job->threads, .model_bytes = job->model_bytes, .tasks = array ? 1 : job->tasks,
                         .max_cpus = x->max_cpus, .mem_mb = x->mem_mb, .cache_mb = x->cache_mb,
                         .time_limit_min = x->time_limit_min, .job_timeout_s = x->job_timeout_s, .grace_s = x->grace_s};
    slurm_res_t res;
    slurm_resources(&ri, &res);
    char script[PATH_MAX];
    int rc = xs__script(x, job, &res, array ? XS_ASSEMBLE : XS_ONE, script, sizeof script, err);
    if (!rc && array) rc = xs__script(x, job, &res, XS_TASK, script, sizeof script, err);
    if (rc) return rc;
    xs_run_t *r = xs__run_new(x, job, array ? job->tasks : 0, cbs, owner);
    if (!r) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    r->res = res;
    r->next = x->runs;
    x->runs = r;
    log_info("job %lld: sbatch%s --cpus-per-task=%d --mem=%lldM --time=%lld%s%s (LRQ_CACHE_MEM_MB=%lld)%s",
             (long long)job->job_id, array ? " (block tasks: a job array)" : "", res.cpus, (long long)res.mem_mb,
             (long long)res.time_min, *x->partition ? " --partition=" : "", x->partition, (long long)res.cache_mb,
             array ? "; then the assemble job with --dependency=afterok" : "");
    if (xs__submit(x, r, array ? XS_TASK : XS_ONE)) {
        x->runs = r->next;
        xs__free_run(r);
        return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    }
    *handle = r;
    return 0;
}

static int xs_adopt(void *self, const exec_job_t *job, int64_t sid, const exec_cbs_t *cbs, void *owner, void **handle,
                    lrq_err_t *err)
{
    xs_t *x = self;
    int64_t aid = 0, asid = 0;
    /* An array run's assemble job: DIR/slurm-array.id names its array. */
    int array = job->tasks > 1 && !xs__array_file_read(job->workdir, &aid, &asid) && (!sid || asid == sid);
    xs_run_t *r = xs__run_new(x, job, array ? job->tasks : 0, cbs, owner);
    if (!r) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    r->next = x->runs;
    x->runs = r;
    *handle = r;
    if (array && asid) r->aid = aid;
    else if (array) r->orphan_aid = aid; /* the assemble job was never accepted, or is found below */
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
    const char *par = cfg->slurm_parallel ? cfg->slurm_parallel : "array";
    if (strcmp(par, "array") && strcmp(par, "allocation")) {
        xs_destroy(x);
        return lrq_errf(err, LRQ_ESPEC, "slurm_parallel: \"%s\" is neither array nor allocation", par);
    }
    x->array = !strcmp(par, "array");
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
