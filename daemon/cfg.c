/* cfg.c — option table, config file and flags (see cfg.h). */
#include "cfg.h"
#include "config.h"
#include "lrq_fs.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    {"schema_dir", T_STR, O(schema_dir), "", 0, 0, "directory of NNNN_*.sql migrations (default: built in)"},
    {"data_root", T_LIST, O(data_root), NULL, 0, 0, "directory job specs may name files in (repeatable)"},
    {"workers", T_INT, O(workers), "1", 1, 256, "maximum concurrent worker processes"},
    {"worker", T_STR, O(worker), "", 0, 0, "lrq-worker to spawn (default: beside lrqd, else installed)"},
    {"executor", T_STR, O(executor), "local", 0, 0, "how workers run: local or slurm (docs/daemon.md)"},
    {"slurm_partition", T_STR, O(slurm_partition), "", 0, 0, "executor = slurm: sbatch --partition (\"\" = default)"},
    {"slurm_account", T_STR, O(slurm_account), "", 0, 0, "executor = slurm: sbatch --account (\"\" = default)"},
    {"slurm_sbatch_args", T_STR, O(slurm_sbatch_args), "", 0, 0,
     "executor = slurm: extra sbatch arguments, separated by spaces (no shell quoting)"},
    {"slurm_time_limit_min", T_INT, O(slurm_time_limit_min), "0", 0, 525600,
     "executor = slurm: --time in minutes (0: from job_timeout_s + grace_s, else the partition's)"},
    {"slurm_mem_mb", T_INT, O(slurm_mem_mb), "0", 0, 1 << 30, "executor = slurm: --mem per job (0 = the job's estimate)"},
    {"slurm_cache_mb", T_INT, O(slurm_cache_mb), "1024", 16, 1 << 30,
     "executor = slurm: activation-cache memory per job (LRQ_CACHE_MEM_MB), part of --mem"},
    {"slurm_max_cpus", T_INT, O(slurm_max_cpus), "0", 0, 1 << 20,
     "executor = slurm: cap on --cpus-per-task (threads x tasks), e.g. the nodes' size (0 = no cap)"},
    {"slurm_parallel", T_STR, O(slurm_parallel), "array", 0, 0,
     "executor = slurm: a parallel job's \"tasks\" as a job array + an assemble job (array), or inside one allocation"},
    {"slurm_poll_ms", T_INT, O(slurm_poll_ms), "2000", 100, 600000, "executor = slurm: squeue interval"},
    {"slurm_probe", T_BOOL, O(slurm_probe), "true", 0, 0,
     "executor = slurm: at start-up, check with a small job that a node can write state_dir"},
    {"threads", T_INT, O(threads), "0", 0, 1024, "threads for a job whose spec leaves threads at 0 (0 = all cores)"},
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
    printf("  --%-20s %s\n  --%-20s %s\n", "config", "read options from FILE first (flags override it)", "version",
           "print the version and exit");
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
    free(c->executor); free(c->slurm_partition); free(c->slurm_account); free(c->slurm_sbatch_args); free(c->slurm_parallel);
    free(c->token_file); free(c->tls_cert); free(c->tls_key); free(c->port_file); free(c->log_level);
    for (int i = 0; i < c->n_data_root; i++) free(c->data_root[i]);
    memset(c, 0, sizeof *c);
}

/* ---- start-up path resolution ------------------------------------------- */

/* Replace *p by s (owned). */
static void cfg__take(char **p, char *s)
{
    free(*p);
    *p = s;
}

/* An existing path, made absolute and symlink-free; names the flag on failure. */
static int cfg__real(char **p, const char *flag, int want_dir, lrq_err_t *err)
{
    char *rp = realpath(*p, NULL);
    struct stat st;
    if (!rp) return lrq_errf(err, -errno, "--%s %s: %s", flag, *p, strerror(errno));
    if (stat(rp, &st)) { int e = errno; free(rp); return lrq_errf(err, -e, "--%s %s: %s", flag, *p, strerror(e)); }
    if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
        free(rp);
        return lrq_errf(err, LRQ_EFORMAT, "--%s %s: not a %s", flag, *p, want_dir ? "directory" : "regular file");
    }
    cfg__take(p, rp);
    return 0;
}

/* A file that may not exist yet: its directory must. */
static int cfg__abs_new(char **p, const char *flag, lrq_err_t *err)
{
    char dir[PATH_MAX], rdir[PATH_MAX];
    const char *slash = strrchr(*p, '/'), *base = slash ? slash + 1 : *p;
    if (!*base) return lrq_errf(err, LRQ_ESPEC, "--%s %s: names a directory, not a file", flag, *p);
    if (slash == *p) snprintf(dir, sizeof dir, "/");
    else if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - *p), *p);
    else snprintf(dir, sizeof dir, ".");
    if (!realpath(dir, rdir)) return lrq_errf(err, -errno, "--%s %s: %s: %s", flag, *p, dir, strerror(errno));
    size_t n = strlen(rdir) + strlen(base) + 2;
    char *out = malloc(n);
    if (!out) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    snprintf(out, n, "%s%s%s", rdir, strcmp(rdir, "/") ? "/" : "", base);
    cfg__take(p, out);
    return 0;
}

/* The worker: a name without '/' is looked up in PATH (as execvp would);
 * "" means lrq-worker beside this executable (build tree), else bindir. */
static int cfg__worker(cfg_t *c, const char *self_exe, lrq_err_t *err)
{
    char cand[PATH_MAX * 2];
    if (!c->worker || !*c->worker) {
        const char *slash = self_exe ? strrchr(self_exe, '/') : NULL;
        snprintf(cand, sizeof cand, "%.*s/lrq-worker", slash ? (int)(slash - self_exe) : 0, self_exe ? self_exe : "");
        if (!slash || access(cand, X_OK)) snprintf(cand, sizeof cand, "%s/lrq-worker", LRQ_BINDIR);
        char *w = strdup(cand);
        if (!w) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
        cfg__take(&c->worker, w);
    } else if (!strchr(c->worker, '/')) {
        const char *path = getenv("PATH");
        int found = 0;
        for (const char *p = path ? path : ""; !found && *p;) {
            const char *colon = strchr(p, ':');
            size_t n = colon ? (size_t)(colon - p) : strlen(p);
            snprintf(cand, sizeof cand, "%.*s/%s", (int)(n ? n : 1), n ? p : ".", c->worker);
            if (!access(cand, X_OK)) found = 1;
            p += n + (colon ? 1 : 0);
        }
        if (!found) return lrq_errf(err, LRQ_ENOTFOUND, "--worker %s: not found in PATH (./%s names a file in the current directory)", c->worker, c->worker);
        char *w = strdup(cand);
        if (!w) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
        cfg__take(&c->worker, w);
    }
    int rc = cfg__real(&c->worker, "worker", 0, err);
    if (rc) return rc;
    if (access(c->worker, X_OK))
        return lrq_errf(err, -errno, "--worker %s: not executable: %s", c->worker, strerror(errno));
    return 0;
}

int cfg_resolve_paths(cfg_t *c, const char *self_exe, lrq_err_t *err)
{
    int rc;
    if (!c->state_dir || !*c->state_dir) return lrq_errf(err, LRQ_ESPEC, "--state-dir must not be empty");
    if ((rc = lrq_mkdirs_mode(c->state_dir, 0750, err))) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
        return lrq_errf(err, rc, "--state-dir %s: %s", c->state_dir, msg);
    }
    if ((rc = cfg__real(&c->state_dir, "state-dir", 1, err))) return rc;
    for (int i = 0; i < c->n_data_root; i++)
        if ((rc = cfg__real(&c->data_root[i], "data-root", 1, err))) return rc;
    if (c->schema_dir && *c->schema_dir && (rc = cfg__real(&c->schema_dir, "schema-dir", 1, err))) return rc;
    if (c->token_file && *c->token_file && (rc = cfg__real(&c->token_file, "token-file", 0, err))) return rc;
    if (c->tls_cert && *c->tls_cert && (rc = cfg__real(&c->tls_cert, "tls-cert", 0, err))) return rc;
    if (c->tls_key && *c->tls_key && (rc = cfg__real(&c->tls_key, "tls-key", 0, err))) return rc;
    if (c->port_file && *c->port_file && (rc = cfg__abs_new(&c->port_file, "port-file", err))) return rc;
    return cfg__worker(c, self_exe, err);
}

/* ---- listen address ----------------------------------------------------- */

/* "HOST:PORT", "[V6]:PORT" → sockaddr. */
int cfg_parse_listen(const char *s, struct sockaddr_storage *ss, int *v6, int *loopback, char *host, size_t hn,
                     lrq_err_t *err)
{
    const char *colon = strrchr(s, ':');
    if (!colon) return lrq_errf(err, LRQ_ESPEC, "listen \"%s\": expected HOST:PORT", s);
    size_t hl = colon - s;
    if (hl >= hn) return lrq_errf(err, LRQ_ESPEC, "listen \"%s\": host too long", s);
    memcpy(host, s, hl);
    host[hl] = 0;
    if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') { memmove(host, host + 1, hl - 2); host[hl - 2] = 0; }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return lrq_errf(err, LRQ_ESPEC, "listen \"%s\": bad port", s);
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (!strcmp(host, "localhost")) snprintf(host, hn, "127.0.0.1");
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *v6 = 0;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *v6 = 1;
    } else {
        return lrq_errf(err, LRQ_ESPEC, "listen \"%s\": host must be a numeric IPv4/IPv6 address", s);
    }
    if (*v6) {
        struct in6_addr lo = IN6ADDR_LOOPBACK_INIT;
        *loopback = !memcmp(&a6->sin6_addr, &lo, sizeof lo);
    } else {
        *loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    }
    return 0;
}

