/* test_slurm_unit.c — the pure part of the Slurm executor (daemon/slurm.c) and the
 * Slurm rows of the exit table (daemon/policy.c): every Slurm job state of the table
 * in docs/daemon.md ("Deploying with Slurm"), squeue lines as Slurm 22.05 prints them
 * (copied from a run of tests/slurm/cluster.sh), the resources, the refused sbatch
 * arguments and the shell quoting (checked against sh(1) itself). Part of make check:
 * no Slurm needed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/db.h"
#include "daemon/policy.h"
#include "daemon/slurm.h"

static slurm_outcome_t map(const char *st, int raw)
{
    slurm_outcome_t o;
    memset(&o, 0x55, sizeof o);
    slurm_map_state(st, raw, &o);
    return o;
}

Test(slurm_map, waiting_and_running_states_do_not_end_the_run)
{
    const char *pend[] = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "SUSPENDED"};
    for (size_t i = 0; i < sizeof pend / sizeof pend[0]; i++) cr_expect_eq(map(pend[i], 0).phase, SLURM_PENDING, "%s", pend[i]);
    const char *run[] = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT"};
    for (size_t i = 0; i < sizeof run / sizeof run[0]; i++) cr_expect_eq(map(run[i], 0).phase, SLURM_RUNNING, "%s", run[i]);
    slurm_outcome_t o = map("SOME_NEW_STATE", 0);
    cr_expect_eq(o.phase, SLURM_RUNNING);
    cr_expect_eq(o.known, 0);
}

Test(slurm_map, end_states_carry_the_wait_status)
{
    /* squeue's exit_code is a wait(2) status: 19200 = exit 75 (0x4b00), 9 = SIGKILL. */
    slurm_outcome_t o = map("COMPLETED", 0);
    cr_expect(o.phase == SLURM_ENDED && o.cause == EXEC_EXITED && o.status == 0 && o.sig == 0);
    o = map("FAILED", 19200);
    cr_expect(o.phase == SLURM_ENDED && o.cause == EXEC_EXITED && o.status == 75 && o.sig == 0);
    o = map("FAILED", 65 << 8);
    cr_expect(o.status == 65 && o.sig == 0);
    o = map("FAILED", 9);
    cr_expect(o.cause == EXEC_EXITED && o.sig == 9);
    o = map("FAILED", 0);   /* a launch failure: never a success */
    cr_expect(o.cause == EXEC_EXITED && o.status != 0);
    o = map("CANCELLED", 15);
    cr_expect(o.cause == EXEC_CANCELLED && o.sig == 15);
    cr_expect_eq(map("TIMEOUT", 0).cause, EXEC_TIMELIMIT);
    cr_expect_eq(map("DEADLINE", 0).cause, EXEC_TIMELIMIT);
    cr_expect_eq(map("NODE_FAIL", 0).cause, EXEC_NODE_FAIL);
    cr_expect_eq(map("BOOT_FAIL", 0).cause, EXEC_NODE_FAIL);
    cr_expect_eq(map("PREEMPTED", 0).cause, EXEC_PREEMPTED);
    cr_expect_eq(map("OUT_OF_MEMORY", 0).cause, EXEC_OOM);
}

Test(slurm_row, parses_squeue_lines)
{
    char l1[] = "12|12|N/A|FAILED|NonZeroExitCode|19200|vm|lrq:/var/lib/lrq/jobs/7|";
    slurm_row_t r;
    cr_assert_eq(slurm_parse_row(l1, &r), 0);
    cr_expect_eq(r.id, 12);
    cr_expect_str_eq(r.state, "FAILED");
    cr_expect_str_eq(r.reason, "NonZeroExitCode");
    cr_expect_eq(r.raw, 19200);
    cr_expect_str_eq(r.host, "vm");
    cr_expect_str_eq(r.comment, "lrq:/var/lib/lrq/jobs/7");
    char l2[] = "3|3|N/A|PENDING|Priority|0||a|b|";   /* no host yet; a comment holding '|' */
    cr_assert_eq(slurm_parse_row(l2, &r), 0);
    cr_expect_str_eq(r.host, "");
    cr_expect_str_eq(r.comment, "a|b");
    const char *bad[] = {"", "x|x|N/A|RUNNING|None|0|vm||", "5|5|N/A||None|0|vm||", "5|5|N/A|RUNNING|None|zz|vm||",
                         "5|5|N/A|RUNNING|None|0", "-1|-1|N/A|RUNNING|None|0|vm||", "5|RUNNING|None|0|vm||"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char b[64];
        snprintf(b, sizeof b, "%s", bad[i]);
        cr_expect_eq(slurm_parse_row(b, &r), LRQ_EFORMAT, "%s", bad[i]);
    }
    /* copied from squeue -r of a real array: element 3 of array 1 has job id 1, element 2 id 5 */
    char l3[] = "5|1|2|FAILED|NonZeroExitCode|768|vm|lrq-tasks:/x|", l4[] = "77|77|0-4%2|PENDING|Priority|0|||";
    cr_assert_eq(slurm_parse_row(l3, &r), 0);
    cr_expect(r.id == 1 && r.task == 2 && r.raw == 768, "array element: id %lld task %d", (long long)r.id, r.task);
    cr_assert_eq(slurm_parse_row(l4, &r), 0);
    cr_expect(r.id == 77 && r.task == SLURM_TASKS_PENDING);
    char l5[] = "12|12|N/A|RUNNING|None|0|vm||";
    cr_assert_eq(slurm_parse_row(l5, &r), 0);
    cr_expect_eq(r.task, -1);
    const char *bad2[] = {"5|x|2|RUNNING|None|0|vm||", "5||2|RUNNING|None|0|vm||", "5|1||RUNNING|None|0|vm||",
                          "5|0|2|RUNNING|None|0|vm||", "5x|1|2|RUNNING|None|0|vm||"};
    for (size_t i = 0; i < sizeof bad2 / sizeof bad2[0]; i++) {
        char b[64];
        snprintf(b, sizeof b, "%s", bad2[i]);
        cr_expect_eq(slurm_parse_row(b, &r), LRQ_EFORMAT, "%s", bad2[i]);
    }
    int64_t id;
    cr_expect(slurm_parse_jobid("42\n", &id) == 0 && id == 42);
    cr_expect(slurm_parse_jobid("43;cluster\n", &id) == 0 && id == 43);
    cr_expect_eq(slurm_parse_jobid("sbatch: error", &id), LRQ_EFORMAT);
    cr_expect_eq(slurm_parse_jobid("", &id), LRQ_EFORMAT);
}

Test(slurm_res, cpus_memory_and_time)
{
    slurm_res_in_t in = {.threads = 4, .model_bytes = 1000u << 20, .cache_mb = 1024, .job_timeout_s = 3600, .grace_s = 30};
    slurm_res_t r;
    slurm_resources(&in, &r);
    cr_expect_eq(r.cpus, 4);
    cr_expect_eq(r.mem_mb, 2 * 1000 + 1024 + 512);
    cr_expect_eq(r.time_min, 62, "(3600 + 30) s rounded up = 61 min, + 1 so that lrqd's timeout comes first");
    cr_expect_eq(r.cache_mb, 1024);
    in.threads = 0;
    in.mem_mb = 777;
    in.time_limit_min = 5;
    in.model_bytes = 1;   /* rounds up to 1 MB */
    slurm_resources(&in, &r);
    cr_expect(r.cpus == 1 && r.mem_mb == 777 && r.time_min == 5);
    in.mem_mb = 0;
    in.time_limit_min = 0;
    in.job_timeout_s = 0;
    slurm_resources(&in, &r);
    cr_expect(r.mem_mb == 2 + 1024 + 512 && r.time_min == 0);
}

/* A parallel-pipeline job with "tasks": its worker runs that many block tasks side by side. */
Test(slurm_res, tasks_multiply_cpus_and_memory)
{
    slurm_res_in_t in = {.threads = 2, .model_bytes = 100u << 20, .cache_mb = 64, .tasks = 5};
    slurm_res_t r;
    slurm_resources(&in, &r);
    cr_expect_eq(r.cpus, 10);
    cr_expect_eq(r.mem_mb, 5 * (2 * 100 + 64 + 512));
    in.max_cpus = 4; /* slurm_max_cpus: the tasks share what a node has */
    slurm_resources(&in, &r);
    cr_expect_eq(r.cpus, 4);
    in.max_cpus = 0;
    in.mem_mb = 900; /* slurm_mem_mb overrides the estimate, tasks or not */
    in.tasks = 1;
    slurm_resources(&in, &r);
    cr_expect(r.cpus == 2 && r.mem_mb == 900);
}

Test(slurm_args, splits_and_refuses_what_lrqd_sets)
{
    char **a;
    int n;
    lrq_err_t err = {0};
    cr_assert_eq(slurm_split_args("  --qos=high\t--exclusive  -N 1 ", &a, &n, &err), 0);
    cr_expect_eq(n, 4);
    cr_expect_str_eq(a[0], "--qos=high");
    cr_expect_str_eq(a[1], "--exclusive");
    cr_expect_str_eq(a[3], "1");
    cr_expect_null(a[4]);
    slurm_args_free(a);
    cr_assert_eq(slurm_split_args("", &a, &n, &err), 0);
    cr_expect(n == 0 && a[0] == NULL);
    slurm_args_free(a);
    const char *bad[] = {"--output=x", "-o", "-ox", "--error", "--job-name=j", "-J", "--array=1-3", "--dependency=afterok:1", "-d", "--wrap", "--requeue",
                         "--comment=c", "--chdir=/", "--parsable"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(slurm_split_args(bad[i], &a, &n, &err), LRQ_ESPEC, "%s", bad[i]);
        cr_expect(strstr(err.msg, "slurm_sbatch_args") != NULL);
    }
    /* Options that only start like a refused one pass. */
    cr_assert_eq(slurm_split_args("--outputs-not --error-ish", &a, &n, &err), 0);
    slurm_args_free(a);
}

Test(slurm_quote, survives_sh)
{
    const char *s = "/state dir/it's $HOME `x` \"q\" \\";
    lrq_buf_t b = {0};
    cr_assert_eq(slurm_sh_quote(&b, s), 0);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "printf %%s %s", b.p);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char out[256] = {0};
    size_t k = fread(out, 1, sizeof out - 1, p);
    pclose(p);
    out[k] = 0;
    cr_expect_str_eq(out, s, "sh read back the quoted string");
    lrq_buf_free(&b);
}

Test(slurm_unreachable, controller_down_versus_refusal)
{
    /* sbatch's messages with slurmctld stopped (tests/slurm/test_slurm.sh, case 7) and typical refusals. */
    cr_expect(slurm_unreachable("sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n"));
    cr_expect(slurm_unreachable("squeue: error: slurm_receive_msg: Socket timed out on send/recv operation"));
    cr_expect(!slurm_unreachable("sbatch: error: invalid partition specified: nosuchpart"));
    cr_expect(!slurm_unreachable("sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified"));
    cr_expect(!slurm_unreachable(""));
    cr_expect(!slurm_unreachable(NULL));
}

/* ---- the Slurm rows of the exit table (policy.c) ---- */

static policy_exit_out_t ex(int status, int sig, int stop, int cause, const char *detail)
{
    policy_exit_in_t in = {.status = status, .sig = sig, .stop = stop, .cause = cause, .detail = detail, .ext_id = 41,
                           .job_timeout_s = 7, .progress_timeout_s = 9, .max_line = 256};
    policy_exit_out_t o;
    memset(&o, 0x55, sizeof o);
    policy_exit(&in, &o);
    return o;
}

Test(policy_slurm, operator_scancel_is_a_cancellation)
{
    policy_exit_out_t o = ex(-1, 15, STOP_NONE, EXEC_CANCELLED, "state CANCELLED");
    cr_expect(o.action == EXIT_FINISH && o.final_state == DB_CANCELLED);
    cr_expect_str_eq(o.why, "cancelled in Slurm (job 41, scancel outside lrqd)");
    /* Cancelled while pending: status 0, but nothing ran — never a success. */
    o = ex(0, 0, STOP_NONE, EXEC_CANCELLED, "");
    cr_expect(o.action == EXIT_FINISH && o.final_state == DB_CANCELLED);
    /* lrqd's own scancel after a stall: the stall rule, retried. */
    o = ex(-1, 9, STOP_STALLED, EXEC_CANCELLED, "");
    cr_expect(o.action == EXIT_REQUEUE && o.counted == 1);
}

Test(policy_slurm, scheduler_outcomes)
{
    policy_exit_out_t o = ex(1, 0, STOP_NONE, EXEC_SUBMIT_FAILED, "sbatch: error: invalid partition");
    cr_expect(o.action == EXIT_REQUEUE && o.counted == 1);
    cr_expect_str_eq(o.why, "sbatch failed: sbatch: error: invalid partition");
    o = ex(1, 0, STOP_NONE, EXEC_UNAVAILABLE, "Unable to contact slurm controller");
    cr_expect(o.action == EXIT_REQUEUE && o.counted == 0, "a controller outage must not use up attempts");
    cr_expect_str_eq(o.why, "Slurm unavailable: Unable to contact slurm controller; will retry");
    o = ex(-1, 15, STOP_NONE, EXEC_PREEMPTED, "");
    cr_expect(o.action == EXIT_REQUEUE && o.counted == 0, "preemption is not the job's fault");
    o = ex(75, 0, STOP_NONE, EXEC_TIMELIMIT, "");
    cr_expect(o.action == EXIT_FINISH && o.final_state == DB_FAILED);
    cr_expect_str_eq(o.why, "exceeded the Slurm time limit (job 41)");
    o = ex(-1, 9, STOP_NONE, EXEC_NODE_FAIL, "node n3");
    cr_expect(o.action == EXIT_REQUEUE && o.counted == 1);
    cr_expect_str_eq(o.why, "Slurm node failure (job 41, node n3)");
    o = ex(-1, 9, STOP_NONE, EXEC_OOM, "");
    cr_expect(o.action == EXIT_REQUEUE && o.counted == 1);
    o = ex(1, 0, STOP_NONE, EXEC_LOST, "");
    cr_expect(o.action == EXIT_REQUEUE && o.counted == 1);
    cr_expect_str_eq(o.why, "Slurm job 41 is no longer known to Slurm");
    /* A plain exit through Slurm follows the local rows. */
    cr_expect_eq(ex(0, 0, STOP_NONE, EXEC_EXITED, "").action, EXIT_REGISTER);
    o = ex(-1, 9, STOP_NONE, EXEC_EXITED, "state FAILED");
    cr_expect(o.action == EXIT_REQUEUE && o.counted == 1);
    cr_expect_str_eq(o.why, "worker killed by signal 9");
    o = ex(75, 0, STOP_NONE, EXEC_EXITED, "");
    cr_expect(o.action == EXIT_REQUEUE && o.counted == 0);
}

/* ---- the spec's "pipeline" (common/lrq_spec.c, spec__pipeline) ---- */
#include "common/lrq_spec.h"
#include "common/lrq_tasks.h"

static int parse(const char *text, lrq_spec_t *s, lrq_err_t *err)
{
    json_t *j = json_loads(text, 0, NULL);
    cr_assert_not_null(j, "%s", text);
    int rc = lrq_spec_parse(j, s, err);
    json_decref(j);
    return rc;
}

Test(spec_pipeline, default_sequential_parallel_and_errors)
{
    lrq_spec_t s;
    lrq_err_t err = {0};
    const char *base = "{\"model\":\"m\",\"method\":\"lrq\",\"calibration\":{\"path\":\"c\"}%s}";
    char t[256];
    snprintf(t, sizeof t, base, "");
    cr_assert_eq(parse(t, &s, &err), 0);
    cr_expect_eq(s.pipeline, LRQ_PIPE_SEQUENTIAL, "the paper's choice is the default");
    lrq_spec_close(&s);
    snprintf(t, sizeof t, base, ",\"pipeline\":\"parallel\"");
    cr_assert_eq(parse(t, &s, &err), 0);
    cr_expect_eq(s.pipeline, LRQ_PIPE_PARALLEL);
    cr_expect_str_eq(lrq_pipeline_name[s.pipeline], "parallel");
    lrq_spec_close(&s);
    snprintf(t, sizeof t, base, ",\"pipeline\":\"diagonal\"");
    cr_expect_eq(parse(t, &s, &err), LRQ_ESPEC);
    cr_expect_str_eq(err.field, "pipeline");
    cr_expect(strstr(err.msg, "sequential, parallel") != NULL, "%s", err.msg);
    snprintf(t, sizeof t, base, ",\"pipeline\":1");
    cr_expect_eq(parse(t, &s, &err), LRQ_ESPEC);
    cr_expect_str_eq(err.field, "pipeline");
    cr_expect_eq(parse("{\"model\":\"m\",\"method\":\"rtn\",\"pipeline\":\"parallel\"}", &s, &err), LRQ_ESPEC);
    cr_expect_str_eq(err.field, "pipeline");
    cr_assert_eq(parse("{\"model\":\"m\",\"method\":\"rtn\",\"pipeline\":\"sequential\"}", &s, &err), 0);
    lrq_spec_close(&s);
}

Test(spec_tasks, default_one_parallel_only_and_range)
{
    lrq_spec_t s;
    lrq_err_t err = {0};
    const char *base = "{\"model\":\"m\",\"method\":\"%s\",\"calibration\":{\"path\":\"c\"}%s}";
    char t[256];
    snprintf(t, sizeof t, base, "lrq", ",\"pipeline\":\"parallel\"");
    cr_assert_eq(parse(t, &s, &err), 0);
    cr_expect_eq(s.tasks, 1, "one worker process is the default");
    lrq_spec_close(&s);
    snprintf(t, sizeof t, base, "flexround", ",\"pipeline\":\"parallel\",\"tasks\":5");
    cr_assert_eq(parse(t, &s, &err), 0, "%s", err.msg);
    cr_expect_eq(s.tasks, 5);
    lrq_spec_close(&s);
    snprintf(t, sizeof t, base, "lrq", ",\"pipeline\":\"parallel\",\"tasks\":1");
    cr_assert_eq(parse(t, &s, &err), 0);
    lrq_spec_close(&s);
    snprintf(t, sizeof t, base, "lrq", ",\"tasks\":2");
    cr_expect_eq(parse(t, &s, &err), LRQ_ESPEC);
    cr_expect_str_eq(err.field, "tasks");
    cr_expect(strstr(err.msg, "parallel") != NULL, "%s", err.msg);
    snprintf(t, sizeof t, base, "lrq", ",\"pipeline\":\"parallel\",\"tasks\":0");
    cr_expect_eq(parse(t, &s, &err), LRQ_ESPEC);
    cr_expect_str_eq(err.field, "tasks");
    snprintf(t, sizeof t, base, "lrq", ",\"pipeline\":\"parallel\",\"tasks\":257");
    cr_expect_eq(parse(t, &s, &err), LRQ_ESPEC);
    cr_expect_str_eq(err.field, "tasks");
    snprintf(t, sizeof t, base, "lrq", ",\"pipeline\":\"parallel\",\"tasks\":\"5\"");
    cr_expect_eq(parse(t, &s, &err), LRQ_ESPEC);
    cr_expect_str_eq(err.field, "tasks");
    snprintf(t, sizeof t, "{\"model\":\"m\",\"method\":\"gptq\",\"calibration\":{\"path\":\"c\"},\"tasks\":1}");
    cr_assert_eq(parse(t, &s, &err), 0, "tasks 1 is today's behaviour for every method: %s", err.msg);
    lrq_spec_close(&s);
}

/* The block split shared by the local coordinator and the Slurm array (common/lrq_tasks.c). */
Test(task_range, contiguous_cover_sizes_within_one)
{
    for (int L = 1; L <= 40; L++)
        for (int tasks = 1; tasks <= L + 3; tasks++) {
            int n = lrq_task_count(tasks, L), next = 0, lo = L, hi = 0;
            cr_assert_eq(n, tasks < L ? tasks : L);
            for (int k = 0; k < n; k++) {
                int b0, b1;
                lrq_task_range(k, n, L, &b0, &b1);
                cr_assert_eq(b0, next, "L %d n %d k %d starts at %d", L, n, k, b0);
                cr_assert_gt(b1, b0);
                if (b1 - b0 < lo) lo = b1 - b0;
                if (b1 - b0 > hi) hi = b1 - b0;
                next = b1;
            }
            cr_assert_eq(next, L);
            cr_assert_leq(hi - lo, 1);
        }
}

static json_t *task_ev(const char *stage, long done, long L, long iters)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:I}", "event", "progress", "stage", stage, "done", (json_int_t)done, "blocks",
                     (json_int_t)L, "iterations", (json_int_t)iters);
}

Test(task_progress, sums_ranges_ignores_foreign_events)
{
    lrq_taskprog_t p;
    long sum = -1, total = -1;
    cr_assert_eq(lrq_taskprog_init(&p, 3), 0);
    /* L 5, 3 tasks: [0,1) [1,3) [3,5); 10 iterations a block, 50 in all */
    json_t *e = task_ev("reconstruct", 1 * 10 + 7, 5, 10);
    cr_expect_eq(lrq_taskprog_update(&p, 1, e, &sum, &total), 1);
    cr_expect(sum == 7 && total == 50, "sum %ld total %ld", sum, total);
    json_decref(e);
    e = task_ev("reconstruct", 10, 5, 10);   /* task 0 finished its one block */
    lrq_taskprog_update(&p, 0, e, &sum, &total);
    cr_expect_eq(sum, 17);
    json_decref(e);
    e = task_ev("reconstruct", 45, 5, 10);   /* outside task 1's range [10, 30]: kept at 7 */
    lrq_taskprog_update(&p, 1, e, &sum, &total);
    cr_expect_eq(sum, 17);
    json_decref(e);
    e = task_ev("reconstruct", 1 * 10 + 3, 5, 10);   /* a resumed task reports from its checkpoint: no double count */
    lrq_taskprog_update(&p, 1, e, &sum, &total);
    cr_expect_eq(sum, 13);
    json_decref(e);
    lrq_taskprog_finish(&p, 2);
    e = task_ev("reconstruct", 12, 5, 10);
    lrq_taskprog_update(&p, 1, e, &sum, &total);
    cr_expect_eq(sum, 10 + 2 + 20);
    json_decref(e);
    e = task_ev("reconstruct", 12, 6, 10);   /* another model's numbers */
    cr_expect_eq(lrq_taskprog_update(&p, 1, e, &sum, &total), 0);
    json_decref(e);
    e = task_ev("calibrate", 0, 5, 10);
    cr_expect_eq(lrq_taskprog_update(&p, 1, e, &sum, &total), 0);
    cr_expect_eq(lrq_taskprog_update(&p, 7, e, &sum, &total), 0);   /* no such task */
    json_decref(e);
    lrq_taskprog_close(&p);
}
