/* test_forward.c — full-model forward, evaluation and generation on stories260K.
 *
 * References:
 *  - generation: the llama2.c output quoted in models/stories260K/SOURCE.md (60 steps);
 *  - llama2.c .bin vs HF safetensors copy of the same model: logits within logit_tol (max abs:
 *    the permuted head dims change the summation order, see logit_tol);
 *  - tests/data/stories260K_eval_ref.json, written by tools/ref_forward.py (independent
 *    float64 numpy forward + its own tokenizer; the command is in the file):
 *    token stream, 16 logits at 3 positions (abs 1e-4: fp32 vs fp64 on |logit| ≤ 20),
 *    FP perplexity at seq 256 (rel 1e-4), and for a perturbed "quantized" model (layer 2
 *    down × 0.8, first 32 windows) q perplexity (rel 1e-4), KL (rel 1e-3) and top-1
 *    agreement (±2 of 8160 positions: fp32 argmax ties may break differently). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "eng_forward.h"

static const char *shared(const char *rel)
{
    static char buf[8][1024];
    static int k;
    const char *s = getenv("LRQ_SHARED"), *src = getenv("LRQ_SRCDIR");
    char *b = buf[k++ & 7];
    if (s) snprintf(b, 1024, "%s/%s", s, rel);
    else snprintf(b, 1024, "%s/../shared/%s", src ? src : ".", rel);
    return b;
}

static const char *srcpath(const char *rel)
{
    static char buf[4][1024];
    static int k;
    const char *src = getenv("LRQ_SRCDIR");
    char *b = buf[k++ & 3];
    snprintf(b, 1024, "%s/%s", src ? src : ".", rel);
    return b;
}

#define BIN "models/stories260K/stories260K.bin"
#define HFDIR "models/stories260K-hf"
#define TOK "models/stories260K/tok512.bin"

static eng_model_t *open_model(const char *rel)
{
    eng_model_t *m = NULL;
    lrq_err_t err = {0};
    int rc = eng_model_open(shared(rel), &m, &err);
    cr_assert_eq(rc, 0, "open %s: %s", rel, err.msg);
    return m;
}

static eng_tok_t *open_tok(void)
{
    eng_tok_t *t = NULL;
    lrq_err_t err = {0};
    cr_assert_eq(eng_tok_load(shared(TOK), &t, &err), 0, "%s", err.msg);
    return t;
}

static eng_runner_t *runner(const eng_model_t *m, int B, int T)
{
    eng_runner_t *r = NULL;
    lrq_err_t err = {0};
    cr_assert_eq(eng_runner_new(m, B, T, NULL, &r, &err), 0, "%s", err.msg);
    return r;
}

static json_t *ref_json(void)
{
    json_error_t je;
    json_t *j = json_load_file(srcpath("tests/data/stories260K_eval_ref.json"), 0, &je);
    cr_assert_not_null(j, "reference json: %s", je.text);
    return j;
}

static double jnum(json_t *o, const char *path)
{
    char key[128];
    snprintf(key, sizeof key, "%s", path);
    json_t *v = o;
    for (char *s = key, *dot; v && s; s = dot ? dot + 1 : NULL) {
        dot = strchr(s, '.');
        if (dot) *dot = '\0';
        v = json_object_get(v, s);
    }
    cr_assert(json_is_number(v), "reference json: no number at %s", path);
    return json_number_value(v);
}

/* ---- generation ---- */

static const char *EXPECTED = "Once upon a time, there was a little girl named Lily. She loved to play outside in "
                              "the park. One day, she saw a big, red ball. She wanted to play with it, but it was "
                              "too high";

typedef struct {
    char s[4096];
    size_t n;
} text_t;
static void on_piece(void *ctx, const char *piece)
{
    text_t *t = ctx;
    size_t k = strlen(piece);
    cr_assert(t->n + k < sizeof t->s);
    memcpy(t->s + t->n, piece, k + 1);
    t->n += k;
}

static void generate_check(const char *model)
{
    eng_model_t *m = open_model(model);
    eng_tok_t *tok = open_tok();
    eng_runner_t *r = runner(m, 1, 60);
    text_t out = {.n = 0};
    lrq_err_t err = {0};
    cr_assert_eq(eng_generate(r, tok, 60, on_piece, &out, &err), 0, "%s", err.msg);
    cr_expect_str_eq(out.s, EXPECTED);
    /* more steps than the runner's T is an error, not an overflow */
    cr_expect_lt(eng_generate(r, tok, 61, on_piece, &out, &err), 0);
    eng_runner_free(r);
    eng_tok_free(tok);
    eng_model_free(m);
}

Test(generate, llama2c_60_steps) { generate_check(BIN); }
Test(generate, hf_60_steps) { generate_check(HFDIR); }

/* ---- logits ---- */

static int32_t *test_tokens(int B, int T, const eng_tok_t *tok)
{
    int32_t *ids = malloc((size_t)B * T * sizeof *ids);
    uint64_t s = 7;
    for (int i = 0; i < B * T; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((s >> 33) % 512);
    }
    /* row 0: real text */
    int32_t *t = NULL;
    size_t n = 0, cap = 0;
    lrq_err_t err = {0};
    const char *txt = "Once upon a time, there was a little dog named Max. Max liked to run and jump in the "
                      "garden with his friend, a small bird. One day the bird flew away and Max was sad.";
    cr_assert_eq(eng_tok_encode(tok, txt, strlen(txt), 1, &t, &n, &cap, &err), 0, "%s", err.msg);
    memcpy(ids, t, (n < (size_t)T ? n : (size_t)T) * sizeof *ids);
    free(t);
    return ids;
}

/* Tolerance between two fp32 forwards of the same logits whose reductions run in a
 * different order (another sgemm M → other OpenBLAS blocking, attention over T = 40 vs 96
 * keys, HF's permuted head dims in q·kᵀ). A dot product of length K rounds to within
 * ~sqrt(K)·u·S (u = 2^-24, S = Σ|a_k b_k|; random-walk accumulation) in either order; the
 * relative error of the hidden state picks up about one such term per sequential stage
 * (n_layers blocks + the head), and RMSNorm keeps S/|result| of the head near 1. So
 *   |Δlogit| ≲ c · sqrt(K) · (n_layers + 1) · u · max|logit|,
 * K = the longest reduction (ffn 172 here), c = 4: 2 for two independent orders, 2 for the
 * softmax/norm rescalings. stories260K: 4·13.1·6·6e-8·21 ≈ 4e-4, observed ≤ 2e-5. A real bug
 * (stale rows, a position leak, a wrong RoPE layout) moves logits by O(0.1–10). */
static double logit_tol(const eng_model_t *m, int T, double maxabs)
{
    int K = m->cfg.ffn_dim > m->cfg.dim ? m->cfg.ffn_dim : m->cfg.dim;
    if (T > K) K = T;
    return 4.0 * sqrt((double)K) * (m->cfg.n_layers + 1) * 0x1p-24 * maxabs;
}

static double max_abs(const float *a, size_t n)
{
    double mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(a[i]));
    return mx;
}

static double max_diff(const float *a, const float *b, size_t n, size_t *at)
{
    double e = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i] - b[i]) > e) {
            e = fabs(a[i] - b[i]);
            if (at) *at = i;
        }
    return e;
}

Test(logits, llama2c_equals_hf)
{
    enum { B = 3, T = 96 };
    eng_model_t *a = open_model(BIN), *b = open_model(HFDIR);
    cr_assert_eq(a->cfg.rope, ENG_ROPE_INTERLEAVED);
    cr_assert_eq(b->cfg.rope, ENG_ROPE_HALF);
    eng_tok_t *tok = open_tok();
    eng_runner_t *ra = runner(a, B, T), *rb = runner(b, B, T);
    int32_t *ids = test_tokens(B, T, tok);
    size_t n = (size_t)B * T * 512;
    float *la = malloc(n * sizeof *la), *lb = malloc(n * sizeof *lb);
    lrq_err_t err = {0};
    cr_assert_eq(eng_runner_logits(ra, ids, B, T, la, &err), 0, "%s", err.msg);
    cr_assert_eq(eng_runner_logits(rb, ids, B, T, lb, &err), 0, "%s", err.msg);
    double mx = max_abs(la, n), tol = logit_tol(a, T, mx), e = max_diff(la, lb, n, NULL);
    cr_log_info("llama2.c vs HF: max abs logit diff %.3g (max |logit| %.3g, tolerance %.3g)", e, mx, tol);
    cr_expect(e <= tol, "max abs logit diff %.3g > %.3g", e, tol);
    cr_expect(mx > 1.0); /* not trivially zero */
    free(lb); free(ids);
    eng_runner_free(rb); eng_tok_free(tok); eng_model_free(b);
    eng_runner_free(ra); eng_model_free(a);
    free(la);
}

/* Causality and no stale state. Same shapes → same summation order → bit-identical:
 * changing the tokens after position P must leave every logit at positions < P exactly
 * as it was (and must change those after P by far more than rounding, or the check
 * proves nothing); a used runner must give what a fresh one gives. Only the comparison
 * across shapes (1×40 vs the 3×96 batch it is a prefix of) needs logit_tol. */
Test(logits, causal_and_stateless)
{
    enum { B = 3, T = 96, P = 40 };
    eng_model_t *a = open_model(BIN);
    eng_tok_t *tok = open_tok();
    eng_runner_t *ra = runner(a, B, T), *fresh = runner(a, B, T);
    int32_t *ids = test_tokens(B, T, tok), *alt = malloc((size_t)B * T * sizeof *alt);
    memcpy(alt, ids, (size_t)B * T * sizeof *alt);
    for (int r = 0; r < B; r++)
        for (int t = P; t < T; t++) alt[r * T + t] = (ids[r * T + t] * 7 + 13) % 512;
    size_t n = (size_t)B * T * 512, row = (size_t)T * 512, pre = (size_t)P * 512;
    float *la = malloc(n * sizeof *la), *lalt = malloc(n * sizeof *lalt);
    float *lc = malloc(pre * sizeof *lc), *lf = malloc(pre * sizeof *lf);
    lrq_err_t err = {0};
    cr_assert_eq(eng_runner_logits(ra, ids, B, T, la, &err), 0, "%s", err.msg);
    cr_assert_eq(eng_runner_logits(ra, alt, B, T, lalt, &err), 0, "%s", err.msg);
    double mx = max_abs(la, n), tol = logit_tol(a, T, mx), later = 0;
    for (int r = 0; r < B; r++) {
        cr_expect_arr_eq(lalt + r * row, la + r * row, pre * sizeof(float),
                         "row %d: logits before position %d depend on later tokens", r, P);
        later = fmax(later, max_diff(lalt + r * row + pre, la + r * row + pre, row - pre, NULL));
    }
    cr_expect(later > 100 * tol, "changed tokens moved later logits by only %.3g (tolerance %.3g)", later, tol);
    /* the used runner (last batch 3×96, other tokens) vs a fresh one, same 1×P shape */
    cr_assert_eq(eng_runner_logits(ra, ids, 1, P, lc, &err), 0, "%s", err.msg);
    cr_assert_eq(eng_runner_logits(fresh, ids, 1, P, lf, &err), 0, "%s", err.msg);
    cr_expect_arr_eq(lc, lf, pre * sizeof(float), "a used runner differs from a fresh one (stale state)");
    /* across shapes: the 1×P batch vs the prefix of row 0 of the 3×T batch */
    size_t at = 0;
    double e = max_diff(lc, la, pre, &at);
    cr_log_info("1x%d vs prefix of %dx%d: max abs diff %.3g (tolerance %.3g); later positions moved %.3g", P, B, T,
                e, tol, later);
    cr_expect(e <= tol, "prefix logits differ at %zu by %.3g > %.3g", at, e, tol);
    free(la); free(lalt); free(lc); free(lf); free(ids); free(alt);
    eng_runner_free(ra); eng_runner_free(fresh);
    eng_tok_free(tok); eng_model_free(a);
}

static int32_t *eval_stream(const eng_tok_t *tok, size_t *n)
{
    int32_t *ids = NULL;
    lrq_err_t err = {0};
    cr_assert_eq(eng_data_load(shared("data/tinystories/eval.txt"), tok, 512, &ids, n, &err), 0, "%s", err.msg);
    return ids;
}

Test(logits, match_numpy_reference)
{
    json_t *ref = ref_json();
    eng_model_t *m = open_model(BIN);
    eng_tok_t *tok = open_tok();
    size_t n;
    int32_t *ids = eval_stream(tok, &n);
    eng_runner_t *r = runner(m, 1, 256);
    float *lg = malloc((size_t)256 * 512 * sizeof *lg);
    lrq_err_t err = {0};
    cr_assert_eq(eng_runner_logits(r, ids, 1, 256, lg, &err), 0, "%s", err.msg);
    json_t *spot = json_object_get(ref, "logits_window0");
    const char *key;
    json_t *arr;
    int checked = 0;
    json_object_foreach(spot, key, arr) {
        int t = atoi(key);
        for (size_t j = 0; j < json_array_size(arr); j++) {
            double want = json_number_value(json_array_get(arr, j)), got = lg[(size_t)t * 512 + j];
            cr_expect(fabs(got - want) <= 1e-4, "logit[t=%d][%zu] = %.7f, numpy %.7f", t, j, got, want);
            checked++;
        }
    }
    cr_expect_eq(checked, 48);
    free(lg); free(ids);
    eng_runner_free(r); eng_tok_free(tok); eng_model_free(m);
    json_decref(ref);
}

/* ---- evaluation ---- */

static void on_progress(void *ctx, int done, int total)
{
    int *last = ctx;
    cr_expect_gt(done, *last);
    cr_expect_leq(done, total);
    *last = done;
}

Test(eval, fp_perplexity_matches_numpy, .timeout = 120)
{
    json_t *ref = ref_json();
    eng_model_t *m = open_model(BIN);
    eng_tok_t *tok = open_tok();
    size_t n;
    int32_t *ids = eval_stream(tok, &n);
    /* same token stream as the reference's own encoder */
    cr_assert_eq((double)n, jnum(ref, "stream_tokens"));
    long long ck = 0;
    for (size_t i = 0; i < n; i++) ck += (long long)ids[i] * (long long)(i % 1000 + 1);
    cr_expect_eq((double)ck, jnum(ref, "stream_checksum"), "token stream differs from the reference encoder");
    eng_runner_t *r = runner(m, 8, 256);
    eng_eval_result_t res;
    lrq_err_t err = {0};
    int last = 0;
    cr_assert_eq(eng_eval(r, NULL, ids, n, 256, 0, &res, on_progress, &last, &err), 0, "%s", err.msg);
    double want = jnum(ref, "perplexity");
    cr_log_info("FP perplexity %.6f (numpy %.6f), %ld tokens, %d windows", res.perplexity, want, res.tokens,
                res.windows);
    cr_expect_eq(res.windows, (int)jnum(ref, "windows"));
    cr_expect_eq((double)res.tokens, jnum(ref, "predicted_tokens"));
    cr_expect_eq(last, res.windows);
    cr_expect(fabs(res.perplexity / want - 1) <= 1e-4, "ppl %.7f vs numpy %.7f", res.perplexity, want);
    cr_expect(fabs(res.perplexity - 4.61) < 0.01, "ppl %.4f, SOURCE.md says ~4.61", res.perplexity);
    /* max_windows caps the windows; the last batch may be partial (8 + 3) */
    cr_assert_eq(eng_eval(r, NULL, ids, n, 256, 11, &res, NULL, NULL, &err), 0, "%s", err.msg);
    cr_expect_eq(res.windows, 11);
    cr_expect_eq(res.tokens, 11 * 255);
    free(ids);
    eng_runner_free(r); eng_tok_free(tok); eng_model_free(m);
    json_decref(ref);
}

Test(eval, kl_top1_of_perturbed_model_match_numpy)
{
    json_t *ref = ref_json();
    eng_model_t *m = open_model(BIN);
    eng_tok_t *tok = open_tok();
    size_t n;
    int32_t *ids = eval_stream(tok, &n);
    int layer = (int)jnum(ref, "q.layer"), qw = (int)jnum(ref, "q.windows");
    float scale = (float)jnum(ref, "q.scale");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(ref, "q"), "lin")), "down");
    eng_runner_t *fp = runner(m, 8, 256), *q = runner(m, 5, 256); /* different B: batches of min(B) */
    const eng_tensor_t *t = &m->layers[layer].lin[ENG_DOWN];
    size_t nw = eng_tensor_numel(t);
    float *w = malloc(nw * sizeof *w);
    lrq_err_t err = {0};
    cr_assert_eq(eng_tensor_to_f32(t, w, &err), 0);
    for (size_t i = 0; i < nw; i++) w[i] *= scale;
    eng_runner_set_linear(q, layer, ENG_DOWN, w);
    eng_eval_result_t res;
    cr_assert_eq(eng_eval(fp, q, ids, n, 256, qw, &res, NULL, NULL, &err), 0, "%s", err.msg);
    cr_log_info("perturbed: ppl %.6f q_ppl %.6f kl %.6g top1 %.6f", res.perplexity, res.q_perplexity,
                res.kl_divergence, res.top1_agreement);
    cr_expect_eq((double)res.tokens, jnum(ref, "q.predicted_tokens"));
    cr_expect(fabs(res.perplexity / jnum(ref, "q.perplexity") - 1) <= 1e-4);
    cr_expect(fabs(res.q_perplexity / jnum(ref, "q.q_perplexity") - 1) <= 1e-4, "q ppl %.7f vs %.7f",
              res.q_perplexity, jnum(ref, "q.q_perplexity"));
    cr_expect(fabs(res.kl_divergence / jnum(ref, "q.kl_divergence") - 1) <= 1e-3, "kl %.7g vs %.7g",
              res.kl_divergence, jnum(ref, "q.kl_divergence"));
    cr_expect(fabs(res.top1_agreement - jnum(ref, "q.top1_agreement")) * res.tokens <= 2.0, "top1 %.6f vs %.6f",
              res.top1_agreement, jnum(ref, "q.top1_agreement"));
    /* back to the model's weights: identical to FP */
    eng_runner_set_linear(q, layer, ENG_DOWN, NULL);
    cr_assert_eq(eng_eval(fp, q, ids, n, 256, 4, &res, NULL, NULL, &err), 0, "%s", err.msg);
    cr_expect_eq(res.perplexity, res.q_perplexity);
    cr_expect(fabs(res.kl_divergence) < 1e-9);
    cr_expect_eq(res.top1_agreement, 1.0);
    free(w); free(ids);
    eng_runner_free(fp); eng_runner_free(q); eng_tok_free(tok); eng_model_free(m);
    json_decref(ref);
}

Test(eval, hf_copy_as_quantized_model_agrees)
{
    eng_model_t *a = open_model(BIN), *b = open_model(HFDIR);
    eng_tok_t *tok = open_tok();
    size_t n;
    int32_t *ids = eval_stream(tok, &n);
    eng_runner_t *ra = runner(a, 4, 128), *rb = runner(b, 4, 128);
    eng_eval_result_t res;
    lrq_err_t err = {0};
    cr_assert_eq(eng_eval(ra, rb, ids, n, 128, 8, &res, NULL, NULL, &err), 0, "%s", err.msg);
    /* same shapes, but HF's permuted head dims reorder q·kᵀ: logits agree to δ = logit_tol
     * (|logit| ≤ 32; 21 seen in logits::*), so each token's log-softmax moves ≤ 2δ → ppl ratio
     * within ~2δ (≈ 1e-3) and KL ≈ ½·Var(Δlogit) ≤ 2δ². A real mismatch (layout not undone)
     * costs ppl ≥ 1e-1 relative. */
    double d = logit_tol(a, 128, 32.0);
    cr_expect(fabs(res.q_perplexity / res.perplexity - 1) <= 2 * d, "ppl %.9g vs %.9g (2δ = %.3g)", res.q_perplexity,
              res.perplexity, 2 * d);
    cr_expect(fabs(res.kl_divergence) <= 2 * d * d, "kl %.3g > 2δ² = %.3g", res.kl_divergence, 2 * d * d);
    cr_expect_geq(res.top1_agreement, 0.999);
    free(ids);
    eng_runner_free(ra); eng_runner_free(rb); eng_tok_free(tok); eng_model_free(a); eng_model_free(b);
}

Test(eval, bad_input_is_an_error)
{
    eng_model_t *m = open_model(BIN);
    eng_runner_t *r = runner(m, 2, 16);
    lrq_err_t err = {0};
    int32_t ids[40] = {1, 5, 7};
    ids[20] = 512; /* == V */
    eng_eval_result_t res;
    float *lg = malloc((size_t)2 * 16 * 512 * sizeof *lg);
    cr_expect_eq(eng_runner_logits(r, ids + 16, 1, 16, lg, &err), LRQ_EFORMAT);
    cr_expect(strstr(err.msg, "512") && strstr(err.msg, "position 4"), "message: %s", err.msg);
    ids[20] = -3;
    cr_expect_eq(eng_eval(r, NULL, ids, 40, 16, 0, &res, NULL, NULL, &err), LRQ_EFORMAT);
    ids[20] = 9;
    cr_expect_lt(eng_eval(r, NULL, ids, 40, 32, 0, &res, NULL, NULL, &err), 0); /* T > runner's */
    cr_expect_lt(eng_eval(r, NULL, ids, 10, 16, 0, &res, NULL, NULL, &err), 0); /* no full window */
    cr_expect(strstr(err.msg, "fewer than one window"), "message: %s", err.msg);
    cr_expect_lt(eng_runner_logits(r, ids, 3, 16, lg, &err), 0);                 /* B > runner's */
    cr_assert_eq(eng_eval(r, NULL, ids, 40, 16, 0, &res, NULL, NULL, &err), 0, "%s", err.msg);
    cr_expect_eq(res.windows, 2); /* 40 tokens: 2 windows of 16, 8 dropped */
    cr_expect_eq(res.tokens, 30);
    free(lg);
    eng_runner_free(r);
    eng_model_free(m);
}

/* bf16 checkpoint (per-layer conversion, embedding rows and lm_head chunks converted)
 * against the F32 checkpoint holding exactly the same values (in-place views): same
 * logits. Models written by tools/mkmodel.py. */
static void conversion_check(int tie)
{
    char dir[] = "/tmp/lrq-fwd-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s --out %s/bf --hidden 64 --ffn 96 --layers 2 --heads 4 --kv-heads 2 "
             "--vocab 300 --dtype bf16 --seed 3 %s --ref %s/ref.safetensors >/dev/null && mkdir -p %s/f32 && "
             "cp %s/bf/config.json %s/f32/ && cp %s/ref.safetensors %s/f32/model.safetensors",
             srcpath("tools/mkmodel.py"), dir, tie ? "--tie" : "", dir, dir, dir, dir, dir, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    char pa[1100], pb[1100];
    snprintf(pa, sizeof pa, "%s/bf", dir);
    snprintf(pb, sizeof pb, "%s/f32", dir);
    eng_model_t *a = NULL, *b = NULL;
    lrq_err_t err = {0};
    cr_assert_eq(eng_model_open(pa, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(eng_model_open(pb, &b, &err), 0, "%s", err.msg);
    cr_assert_eq(a->dtype, ENG_BF16);
    cr_assert_eq(b->dtype, ENG_F32);
    enum { B = 2, T = 24 };
    eng_runner_t *ra = runner(a, B, T), *rb = runner(b, B, T);
    int32_t ids[B * T];
    for (int i = 0; i < B * T; i++) ids[i] = (i * 37 + 11) % 300;
    float *la = malloc((size_t)B * T * 300 * sizeof *la), *lb = malloc((size_t)B * T * 300 * sizeof *lb);
    cr_assert_eq(eng_runner_logits(ra, ids, B, T, la, &err), 0, "%s", err.msg);
    cr_assert_eq(eng_runner_logits(rb, ids, B, T, lb, &err), 0, "%s", err.msg);
    cr_expect_arr_eq(la, lb, (size_t)B * T * 300 * sizeof(float), "bf16 (converted) vs f32 (in place) logits");
    free(la); free(lb);
    eng_runner_free(ra); eng_runner_free(rb); eng_model_free(a); eng_model_free(b);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

Test(runner, bf16_conversion_equals_f32_untied) { conversion_check(0); }
Test(runner, bf16_conversion_equals_f32_tied) { conversion_check(1); }
