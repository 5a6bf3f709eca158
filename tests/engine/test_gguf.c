/* test_gguf.c — evaluated = exported (stored-scale rounding), the GGUF exporter and the in-job verifiers.
 *
 * (a) eng_quant_store_scale against a brute force over every positive finite binary16 (and, for
 *     BF16, bfloat16) value: the result meets the constraints and no value that meets them is
 *     nearer to s. Exact comparison: both sides are exact enumerations.
 * (b) LRQ/FlexRound freeze at reset (S = 0) with a stored type reproduces RTN with the same type bit
 *     for bit (codes and scales), and its scales meet the type: the shared init rounds, freeze
 *     rounds again before choosing codes.
 * (c) GGUF of a synthetic bf16 HF model (tools/mkmodel.py) and of stories260K (llama2.c), for
 *     Q4_0 / Q4_1 / Q8_0 / F16 / auto: tests/engine/gguf_decode.py (numpy, written from the GGUF spec,
 *     reads the file itself, undoes the q/k order) dequantizes every linear bit-equal to s·(q − z)
 *     in float32 (F16: to its binary16 rounding). Metadata key types (u32 hparams, f32 eps),
 *     tokenizer pieces ("▁" for spaces, <s>, byte pieces as type 6). eng_gguf_verify passes, and
 *     fails naming the tensor when one code is changed.
 * (d) gptq / hf exports of an RTN model quantized with the gptq stored type: eng_export_verify_gptq
 *     and eng_export_verify_hf pass; with fp32 scales (the former behaviour) verify_gptq fails,
 *     naming the tensor — the bug this fixes.
 * (e) refusals: a vocabulary without byte pieces, q4_0 for asymmetric weights, group 16. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eng_export.h"
#include "eng_gguf.h"
#include "eng_half.h"
#include "eng_model.h"
#include "eng_quant.h"
#include "eng_tok.h"

#define CHECK(cond, ...) do { if (!(cond)) cr_assert_fail(__VA_ARGS__); } while (0)

static char g_tmp[256];
static void tmp_setup(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/lrq-test-gguf-XXXXXX");
    cr_assert_not_null(mkdtemp(g_tmp));
}
static void tmp_teardown(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (g_tmp[0] && system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
}
static const char *srcdir(void) { const char *s = getenv("LRQ_SRCDIR"); return s ? s : "."; }
static void shared_path(char *buf, size_t cap, const char *rel)
{
    const char *s = getenv("LRQ_SHARED");
    if (s) snprintf(buf, cap, "%s/%s", s, rel);
    else snprintf(buf, cap, "%s/../shared/%s", srcdir(), rel);
}
static int have(const char *p) { struct stat st; return stat(p, &st) == 0; }

static int run_capture(const char *cmd, char *out, size_t cap)
{
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---------------------------------------------------------------- (a) scale rounding */

static int meets(float s, float z, int store)
{
    if ((store & ENG_SCALE_F16) && eng_f16_to_f32(eng_f32_to_f16(s)) != s) return 0;
    if ((store & ENG_SCALE_BF16) && eng_bf16_to_f32(eng_f32_to_bf16(s)) != s) return 0;
    if (store & ENG_SCALE_ZF16) {
        double p = (double)s * z;
        if ((double)(float)p != p || eng_f16_to_f32(eng_f32_to_f16((float)p)) != (float)p) return 0;
    }
    return 1;
}

Test(scale_store, nearest_valid_value_by_brute_force)
{
    static const int stores[] = {ENG_SCALE_F16, ENG_SCALE_F16 | ENG_SCALE_ZF16, ENG_SCALE_BF16,
                                 ENG_SCALE_F16 | ENG_SCALE_BF16};
    uint64_t rng = 11;
    for (int it = 0; it < 400; it++) {
        float s = expf(-2.0f - 7.0f * eng_rng_uniform(&rng)); /* 1e-4 .. 0.14: LLM weight scales */
        float z = (float)(eng_rng_next(&rng) % 16);
        for (size_t si = 0; si < sizeof stores / sizeof stores[0]; si++) {
            int st = stores[si];
            float r = eng_quant_store_scale(s, z, st);
            CHECK(meets(r, z, st), "store %d: %.9g -> %.9g does not meet the type", st, (double)s, (double)r);
            CHECK(!eng_quant_scale_ok(r, z, st), "eng_quant_scale_ok disagrees");
            double best = INFINITY;
            /* every positive finite candidate of the narrowest type involved */
            int bf = (st & ENG_SCALE_BF16) != 0;
            for (uint32_t h = 1; h < (bf ? 0x7f80u : 0x7c00u); h++) {
                float c = bf ? eng_bf16_to_f32((uint16_t)h) : eng_f16_to_f32((uint16_t)h);
                if (meets(c, z, st) && fabs((double)c - s) < best) best = fabs((double)c - s);
            }
            CHECK(fabs((double)r - s) == best, "store %d: %.9g -> %.9g, but a value %.3g away meets it", st, (double)s,
                  (double)r, best);
        }
    }
    cr_assert_eq(eng_quant_store_scale(0.3f, 3, 0), 0.3f, "no store: unchanged");
    /* an all-zero group's floor scale 1e-8 is below binary16's range: the smallest positive one */
    for (size_t si = 0; si < sizeof stores / sizeof stores[0]; si++) {
        float r = eng_quant_store_scale(1e-8f, 8, stores[si]);
        cr_assert(r > 0 && meets(r, 8, stores[si]), "store %d: 1e-8 -> %g", stores[si], (double)r);
    }
}

/* ---------------------------------------------------------------- (b) freeze == RTN at reset */

Test(scale_store, lrq_freeze_at_reset_equals_rtn)
{
    const int m = 48, n = 96;
    float *W = malloc((size_t)m * n * sizeof *W);
    uint64_t rng = 5;
    for (int i = 0; i < m * n; i++) W[i] = (eng_rng_uniform(&rng) - 0.5f) * 0.2f;
    static const int stores[] = {ENG_SCALE_F16, ENG_SCALE_F16 | ENG_SCALE_ZF16, ENG_SCALE_BF16};
    for (int si = 0; si < 3; si++)
        for (int full = 0; full < 2; full++) {
            eng_qcfg_t cfg = {.bits = 4, .group_size = 32, .symmetric = 0, .init = ENG_INIT_MSE, .scale_store = stores[si]};
            eng_qlinear_t a, b;
            lrq_err_t err = {0};
            cr_assert_eq(eng_qlinear_init(&a, m, n, &cfg, &err), 0);
            cr_assert_eq(eng_qlinear_init(&b, m, n, &cfg, &err), 0);
            eng_quant_rtn(NULL, W, &cfg, &a);
            eng_lrq_t q;
            cr_assert_eq(eng_lrq_init(&q, W, m, n, 8, full, &cfg, &err), 0, "%s", err.msg);
            size_t np = eng_lrq_param_count(m, n, q.k, q.G, q.full);
            float *p = calloc(np, sizeof *p);
            eng_lrq_bind(&q, p, NULL);
            uint64_t r2 = 1;
            eng_lrq_reset(&q, &cfg, &r2);
            eng_lrq_freeze(&q, &b);
            for (int i = 0; i < m * a.G; i++) {
                CHECK(a.scale[i] == b.scale[i], "store %d: scale %d: rtn %.9g, freeze %.9g", stores[si], i,
                      (double)a.scale[i], (double)b.scale[i]);
                CHECK(meets(b.scale[i], b.zero[i], stores[si]), "freeze scale does not meet the type");
            }
            CHECK(memcmp(a.q, b.q, (size_t)m * n) == 0, "store %d full %d: codes differ", stores[si], full);
            eng_lrq_close(&q);
            free(p);
            eng_qlinear_close(&a);
            eng_qlinear_close(&b);
        }
    free(W);
}

/* ---------------------------------------------------------------- helpers for models */

static eng_model_t *open_model(const char *path)
{
    eng_model_t *m = NULL;
    lrq_err_t err = {0};
    cr_assert_eq(eng_model_open(path, &m, &err), 0, "%s: %s", path, err.msg);
    return m;
}

static eng_tok_t *open_tok(const char *rel)
{
    char p[512];
    shared_path(p, sizeof p, rel);
    eng_tok_t *t = NULL;
    lrq_err_t err = {0};
    cr_assert_eq(eng_tok_load(p, &t, &err), 0, "%s: %s", p, err.msg);
    return t;
}

static eng_qlinear_t *quantize(const eng_model_t *m, int bits, int gs, int sym, int store)
{
    int L = m->cfg.n_layers;
    eng_qlinear_t *ql = calloc((size_t)L * ENG_NLIN, sizeof *ql);
    for (int l = 0; l < L; l++)
        for (int k = 0; k < ENG_NLIN; k++) {
            const eng_tensor_t *t = &m->layers[l].lin[k];
            float *W = malloc(eng_tensor_numel(t) * sizeof *W);
            lrq_err_t err = {0};
            cr_assert_eq(eng_tensor_to_f32(t, W, &err), 0);
            eng_qcfg_t qc = {.bits = bits, .group_size = gs, .symmetric = sym, .init = ENG_INIT_MINMAX, .scale_store = store};
            cr_assert_eq(eng_qlinear_init(&ql[l * ENG_NLIN + k], (int)t->rows, (int)t->cols, &qc, &err), 0);
            eng_quant_rtn(NULL, W, &qc, &ql[l * ENG_NLIN + k]);
            free(W);
        }
    return ql;
}

static void free_ql(eng_qlinear_t *ql, int n)
{
    for (int i = 0; i < n; i++) eng_qlinear_close(&ql[i]);
    free(ql);
}

static void dump_ref(const eng_model_t *m, const eng_qlinear_t *ql, const char *dir)
{
    mkdir(dir, 0755);
    for (int i = 0; i < m->cfg.n_layers * ENG_NLIN; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%d.%d.f32", dir, i / ENG_NLIN, i % ENG_NLIN);
        size_t n = (size_t)ql[i].m * ql[i].n;
        float *D = malloc(n * sizeof *D);
        eng_qlinear_dequant(&ql[i], D);
        FILE *f = fopen(p, "wb");
        cr_assert(f && fwrite(D, 4, n, f) == n);
        fclose(f);
        free(D);
    }
}

/* Export, decode independently, verify in-engine; returns the decoder's JSON. */
static json_t *gguf_roundtrip(const eng_model_t *m, const eng_tok_t *tok, const eng_qlinear_t *ql, eng_gguf_req_t req,
                              const char *tag)
{
    char out[512], ref[512], gg[600], cmd[2048], buf[65536];
    snprintf(out, sizeof out, "%s/%s", g_tmp, tag);
    snprintf(ref, sizeof ref, "%s/%s.ref", g_tmp, tag);
    eng_qsource_t qs;
    eng_qsource_array(&qs, ql);
    lrq_err_t err = {0};
    json_t *info = NULL;
    cr_assert_eq(eng_export_gguf(m, tok, &qs, req, out, &info, &err), 0, "%s: %s", tag, err.msg);
    json_decref(info);
    snprintf(gg, sizeof gg, "%s/model.gguf", out);
    cr_assert_eq(eng_gguf_verify(gg, m, &qs, &err), 0, "%s: verify: %s", tag, err.msg);
    dump_ref(m, ql, ref);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/engine/gguf_decode.py' '%s' '%s' %s", srcdir(), gg, ref,
             m->cfg.rope == ENG_ROPE_HALF ? "half" : "interleaved");
    int rc = run_capture(cmd, buf, sizeof buf);
    cr_assert_eq(rc, 0, "%s: independent decoder: %s", tag, buf);
    json_error_t je;
    json_t *j = json_loads(buf, 0, &je);
    cr_assert_not_null(j, "%s: %s", tag, buf);
    /* hparams are u32 where llama.cpp checks u32, epsilons f32 */
    const char *u32[] = {"llama.context_length", "llama.embedding_length", "llama.block_count",
                         "llama.feed_forward_length", "llama.attention.head_count", "llama.attention.head_count_kv",
                         "llama.rope.dimension_count", "general.file_type", "general.quantization_version",
                         "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"};
    json_t *ua = json_object_get(j, "u32"), *fa = json_object_get(j, "f32");
    for (size_t i = 0; i < sizeof u32 / sizeof u32[0]; i++) {
        int found = 0;
        for (size_t k = 0; k < json_array_size(ua); k++) found |= !strcmp(json_string_value(json_array_get(ua, k)), u32[i]);
        CHECK(found, "%s: %s is not a u32", tag, u32[i]);
    }
    int eps = 0;
    for (size_t k = 0; k < json_array_size(fa); k++)
        eps |= !strcmp(json_string_value(json_array_get(fa, k)), "llama.attention.layer_norm_rms_epsilon");
    CHECK(eps, "%s: rms epsilon is not f32", tag);
    cr_assert_str_eq(json_string_value(json_object_get(j, "arch")), "llama");
    cr_assert_str_eq(json_string_value(json_object_get(j, "tok_model")), "llama");
    cr_assert_eq(json_integer_value(json_object_get(j, "tokens")), m->cfg.vocab_size);
    json_t *t0 = json_object_get(j, "tok0");
    cr_assert_str_eq(json_string_value(json_array_get(t0, 1)), "<s>");
    cr_assert_str_eq(json_string_value(json_array_get(t0, 2)), "</s>");
    cr_assert_str_eq(json_string_value(json_array_get(t0, 3)), "<0x00>");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "token_type_counts"), "6")), 256, "byte pieces");
    cr_assert_eq(json_array_size(json_object_get(j, "space_piece")), 1, "spaces are written as U+2581");
    return j;
}

static long type_count(json_t *j, int ggml)
{
    char k[8];
    snprintf(k, sizeof k, "%d", ggml);
    return (long)json_integer_value(json_object_get(json_object_get(j, "types"), k));
}

static void make_synth(const char *dir)
{
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/tools/mkmodel.py' --out '%s' --hidden 128 --ffn 256 --layers 2 --heads 4 "
             "--kv-heads 2 --vocab 512 --dtype bf16 --seed 7", srcdir(), dir);
    cr_assert_eq(run_capture(cmd, out, sizeof out), 0, "mkmodel.py: %s", out);
}

/* ---------------------------------------------------------------- (c) GGUF */

Test(gguf, synthetic_hf_bf16_every_block_type, .init = tmp_setup, .fini = tmp_teardown, .timeout = 300)
{
    char p[512], md[600];
    shared_path(p, sizeof p, "models/stories260K/tok512.bin");
    if (!have(p)) cr_skip_test("shared tokenizer not found");
    snprintf(md, sizeof md, "%s/synth", g_tmp);
    make_synth(md);
    eng_model_t *m = open_model(md);
    eng_tok_t *tok = open_tok("models/stories260K/tok512.bin");
    struct { int bits, gs, sym; eng_gguf_req_t req; int type; const char *tag; } cases[] = {
        {4, 32, 1, ENG_GGUF_Q4_0, ENG_GGML_Q4_0, "q4_0"},
        {4, 64, 0, ENG_GGUF_Q4_1, ENG_GGML_Q4_1, "q4_1_g64"},
        {4, 0, 1, ENG_GGUF_Q4_1, ENG_GGML_Q4_1, "q4_1_sym_pc"},
        {8, 32, 1, ENG_GGUF_Q8_0, ENG_GGML_Q8_0, "q8_0"},
        {8, 32, 0, ENG_GGUF_AUTO, ENG_GGML_F32, "auto_8asym_f32"},
        {3, 32, 0, ENG_GGUF_F16, ENG_GGML_F16, "f16"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int store = eng_gguf_scale_store(cases[c].req, cases[c].bits, cases[c].sym);
        eng_qlinear_t *ql = quantize(m, cases[c].bits, cases[c].gs, cases[c].sym, store);
        json_t *j = gguf_roundtrip(m, tok, ql, cases[c].req, cases[c].tag);
        cr_assert_eq(type_count(j, cases[c].type), 2 * ENG_NLIN, "%s: every linear as %s", cases[c].tag,
                     eng_ggml_type_name(cases[c].type));
        json_decref(j);
        free_ql(ql, 2 * ENG_NLIN);
    }
    eng_tok_free(tok);
    eng_model_free(m);
}

Test(gguf, stories260K_llama2c_and_a_wrong_code_is_caught, .init = tmp_setup, .fini = tmp_teardown, .timeout = 300)
{
    char p[512];
    shared_path(p, sizeof p, "models/stories260K/stories260K.bin");
    if (!have(p)) cr_skip_test("shared model not found");
    eng_model_t *m = open_model(p);
    eng_tok_t *tok = open_tok("models/stories260K/tok512.bin");
    int store = eng_gguf_scale_store(ENG_GGUF_AUTO, 4, 0);
    eng_qlinear_t *ql = quantize(m, 4, 32, 0, store);
    json_t *j = gguf_roundtrip(m, tok, ql, ENG_GGUF_AUTO, "s260k");
    /* ffn_down has 172 inputs (not a multiple of 32): F32, the other six linears Q4_1 */
    cr_assert_eq(type_count(j, ENG_GGML_Q4_1), 5 * 6);
    cr_assert_eq(type_count(j, ENG_GGML_F32), 5);
    json_decref(j);
    /* the verifier fails, naming the tensor, when the job's codes differ from the file's */
    eng_qsource_t qs;
    eng_qsource_array(&qs, ql);
    ql[2 * ENG_NLIN + ENG_K].q[5] ^= 1;
    char gg[600];
    snprintf(gg, sizeof gg, "%s/s260k/model.gguf", g_tmp);
    lrq_err_t err = {0};
    cr_assert_eq(eng_gguf_verify(gg, m, &qs, &err), LRQ_ENUMERIC);
    cr_assert(strstr(err.msg, "blk.2.attn_k.weight"), "%s", err.msg);
    free_ql(ql, 5 * ENG_NLIN);
    eng_tok_free(tok);
    eng_model_free(m);
}

/* ---------------------------------------------------------------- (d) gptq and hf verification */

Test(verify, gptq_needs_rounded_scales_and_hf_bf16, .init = tmp_setup, .fini = tmp_teardown, .timeout = 300)
{
    char md[600], out[600];
    snprintf(md, sizeof md, "%s/synth", g_tmp);
    make_synth(md);
    eng_model_t *m = open_model(md);
    lrq_err_t err = {0};
    for (int store = 0; store < 2; store++) {
        eng_qlinear_t *ql = quantize(m, 4, 32, 0, store ? ENG_SCALE_F16 : 0);
        eng_qsource_t qs;
        eng_qsource_array(&qs, ql);
        snprintf(out, sizeof out, "%s/gptq%d", g_tmp, store);
        cr_assert_eq(eng_export_gptq(m, ql, out, &err), 0, "%s", err.msg);
        int rc = eng_export_verify_gptq(out, m, &qs, &err);
        if (store) cr_assert_eq(rc, 0, "%s", err.msg);
        else {
            cr_assert_eq(rc, LRQ_ENUMERIC, "fp32 scales must not verify");
            cr_assert(strstr(err.msg, "model.layers.0.self_attn.q_proj"), "%s", err.msg);
        }
        snprintf(out, sizeof out, "%s/hf%d", g_tmp, store);
        cr_assert_eq(eng_export_hf(m, ql, out, &err), 0, "%s", err.msg);
        cr_assert_eq(eng_export_verify_hf(out, m, &qs, &err), 0, "hf (bf16 linears): %s", err.msg);
        snprintf(out, sizeof out, "%s/hf32_%d", g_tmp, store);
        cr_assert_eq(eng_export_hf_as(m, ql, ENG_F32, out, &err), 0, "%s", err.msg);
        cr_assert_eq(eng_export_verify_hf(out, m, &qs, &err), 0, "hf (F32 linears): %s", err.msg);
        eng_model_t *h = open_model(out);
        cr_assert_eq(h->layers[0].lin[0].dtype, ENG_F32);
        eng_model_free(h);
        free_ql(ql, 2 * ENG_NLIN);
    }
    eng_model_free(m);
}

/* ---------------------------------------------------------------- (e) refusals */

Test(gguf, refusals_name_the_rule)
{
    char p[512], t[512];
    shared_path(p, sizeof p, "models/babyllama-tok105/model5000.bin");
    shared_path(t, sizeof t, "models/stories260K/stories260K.bin");
    if (!have(p) || !have(t)) cr_skip_test("shared models not found");
    eng_model_t *b = open_model(p), *s = open_model(t);
    eng_tok_t *bt = open_tok("models/babyllama-tok105/tok105.bin"), *st = open_tok("models/stories260K/tok512.bin");
    lrq_err_t err = {0};
    cr_assert_eq(eng_gguf_plan(b, bt, 4, 32, 0, ENG_GGUF_AUTO, NULL, &err), LRQ_EUNSUPP);
    cr_assert(strstr(err.msg, "newline token not found") && strstr(err.msg, "0 of the 256 byte pieces"), "%s", err.msg);
    memset(&err, 0, sizeof err);
    cr_assert_neq(eng_gguf_plan(s, st, 4, 32, 0, ENG_GGUF_Q4_0, NULL, &err), 0);
    cr_assert_str_eq(err.field, "gguf.type");
    memset(&err, 0, sizeof err);
    cr_assert_neq(eng_gguf_plan(s, st, 4, 16, 1, ENG_GGUF_Q4_0, NULL, &err), 0);
    cr_assert_str_eq(err.field, "weight.group_size");
    memset(&err, 0, sizeof err);
    cr_assert_neq(eng_gguf_plan(s, st, 8, 32, 0, ENG_GGUF_Q8_0, NULL, &err), 0);
    cr_assert_str_eq(err.field, "gguf.type");
    memset(&err, 0, sizeof err);
    cr_assert_eq(eng_gguf_plan(s, NULL, 4, 32, 1, ENG_GGUF_AUTO, NULL, &err), LRQ_EUNSUPP, "no tokenizer");
    cr_assert_eq(eng_gguf_plan(s, st, 4, 32, 1, ENG_GGUF_AUTO, NULL, &err), 0, "%s", err.msg);
    eng_tok_free(bt);
    eng_tok_free(st);
    eng_model_free(b);
    eng_model_free(s);
}

/* ---------------------------------------------------------------- compressed-tensors */

static void ct_case(const eng_model_t *m, int bits, int gs, int sym, const char *tag, const char *rope)
{
    int store = m->dtype == ENG_BF16 ? ENG_SCALE_BF16 : m->dtype == ENG_F16 ? ENG_SCALE_F16 : 0;
    lrq_err_t err = {0};
    cr_assert_eq(eng_export_ct_check(m, bits, gs, sym, &err), 0, "%s: %s", tag, err.msg);
    eng_qlinear_t *ql = quantize(m, bits, gs, sym, store);
    eng_qsource_t qs;
    eng_qsource_array(&qs, ql);
    char out[600], ref[600], cmd[2048], buf[16384];
    snprintf(out, sizeof out, "%s/%s", g_tmp, tag);
    snprintf(ref, sizeof ref, "%s/%s.ref", g_tmp, tag);
    cr_assert_eq(eng_export_ct(m, &qs, out, &err), 0, "%s: %s", tag, err.msg);
    cr_assert_eq(eng_export_verify_ct(out, m, &qs, &err), 0, "%s: verify: %s", tag, err.msg);
    dump_ref(m, ql, ref);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/engine/ct_decode.py' '%s' '%s' %s", srcdir(), out, ref, rope);
    cr_assert_eq(run_capture(cmd, buf, sizeof buf), 0, "%s: independent decoder: %s", tag, buf);
    json_t *j = json_loads(buf, 0, NULL);
    cr_assert_not_null(j, "%s", buf);
    /* long-standing keys only */
    const char *keys[] = {"config_groups", "format", "global_compression_ratio", "ignore", "kv_cache_scheme",
                          "quant_method", "quantization_status"};
    json_t *ka = json_object_get(j, "keys");
    cr_assert_eq(json_array_size(ka), sizeof keys / sizeof keys[0]);
    for (size_t i = 0; i < json_array_size(ka); i++) cr_assert_str_eq(json_string_value(json_array_get(ka, i)), keys[i]);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "weights"), "strategy")), gs ? "group" : "channel");
    json_decref(j);
    /* corrupt one packed word: the verifier names the tensor */
    ql[ENG_V].q[0] ^= 1;
    cr_assert_eq(eng_export_verify_ct(out, m, &qs, &err), LRQ_ENUMERIC);
    cr_assert(strstr(err.msg, "model.layers.0.self_attn.v_proj"), "%s", err.msg);
    free_ql(ql, m->cfg.n_layers * ENG_NLIN);
}

Test(ct, pack_quantized_decoded_independently, .init = tmp_setup, .fini = tmp_teardown, .timeout = 300)
{
    char md[600], p[512];
    snprintf(md, sizeof md, "%s/synth", g_tmp);
    make_synth(md);
    eng_model_t *m = open_model(md);
    ct_case(m, 4, 32, 0, "a4g32", "half");
    ct_case(m, 4, 0, 1, "s4pc", "half");
    ct_case(m, 8, 128, 1, "s8g128", "half");
    eng_model_free(m);
    shared_path(p, sizeof p, "models/babyllama-tok105/model5000.bin");
    if (have(p)) { /* llama2.c source (fp32): q/k rows permuted to HF order, fp32 scales */
        eng_model_t *b = open_model(p);
        ct_case(b, 4, 32, 0, "baby", "interleaved");
        eng_model_free(b);
    }
    shared_path(p, sizeof p, "models/stories260K/stories260K.bin");
    if (have(p)) {
        eng_model_t *s = open_model(p);
        lrq_err_t err = {0};
        cr_assert_eq(eng_export_ct_check(s, 4, 0, 1, &err), LRQ_EUNSUPP);
        cr_assert(strstr(err.msg, "mlp.down_proj has 172 input features") && strstr(err.msg, "multiple of 8"), "%s", err.msg);
        cr_assert_eq(eng_export_ct_check(s, 4, 0, 0, &err), LRQ_EUNSUPP);
        cr_assert(strstr(err.msg, "mlp.gate_proj has 172 output features"), "%s", err.msg);
        cr_assert_neq(eng_export_ct_check(s, 8, 0, 0, &err), 0);
        cr_assert_str_eq(err.field, "weight.symmetric");
        cr_assert_neq(eng_export_ct_check(s, 3, 0, 1, &err), 0);
        cr_assert_str_eq(err.field, "weight.bits");
        eng_model_free(s);
    }
}
