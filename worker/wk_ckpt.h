/* wk_ckpt.h — checksummed sectioned files for checkpoints.
 *
 * Layout: "LRQCKPT1" | sections { u32 tag, u32 0, u64 len, bytes } | tag 'END!',
 * u32 0, u64 32, sha256 of every byte before it. A file whose checksum does not
 * verify (torn write, truncation, bit rot) is refused as a whole. Writes go to a
 * temp file, are fsync'd and renamed: a reader sees the old or the new file. */
#ifndef WK_CKPT_H
#define WK_CKPT_H
#include <stddef.h>
#include <stdint.h>
#include <nettle/sha2.h>
#include <jansson.h>
#include "lrq_err.h"

#define WK_TAG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

typedef struct wk_ckw {
    int fd;
    char tmp[4096];
    struct sha256_ctx sha;
    int err;           /* first -errno seen */
} wk_ckw_t;

int wk_ckw_open(wk_ckw_t *w, const char *path, lrq_err_t *err);
/* Errors are sticky and reported by commit. */
void wk_ckw_put(wk_ckw_t *w, uint32_t tag, const void *data, size_t len);
/* Trailer, fsync, then: if keep_prev, rename path → path.prev; rename tmp → path. */
int wk_ckw_commit(wk_ckw_t *w, const char *path, int keep_prev, lrq_err_t *err);
void wk_ckw_abort(wk_ckw_t *w);

typedef struct wk_ckr {
    uint8_t *map;
    size_t len;
} wk_ckr_t;

/* Map and verify. LRQ_ECHECKSUM / LRQ_EFORMAT with the reason when bad. */
int wk_ckr_open(wk_ckr_t *r, const char *path, lrq_err_t *err);
/* First section with this tag, or NULL. */
const void *wk_ckr_get(const wk_ckr_t *r, uint32_t tag, size_t *len);
void wk_ckr_close(wk_ckr_t *r);

/* sha256 of what changes a job's result (the spec without threads, eval, export and daemon
 * fields): every checkpoint carries it, so a resume never mixes two specs' work. */
void wk_ckpt_spec_hash(const json_t *spec, uint8_t out[32]);

/* A big activation buffer: anonymous memory, or (file != NULL) an unlinked file in the work
 * dir, mapped shared, when the caches would not fit in memory. */
typedef struct wk_buf {
    float *p;
    size_t bytes;
} wk_buf_t;
/* Bytes of activation cache kept in memory: LRQ_CACHE_MEM_MB, else a quarter of physical RAM. */
size_t wk_cache_limit_bytes(void);
int wk_buf_new(wk_buf_t *b, size_t nfloat, const char *file, lrq_err_t *err);
void wk_buf_free(wk_buf_t *b);

#endif
