/* cli_sse.c — incremental Server-Sent Events parser (WHATWG "event stream
 * interpretation"): lines end in CRLF, LF or CR, possibly split anywhere
 * between chunks; "data:" lines accumulate; a blank line dispatches; lines
 * starting with ':' are comments; "id"/"retry" are ignored. Line and event
 * size are bounded so a hostile server cannot make us grow without limit. */
#include "lrq_buf.h"
#include "cli.h"
#include <stdlib.h>
#include <string.h>

#define CLI_SSE_MAX (1u << 20)

void cli_sse_init(cli_sse_t *s, cli_sse_cb cb, void *ud)
{
    memset(s, 0, sizeof *s);
    s->max = CLI_SSE_MAX;
    s->cb = cb;
    s->ud = ud;
}

void cli_sse_free(cli_sse_t *s)
{
    free(s->line);
    free(s->data);
    s->line = s->data = NULL;
    s->line_len = s->line_cap = s->data_len = s->data_cap = 0;
}

/* Ensure room for need+1 bytes (NUL). */
static int grow(char **b, size_t *cap, size_t need, size_t max)
{
    if (need > max)
        return LRQ_EFORMAT;
    return lrq_grow(b, cap, need + 1, 1);
}

static int dispatch(cli_sse_t *s)
{
    int rc = 0;
    if (s->have_data) {
        if (s->data_len && s->data[s->data_len - 1] == '\n')
            s->data_len--;
        s->data[s->data_len] = '\0';
        rc = s->cb(s->ud, s->event[0] ? s->event : "message", s->data);
    }
    s->data_len = 0;
    s->have_data = 0;
    s->event[0] = '\0';
    return rc < 0 ? rc : 0;
}

static int process_line(cli_sse_t *s)
{
    const char *l = s->line ? s->line : "";
    size_t n = s->line_len;
    if (n == 0)
        return dispatch(s);
    if (l[0] == ':')
        return 0;
    const char *colon = memchr(l, ':', n);
    size_t flen = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    size_t vlen = (size_t)(l + n - v);
    if (vlen && *v == ' ')
        v++, vlen--;
    if (flen == 5 && memcmp(l, "event", 5) == 0) {
        if (vlen >= sizeof s->event)
            vlen = sizeof s->event - 1;
        memcpy(s->event, v, vlen);
        s->event[vlen] = '\0';
    } else if (flen == 4 && memcmp(l, "data", 4) == 0) {
        int rc = grow(&s->data, &s->data_cap, s->data_len + vlen + 1, s->max);
        if (rc)
            return rc;
        memcpy(s->data + s->data_len, v, vlen);
        s->data_len += vlen;
        s->data[s->data_len++] = '\n';
        s->have_data = 1;
    }
    return 0;
}

int cli_sse_feed(cli_sse_t *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '\n' && s->last_cr) {   /* second half of CRLF */
            s->last_cr = 0;
            continue;
        }
        s->last_cr = ch == '\r';
        if (ch == '\r' || ch == '\n') {
            int rc = process_line(s);
            s->line_len = 0;
            if (rc)
                return rc;
            continue;
        }
        int rc = grow(&s->line, &s->line_cap, s->line_len + 1, s->max);
        if (rc)
            return rc;
        s->line[s->line_len++] = ch;
        s->line[s->line_len] = '\0';
    }
    return 0;
}
