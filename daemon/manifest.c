/* manifest.c — see manifest.h. */
#include "manifest.h"
#include "lrq_buf.h"
#include "lrq_fs.h"
#include "routes.h"
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MANIFEST_MAX (64 << 20)

static int art_cmp(const void *a, const void *b)
{
    return strcmp(((const db_artifact_t *)a)->path, ((const db_artifact_t *)b)->path);
}

static int is_hex64(const char *s)
{
    if (!s || strlen(s) != 64) return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

static int manifest__metrics(const char *workdir, char **out, lrq_err_t *err)
{
    char path[PATH_MAX], *text = NULL;
    snprintf(path, sizeof path, "%s/metrics.json", workdir);
    int rc = lrq_read_file(path, &text, NULL, MANIFEST_MAX, err);
    if (rc == LRQ_ENOTFOUND) return 0;
    if (rc) return rc;
    json_error_t je;
    json_t *m = json_loads(text, 0, &je);
    free(text);
    if (!m) return lrq_errf(err, LRQ_EFORMAT, "metrics.json is not valid JSON: %s", je.text);
    *out = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    return *out ? 0 : lrq_errf(err, LRQ_ENOMEM, "out of memory");
}

static int manifest__artifacts(const char *workdir, db_artifact_t **arts, size_t *n, lrq_err_t *err)
{
    char path[PATH_MAX], *text = NULL;
    snprintf(path, sizeof path, "%s/artifacts.json", workdir);
    int rc = lrq_read_file(path, &text, NULL, MANIFEST_MAX, err);
    if (rc == LRQ_ENOTFOUND) return lrq_errf(err, rc, "the worker exited 0 without writing artifacts.json");
    if (rc) return rc;
    json_error_t je;
    json_t *root = json_loads(text, 0, &je), *list = json_object_get(root, "artifacts"), *it;
    free(text);
    if (!json_is_array(list)) {
        json_decref(root);
        return lrq_errf(err, LRQ_EFORMAT, "artifacts.json: expected {\"artifacts\": [...]}%s%s", root ? "" : ": ",
                        root ? "" : je.text);
    }
    db_artifact_t *a = NULL;
    size_t cnt = 0, cap = 0, i;
    json_array_foreach(list, i, it) {
        const char *rel = json_string_value(json_object_get(it, "path"));
        const char *sha = json_string_value(json_object_get(it, "sha256"));
        json_t *jsz = json_object_get(it, "size");
        char full[PATH_MAX * 2];
        struct stat st;
        if (!rel || !rt_safe_rel(rel)) { rc = lrq_errf(err, LRQ_EFORMAT, "artifacts.json[%zu]: bad path", i); break; }
        if (!is_hex64(sha) || !json_is_integer(jsz) || json_integer_value(jsz) < 0) {
            rc = lrq_errf(err, LRQ_EFORMAT, "artifacts.json: %s: needs a size and a 64-hex-digit sha256", rel);
            break;
        }
        snprintf(full, sizeof full, "%s/artifacts/%s", workdir, rel);
        if (lstat(full, &st) || !S_ISREG(st.st_mode)) {
            rc = lrq_errf(err, LRQ_ENOTFOUND, "artifact %s: %s", rel, errno == ENOENT ? "missing" : "not a regular file");
            break;
        }
        if ((long long)st.st_size != (long long)json_integer_value(jsz)) {
            rc = lrq_errf(err, LRQ_EFORMAT, "artifact %s: %lld bytes on disk, artifacts.json says %lld", rel,
                          (long long)st.st_size, (long long)json_integer_value(jsz));
            break;
        }
        if (lrq_grow(&a, &cap, cnt + 1, sizeof *a) || !(a[cnt].path = strdup(rel))) {
            rc = lrq_errf(err, LRQ_ENOMEM, "out of memory");
            break;
        }
        a[cnt].size = st.st_size;
        memcpy(a[cnt].sha256, sha, 65);
        cnt++;
    }
    json_decref(root);
    if (rc) { db_artifacts_free(a, cnt); return rc; }
    if (cnt) qsort(a, cnt, sizeof *a, art_cmp);
    for (size_t k = 1; k < cnt; k++)
        if (!strcmp(a[k].path, a[k - 1].path)) {
            rc = lrq_errf(err, LRQ_EFORMAT, "artifacts.json: %s listed twice", a[k].path);
            db_artifacts_free(a, cnt);
            return rc;
        }
    *arts = a;
    *n = cnt;
    return 0;
}

int manifest_load(const char *workdir, char **metrics, db_artifact_t **arts, size_t *n, lrq_err_t *err)
{
    *metrics = NULL;
    *arts = NULL;
    *n = 0;
    int rc = manifest__metrics(workdir, metrics, err);
    if (!rc) rc = manifest__artifacts(workdir, arts, n, err);
    if (rc) { free(*metrics); *metrics = NULL; }
    return rc;
}
