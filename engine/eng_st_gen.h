/* eng_st_gen.h — safetensors writer extension: tensors produced at write time.
 * The exporters use it so that a dequantized model never exists in memory at
 * once: each tensor is generated into a scratch buffer just before it is written. */
#ifndef ENG_ST_GEN_H
#define ENG_ST_GEN_H
#include "eng_safetensors.h"

/* Fills dst (nbytes) with the tensor's little-endian data; 0 or a negative code (err set). */
typedef int (*eng_st_fill_fn)(void *ctx, void *dst, size_t nbytes, lrq_err_t *err);

/* Like eng_st_writer_add, but the data comes from fill(ctx, …) during eng_st_writer_write;
 * ctx must stay valid until then. */
int eng_st_writer_add_gen(eng_st_writer_t *w, const char *name, const char *dtype, int ndim, const int64_t *shape,
                          size_t nbytes, eng_st_fill_fn fill, void *ctx);

#endif
