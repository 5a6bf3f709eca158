/* eng_lowrank.c — low-rank factors: storage rounding, the factored forward term, dense merge
 * (docs/algorithms.md, Low-rank factors). */
#include "eng_lowrank.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "eng_half.h"

#define LR_STACK_FLOATS 16384

int eng_lowrank_init(eng_lowrank_t *f, int m, int n, int k, int bits, lrq_err_t *err)
{
    memset(f, 0, sizeof *f);
    if (m <= 0 || n <= 0 || k < 0) return lrq_errf(err, LRQ_ESPEC, "low-rank factors: bad shape %dx%d rank %d", m, n, k);
    if (bits != 16 && bits != 8) return lrq_errf(err, LRQ_ESPEC, "low-rank factors: bits must be 8 or 16 (got %d)", bits);
    f->m = m; f->n = n; f->k = k; f->bits = bits;
    if (!k) return 0;
    f->L = calloc((size_t)m * k, sizeof(float));
    f->R = calloc((size_t)k * n, sizeof(float));
    int ok = f->L && f->R;
    if (ok && bits == 8) {
        f->Lq = calloc((size_t)m * k, 1);
        f->Rq = calloc((size_t)k * n, 1);
        f->Ls = calloc((size_t)m, sizeof(float));
        f->Rs = calloc((size_t)k, sizeof(float));
        ok = f->Lq && f->Rq && f->Ls && f->Rs;
    }
    if (!ok) {
        eng_lowrank_close(f);
        return lrq_errf(err, LRQ_ENOMEM, "low-rank factors: out of memory (%dx%d, rank %d)", m, n, k);
    }
    return 0;
}

void eng_lowrank_close(eng_lowrank_t *f)
{
    free(f->L); free(f->R); free(f->Lq); free(f->Rq); free(f->Ls); free(f->Rs);
    memset(f, 0, sizeof *f);
}

static float lr__f16(float v)
{
    if (v > 65504.0f) v = 65504.0f;
    if (v < -65504.0f) v = -65504.0f;
    return eng_f16_to_f32(eng_f32_to_f16(v));
}

/* Symmetric int8 per row: s = fp16(max|row| / 127), code = clamp(rint(v / s), −127, 127). */
static void lr__int8_rows(float *X, int8_t *Q, float *S, int rows, int cols)
{
    for (int i = 0; i < rows; i++) {
        float *x = X + (size_t)i * cols, mx = 0;
        for (int j = 0; j < cols; j++) mx = fabsf(x[j]) > mx ? fabsf(x[j]) : mx;
        float s = lr__f16(mx / 127.0f);
        if (!(s > 0)) s = mx > 0 ? 5.9604645e-8f : 1.0f; /* smallest fp16 subnormal; all-zero row */
        S[i] = s;
        for (int j = 0; j < cols; j++) {
            float v = rintf(x[j] / s);
            v = v < -127 ? -127 : v > 127 ? 127 : v;
            Q[(size_t)i * cols + j] = (int8_t)v;
            x[j] = s * v;
        }
    }
}

void eng_lowrank_round(eng_lowrank_t *f)
{
    if (!f->k) return;
    size_t nl = (size_t)f->m * f->k, nr = (size_t)f->k * f->n;
    if (f->bits == 16) {
        for (size_t i = 0; i < nl; i++) f->L[i] = lr__f16(f->L[i]);
        for (size_t i = 0; i < nr; i++) f->R[i] = lr__f16(f->R[i]);
        return;
    }
    lr__int8_rows(f->L, f->Lq, f->Ls, f->m, f->k);
    lr__int8_rows(f->R, f->Rq, f->Rs, f->k, f->n);
}

void eng_lowrank_forward(eng_pool_t *pool, const eng_lowrank_t *f, const float *x, float *y, int N)
{
    if (!f || !f->k || N <= 0) return;
    float stack[LR_STACK_FLOATS], *t = stack;
    int rows = LR_STACK_FLOATS / f->k;
    if (rows < 1) {
        rows = 64;
        if (!(t = malloc((size_t)rows * f->k * sizeof(float)))) { t = stack; rows = 0; }
    }
    if (rows == 0) { /* out of memory for a rank above 16384: one row at a time, no scratch beyond k */
        for (int r = 0; r < N; r++)
            for (int c = 0; c < f->k; c++) {
                double acc = 0;
                for (int j = 0; j < f->n; j++) acc += (double)x[(size_t)r * f->n + j] * f->R[(size_t)c * f->n + j];
                for (int i = 0; i < f->m; i++) y[(size_t)r * f->m + i] += (float)acc * f->L[(size_t)i * f->k + c];
            }
        return;
    }
    for (int r0 = 0; r0 < N; r0 += rows) {
        int nr = N - r0 < rows ? N - r0 : rows;
        /* t (nr,k) = x (nr,n) · Rᵀ ;  y (nr,m) += t (nr,k) · Lᵀ */
        eng_pool_sgemm(pool, 0, 1, nr, f->k, f->n, 1.0f, x + (size_t)r0 * f->n, f->n, f->R, f->n, 0.0f, t, f->k);
        eng_pool_sgemm(pool, 0, 1, nr, f->m, f->k, 1.0f, t, f->k, f->L, f->k, 1.0f, y + (size_t)r0 * f->m, f->m);
    }
    if (t != stack) free(t);
}

void eng_lowrank_add_dense(const eng_lowrank_t *f, float *W)
{
    if (!f->k) return;
    /* W (m,n) += L (m,k) · R (k,n) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, f->m, f->n, f->k, 1.0f, f->L, f->k, f->R, f->n, 1.0f, W, f->n);
}

double eng_lowrank_storage_bits(int m, int n, int k, int bits)
{
    if (k <= 0) return 0;
    double e = (double)k * ((double)m + n);
    return bits == 8 ? e * 8 + ((double)m + k) * 16 : e * 16;
}
