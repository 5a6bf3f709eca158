/* test_lines.c — daemon/lines.c: lines split across reads, CRLF, overlong
 * lines, the trailing partial line at EOF. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/lines.h"

typedef struct { char got[16][128]; int n; int stop_at; } sink_t;

static int on_line(void *ud, char *line, size_t len)
{
    sink_t *s = ud;
    cr_assert_eq(strlen(line), len, "NUL-terminated at len");
    cr_assert_lt(s->n, 16);
    snprintf(s->got[s->n], sizeof s->got[0], "%s", line);
    s->n++;
    return s->stop_at && s->n == s->stop_at ? 7 : 0;
}

Test(lines, split_across_reads_byte_by_byte)
{
    lines_t l;
    cr_assert_eq(lines_init(&l, 64), 0);
    sink_t s = {0};
    const char *in = "{\"a\":1}\nsecond line\r\n\nthird";
    for (size_t i = 0; i < strlen(in); i++) cr_assert_eq(lines_feed(&l, in + i, 1, on_line, &s), 0);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.got[0], "{\"a\":1}");
    cr_assert_str_eq(s.got[1], "second line", "CR before LF is dropped");
    cr_assert_str_eq(s.got[2], "");
    cr_assert_eq(lines_finish(&l, on_line, &s), 0);
    cr_assert_eq(s.n, 4);
    cr_assert_str_eq(s.got[3], "third", "trailing partial line delivered at EOF");
    cr_assert_eq(lines_finish(&l, on_line, &s), 0);
    cr_assert_eq(s.n, 4, "only once");
    lines_close(&l);
}

Test(lines, many_lines_in_one_read)
{
    lines_t l;
    cr_assert_eq(lines_init(&l, 16), 0);
    sink_t s = {0};
    cr_assert_eq(lines_feed(&l, "a\nbb\nccc\ndd", 11, on_line, &s), 0);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.got[2], "ccc");
    cr_assert_eq(lines_feed(&l, "d\n", 2, on_line, &s), 0);
    cr_assert_str_eq(s.got[3], "ddd");
    lines_close(&l);
}

Test(lines, exact_max_line_fits_one_more_is_overlong)
{
    lines_t l;
    cr_assert_eq(lines_init(&l, 8), 0);
    sink_t s = {0};
    cr_assert_eq(lines_feed(&l, "12345678\n", 9, on_line, &s), 0);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.got[0], "12345678");
    cr_assert_eq(lines_feed(&l, "123456789", 9, on_line, &s), LINES_EOVERLONG);
    cr_assert_eq(s.n, 1, "no line delivered for the overlong data");
    lines_close(&l);
}

Test(lines, overlong_across_many_reads_without_newline)
{
    lines_t l;
    cr_assert_eq(lines_init(&l, 100), 0);
    sink_t s = {0};
    char chunk[30];
    memset(chunk, 'x', sizeof chunk);
    int rc = 0, reads = 0;
    while (!rc && reads < 100) { rc = lines_feed(&l, chunk, sizeof chunk, on_line, &s); reads++; }
    cr_assert_eq(rc, LINES_EOVERLONG);
    cr_assert_eq(reads, 4, "detected as soon as 101 bytes without newline are buffered");
    lines_close(&l);
}

Test(lines, callback_can_stop)
{
    lines_t l;
    cr_assert_eq(lines_init(&l, 32), 0);
    sink_t s = {.stop_at = 2};
    cr_assert_eq(lines_feed(&l, "a\nb\nc\n", 6, on_line, &s), 7);
    cr_assert_eq(s.n, 2);
    lines_close(&l);
}

/* After a stop, feeding on must still split what was left in the buffer (found by
 * reading the code while writing the fuzz harness: "c" and "d" used to merge). */
Test(lines, feeding_after_a_stop_keeps_lines_apart)
{
    lines_t l;
    cr_assert_eq(lines_init(&l, 32), 0);
    sink_t s = {.stop_at = 1};
    cr_assert_eq(lines_feed(&l, "a\nb\nc\n", 6, on_line, &s), 7);
    s.stop_at = 0;
    cr_assert_eq(lines_feed(&l, "d\n", 2, on_line, &s), 0);
    cr_assert_eq(s.n, 4, "got %d lines", s.n);
    cr_assert_str_eq(s.got[1], "b");
    cr_assert_str_eq(s.got[2], "c");
    cr_assert_str_eq(s.got[3], "d");
    lines_close(&l);
}

Test(lines, direct_space_commit)
{
    lines_t l;
    cr_assert_eq(lines_init(&l, 10), 0);
    sink_t s = {0};
    char *p;
    size_t n;
    lines_space(&l, &p, &n);
    cr_assert_eq(n, 11);
    memcpy(p, "abc\nde", 6);
    cr_assert_eq(lines_commit(&l, 6, on_line, &s), 0);
    lines_space(&l, &p, &n);
    cr_assert_eq(n, 9, "partial 'de' kept at the front");
    memcpy(p, "f\n", 2);
    cr_assert_eq(lines_commit(&l, 2, on_line, &s), 0);
    cr_assert_eq(s.n, 2);
    cr_assert_str_eq(s.got[1], "def");
    lines_close(&l);
}

/* Worker error events: the field is named once, whether or not the worker's
 * message already starts with it (the protocol says it does). */
static void error_text(const char *line, char *out, size_t n)
{
    wev_t ev;
    wev_parse(line, strlen(line), &ev);
    cr_assert_eq(ev.kind, WEV_ERROR);
    snprintf(out, n, "%s", ev.error);
    wev_clear(&ev);
}

Test(wev, error_names_the_field_once)
{
    char got[1300];
    error_text("{\"event\":\"error\",\"message\":\"model: /m.bin: bad header\",\"field\":\"model\"}", got, sizeof got);
    cr_expect_str_eq(got, "model: /m.bin: bad header");
    error_text("{\"event\":\"error\",\"message\":\"/m.bin: bad header\",\"field\":\"model\"}", got, sizeof got);
    cr_expect_str_eq(got, "model: /m.bin: bad header");
    error_text("{\"event\":\"error\",\"message\":\"modelx: y\",\"field\":\"model\"}", got, sizeof got);
    cr_expect_str_eq(got, "model: modelx: y", "a longer name is not the field");
    error_text("{\"event\":\"error\",\"message\":\"disk full\",\"field\":null}", got, sizeof got);
    cr_expect_str_eq(got, "disk full");
    error_text("{\"event\":\"error\",\"message\":\"disk full\"}", got, sizeof got);
    cr_expect_str_eq(got, "disk full");
}
