/* eng_forward.c — full-model forward over a (B,T) batch (layer-major), perplexity/KL
 * evaluation (protocol in eng_forward.h) and greedy generation.
 *
 * Shapes: B batch, T seq, D model dim, V vocab, L layers, N = B*T rows.
 * Weights are used in place when they are fp32 in the file and 4-byte aligned; otherwise
 * they are converted per layer into runner scratch (one layer's worth, reused), so a bf16
 * model is never held in fp32 at once. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "eng_forward.h"
#include "eng_kernels.h"
#include "eng_actq.h"

/* lm_head rows converted per sgemm when it is not fp32 in the file */
#define HEAD_CHUNK_FLOATS ((size_t)4 << 20)

struct eng_runner {
    const eng_model_t *m;
    eng_pool_t *pool;          /* borrowed */
    eng_mm_t *mm;              /* borrowed matmul backend, NULL = OpenBLAS fp32 */
    int B, T;
    eng_rope_tab_t rope;
    eng_block_ws_t *ws;
    float *x, *y;                  /* (B,T,D) residual stream, ping-pong */
    float *xn;                     /* (B,T,D) final norm output */
    const float *final_norm;       /* (D) */
    const float *lm_head;          /* (V,D) or NULL: convert by chunks into head_buf */
    float *head_buf;               /* (head_rows, D) */
    int head_rows;
    float *lin_buf[ENG_NLIN];      /* conversion scratch, NULL when unused */
    float *norm_buf[2];            /* attn_norm, ffn_norm scratch */
    float *final_buf;
    int lin_layer[ENG_NLIN], norm_layer[2]; /* layer whose weights the buffer holds, -1 */
    const float **over;            /* [L][ENG_NLIN] overrides */
    struct eng_actq_layer *aq;     /* [L] activation quantizers (borrowed), NULL = none */
    eng_linear_fn lin_fn;          /* per-layer linear source, NULL = the model's */
    void *lin_ctx;
    int fn_layer[ENG_NLIN];        /* layer whose lin_fn output lin_buf holds, -1 */
    eng_lowrank_fn lr_fn;          /* per-layer low-rank factors, NULL = none */
    void *lr_ctx;
    const eng_lowrank_t *lr_cur[ENG_NLIN]; /* lr_fn's answer for the layer being run */
    int release;                   /* drop each layer's file pages after use */
};

static int f32_view(const eng_tensor_t *t)
{
    return t->dtype == ENG_F32 && ((uintptr_t)t->data & 3) == 0;
}

static size_t dtype_size(eng_dtype_t d) { return d == ENG_F32 ? 4 : 2; }

void eng_runner_set_mm(eng_runner_t *r, eng_mm_t *mm)
{
    r->mm = mm;
    eng_block_ws_set_mm(r->ws, mm);
}

void eng_runner_free(eng_runner_t *r)
{
    if (!r) return;
    eng_rope_tab_close(&r->rope);
    eng_block_ws_free(r->ws);
    free(r->x);
    free(r->y);
    free(r->xn);
    free(r->head_buf);
    for (int i = 0; i < ENG_NLIN; i++) free(r->lin_buf[i]);
    free(r->norm_buf[0]);
    free(r->norm_buf[1]);
    free(r->final_buf);
    free(r->over);
    free(r);
}

int eng_runner_new(const eng_model_t *m, int B, int T, eng_pool_t *pool, eng_runner_t **out, lrq_err_t *err)
{
    const eng_config_t *c = &m->cfg;
    *out = NULL;
    if (B < 1 || T < 1)
        return lrq_errf(err, -EINVAL, "runner: batch %d and sequence length %d must be ≥ 1", B, T);
    if (c->n_kv_heads < 1 || c->n_heads % c->n_kv_heads || c->head_dim < 2 || c->head_dim % 2 ||
        c->dim < 1 || c->ffn_dim < 1 || c->vocab_size < 1 || c->n_layers < 1)
        return lrq_errf(err, LRQ_EFORMAT, "%s: unsupported shape (D %d, F %d, H %d, KVH %d, Dh %d, V %d, L %d)",
                        m->path, c->dim, c->ffn_dim, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size,
                        c->n_layers);
    eng_runner_t *r = calloc(1, sizeof *r);
    if (!r) return lrq_errf(err, LRQ_ENOMEM, "runner: out of memory");
    r->m = m;
    r->pool = pool;
    r->B = B;
    r->T = T;
    size_t nd = (size_t)B * T * c->dim, D = c->dim;
    int rc = eng_rope_tab_init(&r->rope, c, T);
    if (rc) goto nomem;
    r->ws = eng_block_ws_new(c, B, T, 0, pool);
    r->x = malloc(nd * sizeof(float));
    r->y = malloc(nd * sizeof(float));
    r->xn = malloc(nd * sizeof(float));
    r->over = calloc((size_t)c->n_layers * ENG_NLIN, sizeof *r->over);
    if (!r->ws || !r->x || !r->y || !r->xn || !r->over) goto nomem;
    for (int i = 0; i < ENG_NLIN; i++) r->lin_layer[i] = r->fn_layer[i] = -1;
    r->norm_layer[0] = r->norm_layer[1] = -1;
    /* scratch only for tensors that cannot be viewed in place */
    for (int l = 0; l < c->n_layers; l++) {
        const eng_layer_tensors_t *lt = &m->layers[l];
        for (int i = 0; i < ENG_NLIN; i++)
            if (!f32_view(&lt->lin[i]) && !r->lin_buf[i] &&
                !(r->lin_buf[i] = malloc(eng_tensor_numel(&lt->lin[i]) * sizeof(float))))
                goto nomem;
        if (!f32_view(&lt->attn_norm) && !r->norm_buf[0] && !(r->norm_buf[0] = malloc(D * sizeof(float))))
            goto nomem;
        if (!f32_view(&lt->ffn_norm) && !r->norm_buf[1] && !(r->norm_buf[1] = malloc(D * sizeof(float))))
            goto nomem;
    }
    if (f32_view(&m->final_norm)) r->final_norm = m->final_norm.data;
    else {
        if (!(r->final_buf = malloc(D * sizeof(float)))) goto nomem;
        if ((rc = eng_tensor_to_f32(&m->final_norm, r->final_buf, err))) {
            eng_runner_free(r);
            return rc;
        }
        r->final_norm = r->final_buf;
    }
    if (f32_view(&m->lm_head)) r->lm_head = m->lm_head.data;
    else {
        size_t rows = HEAD_CHUNK_FLOATS / D;
        r->head_rows = rows < 1 ? 1 : rows > (size_t)c->vocab_size ? c->vocab_size : (int)rows;
        if (!(r->head_buf = malloc((size_t)r->head_rows * D * sizeof(float)))) goto nomem;
    }
    *out = r;
    return 0;
nomem:
    eng_runner_free(r);
    return lrq_errf(err, LRQ_ENOMEM, "runner: out of memory for batch %d × %d tokens", B, T);
}

void eng_runner_set_linear(eng_runner_t *r, int l, int lin, const float *w)
{
    if (l < 0 || l >= r->m->cfg.n_layers || lin < 0 || lin >= ENG_NLIN) return;
    r->over[(size_t)l * ENG_NLIN + lin] = w;
}

void eng_runner_set_lowrank_fn(eng_runner_t *r, eng_lowrank_fn fn, void *ctx)
{
    r->lr_fn = fn;
    r->lr_ctx = ctx;
}

int eng_runner_set_linear_fn(eng_runner_t *r, eng_linear_fn fn, void *ctx, lrq_err_t *err)
{
    r->lin_fn = fn;
    r->lin_ctx = ctx;
    for (int i = 0; i < ENG_NLIN; i++) {
        r->fn_layer[i] = r->lin_layer[i] = -1; /* lin_buf now holds neither */
        const eng_tensor_t *t = &r->m->layers[0].lin[i];
        if (fn && !r->lin_buf[i] && !(r->lin_buf[i] = malloc(eng_tensor_numel(t) * sizeof(float))))
            return lrq_errf(err, LRQ_ENOMEM, "runner: out of memory for a layer's linears");
    }
    return 0;
}

void eng_runner_set_release(eng_runner_t *r, int on) { r->release = on; }

const eng_rope_tab_t *eng_runner_rope(const eng_runner_t *r) { return &r->rope; }

void eng_runner_set_actq(eng_runner_t *r, struct eng_actq_layer *aq) { r->aq = aq; }

/* fp32 view of t: in place, or converted into buf (cached by layer). */
static int view_or_convert(const eng_tensor_t *t, float *buf, int *cached, int l, const float **out,
                           lrq_err_t *err)
{
    if (f32_view(t)) {
        *out = t->data;
        return 0;
    }
    if (*cached != l) {
        *cached = -1;
        int rc = eng_tensor_to_f32(t, buf, err);
        if (rc) return rc;
        *cached = l;
    }
    *out = buf;
    return 0;
}

int eng_runner_layer(eng_runner_t *r, int l, eng_block_w_t *w, lrq_err_t *err)
{
    if (l < 0 || l >= r->m->cfg.n_layers) return lrq_errf(err, -EINVAL, "runner: no layer %d", l);
    const eng_layer_tensors_t *lt = &r->m->layers[l];
    int rc;
    w->aq = r->aq ? &r->aq[l] : NULL; /* activation fake-quant at the block's linear inputs and K/V */
    if ((rc = view_or_convert(&lt->attn_norm, r->norm_buf[0], &r->norm_layer[0], l, &w->attn_norm, err)) ||
        (rc = view_or_convert(&lt->ffn_norm, r->norm_buf[1], &r->norm_layer[1], l, &w->ffn_norm, err)))
        return rc;
    for (int i = 0; i < ENG_NLIN; i++) {
        const float *o = r->over[(size_t)l * ENG_NLIN + i];
        if (o) w->lin[i] = o;
        else if (r->lin_fn) {
            if (r->fn_layer[i] != l) {
                r->fn_layer[i] = -1;
                if ((rc = r->lin_fn(r->lin_ctx, l, i, r->lin_buf[i], err))) return rc;
                r->fn_layer[i] = l;
            }
            w->lin[i] = r->lin_buf[i];
        } else if ((rc = view_or_convert(&lt->lin[i], r->lin_buf[i], &r->lin_layer[i], l, &w->lin[i], err)))
            return rc;
    }
    return 0;
}

int eng_runner_embed(eng_runner_t *r, const int32_t *tokens, int B, int T, float *x, lrq_err_t *err)
{
    const eng_tensor_t *e = &r->m->embed;
    const int V = r->m->cfg.vocab_size, D = r->m->cfg.dim;
    for (size_t i = 0; i < (size_t)B * T; i++) {
        int32_t id = tokens[i];
        if (id < 0 || id >= V || id >= e->rows)
            return lrq_errf(err, LRQ_EFORMAT, "token id %d at position %zu is outside the vocabulary [0, %d)",
                            (int)id, i, V);
        if (f32_view(e)) memcpy(x + i * D, (const float *)e->data + (size_t)id * D, D * sizeof(float));
        else {
            eng_tensor_t row = *e; /* one row, converted (and NaN-checked) on its own */
            row.data = (const uint8_t *)e->data + (size_t)id * D * dtype_size(e->dtype);
            row.rows = 1;
            int rc = eng_tensor_to_f32(&row, x + i * D, err);
            if (rc) return rc;
        }
    }
    return 0;
}

int eng_runner_head(eng_runner_t *r, const float *h, int B, int T, float *logits, lrq_err_t *err)
{
    const eng_config_t *c = &r->m->cfg;
    const int N = B * T, D = c->dim, V = c->vocab_size;
    if (B < 1 || T < 1 || B > r->B || T > r->T)
        return lrq_errf(err, -EINVAL, "runner: batch %d × %d exceeds %d × %d", B, T, r->B, r->T);
    eng_rmsnorm_forward(r->xn, NULL, h, r->final_norm, N, D, c->norm_eps);
    /* logits (N,V) = xn (N,D) · lm_headᵀ */
    if (r->lm_head) {
        eng_mm_gemm(r->mm, r->pool, 0, 1, N, V, D, 1.0f, r->xn, D, r->lm_head, D, 0.0f, logits, V);
        return 0;
    }
    const eng_tensor_t *W = &r->m->lm_head;
    for (int v0 = 0; v0 < V; v0 += r->head_rows) {
        int nv = V - v0 < r->head_rows ? V - v0 : r->head_rows;
        eng_tensor_t part = *W;
        part.data = (const uint8_t *)W->data + (size_t)v0 * D * dtype_size(W->dtype);
        part.rows = nv;
        int rc = eng_tensor_to_f32(&part, r->head_buf, err);
        if (rc) return rc;
        eng_mm_gemm(r->mm, r->pool, 0, 1, N, nv, D, 1.0f, r->xn, D, r->head_buf, D, 0.0f, logits + v0, V);
    }
    return 0;
}

/* tokens (B,T) → *h (B,T,D) after the last block (points into the runner). */
static int runner_hidden(eng_runner_t *r, const int32_t *tokens, int B, int T, const float **h, lrq_err_t *err)
{
    const eng_config_t *c = &r->m->cfg;
    if (B < 1 || T < 1 || B > r->B || T > r->T)
        return lrq_errf(err, -EINVAL, "runner: batch %d × %d exceeds %d × %d", B, T, r->B, r->T);
    int rc = eng_runner_embed(r, tokens, B, T, r->x, err);
    if (rc) return rc;
    float *x = r->x, *y = r->y;
    for (int l = 0; l < c->n_layers; l++) {
        eng_block_w_t w;
        if ((rc = eng_runner_layer(r, l, &w, err))) return rc;
        const eng_lowrank_t *const *lr = NULL;
        if (r->lr_fn) {
            if ((rc = r->lr_fn(r->lr_ctx, l, r->lr_cur, err))) return rc;
            for (int i = 0; i < ENG_NLIN; i++)
                if (r->lr_cur[i] && !r->lr_cur[i]->k) r->lr_cur[i] = NULL;
            lr = r->lr_cur;
        }
        eng_block_ws_set_lowrank(r->ws, lr);
        eng_block_forward(c, &w, &r->rope, x, y, r->ws, B, T);
        if (r->release) eng_model_release_layer(r->m, l);
        float *t = x;
        x = y;
        y = t;
    }
    *h = x;
    return 0;
}

int eng_runner_logits(eng_runner_t *r, const int32_t *tokens, int B, int T, float *logits, lrq_err_t *err)
{
    const float *h;
    int rc = runner_hidden(r, tokens, B, T, &h, err);
    return rc ? rc : eng_runner_head(r, h, B, T, logits, err);
}

/* ------------------------------------------------------------------------------------
 * Evaluation */

/* log Σ exp(row); e (V) receives exp(row − max); *sum = Σ e. */
static double log_sum_exp(const float *row, float *e, int V, double *sum)
{
    float m = row[0];
    for (int j = 1; j < V; j++) m = row[j] > m ? row[j] : m;
    for (int j = 0; j < V; j++) e[j] = eng__expf(row[j] - m);
    double s = 0.0;
    for (int j = 0; j < V; j++) s += e[j];
    *sum = s;
    return m + log(s);
}

static int argmax(const float *row, int V)
{
    int a = 0;
    for (int j = 1; j < V; j++)
        if (row[j] > row[a]) a = j;
    return a;
}

int eng_eval(eng_runner_t *fp, eng_runner_t *q, const int32_t *ids, size_t n, int T, int max_windows,
             eng_eval_result_t *res, eng_progress_fn progress, void *ctx, lrq_err_t *err)
{
    memset(res, 0, sizeof *res);
    const int V = fp->m->cfg.vocab_size;
    if (q && q->m->cfg.vocab_size != V)
        return lrq_errf(err, -EINVAL, "eval: vocabularies differ (%d vs %d)", V, q->m->cfg.vocab_size);
    if (T < 2 || T > fp->T || (q && T > q->T))
        return lrq_errf(err, -EINVAL, "eval: sequence length %d outside [2, %d]", T, fp->T);
    size_t nw = n / (size_t)T;
    if (max_windows > 0 && nw > (size_t)max_windows) nw = (size_t)max_windows;
    if (nw == 0)
        return lrq_errf(err, LRQ_EFORMAT, "eval: %zu tokens are fewer than one window of %d", n, T);
    if (nw > INT32_MAX) nw = INT32_MAX;
    int Bb = fp->B;
    if (q && q->B < Bb) Bb = q->B;
    float *lf = malloc((size_t)Bb * T * V * sizeof(float));
    float *lq = q ? malloc((size_t)Bb * T * V * sizeof(float)) : NULL;
    float *ef = malloc((size_t)V * sizeof(float)), *eq = malloc((size_t)V * sizeof(float));
    int rc = 0;
    if (!lf || !ef || !eq || (q && !lq)) {
        rc = lrq_errf(err, LRQ_ENOMEM, "eval: out of memory for %d × %d logits", Bb, T);
        goto out;
    }
    double nll = 0, nll_q = 0, kl = 0;
    long count = 0, agree = 0;
    for (size_t w0 = 0; w0 < nw; w0 += Bb) {
        int nb = nw - w0 < (size_t)Bb ? (int)(nw - w0) : Bb;
        const int32_t *tok = ids + w0 * T; /* windows are consecutive: (nb, T) */
        if ((rc = eng_runner_logits(fp, tok, nb, T, lf, err))) goto out;
        if (q && (rc = eng_runner_logits(q, tok, nb, T, lq, err))) goto out;
        for (int b = 0; b < nb; b++)
            for (int t = 0; t + 1 < T; t++) {
                size_t row = (size_t)b * T + t;
                int target = tok[row + 1];
                const float *rf = lf + row * V;
                double sf, lse_f = log_sum_exp(rf, ef, V, &sf);
                nll += lse_f - rf[target];
                if (q) {
                    const float *rq = lq + row * V;
                    double sq, lse_q = log_sum_exp(rq, eq, V, &sq);
                    nll_q += lse_q - rq[target];
                    /* KL(P‖Q) = Σ p (log p − log q) = Σ p (rf − rq) − lse_f + lse_q */
                    double d = 0;
                    for (int j = 0; j < V; j++) d += (double)ef[j] * ((double)rf[j] - rq[j]);
                    kl += d / sf - lse_f + lse_q;
                    agree += argmax(rf, V) == argmax(rq, V);
                }
                count++;
            }
        if (progress) progress(ctx, (int)(w0 + nb), (int)nw);
    }
    res->tokens = count;
    res->windows = (int)nw;
    res->perplexity = exp(nll / count);
    if (q) {
        res->q_perplexity = exp(nll_q / count);
        res->kl_divergence = kl / count;
        res->top1_agreement = (double)agree / count;
    }
out:
    free(lf);
    free(lq);
    free(ef);
    free(eq);
    return rc;
}

/* ------------------------------------------------------------------------------------
 * Greedy generation: B = 1, the prefix is recomputed each step (no KV cache: this is a
 * sanity check, not a server). */

int eng_generate(eng_runner_t *r, const eng_tok_t *tok, int steps, eng_emit_fn emit, void *ctx, lrq_err_t *err)
{
    const int V = r->m->cfg.vocab_size, bos = eng_tok_bos(tok), eos = eng_tok_eos(tok);
    if (steps < 0 || steps > r->T)
        return lrq_errf(err, -EINVAL, "generate: %d steps exceed the runner's sequence length %d", steps, r->T);
    int32_t *tokens = malloc(((size_t)steps + 1) * sizeof *tokens);
    float *logits = malloc((size_t)V * sizeof *logits);
    int rc = 0;
    if (!tokens || !logits) {
        rc = lrq_errf(err, LRQ_ENOMEM, "generate: out of memory");
        goto out;
    }
    tokens[0] = bos;
    for (int pos = 0; pos < steps; pos++) {
        const float *h;
        if ((rc = runner_hidden(r, tokens, 1, pos + 1, &h, err)) ||
            (rc = eng_runner_head(r, h + (size_t)pos * r->m->cfg.dim, 1, 1, logits, err)))
            goto out;
        int next = argmax(logits, V);
        if (next == bos || next == eos) break;
        if (next >= eng_tok_vocab_size(tok)) {
            rc = lrq_errf(err, LRQ_EFORMAT, "generate: token %d is outside the tokenizer's vocabulary (%d)", next,
                          eng_tok_vocab_size(tok));
            goto out;
        }
        char buf[8];
        emit(ctx, eng_tok_decode(tok, tokens[pos], next, buf));
        tokens[pos + 1] = next;
    }
out:
    free(tokens);
    free(logits);
    return rc;
}
