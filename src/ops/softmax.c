/* softmax and log_softmax along one axis, numerically stable (the maximum
 * is subtracted before exponentiating; sums accumulate in double). */
#include "../internal.h"

#include <math.h>

typedef struct axis_attr {
    int axis; /* as given: negative counts from the end */
    bool log;
} axis_attr;

static int resolve(int axis, int rank)
{
    return axis < 0 ? axis + rank : axis;
}

static hg_status softmax_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const axis_attr *a = attr;
    const char *name = a->log ? "hg_log_softmax" : "hg_softmax";
    char s[160];
    hg_status st = hg_check_float_same(ctx, name, 1, in);
    if (st != HG_OK)
        return st;
    int ax = resolve(a->axis, in[0]->rank);
    if (ax < 0 || ax >= in[0]->rank)
        return hg_op_error(ctx, HG_ERR_RANGE, "%s: axis %d out of range for shape %s", name, a->axis,
                           HG_SHAPE(in[0], s));
    out->dtype = in[0]->dtype;
    out->rank = in[0]->rank;
    for (int i = 0; i < in[0]->rank; i++)
        out->shape[i] = in[0]->shape[i];
    return HG_OK;
}

/* Columns handled per pass when the axis is not the last one. */
#define SM_BLOCK 256

/* x viewed as [outer, n, inner], reduced over n. With inner == 1 each row is
 * contiguous; otherwise blocks of up to SM_BLOCK columns are swept row by
 * row, so every loop runs over contiguous memory. */
#define DEFINE_SOFTMAX(T, EXP)                                                                            \
    static void softmax_rows_##T(const T *x, T *y, int64_t outer, int64_t n, bool log_out)                \
    {                                                                                                     \
        for (int64_t o = 0; o < outer; o++, x += n, y += n) {                                             \
            T mx = x[0];                                                                                  \
            for (int64_t i = 1; i < n; i++)                                                               \
                mx = x[i] > mx ? x[i] : mx;                                                               \
            double total = 0;                                                                             \
            if (log_out) {                                                                                \
                for (int64_t i = 0; i < n; i++)                                                           \
                    total += EXP(x[i] - mx);                                                              \
                T lse = (T)(mx + log(total));                                                             \
                for (int64_t i = 0; i < n; i++)                                                           \
                    y[i] = x[i] - lse;                                                                    \
            } else {                                                                                      \
                for (int64_t i = 0; i < n; i++) {                                                         \
                    y[i] = EXP(x[i] - mx);                                                                \
                    total += y[i];                                                                        \
                }                                                                                         \
                T inv = (T)(1.0 / total);                                                                 \
                for (int64_t i = 0; i < n; i++)                                                           \
                    y[i] *= inv;                                                                          \
            }                                                                                             \
        }                                                                                                 \
    }                                                                                                     \
    static void softmax_cols_##T(const T *x, T *y, int64_t outer, int64_t n, int64_t inner, bool log_out) \
    {                                                                                                     \
        T mx[SM_BLOCK];                                                                                   \
        double total[SM_BLOCK];                                                                           \
        for (int64_t o = 0; o < outer; o++)                                                               \
            for (int64_t j0 = 0; j0 < inner; j0 += SM_BLOCK) {                                            \
                int64_t nb = inner - j0 < SM_BLOCK ? inner - j0 : SM_BLOCK;                               \
                const T *xb = x + o * n * inner + j0;                                                     \
                T *yb = y + o * n * inner + j0;                                                           \
                for (int64_t j = 0; j < nb; j++) {                                                        \
                    mx[j] = xb[j];                                                                        \
                    total[j] = 0;                                                                         \
                }                                                                                         \
                for (int64_t i = 1; i < n; i++)                                                           \
                    for (int64_t j = 0; j < nb; j++)                                                      \
                        mx[j] = xb[i * inner + j] > mx[j] ? xb[i * inner + j] : mx[j];                    \
                for (int64_t i = 0; i < n; i++)                                                           \
                    for (int64_t j = 0; j < nb; j++) {                                                    \
                        T e = EXP(xb[i * inner + j] - mx[j]);                                             \
                        total[j] += e;                                                                    \
                        if (!log_out)                                                                     \
                            yb[i * inner + j] = e;                                                        \
                    }                                                                                     \
                for (int64_t j = 0; j < nb; j++)                                                          \
                    total[j] = log_out ? mx[j] + log(total[j]) : 1.0 / total[j];                          \
                for (int64_t i = 0; i < n; i++)                                                           \
                    for (int64_t j = 0; j < nb; j++) {                                                    \
                        if (log_out)                                                                      \
                            yb[i * inner + j] = xb[i * inner + j] - (T)total[j];                          \
                        else                                                                              \
                            yb[i * inner + j] *= (T)total[j];                                             \
                    }                                                                                     \
            }                                                                                             \
    }

DEFINE_SOFTMAX(float, expf)
DEFINE_SOFTMAX(double, exp)

static hg_status softmax_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const axis_attr *a = attr;
    const hg_tensor *x = in[0];
    int ax = resolve(a->axis, x->rank);
    int64_t outer = 1, inner = 1, n = x->shape[ax];
    for (int i = 0; i < ax; i++)
        outer *= x->shape[i];
    for (int i = ax + 1; i < x->rank; i++)
        inner *= x->shape[i];
    if (x->numel == 0)
        return HG_OK;
    if (inner == 1) {
        if (x->dtype == HG_F32)
            softmax_rows_float(x->data, out[0]->data, outer, n, a->log);
        else
            softmax_rows_double(x->data, out[0]->data, outer, n, a->log);
    } else {
        if (x->dtype == HG_F32)
            softmax_cols_float(x->data, out[0]->data, outer, n, inner, a->log);
        else
            softmax_cols_double(x->data, out[0]->data, outer, n, inner, a->log);
    }
    return HG_OK;
}

/* softmax:     dx = y * (g - sum_axis(g * y, keepdim))
 * log_softmax: dx = g - exp(y) * sum_axis(g, keepdim) */
static hg_status softmax_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const axis_attr *a = hg_node_attr(node);
    hg_tensor *y = hg_node_output(node, 0), *g = gout[0];
    if (!hg_node_needs_grad(node, 0))
        return HG_OK;
    if (a->log)
        gin[0] = hg_sub(ctx, g, hg_mul(ctx, hg_exp(ctx, y), hg_sum_axis(ctx, g, a->axis, 1)));
    else
        gin[0] = hg_mul(ctx, y, hg_sub(ctx, g, hg_sum_axis(ctx, hg_mul(ctx, g, y), a->axis, 1)));
    return HG_OK;
}

static const hg_opdef softmax_def = {
    .name = "hg_softmax",
    .n_inputs = 1,
    .n_outputs = 1,
    .attr_size = sizeof(axis_attr),
    .shape = softmax_shape,
    .forward = softmax_forward,
    .vjp = softmax_vjp,
};

static const hg_opdef log_softmax_def = {
    .name = "hg_log_softmax",
    .n_inputs = 1,
    .n_outputs = 1,
    .attr_size = sizeof(axis_attr),
    .shape = softmax_shape,
    .forward = softmax_forward,
    .vjp = softmax_vjp,
};

hg_tensor *hg_softmax(hg_ctx *ctx, hg_tensor *x, int axis)
{
    axis_attr a = {axis, false};
    return hg_apply(ctx, &softmax_def, &x, &a);
}

hg_tensor *hg_log_softmax(hg_ctx *ctx, hg_tensor *x, int axis)
{
    axis_attr a = {axis, true};
    return hg_apply(ctx, &log_softmax_def, &x, &a);
}
