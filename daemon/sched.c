/* sched.c — the dispatcher: claim → spawn → follow progress → record the exit.
 *
 * Exit handling follows the worker contract (docs/worker-protocol.md,
 * docs/daemon.md; the rules themselves are policy_exit in policy.c):
 *   0  → succeeded; metrics.json and the worker's artifacts.json (sizes
 *        checked, digests trusted: manifest.h says why) registered in one
 *        transaction.
 *   65 → failed (no retry), message from the last "error" event.
 *   75 → requeued, attempt not counted (clean stop with a checkpoint).
 *   else / signal → requeued until max_attempts, then failed with the reason.
 * Progress is pushed to SSE subscribers at once and written to the db at
 * most once a second per job. */
#include "lrq_buf.h"
#include "lrq_clock.h"
#include "lrq_fs.h"
#include "estimate.h"
#include "manifest.h"
#include "lines.h"
#include "lrqd.h"
#include "log.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

char *sched_workdir(lrqd_t *d, int64_t job_id)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s/%lld", d->jobs_dir, (long long)job_id);
    return strdup(buf);
}

run_t *sched_find(lrqd_t *d, int64_t job_id)
{
    for (run_t *r = d->runs; r; r = r->next)
        if (r->job_id == job_id) return r;
    return NULL;
}

static void sched__publish_state(lrqd_t *d, int64_t id)
{
    if (d->ev.state) d->ev.state(d, id);
}

static void sched__write_progress(run_t *r)
{
    if (!r->dirty || !r->progress) return;
    char *s = json_dumps(r->progress, JSON_COMPACT);
    lrq_err_t err;
    if (s && db_job_set_progress(r->d->db, r->job_id, s, &err)) log_err("job %lld: %s", (long long)r->job_id, err.msg);
    free(s);
    r->dirty = 0;
    r->t_last_write = lrq_mono_ms();
}

static void sched__remove(lrqd_t *d, run_t *r)
{
    for (run_t **p = &d->runs; *p; p = &(*p)->next)
        if (*p == r) { *p = r->next; break; }
    d->nruns--;
    json_decref(r->progress);
    json_decref(r->estimate);
    free(r->last_error);
    free(r->workdir);
    free(r);
}

/* ---- worker output ------------------------------------------------------ */

static void on_line(void *owner, char *line, size_t len)
{
    run_t *r = owner;
    lrqd_t *d = r->d;
    r->t_last_line = lrq_mono_ms();
    wev_t ev;
    wev_parse(line, len, &ev);
    switch (ev.kind) {
    case WEV_GARBAGE:
        if (r->garbage++ < 5) log_warn("job %lld: ignoring non-protocol stdout line: %.120s", (long long)r->job_id, line);
        break;
    case WEV_PROGRESS:
        json_decref(r->progress);
        r->progress = ev.progress; /* takes the reference */
        ev.progress = NULL;
        r->dirty = 1;
        if (d->ev.progress) d->ev.progress(d, r->job_id, r->progress);
        if (r->t_last_line - r->t_last_write >= 1000) sched__write_progress(r);
        break;
    case WEV_ERROR:
        if (ev.error[0]) {
            free(r->last_error);
            r->last_error = strdup(ev.error);
        }
        break;
    case WEV_START:
        log_info("job %lld: worker started", (long long)r->job_id);
        break;
    case WEV_RESUME:
        log_info("job %lld: worker resumed from its checkpoint at block %lld, iteration %lld", (long long)r->job_id,
                 (long long)json_integer_value(json_object_get(ev.obj, "block")),
                 (long long)json_integer_value(json_object_get(ev.obj, "iteration")));
        break;
    case WEV_OTHER:
        log_debug("job %lld: event %s", (long long)r->job_id, ev.name);
        if (d->ev.worker_event) d->ev.worker_event(d, r->job_id, ev.name, ev.obj);
        break;
    }
    wev_clear(&ev);
}

static void on_overlong(void *owner)
{
    run_t *r = owner;
    log_warn("job %lld: worker printed a line longer than %lld bytes; killing it", (long long)r->job_id,
             (long long)r->d->cfg.max_line);
    r->stop = STOP_OVERLONG;
    if (r->h) r->d->exec.ops->kill(r->d->exec.self, r->h, SIGKILL);
}

/* ---- success: register metrics and artifacts ---------------------------- */

/* The worker's own listing (manifest.c: it owns the digests), checked and
 * stored with the state change in one transaction. 0, or the reason to fail. */
static int sched__register(lrqd_t *d, run_t *r, int64_t now, int64_t run_ms, char *why, size_t whyn)
{
    char *metrics = NULL;
    db_artifact_t *arts = NULL;
    size_t n = 0;
    lrq_err_t err;
    int rc = manifest_load(r->workdir, &metrics, &arts, &n, &err);
    if (!rc && r->estimate && metrics) {
        /* lrqd's disk estimate beside what the worker measured (docs/api.md, metrics) */
        json_t *mj = json_loads(metrics, 0, NULL);
        char *s = NULL;
        if (json_is_object(mj) && !json_object_set(mj, "disk_estimate", r->estimate) &&
            (s = json_dumps(mj, JSON_COMPACT))) {
            free(metrics);
            metrics = s;
        }
        json_decref(mj);
    }
    if (rc) snprintf(why, whyn, "%s", err.msg);
    else if ((rc = db_job_succeed(d->db, r->job_id, now, run_ms, metrics, arts, n, &err))) {
        log_err("job %lld: recording success: %s", (long long)r->job_id, err.msg);
        snprintf(why, whyn, "could not record the result");
    } else {
        log_info("job %lld: succeeded (%zu artifacts, %.1f s)", (long long)r->job_id, n, run_ms / 1000.0);
    }
    db_artifacts_free(arts, n);
    free(metrics);
    return rc;
}

/* ---- exit ---------------------------------------------------------------- */

static void on_exit_cb(void *owner, const exec_exit_t *x)
{
    run_t *r = owner;
    lrqd_t *d = r->d;
    lrq_err_t err;
    int status = x->status, sig = x->sig;
    r->h = NULL;
    r->kill_at = 0;
    sched__write_progress(r);
    int64_t now = (int64_t)lrq_wall_ms(), run_ms = (int64_t)(lrq_mono_ms() - r->t_start), id = r->job_id;
    if (x->cause == EXEC_DETACHED) {
        /* lrqd stops; the attempt runs on and the next lrqd adopts it: the row stays running. */
        log_notice("job %lld: left running in Slurm (job %lld); the next lrqd adopts it", (long long)id,
                   (long long)r->ext_id);
        sched__remove(d, r);
        if (d->ev.run_ended) d->ev.run_ended(d);
        return;
    }
    if (r->ext_id) {
        if (sig) log_info("job %lld: Slurm job %lld ended, worker killed by signal %d%s%s", (long long)id,
                          (long long)r->ext_id, sig, *x->detail ? ": " : "", x->detail);
        else log_info("job %lld: Slurm job %lld ended, worker exit code %d%s%s", (long long)id, (long long)r->ext_id,
                      status, *x->detail ? ": " : "", x->detail);
    } else if (sig) log_info("job %lld: worker pid %lld killed by signal %d", (long long)id, (long long)r->pid, sig);
    else log_info("job %lld: worker pid %lld exited with code %d", (long long)id, (long long)r->pid, status);

    db_job_t j;
    policy_exit_in_t in = {.status = status, .sig = sig, .stop = r->stop, .last_error = r->last_error,
                           .job_timeout_s = d->cfg.job_timeout_s, .progress_timeout_s = d->cfg.progress_timeout_s,
                           .max_line = d->cfg.max_line, .cause = x->cause, .detail = x->detail,
                           .ext_id = r->ext_id};
    if (!db_job_get(d->db, id, &j, &err)) { in.cancel_requested = j.cancel_requested; db_job_clear(&j); }
    policy_exit_out_t out;
    policy_exit(&in, &out);

    int rc = 0;
    if (out.action == EXIT_REGISTER) {
        if (!sched__register(d, r, now, run_ms, out.why, sizeof out.why)) {
            if (d->ev.attempt_done) d->ev.attempt_done(d, run_ms);
        } else {
            log_err("job %lld: failed after a clean exit: %s", (long long)id, out.why);
            out.action = EXIT_FINISH;   /* a result that cannot be registered is a failure, logs and files kept */
            out.final_state = DB_FAILED;
        }
    }
    if (out.action == EXIT_FINISH) {
        rc = db_job_finish(d->db, id, out.final_state, out.why, now, run_ms, &err);
        if (!rc) {
            log_info("job %lld: %s: %s", (long long)id, db_state_name[out.final_state], out.why);
            if (d->ev.attempt_done) d->ev.attempt_done(d, run_ms);
        }
    } else if (out.action == EXIT_REQUEUE) {
        rc = db_job_requeue(d->db, id, out.counted, out.counted ? out.why : NULL, now, run_ms, &err);
        if (rc == DB_FAILED) {
            log_info("job %lld: failed after its last attempt: %s", (long long)id, out.why);
            if (d->ev.attempt_done) d->ev.attempt_done(d, run_ms);
        } else if (rc == DB_QUEUED) {
            log_info("job %lld: requeued (%s)", (long long)id, out.why);
        }
        rc = rc < 0 ? rc : 0;
    }
    if (rc) log_err("job %lld: recording the exit: %s", (long long)id, err.msg);
    sched__remove(d, r);
    sched__publish_state(d, id);
    sched_kick(d);
    if (d->ev.run_ended) d->ev.run_ended(d);
}

/* ---- executors with a queue of their own (slurm) ------------------------ */

static void on_submitted(void *owner, int64_t ext_id)
{
    run_t *r = owner;
    lrq_err_t err;
    r->ext_id = ext_id;
    if (db_job_set_slurm_id(r->d->db, r->job_id, ext_id, &err)) log_err("job %lld: %s", (long long)r->job_id, err.msg);
    log_info("job %lld: Slurm job %lld", (long long)r->job_id, (long long)ext_id);
}

static void on_running(void *owner)
{
    run_t *r = owner;
    /* The timeouts count from here: a job waiting in Slurm's queue is not stalled. */
    r->queued_remote = 0;
    r->t_start = r->t_last_line = lrq_mono_ms();
    log_info("job %lld: Slurm job %lld is running", (long long)r->job_id, (long long)r->ext_id);
}

static const exec_cbs_t sched__cbs = {.on_line = on_line, .on_overlong = on_overlong, .on_exit = on_exit_cb,
                                      .on_submitted = on_submitted, .on_running = on_running};

/* ---- dispatch ------------------------------------------------------------ */

static uint64_t sched__model_bytes(json_t *spec);

/* estimate: estimate_json of the job (stolen; may be NULL). */
static int sched__start(lrqd_t *d, db_job_t *job, json_t *estimate, lrq_err_t *err)
{
    const exec_cbs_t cbs = sched__cbs;
    run_t *r = calloc(1, sizeof *r);
    if (!r || !(r->workdir = sched_workdir(d, job->id))) {
        free(r);
        json_decref(estimate);
        return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    }
    r->estimate = estimate;
    r->d = d;
    r->job_id = job->id;
    char spec_path[PATH_MAX], log_path[PATH_MAX];
    snprintf(spec_path, sizeof spec_path, "%s/spec.json", r->workdir);
    snprintf(log_path, sizeof log_path, "%s/log", r->workdir);
    int rc = 0, threads = 0;
    json_t *spec = json_loads(job->spec, 0, NULL);
    char *text = NULL;
    if (!spec) { rc = lrq_errf(err, LRQ_EFORMAT, "stored spec is not JSON"); goto fail; }
    threads = (int)json_integer_value(json_object_get(spec, "threads"));
    if (threads <= 0 && d->cfg.threads > 0) {
        threads = (int)d->cfg.threads;
        json_object_set_new(spec, "threads", json_integer(threads));
    }
    if (mkdir(r->workdir, 0750) && errno != EEXIST) {
        rc = lrq_errf(err, -errno, "%s: %s", r->workdir, strerror(errno));
        goto fail;
    }
    text = json_dumps(spec, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!text) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); goto fail; }
    size_t tl = strlen(text);
    text[tl] = '\n';   /* json_dumps leaves room only for NUL: rewrite */
    int e = lrq_write_atomic(spec_path, text, tl + 1, err);
    text[tl] = 0;
    if (!e) {
        char line[512];
        int n = snprintf(line, sizeof line, "lrqd: attempt %d/%d starting\n", job->attempts, job->max_attempts);
        json_t *ex = json_object_get(estimate, "exports"), *v;
        const char *k;
        if (estimate && n < (int)sizeof line) {
            n += snprintf(line + n, sizeof line - n, "lrqd: disk estimate %lld MB: caches %lld, checkpoints %lld",
                          (long long)(json_integer_value(json_object_get(estimate, "total_bytes")) >> 20),
                          (long long)(json_integer_value(json_object_get(estimate, "caches_bytes")) >> 20),
                          (long long)(json_integer_value(json_object_get(estimate, "checkpoints_bytes")) >> 20));
            json_object_foreach(ex, k, v) if (n < (int)sizeof line)
                n += snprintf(line + n, sizeof line - n, ", %s %lld", k, (long long)(json_integer_value(v) >> 20));
            if (n < (int)sizeof line) n += snprintf(line + n, sizeof line - n, " (MB)\n");
            if (n >= (int)sizeof line) { n = (int)sizeof line - 1; line[n - 1] = '\n'; }
        }
        int lfd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (lfd >= 0) { if (write(lfd, line, n) < 0) { /* the log line is best effort */ } close(lfd); }
    }
    if (e) { rc = e; goto fail; }
    exec_job_t ej = {.job_id = job->id, .workdir = r->workdir, .spec_path = spec_path, .log_path = log_path,
                     .threads = threads, .model_bytes = sched__model_bytes(spec),
                     .tasks = (int)json_integer_value(json_object_get(spec, "tasks"))};
    if (d->exec.ops->adopt) {
        /* A new attempt: the previous one's Slurm id must not be adopted after a crash. */
        lrq_err_t e1;
        if (db_job_set_slurm_id(d->db, job->id, 0, &e1)) log_err("job %lld: %s", (long long)job->id, e1.msg);
        r->queued_remote = 1;
    }
    if ((rc = d->exec.ops->start(d->exec.self, &ej, &cbs, r, &r->h, err))) goto fail;
    r->pid = d->exec.ops->pid(d->exec.self, r->h);
    r->t_start = r->t_last_line = lrq_mono_ms();
    r->next = d->runs;
    d->runs = r;
    d->nruns++;
    lrq_err_t e2;
    if (db_job_set_pid(d->db, job->id, r->pid, &e2)) log_err("job %lld: %s", (long long)job->id, e2.msg);
    if (d->exec.ops->adopt) log_info("job %lld: submitting to Slurm (attempt %d/%d)", (long long)job->id,
                                     job->attempts, job->max_attempts);
    else log_info("job %lld: started worker pid %lld (attempt %d/%d)", (long long)job->id, (long long)r->pid,
                  job->attempts, job->max_attempts);
    json_decref(spec);
    free(text);
    return 0;
fail:
    json_decref(spec);
    free(text);
    json_decref(r->estimate);
    free(r->workdir);
    free(r);
    return rc;
}

/* Disk a job will need before it finishes, estimated from the model's size on disk S:
 * checkpoints (integer codes, 1 byte per weight, plus one block's optimizer state) ≤ S,
 * the hf export ≈ S (source dtype), the gptq export ≈ S/2. Directories: their regular files. */
static uint64_t sched__model_bytes(json_t *spec)
{
    const char *model = json_string_value(json_object_get(spec, "model"));
    uint64_t bytes = 0;
    struct stat st;
    if (model && !stat(model, &st)) {
        if (S_ISREG(st.st_mode)) bytes = (uint64_t)st.st_size;
        else if (S_ISDIR(st.st_mode)) {
            DIR *dir = opendir(model);
            struct dirent *e;
            while (dir && (e = readdir(dir))) {
                char p[PATH_MAX];
                snprintf(p, sizeof p, "%s/%s", model, e->d_name);
                if (!stat(p, &st) && S_ISREG(st.st_mode)) bytes += (uint64_t)st.st_size;
            }
            if (dir) closedir(dir);
        }
    }
    return bytes;
}

/* Without a shape (an unreadable config: the worker will say why and fail the job), the
 * old rule of thumb: checkpoints ≤ S, hf ≈ S, gptq ≈ S/2. */
static uint64_t sched__space_rough(json_t *spec)
{
    uint64_t bytes = sched__model_bytes(spec);
    int hf = 1, gptq = 0;
    json_t *ex = json_object_get(spec, "export"), *it;
    size_t i;
    if (json_is_array(ex)) {
        hf = 0;
        json_array_foreach(ex, i, it) {
            if (json_is_string(it) && !strcmp(json_string_value(it), "hf")) hf = 1;
            if (json_is_string(it) && !strcmp(json_string_value(it), "gptq")) gptq = 1;
        }
    }
    return bytes + (hf ? bytes : 0) + (gptq ? bytes / 2 : 0);
}

/* The job's disk estimate (daemon/estimate.h): bytes needed, *out its estimate_json (or NULL
 * when the shape could not be read). Caches go to disk beyond the limit the worker will apply:
 * slurm_cache_mb under Slurm, else lrqd's own LRQ_CACHE_MEM_MB (inherited) or a quarter of RAM. */
static uint64_t sched__space_needed(lrqd_t *d, int64_t id, const char *spec_text, json_t **out)
{
    *out = NULL;
    json_t *spec = json_loads(spec_text, 0, NULL);
    if (!spec) return 0;
    lrq_spec_t s;
    lrq_err_t err;
    estimate_shape_t sh;
    uint64_t need;
    if (lrq_spec_parse(spec, &s, &err)) {
        need = sched__space_rough(spec);
    } else {
        if (estimate_shape_load(s.model, &sh, &err)) {
            log_warn("job %lld: disk estimate: %s; using 2.5 × the model's size", (long long)id, err.msg);
            need = sched__space_rough(spec);
        } else {
            long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
            uint64_t phys = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
            uint64_t limit = d->exec.ops->adopt ? (uint64_t)d->cfg.slurm_cache_mb << 20
                                                : estimate_cache_limit(getenv("LRQ_CACHE_MEM_MB"), phys);
            estimate_t e;
            estimate_job(&s, &sh, limit, &e);
            need = e.total;
            *out = estimate_json(&e);
        }
        lrq_spec_close(&s);
    }
    json_decref(spec);
    return need;
}

static void sched__dispatch(uv_timer_t *t)
{
    lrqd_t *d = t->data;
    if (d->exec.ops->ready && !d->exec.ops->ready(d->exec.self)) return;   /* e.g. the Slurm probe runs */
    while (!d->stopping && d->nruns < d->cfg.workers) {
        struct statvfs vs;
        if (d->cfg.min_free_mb > 0 && !statvfs(d->cfg.state_dir, &vs) &&
            (uint64_t)vs.f_bavail * vs.f_frsize < (uint64_t)d->cfg.min_free_mb << 20) {
            uint64_t now = lrq_mono_ms();
            if (!d->low_disk_logged || now - d->low_disk_logged > 60000) {
                log_warn("holding queued jobs: %s has %llu MB free, min_free_mb = %lld", d->cfg.state_dir,
                         (unsigned long long)(((uint64_t)vs.f_bavail * vs.f_frsize) >> 20),
                         (long long)d->cfg.min_free_mb);
                d->low_disk_logged = now;
            }
            return;
        }
        db_job_t job;
        lrq_err_t err;
        int rc = db_job_claim(d->db, (int64_t)lrq_wall_ms(), &job, &err);
        if (rc < 0) { log_err("claim: %s", err.msg); return; }
        if (rc == 0) return;
        json_t *est = NULL;
        uint64_t need = sched__space_needed(d, job.id, job.spec, &est) + ((uint64_t)d->cfg.min_free_mb << 20);
        if (!statvfs(d->cfg.state_dir, &vs) && (uint64_t)vs.f_bavail * vs.f_frsize < need) {
            /* Hold: back to the queue, attempt not counted, the reason visible on the job. */
            char why[300];
            snprintf(why, sizeof why, "waiting for disk space: needs about %llu MB for checkpoints and artifacts, "
                     "%s has %llu MB free", (unsigned long long)(need >> 20), d->cfg.state_dir,
                     (unsigned long long)(((uint64_t)vs.f_bavail * vs.f_frsize) >> 20));
            uint64_t now = lrq_mono_ms();
            if (!d->low_disk_logged || now - d->low_disk_logged > 60000) {
                log_warn("job %lld: %s", (long long)job.id, why);
                d->low_disk_logged = now;
            }
            if (db_job_requeue(d->db, job.id, 0, why, (int64_t)lrq_wall_ms(), 0, &err) < 0)
                log_err("job %lld: %s", (long long)job.id, err.msg);
            json_decref(est);
            db_job_clear(&job);
            return;
        }
        if (sched__start(d, &job, est, &err)) {
            log_err("job %lld: cannot start the worker: %s", (long long)job.id, err.msg);
            char why[1100];
            snprintf(why, sizeof why, "cannot start the worker: %s", err.msg);
            int64_t id = job.id;   /* db_job_clear zeroes it: publish to the job, not to job 0 */
            int st = db_job_requeue(d->db, id, 1, why, (int64_t)lrq_wall_ms(), 0, &err);
            if (st < 0) log_err("job %lld: %s", (long long)id, err.msg);
            else if (st == DB_FAILED) log_info("job %lld: failed after its last attempt: %s", (long long)id, why);
            db_job_clear(&job);
            sched__publish_state(d, id);
            return;   /* retry on the next tick, not in a tight loop */
        }
        int64_t id = job.id;
        db_job_clear(&job);
        sched__publish_state(d, id);
    }
}

void sched_kick(lrqd_t *d)
{
    if (!d->stopping) uv_timer_start(&d->kick, sched__dispatch, 0, 0);
}

static void sched__term(lrqd_t *d, run_t *r, int why)
{
    if (!r->h) return;
    if (!r->stop || why == STOP_CANCEL) r->stop = why;
    d->exec.ops->kill(d->exec.self, r->h, d->cfg.grace_s ? SIGTERM : SIGKILL);
    if (!r->kill_at) r->kill_at = lrq_mono_ms() + (uint64_t)d->cfg.grace_s * 1000;
}

void sched_cancel(lrqd_t *d, int64_t job_id)
{
    run_t *r = sched_find(d, job_id);
    if (r) sched__term(d, r, STOP_CANCEL);
}

void sched_shutdown(lrqd_t *d)
{
    /* Slurm jobs outlive lrqd: leave them running, the next lrqd adopts them. */
    for (run_t *r = d->runs, *next; r; r = next) {
        next = r->next;   /* detach may end the run (and free it) at once */
        if (d->exec.ops->detach && r->h) d->exec.ops->detach(d->exec.self, r->h);
        else sched__term(d, r, STOP_SHUTDOWN);
    }
}

void sched_kill_all(lrqd_t *d)
{
    for (run_t *r = d->runs; r; r = r->next)
        if (r->h) d->exec.ops->kill(d->exec.self, r->h, SIGKILL);
}

void sched_tick(lrqd_t *d, uint64_t now)
{
    for (run_t *r = d->runs; r; r = r->next) {
        if (r->queued_remote) r->t_start = r->t_last_line = now;   /* waiting in Slurm's queue */
        policy_run_in_t in = {.now = now, .t_start = r->t_start, .t_last_line = r->t_last_line,
                              .t_last_write = r->t_last_write, .kill_at = r->kill_at, .dirty = r->dirty,
                              .alive = r->h != NULL, .stop = r->stop, .job_timeout_s = d->cfg.job_timeout_s,
                              .progress_timeout_s = d->cfg.progress_timeout_s};
        int m = policy_run_tick(&in);
        if (m & RUN_WRITE_PROGRESS) sched__write_progress(r);
        if (m & RUN_KILL) {
            log_warn("job %lld: worker pid %lld did not stop within %lld s; SIGKILL", (long long)r->job_id,
                     (long long)r->pid, (long long)d->cfg.grace_s);
            d->exec.ops->kill(d->exec.self, r->h, SIGKILL);
            r->kill_at = 0;
        } else if (m & RUN_STOP_TIMEOUT) {
            log_warn("job %lld: exceeded job_timeout_s; stopping it", (long long)r->job_id);
            sched__term(d, r, STOP_TIMEOUT);
        } else if (m & RUN_STOP_STALLED) {
            log_warn("job %lld: no output for %lld s; stopping it", (long long)r->job_id,
                     (long long)d->cfg.progress_timeout_s);
            sched__term(d, r, STOP_STALLED);
        }
    }
}

void sched_init(lrqd_t *d, const sched_events_t *ev)
{
    d->ev = *ev;
    uv_timer_init(d->loop, &d->kick);
    d->kick.data = d;
}

/* Slurm: follow the running jobs' Slurm jobs again instead of requeueing them. */
static int sched__adopt(lrqd_t *d, db_job_t *job, lrq_err_t *err)
{
    run_t *r = calloc(1, sizeof *r);
    if (!r || !(r->workdir = sched_workdir(d, job->id))) { free(r); return lrq_errf(err, LRQ_ENOMEM, "out of memory"); }
    r->d = d;
    r->job_id = job->id;
    char spec_path[PATH_MAX], log_path[PATH_MAX];
    snprintf(spec_path, sizeof spec_path, "%s/spec.json", r->workdir);
    snprintf(log_path, sizeof log_path, "%s/log", r->workdir);
    int64_t sid = 0;
    int rc = db_job_slurm_id(d->db, job->id, &sid, err);
    json_t *spec = rc ? NULL : json_loads(job->spec, 0, NULL);
    exec_job_t ej = {.job_id = job->id, .workdir = r->workdir, .spec_path = spec_path, .log_path = log_path,
                     .model_bytes = spec ? sched__model_bytes(spec) : 0,
                     .tasks = spec ? (int)json_integer_value(json_object_get(spec, "tasks")) : 0};
    json_decref(spec);
    const exec_cbs_t cbs = sched__cbs;
    r->ext_id = sid;
    r->queued_remote = 1;
    if (!rc) rc = d->exec.ops->adopt(d->exec.self, &ej, sid, &cbs, r, &r->h, err);
    if (rc) { free(r->workdir); free(r); return rc; }
    r->t_start = r->t_last_line = lrq_mono_ms();
    r->next = d->runs;
    d->runs = r;
    d->nruns++;
    if (job->cancel_requested) sched__term(d, r, STOP_CANCEL);
    if (sid) log_notice("job %lld: was running when lrqd stopped; following its Slurm job %lld again",
                        (long long)job->id, (long long)sid);
    else log_notice("job %lld: was being submitted when lrqd stopped; looking for its Slurm job", (long long)job->id);
    return 0;
}

int sched_recover(lrqd_t *d, lrq_err_t *err)
{
    db_job_t *jobs;
    size_t n;
    int rc = db_job_list(d->db, DB_RUNNING, 0, 100000, &jobs, &n, err);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        if (d->exec.ops->adopt) {
            if ((rc = sched__adopt(d, &jobs[i], err))) { db_jobs_free(jobs, n); return rc; }
            continue;
        }
        char *wd = sched_workdir(d, jobs[i].id);
        if (wd && d->exec.ops->reap_orphan)
            d->exec.ops->reap_orphan(d->exec.self, jobs[i].id, jobs[i].worker_pid, wd, (int)d->cfg.grace_s * 1000);
        free(wd);
        int st = db_job_requeue(d->db, jobs[i].id, 0, NULL, (int64_t)lrq_wall_ms(), 0, err);
        if (st < 0) { db_jobs_free(jobs, n); return st; }
        log_notice("job %lld: was running when lrqd stopped; requeued to resume from its checkpoint",
                   (long long)jobs[i].id);
    }
    db_jobs_free(jobs, n);
    return 0;
}
