/* wk_methods.c — GPTQ, LQER / L²QER, ODLRI jobs (docs/algorithms.md, Calibration statistics,
 * GPTQ, LQER and L²QER, ODLRI; GPTQ: Frantar et al., arXiv 2210.17323; LQER: Zhang et al.,
 * arXiv 2402.02446; ODLRI: Cho et al., arXiv 2506.02077).
 *
 *   X ← embed(windows)                                        (N,T,D), memory or a work-dir file
 *   for block b:
 *       forward the FP block b on X: per linear input (4 distinct) H = Σ x xᵀ (double), mean |x|
 *       for each of the 7 linears: quantize (GPTQ | base + LQER | ODLRI) → job->ql, job->lr;
 *           checkpoint ckpt/lin-BBB-I.bin; a "layer" event; stop on signal
 *       block b → ckpt/block-BBB.bin (codes, factors, metrics; wk_qstore.h), its lin files removed
 *       X ← Block_b^{Q + LR}(X)                                 the next block sees quantized inputs
 *       block b leaves memory (job->ql / job->lr keep the shapes)
 * Only one block's statistics and results exist at a time (docs/memory.md). A resumed job skips the
 * blocks whose files are final (propagating X through them one at a time), reloads the finished
 * linears of the block in progress, recomputes its statistics from the same inputs (deterministic),
 * and continues with the first unfinished linear: the result is identical to an uninterrupted run. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "wk_methods.h"
#include "wk_ckpt.h"
#include "wk_qstore.h"
#include "eng_forward.h"
#include "eng_gptq.h"
#include "eng_lqer.h"
#include "eng_odlri.h"
#include "eng_safetensors.h"
#include "eng_st_gen.h"
#include "eng_half.h"
#include "eng_export.h"
#include "lrq_fs.h"

#define TAG_MHDR WK_TAG('M', 'H', 'D', 'R')
#define TAG_MJSN WK_TAG('M', 'J', 'S', 'N')
#define TAG_CODE WK_TAG('Q', 'C', 0, 0)
#define TAG_SCAL WK_TAG('Q', 'S', 0, 0)
#define TAG_ZERO WK_TAG('Q', 'Z', 0, 0)
#define TAG_FL WK_TAG('F', 'L', 0, 0)
#define TAG_FR WK_TAG('F', 'R', 0, 0)
#define MCK_VERSION 1

typedef struct m_head {
    uint32_t version, block, lin, rank;
    uint8_t spec_hash[32];
} m_head_t;

static const int m__in_dim_lin[4] = {ENG_Q, ENG_O, ENG_GATE, ENG_DOWN}; /* one linear per distinct input */
static int m__input_of(int lin) { return lin <= ENG_V ? 0 : lin == ENG_O ? 1 : lin <= ENG_UP ? 2 : 3; }

static int m__rank(const lrq_spec_t *s) { return lrq_spec_rank(s); }
static int m__fbits(const lrq_spec_t *s) { return lrq_spec_factor_bits(s); }

/* ---------------------------------------------------------------------------------------------
 * accounting */

double wk_layer_bits(const wk_job_t *job, int idx, double *weights)
{
    const eng_qlinear_t *q = &job->ql[idx];
    double mn = (double)q->m * q->n, g = (double)q->m * q->G;
    double bits = mn * q->bits + g * 16 + (q->symmetric ? 0 : g * q->bits); /* fp16 scales, b-bit zeros */
    if (job->lr && job->lr[idx].k) bits += eng_lowrank_storage_bits(q->m, q->n, job->lr[idx].k, job->lr[idx].bits);
    if (weights) *weights = mn;
    return mn > 0 ? bits / mn : 0;
}

void wk_bits_metrics(wk_job_t *job)
{
    int nl = job->model->cfg.n_layers * ENG_NLIN;
    double codes = 0, sz = 0, fac = 0, w = 0;
    for (int i = 0; i < nl; i++) {
        const eng_qlinear_t *q = &job->ql[i];
        double mn = (double)q->m * q->n, g = (double)q->m * q->G;
        codes += mn * q->bits;
        sz += g * 16 + (q->symmetric ? 0 : g * q->bits);
        if (job->lr && job->lr[i].k) fac += eng_lowrank_storage_bits(q->m, q->n, job->lr[i].k, job->lr[i].bits);
        w += mn;
    }
    if (w <= 0) return;
    json_object_set_new(job->metrics, "bits_per_weight",
                        json_pack("{s:f, s:f, s:f, s:f, s:I, s:s}", "model", (codes + sz + fac) / w, "codes", codes / w,
                                  "scales_zeros", sz / w, "factors", fac / w, "weights", (json_int_t)w, "counts",
                                  "the 7 linears of every block; fp16 scales, b-bit zeros (none when symmetric), "
                                  "factors at their storage width with their scales"));
}

void wk_lr_free(wk_job_t *job)
{
    if (!job->lr) return;
    for (int i = 0; job->model && i < job->model->cfg.n_layers * ENG_NLIN; i++) eng_lowrank_close(&job->lr[i]);
    free(job->lr);
    job->lr = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * checks */

int wk_methods_check(wk_job_t *job, lrq_err_t *err)
{
    const lrq_spec_t *s = &job->spec;
    const eng_layer_tensors_t *lt = &job->model->layers[0];
    int rank = m__rank(s);
    for (int i = 0; i < ENG_NLIN; i++) {
        int m = (int)lt->lin[i].rows, n = (int)lt->lin[i].cols, mn = m < n ? m : n;
        if (rank > mn)
            return lrq_err_field(err, s->method == LRQ_M_LQER ? "lqer.rank" : "odlri.rank",
                                 "is %d, above min(in, out) = %d of %s (%dx%d)", rank, mn, eng_lin_short_name[i], m, n);
        if (s->method == LRQ_M_ODLRI && s->odlri.init == LRQ_ODLRI_OUTLIER && s->odlri.outliers > n)
            return lrq_err_field(err, "odlri.outliers", "is %d, above the %d inputs of %s", s->odlri.outliers, n,
                                 eng_lin_short_name[i]);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * pipeline */

typedef struct mrun {
    wk_job_t *job;
    const eng_config_t *c;
    int N, T, D, chunk, L;
    int32_t *ids;
    size_t nids;
    wk_buf_t xbuf;              /* X: memory or an unlinked work-dir file (wk_ckpt.h) */
    float *X;                   /* (N,T,D) = xbuf.p */
    int x_mapped;
    float *tmp;                 /* (chunk,T,D) */
    eng_runner_t *runner;
    eng_block_ws_t *ws;
    eng_hstat_t st[4];
    float *W, *What[ENG_NLIN], *absm, *sc;
    uint8_t spec_hash[32];
    char ckdir[4096];
    json_t *layers;             /* metrics.method_layers */
} mrun_t;

/* X in memory, or beyond the cache limit (as wk_recon.c) in an unlinked work-dir file. */
static int m__xbuf(mrun_t *R, size_t nfloat, lrq_err_t *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/cache-xstat", R->job->workdir);
    R->x_mapped = nfloat * sizeof(float) > wk_cache_limit_bytes();
    int rc = wk_buf_new(&R->xbuf, nfloat, R->x_mapped ? path : NULL, err);
    R->X = R->xbuf.p;
    return rc;
}

static void m__close(mrun_t *R)
{
    wk_buf_free(&R->xbuf);
    for (int i = 0; i < 4; i++) eng_hstat_close(&R->st[i]);
    for (int i = 0; i < ENG_NLIN; i++) free(R->What[i]);
    free(R->W); free(R->absm); free(R->sc); free(R->tmp); free(R->ids);
    eng_block_ws_free(R->ws);
    eng_runner_free(R->runner);
    json_decref(R->layers);
}

static void m__ckpath(const mrun_t *R, int b, int i, char *out, size_t cap)
{
    snprintf(out, cap, "%s/lin-%03d-%d.bin", R->ckdir, b, i);
}

static int m__write_lin(mrun_t *R, int b, int i, json_t *meta, lrq_err_t *err)
{
    char path[4200];
    m__ckpath(R, b, i, path, sizeof path);
    const int idx = b * ENG_NLIN + i;
    const eng_qlinear_t *q = &R->job->ql[idx];
    const eng_lowrank_t *f = R->job->lr ? &R->job->lr[idx] : NULL;
    wk_ckw_t w;
    int rc = wk_ckw_open(&w, path, err);
    if (rc) return rc;
    m_head_t h = {.version = MCK_VERSION, .block = (uint32_t)b, .lin = (uint32_t)i, .rank = f ? (uint32_t)f->k : 0};
    memcpy(h.spec_hash, R->spec_hash, 32);
    char *js = json_dumps(meta, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!js) { wk_ckw_abort(&w); return lrq_errf(err, LRQ_ENOMEM, "out of memory"); }
    wk_ckw_put(&w, TAG_MHDR, &h, sizeof h);
    wk_ckw_put(&w, TAG_MJSN, js, strlen(js));
    free(js);
    wk_ckw_put(&w, TAG_CODE, q->q, (size_t)q->m * q->n);
    wk_ckw_put(&w, TAG_SCAL, q->scale, (size_t)q->m * q->G * sizeof(float));
    wk_ckw_put(&w, TAG_ZERO, q->zero, (size_t)q->m * q->G * sizeof(float));
    if (f && f->k) { /* the rounded values; int8 codes are re-derived exactly by eng_lowrank_round */
        wk_ckw_put(&w, TAG_FL, f->L, (size_t)f->m * f->k * sizeof(float));
        wk_ckw_put(&w, TAG_FR, f->R, (size_t)f->k * f->n * sizeof(float));
    }
    return wk_ckw_commit(&w, path, 0, err);
}

/* 1 = loaded, 0 = absent or unusable (logged), < 0 = error. */
static int m__read_lin(mrun_t *R, int b, int i, json_t *blk, lrq_err_t *err)
{
    char path[4200];
    m__ckpath(R, b, i, path, sizeof path);
    wk_ckr_t r;
    lrq_err_t e;
    int rc = wk_ckr_open(&r, path, &e);
    if (rc) {
        if (rc != LRQ_ENOTFOUND) wk_log(&R->job->proto, "checkpoint unusable: %s", e.msg);
        return 0;
    }
    const int idx = b * ENG_NLIN + i, rank = m__rank(&R->job->spec);
    const eng_tensor_t *t = &R->job->model->layers[b].lin[i];
    eng_qlinear_t *q = &R->job->ql[idx];
    size_t len, lc, ls, lz, ll = 0, lr = 0, lj;
    const m_head_t *h = wk_ckr_get(&r, TAG_MHDR, &len);
    const char *js = wk_ckr_get(&r, TAG_MJSN, &lj);
    if (!h || len != sizeof *h || h->version != MCK_VERSION || h->block != (uint32_t)b || h->lin != (uint32_t)i ||
        memcmp(h->spec_hash, R->spec_hash, 32) || (int)h->rank != (R->job->lr ? rank : 0) || !js) {
        wk_log(&R->job->proto, "checkpoint %s belongs to another job spec; ignoring it", path);
        wk_ckr_close(&r);
        return 0;
    }
    eng_qlinear_close(q);
    if ((rc = eng_qlinear_init(q, (int)t->rows, (int)t->cols, &R->job->qcfg, err))) { wk_ckr_close(&r); return rc; }
    const void *pc = wk_ckr_get(&r, TAG_CODE, &lc), *ps = wk_ckr_get(&r, TAG_SCAL, &ls), *pz = wk_ckr_get(&r, TAG_ZERO, &lz);
    const void *pl = wk_ckr_get(&r, TAG_FL, &ll), *pr = wk_ckr_get(&r, TAG_FR, &lr);
    size_t mg = (size_t)q->m * q->G * sizeof(float);
    int ok = pc && ps && pz && lc == (size_t)q->m * q->n && ls == mg && lz == mg;
    if (ok && R->job->lr) ok = pl && pr && ll == (size_t)q->m * rank * sizeof(float) && lr == (size_t)rank * q->n * sizeof(float);
    if (!ok) {
        wk_ckr_close(&r);
        return lrq_errf(err, LRQ_EFORMAT, "%s: sections have the wrong size", path);
    }
    memcpy(q->q, pc, lc);
    memcpy(q->scale, ps, ls);
    memcpy(q->zero, pz, lz);
    if (R->job->lr) {
        eng_lowrank_t *f = &R->job->lr[idx];
        eng_lowrank_close(f);
        if ((rc = eng_lowrank_init(f, q->m, q->n, rank, m__fbits(&R->job->spec), err))) { wk_ckr_close(&r); return rc; }
        memcpy(f->L, pl, ll);
        memcpy(f->R, pr, lr);
        eng_lowrank_round(f);
    }
    json_error_t je;
    json_t *meta = json_loadb(js, lj, 0, &je);
    if (meta) json_array_append_new(blk, meta);
    wk_ckr_close(&r);
    return 1;
}

/* Quantize linear i of block b from W (m,n) and the statistics of its input. */
static int m__quantize(mrun_t *R, int b, int i, json_t *meta, lrq_err_t *err)
{
    wk_job_t *job = R->job;
    const lrq_spec_t *s = &job->spec;
    const int idx = b * ENG_NLIN + i;
    const eng_tensor_t *t = &job->model->layers[b].lin[i];
    const int m = (int)t->rows, n = (int)t->cols;
    const eng_hstat_t *st = &R->st[m__input_of(i)];
    eng_qlinear_t *q = &job->ql[idx];
    eng_gptq_cfg_t g = {s->gptq.damp, s->gptq.block_size, s->gptq.act_order, s->gptq.static_groups};
    eng_gptq_info_t info = {0};
    int rc, gptq_used = 0;
    if ((rc = eng_tensor_to_f32(t, R->W, err))) return rc;
    if (s->method == LRQ_M_ODLRI) {
        eng_odlri_cfg_t o = {s->odlri.rank, s->odlri.outliers, s->odlri.iterations, (eng_odlri_init_t)s->odlri.init};
        double *errs = calloc((size_t)o.iterations, sizeof *errs);
        if (!errs) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
        eng_qlinear_close(q);
        if (!(rc = eng_qlinear_init(q, m, n, &job->qcfg, err)) &&
            !(rc = eng_lowrank_init(&job->lr[idx], m, n, o.rank, s->odlri.factor_bits, err)))
            rc = eng_odlri_run(job->pool, R->W, m, n, st->H, &job->qcfg, &g, &o, q, &job->lr[idx], errs, err);
        if (!rc) {
            json_t *a = json_array();
            for (int it = 0; it < o.iterations; it++) json_array_append_new(a, json_real(errs[it]));
            json_object_set_new(meta, "odlri_errors", a);
        }
        free(errs);
        if (rc) return rc;
    } else {
        int base = s->method == LRQ_M_GPTQ ? LRQ_BASE_GPTQ : s->lqer.base;
        if (base == LRQ_BASE_RTN || base == LRQ_BASE_GPTQ) {
            eng_qlinear_close(q);
            if ((rc = eng_qlinear_init(q, m, n, &job->qcfg, err))) return rc;
            if (base == LRQ_BASE_RTN) eng_quant_rtn(job->pool, R->W, &job->qcfg, q);
            else if ((rc = eng_gptq_quantize(job->pool, R->W, m, n, st->H, &job->qcfg, &g, q, &info, err))) return rc;
            gptq_used = base == LRQ_BASE_GPTQ;
        } /* lrq / flexround: job->ql[idx] holds the learned rounding already (wk_recon_run) */
        eng_qlinear_dequant(q, R->What[i]);
        json_object_set_new(meta, "act_error_base", json_real(eng_act_error(R->W, R->What[i], m, n, st->H)));
        if (s->method == LRQ_M_LQER) {
            float *E = R->tmp; /* (m,n) fits: tmp holds chunk·T·D ≥ … checked at setup */
            for (size_t k = 0; k < (size_t)m * n; k++) E[k] = R->W[k] - R->What[i][k];
            if (s->lqer.scaled) {
                eng_hstat_absmean(st, R->absm);
                eng_lqer_scale(R->absm, n, R->sc);
            }
            if ((rc = eng_lowrank_init(&job->lr[idx], m, n, s->lqer.rank, s->lqer.factor_bits, err))) return rc;
            /* auto: sgesdd up to min(m, n) = 1024, the randomized range finder above (docs/algorithms.md) */
            int mn = m < n ? m : n, rnd = s->lqer.svd == 2 || (s->lqer.svd == 0 && mn > 1024);
            json_object_set_new(meta, "svd", json_string(rnd ? "randomized" : "sgesdd"));
            if ((rc = eng_lqer_fit(E, s->lqer.scaled ? R->sc : NULL, rnd ? ENG_SVD_RANDOMIZED : ENG_SVD_EXACT, &job->lr[idx], err)))
                return rc;
        }
    }
    if (gptq_used) {
        json_object_set_new(meta, "gptq_damp", json_real(info.damp));
        if (info.dead) json_object_set_new(meta, "dead_inputs", json_integer(info.dead));
        if (info.retries) {
            char msg[256];
            snprintf(msg, sizeof msg, "layers.%d.%s: H + damp·I was not positive definite; damping raised %d× to %g", b,
                     eng_lin_short_name[i], info.retries, info.damp);
            wk_log(&job->proto, "warning: %s", msg);
            wk_emit(&job->proto, json_pack("{s:s, s:s, s:i, s:s}", "event", "warning", "message", msg, "block", b,
                                           "linear", eng_lin_short_name[i]));
            json_object_set_new(meta, "damp_retries", json_integer(info.retries));
        }
    }
    eng_qlinear_dequant(q, R->What[i]);
    if (job->lr) eng_lowrank_add_dense(&job->lr[idx], R->What[i]);
    json_object_set_new(meta, "act_error", json_real(eng_act_error(R->W, R->What[i], m, n, st->H)));
    return 0;
}

/* X ← Block_b^{Q + LR}(X) over all windows. */
static int m__propagate(mrun_t *R, int b, lrq_err_t *err)
{
    eng_block_w_t w;
    int rc = eng_runner_layer(R->runner, b, &w, err);
    if (rc) return rc;
    const eng_lowrank_t *lr[ENG_NLIN] = {0};
    for (int i = 0; i < ENG_NLIN; i++) {
        eng_qlinear_dequant(&R->job->ql[b * ENG_NLIN + i], R->What[i]);
        w.lin[i] = R->What[i];
        if (R->job->lr && R->job->lr[b * ENG_NLIN + i].k) lr[i] = &R->job->lr[b * ENG_NLIN + i];
    }
    eng_block_ws_set_lowrank(R->ws, lr);
    size_t per = (size_t)R->T * R->D;
    for (int s0 = 0; s0 < R->N; s0 += R->chunk) {
        int nb = R->N - s0 < R->chunk ? R->N - s0 : R->chunk;
        eng_block_forward(R->c, &w, eng_runner_rope(R->runner), R->X + s0 * per, R->tmp, R->ws, nb, R->T);
        memcpy(R->X + s0 * per, R->tmp, nb * per * sizeof(float));
    }
    eng_block_ws_set_lowrank(R->ws, NULL);
    return 0;
}

/* Statistics of the 4 linear inputs of FP block b on X. */
static int m__stats(mrun_t *R, int b, lrq_err_t *err)
{
    eng_block_w_t w;
    int rc = eng_runner_layer(R->runner, b, &w, err);
    if (rc) return rc;
    for (int k = 0; k < 4; k++) {
        eng_hstat_close(&R->st[k]);
        int n = (int)R->job->model->layers[b].lin[m__in_dim_lin[k]].cols;
        if ((rc = eng_hstat_init(&R->st[k], n, err))) return rc;
    }
    size_t per = (size_t)R->T * R->D;
    for (int s0 = 0; s0 < R->N; s0 += R->chunk) {
        int nb = R->N - s0 < R->chunk ? R->N - s0 : R->chunk;
        eng_block_forward(R->c, &w, eng_runner_rope(R->runner), R->X + s0 * per, R->tmp, R->ws, nb, R->T);
        for (int k = 0; k < 4; k++) eng_hstat_add(&R->st[k], eng_block_ws_input(R->ws, m__in_dim_lin[k]), (long)nb * R->T);
    }
    for (int k = 0; k < 4; k++) eng_hstat_finish(&R->st[k]);
    return 0;
}

/* 1 when block b's file holds this method's final results (their metrics appended to blk); 0 when
 * the block is still to be computed (no file, the reconstruction's file of a stacked job, or a file
 * that does not verify: logged with the reason, and recomputed from the statistics). */
static int m__block_final(mrun_t *R, int b, json_t *blk)
{
    wk_blk_meta_t bm;
    lrq_err_t e = {0};
    int rc = wk_qstore_check(R->job, b, &bm, &e);
    if (rc == LRQ_ENOTFOUND || (!rc && !bm.method)) return 0;
    json_t *a = rc ? NULL : wk_qstore_layers(R->job, b, &e);
    if (!a) {
        wk_log(&R->job->proto, "block %d: its file is not usable (%s); computing it again", b, e.msg);
        return 0;
    }
    json_array_extend(blk, a);
    json_decref(a);
    return 1;
}

/* The linears' checkpoints of a block whose file is written: that file holds them now. */
static void m__unlink_lins(mrun_t *R, int b)
{
    for (int i = 0; i < ENG_NLIN; i++) {
        char path[4200];
        m__ckpath(R, b, i, path, sizeof path);
        if (unlink(path) && errno != ENOENT) wk_log(&R->job->proto, "%s: cannot remove (%s)", path, strerror(errno));
    }
}

int wk_methods_run(wk_job_t *job, double f0, double f1, lrq_err_t *err)
{
    const lrq_spec_t *s = &job->spec;
    mrun_t R;
    memset(&R, 0, sizeof R);
    R.job = job;
    R.c = &job->model->cfg;
    R.T = s->calib_seq_len;
    R.D = R.c->dim;
    R.L = R.c->n_layers;
    int rc, nq = R.L * ENG_NLIN;
    if ((rc = wk_methods_check(job, err))) return rc;
    if (lrq_spec_factored(s) && !(job->lr = calloc((size_t)nq, sizeof *job->lr)))
        return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    double fm = f0;
    if (lrq_spec_uses_recon(s)) { /* stacked: the learned rounding first, then its residual */
        fm = f0 + (f1 - f0) * 0.8;
        if ((rc = wk_recon_run(job, f0, fm, err))) return rc;
    }
    if (!(R.layers = json_array())) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    wk_ckpt_spec_hash(job->spec_json, R.spec_hash);
    snprintf(R.ckdir, sizeof R.ckdir, "%s/ckpt", job->workdir);
    if ((rc = lrq_mkdirs(R.ckdir, err))) goto out;
    wk_progress(&job->proto, "calibrate", 0, 1, fm, NULL, 1);
    if ((rc = eng_data_load(s->calib_path, job->tok, R.c->vocab_size, &R.ids, &R.nids, err))) {
        if (err && !err->field[0]) snprintf(err->field, sizeof err->field, "calibration.path");
        goto out;
    }
    R.N = (int)(R.nids / (size_t)R.T);
    if (R.N > s->calib_samples) R.N = s->calib_samples;
    if (R.N < 1) {
        rc = lrq_err_field(err, "calibration.path", "holds %zu tokens, fewer than one window of seq_len %d", R.nids, R.T);
        goto out;
    }
    if (R.N < s->calib_samples)
        wk_log(&job->proto, "calibration data holds only %d windows of %d tokens (asked for %d); using %d", R.N, R.T,
               s->calib_samples, R.N);
    R.chunk = R.N < 8 ? R.N : 8;
    size_t per = (size_t)R.T * R.D, maxmn = 0, maxn = 0;
    for (int i = 0; i < ENG_NLIN; i++) {
        const eng_tensor_t *t = &job->model->layers[0].lin[i];
        size_t mn = (size_t)t->rows * t->cols;
        maxmn = mn > maxmn ? mn : maxmn;
        maxn = (size_t)t->cols > maxn ? (size_t)t->cols : maxn;
    }
    size_t tmpn = (size_t)R.chunk * per > maxmn ? (size_t)R.chunk * per : maxmn;
    if ((rc = eng_runner_new(job->model, R.chunk, R.T, job->pool, &R.runner, err))) goto out;
    R.ws = eng_block_ws_new(R.c, R.chunk, R.T, 0, job->pool);
    R.tmp = malloc(tmpn * sizeof(float));
    R.W = malloc(maxmn * sizeof(float));
    R.absm = malloc(maxn * sizeof(float));
    R.sc = malloc(maxn * sizeof(float));
    int okw = R.ws && R.tmp && R.W && R.absm && R.sc;
    for (int i = 0; i < ENG_NLIN && okw; i++) /* Ŵ of linear i only: its own shape (every block has the same) */
        okw = (R.What[i] = malloc(eng_tensor_numel(&job->model->layers[0].lin[i]) * sizeof(float))) != NULL;
    if (!okw) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory for block workspaces"); goto out; }
    if ((rc = m__xbuf(&R, (size_t)R.N * per, err))) goto out;
    size_t hbytes = 0;
    for (int k = 0; k < 4; k++) {
        size_t n = (size_t)job->model->layers[0].lin[m__in_dim_lin[k]].cols;
        hbytes += n * n * sizeof(double);
    }
    wk_log(&job->proto, "calibration statistics: %d samples × %d tokens; activations %zu MiB %s; one block's H %zu MiB",
           R.N, R.T, R.xbuf.bytes >> 20, R.x_mapped ? "in a work-dir file (mmap)" : "in memory", hbytes >> 20);
    for (int s0 = 0; s0 < R.N; s0 += R.chunk) {
        int nb = R.N - s0 < R.chunk ? R.N - s0 : R.chunk;
        if ((rc = eng_runner_embed(R.runner, R.ids + (size_t)s0 * R.T, nb, R.T, R.X + s0 * per, err))) goto out;
    }
    if (!json_object_get(job->metrics, "calibration"))
        json_object_set_new(job->metrics, "calibration", json_pack("{s:i, s:i, s:I}", "samples", R.N, "seq_len", R.T,
                                                                   "tokens_available", (json_int_t)R.nids));
    const char *stage = lrq_method_name[s->method];
    int resumed = 0;
    for (int b = 0; b < R.L; b++) {
        json_t *blk = json_array(); /* block b's per-linear metrics, into its file and metrics.method_layers */
        if (!blk) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); goto out; }
        if (m__block_final(&R, b, blk)) { /* finished before a restart: its file holds it */
            if (!resumed) wk_emit(&job->proto, json_pack("{s:s, s:i, s:i}", "event", "resume", "block", b, "linear", ENG_NLIN));
            resumed = 1;
            json_array_extend(R.layers, blk);
            json_decref(blk);
            m__unlink_lins(&R, b);
            if (b + 1 < R.L) {
                if ((rc = wk_qstore_load(job, b, 1, err)) || (rc = m__propagate(&R, b, err))) goto out;
                wk_qstore_drop(job, b);
            }
            eng_model_release_layer(job->model, b);
            continue;
        }
        wk_blk_meta_t bm = {0};
        if (lrq_spec_uses_recon(s) && /* stacked: the reconstruction's codes (its block file) are the base */
            (rc = wk_qstore_read(job, b, &job->ql[b * ENG_NLIN], NULL, &bm, err))) { json_decref(blk); goto out; }
        bm.method = 1;
        int done[ENG_NLIN], ndone = 0;
        for (int i = 0; i < ENG_NLIN; i++) {
            if ((rc = m__read_lin(&R, b, i, blk, err)) < 0) { json_decref(blk); goto out; }
            done[i] = rc;
            ndone += rc;
            rc = 0;
        }
        if (ndone && !resumed) {
            wk_emit(&job->proto, json_pack("{s:s, s:i, s:i}", "event", "resume", "block", b, "linear", ndone));
            resumed = 1;
        }
        if (ndone < ENG_NLIN) {
            resumed = 1; /* later blocks have no checkpoint of their own to announce */
            double ts = wk_now();
            if ((rc = m__stats(&R, b, err))) { json_decref(blk); goto out; }
            wk_log(&job->proto, "block %d/%d: statistics of %ld tokens (%.2f s)", b + 1, R.L, R.st[0].rows, wk_now() - ts);
        }
        for (int i = 0; i < ENG_NLIN; i++) {
            if (done[i]) continue;
            double t0 = wk_now();
            char name[64];
            snprintf(name, sizeof name, "layers.%d.%s", b, eng_lin_short_name[i]);
            json_t *meta = json_pack("{s:s}", "name", name);
            if ((rc = m__quantize(&R, b, i, meta, err))) { json_decref(meta); json_decref(blk); goto out; }
            json_object_set_new(meta, "seconds", json_real(wk_now() - t0));
            if ((rc = m__write_lin(&R, b, i, meta, err))) { json_decref(meta); json_decref(blk); goto out; }
            wk_emit(&job->proto, json_pack("{s:s, s:s, s:i, s:i, s:O}", "event", "layer", "name", name, "block", b, "linear",
                                           i, "metrics", meta));
            json_array_append_new(blk, meta);
            int k = b * ENG_NLIN + i + 1;
            wk_progress(&job->proto, stage, k, nq, fm + (f1 - fm) * k / nq,
                        json_pack("{s:i, s:i, s:s}", "block", b + 1, "blocks", R.L, "layer", name), k == nq);
            if (*job->stop && i + 1 < ENG_NLIN) {
                json_decref(blk);
                rc = lrq_errf(err, LRQ_ECANCEL, "stopped by signal after %s (checkpoint written)", name);
                goto out;
            }
        }
        /* The block is final: to its file (one copy on disk: the linears' files go), out of memory
         * once the next block's input is computed. */
        rc = wk_qstore_write(job, b, &bm, blk, err);
        json_array_extend(R.layers, blk);
        json_decref(blk);
        if (rc) goto out;
        m__unlink_lins(&R, b);
        if (b + 1 < R.L && (rc = m__propagate(&R, b, err))) goto out;
        wk_qstore_drop(job, b);
        eng_model_release_layer(job->model, b);
        if (*job->stop) {
            rc = lrq_errf(err, LRQ_ECANCEL, "stopped by signal after block %d (checkpoint written)", b);
            goto out;
        }
    }
    json_object_set_new(job->metrics, "method_layers", R.layers);
    R.layers = NULL;
    json_t *cfg = json_object();
    if (s->method == LRQ_M_GPTQ || s->method == LRQ_M_ODLRI || (s->method == LRQ_M_LQER && s->lqer.base == LRQ_BASE_GPTQ))
        json_object_set_new(cfg, "gptq", json_pack("{s:f, s:i, s:b, s:b}", "damp", s->gptq.damp, "block_size",
                                                   s->gptq.block_size, "act_order", s->gptq.act_order, "static_groups",
                                                   s->gptq.static_groups));
    if (s->method == LRQ_M_LQER)
        json_object_set_new(cfg, "lqer", json_pack("{s:i, s:b, s:i, s:s, s:s}", "rank", s->lqer.rank, "scaled",
                                                   s->lqer.scaled, "factor_bits", s->lqer.factor_bits, "base",
                                                   lrq_lqer_base_name[s->lqer.base], "svd", lrq_lqer_svd_name[s->lqer.svd]));
    if (s->method == LRQ_M_ODLRI)
        json_object_set_new(cfg, "odlri", json_pack("{s:i, s:i, s:s, s:i, s:i}", "rank", s->odlri.rank, "outliers",
                                                    s->odlri.outliers, "init", lrq_odlri_init_name[s->odlri.init],
                                                    "iterations", s->odlri.iterations, "factor_bits", s->odlri.factor_bits));
    json_object_set_new(job->metrics, "method_config", cfg);
out:
    m__close(&R);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * factored artifact (docs/formats.md, Factored artifact) */

enum { F_CODES, F_SCALES, F_ZEROS, F_A8, F_B8, F_AS, F_BS, F_A16, F_B16, F_NKIND };

typedef struct m_fill {
    wk_qsrc_t *src;
    int l, i, kind;
} m_fill_t;

/* eng_st_fill_fn: one tensor of linear (l, i), generated from its block when the writer reaches it
 * (tensors are written in the order added, so each block file is read once). */
static int m__fill(void *ctx, void *dst, size_t nbytes, lrq_err_t *err)
{
    const m_fill_t *x = ctx;
    const eng_qlinear_t *ql[ENG_NLIN];
    const eng_lowrank_t *fl[ENG_NLIN];
    int rc = wk_qsrc_block(x->src, x->l, ql, fl, err);
    if (rc) return rc;
    const eng_qlinear_t *q = ql[x->i];
    const eng_lowrank_t *f = fl[x->i];
    if (x->kind >= F_A8 && !f) return lrq_errf(err, LRQ_EFORMAT, "block %d linear %s: no low-rank factors", x->l, eng_lin_short_name[x->i]);
    size_t mg = (size_t)q->m * q->G;
    uint16_t *h = dst;
    switch (x->kind) {
    case F_CODES: memcpy(dst, q->q, nbytes); break;
    case F_SCALES: memcpy(dst, q->scale, nbytes); break;
    case F_ZEROS: for (size_t k = 0; k < mg; k++) ((uint8_t *)dst)[k] = (uint8_t)q->zero[k]; break;
    case F_A8: memcpy(dst, f->Rq, nbytes); break;
    case F_B8: memcpy(dst, f->Lq, nbytes); break;
    case F_AS: for (int k = 0; k < f->k; k++) h[k] = eng_f32_to_f16(f->Rs[k]); break;
    case F_BS: for (int k = 0; k < f->m; k++) h[k] = eng_f32_to_f16(f->Ls[k]); break;
    case F_A16: for (size_t k = 0; k < (size_t)f->k * f->n; k++) h[k] = eng_f32_to_f16(f->R[k]); break;
    case F_B16: for (size_t k = 0; k < (size_t)f->m * f->k; k++) h[k] = eng_f32_to_f16(f->L[k]); break;
    }
    return 0;
}

int wk_methods_export(wk_job_t *job, lrq_err_t *err)
{
    char dir[4096], path[4200], nm[200];
    snprintf(dir, sizeof dir, "%s/artifacts/factored", job->workdir);
    int rc = lrq_mkdirs(dir, err);
    if (rc) return rc;
    const eng_config_t *c = &job->model->cfg;
    int nq = c->n_layers * ENG_NLIN;
    wk_qsrc_t src;
    wk_qsrc_init(&src, job, NULL);
    eng_st_writer_t *w = eng_st_writer_new();
    m_fill_t *fx = calloc((size_t)nq * F_NKIND, sizeof *fx);
    if (!w || !fx) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); goto out; }
    /* Shapes from job->ql / job->lr (kept when the blocks left memory); the data from the store. */
    for (int l = 0; l < c->n_layers && !rc; l++)
        for (int i = 0; i < ENG_NLIN && !rc; i++) {
            int idx = l * ENG_NLIN + i;
            const eng_qlinear_t *q = &job->ql[idx];
            const eng_lowrank_t *f = job->lr ? &job->lr[idx] : NULL;
            if (q->m <= 0 || q->n <= 0) { rc = lrq_errf(err, -EINVAL, "block %d linear %s: not quantized", l, eng_lin_short_name[i]); break; }
            m_fill_t *x = &fx[(size_t)idx * F_NKIND];
            for (int k = 0; k < F_NKIND; k++) x[k] = (m_fill_t){&src, l, i, k};
            char base[128];
            snprintf(base, sizeof base, "model.layers.%d.%s", l, eng_lin_hf_name[i]);
            int64_t sh[2] = {q->m, q->n}, sg[2] = {q->m, q->G};
            size_t mg = (size_t)q->m * q->G;
            snprintf(nm, sizeof nm, "%s.codes", base);
            eng_st_writer_add_gen(w, nm, "U8", 2, sh, (size_t)q->m * q->n, m__fill, &x[F_CODES]);
            snprintf(nm, sizeof nm, "%s.scales", base);
            eng_st_writer_add_gen(w, nm, "F32", 2, sg, mg * sizeof(float), m__fill, &x[F_SCALES]);
            snprintf(nm, sizeof nm, "%s.zeros", base);
            eng_st_writer_add_gen(w, nm, "U8", 2, sg, mg, m__fill, &x[F_ZEROS]);
            if (!f || !f->k) continue;
            int64_t sa[2] = {f->k, f->n}, sb[2] = {f->m, f->k}, s1a[1] = {f->k}, s1b[1] = {f->m};
            if (f->bits == 8) {
                snprintf(nm, sizeof nm, "%s.lora_A", base);
                eng_st_writer_add_gen(w, nm, "I8", 2, sa, (size_t)f->k * f->n, m__fill, &x[F_A8]);
                snprintf(nm, sizeof nm, "%s.lora_B", base);
                eng_st_writer_add_gen(w, nm, "I8", 2, sb, (size_t)f->m * f->k, m__fill, &x[F_B8]);
                snprintf(nm, sizeof nm, "%s.lora_A_scale", base);
                eng_st_writer_add_gen(w, nm, "F16", 1, s1a, (size_t)f->k * 2, m__fill, &x[F_AS]);
                snprintf(nm, sizeof nm, "%s.lora_B_scale", base);
                eng_st_writer_add_gen(w, nm, "F16", 1, s1b, (size_t)f->m * 2, m__fill, &x[F_BS]);
            } else {
                snprintf(nm, sizeof nm, "%s.lora_A", base);
                eng_st_writer_add_gen(w, nm, "F16", 2, sa, (size_t)f->k * f->n * 2, m__fill, &x[F_A16]);
                snprintf(nm, sizeof nm, "%s.lora_B", base);
                eng_st_writer_add_gen(w, nm, "F16", 2, sb, (size_t)f->m * f->k * 2, m__fill, &x[F_B16]);
            }
        }
    if (rc) goto out;
    const lrq_spec_t *s = &job->spec;
    char v[64];
    eng_st_writer_meta(w, "lrq.format", "factored-v1");
    eng_st_writer_meta(w, "lrq.method", lrq_method_name[s->method]);
    snprintf(v, sizeof v, "%d", s->bits);
    eng_st_writer_meta(w, "lrq.bits", v);
    snprintf(v, sizeof v, "%d", s->group_size);
    eng_st_writer_meta(w, "lrq.group_size", v);
    eng_st_writer_meta(w, "lrq.symmetric", s->symmetric ? "true" : "false");
    eng_st_writer_meta(w, "lrq.row_order", job->model->format == ENG_FMT_HF ? "hf" : "llama2c-interleaved-rope");
    snprintf(v, sizeof v, "%d", m__fbits(s));
    if (job->lr) eng_st_writer_meta(w, "lrq.factor_bits", v);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rc = eng_st_writer_write(w, path, err);
out:
    eng_st_writer_free(w);
    free(fx);
    wk_qsrc_close(&src);
    return rc;
}

/* hf export; with factors, the linears are the merged dense Ŵ + L·R, generated one at a time from
 * the store while the file is written (wk_qsrc_linear with merge). */
int wk_export_hf(wk_job_t *job, const char *dir, lrq_err_t *err)
{
    wk_qsrc_t src;
    eng_qsource_t qs;
    wk_qsrc_init(&src, job, &qs);
    src.merge = job->lr != NULL;
    int rc = job->lr ? eng_export_hf_fn(job->model, &qs, wk_qsrc_linear, &src, dir, err)
                     : eng_export_hf_qs(job->model, &qs, (eng_dtype_t)-1, dir, err);
    wk_qsrc_close(&src);
    return rc;
}
