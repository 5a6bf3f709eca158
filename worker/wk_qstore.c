/* wk_qstore.c — per-block files of the quantized model (wk_qstore.h; docs/memory.md, Block files).
 * Version 1 is the reconstruction's block checkpoint of earlier releases, unchanged (RTN, LRQ and
 * FlexRound still write it, so existing work dirs resume and older workers read new ones); version 2
 * adds a statistics method's per-linear metrics and low-rank factors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wk_qstore.h"
#include "wk_ckpt.h"
#include "eng_half.h"
#include "lrq_fs.h"

#define TAG_BHDR WK_TAG('B', 'H', 'D', 'R')
#define TAG_CODE(i) WK_TAG('Q', 'C', '0' + (i), 0)
#define TAG_SCAL(i) WK_TAG('Q', 'S', '0' + (i), 0)
#define TAG_ZERO(i) WK_TAG('Q', 'Z', '0' + (i), 0)
#define TAG_BFAC WK_TAG('B', 'F', 'A', 'C')
#define TAG_FL(i) WK_TAG('F', 'L', '0' + (i), 0)
#define TAG_FR(i) WK_TAG('F', 'R', '0' + (i), 0)
#define TAG_BMET WK_TAG('B', 'M', 'E', 'T')
#define BLK_VERSION 1        /* codes, scales, zeros */
#define BLK_VERSION_METHOD 2 /* + BMET, and BFAC/FLi/FRi when factored */

typedef struct blk_head {
    uint32_t version, block;
    double loss_start, loss_end, seconds;
    uint8_t spec_hash[32];
} blk_head_t;

typedef struct blk_fac {
    uint32_t bits;           /* storage of the factors: 16 (fp16 values) or 8 (int8 + fp16 scales) */
    uint32_t k[ENG_NLIN];    /* rank of each linear's factors, 0 = none */
} blk_fac_t;

static void qs__path(const wk_job_t *job, int b, char *path, size_t n)
{
    snprintf(path, n, "%s/ckpt/block-%03d.bin", job->workdir, b);
}

int wk_qstore_write(wk_job_t *job, int b, const wk_blk_meta_t *meta, const json_t *layers, lrq_err_t *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/ckpt", job->workdir);
    int rc = lrq_mkdirs(path, err);
    if (rc) return rc;
    qs__path(job, b, path, sizeof path);
    const eng_lowrank_t *lr = layers && job->lr ? &job->lr[b * ENG_NLIN] : NULL;
    blk_fac_t fh = {.bits = (uint32_t)lrq_spec_factor_bits(&job->spec)};
    for (int i = 0; i < ENG_NLIN; i++) {
        const eng_qlinear_t *q = &job->ql[b * ENG_NLIN + i];
        if (!q->q || (lr && lr[i].k && !lr[i].L))
            return lrq_errf(err, -EINVAL, "block %d linear %s: not in memory", b, eng_lin_short_name[i]);
        if (lr) fh.k[i] = (uint32_t)lr[i].k;
    }
    char *js = layers ? json_dumps(layers, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    if (layers && !js) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    wk_ckw_t w;
    if ((rc = wk_ckw_open(&w, path, err))) { free(js); return rc; }
    blk_head_t h = {.version = layers ? BLK_VERSION_METHOD : BLK_VERSION, .block = (uint32_t)b};
    if (meta) h.loss_start = meta->loss_start, h.loss_end = meta->loss_end, h.seconds = meta->seconds;
    wk_ckpt_spec_hash(job->spec_json, h.spec_hash);
    wk_ckw_put(&w, TAG_BHDR, &h, sizeof h);
    for (int i = 0; i < ENG_NLIN; i++) {
        const eng_qlinear_t *q = &job->ql[b * ENG_NLIN + i];
        wk_ckw_put(&w, TAG_CODE(i), q->q, (size_t)q->m * q->n);
        wk_ckw_put(&w, TAG_SCAL(i), q->scale, (size_t)q->m * q->G * sizeof(float));
        wk_ckw_put(&w, TAG_ZERO(i), q->zero, (size_t)q->m * q->G * sizeof(float));
    }
    if (lr) { /* the rounded values, as the per-linear checkpoints: int8 codes are re-derived exactly */
        wk_ckw_put(&w, TAG_BFAC, &fh, sizeof fh);
        for (int i = 0; i < ENG_NLIN; i++) {
            if (!lr[i].k) continue;
            wk_ckw_put(&w, TAG_FL(i), lr[i].L, (size_t)lr[i].m * lr[i].k * sizeof(float));
            wk_ckw_put(&w, TAG_FR(i), lr[i].R, (size_t)lr[i].k * lr[i].n * sizeof(float));
        }
    }
    if (js) wk_ckw_put(&w, TAG_BMET, js, strlen(js));
    free(js);
    return wk_ckw_commit(&w, path, 0, err);
}

/* The shapes eng_qlinear_init would give linear i of block b (no buffers). */
static void qs__shape(const wk_job_t *job, int b, int i, eng_qlinear_t *q)
{
    const eng_tensor_t *t = &job->model->layers[b].lin[i];
    int n = (int)t->cols, gs = job->qcfg.group_size ? job->qcfg.group_size : n;
    *q = (eng_qlinear_t){.m = (int)t->rows, .n = n, .bits = job->qcfg.bits, .gs = gs, .G = eng_quant_ngroups(n, gs),
                         .symmetric = job->qcfg.symmetric != 0, .scale_store = job->qcfg.scale_store};
}

/* Open block b's file and check its header (spec, version, block) and every section's size against
 * the model's shapes and the spec's factors; want_factors: a factored job's file must hold them.
 * r stays open on success. */
static int qs__open(wk_job_t *job, int b, wk_ckr_t *r, wk_blk_meta_t *meta, int want_factors, lrq_err_t *err)
{
    char path[4200];
    qs__path(job, b, path, sizeof path);
    int rc = wk_ckr_open(r, path, err);
    if (rc) return rc;
    size_t len;
    uint8_t hash[32];
    wk_ckpt_spec_hash(job->spec_json, hash);
    const blk_head_t *h = wk_ckr_get(r, TAG_BHDR, &len);
    if (!h || len != sizeof *h || (h->version != BLK_VERSION && h->version != BLK_VERSION_METHOD) ||
        h->block != (uint32_t)b || memcmp(h->spec_hash, hash, 32)) {
        wk_ckr_close(r);
        return lrq_errf(err, LRQ_EFORMAT, "%s: belongs to another job spec or version", path);
    }
    const blk_fac_t *fh = wk_ckr_get(r, TAG_BFAC, &len);
    /* final for the method: its metrics, and its factors when it has any */
    const int method = h->version == BLK_VERSION_METHOD && wk_ckr_get(r, TAG_BMET, NULL) &&
                       (fh || !lrq_spec_factored(&job->spec));
    if (meta) *meta = (wk_blk_meta_t){h->loss_start, h->loss_end, h->seconds, method};
    char why[160] = "";
    if (fh && (len != sizeof *fh || !lrq_spec_factored(&job->spec) || fh->bits != (uint32_t)lrq_spec_factor_bits(&job->spec)))
        snprintf(why, sizeof why, "its low-rank factor header does not match the spec's factors");
    else if (!fh && want_factors && lrq_spec_factored(&job->spec))
        snprintf(why, sizeof why, "holds no low-rank factors (the method has not finished this block)");
    for (int i = 0; i < ENG_NLIN && !why[0]; i++) {
        const eng_tensor_t *t = &job->model->layers[b].lin[i];
        size_t lc, ls, lz, m = (size_t)t->rows, n = (size_t)t->cols;
        size_t mg = m * (size_t)eng_quant_ngroups((int)n, job->qcfg.group_size) * sizeof(float);
        if (!wk_ckr_get(r, TAG_CODE(i), &lc) || !wk_ckr_get(r, TAG_SCAL(i), &ls) || !wk_ckr_get(r, TAG_ZERO(i), &lz) ||
            lc != m * n || ls != mg || lz != mg)
            snprintf(why, sizeof why, "linear %s has the wrong size", eng_lin_short_name[i]);
        else if (fh) {
            size_t k = fh->k[i], ll = 0, lr = 0;
            const void *pl = wk_ckr_get(r, TAG_FL(i), &ll), *pr = wk_ckr_get(r, TAG_FR(i), &lr);
            if (k != (size_t)lrq_spec_rank(&job->spec))
                snprintf(why, sizeof why, "linear %s has low-rank factors of rank %zu, the spec's is %d", eng_lin_short_name[i],
                         k, lrq_spec_rank(&job->spec));
            else if (k && (!pl || !pr || ll != m * k * sizeof(float) || lr != k * n * sizeof(float)))
                snprintf(why, sizeof why, "linear %s has low-rank factors of the wrong size (L %zu, R %zu bytes for %zux%zu, rank %zu)",
                         eng_lin_short_name[i], ll, lr, m, n, k);
        }
    }
    if (why[0]) {
        wk_ckr_close(r);
        return lrq_errf(err, LRQ_EFORMAT, "%s: %s", path, why);
    }
    for (int i = 0; job->ql && i < ENG_NLIN; i++) { /* the accounting's shapes of a block that stays on disk */
        eng_qlinear_t *q = &job->ql[b * ENG_NLIN + i];
        if (!q->q) qs__shape(job, b, i, q);
        eng_lowrank_t *f = job->lr ? &job->lr[b * ENG_NLIN + i] : NULL;
        if (f && fh && !f->L) *f = (eng_lowrank_t){.m = q->m, .n = q->n, .k = (int)fh->k[i], .bits = (int)fh->bits};
    }
    return 0;
}

int wk_qstore_check(wk_job_t *job, int b, wk_blk_meta_t *meta, lrq_err_t *err)
{
    wk_ckr_t r;
    int rc = qs__open(job, b, &r, meta, 0, err);
    if (!rc) wk_ckr_close(&r);
    return rc;
}

json_t *wk_qstore_layers(wk_job_t *job, int b, lrq_err_t *err)
{
    wk_ckr_t r;
    if (qs__open(job, b, &r, NULL, 0, err)) return NULL;
    size_t len = 0;
    const char *js = wk_ckr_get(&r, TAG_BMET, &len);
    json_error_t je;
    json_t *a = js ? json_loadb(js, len, 0, &je) : NULL;
    if (!js) lrq_errf(err, LRQ_EFORMAT, "block %d: its file holds no method metrics", b);
    else if (!a || !json_is_array(a) || json_array_size(a) != ENG_NLIN) {
        lrq_errf(err, LRQ_EFORMAT, "block %d: its method metrics are not an array of %d objects%s%s", b, ENG_NLIN,
                 a ? "" : ": ", a ? "" : je.text);
        json_decref(a);
        a = NULL;
    }
    wk_ckr_close(&r);
    return a;
}

int wk_qstore_read(wk_job_t *job, int b, eng_qlinear_t q[ENG_NLIN], eng_lowrank_t f[ENG_NLIN], wk_blk_meta_t *meta,
                   lrq_err_t *err)
{
    wk_ckr_t r;
    int rc = qs__open(job, b, &r, meta, f != NULL, err);
    if (rc) return rc;
    const blk_fac_t *fh = wk_ckr_get(&r, TAG_BFAC, NULL);
    for (int i = 0; i < ENG_NLIN && !rc; i++) {
        const eng_tensor_t *t = &job->model->layers[b].lin[i];
        eng_qlinear_close(&q[i]);
        if ((rc = eng_qlinear_init(&q[i], (int)t->rows, (int)t->cols, &job->qcfg, err))) break;
        memcpy(q[i].q, wk_ckr_get(&r, TAG_CODE(i), NULL), (size_t)q[i].m * q[i].n);
        memcpy(q[i].scale, wk_ckr_get(&r, TAG_SCAL(i), NULL), (size_t)q[i].m * q[i].G * sizeof(float));
        memcpy(q[i].zero, wk_ckr_get(&r, TAG_ZERO(i), NULL), (size_t)q[i].m * q[i].G * sizeof(float));
        if (!f) continue;
        eng_lowrank_close(&f[i]);
        int k = fh ? (int)fh->k[i] : 0;
        if ((rc = eng_lowrank_init(&f[i], q[i].m, q[i].n, k, fh ? (int)fh->bits : 16, err)) || !k) continue;
        memcpy(f[i].L, wk_ckr_get(&r, TAG_FL(i), NULL), (size_t)f[i].m * k * sizeof(float));
        memcpy(f[i].R, wk_ckr_get(&r, TAG_FR(i), NULL), (size_t)k * f[i].n * sizeof(float));
        eng_lowrank_round(&f[i]); /* idempotent on the stored values; derives the int8 codes and scales */
    }
    wk_ckr_close(&r);
    if (rc)
        for (int i = 0; i < ENG_NLIN; i++) {
            eng_qlinear_close(&q[i]);
            if (f) eng_lowrank_close(&f[i]);
        }
    return rc;
}

int wk_qstore_load(wk_job_t *job, int b, int factors, lrq_err_t *err)
{
    eng_lowrank_t *f = factors && job->lr ? &job->lr[b * ENG_NLIN] : NULL;
    int in_mem = job->ql[b * ENG_NLIN].q != NULL;
    for (int i = 0; f && in_mem && i < ENG_NLIN; i++) in_mem = !f[i].k || f[i].L;
    if (in_mem) return 0;
    return wk_qstore_read(job, b, &job->ql[b * ENG_NLIN], f, NULL, err);
}

void wk_qstore_drop(wk_job_t *job, int b)
{
    for (int i = 0; i < ENG_NLIN; i++) {
        eng_qlinear_close(&job->ql[b * ENG_NLIN + i]);
        if (!job->lr) continue;
        eng_lowrank_t *f = &job->lr[b * ENG_NLIN + i], shape = {.m = f->m, .n = f->n, .k = f->k, .bits = f->bits};
        eng_lowrank_close(f);
        *f = shape;
    }
}

static int qsrc__layer(wk_qsrc_t *s, int l, const eng_qlinear_t *lin[ENG_NLIN], const eng_lowrank_t *fac[ENG_NLIN],
                       lrq_err_t *err)
{
    const eng_qlinear_t *mem = &s->job->ql[l * ENG_NLIN];
    const eng_lowrank_t *mf = s->job->lr ? &s->job->lr[l * ENG_NLIN] : NULL;
    int in_mem = mem[0].q != NULL;
    for (int i = 0; mf && in_mem && i < ENG_NLIN; i++) in_mem = !mf[i].k || mf[i].L;
    if (!in_mem && s->layer != l) {
        s->layer = -1;
        int rc = wk_qstore_read(s->job, l, s->cur, s->curf, NULL, err);
        if (rc) return rc;
        s->layer = l;
    }
    for (int i = 0; i < ENG_NLIN; i++) {
        const eng_lowrank_t *f = in_mem ? (mf ? &mf[i] : NULL) : &s->curf[i];
        if (lin) lin[i] = in_mem ? &mem[i] : &s->cur[i];
        if (fac) fac[i] = f && f->k ? f : NULL;
    }
    return 0;
}

static int qsrc__qlayer(void *ctx, int l, const eng_qlinear_t *lin[ENG_NLIN], lrq_err_t *err)
{
    return qsrc__layer(ctx, l, lin, NULL, err);
}

void wk_qsrc_init(wk_qsrc_t *s, wk_job_t *job, eng_qsource_t *qs)
{
    memset(s, 0, sizeof *s);
    s->job = job;
    s->layer = -1;
    s->round_dtype = -1;
    if (qs) *qs = (eng_qsource_t){qsrc__qlayer, s};
}

void wk_qsrc_close(wk_qsrc_t *s)
{
    for (int i = 0; i < ENG_NLIN; i++) {
        eng_qlinear_close(&s->cur[i]);
        eng_lowrank_close(&s->curf[i]);
    }
    s->layer = -1;
}

int wk_qsrc_block(wk_qsrc_t *s, int l, const eng_qlinear_t *q[ENG_NLIN], const eng_lowrank_t *f[ENG_NLIN],
                  lrq_err_t *err)
{
    return qsrc__layer(s, l, q, f, err);
}

int wk_qsrc_linear(void *ctx, int l, int lin, float *W, lrq_err_t *err)
{
    wk_qsrc_t *s = ctx;
    const eng_qlinear_t *q[ENG_NLIN];
    const eng_lowrank_t *f[ENG_NLIN];
    int rc = qsrc__layer(s, l, q, f, err);
    if (rc) return rc;
    eng_qlinear_dequant(q[lin], W);
    if (s->merge && f[lin]) eng_lowrank_add_dense(f[lin], W);
    size_t n = (size_t)q[lin]->m * q[lin]->n;
    if (s->round_dtype == ENG_BF16)
        for (size_t e = 0; e < n; e++) W[e] = eng_bf16_to_f32(eng_f32_to_bf16(W[e]));
    else if (s->round_dtype == ENG_F16)
        for (size_t e = 0; e < n; e++) W[e] = eng_f16_to_f32(eng_f32_to_f16(W[e]));
    return 0;
}

int wk_qsrc_lowrank(void *ctx, int l, const eng_lowrank_t *f[ENG_NLIN], lrq_err_t *err)
{
    return qsrc__layer(ctx, l, NULL, f, err);
}
