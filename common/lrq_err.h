/* lrq_err.h — error codes and an error-with-message carrier.
 *
 * Convention (libuv style): 0 = OK, negative = error. System failures return
 * -errno; our own codes live far from the errno range. A function that fails
 * fills `lrq_err_t` with a one-line human message (and, for spec validation,
 * the offending field) and returns the code. `err` may be NULL. */
#ifndef LRQ_ERR_H
#define LRQ_ERR_H
#include <stddef.h>

enum {
    LRQ_OK = 0,
    LRQ_EFORMAT   = -4001, /* malformed file (model, tokenizer, data, checkpoint) */
    LRQ_ESPEC     = -4002, /* invalid job spec value (field set) */
    LRQ_ENOTFOUND = -4003, /* missing file/tensor */
    LRQ_ENOMEM    = -4004, /* allocation failure */
    LRQ_EIO       = -4005, /* read/write failure (errno-less) */
    LRQ_ECHECKSUM = -4006, /* checksum mismatch */
    LRQ_EUNSUPP   = -4007, /* valid but not supported (e.g. byte-level BPE) */
    LRQ_ENUMERIC  = -4008, /* NaN/Inf where a finite value is required */
    LRQ_ECANCEL   = -4009, /* stopped on request (SIGTERM) */
    LRQ_ESCHEMA   = -4010, /* database schema newer than this binary */
};

typedef struct lrq_err {
    int code;
    char field[128];   /* spec field ("weight.bits"), or "" */
    char msg[1024];
} lrq_err_t;

/* Set err (if not NULL) and return code. */
int lrq_errf(lrq_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, naming a spec field. */
int lrq_err_field(lrq_err_t *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *lrq_strerror(int code);

#endif
