/* eng_gguf.c — GGUF v3 writer and reader-verifier (ggml docs/gguf.md; docs/formats.md, GGUF).
 *
 * File: "GGUF", u32 version 3, u64 tensor count, u64 kv count, the kv pairs, the tensor infos
 * (name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset), zero padding to the alignment (32),
 * then each tensor's data in tensor-info order, each padded to the alignment. llama.cpp checks
 * the hparam keys' types exactly, so counts are u32 and epsilons f32.
 *
 * Linears: lrq's (m, n) = (out, in) weight is a GGUF tensor with ne = [n, m] (ne[0] = row length).
 * Blocks are 32 consecutive elements of a row; the block's scale is its lrq group's scale
 * (group sizes that are multiples of 32, or per-channel). Codes map exactly:
 *   Q4_0  symmetric 4-bit (z = 8):   d = s, nibble = q              x = d·(nibble − 8)
 *   Q4_1  4-bit, any z:              d = s, m = −s·z, nibble = q    x = d·nibble + m
 *   Q8_0  symmetric 8-bit (z = 128): d = s, qs = q − 128            x = d·qs
 * with d and m binary16: the quantizer rounded s (and s·z for Q4_1) to binary16 before choosing
 * the codes (eng_quant_store_scale), so x equals Ŵ = s·(q − z) in float32 exactly.
 * q/k rows go to llama.cpp's order (interleaved RoPE pairs): llama2.c sources are in it already,
 * HF sources (rotate-half) are permuted per head: GGUF row h·Dh + 2i + j ← HF row h·Dh + j·Dh/2 + i. */
#include "eng_gguf.h"
#include "eng_export_int.h"
#include "eng_half.h"
#include "eng_quant.h"
#include "lrq_buf.h"
#include "lrq_fs.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "GGUF is little-endian; this writer stores host integers as they are"
#endif

#define GG_ALIGN 32
#define GG_QK 32

const char *const eng_gguf_req_name[] = {"auto", "q4_0", "q4_1", "q8_0", "f16", "f32", NULL};

/* GGUF metadata value types (gguf.md) */
enum { GV_U8 = 0, GV_I8, GV_U16, GV_I16, GV_U32, GV_I32, GV_F32, GV_BOOL, GV_STR, GV_ARR, GV_U64, GV_I64, GV_F64 };

/* llama.cpp tensor names of the seven linears, in lrq's ENG_Q … ENG_DOWN order */
static const char *const gg__lin_name[ENG_NLIN] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                   "ffn_gate", "ffn_up", "ffn_down"};

const char *eng_ggml_type_name(int type)
{
    switch (type) {
    case ENG_GGML_F32: return "F32";
    case ENG_GGML_F16: return "F16";
    case ENG_GGML_Q4_0: return "Q4_0";
    case ENG_GGML_Q4_1: return "Q4_1";
    case ENG_GGML_Q8_0: return "Q8_0";
    case ENG_GGML_BF16: return "BF16";
    default: return "?";
    }
}

/* bytes of n elements (n a multiple of 32 for block types) */
static uint64_t gg__nbytes(int type, uint64_t n)
{
    switch (type) {
    case ENG_GGML_F32: return 4 * n;
    case ENG_GGML_F16: case ENG_GGML_BF16: return 2 * n;
    case ENG_GGML_Q4_0: return n / GG_QK * 18;
    case ENG_GGML_Q4_1: return n / GG_QK * 20;
    case ENG_GGML_Q8_0: return n / GG_QK * 34;
    default: return 0;
    }
}

static uint64_t gg__pad(uint64_t x) { return (x + GG_ALIGN - 1) / GG_ALIGN * GG_ALIGN; }

int eng_gguf_scale_store(eng_gguf_req_t req, int bits, int symmetric)
{
    switch (req) {
    case ENG_GGUF_AUTO:
        if (bits == 4 && !symmetric) return ENG_SCALE_F16 | ENG_SCALE_ZF16;
        if ((bits == 4 || bits == 8) && symmetric) return ENG_SCALE_F16;
        return 0;
    case ENG_GGUF_Q4_0: case ENG_GGUF_Q8_0: return ENG_SCALE_F16;
    case ENG_GGUF_Q4_1: return ENG_SCALE_F16 | ENG_SCALE_ZF16;
    default: return 0; /* dequantized: nothing stored narrower (F16 rounds the weights themselves) */
    }
}

/* ---------------------------------------------------------------------------------------------
 * plan */

/* Block type the grid maps onto for this request, or -1 (none: dequantize). */
static int gg__block_type(eng_gguf_req_t req, int bits, int sym)
{
    switch (req) {
    case ENG_GGUF_AUTO:
        if (bits == 4) return sym ? ENG_GGML_Q4_0 : ENG_GGML_Q4_1;
        if (bits == 8 && sym) return ENG_GGML_Q8_0;
        return -1;
    case ENG_GGUF_Q4_0: return ENG_GGML_Q4_0;
    case ENG_GGUF_Q4_1: return ENG_GGML_Q4_1;
    case ENG_GGUF_Q8_0: return ENG_GGML_Q8_0;
    default: return -1;
    }
}

/* A row of n elements splits into 32-blocks that each lie in one group of gs (0 = per-channel). */
static int gg__blockable(int64_t n, int gs) { return n % GG_QK == 0 && (gs == 0 || gs >= n || gs % GG_QK == 0); }

static int gg__is_byte_piece(const char *p, int len, int *b)
{
    static const char hx[] = "0123456789ABCDEF";
    if (len != 6 || memcmp(p, "<0x", 3) || p[5] != '>') return 0;
    const char *h = strchr(hx, p[3]), *l = strchr(hx, p[4]);
    if (!h || !l || !*h || !*l) return 0;
    *b = (int)((h - hx) * 16 + (l - hx));
    return 1;
}

static int gg__check_tok(const eng_model_t *src, const eng_tok_t *tok, lrq_err_t *err)
{
    if (!tok)
        return lrq_errf(err, LRQ_EUNSUPP, "gguf export: needs the model's tokenizer (give \"tokenizer\" in the spec)");
    if (!eng_tok_scored(tok))
        return lrq_errf(err, LRQ_EUNSUPP, "gguf export: the tokenizer is a tokenizer.json (merge ranks, no "
                        "SentencePiece scores); llama.cpp's SentencePiece vocabulary needs piece scores: give the "
                        "model's SentencePiece tokenizer.model or its llama2.c tokenizer.bin");
    int nv = eng_tok_vocab_size(tok);
    if (nv != src->cfg.vocab_size)
        return lrq_errf(err, LRQ_EUNSUPP, "gguf export: the tokenizer has %d pieces but the model's vocabulary is %d; "
                        "llama.cpp needs one piece per embedding row", nv, src->cfg.vocab_size);
    int have[256] = {0}, nb = 0, b;
    for (int id = 0; id < nv; id++) {
        int len;
        const char *p = eng_tok_piece(tok, id, &len, NULL);
        if (gg__is_byte_piece(p, len, &b) && !have[b]) { have[b] = 1; nb++; }
    }
    if (nb != 256)
        return lrq_errf(err, LRQ_EUNSUPP, "gguf export: the vocabulary has %d of the 256 byte pieces <0x00>..<0xFF>; "
                        "llama.cpp's SentencePiece loader needs them (without <0x0A> it aborts with \"SPM vocabulary, "
                        "but newline token not found\"), and adding pieces would change the model's output "
                        "distribution: export hf or gptq for this model", nb);
    return 0;
}

int eng_gguf_plan(const eng_model_t *src, const eng_tok_t *tok, int bits, int group_size, int symmetric,
                  eng_gguf_req_t req, int *types, lrq_err_t *err)
{
    if (!src) return lrq_errf(err, LRQ_EFORMAT, "gguf export: no model");
    const eng_config_t *c = &src->cfg;
    if (c->head_dim <= 0 || c->head_dim % 2)
        return lrq_errf(err, LRQ_EUNSUPP, "gguf export: head_dim %d must be even (RoPE pairs)", c->head_dim);
    if (req == ENG_GGUF_Q4_0 && !(bits == 4 && symmetric))
        return lrq_err_field(err, "gguf.type", "q4_0 is symmetric 4-bit (zero 8): needs weight.bits 4 and "
                             "weight.symmetric true (got %d-bit %s); use q4_1 for asymmetric 4-bit", bits,
                             symmetric ? "symmetric" : "asymmetric");
    if (req == ENG_GGUF_Q4_1 && bits != 4)
        return lrq_err_field(err, "gguf.type", "q4_1 is 4-bit: needs weight.bits 4 (got %d)", bits);
    if (req == ENG_GGUF_Q8_0 && !(bits == 8 && symmetric))
        return lrq_err_field(err, "gguf.type", "q8_0 is symmetric 8-bit (zero 128): needs weight.bits 8 and "
                             "weight.symmetric true (got %d-bit %s); GGUF has no asymmetric 8-bit storage type",
                             bits, symmetric ? "symmetric" : "asymmetric");
    int bt = gg__block_type(req, bits, symmetric), nblock = 0;
    if (bt >= 0 && !(group_size == 0 || group_size % GG_QK == 0))
        return lrq_err_field(err, "weight.group_size", "GGUF blocks hold 32 elements with one scale: the group size "
                             "must be a multiple of 32 or 0 (per-channel), got %d", group_size);
    for (int l = 0; l < c->n_layers; l++)
        for (int k = 0; k < ENG_NLIN; k++) {
            const eng_tensor_t *t = &src->layers[l].lin[k];
            int ty = (bt >= 0 && gg__blockable(t->cols, group_size)) ? bt
                   : req == ENG_GGUF_F16 ? ENG_GGML_F16 : ENG_GGML_F32;
            if (ty == bt) nblock++;
            if (types) types[(size_t)l * ENG_NLIN + k] = ty;
        }
    if (bt >= 0 && req != ENG_GGUF_AUTO && nblock == 0)
        return lrq_err_field(err, "gguf.type", "%s: no linear has rows that are a multiple of 32, so every one would "
                             "be written dequantized; ask for \"f32\" if that is what you want", eng_gguf_req_name[req]);
    return gg__check_tok(src, tok, err);
}

/* ---------------------------------------------------------------------------------------------
 * row order, reference weights */

/* Model row feeding GGUF row i of linear k. */
static int gg__src_row(const eng_config_t *c, int k, int i)
{
    if (c->rope != ENG_ROPE_HALF || (k != ENG_Q && k != ENG_K)) return i;
    int dh = c->head_dim, h = i / dh, r = i % dh, ii = r / 2, j = r % 2;
    return h * dh + j * (dh / 2) + ii;
}

/* ---------------------------------------------------------------------------------------------
 * writer */

typedef struct gg_tensor {
    char name[64];
    int type;
    int64_t ne0, ne1;       /* ne1 = 1 for 1-D */
    int ndim;
    uint64_t offset, nbytes;
    int layer, lin;         /* lin >= 0: a quantized linear; -1 embed, -2 norm (src), -3 output */
    const eng_tensor_t *src;
} gg_tensor_t;

static int kv_key(lrq_buf_t *b, const char *key, uint32_t type)
{
    uint64_t n = strlen(key);
    int rc = lrq_buf_append(b, &n, 8);
    if (!rc) rc = lrq_buf_append(b, key, n);
    if (!rc) rc = lrq_buf_append(b, &type, 4);
    return rc;
}
static int kv_str_raw(lrq_buf_t *b, const char *s, size_t n)
{
    uint64_t l = n;
    int rc = lrq_buf_append(b, &l, 8);
    return rc ? rc : lrq_buf_append(b, s, n);
}
static int kv_u32(lrq_buf_t *b, const char *key, uint32_t v) { return kv_key(b, key, GV_U32) || lrq_buf_append(b, &v, 4); }
static int kv_f32(lrq_buf_t *b, const char *key, float v) { return kv_key(b, key, GV_F32) || lrq_buf_append(b, &v, 4); }
static int kv_bool(lrq_buf_t *b, const char *key, int v)
{
    uint8_t x = v != 0;
    return kv_key(b, key, GV_BOOL) || lrq_buf_append(b, &x, 1);
}
static int kv_str(lrq_buf_t *b, const char *key, const char *s) { return kv_key(b, key, GV_STR) || kv_str_raw(b, s, strlen(s)); }
static int kv_arr(lrq_buf_t *b, const char *key, uint32_t et, uint64_t n)
{
    return kv_key(b, key, GV_ARR) || lrq_buf_append(b, &et, 4) || lrq_buf_append(b, &n, 8);
}

/* A tokenizer piece as GGUF text: llama2.c's "\n<s>\n" decorations undone, " " → "▁". */
static int gg__piece_text(const eng_tok_t *tok, int id, lrq_buf_t *o)
{
    int len;
    const char *p = eng_tok_piece(tok, id, &len, NULL);
    o->len = 0;
    if (id == eng_tok_bos(tok) && len == 5 && !memcmp(p, "\n<s>\n", 5)) return lrq_buf_append(o, "<s>", 3);
    if (id == eng_tok_eos(tok) && len == 6 && !memcmp(p, "\n</s>\n", 6)) return lrq_buf_append(o, "</s>", 4);
    for (int i = 0; i < len; i++) {
        int rc = p[i] == ' ' ? lrq_buf_append(o, "\xe2\x96\x81", 3) : lrq_buf_append(o, p + i, 1);
        if (rc) return rc;
    }
    if (o->len == 0) return lrq_buf_append(o, "", 0);
    return 0;
}

static int gg__file_type(int bt)
{
    switch (bt) { /* llama_ftype */
    case ENG_GGML_Q4_0: return 2;
    case ENG_GGML_Q4_1: return 3;
    case ENG_GGML_Q8_0: return 7;
    case ENG_GGML_F16: return 1;
    default: return 0;
    }
}

static int gg__metadata(const eng_model_t *src, const eng_tok_t *tok, int main_type, lrq_buf_t *b, uint64_t *nkv)
{
    const eng_config_t *c = &src->cfg;
    int rc = 0;
    uint64_t n = 0;
#define KV(x) do { if (!rc) { rc = (x); n++; } } while (0)
    KV(kv_str(b, "general.architecture", "llama"));
    KV(kv_str(b, "general.name", "lrq export"));
    KV(kv_u32(b, "general.file_type", (uint32_t)gg__file_type(main_type)));
    KV(kv_u32(b, "general.quantization_version", 2));
    KV(kv_u32(b, "general.alignment", GG_ALIGN));
    KV(kv_u32(b, "llama.context_length", (uint32_t)c->max_seq_len));
    KV(kv_u32(b, "llama.embedding_length", (uint32_t)c->dim));
    KV(kv_u32(b, "llama.block_count", (uint32_t)c->n_layers));
    KV(kv_u32(b, "llama.feed_forward_length", (uint32_t)c->ffn_dim));
    KV(kv_u32(b, "llama.attention.head_count", (uint32_t)c->n_heads));
    KV(kv_u32(b, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads));
    KV(kv_f32(b, "llama.attention.layer_norm_rms_epsilon", c->norm_eps));
    KV(kv_f32(b, "llama.rope.freq_base", c->rope_theta));
    KV(kv_u32(b, "llama.rope.dimension_count", (uint32_t)c->head_dim));
    KV(kv_u32(b, "llama.attention.key_length", (uint32_t)c->head_dim));
    KV(kv_u32(b, "llama.attention.value_length", (uint32_t)c->head_dim));
    KV(kv_u32(b, "llama.vocab_size", (uint32_t)c->vocab_size));
    KV(kv_str(b, "tokenizer.ggml.model", "llama"));
    int nv = eng_tok_vocab_size(tok);
    lrq_buf_t pt = {0};
    if (!rc) {
        rc = kv_arr(b, "tokenizer.ggml.tokens", GV_STR, (uint64_t)nv);
        for (int id = 0; id < nv && !rc; id++) {
            rc = gg__piece_text(tok, id, &pt);
            if (!rc) rc = kv_str_raw(b, pt.p ? pt.p : "", pt.len);
        }
        n++;
    }
    lrq_buf_free(&pt);
    if (!rc) {
        rc = kv_arr(b, "tokenizer.ggml.scores", GV_F32, (uint64_t)nv);
        for (int id = 0; id < nv && !rc; id++) {
            float s;
            eng_tok_piece(tok, id, NULL, &s);
            rc = lrq_buf_append(b, &s, 4);
        }
        n++;
    }
    if (!rc) { /* llama_token_type = SentencePiece's piece type: 1 normal, 2 unknown, 3 control, 4 user
                * defined, 5 unused, 6 byte (a .model stores them; eng_tok_type derives them otherwise) */
        rc = kv_arr(b, "tokenizer.ggml.token_type", GV_I32, (uint64_t)nv);
        for (int id = 0; id < nv && !rc; id++) {
            int32_t ty = eng_tok_type(tok, id);
            rc = lrq_buf_append(b, &ty, 4);
        }
        n++;
    }
    KV(kv_u32(b, "tokenizer.ggml.bos_token_id", (uint32_t)eng_tok_bos(tok)));
    KV(kv_u32(b, "tokenizer.ggml.eos_token_id", (uint32_t)eng_tok_eos(tok)));
    KV(kv_u32(b, "tokenizer.ggml.unknown_token_id", (uint32_t)eng_tok_unk(tok)));
    KV(kv_bool(b, "tokenizer.ggml.add_bos_token", 1));
    KV(kv_bool(b, "tokenizer.ggml.add_eos_token", 0));
    KV(kv_bool(b, "tokenizer.ggml.add_space_prefix", eng_tok_dummy_prefix(tok)));
#undef KV
    *nkv = n;
    return rc;
}

/* One block-quantized or dequantized GGUF row from model row r of q. */
static int gg__encode_row(const eng_qlinear_t *q, int r, int type, uint8_t *dst, const char *nm, lrq_err_t *err)
{
    const int n = q->n;
    const uint8_t *qr = q->q + (size_t)r * n;
    const float *s = q->scale + (size_t)r * q->G, *z = q->zero + (size_t)r * q->G;
    if (type == ENG_GGML_F32 || type == ENG_GGML_F16) {
        for (int j = 0; j < n; j++) {
            float v = s[j / q->gs] * ((float)qr[j] - z[j / q->gs]);
            if (type == ENG_GGML_F32) memcpy(dst + 4 * (size_t)j, &v, 4);
            else {
                uint16_t h = eng_f32_to_f16(v);
                memcpy(dst + 2 * (size_t)j, &h, 2);
            }
        }
        return 0;
    }
    const int bsz = (int)gg__nbytes(type, GG_QK);
    for (int b = 0; b < n / GG_QK; b++) {
        int g = b * GG_QK / q->gs;
        float sc = s[g], zz = z[g];
        int store = type == ENG_GGML_Q4_1 ? ENG_SCALE_F16 | ENG_SCALE_ZF16 : ENG_SCALE_F16;
        if (eng_quant_scale_ok(sc, zz, store))
            return lrq_errf(err, LRQ_ENUMERIC, "gguf export: %s: row %d group %d: scale %.9g (zero %g) is not exactly "
                            "representable in %s's fp16 fields; the job's quantizer did not round scales for this "
                            "export", nm, r, g, (double)sc, (double)zz, eng_ggml_type_name(type));
        int zreq = type == ENG_GGML_Q4_0 ? 8 : type == ENG_GGML_Q8_0 ? 128 : -1;
        if (zreq >= 0 && zz != (float)zreq)
            return lrq_errf(err, LRQ_EFORMAT, "gguf export: %s: row %d group %d: zero point %g, %s needs %d", nm, r, g,
                            (double)zz, eng_ggml_type_name(type), zreq);
        uint8_t *o = dst + (size_t)b * bsz;
        uint16_t d = eng_f32_to_f16(sc);
        memcpy(o, &d, 2);
        const uint8_t *c = qr + (size_t)b * GG_QK;
        if (type == ENG_GGML_Q8_0) {
            for (int i = 0; i < GG_QK; i++) o[2 + i] = (uint8_t)(int8_t)((int)c[i] - 128);
            continue;
        }
        int off = 2;
        if (type == ENG_GGML_Q4_1) {
            uint16_t m = eng_f32_to_f16(-(sc * zz));
            memcpy(o + 2, &m, 2);
            off = 4;
        }
        for (int i = 0; i < GG_QK / 2; i++) /* byte i: element i low nibble, element i+16 high */
            o[off + i] = (uint8_t)((c[i] & 15) | ((c[i + GG_QK / 2] & 15) << 4));
    }
    return 0;
}

typedef struct gg_out {
    int fd;
    uint8_t buf[1 << 16];
    size_t n;
    uint64_t pos;
} gg_out_t;

static int gg__flush(gg_out_t *o)
{
    int e = o->n ? lrq_write_all(o->fd, o->buf, o->n) : 0;
    o->n = 0;
    return e;
}

static int gg__put(gg_out_t *o, const void *p, size_t n)
{
    const uint8_t *s = p;
    o->pos += n;
    while (n) {
        size_t k = sizeof o->buf - o->n < n ? sizeof o->buf - o->n : n;
        memcpy(o->buf + o->n, s, k);
        o->n += k;
        s += k;
        n -= k;
        if (o->n == sizeof o->buf) {
            int e = gg__flush(o);
            if (e) return e;
        }
    }
    return 0;
}

static int gg__put_pad(gg_out_t *o)
{
    static const uint8_t zeros[GG_ALIGN] = {0};
    return gg__put(o, zeros, gg__pad(o->pos) - o->pos);
}

/* Source tensor converted to F32 (norms) or copied in its own dtype (embeddings). */
static int gg__put_src(gg_out_t *o, const gg_tensor_t *t, float **scr, size_t *cap, lrq_err_t *err)
{
    size_t n = eng_tensor_numel(t->src);
    if (t->type != ENG_GGML_F32 || t->src->dtype == ENG_F32) /* same dtype: the bytes as they are */
        return gg__put(o, t->src->data, (size_t)t->nbytes) ? lrq_errf(err, -EIO, "gguf export: write failed") : 0;
    if (n > *cap) {
        float *p = realloc(*scr, n * sizeof *p);
        if (!p) return lrq_errf(err, LRQ_ENOMEM, "gguf export: out of memory");
        *scr = p;
        *cap = n;
    }
    int rc = eng_tensor_to_f32(t->src, *scr, err);
    if (!rc && gg__put(o, *scr, n * 4)) rc = lrq_errf(err, -EIO, "gguf export: write failed");
    return rc;
}

static int gg__ggml_dtype(eng_dtype_t dt) { return dt == ENG_F32 ? ENG_GGML_F32 : dt == ENG_F16 ? ENG_GGML_F16 : ENG_GGML_BF16; }

/* Tensor list in file order: token_embd, per layer attn_norm q k v o ffn_norm gate up down,
 * output_norm, output (only when not tied: llama.cpp reuses token_embd then). */
static gg_tensor_t *gg__tensors(const eng_model_t *src, const int *types, int *count)
{
    const eng_config_t *c = &src->cfg;
    int n = 1 + c->n_layers * (ENG_NLIN + 2) + 1 + (c->tie_embeddings ? 0 : 1);
    gg_tensor_t *t = calloc((size_t)n, sizeof *t);
    if (!t) return NULL;
    int i = 0;
    uint64_t off = 0;
#define ADD(NAME_FMT, L, LIN, TYPE, NE0, NE1, ND, SRC) do { \
        gg_tensor_t *x = &t[i++]; \
        snprintf(x->name, sizeof x->name, NAME_FMT, L); \
        x->layer = (L); x->lin = (LIN); x->type = (TYPE); x->ne0 = (NE0); x->ne1 = (NE1); x->ndim = (ND); \
        x->src = (SRC); x->nbytes = gg__nbytes(x->type, (uint64_t)x->ne0 * (uint64_t)x->ne1); \
        x->offset = off; off += gg__pad(x->nbytes); } while (0)
    ADD("token_embd.weight%.0d", 0, -1, gg__ggml_dtype(src->embed.dtype), c->dim, c->vocab_size, 2, &src->embed);
    for (int l = 0; l < c->n_layers; l++) {
        const eng_layer_tensors_t *L = &src->layers[l];
        ADD("blk.%d.attn_norm.weight", l, -2, ENG_GGML_F32, c->dim, 1, 1, &L->attn_norm);
        for (int k = 0; k < ENG_NLIN; k++) {
            char fmt[48];
            snprintf(fmt, sizeof fmt, "blk.%%d.%s.weight", gg__lin_name[k]);
            if (k == ENG_GATE) ADD("blk.%d.ffn_norm.weight", l, -2, ENG_GGML_F32, c->dim, 1, 1, &L->ffn_norm);
            ADD(fmt, l, k, types[(size_t)l * ENG_NLIN + k], L->lin[k].cols, L->lin[k].rows, 2, &L->lin[k]);
        }
    }
    ADD("output_norm.weight%.0d", 0, -2, ENG_GGML_F32, c->dim, 1, 1, &src->final_norm);
    if (!c->tie_embeddings)
        ADD("output.weight%.0d", 0, -3, gg__ggml_dtype(src->lm_head.dtype), c->dim, c->vocab_size, 2, &src->lm_head);
#undef ADD
    *count = i;
    return t;
}

static int gg__write(const eng_model_t *src, const eng_tok_t *tok, const eng_qsource_t *qs, const int *types,
                     int main_type, const char *path, lrq_err_t *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return lrq_errf(err, LRQ_EFORMAT, "%s: path too long", path);
    int nt = 0, rc = 0;
    gg_tensor_t *t = gg__tensors(src, types, &nt);
    lrq_buf_t kv = {0};
    uint64_t nkv = 0;
    gg_out_t *o = calloc(1, sizeof *o);
    uint8_t *row = NULL;
    float *scr = NULL;
    size_t scap = 0;
    if (!t || !o) { rc = lrq_errf(err, LRQ_ENOMEM, "gguf export: out of memory"); goto out; }
    if (gg__metadata(src, tok, main_type, &kv, &nkv)) { rc = lrq_errf(err, LRQ_ENOMEM, "gguf export: out of memory"); goto out; }
    o->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (o->fd < 0) { int e = errno; rc = lrq_errf(err, -e, "%s: cannot create: %s", tmp, strerror(e)); goto out; }
    uint32_t magic_ver[2] = {0x46554747u /* "GGUF" */, 3};
    uint64_t counts[2] = {(uint64_t)nt, nkv};
    int e = gg__put(o, magic_ver, 8) || gg__put(o, counts, 16) || gg__put(o, kv.p, kv.len);
    for (int i = 0; i < nt && !e; i++) {
        uint64_t nl = strlen(t[i].name);
        uint32_t nd = (uint32_t)t[i].ndim, ty = (uint32_t)t[i].type;
        uint64_t ne[2] = {(uint64_t)t[i].ne0, (uint64_t)t[i].ne1};
        e = gg__put(o, &nl, 8) || gg__put(o, t[i].name, nl) || gg__put(o, &nd, 4) || gg__put(o, ne, 8 * nd) ||
            gg__put(o, &ty, 4) || gg__put(o, &t[i].offset, 8);
    }
    if (!e) e = gg__put_pad(o);
    uint64_t data0 = o->pos;
    const eng_qlinear_t *lin[ENG_NLIN] = {0};
    int cur_layer = -1;
    for (int i = 0; i < nt && !e && !rc; i++) {
        gg_tensor_t *x = &t[i];
        if (o->pos - data0 != x->offset) { rc = lrq_errf(err, LRQ_EFORMAT, "gguf export: internal offset error at %s", x->name); break; }
        if (x->lin < 0) {
            rc = gg__put_src(o, x, &scr, &scap, err);
        } else {
            if (x->layer != cur_layer) {
                if ((rc = qs->layer(qs->ctx, x->layer, lin, err))) break;
                cur_layer = x->layer;
            }
            const eng_qlinear_t *q = lin[x->lin];
            if (q->m != x->ne1 || q->n != x->ne0) {
                rc = lrq_errf(err, LRQ_EFORMAT, "gguf export: %s: quantized shape [%d, %d] != model [%lld, %lld]",
                              x->name, q->m, q->n, (long long)x->ne1, (long long)x->ne0);
                break;
            }
            size_t rb = (size_t)gg__nbytes(x->type, (uint64_t)q->n);
            uint8_t *nr = realloc(row, rb);
            if (!nr) { rc = lrq_errf(err, LRQ_ENOMEM, "gguf export: out of memory"); break; }
            row = nr;
            for (int r = 0; r < q->m && !rc && !e; r++) { /* one row in memory at a time */
                rc = gg__encode_row(q, gg__src_row(&src->cfg, x->lin, r), x->type, row, x->name, err);
                if (!rc) e = gg__put(o, row, rb);
            }
        }
        if (!rc && !e) e = gg__put_pad(o);
    }
    if (!rc && !e) e = gg__flush(o);
    if (!rc && e) rc = lrq_errf(err, e < 0 ? e : -EIO, "%s: write failed: %s", tmp, strerror(e < 0 ? -e : EIO));
    if (!rc && fsync(o->fd) != 0) { int x = errno; rc = lrq_errf(err, -x, "%s: fsync failed: %s", tmp, strerror(x)); }
    if (o->fd >= 0) {
        if (close(o->fd) != 0 && !rc) { int x = errno; rc = lrq_errf(err, -x, "%s: close failed: %s", tmp, strerror(x)); }
        o->fd = -1;
        if (!rc && rename(tmp, path) != 0) { int x = errno; rc = lrq_errf(err, -x, "%s: rename failed: %s", path, strerror(x)); }
        if (rc) unlink(tmp);
    }
out:
    free(row);
    free(scr);
    free(o);
    free(t);
    lrq_buf_free(&kv);
    return rc;
}

int eng_export_gguf(const eng_model_t *src, const eng_tok_t *tok, const eng_qsource_t *qs, eng_gguf_req_t req,
                    const char *outdir, json_t **info, lrq_err_t *err)
{
    if (info) *info = NULL;
    if (!src || !qs || !qs->layer) return lrq_errf(err, LRQ_EFORMAT, "gguf export: no model or no quantized source");
    const eng_config_t *c = &src->cfg;
    size_t nl = (size_t)c->n_layers * ENG_NLIN;
    int *types = calloc(nl ? nl : 1, sizeof *types);
    if (!types) return lrq_errf(err, LRQ_ENOMEM, "gguf export: out of memory");
    /* the quantizer's settings, from layer 0 (the plan was checked against the spec up front) */
    const eng_qlinear_t *lin[ENG_NLIN];
    int rc = c->n_layers > 0 ? qs->layer(qs->ctx, 0, lin, err) : lrq_errf(err, LRQ_EFORMAT, "gguf export: no layers");
    int bits = 0, gs = 0, sym = 0;
    if (!rc) {
        bits = lin[0]->bits;
        sym = lin[0]->symmetric;
        rc = eng__export_group(src, qs, &gs, err);
        if (!rc) rc = eng_gguf_plan(src, tok, bits, gs, sym, req, types, err);
    }
    int main_type = req == ENG_GGUF_F16 ? ENG_GGML_F16 : ENG_GGML_F32;
    json_t *counts = json_object(), *deq = json_array();
    for (size_t i = 0; i < nl && !rc; i++) {
        const char *tn = eng_ggml_type_name(types[i]);
        json_object_set_new(counts, tn, json_integer(json_integer_value(json_object_get(counts, tn)) + 1));
        if (types[i] == ENG_GGML_Q4_0 || types[i] == ENG_GGML_Q4_1 || types[i] == ENG_GGML_Q8_0) main_type = types[i];
        else {
            char nm[64];
            snprintf(nm, sizeof nm, "blk.%d.%s.weight", (int)(i / ENG_NLIN), gg__lin_name[i % ENG_NLIN]);
            json_array_append_new(deq, json_string(nm));
        }
    }
    char path[PATH_MAX];
    if (!rc) rc = eng__export_prepare(src, outdir, err);
    if (!rc && snprintf(path, sizeof path, "%s/model.gguf", outdir) >= (int)sizeof path)
        rc = lrq_errf(err, LRQ_EFORMAT, "%s: path too long", outdir);
    if (!rc) rc = gg__write(src, tok, qs, types, main_type, path, err);
    if (!rc) rc = lrq_fsync_dir(outdir) ? lrq_errf(err, -errno, "%s: cannot fsync directory", outdir) : 0;
    json_t *gi = NULL;
    if (!rc) {
        gi = json_pack("{s:s, s:s, s:s, s:O, s:O}", "file", "model.gguf", "requested", eng_gguf_req_name[req],
                       "file_type", eng_ggml_type_name(main_type), "types", counts, "dequantized", deq);
        json_t *extra = json_pack("{s:O, s:[{s:s, s:s}]}", "gguf", gi, "runtimes", "name", "llama.cpp", "notes",
                                  "GGUF v3, general.architecture llama; also Ollama / LM Studio (llama.cpp based)");
        const char *files[] = {"model.gguf"};
        rc = eng__export_manifest(src, bits, gs, sym, outdir, "gguf", extra, files, 1, err);
    }
    if (!rc && info) *info = json_incref(gi);
    json_decref(gi);
    json_decref(counts);
    json_decref(deq);
    free(types);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * reader (the verifier's own code path: parses the file as a loader would) */

typedef struct gg_rd {
    const uint8_t *p;
    size_t n, o;
    int bad;
} gg_rd_t;

static const uint8_t *rd_take(gg_rd_t *r, size_t k)
{
    if (r->bad || r->n - r->o < k) { r->bad = 1; return NULL; }
    const uint8_t *q = r->p + r->o;
    r->o += k;
    return q;
}
static uint32_t rd_u32(gg_rd_t *r) { uint32_t v = 0; const uint8_t *q = rd_take(r, 4); if (q) memcpy(&v, q, 4); return v; }
static uint64_t rd_u64(gg_rd_t *r) { uint64_t v = 0; const uint8_t *q = rd_take(r, 8); if (q) memcpy(&v, q, 8); return v; }
static const char *rd_str(gg_rd_t *r, uint64_t *len)
{
    *len = rd_u64(r);
    if (*len > (1u << 20)) { r->bad = 1; return NULL; }
    return (const char *)rd_take(r, (size_t)*len);
}

static int rd_skip_val(gg_rd_t *r, uint32_t type, int depth)
{
    static const int sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type > GV_F64 || depth > 2) return r->bad = 1;
    if (type == GV_STR) { uint64_t l; rd_str(r, &l); return r->bad; }
    if (type == GV_ARR) {
        uint32_t et = rd_u32(r);
        uint64_t cnt = rd_u64(r);
        if (et > GV_F64 || cnt > r->n) return r->bad = 1;
        if (et != GV_STR && et != GV_ARR) { rd_take(r, (size_t)cnt * (size_t)sz[et]); return r->bad; }
        for (uint64_t i = 0; i < cnt && !r->bad; i++) rd_skip_val(r, et, depth + 1);
        return r->bad;
    }
    rd_take(r, (size_t)sz[type]);
    return r->bad;
}

typedef struct gg_info { char name[64]; uint32_t nd, type; uint64_t ne[4], off; } gg_info_t;

static float rd_f16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return eng_f16_to_f32(h); }

/* Row r (n elements) of a tensor of type ty at data p, dequantized as ggml does. */
static void gg__decode_row(const uint8_t *p, int ty, int64_t n, float *o)
{
    if (ty == ENG_GGML_F32) { memcpy(o, p, (size_t)n * 4); return; }
    if (ty == ENG_GGML_F16 || ty == ENG_GGML_BF16) {
        for (int64_t j = 0; j < n; j++) {
            uint16_t h;
            memcpy(&h, p + 2 * j, 2);
            o[j] = ty == ENG_GGML_F16 ? eng_f16_to_f32(h) : eng_bf16_to_f32(h);
        }
        return;
    }
    int bsz = (int)gg__nbytes(ty, GG_QK);
    for (int64_t b = 0; b < n / GG_QK; b++) {
        const uint8_t *x = p + b * bsz;
        float d = rd_f16(x), *y = o + b * GG_QK;
        if (ty == ENG_GGML_Q8_0) {
            for (int i = 0; i < GG_QK; i++) y[i] = d * (float)(int8_t)x[2 + i];
        } else if (ty == ENG_GGML_Q4_0) {
            for (int i = 0; i < GG_QK / 2; i++) {
                y[i] = d * (float)((x[2 + i] & 15) - 8);
                y[i + GG_QK / 2] = d * (float)((x[2 + i] >> 4) - 8);
            }
        } else {
            float m = rd_f16(x + 2);
            for (int i = 0; i < GG_QK / 2; i++) {
                y[i] = (float)(x[4 + i] & 15) * d + m;
                y[i + GG_QK / 2] = (float)(x[4 + i] >> 4) * d + m;
            }
        }
    }
}

int eng_gguf_verify(const char *path, const eng_model_t *src, const eng_qsource_t *qs, lrq_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { int e = errno; return lrq_errf(err, -e, "%s: cannot open: %s", path, strerror(e)); }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < 24) { close(fd); return lrq_errf(err, LRQ_EFORMAT, "%s: not a GGUF file", path); }
    size_t len = (size_t)st.st_size;
    const uint8_t *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return lrq_errf(err, -errno, "%s: mmap failed", path);
    int rc = 0;
    gg_info_t *ti = NULL;
    float *a = NULL, *b = NULL;
    gg_rd_t r = {map, len, 0, 0};
    uint32_t magic = rd_u32(&r), ver = rd_u32(&r);
    uint64_t nt = rd_u64(&r), nkv = rd_u64(&r);
    if (magic != 0x46554747u || ver != 3) { rc = lrq_errf(err, LRQ_EFORMAT, "%s: not GGUF v3", path); goto out; }
    if (nt > 1000000 || nkv > 1000000) { rc = lrq_errf(err, LRQ_EFORMAT, "%s: implausible counts", path); goto out; }
    uint32_t align = GG_ALIGN;
    int arch_ok = 0;
    for (uint64_t i = 0; i < nkv && !r.bad; i++) {
        uint64_t kl;
        const char *k = rd_str(&r, &kl);
        uint32_t ty = rd_u32(&r);
        if (r.bad) break;
        if (kl == 17 && !memcmp(k, "general.alignment", 17) && ty == GV_U32) { align = rd_u32(&r); continue; }
        if (kl == 20 && !memcmp(k, "general.architecture", 20) && ty == GV_STR) {
            uint64_t vl;
            const char *v = rd_str(&r, &vl);
            arch_ok = v && vl == 5 && !memcmp(v, "llama", 5);
            continue;
        }
        rd_skip_val(&r, ty, 0);
    }
    if (r.bad || !arch_ok || !align || (align & (align - 1))) {
        rc = lrq_errf(err, LRQ_EFORMAT, "%s: bad metadata (architecture llama, alignment a power of two)", path);
        goto out;
    }
    if (!(ti = calloc(nt ? nt : 1, sizeof *ti))) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); goto out; }
    for (uint64_t i = 0; i < nt && !r.bad; i++) {
        uint64_t nl;
        const char *nm = rd_str(&r, &nl);
        if (r.bad || nl >= 64) { r.bad = 1; break; }
        memcpy(ti[i].name, nm, nl);
        ti[i].nd = rd_u32(&r);
        if (ti[i].nd < 1 || ti[i].nd > 4) { r.bad = 1; break; }
        for (uint32_t d = 0; d < ti[i].nd; d++) ti[i].ne[d] = rd_u64(&r);
        for (uint32_t d = ti[i].nd; d < 4; d++) ti[i].ne[d] = 1;
        ti[i].type = rd_u32(&r);
        ti[i].off = rd_u64(&r);
    }
    if (r.bad) { rc = lrq_errf(err, LRQ_EFORMAT, "%s: truncated tensor infos", path); goto out; }
    uint64_t data0 = (r.o + align - 1) / align * align, expect = 0;
    for (uint64_t i = 0; i < nt; i++) { /* llama.cpp: data in tensor-info order at the alignment */
        uint64_t ne = ti[i].ne[0] * ti[i].ne[1] * ti[i].ne[2] * ti[i].ne[3];
        uint64_t nb = gg__nbytes((int)ti[i].type, ne);
        if (!nb || (ti[i].type != ENG_GGML_F32 && ti[i].type != ENG_GGML_F16 && ti[i].type != ENG_GGML_BF16 &&
                    ti[i].ne[0] % GG_QK)) {
            rc = lrq_errf(err, LRQ_EFORMAT, "%s: tensor %s: type %u / shape not readable", path, ti[i].name, ti[i].type);
            goto out;
        }
        if (ti[i].off != expect || data0 + ti[i].off + nb > len) {
            rc = lrq_errf(err, LRQ_EFORMAT, "%s: tensor %s has offset %llu, expected %llu (or runs past the end)", path,
                          ti[i].name, (unsigned long long)ti[i].off, (unsigned long long)expect);
            goto out;
        }
        expect += (nb + align - 1) / align * align;
    }
    /* compare: every linear against s·(q − z), embeddings and norms against the source */
    const eng_config_t *c = &src->cfg;
    for (int l = 0; l < c->n_layers && !rc; l++) {
        const eng_qlinear_t *lin[ENG_NLIN];
        if ((rc = qs->layer(qs->ctx, l, lin, err))) break;
        for (int k = 0; k < ENG_NLIN && !rc; k++) {
            char nm[64];
            snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, gg__lin_name[k]);
            const gg_info_t *x = NULL;
            for (uint64_t i = 0; i < nt; i++)
                if (!strcmp(ti[i].name, nm)) x = &ti[i];
            const eng_qlinear_t *q = lin[k];
            if (!x || x->nd != 2 || x->ne[0] != (uint64_t)q->n || x->ne[1] != (uint64_t)q->m) {
                rc = lrq_errf(err, LRQ_EFORMAT, "%s: tensor %s missing or of the wrong shape", path, nm);
                break;
            }
            float *na = realloc(a, (size_t)q->n * 4), *nb2 = na ? realloc(b, (size_t)q->n * 4) : NULL;
            if (na) a = na;
            if (nb2) b = nb2;
            if (!na || !nb2) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); break; }
            uint64_t rb = gg__nbytes((int)x->type, (uint64_t)q->n);
            for (int i = 0; i < q->m && !rc; i++) {
                gg__decode_row(map + data0 + x->off + (uint64_t)i * rb, (int)x->type, q->n, a);
                int sr = gg__src_row(c, k, i);
                const uint8_t *qr = q->q + (size_t)sr * q->n;
                for (int j = 0; j < q->n; j++) {
                    int g = j / q->gs;
                    b[j] = q->scale[(size_t)sr * q->G + g] * ((float)qr[j] - q->zero[(size_t)sr * q->G + g]);
                    if (x->type == ENG_GGML_F16) b[j] = eng_f16_to_f32(eng_f32_to_f16(b[j]));
                }
                if (memcmp(a, b, (size_t)q->n * 4) != 0) {
                    int j = 0;
                    while (j < q->n && !memcmp(&a[j], &b[j], 4)) j++;
                    rc = lrq_errf(err, LRQ_ENUMERIC, "%s: verification failed: %s (%s) row %d column %d reads %.9g, "
                                  "the evaluated weight is %.9g", path, nm, eng_ggml_type_name((int)x->type), i, j,
                                  (double)a[j], (double)b[j]);
                }
            }
            /* done with this tensor: drop its pages (the verifier holds one tensor, not the file) */
            long pg = sysconf(_SC_PAGESIZE);
            uintptr_t p0 = (uintptr_t)(map + data0 + x->off), p1 = p0 + (uintptr_t)(rb * (uint64_t)q->m);
            p0 = (p0 + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
            p1 &= ~((uintptr_t)pg - 1);
            if (pg > 0 && p1 > p0) madvise((void *)p0, p1 - p0, MADV_DONTNEED);
        }
    }
    for (uint64_t i = 0; i < nt && !rc; i++) { /* embeddings: the source's bytes */
        const eng_tensor_t *s = !strcmp(ti[i].name, "token_embd.weight") ? &src->embed
                              : !strcmp(ti[i].name, "output.weight") ? &src->lm_head : NULL;
        if (!s) continue;
        size_t nb = (size_t)eng_tensor_numel(s) * (s->dtype == ENG_F32 ? 4 : 2);
        if (ti[i].type != (uint32_t)gg__ggml_dtype(s->dtype) || memcmp(map + data0 + ti[i].off, s->data, nb))
            rc = lrq_errf(err, LRQ_ENUMERIC, "%s: verification failed: %s differs from the source", path, ti[i].name);
    }
out:
    free(a);
    free(b);
    free(ti);
    munmap((void *)map, len);
    return rc;
}
