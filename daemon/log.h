/* log.h — lrqd logging: syslog levels, a macro that skips formatting when the
 * level is off (Redis serverLog). Lines go to stderr; under systemd (JOURNAL_STREAM
 * set) with "<N>" priority prefixes and no timestamp, else with a UTC timestamp.
 * Each line carries the pid and a role tag ("d" = daemon). The level is the
 * one process-wide setting of this module. */
#ifndef LRQD_LOG_H
#define LRQD_LOG_H

enum { LOG_LV_ERR = 3, LOG_LV_WARNING = 4, LOG_LV_NOTICE = 5, LOG_LV_INFO = 6, LOG_LV_DEBUG = 7 };

void log_init(int level);
int log_level(void);
int log_level_parse(const char *s);   /* "debug".."error" → level, -1 if unknown */
void log__write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_msg(level, ...) do { if ((level) <= log_level()) log__write((level), __VA_ARGS__); } while (0)
#define log_err(...) log_msg(LOG_LV_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LV_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LV_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LV_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LV_DEBUG, __VA_ARGS__)

#endif
