/* cli_main.c — lrqctl: the subcommand table, argument parsing, help, and
 * cli_main() (everything main() does, minus reading the environment). */
#include "cli.h"
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define CLI_VERSION "0.1.0"

static const cli_cmd_t cli__cmds[] = {
    { "submit", "submit SPEC.json [--wait]",
      "Submit the job spec in SPEC.json ('-' reads stdin) and print the new job's ID.\n"
      "With --wait, follow the job like 'watch' and exit like 'wait'.",
      1, 1, 0, CLI_F_WAIT, 1, cli_cmd_submit },
    { "status", "status ID",
      "Show one job: state, attempts, timestamps, last progress, error.",
      1, 1, 1, 0, 1, cli_cmd_status },
    { "list", "list [--state S] [--limit N] [--after ID]",
      "List jobs, newest first. S is queued|running|succeeded|failed|cancelled;\n"
      "N is 1..500 (server default 50); --after ID lists jobs older than ID (paging).",
      0, 0, 0, CLI_F_LIST, 1, cli_cmd_list },
    { "watch", "watch ID",
      "Follow a job until it finishes. On a terminal: a progress bar redrawn in place,\n"
      "  [#####.....] 46% block 2/5 iter 300/1000 loss 1.2e-3 ETA 2m00s\n"
      "otherwise one plain line per update. Uses the server's event stream and falls\n"
      "back to polling every second when the stream is unavailable. Exits like 'wait'\n"
      "once the job has finished: 0 succeeded, 1 failed, 2 cancelled, 3 unknown.",
      1, 1, 1, 0, 1, cli_cmd_watch },
    { "wait", "wait ID",
      "Block until the job finishes, then print 'job ID: STATE' (with the error of a\n"
      "failed job); with -o json, the final job object instead.\n"
      "Exit status: 0 succeeded, 1 failed, 2 cancelled, 3 the server could not be\n"
      "reached or did not answer sensibly.",
      1, 1, 1, 0, 1, cli_cmd_wait },
    { "cancel", "cancel ID",
      "Cancel a job: a queued job is cancelled at once; a running one is asked to stop\n"
      "(it checkpoints and becomes cancelled). Cancelling a finished job is an error.",
      1, 1, 1, 0, 1, cli_cmd_cancel },
    { "logs", "logs ID [--follow]",
      "Print the job's log. With --follow (-f), keep printing new lines until the job\n"
      "has finished.",
      1, 1, 1, CLI_F_FOLLOW, 1, cli_cmd_logs },
    { "metrics", "metrics ID",
      "Print the job's metrics.json as a table: perplexity of the float and quantized\n"
      "models, KL divergence, top-1 agreement, per-block losses when present.\n"
      "With -o json, the metrics.json itself.",
      1, 1, 1, 0, 1, cli_cmd_metrics },
    { "artifacts", "artifacts ID",
      "List the job's artifacts: path, size, sha256.",
      1, 1, 1, 0, 1, cli_cmd_artifacts },
    { "download", "download ID PATH [-o FILE]",
      "Download artifact PATH (as listed by 'artifacts') to FILE (default: the last\n"
      "component of PATH). An existing shorter FILE is resumed with a Range request.\n"
      "The result is checked against the sha256 in the artifact listing; a mismatching\n"
      "file is removed. Note: after 'download', -o names the output FILE.",
      2, 2, 1, CLI_F_FILE, 1, cli_cmd_download },
    { "delete", "delete ID",
      "Delete a finished job and its files on the server.",
      1, 1, 1, 0, 1, cli_cmd_delete },
    { "token", "token new NAME ROLE",
      "Print a fresh random API token (32 bytes from /dev/urandom, hex) and the line\n"
      "NAME:ROLE:sha256hex(token) to add to lrqd's --token-file. ROLE is\n"
      "submit|read|admin; NAME is letters, digits, '.', '_' or '-'. Needs no server.",
      3, 3, 0, 0, 0, cli_cmd_token },
};

const cli_cmd_t *cli_cmds(size_t *n)
{
    *n = sizeof cli__cmds / sizeof cli__cmds[0];
    return cli__cmds;
}

const cli_cmd_t *cli_cmd_find(const char *name)
{
    size_t n;
    const cli_cmd_t *t = cli_cmds(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

void cli_help(FILE *f, const cli_cmd_t *cmd)
{
    if (cmd) {
        fprintf(f, "usage: lrqctl [GLOBAL OPTIONS] %s\n\n%s\n", cmd->synopsis, cmd->help);
        if (cmd->takes_id)
            fprintf(f, "\nID is a job ID as printed by 'submit' or 'list'.\n");
        fprintf(f, "\nSee 'lrqctl --help' for the global options and exit codes.\n");
        return;
    }
    size_t n;
    const cli_cmd_t *t = cli_cmds(&n);
    fprintf(f,
        "usage: lrqctl [--server URL] [--token T] [-o table|json] COMMAND [ARGS]\n"
        "\n"
        "Client for lrqd, the lrq quantization job service.\n"
        "\n"
        "Commands:\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %s\n", t[i].synopsis);
    fprintf(f,
        "  help [COMMAND]\n"
        "\n"
        "Global options (also accepted after the command, except -o after 'download'):\n"
        "  --server URL     server base URL (env LRQ_SERVER, default " CLI_DEFAULT_SERVER ")\n"
        "  --token T        API token sent as 'Authorization: Bearer T' (env LRQ_TOKEN)\n"
        "  -o, --output F   table (default) or json: machine-readable output\n"
        "  -h, --help       this help; 'lrqctl help COMMAND' for one command\n"
        "  --version        print the version\n"
        "\n"
        "Exit status: 0 ok; 1 error (the server's message is printed as\n"
        "'lrqctl: MESSAGE (field: F) [HTTP STATUS CODE]'); 64 usage error.\n"
        "wait / submit --wait: 0 succeeded, 1 failed, 2 cancelled, 3 server unreachable.\n");
}

/* Strict positive decimal (job IDs, limits). */
static int parse_long(const char *s, long lo, long hi, long *v)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || *end || x < lo || x > hi || s[0] == '+' || s[0] == '-' || s[0] == ' ')
        return -1;
    *v = x;
    return 0;
}

static int usage(char *msg, size_t n, const char *fmt, const char *a)
{
    snprintf(msg, n, fmt, a ? a : "");
    return CLI_EXIT_USAGE;
}

/* Options valid anywhere. Returns 1 consumed (advance *i), 0 not global, <0 usage. */
static int global_opt(int argc, char **argv, int *i, cli_args_t *a, int o_is_file,
                      char *msg, size_t n)
{
    const char *o = argv[*i];
    const char *val = NULL;
    int which = 0;  /* 1 server, 2 token, 3 output */
    size_t len;
    if (strcmp(o, "--server") == 0) which = 1;
    else if (strncmp(o, "--server=", 9) == 0) which = 1, val = o + 9;
    else if (strcmp(o, "--token") == 0) which = 2;
    else if (strncmp(o, "--token=", 8) == 0) which = 2, val = o + 8;
    else if (strcmp(o, "--output") == 0) which = 3;
    else if (strncmp(o, "--output=", 9) == 0) which = 3, val = o + 9;
    else if (!o_is_file && strcmp(o, "-o") == 0) which = 3;
    else if (!o_is_file && strncmp(o, "-o", 2) == 0 && o[2]) which = 3, val = o + 2;
    else if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) { a->help = 1; return 1; }
    else if (strcmp(o, "--version") == 0) { a->version = 1; return 1; }
    else return 0;
    if (!val) {
        if (*i + 1 >= argc) {
            usage(msg, n, "option %s needs a value", o);
            return -1;
        }
        val = argv[++*i];
    }
    switch (which) {
    case 1:
        len = strlen(val);
        if (!(strncmp(val, "http://", 7) == 0 || strncmp(val, "https://", 8) == 0) || len > 2000) {
            usage(msg, n, "--server wants an http:// or https:// URL, got '%.200s'", val);
            return -1;
        }
        a->server = val;
        break;
    case 2:
        if (strpbrk(val, "\r\n") || strlen(val) > 4096) {
            usage(msg, n, "%s", "--token must be a single line");
            return -1;
        }
        a->token = val;
        break;
    case 3:
        if (strcmp(val, "json") == 0) a->out = CLI_OUT_JSON;
        else if (strcmp(val, "table") == 0) a->out = CLI_OUT_TABLE;
        else { usage(msg, n, "output format must be table or json, got '%.100s'", val); return -1; }
        break;
    }
    return 1;
}

static const char *const cli__states[] = { "queued", "running", "succeeded", "failed", "cancelled" };

int cli_args_parse(int argc, char **argv, const char *env_server, const char *env_token,
                   cli_args_t *a, char *msg, size_t n)
{
    memset(a, 0, sizeof *a);
    a->server = env_server && *env_server ? env_server : CLI_DEFAULT_SERVER;
    a->token = env_token && *env_token ? env_token : NULL;
    if (msg && n)
        msg[0] = '\0';
    int i = 1, r;
    /* Global options before the command. */
    for (; i < argc; i++) {
        if (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)
            break;
        if (strcmp(argv[i], "--") == 0) { i++; break; }
        r = global_opt(argc, argv, &i, a, 0, msg, n);
        if (r < 0)
            return CLI_EXIT_USAGE;
        if (r == 0)
            return usage(msg, n, "unknown option '%.100s' (try --help)", argv[i]);
    }
    if (i >= argc) {
        if (a->help || a->version)
            return 0;
        return usage(msg, n, "%s", "no command given (try --help)");
    }
    const char *name = argv[i++];
    if (strcmp(name, "help") == 0) {
        a->help = 1;
        if (i < argc) {
            a->cmd = cli_cmd_find(argv[i]);
            if (!a->cmd)
                return usage(msg, n, "no such command '%.100s' (try --help)", argv[i]);
            i++;
        }
        if (i < argc)
            return usage(msg, n, "%s", "help takes at most one command");
        return 0;
    }
    a->cmd = cli_cmd_find(name);
    if (!a->cmd)
        return usage(msg, n, "unknown command '%.100s' (try --help)", name);
    const cli_cmd_t *c = a->cmd;
    int opts_done = 0;
    for (; i < argc; i++) {
        const char *o = argv[i];
        if (!opts_done && o[0] == '-' && o[1]) {
            if (strcmp(o, "--") == 0) { opts_done = 1; continue; }
            r = global_opt(argc, argv, &i, a, (c->flags & CLI_F_FILE) != 0, msg, n);
            if (r < 0)
                return CLI_EXIT_USAGE;
            if (r > 0)
                continue;
            if ((c->flags & CLI_F_WAIT) && strcmp(o, "--wait") == 0) { a->wait = 1; continue; }
            if ((c->flags & CLI_F_FOLLOW) && (strcmp(o, "--follow") == 0 || strcmp(o, "-f") == 0)) {
                a->follow = 1;
                continue;
            }
            if ((c->flags & CLI_F_FILE) && (strcmp(o, "-o") == 0 || strcmp(o, "--file") == 0)) {
                if (i + 1 >= argc)
                    return usage(msg, n, "%s needs a FILE", o);
                a->file = argv[++i];
                if (!*a->file)
                    return usage(msg, n, "%s", "empty FILE");
                continue;
            }
            if (c->flags & CLI_F_LIST) {
                const char *val = NULL;
                int which = 0;
                if (strcmp(o, "--state") == 0) which = 1;
                else if (strncmp(o, "--state=", 8) == 0) which = 1, val = o + 8;
                else if (strcmp(o, "--limit") == 0) which = 2;
                else if (strncmp(o, "--limit=", 8) == 0) which = 2, val = o + 8;
                else if (strcmp(o, "--after") == 0) which = 3;
                else if (strncmp(o, "--after=", 8) == 0) which = 3, val = o + 8;
                if (which) {
                    if (!val) {
                        if (i + 1 >= argc)
                            return usage(msg, n, "option %s needs a value", o);
                        val = argv[++i];
                    }
                    if (which == 1) {
                        int ok = 0;
                        for (size_t k = 0; k < 5; k++)
                            ok |= strcmp(val, cli__states[k]) == 0;
                        if (!ok)
                            return usage(msg, n, "--state must be queued|running|succeeded|"
                                         "failed|cancelled, got '%.100s'", val);
                        a->state = val;
                    } else if (which == 2) {
                        if (parse_long(val, 1, 500, &a->limit))
                            return usage(msg, n, "--limit must be 1..500, got '%.100s'", val);
                    } else if (parse_long(val, 1, LONG_MAX, &a->after)) {
                        return usage(msg, n, "--after must be a job ID, got '%.100s'", val);
                    }
                    continue;
                }
            }
            return usage(msg, n, "unknown option '%.100s' for this command (try --help)", o);
        }
        if (a->npos >= (int)(sizeof a->pos / sizeof a->pos[0]) || a->npos >= c->max_pos)
            return usage(msg, n, "unexpected argument '%.100s' (try --help)", o);
        a->pos[a->npos++] = o;
    }
    if (a->help || a->version)
        return 0;
    if (a->npos < c->min_pos) {
        snprintf(msg, n, "missing arguments: usage: lrqctl %s", c->synopsis);
        return CLI_EXIT_USAGE;
    }
    if (c->takes_id && parse_long(a->pos[0], 1, LONG_MAX, &a->id))
        return usage(msg, n, "job ID must be a positive integer, got '%.100s'", a->pos[0]);
    if (c->fn == cli_cmd_token && strcmp(a->pos[0], "new") != 0)
        return usage(msg, n, "unknown token subcommand '%.100s' (only 'new')", a->pos[0]);
    return 0;
}

int cli_main(int argc, char **argv, const cli_env_t *env)
{
    cli_args_t a;
    char msg[512];
    FILE *out = env->out ? env->out : stdout, *err = env->err ? env->err : stderr;
    int rc = cli_args_parse(argc, argv, env->server, env->token, &a, msg, sizeof msg);
    if (rc) {
        fprintf(err, "lrqctl: %s\n", msg);
        return rc;
    }
    if (a.help) {
        cli_help(out, a.cmd);
        return CLI_EXIT_OK;
    }
    if (a.version) {
        fprintf(out, "lrqctl " CLI_VERSION "\n");
        return CLI_EXIT_OK;
    }
    cli_ctx_t c = { .env = env, .args = &a, .out = out, .err = err };
    if (a.cmd->needs_server) {
        lrq_err_t e;
        if (cli_http_init(&c.http, a.server, a.token, &e) < 0) {
            fprintf(err, "lrqctl: %s\n", e.msg);
            return CLI_EXIT_FAIL;
        }
    }
    rc = a.cmd->fn(&c);
    if (a.cmd->needs_server)
        cli_http_close(&c.http);
    fflush(out);
    return rc;
}
