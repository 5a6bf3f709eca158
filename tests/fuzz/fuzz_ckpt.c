/* fuzz_ckpt.c — the worker's checkpoint reader (worker/wk_ckpt.c: wk_ckr_open,
 * wk_ckr_get) on a file in a memfd.
 *
 * Byte 0 bit 0 clear: the rest is the file as is (exercises magic, size and
 * checksum refusals). Set: the rest is the body after "LRQCKPT1" and the
 * harness appends a valid 'END!' trailer with the sha256, so that the section
 * walk behind the checksum gets fuzzed too. Sections found must lie inside the
 * checksummed part of the mapping. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <nettle/sha2.h>

#include "worker/wk_ckpt.h"

static int fz_ckpt_write(int fd, const void *p, size_t n)
{
    return write(fd, p, n) == (ssize_t)n ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int fixup = data[0] & 1;
    data++, size--;
    int fd = memfd_create("fuzz.ckpt", 0);
    if (fd < 0) return 0;
    int bad = 0;
    if (fixup) {
        static const char magic[8] = "LRQCKPT1";
        uint8_t trailer[16 + SHA256_DIGEST_SIZE] = {0};
        uint32_t tag = WK_TAG('E', 'N', 'D', '!');
        uint64_t len = SHA256_DIGEST_SIZE;
        memcpy(trailer, &tag, 4);
        memcpy(trailer + 8, &len, 8);
        struct sha256_ctx c;
        sha256_init(&c);
        sha256_update(&c, sizeof magic, (const uint8_t *)magic);
        sha256_update(&c, size, data);
        sha256_update(&c, 16, trailer);
        sha256_digest(&c, SHA256_DIGEST_SIZE, trailer + 16);
        bad = fz_ckpt_write(fd, magic, sizeof magic) || fz_ckpt_write(fd, data, size) ||
              fz_ckpt_write(fd, trailer, sizeof trailer);
    } else {
        bad = fz_ckpt_write(fd, data, size);
    }
    if (bad) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    wk_ckr_t r;
    lrq_err_t err;
    if (wk_ckr_open(&r, path, &err) == 0) {
        /* The harness-built trailer must verify when the body is well formed; either way
         * every section returned lies inside [8, len - trailer). */
        const uint32_t tags[] = {WK_TAG('H', 'E', 'A', 'D'), WK_TAG('B', 'H', 'D', 'R'), WK_TAG('P', 'A', 'R', 'M'),
                                 WK_TAG('A', 'D', 'M', 'M'), WK_TAG('A', 'D', 'M', 'V'), WK_TAG('Q', 'S', '0', 0),
                                 WK_TAG('E', 'N', 'D', '!'), 0};
        const uint8_t *lo = r.map + 8 + 16, *hi = r.map + r.len - SHA256_DIGEST_SIZE - 16;
        for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
            size_t n = 0;
            const uint8_t *p = wk_ckr_get(&r, tags[i], &n);
            if (!p) continue;
            if (p < lo || p > hi || n > (size_t)(hi - p)) __builtin_trap();
            volatile uint8_t sink = 0;
            for (size_t k = 0; k < n; k++) sink ^= p[k];
            (void)sink;
        }
        wk_ckr_close(&r);
    } else if (err.code >= 0 || !err.msg[0]) {
        __builtin_trap();
    }
    close(fd);
    return 0;
}
