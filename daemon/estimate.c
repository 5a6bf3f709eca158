/* estimate.c — a job's disk use in closed form (estimate.h; the formula is written out in
 * docs/daemon.md, "Disk space before a job starts"). Sizes mirror what the worker writes:
 * worker/wk_ckpt.c (checkpoint container: 8-byte magic, 16-byte section headers, 16 + 32 byte
 * trailer), worker/wk_recon.c and worker/wk_methods.c (sections), engine/eng_export.c and
 * engine/eng_gguf.c (export tensors). Each term is rounded up by a small per-file allowance for
 * headers and JSON, so the estimate errs on the large side. */
#include "estimate.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EST_NLIN 7
#define EST_CKPT_FILE 4096u          /* container, headers, the linear's JSON: < 4 KiB per file */
#define EST_ST_PER_TENSOR 160u       /* safetensors header entry (name, dtype, shape, offsets) */
#define EST_EXPORT_FILES (256u << 10) /* config.json, quantize_config.json, lrq-manifest.json, … */
#define EST_LOGS (16u << 20)         /* log, progress.jsonl (throttled to 1 line/s), metrics.json */

/* Files the exports copy from beside the model (engine/eng_export.c exp__copy_patterns). */
static const char *const estimate__side[] = {
    "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
    "generation_config.json", "tok*.bin", "tok*.model",
};

static int estimate__ends(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static uint64_t estimate__side_bytes(const char *dir)
{
    uint64_t bytes = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int match = 0;
        for (size_t i = 0; i < sizeof estimate__side / sizeof *estimate__side; i++)
            if (!fnmatch(estimate__side[i], e->d_name, 0)) match = 1;
        char p[PATH_MAX];
        struct stat st;
        if (match && snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p && !stat(p, &st) &&
            S_ISREG(st.st_mode))
            bytes += (uint64_t)st.st_size;
    }
    if (d) closedir(d);
    return bytes;
}

static int estimate__int(json_t *cfg, const char *path, const char *key, int dflt, int *out, lrq_err_t *err)
{
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) {
        if (dflt < 0) return lrq_err_field(err, key, "%s: %s missing", path, key);
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > (1 << 24))
        return lrq_err_field(err, key, "%s: %s must be an integer in 1..%d", path, key, 1 << 24);
    *out = (int)json_integer_value(v);
    return 0;
}

static int estimate__hf(const char *cfg_path, estimate_shape_t *sh, lrq_err_t *err)
{
    json_error_t je;
    json_t *cfg = json_load_file(cfg_path, 0, &je);
    if (!cfg) return lrq_errf(err, LRQ_EFORMAT, "%s: line %d: %s", cfg_path, je.line, je.text);
    int rc = 0;
    if (!json_is_object(cfg)) rc = lrq_errf(err, LRQ_EFORMAT, "%s: not a JSON object", cfg_path);
    if (!rc) rc = estimate__int(cfg, cfg_path, "hidden_size", -1, &sh->dim, err);
    if (!rc) rc = estimate__int(cfg, cfg_path, "intermediate_size", -1, &sh->ffn, err);
    if (!rc) rc = estimate__int(cfg, cfg_path, "num_hidden_layers", -1, &sh->layers, err);
    if (!rc) rc = estimate__int(cfg, cfg_path, "num_attention_heads", -1, &sh->heads, err);
    if (!rc) rc = estimate__int(cfg, cfg_path, "num_key_value_heads", sh->heads, &sh->kv_heads, err);
    if (!rc) rc = estimate__int(cfg, cfg_path, "head_dim", sh->dim / sh->heads ? sh->dim / sh->heads : 1,
                                &sh->head_dim, err);
    if (!rc) rc = estimate__int(cfg, cfg_path, "vocab_size", -1, &sh->vocab, err);
    if (!rc) {
        sh->tied = json_is_true(json_object_get(cfg, "tie_word_embeddings"));
        const char *dt = json_string_value(json_object_get(cfg, "torch_dtype"));
        sh->dtype_bytes = dt && (!strcmp(dt, "bfloat16") || !strcmp(dt, "float16")) ? 2 : 4;
    }
    json_decref(cfg);
    return rc;
}

static int estimate__llama2c(const char *path, estimate_shape_t *sh, lrq_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lrq_errf(err, errno == ENOENT ? LRQ_ENOTFOUND : -errno, "%s: %s", path, strerror(errno));
    int32_t h[7];
    ssize_t n = read(fd, h, sizeof h);
    close(fd);
    if (n != (ssize_t)sizeof h) return lrq_errf(err, LRQ_EFORMAT, "%s: shorter than the 28-byte llama2.c header", path);
    if (h[5] == INT32_MIN) h[5] = 0;
    for (int i = 0; i < 7; i++) {
        int32_t v = i == 5 ? abs(h[i]) : h[i];   /* vocab < 0: a separate classifier */
        if (v < 1 || v > (1 << 24))
            return lrq_errf(err, LRQ_EFORMAT, "%s: llama2.c header field %d is %d (not a llama2.c checkpoint?)", path,
                            i, (int)h[i]);
    }
    *sh = (estimate_shape_t){.dim = h[0], .ffn = h[1], .layers = h[2], .heads = h[3], .kv_heads = h[4],
                             .head_dim = h[0] / h[3], .vocab = abs(h[5]), .tied = h[5] > 0, .dtype_bytes = 4};
    if (sh->head_dim < 1) return lrq_errf(err, LRQ_EFORMAT, "%s: dim %d < n_heads %d", path, h[0], h[3]);
    return 0;
}

int estimate_shape_load(const char *model_path, estimate_shape_t *sh, lrq_err_t *err)
{
    memset(sh, 0, sizeof *sh);
    struct stat st;
    if (!model_path || stat(model_path, &st))
        return lrq_errf(err, LRQ_ENOTFOUND, "%s: %s", model_path ? model_path : "(no model)", strerror(errno));
    char dir[PATH_MAX], cfg[PATH_MAX + 16];
    if (S_ISDIR(st.st_mode)) snprintf(dir, sizeof dir, "%s", model_path);
    else {
        const char *sl = strrchr(model_path, '/');
        if (!sl) snprintf(dir, sizeof dir, ".");
        else snprintf(dir, sizeof dir, "%.*s", sl == model_path ? 1 : (int)(sl - model_path), model_path);
    }
    int rc;
    if (S_ISDIR(st.st_mode) || estimate__ends(model_path, ".safetensors") || estimate__ends(model_path, "config.json") ||
        estimate__ends(model_path, ".index.json")) {
        snprintf(cfg, sizeof cfg, "%s/config.json", dir);
        rc = estimate__hf(cfg, sh, err);
    } else {
        rc = estimate__llama2c(model_path, sh, err);
    }
    if (!rc) sh->side_bytes = estimate__side_bytes(dir);
    return rc;
}

uint64_t estimate_cache_limit(const char *env_mb, uint64_t phys_bytes)
{
    if (env_mb && *env_mb) return (uint64_t)strtoull(env_mb, NULL, 10) << 20;
    return phys_bytes ? phys_bytes / 4 : (uint64_t)4 << 30;
}

/* Linear i of a block as (m rows = out features, n cols = in features), in the worker's order
 * q k v o gate up down (engine/eng_model.h ENG_Q … ENG_DOWN). */
static void estimate__lin(const estimate_shape_t *sh, int i, uint64_t *m, uint64_t *n)
{
    uint64_t D = (uint64_t)sh->dim, F = (uint64_t)sh->ffn, Hq = (uint64_t)sh->heads * (uint64_t)sh->head_dim,
             Hkv = (uint64_t)sh->kv_heads * (uint64_t)sh->head_dim;
    static const int kind[EST_NLIN] = {0, 1, 1, 2, 3, 3, 4};
    switch (kind[i]) {
    case 0: *m = Hq; *n = D; break;
    case 1: *m = Hkv; *n = D; break;
    case 2: *m = D; *n = Hq; break;
    case 3: *m = F; *n = D; break;
    default: *m = D; *n = F; break;
    }
}

static uint64_t estimate__groups(uint64_t n, int gs) { return gs <= 0 ? 1 : (n + (uint64_t)gs - 1) / (uint64_t)gs; }

/* LRQ rank rule (engine/eng_lrq.c eng_lrq_rank; docs/algorithms.md, rank policies): k, or 0 = full. */
static uint64_t estimate__rank(const lrq_spec_t *s, uint64_t m, uint64_t n, int *full)
{
    uint64_t mn = m < n ? m : n;
    double k;
    *full = 0;
    if (s->rank_policy == 1) k = s->rank;
    else if (s->rank_policy == 2) {
        if ((m <= 4096 && n > 4096) || (m > 4096 && n <= 4096) || (m == 8192 && n == 8192)) *full = 1;
        k = m >= 8192 && n >= 8192 ? 2048 : 1024;
    } else {
        k = nearbyint(s->rank_ratio * (double)mn);
    }
    if (k < 1) k = 1;
    if (k >= (double)mn) *full = 1;
    return *full ? 0 : (uint64_t)k;
}

/* Trained parameters of one block (engine/eng_lrq.c eng_lrq_param_count): per linear
 * m·G + (full ? m·n : m·k + k·n + n) + m. */
static uint64_t estimate__block_params(const lrq_spec_t *s, const estimate_shape_t *sh)
{
    int full_all = s->method == LRQ_M_FLEXROUND || (s->method == LRQ_M_LQER && s->lqer.base == LRQ_BASE_FLEXROUND);
    uint64_t p = 0;
    for (int i = 0; i < EST_NLIN; i++) {
        uint64_t m, n;
        estimate__lin(sh, i, &m, &n);
        int full = 1;
        uint64_t k = full_all ? 0 : estimate__rank(s, m, n, &full);
        p += m * estimate__groups(n, s->group_size) + (full ? m * n : m * k + k * n + n) + m;
    }
    return p;
}

static int estimate__factor_rank(const lrq_spec_t *s)
{
    return s->method == LRQ_M_LQER ? s->lqer.rank : s->method == LRQ_M_ODLRI ? s->odlri.rank : 0;
}

static int estimate__factor_bits(const lrq_spec_t *s)
{
    return s->method == LRQ_M_LQER ? s->lqer.factor_bits : s->odlri.factor_bits;
}

/* Non-linear tensors every export carries in the source dtype: embeddings, lm_head (written even
 * when tied), 2 norms per layer and the final norm. */
static uint64_t estimate__dense_rest(const estimate_shape_t *sh)
{
    uint64_t V = (uint64_t)sh->vocab, D = (uint64_t)sh->dim, L = (uint64_t)sh->layers, es = (uint64_t)sh->dtype_bytes;
    return (2 * V * D + (2 * L + 1) * D) * es;
}

/* Extra bytes of the packed exports of factored methods: L (m×r) and R (r×n) per linear, fp16
 * (factor_bits 16) or int8 with an fp16 scale per row (8). */
static uint64_t estimate__factors(const lrq_spec_t *s, uint64_t m, uint64_t n)
{
    uint64_t r = (uint64_t)estimate__factor_rank(s);
    if (!lrq_spec_factored(s) || !r) return 0;
    return estimate__factor_bits(s) == 8 ? (m + n) * r + 2 * (m + r) : 2 * (m + n) * r;
}

void estimate_job(const lrq_spec_t *s, const estimate_shape_t *sh, uint64_t cache_limit, estimate_t *out)
{
    memset(out, 0, sizeof *out);
    out->cache_limit = cache_limit;
    out->logs = EST_LOGS;
    if (sh->layers < 1 || sh->dim < 1) { out->total = out->logs; return; }
    const uint64_t L = (uint64_t)sh->layers, D = (uint64_t)sh->dim, es = (uint64_t)sh->dtype_bytes;
    const uint64_t N = (uint64_t)s->calib_samples, T = (uint64_t)s->calib_seq_len;
    const int recon = lrq_spec_uses_recon(s), methods = s->method >= LRQ_M_GPTQ;
    const int nfiles = 2 + 4 * EST_NLIN * sh->layers + 8;   /* safetensors tensors, upper bound */

    /* Activation caches: X_fp, X_q, Y (N,T,D) fp32 for the reconstruction; X for the statistics
     * pass of gptq/lqer/odlri. On disk only beyond the limit; the two passes never overlap. */
    if (s->calib_path) {
        uint64_t rc = 3 * N * T * D * 4, st = N * T * D * 4;
        if (recon && rc > cache_limit) out->caches = rc;
        if (methods && st > cache_limit && st > out->caches) out->caches = st;
    }

    /* Checkpoints: codes (1 byte per weight), scales and zeros (fp32 per row and group) of every
     * finished block or linear, plus, while a block trains, state.ckpt, state.ckpt.prev and the
     * next state.ckpt.tmp: parameters and both Adam moments, fp32. */
    uint64_t per_block = 0, factors = 0;
    for (int i = 0; i < EST_NLIN; i++) {
        uint64_t m, n;
        estimate__lin(sh, i, &m, &n);
        per_block += m * n + 2 * m * estimate__groups(n, s->group_size) * 4;
        uint64_t r = (uint64_t)estimate__factor_rank(s);
        if (lrq_spec_factored(s)) factors += (m + n) * r * 4;
    }
    /* RTN, LRQ and FlexRound keep every finished block in ckpt/block-NNN.bin (worker/wk_qstore.h:
     * the quantized model lives on disk); the reconstruction adds its state files. */
    if (recon || s->method == LRQ_M_RTN) out->checkpoints += L * (per_block + EST_CKPT_FILE);
    if (recon) out->checkpoints += 3 * (3 * estimate__block_params(s, sh) * 4 + EST_CKPT_FILE);
    if (methods) out->checkpoints += L * (per_block + factors + EST_NLIN * EST_CKPT_FILE);

    /* Exports (docs/formats.md): the non-linear tensors in the source dtype, the linears as each
     * format stores them, safetensors headers, the JSON files and the copied tokenizer files. */
    const int packed = s->export_gptq || s->export_gguf || s->export_ct;
    const uint64_t fixed = estimate__dense_rest(sh) + (uint64_t)nfiles * EST_ST_PER_TENSOR + EST_EXPORT_FILES +
                           sh->side_bytes;
    const uint64_t bits = (uint64_t)s->bits;
    const int w8a8 = s->act.bits < 16 || s->act.kv_bits < 16;   /* worker/wk_run.c: int-quantized W8A8 */
    for (int i = 0; i < EST_NLIN; i++) {
        uint64_t m, n;
        estimate__lin(sh, i, &m, &n);
        uint64_t G = estimate__groups(n, s->group_size), K = n, Nn = m, f = estimate__factors(s, m, n);
        /* beside a packed export F32 (every export dequantizes to the same fp32 Ŵ), except for the
         * factored methods, whose hf file holds Ŵ + L·R merged in the source dtype */
        if (s->export_hf) out->hf += L * m * n * (packed && !lrq_spec_factored(s) ? 4 : es);
        if (s->export_gptq)   /* qweight, qzeros (I32), scales (F16), g_idx (I32) */
            out->gptq += L * (K / 32 * bits * Nn * 4 + G * (Nn / 32) * bits * 4 + G * Nn * 2 + K * 4 + f);
        if (s->export_ct) {
            if (w8a8) out->ct += L * (Nn * K + Nn * es + 5 + f);   /* int8 weight, per-row scale, input scale */
            else out->ct += L * (Nn * (K / (32 / bits)) * 4 + Nn * G * es + (s->symmetric ? 0 : Nn / (32 / bits) * G * 4) +
                                 16 + f);
        }
        if (s->export_gguf) {
            /* block types when the grid maps onto 32-blocks (engine/eng_gguf.c), else F16 / F32 */
            int gs = s->group_size, blockable = n % 32 == 0 && (gs == 0 || (uint64_t)gs >= n || gs % 32 == 0);
            int t = s->gguf_type;   /* 0 auto, 1 q4_0, 2 q4_1, 3 q8_0, 4 f16, 5 f32 */
            if (t == 0) t = s->bits == 4 ? (s->symmetric ? 1 : 2) : s->bits == 8 && s->symmetric ? 3 : 5;
            uint64_t e = m * n, b = t == 1 ? e / 32 * 18 : t == 2 ? e / 32 * 20 : t == 3 ? e / 32 * 34 : 0;
            if (!b || !blockable) b = e * (t == 4 ? 2 : 4);
            out->gguf += L * (b + 32 + f);   /* 32: alignment padding */
        }
    }
    if (s->export_hf) out->hf += fixed;
    if (s->export_gptq) out->gptq += fixed;
    if (s->export_ct) out->ct += fixed;
    if (s->export_gguf) {
        /* norms as F32, embeddings in their dtype, lm_head only when not tied; the vocabulary's
         * pieces and scores (≤ 64 bytes a piece with its metadata) */
        uint64_t V = (uint64_t)sh->vocab;
        out->gguf += (sh->tied ? 1 : 2) * V * D * es + (2 * L + 1) * D * 4 + V * 64 + EST_EXPORT_FILES + sh->side_bytes;
    }
    out->total = out->caches + out->checkpoints + out->hf + out->gptq + out->ct + out->gguf + out->logs;
}

json_t *estimate_json(const estimate_t *e)
{
    json_t *ex = json_object();
    if (!ex) return NULL;
    if (e->hf) json_object_set_new(ex, "hf", json_integer((json_int_t)e->hf));
    if (e->gptq) json_object_set_new(ex, "gptq", json_integer((json_int_t)e->gptq));
    if (e->ct) json_object_set_new(ex, "compressed-tensors", json_integer((json_int_t)e->ct));
    if (e->gguf) json_object_set_new(ex, "gguf", json_integer((json_int_t)e->gguf));
    return json_pack("{s:I, s:I, s:I, s:o, s:I, s:I}", "total_bytes", (json_int_t)e->total, "caches_bytes",
                     (json_int_t)e->caches, "checkpoints_bytes", (json_int_t)e->checkpoints, "exports", ex,
                     "logs_bytes", (json_int_t)e->logs, "cache_limit_bytes", (json_int_t)e->cache_limit);
}
