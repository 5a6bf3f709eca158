/* wk_qstore.h — the job's quantized model on disk, one checksummed file per block
 * (DIR/ckpt/block-NNN.bin: a header and the codes, scales and zeros of the seven linears), so that
 * a job's memory does not grow with depth (docs/memory.md): a block's results are written when they
 * are final and dropped from memory — job->ql keeps only their shapes — and every later stage
 * (layer errors, evaluation, exports, their verification) reads one block at a time through a
 * wk_qsrc_t. The files double as the reconstruction's per-block checkpoints. */
#ifndef WK_QSTORE_H
#define WK_QSTORE_H
#include "wk_job.h"
#include "eng_export.h"

typedef struct wk_blk_meta {
    double loss_start, loss_end, seconds; /* reconstruction's; 0 for RTN */
} wk_blk_meta_t;

/* 1 when finished blocks leave memory: RTN, LRQ, FlexRound. The statistics-based methods (GPTQ,
 * LQER, ODLRI) still hold job->ql and job->lr whole (their base results feed them). */
int wk_qstore_streams(const wk_job_t *job);
/* Write block b's job->ql (all seven in memory) to its file (fsync'd, atomic). */
int wk_qstore_write(wk_job_t *job, int b, const wk_blk_meta_t *meta, lrq_err_t *err);
/* Read block b's file into q[0..ENG_NLIN) (initialised here from the model's shapes and job->qcfg;
 * close them with eng_qlinear_close). A file of another spec, a bad checksum or a wrong size is
 * refused with the reason. meta may be NULL. */
int wk_qstore_read(wk_job_t *job, int b, eng_qlinear_t q[ENG_NLIN], wk_blk_meta_t *meta, lrq_err_t *err);
/* The same checks without reading the block into memory: 0 when its file verifies, LRQ_ENOTFOUND
 * when there is none, else the reason. */
int wk_qstore_check(wk_job_t *job, int b, wk_blk_meta_t *meta, lrq_err_t *err);
/* Bring block b into job->ql from its file (no-op when it is in memory). */
int wk_qstore_load(wk_job_t *job, int b, lrq_err_t *err);
/* Free block b's codes, scales and zeros (when wk_qstore_streams): the file holds them. */
void wk_qstore_drop(wk_job_t *job, int b);

/* A one-block-at-a-time source over job->ql and the files: blocks in memory are borrowed, others
 * read into the source's own buffers (the last one read is kept). */
typedef struct wk_qsrc {
    wk_job_t *job;
    int layer;                      /* block held in cur, -1 */
    eng_qlinear_t cur[ENG_NLIN];
    int round_dtype;                /* wk_qsrc_linear: round s·(q − z) to this dtype (eng_dtype_t), -1 = no */
} wk_qsrc_t;
void wk_qsrc_init(wk_qsrc_t *s, wk_job_t *job, eng_qsource_t *qs);
void wk_qsrc_close(wk_qsrc_t *s);
/* eng_linear_fn for a runner (eng_forward.h): W = s·(q − z) of (l, lin), rounded as round_dtype says. */
int wk_qsrc_linear(void *ctx, int l, int lin, float *W, lrq_err_t *err);

#endif
