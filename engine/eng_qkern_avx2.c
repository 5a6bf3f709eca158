/* eng_qkern_avx2.c — eng_qkern.h with 8 lanes for CPUs with AVX2 (picked at run time by
 * __builtin_cpu_supports). Target "avx2" only, not "fma": no contraction, so per-element
 * results equal the baseline build's. Empty on other compilers/architectures. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx2")
#define ENG_VL 8
#define QK(name) name##_avx2
#include "eng_qkern.h"
#else
typedef int eng_qkern_avx2_unused; /* ISO C: no empty translation unit */
#endif
