/* Broadcasting elementwise binary ops: add, sub, mul, div, maximum,
 * minimum, where, and the constant comparisons. */
#include "../kernels/kernels.h"

/* Shape rule shared by the binary ops: same float dtype, NumPy broadcast. */
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

/* Cotangent g of a broadcast result, summed down to x's shape. */
static hg_tensor *reduce_to(hg_ctx *ctx, hg_tensor *g, const hg_tensor *x)
{
    if (!g || hg_same_shape(g, x))
        return g;
    return hg_sum_to(ctx, g, x->rank, x->shape);
}

#define DEFINE_BINARY_OP(op, kind, name, vjp_fn)                                                                   \
    static hg_status op##_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)             \
    {                                                                                                              \
        (void)attr;                                                                                                \
        return binary_shape(ctx, name, in, out);                                                                   \
    }                                                                                                              \
    static hg_status op##_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)      \
    {                                                                                                              \
        (void)ctx;                                                                                                 \
        (void)attr;                                                                                                \
        hg_kernel_binary(kind, out[0], in[0], in[1]);                                                              \
        return HG_OK;                                                                                              \
    }                                                                                                              \
    static const hg_opdef op##_def = {name, 2, 1, 0, op##_shape, op##_forward, vjp_fn, NULL};                      \
    hg_tensor *hg_##op(hg_ctx *ctx, hg_tensor *a, hg_tensor *b)                                                    \
    {                                                                                                              \
        hg_tensor *in[2] = {a, b};                                                                                 \
        return hg_apply(ctx, &op##_def, in, NULL);                                                                 \
    }

/* Finish a vjp: status from the ctx if a requested cotangent is missing. */
static hg_status finish(hg_ctx *ctx, const hg_node *node, hg_tensor **gin)
{
    for (int i = 0; i < 2; i++)
        if (hg_node_needs_grad(node, i) && !gin[i])
            return hg_ctx_status(ctx) != HG_OK ? hg_ctx_status(ctx) : HG_ERR_INVALID;
    return HG_OK;
}

/* da = sum_to(g, a), db = sum_to(g, b) */
static hg_status add_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    if (hg_node_needs_grad(node, 0))
        gin[0] = reduce_to(ctx, gout[0], hg_node_input(node, 0));
    if (hg_node_needs_grad(node, 1))
        gin[1] = reduce_to(ctx, gout[0], hg_node_input(node, 1));
    return finish(ctx, node, gin);
}

/* da = sum_to(g, a), db = -sum_to(g, b) */
static hg_status sub_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    if (hg_node_needs_grad(node, 0))
        gin[0] = reduce_to(ctx, gout[0], hg_node_input(node, 0));
    if (hg_node_needs_grad(node, 1))
        gin[1] = hg_neg(ctx, reduce_to(ctx, gout[0], hg_node_input(node, 1)));
    return finish(ctx, node, gin);
}

/* da = sum_to(g * b, a), db = sum_to(g * a, b) */
static hg_status mul_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *a = hg_node_input(node, 0), *b = hg_node_input(node, 1);
    if (hg_node_needs_grad(node, 0))
        gin[0] = reduce_to(ctx, hg_mul(ctx, gout[0], b), a);
    if (hg_node_needs_grad(node, 1))
        gin[1] = reduce_to(ctx, hg_mul(ctx, gout[0], a), b);
    return finish(ctx, node, gin);
}

/* da = sum_to(g / b, a), db = -sum_to(g * y / b, b) */
static hg_status div_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *a = hg_node_input(node, 0), *b = hg_node_input(node, 1), *y = hg_node_output(node, 0);
    hg_tensor *g_over_b = hg_div(ctx, gout[0], b);
    if (hg_node_needs_grad(node, 0))
        gin[0] = reduce_to(ctx, g_over_b, a);
    if (hg_node_needs_grad(node, 1))
        gin[1] = hg_neg(ctx, reduce_to(ctx, hg_mul(ctx, g_over_b, y), b));
    return finish(ctx, node, gin);
}

/* Cotangents split by a constant mask m: da = sum_to(g m, a),
 * db = sum_to(g (1 - m), b). */
static hg_status masked_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *g, hg_tensor *m, hg_tensor *a,
                            hg_tensor *b, int ia, int ib, hg_tensor **gin)
{
    hg_tensor *ga = hg_mul(ctx, g, m);
    if (hg_node_needs_grad(node, ia))
        gin[ia] = reduce_to(ctx, ga, a);
    if (hg_node_needs_grad(node, ib))
        gin[ib] = reduce_to(ctx, hg_sub(ctx, g, ga), b);
    return HG_OK;
}

/* m = (a >= b): da = sum_to(g m, a), db = sum_to(g (1 - m), b) */
static hg_status maximum_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *a = hg_node_input(node, 0), *b = hg_node_input(node, 1);
    masked_vjp(ctx, node, gout[0], hg_greater_equal(ctx, a, b), a, b, 0, 1, gin);
    return finish(ctx, node, gin);
}

/* m = (b >= a) is b's share: da = sum_to(g (1 - m), a), db = sum_to(g m, b);
 * ties go to a. */
static hg_status minimum_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *a = hg_node_input(node, 0), *b = hg_node_input(node, 1);
    masked_vjp(ctx, node, gout[0], hg_greater_equal(ctx, b, a), a, b, 0, 1, gin);
    return finish(ctx, node, gin);
}

DEFINE_BINARY_OP(add, HG_BIN_ADD, "hg_add", add_vjp)
DEFINE_BINARY_OP(sub, HG_BIN_SUB, "hg_sub", sub_vjp)
DEFINE_BINARY_OP(mul, HG_BIN_MUL, "hg_mul", mul_vjp)
DEFINE_BINARY_OP(div, HG_BIN_DIV, "hg_div", div_vjp)
DEFINE_BINARY_OP(maximum, HG_BIN_MAX, "hg_maximum", maximum_vjp)
DEFINE_BINARY_OP(minimum, HG_BIN_MIN, "hg_minimum", minimum_vjp)
/* Comparisons are constants: no vjp. */
DEFINE_BINARY_OP(greater, HG_BIN_GT, "hg_greater", NULL)
DEFINE_BINARY_OP(greater_equal, HG_BIN_GE, "hg_greater_equal", NULL)

/* ---- where(mask, a, b) ------------------------------------------------- */

static hg_status where_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    (void)attr;
    hg_status s = hg_check_float_same(ctx, "hg_where", 3, in);
    if (s != HG_OK)
        return s;
    int r;
    int64_t sh[HG_MAX_RANK];
    char m[160], a[160], b[160];
    if (!hg_broadcast_shapes(in[1]->rank, in[1]->shape, in[2]->rank, in[2]->shape, &r, sh) ||
        !hg_broadcast_shapes(in[0]->rank, in[0]->shape, r, sh, &out->rank, out->shape))
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_where: shapes %s (mask), %s and %s do not broadcast",
                           HG_SHAPE(in[0], m), HG_SHAPE(in[1], a), HG_SHAPE(in[2], b));
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

/* m = (mask != 0): da = sum_to(g m, a), db = sum_to(g (1 - m), b); none for mask */
static hg_status where_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *mask = hg_node_input(node, 0);
    hg_tensor *zero = hg_zeros(ctx, mask->dtype, 0, NULL);
    hg_tensor *m = hg_greater(ctx, hg_abs(ctx, mask), zero);
    masked_vjp(ctx, node, gout[0], m, hg_node_input(node, 1), hg_node_input(node, 2), 1, 2, gin);
    for (int i = 1; i < 3; i++)
        if (hg_node_needs_grad(node, i) && !gin[i])
            return hg_ctx_status(ctx);
    return HG_OK;
}

static const hg_opdef where_def = {"hg_where", 3, 1, 0, where_shape, where_forward, where_vjp, NULL};

hg_tensor *hg_where(hg_ctx *ctx, hg_tensor *mask, hg_tensor *a, hg_tensor *b)
{
    hg_tensor *in[3] = {mask, a, b};
    return hg_apply(ctx, &where_def, in, NULL);
}
