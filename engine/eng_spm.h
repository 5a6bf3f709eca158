/* eng_spm.h — SentencePiece `.model` files (a serialized sentencepiece.ModelProto):
 * a bounds-checked protobuf wire-format reader and the fields lrq's tokenizer needs.
 * The tokenizer (eng_tok.c) decides what it supports; this only decodes and checks the
 * message structure (docs/formats.md, tokenizers). */
#ifndef ENG_SPM_H
#define ENG_SPM_H
#include <stddef.h>
#include <stdint.h>
#include "lrq_err.h"

/* ModelProto.SentencePiece.Type */
enum { ENG_SPM_NORMAL = 1, ENG_SPM_UNKNOWN = 2, ENG_SPM_CONTROL = 3, ENG_SPM_USER_DEFINED = 4,
       ENG_SPM_UNUSED = 5, ENG_SPM_BYTE = 6 };
/* TrainerSpec.ModelType */
enum { ENG_SPM_UNIGRAM = 1, ENG_SPM_BPE = 2, ENG_SPM_WORD = 3, ENG_SPM_CHAR = 4 };

typedef struct {
    const uint8_t *s;  /* piece bytes, borrowed from the parsed buffer (not NUL-terminated) */
    uint32_t len;
    float score;
    int type;          /* ENG_SPM_* (NORMAL when absent) */
    size_t off;        /* byte offset of the piece's message in the file, for messages */
} eng_spm_piece_t;

/* Every field has the proto's default when the file does not set it. */
typedef struct {
    eng_spm_piece_t *pieces; /* owned */
    int n;
    int model_type;          /* trainer_spec.model_type (default UNIGRAM) */
    int byte_fallback;       /* trainer_spec.byte_fallback (default false) */
    int ws_suffix;           /* trainer_spec.treat_whitespace_as_suffix (default false) */
    int64_t unk_id, bos_id, eos_id, pad_id; /* trainer_spec (defaults 0, 1, 2, -1) */
    int add_dummy_prefix;    /* normalizer_spec (default true) */
    int remove_extra_ws;     /* normalizer_spec.remove_extra_whitespaces (default true) */
    int escape_ws;           /* normalizer_spec.escape_whitespaces (default true) */
    const uint8_t *norm_name; /* normalizer_spec.name, borrowed; NULL when absent */
    size_t norm_name_len;
    size_t charsmap_len;     /* normalizer_spec.precompiled_charsmap length (0: none) */
} eng_spm_t;

/* Decode `buf` (n bytes) into *m, borrowing piece bytes from buf. Malformed input is
 * LRQ_EFORMAT with a message naming `path`, the field and its byte offset; *m is then
 * zeroed. Release with eng_spm_close (safe after a failed parse). */
int eng_spm_parse(const uint8_t *buf, size_t n, const char *path, eng_spm_t *m, lrq_err_t *err);
void eng_spm_close(eng_spm_t *m);

/* Does buf look like a serialized ModelProto (its first field a SentencePiece message)?
 * Never true for a llama2.c tokenizer.bin, whose first 4 bytes are a small int32. */
int eng_spm_sniff(const uint8_t *buf, size_t n);

#endif
