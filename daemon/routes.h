/* routes.h — lrqd's route table and URL path guard. */
#ifndef LRQ_ROUTES_H
#define LRQ_ROUTES_H
#include <stddef.h>
#include <string.h>
#include "router.h"

enum {
    H_HEALTHZ, H_READYZ, H_METRICS, H_SUBMIT, H_LIST, H_GET, H_DELETE, H_CANCEL, H_EVENTS, H_LOG, H_JOB_METRICS,
    H_ARTIFACTS, H_ARTIFACT, H_PROGRESS, H_PATCH, H_WHOAMI, H_DASH, H_ASSET,
};
extern const rt_route_t api_routes[];
extern const size_t api_nroutes;
/* 1 if rel is a safe relative path (see routes.c), else 0. */
int rt_safe_rel(const char *rel);
#endif
