#include "wk_proto.h"
#include "lrq_clock.h"
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double wk_now(void) { return lrq_mono_s(); }

int wk_proto_init(wk_proto_t *p, const char *workdir)
{
    memset(p, 0, sizeof *p);
    p->t0 = wk_now();
    p->last_emit = -1e9;
    p->throttle_s = 1.0;
    if (!workdir) return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/progress.jsonl", workdir);
    p->progress = fopen(path, "a");
    snprintf(path, sizeof path, "%s/log", workdir);
    struct stat a, b;
    /* The daemon hands us DIR/log as stderr; write it once, not twice. */
    if (!(stat(path, &a) == 0 && fstat(STDERR_FILENO, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino))
        p->log = fopen(path, "a");
    return p->progress ? 0 : -1;
}

void wk_proto_close(wk_proto_t *p)
{
    if (p->progress) fclose(p->progress);
    if (p->log) fclose(p->log);
    p->progress = p->log = NULL;
}

void wk_emit(wk_proto_t *p, json_t *ev)
{
    char *s = json_dumps(ev, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(ev);
    if (!s) return;
    fputs(s, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    if (p->progress) {
        fputs(s, p->progress);
        fputc('\n', p->progress);
        fflush(p->progress);
    }
    free(s);
}

void wk_progress(wk_proto_t *p, const char *stage, long done, long total, double fraction, json_t *extra, int force)
{
    double now = wk_now();
    if (!force && now - p->last_emit < p->throttle_s) {
        json_decref(extra);
        return;
    }
    p->last_emit = now;
    double el = now - p->t0;
    json_t *ev = json_pack("{s:s, s:s, s:I, s:I, s:f, s:f}", "event", "progress", "stage", stage,
                           "done", (json_int_t)done, "total", (json_int_t)total, "elapsed_s", el,
                           "fraction", fraction);
    if (!ev) { json_decref(extra); return; }
    if (fraction > 0.001 && fraction <= 1.0)
        json_object_set_new(ev, "eta_s", json_real(el * (1.0 - fraction) / fraction));
    if (extra) json_object_update(ev, extra);
    json_decref(extra);
    wk_emit(p, ev);
}

void wk_log(wk_proto_t *p, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    time_t t = time(NULL);
    struct tm tm;
    char ts[32];
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s lrq-worker[%d]: %s\n", ts, (int)getpid(), msg);
    if (p && p->log) {
        fprintf(p->log, "%s lrq-worker[%d]: %s\n", ts, (int)getpid(), msg);
        fflush(p->log);
    }
}
