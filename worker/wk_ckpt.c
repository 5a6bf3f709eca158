#include "wk_ckpt.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lrq_fs.h"

static const char MAGIC[8] = "LRQCKPT1";
#define TAG_END WK_TAG('E', 'N', 'D', '!')

static void put_raw(wk_ckw_t *w, const void *p, size_t n)
{
    if (w->err) return;
    sha256_update(&w->sha, n, p);
    w->err = lrq_write_all(w->fd, p, n);
}

int wk_ckw_open(wk_ckw_t *w, const char *path, lrq_err_t *err)
{
    memset(w, 0, sizeof *w);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp", path);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) return lrq_errf(err, -errno, "checkpoint %s: %s", w->tmp, strerror(errno));
    sha256_init(&w->sha);
    put_raw(w, MAGIC, 8);
    return 0;
}

void wk_ckw_put(wk_ckw_t *w, uint32_t tag, const void *data, size_t len)
{
    uint32_t h[2] = {tag, 0};
    uint64_t l = len;
    put_raw(w, h, sizeof h);
    put_raw(w, &l, sizeof l);
    if (len) put_raw(w, data, len);
}

void wk_ckw_abort(wk_ckw_t *w)
{
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    unlink(w->tmp);
}

int wk_ckw_commit(wk_ckw_t *w, const char *path, int keep_prev, lrq_err_t *err)
{
    uint8_t d[SHA256_DIGEST_SIZE];
    uint32_t h[2] = {TAG_END, 0};
    uint64_t l = sizeof d;
    put_raw(w, h, sizeof h);
    put_raw(w, &l, sizeof l);
    sha256_digest(&w->sha, sizeof d, d);
    if (!w->err) w->err = lrq_write_all(w->fd, d, sizeof d);
    if (!w->err && fsync(w->fd) < 0) w->err = -errno;
    if (close(w->fd) < 0 && !w->err) w->err = -errno;
    w->fd = -1;
    if (w->err) {
        int e = w->err;
        unlink(w->tmp);
        return lrq_errf(err, e, "writing checkpoint %s: %s", w->tmp, strerror(-e));
    }
    if (keep_prev) {
        char prev[4200];
        snprintf(prev, sizeof prev, "%s.prev", path);
        if (rename(path, prev) < 0 && errno != ENOENT) {
            int e = errno;
            unlink(w->tmp);
            return lrq_errf(err, -e, "rotating checkpoint %s: %s", path, strerror(e));
        }
    }
    if (rename(w->tmp, path) < 0) {
        int e = errno;
        unlink(w->tmp);
        return lrq_errf(err, -e, "installing checkpoint %s: %s", path, strerror(e));
    }
    lrq_fsync_dir(path);
    return 0;
}

int wk_ckr_open(wk_ckr_t *r, const char *path, lrq_err_t *err)
{
    memset(r, 0, sizeof *r);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lrq_errf(err, errno == ENOENT ? LRQ_ENOTFOUND : -errno, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) { int e = errno; close(fd); return lrq_errf(err, -e, "%s: %s", path, strerror(e)); }
    size_t n = (size_t)st.st_size;
    if (n < 8 + 16 + SHA256_DIGEST_SIZE) { close(fd); return lrq_errf(err, LRQ_EFORMAT, "%s: truncated (%zu bytes)", path, n); }
    void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return lrq_errf(err, -errno, "%s: mmap: %s", path, strerror(errno));
    r->map = m;
    r->len = n;
    if (memcmp(m, MAGIC, 8)) { wk_ckr_close(r); return lrq_errf(err, LRQ_EFORMAT, "%s: not an lrq checkpoint (bad magic)", path); }
    size_t tail = n - SHA256_DIGEST_SIZE - 16;
    uint32_t tag;
    memcpy(&tag, r->map + tail, 4);
    if (tag != TAG_END) { wk_ckr_close(r); return lrq_errf(err, LRQ_EFORMAT, "%s: truncated (no trailer)", path); }
    struct sha256_ctx c;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&c);
    sha256_update(&c, tail + 16, r->map);
    sha256_digest(&c, sizeof d, d);
    if (memcmp(d, r->map + tail + 16, sizeof d)) {
        wk_ckr_close(r);
        return lrq_errf(err, LRQ_ECHECKSUM, "%s: checksum mismatch (corrupt checkpoint)", path);
    }
    /* Walk the sections once so that get() can trust the lengths. */
    size_t off = 8;
    while (off < tail) {
        uint64_t l;
        if (tail - off < 16) break;
        memcpy(&l, r->map + off + 8, 8);
        if (l > tail - off - 16) { wk_ckr_close(r); return lrq_errf(err, LRQ_EFORMAT, "%s: bad section length", path); }
        off += 16 + l;
    }
    if (off != tail) { wk_ckr_close(r); return lrq_errf(err, LRQ_EFORMAT, "%s: sections do not end at the trailer", path); }
    return 0;
}

const void *wk_ckr_get(const wk_ckr_t *r, uint32_t tag, size_t *len)
{
    size_t tail = r->len - SHA256_DIGEST_SIZE - 16, off = 8;
    while (off + 16 <= tail) {
        uint32_t t;
        uint64_t l;
        memcpy(&t, r->map + off, 4);
        memcpy(&l, r->map + off + 8, 8);
        if (t == tag) {
            if (len) *len = (size_t)l;
            return r->map + off + 16;
        }
        off += 16 + l;
    }
    return NULL;
}

void wk_ckr_close(wk_ckr_t *r)
{
    if (r->map) munmap(r->map, r->len);
    r->map = NULL;
}

void wk_ckpt_spec_hash(const json_t *spec, uint8_t out[32])
{
    /* Only what changes the result: not threads, eval, export or daemon fields. */
    json_t *j = json_deep_copy(spec);
    const char *drop[] = {"threads", "eval", "export", "name", "priority", "max_attempts",
                          "tasks" /* how many processes share the blocks, not what they compute */};
    for (size_t i = 0; i < sizeof drop / sizeof *drop; i++) json_object_del(j, drop[i]);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    struct sha256_ctx c;
    sha256_init(&c);
    if (s) sha256_update(&c, strlen(s), (const uint8_t *)s);
    sha256_digest(&c, 32, out);
    free(s);
    json_decref(j);
}

size_t wk_cache_limit_bytes(void)
{
    const char *e = getenv("LRQ_CACHE_MEM_MB");
    if (e && *e) return (size_t)strtoull(e, NULL, 10) << 20;
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    return pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz / 4 : (size_t)4 << 30;
}

int wk_buf_new(wk_buf_t *b, size_t nfloat, const char *file, lrq_err_t *err)
{
    b->bytes = nfloat * sizeof(float);
    if (!file) {
        b->p = mmap(NULL, b->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    } else {
        int fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) return lrq_errf(err, -errno, "activation cache %s: %s", file, strerror(errno));
        int e = posix_fallocate(fd, 0, (off_t)b->bytes);
        if (e) { close(fd); unlink(file); return lrq_errf(err, -e, "activation cache %s (%zu MiB): %s", file, b->bytes >> 20, strerror(e)); }
        b->p = mmap(NULL, b->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        unlink(file); /* the mapping keeps it alive; nothing to clean up after a crash */
    }
    if (b->p == MAP_FAILED) {
        b->p = NULL;
        return lrq_errf(err, LRQ_ENOMEM, "cannot map %zu MiB for activations", b->bytes >> 20);
    }
    return 0;
}

void wk_buf_free(wk_buf_t *b)
{
    if (b->p) munmap(b->p, b->bytes);
    b->p = NULL;
}
