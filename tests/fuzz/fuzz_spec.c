/* fuzz_spec.c — the job-spec validator on arbitrary JSON text, loaded the way
 * lrqd's POST /v1/jobs does (json_loadb, JSON_REJECT_DUPLICATES), then
 * lrq_spec_parse + lrq_spec_paths + lrq_spec_close. Accepted specs must satisfy
 * the documented bounds; refused ones must name a reason and own no strings. */
#include <stdint.h>
#include <string.h>
#include <jansson.h>

#include "lrq_spec.h"

static void fz_spec_str_ok(const char *s)
{
    if (s && (!*s || strlen(s) > 4096)) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    if (!j) return 0;
    lrq_spec_t s;
    lrq_err_t err;
    memset(&err, 0, sizeof err);
    int rc = lrq_spec_parse(j, &s, &err);
    if (rc == 0) {
        if (!s.model || s.method < LRQ_M_RTN || s.method > LRQ_M_ODLRI) __builtin_trap();
        if (s.bits < 2 || s.bits > 8) __builtin_trap();
        if (s.group_size && (s.group_size < 16 || (s.group_size & (s.group_size - 1)))) __builtin_trap();
        if (s.method != LRQ_M_RTN && !s.calib_path) __builtin_trap();
        if (s.calib_samples < 1 || s.calib_seq_len < 8 || s.iterations < 1 || s.batch_size < 1) __builtin_trap();
        if (!(s.lr > 0 && s.lr <= 1) || !(s.rank_ratio > 0 && s.rank_ratio <= 1)) __builtin_trap();
        if (s.rank_policy == 1 && s.rank < 1) __builtin_trap();
        if (s.threads < 0 || s.threads > 1024 || s.priority < -100 || s.priority > 100) __builtin_trap();
        if (s.max_attempts < 1 || s.max_attempts > 100) __builtin_trap();
        if (s.pipeline != LRQ_PIPE_SEQUENTIAL && s.pipeline != LRQ_PIPE_PARALLEL) __builtin_trap();
        if (s.pipeline == LRQ_PIPE_PARALLEL && s.method == LRQ_M_RTN) __builtin_trap();
        if (s.tasks < 1 || s.tasks > 256) __builtin_trap();
        if (s.tasks > 1 && (s.pipeline != LRQ_PIPE_PARALLEL ||
                            (s.method != LRQ_M_LRQ && s.method != LRQ_M_FLEXROUND)))
            __builtin_trap();
        if (lrq_spec_factored(&s) && (lrq_spec_rank(&s) < 1 || s.export_gptq || s.export_gguf || s.export_ct))
            __builtin_trap();
        fz_spec_str_ok(s.model);
        fz_spec_str_ok(s.tokenizer);
        fz_spec_str_ok(s.calib_path);
        fz_spec_str_ok(s.eval_path);
        fz_spec_str_ok(s.name);
        const char *fields[4], *values[4];
        int n = lrq_spec_paths(&s, fields, values);
        if (n < 1 || n > 4) __builtin_trap();
        for (int i = 0; i < n; i++)
            if (!fields[i] || !values[i] || !*values[i]) __builtin_trap();
    } else {
        if (rc >= 0 || !err.msg[0]) __builtin_trap();
        if (memchr(err.field, 0, sizeof err.field) == NULL || memchr(err.msg, 0, sizeof err.msg) == NULL)
            __builtin_trap();
        /* A refused spec owns nothing (the caller may still close it). */
        if (s.model || s.tokenizer || s.calib_path || s.eval_path || s.name) __builtin_trap();
    }
    lrq_spec_close(&s);
    lrq_spec_close(&s);   /* idempotent: api.c closes on every path */
    json_decref(j);
    return 0;
}
