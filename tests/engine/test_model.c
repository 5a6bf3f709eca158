/* test_model.c — model loading: llama2.c and HF checkpoints, safetensors validation,
 * the corrupted-input suite (issue 2 acceptance 4), dtype conversion.
 *
 * Fixtures are written to a fresh temp dir per test (Criterion forks per test). */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eng_half.h"
#include "eng_model.h"
#include "eng_safetensors.h"
#include "test_util.h"

/* ---------------------------------------------------------------- helpers */









/* header JSON + data → safetensors; header padded with spaces so that 8 + N ≡ pad_to_mod (mod 8). */
static void write_st_raw(const char *path, const char *hdr, const void *data, size_t ndata, int mod)
{
    size_t hl = strlen(hdr), n = hl;
    while ((8 + n) % 8 != (size_t)mod) n++;
    uint8_t *b = calloc(1, 8 + n + ndata);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(b + 8, hdr, hl);
    memset(b + 8 + hl, ' ', n - hl);
    if (ndata) memcpy(b + 8 + n, data, ndata);
    write_file(path, b, 8 + n + ndata);
    free(b);
}

static int st_parse_str(const char *hdr, size_t ndata, lrq_err_t *err)
{
    size_t hl = strlen(hdr);
    uint8_t *b = calloc(1, 8 + hl + ndata + 1);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, hdr, hl);
    eng_st_file_t f;
    int rc = eng_st_parse(&f, b, 8 + hl + ndata, "mem.safetensors", err);
    if (rc == 0) eng_st_close(&f);
    free(b);
    return rc;
}

/* Synthetic HF checkpoint in F32 with mutation knobs. */
typedef struct {
    int D, F, L, H, KV, V;
    int tie;
    const char *skip;      /* tensor left out */
    const char *bad_shape; /* tensor written with rows doubled */
    const char *nan_name;  /* tensor with a NaN at nan_index */
    size_t nan_index;
    const char *dtype_of_q0; /* dtype string for layer 0 q_proj ("I32" etc.), NULL = F32 */
    const char *cfg_extra; /* extra config.json members, e.g. "\"model_type\":\"gpt2\"," */
    int mod;               /* header alignment residue (0 = standard) */
} fx_t;

static float fx_value(const char *name, size_t i)
{
    unsigned h = 2166136261u;
    for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    h ^= (unsigned)i * 2654435761u;
    return (float)((int)(h % 2001) - 1000) / 1000.0f * 0.05f;
}

typedef struct { char name[96]; int64_t r, c; int one_d; } fx_spec_t;

static int fx_specs(const fx_t *o, fx_spec_t *s)
{
    int n = 0, Dh = o->D / o->H;
#define ADD(nm, rr, cc, od) do { snprintf(s[n].name, sizeof s[n].name, "%s", nm); s[n].r = rr; s[n].c = cc; s[n].one_d = od; n++; } while (0)
    ADD("model.embed_tokens.weight", o->V, o->D, 0);
    ADD("model.norm.weight", 1, o->D, 1);
    if (!o->tie) ADD("lm_head.weight", o->V, o->D, 0);
    char nm[96];
    for (int l = 0; l < o->L; l++) {
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l); ADD(nm, 1, o->D, 1);
        snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l); ADD(nm, 1, o->D, 1);
        const int64_t rows[7] = {o->H * Dh, o->KV * Dh, o->KV * Dh, o->D, o->F, o->F, o->D};
        const int64_t cols[7] = {o->D, o->D, o->D, o->H * Dh, o->D, o->D, o->F};
        for (int k = 0; k < ENG_NLIN; k++) {
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, eng_lin_hf_name[k]);
            ADD(nm, rows[k], cols[k], 0);
        }
    }
#undef ADD
    return n;
}

static void fx_write(const fx_t *o)
{
    fx_spec_t specs[256];
    int n = fx_specs(o, specs);
    char *hdr = malloc(1 << 16), *h = hdr;
    size_t total = 0;
    h += sprintf(h, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t off[256], nb[256];
    for (int i = 0; i < n; i++) {
        if (o->skip && !strcmp(o->skip, specs[i].name)) { nb[i] = 0; off[i] = total; continue; }
        int64_t r = specs[i].r;
        if (o->bad_shape && !strcmp(o->bad_shape, specs[i].name)) r *= 2;
        specs[i].r = r;
        const char *dt = "F32";
        if (o->dtype_of_q0 && !strcmp(specs[i].name, "model.layers.0.self_attn.q_proj.weight")) dt = o->dtype_of_q0;
        nb[i] = (size_t)(r * specs[i].c) * 4;
        off[i] = total;
        if (specs[i].one_d)
            h += sprintf(h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%zu,%zu]}", specs[i].name, dt,
                         (long long)specs[i].c, total, total + nb[i]);
        else
            h += sprintf(h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}",
                         specs[i].name, dt, (long long)r, (long long)specs[i].c, total, total + nb[i]);
        total += nb[i];
    }
    strcpy(h, "}");
    float *data = malloc(total ? total : 4);
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < nb[i] / 4; k++) {
            float v = fx_value(specs[i].name, k);
            if (o->nan_name && !strcmp(o->nan_name, specs[i].name) && k == o->nan_index) v = NAN;
            data[off[i] / 4 + k] = v;
        }
    write_st_raw(tpath("model.safetensors"), hdr, data, total, o->mod);
    free(hdr);
    free(data);
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{%s\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":%d,"
             "\"intermediate_size\":%d,\"num_hidden_layers\":%d,\"num_attention_heads\":%d,"
             "\"num_key_value_heads\":%d,\"vocab_size\":%d,\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0,"
             "\"max_position_embeddings\":64,\"tie_word_embeddings\":%s}",
             o->cfg_extra ? o->cfg_extra : "", o->D, o->F, o->L, o->H, o->KV, o->V, o->tie ? "true" : "false");
    write_file(tpath("config.json"), cfg, strlen(cfg));
}

static fx_t fx_default(void)
{
    fx_t o = {.D = 16, .F = 24, .L = 2, .H = 4, .KV = 2, .V = 32};
    return o;
}

/* Open tmpdir as a model and expect failure with code and message substring. */
static void expect_open_fail(const char *path, int code, const char *substr)
{
    eng_model_t *m = (eng_model_t *)0x1;
    lrq_err_t e = {0};
    int rc = eng_model_open(path, &m, &e);
    cr_assert_eq(rc, code, "rc %d (want %d): %s", rc, code, e.msg);
    cr_assert_null(m);
    cr_assert_not_null(strstr(e.msg, substr), "message '%s' lacks '%s'", e.msg, substr);
}

static void copy_truncated(const char *src, const char *dst, long drop)
{
    size_t n;
    void *b = read_file(src, &n);
    write_file(dst, b, n - (size_t)drop);
    free(b);
}

TestSuite(model, .init = setup_tmp, .fini = teardown_tmp);

/* ---------------------------------------------------------------- real checkpoints */

Test(model, stories260k_both_formats_agree)
{
    eng_model_t *a, *b;
    lrq_err_t e = {0};
    cr_assert_eq(eng_model_open(shared("models/stories260K/stories260K.bin"), &a, &e), 0, "%s", e.msg);
    cr_assert_eq(eng_model_open(shared("models/stories260K-hf"), &b, &e), 0, "%s", e.msg);
    const eng_config_t *x = &a->cfg, *y = &b->cfg;
    cr_assert_eq(x->dim, 64); cr_assert_eq(x->ffn_dim, 172); cr_assert_eq(x->n_layers, 5);
    cr_assert_eq(x->n_heads, 8); cr_assert_eq(x->n_kv_heads, 4); cr_assert_eq(x->head_dim, 8);
    cr_assert_eq(x->vocab_size, 512); cr_assert_eq(x->max_seq_len, 512);
    cr_assert_eq(x->dim, y->dim); cr_assert_eq(x->ffn_dim, y->ffn_dim); cr_assert_eq(x->n_layers, y->n_layers);
    cr_assert_eq(x->n_heads, y->n_heads); cr_assert_eq(x->n_kv_heads, y->n_kv_heads);
    cr_assert_eq(x->head_dim, y->head_dim); cr_assert_eq(x->vocab_size, y->vocab_size);
    cr_assert_eq(x->max_seq_len, y->max_seq_len); cr_assert_float_eq(x->norm_eps, y->norm_eps, 1e-12);
    cr_assert_float_eq(x->rope_theta, y->rope_theta, 1e-3); cr_assert_eq(x->tie_embeddings, 1);
    cr_assert_eq(y->tie_embeddings, 1);
    cr_assert_eq(x->rope, ENG_ROPE_INTERLEAVED); cr_assert_eq(y->rope, ENG_ROPE_HALF);
    cr_assert_eq(a->format, ENG_FMT_LLAMA2C); cr_assert_eq(b->format, ENG_FMT_HF);
    cr_assert_eq(a->dtype, ENG_F32); cr_assert_eq(b->dtype, ENG_F32);
    cr_assert_eq(eng_model_weight_bytes(a), 260032u * 4); /* SOURCE.md: 260,032 parameters */
    cr_assert_eq(eng_model_weight_bytes(b), 260032u * 4);
    cr_assert_eq(a->lm_head.data, a->embed.data);
    cr_assert_eq(b->lm_head.data, b->embed.data);
    /* check_finite releases file pages as it goes; the data must read back unchanged */
    size_t nemb = eng_tensor_numel(&b->embed);
    float *emb0 = malloc(nemb * 4);
    memcpy(emb0, b->embed.data, nemb * 4);
    cr_assert_eq(eng_model_check_finite(a, &e), 0, "%s", e.msg);
    cr_assert_eq(eng_model_check_finite(b, &e), 0, "%s", e.msg);
    eng_model_release(b, &b->embed);
    cr_assert_eq(memcmp(emb0, b->embed.data, nemb * 4), 0);
    free(emb0);

    /* identical tensors byte for byte, except q/k rows permuted per head (SOURCE.md):
     * HF row j < Dh/2 = llama2.c row 2j, HF row j >= Dh/2 = llama2.c row 2(j - Dh/2) + 1. */
    const eng_tensor_t *pa[64], *pb[64];
    int n = 0;
    pa[n] = &a->embed; pb[n++] = &b->embed;
    pa[n] = &a->final_norm; pb[n++] = &b->final_norm;
    for (int l = 0; l < 5; l++) {
        pa[n] = &a->layers[l].attn_norm; pb[n++] = &b->layers[l].attn_norm;
        pa[n] = &a->layers[l].ffn_norm; pb[n++] = &b->layers[l].ffn_norm;
        for (int k = ENG_V; k < ENG_NLIN; k++) { pa[n] = &a->layers[l].lin[k]; pb[n++] = &b->layers[l].lin[k]; }
    }
    for (int i = 0; i < n; i++) {
        cr_assert_eq(pa[i]->rows, pb[i]->rows, "%s", pb[i]->name);
        cr_assert_eq(pa[i]->cols, pb[i]->cols, "%s", pb[i]->name);
        cr_assert_eq(memcmp(pa[i]->data, pb[i]->data, eng_tensor_numel(pa[i]) * 4), 0, "%s vs %s", pa[i]->name,
                     pb[i]->name);
    }
    const int Dh = 8;
    for (int l = 0; l < 5; l++)
        for (int k = ENG_Q; k <= ENG_K; k++) {
            const eng_tensor_t *ta = &a->layers[l].lin[k], *tb = &b->layers[l].lin[k];
            cr_assert_eq(ta->rows, k == ENG_Q ? 64 : 32);
            cr_assert_eq(ta->rows, tb->rows); cr_assert_eq(ta->cols, 64); cr_assert_eq(tb->cols, 64);
            const float *fa = ta->data, *fb = tb->data;
            for (int r = 0; r < ta->rows; r++) {
                int h = r / Dh, j = r % Dh, src = h * Dh + (j < Dh / 2 ? 2 * j : 2 * (j - Dh / 2) + 1);
                cr_assert_eq(memcmp(fb + (size_t)r * 64, fa + (size_t)src * 64, 64 * 4), 0, "layer %d %s row %d", l,
                             eng_lin_short_name[k], r);
            }
            /* and the permutation matters: the unpermuted rows differ */
            cr_assert_neq(memcmp(fa + 64, fb + 64, 64 * 4), 0);
        }
    cr_assert_str_eq(a->layers[3].lin[ENG_UP].name, "w3[3]");
    cr_assert_str_eq(b->layers[3].lin[ENG_UP].name, "model.layers.3.mlp.up_proj.weight");
    cr_assert_not_null(strstr(b->layers[3].lin[ENG_UP].file, "model.safetensors"));
    cr_assert_not_null(strstr(b->dir, "stories260K-hf"));
    cr_assert_not_null(b->hf_config);
    eng_model_free(a);
    eng_model_free(b);
}

Test(model, hf_open_by_file_paths)
{
    eng_model_t *m;
    lrq_err_t e = {0};
    cr_assert_eq(eng_model_open(shared("models/stories260K-hf/config.json"), &m, &e), 0, "%s", e.msg);
    cr_assert_eq(m->cfg.n_layers, 5);
    eng_model_free(m);
    cr_assert_eq(eng_model_open(shared("models/stories260K-hf/model.safetensors"), &m, &e), 0, "%s", e.msg);
    cr_assert_eq(m->cfg.n_layers, 5);
    eng_model_free(m);
}

Test(model, llama2c_values_match_file_layout)
{
    /* independent read of w2[4][0][0..1] by offset arithmetic from SOURCE.md's layout */
    size_t n;
    uint8_t *raw = read_file(shared("models/stories260K/stories260K.bin"), &n);
    size_t D = 64, F = 172, L = 5, V = 512, KV = 32;
    size_t off = 28 + 4 * (V * D + L * D + L * D * D + 2 * L * KV * D + L * D * D + L * D + L * F * D + 4 * D * F);
    float ref[2];
    memcpy(ref, raw + off, 8);
    eng_model_t *m;
    lrq_err_t e = {0};
    cr_assert_eq(eng_model_open(shared("models/stories260K/stories260K.bin"), &m, &e), 0, "%s", e.msg);
    float *w = malloc(D * F * 4);
    cr_assert_eq(eng_tensor_to_f32(&m->layers[4].lin[ENG_DOWN], w, &e), 0);
    cr_assert_eq(m->layers[4].lin[ENG_DOWN].rows, 64);
    cr_assert_eq(m->layers[4].lin[ENG_DOWN].cols, 172);
    cr_assert_eq(w[0], ref[0]);
    cr_assert_eq(w[1], ref[1]);
    free(w);
    free(raw);
    eng_model_free(m);
}

/* ---------------------------------------------------------------- corrupted inputs (acceptance 4) */

Test(model, corrupt_truncated_safetensors)
{
    copy_truncated(shared("models/stories260K-hf/model.safetensors"), tpath("model.safetensors"), 100);
    size_t n;
    void *cfg = read_file(shared("models/stories260K-hf/config.json"), &n);
    write_file(tpath("config.json"), cfg, n);
    free(cfg);
    expect_open_fail(tmpdir, LRQ_EFORMAT, "out of range (data section is");
    expect_open_fail(tmpdir, LRQ_EFORMAT, "file truncated?");
    expect_open_fail(tmpdir, LRQ_EFORMAT, "model.safetensors: tensor '");
}

Test(model, corrupt_bogus_header_length)
{
    fx_t o = fx_default();
    fx_write(&o);
    size_t n;
    uint8_t *b = read_file(tpath("model.safetensors"), &n);
    uint64_t big = (uint64_t)n; /* past the end by 8 */
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(big >> (8 * i));
    write_file(tpath("model.safetensors"), b, n);
    expect_open_fail(tmpdir, LRQ_EFORMAT, "runs past end of file");
    uint64_t absurd = 1ull << 40;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(absurd >> (8 * i));
    write_file(tpath("model.safetensors"), b, n);
    expect_open_fail(tmpdir, LRQ_EFORMAT, "is absurd");
    write_file(tpath("model.safetensors"), b, 5);
    expect_open_fail(tmpdir, LRQ_EFORMAT, "too short for a safetensors header length");
    free(b);
}

Test(model, corrupt_header_not_json)
{
    lrq_err_t e = {0};
    cr_assert_eq(st_parse_str("{\"a\": [1, 2", 0, &e), LRQ_EFORMAT);
    cr_assert_not_null(strstr(e.msg, "mem.safetensors: header is not valid JSON"), "%s", e.msg);
    cr_assert_eq(st_parse_str("[1, 2, 3]", 0, &e), LRQ_EFORMAT);
    cr_assert_not_null(strstr(e.msg, "not a JSON object"), "%s", e.msg);
    cr_assert_eq(st_parse_str("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                              "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, &e), LRQ_EFORMAT);
    cr_assert_not_null(strstr(e.msg, "duplicate"), "%s", e.msg);
    cr_assert_eq(st_parse_str("{\"__metadata__\": 3}", 0, &e), LRQ_EFORMAT);
    cr_assert_not_null(strstr(e.msg, "__metadata__"), "%s", e.msg);
}

Test(model, corrupt_offsets_out_of_range)
{
    lrq_err_t e = {0};
    cr_assert_eq(st_parse_str("{\"w\":{\"dtype\":\"F32\",\"shape\":[1024],\"data_offsets\":[0,4096]}}", 256, &e),
                 LRQ_EFORMAT);
    cr_assert_not_null(strstr(e.msg, "tensor 'w': data_offsets [0, 4096] out of range (data section is 256 bytes"),
                       "%s", e.msg);
    cr_assert_eq(st_parse_str("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 256, &e),
                 LRQ_EFORMAT);
    cr_assert_not_null(strstr(e.msg, "begin > end"), "%s", e.msg);
    cr_assert_eq(st_parse_str("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 256, &e),
                 LRQ_EFORMAT);
    cr_assert_not_null(strstr(e.msg, "non-negative"), "%s", e.msg);
    cr_assert_eq(st_parse_str("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],"
                              "\"data_offsets\":[0,0]}}", 0, &e), LRQ_EFORMAT);
    cr_assert_not_null(strstr(e.msg, "overflows"), "%s", e.msg);
}

Test(model, corrupt_offsets_overlapping)
{
    lrq_err_t e = {0};
    cr_assert_eq(st_parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[0,256]},"
                              "\"b\":{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[128,384]}}", 512, &e),
                 LRQ_EFORMAT);
    cr_assert_not_null(strstr(e.msg, "tensor 'b': data_offsets [128, 384] overlap tensor 'a' [0, 256]"), "%s", e.msg);
    /* adjacent and zero-size tensors are fine */
    cr_assert_eq(st_parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[0,256]},"
                              "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[128,128]},"
                              "\"b\":{\"dtype\":\"F16\",\"shape\":[2,64],\"data_offsets\":[256,512]}}", 512, &e), 0,
                 "%s", e.msg);
}

Test(model, corrupt_size_and_alignment)
{
    lrq_err_t e = {0};
    cr_assert_eq(st_parse_str("{\"w\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,60]}}", 64, &e),
                 LRQ_EFORMAT);
    cr_assert_not_null(strstr(e.msg, "tensor 'w': data_offsets [0, 60] span 60 bytes but shape x F32 needs 64"), "%s",
                       e.msg);
    cr_assert_eq(st_parse_str("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[2,18]}}", 64, &e),
                 LRQ_EFORMAT);
    cr_assert_not_null(strstr(e.msg, "tensor 'w': data_offsets begin 2 misaligned for F32"), "%s", e.msg);
}

Test(model, corrupt_bad_dtype)
{
    lrq_err_t e = {0};
    cr_assert_eq(st_parse_str("{\"w\":{\"dtype\":\"F33\",\"shape\":[4],\"data_offsets\":[0,16]}}", 64, &e),
                 LRQ_EFORMAT);
    cr_assert_not_null(strstr(e.msg, "tensor 'w': unknown dtype 'F33'"), "%s", e.msg);
    cr_assert_eq(st_parse_str("{\"w\":{\"dtype\":7,\"shape\":[4],\"data_offsets\":[0,16]}}", 64, &e), LRQ_EFORMAT);
    cr_assert_not_null(strstr(e.msg, "non-string \"dtype\""), "%s", e.msg);
    /* a valid safetensors dtype that is not a weight dtype, on a model tensor */
    fx_t o = fx_default();
    o.dtype_of_q0 = "I32";
    fx_write(&o);
    expect_open_fail(tmpdir, LRQ_EFORMAT,
                     "tensor 'model.layers.0.self_attn.q_proj.weight': dtype I32 not supported for weights");
}

Test(model, corrupt_nan_weight)
{
    fx_t o = fx_default();
    o.nan_name = "model.layers.1.mlp.up_proj.weight";
    o.nan_index = 77; /* row 4, col 13 of (24, 16) */
    fx_write(&o);
    eng_model_t *m;
    lrq_err_t e = {0};
    cr_assert_eq(eng_model_open(tmpdir, &m, &e), 0, "%s", e.msg); /* open does not scan */
    cr_assert_eq(eng_model_check_finite(m, &e), LRQ_ENUMERIC);
    cr_assert_not_null(strstr(e.msg, "model.safetensors: tensor 'model.layers.1.mlp.up_proj.weight': non-finite "
                                     "value NaN at flat index 77 (row 4, col 13)"), "%s", e.msg);
    float *buf = malloc(24 * 16 * 4);
    memset(&e, 0, sizeof e);
    cr_assert_eq(eng_tensor_to_f32(&m->layers[1].lin[ENG_UP], buf, &e), LRQ_ENUMERIC);
    cr_assert_not_null(strstr(e.msg, "flat index 77"), "%s", e.msg);
    cr_assert_eq(eng_tensor_to_f32(&m->layers[0].lin[ENG_UP], buf, &e), 0);
    free(buf);
    eng_model_free(m);
}

Test(model, corrupt_wrong_shape_vs_config)
{
    fx_t o = fx_default();
    o.bad_shape = "model.layers.1.self_attn.k_proj.weight";
    fx_write(&o);
    expect_open_fail(tmpdir, LRQ_EFORMAT,
                     "model.safetensors: tensor 'model.layers.1.self_attn.k_proj.weight': shape [16, 16] inconsistent "
                     "with config.json (expected [8, 16])");
    o = fx_default();
    o.cfg_extra = "\"head_dim\": 8,"; /* H*Dh = 32 != D: q_proj must be (32, 16) */
    fx_write(&o);
    expect_open_fail(tmpdir, LRQ_EFORMAT,
                     "tensor 'model.layers.0.self_attn.q_proj.weight': shape [16, 16] inconsistent with config.json "
                     "(expected [32, 16])");
}

Test(model, corrupt_missing_tensor)
{
    fx_t o = fx_default();
    o.skip = "model.layers.1.self_attn.v_proj.weight";
    fx_write(&o);
    expect_open_fail(tmpdir, LRQ_ENOTFOUND, "model.safetensors: tensor 'model.layers.1.self_attn.v_proj.weight' missing");
    o = fx_default();
    o.skip = "lm_head.weight";
    fx_write(&o);
    expect_open_fail(tmpdir, LRQ_ENOTFOUND, "tensor 'lm_head.weight' missing");
    o.tie = 1; /* tied: lm_head is the embedding */
    fx_write(&o);
    eng_model_t *m;
    lrq_err_t e = {0};
    cr_assert_eq(eng_model_open(tmpdir, &m, &e), 0, "%s", e.msg);
    cr_assert_eq(m->lm_head.data, m->embed.data);
    eng_model_free(m);
}

Test(model, corrupt_truncated_llama2c)
{
    copy_truncated(shared("models/stories260K/stories260K.bin"), tpath("m.bin"), 4);
    expect_open_fail(tpath("m.bin"), LRQ_EFORMAT, "m.bin: truncated llama2.c file");
    expect_open_fail(tpath("m.bin"), LRQ_EFORMAT, "implies 1056540 bytes, file has 1056536");
    copy_truncated(shared("models/stories260K/stories260K.bin"), tpath("m.bin"), 1056540 - 20);
    expect_open_fail(tpath("m.bin"), LRQ_EFORMAT, "header alone needs 28");
    /* bogus header: negative / zero fields */
    int32_t h[7] = {64, 172, 0, 8, 4, 512, 512};
    write_file(tpath("z.bin"), h, sizeof h);
    expect_open_fail(tpath("z.bin"), LRQ_EFORMAT, "n_layers = 0 out of range");
    int32_t h2[7] = {64, 172, 5, 8, 3, 512, 512};
    write_file(tpath("z.bin"), h2, sizeof h2);
    expect_open_fail(tpath("z.bin"), LRQ_EFORMAT, "not a multiple of n_kv_heads");
    /* extra bytes are refused too */
    size_t n;
    uint8_t *b = read_file(shared("models/stories260K/stories260K.bin"), &n);
    uint8_t *b2 = calloc(1, n + 4);
    memcpy(b2, b, n);
    write_file(tpath("big.bin"), b2, n + 4);
    expect_open_fail(tpath("big.bin"), LRQ_EFORMAT, "oversized llama2.c file");
    free(b);
    free(b2);
}

Test(model, llama2c_unshared_classifier)
{
    /* tiny llama2.c file with negative vocab: wcls follows the freq_cis tables */
    int32_t h[7] = {8, 12, 1, 2, 1, -10, 4};
    size_t D = 8, F = 12, V = 10, S = 4, Dh = 4, KV = 4;
    size_t nfl = V * D + D + D * D + 2 * KV * D + D * D + D + 3 * F * D + D + S * Dh + V * D;
    uint8_t *b = malloc(28 + 4 * nfl);
    memcpy(b, h, 28);
    float *f = (float *)(b + 28);
    for (size_t i = 0; i < nfl; i++) f[i] = (float)i;
    write_file(tpath("u.bin"), b, 28 + 4 * nfl);
    eng_model_t *m;
    lrq_err_t e = {0};
    cr_assert_eq(eng_model_open(tpath("u.bin"), &m, &e), 0, "%s", e.msg);
    cr_assert_eq(m->cfg.tie_embeddings, 0);
    cr_assert_eq(m->cfg.vocab_size, 10);
    cr_assert_eq(m->cfg.n_kv_heads, 1);
    cr_assert_neq(m->lm_head.data, m->embed.data);
    cr_assert_eq(((const float *)m->lm_head.data)[0], (float)(nfl - V * D));
    cr_assert_eq(((const float *)m->layers[0].lin[ENG_K].data)[0], (float)(V * D + D + D * D));
    cr_assert_eq(m->layers[0].lin[ENG_K].rows, 4);
    cr_assert_eq(eng_model_weight_bytes(m), 4 * (nfl - S * Dh));
    eng_model_free(m);
    /* one float missing: the negative vocab's wcls is part of the expected size */
    write_file(tpath("u.bin"), b, 28 + 4 * nfl - 4);
    expect_open_fail(tpath("u.bin"), LRQ_EFORMAT, "vocab_size -10");
    free(b);
}

Test(model, corrupt_bad_config_json)
{
    fx_t o = fx_default();
    fx_write(&o);
    write_file(tpath("config.json"), "{\"hidden_size\": 16,", 19);
    expect_open_fail(tmpdir, LRQ_EFORMAT, "config.json: not valid JSON");
    write_file(tpath("config.json"), "[1]", 3);
    expect_open_fail(tmpdir, LRQ_EFORMAT, "config.json: not a JSON object");
    const char *c1 = "{\"intermediate_size\":24,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":32}";
    write_file(tpath("config.json"), c1, strlen(c1));
    expect_open_fail(tmpdir, LRQ_EFORMAT, "config.json: missing required key \"hidden_size\"");
    const char *c2 = "{\"hidden_size\":\"16\",\"intermediate_size\":24,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                     "\"vocab_size\":32}";
    write_file(tpath("config.json"), c2, strlen(c2));
    expect_open_fail(tmpdir, LRQ_EFORMAT, "\"hidden_size\" must be an integer");
    const char *c3 = "{\"model_type\":\"gpt2\",\"hidden_size\":16}";
    write_file(tpath("config.json"), c3, strlen(c3));
    expect_open_fail(tmpdir, LRQ_EUNSUPP, "model_type \"gpt2\" is not supported");
    const char *c4 = "{\"architectures\":[\"Qwen2ForCausalLM\"]}";
    write_file(tpath("config.json"), c4, strlen(c4));
    expect_open_fail(tmpdir, LRQ_EUNSUPP, "architecture \"Qwen2ForCausalLM\" is not supported");
    const char *c5 = "{\"hidden_size\":16,\"intermediate_size\":24,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                     "\"num_key_value_heads\":3,\"vocab_size\":32}";
    write_file(tpath("config.json"), c5, strlen(c5));
    expect_open_fail(tmpdir, LRQ_EFORMAT, "n_heads 4 is not a multiple of n_kv_heads 3");
    const char *c6 = "{\"hidden_size\":16,\"intermediate_size\":24,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                     "\"vocab_size\":32,\"rope_scaling\":{\"type\":\"llama3\"}}";
    write_file(tpath("config.json"), c6, strlen(c6));
    expect_open_fail(tmpdir, LRQ_EUNSUPP, "rope_scaling is not supported");
    unlink(tpath("config.json"));
    expect_open_fail(tmpdir, LRQ_ENOTFOUND, "config.json: not found");
}

Test(model, missing_files)
{
    expect_open_fail(tpath("nope.bin"), LRQ_ENOTFOUND, "nope.bin");
    fx_t o = fx_default();
    fx_write(&o);
    unlink(tpath("model.safetensors"));
    expect_open_fail(tmpdir, LRQ_ENOTFOUND, "model.safetensors: not found");
}

Test(model, f32_misaligned_in_memory_is_copied)
{
    fx_t o = fx_default();
    o.mod = 2; /* data section starts at an address ≡ 2 (mod 4) */
    fx_write(&o);
    eng_model_t *m;
    lrq_err_t e = {0};
    cr_assert_eq(eng_model_open(tmpdir, &m, &e), 0, "%s", e.msg);
    const eng_tensor_t *t = &m->layers[1].lin[ENG_DOWN];
    cr_assert_eq((uintptr_t)t->data & 3, 0);
    for (size_t i = 0; i < eng_tensor_numel(t); i++)
        cr_assert_eq(((const float *)t->data)[i], fx_value(t->name, i));
    /* releasing pages must never touch an owned copy */
    cr_assert_eq(eng_model_check_finite(m, &e), 0, "%s", e.msg);
    eng_model_release(m, t);
    for (size_t i = 0; i < eng_tensor_numel(t); i++)
        cr_assert_eq(((const float *)t->data)[i], fx_value(t->name, i));
    eng_model_free(m);
}

/* ---------------------------------------------------------------- sharded + dtypes via tools/mkmodel.py */

static void run_mkmodel(const char *args)
{
    const char *src = getenv("LRQ_SRCDIR");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tools/mkmodel.py %s", src ? src : ".", args);
    int rc = system(cmd);
    cr_assert_eq(rc, 0, "command failed: %s", cmd);
}

/* Every tensor of m, converted to f32, equals the F32 reference file written by mkmodel --ref. */
static void check_against_ref(const eng_model_t *m, const char *ref_path, eng_dtype_t want)
{
    eng_st_file_t ref;
    lrq_err_t e = {0};
    cr_assert_eq(eng_st_open(&ref, ref_path, &e), 0, "%s", e.msg);
    const eng_tensor_t *all[256];
    int n = 0;
    all[n++] = &m->embed;
    all[n++] = &m->final_norm;
    all[n++] = &m->lm_head;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        all[n++] = &m->layers[l].attn_norm;
        all[n++] = &m->layers[l].ffn_norm;
        for (int k = 0; k < ENG_NLIN; k++) all[n++] = &m->layers[l].lin[k];
    }
    size_t checked = 0, nonzero = 0;
    for (int i = 0; i < n; i++) {
        const eng_tensor_t *t = all[i];
        cr_assert_eq(t->dtype, want, "%s", t->name);
        const eng_st_entry_t *re = eng_st_find(&ref, t->name);
        cr_assert_not_null(re, "%s not in ref", t->name);
        cr_assert_eq(re->end - re->begin, eng_tensor_numel(t) * 4);
        float *x = malloc(eng_tensor_numel(t) * 4);
        cr_assert_eq(eng_tensor_to_f32(t, x, &e), 0, "%s", e.msg);
        const uint8_t *rp = ref.data + re->begin;
        for (size_t k = 0; k < eng_tensor_numel(t); k++) {
            float r;
            memcpy(&r, rp + 4 * k, 4);
            cr_assert_eq(x[k], r, "%s[%zu]: %.9g vs %.9g", t->name, k, x[k], r);
            nonzero += x[k] != 0;
        }
        checked += eng_tensor_numel(t);
        free(x);
    }
    cr_assert_gt(nonzero, checked / 2);
    eng_st_close(&ref);
}

Test(model, mkmodel_bf16_f16_f32_convert_exactly)
{
    const char *dts[3] = {"bf16", "f16", "f32"};
    const eng_dtype_t want[3] = {ENG_BF16, ENG_F16, ENG_F32};
    for (int i = 0; i < 3; i++) {
        char args[1024];
        snprintf(args, sizeof args, "--out %s/%s --hidden 64 --ffn 96 --layers 2 --heads 4 --kv-heads 2 "
                 "--vocab 128 --dtype %s --seed 7 --ref %s/%s.ref.safetensors", tmpdir, dts[i], dts[i], tmpdir, dts[i]);
        run_mkmodel(args);
        eng_model_t *m;
        lrq_err_t e = {0};
        cr_assert_eq(eng_model_open(tpath(dts[i]), &m, &e), 0, "%s", e.msg);
        cr_assert_eq(m->dtype, want[i]);
        cr_assert_eq(m->cfg.n_kv_heads, 2);
        cr_assert_eq(m->cfg.head_dim, 16);
        cr_assert_eq(m->cfg.tie_embeddings, 0);
        cr_assert_eq(eng_model_weight_bytes(m),
                     (size_t)(2 * 128 * 64 + 64 + 2 * (2 * 64 + 2 * 64 * 64 + 2 * 32 * 64 + 3 * 96 * 64)) *
                         (i < 2 ? 2 : 4));
        char ref[512];
        snprintf(ref, sizeof ref, "%s/%s.ref.safetensors", tmpdir, dts[i]);
        check_against_ref(m, ref, want[i]);
        cr_assert_eq(eng_model_check_finite(m, &e), 0, "%s", e.msg);
        eng_model_free(m);
    }
    /* the bf16 values are the f32 values rounded: |bf16 - f32| <= 2^-8 |f32| */
    eng_model_t *a, *b;
    lrq_err_t e = {0};
    cr_assert_eq(eng_model_open(tpath("bf16"), &a, &e), 0);
    cr_assert_eq(eng_model_open(tpath("f32"), &b, &e), 0);
    size_t nn = eng_tensor_numel(&a->layers[1].lin[ENG_GATE]);
    float *x = malloc(nn * 4), *y = malloc(nn * 4);
    cr_assert_eq(eng_tensor_to_f32(&a->layers[1].lin[ENG_GATE], x, &e), 0);
    cr_assert_eq(eng_tensor_to_f32(&b->layers[1].lin[ENG_GATE], y, &e), 0);
    for (size_t k = 0; k < nn; k++) cr_assert_leq(fabsf(x[k] - y[k]), fabsf(y[k]) * (1.0f / 256) + 1e-30f);
    free(x);
    free(y);
    eng_model_free(a);
    eng_model_free(b);
}

Test(model, mkmodel_sharded_index_equals_single_file)
{
    char args[1024];
    snprintf(args, sizeof args, "--out %s/sh --hidden 32 --ffn 64 --layers 3 --heads 4 --vocab 64 --dtype bf16 "
             "--seed 3 --shards 3 --ref %s/sh.ref.safetensors", tmpdir, tmpdir);
    run_mkmodel(args);
    eng_model_t *m;
    lrq_err_t e = {0};
    cr_assert_eq(eng_model_open(tpath("sh"), &m, &e), 0, "%s", e.msg);
    cr_assert_eq(m->cfg.n_layers, 3);
    check_against_ref(m, tpath("sh.ref.safetensors"), ENG_BF16);
    cr_assert_not_null(strstr(m->layers[0].lin[ENG_Q].file, "-of-00003.safetensors"));
    eng_model_free(m);
    /* opening via the index path works too */
    cr_assert_eq(eng_model_open(tpath("sh/model.safetensors.index.json"), &m, &e), 0, "%s", e.msg);
    eng_model_free(m);
    /* a shard named by the index but absent */
    cr_assert_eq(unlink(tpath("sh/model-00002-of-00003.safetensors")), 0);
    expect_open_fail(tpath("sh"), LRQ_ENOTFOUND, "model-00002-of-00003.safetensors");
    /* an index that escapes the directory */
    const char *idx = "{\"weight_map\":{\"model.norm.weight\":\"../x.safetensors\"}}";
    write_file(tpath("sh/model.safetensors.index.json"), idx, strlen(idx));
    expect_open_fail(tpath("sh"), LRQ_EFORMAT, "bad shard file name");
    /* index maps a tensor to a shard that lacks it */
    const char *idx2 = "{\"weight_map\":{\"model.embed_tokens.weight\":\"model-00003-of-00003.safetensors\"}}";
    write_file(tpath("sh/model.safetensors.index.json"), idx2, strlen(idx2));
    expect_open_fail(tpath("sh"), LRQ_ENOTFOUND, "tensor 'model.embed_tokens.weight' missing (the index maps it");
}

Test(model, half_conversions_match_closed_form)
{
    /* a few exact values: 1.0, -2.0, 0.5, max f16, smallest f16 subnormal, bf16 1/3 rounding */
    cr_assert_eq(eng_f16_to_f32(0x3c00), 1.0f);
    cr_assert_eq(eng_f16_to_f32(0xc000), -2.0f);
    cr_assert_eq(eng_f16_to_f32(0x3800), 0.5f);
    cr_assert_eq(eng_f16_to_f32(0x7bff), 65504.0f);
    cr_assert_eq(eng_f16_to_f32(0x0001), ldexpf(1.0f, -24));
    cr_assert(isinf(eng_f16_to_f32(0x7c00)));
    cr_assert(isnan(eng_f16_to_f32(0x7e00)));
    cr_assert_eq(eng_bf16_to_f32(0x3f80), 1.0f);
    cr_assert_eq(eng_f32_to_bf16(1.0f / 3.0f), 0x3eab); /* 0x3eaaaaab rounds up */
    cr_assert_eq(eng_f32_to_f16(65504.0f), 0x7bff);
}

/* ---------------------------------------------------------------- robustness (cheap in-suite fuzzing) */

/* Random byte flips, length-field edits and truncations of a real header: the parser
 * must return 0 or a negative code with a message, never crash (run under ASan in CI). */
Test(model, st_parse_survives_mutations)
{
    size_t n;
    uint8_t *orig = read_file(shared("models/stories260K-hf/model.safetensors"), &n);
    size_t hl = 8 + 4936 + 64; /* header plus a little data; offsets past it test range checks */
    uint8_t *b = malloc(hl);
    unsigned seed = 42;
    int ok = 0, bad = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(b, orig, hl);
        size_t len = hl;
        int nmut = 1 + it % 4;
        for (int k = 0; k < nmut; k++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = seed >> 8;
            switch (r % 4) {
            case 0: b[8 + (r / 4) % 4936] = (uint8_t)(seed >> 3); break;              /* any byte */
            case 1: b[8 + (r / 4) % 4936] = "0123456789[]{},:\"-e. "[(r / 8) % 21]; break; /* JSON-ish */
            case 2: b[(r / 4) % 8] = (uint8_t)(seed >> 5); break;                      /* length field */
            case 3: len = (r / 4) % hl; break;                                          /* truncation */
            }
        }
        eng_st_file_t f;
        lrq_err_t e = {0};
        int rc = eng_st_parse(&f, b, len, "fuzz", &e);
        if (rc == 0) {
            for (int i = 0; i < f.n_entries; i++) {
                cr_assert_leq(f.entries[i].end, f.data_len);
                cr_assert(eng_st_find(&f, f.entries[i].name) == &f.entries[i]);
            }
            eng_st_close(&f);
            ok++;
        } else {
            cr_assert_lt(rc, 0);
            cr_assert_gt(strlen(e.msg), 5);
            bad++;
        }
    }
    cr_assert_gt(bad, 1000); /* the mutations do hit */
    free(b);
    free(orig);
}

Test(model, llama2c_random_headers_refused_cleanly)
{
    unsigned seed = 7;
    for (int it = 0; it < 200; it++) {
        int32_t h[7];
        for (int k = 0; k < 7; k++) {
            seed = seed * 1103515245u + 12345u;
            int r = (int)(seed >> 4);
            h[k] = it % 2 ? r : (r % 130) - 2; /* absurd, or small (incl. 0/negative) */
        }
        write_file(tpath("r.bin"), h, sizeof h);
        eng_model_t *m;
        lrq_err_t e = {0};
        int rc = eng_model_open(tpath("r.bin"), &m, &e);
        cr_assert_eq(rc, LRQ_EFORMAT, "%s", e.msg);
        cr_assert_not_null(strstr(e.msg, "r.bin"));
    }
}
