/* GEMM tracing by interposition: see gemm_trace.h. This file deliberately
 * does not include <cblas.h>: the enums are passed as int, which is what
 * every CBLAS's ABI does. */
#define _GNU_SOURCE
#include "gemm_trace.h"

#include <hgrad.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HG_BENCH_XSMM
#include <libxsmm.h>
#endif

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *,
                         int);
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double *, int, const double *, int, double,
                         double *, int);

static sgemm_fn real_sgemm;
static dgemm_fn real_dgemm;
static int tracing;
static gemm_call *calls;
static size_t n_calls, cap_calls;
static double inside_seconds;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int gemm_trace_init(void)
{
    if (!real_sgemm)
        *(void **)&real_sgemm = dlsym(RTLD_NEXT, "cblas_sgemm");
    if (!real_dgemm)
        *(void **)&real_dgemm = dlsym(RTLD_NEXT, "cblas_dgemm");
    if (!real_sgemm || !real_dgemm) {
        fprintf(stderr, "gemm_trace: the BLAS's cblas_sgemm/cblas_dgemm not found (%s)\n", dlerror());
        return -1;
    }
    return 0;
}

static void record(int dtype, int order, int ta, int tb, int m, int n, int k, double alpha, int lda, int ldb,
                   double beta, int ldc)
{
    if (n_calls == cap_calls) {
        size_t ncap = cap_calls ? 2 * cap_calls : 1024;
        gemm_call *p = realloc(calls, ncap * sizeof *p);
        if (!p) {
            tracing = 0;
            return;
        }
        calls = p;
        cap_calls = ncap;
    }
    calls[n_calls++] = (gemm_call){dtype, order, ta, tb, m, n, k, lda, ldb, ldc, alpha, beta, 0};
}

/* The library's products that libxsmm ran (CBLAS ones arrive through the
 * interposed functions below). */
static void observe(void *user, const hg_gemm_event *ev)
{
    (void)user;
    if (!tracing || ev->backend != 1)
        return;
    record(ev->dtype == HG_F32 ? 0 : 1, 101, ev->trans_a ? 112 : 111, ev->trans_b ? 112 : 111, (int)ev->m, (int)ev->n,
           (int)ev->k, ev->alpha, (int)ev->lda, (int)ev->ldb, ev->beta, (int)ev->ldc);
    if (tracing)
        calls[n_calls - 1].backend = 1;
    inside_seconds += ev->seconds;
}

void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                 int ldb, float beta, float *c, int ldc);
void cblas_dgemm(int order, int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
                 const double *b, int ldb, double beta, double *c, int ldc);

void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                 int ldb, float beta, float *c, int ldc)
{
    if (!real_sgemm && gemm_trace_init() != 0)
        abort();
    if (!tracing) {
        real_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    record(0, order, ta, tb, m, n, k, alpha, lda, ldb, beta, ldc);
    double t0 = now();
    real_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    inside_seconds += now() - t0;
}

void cblas_dgemm(int order, int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
                 const double *b, int ldb, double beta, double *c, int ldc)
{
    if (!real_dgemm && gemm_trace_init() != 0)
        abort();
    if (!tracing) {
        real_dgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    record(1, order, ta, tb, m, n, k, alpha, lda, ldb, beta, ldc);
    double t0 = now();
    real_dgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    inside_seconds += now() - t0;
}

void gemm_trace_start(void)
{
    n_calls = 0;
    inside_seconds = 0;
    tracing = 1;
    hg_set_gemm_observer(observe, NULL);
}

void gemm_trace_stop(void)
{
    tracing = 0;
    hg_set_gemm_observer(NULL, NULL);
}

size_t gemm_trace_xsmm_count(void)
{
    size_t n = 0;
    for (size_t i = 0; i < n_calls; i++)
        n += calls[i].backend == 1;
    return n;
}

#ifdef HG_BENCH_XSMM
/* One product as src/kernels/gemm.c runs it with libxsmm: row-major C =
 * alpha op(A) op(B) (+ C for beta = 1) as column-major C^T = op(B)^T op(A)^T,
 * a TransB transposed, or alpha != 1 multiplied into, a copy of B in scratch
 * first (its time counted, as in the library). */
static void xsmm_replay(const gemm_call *g, const void *a, const void *b, void *c, void *scratch)
{
    int ta = g->trans_a == 112, tb = g->trans_b == 112;
    libxsmm_blasint ldb = g->ldb;
    if (tb || g->alpha != 1) {
        for (int i = 0; i < g->n; i++)
            for (int j = 0; j < g->k; j++) {
                size_t from = tb ? (size_t)i * (size_t)g->ldb + (size_t)j : (size_t)j * (size_t)g->ldb + (size_t)i;
                size_t to = (size_t)j * (size_t)g->n + (size_t)i;
                if (g->dtype == 0)
                    ((float *)scratch)[to] = (float)g->alpha * ((const float *)b)[from];
                else
                    ((double *)scratch)[to] = g->alpha * ((const double *)b)[from];
            }
        b = scratch;
        ldb = g->n;
    }
    libxsmm_blasint M = g->n, N = g->m, K = g->k, xlda = ldb, xldb = g->lda, xldc = g->ldc;
    int flags = (g->beta == 0 ? LIBXSMM_GEMM_FLAG_BETA_0 : 0) | (ta ? LIBXSMM_GEMM_FLAG_TRANS_B : 0);
    if (g->dtype == 0) {
        float one = 1, fbeta = (float)g->beta;
        libxsmm_smmfunction f = libxsmm_smmdispatch(M, N, K, &xlda, &xldb, &xldc, &one, &fbeta, &flags, NULL);
        if (f)
            f(b, a, c);
    } else {
        double one = 1, beta = g->beta;
        libxsmm_dmmfunction f = libxsmm_dmmdispatch(M, N, K, &xlda, &xldb, &xldc, &one, &beta, &flags, NULL);
        if (f)
            f(b, a, c);
    }
}
#endif

size_t gemm_trace_count(void)
{
    return n_calls;
}

const gemm_call *gemm_trace_calls(void)
{
    return calls;
}

double gemm_trace_seconds(void)
{
    return inside_seconds;
}

double gemm_trace_flops(void)
{
    double f = 0;
    for (size_t i = 0; i < n_calls; i++)
        f += (double)calls[i].m * calls[i].n * calls[i].k;
    return f;
}

/* Elements spanned by a stored operand whose op() is rows x cols
 * (CblasRowMajor 101, CblasColMajor 102, CblasNoTrans 111). */
static size_t stored(int order, int trans, int rows, int cols, int ld)
{
    int notrans = trans == 111;
    int lines = order == 101 ? (notrans ? rows : cols) : (notrans ? cols : rows);
    return (size_t)lines * (size_t)ld;
}

double gemm_replay(void)
{
    if (!n_calls || (!real_sgemm && gemm_trace_init() != 0))
        return -1;
    size_t max_a = 1, max_b = 1, max_c = 1;
    for (size_t i = 0; i < n_calls; i++) {
        const gemm_call *g = &calls[i];
        size_t sa = stored(g->order, g->trans_a, g->m, g->k, g->lda);
        size_t sb = stored(g->order, g->trans_b, g->k, g->n, g->ldb);
        size_t sc = stored(g->order, 111, g->m, g->n, g->ldc);
        max_a = sa > max_a ? sa : max_a;
        max_b = sb > max_b ? sb : max_b;
        max_c = sc > max_c ? sc : max_c;
    }
    /* Separate buffers per dtype, 8-byte elements (enough for both). */
    double *a = aligned_alloc(64, (max_a * 8 + 63) / 64 * 64);
    double *b = aligned_alloc(64, (max_b * 8 + 63) / 64 * 64);
    double *c = aligned_alloc(64, (max_c * 8 + 63) / 64 * 64);
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return -1;
    }
    float *af = (float *)a, *bf = (float *)b, *cf = (float *)c;
    for (size_t i = 0; i < max_a; i++)
        a[i] = 0.001 * (double)(i % 97);
    for (size_t i = 0; i < max_b; i++)
        b[i] = 0.001 * (double)(i % 89);
    memset(c, 0, max_c * 8);
    /* The f32 calls read the same bytes as floats: make them sane values. */
    int any_f32 = 0;
    for (size_t i = 0; i < n_calls; i++)
        any_f32 |= calls[i].dtype == 0;
    if (any_f32) {
        for (size_t i = 0; i < max_a; i++)
            af[i] = 0.001f * (float)(i % 97);
        for (size_t i = 0; i < max_b; i++)
            bf[i] = 0.001f * (float)(i % 89);
    }
    void *scratch = aligned_alloc(64, (max_b * 8 + 63) / 64 * 64);
    if (!scratch) {
        free(a);
        free(b);
        free(c);
        return -1;
    }
    double t0 = now();
    for (size_t i = 0; i < n_calls; i++) {
        const gemm_call *g = &calls[i];
#ifdef HG_BENCH_XSMM
        if (g->backend == 1) {
            xsmm_replay(g, g->dtype == 0 ? (void *)af : (void *)a, g->dtype == 0 ? (void *)bf : (void *)b,
                        g->dtype == 0 ? (void *)cf : (void *)c, scratch);
            continue;
        }
#endif
        if (g->dtype == 0)
            real_sgemm(g->order, g->trans_a, g->trans_b, g->m, g->n, g->k, (float)g->alpha, af, g->lda, bf, g->ldb,
                       (float)g->beta, cf, g->ldc);
        else
            real_dgemm(g->order, g->trans_a, g->trans_b, g->m, g->n, g->k, g->alpha, a, g->lda, b, g->ldb, g->beta, c,
                       g->ldc);
    }
    double t = now() - t0;
    free(scratch);
    free(a);
    free(b);
    free(c);
    return t;
}

void blas_set_threads(int n)
{
    void (*set)(int);
    *(void **)&set = dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    if (set)
        set(n);
}

const char *blas_description(void)
{
    static char buf[256];
    char *(*config)(void), *(*core)(void);
    *(void **)&config = dlsym(RTLD_DEFAULT, "openblas_get_config");
    *(void **)&core = dlsym(RTLD_DEFAULT, "openblas_get_corename");
    if (!config) {
        Dl_info info;
        void *addr = NULL;
        memcpy(&addr, &real_dgemm, sizeof addr);
        if (addr && dladdr(addr, &info) && info.dli_fname)
            snprintf(buf, sizeof buf, "CBLAS from %s", info.dli_fname);
        else
            snprintf(buf, sizeof buf, "unknown CBLAS");
        return buf;
    }
    snprintf(buf, sizeof buf, "%s (core %s)", config(), core ? core() : "?");
    return buf;
}
