/* eng_qkern_sse.c — eng_qkern.h for the baseline target (SSE2 on x86-64: 4 lanes). */
#define QK(name) name##_sse
#include "eng_qkern.h"
