/* test_range.c — daemon/range.c against RFC 9110's single-range examples. */
#include <criterion/criterion.h>
#include "daemon/range.h"

static void want(const char *h, uint64_t size, int status, uint64_t off, uint64_t len)
{
    uint64_t o = 77, l = 77;
    int st = range_parse(h, size, &o, &l);
    cr_expect_eq(st, status, "\"%s\" of %llu: status %d", h ? h : "(null)", (unsigned long long)size, st);
    if (st != RANGE_UNSATISFIABLE) {
        cr_expect_eq(o, off, "\"%s\": off %llu", h ? h : "(null)", (unsigned long long)o);
        cr_expect_eq(l, len, "\"%s\": len %llu", h ? h : "(null)", (unsigned long long)l);
    }
}

Test(range, forms)
{
    want(NULL, 10000, RANGE_ALL, 0, 10000);
    want("bytes=0-499", 10000, RANGE_PARTIAL, 0, 500);
    want("bytes=500-999", 10000, RANGE_PARTIAL, 500, 500);
    want("bytes=9500-", 10000, RANGE_PARTIAL, 9500, 500);
    want("bytes=-500", 10000, RANGE_PARTIAL, 9500, 500);
    want("bytes=0-0", 10000, RANGE_PARTIAL, 0, 1);
    want("bytes=9999-", 10000, RANGE_PARTIAL, 9999, 1);
    want("bytes=5000-99999", 10000, RANGE_PARTIAL, 5000, 5000);   /* last-pos clipped */
    want("bytes=-20000", 10000, RANGE_PARTIAL, 0, 10000);         /* suffix longer than the file */
}

Test(range, unsatisfiable)
{
    want("bytes=10000-", 10000, RANGE_UNSATISFIABLE, 0, 0);
    want("bytes=10000-10001", 10000, RANGE_UNSATISFIABLE, 0, 0);
    want("bytes=-0", 10000, RANGE_UNSATISFIABLE, 0, 0);
    want("bytes=0-", 0, RANGE_UNSATISFIABLE, 0, 0);
}

Test(range, ignored_headers_send_everything)
{
    const char *bad[] = {"bytes=0-1,5-6", "bytes=5-1", "bytes=a-b", "bytes=1-x", "items=0-1", "bytes=", "bytes=-",
                         "bytes=--1", "bytes= 1-2", "bytes=-+5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) want(bad[i], 100, RANGE_ALL, 0, 100);
}
