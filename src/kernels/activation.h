/* Elementwise kernels of the trigonometric, log1p/expm1, erf and activation
 * ops (src/ops/unary.c), and the axis reductions max/min/argmax/argmin and
 * logsumexp (src/ops/reduce.c). Not installed.
 *
 * Tensors are contiguous row-major and already checked by the op's shape
 * rule; outputs are freshly allocated and never alias an input. f32 is
 * computed with float math, except that sums accumulate in double. */
#ifndef HGRAD_ACTIVATION_H
#define HGRAD_ACTIVATION_H

#include "kernels.h"

extern const hg_unary_kernel hg_unary_sin;
extern const hg_unary_kernel hg_unary_cos;
extern const hg_unary_kernel hg_unary_log1p;
extern const hg_unary_kernel hg_unary_expm1;
extern const hg_unary_kernel hg_unary_erf;
extern const hg_unary_kernel hg_unary_softplus;   /* max(x, 0) + log1p(exp(-|x|)) */
extern const hg_unary_kernel hg_unary_leaky_relu; /* x > 0 ? x : p x (NaN stays NaN) */
extern const hg_unary_kernel hg_unary_elu;        /* x > 0 ? x : p expm1(x) */
extern const hg_unary_kernel hg_unary_gelu;       /* x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) */
extern const hg_unary_kernel hg_unary_gelu_tanh;  /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
extern const hg_unary_kernel hg_unary_silu;       /* x sigmoid(x), stable on both tails */

/* y = min(max(x, lo), hi); NaN stays NaN. */
void hg_kernel_clamp(hg_tensor *y, const hg_tensor *x, double lo, double hi);

/* x viewed as [outer, n, inner] (n: the reduced axis). For each (o, j) the
 * first index k of the largest (is_min: smallest) x[o, k, j]; a NaN counts
 * as the extreme (the first NaN wins, as NumPy). n >= 1. Writes the values
 * into val (x's dtype, [outer, inner] elements) and/or the indices into idx
 * (either may be NULL), and/or, into mask (x's shape and dtype), 1 at that
 * index and 0 elsewhere. */
void hg_kernel_axis_extreme(const hg_tensor *x, int64_t outer, int64_t n, int64_t inner, int is_min, void *val,
                            int32_t *idx, hg_tensor *mask);

/* y[o, j] = log(sum_k exp(x[o, k, j])), computed as m + log(sum exp(x - m))
 * with m the maximum (no overflow); m = +-inf gives m, NaN gives NaN. n = 0
 * gives -inf. */
void hg_kernel_logsumexp(hg_tensor *y, const hg_tensor *x, int64_t outer, int64_t n, int64_t inner);

#endif
