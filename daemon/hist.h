/* hist.h — each job's progress history: the worker's progress lines and block
 * events, thinned by decim.h and written to SQLite in batches (docs/daemon.md,
 * "Progress history").
 *
 * The event loop is single-threaded and every commit waits for an fsync
 * (synchronous=FULL), so samples are not written as they arrive: they collect
 * in memory and hist_flush writes everything pending in one transaction —
 * main.c calls it from its tick every HIST_FLUSH_MS, and at once when a job
 * changes state and at shutdown. A segment's decimation state lives in memory
 * while its job runs and is loaded from the database the first time a segment
 * is seen (after a restart, or on the next attempt), so thinning continues
 * where it stopped. Uses db.c only (no libuv): tests/unit can drive it. */
#ifndef LRQD_HIST_H
#define LRQD_HIST_H
#include <stdint.h>
#include <jansson.h>
#include "db.h"
#include "decim.h"

#define HIST_FLUSH_MS 2000
#define HIST_MAX_PENDING 20000   /* samples held between flushes before new ones are dropped */
#define HIST_MAX_SEGS 1024       /* segments of one job (stage names and block numbers come from the worker) */

typedef struct hist_seg {
    char stage[16];
    int block;
    decim_t dc;
    int dirty;                 /* state changed since the last flush */
} hist_seg_t;

typedef struct hist_job {
    struct hist_job *next;
    int64_t id;
    hist_seg_t *segs;
    size_t nseg, capseg;
    int done;                  /* forget after the next flush */
} hist_job_t;

typedef struct hist {
    db_t *db;                  /* borrowed */
    hist_job_t *jobs;
    db_psample_t *pend;
    size_t npend, cappend;
    db_pblock_t *blk;
    size_t nblk, capblk;
    uint64_t last_flush;       /* monotonic ms */
    int64_t dropped;           /* samples dropped (pending full, out of memory, db error) */
    int64_t dropped_logged;    /* main.c: the count it last reported */
} hist_t;

void hist_init(hist_t *h, db_t *db);
void hist_close(hist_t *h);    /* drops what is pending; flush first */
/* A progress object (the line without "event", borrowed) of job_id at now_ms (wall). */
int hist_add(hist_t *h, int64_t job_id, json_t *progress, int64_t now_ms, lrq_err_t *err);
/* A worker "block" event (the whole line, borrowed). */
int hist_block(hist_t *h, int64_t job_id, json_t *ev, int64_t now_ms, lrq_err_t *err);
/* The job changed state: its in-memory state is dropped at the next flush
 * (and reloaded from the db if it runs again). */
void hist_job_done(hist_t *h, int64_t job_id);
/* Anything pending and HIST_FLUSH_MS since the last flush? (now: monotonic ms) */
int hist_due(const hist_t *h, uint64_t now);
/* Write everything pending in one transaction. */
int hist_flush(hist_t *h, uint64_t now, lrq_err_t *err);
#endif
