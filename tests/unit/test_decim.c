/* test_decim.c — daemon/decim.c against a direct simulation of the rule in
 * docs/daemon.md ("Progress history"), written here from the words rather than
 * the arithmetic: a set of stored sample numbers; each new sample is stored;
 * the previous newest one is removed unless it is on the grid; whenever the
 * grid holds more than cap samples, every other grid sample is removed (the
 * ones at odd positions among the grid, counting from 0) and the spacing
 * doubles. The two must agree on the kept set after every single push. Exact
 * integer comparison: there is no rounding anywhere. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/decim.h"

typedef struct { int64_t *k; int n; int64_t spacing; } sim_t;

static int sim_on_grid(const sim_t *s, int64_t k) { return k % s->spacing == 0; }

static void sim_push(sim_t *s, int64_t k, int64_t cap)
{
    if (s->n && !sim_on_grid(s, s->k[s->n - 1])) s->n--;        /* the old newest, off the grid */
    s->k[s->n++] = k;
    for (;;) {
        int grid = 0;
        for (int i = 0; i < s->n; i++) grid += sim_on_grid(s, s->k[i]);
        if (grid <= cap) break;
        /* drop every other grid sample: the grid ones at odd positions */
        int pos = 0, m = 0;
        for (int i = 0; i < s->n; i++) {
            int g = sim_on_grid(s, s->k[i]);
            int keep = !g || pos % 2 == 0 || i == s->n - 1;
            if (g) pos++;
            if (keep) s->k[m++] = s->k[i];
        }
        s->n = m;
        s->spacing *= 2;
    }
}

static void run(int64_t cap, int64_t pushes)
{
    decim_t d;
    decim_init(&d, cap);
    sim_t s = {.k = calloc(pushes + 2, sizeof(int64_t)), .n = 0, .spacing = 1};
    cr_assert(s.k);
    for (int64_t i = 0; i < pushes; i++) {
        int64_t k = decim_push(&d);
        cr_assert_eq(k, i, "sample number");
        sim_push(&s, k, cap);
        int kept = 0;
        for (int64_t j = 0; j <= k; j++) kept += decim_keep(&d, j);
        cr_assert_eq(kept, s.n, "cap %lld after %lld pushes: %d kept, simulation %d", (long long)cap,
                     (long long)i + 1, kept, s.n);
        for (int m = 0; m < s.n; m++)
            cr_assert(decim_keep(&d, s.k[m]), "cap %lld push %lld: %lld should be kept", (long long)cap,
                      (long long)i, (long long)s.k[m]);
        /* The bounds the docs promise. */
        cr_assert(kept <= cap + 1);
        cr_assert(decim_keep(&d, 0) && decim_keep(&d, k), "first and newest are kept");
        if (i + 1 > cap) cr_assert(kept >= cap / 2, "at least cap/2 once past cap: %d", kept);
    }
    free(s.k);
}

Test(decim, matches_the_simulation)
{
    int64_t caps[] = {2, 3, 5, 32, 33, 128};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) run(caps[i], 1500);
}

Test(decim, grid_is_evenly_spaced)
{
    decim_t d;
    decim_init(&d, 32);
    for (int i = 0; i < 10000; i++) decim_push(&d);
    /* The kept grid samples are multiples of one stride, contiguous from 0. */
    int64_t prev = -1, gap = -1;
    for (int64_t j = 0; j < d.seen - 1; j++) {
        if (!decim_keep(&d, j)) continue;
        if (prev >= 0) {
            if (gap < 0) gap = j - prev;
            cr_assert_eq(j - prev, gap, "uneven spacing at %lld", (long long)j);
        }
        prev = j;
    }
    cr_assert_eq(gap, d.stride);
    cr_assert(decim_keep(&d, 9999));
}

Test(decim, caps)
{
    cr_assert_eq(decim_cap(0, 5), DECIM_STAGE_CAP);
    cr_assert_eq(decim_cap(1, 5), DECIM_BLOCK_BUDGET / 5);
    cr_assert_eq(decim_cap(1, 32), DECIM_BLOCK_BUDGET / 32);
    cr_assert_eq(decim_cap(1, 1000), DECIM_BLOCK_MIN_CAP);
    cr_assert_eq(decim_cap(1, 0), DECIM_BLOCK_BUDGET);
    /* A 32-block job of 10^6 samples per block stays within the budget plus one newest per segment. */
    decim_t d;
    decim_init(&d, decim_cap(1, 32));
    for (int i = 0; i < 1000000; i++) decim_push(&d);
    int kept = 0;
    for (int64_t j = 0; j < d.seen; j++) kept += decim_keep(&d, j);
    cr_assert(kept * 32 <= DECIM_BLOCK_BUDGET + 32, "%d per block", kept);
}
