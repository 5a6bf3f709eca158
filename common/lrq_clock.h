/* lrq_clock.h — the project's two clocks. Wall time (unix ms) is for what is
 * stored or shown (job timestamps, log lines); monotonic time is for every
 * interval, deadline and ETA, so that a clock step cannot fire or starve a
 * timeout. */
#ifndef LRQ_CLOCK_H
#define LRQ_CLOCK_H
#include <stdint.h>
uint64_t lrq_wall_ms(void);   /* CLOCK_REALTIME, ms since the epoch */
uint64_t lrq_mono_ms(void);   /* CLOCK_MONOTONIC, ms */
double lrq_mono_s(void);      /* CLOCK_MONOTONIC, seconds with ns resolution */
#endif
