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
/* a [m,k] @ b [k,n] -> [m,n] (see hg_matmul_backend). */
HG_API hg_tensor *hg_matmul(hg_ctx *ctx, hg_tensor *a, hg_tensor *b);
/* op(a) @ op(b) where op transposes when the flag is nonzero. */
HG_API hg_tensor *hg_matmul_t(hg_ctx *ctx, hg_tensor *a, hg_tensor *b, int trans_a, int trans_b);

/* The backend of matrix products, a static string: "CBLAS", or with the
 * meson feature xsmm (libxsmm found) "libxsmm 1.17 (m*n*k <= 262144) +
 * CBLAS": products of at most 64^3 multiply-adds with alpha 1 and beta 0 run
 * libxsmm's JIT kernels, all others (and any shape libxsmm refuses) CBLAS.
 * The choice depends only on the call, so results are deterministic. */
HG_API const char *hg_matmul_backend(void);

/* One matrix product as the library ran it (row-major C [m,n] = alpha
 * op(A) op(B) + beta C, leading dimensions of the stored matrices), the
 * backend that ran it (0 CBLAS, 1 libxsmm) and its wall time in seconds. */
typedef struct hg_gemm_event {
    hg_dtype dtype;
    int trans_a, trans_b;
    int64_t m, n, k;
    int64_t lda, ldb, ldc;
    double alpha, beta;
    int backend;
    double seconds;
} hg_gemm_event;
typedef void (*hg_gemm_observer)(void *user, const hg_gemm_event *event);
/* Calls fn(user, event) after every matrix product in the process (NULL
 * stops). For tracing and benchmarks: process-wide, so set it while no
 * other thread computes; fn must not call the library. */
HG_API void hg_set_gemm_observer(hg_gemm_observer fn, void *user);

/* ---- reductions -------------------------------------------------------- */
/* Sum/mean of all elements -> rank 0. */
HG_API hg_tensor *hg_sum(hg_ctx *ctx, hg_tensor *x);
HG_API hg_tensor *hg_mean(hg_ctx *ctx, hg_tensor *x);
/* Over one axis (negative counts from the end); keepdim keeps it as 1. A
 * rank-0 x accepts axis 0 or -1 (its one element). */
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

/* ==== layout, batched products, convolution, pooling ==== */

/* ---- concatenation, stacking, slicing ----------------------------------- */
/* Concatenate n >= 1 tensors along axis (negative counts from the end). They
 * share dtype (any, i32 included; floats are differentiable) and rank, and
 * every extent except along axis. Any n: more than HG_MAX_OP_INPUTS inputs
 * become a tree of concats. Errors: HG_ERR_INVALID (n < 1), HG_ERR_NULL,
 * HG_ERR_DTYPE, HG_ERR_SHAPE, HG_ERR_RANGE (axis). */
HG_API hg_tensor *hg_concat(hg_ctx *ctx, int n, hg_tensor *const *xs, int axis);
/* Stack n >= 1 tensors of one shape along a new axis (0..rank; negative
 * counts from the end of the result): reshape each, then hg_concat. */
HG_API hg_tensor *hg_stack(hg_ctx *ctx, int n, hg_tensor *const *xs, int axis);
/* Python/NumPy basic slicing, x[start:stop:step] on every axis. start, stop
 * and step are arrays of rank(x) entries, or NULL for the defaults (0, the
 * extent, 1). Bounds follow Python: negative counts from the end, then
 * clamped to [0, extent], so an empty range gives extent 0 (use
 * HG_SLICE_END for "to the end"). step must be >= 1 (HG_ERR_RANGE). Result
 * is a new contiguous tensor; any dtype (floats are differentiable, the vjp
 * places g into zeros of x's shape). */
#define HG_SLICE_END INT64_MAX
HG_API hg_tensor *hg_slice(hg_ctx *ctx, hg_tensor *x, const int64_t *start, const int64_t *stop, const int64_t *step);
/* x[..., start:stop:step, ...] on one axis; the other axes are whole. */
HG_API hg_tensor *hg_slice_axis(hg_ctx *ctx, hg_tensor *x, int axis, int64_t start, int64_t stop, int64_t step);
/* Exactly `length` elements from `start` along axis, no clamping: a range
 * outside [0, extent] is HG_ERR_RANGE (PyTorch's narrow). */
HG_API hg_tensor *hg_narrow(hg_ctx *ctx, hg_tensor *x, int axis, int64_t start, int64_t length);

/* ---- selection along an axis (indices are i32, in [0, extent)) --------- */
/* y = x with axis replaced by index [k]: y[..., j, ...] = x[..., index[j], ...]
 * (torch.index_select, NumPy take with an axis). x any dtype; index i32 1-D;
 * repeats allowed. An index outside [0, extent) is HG_ERR_RANGE. */
HG_API hg_tensor *hg_index_select(hg_ctx *ctx, hg_tensor *x, int axis, hg_tensor *index);
/* Adjoint of index_select: y = base, then y[..., index[j], ...] +=
 * src[..., j, ...] (repeated indices accumulate). base and src float of one
 * dtype; src is base's shape with index's length along axis. */
HG_API hg_tensor *hg_index_add(hg_ctx *ctx, hg_tensor *base, int axis, hg_tensor *index, hg_tensor *src);
/* Gather along any axis (torch.gather, NumPy take_along_axis): index is i32
 * of x's rank, with x's extents except along axis; y has index's shape and
 * y[i..., j, k...] = x[i..., index[i..., j, k...], k...]. x any dtype. */
HG_API hg_tensor *hg_gather_axis(hg_ctx *ctx, hg_tensor *x, int axis, hg_tensor *index);
/* Adjoint of gather_axis: y = base, then y[i..., index[i.., j, k..], k...]
 * += src[i..., j, k...]; src has index's shape. Float only. */
HG_API hg_tensor *hg_scatter_add(hg_ctx *ctx, hg_tensor *base, int axis, hg_tensor *index, hg_tensor *src);

/* ---- batched matrix product -------------------------------------------- */
/* a [..., m, k] @ b [..., k, n] -> [..., m, n] with op() transposing the
 * last two axes when its flag is set. Both ranks >= 2; the batch axes (all
 * but the last two) broadcast as NumPy does, so a rank-2 operand is shared
 * by every batch. One CBLAS gemm per batch. Errors: HG_ERR_SHAPE (rank < 2,
 * inner extents, batch axes), HG_ERR_DTYPE, HG_ERR_OVERFLOW (BLAS int). */
HG_API hg_tensor *hg_matmul_batched(hg_ctx *ctx, hg_tensor *a, hg_tensor *b, int trans_a, int trans_b);

/* ---- 2-D convolution and pooling (NCHW) ---------------------------------- */
/* Geometry of a convolution; a zero field means its default (stride 1,
 * dilation 1, padding 0). Index 0 is height, 1 width. Negative values are
 * HG_ERR_RANGE. */
typedef struct hg_conv2d_params {
    int stride[2];
    int padding[2]; /* zeros added on both sides */
    int dilation[2];
} hg_conv2d_params;

/* y = conv2d(x, w) + bias: x [N,C,H,W], w [O,C,KH,KW], bias [O] or NULL ->
 * y [N,O,OH,OW] with OH = (H + 2 pad - dil (KH-1) - 1) / stride + 1 (the
 * same for OW), which must be >= 1 (HG_ERR_SHAPE otherwise). Cross-
 * correlation, as in PyTorch. params may be NULL (defaults). Computed by
 * im2col and one CBLAS gemm per sample; scratch comes from ctx's arena. */
HG_API hg_tensor *hg_conv2d(hg_ctx *ctx, hg_tensor *x, hg_tensor *w, hg_tensor *bias, const hg_conv2d_params *params);
/* Transposed convolution (the adjoint of conv2d in x): g [N,O,OH,OW], w
 * [O,C,KH,KW] -> [N,C,out_h,out_w], where conv2d of an [out_h, out_w] input
 * with these params gives [OH, OW] (HG_ERR_SHAPE otherwise). Computed by a
 * gemm and col2im per sample. It is conv2d's vjp in x. */
HG_API hg_tensor *hg_conv2d_transpose(hg_ctx *ctx, hg_tensor *g, hg_tensor *w, int64_t out_h, int64_t out_w,
                                      const hg_conv2d_params *params);
/* The weight gradient of conv2d: x [N,C,H,W], g [N,O,OH,OW] -> [O,C,kh,kw],
 * dw[o,c,i,j] = sum over n and output positions of g * the input under tap
 * (i,j). conv2d's vjp in w. */
HG_API hg_tensor *hg_conv2d_weight_grad(hg_ctx *ctx, hg_tensor *x, hg_tensor *g, int64_t kh, int64_t kw,
                                        const hg_conv2d_params *params);

/* Pooling window: kernel (required, >= 1), stride (0: the kernel),
 * padding (0 .. kernel/2, as PyTorch). */
typedef struct hg_pool2d_params {
    int kernel[2];
    int stride[2];
    int padding[2];
} hg_pool2d_params;

/* Max over each window of x [N,C,H,W] -> [N,C,OH,OW]; padding never wins.
 * The gradient goes to the window's maximum, ties to the first in row-major
 * order; a NaN in a window wins (and propagates). Built from a constant
 * argmax and hg_gather_axis, so it is differentiable to any order. */
HG_API hg_tensor *hg_max_pool2d(hg_ctx *ctx, hg_tensor *x, const hg_pool2d_params *params);
/* Mean over each window, padding counted as zeros in the divisor (PyTorch's
 * count_include_pad=True): a depthwise hg_conv2d with weight 1/(KH KW). */
HG_API hg_tensor *hg_avg_pool2d(hg_ctx *ctx, hg_tensor *x, const hg_pool2d_params *params);

/* ---- dtype ------------------------------------------------------------- */
/* Value conversion; f32<->f64 is differentiable, i32 -> float is a constant. */
HG_API hg_tensor *hg_cast(hg_ctx *ctx, hg_tensor *x, hg_dtype dtype);

/* ==== more elementwise ops and reductions ================================
 * Same rules as above: f32/f64 only (i32 is HG_ERR_DTYPE), the result is a
 * new tensor, every derivative is made of recorded ops (any order), and the
 * formulas are in docs/derivatives.md. */

/* ---- elementwise unary ------------------------------------------------- */
HG_API hg_tensor *hg_sin(hg_ctx *ctx, hg_tensor *x);
HG_API hg_tensor *hg_cos(hg_ctx *ctx, hg_tensor *x);
/* log(1 + x) and exp(x) - 1, accurate near 0. */
HG_API hg_tensor *hg_log1p(hg_ctx *ctx, hg_tensor *x);
HG_API hg_tensor *hg_expm1(hg_ctx *ctx, hg_tensor *x);
/* The error function erf(x) (used by hg_gelu's derivative). */
HG_API hg_tensor *hg_erf(hg_ctx *ctx, hg_tensor *x);
/* log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|): no overflow for large
 * x, no precision loss for very negative x. Derivative sigmoid(x). */
HG_API hg_tensor *hg_softplus(hg_ctx *ctx, hg_tensor *x);
/* min(max(x, lo), hi). lo <= hi, either may be infinite (HG_ERR_RANGE for
 * lo > hi or a NaN bound). Derivative 1 for lo <= x <= hi (bounds included,
 * as PyTorch's clamp; so hg_clamp(x, 0, INFINITY) has derivative 1 at x = 0
 * where hg_relu has 0), 0 outside. NaN stays NaN. */
HG_API hg_tensor *hg_clamp(hg_ctx *ctx, hg_tensor *x, double lo, double hi);
/* x > 0 ? x : alpha x. alpha finite (HG_ERR_RANGE otherwise); derivative at
 * exactly 0 is alpha (so alpha = 0 is hg_relu, whose derivative at 0 is 0).
 * PyTorch's default alpha is 0.01. */
HG_API hg_tensor *hg_leaky_relu(hg_ctx *ctx, hg_tensor *x, double alpha);
/* x > 0 ? x : alpha (e^x - 1). alpha finite; derivative at exactly 0 is
 * alpha (the left one; 1 = both sides for alpha = 1, the usual value). */
HG_API hg_tensor *hg_elu(hg_ctx *ctx, hg_tensor *x, double alpha);
/* GELU, exact (erf) form: x Phi(x) = x (1 + erf(x / sqrt 2)) / 2 (PyTorch's
 * default, approximate='none'). */
HG_API hg_tensor *hg_gelu(hg_ctx *ctx, hg_tensor *x);
/* GELU, tanh approximation: x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2
 * (PyTorch's approximate='tanh', GPT-2, BERT). */
HG_API hg_tensor *hg_gelu_tanh(hg_ctx *ctx, hg_tensor *x);
/* SiLU / swish: x sigmoid(x). */
HG_API hg_tensor *hg_silu(hg_ctx *ctx, hg_tensor *x);

/* ---- reductions over axes ---------------------------------------------- */
/* Axes count from the end when negative. A rank-0 tensor accepts axis 0 or
 * -1 (its one element; the result is rank 0). keepdim keeps reduced axes as
 * extent 1. HG_ERR_RANGE for an axis outside the rank. */

/* Largest/smallest element along axis. Derivative: the cotangent goes to
 * the FIRST index of the extreme (ties), as hg_argmax/hg_argmin say; a NaN
 * counts as the extreme (first NaN wins, as NumPy). An empty axis is
 * HG_ERR_SHAPE (no identity element). */
HG_API hg_tensor *hg_max_axis(hg_ctx *ctx, hg_tensor *x, int axis, int keepdim);
HG_API hg_tensor *hg_min_axis(hg_ctx *ctx, hg_tensor *x, int axis, int keepdim);
/* Index (i32 constant, never recorded) of that element along axis. */
HG_API hg_tensor *hg_argmax(hg_ctx *ctx, hg_tensor *x, int axis, int keepdim);
HG_API hg_tensor *hg_argmin(hg_ctx *ctx, hg_tensor *x, int axis, int keepdim);
/* log(sum(exp(x))) along axis, as m + log(sum(exp(x - m))) with m the
 * maximum: no overflow. Derivative g softmax(x) along axis. Every element
 * -inf (or an empty axis) gives -inf; a +inf gives +inf; NaN gives NaN. */
HG_API hg_tensor *hg_logsumexp(hg_ctx *ctx, hg_tensor *x, int axis, int keepdim);
/* Sum/mean over the n_axes axes listed (distinct after resolving negative
 * ones: a repeated axis is HG_ERR_RANGE; axes NULL with n_axes > 0 is
 * HG_ERR_NULL). n_axes = 0 reduces nothing (a recorded copy, as NumPy's
 * axis=()); use hg_sum/hg_mean for all axes. Mean of an empty selection is
 * NaN. */
HG_API hg_tensor *hg_sum_axes(hg_ctx *ctx, hg_tensor *x, int n_axes, const int *axes, int keepdim);
HG_API hg_tensor *hg_mean_axes(hg_ctx *ctx, hg_tensor *x, int n_axes, const int *axes, int keepdim);

#ifdef __cplusplus
}
#endif
#endif
