/* Internal kernel interfaces: strided iteration for broadcasting, and the
 * elementwise loops behind the ops (f32 and f64). Not installed. Matrix
 * products are in gemm.h.
 *
 * Kernels work on raw buffers of tensors that the op's shape rule has
 * already checked: same float dtype, shapes broadcastable to out's, out
 * freshly allocated (never aliasing an input). */
#ifndef HGRAD_KERNELS_H
#define HGRAD_KERNELS_H

#include "../internal.h"

#define HG_ITER_MAX_OPS 4

/* Iteration over an output shape with per-operand element strides (0 on
 * broadcast axes). Unit axes are dropped and adjacent axes that are
 * contiguous for every operand are merged, so same-shape work is one row
 * and [n,m] + [m] is n rows of m. On the innermost axis every operand's
 * stride is 0 (broadcast) or 1 (contiguous). */
typedef struct hg_iter {
    int rank;
    int n_ops;
    int64_t shape[HG_MAX_RANK];
    int64_t stride[HG_ITER_MAX_OPS][HG_MAX_RANK];
} hg_iter;

/* ops[k] are contiguous row-major tensors whose shapes are right-aligned
 * against `shape` (NumPy broadcasting); n_ops <= HG_ITER_MAX_OPS. */
void hg_iter_init(hg_iter *it, int rank, const int64_t *shape, int n_ops, const hg_tensor *const *ops);

/* Calls row(user, offsets, inner_strides, n) for each innermost row; offsets
 * and strides are in elements, one per operand. Nothing for an empty shape. */
typedef void (*hg_row_fn)(void *user, const int64_t *offset, const int64_t *stride, int64_t n);
void hg_iter_rows(const hg_iter *it, hg_row_fn row, void *user);

/* ---- binary: out = f(a, b), broadcasting ------------------------------- */

/* One row of a binary op: o[i] = f(a[i * sa], b[i * sb]), sa and sb in {0, 1}. */
typedef struct hg_binary_kernel {
    void (*f32)(float *o, const float *a, int64_t sa, const float *b, int64_t sb, int64_t n);
    void (*f64)(double *o, const double *a, int64_t sa, const double *b, int64_t sb, int64_t n);
} hg_binary_kernel;

extern const hg_binary_kernel hg_binary_add;           /* a + b */
extern const hg_binary_kernel hg_binary_sub;           /* a - b */
extern const hg_binary_kernel hg_binary_mul;           /* a * b */
extern const hg_binary_kernel hg_binary_div;           /* a / b */
extern const hg_binary_kernel hg_binary_maximum;       /* a >= b ? a : b (NaN in a wins) */
extern const hg_binary_kernel hg_binary_minimum;       /* a <= b ? a : b (NaN in a wins) */
extern const hg_binary_kernel hg_binary_greater;       /* a > b ? 1 : 0 */
extern const hg_binary_kernel hg_binary_greater_equal; /* a >= b ? 1 : 0 */

/* Runs kernel over out's shape: one call when a and b are each out-shaped or
 * one element, a plain loop over rows for [n,m] with [m] or [n,1], the
 * general iterator otherwise. */
void hg_kernel_binary(const hg_binary_kernel *kernel, hg_tensor *out, const hg_tensor *a, const hg_tensor *b);

/* out = mask != 0 ? a : b, broadcasting all three (NaN in mask selects a). */
void hg_kernel_where(hg_tensor *out, const hg_tensor *mask, const hg_tensor *a, const hg_tensor *b);

/* ---- unary: y = f(x; p), contiguous, same shape ------------------------ */

/* p is the op's scalar parameter (scale, shift, exponent; unused by most). */
typedef struct hg_unary_kernel {
    void (*f32)(float *restrict y, const float *restrict x, int64_t n, float p);
    void (*f64)(double *restrict y, const double *restrict x, int64_t n, double p);
} hg_unary_kernel;

extern const hg_unary_kernel hg_unary_neg;   /* -x */
extern const hg_unary_kernel hg_unary_scale; /* p x */
extern const hg_unary_kernel hg_unary_add;   /* x + p */
extern const hg_unary_kernel hg_unary_pow;   /* x^p (p = 2: x x) */
extern const hg_unary_kernel hg_unary_exp;
extern const hg_unary_kernel hg_unary_log;
extern const hg_unary_kernel hg_unary_sqrt;
extern const hg_unary_kernel hg_unary_tanh;
extern const hg_unary_kernel hg_unary_sigmoid; /* stable on both tails */
extern const hg_unary_kernel hg_unary_relu;    /* x < 0 ? 0 : x (NaN stays NaN) */
extern const hg_unary_kernel hg_unary_abs;
extern const hg_unary_kernel hg_unary_sign; /* -1, 0, 1 (NaN -> 0) */
extern const hg_unary_kernel hg_unary_copy;

void hg_kernel_unary(const hg_unary_kernel *kernel, double p, hg_tensor *out, const hg_tensor *x);

/* Reductions and expansions along broadcast axes (sum_to, broadcast_to)
 * and permutations are in layout.h. */

#endif
