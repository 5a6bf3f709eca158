/* exec_local.c — the "local" executor: uv_spawn a worker process on this host.
 *
 * One child = three handles (process, stdout pipe, drain timer), refcounted;
 * the run is released and on_exit called when the last close callback runs
 * (docs/contributing.md, "Daemon": child handles). The stdout pipe is read through the bounded line splitter. */
#include "exec.h"
#include "lines.h"
#include "log.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct xl {
    uv_loop_t *loop;
    char *worker;
    size_t max_line;
} xl_t;

typedef struct xl_run {
    xl_t *x;
    uv_process_t proc;
    uv_pipe_t out;
    uv_timer_t drain;      /* after exit: stop waiting for EOF (a grandchild may hold stdout) */
    lines_t lines;
    exec_cbs_t cbs;
    void *owner;
    int refs;
    int exited, exit_status, term_signal;
    int overlong, out_closed;
    int64_t pid;
} xl_run_t;

static void xl__release(uv_handle_t *h)
{
    xl_run_t *r = h->data;
    if (--r->refs) return;
    lines_close(&r->lines);
    exec_cbs_t cbs = r->cbs;
    void *owner = r->owner;
    int st = r->exit_status, sig = r->term_signal;
    free(r);
    exec_exit_t x = {.status = st, .sig = sig, .cause = EXEC_EXITED, .detail = ""};
    cbs.on_exit(owner, &x);
}

static void xl__release_failed(uv_handle_t *h)
{
    xl_run_t *r = h->data;
    if (--r->refs) return;
    lines_close(&r->lines);
    free(r);
}

static int xl__line(void *ud, char *line, size_t len)
{
    xl_run_t *r = ud;
    if (!r->overlong) r->cbs.on_line(r->owner, line, len);
    return 0;
}

static void xl__close_out(xl_run_t *r)
{
    if (r->out_closed) return;
    r->out_closed = 1;
    if (!r->overlong) lines_finish(&r->lines, xl__line, r);
    uv_close((uv_handle_t *)&r->out, xl__release);
    uv_close((uv_handle_t *)&r->drain, xl__release);
}

static void xl__alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    xl_run_t *r = h->data;
    char *p;
    size_t n;
    lines_space(&r->lines, &p, &n);
    *buf = uv_buf_init(p, (unsigned)n);
}

static void xl__read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    xl_run_t *r = s->data;
    if (n > 0) {
        if (lines_commit(&r->lines, (size_t)n, xl__line, r) == LINES_EOVERLONG && !r->overlong) {
            r->overlong = 1;
            r->cbs.on_overlong(r->owner);
        }
    } else if (n < 0) {
        if (n != UV_EOF) log_warn("worker pid %lld: stdout: %s", (long long)r->pid, uv_strerror((int)n));
        uv_read_stop(s);
        xl__close_out(r);
    }
}

static void xl__drain_timeout(uv_timer_t *t) { xl__close_out(t->data); }

static void xl__on_exit(uv_process_t *p, int64_t status, int term_signal)
{
    xl_run_t *r = p->data;
    r->exited = 1;
    r->exit_status = term_signal ? -1 : (int)status;
    r->term_signal = term_signal;
    uv_close((uv_handle_t *)p, xl__release);
    if (!r->out_closed) uv_timer_start(&r->drain, xl__drain_timeout, 2000, 0);
}

static int xl_start(void *self, const exec_job_t *job, const exec_cbs_t *cbs, void *owner, void **handle,
                    lrq_err_t *err)
{
    xl_t *x = self;
    int rc = 0, logfd = -1;
    char **env = NULL, thr[2][48], jid[48];
    xl_run_t *r = calloc(1, sizeof *r);
    if (!r) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    if (lines_init(&r->lines, x->max_line)) { free(r); return lrq_errf(err, LRQ_ENOMEM, "out of memory"); }
    r->x = x;
    r->cbs = *cbs;
    r->owner = owner;
    logfd = open(job->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (logfd < 0) { rc = lrq_errf(err, -errno, "%s: %s", job->log_path, strerror(errno)); goto fail; }
    /* Environment: ours, plus the thread budget and the job id. */
    size_t ne = 0;
    while (environ[ne]) ne++;
    env = calloc(ne + 4, sizeof *env);
    if (!env) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); goto fail; }
    size_t k = 0;
    for (size_t i = 0; i < ne; i++) {
        if (job->threads > 0 && (!strncmp(environ[i], "OPENBLAS_NUM_THREADS=", 21) ||
                                 !strncmp(environ[i], "OMP_NUM_THREADS=", 16))) continue;
        env[k++] = environ[i];
    }
    if (job->threads > 0) {
        snprintf(thr[0], sizeof thr[0], "OPENBLAS_NUM_THREADS=%d", job->threads);
        snprintf(thr[1], sizeof thr[1], "OMP_NUM_THREADS=%d", job->threads);
        env[k++] = thr[0];
        env[k++] = thr[1];
    }
    snprintf(jid, sizeof jid, "LRQ_JOB_ID=%lld", (long long)job->job_id);
    env[k++] = jid;
    env[k] = NULL;

    char *args[] = {x->worker, "run", "--spec", (char *)job->spec_path, "--workdir", (char *)job->workdir, NULL};
    uv_stdio_container_t stdio[3];
    uv_pipe_init(x->loop, &r->out, 0);
    uv_timer_init(x->loop, &r->drain);
    r->out.data = r->drain.data = r->proc.data = r;
    r->refs = 2;   /* out + drain; the process handle is added on a successful spawn */
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;   /* writable from the child's side */
    stdio[1].data.stream = (uv_stream_t *)&r->out;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = logfd;
    uv_process_options_t po = {
        .exit_cb = xl__on_exit, .file = x->worker, .args = args, .env = env, .cwd = job->workdir,
        /* Own session: a terminal's ^C reaches lrqd only, which stops workers in order. */
        .flags = UV_PROCESS_DETACHED, .stdio_count = 3, .stdio = stdio,
    };
    int e = uv_spawn(x->loop, &r->proc, &po);
    close(logfd);
    logfd = -1;
    free(env);
    env = NULL;
    if (e) {
        rc = lrq_errf(err, LRQ_EIO, "spawn %s: %s", x->worker, uv_strerror(e));
        /* The failed process handle must still be closed (uv_spawn docs); free
         * r once all three closes ran, without calling on_exit. */
        r->refs = 3;
        uv_close((uv_handle_t *)&r->proc, xl__release_failed);
        uv_close((uv_handle_t *)&r->out, xl__release_failed);
        uv_close((uv_handle_t *)&r->drain, xl__release_failed);
        return rc;
    }
    r->refs = 3;
    r->pid = r->proc.pid;
    e = uv_read_start((uv_stream_t *)&r->out, xl__alloc, xl__read);
    if (e) {
        log_err("worker pid %lld: read stdout: %s; killing it", (long long)r->pid, uv_strerror(e));
        uv_process_kill(&r->proc, SIGKILL);
        xl__close_out(r);
    }
    *handle = r;
    return 0;
fail:
    if (logfd >= 0) close(logfd);
    free(env);
    lines_close(&r->lines);
    free(r);
    return rc;
}

static int xl_kill(void *self, void *handle, int sig)
{
    xl_run_t *r = handle;
    if (r->exited) return UV_ESRCH;
    int e = uv_process_kill(&r->proc, sig);
    /* Detached: also signal the worker's process group (its own helpers). */
    if (!e && r->pid > 0) kill(-(pid_t)r->pid, sig);
    return e;
}

static int64_t xl_pid(void *self, void *handle) { return ((xl_run_t *)handle)->pid; }

/* Is pid a worker for this work dir? (/proc/PID/cmdline holds "--workdir\0DIR"). */
static int xl__is_worker(int64_t pid, const char *workdir)
{
    char p[64], buf[8192];
    snprintf(p, sizeof p, "/proc/%lld/cmdline", (long long)pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    for (ssize_t i = 0; i < n;) {
        const char *a = buf + i;
        size_t l = strlen(a);
        if (!strcmp(a, "--workdir") && i + (ssize_t)l + 1 < n && !strcmp(a + l + 1, workdir)) return 1;
        i += l + 1;
    }
    return 0;
}

/* Any live worker for this work dir: lrqd may have died between spawning a worker and
 * recording its pid, so the recorded pid is a hint, not the truth. */
static int64_t xl__find_worker(const char *workdir)
{
    DIR *d = opendir("/proc");
    if (!d) return 0;
    struct dirent *e;
    int64_t found = 0;
    while (!found && (e = readdir(d))) {
        char *end;
        long long p = strtoll(e->d_name, &end, 10);
        if (*end || p <= 1 || p == (long long)getpid()) continue;
        if (xl__is_worker(p, workdir)) found = p;
    }
    closedir(d);
    return found;
}

static int xl_reap_orphan(void *self, int64_t job_id, int64_t pid, const char *workdir, int grace_ms)
{
    if (pid <= 0 || !xl__is_worker(pid, workdir)) pid = xl__find_worker(workdir);
    if (pid <= 0) return 0;
    log_warn("job %lld: worker pid %lld of an earlier lrqd still runs; stopping it", (long long)job_id,
             (long long)pid);
    kill((pid_t)pid, SIGTERM);
    for (int waited = 0; waited < grace_ms && xl__is_worker(pid, workdir); waited += 50) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (xl__is_worker(pid, workdir)) {
        kill((pid_t)pid, SIGKILL);
        for (int i = 0; i < 100 && xl__is_worker(pid, workdir); i++) {
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return 1;
}

static void xl_destroy(void *self)
{
    xl_t *x = self;
    free(x->worker);
    free(x);
}

static const exec_ops_t xl_ops = {
    .name = "local", .start = xl_start, .kill = xl_kill, .pid = xl_pid, .reap_orphan = xl_reap_orphan,
    .destroy = xl_destroy,
};

int exec_local_new(exec_t *out, uv_loop_t *loop, const char *worker_path, size_t max_line, lrq_err_t *err)
{
    xl_t *x = calloc(1, sizeof *x);
    if (!x || !(x->worker = strdup(worker_path))) { free(x); return lrq_errf(err, LRQ_ENOMEM, "out of memory"); }
    x->loop = loop;
    x->max_line = max_line;
    out->ops = &xl_ops;
    out->self = x;
    return 0;
}
