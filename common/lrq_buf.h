/* lrq_buf.h — one way to grow memory: lrq_grow for arrays of any element,
 * lrq_buf_t for bytes. Capacity doubles (from 8 elements or 256 bytes), sizes
 * are overflow-checked, and on failure the old block is left as it was (the
 * caller still owns it), so every caller has one error path. */
#ifndef LRQ_BUF_H
#define LRQ_BUF_H
#include <stddef.h>

/* *(void **)pp is an array of *cap elements of elem bytes: make room for at
 * least need elements. 0, or LRQ_ENOMEM (nothing changed). */
int lrq_grow(void *pp, size_t *cap, size_t need, size_t elem);

typedef struct lrq_buf {
    char *p;          /* NUL-terminated after any append (p[len] == 0) */
    size_t len, cap;
} lrq_buf_t;

int lrq_buf_append(lrq_buf_t *b, const void *data, size_t n);   /* 0 or LRQ_ENOMEM */
int lrq_buf_printf(lrq_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the bytes to the caller (free() them): always a NUL-terminated string ("" when
 * nothing was appended), NULL only when out of memory; b is empty afterwards. */
char *lrq_buf_take(lrq_buf_t *b, size_t *len);
void lrq_buf_free(lrq_buf_t *b);
#endif
