/* test_qstore.c — the block store (worker/wk_qstore.c; docs/memory.md, Block files) on a synthetic
 * 2-layer job of stories260K's shapes (q 64×64, k/v 32×64, o 64×64, gate/up 172×64, down 64×172),
 * W4 g32, L²QER rank 4 with fp16 factors (no model file: the store only needs the shapes).
 *
 * Round trips are compared bit for bit with what was written (the store copies bytes, so any
 * difference is a bug); refusals are compared with the reason they must name. Files are crafted
 * with the checkpoint writer itself (wk_ckpt.h), so a refusal is the store's and not a checksum's
 * unless the test flips a byte on purpose. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wk_qstore.h"
#include "wk_ckpt.h"
#include "eng_half.h"

#define CHECK(cond, ...) do { if (!(cond)) cr_assert_fail(__VA_ARGS__); } while (0)

/* The section tags of docs/memory.md, Block files (written here independently of wk_qstore.c). */
#define T_BHDR WK_TAG('B', 'H', 'D', 'R')
#define T_QC(i) WK_TAG('Q', 'C', '0' + (i), 0)
#define T_QS(i) WK_TAG('Q', 'S', '0' + (i), 0)
#define T_QZ(i) WK_TAG('Q', 'Z', '0' + (i), 0)
#define T_BFAC WK_TAG('B', 'F', 'A', 'C')
#define T_FL(i) WK_TAG('F', 'L', '0' + (i), 0)
#define T_FR(i) WK_TAG('F', 'R', '0' + (i), 0)
#define T_BMET WK_TAG('B', 'M', 'E', 'T')

enum { NL = 2, RANK = 4 };
static const int shp[ENG_NLIN][2] = {{64, 64}, {32, 64}, {32, 64}, {64, 64}, {172, 64}, {172, 64}, {64, 172}};

static char g_dir[256];
static eng_model_t g_model;
static eng_layer_tensors_t g_layers[NL];
static wk_job_t g_job;

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 11);
}

/* A job of method `method` (lqer or rtn) with block b's linears (and factors) filled at random. */
static void job_setup(int method)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/lrq-qstore-XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir));
    memset(&g_model, 0, sizeof g_model);
    g_model.cfg.n_layers = NL;
    g_model.layers = g_layers;
    for (int l = 0; l < NL; l++)
        for (int i = 0; i < ENG_NLIN; i++) g_layers[l].lin[i] = (eng_tensor_t){.rows = shp[i][0], .cols = shp[i][1]};
    memset(&g_job, 0, sizeof g_job);
    g_job.model = &g_model;
    snprintf(g_job.workdir, sizeof g_job.workdir, "%s", g_dir);
    g_job.spec.method = method;
    g_job.spec.lqer.rank = RANK;
    g_job.spec.lqer.factor_bits = 16;
    g_job.spec_json = json_pack("{s:s, s:{s:i, s:i}}", "method", method == LRQ_M_LQER ? "lqer" : "rtn", "lqer", "rank",
                                RANK, "factor_bits", 16);
    g_job.qcfg = (eng_qcfg_t){.bits = 4, .group_size = 32};
    g_job.ql = calloc(NL * ENG_NLIN, sizeof *g_job.ql);
    if (method == LRQ_M_LQER) g_job.lr = calloc(NL * ENG_NLIN, sizeof *g_job.lr);
    for (int idx = 0; idx < NL * ENG_NLIN; idx++) {
        eng_qlinear_t *q = &g_job.ql[idx];
        int i = idx % ENG_NLIN;
        cr_assert_eq(eng_qlinear_init(q, shp[i][0], shp[i][1], &g_job.qcfg, NULL), 0);
        for (size_t k = 0; k < (size_t)q->m * q->n; k++) q->q[k] = (uint8_t)(rnd() & 15);
        for (size_t k = 0; k < (size_t)q->m * q->G; k++) {
            q->scale[k] = (float)(rnd() % 1000 + 1) * 1e-4f;
            q->zero[k] = (float)(rnd() & 15);
        }
        if (!g_job.lr) continue;
        eng_lowrank_t *f = &g_job.lr[idx];
        cr_assert_eq(eng_lowrank_init(f, q->m, q->n, RANK, 16, NULL), 0);
        for (size_t k = 0; k < (size_t)f->m * RANK; k++) f->L[k] = (float)((int)(rnd() % 2001) - 1000) * 1e-5f;
        for (size_t k = 0; k < (size_t)RANK * f->n; k++) f->R[k] = (float)((int)(rnd() % 2001) - 1000) * 1e-5f;
        eng_lowrank_round(f);
    }
}

static void job_teardown(void)
{
    for (int idx = 0; idx < NL * ENG_NLIN; idx++) {
        eng_qlinear_close(&g_job.ql[idx]);
        if (g_job.lr) eng_lowrank_close(&g_job.lr[idx]);
    }
    free(g_job.ql);
    free(g_job.lr);
    json_decref(g_job.spec_json);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    cr_assert_eq(system(cmd), 0);
}

static void setup_lqer(void) { job_setup(LRQ_M_LQER); }

static json_t *metrics7(void)
{
    json_t *a = json_array();
    for (int i = 0; i < ENG_NLIN; i++) json_array_append_new(a, json_pack("{s:s, s:f}", "name", eng_lin_short_name[i], "act_error", 0.125 * i));
    return a;
}

static void block_path(int b, char *out, size_t n) { snprintf(out, n, "%s/ckpt/block-%03d.bin", g_dir, b); }

/* Copy of the lqer job's block b in memory, for comparisons after a drop. */
typedef struct { eng_qlinear_t q[ENG_NLIN]; eng_lowrank_t f[ENG_NLIN]; } blk_t;
static void snap(int b, blk_t *s)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < ENG_NLIN; i++) {
        const eng_qlinear_t *q = &g_job.ql[b * ENG_NLIN + i];
        const eng_lowrank_t *f = &g_job.lr[b * ENG_NLIN + i];
        cr_assert_eq(eng_qlinear_init(&s->q[i], q->m, q->n, &g_job.qcfg, NULL), 0);
        memcpy(s->q[i].q, q->q, (size_t)q->m * q->n);
        memcpy(s->q[i].scale, q->scale, (size_t)q->m * q->G * 4);
        memcpy(s->q[i].zero, q->zero, (size_t)q->m * q->G * 4);
        cr_assert_eq(eng_lowrank_init(&s->f[i], f->m, f->n, f->k, f->bits, NULL), 0);
        memcpy(s->f[i].L, f->L, (size_t)f->m * f->k * 4);
        memcpy(s->f[i].R, f->R, (size_t)f->k * f->n * 4);
    }
}
static void snap_free(blk_t *s)
{
    for (int i = 0; i < ENG_NLIN; i++) { eng_qlinear_close(&s->q[i]); eng_lowrank_close(&s->f[i]); }
}
static void same_block(const blk_t *s, const eng_qlinear_t *q, const eng_lowrank_t *f)
{
    for (int i = 0; i < ENG_NLIN; i++) {
        cr_assert_eq(q[i].m, s->q[i].m);
        CHECK(!memcmp(q[i].q, s->q[i].q, (size_t)q[i].m * q[i].n), "codes of %s differ", eng_lin_short_name[i]);
        CHECK(!memcmp(q[i].scale, s->q[i].scale, (size_t)q[i].m * q[i].G * 4), "scales of %s differ", eng_lin_short_name[i]);
        CHECK(!memcmp(q[i].zero, s->q[i].zero, (size_t)q[i].m * q[i].G * 4), "zeros of %s differ", eng_lin_short_name[i]);
        if (!f) continue;
        cr_assert_eq(f[i].k, RANK);
        cr_assert_eq(f[i].bits, 16);
        CHECK(!memcmp(f[i].L, s->f[i].L, (size_t)f[i].m * RANK * 4), "L of %s differs", eng_lin_short_name[i]);
        CHECK(!memcmp(f[i].R, s->f[i].R, (size_t)RANK * f[i].n * 4), "R of %s differs", eng_lin_short_name[i]);
    }
}

Test(qstore, factored_round_trip, .init = setup_lqer, .fini = job_teardown)
{
    blk_t s;
    snap(1, &s);
    json_t *mt = metrics7();
    lrq_err_t err = {0};
    wk_blk_meta_t meta = {1.5, 0.25, 3.0, 1};
    cr_assert_eq(wk_qstore_write(&g_job, 1, &meta, mt, &err), 0, "%s", err.msg);
    wk_qstore_drop(&g_job, 1);
    /* dropped: buffers gone, shapes kept for the accounting */
    for (int i = 0; i < ENG_NLIN; i++) {
        const eng_qlinear_t *q = &g_job.ql[ENG_NLIN + i];
        const eng_lowrank_t *f = &g_job.lr[ENG_NLIN + i];
        cr_assert(!q->q && !f->L && !f->R);
        cr_assert(q->m == shp[i][0] && q->n == shp[i][1] && q->G == (shp[i][1] + 31) / 32 && f->k == RANK && f->bits == 16);
    }
    wk_blk_meta_t got;
    cr_assert_eq(wk_qstore_check(&g_job, 1, &got, &err), 0, "%s", err.msg);
    cr_assert(got.loss_start == 1.5 && got.loss_end == 0.25 && got.seconds == 3.0 && got.method == 1);
    json_t *back = wk_qstore_layers(&g_job, 1, &err);
    cr_assert_not_null(back, "%s", err.msg);
    cr_assert(json_equal(back, mt));
    json_decref(back);
    json_decref(mt);

    eng_qlinear_t q[ENG_NLIN] = {0};
    eng_lowrank_t f[ENG_NLIN] = {0};
    cr_assert_eq(wk_qstore_read(&g_job, 1, q, f, NULL, &err), 0, "%s", err.msg);
    same_block(&s, q, f);
    for (int i = 0; i < ENG_NLIN; i++) { eng_qlinear_close(&q[i]); eng_lowrank_close(&f[i]); }

    /* load brings codes and factors back into the job; the one-block source serves them */
    cr_assert_eq(wk_qstore_load(&g_job, 1, 1, &err), 0, "%s", err.msg);
    same_block(&s, &g_job.ql[ENG_NLIN], &g_job.lr[ENG_NLIN]);
    wk_qstore_drop(&g_job, 1);
    wk_qsrc_t src;
    wk_qsrc_init(&src, &g_job, NULL);
    const eng_qlinear_t *pq[ENG_NLIN];
    const eng_lowrank_t *pf[ENG_NLIN];
    cr_assert_eq(wk_qsrc_block(&src, 1, pq, pf, &err), 0, "%s", err.msg);
    for (int i = 0; i < ENG_NLIN; i++) {
        cr_assert(pq[i] == &src.cur[i] && pf[i] == &src.curf[i]);
        CHECK(!memcmp(pf[i]->L, s.f[i].L, (size_t)pf[i]->m * RANK * 4), "source's L of %s", eng_lin_short_name[i]);
    }
    /* merged dense weight = s·(q − z) + L·R, computed here in double from the snapshot */
    const int lin = ENG_DOWN, m = shp[lin][0], n = shp[lin][1];
    float *Wd = malloc((size_t)m * n * sizeof *Wd);
    src.merge = 1;
    cr_assert_eq(wk_qsrc_linear(&src, 1, lin, Wd, &err), 0, "%s", err.msg);
    double worst = 0;
    for (int r = 0; r < m; r++)
        for (int c = 0; c < n; c++) {
            int g = c / 32;
            double w = (double)s.q[lin].scale[r * s.q[lin].G + g] * ((double)s.q[lin].q[r * n + c] - s.q[lin].zero[r * s.q[lin].G + g]);
            for (int k = 0; k < RANK; k++) w += (double)s.f[lin].L[r * RANK + k] * s.f[lin].R[k * n + c];
            double d = fabs(w - Wd[r * n + c]);
            worst = d > worst ? d : worst;
        }
    /* fp32: |s(q−z)| ≤ 1.5, |L·R| ≤ 4e-4: rounding ≤ a few ulp of 1.5 (≈ 4e-7); a missing L·R is ~1e-4 */
    cr_assert(worst < 2e-6, "merged weight off by %g", worst);
    free(Wd);
    wk_qsrc_close(&src);
    snap_free(&s);
}

Test(qstore, codes_only_file, .init = setup_lqer, .fini = job_teardown)
{
    lrq_err_t err = {0};
    cr_assert_eq(wk_qstore_write(&g_job, 0, NULL, NULL, &err), 0, "%s", err.msg); /* version 1, as RTN/LRQ write */
    wk_blk_meta_t got;
    cr_assert_eq(wk_qstore_check(&g_job, 0, &got, &err), 0, "%s", err.msg);
    cr_assert_eq(got.method, 0, "a codes-only file is not a method's final block");
    eng_qlinear_t q[ENG_NLIN] = {0};
    eng_lowrank_t f[ENG_NLIN] = {0};
    cr_assert_eq(wk_qstore_read(&g_job, 0, q, NULL, NULL, &err), 0, "%s", err.msg); /* codes: fine */
    cr_assert_eq(wk_qstore_read(&g_job, 0, q, f, NULL, &err), LRQ_EFORMAT);
    cr_assert(strstr(err.msg, "block-000.bin: holds no low-rank factors"), "%s", err.msg);
    cr_assert_null(wk_qstore_layers(&g_job, 0, &err));
    cr_assert(strstr(err.msg, "holds no method metrics"), "%s", err.msg);
    for (int i = 0; i < ENG_NLIN; i++) eng_qlinear_close(&q[i]);
}

/* Write block 0 section by section as the format describes; mutate(i, tag, &data, &len) may change one. */
typedef void (*mut_fn)(uint32_t tag, const void **data, size_t *len, void *scratch);
static void craft(uint32_t version, const uint32_t *fac, mut_fn mut)
{
    char path[512], dir[300];
    snprintf(dir, sizeof dir, "%s/ckpt", g_dir);
    mkdir(dir, 0755);
    block_path(0, path, sizeof path);
    wk_ckw_t w;
    cr_assert_eq(wk_ckw_open(&w, path, NULL), 0);
    struct { uint32_t version, block; double a, b, c; uint8_t hash[32]; } h = {version, 0, 0, 0, 0, {0}};
    wk_ckpt_spec_hash(g_job.spec_json, h.hash);
    static uint8_t scratch[1 << 16];
    const void *d;
    size_t len;
#define PUT(tag, ptr, n) do { d = (ptr); len = (n); if (mut) mut((tag), &d, &len, scratch); wk_ckw_put(&w, (tag), d, len); } while (0)
    PUT(T_BHDR, &h, sizeof h);
    for (int i = 0; i < ENG_NLIN; i++) {
        const eng_qlinear_t *q = &g_job.ql[i];
        PUT(T_QC(i), q->q, (size_t)q->m * q->n);
        PUT(T_QS(i), q->scale, (size_t)q->m * q->G * 4);
        PUT(T_QZ(i), q->zero, (size_t)q->m * q->G * 4);
    }
    PUT(T_BFAC, fac, 8 * sizeof(uint32_t));
    for (int i = 0; i < ENG_NLIN; i++) {
        PUT(T_FL(i), g_job.lr[i].L, (size_t)g_job.lr[i].m * RANK * 4);
        PUT(T_FR(i), g_job.lr[i].R, (size_t)RANK * g_job.lr[i].n * 4);
    }
    const char *js = "[{},{},{},{},{},{},{}]";
    PUT(T_BMET, js, strlen(js));
#undef PUT
    cr_assert_eq(wk_ckw_commit(&w, path, 0, NULL), 0);
}
static const uint32_t good_fac[8] = {16, RANK, RANK, RANK, RANK, RANK, RANK, RANK};

static int read0(lrq_err_t *err)
{
    eng_qlinear_t q[ENG_NLIN] = {0};
    eng_lowrank_t f[ENG_NLIN] = {0};
    int rc = wk_qstore_read(&g_job, 0, q, f, NULL, err);
    for (int i = 0; i < ENG_NLIN; i++) { eng_qlinear_close(&q[i]); eng_lowrank_close(&f[i]); }
    return rc;
}

Test(qstore, crafted_file_reads, .init = setup_lqer, .fini = job_teardown)
{
    lrq_err_t err = {0};
    craft(2, good_fac, NULL); /* the format as documented reads back */
    cr_assert_eq(read0(&err), 0, "%s", err.msg);
}

static void cut_fr5(uint32_t tag, const void **d, size_t *len, void *s) { if (tag == T_FR(5)) *len -= 4; }
Test(qstore, factor_section_wrong_size, .init = setup_lqer, .fini = job_teardown)
{
    lrq_err_t err = {0};
    craft(2, good_fac, cut_fr5);
    cr_assert_eq(read0(&err), LRQ_EFORMAT);
    cr_assert(strstr(err.msg, "linear up has low-rank factors of the wrong size"), "%s", err.msg);
    cr_assert_eq(wk_qstore_check(&g_job, 0, NULL, &err), LRQ_EFORMAT, "the check refuses what the read refuses");
}

static void drop_fl2(uint32_t tag, const void **d, size_t *len, void *s) { if (tag == T_FL(2)) *len = 0; }
Test(qstore, factor_section_missing, .init = setup_lqer, .fini = job_teardown)
{
    lrq_err_t err = {0};
    craft(2, good_fac, drop_fl2);
    cr_assert_eq(read0(&err), LRQ_EFORMAT);
    cr_assert(strstr(err.msg, "linear v has low-rank factors of the wrong size"), "%s", err.msg);
}

Test(qstore, factor_rank_or_bits_mismatch, .init = setup_lqer, .fini = job_teardown)
{
    lrq_err_t err = {0};
    uint32_t fac[8];
    memcpy(fac, good_fac, sizeof fac);
    fac[1 + ENG_GATE] = RANK - 1;
    craft(2, fac, NULL);
    cr_assert_eq(read0(&err), LRQ_EFORMAT);
    cr_assert(strstr(err.msg, "linear gate has low-rank factors of rank 3, the spec's is 4"), "%s", err.msg);
    memcpy(fac, good_fac, sizeof fac);
    fac[0] = 8;
    craft(2, fac, NULL);
    cr_assert_eq(read0(&err), LRQ_EFORMAT);
    cr_assert(strstr(err.msg, "low-rank factor header does not match"), "%s", err.msg);
}

Test(qstore, unknown_version, .init = setup_lqer, .fini = job_teardown)
{
    lrq_err_t err = {0};
    craft(3, good_fac, NULL);
    cr_assert_eq(read0(&err), LRQ_EFORMAT);
    cr_assert(strstr(err.msg, "belongs to another job spec or version"), "%s", err.msg);
}

/* Offset of the data of section `tag` in the file at path (the layout of wk_ckpt.h), -1 = none. */
static long section_at(const char *path, uint32_t tag)
{
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp);
    long off = 8, found = -1;
    struct { uint32_t tag, zero; uint64_t len; } h;
    while (fseek(fp, off, SEEK_SET) == 0 && fread(&h, sizeof h, 1, fp) == 1) {
        if (h.tag == tag) { found = off + (long)sizeof h; break; }
        if (h.tag == WK_TAG('E', 'N', 'D', '!')) break;
        off += (long)sizeof h + (long)h.len;
    }
    fclose(fp);
    return found;
}

Test(qstore, flipped_factor_byte, .init = setup_lqer, .fini = job_teardown)
{
    lrq_err_t err = {0};
    json_t *mt = metrics7();
    cr_assert_eq(wk_qstore_write(&g_job, 0, NULL, mt, &err), 0, "%s", err.msg);
    json_decref(mt);
    char path[512];
    block_path(0, path, sizeof path);
    long at = section_at(path, T_FL(3));
    cr_assert(at > 0, "the file has linear o's L section");
    FILE *fp = fopen(path, "r+b");
    cr_assert_not_null(fp);
    fseek(fp, at + 17, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, at + 17, SEEK_SET);
    fputc(c ^ 0x20, fp);
    fclose(fp);
    cr_assert_eq(read0(&err), LRQ_ECHECKSUM);
    cr_assert(strstr(err.msg, "block-000.bin: checksum mismatch"), "%s", err.msg);
}
