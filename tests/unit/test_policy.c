/* test_policy.c — daemon/policy.c: the worker exit → job outcome table
 * (docs/worker-protocol.md, "Exit status"), the per-run tick and the
 * daemon's cron/exit decisions. Pure functions: every row of each table. */
#include <criterion/criterion.h>
#include <string.h>
#include "daemon/db.h"
#include "daemon/policy.h"

static policy_exit_out_t ex(int status, int sig, int stop, int cancel, const char *last_error)
{
    policy_exit_in_t in = {.status = status, .sig = sig, .stop = stop, .cancel_requested = cancel,
                           .last_error = last_error, .job_timeout_s = 7, .progress_timeout_s = 9, .max_line = 256};
    policy_exit_out_t o;
    memset(&o, 0x55, sizeof o);
    policy_exit(&in, &o);
    return o;
}

Test(policy_exit, success_registers_even_when_a_cancel_came_late)
{
    cr_expect_eq(ex(0, 0, STOP_NONE, 0, NULL).action, EXIT_REGISTER);
    cr_expect_eq(ex(0, 0, STOP_CANCEL, 1, NULL).action, EXIT_REGISTER, "the work is done: keep it");
}

Test(policy_exit, cancel_wins_over_every_failure)
{
    int cases[][3] = {{65, 0, STOP_NONE}, {75, 0, STOP_CANCEL}, {0, 9, STOP_CANCEL}, {3, 0, STOP_NONE}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        policy_exit_out_t o = ex(cases[i][0], cases[i][1], cases[i][2], cases[i][2] != STOP_CANCEL, NULL);
        cr_expect_eq(o.action, EXIT_FINISH, "case %zu", i);
        cr_expect_eq(o.final_state, DB_CANCELLED, "case %zu", i);
        cr_expect_str_eq(o.why, "cancelled by request");
    }
}

Test(policy_exit, exit_65_is_permanent_with_the_workers_message)
{
    policy_exit_out_t o = ex(65, 0, STOP_NONE, 0, "model: /m.bin: bad header");
    cr_expect_eq(o.action, EXIT_FINISH);
    cr_expect_eq(o.final_state, DB_FAILED);
    cr_expect_str_eq(o.why, "model: /m.bin: bad header");
    o = ex(65, 0, STOP_NONE, 0, NULL);
    cr_expect_str_eq(o.why, "worker reported a permanent failure (exit 65)");
}

Test(policy_exit, timeout_fails_without_retry)
{
    policy_exit_out_t o = ex(0, 15, STOP_TIMEOUT, 0, NULL);
    cr_expect_eq(o.action, EXIT_FINISH);
    cr_expect_eq(o.final_state, DB_FAILED);
    cr_expect_str_eq(o.why, "exceeded job_timeout_s = 7 s");
}

Test(policy_exit, clean_stops_requeue_without_counting)
{
    policy_exit_out_t o = ex(75, 0, STOP_NONE, 0, NULL);
    cr_expect_eq(o.action, EXIT_REQUEUE);
    cr_expect_eq(o.counted, 0);
    o = ex(0, 9, STOP_SHUTDOWN, 0, NULL);   /* lrqd's own shutdown, even if it had to KILL */
    cr_expect_eq(o.action, EXIT_REQUEUE);
    cr_expect_eq(o.counted, 0);
}

Test(policy_exit, crashes_and_kills_use_an_attempt_with_the_reason)
{
    struct { int status, sig, stop; const char *le, *why; } t[] = {
        {75, 0, STOP_STALLED, NULL, "no output from the worker for 9 s; killed"},
        {0, 9, STOP_OVERLONG, NULL, "worker printed a line longer than 256 bytes; killed"},
        {0, 9, STOP_NONE, NULL, "worker killed by signal 9"},
        {3, 0, STOP_NONE, NULL, "worker exited with code 3"},
        {70, 0, STOP_NONE, "No space left on device", "worker exited with code 70: No space left on device"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        policy_exit_out_t o = ex(t[i].status, t[i].sig, t[i].stop, 0, t[i].le);
        cr_expect_eq(o.action, EXIT_REQUEUE, "case %zu", i);
        cr_expect_eq(o.counted, 1, "case %zu", i);
        cr_expect_str_eq(o.why, t[i].why, "case %zu", i);
    }
}

static int tick(uint64_t now, int dirty, int alive, int stop, uint64_t kill_at)
{
    policy_run_in_t in = {.now = now, .t_start = 1000, .t_last_line = 5000, .t_last_write = 4500, .kill_at = kill_at,
                          .dirty = dirty, .alive = alive, .stop = stop, .job_timeout_s = 60, .progress_timeout_s = 10};
    return policy_run_tick(&in);
}

Test(policy_run, progress_is_written_at_most_once_a_second)
{
    cr_expect_eq(tick(5499, 1, 1, 0, 0), 0);
    cr_expect_eq(tick(5500, 1, 1, 0, 0), RUN_WRITE_PROGRESS);
    cr_expect_eq(tick(5500, 0, 1, 0, 0), 0, "nothing new: no write");
    cr_expect_eq(tick(5500, 1, 0, 0, 0), RUN_WRITE_PROGRESS, "an exited run still flushes");
}

Test(policy_run, timeouts_and_the_kill_deadline)
{
    cr_expect_eq(tick(15000, 0, 1, 0, 0), 0, "silent exactly progress_timeout_s: not yet");
    cr_expect_eq(tick(15001, 0, 1, 0, 0), RUN_STOP_STALLED);
    cr_expect_eq(tick(61001, 0, 1, 0, 0), RUN_STOP_TIMEOUT, "the job timeout is checked first");
    cr_expect_eq(tick(61001, 0, 1, STOP_CANCEL, 0), 0, "already stopping: no second stop");
    cr_expect_eq(tick(20000, 0, 1, STOP_CANCEL, 20000), RUN_KILL);
    cr_expect_eq(tick(19999, 0, 1, STOP_CANCEL, 20000), 0);
    cr_expect_eq(tick(99999, 0, 0, STOP_CANCEL, 20000), 0, "exited: nothing to kill");
}

Test(policy_cron, ping_watchdog_dispatch_and_exit)
{
    policy_cron_in_t in = {.now = 20000, .last_ping = 5000, .ping_ms = 15000, .last_watchdog = 0,
                           .watchdog_usec = 0, .stopping = 0, .nruns = 1, .workers = 2};
    cr_expect_eq(policy_cron(&in), CRON_PING | CRON_DISPATCH);
    in.last_ping = 5001;
    in.nruns = 2;
    cr_expect_eq(policy_cron(&in), 0, "slots full, ping not due");
    in.watchdog_usec = 30000000;   /* 30 s: notify every 15 s */
    in.last_watchdog = 5000;
    cr_expect_eq(policy_cron(&in), CRON_WATCHDOG);
    in.watchdog_usec = 0;
    in.stopping = 1;
    in.nruns = 0;
    in.stop_deadline = 50000;
    cr_expect_eq(policy_cron(&in), CRON_EXIT, "stopping: no dispatch; nothing left: exit");
    in.nruns = 1;
    cr_expect_eq(policy_cron(&in), 0, "a worker still stopping holds the exit");
    in.now = in.last_ping = 50001;
    cr_expect_eq(policy_cron(&in), CRON_EXIT_LATE);
    cr_expect_eq(policy_exit_now(0, 0, 1, 0), 0, "not stopping: never exit");
}
