/* Job spec validation: every bad value names its field. */
#include <criterion/criterion.h>
#include <string.h>
#include "lrq_spec.h"

static int parse(const char *txt, lrq_spec_t *s, lrq_err_t *e)
{
    json_error_t je;
    json_t *j = json_loads(txt, 0, &je);
    cr_assert(j, "test JSON must parse: %s", je.text);
    int rc = lrq_spec_parse(j, s, e);
    json_decref(j);
    return rc;
}

static void expect_field(const char *txt, const char *field, const char *msg_part)
{
    lrq_spec_t s;
    lrq_err_t e = {0};
    int rc = parse(txt, &s, &e);
    cr_assert_eq(rc, LRQ_ESPEC, "expected a spec error for %s", txt);
    cr_assert_str_eq(e.field, field, "field for %s: got '%s' (%s)", txt, e.field, e.msg);
    cr_assert(strstr(e.msg, msg_part), "message for %s: '%s' lacks '%s'", txt, e.msg, msg_part);
}

Test(spec, defaults_and_full)
{
    lrq_spec_t s;
    lrq_err_t e = {0};
    cr_assert_eq(parse("{\"model\":\"m\",\"method\":\"rtn\"}", &s, &e), 0, "%s", e.msg);
    cr_assert_eq(s.bits, 4);
    cr_assert_eq(s.group_size, 0);
    cr_assert_eq(s.init_mse, 1);
    cr_assert_eq(s.export_hf, 1);
    cr_assert_eq(s.export_gptq, 0);
    cr_assert_null(s.eval_path);
    lrq_spec_close(&s);
    const char *full = "{\"model\":\"m\",\"tokenizer\":\"t\",\"method\":\"lrq\","
                       "\"weight\":{\"bits\":3,\"group_size\":32,\"symmetric\":true,\"init\":\"minmax\"},"
                       "\"calibration\":{\"path\":\"c\",\"samples\":16,\"seq_len\":128},"
                       "\"eval\":{\"path\":\"e\",\"seq_len\":256,\"max_windows\":5},"
                       "\"lrq\":{\"iterations\":100,\"lr\":0.001,\"batch_size\":4,\"rank_policy\":\"fixed\",\"rank\":8,"
                       "\"rank_ratio\":0.5,\"checkpoint_every_s\":0.5},"
                       "\"export\":[\"gptq\"],\"seed\":7,\"threads\":2,\"priority\":5}";
    cr_assert_eq(parse(full, &s, &e), 0, "%s: %s", e.field, e.msg);
    cr_assert_eq(s.method, LRQ_M_LRQ);
    cr_assert_eq(s.bits, 3);
    cr_assert_eq(s.group_size, 32);
    cr_assert_eq(s.symmetric, 1);
    cr_assert_eq(s.init_mse, 0);
    cr_assert_eq(s.calib_samples, 16);
    cr_assert_eq(s.iterations, 100);
    cr_assert_eq(s.rank_policy, 1);
    cr_assert_eq(s.rank, 8);
    cr_assert_eq(s.export_hf, 0);
    cr_assert_eq(s.export_gptq, 1);
    cr_assert_eq(s.seed, 7);
    cr_assert_eq(s.eval_max_windows, 5);
    const char *f[4], *v[4];
    cr_assert_eq(lrq_spec_paths(&s, f, v), 4);
    cr_assert_str_eq(f[2], "calibration.path");
    lrq_spec_close(&s);
}

Test(spec, bad_values_name_their_field)
{
    expect_field("[]", "", "JSON object");
    expect_field("{\"method\":\"rtn\"}", "model", "required");
    expect_field("{\"model\":\"m\"}", "method", "required");
    expect_field("{\"model\":\"m\",\"method\":\"gptq9\"}", "method", "one of");
    expect_field("{\"model\":5,\"method\":\"rtn\"}", "model", "string");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"colour\":1}", "colour", "unknown field");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"weight\":{\"bits\":9}}", "weight.bits", "2..8");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"weight\":{\"bits\":\"4\"}}", "weight.bits", "integer");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"weight\":{\"group_size\":48}}", "weight.group_size", "power of two");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"weight\":{\"bitz\":4}}", "weight.bitz", "unknown field");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"weight\":{\"init\":\"best\"}}", "weight.init", "minmax, mse");
    expect_field("{\"model\":\"m\",\"method\":\"lrq\"}", "calibration", "required");
    expect_field("{\"model\":\"m\",\"method\":\"lrq\",\"calibration\":{\"path\":\"c\",\"samples\":0}}",
                 "calibration.samples", "1..100000");
    expect_field("{\"model\":\"m\",\"method\":\"lrq\",\"calibration\":{\"path\":\"c\"},\"lrq\":{\"lr\":-1}}",
                 "lrq.lr", "(0, 1]");
    expect_field("{\"model\":\"m\",\"method\":\"lrq\",\"calibration\":{\"path\":\"c\"},\"lrq\":{\"rank_policy\":\"fixed\"}}",
                 "lrq.rank", ">= 1");
    expect_field("{\"model\":\"m\",\"method\":\"lrq\",\"calibration\":{\"path\":\"c\",\"samples\":2},\"lrq\":{\"batch_size\":4}}",
                 "lrq.batch_size", "must not exceed");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"lrq\":{}}", "lrq", "only to methods");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"export\":[\"onnx\"]}", "export[0]", "hf");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"seed\":-1}", "seed", "non-negative");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"threads\":100000}", "threads", "0..1024");
    expect_field("{\"model\":\"\",\"method\":\"rtn\"}", "model", "empty");
}

Test(spec, export_formats_and_gguf_type)
{
    lrq_spec_t s;
    lrq_err_t e = {0};
    cr_assert_eq(parse("{\"model\":\"m\",\"method\":\"rtn\",\"export\":[\"gguf\",\"compressed-tensors\",\"hf\"],"
                       "\"gguf\":{\"type\":\"q4_1\"}}", &s, &e), 0, "%s", e.msg);
    cr_assert(s.export_gguf && s.export_ct && s.export_hf && !s.export_gptq);
    cr_assert_str_eq(lrq_gguf_type_name[s.gguf_type], "q4_1");
    lrq_spec_close(&s);
    cr_assert_eq(parse("{\"model\":\"m\",\"method\":\"rtn\",\"export\":[\"gguf\"]}", &s, &e), 0);
    cr_assert_str_eq(lrq_gguf_type_name[s.gguf_type], "auto");
    lrq_spec_close(&s);
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"export\":[\"gguf\"],\"gguf\":{\"type\":\"q5_k\"}}", "gguf.type",
                 "q4_0");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"export\":[\"gguf\"],\"gguf\":{\"tpye\":\"f32\"}}", "gguf.tpye",
                 "unknown");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"gguf\":{\"type\":\"f32\"}}", "gguf", "includes \"gguf\"");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"export\":[\"hf\", \"ggml\"]}", "export[1]", "compressed-tensors");
}

/* "activation" and "smooth" (issue 11): defaults = off (today's weight-only behaviour), every bad value names its field. */
Test(spec, activation_and_smooth)
{
    lrq_spec_t s;
    lrq_err_t e = {0};
    cr_assert_eq(parse("{\"model\":\"m\",\"method\":\"rtn\"}", &s, &e), 0, "%s", e.msg);
    cr_expect_eq(s.act.bits, 16);
    cr_expect_eq(s.act.kv_bits, 16);
    cr_expect_eq(s.smooth.on, 0);
    lrq_spec_close(&s);
    const char *w4a8 = "{\"model\":\"m\",\"method\":\"lrq\",\"calibration\":{\"path\":\"c\"},"
                       "\"activation\":{\"bits\":8,\"granularity\":\"per_token\",\"kv_bits\":8,\"symmetric\":false,"
                       "\"simulate_during_reconstruction\":true}}";
    cr_assert_eq(parse(w4a8, &s, &e), 0, "%s: %s", e.field, e.msg);
    cr_expect_eq(s.act.bits, 8);
    cr_expect_eq(s.act.kv_bits, 8);
    cr_expect_eq(s.act.granularity, 0);
    cr_expect_eq(s.act.simulate, 1);
    lrq_spec_close(&s);
    const char *w8a8 = "{\"model\":\"m\",\"method\":\"rtn\",\"calibration\":{\"path\":\"c\"},"
                       "\"activation\":{\"bits\":8,\"granularity\":\"per_tensor\",\"calibrate\":\"percentile\","
                       "\"percentile\":99.9},\"smooth\":{\"alpha\":0.5,\"pow2\":true}}";
    cr_assert_eq(parse(w8a8, &s, &e), 0, "%s: %s", e.field, e.msg);
    cr_expect_eq(s.act.granularity, 1);
    cr_expect_eq(s.act.calibrate, 1);
    cr_expect_eq(s.act.percentile, 99.9);
    cr_expect_eq(s.smooth.on, 1);
    cr_expect_eq(s.smooth.alpha, 0.5);
    cr_expect_eq(s.smooth.pow2, 1);
    lrq_spec_close(&s);
    cr_assert_eq(parse("{\"model\":\"m\",\"method\":\"rtn\",\"calibration\":{\"path\":\"c\"},\"smooth\":{}}", &s, &e), 0);
    cr_expect_eq(s.smooth.alpha, 0.8, "the LRQ paper's W8A8 alpha is the default");
    lrq_spec_close(&s);

#define R "{\"model\":\"m\",\"method\":\"rtn\",\"calibration\":{\"path\":\"c\"},"
    expect_field(R "\"activation\":{\"bits\":9}}", "activation.bits", "2..8, or 16");
    expect_field(R "\"activation\":{\"bits\":1}}", "activation.bits", "2..16");
    expect_field(R "\"activation\":{\"bits\":\"8\"}}", "activation.bits", "integer");
    expect_field(R "\"activation\":{\"kv_bits\":12}}", "activation.kv_bits", "2..8, or 16");
    expect_field(R "\"activation\":{\"granularity\":\"per_channel\"}}", "activation.granularity", "per_token, per_tensor");
    expect_field(R "\"activation\":{\"symmetric\":1}}", "activation.symmetric", "true or false");
    expect_field(R "\"activation\":{\"granularity\":\"per_tensor\",\"calibrate\":\"kl\"}}", "activation.calibrate",
                 "minmax, percentile, mse");
    expect_field(R "\"activation\":{\"calibrate\":\"mse\"}}", "activation.calibrate", "per_tensor");
    expect_field(R "\"activation\":{\"granularity\":\"per_tensor\",\"calibrate\":\"percentile\",\"percentile\":40}}",
                 "activation.percentile", "(50, 100]");
    expect_field(R "\"activation\":{\"granularity\":\"per_tensor\",\"percentile\":99}}", "activation.percentile",
                 "calibrate \"percentile\"");
    expect_field(R "\"activation\":{\"simulate_during_reconstruction\":true}}",
                 "activation.simulate_during_reconstruction", "lrq and flexround");
    expect_field(R "\"activation\":{\"bitz\":8}}", "activation.bitz", "unknown field");
    expect_field(R "\"activation\":8}", "activation", "object");
    expect_field(R "\"smooth\":{\"alpha\":1.5}}", "smooth.alpha", "[0, 1]");
    expect_field(R "\"smooth\":{\"alpha\":\"0.8\"}}", "smooth.alpha", "number");
    expect_field(R "\"smooth\":{\"pow2\":\"yes\"}}", "smooth.pow2", "true or false");
    expect_field(R "\"smooth\":{\"beta\":1}}", "smooth.beta", "unknown field");
#undef R
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"activation\":{\"bits\":8,\"granularity\":\"per_tensor\"}}",
                 "calibration", "per_tensor");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"smooth\":{}}", "calibration", "smooth");
}

/* "compute" (issue 12): defaults, both values of each, and every bad value named. */
Test(spec, compute)
{
    lrq_spec_t s;
    lrq_err_t e = {0};
    cr_assert_eq(parse("{\"model\":\"m\",\"method\":\"rtn\"}", &s, &e), 0, "%s", e.msg);
    cr_assert_eq(s.compute.precision, 0);
    cr_assert_eq(s.compute.backend, 0);
    lrq_spec_close(&s);
    cr_assert_eq(parse("{\"model\":\"m\",\"method\":\"rtn\",\"compute\":{\"precision\":\"bf16\",\"backend\":\"onednn\"}}",
                       &s, &e), 0, "%s: %s", e.field, e.msg);
    cr_assert_str_eq(lrq_precision_name[s.compute.precision], "bf16");
    cr_assert_str_eq(lrq_backend_name[s.compute.backend], "onednn");
    lrq_spec_close(&s);
    cr_assert_eq(parse("{\"model\":\"m\",\"method\":\"rtn\",\"compute\":{\"precision\":\"fp32\"}}", &s, &e), 0);
    cr_assert_eq(s.compute.precision, 0);
    cr_assert_eq(s.compute.backend, 0);
    lrq_spec_close(&s);
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"compute\":\"bf16\"}", "compute", "object");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"compute\":{\"precision\":\"fp16\"}}", "compute.precision",
                 "fp32, bf16");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"compute\":{\"precision\":16}}", "compute.precision", "one of");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"compute\":{\"backend\":\"mkl\"}}", "compute.backend",
                 "openblas, onednn");
    expect_field("{\"model\":\"m\",\"method\":\"rtn\",\"compute\":{\"threads\":2}}", "compute.threads", "unknown field");
}
