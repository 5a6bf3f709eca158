/* eng_qkern_avx512.c — eng_qkern.h with 16 lanes for CPUs with AVX-512F (picked at run time by
 * __builtin_cpu_supports, before AVX2). The avx512f target has FMA; the library is built with
 * -ffp-contract=off (engine/quant.mk), so no multiply-add is fused and per-element results equal
 * the SSE2 and AVX2 builds'. Empty on other compilers/architectures. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx512f")
#define ENG_VL 16
#define QK(name) name##_avx512
#include "eng_qkern.h"
#else
typedef int eng_qkern_avx512_unused; /* ISO C: no empty translation unit */
#endif
