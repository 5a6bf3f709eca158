/* wk_qstore.h — the job's quantized model on disk, one checksummed file per block
 * (DIR/ckpt/block-NNN.bin: a header, the codes, scales and zeros of the seven linears and, for the
 * statistics-based methods, their low-rank factors and per-linear metrics; docs/memory.md, Block
 * files), so that a job's memory does not grow with depth: a block's results are written when they
 * are final and dropped from memory — job->ql and job->lr keep only their shapes — and every later
 * stage (layer errors, evaluation, exports, their verification) reads one block at a time through a
 * wk_qsrc_t. The files double as the per-block checkpoints of every method. */
#ifndef WK_QSTORE_H
#define WK_QSTORE_H
#include "wk_job.h"
#include "eng_export.h"

typedef struct wk_blk_meta {
    double loss_start, loss_end, seconds; /* reconstruction's; 0 for RTN */
    int method;                           /* 1: the file holds a statistics method's final results (its
                                             metrics, and the factors when the spec is factored) */
} wk_blk_meta_t;

/* Write block b's job->ql (all seven in memory) to its file (fsync'd, atomic). With layers (a JSON
 * array of the seven linears' metrics, borrowed) the file is a statistics method's final block and
 * also holds the factors of job->lr (when job->lr is set; they must be in memory). meta may be NULL. */
int wk_qstore_write(wk_job_t *job, int b, const wk_blk_meta_t *meta, const json_t *layers, lrq_err_t *err);
/* Read block b's file into q[0..ENG_NLIN) (initialised here from the model's shapes and job->qcfg;
 * close them with eng_qlinear_close) and, when f != NULL, its factors into f[0..ENG_NLIN) (closed and
 * re-initialised; rank 0 when the spec has none; close with eng_lowrank_close): a factored job's
 * file without factors is then refused. A file of another spec or version, a bad checksum or a
 * section of the wrong size is refused with the reason. meta may be NULL. */
int wk_qstore_read(wk_job_t *job, int b, eng_qlinear_t q[ENG_NLIN], eng_lowrank_t f[ENG_NLIN], wk_blk_meta_t *meta,
                   lrq_err_t *err);
/* The same checks without reading the block into memory: 0 when its file verifies, LRQ_ENOTFOUND
 * when there is none, else the reason. A verified block's shapes are recorded in job->ql (and
 * job->lr) for the accounting of blocks that never return to memory. */
int wk_qstore_check(wk_job_t *job, int b, wk_blk_meta_t *meta, lrq_err_t *err);
/* The per-linear metrics of a statistics method's block file (a new reference), or NULL (err set). */
json_t *wk_qstore_layers(wk_job_t *job, int b, lrq_err_t *err);
/* Bring block b into job->ql from its file (no-op when it is in memory); factors != 0 also brings
 * its factors into job->lr (a factored job's file must hold them). */
int wk_qstore_load(wk_job_t *job, int b, int factors, lrq_err_t *err);
/* Free block b's codes, scales, zeros and factors, keeping their shapes: the file holds them. */
void wk_qstore_drop(wk_job_t *job, int b);

/* A one-block-at-a-time source over job->ql / job->lr and the files: blocks in memory are borrowed,
 * others read into the source's own buffers (the last one read is kept), factors with them. */
typedef struct wk_qsrc {
    wk_job_t *job;
    int layer;                      /* block held in cur, -1 */
    eng_qlinear_t cur[ENG_NLIN];
    eng_lowrank_t curf[ENG_NLIN];   /* its factors (rank 0: none) */
    int round_dtype;                /* wk_qsrc_linear: round s·(q − z) to this dtype (eng_dtype_t), -1 = no */
    int merge;                      /* wk_qsrc_linear: add L·R (the factored hf export's dense weights) */
} wk_qsrc_t;
void wk_qsrc_init(wk_qsrc_t *s, wk_job_t *job, eng_qsource_t *qs);
void wk_qsrc_close(wk_qsrc_t *s);
/* Block l: q[i] its linears, f[i] their factors or NULL (no factors), valid until another block is asked for. */
int wk_qsrc_block(wk_qsrc_t *s, int l, const eng_qlinear_t *q[ENG_NLIN], const eng_lowrank_t *f[ENG_NLIN],
                  lrq_err_t *err);
/* eng_linear_fn for a runner (eng_forward.h) and eng_dense_fn for the hf export (eng_export.h):
 * W = s·(q − z) of (l, lin), + L·R when merge, rounded as round_dtype says. */
int wk_qsrc_linear(void *ctx, int l, int lin, float *W, lrq_err_t *err);
/* eng_lowrank_fn for a runner: layer l's factors (y += (x Rᵀ) Lᵀ). */
int wk_qsrc_lowrank(void *ctx, int l, const eng_lowrank_t *f[ENG_NLIN], lrq_err_t *err);

#endif
