/* fuzz_tok_spm.c — SentencePiece .model loader (eng_spm.c's protobuf reader and eng_tok.c's
 * checks) + encode/decode on arbitrary bytes (build: see tests/fuzz/README.md). The name
 * "fuzz.model" selects the .model path whatever the content; the first 64 bytes double as
 * text to encode. */
#include <stdlib.h>
#include <string.h>

#include "eng_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    eng_tok_t *t;
    lrq_err_t err;
    if (eng_tok_load_mem(data, size, "fuzz.model", &t, &err) == 0) {
        int nv = eng_tok_vocab_size(t);
        if (nv < 3 || eng_tok_bos(t) < 0 || eng_tok_bos(t) >= nv || eng_tok_eos(t) < 0 || eng_tok_eos(t) >= nv ||
            eng_tok_unk(t) < 0 || eng_tok_unk(t) >= nv || !eng_tok_scored(t))
            __builtin_trap();
        for (int id = 0; id < nv; id++) {
            int ty = eng_tok_type(t, id), len;
            /* accepted models hold NORMAL, UNKNOWN, CONTROL and BYTE pieces only */
            if (ty != 1 && ty != 2 && ty != 3 && ty != 6) __builtin_trap();
            if (!eng_tok_piece(t, id, &len, NULL) || len <= 0) __builtin_trap();
        }
        int32_t *ids = NULL;
        size_t n = 0, cap = 0;
        if (eng_tok_encode(t, (const char *)data, size < 64 ? size : 64, 1, &ids, &n, &cap, &err) == 0)
            for (size_t i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= nv || (i > 0 && eng_tok_type(t, ids[i]) == 3)) __builtin_trap();
        char buf[8];
        for (size_t i = 0; i < n; i++) (void)strlen(eng_tok_decode(t, i ? ids[i - 1] : 1, ids[i], buf));
        free(ids);
        eng_tok_free(t);
    } else if (!err.msg[0] || strncmp(err.msg, "fuzz.model", 10) != 0) {
        __builtin_trap(); /* every refusal names the file */
    }
    return 0;
}
