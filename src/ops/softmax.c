/* softmax and log_softmax along one axis, numerically stable. */
#include "../kernels/kernels.h"

#include <math.h>

typedef struct axis_attr {
    int axis; /* resolved, non-negative */
    bool log;
} axis_attr;

static hg_status softmax_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const axis_attr *a = attr;
    const char *name = a->log ? "hg_log_softmax" : "hg_softmax";
    char s[160];
    if (!hg_is_float(in[0]->dtype))
        return hg_op_error(ctx, HG_ERR_DTYPE, "%s: input is %s, expected f32 or f64", name,
                           hg_dtype_name(in[0]->dtype));
    if (a->axis < 0 || a->axis >= in[0]->rank)
        return hg_op_error(ctx, HG_ERR_RANGE, "%s: axis out of range for shape %s", name, HG_SHAPE(in[0], s));
    out->dtype = in[0]->dtype;
    out->rank = in[0]->rank;
    for (int i = 0; i < in[0]->rank; i++)
        out->shape[i] = in[0]->shape[i];
    return HG_OK;
}

/* x viewed as [outer, n, inner]; reduce over n. */
#define DEFINE_SOFTMAX(T, EXP, LOG)                                                                                \
    static void softmax_##T(const T *x, T *y, int64_t outer, int64_t n, int64_t inner, bool log_out)               \
    {                                                                                                              \
        for (int64_t o = 0; o < outer; o++)                                                                        \
            for (int64_t j = 0; j < inner; j++) {                                                                  \
                const T *xr = x + o * n * inner + j;                                                               \
                T *yr = y + o * n * inner + j;                                                                     \
                T mx = xr[0];                                                                                      \
                for (int64_t i = 1; i < n; i++)                                                                    \
                    if (xr[i * inner] > mx)                                                                        \
                        mx = xr[i * inner];                                                                        \
                double total = 0;                                                                                  \
                for (int64_t i = 0; i < n; i++) {                                                                  \
                    T e = EXP(xr[i * inner] - mx);                                                                 \
                    total += e;                                                                                    \
                    if (!log_out)                                                                                  \
                        yr[i * inner] = e;                                                                         \
                }                                                                                                  \
                if (log_out) {                                                                                     \
                    T lse = mx + (T)LOG(total);                                                                    \
                    for (int64_t i = 0; i < n; i++)                                                                \
                        yr[i * inner] = xr[i * inner] - lse;                                                       \
                } else {                                                                                           \
                    T inv = (T)(1.0 / total);                                                                      \
                    for (int64_t i = 0; i < n; i++)                                                                \
                        yr[i * inner] *= inv;                                                                      \
                }                                                                                                  \
            }                                                                                                      \
    }

DEFINE_SOFTMAX(float, expf, log)
DEFINE_SOFTMAX(double, exp, log)

static hg_status softmax_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const axis_attr *a = attr;
    const hg_tensor *x = in[0];
    int64_t outer = 1, inner = 1, n = x->shape[a->axis];
    for (int i = 0; i < a->axis; i++)
        outer *= x->shape[i];
    for (int i = a->axis + 1; i < x->rank; i++)
        inner *= x->shape[i];
    if (n == 0)
        return HG_OK;
    if (x->dtype == HG_F32)
        softmax_float(x->data, out[0]->data, outer, n, inner, a->log);
    else
        softmax_double(x->data, out[0]->data, outer, n, inner, a->log);
    return HG_OK;
}

/* softmax:     dx = y (g - sum_axis(g y, keepdim))
 * log_softmax: dx = g - exp(y) sum_axis(g, keepdim) */
static hg_status softmax_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const axis_attr *a = hg_node_attr(node);
    hg_tensor *y = hg_node_output(node, 0), *g = gout[0];
    if (a->log)
        gin[0] = hg_sub(ctx, g, hg_mul(ctx, hg_exp(ctx, y), hg_sum_axis(ctx, g, a->axis, 1)));
    else
        gin[0] = hg_mul(ctx, y, hg_sub(ctx, g, hg_sum_axis(ctx, hg_mul(ctx, g, y), a->axis, 1)));
    return gin[0] ? HG_OK : hg_ctx_status(ctx);
}

static const hg_opdef softmax_def = {"hg_softmax", 1, 1, sizeof(axis_attr), softmax_shape, softmax_forward,
                                     softmax_vjp, NULL};
static const hg_opdef log_softmax_def = {"hg_log_softmax", 1, 1, sizeof(axis_attr), softmax_shape,
                                         softmax_forward, softmax_vjp, NULL};

static hg_tensor *softmax(hg_ctx *ctx, hg_tensor *x, int axis, bool log)
{
    if (!ctx)
        return NULL;
    const hg_opdef *def = log ? &log_softmax_def : &softmax_def;
    if (hg_tensor_validate(ctx, x, def->name) != HG_OK)
        return NULL;
    axis_attr a = {axis < 0 ? axis + x->rank : axis, log};
    return hg_apply(ctx, def, &x, &a);
}

hg_tensor *hg_softmax(hg_ctx *ctx, hg_tensor *x, int axis)
{
    return softmax(ctx, x, axis, false);
}

hg_tensor *hg_log_softmax(hg_ctx *ctx, hg_tensor *x, int axis)
{
    return softmax(ctx, x, axis, true);
}
