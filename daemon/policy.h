/* policy.h — the daemon's decisions, as pure functions of what it knows, so
 * that each rule is unit-tested (tests/unit/test_policy.c) and the modules
 * that act on them (sched.c, main.c) only carry them out:
 *   - what a worker's exit means for its job (docs/daemon.md, exit codes);
 *   - what the periodic tick must do to a run (progress write, timeouts, KILL);
 *   - what the periodic tick must do for the daemon (SSE ping, watchdog,
 *     dispatch, and whether a shutdown is complete). */
#ifndef LRQD_POLICY_H
#define LRQD_POLICY_H
#include <stdint.h>

/* Why lrqd signalled a worker. */
enum run_stop { STOP_NONE = 0, STOP_CANCEL, STOP_SHUTDOWN, STOP_TIMEOUT, STOP_STALLED, STOP_OVERLONG };

/* Worker exit codes (docs/worker-protocol.md). */
enum { WORKER_EXIT_OK = 0, WORKER_EXIT_FAIL = 65, WORKER_EXIT_STOPPED = 75 };

typedef struct policy_exit_in {
    int status;               /* exit code; meaningful when sig == 0 */
    int sig;                  /* terminating signal, or 0 */
    int stop;                 /* enum run_stop */
    int cancel_requested;     /* from the db: a cancel arrived while it ran */
    const char *last_error;   /* the worker's last "error" event, or NULL */
    int64_t job_timeout_s, progress_timeout_s, max_line;   /* for the messages */
    int cause;                /* enum exec_cause (slurm.h): EXEC_EXITED for a plain exit */
    const char *detail;       /* the executor's detail ("" or NULL: none) */
    int64_t ext_id;           /* the Slurm job id, for the messages (0: none) */
} policy_exit_in_t;

enum policy_exit_action {
    EXIT_REGISTER = 1,        /* success: register metrics and artifacts, then succeeded */
    EXIT_FINISH,              /* final_state now (no retry) */
    EXIT_REQUEUE,             /* back to the queue; counted says whether it used an attempt */
};

typedef struct policy_exit_out {
    int action;               /* enum policy_exit_action */
    int final_state;          /* EXIT_FINISH: DB_FAILED or DB_CANCELLED */
    int counted;              /* EXIT_REQUEUE */
    char why[1400];           /* the job's error / log reason ("" for a success) */
} policy_exit_out_t;

void policy_exit(const policy_exit_in_t *in, policy_exit_out_t *out);

/* One run at a tick. Times are monotonic ms. */
typedef struct policy_run_in {
    uint64_t now, t_start, t_last_line, t_last_write, kill_at;
    int dirty;                /* progress not yet written to the db */
    int alive;                /* the worker has not exited yet */
    int stop;                 /* enum run_stop already requested, or STOP_NONE */
    int64_t job_timeout_s, progress_timeout_s;
} policy_run_in_t;

enum {
    RUN_WRITE_PROGRESS = 1,   /* write the throttled progress (at most once a second) */
    RUN_KILL = 2,             /* the grace period after SIGTERM is over: SIGKILL */
    RUN_STOP_TIMEOUT = 4,     /* job_timeout_s exceeded: stop it */
    RUN_STOP_STALLED = 8,     /* silent for progress_timeout_s: stop it */
};
int policy_run_tick(const policy_run_in_t *in);   /* mask of RUN_* */

/* The daemon at a tick. */
typedef struct policy_cron_in {
    uint64_t now, last_ping, ping_ms;
    uint64_t last_watchdog, watchdog_usec;   /* watchdog_usec 0 = no systemd watchdog */
    int stopping, nruns;
    int64_t workers;
    uint64_t stop_deadline;                  /* monotonic ms; meaningful when stopping */
} policy_cron_in_t;

enum {
    CRON_PING = 1,            /* SSE comment line, so that proxies keep idle streams */
    CRON_WATCHDOG = 2,        /* sd_notify WATCHDOG=1 (every half period) */
    CRON_DISPATCH = 4,        /* a slot is free: try to claim queued jobs */
    CRON_EXIT = 8,            /* shutdown complete: leave the loop, exit 0 */
    CRON_EXIT_LATE = 16,      /* grace period over with workers left: leave, exit 1 */
};
int policy_cron(const policy_cron_in_t *in);      /* mask of CRON_* */
/* The exit part alone (also asked whenever a run ends): 0, CRON_EXIT or CRON_EXIT_LATE. */
int policy_exit_now(int stopping, int nruns, uint64_t now, uint64_t stop_deadline);
#endif
