/* eng_spm.c — SentencePiece ModelProto reader (docs/formats.md, tokenizers).
 *
 * A hand-written reader of the protobuf wire format (protobuf.dev, "Encoding"), because
 * the C protobuf libraries need code generated from the .proto; a reader for the
 * handful of fields below is smaller than that dependency. Field numbers are those of
 * sentencepiece_model.proto (github.com/google/sentencepiece, src/). Everything is
 * bounds-checked against the enclosing message; fields lrq does not need are skipped,
 * whatever their wire type (including proto2 groups, nesting bounded); known fields
 * with the wrong wire type, bad varints and lengths past the end are refused with the
 * byte offset. */
#include "eng_spm.h"
#include "lrq_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPM_MAX_PIECES (1 << 24)
#define SPM_MAX_DEPTH 32 /* nested groups in skipped fields */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

typedef struct {
    const uint8_t *buf; /* the whole file: offsets in messages are absolute */
    size_t pos, end;    /* the current message is buf[pos, end) */
    const char *path;
    lrq_err_t *err;
} spm_rd_t;

typedef struct {
    uint32_t num;
    int wt;
    uint64_t v;   /* varint / fixed value; for WT_LEN the payload length */
    size_t at;    /* offset of the tag */
    size_t data;  /* WT_LEN: offset of the payload */
} spm_field_t;

static int spm__fail(const spm_rd_t *r, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int spm__fail(const spm_rd_t *r, size_t off, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return lrq_errf(r->err, LRQ_EFORMAT, "%s: not a valid SentencePiece model: %s at byte offset %zu", r->path, what,
                    off);
}

static int spm__varint(spm_rd_t *r, uint64_t *v, const char *ctx)
{
    size_t start = r->pos;
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (r->pos >= r->end) return spm__fail(r, start, "%s: varint runs past the end of its message", ctx);
        uint8_t b = r->buf[r->pos++];
        if (i == 9 && b > 1) return spm__fail(r, start, "%s: varint longer than 64 bits", ctx);
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return spm__fail(r, start, "%s: varint longer than 10 bytes", ctx); /* not reached: i == 9 caught above */
}

static int spm__next(spm_rd_t *r, spm_field_t *f, const char *msg, int depth);

/* Skip a proto2 group started by field `num` (its start tag already read). */
static int spm__skip_group(spm_rd_t *r, uint32_t num, size_t at, const char *msg, int depth)
{
    if (depth >= SPM_MAX_DEPTH) return spm__fail(r, at, "%s: groups nested deeper than %d", msg, SPM_MAX_DEPTH);
    while (r->pos < r->end) {
        spm_field_t g;
        int rc = spm__next(r, &g, msg, depth + 1);
        if (rc) return rc;
        if (g.wt == WT_EGROUP) {
            if (g.num != num)
                return spm__fail(r, g.at, "%s: end of group %u closes group %u", msg, g.num, num);
            return 0;
        }
    }
    return spm__fail(r, at, "%s: group %u is not closed before the end of its message", msg, num);
}

/* Read one field of the current message; WT_SGROUP fields are skipped whole. */
static int spm__next(spm_rd_t *r, spm_field_t *f, const char *msg, int depth)
{
    uint64_t tag;
    f->at = r->pos;
    int rc = spm__varint(r, &tag, msg);
    if (rc) return rc;
    f->num = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
        return spm__fail(r, f->at, "%s: field number %llu is outside 1..2^29-1", msg, (unsigned long long)(tag >> 3));
    switch (f->wt) {
    case WT_VARINT:
        return spm__varint(r, &f->v, msg);
    case WT_I64:
    case WT_I32: {
        size_t w = f->wt == WT_I64 ? 8 : 4;
        if (r->end - r->pos < w)
            return spm__fail(r, f->at, "%s: field %u: %zu-byte value runs past the end of its message", msg, f->num, w);
        f->v = 0;
        for (size_t i = 0; i < w; i++) f->v |= (uint64_t)r->buf[r->pos + i] << (8 * i);
        r->pos += w;
        return 0;
    }
    case WT_LEN:
        if ((rc = spm__varint(r, &f->v, msg))) return rc;
        if (f->v > r->end - r->pos)
            return spm__fail(r, f->at, "%s: field %u: length %llu exceeds the %zu bytes left in its message", msg, f->num,
                             (unsigned long long)f->v, r->end - r->pos);
        f->data = r->pos;
        r->pos += (size_t)f->v;
        return 0;
    case WT_SGROUP:
        return spm__skip_group(r, f->num, f->at, msg, depth);
    case WT_EGROUP:
        return 0; /* the caller decides: the end of a group being skipped, or an error */
    default:
        return spm__fail(r, f->at, "%s: field %u has wire type %d, which does not exist", msg, f->num, f->wt);
    }
}

static int spm__want(const spm_rd_t *r, const spm_field_t *f, int wt, const char *name)
{
    if (f->wt == wt) return 0;
    if (f->wt == WT_EGROUP) return spm__fail(r, f->at, "%s: end-group tag without a group", name);
    return spm__fail(r, f->at, "%s (field %u) has wire type %d, expected %d", name, f->num, f->wt, wt);
}

/* The payload of a length-delimited field as a reader of its own. */
static spm_rd_t spm__sub(const spm_rd_t *r, const spm_field_t *f)
{
    spm_rd_t s = *r;
    s.pos = f->data;
    s.end = f->data + (size_t)f->v;
    return s;
}

/* Skip a field lrq does not read; a stray end-group is an error. */
static int spm__skip(const spm_rd_t *r, const spm_field_t *f, const char *msg)
{
    if (f->wt == WT_EGROUP) return spm__fail(r, f->at, "%s: end-group tag without a group", msg);
    return 0;
}

static int spm__int32(const spm_rd_t *r, const spm_field_t *f, const char *name, int64_t *out)
{
    int64_t v = (int64_t)f->v; /* int32 fields are sign-extended to 64 bits on the wire */
    if (v < INT32_MIN || v > INT32_MAX)
        return spm__fail(r, f->at, "%s = %lld does not fit an int32", name, (long long)v);
    *out = v;
    return 0;
}

static int spm__piece(spm_rd_t r, int idx, size_t at, eng_spm_piece_t *p)
{
    char msg[64];
    snprintf(msg, sizeof msg, "pieces[%d]", idx);
    memset(p, 0, sizeof *p);
    p->type = ENG_SPM_NORMAL;
    p->off = at;
    int have = 0;
    while (r.pos < r.end) {
        spm_field_t f;
        int rc = spm__next(&r, &f, msg, 0);
        if (rc) return rc;
        switch (f.num) {
        case 1:
            if ((rc = spm__want(&r, &f, WT_LEN, "piece"))) return rc;
            if (f.v > UINT32_MAX) return spm__fail(&r, f.at, "%s: piece too long", msg);
            p->s = r.buf + f.data;
            p->len = (uint32_t)f.v;
            have = 1;
            break;
        case 2:
            if ((rc = spm__want(&r, &f, WT_I32, "score"))) return rc;
            {
                uint32_t u = (uint32_t)f.v;
                memcpy(&p->score, &u, 4);
            }
            break;
        case 3:
            if ((rc = spm__want(&r, &f, WT_VARINT, "type"))) return rc;
            if (f.v < ENG_SPM_NORMAL || f.v > ENG_SPM_BYTE)
                return spm__fail(&r, f.at, "%s: type %llu is not a SentencePiece type (1..6)", msg,
                                 (unsigned long long)f.v);
            p->type = (int)f.v;
            break;
        default:
            if ((rc = spm__skip(&r, &f, msg))) return rc;
        }
    }
    if (!have || p->len == 0) return spm__fail(&r, at, "%s: the piece is empty or missing", msg);
    return 0;
}

static int spm__trainer(spm_rd_t r, eng_spm_t *m)
{
    const char *msg = "trainer_spec";
    while (r.pos < r.end) {
        spm_field_t f;
        int rc = spm__next(&r, &f, msg, 0);
        if (rc) return rc;
        switch (f.num) {
        case 3:
            if ((rc = spm__want(&r, &f, WT_VARINT, "trainer_spec.model_type"))) return rc;
            if (f.v < ENG_SPM_UNIGRAM || f.v > ENG_SPM_CHAR)
                return spm__fail(&r, f.at, "trainer_spec.model_type %llu is not a SentencePiece model type (1..4)",
                                 (unsigned long long)f.v);
            m->model_type = (int)f.v;
            break;
        case 24:
            if ((rc = spm__want(&r, &f, WT_VARINT, "trainer_spec.treat_whitespace_as_suffix"))) return rc;
            m->ws_suffix = f.v != 0;
            break;
        case 35:
            if ((rc = spm__want(&r, &f, WT_VARINT, "trainer_spec.byte_fallback"))) return rc;
            m->byte_fallback = f.v != 0;
            break;
        case 40: case 41: case 42: case 43: {
            static const char *const names[] = {"trainer_spec.unk_id", "trainer_spec.bos_id", "trainer_spec.eos_id",
                                                "trainer_spec.pad_id"};
            int64_t *dst[] = {&m->unk_id, &m->bos_id, &m->eos_id, &m->pad_id};
            if ((rc = spm__want(&r, &f, WT_VARINT, names[f.num - 40]))) return rc;
            if ((rc = spm__int32(&r, &f, names[f.num - 40], dst[f.num - 40]))) return rc;
            break;
        }
        default:
            if ((rc = spm__skip(&r, &f, msg))) return rc;
        }
    }
    return 0;
}

static int spm__normalizer(spm_rd_t r, eng_spm_t *m)
{
    const char *msg = "normalizer_spec";
    while (r.pos < r.end) {
        spm_field_t f;
        int rc = spm__next(&r, &f, msg, 0);
        if (rc) return rc;
        switch (f.num) {
        case 1:
            if ((rc = spm__want(&r, &f, WT_LEN, "normalizer_spec.name"))) return rc;
            m->norm_name = r.buf + f.data;
            m->norm_name_len = (size_t)f.v;
            break;
        case 2:
            if ((rc = spm__want(&r, &f, WT_LEN, "normalizer_spec.precompiled_charsmap"))) return rc;
            m->charsmap_len = (size_t)f.v;
            break;
        case 3: case 4: case 5: {
            static const char *const names[] = {"normalizer_spec.add_dummy_prefix",
                                                "normalizer_spec.remove_extra_whitespaces",
                                                "normalizer_spec.escape_whitespaces"};
            int *dst[] = {&m->add_dummy_prefix, &m->remove_extra_ws, &m->escape_ws};
            if ((rc = spm__want(&r, &f, WT_VARINT, names[f.num - 3]))) return rc;
            *dst[f.num - 3] = f.v != 0;
            break;
        }
        default:
            if ((rc = spm__skip(&r, &f, msg))) return rc;
        }
    }
    return 0;
}

void eng_spm_close(eng_spm_t *m)
{
    if (!m) return;
    free(m->pieces);
    memset(m, 0, sizeof *m);
}

int eng_spm_parse(const uint8_t *buf, size_t n, const char *path, eng_spm_t *m, lrq_err_t *err)
{
    memset(m, 0, sizeof *m);
    m->model_type = ENG_SPM_UNIGRAM; /* the proto's defaults */
    m->unk_id = 0;
    m->bos_id = 1;
    m->eos_id = 2;
    m->pad_id = -1;
    m->add_dummy_prefix = m->remove_extra_ws = m->escape_ws = 1;
    spm_rd_t r = {buf, 0, n, path, err};
    size_t cap = 0;
    int rc = 0;
    while (r.pos < r.end && !rc) {
        spm_field_t f;
        if ((rc = spm__next(&r, &f, "ModelProto", 0))) break;
        switch (f.num) {
        case 1:
            if ((rc = spm__want(&r, &f, WT_LEN, "pieces"))) break;
            if (m->n >= SPM_MAX_PIECES) {
                rc = spm__fail(&r, f.at, "more than %d pieces", SPM_MAX_PIECES);
                break;
            }
            if (lrq_grow(&m->pieces, &cap, (size_t)m->n + 1, sizeof *m->pieces)) {
                rc = lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);
                break;
            }
            if (!(rc = spm__piece(spm__sub(&r, &f), m->n, f.at, &m->pieces[m->n]))) m->n++;
            break;
        case 2: /* proto2: a message field seen twice merges, which reading both in order does */
            if (!(rc = spm__want(&r, &f, WT_LEN, "trainer_spec"))) rc = spm__trainer(spm__sub(&r, &f), m);
            break;
        case 3:
            if (!(rc = spm__want(&r, &f, WT_LEN, "normalizer_spec"))) rc = spm__normalizer(spm__sub(&r, &f), m);
            break;
        default:
            rc = spm__skip(&r, &f, "ModelProto");
        }
    }
    if (!rc && m->n == 0) rc = lrq_errf(err, LRQ_EFORMAT, "%s: not a valid SentencePiece model: no pieces", path);
    if (rc) eng_spm_close(m);
    return rc;
}

int eng_spm_sniff(const uint8_t *buf, size_t n)
{
    /* tag 0x0A (field 1, length-delimited), a non-zero length, then a SentencePiece
     * field tag: piece (0x0A), score (0x15) or type (0x18). A tokenizer.bin starts with
     * its int32 max_token_length, whose bytes 2 and 3 are 0 below 65536. */
    if (n < 4 || buf[0] != 0x0A || buf[1] == 0) return 0;
    size_t i = buf[1] & 0x80 ? 3 : 2;
    if (i == 3 && (buf[2] & 0x80)) return 0;
    uint8_t t = buf[i];
    return t == 0x0A || t == 0x15 || t == 0x18;
}
