/* test_cli.c — lrqctl pure parts: argument parsing, progress-line and number
 * formatting, the SSE parser (every split of a stream), error messages,
 * Content-Range parsing, sha256 (FIPS 180-2 vectors), tables on odd JSON. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
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

/* ---------------------------------------------------------------- args */
/* parse(a, msg, LRQ_SERVER, LRQ_TOKEN, args..., NULL) */
static int parse_v(cli_args_t *a, char *msg, const char *es, const char *et, ...)
{
    char *argv[32];
    int n = 1;
    va_list ap;
    va_start(ap, et);
    argv[0] = "lrqctl";
    for (char *s; n < 31 && (s = va_arg(ap, char *)); )
        argv[n++] = s;
    va_end(ap);
    argv[n] = NULL;
    return cli_args_parse(n, argv, es, et, a, msg, 256);
}
#define parse(a, msg, es, et, ...) parse_v(a, msg, es, et, ##__VA_ARGS__, (char *)NULL)

Test(args, defaults_and_env)
{
    cli_args_t a;
    char msg[256];
    cr_assert_eq(parse(&a, msg, NULL, NULL, "status", "12"), 0, "%s", msg);
    cr_assert_str_eq(a.server, "http://127.0.0.1:8470");
    cr_assert_null(a.token);
    cr_assert_eq(a.out, CLI_OUT_TABLE);
    cr_assert_str_eq(a.cmd->name, "status");
    cr_assert_eq(a.id, 12);
    cr_assert_eq(parse(&a, msg, "http://h:1", "tok", "status", "3"), 0);
    cr_assert_str_eq(a.server, "http://h:1");
    cr_assert_str_eq(a.token, "tok");
    /* flags beat the environment, before or after the command */
    cr_assert_eq(parse(&a, msg, "http://h:1", "tok", "--server", "https://x:2", "status", "3",
                       "--token=t2", "-ojson"), 0, "%s", msg);
    cr_assert_str_eq(a.server, "https://x:2");
    cr_assert_str_eq(a.token, "t2");
    cr_assert_eq(a.out, CLI_OUT_JSON);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "-o", "json", "list", "--output=table"), 0);
    cr_assert_eq(a.out, CLI_OUT_TABLE);
}

Test(args, command_flags)
{
    cli_args_t a;
    char msg[256];
    cr_assert_eq(parse(&a, msg, NULL, NULL, "submit", "spec.json", "--wait"), 0);
    cr_assert_eq(a.wait, 1);
    cr_assert_str_eq(a.pos[0], "spec.json");
    cr_assert_eq(parse(&a, msg, NULL, NULL, "list", "--state", "running", "--limit=10",
                       "--after", "99"), 0, "%s", msg);
    cr_assert_str_eq(a.state, "running");
    cr_assert_eq(a.limit, 10);
    cr_assert_eq(a.after, 99);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "logs", "5", "-f"), 0);
    cr_assert_eq(a.follow, 1);
    /* after 'download', -o is the output file, --output still the format */
    cr_assert_eq(parse(&a, msg, NULL, NULL, "download", "4", "hf/model.safetensors", "-o",
                       "out.bin", "--output", "json"), 0, "%s", msg);
    cr_assert_str_eq(a.file, "out.bin");
    cr_assert_str_eq(a.pos[1], "hf/model.safetensors");
    cr_assert_eq(a.out, CLI_OUT_JSON);
    /* but before the command -o is the format */
    cr_assert_eq(parse(&a, msg, NULL, NULL, "-o", "json", "download", "4", "x"), 0);
    cr_assert_eq(a.out, CLI_OUT_JSON);
    cr_assert_null(a.file);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "token", "new", "ci", "submit"), 0);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "submit", "--", "-"), 0);
    cr_assert_str_eq(a.pos[0], "-");
}

Test(args, usage_errors)
{
    cli_args_t a;
    char msg[256];
    cr_assert_eq(parse(&a, msg, NULL, NULL), CLI_EXIT_USAGE);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "frobnicate"), CLI_EXIT_USAGE);
    cr_assert(strstr(msg, "frobnicate"), "%s", msg);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "status"), CLI_EXIT_USAGE);
    cr_assert(strstr(msg, "status ID"), "%s", msg);
    static const char *bad_ids[] = { "abc", "0", "-1", "12x", "+3", "", "99999999999999999999" };
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++)
        cr_assert_eq(parse(&a, msg, NULL, NULL, "wait", bad_ids[i]), CLI_EXIT_USAGE, "%s",
                     bad_ids[i]);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "status", "1", "2"), CLI_EXIT_USAGE);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "status", "1", "--wait"), CLI_EXIT_USAGE);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "list", "--state", "done"), CLI_EXIT_USAGE);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "list", "--limit", "0"), CLI_EXIT_USAGE);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "list", "--limit", "501"), CLI_EXIT_USAGE);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "list", "--limit"), CLI_EXIT_USAGE);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "-o", "yaml", "list"), CLI_EXIT_USAGE);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "--server", "ftp://x", "status", "1"), CLI_EXIT_USAGE);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "--token", "a\r\nX-Evil: 1", "status", "1"),
                 CLI_EXIT_USAGE);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "token", "old", "a", "read"), CLI_EXIT_USAGE);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "download", "1", "p", "-o"), CLI_EXIT_USAGE);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "--bogus", "list"), CLI_EXIT_USAGE);
}

Test(args, help)
{
    cli_args_t a;
    char msg[256];
    cr_assert_eq(parse(&a, msg, NULL, NULL, "--help"), 0);
    cr_assert(a.help);
    cr_assert_null(a.cmd);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "help", "watch"), 0);
    cr_assert(a.help);
    cr_assert_str_eq(a.cmd->name, "watch");
    cr_assert_eq(parse(&a, msg, NULL, NULL, "status", "--help"), 0);
    cr_assert(a.help);
    cr_assert_eq(parse(&a, msg, NULL, NULL, "help", "nope"), CLI_EXIT_USAGE);

    /* the general help names every command; per-command help has its synopsis */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cli_help(f, NULL);
    fclose(f);
    size_t n;
    const cli_cmd_t *t = cli_cmds(&n);
    for (size_t i = 0; i < n; i++)
        cr_assert(strstr(buf, t[i].synopsis), "%s missing from --help", t[i].name);
    free(buf);
    f = open_memstream(&buf, &len);
    cli_help(f, cli_cmd_find("wait"));
    fclose(f);
    cr_assert(strstr(buf, "0 succeeded, 1 failed, 2 cancelled, 3"), "%s", buf);
    free(buf);
}

Test(args, main_exit_codes)
{
    char *ob = NULL, *eb = NULL;
    size_t ol, el;
    FILE *o = open_memstream(&ob, &ol), *e = open_memstream(&eb, &el);
    cli_env_t env = { .out = o, .err = e };
    char *argv1[] = { "lrqctl", "status", "x", NULL };
    cr_assert_eq(cli_main(3, argv1, &env), CLI_EXIT_USAGE);
    char *argv2[] = { "lrqctl", "help", "status", NULL };
    cr_assert_eq(cli_main(3, argv2, &env), 0);
    char *argv3[] = { "lrqctl", "token", "new", "bad:name", "read", NULL };
    cr_assert_eq(cli_main(5, argv3, &env), CLI_EXIT_USAGE);
    char *argv4[] = { "lrqctl", "token", "new", "ci", "root", NULL };
    cr_assert_eq(cli_main(5, argv4, &env), CLI_EXIT_USAGE);
    fclose(o);
    fclose(e);
    cr_assert(strstr(eb, "lrqctl: job ID must be a positive integer"), "%s", eb);
    cr_assert(strstr(eb, "ROLE must be submit, read or admin"), "%s", eb);
    cr_assert(strstr(ob, "usage: lrqctl [GLOBAL OPTIONS] status ID"), "%s", ob);
    free(ob);
    free(eb);
}

/* ---------------------------------------------------------------- token */
Test(token, sha256_vectors_and_line)
{
    char hex[65];
    lrq_sha256_hex("abc", 3, hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    lrq_sha256_hex("", 0, hex);
    cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    char *ob = NULL, *eb = NULL;
    size_t ol, el;
    FILE *o = open_memstream(&ob, &ol), *e = open_memstream(&eb, &el);
    cli_env_t env = { .out = o, .err = e };
    char *argv[] = { "lrqctl", "token", "new", "ci-bot", "submit", NULL };
    cr_assert_eq(cli_main(5, argv, &env), 0);
    fclose(o);
    fclose(e);
    char tok[128], line[256];
    cr_assert_eq(sscanf(ob, "%127s %255s", tok, line), 2, "%s", ob);
    cr_assert_eq(strlen(tok), 64);
    cr_assert_eq(strspn(tok, "0123456789abcdef"), 64);
    lrq_sha256_hex(tok, 64, hex);
    char want[256];
    snprintf(want, sizeof want, "ci-bot:submit:%s", hex);
    cr_assert_str_eq(line, want);
    free(ob);
    free(eb);
    cr_assert(cli_token_role_ok("read") && cli_token_role_ok("admin") && !cli_token_role_ok("Admin"));
    cr_assert(cli_token_name_ok("a.b_c-1") && !cli_token_name_ok("a:b") && !cli_token_name_ok("")
              && !cli_token_name_ok("a b"));
}

/* ---------------------------------------------------------------- formatting */
static void fmt_json(char *buf, size_t n, const char *js, int bar)
{
    json_t *j = json_loads(js, JSON_DECODE_ANY, NULL);
    cr_assert(j || strcmp(js, "null") == 0, "bad fixture %s", js);
    cli_progress_format(buf, n, j, bar);
    json_decref(j);
}

Test(progress, the_documented_line)
{
    char b[256];
    const char *p = "{\"stage\":\"reconstruct\",\"block\":2,\"blocks\":5,\"iteration\":300,"
                    "\"iterations\":1000,\"loss\":0.0012,\"fraction\":0.46,\"eta_s\":120.0,"
                    "\"elapsed_s\":100.0}";
    fmt_json(b, sizeof b, p, 1);
    cr_assert_str_eq(b, "[#####.....] 46% block 2/5 iter 300/1000 loss 1.2e-3 ETA 2m00s");
    fmt_json(b, sizeof b, p, 0);
    cr_assert_str_eq(b, "46% block 2/5 iter 300/1000 loss 1.2e-3 ETA 2m00s");
}

Test(progress, other_stages_and_bounds)
{
    char b[256];
    fmt_json(b, sizeof b, "{\"stage\":\"calibrate\",\"fraction\":0.2,\"eta_s\":5}", 1);
    cr_assert_str_eq(b, "[##........] 20% calibrate ETA 5s");
    fmt_json(b, sizeof b, "{\"fraction\":0}", 1);
    cr_assert_str_eq(b, "[..........] 0%");
    fmt_json(b, sizeof b, "{\"fraction\":1}", 1);
    cr_assert_str_eq(b, "[##########] 100%");
    fmt_json(b, sizeof b, "{\"fraction\":0.999}", 1);   /* not done until done */
    cr_assert_str_eq(b, "[##########] 99%");
    fmt_json(b, sizeof b, "{\"fraction\":0.04}", 1);
    cr_assert_str_eq(b, "[..........] 4%");
    fmt_json(b, sizeof b, "{\"fraction\":7.5}", 1);
    cr_assert_str_eq(b, "[##########] 100%");
    fmt_json(b, sizeof b, "{\"fraction\":-3}", 1);
    cr_assert_str_eq(b, "[..........] 0%");
    fmt_json(b, sizeof b, "{\"block\":0,\"iteration\":7,\"eta_s\":-1}", 0);
    cr_assert_str_eq(b, "?% block 0 iter 7");
}

Test(progress, malformed_input)
{
    char b[256];
    fmt_json(b, sizeof b, "{\"fraction\":\"half\",\"block\":\"2\",\"blocks\":5,\"loss\":null,"
             "\"iteration\":[1],\"eta_s\":{},\"stage\":\"a\\u001b[2Jb\"}", 1);
    cr_assert_str_eq(b, "[..........] ?% a?[2Jb");
    fmt_json(b, sizeof b, "[1,2,3]", 1);
    cr_assert_str_eq(b, "[..........] ?%");
    fmt_json(b, sizeof b, "null", 0);
    cr_assert_str_eq(b, "?%");
    fmt_json(b, sizeof b, "{\"fraction\":0.5,\"eta_s\":1e300,\"loss\":-1e-300}", 0);
    cr_assert_str_eq(b, "50% loss -1.0e-300 ETA ?");
    /* truncation never overflows */
    char small[9];
    memset(small, 'Z', sizeof small);
    fmt_json(small, 8, "{\"fraction\":0.46,\"block\":2,\"blocks\":5}", 1);
    cr_assert_eq(strlen(small), 7);
    cr_assert_eq(small[8], 'Z');
}

Test(format, sci_duration_size)
{
    char b[64];
    struct { double v; const char *s; } sci[] = {
        { 0.0012, "1.2e-3" }, { 1234, "1.2e3" }, { -0.5, "-5.0e-1" }, { 0, "0" }, { 1, "1.0e0" },
        { 9.96e-5, "1.0e-4" }, { 3.14159e12, "3.1e12" }, { 1.5e-100, "1.5e-100" },
    };
    for (size_t i = 0; i < sizeof sci / sizeof sci[0]; i++) {
        cli_fmt_sci(b, sizeof b, sci[i].v);
        cr_assert_str_eq(b, sci[i].s, "%g", sci[i].v);
    }
    cli_fmt_sci(b, sizeof b, NAN);
    cr_assert_str_eq(b, "nan");
    struct { double v; const char *s; } dur[] = {
        { 0, "0s" }, { 59.4, "59s" }, { 59.6, "1m00s" }, { 120, "2m00s" }, { 3599, "59m59s" },
        { 3600, "1h00m" }, { 3725, "1h02m" }, { 90000, "1d01h" }, { -1, "?" },
    };
    for (size_t i = 0; i < sizeof dur / sizeof dur[0]; i++) {
        cli_fmt_duration(b, sizeof b, dur[i].v);
        cr_assert_str_eq(b, dur[i].s, "%g", dur[i].v);
    }
    cli_fmt_duration(b, sizeof b, INFINITY);
    cr_assert_str_eq(b, "?");
    cli_fmt_size(b, sizeof b, 512);
    cr_assert_str_eq(b, "512 B");
    cli_fmt_size(b, sizeof b, 1536);
    cr_assert_str_eq(b, "1.5 KiB");
    cli_fmt_size(b, sizeof b, 3.0 * (1 << 30));
    cr_assert_str_eq(b, "3.0 GiB");
    cli_sanitize(b, sizeof b, "ok\x1b]0;pwn\x07 line\r\n");
    cr_assert_str_eq(b, "ok?]0;pwn? line");
}

/* ---------------------------------------------------------------- SSE */
typedef struct evlog {
    char buf[4096];
    int n;
    int stop_after;   /* return -1 after this many events (0 = never) */
} evlog_t;

static int on_ev(void *ud, const char *event, const char *data)
{
    evlog_t *l = ud;
    size_t k = strlen(l->buf);
    snprintf(l->buf + k, sizeof l->buf - k, "<%s|%s>", event, data);
    l->n++;
    return l->stop_after && l->n >= l->stop_after ? -1 : 0;
}

static const char stream1[] =
    ": keep-alive comment\n"
    "event: state\n"
    "data: {\"id\":7,\"state\":\"queued\"}\n"
    "\n"
    "event: progress\r\n"
    "data:{\"fraction\":0.5}\r\n"
    "id: 3\r\n"
    "retry: 1000\r\n"
    "\r\n"
    "event:progress\r"
    "data: line1\r"
    "data: line2\r"
    "\r"
    "event: nodata\n"
    "\n"
    "data\n"
    "\n"
    "data: tail without blank line";
static const char expect1[] =
    "<state|{\"id\":7,\"state\":\"queued\"}>"
    "<progress|{\"fraction\":0.5}>"
    "<progress|line1\nline2>"
    "<message|>";

Test(sse, whole_stream)
{
    evlog_t l = { .n = 0 };
    cli_sse_t s;
    cli_sse_init(&s, on_ev, &l);
    cr_assert_eq(cli_sse_feed(&s, stream1, sizeof stream1 - 1), 0);
    cli_sse_free(&s);
    cr_assert_str_eq(l.buf, expect1);
}

Test(sse, every_split_point)
{
    size_t n = sizeof stream1 - 1;
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b += 7) {   /* two cuts: three chunks */
            evlog_t l = { .n = 0 };
            cli_sse_t s;
            cli_sse_init(&s, on_ev, &l);
            cr_assert_eq(cli_sse_feed(&s, stream1, a), 0);
            cr_assert_eq(cli_sse_feed(&s, stream1 + a, b - a), 0);
            cr_assert_eq(cli_sse_feed(&s, stream1 + b, n - b), 0);
            cli_sse_free(&s);
            cr_assert_str_eq(l.buf, expect1, "split at %zu,%zu", a, b);
        }
    }
    /* one byte at a time */
    evlog_t l = { .n = 0 };
    cli_sse_t s;
    cli_sse_init(&s, on_ev, &l);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(cli_sse_feed(&s, stream1 + i, 1), 0);
    cli_sse_free(&s);
    cr_assert_str_eq(l.buf, expect1);
}

Test(sse, crlf_split_between_chunks_is_one_newline)
{
    /* "data: a\r" | "\n\r\n": must be one event "a", not an empty line in between */
    evlog_t l = { .n = 0 };
    cli_sse_t s;
    cli_sse_init(&s, on_ev, &l);
    cli_sse_feed(&s, "data: a\r", 8);
    cr_assert_eq(l.n, 0);
    cli_sse_feed(&s, "\n", 1);
    cr_assert_eq(l.n, 0, "CR|LF across chunks dispatched early");
    cli_sse_feed(&s, "\r\n", 2);
    cr_assert_eq(l.n, 1);
    cli_sse_free(&s);
    cr_assert_str_eq(l.buf, "<message|a>");
}

/* Property: for random byte streams (biased to the SSE alphabet), any chunking
 * gives the same events as one feed. */
Test(sse, random_streams_chunking_invariant)
{
    static const char *tok[] = { "data: ", "data:", "data", "event: ", "event:p", ": c", "id: 1",
                                 "\r\n", "\n", "\r", "\n\n", "abc", "{\"a\":1}", " ", ":" };
    uint32_t x = 42;
    int total = 0;
    for (int round = 0; round < 300; round++) {
        char buf[600];
        size_t n = 0;
        for (int t = 0; t < 60; t++) {
            x = x * 1664525u + 1013904223u;
            const char *w = tok[(x >> 16) % (sizeof tok / sizeof tok[0])];
            size_t l = strlen(w);
            if (n + l > sizeof buf)
                break;
            memcpy(buf + n, w, l);
            n += l;
        }
        evlog_t whole = { .n = 0 }, parts = { .n = 0 };
        cli_sse_t s;
        cli_sse_init(&s, on_ev, &whole);
        cr_assert_eq(cli_sse_feed(&s, buf, n), 0);
        cli_sse_free(&s);
        cli_sse_init(&s, on_ev, &parts);
        for (size_t i = 0; i < n;) {
            x = x * 1664525u + 1013904223u;
            size_t k = 1 + (x >> 16) % 9;
            if (k > n - i)
                k = n - i;
            cr_assert_eq(cli_sse_feed(&s, buf + i, k), 0);
            i += k;
        }
        cli_sse_free(&s);
        cr_assert_eq(whole.n, parts.n, "round %d", round);
        cr_assert_str_eq(whole.buf, parts.buf, "round %d", round);
        total += whole.n;
    }
    cr_assert_gt(total, 300, "the generator must produce events (%d)", total);
}

Test(sse, stop_and_bounds)
{
    evlog_t l = { .n = 0, .stop_after = 1 };
    cli_sse_t s;
    cli_sse_init(&s, on_ev, &l);
    cr_assert_lt(cli_sse_feed(&s, stream1, sizeof stream1 - 1), 0);
    cr_assert_eq(l.n, 1);
    cli_sse_free(&s);

    evlog_t l2 = { .n = 0 };
    cli_sse_init(&s, on_ev, &l2);
    s.max = 64;
    char big[200];
    memset(big, 'x', sizeof big);
    cr_assert_eq(cli_sse_feed(&s, big, sizeof big), LRQ_EFORMAT);
    cli_sse_free(&s);
    /* many data lines: the event, not only the line, is bounded */
    cli_sse_init(&s, on_ev, &l2);
    s.max = 64;
    int rc = 0;
    for (int i = 0; i < 20 && rc == 0; i++)
        rc = cli_sse_feed(&s, "data: 0123456789\n", 17);
    cr_assert_eq(rc, LRQ_EFORMAT);
    cli_sse_free(&s);
    cr_assert_eq(l2.n, 0);
}

/* ---------------------------------------------------------------- HTTP helpers */
Test(http, error_messages)
{
    char m[512];
    cli_resp_t r = { .status = 422 };
    r.body = strdup("{\"error\":{\"code\":\"invalid_spec\",\"message\":\"bits must be 2..8\","
                    "\"field\":\"weight.bits\"}}");
    r.len = strlen(r.body);
    r.json = json_loads(r.body, 0, NULL);
    cli_resp_errmsg(&r, m, sizeof m);
    cr_assert_str_eq(m, "bits must be 2..8 (field: weight.bits) [HTTP 422 invalid_spec]");
    cli_resp_free(&r);

    r = (cli_resp_t){ .status = 404 };
    r.body = strdup("{\"error\":{\"code\":\"not_found\",\"message\":\"no job 9\",\"field\":null}}");
    r.len = strlen(r.body);
    r.json = json_loads(r.body, 0, NULL);
    cli_resp_errmsg(&r, m, sizeof m);
    cr_assert_str_eq(m, "no job 9 [HTTP 404 not_found]");
    cli_resp_free(&r);

    r = (cli_resp_t){ .status = 502 };
    r.body = strdup("<html>Bad\r\nGateway</html>\n");
    r.len = strlen(r.body);
    cli_resp_errmsg(&r, m, sizeof m);
    cr_assert_str_eq(m, "<html>Bad  Gateway</html> [HTTP 502]");
    cli_resp_free(&r);

    r = (cli_resp_t){ .status = 401 };
    cli_resp_errmsg(&r, m, sizeof m);
    cr_assert(strstr(m, "--token") && strstr(m, "[HTTP 401]"), "%s", m);

    /* wrong types inside the error object */
    r = (cli_resp_t){ .status = 400 };
    r.body = strdup("{\"error\":{\"code\":5,\"message\":[\"x\"],\"field\":{}}}");
    r.len = strlen(r.body);
    r.json = json_loads(r.body, 0, NULL);
    cli_resp_errmsg(&r, m, sizeof m);
    cr_assert_str_eq(m, "bad request [HTTP 400]");
    cli_resp_free(&r);
}

Test(http, content_range_and_escape)
{
    long long a, b, t;
    cr_assert_eq(cli_content_range("bytes 100-199/1000", &a, &b, &t), 0);
    cr_assert(a == 100 && b == 199 && t == 1000);
    cr_assert_eq(cli_content_range("bytes */1000", &a, &b, &t), 0);
    cr_assert(a == -1 && t == 1000);
    cr_assert_eq(cli_content_range("bytes 0-9/*", &a, &b, &t), 0);
    cr_assert(a == 0 && b == 9 && t == -1);
    cr_assert_lt(cli_content_range("bytes 9-0/10", &a, &b, &t), 0);
    cr_assert_lt(cli_content_range("items 0-1/2", &a, &b, &t), 0);
    cr_assert_lt(cli_content_range("bytes 0-99999999999999999999/1", &a, &b, &t), 0);
    cr_assert_lt(cli_content_range(NULL, &a, &b, &t), 0);
    char *e = cli_path_escape("hf/model 1.safetensors");
    cr_assert_str_eq(e, "hf/model%201.safetensors");
    free(e);
    e = cli_path_escape("a/%2e%2e/?#");
    cr_assert_str_eq(e, "a/%252e%252e/%3F%23");
    free(e);
}

Test(state, exit_mapping)
{
    cr_assert_eq(cli_state_exit("succeeded"), 0);
    cr_assert_eq(cli_state_exit("failed"), 1);
    cr_assert_eq(cli_state_exit("cancelled"), 2);
    cr_assert_eq(cli_state_exit("running"), 3);
    cr_assert_eq(cli_state_exit(NULL), 3);
    cr_assert(cli_state_terminal("failed") && !cli_state_terminal("queued"));
}

/* ---------------------------------------------------------------- tables */
static char *print_with(void (*fn)(FILE *, const json_t *), const char *js)
{
    json_t *j = json_loads(js, JSON_DECODE_ANY, NULL);
    cr_assert(j, "bad fixture %s", js);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(f, j);
    fclose(f);
    json_decref(j);
    return buf;
}

Test(print, job_and_list)
{
    char *s = print_with(cli_print_job,
        "{\"id\":12,\"name\":null,\"state\":\"running\",\"method\":\"lrq\",\"priority\":0,"
        "\"attempts\":1,\"max_attempts\":3,\"created_at\":\"2026-11-23T12:00:00Z\","
        "\"started_at\":null,\"finished_at\":null,\"cancel_requested\":true,"
        "\"progress\":{\"fraction\":0.46,\"block\":2,\"blocks\":5,\"elapsed_s\":100},"
        "\"error\":null}");
    cr_assert(strstr(s, "state        running (cancel requested)\n"), "%s", s);
    cr_assert(strstr(s, "attempts     1/3\n"), "%s", s);
    cr_assert(strstr(s, "progress     [#####.....] 46% block 2/5 elapsed 1m40s\n"), "%s", s);
    cr_assert(strstr(s, "name         -\n"), "%s", s);
    free(s);
    s = print_with(cli_print_job_list,
        "[{\"id\":3,\"state\":\"failed\",\"method\":\"rtn\",\"error\":\"model: no such file\"},"
        " {\"id\":12,\"state\":\"running\",\"method\":\"lrq\",\"progress\":{\"fraction\":0.5}},"
        " 17, null, {\"id\":\"x\"}]");
    cr_assert(strstr(s, "model: no such file"), "%s", s);
    cr_assert(strstr(s, "50%"), "%s", s);
    cr_assert(strstr(s, " 3  failed"), "%s", s);
    free(s);
    s = print_with(cli_print_job_list, "[]");
    cr_assert_str_eq(s, "no jobs\n");
    free(s);
    s = print_with(cli_print_job, "\"not an object\"");   /* must not crash */
    cr_assert(strstr(s, "state"), "%s", s);
    free(s);
}

Test(print, metrics_and_artifacts)
{
    char *s = print_with(cli_print_metrics,
        "{\"fp_perplexity\":10.5,\"q_perplexity\":11.25,\"kl_divergence\":0.0123,"
        "\"top1_agreement\":0.91,\"eval\":{\"windows\":8,\"tokens\":2040},"
        "\"blocks\":[{\"block\":0,\"loss_start\":0.01,\"loss_end\":0.002},"
        "{\"block\":1,\"loss_start\":0.02,\"loss_end\":0.00004,\"seconds\":1.5}]}");
    cr_assert(strstr(s, "perplexity (float)"), "%s", s);
    cr_assert(strstr(s, "perplexity (quantized)"), "%s", s);
    cr_assert(strstr(s, "11.25"), "%s", s);
    cr_assert(strstr(s, "top-1 agreement"), "%s", s);
    cr_assert(strstr(s, "eval.windows"), "%s", s);
    cr_assert(strstr(s, "blocks:\n"), "%s", s);
    cr_assert(strstr(s, "loss_end"), "%s", s);
    cr_assert(strstr(s, "    1        0.02    4.0e-5      1.5\n"), "%s", s);
    cr_assert(strstr(s, "    0        0.01     0.002        -\n"), "%s", s);
    free(s);
    /* the worker's layout (worker/wk_run.c): headline first, nothing twice */
    s = print_with(cli_print_metrics,
        "{\"method\":\"rtn\",\"layers\":[{\"name\":\"layers.0.wq\",\"weight_rel_error\":0.05}],"
        "\"fp\":{\"perplexity\":9.5,\"tokens\":2040},\"quantized\":{\"perplexity\":9.75,"
        "\"kl_divergence\":0.02,\"top1_agreement\":0.9,\"tokens\":2040}}");
    cr_assert(strstr(s, "perplexity (float)          9.5\nperplexity (quantized)      9.75\n"
                        "KL(float||quantized)/token  0.02\ntop-1 agreement             0.9\n"
                        "method                      rtn\nfp.tokens                   2040\n"
                        "quantized.tokens            2040\n\nlayers:\n"), "%s", s);
    cr_assert(strstr(s, "name         weight_rel_error\nlayers.0.wq              0.05\n"), "%s", s);
    free(s);
    s = print_with(cli_print_metrics, "{\"block_losses\":[0.5,0.25]}");
    cr_assert(strstr(s, "block_losses:\nINDEX  VALUE\n    0    0.5\n    1   0.25\n"), "%s", s);
    free(s);
    s = print_with(cli_print_metrics, "42");
    cr_assert_str_eq(s, "no metrics\n");
    free(s);
    s = print_with(cli_print_artifacts,
        "[{\"path\":\"hf/model.safetensors\",\"size\":1536,\"sha256\":\"ab\"},"
        " {\"path\":5,\"size\":\"big\"}]");
    cr_assert(strstr(s, "hf/model.safetensors  1.5 KiB  ab\n"), "%s", s);
    cr_assert(strstr(s, "2 artifacts, 1.5 KiB\n"), "%s", s);
    free(s);
}
