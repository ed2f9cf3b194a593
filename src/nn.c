/* Dense layers, MLPs, activations and accuracy, built from recorded ops. */
#include "internal.h"

#include <math.h>
#include <string.h>

int hg_mlp_param_count(const hg_mlp *spec)
{
    if (!spec || spec->n_layers < 1 || spec->n_layers > HG_MLP_MAX_LAYERS)
        return -1;
    if ((unsigned)spec->hidden > HG_ACT_SIGMOID)
        return -1;
    for (int i = 0; i <= spec->n_layers; i++)
        if (spec->sizes[i] < 1)
            return -1;
    return 2 * spec->n_layers;
}

hg_status hg_mlp_init(hg_ctx *ctx, const hg_mlp *spec, hg_dtype dtype, hg_init init, hg_rng *rng, hg_tensor **params)
{
    if (!ctx)
        return HG_ERR_NULL;
    if (!spec || !rng || !params)
        return hg_set_error(ctx, HG_ERR_NULL, "hg_mlp_init: spec, rng or params is NULL");
    int n = hg_mlp_param_count(spec);
    if (n < 0)
        return hg_set_error(ctx, HG_ERR_INVALID,
                            "hg_mlp_init: invalid MLP spec (1..%d layers, sizes >= 1, a known activation)",
                            HG_MLP_MAX_LAYERS);
    if (init != HG_INIT_HE && init != HG_INIT_GLOROT)
        return hg_set_error(ctx, HG_ERR_INVALID, "hg_mlp_init: unknown initialisation %d", (int)init);
    if (!hg_is_float(dtype))
        return hg_set_error(ctx, HG_ERR_DTYPE, "hg_mlp_init: dtype %s is not f32/f64", hg_dtype_name(dtype));
    for (int i = 0; i < n; i++)
        params[i] = NULL;
    for (int l = 0; l < spec->n_layers; l++) {
        int64_t in = spec->sizes[l], out = spec->sizes[l + 1];
        int64_t wshape[2] = {in, out};
        hg_tensor *W;
        if (init == HG_INIT_GLOROT) {
            double a = sqrt(6.0 / ((double)in + (double)out));
            W = hg_rand_uniform(ctx, rng, dtype, 2, wshape, -a, a);
        } else {
            W = hg_rand_normal(ctx, rng, dtype, 2, wshape, 0.0, sqrt(2.0 / (double)in));
        }
        hg_tensor *b = W ? hg_zeros(ctx, dtype, 1, &out) : NULL;
        if (!W || !b) {
            for (int i = 0; i < n; i++)
                params[i] = NULL;
            return hg_ctx_status(ctx) != HG_OK ? hg_ctx_status(ctx) : HG_ERR_OOM;
        }
        params[2 * l] = W;
        params[2 * l + 1] = b;
    }
    return HG_OK;
}

/* x [n, in], W [in, out], b [out] or NULL, one float dtype, all live. */
static hg_status check_dense(hg_ctx *ctx, const char *who, hg_tensor *x, hg_tensor *W, hg_tensor *b)
{
    hg_status s;
    if ((s = hg_tensor_validate(ctx, x, who)) != HG_OK || (s = hg_tensor_validate(ctx, W, who)) != HG_OK ||
        (b && (s = hg_tensor_validate(ctx, b, who)) != HG_OK))
        return s;
    bool shape_ok = x->rank == 2 && W->rank == 2 && x->shape[1] == W->shape[0] &&
                    (!b || (b->rank == 1 && b->shape[0] == W->shape[1]));
    bool dtype_ok = hg_is_float(x->dtype) && W->dtype == x->dtype && (!b || b->dtype == x->dtype);
    if (shape_ok && dtype_ok)
        return HG_OK;
    char a[160], w[160], c[160];
    return hg_set_error(ctx, shape_ok ? HG_ERR_DTYPE : HG_ERR_SHAPE,
                        "%s: expected x [n,in], W [in,out], b [out] of one float dtype, got x %s %s, W %s %s, b %s %s",
                        who, HG_SHAPE(x, a), hg_dtype_name(x->dtype), HG_SHAPE(W, w), hg_dtype_name(W->dtype),
                        b ? HG_SHAPE(b, c) : "(none)", b ? hg_dtype_name(b->dtype) : "");
}

hg_tensor *hg_dense(hg_ctx *ctx, hg_tensor *x, hg_tensor *W, hg_tensor *b)
{
    if (!ctx || check_dense(ctx, "hg_dense", x, W, b) != HG_OK)
        return NULL;
    /* One op (ops/dense.c): the values of hg_add(hg_matmul(x, W), b). */
    return b ? hg_dense_op(ctx, x, W, b, false) : hg_matmul(ctx, x, W);
}

hg_tensor *hg_activate(hg_ctx *ctx, hg_tensor *x, hg_activation act)
{
    switch (act) {
    case HG_ACT_NONE:
        /* Returned as is: still report a NULL or stale input like an op. */
        return ctx && hg_tensor_validate(ctx, x, "hg_activate") == HG_OK ? x : NULL;
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
    /* Each parameter must have the shape the spec gives it (a mismatch that
     * still multiplies, e.g. a wider last layer, would otherwise pass). */
    for (int l = 0; l < spec->n_layers; l++) {
        hg_tensor *W = params[2 * l], *b = params[2 * l + 1];
        if (hg_tensor_validate(ctx, W, "hg_mlp_forward") != HG_OK ||
            hg_tensor_validate(ctx, b, "hg_mlp_forward") != HG_OK)
            return NULL;
        if (W->rank != 2 || W->shape[0] != spec->sizes[l] || W->shape[1] != spec->sizes[l + 1] || b->rank != 1 ||
            b->shape[0] != spec->sizes[l + 1]) {
            char a[160], c[160];
            hg_set_error(ctx, HG_ERR_SHAPE,
                         "hg_mlp_forward: layer %d expects W [%lld,%lld] and b [%lld], got W %s and b %s", l + 1,
                         (long long)spec->sizes[l], (long long)spec->sizes[l + 1], (long long)spec->sizes[l + 1],
                         HG_SHAPE(W, a), HG_SHAPE(b, c));
            return NULL;
        }
    }
    if (!x) {
        /* Keeps an earlier error; without one, a NULL result still says why. */
        hg_set_error(ctx, HG_ERR_NULL, "hg_mlp_forward: x is NULL");
        return NULL;
    }
    hg_tensor *h = x;
    for (int l = 0; l < spec->n_layers && h; l++) {
        bool hidden = l + 1 < spec->n_layers;
        if (hidden && spec->hidden == HG_ACT_RELU) { /* relu(x W + b) as one op */
            if (check_dense(ctx, "hg_mlp_forward", h, params[2 * l], params[2 * l + 1]) != HG_OK)
                return NULL;
            h = hg_dense_op(ctx, h, params[2 * l], params[2 * l + 1], true);
            continue;
        }
        h = hg_dense(ctx, h, params[2 * l], params[2 * l + 1]);
        if (hidden)
            h = hg_activate(ctx, h, spec->hidden);
    }
    return h;
}

/* Number of rows whose first arg-max equals the label (NaN never wins). */
#define DEFINE_RIGHT(T)                                                            \
    static int64_t right_##T(const T *z, const int32_t *lab, int64_t n, int64_t c) \
    {                                                                              \
        int64_t right = 0;                                                         \
        for (int64_t i = 0; i < n; i++) {                                          \
            const T *zi = z + i * c;                                               \
            int64_t best = 0;                                                      \
            for (int64_t j = 1; j < c; j++)                                        \
                if (zi[j] > zi[best])                                              \
                    best = j;                                                      \
            right += best == lab[i];                                               \
        }                                                                          \
        return right;                                                              \
    }

DEFINE_RIGHT(float)
DEFINE_RIGHT(double)

double hg_accuracy(hg_ctx *ctx, hg_tensor *logits, hg_tensor *labels)
{
    if (!ctx)
        return NAN;
    if (hg_tensor_validate(ctx, logits, "hg_accuracy") != HG_OK ||
        hg_tensor_validate(ctx, labels, "hg_accuracy") != HG_OK)
        return NAN;
    char a[160], b[160];
    bool shape_ok = logits->rank == 2 && labels->rank == 1 && labels->shape[0] == logits->shape[0] &&
                    logits->shape[0] > 0 && logits->shape[1] > 0;
    if (!shape_ok || !hg_is_float(logits->dtype) || labels->dtype != HG_I32) {
        hg_set_error(ctx, shape_ok ? HG_ERR_DTYPE : HG_ERR_SHAPE,
                     "hg_accuracy: expected float logits [n,c] and i32 labels [n] with n, c >= 1, got %s %s and %s %s",
                     HG_SHAPE(logits, a), hg_dtype_name(logits->dtype), HG_SHAPE(labels, b),
                     hg_dtype_name(labels->dtype));
        return NAN;
    }
    int64_t n = logits->shape[0], c = logits->shape[1];
    int64_t right = logits->dtype == HG_F32 ? right_float(logits->data, labels->data, n, c)
                                            : right_double(logits->data, labels->data, n, c);
    return (double)right / (double)n;
}
