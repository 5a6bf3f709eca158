/* test_hist.c — daemon/hist.c on a real SQLite file: what the batched writes leave in
 * the database is exactly the set the decimation rule keeps (decim.h, itself checked
 * against a direct simulation in test_decim.c), across flushes at arbitrary points, a
 * simulated restart (the in-memory state dropped and reloaded from the db) and rows of a
 * job that was deleted meanwhile (skipped, not failing the batch). Exact comparison of
 * integer iteration numbers; the loss values go through SQLite's REAL unchanged. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/hist.h"

static char tmpdir[256], dbpath[300];
static db_t *db;
static lrq_err_t err;

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lrq-test-hist-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(dbpath, sizeof dbpath, "%s/lrq.db", tmpdir);
    cr_assert_eq(db_open(&db, dbpath, NULL, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
    db_close(db);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
}

static int64_t new_job(void)
{
    int64_t id;
    cr_assert_eq(db_job_insert(db, "t", NULL, "lrq", 0, 3, "{}", 1, &id, &err), 0, "%s", err.msg);
    return id;
}

static void add(hist_t *h, int64_t job, int block, int64_t it)
{
    json_t *p = json_pack("{s:s, s:i, s:i, s:I, s:f, s:f}", "stage", "reconstruct", "block", block, "blocks", 100,
                          "iteration", (json_int_t)it, "loss", 1.0 / (double)it, "fraction", it / 1e4);
    cr_assert_eq(hist_add(h, job, p, it, &err), 0, "%s", err.msg);
    json_decref(p);
}

TestSuite(hist, .init = setup, .fini = teardown);

Test(hist, stored_set_is_the_rule_across_flushes_and_a_restart)
{
    int64_t job = new_job();
    const int N = 3000;
    hist_t h;
    hist_init(&h, db);
    decim_t ref;
    decim_init(&ref, decim_cap(1, 100));
    for (int i = 0; i < N; i++) {
        add(&h, job, 3, i + 1);
        decim_push(&ref);
        if (i % 97 == 13) cr_assert_eq(hist_flush(&h, (uint64_t)i * 10, &err), 0, "%s", err.msg);
        if (i == 1500) {   /* restart: lrqd stops (flushing), a new one starts on the same db */
            cr_assert_eq(hist_flush(&h, 0, &err), 0, "%s", err.msg);
            hist_close(&h);
            hist_init(&h, db);
        }
    }
    cr_assert_eq(hist_flush(&h, 1, &err), 0, "%s", err.msg);
    hist_close(&h);
    db_psample_t *s;
    size_t n;
    cr_assert_eq(db_progress_list(db, job, 0, 5000, &s, &n, &err), 0, "%s", err.msg);
    size_t want = 0;
    for (int64_t k = 0; k < N; k++) want += decim_keep(&ref, k);
    cr_expect_eq(n, want, "%zu stored, the rule keeps %zu", n, want);
    cr_expect(n <= (size_t)decim_cap(1, 100) + 1);
    size_t m = 0;
    for (int64_t k = 0; k < N && m < n; k++) {
        if (!decim_keep(&ref, k)) continue;
        cr_expect_eq(s[m].iteration, k + 1, "stored #%zu: iteration %lld, the rule keeps %lld", m,
                     (long long)s[m].iteration, (long long)k + 1);
        cr_expect_eq(s[m].k, k);
        cr_expect_eq(s[m].block, 3);
        cr_expect_str_eq(s[m].stage, "reconstruct");
        cr_expect(s[m].loss == 1.0 / (double)(k + 1), "loss stored unchanged");
        cr_expect(isnan(s[m].eta_s), "no eta_s given → none stored");
        if (m) cr_expect_gt(s[m].seq, s[m - 1].seq);
        m++;
    }
    free(s);
}

Test(hist, a_deleted_job_does_not_fail_the_batch)
{
    int64_t a = new_job(), b = new_job();
    hist_t h;
    hist_init(&h, db);
    add(&h, a, 1, 1);
    add(&h, b, 1, 1);
    json_t *ev = json_pack("{s:s, s:i, s:i, s:f, s:f, s:f}", "event", "block", "block", 0, "blocks", 5, "loss_start",
                           2.0, "loss_end", 0.5, "seconds", 1.5);
    cr_assert_eq(hist_block(&h, a, ev, 7, &err), 0);
    cr_assert_eq(hist_block(&h, b, ev, 7, &err), 0);
    json_decref(ev);
    /* b finishes and is deleted before the flush. */
    cr_assert_eq(db_job_finish(db, b, DB_CANCELLED, "x", 2, 0, &err), DB_ECONFLICT);   /* queued, not running */
    db_job_t j;
    cr_assert_eq(db_job_claim(db, 2, &j, &err), 1);
    db_job_clear(&j);
    cr_assert_eq(db_job_claim(db, 2, &j, &err), 1);
    db_job_clear(&j);
    cr_assert_eq(db_job_finish(db, b, DB_CANCELLED, "x", 3, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(db_job_delete(db, b, &err), 0, "%s", err.msg);
    cr_assert_eq(hist_flush(&h, 1, &err), 0, "%s", err.msg);
    hist_close(&h);
    db_psample_t *s;
    db_pblock_t *bl;
    size_t n, nb;
    cr_assert_eq(db_progress_list(db, a, 0, 10, &s, &n, &err), 0);
    cr_expect_eq(n, 1);
    free(s);
    cr_assert_eq(db_progress_blocks(db, a, &bl, &nb, &err), 0);
    cr_assert_eq(nb, 1);
    cr_expect_eq(bl[0].block, 1, "block events count from 0, the history from 1");
    cr_expect(bl[0].loss_start == 2.0 && bl[0].loss_end == 0.5 && bl[0].blocks == 5);
    free(bl);
    cr_assert_eq(db_progress_list(db, b, 0, 10, &s, &n, &err), 0);
    cr_expect_eq(n, 0);
    free(s);
}

Test(hist, segments_are_bounded)
{
    int64_t job = new_job();
    hist_t h;
    hist_init(&h, db);
    int refused = 0;
    for (int b = 1; b <= HIST_MAX_SEGS + 10; b++) {
        json_t *p = json_pack("{s:s, s:i, s:i, s:f}", "stage", "reconstruct", "block", b, "iteration", 1, "loss", 1.0);
        if (hist_add(&h, job, p, 1, &err)) refused++;
        json_decref(p);
    }
    cr_expect_eq(refused, 10, "the segments past HIST_MAX_SEGS are refused: %d", refused);
    cr_expect_eq(h.dropped, 10);
    cr_assert_eq(hist_flush(&h, 1, &err), 0, "%s", err.msg);
    hist_close(&h);
    db_psample_t *s;
    size_t n;
    cr_assert_eq(db_progress_list(db, job, 0, 5000, &s, &n, &err), 0);
    cr_expect_eq(n, HIST_MAX_SEGS);
    free(s);
}
