/* cfg.c — option table, config file and flags (see cfg.h). */
#include "cfg.h"
#include "config.h"
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_STR, T_INT, T_BOOL, T_LIST };

typedef struct opt {
    const char *name;
    int type;
    size_t off;
    const char *def;
    int64_t lo, hi;
    const char *help;
} opt_t;

#define O(f) offsetof(cfg_t, f)
static const opt_t opts[] = {
    {"listen", T_STR, O(listen), "127.0.0.1:8470", 0, 0, "HOST:PORT to listen on (port 0 = ephemeral)"},
    {"state_dir", T_STR, O(state_dir), "/var/lib/lrq", 0, 0, "database and job work dirs"},
    {"schema_dir", T_STR, O(schema_dir), LRQ_SCHEMA_DIR, 0, 0, "directory of NNNN_*.sql migrations"},
    {"data_root", T_LIST, O(data_root), NULL, 0, 0, "directory job specs may name files in (repeatable)"},
    {"workers", T_INT, O(workers), "1", 1, 256, "maximum concurrent worker processes"},
    {"worker", T_STR, O(worker), "", 0, 0, "lrq-worker to spawn (default: beside lrqd, else installed)"},
    {"executor", T_STR, O(executor), "local", 0, 0, "how workers run: local"},
    {"threads", T_INT, O(threads), "0", 0, 1024, "threads per job (0 = the spec's value / all cores)"},
    {"max_body", T_INT, O(max_body), "1048576", 1024, 64 << 20, "request body limit in bytes (413 above)"},
    {"max_line", T_INT, O(max_line), "65536", 256, 16 << 20, "longest worker progress line (longer: killed)"},
    {"grace_s", T_INT, O(grace_s), "30", 0, 3600, "SIGTERM → SIGKILL grace period for workers"},
    {"queue_max", T_INT, O(queue_max), "1000", 1, 10000000, "queued+running jobs above which POST gets 429"},
    {"retry_after_s", T_INT, O(retry_after_s), "30", 1, 86400, "Retry-After sent with 429/503"},
    {"job_timeout_s", T_INT, O(job_timeout_s), "0", 0, 30 * 86400, "wall-clock limit per attempt (0 = none)"},
    {"progress_timeout_s", T_INT, O(progress_timeout_s), "0", 0, 86400,
     "kill a worker silent on stdout this long (0 = never)"},
    {"min_free_mb", T_INT, O(min_free_mb), "256", 0, 1 << 30, "hold queued jobs while state_dir has less free"},
    {"max_connections", T_INT, O(max_connections), "256", 1, 65536, "concurrent HTTP connections"},
    {"conn_timeout_s", T_INT, O(conn_timeout_s), "60", 1, 3600, "idle HTTP connection timeout"},
    {"conn_memory_kb", T_INT, O(conn_memory_kb), "64", 16, 4096, "per-connection memory (headers) limit"},
    {"token_file", T_STR, O(token_file), "", 0, 0, "API tokens, lines name:role:sha256hex(token)"},
    {"no_auth", T_BOOL, O(no_auth), "false", 0, 0, "serve /v1 without tokens (loopback only)"},
    {"metrics_auth", T_BOOL, O(metrics_auth), "false", 0, 0, "require a token for /metrics"},
    {"tls_cert", T_STR, O(tls_cert), "", 0, 0, "PEM certificate (chain): serve HTTPS (with tls_key)"},
    {"tls_key", T_STR, O(tls_key), "", 0, 0, "PEM private key for tls_cert"},
    {"port_file", T_STR, O(port_file), "", 0, 0, "write the bound port here once listening"},
    {"log_level", T_STR, O(log_level), "info", 0, 0, "error, warning, notice, info or debug"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

void cfg_usage(const char *prog)
{
    printf("usage: %s [--config FILE] [--OPTION VALUE]...\n\noptions (also config file keys):\n", prog);
    for (size_t i = 0; i < NOPTS; i++) {
        char n[64];
        snprintf(n, sizeof n, "%s", opts[i].name);
        for (char *p = n; *p; p++) if (*p == '_') *p = '-';
        printf("  --%-20s %s%s%s%s\n", n, opts[i].help, opts[i].def ? " [" : "", opts[i].def ? opts[i].def : "",
               opts[i].def ? "]" : "");
    }
    printf("  --%-20s %s\n  --%-20s\n", "config", "read options from FILE first", "version");
}

static const opt_t *find(const char *name)
{
    char n[64];
    if (strlen(name) >= sizeof n) return NULL;
    snprintf(n, sizeof n, "%s", name);
    for (char *p = n; *p; p++) if (*p == '-') *p = '_';
    for (size_t i = 0; i < NOPTS; i++)
        if (!strcmp(n, opts[i].name)) return &opts[i];
    return NULL;
}

static int set(cfg_t *c, const opt_t *o, const char *v, const char *where, lrq_err_t *err)
{
    char *base = (char *)c;
    switch (o->type) {
    case T_STR: {
        char **p = (char **)(base + o->off), *d = strdup(v);
        if (!d) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
        free(*p);
        *p = d;
        return 0;
    }
    case T_LIST: {
        if (!*v) return 0;
        if (c->n_data_root >= CFG_MAX_ROOTS) return lrq_errf(err, LRQ_ESPEC, "%s: at most %d %s", where,
                                                             CFG_MAX_ROOTS, o->name);
        if (!(c->data_root[c->n_data_root] = strdup(v))) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
        c->n_data_root++;
        return 0;
    }
    case T_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < o->lo || x > o->hi)
            return lrq_errf(err, LRQ_ESPEC, "%s: %s must be an integer in %lld..%lld (got \"%s\")", where,
                            o->name, (long long)o->lo, (long long)o->hi, v);
        *(int64_t *)(base + o->off) = x;
        return 0;
    }
    case T_BOOL: {
        int b;
        if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "on")) b = 1;
        else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0") || !strcmp(v, "off")) b = 0;
        else return lrq_errf(err, LRQ_ESPEC, "%s: %s must be true or false (got \"%s\")", where, o->name, v);
        *(int *)(base + o->off) = b;
        return 0;
    }
    }
    return LRQ_ESPEC;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

static int load_file(cfg_t *c, const char *path, lrq_err_t *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return lrq_errf(err, -errno, "config %s: %s", path, strerror(errno));
    char line[4096], where[4200];
    int ln = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        ln++;
        char *h = strchr(line, '#');
        if (h) *h = 0;
        char *s = trim(line);
        if (!*s) continue;
        snprintf(where, sizeof where, "%s:%d", path, ln);
        char *eq = strchr(s, '=');
        if (!eq) { rc = lrq_errf(err, LRQ_ESPEC, "%s: expected key = value", where); break; }
        *eq = 0;
        char *k = trim(s), *v = trim(eq + 1);
        const opt_t *o = find(k);
        if (!o) { rc = lrq_errf(err, LRQ_ESPEC, "%s: unknown option \"%s\"", where, k); break; }
        rc = set(c, o, v, where, err);
    }
    fclose(f);
    return rc;
}

int cfg_load(cfg_t *c, int argc, char **argv, lrq_err_t *err)
{
    memset(c, 0, sizeof *c);
    int rc;
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].def && (rc = set(c, &opts[i], opts[i].def, "default", err))) return rc;
    /* --config first, so that flags override the file. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { cfg_usage(argv[0]); return 1; }
        if (!strcmp(a, "--version")) { printf("lrqd %s\n", PACKAGE_VERSION); return 1; }
        const char *v = NULL;
        if (!strcmp(a, "--config")) {
            if (i + 1 >= argc) return lrq_errf(err, LRQ_ESPEC, "--config needs a FILE");
            v = argv[++i];
        } else if (!strncmp(a, "--config=", 9)) {
            v = a + 9;
        }
        if (v) {
            free(c->config);
            if (!(c->config = strdup(v))) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
        }
    }
    if (c->config && (rc = load_file(c, c->config, err))) return rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config")) { i++; continue; }
        if (!strncmp(a, "--config=", 9)) continue;
        if (strncmp(a, "--", 2)) return lrq_errf(err, LRQ_ESPEC, "unexpected argument \"%s\" (see --help)", a);
        char name[64];
        const char *eq = strchr(a + 2, '='), *v;
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (nl >= sizeof name) return lrq_errf(err, LRQ_ESPEC, "unknown option %s", a);
        memcpy(name, a + 2, nl);
        name[nl] = 0;
        const opt_t *o = find(name);
        if (!o) return lrq_errf(err, LRQ_ESPEC, "unknown option --%s (see --help)", name);
        if (eq) v = eq + 1;
        else if (o->type == T_BOOL) v = "true";
        else if (i + 1 < argc) v = argv[++i];
        else return lrq_errf(err, LRQ_ESPEC, "--%s needs a value", name);
        if ((rc = set(c, o, v, "command line", err))) return rc;
    }
    return 0;
}

void cfg_free(cfg_t *c)
{
    free(c->config); free(c->listen); free(c->state_dir); free(c->schema_dir); free(c->worker);
    free(c->executor); free(c->token_file); free(c->tls_cert); free(c->tls_key); free(c->port_file); free(c->log_level);
    for (int i = 0; i < c->n_data_root; i++) free(c->data_root[i]);
    memset(c, 0, sizeof *c);
}
