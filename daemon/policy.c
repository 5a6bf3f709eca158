/* policy.c — see policy.h. */
#include "policy.h"
#include "db.h"
#include "slurm.h"
#include <stdio.h>

void policy_exit(const policy_exit_in_t *in, policy_exit_out_t *o)
{
    o->action = EXIT_REQUEUE;
    o->final_state = -1;
    o->counted = 1;
    o->why[0] = 0;
    const char *le = in->last_error, *dt = in->detail && *in->detail ? in->detail : NULL;
    long long sid = (long long)in->ext_id;
    /* Only a worker that ran to its end registers: a Slurm job cancelled while pending
     * also has a zero status. */
    if (in->cause == EXEC_EXITED && !in->sig && in->status == WORKER_EXIT_OK) {
        o->action = EXIT_REGISTER;
    } else if (in->cancel_requested || in->stop == STOP_CANCEL) {
        o->action = EXIT_FINISH;
        o->final_state = DB_CANCELLED;
        snprintf(o->why, sizeof o->why, "cancelled by request");
    } else if (in->cause == EXEC_CANCELLED && in->stop == STOP_NONE) {
        /* An operator's scancel is a cancellation, not a failure to retry. */
        o->action = EXIT_FINISH;
        o->final_state = DB_CANCELLED;
        snprintf(o->why, sizeof o->why, "cancelled in Slurm (job %lld, scancel outside lrqd)", sid);
    } else if (in->cause == EXEC_UNAVAILABLE) {
        o->counted = 0;   /* the controller is down, not the job: try again when it answers */
        snprintf(o->why, sizeof o->why, "Slurm unavailable: %.1300s; will retry", dt ? dt : "no message");
    } else if (in->cause == EXEC_SUBMIT_FAILED) {
        snprintf(o->why, sizeof o->why, "sbatch failed: %.1300s", dt ? dt : "no message");
    } else if (in->cause == EXEC_PREEMPTED && in->stop != STOP_TIMEOUT) {
        o->counted = 0;   /* like a clean stop: not the job's fault, resumes from its checkpoint */
        snprintf(o->why, sizeof o->why, "preempted in Slurm (job %lld); will resume", sid);
    } else if (in->cause == EXEC_TIMELIMIT && in->stop != STOP_SHUTDOWN) {
        o->action = EXIT_FINISH;
        o->final_state = DB_FAILED;
        snprintf(o->why, sizeof o->why, "exceeded the Slurm time limit (job %lld)", sid);
    } else if (in->cause == EXEC_NODE_FAIL) {
        snprintf(o->why, sizeof o->why, "Slurm node failure (job %lld%s%.200s)", sid, dt ? ", " : "", dt ? dt : "");
    } else if (in->cause == EXEC_OOM) {
        snprintf(o->why, sizeof o->why, "out of memory in Slurm (job %lld%s%.200s)", sid, dt ? ", " : "", dt ? dt : "");
    } else if (in->cause == EXEC_LOST) {
        snprintf(o->why, sizeof o->why, "Slurm job %lld is no longer known to Slurm%s%.200s", sid, dt ? ": " : "",
                 dt ? dt : "");
    } else if (!in->sig && in->status == WORKER_EXIT_FAIL) {
        o->action = EXIT_FINISH;
        o->final_state = DB_FAILED;
        snprintf(o->why, sizeof o->why, "%s", le ? le : "worker reported a permanent failure (exit 65)");
    } else if (in->stop == STOP_TIMEOUT) {
        o->action = EXIT_FINISH;
        o->final_state = DB_FAILED;
        snprintf(o->why, sizeof o->why, "exceeded job_timeout_s = %lld s", (long long)in->job_timeout_s);
    } else if (in->stop == STOP_SHUTDOWN || (!in->sig && in->status == WORKER_EXIT_STOPPED && in->stop == STOP_NONE)) {
        o->counted = 0;   /* a clean stop with a checkpoint is not a failed attempt */
        snprintf(o->why, sizeof o->why, "stopped with a checkpoint; will resume");
    } else if (in->stop == STOP_STALLED) {
        snprintf(o->why, sizeof o->why, "no output from the worker for %lld s; killed", (long long)in->progress_timeout_s);
    } else if (in->stop == STOP_OVERLONG) {
        snprintf(o->why, sizeof o->why, "worker printed a line longer than %lld bytes; killed", (long long)in->max_line);
    } else if (in->sig) {
        snprintf(o->why, sizeof o->why, "worker killed by signal %d", in->sig);
    } else if (le) {
        /* The worker's own error event says why (e.g. "No space left on device"); keep it. */
        snprintf(o->why, sizeof o->why, "worker exited with code %d: %.900s", in->status, le);
    } else {
        snprintf(o->why, sizeof o->why, "worker exited with code %d", in->status);
    }
}

int policy_run_tick(const policy_run_in_t *in)
{
    int m = 0;
    if (in->dirty && in->now - in->t_last_write >= 1000) m |= RUN_WRITE_PROGRESS;
    if (!in->alive) return m;
    if (in->kill_at && in->now >= in->kill_at) return m | RUN_KILL;
    if (in->stop) return m;   /* already stopping: wait for the exit or the KILL deadline */
    if (in->job_timeout_s && in->now - in->t_start > (uint64_t)in->job_timeout_s * 1000) m |= RUN_STOP_TIMEOUT;
    else if (in->progress_timeout_s && in->now - in->t_last_line > (uint64_t)in->progress_timeout_s * 1000)
        m |= RUN_STOP_STALLED;
    return m;
}

int policy_exit_now(int stopping, int nruns, uint64_t now, uint64_t stop_deadline)
{
    if (!stopping) return 0;
    if (nruns == 0) return CRON_EXIT;
    return now > stop_deadline ? CRON_EXIT_LATE : 0;
}

int policy_cron(const policy_cron_in_t *in)
{
    int m = 0;
    if (in->now - in->last_ping >= in->ping_ms) m |= CRON_PING;
    if (in->watchdog_usec && (in->now - in->last_watchdog) * 2000 >= in->watchdog_usec) m |= CRON_WATCHDOG;
    if (in->stopping) m |= policy_exit_now(in->stopping, in->nruns, in->now, in->stop_deadline);
    else if (in->nruns < in->workers) m |= CRON_DISPATCH;
    return m;
}
