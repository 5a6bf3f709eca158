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
