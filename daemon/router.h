/* router.h — the HTTP routing table, independent of libmicrohttpd so that it
 * can be unit-tested and fuzzed.
 *
 * A pattern is a '/'-separated list of literal segments plus two kinds of
 * parameter: "{id}" matches a decimal job id in 1..2^53-1 (anything else in
 * that segment means "no such resource" → 404), and "{*}" (last segment only)
 * matches the rest of the path, one or more segments. A path that matches a
 * pattern whose method differs gives RT_EMETHOD with the allowed methods (405 +
 * Allow); HEAD is served by GET routes. */
#ifndef LRQ_ROUTER_H
#define LRQ_ROUTER_H
#include <stddef.h>
#include <stdint.h>

enum rt_method { RT_GET = 1, RT_POST = 2, RT_DELETE = 4, RT_PUT = 8, RT_PATCH = 16, RT_OTHER = 32 };
enum { RT_ENOTFOUND = -4301, RT_EMETHOD = -4302, RT_ETOOLONG = -4303 };
#define RT_MAX_PATH 2048

typedef struct rt_route {
    int method;            /* one enum rt_method */
    const char *pattern;   /* "/v1/jobs/{id}/artifacts/{*}" */
    int tag;               /* caller's handler index */
} rt_route_t;

typedef struct rt_match {
    const rt_route_t *route;
    int64_t id;            /* {id}, or 0 */
    const char *rest;      /* {*}: points into the path, or NULL */
    int allow;             /* RT_EMETHOD: methods the path accepts (mask) */
} rt_match_t;

int rt_method_parse(const char *m);   /* "GET" → RT_GET, "HEAD" → RT_GET, else RT_OTHER */
/* "GET, POST" for a mask; buf ≥ 40 bytes. */
const char *rt_allow_str(int mask, char *buf, size_t n);
/* Index of the matched route (≥ 0), or RT_ENOTFOUND / RT_EMETHOD / RT_ETOOLONG. */
int rt_match(const rt_route_t *table, size_t n, int method, const char *path, rt_match_t *m);
/* Strict decimal parse of a query value in lo..hi: 0 or -1. */
int rt_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
/* Route label for metrics: the pattern of the match or "unmatched". */

#endif
