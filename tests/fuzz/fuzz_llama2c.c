/* fuzz_llama2c.c — eng_model_open on an arbitrary llama2.c .bin image held in a memfd
 * (build: see tests/fuzz/README.md). Loaded models get every tensor converted. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "eng_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz.bin", 0);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    eng_model_t *m;
    lrq_err_t err;
    if (eng_model_open(path, &m, &err) == 0) {
        eng_model_check_finite(m, &err);
        size_t n = eng_tensor_numel(&m->embed);
        float *buf = malloc(n * sizeof *buf);
        if (buf) eng_tensor_to_f32(&m->embed, buf, &err);
        free(buf);
        eng_model_free(m);
    }
    close(fd);
    return 0;
}
