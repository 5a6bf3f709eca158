/* eng_model.h — Llama-family checkpoints: config, tensor views over mmap'd files.
 *
 * Shape letters used across engine headers:
 *   B batch, T sequence length, D model dim, H heads, KVH kv heads, Dh head dim,
 *   F ffn (intermediate) dim, V vocab, L layers. A linear weight is (m, n) =
 *   (out_features, in_features), row-major, and computes y = x Wᵀ. */
#ifndef ENG_MODEL_H
#define ENG_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "lrq_err.h"

#define ENG_NLIN 7
enum eng_lin { ENG_Q = 0, ENG_K, ENG_V, ENG_O, ENG_GATE, ENG_UP, ENG_DOWN };
/* "self_attn.q_proj", …, "mlp.down_proj" (HF module names under model.layers.N.) */
extern const char *const eng_lin_hf_name[ENG_NLIN];
/* "q", "k", "v", "o", "gate", "up", "down" */
extern const char *const eng_lin_short_name[ENG_NLIN];

typedef enum { ENG_F32 = 0, ENG_F16 = 1, ENG_BF16 = 2 } eng_dtype_t;
typedef enum { ENG_ROPE_INTERLEAVED = 0, /* llama2.c: pairs (2i, 2i+1) */
               ENG_ROPE_HALF = 1         /* HF: pairs (i, i + Dh/2) */ } eng_rope_layout_t;
typedef enum { ENG_FMT_LLAMA2C = 0, ENG_FMT_HF = 1 } eng_format_t;

typedef struct eng_config {
    int dim;          /* D */
    int ffn_dim;      /* F */
    int n_layers;     /* L */
    int n_heads;      /* H */
    int n_kv_heads;   /* KVH */
    int head_dim;     /* Dh (D/H unless config.json says otherwise) */
    int vocab_size;   /* V */
    int max_seq_len;
    float norm_eps;
    float rope_theta;
    int tie_embeddings;
    eng_rope_layout_t rope;
} eng_config_t;

typedef struct eng_tensor {
    const char *name;   /* name in the file (HF) or llama2.c field name, owned by the model */
    const char *file;   /* path of the file that holds it, owned by the model */
    const void *data;   /* into the mapping; may be unaligned for its dtype only if F16/BF16 */
    eng_dtype_t dtype;
    int64_t rows, cols; /* 1-D tensors: rows = 1, cols = length */
} eng_tensor_t;

typedef struct eng_layer_tensors {
    eng_tensor_t attn_norm;        /* (D) */
    eng_tensor_t ffn_norm;         /* (D) */
    eng_tensor_t lin[ENG_NLIN];    /* q (H*Dh, D), k (KVH*Dh, D), v (KVH*Dh, D), o (D, H*Dh),
                                      gate (F, D), up (F, D), down (D, F) */
} eng_layer_tensors_t;

typedef struct eng_model {
    eng_config_t cfg;
    eng_format_t format;
    eng_dtype_t dtype;         /* dtype of the linear weights (export writes this dtype) */
    char *path;                /* as opened: a .bin file or an HF directory */
    char *dir;                 /* directory that holds the model (tokenizer search) */
    json_t *hf_config;         /* config.json as parsed (NULL for llama2.c), owned */
    eng_tensor_t embed;        /* (V, D) */
    eng_tensor_t final_norm;   /* (D) */
    eng_tensor_t lm_head;      /* (V, D); same data as embed when tied */
    eng_layer_tensors_t *layers; /* [L] */
    struct eng_model_priv *priv; /* mappings and name storage */
} eng_model_t;

/* Open a llama2.c .bin, an HF directory (config.json + model.safetensors or
 * model.safetensors.index.json), or an HF config.json/model.safetensors path.
 * Files are mmap'd; nothing is converted. Every structural problem returns
 * LRQ_EFORMAT/LRQ_ENOTFOUND with a message naming file, tensor and reason. */
int eng_model_open(const char *path, eng_model_t **out, lrq_err_t *err);
void eng_model_free(eng_model_t *m);

size_t eng_tensor_numel(const eng_tensor_t *t);
/* Convert to fp32 into dst (numel floats). Fails with LRQ_ENUMERIC naming
 * file, tensor and element index on the first NaN/Inf. */
int eng_tensor_to_f32(const eng_tensor_t *t, float *dst, lrq_err_t *err);
/* Scan every tensor for NaN/Inf (reads the whole file; pages are released as it goes). */
int eng_model_check_finite(const eng_model_t *m, lrq_err_t *err);
/* Hint: done with t for now; its file pages may be dropped from RSS (madvise DONTNEED on
 * the private read-only mapping; later reads re-fault them). No-op for owned copies. */
void eng_model_release(const eng_model_t *m, const eng_tensor_t *t);
/* eng_model_release for the norms and linears of layer l. */
void eng_model_release_layer(const eng_model_t *m, int l);
/* Total bytes of weights (for estimates). */
size_t eng_model_weight_bytes(const eng_model_t *m);
const char *eng_dtype_name(eng_dtype_t dt); /* "F32", "F16", "BF16" */

#endif
