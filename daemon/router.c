/* router.c — path → route matching (see router.h). */
#include "router.h"
#include <stdio.h>
#include <string.h>

int rt_method_parse(const char *m)
{
    if (!m) return RT_OTHER;
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD")) return RT_GET;
    if (!strcmp(m, "POST")) return RT_POST;
    if (!strcmp(m, "DELETE")) return RT_DELETE;
    if (!strcmp(m, "PUT")) return RT_PUT;
    if (!strcmp(m, "PATCH")) return RT_PATCH;
    return RT_OTHER;
}

const char *rt_allow_str(int mask, char *buf, size_t n)
{
    static const char *const names[] = {"GET, HEAD", "POST", "DELETE", "PUT", "PATCH"};
    size_t off = 0;
    buf[0] = 0;
    for (int i = 0; i < 5; i++)
        if (mask & (1 << i)) {
            int w = snprintf(buf + off, n - off, "%s%s", off ? ", " : "", names[i]);
            if (w < 0 || (size_t)w >= n - off) break;
            off += w;
        }
    return buf;
}

int rt_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!s || !*s || strlen(s) > 18) return -1;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    if (v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Match one pattern; 1 = match. */
static int rt__match1(const char *pat, const char *path, rt_match_t *m)
{
    m->id = 0;
    m->rest = NULL;
    const char *p = pat, *s = path;
    for (;;) {
        if (*p != '/' || *s != '/') return 0;
        p++, s++;
        const char *pe = strchr(p, '/'), *se = strchr(s, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p), sl = se ? (size_t)(se - s) : strlen(s);
        if (pl == 3 && !memcmp(p, "{*}", 3)) {
            if (sl == 0) return 0;              /* at least one non-empty segment */
            m->rest = s;
            return 1;
        }
        if (pl == 4 && !memcmp(p, "{id}", 4)) {
            char num[20];
            if (sl == 0 || sl >= sizeof num) return -1;
            memcpy(num, s, sl);
            num[sl] = 0;
            int64_t v;
            if (rt_parse_i64(num, 1, (INT64_C(1) << 53) - 1, &v)) return -1;
            m->id = v;
        } else if (pl != sl || memcmp(p, s, pl)) {
            return 0;
        }
        p += pl, s += sl;
        if (!*p && !*s) return 1;
        if (!*p || !*s) return 0;
    }
}

int rt_match(const rt_route_t *table, size_t n, int method, const char *path, rt_match_t *m)
{
    memset(m, 0, sizeof *m);
    if (!path || path[0] != '/') return RT_ENOTFOUND;
    if (strlen(path) > RT_MAX_PATH) return RT_ETOOLONG;
    int allow = 0, found = -1;
    rt_match_t tmp;
    for (size_t i = 0; i < n; i++) {
        int r = rt__match1(table[i].pattern, path, &tmp);
        if (r != 1) continue;
        allow |= table[i].method;
        if (found < 0 && table[i].method == method) { found = (int)i; *m = tmp; m->route = &table[i]; }
    }
    if (found >= 0) return found;
    if (allow) { m->allow = allow; return RT_EMETHOD; }
    return RT_ENOTFOUND;
}
