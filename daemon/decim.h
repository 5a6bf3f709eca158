/* decim.h — the decimation rule of the progress history (docs/daemon.md,
 * "Progress history"). Pure, for tests/unit/test_decim.c.
 *
 * A job's samples fall into segments: one per reconstructed block, one per
 * other stage. Within a segment, sample k (0, 1, 2, … in arrival order) is kept
 * while it lies on the grid k % stride == 0 or is the newest one. The stride
 * starts at 1 and doubles whenever the grid would hold more than cap samples,
 * which drops every other grid sample. So a segment holds at most cap + 1
 * samples, always its first and its newest (the last, once it ends), evenly
 * spaced in arrival order, and at least cap/2 once it has seen more than cap. */
#ifndef LRQD_DECIM_H
#define LRQD_DECIM_H
#include <stdint.h>

/* What a job may hold in all its reconstruction blocks together, and per other stage. */
#define DECIM_BLOCK_BUDGET 4000
#define DECIM_BLOCK_MIN_CAP 32
#define DECIM_STAGE_CAP 128

typedef struct decim {
    int64_t seen;     /* samples offered so far */
    int64_t stride;   /* grid spacing, a power of two */
    int64_t cap;      /* most grid samples (≥ 2) */
} decim_t;

void decim_init(decim_t *d, int64_t cap);
/* Offer the next sample: returns its index k. Afterwards the kept set is
 * { j ≤ k : decim_keep(d, j) }. */
int64_t decim_push(decim_t *d);
/* 1 if sample j (< seen) is kept now. */
int decim_keep(const decim_t *d, int64_t j);
/* The cap of a segment: a block of a reconstruction over `blocks` blocks gets
 * max(DECIM_BLOCK_MIN_CAP, DECIM_BLOCK_BUDGET / blocks); any other stage DECIM_STAGE_CAP. */
int64_t decim_cap(int is_block, int64_t blocks);
#endif
