/* Losses: fused softmax cross-entropy (its own op, differentiable to any
 * order) and mean squared error. */
#include "internal.h"

#include <math.h>

static hg_status ce_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    (void)attr;
    char a[160], b[160];
    if (!hg_is_float(in[0]->dtype) || in[1]->dtype != HG_I32)
        return hg_op_error(ctx, HG_ERR_DTYPE,
                           "hg_softmax_cross_entropy: expected float logits and i32 labels, got %s and %s",
                           hg_dtype_name(in[0]->dtype), hg_dtype_name(in[1]->dtype));
    if (in[0]->rank != 2 || in[1]->rank != 1 || in[1]->shape[0] != in[0]->shape[0] || in[0]->shape[1] < 1)
        return hg_op_error(ctx, HG_ERR_SHAPE,
                           "hg_softmax_cross_entropy: expected logits [n,c] and labels [n], got %s and %s",
                           HG_SHAPE(in[0], a), HG_SHAPE(in[1], b));
    out->dtype = in[0]->dtype;
    out->rank = 1;
    out->shape[0] = in[0]->shape[0];
    return HG_OK;
}

/* loss_i = logsumexp(z_i) - z_i[y_i], with the max subtracted for stability. */
#define DEFINE_CE(T, EXP, LOG)                                                      \
    static void ce_##T(const T *z, const int32_t *y, T *loss, int64_t n, int64_t c) \
    {                                                                               \
        for (int64_t i = 0; i < n; i++) {                                           \
            const T *zi = z + i * c;                                                \
            T mx = zi[0];                                                           \
            for (int64_t j = 1; j < c; j++)                                         \
                mx = zi[j] > mx ? zi[j] : mx;                                       \
            double total = 0;                                                       \
            for (int64_t j = 0; j < c; j++)                                         \
                total += EXP(zi[j] - mx);                                           \
            loss[i] = (T)(mx + LOG(total) - zi[y[i]]);                              \
        }                                                                           \
    }

DEFINE_CE(float, expf, log)
DEFINE_CE(double, exp, log)

static hg_status ce_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)attr;
    int64_t n = in[0]->shape[0], c = in[0]->shape[1];
    const int32_t *y = in[1]->data;
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= c)
            return hg_op_error(ctx, HG_ERR_RANGE,
                               "hg_softmax_cross_entropy: label %d at position %lld outside [0, %lld)", y[i],
                               (long long)i, (long long)c);
    if (in[0]->dtype == HG_F32)
        ce_float(in[0]->data, y, out[0]->data, n, c);
    else
        ce_double(in[0]->data, y, out[0]->data, n, c);
    return HG_OK;
}

/* dz = (softmax(z) - one_hot(y)) * reshape(g, [n, 1]); labels: none */
static hg_status ce_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    if (!hg_node_needs_grad(node, 0))
        return HG_OK;
    hg_tensor *z = hg_node_input(node, 0), *y = hg_node_input(node, 1);
    int64_t col[2] = {z->shape[0], 1};
    hg_tensor *p = hg_softmax(ctx, z, 1);
    hg_tensor *diff = hg_sub(ctx, p, hg_one_hot(ctx, y, z->shape[1], z->dtype));
    gin[0] = hg_mul(ctx, diff, hg_reshape(ctx, gout[0], 2, col));
    return HG_OK;
}

static const hg_opdef ce_def = {
    .name = "hg_softmax_cross_entropy",
    .n_inputs = 2,
    .n_outputs = 1,
    .shape = ce_shape,
    .forward = ce_forward,
    .vjp = ce_vjp,
};

hg_tensor *hg_softmax_cross_entropy_each(hg_ctx *ctx, hg_tensor *logits, hg_tensor *labels)
{
    hg_tensor *in[2] = {logits, labels};
    return hg_apply(ctx, &ce_def, in, NULL);
}

hg_tensor *hg_softmax_cross_entropy(hg_ctx *ctx, hg_tensor *logits, hg_tensor *labels)
{
    return hg_mean(ctx, hg_softmax_cross_entropy_each(ctx, logits, labels));
}

hg_tensor *hg_mse(hg_ctx *ctx, hg_tensor *pred, hg_tensor *target)
{
    if (ctx && pred && target && hg_tensor_check(pred) == HG_OK && hg_tensor_check(target) == HG_OK &&
        !hg_same_shape(pred, target)) {
        char a[160], b[160];
        hg_set_error(ctx, HG_ERR_SHAPE, "hg_mse: prediction %s and target %s differ in shape", HG_SHAPE(pred, a),
                     HG_SHAPE(target, b));
        return NULL;
    }
    hg_tensor *d = hg_sub(ctx, pred, target);
    return hg_mean(ctx, hg_mul(ctx, d, d));
}
