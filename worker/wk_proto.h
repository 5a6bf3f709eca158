/* wk_proto.h — the worker's output: JSON-lines events on stdout (mirrored to
 * DIR/progress.jsonl) and human log lines on stderr (mirrored to DIR/log when
 * stderr is not already that file). See docs/worker-protocol.md. */
#ifndef WK_PROTO_H
#define WK_PROTO_H
#include <stdio.h>
#include <jansson.h>

typedef struct wk_proto {
    FILE *progress;     /* DIR/progress.jsonl or NULL */
    FILE *log;          /* DIR/log when stderr is something else, or NULL */
    double t0;          /* start time (monotonic s) */
    double last_emit;   /* throttle for progress lines */
    double throttle_s;
} wk_proto_t;

int wk_proto_init(wk_proto_t *p, const char *workdir);
void wk_proto_close(wk_proto_t *p);
double wk_now(void);   /* monotonic seconds */
/* Emit an event object (consumes ev). */
void wk_emit(wk_proto_t *p, json_t *ev);
/* Progress line, throttled unless force: stage, done/total, fraction of the whole job,
 * optional extra fields (consumed, may be NULL). */
void wk_progress(wk_proto_t *p, const char *stage, long done, long total, double fraction, json_t *extra, int force);
void wk_log(wk_proto_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
