/* http.c — libmicrohttpd on the libuv loop, request state, replies.
 *
 * MHD runs with MHD_USE_EPOLL and no thread of its own: a uv_poll_t watches
 * MHD's epoll fd and a uv_timer_t follows MHD_get_timeout; both call MHD_run
 * (docs/contributing.md, "Daemon"). Per-request state lives in *con_cls and is
 * freed only in the NOTIFY_COMPLETED callback. Bodies are accumulated up to
 * max_body (413). Requests go up through d->http (http_hooks_t): this file
 * knows the route table, not the handlers. */
#include "lrqd.h"
#include "log.h"
#include "lrq_buf.h"
#include "lrq_fs.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct req {
    lrqd_t *d;
    int route;             /* index in api_routes, or < 0 */
    rt_match_t m;
    char *body;
    size_t len, cap;
    int too_large, replied;
    unsigned status;
    const token_t *tok;
    void (*on_complete)(void *);
    void *on_complete_arg;
};

const char *req_body(req_t *r, size_t *len) { *len = r->len; return r->body ? r->body : ""; }
const rt_match_t *req_match(req_t *r) { return &r->m; }
const token_t *req_token(req_t *r) { return r->tok; }
void req_on_complete(req_t *r, void (*fn)(void *), void *arg)
{
    r->on_complete = fn;
    r->on_complete_arg = arg;
}

/* ---- replies ------------------------------------------------------------ */

enum MHD_Result http_reply(req_t *r, struct MHD_Connection *c, unsigned status, struct MHD_Response *resp)
{
    if (!resp) return MHD_NO;
    r->status = status;
    r->replied = 1;
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result http_reply_json(req_t *r, struct MHD_Connection *c, unsigned status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(body);
    if (!s) return MHD_NO;
    size_t n = strlen(s);
    /* One trailing newline so that curl output is readable. */
    char *t = realloc(s, n + 2);
    if (!t) { free(s); return MHD_NO; }
    t[n] = '\n';
    t[n + 1] = 0;
    struct MHD_Response *resp = MHD_create_response_from_buffer(n + 1, t, MHD_RESPMEM_MUST_FREE);
    if (!resp) { free(t); return MHD_NO; }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"lrq\"");
    if (status == 405 && r->m.allow) {
        char allow[64];
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rt_allow_str(r->m.allow, allow, sizeof allow));
    }
    if (status == 429 || status == 503) {
        char ra[32];
        snprintf(ra, sizeof ra, "%lld", (long long)r->d->cfg.retry_after_s);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    return http_reply(r, c, status, resp);
}

enum MHD_Result http_reply_error(req_t *r, struct MHD_Connection *c, unsigned status, const char *code,
                                 const char *field, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *e = json_pack("{s:{s:s, s:s, s:s?}}", "error", "code", code, "message", msg, "field", field);
    if (!e) return MHD_NO;
    return http_reply_json(r, c, status, e);
}

/* ---- MHD access handler -------------------------------------------------- */

static int http__is_v1(const char *url) { return !strncmp(url, "/v1/", 4) || !strcmp(url, "/v1"); }

static enum MHD_Result http__first(lrqd_t *d, req_t *r, struct MHD_Connection *c, const char *url,
                                   const char *method)
{
    int m = rt_method_parse(method);
    int idx = rt_match(api_routes, api_nroutes, m, url, &r->m);
    if (idx == RT_ETOOLONG) return http_reply_error(r, c, 414, "uri_too_long", NULL, "the URL is too long");
    /* Auth before anything else about /v1: an unauthenticated client learns nothing. */
    int needs = http__is_v1(url) || (d->cfg.metrics_auth && !strcmp(url, "/metrics"));
    if (d->auth && needs) {
        r->tok = auth_check(d->tokens, d->ntokens, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
        if (!r->tok)
            return http_reply_error(r, c, 401, "unauthorized", NULL, "a valid \"Authorization: Bearer <token>\" "
                                    "header is required");
    }
    if (idx == RT_ENOTFOUND) return http_reply_error(r, c, 404, "not_found", NULL, "no such resource");
    if (idx == RT_EMETHOD)
        return http_reply_error(r, c, 405, "method_not_allowed", NULL, "%s is not allowed here", method);
    r->route = idx;
    /* Reject an announced oversize body before reading it. */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > (unsigned long long)d->cfg.max_body)
        return http_reply_error(r, c, 413, "body_too_large", NULL, "the request body exceeds %lld bytes",
                                (long long)d->cfg.max_body);
    return MHD_YES;
}

static enum MHD_Result http__access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    lrqd_t *d = cls;
    req_t *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        r->d = d;
        r->route = -1;
        *con_cls = r;
        return http__first(d, r, c, url, method);
    }
    if (r->replied) { *upload_size = 0; return MHD_YES; }   /* discard the body of a rejected request */
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->too_large) return MHD_YES;
        if (r->len + n > (size_t)d->cfg.max_body) {
            r->too_large = 1;
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            return MHD_YES;
        }
        if (lrq_grow(&r->body, &r->cap, r->len + n + 1, 1)) return MHD_NO;
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        r->body[r->len] = 0;
        return MHD_YES;
    }
    if (r->too_large)
        return http_reply_error(r, c, 413, "body_too_large", NULL, "the request body exceeds %lld bytes",
                                (long long)d->cfg.max_body);
    return d->http.dispatch(d, r, c, r->route);
}

static void http__completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    lrqd_t *d = cls;
    req_t *r = *con_cls;
    if (!r) return;
    const char *label = r->route >= 0 ? api_routes[r->route].pattern : "unmatched";
    if (d->http.completed) d->http.completed(d, label, r->replied ? (int)r->status : 0);
    if (r->on_complete) r->on_complete(r->on_complete_arg);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

static void http__log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    log_info("http: %s", msg);
}

/* ---- uv glue ------------------------------------------------------------ */

static void http__run(lrqd_t *d);

static void http__on_timer(uv_timer_t *t) { http__run(t->data); }

static void http__on_poll(uv_poll_t *p, int status, int events) { http__run(p->data); }

static void http__run(lrqd_t *d)
{
    if (!d->mhd) return;
    MHD_run(d->mhd);
    MHD_UNSIGNED_LONG_LONG to;
    if (MHD_get_timeout(d->mhd, &to) == MHD_YES)
        uv_timer_start(&d->mhd_timer, http__on_timer, to > 60000 ? 60000 : to, 0);
    else
        uv_timer_start(&d->mhd_timer, http__on_timer, 60000, 0);
}

void http_kick(lrqd_t *d)
{
    if (d->mhd) uv_timer_start(&d->mhd_timer, http__on_timer, 0, 0);
}

int http_start(lrqd_t *d, const http_hooks_t *hooks, lrq_err_t *err)
{
    d->http = *hooks;
    struct sockaddr_storage ss;
    int v6, rc;
    if ((rc = cfg_parse_listen(d->cfg.listen, &ss, &v6, &d->loopback, d->listen_host, sizeof d->listen_host, err)))
        return rc;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    /* TLS: MHD wants the PEM texts, which must outlive the daemon (freed in http_close). */
    int tls = d->cfg.tls_cert && *d->cfg.tls_cert;
    if (tls != (d->cfg.tls_key && *d->cfg.tls_key))
        return lrq_errf(err, LRQ_ESPEC, "tls_cert and tls_key must be given together");
    if (tls) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS))
            return lrq_errf(err, LRQ_EUNSUPP, "this libmicrohttpd was built without TLS support");
        int rc = lrq_read_file(d->cfg.tls_cert, &d->tls_cert_pem, NULL, 1 << 20, err);
        if (!rc) rc = lrq_read_file(d->cfg.tls_key, &d->tls_key_pem, NULL, 1 << 20, err);
        if (rc) return rc;
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem tls_opts[] = {
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, d->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, d->tls_key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    d->mhd = MHD_start_daemon(flags, 0, NULL, NULL, http__access, d,
                              MHD_OPTION_ARRAY, tls_opts,
                              MHD_OPTION_EXTERNAL_LOGGER, http__log, d,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                              MHD_OPTION_NOTIFY_COMPLETED, http__completed, d,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)d->cfg.max_connections,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)d->cfg.conn_timeout_s,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)d->cfg.conn_memory_kb * 1024,
                              MHD_OPTION_LISTEN_BACKLOG_SIZE, 128u,
                              MHD_OPTION_END);
    if (!d->mhd) {
        free(d->tls_cert_pem);
        free(d->tls_key_pem);
        d->tls_cert_pem = d->tls_key_pem = NULL;
        return lrq_errf(err, LRQ_EIO, "cannot listen on %s (address in use, not permitted, or a bad TLS "
                        "certificate/key)", d->cfg.listen);
    }
    const union MHD_DaemonInfo *ep = MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pi = MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_BIND_PORT);
    if (!ep) { MHD_stop_daemon(d->mhd); d->mhd = NULL; return lrq_errf(err, LRQ_EIO, "MHD: no epoll fd"); }
    d->port = pi ? pi->port : 0;
    uv_poll_init(d->loop, &d->mhd_poll, ep->epoll_fd);
    uv_timer_init(d->loop, &d->mhd_timer);
    d->mhd_poll.data = d->mhd_timer.data = d;
    uv_poll_start(&d->mhd_poll, UV_READABLE, http__on_poll);
    d->http_up = 1;
    http_kick(d);
    return 0;
}

void http_quiesce(lrqd_t *d)
{
    if (!d->mhd) return;
    MHD_socket s = MHD_quiesce_daemon(d->mhd);
    if (s != MHD_INVALID_SOCKET) close(s);
}

static void http__closed(uv_handle_t *h) { (void)h; }

void http_stop(lrqd_t *d)
{
    if (!d->http_up) return;
    sse_end_all(&d->sse);
    /* Let the ended streams flush briefly, then stop: MHD closes what is left. */
    for (int i = 0; i < 20 && sse_any(&d->sse); i++) {
        MHD_run(d->mhd);
        uv_sleep(5);
    }
    MHD_stop_daemon(d->mhd);
    free(d->tls_cert_pem);
    free(d->tls_key_pem);
    d->tls_cert_pem = d->tls_key_pem = NULL;
    d->mhd = NULL;
    uv_poll_stop(&d->mhd_poll);
    uv_close((uv_handle_t *)&d->mhd_poll, http__closed);
    uv_close((uv_handle_t *)&d->mhd_timer, http__closed);
    d->http_up = 0;
}
