/* wk_qstore.c — per-block files of the quantized model (wk_qstore.h). The layout is the
 * reconstruction's block checkpoint of earlier releases, unchanged: existing work dirs resume. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "wk_qstore.h"
#include "wk_ckpt.h"
#include "eng_half.h"
#include "lrq_fs.h"

#define TAG_BHDR WK_TAG('B', 'H', 'D', 'R')
#define TAG_CODE(i) WK_TAG('Q', 'C', '0' + (i), 0)
#define TAG_SCAL(i) WK_TAG('Q', 'S', '0' + (i), 0)
#define TAG_ZERO(i) WK_TAG('Q', 'Z', '0' + (i), 0)
#define BLK_VERSION 1

typedef struct blk_head {
    uint32_t version, block;
    double loss_start, loss_end, seconds;
    uint8_t spec_hash[32];
} blk_head_t;

int wk_qstore_streams(const wk_job_t *job) { return job->spec.method < LRQ_M_GPTQ; }

static void qs__path(const wk_job_t *job, int b, char *path, size_t n)
{
    snprintf(path, n, "%s/ckpt/block-%03d.bin", job->workdir, b);
}

int wk_qstore_write(wk_job_t *job, int b, const wk_blk_meta_t *meta, lrq_err_t *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/ckpt", job->workdir);
    int rc = lrq_mkdirs(path, err);
    if (rc) return rc;
    qs__path(job, b, path, sizeof path);
    wk_ckw_t w;
    if ((rc = wk_ckw_open(&w, path, err))) return rc;
    blk_head_t h = {.version = BLK_VERSION, .block = (uint32_t)b};
    if (meta) h.loss_start = meta->loss_start, h.loss_end = meta->loss_end, h.seconds = meta->seconds;
    wk_ckpt_spec_hash(job->spec_json, h.spec_hash);
    wk_ckw_put(&w, TAG_BHDR, &h, sizeof h);
    for (int i = 0; i < ENG_NLIN; i++) {
        const eng_qlinear_t *q = &job->ql[b * ENG_NLIN + i];
        if (!q->q) {
            wk_ckw_abort(&w);
            return lrq_errf(err, -EINVAL, "block %d linear %s: not in memory", b, eng_lin_short_name[i]);
        }
        wk_ckw_put(&w, TAG_CODE(i), q->q, (size_t)q->m * q->n);
        wk_ckw_put(&w, TAG_SCAL(i), q->scale, (size_t)q->m * q->G * sizeof(float));
        wk_ckw_put(&w, TAG_ZERO(i), q->zero, (size_t)q->m * q->G * sizeof(float));
    }
    return wk_ckw_commit(&w, path, 0, err);
}

/* Open block b's file and check its header (spec, version, block) and every section's size against
 * the model's shapes; r stays open on success. */
static int qs__open(wk_job_t *job, int b, wk_ckr_t *r, wk_blk_meta_t *meta, lrq_err_t *err)
{
    char path[4200];
    qs__path(job, b, path, sizeof path);
    int rc = wk_ckr_open(r, path, err);
    if (rc) return rc;
    size_t len;
    uint8_t hash[32];
    wk_ckpt_spec_hash(job->spec_json, hash);
    const blk_head_t *h = wk_ckr_get(r, TAG_BHDR, &len);
    if (!h || len != sizeof *h || h->version != BLK_VERSION || h->block != (uint32_t)b || memcmp(h->spec_hash, hash, 32)) {
        wk_ckr_close(r);
        return lrq_errf(err, LRQ_EFORMAT, "%s: belongs to another job spec or version", path);
    }
    if (meta) *meta = (wk_blk_meta_t){h->loss_start, h->loss_end, h->seconds};
    for (int i = 0; i < ENG_NLIN; i++) {
        const eng_tensor_t *t = &job->model->layers[b].lin[i];
        size_t lc, ls, lz, m = (size_t)t->rows, n = (size_t)t->cols;
        size_t mg = m * (size_t)eng_quant_ngroups((int)n, job->qcfg.group_size) * sizeof(float);
        if (!wk_ckr_get(r, TAG_CODE(i), &lc) || !wk_ckr_get(r, TAG_SCAL(i), &ls) || !wk_ckr_get(r, TAG_ZERO(i), &lz) ||
            lc != m * n || ls != mg || lz != mg) {
            wk_ckr_close(r);
            return lrq_errf(err, LRQ_EFORMAT, "%s: linear %s has the wrong size", path, eng_lin_short_name[i]);
        }
    }
    return 0;
}

int wk_qstore_check(wk_job_t *job, int b, wk_blk_meta_t *meta, lrq_err_t *err)
{
    wk_ckr_t r;
    int rc = qs__open(job, b, &r, meta, err);
    if (!rc) wk_ckr_close(&r);
    return rc;
}

int wk_qstore_read(wk_job_t *job, int b, eng_qlinear_t q[ENG_NLIN], wk_blk_meta_t *meta, lrq_err_t *err)
{
    wk_ckr_t r;
    int rc = qs__open(job, b, &r, meta, err);
    if (rc) return rc;
    for (int i = 0; i < ENG_NLIN && !rc; i++) {
        const eng_tensor_t *t = &job->model->layers[b].lin[i];
        eng_qlinear_close(&q[i]);
        if ((rc = eng_qlinear_init(&q[i], (int)t->rows, (int)t->cols, &job->qcfg, err))) break;
        memcpy(q[i].q, wk_ckr_get(&r, TAG_CODE(i), NULL), (size_t)q[i].m * q[i].n);
        memcpy(q[i].scale, wk_ckr_get(&r, TAG_SCAL(i), NULL), (size_t)q[i].m * q[i].G * sizeof(float));
        memcpy(q[i].zero, wk_ckr_get(&r, TAG_ZERO(i), NULL), (size_t)q[i].m * q[i].G * sizeof(float));
    }
    wk_ckr_close(&r);
    if (rc)
        for (int i = 0; i < ENG_NLIN; i++) eng_qlinear_close(&q[i]);
    return rc;
}

int wk_qstore_load(wk_job_t *job, int b, lrq_err_t *err)
{
    if (job->ql[b * ENG_NLIN].q) return 0;
    return wk_qstore_read(job, b, &job->ql[b * ENG_NLIN], NULL, err);
}

void wk_qstore_drop(wk_job_t *job, int b)
{
    if (!wk_qstore_streams(job)) return;
    for (int i = 0; i < ENG_NLIN; i++) eng_qlinear_close(&job->ql[b * ENG_NLIN + i]);
}

static int qsrc__layer(void *ctx, int l, const eng_qlinear_t *lin[ENG_NLIN], lrq_err_t *err)
{
    wk_qsrc_t *s = ctx;
    const eng_qlinear_t *mem = &s->job->ql[l * ENG_NLIN];
    if (mem[0].q) {
        for (int i = 0; i < ENG_NLIN; i++) lin[i] = &mem[i];
        return 0;
    }
    if (s->layer != l) {
        s->layer = -1;
        int rc = wk_qstore_read(s->job, l, s->cur, NULL, err);
        if (rc) return rc;
        s->layer = l;
    }
    for (int i = 0; i < ENG_NLIN; i++) lin[i] = &s->cur[i];
    return 0;
}

void wk_qsrc_init(wk_qsrc_t *s, wk_job_t *job, eng_qsource_t *qs)
{
    memset(s, 0, sizeof *s);
    s->job = job;
    s->layer = -1;
    s->round_dtype = -1;
    if (qs) *qs = (eng_qsource_t){qsrc__layer, s};
}

void wk_qsrc_close(wk_qsrc_t *s)
{
    for (int i = 0; i < ENG_NLIN; i++) eng_qlinear_close(&s->cur[i]);
    s->layer = -1;
}

int wk_qsrc_linear(void *ctx, int l, int lin, float *W, lrq_err_t *err)
{
    wk_qsrc_t *s = ctx;
    const eng_qlinear_t *q[ENG_NLIN];
    int rc = qsrc__layer(s, l, q, err);
    if (rc) return rc;
    eng_qlinear_dequant(q[lin], W);
    size_t n = (size_t)q[lin]->m * q[lin]->n;
    if (s->round_dtype == ENG_BF16)
        for (size_t e = 0; e < n; e++) W[e] = eng_bf16_to_f32(eng_f32_to_bf16(W[e]));
    else if (s->round_dtype == ENG_F16)
        for (size_t e = 0; e < n; e++) W[e] = eng_f16_to_f32(eng_f32_to_f16(W[e]));
    return 0;
}
