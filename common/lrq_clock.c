#include "lrq_clock.h"
#include <time.h>

static uint64_t clock__ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t lrq_wall_ms(void) { return clock__ms(CLOCK_REALTIME); }
uint64_t lrq_mono_ms(void) { return clock__ms(CLOCK_MONOTONIC); }

double lrq_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
