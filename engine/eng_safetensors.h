/* eng_safetensors.h — safetensors reader (header parse with full validation) and writer. */
#ifndef ENG_SAFETENSORS_H
#define ENG_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "lrq_err.h"
#include "eng_model.h"

typedef struct eng_st_entry {
    char *name;
    char dtype[8];          /* as in the header: "F32", "F16", "BF16", "I32", "U8", ... */
    int ndim;
    int64_t shape[4];
    uint64_t begin, end;    /* data_offsets, relative to the data section */
} eng_st_entry_t;

typedef struct eng_st_file {
    char *path;
    const uint8_t *map;     /* whole file mapping */
    size_t map_len;
    const uint8_t *data;    /* start of the data section */
    size_t data_len;
    eng_st_entry_t *entries;
    int n_entries;
} eng_st_file_t;

/* Parse an in-memory safetensors image (used by the fuzzer and by eng_st_open):
 * header length within the buffer, JSON object, every entry has a known dtype,
 * shape and data_offsets in range, consistent with shape×dtype, non-overlapping. */
int eng_st_parse(eng_st_file_t *f, const uint8_t *buf, size_t len, const char *path, lrq_err_t *err);
int eng_st_open(eng_st_file_t *f, const char *path, lrq_err_t *err);  /* mmap + parse */
void eng_st_close(eng_st_file_t *f);
const eng_st_entry_t *eng_st_find(const eng_st_file_t *f, const char *name);

/* Writer: collects tensors (borrowed data) and writes the file in one go,
 * header padded with spaces to a multiple of 8, metadata {"format":"pt"} (+extra). */
typedef struct eng_st_writer eng_st_writer_t;
eng_st_writer_t *eng_st_writer_new(void);
/* dtype: "F32" "F16" "BF16" "I32" "U8"; data must stay valid until write. */
int eng_st_writer_add(eng_st_writer_t *w, const char *name, const char *dtype,
                      int ndim, const int64_t *shape, const void *data, size_t nbytes);
int eng_st_writer_meta(eng_st_writer_t *w, const char *key, const char *value);
/* Writes to path.tmp, fsyncs, renames. */
int eng_st_writer_write(eng_st_writer_t *w, const char *path, lrq_err_t *err);
void eng_st_writer_free(eng_st_writer_t *w);

#endif
