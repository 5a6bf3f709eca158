/* db.h — lrqd's SQLite store: migrations and queue operations.
 *
 * One connection, WAL, busy_timeout, foreign keys on. lrqd is the only writer;
 * every read-modify-write starts with BEGIN IMMEDIATE (the write lock is taken
 * before the read, so a second connection cannot slip in between).
 * Functions return 0 / a positive count on success and a negative code on
 * failure with the message (including sqlite3_errmsg) in err. Timestamps are
 * unix milliseconds, passed in by the caller so that tests control time. */
#ifndef LRQ_DB_H
#define LRQ_DB_H
#include <stdint.h>
#include <stddef.h>
#include "lrq_err.h"

typedef struct db db_t;

enum db_state { DB_QUEUED = 0, DB_RUNNING, DB_SUCCEEDED, DB_FAILED, DB_CANCELLED, DB_NSTATES };
extern const char *const db_state_name[DB_NSTATES];
int db_state_parse(const char *s); /* -1 if unknown */
static inline int db_state_terminal(int st) { return st >= DB_SUCCEEDED; }

/* Extra codes (far from errno and from lrq_err.h). */
enum { DB_ENOTFOUND = -4101, DB_ECONFLICT = -4102 };

typedef struct db_job {
    int64_t id;
    char *name;          /* NULL if none */
    int state;           /* enum db_state */
    char *method;
    int priority, attempts, max_attempts;
    char *spec;          /* JSON text */
    int64_t created_at, started_at, finished_at; /* ms; 0 = null */
    char *progress;      /* JSON text or NULL */
    char *error;         /* NULL if none */
    int cancel_requested;
    int64_t worker_pid;  /* 0 = null */
    int64_t run_ms;
    char *owner;         /* submitting token's name, NULL without auth */
} db_job_t;

typedef struct db_artifact {
    char *path;
    int64_t size;
    char sha256[65];
} db_artifact_t;

/* A migration: schema/NNNN_name.sql. The build compiles every file of schema/
 * into db_builtin_schema (scripts/embed-schema.sh → schema.c). */
typedef struct db_migration { int num; const char *name; const char *sql; } db_migration_t;
extern const db_migration_t db_builtin_schema[];
extern const size_t db_builtin_schema_n;

/* Open (create) the database at path, apply the migrations newer than PRAGMA
 * user_version, each in its own BEGIN IMMEDIATE: those of schema_dir/NNNN_*.sql,
 * or the built-in ones when schema_dir is NULL or "". A database newer than
 * the newest migration → LRQ_ESCHEMA. */
int db_open(db_t **out, const char *path, const char *schema_dir, lrq_err_t *err);
void db_close(db_t *db);
int db_user_version(db_t *db);
/* "ok" → 0; else LRQ_EFORMAT with the first integrity_check message. */
int db_integrity_check(db_t *db, lrq_err_t *err);

int db_job_insert(db_t *db, const char *name, const char *owner, const char *method, int priority,
                  int max_attempts, const char *spec_json, int64_t now, int64_t *id_out, lrq_err_t *err);
/* 0 and *out filled, or DB_ENOTFOUND. */
int db_job_get(db_t *db, int64_t id, db_job_t *out, lrq_err_t *err);
void db_job_clear(db_job_t *j);
/* Newest first: ids < after (after <= 0: from the newest), state < 0 = any.
 * *jobs is a new array of *n entries (db_jobs_free). */
int db_job_list(db_t *db, int state, int64_t after, int limit, db_job_t **jobs, size_t *n, lrq_err_t *err);
void db_jobs_free(db_job_t *jobs, size_t n);
/* counts[DB_NSTATES] */
int db_job_counts(db_t *db, int64_t counts[DB_NSTATES], lrq_err_t *err);

/* Claim the next queued job (priority DESC, then oldest): → running, attempts+1,
 * started_at set on the first claim. Returns 1 and fills *out, or 0 if none. */
int db_job_claim(db_t *db, int64_t now, db_job_t *out, lrq_err_t *err);
int db_job_set_pid(db_t *db, int64_t id, int64_t pid, lrq_err_t *err);
/* Slurm executor: the running attempt's Slurm job id (schema/0003_slurm.sql);
 * set_slurm_id with 0 clears it, slurm_id reads 0 when NULL. */
int db_job_set_slurm_id(db_t *db, int64_t id, int64_t slurm_id, lrq_err_t *err);
int db_job_slurm_id(db_t *db, int64_t id, int64_t *slurm_id, lrq_err_t *err);
int db_job_set_progress(db_t *db, int64_t id, const char *progress_json, lrq_err_t *err);

/* running → succeeded, storing metrics (may be NULL) and artifacts atomically. */
int db_job_succeed(db_t *db, int64_t id, int64_t now, int64_t run_ms, const char *metrics_json,
                   const db_artifact_t *arts, size_t narts, lrq_err_t *err);
/* running → failed | cancelled with a message. */
int db_job_finish(db_t *db, int64_t id, int state, const char *error, int64_t now, int64_t run_ms, lrq_err_t *err);
/* running → queued. count_attempt=0 gives the attempt back (clean stop, daemon
 * restart). With count_attempt=1 and attempts >= max_attempts the job becomes
 * failed with `error` instead. Returns the new state (DB_QUEUED or DB_FAILED). */
int db_job_requeue(db_t *db, int64_t id, int count_attempt, const char *error, int64_t now, int64_t run_ms,
                   lrq_err_t *err);
/* queued → cancelled (returns DB_CANCELLED); running → cancel_requested=1
 * (returns DB_RUNNING); terminal → DB_ECONFLICT. */
int db_job_cancel(db_t *db, int64_t id, int64_t now, lrq_err_t *err);
/* Terminal jobs only (DB_ECONFLICT otherwise); artifacts and metrics cascade. */
int db_job_delete(db_t *db, int64_t id, lrq_err_t *err);

int db_artifacts_get(db_t *db, int64_t id, db_artifact_t **arts, size_t *n, lrq_err_t *err);
void db_artifacts_free(db_artifact_t *arts, size_t n);
/* *body is a new string or NULL (DB_ENOTFOUND). */
int db_metrics_get(db_t *db, int64_t id, char **body, lrq_err_t *err);

/* ---- progress history (schema/0002_progress.sql, docs/daemon.md "Progress history") ---- */
typedef struct db_psample {
    int64_t seq;               /* set by reads */
    int64_t job_id;
    char stage[16];
    int block;                 /* reconstruct: from 1; else 0 */
    int64_t k, t_ms;
    int64_t iteration;         /* -1 = none */
    double loss, eta_s, fraction;   /* NAN = none */
} db_psample_t;
/* A segment's decimation state (decim.h). */
typedef struct db_pseg {
    int64_t job_id;
    char stage[16];
    int block;
    int64_t seen, stride, cap;
} db_pseg_t;
typedef struct db_pblock {
    int64_t job_id;
    int block, blocks;         /* block from 1; blocks 0 = unknown */
    double loss_start, loss_end, seconds;   /* NAN = none */
    int64_t t_ms;
} db_pblock_t;

/* 0 and *out, or DB_ENOTFOUND when the segment has no stored state. */
int db_progress_seg_get(db_t *db, int64_t job_id, const char *stage, int block, db_pseg_t *out, lrq_err_t *err);
/* One transaction: insert the samples, store each segment's state and delete
 * its samples that are no longer kept (k % stride != 0 and k < seen - 1),
 * store the block rows. Rows of jobs that no longer exist are skipped. */
int db_progress_write(db_t *db, const db_psample_t *s, size_t ns, const db_pseg_t *segs, size_t nseg,
                      const db_pblock_t *b, size_t nb, lrq_err_t *err);
/* Samples with seq > since, oldest first, at most limit (*out: free()). */
int db_progress_list(db_t *db, int64_t job_id, int64_t since, int limit, db_psample_t **out, size_t *n,
                     lrq_err_t *err);
int db_progress_blocks(db_t *db, int64_t job_id, db_pblock_t **out, size_t *n, lrq_err_t *err);
/* Priority of a queued job (DB_ECONFLICT if it is not queued). */
int db_job_set_priority(db_t *db, int64_t id, int priority, lrq_err_t *err);

#endif
