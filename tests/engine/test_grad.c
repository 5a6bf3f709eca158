/* test_grad.c — Llama block ops and the whole block against an independent naive
 * double-precision reference (written from the maths in this file) and central finite
 * differences of that reference.
 *
 * Loss L = Σ dy ⊙ op(inputs) with a fixed random dy. Finite differences are taken in
 * double with step 1e-5 (truncation ~1e-10, rounding ~1e-11), so they are exact for our
 * purposes; what is tested is the fp32 analytic backward. Tolerances:
 *   forward:   max|y_f32 − y_ref| ≤ 2e-6 · max(1, max|y_ref|)
 *   gradients: max|g_f32 − g_fd| ≤ 2e-5 · max(1e-2, max|g_fd|)   (per tensor)
 * (observed: ≤ 1e-6 relative, fp32 rounding; a wrong term gives O(1e-1..1)). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "eng_block.h"
#include "eng_kernels.h"

#define FWD_TOL 2e-6
#define GRAD_TOL 2e-5
#define FD_H 1e-5

/* ---- helpers ---- */

/* Test buffers are tracked and freed by the suites' fini (clean under LeakSanitizer). */
static void *allocs[1024];
static int nallocs;
static void *talloc(size_t bytes)
{
    cr_assert_lt(nallocs, 1024);
    void *p = calloc(1, bytes ? bytes : 1);
    cr_assert(p);
    return allocs[nallocs++] = p;
}
static void free_all(void)
{
    while (nallocs) free(allocs[--nallocs]);
}
TestSuite(ops, .fini = free_all);
TestSuite(block, .fini = free_all);

static uint64_t rng_state;
static double urand(void) /* splitmix64 → [-1, 1) */
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}
static double *drand_vec(size_t n, double scale, double offset)
{
    double *v = talloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = offset + scale * urand();
    return v;
}
static float *to_f(const double *d, size_t n)
{
    float *f = talloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = (float)d[i];
    return f;
}
static float *fzeros(size_t n)
{
    float *f = talloc(n * sizeof *f);
    return f;
}
static double dot_fd(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void check_fwd(const char *what, const float *y, const double *ref, size_t n)
{
    double m = 1.0, e = 0.0;
    for (size_t i = 0; i < n; i++) {
        m = fmax(m, fabs(ref[i]));
        e = fmax(e, fabs(y[i] - ref[i]));
    }
    cr_expect(e <= FWD_TOL * m, "%s forward: max abs err %.3g (scale %.3g)", what, e, m);
}

typedef double (*loss_fn)(void *ctx);
/* Central finite differences of f w.r.t. every element of p[0..n), then compare. */
static void check_grad(const char *what, double *p, size_t n, loss_fn f, void *ctx, const float *g)
{
    cr_assert(g, "%s: no gradient", what);
    double m = 1e-2, e = 0.0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        double s = p[i];
        p[i] = s + FD_H;
        double lp = f(ctx);
        p[i] = s - FD_H;
        double lm = f(ctx);
        p[i] = s;
        double fd = (lp - lm) / (2 * FD_H);
        m = fmax(m, fabs(fd));
        if (fabs(g[i] - fd) > e) {
            e = fabs(g[i] - fd);
            worst = i;
        }
    }
    cr_expect(e <= GRAD_TOL * m, "%s: max abs err %.3g at %zu (scale %.3g, rel %.3g)", what, e, worst, m, e / m);
    cr_log_info("%s: rel err %.3g", what, e / m);
}

/* ---- naive double reference, straight from the definitions ---- */

static void ref_rmsnorm(double *out, const double *x, const double *w, int N, int C, double eps)
{
    for (int n = 0; n < N; n++) {
        double ss = 0;
        for (int i = 0; i < C; i++) ss += x[n * C + i] * x[n * C + i];
        double r = 1.0 / sqrt(ss / C + eps);
        for (int i = 0; i < C; i++) out[n * C + i] = x[n * C + i] * r * w[i];
    }
}

/* llama2.c: rotate (2i, 2i+1) as a complex number by t·θ^(−2i/Dh).
 * HF: x·cat(cos,cos) + rotate_half(x)·cat(sin,sin), rotate_half(x) = cat(−x₂, x₁). */
static void ref_rope(double *x, eng_rope_layout_t layout, int B, int T, int nh, int Dh, double theta)
{
    int half = Dh / 2;
    double tmp[64];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < nh; h++) {
                double *v = x + ((size_t)(b * T + t) * nh + h) * Dh;
                if (layout == ENG_ROPE_INTERLEAVED) {
                    for (int i = 0; i < half; i++) {
                        double a = t * pow(theta, -2.0 * i / Dh), re = v[2 * i], im = v[2 * i + 1];
                        v[2 * i] = re * cos(a) - im * sin(a);
                        v[2 * i + 1] = re * sin(a) + im * cos(a);
                    }
                } else {
                    for (int j = 0; j < Dh; j++) {
                        double a = t * pow(theta, -2.0 * (j % half) / Dh);
                        double rot = j < half ? -v[j + half] : v[j - half];
                        tmp[j] = v[j] * cos(a) + rot * sin(a);
                    }
                    memcpy(v, tmp, Dh * sizeof *v);
                }
            }
}

static void ref_attention(double *out, const double *q, const double *k, const double *v,
                          int B, int T, int H, int KVH, int Dh)
{
    double *s = malloc((size_t)T * sizeof *s);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / (H / KVH);
            for (int t = 0; t < T; t++) {
                const double *qt = q + ((size_t)(b * T + t) * H + h) * Dh;
                double mx = -1e300, sum = 0;
                for (int j = 0; j <= t; j++) {
                    const double *kj = k + ((size_t)(b * T + j) * KVH + g) * Dh;
                    s[j] = 0;
                    for (int d = 0; d < Dh; d++) s[j] += qt[d] * kj[d];
                    s[j] /= sqrt((double)Dh);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j <= t; j++) sum += (s[j] = exp(s[j] - mx));
                double *ot = out + ((size_t)(b * T + t) * H + h) * Dh;
                for (int d = 0; d < Dh; d++) {
                    ot[d] = 0;
                    for (int j = 0; j <= t; j++) ot[d] += s[j] / sum * v[((size_t)(b * T + j) * KVH + g) * Dh + d];
                }
            }
        }
    free(s);
}

static double silu(double g) { return g / (1.0 + exp(-g)); }

/* y (N,m) = x (N,n) Wᵀ */
static void ref_linear(double *y, const double *x, const double *W, int N, int m, int n)
{
    for (int r = 0; r < N; r++)
        for (int o = 0; o < m; o++) {
            double s = 0;
            for (int i = 0; i < n; i++) s += x[r * n + i] * W[o * n + i];
            y[r * m + o] = s;
        }
}

/* ---- per-op tests ---- */

enum { B_ = 2, T_ = 5, D_ = 16, H_ = 4, KVH_ = 2, DH_ = 4, F_ = 24, N_ = B_ * T_ };

typedef struct {
    double *x, *w, *dy, *tmp;
    int N, C;
} rms_ctx;
static double rms_loss(void *c)
{
    rms_ctx *r = c;
    ref_rmsnorm(r->tmp, r->x, r->w, r->N, r->C, 1e-5);
    return dot_fd(r->tmp, r->dy, (size_t)r->N * r->C);
}

Test(ops, rmsnorm)
{
    rng_state = 1;
    int N = N_, C = D_;
    size_t n = (size_t)N * C;
    rms_ctx c = {drand_vec(n, 1.0, 0.0), drand_vec(C, 0.3, 1.0), drand_vec(n, 1.0, 0.0),
                 drand_vec(n, 0, 0), N, C};
    float *xf = to_f(c.x, n), *wf = to_f(c.w, C), *dyf = to_f(c.dy, n);
    float *y = fzeros(n), *rstd = fzeros(N), *dx = fzeros(n), *dw = fzeros(C);
    eng_rmsnorm_forward(y, rstd, xf, wf, N, C, 1e-5f);
    rms_loss(&c);
    check_fwd("rmsnorm", y, c.tmp, n);
    eng_rmsnorm_backward(dx, dw, dyf, xf, wf, rstd, N, C);
    check_grad("rmsnorm dx", c.x, n, rms_loss, &c, dx);
    check_grad("rmsnorm dw", c.w, C, rms_loss, &c, dw);
}

typedef struct {
    double *x, *dy, *tmp;
    eng_rope_layout_t layout;
    int nh, Dh;
} rope_ctx;
static double rope_loss(void *c)
{
    rope_ctx *r = c;
    size_t n = (size_t)N_ * r->nh * r->Dh;
    memcpy(r->tmp, r->x, n * sizeof(double));
    ref_rope(r->tmp, r->layout, B_, T_, r->nh, r->Dh, 10000.0);
    return dot_fd(r->tmp, r->dy, n);
}

static void rope_test(eng_rope_layout_t layout)
{
    rng_state = 2 + layout;
    /* Dh = 8: several frequencies, and the layouts' pair maps differ */
    int nh = 3, Dh = 8;
    eng_config_t cfg = {.head_dim = Dh, .rope_theta = 10000.0f};
    size_t n = (size_t)N_ * nh * Dh;
    rope_ctx c = {drand_vec(n, 1.0, 0.0), drand_vec(n, 1.0, 0.0), drand_vec(n, 0, 0), layout, nh, Dh};
    eng_rope_tab_t tab;
    cr_assert_eq(eng_rope_tab_init(&tab, &cfg, T_ + 3), 0); /* table longer than T is fine */
    float *xf = to_f(c.x, n), *dyf = to_f(c.dy, n);
    eng_rope_forward(xf, &tab, layout, B_, T_, nh, Dh);
    rope_loss(&c);
    check_fwd(layout ? "rope half" : "rope interleaved", xf, c.tmp, n);
    eng_rope_backward(dyf, &tab, layout, B_, T_, nh, Dh); /* in place: dy → dx */
    check_grad(layout ? "rope half dx" : "rope interleaved dx", c.x, n, rope_loss, &c, dyf);
    eng_rope_tab_close(&tab);
}

Test(ops, rope_interleaved) { rope_test(ENG_ROPE_INTERLEAVED); }
Test(ops, rope_half) { rope_test(ENG_ROPE_HALF); }

/* The two layouts are the same rotation up to a permutation of each head's features:
 * interleaved feature 2i ↔ half feature i, 2i+1 ↔ i + Dh/2. */
Test(ops, rope_layouts_related_by_permutation)
{
    rng_state = 9;
    eng_config_t cfg = {.head_dim = DH_, .rope_theta = 10000.0f};
    eng_rope_tab_t tab;
    cr_assert_eq(eng_rope_tab_init(&tab, &cfg, T_), 0);
    size_t n = (size_t)N_ * H_ * DH_;
    double *x = drand_vec(n, 1.0, 0.0);
    float *a = to_f(x, n), *b = fzeros(n);
    for (size_t r = 0; r < n / DH_; r++)
        for (int i = 0; i < DH_ / 2; i++) {
            b[r * DH_ + i] = a[r * DH_ + 2 * i];
            b[r * DH_ + i + DH_ / 2] = a[r * DH_ + 2 * i + 1];
        }
    eng_rope_forward(a, &tab, ENG_ROPE_INTERLEAVED, B_, T_, H_, DH_);
    eng_rope_forward(b, &tab, ENG_ROPE_HALF, B_, T_, H_, DH_);
    for (size_t r = 0; r < n / DH_; r++)
        for (int i = 0; i < DH_ / 2; i++) {
            cr_expect_eq(b[r * DH_ + i], a[r * DH_ + 2 * i]);
            cr_expect_eq(b[r * DH_ + i + DH_ / 2], a[r * DH_ + 2 * i + 1]);
        }
    eng_rope_tab_close(&tab);
}

typedef struct {
    double *q, *k, *v, *dy, *tmp;
} att_ctx;
static double att_loss(void *c)
{
    att_ctx *a = c;
    ref_attention(a->tmp, a->q, a->k, a->v, B_, T_, H_, KVH_, DH_);
    return dot_fd(a->tmp, a->dy, (size_t)N_ * H_ * DH_);
}

Test(ops, attention_gqa)
{
    rng_state = 4;
    size_t nq = (size_t)N_ * H_ * DH_, nk = (size_t)N_ * KVH_ * DH_;
    /* scale 2 so the softmax is far from uniform */
    att_ctx c = {drand_vec(nq, 2.0, 0.0), drand_vec(nk, 2.0, 0.0), drand_vec(nk, 1.0, 0.0),
                 drand_vec(nq, 1.0, 0.0), drand_vec(nq, 0, 0)};
    float *q = to_f(c.q, nq), *k = to_f(c.k, nk), *v = to_f(c.v, nk), *dy = to_f(c.dy, nq);
    float *out = fzeros(nq), *att = fzeros((size_t)B_ * H_ * T_ * T_);
    float *dq = fzeros(nq), *dk = fzeros(nk), *dv = fzeros(nk);
    eng_attention_forward(out, att, q, k, v, B_, T_, H_, KVH_, DH_);
    att_loss(&c);
    check_fwd("attention", out, c.tmp, nq);
    for (int bh = 0; bh < B_ * H_; bh++) /* causal: strictly upper triangle zero, rows sum to 1 */
        for (int t = 0; t < T_; t++) {
            double s = 0;
            for (int j = 0; j < T_; j++) {
                float p = att[((size_t)bh * T_ + t) * T_ + j];
                if (j > t) cr_expect_eq(p, 0.0f);
                s += p;
            }
            cr_expect(fabs(s - 1.0) < 1e-6);
        }
    eng_attention_backward(dq, dk, dv, dy, att, q, k, v, B_, T_, H_, KVH_, DH_);
    check_grad("attention dq", c.q, nq, att_loss, &c, dq);
    check_grad("attention dk", c.k, nk, att_loss, &c, dk);
    check_grad("attention dv", c.v, nk, att_loss, &c, dv);
}

/* Long sequences go through the row-chunked path (chunks of ENG_ATT_CHUNK rows that only
 * see keys [0, r1)): forward against the reference, with and without saved probabilities;
 * backward with small, odd and full chunks must agree (fp32 summation order only). */
Test(ops, attention_chunked_long)
{
    rng_state = 6;
    enum { B = 2, T = ENG_ATT_CHUNK + 37, H = 4, KVH = 2, Dh = 4 };
    size_t nq = (size_t)B * T * H * Dh, nk = (size_t)B * T * KVH * Dh;
    double *qd = drand_vec(nq, 2.0, 0.0), *kd = drand_vec(nk, 2.0, 0.0), *vd = drand_vec(nk, 1.0, 0.0),
           *ref = drand_vec(nq, 0, 0);
    float *q = to_f(qd, nq), *k = to_f(kd, nk), *v = to_f(vd, nk), *dy = to_f(drand_vec(nq, 1.0, 0.0), nq);
    float *o1 = fzeros(nq), *o0 = fzeros(nq), *o2 = fzeros(nq), *att = fzeros((size_t)B * H * T * T),
          *scratch = fzeros((size_t)2 * T * T);
    eng_pool_t *pool = eng_pool_new(2); /* threaded path: results must not depend on it */
    cr_assert(pool);
    ref_attention(ref, qd, kd, vd, B, T, H, KVH, Dh);
    eng__attention_fwd(o1, att, 1, NULL, NULL, NULL, q, k, v, B, T, H, KVH, Dh);
    eng__attention_fwd(o0, scratch, 0, scratch, NULL, NULL, q, k, v, B, T, H, KVH, Dh);
    eng__attention_fwd(o2, scratch, 0, scratch, pool, NULL, q, k, v, B, T, H, KVH, Dh);
    check_fwd("attention long, saved", o1, ref, nq);
    /* same chunks, tasks own their rows: same summation order, so exact */
    cr_expect_arr_eq(o0, o1, nq * sizeof(float), "inference path differs");
    cr_expect_arr_eq(o2, o1, nq * sizeof(float), "threaded inference path differs");
    float *g[4][3];
    int chunks[4] = {T, ENG_ATT_CHUNK, 7, 7};
    for (int c = 0; c < 4; c++) {
        g[c][0] = fzeros(nq);
        g[c][1] = fzeros(nk);
        g[c][2] = fzeros(nk);
        eng__attention_bwd(g[c][0], g[c][1], g[c][2], dy, att, q, k, v, B, T, H, KVH, Dh, scratch, chunks[c],
                           c == 3 ? pool : NULL, NULL);
    }
    for (int t = 0; t < 3; t++)
        cr_expect_arr_eq(g[3][t], g[2][t], (t ? nk : nq) * sizeof(float), "threaded backward differs");
    /* Chunks change the summation order of dk, dv (sums over the T = 293 query rows, in
     * chunk-sized pieces) and of dq: two orders of a length-K sum differ by ≲ 2·sqrt(K)·u·S
     * (u = 2^-24, S = Σ|terms|, random walk); with S ≤ ~5·max|g| for these random-sign sums,
     * 2·17·6e-8·5 ≈ 1e-5 relative to the tensor's max. Observed ≤ 8e-7; a dropped or doubled
     * chunk is an O(1e-1) relative error. */
    for (int c = 1; c < 3; c++)
        for (int t = 0; t < 3; t++) {
            size_t n = t ? nk : nq;
            double m = 1e-2, e = 0;
            for (size_t i = 0; i < n; i++) {
                m = fmax(m, fabs(g[0][t][i]));
                e = fmax(e, fabs(g[c][t][i] - g[0][t][i]));
            }
            cr_expect(e <= 1e-5 * m, "chunk %d grad %d: err %.3g scale %.3g", chunks[c], t, e, m);
        }
    eng_pool_free(pool);
}

typedef struct {
    double *g, *u, *dy;
    size_t n;
} swi_ctx;
static double swi_loss(void *c)
{
    swi_ctx *s = c;
    double L = 0;
    for (size_t i = 0; i < s->n; i++) L += s->dy[i] * silu(s->g[i]) * s->u[i];
    return L;
}

Test(ops, swiglu)
{
    rng_state = 5;
    size_t n = (size_t)N_ * F_;
    swi_ctx c = {drand_vec(n, 4.0, 0.0), drand_vec(n, 1.0, 0.0), drand_vec(n, 1.0, 0.0), n};
    c.g[0] = -100.0; /* saturated sigmoid must stay finite */
    c.g[1] = 30.0;
    float *g = to_f(c.g, n), *u = to_f(c.u, n), *dy = to_f(c.dy, n);
    float *out = fzeros(n), *dg = fzeros(n), *du = fzeros(n);
    double *ref = talloc(n * sizeof *ref);
    for (size_t i = 0; i < n; i++) ref[i] = silu(c.g[i]) * c.u[i];
    eng_swiglu_forward(out, g, u, n);
    check_fwd("swiglu", out, ref, n);
    eng_swiglu_backward(dg, du, dy, g, u, n);
    check_grad("swiglu dg", c.g, n, swi_loss, &c, dg);
    check_grad("swiglu du", c.u, n, swi_loss, &c, du);
}

/* ---- whole block ---- */

typedef struct {
    eng_config_t cfg;
    double *x, *n1, *n2, *W[ENG_NLIN], *dy;
    int B, T;
} blk_ctx;

static const int lin_m[ENG_NLIN] = {H_ * DH_, KVH_ * DH_, KVH_ * DH_, D_, F_, F_, D_};
static const int lin_n[ENG_NLIN] = {D_, D_, D_, H_ * DH_, D_, D_, F_};

static void ref_block(const blk_ctx *c, double *y, int B, int T)
{
    int N = B * T;
    size_t nd = (size_t)N * D_;
    double *xn = calloc(nd, sizeof *xn), *q = calloc((size_t)N * H_ * DH_, sizeof *q),
           *k = calloc((size_t)N * KVH_ * DH_, sizeof *k), *v = calloc((size_t)N * KVH_ * DH_, sizeof *v),
           *ao = malloc((size_t)N * H_ * DH_ * sizeof *ao), *hh = malloc(nd * sizeof *hh),
           *gt = malloc((size_t)N * F_ * sizeof *gt), *up = malloc((size_t)N * F_ * sizeof *up);
    ref_rmsnorm(xn, c->x, c->n1, N, D_, c->cfg.norm_eps);
    ref_linear(q, xn, c->W[ENG_Q], N, H_ * DH_, D_);
    ref_linear(k, xn, c->W[ENG_K], N, KVH_ * DH_, D_);
    ref_linear(v, xn, c->W[ENG_V], N, KVH_ * DH_, D_);
    ref_rope(q, c->cfg.rope, B, T, H_, DH_, c->cfg.rope_theta);
    ref_rope(k, c->cfg.rope, B, T, KVH_, DH_, c->cfg.rope_theta);
    ref_attention(ao, q, k, v, B, T, H_, KVH_, DH_);
    ref_linear(hh, ao, c->W[ENG_O], N, D_, H_ * DH_);
    for (size_t i = 0; i < nd; i++) hh[i] += c->x[i];
    ref_rmsnorm(xn, hh, c->n2, N, D_, c->cfg.norm_eps);
    ref_linear(gt, xn, c->W[ENG_GATE], N, F_, D_);
    ref_linear(up, xn, c->W[ENG_UP], N, F_, D_);
    for (size_t i = 0; i < (size_t)N * F_; i++) gt[i] = silu(gt[i]) * up[i];
    ref_linear(y, gt, c->W[ENG_DOWN], N, D_, F_);
    for (size_t i = 0; i < nd; i++) y[i] += hh[i];
    free(xn); free(q); free(k); free(v); free(ao); free(hh); free(gt); free(up);
}

static double blk_loss(void *p)
{
    blk_ctx *c = p;
    size_t nd = (size_t)c->B * c->T * D_;
    double *y = malloc(nd * sizeof *y);
    ref_block(c, y, c->B, c->T);
    double L = dot_fd(y, c->dy, nd);
    free(y);
    return L;
}

static void block_test(eng_rope_layout_t layout)
{
    rng_state = 10 + layout;
    blk_ctx c = {.cfg = {.dim = D_, .ffn_dim = F_, .n_layers = 1, .n_heads = H_, .n_kv_heads = KVH_,
                         .head_dim = DH_, .vocab_size = 0, .max_seq_len = T_, .norm_eps = 1e-5f,
                         .rope_theta = 100.0f, .rope = layout},
                 .B = B_, .T = T_};
    size_t nd = (size_t)N_ * D_;
    c.x = drand_vec(nd, 1.0, 0.0);
    c.dy = drand_vec(nd, 1.0, 0.0);
    c.n1 = drand_vec(D_, 0.3, 1.0);
    c.n2 = drand_vec(D_, 0.3, 1.0);
    eng_block_w_t w = {0};
    eng_block_g_t g, g2 = {0};
    float *Wf[ENG_NLIN];
    for (int l = 0; l < ENG_NLIN; l++) {
        size_t n = (size_t)lin_m[l] * lin_n[l];
        /* ~1/sqrt(fan_in) scale, ×2 on q,k for a peaked softmax */
        c.W[l] = drand_vec(n, (l <= ENG_K ? 2.0 : 1.0) * 1.7 / sqrt(lin_n[l]), 0.0);
        w.lin[l] = Wf[l] = to_f(c.W[l], n);
        g.lin[l] = fzeros(n);
        g2.lin[l] = fzeros(n);
    }
    float *n1 = to_f(c.n1, D_), *n2 = to_f(c.n2, D_);
    w.attn_norm = n1;
    w.ffn_norm = n2;
    g.attn_norm = fzeros(D_);
    g.ffn_norm = fzeros(D_);
    float *x = to_f(c.x, nd), *dy = to_f(c.dy, nd), *y = fzeros(nd), *dx = fzeros(nd);
    double *yref = talloc(nd * sizeof *yref);

    eng_rope_tab_t tab;
    cr_assert_eq(eng_rope_tab_init(&tab, &c.cfg, T_), 0);
    eng_block_ws_t *ws = eng_block_ws_new(&c.cfg, B_, T_, 1, NULL);
    cr_assert(ws);
    cr_expect(eng_block_ws_bytes(&c.cfg, B_, T_, 1, NULL) > eng_block_ws_bytes(&c.cfg, B_, T_, 0, NULL));
    eng_block_forward(&c.cfg, &w, &tab, x, y, ws, B_, T_);
    ref_block(&c, yref, B_, T_);
    check_fwd("block", y, yref, nd);
    eng_block_backward(&c.cfg, &w, &tab, dy, dx, &g, ws, B_, T_);
    static const char *names[ENG_NLIN] = {"dWq", "dWk", "dWv", "dWo", "dWgate", "dWup", "dWdown"};
    for (int l = 0; l < ENG_NLIN; l++)
        check_grad(names[l], c.W[l], (size_t)lin_m[l] * lin_n[l], blk_loss, &c, g.lin[l]);
    check_grad("d attn_norm", c.n1, D_, blk_loss, &c, g.attn_norm);
    check_grad("d ffn_norm", c.n2, D_, blk_loss, &c, g.ffn_norm);
    check_grad("dx", c.x, nd, blk_loss, &c, dx);

    /* dx = NULL (no norm grads): weight gradients unchanged, the q/k/v input GEMMs skipped */
    eng_block_forward(&c.cfg, &w, &tab, x, y, ws, B_, T_);
    eng_block_backward(&c.cfg, &w, &tab, dy, NULL, &g2, ws, B_, T_);
    for (int l = 0; l < ENG_NLIN; l++)
        cr_expect_arr_eq(g2.lin[l], g.lin[l], (size_t)lin_m[l] * lin_n[l] * sizeof(float), "%s with dx=NULL", names[l]);

    /* a smaller (B,T) in the same workspace */
    c.B = 1;
    c.T = 3;
    float *y3 = fzeros(nd);
    eng_block_forward(&c.cfg, &w, &tab, x, y3, ws, 1, 3);
    ref_block(&c, yref, 1, 3);
    check_fwd("block B=1,T=3", y3, yref, (size_t)3 * D_);

    eng_block_ws_free(ws);
    eng_rope_tab_close(&tab);
}

Test(block, grad_interleaved) { block_test(ENG_ROPE_INTERLEAVED); }
Test(block, grad_half) { block_test(ENG_ROPE_HALF); }

/* Inference workspace (no saved probabilities) gives the same output bit for bit. */
Test(block, inference_workspace_matches)
{
    rng_state = 20;
    eng_config_t cfg = {.dim = D_, .ffn_dim = F_, .n_layers = 1, .n_heads = H_, .n_kv_heads = KVH_,
                        .head_dim = DH_, .norm_eps = 1e-5f, .rope_theta = 10000.0f};
    size_t nd = (size_t)N_ * D_;
    eng_block_w_t w = {0};
    for (int l = 0; l < ENG_NLIN; l++) {
        size_t n = (size_t)lin_m[l] * lin_n[l];
        w.lin[l] = to_f(drand_vec(n, 0.5, 0.0), n);
    }
    w.attn_norm = to_f(drand_vec(D_, 0.3, 1.0), D_);
    w.ffn_norm = to_f(drand_vec(D_, 0.3, 1.0), D_);
    float *x = to_f(drand_vec(nd, 1.0, 0.0), nd), *y1 = fzeros(nd), *y0 = fzeros(nd);
    eng_rope_tab_t tab;
    cr_assert_eq(eng_rope_tab_init(&tab, &cfg, T_), 0);
    eng_block_ws_t *w1 = eng_block_ws_new(&cfg, B_, T_, 1, NULL), *w0 = eng_block_ws_new(&cfg, B_, T_, 0, NULL);
    cr_assert(w1 && w0);
    eng_block_forward(&cfg, &w, &tab, x, y1, w1, B_, T_);
    eng_block_forward(&cfg, &w, &tab, x, y0, w0, B_, T_);
    cr_expect_arr_eq(y0, y1, nd * sizeof(float));
    eng_block_ws_free(w1);
    eng_block_ws_free(w0);
    eng_rope_tab_close(&tab);
    /* invalid shapes are refused, not crashed on */
    cfg.n_kv_heads = 3;
    cr_expect_null(eng_block_ws_new(&cfg, B_, T_, 1, NULL));
}

/* The threaded paths (attention tasks, row-split small GEMMs, split SwiGLU) at a shape
 * that triggers them: same results as one thread up to fp32 rounding, and bit-identical
 * between two runs with the same thread count. */
Test(block, threaded_workspace_deterministic)
{
    rng_state = 30;
    enum { D = 64, F = 172, H = 8, KVH = 4, Dh = 8, B = 2, T = 200 };
    eng_config_t cfg = {.dim = D, .ffn_dim = F, .n_layers = 1, .n_heads = H, .n_kv_heads = KVH,
                        .head_dim = Dh, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope = ENG_ROPE_HALF};
    const int m[ENG_NLIN] = {H * Dh, KVH * Dh, KVH * Dh, D, F, F, D}, n[ENG_NLIN] = {D, D, D, H * Dh, D, D, F};
    size_t nd = (size_t)B * T * D;
    eng_block_w_t w = {0};
    eng_block_g_t g[3];
    for (int l = 0; l < ENG_NLIN; l++) {
        w.lin[l] = to_f(drand_vec((size_t)m[l] * n[l], 1.5 / sqrt(n[l]), 0.0), (size_t)m[l] * n[l]);
        for (int r = 0; r < 3; r++) g[r].lin[l] = fzeros((size_t)m[l] * n[l]);
    }
    w.attn_norm = to_f(drand_vec(D, 0.3, 1.0), D);
    w.ffn_norm = to_f(drand_vec(D, 0.3, 1.0), D);
    for (int r = 0; r < 3; r++) {
        g[r].attn_norm = fzeros(D);
        g[r].ffn_norm = fzeros(D);
    }
    float *x = to_f(drand_vec(nd, 1.0, 0.0), nd), *dy = to_f(drand_vec(nd, 1.0, 0.0), nd);
    float *y[3], *dx[3];
    eng_rope_tab_t tab;
    cr_assert_eq(eng_rope_tab_init(&tab, &cfg, T), 0);
    int saved = openblas_get_num_threads();
    for (int r = 0; r < 3; r++) { /* r = 0: one thread; 1, 2: two threads */
        eng_pool_t *pool = eng_pool_new(r ? 2 : 1);
        eng_block_ws_t *ws = eng_block_ws_new(&cfg, B, T, 1, pool);
        cr_assert(ws);
        y[r] = fzeros(nd);
        dx[r] = fzeros(nd);
        eng_block_forward(&cfg, &w, &tab, x, y[r], ws, B, T);
        eng_block_backward(&cfg, &w, &tab, dy, dx[r], &g[r], ws, B, T);
        eng_block_ws_free(ws);
        eng_pool_free(pool);
    }
    openblas_set_num_threads(saved);
    cr_expect_arr_eq(y[2], y[1], nd * sizeof(float), "two threaded runs differ (y)");
    cr_expect_arr_eq(dx[2], dx[1], nd * sizeof(float), "two threaded runs differ (dx)");
    for (int l = 0; l < ENG_NLIN; l++)
        cr_expect_arr_eq(g[2].lin[l], g[1].lin[l], (size_t)m[l] * n[l] * sizeof(float), "threaded runs differ (%d)", l);
    const float *a[9] = {y[0], dx[0], g[0].lin[0], g[0].lin[1], g[0].lin[2], g[0].lin[3], g[0].lin[4], g[0].lin[5], g[0].lin[6]};
    const float *b[9] = {y[1], dx[1], g[1].lin[0], g[1].lin[1], g[1].lin[2], g[1].lin[3], g[1].lin[4], g[1].lin[5], g[1].lin[6]};
    size_t len[9] = {nd, nd};
    for (int l = 0; l < ENG_NLIN; l++) len[2 + l] = (size_t)m[l] * n[l];
    /* 1 vs 2 threads: different blocking of the same reductions (OpenBLAS's threaded
     * partitions, row-split small GEMMs). Longest reduction K = B·T = 400 (dW = dyᵀx);
     * per reduction ≲ 2·sqrt(K)·u ≈ 2.4e-6 of max|result|, and about 4 such stages feed
     * each other in the backward (FFN, attention, two norms): 1e-5 of the tensor's max.
     * Observed ≤ 6e-7; a race or a lost partial sum is O(1e-2..1). */
    for (int i = 0; i < 9; i++) {
        double mx = 1e-3, e = 0;
        for (size_t k = 0; k < len[i]; k++) {
            mx = fmax(mx, fabs(a[i][k]));
            e = fmax(e, fabs(a[i][k] - b[i][k]));
        }
        cr_expect(e <= 1e-5 * mx, "tensor %d: 1 vs 2 threads differ by %.3g (scale %.3g)", i, e, mx);
    }
    eng_rope_tab_close(&tab);
}
