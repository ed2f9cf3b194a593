/* Matrix products, row-major: libxsmm's JIT kernels for small products
 * (when built with it, HG_HAVE_XSMM), CBLAS sgemm/dgemm for the rest and
 * for any product libxsmm refuses. The choice depends only on the call
 * (dtype, shape, transposes, scalars), so results are deterministic: the
 * same call always runs the same kernel, whatever the thread. */
#define _GNU_SOURCE /* RTLD_DEFAULT, for hg_blas_set_threads */
#include "gemm.h"

#include <cblas.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#ifdef HG_HAVE_XSMM
#include <libxsmm.h>
#endif

/* ---- observer (hg_set_gemm_observer) ------------------------------------ */

static hg_gemm_observer observer;
static void *observer_user;

void hg_set_gemm_observer(hg_gemm_observer fn, void *user)
{
    observer = fn;
    observer_user = user;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- CBLAS --------------------------------------------------------------- */

static void cblas_gemm(hg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                       const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc)
{
    enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    if (dtype == HG_F32)
        cblas_sgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, (float)alpha, a, (int)lda, b, (int)ldb, (float)beta,
                    c, (int)ldc);
    else
        cblas_dgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* ---- libxsmm ------------------------------------------------------------- */

#ifdef HG_HAVE_XSMM
/* Products of at most this many multiply-adds go to libxsmm (its own
 * default threshold, 64^3): measured on this project's shapes, its kernels
 * beat OpenBLAS there and lose on the large layer-1 products. */
#define XSMM_MAX_MNK (64 * 64 * 64)
/* A row-major TransB needs an explicit transpose (libxsmm refuses a
 * column-major TransA), and alpha != 1 a scaled copy of B (libxsmm's
 * kernels take alpha = 1 only); done on the stack up to this many
 * elements. */
#define XSMM_TRANSPOSE_MAX 4096

/* dst [k, n] (contiguous) = alpha op(src), src stored [k, n] or, with
 * trans, [n, k], leading dimension ld; alpha rounded to T once. */
#define DEFINE_TRANSPOSE(T)                                                                                           \
    static void scaled_copy_##T(T *restrict dst, const T *restrict src, bool trans, int64_t k, int64_t n, int64_t ld, \
                                T alpha)                                                                              \
    {                                                                                                                 \
        if (trans)                                                                                                    \
            for (int64_t i = 0; i < n; i++)                                                                           \
                for (int64_t j = 0; j < k; j++)                                                                       \
                    dst[j * n + i] = alpha * src[i * ld + j];                                                         \
        else                                                                                                          \
            for (int64_t j = 0; j < k; j++)                                                                           \
                for (int64_t i = 0; i < n; i++)                                                                       \
                    dst[j * n + i] = alpha * src[j * ld + i];                                                         \
    }
DEFINE_TRANSPOSE(float)
DEFINE_TRANSPOSE(double)

/* C = alpha op(A) op(B) + beta C (beta 0 or 1) with a libxsmm kernel;
 * false if libxsmm does not take it (then nothing was written). Row-major
 * C [m,n] is column-major C^T = op(B)^T op(A)^T: the operands swap, a
 * row-major TransA becomes libxsmm's TransB, and a row-major TransB is
 * transposed first. alpha != 1 multiplies B's entries into the copy, so the
 * product is op(A) (alpha op(B)) rounded that way (deterministic: the same
 * call always takes this path). */
static bool xsmm_gemm(hg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                      const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc)
{
    if (m * n * k > XSMM_MAX_MNK)
        return false;
    double scratch[XSMM_TRANSPOSE_MAX];
    if (trans_b || alpha != 1) { /* b stored [k, n] or [n, k] (ldb): make alpha op(b) [k, n] */
        if (n * k > XSMM_TRANSPOSE_MAX)
            return false;
        if (dtype == HG_F32)
            scaled_copy_float((float *)scratch, b, trans_b, k, n, ldb, (float)alpha);
        else
            scaled_copy_double(scratch, b, trans_b, k, n, ldb, alpha);
        b = scratch;
        ldb = n;
        trans_b = false;
    }
    libxsmm_blasint M = (libxsmm_blasint)n, N = (libxsmm_blasint)m, K = (libxsmm_blasint)k;
    libxsmm_blasint xlda = (libxsmm_blasint)ldb, xldb = (libxsmm_blasint)lda, xldc = (libxsmm_blasint)ldc;
    int flags = (beta == 0 ? LIBXSMM_GEMM_FLAG_BETA_0 : 0) | (trans_a ? LIBXSMM_GEMM_FLAG_TRANS_B : 0);
    if (dtype == HG_F32) {
        float one = 1, fbeta = (float)beta;
        libxsmm_smmfunction f = libxsmm_smmdispatch(M, N, K, &xlda, &xldb, &xldc, &one, &fbeta, &flags, NULL);
        if (!f)
            return false;
        f(b, a, c);
    } else {
        double one = 1;
        libxsmm_dmmfunction f = libxsmm_dmmdispatch(M, N, K, &xlda, &xldb, &xldc, &one, &beta, &flags, NULL);
        if (!f)
            return false;
        f(b, a, c);
    }
    return true;
}
#endif

const char *hg_matmul_backend(void)
{
#ifdef HG_HAVE_XSMM
    static char name[96];
    if (!name[0])
        snprintf(name, sizeof name, "libxsmm %d.%d (m*n*k <= %d) + CBLAS", LIBXSMM_VERSION_MAJOR, LIBXSMM_VERSION_MINOR,
                 XSMM_MAX_MNK);
    return name;
#else
    return "CBLAS";
#endif
}

/* One product by the backend that takes it, reported to the observer. */
static void gemm(hg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                 const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc)
{
    hg_gemm_observer obs = observer;
    double t0 = obs ? now() : 0;
    int backend = 0;
#ifdef HG_HAVE_XSMM
    if ((beta == 0 || beta == 1) && xsmm_gemm(dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
        backend = 1;
#endif
    if (!backend)
        cblas_gemm(dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    if (obs) {
        hg_gemm_event ev = {dtype, trans_a, trans_b, m, n, k, lda, ldb, ldc, alpha, beta, backend, now() - t0};
        obs(observer_user, &ev);
    }
}

void hg_kernel_gemm(hg_tensor *c, const hg_tensor *a, const hg_tensor *b, bool trans_a, bool trans_b, int64_t m,
                    int64_t n, int64_t k, double alpha)
{
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        memset(c->data, 0, (size_t)(m * n) * hg_dtype_size(c->dtype));
        return;
    }
    /* Leading dimensions of the stored (untransposed) row-major matrices. */
    gemm(c->dtype, trans_a, trans_b, m, n, k, alpha, a->data, trans_a ? m : k, b->data, trans_b ? k : n, 0.0, c->data,
         n);
}

void hg_kernel_gemm_acc(hg_tensor *c, const hg_tensor *a, const hg_tensor *b, bool trans_a, bool trans_b, int64_t m,
                        int64_t n, int64_t k, double alpha)
{
    if (m == 0 || n == 0 || k == 0)
        return;
    gemm(c->dtype, trans_a, trans_b, m, n, k, alpha, a->data, trans_a ? m : k, b->data, trans_b ? k : n, 1.0, c->data,
         n);
}

void hg_kernel_gemm_raw(hg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                        const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc)
{
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                if (dtype == HG_F32)
                    ((float *)c)[i * ldc + j] = beta == 0 ? 0.0f : (float)beta * ((float *)c)[i * ldc + j];
                else
                    ((double *)c)[i * ldc + j] = beta == 0 ? 0.0 : beta * ((double *)c)[i * ldc + j];
            }
        return;
    }
    gemm(dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ---- BLAS threads ------------------------------------------------------- */

/* OpenBLAS's thread control, looked up at run time: the library links any
 * CBLAS, and only OpenBLAS (or a BLAS exporting the same names) has it. */
hg_status hg_blas_set_threads(int n)
{
    if (n < 1)
        return HG_ERR_RANGE;
    void (*set)(int);
    void *sym = dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    memcpy(&set, &sym, sizeof set);
    if (set)
        set(n);
    return HG_OK;
}

int hg_blas_threads(void)
{
    int (*get)(void);
    void *sym = dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
    memcpy(&get, &sym, sizeof get);
    return get ? get() : 1;
}
