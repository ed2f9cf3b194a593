/* The built-in differentiable ops.
 *
 * Common rules for every call below:
 *  - Inputs are tensors of ctx; the result is a new tensor in ctx's arena.
 *  - Values are f32 or f64; the inputs of one op must share a dtype (no
 *    implicit promotion: use hg_cast). i32 is accepted only where stated.
 *  - Elementwise binary ops (add, sub, mul, div, maximum, minimum, where)
 *    broadcast as NumPy does; their vjp reduces with hg_sum_to.
 *  - Errors: NULL return, first error on ctx (HG_ERR_SHAPE, HG_ERR_DTYPE,
 *    HG_ERR_RANGE, HG_ERR_STALE, HG_ERR_OOM); a NULL input returns NULL and
 *    keeps the earlier error.
 *  - Every op's vjp is built from these ops, so all are differentiable to any
 *    order; the formulas are listed in docs/derivatives.md. Comparisons,
 *    hg_sign and hg_one_hot are constants (zero derivative). */
#ifndef HGRAD_OPS_H
#define HGRAD_OPS_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise, broadcasting binary ---------------------------------- */
HG_API hg_tensor *hg_add(hg_ctx *ctx, hg_tensor *a, hg_tensor *b);
HG_API hg_tensor *hg_sub(hg_ctx *ctx, hg_tensor *a, hg_tensor *b);
HG_API hg_tensor *hg_mul(hg_ctx *ctx, hg_tensor *a, hg_tensor *b);
HG_API hg_tensor *hg_div(hg_ctx *ctx, hg_tensor *a, hg_tensor *b);
/* Ties send the whole cotangent to a. */
HG_API hg_tensor *hg_maximum(hg_ctx *ctx, hg_tensor *a, hg_tensor *b);
HG_API hg_tensor *hg_minimum(hg_ctx *ctx, hg_tensor *a, hg_tensor *b);
/* mask (same float dtype, 0 or nonzero) ? a : b, broadcasting all three;
 * not differentiable in mask. */
HG_API hg_tensor *hg_where(hg_ctx *ctx, hg_tensor *mask, hg_tensor *a, hg_tensor *b);
/* Constant 0/1 masks in the inputs' dtype, broadcasting. */
HG_API hg_tensor *hg_greater(hg_ctx *ctx, hg_tensor *a, hg_tensor *b);
HG_API hg_tensor *hg_greater_equal(hg_ctx *ctx, hg_tensor *a, hg_tensor *b);

/* ---- elementwise unary ------------------------------------------------- */
HG_API hg_tensor *hg_neg(hg_ctx *ctx, hg_tensor *x);
HG_API hg_tensor *hg_scale(hg_ctx *ctx, hg_tensor *x, double s);      /* s * x */
HG_API hg_tensor *hg_add_scalar(hg_ctx *ctx, hg_tensor *x, double s); /* x + s */
/* x^p. Derivative p x^(p-1), except for 0 < p < 1 at exactly x = 0 where it
 * is taken as 0 (hg_sqrt's convention, so pow_scalar(x, 0.5) and sqrt agree
 * at every order); p < 0 at 0 stays infinite as the value is. */
HG_API hg_tensor *hg_pow_scalar(hg_ctx *ctx, hg_tensor *x, double p);
HG_API hg_tensor *hg_exp(hg_ctx *ctx, hg_tensor *x);
HG_API hg_tensor *hg_log(hg_ctx *ctx, hg_tensor *x);
/* Derivative at exactly 0 is taken as 0 (like relu'(0)): keeps hypergradients
 * through Adam finite where a second moment is exactly zero. */
HG_API hg_tensor *hg_sqrt(hg_ctx *ctx, hg_tensor *x);
HG_API hg_tensor *hg_tanh(hg_ctx *ctx, hg_tensor *x);
HG_API hg_tensor *hg_sigmoid(hg_ctx *ctx, hg_tensor *x);
HG_API hg_tensor *hg_relu(hg_ctx *ctx, hg_tensor *x);
HG_API hg_tensor *hg_abs(hg_ctx *ctx, hg_tensor *x);
/* -1, 0, 1 (constant); NaN stays NaN. */
HG_API hg_tensor *hg_sign(hg_ctx *ctx, hg_tensor *x);
/* Identity copy that is recorded (a new tensor with the same values). */
HG_API hg_tensor *hg_identity(hg_ctx *ctx, hg_tensor *x);

/* ---- matrix product ---------------------------------------------------- */
/* a [m,k] @ b [k,n] -> [m,n] (CBLAS gemm). */
HG_API hg_tensor *hg_matmul(hg_ctx *ctx, hg_tensor *a, hg_tensor *b);
/* op(a) @ op(b) where op transposes when the flag is nonzero. */
HG_API hg_tensor *hg_matmul_t(hg_ctx *ctx, hg_tensor *a, hg_tensor *b, int trans_a, int trans_b);

/* ---- reductions -------------------------------------------------------- */
/* Sum/mean of all elements -> rank 0. */
HG_API hg_tensor *hg_sum(hg_ctx *ctx, hg_tensor *x);
HG_API hg_tensor *hg_mean(hg_ctx *ctx, hg_tensor *x);
/* Over one axis (negative counts from the end); keepdim keeps it as 1. */
HG_API hg_tensor *hg_sum_axis(hg_ctx *ctx, hg_tensor *x, int axis, int keepdim);
HG_API hg_tensor *hg_mean_axis(hg_ctx *ctx, hg_tensor *x, int axis, int keepdim);
/* Sum x down to `shape` (x's shape must broadcast from it). */
HG_API hg_tensor *hg_sum_to(hg_ctx *ctx, hg_tensor *x, int rank, const int64_t *shape);

/* ---- shape ------------------------------------------------------------- */
/* reshape, transpose and permute also take i32 (they only move values). */
HG_API hg_tensor *hg_broadcast_to(hg_ctx *ctx, hg_tensor *x, int rank, const int64_t *shape);
/* Same element count; one extent may be -1 (inferred). */
HG_API hg_tensor *hg_reshape(hg_ctx *ctx, hg_tensor *x, int rank, const int64_t *shape);
/* 2-D transpose. */
HG_API hg_tensor *hg_transpose(hg_ctx *ctx, hg_tensor *x);
/* General axis permutation: out.shape[i] = x.shape[perm[i]]. */
HG_API hg_tensor *hg_permute(hg_ctx *ctx, hg_tensor *x, const int *perm);

/* ---- softmax family ---------------------------------------------------- */
HG_API hg_tensor *hg_softmax(hg_ctx *ctx, hg_tensor *x, int axis);
HG_API hg_tensor *hg_log_softmax(hg_ctx *ctx, hg_tensor *x, int axis);

/* ---- indices ----------------------------------------------------------- */
/* labels i32 [n] in [0, classes) -> [n, classes] of dtype (constant). */
HG_API hg_tensor *hg_one_hot(hg_ctx *ctx, hg_tensor *labels, int64_t classes, hg_dtype dtype);
/* x [n, c], index i32 [n] -> y [n], y[i] = x[i, index[i]]. */
HG_API hg_tensor *hg_gather(hg_ctx *ctx, hg_tensor *x, hg_tensor *index);

/* ---- dtype ------------------------------------------------------------- */
/* Value conversion; f32<->f64 is differentiable, i32 -> float is a constant. */
HG_API hg_tensor *hg_cast(hg_ctx *ctx, hg_tensor *x, hg_dtype dtype);

#ifdef __cplusplus
}
#endif
#endif
