/* test_data.c — token streams: text with <|endoftext|> separators, .tok, .json.
 * Reference counts: shared/data/tinystories/SOURCE.md (per-story, stripped, BOS first). */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eng_tok.h"
#include "test_util.h"









/* Encode the given documents one by one with BOS (the expected stream). */
static size_t expected(const eng_tok_t *t, const char *const *docs, int n, int32_t **ids)
{
    size_t cnt = 0, cap = 0;
    lrq_err_t e = {0};
    *ids = NULL;
    for (int i = 0; i < n; i++) cr_assert_eq(eng_tok_encode(t, docs[i], strlen(docs[i]), 1, ids, &cnt, &cap, &e), 0);
    return cnt;
}

static void expect_stream(const char *path, const eng_tok_t *t, const char *const *docs, int ndocs)
{
    int32_t *want, *got;
    size_t nw = expected(t, docs, ndocs, &want), ng;
    lrq_err_t e = {0};
    cr_assert_eq(eng_data_load(path, t, 512, &got, &ng, &e), 0, "%s", e.msg);
    cr_assert_eq(ng, nw, "%zu vs %zu tokens", ng, nw);
    for (size_t i = 0; i < nw; i++) cr_assert_eq(got[i], want[i], "token %zu", i);
    free(want);
    free(got);
}

static void expect_fail(const char *path, const eng_tok_t *t, int limit, int code, const char *substr)
{
    int32_t *ids = (int32_t *)0x1;
    size_t n = 7;
    lrq_err_t e = {0};
    int rc = eng_data_load(path, t, limit, &ids, &n, &e);
    cr_assert_eq(rc, code, "rc %d: %s", rc, e.msg);
    cr_assert_null(ids);
    cr_assert_eq(n, 0);
    cr_assert_not_null(strstr(e.msg, substr), "message '%s' lacks '%s'", e.msg, substr);
}

TestSuite(data, .init = setup_tmp, .fini = teardown_tmp);

Test(data, tinystories_counts_match_source_md)
{
    eng_tok_t *t = load_tok512();
    const char *files[3] = {"data/tinystories/calib.txt", "data/tinystories/eval.txt", "data/tinystories/test.txt"};
    const size_t want[3] = {118802, 73835, 115237};
    const size_t stories[3] = {284, 192, 308};
    for (int i = 0; i < 3; i++) {
        int32_t *ids;
        size_t n;
        lrq_err_t e = {0};
        cr_assert_eq(eng_data_load(shared(files[i]), t, 512, &ids, &n, &e), 0, "%s", e.msg);
        cr_assert_eq(n, want[i], "%s: %zu tokens, SOURCE.md says %zu", files[i], n, want[i]);
        size_t bos = 0;
        for (size_t k = 0; k < n; k++) bos += ids[k] == 1;
        cr_assert_eq(bos, stories[i], "%s: %zu documents", files[i], bos);
        cr_assert_eq(ids[0], 1);
        free(ids);
    }
    eng_tok_free(t);
}

Test(data, text_separators_strip_and_empty_docs)
{
    eng_tok_t *t = load_tok512();
    /* leading blank line, trailing spaces, an empty document, a document of only
     * whitespace, a separator-like line that is not exact, no final newline */
    const char *txt = "\n Once upon a time.  \n<|endoftext|>\n<|endoftext|>\n  \t\n<|endoftext|>\n"
                      "Tom said <|endoftext|> twice.\n <|endoftext|>\nBye";
    write_file(tpath("a.txt"), txt, strlen(txt));
    const char *docs[] = {"Once upon a time.", "Tom said <|endoftext|> twice.\n <|endoftext|>\nBye"};
    expect_stream(tpath("a.txt"), t, docs, 2);
    /* CRLF line ends on separators; Unicode whitespace (U+200A, U+3000, NBSP) stripped as Python does */
    const char *txt2 = "\xE2\x80\x8A" "A b\xE3\x80\x80\r\n<|endoftext|>\r\n\xC2\xA0" "C\n<|endoftext|>\n";
    write_file(tpath("b.txt"), txt2, strlen(txt2));
    const char *docs2[] = {"A b", "C"};
    expect_stream(tpath("b.txt"), t, docs2, 2);
    /* inner Unicode whitespace stays */
    const char *txt3 = "x\xE2\x80\x8Ay";
    write_file(tpath("c.txt"), txt3, strlen(txt3));
    const char *docs3[] = {"x\xE2\x80\x8Ay"};
    expect_stream(tpath("c.txt"), t, docs3, 1);
    /* nothing but separators and blanks */
    const char *txt4 = "<|endoftext|>\n \n<|endoftext|>\n";
    write_file(tpath("d.txt"), txt4, strlen(txt4));
    expect_fail(tpath("d.txt"), t, 512, LRQ_EFORMAT, "no tokens");
    expect_fail(tpath("c.txt"), NULL, 512, LRQ_EFORMAT, "needs a tokenizer");
    expect_fail(tpath("missing.txt"), t, 512, LRQ_ENOTFOUND, "missing.txt");
    /* vocab limit applies to text too */
    expect_fail(tpath("a.txt"), t, 100, LRQ_EFORMAT, "is >= vocab size 100");
    eng_tok_free(t);
}

Test(data, tok_files)
{
    const uint8_t le[] = {1, 0, 0, 0, 0xff, 1, 0, 0, 7, 0, 0, 0}; /* 1, 511, 7 */
    write_file(tpath("x.tok"), le, sizeof le);
    int32_t *ids;
    size_t n;
    lrq_err_t e = {0};
    cr_assert_eq(eng_data_load(tpath("x.tok"), NULL, 512, &ids, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(n, 3);
    cr_assert_eq(ids[0], 1);
    cr_assert_eq(ids[1], 511);
    cr_assert_eq(ids[2], 7);
    free(ids);
    expect_fail(tpath("x.tok"), NULL, 511, LRQ_EFORMAT, "token id 511 at position 1 is >= vocab size 511");
    write_file(tpath("y.tok"), le, 10);
    expect_fail(tpath("y.tok"), NULL, 512, LRQ_EFORMAT, "size 10 is not a multiple of 4");
    const uint8_t big[] = {0, 0, 0, 0x80};
    write_file(tpath("z.tok"), big, 4);
    expect_fail(tpath("z.tok"), NULL, 0, LRQ_EFORMAT, "out of range");
    write_file(tpath("e.tok"), le, 0);
    expect_fail(tpath("e.tok"), NULL, 512, LRQ_EFORMAT, "no tokens");
}

Test(data, json_arrays)
{
    const char *j = "[1, 5, 300, 2]";
    write_file(tpath("x.json"), j, strlen(j));
    int32_t *ids;
    size_t n;
    lrq_err_t e = {0};
    cr_assert_eq(eng_data_load(tpath("x.json"), NULL, 512, &ids, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(n, 4);
    cr_assert_eq(ids[2], 300);
    free(ids);
    expect_fail(tpath("x.json"), NULL, 300, LRQ_EFORMAT, "token id 300 at position 2");
    write_file(tpath("b.json"), "[1, \"a\"]", 8);
    expect_fail(tpath("b.json"), NULL, 512, LRQ_EFORMAT, "element 1 is not a non-negative 32-bit integer");
    write_file(tpath("c.json"), "[1, -3]", 7);
    expect_fail(tpath("c.json"), NULL, 512, LRQ_EFORMAT, "element 1");
    write_file(tpath("d.json"), "{\"ids\": [1]}", 12);
    expect_fail(tpath("d.json"), NULL, 512, LRQ_EFORMAT, "expected a JSON array");
    write_file(tpath("f.json"), "[1, 2", 5);
    expect_fail(tpath("f.json"), NULL, 512, LRQ_EFORMAT, "not valid JSON");
}
