/* lrq_fs.h — small file-system helpers: mkdir -p, atomic whole-file write, read file. */
#ifndef LRQ_FS_H
#define LRQ_FS_H
#include <stddef.h>
#include "lrq_err.h"
int lrq_mkdirs(const char *path, lrq_err_t *err);            /* mode 0755 */
int lrq_mkdirs_mode(const char *path, unsigned mode, lrq_err_t *err);
/* Write to path.tmp, fsync, rename over path, fsync the directory. */
int lrq_write_atomic(const char *path, const void *data, size_t len, lrq_err_t *err);
/* Read a whole regular file of at most max bytes (NUL-terminated, *len excludes it).
 * LRQ_ENOTFOUND when missing, LRQ_EFORMAT when not a regular file or too large. */
int lrq_read_file(const char *path, char **out, size_t *len, size_t max, lrq_err_t *err);
/* Write all bytes to fd, retrying on EINTR/short writes. 0 or -errno. */
int lrq_write_all(int fd, const void *data, size_t len);
int lrq_fsync_dir(const char *path);
#endif
