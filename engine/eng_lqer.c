/* eng_lqer.c — truncated SVD (LAPACK sgesdd, or a randomized range finder) and the LQER /
 * L²QER fit of a quantization residual (docs/algorithms.md, LQER and L²QER). */
#include "eng_lqer.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <lapacke.h>
#include "eng_quant.h"

static int lqer__exact(const float *A, int m, int n, int k, float *U, float *S, float *Vt, lrq_err_t *err)
{
    int mn = m < n ? m : n, rc = 0;
    float *a = malloc((size_t)m * n * sizeof(float)), *u = malloc((size_t)m * mn * sizeof(float)),
          *s = malloc((size_t)mn * sizeof(float)), *vt = malloc((size_t)mn * n * sizeof(float));
    if (!a || !u || !s || !vt) { rc = lrq_errf(err, LRQ_ENOMEM, "svd: out of memory (%dx%d)", m, n); goto out; }
    memcpy(a, A, (size_t)m * n * sizeof(float));
    lapack_int info = LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'S', m, n, a, n, s, u, mn, vt, n);
    if (info) { rc = lrq_errf(err, LRQ_ENUMERIC, "svd: sgesdd of a %dx%d matrix failed (info %d)", m, n, (int)info); goto out; }
    for (int i = 0; i < m; i++) memcpy(U + (size_t)i * k, u + (size_t)i * mn, (size_t)k * sizeof(float));
    memcpy(S, s, (size_t)k * sizeof(float));
    memcpy(Vt, vt, (size_t)k * n * sizeof(float));
out:
    free(a); free(u); free(s); free(vt);
    return rc;
}

/* Orthonormal basis of the columns of Y (rows, l) in place (QR, Q kept). */
static int lqer__orth(float *Y, int rows, int l, float *tau)
{
    if (LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, rows, l, Y, l, tau)) return -1;
    return LAPACKE_sorgqr(LAPACK_ROW_MAJOR, rows, l, l, Y, l, tau) ? -1 : 0;
}

static int lqer__randomized(const float *A, int m, int n, int k, uint64_t seed, float *U, float *S, float *Vt,
                            lrq_err_t *err)
{
    const int l = k + 10, q = 2;
    int rc = 0;
    float *Om = malloc((size_t)n * l * sizeof(float)), *Y = malloc((size_t)m * l * sizeof(float)),
          *Z = malloc((size_t)n * l * sizeof(float)), *Bm = malloc((size_t)l * n * sizeof(float)),
          *ub = malloc((size_t)l * l * sizeof(float)), *sb = malloc((size_t)l * sizeof(float)),
          *vtb = malloc((size_t)l * n * sizeof(float)), *tau = malloc((size_t)l * sizeof(float)),
          *Uf = malloc((size_t)m * l * sizeof(float));
    if (!Om || !Y || !Z || !Bm || !ub || !sb || !vtb || !tau || !Uf) {
        rc = lrq_errf(err, LRQ_ENOMEM, "svd: out of memory (%dx%d, rank %d)", m, n, k);
        goto out;
    }
    uint64_t st = seed * 0x9E3779B97F4A7C15ull + 0x5851F42D4C957F2Dull;
    for (size_t i = 0; i < (size_t)n * l; i += 2) { /* Box–Muller pairs */
        double u1 = (eng_rng_uniform(&st) + 1e-12), u2 = eng_rng_uniform(&st), r = sqrt(-2 * log(u1));
        Om[i] = (float)(r * cos(2 * M_PI * u2));
        if (i + 1 < (size_t)n * l) Om[i + 1] = (float)(r * sin(2 * M_PI * u2));
    }
    /* Y (m,l) = A (m,n) · Ω (n,l) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, l, n, 1.0f, A, n, Om, l, 0.0f, Y, l);
    if (lqer__orth(Y, m, l, tau)) goto qrfail;
    for (int it = 0; it < q; it++) {
        /* Z (n,l) = Aᵀ · Y ;  Y = A · Z, each orthonormalised */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, l, m, 1.0f, A, n, Y, l, 0.0f, Z, l);
        if (lqer__orth(Z, n, l, tau)) goto qrfail;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, l, n, 1.0f, A, n, Z, l, 0.0f, Y, l);
        if (lqer__orth(Y, m, l, tau)) goto qrfail;
    }
    /* Bm (l,n) = Yᵀ (l,m) · A (m,n);  Bm = ub Σ vtb;  U = Y ub */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l, n, m, 1.0f, Y, l, A, n, 0.0f, Bm, n);
    lapack_int info = LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'S', l, n, Bm, n, sb, ub, l, vtb, n);
    if (info) { rc = lrq_errf(err, LRQ_ENUMERIC, "svd: sgesdd of the %dx%d projection failed", l, n); goto out; }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, l, l, 1.0f, Y, l, ub, l, 0.0f, Uf, l);
    for (int i = 0; i < m; i++) memcpy(U + (size_t)i * k, Uf + (size_t)i * l, (size_t)k * sizeof(float));
    memcpy(S, sb, (size_t)k * sizeof(float));
    memcpy(Vt, vtb, (size_t)k * n * sizeof(float));
    goto out;
qrfail:
    rc = lrq_errf(err, LRQ_ENUMERIC, "svd: QR in the randomized range finder failed (%dx%d)", m, n);
out:
    free(Om); free(Y); free(Z); free(Bm); free(ub); free(sb); free(vtb); free(tau); free(Uf);
    return rc;
}

int eng_svd_topk(const float *A, int m, int n, int k, eng_svd_method_t method, uint64_t seed, float *U, float *S,
                 float *Vt, lrq_err_t *err)
{
    int mn = m < n ? m : n;
    if (m <= 0 || n <= 0 || k < 1 || k > mn) return lrq_errf(err, LRQ_ESPEC, "svd: rank %d outside 1..%d", k, mn);
    if (method == ENG_SVD_RANDOMIZED && k + 10 < mn) return lqer__randomized(A, m, n, k, seed, U, S, Vt, err);
    return lqer__exact(A, m, n, k, U, S, Vt, err);
}

void eng_lqer_scale(const float *a, int n, float *s)
{
    float lo = INFINITY, hi = 0;
    for (int j = 0; j < n; j++) {
        float v = a[j] > 1e-4f ? a[j] : 1e-4f;
        s[j] = v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    float d = sqrtf(lo * hi);
    for (int j = 0; j < n; j++) s[j] /= d;
}

int eng_lqer_fit(const float *E, const float *s, eng_svd_method_t method, eng_lowrank_t *f, lrq_err_t *err)
{
    const int m = f->m, n = f->n, k = f->k;
    if (k < 1) return 0;
    float *A = malloc((size_t)m * n * sizeof(float)), *U = malloc((size_t)m * k * sizeof(float)),
          *S = malloc((size_t)k * sizeof(float)), *Vt = malloc((size_t)k * n * sizeof(float));
    int rc = 0;
    if (!A || !U || !S || !Vt) { rc = lrq_errf(err, LRQ_ENOMEM, "lqer: out of memory (%dx%d)", m, n); goto out; }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) A[(size_t)i * n + j] = E[(size_t)i * n + j] * (s ? s[j] : 1.0f);
    if ((rc = eng_svd_topk(A, m, n, k, method, 0, U, S, Vt, err))) goto out;
    for (int c = 0; c < k; c++) {
        float r = sqrtf(S[c] > 0 ? S[c] : 0);
        for (int i = 0; i < m; i++) f->L[(size_t)i * k + c] = U[(size_t)i * k + c] * r;
        for (int j = 0; j < n; j++) f->R[(size_t)c * n + j] = Vt[(size_t)c * n + j] * r / (s ? s[j] : 1.0f);
    }
    eng_lowrank_round(f);
out:
    free(A); free(U); free(S); free(Vt);
    return rc;
}
