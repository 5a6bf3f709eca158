/* test_db.c — daemon/db.c: migrations, newer-schema refusal, claim order,
 * state transitions, integrity. Each test uses a fresh temp database. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "daemon/db.h"

static char tmpdir[256], dbpath[300], schema[1024];
static db_t *db;
static lrq_err_t err;

static const char *srcdir(void)
{
    const char *s = getenv("LRQ_SRCDIR");
    return s && *s ? s : ".";
}

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lrq-test-db-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(dbpath, sizeof dbpath, "%s/lrq.db", tmpdir);
    snprintf(schema, sizeof schema, "%s/schema", srcdir());
    db = NULL;
    memset(&err, 0, sizeof err);
}

static void teardown(void)
{
    db_close(db);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
}

/* The built-in migrations, as lrqd uses them by default. */
static void open_db(void)
{
    int rc = db_open(&db, dbpath, NULL, &err);
    cr_assert_eq(rc, 0, "db_open: %s", err.msg);
}

static int64_t add(const char *name, int prio, int max_attempts, int64_t now)
{
    int64_t id = 0;
    int rc = db_job_insert(db, name, NULL, "rtn", prio, max_attempts, "{\"model\":\"/m\",\"method\":\"rtn\"}", now,
                           &id, &err);
    cr_assert_eq(rc, 0, "insert: %s", err.msg);
    cr_assert_gt(id, 0);
    return id;
}

static int64_t claim(void)
{
    db_job_t j;
    int rc = db_job_claim(db, 1000, &j, &err);
    cr_assert_geq(rc, 0, "claim: %s", err.msg);
    if (rc == 0) return 0;
    int64_t id = j.id;
    cr_assert_eq(j.state, DB_RUNNING);
    db_job_clear(&j);
    return id;
}

static int state_of(int64_t id)
{
    db_job_t j;
    cr_assert_eq(db_job_get(db, id, &j, &err), 0, "get: %s", err.msg);
    int st = j.state;
    db_job_clear(&j);
    return st;
}

TestSuite(db, .init = setup, .fini = teardown);

Test(db, migrations_set_user_version_and_wal)
{
    open_db();
    cr_assert_geq(db_user_version(db), 1);
    db_close(db);
    db = NULL;
    /* Reopen: nothing to apply, same version, data kept. */
    open_db();
    add("a", 0, 3, 1);
    int v = db_user_version(db);
    db_close(db);
    db = NULL;
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    cr_assert_eq(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(st, 0), v);
    sqlite3_finalize(st);
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT count(*) FROM job", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(h);
}

Test(db, applies_only_newer_migrations_in_order)
{
    /* A private schema dir: 0001 creates t, 0002 adds a column; applying 0002
     * later (second open) must not re-run 0001. */
    char sdir[400], p[500];
    snprintf(sdir, sizeof sdir, "%s/schema", tmpdir);
    cr_assert_eq(mkdir(sdir, 0700), 0);
    snprintf(p, sizeof p, "%s/0001_a.sql", sdir);
    FILE *f = fopen(p, "w");
    fputs("CREATE TABLE t (x INTEGER);", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/README", sdir);  /* ignored */
    f = fopen(p, "w");
    fputs("not sql", f);
    fclose(f);
    cr_assert_eq(db_open(&db, dbpath, sdir, &err), 0, "%s", err.msg);
    cr_assert_eq(db_user_version(db), 1);
    db_close(db);
    db = NULL;
    snprintf(p, sizeof p, "%s/0002_b.sql", sdir);
    f = fopen(p, "w");
    fputs("ALTER TABLE t ADD COLUMN y TEXT;", f);
    fclose(f);
    cr_assert_eq(db_open(&db, dbpath, sdir, &err), 0, "%s", err.msg);
    cr_assert_eq(db_user_version(db), 2);
    db_close(db);
    db = NULL;
    /* A broken migration rolls back entirely and leaves the version alone. */
    snprintf(p, sizeof p, "%s/0003_bad.sql", sdir);
    f = fopen(p, "w");
    fputs("CREATE TABLE u (z INTEGER); THIS IS NOT SQL;", f);
    fclose(f);
    cr_assert_neq(db_open(&db, dbpath, sdir, &err), 0);
    cr_assert(strstr(err.msg, "0003_bad.sql"), "message names the migration: %s", err.msg);
    sqlite3 *h;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(st, 0), 2);
    sqlite3_finalize(st);
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT count(*) FROM sqlite_master WHERE name='u'", -1, &st, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
}

Test(db, refuses_newer_schema)
{
    open_db();
    db_close(db);
    db = NULL;
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, "PRAGMA user_version = 9999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    int rc = db_open(&db, dbpath, schema, &err);
    cr_assert_eq(rc, LRQ_ESCHEMA, "rc %d: %s", rc, err.msg);
    cr_assert_null(db);
    cr_assert(strstr(err.msg, "9999"), "%s", err.msg);
}

/* One source of truth: the compiled-in migrations are exactly the files of
 * schema/ (a migration added to schema/ but not to SCHEMA_SQL fails here). */
Test(db, builtin_schema_is_schema_dir)
{
    size_t files = 0;
    DIR *dir = opendir(schema);
    cr_assert_not_null(dir, "%s", schema);
    struct dirent *e;
    while ((e = readdir(dir))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".sql")) continue;
        files++;
        size_t i = 0;
        while (i < db_builtin_schema_n && strcmp(db_builtin_schema[i].name, e->d_name)) i++;
        cr_assert_lt(i, db_builtin_schema_n, "schema/%s is not compiled in", e->d_name);
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", schema, e->d_name);
        FILE *f = fopen(p, "rb");
        cr_assert_not_null(f);
        static char buf[1 << 20];
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        cr_expect_eq(strlen(db_builtin_schema[i].sql), len, "%s: length", e->d_name);
        cr_expect_eq(memcmp(db_builtin_schema[i].sql, buf, len), 0, "%s: bytes differ", e->d_name);
        cr_expect_eq(db_builtin_schema[i].num, atoi(e->d_name), "%s: number", e->d_name);
    }
    closedir(dir);
    cr_expect_eq(files, db_builtin_schema_n, "every compiled-in migration has its file");
    /* and both routes give the same version */
    open_db();
    int v = db_user_version(db);
    db_close(db);
    db = NULL;
    snprintf(dbpath, sizeof dbpath, "%s/dir.db", tmpdir);
    cr_assert_eq(db_open(&db, dbpath, schema, &err), 0, "%s", err.msg);
    cr_expect_eq(db_user_version(db), v);
    cr_expect_gt(v, 0);
}

Test(db, missing_schema_dir_is_an_error)
{
    char sdir[400];
    snprintf(sdir, sizeof sdir, "%s/nope", tmpdir);
    cr_assert_lt(db_open(&db, dbpath, sdir, &err), 0);
    cr_assert_null(db);
}

Test(db, claim_order_priority_then_age)
{
    open_db();
    int64_t a = add("a", 0, 3, 1), b = add("b", 5, 3, 2), c = add("c", 0, 3, 3), d = add("d", 5, 3, 4),
            e = add("e", -3, 3, 5);
    cr_assert_eq(claim(), b);
    cr_assert_eq(claim(), d);
    cr_assert_eq(claim(), a);
    cr_assert_eq(claim(), c);
    cr_assert_eq(claim(), e);
    cr_assert_eq(claim(), 0, "queue is empty");
    int64_t counts[DB_NSTATES];
    cr_assert_eq(db_job_counts(db, counts, &err), 0);
    cr_assert_eq(counts[DB_RUNNING], 5);
    cr_assert_eq(counts[DB_QUEUED], 0);
}

Test(db, claim_counts_attempts_and_requeue)
{
    open_db();
    int64_t id = add("x", 0, 2, 1);
    cr_assert_eq(claim(), id);
    db_job_t j;
    cr_assert_eq(db_job_get(db, id, &j, &err), 0);
    cr_assert_eq(j.attempts, 1);
    cr_assert_eq(j.started_at, 1000);
    db_job_clear(&j);
    /* Clean stop (exit 75): requeued, the attempt is given back. */
    cr_assert_eq(db_job_requeue(db, id, 0, NULL, 2000, 10, &err), DB_QUEUED);
    cr_assert_eq(db_job_get(db, id, &j, &err), 0);
    cr_assert_eq(j.attempts, 0);
    cr_assert_eq(j.run_ms, 10);
    db_job_clear(&j);
    /* Crash #1: requeued, counted. */
    cr_assert_eq(claim(), id);
    cr_assert_eq(db_job_requeue(db, id, 1, "worker killed by signal 9", 3000, 5, &err), DB_QUEUED);
    cr_assert_eq(db_job_get(db, id, &j, &err), 0);
    cr_assert_eq(j.attempts, 1);
    cr_assert_str_eq(j.error, "worker killed by signal 9");
    db_job_clear(&j);
    /* Crash #2 reaches max_attempts=2: failed with the reason. */
    cr_assert_eq(claim(), id);
    cr_assert_eq(db_job_requeue(db, id, 1, "exited with code 3", 4000, 5, &err), DB_FAILED);
    cr_assert_eq(db_job_get(db, id, &j, &err), 0);
    cr_assert_eq(j.state, DB_FAILED);
    cr_assert_eq(j.attempts, 2);
    cr_assert_eq(j.finished_at, 4000);
    cr_assert_str_eq(j.error, "exited with code 3");
    db_job_clear(&j);
    /* Not running any more: every running-only transition is a conflict. */
    cr_assert_eq(db_job_requeue(db, id, 1, "x", 5000, 0, &err), DB_ECONFLICT);
    cr_assert_eq(db_job_finish(db, id, DB_FAILED, "x", 5000, 0, &err), DB_ECONFLICT);
    cr_assert_eq(db_job_succeed(db, id, 5000, 0, NULL, NULL, 0, &err), DB_ECONFLICT);
}

Test(db, succeed_stores_metrics_and_artifacts_atomically)
{
    open_db();
    int64_t id = add("s", 0, 3, 1);
    cr_assert_eq(claim(), id);
    cr_assert_eq(db_job_set_pid(db, id, 4242, &err), 0);
    cr_assert_eq(db_job_set_progress(db, id, "{\"stage\":\"eval\",\"fraction\":0.5}", &err), 0);
    db_artifact_t arts[2] = {{.path = "hf/model.safetensors", .size = 123}, {.path = "hf/config.json", .size = 4}};
    memset(arts[0].sha256, 'a', 64);
    arts[0].sha256[64] = 0;
    memset(arts[1].sha256, 'b', 64);
    arts[1].sha256[64] = 0;
    cr_assert_eq(db_job_succeed(db, id, 9000, 8000, "{\"ppl\":12.5}", arts, 2, &err), 0, "%s", err.msg);
    db_job_t j;
    cr_assert_eq(db_job_get(db, id, &j, &err), 0);
    cr_assert_eq(j.state, DB_SUCCEEDED);
    cr_assert_eq(j.worker_pid, 0);
    cr_assert_eq(j.finished_at, 9000);
    cr_assert_str_eq(j.progress, "{\"stage\":\"eval\",\"fraction\":0.5}");
    db_job_clear(&j);
    char *m;
    cr_assert_eq(db_metrics_get(db, id, &m, &err), 0);
    cr_assert_str_eq(m, "{\"ppl\":12.5}");
    free(m);
    db_artifact_t *a;
    size_t n;
    cr_assert_eq(db_artifacts_get(db, id, &a, &n, &err), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(a[0].path, "hf/config.json");   /* sorted by path */
    cr_assert_eq(a[1].size, 123);
    db_artifacts_free(a, n);

    /* A bad artifact (sha256 of the wrong length) rolls the whole success back. */
    int64_t id2 = add("t", 0, 3, 2);
    cr_assert_eq(claim(), id2);
    db_artifact_t bad = {.path = "x", .size = 1, .sha256 = "short"};
    cr_assert_lt(db_job_succeed(db, id2, 9000, 0, "{}", &bad, 1, &err), 0);
    cr_assert_eq(state_of(id2), DB_RUNNING);
    cr_assert_eq(db_metrics_get(db, id2, &m, &err), DB_ENOTFOUND);
}

Test(db, cancel_and_delete)
{
    open_db();
    int64_t q = add("q", 0, 3, 1), r = add("r", 9, 3, 2);
    cr_assert_eq(claim(), r);
    cr_assert_eq(db_job_cancel(db, q, 50, &err), DB_CANCELLED);
    cr_assert_eq(state_of(q), DB_CANCELLED);
    cr_assert_eq(db_job_cancel(db, q, 60, &err), DB_ECONFLICT);
    /* running: only flagged; the dispatcher stops the worker. */
    cr_assert_eq(db_job_cancel(db, r, 70, &err), DB_RUNNING);
    db_job_t j;
    cr_assert_eq(db_job_get(db, r, &j, &err), 0);
    cr_assert_eq(j.state, DB_RUNNING);
    cr_assert_eq(j.cancel_requested, 1);
    db_job_clear(&j);
    cr_assert_eq(db_job_delete(db, r, &err), DB_ECONFLICT);
    cr_assert_eq(db_job_finish(db, r, DB_CANCELLED, "cancelled by request", 80, 0, &err), 0);
    cr_assert_eq(db_job_delete(db, r, &err), 0);
    cr_assert_eq(db_job_get(db, r, &j, &err), DB_ENOTFOUND);
    cr_assert_eq(db_job_cancel(db, 999, 0, &err), DB_ENOTFOUND);
    cr_assert_eq(db_job_delete(db, 999, &err), DB_ENOTFOUND);
}

Test(db, list_newest_first_with_state_and_pagination)
{
    open_db();
    int64_t ids[7];
    for (int i = 0; i < 7; i++) ids[i] = add("j", 0, 3, i);
    cr_assert_eq(claim(), ids[0]);
    db_job_t *js;
    size_t n;
    cr_assert_eq(db_job_list(db, -1, 0, 3, &js, &n, &err), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(js[0].id, ids[6]);
    cr_assert_eq(js[2].id, ids[4]);
    int64_t after = js[2].id;
    db_jobs_free(js, n);
    cr_assert_eq(db_job_list(db, -1, after, 10, &js, &n, &err), 0);
    cr_assert_eq(n, 4);
    cr_assert_eq(js[0].id, ids[3]);
    db_jobs_free(js, n);
    cr_assert_eq(db_job_list(db, DB_RUNNING, 0, 10, &js, &n, &err), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(js[0].id, ids[0]);
    db_jobs_free(js, n);
}

Test(db, integrity_and_constraints)
{
    open_db();
    int64_t id = add("i", 0, 3, 1);
    cr_assert_eq(db_integrity_check(db, &err), 0, "%s", err.msg);
    db_close(db);
    db = NULL;
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, "PRAGMA foreign_keys=ON", NULL, NULL, NULL), SQLITE_OK);
    /* The CHECK constraints reject impossible rows. */
    cr_assert_neq(sqlite3_exec(h, "UPDATE job SET state='bogus'", NULL, NULL, NULL), SQLITE_OK);
    cr_assert_neq(sqlite3_exec(h, "UPDATE job SET spec='{not json'", NULL, NULL, NULL), SQLITE_OK);
    cr_assert_neq(sqlite3_exec(h, "INSERT INTO artifact VALUES (12345, 'x', 1, "
                                  "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')", NULL, NULL, NULL),
                 SQLITE_OK, "foreign key to a missing job");
    sqlite3_close(h);
    (void)id;
}
