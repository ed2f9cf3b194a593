/* Matrix products through CBLAS. Not installed. */
#ifndef HGRAD_GEMM_H
#define HGRAD_GEMM_H

#include "../internal.h"

/* c [m,n] = alpha op(a) op(b), row-major, op transposes when the flag is
 * set; k is the inner dimension. Zero-sized products fill c with zeros. */
void hg_kernel_gemm(hg_tensor *c, const hg_tensor *a, const hg_tensor *b, bool trans_a, bool trans_b, int64_t m,
                    int64_t n, int64_t k, double alpha);

/* c [m,n] += alpha op(a) op(b) (one product with beta = 1; k == 0 leaves c). */
void hg_kernel_gemm_acc(hg_tensor *c, const hg_tensor *a, const hg_tensor *b, bool trans_a, bool trans_b, int64_t m,
                        int64_t n, int64_t k, double alpha);

/* C = alpha op(A) op(B) + beta C on raw row-major buffers of dtype (f32 or
 * f64) with leading dimensions lda, ldb, ldc; m, n, k fit the BLAS int (the
 * caller checked). k == 0 scales C by beta (0: zeros). For batched products
 * and convolutions. */
void hg_kernel_gemm_raw(hg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                        const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc);

#endif
