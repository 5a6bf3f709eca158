/* lrq-worker — runs one quantization job, or evaluates / samples a model.
 *
 *   lrq-worker run --spec job.json --workdir DIR [--blocks A-B]
 *   lrq-worker eval --model M [--tokenizer T] [--quantized DIR] --data D --seq-len T [--max-windows K] [--threads N]
 *   lrq-worker generate --model M [--tokenizer T] [--steps N]
 *   lrq-worker validate --spec job.json
 *   lrq-worker tokenize --model M [--tokenizer T] --data D   (the token stream eval/calibration use, JSON)
 *
 * Exit status of run: 0 done, 65 permanent failure (bad input), 75 stopped by
 * SIGTERM after a checkpoint, 70 other failure (the daemon retries). */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <cblas.h>
#include "wk_job.h"
#include "wk_methods.h"
#include "wk_act.h"
#include "eng_forward.h"
#include "lrq_fs.h"

static volatile sig_atomic_t g_stop; /* the only global: written by the signal handler */

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f)
{
    fputs("usage: lrq-worker run --spec SPEC.json --workdir DIR [--blocks A-B | --task K | --assemble]\n"
          "       lrq-worker eval --model M [--tokenizer T] [--quantized DIR] --data D [--seq-len 256]\n"
          "                       [--max-windows K] [--threads N] [--batch 4] [--activation ACT.json]\n"
          "       lrq-worker generate --model M [--tokenizer T] [--steps 256]\n"
          "       lrq-worker validate --spec SPEC.json\n"
          "       lrq-worker tokenize --model M [--tokenizer T] --data D   (ids as JSON)\n"
          "\n"
          "run: progress events (JSON lines) on stdout, the log on stderr, results in DIR\n"
          "(docs/worker-protocol.md). Exit status: 0 done; 65 permanent failure (bad spec\n"
          "value, unreadable or corrupt input, disk full); 75 stopped by SIGTERM/SIGINT\n"
          "after a checkpoint (run again to resume); 70 or other: transient failure.\n"
          "--blocks A-B: task mode of a \"pipeline\": \"parallel\" lrq/flexround job: reconstruct\n"
          "blocks A..B-1 from the FP model's inputs into DIR/ckpt and stop (no eval, no export).\n"
          "--task K: the same for the K-th of the spec's \"tasks\" ranges (a Slurm array element;\n"
          "K beyond the blocks: nothing to do). --assemble: such a job once its tasks have run\n"
          "elsewhere: their block files, then evaluation and export (missing blocks trained here).\n",
          f);
}

static int is_permanent(int rc)
{
    return rc == LRQ_ESPEC || rc == LRQ_EFORMAT || rc == LRQ_ENOTFOUND || rc == LRQ_EUNSUPP || rc == LRQ_ENUMERIC ||
           rc == -ENOENT || rc == -EACCES || rc == -EISDIR || rc == -ENOTDIR ||
           /* A full disk fails the job cleanly (checkpoints intact) instead of retrying into it. */
           rc == -ENOSPC || rc == -EDQUOT;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {{"spec", 1, 0, 's'},   {"workdir", 1, 0, 'w'},  {"blocks", 1, 0, 'b'},
                                         {"task", 1, 0, 'k'},   {"assemble", 0, 0, 'a'}, {0, 0, 0, 0}};
    const char *spec = NULL, *workdir = NULL, *blocks = NULL, *task = NULL;
    int o, b0 = 0, b1 = 0, task_index = -1, assemble = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 's') spec = optarg;
        else if (o == 'w') workdir = optarg;
        else if (o == 'b') blocks = optarg;
        else if (o == 'k') task = optarg;
        else if (o == 'a') assemble = 1;
        else { usage(stderr); return 64; }
    }
    if (!spec || !workdir || (!!blocks + !!task + assemble) > 1) { usage(stderr); return 64; }
    if (task) {
        char tail = 0;
        if (sscanf(task, "%d%c", &task_index, &tail) != 1 || task_index < 0 || task_index > 65535) {
            fprintf(stderr, "lrq-worker: --task: expected an index 0..65535 (got '%s')\n", task);
            return WK_EXIT_FAIL;
        }
    }
    if (blocks) {
        char tail = 0;
        if (sscanf(blocks, "%d-%d%c", &b0, &b1, &tail) != 2 || b0 < 0 || b1 <= b0) {
            fprintf(stderr, "lrq-worker: --blocks: expected A-B with 0 <= A < B (got '%s')\n", blocks);
            return WK_EXIT_FAIL;
        }
        /* A task dies with its coordinator (which restarts it), never outlives it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    wk_job_t job;
    memset(&job, 0, sizeof job);
    job.stop = &g_stop;
    lrq_err_t err = {0};
    int rc = lrq_mkdirs(workdir, &err);
    if (rc) {
        fprintf(stderr, "lrq-worker: %s\n", err.msg);
        return WK_EXIT_FAIL;
    }
    snprintf(job.workdir, sizeof job.workdir, "%s", workdir);
    job.spec_path = spec;
    job.task_b0 = b0;
    job.task_b1 = b1;
    job.task_k = task ? task_index + 1 : 0;
    job.task_mode = blocks || task;
    job.assemble = assemble;
    /* A task's events go to its coordinator (or Slurm's output file) only; DIR/progress.jsonl is the job's. */
    wk_proto_init(&job.proto, job.task_mode ? NULL : workdir);
    rc = lrq_spec_load_file(spec, &job.spec, &job.spec_json, &err);
    if (!rc && (job.task_mode || assemble) &&
        (job.spec.pipeline != LRQ_PIPE_PARALLEL || (job.spec.method != LRQ_M_LRQ && job.spec.method != LRQ_M_FLEXROUND)))
        rc = lrq_err_field(&err, blocks ? "--blocks" : task ? "--task" : "--assemble",
                           "needs a spec with \"pipeline\": \"parallel\" and method lrq or flexround");
    if (!rc && blocks && job.spec.threads <= 0) { /* "all cores" is shared by the job's tasks */
        cpu_set_t cs;
        int ncpu = sched_getaffinity(0, sizeof cs, &cs) == 0 ? CPU_COUNT(&cs) : 1;
        job.spec.threads = ncpu / (job.spec.tasks > 1 ? job.spec.tasks : 1);
        if (job.spec.threads < 1) job.spec.threads = 1;
    }
    if (!rc) {
        wk_log(&job.proto, "job %s: method %s, W%d%s%s", spec, lrq_method_name[job.spec.method], job.spec.bits,
               job.spec.group_size ? " group " : " per-channel", job.spec.group_size ? "" : "");
        wk_emit(&job.proto, json_pack("{s:s, s:s}", "event", "start", "job_method", lrq_method_name[job.spec.method]));
        rc = wk_job_run(&job, &err);
    }
    int status;
    if (!rc) {
        wk_emit(&job.proto, json_pack("{s:s, s:O, s:O?}", "event", "done", "metrics", job.metrics, "artifacts",
                                      job.artifacts));
        wk_log(&job.proto, "done");
        status = WK_EXIT_OK;
    } else {
        status = rc == LRQ_ECANCEL ? WK_EXIT_STOPPED : is_permanent(rc) ? WK_EXIT_FAIL : WK_EXIT_TRANSIENT;
        char msg[1200];
        if (err.field[0]) snprintf(msg, sizeof msg, "%s: %s", err.field, err.msg);
        else snprintf(msg, sizeof msg, "%s", err.msg[0] ? err.msg : lrq_strerror(rc));
        wk_log(&job.proto, "error: %s", msg);
        wk_emit(&job.proto, json_pack("{s:s, s:s, s:s?}", "event", "error", "message", msg, "field",
                                      err.field[0] ? err.field : NULL));
    }
    if (job.ql) {
        for (int i = 0; job.model && i < job.model->cfg.n_layers * ENG_NLIN; i++) eng_qlinear_close(&job.ql[i]);
        free(job.ql);
    }
    wk_lr_free(&job);
    json_decref(job.metrics);
    json_decref(job.artifacts);
    json_decref(job.spec_json);
    lrq_spec_close(&job.spec);
    eng_tok_free(job.tok);
    eng_model_free(job.model);
    wk_proto_close(&job.proto);
    return status;
}

static int load_tok(const char *model, const char *tok, eng_tok_t **out, lrq_err_t *err)
{
    char *path = NULL;
    int rc = eng_tok_locate(model, tok, &path, err);
    if (!rc) rc = eng_tok_load(path, out, err);
    free(path);
    return rc;
}

static void on_emit(void *ctx, const char *piece)
{
    (void)ctx;
    fputs(piece, stdout);
    fflush(stdout);
}

static int cmd_generate(int argc, char **argv)
{
    static const struct option opts[] = {{"model", 1, 0, 'm'}, {"tokenizer", 1, 0, 't'}, {"steps", 1, 0, 'n'}, {0, 0, 0, 0}};
    const char *model = NULL, *tokp = NULL;
    int steps = 256, o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'm') model = optarg;
        else if (o == 't') tokp = optarg;
        else if (o == 'n') steps = atoi(optarg);
        else { usage(stderr); return 64; }
    }
    if (!model || steps < 1) { usage(stderr); return 64; }
    lrq_err_t err = {0};
    eng_model_t *m = NULL;
    eng_tok_t *tok = NULL;
    eng_runner_t *r = NULL;
    int rc = eng_model_open(model, &m, &err);
    if (!rc) rc = load_tok(model, tokp, &tok, &err);
    if (!rc) rc = eng_runner_new(m, 1, steps + 1, NULL, &r, &err); /* one sequence: OpenBLAS threads alone */
    if (!rc) rc = eng_generate(r, tok, steps, on_emit, NULL, &err);
    if (!rc) putchar('\n');
    else fprintf(stderr, "lrq-worker: %s\n", err.msg);
    eng_runner_free(r);
    eng_tok_free(tok);
    eng_model_free(m);
    return rc ? 1 : 0;
}

/* The id stream lrq evaluates and calibrates on (docs/formats.md, tokenizers), as one JSON array. */
static int cmd_tokenize(int argc, char **argv)
{
    static const struct option opts[] = {{"model", 1, 0, 'm'}, {"tokenizer", 1, 0, 't'}, {"data", 1, 0, 'd'}, {0, 0, 0, 0}};
    const char *model = NULL, *tokp = NULL, *data = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'm') model = optarg;
        else if (o == 't') tokp = optarg;
        else if (o == 'd') data = optarg;
        else { usage(stderr); return 64; }
    }
    if (!model || !data) { usage(stderr); return 64; }
    lrq_err_t err = {0};
    eng_model_t *m = NULL;
    eng_tok_t *tok = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = eng_model_open(model, &m, &err);
    if (!rc) rc = load_tok(model, tokp, &tok, &err);
    if (!rc) rc = eng_data_load(data, tok, m->cfg.vocab_size, &ids, &n, &err);
    if (!rc) {
        putchar('[');
        for (size_t i = 0; i < n; i++) printf(i ? ",%d" : "%d", (int)ids[i]);
        puts("]");
    } else fprintf(stderr, "lrq-worker: %s\n", err.msg);
    free(ids);
    eng_tok_free(tok);
    eng_model_free(m);
    return rc ? 1 : 0;
}

static void on_eval_progress(void *ctx, int done, int total)
{
    (void)ctx;
    if (isatty(STDERR_FILENO)) fprintf(stderr, "\reval %d/%d windows", done, total);
    if (done == total && isatty(STDERR_FILENO)) fputc('\n', stderr);
}

static int cmd_eval(int argc, char **argv)
{
    static const struct option opts[] = {{"model", 1, 0, 'm'}, {"tokenizer", 1, 0, 't'}, {"quantized", 1, 0, 'q'},
                                         {"data", 1, 0, 'd'}, {"seq-len", 1, 0, 'T'}, {"max-windows", 1, 0, 'k'},
                                         {"threads", 1, 0, 'j'}, {"batch", 1, 0, 'b'}, {"activation", 1, 0, 'a'},
                                         {0, 0, 0, 0}};
    const char *model = NULL, *tokp = NULL, *qdir = NULL, *data = NULL, *actp = NULL;
    int T = 256, maxw = 0, threads = 0, B = 4, o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 't': tokp = optarg; break;
        case 'q': qdir = optarg; break;
        case 'd': data = optarg; break;
        case 'T': T = atoi(optarg); break;
        case 'k': maxw = atoi(optarg); break;
        case 'j': threads = atoi(optarg); break;
        case 'b': B = atoi(optarg); break;
        case 'a': actp = optarg; break; /* a job's artifacts/activation.json (docs/formats.md) */
        default: usage(stderr); return 64;
        }
    }
    if (!model || !data || T < 2 || B < 1) { usage(stderr); return 64; }
    /* the pool does the threading; OpenBLAS, called from its tasks, stays single-threaded */
    if (threads < 1) threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    eng_pool_t *pool = eng_pool_new(threads); /* NULL (out of memory): serial, still correct */
    lrq_err_t err = {0};
    eng_model_t *m = NULL, *qm = NULL;
    eng_tok_t *tok = NULL;
    eng_runner_t *fp = NULL, *q = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    eng_eval_result_t res;
    int rc = eng_model_open(model, &m, &err);
    if (!rc) rc = load_tok(model, tokp, &tok, &err);
    if (!rc) rc = eng_data_load(data, tok, m->cfg.vocab_size, &ids, &n, &err);
    if (!rc) rc = eng_runner_new(m, B, T, pool, &fp, &err);
    if (!rc && qdir) {
        rc = eng_model_open(qdir, &qm, &err);
        if (!rc && memcmp(&qm->cfg.dim, &m->cfg.dim, sizeof(int) * 7))
            rc = lrq_errf(&err, LRQ_EFORMAT, "%s: shape differs from %s", qdir, model);
        if (!rc) rc = eng_runner_new(qm, B, T, pool, &q, &err);
    }
    eng_actq_t aq = {0};
    if (!rc && actp) { /* activation quantizers on the evaluated model (the quantized one, or the model itself) */
        rc = wk_act_load(actp, qm ? qm : m, &aq, &err);
        if (!rc && !q) rc = eng_runner_new(m, B, T, pool, &q, &err);
        if (!rc) eng_runner_set_actq(q, aq.layer);
    }
    if (!rc) rc = eng_eval(fp, q, ids, n, T, maxw, &res, on_eval_progress, NULL, &err);
    if (!rc) {
        json_t *j = json_pack("{s:f, s:I}", "perplexity", res.perplexity, "tokens", (json_int_t)res.tokens);
        if (q) {
            json_object_set_new(j, "quantized_perplexity", json_real(res.q_perplexity));
            json_object_set_new(j, "kl_divergence", json_real(res.kl_divergence));
            json_object_set_new(j, "top1_agreement", json_real(res.top1_agreement));
        }
        char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
        puts(s);
        free(s);
        json_decref(j);
    } else {
        fprintf(stderr, "lrq-worker: %s\n", err.msg);
    }
    free(ids);
    eng_runner_free(fp);
    eng_runner_free(q);
    eng_tok_free(tok);
    eng_model_free(m);
    eng_model_free(qm);
    eng_actq_close(&aq);
    eng_pool_free(pool);
    return rc ? 1 : 0;
}

static int cmd_validate(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "--spec")) { usage(stderr); return 64; }
    lrq_spec_t s;
    lrq_err_t err = {0};
    int rc = lrq_spec_load_file(argv[2], &s, NULL, &err);
    if (rc) {
        fprintf(stderr, "%s%s%s\n", err.field, err.field[0] ? ": " : "", err.msg);
        return WK_EXIT_FAIL;
    }
    lrq_spec_close(&s);
    puts("ok");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) { usage(stderr); return 64; }
    const char *cmd = argv[1];
    argv++;
    argc--;
    if (!strcmp(cmd, "run")) return cmd_run(argc, argv);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc, argv);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc, argv);
    if (!strcmp(cmd, "validate")) return cmd_validate(argc, argv);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc, argv);
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) { usage(stdout); return 0; }
    fprintf(stderr, "lrq-worker: unknown command '%s'\n", cmd);
    usage(stderr);
    return 64;
}
