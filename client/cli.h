/* cli.h — lrqctl internals: argument parsing, HTTP (libcurl), SSE parsing,
 * printing, and the subcommands. Everything except client/lrqctl.c (main) is
 * linked into the tests, so nothing here touches global mutable state or
 * calls exit(): the entry point is cli_main(), which returns the exit code. */
#ifndef LRQ_CLI_H
#define LRQ_CLI_H
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <curl/curl.h>
#include <jansson.h>
#include "lrq_err.h"

/* ---------------------------------------------------------------- exit codes */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,      /* server said no, bad response, local I/O; wait: job failed */
    CLI_EXIT_CANCELLED = 2, /* wait: job cancelled */
    CLI_EXIT_COMM = 3,      /* wait: could not learn the job's outcome from the server */
    CLI_EXIT_USAGE = 64,    /* EX_USAGE */
};

#define CLI_DEFAULT_SERVER "http://127.0.0.1:8470"

/* ---------------------------------------------------------------- arguments */
typedef enum { CLI_OUT_TABLE = 0, CLI_OUT_JSON = 1 } cli_out_t;

typedef struct cli_cmd cli_cmd_t;

typedef struct cli_args {
    const char *server;      /* --server, else LRQ_SERVER, else CLI_DEFAULT_SERVER */
    const char *token;       /* --token, else LRQ_TOKEN, else NULL */
    cli_out_t out;
    const cli_cmd_t *cmd;    /* NULL with help set: general help */
    int help;                /* --help / help [CMD]: print help for cmd (or general) */
    int version;
    const char *pos[3];      /* positional arguments of the command */
    int npos;
    long id;                 /* pos[0] parsed, for commands taking a job ID */
    /* command flags */
    int wait;                /* submit --wait */
    int follow;              /* logs --follow */
    const char *state;       /* list --state */
    long limit, after;       /* list --limit/--after (0 = not given) */
    const char *file;        /* download -o FILE */
} cli_args_t;

/* Parse argv (argv[0] is the program name). env_server/env_token are the
 * LRQ_SERVER / LRQ_TOKEN values (may be NULL). Returns 0, or CLI_EXIT_USAGE
 * with a one-line reason in msg. Strings in *a point into argv. */
int cli_args_parse(int argc, char **argv, const char *env_server, const char *env_token,
                   cli_args_t *a, char *msg, size_t msglen);

/* ---------------------------------------------------------------- HTTP */
typedef struct cli_http {
    CURL *curl;               /* one handle, reused: keeps the connection alive */
    char *base;               /* "http://host:port" without trailing slash */
    struct curl_slist *auth;  /* "Authorization: Bearer …" or NULL */
    long timeout_s;           /* whole-request timeout for non-streaming calls */
} cli_http_t;

typedef struct cli_resp {
    long status;              /* HTTP status, 0 if none */
    char *body;               /* NUL-terminated (non-2xx or collected bodies) */
    size_t len;
    json_t *json;             /* body parsed as JSON, or NULL (new reference) */
    char content_type[128];
    char content_range[128];
    char etag[160];
    long long content_length; /* -1 if absent */
} cli_resp_t;

/* Body sink for streamed 2xx responses; called before any data with the
 * response headers (status etc. in resp). Return < 0 to stop the transfer:
 * cli_http_do then returns 0 (a deliberate stop is not an error). */
typedef struct cli_sink {
    int (*on_start)(void *ud, const cli_resp_t *resp);
    int (*on_data)(void *ud, const char *p, size_t n);
    void *ud;
} cli_sink_t;

typedef struct cli_req {
    const char *method;       /* "GET", "POST", "DELETE" */
    const char *path;         /* "/v1/jobs/3", already escaped */
    const char *body;         /* request body (JSON) or NULL */
    size_t body_len;
    const char *range;        /* "N-" → Range: bytes=N- ; or NULL */
    const char *accept;       /* Accept header or NULL */
    const cli_sink_t *sink;   /* NULL: collect the body into resp */
    int stream;               /* 1: no overall timeout (SSE, downloads) */
} cli_req_t;

/* base: URL ("http://host:port[/prefix]"); token may be NULL. */
int cli_http_init(cli_http_t *h, const char *base, const char *token, lrq_err_t *err);
void cli_http_close(cli_http_t *h);
/* 0 when an HTTP response arrived (any status: see resp->status), negative
 * with err set when the server could not be reached or the transfer broke. */
int cli_http_do(cli_http_t *h, const cli_req_t *req, cli_resp_t *resp, lrq_err_t *err);
void cli_resp_free(cli_resp_t *r);
/* "message (field: f) [HTTP 422 invalid_spec]" from an error response —
 * whatever the body looks like. */
void cli_resp_errmsg(const cli_resp_t *r, char *buf, size_t n);
/* Percent-encode an artifact path keeping '/' separators; NULL on OOM. */
char *cli_path_escape(const char *path);
/* Parse "bytes a-b/total" or "bytes * /total" (no space); -1 where absent. */
int cli_content_range(const char *s, long long *first, long long *last, long long *total);

/* ---------------------------------------------------------------- SSE */
typedef int (*cli_sse_cb)(void *ud, const char *event, const char *data);
typedef struct cli_sse {
    char *line;  size_t line_len, line_cap;   /* current line being assembled */
    char *data;  size_t data_len, data_cap;   /* data: lines of the current event */
    char event[64];
    int have_data;
    int last_cr;                               /* previous chunk ended in '\r' */
    size_t max;                                /* bound on line and event size */
    cli_sse_cb cb;
    void *ud;
} cli_sse_t;

void cli_sse_init(cli_sse_t *s, cli_sse_cb cb, void *ud);
/* Feed bytes (any split). Returns 0, the callback's negative value (stop), or
 * LRQ_EFORMAT when a line or event exceeds the bound, LRQ_ENOMEM. */
int cli_sse_feed(cli_sse_t *s, const char *p, size_t n);
void cli_sse_free(cli_sse_t *s);

/* ---------------------------------------------------------------- printing */
/* "[#####.....] 46% block 2/5 iter 300/1000 loss 1.2e-3 ETA 2m00s" (bar = 1)
 * or without the bar (bar = 0). Tolerates any JSON (missing/wrong-typed
 * fields are left out). Returns the length written (truncated to n-1). */
size_t cli_progress_format(char *buf, size_t n, const json_t *progress, int bar);
void cli_fmt_sci(char *buf, size_t n, double v);         /* 1.2e-3 */
void cli_fmt_duration(char *buf, size_t n, double s);    /* 45s, 2m00s, 1h05m, 3d04h */
void cli_fmt_size(char *buf, size_t n, double bytes);    /* 512 B, 1.5 MiB */
/* Copy s with control characters replaced by '?' (server text → terminal). */
void cli_sanitize(char *dst, size_t n, const char *s);

/* Tolerant accessors: NULL / 0 when absent or of the wrong type. */
const char *cli_jstr(const json_t *o, const char *key);
int cli_jnum(const json_t *o, const char *key, double *v);   /* 1 if a number */
int cli_jint(const json_t *o, const char *key, long long *v); /* 1 if an integer */

typedef struct cli_table {
    int ncols, nrows;
    size_t cap;               /* cells allocated (rows × ncols) */
    char **cells;            /* nrows * ncols, row 0 = header */
    unsigned right;          /* bit i: right-align column i */
} cli_table_t;
int cli_table_init(cli_table_t *t, int ncols, const char *const *header);
int cli_table_add(cli_table_t *t, const char *const *row);   /* copies */
void cli_table_print(const cli_table_t *t, FILE *f);
void cli_table_free(cli_table_t *t);

/* Print a JSON value (indent 2, newline). compact = one line. */
void cli_json_print(FILE *f, const json_t *j, int compact);
/* Print a server body as is (adds a trailing newline when missing). */
void cli_body_print(FILE *f, const cli_resp_t *r);
void cli_print_job(FILE *f, const json_t *job);         /* key/value table */
void cli_print_job_list(FILE *f, const json_t *jobs);   /* one row per job */
void cli_print_metrics(FILE *f, const json_t *metrics);
void cli_print_artifacts(FILE *f, const json_t *artifacts);

/* ---------------------------------------------------------------- commands */
typedef struct cli_env {
    const char *server, *token;   /* LRQ_SERVER, LRQ_TOKEN (or NULL) */
    FILE *out, *err;
    int out_tty;                   /* stdout is a terminal: draw a progress bar */
    long poll_ms;                  /* polling interval when SSE fails (1000) */
    int retries;                   /* consecutive failed polls tolerated (10) */
} cli_env_t;

typedef struct cli_ctx {
    const cli_env_t *env;
    const cli_args_t *args;
    cli_http_t http;
    FILE *out, *err;
} cli_ctx_t;

typedef int (*cli_cmd_fn)(cli_ctx_t *c);

struct cli_cmd {
    const char *name;
    const char *synopsis;   /* "submit SPEC.json [--wait]" */
    const char *help;       /* paragraph(s) */
    int min_pos, max_pos;
    int takes_id;           /* pos[0] is a job ID */
    unsigned flags;         /* CLI_F_* the command accepts */
    int needs_server;
    cli_cmd_fn fn;
};
enum { CLI_F_WAIT = 1, CLI_F_FOLLOW = 2, CLI_F_LIST = 4, CLI_F_FILE = 8 };

const cli_cmd_t *cli_cmd_find(const char *name);
const cli_cmd_t *cli_cmds(size_t *n);
void cli_help(FILE *f, const cli_cmd_t *cmd);

int cli_cmd_submit(cli_ctx_t *c);
int cli_cmd_status(cli_ctx_t *c);
int cli_cmd_list(cli_ctx_t *c);
int cli_cmd_watch(cli_ctx_t *c);
int cli_cmd_wait(cli_ctx_t *c);
int cli_cmd_cancel(cli_ctx_t *c);
int cli_cmd_logs(cli_ctx_t *c);
int cli_cmd_metrics(cli_ctx_t *c);
int cli_cmd_artifacts(cli_ctx_t *c);
int cli_cmd_download(cli_ctx_t *c);
int cli_cmd_delete(cli_ctx_t *c);
int cli_cmd_token(cli_ctx_t *c);

/* Token helpers (pure, testable). hex must hold 65 bytes. */
int cli_token_role_ok(const char *role);
int cli_token_name_ok(const char *name);

/* Job state helpers. */
int cli_state_terminal(const char *state);   /* succeeded|failed|cancelled */
int cli_state_exit(const char *state);       /* wait's exit code for a final state */

/* The whole program: returns the exit code. */
int cli_main(int argc, char **argv, const cli_env_t *env);

#endif
