/* eng_st_write.c — safetensors writer (huggingface/safetensors README, "Format"; docs/formats.md,
 * safetensors).
 *
 * Layout: u64 LE header length N, N bytes of compact JSON (insertion order,
 * "__metadata__" first, right-padded with spaces to a multiple of 8), then the
 * data buffer. The buffer has no holes (readers require it), so alignment comes
 * from ordering: data is laid out by descending element size, insertion order
 * within a size — every tensor then starts naturally aligned for mmap.
 * The file is written to path.tmp, fsync'd, renamed over path, and the
 * directory is fsync'd, so a crash leaves either the old file or the new one. */
#include "lrq_buf.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eng_safetensors.h"
#include "eng_st_gen.h"
#include "lrq_err.h"

typedef struct st__tensor {
    char *name;
    char dtype[8];
    int ndim;
    int64_t shape[4];
    const void *data;   /* borrowed */
    eng_st_fill_fn fill; /* or generated at write time */
    void *ctx;
    size_t nbytes;
    int esize;          /* bytes per element: 1, 2, 4, 8 */
    uint64_t begin;     /* offset in the data buffer, set at write time */
} st__tensor_t;

struct eng_st_writer {
    st__tensor_t *t;
    int n;
    size_t cap;
    json_t *meta;       /* flat string -> string */
    int bad;            /* first error from add/meta, reported by write */
    char bad_msg[512];
};

static const struct { const char *name; int size; } st__dtypes[] = {
    {"F64", 8}, {"I64", 8}, {"U64", 8}, {"F32", 4}, {"I32", 4}, {"U32", 4},
    {"F16", 2}, {"BF16", 2}, {"I16", 2}, {"U16", 2}, {"U8", 1}, {"I8", 1}, {"BOOL", 1},
};

static int st__dtype_size(const char *dt)
{
    for (size_t i = 0; i < sizeof st__dtypes / sizeof st__dtypes[0]; i++)
        if (strcmp(dt, st__dtypes[i].name) == 0) return st__dtypes[i].size;
    return 0;
}

/* add/meta have no lrq_err_t: the first problem is kept and reported by write. */
static int st__fail(eng_st_writer_t *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int st__fail(eng_st_writer_t *w, int code, const char *fmt, ...)
{
    if (!w->bad) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->bad_msg, sizeof w->bad_msg, fmt, ap);
        va_end(ap);
        w->bad = code;
    }
    return code;
}

eng_st_writer_t *eng_st_writer_new(void)
{
    eng_st_writer_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->meta = json_object();
    if (!w->meta || json_object_set_new(w->meta, "format", json_string("pt")) != 0) {
        json_decref(w->meta);
        free(w);
        return NULL;
    }
    return w;
}

void eng_st_writer_free(eng_st_writer_t *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    free(w->t);
    json_decref(w->meta);
    free(w);
}

static int st__add(eng_st_writer_t *w, const char *name, const char *dtype, int ndim, const int64_t *shape,
                   const void *data, eng_st_fill_fn fill, void *ctx, size_t nbytes)
{
    if (!w) return LRQ_EFORMAT;
    if (!name || !*name || strcmp(name, "__metadata__") == 0)
        return st__fail(w, LRQ_EFORMAT, "invalid tensor name '%s'", name ? name : "(null)");
    int es = dtype ? st__dtype_size(dtype) : 0;
    if (!es) return st__fail(w, LRQ_EFORMAT, "tensor '%s': unknown dtype '%s'", name, dtype ? dtype : "(null)");
    if (ndim < 0 || ndim > 4 || (ndim > 0 && !shape))
        return st__fail(w, LRQ_EFORMAT, "tensor '%s': rank must be 0..4", name);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return st__fail(w, LRQ_EFORMAT, "tensor '%s': negative dimension", name);
        if (shape[d] && numel > SIZE_MAX / (size_t)shape[d] / (size_t)es)
            return st__fail(w, LRQ_EFORMAT, "tensor '%s': shape overflows", name);
        numel *= (size_t)shape[d];
    }
    if (numel * (size_t)es != nbytes)
        return st__fail(w, LRQ_EFORMAT, "tensor '%s': byte size does not match shape x dtype %s", name, dtype);
    if (nbytes && !data && !fill) return st__fail(w, LRQ_EFORMAT, "tensor '%s': no data", name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return st__fail(w, LRQ_EFORMAT, "duplicate tensor name '%s'", name);
    if (lrq_grow(&w->t, &w->cap, (size_t)w->n + 1, sizeof *w->t))
        return st__fail(w, LRQ_ENOMEM, "out of memory adding tensor '%s'", name);
    st__tensor_t *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return st__fail(w, LRQ_ENOMEM, "out of memory adding tensor '%s'", name);
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->data = data;
    t->fill = fill;
    t->ctx = ctx;
    t->nbytes = nbytes;
    t->esize = es;
    w->n++;
    return 0;
}

int eng_st_writer_add(eng_st_writer_t *w, const char *name, const char *dtype,
                      int ndim, const int64_t *shape, const void *data, size_t nbytes)
{
    return st__add(w, name, dtype, ndim, shape, data, NULL, NULL, nbytes);
}

int eng_st_writer_add_gen(eng_st_writer_t *w, const char *name, const char *dtype, int ndim, const int64_t *shape,
                          size_t nbytes, eng_st_fill_fn fill, void *ctx)
{
    if (w && !fill) return st__fail(w, LRQ_EFORMAT, "tensor '%s': no fill function", name ? name : "(null)");
    return st__add(w, name, dtype, ndim, shape, NULL, fill, ctx, nbytes);
}

int eng_st_writer_meta(eng_st_writer_t *w, const char *key, const char *value)
{
    if (!w) return LRQ_EFORMAT;
    if (!key || !value) return st__fail(w, LRQ_EFORMAT, "metadata key/value missing");
    json_t *s = json_string(value);
    if (!s) return st__fail(w, LRQ_EFORMAT, "metadata '%s': value is not valid UTF-8", key);
    if (json_object_set_new(w->meta, key, s) != 0)
        return st__fail(w, LRQ_EFORMAT, "metadata key '%s' invalid", key);
    return 0;
}

/* Write all of buf; EINTR and short writes retried. Returns 0 or -errno. */
static int st__write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        size_t chunk = len > ((size_t)1 << 30) ? ((size_t)1 << 30) : len;
        ssize_t k = write(fd, p, chunk);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (k == 0) return -EIO;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* Header JSON (without padding), tensors' begin offsets assigned. */
static char *st__header(eng_st_writer_t *w, size_t *hlen, uint64_t *total, lrq_err_t *err, const char *path)
{
    /* data order: descending element size, stable in insertion order */
    uint64_t off = 0;
    for (int es = 8; es >= 1; es /= 2)
        for (int i = 0; i < w->n; i++)
            if (w->t[i].esize == es) {
                w->t[i].begin = off;
                off += w->t[i].nbytes;
            }
    *total = off;

    json_t *h = json_object();
    if (!h || json_object_set(h, "__metadata__", w->meta) != 0) goto oom;
    for (int i = 0; i < w->n; i++) {
        st__tensor_t *t = &w->t[i];
        json_t *shp = json_array();
        if (!shp) goto oom;
        for (int d = 0; d < t->ndim; d++)
            if (json_array_append_new(shp, json_integer((json_int_t)t->shape[d])) != 0) {
                json_decref(shp);
                goto oom;
            }
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", t->dtype, "shape", shp, "data_offsets",
                              (json_int_t)t->begin, (json_int_t)(t->begin + t->nbytes));
        if (!e || json_object_set_new(h, t->name, e) != 0) goto oom;
    }
    char *s = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    if (!s) {
        lrq_errf(err, LRQ_ENOMEM, "%s: cannot serialise safetensors header", path);
        return NULL;
    }
    *hlen = strlen(s);
    return s;
oom:
    json_decref(h);
    lrq_errf(err, LRQ_ENOMEM, "%s: out of memory building safetensors header", path);
    return NULL;
}

/* fsync the directory holding path, so the rename is durable. */
static int st__fsync_dir(const char *path, lrq_err_t *err)
{
    char *cp = strdup(path);
    if (!cp) return lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);
    const char *dir = dirname(cp);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        rc = lrq_errf(err, -e, "%s: cannot fsync directory %s: %s", path, dir, strerror(e));
    }
    if (fd >= 0) close(fd);
    free(cp);
    return rc;
}

int eng_st_writer_write(eng_st_writer_t *w, const char *path, lrq_err_t *err)
{
    if (!w || !path) return lrq_errf(err, LRQ_EFORMAT, "safetensors writer: no writer or path");
    if (w->bad) return lrq_errf(err, w->bad, "%s: %s", path, w->bad_msg);

    size_t hlen = 0;
    uint64_t total = 0;
    char *hdr = st__header(w, &hlen, &total, err, path);
    if (!hdr) return err ? err->code : LRQ_ENOMEM;
    size_t padded = (hlen + 7) & ~(size_t)7;

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) {
        free(hdr);
        return lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);

    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        rc = lrq_errf(err, -e, "%s: cannot create %s: %s", path, tmp, strerror(e));
        goto out;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    static const char spaces[8] = "        ";
    int e = st__write_all(fd, len8, 8);
    if (!e) e = st__write_all(fd, hdr, hlen);
    if (!e) e = st__write_all(fd, spaces, padded - hlen);
    uint8_t *scratch = NULL; /* generated tensors, one at a time */
    size_t scap = 0;
    for (int es = 8; es >= 1 && !e && !rc; es /= 2)
        for (int i = 0; i < w->n && !e && !rc; i++) {
            st__tensor_t *t = &w->t[i];
            if (t->esize != es || !t->nbytes) continue;
            if (!t->fill) {
                e = st__write_all(fd, t->data, t->nbytes);
                continue;
            }
            if (t->nbytes > scap) {
                free(scratch);
                scap = 0;
                if (!(scratch = malloc(t->nbytes))) {
                    rc = lrq_errf(err, LRQ_ENOMEM, "%s: out of memory (%zu bytes) for tensor '%s'", path, t->nbytes,
                                  t->name);
                    break;
                }
                scap = t->nbytes;
            }
            rc = t->fill(t->ctx, scratch, t->nbytes, err);
            if (!rc) e = st__write_all(fd, scratch, t->nbytes);
        }
    free(scratch);
    if (rc) goto fail;
    if (e) {
        rc = lrq_errf(err, e, "%s: write failed (%s): %s", path, tmp, strerror(-e));
        goto fail;
    }
    if (fsync(fd) != 0) {
        e = errno;
        rc = lrq_errf(err, -e, "%s: fsync failed: %s", tmp, strerror(e));
        goto fail;
    }
    if (close(fd) != 0) { /* NFS and friends report write-back errors here */
        fd = -1;
        e = errno;
        rc = lrq_errf(err, -e, "%s: close failed: %s", tmp, strerror(e));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        e = errno;
        rc = lrq_errf(err, -e, "%s: cannot rename %s into place: %s", path, tmp, strerror(e));
        goto fail;
    }
    rc = st__fsync_dir(path, err);
    goto out;
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
out:
    free(tmp);
    free(hdr);
    return rc;
}
