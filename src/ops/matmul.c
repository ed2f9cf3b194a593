/* Matrix products with optional transposes (CBLAS): 2-D, and batched with
 * NumPy broadcasting over the batch axes (one gemm per batch). */
#include "../kernels/gemm.h"

#include <string.h>

/* alpha scales the product: 1 for hg_matmul_t and hg_matmul_batched; other
 * values only from the sweep (hg_matmul_scaled, hg_matmul_acc). */
typedef struct matmul_attr {
    int trans_a, trans_b;
    double alpha;
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
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_matmul: inner dimensions differ: %s%s @ %s%s", HG_SHAPE(in[0], a),
                           t->trans_a ? "^T" : "", HG_SHAPE(in[1], b), t->trans_b ? "^T" : "");
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
    hg_kernel_gemm(out[0], in[0], in[1], t->trans_a, t->trans_b, out[0]->shape[0], out[0]->shape[1], k, t->alpha);
    return HG_OK;
}

/* Input i's cotangent alpha op(x) op(y), accumulated onto the cotangent
 * the sweep holds for that input when there is one (hg_sweep_take): then
 * one product with beta = 1 (and the sweep's scale for that input folded
 * into alpha), written in place when the sweep owns it. */
hg_tensor *hg_product_cotangent(hg_ctx *ctx, const hg_node *node, int i, hg_tensor *x, hg_tensor *y, int tx, int ty,
                                double alpha)
{
    bool owned;
    double scale = 1;
    hg_tensor *acc = hg_sweep_take(ctx, node, i, &owned, &scale);
    return acc ? hg_matmul_acc(ctx, acc, x, y, tx, ty, scale * alpha, owned)
               : hg_matmul_scaled(ctx, x, y, tx, ty, alpha);
}

/* dA and dB of C = [c +] op(A) op(B) (a, b: inputs ia, ib of the node). */
static hg_status product_vjp(hg_ctx *ctx, const hg_node *node, const matmul_attr *t, int ia, int ib, hg_tensor *g,
                             hg_tensor **gin)
{
    hg_tensor *a = hg_node_input(node, ia), *b = hg_node_input(node, ib);
    double al = t->alpha;
    if (hg_node_needs_grad(node, ia)) {
        if (!t->trans_a)
            gin[ia] = hg_product_cotangent(ctx, node, ia, g, b, 0, !t->trans_b, al);
        else
            gin[ia] = hg_product_cotangent(ctx, node, ia, b, g, t->trans_b, 1, al);
        if (!gin[ia])
            return hg_ctx_status(ctx);
    }
    if (hg_node_needs_grad(node, ib)) {
        if (!t->trans_b)
            gin[ib] = hg_product_cotangent(ctx, node, ib, a, g, !t->trans_a, 0, al);
        else
            gin[ib] = hg_product_cotangent(ctx, node, ib, g, a, 1, t->trans_a, al);
        if (!gin[ib])
            return hg_ctx_status(ctx);
    }
    return HG_OK;
}

/* C = a A B:   dA = a G B^T,   dB = a A^T G
 * C = a A^T B: dA = a B G^T,   dB = a A G
 * C = a A B^T: dA = a G B,     dB = a G^T A
 * C = a A^T B^T: dA = a B^T G^T, dB = a G^T A^T  (a = 1 but in the sweep) */
static hg_status matmul_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    return product_vjp(ctx, node, hg_node_attr(node), 0, 1, gout[0], gin);
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

hg_tensor *hg_matmul_scaled(hg_ctx *ctx, hg_tensor *a, hg_tensor *b, int trans_a, int trans_b, double alpha)
{
    matmul_attr t = {trans_a != 0, trans_b != 0, alpha};
    hg_tensor *in[2] = {a, b};
    return hg_apply(ctx, &matmul_def, in, &t);
}

hg_tensor *hg_matmul_t(hg_ctx *ctx, hg_tensor *a, hg_tensor *b, int trans_a, int trans_b)
{
    return hg_matmul_scaled(ctx, a, b, trans_a, trans_b, 1.0);
}

hg_tensor *hg_matmul(hg_ctx *ctx, hg_tensor *a, hg_tensor *b)
{
    return hg_matmul_t(ctx, a, b, 0, 0);
}

/* ---- accumulating product: y = c + alpha op(a) op(b) --------------------- *
 * The sweep's accumulation of a product cotangent (hg_sweep_take): one gemm
 * with beta = 1 on a copy of c, or on c itself when the sweep owns it (no
 * tape records it). Both give the same bits. With alpha = -lr and c a
 * parameter it is also an SGD step whose gradient is the product
 * (hg_gradient_axpy). */

static hg_status matmul_acc_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    hg_status s = matmul_shape(ctx, in + 1, attr, out);
    if (s != HG_OK)
        return s;
    char a[160];
    if (in[0]->dtype != out->dtype || in[0]->rank != 2 || in[0]->shape[0] != out->shape[0] ||
        in[0]->shape[1] != out->shape[1])
        return hg_op_error(ctx, HG_ERR_SHAPE,
                           "hg_matmul_acc: accumulator %s %s does not match the product [%lld,%lld] %s",
                           HG_SHAPE(in[0], a), hg_dtype_name(in[0]->dtype), (long long)out->shape[0],
                           (long long)out->shape[1], hg_dtype_name(out->dtype));
    return HG_OK;
}

static void acc_product(hg_tensor *c, const hg_tensor *a, const hg_tensor *b, const matmul_attr *t)
{
    int64_t k = a->shape[t->trans_a ? 0 : 1];
    hg_kernel_gemm_acc(c, a, b, t->trans_a, t->trans_b, c->shape[0], c->shape[1], k, t->alpha);
}

static hg_status matmul_acc_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    memcpy(out[0]->data, in[0]->data, (size_t)in[0]->numel * hg_dtype_size(in[0]->dtype));
    acc_product(out[0], in[1], in[2], attr);
    return HG_OK;
}

/* dc = g, and dA, dB as for C = alpha op(A) op(B) (products with alpha) */
static hg_status matmul_acc_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    if (hg_node_needs_grad(node, 0))
        gin[0] = gout[0];
    return product_vjp(ctx, node, hg_node_attr(node), 1, 2, gout[0], gin);
}

static const hg_opdef matmul_acc_def = {
    .name = "hg_matmul_acc",
    .n_inputs = 3,
    .n_outputs = 1,
    .attr_size = sizeof(matmul_attr),
    .shape = matmul_acc_shape,
    .forward = matmul_acc_forward,
    .vjp = matmul_acc_vjp,
};

hg_tensor *hg_matmul_acc(hg_ctx *ctx, hg_tensor *c, hg_tensor *a, hg_tensor *b, int trans_a, int trans_b, double alpha,
                         bool in_place)
{
    matmul_attr t = {trans_a != 0, trans_b != 0, alpha};
    hg_tensor *in[3] = {c, a, b};
    if (!in_place)
        return hg_apply(ctx, &matmul_acc_def, in, &t);
    /* In place (only for a sweep no tape records): the checks of hg_apply,
     * then the product onto c. */
    hg_out_spec spec;
    memset(&spec, 0, sizeof spec);
    for (int i = 0; i < 3; i++)
        if (hg_tensor_validate(ctx, in[i], "hg_matmul_acc") != HG_OK)
            return NULL;
    if (matmul_acc_shape(ctx, in, &t, &spec) != HG_OK)
        return NULL;
    acc_product(c, a, b, &t);
    return c;
}

/* ---- batched: a [..., m, k] @ b [..., k, n], batch axes broadcast ------- */

static hg_status bmm_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const matmul_attr *t = attr;
    hg_status s = hg_check_float_same(ctx, "hg_matmul_batched", 2, in);
    if (s != HG_OK)
        return s;
    char a[160], b[160];
    const hg_tensor *A = in[0], *B = in[1];
    if (A->rank < 2 || B->rank < 2)
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_matmul_batched: operands need rank >= 2, got %s and %s",
                           HG_SHAPE(A, a), HG_SHAPE(B, b));
    int ra = A->rank, rb = B->rank, r;
    int64_t m = A->shape[ra - (t->trans_a ? 1 : 2)], ka = A->shape[ra - (t->trans_a ? 2 : 1)];
    int64_t kb = B->shape[rb - (t->trans_b ? 1 : 2)], n = B->shape[rb - (t->trans_b ? 2 : 1)];
    if (ka != kb)
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_matmul_batched: inner dimensions differ: %s%s @ %s%s", HG_SHAPE(A, a),
                           t->trans_a ? "^T" : "", HG_SHAPE(B, b), t->trans_b ? "^T" : "");
    if (!hg_broadcast_shapes(ra - 2, A->shape, rb - 2, B->shape, &r, out->shape) || r + 2 > HG_MAX_RANK)
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_matmul_batched: batch axes of %s and %s do not broadcast",
                           HG_SHAPE(A, a), HG_SHAPE(B, b));
    if (m > INT32_MAX || n > INT32_MAX || ka > INT32_MAX)
        return hg_op_error(ctx, HG_ERR_OVERFLOW, "hg_matmul_batched: dimensions %s and %s exceed the BLAS int range",
                           HG_SHAPE(A, a), HG_SHAPE(B, b));
    out->dtype = A->dtype;
    out->rank = r + 2;
    out->shape[r] = m;
    out->shape[r + 1] = n;
    return HG_OK;
}

/* Element offset of batch `bi` (row-major over the output's batch axes) in
 * an operand with rank-2 batch axes right-aligned; broadcast axes add 0. */
static int64_t batch_offset(const hg_tensor *t, const hg_tensor *out, int64_t bi)
{
    int rb = out->rank - 2, rt = t->rank - 2;
    int64_t off = 0, stride = t->shape[t->rank - 2] * t->shape[t->rank - 1];
    for (int d = rb - 1; d >= 0; d--) {
        int64_t ext = out->shape[d], i = bi % ext;
        bi /= ext;
        int dt = d - (rb - rt);
        if (dt >= 0) {
            if (t->shape[dt] != 1)
                off += i * stride;
            stride *= t->shape[dt];
        }
    }
    return off;
}

static hg_status bmm_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const matmul_attr *t = attr;
    const hg_tensor *A = in[0], *B = in[1];
    hg_tensor *C = out[0];
    int r = C->rank;
    int64_t m = C->shape[r - 2], n = C->shape[r - 1], k = A->shape[A->rank - (t->trans_a ? 2 : 1)];
    int64_t nb = 1;
    for (int d = 0; d < r - 2; d++)
        nb *= C->shape[d];
    if (C->numel == 0)
        return HG_OK;
    size_t es = hg_dtype_size(C->dtype);
    int64_t lda = t->trans_a ? m : k, ldb = t->trans_b ? k : n;
    for (int64_t bi = 0; bi < nb; bi++)
        hg_kernel_gemm_raw(C->dtype, t->trans_a, t->trans_b, m, n, k, 1.0,
                           (const unsigned char *)A->data + (size_t)batch_offset(A, C, bi) * es, lda,
                           (const unsigned char *)B->data + (size_t)batch_offset(B, C, bi) * es, ldb, 0.0,
                           (unsigned char *)C->data + (size_t)(bi * m * n) * es, n);
    return HG_OK;
}

static hg_tensor *reduce_to(hg_ctx *ctx, hg_tensor *g, const hg_tensor *like)
{
    if (!g || hg_same_shape(g, like))
        return g;
    return hg_sum_to(ctx, g, like->rank, like->shape);
}

/* The 2-D formulas per batch, then sum_to each operand's shape:
 * C = A B: dA = G Bᵀ, dB = Aᵀ G (and the transposed variants as hg_matmul) */
static hg_status bmm_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const matmul_attr *t = hg_node_attr(node);
    hg_tensor *a = hg_node_input(node, 0), *b = hg_node_input(node, 1), *g = gout[0];
    if (hg_node_needs_grad(node, 0)) {
        hg_tensor *d = !t->trans_a ? hg_matmul_batched(ctx, g, b, 0, !t->trans_b)
                                   : hg_matmul_batched(ctx, b, g, t->trans_b, 1);
        if (!(gin[0] = reduce_to(ctx, d, a)))
            return hg_ctx_status(ctx);
    }
    if (hg_node_needs_grad(node, 1)) {
        hg_tensor *d = !t->trans_b ? hg_matmul_batched(ctx, a, g, !t->trans_a, 0)
                                   : hg_matmul_batched(ctx, g, a, 1, t->trans_a);
        if (!(gin[1] = reduce_to(ctx, d, b)))
            return hg_ctx_status(ctx);
    }
    return HG_OK;
}

static const hg_opdef bmm_def = {"hg_matmul_batched", 2, 1, sizeof(matmul_attr), bmm_shape, bmm_forward, bmm_vjp, NULL};

hg_tensor *hg_matmul_batched(hg_ctx *ctx, hg_tensor *a, hg_tensor *b, int trans_a, int trans_b)
{
    matmul_attr t = {trans_a != 0, trans_b != 0, 1.0};
    hg_tensor *in[2] = {a, b};
    return hg_apply(ctx, &bmm_def, in, &t);
}
