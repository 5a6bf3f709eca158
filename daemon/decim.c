/* decim.c — see decim.h. */
#include "decim.h"

void decim_init(decim_t *d, int64_t cap)
{
    d->seen = 0;
    d->stride = 1;
    d->cap = cap < 2 ? 2 : cap;
}

int64_t decim_push(decim_t *d)
{
    int64_t k = d->seen++;
    /* Grid samples among 0..seen-1: those with j % stride == 0. */
    while ((d->seen - 1) / d->stride + 1 > d->cap) d->stride *= 2;
    return k;
}

int decim_keep(const decim_t *d, int64_t j)
{
    if (j < 0 || j >= d->seen) return 0;
    return j % d->stride == 0 || j == d->seen - 1;
}

int64_t decim_cap(int is_block, int64_t blocks)
{
    if (!is_block) return DECIM_STAGE_CAP;
    int64_t c = blocks > 0 ? DECIM_BLOCK_BUDGET / blocks : DECIM_BLOCK_BUDGET;
    return c < DECIM_BLOCK_MIN_CAP ? DECIM_BLOCK_MIN_CAP : c;
}
