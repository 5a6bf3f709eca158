/* test_jobjson.c — daemon/jobjson.c (the API's job object) and
 * daemon/metrics.c (the Prometheus exposition). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/jobjson.h"
#include "daemon/metrics.h"

Test(jobjson, fields_times_and_live_progress)
{
    db_job_t j = {.id = 12, .name = "n", .state = DB_RUNNING, .method = "lrq", .priority = 5, .attempts = 2,
                  .max_attempts = 3, .spec = "{\"model\":\"/m\"}", .created_at = 1764620222000LL,
                  .progress = "{\"fraction\":0.25}", .error = NULL, .cancel_requested = 1, .owner = NULL};
    json_t *o = jobjson_new(&j, NULL);
    cr_assert_not_null(o);
    cr_expect_eq(json_integer_value(json_object_get(o, "id")), 12);
    cr_expect_str_eq(json_string_value(json_object_get(o, "state")), "running");
    cr_expect_str_eq(json_string_value(json_object_get(o, "created_at")), "2025-12-01T20:17:02Z");
    cr_expect(json_is_null(json_object_get(o, "started_at")));
    cr_expect(json_is_true(json_object_get(o, "cancel_requested")));
    cr_expect_float_eq(json_number_value(json_object_get(json_object_get(o, "progress"), "fraction")), 0.25, 0);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(o, "spec"), "model")), "/m");
    cr_expect(json_is_null(json_object_get(o, "error")), "absent optional strings are null");
    json_decref(o);
    json_t *live = json_pack("{s:f}", "fraction", 0.5);
    o = jobjson_new(&j, live);
    cr_expect_float_eq(json_number_value(json_object_get(json_object_get(o, "progress"), "fraction")), 0.5, 0,
                       "the live progress wins over the stored copy");
    json_decref(o);
    cr_expect_eq(live->refcount, 1, "borrowed, not stolen");
    json_decref(live);
    j.progress = "not json";
    o = jobjson_new(&j, NULL);
    cr_expect(json_is_null(json_object_get(o, "progress")), "a corrupt stored text is null, not an error");
    json_decref(o);
}

Test(metrics, counts_buckets_and_text)
{
    metrics_t m = {0};
    static const char route[] = "/v1/jobs";
    metrics_http(&m, route, 200);
    metrics_http(&m, route, 200);
    metrics_http(&m, route, 404);
    metrics_job_done(&m, 500);        /* 0.5 s → le 1 */
    metrics_job_done(&m, 45000);      /* 45 s → le 60 */
    metrics_job_done(&m, 100000000);  /* 27.8 h → +Inf only */
    metrics_gauges_t g = {.jobs = {3, 1, 4, 1, 5}, .running_workers = 1, .worker_slots = 2};
    lrq_buf_t b = {0};
    cr_assert_eq(metrics_render(&m, &g, &b), 0);
    const char *want[] = {
        "lrq_jobs{state=\"queued\"} 3\n", "lrq_jobs{state=\"cancelled\"} 5\n", "lrq_queue_depth 3\n",
        "lrq_running_workers 1\n", "lrq_worker_slots 2\n", "lrq_job_duration_seconds_bucket{le=\"1\"} 1\n",
        "lrq_job_duration_seconds_bucket{le=\"30\"} 1\n", "lrq_job_duration_seconds_bucket{le=\"60\"} 2\n",
        "lrq_job_duration_seconds_bucket{le=\"86400\"} 2\n", "lrq_job_duration_seconds_bucket{le=\"+Inf\"} 3\n",
        "lrq_job_duration_seconds_count 3\n", "lrq_job_duration_seconds_sum 100045.500\n",
        "lrq_http_requests_total{route=\"/v1/jobs\",status=\"200\"} 2\n",
        "lrq_http_requests_total{route=\"/v1/jobs\",status=\"404\"} 1\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(b.p, want[i]) != NULL, "missing: %s", want[i]);
    lrq_buf_free(&b);
}
