/* cli_cmd.c — the lrqctl subcommands. Each returns the process exit code.
 * Server errors print "lrqctl: MESSAGE (field: F) [HTTP S CODE]" on stderr
 * (and, with -o json, {"error":…,"http_status":S} on stdout). */
#include "lrq_buf.h"
#include "lrq_clock.h"
#include "lrq_sha256.h"
#include "cli.h"
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CLI_SPEC_MAX (16u << 20)

/* ---------------------------------------------------------------- helpers */
int cli_state_terminal(const char *s)
{
    return s && (strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0 ||
                 strcmp(s, "cancelled") == 0);
}

int cli_state_exit(const char *s)
{
    if (s && strcmp(s, "succeeded") == 0) return CLI_EXIT_OK;
    if (s && strcmp(s, "failed") == 0) return CLI_EXIT_FAIL;
    if (s && strcmp(s, "cancelled") == 0) return CLI_EXIT_CANCELLED;
    return CLI_EXIT_COMM;
}

static int json_out(const cli_ctx_t *c)
{
    return c->args->out == CLI_OUT_JSON;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static double now_s(void) { return lrq_mono_s(); }

static void report_http_error(cli_ctx_t *c, const cli_resp_t *r)
{
    char msg[1024];
    cli_resp_errmsg(r, msg, sizeof msg);
    fprintf(c->err, "lrqctl: %s\n", msg);
    if (json_out(c)) {
        json_t *e = r->json && json_is_object(r->json) ? json_object_get(r->json, "error") : NULL;
        json_t *o = json_pack("{s:O?,s:I}", "error", e, "http_status", (json_int_t)r->status);
        if (o && !e)
            json_object_set_new(o, "error", json_pack("{s:s}", "message", msg));
        cli_json_print(c->out, o, 0);
        json_decref(o);
    }
}

static void report_malformed(cli_ctx_t *c, const char *what)
{
    fprintf(c->err, "lrqctl: malformed response from the server (%s)\n", what);
}

/* Transport error → message, -1; non-2xx → message, -2; 0 on 2xx. */
static int api(cli_ctx_t *c, const char *method, const char *path, const char *body,
               size_t blen, cli_resp_t *r)
{
    lrq_err_t e;
    cli_req_t req = { .method = method, .path = path, .body = body, .body_len = blen,
                      .accept = "application/json" };
    if (cli_http_do(&c->http, &req, r, &e) < 0) {
        fprintf(c->err, "lrqctl: %s\n", e.msg);
        return -1;
    }
    if (r->status < 200 || r->status >= 300) {
        report_http_error(c, r);
        return -2;
    }
    return 0;
}

/* GET a JSON document that must be an object. */
static int api_get_obj(cli_ctx_t *c, const char *path, cli_resp_t *r)
{
    int rc = api(c, "GET", path, NULL, 0, r);
    if (rc == 0 && !json_is_object(r->json)) {
        report_malformed(c, "expected a JSON object");
        return -3;
    }
    return rc;
}

/* ---------------------------------------------------------------- follow */
enum { SHOW_NONE, SHOW_PLAIN, SHOW_TTY, SHOW_JSON };

typedef struct follow {
    cli_ctx_t *c;
    long id;
    int show;
    int cols;              /* terminal width (SHOW_TTY) */
    json_t *job;           /* last job object seen (owned) */
    char state[32];
    char last[512];        /* last progress line shown (dedupe) */
    int bar_on;            /* a progress line is on screen (TTY) */
    int done;
    int sse_ok;
    cli_sse_t sse;
} follow_t;

static void follow_progress(follow_t *f, const json_t *p)
{
    char line[512];
    if (!p || !json_is_object(p))
        return;
    cli_progress_format(line, sizeof line, p, f->show == SHOW_TTY);
    if (strcmp(line, f->last) == 0)
        return;
    snprintf(f->last, sizeof f->last, "%s", line);
    FILE *o = f->c->out;
    switch (f->show) {
    case SHOW_TTY:
        if (f->cols > 8 && strlen(line) >= (size_t)f->cols)
            line[f->cols - 1] = '\0';
        fprintf(o, "\r%s\033[K", line);
        f->bar_on = 1;
        break;
    case SHOW_PLAIN:
        fprintf(o, "job %ld: %s\n", f->id, line);
        break;
    case SHOW_JSON: {
        json_t *ev = json_pack("{s:s,s:O}", "event", "progress", "data", (json_t *)p);
        cli_json_print(o, ev, 1);
        json_decref(ev);
        break;
    }
    default:
        break;
    }
    fflush(o);
}

/* A job object arrived (SSE "state" event or a poll). Consumes nothing. */
static void follow_job(follow_t *f, json_t *job)
{
    const char *st = cli_jstr(job, "state");
    if (!st)
        return;
    json_incref(job);
    json_decref(f->job);
    f->job = job;
    FILE *o = f->c->out;
    if (strcmp(st, f->state) != 0) {
        snprintf(f->state, sizeof f->state, "%s", st);
        if (f->show == SHOW_TTY || f->show == SHOW_PLAIN) {
            char s[32], e[512] = "";
            cli_sanitize(s, sizeof s, st);
            const char *err = cli_jstr(job, "error");
            if (err && strcmp(st, "failed") == 0)
                cli_sanitize(e, sizeof e, err);
            fprintf(o, "%sjob %ld: %s%s%s\n", f->bar_on ? "\n" : "", f->id, s, *e ? ": " : "", e);
            f->bar_on = 0;
            f->last[0] = '\0';
        } else if (f->show == SHOW_JSON) {
            json_t *ev = json_pack("{s:s,s:O}", "event", "state", "data", job);
            cli_json_print(o, ev, 1);
            json_decref(ev);
        }
        fflush(o);
    }
    if (strcmp(st, "running") == 0)
        follow_progress(f, json_object_get(job, "progress"));
    if (cli_state_terminal(st))
        f->done = 1;
}

static int on_sse_event(void *ud, const char *event, const char *data)
{
    follow_t *f = ud;
    json_t *j = json_loads(data, 0, NULL);
    if (!j)
        return 0;   /* a broken event is skipped, not fatal */
    if (strcmp(event, "state") == 0 && json_is_object(j))
        follow_job(f, j);
    else if (strcmp(event, "progress") == 0 && json_is_object(j) && !cli_state_terminal(f->state))
        follow_progress(f, j);
    json_decref(j);
    return f->done ? -1 : 0;
}

static int sse_start(void *ud, const cli_resp_t *r)
{
    follow_t *f = ud;
    if (strncmp(r->content_type, "text/event-stream", 17) != 0)
        return -1;
    f->sse_ok = 1;
    return 0;
}

static int sse_data(void *ud, const char *p, size_t n)
{
    follow_t *f = ud;
    return cli_sse_feed(&f->sse, p, n) < 0 ? -1 : 0;
}

/* Follow job `id` until it reaches a terminal state. Returns 0 (f->job is
 * the final job object) or -1 after printing why the outcome is unknown. */
static int follow(cli_ctx_t *c, long id, int show, follow_t *f)
{
    memset(f, 0, sizeof *f);
    f->c = c;
    f->id = id;
    f->show = show;
    if (show == SHOW_TTY) {
        struct winsize ws;
        if (ioctl(fileno(c->out), TIOCGWINSZ, &ws) == 0)
            f->cols = ws.ws_col;
    }
    char path[96];
    lrq_err_t e;
    cli_resp_t r;

    /* 1. the event stream */
    snprintf(path, sizeof path, "/v1/jobs/%ld/events", id);
    cli_sse_init(&f->sse, on_sse_event, f);
    cli_sink_t sink = { sse_start, sse_data, f };
    cli_req_t req = { .method = "GET", .path = path, .accept = "text/event-stream",
                      .sink = &sink, .stream = 1 };
    cli_http_do(&c->http, &req, &r, &e);
    cli_resp_free(&r);
    cli_sse_free(&f->sse);
    if (f->done)
        return 0;

    /* 2. polling, tolerant of a daemon restart (up to env->retries failures) */
    snprintf(path, sizeof path, "/v1/jobs/%ld", id);
    int fails = 0;
    long poll_ms = c->env->poll_ms > 0 ? c->env->poll_ms : 1000;
    int retries = c->env->retries > 0 ? c->env->retries : 10;
    for (;;) {
        req = (cli_req_t){ .method = "GET", .path = path, .accept = "application/json" };
        int rc = cli_http_do(&c->http, &req, &r, &e);
        const char *why = NULL;
        char msg[1024];
        if (rc < 0) {
            snprintf(msg, sizeof msg, "%s", e.msg);
            why = msg;
        } else if (r.status >= 500) {
            cli_resp_errmsg(&r, msg, sizeof msg);
            why = msg;
        } else if (r.status < 200 || r.status >= 300) {
            /* the server answered: the job is gone, or we may not see it */
            if (f->bar_on)
                fputc('\n', c->out);
            report_http_error(c, &r);
            cli_resp_free(&r);
            return -1;
        } else if (!cli_jstr(r.json, "state")) {
            why = "malformed job object from the server";
        }
        if (why) {
            cli_resp_free(&r);
            if (++fails > retries) {
                if (f->bar_on)
                    fputc('\n', c->out);
                fprintf(c->err, "lrqctl: giving up on job %ld: %s\n", id, why);
                return -1;
            }
            sleep_ms(poll_ms);
            continue;
        }
        fails = 0;
        follow_job(f, r.json);
        cli_resp_free(&r);
        if (f->done)
            return 0;
        sleep_ms(poll_ms);
    }
}

static int show_mode(cli_ctx_t *c)
{
    if (json_out(c))
        return SHOW_JSON;
    return c->env->out_tty ? SHOW_TTY : SHOW_PLAIN;
}

/* watch and wait exit alike, by the final state (0/1/2, 3 when it could not be
 * learned), so that `lrqctl watch ID && next-step` does what it reads as. */
static int follow_cmd(cli_ctx_t *c, long id, int show)
{
    follow_t f;
    int rc = follow(c, id, show, &f);
    int code;
    if (rc < 0) {
        code = CLI_EXIT_COMM;
    } else {
        code = cli_state_exit(f.state);
        if (show == SHOW_NONE && json_out(c))
            cli_json_print(c->out, f.job, 0);
        else if (show == SHOW_NONE) {
            char e[512] = "";
            const char *err = cli_jstr(f.job, "error");
            if (err && strcmp(f.state, "failed") == 0)
                cli_sanitize(e, sizeof e, err);
            fprintf(c->out, "job %ld: %s%s%s\n", id, f.state, *e ? ": " : "", e);
        }
    }
    json_decref(f.job);
    return code;
}

int cli_cmd_watch(cli_ctx_t *c)
{
    return follow_cmd(c, c->args->id, show_mode(c));
}

int cli_cmd_wait(cli_ctx_t *c)
{
    return follow_cmd(c, c->args->id, SHOW_NONE);
}

/* ---------------------------------------------------------------- jobs */
/* All of f (a spec file or stdin, which may be a pipe), at most max bytes. */
static char *read_all(FILE *f, size_t max, size_t *len)
{
    lrq_buf_t b = {0};
    char chunk[8192];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + k > max) { lrq_buf_free(&b); errno = EFBIG; return NULL; }
        if (lrq_buf_append(&b, chunk, k)) { lrq_buf_free(&b); errno = ENOMEM; return NULL; }
    }
    if (ferror(f)) { lrq_buf_free(&b); return NULL; }
    return lrq_buf_take(&b, len);
}

int cli_cmd_submit(cli_ctx_t *c)
{
    const char *fn = c->args->pos[0];
    FILE *in = strcmp(fn, "-") == 0 ? stdin : fopen(fn, "rb");
    if (!in) {
        fprintf(c->err, "lrqctl: %s: %s\n", fn, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    size_t len = 0;
    char *spec = read_all(in, CLI_SPEC_MAX, &len);
    int e = errno;
    if (in != stdin)
        fclose(in);
    if (!spec) {
        fprintf(c->err, "lrqctl: %s: %s\n", fn, strerror(e));
        return CLI_EXIT_FAIL;
    }
    json_error_t je;
    json_t *j = json_loadb(spec, len, 0, &je);
    if (!j || !json_is_object(j)) {
        fprintf(c->err, "lrqctl: %s: %s (line %d, column %d)\n", fn,
                j ? "the job spec must be a JSON object" : je.text, je.line, je.column);
        json_decref(j);
        free(spec);
        return CLI_EXIT_FAIL;
    }
    json_decref(j);
    cli_resp_t r;
    int rc = api(c, "POST", "/v1/jobs", spec, len, &r);
    free(spec);
    long long id;
    if (rc == 0 && !(cli_jint(r.json, "id", &id) && id > 0)) {
        report_malformed(c, "no job id in the reply to POST /v1/jobs");
        rc = -3;
    }
    if (rc) {
        cli_resp_free(&r);
        return CLI_EXIT_FAIL;
    }
    if (json_out(c)) {
        if (c->args->wait)
            cli_json_print(c->out, r.json, 1);
        else
            cli_body_print(c->out, &r);
    } else {
        fprintf(c->out, "%lld\n", id);
    }
    fflush(c->out);
    cli_resp_free(&r);
    if (!c->args->wait)
        return CLI_EXIT_OK;
    return follow_cmd(c, (long)id, show_mode(c));
}

int cli_cmd_status(cli_ctx_t *c)
{
    char path[64];
    cli_resp_t r;
    snprintf(path, sizeof path, "/v1/jobs/%ld", c->args->id);
    int rc = api_get_obj(c, path, &r);
    if (rc == 0) {
        if (json_out(c))
            cli_body_print(c->out, &r);
        else
            cli_print_job(c->out, r.json);
    }
    cli_resp_free(&r);
    return rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cli_cmd_list(cli_ctx_t *c)
{
    const cli_args_t *a = c->args;
    char path[256];
    int k = snprintf(path, sizeof path, "/v1/jobs");
    char sep = '?';
    if (a->state)
        k += snprintf(path + k, sizeof path - k, "%cstate=%s", sep, a->state), sep = '&';
    if (a->limit)
        k += snprintf(path + k, sizeof path - k, "%climit=%ld", sep, a->limit), sep = '&';
    if (a->after)
        snprintf(path + k, sizeof path - k, "%cafter=%ld", sep, a->after);
    cli_resp_t r;
    int rc = api_get_obj(c, path, &r);
    json_t *jobs = rc == 0 ? json_object_get(r.json, "jobs") : NULL;
    if (rc == 0 && !json_is_array(jobs)) {
        report_malformed(c, "no \"jobs\" array");
        rc = -3;
    }
    if (rc == 0) {
        if (json_out(c)) {
            cli_body_print(c->out, &r);
        } else {
            cli_print_job_list(c->out, jobs);
            long long next;
            long lim = a->limit ? a->limit : 50;
            if (cli_jint(r.json, "next_after", &next) && json_array_size(jobs) >= (size_t)lim)
                fprintf(c->err, "(more: lrqctl list --after %lld%s%s)\n", next,
                        a->state ? " --state " : "", a->state ? a->state : "");
        }
    }
    cli_resp_free(&r);
    return rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cli_cmd_cancel(cli_ctx_t *c)
{
    char path[64];
    cli_resp_t r;
    snprintf(path, sizeof path, "/v1/jobs/%ld/cancel", c->args->id);
    int rc = api(c, "POST", path, NULL, 0, &r);
    if (rc == 0) {
        if (json_out(c)) {
            cli_body_print(c->out, &r);
        } else {
            const char *st = cli_jstr(r.json, "state");
            char s[32];
            cli_sanitize(s, sizeof s, st ? st : "?");
            if (st && strcmp(st, "cancelled") != 0 && json_is_true(json_object_get(r.json, "cancel_requested")))
                fprintf(c->out, "job %ld: cancel requested (%s)\n", c->args->id, s);
            else
                fprintf(c->out, "job %ld: %s\n", c->args->id, s);
        }
    }
    cli_resp_free(&r);
    return rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cli_cmd_delete(cli_ctx_t *c)
{
    char path[64];
    cli_resp_t r;
    snprintf(path, sizeof path, "/v1/jobs/%ld", c->args->id);
    int rc = api(c, "DELETE", path, NULL, 0, &r);
    if (rc == 0) {
        if (json_out(c)) {
            json_t *o = json_pack("{s:I,s:b}", "id", (json_int_t)c->args->id, "deleted", 1);
            cli_json_print(c->out, o, 0);
            json_decref(o);
        } else {
            fprintf(c->out, "job %ld deleted\n", c->args->id);
        }
    }
    cli_resp_free(&r);
    return rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cli_cmd_metrics(cli_ctx_t *c)
{
    char path[64];
    cli_resp_t r;
    snprintf(path, sizeof path, "/v1/jobs/%ld/metrics", c->args->id);
    int rc = api(c, "GET", path, NULL, 0, &r);
    if (rc == 0 && !r.json) {
        report_malformed(c, "metrics are not JSON");
        rc = -3;
    }
    if (rc == 0) {
        if (json_out(c))
            cli_body_print(c->out, &r);
        else
            cli_print_metrics(c->out, r.json);
    }
    cli_resp_free(&r);
    return rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cli_cmd_artifacts(cli_ctx_t *c)
{
    char path[64];
    cli_resp_t r;
    snprintf(path, sizeof path, "/v1/jobs/%ld/artifacts", c->args->id);
    int rc = api_get_obj(c, path, &r);
    json_t *arts = rc == 0 ? json_object_get(r.json, "artifacts") : NULL;
    if (rc == 0 && !json_is_array(arts)) {
        report_malformed(c, "no \"artifacts\" array");
        rc = -3;
    }
    if (rc == 0) {
        if (json_out(c))
            cli_body_print(c->out, &r);
        else
            cli_print_artifacts(c->out, arts);
    }
    cli_resp_free(&r);
    return rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* ---------------------------------------------------------------- logs */
typedef struct logsink {
    FILE *out;
    long long skip;       /* bytes to drop (server ignored our Range) */
    long long got;        /* bytes written */
} logsink_t;

static int log_start(void *ud, const cli_resp_t *r)
{
    logsink_t *l = ud;
    if (r->status != 206)
        return 0;
    l->skip = 0;   /* honoured: the body starts where we asked */
    return 0;
}

static int log_data(void *ud, const char *p, size_t n)
{
    logsink_t *l = ud;
    if (l->skip > 0) {
        size_t k = (long long)n < l->skip ? n : (size_t)l->skip;
        l->skip -= (long long)k;
        p += k;
        n -= k;
    }
    if (n && fwrite(p, 1, n, l->out) != n)
        return -1;
    l->got += (long long)n;
    return 0;
}

int cli_cmd_logs(cli_ctx_t *c)
{
    char path[64], jpath[64], range[32];
    long id = c->args->id;
    snprintf(path, sizeof path, "/v1/jobs/%ld/log", id);
    snprintf(jpath, sizeof jpath, "/v1/jobs/%ld", id);
    long long off = 0;
    long poll_ms = c->env->poll_ms > 0 ? c->env->poll_ms : 1000;
    int finished_seen = 0;
    for (;;) {
        logsink_t l = { c->out, off, 0 };
        cli_sink_t sink = { log_start, log_data, &l };
        snprintf(range, sizeof range, "%lld-", off);
        cli_req_t req = { .method = "GET", .path = path, .accept = "text/plain",
                          .sink = &sink, .stream = 1, .range = off > 0 ? range : NULL };
        cli_resp_t r;
        lrq_err_t e;
        if (cli_http_do(&c->http, &req, &r, &e) < 0) {
            fprintf(c->err, "lrqctl: %s\n", e.msg);
            cli_resp_free(&r);
            return CLI_EXIT_FAIL;
        }
        int no_log_yet = r.status == 404 && c->args->follow && off == 0;
        if ((r.status < 200 || r.status >= 300) && r.status != 416 && !no_log_yet) {
            report_http_error(c, &r);
            cli_resp_free(&r);
            return CLI_EXIT_FAIL;
        }
        cli_resp_free(&r);
        off += l.got;
        fflush(c->out);
        if (!c->args->follow)
            return CLI_EXIT_OK;
        if (finished_seen && l.got == 0)
            return CLI_EXIT_OK;
        /* Is the job still going? One more read after it finished catches the tail. */
        if (api_get_obj(c, jpath, &r) != 0) {
            cli_resp_free(&r);
            return CLI_EXIT_FAIL;
        }
        finished_seen = cli_state_terminal(cli_jstr(r.json, "state"));
        cli_resp_free(&r);
        if (!finished_seen)
            sleep_ms(poll_ms);
    }
}

/* ---------------------------------------------------------------- download */

typedef struct dl {
    cli_ctx_t *c;
    int fd;
    const char *file;
    long long off;         /* bytes asked to skip (Range start) */
    long long pos;         /* bytes in the file so far */
    long long total;       /* expected total or -1 */
    int restarted;         /* server ignored Range: started over */
    int err;               /* errno of a failed write, or -1 bad Content-Range */
    int tty;
    double last_draw;
} dl_t;

static int dl_start(void *ud, const cli_resp_t *r)
{
    dl_t *d = ud;
    if (r->status == 206) {
        long long a, b, t;
        if (cli_content_range(r->content_range, &a, &b, &t) < 0 || a != d->off) {
            d->err = -1;
            return -1;
        }
        if (t >= 0)
            d->total = t;
        d->pos = d->off;
    } else {
        /* 200: the whole file; start over */
        if (d->off > 0)
            d->restarted = 1;
        if (ftruncate(d->fd, 0) < 0) {
            d->err = errno;
            return -1;
        }
        d->pos = 0;
        if (r->content_length >= 0)
            d->total = r->content_length;
    }
    if (lseek(d->fd, d->pos, SEEK_SET) < 0) {
        d->err = errno;
        return -1;
    }
    return 0;
}

static int dl_data(void *ud, const char *p, size_t n)
{
    dl_t *d = ud;
    while (n) {
        ssize_t k = write(d->fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            d->err = errno;
            return -1;
        }
        p += k;
        n -= (size_t)k;
        d->pos += k;
    }
    if (d->tty) {
        double t = now_s();
        if (t - d->last_draw > 0.2) {
            char a[32], b[32] = "?";
            cli_fmt_size(a, sizeof a, (double)d->pos);
            if (d->total > 0)
                cli_fmt_size(b, sizeof b, (double)d->total);
            fprintf(d->c->err, "\r%s: %s / %s\033[K", d->file, a, b);
            d->last_draw = t;
        }
    }
    return 0;
}

static const char *path_base(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int cli_cmd_download(cli_ctx_t *c)
{
    long id = c->args->id;
    const char *apath = c->args->pos[1];
    const char *file = c->args->file ? c->args->file : path_base(apath);
    if (!*apath || !*file || strcmp(file, ".") == 0 || strcmp(file, "..") == 0) {
        fprintf(c->err, "lrqctl: cannot derive a file name from '%s': use -o FILE\n", apath);
        return CLI_EXIT_USAGE;
    }
    /* 1. what to expect, from the listing */
    char path[4200], want_sha[65] = "";
    long long want_size = -1;
    cli_resp_t r;
    lrq_err_t e;
    snprintf(path, sizeof path, "/v1/jobs/%ld/artifacts", id);
    cli_req_t req = { .method = "GET", .path = path, .accept = "application/json" };
    if (cli_http_do(&c->http, &req, &r, &e) < 0) {
        fprintf(c->err, "lrqctl: %s\n", e.msg);
        cli_resp_free(&r);
        return CLI_EXIT_FAIL;
    }
    if (r.status == 200) {
        json_t *arts = json_object_get(r.json, "artifacts"), *a;
        size_t i;
        int listed = 0;
        if (json_is_array(arts)) {
            json_array_foreach(arts, i, a) {
                const char *p = cli_jstr(a, "path"), *h = cli_jstr(a, "sha256");
                if (!p || strcmp(p, apath) != 0)
                    continue;
                listed = 1;
                if (h && strlen(h) == 64 && strspn(h, "0123456789abcdefABCDEF") == 64) {
                    for (int k = 0; k < 65; k++)
                        want_sha[k] = (char)(h[k] >= 'A' && h[k] <= 'F' ? h[k] + 32 : h[k]);
                }
                cli_jint(a, "size", &want_size);
            }
            if (!listed) {
                char sp[256];
                cli_sanitize(sp, sizeof sp, apath);
                fprintf(c->err, "lrqctl: job %ld has no artifact '%s' (see: lrqctl artifacts %ld)\n",
                        id, sp, id);
                cli_resp_free(&r);
                return CLI_EXIT_FAIL;
            }
        }
    }
    cli_resp_free(&r);
    if (!*want_sha)
        fprintf(c->err, "lrqctl: warning: no sha256 for '%s' in the artifact listing; "
                "the download will not be verified\n", apath);

    /* 2. resume from what is on disk */
    int created = 1;
    int fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) {
        created = 0;
        fd = open(file, O_RDWR | O_CLOEXEC);
    }
    if (fd < 0) {
        fprintf(c->err, "lrqctl: %s: %s\n", file, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        fprintf(c->err, "lrqctl: %s: not a regular file\n", file);
        close(fd);
        return CLI_EXIT_FAIL;
    }
    long long start = st.st_size;
    if (want_size >= 0 && start > want_size)
        start = 0;   /* not a prefix of this artifact: start over */
    char *esc = cli_path_escape(apath);
    if (!esc) {
        close(fd);
        fprintf(c->err, "lrqctl: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    snprintf(path, sizeof path, "/v1/jobs/%ld/artifacts/%s", id, esc);
    free(esc);
    dl_t d = { .c = c, .fd = fd, .file = file, .total = want_size, .tty = c->env->out_tty };
    int rc = 0, complete = want_size >= 0 && start == want_size, already = complete;
    for (int attempt = 0; !complete && attempt < 2; attempt++) {
        char range[32];
        snprintf(range, sizeof range, "%lld-", start);
        d.off = start;
        d.err = 0;
        cli_sink_t sink = { dl_start, dl_data, &d };
        req = (cli_req_t){ .method = "GET", .path = path, .sink = &sink, .stream = 1,
                           .range = start > 0 ? range : NULL };
        rc = cli_http_do(&c->http, &req, &r, &e);
        if (d.tty && d.last_draw > 0)
            fputc('\n', c->err);
        if (d.err) {
            fprintf(c->err, "lrqctl: %s: %s\n", file,
                    d.err < 0 ? "bad Content-Range from the server" : strerror(d.err));
            rc = -1;
        } else if (rc < 0) {
            fprintf(c->err, "lrqctl: %s\nlrqctl: %s: download interrupted at %lld bytes; "
                    "run the same command again to resume\n", e.msg, file, d.pos);
        } else if (r.status == 416 && start > 0) {
            long long a, b, t;
            if (cli_content_range(r.content_range, &a, &b, &t) == 0 && t == start) {
                complete = already = 1;   /* we had all of it */
            } else {
                start = 0;      /* our partial file is longer than the artifact */
                if (ftruncate(fd, 0) < 0)
                    rc = -1;
                cli_resp_free(&r);
                continue;
            }
        } else if (r.status < 200 || r.status >= 300) {
            report_http_error(c, &r);
            rc = -1;
        } else {
            complete = 1;
        }
        cli_resp_free(&r);
        break;
    }
    if (close(fd) < 0 && rc == 0) {
        fprintf(c->err, "lrqctl: %s: %s\n", file, strerror(errno));
        rc = -1;
    }
    if (rc < 0 || !complete) {
        if (created && d.pos == 0)
            unlink(file);   /* nothing arrived: leave no empty file behind */
        return CLI_EXIT_FAIL;
    }

    /* 3. verify */
    char got[65];
    if (lrq_sha256_file(file, got, NULL, &e) < 0) {
        fprintf(c->err, "lrqctl: %s\n", e.msg);
        return CLI_EXIT_FAIL;
    }
    if (*want_sha && strcmp(got, want_sha) != 0) {
        unlink(file);
        fprintf(c->err, "lrqctl: %s: sha256 mismatch (got %s, listing says %s); "
                "the file was removed, download again\n", file, got, want_sha);
        return CLI_EXIT_FAIL;
    }
    if (stat(file, &st) < 0)
        st.st_size = 0;
    if (json_out(c)) {
        json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:b,s:s,s:b}", "path", apath, "file", file,
                              "size", (json_int_t)st.st_size,
                              "resumed_from", (json_int_t)(d.restarted ? 0 : start),
                              "restarted", d.restarted, "sha256", got, "verified", *want_sha != 0);
        cli_json_print(c->out, o, 0);
        json_decref(o);
    } else {
        char sz[32];
        cli_fmt_size(sz, sizeof sz, (double)st.st_size);
        fprintf(c->out, "%s: %s%s, sha256 %s%s\n", file, sz,
                already ? " (already complete)" : start > 0 && !d.restarted ? " (resumed)" : "", got,
                *want_sha ? " verified" : " (not verified)");
    }
    return CLI_EXIT_OK;
}

/* ---------------------------------------------------------------- token */
int cli_token_role_ok(const char *r)
{
    return r && (strcmp(r, "submit") == 0 || strcmp(r, "read") == 0 || strcmp(r, "admin") == 0);
}

int cli_token_name_ok(const char *n)
{
    if (!n || !*n || strlen(n) > 64)
        return 0;
    for (; *n; n++)
        if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || (*n >= '0' && *n <= '9') ||
              *n == '.' || *n == '_' || *n == '-'))
            return 0;
    return 1;
}

int cli_cmd_token(cli_ctx_t *c)
{
    const char *name = c->args->pos[1], *role = c->args->pos[2];
    if (!cli_token_name_ok(name)) {
        fprintf(c->err, "lrqctl: token NAME must be 1-64 of [A-Za-z0-9._-], got '%.100s'\n", name);
        return CLI_EXIT_USAGE;
    }
    if (!cli_token_role_ok(role)) {
        fprintf(c->err, "lrqctl: token ROLE must be submit, read or admin, got '%.100s'\n", role);
        return CLI_EXIT_USAGE;
    }
    uint8_t raw[32];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    while (fd >= 0 && got < sizeof raw) {
        ssize_t k = read(fd, raw + got, sizeof raw - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (fd >= 0)
        close(fd);
    if (got != sizeof raw) {
        fprintf(c->err, "lrqctl: cannot read /dev/urandom\n");
        return CLI_EXIT_FAIL;
    }
    char tok[65], sha[65];
    for (int i = 0; i < 32; i++)
        snprintf(tok + 2 * i, 3, "%02x", raw[i]);
    lrq_sha256_hex(tok, 64, sha);
    if (json_out(c)) {
        char line[256];
        snprintf(line, sizeof line, "%s:%s:%s", name, role, sha);
        json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "name", name, "role", role, "token", tok,
                              "line", line);
        cli_json_print(c->out, o, 0);
        json_decref(o);
    } else {
        fprintf(c->out, "%s\n%s:%s:%s\n", tok, name, role, sha);
        fprintf(c->err, "# line 1: the token (give it to the client: --token or LRQ_TOKEN; it is "
                "not stored anywhere)\n# line 2: append it to lrqd's --token-file\n");
    }
    return CLI_EXIT_OK;
}
