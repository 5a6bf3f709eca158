/* fuzz_hf.c — eng_model_open on a Hugging Face model directory: config.json,
 * optionally model.safetensors.index.json, and one safetensors file written
 * both as model.safetensors and as s.safetensors (the name the seed index
 * uses). Loaded models get every tensor scanned (eng_model_check_finite) and
 * their bound views checked against the file size.
 *
 * Input: u16 LE config length, u16 LE index length (0 = no index), config,
 * index, then the safetensors bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eng_model.h"

static int fz_hf_put(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int bad = fwrite(p, 1, n, f) != n;
    return fclose(f) || bad ? -1 : 0;
}

static void fz_hf_rm(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

static void fz_hf_check_view(const eng_tensor_t *t, size_t file_len)
{
    size_t es = t->dtype == ENG_F32 ? 4 : 2;
    if (t->rows < 1 || t->cols < 1 || !t->data) __builtin_trap();
    if (eng_tensor_numel(t) != (size_t)t->rows * (size_t)t->cols) __builtin_trap();
    if (eng_tensor_numel(t) * es > file_len) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    size_t cn = data[0] | (size_t)data[1] << 8, in = data[2] | (size_t)data[3] << 8;
    data += 4, size -= 4;
    if (cn > size || in > size - cn) return 0;
    const uint8_t *cfg = data, *idx = data + cn, *st = data + cn + in;
    size_t sn = size - cn - in;
    /* tmpfs when there is one: the files are rewritten for every input */
    char dir[64];
    snprintf(dir, sizeof dir, "%s/lrq-fuzz-hf-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir)) return 0;
    if (!fz_hf_put(dir, "config.json", cfg, cn) && !fz_hf_put(dir, "model.safetensors", st, sn) &&
        !fz_hf_put(dir, "s.safetensors", st, sn) && (!in || !fz_hf_put(dir, "model.safetensors.index.json", idx, in))) {
        eng_model_t *m;
        lrq_err_t err;
        if (eng_model_open(dir, &m, &err) == 0) {
            const eng_config_t *c = &m->cfg;
            if (c->dim < 1 || c->n_layers < 1 || c->n_heads < 1 || c->n_kv_heads < 1 || c->vocab_size < 1)
                __builtin_trap();
            fz_hf_check_view(&m->embed, sn);
            fz_hf_check_view(&m->final_norm, sn);
            fz_hf_check_view(&m->lm_head, sn);
            for (int l = 0; l < c->n_layers; l++)
                for (int k = 0; k < ENG_NLIN; k++) fz_hf_check_view(&m->layers[l].lin[k], sn);
            eng_model_check_finite(m, &err);
            eng_model_free(m);
        } else if (err.code >= 0 || !err.msg[0]) {
            __builtin_trap();
        }
    }
    fz_hf_rm(dir, "config.json");
    fz_hf_rm(dir, "model.safetensors");
    fz_hf_rm(dir, "s.safetensors");
    fz_hf_rm(dir, "model.safetensors.index.json");
    rmdir(dir);
    return 0;
}
