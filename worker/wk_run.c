/* wk_run.c — `lrq-worker run`: load → quantize (RTN | LRQ | FlexRound) → evaluate → export.
 * Stage fractions of the whole job drive the progress bar: quantization takes most of it. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "wk_job.h"
#include "eng_forward.h"
#include "eng_export.h"
#include "lrq_fs.h"
#include "lrq_sha256.h"

static json_t *result_json(const eng_eval_result_t *r, int quant)
{
    if (!quant) return json_pack("{s:f, s:I, s:i}", "perplexity", r->perplexity, "tokens", (json_int_t)r->tokens,
                                 "windows", r->windows);
    return json_pack("{s:f, s:f, s:f, s:I}", "perplexity", r->q_perplexity, "kl_divergence", r->kl_divergence,
                     "top1_agreement", r->top1_agreement, "tokens", (json_int_t)r->tokens);
}

/* The job's matmul backends from spec.compute (enum values = eng_mm's). A bf16 job that this
 * machine can only emulate says so once, in its log. */
static int wk_job_mm_new(wk_job_t *job, lrq_err_t *err)
{
    const lrq_spec_t *s = &job->spec;
    int n = eng_pool_threads(job->pool), rc;
    if ((rc = eng_mm_new((eng_mm_backend_t)s->compute.backend, (eng_mm_prec_t)s->compute.precision, n, &job->mm, err)))
        return rc;
    if (eng_mm_note(job->mm)) wk_log(&job->proto, "%s", eng_mm_note(job->mm));
    if (s->compute.precision == ENG_MM_FP32) return 0;
    return eng_mm_new((eng_mm_backend_t)s->compute.backend, ENG_MM_FP32, n, &job->mm_fp32, err);
}

typedef struct { wk_job_t *job; double f0, f1; } eval_ctx_t;

static void on_eval_progress(void *ctx, int done, int total)
{
    eval_ctx_t *c = ctx;
    wk_progress(&c->job->proto, "eval", done, total, c->f0 + (c->f1 - c->f0) * done / (total ? total : 1), NULL, 0);
}

int wk_rtn_run(wk_job_t *job, double f0, double f1, lrq_err_t *err)
{
    const eng_config_t *c = &job->model->cfg;
    int total = c->n_layers * ENG_NLIN, done = 0, rc = 0;
    float *W = NULL;
    size_t cap = 0;
    for (int l = 0; l < c->n_layers && !rc; l++) {
        for (int i = 0; i < ENG_NLIN && !rc; i++) {
            const eng_tensor_t *t = &job->model->layers[l].lin[i];
            size_t n = eng_tensor_numel(t);
            if (n > cap) {
                free(W);
                if (!(W = malloc(n * sizeof *W))) return lrq_errf(err, LRQ_ENOMEM, "out of memory (%zu floats)", n);
                cap = n;
            }
            eng_qlinear_t *q = &job->ql[l * ENG_NLIN + i];
            if ((rc = eng_tensor_to_f32(t, W, err))) break;
            if ((rc = eng_qlinear_init(q, (int)t->rows, (int)t->cols, &job->qcfg, err))) break;
            eng_quant_rtn(job->pool, W, &job->qcfg, q);
            done++;
            wk_progress(&job->proto, "rtn", done, total, f0 + (f1 - f0) * done / total, NULL, done == total);
            if (*job->stop) rc = lrq_errf(err, LRQ_ECANCEL, "stopped by signal");
        }
    }
    free(W);
    return rc;
}

/* Per-layer relative weight error, and (keep) dequantized copies for evaluation. Those copies
 * hold the quantized linears in fp32 at once: fine for small models; evaluating a 7B model
 * in-job needs ~4 bytes per weight of RAM (the standalone `eval --quantized` streams layers). */
static int layer_errors(wk_job_t *job, float **deq, int keep, lrq_err_t *err)
{
    const eng_config_t *c = &job->model->cfg;
    json_t *layers = json_array();
    for (int l = 0; l < c->n_layers; l++) {
        for (int i = 0; i < ENG_NLIN; i++) {
            const eng_tensor_t *t = &job->model->layers[l].lin[i];
            size_t n = eng_tensor_numel(t);
            float *W = malloc(n * sizeof *W), *D = malloc(n * sizeof *D);
            if (!W || !D) { free(W); free(D); json_decref(layers); return lrq_errf(err, LRQ_ENOMEM, "out of memory"); }
            int rc = eng_tensor_to_f32(t, W, err);
            if (rc) { free(W); free(D); json_decref(layers); return rc; }
            eng_qlinear_dequant(&job->ql[l * ENG_NLIN + i], D);
            char name[64];
            snprintf(name, sizeof name, "layers.%d.%s", l, eng_lin_short_name[i]);
            json_array_append_new(layers, json_pack("{s:s, s:f}", "name", name, "weight_rel_error",
                                                    eng_quant_rel_error(W, D, n)));
            free(W);
            if (keep) deq[l * ENG_NLIN + i] = D;
            else free(D);
        }
    }
    json_object_set_new(job->metrics, "layers", layers);
    return 0;
}

static int run_eval(wk_job_t *job, float **deq, double f0, double f1, lrq_err_t *err)
{
    const lrq_spec_t *s = &job->spec;
    int32_t *ids = NULL;
    size_t n = 0;
    eng_runner_t *fp = NULL, *q = NULL;
    int B = 4, rc;
    wk_log(&job->proto, "evaluating on %s (seq_len %d)", s->eval_path, s->eval_seq_len);
    if ((rc = eng_data_load(s->eval_path, job->tok, job->model->cfg.vocab_size, &ids, &n, err))) goto out;
    if (n < (size_t)s->eval_seq_len) {
        rc = lrq_err_field(err, "eval.path", "has %zu tokens, fewer than one window of eval.seq_len %d", n, s->eval_seq_len);
        goto out;
    }
    if ((rc = eng_runner_new(job->model, B, s->eval_seq_len, job->pool, &fp, err))) goto out;
    if ((rc = eng_runner_new(job->model, B, s->eval_seq_len, job->pool, &q, err))) goto out;
    eng_runner_set_mm(fp, wk_job_mm_fp32(job));
    eng_runner_set_mm(q, wk_job_mm_fp32(job));
    for (int l = 0; l < job->model->cfg.n_layers; l++)
        for (int i = 0; i < ENG_NLIN; i++) eng_runner_set_linear(q, l, i, deq[l * ENG_NLIN + i]);
    eng_eval_result_t r;
    eval_ctx_t ctx = {job, f0, f1};
    if ((rc = eng_eval(fp, q, ids, n, s->eval_seq_len, s->eval_max_windows, &r, on_eval_progress, &ctx, err))) goto out;
    json_object_set_new(job->metrics, "fp", result_json(&r, 0));
    json_object_set_new(job->metrics, "quantized", result_json(&r, 1));
    wk_log(&job->proto, "eval: fp ppl %.4f, quantized ppl %.4f, KL %.5f, top-1 %.4f (%ld tokens)", r.perplexity,
           r.q_perplexity, r.kl_divergence, r.top1_agreement, r.tokens);
out:
    eng_runner_free(fp);
    eng_runner_free(q);
    free(ids);
    return rc;
}

static int list_artifacts(const char *root, const char *rel, json_t *arr, lrq_err_t *err);

static int run_export(wk_job_t *job, lrq_err_t *err)
{
    char dir[4096];
    int rc;
    if (job->spec.export_hf) {
        snprintf(dir, sizeof dir, "%s/artifacts/hf", job->workdir);
        wk_log(&job->proto, "exporting hf checkpoint to %s", dir);
        if ((rc = eng_export_hf(job->model, job->ql, dir, err))) return rc;
    }
    if (job->spec.export_gptq) {
        snprintf(dir, sizeof dir, "%s/artifacts/gptq", job->workdir);
        wk_log(&job->proto, "exporting gptq checkpoint to %s", dir);
        if ((rc = eng_export_gptq(job->model, job->ql, dir, err))) return rc;
    }
    snprintf(dir, sizeof dir, "%s/artifacts", job->workdir);
    json_t *arr = json_array();
    if ((rc = list_artifacts(dir, "", arr, err))) { json_decref(arr); return rc; }
    /* The worker owns the digests (it wrote the bytes): artifacts.json is what the
     * daemon registers, written before metrics.json so that a finished job has both;
     * the done event carries the same listing. */
    json_t *doc = json_pack("{s:O}", "artifacts", arr);
    char *txt = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    json_decref(doc);
    if (!txt) { json_decref(arr); return lrq_errf(err, LRQ_ENOMEM, "out of memory"); }
    snprintf(dir, sizeof dir, "%s/artifacts.json", job->workdir);
    rc = lrq_write_atomic(dir, txt, strlen(txt), err);
    free(txt);
    if (rc) { json_decref(arr); return rc; }
    json_decref(job->artifacts);
    job->artifacts = arr;
    return 0;
}

static int list_artifacts(const char *root, const char *rel, json_t *arr, lrq_err_t *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    DIR *d = opendir(path);
    if (!d) return errno == ENOENT ? 0 : lrq_errf(err, -errno, "%s: %s", path, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char r2[4096], full[8192];
        snprintf(r2, sizeof r2, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        snprintf(full, sizeof full, "%s/%s", root, r2);
        struct stat st;
        if (stat(full, &st) < 0) continue;
        if (S_ISDIR(st.st_mode)) rc = list_artifacts(root, r2, arr, err);
        else if (S_ISREG(st.st_mode)) {
            char hex[65];
            if ((rc = lrq_sha256_file(full, hex, NULL, err))) break;
            json_array_append_new(arr, json_pack("{s:s, s:I, s:s}", "path", r2, "size", (json_int_t)st.st_size,
                                                 "sha256", hex));
        }
    }
    closedir(d);
    return rc;
}

int wk_job_run(wk_job_t *job, lrq_err_t *err)
{
    lrq_spec_t *s = &job->spec;
    int rc;
    char *tok_path = NULL;
    float **deq = NULL;
    job->t0 = wk_now();
    job->metrics = json_object();
    job->qcfg = (eng_qcfg_t){.bits = s->bits, .group_size = s->group_size, .symmetric = s->symmetric,
                             .init = s->init_mse ? ENG_INIT_MSE : ENG_INIT_MINMAX};
    /* All parallelism goes through the job's pool; OpenBLAS is called from its tasks and
     * stays single-threaded (eng_pool.h). */
    int threads = s->threads > 0 ? s->threads : openblas_get_num_threads();
    openblas_set_num_threads(1);
    if (!(job->pool = eng_pool_new(threads))) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory (thread pool)"); goto out; }
    if ((rc = wk_job_mm_new(job, err))) goto out;
    wk_progress(&job->proto, "load", 0, 1, 0.0, NULL, 1);
    if ((rc = eng_model_open(s->model, &job->model, err))) {
        if (err) snprintf(err->field, sizeof err->field, "model");
        goto out;
    }
    const eng_config_t *c = &job->model->cfg;
    wk_log(&job->proto, "model %s: %s %s, dim %d, ffn %d, %d layers, %d heads (%d kv), vocab %d", s->model,
           job->model->format == ENG_FMT_HF ? "hf" : "llama2.c", eng_dtype_name(job->model->dtype), c->dim,
           c->ffn_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size);
    if (s->calib_path || s->eval_path) {
        if ((rc = eng_tok_locate(s->model, s->tokenizer, &tok_path, err))) {
            if (err) snprintf(err->field, sizeof err->field, "tokenizer");
            goto out;
        }
        if ((rc = eng_tok_load(tok_path, &job->tok, err))) {
            if (err) snprintf(err->field, sizeof err->field, "tokenizer");
            goto out;
        }
        if (eng_tok_vocab_size(job->tok) > c->vocab_size) {
            rc = lrq_err_field(err, "tokenizer", "%s has %d tokens, more than the model's vocabulary (%d)", tok_path,
                               eng_tok_vocab_size(job->tok), c->vocab_size);
            goto out;
        }
    }
    size_t nq = (size_t)c->n_layers * ENG_NLIN;
    if (!(job->ql = calloc(nq, sizeof *job->ql))) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); goto out; }
    if (s->export_gptq) {
        /* Refuse up front rather than after hours of work: shapes and bits are known now. */
        for (int l = 0; l < c->n_layers; l++)
            for (int i = 0; i < ENG_NLIN; i++) {
                eng_qlinear_t *q = &job->ql[l * ENG_NLIN + i];
                q->m = (int)job->model->layers[l].lin[i].rows;
                q->n = (int)job->model->layers[l].lin[i].cols;
                q->bits = s->bits;
                q->gs = s->group_size ? s->group_size : q->n;
                q->G = eng_quant_ngroups(q->n, q->gs);
                q->symmetric = s->symmetric;
            }
        rc = eng_export_gptq_check(job->model, job->ql, err);
        memset(job->ql, 0, nq * sizeof *job->ql);
        if (rc) {
            if (err) snprintf(err->field, sizeof err->field, "export");
            goto out;
        }
    }
    wk_progress(&job->proto, "load", 1, 1, 0.02, NULL, 1);

    int has_eval = s->eval_path != NULL;
    double qend = has_eval ? 0.85 : 0.97;
    if (s->method == LRQ_M_RTN) rc = wk_rtn_run(job, 0.02, qend, err);
    else rc = wk_recon_run(job, 0.02, qend, err);
    if (rc) goto out;

    if (!(deq = calloc(nq, sizeof *deq))) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); goto out; }
    if ((rc = layer_errors(job, deq, has_eval, err))) goto out;
    if (has_eval && (rc = run_eval(job, deq, qend, 0.97, err))) goto out;
    wk_progress(&job->proto, "export", 0, 1, 0.97, NULL, 1);
    if ((rc = run_export(job, err))) goto out;
    json_object_set_new(job->metrics, "method", json_string(lrq_method_name[s->method]));
    json_object_set_new(job->metrics, "compute",
                        json_pack("{s:s, s:s, s:s}", "backend", lrq_backend_name[s->compute.backend], "precision",
                                  lrq_precision_name[s->compute.precision], "bf16",
                                  s->compute.precision == 0 ? "n/a" : eng_mm_bf16_native(job->mm) ? "native" : "emulated"));
    json_object_set_new(job->metrics, "weight", json_pack("{s:i, s:i, s:b, s:s}", "bits", s->bits, "group_size",
                                                          s->group_size, "symmetric", s->symmetric, "init",
                                                          s->init_mse ? "mse" : "minmax"));
    json_object_set_new(job->metrics, "seconds", json_real(wk_now() - job->t0));
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.json", job->workdir);
    char *txt = json_dumps(job->metrics, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    if (!txt) { rc = lrq_errf(err, LRQ_ENOMEM, "out of memory"); goto out; }
    rc = lrq_write_atomic(path, txt, strlen(txt), err);
    free(txt);
    if (rc) goto out;
    wk_progress(&job->proto, "export", 1, 1, 1.0, NULL, 1);
out:
    if (deq) {
        for (size_t i = 0; i < nq; i++) free(deq[i]);
        free(deq);
    }
    free(tok_path);
    eng_mm_free(job->mm_fp32);
    eng_mm_free(job->mm);
    job->mm = job->mm_fp32 = NULL;
    eng_pool_free(job->pool);
    job->pool = NULL;
    return rc;
}
