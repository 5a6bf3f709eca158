/* estimate.h — the disk a job will use in its work dir, from its spec and its model's shape
 * (docs/daemon.md, "Disk space before a job starts").
 *
 * lrqd does not link the engine: the shape is read here from the model's config.json (HF
 * directory, or a file beside it) or the 28-byte llama2.c header, and the sizes follow the
 * worker's files in closed form: activation caches (worker/wk_ckpt.c wk_buf_new: unlinked
 * files, counted only when they exceed the cache limit, as the worker decides), checkpoints
 * (ckpt/block-NNN.bin or ckpt/lin-BBB-I.bin per finished block or linear, state.ckpt with
 * its .prev and .tmp), every requested export (docs/formats.md) and the logs. */
#ifndef LRQ_ESTIMATE_H
#define LRQ_ESTIMATE_H
#include <stdint.h>
#include <jansson.h>
#include "lrq_err.h"
#include "lrq_spec.h"

typedef struct estimate_shape {
    int dim, ffn, layers, heads, kv_heads, head_dim, vocab;
    int tied;                /* tie_word_embeddings / llama2.c shared classifier */
    int dtype_bytes;         /* 4 (f32) or 2 (f16, bf16): the checkpoint's storage */
    uint64_t side_bytes;     /* files the exports copy from beside the model (tokenizers, …) */
} estimate_shape_t;

typedef struct estimate {
    uint64_t caches;         /* activation caches on disk (0 when they fit under the cache limit) */
    uint64_t checkpoints;    /* ckpt/: finished blocks or linears + the block in progress */
    uint64_t hf, gptq, ct, gguf;   /* each requested export's directory (0 when not requested) */
    uint64_t logs;           /* log, progress.jsonl, metrics.json: a fixed allowance */
    uint64_t total;
    uint64_t cache_limit;    /* the limit the cache decision used */
} estimate_t;

/* The model's shape and dtype: a directory or *.safetensors / *.index.json / config.json path →
 * its config.json; any other file → the llama2.c header. Errors name the file and the field. */
int estimate_shape_load(const char *model_path, estimate_shape_t *sh, lrq_err_t *err);

/* The cache limit the worker applies (worker/wk_ckpt.c): LRQ_CACHE_MEM_MB from env_mb (NULL or
 * "" = unset), else a quarter of phys_bytes. */
uint64_t estimate_cache_limit(const char *env_mb, uint64_t phys_bytes);

/* Sizes for a parsed spec on a model of this shape; never fails (a shape of zeros gives 0s). */
void estimate_job(const lrq_spec_t *s, const estimate_shape_t *sh, uint64_t cache_limit, estimate_t *out);

/* {"total_bytes", "caches_bytes", "checkpoints_bytes", "exports": {"hf": …}, "logs_bytes",
 * "cache_limit_bytes"}: new reference, NULL when out of memory. */
json_t *estimate_json(const estimate_t *e);

#endif
