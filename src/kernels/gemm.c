/* CBLAS sgemm/dgemm, row-major. */
#include "gemm.h"

#include <cblas.h>
#include <string.h>

void hg_kernel_gemm(hg_tensor *c, const hg_tensor *a, const hg_tensor *b, bool trans_a, bool trans_b,
                    int64_t m, int64_t n, int64_t k)
{
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        memset(c->data, 0, (size_t)(m * n) * hg_dtype_size(c->dtype));
        return;
    }
    /* Leading dimensions of the stored (untransposed) row-major matrices. */
    int lda = (int)(trans_a ? m : k), ldb = (int)(trans_b ? k : n);
    enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    if (c->dtype == HG_F32)
        cblas_sgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, 1.0f, a->data, lda, b->data, ldb, 0.0f, c->data,
                    (int)n);
    else
        cblas_dgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, 1.0, a->data, lda, b->data, ldb, 0.0, c->data,
                    (int)n);
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
    enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    if (dtype == HG_F32)
        cblas_sgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, (float)alpha, a, (int)lda, b, (int)ldb,
                    (float)beta, c, (int)ldc);
    else
        cblas_dgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c,
                    (int)ldc);
}
