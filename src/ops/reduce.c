/* Reductions. One op, sum_to (sum down to a shape that broadcasts to x's);
 * sum, mean, sum_axis and mean_axis are built from it, hg_scale and
 * hg_reshape, so their derivatives come for free. */
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

/* Resolve a possibly negative axis; error naming `who` if out of range. */
static int resolve_axis(hg_ctx *ctx, const char *who, const hg_tensor *x, int axis)
{
    int r = axis < 0 ? axis + x->rank : axis;
    if (r < 0 || r >= x->rank) {
        char s[160];
        hg_op_error(ctx, HG_ERR_RANGE, "%s: axis %d out of range for shape %s", who, axis, HG_SHAPE(x, s));
        return -1;
    }
    return r;
}

/* sum_to the shape with axis set to 1, then (without keepdim) drop it. A
 * leading axis needs no reshape: [n,m] sums straight to [m]. */
static hg_tensor *sum_axis(hg_ctx *ctx, const char *who, hg_tensor *x, int axis, int keepdim, bool mean)
{
    if (!check_input(ctx, who, x))
        return NULL;
    int ax = resolve_axis(ctx, who, x, axis);
    if (ax < 0)
        return NULL;
    int64_t kept[HG_MAX_RANK], dropped[HG_MAX_RANK];
    int nd = 0;
    for (int i = 0; i < x->rank; i++) {
        kept[i] = i == ax ? 1 : x->shape[i];
        if (i != ax)
            dropped[nd++] = x->shape[i];
    }
    hg_tensor *s;
    if (!keepdim && ax == 0) {
        s = hg_sum_to(ctx, x, nd, dropped);
    } else {
        s = hg_sum_to(ctx, x, x->rank, kept);
        if (!keepdim)
            s = hg_reshape(ctx, s, nd, dropped);
    }
    if (mean)
        s = hg_scale(ctx, s, x->shape[ax] ? 1.0 / (double)x->shape[ax] : NAN);
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
