/* cfg.h — lrqd configuration: one option table drives the config file
 * (`key = value`, '#' comments), the command-line flags (--key value,
 * --key=value, '_' or '-'), the defaults and --help. Flags override the file;
 * data_root accumulates (file entries first). */
#ifndef LRQD_CFG_H
#define LRQD_CFG_H
#include <stdint.h>
#include "lrq_err.h"

#define CFG_MAX_ROOTS 32

typedef struct cfg {
    char *config;          /* the file read, or NULL */
    char *listen;          /* HOST:PORT */
    char *state_dir;
    char *schema_dir;
    char *worker;          /* "" = auto */
    char *executor;        /* "local" or "slurm" */
    char *data_root[CFG_MAX_ROOTS];
    int n_data_root;
    char *token_file;      /* "" = none */
    char *port_file;       /* "" = none */
    char *tls_cert;        /* "" = plain HTTP */
    char *tls_key;
    char *log_level;
    int64_t workers, threads, max_body, grace_s, queue_max, job_timeout_s, progress_timeout_s;
    int64_t max_line, max_connections, conn_timeout_s, min_free_mb, retry_after_s, conn_memory_kb;
    int no_auth, metrics_auth;
    /* executor = slurm (daemon/exec_slurm.c) */
    char *slurm_partition, *slurm_account, *slurm_sbatch_args;
    int64_t slurm_time_limit_min, slurm_mem_mb, slurm_cache_mb, slurm_poll_ms, slurm_max_cpus;
    char *slurm_parallel;        /* "array" or "allocation": how a multi-task parallel job runs */
    int slurm_probe;
} cfg_t;

/* Defaults, then --config FILE (if given), then the other flags.
 * Returns 0, 1 for --help/--version (already printed), or an error. */
int cfg_load(cfg_t *c, int argc, char **argv, lrq_err_t *err);
void cfg_free(cfg_t *c);
/* Start-up: make every path absolute so that nothing depends on the working
 * directory later (workers run in their work dirs). Creates state_dir; data
 * roots, schema dir, token and TLS files must exist; port_file's directory
 * must; the worker must be an executable regular file (a bare name is looked
 * up in PATH; "" = lrq-worker beside self_exe, else the installed one).
 * Errors name the flag: "--worker ./lrq-worker: No such file or directory". */
int cfg_resolve_paths(cfg_t *c, const char *self_exe, lrq_err_t *err);
/* listen = "HOST:PORT" or "[V6]:PORT" (numeric; "localhost" = 127.0.0.1) →
 * socket address, the host text (brackets removed) and whether it is a
 * loopback address (127/8 or ::1: lrqd serves those without tokens). */
struct sockaddr_storage;
int cfg_parse_listen(const char *s, struct sockaddr_storage *ss, int *v6, int *loopback, char *host, size_t hn,
                     lrq_err_t *err);
void cfg_usage(const char *prog);

#endif
