/* test_tok.c — tokenizers: llama2.c tokenizer.bin and HF tokenizer.json.
 *
 * References: (1) tests/engine/ref_tok.py, an independent Python transcription of
 * llama2.c run.c `encode`; (2) a naive C transcription below (O(n²) rescan with string
 * concatenation, reading tok512.bin itself) run on random byte strings; (3) the token
 * counts in shared/data/tinystories/SOURCE.md, which were cross-checked against
 * llama2.c's own encode(). The tokenizer.json path is checked by converting tok512.bin
 * with tests/engine/tok_bin2json.py and requiring identical ids on eval.txt. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eng_tok.h"
#include "test_util.h"











static size_t encode(const eng_tok_t *t, const char *s, size_t n, int bos, int32_t **ids)
{
    size_t cnt = 0, cap = 0;
    lrq_err_t e = {0};
    *ids = NULL;
    cr_assert_eq(eng_tok_encode(t, s, n, bos, ids, &cnt, &cap, &e), 0, "%s", e.msg);
    return cnt;
}

TestSuite(tok, .init = setup_tmp, .fini = teardown_tmp);

Test(tok, tok512_basics_and_hand_checked_pieces)
{
    eng_tok_t *t = load_tok512();
    cr_assert_eq(eng_tok_vocab_size(t), 512);
    cr_assert_eq(eng_tok_bos(t), 1);
    cr_assert_eq(eng_tok_eos(t), 2);
    int32_t *ids;
    size_t n = encode(t, "Once upon a time", 16, 1, &ids);
    const int32_t want[] = {1, 403, 407, 261, 378};
    cr_assert_eq(n, 5);
    for (size_t i = 0; i < n; i++) cr_assert_eq(ids[i], want[i], "id %zu: %d", i, ids[i]);
    char b[8];
    cr_assert_str_eq(eng_tok_decode(t, 1, 403, b), "Once"); /* leading space stripped after BOS */
    cr_assert_str_eq(eng_tok_decode(t, 403, 407, b), " upon");
    cr_assert_str_eq(eng_tok_decode(t, 407, 261, b), " a");
    cr_assert_str_eq(eng_tok_decode(t, 261, 378, b), " time");
    cr_assert_str_eq(eng_tok_decode(t, 5, 3 + '\n', b), "\n"); /* <0x0A> → raw byte */
    cr_assert_str_eq(eng_tok_decode(t, 5, 3 + 0xE2, b), "\xE2");
    cr_assert_str_eq(eng_tok_decode(t, 5, 600, b), "");
    free(ids);
    /* empty text: BOS only, no dummy prefix */
    n = encode(t, "", 0, 1, &ids);
    cr_assert_eq(n, 1);
    cr_assert_eq(ids[0], 1);
    free(ids);
    n = encode(t, "", 0, 0, &ids);
    cr_assert_eq(n, 0);
    free(ids);
    /* appends to an existing array */
    size_t cnt = 0, cap = 0;
    lrq_err_t e = {0};
    ids = NULL;
    cr_assert_eq(eng_tok_encode(t, "a", 1, 1, &ids, &cnt, &cap, &e), 0);
    cr_assert_eq(eng_tok_encode(t, "a", 1, 1, &ids, &cnt, &cap, &e), 0);
    cr_assert_eq(cnt, 4);
    cr_assert_eq(ids[2], 1);
    cr_assert_eq(ids[1], ids[3]);
    free(ids);
    eng_tok_free(t);
}

/* Known strings against the independent Python implementation. */
Test(tok, encode_matches_python_reference)
{
    size_t n;
    char *eval = read_file(shared("data/tinystories/eval.txt"), &n);
    json_t *texts = json_pack("[sssssssss]", "Once upon a time", "Hello, world! “Hi” — ok\n\nnew", " x  y ",
                              "Lily's mom said, \"Lily, let's go to the park.\"", "tab\there\r\nCRLF",
                              "emoji 😀 and ünïcödé and 中文 ™", "   ", "\n", "a");
    /* plus the first three stories of eval.txt, whole */
    char *p = eval;
    for (int k = 0; k < 3; k++) {
        char *end = strstr(p, "\n<|endoftext|>\n");
        cr_assert_not_null(end);
        json_array_append_new(texts, json_stringn(p, (size_t)(end - p)));
        p = end + 15;
    }
    cr_assert_eq(json_dump_file(texts, tpath("texts.json"), 0), 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/engine/ref_tok.py %s < %s > %s", srcdir(),
             shared("models/stories260K/tok512.bin"), tpath("texts.json"), tpath("ref.json"));
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    json_error_t je;
    json_t *ref = json_load_file(tpath("ref.json"), 0, &je);
    cr_assert_not_null(ref, "%s", je.text);
    cr_assert_eq(json_array_size(ref), json_array_size(texts));
    eng_tok_t *t = load_tok512();
    size_t total = 0;
    for (size_t i = 0; i < json_array_size(texts); i++) {
        const char *s = json_string_value(json_array_get(texts, i));
        int32_t *ids;
        size_t cnt = encode(t, s, strlen(s), 1, &ids);
        json_t *r = json_array_get(ref, i);
        cr_assert_eq(cnt, json_array_size(r), "text %zu: %zu vs %zu tokens", i, cnt, json_array_size(r));
        for (size_t k = 0; k < cnt; k++)
            cr_assert_eq(ids[k], json_integer_value(json_array_get(r, k)), "text %zu token %zu", i, k);
        total += cnt;
        free(ids);
    }
    cr_assert_gt(total, 300);
    eng_tok_free(t);
    json_decref(ref);
    json_decref(texts);
    free(eval);
}

/* ---- naive llama2.c encode over the raw file (second independent reference) */

typedef struct { char **piece; float *score; int n; } naive_t;

static naive_t naive_load(const char *path)
{
    size_t len;
    char *b = read_file(path, &len);
    naive_t v = {0};
    v.piece = calloc(1024, sizeof *v.piece);
    v.score = calloc(1024, sizeof *v.score);
    size_t o = 4;
    while (o < len) {
        int32_t l;
        memcpy(&v.score[v.n], b + o, 4);
        memcpy(&l, b + o + 4, 4);
        v.piece[v.n] = strndup(b + o + 8, (size_t)l);
        v.n++;
        o += 8 + (size_t)l;
    }
    free(b);
    return v;
}

static int naive_lookup(const naive_t *v, const char *s)
{
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->piece[i], s)) return i;
    return -1;
}

/* run.c encode, transcribed (text is a C string; bos=1, eos=0). */
static int naive_encode(const naive_t *v, const char *text, int *tokens)
{
    char buf[64];
    int n = 0;
    size_t sl = 0;
    tokens[n++] = 1;
    if (text[0] != '\0') tokens[n++] = naive_lookup(v, " ");
    for (const char *c = text; *c; c++) {
        if ((*c & 0xC0) != 0x80) sl = 0;
        buf[sl++] = *c;
        buf[sl] = '\0';
        if ((*(c + 1) & 0xC0) == 0x80 && sl < 4) continue;
        int id = naive_lookup(v, buf);
        if (id != -1) tokens[n++] = id;
        else
            for (size_t i = 0; i < sl; i++) tokens[n++] = (unsigned char)buf[i] + 3;
        sl = 0;
    }
    for (;;) {
        float best = -1e10f;
        int best_id = -1, best_idx = -1;
        for (int i = 0; i < n - 1; i++) {
            snprintf(buf, sizeof buf, "%s%s", v->piece[tokens[i]], v->piece[tokens[i + 1]]);
            int id = naive_lookup(v, buf);
            if (id != -1 && v->score[id] > best) {
                best = v->score[id];
                best_id = id;
                best_idx = i;
            }
        }
        if (best_idx == -1) break;
        tokens[best_idx] = best_id;
        for (int i = best_idx + 1; i < n - 1; i++) tokens[i] = tokens[i + 1];
        n--;
    }
    return n;
}

Test(tok, heap_merge_equals_naive_llama2c_on_random_strings)
{
    naive_t v = naive_load(shared("models/stories260K/tok512.bin"));
    cr_assert_eq(v.n, 512);
    eng_tok_t *t = load_tok512();
    static const char *const atoms[] = {"a", "e", "t", "h", " ", "  ", "the", "ing", "Once", ",", ".", "\n", "'",
                                        "“", "—", "é", "😀", "\xE2", "\x80", "\xFF", "ll", "o", "n", "d", "s", "Q"};
    unsigned seed = 12345;
    char s[256];
    int ref[600];
    for (int it = 0; it < 400; it++) {
        size_t len = 0;
        int natoms = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 40;
        for (int k = 0; k < natoms; k++) {
            seed = seed * 1103515245u + 12345u;
            const char *a = atoms[(seed >> 16) % (sizeof atoms / sizeof atoms[0])];
            if (len + strlen(a) >= sizeof s) break;
            memcpy(s + len, a, strlen(a));
            len += strlen(a);
        }
        s[len] = 0;
        int nref = naive_encode(&v, s, ref);
        int32_t *ids;
        size_t n = encode(t, s, len, 1, &ids);
        cr_assert_eq(n, (size_t)nref, "iteration %d: '%s': %zu vs %d tokens", it, s, n, nref);
        for (int k = 0; k < nref; k++) cr_assert_eq(ids[k], ref[k], "iteration %d token %d", it, k);
        free(ids);
    }
    for (int i = 0; i < v.n; i++) free(v.piece[i]);
    free(v.piece);
    free(v.score);
    eng_tok_free(t);
}

/* SOURCE.md: eval.txt as one encode() call = 76,571 tokens, calib.txt = 122,742. */
Test(tok, whole_file_counts_match_source_md)
{
    eng_tok_t *t = load_tok512();
    const char *files[2] = {"data/tinystories/eval.txt", "data/tinystories/calib.txt"};
    const size_t want[2] = {76571, 122742};
    for (int i = 0; i < 2; i++) {
        size_t len;
        char *txt = read_file(shared(files[i]), &len);
        int32_t *ids;
        size_t n = encode(t, txt, len, 1, &ids);
        cr_assert_eq(n, want[i], "%s: %zu tokens, SOURCE.md says %zu", files[i], n, want[i]);
        free(ids);
        free(txt);
    }
    eng_tok_free(t);
}

static void bin2json(const char *out, int pair_merges)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/engine/tok_bin2json.py %s %s %s", srcdir(),
             shared("models/stories260K/tok512.bin"), out, pair_merges ? "--pair-merges" : "");
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(tok, tokenizer_json_equals_bin_on_eval)
{
    bin2json(tpath("tokenizer.json"), 0);
    bin2json(tpath("pairs.json"), 1);
    eng_tok_t *tb = load_tok512(), *tj, *tp;
    lrq_err_t e = {0};
    cr_assert_eq(eng_tok_load(tpath("tokenizer.json"), &tj, &e), 0, "%s", e.msg);
    cr_assert_eq(eng_tok_load(tpath("pairs.json"), &tp, &e), 0, "%s", e.msg);
    cr_assert_eq(eng_tok_vocab_size(tj), 512);
    cr_assert_eq(eng_tok_bos(tj), 1);
    cr_assert_eq(eng_tok_eos(tj), 2);
    /* per-story stream (eng_data_load) and the whole file as one call */
    int32_t *a, *b, *c;
    size_t na, nb, nc;
    const char *eval = shared("data/tinystories/eval.txt");
    cr_assert_eq(eng_data_load(eval, tb, 512, &a, &na, &e), 0, "%s", e.msg);
    cr_assert_eq(eng_data_load(eval, tj, 512, &b, &nb, &e), 0, "%s", e.msg);
    cr_assert_eq(eng_data_load(eval, tp, 512, &c, &nc, &e), 0, "%s", e.msg);
    cr_assert_eq(na, 73835);
    cr_assert_eq(nb, na);
    cr_assert_eq(nc, na);
    for (size_t i = 0; i < na; i++) {
        cr_assert_eq(a[i], b[i], "token %zu", i);
        cr_assert_eq(a[i], c[i], "token %zu", i);
    }
    free(a);
    free(b);
    free(c);
    size_t len;
    char *txt = read_file(eval, &len);
    na = encode(tb, txt, len, 1, &a);
    nb = encode(tj, txt, len, 1, &b);
    cr_assert_eq(na, nb);
    cr_assert_eq(memcmp(a, b, na * sizeof *a), 0);
    /* decode round trip through both (after BOS the leading space goes) */
    char buf[8];
    size_t pos = 0;
    for (size_t i = 1; i < na && pos < 2000; i++) {
        const char *p1 = eng_tok_decode(tb, a[i - 1], a[i], buf);
        size_t l = strlen(p1);
        char tmp[64];
        snprintf(tmp, sizeof tmp, "%s", p1);
        cr_assert_str_eq(eng_tok_decode(tj, b[i - 1], b[i], buf), tmp, "token %zu", i);
        cr_assert_eq(memcmp(txt + pos, tmp, l), 0, "decode diverges at byte %zu", pos);
        pos += l;
    }
    free(a);
    free(b);
    free(txt);
    eng_tok_free(tb);
    eng_tok_free(tj);
    eng_tok_free(tp);
}

static void expect_load_fail(const char *path, int code, const char *substr)
{
    eng_tok_t *t = (eng_tok_t *)0x1;
    lrq_err_t e = {0};
    int rc = eng_tok_load(path, &t, &e);
    cr_assert_eq(rc, code, "rc %d (want %d): %s", rc, code, e.msg);
    cr_assert_null(t);
    cr_assert_not_null(strstr(e.msg, substr), "message '%s' lacks '%s'", e.msg, substr);
}

Test(tok, refuses_byte_level_and_other_models)
{
    const char *bl = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]},"
                     "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false}}";
    write_file(tpath("bl.json"), bl, strlen(bl));
    expect_load_fail(tpath("bl.json"), LRQ_EUNSUPP, "byte-level BPE");
    const char *bl2 = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"\xC4\xA0\":1,\"\xC4\xA0" "a\":2},"
                      "\"merges\":[[\"\xC4\xA0\",\"a\"]]},\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":"
                      "[{\"type\":\"Split\"}]}}";
    write_file(tpath("bl2.json"), bl2, strlen(bl2));
    expect_load_fail(tpath("bl2.json"), LRQ_EUNSUPP, "byte-level BPE");
    const char *ug = "{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}";
    write_file(tpath("ug.json"), ug, strlen(ug));
    expect_load_fail(tpath("ug.json"), LRQ_EUNSUPP, "model type \"Unigram\" is not supported");
}

Test(tok, refuses_corrupt_files)
{
    size_t n;
    char *b = read_file(shared("models/stories260K/tok512.bin"), &n);
    write_file(tpath("t.bin"), b, n - 3);
    expect_load_fail(tpath("t.bin"), LRQ_EFORMAT, "t.bin: truncated at token 511");
    int32_t bad[3] = {7, 0, -5}; /* score 0, length -5 */
    write_file(tpath("neg.bin"), bad, sizeof bad);
    expect_load_fail(tpath("neg.bin"), LRQ_EFORMAT, "token 0 has bad length -5");
    write_file(tpath("short.bin"), b, 2);
    expect_load_fail(tpath("short.bin"), LRQ_EFORMAT, "too short");
    free(b);
    const char *gap = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"<s>\":2,\"</s>\":3},\"merges\":[]}}";
    write_file(tpath("gap.json"), gap, strlen(gap));
    expect_load_fail(tpath("gap.json"), LRQ_EFORMAT, "vocab id 1 missing");
    const char *dup = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":1,\"x\":2},\"merges\":[]}}";
    write_file(tpath("dup.json"), dup, strlen(dup));
    expect_load_fail(tpath("dup.json"), LRQ_EFORMAT, "vocab id 1 used twice");
    const char *mg = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"a\":3},"
                     "\"merges\":[\"a b\"]}}";
    write_file(tpath("mg.json"), mg, strlen(mg));
    expect_load_fail(tpath("mg.json"), LRQ_EFORMAT, "merges[0] (\"a\" + \"b\"): token not in vocab");
    const char *mg2 = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"a\":3},"
                      "\"merges\":[\"a a a\"]}}";
    write_file(tpath("mg2.json"), mg2, strlen(mg2));
    expect_load_fail(tpath("mg2.json"), LRQ_EFORMAT, "merges[0]: expected");
    write_file(tpath("nm.json"), "{\"x\": 1}", 8);
    expect_load_fail(tpath("nm.json"), LRQ_EFORMAT, "no \"model\" object");
    write_file(tpath("bad.json"), "{\"model\": ", 10);
    expect_load_fail(tpath("bad.json"), LRQ_EFORMAT, "not valid JSON");
    expect_load_fail(tpath("absent.bin"), LRQ_ENOTFOUND, "absent.bin");
}

Test(tok, locate_beside_model_or_explicit)
{
    char *p = NULL;
    lrq_err_t e = {0};
    mkdir(tpath("m"), 0755);
    write_file(tpath("m/model.bin"), "x", 1);
    cr_assert_eq(eng_tok_locate(tpath("m/model.bin"), NULL, &p, &e), LRQ_ENOTFOUND);
    cr_assert_not_null(strstr(e.msg, "no tokenizer beside model"), "%s", e.msg);
    write_file(tpath("m/tok512.bin"), "x", 1);
    write_file(tpath("m/tok999.bin"), "x", 1);
    cr_assert_eq(eng_tok_locate(tpath("m/model.bin"), NULL, &p, &e), 0, "%s", e.msg);
    cr_assert_str_eq(p, tpath("m/tok512.bin"));
    free(p);
    write_file(tpath("m/tokenizer.bin"), "x", 1);
    cr_assert_eq(eng_tok_locate(tpath("m/model.bin"), NULL, &p, &e), 0);
    cr_assert_str_eq(p, tpath("m/tokenizer.bin"));
    free(p);
    write_file(tpath("m/tokenizer.json"), "x", 1);
    cr_assert_eq(eng_tok_locate(tpath("m/model.bin"), NULL, &p, &e), 0);
    cr_assert_str_eq(p, tpath("m/tokenizer.json"));
    free(p);
    cr_assert_eq(eng_tok_locate(tpath("m"), NULL, &p, &e), 0); /* HF directory */
    cr_assert_str_eq(p, tpath("m/tokenizer.json"));
    free(p);
    cr_assert_eq(eng_tok_locate(tpath("m"), tpath("m/tok999.bin"), &p, &e), 0);
    cr_assert_str_eq(p, tpath("m/tok999.bin"));
    free(p);
    cr_assert_eq(eng_tok_locate(tpath("m"), tpath("m/none.json"), &p, &e), LRQ_ENOTFOUND);
    cr_assert_null(p);
    cr_assert_not_null(strstr(e.msg, "none.json"));
}

Test(tok, json_without_byte_fallback_uses_unk_and_metaspace_prefix)
{
    /* Older Llama tokenizer.json layout: Metaspace pre-tokenizer adds the prefix. */
    const char *j = "{\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\","
                    "\"add_prefix_space\":true},\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"vocab\":"
                    "{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"\xE2\x96\x81\":3,\"a\":4,\"b\":5,\"\xE2\x96\x81" "a\":6,"
                    "\"ab\":7,\"\xE2\x96\x81" "ab\":8},\"merges\":[\"a b\",\"\xE2\x96\x81 a\",\"\xE2\x96\x81" "a b\","
                    "\"\xE2\x96\x81 ab\"]}}";
    write_file(tpath("ms.json"), j, strlen(j));
    eng_tok_t *t;
    lrq_err_t e = {0};
    cr_assert_eq(eng_tok_load(tpath("ms.json"), &t, &e), 0, "%s", e.msg);
    int32_t *ids;
    /* "ab b z": ▁ a b ▁ b ▁ z → a+b (rank 0) first: ▁ ab ▁ b ▁ z → ▁+ab (rank 3): ▁ab ▁ b ▁ <unk> */
    size_t n = encode(t, "ab b z", 6, 1, &ids);
    const int32_t want[] = {1, 8, 3, 5, 3, 0};
    cr_assert_eq(n, 6, "%zu", n);
    for (size_t i = 0; i < n; i++) cr_assert_eq(ids[i], want[i], "token %zu = %d", i, ids[i]);
    char b[8];
    cr_assert_str_eq(eng_tok_decode(t, 1, 8, b), "ab");
    cr_assert_str_eq(eng_tok_decode(t, 8, 3, b), " ");
    free(ids);
    eng_tok_free(t);
}

/* Mutated tokenizer files load or fail cleanly; whatever loads encodes and decodes. */
Test(tok, load_survives_mutations)
{
    bin2json(tpath("tokenizer.json"), 0);
    size_t nb, nj;
    char *bin = read_file(shared("models/stories260K/tok512.bin"), &nb);
    char *js = read_file(tpath("tokenizer.json"), &nj);
    unsigned seed = 99;
    int loaded = 0;
    for (int it = 0; it < 600; it++) {
        int use_json = it % 2;
        size_t n = use_json ? nj : nb;
        char *b = malloc(n + 1);
        memcpy(b, use_json ? js : bin, n);
        for (int k = 0; k < 1 + it % 3; k++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = seed >> 8;
            if (r % 5 == 0) n = (r / 5) % n;
            else b[(r / 5) % n] = use_json ? "0123456789\"[]{},: ab\\"[(r / 7) % 21] : (char)(seed >> 2);
        }
        eng_tok_t *t;
        lrq_err_t e = {0};
        int rc = eng_tok_load_mem((const uint8_t *)b, n, "fuzz", &t, &e);
        if (rc == 0) {
            int32_t *ids = NULL;
            size_t cnt = 0, cap = 0;
            const char *s = "Once upon a time, “hi” \xFF\x80 end";
            if (eng_tok_encode(t, s, strlen(s), 1, &ids, &cnt, &cap, &e) == 0)
                for (size_t i = 0; i < cnt; i++) cr_assert(ids[i] >= 0 && ids[i] < eng_tok_vocab_size(t));
            char buf[8];
            for (int i = -1; i <= eng_tok_vocab_size(t); i++) cr_assert_not_null(eng_tok_decode(t, 1, i, buf));
            free(ids);
            eng_tok_free(t);
            loaded++;
        } else {
            cr_assert_lt(rc, 0);
            cr_assert_gt(strlen(e.msg), 5);
        }
        free(b);
    }
    cr_assert_gt(loaded, 10);
    free(bin);
    free(js);
}
