/* range.c — see range.h. */
#include "range.h"
#include <stdlib.h>
#include <string.h>

int range_parse(const char *header, uint64_t size, uint64_t *off, uint64_t *len)
{
    *off = 0;
    *len = size;
    if (!header || strncmp(header, "bytes=", 6) || strchr(header, ',')) return RANGE_ALL;
    const char *p = header + 6;
    char *e;
    unsigned long long a, b;
    if (*p == '-') {                                            /* suffix: the last N bytes */
        if (p[1] < '0' || p[1] > '9') return RANGE_ALL;
        b = strtoull(p + 1, &e, 10);
        if (*e) return RANGE_ALL;
        if (b == 0 || size == 0) return RANGE_UNSATISFIABLE;
        *off = b >= size ? 0 : size - b;
        *len = size - *off;
        return RANGE_PARTIAL;
    }
    if (*p < '0' || *p > '9') return RANGE_ALL;
    a = strtoull(p, &e, 10);
    if (*e != '-') return RANGE_ALL;
    const char *q = e + 1;
    if (*q) {
        if (*q < '0' || *q > '9') return RANGE_ALL;
        b = strtoull(q, &e, 10);
        if (*e || b < a) return RANGE_ALL;
    } else {
        b = size ? size - 1 : 0;
    }
    if (a >= size) return RANGE_UNSATISFIABLE;
    if (b >= size) b = size - 1;
    *off = a;
    *len = b - a + 1;
    return RANGE_PARTIAL;
}
