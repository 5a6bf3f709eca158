/* wk_tasks.c — a "pipeline": "parallel" job's blocks as separate worker tasks (docs/daemon.md,
 * "Block-parallel tasks"; docs/architecture.md).
 *
 * In the parallel pipeline every block learns from the FP model's input to it, so blocks do not
 * depend on each other's results. The job's worker (the coordinator) splits the L blocks into
 * spec.tasks contiguous ranges and runs each as a child `lrq-worker run --blocks A-B` (the same
 * binary, the same spec and work dir): the child computes the FP input of block A, reconstructs
 * A..B-1, writes their block files (wk_qstore) and checkpoints mid-block to ckpt/task-A-B.ckpt.
 * The coordinator relays the children's events (with "task" and "pid"), restarts a child that
 * died (it resumes from its checkpoint; a range whose block files all verify is never run
 * again), and on SIGTERM waits for the children's own checkpoints. When every range is done,
 * wk_recon_run assembles: it finds every block file valid and goes on to evaluation and export.
 *
 * The children are in the coordinator's process group (the daemon's kill of the group reaches
 * them) and die with it (PR_SET_PDEATHSIG, wk_main.c); a child holds ckpt/task-A-B.lock while
 * it runs, so a restarted copy never overlaps a dying one. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lrq_tasks.h"
#include "wk_job.h"
#include "wk_qstore.h"

extern char **environ;

#define TASK_MAX_STARTS 4       /* a range that dies this often fails the attempt (the daemon retries) */
#define TASK_LINE_MAX 65536

typedef struct task {
    int b0, b1;
    pid_t pid;                  /* 0: not running */
    int fd;                     /* read end of its stdout, -1 */
    int starts, done;
    char err[1200];             /* its last error event */
    int err_permanent;          /* it exited 65 */
    size_t len;
    char *buf;                  /* [TASK_LINE_MAX] partial line */
} task_t;

/* Every block of [b0, b1) has a file that verifies. */
static int tasks__range_done(wk_job_t *job, int b0, int b1)
{
    for (int b = b0; b < b1; b++) {
        lrq_err_t e = {0};
        if (wk_qstore_check(job, b, NULL, &e)) return 0;
    }
    return 1;
}

static int tasks__start(wk_job_t *job, task_t *t, int k, const char *self, lrq_err_t *err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC)) return lrq_errf(err, -errno, "pipe: %s", strerror(errno));
    char range[32];
    snprintf(range, sizeof range, "%d-%d", t->b0, t->b1);
    char *argv[] = {"lrq-worker", "run", "--blocks", range, "--spec", (char *)job->spec_path,
                    "--workdir", job->workdir, NULL};
    posix_spawn_file_actions_t fa;
    int e = posix_spawn_file_actions_init(&fa);
    if (!e) e = posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
    if (!e) e = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    pid_t pid = 0;
    if (!e) e = posix_spawn(&pid, self, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (e) {
        close(p[0]);
        return lrq_errf(err, -e, "starting task %d (%s --blocks %s): %s", k, self, range, strerror(e));
    }
    t->pid = pid;
    t->fd = p[0];
    t->len = 0;
    t->starts++;
    wk_log(&job->proto, "task %d: blocks %d..%d, pid %d (start %d)", k, t->b0, t->b1 - 1, (int)pid, t->starts);
    wk_emit(&job->proto, json_pack("{s:s, s:i, s:i, s:i, s:i, s:i}", "event", "task", "task", k, "block_first", t->b0,
                                   "block_end", t->b1, "pid", (int)pid, "start", t->starts));
    return 0;
}

/* One JSON line of task k: progress is summed over the tasks; block, checkpoint and resume
 * events are passed on with the task's number and pid; its error is kept for the report. */
static void tasks__line(wk_job_t *job, task_t *T, lrq_taskprog_t *tp, int k, const char *line, double f0, double f1)
{
    json_t *ev = json_loads(line, 0, NULL);
    const char *name = ev ? json_string_value(json_object_get(ev, "event")) : NULL;
    long sum, total;
    if (!name) {
        json_decref(ev);
        return;
    }
    if (!strcmp(name, "progress")) {
        if (lrq_taskprog_update(tp, k, ev, &sum, &total)) {
            json_t *x = json_pack("{s:O?, s:I, s:O?, s:O?, s:O?, s:i, s:i}", "block", json_object_get(ev, "block"),
                                  "blocks", (json_int_t)tp->L, "iteration", json_object_get(ev, "iteration"), "iterations",
                                  json_object_get(ev, "iterations"), "loss", json_object_get(ev, "loss"), "task", k,
                                  "tasks", tp->n);
            wk_progress(&job->proto, "reconstruct", sum, total, f0 + (f1 - f0) * (double)sum / (double)total, x, 0);
        }
    } else if (!strcmp(name, "block") || !strcmp(name, "checkpoint") || !strcmp(name, "resume")) {
        json_object_set_new(ev, "task", json_integer(k));
        json_object_set_new(ev, "pid", json_integer(T[k].pid));
        if (!strcmp(name, "resume")) json_object_set_new(ev, "event", json_string("task_resume")); /* not the job's */
        wk_emit(&job->proto, json_incref(ev));
    } else if (!strcmp(name, "error")) {
        const char *m = json_string_value(json_object_get(ev, "message"));
        snprintf(T[k].err, sizeof T[k].err, "%s", m ? m : "error");
    }
    json_decref(ev);
}

/* Read what task k wrote; returns 1 at end of file. */
static int tasks__read(wk_job_t *job, task_t *T, lrq_taskprog_t *tp, int k, double f0, double f1)
{
    task_t *t = &T[k];
    char chunk[8192];
    ssize_t r = read(t->fd, chunk, sizeof chunk);
    if (r < 0) return errno == EINTR || errno == EAGAIN ? 0 : 1;
    if (r == 0) return 1;
    for (ssize_t i = 0; i < r; i++) {
        if (chunk[i] != '\n') {
            if (t->len < TASK_LINE_MAX - 1) t->buf[t->len++] = chunk[i];
            else t->len = TASK_LINE_MAX; /* too long: dropped up to its newline */
            continue;
        }
        if (t->len < TASK_LINE_MAX) {
            t->buf[t->len] = 0;
            tasks__line(job, T, tp, k, t->buf, f0, f1);
        }
        t->len = 0;
    }
    return 0;
}

static void tasks__kill_all(task_t *T, int n, int sig)
{
    for (int i = 0; i < n; i++)
        if (T[i].pid > 0) kill(T[i].pid, sig);
}

int wk_tasks_run(wk_job_t *job, double f0, double f1, lrq_err_t *err)
{
    const int L = job->model->cfg.n_layers;
    const int n = lrq_task_count(job->spec.tasks, L);
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) return lrq_errf(err, -errno, "/proc/self/exe: %s", strerror(errno));
    self[sl] = 0;
    if (!job->spec_path) return lrq_errf(err, LRQ_EIO, "tasks: no spec file to hand to them");
    task_t *T = calloc((size_t)n, sizeof *T);
    lrq_taskprog_t tp;
    if (!T || lrq_taskprog_init(&tp, n)) {
        free(T);
        return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    }
    tp.L = L;
    tp.iters = job->spec.iterations;
    int rc = 0, stopping = 0, running = 0;
    for (int k = 0; k < n; k++) {
        lrq_task_range(k, n, L, &T[k].b0, &T[k].b1);
        T[k].fd = -1;
        if (!(T[k].buf = malloc(TASK_LINE_MAX))) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); goto out; }
    }
    wk_log(&job->proto, "parallel pipeline: %d blocks in %d tasks of %d thread%s each", L, n, job->spec.threads,
           job->spec.threads == 1 ? "" : "s");
    for (int k = 0; k < n && !rc; k++) {
        if (tasks__range_done(job, T[k].b0, T[k].b1)) { /* finished by an earlier attempt: never run twice */
            T[k].done = 1;
            lrq_taskprog_finish(&tp, k);
            wk_log(&job->proto, "task %d: blocks %d..%d already done", k, T[k].b0, T[k].b1 - 1);
            continue;
        }
        if (!(rc = tasks__start(job, &T[k], k, self, err))) running++;
    }
    if (rc) {
        stopping = 1;
        tasks__kill_all(T, n, SIGTERM);
    }
    while (running > 0) {
        if (*job->stop && !stopping) {
            stopping = 1;
            wk_log(&job->proto, "stopping: waiting for %d task%s to checkpoint", running, running == 1 ? "" : "s");
            tasks__kill_all(T, n, SIGTERM);
        }
        struct pollfd pf[256];
        int idx[256], m = 0;
        for (int k = 0; k < n && m < 256; k++)
            if (T[k].fd >= 0) {
                pf[m] = (struct pollfd){.fd = T[k].fd, .events = POLLIN};
                idx[m++] = k;
            }
        int pr = poll(pf, (nfds_t)m, 1000);
        if (pr < 0 && errno != EINTR) {
            if (!rc) rc = lrq_errf(err, -errno, "poll: %s", strerror(errno));
            stopping = 1;
            tasks__kill_all(T, n, SIGKILL);
        }
        for (int j = 0; pr > 0 && j < m; j++) {
            int k = idx[j];
            task_t *t = &T[k];
            if (!(pf[j].revents & (POLLIN | POLLHUP | POLLERR)) || !tasks__read(job, T, &tp, k, f0, f1)) continue;
            close(t->fd);
            t->fd = -1;
            int st = 0;
            while (waitpid(t->pid, &st, 0) < 0 && errno == EINTR) {}
            pid_t was = t->pid;
            t->pid = 0;
            running--;
            int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1, sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
            if (code == WK_EXIT_OK && tasks__range_done(job, t->b0, t->b1)) {
                t->done = 1;
                lrq_taskprog_finish(&tp, k);
                wk_log(&job->proto, "task %d (pid %d): blocks %d..%d done", k, (int)was, t->b0, t->b1 - 1);
                continue;
            }
            if (stopping) continue;
            if (code == WK_EXIT_FAIL) { /* bad input: every attempt would fail the same way */
                rc = lrq_errf(err, LRQ_EFORMAT, "task %d (blocks %d..%d): %s", k, t->b0, t->b1 - 1,
                              t->err[0] ? t->err : "failed (exit 65)");
            } else if (t->starts >= TASK_MAX_STARTS) {
                rc = lrq_errf(err, LRQ_EIO, "task %d (blocks %d..%d) ended %d times without finishing; last: %s", k,
                              t->b0, t->b1 - 1, t->starts, t->err[0] ? t->err : sig ? strsignal(sig) : "exit status");
            } else {
                wk_log(&job->proto, "task %d (pid %d) ended (%s %d) before its blocks were done; restarting it", k,
                       (int)was, sig ? "signal" : "exit status", sig ? sig : code);
                if (!(rc = tasks__start(job, t, k, self, err))) {
                    running++;
                    continue;
                }
            }
            stopping = 1;
            tasks__kill_all(T, n, SIGTERM);
        }
    }
    if (!rc && *job->stop) rc = lrq_errf(err, LRQ_ECANCEL, "stopped by signal; the tasks wrote their checkpoints");
out:
    for (int k = 0; k < n; k++) {
        if (T[k].fd >= 0) close(T[k].fd);
        free(T[k].buf);
    }
    free(T);
    lrq_taskprog_close(&tp);
    return rc;
}
