/* eng_export.c — artifacts (docs/formats.md, HF checkpoint layout, GPTQ v1/v2 packing): "hf" (dequantized weights in
 * the source dtype) and "gptq" (int32-packed codes, v1 for symmetric, gptq_v2 for
 * asymmetric), each with config.json, tokenizer files and lrq-manifest.json.
 *
 * Shapes: a linear is (m, n) = (out, in) here; GPTQ indexes [k, n] with K = in,
 * N = out, so packing transposes. For a llama2.c source (interleaved RoPE) the
 * q/k output rows are permuted per head to HF rotate-half order on the way out. */
#include "lrq_fs.h"
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eng_export.h"
#include "lrq_sha256.h"
#include "eng_half.h"
#include "eng_safetensors.h"
#include "eng_st_gen.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this exporter copies host memory as is"
#endif

/* Files copied from beside the source model (docs/formats.md, HF checkpoint layout: tokenizer
 * files and generation_config.json are carried over unchanged). */
static const char *const exp__copy_patterns[] = {
    "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
    "generation_config.json", "tok*.bin", "tok*.model",
};

#define EXP__MAXFILES 64

typedef struct exp__files {    /* files written into outdir, for the manifest */
    char *name[EXP__MAXFILES];
    int n;
} exp__files_t;

static void exp__files_free(exp__files_t *f)
{
    for (int i = 0; i < f->n; i++) free(f->name[i]);
    f->n = 0;
}

static int exp__files_add(exp__files_t *f, const char *name, lrq_err_t *err)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->name[i], name) == 0) return 0;
    if (f->n == EXP__MAXFILES) return lrq_errf(err, LRQ_ENOMEM, "export: too many files (max %d)", EXP__MAXFILES);
    if (!(f->name[f->n] = strdup(name))) return lrq_errf(err, LRQ_ENOMEM, "export: out of memory");
    f->n++;
    return 0;
}

static const char *exp__dt_name(eng_dtype_t dt)
{
    return dt == ENG_F32 ? "F32" : dt == ENG_F16 ? "F16" : "BF16";
}

static const char *exp__torch_dtype(eng_dtype_t dt)
{
    return dt == ENG_F32 ? "float32" : dt == ENG_F16 ? "float16" : "bfloat16";
}

static size_t exp__dt_size(eng_dtype_t dt) { return dt == ENG_F32 ? 4 : 2; }

/* ---- small file helpers (atomic: tmp + fsync + rename + fsync dir) ---- */

static int exp__join(char *out, size_t cap, const char *dir, const char *name, lrq_err_t *err)
{
    int k = snprintf(out, cap, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= cap) return lrq_errf(err, LRQ_EFORMAT, "%s/%s: path too long", dir, name);
    return 0;
}

static int exp__fsync_dir(const char *dir, lrq_err_t *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return lrq_errf(err, -e, "%s: cannot fsync directory: %s", dir, strerror(e));
    }
    close(fd);
    return 0;
}

/* Write buf to dir/name atomically. If src_fd >= 0, the content is streamed from it instead. */
static int exp__write_file(const char *dir, const char *name, const void *buf, size_t len, int src_fd,
                           lrq_err_t *err)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    int rc = exp__join(path, sizeof path, dir, name, err);
    if (rc) return rc;
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return lrq_errf(err, LRQ_EFORMAT, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        return lrq_errf(err, -e, "%s: cannot create %s: %s", path, tmp, strerror(e));
    }
    char chunk[1 << 16];
    const char *p = buf;
    for (;;) {
        size_t n = len;
        if (src_fd >= 0) {
            ssize_t k = read(src_fd, chunk, sizeof chunk);
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) {
                int e = errno;
                rc = lrq_errf(err, -e, "%s: reading source failed: %s", path, strerror(e));
                goto fail;
            }
            if (k == 0) break;
            p = chunk;
            n = (size_t)k;
        } else if (len == 0) break;
        while (n) {
            ssize_t k = write(fd, p, n);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) {
                int e = k < 0 ? errno : EIO;
                rc = lrq_errf(err, -e, "%s: write failed (%s): %s", path, tmp, strerror(e));
                goto fail;
            }
            p += k;
            n -= (size_t)k;
        }
        if (src_fd < 0) break;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        rc = lrq_errf(err, -e, "%s: fsync failed: %s", tmp, strerror(e));
        goto fail;
    }
    int cfd = fd;
    fd = -1;
    if (close(cfd) != 0) {
        int e = errno;
        rc = lrq_errf(err, -e, "%s: close failed: %s", tmp, strerror(e));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        rc = lrq_errf(err, -e, "%s: cannot rename %s into place: %s", path, tmp, strerror(e));
        goto fail;
    }
    return exp__fsync_dir(dir, err);
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    return rc;
}

static int exp__write_json(const char *dir, const char *name, const json_t *j, exp__files_t *files,
                           lrq_err_t *err)
{
    /* 16 digits: doubles such as 1e-05 print as written, not 1.0000000000000001e-05 */
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(16));
    if (!s) return lrq_errf(err, LRQ_ENOMEM, "%s/%s: cannot serialise JSON", dir, name);
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return lrq_errf(err, LRQ_ENOMEM, "%s/%s: out of memory", dir, name);
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    int rc = exp__write_file(dir, name, t, n + 1, -1, err);
    free(t);
    if (!rc && files) rc = exp__files_add(files, name, err);
    return rc;
}

static int exp__mkdir_p(const char *dir, lrq_err_t *err)
{
    int rc = lrq_mkdirs(dir, err);
    if (rc) return rc;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return lrq_errf(err, LRQ_EFORMAT, "%s: exists and is not a directory", dir);
    if (access(dir, W_OK) != 0) {
        int e = errno;
        return lrq_errf(err, -e, "%s: output directory not writable: %s", dir, strerror(e));
    }
    return 0;
}

/* ---- sha256 (nettle) ---- */

static int exp__sha256_file(const char *path, char hex[2 * SHA256_DIGEST_SIZE + 1], off_t *bytes, lrq_err_t *err)
{
    long long n = 0;
    int rc = lrq_sha256_file(path, hex, &n, err);
    *bytes = (off_t)n;
    return rc;
}

/* ---- model naming, checks, permutation ---- */

static void exp__lin_name(char *buf, size_t cap, int l, int k)
{
    snprintf(buf, cap, "model.layers.%d.%s", l, eng_lin_hf_name[k]);
}

/* Source row feeding output row i: identity, except q/k of an interleaved-RoPE
 * (llama2.c) model: per head, new row j < Dh/2 takes old 2j, j ≥ Dh/2 takes old 2(j−Dh/2)+1. */
static int exp__src_row(const eng_config_t *c, int k, int i)
{
    if (c->rope != ENG_ROPE_INTERLEAVED || (k != ENG_Q && k != ENG_K)) return i;
    int dh = c->head_dim, half = dh / 2, h = i / dh, j = i % dh;
    return h * dh + (j < half ? 2 * j : 2 * (j - half) + 1);
}

/* Quantized linears consistent with the model (shapes, parameters finite, codes in range). */
static int exp__check_qs(const eng_model_t *src, const eng_qsource_t *qs, lrq_err_t *err)
{
    if (!src || !qs) return lrq_errf(err, LRQ_EFORMAT, "export: no model or no quantized linears");
    const eng_config_t *c = &src->cfg;
    if (c->rope == ENG_ROPE_INTERLEAVED && (c->head_dim <= 0 || c->head_dim % 2))
        return lrq_errf(err, LRQ_EFORMAT, "export: head_dim %d must be even to permute q/k rows", c->head_dim);
    char nm[96];
    for (int l = 0; l < c->n_layers; l++) {
        const eng_qlinear_t *lin[ENG_NLIN];
        int rc = qs->layer(qs->ctx, l, lin, err);
        if (rc) return rc;
        for (int k = 0; k < ENG_NLIN; k++) {
            const eng_tensor_t *t = &src->layers[l].lin[k];
            const eng_qlinear_t *q = lin[k];
            exp__lin_name(nm, sizeof nm, l, k);
            if (q->m != t->rows || q->n != t->cols)
                return lrq_errf(err, LRQ_EFORMAT, "export: %s: quantized shape [%d, %d] != model shape [%lld, %lld]",
                                nm, q->m, q->n, (long long)t->rows, (long long)t->cols);
            if (q->bits < 1 || q->bits > 8 || q->gs <= 0 || q->G != eng_quant_ngroups(q->n, q->gs) ||
                !q->q || !q->scale || !q->zero)
                return lrq_errf(err, LRQ_EFORMAT, "export: %s: bad quantizer state (bits %d, group %d, G %d)", nm,
                                q->bits, q->gs, q->G);
            if ((k == ENG_Q || k == ENG_K) && c->rope == ENG_ROPE_INTERLEAVED && q->m % c->head_dim)
                return lrq_errf(err, LRQ_EFORMAT, "export: %s: %d rows not a multiple of head_dim %d", nm, q->m,
                                c->head_dim);
            int maxq = (1 << q->bits) - 1;
            size_t mg = (size_t)q->m * q->G, mn = (size_t)q->m * q->n;
            for (size_t i = 0; i < mg; i++)
                if (!isfinite(q->scale[i]) || !isfinite(q->zero[i]))
                    return lrq_errf(err, LRQ_ENUMERIC, "export: %s: non-finite scale/zero at row %zu group %zu", nm,
                                    i / q->G, i % q->G);
            for (size_t i = 0; i < mn; i++)
                if (q->q[i] > maxq)
                    return lrq_errf(err, LRQ_EFORMAT, "export: %s: code %d at (%zu, %zu) exceeds %d-bit range", nm,
                                    q->q[i], i / q->n, i % q->n, q->bits);
        }
    }
    return 0;
}

/* Shortest decimal that reads back as f, as a JSON real (1e-05, not 9.99999974737875e-06). */
static json_t *exp__json_float(float f)
{
    char s[32];
    for (int p = 6; p <= 9; p++) {
        snprintf(s, sizeof s, "%.*g", p, (double)f);
        if ((float)strtod(s, NULL) == f) break;
    }
    return json_real(strtod(s, NULL));
}

/* config.json: the source's, or a LlamaForCausalLM config synthesized from cfg
 * (llama2.c source: same fields as shared/models/stories260K-hf/config.json). */
static json_t *exp__base_config(const eng_model_t *src)
{
    if (src->hf_config) return json_deep_copy(src->hf_config);
    const eng_config_t *c = &src->cfg;
    return json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:o, s:o, s:n, s:s, s:b, s:f, s:b,"
                     " s:f, s:i, s:b, s:i, s:i, s:b, s:s}",
                     "architectures", "LlamaForCausalLM", "model_type", "llama", "hidden_size", c->dim,
                     "intermediate_size", c->ffn_dim, "num_hidden_layers", c->n_layers, "num_attention_heads",
                     c->n_heads, "num_key_value_heads", c->n_kv_heads, "head_dim", c->head_dim, "vocab_size",
                     c->vocab_size, "max_position_embeddings", c->max_seq_len, "rms_norm_eps",
                     exp__json_float(c->norm_eps), "rope_theta", exp__json_float(c->rope_theta), "rope_scaling",
                     "hidden_act", "silu", "attention_bias", 0, "attention_dropout", 0.0, "mlp_bias", 0,
                     "initializer_range", 0.02, "pretraining_tp", 1, "tie_word_embeddings", c->tie_embeddings,
                     "bos_token_id", 1, "eos_token_id", 2, "use_cache", 1, "torch_dtype",
                     exp__torch_dtype(src->dtype));
}

/* Borrowed, bit-exact copy of a non-quantized tensor (1-D for norms). */
static int exp__add_copy(eng_st_writer_t *w, const char *name, const eng_tensor_t *t, int one_d)
{
    int64_t shape[2] = {t->rows, t->cols};
    size_t nbytes = (size_t)t->rows * (size_t)t->cols * exp__dt_size(t->dtype);
    if (one_d) {
        shape[0] = t->rows * t->cols;
        return eng_st_writer_add(w, name, exp__dt_name(t->dtype), 1, shape, t->data, nbytes);
    }
    return eng_st_writer_add(w, name, exp__dt_name(t->dtype), 2, shape, t->data, nbytes);
}

/* Non-linear tensors in HF order: embed first, norms per layer, then norm + lm_head. */
static void exp__add_embed(eng_st_writer_t *w, const eng_model_t *src)
{
    exp__add_copy(w, "model.embed_tokens.weight", &src->embed, 0);
}

static void exp__add_tail(eng_st_writer_t *w, const eng_model_t *src)
{
    exp__add_copy(w, "model.norm.weight", &src->final_norm, 1);
    /* lm_head is written even when tied (== embed), so readers need no tying logic */
    exp__add_copy(w, "lm_head.weight", src->lm_head.data ? &src->lm_head : &src->embed, 0);
}

static int exp__copy_side_files(const eng_model_t *src, const char *outdir, exp__files_t *files, lrq_err_t *err)
{
    if (!src->dir) return 0;
    DIR *d = opendir(src->dir);
    if (!d) return 0; /* nothing beside the model to carry over */
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        int match = 0;
        for (size_t i = 0; i < sizeof exp__copy_patterns / sizeof exp__copy_patterns[0]; i++)
            if (fnmatch(exp__copy_patterns[i], de->d_name, 0) == 0) match = 1;
        if (!match) continue;
        char sp[PATH_MAX];
        if ((rc = exp__join(sp, sizeof sp, src->dir, de->d_name, err))) break;
        struct stat st;
        if (stat(sp, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        int fd = open(sp, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            rc = lrq_errf(err, -e, "%s: cannot open: %s", sp, strerror(e));
            break;
        }
        rc = exp__write_file(outdir, de->d_name, NULL, 0, fd, err);
        close(fd);
        if (!rc) rc = exp__files_add(files, de->d_name, err);
    }
    closedir(d);
    return rc;
}

/* Prepare outdir: created, writable, not the source directory, stale loader-visible
 * files of another export kind removed. */
static int exp__prepare_dir(const eng_model_t *src, const char *outdir, lrq_err_t *err)
{
    if (!outdir || !*outdir) return lrq_errf(err, LRQ_EFORMAT, "export: no output directory");
    int rc = exp__mkdir_p(outdir, err);
    if (rc) return rc;
    char a[PATH_MAX], b[PATH_MAX];
    if (src->dir && realpath(outdir, a) && realpath(src->dir, b) && strcmp(a, b) == 0)
        return lrq_errf(err, LRQ_EFORMAT, "%s: refusing to export into the source model's directory", outdir);
    static const char *const stale[] = {"model.safetensors.index.json", "quantize_config.json"};
    for (size_t i = 0; i < 2; i++) {
        char p[PATH_MAX];
        if ((rc = exp__join(p, sizeof p, outdir, stale[i], err))) return rc;
        if (unlink(p) != 0 && errno != ENOENT) {
            int e = errno;
            return lrq_errf(err, -e, "%s: cannot remove stale file: %s", p, strerror(e));
        }
    }
    return 0;
}

/* 1 when every linear has one group per row; the first linear's settings in *q0 (a copy). */
static int exp__per_channel(const eng_model_t *src, const eng_qsource_t *qs, eng_qlinear_t *q0, int *pc, lrq_err_t *err)
{
    *pc = 1;
    for (int l = 0; l < src->cfg.n_layers; l++) {
        const eng_qlinear_t *lin[ENG_NLIN];
        int rc = qs->layer(qs->ctx, l, lin, err);
        if (rc) return rc;
        if (l == 0) *q0 = *lin[0];
        for (int k = 0; k < ENG_NLIN; k++)
            if (lin[k]->G != 1) *pc = 0;
    }
    return 0;
}

/* lrq-manifest.json: producer, source, files with sha256 (fields below). The caller may extend it (job spec, hashes
 * of source/calibration data, metrics); "method" is left null for it to fill. */
static int exp__manifest_q(const eng_model_t *src, int bits, int group, int sym, const char *outdir, const char *kind,
                           json_t *extra /* stolen, may be NULL */, exp__files_t *files, lrq_err_t *err);
static int exp__manifest(const eng_model_t *src, const eng_qsource_t *qs, const char *outdir, const char *kind,
                         json_t *extra /* stolen, may be NULL */, exp__files_t *files, lrq_err_t *err)
{
    eng_qlinear_t q0;
    int pc, rc = exp__per_channel(src, qs, &q0, &pc, err);
    if (rc) { json_decref(extra); return rc; }
    return exp__manifest_q(src, q0.bits, pc ? 0 : q0.gs, q0.symmetric, outdir, kind, extra, files, err);
}

static int exp__manifest_q(const eng_model_t *src, int bits, int group, int sym, const char *outdir, const char *kind,
                           json_t *extra /* stolen, may be NULL */, exp__files_t *files, lrq_err_t *err)
{
    int rc = 0;
    json_t *fl = json_object(), *m = NULL;
    if (!fl) {
        json_decref(extra);
        return lrq_errf(err, LRQ_ENOMEM, "export: out of memory");
    }
    for (int i = 0; i < files->n; i++) {
        char p[PATH_MAX], hex[2 * SHA256_DIGEST_SIZE + 1];
        off_t bytes = 0;
        if ((rc = exp__join(p, sizeof p, outdir, files->name[i], err))) goto out;
        if ((rc = exp__sha256_file(p, hex, &bytes, err))) goto out;
        json_object_set_new(fl, files->name[i], json_pack("{s:s, s:I}", "sha256", hex, "bytes", (json_int_t)bytes));
    }
    m = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:n, s:{s:i, s:i, s:b}, s:O}", "producer", "lrq", "version",
                  PACKAGE_VERSION, "export", kind, "source", "path", src->path ? src->path : "", "format",
                  src->format == ENG_FMT_LLAMA2C ? "llama2c" : "hf", "dtype", exp__dt_name(src->dtype), "method",
                  "quantization", "bits", bits, "group_size", group, "symmetric", sym, "files", fl);
    if (!m) {
        rc = lrq_errf(err, LRQ_ENOMEM, "export: out of memory building manifest");
        goto out;
    }
    if (extra) {
        json_object_update(m, extra);
    }
    rc = exp__write_json(outdir, "lrq-manifest.json", m, NULL, err);
out:
    json_decref(extra);
    json_decref(fl);
    json_decref(m);
    return rc;
}

/* ---- shared with the other exporters (eng_export_int.h) ---- */

int eng__export_prepare(const eng_model_t *src, const char *outdir, lrq_err_t *err)
{
    return exp__prepare_dir(src, outdir, err);
}

int eng__export_manifest(const eng_model_t *src, int bits, int group, int sym, const char *outdir, const char *kind,
                         json_t *extra, const char *const *names, int n, lrq_err_t *err)
{
    exp__files_t files = {0};
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) rc = exp__files_add(&files, names[i], err);
    if (rc) {
        json_decref(extra);
        exp__files_free(&files);
        return rc;
    }
    rc = exp__manifest_q(src, bits, group, sym, outdir, kind, extra, &files, err);
    exp__files_free(&files);
    return rc;
}

int eng__export_write_json(const char *dir, const char *name, const json_t *j, lrq_err_t *err)
{
    return exp__write_json(dir, name, j, NULL, err);
}

json_t *eng__export_base_config(const eng_model_t *src) { return exp__base_config(src); }

int eng__export_copy_side_files(const eng_model_t *src, const char *outdir, char ***names, int *n, lrq_err_t *err)
{
    exp__files_t files = {0};
    int rc = exp__copy_side_files(src, outdir, &files, err);
    *names = NULL;
    *n = 0;
    if (rc) { exp__files_free(&files); return rc; }
    char **v = calloc(files.n ? (size_t)files.n : 1, sizeof *v);
    if (!v) { exp__files_free(&files); return lrq_errf(err, LRQ_ENOMEM, "export: out of memory"); }
    for (int i = 0; i < files.n; i++) v[i] = files.name[i]; /* stolen */
    *names = v;
    *n = files.n;
    return 0;
}

int eng__export_group(const eng_model_t *src, const eng_qsource_t *qs, int *gs, lrq_err_t *err)
{
    *gs = 0;
    for (int l = 0; l < src->cfg.n_layers; l++) {
        const eng_qlinear_t *lin[ENG_NLIN];
        int rc = qs->layer(qs->ctx, l, lin, err);
        if (rc) return rc;
        for (int k = 0; k < ENG_NLIN; k++)
            if (lin[k]->gs < lin[k]->n) { *gs = lin[k]->gs; return 0; }
    }
    return 0;
}

static int exp__arr_layer(void *ctx, int l, const eng_qlinear_t *lin[ENG_NLIN], lrq_err_t *err)
{
    (void)err;
    const eng_qlinear_t *ql = ctx;
    for (int k = 0; k < ENG_NLIN; k++) lin[k] = &ql[(size_t)l * ENG_NLIN + k];
    return 0;
}

void eng_qsource_array(eng_qsource_t *s, const eng_qlinear_t *ql)
{
    s->layer = exp__arr_layer;
    s->ctx = (void *)ql;
}

/* ---- hf ---- */

/* Ŵ = s·(q − z) for one linear, output rows permuted, rounded to dt. dst (m, n). */
static void exp__dequant(const eng_config_t *c, int k, const eng_qlinear_t *q, eng_dtype_t dt, void *dst)
{
    for (int i = 0; i < q->m; i++) {
        int r = exp__src_row(c, k, i);
        const uint8_t *qr = q->q + (size_t)r * q->n;
        const float *s = q->scale + (size_t)r * q->G, *z = q->zero + (size_t)r * q->G;
        for (int j = 0; j < q->n; j++) {
            int g = j / q->gs;
            float v = s[g] * ((float)qr[j] - z[g]);
            size_t o = (size_t)i * q->n + j;
            if (dt == ENG_F32) ((float *)dst)[o] = v;
            else if (dt == ENG_BF16) ((uint16_t *)dst)[o] = eng_f32_to_bf16(v);
            else ((uint16_t *)dst)[o] = eng_f32_to_f16(v);
        }
    }
}

typedef struct exp__deq_ctx {
    const eng_model_t *src;
    const eng_qsource_t *qs;
    int l, k;
    eng_dtype_t dt;
    eng_dense_fn fn;     /* generates the (m,n) linear that replaces s·(q − z) into scratch (eng_export_hf_fn) */
    void *fn_ctx;
    float *scratch;      /* shared by all linears: (max m·n) fp32 */
} exp__deq_ctx_t;

/* eng_st_fill_fn: one linear is dequantized while the file is written, so the
 * whole dequantized model never sits in memory. */
static int exp__deq_fill(void *ctx, void *dst, size_t nbytes, lrq_err_t *err)
{
    (void)nbytes;
    const exp__deq_ctx_t *x = ctx;
    const eng_config_t *c = &x->src->cfg;
    const eng_qlinear_t *lin[ENG_NLIN];
    int rc = x->qs->layer(x->qs->ctx, x->l, lin, err); /* in writing order: one layer read at a time */
    if (rc) return rc;
    const eng_qlinear_t *q = lin[x->k];
    if (!x->fn) {
        exp__dequant(c, x->k, q, x->dt, dst);
        return 0;
    }
    if ((rc = x->fn(x->fn_ctx, x->l, x->k, x->scratch, err))) return rc;
    for (int i = 0; i < q->m; i++) { /* output rows permuted as exp__dequant */
        const float *src = x->scratch + (size_t)exp__src_row(c, x->k, i) * q->n;
        for (int j = 0; j < q->n; j++) {
            size_t o = (size_t)i * q->n + j;
            if (x->dt == ENG_F32) ((float *)dst)[o] = src[j];
            else if (x->dt == ENG_BF16) ((uint16_t *)dst)[o] = eng_f32_to_bf16(src[j]);
            else ((uint16_t *)dst)[o] = eng_f32_to_f16(src[j]);
        }
    }
    return 0;
}

static int exp__hf(const eng_model_t *src, const eng_qsource_t *qs, eng_dtype_t lin_dtype, eng_dense_fn fn,
                   void *fn_ctx, const char *outdir, lrq_err_t *err);

int eng_export_hf(const eng_model_t *src, const eng_qlinear_t *ql, const char *outdir, lrq_err_t *err)
{
    eng_qsource_t qs;
    eng_qsource_array(&qs, ql);
    return exp__hf(src, &qs, (eng_dtype_t)-1, NULL, NULL, outdir, err);
}

int eng_export_hf_as(const eng_model_t *src, const eng_qlinear_t *ql, eng_dtype_t lin_dtype, const char *outdir,
                     lrq_err_t *err)
{
    eng_qsource_t qs;
    eng_qsource_array(&qs, ql);
    return exp__hf(src, &qs, lin_dtype, NULL, NULL, outdir, err);
}

int eng_export_hf_qs(const eng_model_t *src, const eng_qsource_t *qs, eng_dtype_t lin_dtype, const char *outdir,
                     lrq_err_t *err)
{
    return exp__hf(src, qs, lin_dtype, NULL, NULL, outdir, err);
}

int eng_export_hf_fn(const eng_model_t *src, const eng_qsource_t *qs, eng_dense_fn fn, void *ctx, const char *outdir,
                     lrq_err_t *err)
{
    return exp__hf(src, qs, (eng_dtype_t)-1, fn, ctx, outdir, err);
}

/* lin_dtype < 0: the source's dtype; fn NULL: s·(q − z) from qs. */
static int exp__hf(const eng_model_t *src, const eng_qsource_t *qs, eng_dtype_t lin_dtype, eng_dense_fn fn,
                   void *fn_ctx, const char *outdir, lrq_err_t *err)
{
    int rc = exp__check_qs(src, qs, err);
    if (rc) return rc;
    if ((rc = exp__prepare_dir(src, outdir, err))) return rc;

    const eng_config_t *c = &src->cfg;
    size_t nl = (size_t)c->n_layers * ENG_NLIN;
    exp__deq_ctx_t *dc = calloc(nl ? nl : 1, sizeof *dc);
    eng_st_writer_t *w = eng_st_writer_new();
    exp__files_t files = {0};
    json_t *cfgj = NULL;
    size_t maxmn = 0;
    for (int l = 0; fn && l < c->n_layers; l++)
        for (int k = 0; k < ENG_NLIN; k++) {
            size_t mn = eng_tensor_numel(&src->layers[l].lin[k]);
            maxmn = mn > maxmn ? mn : maxmn;
        }
    float *scratch = fn ? malloc(maxmn * sizeof(float)) : NULL;
    if (!dc || !w || (fn && !scratch)) {
        rc = lrq_errf(err, LRQ_ENOMEM, "export hf: out of memory");
        goto out;
    }
    /* writer add failures are remembered by the writer and reported (with the
     * tensor name) by eng_st_writer_write, so their return values are not checked here */
    exp__add_embed(w, src);
    char nm[128];
    for (int l = 0; l < c->n_layers; l++) {
        const eng_layer_tensors_t *L = &src->layers[l];
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        exp__add_copy(w, nm, &L->attn_norm, 1);
        for (int k = 0; k < ENG_NLIN; k++) {
            const eng_tensor_t *t = &L->lin[k]; /* exp__check_qs: the quantized shapes are the model's */
            eng_dtype_t dt = (int)lin_dtype >= 0 ? lin_dtype : L->lin[k].dtype;
            size_t nb = (size_t)t->rows * t->cols * exp__dt_size(dt);
            exp__deq_ctx_t *x = &dc[(size_t)l * ENG_NLIN + k];
            *x = (exp__deq_ctx_t){src, qs, l, k, dt, fn, fn_ctx, scratch};
            int64_t shape[2] = {t->rows, t->cols};
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, eng_lin_hf_name[k]);
            eng_st_writer_add_gen(w, nm, exp__dt_name(dt), 2, shape, nb, exp__deq_fill, x);
            if (k == ENG_O) {
                snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
                exp__add_copy(w, nm, &L->ffn_norm, 1);
            }
        }
    }
    exp__add_tail(w, src);
    char path[PATH_MAX];
    if ((rc = exp__join(path, sizeof path, outdir, "model.safetensors", err))) goto out;
    rc = eng_st_writer_write(w, path, err);
    if (!rc) rc = exp__files_add(&files, "model.safetensors", err);

    if (!rc && !(cfgj = exp__base_config(src))) rc = lrq_errf(err, LRQ_ENOMEM, "export hf: cannot build config.json");
    if (!rc) json_object_del(cfgj, "quantization_config"); /* weights are plain again */
    if (!rc && (int)lin_dtype >= 0 && lin_dtype != src->dtype) /* loaders cast to torch_dtype: say what the linears are */
        json_object_set_new(cfgj, "torch_dtype", json_string(exp__torch_dtype(lin_dtype)));
    if (!rc) rc = exp__write_json(outdir, "config.json", cfgj, &files, err);
    if (!rc) rc = exp__copy_side_files(src, outdir, &files, err);
    if (!rc) rc = exp__manifest(src, qs, outdir, "hf", NULL, &files, err);
out:
    json_decref(cfgj);
    exp__files_free(&files);
    eng_st_writer_free(w);
    free(dc);
    free(scratch);
    return rc;
}

/* ---- gptq ---- */

/* Common parameters of all linears; refuses what GPTQ loaders cannot take. */
static int exp__gptq_params(const eng_model_t *src, const eng_qsource_t *qs, int *bits, int *sym, int *group,
                            lrq_err_t *err)
{
    if (!src || !qs) return lrq_errf(err, LRQ_EFORMAT, "gptq export: no model or no quantized linears");
    const eng_config_t *c = &src->cfg;
    size_t nl = (size_t)c->n_layers * ENG_NLIN;
    if (nl == 0) return lrq_errf(err, LRQ_EFORMAT, "gptq export: model has no layers");
    char nm[96];
    /* shapes first: the most common refusal, and the one the user must know about */
    for (int l = 0; l < c->n_layers; l++)
        for (int k = 0; k < ENG_NLIN; k++) {
            const eng_tensor_t *t = &src->layers[l].lin[k];
            if (t->rows % 32 || t->cols % 32) {
                exp__lin_name(nm, sizeof nm, l, k);
                return lrq_errf(err, LRQ_EUNSUPP,
                                "gptq export: %s has shape [%lld, %lld] (out_features %lld, in_features %lld): "
                                "GPTQ packing needs both to be multiples of 32",
                                nm, (long long)t->rows, (long long)t->cols, (long long)t->rows, (long long)t->cols);
            }
        }
    eng_qlinear_t q0;
    int pc, rc = exp__per_channel(src, qs, &q0, &pc, err);
    if (rc) return rc;
    int b = q0.bits, s = q0.symmetric, gs = pc ? -1 : q0.gs;
    if (b != 2 && b != 3 && b != 4 && b != 8)
        return lrq_errf(err, LRQ_EUNSUPP, "gptq export: %d-bit weights not supported (GPTQ loaders take 2, 3, 4, 8)", b);
    for (size_t i = 0; i < nl; i++) {
        const eng_qlinear_t *lin[ENG_NLIN];
        if (i % ENG_NLIN == 0 && (rc = qs->layer(qs->ctx, (int)(i / ENG_NLIN), lin, err))) return rc;
        const eng_qlinear_t *q = lin[i % ENG_NLIN];
        exp__lin_name(nm, sizeof nm, (int)(i / ENG_NLIN), (int)(i % ENG_NLIN));
        if (q->bits != b || !q->symmetric != !s)
            return lrq_errf(err, LRQ_EUNSUPP, "gptq export: %s: %d-bit %s differs from the first layer (%d-bit %s); "
                            "a GPTQ checkpoint has one setting", nm, q->bits, q->symmetric ? "sym" : "asym",
                            b, s ? "sym" : "asym");
        if (!pc && q->gs != gs)
            return lrq_errf(err, LRQ_EUNSUPP, "gptq export: %s: group size %d differs from %d", nm, q->gs, gs);
    }
    *bits = b;
    *sym = s;
    *group = gs;
    return 0;
}

int eng_export_gptq_check(const eng_model_t *src, const eng_qlinear_t *ql, lrq_err_t *err)
{
    int b, s, g;
    eng_qsource_t qs;
    eng_qsource_array(&qs, ql);
    return exp__gptq_params(src, &qs, &b, &s, &g, err);
}

/* 32 codes (< 2^bits) into `bits` words: value i at bit bits·i of the little-endian
 * 32·bits-bit stream. For 2/4/8 bits this is AutoGPTQ's 32/bits values per word;
 * for 3 bits it is the cross-word layout of AutoGPTQ/GPTQModel's pack() (v10 and v21 split;
 * docs/formats.md, GPTQ packing). */
static void exp__pack32(const uint32_t v[32], int bits, uint32_t *w)
{
    memset(w, 0, (size_t)bits * sizeof *w);
    for (int i = 0; i < 32; i++) {
        int pos = bits * i, wi = pos / 32, sh = pos % 32;
        w[wi] |= v[i] << sh;
        if (sh + bits > 32) w[wi + 1] |= v[i] >> (32 - sh);
    }
}

/* Zero points and scales a GPTQ checkpoint can hold (checked before anything is written). */
static int exp__gptq_validate(const eng_qlinear_t *q, int sym, const char *nm, lrq_err_t *err)
{
    const int maxq = (1 << q->bits) - 1, zsym = 1 << (q->bits - 1);
    for (int r = 0; r < q->m; r++)
        for (int g = 0; g < q->G; g++) {
            float z = q->zero[(size_t)r * q->G + g], s = q->scale[(size_t)r * q->G + g];
            /* zeros: integers in [0, maxq]; sym must be exactly 2^(b−1) (Marlin never reads qzeros) */
            if (z != floorf(z) || z < 0 || z > maxq || (sym && z != zsym))
                return lrq_errf(err, LRQ_EFORMAT, "gptq export: %s: zero point %g (row %d, group %d) is not %s", nm,
                                (double)z, r, g, sym ? "2^(bits-1) as symmetric GPTQ requires" : "an integer code");
            if ((eng_f32_to_f16(s) & 0x7c00u) == 0x7c00u)
                return lrq_errf(err, LRQ_ENUMERIC, "gptq export: %s: scale %g (row %d, group %d) overflows fp16", nm,
                                (double)s, r, g);
        }
    return 0;
}

typedef struct exp__gptq_ctx {
    const eng_config_t *c;
    const eng_qsource_t *qs;
    int l, k, sym, what;   /* 0 qweight, 1 qzeros, 2 scales, 3 g_idx */
} exp__gptq_ctx_t;

/* eng_st_fill_fn: one GPTQ tensor packed straight into the writer's scratch, so the packed model
 * never sits in memory at once (docs/formats.md, GPTQ packing). */
static int exp__gptq_fill(void *ctx, void *dst, size_t nbytes, lrq_err_t *err)
{
    (void)nbytes;
    const exp__gptq_ctx_t *x = ctx;
    const eng_qlinear_t *lin[ENG_NLIN];
    int rc = x->qs->layer(x->qs->ctx, x->l, lin, err); /* in writing order: one layer read at a time */
    if (rc) return rc;
    const eng_qlinear_t *q = lin[x->k];
    const eng_config_t *c = x->c;
    const int bits = q->bits, K = q->n, N = q->m, G = q->G, k = x->k;
    uint32_t v[32], wd[8];
    if (x->what == 0) { /* qweight [K*bits/32, N]: packed along K, column n = output row (after the q/k permutation) */
        uint32_t *qw = dst;
        for (int n = 0; n < N; n++) {
            const uint8_t *qr = q->q + (size_t)exp__src_row(c, k, n) * K;
            for (int b = 0; b < K / 32; b++) {
                for (int i = 0; i < 32; i++) v[i] = qr[b * 32 + i];
                exp__pack32(v, bits, wd);
                for (int w = 0; w < bits; w++) qw[((size_t)b * bits + w) * N + n] = wd[w];
            }
        }
    } else if (x->what == 1) { /* qzeros [G, N*bits/32] */
        uint32_t *qz = dst;
        const int zw = N / 32 * bits;
        for (int g = 0; g < G; g++)
            for (int cb = 0; cb < N / 32; cb++) {
                for (int i = 0; i < 32; i++) {
                    int z = (int)q->zero[(size_t)exp__src_row(c, k, cb * 32 + i) * G + g];
                    v[i] = (uint32_t)(x->sym ? z - 1 : z); /* v1 stores zero − 1 (≥ 0 for sym), v2 as is */
                }
                exp__pack32(v, bits, wd);
                for (int w = 0; w < bits; w++) qz[(size_t)g * zw + cb * bits + w] = wd[w];
            }
    } else if (x->what == 2) { /* scales [G, N] fp16 */
        uint16_t *sc = dst;
        for (int n = 0; n < N; n++)
            for (int g = 0; g < G; g++) sc[(size_t)g * N + n] = eng_f32_to_f16(q->scale[(size_t)exp__src_row(c, k, n) * G + g]);
    } else { /* g_idx [K]: G = ⌈K/gs⌉, the last group may be partial */
        int32_t *gi = dst;
        for (int j = 0; j < K; j++) gi[j] = j / q->gs;
    }
    return 0;
}

int eng_export_gptq(const eng_model_t *src, const eng_qlinear_t *ql, const char *outdir, lrq_err_t *err)
{
    eng_qsource_t qs;
    eng_qsource_array(&qs, ql);
    return eng_export_gptq_qs(src, &qs, outdir, err);
}

int eng_export_gptq_qs(const eng_model_t *src, const eng_qsource_t *qs, const char *outdir, lrq_err_t *err)
{
    int bits, sym, group;
    int rc = exp__gptq_params(src, qs, &bits, &sym, &group, err);
    if (!rc) rc = exp__check_qs(src, qs, err);
    if (rc) return rc;

    const eng_config_t *c = &src->cfg;
    size_t nl = (size_t)c->n_layers * ENG_NLIN;
    exp__gptq_ctx_t *pk = calloc(nl * 4, sizeof *pk);
    eng_st_writer_t *w = eng_st_writer_new();
    exp__files_t files = {0};
    json_t *cfgj = NULL, *qc = NULL;
    const char *fmt = sym ? "gptq" : "gptq_v2";
    char nm[128];
    if (!pk || !w) {
        rc = lrq_errf(err, LRQ_ENOMEM, "gptq export: out of memory");
        goto out;
    }
    /* validate everything before touching outdir: a refused export leaves no directory */
    for (size_t i = 0; i < nl && !rc; i++) {
        const eng_qlinear_t *lin[ENG_NLIN];
        if (i % ENG_NLIN == 0 && (rc = qs->layer(qs->ctx, (int)(i / ENG_NLIN), lin, err))) break;
        exp__lin_name(nm, sizeof nm, (int)(i / ENG_NLIN), (int)(i % ENG_NLIN));
        rc = exp__gptq_validate(lin[i % ENG_NLIN], sym, nm, err);
    }
    if (rc || (rc = exp__prepare_dir(src, outdir, err))) goto out;

    exp__add_embed(w, src); /* add failures are reported by eng_st_writer_write */
    for (int l = 0; l < c->n_layers; l++) {
        const eng_layer_tensors_t *L = &src->layers[l];
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        exp__add_copy(w, nm, &L->attn_norm, 1);
        for (int k = 0; k < ENG_NLIN; k++) {
            const eng_tensor_t *t = &L->lin[k]; /* exp__check_qs: shapes are the model's, groups as the first */
            int64_t K = t->cols, N = t->rows, G = eng_quant_ngroups((int)K, group < 0 ? (int)K : group);
            int64_t shp[4][2] = {{K / 32 * bits, N}, {G, N / 32 * bits}, {G, N}, {K, 0}};
            size_t nb[4] = {(size_t)(K / 32 * bits * N) * 4, (size_t)(G * (N / 32) * bits) * 4, (size_t)(G * N) * 2,
                            (size_t)K * 4};
            static const char *const suf[4] = {"qweight", "qzeros", "scales", "g_idx"};
            static const char *const dt[4] = {"I32", "I32", "F16", "I32"};
            for (int wh = 0; wh < 4; wh++) {
                exp__gptq_ctx_t *x = &pk[((size_t)l * ENG_NLIN + k) * 4 + wh];
                *x = (exp__gptq_ctx_t){c, qs, l, k, sym, wh};
                snprintf(nm, sizeof nm, "model.layers.%d.%s.%s", l, eng_lin_hf_name[k], suf[wh]);
                eng_st_writer_add_gen(w, nm, dt[wh], wh == 3 ? 1 : 2, shp[wh], nb[wh], exp__gptq_fill, x);
            }
            if (k == ENG_O) {
                snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
                exp__add_copy(w, nm, &L->ffn_norm, 1);
            }
        }
    }
    exp__add_tail(w, src);
    char path[PATH_MAX];
    if ((rc = exp__join(path, sizeof path, outdir, "model.safetensors", err))) goto out;
    rc = eng_st_writer_write(w, path, err);
    if (!rc) rc = exp__files_add(&files, "model.safetensors", err);

    /* quantization_config as transformers' GPTQConfig and GPTQModel read it (docs/formats.md, GPTQ
 * packing), in config.json and quantize_config.json */
    qc = json_pack("{s:s, s:i, s:i, s:b, s:b, s:b, s:b, s:f, s:s, s:s, s:b, s:s, s:{s:[s+]}}", "quant_method", "gptq",
                   "bits", bits, "group_size", group, "desc_act", 0, "sym", sym, "static_groups", 0,
                   "true_sequential", 1, "damp_percent", 0.01, "checkpoint_format", fmt, "format", fmt, "lm_head", 0,
                   "pack_dtype", "int32", "meta", "quantizer", "lrq:", PACKAGE_VERSION);
    if (!rc && (!qc || !(cfgj = exp__base_config(src))))
        rc = lrq_errf(err, LRQ_ENOMEM, "gptq export: cannot build config");
    if (!rc && json_object_set(cfgj, "quantization_config", qc) != 0)
        rc = lrq_errf(err, LRQ_ENOMEM, "gptq export: cannot build config");
    if (!rc) rc = exp__write_json(outdir, "config.json", cfgj, &files, err);
    if (!rc) rc = exp__write_json(outdir, "quantize_config.json", qc, &files, err);
    if (!rc) rc = exp__copy_side_files(src, outdir, &files, err);
    if (!rc) {
        json_t *notes = json_array();
        if (!sym)
            json_array_append_new(notes, json_string("asymmetric weights are written as checkpoint_format gptq_v2 "
                                                     "(zeros without the v1 minus-one): vLLM will not load it; "
                                                     "use transformers (optimum + gptqmodel) or GPTQModel"));
        else if (bits != 4 && bits != 8)
            json_array_append_new(notes, json_string("current vLLM loads GPTQ only for 4- and 8-bit symmetric "
                                                     "weights; use transformers (optimum + gptqmodel) or GPTQModel"));
        json_t *extra = json_pack("{s:s, s:o}", "checkpoint_format", fmt, "notes", notes ? notes : json_array());
        rc = exp__manifest(src, qs, outdir, "gptq", extra, &files, err);
    }
out:
    json_decref(qc);
    json_decref(cfgj);
    exp__files_free(&files);
    eng_st_writer_free(w);
    free(pk);
    return rc;
}

/* ---- post-export verification: re-read each artifact with its reader and compare ---- */

/* Ŵ row r of q (model order) into o (n floats): s·(q − z) in float32. */
static void exp__ref_row(const eng_qlinear_t *q, int r, float *o)
{
    const uint8_t *qr = q->q + (size_t)r * q->n;
    const float *s = q->scale + (size_t)r * q->G, *z = q->zero + (size_t)r * q->G;
    for (int j = 0; j < q->n; j++) o[j] = s[j / q->gs] * ((float)qr[j] - z[j / q->gs]);
}

/* Verifier done with [p, p + n) of a read-only mapping: drop its pages from RSS (re-read if needed),
 * so re-reading an export costs one tensor of memory, not the file. */
static void exp__drop_pages(const void *p, size_t n)
{
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1), e = ((uintptr_t)p + n) & ~((uintptr_t)pg - 1);
    if (pg > 0 && e > a) madvise((void *)a, e - a, MADV_DONTNEED);
}

static int exp__mismatch(const float *a, const float *b, int n)
{
    for (int j = 0; j < n; j++)
        if (memcmp(&a[j], &b[j], 4)) return j;
    return -1;
}

int eng_export_verify_hf(const char *dir, const eng_model_t *src, const eng_qsource_t *qs, lrq_err_t *err)
{
    eng_model_t *m = NULL;
    int rc = eng_model_open(dir, &m, err);
    if (rc) return rc;
    const eng_config_t *c = &src->cfg;
    float *a = NULL, *b = NULL;
    size_t cap = 0;
    for (int l = 0; l < c->n_layers && !rc; l++) {
        const eng_qlinear_t *lin[ENG_NLIN];
        if ((rc = qs->layer(qs->ctx, l, lin, err))) break;
        for (int k = 0; k < ENG_NLIN && !rc; k++) {
            const eng_tensor_t *t = &m->layers[l].lin[k];
            const eng_qlinear_t *q = lin[k];
            size_t n = (size_t)q->m * q->n;
            if (t->rows != q->m || t->cols != q->n) {
                rc = lrq_errf(err, LRQ_EFORMAT, "%s: verification failed: %s has the wrong shape", dir, t->name);
                break;
            }
            if (n > cap) { /* b holds one row: n ≥ q->n, so it grows with a */
                float *na = realloc(a, n * 4), *nb = na ? realloc(b, n * 4) : NULL;
                if (na) a = na;
                if (nb) b = nb;
                if (!na || !nb) { rc = lrq_errf(err, LRQ_ENOMEM, "verify: out of memory"); break; }
                cap = n;
            }
            if ((rc = eng_tensor_to_f32(t, a, err))) break;
            for (int i = 0; i < q->m && !rc; i++) {
                exp__ref_row(q, exp__src_row(c, k, i), b);
                for (int j = 0; j < q->n && t->dtype != ENG_F32; j++)
                    b[j] = t->dtype == ENG_BF16 ? eng_bf16_to_f32(eng_f32_to_bf16(b[j])) : eng_f16_to_f32(eng_f32_to_f16(b[j]));
                int j = exp__mismatch(a + (size_t)i * q->n, b, q->n);
                if (j >= 0)
                    rc = lrq_errf(err, LRQ_ENUMERIC, "%s: verification failed: %s row %d column %d reads %.9g, the "
                                  "evaluated weight is %.9g", dir, t->name, i, j, (double)a[(size_t)i * q->n + j],
                                  (double)b[j]);
            }
            eng_model_release(m, t);
        }
    }
    free(a);
    free(b);
    eng_model_free(m);
    return rc;
}

/* Value i (< 32) of a 32-value little-endian bit stream of `bits` words (docs/formats.md, GPTQ packing). */
static uint32_t exp__unpack32(const uint32_t *w, int bits, int i)
{
    int pos = bits * i, wi = pos / 32, sh = pos % 32;
    uint64_t x = w[wi] >> sh;
    if (sh + bits > 32) x |= (uint64_t)w[wi + 1] << (32 - sh);
    return (uint32_t)(x & ((1u << bits) - 1));
}

static const uint8_t *exp__st_tensor(const eng_st_file_t *f, const char *name, const char *dtype, int ndim,
                                     const int64_t *shape, lrq_err_t *err)
{
    const eng_st_entry_t *e = eng_st_find(f, name);
    int ok = e && !strcmp(e->dtype, dtype) && e->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = e->shape[d] == shape[d];
    if (!ok) {
        lrq_errf(err, LRQ_EFORMAT, "%s: verification failed: tensor %s missing or not %s of the expected shape", f->path,
                 name, dtype);
        return NULL;
    }
    return f->data + e->begin;
}

int eng_export_verify_gptq(const char *dir, const eng_model_t *src, const eng_qsource_t *qs, lrq_err_t *err)
{
    char path[PATH_MAX];
    int rc = exp__join(path, sizeof path, dir, "model.safetensors", err);
    if (rc) return rc;
    json_t *qc = NULL;
    char cp[PATH_MAX];
    if ((rc = exp__join(cp, sizeof cp, dir, "quantize_config.json", err))) return rc;
    json_error_t je;
    if (!(qc = json_load_file(cp, 0, &je))) return lrq_errf(err, LRQ_EFORMAT, "%s: %s", cp, je.text);
    const char *fmt = json_string_value(json_object_get(qc, "checkpoint_format"));
    int bits = (int)json_integer_value(json_object_get(qc, "bits"));
    int v1 = fmt && !strcmp(fmt, "gptq");
    eng_st_file_t f;
    memset(&f, 0, sizeof f);
    if ((rc = eng_st_open(&f, path, err))) { json_decref(qc); return rc; }
    const eng_config_t *c = &src->cfg;
    float *a = NULL, *b = NULL;
    for (int l = 0; l < c->n_layers && !rc; l++) {
        const eng_qlinear_t *lin[ENG_NLIN];
        if ((rc = qs->layer(qs->ctx, l, lin, err))) break;
        for (int k = 0; k < ENG_NLIN && !rc; k++) {
            const eng_qlinear_t *q = lin[k];
            int64_t K = q->n, N = q->m, G = q->G;
            if (bits != q->bits || K % 32 || N % 32) {
                rc = lrq_errf(err, LRQ_EFORMAT, "%s: verification failed: bits %d in the config, %d quantized", dir, bits,
                              q->bits);
                break;
            }
            char nm[160];
            int64_t s_qw[2] = {K / 32 * bits, N}, s_qz[2] = {G, N / 32 * bits}, s_sc[2] = {G, N}, s_gi[1] = {K};
            const uint8_t *pqw, *pqz, *psc, *pgi;
            snprintf(nm, sizeof nm, "model.layers.%d.%s.qweight", l, eng_lin_hf_name[k]);
            if (!(pqw = exp__st_tensor(&f, nm, "I32", 2, s_qw, err))) { rc = LRQ_EFORMAT; break; }
            snprintf(nm, sizeof nm, "model.layers.%d.%s.qzeros", l, eng_lin_hf_name[k]);
            if (!(pqz = exp__st_tensor(&f, nm, "I32", 2, s_qz, err))) { rc = LRQ_EFORMAT; break; }
            snprintf(nm, sizeof nm, "model.layers.%d.%s.scales", l, eng_lin_hf_name[k]);
            if (!(psc = exp__st_tensor(&f, nm, "F16", 2, s_sc, err))) { rc = LRQ_EFORMAT; break; }
            snprintf(nm, sizeof nm, "model.layers.%d.%s.g_idx", l, eng_lin_hf_name[k]);
            if (!(pgi = exp__st_tensor(&f, nm, "I32", 1, s_gi, err))) { rc = LRQ_EFORMAT; break; }
            float *na = realloc(a, (size_t)K * 4), *nb = na ? realloc(b, (size_t)K * 4) : NULL;
            if (na) a = na;
            if (nb) b = nb;
            if (!na || !nb) { rc = lrq_errf(err, LRQ_ENOMEM, "verify: out of memory"); break; }
            uint32_t w[8];
            for (int64_t n = 0; n < N && !rc; n++) { /* output column n of the file = GPTQ's [k, n] */
                for (int64_t kk = 0; kk < K; kk++) {
                    int32_t gi;
                    memcpy(&gi, pgi + 4 * kk, 4);
                    if (gi < 0 || gi >= G) { rc = lrq_errf(err, LRQ_EFORMAT, "%s: bad g_idx %d", nm, gi); break; }
                    for (int x = 0; x < bits; x++) memcpy(&w[x], pqw + 4 * (((kk / 32) * bits + x) * N + n), 4);
                    uint32_t qv = exp__unpack32(w, bits, (int)(kk % 32));
                    for (int x = 0; x < bits; x++) memcpy(&w[x], pqz + 4 * ((int64_t)gi * s_qz[1] + (n / 32) * bits + x), 4);
                    uint32_t zv = exp__unpack32(w, bits, (int)(n % 32)) + (v1 ? 1 : 0);
                    uint16_t h;
                    memcpy(&h, psc + 2 * ((int64_t)gi * N + n), 2);
                    a[kk] = eng_f16_to_f32(h) * ((float)qv - (float)zv);
                }
                if (rc) break;
                exp__ref_row(q, exp__src_row(c, k, (int)n), b);
                int j = exp__mismatch(a, b, (int)K);
                if (j >= 0)
                    rc = lrq_errf(err, LRQ_ENUMERIC, "%s: verification failed: model.layers.%d.%s output %lld input %d "
                                  "reads %.9g, the evaluated weight is %.9g", path, l, eng_lin_hf_name[k], (long long)n,
                                  j, (double)a[j], (double)b[j]);
            }
            exp__drop_pages(pqw, (size_t)(s_qw[0] * N) * 4);
            exp__drop_pages(pqz, (size_t)(G * s_qz[1]) * 4);
            exp__drop_pages(psc, (size_t)(G * N) * 2);
        }
    }
    free(a);
    free(b);
    eng_st_close(&f);
    json_decref(qc);
    return rc;
}

/* ---- compressed-tensors pack-quantized (docs/formats.md, compressed-tensors) ---- */

/* vLLM's loader rules for packed (WNA16) weights; 0 or LRQ_EUNSUPP naming the rule. */
int eng_export_ct_check(const eng_model_t *src, int bits, int group_size, int sym, lrq_err_t *err)
{
    if (!src) return lrq_errf(err, LRQ_EFORMAT, "compressed-tensors export: no model");
    if (bits != 4 && bits != 8)
        return lrq_err_field(err, "weight.bits", "compressed-tensors pack-quantized for vLLM takes 4- or 8-bit weights "
                             "(vLLM CompressedTensorsWNA16), got %d", bits);
    if (!sym && bits != 4)
        return lrq_err_field(err, "weight.symmetric", "vLLM takes zero points (asymmetric packed weights) only at 4 "
                             "bits (Marlin uint4 with zero points); use symmetric 8-bit or asymmetric 4-bit");
    const int pf = 32 / bits;
    char nm[96];
    for (int l = 0; l < src->cfg.n_layers; l++)
        for (int k = 0; k < ENG_NLIN; k++) {
            const eng_tensor_t *t = &src->layers[l].lin[k];
            exp__lin_name(nm, sizeof nm, l, k);
            if (t->cols % pf)
                return lrq_errf(err, LRQ_EUNSUPP, "compressed-tensors export: %s has %lld input features: vLLM packs "
                                "%d-bit weights %d per int32 along the input dim, so it must be a multiple of %d", nm,
                                (long long)t->cols, bits, pf, pf);
            if (!sym && t->rows % pf)
                return lrq_errf(err, LRQ_EUNSUPP, "compressed-tensors export: %s has %lld output features: zero "
                                "points are packed %d per int32 along the output dim, so it must be a multiple of %d",
                                nm, (long long)t->rows, pf, pf);
            if (group_size && t->cols % group_size)
                return lrq_errf(err, LRQ_EUNSUPP, "compressed-tensors export: %s: group size %d does not divide its "
                                "%lld input features (vLLM needs whole groups)", nm, group_size, (long long)t->cols);
        }
    return 0;
}

typedef struct exp__ct_ctx {
    const eng_model_t *src;
    const eng_qsource_t *qs;
    int l, k, what;           /* 0 weight_packed, 1 weight_scale, 2 weight_zero_point, 3 weight_shape */
    eng_dtype_t sdt;          /* scale dtype (the model's) */
} exp__ct_ctx_t;

static int exp__ct_fill(void *ctx, void *dst, size_t nbytes, lrq_err_t *err)
{
    const exp__ct_ctx_t *x = ctx;
    const eng_qlinear_t *lin[ENG_NLIN];
    int rc = x->qs->layer(x->qs->ctx, x->l, lin, err);
    if (rc) return rc;
    const eng_qlinear_t *q = lin[x->k];
    const eng_config_t *c = &x->src->cfg;
    const int bits = q->bits, pf = 32 / bits, N = q->m, K = q->n, G = q->G;
    memset(dst, 0, nbytes);
    if (x->what == 0) { /* [N, K/pf]: code q (= signed + 2^(b−1)) of input k at bit b·(k % pf) */
        uint32_t *w = dst;
        for (int n = 0; n < N; n++) {
            const uint8_t *qr = q->q + (size_t)exp__src_row(c, x->k, n) * K;
            for (int k = 0; k < K; k++) w[(size_t)n * (K / pf) + k / pf] |= (uint32_t)qr[k] << (bits * (k % pf));
        }
    } else if (x->what == 1) { /* [N, G] in the model dtype */
        for (int n = 0; n < N; n++)
            for (int g = 0; g < G; g++) {
                float s = q->scale[(size_t)exp__src_row(c, x->k, n) * G + g];
                size_t o = (size_t)n * G + g;
                if (x->sdt == ENG_F32) ((float *)dst)[o] = s;
                else ((uint16_t *)dst)[o] = x->sdt == ENG_BF16 ? eng_f32_to_bf16(s) : eng_f32_to_f16(s);
            }
    } else if (x->what == 2) { /* [N/pf, G]: zero z (= signed zp + 2^(b−1)) of output n at bit b·(n % pf) */
        uint32_t *w = dst;
        for (int n = 0; n < N; n++)
            for (int g = 0; g < G; g++)
                w[(size_t)(n / pf) * G + g] |= (uint32_t)q->zero[(size_t)exp__src_row(c, x->k, n) * G + g] << (bits * (n % pf));
    } else {
        int64_t *s = dst;
        s[0] = N;
        s[1] = K;
    }
    return 0;
}

int eng_export_ct(const eng_model_t *src, const eng_qsource_t *qs, const char *outdir, lrq_err_t *err)
{
    if (!src || !qs) return lrq_errf(err, LRQ_EFORMAT, "compressed-tensors export: no model or source");
    const eng_config_t *c = &src->cfg;
    const eng_qlinear_t *lin[ENG_NLIN];
    int rc = qs->layer(qs->ctx, 0, lin, err);
    if (rc) return rc;
    int bits = lin[0]->bits, sym = lin[0]->symmetric, gs;
    if ((rc = eng__export_group(src, qs, &gs, err))) return rc;
    if ((rc = eng_export_ct_check(src, bits, gs, sym, err))) return rc;
    eng_dtype_t sdt = src->dtype;
    int store = sdt == ENG_BF16 ? ENG_SCALE_BF16 : sdt == ENG_F16 ? ENG_SCALE_F16 : 0;
    /* every scale must be exactly the model dtype's (the quantizer rounded it) */
    for (int l = 0; l < c->n_layers && !rc; l++) {
        if ((rc = qs->layer(qs->ctx, l, lin, err))) return rc;
        for (int k = 0; k < ENG_NLIN; k++) {
            const eng_qlinear_t *q = lin[k];
            if (q->bits != bits || !q->symmetric != !sym || (q->gs < q->n && q->gs != gs))
                return lrq_errf(err, LRQ_EUNSUPP, "compressed-tensors export: layer %d %s: settings differ from "
                                "layer 0 (vLLM fuses q/k/v and gate/up: one config group)", l, eng_lin_short_name[k]);
            for (size_t i = 0; i < (size_t)q->m * q->G; i++)
                if (eng_quant_scale_ok(q->scale[i], q->zero[i], store))
                    return lrq_errf(err, LRQ_ENUMERIC, "compressed-tensors export: layer %d %s: scale %.9g is not a "
                                    "%s value (weight_scale is stored in the model dtype); the quantizer did not round "
                                    "for this export", l, eng_lin_short_name[k], (double)q->scale[i], exp__dt_name(sdt));
        }
    }
    if ((rc = exp__prepare_dir(src, outdir, err))) return rc;
    size_t nl = (size_t)c->n_layers * ENG_NLIN;
    exp__ct_ctx_t *cx = calloc(nl * 4, sizeof *cx);
    eng_st_writer_t *w = eng_st_writer_new();
    exp__files_t files = {0};
    json_t *cfgj = NULL, *qc = NULL;
    char nm[160];
    if (!cx || !w) { rc = lrq_errf(err, LRQ_ENOMEM, "compressed-tensors export: out of memory"); goto out; }
    const int pf = 32 / bits;
    exp__add_embed(w, src);
    for (int l = 0; l < c->n_layers; l++) {
        const eng_layer_tensors_t *L = &src->layers[l];
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        exp__add_copy(w, nm, &L->attn_norm, 1);
        for (int k = 0; k < ENG_NLIN; k++) {
            const eng_tensor_t *t = &L->lin[k];
            int64_t N = t->rows, K = t->cols, G = eng_quant_ngroups((int)K, gs);
            static const char *const suf[4] = {"weight_packed", "weight_scale", "weight_zero_point", "weight_shape"};
            int64_t shp[4][2] = {{N, K / pf}, {N, G}, {N / pf, G}, {2, 0}};
            const char *dt[4] = {"I32", exp__dt_name(sdt), "I32", "I64"};
            size_t nb[4] = {(size_t)(N * (K / pf)) * 4, (size_t)(N * G) * exp__dt_size(sdt), (size_t)(N / pf * G) * 4, 16};
            for (int wh = 0; wh < 4; wh++) {
                if (wh == 2 && sym) continue; /* symmetric: no zero point */
                exp__ct_ctx_t *x = &cx[((size_t)l * ENG_NLIN + k) * 4 + wh];
                *x = (exp__ct_ctx_t){src, qs, l, k, wh, sdt};
                snprintf(nm, sizeof nm, "model.layers.%d.%s.%s", l, eng_lin_hf_name[k], suf[wh]);
                eng_st_writer_add_gen(w, nm, dt[wh], wh == 3 ? 1 : 2, shp[wh], nb[wh], exp__ct_fill, x);
            }
            if (k == ENG_O) {
                snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
                exp__add_copy(w, nm, &L->ffn_norm, 1);
            }
        }
    }
    exp__add_tail(w, src);
    char path[PATH_MAX];
    if ((rc = exp__join(path, sizeof path, outdir, "model.safetensors", err))) goto out;
    rc = eng_st_writer_write(w, path, err);
    if (!rc) rc = exp__files_add(&files, "model.safetensors", err);
    /* quantization_config with long-standing keys only (older compressed-tensors releases reject
     * newer ones such as scale_dtype) */
    json_t *wa = json_pack("{s:i, s:s, s:b, s:s, s:o, s:b, s:n, s:s}", "num_bits", bits, "type", "int", "symmetric", sym,
                           "strategy", gs ? "group" : "channel", "group_size", gs ? json_integer(gs) : json_null(),
                           "dynamic", 0, "actorder", "observer", "minmax");
    qc = wa ? json_pack("{s:s, s:s, s:s, s:{s:{s:[s], s:o, s:n, s:n, s:s}}, s:[s], s:n, s:n}", "quant_method",
                        "compressed-tensors", "format", "pack-quantized", "quantization_status", "compressed",
                        "config_groups", "group_0", "targets", "Linear", "weights", wa, "input_activations",
                        "output_activations", "format", "pack-quantized", "ignore", "lm_head", "kv_cache_scheme",
                        "global_compression_ratio")
            : NULL;
    if (!rc && (!qc || !(cfgj = exp__base_config(src)))) rc = lrq_errf(err, LRQ_ENOMEM, "compressed-tensors export: config");
    if (!rc && json_object_set(cfgj, "quantization_config", qc) != 0) rc = lrq_errf(err, LRQ_ENOMEM, "config");
    if (!rc) rc = exp__write_json(outdir, "config.json", cfgj, &files, err);
    if (!rc) rc = exp__copy_side_files(src, outdir, &files, err);
    if (!rc) {
        json_t *notes = json_array();
        if (bits == 8) json_array_append_new(notes, json_string("vLLM's CPU backend takes only 4-bit packed weights; GPU kernels take 8-bit symmetric"));
        json_array_append_new(notes, json_string("one config group for every linear: vLLM fuses q/k/v and gate/up"));
        json_t *extra = json_pack("{s:o, s:[{s:s, s:s}]}", "notes", notes, "runtimes", "name", "vLLM", "scheme",
                                  sym ? (bits == 4 ? "WNA16 uint4b8" : "WNA16 uint8b128") : "WNA16 uint4 with zero points");
        rc = exp__manifest_q(src, bits, gs, sym, outdir, "compressed-tensors", extra, &files, err);
    }
out:
    json_decref(qc);
    json_decref(cfgj);
    exp__files_free(&files);
    eng_st_writer_free(w);
    free(cx);
    return rc;
}

int eng_export_verify_ct(const char *dir, const eng_model_t *src, const eng_qsource_t *qs, lrq_err_t *err)
{
    char path[PATH_MAX];
    int rc = exp__join(path, sizeof path, dir, "model.safetensors", err);
    if (rc) return rc;
    eng_st_file_t f;
    memset(&f, 0, sizeof f);
    if ((rc = eng_st_open(&f, path, err))) return rc;
    const eng_config_t *c = &src->cfg;
    float *a = NULL, *b = NULL;
    for (int l = 0; l < c->n_layers && !rc; l++) {
        const eng_qlinear_t *lin[ENG_NLIN];
        if ((rc = qs->layer(qs->ctx, l, lin, err))) break;
        for (int k = 0; k < ENG_NLIN && !rc; k++) {
            const eng_qlinear_t *q = lin[k];
            const int bits = q->bits, pf = 32 / bits, off = 1 << (bits - 1);
            int64_t N = q->m, K = q->n, G = q->G;
            char nm[160];
            int64_t s_p[2] = {N, K / pf}, s_s[2] = {N, G}, s_z[2] = {N / pf, G};
            const uint8_t *pp, *ps, *pz = NULL;
            const char *sdt = exp__dt_name(src->dtype);
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight_packed", l, eng_lin_hf_name[k]);
            if (!(pp = exp__st_tensor(&f, nm, "I32", 2, s_p, err))) { rc = LRQ_EFORMAT; break; }
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight_scale", l, eng_lin_hf_name[k]);
            if (!(ps = exp__st_tensor(&f, nm, sdt, 2, s_s, err))) { rc = LRQ_EFORMAT; break; }
            if (!q->symmetric) {
                snprintf(nm, sizeof nm, "model.layers.%d.%s.weight_zero_point", l, eng_lin_hf_name[k]);
                if (!(pz = exp__st_tensor(&f, nm, "I32", 2, s_z, err))) { rc = LRQ_EFORMAT; break; }
            }
            float *na = realloc(a, (size_t)K * 4), *nb = na ? realloc(b, (size_t)K * 4) : NULL;
            if (na) a = na;
            if (nb) b = nb;
            if (!na || !nb) { rc = lrq_errf(err, LRQ_ENOMEM, "verify: out of memory"); break; }
            for (int64_t n = 0; n < N && !rc; n++) { /* compressed-tensors: x = (q_signed − zp)·scale */
                for (int64_t kk = 0; kk < K; kk++) {
                    int64_t g = kk / q->gs;
                    uint32_t wd;
                    memcpy(&wd, pp + 4 * (n * (K / pf) + kk / pf), 4);
                    int qs_ = (int)((wd >> (bits * (kk % pf))) & ((1u << bits) - 1)) - off, zp = 0;
                    if (pz) {
                        memcpy(&wd, pz + 4 * ((n / pf) * G + g), 4);
                        zp = (int)((wd >> (bits * (n % pf))) & ((1u << bits) - 1)) - off;
                    }
                    float s;
                    if (src->dtype == ENG_F32) memcpy(&s, ps + 4 * (n * G + g), 4);
                    else {
                        uint16_t h;
                        memcpy(&h, ps + 2 * (n * G + g), 2);
                        s = src->dtype == ENG_BF16 ? eng_bf16_to_f32(h) : eng_f16_to_f32(h);
                    }
                    a[kk] = (float)(qs_ - zp) * s;
                }
                exp__ref_row(q, exp__src_row(c, k, (int)n), b);
                int j = exp__mismatch(a, b, (int)K);
                if (j >= 0)
                    rc = lrq_errf(err, LRQ_ENUMERIC, "%s: verification failed: model.layers.%d.%s output %lld input %d "
                                  "reads %.9g, the evaluated weight is %.9g", path, l, eng_lin_hf_name[k], (long long)n,
                                  j, (double)a[j], (double)b[j]);
            }
            exp__drop_pages(pp, (size_t)(N * (K / pf)) * 4);
            exp__drop_pages(ps, (size_t)(N * G) * (src->dtype == ENG_F32 ? 4 : 2));
            if (pz) exp__drop_pages(pz, (size_t)(N / pf * G) * 4);
        }
    }
    free(a);
    free(b);
    eng_st_close(&f);
    return rc;
}

/* ---- compressed-tensors int-quantized W8A8 (docs/formats.md, compressed-tensors int-quantized) ---- */

/* vLLM's CompressedTensorsW8A8Int8 rules; 0 or an error naming the spec field and the rule. */
int eng_export_ct_int_check(const eng_model_t *src, int bits, int group_size, int sym, const eng_aqcfg_t *acfg,
                            lrq_err_t *err)
{
    if (!src || !acfg) return lrq_errf(err, LRQ_EFORMAT, "compressed-tensors export: no model or activation settings");
    if (acfg->kv_bits < 16)
        return lrq_err_field(err, "activation.kv_bits", "compressed-tensors int-quantized (vLLM W8A8) carries no K/V "
                             "output scales; leave kv_bits at 16 for this export");
    if (acfg->bits != 8)
        return lrq_err_field(err, "activation.bits", "compressed-tensors with quantized activations is vLLM's W8A8 "
                             "(CompressedTensorsW8A8Int8): it takes 8-bit activations, got %d", acfg->bits);
    if (bits != 8)
        return lrq_err_field(err, "weight.bits", "vLLM's W8A8 int-quantized takes 8-bit weights beside 8-bit "
                             "activations, got %d", bits);
    if (!sym)
        return lrq_err_field(err, "weight.symmetric", "vLLM's W8A8 int-quantized takes symmetric weights only "
                             "(no weight zero points)");
    if (group_size)
        return lrq_err_field(err, "weight.group_size", "vLLM's W8A8 int-quantized takes per-channel weight scales, "
                             "not groups (group_size %d)", group_size);
    return 0;
}

/* eng_actq.c's mapping, here so that the export library does not link the activation code */
static int exp__site_of_linear(int lin)
{
    static const int map[ENG_NLIN] = {ENG_AQ_ATTN_IN, ENG_AQ_ATTN_IN, ENG_AQ_ATTN_IN, ENG_AQ_O_IN,
                                      ENG_AQ_FFN_IN,  ENG_AQ_FFN_IN,  ENG_AQ_DOWN_IN};
    return map[lin];
}
static const char *const exp__site_name[ENG_AQ_K_OUT] = {"attn_in", "o_in", "ffn_in", "down_in"};

typedef struct exp__cti_ctx {
    const eng_qsource_t *qs;
    const eng_config_t *c;
    const eng_actq_t *aq;
    int l, k, what;           /* 0 weight, 1 weight_scale, 2 input_scale, 3 input_zero_point */
    eng_dtype_t sdt;
} exp__cti_ctx_t;

static int exp__cti_fill(void *ctx, void *dst, size_t nbytes, lrq_err_t *err)
{
    const exp__cti_ctx_t *x = ctx;
    memset(dst, 0, nbytes);
    if (x->what >= 2) { /* [1]: the static range of the input site this linear reads */
        int site = exp__site_of_linear(x->k);
        if (x->what == 2) ((float *)dst)[0] = x->aq->layer[x->l].scale[site];
        else ((int8_t *)dst)[0] = (int8_t)((int)x->aq->layer[x->l].zero[site] - 128);
        return 0;
    }
    const eng_qlinear_t *lin[ENG_NLIN];
    int rc = x->qs->layer(x->qs->ctx, x->l, lin, err);
    if (rc) return rc;
    const eng_qlinear_t *q = lin[x->k];
    const int N = q->m, K = q->n;
    for (int n = 0; n < N; n++) {
        int r = exp__src_row(x->c, x->k, n);
        if (x->what == 0) { /* [N, K] int8: code − zero */
            const uint8_t *qr = q->q + (size_t)r * K;
            int z = (int)q->zero[(size_t)r * q->G];
            for (int k = 0; k < K; k++) ((int8_t *)dst)[(size_t)n * K + k] = (int8_t)((int)qr[k] - z);
        } else { /* [N, 1] in the model dtype */
            float s = q->scale[(size_t)r * q->G];
            if (x->sdt == ENG_F32) ((float *)dst)[n] = s;
            else ((uint16_t *)dst)[n] = x->sdt == ENG_BF16 ? eng_f32_to_bf16(s) : eng_f32_to_f16(s);
        }
    }
    return 0;
}

int eng_export_ct_int(const eng_model_t *src, const eng_qsource_t *qs, const eng_actq_t *aq, const char *outdir,
                      lrq_err_t *err)
{
    if (!src || !qs || !aq) return lrq_errf(err, LRQ_EFORMAT, "compressed-tensors export: no model, source or activations");
    const eng_config_t *c = &src->cfg;
    const eng_qlinear_t *lin[ENG_NLIN];
    int rc = qs->layer(qs->ctx, 0, lin, err);
    if (rc) return rc;
    int gs;
    if ((rc = eng__export_group(src, qs, &gs, err))) return rc;
    if ((rc = eng_export_ct_int_check(src, lin[0]->bits, gs, lin[0]->symmetric, &aq->cfg, err))) return rc;
    if (aq->L != c->n_layers) return lrq_errf(err, LRQ_EFORMAT, "compressed-tensors export: activation layers differ");
    const int dyn = aq->cfg.granularity == ENG_AQ_PER_TOKEN, asym = !aq->cfg.symmetric;
    eng_dtype_t sdt = src->dtype;
    int store = sdt == ENG_BF16 ? ENG_SCALE_BF16 : sdt == ENG_F16 ? ENG_SCALE_F16 : 0;
    for (int l = 0; l < c->n_layers; l++) {
        if ((rc = qs->layer(qs->ctx, l, lin, err))) return rc;
        for (int k = 0; k < ENG_NLIN; k++) {
            const eng_qlinear_t *q = lin[k];
            if (q->bits != 8 || !q->symmetric || q->G != 1)
                return lrq_errf(err, LRQ_EUNSUPP, "compressed-tensors export: layer %d %s: not 8-bit symmetric "
                                "per-channel like layer 0 (vLLM W8A8: one config group)", l, eng_lin_short_name[k]);
            for (int n = 0; n < q->m; n++) {
                if (eng_quant_scale_ok(q->scale[n], q->zero[n], store))
                    return lrq_errf(err, LRQ_ENUMERIC, "compressed-tensors export: layer %d %s: scale %.9g is not a "
                                    "%s value (weight_scale is stored in the model dtype)", l, eng_lin_short_name[k],
                                    (double)q->scale[n], exp__dt_name(sdt));
                for (int kk = 0; kk < q->n; kk++) {
                    int v = (int)q->q[(size_t)n * q->n + kk] - (int)q->zero[n];
                    if (v < -128 || v > 127)
                        return lrq_errf(err, LRQ_ENUMERIC, "compressed-tensors export: layer %d %s: code − zero = %d "
                                        "is outside int8", l, eng_lin_short_name[k], v);
                }
            }
        }
        for (int s = 0; !dyn && s < ENG_AQ_K_OUT; s++)
            if (!(aq->layer[l].scale[s] > 0) || !isfinite(aq->layer[l].scale[s]))
                return lrq_errf(err, LRQ_ENUMERIC, "compressed-tensors export: layer %d %s: no static input scale", l,
                                exp__site_name[s]);
    }
    if ((rc = exp__prepare_dir(src, outdir, err))) return rc;
    size_t nl = (size_t)c->n_layers * ENG_NLIN;
    exp__cti_ctx_t *cx = calloc(nl * 4, sizeof *cx);
    eng_st_writer_t *w = eng_st_writer_new();
    exp__files_t files = {0};
    json_t *cfgj = NULL, *qc = NULL;
    char nm[160];
    if (!cx || !w) { rc = lrq_errf(err, LRQ_ENOMEM, "compressed-tensors export: out of memory"); goto out; }
    exp__add_embed(w, src);
    for (int l = 0; l < c->n_layers; l++) {
        const eng_layer_tensors_t *L = &src->layers[l];
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        exp__add_copy(w, nm, &L->attn_norm, 1);
        for (int k = 0; k < ENG_NLIN; k++) {
            const eng_tensor_t *t = &L->lin[k];
            int64_t N = t->rows, K = t->cols;
            static const char *const suf[4] = {"weight", "weight_scale", "input_scale", "input_zero_point"};
            int64_t shp[4][2] = {{N, K}, {N, 1}, {1, 0}, {1, 0}};
            const char *dt[4] = {"I8", exp__dt_name(sdt), "F32", "I8"};
            size_t nb[4] = {(size_t)(N * K), (size_t)N * exp__dt_size(sdt), 4, 1};
            for (int wh = 0; wh < 4; wh++) {
                if (wh >= 2 && dyn) continue;   /* dynamic per-token: no input ranges */
                if (wh == 3 && !asym) continue; /* symmetric activations: no zero point */
                exp__cti_ctx_t *x = &cx[((size_t)l * ENG_NLIN + k) * 4 + wh];
                *x = (exp__cti_ctx_t){qs, c, aq, l, k, wh, sdt};
                snprintf(nm, sizeof nm, "model.layers.%d.%s.%s", l, eng_lin_hf_name[k], suf[wh]);
                eng_st_writer_add_gen(w, nm, dt[wh], wh >= 2 ? 1 : 2, shp[wh], nb[wh], exp__cti_fill, x);
            }
            if (k == ENG_O) {
                snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
                exp__add_copy(w, nm, &L->ffn_norm, 1);
            }
        }
    }
    exp__add_tail(w, src);
    char path[PATH_MAX];
    if ((rc = exp__join(path, sizeof path, outdir, "model.safetensors", err))) goto out;
    rc = eng_st_writer_write(w, path, err);
    if (!rc) rc = exp__files_add(&files, "model.safetensors", err);
    /* the pack-quantized config's long-standing keys, with input_activations filled */
    json_t *wa = json_pack("{s:i, s:s, s:b, s:s, s:n, s:b, s:n, s:s}", "num_bits", 8, "type", "int", "symmetric", 1,
                           "strategy", "channel", "group_size", "dynamic", 0, "actorder", "observer", "minmax");
    json_t *ia = json_pack("{s:i, s:s, s:b, s:s, s:n, s:b, s:n, s:s}", "num_bits", 8, "type", "int", "symmetric", !asym,
                           "strategy", dyn ? "token" : "tensor", "group_size", "dynamic", dyn, "actorder", "observer",
                           dyn ? "memoryless" : "minmax");
    if (!wa || !ia) {
        json_decref(wa);
        json_decref(ia);
        wa = ia = NULL;
    }
    qc = wa ? json_pack("{s:s, s:s, s:s, s:{s:{s:[s], s:o, s:o, s:n, s:s}}, s:[s], s:n, s:n}", "quant_method",
                        "compressed-tensors", "format", "int-quantized", "quantization_status", "compressed",
                        "config_groups", "group_0", "targets", "Linear", "weights", wa, "input_activations", ia,
                        "output_activations", "format", "int-quantized", "ignore", "lm_head", "kv_cache_scheme",
                        "global_compression_ratio")
            : NULL;
    if (!rc && (!qc || !(cfgj = exp__base_config(src)))) rc = lrq_errf(err, LRQ_ENOMEM, "compressed-tensors export: config");
    if (!rc && json_object_set(cfgj, "quantization_config", qc) != 0) rc = lrq_errf(err, LRQ_ENOMEM, "config");
    if (!rc) rc = exp__write_json(outdir, "config.json", cfgj, &files, err);
    if (!rc) rc = exp__copy_side_files(src, outdir, &files, err);
    if (!rc) {
        json_t *extra = json_pack("{s:[s, s], s:[{s:s}]}", "notes",
                                  "W8A8: int8 weights with per-channel scales, int8 activations",
                                  dyn ? "activations: dynamic per-token ranges" :
                                        "activations: static per-tensor input_scale from activation.json (q/k/v share "
                                        "one, gate/up share one)",
                                  "runtimes", "name", "vLLM", "scheme",
                                  dyn ? "W8A8 int8 dynamic per-token" : "W8A8 int8 static per-tensor");
        rc = exp__manifest_q(src, 8, 0, 1, outdir, "compressed-tensors", extra, &files, err);
    }
out:
    json_decref(qc);
    json_decref(cfgj);
    exp__files_free(&files);
    eng_st_writer_free(w);
    free(cx);
    return rc;
}

int eng_export_verify_ct_int(const char *dir, const eng_model_t *src, const eng_qsource_t *qs, const eng_actq_t *aq,
                             lrq_err_t *err)
{
    char path[PATH_MAX];
    int rc = exp__join(path, sizeof path, dir, "model.safetensors", err);
    if (rc) return rc;
    eng_st_file_t f;
    memset(&f, 0, sizeof f);
    if ((rc = eng_st_open(&f, path, err))) return rc;
    const eng_config_t *c = &src->cfg;
    const int dyn = aq->cfg.granularity == ENG_AQ_PER_TOKEN, asym = !aq->cfg.symmetric;
    float *a = NULL, *b = NULL;
    for (int l = 0; l < c->n_layers && !rc; l++) {
        const eng_qlinear_t *lin[ENG_NLIN];
        if ((rc = qs->layer(qs->ctx, l, lin, err))) break;
        for (int k = 0; k < ENG_NLIN && !rc; k++) {
            const eng_qlinear_t *q = lin[k];
            int64_t N = q->m, K = q->n;
            char nm[160];
            int64_t s_w[2] = {N, K}, s_s[2] = {N, 1}, s_1[1] = {1};
            const uint8_t *pw, *ps;
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, eng_lin_hf_name[k]);
            if (!(pw = exp__st_tensor(&f, nm, "I8", 2, s_w, err))) { rc = LRQ_EFORMAT; break; }
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight_scale", l, eng_lin_hf_name[k]);
            if (!(ps = exp__st_tensor(&f, nm, exp__dt_name(src->dtype), 2, s_s, err))) { rc = LRQ_EFORMAT; break; }
            int site = exp__site_of_linear(k);
            snprintf(nm, sizeof nm, "model.layers.%d.%s.input_scale", l, eng_lin_hf_name[k]);
            if (dyn) {
                if (eng_st_find(&f, nm)) {
                    rc = lrq_errf(err, LRQ_EFORMAT, "%s: verification failed: %s present with dynamic activations", path, nm);
                    break;
                }
            } else {
                const uint8_t *pi = exp__st_tensor(&f, nm, "F32", 1, s_1, err);
                float is;
                if (!pi) { rc = LRQ_EFORMAT; break; }
                memcpy(&is, pi, 4);
                if (memcmp(&is, &aq->layer[l].scale[site], 4)) {
                    rc = lrq_errf(err, LRQ_ENUMERIC, "%s: verification failed: %s reads %.9g, activation.json's %s "
                                  "scale is %.9g", path, nm, (double)is, exp__site_name[site],
                                  (double)aq->layer[l].scale[site]);
                    break;
                }
                snprintf(nm, sizeof nm, "model.layers.%d.%s.input_zero_point", l, eng_lin_hf_name[k]);
                if (asym) {
                    const uint8_t *pz = exp__st_tensor(&f, nm, "I8", 1, s_1, err);
                    if (!pz) { rc = LRQ_EFORMAT; break; }
                    if ((int)(int8_t)pz[0] + 128 != (int)aq->layer[l].zero[site]) {
                        rc = lrq_errf(err, LRQ_ENUMERIC, "%s: verification failed: %s reads %d, activation.json's "
                                      "zero_point %g − 128", path, nm, (int)(int8_t)pz[0], (double)aq->layer[l].zero[site]);
                        break;
                    }
                } else if (eng_st_find(&f, nm)) {
                    rc = lrq_errf(err, LRQ_EFORMAT, "%s: verification failed: %s present with symmetric activations",
                                  path, nm);
                    break;
                }
            }
            float *na = realloc(a, (size_t)K * 4), *nb = na ? realloc(b, (size_t)K * 4) : NULL;
            if (na) a = na;
            if (nb) b = nb;
            if (!na || !nb) { rc = lrq_errf(err, LRQ_ENOMEM, "verify: out of memory"); break; }
            for (int64_t n = 0; n < N && !rc; n++) { /* int-quantized: x = weight · weight_scale */
                float s;
                if (src->dtype == ENG_F32) memcpy(&s, ps + 4 * n, 4);
                else {
                    uint16_t h;
                    memcpy(&h, ps + 2 * n, 2);
                    s = src->dtype == ENG_BF16 ? eng_bf16_to_f32(h) : eng_f16_to_f32(h);
                }
                for (int64_t kk = 0; kk < K; kk++) a[kk] = (float)(int8_t)pw[n * K + kk] * s;
                exp__ref_row(q, exp__src_row(c, k, (int)n), b);
                int j = exp__mismatch(a, b, (int)K);
                if (j >= 0)
                    rc = lrq_errf(err, LRQ_ENUMERIC, "%s: verification failed: model.layers.%d.%s output %lld input %d "
                                  "reads %.9g, the evaluated weight is %.9g", path, l, eng_lin_hf_name[k], (long long)n,
                                  j, (double)a[j], (double)b[j]);
            }
            exp__drop_pages(pw, (size_t)(N * K));
        }
    }
    free(a);
    free(b);
    eng_st_close(&f);
    return rc;
}
