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
#include "wk_methods.h"
#include "eng_forward.h"
#include "eng_export.h"
#include "eng_gguf.h"
#include "eng_half.h"
#include "wk_act.h"
#include "wk_qstore.h"
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
            if (i == ENG_NLIN - 1) { /* the layer is final: to its file, out of memory (wk_qstore.h) */
                if ((rc = wk_qstore_write(job, l, NULL, NULL, err))) break;
                wk_qstore_drop(job, l);
                eng_model_release_layer(job->model, l);
            }
            done++;
            wk_progress(&job->proto, "rtn", done, total, f0 + (f1 - f0) * done / total, NULL, done == total);
            if (*job->stop) rc = lrq_errf(err, LRQ_ECANCEL, "stopped by signal");
        }
    }
    free(W);
    return rc;
}

/* Per-layer relative weight error ‖W − Ŵ‖/‖W‖ (and with the factors), one layer in memory at a time. */
static int layer_errors(wk_job_t *job, lrq_err_t *err)
{
    const eng_config_t *c = &job->model->cfg;
    json_t *layers = json_array();
    wk_qsrc_t src;
    wk_qsrc_init(&src, job, NULL);
    for (int l = 0; l < c->n_layers; l++) {
        const eng_qlinear_t *lin[ENG_NLIN];
        const eng_lowrank_t *fac[ENG_NLIN];
        int rc = wk_qsrc_block(&src, l, lin, fac, err);
        if (rc) { wk_qsrc_close(&src); json_decref(layers); return rc; }
        for (int i = 0; i < ENG_NLIN; i++) {
            const eng_tensor_t *t = &job->model->layers[l].lin[i];
            size_t n = eng_tensor_numel(t);
            float *W = malloc(n * sizeof *W), *D = malloc(n * sizeof *D);
            if (!W || !D) {
                free(W); free(D); wk_qsrc_close(&src); json_decref(layers);
                return lrq_errf(err, LRQ_ENOMEM, "out of memory");
            }
            if ((rc = eng_tensor_to_f32(t, W, err))) { free(W); free(D); wk_qsrc_close(&src); json_decref(layers); return rc; }
            eng_qlinear_dequant(lin[i], D);
            char name[64];
            snprintf(name, sizeof name, "layers.%d.%s", l, eng_lin_short_name[i]);
            json_t *ent = json_pack("{s:s, s:f, s:f}", "name", name, "weight_rel_error", eng_quant_rel_error(W, D, n),
                                    "bits_per_weight", wk_layer_bits(job, l * ENG_NLIN + i, NULL));
            if (fac[i]) { /* Ŵ + L·R, in place: D is not needed after its own error */
                eng_lowrank_add_dense(fac[i], D);
                json_object_set_new(ent, "weight_rel_error_factored", json_real(eng_quant_rel_error(W, D, n)));
            }
            json_array_append_new(layers, ent);
            free(W);
            free(D);
        }
        eng_model_release_layer(job->model, l);
    }
    wk_qsrc_close(&src);
    json_object_set_new(job->metrics, "layers", layers);
    return 0;
}

/* The quantized runner reads its linears and their factors one layer at a time from the store
 * (wk_qsrc_linear, wk_qsrc_lowrank): s·(q − z), rounded to round_dtype (>= 0) when that is what
 * the hf export holds. */
static int run_eval(wk_job_t *job, int round_dtype, double f0, double f1, lrq_err_t *err)
{
    wk_qsrc_t src;
    wk_qsrc_init(&src, job, NULL);
    src.round_dtype = round_dtype;
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
    if ((rc = eng_runner_new(wk_act_fp_model(job), B, s->eval_seq_len, job->pool, &fp, err))) goto out;
    if ((rc = eng_runner_new(job->model, B, s->eval_seq_len, job->pool, &q, err))) goto out;
    eng_runner_set_mm(fp, wk_job_mm_fp32(job));
    eng_runner_set_mm(q, wk_job_mm_fp32(job));
    eng_runner_set_release(fp, 1); /* one layer of the source resident at a time */
    eng_runner_set_release(q, 1);
    if ((rc = eng_runner_set_linear_fn(q, wk_qsrc_linear, &src, err))) goto out;
    if (job->lr) eng_runner_set_lowrank_fn(q, wk_qsrc_lowrank, &src); /* y += (x Rᵀ) Lᵀ, with each layer's block */
    eng_runner_set_actq(q, wk_act_eval_layers(job)); /* weight-activation settings (NULL = weight-only) */
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
    wk_qsrc_close(&src);
    free(ids);
    return rc;
}

static int list_artifacts(const char *root, const char *rel, json_t *arr, lrq_err_t *err);

/* What the export stage needs beyond the job (kept here: wk_job_t is shared). */
typedef struct export_ctx {
    eng_dtype_t hf_dtype;     /* dtype of the hf export's linears (docs/formats.md, Evaluated = exported) */
    const char *tok_path;     /* borrowed */
    json_t *man_source;       /* source hashes, computed once for all exports (owned) */
} export_ctx_t;

/* Source model files (and the tokenizer), for the manifest's hashes. */
static json_t *source_hashes(wk_job_t *job, const char *tok_path, lrq_err_t *err)
{
    const eng_model_t *m = job->model;
    json_t *o = json_object();
    const char *files[4 + 2 * 64];
    int n = 0;
    char cfgp[4096];
    if (m->format == ENG_FMT_HF && m->dir) {
        snprintf(cfgp, sizeof cfgp, "%s/config.json", m->dir);
        files[n++] = cfgp;
    }
    const eng_tensor_t *ts[2] = {&m->embed, &m->final_norm};
    for (int i = 0; i < 2; i++) files[n++] = ts[i]->file;
    for (int l = 0; l < m->cfg.n_layers && n < 120; l++)
        for (int k = 0; k < ENG_NLIN && n < 120; k++) files[n++] = m->layers[l].lin[k].file;
    if (tok_path) files[n++] = tok_path;
    for (int i = 0; i < n; i++) {
        if (!files[i] || json_object_get(o, files[i])) continue;
        char hex[65];
        int rc = lrq_sha256_file(files[i], hex, NULL, err);
        if (rc) { json_decref(o); return NULL; }
        json_object_set_new(o, files[i], json_string(hex));
    }
    return o;
}

static json_t *data_hash(const char *path, lrq_err_t *err)
{
    if (!path) return json_null();
    char hex[65];
    if (lrq_sha256_file(path, hex, NULL, err)) return NULL;
    return json_pack("{s:s, s:s}", "path", path, "sha256", hex);
}

/* Add the job's side to DIR/lrq-manifest.json (written by the exporter): spec, method, hashes of the
 * source model and the data, metrics, the verification and runtime notes. */
static int manifest_augment(wk_job_t *job, export_ctx_t *xc, const char *dir, const char *kind, json_t *extra,
                            lrq_err_t *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/lrq-manifest.json", dir);
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    if (!m) { json_decref(extra); return lrq_errf(err, LRQ_EFORMAT, "%s: %s", path, je.text); }
    if (!xc->man_source && !(xc->man_source = source_hashes(job, xc->tok_path, err))) {
        json_decref(m);
        json_decref(extra);
        return err && err->code ? err->code : LRQ_EFORMAT;
    }
    json_t *cal = data_hash(job->spec.calib_path, err), *ev = cal ? data_hash(job->spec.eval_path, err) : NULL;
    if (!cal || !ev) { json_decref(cal); json_decref(m); json_decref(extra); return err ? err->code : LRQ_EFORMAT; }
    json_object_set_new(m, "method", json_string(lrq_method_name[job->spec.method]));
    if (job->spec_json) json_object_set(m, "spec", job->spec_json);
    json_object_set_new(m, "source_sha256", json_deep_copy(xc->man_source));
    json_object_set_new(m, "calibration", cal);
    json_object_set_new(m, "eval", ev);
    json_t *mt = json_object();
    json_t *fp = json_object_get(job->metrics, "fp"), *qq = json_object_get(job->metrics, "quantized");
    if (fp) json_object_set(mt, "fp", fp);
    if (qq) json_object_set(mt, "quantized", qq);
    json_object_set_new(m, "metrics", mt);
    json_object_set_new(m, "verified", json_pack("{s:s, s:s}", "reader", kind, "result",
                                                 "every linear re-read and dequantized in float32 equals the evaluated "
                                                 "weights bit for bit"));
    if (extra) json_object_update(m, extra);
    json_decref(extra);
    char *txt = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(16));
    json_decref(m);
    if (!txt) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    int rc = lrq_write_atomic(path, txt, strlen(txt), err);
    free(txt);
    return rc;
}

/* A failed verification names the tensor; the job fails with it (permanent: the artifact is wrong). */
static int verified(wk_job_t *job, const char *kind, int rc, lrq_err_t *err)
{
    if (!rc) wk_log(&job->proto, "%s export verified: re-read, every linear bit-equal to the evaluated weights", kind);
    else if (err) snprintf(err->field, sizeof err->field, "export");
    return rc;
}

static int run_export_qs(wk_job_t *job, export_ctx_t *xc, const eng_qsource_t *qs, lrq_err_t *err);

/* Every export reads the quantized model one layer at a time from the store. */
static int run_export(wk_job_t *job, export_ctx_t *xc, lrq_err_t *err)
{
    int rc;
    wk_qsrc_t src;
    eng_qsource_t qs;
    wk_qsrc_init(&src, job, &qs);
    rc = run_export_qs(job, xc, &qs, err);
    wk_qsrc_close(&src);
    return rc;
}

static int run_export_qs(wk_job_t *job, export_ctx_t *xc, const eng_qsource_t *qsp, lrq_err_t *err)
{
    char dir[4096];
    int rc;
    eng_qsource_t qs = *qsp;
    if (job->spec.export_hf) {
        snprintf(dir, sizeof dir, "%s/artifacts/hf", job->workdir);
        if (job->lr) { /* factored: the hf file holds Ŵ + L·R merged, the factored artifact the exact parts */
            wk_log(&job->proto, "exporting hf checkpoint to %s (low-rank factors merged into the dense weights)", dir);
            if ((rc = wk_export_hf(job, dir, err))) return rc;
            json_t *rt = json_pack("{s:[{s:s}, {s:s}]}", "runtimes", "name", "transformers", "name", "vLLM");
            if ((rc = manifest_augment(job, xc, dir, "hf", rt, err))) return rc;
        } else {
            wk_log(&job->proto, "exporting hf checkpoint to %s (linears in %s)", dir, eng_dtype_name(xc->hf_dtype));
            if ((rc = eng_export_hf_qs(job->model, &qs, xc->hf_dtype, dir, err))) return rc;
            if ((rc = verified(job, "hf", eng_export_verify_hf(dir, job->model, &qs, err), err))) return rc;
            json_t *rt = json_pack("{s:[{s:s}, {s:s}, {s:s, s:s}]}", "runtimes", "name", "transformers", "name", "vLLM",
                                   "name", "llama.cpp", "notes", "after convert_hf_to_gguf.py");
            if ((rc = manifest_augment(job, xc, dir, "hf", rt, err))) return rc;
        }
    }
    if (lrq_spec_factored(&job->spec) || job->spec.method == LRQ_M_GPTQ) {
        wk_log(&job->proto, "writing the factored artifact (codes, scales, zeros%s)", job->lr ? ", factors" : "");
        if ((rc = wk_methods_export(job, err))) return rc;
    }
    if (job->spec.export_gptq) {
        snprintf(dir, sizeof dir, "%s/artifacts/gptq", job->workdir);
        wk_log(&job->proto, "exporting gptq checkpoint to %s", dir);
        if ((rc = eng_export_gptq_qs(job->model, &qs, dir, err))) return rc;
        if ((rc = verified(job, "gptq", eng_export_verify_gptq(dir, job->model, &qs, err), err))) return rc;
        int b = job->spec.bits, sym = job->spec.symmetric;
        json_t *rt = sym && (b == 4 || b == 8)
                         ? json_pack("{s:[{s:s, s:s}, {s:s}, {s:s}]}", "runtimes", "name", "transformers", "notes",
                                     "optimum + gptqmodel", "name", "GPTQModel", "name", "vLLM")
                         : json_pack("{s:[{s:s, s:s}, {s:s}]}", "runtimes", "name", "transformers", "notes",
                                     "optimum + gptqmodel", "name", "GPTQModel");
        if ((rc = manifest_augment(job, xc, dir, "gptq", rt, err))) return rc;
    }
    if (job->spec.export_ct) {
        snprintf(dir, sizeof dir, "%s/artifacts/compressed-tensors", job->workdir);
        if (job->aq && job->aq->on) { /* W8A8: int8 weights + the activation ranges of activation.json */
            wk_log(&job->proto, "exporting compressed-tensors (int-quantized W8A8) to %s", dir);
            if ((rc = eng_export_ct_int(job->model, &qs, &job->aq->q, dir, err))) return rc;
            if ((rc = verified(job, "compressed-tensors", eng_export_verify_ct_int(dir, job->model, &qs, &job->aq->q, err),
                               err)))
                return rc;
        } else {
            wk_log(&job->proto, "exporting compressed-tensors (pack-quantized) to %s", dir);
            if ((rc = eng_export_ct(job->model, &qs, dir, err))) return rc;
            if ((rc = verified(job, "compressed-tensors", eng_export_verify_ct(dir, job->model, &qs, err), err))) return rc;
        }
        if ((rc = manifest_augment(job, xc, dir, "compressed-tensors", NULL, err))) return rc;
    }
    if (job->spec.export_gguf) {
        snprintf(dir, sizeof dir, "%s/artifacts/gguf", job->workdir);
        wk_log(&job->proto, "exporting gguf (%s) to %s", lrq_gguf_type_name[job->spec.gguf_type], dir);
        if ((rc = eng_export_gguf(job->model, job->tok, &qs, (eng_gguf_req_t)job->spec.gguf_type, dir, NULL, err)))
            return rc;
        char f[4200];
        snprintf(f, sizeof f, "%s/model.gguf", dir);
        if ((rc = verified(job, "gguf", eng_gguf_verify(f, job->model, &qs, err), err))) return rc;
        if ((rc = manifest_augment(job, xc, dir, "gguf", NULL, err))) return rc;
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
    if (s->calib_path || s->eval_path || s->export_gguf) {
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
    /* Evaluated = exported (docs/formats.md): every narrower type an export stores the scales in
     * constrains the quantizer's scales before it chooses codes. */
    if (s->export_gptq) job->qcfg.scale_store |= ENG_SCALE_F16;
    if (s->export_gguf) job->qcfg.scale_store |= eng_gguf_scale_store((eng_gguf_req_t)s->gguf_type, s->bits, s->symmetric);
    if (s->export_ct && job->model->dtype != ENG_F32) /* weight_scale is stored in the model dtype */
        job->qcfg.scale_store |= job->model->dtype == ENG_BF16 ? ENG_SCALE_BF16 : ENG_SCALE_F16;
    eng_aqcfg_t acfg;
    wk_act_cfg(s, &acfg);
    const int ct_w8a8 = acfg.bits < 16 || acfg.kv_bits < 16; /* activations quantized: int-quantized W8A8 */
    if (s->export_ct && (rc = ct_w8a8 ? eng_export_ct_int_check(job->model, s->bits, s->group_size, s->symmetric, &acfg, err)
                                      : eng_export_ct_check(job->model, s->bits, s->group_size, s->symmetric, err))) {
        if (err && !err->field[0]) snprintf(err->field, sizeof err->field, "export");
        goto out;
    }
    if (s->export_gguf &&
        (rc = eng_gguf_plan(job->model, job->tok, s->bits, s->group_size, s->symmetric, (eng_gguf_req_t)s->gguf_type,
                            NULL, err))) {
        if (err && !err->field[0]) snprintf(err->field, sizeof err->field, "export");
        goto out;
    }
    /* The hf export holds dense weights: in the source dtype they are Ŵ rounded, which only equals
     * the evaluated Ŵ when the evaluation uses the rounded weights too. So: hf alone → linears in
     * the source dtype and the evaluation uses them rounded; hf beside a packed export (whose
     * dequantization is the fp32 Ŵ) → hf linears in F32. */
    int packed = s->export_gptq || s->export_gguf || s->export_ct;
    export_ctx_t xc = {job->model->dtype, tok_path, NULL};
    if (s->export_hf && packed) xc.hf_dtype = ENG_F32;
    int eval_round = s->export_hf && !packed && job->model->dtype != ENG_F32;
    if (s->export_hf && packed && job->model->dtype != ENG_F32)
        wk_log(&job->proto, "hf export beside a packed export: its linears are written in F32 so that both equal "
               "the evaluated weights");
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
    if ((rc = wk_act_prepare(job, 0.02, err))) goto out; /* SmoothQuant + static activation ranges */

    int has_eval = s->eval_path != NULL;
    double qend = has_eval ? 0.85 : 0.97;
    if (s->method == LRQ_M_RTN) rc = wk_rtn_run(job, 0.02, qend, err);
    else if (s->method >= LRQ_M_GPTQ) rc = wk_methods_run(job, 0.02, qend, err);
    else rc = wk_recon_run(job, 0.02, qend, err);
    if (rc || job->task_mode) goto out; /* task mode (--blocks, --task): its block files are the result */

    if ((rc = layer_errors(job, err))) goto out;
    /* eval_round: the hf file's own weights, s·(q − z) rounded to the source dtype */
    if (has_eval && (rc = run_eval(job, eval_round ? (int)job->model->dtype : -1, qend, 0.97, err))) goto out;
    json_object_set_new(job->metrics, "evaluated", json_pack("{s:s, s:i}", "weights",
                                                             eval_round ? "s*(q-z) rounded to the source dtype (the hf export)"
                                                                        : "s*(q-z) in float32 (every export dequantizes to it)",
                                                             "scale_store", job->qcfg.scale_store));
    wk_bits_metrics(job);
    wk_progress(&job->proto, "export", 0, 1, 0.97, NULL, 1);
    if ((rc = wk_act_write(job, err))) goto out;
    rc = run_export(job, &xc, err);
    json_decref(xc.man_source);
    if (rc) goto out;
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
    free(tok_path);
    wk_act_close(job);
    eng_mm_free(job->mm_fp32);
    eng_mm_free(job->mm);
    job->mm = job->mm_fp32 = NULL;
    eng_pool_free(job->pool);
    job->pool = NULL;
    return rc;
}
