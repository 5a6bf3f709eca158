/* log.c — see log.h. */
#include "log.h"
#include "lrq_clock.h"
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log__level = LOG_LV_INFO;
static int log__journal = -1;

void log_init(int level)
{
    log__level = level;
    log__journal = getenv("JOURNAL_STREAM") != NULL;
}

int log_level(void) { return log__level; }

int log_level_parse(const char *s)
{
    static const struct { const char *n; int l; } t[] = {
        {"error", LOG_LV_ERR}, {"warning", LOG_LV_WARNING}, {"warn", LOG_LV_WARNING},
        {"notice", LOG_LV_NOTICE}, {"info", LOG_LV_INFO}, {"debug", LOG_LV_DEBUG}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (s && !strcmp(s, t[i].n)) return t[i].l;
    return -1;
}

void log__write(int level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One line per message: control characters (e.g. from a worker) become '?'. */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20) *p = '?';
    static const char lc[] = "???EWNID";
    if (log__journal > 0) {
        fprintf(stderr, "<%d>%d d %s\n", level, (int)getpid(), msg);
    } else {
        uint64_t ms = lrq_wall_ms();
        time_t sec = (time_t)(ms / 1000);
        struct tm tm;
        char ts[32];
        gmtime_r(&sec, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03dZ %d d %c %s\n", ts, (int)(ms % 1000), (int)getpid(),
                lc[level & 7], msg);
    }
}
