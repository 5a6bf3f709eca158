/* routes.c — the REST API's route table (pure data, so tests and fuzzers use the real one). */
#include "routes.h"

const rt_route_t api_routes[] = {
    {RT_GET, "/healthz", H_HEALTHZ},
    {RT_GET, "/readyz", H_READYZ},
    {RT_GET, "/metrics", H_METRICS},
    {RT_POST, "/v1/jobs", H_SUBMIT},
    {RT_GET, "/v1/jobs", H_LIST},
    {RT_GET, "/v1/jobs/{id}", H_GET},
    {RT_DELETE, "/v1/jobs/{id}", H_DELETE},
    {RT_POST, "/v1/jobs/{id}/cancel", H_CANCEL},
    {RT_GET, "/v1/jobs/{id}/events", H_EVENTS},
    {RT_GET, "/v1/jobs/{id}/log", H_LOG},
    {RT_GET, "/v1/jobs/{id}/metrics", H_JOB_METRICS},
    {RT_GET, "/v1/jobs/{id}/artifacts", H_ARTIFACTS},
    {RT_GET, "/v1/jobs/{id}/artifacts/{*}", H_ARTIFACT},
    {RT_GET, "/v1/jobs/{id}/progress", H_PROGRESS},
    {RT_PATCH, "/v1/jobs/{id}", H_PATCH},
    {RT_GET, "/v1/whoami", H_WHOAMI},
    {RT_GET, "/", H_DASH},
    {RT_GET, "/ui/{*}", H_ASSET},
};
const size_t api_nroutes = sizeof api_routes / sizeof api_routes[0];

/* A relative artifact path that cannot leave its directory by itself: no leading '/',
 * no empty, "." or ".." segment, no trailing '/'. (Symlinks are checked with realpath.) */
int rt_safe_rel(const char *rel)
{
    if (!rel || !*rel || rel[0] == '/' || strlen(rel) > 1024) return 0;
    const char *p = rel;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) return 0;
        p += n;
        if (*p == '/') p++;
        if (e && !*p) return 0;   /* trailing '/' */
    }
    return 1;
}
