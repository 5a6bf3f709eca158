/* test_export.c — safetensors writer and the hf / gptq exporters.
 *
 * (a) synthetic bf16 HF checkpoint (tools/mkmodel.py: hidden 128, ffn 256, 2 layers, vocab 512,
 *     4 heads, 2 kv heads), quantized with eng_quant_rtn (minmax init), exported as hf and gptq for bits
 *     2/3/4/8 × sym/asym × per-channel/g32. Checked twice: a C unpacker written from the
 *     docs/formats.md "GPTQ packing" word table (codes, zeros, fp16 scales, g_idx must equal the quantizer's
 *     exactly; the hf export must equal bf16(s·(q−z)) exactly), and tools/gptq_unpack.py
 *     (numpy, reads the files itself) against the hf export with the tolerance stated there.
 * (b) stories260K gptq export refused, naming layer and shape.
 * (c) stories260K.bin exported as hf with codes that reproduce the weights exactly
 *     (8-bit, group size 1, scale = w, q = 1, zero = 0) equals shared/models/stories260K-hf
 *     bit for bit (q/k permutation, config synthesis, tokenizer copy, manifest sha256).
 * (d) writer round trip through eng_st_open, layout rules, refusals and I/O errors. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eng_export.h"
#include "eng_half.h"
#include "eng_model.h"
#include "eng_quant.h"
#include "eng_safetensors.h"
#include "eng_st_gen.h"

/* ---------------------------------------------------------------- helpers */

/* Per-element checks: Criterion reports every cr_assert, so loops only fail. */
#define CHECK(cond, ...) do { if (!(cond)) cr_assert_fail(__VA_ARGS__); } while (0)

static char g_tmp[256];

static void tmp_setup(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/lrq-test-export-XXXXXX");
    cr_assert_not_null(mkdtemp(g_tmp));
    chmod(g_tmp, 0755);
}

static void tmp_teardown(void)
{
    char cmd[700];
    if (!g_tmp[0]) return;
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'", g_tmp, g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", g_tmp);
}

static const char *srcdir(void)
{
    const char *s = getenv("LRQ_SRCDIR");
    return s ? s : ".";
}

static void shared_path(char *buf, size_t cap, const char *rel)
{
    const char *s = getenv("LRQ_SHARED");
    if (s) snprintf(buf, cap, "%s/%s", s, rel);
    else snprintf(buf, cap, "%s/../shared/%s", srcdir(), rel);
}

/* Run a command, capture stdout+stderr, return the exit status (-1 on abnormal exit). */
static int run_capture(const char *cmd, char *out, size_t cap)
{
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static json_t *load_json(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    cr_assert_not_null(j, "%s: %s", p, je.text);
    return j;
}

static int files_equal(const char *a, const char *b)
{
    char cmd[1400], out[256];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return run_capture(cmd, out, sizeof out) == 0;
}

static eng_model_t *open_model(const char *path)
{
    eng_model_t *m = NULL;
    lrq_err_t err = {0};
    int rc = eng_model_open(path, &m, &err);
    cr_assert_eq(rc, 0, "eng_model_open(%s): %s", path, err.msg);
    return m;
}

static void make_synth(const char *dir)
{
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/tools/mkmodel.py' --out '%s' --hidden 128 --ffn 256 --layers 2 --heads 4 "
             "--kv-heads 2 --vocab 512 --dtype bf16 --seed 7",
             srcdir(), dir);
    int rc = run_capture(cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "mkmodel.py failed: %s", out);
}

/* Hand-built quantized linear (any group size, codes filled by the caller); freed by eng_qlinear_close. */
static void ql_alloc(eng_qlinear_t *q, int m, int n, int bits, int gs, int sym)
{
    memset(q, 0, sizeof *q);
    q->m = m;
    q->n = n;
    q->bits = bits;
    q->gs = gs ? gs : n;
    q->G = (n + q->gs - 1) / q->gs; /* GPTQ: the last group may be partial */
    q->symmetric = sym;
    q->q = malloc((size_t)m * n);
    q->scale = malloc((size_t)m * q->G * sizeof(float));
    q->zero = malloc((size_t)m * q->G * sizeof(float));
    cr_assert(q->q && q->scale && q->zero);
}

static eng_qlinear_t *quantize_model(const eng_model_t *m, int bits, int gs, int sym)
{
    int L = m->cfg.n_layers;
    eng_qlinear_t *ql = calloc((size_t)L * ENG_NLIN, sizeof *ql);
    cr_assert_not_null(ql);
    for (int l = 0; l < L; l++)
        for (int k = 0; k < ENG_NLIN; k++) {
            const eng_tensor_t *t = &m->layers[l].lin[k];
            float *W = malloc(eng_tensor_numel(t) * sizeof(float));
            lrq_err_t err = {0};
            cr_assert_eq(eng_tensor_to_f32(t, W, &err), 0, "%s", err.msg);
            eng_qlinear_t *q = &ql[l * ENG_NLIN + k];
            eng_qcfg_t qc = {.bits = bits, .group_size = gs, .symmetric = sym, .init = ENG_INIT_MINMAX};
            cr_assert_eq(eng_qlinear_init(q, (int)t->rows, (int)t->cols, &qc, &err), 0, "%s", err.msg);
            eng_quant_rtn(NULL, W, &qc, q);
            free(W);
        }
    return ql;
}

static void free_qls(eng_qlinear_t *ql, int n)
{
    for (int i = 0; i < n; i++) eng_qlinear_close(&ql[i]);
    free(ql);
}

static float deq(const eng_qlinear_t *q, int i, int j)
{
    int g = j / q->gs;
    return q->scale[(size_t)i * q->G + g] * ((float)q->q[(size_t)i * q->n + j] - q->zero[(size_t)i * q->G + g]);
}

/* Row of the source matrix feeding HF row i (SOURCE.md of stories260K-hf). */
static int hf_from_interleaved(int i, int dh)
{
    int h = i / dh, j = i % dh;
    return h * dh + (j < dh / 2 ? 2 * j : 2 * (j - dh / 2) + 1);
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* C unpacker written from the docs/formats.md "GPTQ packing" tables (not from the packer):
 * element e of a run packed along some dim, given a word accessor. */
static unsigned unpack_elem(uint32_t (*word)(const void *ctx, int w), const void *ctx, int e, int bits)
{
    if (bits != 3) {
        int pf = 32 / bits;
        return (word(ctx, e / pf) >> (bits * (e % pf))) & ((1u << bits) - 1);
    }
    int b = e / 32, i = e % 32;
    uint32_t w0 = word(ctx, 3 * b), w1 = word(ctx, 3 * b + 1), w2 = word(ctx, 3 * b + 2);
    if (i < 10) return (w0 >> (3 * i)) & 7;
    if (i == 10) return ((w0 >> 30) & 3) | ((w1 & 1) << 2);
    if (i < 21) return (w1 >> (3 * (i - 11) + 1)) & 7;
    if (i == 21) return ((w1 >> 31) & 1) | ((w2 & 3) << 1);
    return (w2 >> (3 * (i - 22) + 2)) & 7;
}

typedef struct { const uint8_t *base; int64_t stride, fixed; int along_rows; } wctx_t;
static uint32_t word_at(const void *c, int w)
{
    const wctx_t *x = c; /* along rows: word (w, fixed); along cols: word (fixed, w) */
    int64_t idx = x->along_rows ? (int64_t)w * x->stride + x->fixed : x->fixed * x->stride + w;
    return rd32(x->base + 4 * idx);
}

static const uint8_t *st_tensor(const eng_st_file_t *f, const char *name, const char *dtype, int ndim, int64_t d0,
                                int64_t d1)
{
    const eng_st_entry_t *e = eng_st_find(f, name);
    cr_assert_not_null(e, "%s: missing %s", f->path, name);
    cr_assert_str_eq(e->dtype, dtype, "%s dtype", name);
    cr_assert_eq(e->ndim, ndim, "%s ndim", name);
    cr_assert_eq(e->shape[0], d0, "%s shape[0] %lld != %lld", name, (long long)e->shape[0], (long long)d0);
    if (ndim > 1) cr_assert_eq(e->shape[1], d1, "%s shape[1] %lld != %lld", name, (long long)e->shape[1], (long long)d1);
    return f->data + e->begin;
}

/* Second check of a gptq export: every field against the quantizer's values, exactly. */
static void check_gptq_c(const eng_model_t *m, const eng_qlinear_t *ql, const char *gdir)
{
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", gdir);
    eng_st_file_t f;
    lrq_err_t err = {0};
    cr_assert_eq(eng_st_open(&f, p, &err), 0, "%s", err.msg);
    int bits = ql[0].bits, sym = ql[0].symmetric, interleaved = m->cfg.rope == ENG_ROPE_INTERLEAVED;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int k = 0; k < ENG_NLIN; k++) {
            const eng_qlinear_t *q = &ql[l * ENG_NLIN + k];
            int K = q->n, N = q->m, G = q->G;
            char nm[160];
            snprintf(nm, sizeof nm, "model.layers.%d.%s.qweight", l, eng_lin_hf_name[k]);
            const uint8_t *qw = st_tensor(&f, nm, "I32", 2, K / 32 * bits, N);
            snprintf(nm, sizeof nm, "model.layers.%d.%s.qzeros", l, eng_lin_hf_name[k]);
            const uint8_t *qz = st_tensor(&f, nm, "I32", 2, G, N / 32 * bits);
            snprintf(nm, sizeof nm, "model.layers.%d.%s.scales", l, eng_lin_hf_name[k]);
            const uint8_t *sc = st_tensor(&f, nm, "F16", 2, G, N);
            snprintf(nm, sizeof nm, "model.layers.%d.%s.g_idx", l, eng_lin_hf_name[k]);
            const uint8_t *gi = st_tensor(&f, nm, "I32", 1, K, 0);
            for (int kk = 0; kk < K; kk++) CHECK((int32_t)rd32(gi + 4 * kk) == kk / q->gs, "g_idx[%d]", kk);
            for (int n = 0; n < N; n++) {
                int r = (interleaved && (k == ENG_Q || k == ENG_K)) ? hf_from_interleaved(n, m->cfg.head_dim) : n;
                wctx_t cw = {qw, N, n, 1};
                for (int kk = 0; kk < K; kk++) {
                    unsigned c = unpack_elem(word_at, &cw, kk, bits);
                    CHECK(c == q->q[(size_t)r * K + kk], "layer %d %s: code [k=%d, n=%d] %u != %u", l,
                                 eng_lin_short_name[k], kk, n, c, q->q[(size_t)r * K + kk]);
                }
                for (int g = 0; g < G; g++) {
                    wctx_t zw = {qz, N / 32 * bits, g, 0};
                    unsigned z = unpack_elem(word_at, &zw, n, bits) + (sym ? 1 : 0);
                    CHECK((float)z == q->zero[(size_t)r * G + g], "layer %d %s: zero [g=%d, n=%d]", l,
                                 eng_lin_short_name[k], g, n);
                    CHECK(rd16(sc + 2 * ((size_t)g * N + n)) == eng_f32_to_f16(q->scale[(size_t)r * G + g]),
                          "scale [g=%d, n=%d]", g, n);
                }
            }
        }
    eng_st_close(&f);

    json_t *cfg = load_json(gdir, "config.json"), *qc = load_json(gdir, "quantize_config.json");
    json_t *qc1 = json_object_get(cfg, "quantization_config");
    cr_assert(json_equal(qc1, qc), "quantization_config differs from quantize_config.json");
    cr_assert_str_eq(json_string_value(json_object_get(qc, "quant_method")), "gptq");
    cr_assert_eq(json_integer_value(json_object_get(qc, "bits")), bits);
    cr_assert_eq(json_integer_value(json_object_get(qc, "group_size")), ql[0].G == 1 ? -1 : ql[0].gs);
    cr_assert_eq(json_is_true(json_object_get(qc, "sym")), sym);
    cr_assert(json_is_false(json_object_get(qc, "desc_act")));
    cr_assert_str_eq(json_string_value(json_object_get(qc, "checkpoint_format")), sym ? "gptq" : "gptq_v2");
    json_decref(cfg);
    json_decref(qc);
    json_t *man = load_json(gdir, "lrq-manifest.json");
    cr_assert_str_eq(json_string_value(json_object_get(man, "producer")), "lrq");
    cr_assert_not_null(json_object_get(json_object_get(man, "files"), "model.safetensors"));
    cr_assert_eq(json_array_size(json_object_get(man, "notes")) > 0, !sym || (bits != 4 && bits != 8),
                 "vLLM note expected exactly for asym or 2/3-bit");
    json_decref(man);
}

/* docs/formats.md "GPTQ packing" constants: the 4-bit worked example (codes 1..8 down column 0 →
 * 0x87654321) and the qzeros words of symmetric v1 checkpoints (zero − 1 repeated). */
static void check_constants(const char *gdir, int bits, int sym)
{
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", gdir);
    eng_st_file_t f;
    lrq_err_t err = {0};
    cr_assert_eq(eng_st_open(&f, p, &err), 0, "%s", err.msg);
    const eng_st_entry_t *qw = eng_st_find(&f, "model.layers.0.self_attn.q_proj.qweight");
    const eng_st_entry_t *qz = eng_st_find(&f, "model.layers.1.mlp.down_proj.qzeros");
    cr_assert(qw && qz);
    if (bits == 4) cr_assert_eq(rd32(f.data + qw->begin), 0x87654321u, "worked example: %08x", rd32(f.data + qw->begin));
    if (sym) {
        uint32_t want = bits == 4 ? 0x77777777u : bits == 8 ? 0x7F7F7F7Fu : bits == 2 ? 0x55555555u
                      : 0xDB6DB6DBu; /* 3-bit: 3 = 0b011 at bits 0,3,…: 011 011 … from bit 0 */
        cr_assert_eq(rd32(f.data + qz->begin), want, "%d-bit sym qzeros word %08x", bits, rd32(f.data + qz->begin));
    }
    eng_st_close(&f);
}

/* The hf export: linears == dtype(s·(q−z)) with rows permuted for interleaved sources,
 * everything else bit-identical to the source. */
static void check_hf_c(const eng_model_t *m, const eng_qlinear_t *ql, const char *hdir)
{
    eng_model_t *h = open_model(hdir);
    cr_assert_eq(h->cfg.dim, m->cfg.dim);
    cr_assert_eq(h->cfg.n_layers, m->cfg.n_layers);
    cr_assert_eq(h->cfg.n_kv_heads, m->cfg.n_kv_heads);
    cr_assert_eq(h->cfg.rope, ENG_ROPE_HALF);
    cr_assert_eq(h->dtype, m->dtype);
    int interleaved = m->cfg.rope == ENG_ROPE_INTERLEAVED;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        cr_assert_eq(memcmp(h->layers[l].attn_norm.data, m->layers[l].attn_norm.data,
                            eng_tensor_numel(&m->layers[l].attn_norm) * (m->dtype == ENG_F32 ? 4 : 2)), 0);
        for (int k = 0; k < ENG_NLIN; k++) {
            const eng_qlinear_t *q = &ql[l * ENG_NLIN + k];
            const eng_tensor_t *t = &h->layers[l].lin[k];
            cr_assert_eq(t->rows, q->m);
            cr_assert_eq(t->cols, q->n);
            for (int i = 0; i < q->m; i++) {
                int r = (interleaved && (k == ENG_Q || k == ENG_K)) ? hf_from_interleaved(i, m->cfg.head_dim) : i;
                for (int j = 0; j < q->n; j++) {
                    float v = deq(q, r, j);
                    size_t o = (size_t)i * q->n + j;
                    if (t->dtype == ENG_BF16)
                        CHECK(((const uint16_t *)t->data)[o] == eng_f32_to_bf16(v), "bf16 (%d,%d)", i, j);
                    else if (t->dtype == ENG_F32)
                        CHECK(memcmp((const float *)t->data + o, &v, 4) == 0, "f32 (%d,%d)", i, j);
                    else
                        CHECK(((const uint16_t *)t->data)[o] == eng_f32_to_f16(v), "f16 (%d,%d)", i, j);
                }
            }
        }
    }
    size_t es = m->dtype == ENG_F32 ? 4 : 2;
    cr_assert_eq(memcmp(h->embed.data, m->embed.data, eng_tensor_numel(&m->embed) * es), 0);
    cr_assert_eq(memcmp(h->lm_head.data, m->lm_head.data, eng_tensor_numel(&m->lm_head) * es), 0);
    cr_assert_eq(memcmp(h->final_norm.data, m->final_norm.data, eng_tensor_numel(&m->final_norm) * es), 0);
    eng_model_free(h);
}

/* (a): one source (HF, or the same weights posing as an interleaved llama2.c model),
 * 4 configurations for one bit width, C checks, then one python run over all pairs. */
static void export_matrix(int bits, int interleaved)
{
    char src[300], cmd[4096], out[8192];
    snprintf(src, sizeof src, "%s/src", g_tmp);
    make_synth(src);
    eng_model_t *m = open_model(src);
    cr_assert_eq(m->dtype, ENG_BF16);
    eng_model_t view = *m; /* shallow: same tensors, other RoPE convention */
    if (interleaved) {
        view.cfg.rope = ENG_ROPE_INTERLEAVED;
        view.format = ENG_FMT_LLAMA2C;
        view.hf_config = NULL;
    }
    int n = snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tools/gptq_unpack.py' --compare", srcdir());
    int pairs = 0;
    for (int sym = 0; sym <= 1; sym++)
        for (int gs = 0; gs <= 96; gs += gs == 32 ? 64 : 32) { /* 96: K 128 → 96 + 32, K 256 → 96, 96, 64 */
            eng_qlinear_t *ql = quantize_model(m, bits, gs, sym);
            if (gs == 96) cr_assert(ql[0].G == 2 && ql[ENG_DOWN].G == 3 && ql[ENG_DOWN].n == 256);
            if (bits == 4) /* worked example of docs/formats.md "GPTQ packing" in column 0 (row 0 is not permuted) */
                for (int k = 0; k < 8; k++) ql[0].q[k] = (uint8_t)(k + 1);
            char hd[400], gd[400];
            snprintf(hd, sizeof hd, "%s/hf_b%d_s%d_g%d", g_tmp, bits, sym, gs);
            snprintf(gd, sizeof gd, "%s/gptq_b%d_s%d_g%d", g_tmp, bits, sym, gs);
            lrq_err_t err = {0};
            cr_assert_eq(eng_export_hf(&view, ql, hd, &err), 0, "export hf: %s", err.msg);
            cr_assert_eq(eng_export_gptq_check(&view, ql, &err), 0, "gptq check: %s", err.msg);
            cr_assert_eq(eng_export_gptq(&view, ql, gd, &err), 0, "export gptq: %s", err.msg);
            check_hf_c(&view, ql, hd);
            check_gptq_c(&view, ql, gd);
            check_constants(gd, bits, sym);
            free_qls(ql, m->cfg.n_layers * ENG_NLIN);
            n += snprintf(cmd + n, sizeof cmd - n, " '%s' '%s'", gd, hd);
            pairs++;
        }
    int rc = run_capture(cmd, out, sizeof out);
    cr_log_info("%s", out);
    cr_assert_eq(rc, 0, "gptq_unpack.py failed (%d): %s", rc, out);
    int oks = 0;
    for (const char *p = out; (p = strstr(p, "OK ")); p++) oks++;
    cr_assert_eq(oks, pairs, "expected %d OK lines: %s", pairs, out);
    eng_model_free(m);
}

TestSuite(export, .init = tmp_setup, .fini = tmp_teardown, .timeout = 120);

Test(export, gptq_vs_hf_2bit) { export_matrix(2, 0); }
Test(export, gptq_vs_hf_3bit) { export_matrix(3, 0); }
Test(export, gptq_vs_hf_4bit) { export_matrix(4, 0); }
Test(export, gptq_vs_hf_8bit) { export_matrix(8, 0); }
/* q/k row permutation for llama2.c-style sources, through both exporters */
Test(export, interleaved_source_permuted_4bit) { export_matrix(4, 1); }
Test(export, interleaved_source_permuted_3bit) { export_matrix(3, 1); }

/* The unpacker must be able to fail: flip one code bit in a qweight. */
Test(export, unpacker_detects_corruption)
{
    char src[300], hd[300], gd[300], p[400], cmd[2048], out[4096];
    snprintf(src, sizeof src, "%s/src", g_tmp);
    make_synth(src);
    eng_model_t *m = open_model(src);
    eng_qlinear_t *ql = quantize_model(m, 4, 32, 1);
    snprintf(hd, sizeof hd, "%s/hf", g_tmp);
    snprintf(gd, sizeof gd, "%s/gptq", g_tmp);
    lrq_err_t err = {0};
    cr_assert_eq(eng_export_hf(m, ql, hd, &err), 0, "%s", err.msg);
    cr_assert_eq(eng_export_gptq(m, ql, gd, &err), 0, "%s", err.msg);
    snprintf(p, sizeof p, "%s/model.safetensors", gd);
    eng_st_file_t f;
    cr_assert_eq(eng_st_open(&f, p, &err), 0, "%s", err.msg);
    const eng_st_entry_t *e = eng_st_find(&f, "model.layers.1.mlp.down_proj.qweight");
    cr_assert_not_null(e);
    long off = (long)(f.data - f.map) + (long)e->begin + 4 * 37 + 1;
    eng_st_close(&f);
    int fd = open(p, O_RDWR);
    cr_assert(fd >= 0);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, off), 1);
    b ^= 0x40; /* bit 2 of the 4-bit code at k = 3, column 37 */
    cr_assert_eq(pwrite(fd, &b, 1, off), 1);
    close(fd);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tools/gptq_unpack.py' --compare '%s' '%s'", srcdir(), gd, hd);
    int rc = run_capture(cmd, out, sizeof out);
    cr_assert_eq(rc, 1, "corruption not detected (rc %d): %s", rc, out);
    cr_assert(strstr(out, "FAIL") && strstr(out, "down_proj"), "%s", out);
    free_qls(ql, m->cfg.n_layers * ENG_NLIN);
    eng_model_free(m);
}

/* ---------------------------------------------------------------- (b) refusals */

Test(export, stories260k_gptq_refused)
{
    char bin[512], od[400];
    shared_path(bin, sizeof bin, "models/stories260K/stories260K.bin");
    eng_model_t *m = open_model(bin);
    eng_qlinear_t *ql = quantize_model(m, 4, 0, 1);
    lrq_err_t err = {0};
    int rc = eng_export_gptq_check(m, ql, &err);
    cr_assert_eq(rc, LRQ_EUNSUPP, "rc %d: %s", rc, err.msg);
    cr_assert(strstr(err.msg, "model.layers.0.mlp.gate_proj") && strstr(err.msg, "[172, 64]") &&
                  strstr(err.msg, "multiples of 32"),
              "message: %s", err.msg);
    snprintf(od, sizeof od, "%s/gptq", g_tmp);
    memset(&err, 0, sizeof err);
    rc = eng_export_gptq(m, ql, od, &err);
    cr_assert_eq(rc, LRQ_EUNSUPP);
    cr_assert(strstr(err.msg, "gate_proj"), "%s", err.msg);
    cr_assert_eq(access(od, F_OK), -1, "a refused export must not create %s", od);
    free_qls(ql, m->cfg.n_layers * ENG_NLIN);
    eng_model_free(m);
}

Test(export, gptq_bad_bits_and_values_refused)
{
    char src[300], od[400];
    snprintf(src, sizeof src, "%s/src", g_tmp);
    make_synth(src);
    eng_model_t *m = open_model(src);
    int nl = m->cfg.n_layers * ENG_NLIN;
    lrq_err_t err = {0};
    eng_qlinear_t *ql = quantize_model(m, 5, 0, 0);
    cr_assert_eq(eng_export_gptq_check(m, ql, &err), LRQ_EUNSUPP);
    cr_assert(strstr(err.msg, "5-bit"), "%s", err.msg);
    free_qls(ql, nl);
    ql = quantize_model(m, 4, 32, 1);
    ql[3].zero[5] = 7; /* symmetric GPTQ needs zero exactly 8 */
    snprintf(od, sizeof od, "%s/gptq", g_tmp);
    cr_assert_eq(eng_export_gptq(m, ql, od, &err), LRQ_EFORMAT);
    cr_assert(strstr(err.msg, "model.layers.0.self_attn.o_proj") && strstr(err.msg, "zero point"), "%s", err.msg);
    ql[3].zero[5] = 8;
    ql[8].bits = 8; /* mixed bit widths cannot be one GPTQ checkpoint */
    cr_assert_eq(eng_export_gptq_check(m, ql, &err), LRQ_EUNSUPP);
    cr_assert(strstr(err.msg, "model.layers.1.self_attn.k_proj"), "%s", err.msg);
    ql[8].bits = 4;
    ql[2].q[17] = 16; /* code out of 4-bit range */
    cr_assert_eq(eng_export_hf(m, ql, od, &err), LRQ_EFORMAT);
    cr_assert(strstr(err.msg, "v_proj") && strstr(err.msg, "4-bit"), "%s", err.msg);
    free_qls(ql, nl);
    eng_model_free(m);
}

/* stories260K at W4 g32: down_proj has in_features 172 = 5·32 + 12, so its last group is partial.
 * The hf export takes it (Ŵ checked element by element); GPTQ still refuses the shape (K % 32). */
Test(export, stories260k_w4_g32_partial_groups_hf)
{
    char bin[512], od[400];
    shared_path(bin, sizeof bin, "models/stories260K/stories260K.bin");
    eng_model_t *m = open_model(bin);
    int nl = m->cfg.n_layers * ENG_NLIN;
    for (int sym = 0; sym <= 1; sym++) {
        eng_qlinear_t *ql = quantize_model(m, 4, 32, sym);
        const eng_qlinear_t *dn = &ql[ENG_DOWN];
        cr_assert(dn->n == 172 && dn->gs == 32 && dn->G == 6, "down_proj n %d gs %d G %d", dn->n, dn->gs, dn->G);
        /* the reconstruction is close to the source everywhere, tail columns included: |Ŵ − w| ≤ s/2
         * inside the (minmax, so unclipped) range */
        float *W = malloc((size_t)dn->m * dn->n * sizeof(float));
        lrq_err_t err = {0};
        cr_assert(W && eng_tensor_to_f32(&m->layers[0].lin[ENG_DOWN], W, &err) == 0);
        for (int i = 0; i < dn->m; i++)
            for (int j = 0; j < dn->n; j++) {
                float s = dn->scale[(size_t)i * dn->G + j / 32];
                CHECK(fabsf(deq(dn, i, j) - W[(size_t)i * dn->n + j]) <= 0.5001f * s + 1e-7f, "(%d,%d)", i, j);
            }
        free(W);
        snprintf(od, sizeof od, "%s/hf_g32_s%d", g_tmp, sym);
        cr_assert_eq(eng_export_hf(m, ql, od, &err), 0, "%s", err.msg);
        check_hf_c(m, ql, od);
        json_t *man = load_json(od, "lrq-manifest.json");
        cr_assert_eq(json_integer_value(json_object_get(json_object_get(man, "quantization"), "group_size")), 32);
        json_decref(man);
        cr_assert_eq(eng_export_gptq_check(m, ql, &err), LRQ_EUNSUPP);
        cr_assert(strstr(err.msg, "multiples of 32"), "%s", err.msg);
        free_qls(ql, nl);
    }
    eng_model_free(m);
}

/* ---------------------------------------------------------------- (c) llama2.c → hf, exact */

static void cmp_tensor(const eng_tensor_t *a, const eng_tensor_t *b, const char *what)
{
    cr_assert_eq(a->dtype, b->dtype, "%s dtype", what);
    cr_assert_eq(eng_tensor_numel(a), eng_tensor_numel(b), "%s size", what);
    size_t es = a->dtype == ENG_F32 ? 4 : 2;
    cr_assert_eq(memcmp(a->data, b->data, eng_tensor_numel(a) * es), 0, "%s differs", what);
}

Test(export, stories260k_hf_exact_equals_hf_copy)
{
    char bin[512], ref[512], od[400], p[600], q[600], cmd[1400], out[512];
    shared_path(bin, sizeof bin, "models/stories260K/stories260K.bin");
    shared_path(ref, sizeof ref, "models/stories260K-hf");
    eng_model_t *m = open_model(bin);
    cr_assert_eq(m->cfg.rope, ENG_ROPE_INTERLEAVED);
    int nl = m->cfg.n_layers * ENG_NLIN;
    /* identity codes: 8-bit, group size 1, scale = w, q = 1, zero = 0 → Ŵ = w·(1−0) = w exactly */
    eng_qlinear_t *ql = calloc(nl, sizeof *ql);
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int k = 0; k < ENG_NLIN; k++) {
            const eng_tensor_t *t = &m->layers[l].lin[k];
            eng_qlinear_t *x = &ql[l * ENG_NLIN + k];
            ql_alloc(x, (int)t->rows, (int)t->cols, 8, 1, 0);
            lrq_err_t err = {0};
            cr_assert_eq(eng_tensor_to_f32(t, x->scale, &err), 0, "%s", err.msg);
            memset(x->q, 1, (size_t)x->m * x->n);
            memset(x->zero, 0, (size_t)x->m * x->G * sizeof(float));
        }
    snprintf(od, sizeof od, "%s/hf", g_tmp);
    lrq_err_t err = {0};
    cr_assert_eq(eng_export_hf(m, ql, od, &err), 0, "%s", err.msg);

    eng_model_t *a = open_model(od), *b = open_model(ref);
    cr_assert_eq(memcmp(&a->cfg, &b->cfg, sizeof a->cfg), 0, "config differs");
    cmp_tensor(&a->embed, &b->embed, "embed");
    cmp_tensor(&a->final_norm, &b->final_norm, "norm");
    cmp_tensor(&a->lm_head, &b->lm_head, "lm_head");
    for (int l = 0; l < a->cfg.n_layers; l++) {
        char w[64];
        cmp_tensor(&a->layers[l].attn_norm, &b->layers[l].attn_norm, "attn_norm");
        cmp_tensor(&a->layers[l].ffn_norm, &b->layers[l].ffn_norm, "ffn_norm");
        for (int k = 0; k < ENG_NLIN; k++) {
            snprintf(w, sizeof w, "layer %d %s", l, eng_lin_short_name[k]);
            cmp_tensor(&a->layers[l].lin[k], &b->layers[l].lin[k], w);
        }
    }
    eng_model_free(a);
    eng_model_free(b);

    /* config.json synthesized from the llama2.c header == the reference copy's */
    json_t *ca = load_json(od, "config.json"), *cb = load_json(ref, "config.json");
    cr_assert(json_equal(ca, cb), "config.json differs from %s/config.json", ref);
    json_decref(ca);
    json_decref(cb);
    /* lm_head.weight present although tied, like the reference */
    snprintf(p, sizeof p, "%s/model.safetensors", od);
    eng_st_file_t f;
    cr_assert_eq(eng_st_open(&f, p, &err), 0, "%s", err.msg);
    cr_assert_not_null(eng_st_find(&f, "lm_head.weight"));
    cr_assert_eq(f.n_entries, 48);
    eng_st_close(&f);
    /* tokenizer files beside the .bin are copied */
    const char *toks[] = {"tok512.bin", "tok512.model"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", od, toks[i]);
        char s[600];
        snprintf(s, sizeof s, "models/stories260K/%s", toks[i]);
        shared_path(q, sizeof q, s);
        cr_assert(files_equal(p, q), "%s not copied", toks[i]);
    }
    /* manifest sha256 == sha256sum's */
    json_t *man = load_json(od, "lrq-manifest.json");
    cr_assert_str_eq(json_string_value(json_object_get(man, "export")), "hf");
    json_t *files = json_object_get(man, "files");
    cr_assert_eq(json_object_size(files), 4, "files: model.safetensors, config.json, 2 tokenizers");
    snprintf(cmd, sizeof cmd, "sha256sum '%s/model.safetensors' | cut -c1-64", od);
    cr_assert_eq(run_capture(cmd, out, sizeof out), 0);
    out[64] = '\0';
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(files, "model.safetensors"), "sha256")), out);
    json_decref(man);
    free_qls(ql, nl);
    eng_model_free(m);
}

/* ---------------------------------------------------------------- (d) writer */

Test(export, writer_roundtrip_layout)
{
    float f32[15];
    uint16_t bf[7], f16[3];
    int32_t i32[4] = {-1, 2, INT32_MIN, INT32_MAX};
    uint8_t u8[3] = {1, 2, 255};
    for (int i = 0; i < 15; i++) f32[i] = (float)i * 0.5f - 3;
    for (int i = 0; i < 7; i++) bf[i] = eng_f32_to_bf16((float)i / 3);
    for (int i = 0; i < 3; i++) f16[i] = eng_f32_to_f16((float)i / 7);
    eng_st_writer_t *w = eng_st_writer_new();
    cr_assert_not_null(w);
    /* inserted smallest-first: the writer must still place every tensor aligned */
    cr_assert_eq(eng_st_writer_add(w, "u8", "U8", 1, (int64_t[]){3}, u8, 3), 0);
    cr_assert_eq(eng_st_writer_add(w, "bf", "BF16", 1, (int64_t[]){7}, bf, 14), 0);
    cr_assert_eq(eng_st_writer_add(w, "f32", "F32", 2, (int64_t[]){3, 5}, f32, 60), 0);
    cr_assert_eq(eng_st_writer_add(w, "h", "F16", 2, (int64_t[]){1, 3}, f16, 6), 0);
    cr_assert_eq(eng_st_writer_add(w, "i", "I32", 2, (int64_t[]){2, 2}, i32, 16), 0);
    cr_assert_eq(eng_st_writer_add(w, "empty", "F32", 2, (int64_t[]){0, 4}, NULL, 0), 0);
    cr_assert_eq(eng_st_writer_meta(w, "producer", "test"), 0);
    char p[400];
    snprintf(p, sizeof p, "%s/x.safetensors", g_tmp);
    lrq_err_t err = {0};
    cr_assert_eq(eng_st_writer_write(w, p, &err), 0, "%s", err.msg);
    eng_st_writer_free(w);

    eng_st_file_t f;
    cr_assert_eq(eng_st_open(&f, p, &err), 0, "%s", err.msg);
    struct { const char *name, *dt; const void *d; size_t nb; int es; } ex[] = {
        {"u8", "U8", u8, 3, 1},   {"bf", "BF16", bf, 14, 2}, {"f32", "F32", f32, 60, 4},
        {"h", "F16", f16, 6, 2}, {"i", "I32", i32, 16, 4},  {"empty", "F32", NULL, 0, 4},
    };
    uint64_t total = 0;
    for (int i = 0; i < 6; i++) {
        const eng_st_entry_t *e = eng_st_find(&f, ex[i].name);
        cr_assert_not_null(e, "%s", ex[i].name);
        cr_assert_str_eq(e->dtype, ex[i].dt);
        cr_assert_eq(e->end - e->begin, ex[i].nb);
        cr_assert_eq((uintptr_t)(f.data + e->begin) % ex[i].es, 0, "%s misaligned in the mapping", ex[i].name);
        if (ex[i].nb) cr_assert_eq(memcmp(f.data + e->begin, ex[i].d, ex[i].nb), 0, "%s data", ex[i].name);
        total += ex[i].nb;
    }
    cr_assert_eq(eng_st_find(&f, "f32")->shape[1], 5);
    cr_assert_eq(eng_st_find(&f, "empty")->shape[0], 0);
    cr_assert_eq(f.data_len, total);
    /* header: LE u64 length, multiple of 8, JSON padded with spaces, metadata first, insertion order */
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)f.map[i] << (8 * i);
    cr_assert_eq(n % 8, 0);
    cr_assert_eq(f.map_len, 8 + n + total);
    json_error_t je;
    json_t *h = json_loadb((const char *)f.map + 8, n, 0, &je);
    cr_assert_not_null(h, "header JSON: %s", je.text);
    const char *order[] = {"__metadata__", "u8", "bf", "f32", "h", "i", "empty"};
    int k = 0;
    for (void *it = json_object_iter(h); it; it = json_object_iter_next(h, it), k++)
        cr_assert_str_eq(json_object_iter_key(it), order[k], "header order");
    cr_assert_eq(k, 7);
    json_t *meta = json_object_get(h, "__metadata__");
    cr_assert_str_eq(json_string_value(json_object_get(meta, "format")), "pt");
    cr_assert_str_eq(json_string_value(json_object_get(meta, "producer")), "test");
    const char *hdr = (const char *)f.map + 8;
    size_t jl = n;
    while (jl && hdr[jl - 1] == ' ') jl--;
    cr_assert_eq(hdr[jl - 1], '}');
    cr_assert(n - jl < 8, "padding is less than 8 spaces");
    json_decref(h);
    eng_st_close(&f);
    char tmpf[420];
    snprintf(tmpf, sizeof tmpf, "%s.tmp", p);
    cr_assert_eq(access(tmpf, F_OK), -1, "temporary file left behind");
}

static int fill_iota(void *ctx, void *dst, size_t nbytes, lrq_err_t *err)
{
    int32_t *d = dst, base = *(int32_t *)ctx;
    for (size_t i = 0; i < nbytes / 4; i++) d[i] = base + (int32_t)i;
    return 0;
}

static int fill_fail(void *ctx, void *dst, size_t nbytes, lrq_err_t *err)
{
    return lrq_errf(err, LRQ_ENUMERIC, "generator says no");
}

Test(export, writer_generated_tensors)
{
    char p[400], tmpf[420];
    snprintf(p, sizeof p, "%s/gen.safetensors", g_tmp);
    int32_t b1 = 100, b2 = -7;
    uint8_t u[5] = {9, 8, 7, 6, 5};
    lrq_err_t err = {0};
    eng_st_writer_t *w = eng_st_writer_new();
    cr_assert_eq(eng_st_writer_add(w, "u", "U8", 1, (int64_t[]){5}, u, 5), 0);
    cr_assert_eq(eng_st_writer_add_gen(w, "small", "I32", 1, (int64_t[]){3}, 12, fill_iota, &b1), 0);
    cr_assert_eq(eng_st_writer_add_gen(w, "big", "I32", 2, (int64_t[]){10, 10}, 400, fill_iota, &b2), 0);
    cr_assert_eq(eng_st_writer_write(w, p, &err), 0, "%s", err.msg);
    eng_st_writer_free(w);
    eng_st_file_t f;
    cr_assert_eq(eng_st_open(&f, p, &err), 0, "%s", err.msg);
    const eng_st_entry_t *e = eng_st_find(&f, "big");
    for (int i = 0; i < 100; i++) CHECK((int32_t)rd32(f.data + e->begin + 4 * i) == -7 + i, "big[%d]", i);
    e = eng_st_find(&f, "small");
    for (int i = 0; i < 3; i++) CHECK((int32_t)rd32(f.data + e->begin + 4 * i) == 100 + i, "small[%d]", i);
    cr_assert_eq(memcmp(f.data + eng_st_find(&f, "u")->begin, u, 5), 0);
    eng_st_close(&f);
    /* a failing generator aborts the write: its error, no file, no temporary */
    snprintf(p, sizeof p, "%s/genfail.safetensors", g_tmp);
    w = eng_st_writer_new();
    cr_assert_eq(eng_st_writer_add_gen(w, "x", "F32", 1, (int64_t[]){4}, 16, fill_fail, NULL), 0);
    cr_assert_eq(eng_st_writer_write(w, p, &err), LRQ_ENUMERIC);
    cr_assert(strstr(err.msg, "generator says no"), "%s", err.msg);
    eng_st_writer_free(w);
    snprintf(tmpf, sizeof tmpf, "%s.tmp", p);
    cr_assert_eq(access(p, F_OK), -1);
    cr_assert_eq(access(tmpf, F_OK), -1);
}

Test(export, writer_rejects_bad_input)
{
    float x[4] = {0};
    char p[400];
    snprintf(p, sizeof p, "%s/bad.safetensors", g_tmp);
    lrq_err_t err = {0};
    eng_st_writer_t *w = eng_st_writer_new();
    cr_assert_eq(eng_st_writer_add(w, "a", "F32", 1, (int64_t[]){4}, x, 16), 0);
    cr_assert_neq(eng_st_writer_add(w, "a", "F32", 1, (int64_t[]){4}, x, 16), 0);
    cr_assert_eq(eng_st_writer_write(w, p, &err), LRQ_EFORMAT);
    cr_assert(strstr(err.msg, "duplicate") && strstr(err.msg, p), "%s", err.msg);
    eng_st_writer_free(w);
    w = eng_st_writer_new();
    cr_assert_neq(eng_st_writer_add(w, "b", "F32", 1, (int64_t[]){4}, x, 12), 0);
    cr_assert_eq(eng_st_writer_write(w, p, &err), LRQ_EFORMAT);
    cr_assert(strstr(err.msg, "'b'"), "%s", err.msg);
    eng_st_writer_free(w);
    w = eng_st_writer_new();
    cr_assert_neq(eng_st_writer_add(w, "c", "Q4", 1, (int64_t[]){4}, x, 16), 0);
    eng_st_writer_free(w);
    cr_assert_eq(access(p, F_OK), -1, "nothing written on refusal");
}

/* Child process: optionally drop root (root ignores directory permissions), write, report. */
static void write_in_child(const char *path, int drop_root, rlim_t fsize, int *rc_out, char *msg, size_t cap)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (drop_root && geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
        if (fsize) {
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl = {fsize, fsize};
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(4);
        }
        static float big[16384];
        eng_st_writer_t *w = eng_st_writer_new();
        eng_st_writer_add(w, "big", "F32", 1, (int64_t[]){16384}, big, sizeof big);
        lrq_err_t err = {0};
        int rc = eng_st_writer_write(w, path, &err);
        eng_st_writer_free(w);
        dprintf(fds[1], "%d %s", rc, err.msg);
        _exit(0);
    }
    close(fds[1]);
    char buf[1200];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 3) cr_skip_test("running as root without CAP_SETUID: cannot drop root");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed to set up (%d)", WEXITSTATUS(st));
    cr_assert(n > 0);
    buf[n] = '\0';
    char *sp = strchr(buf, ' ');
    *rc_out = atoi(buf);
    snprintf(msg, cap, "%s", sp ? sp + 1 : "");
}

Test(export, writer_refuses_unwritable_dir)
{
    char d[400], p[500], msg[1200];
    snprintf(d, sizeof d, "%s/ro", g_tmp);
    cr_assert_eq(mkdir(d, 0555), 0);
    chmod(d, 0555);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    int rc;
    write_in_child(p, 1, 0, &rc, msg, sizeof msg);
    cr_assert_eq(rc, -EACCES, "rc %d: %s", rc, msg);
    cr_assert(strstr(msg, p) && strstr(msg, "Permission denied"), "message: %s", msg);
    cr_assert_eq(access(p, F_OK), -1);
}

/* A full disk and a file-size limit fail in the same write(2) path; RLIMIT_FSIZE is the
 * portable way to make it happen in a test (EFBIG instead of ENOSPC). */
Test(export, writer_reports_write_error_and_cleans_up)
{
    char p[500], msg[1200], tmpf[520];
    snprintf(p, sizeof p, "%s/full.safetensors", g_tmp);
    int rc;
    write_in_child(p, 0, 4096, &rc, msg, sizeof msg);
    cr_assert_eq(rc, -EFBIG, "rc %d: %s", rc, msg);
    cr_assert(strstr(msg, p) && strstr(msg, "write failed"), "message: %s", msg);
    cr_assert_eq(access(p, F_OK), -1, "no partial file under the final name");
    snprintf(tmpf, sizeof tmpf, "%s.tmp", p);
    cr_assert_eq(access(tmpf, F_OK), -1, "temporary file removed");
}

Test(export, hf_export_into_unwritable_dir_fails_clearly)
{
    char src[300], d[400], msg[1200];
    snprintf(src, sizeof src, "%s/src", g_tmp);
    make_synth(src);
    snprintf(d, sizeof d, "%s/ro", g_tmp);
    cr_assert_eq(mkdir(d, 0555), 0);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
        eng_model_t *m = NULL;
        lrq_err_t err = {0};
        if (eng_model_open(src, &m, &err) != 0) _exit(5);
        eng_qlinear_t *ql = quantize_model(m, 4, 0, 0);
        char od[500];
        snprintf(od, sizeof od, "%s/out", d);
        int rc = eng_export_hf(m, ql, od, &err);
        dprintf(fds[1], "%d %s", rc, err.msg);
        _exit(0);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], msg, sizeof msg - 1);
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 3) cr_skip_test("running as root without CAP_SETUID: cannot drop root");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", WEXITSTATUS(st));
    cr_assert(n > 0);
    msg[n] = '\0';
    cr_assert_eq(atoi(msg), -EACCES, "%s", msg);
    cr_assert(strstr(msg, "/ro/out") && strstr(msg, "Permission denied"), "%s", msg);
}
