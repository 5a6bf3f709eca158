/* sse.c — see sse.h. */
#include "sse.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSE_MAX_BUF (1 << 20)

struct sse {
    sse_t *next, *prev;
    sse_hub_t *hub;
    int64_t job_id;
    struct MHD_Connection *conn;
    lrq_buf_t buf;
    size_t off;            /* sent so far */
    int ended, suspended, linked, refs;
};

sse_t *sse_new(sse_hub_t *h, int64_t job_id, struct MHD_Connection *c)
{
    sse_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->hub = h;
    s->job_id = job_id;
    s->conn = c;
    s->refs = 2;
    s->next = h->head;
    if (h->head) h->head->prev = s;
    h->head = s;
    s->linked = 1;
    return s;
}

static void sse__unlink(sse_t *s)
{
    if (!s->linked) return;
    if (s->prev) s->prev->next = s->next;
    else s->hub->head = s->next;
    if (s->next) s->next->prev = s->prev;
    s->linked = 0;
    s->next = s->prev = NULL;
}

void sse_release(sse_t *s)
{
    sse__unlink(s);       /* no more events once either side is gone */
    if (--s->refs) return;
    lrq_buf_free(&s->buf);
    free(s);
}

void sse_free_cb(void *cls) { sse_release(cls); }

static void sse__resume(sse_t *s)
{
    if (s->suspended && s->linked) {
        s->suspended = 0;
        MHD_resume_connection(s->conn);
        if (s->hub->kick) s->hub->kick(s->hub->kick_ctx);
    }
}

static int sse__append(sse_t *s, const char *p, size_t n)
{
    if (s->off && s->off == s->buf.len) s->off = s->buf.len = 0;
    if (s->buf.len + n > SSE_MAX_BUF || lrq_buf_append(&s->buf, p, n)) {
        s->ended = 1;     /* a client that does not read (or no memory): end its stream */
        return -1;
    }
    return 0;
}

int sse_push(sse_t *s, const char *event, json_t *data, int end)
{
    char *js = json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(10));
    if (!js) return -1;
    char head[64];
    int hn = snprintf(head, sizeof head, "event: %s\ndata: ", event);
    int rc = sse__append(s, head, hn) || sse__append(s, js, strlen(js)) || sse__append(s, "\n\n", 2);
    free(js);
    if (end) s->ended = 1;
    sse__resume(s);
    return rc ? -1 : 0;
}

void sse_publish(sse_hub_t *h, int64_t job_id, const char *event, json_t *data, int end)
{
    for (sse_t *s = h->head, *nx; s; s = nx) {
        nx = s->next;
        if (s->job_id == job_id && !s->ended) sse_push(s, event, data, end);
    }
}

void sse_ping(sse_hub_t *h)
{
    for (sse_t *s = h->head; s; s = s->next)
        if (!s->ended) { sse__append(s, ": ping\n\n", 8); sse__resume(s); }
}

void sse_end_all(sse_hub_t *h)
{
    for (sse_t *s = h->head; s; s = s->next) { s->ended = 1; sse__resume(s); }
}

int sse_any(const sse_hub_t *h) { return h->head != NULL; }

ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    sse_t *s = cls;
    if (s->off < s->buf.len) {
        size_t n = s->buf.len - s->off;
        if (n > max) n = max;
        memcpy(buf, s->buf.p + s->off, n);
        s->off += n;
        return (ssize_t)n;
    }
    if (s->ended || !s->linked) return MHD_CONTENT_READER_END_OF_STREAM;
    /* Nothing to send: park the connection until sse_publish resumes it. */
    s->suspended = 1;
    MHD_suspend_connection(s->conn);
    return 0;
}
