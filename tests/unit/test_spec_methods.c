/* Spec keys of methods gptq, lqer, odlri (common/lrq_spec.c, spec__methods): defaults, and every bad
 * value is a spec error (HTTP 422 from lrqd) naming its field. Shape-dependent limits (rank above
 * min(in, out), outliers above in) need the model and are refused by the worker before any work
 * (tests/integration/test_methods.sh). */
#include <criterion/criterion.h>
#include <string.h>
#include "lrq_spec.h"

#define HEAD "{\"model\":\"m\",\"calibration\":{\"path\":\"c\"},"

static int parse(const char *txt, lrq_spec_t *s, lrq_err_t *e)
{
    json_error_t je;
    json_t *j = json_loads(txt, 0, &je);
    cr_assert(j, "test JSON must parse: %s (%s)", je.text, txt);
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
    cr_expect_str_eq(e.field, field, "field for %s: got '%s' (%s)", txt, e.field, e.msg);
    cr_expect(strstr(e.msg, msg_part), "message for %s: '%s' lacks '%s'", txt, e.msg, msg_part);
}

Test(spec_methods, defaults)
{
    lrq_spec_t s;
    lrq_err_t e = {0};
    cr_assert_eq(parse(HEAD "\"method\":\"gptq\"}", &s, &e), 0, "%s: %s", e.field, e.msg);
    cr_expect_eq(s.method, LRQ_M_GPTQ);
    cr_expect_float_eq(s.gptq.damp, 0.01, 1e-12);
    cr_expect_eq(s.gptq.block_size, 128);
    cr_expect_eq(s.gptq.act_order, 0);
    cr_expect_eq(s.gptq.static_groups, 0);
    cr_expect_eq(lrq_spec_factored(&s), 0);
    lrq_spec_close(&s);
    cr_assert_eq(parse(HEAD "\"method\":\"lqer\"}", &s, &e), 0, "%s: %s", e.field, e.msg);
    cr_expect_eq(s.lqer.rank, 32);
    cr_expect_eq(s.lqer.scaled, 1);
    cr_expect_eq(s.lqer.factor_bits, 16);
    cr_expect_eq(s.lqer.base, LRQ_BASE_RTN);
    cr_expect_eq(s.lqer.svd, 0);
    cr_expect_eq(lrq_spec_factored(&s), 1);
    cr_expect_eq(lrq_spec_uses_recon(&s), 0);
    lrq_spec_close(&s);
    cr_assert_eq(parse(HEAD "\"method\":\"odlri\"}", &s, &e), 0, "%s: %s", e.field, e.msg);
    cr_expect_eq(s.odlri.rank, 16);
    cr_expect_eq(s.odlri.outliers, 16);
    cr_expect_eq(s.odlri.init, LRQ_ODLRI_OUTLIER);
    cr_expect_eq(s.odlri.iterations, 15);
    cr_expect_eq(s.odlri.factor_bits, 16);
    lrq_spec_close(&s);
    /* stacked: lqer on lrq takes the lrq object */
    cr_assert_eq(parse(HEAD "\"method\":\"lqer\",\"lqer\":{\"base\":\"flexround\",\"rank\":8,\"factor_bits\":8,"
                            "\"scaled\":false},\"lrq\":{\"iterations\":10}}", &s, &e), 0, "%s: %s", e.field, e.msg);
    cr_expect_eq(s.lqer.base, LRQ_BASE_FLEXROUND);
    cr_expect_eq(s.lqer.factor_bits, 8);
    cr_expect_eq(s.lqer.scaled, 0);
    cr_expect_eq(s.iterations, 10);
    cr_expect_eq(lrq_spec_uses_recon(&s), 1);
    lrq_spec_close(&s);
    cr_assert_eq(parse(HEAD "\"method\":\"odlri\",\"weight\":{\"group_size\":32},\"gptq\":{\"act_order\":true,"
                            "\"static_groups\":true,\"block_size\":64,\"damp\":0.1},\"odlri\":{\"init\":\"lr_first\","
                            "\"outliers\":0,\"iterations\":3}}", &s, &e), 0, "%s: %s", e.field, e.msg);
    cr_expect_eq(s.gptq.block_size, 64);
    cr_expect_eq(s.odlri.init, LRQ_ODLRI_LR_FIRST);
    lrq_spec_close(&s);
}

Test(spec_methods, bad_values_name_their_field)
{
    expect_field(HEAD "\"method\":\"lqer\",\"lqer\":{\"factor_bits\":5}}", "lqer.factor_bits", "16");
    expect_field(HEAD "\"method\":\"odlri\",\"odlri\":{\"factor_bits\":5}}", "odlri.factor_bits", "8");
    expect_field(HEAD "\"method\":\"lqer\",\"lqer\":{\"rank\":0}}", "lqer.rank", "1..65536");
    expect_field(HEAD "\"method\":\"lqer\",\"lqer\":{\"base\":\"awq\"}}", "lqer.base", "rtn, gptq, lrq, flexround");
    expect_field(HEAD "\"method\":\"lqer\",\"lqer\":{\"scaled\":1}}", "lqer.scaled", "true or false");
    expect_field(HEAD "\"method\":\"lqer\",\"lqer\":{\"svd\":\"lanczos\"}}", "lqer.svd", "auto, exact, randomized");
    expect_field(HEAD "\"method\":\"lqer\",\"lqer\":{\"rnk\":4}}", "lqer.rnk", "unknown");
    expect_field(HEAD "\"method\":\"odlri\",\"odlri\":{\"init\":\"svd\"}}", "odlri.init", "zero, lr_first, odlri");
    expect_field(HEAD "\"method\":\"odlri\",\"odlri\":{\"iterations\":0}}", "odlri.iterations", "1..1000");
    expect_field(HEAD "\"method\":\"odlri\",\"odlri\":{\"outliers\":-1}}", "odlri.outliers", "0..65536");
    expect_field(HEAD "\"method\":\"odlri\",\"odlri\":{\"outliers\":0}}", "odlri.outliers", "init");
    expect_field(HEAD "\"method\":\"gptq\",\"gptq\":{\"block_size\":100}}", "gptq.block_size", "power of two");
    expect_field(HEAD "\"method\":\"gptq\",\"gptq\":{\"damp\":-0.1}}", "gptq.damp", "[0, 1]");
    expect_field(HEAD "\"method\":\"gptq\",\"gptq\":{\"damp\":2}}", "gptq.damp", "[0, 1]");
    expect_field(HEAD "\"method\":\"gptq\",\"weight\":{\"group_size\":32},\"gptq\":{\"act_order\":true}}",
                 "gptq.act_order", "static_groups");
    /* an object for another method */
    expect_field(HEAD "\"method\":\"rtn\",\"gptq\":{}}", "gptq", "applies only");
    expect_field(HEAD "\"method\":\"lqer\",\"gptq\":{}}", "gptq", "applies only");
    expect_field(HEAD "\"method\":\"gptq\",\"lqer\":{}}", "lqer", "applies only");
    expect_field(HEAD "\"method\":\"gptq\",\"odlri\":{}}", "odlri", "applies only");
    expect_field(HEAD "\"method\":\"gptq\",\"lrq\":{}}", "lrq", "applies only");
    expect_field(HEAD "\"method\":\"lqer\",\"lrq\":{}}", "lrq", "base lrq or flexround");
    expect_field(HEAD "\"method\":\"lqer\",\"gptq\":5}", "gptq", "object");
    /* exports that cannot hold factors are refused up front, naming hf */
    expect_field(HEAD "\"method\":\"lqer\",\"export\":[\"gptq\"]}", "export[0]", "\"hf\"");
    expect_field(HEAD "\"method\":\"odlri\",\"export\":[\"hf\",\"gptq\"]}", "export[1]", "factors");
    /* calibration is required */
    expect_field("{\"model\":\"m\",\"method\":\"gptq\"}", "calibration", "required");
}

Test(spec_methods, gptq_export_allowed_for_gptq)
{
    lrq_spec_t s;
    lrq_err_t e = {0};
    cr_assert_eq(parse(HEAD "\"method\":\"gptq\",\"export\":[\"gptq\"]}", &s, &e), 0, "%s: %s", e.field, e.msg);
    cr_expect_eq(s.export_gptq, 1);
    lrq_spec_close(&s);
}
