/* hist.c — see hist.h. */
#include "hist.h"
#include "lrq_buf.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hist_init(hist_t *h, db_t *db)
{
    memset(h, 0, sizeof *h);
    h->db = db;
}

static void hist__free_job(hist_job_t *j)
{
    free(j->segs);
    free(j);
}

void hist_close(hist_t *h)
{
    for (hist_job_t *j = h->jobs, *nx; j; j = nx) { nx = j->next; hist__free_job(j); }
    free(h->pend);
    free(h->blk);
    memset(h, 0, sizeof *h);
}

static hist_job_t *hist__job(hist_t *h, int64_t id, int create)
{
    for (hist_job_t *j = h->jobs; j; j = j->next)
        if (j->id == id) return j;
    if (!create) return NULL;
    hist_job_t *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->id = id;
    j->next = h->jobs;
    h->jobs = j;
    return j;
}

/* The segment (stage, block) of job j: from memory, else from the db, else new. */
static hist_seg_t *hist__seg(hist_t *h, hist_job_t *j, const char *stage, int block, int64_t blocks, int *rcp,
                             lrq_err_t *err)
{
    for (size_t i = 0; i < j->nseg; i++)
        if (j->segs[i].block == block && !strncmp(j->segs[i].stage, stage, sizeof j->segs[i].stage - 1))
            return &j->segs[i];
    if (j->nseg >= HIST_MAX_SEGS) {
        *rcp = lrq_errf(err, LRQ_EFORMAT, "more than %d progress segments (stages and blocks)", HIST_MAX_SEGS);
        return NULL;
    }
    if (lrq_grow(&j->segs, &j->capseg, j->nseg + 1, sizeof *j->segs)) {
        *rcp = lrq_errf(err, LRQ_ENOMEM, "out of memory");
        return NULL;
    }
    hist_seg_t *s = &j->segs[j->nseg];
    memset(s, 0, sizeof *s);
    snprintf(s->stage, sizeof s->stage, "%s", stage);
    s->block = block;
    db_pseg_t row;
    int rc = db_progress_seg_get(h->db, j->id, s->stage, block, &row, err);
    if (rc == 0 && row.stride >= 1 && row.cap >= 2 && row.seen >= 0) {
        s->dc.seen = row.seen;
        s->dc.stride = row.stride;
        s->dc.cap = row.cap;
    } else if (rc == 0 || rc == DB_ENOTFOUND) {
        decim_init(&s->dc, decim_cap(block > 0, blocks));
    } else {
        *rcp = rc;
        return NULL;
    }
    j->nseg++;
    return s;
}

static double hist__num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

int hist_add(hist_t *h, int64_t job_id, json_t *p, int64_t now_ms, lrq_err_t *err)
{
    const char *stage = json_string_value(json_object_get(p, "stage"));
    if (!stage || !*stage) stage = "unknown";
    int is_block = !strcmp(stage, "reconstruct");
    json_int_t block = is_block ? json_integer_value(json_object_get(p, "block")) : 0;
    json_int_t blocks = json_integer_value(json_object_get(p, "blocks"));
    if (block < 0 || block > 1000000) block = 0;   /* not a block number: one segment for it */
    if (h->npend >= HIST_MAX_PENDING) { h->dropped++; return 0; }
    hist_job_t *j = hist__job(h, job_id, 1);
    if (!j || lrq_grow(&h->pend, &h->cappend, h->npend + 1, sizeof *h->pend)) {
        h->dropped++;
        return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    }
    int rc = 0;
    hist_seg_t *s = hist__seg(h, j, stage, (int)block, blocks, &rc, err);
    if (!s) { h->dropped++; return rc; }
    db_psample_t *x = &h->pend[h->npend++];
    memset(x, 0, sizeof *x);
    x->job_id = job_id;
    snprintf(x->stage, sizeof x->stage, "%s", s->stage);
    x->block = s->block;
    x->k = decim_push(&s->dc);
    x->t_ms = now_ms;
    json_t *it = json_object_get(p, "iteration");
    x->iteration = json_is_integer(it) && json_integer_value(it) >= 0 ? json_integer_value(it) : -1;
    x->loss = hist__num(p, "loss");
    x->eta_s = hist__num(p, "eta_s");
    x->fraction = hist__num(p, "fraction");
    s->dirty = 1;
    return 0;
}

int hist_block(hist_t *h, int64_t job_id, json_t *ev, int64_t now_ms, lrq_err_t *err)
{
    json_t *b = json_object_get(ev, "block");
    if (!json_is_integer(b) || json_integer_value(b) < 0 || json_integer_value(b) >= 1000000) return 0;
    if (lrq_grow(&h->blk, &h->capblk, h->nblk + 1, sizeof *h->blk))
        return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    db_pblock_t *x = &h->blk[h->nblk++];
    x->job_id = job_id;
    x->block = (int)json_integer_value(b) + 1;   /* events count from 0, progress lines from 1 */
    json_int_t L = json_integer_value(json_object_get(ev, "blocks"));
    x->blocks = L > 0 && L < 1000000 ? (int)L : 0;
    x->loss_start = hist__num(ev, "loss_start");
    x->loss_end = hist__num(ev, "loss_end");
    x->seconds = hist__num(ev, "seconds");
    x->t_ms = now_ms;
    return 0;
}

int hist_due(const hist_t *h, uint64_t now)
{
    return (h->npend || h->nblk) && now - h->last_flush >= HIST_FLUSH_MS;
}

static const hist_seg_t *hist__find_seg(const hist_job_t *j, const char *stage, int block)
{
    for (size_t i = 0; i < j->nseg; i++)
        if (j->segs[i].block == block && !strcmp(j->segs[i].stage, stage)) return &j->segs[i];
    return NULL;
}

int hist_flush(hist_t *h, uint64_t now, lrq_err_t *err)
{
    h->last_flush = now;
    /* Only the samples still kept: one that became off-grid before it was written is never written. */
    size_t m = 0, nseg = 0;
    for (size_t i = 0; i < h->npend; i++) {
        hist_job_t *j = hist__job(h, h->pend[i].job_id, 0);
        const hist_seg_t *s = j ? hist__find_seg(j, h->pend[i].stage, h->pend[i].block) : NULL;
        if (s && decim_keep(&s->dc, h->pend[i].k)) h->pend[m++] = h->pend[i];
    }
    h->npend = m;
    for (hist_job_t *j = h->jobs; j; j = j->next)
        for (size_t i = 0; i < j->nseg; i++) nseg += j->segs[i].dirty;
    int rc = 0;
    if (h->npend || h->nblk || nseg) {
        db_pseg_t *segs = nseg ? calloc(nseg, sizeof *segs) : NULL;
        if (nseg && !segs) {
            rc = lrq_errf(err, LRQ_ENOMEM, "out of memory");
        } else {
            size_t k = 0;
            for (hist_job_t *j = h->jobs; j; j = j->next)
                for (size_t i = 0; i < j->nseg; i++) {
                    hist_seg_t *s = &j->segs[i];
                    if (!s->dirty) continue;
                    segs[k].job_id = j->id;
                    snprintf(segs[k].stage, sizeof segs[k].stage, "%s", s->stage);
                    segs[k].block = s->block;
                    segs[k].seen = s->dc.seen;
                    segs[k].stride = s->dc.stride;
                    segs[k].cap = s->dc.cap;
                    k++;
                }
            rc = db_progress_write(h->db, h->pend, h->npend, segs, nseg, h->blk, h->nblk, err);
            free(segs);
        }
    }
    /* Written or not, what was pending is gone: history is not worth unbounded memory. */
    if (rc) h->dropped += (int64_t)h->npend;
    h->npend = h->nblk = 0;
    for (hist_job_t **pj = &h->jobs; *pj;) {
        hist_job_t *j = *pj;
        for (size_t i = 0; i < j->nseg; i++) j->segs[i].dirty = 0;
        if (j->done) { *pj = j->next; hist__free_job(j); }
        else pj = &j->next;
    }
    return rc;
}

void hist_job_done(hist_t *h, int64_t job_id)
{
    hist_job_t *j = hist__job(h, job_id, 0);
    if (j) j->done = 1;
}
