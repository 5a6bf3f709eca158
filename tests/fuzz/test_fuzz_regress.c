/* test_fuzz_regress.c — replay the fuzz seed corpora (tests/fuzz/corpus/<name>/) and
 * every committed crash input (tests/fuzz/regress/<name>/) through the harnesses'
 * own entry points, so `make check` (and the ASan/UBSan build of it) re-runs
 * each input that once crashed. A harness traps (__builtin_trap) when one of
 * its invariants fails, and Criterion reports the signal as a failure.
 *
 * Each harness is included with LLVMFuzzerTestOneInput renamed; their helpers
 * carry per-harness prefixes so that they can share this translation unit. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LLVMFuzzerTestOneInput fz_one_spec
#include "fuzz_spec.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_one_safetensors
#include "fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_one_llama2c
#include "fuzz_llama2c.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_one_hf
#include "fuzz_hf.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_one_tok_bin
#include "fuzz_tok_bin.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_one_tok_json
#include "fuzz_tok_json.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_one_tok_spm
#include "fuzz_tok_spm.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_one_lines
#include "fuzz_lines.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_one_router
#include "fuzz_router.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_one_ckpt
#include "fuzz_ckpt.c"
#undef LLVMFuzzerTestOneInput

typedef int (*fz_entry_t)(const uint8_t *data, size_t size);

/* Feeds every regular file in SRCDIR/tests/fuzz/<sub>/<name>/ to one(); returns the count. */
static int fz_replay_dir(const char *sub, const char *name, fz_entry_t one)
{
    const char *top = getenv("LRQ_SRCDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/%s/%s", top ? top : ".", sub, name);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[8192];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_name[0] == '.' || stat(path, &st) || !S_ISREG(st.st_mode)) continue;
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        /* An exact-size copy: a read past the end is an ASan report under --enable-sanitizers. */
        uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
        cr_assert_not_null(buf);
        cr_assert_eq(fread(buf, 1, (size_t)st.st_size, f), (size_t)st.st_size, "%s", path);
        fclose(f);
        cr_log_info("replaying %s", path);
        cr_assert_eq(one(buf, (size_t)st.st_size), 0, "%s", path);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

static void fz_replay(const char *name, fz_entry_t one)
{
    int seeds = fz_replay_dir("corpus", name, one);
    cr_assert_gt(seeds, 0, "no seed inputs found for %s (is LRQ_SRCDIR set?)", name);
    fz_replay_dir("regress", name, one);
}

Test(fuzz_replay, spec) { fz_replay("spec", fz_one_spec); }
Test(fuzz_replay, safetensors) { fz_replay("safetensors", fz_one_safetensors); }
Test(fuzz_replay, llama2c) { fz_replay("llama2c", fz_one_llama2c); }
Test(fuzz_replay, hf) { fz_replay("hf", fz_one_hf); }
Test(fuzz_replay, tok_bin) { fz_replay("tok_bin", fz_one_tok_bin); }
Test(fuzz_replay, tok_json) { fz_replay("tok_json", fz_one_tok_json); }
Test(fuzz_replay, tok_spm) { fz_replay("tok_spm", fz_one_tok_spm); }
Test(fuzz_replay, lines) { fz_replay("lines", fz_one_lines); }
Test(fuzz_replay, router) { fz_replay("router", fz_one_router); }
Test(fuzz_replay, ckpt) { fz_replay("ckpt", fz_one_ckpt); }

/* The seeds must reach the accepting paths, else the fuzzers start from refusals only. */
static char *fz_slurp(const char *rel, size_t *n)
{
    const char *top = getenv("LRQ_SRCDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fuzz/%s", top ? top : ".", rel);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    char *buf = malloc(1 << 16);
    cr_assert_not_null(buf);
    *n = fread(buf, 1, (1 << 16) - 1, f);
    buf[*n] = 0;
    fclose(f);
    return buf;
}

Test(fuzz_seeds, valid_spec_checkpoint_and_models_are_accepted)
{
    size_t n;
    char *txt = fz_slurp("corpus/spec/full.json", &n);
    json_t *j = json_loadb(txt, n, JSON_REJECT_DUPLICATES, NULL);
    cr_assert_not_null(j);
    lrq_spec_t s;
    lrq_err_t err;
    cr_assert_eq(lrq_spec_parse(j, &s, &err), 0, "%s: %s", err.field, err.msg);
    cr_assert_eq(s.method, LRQ_M_LRQ);
    cr_assert_eq(s.group_size, 128);
    lrq_spec_close(&s);
    json_decref(j);
    free(txt);

    char *ck = fz_slurp("corpus/ckpt/raw.ckpt", &n);   /* byte 0 is the harness's flag byte */
    char tmp[] = "/tmp/lrq-fuzz-ckpt-XXXXXX";
    int fd = mkstemp(tmp);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, ck + 1, n - 1), (ssize_t)(n - 1));
    close(fd);
    wk_ckr_t r;
    cr_assert_eq(wk_ckr_open(&r, tmp, &err), 0, "%s", err.msg);
    size_t len = 0;
    const char *head = wk_ckr_get(&r, WK_TAG('H', 'E', 'A', 'D'), &len);
    cr_assert_not_null(head);
    cr_assert_eq(len, 11);
    cr_assert_eq(memcmp(head, "{\"block\":1}", 11), 0);
    cr_assert_not_null(wk_ckr_get(&r, WK_TAG('Q', 'S', '0', 0), &len));
    cr_assert_eq(len, 0);
    wk_ckr_close(&r);
    unlink(tmp);
    free(ck);

    /* Both HF seeds (plain, and tied + sharded index) load. */
    const char *hf_seeds[] = {"corpus/hf/f16.bin", "corpus/hf/bf16_tied_index.bin"};
    for (int i = 0; i < 2; i++) {
        uint8_t *b = (uint8_t *)fz_slurp(hf_seeds[i], &n);
        size_t cn = b[0] | (size_t)b[1] << 8, in = b[2] | (size_t)b[3] << 8;
        char dir[] = "/tmp/lrq-fuzz-hfseed-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        cr_assert_eq(fz_hf_put(dir, "config.json", b + 4, cn), 0);
        cr_assert_eq(fz_hf_put(dir, "s.safetensors", b + 4 + cn + in, n - 4 - cn - in), 0);
        if (in) cr_assert_eq(fz_hf_put(dir, "model.safetensors.index.json", b + 4 + cn, in), 0);
        else cr_assert_eq(fz_hf_put(dir, "model.safetensors", b + 4 + cn, n - 4 - cn), 0);
        eng_model_t *m;
        cr_assert_eq(eng_model_open(dir, &m, &err), 0, "%s: %s", hf_seeds[i], err.msg);
        cr_assert_eq(m->cfg.dim, 8);
        cr_assert_eq(m->cfg.tie_embeddings, i == 1);
        cr_assert_eq(eng_model_check_finite(m, &err), 0, "%s", err.msg);
        eng_model_free(m);
        fz_hf_rm(dir, "config.json");
        fz_hf_rm(dir, "model.safetensors");
        fz_hf_rm(dir, "s.safetensors");
        fz_hf_rm(dir, "model.safetensors.index.json");
        cr_assert_eq(rmdir(dir), 0);
        free(b);
    }

    /* Both SentencePiece seeds load (with and without byte pieces, the second with unknown fields). */
    const char *spm_seeds[] = {"corpus/tok_spm/bytes.model", "corpus/tok_spm/nobytes.model"};
    for (int i = 0; i < 2; i++) {
        char *b = fz_slurp(spm_seeds[i], &n);
        eng_tok_t *t;
        cr_assert_eq(eng_tok_load_mem((const uint8_t *)b, n, spm_seeds[i], &t, &err), 0, "%s", err.msg);
        cr_assert_eq(eng_tok_vocab_size(t), i == 0 ? 265 : 9);
        eng_tok_free(t);
        free(b);
    }
}
