/* Internal kernel interfaces: strided iteration for broadcasting and the
 * loops behind the ops. Not installed. */
#ifndef HGRAD_KERNELS_H
#define HGRAD_KERNELS_H

#include "../internal.h"

#define HG_ITER_MAX_OPS 4

/* Iteration over an output shape with per-operand element strides (0 on
 * broadcast axes). Operand 0 is the output. Adjacent axes that are
 * contiguous for every operand are merged, so same-shape work is one loop. */
typedef struct hg_iter {
    int rank;
    int n_ops;
    int64_t shape[HG_MAX_RANK];
    int64_t stride[HG_ITER_MAX_OPS][HG_MAX_RANK];
} hg_iter;

/* Operand shapes are right-aligned against out's (NumPy broadcasting). */
void hg_iter_init(hg_iter *it, int rank, const int64_t *shape, int n_ops, const hg_tensor *const *ops);

/* Calls row(user, offsets, inner_strides, n) for each innermost row; offsets
 * and strides are in elements, one per operand. */
typedef void (*hg_row_fn)(void *user, const int64_t *offset, const int64_t *stride, int64_t n);
void hg_iter_rows(const hg_iter *it, hg_row_fn row, void *user);

/* Binary elementwise kernels with broadcasting: out = f(a, b). */
typedef enum hg_binary_kind {
    HG_BIN_ADD,
    HG_BIN_SUB,
    HG_BIN_MUL,
    HG_BIN_DIV,
    HG_BIN_MAX,
    HG_BIN_MIN,
    HG_BIN_GT,
    HG_BIN_GE
} hg_binary_kind;
void hg_kernel_binary(hg_binary_kind kind, hg_tensor *out, const hg_tensor *a, const hg_tensor *b);
/* out = mask != 0 ? a : b, broadcasting. */
void hg_kernel_where(hg_tensor *out, const hg_tensor *mask, const hg_tensor *a, const hg_tensor *b);

typedef enum hg_unary_kind {
    HG_UN_NEG,
    HG_UN_SCALE,     /* p * x */
    HG_UN_ADD,       /* x + p */
    HG_UN_POW,       /* x ^ p */
    HG_UN_EXP,
    HG_UN_LOG,
    HG_UN_SQRT,
    HG_UN_TANH,
    HG_UN_SIGMOID,
    HG_UN_RELU,
    HG_UN_ABS,
    HG_UN_SIGN,
    HG_UN_COPY
} hg_unary_kind;
void hg_kernel_unary(hg_unary_kind kind, double p, hg_tensor *out, const hg_tensor *x);

/* out (shape broadcastable to x's) = sum of x over the broadcast axes. */
void hg_kernel_sum_to(hg_tensor *out, const hg_tensor *x);
/* out = x broadcast to out's shape. */
void hg_kernel_broadcast(hg_tensor *out, const hg_tensor *x);

#endif
