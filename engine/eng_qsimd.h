/* eng_qsimd.h — private SIMD float helpers for the quantizers (GCC vector extensions).
 *
 * Portable C (no intrinsics): the compiler lowers v8f to whatever the target has
 * (2×SSE on baseline x86-64). No libm calls inside loops, so hot passes stay vectorized.
 * Every helper is exact IEEE arithmetic, so results do not depend on the lowering. */
#ifndef ENG_QSIMD_H
#define ENG_QSIMD_H
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h> /* v8_sqrt only; its intrinsics follow the #pragma GCC target of the includer */
#endif

/* Internal-only: the by-value vector ABI never crosses a library boundary (built with -Wno-psabi). */

/* Lane count follows the compile target: 16 with AVX-512F, 8 with AVX2 (e.g. CFLAGS=-march=native),
 * else 4 (SSE2, the x86-64 baseline). Wider vectors than the target has get scalarised by GCC, so
 * never do that. */
#ifndef ENG_VL /* eng_qkern_avx2.c sets 8 under #pragma GCC target("avx2"), eng_qkern_avx512.c 16 */
#if defined(__AVX512F__)
#define ENG_VL 16
#elif defined(__AVX2__)
#define ENG_VL 8
#else
#define ENG_VL 4
#endif
#endif
typedef float v8f __attribute__((vector_size(ENG_VL * 4)));
typedef int32_t v8i __attribute__((vector_size(ENG_VL * 4)));

static inline __attribute__((always_inline)) v8f v8_ld(const float *p) { v8f v; memcpy(&v, p, sizeof v); return v; }
static inline __attribute__((always_inline)) void v8_st(float *p, v8f v) { memcpy(p, &v, sizeof v); }
static inline __attribute__((always_inline)) v8f v8_set1(float x) { return x - (v8f){ 0 }; }
static inline __attribute__((always_inline)) v8f v8_iota(void)
{
#if ENG_VL == 16
    return (v8f){ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
#elif ENG_VL == 8
    return (v8f){ 0, 1, 2, 3, 4, 5, 6, 7 };
#else
    return (v8f){ 0, 1, 2, 3 };
#endif
}
static inline __attribute__((always_inline)) float v8_hsum(v8f v)
{
#if ENG_VL == 16
    return (((v[0] + v[8]) + (v[4] + v[12])) + ((v[1] + v[9]) + (v[5] + v[13]))) +
           (((v[2] + v[10]) + (v[6] + v[14])) + ((v[3] + v[11]) + (v[7] + v[15])));
#elif ENG_VL == 8
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
#else
    return (v[0] + v[2]) + (v[1] + v[3]);
#endif
}
static inline __attribute__((always_inline)) v8f v8_blend(v8i mask, v8f a, v8f b) /* mask ? a : b */
{
    return (v8f)(((v8i)a & mask) | ((v8i)b & ~mask));
}
static inline __attribute__((always_inline)) v8f v8_max(v8f a, v8f b) { return v8_blend(a > b, a, b); }
static inline __attribute__((always_inline)) v8f v8_min(v8f a, v8f b) { return v8_blend(a < b, a, b); }
static inline __attribute__((always_inline)) v8f v8_abs(v8f a) { return (v8f)((v8i)a & 0x7fffffff); }
/* IEEE square root (correctly rounded, as sqrtf): the one operation vector extensions lack. */
static inline __attribute__((always_inline)) v8f v8_sqrt(v8f x)
{
#if defined(__x86_64__) && ENG_VL == 16
    return (v8f)_mm512_sqrt_ps((__m512)x);
#elif defined(__x86_64__) && ENG_VL == 8
    return (v8f)_mm256_sqrt_ps((__m256)x);
#elif defined(__x86_64__)
    return (v8f)_mm_sqrt_ps((__m128)x);
#else
    for (int l = 0; l < ENG_VL; l++) x[l] = __builtin_sqrtf(x[l]);
    return x;
#endif
}

/* Round half to even (= rintf in the default rounding mode) for |x| < 2^22; beyond that the
 * result is still ≥ 2^22 in magnitude, which every caller clamps to ±255 anyway. */
#define ENG_RINT_MAGIC 12582912.0f /* 1.5·2^23 */
static inline __attribute__((always_inline)) v8f v8_rint(v8f x) { return (x + ENG_RINT_MAGIC) - ENG_RINT_MAGIC; }
static inline __attribute__((always_inline)) float eng_rint1(float x)
{
    return (x + ENG_RINT_MAGIC) - ENG_RINT_MAGIC; /* not folded: no -ffast-math */
}

/* exp(x), relative error ~2e-7; exp(0) = 1 exactly (Cody–Waite reduction, degree-7 Taylor). */
static inline __attribute__((always_inline)) v8f v8_exp(v8f x)
{
    x = v8_min(v8_max(x, v8_set1(-87.0f)), v8_set1(88.0f));
    v8f n = v8_rint(x * 1.44269504088896341f);
    v8f f = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    v8f p = v8_set1(1.0f / 5040.0f);
    p = p * f + 1.0f / 720.0f;
    p = p * f + 1.0f / 120.0f;
    p = p * f + 1.0f / 24.0f;
    p = p * f + 1.0f / 6.0f;
    p = p * f + 0.5f;
    p = p * f + 1.0f;
    p = p * f + 1.0f;
    v8i e = (__builtin_convertvector(n, v8i) + 127) << 23;
    return p * (v8f)e;
}

/* |x|^2.4 = x²·2^(0.4·log2|x|), relative error ~1e-6 (only ranks candidates in the mse search).
 * Zero and denormals give 0 (x² underflows). */
static inline __attribute__((always_inline)) v8f v8_pow24(v8f x)
{
    x = v8_abs(x);
    v8i xi = (v8i)x;
    v8i e = ((xi >> 23) & 0xff) - 127;
    v8f m = (v8f)((xi & 0x007fffff) | 0x3f800000); /* [1,2) */
    /* move m to [√½, √2) so the atanh series converges fast */
    v8i big = m > 1.41421356f;
    m = v8_blend(big, m * 0.5f, m);
    e = e + (big & 1);
    v8f s = (m - 1.0f) / (m + 1.0f); /* |s| ≤ 0.172 */
    v8f s2 = s * s;
    v8f lp = v8_set1(2.0f / 9.0f);
    lp = lp * s2 + 2.0f / 7.0f;
    lp = lp * s2 + 2.0f / 5.0f;
    lp = lp * s2 + 2.0f / 3.0f;
    lp = lp * s2 + 2.0f;
    v8f ln = lp * s + __builtin_convertvector(e, v8f) * 0.693147180559945f;
    return x * x * v8_exp(0.4f * ln);
}

/* ---- kernels compiled per instruction set (eng_qkern.h), dispatched at run time ---- */
#include "eng_quant.h"

typedef struct {
    int cap;     /* max levels */
    int *bnd;    /* (cap+1) level boundaries */
    double *pr;  /* (cap+1) prefix sums of per-level scores */
} eng__qlevels_t;

typedef struct {
    eng_lrq_t *q;
    float *What;       /* (m,n) or NULL */
    uint8_t *codes;    /* (m,n) or NULL */
    int save;          /* keep t for backward */
    const float *dW;   /* backward: (m,n) */
    float *Gm;         /* backward: (m,n) destination of G */
    float *gcp;        /* backward: (T, n) column partials, or NULL when T = 1 (→ q->gc) */
    const float *s1;   /* forward: (m,G) scales to use instead of exp(a) (freeze), or NULL */
} eng__lrq_pass_t;

/* Adam over [i0, i1) (eng_adam_step): torch.optim.Adam, p −= step · m / (√v · rbc2 + ε). */
typedef struct {
    float b1, b2, eps, step, rbc2;
    float *p, *m, *v;
    const float *g;
} eng__adam_pass_t;

#define ENG__QKERN_DECL(sfx)                                                                        \
    int eng__qsearch_##sfx(const float *ws, int n, int M, double D100, int zlo, int zhi, int z0,   \
                           eng__qlevels_t *lv, float *Dout, int *zout);                              \
    void eng__lrq_fwd_rows_##sfx(void *p, int tid, long r0, long r1);                               \
    void eng__lrq_bwd_rows_##sfx(void *p, int tid, long r0, long r1);                               \
    void eng__adam_rows_##sfx(void *p, int tid, long i0, long i1);
ENG__QKERN_DECL(sse)
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ENG_HAVE_AVX2_KERNELS 1
#define ENG_HAVE_AVX512_KERNELS 1
ENG__QKERN_DECL(avx2)
ENG__QKERN_DECL(avx512)
/* The widest the CPU runs: AVX-512F (16 lanes), AVX2 (8), SSE2 (4). */
#define ENG__QK_PICK(name)                                                                          \
    (__builtin_cpu_supports("avx512f") ? name##_avx512 : __builtin_cpu_supports("avx2") ? name##_avx2 : name##_sse)
#else
#define ENG__QK_PICK(name) (name##_sse)
#endif

/* Row-parallel loops run on the caller's pool (eng_pool_range): rows [0,n) split into
 * eng__qparts contiguous ranges, so per-row results never depend on the thread count. */
static inline int eng__qparts(const eng_pool_t *pool, long work)
{
    return work < (1L << 16) ? 1 : eng_pool_threads(pool); /* below ~64K elements a wake-up costs more */
}

#endif
