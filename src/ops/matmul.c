/* Matrix product of 2-D tensors with optional transposes (CBLAS). */
#include "../kernels/gemm.h"

typedef struct matmul_attr {
    int trans_a, trans_b;
} matmul_attr;

static hg_status matmul_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const matmul_attr *t = attr;
    hg_status s = hg_check_float_same(ctx, "hg_matmul", 2, in);
    if (s != HG_OK)
        return s;
    char a[160], b[160];
    if (in[0]->rank != 2 || in[1]->rank != 2)
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_matmul: operands must be 2-D, got %s and %s", HG_SHAPE(in[0], a),
                           HG_SHAPE(in[1], b));
    int64_t m = in[0]->shape[t->trans_a ? 1 : 0], ka = in[0]->shape[t->trans_a ? 0 : 1];
    int64_t kb = in[1]->shape[t->trans_b ? 1 : 0], n = in[1]->shape[t->trans_b ? 0 : 1];
    if (ka != kb)
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_matmul: inner dimensions differ: %s%s @ %s%s",
                           HG_SHAPE(in[0], a), t->trans_a ? "^T" : "", HG_SHAPE(in[1], b), t->trans_b ? "^T" : "");
    if (m > INT32_MAX || n > INT32_MAX || ka > INT32_MAX)
        return hg_op_error(ctx, HG_ERR_OVERFLOW, "hg_matmul: dimensions %s and %s exceed the BLAS int range",
                           HG_SHAPE(in[0], a), HG_SHAPE(in[1], b));
    out->dtype = in[0]->dtype;
    out->rank = 2;
    out->shape[0] = m;
    out->shape[1] = n;
    return HG_OK;
}

static hg_status matmul_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const matmul_attr *t = attr;
    int64_t k = in[0]->shape[t->trans_a ? 0 : 1];
    hg_kernel_gemm(out[0], in[0], in[1], t->trans_a, t->trans_b, out[0]->shape[0], out[0]->shape[1], k);
    return HG_OK;
}

/* C = A B:   dA = G B^T,   dB = A^T G
 * C = A^T B: dA = B G^T,   dB = A G
 * C = A B^T: dA = G B,     dB = G^T A
 * C = A^T B^T: dA = B^T G^T, dB = G^T A^T */
static hg_status matmul_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const matmul_attr *t = hg_node_attr(node);
    hg_tensor *a = hg_node_input(node, 0), *b = hg_node_input(node, 1), *g = gout[0];
    if (hg_node_needs_grad(node, 0)) {
        if (!t->trans_a)
            gin[0] = hg_matmul_t(ctx, g, b, 0, !t->trans_b);
        else
            gin[0] = hg_matmul_t(ctx, b, g, t->trans_b, 1);
        if (!gin[0])
            return hg_ctx_status(ctx);
    }
    if (hg_node_needs_grad(node, 1)) {
        if (!t->trans_b)
            gin[1] = hg_matmul_t(ctx, a, g, !t->trans_a, 0);
        else
            gin[1] = hg_matmul_t(ctx, g, a, 1, t->trans_a);
        if (!gin[1])
            return hg_ctx_status(ctx);
    }
    return HG_OK;
}

static const hg_opdef matmul_def = {
    .name = "hg_matmul",
    .n_inputs = 2,
    .n_outputs = 1,
    .attr_size = sizeof(matmul_attr),
    .shape = matmul_shape,
    .forward = matmul_forward,
    .vjp = matmul_vjp,
};

hg_tensor *hg_matmul_t(hg_ctx *ctx, hg_tensor *a, hg_tensor *b, int trans_a, int trans_b)
{
    matmul_attr t = {trans_a != 0, trans_b != 0};
    hg_tensor *in[2] = {a, b};
    return hg_apply(ctx, &matmul_def, in, &t);
}

hg_tensor *hg_matmul(hg_ctx *ctx, hg_tensor *a, hg_tensor *b)
{
    return hg_matmul_t(ctx, a, b, 0, 0);
}
