/* eng_mm.c — matmul backends: OpenBLAS and oneDNN, fp32 and bf16 (see eng_mm.h).
 *
 * A whole product (eng_mm_gemm) is cut into the same slabs as eng_pool_sgemm; each slab, and each
 * in-task product (eng_mm_gemm1), is one single-threaded call on the slot of the thread that runs
 * it. oneDNN primitives are cached per slot, keyed by everything the primitive depends on
 * (transposes, sizes, leading dimensions, alpha, beta, data type): the block's products have a
 * few dozen distinct keys, so after the first iteration nothing is created. */
#include "config.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif
#ifdef HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#endif
#include "eng_mm.h"

const char *const eng_mm_backend_name[] = {"openblas", "onednn", NULL};
const char *const eng_mm_prec_name[] = {"fp32", "bf16", NULL};

enum { MM_CACHE = 64 }; /* primitives per slot; round-robin eviction beyond that */

#ifdef HAVE_DNNL
typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc, bf16;
    float alpha, beta;
} mm_key_t;

typedef struct {
    mm_key_t key;
    dnnl_primitive_t prim;         /* NULL: oneDNN refused this key (remembered, not retried) */
    dnnl_memory_t src, wei, dst, pad;
    void *padbuf;
} mm_entry_t;
#endif

typedef struct {
    float *a, *b;                  /* bf16 scratch of eng_mm_gemm1 (and of native-bf16 fallbacks) */
    size_t cap_a, cap_b;           /* floats */
    long products, execs, fallbacks, prims;
#ifdef HAVE_DNNL
    dnnl_stream_t stream;
    mm_entry_t ent[MM_CACHE];
    int nent, evict;
#endif
    char pad_[64];                 /* keep slots' counters off each other's cache lines */
} mm_slot_t;

struct eng_mm {
    eng_mm_backend_t backend;
    eng_mm_prec_t prec;
    int native;                    /* bf16 through oneDNN's bf16 kernels */
    int nslots;
    mm_slot_t *slot;
    float *sa, *sb;                /* eng_mm_gemm's rounded operands (shared by its slabs) */
    size_t cap_sa, cap_sb;
    int err;                       /* sticky, set once */
    char errmsg[160];
    char note[320];
#ifdef HAVE_DNNL
    dnnl_engine_t eng;
#endif
};

/* ---------------------------------------------------------------------------------------------
 * bf16 rounding */

/* Branch-free form of eng_f32_to_bf16 (same results, tested against the bit reference), so that it
 * vectorizes; memcpy for the bit casts (no type punning through pointers). */
__attribute__((optimize("vect-cost-model=dynamic")))
void eng_bf16_round_mat(float *dst, int ldd, const float *src, int lds, int rows, int cols)
{
    for (int i = 0; i < rows; i++) {
        const float *s = src + (size_t)i * lds;
        float *d = dst + (size_t)i * ldd;
        for (int j = 0; j < cols; j++) {
            uint32_t u;
            memcpy(&u, &s[j], 4);
            uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
            r = (u & 0x7fffffffu) > 0x7f800000u ? (u | 0x00400000u) & 0xffff0000u : r;
            memcpy(&d[j], &r, 4);
        }
    }
}

/* rows of src into packed bf16 bit patterns (native path) */
__attribute__((optimize("vect-cost-model=dynamic")))
static void mm__bits_mat(uint16_t *restrict dst, const float *restrict src, int lds, int rows, int cols)
{
    for (int i = 0; i < rows; i++) {
        const float *s = src + (size_t)i * lds;
        uint16_t *d = dst + (size_t)i * cols;
        for (int j = 0; j < cols; j++) {
            uint32_t u;
            memcpy(&u, &s[j], 4);
            uint32_t r = u + 0x7fffu + ((u >> 16) & 1u);
            d[j] = (uint16_t)(((u & 0x7fffffffu) > 0x7f800000u ? u | 0x00400000u : r) >> 16);
        }
    }
}

static void mm__fail(eng_mm_t *mm, const char *what, size_t bytes)
{
    int zero = 0;
    if (__atomic_compare_exchange_n(&mm->err, &zero, LRQ_ENOMEM, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        snprintf(mm->errmsg, sizeof mm->errmsg, "matmul: out of memory for %s (%zu MiB)", what, bytes >> 20);
}

/* Grow *buf to hold n floats; 0 on success. */
static int mm__grow(float **buf, size_t *cap, size_t n)
{
    if (n <= *cap) return 0;
    float *p = NULL;
    if (posix_memalign((void **)&p, 64, n * sizeof(float))) return -1;
    free(*buf);
    *buf = p;
    *cap = n;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * oneDNN */

#ifdef HAVE_DNNL
/* The pool does the threading: oneDNN (OpenMP build) runs one thread per call. The OpenMP
 * thread-count ICV belongs to the calling thread (OpenMP 5.1, 2.4: nthreads-var has data
 * environment scope), so this changes nothing for other threads. */
static void mm__omp1(void)
{
    if (omp_get_max_threads() != 1) omp_set_num_threads(1);
}

static void mm__entry_free(mm_entry_t *e)
{
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->src) dnnl_memory_destroy(e->src);
    if (e->wei) dnnl_memory_destroy(e->wei);
    if (e->dst) dnnl_memory_destroy(e->dst);
    if (e->pad) dnnl_memory_destroy(e->pad);
    free(e->padbuf);
    memset(e, 0, sizeof *e);
}

/* Build the primitive for key k into e (e->prim stays NULL if oneDNN refuses). */
static dnnl_status_t mm__create(dnnl_engine_t eng, const mm_key_t *k, mm_entry_t *e)
{
    memset(e, 0, sizeof *e);
    e->key = *k;
    dnnl_data_type_t dt = k->bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t a, b, c;
    /* op(A) (M,K): row-major A, or Aᵀ stored (K,M) with row stride lda */
    dnnl_dims_t da = {k->M, k->K}, sa = {k->ta ? 1 : k->lda, k->ta ? k->lda : 1};
    dnnl_dims_t db = {k->K, k->N}, sb = {k->tb ? 1 : k->ldb, k->tb ? k->ldb : 1};
    dnnl_dims_t dc = {k->M, k->N}, sc = {k->ldc, 1};
    dnnl_status_t st;
    if ((st = dnnl_memory_desc_init_by_strides(&a, 2, da, dt, sa)) ||
        (st = dnnl_memory_desc_init_by_strides(&b, 2, db, dt, sb)) ||
        (st = dnnl_memory_desc_init_by_strides(&c, 2, dc, dnnl_f32, sc)))
        return st;
    dnnl_matmul_desc_t md;
    if ((st = dnnl_matmul_desc_init(&md, &a, &b, NULL, &c))) return st;
    dnnl_primitive_attr_t attr;
    if ((st = dnnl_primitive_attr_create(&attr))) return st;
    st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (!st && k->alpha != 1.0f) st = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &k->alpha);
    if (!st && k->beta != 0.0f) {
        dnnl_post_ops_t po;
        if (!(st = dnnl_post_ops_create(&po))) {
            st = dnnl_post_ops_append_sum(po, k->beta);
            if (!st) st = dnnl_primitive_attr_set_post_ops(attr, po);
            dnnl_post_ops_destroy(po);
        }
    }
    dnnl_primitive_desc_t pd = NULL;
    if (!st) st = dnnl_primitive_desc_create(&pd, &md, attr, eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (st) return st;
    const dnnl_memory_desc_t *pmd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t padsz = pmd ? dnnl_memory_desc_get_size(pmd) : 0;
    if ((st = dnnl_primitive_create(&e->prim, pd))) goto out;
    if ((st = dnnl_memory_create(&e->src, &a, eng, DNNL_MEMORY_NONE)) ||
        (st = dnnl_memory_create(&e->wei, &b, eng, DNNL_MEMORY_NONE)) ||
        (st = dnnl_memory_create(&e->dst, &c, eng, DNNL_MEMORY_NONE)))
        goto out;
    if (padsz) {
        if (posix_memalign(&e->padbuf, 64, (padsz + 63) & ~(size_t)63)) { st = dnnl_out_of_memory; goto out; }
        if ((st = dnnl_memory_create(&e->pad, pmd, eng, e->padbuf))) goto out;
    }
out:
    dnnl_primitive_desc_destroy(pd);
    if (st) {
        mm__entry_free(e);
        e->key = *k;
    }
    return st;
}

static mm_entry_t *mm__lookup(eng_mm_t *mm, mm_slot_t *s, const mm_key_t *k)
{
    for (int i = 0; i < s->nent; i++)
        if (!memcmp(&s->ent[i].key, k, sizeof *k)) return &s->ent[i];
    mm_entry_t *e;
    if (s->nent < MM_CACHE) e = &s->ent[s->nent++];
    else {
        e = &s->ent[s->evict];
        s->evict = (s->evict + 1) % MM_CACHE;
        mm__entry_free(e);
    }
    mm__omp1();
    if (mm__create(mm->eng, k, e) == dnnl_success) s->prims++;
    return e;
}

/* 0 when oneDNN ran the product. */
static int mm__dnnl(eng_mm_t *mm, mm_slot_t *s, int ta, int tb, int M, int N, int K, float alpha, const void *A,
                    int lda, const void *B, int ldb, float beta, float *C, int ldc, int bf16)
{
    mm_key_t k;
    memset(&k, 0, sizeof k); /* padding too: keys are compared with memcmp */
    k.ta = ta; k.tb = tb; k.M = M; k.N = N; k.K = K; k.lda = lda; k.ldb = ldb; k.ldc = ldc; k.bf16 = bf16;
    k.alpha = alpha; k.beta = beta;
    mm_entry_t *e = mm__lookup(mm, s, &k);
    if (!e->prim) return -1;
    mm__omp1();
    if (dnnl_memory_set_data_handle_v2(e->src, (void *)A, s->stream) ||
        dnnl_memory_set_data_handle_v2(e->wei, (void *)B, s->stream) ||
        dnnl_memory_set_data_handle_v2(e->dst, C, s->stream))
        return -1;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, e->wei}, {DNNL_ARG_DST, e->dst},
                               {DNNL_ARG_SCRATCHPAD, e->pad}};
    if (dnnl_primitive_execute(e->prim, s->stream, e->pad ? 4 : 3, args)) return -1;
    if (dnnl_stream_wait(s->stream)) return -1;
    s->execs++;
    return 0;
}
#endif

/* ---------------------------------------------------------------------------------------------
 * one single-threaded product on a slot. bits: A and B are packed bf16 bit patterns (native
 * bf16, ld = their column counts), else fp32. */

static void mm__one(eng_mm_t *mm, int slot, int ta, int tb, int M, int N, int K, float alpha, const void *A, int lda,
                    const void *B, int ldb, float beta, float *C, int ldc, int bits)
{
    mm_slot_t *s = &mm->slot[slot];
#ifdef HAVE_DNNL
    if (mm->backend == ENG_MM_ONEDNN && M > 0 && N > 0 && K > 0) {
        if (!mm__dnnl(mm, s, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bits)) return;
        s->fallbacks++;
    }
#endif
    if (bits) { /* a native-bf16 product oneDNN refused: widen the bits in this slot's scratch */
        int ra = ta ? K : M, ca = ta ? M : K, rb = tb ? N : K, cb = tb ? K : N;
        size_t na = (size_t)ra * ca, nb = (size_t)rb * cb;
        if (mm__grow(&s->a, &s->cap_a, na) || mm__grow(&s->b, &s->cap_b, nb)) {
            mm__fail(mm, "bf16 scratch", (na + nb) * 4);
            return; /* no way to compute it: the sticky error fails the caller */
        }
        for (size_t i = 0; i < na; i++) s->a[i] = eng_bf16_to_f32(((const uint16_t *)A)[i]);
        for (size_t i = 0; i < nb; i++) s->b[i] = eng_bf16_to_f32(((const uint16_t *)B)[i]);
        A = s->a;
        B = s->b;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
                B, ldb, beta, C, ldc);
}

/* ---------------------------------------------------------------------------------------------
 * public products */

typedef struct {
    eng_mm_t *mm;
    int ta, tb, M, N, K, lda, ldb, ldc, parts, by_rows, bits;
    float alpha, beta;
    const void *A, *B;
    float *C;
} mm_job_t;

/* Same partition as eng_pool_sgemm (eng_pool.c): slabs depend on the shape only. */
static void mm__slab(void *ctx, int task, int thread)
{
    const mm_job_t *j = ctx;
    int len = j->by_rows ? j->M : j->N;
    int i0 = (int)((long)len * task / j->parts), i1 = (int)((long)len * (task + 1) / j->parts);
    if (i1 <= i0) return;
    size_t es = j->bits ? 2 : 4;
    if (j->by_rows) {
        size_t off = j->ta ? (size_t)i0 : (size_t)i0 * j->lda;
        mm__one(j->mm, thread, j->ta, j->tb, i1 - i0, j->N, j->K, j->alpha, (const char *)j->A + off * es, j->lda,
                j->B, j->ldb, j->beta, j->C + (size_t)i0 * j->ldc, j->ldc, j->bits);
    } else {
        size_t off = j->tb ? (size_t)i0 * j->ldb : (size_t)i0;
        mm__one(j->mm, thread, j->ta, j->tb, j->M, i1 - i0, j->K, j->alpha, j->A, j->lda,
                (const char *)j->B + off * es, j->ldb, j->beta, j->C + i0, j->ldc, j->bits);
    }
}

typedef struct {
    void *dst;
    const float *src;
    int lds, cols, bits;
} mm_round_t;

static void mm__round_rows(void *ctx, int part, long r0, long r1)
{
    const mm_round_t *r = ctx;
    (void)part;
    if (r->bits)
        mm__bits_mat((uint16_t *)r->dst + (size_t)r0 * r->cols, r->src + (size_t)r0 * r->lds, r->lds, (int)(r1 - r0),
                     r->cols);
    else
        eng_bf16_round_mat((float *)r->dst + (size_t)r0 * r->cols, r->cols, r->src + (size_t)r0 * r->lds, r->lds,
                           (int)(r1 - r0), r->cols);
}

/* Round the stored (rows,cols) ld `ld` operand into buf (packed, ld = cols); 0 on success. */
static int mm__round_into(eng_mm_t *mm, eng_pool_t *pool, float **buf, size_t *cap, const float *src, int ld, int rows,
                          int cols)
{
    size_t n = (size_t)rows * cols;
    if (mm__grow(buf, cap, mm->native ? (n + 1) / 2 : n)) {
        mm__fail(mm, "bf16 copies of the matmul inputs", n * 4);
        return -1;
    }
    mm_round_t r = {*buf, src, ld, cols, mm->native};
    int parts = n >= (1 << 20) ? eng_pool_threads(pool) : 1; /* memory-bound: a pool run costs more below 1M */
    eng_pool_range(pool, rows, parts, mm__round_rows, &r);
    return 0;
}

void eng_mm_gemm(eng_mm_t *mm, eng_pool_t *pool, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (!mm) {
        eng_pool_sgemm(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (M <= 0 || N <= 0) return;
    ta = ta != 0;
    tb = tb != 0;
    if (eng_pool_threads(pool) > mm->nslots) pool = NULL; /* created for fewer threads: run serially */
    mm->slot[0].products++;
    const void *a = A, *b = B;
    int bits = 0;
    if (mm->prec == ENG_MM_BF16 && K > 0) {
        int ra = ta ? K : M, ca = ta ? M : K, rb = tb ? N : K, cb = tb ? K : N;
        if (!mm__round_into(mm, pool, &mm->sa, &mm->cap_sa, A, lda, ra, ca) &&
            !mm__round_into(mm, pool, &mm->sb, &mm->cap_sb, B, ldb, rb, cb)) {
            a = mm->sa;
            b = mm->sb;
            lda = ca;
            ldb = cb;
            bits = mm->native;
        } /* else: fp32 this once, and eng_mm_status reports the failure */
    }
    int by_rows = M >= N, len = by_rows ? M : N;
    int parts = len / ENG_POOL_GEMM_SLAB;
    if (parts > ENG_POOL_GEMM_PARTS) parts = ENG_POOL_GEMM_PARTS;
    if (parts < 2 || (double)M * N * K < ENG_POOL_GEMM_MIN) parts = 1;
    mm_job_t j = {mm, ta, tb, M, N, K, lda, ldb, ldc, parts, by_rows, bits, alpha, beta, a, b, C};
    if (parts == 1) mm__slab(&j, 0, 0);
    else eng_pool_run(pool, parts, mm__slab, &j);
}

void eng_mm_gemm1(eng_mm_t *mm, int thread, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc)
{
    if (!mm || thread < 0 || thread >= mm->nslots) {
        if (mm && thread >= mm->nslots) mm__fail(mm, "a thread index beyond the backend's slots", 0);
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                    lda, B, ldb, beta, C, ldc);
        return;
    }
    if (M <= 0 || N <= 0) return;
    ta = ta != 0;
    tb = tb != 0;
    mm_slot_t *s = &mm->slot[thread];
    s->products++;
    const float *a = A, *b = B;
    if (mm->prec == ENG_MM_BF16 && K > 0) {
        int ra = ta ? K : M, ca = ta ? M : K, rb = tb ? N : K, cb = tb ? K : N;
        size_t na = (size_t)ra * ca, nb = (size_t)rb * cb; /* floats: room for either form */
        if (mm__grow(&s->a, &s->cap_a, na) || mm__grow(&s->b, &s->cap_b, nb)) {
            mm__fail(mm, "bf16 copies of the matmul inputs", (na + nb) * 4); /* fp32 this once */
        } else {
#ifdef HAVE_DNNL
            if (mm->native) {
                mm__bits_mat((uint16_t *)s->a, A, lda, ra, ca);
                mm__bits_mat((uint16_t *)s->b, B, ldb, rb, cb);
                if (!mm__dnnl(mm, s, ta, tb, M, N, K, alpha, s->a, ca, s->b, cb, beta, C, ldc, 1)) return;
                s->fallbacks++; /* refused: the emulation below, same numerics */
            }
#endif
            eng_bf16_round_mat(s->a, ca, A, lda, ra, ca);
            eng_bf16_round_mat(s->b, cb, B, ldb, rb, cb);
            a = s->a;
            b = s->b;
            lda = ca;
            ldb = cb;
        }
    }
    mm__one(mm, thread, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, C, ldc, 0);
}

/* ---------------------------------------------------------------------------------------------
 * object */

static void mm__cpu_bf16(int *avx512bf16, int *amx)
{
    *avx512bf16 = *amx = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    unsigned a, b, c, d;
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) *avx512bf16 = (a >> 5) & 1; /* CPUID.(7,1):EAX[5] */
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) *amx = (d >> 22) & 1;      /* CPUID.(7,0):EDX[22] AMX-BF16 */
#endif
}

void eng_mm_free(eng_mm_t *mm)
{
    if (!mm) return;
    for (int i = 0; mm->slot && i < mm->nslots; i++) {
        mm_slot_t *s = &mm->slot[i];
#ifdef HAVE_DNNL
        for (int e = 0; e < s->nent; e++) mm__entry_free(&s->ent[e]);
        if (s->stream) dnnl_stream_destroy(s->stream);
#endif
        free(s->a);
        free(s->b);
    }
#ifdef HAVE_DNNL
    if (mm->eng) dnnl_engine_destroy(mm->eng);
#endif
    free(mm->slot);
    free(mm->sa);
    free(mm->sb);
    free(mm);
}

int eng_mm_new(eng_mm_backend_t backend, eng_mm_prec_t prec, int nthreads, eng_mm_t **out, lrq_err_t *err)
{
    *out = NULL;
    if (nthreads < 1) nthreads = 1;
    if ((backend != ENG_MM_OPENBLAS && backend != ENG_MM_ONEDNN) || (prec != ENG_MM_FP32 && prec != ENG_MM_BF16))
        return lrq_err_field(err, "compute", "unknown backend %d or precision %d", (int)backend, (int)prec);
#ifndef HAVE_DNNL
    if (backend == ENG_MM_ONEDNN)
        return lrq_err_field(err, "compute.backend",
                             "onednn is not available: lrq was built without oneDNN (install libdnnl-dev, reconfigure)");
#endif
    eng_mm_t *mm = calloc(1, sizeof *mm);
    if (!mm || !(mm->slot = calloc((size_t)nthreads, sizeof *mm->slot))) {
        free(mm);
        return lrq_errf(err, LRQ_ENOMEM, "matmul backend: out of memory");
    }
    mm->backend = backend;
    mm->prec = prec;
    mm->nslots = nthreads;
    int cpu_bf16, cpu_amx;
    mm__cpu_bf16(&cpu_bf16, &cpu_amx);
#ifdef HAVE_DNNL
    if (backend == ENG_MM_ONEDNN) {
        if (dnnl_engine_create(&mm->eng, dnnl_cpu, 0)) {
            eng_mm_free(mm);
            return lrq_err_field(err, "compute.backend", "onednn: cannot create a CPU engine");
        }
        for (int i = 0; i < nthreads; i++)
            if (dnnl_stream_create(&mm->slot[i].stream, mm->eng, dnnl_stream_default_flags)) {
                eng_mm_free(mm);
                return lrq_err_field(err, "compute.backend", "onednn: cannot create a stream");
            }
        if (prec == ENG_MM_BF16) { /* does this CPU have a bf16 matmul? ask for one */
            mm_key_t k = {0, 1, 64, 64, 64, 64, 64, 64, 1, 1.0f, 0.0f};
            mm_entry_t e;
            mm__omp1();
            dnnl_status_t st = mm__create(mm->eng, &k, &e);
            mm->native = st == dnnl_success;
            mm__entry_free(&e);
            if (!mm->native)
                snprintf(mm->note, sizeof mm->note,
                         "compute: bf16 is emulated (inputs rounded to bf16, fp32 GEMM; same numerics, no speed-up): "
                         "oneDNN %d.%d has no bf16 matmul for this CPU (status %d; avx512_bf16 %s, amx_bf16 %s)",
                         dnnl_version()->major, dnnl_version()->minor, (int)st, cpu_bf16 ? "yes" : "no",
                         cpu_amx ? "yes" : "no");
        }
    }
#endif
    if (backend == ENG_MM_OPENBLAS && prec == ENG_MM_BF16)
        snprintf(mm->note, sizeof mm->note,
                 "compute: bf16 on the openblas backend is emulated (inputs rounded to bf16, fp32 sgemm; same numerics, "
                 "no speed-up); native bf16 needs backend onednn on a CPU with avx512_bf16 or AMX (this one: %s, %s)",
                 cpu_bf16 ? "avx512_bf16" : "no avx512_bf16", cpu_amx ? "amx_bf16" : "no amx_bf16");
    *out = mm;
    return 0;
}

eng_mm_backend_t eng_mm_backend(const eng_mm_t *mm) { return mm ? mm->backend : ENG_MM_OPENBLAS; }
eng_mm_prec_t eng_mm_prec(const eng_mm_t *mm) { return mm ? mm->prec : ENG_MM_FP32; }
int eng_mm_bf16_native(const eng_mm_t *mm) { return mm && mm->prec == ENG_MM_BF16 && mm->native; }
const char *eng_mm_note(const eng_mm_t *mm) { return mm && mm->note[0] ? mm->note : NULL; }

int eng_mm_status(const eng_mm_t *mm, lrq_err_t *err)
{
    int e = mm ? __atomic_load_n(&mm->err, __ATOMIC_ACQUIRE) : 0;
    return e ? lrq_errf(err, e, "%s", mm->errmsg) : 0;
}

void eng_mm_stats(const eng_mm_t *mm, eng_mm_stats_t *st)
{
    memset(st, 0, sizeof *st);
    for (int i = 0; mm && i < mm->nslots; i++) {
        st->products += mm->slot[i].products;
        st->onednn_execs += mm->slot[i].execs;
        st->fallbacks += mm->slot[i].fallbacks;
        st->primitives += mm->slot[i].prims;
    }
}
