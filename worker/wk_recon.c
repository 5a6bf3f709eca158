/* wk_recon.c — LRQ / FlexRound block-wise reconstruction (docs/algorithms.md,
 * "Block reconstruction"; LRQ: Lee et al., NAACL 2025, arXiv:2407.11534; FlexRound:
 * Lee et al., ICML 2023, arXiv:2306.00317).
 *
 * For block b:  Y = Block_b^FP(X_fp)          target: FP block on FP input
 *               minimise Σ_t mean_{B,D} (Block_b^Q(X_q) − Y)²  over a, L, U, r, c (or S2, r)
 *               freeze codes; X_q ← Block_b^Q(X_q); X_fp ← Y.
 * Activations X_fp, X_q, Y (N,T,D) live in memory when they fit under the cache
 * limit, else in files under DIR/cache (mmap), so N is bounded by disk, not RAM.
 *
 * Checkpoints (DIR/ckpt): block-NNN.bin per finished block (codes, scales, zeros,
 * losses) and state.ckpt (+ state.ckpt.prev) for the block in progress: iteration,
 * parameters, Adam moments, step, RNG. Everything a resumed run needs to continue
 * bit-identically is in there; activations are recomputed from the frozen blocks. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "wk_job.h"
#include "wk_ckpt.h"
#include "lrq_tasks.h"
#include "wk_qstore.h"
#include "eng_forward.h"
#include "wk_act.h"
#include "lrq_fs.h"

#define TAG_HEAD WK_TAG('H', 'E', 'A', 'D')
#define TAG_PARM WK_TAG('P', 'A', 'R', 'M')
#define TAG_ADMM WK_TAG('A', 'D', 'M', 'M')
#define TAG_ADMV WK_TAG('A', 'D', 'M', 'V')
#define CKPT_VERSION 1

typedef struct ck_head {
    uint32_t version, block;
    int64_t iter, adam_t;
    uint64_t rng, nparams;
    double loss_start, seconds;
    uint8_t spec_hash[32];
} ck_head_t;

typedef struct recon {
    wk_job_t *job;
    const eng_config_t *c;
    int N, T, D, B, chunk;
    int32_t *ids;
    size_t nids;
    eng_runner_t *runner;
    eng_block_ws_t *ws_inf, *ws_train;
    wk_buf_t xfp, xq, y;
    float *tmp;                     /* (chunk,T,D) */
    float *xb, *yb, *dy;            /* (B,T,D) */
    uint8_t spec_hash[32];
    char ckdir[4096];
    char stname[64];                /* state.ckpt, or task-AAA-BBB.ckpt in task mode */
    int b0, b1;                     /* blocks this run reconstructs: [b0, b1) */
    /* per-block training state */
    eng_lrq_t lq[ENG_NLIN];
    eng_block_w_t wblk;             /* FP views of the block being trained (norms used) */
    float *What[ENG_NLIN], *dW[ENG_NLIN];
    const float *Wfp[ENG_NLIN]; /* borrowed: the runner's fp32 view of the layer, stable while the block trains */
    float *params, *grads, *am, *av;
    size_t nparams;
    wk_blk_meta_t *bh;              /* [L] losses and times of finished blocks read at resume */
} recon_t;


/* Run one block (given weights) over all N samples: out[i] = block(in[i]). in may equal out.
 * If target is given, returns the mean reconstruction loss against it. */
static double block_apply(recon_t *R, const eng_block_w_t *w, const float *in, float *out, const float *target)
/* out may be NULL (loss only). */
{
    size_t per = (size_t)R->T * R->D;
    double loss = 0;
    for (int s0 = 0; s0 < R->N; s0 += R->chunk) {
        int nb = R->N - s0 < R->chunk ? R->N - s0 : R->chunk;
        eng_block_forward(R->c, w, eng_runner_rope(R->runner), in + s0 * per, R->tmp, R->ws_inf, nb, R->T);
        if (target) {
            const float *t = target + s0 * per;
            double acc = 0;
            for (size_t k = 0; k < nb * per; k++) {
                double d = (double)R->tmp[k] - t[k];
                acc += d * d;
            }
            loss += acc;
        }
        if (out) memcpy(out + s0 * per, R->tmp, nb * per * sizeof(float));
    }
    /* Loss scale of the official code: sum over tokens, mean over samples and hidden. */
    return loss / ((double)R->N * R->D);
}

static void train_close(recon_t *R)
{
    for (int i = 0; i < ENG_NLIN; i++) {
        eng_lrq_close(&R->lq[i]);
        free(R->What[i]);
        free(R->dW[i]);
        R->What[i] = R->dW[i] = NULL;
        R->Wfp[i] = NULL;
    }
    free(R->params); free(R->grads); free(R->am); free(R->av);
    R->params = R->grads = R->am = R->av = NULL;
}

static int train_setup(recon_t *R, const eng_block_w_t *wfp, lrq_err_t *err)
{
    const lrq_spec_t *s = &R->job->spec;
    int full_all = s->method == LRQ_M_FLEXROUND || (s->method == LRQ_M_LQER && s->lqer.base == LRQ_BASE_FLEXROUND);
    size_t counts[ENG_NLIN];
    R->nparams = 0;
    memset(R->lq, 0, sizeof R->lq);
    for (int i = 0; i < ENG_NLIN; i++) {
        const eng_tensor_t *t = &R->job->model->layers[0].lin[i];
        int m = (int)t->rows, n = (int)t->cols, full = 1, k = 0;
        if (!full_all) k = eng_lrq_rank(m, n, lrq_rank_policy_name[s->rank_policy], s->rank, s->rank_ratio, &full);
        size_t mn = (size_t)m * n;
        /* No copy of W: the runner's conversion stays untouched until the next eng_runner_layer,
         * which comes after this block (docs/memory.md: 4·P bytes less per block). */
        R->Wfp[i] = wfp->lin[i];
        if (!(R->What[i] = malloc(mn * sizeof(float))) || !(R->dW[i] = malloc(mn * sizeof(float))))
            return lrq_errf(err, LRQ_ENOMEM, "out of memory");
        int rc = eng_lrq_init(&R->lq[i], R->Wfp[i], m, n, k, full, &R->job->qcfg, err);
        if (rc) return rc;
        R->lq[i].pool = R->job->pool;
        R->lq[i].mm = R->job->mm;
        counts[i] = eng_lrq_param_count(m, n, R->lq[i].k, R->lq[i].G, R->lq[i].full);
        R->nparams += counts[i];
    }
    R->params = calloc(R->nparams, sizeof(float));
    R->grads = calloc(R->nparams, sizeof(float));
    R->am = calloc(R->nparams, sizeof(float));
    R->av = calloc(R->nparams, sizeof(float));
    if (!R->params || !R->grads || !R->am || !R->av) return lrq_errf(err, LRQ_ENOMEM, "out of memory (%zu parameters)", R->nparams);
    size_t off = 0;
    for (int i = 0; i < ENG_NLIN; i++) {
        eng_lrq_bind(&R->lq[i], R->params + off, R->grads + off);
        off += counts[i];
    }
    return 0;
}

static int write_state(recon_t *R, int block, long iter, uint64_t rng, long adam_t, double loss_start,
                       double seconds, int with_params, lrq_err_t *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", R->ckdir, R->stname);
    wk_ckw_t w;
    int rc = wk_ckw_open(&w, path, err);
    if (rc) return rc;
    ck_head_t h = {.version = CKPT_VERSION, .block = (uint32_t)block, .iter = iter, .adam_t = adam_t, .rng = rng,
                   .nparams = with_params ? R->nparams : 0, .loss_start = loss_start, .seconds = seconds};
    memcpy(h.spec_hash, R->spec_hash, 32);
    wk_ckw_put(&w, TAG_HEAD, &h, sizeof h);
    if (with_params) {
        wk_ckw_put(&w, TAG_PARM, R->params, R->nparams * sizeof(float));
        wk_ckw_put(&w, TAG_ADMM, R->am, R->nparams * sizeof(float));
        wk_ckw_put(&w, TAG_ADMV, R->av, R->nparams * sizeof(float));
    }
    return wk_ckw_commit(&w, path, 1, err);
}

typedef struct resume {
    int block;            /* first block not finished */
    int has_params;       /* mid-block state present */
    ck_head_t head;
    wk_ckr_t rd;          /* open while has_params */
} resume_t;

/* Find the newest valid state: state.ckpt, else state.ckpt.prev; every block file
 * it depends on must verify too. */
static int find_resume(recon_t *R, resume_t *rs)
{
    memset(rs, 0, sizeof *rs);
    for (int k = 0; k < 2; k++) {
        char path[4200];
        lrq_err_t e;
        snprintf(path, sizeof path, "%s/%s%s", R->ckdir, R->stname, k ? ".prev" : "");
        wk_ckr_t r;
        int rc = wk_ckr_open(&r, path, &e);
        if (rc) {
            if (rc != LRQ_ENOTFOUND) wk_log(&R->job->proto, "checkpoint unusable: %s", e.msg);
            continue;
        }
        size_t len;
        const ck_head_t *h = wk_ckr_get(&r, TAG_HEAD, &len);
        if (!h || len != sizeof *h || h->version != CKPT_VERSION || memcmp(h->spec_hash, R->spec_hash, 32) ||
            (int)h->block > R->b1 || (int)h->block < R->b0) {
            wk_log(&R->job->proto, "checkpoint %s belongs to another job spec; ignoring it", path);
            wk_ckr_close(&r);
            continue;
        }
        int ok = 1;
        for (int b = R->b0; b < (int)h->block && ok; b++) { /* every block it depends on verifies (read, then dropped) */
            if (wk_qstore_check(R->job, b, &R->bh[b], &e)) {
                wk_log(&R->job->proto, "checkpoint %s: %s", path, e.msg);
                ok = 0;
            }
        }
        if (ok && h->nparams) {
            size_t lp, lm, lv;
            ok = h->nparams == R->nparams && wk_ckr_get(&r, TAG_PARM, &lp) && wk_ckr_get(&r, TAG_ADMM, &lm) &&
                 wk_ckr_get(&r, TAG_ADMV, &lv) && lp == R->nparams * sizeof(float) && lm == lp && lv == lp;
            if (!ok) wk_log(&R->job->proto, "checkpoint %s: parameter arena does not match", path);
        }
        if (!ok) { wk_ckr_close(&r); continue; }
        rs->block = (int)h->block;
        rs->head = *h;
        rs->has_params = h->nparams != 0;
        rs->rd = r;
        wk_log(&R->job->proto, "resuming from %s: block %d, iteration %ld", path, rs->block, (long)h->iter);
        wk_emit(&R->job->proto, json_pack("{s:s, s:i, s:I}", "event", "resume", "block", rs->block, "iteration",
                                          (json_int_t)h->iter));
        return 1;
    }
    return 0;
}

static void gather_batch(recon_t *R, uint64_t *rng)
{
    size_t per = (size_t)R->T * R->D;
    int picked[4096];
    for (int i = 0; i < R->B; i++) {
        int s, dup;
        do { /* distinct samples within a batch */
            s = (int)(eng_rng_next(rng) % (uint64_t)R->N);
            dup = 0;
            for (int j = 0; j < i; j++) dup |= picked[j] == s;
        } while (dup);
        picked[i] = s;
        memcpy(R->xb + i * per, R->xq.p + s * per, per * sizeof(float));
        memcpy(R->yb + i * per, R->y.p + s * per, per * sizeof(float));
    }
}

/* One optimisation step; returns the batch loss (before the update). */
static double train_step(recon_t *R, uint64_t *rng, long it, long adam_t)
{
    const lrq_spec_t *s = &R->job->spec;
    size_t per = (size_t)R->T * R->D, n = (size_t)R->B * per;
    eng_block_w_t w = R->wblk;
    eng_block_g_t g = {0};
    for (int i = 0; i < ENG_NLIN; i++) {
        eng_lrq_forward(&R->lq[i], R->What[i]);
        w.lin[i] = R->What[i];
        g.lin[i] = R->dW[i];
    }
    gather_batch(R, rng);
    eng_block_forward(R->c, &w, eng_runner_rope(R->runner), R->xb, R->dy, R->ws_train, R->B, R->T);
    double loss = 0, scale = 2.0 / ((double)R->B * R->D);
    for (size_t k = 0; k < n; k++) {
        float d = R->dy[k] - R->yb[k];
        loss += (double)d * d;
        R->dy[k] = (float)(scale * d);
    }
    /* The block input is data here, so its gradient (dx) is not needed. */
    eng_block_backward(R->c, &w, eng_runner_rope(R->runner), R->dy, NULL, &g, R->ws_train, R->B, R->T);
    for (int i = 0; i < ENG_NLIN; i++) eng_lrq_backward(&R->lq[i], R->dW[i]);
    eng_adam_t opt = {0.9f, 0.999f, 1e-8f};
    eng_adam_step(R->job->pool, &opt, R->params, R->grads, R->am, R->av, R->nparams, eng_cosine_lr((float)s->lr, it, s->iterations),
                  adam_t);
    return loss / ((double)R->B * R->D);
}

/* Arena size for one block, known before any block is set up (checkpoint check). */
static size_t arena_size(const wk_job_t *job)
{
    const lrq_spec_t *s = &job->spec;
    size_t total = 0;
    for (int i = 0; i < ENG_NLIN; i++) {
        const eng_tensor_t *t = &job->model->layers[0].lin[i];
        int m = (int)t->rows, n = (int)t->cols, full = 1, k = 0;
        if (s->method != LRQ_M_FLEXROUND && !(s->method == LRQ_M_LQER && s->lqer.base == LRQ_BASE_FLEXROUND))
            k = eng_lrq_rank(m, n, lrq_rank_policy_name[s->rank_policy], s->rank, s->rank_ratio, &full);
        int G = eng_quant_ngroups(n, job->qcfg.group_size);
        total += eng_lrq_param_count(m, n, full ? 0 : k, G, full);
    }
    return total;
}


static void swap_bufs(wk_buf_t *a, wk_buf_t *b)
{
    wk_buf_t t = *a;
    *a = *b;
    *b = t;
}

/* Ŵ of a finished block into What (its codes are read back from the store when they left memory). */
static int dequant_block(recon_t *R, int b, eng_block_w_t *wq, lrq_err_t *err)
{
    int rc = wk_qstore_load(R->job, b, 0, err);
    if (rc) return rc;
    *wq = R->wblk;
    for (int i = 0; i < ENG_NLIN; i++) {
        eng_qlinear_dequant(&R->job->ql[b * ENG_NLIN + i], R->What[i]);
        wq->lin[i] = R->What[i];
    }
    wk_qstore_drop(R->job, b);
    return 0;
}

/* Parallel pipeline: block b's file exists and verifies (another task, or an earlier run, trained it);
 * its losses and time go to R->bh[b]. */
static int recon__block_file_ok(recon_t *R, int b)
{
    lrq_err_t e = {0};
    int rc = wk_qstore_check(R->job, b, &R->bh[b], &e);
    if (rc == LRQ_ENOTFOUND) return 0;
    if (rc) wk_log(&R->job->proto, "block %d: its file is not usable (%s); training it", b, e.msg);
    return !rc;
}

/* Task mode holds ckpt/task-A-B.lock while it runs: a second copy of one task (a restart racing
 * a dying predecessor) waits for the first to be gone. */
static int recon__task_lock(recon_t *R, int *fd, lrq_err_t *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/task-%03d-%03d.lock", R->ckdir, R->b0, R->b1);
    if ((*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
        return lrq_errf(err, -errno, "%s: %s", path, strerror(errno));
    while (flock(*fd, LOCK_EX)) {
        if (errno != EINTR) return lrq_errf(err, -errno, "%s: flock: %s", path, strerror(errno));
        if (*R->job->stop) return lrq_errf(err, LRQ_ECANCEL, "stopped by signal while waiting for %s", path);
    }
    return 0;
}

int wk_recon_run(wk_job_t *job, double f0, double f1, lrq_err_t *err)
{
    const lrq_spec_t *s = &job->spec;
    recon_t R;
    memset(&R, 0, sizeof R);
    R.job = job;
    R.c = &job->model->cfg;
    R.T = s->calib_seq_len;
    R.D = R.c->dim;
    R.B = s->batch_size;
    int L = R.c->n_layers, rc, lock_fd = -1;
    const int par = s->pipeline == LRQ_PIPE_PARALLEL;
    char *skip = NULL;
    resume_t rs;
    memset(&rs, 0, sizeof rs);
    json_t *blocks = json_array();
    wk_ckpt_spec_hash(job->spec_json, R.spec_hash);
    snprintf(R.ckdir, sizeof R.ckdir, "%s/ckpt", job->workdir);
    R.b0 = 0;
    R.b1 = L;
    snprintf(R.stname, sizeof R.stname, "state.ckpt");
    if (job->task_k) { /* --task K: the K-th range, as the coordinator would split them */
        int n = lrq_task_count(s->tasks, L);
        if (job->task_k > n) {
            wk_log(&job->proto, "task %d: the model's %d blocks are in tasks 0..%d; nothing to do", job->task_k - 1, L, n - 1);
            rc = 0;
            goto out;
        }
        lrq_task_range(job->task_k - 1, n, L, &job->task_b0, &job->task_b1);
    }
    if (job->task_b1) {
        if (job->task_b1 > L) {
            rc = lrq_err_field(err, "--blocks", "ends at block %d; the model has %d blocks", job->task_b1, L);
            goto out;
        }
        R.b0 = job->task_b0;
        R.b1 = job->task_b1;
        snprintf(R.stname, sizeof R.stname, "task-%03d-%03d.ckpt", R.b0, R.b1);
    }
    if ((rc = lrq_mkdirs(R.ckdir, err))) goto out;
    if (!(R.bh = calloc((size_t)L, sizeof *R.bh)) || !(skip = calloc((size_t)L, 1))) {
        rc = lrq_errf(err, LRQ_ENOMEM, "out of memory");
        goto out;
    }
    if (job->task_b1 && (rc = recon__task_lock(&R, &lock_fd, err))) goto out;
    /* The coordinator of a multi-task job runs the block ranges as tasks first; what follows then
     * assembles their block files (and trains any block still missing itself). */
    if (par && s->tasks > 1 && !job->task_mode) {
        if (!job->assemble && (rc = wk_tasks_run(job, f0, f0 + 0.95 * (f1 - f0), err))) goto out;
        f0 += 0.95 * (f1 - f0);
        json_object_set_new(job->metrics, "tasks", json_integer(s->tasks));
    }

    wk_progress(&job->proto, "calibrate", 0, 1, f0, NULL, 1);
    if ((rc = eng_data_load(s->calib_path, job->tok, R.c->vocab_size, &R.ids, &R.nids, err))) {
        if (err && !err->field[0]) snprintf(err->field, sizeof err->field, "calibration.path");
        goto out;
    }
    R.N = (int)(R.nids / (size_t)R.T);
    if (R.N > s->calib_samples) R.N = s->calib_samples;
    if (R.N < s->calib_samples)
        wk_log(&job->proto, "calibration data holds only %d windows of %d tokens (asked for %d); using %d", R.N, R.T,
               s->calib_samples, R.N);
    if (R.N < R.B) {
        rc = lrq_err_field(err, "calibration.samples", "the data gives %d windows of seq_len %d, fewer than batch_size %d",
                           R.N, R.T, R.B);
        goto out;
    }
    R.chunk = R.N < 8 ? R.N : 8;
    size_t per = (size_t)R.T * R.D, total = (size_t)R.N * per;
    if ((rc = eng_runner_new(job->model, R.chunk, R.T, job->pool, &R.runner, err))) goto out;
    R.ws_inf = eng_block_ws_new(R.c, R.chunk, R.T, 0, job->pool);
    R.ws_train = eng_block_ws_new(R.c, R.B, R.T, 1, job->pool);
    R.tmp = malloc((size_t)R.chunk * per * sizeof(float));
    R.xb = malloc((size_t)R.B * per * sizeof(float));
    R.yb = malloc((size_t)R.B * per * sizeof(float));
    R.dy = malloc((size_t)R.B * per * sizeof(float));
    if (!R.ws_inf || !R.ws_train || !R.tmp || !R.xb || !R.yb || !R.dy) {
        rc = lrq_errf(err, LRQ_ENOMEM, "out of memory for block workspaces (batch %d × %d tokens)", R.B, R.T);
        goto out;
    }
    /* spec.compute applies to the training iterations; targets and propagation stay fp32 */
    eng_runner_set_mm(R.runner, wk_job_mm_fp32(job));
    eng_block_ws_set_mm(R.ws_inf, wk_job_mm_fp32(job));
    eng_block_ws_set_mm(R.ws_train, job->mm);
    int on_disk = 3 * total * sizeof(float) > wk_cache_limit_bytes();
    char f1p[4200], f2p[4200], f3p[4200];
    snprintf(f1p, sizeof f1p, "%s/cache-xfp", job->workdir);
    snprintf(f2p, sizeof f2p, "%s/cache-xq", job->workdir);
    snprintf(f3p, sizeof f3p, "%s/cache-y", job->workdir);
    if ((rc = wk_buf_new(&R.xfp, total, on_disk ? f1p : NULL, err)) || (rc = wk_buf_new(&R.xq, total, on_disk ? f2p : NULL, err)) ||
        (rc = wk_buf_new(&R.y, total, on_disk ? f3p : NULL, err)))
        goto out;
    wk_log(&job->proto, "calibration: %d samples × %d tokens; activation caches %zu MiB %s", R.N, R.T,
           3 * total * sizeof(float) >> 20, on_disk ? "in files under the work dir (mmap)" : "in memory");
    for (int s0 = 0; s0 < R.N; s0 += R.chunk) {
        int nb = R.N - s0 < R.chunk ? R.N - s0 : R.chunk;
        if ((rc = eng_runner_embed(R.runner, R.ids + (size_t)s0 * R.T, nb, R.T, R.xfp.p + s0 * per, err))) goto out;
    }
    memcpy(R.xq.p, R.xfp.p, total * sizeof(float));

    R.nparams = arena_size(job);
    find_resume(&R, &rs);
    /* Parallel pipeline: a block is independent of the others, so any block whose file verifies is
     * done (trained by a task or an earlier attempt); only the FP input has to pass through it.
     * last = the last block this run still trains. */
    int last = R.b1 - 1;
    if (par) {
        last = -1;
        for (int b = R.b0; b < R.b1; b++) {
            if (b < rs.block || (!(b == rs.block && rs.has_params) && recon__block_file_ok(&R, b))) skip[b] = 1;
            else last = b;
        }
        if (job->task_b1)
            wk_log(&job->proto, "task: blocks %d..%d of %d (%d to train)", R.b0, R.b1 - 1, L, last < 0 ? 0 : last + 1 - R.b0);
    }
    for (int i = 0; i < ENG_NLIN; i++) {
        const eng_tensor_t *t = &job->model->layers[0].lin[i];
        if (!(R.What[i] = malloc((size_t)t->rows * t->cols * sizeof(float)))) {
            rc = lrq_errf(err, LRQ_ENOMEM, "out of memory");
            goto out;
        }
    }
    json_object_set_new(job->metrics, "pipeline", json_string(lrq_pipeline_name[s->pipeline]));
    json_object_set_new(job->metrics, "calibration", json_pack("{s:i, s:i, s:I}", "samples", R.N, "seq_len", R.T,
                                                               "tokens_available", (json_int_t)R.nids));

    for (int b = 0; b < R.b1; b++) {
        eng_block_w_t wq;
        if (par && (b > last || (b >= R.b0 && skip[b]))) {
            /* nothing to train here: block b is finished (or beyond the last one still to train) */
            if (b >= R.b0 && !job->task_b1) {
                json_array_append_new(blocks, json_pack("{s:i, s:f, s:f, s:f}", "block", b, "loss_start", R.bh[b].loss_start,
                                                        "loss_end", R.bh[b].loss_end, "seconds", R.bh[b].seconds));
            }
            if (b > last) continue;
            if ((rc = eng_runner_layer(R.runner, b, &R.wblk, err))) goto out;
            block_apply(&R, &R.wblk, R.xfp.p, R.y.p, NULL); /* the FP input of the next block */
            eng_model_release_layer(job->model, b);
            swap_bufs(&R.xfp, &R.y);
            continue;
        }
        if (par && b < R.b0) { /* task mode: FP blocks before the range give its input */
            if ((rc = eng_runner_layer(R.runner, b, &R.wblk, err))) goto out;
            block_apply(&R, &R.wblk, R.xfp.p, R.y.p, NULL);
            eng_model_release_layer(job->model, b);
            swap_bufs(&R.xfp, &R.y);
            continue;
        }
        if (rs.block == L) { /* all finished before the restart (stopped in evaluation or export): nothing to propagate */
            json_array_append_new(blocks, json_pack("{s:i, s:f, s:f, s:f}", "block", b, "loss_start", R.bh[b].loss_start,
                                                    "loss_end", R.bh[b].loss_end, "seconds", R.bh[b].seconds));
            continue;
        }
        if ((rc = eng_runner_layer(R.runner, b, &R.wblk, err))) goto out;
        block_apply(&R, &R.wblk, R.xfp.p, R.y.p, NULL);
        /* pipeline "parallel": every block learns from the FP model's input (blocks independent). */
        if (s->pipeline == LRQ_PIPE_PARALLEL) memcpy(R.xq.p, R.xfp.p, total * sizeof(float));
        R.wblk.aq = wk_act_recon_layer(job, b); /* quantized block only: simulate_during_reconstruction */
        if (b < rs.block) { /* finished before the restart: only propagate X_q */
            if ((rc = dequant_block(&R, b, &wq, err))) goto out;
            block_apply(&R, &wq, R.xq.p, R.xq.p, NULL);
            eng_model_release_layer(job->model, b);
            json_array_append_new(blocks, json_pack("{s:i, s:f, s:f, s:f}", "block", b, "loss_start", R.bh[b].loss_start,
                                                    "loss_end", R.bh[b].loss_end, "seconds", R.bh[b].seconds));
            swap_bufs(&R.xfp, &R.y);
            continue;
        }
        /* train_setup owns What/dW per linear; release the propagation buffers first. */
        for (int i = 0; i < ENG_NLIN; i++) { free(R.What[i]); R.What[i] = NULL; }
        if ((rc = train_setup(&R, &R.wblk, err))) goto out;
        uint64_t rng;
        long it0 = 0, adam_t = 0;
        double loss_start, secs0 = 0;
        if (b == rs.block && rs.has_params) {
            /* reset() also derives the fixed zero points; the parameters are then overwritten. */
            uint64_t scratch = 0;
            for (int i = 0; i < ENG_NLIN; i++) eng_lrq_reset(&R.lq[i], &job->qcfg, &scratch);
            memcpy(R.params, wk_ckr_get(&rs.rd, TAG_PARM, NULL), R.nparams * sizeof(float));
            memcpy(R.am, wk_ckr_get(&rs.rd, TAG_ADMM, NULL), R.nparams * sizeof(float));
            memcpy(R.av, wk_ckr_get(&rs.rd, TAG_ADMV, NULL), R.nparams * sizeof(float));
            rng = rs.head.rng;
            it0 = rs.head.iter;
            adam_t = rs.head.adam_t;
            loss_start = rs.head.loss_start;
            secs0 = rs.head.seconds;
            wk_ckr_close(&rs.rd);
            rs.has_params = 0;
        } else {
            rng = s->seed * 0x9E3779B97F4A7C15ull + (uint64_t)b * 0xD1B54A32D192ED03ull + 1;
            for (int i = 0; i < ENG_NLIN; i++) eng_lrq_reset(&R.lq[i], &job->qcfg, &rng);
            wq = R.wblk;
            for (int i = 0; i < ENG_NLIN; i++) {
                eng_lrq_forward(&R.lq[i], R.What[i]);
                wq.lin[i] = R.What[i];
            }
            loss_start = block_apply(&R, &wq, R.xq.p, NULL, R.y.p);
        }
        double tb = wk_now(), last_ck = tb, loss_ema = -1;
        for (long it = it0; it < s->iterations; it++) {
            double now = wk_now();
            if (*job->stop || (s->checkpoint_every_s > 0 && now - last_ck >= s->checkpoint_every_s)) {
                if ((rc = write_state(&R, b, it, rng, adam_t, loss_start, secs0 + now - tb, 1, err))) goto out;
                wk_emit(&job->proto, json_pack("{s:s, s:i, s:I}", "event", "checkpoint", "block", b, "iteration",
                                               (json_int_t)it));
                last_ck = now;
                if (*job->stop) {
                    wk_log(&job->proto, "stopping on signal at block %d iteration %ld (checkpoint written)", b, it);
                    rc = lrq_errf(err, LRQ_ECANCEL, "stopped by signal; checkpoint written at block %d iteration %ld", b, it);
                    goto out;
                }
            }
            adam_t++;
            double l = train_step(&R, &rng, it, adam_t);
            loss_ema = loss_ema < 0 ? l : 0.95 * loss_ema + 0.05 * l;
            double frac = f0 + (f1 - f0) * (b + (double)(it + 1) / s->iterations) / L;
            json_t *x = json_pack("{s:i, s:i, s:I, s:I, s:f}", "block", b + 1, "blocks", L, "iteration", (json_int_t)(it + 1),
                                  "iterations", (json_int_t)s->iterations, "loss", loss_ema);
            /* a task's: the share of the job's fraction the coordinator gives all tasks (wk_tasks.c) */
            if (x && job->task_mode) json_object_set_new(x, "span", json_pack("[f, f]", f0, f0 + 0.95 * (f1 - f0)));
            wk_progress(&job->proto, "reconstruct", (long)b * s->iterations + it + 1, (long)L * s->iterations, frac, x,
                        it + 1 == s->iterations);
        }
        for (int i = 0; i < ENG_NLIN; i++) {
            eng_qlinear_t *q = &job->ql[b * ENG_NLIN + i];
            eng_qlinear_close(q);
            if ((rc = eng_qlinear_init(q, R.lq[i].m, R.lq[i].n, &job->qcfg, err))) goto out;
            eng_lrq_freeze(&R.lq[i], q);
        }
        wq = R.wblk;
        for (int i = 0; i < ENG_NLIN; i++) {
            eng_qlinear_dequant(&job->ql[b * ENG_NLIN + i], R.What[i]);
            wq.lin[i] = R.What[i];
        }
        double loss_end = block_apply(&R, &wq, R.xq.p, R.xq.p, R.y.p);
        if ((rc = eng_mm_status(job->mm, err)) || (rc = eng_mm_status(job->mm_fp32, err))) goto out;
        double secs = secs0 + wk_now() - tb;
        wk_blk_meta_t meta = {loss_start, loss_end, secs, 0};
        if ((rc = wk_qstore_write(job, b, &meta, NULL, err))) goto out;
        wk_qstore_drop(job, b); /* the file holds it now (docs/memory.md) */
        eng_model_release_layer(job->model, b);
        if ((rc = write_state(&R, b + 1, 0, 0, 0, 0, 0, 0, err))) goto out;
        wk_emit(&job->proto, json_pack("{s:s, s:i, s:i, s:f, s:f, s:f}", "event", "block", "block", b, "blocks", L,
                                       "loss_start", loss_start, "loss_end", loss_end, "seconds", secs));
        wk_log(&job->proto, "block %d/%d: loss %.6g -> %.6g (%.1f s)", b + 1, L, loss_start, loss_end, secs);
        json_array_append_new(blocks, json_pack("{s:i, s:f, s:f, s:f}", "block", b, "loss_start", loss_start,
                                                "loss_end", loss_end, "seconds", secs));
        /* Keep What buffers for the next block's propagation; drop the rest of the training state. */
        for (int i = 0; i < ENG_NLIN; i++) {
            float *keep = R.What[i];
            R.What[i] = NULL;
            free(R.dW[i]); R.dW[i] = NULL;
            R.Wfp[i] = NULL;
            eng_lrq_close(&R.lq[i]);
            R.What[i] = keep;
        }
        free(R.params); free(R.grads); free(R.am); free(R.av);
        R.params = R.grads = R.am = R.av = NULL;
        swap_bufs(&R.xfp, &R.y);
    }
    json_object_set_new(job->metrics, "blocks", blocks);
    blocks = NULL;
    json_object_set_new(job->metrics, "lrq", json_pack("{s:I, s:f, s:i, s:s, s:f, s:i}", "iterations",
                                                       (json_int_t)s->iterations, "lr", s->lr, "batch_size", s->batch_size,
                                                       "rank_policy", lrq_rank_policy_name[s->rank_policy], "rank_ratio",
                                                       s->rank_ratio, "rank", s->rank));
out:
    json_decref(blocks);
    if (rs.has_params) wk_ckr_close(&rs.rd);
    train_close(&R);
    wk_buf_free(&R.xfp); wk_buf_free(&R.xq); wk_buf_free(&R.y);
    free(R.tmp); free(R.xb); free(R.yb); free(R.dy);
    eng_block_ws_free(R.ws_inf);
    eng_block_ws_free(R.ws_train);
    eng_runner_free(R.runner);
    free(R.ids);
    free(R.bh);
    free(skip);
    if (lock_fd >= 0) close(lock_fd);
    return rc;
}
