/* eng_data.c — token streams for calibration and evaluation (formats in eng_tok.h).
 *
 * Text: documents are separated by lines that are exactly "<|endoftext|>" (a trailing
 * CR is tolerated); each document is stripped of surrounding whitespace — Python
 * str.strip() semantics, Unicode whitespace included, so counts match the reference
 * scripts — skipped if empty, and encoded on its own with BOS; the results are
 * concatenated. *.tok: raw little-endian uint32. *.json: a JSON array of integers.
 * Calibration windows are cut from this stream by the caller. */
#include "lrq_buf.h"
#include "lrq_fs.h"
#include "eng_tok.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA_SEP "<|endoftext|>"

static int data__ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int data__read(const char *path, char **buf, size_t *n, lrq_err_t *err)
{
    return lrq_read_file(path, buf, n, (size_t)1 << 40, err);
}

/* Length of the Python-whitespace character starting at s (0 if none). */
static size_t data__ws_fwd(const uint8_t *s, size_t n)
{
    if (n >= 1 && ((s[0] >= 0x09 && s[0] <= 0x0D) || (s[0] >= 0x1C && s[0] <= 0x20))) return 1;
    if (n >= 2 && s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0)) return 2;
    if (n >= 3) {
        if (s[0] == 0xE1 && s[1] == 0x9A && s[2] == 0x80) return 3;                         /* U+1680 */
        if (s[0] == 0xE2 && s[1] == 0x80 && ((s[2] >= 0x80 && s[2] <= 0x8A) ||             /* U+2000..200A */
                                             s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF)) /* 2028 2029 202F */
            return 3;
        if (s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0x9F) return 3; /* U+205F */
        if (s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80) return 3; /* U+3000 */
    }
    return 0;
}

/* Length of the Python-whitespace character ending at s[n-1] (0 if none). */
static size_t data__ws_back(const uint8_t *s, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++)
        if (data__ws_fwd(s + n - k, k) == k) return k;
    return 0;
}


static int data__text(const char *path, const char *txt, size_t len, const eng_tok_t *tok, int32_t **ids,
                      size_t *n, size_t *cap, lrq_err_t *err)
{
    if (!tok) return lrq_errf(err, LRQ_EFORMAT, "%s: a text data file needs a tokenizer", path);
    const size_t seplen = strlen(DATA_SEP);
    size_t doc = 0, pos = 0;
    while (pos <= len) {
        const char *nl = memchr(txt + pos, '\n', len - pos);
        size_t eol = nl ? (size_t)(nl - txt) : len, ll = eol - pos;
        if (ll > 0 && txt[pos + ll - 1] == '\r') ll--;
        int is_sep = ll == seplen && memcmp(txt + pos, DATA_SEP, seplen) == 0;
        if (is_sep || !nl) {
            size_t b = doc, e = is_sep ? pos : len, k;
            while (b < e && (k = data__ws_fwd((const uint8_t *)txt + b, e - b))) b += k;
            while (e > b && (k = data__ws_back((const uint8_t *)txt + b, e - b))) e -= k;
            if (e > b) {
                int rc = eng_tok_encode(tok, txt + b, e - b, 1, ids, n, cap, err);
                if (rc) return rc;
            }
            doc = nl ? eol + 1 : len;
        }
        if (!nl) break;
        pos = eol + 1;
    }
    return 0;
}

static int data__tok(const char *path, const char *buf, size_t len, int32_t **ids, size_t *n, size_t *cap,
                     lrq_err_t *err)
{
    if (len % 4)
        return lrq_errf(err, LRQ_EFORMAT, "%s: size %zu is not a multiple of 4 (uint32 token ids)", path, len);
    if (lrq_grow(ids, cap, len / 4, sizeof **ids)) return lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);
    const uint8_t *b = (const uint8_t *)buf;
    for (size_t i = 0; i < len / 4; i++) {
        uint32_t v = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
                     (uint32_t)b[4 * i + 3] << 24;
        if (v > INT32_MAX)
            return lrq_errf(err, LRQ_EFORMAT, "%s: token id %u at position %zu out of range", path, v, i);
        (*ids)[(*n)++] = (int32_t)v;
    }
    return 0;
}

static int data__json(const char *path, const char *buf, size_t len, int32_t **ids, size_t *n, size_t *cap,
                      lrq_err_t *err)
{
    json_error_t jerr;
    json_t *a = json_loadb(buf, len, 0, &jerr);
    if (!a) return lrq_errf(err, LRQ_EFORMAT, "%s: not valid JSON: %s (line %d)", path, jerr.text, jerr.line);
    int rc = 0;
    if (!json_is_array(a)) {
        rc = lrq_errf(err, LRQ_EFORMAT, "%s: expected a JSON array of token ids", path);
        goto out;
    }
    if (lrq_grow(ids, cap, json_array_size(a), sizeof **ids)) {
        rc = lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
            rc = lrq_errf(err, LRQ_EFORMAT, "%s: element %zu is not a non-negative 32-bit integer", path, i);
            goto out;
        }
        (*ids)[(*n)++] = (int32_t)json_integer_value(v);
    }
out:
    json_decref(a);
    return rc;
}

int eng_data_load(const char *path, const eng_tok_t *tok, int vocab_limit, int32_t **ids_out, size_t *n_out,
                  lrq_err_t *err)
{
    *ids_out = NULL;
    *n_out = 0;
    char *buf = NULL;
    size_t len = 0;
    int rc = data__read(path, &buf, &len, err);
    if (rc) return rc;
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    if (data__ends_with(path, ".tok")) rc = data__tok(path, buf, len, &ids, &n, &cap, err);
    else if (data__ends_with(path, ".json")) rc = data__json(path, buf, len, &ids, &n, &cap, err);
    else rc = data__text(path, buf, len, tok, &ids, &n, &cap, err);
    free(buf);
    if (!rc && n == 0) rc = lrq_errf(err, LRQ_EFORMAT, "%s: no tokens", path);
    for (size_t i = 0; !rc && vocab_limit > 0 && i < n; i++)
        if (ids[i] >= vocab_limit)
            rc = lrq_errf(err, LRQ_EFORMAT, "%s: token id %d at position %zu is >= vocab size %d", path, (int)ids[i],
                          i, vocab_limit);
    if (rc) {
        free(ids);
        return rc;
    }
    *ids_out = ids;
    *n_out = n;
    return 0;
}
