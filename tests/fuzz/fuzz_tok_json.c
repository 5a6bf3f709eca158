/* fuzz_tok_json.c — tokenizer.json loader + encode/decode on arbitrary bytes
 * (build: see tests/fuzz/README.md). The first 64 bytes double as text to encode. */
#include <stdlib.h>
#include <string.h>

#include "eng_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    eng_tok_t *t;
    lrq_err_t err;
    /* force the JSON path */
    if (size == 0 || data[0] != '{') return 0;
    if (eng_tok_load_mem(data, size, "fuzz", &t, &err) == 0) {
        int32_t *ids = NULL;
        size_t n = 0, cap = 0;
        if (eng_tok_encode(t, (const char *)data, size < 64 ? size : 64, 1, &ids, &n, &cap, &err) == 0)
            for (size_t i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= eng_tok_vocab_size(t)) __builtin_trap();
        char buf[8];
        for (size_t i = 0; i < n; i++) (void)strlen(eng_tok_decode(t, i ? ids[i - 1] : 1, ids[i], buf));
        free(ids);
        eng_tok_free(t);
    }
    return 0;
}
