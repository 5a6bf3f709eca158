/* eng_smooth.c — SmoothQuant migration folded into a model view (eng_smooth.h;
 * docs/algorithms.md, SmoothQuant). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "eng_smooth.h"

void eng_smooth_factors(const float *a, const float *const *W, const int *m, int nW, int n, float alpha, int pow2,
                        float *s)
{
    for (int j = 0; j < n; j++) s[j] = 0.0f;
    for (int k = 0; k < nW; k++) /* s temporarily holds the column maxima of the weights */
        for (int i = 0; i < m[k]; i++) {
            const float *row = W[k] + (size_t)i * n;
            for (int j = 0; j < n; j++) {
                float v = fabsf(row[j]);
                s[j] = v > s[j] ? v : s[j];
            }
        }
    for (int j = 0; j < n; j++) {
        double aj = a[j] > 1e-5f ? a[j] : 1e-5, wj = s[j] > 1e-5f ? s[j] : 1e-5;
        double f = pow(aj, alpha) / pow(wj, 1.0 - alpha);
        if (!isfinite(f) || f <= 0) f = 1.0;
        if (pow2) f = exp2(rint(log2(f)));
        s[j] = (float)f;
    }
}

void eng_smooth_close(eng_smooth_t *sm)
{
    if (sm->bufs)
        for (int i = 0; i < sm->nbufs; i++) free(sm->bufs[i]);
    free(sm->bufs);
    free(sm->view.layers);
    free(sm->s);
    memset(sm, 0, sizeof *sm);
}

/* An owned fp32 copy of t, registered in sm->bufs; t is re-pointed at it. */
static int smooth__own(eng_smooth_t *sm, eng_tensor_t *t, float **out, lrq_err_t *err)
{
    size_t n = eng_tensor_numel(t);
    float *b = malloc((n ? n : 1) * sizeof *b);
    if (!b) return lrq_errf(err, LRQ_ENOMEM, "smooth: out of memory for %s", t->name);
    int rc = eng_tensor_to_f32(t, b, err);
    if (rc) {
        free(b);
        return rc;
    }
    sm->bufs[sm->nbufs++] = b;
    t->data = b;
    t->dtype = ENG_F32;
    *out = b;
    return 0;
}

int eng_smooth_init(eng_smooth_t *sm, const eng_model_t *src, const float *amax, float alpha, int pow2,
                    lrq_err_t *err)
{
    const eng_config_t *c = &src->cfg;
    const int L = c->n_layers, D = c->dim;
    memset(sm, 0, sizeof *sm);
    sm->view = *src;
    sm->view.layers = malloc((size_t)L * sizeof *sm->view.layers);
    sm->s = malloc((size_t)L * 2 * D * sizeof *sm->s);
    sm->bufs = calloc((size_t)L * 7, sizeof *sm->bufs);
    if (!sm->view.layers || !sm->s || !sm->bufs) {
        eng_smooth_close(sm);
        return lrq_errf(err, LRQ_ENOMEM, "smooth: out of memory");
    }
    memcpy(sm->view.layers, src->layers, (size_t)L * sizeof *sm->view.layers);
    static const int groups[2][4] = {{ENG_Q, ENG_K, ENG_V, -1}, {ENG_GATE, ENG_UP, -1, -1}};
    for (int l = 0; l < L; l++) {
        eng_layer_tensors_t *lt = &sm->view.layers[l];
        for (int g = 0; g < 2; g++) {
            float *norm, *W[3];
            int m[3], nW = 0, rc;
            if ((rc = smooth__own(sm, g ? &lt->ffn_norm : &lt->attn_norm, &norm, err))) goto fail;
            for (int k = 0; groups[g][k] >= 0; k++, nW++) {
                eng_tensor_t *t = &lt->lin[groups[g][k]];
                if (t->cols != D) {
                    rc = lrq_errf(err, LRQ_EFORMAT, "smooth: %s has %lld input features, expected %d", t->name,
                                  (long long)t->cols, D);
                    goto fail;
                }
                if ((rc = smooth__own(sm, t, &W[nW], err))) goto fail;
                m[nW] = (int)t->rows;
            }
            float *s = sm->s + ((size_t)l * 2 + g) * D;
            eng_smooth_factors(amax + ((size_t)l * 2 + g) * D, (const float *const *)W, m, nW, D, alpha, pow2, s);
            /* rmsnorm(x) ⊙ (w ⊘ s) · (W diag(s))ᵀ = rmsnorm(x) ⊙ w · Wᵀ */
            for (int j = 0; j < D; j++) norm[j] /= s[j];
            for (int k = 0; k < nW; k++)
                for (int i = 0; i < m[k]; i++)
                    for (int j = 0; j < D; j++) W[k][(size_t)i * D + j] *= s[j];
            continue;
        fail:
            eng_smooth_close(sm);
            return rc;
        }
    }
    return 0;
}
