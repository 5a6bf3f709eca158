/* fuzz_lines.c — lrqd's worker-stdout path: the bounded line splitter
 * (daemon/lines.c) driven the way exec_local.c drives it (lines_space → "read"
 * of a random size → lines_commit, lines_finish at EOF), every delivered line
 * parsed as a worker protocol event the way sched.c:on_line does.
 *
 * Input: byte 0 = max_line - 1 (1..256), bytes 1-2 = seed for the read sizes,
 * byte 3 bit 0 = make the callback stop after the first line; the rest is the
 * stream. The lines delivered before the first LINES_EOVERLONG (or EOF) must
 * equal an independent split of the stream.
 *
 * The JSON handling below mirrors sched.c:on_line, which is static; see the
 * fuzz report for the function lrqd should expose so that this calls it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "daemon/lines.h"

typedef struct fz_lines {
    const uint8_t *ref;      /* the stream, for the reference split */
    size_t ref_len, ref_pos; /* next expected line starts at ref_pos */
    size_t max_line;
    int checking;            /* 0 after the first error: later lines are only checked for shape */
    int stop_after_first, n;
    char *progress;          /* last progress object, compact (as sched__write_progress) */
    char last_error[1200];
} fz_lines_t;

/* The daemon's own event parser (sched.c:on_line minus logging and the database). */
static void fz_lines_event(fz_lines_t *z, const char *line, size_t len)
{
    wev_t ev;
    wev_parse(line, len, &ev);
    if (ev.kind == WEV_PROGRESS) {
        free(z->progress);
        z->progress = json_dumps(ev.progress, JSON_COMPACT);
    } else if (ev.kind == WEV_ERROR && ev.error[0]) {
        snprintf(z->last_error, sizeof z->last_error, "%s", ev.error);
    }
    if ((ev.kind == WEV_GARBAGE) != (ev.name == NULL)) __builtin_trap();
    wev_clear(&ev);
}

static int fz_lines_cb(void *ud, char *line, size_t len)
{
    fz_lines_t *z = ud;
    if (len > z->max_line || line[len] != 0 || memchr(line, '\n', len)) __builtin_trap();
    if (z->checking) {
        /* Reference: the next '\n'-terminated (or final) segment, one trailing '\r' dropped. */
        const uint8_t *s = z->ref + z->ref_pos, *nl = memchr(s, '\n', z->ref_len - z->ref_pos);
        size_t seg = nl ? (size_t)(nl - s) : z->ref_len - z->ref_pos, want = seg;
        if (want && s[want - 1] == '\r') want--;
        if (seg > z->max_line || want != len || memcmp(s, line, len)) __builtin_trap();
        z->ref_pos += seg + (nl != NULL);
    }
    fz_lines_event(z, line, len);
    z->n++;
    return z->stop_after_first ? 1 : 0;
}

/* Length of the next expected segment (without its '\n'). */
static size_t fz_lines_next_seg(const fz_lines_t *z)
{
    const uint8_t *s = z->ref + z->ref_pos, *nl = memchr(s, '\n', z->ref_len - z->ref_pos);
    return nl ? (size_t)(nl - s) : z->ref_len - z->ref_pos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    fz_lines_t z = {0};
    z.max_line = (size_t)data[0] + 1;
    uint32_t rng = ((uint32_t)data[1] << 8 | data[2]) * 2654435761u + 1;
    z.stop_after_first = data[3] & 1;
    z.ref = data + 4;
    z.ref_len = size - 4;
    z.checking = 1;
    lines_t l;
    if (lines_init(&l, z.max_line)) return 0;
    size_t pos = 0;
    int rc = 0, overlong = 0, stopped = 0;
    while (pos < z.ref_len) {
        char *p;
        size_t room;
        lines_space(&l, &p, &room);
        if (room == 0) __builtin_trap();   /* "never 0 after a successful commit" */
        rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
        size_t k = (rng & 3) == 0 ? room : 1 + rng % room;   /* short reads and full ones */
        if (k > z.ref_len - pos) k = z.ref_len - pos;
        memcpy(p, z.ref + pos, k);
        pos += k;
        rc = lines_commit(&l, k, fz_lines_cb, &z);
        if (rc == LINES_EOVERLONG) {
            /* Everything before the offending segment was delivered, and it is too long. */
            if (z.checking && fz_lines_next_seg(&z) <= z.max_line) __builtin_trap();
            z.checking = 0;
            overlong = 1;            /* exec_local.c keeps reading and ignores the rest */
        } else if (rc == 1) {
            stopped = 1;             /* a stopping caller abandons the stream */
            break;
        } else if (rc) {
            __builtin_trap();
        }
    }
    if (!stopped) {
        rc = lines_finish(&l, fz_lines_cb, &z);
        if (rc != 0 && !(rc == 1 && z.stop_after_first)) __builtin_trap();
        /* No error and no stop: every byte was delivered. */
        if (!overlong && rc == 0 && z.ref_pos != z.ref_len) __builtin_trap();
    }
    lines_close(&l);
    free(z.progress);
    return 0;
}
