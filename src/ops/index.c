/* Index ops: one_hot (constant), gather (differentiable in x), and the
 * dtype cast (f32 <-> f64 differentiable, i32 -> float a constant, float ->
 * i32 refused with HG_ERR_DTYPE). */
#include "../internal.h"

#include <string.h>

/* ---- one_hot ------------------------------------------------------------ */

typedef struct one_hot_attr {
    int64_t classes;
    hg_dtype dtype;
} one_hot_attr;

static hg_status one_hot_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const one_hot_attr *a = attr;
    char s[160];
    if (in[0]->dtype != HG_I32)
        return hg_op_error(ctx, HG_ERR_DTYPE, "hg_one_hot: labels are %s, expected i32", hg_dtype_name(in[0]->dtype));
    if (in[0]->rank != 1)
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_one_hot: labels must be 1-D, got %s", HG_SHAPE(in[0], s));
    if (a->classes <= 0 || !hg_is_float(a->dtype))
        return hg_op_error(ctx, a->classes <= 0 ? HG_ERR_RANGE : HG_ERR_DTYPE,
                           "hg_one_hot: need classes > 0 (got %lld) and a float dtype", (long long)a->classes);
    out->dtype = a->dtype;
    out->rank = 2;
    out->shape[0] = in[0]->shape[0];
    out->shape[1] = a->classes;
    return HG_OK;
}

/* Check every label of `labels` lies in [0, classes). */
static hg_status check_labels(hg_ctx *ctx, const char *who, const hg_tensor *labels, int64_t classes)
{
    const int32_t *l = labels->data;
    for (int64_t i = 0; i < labels->numel; i++)
        if (l[i] < 0 || l[i] >= classes)
            return hg_op_error(ctx, HG_ERR_RANGE, "%s: index %d at position %lld outside [0, %lld)", who, l[i],
                               (long long)i, (long long)classes);
    return HG_OK;
}

static hg_status one_hot_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    const one_hot_attr *a = attr;
    hg_status s = check_labels(ctx, "hg_one_hot", in[0], a->classes);
    if (s != HG_OK)
        return s;
    hg_tensor *y = out[0];
    memset(y->data, 0, (size_t)y->numel * hg_dtype_size(y->dtype));
    const int32_t *l = in[0]->data;
    for (int64_t i = 0; i < in[0]->numel; i++) {
        if (y->dtype == HG_F32)
            ((float *)y->data)[i * a->classes + l[i]] = 1.0f;
        else
            ((double *)y->data)[i * a->classes + l[i]] = 1.0;
    }
    return HG_OK;
}

static const hg_opdef one_hot_def = {"hg_one_hot", 1, 1, sizeof(one_hot_attr), one_hot_shape, one_hot_forward, NULL,
                                     NULL};

hg_tensor *hg_one_hot(hg_ctx *ctx, hg_tensor *labels, int64_t classes, hg_dtype dtype)
{
    one_hot_attr a = {classes, dtype};
    return hg_apply(ctx, &one_hot_def, &labels, &a);
}

/* ---- gather ------------------------------------------------------------- */

static hg_status gather_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    (void)attr;
    char a[160], b[160];
    if (!hg_is_float(in[0]->dtype) || in[1]->dtype != HG_I32)
        return hg_op_error(ctx, HG_ERR_DTYPE, "hg_gather: expected float x and i32 index, got %s and %s",
                           hg_dtype_name(in[0]->dtype), hg_dtype_name(in[1]->dtype));
    if (in[0]->rank != 2 || in[1]->rank != 1 || in[1]->shape[0] != in[0]->shape[0])
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_gather: expected x [n,c] and index [n], got %s and %s",
                           HG_SHAPE(in[0], a), HG_SHAPE(in[1], b));
    out->dtype = in[0]->dtype;
    out->rank = 1;
    out->shape[0] = in[0]->shape[0];
    return HG_OK;
}

static hg_status gather_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)attr;
    int64_t n = in[0]->shape[0], c = in[0]->shape[1];
    hg_status s = check_labels(ctx, "hg_gather", in[1], c);
    if (s != HG_OK)
        return s;
    const int32_t *idx = in[1]->data;
    for (int64_t i = 0; i < n; i++) {
        if (in[0]->dtype == HG_F32)
            ((float *)out[0]->data)[i] = ((const float *)in[0]->data)[i * c + idx[i]];
        else
            ((double *)out[0]->data)[i] = ((const double *)in[0]->data)[i * c + idx[i]];
    }
    return HG_OK;
}

/* dx = one_hot(index, c) * reshape(g, [n, 1]) */
static hg_status gather_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *x = hg_node_input(node, 0), *idx = hg_node_input(node, 1);
    if (!hg_node_needs_grad(node, 0))
        return HG_OK;
    int64_t col[2] = {x->shape[0], 1};
    gin[0] = hg_mul(ctx, hg_one_hot(ctx, idx, x->shape[1], x->dtype), hg_reshape(ctx, gout[0], 2, col));
    return HG_OK;
}

static const hg_opdef gather_def = {"hg_gather", 2, 1, 0, gather_shape, gather_forward, gather_vjp, NULL};

hg_tensor *hg_gather(hg_ctx *ctx, hg_tensor *x, hg_tensor *index)
{
    hg_tensor *in[2] = {x, index};
    return hg_apply(ctx, &gather_def, in, NULL);
}

/* ---- cast --------------------------------------------------------------- */

static hg_status cast_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const hg_dtype *to = attr;
    if (!hg_is_float(*to))
        return hg_op_error(ctx, HG_ERR_DTYPE, "hg_cast: cannot cast %s to %s (only to f32 or f64)",
                           hg_dtype_name(in[0]->dtype), hg_dtype_name(*to));
    out->dtype = *to;
    out->rank = in[0]->rank;
    memcpy(out->shape, in[0]->shape, sizeof(int64_t) * (size_t)in[0]->rank);
    return HG_OK;
}

#define CAST_LOOP(TO, FROM, y, x, n)                                                                               \
    for (int64_t i = 0; i < (n); i++)                                                                              \
    ((TO *)(y))[i] = (TO)((const FROM *)(x))[i]

static hg_status cast_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    (void)attr;
    const hg_tensor *x = in[0];
    hg_tensor *y = out[0];
    if (x->dtype == y->dtype) {
        memcpy(y->data, x->data, (size_t)x->numel * hg_dtype_size(x->dtype));
    } else if (y->dtype == HG_F32) {
        if (x->dtype == HG_F64)
            CAST_LOOP(float, double, y->data, x->data, x->numel);
        else
            CAST_LOOP(float, int32_t, y->data, x->data, x->numel);
    } else {
        if (x->dtype == HG_F32)
            CAST_LOOP(double, float, y->data, x->data, x->numel);
        else
            CAST_LOOP(double, int32_t, y->data, x->data, x->numel);
    }
    return HG_OK;
}

/* dx = cast(g, dtype(x)) */
static hg_status cast_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *x = hg_node_input(node, 0);
    if (!hg_node_needs_grad(node, 0))
        return HG_OK;
    gin[0] = hg_cast(ctx, gout[0], x->dtype);
    return HG_OK;
}

static const hg_opdef cast_def = {"hg_cast", 1, 1, sizeof(hg_dtype), cast_shape, cast_forward, cast_vjp, NULL};
/* From i32: labels become float constants (no vjp, never recorded). */
static const hg_opdef cast_const_def = {"hg_cast", 1, 1, sizeof(hg_dtype), cast_shape, cast_forward, NULL, NULL};

hg_tensor *hg_cast(hg_ctx *ctx, hg_tensor *x, hg_dtype dtype)
{
    bool from_int = hg_tensor_check(x) == HG_OK && x->dtype == HG_I32;
    return hg_apply(ctx, from_int ? &cast_const_def : &cast_def, &x, &dtype);
}
