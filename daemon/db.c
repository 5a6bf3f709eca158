/* db.c — SQLite store for lrqd (see db.h). */
#include "db.h"
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include "lrq_buf.h"
#include "lrq_fs.h"

struct db {
    sqlite3 *h;
    int version;
};

const char *const db_state_name[DB_NSTATES] = {"queued", "running", "succeeded", "failed", "cancelled"};

int db_state_parse(const char *s)
{
    for (int i = 0; i < DB_NSTATES; i++)
        if (s && !strcmp(s, db_state_name[i])) return i;
    return -1;
}

static int db__err(db_t *db, lrq_err_t *err, const char *what)
{
    return lrq_errf(err, LRQ_EIO, "sqlite: %s: %s", what, sqlite3_errmsg(db->h));
}

static int db__exec(db_t *db, const char *sql, lrq_err_t *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = lrq_errf(err, LRQ_EIO, "sqlite: %.60s: %s", sql, msg ? msg : sqlite3_errmsg(db->h));
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

static int db__prepare(db_t *db, const char *sql, sqlite3_stmt **st, lrq_err_t *err)
{
    if (sqlite3_prepare_v2(db->h, sql, -1, st, NULL) != SQLITE_OK) return db__err(db, err, "prepare");
    return 0;
}

static void db__rollback(db_t *db) { sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL); }

/* ---- migrations --------------------------------------------------------- */

typedef struct { int num; char name[256]; char *sql; } mig_t;

static int mig_cmp(const void *a, const void *b) { return ((const mig_t *)a)->num - ((const mig_t *)b)->num; }

static void mig_free(mig_t *m, int n)
{
    for (int i = 0; m && i < n; i++) free(m[i].sql);
    free(m);
}

/* Sort by number and refuse duplicates; `where` names the source in errors. */
static int mig_sort(mig_t *m, int n, const char *where, lrq_err_t *err)
{
    qsort(m, n, sizeof *m, mig_cmp);
    for (int i = 1; i < n; i++)
        if (m[i].num == m[i - 1].num)
            return lrq_errf(err, LRQ_EFORMAT, "%s: two migrations numbered %04d", where, m[i].num);
    return 0;
}

/* dir/NNNN_name.sql, read into memory, sorted by NNNN. */
static int db__load_dir(const char *dir, mig_t **out, int *n, lrq_err_t *err)
{
    DIR *d = opendir(dir);
    if (!d) return lrq_errf(err, -errno, "schema dir %s: %s", dir, strerror(errno));
    mig_t *m = NULL;
    int cnt = 0, rc = 0;
    size_t cap = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        const char *s = e->d_name;
        size_t len = strlen(s);
        if (len < 9 || len >= sizeof m->name || strcmp(s + len - 4, ".sql") || s[4] != '_') continue;
        int ok = 1, num = 0;
        for (int i = 0; i < 4; i++) { if (s[i] < '0' || s[i] > '9') ok = 0; else num = num * 10 + (s[i] - '0'); }
        if (!ok || num == 0) continue;
        if (lrq_grow(&m, &cap, (size_t)cnt + 1, sizeof *m)) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); break; }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, s);
        m[cnt].num = num;
        snprintf(m[cnt].name, sizeof m[cnt].name, "%s", s);
        if ((rc = lrq_read_file(path, &m[cnt].sql, NULL, 16 << 20, err))) break;
        cnt++;
    }
    closedir(d);
    if (!rc && cnt == 0) rc = lrq_errf(err, LRQ_ENOTFOUND, "schema dir %s: no NNNN_*.sql files", dir);
    if (!rc) {
        char where[4200];
        snprintf(where, sizeof where, "schema dir %s", dir);
        rc = mig_sort(m, cnt, where, err);
    }
    if (rc) { mig_free(m, cnt); return rc; }
    *out = m;
    *n = cnt;
    return 0;
}

/* The migrations compiled in from the files of schema/ (schema.c, generated). */
static int db__load_builtin(mig_t **out, int *n, lrq_err_t *err)
{
    int cnt = (int)db_builtin_schema_n;
    mig_t *m = calloc(cnt ? cnt : 1, sizeof *m);
    if (!m) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    for (int i = 0; i < cnt; i++) {
        m[i].num = db_builtin_schema[i].num;
        snprintf(m[i].name, sizeof m[i].name, "%s", db_builtin_schema[i].name);
        if (!(m[i].sql = strdup(db_builtin_schema[i].sql))) { mig_free(m, i); return lrq_errf(err, LRQ_ENOMEM, "out of memory"); }
    }
    int rc = cnt ? mig_sort(m, cnt, "built-in schema", err) : lrq_errf(err, LRQ_ENOTFOUND, "no built-in schema");
    if (rc) { mig_free(m, cnt); return rc; }
    *out = m;
    *n = cnt;
    return 0;
}

static int db__get_version(db_t *db, int *v, lrq_err_t *err)
{
    sqlite3_stmt *st;
    int rc = db__prepare(db, "PRAGMA user_version", &st, err);
    if (rc) return rc;
    if (sqlite3_step(st) != SQLITE_ROW) { rc = db__err(db, err, "user_version"); sqlite3_finalize(st); return rc; }
    *v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

static int db__migrate(db_t *db, const char *schema_dir, lrq_err_t *err)
{
    mig_t *m = NULL;
    int n = 0, rc, cur;
    rc = schema_dir && *schema_dir ? db__load_dir(schema_dir, &m, &n, err) : db__load_builtin(&m, &n, err);
    if (rc) return rc;
    if ((rc = db__get_version(db, &cur, err))) goto out;
    if (cur > m[n - 1].num) {
        rc = lrq_errf(err, LRQ_ESCHEMA, "database schema version %d is newer than this lrqd knows (%d); "
                      "refusing to start", cur, m[n - 1].num);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (m[i].num <= cur) continue;
        char pragma[64];
        if ((rc = db__exec(db, "BEGIN IMMEDIATE", err))) goto out;
        /* Re-check inside the write lock: another lrqd may have migrated meanwhile. */
        int again;
        if ((rc = db__get_version(db, &again, err))) { db__rollback(db); goto out; }
        if (again >= m[i].num) { db__rollback(db); cur = again; continue; }
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", m[i].num);
        if ((rc = db__exec(db, m[i].sql, err)) || (rc = db__exec(db, pragma, err)) || (rc = db__exec(db, "COMMIT", err))) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
            db__rollback(db);
            rc = lrq_errf(err, rc, "migration %s: %s", m[i].name, msg);
            goto out;
        }
        cur = m[i].num;
    }
    db->version = cur;
out:
    mig_free(m, n);
    return rc;
}

int db_open(db_t **out, const char *path, const char *schema_dir, lrq_err_t *err)
{
    *out = NULL;
    db_t *db = calloc(1, sizeof *db);
    if (!db) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    int rc;
    if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL)
        != SQLITE_OK) {
        rc = lrq_errf(err, LRQ_EIO, "sqlite: open %s: %s", path, db->h ? sqlite3_errmsg(db->h) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(db->h, 5000);
    sqlite3_extended_result_codes(db->h, 1);
    /* WAL is persistent; synchronous=FULL because writes are few (progress is
     * throttled) and a finished job must survive power loss too. */
    sqlite3_stmt *st;
    if ((rc = db__prepare(db, "PRAGMA journal_mode=WAL", &st, err))) goto fail;
    if (sqlite3_step(st) != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "wal")) {
        sqlite3_finalize(st);
        rc = lrq_errf(err, LRQ_EIO, "sqlite: %s: cannot enable WAL (network filesystem?)", path);
        goto fail;
    }
    sqlite3_finalize(st);
    if ((rc = db__exec(db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", err))) goto fail;
    if ((rc = db__migrate(db, schema_dir, err))) goto fail;
    *out = db;
    return 0;
fail:
    sqlite3_close(db->h);
    free(db);
    return rc;
}

void db_close(db_t *db)
{
    if (!db) return;
    sqlite3_close(db->h);
    free(db);
}

int db_user_version(db_t *db) { return db->version; }

int db_integrity_check(db_t *db, lrq_err_t *err)
{
    sqlite3_stmt *st;
    int rc = db__prepare(db, "PRAGMA integrity_check", &st, err);
    if (rc) return rc;
    if (sqlite3_step(st) != SQLITE_ROW) rc = db__err(db, err, "integrity_check");
    else if (strcmp((const char *)sqlite3_column_text(st, 0), "ok"))
        rc = lrq_errf(err, LRQ_EFORMAT, "integrity_check: %s", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return rc;
}

/* ---- jobs --------------------------------------------------------------- */

#define JOB_COLS "id, name, state, method, priority, attempts, max_attempts, spec, created_at, started_at, " \
                 "finished_at, progress, error, cancel_requested, worker_pid, run_ms, owner"

static char *col_strdup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

static int db__row_to_job(sqlite3_stmt *st, db_job_t *j)
{
    memset(j, 0, sizeof *j);
    j->id = sqlite3_column_int64(st, 0);
    j->name = col_strdup(st, 1);
    j->state = db_state_parse((const char *)sqlite3_column_text(st, 2));
    j->method = col_strdup(st, 3);
    j->priority = sqlite3_column_int(st, 4);
    j->attempts = sqlite3_column_int(st, 5);
    j->max_attempts = sqlite3_column_int(st, 6);
    j->spec = col_strdup(st, 7);
    j->created_at = sqlite3_column_int64(st, 8);
    j->started_at = sqlite3_column_int64(st, 9);
    j->finished_at = sqlite3_column_int64(st, 10);
    j->progress = col_strdup(st, 11);
    j->error = col_strdup(st, 12);
    j->cancel_requested = sqlite3_column_int(st, 13);
    j->worker_pid = sqlite3_column_int64(st, 14);
    j->run_ms = sqlite3_column_int64(st, 15);
    j->owner = col_strdup(st, 16);
    if (!j->method || !j->spec || (sqlite3_column_type(st, 1) != SQLITE_NULL && !j->name) ||
        (sqlite3_column_type(st, 11) != SQLITE_NULL && !j->progress) ||
        (sqlite3_column_type(st, 12) != SQLITE_NULL && !j->error) ||
        (sqlite3_column_type(st, 16) != SQLITE_NULL && !j->owner)) {
        db_job_clear(j);
        return LRQ_ENOMEM;
    }
    return 0;
}

void db_job_clear(db_job_t *j)
{
    free(j->name); free(j->method); free(j->spec); free(j->progress); free(j->error); free(j->owner);
    memset(j, 0, sizeof *j);
}

void db_jobs_free(db_job_t *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) db_job_clear(&jobs[i]);
    free(jobs);
}

int db_job_insert(db_t *db, const char *name, const char *owner, const char *method, int priority,
                  int max_attempts, const char *spec_json, int64_t now, int64_t *id_out, lrq_err_t *err)
{
    sqlite3_stmt *st;
    int rc = db__prepare(db, "INSERT INTO job (name, method, priority, max_attempts, spec, created_at, owner) "
                             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id", &st, err);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, method, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, priority);
    sqlite3_bind_int(st, 4, max_attempts);
    sqlite3_bind_text(st, 5, spec_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_text(st, 7, owner, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) rc = db__err(db, err, "insert job");
    else *id_out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

int db_job_get(db_t *db, int64_t id, db_job_t *out, lrq_err_t *err)
{
    sqlite3_stmt *st;
    int rc = db__prepare(db, "SELECT " JOB_COLS " FROM job WHERE id = ?1", &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) rc = db__row_to_job(st, out) ? lrq_errf(err, LRQ_ENOMEM, "out of memory") : 0;
    else if (s == SQLITE_DONE) rc = lrq_errf(err, DB_ENOTFOUND, "job %lld not found", (long long)id);
    else rc = db__err(db, err, "get job");
    sqlite3_finalize(st);
    return rc;
}

int db_job_list(db_t *db, int state, int64_t after, int limit, db_job_t **jobs, size_t *n, lrq_err_t *err)
{
    sqlite3_stmt *st;
    *jobs = NULL;
    *n = 0;
    int rc = db__prepare(db, "SELECT " JOB_COLS " FROM job WHERE (?1 IS NULL OR state = ?1) AND id < ?2 "
                             "ORDER BY id DESC LIMIT ?3", &st, err);
    if (rc) return rc;
    if (state >= 0 && state < DB_NSTATES) sqlite3_bind_text(st, 1, db_state_name[state], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after > 0 ? after : INT64_MAX);
    sqlite3_bind_int(st, 3, limit);
    db_job_t *arr = NULL;
    size_t cnt = 0, cap = 0;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (lrq_grow(&arr, &cap, cnt + 1, sizeof *arr)) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); break; }
        if (db__row_to_job(st, &arr[cnt])) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); break; }
        cnt++;
    }
    if (!rc && s != SQLITE_DONE) rc = db__err(db, err, "list jobs");
    sqlite3_finalize(st);
    if (rc) { db_jobs_free(arr, cnt); return rc; }
    *jobs = arr;
    *n = cnt;
    return 0;
}

int db_job_counts(db_t *db, int64_t counts[DB_NSTATES], lrq_err_t *err)
{
    sqlite3_stmt *st;
    memset(counts, 0, DB_NSTATES * sizeof counts[0]);
    int rc = db__prepare(db, "SELECT state, count(*) FROM job GROUP BY state", &st, err), s;
    if (rc) return rc;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        int k = db_state_parse((const char *)sqlite3_column_text(st, 0));
        if (k >= 0) counts[k] = sqlite3_column_int64(st, 1);
    }
    if (s != SQLITE_DONE) rc = db__err(db, err, "count jobs");
    sqlite3_finalize(st);
    return rc;
}

int db_job_claim(db_t *db, int64_t now, db_job_t *out, lrq_err_t *err)
{
    sqlite3_stmt *st;
    int rc = db__prepare(db,
        "UPDATE job SET state = 'running', attempts = attempts + 1, started_at = coalesce(started_at, ?1), "
        "       worker_pid = NULL, error = NULL "
        " WHERE id = (SELECT id FROM job WHERE state = 'queued' ORDER BY priority DESC, id LIMIT 1) "
        "RETURNING " JOB_COLS, &st, err);
    if (rc) return rc;
    if ((rc = db__exec(db, "BEGIN IMMEDIATE", err))) { sqlite3_finalize(st); return rc; }
    sqlite3_bind_int64(st, 1, now);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        rc = db__row_to_job(st, out) ? lrq_errf(err, LRQ_ENOMEM, "out of memory") : 1;
        /* One row at most; step to DONE so the statement completes before COMMIT. */
        if (sqlite3_step(st) != SQLITE_DONE && rc == 1) { db_job_clear(out); rc = db__err(db, err, "claim"); }
    } else if (s != SQLITE_DONE) {
        rc = db__err(db, err, "claim");
    }
    sqlite3_finalize(st);
    if (rc < 0) { db__rollback(db); return rc; }
    if ((s = db__exec(db, "COMMIT", err))) {
        if (rc == 1) db_job_clear(out);
        db__rollback(db);
        return s;
    }
    return rc;
}

/* One-statement update bound as ?1 = id, ?2 = text, ?3 = int (only those the
 * SQL names); returns the number of changed rows or an error. */
static int db__update(db_t *db, const char *sql, int64_t id, const char *text, int64_t a, lrq_err_t *err)
{
    sqlite3_stmt *st;
    int rc = db__prepare(db, sql, &st, err);
    if (rc) return rc;
    int np = sqlite3_bind_parameter_count(st);
    sqlite3_bind_int64(st, 1, id);
    if (np >= 2) sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    if (np >= 3) sqlite3_bind_int64(st, 3, a);
    if (sqlite3_step(st) != SQLITE_DONE) rc = db__err(db, err, "update");
    else rc = sqlite3_changes(db->h);
    sqlite3_finalize(st);
    return rc;
}

int db_job_set_pid(db_t *db, int64_t id, int64_t pid, lrq_err_t *err)
{
    int rc = db__update(db, "UPDATE job SET worker_pid = ?3 WHERE id = ?1 AND state = 'running'",
                        id, NULL, pid, err);
    return rc < 0 ? rc : 0;
}

/* The Slurm job id of the running attempt (0 clears it: a new attempt starts). */
int db_job_set_slurm_id(db_t *db, int64_t id, int64_t slurm_id, lrq_err_t *err)
{
    int rc = db__update(db, slurm_id > 0 ? "UPDATE job SET slurm_job_id = ?3 WHERE id = ?1 AND state = 'running'"
                                         : "UPDATE job SET slurm_job_id = NULL WHERE id = ?1",
                        id, NULL, slurm_id, err);
    return rc < 0 ? rc : 0;
}

int db_job_slurm_id(db_t *db, int64_t id, int64_t *slurm_id, lrq_err_t *err)
{
    sqlite3_stmt *st;
    int rc = db__prepare(db, "SELECT slurm_job_id FROM job WHERE id = ?1", &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, id);
    *slurm_id = 0;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) *slurm_id = sqlite3_column_int64(st, 0);
    else if (s == SQLITE_DONE) rc = lrq_errf(err, DB_ENOTFOUND, "job %lld not found", (long long)id);
    else rc = db__err(db, err, "slurm_job_id");
    sqlite3_finalize(st);
    return rc;
}

int db_job_set_progress(db_t *db, int64_t id, const char *progress_json, lrq_err_t *err)
{
    int rc = db__update(db, "UPDATE job SET progress = ?2 WHERE id = ?1 AND state = 'running'",
                        id, progress_json, 0, err);
    return rc < 0 ? rc : 0;
}

/* Read the state inside an open transaction. */
static int db__state_of(db_t *db, int64_t id, int *state, int *attempts, int *max_attempts, lrq_err_t *err)
{
    sqlite3_stmt *st;
    int rc = db__prepare(db, "SELECT state, attempts, max_attempts FROM job WHERE id = ?1", &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        *state = db_state_parse((const char *)sqlite3_column_text(st, 0));
        if (attempts) *attempts = sqlite3_column_int(st, 1);
        if (max_attempts) *max_attempts = sqlite3_column_int(st, 2);
    } else if (s == SQLITE_DONE) {
        rc = lrq_errf(err, DB_ENOTFOUND, "job %lld not found", (long long)id);
    } else {
        rc = db__err(db, err, "job state");
    }
    sqlite3_finalize(st);
    return rc;
}

static int db__finish_tx(db_t *db, int rc, lrq_err_t *err)
{
    if (rc < 0) { db__rollback(db); return rc; }
    int c = db__exec(db, "COMMIT", err);
    if (c) { db__rollback(db); return c; }
    return rc;
}

int db_job_succeed(db_t *db, int64_t id, int64_t now, int64_t run_ms, const char *metrics_json,
                   const db_artifact_t *arts, size_t narts, lrq_err_t *err)
{
    int rc, state;
    sqlite3_stmt *st = NULL;
    if ((rc = db__exec(db, "BEGIN IMMEDIATE", err))) return rc;
    if ((rc = db__state_of(db, id, &state, NULL, NULL, err))) goto out;
    if (state != DB_RUNNING) { rc = lrq_errf(err, DB_ECONFLICT, "job %lld is not running", (long long)id); goto out; }
    if ((rc = db__prepare(db, "UPDATE job SET state = 'succeeded', finished_at = ?2, run_ms = run_ms + ?3, "
                              "worker_pid = NULL, error = NULL WHERE id = ?1", &st, err))) goto out;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, run_ms);
    if (sqlite3_step(st) != SQLITE_DONE) { rc = db__err(db, err, "succeed"); goto out; }
    sqlite3_finalize(st);
    st = NULL;
    if (metrics_json) {
        if ((rc = db__prepare(db, "INSERT OR REPLACE INTO job_metrics (job_id, body) VALUES (?1, ?2)", &st, err)))
            goto out;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, metrics_json, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) { rc = db__err(db, err, "metrics"); goto out; }
        sqlite3_finalize(st);
        st = NULL;
    }
    if ((rc = db__update(db, "DELETE FROM artifact WHERE job_id = ?1", id, NULL, 0, err)) < 0) goto out;
    if ((rc = db__prepare(db, "INSERT INTO artifact (job_id, path, size, sha256) VALUES (?1, ?2, ?3, ?4)", &st,
                          err))) goto out;
    for (size_t i = 0; i < narts; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, arts[i].path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, arts[i].size);
        sqlite3_bind_text(st, 4, arts[i].sha256, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) { rc = db__err(db, err, "artifact"); goto out; }
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    return db__finish_tx(db, rc, err);
}

int db_job_finish(db_t *db, int64_t id, int state, const char *error, int64_t now, int64_t run_ms, lrq_err_t *err)
{
    int rc, cur;
    sqlite3_stmt *st = NULL;
    if (state != DB_FAILED && state != DB_CANCELLED)
        return lrq_errf(err, LRQ_ESPEC, "db_job_finish: state must be failed or cancelled");
    if ((rc = db__exec(db, "BEGIN IMMEDIATE", err))) return rc;
    if ((rc = db__state_of(db, id, &cur, NULL, NULL, err))) goto out;
    if (cur != DB_RUNNING) { rc = lrq_errf(err, DB_ECONFLICT, "job %lld is not running", (long long)id); goto out; }
    if ((rc = db__prepare(db, "UPDATE job SET state = ?2, error = ?3, finished_at = ?4, run_ms = run_ms + ?5, "
                              "worker_pid = NULL WHERE id = ?1", &st, err))) goto out;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, db_state_name[state], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, run_ms);
    if (sqlite3_step(st) != SQLITE_DONE) rc = db__err(db, err, "finish");
out:
    sqlite3_finalize(st);
    return db__finish_tx(db, rc, err);
}

int db_job_requeue(db_t *db, int64_t id, int count_attempt, const char *error, int64_t now, int64_t run_ms,
                   lrq_err_t *err)
{
    int rc, cur, attempts, maxa;
    sqlite3_stmt *st = NULL;
    if ((rc = db__exec(db, "BEGIN IMMEDIATE", err))) return rc;
    if ((rc = db__state_of(db, id, &cur, &attempts, &maxa, err))) goto out;
    if (cur != DB_RUNNING) { rc = lrq_errf(err, DB_ECONFLICT, "job %lld is not running", (long long)id); goto out; }
    int fail = count_attempt && attempts >= maxa;
    if ((rc = db__prepare(db, fail
            ? "UPDATE job SET state = 'failed', error = ?2, finished_at = ?3, run_ms = run_ms + ?4, "
              "worker_pid = NULL WHERE id = ?1"
            : "UPDATE job SET state = 'queued', error = ?2, run_ms = run_ms + ?4, worker_pid = NULL, "
              "attempts = attempts - ?5 WHERE id = ?1", &st, err))) goto out;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, error, -1, SQLITE_STATIC);
    if (fail) sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, run_ms);
    if (!fail) sqlite3_bind_int(st, 5, (!count_attempt && attempts > 0) ? 1 : 0);
    if (sqlite3_step(st) != SQLITE_DONE) rc = db__err(db, err, "requeue");
    else rc = fail ? DB_FAILED : DB_QUEUED;
out:
    sqlite3_finalize(st);
    return db__finish_tx(db, rc, err);
}

int db_job_cancel(db_t *db, int64_t id, int64_t now, lrq_err_t *err)
{
    int rc, cur;
    if ((rc = db__exec(db, "BEGIN IMMEDIATE", err))) return rc;
    if ((rc = db__state_of(db, id, &cur, NULL, NULL, err))) goto out;
    if (cur == DB_QUEUED) {
        rc = db__update(db, "UPDATE job SET state = 'cancelled', cancel_requested = 1, finished_at = ?3, "
                            "error = coalesce(?2, 'cancelled') WHERE id = ?1", id, NULL, now, err);
        if (rc >= 0) rc = DB_CANCELLED;
    } else if (cur == DB_RUNNING) {
        rc = db__update(db, "UPDATE job SET cancel_requested = 1 WHERE id = ?1", id, NULL, 0, err);
        if (rc >= 0) rc = DB_RUNNING;
    } else {
        rc = lrq_errf(err, DB_ECONFLICT, "job %lld is already %s", (long long)id, db_state_name[cur]);
    }
out:
    return db__finish_tx(db, rc, err);
}

int db_job_delete(db_t *db, int64_t id, lrq_err_t *err)
{
    int rc, cur;
    if ((rc = db__exec(db, "BEGIN IMMEDIATE", err))) return rc;
    if ((rc = db__state_of(db, id, &cur, NULL, NULL, err))) goto out;
    if (!db_state_terminal(cur)) {
        rc = lrq_errf(err, DB_ECONFLICT, "job %lld is %s; cancel it first", (long long)id, db_state_name[cur]);
        goto out;
    }
    rc = db__update(db, "DELETE FROM job WHERE id = ?1", id, NULL, 0, err);
    if (rc > 0) rc = 0;
out:
    return db__finish_tx(db, rc, err);
}

/* ---- progress history ----------------------------------------------------- */

static void db__bind_real(sqlite3_stmt *st, int i, double v)
{
    if (isnan(v)) sqlite3_bind_null(st, i);
    else sqlite3_bind_double(st, i, v);
}

static double db__col_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

int db_progress_seg_get(db_t *db, int64_t job_id, const char *stage, int block, db_pseg_t *out, lrq_err_t *err)
{
    sqlite3_stmt *st;
    int rc = db__prepare(db, "SELECT seen, stride, cap FROM progress_segment WHERE job_id = ?1 AND stage = ?2 "
                             "AND block = ?3", &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_text(st, 2, stage, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, block);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        out->job_id = job_id;
        snprintf(out->stage, sizeof out->stage, "%s", stage);
        out->block = block;
        out->seen = sqlite3_column_int64(st, 0);
        out->stride = sqlite3_column_int64(st, 1);
        out->cap = sqlite3_column_int64(st, 2);
    } else if (s == SQLITE_DONE) {
        rc = DB_ENOTFOUND;
    } else {
        rc = db__err(db, err, "progress segment");
    }
    sqlite3_finalize(st);
    return rc;
}

int db_progress_write(db_t *db, const db_psample_t *s, size_t ns, const db_pseg_t *segs, size_t nseg,
                      const db_pblock_t *b, size_t nb, lrq_err_t *err)
{
    sqlite3_stmt *ins = NULL, *seg = NULL, *del = NULL, *blk = NULL;
    int rc;
    if ((rc = db__exec(db, "BEGIN IMMEDIATE", err))) return rc;
    if ((rc = db__prepare(db, "INSERT OR IGNORE INTO progress_sample (job_id, stage, block, k, t_ms, iteration, loss, "
                              "eta_s, fraction) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 "
                              "WHERE EXISTS (SELECT 1 FROM job WHERE id = ?1)", &ins, err)) ||
        (rc = db__prepare(db, "INSERT OR REPLACE INTO progress_segment (job_id, stage, block, seen, stride, cap) "
                              "SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM job WHERE id = ?1)", &seg,
                          err)) ||
        (rc = db__prepare(db, "DELETE FROM progress_sample WHERE job_id = ?1 AND stage = ?2 AND block = ?3 "
                              "AND k < ?4 - 1 AND k % ?5 != 0", &del, err)) ||
        (rc = db__prepare(db, "INSERT OR REPLACE INTO progress_block (job_id, block, blocks, loss_start, loss_end, "
                              "seconds, t_ms) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 "
                              "WHERE EXISTS (SELECT 1 FROM job WHERE id = ?1)", &blk, err)))
        goto out;
    for (size_t i = 0; i < ns; i++) {
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, s[i].job_id);
        sqlite3_bind_text(ins, 2, s[i].stage, -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 3, s[i].block);
        sqlite3_bind_int64(ins, 4, s[i].k);
        sqlite3_bind_int64(ins, 5, s[i].t_ms);
        if (s[i].iteration < 0) sqlite3_bind_null(ins, 6);
        else sqlite3_bind_int64(ins, 6, s[i].iteration);
        db__bind_real(ins, 7, s[i].loss);
        db__bind_real(ins, 8, s[i].eta_s);
        db__bind_real(ins, 9, s[i].fraction);
        if (sqlite3_step(ins) != SQLITE_DONE) { rc = db__err(db, err, "insert progress sample"); goto out; }
    }
    for (size_t i = 0; i < nseg; i++) {
        sqlite3_reset(seg);
        sqlite3_bind_int64(seg, 1, segs[i].job_id);
        sqlite3_bind_text(seg, 2, segs[i].stage, -1, SQLITE_STATIC);
        sqlite3_bind_int(seg, 3, segs[i].block);
        sqlite3_bind_int64(seg, 4, segs[i].seen);
        sqlite3_bind_int64(seg, 5, segs[i].stride);
        sqlite3_bind_int64(seg, 6, segs[i].cap);
        if (sqlite3_step(seg) != SQLITE_DONE) { rc = db__err(db, err, "progress segment"); goto out; }
        sqlite3_reset(del);
        sqlite3_bind_int64(del, 1, segs[i].job_id);
        sqlite3_bind_text(del, 2, segs[i].stage, -1, SQLITE_STATIC);
        sqlite3_bind_int(del, 3, segs[i].block);
        sqlite3_bind_int64(del, 4, segs[i].seen);
        sqlite3_bind_int64(del, 5, segs[i].stride);
        if (sqlite3_step(del) != SQLITE_DONE) { rc = db__err(db, err, "thin progress"); goto out; }
    }
    for (size_t i = 0; i < nb; i++) {
        sqlite3_reset(blk);
        sqlite3_bind_int64(blk, 1, b[i].job_id);
        sqlite3_bind_int(blk, 2, b[i].block);
        if (b[i].blocks > 0) sqlite3_bind_int(blk, 3, b[i].blocks);
        else sqlite3_bind_null(blk, 3);
        db__bind_real(blk, 4, b[i].loss_start);
        db__bind_real(blk, 5, b[i].loss_end);
        db__bind_real(blk, 6, b[i].seconds);
        sqlite3_bind_int64(blk, 7, b[i].t_ms);
        if (sqlite3_step(blk) != SQLITE_DONE) { rc = db__err(db, err, "progress block"); goto out; }
    }
    rc = 0;
out:
    sqlite3_finalize(ins);
    sqlite3_finalize(seg);
    sqlite3_finalize(del);
    sqlite3_finalize(blk);
    return db__finish_tx(db, rc, err);
}

int db_progress_list(db_t *db, int64_t job_id, int64_t since, int limit, db_psample_t **out, size_t *n,
                     lrq_err_t *err)
{
    sqlite3_stmt *st;
    *out = NULL;
    *n = 0;
    int rc = db__prepare(db, "SELECT seq, stage, block, k, t_ms, iteration, loss, eta_s, fraction FROM progress_sample "
                             "WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3", &st, err), s;
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, since);
    sqlite3_bind_int(st, 3, limit);
    db_psample_t *a = NULL;
    size_t cnt = 0, cap = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (lrq_grow(&a, &cap, cnt + 1, sizeof *a)) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); break; }
        db_psample_t *p = &a[cnt++];
        memset(p, 0, sizeof *p);
        p->seq = sqlite3_column_int64(st, 0);
        p->job_id = job_id;
        const unsigned char *t = sqlite3_column_text(st, 1);
        snprintf(p->stage, sizeof p->stage, "%s", t ? (const char *)t : "");
        p->block = sqlite3_column_int(st, 2);
        p->k = sqlite3_column_int64(st, 3);
        p->t_ms = sqlite3_column_int64(st, 4);
        p->iteration = sqlite3_column_type(st, 5) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 5);
        p->loss = db__col_real(st, 6);
        p->eta_s = db__col_real(st, 7);
        p->fraction = db__col_real(st, 8);
    }
    if (!rc && s != SQLITE_DONE) rc = db__err(db, err, "progress samples");
    sqlite3_finalize(st);
    if (rc) { free(a); return rc; }
    *out = a;
    *n = cnt;
    return 0;
}

int db_progress_blocks(db_t *db, int64_t job_id, db_pblock_t **out, size_t *n, lrq_err_t *err)
{
    sqlite3_stmt *st;
    *out = NULL;
    *n = 0;
    int rc = db__prepare(db, "SELECT block, blocks, loss_start, loss_end, seconds, t_ms FROM progress_block "
                             "WHERE job_id = ?1 ORDER BY block", &st, err), s;
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, job_id);
    db_pblock_t *a = NULL;
    size_t cnt = 0, cap = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (lrq_grow(&a, &cap, cnt + 1, sizeof *a)) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); break; }
        db_pblock_t *p = &a[cnt++];
        p->job_id = job_id;
        p->block = sqlite3_column_int(st, 0);
        p->blocks = sqlite3_column_int(st, 1);
        p->loss_start = db__col_real(st, 2);
        p->loss_end = db__col_real(st, 3);
        p->seconds = db__col_real(st, 4);
        p->t_ms = sqlite3_column_int64(st, 5);
    }
    if (!rc && s != SQLITE_DONE) rc = db__err(db, err, "progress blocks");
    sqlite3_finalize(st);
    if (rc) { free(a); return rc; }
    *out = a;
    *n = cnt;
    return 0;
}

int db_job_set_priority(db_t *db, int64_t id, int priority, lrq_err_t *err)
{
    int rc, cur;
    if ((rc = db__exec(db, "BEGIN IMMEDIATE", err))) return rc;
    if ((rc = db__state_of(db, id, &cur, NULL, NULL, err))) goto out;
    if (cur != DB_QUEUED) {
        rc = lrq_errf(err, DB_ECONFLICT, "job %lld is %s; only a queued job's priority can change", (long long)id,
                      db_state_name[cur]);
        goto out;
    }
    rc = db__update(db, "UPDATE job SET priority = ?3 WHERE id = ?1", id, NULL, priority, err);
    if (rc > 0) rc = 0;
out:
    return db__finish_tx(db, rc, err);
}

int db_artifacts_get(db_t *db, int64_t id, db_artifact_t **arts, size_t *n, lrq_err_t *err)
{
    sqlite3_stmt *st;
    *arts = NULL;
    *n = 0;
    int rc = db__prepare(db, "SELECT path, size, sha256 FROM artifact WHERE job_id = ?1 ORDER BY path", &st, err), s;
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, id);
    db_artifact_t *a = NULL;
    size_t cnt = 0, cap = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (lrq_grow(&a, &cap, cnt + 1, sizeof *a)) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); break; }
        a[cnt].path = col_strdup(st, 0);
        if (!a[cnt].path) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); break; }
        a[cnt].size = sqlite3_column_int64(st, 1);
        snprintf(a[cnt].sha256, sizeof a[cnt].sha256, "%s", (const char *)sqlite3_column_text(st, 2));
        cnt++;
    }
    if (!rc && s != SQLITE_DONE) rc = db__err(db, err, "artifacts");
    sqlite3_finalize(st);
    if (rc) { db_artifacts_free(a, cnt); return rc; }
    *arts = a;
    *n = cnt;
    return 0;
}

void db_artifacts_free(db_artifact_t *arts, size_t n)
{
    for (size_t i = 0; i < n; i++) free(arts[i].path);
    free(arts);
}

int db_metrics_get(db_t *db, int64_t id, char **body, lrq_err_t *err)
{
    sqlite3_stmt *st;
    *body = NULL;
    int rc = db__prepare(db, "SELECT body FROM job_metrics WHERE job_id = ?1", &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        if (!(*body = col_strdup(st, 0))) rc = lrq_errf(err, LRQ_ENOMEM, "out of memory");
    } else if (s == SQLITE_DONE) {
        rc = lrq_errf(err, DB_ENOTFOUND, "job %lld has no metrics", (long long)id);
    } else {
        rc = db__err(db, err, "metrics");
    }
    sqlite3_finalize(st);
    return rc;
}
