/* Dense layers, MLPs, activations and accuracy, built from recorded ops. */
#include "internal.h"

#include <math.h>
#include <string.h>

int hg_mlp_param_count(const hg_mlp *spec)
{
    if (!spec || spec->n_layers < 1 || spec->n_layers > HG_MLP_MAX_LAYERS)
        return -1;
    for (int i = 0; i <= spec->n_layers; i++)
        if (spec->sizes[i] < 1)
            return -1;
    return 2 * spec->n_layers;
}

hg_status hg_mlp_init(hg_ctx *ctx, const hg_mlp *spec, hg_dtype dtype, hg_init init, hg_rng *rng,
                      hg_tensor **params)
{
    if (!ctx)
        return HG_ERR_NULL;
    if (!spec || !rng || !params)
        return hg_set_error(ctx, HG_ERR_NULL, "hg_mlp_init: spec, rng or params is NULL");
    int n = hg_mlp_param_count(spec);
    if (n < 0)
        return hg_set_error(ctx, HG_ERR_INVALID, "hg_mlp_init: invalid MLP spec (1..%d layers, sizes >= 1)",
                            HG_MLP_MAX_LAYERS);
    if (!hg_is_float(dtype))
        return hg_set_error(ctx, HG_ERR_DTYPE, "hg_mlp_init: dtype %s is not f32/f64", hg_dtype_name(dtype));
    for (int i = 0; i < n; i++)
        params[i] = NULL;
    for (int l = 0; l < spec->n_layers; l++) {
        int64_t in = spec->sizes[l], out = spec->sizes[l + 1];
        int64_t wshape[2] = {in, out};
        hg_tensor *W;
        if (init == HG_INIT_GLOROT) {
            double a = sqrt(6.0 / (double)(in + out));
            W = hg_rand_uniform(ctx, rng, dtype, 2, wshape, -a, a);
        } else {
            W = hg_rand_normal(ctx, rng, dtype, 2, wshape, 0.0, sqrt(2.0 / (double)in));
        }
        hg_tensor *b = hg_zeros(ctx, dtype, 1, &out);
        if (!W || !b) {
            for (int i = 0; i < n; i++)
                params[i] = NULL;
            return hg_ctx_status(ctx);
        }
        params[2 * l] = W;
        params[2 * l + 1] = b;
    }
    return HG_OK;
}

hg_tensor *hg_dense(hg_ctx *ctx, hg_tensor *x, hg_tensor *W, hg_tensor *b)
{
    hg_tensor *y = hg_matmul(ctx, x, W);
    return b ? hg_add(ctx, y, b) : y;
}

hg_tensor *hg_activate(hg_ctx *ctx, hg_tensor *x, hg_activation act)
{
    switch (act) {
    case HG_ACT_NONE: return x;
    case HG_ACT_RELU: return hg_relu(ctx, x);
    case HG_ACT_TANH: return hg_tanh(ctx, x);
    case HG_ACT_SIGMOID: return hg_sigmoid(ctx, x);
    }
    if (ctx)
        hg_set_error(ctx, HG_ERR_INVALID, "hg_activate: unknown activation %d", (int)act);
    return NULL;
}

hg_tensor *hg_mlp_forward(hg_ctx *ctx, const hg_mlp *spec, hg_tensor *const *params, hg_tensor *x)
{
    if (!ctx)
        return NULL;
    if (!spec || !params) {
        hg_set_error(ctx, HG_ERR_NULL, "hg_mlp_forward: spec or params is NULL");
        return NULL;
    }
    if (hg_mlp_param_count(spec) < 0) {
        hg_set_error(ctx, HG_ERR_INVALID, "hg_mlp_forward: invalid MLP spec");
        return NULL;
    }
    hg_tensor *h = x;
    for (int l = 0; l < spec->n_layers && h; l++) {
        h = hg_dense(ctx, h, params[2 * l], params[2 * l + 1]);
        if (l + 1 < spec->n_layers)
            h = hg_activate(ctx, h, spec->hidden);
    }
    return h;
}

double hg_accuracy(hg_ctx *ctx, hg_tensor *logits, hg_tensor *labels)
{
    if (!ctx)
        return NAN;
    if (hg_tensor_validate(ctx, logits, "hg_accuracy") != HG_OK ||
        hg_tensor_validate(ctx, labels, "hg_accuracy") != HG_OK)
        return NAN;
    char a[160], b[160];
    if (!hg_is_float(logits->dtype) || labels->dtype != HG_I32 || logits->rank != 2 || labels->rank != 1 ||
        labels->shape[0] != logits->shape[0]) {
        hg_set_error(ctx, logits->rank == 2 && labels->rank == 1 ? HG_ERR_DTYPE : HG_ERR_SHAPE,
                     "hg_accuracy: expected float logits [n,c] and i32 labels [n], got %s %s and %s %s",
                     HG_SHAPE(logits, a), hg_dtype_name(logits->dtype), HG_SHAPE(labels, b),
                     hg_dtype_name(labels->dtype));
        return NAN;
    }
    int64_t n = logits->shape[0], c = logits->shape[1], right = 0;
    if (n == 0)
        return NAN;
    const int32_t *lab = labels->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t best = 0;
        for (int64_t j = 1; j < c; j++) {
            double v = logits->dtype == HG_F32 ? ((const float *)logits->data)[i * c + j]
                                               : ((const double *)logits->data)[i * c + j];
            double w = logits->dtype == HG_F32 ? ((const float *)logits->data)[i * c + best]
                                               : ((const double *)logits->data)[i * c + best];
            if (v > w)
                best = j;
        }
        right += best == lab[i];
    }
    return (double)right / (double)n;
}
