#include "lrq_err.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int lrq_errf(lrq_err_t *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
        err->field[0] = '\0';
    }
    return code;
}

int lrq_err_field(lrq_err_t *err, const char *field, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = LRQ_ESPEC;
        snprintf(err->field, sizeof err->field, "%s", field);
    }
    return LRQ_ESPEC;
}

const char *lrq_strerror(int code)
{
    switch (code) {
    case LRQ_OK: return "ok";
    case LRQ_EFORMAT: return "malformed file";
    case LRQ_ESPEC: return "invalid job spec";
    case LRQ_ENOTFOUND: return "not found";
    case LRQ_ENOMEM: return "out of memory";
    case LRQ_EIO: return "I/O error";
    case LRQ_ECHECKSUM: return "checksum mismatch";
    case LRQ_EUNSUPP: return "unsupported";
    case LRQ_ENUMERIC: return "non-finite value";
    case LRQ_ECANCEL: return "cancelled";
    case LRQ_ESCHEMA: return "database schema is newer than this binary";
    default: return code < 0 && code > -4000 ? strerror(-code) : "unknown error";
    }
}
