/* test_estimate.c — daemon/estimate.c against the closed form of docs/daemon.md ("Disk space
 * before a job starts"), worked out by hand below for two shapes (the numbers in the comments
 * are the derivation; nothing here calls the module's helpers):
 *
 *   stories260K (llama2.c: dim 64, ffn 172, 5 layers, 8 heads, 4 KV heads, vocab 512, tied,
 *   f32) with LRQ W4 g32, 12 × 64 calibration tokens, export hf;
 *   Llama-2-7B (HF config: 4096/11008, 32 layers, 32/32 heads, vocab 32000, bf16) with LRQ W4
 *   g128, 8 × 512 calibration tokens, exports hf + gptq.
 *
 * Exact integer comparison: the estimate is integer arithmetic, no rounding. The allowances
 * (4096 bytes per checkpoint file, 160 per safetensors tensor, 256 KiB of JSON per export,
 * 16 MiB of logs) are the documented constants. The shape loader is checked on the bundled
 * stories260K.bin (skipped without ../shared) and on a config.json written here. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "daemon/estimate.h"

#define MiB (1024ull * 1024ull)

static void parse(const char *text, lrq_spec_t *s)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    cr_assert(j, "spec: %s", je.text);
    lrq_err_t err;
    cr_assert_eq(lrq_spec_parse(j, s, &err), 0, "%s: %s", err.field, err.msg);
    json_decref(j);
}

static int same_shape(const estimate_shape_t *a, const estimate_shape_t *b)
{
    return a->dim == b->dim && a->ffn == b->ffn && a->layers == b->layers && a->heads == b->heads &&
           a->kv_heads == b->kv_heads && a->head_dim == b->head_dim && a->vocab == b->vocab && a->tied == b->tied &&
           a->dtype_bytes == b->dtype_bytes && a->side_bytes == b->side_bytes;
}

static const estimate_shape_t S260K = {.dim = 64, .ffn = 172, .layers = 5, .heads = 8, .kv_heads = 4, .head_dim = 8,
                                       .vocab = 512, .tied = 1, .dtype_bytes = 4, .side_bytes = 13872};

Test(estimate, stories260k_lrq_hf)
{
    lrq_spec_t s;
    parse("{\"model\":\"m\",\"method\":\"lrq\",\"weight\":{\"bits\":4,\"group_size\":32},"
          "\"calibration\":{\"path\":\"c\",\"samples\":12,\"seq_len\":64},\"export\":[\"hf\"]}", &s);
    estimate_t e;
    /* caches 3·N·T·D·4 = 3·12·64·64·4 = 589824: on disk under a 1-byte limit, in memory under 1 MiB */
    estimate_job(&s, &S260K, 1, &e);
    cr_expect_eq(e.caches, 589824);
    estimate_job(&s, &S260K, MiB, &e);
    cr_expect_eq(e.caches, 0);
    /* linears (m,n): q 64×64, k 32×64, v 32×64, o 64×64, gate 172×64, up 172×64, down 64×172
     *   Σ m·n = 4096+2048+2048+4096+11008+11008+11008 = 45312
     *   G = ⌈n/32⌉: 2 for n = 64, 6 for n = 172; Σ m·G = 128+64+64+128+344+344+384 = 1456
     *   block file: 45312 + 2·1456·4 = 56960 (+ 4096)
     * ranks (ratio 0.25 of min(m,n)): 16, 8, 8, 16, 16, 16, 16; params m·G + m·k + k·n + n + m:
     *   q 128+1024+1024+64+64 = 2304, k 64+256+512+64+32 = 928, v 928, o 2304,
     *   gate 344+2752+1024+64+172 = 4356, up 4356, down 384+1024+2752+172+64 = 4396 → 19572
     *   state: 3 files × (3 × 19572 × 4 + 4096) = 3 × 238960 = 716880
     * checkpoints = 5 × 61056 + 716880 = 1022160 */
    cr_expect_eq(e.checkpoints, 1022160);
    /* hf (alone, so linears in the source dtype, f32): 5 × 45312 × 4 = 906240
     *   + embed and lm_head (2·512·64) and 11 norms of 64, f32: (65536 + 704)·4 = 264960
     *   + (2 + 4·7·5 + 8) = 150 tensors × 160 = 24000 + 262144 JSON + 13872 tokenizer files
     *   = 1471216 */
    cr_expect_eq(e.hf, 1471216);
    cr_expect_eq(e.gptq, 0);
    cr_expect_eq(e.gguf, 0);
    cr_expect_eq(e.ct, 0);
    cr_expect_eq(e.logs, 16 * MiB);
    cr_expect_eq(e.total, 1022160 + 1471216 + 16 * MiB);
    lrq_spec_close(&s);
}

Test(estimate, rtn_keeps_block_files_only)
{
    lrq_spec_t s;
    parse("{\"model\":\"m\",\"method\":\"rtn\",\"weight\":{\"bits\":4,\"group_size\":32},\"export\":[\"hf\"]}", &s);
    estimate_t e;
    estimate_job(&s, &S260K, 1, &e);
    cr_expect_eq(e.caches, 0);
    /* the quantized model on disk (worker/wk_qstore.h): 5 block files of 56960 + 4096, no state */
    cr_expect_eq(e.checkpoints, 5 * (56960 + 4096));
    cr_expect_eq(e.hf, 1471216);
    lrq_spec_close(&s);
}

/* A Llama-2-7B config.json (as transformers writes it) and a 1000-byte tokenizer.bin in a temp dir. */
static char *write_7b(char *tmpl)
{
    char *dir = mkdtemp(tmpl);
    cr_assert(dir);
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    cr_assert(f);
    fputs("{\"architectures\":[\"LlamaForCausalLM\"],\"bos_token_id\":1,\"eos_token_id\":2,\"hidden_act\":\"silu\","
          "\"hidden_size\":4096,\"initializer_range\":0.02,\"intermediate_size\":11008,"
          "\"max_position_embeddings\":4096,\"model_type\":\"llama\",\"num_attention_heads\":32,"
          "\"num_hidden_layers\":32,\"num_key_value_heads\":32,\"pretraining_tp\":1,\"rms_norm_eps\":1e-05,"
          "\"rope_scaling\":null,\"tie_word_embeddings\":false,\"torch_dtype\":\"bfloat16\","
          "\"use_cache\":true,\"vocab_size\":32000}\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/tokenizer.bin", dir);
    f = fopen(p, "w");
    cr_assert(f);
    for (int i = 0; i < 1000; i++) fputc('x', f);
    fclose(f);
    snprintf(p, sizeof p, "%s/README.md", dir); /* not copied by the exports: not counted */
    f = fopen(p, "w");
    cr_assert(f);
    fputs("synthetic\n", f);
    fclose(f);
    return dir;
}

static void rm_7b(const char *dir)
{
    char p[512];
    const char *names[] = {"config.json", "tokenizer.bin", "README.md"};
    for (int i = 0; i < 3; i++) { snprintf(p, sizeof p, "%s/%s", dir, names[i]); unlink(p); }
    rmdir(dir);
}

Test(estimate, llama2_7b_lrq_hf_gptq)
{
    char tmpl[] = "/tmp/lrq-est.XXXXXX";
    char *dir = write_7b(tmpl);
    estimate_shape_t sh;
    lrq_err_t err;
    cr_assert_eq(estimate_shape_load(dir, &sh, &err), 0, "%s", err.msg);
    cr_expect_eq(sh.dim, 4096);
    cr_expect_eq(sh.ffn, 11008);
    cr_expect_eq(sh.layers, 32);
    cr_expect_eq(sh.heads, 32);
    cr_expect_eq(sh.kv_heads, 32);
    cr_expect_eq(sh.head_dim, 128);
    cr_expect_eq(sh.vocab, 32000);
    cr_expect_eq(sh.tied, 0);
    cr_expect_eq(sh.dtype_bytes, 2);
    cr_expect_eq(sh.side_bytes, 1000);
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", dir);   /* a path inside the dir: same shape */
    estimate_shape_t sh2;
    cr_assert_eq(estimate_shape_load(p, &sh2, &err), 0, "%s", err.msg);
    cr_expect(same_shape(&sh, &sh2));

    lrq_spec_t s;
    parse("{\"model\":\"m\",\"method\":\"lrq\",\"weight\":{\"bits\":4,\"group_size\":128},"
          "\"calibration\":{\"path\":\"c\",\"samples\":8,\"seq_len\":512},\"lrq\":{\"iterations\":2},"
          "\"export\":[\"hf\",\"gptq\"]}", &s);
    estimate_t e;
    /* caches 3 · 8 · 512 · 4096 · 4 = 201326592 (192 MiB): in memory under 1 GiB, on disk under 100 MiB */
    estimate_job(&s, &sh, 1024 * MiB, &e);
    cr_expect_eq(e.caches, 0);
    estimate_job(&s, &sh, 100 * MiB, &e);
    cr_expect_eq(e.caches, 201326592);
    /* per block Σ m·n = 4·4096² + 3·4096·11008 = 67108864 + 135266304 = 202375168;
     * G = 32 (n = 4096), 86 (n = 11008): Σ m·G = 4·4096·32 + 2·11008·32 + 4096·86 = 1581056;
     * block file 202375168 + 8·1581056 = 215023616 (+ 4096)
     * ranks 1024 everywhere (0.25 · 4096): params
     *   q/k/v/o: 131072 + 4194304 + 4194304 + 4096 + 4096 = 8527872 (× 4 = 34111488)
     *   gate/up: 352256 + 11272192 + 4194304 + 4096 + 11008 = 15833856 (× 2 = 31667712)
     *   down:    352256 + 4194304 + 11272192 + 11008 + 4096 = 15833856 → 81613056
     * checkpoints = 32 · 215027712 + 3 · (3 · 81613056 · 4 + 4096) = 6880886784 + 2938082304 */
    cr_expect_eq(e.checkpoints, 9818969088ull);
    /* hf beside gptq: linears F32: 32 · 202375168 · 4 = 25904021504
     *   + embed and lm_head (2 · 32000 · 4096) + 65 norms of 4096, bf16: 524820480
     *   + (2 + 4·7·32 + 8) = 906 tensors × 160 = 144960 + 262144 + 1000 = 526,228,584 + 25904021504 */
    cr_expect_eq(e.hf, 25904021504ull + 524820480ull + 144960 + 262144 + 1000);
    /* gptq per layer (qweight K/32·4·N·4, qzeros G·N/32·4·4, scales G·N·2, g_idx K·4):
     *   q/k/v/o (K = N = 4096, G = 32): 8388608 + 65536 + 262144 + 16384 = 8732672 (× 4 = 34930688)
     *   gate/up (K 4096, N 11008, G 32): 22544384 + 176128 + 704512 + 16384 = 23441408 (× 2 = 46882816)
     *   down (K 11008, N 4096, G 86): 22544384 + 176128 + 704512 + 44032 = 23469056
     *   = 105282560 per layer, × 32 = 3369041920, + the same fixed part as hf */
    cr_expect_eq(e.gptq, 3369041920ull + 524820480ull + 144960 + 262144 + 1000);
    cr_expect_eq(e.total, e.caches + e.checkpoints + e.hf + e.gptq + 16 * MiB);
    json_t *j = estimate_json(&e);
    cr_assert(j);
    cr_expect_eq((uint64_t)json_integer_value(json_object_get(j, "total_bytes")), e.total);
    cr_expect_eq((uint64_t)json_integer_value(json_object_get(json_object_get(j, "exports"), "gptq")), e.gptq);
    cr_expect_null(json_object_get(json_object_get(j, "exports"), "gguf"));
    json_decref(j);
    lrq_spec_close(&s);
    rm_7b(dir);
}

Test(estimate, shape_of_stories260k_bin)
{
    const char *path = "../shared/models/stories260K/stories260K.bin";
    if (access(path, R_OK)) path = "../../shared/models/stories260K/stories260K.bin";
    if (access(path, R_OK)) cr_skip_test("no ../shared/models/stories260K");
    estimate_shape_t sh;
    lrq_err_t err;
    cr_assert_eq(estimate_shape_load(path, &sh, &err), 0, "%s", err.msg);
    estimate_shape_t want = S260K;
    cr_expect(same_shape(&sh, &want), "dim %d ffn %d L %d h %d kv %d hd %d V %d tied %d es %d side %llu",
                 sh.dim, sh.ffn, sh.layers, sh.heads, sh.kv_heads, sh.head_dim, sh.vocab, sh.tied, sh.dtype_bytes,
                 (unsigned long long)sh.side_bytes);
}

Test(estimate, bad_inputs_are_refused_with_the_reason)
{
    estimate_shape_t sh;
    lrq_err_t err;
    cr_expect_neq(estimate_shape_load("/nonexistent/model", &sh, &err), 0);
    char tmpl[] = "/tmp/lrq-est.XXXXXX";
    char *dir = mkdtemp(tmpl);
    cr_assert(dir);
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    fputs("{\"hidden_size\":4096,\"intermediate_size\":\"big\"}", f);
    fclose(f);
    cr_expect_neq(estimate_shape_load(dir, &sh, &err), 0);
    cr_expect_str_eq(err.field, "intermediate_size");
    snprintf(p, sizeof p, "%s/short.bin", dir);
    f = fopen(p, "w");
    fputs("abc", f);
    fclose(f);
    cr_expect_neq(estimate_shape_load(p, &sh, &err), 0);
    cr_expect(strstr(err.msg, "28-byte") != NULL, "%s", err.msg);
    unlink(p);
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    rmdir(dir);
}

Test(estimate, cache_limit_follows_the_worker)
{
    cr_expect_eq(estimate_cache_limit("512", 24 * 1024 * MiB), 512 * MiB);
    cr_expect_eq(estimate_cache_limit("", 24 * 1024 * MiB), 6 * 1024 * MiB);
    cr_expect_eq(estimate_cache_limit(NULL, 16 * 1024 * MiB), 4 * 1024 * MiB);
}
