/* A dense layer as one op: y = x W + b, or relu(x W + b). One node and one
 * output instead of matmul, add (and relu) with their intermediate tensors,
 * so a recorded forward keeps a third of the activations it kept; the vjp is
 * the composed ops' vjps in one place, from the same recorded ops, so values
 * and cotangents are those of the composed form bit for bit. */
#include "../kernels/fused.h"
#include "../kernels/gemm.h"

typedef struct dense_attr {
    int relu;
} dense_attr;

/* x [n,in], W [in,out], b [out], one float dtype (hg_dense checked them and
 * names itself in errors; this rule guards custom callers of the op). */
static hg_status dense_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    (void)attr;
    hg_status s = hg_check_float_same(ctx, "hg_dense", 3, in);
    if (s != HG_OK)
        return s;
    const hg_tensor *x = in[0], *W = in[1], *b = in[2];
    if (x->rank != 2 || W->rank != 2 || b->rank != 1 || x->shape[1] != W->shape[0] || b->shape[0] != W->shape[1] ||
        x->shape[0] > INT32_MAX || W->shape[0] > INT32_MAX || W->shape[1] > INT32_MAX) {
        char a[160], w[160], c[160];
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_dense: expected x [n,in], W [in,out], b [out], got %s, %s, %s",
                           HG_SHAPE(x, a), HG_SHAPE(W, w), HG_SHAPE(b, c));
    }
    out->dtype = x->dtype;
    out->rank = 2;
    out->shape[0] = x->shape[0];
    out->shape[1] = W->shape[1];
    return HG_OK;
}

static hg_status dense_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    hg_tensor *y = out[0];
    hg_kernel_gemm(y, in[0], in[1], false, false, y->shape[0], y->shape[1], in[0]->shape[1], 1.0);
    hg_fused_bias_act(y, in[2], ((const dense_attr *)attr)->relu != 0);
    return HG_OK;
}

/* G' = relu ? relu_mask(y, G) : G (y > 0 exactly where x W + b > 0);
 * dx = G' Wᵀ, dW = xᵀ G', db = sum_to(G', [out]) */
static hg_status dense_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const dense_attr *a = hg_node_attr(node);
    hg_tensor *x = hg_node_input(node, 0), *W = hg_node_input(node, 1), *b = hg_node_input(node, 2);
    hg_tensor *g = a->relu ? hg_relu_mask(ctx, hg_node_output(node, 0), gout[0]) : gout[0];
    if (!g)
        return hg_ctx_status(ctx);
    if (hg_node_needs_grad(node, 2) && !(gin[2] = hg_sum_to_like(ctx, g, b)))
        return hg_ctx_status(ctx);
    if (hg_node_needs_grad(node, 0) && !(gin[0] = hg_product_cotangent(ctx, node, 0, g, W, 0, 1, 1.0)))
        return hg_ctx_status(ctx);
    if (hg_node_needs_grad(node, 1) && !(gin[1] = hg_product_cotangent(ctx, node, 1, x, g, 1, 0, 1.0)))
        return hg_ctx_status(ctx);
    return HG_OK;
}

static const hg_opdef dense_def = {"hg_dense", 3, 1, sizeof(dense_attr), dense_shape, dense_forward, dense_vjp, NULL};

hg_tensor *hg_dense_op(hg_ctx *ctx, hg_tensor *x, hg_tensor *W, hg_tensor *b, bool relu)
{
    dense_attr a = {relu};
    hg_tensor *in[3] = {x, W, b};
    return hg_apply(ctx, &dense_def, in, &a);
}
