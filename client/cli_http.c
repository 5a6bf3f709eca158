/* cli_http.c — the one place lrqctl talks HTTP (libcurl easy interface).
 * A request either collects its body into cli_resp_t (JSON calls; capped) or,
 * for 2xx answers, streams it into a sink (SSE, downloads, logs). Error
 * bodies are always collected so that the server's message can be shown. */
#include "lrq_buf.h"
#include "cli.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CLI_BODY_MAX (64u << 20)   /* collected bodies; streams are unbounded */

int cli_http_init(cli_http_t *h, const char *base, const char *token, lrq_err_t *err)
{
    memset(h, 0, sizeof *h);
    h->timeout_s = 60;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return lrq_errf(err, LRQ_EIO, "cannot initialise libcurl");
    size_t len = strlen(base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    h->base = strndup(base, len);
    h->curl = curl_easy_init();
    if (!h->base || !h->curl)
        goto oom;
    if (token) {
        char *hdr;
        if (asprintf(&hdr, "Authorization: Bearer %s", token) < 0)
            goto oom;
        h->auth = curl_slist_append(NULL, hdr);
        free(hdr);
        if (!h->auth)
            goto oom;
    }
    return 0;
oom:
    cli_http_close(h);
    return lrq_errf(err, LRQ_ENOMEM, "out of memory");
}

void cli_http_close(cli_http_t *h)
{
    if (h->curl)
        curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->auth);
    free(h->base);
    if (h->curl || h->base)
        curl_global_cleanup();
    memset(h, 0, sizeof *h);
}

void cli_resp_free(cli_resp_t *r)
{
    free(r->body);
    if (r->json)
        json_decref(r->json);
    memset(r, 0, sizeof *r);
    r->content_length = -1;
}

typedef struct xfer {
    CURL *curl;
    const cli_req_t *req;
    cli_resp_t *resp;
    size_t cap;
    int started, to_sink, stopped, oom, toobig;
} xfer_t;

static void hdr_value(char *dst, size_t n, const char *v, size_t len)
{
    while (len && (*v == ' ' || *v == '\t'))
        v++, len--;
    while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
        len--;
    if (len >= n)
        len = n - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer_t *x = ud;
    size_t n = size * nmemb;
    cli_resp_t *r = x->resp;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* a new response (e.g. after 100 Continue): forget earlier headers */
        r->content_type[0] = r->content_range[0] = r->etag[0] = '\0';
        r->content_length = -1;
        return n;
    }
    const char *colon = memchr(p, ':', n);
    if (!colon)
        return n;
    size_t klen = (size_t)(colon - p), vlen = n - klen - 1;
    char num[32];
    if (klen == 12 && strncasecmp(p, "content-type", 12) == 0) {
        hdr_value(r->content_type, sizeof r->content_type, colon + 1, vlen);
    } else if (klen == 13 && strncasecmp(p, "content-range", 13) == 0) {
        hdr_value(r->content_range, sizeof r->content_range, colon + 1, vlen);
    } else if (klen == 4 && strncasecmp(p, "etag", 4) == 0) {
        hdr_value(r->etag, sizeof r->etag, colon + 1, vlen);
    } else if (klen == 14 && strncasecmp(p, "content-length", 14) == 0) {
        hdr_value(num, sizeof num, colon + 1, vlen);
        char *end;
        long long v = strtoll(num, &end, 10);
        r->content_length = (*num && !*end && v >= 0) ? v : -1;
    }
    return n;
}

static int xfer_start(xfer_t *x)
{
    x->started = 1;
    long code = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
    x->resp->status = code;
    if (x->req->sink && code >= 200 && code < 300) {
        x->to_sink = 1;
        if (x->req->sink->on_start && x->req->sink->on_start(x->req->sink->ud, x->resp) < 0) {
            x->stopped = 1;
            return -1;
        }
    }
    return 0;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer_t *x = ud;
    size_t n = size * nmemb;
    if (!x->started && xfer_start(x) < 0)
        return 0;
    if (n == 0)
        return 0;
    if (x->to_sink) {
        if (x->req->sink->on_data(x->req->sink->ud, p, n) < 0) {
            x->stopped = 1;
            return 0;
        }
        return n;
    }
    cli_resp_t *r = x->resp;
    if (r->len + n > CLI_BODY_MAX) {
        x->toobig = 1;
        return 0;
    }
    if (lrq_grow(&r->body, &x->cap, r->len + n + 1, 1)) {
        x->oom = 1;
        return 0;
    }
    memcpy(r->body + r->len, p, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

int cli_http_do(cli_http_t *h, const cli_req_t *req, cli_resp_t *resp, lrq_err_t *err)
{
    memset(resp, 0, sizeof *resp);
    resp->content_length = -1;
    CURL *c = h->curl;
    char url[4096], errbuf[CURL_ERROR_SIZE] = "";
    if ((size_t)snprintf(url, sizeof url, "%s%s", h->base, req->path) >= sizeof url)
        return lrq_errf(err, LRQ_EFORMAT, "URL too long");
    struct curl_slist *hdrs = NULL, *t;
    for (t = h->auth; t; t = t->next)
        if (!(hdrs = curl_slist_append(hdrs, t->data)))
            goto oom;
    if (!(hdrs = curl_slist_append(hdrs, "Expect:")))
        goto oom;
    if (req->body && !(hdrs = curl_slist_append(hdrs, "Content-Type: application/json")))
        goto oom;
    if (req->accept) {
        char a[256];
        snprintf(a, sizeof a, "Accept: %s", req->accept);
        if (!(hdrs = curl_slist_append(hdrs, a)))
            goto oom;
    }

    curl_easy_reset(c);   /* keeps the connection cache */
    xfer_t x = { .curl = c, .req = req, .resp = resp };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    /* A private CA (e.g. lrqd's self-signed tls_cert): LRQ_CACERT=FILE.pem. */
    const char *ca = getenv("LRQ_CACERT");
    if (ca && *ca) curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "lrqctl/0.1");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    if (!req->stream)
        curl_easy_setopt(c, CURLOPT_TIMEOUT, h->timeout_s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    if (req->range)
        curl_easy_setopt(c, CURLOPT_RANGE, req->range);
    const char *m = req->method ? req->method : "GET";
    if (strcmp(m, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(m, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
    }

    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    if (rc == CURLE_OK && !x.started)   /* empty body: headers still count */
        xfer_start(&x);
    if (x.oom)
        return lrq_errf(err, LRQ_ENOMEM, "out of memory reading the response");
    if (x.toobig)
        return lrq_errf(err, LRQ_EFORMAT, "response from %s larger than %u MiB", h->base,
                        CLI_BODY_MAX >> 20);
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && x.stopped)) {
        if (resp->status == 0) {
            long code = 0;
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
            resp->status = code;
        }
        return lrq_errf(err, LRQ_EIO, "%s: %s", h->base, *errbuf ? errbuf : curl_easy_strerror(rc));
    }
    if (resp->body && resp->len)
        resp->json = json_loadb(resp->body, resp->len, 0, NULL);
    return 0;
oom:
    curl_slist_free_all(hdrs);
    return lrq_errf(err, LRQ_ENOMEM, "out of memory");
}

static const char *reason(long status)
{
    switch (status) {
    case 400: return "bad request";
    case 401: return "unauthorized: give a token with --token or LRQ_TOKEN";
    case 403: return "forbidden";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 409: return "conflict";
    case 413: return "request body too large";
    case 416: return "range not satisfiable";
    case 422: return "invalid request";
    case 429: return "too many requests";
    case 500: return "internal server error";
    case 502: return "bad gateway";
    case 503: return "service unavailable";
    default: return status >= 500 ? "server error" : "request failed";
    }
}

void cli_resp_errmsg(const cli_resp_t *r, char *buf, size_t n)
{
    char msg[600] = "", field[200] = "", code[100] = "";
    json_t *e = r->json && json_is_object(r->json) ? json_object_get(r->json, "error") : NULL;
    if (e && json_is_object(e)) {
        const char *s;
        if ((s = cli_jstr(e, "message")) && *s)
            cli_sanitize(msg, sizeof msg, s);
        if ((s = cli_jstr(e, "field")) && *s)
            cli_sanitize(field, sizeof field, s);
        if ((s = cli_jstr(e, "code")) && *s)
            cli_sanitize(code, sizeof code, s);
    } else if (e && json_is_string(e)) {
        cli_sanitize(msg, sizeof msg, json_string_value(e));
    }
    if (!*msg && r->body && r->len && !r->json) {
        /* not our error shape (a proxy?): show the start of the body */
        char tmp[201];
        size_t k = r->len < 200 ? r->len : 200;
        memcpy(tmp, r->body, k);
        tmp[k] = '\0';
        cli_sanitize(msg, sizeof msg, tmp);
    }
    if (!*msg)
        snprintf(msg, sizeof msg, "%s", reason(r->status));
    snprintf(buf, n, "%s%s%s%s [HTTP %ld%s%s]", msg, *field ? " (field: " : "", field,
             *field ? ")" : "", r->status, *code ? " " : "", code);
}

char *cli_path_escape(const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(path);
    char *o = malloc(3 * len + 1), *q = o;
    if (!o)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~' || *p == '/') {
            *q++ = (char)*p;
        } else {
            *q++ = '%';
            *q++ = hex[*p >> 4];
            *q++ = hex[*p & 15];
        }
    }
    *q = '\0';
    return o;
}

static int parse_ll(const char **s, long long *v)
{
    const char *p = *s;
    if (!isdigit((unsigned char)*p))
        return -1;
    long long x = 0;
    for (; isdigit((unsigned char)*p); p++) {
        if (x > (0x7fffffffffffffffLL - 9) / 10)
            return -1;
        x = x * 10 + (*p - '0');
    }
    *v = x;
    *s = p;
    return 0;
}

int cli_content_range(const char *s, long long *first, long long *last, long long *total)
{
    *first = *last = *total = -1;
    if (!s || strncasecmp(s, "bytes", 5) != 0)
        return -1;
    s += 5;
    while (*s == ' ')
        s++;
    if (*s == '*') {
        s++;
    } else {
        if (parse_ll(&s, first) || *s++ != '-' || parse_ll(&s, last) || *last < *first)
            return -1;
    }
    if (*s++ != '/')
        return -1;
    if (*s == '*')
        return 0;
    if (parse_ll(&s, total) || *s)
        return -1;
    return 0;
}
