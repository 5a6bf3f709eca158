/* lines.h — bounded line splitter for a child's stdout (docs/contributing.md, "Daemon").
 *
 * A fixed buffer of max_line+2 bytes per stream. Reads go straight into the
 * free tail (lines_space → read → lines_commit), every complete line is handed
 * to the callback NUL-terminated without its '\n' (and without a '\r' before
 * it), and the remainder is moved to the front. A line longer than max_line
 * bytes is an error (LINES_EOVERLONG): the caller kills the producer. At EOF
 * lines_finish delivers a trailing line that had no '\n'. */
#ifndef LRQ_LINES_H
#define LRQ_LINES_H
#include <stddef.h>

enum { LINES_EOVERLONG = -4201 };

typedef struct lines {
    char *buf;
    size_t cap;   /* max_line + 2 */
    size_t len;   /* bytes held (a partial line) */
    size_t scanned; /* of those, already searched for '\n' (0 after a stop: lines may remain) */
} lines_t;

/* Returns nonzero to stop; lines_commit/feed then return that value. */
typedef int (*lines_cb)(void *ud, char *line, size_t len);

int lines_init(lines_t *l, size_t max_line);   /* 0 or LRQ_ENOMEM */
void lines_close(lines_t *l);
/* Free space to read into (never 0 after a successful commit). */
void lines_space(lines_t *l, char **p, size_t *n);
/* n bytes were written at the lines_space pointer. */
int lines_commit(lines_t *l, size_t n, lines_cb cb, void *ud);
/* Copying convenience for tests and fuzzers: splits data into commits. */
int lines_feed(lines_t *l, const char *data, size_t n, lines_cb cb, void *ud);
/* EOF: deliver the trailing partial line, if any. */
int lines_finish(lines_t *l, lines_cb cb, void *ud);

/* ---- worker events: one stdout line of the worker protocol (docs/worker-protocol.md) ---- */
#include <jansson.h>
typedef enum { WEV_GARBAGE = 0, WEV_PROGRESS, WEV_ERROR, WEV_START, WEV_RESUME, WEV_OTHER } wev_kind_t;
typedef struct wev {
    wev_kind_t kind;
    const char *name;   /* the "event" value (borrowed from obj), NULL for garbage */
    json_t *obj;        /* the whole line (owned) */
    json_t *progress;   /* WEV_PROGRESS: the object without "event" (owned) */
    char error[1200];   /* WEV_ERROR: "field: message" or "message" ("" if no message) */
} wev_t;
/* Parse one line; never fails: anything that is not a JSON object with a string
 * "event" is WEV_GARBAGE. Release with wev_clear. */
void wev_parse(const char *line, size_t len, wev_t *ev);
void wev_clear(wev_t *ev);

#endif
