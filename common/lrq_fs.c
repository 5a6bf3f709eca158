#include "lrq_fs.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int lrq_mkdirs(const char *path, lrq_err_t *err) { return lrq_mkdirs_mode(path, 0755, err); }

int lrq_mkdirs_mode(const char *path, unsigned mode, lrq_err_t *err)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return lrq_errf(err, -ENAMETOOLONG, "%s: path too long", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST) return lrq_errf(err, -errno, "mkdir %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST) return lrq_errf(err, -errno, "mkdir %s: %s", buf, strerror(errno));
    return 0;
}

int lrq_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int lrq_fsync_dir(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int lrq_write_atomic(const char *path, const void *data, size_t len, lrq_err_t *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return lrq_errf(err, -ENAMETOOLONG, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return lrq_errf(err, -errno, "%s: %s", tmp, strerror(errno));
    int rc = lrq_write_all(fd, data, len);
    if (!rc && fsync(fd) < 0) rc = -errno;
    if (close(fd) < 0 && !rc) rc = -errno;
    if (!rc && rename(tmp, path) < 0) rc = -errno;
    if (rc) {
        unlink(tmp);
        return lrq_errf(err, rc, "writing %s: %s", path, strerror(-rc));
    }
    lrq_fsync_dir(path);
    return 0;
}

int lrq_read_file(const char *path, char **out, size_t *len, size_t max, lrq_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lrq_errf(err, errno == ENOENT ? LRQ_ENOTFOUND : -errno, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    /* Regular files only: a FIFO or a device would block or never end. */
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lrq_errf(err, LRQ_EFORMAT, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return lrq_errf(err, LRQ_EFORMAT, "%s: larger than %zu bytes", path, max);
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *b = malloc(n + 1);
    if (!b) {
        close(fd);
        return lrq_errf(err, LRQ_ENOMEM, "%s: out of memory (%zu bytes)", path, n);
    }
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(b);
            close(fd);
            return lrq_errf(err, -e, "%s: read failed: %s", path, strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    b[n] = '\0';
    *out = b;
    if (len) *len = n;
    return 0;
}
