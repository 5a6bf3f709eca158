#include "lrq_buf.h"
#include "lrq_err.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lrq_grow(void *pp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : (elem == 1 ? 256 : 8);
    while (nc < need) {
        if (nc > SIZE_MAX / 2) return LRQ_ENOMEM;
        nc *= 2;
    }
    if (elem && nc > SIZE_MAX / elem) return LRQ_ENOMEM;
    void *np = realloc(*(void **)pp, nc * elem);
    if (!np) return LRQ_ENOMEM;
    *(void **)pp = np;
    *cap = nc;
    return 0;
}

int lrq_buf_append(lrq_buf_t *b, const void *data, size_t n)
{
    if (n > SIZE_MAX - b->len - 1 || lrq_grow(&b->p, &b->cap, b->len + n + 1, 1)) return LRQ_ENOMEM;
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

int lrq_buf_printf(lrq_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || lrq_grow(&b->p, &b->cap, b->len + (size_t)n + 1, 1)) return LRQ_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *lrq_buf_take(lrq_buf_t *b, size_t *len)
{
    char *p = b->p ? b->p : calloc(1, 1);   /* never appended to: "" */
    if (len) *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void lrq_buf_free(lrq_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
