/* lines.c — bounded line splitter (see lines.h). */
#include "lines.h"
#include "lrq_err.h"
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

int lines_init(lines_t *l, size_t max_line)
{
    l->len = l->scanned = 0;
    l->cap = max_line + 2;   /* line + '\n' + NUL */
    l->buf = malloc(l->cap);
    return l->buf ? 0 : LRQ_ENOMEM;
}

void lines_close(lines_t *l)
{
    free(l->buf);
    l->buf = NULL;
    l->cap = l->len = l->scanned = 0;
}

void lines_space(lines_t *l, char **p, size_t *n)
{
    /* Keep one byte for the NUL of a maximal line. */
    *p = l->buf + l->len;
    *n = l->cap - 1 - l->len;
}

static int lines__emit(char *s, size_t n, lines_cb cb, void *ud)
{
    if (n && s[n - 1] == '\r') n--;
    s[n] = 0;
    return cb(ud, s, n);
}

int lines_commit(lines_t *l, size_t n, lines_cb cb, void *ud)
{
    size_t scan = l->scanned; /* bytes before this were already searched */
    l->len += n;
    size_t start = 0;
    int rc = 0;
    char *nl;
    while (!rc && (nl = memchr(l->buf + scan, '\n', l->len - scan))) {
        size_t end = nl - l->buf;
        rc = lines__emit(l->buf + start, end - start, cb, ud);
        start = scan = end + 1;
    }
    if (start) {
        memmove(l->buf, l->buf + start, l->len - start);
        l->len -= start;
    }
    /* Stopped early: the rest was not searched, so the next commit starts over. */
    l->scanned = rc ? 0 : l->len;
    if (rc) return rc;
    if (l->len >= l->cap - 1) {    /* full and no newline: the line is too long */
        l->len = l->scanned = 0;
        return LINES_EOVERLONG;
    }
    return 0;
}

int lines_feed(lines_t *l, const char *data, size_t n, lines_cb cb, void *ud)
{
    while (n) {
        char *p;
        size_t room;
        lines_space(l, &p, &room);
        size_t k = n < room ? n : room;
        memcpy(p, data, k);
        int rc = lines_commit(l, k, cb, ud);
        if (rc) return rc;
        data += k;
        n -= k;
    }
    return 0;
}

int lines_finish(lines_t *l, lines_cb cb, void *ud)
{
    if (!l->len) return 0;
    size_t n = l->len;
    l->len = l->scanned = 0;
    return lines__emit(l->buf, n, cb, ud);
}

void wev_parse(const char *line, size_t len, wev_t *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->obj = json_loadb(line, len, 0, NULL);
    ev->name = ev->obj ? json_string_value(json_object_get(ev->obj, "event")) : NULL;
    if (!ev->name) return;
    if (!strcmp(ev->name, "progress")) {
        ev->kind = WEV_PROGRESS;
        if ((ev->progress = json_deep_copy(ev->obj))) json_object_del(ev->progress, "event");
        else ev->kind = WEV_GARBAGE; /* out of memory: drop the update */
    } else if (!strcmp(ev->name, "error")) {
        ev->kind = WEV_ERROR;
        const char *m = json_string_value(json_object_get(ev->obj, "message"));
        const char *f = json_string_value(json_object_get(ev->obj, "field"));
        /* The protocol's message already reads "field: reason"; prefix the field
         * only when a worker left it out, so that it is named once. */
        size_t fl = f ? strlen(f) : 0;
        int named = !f || !*f || (!strncmp(m ? m : "", f, fl) && m[fl] == ':');
        if (m) snprintf(ev->error, sizeof ev->error, "%s%s%.1000s", named ? "" : f, named ? "" : ": ", m);
    } else if (!strcmp(ev->name, "start")) {
        ev->kind = WEV_START;
    } else if (!strcmp(ev->name, "resume")) {
        ev->kind = WEV_RESUME;
    } else {
        ev->kind = WEV_OTHER;
    }
}

void wev_clear(wev_t *ev)
{
    json_decref(ev->progress);
    json_decref(ev->obj);
    memset(ev, 0, sizeof *ev);
}
