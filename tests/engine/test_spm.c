/* test_spm.c — tokenizers from SentencePiece .model files (engine/eng_spm.c, eng_tok.c).
 *
 * References: (1) the llama2.c tokenizer.bin exports of the same two real models
 * (stories260K tok512, babyllama-tok105; made by llama2.c's tokenizer.py from the .model with
 * the SentencePiece library, so they are independent of lrq's protobuf reader): pieces, scores
 * (bit for bit), special ids, derived types, and the ids of calib.txt / eval.txt must agree;
 * (2) the piece-type counts of both .model files, read with a separate throwaway protobuf dump
 * while writing this test (tok512: 1 UNKNOWN, 2 CONTROL, 256 BYTE, 253 NORMAL; tok105: 1, 2, 0,
 * 102); (3) .model files written here by a small protobuf writer (from the wire-format spec,
 * protobuf.dev "Encoding"), whose tokenizations are worked out by hand; (4) for babyllama-tok105
 * (no byte pieces) every character outside the vocabulary must become <unk>, counted directly
 * in the text; (5) a GGUF export from the .model must be byte-identical to the one from the
 * .bin. Corrupt files are refused with LRQ_EFORMAT naming the byte offset, never a crash. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eng_export.h"
#include "eng_gguf.h"
#include "eng_model.h"
#include "eng_quant.h"
#include "eng_spm.h"
#include "eng_tok.h"
#include "test_util.h"

#define S260 "models/stories260K/"
#define B105 "models/babyllama-tok105/"

TestSuite(spm, .init = setup_tmp, .fini = teardown_tmp, .timeout = 300);

static int have_shared(void)
{
    struct stat st;
    return stat(shared(S260 "tok512.model"), &st) == 0 && stat(shared(B105 "tok105.model"), &st) == 0;
}

static eng_tok_t *load(const char *path)
{
    eng_tok_t *t = NULL;
    lrq_err_t e = {0};
    cr_assert_eq(eng_tok_load(path, &t, &e), 0, "%s: %s", path, e.msg);
    return t;
}

/* ---- a protobuf writer, written from the wire-format spec */

typedef struct { uint8_t *p; size_t n, cap; } pb_t;

static void pb_raw(pb_t *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        cr_assert_not_null(b->p);
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void pb_varint(pb_t *b, uint64_t v)
{
    do {
        uint8_t c = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) c |= 0x80;
        pb_raw(b, &c, 1);
    } while (v);
}
static void pb_tag(pb_t *b, unsigned f, int wt) { pb_varint(b, (uint64_t)f << 3 | (unsigned)wt); }
static void pb_uint(pb_t *b, unsigned f, uint64_t v) { pb_tag(b, f, 0); pb_varint(b, v); }
static void pb_bytes(pb_t *b, unsigned f, const void *d, size_t n) { pb_tag(b, f, 2); pb_varint(b, n); pb_raw(b, d, n); }
static void pb_str(pb_t *b, unsigned f, const char *s) { pb_bytes(b, f, s, strlen(s)); }
static void pb_msg(pb_t *b, unsigned f, pb_t *m) { pb_bytes(b, f, m->p, m->n); free(m->p); *m = (pb_t){0}; }
static void pb_f32(pb_t *b, unsigned f, float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    pb_tag(b, f, 5);
    pb_raw(b, le, 4);
}
/* One field of every wire type lrq does not know, including a nested group. */
static void pb_junk(pb_t *b, unsigned f)
{
    pb_uint(b, f, 300);
    pb_tag(b, f + 1, 1);
    pb_raw(b, "\1\2\3\4\5\6\7\x08", 8);
    pb_str(b, f + 2, "junk");
    pb_tag(b, f + 3, 5);
    pb_raw(b, "\1\2\3\4", 4);
    pb_tag(b, f + 4, 3);
    pb_uint(b, 1, 7);
    pb_tag(b, 2, 3);
    pb_str(b, 1, "inner");
    pb_tag(b, 2, 4);
    pb_tag(b, f + 4, 4);
}

static void pb_piece(pb_t *b, const char *s, size_t n, float score, int type, int junk)
{
    pb_t p = {0};
    if (junk) pb_junk(&p, 100);
    pb_bytes(&p, 1, s, n);
    pb_f32(&p, 2, score);
    if (type != 1 || junk) pb_uint(&p, 3, (uint64_t)type); /* NORMAL is the default: sometimes absent */
    pb_msg(b, 1, &p);
}

typedef struct { int model_type, byte_fallback, dummy, rm_ws, junk, split_trainer; int64_t unk, bos, eos; } opts_t;
static const opts_t BPE = {2, 0, 1, 0, 0, 0, 0, 1, 2};

static void pb_specs(pb_t *b, const opts_t *o)
{
    pb_t tr = {0}, nm = {0};
    if (o->junk) pb_junk(&tr, 200);
    pb_str(&tr, 1, "data/x.txt");
    if (o->model_type) pb_uint(&tr, 3, (uint64_t)o->model_type);
    pb_uint(&tr, 4, 512);
    if (o->split_trainer) pb_msg(b, 2, &tr); /* a second trainer_spec merges into the first */
    pb_uint(&tr, 35, (uint64_t)o->byte_fallback);
    pb_uint(&tr, 40, (uint64_t)o->unk); /* int32: negative values are 10-byte varints */
    pb_uint(&tr, 41, (uint64_t)o->bos);
    pb_uint(&tr, 42, (uint64_t)o->eos);
    pb_uint(&tr, 43, (uint64_t)-1);
    pb_msg(b, 2, &tr);
    pb_str(&nm, 1, "identity");
    pb_bytes(&nm, 2, "", 0);
    pb_uint(&nm, 3, (uint64_t)o->dummy);
    pb_uint(&nm, 4, (uint64_t)o->rm_ws);
    if (o->junk) pb_junk(&nm, 300);
    pb_msg(b, 3, &nm);
    if (o->junk) pb_junk(b, 400);
}

/* A .model from a llama2.c tokenizer.bin: the inverse of tokenizer.py's export. */
static pb_t model_from_bin(const char *bin, const opts_t *o)
{
    size_t n;
    char *b = read_file(bin, &n);
    pb_t out = {0};
    if (o->junk) pb_junk(&out, 500);
    size_t off = 4;
    for (int id = 0; off < n; id++) {
        float s;
        int32_t l;
        memcpy(&s, b + off, 4);
        memcpy(&l, b + off + 4, 4);
        const char *p = b + off + 8;
        char tmp[4096];
        size_t k = 0;
        int type = id == 0 ? 2 : id <= 2 ? 3 : 1;
        if (id <= 2 && l > 2 && p[0] == '\n') { /* "\n<s>\n" → "<s>" */
            memcpy(tmp, p + 1, (size_t)l - 2);
            k = (size_t)l - 2;
        } else
            for (int i = 0; i < l; i++)
                if (p[i] == ' ') { memcpy(tmp + k, "\xE2\x96\x81", 3); k += 3; }
                else tmp[k++] = p[i];
        if (l == 6 && !memcmp(p, "<0x", 3)) type = 6;
        pb_piece(&out, tmp, k, s, type, o->junk && id % 7 == 0);
        off += 8 + (size_t)l;
    }
    pb_specs(&out, o);
    free(b);
    return out;
}

static void expect_same_vocab(const eng_tok_t *a, const eng_tok_t *b, const char *what)
{
    cr_assert_eq(eng_tok_vocab_size(a), eng_tok_vocab_size(b), "%s", what);
    cr_assert_eq(eng_tok_bos(a), eng_tok_bos(b), "%s", what);
    cr_assert_eq(eng_tok_eos(a), eng_tok_eos(b), "%s", what);
    cr_assert_eq(eng_tok_unk(a), eng_tok_unk(b), "%s", what);
    cr_assert_eq(eng_tok_scored(a), eng_tok_scored(b), "%s", what);
    cr_assert_eq(eng_tok_dummy_prefix(a), eng_tok_dummy_prefix(b), "%s", what);
    for (int id = 0; id < eng_tok_vocab_size(a); id++) {
        int la, lb;
        float sa, sb;
        const char *pa = eng_tok_piece(a, id, &la, &sa), *pb = eng_tok_piece(b, id, &lb, &sb);
        cr_assert(la == lb && !memcmp(pa, pb, (size_t)la), "%s: piece %d: '%.*s' vs '%.*s'", what, id, la, pa, lb, pb);
        cr_assert_eq(memcmp(&sa, &sb, 4), 0, "%s: score of %d: %g vs %g", what, id, sa, sb);
        cr_assert_eq(eng_tok_type(a, id), eng_tok_type(b, id), "%s: type of %d", what, id);
    }
}

static void type_counts(const eng_tok_t *t, int c[7])
{
    memset(c, 0, 7 * sizeof *c);
    for (int id = 0; id < eng_tok_vocab_size(t); id++) c[eng_tok_type(t, id)]++;
}

Test(spm, real_models_load_like_their_bin_exports)
{
    if (!have_shared()) cr_skip_test("shared models not found");
    const char *pairs[2][2] = {{S260 "tok512.model", S260 "tok512.bin"}, {B105 "tok105.model", B105 "tok105.bin"}};
    const int want[2][7] = {{0, 253, 1, 2, 0, 0, 256}, {0, 102, 1, 2, 0, 0, 0}};
    for (int k = 0; k < 2; k++) {
        eng_tok_t *m = load(shared(pairs[k][0])), *b = load(shared(pairs[k][1]));
        expect_same_vocab(m, b, pairs[k][0]);
        int c[7];
        type_counts(m, c);
        for (int ty = 0; ty < 7; ty++) cr_assert_eq(c[ty], want[k][ty], "%s: %d pieces of type %d", pairs[k][0], c[ty], ty);
        cr_assert_eq(eng_tok_bos(m), 1);
        cr_assert_eq(eng_tok_eos(m), 2);
        cr_assert_eq(eng_tok_unk(m), 0);
        int len;
        cr_assert_str_eq(eng_tok_piece(m, 1, &len, NULL), "\n<s>\n"); /* as tokenizer.py exports BOS */
        cr_assert_str_eq(eng_tok_piece(m, 3, &len, NULL), k == 0 ? "<0x00>" : " ");
        eng_tok_free(m);
        eng_tok_free(b);
    }
}

/* Characters outside tok105's vocabulary (only the newline in these files) in the per-story
 * documents of a data file, counted directly: documents split at "\n<|endoftext|>\n" lines and
 * stripped, as docs/formats.md defines the text stream. */
static size_t count_inner_newlines(const char *txt)
{
    size_t cnt = 0;
    const char *p = txt;
    for (;;) {
        const char *end = strstr(p, "\n<|endoftext|>\n");
        const char *e = end ? end : p + strlen(p);
        while (p < e && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) p++;
        const char *q = e;
        while (q > p && (q[-1] == ' ' || q[-1] == '\n' || q[-1] == '\t' || q[-1] == '\r')) q--;
        for (const char *c = p; c < q; c++) cnt += *c == '\n';
        if (!end) break;
        p = end + 15;
    }
    return cnt;
}

Test(spm, calib_and_eval_tokenize_as_with_the_bin)
{
    if (!have_shared()) cr_skip_test("shared models not found");
    const char *pairs[2][2] = {{S260 "tok512.model", S260 "tok512.bin"}, {B105 "tok105.model", B105 "tok105.bin"}};
    const char *files[2] = {"data/tinystories/calib.txt", "data/tinystories/eval.txt"};
    for (int k = 0; k < 2; k++) {
        eng_tok_t *m = load(shared(pairs[k][0])), *b = load(shared(pairs[k][1]));
        int V = eng_tok_vocab_size(b);
        for (int f = 0; f < 2; f++) {
            lrq_err_t e = {0};
            int32_t *a = NULL, *c = NULL;
            size_t na = 0, nc = 0;
            cr_assert_eq(eng_data_load(shared(files[f]), m, V, &a, &na, &e), 0, "%s", e.msg);
            cr_assert_eq(eng_data_load(shared(files[f]), b, V, &c, &nc, &e), 0, "%s", e.msg);
            cr_assert_eq(na, nc, "%s with %s: %zu vs %zu tokens", files[f], pairs[k][0], na, nc);
            for (size_t i = 0; i < na; i++) cr_assert_eq(a[i], c[i], "%s with %s: token %zu", files[f], pairs[k][0], i);
            if (k == 0) /* SOURCE.md's per-story count for eval.txt (test_tok.c) */
                cr_assert(f == 0 || na == 73835, "%zu", na);
            size_t len;
            char *txt = read_file(shared(files[f]), &len);
            if (k == 1) { /* no byte pieces: each unknown character is one <unk>, nothing else is */
                size_t unk = 0;
                for (size_t i = 0; i < na; i++) unk += a[i] == 0;
                size_t want = count_inner_newlines(txt);
                cr_assert_gt(want, 100);
                cr_assert_eq(unk, want, "%s: %zu <unk>, %zu newlines inside stories", files[f], unk, want);
            }
            free(a);
            free(c);
            /* the whole file as one call (runs of spaces and newlines included) */
            a = c = NULL;
            na = nc = 0;
            size_t ca = 0, cc = 0;
            cr_assert_eq(eng_tok_encode(m, txt, len, 1, &a, &na, &ca, &e), 0, "%s", e.msg);
            cr_assert_eq(eng_tok_encode(b, txt, len, 1, &c, &nc, &cc, &e), 0, "%s", e.msg);
            cr_assert_eq(na, nc);
            cr_assert_eq(memcmp(a, c, na * sizeof *a), 0, "%s whole file with %s", files[f], pairs[k][0]);
            free(a);
            free(c);
            free(txt);
        }
        eng_tok_free(m);
        eng_tok_free(b);
    }
}

/* The same vocabulary written here, with unknown fields of every wire type (groups too) and a
 * trainer_spec split in two: the reader skips and merges as protobuf does. */
Test(spm, unknown_fields_are_skipped_and_messages_merge)
{
    if (!have_shared()) cr_skip_test("shared models not found");
    opts_t o = BPE;
    o.byte_fallback = 1;
    o.junk = 1;
    o.split_trainer = 1;
    pb_t pb = model_from_bin(shared(S260 "tok512.bin"), &o);
    write_file(tpath("re.model"), pb.p, pb.n);
    free(pb.p);
    eng_tok_t *r = load(tpath("re.model")), *m = load(shared(S260 "tok512.model"));
    expect_same_vocab(r, m, "rebuilt tok512");
    size_t len;
    char *txt = read_file(shared("data/tinystories/eval.txt"), &len);
    int32_t *a = NULL, *c = NULL;
    size_t na = 0, nc = 0, ca = 0, cc = 0;
    lrq_err_t e = {0};
    cr_assert_eq(eng_tok_encode(r, txt, len, 1, &a, &na, &ca, &e), 0);
    cr_assert_eq(eng_tok_encode(m, txt, len, 1, &c, &nc, &cc, &e), 0);
    cr_assert(na == nc && !memcmp(a, c, na * sizeof *a));
    cr_assert_eq(na, 76571); /* SOURCE.md: eval.txt as one encode() call */
    free(a);
    free(c);
    free(txt);
    eng_tok_free(r);
    eng_tok_free(m);
}

/* ---- hand-made vocabularies */

typedef struct { const char *s; float score; int type; } hp_t;

static pb_t hand_model(const hp_t *p, int n, const opts_t *o, int bytes)
{
    pb_t b = {0};
    for (int i = 0; i < n; i++) pb_piece(&b, p[i].s, strlen(p[i].s), p[i].score, p[i].type, 0);
    for (int i = 0; i < bytes; i++) {
        char nm[8];
        snprintf(nm, sizeof nm, "<0x%02X>", i);
        pb_piece(&b, nm, 6, 0, 6, 0);
    }
    pb_specs(&b, o);
    return b;
}

static const hp_t HAND[] = {
    {"<unk>", 0, 2}, {"<s>", 0, 3}, {"</s>", 0, 3}, {"\xE2\x96\x81", -1, 1}, {"a", -2, 1}, {"b", -3, 1},
    {"<", -4, 1}, {"s", -5, 1}, {">", -6, 1}, {"ab", -7, 1}, {"\xE2\x96\x81" "a", -8, 1},
    {"\xE2\x96\x81" "ab", -9, 1}, {"<s", -10, 1}, {"\xE2\x96\x81<s", -11, 1}, {"\xE2\x96\x81<s>", -12, 3},
};
#define NHAND ((int)(sizeof HAND / sizeof HAND[0]))

static size_t enc(const eng_tok_t *t, const char *s, int32_t **ids)
{
    size_t n = 0, cap = 0;
    lrq_err_t e = {0};
    *ids = NULL;
    cr_assert_eq(eng_tok_encode(t, s, strlen(s), 1, ids, &n, &cap, &e), 0, "%s", e.msg);
    return n;
}

static void expect_ids(const eng_tok_t *t, const char *s, const int32_t *want, size_t nw)
{
    int32_t *ids;
    size_t n = enc(t, s, &ids);
    cr_assert_eq(n, nw, "'%s': %zu tokens, want %zu", s, n, nw);
    for (size_t i = 0; i < n; i++) cr_assert_eq(ids[i], want[i], "'%s' token %zu = %d, want %d", s, i, ids[i], want[i]);
    free(ids);
}

Test(spm, hand_made_bpe_merges_by_score_and_falls_back)
{
    /* Without byte pieces: unknown characters are <unk>. " ab b z": ▁ a b ▁ b ▁ z →
     * best scores: ▁a (-8) vs ab (-7) → ab: ▁ ab ▁ b ▁ z → ▁ab (-9): ▁ab ▁ b ▁ <unk>. */
    pb_t b = hand_model(HAND, NHAND, &BPE, 0);
    write_file(tpath("h.model"), b.p, b.n);
    free(b.p);
    eng_tok_t *t = load(tpath("h.model"));
    cr_assert_eq(eng_tok_type(t, 1), 3);
    cr_assert_eq(eng_tok_type(t, 0), 2);
    cr_assert_eq(eng_tok_type(t, NHAND), 0, "out of range");
    expect_ids(t, "ab b z", (const int32_t[]){1, 11, 3, 5, 3, 0}, 6);
    /* "<s>" in text: "▁<s" + ">" would make the CONTROL piece "▁<s>" (id 14), which
     * SentencePiece never produces from text (llama2.c's .bin lookup would) → ▁<s (-11) > */
    expect_ids(t, "<s>", (const int32_t[]){1, 13, 8}, 3);
    expect_ids(t, "\xC3\xA9", (const int32_t[]){1, 3, 0}, 3); /* é: one <unk> per character */
    char buf[8];
    cr_assert_str_eq(eng_tok_decode(t, 1, 11, buf), "ab");
    eng_tok_free(t);
    /* add_dummy_prefix false: no leading ▁ */
    opts_t o = BPE;
    o.dummy = 0;
    b = hand_model(HAND, NHAND, &o, 0);
    write_file(tpath("np.model"), b.p, b.n);
    free(b.p);
    t = load(tpath("np.model"));
    cr_assert_eq(eng_tok_dummy_prefix(t), 0);
    expect_ids(t, "ab", (const int32_t[]){1, 9}, 2);
    eng_tok_free(t);
    /* With the 256 byte pieces and byte_fallback: é (C3 A9) → <0xC3> <0xA9> */
    o = BPE;
    o.byte_fallback = 1;
    b = hand_model(HAND, NHAND, &o, 256);
    write_file(tpath("bf.model"), b.p, b.n);
    free(b.p);
    t = load(tpath("bf.model"));
    expect_ids(t, "\xC3\xA9", (const int32_t[]){1, 3, NHAND + 0xC3, NHAND + 0xA9}, 4);
    cr_assert_eq(eng_tok_type(t, NHAND + 0xC3), 6);
    cr_assert_str_eq(eng_tok_decode(t, 5, NHAND + 0x41, buf), "A");
    eng_tok_free(t);
    /* byte pieces present but byte_fallback false: SentencePiece does not use them */
    o.byte_fallback = 0;
    b = hand_model(HAND, NHAND, &o, 256);
    write_file(tpath("nb.model"), b.p, b.n);
    free(b.p);
    t = load(tpath("nb.model"));
    expect_ids(t, "\xC3\xA9", (const int32_t[]){1, 3, 0}, 3);
    eng_tok_free(t);
}

/* ---- refusals */

static void expect_fail_mem(const void *buf, size_t n, int code, const char *substr, const char *what)
{
    eng_tok_t *t = (eng_tok_t *)0x1;
    lrq_err_t e = {0};
    int rc = eng_tok_load_mem(buf, n, "bad.model", &t, &e);
    cr_assert_eq(rc, code, "%s: rc %d (want %d): %s", what, rc, code, e.msg);
    cr_assert_null(t, "%s", what);
    cr_assert_not_null(strstr(e.msg, substr), "%s: message '%s' lacks '%s'", what, e.msg, substr);
    cr_assert_not_null(strstr(e.msg, "bad.model"), "%s: message '%s' does not name the file", what, e.msg);
}

static void expect_fail_pb(pb_t *b, int code, const char *substr, const char *what)
{
    expect_fail_mem(b->p, b->n, code, substr, what);
    free(b->p);
    *b = (pb_t){0};
}

/* The hand vocabulary with its specs, then `tail` appended raw. */
static pb_t hand_plus(const void *tail, size_t n, size_t *at)
{
    pb_t b = hand_model(HAND, NHAND, &BPE, 0);
    *at = b.n;
    pb_raw(&b, tail, n);
    return b;
}

Test(spm, corrupt_wire_format_refused_with_offset)
{
    char want[128];
    size_t at;
    pb_t b;
    /* wire type 7 does not exist */
    b = hand_plus("\x0f", 1, &at);
    snprintf(want, sizeof want, "field 1 has wire type 7, which does not exist at byte offset %zu", at);
    expect_fail_pb(&b, LRQ_EFORMAT, want, "wire type 7");
    /* an 11-byte varint */
    b = hand_plus("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11, &at);
    snprintf(want, sizeof want, "varint longer than 64 bits at byte offset %zu", at + 1);
    expect_fail_pb(&b, LRQ_EFORMAT, want, "long varint");
    /* a varint cut by the end of the file */
    b = hand_plus("\x08\x80", 2, &at);
    expect_fail_pb(&b, LRQ_EFORMAT, "varint runs past the end", "cut varint");
    /* a length past the end */
    b = hand_plus("\x2a\x10junk", 6, &at);
    snprintf(want, sizeof want, "field 5: length 16 exceeds the 4 bytes left in its message at byte offset %zu", at);
    expect_fail_pb(&b, LRQ_EFORMAT, want, "long length");
    /* fixed64 / fixed32 cut */
    b = hand_plus("\x29\1\2\3", 4, &at);
    expect_fail_pb(&b, LRQ_EFORMAT, "8-byte value runs past the end", "cut fixed64");
    b = hand_plus("\x2d\1\2", 3, &at);
    expect_fail_pb(&b, LRQ_EFORMAT, "4-byte value runs past the end", "cut fixed32");
    /* field number 0 */
    b = hand_plus("\x02\x00", 2, &at);
    snprintf(want, sizeof want, "field number 0 is outside 1..2^29-1 at byte offset %zu", at);
    expect_fail_pb(&b, LRQ_EFORMAT, want, "field 0");
    /* groups: a stray end, an unclosed start, a mismatched end, too deep */
    b = hand_plus("\x2c", 1, &at);
    expect_fail_pb(&b, LRQ_EFORMAT, "end-group tag without a group", "stray end group");
    b = hand_plus("\x2b\x08\x01", 3, &at);
    snprintf(want, sizeof want, "group 5 is not closed before the end of its message at byte offset %zu", at);
    expect_fail_pb(&b, LRQ_EFORMAT, want, "unclosed group");
    b = hand_plus("\x2b\x34", 2, &at);
    expect_fail_pb(&b, LRQ_EFORMAT, "end of group 6 closes group 5", "mismatched group");
    char deep[80];
    memset(deep, 0x2b, 40);
    memset(deep + 40, 0x2c, 40);
    b = hand_plus(deep, sizeof deep, &at);
    expect_fail_pb(&b, LRQ_EFORMAT, "groups nested deeper than 32", "deep groups");
    /* a known field with the wrong wire type: pieces as a varint; score as a varint */
    b = hand_plus("\x08\x01", 2, &at);
    snprintf(want, sizeof want, "pieces (field 1) has wire type 0, expected 2 at byte offset %zu", at);
    expect_fail_pb(&b, LRQ_EFORMAT, want, "pieces varint");
    b = hand_model(HAND, NHAND, &BPE, 0);
    at = b.n;
    pb_raw(&b, "\x0a\x05\x0a\x01x\x10\x01", 7);
    snprintf(want, sizeof want, "score (field 2) has wire type 0, expected 5 at byte offset %zu", at + 5);
    expect_fail_pb(&b, LRQ_EFORMAT, want, "score varint");
    /* a piece message overrunning its own length: the inner length is checked against the piece */
    b = hand_plus("\x0a\x03\x0a\x05xxxxxxxx", 12, &at);
    snprintf(want, sizeof want, "pieces[%d]: field 1: length 5 exceeds the 1 bytes left", NHAND);
    expect_fail_pb(&b, LRQ_EFORMAT, want, "inner overrun");
    /* piece type 9, an empty piece, an int32 that does not fit */
    b = hand_plus("\x0a\x05\x0a\x01x\x18\x09", 7, &at);
    snprintf(want, sizeof want, "pieces[%d]: type 9 is not a SentencePiece type (1..6) at byte offset %zu", NHAND,
             at + 5);
    expect_fail_pb(&b, LRQ_EFORMAT, want, "type 9");
    b = hand_plus("\x0a\x02\x0a\x00", 4, &at);
    snprintf(want, sizeof want, "pieces[%d]: the piece is empty or missing at byte offset %zu", NHAND, at);
    expect_fail_pb(&b, LRQ_EFORMAT, want, "empty piece");
    b = hand_plus("\x12\x07\xc0\x02\x80\x80\x80\x80\x10", 9, &at); /* trainer_spec { unk_id = 2^32 } */
    expect_fail_pb(&b, LRQ_EFORMAT, "trainer_spec.unk_id = 4294967296 does not fit an int32", "int32");
    /* empty input, no pieces */
    expect_fail_mem("", 0, LRQ_EFORMAT, "no pieces", "empty");
    /* every truncation of the real file fails cleanly (trainer_spec comes after the pieces) */
    if (have_shared()) {
        size_t n;
        char *f = read_file(shared(S260 "tok512.model"), &n);
        for (size_t k = 0; k < n; k++) {
            eng_tok_t *t = (eng_tok_t *)0x1;
            lrq_err_t e = {0};
            int rc = eng_tok_load_mem((const uint8_t *)f, k, "cut.model", &t, &e);
            if (rc == 0 && (uint8_t)f[k] == 0x1a && k + 2 + (uint8_t)f[k + 1] == n) {
                /* only the normalizer_spec (the last field) is missing: the proto's defaults */
                eng_tok_free(t);
                continue;
            }
            cr_assert(rc == LRQ_EFORMAT || rc == LRQ_EUNSUPP, "prefix %zu: rc %d", k, rc);
            cr_assert_null(t);
            cr_assert_not_null(strstr(e.msg, "cut.model"), "%s", e.msg);
        }
        free(f);
    }
}

Test(spm, unsupported_and_inconsistent_models_refused)
{
    pb_t b;
    opts_t o = BPE;
    o.model_type = 1;
    b = hand_model(HAND, NHAND, &o, 0);
    expect_fail_pb(&b, LRQ_EUNSUPP, "SentencePiece model type UNIGRAM is not supported (only BPE", "unigram");
    o.model_type = 0; /* absent: the proto default is UNIGRAM */
    b = hand_model(HAND, NHAND, &o, 0);
    expect_fail_pb(&b, LRQ_EUNSUPP, "model type UNIGRAM", "default type");
    o.model_type = 4;
    b = hand_model(HAND, NHAND, &o, 0);
    expect_fail_pb(&b, LRQ_EUNSUPP, "model type CHAR", "char");
    o = BPE;
    o.byte_fallback = 1;
    b = hand_model(HAND, NHAND, &o, 200);
    expect_fail_pb(&b, LRQ_EFORMAT, "byte_fallback is set but the model has 200 of the 256 byte pieces", "bytes");
    o = BPE;
    o.unk = 99;
    b = hand_model(HAND, NHAND, &o, 0);
    expect_fail_pb(&b, LRQ_EFORMAT, "trainer_spec.unk_id = 99 is not a piece id", "unk range");
    o = BPE;
    o.bos = -1;
    b = hand_model(HAND, NHAND, &o, 0);
    expect_fail_pb(&b, LRQ_EUNSUPP, "trainer_spec.bos_id is -1", "no bos");
    o = BPE;
    o.unk = 3;
    b = hand_model(HAND, NHAND, &o, 0);
    expect_fail_pb(&b, LRQ_EFORMAT, "piece 3 (trainer_spec.unk_id, offset", "unk type");
    hp_t v[NHAND];
    memcpy(v, HAND, sizeof v);
    v[5].type = 4;
    b = hand_model(v, NHAND, &BPE, 0);
    expect_fail_pb(&b, LRQ_EUNSUPP, "piece 5 \"b\"", "user defined");
    v[5].type = 5;
    b = hand_model(v, NHAND, &BPE, 0);
    expect_fail_pb(&b, LRQ_EUNSUPP, "is UNUSED", "unused");
    v[5].type = 6;
    b = hand_model(v, NHAND, &BPE, 0);
    expect_fail_pb(&b, LRQ_EFORMAT, "has type BYTE but is not <0xXX>", "byte name");
    memcpy(v, HAND, sizeof v);
    v[5].s = "a";
    b = hand_model(v, NHAND, &BPE, 0);
    expect_fail_pb(&b, LRQ_EFORMAT, "pieces 4 and 5 are both \"a\"", "duplicate");
    /* a normalizer with a character map (NFKC) */
    b = hand_model(HAND, NHAND, &BPE, 0);
    pb_t nm = {0};
    pb_str(&nm, 1, "nmt_nfkc");
    pb_bytes(&nm, 2, "\1\2\3\4", 4);
    pb_msg(&b, 3, &nm);
    expect_fail_pb(&b, LRQ_EUNSUPP, "normalizer \"nmt_nfkc\" has a precompiled character map", "nfkc");
    /* remove_extra_whitespaces is accepted (both real models set it; see docs/formats.md) */
    o = BPE;
    o.rm_ws = 1;
    b = hand_model(HAND, NHAND, &o, 0);
    eng_tok_t *t = NULL;
    lrq_err_t e = {0};
    cr_assert_eq(eng_tok_load_mem(b.p, b.n, "x.model", &t, &e), 0, "%s", e.msg);
    eng_tok_free(t);
    free(b.p);
}

/* Mutated .model files load or fail cleanly; whatever loads encodes and decodes in range. */
Test(spm, load_survives_mutations)
{
    if (!have_shared()) cr_skip_test("shared models not found");
    size_t n0;
    char *orig = read_file(shared(S260 "tok512.model"), &n0);
    unsigned seed = 4242;
    int loaded = 0;
    for (int it = 0; it < 1500; it++) {
        size_t n = n0;
        char *b = malloc(n);
        memcpy(b, orig, n);
        for (int k = 0; k < 1 + it % 4; k++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = seed >> 8;
            if (r % 11 == 0) n = (r / 11) % n + 1;
            else b[(r / 11) % n] = (char)(seed >> (r % 3 ? 2 : 20));
        }
        eng_tok_t *t;
        lrq_err_t e = {0};
        int rc = eng_tok_load_mem((const uint8_t *)b, n, "m.model", &t, &e);
        if (rc == 0) {
            int32_t *ids = NULL;
            size_t cnt = 0, cap = 0;
            const char *s = "Once upon a time, \xE2\x80\x9Chi\xE2\x80\x9D \xFF\x80 end";
            if (eng_tok_encode(t, s, strlen(s), 1, &ids, &cnt, &cap, &e) == 0)
                for (size_t i = 0; i < cnt; i++) cr_assert(ids[i] >= 0 && ids[i] < eng_tok_vocab_size(t));
            char buf[8];
            for (int i = -1; i <= eng_tok_vocab_size(t); i++) cr_assert_not_null(eng_tok_decode(t, 1, i, buf));
            free(ids);
            eng_tok_free(t);
            loaded++;
        } else {
            cr_assert(rc == LRQ_EFORMAT || rc == LRQ_EUNSUPP, "rc %d: %s", rc, e.msg);
            cr_assert_not_null(strstr(e.msg, "m.model"), "%s", e.msg);
        }
        free(b);
    }
    cr_assert_gt(loaded, 100); /* most single-byte changes hit piece text or scores */
    free(orig);
}

Test(spm, locate_finds_model_files_in_order)
{
    char *p = NULL;
    lrq_err_t e = {0};
    mkdir(tpath("m"), 0755);
    write_file(tpath("m/model.bin"), "x", 1);
    write_file(tpath("m/tok512.model"), "x", 1);
    cr_assert_eq(eng_tok_locate(tpath("m/model.bin"), NULL, &p, &e), 0, "%s", e.msg);
    cr_assert_str_eq(p, tpath("m/tok512.model"));
    free(p);
    write_file(tpath("m/tok512.bin"), "x", 1); /* the llama2.c export first */
    cr_assert_eq(eng_tok_locate(tpath("m/model.bin"), NULL, &p, &e), 0);
    cr_assert_str_eq(p, tpath("m/tok512.bin"));
    free(p);
    write_file(tpath("m/tokenizer.bin"), "x", 1);
    cr_assert_eq(eng_tok_locate(tpath("m/model.bin"), NULL, &p, &e), 0);
    cr_assert_str_eq(p, tpath("m/tokenizer.bin"));
    free(p);
    write_file(tpath("m/tokenizer.model"), "x", 1); /* HF: the SentencePiece original over .bin */
    cr_assert_eq(eng_tok_locate(tpath("m"), NULL, &p, &e), 0);
    cr_assert_str_eq(p, tpath("m/tokenizer.model"));
    free(p);
    write_file(tpath("m/tokenizer.json"), "x", 1);
    cr_assert_eq(eng_tok_locate(tpath("m"), NULL, &p, &e), 0);
    cr_assert_str_eq(p, tpath("m/tokenizer.json"));
    free(p);
    mkdir(tpath("n"), 0755);
    cr_assert_eq(eng_tok_locate(tpath("n"), NULL, &p, &e), LRQ_ENOTFOUND);
    cr_assert_not_null(strstr(e.msg, "tokenizer.model") && strstr(e.msg, "tok*.model"), "%s", e.msg);
}

/* ---- GGUF: the export from the .model is the export from the .bin, byte for byte */

static char *export_gguf(const eng_model_t *m, const eng_tok_t *tok, const eng_qsource_t *qs, const char *dir,
                         size_t *n)
{
    lrq_err_t err = {0};
    json_t *info = NULL;
    cr_assert_eq(eng_export_gguf(m, tok, qs, ENG_GGUF_Q8_0, tpath(dir), &info, &err), 0, "%s", err.msg);
    json_decref(info);
    char p[1200];
    snprintf(p, sizeof p, "%s/model.gguf", tpath(dir));
    return read_file(p, n);
}

Test(spm, gguf_export_from_model_equals_export_from_bin)
{
    if (!have_shared()) cr_skip_test("shared models not found");
    eng_model_t *m = NULL;
    lrq_err_t err = {0};
    cr_assert_eq(eng_model_open(shared(S260 "stories260K.bin"), &m, &err), 0, "%s", err.msg);
    int L = m->cfg.n_layers;
    eng_qlinear_t *ql = calloc((size_t)L * ENG_NLIN, sizeof *ql);
    for (int i = 0; i < L * ENG_NLIN; i++) { /* RTN 8-bit symmetric g32 (Q8_0 where rows allow) */
        const eng_tensor_t *t = &m->layers[i / ENG_NLIN].lin[i % ENG_NLIN];
        float *W = malloc(eng_tensor_numel(t) * sizeof *W);
        cr_assert_eq(eng_tensor_to_f32(t, W, &err), 0);
        eng_qcfg_t qc = {.bits = 8, .group_size = 32, .symmetric = 1, .init = ENG_INIT_MINMAX,
                         .scale_store = eng_gguf_scale_store(ENG_GGUF_Q8_0, 8, 1)};
        cr_assert_eq(eng_qlinear_init(&ql[i], (int)t->rows, (int)t->cols, &qc, &err), 0);
        eng_quant_rtn(NULL, W, &qc, &ql[i]);
        free(W);
    }
    eng_qsource_t qs;
    eng_qsource_array(&qs, ql);
    eng_tok_t *tb = load(shared(S260 "tok512.bin")), *tm = load(shared(S260 "tok512.model"));
    size_t nb, nm;
    char *gb = export_gguf(m, tb, &qs, "from_bin", &nb), *gm = export_gguf(m, tm, &qs, "from_model", &nm);
    cr_assert_gt(nb, 100000);
    cr_assert_eq(nm, nb, "%zu vs %zu bytes", nm, nb);
    size_t i = 0;
    while (i < nb && gb[i] == gm[i]) i++;
    cr_assert_eq(i, nb, "the GGUF files differ from byte %zu", i);
    /* and the export sees what the .model stores: the type array holds 256 BYTE entries */
    int c[7];
    type_counts(tm, c);
    cr_assert_eq(c[6], 256);
    free(gb);
    free(gm);
    /* babyllama-tok105: no byte pieces, refused alike from both */
    eng_tok_t *bb = load(shared(B105 "tok105.bin")), *bm = load(shared(B105 "tok105.model"));
    eng_model_t *bmod = NULL;
    cr_assert_eq(eng_model_open(shared(B105 "model5000.bin"), &bmod, &err), 0, "%s", err.msg);
    lrq_err_t e1 = {0}, e2 = {0};
    cr_assert_eq(eng_gguf_plan(bmod, bb, 4, 32, 0, ENG_GGUF_AUTO, NULL, &e1), LRQ_EUNSUPP);
    cr_assert_eq(eng_gguf_plan(bmod, bm, 4, 32, 0, ENG_GGUF_AUTO, NULL, &e2), LRQ_EUNSUPP);
    cr_assert_str_eq(e1.msg, e2.msg);
    cr_assert_not_null(strstr(e2.msg, "0 of the 256 byte pieces"), "%s", e2.msg);
    eng_model_free(bmod);
    eng_tok_free(bb);
    eng_tok_free(bm);
    eng_tok_free(tb);
    eng_tok_free(tm);
    for (int k = 0; k < L * ENG_NLIN; k++) eng_qlinear_close(&ql[k]);
    free(ql);
    eng_model_free(m);
}
