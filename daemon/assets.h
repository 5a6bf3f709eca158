/* assets.h — the dashboard's files, compiled into lrqd from dashboard/ by
 * scripts/embed-assets.sh (daemon/assets.c, generated). Served by api.c at
 * GET / (index.html) and GET /ui/NAME. */
#ifndef LRQD_ASSETS_H
#define LRQD_ASSETS_H
#include <stddef.h>

typedef struct asset {
    const char *name;          /* "app.js" */
    const char *ctype;         /* Content-Type */
    const unsigned char *data;
    size_t len;
    const char *etag;          /* "\"<sha256 hex>\"" of data */
} asset_t;

extern const asset_t dash_assets[];
extern const size_t dash_nassets;
#endif
