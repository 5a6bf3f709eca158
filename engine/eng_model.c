/* eng_model.c — open Llama-family checkpoints: llama2.c .bin and HF directories
 * (config.json + model.safetensors or a sharded model.safetensors.index.json).
 *
 * Tensors are views into read-only private mappings; nothing is converted at open.
 * The one exception: an F32 tensor whose bytes are not 4-byte aligned in memory
 * (header length not a multiple of 4) is copied so that `data` is usable as float*. */
#include "lrq_buf.h"
#include "eng_model.h"
#include "eng_half.h"
#include "eng_safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const eng_lin_hf_name[ENG_NLIN] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj",
};
const char *const eng_lin_short_name[ENG_NLIN] = {"q", "k", "v", "o", "gate", "up", "down"};

/* Sanity caps: far above any real model, low enough that products cannot overflow. */
#define MODEL_MAX_DIM (1 << 20)
#define MODEL_MAX_LAYERS 4096

struct eng_model_priv {
    eng_st_file_t *st;   /* [n_st] safetensors shards */
    int n_st;
    void *bin_map;       /* llama2.c mapping */
    size_t bin_len;
    char **strs;         /* owned strings (tensor names, file paths) */
    int n_strs;
    size_t cap_strs;
    void **bufs;         /* owned aligned copies */
    int n_bufs;
    size_t cap_bufs;
};

const char *eng_dtype_name(eng_dtype_t dt)
{
    switch (dt) {
    case ENG_F32: return "F32";
    case ENG_F16: return "F16";
    case ENG_BF16: return "BF16";
    }
    return "?";
}

static size_t model__dtype_size(eng_dtype_t dt) { return dt == ENG_F32 ? 4 : 2; }

size_t eng_tensor_numel(const eng_tensor_t *t) { return (size_t)t->rows * (size_t)t->cols; }

/* Keep a string alive as long as the model; returns NULL on OOM. */
static const char *model__keep(eng_model_t *m, char *s)
{
    struct eng_model_priv *p = m->priv;
    if (!s) return NULL;
    if (lrq_grow(&p->strs, &p->cap_strs, (size_t)p->n_strs + 1, sizeof *p->strs)) {
        free(s);
        return NULL;
    }
    p->strs[p->n_strs++] = s;
    return s;
}

static const char *model__keepf(eng_model_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *model__keepf(eng_model_t *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int r = vasprintf(&s, fmt, ap);
    va_end(ap);
    return r < 0 ? NULL : model__keep(m, s);
}

static void *model__keep_buf(eng_model_t *m, size_t n)
{
    struct eng_model_priv *p = m->priv;
    if (lrq_grow(&p->bufs, &p->cap_bufs, (size_t)p->n_bufs + 1, sizeof *p->bufs)) return NULL;
    void *b = malloc(n ? n : 1);
    if (b) p->bufs[p->n_bufs++] = b;
    return b;
}

void eng_model_free(eng_model_t *m)
{
    if (!m) return;
    struct eng_model_priv *p = m->priv;
    if (p) {
        for (int i = 0; i < p->n_st; i++) eng_st_close(&p->st[i]);
        free(p->st);
        if (p->bin_map) munmap(p->bin_map, p->bin_len);
        for (int i = 0; i < p->n_strs; i++) free(p->strs[i]);
        free(p->strs);
        for (int i = 0; i < p->n_bufs; i++) free(p->bufs[i]);
        free(p->bufs);
        free(p);
    }
    json_decref(m->hf_config);
    free(m->layers);
    free(m->path);
    free(m->dir);
    free(m);
}

static int model__new(const char *path, eng_model_t **out, lrq_err_t *err)
{
    eng_model_t *m = calloc(1, sizeof *m);
    if (!m || !(m->priv = calloc(1, sizeof *m->priv)) || !(m->path = strdup(path))) {
        eng_model_free(m);
        return lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);
    }
    *out = m;
    return 0;
}

static char *model__dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static char *model__join(const char *dir, const char *name)
{
    char *s = NULL;
    return asprintf(&s, "%s/%s", dir, name) < 0 ? NULL : s;
}

/* Config sanity shared by both formats: positive, divisible, bounded. */
static int model__check_cfg(const eng_config_t *c, const char *file, const char *what, lrq_err_t *err)
{
    const struct { const char *name; int v; } f[] = {
        {"dim", c->dim}, {"ffn_dim", c->ffn_dim}, {"n_layers", c->n_layers}, {"n_heads", c->n_heads},
        {"n_kv_heads", c->n_kv_heads}, {"head_dim", c->head_dim}, {"vocab_size", c->vocab_size},
        {"max_seq_len", c->max_seq_len},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v <= 0 || f[i].v > MODEL_MAX_DIM)
            return lrq_errf(err, LRQ_EFORMAT, "%s: %s%s = %d out of range [1, %d]", file, what, f[i].name, f[i].v,
                            MODEL_MAX_DIM);
    if (c->n_layers > MODEL_MAX_LAYERS)
        return lrq_errf(err, LRQ_EFORMAT, "%s: n_layers = %d out of range", file, c->n_layers);
    if (c->n_heads % c->n_kv_heads)
        return lrq_errf(err, LRQ_EFORMAT, "%s: n_heads %d is not a multiple of n_kv_heads %d", file, c->n_heads,
                        c->n_kv_heads);
    if ((int64_t)c->n_heads * c->head_dim > MODEL_MAX_DIM)
        return lrq_errf(err, LRQ_EFORMAT, "%s: n_heads * head_dim too large", file);
    if (c->rope == ENG_ROPE_HALF && c->head_dim % 2)
        return lrq_errf(err, LRQ_EFORMAT, "%s: head_dim %d must be even for RoPE", file, c->head_dim);
    if (!(c->norm_eps > 0) || !isfinite(c->norm_eps))
        return lrq_errf(err, LRQ_EFORMAT, "%s: rms_norm_eps must be a positive finite number", file);
    if (!(c->rope_theta > 0) || !isfinite(c->rope_theta))
        return lrq_errf(err, LRQ_EFORMAT, "%s: rope_theta must be a positive finite number", file);
    return 0;
}

static int model__alloc_layers(eng_model_t *m, lrq_err_t *err)
{
    m->layers = calloc((size_t)m->cfg.n_layers, sizeof *m->layers);
    return m->layers ? 0 : lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", m->path);
}

/* ------------------------------------------------------------------------- */
/* llama2.c legacy .bin                                                        */

static int model__open_llama2c(eng_model_t *m, lrq_err_t *err)
{
    const char *path = m->path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lrq_errf(err, errno == ENOENT ? LRQ_ENOTFOUND : -errno, "%s: cannot open: %s", path,
                        strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lrq_errf(err, LRQ_EFORMAT, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    if (len < 28) {
        close(fd);
        return lrq_errf(err, LRQ_EFORMAT, "%s: truncated llama2.c file: %zu bytes, header alone needs 28", path,
                        len);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return lrq_errf(err, -e, "%s: mmap failed: %s", path, strerror(e));
    m->priv->bin_map = map;
    m->priv->bin_len = len;

    int32_t h[7];
    memcpy(h, map, sizeof h);
    eng_config_t *c = &m->cfg;
    c->dim = h[0];
    c->ffn_dim = h[1];
    c->n_layers = h[2];
    c->n_heads = h[3];
    c->n_kv_heads = h[4];
    int shared = h[5] > 0;
    c->vocab_size = h[5] == INT32_MIN ? 0 : abs(h[5]);
    c->max_seq_len = h[6];
    c->head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->tie_embeddings = shared;
    c->rope = ENG_ROPE_INTERLEAVED;
    int rc = model__check_cfg(c, path, "llama2.c header (not a llama2.c checkpoint?): ", err);
    if (rc) return rc;
    if (c->dim % c->n_heads)
        return lrq_errf(err, LRQ_EFORMAT, "%s: dim %d is not a multiple of n_heads %d", path, c->dim, c->n_heads);
    m->format = ENG_FMT_LLAMA2C;
    m->dtype = ENG_F32;
    if ((rc = model__alloc_layers(m, err))) return rc;

    /* Sizes in floats; all factors < 2^20 and L < 2^12, so uint64 products cannot overflow. */
    uint64_t D = (uint64_t)c->dim, F = (uint64_t)c->ffn_dim, L = (uint64_t)c->n_layers, V = (uint64_t)c->vocab_size,
             Dh = (uint64_t)c->head_dim, Hq = (uint64_t)c->n_heads * Dh, Hkv = (uint64_t)c->n_kv_heads * Dh,
             S = (uint64_t)c->max_seq_len;
    uint64_t nfl = V * D + L * D + L * Hq * D + 2 * L * Hkv * D + L * D * Hq + L * D + 3 * L * F * D + D +
                   2 * (S * Dh / 2) + (shared ? 0 : V * D);
    uint64_t need = 28 + 4 * nfl;
    if (need != len)
        return lrq_errf(err, LRQ_EFORMAT,
                        "%s: %s llama2.c file: header (dim %d, hidden_dim %d, n_layers %d, n_heads %d, "
                        "n_kv_heads %d, vocab_size %d, seq_len %d) implies %llu bytes, file has %zu",
                        path, need > len ? "truncated" : "oversized", c->dim, c->ffn_dim, c->n_layers, c->n_heads,
                        c->n_kv_heads, h[5], c->max_seq_len, (unsigned long long)need, len);

    const float *p = (const float *)((const uint8_t *)map + 28);
    const char *file = path;
    /* Lay views over the mapping in file order (llama2.c memory_map_weights). */
#define VIEW(t, nm, r, cc)                                                                   \
    do {                                                                                     \
        (t).name = (nm);                                                                     \
        if (!(t).name) return lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);         \
        (t).file = file;                                                                     \
        (t).data = p;                                                                        \
        (t).dtype = ENG_F32;                                                                 \
        (t).rows = (int64_t)(r);                                                             \
        (t).cols = (int64_t)(cc);                                                            \
        p += (uint64_t)(r) * (uint64_t)(cc);                                                 \
    } while (0)
    VIEW(m->embed, "token_embedding_table", V, D);
    for (int l = 0; l < c->n_layers; l++) VIEW(m->layers[l].attn_norm, model__keepf(m, "rms_att_weight[%d]", l), 1, D);
    /* llama2.c writes wq etc. as (layer, out, in) with out = rows, matching y = x Wᵀ. */
    static const char *const lname[ENG_NLIN] = {"wq", "wk", "wv", "wo", "w1", "w3", "w2"};
    const int file_order[] = {ENG_Q, ENG_K, ENG_V, ENG_O};
    for (int k = 0; k < 4; k++) {
        int li = file_order[k];
        uint64_t r = li == ENG_Q ? Hq : li == ENG_O ? D : Hkv, cc = li == ENG_O ? Hq : D;
        for (int l = 0; l < c->n_layers; l++)
            VIEW(m->layers[l].lin[li], model__keepf(m, "%s[%d]", lname[li], l), r, cc);
    }
    for (int l = 0; l < c->n_layers; l++) VIEW(m->layers[l].ffn_norm, model__keepf(m, "rms_ffn_weight[%d]", l), 1, D);
    for (int l = 0; l < c->n_layers; l++) VIEW(m->layers[l].lin[ENG_GATE], model__keepf(m, "w1[%d]", l), F, D);
    for (int l = 0; l < c->n_layers; l++) VIEW(m->layers[l].lin[ENG_DOWN], model__keepf(m, "w2[%d]", l), D, F);
    for (int l = 0; l < c->n_layers; l++) VIEW(m->layers[l].lin[ENG_UP], model__keepf(m, "w3[%d]", l), F, D);
    VIEW(m->final_norm, "rms_final_weight", 1, D);
    p += 2 * (S * Dh / 2); /* freq_cis_real + freq_cis_imag (S * Dh/2 each), unused */
    if (shared) m->lm_head = m->embed;
    else VIEW(m->lm_head, "wcls", V, D);
#undef VIEW
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Hugging Face directory                                                      */

/* Integer config key: required (def < 0 means required) or default. */
static int model__cfg_int(const json_t *cfg, const char *file, const char *key, int def, int *out, lrq_err_t *err)
{
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) {
        if (def < 0) return lrq_errf(err, LRQ_EFORMAT, "%s: missing required key \"%s\"", file, key);
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > MODEL_MAX_DIM)
        return lrq_errf(err, LRQ_EFORMAT, "%s: \"%s\" must be an integer in [1, %d]", file, key, MODEL_MAX_DIM);
    *out = (int)json_integer_value(v);
    return 0;
}

static int model__cfg_num(const json_t *cfg, const char *file, const char *key, double def, float *out,
                          lrq_err_t *err)
{
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) {
        *out = (float)def;
        return 0;
    }
    if (!json_is_number(v) || !(json_number_value(v) > 0) || !isfinite((float)json_number_value(v)))
        return lrq_errf(err, LRQ_EFORMAT, "%s: \"%s\" must be a positive number", file, key);
    *out = (float)json_number_value(v);
    return 0;
}

static int model__parse_hf_config(eng_model_t *m, const char *cfg_path, lrq_err_t *err)
{
    json_error_t jerr;
    json_t *cfg = json_load_file(cfg_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!cfg) {
        if (access(cfg_path, F_OK) != 0)
            return lrq_errf(err, LRQ_ENOTFOUND, "%s: not found (an HF model directory needs config.json)", cfg_path);
        return lrq_errf(err, LRQ_EFORMAT, "%s: not valid JSON: %s (line %d)", cfg_path, jerr.text, jerr.line);
    }
    m->hf_config = cfg;
    if (!json_is_object(cfg)) return lrq_errf(err, LRQ_EFORMAT, "%s: not a JSON object", cfg_path);

    /* Architecture: only the plain Llama block (Mistral shares its weights layout). */
    static const char *const ok_types[] = {"llama", "mistral"};
    json_t *mt = json_object_get(cfg, "model_type");
    if (mt && !json_is_null(mt)) {
        int ok = 0;
        for (size_t i = 0; json_is_string(mt) && i < sizeof ok_types / sizeof ok_types[0]; i++)
            ok |= strcmp(json_string_value(mt), ok_types[i]) == 0;
        if (!ok)
            return lrq_errf(err, LRQ_EUNSUPP, "%s: model_type \"%s\" is not supported (only llama/mistral)",
                            cfg_path, json_is_string(mt) ? json_string_value(mt) : "?");
    }
    json_t *arch = json_object_get(cfg, "architectures");
    if (json_is_array(arch)) {
        size_t i;
        json_t *a;
        json_array_foreach(arch, i, a) {
            const char *s = json_string_value(a);
            if (!s || (strcmp(s, "LlamaForCausalLM") && strcmp(s, "MistralForCausalLM")))
                return lrq_errf(err, LRQ_EUNSUPP,
                                "%s: architecture \"%s\" is not supported (only LlamaForCausalLM/MistralForCausalLM)",
                                cfg_path, s ? s : "?");
        }
    }
    const char *boolkeys[] = {"attention_bias", "mlp_bias"};
    for (size_t i = 0; i < 2; i++)
        if (json_is_true(json_object_get(cfg, boolkeys[i])))
            return lrq_errf(err, LRQ_EUNSUPP, "%s: \"%s\": true is not supported", cfg_path, boolkeys[i]);
    json_t *act = json_object_get(cfg, "hidden_act");
    if (act && !json_is_null(act) && (!json_is_string(act) || strcmp(json_string_value(act), "silu")))
        return lrq_errf(err, LRQ_EUNSUPP, "%s: hidden_act must be \"silu\"", cfg_path);
    json_t *rs = json_object_get(cfg, "rope_scaling");
    if (rs && !json_is_null(rs))
        return lrq_errf(err, LRQ_EUNSUPP, "%s: rope_scaling is not supported", cfg_path);

    eng_config_t *c = &m->cfg;
    int rc;
    if ((rc = model__cfg_int(cfg, cfg_path, "hidden_size", -1, &c->dim, err)) ||
        (rc = model__cfg_int(cfg, cfg_path, "intermediate_size", -1, &c->ffn_dim, err)) ||
        (rc = model__cfg_int(cfg, cfg_path, "num_hidden_layers", -1, &c->n_layers, err)) ||
        (rc = model__cfg_int(cfg, cfg_path, "num_attention_heads", -1, &c->n_heads, err)) ||
        (rc = model__cfg_int(cfg, cfg_path, "num_key_value_heads", c->n_heads, &c->n_kv_heads, err)) ||
        (rc = model__cfg_int(cfg, cfg_path, "vocab_size", -1, &c->vocab_size, err)) ||
        (rc = model__cfg_int(cfg, cfg_path, "max_position_embeddings", 2048, &c->max_seq_len, err)) ||
        (rc = model__cfg_num(cfg, cfg_path, "rms_norm_eps", 1e-6, &c->norm_eps, err)) ||
        (rc = model__cfg_num(cfg, cfg_path, "rope_theta", 10000.0, &c->rope_theta, err)))
        return rc;
    json_t *hd = json_object_get(cfg, "head_dim");
    if (!hd || json_is_null(hd)) {
        if (c->dim % c->n_heads)
            return lrq_errf(err, LRQ_EFORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d "
                            "and head_dim is not given", cfg_path, c->dim, c->n_heads);
        c->head_dim = c->dim / c->n_heads;
    } else if ((rc = model__cfg_int(cfg, cfg_path, "head_dim", -1, &c->head_dim, err)))
        return rc;
    json_t *tie = json_object_get(cfg, "tie_word_embeddings");
    if (tie && !json_is_null(tie) && !json_is_boolean(tie))
        return lrq_errf(err, LRQ_EFORMAT, "%s: \"tie_word_embeddings\" must be a boolean", cfg_path);
    c->tie_embeddings = json_is_true(tie); /* HF LlamaConfig default: false */
    c->rope = ENG_ROPE_HALF;
    if ((rc = model__check_cfg(c, cfg_path, "", err))) return rc;
    return 0;
}

/* Reject shard names that escape the model directory. */
static int model__shard_name_ok(const char *s)
{
    if (!*s || s[0] == '/' || strstr(s, "..") || strchr(s, '\\')) return 0;
    return 1;
}

/* Open the shard files: either the sharded index or model.safetensors (or `st_path`). */
static int model__open_hf_files(eng_model_t *m, const char *st_path, json_t **wmap_out, lrq_err_t *err)
{
    struct eng_model_priv *p = m->priv;
    *wmap_out = NULL;
    char *idx_path = model__join(m->dir, "model.safetensors.index.json");
    if (!idx_path) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    int rc = 0;
    json_t *idx = NULL;
    if (!st_path && access(idx_path, F_OK) == 0) {
        json_error_t jerr;
        idx = json_load_file(idx_path, JSON_REJECT_DUPLICATES, &jerr);
        if (!idx) {
            rc = lrq_errf(err, LRQ_EFORMAT, "%s: not valid JSON: %s (line %d)", idx_path, jerr.text, jerr.line);
            goto out;
        }
        json_t *wm = json_object_get(idx, "weight_map");
        if (!json_is_object(wm)) {
            rc = lrq_errf(err, LRQ_EFORMAT, "%s: \"weight_map\" missing or not an object", idx_path);
            goto out;
        }
        size_t n = json_object_size(wm);
        p->st = calloc(n ? n : 1, sizeof *p->st);
        if (!p->st) {
            rc = lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", idx_path);
            goto out;
        }
        /* Replace each weight_map value by the integer index of its opened shard. */
        json_t *shard_ids = json_object();
        json_t *wmap = json_object();
        const char *key;
        json_t *val;
        if (!shard_ids || !wmap) {
            json_decref(shard_ids);
            json_decref(wmap);
            rc = lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", idx_path);
            goto out;
        }
        json_object_foreach(wm, key, val) {
            const char *fn = json_string_value(val);
            if (!fn || !model__shard_name_ok(fn)) {
                rc = lrq_errf(err, LRQ_EFORMAT, "%s: weight_map[\"%s\"]: bad shard file name", idx_path, key);
                break;
            }
            json_t *sid = json_object_get(shard_ids, fn);
            if (!sid) {
                char *sp = model__join(m->dir, fn);
                if (!sp) {
                    rc = lrq_errf(err, LRQ_ENOMEM, "out of memory");
                    break;
                }
                rc = eng_st_open(&p->st[p->n_st], sp, err);
                if (rc == LRQ_ENOTFOUND)
                    lrq_errf(err, rc, "%s: shard %s named by %s for tensor '%s' not found", sp, fn, idx_path, key);
                free(sp);
                if (rc) break;
                sid = json_integer(p->n_st++);
                json_object_set_new(shard_ids, fn, sid);
            }
            json_object_set_new(wmap, key, json_integer(json_integer_value(sid)));
        }
        json_decref(shard_ids);
        if (rc) {
            json_decref(wmap);
            goto out;
        }
        *wmap_out = wmap;
    } else {
        char *sp = st_path ? strdup(st_path) : model__join(m->dir, "model.safetensors");
        p->st = calloc(1, sizeof *p->st);
        if (!sp || !p->st) {
            free(sp);
            rc = lrq_errf(err, LRQ_ENOMEM, "out of memory");
            goto out;
        }
        rc = eng_st_open(&p->st[0], sp, err);
        if (rc == LRQ_ENOTFOUND)
            lrq_errf(err, rc, "%s: not found (an HF model directory needs model.safetensors or "
                     "model.safetensors.index.json)", sp);
        free(sp);
        if (!rc) p->n_st = 1;
    }
out:
    json_decref(idx);
    free(idx_path);
    return rc;
}

/* Look up a tensor and bind a view with the expected shape (rows = 1 for 1-D). */
static int model__bind(eng_model_t *m, json_t *wmap, const char *name, int64_t rows, int64_t cols, int one_d,
                       eng_tensor_t *t, lrq_err_t *err)
{
    struct eng_model_priv *p = m->priv;
    const eng_st_file_t *f = NULL;
    const eng_st_entry_t *e = NULL;
    if (wmap) {
        json_t *sid = json_object_get(wmap, name);
        if (sid) {
            f = &p->st[json_integer_value(sid)];
            if (!(e = eng_st_find(f, name)))
                return lrq_errf(err, LRQ_ENOTFOUND, "%s: tensor '%s' missing (the index maps it to this file)",
                                f->path, name);
        }
    } else {
        f = &p->st[0];
        e = eng_st_find(f, name);
    }
    if (!e)
    {
        if (wmap)
            return lrq_errf(err, LRQ_ENOTFOUND, "%s/model.safetensors.index.json: tensor '%s' missing from weight_map",
                            m->dir, name);
        return lrq_errf(err, LRQ_ENOTFOUND, "%s: tensor '%s' missing", f->path, name);
    }
    eng_dtype_t dt;
    if (!strcmp(e->dtype, "F32")) dt = ENG_F32;
    else if (!strcmp(e->dtype, "F16")) dt = ENG_F16;
    else if (!strcmp(e->dtype, "BF16")) dt = ENG_BF16;
    else
        return lrq_errf(err, LRQ_EFORMAT, "%s: tensor '%s': dtype %s not supported for weights (F32, F16, BF16)",
                        f->path, name, e->dtype);
    int ok = one_d ? (e->ndim == 1 && e->shape[0] == cols)
                   : (e->ndim == 2 && e->shape[0] == rows && e->shape[1] == cols);
    if (!ok) {
        char got[96] = "[", *q = got + 1;
        for (int i = 0; i < e->ndim; i++)
            q += snprintf(q, sizeof got - (size_t)(q - got) - 2, "%s%lld", i ? ", " : "", (long long)e->shape[i]);
        strcat(q, "]");
        if (one_d)
            return lrq_errf(err, LRQ_EFORMAT, "%s: tensor '%s': shape %s inconsistent with config.json (expected [%lld])",
                            f->path, name, got, (long long)cols);
        return lrq_errf(err, LRQ_EFORMAT,
                        "%s: tensor '%s': shape %s inconsistent with config.json (expected [%lld, %lld])", f->path,
                        name, got, (long long)rows, (long long)cols);
    }
    t->name = e->name;
    t->file = f->path;
    t->dtype = dt;
    t->rows = one_d ? 1 : rows;
    t->cols = cols;
    const uint8_t *src = f->data + e->begin;
    size_t nb = (size_t)(e->end - e->begin);
    if (dt == ENG_F32 && ((uintptr_t)src & 3)) {
        void *b = model__keep_buf(m, nb);
        if (!b) return lrq_errf(err, LRQ_ENOMEM, "%s: out of memory copying '%s'", f->path, name);
        memcpy(b, src, nb);
        src = b;
    }
    t->data = src;
    return 0;
}

static int model__open_hf(eng_model_t *m, const char *cfg_path, const char *st_path, lrq_err_t *err)
{
    int rc = model__parse_hf_config(m, cfg_path, err);
    if (rc) return rc;
    m->format = ENG_FMT_HF;
    json_t *wmap = NULL;
    if ((rc = model__open_hf_files(m, st_path, &wmap, err))) return rc;
    if ((rc = model__alloc_layers(m, err))) goto out;
    const eng_config_t *c = &m->cfg;
    int64_t D = c->dim, F = c->ffn_dim, V = c->vocab_size, Hq = (int64_t)c->n_heads * c->head_dim,
            Hkv = (int64_t)c->n_kv_heads * c->head_dim;
    if ((rc = model__bind(m, wmap, "model.embed_tokens.weight", V, D, 0, &m->embed, err))) goto out;
    char name[128];
    for (int l = 0; l < c->n_layers; l++) {
        eng_layer_tensors_t *lt = &m->layers[l];
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
        if ((rc = model__bind(m, wmap, name, 1, D, 1, &lt->attn_norm, err))) goto out;
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        if ((rc = model__bind(m, wmap, name, 1, D, 1, &lt->ffn_norm, err))) goto out;
        const int64_t rows[ENG_NLIN] = {Hq, Hkv, Hkv, D, F, F, D}, cols[ENG_NLIN] = {D, D, D, Hq, D, D, F};
        for (int k = 0; k < ENG_NLIN; k++) {
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, eng_lin_hf_name[k]);
            if ((rc = model__bind(m, wmap, name, rows[k], cols[k], 0, &lt->lin[k], err))) goto out;
        }
    }
    if ((rc = model__bind(m, wmap, "model.norm.weight", 1, D, 1, &m->final_norm, err))) goto out;
    if (c->tie_embeddings) m->lm_head = m->embed; /* as transformers: a tied lm_head.weight is ignored */
    else if ((rc = model__bind(m, wmap, "lm_head.weight", V, D, 0, &m->lm_head, err)))
        goto out;
    m->dtype = m->layers[0].lin[ENG_Q].dtype;
out:
    json_decref(wmap);
    return rc;
}

static int model__ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

int eng_model_open(const char *path, eng_model_t **out, lrq_err_t *err)
{
    *out = NULL;
    if (!path || !*path) return lrq_errf(err, LRQ_ENOTFOUND, "model path is empty");
    struct stat st;
    if (stat(path, &st) < 0)
        return lrq_errf(err, errno == ENOENT ? LRQ_ENOTFOUND : -errno, "%s: %s", path, strerror(errno));
    eng_model_t *m = NULL;
    int rc = model__new(path, &m, err);
    if (rc) return rc;
    char *cfg_path = NULL;
    const char *st_path = NULL;
    if (S_ISDIR(st.st_mode)) {
        m->dir = strdup(path);
        if (m->dir) cfg_path = model__join(path, "config.json");
        if (!cfg_path) {
            rc = lrq_errf(err, LRQ_ENOMEM, "out of memory");
            goto out;
        }
        rc = model__open_hf(m, cfg_path, NULL, err);
    } else {
        if (!(m->dir = model__dirname(path))) {
            rc = lrq_errf(err, LRQ_ENOMEM, "out of memory");
            goto out;
        }
        int is_cfg = model__ends_with(path, "config.json") && !model__ends_with(path, "index.json");
        int is_idx = model__ends_with(path, ".safetensors.index.json");
        int is_st = model__ends_with(path, ".safetensors");
        if (is_cfg || is_idx || is_st) {
            if (!(cfg_path = is_cfg ? strdup(path) : model__join(m->dir, "config.json"))) {
                rc = lrq_errf(err, LRQ_ENOMEM, "out of memory");
                goto out;
            }
            st_path = is_st ? path : NULL;
            rc = model__open_hf(m, cfg_path, st_path, err);
        } else {
            rc = model__open_llama2c(m, err);
        }
    }
out:
    free(cfg_path);
    if (rc) {
        eng_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Conversion and scans                                                        */

/* Index of the first non-finite element, or -1. Works on unaligned data. */
static int64_t model__first_nonfinite(const eng_tensor_t *t)
{
    size_t n = eng_tensor_numel(t);
    const uint8_t *b = t->data;
    if (t->dtype == ENG_F32) {
        for (size_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, b + 4 * i, 4);
            if ((u & 0x7f800000u) == 0x7f800000u) return (int64_t)i;
        }
    } else {
        uint16_t mask = t->dtype == ENG_F16 ? 0x7c00u : 0x7f80u;
        for (size_t i = 0; i < n; i++) {
            uint16_t u;
            memcpy(&u, b + 2 * i, 2);
            if ((u & mask) == mask) return (int64_t)i;
        }
    }
    return -1;
}

static int model__nonfinite_err(const eng_tensor_t *t, int64_t i, lrq_err_t *err)
{
    float v;
    const uint8_t *b = t->data;
    if (t->dtype == ENG_F32) memcpy(&v, b + 4 * i, 4);
    else {
        uint16_t u;
        memcpy(&u, b + 2 * i, 2);
        v = t->dtype == ENG_F16 ? eng_f16_to_f32(u) : eng_bf16_to_f32(u);
    }
    return lrq_errf(err, LRQ_ENUMERIC, "%s: tensor '%s': non-finite value %s at flat index %lld (row %lld, col %lld)",
                    t->file, t->name, isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf", (long long)i,
                    (long long)(i / t->cols), (long long)(i % t->cols));
}

int eng_tensor_to_f32(const eng_tensor_t *t, float *dst, lrq_err_t *err)
{
    size_t n = eng_tensor_numel(t);
    const uint8_t *b = t->data;
    if (t->dtype == ENG_F32) memcpy(dst, b, n * 4);
    else if (t->dtype == ENG_F16)
        for (size_t i = 0; i < n; i++) {
            uint16_t u;
            memcpy(&u, b + 2 * i, 2);
            dst[i] = eng_f16_to_f32(u);
        }
    else
        for (size_t i = 0; i < n; i++) {
            uint16_t u;
            memcpy(&u, b + 2 * i, 2);
            dst[i] = eng_bf16_to_f32(u);
        }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(dst[i])) return model__nonfinite_err(t, (int64_t)i, err);
    return 0;
}

/* Every distinct tensor of the model, in file-ish order. */
static int model__foreach(const eng_model_t *m, int (*fn)(const eng_tensor_t *, void *), void *ctx)
{
    int rc;
    if ((rc = fn(&m->embed, ctx))) return rc;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        if ((rc = fn(&m->layers[l].attn_norm, ctx)) || (rc = fn(&m->layers[l].ffn_norm, ctx))) return rc;
        for (int k = 0; k < ENG_NLIN; k++)
            if ((rc = fn(&m->layers[l].lin[k], ctx))) return rc;
    }
    if ((rc = fn(&m->final_norm, ctx))) return rc;
    if (m->lm_head.data != m->embed.data && (rc = fn(&m->lm_head, ctx))) return rc;
    return 0;
}

void eng_model_release(const eng_model_t *m, const eng_tensor_t *t)
{
    if (!m || !m->priv || !t || !t->data) return;
    const struct eng_model_priv *p = m->priv;
    uintptr_t a = (uintptr_t)t->data, b = a + eng_tensor_numel(t) * model__dtype_size(t->dtype);
    int inside = p->bin_map && a >= (uintptr_t)p->bin_map && b <= (uintptr_t)p->bin_map + p->bin_len;
    for (int i = 0; !inside && i < p->n_st; i++)
        inside = a >= (uintptr_t)p->st[i].map && b <= (uintptr_t)p->st[i].map + p->st[i].map_len;
    if (!inside) return; /* an owned copy, not file pages */
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), lo = (a + pg - 1) & ~(pg - 1), hi = b & ~(pg - 1);
    /* Read-only private file pages: dropping them only costs a re-fault from the page cache. */
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void eng_model_release_layer(const eng_model_t *m, int l)
{
    if (!m || l < 0 || l >= m->cfg.n_layers) return;
    eng_model_release(m, &m->layers[l].attn_norm);
    eng_model_release(m, &m->layers[l].ffn_norm);
    for (int k = 0; k < ENG_NLIN; k++) eng_model_release(m, &m->layers[l].lin[k]);
}

typedef struct { const eng_model_t *m; lrq_err_t *err; } model_scan_t;

static int model__check_one(const eng_tensor_t *t, void *ctx)
{
    model_scan_t *s = ctx;
    int64_t i = model__first_nonfinite(t);
    eng_model_release(s->m, t);
    return i < 0 ? 0 : model__nonfinite_err(t, i, s->err);
}

int eng_model_check_finite(const eng_model_t *m, lrq_err_t *err)
{
    model_scan_t s = {m, err};
    return model__foreach(m, model__check_one, &s);
}

static int model__count_bytes(const eng_tensor_t *t, void *ctx)
{
    *(size_t *)ctx += eng_tensor_numel(t) * model__dtype_size(t->dtype);
    return 0;
}

size_t eng_model_weight_bytes(const eng_model_t *m)
{
    size_t n = 0;
    model__foreach(m, model__count_bytes, &n);
    return n;
}
