/* Matrix products through CBLAS. Not installed. */
#ifndef HGRAD_GEMM_H
#define HGRAD_GEMM_H

#include "../internal.h"

/* c [m,n] = op(a) op(b), row-major, op transposes when the flag is set;
 * k is the inner dimension. Zero-sized products fill c with zeros. */
void hg_kernel_gemm(hg_tensor *c, const hg_tensor *a, const hg_tensor *b, bool trans_a, bool trans_b,
                    int64_t m, int64_t n, int64_t k);

#endif
