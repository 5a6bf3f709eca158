/* sse.h — Server-Sent Events streams of job events (docs/api.md, "Events").
 *
 * A stream is an MHD callback response whose connection is suspended while
 * it has nothing to send; sse_publish queues an event on every stream of the
 * job and resumes them. Resuming only takes effect when MHD runs next, so the
 * hub calls its kick hook (main.c wires it to http_kick): the hub never calls
 * up into the HTTP layer. A stream has two owners — the request
 * (NOTIFY_COMPLETED) and the response (its free callback) — and is freed when
 * both have released it. */
#ifndef LRQD_SSE_H
#define LRQD_SSE_H
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include <microhttpd.h>
#include "lrq_buf.h"

typedef struct sse sse_t;
typedef struct sse_hub {
    sse_t *head;
    void (*kick)(void *ctx);      /* run MHD soon (after a resume) */
    void *kick_ctx;
} sse_hub_t;

/* A stream for job_id on connection c, with two references. NULL if out of memory. */
sse_t *sse_new(sse_hub_t *h, int64_t job_id, struct MHD_Connection *c);
void sse_release(sse_t *s);
/* MHD content reader and free callback for the stream's response. */
ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max);
void sse_free_cb(void *cls);
/* Queue one event on one stream; end=1 closes the stream after it. -1 if the
 * stream was dropped (client not reading: more than 1 MiB queued). */
int sse_push(sse_t *s, const char *event, json_t *data, int end);
/* Queue an event on every stream of job_id (end=1: then close them). */
void sse_publish(sse_hub_t *h, int64_t job_id, const char *event, json_t *data /* borrowed */, int end);
void sse_ping(sse_hub_t *h);      /* a comment line on every stream */
void sse_end_all(sse_hub_t *h);   /* shutdown: close every stream after what is queued */
int sse_any(const sse_hub_t *h);
#endif
