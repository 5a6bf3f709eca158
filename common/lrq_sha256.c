#include "lrq_sha256.h"
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void to_hex(const uint8_t d[SHA256_DIGEST_SIZE], char hex[65])
{
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) sprintf(hex + 2 * i, "%02x", d[i]);
    hex[64] = '\0';
}

void lrq_sha256_hex(const void *data, size_t len, char hex[65])
{
    struct sha256_ctx c;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&c);
    sha256_update(&c, len, data);
    sha256_digest(&c, sizeof d, d);
    to_hex(d, hex);
}

int lrq_sha256_file(const char *path, char hex[65], long long *bytes, lrq_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return lrq_errf(err, -errno, "%s: %s", path, strerror(errno));
    struct sha256_ctx c;
    sha256_init(&c);
    static const size_t BUF = 1 << 16;
    uint8_t buf[1 << 16];
    long long total = 0;
    for (;;) {
        ssize_t r = read(fd, buf, BUF);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return lrq_errf(err, -e, "%s: read: %s", path, strerror(e));
        }
        if (r == 0) break;
        sha256_update(&c, (size_t)r, buf);
        total += r;
    }
    close(fd);
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(&c, sizeof d, d);
    to_hex(d, hex);
    if (bytes) *bytes = total;
    return 0;
}
