/* Broadcasting elementwise binary ops: add, sub, mul, div, maximum, minimum,
 * where, and the constant comparisons greater and greater_equal. Each op is
 * an hg_opdef applied with hg_apply; every vjp is built from recorded hg_*
 * ops, so it can be differentiated again. */
#include "../kernels/kernels.h"

/* Shape rule shared by the binary ops: one float dtype, NumPy broadcast. */
static hg_status binary_shape(hg_ctx *ctx, const char *name, hg_tensor *const *in, hg_out_spec *out)
{
    hg_status s = hg_check_float_same(ctx, name, 2, in);
    if (s != HG_OK)
        return s;
    if (!hg_broadcast_shapes(in[0]->rank, in[0]->shape, in[1]->rank, in[1]->shape, &out->rank, out->shape)) {
        char a[160], b[160];
        return hg_op_error(ctx, HG_ERR_SHAPE, "%s: shapes %s and %s do not broadcast", name, HG_SHAPE(in[0], a),
                           HG_SHAPE(in[1], b));
    }
    out->dtype = in[0]->dtype;
    return HG_OK;
}

/* Cotangent g of a broadcast result summed down to x's shape (no op when
 * the shapes already match). */
static hg_tensor *sum_to_input(hg_ctx *ctx, hg_tensor *g, const hg_tensor *x)
{
    return hg_sum_to_like(ctx, g, x);
}

/* Rank-0 constant of x's dtype. */
static hg_tensor *constant(hg_ctx *ctx, const hg_tensor *x, double value)
{
    return hg_scalar(ctx, x->dtype, value);
}

/* Cotangents split by a mask (nonzero: a's share, as where's forward reads
 * it): ga = where(mask, g, 0) summed to a, gb = where(mask, 0, g) summed to b.
 * ia, ib are the input positions of a and b in the node. */
static void split_by_mask(hg_ctx *ctx, const hg_node *node, hg_tensor *g, hg_tensor *mask, int ia, int ib,
                          hg_tensor **gin)
{
    hg_tensor *zero = constant(ctx, g, 0.0);
    if (hg_node_needs_grad(node, ia))
        gin[ia] = sum_to_input(ctx, hg_where(ctx, mask, g, zero), hg_node_input(node, ia));
    if (hg_node_needs_grad(node, ib))
        gin[ib] = sum_to_input(ctx, hg_where(ctx, mask, zero, g), hg_node_input(node, ib));
}

/* da = sum_to(g, a), db = sum_to(g, b) */
static hg_status add_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    if (hg_node_needs_grad(node, 0))
        gin[0] = sum_to_input(ctx, gout[0], hg_node_input(node, 0));
    if (hg_node_needs_grad(node, 1))
        gin[1] = sum_to_input(ctx, gout[0], hg_node_input(node, 1));
    return HG_OK;
}

/* da = sum_to(g, a), db = -sum_to(g, b) */
static hg_status sub_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    if (hg_node_needs_grad(node, 0))
        gin[0] = sum_to_input(ctx, gout[0], hg_node_input(node, 0));
    if (hg_node_needs_grad(node, 1))
        gin[1] = hg_neg(ctx, sum_to_input(ctx, gout[0], hg_node_input(node, 1)));
    return HG_OK;
}

/* da = sum_to(g * b, a), db = sum_to(g * a, b) */
static hg_status mul_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *a = hg_node_input(node, 0), *b = hg_node_input(node, 1);
    if (hg_node_needs_grad(node, 0))
        gin[0] = sum_to_input(ctx, hg_mul(ctx, gout[0], b), a);
    if (hg_node_needs_grad(node, 1))
        gin[1] = sum_to_input(ctx, hg_mul(ctx, gout[0], a), b);
    return HG_OK;
}

/* da = sum_to(g / b, a), db = -sum_to(g / b * y, b) with y = a / b */
static hg_status div_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *a = hg_node_input(node, 0), *b = hg_node_input(node, 1), *y = hg_node_output(node, 0);
    hg_tensor *g_over_b = hg_div(ctx, gout[0], b);
    if (hg_node_needs_grad(node, 0))
        gin[0] = sum_to_input(ctx, g_over_b, a);
    if (hg_node_needs_grad(node, 1))
        gin[1] = hg_neg(ctx, sum_to_input(ctx, hg_mul(ctx, g_over_b, y), b));
    return HG_OK;
}

/* m = (a >= b), ties to a: da = sum_to(where(m, g, 0), a), db = sum_to(where(m, 0, g), b) */
static hg_status maximum_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *m = hg_greater_equal(ctx, hg_node_input(node, 0), hg_node_input(node, 1));
    split_by_mask(ctx, node, gout[0], m, 0, 1, gin);
    return HG_OK;
}

/* m = (a > b), ties to a: da = sum_to(where(m, 0, g), a), db = sum_to(where(m, g, 0), b) */
static hg_status minimum_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *m = hg_greater(ctx, hg_node_input(node, 0), hg_node_input(node, 1));
    split_by_mask(ctx, node, gout[0], m, 1, 0, gin);
    return HG_OK;
}

/* One hg_opdef and public call per binary op; vjp NULL makes it a constant. */
#define DEFINE_BINARY_OP(op, vjp_fn)                                                                          \
    static hg_status op##_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)        \
    {                                                                                                         \
        (void)attr;                                                                                           \
        return binary_shape(ctx, "hg_" #op, in, out);                                                         \
    }                                                                                                         \
    static hg_status op##_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr) \
    {                                                                                                         \
        (void)ctx;                                                                                            \
        (void)attr;                                                                                           \
        hg_kernel_binary(&hg_binary_##op, out[0], in[0], in[1]);                                              \
        return HG_OK;                                                                                         \
    }                                                                                                         \
    static const hg_opdef op##_def = {"hg_" #op, 2, 1, 0, op##_shape, op##_forward, vjp_fn, NULL};            \
    hg_tensor *hg_##op(hg_ctx *ctx, hg_tensor *a, hg_tensor *b)                                               \
    {                                                                                                         \
        hg_tensor *in[2] = {a, b};                                                                            \
        return ctx ? hg_apply(ctx, &op##_def, in, NULL) : NULL;                                               \
    }

DEFINE_BINARY_OP(add, add_vjp)
DEFINE_BINARY_OP(sub, sub_vjp)
DEFINE_BINARY_OP(mul, mul_vjp)
DEFINE_BINARY_OP(div, div_vjp)
DEFINE_BINARY_OP(maximum, maximum_vjp)
DEFINE_BINARY_OP(minimum, minimum_vjp)
/* Comparisons give constant 0/1 masks: no vjp, nothing recorded. */
DEFINE_BINARY_OP(greater, NULL)
DEFINE_BINARY_OP(greater_equal, NULL)

/* ---- where(mask, a, b) ------------------------------------------------- */

static hg_status where_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    (void)attr;
    hg_status s = hg_check_float_same(ctx, "hg_where", 3, in);
    if (s != HG_OK)
        return s;
    int rank;
    int64_t shape[HG_MAX_RANK];
    if (!hg_broadcast_shapes(in[1]->rank, in[1]->shape, in[2]->rank, in[2]->shape, &rank, shape) ||
        !hg_broadcast_shapes(in[0]->rank, in[0]->shape, rank, shape, &out->rank, out->shape)) {
        char m[160], a[160], b[160];
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_where: shapes %s (mask), %s and %s do not broadcast",
                           HG_SHAPE(in[0], m), HG_SHAPE(in[1], a), HG_SHAPE(in[2], b));
    }
    out->dtype = in[1]->dtype;
    return HG_OK;
}

static hg_status where_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    (void)attr;
    hg_kernel_where(out[0], in[0], in[1], in[2]);
    return HG_OK;
}

/* da = sum_to(where(mask, g, 0), a), db = sum_to(where(mask, 0, g), b); none for mask */
static hg_status where_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    split_by_mask(ctx, node, gout[0], hg_node_input(node, 0), 1, 2, gin);
    gin[0] = NULL; /* the mask is not differentiable: zero cotangent */
    return HG_OK;
}

static const hg_opdef where_def = {"hg_where", 3, 1, 0, where_shape, where_forward, where_vjp, NULL};

hg_tensor *hg_where(hg_ctx *ctx, hg_tensor *mask, hg_tensor *a, hg_tensor *b)
{
    hg_tensor *in[3] = {mask, a, b};
    return ctx ? hg_apply(ctx, &where_def, in, NULL) : NULL;
}
