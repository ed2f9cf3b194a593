/* Reductions. One op, sum_to (sum down to a shape that broadcasts to x's);
 * sum, mean, sum_axis(es) and mean_axis(es) are built from it, hg_scale and
 * hg_reshape, so their derivatives come for free. Along one axis: max/min
 * (vjp through a constant mask of the first extreme), argmax/argmin
 * (constants) and logsumexp (vjp g softmax). */
#include "../kernels/activation.h"
#include "../kernels/layout.h"

#include <math.h>
#include <string.h>

typedef struct shape_attr {
    int rank;
    int64_t shape[HG_MAX_RANK];
} shape_attr;

/* Does `small` broadcast to `big` (so that big can be summed down to it)? */
static bool broadcasts_to(int rs, const int64_t *small, int rb, const int64_t *big)
{
    if (rs > rb)
        return false;
    for (int i = 0; i < rs; i++) {
        int64_t s = small[rs - 1 - i], b = big[rb - 1 - i];
        if (s != b && s != 1)
            return false;
    }
    return true;
}

static hg_status sum_to_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const shape_attr *a = attr;
    char x[160], t[160];
    hg_status s = hg_check_float_same(ctx, "hg_sum_to", 1, in);
    if (s != HG_OK)
        return s;
    if (!broadcasts_to(a->rank, a->shape, in[0]->rank, in[0]->shape))
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_sum_to: cannot sum %s down to %s", HG_SHAPE(in[0], x),
                           hg_shape_str(a->rank, a->shape, t, sizeof t));
    out->dtype = in[0]->dtype;
    out->rank = a->rank;
    if (a->rank)
        memcpy(out->shape, a->shape, sizeof(int64_t) * (size_t)a->rank);
    return HG_OK;
}

static hg_status sum_to_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    (void)attr;
    hg_layout_sum_to(out[0], in[0]);
    return HG_OK;
}

/* dx = broadcast_to(g, shape(x)) */
static hg_status sum_to_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *x = hg_node_input(node, 0);
    if (!hg_node_needs_grad(node, 0))
        return HG_OK;
    gin[0] = hg_broadcast_to(ctx, gout[0], x->rank, x->shape);
    return HG_OK;
}

static const hg_opdef sum_to_def = {
    .name = "hg_sum_to",
    .n_inputs = 1,
    .n_outputs = 1,
    .attr_size = sizeof(shape_attr),
    .shape = sum_to_shape,
    .forward = sum_to_forward,
    .vjp = sum_to_vjp,
};

hg_tensor *hg_sum_to(hg_ctx *ctx, hg_tensor *x, int rank, const int64_t *shape)
{
    if (!ctx)
        return NULL;
    if (rank < 0 || rank > HG_MAX_RANK) {
        hg_op_error(ctx, HG_ERR_SHAPE, "hg_sum_to: target rank %d outside 0..%d", rank, HG_MAX_RANK);
        return NULL;
    }
    if (rank > 0 && !shape) {
        hg_op_error(ctx, HG_ERR_NULL, "hg_sum_to: shape is NULL for rank %d", rank);
        return NULL;
    }
    shape_attr a = {rank, {0}};
    if (rank)
        memcpy(a.shape, shape, sizeof(int64_t) * (size_t)rank);
    return hg_apply(ctx, &sum_to_def, &x, &a);
}

/* Checks shared by the wrappers below: live float tensor of ctx. */
static bool check_input(hg_ctx *ctx, const char *who, hg_tensor *x)
{
    if (!ctx || hg_tensor_validate(ctx, x, who) != HG_OK)
        return false;
    return hg_check_float_same(ctx, who, 1, &x) == HG_OK;
}

hg_tensor *hg_sum(hg_ctx *ctx, hg_tensor *x)
{
    if (!check_input(ctx, "hg_sum", x))
        return NULL;
    return hg_sum_to(ctx, x, 0, NULL);
}

/* mean = sum / numel (NaN for an empty tensor, as in NumPy). */
hg_tensor *hg_mean(hg_ctx *ctx, hg_tensor *x)
{
    if (!check_input(ctx, "hg_mean", x))
        return NULL;
    return hg_scale(ctx, hg_sum(ctx, x), x->numel ? 1.0 / (double)x->numel : NAN);
}

/* Resolve a possibly negative axis; error naming `who` if out of range. A
 * rank-0 x has one pseudo-axis: 0 or -1 resolve to 0. */
static int resolve_axis(hg_ctx *ctx, const char *who, const hg_tensor *x, int axis)
{
    int rank = x->rank ? x->rank : 1;
    int r = axis < 0 ? axis + rank : axis;
    if (r < 0 || r >= rank) {
        char s[160];
        hg_op_error(ctx, HG_ERR_RANGE, "%s: axis %d out of range for shape %s", who, axis, HG_SHAPE(x, s));
        return -1;
    }
    return r;
}

/* Shapes after reducing the axes flagged in `reduce`: kept (extent 1) and
 * dropped; returns the dropped rank. For rank 0 both are rank 0. */
static int reduced_shapes(const hg_tensor *x, const bool *reduce, int64_t *kept, int64_t *dropped)
{
    int nd = 0;
    for (int i = 0; i < x->rank; i++) {
        kept[i] = reduce[i] ? 1 : x->shape[i];
        if (!reduce[i])
            dropped[nd++] = x->shape[i];
    }
    return nd;
}

/* Sum over the flagged axes: sum_to the kept shape, then (without keepdim)
 * drop them. Leading axes need no reshape: [n,m] sums straight to [m]. */
static hg_tensor *sum_flagged(hg_ctx *ctx, hg_tensor *x, const bool *reduce, int keepdim)
{
    int64_t kept[HG_MAX_RANK], dropped[HG_MAX_RANK];
    int nd = reduced_shapes(x, reduce, kept, dropped);
    bool leading = true;
    for (int i = 0, seen_kept = 0; i < x->rank; i++) {
        if (!reduce[i])
            seen_kept = 1;
        else if (seen_kept)
            leading = false;
    }
    if (!keepdim && leading)
        return hg_sum_to(ctx, x, nd, dropped);
    hg_tensor *s = hg_sum_to(ctx, x, x->rank, kept);
    return keepdim ? s : hg_reshape(ctx, s, nd, dropped);
}

static hg_tensor *sum_axis(hg_ctx *ctx, const char *who, hg_tensor *x, int axis, int keepdim, bool mean)
{
    if (!check_input(ctx, who, x))
        return NULL;
    int ax = resolve_axis(ctx, who, x, axis);
    if (ax < 0)
        return NULL;
    bool reduce[HG_MAX_RANK] = {false};
    reduce[ax] = true;
    hg_tensor *s = sum_flagged(ctx, x, reduce, keepdim);
    int64_t n = x->rank ? x->shape[ax] : 1;
    if (mean)
        s = hg_scale(ctx, s, n ? 1.0 / (double)n : NAN);
    return s;
}

hg_tensor *hg_sum_axis(hg_ctx *ctx, hg_tensor *x, int axis, int keepdim)
{
    return sum_axis(ctx, "hg_sum_axis", x, axis, keepdim, false);
}

hg_tensor *hg_mean_axis(hg_ctx *ctx, hg_tensor *x, int axis, int keepdim)
{
    return sum_axis(ctx, "hg_mean_axis", x, axis, keepdim, true);
}

/* ---- sum/mean over a list of axes ------------------------------------- */

static hg_tensor *sum_axes(hg_ctx *ctx, const char *who, hg_tensor *x, int n_axes, const int *axes, int keepdim,
                           bool mean)
{
    if (!check_input(ctx, who, x))
        return NULL;
    if (n_axes < 0 || n_axes > HG_MAX_RANK) {
        hg_op_error(ctx, HG_ERR_RANGE, "%s: %d axes (0..%d)", who, n_axes, HG_MAX_RANK);
        return NULL;
    }
    if (n_axes > 0 && !axes) {
        hg_op_error(ctx, HG_ERR_NULL, "%s: axes is NULL for %d axes", who, n_axes);
        return NULL;
    }
    bool reduce[HG_MAX_RANK] = {false};
    double count = 1;
    for (int k = 0; k < n_axes; k++) {
        int ax = resolve_axis(ctx, who, x, axes[k]);
        if (ax < 0)
            return NULL;
        if (reduce[ax]) {
            char s[160];
            hg_op_error(ctx, HG_ERR_RANGE, "%s: axis %d repeated (axis %d of shape %s)", who, axes[k], ax,
                        HG_SHAPE(x, s));
            return NULL;
        }
        reduce[ax] = true;
        count *= x->rank ? (double)x->shape[ax] : 1.0;
    }
    hg_tensor *s = sum_flagged(ctx, x, reduce, keepdim);
    if (mean)
        s = hg_scale(ctx, s, count != 0.0 ? 1.0 / count : NAN);
    return s;
}

hg_tensor *hg_sum_axes(hg_ctx *ctx, hg_tensor *x, int n_axes, const int *axes, int keepdim)
{
    return sum_axes(ctx, "hg_sum_axes", x, n_axes, axes, keepdim, false);
}

hg_tensor *hg_mean_axes(hg_ctx *ctx, hg_tensor *x, int n_axes, const int *axes, int keepdim)
{
    return sum_axes(ctx, "hg_mean_axes", x, n_axes, axes, keepdim, true);
}

/* ---- along one axis: max, min, argmax, argmin, logsumexp ------------- */

/* Attribute of the axis ops: the resolved axis (0 for rank 0), keepdim. */
typedef struct axis_attr {
    int axis;
    int keepdim;
} axis_attr;

/* x as [outer, n, inner] around axis. */
static void split_at(const hg_tensor *x, int axis, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    *n = x->rank ? x->shape[axis] : 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < axis)
            *outer *= x->shape[i];
        else if (i > axis)
            *inner *= x->shape[i];
    }
}

/* Output shape of an axis op (dtype set by the caller). */
static void axis_out_shape(const hg_tensor *x, const axis_attr *a, hg_out_spec *out)
{
    bool reduce[HG_MAX_RANK] = {false};
    int64_t kept[HG_MAX_RANK], dropped[HG_MAX_RANK];
    if (x->rank)
        reduce[a->axis] = true;
    int nd = reduced_shapes(x, reduce, kept, dropped);
    out->rank = a->keepdim ? x->rank : nd;
    for (int i = 0; i < out->rank; i++)
        out->shape[i] = a->keepdim ? kept[i] : dropped[i];
}

/* Float input, and (for the extremes) a non-empty axis. */
static hg_status axis_shape(hg_ctx *ctx, const char *who, hg_tensor *const *in, const axis_attr *a, bool nonempty,
                            hg_dtype out_dtype, hg_out_spec *out)
{
    hg_status s = hg_check_float_same(ctx, who, 1, in);
    if (s != HG_OK)
        return s;
    if (nonempty && in[0]->rank && in[0]->shape[a->axis] == 0) {
        char x[160];
        return hg_op_error(ctx, HG_ERR_SHAPE, "%s: axis %d of shape %s is empty (no identity element)", who, a->axis,
                           HG_SHAPE(in[0], x));
    }
    out->dtype = out_dtype == HG_I32 ? HG_I32 : in[0]->dtype;
    axis_out_shape(in[0], a, out);
    return HG_OK;
}

/* The cotangent g of a reduced result, reshaped to keep the reduced axis
 * (extent 1) so that it broadcasts against x. */
static hg_tensor *g_keepdim(hg_ctx *ctx, hg_tensor *g, const hg_tensor *x, const axis_attr *a)
{
    if (a->keepdim || x->rank == 0)
        return g;
    int64_t kept[HG_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        kept[i] = i == a->axis ? 1 : x->shape[i];
    return hg_reshape(ctx, g, x->rank, kept);
}

/* The constant 0/1 mask (x's shape and dtype) of the first extreme along
 * the axis: the derivative of max/min, and nothing else (never recorded). */
#define EXTREME_OPS(kind, is_min)                                                                                    \
    static hg_status kind##_mask_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)        \
    {                                                                                                                \
        (void)attr;                                                                                                  \
        hg_status s = hg_check_float_same(ctx, "hg_" #kind "_axis_mask", 1, in);                                     \
        if (s != HG_OK)                                                                                              \
            return s;                                                                                                \
        out->dtype = in[0]->dtype;                                                                                   \
        out->rank = in[0]->rank;                                                                                     \
        for (int i = 0; i < in[0]->rank; i++)                                                                        \
            out->shape[i] = in[0]->shape[i];                                                                         \
        return HG_OK;                                                                                                \
    }                                                                                                                \
    static hg_status kind##_mask_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr) \
    {                                                                                                                \
        (void)ctx;                                                                                                   \
        int64_t outer, n, inner;                                                                                     \
        split_at(in[0], ((const axis_attr *)attr)->axis, &outer, &n, &inner);                                        \
        if (n > 0)                                                                                                   \
            hg_kernel_axis_extreme(in[0], outer, n, inner, is_min, NULL, NULL, out[0]);                              \
        return HG_OK;                                                                                                \
    }                                                                                                                \
    static const hg_opdef kind##_mask_def = {                                                                        \
        "hg_" #kind "_axis_mask", 1, 1, sizeof(axis_attr), kind##_mask_shape, kind##_mask_forward, NULL, NULL};      \
    static hg_status kind##_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)             \
    {                                                                                                                \
        return axis_shape(ctx, "hg_" #kind "_axis", in, attr, true, HG_F64, out);                                    \
    }                                                                                                                \
    static hg_status kind##_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)      \
    {                                                                                                                \
        (void)ctx;                                                                                                   \
        int64_t outer, n, inner;                                                                                     \
        split_at(in[0], ((const axis_attr *)attr)->axis, &outer, &n, &inner);                                        \
        hg_kernel_axis_extreme(in[0], outer, n, inner, is_min, out[0]->data, NULL, NULL);                            \
        return HG_OK;                                                                                                \
    } /* dx = mask(x) * g (g with the axis kept); mask: 1 at the first extreme along the axis, a constant */         \
    static hg_status kind##_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)           \
    {                                                                                                                \
        const axis_attr *a = hg_node_attr(node);                                                                     \
        hg_tensor *x = hg_node_input(node, 0);                                                                       \
        if (!hg_node_needs_grad(node, 0))                                                                            \
            return HG_OK;                                                                                            \
        hg_tensor *mask = hg_apply(ctx, &kind##_mask_def, &x, a);                                                    \
        gin[0] = hg_mul(ctx, mask, g_keepdim(ctx, gout[0], x, a));                                                   \
        return HG_OK;                                                                                                \
    }                                                                                                                \
    static const hg_opdef kind##_def = {"hg_" #kind "_axis", 1,          1,   sizeof(axis_attr), kind##_shape,       \
                                        kind##_forward,      kind##_vjp, NULL};                                      \
    static hg_status arg##kind##_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)        \
    {                                                                                                                \
        return axis_shape(ctx, "hg_arg" #kind, in, attr, true, HG_I32, out);                                         \
    }                                                                                                                \
    static hg_status arg##kind##_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr) \
    {                                                                                                                \
        (void)ctx;                                                                                                   \
        int64_t outer, n, inner;                                                                                     \
        split_at(in[0], ((const axis_attr *)attr)->axis, &outer, &n, &inner);                                        \
        hg_kernel_axis_extreme(in[0], outer, n, inner, is_min, NULL, out[0]->data, NULL);                            \
        return HG_OK;                                                                                                \
    }                                                                                                                \
    static const hg_opdef arg##kind##_def = {"hg_arg" #kind,      1,    1,   sizeof(axis_attr), arg##kind##_shape,   \
                                             arg##kind##_forward, NULL, NULL};

EXTREME_OPS(max, 0)
EXTREME_OPS(min, 1)

static hg_status logsumexp_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    return axis_shape(ctx, "hg_logsumexp", in, attr, false, HG_F64, out);
}

static hg_status logsumexp_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    int64_t outer, n, inner;
    split_at(in[0], ((const axis_attr *)attr)->axis, &outer, &n, &inner);
    hg_kernel_logsumexp(out[0], in[0], outer, n, inner);
    return HG_OK;
}

/* dx = g exp(x - y) (g and y with the axis kept): g softmax(x) */
static hg_status logsumexp_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const axis_attr *a = hg_node_attr(node);
    hg_tensor *x = hg_node_input(node, 0), *y = hg_node_output(node, 0);
    if (!hg_node_needs_grad(node, 0))
        return HG_OK;
    hg_tensor *p = hg_exp(ctx, hg_sub(ctx, x, g_keepdim(ctx, y, x, a)));
    gin[0] = hg_mul(ctx, p, g_keepdim(ctx, gout[0], x, a));
    return HG_OK;
}

static const hg_opdef logsumexp_def = {
    .name = "hg_logsumexp",
    .n_inputs = 1,
    .n_outputs = 1,
    .attr_size = sizeof(axis_attr),
    .shape = logsumexp_shape,
    .forward = logsumexp_forward,
    .vjp = logsumexp_vjp,
};

/* Apply an axis op after resolving the axis (errors name the op). */
static hg_tensor *apply_axis(hg_ctx *ctx, const hg_opdef *def, hg_tensor *x, int axis, int keepdim)
{
    if (!ctx)
        return NULL;
    if (!x) /* hg_apply reports it, keeping an earlier error */
        return hg_apply(ctx, def, &x, &(axis_attr){0, 0});
    if (hg_tensor_validate(ctx, x, def->name) != HG_OK || hg_check_float_same(ctx, def->name, 1, &x) != HG_OK)
        return NULL;
    axis_attr a = {resolve_axis(ctx, def->name, x, axis), keepdim != 0};
    if (a.axis < 0)
        return NULL;
    return hg_apply(ctx, def, &x, &a);
}

hg_tensor *hg_max_axis(hg_ctx *ctx, hg_tensor *x, int axis, int keepdim)
{
    return apply_axis(ctx, &max_def, x, axis, keepdim);
}

hg_tensor *hg_min_axis(hg_ctx *ctx, hg_tensor *x, int axis, int keepdim)
{
    return apply_axis(ctx, &min_def, x, axis, keepdim);
}

hg_tensor *hg_argmax(hg_ctx *ctx, hg_tensor *x, int axis, int keepdim)
{
    return apply_axis(ctx, &argmax_def, x, axis, keepdim);
}

hg_tensor *hg_argmin(hg_ctx *ctx, hg_tensor *x, int axis, int keepdim)
{
    return apply_axis(ctx, &argmin_def, x, axis, keepdim);
}

hg_tensor *hg_logsumexp(hg_ctx *ctx, hg_tensor *x, int axis, int keepdim)
{
    return apply_axis(ctx, &logsumexp_def, x, axis, keepdim);
}
