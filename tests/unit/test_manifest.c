/* test_manifest.c — daemon/manifest.c: the daemon registers the worker's
 * artifacts.json only when it matches what is on disk. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "daemon/manifest.h"

static char wd[PATH_MAX];
#define SHA_A "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8"

static void put(const char *rel, const char *text)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", wd, rel);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "%s", p);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    snprintf(wd, sizeof wd, "/tmp/lrq-test-manifest-XXXXXX");
    cr_assert_not_null(mkdtemp(wd));
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/artifacts", wd);
    cr_assert_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/artifacts/hf", wd);
    cr_assert_eq(mkdir(p, 0755), 0);
    put("artifacts/hf/model.safetensors", "0123456789");   /* 10 bytes */
    put("artifacts/hf/config.json", "{}");                 /* 2 bytes */
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", wd);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
}

TestSuite(manifest, .init = setup, .fini = teardown);

static int load(char **metrics, db_artifact_t **a, size_t *n, lrq_err_t *err)
{
    return manifest_load(wd, metrics, a, n, err);
}

Test(manifest, registers_the_workers_listing_sorted)
{
    put("metrics.json", "{ \"ppl\": 4.5 }");
    put("artifacts.json", "{\"artifacts\":[{\"path\":\"hf/model.safetensors\",\"size\":10,\"sha256\":\"" SHA_A "\"},"
                          "{\"path\":\"hf/config.json\",\"size\":2,\"sha256\":\"" SHA_A "\"}]}");
    char *m;
    db_artifact_t *a;
    size_t n;
    lrq_err_t err = {0};
    cr_assert_eq(load(&m, &a, &n, &err), 0, "%s", err.msg);
    cr_expect_str_eq(m, "{\"ppl\":4.5}");
    cr_assert_eq(n, 2);
    cr_expect_str_eq(a[0].path, "hf/config.json");
    cr_expect_eq(a[1].size, 10);
    cr_expect_str_eq(a[1].sha256, SHA_A);
    db_artifacts_free(a, n);
    free(m);
}

static void refused(const char *listing, const char *why)
{
    if (listing) put("artifacts.json", listing);
    char *m = (char *)1;
    db_artifact_t *a = (db_artifact_t *)1;
    size_t n = 7;
    lrq_err_t err = {0};
    cr_expect_lt(load(&m, &a, &n, &err), 0, "accepted: %s", listing ? listing : "(none)");
    cr_expect(strstr(err.msg, why) != NULL, "\"%s\" not in: %s", why, err.msg);
    cr_expect_null(m);
    cr_expect_null(a);
    cr_expect_eq(n, 0);
}

#define ONE(path, size, sha) "{\"artifacts\":[{\"path\":\"" path "\",\"size\":" #size ",\"sha256\":\"" sha "\"}]}"

Test(manifest, listings_that_do_not_match_the_disk_are_refused)
{
    refused(NULL, "without writing artifacts.json");
    refused("[1,2]", "expected {\"artifacts\"");
    refused(ONE("hf/model.safetensors", 11, SHA_A), "10 bytes on disk, artifacts.json says 11");
    refused(ONE("hf/missing.bin", 1, SHA_A), "hf/missing.bin: missing");
    refused(ONE("hf", 1, SHA_A), "not a regular file");
    refused(ONE("../metrics.json", 1, SHA_A), "bad path");
    refused(ONE("/etc/passwd", 1, SHA_A), "bad path");
    refused(ONE("hf/config.json", 2, "XYZ"), "64-hex-digit sha256");
    refused("{\"artifacts\":[{\"path\":\"hf/config.json\",\"size\":2,\"sha256\":\"" SHA_A "\"},"
            "{\"path\":\"hf/config.json\",\"size\":2,\"sha256\":\"" SHA_A "\"}]}", "listed twice");
    char target[PATH_MAX + 64], link[PATH_MAX + 64];
    snprintf(target, sizeof target, "%s/artifacts/hf/config.json", wd);
    snprintf(link, sizeof link, "%s/artifacts/hf/link.json", wd);
    cr_assert_eq(symlink(target, link), 0);
    refused(ONE("hf/link.json", 2, SHA_A), "not a regular file");
    put("metrics.json", "{not json");
    refused(ONE("hf/config.json", 2, SHA_A), "metrics.json is not valid JSON");
}

Test(manifest, no_exports_and_no_metrics_is_fine)
{
    put("artifacts.json", "{\"artifacts\":[]}");
    char *m;
    db_artifact_t *a;
    size_t n;
    lrq_err_t err = {0};
    cr_assert_eq(load(&m, &a, &n, &err), 0, "%s", err.msg);
    cr_expect_null(m);
    cr_expect_eq(n, 0);
    db_artifacts_free(a, n);
}
