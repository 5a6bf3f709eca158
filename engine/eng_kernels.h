/* eng_kernels.h — private to libeng_num: the fused/strided variants of the ops in
 * eng_block.h that the block and the runner use (no allocation, workspace scratch).
 *
 * Shapes: B batch, T seq, H heads, KVH kv heads, Dh head dim, N = B*T rows. */
#ifndef ENG_KERNELS_H
#define ENG_KERNELS_H
#include <stddef.h>
#include "eng_block.h"
#include "eng_pool.h"

/* Rows of the causal attention processed per sgemm: bounds the (chunk, T) scratch and
 * skips most of the masked upper triangle (chunk rows [r0, r1) only see keys [0, r1)). */
#ifndef ENG_ATT_CHUNK
#define ENG_ATT_CHUNK 256
#endif
static inline int eng__att_chunk(int T) { return T < ENG_ATT_CHUNK ? T : ENG_ATT_CHUNK; }

/* dx (N,C) = dres + d rmsnorm / dx · dout (dres NULL = 0; dx NULL = skip);
 * dw (C) += Σ_rows dout ⊙ x·rstd (dw NULL = skip). dx may alias dres. */
void eng__rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w,
                      const float *rstd, const float *dres, int N, int C);

/* RoPE whose output is stored in INTERLEAVED feature order whatever the layout
 * (see eng_kernels.c); _bwd_canon maps a canonical-order gradient back. In place. */
void eng__rope_fwd_canon(float *x, const eng_rope_tab_t *r, eng_rope_layout_t layout, int B, int T, int nh, int Dh);
void eng__rope_bwd_canon(float *dx, const eng_rope_tab_t *r, eng_rope_layout_t layout, int B, int T, int nh, int Dh);

/* save != 0: att is (B,H,T,T) and keeps the probabilities (row t of chunk [r0,r1) is
 * written for columns [0,r1), zero above the diagonal; columns ≥ r1 are left alone);
 * save == 0: probabilities go to scratch, (chunk,T) per pool thread, chunk = eng__att_chunk(T).
 * Tasks per (b, kv head) run on pool (NULL = serial). */
void eng__attention_fwd(float *out, float *att, int save, float *scratch, eng_pool_t *pool, eng_mm_t *mm,
                        const float *q, const float *k, const float *v, int B, int T, int H, int KVH, int Dh);
/* scratch (chunk,T) per pool thread, any chunk ≥ 1; dk, dv are overwritten. Products go through
 * mm (eng_mm_gemm1 on the task's thread slot; NULL = OpenBLAS fp32). */
void eng__attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *att,
                        const float *q, const float *k, const float *v, int B, int T, int H,
                        int KVH, int Dh, float *scratch, int chunk, eng_pool_t *pool, eng_mm_t *mm);

/* exp with ~1 ulp error on [-87, 88], clamped outside; vectorizes (no libm call). */
static inline float eng__expf(float x)
{
    const float magic = 12582912.0f; /* 1.5·2^23: adding it rounds to an integer */
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { float f; int i; } u = { t }, s;
    s.i = (u.i - 0x4B400000 + 127) << 23; /* 2^n */
    return p * s.f;
}

#endif
