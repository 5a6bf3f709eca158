/* slurm.c — see slurm.h. */
#include "slurm.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

void slurm_map_state(const char *st, int raw, slurm_outcome_t *o)
{
    memset(o, 0, sizeof *o);
    o->known = 1;
    /* The wait status: 19200 = exit 75; 9 = SIGKILL. */
    if (WIFSIGNALED(raw)) o->sig = WTERMSIG(raw);
    else o->status = WEXITSTATUS(raw);
    static const char *const pending[] = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                                          "RESV_DEL_HOLD", "SUSPENDED", NULL};
    static const char *const running[] = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "RESIZING",
                                          "STOPPED", NULL};
    static const struct { const char *name; int cause; } ended[] = {
        {"COMPLETED", EXEC_EXITED}, {"FAILED", EXEC_EXITED}, {"SPECIAL_EXIT", EXEC_EXITED},
        {"CANCELLED", EXEC_CANCELLED}, {"TIMEOUT", EXEC_TIMELIMIT}, {"DEADLINE", EXEC_TIMELIMIT},
        {"NODE_FAIL", EXEC_NODE_FAIL}, {"BOOT_FAIL", EXEC_NODE_FAIL}, {"PREEMPTED", EXEC_PREEMPTED},
        {"OUT_OF_MEMORY", EXEC_OOM}, {"REVOKED", EXEC_LOST},
    };
    for (int i = 0; pending[i]; i++)
        if (!strcmp(st, pending[i])) { o->phase = SLURM_PENDING; return; }
    for (int i = 0; running[i]; i++)
        if (!strcmp(st, running[i])) { o->phase = SLURM_RUNNING; return; }
    for (size_t i = 0; i < sizeof ended / sizeof ended[0]; i++)
        if (!strcmp(st, ended[i].name)) {
            o->phase = SLURM_ENDED;
            o->cause = ended[i].cause;
            /* FAILED with a zero status (e.g. a launch failure): not a success. */
            if (o->cause == EXEC_EXITED && !o->sig && !o->status && strcmp(st, "COMPLETED")) o->status = 1;
            return;
        }
    o->phase = SLURM_RUNNING;   /* a state of a newer Slurm: keep following it */
    o->known = 0;
}

int slurm_parse_row(char *line, slurm_row_t *row)
{
    enum { NF = 8 };
    char *f[NF];
    char *p = line;
    memset(row, 0, sizeof *row);
    for (int i = 0; i < NF; i++) {
        char *bar = strchr(p, '|');
        if (!bar && i < NF - 1) return LRQ_EFORMAT;
        if (bar && i < NF - 1) { *bar = 0; f[i] = p; p = bar + 1; }
        else {
            /* the comment: everything up to the last '|' (a comment may hold '|') */
            char *last = strrchr(p, '|');
            if (!last) return LRQ_EFORMAT;
            *last = 0;
            f[i] = p;
        }
    }
    char *end;
    long long id = strtoll(f[0], &end, 10);
    if (end == f[0] || *end || id <= 0) return LRQ_EFORMAT;
    row->task = -1;
    if (strcmp(f[2], "N/A")) { /* an array element: the array's id and the element's index */
        long long aid = strtoll(f[1], &end, 10);
        if (end == f[1] || *end || aid <= 0) return LRQ_EFORMAT;
        long k = strtol(f[2], &end, 10);
        if (end != f[2] && !*end && k >= 0 && k <= 1 << 20) row->task = (int)k;
        else if (*f[2]) row->task = SLURM_TASKS_PENDING; /* "0-4", "[1,3-5%2]": not split yet */
        else return LRQ_EFORMAT;
        id = aid;
    }
    long raw = strtol(f[5], &end, 10);
    if (end == f[5] || *end || raw < 0 || raw > 0xffff) return LRQ_EFORMAT;
    if (!*f[3]) return LRQ_EFORMAT;
    row->id = id;
    row->state = f[3];
    row->reason = f[4];
    row->raw = (int)raw;
    row->host = f[6];
    row->comment = f[7];
    return 0;
}

int slurm_parse_jobid(const char *text, int64_t *id)
{
    char *end;
    while (*text == ' ' || *text == '\n') text++;
    long long v = strtoll(text, &end, 10);
    if (end == text || v <= 0 || (*end && *end != ';' && *end != '\n')) return LRQ_EFORMAT;
    *id = v;
    return 0;
}

void slurm_resources(const slurm_res_in_t *in, slurm_res_t *o)
{
    int tasks = in->tasks > 1 ? in->tasks : 1;
    o->cpus = (in->threads > 0 ? in->threads : 1) * tasks;
    if (in->max_cpus > 0 && o->cpus > in->max_cpus) o->cpus = (int)in->max_cpus;
    o->cache_mb = in->cache_mb;
    uint64_t model_mb = (in->model_bytes + (1u << 20) - 1) >> 20;
    o->mem_mb = in->mem_mb > 0 ? in->mem_mb : ((int64_t)(2 * model_mb) + in->cache_mb + 512) * tasks;
    if (in->time_limit_min > 0) o->time_min = in->time_limit_min;
    else if (in->job_timeout_s > 0) o->time_min = (in->job_timeout_s + in->grace_s + 59) / 60 + 1;
    else o->time_min = 0;
}

void slurm_args_free(char **argv)
{
    for (char **a = argv; a && *a; a++) free(*a);
    free(argv);
}

int slurm_split_args(const char *s, char ***argvp, int *argcp, lrq_err_t *err)
{
    /* lrqd sets these itself; a second value would break following the job. */
    static const char *const refused[] = {"-o", "--output", "-e", "--error", "-J", "--job-name", "--comment",
                                          "-a", "--array", "-d", "--dependency", "--wrap", "--requeue", "--open-mode", "-D", "--chdir",
                                          "--parsable", "-W", "--wait", "-i", "--input", NULL};
    size_t cap = 0;
    int n = 0;
    char **argv = NULL;
    const char *p = s ? s : "";
    while (*p) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) break;
        const char *b = p;
        while (*p && *p != ' ' && *p != '\t') p++;
        size_t l = (size_t)(p - b);
        for (int i = 0; refused[i]; i++) {
            size_t rl = strlen(refused[i]);
            if (l >= rl && !strncmp(b, refused[i], rl) && (l == rl || b[rl] == '=' || (refused[i][1] != '-' && rl == 2))) {
                slurm_args_free(argv);
                return lrq_errf(err, LRQ_ESPEC, "slurm_sbatch_args: %.*s is set by lrqd itself (docs/daemon.md)",
                                (int)l, b);
            }
        }
        if (lrq_grow(&argv, &cap, (size_t)n + 2, sizeof *argv) || !(argv[n] = strndup(b, l))) {
            if (argv) argv[n] = NULL;
            slurm_args_free(argv);
            return lrq_errf(err, LRQ_ENOMEM, "out of memory");
        }
        argv[++n] = NULL;
    }
    if (!argv && !(argv = calloc(1, sizeof *argv))) return lrq_errf(err, LRQ_ENOMEM, "out of memory");
    *argvp = argv;
    *argcp = n;
    return 0;
}

int slurm_sh_quote(lrq_buf_t *b, const char *s)
{
    if (lrq_buf_append(b, "'", 1)) return LRQ_ENOMEM;
    for (const char *p = s; *p; p++) {
        if (*p == '\'' ? lrq_buf_append(b, "'\\''", 4) : lrq_buf_append(b, p, 1)) return LRQ_ENOMEM;
    }
    return lrq_buf_append(b, "'", 1) ? LRQ_ENOMEM : 0;
}

int slurm_unreachable(const char *errs)
{
    static const char *const msgs[] = {"Unable to contact slurm controller", "Socket timed out",
                                       "Connection refused", "Zero Bytes were transmitted or received",
                                       "backup controller in standby", NULL};
    for (int i = 0; msgs[i]; i++)
        if (strstr(errs ? errs : "", msgs[i])) return 1;
    return 0;
}
