/* eng_gptq.c — calibration statistics (H = Σ x xᵀ in double, mean |x|) and GPTQ
 * (Frantar et al., arXiv 2210.17323; docs/algorithms.md, GPTQ).
 *
 * GPTQ, with U the upper Cholesky factor of (H + λI)⁻¹ = Uᵀ U (LAPACK dpotrf + dtrtri, gptq__hinv):
 *   for each column i (in act order if asked):
 *       q_i = quant(w_i)                          (RTN formula, scales/zeros of its group)
 *       e_i = (w_i − q_i) / U_ii                  (m)
 *       w_j −= e_i U_ij   for j > i              error feedback
 * Lazy batches of B columns: inside a batch the feedback goes to the batch's own columns only;
 * the columns after the batch get Σ_batch e_i U_ij in one dgemm at its end. Mathematically the
 * same as the column-by-column loop; only the order of the additions differs.
 *
 * Everything per row is independent of the other rows (the feedback of row r uses only row r's
 * errors; group parameters are per row), so rows are split over the pool in a partition that
 * depends on the shape only: results do not depend on the thread count. The working copy of W
 * and the Cholesky factors are double: the n×n inverse is taken of an H that is often badly
 * conditioned (near-dead channels), and double keeps the lazy and the plain loop identical in
 * practice (a rounding decision flips only when w/s lies within ~1e-16 of a half-integer). */
#include "eng_gptq.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <lapacke.h>

/* ---------------------------------------------------------------------------------------------
 * statistics */

int eng_hstat_init(eng_hstat_t *s, int n, lrq_err_t *err)
{
    memset(s, 0, sizeof *s);
    if (n <= 0) return lrq_errf(err, LRQ_ESPEC, "calibration statistics: bad width %d", n);
    s->n = n;
    s->H = calloc((size_t)n * n, sizeof(double));
    s->absum = calloc((size_t)n, sizeof(double));
    s->buf = malloc((size_t)ENG_HSTAT_CHUNK * n * sizeof(double));
    if (!s->H || !s->absum || !s->buf) {
        eng_hstat_close(s);
        return lrq_errf(err, LRQ_ENOMEM, "calibration statistics: out of memory (%d×%d doubles)", n, n);
    }
    return 0;
}

void eng_hstat_close(eng_hstat_t *s)
{
    free(s->H); free(s->absum); free(s->buf);
    memset(s, 0, sizeof *s);
}

void eng_hstat_add(eng_hstat_t *s, const float *X, long rows)
{
    const int n = s->n;
    for (long r0 = 0; r0 < rows; r0 += ENG_HSTAT_CHUNK) {
        int nr = rows - r0 < ENG_HSTAT_CHUNK ? (int)(rows - r0) : ENG_HSTAT_CHUNK;
        const float *x = X + (size_t)r0 * n;
        for (size_t i = 0; i < (size_t)nr * n; i++) s->buf[i] = x[i];
        for (int r = 0; r < nr; r++)
            for (int j = 0; j < n; j++) s->absum[j] += fabs(s->buf[(size_t)r * n + j]);
        /* H (n,n) upper += bufᵀ (n,nr) · buf (nr,n) */
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, n, nr, 1.0, s->buf, n, 1.0, s->H, n);
    }
    s->rows += rows;
}

void eng_hstat_finish(eng_hstat_t *s)
{
    for (int i = 0; i < s->n; i++)
        for (int j = 0; j < i; j++) s->H[(size_t)i * s->n + j] = s->H[(size_t)j * s->n + i];
}

void eng_hstat_absmean(const eng_hstat_t *s, float *out)
{
    for (int j = 0; j < s->n; j++) out[j] = s->rows ? (float)(s->absum[j] / (double)s->rows) : 0.0f;
}

/* ---------------------------------------------------------------------------------------------
 * errors */

double eng_hnorm2(const float *E, int m, int n, const double *H)
{
    enum { CH = 32 };
    double *e = malloc((size_t)CH * n * sizeof(double)), *t = malloc((size_t)CH * n * sizeof(double)), acc = 0;
    if (!e || !t) { free(e); free(t); return NAN; }
    for (int r0 = 0; r0 < m; r0 += CH) {
        int nr = m - r0 < CH ? m - r0 : CH;
        for (size_t i = 0; i < (size_t)nr * n; i++) e[i] = E[(size_t)r0 * n + i];
        /* t (nr,n) = e (nr,n) · H (n,n) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, n, n, 1.0, e, n, H, n, 0.0, t, n);
        for (size_t i = 0; i < (size_t)nr * n; i++) acc += e[i] * t[i];
    }
    free(e); free(t);
    return acc;
}

double eng_act_error(const float *W, const float *What, int m, int n, const double *H)
{
    float *E = malloc((size_t)m * n * sizeof(float));
    if (!E) return NAN;
    for (size_t i = 0; i < (size_t)m * n; i++) E[i] = What[i] - W[i];
    double num = eng_hnorm2(E, m, n, H), den = eng_hnorm2(W, m, n, H);
    free(E);
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* ---------------------------------------------------------------------------------------------
 * GPTQ */

typedef struct gptq__ctx {
    double *Wd;              /* (m,n) working copy, permuted columns */
    const double *U;         /* (n,n) upper Cholesky factor of H⁻¹ (permuted) */
    double *Err;             /* (m,B) scaled errors of the batch */
    const int *perm;         /* working column i is W's column perm[i] */
    eng_qlinear_t *ql;
    eng_qcfg_t c0;           /* per-channel cfg for dynamic group params */
    int m, n, B, i1, i2, dynamic;
    float *gbuf;             /* per part (rows_per_part, gs) floats, dynamic groups */
    float *gsc, *gze;        /* per part (rows_per_part) */
    int rows_per_part;
} gptq__ctx_t;

static void gptq__rows(void *p, int part, long r0, long r1)
{
    gptq__ctx_t *c = p;
    eng_qlinear_t *q = c->ql;
    const int n = c->n, G = q->G, gs = q->gs, B = c->B;
    const float M = (float)((1 << q->bits) - 1);
    for (int i = c->i1; i < c->i2; i++) {
        const int col = c->perm[i], g = col / gs;
        if (c->dynamic && col % gs == 0) {
            /* a group starts here (no act order: col == i): its columns have every update from
             * the columns before it (they lie in this batch, or it starts at the batch start) */
            int gl = n - col < gs ? n - col : gs, nr = (int)(r1 - r0);
            float *buf = c->gbuf + (size_t)part * c->rows_per_part * gs;
            float *sc = c->gsc + (size_t)part * c->rows_per_part, *ze = c->gze + (size_t)part * c->rows_per_part;
            for (int r = 0; r < nr; r++)
                for (int j = 0; j < gl; j++) buf[(size_t)r * gl + j] = (float)c->Wd[(size_t)(r0 + r) * n + i + j];
            eng_quant_init_params(NULL, buf, nr, gl, &c->c0, sc, ze);
            for (int r = 0; r < nr; r++) {
                q->scale[(size_t)(r0 + r) * G + g] = sc[r];
                q->zero[(size_t)(r0 + r) * G + g] = ze[r];
            }
        }
        const double d = c->U[(size_t)i * n + i];
        for (long r = r0; r < r1; r++) {
            const float s = q->scale[(size_t)r * G + g], z = q->zero[(size_t)r * G + g];
            double *w = c->Wd + (size_t)r * n;
            float v = rintf((float)w[i] / s);
            float lo = 0.0f - z, hi = M - z;
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
            if (v != v) v = 0;
            q->q[(size_t)r * n + col] = (uint8_t)(int)(v + z);
            double e = (w[i] - (double)(s * v)) / d;
            c->Err[(size_t)r * B + (i - c->i1)] = e;
            const double *u = c->U + (size_t)i * n;
            for (int j = i + 1; j < c->i2; j++) w[j] -= e * u[j];
        }
    }
}

static void gptq__tail(void *p, int part, long r0, long r1)
{
    gptq__ctx_t *c = p;
    int cnt = c->i2 - c->i1, rest = c->n - c->i2;
    if (rest <= 0 || r1 <= r0) return;
    /* Wd[r0:r1, i2:] (nr,rest) −= Err[r0:r1] (nr,cnt) · U[i1:i2, i2:] (cnt,rest) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), rest, cnt, -1.0, c->Err + (size_t)r0 * c->B,
                c->B, c->U + (size_t)c->i1 * c->n + c->i2, c->n, 1.0, c->Wd + (size_t)r0 * c->n + c->i2, c->n);
}

typedef struct { double d; int i; } gptq__key_t;
static int gptq__cmp(const void *a, const void *b)
{
    const gptq__key_t *x = a, *y = b;
    if (x->d != y->d) return x->d > y->d ? -1 : 1; /* decreasing diag(H) */
    return x->i - y->i;                            /* ties: original order (deterministic) */
}

/* U = upper Cholesky factor of (Hp + λI)⁻¹ (H⁻¹ = Uᵀ U), Hp = H in working column order (Hp_ij =
 * H_{perm i, perm j}, dead diagonals 1), read from H directly so that no permuted n×n copy is kept;
 * without forming the inverse: with J the
 * reversal permutation, J H J = L̃ L̃ᵀ (dpotrf, lower) gives H = Ũ Ũᵀ with Ũ = J L̃ J upper, so
 * H⁻¹ = Ũ⁻ᵀ Ũ⁻¹ and U = Ũ⁻¹ (dtrtri). One Cholesky and one triangular inverse (2n³/3 flops) instead of
 * GPTQ's Cholesky, inverse and second Cholesky (4n³/3), and no explicit inverse to lose digits in.
 * Returns 0, or > 0 when H + λI is not (numerically) positive definite. */
static int gptq__hinv(double *U, const double *H, const int *perm, int n, double lambda)
{
    double dmax = 0;
    for (int i = 0; i < n; i++) {
        const double *hr = H + (size_t)perm[n - 1 - i] * n;
        for (int j = 0; j < n; j++) U[(size_t)i * n + j] = hr[perm[n - 1 - j]];
    }
    for (int i = 0; i < n; i++) {
        if (U[(size_t)i * n + i] == 0) U[(size_t)i * n + i] = 1; /* dead input */
        U[(size_t)i * n + i] += lambda;
        dmax = U[(size_t)i * n + i] > dmax ? U[(size_t)i * n + i] : dmax;
    }
    lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', n, U, n);
    if (info) return (int)(info > 0 ? info : 1);
    /* numerically semi-definite (a pivot² below 1e-12 of the largest diagonal) counts as failure */
    for (int i = 0; i < n; i++)
        if (!(U[(size_t)i * n + i] * U[(size_t)i * n + i] > 1e-12 * dmax)) return n - i;
    /* Ũ = J L̃ J: reverse rows and columns in place (the strictly upper part of L̃ is garbage: zero it) */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) U[(size_t)i * n + j] = 0;
    for (size_t a = 0, b = (size_t)n * n - 1; a < b; a++, b--) {
        double t = U[a];
        U[a] = U[b];
        U[b] = t;
    }
    if ((info = LAPACKE_dtrtri(LAPACK_ROW_MAJOR, 'U', 'N', n, U, n))) return (int)(info > 0 ? info : 1);
    for (int i = 0; i < n; i++)
        if (!(U[(size_t)i * n + i] > 0) || !isfinite(U[(size_t)i * n + i])) return i + 1;
    return 0;
}

int eng_gptq_quantize(eng_pool_t *pool, const float *W, int m, int n, const double *H, const eng_qcfg_t *cfg,
                      const eng_gptq_cfg_t *g, eng_qlinear_t *ql, eng_gptq_info_t *info, lrq_err_t *err)
{
    eng_gptq_info_t dummy;
    if (!info) info = &dummy;
    memset(info, 0, sizeof *info);
    if (ql->m != m || ql->n != n || !ql->q)
        return lrq_errf(err, LRQ_ESPEC, "gptq: output is %dx%d, weight %dx%d", ql->m, ql->n, m, n);
    int Bsz = g->block_size;
    if (Bsz < 1 || (Bsz & (Bsz - 1))) return lrq_errf(err, LRQ_ESPEC, "gptq: block_size %d is not a power of two", Bsz);
    int dynamic = ql->G > 1 && !g->static_groups;
    if (g->act_order && dynamic)
        return lrq_errf(err, LRQ_ESPEC, "gptq: act_order with groups needs static_groups (stored groups are contiguous columns)");
    for (size_t i = 0; i < (size_t)n * n; i++)
        if (!isfinite(H[i])) return lrq_errf(err, LRQ_ENUMERIC, "gptq: the Hessian has a non-finite entry");
    int rc = 0;
    int parts = m >= 128 ? (m / 64 < 8 ? m / 64 : 8) : 1; /* shape-only partition */
    int rpp = (m + parts - 1) / parts;
    double *U = malloc((size_t)n * n * sizeof(double));
    double *Wd = malloc((size_t)m * n * sizeof(double)), *Err = malloc((size_t)m * Bsz * sizeof(double));
    int *perm = malloc((size_t)n * sizeof(int));
    gptq__key_t *keys = malloc((size_t)n * sizeof *keys);
    float *gbuf = dynamic ? malloc((size_t)parts * rpp * ql->gs * sizeof(float)) : NULL;
    float *gsc = dynamic ? malloc((size_t)parts * rpp * sizeof(float)) : NULL;
    float *gze = dynamic ? malloc((size_t)parts * rpp * sizeof(float)) : NULL;
    if (!U || !Wd || !Err || !perm || !keys || (dynamic && (!gbuf || !gsc || !gze))) {
        rc = lrq_errf(err, LRQ_ENOMEM, "gptq: out of memory for a %dx%d layer", m, n);
        goto out;
    }
    eng_qcfg_t c0 = *cfg;
    c0.group_size = 0;
    eng_qcfg_t cs = *cfg;
    cs.group_size = ql->gs == n ? 0 : ql->gs;
    cs.bits = ql->bits;
    c0.bits = ql->bits;
    if (!dynamic) eng_quant_init_params(pool, W, m, n, &cs, ql->scale, ql->zero);

    for (int i = 0; i < n; i++) keys[i] = (gptq__key_t){H[(size_t)i * n + i], i};
    if (g->act_order) qsort(keys, (size_t)n, sizeof *keys, gptq__cmp);
    for (int i = 0; i < n; i++) perm[i] = keys[i].i;
    double meand = 0;
    for (int r = 0; r < m; r++)
        for (int i = 0; i < n; i++) Wd[(size_t)r * n + i] = W[(size_t)r * n + perm[i]];
    for (int i = 0; i < n; i++) {
        double d = H[(size_t)perm[i] * n + perm[i]];
        if (d == 0) { /* dead input: H_ii = 1, its weights become 0 (as GPTQ) */
            d = 1;
            for (int r = 0; r < m; r++) Wd[(size_t)r * n + i] = 0;
            info->dead++;
        }
        meand += d;
    }
    meand /= n;
    double lambda = g->damp * meand;
    int bad;
    while ((bad = gptq__hinv(U, H, perm, n, lambda))) {
        if (info->retries >= 8) {
            rc = lrq_errf(err, LRQ_ENUMERIC, "gptq: H + %g·I is not positive definite (column %d) after %d extra dampings",
                          lambda, bad, info->retries);
            goto out;
        }
        info->retries++;
        double floor_ = 0.01 * (meand > 0 ? meand : 1); /* GPTQ's default damping, then ×10 */
        lambda = lambda * 10 > floor_ ? lambda * 10 : floor_;
    }
    info->damp = lambda;

    gptq__ctx_t c = {Wd, U, Err, perm, ql, c0, m, n, Bsz, 0, 0, dynamic, gbuf, gsc, gze, rpp};
    for (int i1 = 0; i1 < n; i1 += Bsz) {
        c.i1 = i1;
        c.i2 = i1 + Bsz < n ? i1 + Bsz : n;
        eng_pool_range(pool, m, parts, gptq__rows, &c);
        eng_pool_range(pool, m, parts, gptq__tail, &c);
    }
out:
    free(U); free(Wd); free(Err); free(perm); free(keys); free(gbuf); free(gsc); free(gze);
    return rc;
}
