/* wk_act.c — activation quantization and SmoothQuant for a job (wk_act.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wk_act.h"
#include "eng_forward.h"
#include "lrq_fs.h"

#define ACT_FORMAT_VERSION 1

void wk_act_cfg(const lrq_spec_t *s, eng_aqcfg_t *cfg)
{
    *cfg = (eng_aqcfg_t){.bits = s->act.bits, .kv_bits = s->act.kv_bits,
                         .granularity = s->act.granularity ? ENG_AQ_PER_TENSOR : ENG_AQ_PER_TOKEN,
                         .symmetric = s->act.symmetric, .calibrate = (eng_aq_cal_t)s->act.calibrate,
                         .percentile = s->act.percentile};
}

static void act__widths(const eng_config_t *c, int w[ENG_AQ_NSITE])
{
    w[ENG_AQ_ATTN_IN] = c->dim;
    w[ENG_AQ_O_IN] = c->n_heads * c->head_dim;
    w[ENG_AQ_FFN_IN] = c->dim;
    w[ENG_AQ_DOWN_IN] = c->ffn_dim;
    w[ENG_AQ_K_OUT] = w[ENG_AQ_V_OUT] = c->n_kv_heads * c->head_dim;
}

/* One streamed pass of the calibration windows through model m, statistics into cal. */
static int act__pass(wk_job_t *job, const eng_model_t *m, const int32_t *ids, int N, int T, eng_aq_calib_t *cal,
                     double frac, lrq_err_t *err)
{
    int B = N < 4 ? N : 4, rc;
    eng_runner_t *r = NULL;
    float *logits = NULL;
    if ((rc = eng_runner_new(m, B, T, job->pool, &r, err))) return rc;
    eng_runner_set_actq(r, cal->layers);
    if (!(logits = malloc((size_t)B * T * m->cfg.vocab_size * sizeof *logits))) {
        rc = lrq_errf(err, LRQ_ENOMEM, "calibration: out of memory for %d × %d logits", B, T);
        goto out;
    }
    for (int s0 = 0; s0 < N; s0 += B) {
        int nb = N - s0 < B ? N - s0 : B;
        if ((rc = eng_runner_logits(r, ids + (size_t)s0 * T, nb, T, logits, err))) goto out;
        wk_progress(&job->proto, "calibrate", s0 + nb, N, frac, NULL, s0 + nb == N);
        if (*job->stop) {
            rc = lrq_errf(err, LRQ_ECANCEL, "stopped by signal");
            goto out;
        }
    }
out:
    free(logits);
    eng_runner_free(r);
    return rc;
}

int wk_act_prepare(wk_job_t *job, double frac, lrq_err_t *err)
{
    const lrq_spec_t *s = &job->spec;
    eng_aqcfg_t cfg;
    wk_act_cfg(s, &cfg);
    int on = cfg.bits < 16 || cfg.kv_bits < 16;
    if (!on && !s->smooth.on) return 0;
    const eng_config_t *c = &job->model->cfg;
    const int L = c->n_layers;
    int static_ranges = on && cfg.granularity == ENG_AQ_PER_TENSOR;
    int32_t *ids = NULL;
    size_t nids = 0;
    float *amax = NULL;
    eng_aq_calib_t cal = {0};
    wk_act_t *a = calloc(1, sizeof *a);
    int rc = 0, widths[ENG_AQ_NSITE];
    if (!a) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    job->aq = a;
    a->on = on;
    a->orig = job->model;
    act__widths(c, widths);
    if ((rc = eng_actq_init(&a->q, &cfg, L, err))) return rc;
    if (s->smooth.on || static_ranges) {
        if (!s->calib_path) return lrq_err_field(err, "calibration", "is required for smoothing and static ranges");
        if ((rc = eng_data_load(s->calib_path, job->tok, c->vocab_size, &ids, &nids, err))) {
            if (err && !err->field[0]) snprintf(err->field, sizeof err->field, "calibration.path");
            return rc;
        }
        int T = s->calib_seq_len, N = (int)(nids / (size_t)T);
        if (N > s->calib_samples) N = s->calib_samples;
        if (N < 1) {
            rc = lrq_err_field(err, "calibration.path", "has %zu tokens, fewer than one window of seq_len %d", nids, T);
            goto out;
        }
        a->calib_windows = N;
        a->calib_seq_len = T;
        if (s->smooth.on) {
            wk_log(&job->proto, "smooth: activation maxima on %d windows × %d tokens (alpha %g%s)", N, T,
                   s->smooth.alpha, s->smooth.pow2 ? ", powers of two" : "");
            if ((rc = eng_aq_calib_init(&cal, L, widths, 1, err)) ||
                (rc = act__pass(job, job->model, ids, N, T, &cal, frac, err)))
                goto out;
            if (!(amax = malloc((size_t)L * 2 * c->dim * sizeof *amax))) {
                rc = lrq_errf(err, LRQ_ENOMEM, "out of memory");
                goto out;
            }
            for (int l = 0; l < L; l++) {
                memcpy(amax + (size_t)(2 * l) * c->dim, cal.st[l * ENG_AQ_NSITE + ENG_AQ_ATTN_IN].chmax,
                       c->dim * sizeof *amax);
                memcpy(amax + (size_t)(2 * l + 1) * c->dim, cal.st[l * ENG_AQ_NSITE + ENG_AQ_FFN_IN].chmax,
                       c->dim * sizeof *amax);
            }
            eng_aq_calib_close(&cal);
            if ((rc = eng_smooth_init(&a->sm, a->orig, amax, (float)s->smooth.alpha, s->smooth.pow2, err))) goto out;
            a->smoothed = 1;
            job->model = &a->sm.view; /* every later stage quantizes, evaluates and exports the smoothed model */
        }
        if (static_ranges) {
            wk_log(&job->proto, "activation: calibrating per-tensor ranges (%s) on %d windows × %d tokens",
                   lrq_act_calibrate_name[cfg.calibrate], N, T);
            if ((rc = eng_aq_calib_init(&cal, L, widths, 0, err)) ||
                (rc = act__pass(job, job->model, ids, N, T, &cal, frac, err)))
                goto out;
            eng_actq_set_from_calib(&a->q, &cal);
        }
    }
    if (static_ranges && s->act.simulate) { /* STE masks of the clamp (per-token clips nothing) */
        size_t wmax = 0;
        for (int k = 0; k < ENG_AQ_NSITE; k++) wmax = (size_t)widths[k] > wmax ? (size_t)widths[k] : wmax;
        if ((rc = eng_actq_alloc_masks(&a->q, (size_t)s->batch_size * s->calib_seq_len * wmax, err))) goto out;
    }
    if (on)
        wk_log(&job->proto, "activation: A%d%s %s%s%s", cfg.bits < 16 ? cfg.bits : 16,
               cfg.kv_bits < 16 ? (cfg.kv_bits == 8 ? "-KV8" : "-KV") : "", lrq_act_granularity_name[cfg.granularity],
               cfg.symmetric ? " symmetric" : " asymmetric", s->act.simulate ? ", simulated during reconstruction" : "");
out:
    eng_aq_calib_close(&cal);
    free(amax);
    free(ids);
    return rc;
}

eng_actq_layer_t *wk_act_eval_layers(wk_job_t *job)
{
    return job->aq && job->aq->on ? job->aq->q.layer : NULL;
}

eng_actq_layer_t *wk_act_recon_layer(wk_job_t *job, int b)
{
    if (!job->aq || !job->aq->on || !job->spec.act.simulate) return NULL;
    return eng_actq_train_view(&job->aq->q, b);
}

const eng_model_t *wk_act_fp_model(const wk_job_t *job)
{
    return job->aq ? job->aq->orig : job->model;
}

static json_t *act__settings(const eng_aqcfg_t *cfg, int simulate)
{
    json_t *o = json_pack("{s:i, s:i, s:s, s:b, s:b}", "bits", cfg->bits, "kv_bits", cfg->kv_bits, "granularity",
                          lrq_act_granularity_name[cfg->granularity], "symmetric", cfg->symmetric,
                          "simulate_during_reconstruction", simulate);
    if (o && cfg->granularity == ENG_AQ_PER_TENSOR) {
        json_object_set_new(o, "calibrate", json_string(lrq_act_calibrate_name[cfg->calibrate]));
        if (cfg->calibrate == ENG_AQ_CAL_PERCENTILE) json_object_set_new(o, "percentile", json_real(cfg->percentile));
    }
    return o;
}

int wk_act_write(wk_job_t *job, lrq_err_t *err)
{
    wk_act_t *a = job->aq;
    if (!a) return 0;
    const lrq_spec_t *s = &job->spec;
    const int L = a->q.L;
    json_t *doc = json_pack("{s:s, s:i, s:o, s:s, s:s}", "format", "lrq-activation", "version", ACT_FORMAT_VERSION,
                            "settings", act__settings(&a->q.cfg, s->act.simulate), "quantizer",
                            "x_hat = s * (clamp(rint(x / s) + z, 0, 2^bits - 1) - z)", "kv",
                            "k_proj and v_proj outputs, K before RoPE");
    if (!doc) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    json_object_set_new(doc, "smooth", a->smoothed ? json_pack("{s:f, s:b, s:s}", "alpha", s->smooth.alpha, "pow2",
                                                               s->smooth.pow2, "folded_into",
                                                               "input_layernorm, post_attention_layernorm, q/k/v/gate/up columns")
                                                   : json_null());
    if (a->calib_windows)
        json_object_set_new(doc, "calibration", json_pack("{s:i, s:i, s:s}", "windows", a->calib_windows, "seq_len",
                                                          a->calib_seq_len, "model",
                                                          a->smoothed ? "fp, after smoothing" : "fp"));
    if (a->on && a->q.cfg.granularity == ENG_AQ_PER_TENSOR) {
        json_t *layers = json_array();
        for (int l = 0; l < L; l++) {
            const eng_actq_layer_t *q = &a->q.layer[l];
            json_t *in = json_object(), *out = json_object();
            for (int i = 0; i < ENG_NLIN; i++) {
                int k = eng_aq_site_of_linear(i);
                if (eng_aq_site_bits(&a->q.cfg, k) < 16)
                    json_object_set_new(in, eng_lin_hf_name[i],
                                        json_pack("{s:f, s:f}", "scale", q->scale[k], "zero_point", q->zero[k]));
            }
            for (int k = ENG_AQ_K_OUT; k <= ENG_AQ_V_OUT; k++)
                if (eng_aq_site_bits(&a->q.cfg, k) < 16)
                    json_object_set_new(out, eng_lin_hf_name[k == ENG_AQ_K_OUT ? ENG_K : ENG_V],
                                        json_pack("{s:f, s:f}", "scale", q->scale[k], "zero_point", q->zero[k]));
            json_array_append_new(layers, json_pack("{s:o, s:o}", "input", in, "output", out));
        }
        json_object_set_new(doc, "layers", layers);
    }
    char path[4300], dir[4200];
    snprintf(dir, sizeof dir, "%s/artifacts", job->workdir);
    snprintf(path, sizeof path, "%s/activation.json", dir);
    char *txt = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(9)); /* 9 digits: floats round-trip */
    json_t *m = json_pack("{s:o, s:O, s:s}", "settings", act__settings(&a->q.cfg, s->act.simulate), "smooth",
                          json_object_get(doc, "smooth"), "artifact", "activation.json");
    json_decref(doc);
    if (!txt || !m) {
        free(txt);
        json_decref(m);
        return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    }
    json_object_set_new(job->metrics, "activation", m);
    int rc = lrq_mkdirs(dir, err);
    if (!rc) rc = lrq_write_atomic(path, txt, strlen(txt), err);
    free(txt);
    return rc;
}

static int act__num(const json_t *o, const char *key, double *v)
{
    json_t *x = json_object_get(o, key);
    if (!json_is_number(x)) return -1;
    *v = json_number_value(x);
    return isfinite(*v) ? 0 : -1;
}

int wk_act_load(const char *path, const eng_model_t *m, eng_actq_t *q, lrq_err_t *err)
{
    json_error_t je;
    memset(q, 0, sizeof *q);
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!doc) return lrq_errf(err, LRQ_EFORMAT, "%s: line %d: %s", path, je.line, je.text);
    int rc = 0;
    json_t *st = json_object_get(doc, "settings"), *layers = json_object_get(doc, "layers");
    json_t *fmt = json_object_get(doc, "format"), *ver = json_object_get(doc, "version");
    eng_aqcfg_t cfg = {.percentile = 99.99};
    json_t *b = json_object_get(st, "bits"), *kb = json_object_get(st, "kv_bits"), *g = json_object_get(st, "granularity");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "lrq-activation") || !json_is_integer(ver) ||
        json_integer_value(ver) != ACT_FORMAT_VERSION || !json_is_object(st)) {
        rc = lrq_errf(err, LRQ_EFORMAT, "%s: not an lrq activation file of version %d", path, ACT_FORMAT_VERSION);
        goto out;
    }
    if (!json_is_integer(b) || !json_is_integer(kb) || !json_is_string(g)) {
        rc = lrq_errf(err, LRQ_EFORMAT, "%s: settings need integer bits, kv_bits and a granularity", path);
        goto out;
    }
    cfg.bits = (int)json_integer_value(b);
    cfg.kv_bits = (int)json_integer_value(kb);
    cfg.symmetric = json_is_true(json_object_get(st, "symmetric"));
    for (int k = 0; k < 2; k++) {
        int v = k ? cfg.kv_bits : cfg.bits;
        if ((v < 2 || v > 8) && v != 16) {
            rc = lrq_errf(err, LRQ_EFORMAT, "%s: settings.%s = %d, expected 2..8 or 16", path, k ? "kv_bits" : "bits", v);
            goto out;
        }
    }
    if (!strcmp(json_string_value(g), "per_token")) cfg.granularity = ENG_AQ_PER_TOKEN;
    else if (!strcmp(json_string_value(g), "per_tensor")) cfg.granularity = ENG_AQ_PER_TENSOR;
    else {
        rc = lrq_errf(err, LRQ_EFORMAT, "%s: settings.granularity \"%.32s\" is not per_token or per_tensor", path,
                      json_string_value(g));
        goto out;
    }
    const int L = m->cfg.n_layers;
    if ((rc = eng_actq_init(q, &cfg, L, err))) goto out;
    if (cfg.granularity == ENG_AQ_PER_TOKEN) goto out;
    if (!json_is_array(layers) || (int)json_array_size(layers) != L) {
        rc = lrq_errf(err, LRQ_EFORMAT, "%s: per_tensor needs \"layers\" with %d entries (the model's layers)", path, L);
        goto out;
    }
    for (int l = 0; l < L && !rc; l++) {
        json_t *ly = json_array_get(layers, l);
        int seen[ENG_AQ_NSITE] = {0};
        for (int i = 0; i < ENG_NLIN + 2 && !rc; i++) {
            int k = i < ENG_NLIN ? eng_aq_site_of_linear(i) : (i == ENG_NLIN ? ENG_AQ_K_OUT : ENG_AQ_V_OUT);
            int bits = eng_aq_site_bits(&cfg, k);
            if (bits >= 16) continue;
            const char *name = eng_lin_hf_name[i < ENG_NLIN ? i : (i == ENG_NLIN ? ENG_K : ENG_V)];
            json_t *e = json_object_get(json_object_get(ly, i < ENG_NLIN ? "input" : "output"), name);
            double sc, zp;
            if (act__num(e, "scale", &sc) || act__num(e, "zero_point", &zp) || !(sc > 0) || zp != rint(zp) || zp < 0 ||
                zp > (1 << bits) - 1) {
                rc = lrq_errf(err, LRQ_EFORMAT, "%s: layers[%d].%s.%s needs a scale > 0 and an integer zero_point in "
                              "0..%d", path, l, i < ENG_NLIN ? "input" : "output", name, (1 << bits) - 1);
                break;
            }
            if (seen[k] && (q->layer[l].scale[k] != (float)sc || q->layer[l].zero[k] != (float)zp)) {
                rc = lrq_errf(err, LRQ_EUNSUPP, "%s: layers[%d].input.%s differs from the other linears reading the same "
                              "tensor (%s); lrq has one range per tensor", path, l, name, eng_aq_site_name[k]);
                break;
            }
            seen[k] = 1;
            q->layer[l].scale[k] = (float)sc;
            q->layer[l].zero[k] = (float)zp;
        }
    }
out:
    if (rc) eng_actq_close(q);
    json_decref(doc);
    return rc;
}

void wk_act_close(wk_job_t *job)
{
    wk_act_t *a = job->aq;
    if (!a) return;
    if (a->orig) job->model = a->orig;
    eng_smooth_close(&a->sm);
    eng_actq_close(&a->q);
    free(a);
    job->aq = NULL;
}
