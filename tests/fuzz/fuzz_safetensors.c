/* fuzz_safetensors.c — eng_st_parse on arbitrary bytes (build: see tests/fuzz/README.md). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "eng_safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    eng_st_file_t f;
    lrq_err_t err;
    if (eng_st_parse(&f, data, size, "fuzz", &err) == 0) {
        for (int i = 0; i < f.n_entries; i++) {
            const eng_st_entry_t *e = &f.entries[i];
            if (e->end > f.data_len || e->begin > e->end || eng_st_find(&f, e->name) != e) __builtin_trap();
            volatile uint8_t sink = 0;
            for (uint64_t k = e->begin; k < e->end; k++) sink ^= f.data[k]; /* touch every byte */
            (void)sink;
        }
        eng_st_close(&f);
    }
    return 0;
}
