/* test_cli_mock.c — lrqctl end to end against a small mock of the lrqd API
 * (libmicrohttpd in a thread of the test process, 127.0.0.1, ephemeral port):
 * submit/status/list/cancel/delete/metrics/artifacts/logs, error display,
 * SSE following (chunked in 5-byte pieces) and its polling fallback, wait's
 * exit codes, download with Range resume and sha256 checks, malformed
 * replies. Every test is bounded by a Criterion timeout (a hang guard, far above any run). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lrq_sha256.h"
#include "cli.h"

/* Criterion 2.4 leaks its parsed output option (criterion_handle_args) in the
 * runner process; that is not ours to fix, so tell LeakSanitizer (only read
 * when built with --enable-sanitizers). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libcriterion.so\n";
}

/* ---------------------------------------------------------------- the mock */
typedef struct mock {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    /* recorded */
    char auth[256];
    char range[128];         /* Range of the last artifact/log request */
    char last_url[512];
    int n_events, n_job_get, n_art_get, n_cancel;
    /* knobs */
    int events_mode;         /* 0 SSE, 1 500 error, 2 stream without a terminal state, 3 garbage */
    const char *final_state; /* state reached by job 7 */
    const char *final_error;
    int polls_until_done;    /* GET /v1/jobs/7 polls before the final state */
    const char *job_raw;     /* raw body for GET /v1/jobs/7 (malformed replies) */
    unsigned char art[100000];
    size_t art_len;
    int ignore_range, list_no_size, list_bad_sha, list_missing;
    char log[4096];
} mock_t;

static mock_t M;

typedef struct req {
    char *body;
    size_t len;
} req_t;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                             const char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (ctype)
        MHD_add_response_header(r, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, const char *body)
{
    return reply(c, status, "application/json", body, strlen(body));
}

static const char *job_json(const char *state, const char *progress)
{
    static __thread char b[2048];
    int fin = cli_state_terminal(state);
    snprintf(b, sizeof b,
             "{\"id\":7,\"name\":\"t\",\"state\":\"%s\",\"method\":\"rtn\",\"priority\":0,"
             "\"attempts\":1,\"max_attempts\":3,\"created_at\":\"2026-11-23T12:00:00Z\","
             "\"started_at\":null,\"finished_at\":null,\"progress\":%s,\"error\":%s%s%s,"
             "\"cancel_requested\":false,\"spec\":{}}",
             state, progress ? progress : "null", fin && M.final_error ? "\"" : "",
             fin && M.final_error ? M.final_error : "null", fin && M.final_error ? "\"" : "");
    return b;
}

#define PROG_46 "{\"stage\":\"reconstruct\",\"block\":2,\"blocks\":5,\"iteration\":300," \
                "\"iterations\":1000,\"loss\":0.0012,\"fraction\":0.46,\"eta_s\":120.0}"

/* SSE body, streamed 5 bytes per callback (MHD sends each as its own chunk). */
typedef struct sse_src {
    char *text;
    size_t len;
} sse_src_t;

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    sse_src_t *s = cls;
    if (pos >= s->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = s->len - pos < 5 ? s->len - pos : 5;
    if (n > max)
        n = max;
    memcpy(buf, s->text + pos, n);
    usleep(200);
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    sse_src_t *s = cls;
    free(s->text);
    free(s);
}

static enum MHD_Result serve_events(struct MHD_Connection *c)
{
    if (M.events_mode == 1)
        return reply_json(c, 500, "{\"error\":{\"code\":\"internal\",\"message\":\"boom\",\"field\":null}}");
    sse_src_t *s = calloc(1, sizeof *s);
    char *t = NULL;
    size_t tl = 0;
    FILE *f = open_memstream(&t, &tl);
    fprintf(f, ": hello\n\nevent: state\ndata: %s\n\n", job_json("queued", NULL));
    fprintf(f, "event: state\r\ndata: %s\r\n\r\n", job_json("running", NULL));
    if (M.events_mode == 3)
        fprintf(f, "event: progress\ndata: {not json\n\nevent: state\ndata: [1,2]\n\n"
                   "event: progress\ndata: {\"fraction\":\"x\",\"block\":[]}\n\n");
    fprintf(f, "event: progress\ndata: {\"stage\":\"reconstruct\",\"block\":2,\"blocks\":5,\n"
               "data: \"iteration\":300,\"iterations\":1000,\"loss\":0.0012,\"fraction\":0.46,"
               "\"eta_s\":120.0}\n\n");
    fprintf(f, "event: progress\ndata: " PROG_46 "\n\n");   /* repeated: shown once */
    if (M.events_mode != 2)
        fprintf(f, "event: state\ndata: %s\n\n", job_json(M.final_state, PROG_46));
    fclose(f);
    s->text = t;
    s->len = tl;
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64, sse_read, s, sse_free);
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* Range: bytes=N- only (what lrqctl sends). */
static enum MHD_Result serve_ranged(struct MHD_Connection *c, const char *data, size_t len,
                                    const char *ctype)
{
    const char *rg = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    pthread_mutex_lock(&M.mu);
    snprintf(M.range, sizeof M.range, "%s", rg ? rg : "");
    pthread_mutex_unlock(&M.mu);
    unsigned long long start;
    if (rg && !M.ignore_range && sscanf(rg, "bytes=%llu-", &start) == 1) {
        char cr[128];
        struct MHD_Response *r;
        unsigned status;
        if (start >= len) {
            snprintf(cr, sizeof cr, "bytes */%zu", len);
            r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
            status = 416;
        } else {
            snprintf(cr, sizeof cr, "bytes %llu-%zu/%zu", start, len - 1, len);
            r = MHD_create_response_from_buffer(len - start, (void *)(data + start), MHD_RESPMEM_MUST_COPY);
            status = 206;
        }
        MHD_add_response_header(r, "Content-Range", cr);
        MHD_add_response_header(r, "Content-Type", ctype);
        enum MHD_Result ret = MHD_queue_response(c, status, r);
        MHD_destroy_response(r);
        return ret;
    }
    return reply(c, 200, ctype, data, len);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *up,
                               size_t *up_size, void **con_cls)
{
    req_t *rq = *con_cls;
    if (!rq) {
        *con_cls = calloc(1, sizeof *rq);
        return MHD_YES;
    }
    if (*up_size) {
        rq->body = realloc(rq->body, rq->len + *up_size + 1);
        memcpy(rq->body + rq->len, up, *up_size);
        rq->len += *up_size;
        rq->body[rq->len] = '\0';
        *up_size = 0;
        return MHD_YES;
    }
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    pthread_mutex_lock(&M.mu);
    snprintf(M.auth, sizeof M.auth, "%s", auth ? auth : "");
    snprintf(M.last_url, sizeof M.last_url, "%s %s", method, url);
    pthread_mutex_unlock(&M.mu);
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;

    if (post && strcmp(url, "/v1/jobs") == 0) {
        json_t *j = rq->body ? json_loads(rq->body, 0, NULL) : NULL;
        int ok = j && json_object_get(j, "model");
        int bits = j ? (int)json_integer_value(json_object_get(json_object_get(j, "weight"), "bits")) : 0;
        json_decref(j);
        if (!ok)
            return reply_json(c, 400, "{\"error\":{\"code\":\"invalid_json\",\"message\":\"no model\",\"field\":null}}");
        if (bits > 8)
            return reply_json(c, 422, "{\"error\":{\"code\":\"invalid_spec\",\"message\":"
                                      "\"bits must be 2..8\",\"field\":\"weight.bits\"}}");
        return reply_json(c, 201, job_json("queued", NULL));
    }
    if (get && strncmp(url, "/v1/jobs", 8) == 0 && url[8] == '\0') {
        const char *st = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "state");
        const char *lim = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
        char b[4096];
        snprintf(b, sizeof b, "{\"jobs\":[%s,{\"id\":6,\"state\":\"failed\",\"method\":\"lrq\","
                 "\"error\":\"model: no such file\"}],\"next_after\":6,\"echo\":\"%s/%s\"}",
                 job_json("running", PROG_46), st ? st : "", lim ? lim : "");
        return reply_json(c, 200, b);
    }
    if (get && strcmp(url, "/v1/jobs/7") == 0) {
        pthread_mutex_lock(&M.mu);
        int n = ++M.n_job_get;
        pthread_mutex_unlock(&M.mu);
        if (M.job_raw)
            return reply_json(c, 200, M.job_raw);
        if (n > M.polls_until_done)
            return reply_json(c, 200, job_json(M.final_state, PROG_46));
        int q = n == 1 && M.events_mode != 2;   /* after a stream, the job is known to run */
        return reply_json(c, 200, job_json(q ? "queued" : "running", q ? NULL : PROG_46));
    }
    if (get && strcmp(url, "/v1/jobs/7/events") == 0) {
        pthread_mutex_lock(&M.mu);
        M.n_events++;
        pthread_mutex_unlock(&M.mu);
        return serve_events(c);
    }
    if (post && strcmp(url, "/v1/jobs/7/cancel") == 0) {
        M.n_cancel++;
        return reply_json(c, 200, "{\"id\":7,\"state\":\"running\",\"cancel_requested\":true}");
    }
    if (post && strcmp(url, "/v1/jobs/8/cancel") == 0)
        return reply_json(c, 409, "{\"error\":{\"code\":\"conflict\",\"message\":\"job 8 is already "
                                  "succeeded\",\"field\":null}}");
    if (strcmp(method, "DELETE") == 0 && strcmp(url, "/v1/jobs/7") == 0)
        return reply(c, 204, NULL, "", 0);
    if (get && strcmp(url, "/v1/jobs/7/metrics") == 0)
        return reply_json(c, 200, "{\"fp_perplexity\":10.5,\"q_perplexity\":11.25,"
                                  "\"kl_divergence\":0.0123,\"top1_agreement\":0.91,"
                                  "\"blocks\":[{\"block\":0,\"loss_start\":0.01,\"loss_end\":0.002}]}");
    if (get && strcmp(url, "/v1/jobs/7/artifacts") == 0) {
        if (M.list_missing)
            return reply_json(c, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"x\",\"field\":null}}");
        char sha[65], b[1024];
        lrq_sha256_hex(M.art, M.art_len, sha);
        if (M.list_bad_sha)
            sha[0] = sha[0] == '0' ? '1' : '0';
        if (M.list_no_size)
            snprintf(b, sizeof b, "{\"artifacts\":[{\"path\":\"hf/model.safetensors\",\"sha256\":\"%s\"}]}", sha);
        else
            snprintf(b, sizeof b, "{\"artifacts\":[{\"path\":\"hf/config.json\",\"size\":2,\"sha256\":"
                     "\"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\"},"
                     "{\"path\":\"hf/model.safetensors\",\"size\":%zu,\"sha256\":\"%s\"}]}", M.art_len, sha);
        return reply_json(c, 200, b);
    }
    if (get && strcmp(url, "/v1/jobs/7/artifacts/hf/model.safetensors") == 0) {
        pthread_mutex_lock(&M.mu);
        M.n_art_get++;
        pthread_mutex_unlock(&M.mu);
        return serve_ranged(c, (const char *)M.art, M.art_len, "application/octet-stream");
    }
    if (get && strcmp(url, "/v1/jobs/7/log") == 0) {
        /* the log grows with each poll of the job */
        pthread_mutex_lock(&M.mu);
        size_t n = (size_t)(M.n_job_get + 1) * 40;
        pthread_mutex_unlock(&M.mu);
        size_t full = strlen(M.log);
        return serve_ranged(c, M.log, n < full ? n : full, "text/plain");
    }
    if (strncmp(url, "/v1/jobs/", 9) == 0)
        return reply_json(c, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such job\",\"field\":null}}");
    return reply_json(c, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no route\",\"field\":null}}");
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    req_t *rq = *con_cls;
    if (rq) {
        free(rq->body);
        free(rq);
    }
    *con_cls = NULL;
}

static void mock_start(void)
{
    memset(&M, 0, sizeof M);
    pthread_mutex_init(&M.mu, NULL);
    M.final_state = "succeeded";
    M.polls_until_done = 2;
    M.art_len = sizeof M.art;
    uint32_t x = 12345;
    for (size_t i = 0; i < M.art_len; i++) {
        x = x * 1664525u + 1013904223u;
        M.art[i] = (unsigned char)(x >> 24);
    }
    size_t k = 0;
    for (int i = 0; i < 40; i++)
        k += (size_t)snprintf(M.log + k, sizeof M.log - k, "log line %02d of the worker\n", i);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    M.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL,
                           handler, NULL, MHD_OPTION_SOCK_ADDR, &sa,
                           MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    cr_assert_not_null(M.d, "mock server did not start");
    M.port = MHD_get_daemon_info(M.d, MHD_DAEMON_INFO_BIND_PORT)->port;
    cr_assert_gt(M.port, 0);
}

static void mock_stop(void)
{
    if (M.d)
        MHD_stop_daemon(M.d);
    M.d = NULL;
}

/* ---------------------------------------------------------------- running lrqctl */
typedef struct run {
    int rc;
    char *out, *err;
} run_t;

static run_t R;

static void run_free(void)
{
    free(R.out);
    free(R.err);
    memset(&R, 0, sizeof R);
}

static char tmpdir[] = "/tmp/lrqctl-test-XXXXXX";

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(p);
}

static void tests_init(void)
{
    mock_start();
    cr_assert_not_null(mkdtemp(tmpdir));
    cr_assert_eq(chdir(tmpdir), 0);
}

static void tests_fini(void)
{
    mock_stop();
    run_free();
    if (chdir("/") == 0)
        nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* run(tty, args..., NULL) against the mock */
static int run_v(int tty, ...)
{
    char *argv[32], server[64];
    int n = 1;
    argv[0] = "lrqctl";
    va_list ap;
    va_start(ap, tty);
    for (char *s; n < 31 && (s = va_arg(ap, char *)); )
        argv[n++] = s;
    va_end(ap);
    argv[n] = NULL;
    snprintf(server, sizeof server, "http://127.0.0.1:%d", M.port);
    run_free();
    size_t ol, el;
    FILE *o = open_memstream(&R.out, &ol), *e = open_memstream(&R.err, &el);
    cli_env_t env = { .server = server, .token = NULL, .out = o, .err = e, .out_tty = tty,
                      .poll_ms = 20, .retries = 2 };
    R.rc = cli_main(n, argv, &env);
    fclose(o);
    fclose(e);
    return R.rc;
}
#define run(...) run_v(0, __VA_ARGS__, (char *)NULL)
#define run_tty(...) run_v(1, __VA_ARGS__, (char *)NULL)

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void write_str(const char *path, const char *s)
{
    write_file(path, s, strlen(s));
}

static int file_equals(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    unsigned char *b = malloc(n + 1);
    size_t k = fread(b, 1, n + 1, f);
    fclose(f);
    int eq = k == n && memcmp(b, p, n) == 0;
    free(b);
    return eq;
}

TestSuite(mock, .init = tests_init, .fini = tests_fini, .timeout = 120); /* a hang guard: tests take ms */

/* ---------------------------------------------------------------- jobs */
Test(mock, submit_prints_id_and_sends_token)
{
    write_str("spec.json", "{\"model\":\"m.bin\",\"method\":\"rtn\"}");
    cr_assert_eq(run("--token", "s3cret", "submit", "spec.json"), 0, "%s", R.err);
    cr_assert_str_eq(R.out, "7\n");
    cr_assert_str_eq(M.auth, "Bearer s3cret");
    cr_assert_eq(run("-o", "json", "submit", "spec.json"), 0);
    json_t *j = json_loads(R.out, 0, NULL);
    cr_assert_not_null(j, "%s", R.out);
    cr_assert_eq(json_integer_value(json_object_get(j, "id")), 7);
    json_decref(j);
    cr_assert_str_eq(M.auth, "");
}

Test(mock, submit_errors_are_shown_with_field_and_status)
{
    write_str("bad.json", "{\"model\":\"m\",\"weight\":{\"bits\":99}}");
    cr_assert_eq(run("submit", "bad.json"), 1);
    cr_assert_str_eq(R.err, "lrqctl: bits must be 2..8 (field: weight.bits) [HTTP 422 invalid_spec]\n");
    cr_assert_str_eq(R.out, "");
    cr_assert_eq(run("-o", "json", "submit", "bad.json"), 1);
    json_t *j = json_loads(R.out, 0, NULL);
    cr_assert_not_null(j, "%s", R.out);
    cr_assert_eq(json_integer_value(json_object_get(j, "http_status")), 422);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "field")), "weight.bits");
    json_decref(j);
    /* local problems never reach the server */
    write_str("broken.json", "{\"model\":");
    cr_assert_eq(run("submit", "broken.json"), 1);
    cr_assert(strstr(R.err, "broken.json"), "%s", R.err);
    cr_assert_eq(run("submit", "missing.json"), 1);
    cr_assert(strstr(R.err, "No such file"), "%s", R.err);
}

Test(mock, status_list_cancel_delete)
{
    cr_assert_eq(run("status", "7"), 0, "%s", R.err);
    cr_assert(strstr(R.out, "state        queued\n"), "%s", R.out);
    cr_assert_eq(run("status", "7", "-o", "json"), 0);
    cr_assert(strstr(R.out, "\"created_at\":\"2026-11-23T12:00:00Z\""), "server JSON as is: %s", R.out);
    cr_assert_eq(run("status", "99"), 1);
    cr_assert_str_eq(R.err, "lrqctl: no such job [HTTP 404 not_found]\n");

    cr_assert_eq(run("list", "--state", "running", "--limit", "2"), 0, "%s", R.err);
    cr_assert(strstr(R.out, "46% block 2/5"), "%s", R.out);
    cr_assert(strstr(R.out, "model: no such file"), "%s", R.out);
    cr_assert(strstr(R.err, "--after 6"), "paging hint: %s", R.err);
    cr_assert_eq(run("-o", "json", "list", "--state", "failed"), 0);
    cr_assert(strstr(R.out, "\"echo\":\"failed/\""), "query string: %s", R.out);

    cr_assert_eq(run("cancel", "7"), 0);
    cr_assert_str_eq(R.out, "job 7: cancel requested (running)\n");
    cr_assert_eq(run("cancel", "8"), 1);
    cr_assert(strstr(R.err, "already succeeded [HTTP 409 conflict]"), "%s", R.err);
    cr_assert_eq(run("delete", "7"), 0);
    cr_assert_str_eq(R.out, "job 7 deleted\n");
    cr_assert_eq(run("-o", "json", "delete", "7"), 0);
    cr_assert(strstr(R.out, "\"deleted\": true"), "%s", R.out);
}

Test(mock, metrics_artifacts_logs)
{
    cr_assert_eq(run("metrics", "7"), 0, "%s", R.err);
    cr_assert(strstr(R.out, "perplexity (quantized)"), "%s", R.out);
    cr_assert(strstr(R.out, "    0        0.01     0.002\n"), "%s", R.out);
    cr_assert_eq(run("metrics", "7", "-o", "json"), 0);
    cr_assert(strncmp(R.out, "{\"fp_perplexity\":10.5", 21) == 0, "%s", R.out);
    cr_assert_eq(run("artifacts", "7"), 0);
    cr_assert(strstr(R.out, "hf/model.safetensors  97.7 KiB"), "%s", R.out);
    cr_assert_eq(run("logs", "7"), 0);
    cr_assert_eq(strlen(R.out), 40, "%s", R.out);   /* the log as it is now */
}

Test(mock, logs_follow_prints_everything_once)
{
    M.polls_until_done = 5;
    cr_assert_eq(run("logs", "7", "--follow"), 0, "%s", R.err);
    cr_assert_str_eq(R.out, M.log);
    cr_assert(strncmp(M.range, "bytes=", 6) == 0, "follow uses Range: '%s'", M.range);
}

Test(mock, unreachable_server)
{
    int port = M.port;
    mock_stop();
    char server[64];
    snprintf(server, sizeof server, "--server=http://127.0.0.1:%d", port);
    cr_assert_eq(run(server, "status", "7"), 1);
    cr_assert(strstr(R.err, "lrqctl: http://127.0.0.1:"), "%s", R.err);
    cr_assert_eq(run(server, "wait", "7"), 3);
    cr_assert(strstr(R.err, "giving up on job 7"), "%s", R.err);
}

/* ---------------------------------------------------------------- follow */
Test(mock, watch_plain_lines_from_sse)
{
    cr_assert_eq(run("watch", "7"), 0, "%s", R.err);
    cr_assert_str_eq(R.out,
        "job 7: queued\n"
        "job 7: running\n"
        "job 7: 46% block 2/5 iter 300/1000 loss 1.2e-3 ETA 2m00s\n"
        "job 7: succeeded\n");
    cr_assert_eq(M.n_events, 1);
    cr_assert_eq(M.n_job_get, 0, "no polling when the stream works");
}

Test(mock, watch_tty_redraws_in_place)
{
    cr_assert_eq(run_tty("watch", "7"), 0, "%s", R.err);
    cr_assert(strstr(R.out, "job 7: running\n\r[#####.....] 46% block 2/5 iter 300/1000 loss 1.2e-3 "
                            "ETA 2m00s\033[K\njob 7: succeeded\n"), "%s", R.out);
}

Test(mock, watch_json_lines)
{
    cr_assert_eq(run("-o", "json", "watch", "7"), 0, "%s", R.err);
    int lines = 0;
    char *save, *l = strtok_r(R.out, "\n", &save);
    for (; l; l = strtok_r(NULL, "\n", &save), lines++) {
        json_t *j = json_loads(l, 0, NULL);
        cr_assert_not_null(j, "line %d: %s", lines, l);
        cr_assert(json_is_string(json_object_get(j, "event")));
        json_decref(j);
    }
    cr_assert_eq(lines, 4);
}

Test(mock, wait_exit_codes_from_sse)
{
    cr_assert_eq(run("wait", "7"), 0, "%s", R.err);
    cr_assert_str_eq(R.out, "job 7: succeeded\n");
    M.final_state = "failed";
    M.final_error = "out of memory";
    cr_assert_eq(run("wait", "7"), 1);
    cr_assert_str_eq(R.out, "job 7: failed: out of memory\n");
    M.final_state = "cancelled";
    cr_assert_eq(run("wait", "7"), 2);
    cr_assert_eq(run("-o", "json", "wait", "7"), 2);
    json_t *j = json_loads(R.out, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "cancelled");
    json_decref(j);
    cr_assert_eq(run("wait", "99"), 3, "unknown job");
    cr_assert(strstr(R.err, "no such job [HTTP 404"), "%s", R.err);
}

Test(mock, polling_fallback_when_sse_fails)
{
    M.events_mode = 1;
    M.polls_until_done = 3;
    M.final_state = "failed";
    cr_assert_eq(run("wait", "7"), 1, "%s", R.err);
    cr_assert_eq(M.n_events, 1);
    cr_assert_eq(M.n_job_get, 4);
    cr_assert_eq(run("watch", "7"), 1, "watch exits like wait: the job failed");
    cr_assert_str_eq(R.out, "job 7: failed\n", "already final at the first poll: %s", R.out);
}

Test(mock, polling_after_stream_ends_early)
{
    M.events_mode = 2;   /* stream closes while the job is still running */
    M.polls_until_done = 2;
    cr_assert_eq(run("watch", "7"), 0, "%s", R.err);
    cr_assert_str_eq(R.out,
        "job 7: queued\n"
        "job 7: running\n"
        "job 7: 46% block 2/5 iter 300/1000 loss 1.2e-3 ETA 2m00s\n"
        "job 7: succeeded\n");
    cr_assert_eq(M.n_job_get, 3);
}

Test(mock, submit_wait_follows)
{
    write_str("spec.json", "{\"model\":\"m.bin\"}");
    M.final_state = "cancelled";
    cr_assert_eq(run("submit", "spec.json", "--wait"), 2, "%s", R.err);
    cr_assert(strncmp(R.out, "7\njob 7: queued\n", 16) == 0, "%s", R.out);
    cr_assert(strstr(R.out, "job 7: cancelled\n"), "%s", R.out);
}

/* ---------------------------------------------------------------- malformed replies */
Test(mock, malformed_replies_never_crash)
{
    static const char *bodies[] = {
        "not json at all", "[1,2,3]", "{}", "{\"state\":5,\"progress\":[1]}", "null",
        "{\"id\":\"x\",\"state\":\"running\",\"progress\":{\"fraction\":\"a\",\"block\":[],"
        "\"loss\":{},\"eta_s\":\"soon\"},\"attempts\":{},\"error\":7}",
        "{\"state\":\"\\u001b[31mred\",\"error\":\"\\u0000\"}",
    };
    M.events_mode = 1;
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        M.job_raw = bodies[i];
        int rc = run("status", "7");
        cr_assert(rc == 0 || rc == 1, "status rc %d on %s", rc, bodies[i]);
        if (i == 5)
            continue;   /* a well-formed running job: wait would rightly keep waiting */
        rc = run("wait", "7");
        cr_assert_eq(rc, 3, "wait on %s: %d", bodies[i], rc);
        cr_assert(strstr(R.err, "giving up on job 7"), "%s", R.err);
    }
    M.job_raw = NULL;
    M.events_mode = 3;   /* garbage events in the stream are skipped */
    cr_assert_eq(run("watch", "7"), 0, "%s", R.err);
    cr_assert(strstr(R.out, "job 7: succeeded\n"), "%s", R.out);
}

/* ---------------------------------------------------------------- download */
Test(mock, download_fresh)
{
    cr_assert_eq(run("download", "7", "hf/model.safetensors"), 0, "%s", R.err);
    cr_assert(file_equals("model.safetensors", M.art, M.art_len));
    cr_assert_str_eq(M.range, "");
    cr_assert(strstr(R.out, "verified"), "%s", R.out);
}

Test(mock, download_resumes_with_range)
{
    write_file("part.bin", M.art, 40000);
    cr_assert_eq(run("-o", "json", "download", "7", "hf/model.safetensors", "-o", "part.bin"), 0, "%s", R.err);
    cr_assert_str_eq(M.range, "bytes=40000-");
    cr_assert(file_equals("part.bin", M.art, M.art_len));
    json_t *j = json_loads(R.out, 0, NULL);
    cr_assert_not_null(j, "%s", R.out);
    cr_assert_eq(json_integer_value(json_object_get(j, "resumed_from")), 40000);
    cr_assert(json_is_true(json_object_get(j, "verified")));
    json_decref(j);
}

Test(mock, download_server_ignoring_range_starts_over)
{
    M.ignore_range = 1;
    write_file("part.bin", M.art, 1000);
    cr_assert_eq(run("download", "7", "hf/model.safetensors", "-o", "part.bin"), 0, "%s", R.err);
    cr_assert_str_eq(M.range, "bytes=1000-");
    cr_assert(file_equals("part.bin", M.art, M.art_len));
}

Test(mock, download_complete_file_is_not_fetched)
{
    write_file("model.safetensors", M.art, M.art_len);
    cr_assert_eq(run("download", "7", "hf/model.safetensors"), 0, "%s", R.err);
    cr_assert_eq(M.n_art_get, 0);
    cr_assert(strstr(R.out, "(already complete)"), "%s", R.out);
    /* without a size in the listing: Range at the end → 416 → complete */
    M.list_no_size = 1;
    cr_assert_eq(run("download", "7", "hf/model.safetensors"), 0, "%s", R.err);
    cr_assert_eq(M.n_art_get, 1);
    cr_assert_str_eq(M.range, "bytes=100000-");
    cr_assert(file_equals("model.safetensors", M.art, M.art_len));
}

Test(mock, download_longer_partial_starts_over)
{
    unsigned char *big = calloc(1, M.art_len + 10);
    write_file("x.bin", big, M.art_len + 10);
    free(big);
    M.list_no_size = 1;   /* learn it from the 416 */
    cr_assert_eq(run("download", "7", "hf/model.safetensors", "-o", "x.bin"), 0, "%s", R.err);
    cr_assert(file_equals("x.bin", M.art, M.art_len));
}

Test(mock, download_corrupt_partial_is_detected_and_removed)
{
    unsigned char part[5000];
    memcpy(part, M.art, sizeof part);
    part[17] ^= 0x40;
    write_file("model.safetensors", part, sizeof part);
    cr_assert_eq(run("download", "7", "hf/model.safetensors"), 1);
    cr_assert(strstr(R.err, "sha256 mismatch"), "%s", R.err);
    struct stat st;
    cr_assert_neq(stat("model.safetensors", &st), 0, "corrupt file must be removed");
    /* the next attempt starts from scratch and succeeds */
    cr_assert_eq(run("download", "7", "hf/model.safetensors"), 0, "%s", R.err);
    cr_assert(file_equals("model.safetensors", M.art, M.art_len));
}

Test(mock, download_without_listing_warns)
{
    M.list_missing = 1;
    cr_assert_eq(run("download", "7", "hf/model.safetensors"), 0, "%s", R.err);
    cr_assert(strstr(R.err, "will not be verified"), "%s", R.err);
    cr_assert(strstr(R.out, "(not verified)"), "%s", R.out);
    cr_assert(file_equals("model.safetensors", M.art, M.art_len));
    cr_assert_eq(run("download", "7", "hf/missing.bin"), 1);
    cr_assert(strstr(R.err, "[HTTP 404 not_found]"), "%s", R.err);
    struct stat st;
    cr_assert_neq(stat("missing.bin", &st), 0, "no empty file left behind");
    /* with a listing, an unlisted path is refused without a download request */
    M.list_missing = 0;
    int before = M.n_art_get;
    cr_assert_eq(run("download", "7", "hf/other.bin"), 1);
    cr_assert(strstr(R.err, "job 7 has no artifact 'hf/other.bin'"), "%s", R.err);
    cr_assert_eq(M.n_art_get, before);
}
