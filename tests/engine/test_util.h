/* test_util.h — fixtures shared by the engine I/O tests: a temp dir per test,
 * paths into ../shared and the source tree, whole-file read/write, tok512. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include "eng_tok.h"

static char tmpdir[256];

static inline int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static inline void setup_tmp(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lrq-test-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static inline void teardown_tmp(void)
{
    if (tmpdir[0]) nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static inline const char *srcdir(void)
{
    const char *s = getenv("LRQ_SRCDIR");
    return s ? s : ".";
}

/* Path under ../shared (LRQ_SHARED, set by make check). Four rotating buffers. */
static inline const char *shared(const char *rel)
{
    static char buf[4][1024];
    static int k;
    const char *s = getenv("LRQ_SHARED");
    char *b = buf[k++ & 3];
    if (s) snprintf(b, 1024, "%s/%s", s, rel);
    else snprintf(b, 1024, "%s/../shared/%s", srcdir(), rel);
    return b;
}

/* Path under this test's temp dir. */
static inline const char *tpath(const char *rel)
{
    static char buf[4][1024];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 1024, "%s/%s", tmpdir, rel);
    return b;
}

static inline void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "fopen %s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* Whole file, NUL-terminated (n excludes the NUL). */
static inline void *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "fopen %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    cr_assert_not_null(b);
    cr_assert_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    b[len] = '\0';
    *n = (size_t)len;
    return b;
}

static inline eng_tok_t *load_tok512(void)
{
    eng_tok_t *t;
    lrq_err_t e = {0};
    cr_assert_eq(eng_tok_load(shared("models/stories260K/tok512.bin"), &t, &e), 0, "%s", e.msg);
    return t;
}

#endif
