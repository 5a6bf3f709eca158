/* test_router.c — daemon/router.c: matches, {id} parsing, 404 vs 405 and the
 * Allow set, {*} rest paths, length cap, strict query integers. */
#include <criterion/criterion.h>
#include <string.h>
#include "daemon/router.h"

static const rt_route_t T[] = {
    {RT_GET, "/healthz", 0},
    {RT_POST, "/v1/jobs", 1},
    {RT_GET, "/v1/jobs", 2},
    {RT_GET, "/v1/jobs/{id}", 3},
    {RT_DELETE, "/v1/jobs/{id}", 4},
    {RT_POST, "/v1/jobs/{id}/cancel", 5},
    {RT_GET, "/v1/jobs/{id}/artifacts", 6},
    {RT_GET, "/v1/jobs/{id}/artifacts/{*}", 7},
};
#define N (sizeof T / sizeof T[0])

Test(router, exact_and_params)
{
    rt_match_t m;
    cr_assert_eq(rt_match(T, N, RT_GET, "/healthz", &m), 0);
    cr_assert_eq(rt_match(T, N, RT_POST, "/v1/jobs", &m), 1);
    cr_assert_eq(rt_match(T, N, RT_GET, "/v1/jobs", &m), 2);
    cr_assert_eq(rt_match(T, N, RT_GET, "/v1/jobs/42", &m), 3);
    cr_assert_eq(m.id, 42);
    cr_assert_eq(m.route->tag, 3);
    cr_assert_eq(rt_match(T, N, RT_DELETE, "/v1/jobs/7", &m), 4);
    cr_assert_eq(m.id, 7);
    cr_assert_eq(rt_match(T, N, RT_POST, "/v1/jobs/9007199254740991/cancel", &m), 5);
    cr_assert_eq(m.id, 9007199254740991LL);
}

Test(router, not_found)
{
    rt_match_t m;
    const char *bad[] = {"", "healthz", "/", "/healthz/", "/healthzz", "/v1", "/v1/jobs/", "/v1/jobs/abc",
                         "/v1/jobs/0", "/v1/jobs/-1", "/v1/jobs/1x", "/v1/jobs/9007199254740992",
                         "/v1/jobs/12345678901234567890", "/v1/jobs/1/nope", "/v1/jobs/1/artifacts/",
                         "/v2/jobs", "//v1/jobs"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(rt_match(T, N, RT_GET, bad[i], &m), RT_ENOTFOUND, "%s", bad[i]);
    cr_assert_eq(rt_match(T, N, RT_GET, NULL, &m), RT_ENOTFOUND);
}

Test(router, wrong_method_gives_allow_set)
{
    rt_match_t m;
    char buf[64];
    cr_assert_eq(rt_match(T, N, RT_DELETE, "/v1/jobs", &m), RT_EMETHOD);
    cr_assert_eq(m.allow, RT_GET | RT_POST);
    cr_assert_str_eq(rt_allow_str(m.allow, buf, sizeof buf), "GET, HEAD, POST");
    cr_assert_eq(rt_match(T, N, RT_PUT, "/v1/jobs/3", &m), RT_EMETHOD);
    cr_assert_eq(m.allow, RT_GET | RT_DELETE);
    cr_assert_eq(rt_match(T, N, RT_GET, "/v1/jobs/3/cancel", &m), RT_EMETHOD);
    cr_assert_eq(m.allow, RT_POST);
    cr_assert_eq(rt_match(T, N, RT_OTHER, "/healthz", &m), RT_EMETHOD);
    /* A bad id is 404 whatever the method. */
    cr_assert_eq(rt_match(T, N, RT_PUT, "/v1/jobs/x", &m), RT_ENOTFOUND);
}

Test(router, rest_segment)
{
    rt_match_t m;
    cr_assert_eq(rt_match(T, N, RT_GET, "/v1/jobs/5/artifacts/hf/model.safetensors", &m), 7);
    cr_assert_eq(m.id, 5);
    cr_assert_str_eq(m.rest, "hf/model.safetensors");
    cr_assert_eq(rt_match(T, N, RT_GET, "/v1/jobs/5/artifacts/../../etc/passwd", &m), 7);
    cr_assert_str_eq(m.rest, "../../etc/passwd", "the router passes it on; the handler confines it");
    cr_assert_eq(rt_match(T, N, RT_GET, "/v1/jobs/5/artifacts", &m), 6);
    cr_assert_null(m.rest);
}

Test(router, methods_and_length)
{
    cr_assert_eq(rt_method_parse("GET"), RT_GET);
    cr_assert_eq(rt_method_parse("HEAD"), RT_GET);
    cr_assert_eq(rt_method_parse("POST"), RT_POST);
    cr_assert_eq(rt_method_parse("get"), RT_OTHER);
    cr_assert_eq(rt_method_parse(NULL), RT_OTHER);
    static char longp[RT_MAX_PATH + 10];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    rt_match_t m;
    cr_assert_eq(rt_match(T, N, RT_GET, longp, &m), RT_ETOOLONG);
}

Test(router, strict_integers)
{
    int64_t v;
    cr_assert_eq(rt_parse_i64("50", 1, 500, &v), 0);
    cr_assert_eq(v, 50);
    cr_assert_eq(rt_parse_i64("0", 1, 500, &v), -1);
    cr_assert_eq(rt_parse_i64("501", 1, 500, &v), -1);
    cr_assert_eq(rt_parse_i64("5a", 1, 500, &v), -1);
    cr_assert_eq(rt_parse_i64("", 1, 500, &v), -1);
    cr_assert_eq(rt_parse_i64("-1", -5, 500, &v), -1, "no signs");
    cr_assert_eq(rt_parse_i64(" 1", 1, 500, &v), -1);
    cr_assert_eq(rt_parse_i64("9999999999999999999", 0, INT64_MAX, &v), -1);
}
