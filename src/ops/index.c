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

static const hg_opdef one_hot_def = {"hg_one_hot",    1,    1,   sizeof(one_hot_attr), one_hot_shape,
                                     one_hot_forward, NULL, NULL};

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

#define CAST_LOOP(TO, FROM, y, x, n)  \
    for (int64_t i = 0; i < (n); i++) \
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

/* ---- index_select / index_add, gather_axis / scatter_add ---------------
 * Along one axis of x, with outer = product of the extents before it, n its
 * extent and inner the product after it. index_select and gather_axis move
 * values of any dtype; index_add and scatter_add are float only. Each pair
 * is the other's vjp, so both are differentiable to any order. */

typedef struct axis_attr {
    int axis;  /* normalised by the public call */
    int given; /* as the caller gave it, for messages */
} axis_attr;

static int64_t prod(const int64_t *s, int from, int to)
{
    int64_t p = 1;
    for (int d = from; d < to; d++)
        p *= s[d];
    return p;
}

static hg_status axis_ok(hg_ctx *ctx, const char *who, const hg_tensor *x, const void *attr)
{
    const axis_attr *a = attr;
    char s[160];
    if (a->axis < 0 || a->axis >= x->rank)
        return hg_op_error(ctx, HG_ERR_RANGE, "%s: axis %d outside the rank of %s", who, a->given, HG_SHAPE(x, s));
    return HG_OK;
}

/* in: x, index (i32 [k]) */
static hg_status index_select_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    int axis = ((const axis_attr *)attr)->axis;
    char a[160], b[160];
    hg_status s = axis_ok(ctx, "hg_index_select", in[0], attr);
    if (s != HG_OK)
        return s;
    if (in[1]->dtype != HG_I32)
        return hg_op_error(ctx, HG_ERR_DTYPE, "hg_index_select: index is %s, expected i32",
                           hg_dtype_name(in[1]->dtype));
    if (in[1]->rank != 1)
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_index_select: index must be 1-D, got %s (x %s)", HG_SHAPE(in[1], b),
                           HG_SHAPE(in[0], a));
    out->dtype = in[0]->dtype;
    out->rank = in[0]->rank;
    memcpy(out->shape, in[0]->shape, sizeof(int64_t) * (size_t)in[0]->rank);
    out->shape[axis] = in[1]->shape[0];
    return HG_OK;
}

static hg_status index_select_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    int axis = ((const axis_attr *)attr)->axis;
    const hg_tensor *x = in[0];
    int64_t n = x->shape[axis];
    hg_status s = check_labels(ctx, "hg_index_select", in[1], n);
    if (s != HG_OK)
        return s;
    int64_t outer = prod(x->shape, 0, axis), inner = prod(x->shape, axis + 1, x->rank), k = in[1]->shape[0];
    size_t es = hg_dtype_size(x->dtype), row = (size_t)inner * es;
    const int32_t *idx = in[1]->data;
    const unsigned char *src = x->data;
    unsigned char *dst = out[0]->data;
    if (row == 0)
        return HG_OK;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < k; j++)
            memcpy(dst + (size_t)(o * k + j) * row, src + (size_t)(o * n + idx[j]) * row, row);
    return HG_OK;
}

/* in: base, index (i32 [k]), src */
static hg_status index_add_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    int axis = ((const axis_attr *)attr)->axis;
    char a[160], b[160], c[160];
    hg_tensor *two[2] = {in[0], in[2]};
    hg_status s = hg_check_float_same(ctx, "hg_index_add", 2, two);
    if (s != HG_OK || (s = axis_ok(ctx, "hg_index_add", in[0], attr)) != HG_OK)
        return s;
    if (in[1]->dtype != HG_I32)
        return hg_op_error(ctx, HG_ERR_DTYPE, "hg_index_add: index is %s, expected i32", hg_dtype_name(in[1]->dtype));
    bool ok = in[1]->rank == 1 && in[2]->rank == in[0]->rank;
    for (int d = 0; ok && d < in[0]->rank; d++)
        ok = in[2]->shape[d] == (d == axis ? in[1]->shape[0] : in[0]->shape[d]);
    if (!ok)
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_index_add: base %s, index %s and src %s do not fit along axis %d",
                           HG_SHAPE(in[0], a), HG_SHAPE(in[1], b), HG_SHAPE(in[2], c), axis);
    out->dtype = in[0]->dtype;
    out->rank = in[0]->rank;
    memcpy(out->shape, in[0]->shape, sizeof(int64_t) * (size_t)in[0]->rank);
    return HG_OK;
}

#define INDEX_ADD_LOOP(T)                                         \
    for (int64_t o = 0; o < outer; o++)                           \
        for (int64_t j = 0; j < k; j++) {                         \
            T *d = (T *)y + (o * n + idx[j]) * inner;             \
            const T *from = (const T *)src + (o * k + j) * inner; \
            for (int64_t i = 0; i < inner; i++)                   \
                d[i] += from[i];                                  \
        }

static hg_status index_add_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    int axis = ((const axis_attr *)attr)->axis;
    const hg_tensor *b = in[0];
    int64_t n = b->shape[axis];
    hg_status s = check_labels(ctx, "hg_index_add", in[1], n);
    if (s != HG_OK)
        return s;
    int64_t outer = prod(b->shape, 0, axis), inner = prod(b->shape, axis + 1, b->rank), k = in[1]->shape[0];
    if (b->numel)
        memcpy(out[0]->data, b->data, (size_t)b->numel * hg_dtype_size(b->dtype));
    const int32_t *idx = in[1]->data;
    void *y = out[0]->data;
    const void *src = in[2]->data;
    if (b->dtype == HG_F32) {
        INDEX_ADD_LOOP(float)
    } else {
        INDEX_ADD_LOOP(double)
    }
    return HG_OK;
}

/* dx = index_add(zeros(shape(x)), axis, index, g) */
static hg_status index_select_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *x = hg_node_input(node, 0), *idx = hg_node_input(node, 1);
    int axis = ((const axis_attr *)hg_node_attr(node))->axis;
    if (hg_node_needs_grad(node, 0) && !(gin[0] = hg_index_add(ctx, hg_zeros_like(ctx, x), axis, idx, gout[0])))
        return hg_ctx_status(ctx);
    return HG_OK;
}

/* dbase = g, dsrc = index_select(g, axis, index) */
static hg_status index_add_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *idx = hg_node_input(node, 1);
    int axis = ((const axis_attr *)hg_node_attr(node))->axis;
    if (hg_node_needs_grad(node, 0) && !(gin[0] = hg_identity(ctx, gout[0])))
        return hg_ctx_status(ctx);
    if (hg_node_needs_grad(node, 2) && !(gin[2] = hg_index_select(ctx, gout[0], axis, idx)))
        return hg_ctx_status(ctx);
    return HG_OK;
}

static const hg_opdef index_select_def = {
    "hg_index_select", 2, 1, sizeof(axis_attr), index_select_shape, index_select_forward, index_select_vjp, NULL};
static const hg_opdef index_add_def = {"hg_index_add", 3,   1, sizeof(axis_attr), index_add_shape, index_add_forward,
                                       index_add_vjp,  NULL};

/* in: x, index (i32, x's rank; the extents of x except along axis) */
static hg_status gather_axis_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    int axis = ((const axis_attr *)attr)->axis;
    char a[160], b[160];
    hg_status s = axis_ok(ctx, "hg_gather_axis", in[0], attr);
    if (s != HG_OK)
        return s;
    if (in[1]->dtype != HG_I32)
        return hg_op_error(ctx, HG_ERR_DTYPE, "hg_gather_axis: index is %s, expected i32", hg_dtype_name(in[1]->dtype));
    bool ok = in[1]->rank == in[0]->rank;
    for (int d = 0; ok && d < in[0]->rank; d++)
        ok = d == axis || in[1]->shape[d] == in[0]->shape[d];
    if (!ok)
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_gather_axis: index %s must match x %s except along axis %d",
                           HG_SHAPE(in[1], b), HG_SHAPE(in[0], a), axis);
    out->dtype = in[0]->dtype;
    out->rank = in[1]->rank;
    memcpy(out->shape, in[1]->shape, sizeof(int64_t) * (size_t)in[1]->rank);
    return HG_OK;
}

static hg_status gather_axis_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    int axis = ((const axis_attr *)attr)->axis;
    const hg_tensor *x = in[0], *ix = in[1];
    int64_t n = x->shape[axis];
    hg_status s = check_labels(ctx, "hg_gather_axis", ix, n);
    if (s != HG_OK)
        return s;
    int64_t outer = prod(x->shape, 0, axis), inner = prod(x->shape, axis + 1, x->rank), k = ix->shape[axis];
    const int32_t *idx = ix->data;
    size_t es = hg_dtype_size(x->dtype);
    const unsigned char *src = x->data;
    unsigned char *dst = out[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < k; j++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t p = (o * k + j) * inner + i;
                memcpy(dst + (size_t)p * es, src + (size_t)((o * n + idx[p]) * inner + i) * es, es);
            }
    return HG_OK;
}

/* in: base, index (i32), src (index's shape) */
static hg_status scatter_add_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    int axis = ((const axis_attr *)attr)->axis;
    char a[160], b[160], c[160];
    hg_tensor *two[2] = {in[0], in[2]};
    hg_status s = hg_check_float_same(ctx, "hg_scatter_add", 2, two);
    if (s != HG_OK || (s = axis_ok(ctx, "hg_scatter_add", in[0], attr)) != HG_OK)
        return s;
    if (in[1]->dtype != HG_I32)
        return hg_op_error(ctx, HG_ERR_DTYPE, "hg_scatter_add: index is %s, expected i32", hg_dtype_name(in[1]->dtype));
    bool ok = in[1]->rank == in[0]->rank && hg_same_shape(in[1], in[2]);
    for (int d = 0; ok && d < in[0]->rank; d++)
        ok = d == axis || in[1]->shape[d] == in[0]->shape[d];
    if (!ok)
        return hg_op_error(ctx, HG_ERR_SHAPE,
                           "hg_scatter_add: base %s, index %s and src %s do not fit (index = src shape, = base "
                           "except along axis %d)",
                           HG_SHAPE(in[0], a), HG_SHAPE(in[1], b), HG_SHAPE(in[2], c), axis);
    out->dtype = in[0]->dtype;
    out->rank = in[0]->rank;
    memcpy(out->shape, in[0]->shape, sizeof(int64_t) * (size_t)in[0]->rank);
    return HG_OK;
}

#define SCATTER_ADD_LOOP(T)                                                    \
    for (int64_t o = 0; o < outer; o++)                                        \
        for (int64_t j = 0; j < k; j++)                                        \
            for (int64_t i = 0; i < inner; i++) {                              \
                int64_t p = (o * k + j) * inner + i;                           \
                ((T *)y)[(o * n + idx[p]) * inner + i] += ((const T *)src)[p]; \
            }

static hg_status scatter_add_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    int axis = ((const axis_attr *)attr)->axis;
    const hg_tensor *b = in[0], *ix = in[1];
    int64_t n = b->shape[axis];
    hg_status s = check_labels(ctx, "hg_scatter_add", ix, n);
    if (s != HG_OK)
        return s;
    int64_t outer = prod(b->shape, 0, axis), inner = prod(b->shape, axis + 1, b->rank), k = ix->shape[axis];
    if (b->numel)
        memcpy(out[0]->data, b->data, (size_t)b->numel * hg_dtype_size(b->dtype));
    const int32_t *idx = ix->data;
    void *y = out[0]->data;
    const void *src = in[2]->data;
    if (b->dtype == HG_F32) {
        SCATTER_ADD_LOOP(float)
    } else {
        SCATTER_ADD_LOOP(double)
    }
    return HG_OK;
}

/* dx = scatter_add(zeros(shape(x)), axis, index, g) */
static hg_status gather_axis_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *x = hg_node_input(node, 0), *idx = hg_node_input(node, 1);
    int axis = ((const axis_attr *)hg_node_attr(node))->axis;
    if (hg_node_needs_grad(node, 0) && !(gin[0] = hg_scatter_add(ctx, hg_zeros_like(ctx, x), axis, idx, gout[0])))
        return hg_ctx_status(ctx);
    return HG_OK;
}

/* dbase = g, dsrc = gather_axis(g, axis, index) */
static hg_status scatter_add_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *idx = hg_node_input(node, 1);
    int axis = ((const axis_attr *)hg_node_attr(node))->axis;
    if (hg_node_needs_grad(node, 0) && !(gin[0] = hg_identity(ctx, gout[0])))
        return hg_ctx_status(ctx);
    if (hg_node_needs_grad(node, 2) && !(gin[2] = hg_gather_axis(ctx, gout[0], axis, idx)))
        return hg_ctx_status(ctx);
    return HG_OK;
}

static const hg_opdef gather_axis_def = {
    "hg_gather_axis", 2, 1, sizeof(axis_attr), gather_axis_shape, gather_axis_forward, gather_axis_vjp, NULL};
static const hg_opdef scatter_add_def = {
    "hg_scatter_add", 3, 1, sizeof(axis_attr), scatter_add_shape, scatter_add_forward, scatter_add_vjp, NULL};

/* Normalise a possibly negative axis against x (x may be NULL or stale:
 * then hg_apply reports it). */
static int norm_axis(const hg_tensor *x, int axis)
{
    if (axis < 0 && hg_tensor_check(x) == HG_OK)
        return axis + x->rank;
    return axis;
}

hg_tensor *hg_index_select(hg_ctx *ctx, hg_tensor *x, int axis, hg_tensor *index)
{
    axis_attr a = {norm_axis(x, axis), axis};
    hg_tensor *in[2] = {x, index};
    return hg_apply(ctx, &index_select_def, in, &a);
}

hg_tensor *hg_index_add(hg_ctx *ctx, hg_tensor *base, int axis, hg_tensor *index, hg_tensor *src)
{
    axis_attr a = {norm_axis(base, axis), axis};
    hg_tensor *in[3] = {base, index, src};
    return hg_apply(ctx, &index_add_def, in, &a);
}

hg_tensor *hg_gather_axis(hg_ctx *ctx, hg_tensor *x, int axis, hg_tensor *index)
{
    axis_attr a = {norm_axis(x, axis), axis};
    hg_tensor *in[2] = {x, index};
    return hg_apply(ctx, &gather_axis_def, in, &a);
}

hg_tensor *hg_scatter_add(hg_ctx *ctx, hg_tensor *base, int axis, hg_tensor *index, hg_tensor *src)
{
    axis_attr a = {norm_axis(base, axis), axis};
    hg_tensor *in[3] = {base, index, src};
    return hg_apply(ctx, &scatter_add_def, in, &a);
}
