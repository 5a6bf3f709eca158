/* eng_odlri.c — alternating Q + LR decomposition with the ODLRI initialisation
 * (docs/algorithms.md, ODLRI). Linear algebra in double through LAPACK (dpotrf, dgesdd) and
 * BLAS (dtrmm, dtrsm). */
#include "eng_odlri.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <lapacke.h>

typedef struct { double d; int i; } od__key_t;
static int od__cmp(const void *a, const void *b)
{
    const od__key_t *x = a, *y = b;
    if (x->d != y->d) return x->d > y->d ? -1 : 1;
    return x->i - y->i;
}
static int od__icmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

void eng_odlri_outliers(const double *H, int n, int k, int *idx)
{
    od__key_t *keys = malloc((size_t)n * sizeof *keys);
    if (k > n) k = n;
    if (!keys) { for (int i = 0; i < k; i++) idx[i] = i; return; }
    for (int i = 0; i < n; i++) keys[i] = (od__key_t){H[(size_t)i * n + i], i};
    qsort(keys, (size_t)n, sizeof *keys, od__cmp);
    for (int i = 0; i < k; i++) idx[i] = keys[i].i;
    qsort(idx, (size_t)k, sizeof *idx, od__icmp);
    free(keys);
}

int eng_odlri_lr_step(const float *Wr, int m, int n, const double *H, const int *cols, int ncols, int r, float *L,
                      float *R, lrq_err_t *err)
{
    const int c = cols ? ncols : n, r0 = r;
    if (r > m) r = m;
    if (r > c) r = c;
    memset(L, 0, (size_t)m * r0 * sizeof(float));
    memset(R, 0, (size_t)r0 * n * sizeof(float));
    if (r < 1) return 0;
    int mn = m < c ? m : c, rc = 0;
    double *C = malloc((size_t)c * c * sizeof(double)), *Y = malloc((size_t)m * c * sizeof(double)),
           *U = malloc((size_t)m * mn * sizeof(double)), *S = malloc((size_t)mn * sizeof(double)),
           *Vt = malloc((size_t)mn * c * sizeof(double));
    if (!C || !Y || !U || !S || !Vt) { rc = lrq_errf(err, LRQ_ENOMEM, "odlri: out of memory (%dx%d)", m, n); goto out; }
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            int hi = cols ? cols[i] : i, hj = cols ? cols[j] : j;
            C[(size_t)i * c + j] = H[(size_t)hi * n + hj];
        }
    /* H = C Cᵀ, C lower */
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', c, C, c)) {
        rc = lrq_errf(err, LRQ_ENUMERIC, "odlri: the damped Hessian is not positive definite");
        goto out;
    }
    for (int i = 0; i < c; i++)
        for (int j = i + 1; j < c; j++) C[(size_t)i * c + j] = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < c; j++) Y[(size_t)i * c + j] = Wr[(size_t)i * n + (cols ? cols[j] : j)];
    /* Y (m,c) = Wr (m,c) · C (c,c, lower) */
    cblas_dtrmm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, m, c, 1.0, C, c, Y, c);
    if (LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', m, c, Y, c, S, U, mn, Vt, c)) {
        rc = lrq_errf(err, LRQ_ENUMERIC, "odlri: dgesdd of a %dx%d matrix failed", m, c);
        goto out;
    }
    /* L = U_r Σ_r^½ ;  R̃ = Σ_r^½ V_rᵀ (r,c) ;  R = R̃ C⁻¹ (solve X C = R̃) */
    for (int t = 0; t < r; t++) {
        double q = sqrt(S[t] > 0 ? S[t] : 0);
        for (int i = 0; i < m; i++) L[(size_t)i * r0 + t] = (float)(U[(size_t)i * mn + t] * q);
        for (int j = 0; j < c; j++) Vt[(size_t)t * c + j] *= q;
    }
    cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, r, c, 1.0, C, c, Vt, c);
    for (int t = 0; t < r; t++)
        for (int j = 0; j < c; j++) R[(size_t)t * n + (cols ? cols[j] : j)] = (float)Vt[(size_t)t * c + j];
out:
    free(C); free(Y); free(U); free(S); free(Vt);
    return rc;
}

static void od__dense(const eng_lowrank_t *f, float *LR)
{
    memset(LR, 0, (size_t)f->m * f->n * sizeof(float));
    eng_lowrank_add_dense(f, LR);
}

int eng_odlri_run(eng_pool_t *pool, const float *W, int m, int n, const double *H, const eng_qcfg_t *qcfg,
                  const eng_gptq_cfg_t *g, const eng_odlri_cfg_t *o, eng_qlinear_t *ql, eng_lowrank_t *f,
                  double *errs, lrq_err_t *err)
{
    const size_t mn = (size_t)m * n;
    int rc = 0, k = f->k;
    double *Hd = malloc((size_t)n * n * sizeof(double));
    float *T = malloc(mn * sizeof(float)), *Qd = malloc(mn * sizeof(float)), *LR = malloc(mn * sizeof(float));
    int *idx = malloc((size_t)(o->outliers > 0 ? o->outliers : 1) * sizeof(int));
    eng_qlinear_t qt = {0}, qbest = {0};
    eng_lowrank_t fb = {0};
    if (!Hd || !T || !Qd || !LR || !idx) { rc = lrq_errf(err, LRQ_ENOMEM, "odlri: out of memory (%dx%d)", m, n); goto out; }
    if ((rc = eng_qlinear_init(&qt, m, n, qcfg, err)) || (rc = eng_qlinear_init(&qbest, m, n, qcfg, err)) ||
        (rc = eng_lowrank_init(&fb, m, n, k, f->bits, err)))
        goto out;
    /* The LR-step's metric: H + λI with GPTQ's damping λ = damp · mean diag(H) (dead channels → 1). */
    double meand = 0;
    memcpy(Hd, H, (size_t)n * n * sizeof(double));
    for (int i = 0; i < n; i++) {
        if (Hd[(size_t)i * n + i] == 0) Hd[(size_t)i * n + i] = 1;
        meand += Hd[(size_t)i * n + i];
    }
    meand /= n;
    for (int i = 0; i < n; i++) Hd[(size_t)i * n + i] += g->damp * meand + 1e-12 * meand;

    if (o->init == ENG_ODLRI_LR_FIRST) {
        if ((rc = eng_odlri_lr_step(W, m, n, Hd, NULL, 0, k, f->L, f->R, err))) goto out;
    } else if (o->init == ENG_ODLRI_OUTLIER) {
        int ko = o->outliers > n ? n : o->outliers;
        eng_odlri_outliers(H, n, ko, idx);
        if ((rc = eng_odlri_lr_step(W, m, n, Hd, idx, ko, k, f->L, f->R, err))) goto out;
    } else {
        memset(f->L, 0, (size_t)m * k * sizeof(float));
        memset(f->R, 0, (size_t)k * n * sizeof(float));
    }
    eng_lowrank_round(f);
    double best = INFINITY;
    for (int it = 0; it < o->iterations; it++) {
        /* Q-step: GPTQ on W − LR */
        od__dense(f, LR);
        for (size_t i = 0; i < mn; i++) T[i] = W[i] - LR[i];
        if ((rc = eng_gptq_quantize(pool, T, m, n, H, qcfg, g, &qt, NULL, err))) goto out;
        eng_qlinear_dequant(&qt, Qd);
        /* LR-step on W − Q */
        for (size_t i = 0; i < mn; i++) T[i] = W[i] - Qd[i];
        if ((rc = eng_odlri_lr_step(T, m, n, Hd, NULL, 0, k, f->L, f->R, err))) goto out;
        eng_lowrank_round(f);
        od__dense(f, LR);
        for (size_t i = 0; i < mn; i++) T[i] = Qd[i] + LR[i];
        double e = eng_act_error(W, T, m, n, H);
        if (errs) errs[it] = e;
        if (e < best) { /* keep the best iterate (as CALDERA's best_decomp) */
            best = e;
            memcpy(qbest.q, qt.q, mn);
            memcpy(qbest.scale, qt.scale, (size_t)m * qt.G * sizeof(float));
            memcpy(qbest.zero, qt.zero, (size_t)m * qt.G * sizeof(float));
            eng_lowrank_close(&fb);
            fb = *f;
            if ((rc = eng_lowrank_init(f, m, n, k, fb.bits, err))) { *f = fb; memset(&fb, 0, sizeof fb); goto out; }
            memcpy(f->L, fb.L, (size_t)m * k * sizeof(float));
            memcpy(f->R, fb.R, (size_t)k * n * sizeof(float));
        }
    }
    if (o->iterations > 0) {
        memcpy(ql->q, qbest.q, mn);
        memcpy(ql->scale, qbest.scale, (size_t)m * qt.G * sizeof(float));
        memcpy(ql->zero, qbest.zero, (size_t)m * qt.G * sizeof(float));
        eng_lowrank_close(f);
        *f = fb;
        memset(&fb, 0, sizeof fb);
        eng_lowrank_round(f); /* re-derives the int8 codes of the kept factors (idempotent values) */
    }
out:
    eng_qlinear_close(&qt);
    eng_qlinear_close(&qbest);
    eng_lowrank_close(&fb);
    free(Hd); free(T); free(Qd); free(LR); free(idx);
    return rc;
}
