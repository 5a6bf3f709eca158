/* lrq_spec.c — job spec parsing and validation (see lrq_spec.h). */
#include "lrq_spec.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const lrq_method_name[] = {"rtn", "lrq", "flexround", "gptq", "lqer", "odlri", NULL};
const char *const lrq_lqer_base_name[] = {"rtn", "gptq", "lrq", "flexround", NULL};
const char *const lrq_odlri_init_name[] = {"zero", "lr_first", "odlri", NULL};
const char *const lrq_lqer_svd_name[] = {"auto", "exact", "randomized", NULL};
const char *const lrq_rank_policy_name[] = {"ratio", "fixed", "paper", NULL};
const char *const lrq_precision_name[] = {"fp32", "bf16", NULL};
const char *const lrq_backend_name[] = {"openblas", "onednn", NULL};
const char *const lrq_act_granularity_name[] = {"per_token", "per_tensor", NULL};
const char *const lrq_act_calibrate_name[] = {"minmax", "percentile", "mse", NULL};
const char *const lrq_gguf_type_name[] = {"auto", "q4_0", "q4_1", "q8_0", "f16", "f32", NULL};

/* A key table per object: unknown keys are an error, so users learn about typos. */
static int check_keys(const json_t *obj, const char *prefix, const char *const *allowed, lrq_err_t *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        int ok = 0;
        for (int i = 0; allowed[i]; i++)
            if (!strcmp(key, allowed[i])) { ok = 1; break; }
        if (!ok) {
            char f[160];
            snprintf(f, sizeof f, "%s%s", prefix, key);
            return lrq_err_field(err, f, "unknown field");
        }
    }
    return 0;
}

static int get_str(const json_t *obj, const char *key, const char *field, int required, char **out, lrq_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required) return lrq_err_field(err, field, "is required");
        *out = NULL;
        return 0;
    }
    if (!json_is_string(v)) return lrq_err_field(err, field, "must be a string");
    const char *s = json_string_value(v);
    if (!*s) return lrq_err_field(err, field, "must not be empty");
    if (strlen(s) > 4096) return lrq_err_field(err, field, "is longer than 4096 bytes");
    if (!(*out = strdup(s))) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    return 0;
}

static int get_int(const json_t *obj, const char *key, const char *field, long lo, long hi, long *out, lrq_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0; /* keep default */
    if (!json_is_integer(v))
        return lrq_err_field(err, field, "must be an integer in %ld..%ld", lo, hi);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) return lrq_err_field(err, field, "must be in %ld..%ld (got %lld)", lo, hi, (long long)x);
    *out = (long)x;
    return 0;
}

static int get_num(const json_t *obj, const char *key, const char *field, double lo, double hi, int lo_open,
                   double *out, lrq_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_number(v)) return lrq_err_field(err, field, "must be a number");
    double x = json_number_value(v);
    if (!isfinite(x) || x > hi || (lo_open ? x <= lo : x < lo))
        return lrq_err_field(err, field, "must be in %s%g, %g] (got %g)", lo_open ? "(" : "[", lo, hi, x);
    *out = x;
    return 0;
}

static int get_bool(const json_t *obj, const char *key, const char *field, int *out, lrq_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_boolean(v)) return lrq_err_field(err, field, "must be true or false");
    *out = json_is_true(v);
    return 0;
}

static int get_enum(const json_t *obj, const char *key, const char *field, const char *const *names, int *out,
                    lrq_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    char opts[256] = "";
    for (int i = 0; names[i]; i++) {
        strncat(opts, i ? ", " : "", sizeof opts - strlen(opts) - 1);
        strncat(opts, names[i], sizeof opts - strlen(opts) - 1);
    }
    if (!json_is_string(v)) return lrq_err_field(err, field, "must be one of: %s", opts);
    for (int i = 0; names[i]; i++)
        if (!strcmp(json_string_value(v), names[i])) { *out = i; return 0; }
    return lrq_err_field(err, field, "must be one of: %s (got \"%.64s\")", opts, json_string_value(v));
}

static int get_obj(const json_t *j, const char *key, const json_t **out, lrq_err_t *err)
{
    json_t *v = json_object_get(j, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_object(v)) return lrq_err_field(err, key, "must be an object");
    *out = v;
    return 0;
}

/* "export": ["hf" | "gptq" | "gguf" | "compressed-tensors", …] and "gguf": {"type": …}
 * (docs/formats.md, Artifacts). */
static int spec__export(const json_t *j, lrq_spec_t *s, lrq_err_t *err)
{
    static const char *const gkeys[] = {"type", NULL};
    json_t *ex = json_object_get(j, "export");
    if (ex) {
        if (!json_is_array(ex))
            return lrq_err_field(err, "export", "must be an array of \"hf\", \"gptq\", \"gguf\", \"compressed-tensors\"");
        s->export_hf = s->export_gptq = 0;
        size_t i;
        json_t *it;
        json_array_foreach(ex, i, it) {
            const char *v = json_is_string(it) ? json_string_value(it) : NULL;
            char f[32];
            snprintf(f, sizeof f, "export[%zu]", i);
            if (v && !strcmp(v, "hf")) s->export_hf = 1;
            else if (v && !strcmp(v, "gptq")) s->export_gptq = 1;
            else if (v && !strcmp(v, "gguf")) s->export_gguf = 1;
            else if (v && !strcmp(v, "compressed-tensors")) s->export_ct = 1;
            else return lrq_err_field(err, f, "must be \"hf\", \"gptq\", \"gguf\" or \"compressed-tensors\"");
            if (v && strcmp(v, "hf") && lrq_spec_factored(s))
                return lrq_err_field(err, f, "method %s adds low-rank factors, which %s cannot hold; export \"hf\" "
                                     "(dense weights with the factors merged)", lrq_method_name[s->method], v);
        }
    }
    json_t *g = json_object_get(j, "gguf");
    if (g && !json_is_null(g)) {
        if (!json_is_object(g)) return lrq_err_field(err, "gguf", "must be an object");
        if (!s->export_gguf) return lrq_err_field(err, "gguf", "applies only when \"export\" includes \"gguf\"");
        int rc = check_keys(g, "gguf.", gkeys, err);
        if (!rc) rc = get_enum(g, "type", "gguf.type", lrq_gguf_type_name, &s->gguf_type, err);
        if (rc) return rc;
    }
    return 0;
}

int lrq_spec_uses_recon(const lrq_spec_t *s)
{
    return s->method == LRQ_M_LRQ || s->method == LRQ_M_FLEXROUND ||
           (s->method == LRQ_M_LQER && (s->lqer.base == LRQ_BASE_LRQ || s->lqer.base == LRQ_BASE_FLEXROUND));
}

int lrq_spec_factored(const lrq_spec_t *s) { return s->method == LRQ_M_LQER || s->method == LRQ_M_ODLRI; }

int lrq_spec_rank(const lrq_spec_t *s)
{
    return s->method == LRQ_M_LQER ? s->lqer.rank : s->method == LRQ_M_ODLRI ? s->odlri.rank : 0;
}

int lrq_spec_factor_bits(const lrq_spec_t *s)
{
    return s->method == LRQ_M_LQER ? s->lqer.factor_bits : s->method == LRQ_M_ODLRI ? s->odlri.factor_bits : 0;
}

static int spec__factor_bits(const json_t *o, const char *field, int *out, lrq_err_t *err)
{
    long x = *out;
    json_t *v = json_object_get(o, "factor_bits");
    if (!v) return 0;
    if (!json_is_integer(v) || ((x = (long)json_integer_value(v)) != 8 && x != 16))
        return lrq_err_field(err, field, "must be 16 (fp16 factors) or 8 (int8 per row with an fp16 scale)");
    *out = (int)x;
    return 0;
}

/* "gptq", "lqer", "odlri" (issue 10; docs/algorithms.md GPTQ, LQER and L²QER, ODLRI). Runs after every
 * other key, so it also refuses exports that cannot hold factors. */
static int spec__methods(const json_t *j, lrq_spec_t *s, lrq_err_t *err)
{
    static const char *const gk[] = {"damp", "block_size", "act_order", "static_groups", NULL};
    static const char *const lk[] = {"rank", "scaled", "factor_bits", "base", "svd", NULL};
    static const char *const ok[] = {"rank", "outliers", "init", "iterations", "factor_bits", NULL};
    const json_t *g, *l, *o;
    long x;
    int rc;
    s->gptq = (lrq_gptq_spec_t){.damp = 0.01, .block_size = 128};
    s->lqer = (lrq_lqer_spec_t){.rank = 32, .scaled = 1, .factor_bits = 16, .base = LRQ_BASE_RTN};
    s->odlri = (lrq_odlri_spec_t){.rank = 16, .outliers = 16, .init = LRQ_ODLRI_OUTLIER, .iterations = 15, .factor_bits = 16};
    if ((rc = get_obj(j, "lqer", &l, err)) || (rc = get_obj(j, "gptq", &g, err)) || (rc = get_obj(j, "odlri", &o, err)))
        return rc;
    if (l) {
        if (s->method != LRQ_M_LQER) return lrq_err_field(err, "lqer", "applies only to method lqer");
        if ((rc = check_keys(l, "lqer.", lk, err))) return rc;
        x = s->lqer.rank; if ((rc = get_int(l, "rank", "lqer.rank", 1, 65536, &x, err))) return rc; s->lqer.rank = (int)x;
        if ((rc = get_bool(l, "scaled", "lqer.scaled", &s->lqer.scaled, err))) return rc;
        if ((rc = spec__factor_bits(l, "lqer.factor_bits", &s->lqer.factor_bits, err))) return rc;
        if ((rc = get_enum(l, "base", "lqer.base", lrq_lqer_base_name, &s->lqer.base, err))) return rc;
        if ((rc = get_enum(l, "svd", "lqer.svd", lrq_lqer_svd_name, &s->lqer.svd, err))) return rc;
    }
    if (o) {
        if (s->method != LRQ_M_ODLRI) return lrq_err_field(err, "odlri", "applies only to method odlri");
        if ((rc = check_keys(o, "odlri.", ok, err))) return rc;
        x = s->odlri.rank; if ((rc = get_int(o, "rank", "odlri.rank", 1, 65536, &x, err))) return rc; s->odlri.rank = (int)x;
        x = s->odlri.outliers; if ((rc = get_int(o, "outliers", "odlri.outliers", 0, 65536, &x, err))) return rc;
        s->odlri.outliers = (int)x;
        if ((rc = get_enum(o, "init", "odlri.init", lrq_odlri_init_name, &s->odlri.init, err))) return rc;
        x = s->odlri.iterations; if ((rc = get_int(o, "iterations", "odlri.iterations", 1, 1000, &x, err))) return rc;
        s->odlri.iterations = (int)x;
        if ((rc = spec__factor_bits(o, "odlri.factor_bits", &s->odlri.factor_bits, err))) return rc;
        if (s->odlri.init == LRQ_ODLRI_OUTLIER && s->odlri.outliers < 1)
            return lrq_err_field(err, "odlri.outliers", "must be >= 1 with init \"odlri\"");
    }
    int uses_gptq = s->method == LRQ_M_GPTQ || s->method == LRQ_M_ODLRI ||
                    (s->method == LRQ_M_LQER && s->lqer.base == LRQ_BASE_GPTQ);
    if (g) {
        if (!uses_gptq) return lrq_err_field(err, "gptq", "applies only to methods gptq, odlri and lqer with base gptq");
        if ((rc = check_keys(g, "gptq.", gk, err))) return rc;
        if ((rc = get_num(g, "damp", "gptq.damp", 0, 1, 0, &s->gptq.damp, err))) return rc;
        x = s->gptq.block_size; if ((rc = get_int(g, "block_size", "gptq.block_size", 1, 65536, &x, err))) return rc;
        if (x & (x - 1)) return lrq_err_field(err, "gptq.block_size", "must be a power of two (got %ld)", x);
        s->gptq.block_size = (int)x;
        if ((rc = get_bool(g, "act_order", "gptq.act_order", &s->gptq.act_order, err))) return rc;
        if ((rc = get_bool(g, "static_groups", "gptq.static_groups", &s->gptq.static_groups, err))) return rc;
        if (s->gptq.act_order && s->group_size && !s->gptq.static_groups)
            return lrq_err_field(err, "gptq.act_order", "with weight.group_size needs gptq.static_groups: true "
                                 "(a group's columns are stored contiguously, so its scale must not depend on the order)");
    }
    if (json_object_get(j, "lrq") && s->method == LRQ_M_LQER && !lrq_spec_uses_recon(s))
        return lrq_err_field(err, "lrq", "applies only to lqer with base lrq or flexround");
    if (s->calib_path && s->method == LRQ_M_LQER && lrq_spec_uses_recon(s) && s->batch_size > s->calib_samples)
        return lrq_err_field(err, "lrq.batch_size", "must not exceed calibration.samples (%d)", s->calib_samples);
    /* exports that cannot hold factors are refused by spec__export, naming the entry */
    return 0;
}

/* "activation" and "smooth" (issue 11); defaults are set whether or not the objects are present. */
static int spec__activation(const json_t *j, lrq_spec_t *s, lrq_err_t *err)
{
    static const char *const akeys[] = {"bits", "granularity", "kv_bits", "symmetric", "calibrate", "percentile",
                                        "simulate_during_reconstruction", NULL};
    static const char *const skeys[] = {"alpha", "pow2", NULL};
    lrq_spec_act_t *a = &s->act;
    a->bits = a->kv_bits = 16;
    a->percentile = 99.99;
    s->smooth.alpha = 0.8;
    const json_t *o, *sm;
    long x;
    int rc;
    if ((rc = get_obj(j, "activation", &o, err))) return rc;
    if (o) {
        if ((rc = check_keys(o, "activation.", akeys, err))) return rc;
        const char *bf[2] = {"bits", "kv_bits"};
        for (int k = 0; k < 2; k++) {
            char f[32];
            snprintf(f, sizeof f, "activation.%s", bf[k]);
            x = 16;
            if ((rc = get_int(o, bf[k], f, 2, 16, &x, err))) return rc;
            if (x > 8 && x != 16) return lrq_err_field(err, f, "must be 2..8, or 16 (not quantized) (got %ld)", x);
            *(k ? &a->kv_bits : &a->bits) = (int)x;
        }
        if ((rc = get_enum(o, "granularity", "activation.granularity", lrq_act_granularity_name, &a->granularity, err)) ||
            (rc = get_bool(o, "symmetric", "activation.symmetric", &a->symmetric, err)) ||
            (rc = get_enum(o, "calibrate", "activation.calibrate", lrq_act_calibrate_name, &a->calibrate, err)) ||
            (rc = get_num(o, "percentile", "activation.percentile", 50, 100, 1, &a->percentile, err)) ||
            (rc = get_bool(o, "simulate_during_reconstruction", "activation.simulate_during_reconstruction",
                           &a->simulate, err)))
            return rc;
        if (json_object_get(o, "calibrate") && a->granularity != 1)
            return lrq_err_field(err, "activation.calibrate", "applies only to granularity \"per_tensor\" "
                                 "(per-token ranges are computed at run time)");
        if (json_object_get(o, "percentile") && a->calibrate != 1)
            return lrq_err_field(err, "activation.percentile", "applies only to calibrate \"percentile\"");
        if (a->simulate && !lrq_spec_uses_recon(s))
            return lrq_err_field(err, "activation.simulate_during_reconstruction",
                                 "applies only to methods lrq and flexround (and lqer on those bases)");
        if (a->granularity == 1 && (a->bits < 16 || a->kv_bits < 16) && !json_object_get(j, "calibration"))
            return lrq_err_field(err, "calibration", "is required for activation.granularity \"per_tensor\" "
                                 "(static ranges are calibrated on it)");
    }
    if ((rc = get_obj(j, "smooth", &sm, err))) return rc;
    if (sm) {
        if ((rc = check_keys(sm, "smooth.", skeys, err))) return rc;
        s->smooth.on = 1;
        if ((rc = get_num(sm, "alpha", "smooth.alpha", 0, 1, 0, &s->smooth.alpha, err)) ||
            (rc = get_bool(sm, "pow2", "smooth.pow2", &s->smooth.pow2, err)))
            return rc;
        if (!json_object_get(j, "calibration"))
            return lrq_err_field(err, "calibration", "is required for smooth (activation maxima are measured on it)");
    }
    return 0;
}

/* "compute": {"precision": "fp32" | "bf16", "backend": "openblas" | "onednn"}. Whether the
 * backend exists in this build is the worker's question (eng_mm_new), not the spec's. */
static int spec__compute(const json_t *j, lrq_spec_t *s, lrq_err_t *err)
{
    static const char *const keys[] = {"precision", "backend", NULL};
    const json_t *o;
    int rc;
    if ((rc = get_obj(j, "compute", &o, err)) || !o) return rc;
    if ((rc = check_keys(o, "compute.", keys, err))) return rc;
    if ((rc = get_enum(o, "precision", "compute.precision", lrq_precision_name, &s->compute.precision, err))) return rc;
    return get_enum(o, "backend", "compute.backend", lrq_backend_name, &s->compute.backend, err);
}

#define TRY(x) do { int rc_ = (x); if (rc_) { lrq_spec_close(s); return rc_; } } while (0)

const char *const lrq_pipeline_name[] = {"sequential", "parallel", NULL};

/* "pipeline": how the quantized blocks get their inputs (lrq_spec.h, enum lrq_pipeline). */
static int spec__pipeline(const json_t *j, lrq_spec_t *s, lrq_err_t *err)
{
    s->pipeline = LRQ_PIPE_SEQUENTIAL;
    const json_t *v = json_object_get(j, "pipeline");
    if (!v) return 0;
    int rc = get_enum(j, "pipeline", "pipeline", lrq_pipeline_name, &s->pipeline, err);
    if (!rc && s->pipeline == LRQ_PIPE_PARALLEL && s->method == LRQ_M_RTN)
        rc = lrq_err_field(err, "pipeline", "applies only to methods that reconstruct blocks (lrq, flexround)");
    return rc;
}

/* "tasks": the parallel pipeline's blocks as separate worker tasks (docs/daemon.md). */
static int spec__tasks(const json_t *j, lrq_spec_t *s, lrq_err_t *err)
{
    long x = 1;
    int rc = get_int(j, "tasks", "tasks", 1, 256, &x, err);
    if (rc) return rc;
    s->tasks = (int)x;
    if (s->tasks > 1 && s->pipeline != LRQ_PIPE_PARALLEL)
        return lrq_err_field(err, "tasks", "needs \"pipeline\": \"parallel\" (sequential blocks depend on each other)");
    if (s->tasks > 1 && s->method != LRQ_M_LRQ && s->method != LRQ_M_FLEXROUND)
        return lrq_err_field(err, "tasks", "applies only to lrq and flexround");
    return 0;
}

int lrq_spec_parse(const json_t *j, lrq_spec_t *s, lrq_err_t *err)
{
    static const char *const top[] = {"model", "tokenizer", "method", "weight", "calibration", "eval", "lrq",
                                      "export", "seed", "threads", "name", "priority", "max_attempts",
                                      "pipeline", "tasks", "gguf", "gptq", "lqer", "odlri", "activation", "smooth", "compute", NULL};
    static const char *const wkeys[] = {"bits", "group_size", "symmetric", "init", NULL};
    static const char *const ckeys[] = {"path", "samples", "seq_len", NULL};
    static const char *const ekeys[] = {"path", "seq_len", "max_windows", NULL};
    static const char *const lkeys[] = {"iterations", "lr", "batch_size", "rank_policy", "rank", "rank_ratio",
                                        "checkpoint_every_s", NULL};
    static const char *const inits[] = {"minmax", "mse", NULL};

    memset(s, 0, sizeof *s);
    s->bits = 4; s->init_mse = 1;
    s->calib_samples = 128; s->calib_seq_len = 256;
    s->eval_seq_len = 256;
    s->iterations = 5000; s->lr = 5e-4; s->batch_size = 2; s->rank_ratio = 0.25; s->checkpoint_every_s = 60;
    s->export_hf = 1; s->max_attempts = 3;
    long x;
    if (!json_is_object(j)) return lrq_err_field(err, "", "the job spec must be a JSON object");
    TRY(check_keys(j, "", top, err));
    TRY(get_str(j, "model", "model", 1, &s->model, err));
    TRY(get_str(j, "tokenizer", "tokenizer", 0, &s->tokenizer, err));
    if (!json_object_get(j, "method")) TRY(lrq_err_field(err, "method", "is required (rtn, lrq, flexround, gptq, lqer or odlri)"));
    TRY(get_enum(j, "method", "method", lrq_method_name, &s->method, err));

    const json_t *w, *c, *e, *l;
    TRY(get_obj(j, "weight", &w, err));
    if (w) {
        TRY(check_keys(w, "weight.", wkeys, err));
        x = s->bits; TRY(get_int(w, "bits", "weight.bits", 2, 8, &x, err)); s->bits = (int)x;
        x = 0; TRY(get_int(w, "group_size", "weight.group_size", 0, 65536, &x, err));
        if (x != 0 && (x < 16 || (x & (x - 1))))
            TRY(lrq_err_field(err, "weight.group_size", "must be 0 (per-channel) or a power of two >= 16 (got %ld)", x));
        s->group_size = (int)x;
        TRY(get_bool(w, "symmetric", "weight.symmetric", &s->symmetric, err));
        TRY(get_enum(w, "init", "weight.init", inits, &s->init_mse, err));
    }
    TRY(get_obj(j, "calibration", &c, err));
    if (c) {
        TRY(check_keys(c, "calibration.", ckeys, err));
        TRY(get_str(c, "path", "calibration.path", 1, &s->calib_path, err));
        x = s->calib_samples; TRY(get_int(c, "samples", "calibration.samples", 1, 100000, &x, err));
        s->calib_samples = (int)x;
        x = s->calib_seq_len; TRY(get_int(c, "seq_len", "calibration.seq_len", 8, 32768, &x, err));
        s->calib_seq_len = (int)x;
    } else if (s->method != LRQ_M_RTN) {
        TRY(lrq_err_field(err, "calibration", "is required for method %s", lrq_method_name[s->method]));
    }
    TRY(get_obj(j, "eval", &e, err));
    if (e) {
        TRY(check_keys(e, "eval.", ekeys, err));
        TRY(get_str(e, "path", "eval.path", 1, &s->eval_path, err));
        x = s->eval_seq_len; TRY(get_int(e, "seq_len", "eval.seq_len", 8, 32768, &x, err)); s->eval_seq_len = (int)x;
        x = 0; TRY(get_int(e, "max_windows", "eval.max_windows", 0, 10000000, &x, err)); s->eval_max_windows = (int)x;
    }
    TRY(get_obj(j, "lrq", &l, err));
    if (l) {
        if (s->method == LRQ_M_RTN || s->method == LRQ_M_GPTQ || s->method == LRQ_M_ODLRI)
            TRY(lrq_err_field(err, "lrq", "applies only to methods lrq and flexround (and lqer with base lrq or flexround)"));
        TRY(check_keys(l, "lrq.", lkeys, err));
        x = s->iterations; TRY(get_int(l, "iterations", "lrq.iterations", 1, 1000000, &x, err)); s->iterations = x;
        TRY(get_num(l, "lr", "lrq.lr", 0, 1, 1, &s->lr, err));
        x = s->batch_size; TRY(get_int(l, "batch_size", "lrq.batch_size", 1, 4096, &x, err)); s->batch_size = (int)x;
        TRY(get_enum(l, "rank_policy", "lrq.rank_policy", lrq_rank_policy_name, &s->rank_policy, err));
        x = 0; TRY(get_int(l, "rank", "lrq.rank", 0, 65536, &x, err)); s->rank = (int)x;
        if (s->rank_policy == 1 && s->rank < 1) TRY(lrq_err_field(err, "lrq.rank", "must be >= 1 when rank_policy is \"fixed\""));
        TRY(get_num(l, "rank_ratio", "lrq.rank_ratio", 0, 1, 1, &s->rank_ratio, err));
        TRY(get_num(l, "checkpoint_every_s", "lrq.checkpoint_every_s", 0, 86400, 0, &s->checkpoint_every_s, err));
    }
    if (s->calib_path && (s->method == LRQ_M_LRQ || s->method == LRQ_M_FLEXROUND) && s->batch_size > s->calib_samples)
        TRY(lrq_err_field(err, "lrq.batch_size", "must not exceed calibration.samples (%d)", s->calib_samples));
    TRY(spec__export(j, s, err));
    json_t *sd = json_object_get(j, "seed");
    if (sd) {
        if (!json_is_integer(sd) || json_integer_value(sd) < 0)
            TRY(lrq_err_field(err, "seed", "must be a non-negative integer"));
        s->seed = (uint64_t)json_integer_value(sd);
    }
    x = 0; TRY(get_int(j, "threads", "threads", 0, 1024, &x, err)); s->threads = (int)x;
    TRY(spec__compute(j, s, err));
    TRY(get_str(j, "name", "name", 0, &s->name, err));
    if (s->name && strlen(s->name) > 200) TRY(lrq_err_field(err, "name", "is longer than 200 bytes"));
    x = 0; TRY(get_int(j, "priority", "priority", -100, 100, &x, err)); s->priority = (int)x;
    x = s->max_attempts; TRY(get_int(j, "max_attempts", "max_attempts", 1, 100, &x, err)); s->max_attempts = (int)x;
    TRY(spec__pipeline(j, s, err));
    TRY(spec__tasks(j, s, err));
    TRY(spec__methods(j, s, err));
    TRY(spec__activation(j, s, err)); /* after methods: lrq_spec_uses_recon needs lqer.base */
    return 0;
}

int lrq_spec_load_file(const char *path, lrq_spec_t *s, json_t **json_out, lrq_err_t *err)
{
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    memset(s, 0, sizeof *s);
    if (!j) return lrq_errf(err, LRQ_EFORMAT, "%s: line %d column %d: %s", path, je.line, je.column, je.text);
    int rc = lrq_spec_parse(j, s, err);
    if (rc || !json_out) json_decref(j);
    else *json_out = j;
    return rc;
}

void lrq_spec_close(lrq_spec_t *s)
{
    free(s->model); free(s->tokenizer); free(s->calib_path); free(s->eval_path); free(s->name);
    s->model = s->tokenizer = s->calib_path = s->eval_path = s->name = NULL;
}

int lrq_spec_paths(const lrq_spec_t *s, const char *fields[4], const char *values[4])
{
    int n = 0;
    if (s->model) { fields[n] = "model"; values[n++] = s->model; }
    if (s->tokenizer) { fields[n] = "tokenizer"; values[n++] = s->tokenizer; }
    if (s->calib_path) { fields[n] = "calibration.path"; values[n++] = s->calib_path; }
    if (s->eval_path) { fields[n] = "eval.path"; values[n++] = s->eval_path; }
    return n;
}
