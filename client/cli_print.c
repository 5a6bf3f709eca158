/* cli_print.c — lrqctl output: number/duration formatting, the progress line,
 * aligned tables, and the per-resource tables (job, job list, metrics,
 * artifacts). Every reader here tolerates any JSON: a missing or wrongly
 * typed field prints as "-" or is left out; nothing here can crash on a
 * malformed server response. */
#include "lrq_buf.h"
#include "cli.h"
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- JSON access */
const char *cli_jstr(const json_t *o, const char *key)
{
    json_t *v = o && json_is_object(o) ? json_object_get(o, key) : NULL;
    return v && json_is_string(v) ? json_string_value(v) : NULL;
}

int cli_jnum(const json_t *o, const char *key, double *v)
{
    json_t *x = o && json_is_object(o) ? json_object_get(o, key) : NULL;
    if (!x || !json_is_number(x))
        return 0;
    *v = json_number_value(x);
    return isfinite(*v);
}

int cli_jint(const json_t *o, const char *key, long long *v)
{
    json_t *x = o && json_is_object(o) ? json_object_get(o, key) : NULL;
    if (!x || !json_is_integer(x))
        return 0;
    *v = json_integer_value(x);
    return 1;
}

/* ---------------------------------------------------------------- formatting */
void cli_sanitize(char *dst, size_t n, const char *s)
{
    if (!n)
        return;
    size_t k = 0;
    for (; s && *s && k + 1 < n; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\n' || ch == '\r' || ch == '\t')
            ch = ' ';
        else if (ch < 0x20 || ch == 0x7f)
            ch = '?';
        dst[k++] = (char)ch;
    }
    while (k > 0 && dst[k - 1] == ' ')
        k--;
    dst[k] = '\0';
}

void cli_fmt_sci(char *buf, size_t n, double v)
{
    if (isnan(v)) { snprintf(buf, n, "nan"); return; }
    if (isinf(v)) { snprintf(buf, n, v < 0 ? "-inf" : "inf"); return; }
    if (v == 0) { snprintf(buf, n, "0"); return; }
    char t[64];
    snprintf(t, sizeof t, "%.1e", v);          /* "-1.2e-03" */
    char *e = strchr(t, 'e');
    if (!e) { snprintf(buf, n, "%s", t); return; }
    *e = '\0';
    const char *x = e + 1;
    int neg = *x == '-';
    if (*x == '-' || *x == '+')
        x++;
    while (*x == '0' && x[1])
        x++;
    snprintf(buf, n, "%se%s%s", t, neg ? "-" : "", x);
}

void cli_fmt_duration(char *buf, size_t n, double s)
{
    if (!isfinite(s) || s < 0 || s > 1e12) { snprintf(buf, n, "?"); return; }
    long long t = llround(s);
    if (t < 60) snprintf(buf, n, "%llds", t);
    else if (t < 3600) snprintf(buf, n, "%lldm%02llds", t / 60, t % 60);
    else if (t < 86400) snprintf(buf, n, "%lldh%02lldm", t / 3600, t % 3600 / 60);
    else snprintf(buf, n, "%lldd%02lldh", t / 86400, t % 86400 / 3600);
}

void cli_fmt_size(char *buf, size_t n, double b)
{
    static const char *u[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
    if (!isfinite(b) || b < 0) { snprintf(buf, n, "?"); return; }
    if (b < 1024) { snprintf(buf, n, "%.0f B", b); return; }
    int i = -1;
    while (b >= 1024 && i < 4)
        b /= 1024, i++;
    snprintf(buf, n, "%.1f %s", b, u[i]);
}

/* Bounded appender: never overflows, keeps NUL termination. */
typedef struct { char *b; size_t n, len; } sbuf_t;
static void sb_add(sbuf_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf_t *s, const char *fmt, ...)
{
    if (s->len + 1 >= s->n)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(s->b + s->len, s->n - s->len, fmt, ap);
    va_end(ap);
    if (k > 0)
        s->len = s->len + (size_t)k < s->n ? s->len + (size_t)k : s->n - 1;
}

size_t cli_progress_format(char *buf, size_t n, const json_t *p, int bar)
{
    if (!n)
        return 0;
    buf[0] = '\0';
    sbuf_t s = { buf, n, 0 };
    double f, x;
    long long a, b;
    int have_f = cli_jnum(p, "fraction", &f);
    if (have_f)
        f = f < 0 ? 0 : f > 1 ? 1 : f;
    if (bar) {
        int fill = have_f ? (int)lround(f * 10) : 0;
        sb_add(&s, "[");
        for (int i = 0; i < 10; i++)
            sb_add(&s, "%c", i < fill ? '#' : '.');
        sb_add(&s, "] ");
    }
    if (have_f)
        sb_add(&s, "%d%%", (int)floor(f * 100 + 1e-9));
    else
        sb_add(&s, "?%%");
    int have_block = cli_jint(p, "block", &a);
    if (have_block) {
        if (cli_jint(p, "blocks", &b))
            sb_add(&s, " block %lld/%lld", a, b);
        else
            sb_add(&s, " block %lld", a);
    } else {
        const char *st = cli_jstr(p, "stage");
        if (st && *st) {
            char t[64];
            cli_sanitize(t, sizeof t, st);
            sb_add(&s, " %s", t);
        }
    }
    if (cli_jint(p, "iteration", &a)) {
        if (cli_jint(p, "iterations", &b))
            sb_add(&s, " iter %lld/%lld", a, b);
        else
            sb_add(&s, " iter %lld", a);
    }
    if (cli_jnum(p, "loss", &x)) {
        char t[32];
        cli_fmt_sci(t, sizeof t, x);
        sb_add(&s, " loss %s", t);
    }
    if (cli_jnum(p, "eta_s", &x) && x >= 0) {
        char t[32];
        cli_fmt_duration(t, sizeof t, x);
        sb_add(&s, " ETA %s", t);
    }
    return s.len;
}

/* ---------------------------------------------------------------- tables */
int cli_table_init(cli_table_t *t, int ncols, const char *const *header)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    return cli_table_add(t, header);
}

int cli_table_add(cli_table_t *t, const char *const *row)
{
    if (lrq_grow(&t->cells, &t->cap, ((size_t)t->nrows + 1) * (size_t)t->ncols, sizeof *t->cells))
        return LRQ_ENOMEM;
    char **r = t->cells + (size_t)t->nrows * (size_t)t->ncols;
    for (int i = 0; i < t->ncols; i++) {
        char tmp[512];
        cli_sanitize(tmp, sizeof tmp, row[i] ? row[i] : "-");
        r[i] = strdup(tmp);
        if (!r[i]) {
            while (i-- > 0)
                free(r[i]);
            return LRQ_ENOMEM;
        }
    }
    t->nrows++;
    return 0;
}

void cli_table_print(const cli_table_t *t, FILE *f)
{
    size_t w[32] = { 0 };
    int nc = t->ncols < 32 ? t->ncols : 32;
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < nc; c++) {
            size_t l = strlen(t->cells[(size_t)r * t->ncols + c]);
            if (l > w[c])
                w[c] = l;
        }
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < nc; c++) {
            const char *v = t->cells[(size_t)r * t->ncols + c];
            int last = c == nc - 1;
            if (t->right & (1u << c))
                fprintf(f, "%*s%s", (int)w[c], v, last ? "" : "  ");
            else if (last)
                fputs(v, f);
            else
                fprintf(f, "%-*s  ", (int)w[c], v);
        }
        fputc('\n', f);
    }
}

void cli_table_free(cli_table_t *t)
{
    for (size_t i = 0; i < (size_t)t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

/* ---------------------------------------------------------------- JSON output */
void cli_json_print(FILE *f, const json_t *j, int compact)
{
    size_t fl = JSON_ENCODE_ANY | JSON_REAL_PRECISION(15) | (compact ? JSON_COMPACT : JSON_INDENT(2));
    char *s = j ? json_dumps(j, fl) : NULL;
    fprintf(f, "%s\n", s ? s : "null");
    free(s);
}

void cli_body_print(FILE *f, const cli_resp_t *r)
{
    if (r->body && r->len) {
        fwrite(r->body, 1, r->len, f);
        if (r->body[r->len - 1] != '\n')
            fputc('\n', f);
    }
}

/* ---------------------------------------------------------------- resources */
/* Any scalar as text; "-" for null/absent. */
static void scalar(char *buf, size_t n, const json_t *v)
{
    if (!v || json_is_null(v)) snprintf(buf, n, "-");
    else if (json_is_string(v)) cli_sanitize(buf, n, json_string_value(v));
    else if (json_is_integer(v)) snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v)) snprintf(buf, n, "%.6g", json_real_value(v));
    else if (json_is_true(v)) snprintf(buf, n, "true");
    else if (json_is_false(v)) snprintf(buf, n, "false");
    else snprintf(buf, n, json_is_array(v) ? "[...]" : "{...}");
}

static json_t *jget(const json_t *o, const char *k)
{
    return o && json_is_object(o) ? json_object_get(o, k) : NULL;
}

void cli_print_job(FILE *f, const json_t *job)
{
    static const char *const hdr[] = { "FIELD", "VALUE" };
    cli_table_t t;
    if (cli_table_init(&t, 2, hdr) < 0)
        return;
    char v[512], a[64], m[64];
    static const char *const keys[] = { "id", "name", "state", "method", "priority" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        scalar(v, sizeof v, jget(job, keys[i]));
        if (i == 2 && json_is_true(jget(job, "cancel_requested")))
            strncat(v, " (cancel requested)", sizeof v - strlen(v) - 1);
        const char *row[] = { keys[i], v };
        cli_table_add(&t, row);
    }
    scalar(a, sizeof a, jget(job, "attempts"));
    scalar(m, sizeof m, jget(job, "max_attempts"));
    snprintf(v, sizeof v, "%s/%s", a, m);
    const char *row[] = { "attempts", v };
    cli_table_add(&t, row);
    static const char *const ts[] = { "created_at", "started_at", "finished_at" };
    for (size_t i = 0; i < 3; i++) {
        scalar(v, sizeof v, jget(job, ts[i]));
        const char *r2[] = { ts[i], v };
        cli_table_add(&t, r2);
    }
    json_t *p = jget(job, "progress");
    if (p && json_is_object(p)) {
        cli_progress_format(v, sizeof v, p, 1);
        double el;
        if (cli_jnum(p, "elapsed_s", &el)) {
            char d[32];
            cli_fmt_duration(d, sizeof d, el);
            strncat(v, " elapsed ", sizeof v - strlen(v) - 1);
            strncat(v, d, sizeof v - strlen(v) - 1);
        }
    } else {
        snprintf(v, sizeof v, "-");
    }
    const char *r3[] = { "progress", v };
    cli_table_add(&t, r3);
    scalar(v, sizeof v, jget(job, "error"));
    const char *r4[] = { "error", v };
    cli_table_add(&t, r4);
    cli_table_print(&t, f);
    cli_table_free(&t);
}

void cli_print_job_list(FILE *f, const json_t *jobs)
{
    static const char *const hdr[] = { "ID", "STATE", "METHOD", "NAME", "CREATED", "PROGRESS/ERROR" };
    cli_table_t t;
    if (cli_table_init(&t, 6, hdr) < 0)
        return;
    t.right = 1;
    size_t i;
    json_t *job;
    if (jobs && json_is_array(jobs)) {
        json_array_foreach(jobs, i, job) {
            char id[32], st[64], me[32], na[40], cr[40], pr[200];
            scalar(id, sizeof id, jget(job, "id"));
            scalar(st, sizeof st, jget(job, "state"));
            scalar(me, sizeof me, jget(job, "method"));
            scalar(na, sizeof na, jget(job, "name"));
            scalar(cr, sizeof cr, jget(job, "created_at"));
            const char *state = cli_jstr(job, "state");
            json_t *p = jget(job, "progress");
            if (state && strcmp(state, "running") == 0 && p && json_is_object(p))
                cli_progress_format(pr, sizeof pr, p, 0);
            else if (cli_jstr(job, "error"))
                scalar(pr, sizeof pr, jget(job, "error"));
            else
                snprintf(pr, sizeof pr, "-");
            const char *row[] = { id, st, me, na, cr, pr };
            cli_table_add(&t, row);
        }
    }
    if (t.nrows == 1)
        fprintf(f, "no jobs\n");
    else
        cli_table_print(&t, f);
    cli_table_free(&t);
}

/* The headline metrics, first and with readable labels. Each label lists the
 * places a worker may put the value (dotted paths); the first present wins. */
static const struct { const char *label; const char *paths[4]; } metric_head[] = {
    { "perplexity (float)", { "fp.perplexity", "fp_perplexity", "perplexity_fp" } },
    { "perplexity (quantized)", { "quantized.perplexity", "q_perplexity", "quantized_perplexity" } },
    { "KL(float||quantized)/token", { "quantized.kl_divergence", "kl_divergence", "kl" } },
    { "top-1 agreement", { "quantized.top1_agreement", "top1_agreement", "top1" } },
};
#define METRIC_NHEAD (sizeof metric_head / sizeof metric_head[0])

static json_t *jpath(const json_t *o, const char *path)
{
    char seg[128];
    while (o && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof seg)
            return NULL;
        memcpy(seg, path, n);
        seg[n] = '\0';
        o = jget(o, seg);
        path += n + (dot ? 1 : 0);
    }
    return (json_t *)o;
}

typedef struct mctx {
    cli_table_t summary;
    const char *used[METRIC_NHEAD];   /* headline paths already shown */
    const json_t *tables[16];         /* arrays printed as their own table */
    char names[16][128];
    int ntables;
} mctx_t;

static void metrics_walk(mctx_t *m, const char *prefix, const json_t *o, int depth)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        char key[128], val[256];
        snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", k);
        int used = 0;
        for (size_t i = 0; i < METRIC_NHEAD; i++)
            used |= m->used[i] && strcmp(m->used[i], key) == 0;
        if (used)
            continue;
        char skey[128];
        cli_sanitize(skey, sizeof skey, key);
        if (json_is_object(v) && depth < 4) {
            metrics_walk(m, key, v, depth + 1);
        } else if (json_is_array(v) && json_array_size(v) > 0 && m->ntables < 16) {
            m->tables[m->ntables] = v;
            snprintf(m->names[m->ntables++], 128, "%s", skey);
        } else {
            scalar(val, sizeof val, v);
            const char *row[] = { skey, val };
            cli_table_add(&m->summary, row);
        }
    }
}

/* An array: objects → one row each, columns = union of scalar keys;
 * scalars → INDEX VALUE rows. */
static void metrics_array(FILE *f, const char *name, const json_t *a)
{
    const char *cols[8];
    int nc = 0;
    size_t i;
    json_t *e;
    json_array_foreach((json_t *)a, i, e) {
        const char *k;
        json_t *v;
        if (!json_is_object(e))
            continue;
        json_object_foreach(e, k, v) {
            if (json_is_object(v) || json_is_array(v))
                continue;
            int seen = 0;
            for (int c = 0; c < nc; c++)
                seen |= strcmp(cols[c], k) == 0;
            if (!seen && nc < 8)
                cols[nc++] = k;
        }
    }
    cli_table_t t;
    char sname[128];
    cli_sanitize(sname, sizeof sname, name);
    fprintf(f, "\n%s:\n", sname);
    if (nc == 0) {
        static const char *const hdr[] = { "INDEX", "VALUE" };
        if (cli_table_init(&t, 2, hdr) < 0)
            return;
        t.right = 3;
        json_array_foreach((json_t *)a, i, e) {
            char ix[32], val[256];
            snprintf(ix, sizeof ix, "%zu", i);
            scalar(val, sizeof val, e);
            const char *row[] = { ix, val };
            cli_table_add(&t, row);
        }
    } else {
        char hdrs[8][64];
        const char *h[8];
        for (int c = 0; c < nc; c++) {
            cli_sanitize(hdrs[c], sizeof hdrs[c], cols[c]);
            h[c] = hdrs[c];
        }
        if (cli_table_init(&t, nc, h) < 0)
            return;
        for (int c = 0; c < nc; c++) {   /* right-align the numeric columns */
            int num = 1;
            json_array_foreach((json_t *)a, i, e) {
                json_t *v = jget(e, cols[c]);
                num &= !v || json_is_number(v) || json_is_null(v);
            }
            t.right |= (unsigned)num << c;
        }
        json_array_foreach((json_t *)a, i, e) {
            char cells[8][128];
            const char *row[8];
            for (int c = 0; c < nc; c++) {
                json_t *v = jget(e, cols[c]);
                double x = v && json_is_real(v) ? json_real_value(v) : 0;
                if (v && json_is_real(v) && x != 0 && (fabs(x) < 1e-3 || fabs(x) >= 1e5))
                    cli_fmt_sci(cells[c], sizeof cells[c], x);   /* small losses */
                else
                    scalar(cells[c], sizeof cells[c], v);
                row[c] = cells[c];
            }
            cli_table_add(&t, row);
        }
    }
    cli_table_print(&t, f);
    cli_table_free(&t);
}

void cli_print_metrics(FILE *f, const json_t *metrics)
{
    static const char *const hdr[] = { "METRIC", "VALUE" };
    mctx_t m;
    memset(&m, 0, sizeof m);
    if (cli_table_init(&m.summary, 2, hdr) < 0)
        return;
    if (metrics && json_is_object(metrics)) {
        for (size_t i = 0; i < METRIC_NHEAD; i++) {
            for (size_t k = 0; k < 4 && metric_head[i].paths[k]; k++) {
                json_t *v = jpath(metrics, metric_head[i].paths[k]);
                if (v && json_is_number(v)) {
                    char val[64];
                    scalar(val, sizeof val, v);
                    const char *row[] = { metric_head[i].label, val };
                    cli_table_add(&m.summary, row);
                    m.used[i] = metric_head[i].paths[k];
                    break;
                }
            }
        }
        metrics_walk(&m, "", metrics, 0);
    } else if (metrics && json_is_array(metrics)) {
        m.tables[0] = metrics;
        snprintf(m.names[0], 128, "metrics");
        m.ntables = 1;
    }
    if (m.summary.nrows > 1)
        cli_table_print(&m.summary, f);
    else if (m.ntables == 0)
        fprintf(f, "no metrics\n");
    for (int i = 0; i < m.ntables; i++)
        metrics_array(f, m.names[i], m.tables[i]);
    cli_table_free(&m.summary);
}

void cli_print_artifacts(FILE *f, const json_t *arts)
{
    static const char *const hdr[] = { "PATH", "SIZE", "SHA256" };
    cli_table_t t;
    if (cli_table_init(&t, 3, hdr) < 0)
        return;
    t.right = 2;
    double total = 0;
    size_t i;
    json_t *a;
    if (arts && json_is_array(arts)) {
        json_array_foreach(arts, i, a) {
            char p[256], sz[32], sh[80];
            double s;
            scalar(p, sizeof p, jget(a, "path"));
            if (cli_jnum(a, "size", &s)) {
                cli_fmt_size(sz, sizeof sz, s);
                total += s;
            } else {
                snprintf(sz, sizeof sz, "-");
            }
            scalar(sh, sizeof sh, jget(a, "sha256"));
            const char *row[] = { p, sz, sh };
            cli_table_add(&t, row);
        }
    }
    if (t.nrows == 1) {
        fprintf(f, "no artifacts\n");
    } else {
        char tot[32];
        cli_fmt_size(tot, sizeof tot, total);
        cli_table_print(&t, f);
        fprintf(f, "%d artifact%s, %s\n", t.nrows - 1, t.nrows == 2 ? "" : "s", tot);
    }
    cli_table_free(&t);
}
