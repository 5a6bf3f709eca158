/* fuzz_router.c — lrqd's request routing: the request target is split at '?',
 * the path percent-decoded with MHD_http_unescape (libmicrohttpd's default
 * unescaper, which lrqd keeps) and matched with rt_match against lrqd's route
 * table; every query argument ('&'-separated k=v, '+' → ' ', unescaped) goes
 * through the parsers api.c uses (rt_parse_i64 for limit/after, db_state_parse
 * for state). rt_match and rt_parse_i64 are compared with an independent
 * segment-wise reference.
 *
 * Input: byte 0 = method, byte 1 = Allow mask / buffer size for rt_allow_str,
 * the rest = request target (up to the first NUL, as MHD hands it over). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <microhttpd.h>

#include "daemon/db.h"
#include "daemon/router.h"
#include "daemon/routes.h"

/* lrqd's own route table (daemon/routes.c). */
#define fz_rt_routes api_routes
#define FZ_RT_N api_nroutes

/* Reference strict decimal: 1..18 digits, value in lo..hi. */
static int fz_rt_ref_i64(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *out)
{
    if (n == 0 || n > 18) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Reference matcher: pattern and path compared segment by segment. */
static int fz_rt_ref_match1(const char *pat, const char *path, int64_t *id, const char **rest)
{
    *id = 0;
    *rest = NULL;
    while (*pat) {
        if (*pat != '/' || *path != '/') return 0;
        pat++, path++;
        size_t pl = strcspn(pat, "/"), sl = strcspn(path, "/");
        if (pl == 3 && !strncmp(pat, "{*}", 3)) {
            if (!sl) return 0;
            *rest = path;
            return 1;
        }
        if (pl == 4 && !strncmp(pat, "{id}", 4)) {
            if (fz_rt_ref_i64(path, sl, 1, (INT64_C(1) << 53) - 1, id)) return 0;
        } else if (pl != sl || strncmp(pat, path, pl)) {
            return 0;
        }
        pat += pl, path += sl;
    }
    return !*path;
}

static void fz_rt_check(int method, const char *path)
{
    rt_match_t m;
    int rc = rt_match(fz_rt_routes, FZ_RT_N, method, path, &m);
    int want = RT_ENOTFOUND, allow = 0;
    int64_t want_id = 0;
    const char *want_rest = NULL;
    if (path[0] == '/' && strlen(path) > RT_MAX_PATH) {
        want = RT_ETOOLONG;
    } else if (path[0] == '/') {
        for (size_t i = 0; i < FZ_RT_N; i++) {
            int64_t id;
            const char *rest;
            if (!fz_rt_ref_match1(fz_rt_routes[i].pattern, path, &id, &rest)) continue;
            allow |= fz_rt_routes[i].method;
            if (want < 0 && fz_rt_routes[i].method == method) { want = (int)i; want_id = id; want_rest = rest; }
        }
        if (want < 0 && allow) want = RT_EMETHOD;
    }
    if (rc != want) __builtin_trap();
    if (rc >= 0 && (m.route != &fz_rt_routes[rc] || m.id != want_id || m.rest != want_rest)) __builtin_trap();
    if (rc == RT_EMETHOD && m.allow != allow) __builtin_trap();
    if (m.rest && rt_safe_rel(m.rest)) {
        /* The guard the artifact route uses: an accepted path has no "." or ".." segment. */
        for (const char *p = m.rest; *p;) {
            size_t n = strcspn(p, "/");
            if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.') || n == 0) __builtin_trap();
            p += n;
            if (*p) p++;
        }
    }
}

static void fz_rt_query(char *q)
{
    char *save = NULL;
    for (char *kv = strtok_r(q, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *v = strchr(kv, '=');
        if (v) *v++ = 0;
        for (char *p = kv; *p; p++) if (*p == '+') *p = ' ';
        MHD_http_unescape(kv);
        if (!v) continue;
        for (char *p = v; *p; p++) if (*p == '+') *p = ' ';
        size_t vn = MHD_http_unescape(v);
        int64_t got = -7, ref = -7;
        int a = rt_parse_i64(v, 0, INT64_MAX, &got), b = fz_rt_ref_i64(v, strlen(v), 0, INT64_MAX, &ref);
        if (a != b || (a == 0 && got != ref)) __builtin_trap();
        if (!strcmp(kv, "limit")) (void)rt_parse_i64(v, 1, 500, &got);
        else if (!strcmp(kv, "after")) (void)rt_parse_i64(v, 1, INT64_MAX / 2, &got);
        else if (!strcmp(kv, "state")) {
            int st = db_state_parse(v);
            if (st >= DB_NSTATES || (st >= 0 && strcmp(db_state_name[st], v))) __builtin_trap();
        }
        (void)vn;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", NULL};
    if (size < 2) return 0;
    static const int expect[] = {RT_GET, RT_GET, RT_POST, RT_DELETE, RT_PUT, RT_PATCH, RT_OTHER, RT_OTHER};
    int method = rt_method_parse(methods[data[0] % 8]);
    if (method != expect[data[0] % 8]) __builtin_trap();

    /* rt_allow_str into an exact-size heap buffer: any overrun is an ASan report. */
    size_t bn = 1 + data[1] % 64;
    char *b = malloc(bn);
    if (!b) return 0;
    const char *s = rt_allow_str(data[1] & 63, b, bn);
    if (s != b || strlen(b) >= bn) __builtin_trap();
    free(b);

    char *t = strndup((const char *)data + 2, size - 2);
    if (!t) return 0;
    char *q = strchr(t, '?');
    if (q) *q++ = 0;
    fz_rt_check(method, t);        /* as a client could send it already decoded */
    MHD_http_unescape(t);
    fz_rt_check(method, t);        /* as MHD hands it to lrqd */
    if (q) fz_rt_query(q);
    free(t);
    return 0;
}
