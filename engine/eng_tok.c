/* eng_tok.c — tokenizers: llama2.c tokenizer.bin, SentencePiece .model (BPE) and HF
 * tokenizer.json (SentencePiece BPE).
 *
 * All three formats load into one representation: pieces with "▁" shown as " " (as llama2.c
 * exports them), a piece → id hash, and a pair map (left id, right id) → (merged id,
 * score). For tokenizer.bin a pair exists wherever the concatenation of two pieces is a
 * piece (scored by that piece's score: exactly llama2.c's `str_lookup(a ++ b)`); a .model
 * gets the same pairs, but only between NORMAL pieces (SentencePiece never produces
 * control, unknown or byte pieces from text); for tokenizer.json a pair is a `merges`
 * entry scored by −rank.
 *
 * Encoding reproduces llama2.c run.c `encode` (optional BOS, dummy-prefix " ", one
 * symbol per UTF-8 char (≤ 4 bytes) or byte fallback, then repeatedly merge the
 * best-scoring adjacent pair, leftmost on ties), but with a heap instead of a full
 * rescan per merge: O(n log n) instead of O(n²), same result. Literal special-token
 * text ("<s>") in the input is not split out (llama2.c behaviour). */
#include "lrq_buf.h"
#include "lrq_fs.h"
#include "eng_tok.h"
#include "eng_spm.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOK_MAX_VOCAB (1 << 24)
#define TOK_MAX_PIECE 1024  /* bytes; real pieces are < 100 */
#define TOK_MAX_FILE (256u << 20)

typedef struct { uint64_t key; int id; float score; } tok_pair_t; /* key 0 = empty (ids +1) */

struct eng_tok {
    int n;                 /* vocab size */
    char *blob;            /* all pieces, NUL-terminated */
    size_t *off;           /* [n] offset of each piece in blob */
    int *len;              /* [n] piece length in bytes */
    float *score;          /* [n] (tokenizer.bin / .model scores; unused for json) */
    uint8_t *type;         /* [n] SentencePiece piece types (ENG_SPM_*) */
    int *canon;            /* [n] lowest id with the same piece */
    int *ht;               /* piece hash: ids, -1 = empty */
    size_t ht_cap;
    tok_pair_t *pairs;
    size_t pair_cap;
    int byte_id[256];      /* byte fallback ids, -1 = none */
    int bos, eos, unk;
    int byte_fallback;     /* unknown chars become byte pieces (else <unk>) */
    int dummy_prefix;      /* prepend " " to non-empty text */
    int space_id;          /* id of " " (-1: use byte fallback) */
    int scored;            /* scores are SentencePiece's (tokenizer.bin), not merge ranks */
    int normal_only;       /* .model: only NORMAL pieces are looked up and merged */
};

/* ------------------------------------------------------------------------- */
/* hashing                                                                     */

static uint64_t tok__hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static const char *tok__piece(const eng_tok_t *t, int id) { return t->blob + t->off[id]; }

/* Lookup with a precomputed tok__hash(s, n). */
static int tok__lookup_h(const eng_tok_t *t, const char *s, size_t n, uint64_t h)
{
    size_t mask = t->ht_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        int id = t->ht[i];
        if (id < 0) return -1;
        if ((size_t)t->len[id] == n && memcmp(tok__piece(t, id), s, n) == 0) return id;
    }
}

static int tok__lookup(const eng_tok_t *t, const char *s, size_t n) { return tok__lookup_h(t, s, n, tok__hash(s, n)); }

static size_t tok__pow2(size_t n)
{
    size_t c = 16;
    while (c < 2 * n) c <<= 1;
    return c;
}

/* Pieces that text can produce (by lookup or merge). */
static int tok__textual(const eng_tok_t *t, int id) { return !t->normal_only || t->type[id] == ENG_SPM_NORMAL; }

/* Build the piece hash and canon[]; the lowest id wins for duplicate pieces. */
static int tok__build_hash(eng_tok_t *t)
{
    t->ht_cap = tok__pow2((size_t)t->n);
    t->ht = malloc(t->ht_cap * sizeof *t->ht);
    t->canon = malloc((size_t)t->n * sizeof *t->canon);
    if (!t->ht || !t->canon) return -1;
    memset(t->ht, 0xff, t->ht_cap * sizeof *t->ht);
    size_t mask = t->ht_cap - 1;
    for (int id = 0; id < t->n; id++) {
        if (!tok__textual(t, id)) {
            t->canon[id] = id;
            continue;
        }
        int found = tok__lookup(t, tok__piece(t, id), (size_t)t->len[id]);
        if (found >= 0) {
            t->canon[id] = found;
            continue;
        }
        t->canon[id] = id;
        size_t i = tok__hash(tok__piece(t, id), (size_t)t->len[id]) & mask;
        while (t->ht[i] >= 0) i = (i + 1) & mask;
        t->ht[i] = id;
    }
    return 0;
}

static uint64_t tok__pair_key(int a, int b) { return ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)(b + 1); }

static tok_pair_t *tok__pair_slot(const eng_tok_t *t, uint64_t key)
{
    size_t mask = t->pair_cap - 1;
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    for (size_t i = (size_t)(h >> 20) & mask;; i = (i + 1) & mask)
        if (t->pairs[i].key == key || t->pairs[i].key == 0) return &t->pairs[i];
}

static int tok__pairs_alloc(eng_tok_t *t, size_t n)
{
    t->pair_cap = tok__pow2(n);
    t->pairs = calloc(t->pair_cap, sizeof *t->pairs);
    return t->pairs ? 0 : -1;
}

/* Insert unless present (first insertion wins: lowest rank). */
static void tok__pair_add(eng_tok_t *t, int a, int b, int id, float score)
{
    uint64_t key = tok__pair_key(a, b);
    tok_pair_t *p = tok__pair_slot(t, key);
    if (p->key) return;
    p->key = key;
    p->id = id;
    p->score = score;
}

static const tok_pair_t *tok__pair_get(const eng_tok_t *t, int a, int b)
{
    if (!t->pair_cap) return NULL;
    const tok_pair_t *p = tok__pair_slot(t, tok__pair_key(t->canon[a], t->canon[b]));
    return p->key ? p : NULL;
}

void eng_tok_free(eng_tok_t *t)
{
    if (!t) return;
    free(t->blob);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->canon);
    free(t->ht);
    free(t->pairs);
    free(t);
}

static eng_tok_t *tok__alloc(int n, size_t blob_len)
{
    eng_tok_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n = n;
    t->blob = malloc(blob_len ? blob_len : 1);
    t->off = calloc((size_t)n, sizeof *t->off);
    t->len = calloc((size_t)n, sizeof *t->len);
    t->score = calloc((size_t)n, sizeof *t->score);
    t->type = calloc((size_t)n, sizeof *t->type);
    if (!t->blob || !t->off || !t->len || !t->score || !t->type) {
        eng_tok_free(t);
        return NULL;
    }
    return t;
}

/* "<0xXX>" (SentencePiece writes two upper-case hex digits) → XX, else -1. */
static int tok__byte_piece(const char *p, int len)
{
    static const char hx[] = "0123456789ABCDEF";
    if (len != 6 || memcmp(p, "<0x", 3) || p[5] != '>' || !p[3] || !p[4]) return -1;
    const char *h = strchr(hx, p[3]), *l = strchr(hx, p[4]);
    return h && l ? (int)((h - hx) * 16 + (l - hx)) : -1;
}

/* Types of a vocabulary that does not store them (tokenizer.bin, tokenizer.json): what
 * SentencePiece gives those pieces, and what the GGUF export has always written. */
static void tok__derive_types(eng_tok_t *t)
{
    for (int id = 0; id < t->n; id++)
        t->type[id] = id == t->unk ? ENG_SPM_UNKNOWN
                    : id == t->bos || id == t->eos ? ENG_SPM_CONTROL
                    : tok__byte_piece(tok__piece(t, id), t->len[id]) >= 0 ? ENG_SPM_BYTE : ENG_SPM_NORMAL;
}

/* Every split of every (textual) piece into two textual pieces is a mergeable pair,
 * scored by the whole piece's score. Needs the hash. */
static int tok__split_pairs(eng_tok_t *t)
{
    size_t npairs = 0;
    for (int id = 0; id < t->n; id++) npairs += t->len[id] > 1 ? (size_t)t->len[id] - 1 : 0;
    if (tok__pairs_alloc(t, npairs)) return -1;
    for (int id = 0; id < t->n; id++) {
        if (t->canon[id] != id || !tok__textual(t, id)) continue;
        const char *p = tok__piece(t, id);
        uint64_t h = 1469598103934665603ull; /* FNV-1a of the prefix, extended byte by byte */
        for (int k = 1; k < t->len[id]; k++) {
            h = (h ^ (uint8_t)p[k - 1]) * 1099511628211ull;
            int a = tok__lookup_h(t, p, (size_t)k, h), b;
            if (a >= 0 && (b = tok__lookup(t, p + k, (size_t)(t->len[id] - k))) >= 0)
                tok__pair_add(t, a, b, id, t->score[id]);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* llama2.c tokenizer.bin: int32 max_token_length, then per token: f32 score,   */
/* int32 len, len bytes. The vocab size is not stored: records run to EOF.      */

static int tok__load_bin(const uint8_t *buf, size_t n, const char *path, eng_tok_t **out, lrq_err_t *err)
{
    if (n < 4) return lrq_errf(err, LRQ_EFORMAT, "%s: too short for a llama2.c tokenizer (%zu bytes)", path, n);
    int nv = 0;
    size_t o = 4, blob = 0;
    while (o < n) { /* first pass: count and validate */
        if (n - o < 8)
            return lrq_errf(err, LRQ_EFORMAT, "%s: truncated at token %d (record header needs 8 bytes, %zu left)",
                            path, nv, n - o);
        int32_t l;
        memcpy(&l, buf + o + 4, 4);
        if (l < 0 || l > TOK_MAX_PIECE)
            return lrq_errf(err, LRQ_EFORMAT, "%s: token %d has bad length %d", path, nv, (int)l);
        if ((size_t)l > n - o - 8)
            return lrq_errf(err, LRQ_EFORMAT, "%s: truncated at token %d (length %d, %zu bytes left)", path, nv,
                            (int)l, n - o - 8);
        o += 8 + (size_t)l;
        blob += (size_t)l + 1;
        if (++nv > TOK_MAX_VOCAB) return lrq_errf(err, LRQ_EFORMAT, "%s: too many tokens", path);
    }
    if (nv < 3)
        return lrq_errf(err, LRQ_EFORMAT, "%s: %d tokens; need at least <unk>, BOS, EOS", path, nv);
    eng_tok_t *t = tok__alloc(nv, blob);
    if (!t) return lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);
    o = 4;
    size_t bo = 0;
    for (int i = 0; i < nv; i++) {
        int32_t l;
        memcpy(&t->score[i], buf + o, 4);
        memcpy(&l, buf + o + 4, 4);
        memcpy(t->blob + bo, buf + o + 8, (size_t)l);
        t->blob[bo + (size_t)l] = '\0';
        t->off[i] = bo;
        t->len[i] = l;
        bo += (size_t)l + 1;
        o += 8 + (size_t)l;
    }
    t->bos = 1;
    t->eos = 2;
    t->unk = 0;
    t->dummy_prefix = 1;
    t->scored = 1;
    /* llama2.c falls back to id = byte + 3. That is right only when those ids are the byte
     * pieces; a vocabulary without them (babyllama-tok105) was trained with SentencePiece
     * mapping unknown characters to <unk>, so lrq does that instead of picking pieces at
     * random offsets. */
    t->byte_fallback = nv >= 259;
    for (int b = 0; b < 256 && t->byte_fallback; b++)
        t->byte_fallback = tok__byte_piece(tok__piece(t, 3 + b), t->len[3 + b]) == b;
    for (int b = 0; b < 256; b++) t->byte_id[b] = t->byte_fallback ? 3 + b : -1;
    tok__derive_types(t);
    if (tok__build_hash(t) || tok__split_pairs(t)) {
        eng_tok_free(t);
        return lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);
    }
    t->space_id = tok__lookup(t, " ", 1);
    *out = t;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* HF tokenizer.json (SentencePiece-style BPE with byte_fallback)              */

/* Replace every "▁" (E2 96 81) by " " in place; returns the new length. */
static size_t tok__unmeta(char *s, size_t n)
{
    size_t w = 0;
    for (size_t r = 0; r < n;) {
        if (r + 2 < n && (uint8_t)s[r] == 0xE2 && (uint8_t)s[r + 1] == 0x96 && (uint8_t)s[r + 2] == 0x81) {
            s[w++] = ' ';
            r += 3;
        } else s[w++] = s[r++];
    }
    s[w] = '\0';
    return w;
}

static int tok__has_type(const json_t *node, const char *type, const char *listkey)
{
    if (!json_is_object(node)) return 0;
    const char *ty = json_string_value(json_object_get(node, "type"));
    if (ty && strcmp(ty, type) == 0) return 1;
    json_t *list = json_object_get(node, listkey);
    size_t i;
    json_t *v;
    if (json_is_array(list))
        json_array_foreach(list, i, v) if (tok__has_type(v, type, listkey)) return 1;
    return 0;
}

/* Does the normalizer / pre-tokenizer add the "▁" dummy prefix? */
static int tok__json_dummy_prefix(const json_t *root)
{
    const json_t *norm = json_object_get(root, "normalizer"), *pre = json_object_get(root, "pre_tokenizer");
    if ((!norm || json_is_null(norm)) && (!pre || json_is_null(pre))) return 1; /* llama2.c convention */
    if (tok__has_type(norm, "Prepend", "normalizers")) return 1;
    if (tok__has_type(pre, "Metaspace", "pretokenizers")) {
        const json_t *ms = pre;
        const json_t *list = json_object_get(pre, "pretokenizers");
        size_t i;
        json_t *v;
        if (json_is_array(list))
            json_array_foreach(list, i, v) if (tok__has_type(v, "Metaspace", "pretokenizers")) ms = v;
        const json_t *aps = json_object_get(ms, "add_prefix_space");
        const char *scheme = json_string_value(json_object_get(ms, "prepend_scheme"));
        if (scheme) return strcmp(scheme, "never") != 0;
        return !aps || json_is_true(aps);
    }
    return 0;
}

static int tok__load_json(const uint8_t *buf, size_t n, const char *path, eng_tok_t **out, lrq_err_t *err)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return lrq_errf(err, LRQ_EFORMAT, "%s: not valid JSON: %s (line %d)", path, jerr.text, jerr.line);
    int rc = 0;
    eng_tok_t *t = NULL;
    const char **pieces = NULL;
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) {
        rc = lrq_errf(err, LRQ_EFORMAT, "%s: no \"model\" object (not a tokenizer.json)", path);
        goto out;
    }
    const char *mtype = json_string_value(json_object_get(model, "type"));
    if (mtype && strcmp(mtype, "BPE")) {
        rc = lrq_errf(err, LRQ_EUNSUPP, "%s: tokenizer model type \"%s\" is not supported (only BPE)", path, mtype);
        goto out;
    }
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    if (!json_is_object(vocab) || !json_is_array(merges)) {
        rc = lrq_errf(err, LRQ_EFORMAT, "%s: model.vocab (object) and model.merges (array) are required", path);
        goto out;
    }
    int byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    int byte_level = tok__has_type(json_object_get(root, "pre_tokenizer"), "ByteLevel", "pretokenizers") ||
                     tok__has_type(json_object_get(root, "decoder"), "ByteLevel", "decoders");
    if (!byte_level && !byte_fallback && json_object_get(vocab, "\xC4\xA0") && !json_object_get(vocab, "\xE2\x96\x81"))
        byte_level = 1; /* GPT-2 style "Ġ" space without a "▁" */
    if (byte_level) {
        rc = lrq_errf(err, LRQ_EUNSUPP,
                      "%s: byte-level BPE tokenizer (GPT-2/Llama-3 style) is not supported; only SentencePiece-style "
                      "BPE (Llama-2: \"▁\" spaces, byte_fallback) is", path);
        goto out;
    }

    /* ids: vocab plus added_tokens, dense in [0, nv). */
    int nv = 0;
    const char *key;
    json_t *val;
    json_t *added = json_object_get(root, "added_tokens");
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_integer_value(val);
        if (!json_is_integer(val) || id < 0 || id >= TOK_MAX_VOCAB) {
            rc = lrq_errf(err, LRQ_EFORMAT, "%s: vocab[\"%.64s\"]: id must be an integer in [0, %d)", path, key,
                          TOK_MAX_VOCAB);
            goto out;
        }
        if (id >= nv) nv = (int)id + 1;
    }
    size_t ai;
    json_array_foreach(added, ai, val) {
        json_int_t id = json_integer_value(json_object_get(val, "id"));
        if (!json_is_string(json_object_get(val, "content")) || id < 0 || id >= TOK_MAX_VOCAB) {
            rc = lrq_errf(err, LRQ_EFORMAT, "%s: added_tokens[%zu]: needs \"id\" and \"content\"", path, ai);
            goto out;
        }
        if (id >= nv) nv = (int)id + 1;
    }
    if (nv < 3) {
        rc = lrq_errf(err, LRQ_EFORMAT, "%s: vocab has %d ids; need at least <unk>, <s>, </s>", path, nv);
        goto out;
    }
    if (!(pieces = calloc((size_t)nv, sizeof *pieces))) {
        rc = lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    json_object_foreach(vocab, key, val) {
        int id = (int)json_integer_value(val);
        if (pieces[id]) {
            rc = lrq_errf(err, LRQ_EFORMAT, "%s: vocab id %d used twice (\"%.64s\", \"%.64s\")", path, id, pieces[id],
                          key);
            goto out;
        }
        pieces[id] = key;
    }
    json_array_foreach(added, ai, val) {
        int id = (int)json_integer_value(json_object_get(val, "id"));
        if (!pieces[id]) pieces[id] = json_string_value(json_object_get(val, "content"));
    }
    size_t blob = 0;
    for (int i = 0; i < nv; i++) {
        if (!pieces[i]) {
            rc = lrq_errf(err, LRQ_EFORMAT, "%s: vocab id %d missing (ids must be dense 0..%d)", path, i, nv - 1);
            goto out;
        }
        blob += strlen(pieces[i]) + 1;
    }
    if (!(t = tok__alloc(nv, blob))) {
        rc = lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    size_t bo = 0;
    for (int i = 0; i < nv; i++) {
        size_t l = strlen(pieces[i]);
        memcpy(t->blob + bo, pieces[i], l + 1);
        t->off[i] = bo;
        t->len[i] = (int)tok__unmeta(t->blob + bo, l);
        bo += l + 1;
    }
    if (tok__build_hash(t) || tok__pairs_alloc(t, json_array_size(merges))) {
        rc = lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    /* merges: "a b" strings or [a, b] pairs; rank = position. */
    size_t r;
    json_array_foreach(merges, r, val) {
        const char *a = NULL, *b = NULL;
        char *tmp = NULL;
        if (json_is_string(val)) {
            const char *s = json_string_value(val), *sp = strchr(s, ' ');
            if (sp && !strchr(sp + 1, ' ') && (tmp = strdup(s))) {
                tmp[sp - s] = '\0';
                a = tmp;
                b = tmp + (sp - s) + 1;
            }
        } else if (json_is_array(val) && json_array_size(val) == 2) {
            a = json_string_value(json_array_get(val, 0));
            b = json_string_value(json_array_get(val, 1));
        }
        if (!a || !b) {
            free(tmp);
            rc = lrq_errf(err, LRQ_EFORMAT, "%s: merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", path, r);
            goto out;
        }
        json_t *ja = json_object_get(vocab, a), *jb = json_object_get(vocab, b);
        char *ab = NULL;
        json_t *jab = NULL;
        if (ja && jb && asprintf(&ab, "%s%s", a, b) >= 0) jab = json_object_get(vocab, ab);
        free(ab);
        if (!ja || !jb || !jab) {
            rc = lrq_errf(err, LRQ_EFORMAT, "%s: merges[%zu] (\"%.64s\" + \"%.64s\"): token not in vocab", path, r, a,
                          b);
            free(tmp);
            goto out;
        }
        free(tmp);
        int ia = t->canon[json_integer_value(ja)], ib = t->canon[json_integer_value(jb)];
        tok__pair_add(t, ia, ib, t->canon[json_integer_value(jab)], -(float)r);
    }
    /* special ids and byte fallback pieces by name */
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    int id;
    t->unk = unk && (id = tok__lookup(t, unk, strlen(unk))) >= 0 ? id : 0;
    t->bos = (id = tok__lookup(t, "<s>", 3)) >= 0 ? id : 1;
    t->eos = (id = tok__lookup(t, "</s>", 4)) >= 0 ? id : 2;
    for (int b = 0; b < 256; b++) {
        char nm[8];
        snprintf(nm, sizeof nm, "<0x%02X>", b);
        t->byte_id[b] = byte_fallback ? tok__lookup(t, nm, 6) : -1;
    }
    t->byte_fallback = byte_fallback;
    t->dummy_prefix = tok__json_dummy_prefix(root);
    t->space_id = tok__lookup(t, " ", 1);
    tok__derive_types(t);
out:
    free(pieces);
    json_decref(root);
    if (rc) eng_tok_free(t);
    else *out = t;
    return rc;
}

/* ------------------------------------------------------------------------- */
/* SentencePiece .model (eng_spm.c decodes the protobuf)                       */

static const char *const tok__type_name[] = {"?", "NORMAL", "UNKNOWN", "CONTROL", "USER_DEFINED", "UNUSED", "BYTE"};

/* What lrq's encoder implements, checked before anything is built. */
static int tok__spm_check(const eng_spm_t *m, const char *path, lrq_err_t *err)
{
    static const char *const mt[] = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
    if (m->model_type != ENG_SPM_BPE)
        return lrq_errf(err, LRQ_EUNSUPP, "%s: SentencePiece model type %s is not supported (only BPE: lrq's encoder "
                        "merges pieces by score, which is not how a %s model segments text)", path,
                        mt[m->model_type], mt[m->model_type]);
    if (m->ws_suffix)
        return lrq_errf(err, LRQ_EUNSUPP, "%s: trainer_spec.treat_whitespace_as_suffix is set; lrq's encoder puts the "
                        "whitespace marker in front of words only", path);
    if (!m->escape_ws)
        return lrq_errf(err, LRQ_EUNSUPP, "%s: normalizer_spec.escape_whitespaces is false; lrq's encoder always "
                        "writes spaces as \"\xE2\x96\x81\"", path);
    if (m->charsmap_len)
        return lrq_errf(err, LRQ_EUNSUPP, "%s: normalizer \"%.*s\" has a precompiled character map (%zu bytes, e.g. "
                        "NFKC); lrq does not normalize text, so only the identity normalizer is supported", path,
                        (int)(m->norm_name_len < 64 ? m->norm_name_len : 64),
                        m->norm_name ? (const char *)m->norm_name : "", m->charsmap_len);
    if (m->n < 3) return lrq_errf(err, LRQ_EFORMAT, "%s: %d pieces; need at least <unk>, <s>, </s>", path, m->n);
    static const char *const idn[] = {"trainer_spec.unk_id", "trainer_spec.bos_id", "trainer_spec.eos_id"};
    const int64_t ids[] = {m->unk_id, m->bos_id, m->eos_id};
    for (int k = 0; k < 3; k++) {
        if (ids[k] == -1 && k > 0)
            return lrq_errf(err, LRQ_EUNSUPP, "%s: %s is -1 (the model has no %s); lrq encodes every document as "
                            "<s> text and needs both", path, idn[k], k == 1 ? "BOS" : "EOS");
        if (ids[k] < 0 || ids[k] >= m->n)
            return lrq_errf(err, LRQ_EFORMAT, "%s: %s = %lld is not a piece id (0..%d)", path, idn[k],
                            (long long)ids[k], m->n - 1);
    }
    if (m->unk_id == m->bos_id || m->unk_id == m->eos_id || m->bos_id == m->eos_id)
        return lrq_errf(err, LRQ_EFORMAT, "%s: unk_id %lld, bos_id %lld, eos_id %lld are not distinct", path,
                        (long long)m->unk_id, (long long)m->bos_id, (long long)m->eos_id);
    const eng_spm_piece_t *u = &m->pieces[m->unk_id];
    if (u->type != ENG_SPM_UNKNOWN)
        return lrq_errf(err, LRQ_EFORMAT, "%s: piece %lld (trainer_spec.unk_id, offset %zu) has type %s, not UNKNOWN",
                        path, (long long)m->unk_id, u->off, tok__type_name[u->type]);
    int have[256] = {0}, nbytes = 0;
    for (int i = 0; i < m->n; i++) {
        const eng_spm_piece_t *p = &m->pieces[i];
        int plen = p->len > 64 ? 64 : (int)p->len;
        if (p->len > TOK_MAX_PIECE)
            return lrq_errf(err, LRQ_EFORMAT, "%s: piece %d (offset %zu) is %u bytes long (limit %d)", path, i, p->off,
                            p->len, TOK_MAX_PIECE);
        if (!isfinite(p->score))
            return lrq_errf(err, LRQ_EFORMAT, "%s: piece %d (offset %zu) has a non-finite score", path, i, p->off);
        if (p->type == ENG_SPM_USER_DEFINED || p->type == ENG_SPM_UNUSED)
            return lrq_errf(err, LRQ_EUNSUPP, "%s: piece %d \"%.*s\" (offset %zu) is %s; lrq's encoder does not "
                            "implement %s pieces", path, i, plen, (const char *)p->s, p->off, tok__type_name[p->type],
                            p->type == ENG_SPM_UNUSED ? "unused (resegmented)" : "user-defined (matched before BPE)");
        if (p->type == ENG_SPM_BYTE) {
            int b = tok__byte_piece((const char *)p->s, (int)p->len);
            if (b < 0)
                return lrq_errf(err, LRQ_EFORMAT, "%s: piece %d \"%.*s\" (offset %zu) has type BYTE but is not "
                                "<0xXX>", path, i, plen, (const char *)p->s, p->off);
            if (have[b])
                return lrq_errf(err, LRQ_EFORMAT, "%s: piece %d (offset %zu): byte piece <0x%02X> defined twice", path,
                                i, p->off, b);
            have[b] = 1;
            nbytes++;
        }
    }
    if (m->byte_fallback && nbytes != 256)
        return lrq_errf(err, LRQ_EFORMAT, "%s: trainer_spec.byte_fallback is set but the model has %d of the 256 byte "
                        "pieces", path, nbytes);
    return 0;
}

/* The vocabulary as llama2.c's tokenizer.py exports it to tokenizer.bin ("▁" → " ", BOS
 * and EOS written "\n<s>\n", "\n</s>\n"), plus the types, special ids, byte fallback and
 * dummy prefix the .bin cannot carry. */
static int tok__load_spm(const uint8_t *buf, size_t n, const char *path, eng_tok_t **out, lrq_err_t *err)
{
    eng_spm_t m;
    int rc = eng_spm_parse(buf, n, path, &m, err);
    if (rc) return rc;
    if ((rc = tok__spm_check(&m, path, err))) {
        eng_spm_close(&m);
        return rc;
    }
    size_t blob = 0;
    for (int i = 0; i < m.n; i++) blob += (size_t)m.pieces[i].len + 3;
    eng_tok_t *t = tok__alloc(m.n, blob);
    if (!t) {
        eng_spm_close(&m);
        return lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);
    }
    t->unk = (int)m.unk_id;
    t->bos = (int)m.bos_id;
    t->eos = (int)m.eos_id;
    size_t bo = 0;
    for (int i = 0; i < m.n; i++) {
        const eng_spm_piece_t *p = &m.pieces[i];
        char *d = t->blob + bo;
        size_t l = p->len;
        int deco = (i == t->bos && l == 3 && !memcmp(p->s, "<s>", 3)) || (i == t->eos && l == 4 && !memcmp(p->s, "</s>", 4));
        if (deco) {
            d[0] = '\n';
            memcpy(d + 1, p->s, l);
            d[l + 1] = '\n';
            d[l + 2] = '\0';
            l += 2;
        } else {
            memcpy(d, p->s, l);
            d[l] = '\0';
            l = tok__unmeta(d, l);
        }
        t->off[i] = bo;
        t->len[i] = (int)l;
        t->score[i] = p->score;
        t->type[i] = (uint8_t)p->type;
        bo += (size_t)p->len + 3;
    }
    t->dummy_prefix = m.add_dummy_prefix;
    t->byte_fallback = m.byte_fallback;
    t->scored = 1;
    t->normal_only = 1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (int i = 0; i < m.n; i++)
        if (t->type[i] == ENG_SPM_BYTE) t->byte_id[tok__byte_piece(tok__piece(t, i), t->len[i])] = i;
    eng_spm_close(&m);
    if (tok__build_hash(t) || tok__split_pairs(t)) {
        eng_tok_free(t);
        return lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);
    }
    /* SentencePiece refuses a piece defined twice; only NORMAL ones are hashed here. */
    for (int i = 0; i < t->n; i++)
        if (t->canon[i] != i) {
            int c = t->canon[i];
            rc = lrq_errf(err, LRQ_EFORMAT, "%s: pieces %d and %d are both \"%.64s\"", path, c, i, tok__piece(t, i));
            eng_tok_free(t);
            return rc;
        }
    t->space_id = tok__lookup(t, " ", 1);
    *out = t;
    return 0;
}

/* ------------------------------------------------------------------------- */

static int tok__read_file(const char *path, uint8_t **buf, size_t *n, lrq_err_t *err)
{
    return lrq_read_file(path, (char **)buf, n, TOK_MAX_FILE, err);
}

int eng_tok_load_mem(const uint8_t *buf, size_t n, const char *path, eng_tok_t **out, lrq_err_t *err)
{
    *out = NULL;
    size_t pl = path ? strlen(path) : 0;
    if ((pl >= 6 && !strcmp(path + pl - 6, ".model")) || eng_spm_sniff(buf, n))
        return tok__load_spm(buf, n, path, out, err);
    size_t i = 0;
    while (i < n && isspace(buf[i])) i++;
    if (i < n && buf[i] == '{') return tok__load_json(buf, n, path, out, err);
    return tok__load_bin(buf, n, path, out, err);
}

int eng_tok_load(const char *path, eng_tok_t **out, lrq_err_t *err)
{
    *out = NULL;
    uint8_t *buf = NULL;
    size_t n = 0;
    int rc = tok__read_file(path, &buf, &n, err);
    if (rc) return rc;
    rc = eng_tok_load_mem(buf, n, path, out, err);
    free(buf);
    return rc;
}

int eng_tok_locate(const char *model_path, const char *explicit_path, char **out_path, lrq_err_t *err)
{
    *out_path = NULL;
    if (explicit_path && *explicit_path) {
        if (access(explicit_path, R_OK) != 0)
            return lrq_errf(err, LRQ_ENOTFOUND, "tokenizer %s: %s", explicit_path, strerror(errno));
        return (*out_path = strdup(explicit_path)) ? 0 : lrq_errf(err, LRQ_ENOMEM, "out of memory");
    }
    if (!model_path) return lrq_errf(err, LRQ_ENOTFOUND, "no tokenizer given and no model path");
    struct stat st;
    char *dir;
    if (stat(model_path, &st) == 0 && S_ISDIR(st.st_mode)) dir = strdup(model_path);
    else {
        const char *sl = strrchr(model_path, '/');
        dir = !sl ? strdup(".") : sl == model_path ? strdup("/") : strndup(model_path, (size_t)(sl - model_path));
    }
    if (!dir) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    /* The HF names first (tokenizer.json, which also carries added tokens, before the
     * SentencePiece original), then the llama2.c naming, its .bin export before a .model
     * (the same vocabulary when both exist; the first match keeps earlier choices). */
    static const char *const names[] = {"tokenizer.json", "tokenizer.model", "tokenizer.bin"};
    char *p = NULL;
    for (size_t i = 0; i < 3; i++) {
        if (asprintf(&p, "%s/%s", dir, names[i]) < 0) {
            free(dir);
            return lrq_errf(err, LRQ_ENOMEM, "out of memory");
        }
        if (access(p, R_OK) == 0) {
            free(dir);
            *out_path = p;
            return 0;
        }
        free(p);
    }
    /* tok*.bin, then tok*.model (glob sorts): the llama2.c convention, e.g. tok512.bin */
    static const char *const pats[] = {"tok*.bin", "tok*.model"};
    for (size_t i = 0; i < 2; i++) {
        if (asprintf(&p, "%s/%s", dir, pats[i]) < 0) {
            free(dir);
            return lrq_errf(err, LRQ_ENOMEM, "out of memory");
        }
        glob_t g;
        int gr = glob(p, 0, NULL, &g);
        free(p);
        if (gr == 0 && g.gl_pathc > 0) {
            *out_path = strdup(g.gl_pathv[0]);
            globfree(&g);
            free(dir);
            return *out_path ? 0 : lrq_errf(err, LRQ_ENOMEM, "out of memory");
        }
        if (gr == 0) globfree(&g);
    }
    int rc = lrq_errf(err, LRQ_ENOTFOUND,
                      "no tokenizer beside model %s (looked for tokenizer.json, tokenizer.model, tokenizer.bin, "
                      "tok*.bin, tok*.model in %s); give one explicitly", model_path, dir);
    free(dir);
    return rc;
}

int eng_tok_vocab_size(const eng_tok_t *t) { return t->n; }
int eng_tok_bos(const eng_tok_t *t) { return t->bos; }
int eng_tok_eos(const eng_tok_t *t) { return t->eos; }
int eng_tok_unk(const eng_tok_t *t) { return t->unk; }
int eng_tok_scored(const eng_tok_t *t) { return t->scored; }
int eng_tok_dummy_prefix(const eng_tok_t *t) { return t->dummy_prefix; }
int eng_tok_type(const eng_tok_t *t, int id) { return t && id >= 0 && id < t->n ? t->type[id] : 0; }

const char *eng_tok_piece(const eng_tok_t *t, int id, int *len, float *score)
{
    if (!t || id < 0 || id >= t->n) return NULL;
    if (len) *len = t->len[id];
    if (score) *score = t->score[id];
    return tok__piece(t, id);
}

/* ------------------------------------------------------------------------- */
/* encode                                                                      */

typedef struct { float score; int left; int ltok, rtok, id; } tok_cand_t;

/* Max-heap order: higher score first, then leftmost (initial index keeps list order). */
static int tok__before(const tok_cand_t *a, const tok_cand_t *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void tok__heap_push(tok_cand_t *h, size_t *n, tok_cand_t c)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!tok__before(&c, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static tok_cand_t tok__heap_pop(tok_cand_t *h, size_t *n)
{
    tok_cand_t top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && tok__before(&h[c + 1], &h[c])) c++;
        if (!tok__before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

/* Candidate merge of symbol i with its right neighbour j, if a pair exists.
 * llama2.c only merges when score > -1e10 (its initial best_score). */
static void tok__consider(const eng_tok_t *t, const int32_t *sym, int i, int j, tok_cand_t *h, size_t *nh)
{
    if (i < 0 || j < 0) return;
    const tok_pair_t *p = tok__pair_get(t, sym[i], sym[j]);
    if (!p || !(p->score > -1e10f)) return;
    tok_cand_t c = {p->score, i, sym[i], sym[j], p->id};
    tok__heap_push(h, nh, c);
}


int eng_tok_encode(const eng_tok_t *t, const char *text, size_t len, int bos, int32_t **ids, size_t *n,
                   size_t *cap, lrq_err_t *err)
{
    /* initial symbols: ≤ 1 (BOS) + 1 (prefix) + len (one per byte at worst) */
    size_t ns_max = len + 2;
    int32_t *sym = malloc(ns_max * sizeof *sym);
    int *prev = malloc(ns_max * sizeof *prev), *next = malloc(ns_max * sizeof *next);
    tok_cand_t *heap = malloc(3 * ns_max * sizeof *heap); /* ≤ ns pushes + 2 per merge */
    int rc = 0;
    if (!sym || !prev || !next || !heap) {
        rc = lrq_errf(err, LRQ_ENOMEM, "tokenizer: out of memory encoding %zu bytes", len);
        goto out;
    }
    size_t ns = 0;
    if (bos) sym[ns++] = t->bos;
    if (len > 0 && t->dummy_prefix) {
        if (t->space_id >= 0) sym[ns++] = t->space_id;
        else if (t->byte_fallback && t->byte_id[' '] >= 0) sym[ns++] = t->byte_id[' '];
        else sym[ns++] = t->unk;
    }
    /* One symbol per UTF-8 character (a lead byte plus ≤ 3 continuation bytes), or its bytes. */
    for (size_t i = 0; i < len;) {
        size_t j = i + 1;
        while (j < len && ((uint8_t)text[j] & 0xC0) == 0x80 && j - i < 4) j++;
        int id = tok__lookup(t, text + i, j - i);
        if (id >= 0) sym[ns++] = id;
        else if (!t->byte_fallback) sym[ns++] = t->unk; /* no byte pieces: <unk> per character */
        else {
            for (size_t k = i; k < j; k++) {
                int b = t->byte_id[(uint8_t)text[k]];
                if (b < 0) {
                    rc = lrq_errf(err, LRQ_EFORMAT,
                                  "tokenizer: byte 0x%02X at offset %zu has no piece and no byte-fallback id",
                                  (uint8_t)text[k], k);
                    goto out;
                }
                sym[ns++] = b;
            }
        }
        i = j;
    }
    size_t nh = 0;
    for (size_t i = 0; i < ns; i++) {
        prev[i] = (int)i - 1;
        next[i] = i + 1 < ns ? (int)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < ns; i++) tok__consider(t, sym, (int)i, (int)i + 1, heap, &nh);
    while (nh > 0) {
        tok_cand_t c = tok__heap_pop(heap, &nh);
        int i = c.left, j = next[i];
        if (sym[i] < 0 || j < 0 || sym[i] != c.ltok || sym[j] != c.rtok) continue; /* stale */
        sym[i] = c.id;
        sym[j] = -1; /* dead */
        next[i] = next[j];
        if (next[j] >= 0) prev[next[j]] = i;
        tok__consider(t, sym, prev[i], i, heap, &nh);
        tok__consider(t, sym, i, next[i], heap, &nh);
    }
    size_t cnt = 0;
    for (int i = ns ? 0 : -1; i >= 0; i = next[i]) cnt++;
    if (lrq_grow(ids, cap, *n + cnt, sizeof **ids)) {
        rc = lrq_errf(err, LRQ_ENOMEM, "tokenizer: out of memory");
        goto out;
    }
    for (int i = ns ? 0 : -1; i >= 0; i = next[i]) (*ids)[(*n)++] = sym[i];
out:
    free(sym);
    free(prev);
    free(next);
    free(heap);
    return rc;
}

static int tok__hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

const char *eng_tok_decode(const eng_tok_t *t, int prev, int tok, char buf[8])
{
    if (tok < 0 || tok >= t->n) return "";
    const char *p = tok__piece(t, tok);
    if (prev == t->bos && p[0] == ' ') p++;
    int hi, lo;
    if (p[0] == '<' && p[1] == '0' && p[2] == 'x' && (hi = tok__hex(p[3])) >= 0 && (lo = tok__hex(p[4])) >= 0 &&
        p[5] == '>' && p[6] == '\0') {
        buf[0] = (char)(hi * 16 + lo);
        buf[1] = '\0';
        return buf;
    }
    return p;
}
