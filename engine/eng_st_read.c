/* eng_st_read.c — safetensors reader: mmap + fully validated header parse.
 *
 * Layout (huggingface/safetensors README, "Format"; docs/formats.md, safetensors): u64 LE header length N, N bytes of JSON object (may be
 * right-padded with spaces), then the data section. Every check here exists because
 * the parser is fed untrusted bytes (and fuzzed): nothing past `len` is read, every
 * size product is overflow-checked, and every refusal names file, tensor and reason. */
#include "eng_safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER 100000000ull /* safetensors MAX_HEADER_SIZE */

/* Element size in bytes; 0 = unknown or sub-byte (unsupported). */
static int st__dtype_size(const char *dt)
{
    static const struct { const char *name; int size; } tab[] = {
        {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1},
        {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2},
        {"I32", 4}, {"U32", 4}, {"F32", 4},
        {"I64", 8}, {"U64", 8}, {"F64", 8}, {"C64", 8},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(tab[i].name, dt) == 0) return tab[i].size;
    return 0;
}

static void st__free_entries(eng_st_file_t *f)
{
    if (f->entries)
        for (int i = 0; i < f->n_entries; i++) free(f->entries[i].name);
    free(f->entries);
    f->entries = NULL;
    f->n_entries = 0;
}

static int st__cmp_name(const void *a, const void *b)
{
    return strcmp(((const eng_st_entry_t *)a)->name, ((const eng_st_entry_t *)b)->name);
}

static int st__cmp_begin(const void *a, const void *b)
{
    const eng_st_entry_t *x = *(const eng_st_entry_t *const *)a, *y = *(const eng_st_entry_t *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* A JSON integer in [0, INT64_MAX]. */
static int st__get_u64(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    if (x < 0) return -1;
    *out = (uint64_t)x;
    return 0;
}

/* Fill one entry from its header object; name is already set. */
static int st__parse_entry(eng_st_entry_t *e, const json_t *obj, const char *path,
                           size_t data_len, lrq_err_t *err)
{
    const char *nm = e->name;
    if (!json_is_object(obj))
        return lrq_errf(err, LRQ_EFORMAT, "%s: tensor '%s': header entry is not an object", path, nm);
    json_t *jdt = json_object_get(obj, "dtype"), *jsh = json_object_get(obj, "shape"),
           *joff = json_object_get(obj, "data_offsets");
    if (!json_is_string(jdt))
        return lrq_errf(err, LRQ_EFORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", path, nm);
    const char *dt = json_string_value(jdt);
    int esz = strlen(dt) < sizeof e->dtype ? st__dtype_size(dt) : 0;
    if (esz == 0)
        return lrq_errf(err, LRQ_EFORMAT, "%s: tensor '%s': unknown dtype '%.32s'", path, nm, dt);
    strcpy(e->dtype, dt);
    if (!json_is_array(jsh))
        return lrq_errf(err, LRQ_EFORMAT, "%s: tensor '%s': missing or non-array \"shape\"", path, nm);
    size_t nd = json_array_size(jsh);
    if (nd > 4)
        return lrq_errf(err, LRQ_EFORMAT, "%s: tensor '%s': rank %zu not supported (max 4)", path, nm, nd);
    e->ndim = (int)nd;
    uint64_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        uint64_t d;
        if (st__get_u64(json_array_get(jsh, i), &d))
            return lrq_errf(err, LRQ_EFORMAT, "%s: tensor '%s': shape[%zu] is not a non-negative integer",
                            path, nm, i);
        e->shape[i] = (int64_t)d;
        if (__builtin_mul_overflow(numel, d, &numel))
            return lrq_errf(err, LRQ_EFORMAT, "%s: tensor '%s': shape overflows", path, nm);
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, (uint64_t)esz, &nbytes))
        return lrq_errf(err, LRQ_EFORMAT, "%s: tensor '%s': shape overflows", path, nm);
    if (!json_is_array(joff) || json_array_size(joff) != 2 ||
        st__get_u64(json_array_get(joff, 0), &e->begin) || st__get_u64(json_array_get(joff, 1), &e->end))
        return lrq_errf(err, LRQ_EFORMAT,
                        "%s: tensor '%s': \"data_offsets\" must be [begin, end] non-negative integers", path, nm);
    if (e->begin > e->end)
        return lrq_errf(err, LRQ_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] has begin > end", path, nm,
                        (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end > data_len)
        return lrq_errf(err, LRQ_EFORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] out of range (data section is %zu bytes; "
                        "file truncated?)", path, nm, (unsigned long long)e->begin, (unsigned long long)e->end,
                        data_len);
    if (e->end - e->begin != nbytes)
        return lrq_errf(err, LRQ_EFORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] span %llu bytes but shape x %s needs %llu",
                        path, nm, (unsigned long long)e->begin, (unsigned long long)e->end,
                        (unsigned long long)(e->end - e->begin), dt, (unsigned long long)nbytes);
    if (e->begin % (uint64_t)esz)
        return lrq_errf(err, LRQ_EFORMAT, "%s: tensor '%s': data_offsets begin %llu misaligned for %s (%d bytes)",
                        path, nm, (unsigned long long)e->begin, dt, esz);
    return 0;
}

int eng_st_parse(eng_st_file_t *f, const uint8_t *buf, size_t len, const char *path, lrq_err_t *err)
{
    memset(f, 0, sizeof *f);
    if (!path) path = "<memory>";
    if (len < 8)
        return lrq_errf(err, LRQ_EFORMAT, "%s: file is %zu bytes, too short for a safetensors header length",
                        path, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | buf[i];
    if (n > ST_MAX_HEADER)
        return lrq_errf(err, LRQ_EFORMAT, "%s: header length %llu is absurd (limit %llu)", path,
                        (unsigned long long)n, ST_MAX_HEADER);
    if (n > len - 8)
        return lrq_errf(err, LRQ_EFORMAT, "%s: header length %llu runs past end of file (%zu bytes)", path,
                        (unsigned long long)n, len);
    if (n < 2 || buf[8] != '{')
        return lrq_errf(err, LRQ_EFORMAT, "%s: header is not a JSON object (must start with '{')", path);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return lrq_errf(err, LRQ_EFORMAT, "%s: header is not valid JSON: %s (at byte %d)", path, jerr.text,
                        jerr.position);
    int rc = 0;
    eng_st_entry_t **order = NULL;
    if (!json_is_object(root)) {
        rc = lrq_errf(err, LRQ_EFORMAT, "%s: header is not a JSON object", path);
        goto out;
    }
    f->data = buf + 8 + n;
    f->data_len = len - 8 - (size_t)n;
    size_t cap = json_object_size(root);
    f->entries = calloc(cap ? cap : 1, sizeof *f->entries);
    if (!f->entries) {
        rc = lrq_errf(err, LRQ_ENOMEM, "%s: out of memory for %zu header entries", path, cap);
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) {
                rc = lrq_errf(err, LRQ_EFORMAT, "%s: \"__metadata__\" is not an object", path);
                goto out;
            }
            continue;
        }
        eng_st_entry_t *e = &f->entries[f->n_entries];
        if (!(e->name = strdup(key))) {
            rc = lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);
            goto out;
        }
        f->n_entries++;
        if ((rc = st__parse_entry(e, val, path, f->data_len, err))) goto out;
    }
    /* No two tensors may share bytes (zero-size tensors share nothing). */
    if (f->n_entries > 1) {
        if (!(order = malloc((size_t)f->n_entries * sizeof *order))) {
            rc = lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);
            goto out;
        }
        for (int i = 0; i < f->n_entries; i++) order[i] = &f->entries[i];
        qsort(order, (size_t)f->n_entries, sizeof *order, st__cmp_begin);
        uint64_t prev_end = 0;
        const eng_st_entry_t *prev = NULL;
        for (int i = 0; i < f->n_entries; i++) {
            const eng_st_entry_t *e = order[i];
            if (e->begin == e->end) continue;
            if (prev && e->begin < prev_end) {
                rc = lrq_errf(err, LRQ_EFORMAT,
                              "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' [%llu, %llu]", path,
                              e->name, (unsigned long long)e->begin, (unsigned long long)e->end, prev->name,
                              (unsigned long long)prev->begin, (unsigned long long)prev->end);
                goto out;
            }
            prev = e;
            prev_end = e->end;
        }
    }
    /* Sorted by name for eng_st_find (keys are unique: duplicates were rejected). */
    qsort(f->entries, (size_t)f->n_entries, sizeof *f->entries, st__cmp_name);
out:
    free(order);
    json_decref(root);
    if (rc) {
        st__free_entries(f);
        memset(f, 0, sizeof *f);
    }
    return rc;
}

int eng_st_open(eng_st_file_t *f, const char *path, lrq_err_t *err)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lrq_errf(err, errno == ENOENT ? LRQ_ENOTFOUND : -errno, "%s: cannot open: %s", path,
                        strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return lrq_errf(err, -e, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return lrq_errf(err, LRQ_EFORMAT, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    if (len < 8) {
        close(fd);
        return lrq_errf(err, LRQ_EFORMAT, "%s: file is %zu bytes, too short for a safetensors header length",
                        path, len);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return lrq_errf(err, -e, "%s: mmap failed: %s", path, strerror(e));
    int rc = eng_st_parse(f, map, len, path, err);
    if (rc) {
        munmap(map, len);
        return rc;
    }
    f->map = map;
    f->map_len = len;
    if (!(f->path = strdup(path))) {
        eng_st_close(f);
        return lrq_errf(err, LRQ_ENOMEM, "%s: out of memory", path);
    }
    return 0;
}

void eng_st_close(eng_st_file_t *f)
{
    if (!f) return;
    st__free_entries(f);
    if (f->map) munmap((void *)f->map, f->map_len);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const eng_st_entry_t *eng_st_find(const eng_st_file_t *f, const char *name)
{
    if (!f || !f->entries || !name) return NULL;
    eng_st_entry_t key;
    memset(&key, 0, sizeof key);
    key.name = (char *)name;
    return bsearch(&key, f->entries, (size_t)f->n_entries, sizeof *f->entries, st__cmp_name);
}
