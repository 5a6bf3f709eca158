/* lrq_sha256.h — sha256 of files and buffers (nettle). */
#ifndef LRQ_SHA256_H
#define LRQ_SHA256_H
#include <stddef.h>
#include "lrq_err.h"
/* hex: 65 bytes. */
/* Refuses symlinks (O_NOFOLLOW). bytes (may be NULL) gets the file size. */
int lrq_sha256_file(const char *path, char hex[65], long long *bytes, lrq_err_t *err);
void lrq_sha256_hex(const void *data, size_t len, char hex[65]);
#endif
