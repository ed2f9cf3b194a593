/* Shape ops: broadcast_to, reshape, transpose, permute, concat, stack,
 * slice. Each makes a new contiguous tensor (tensors never alias: their data
 * is writable). The broadcast and permute loops are in kernels/layout.c;
 * concat and slice are row copies here. */
#include "../kernels/layout.h"

#include <stdio.h>
#include <string.h>

typedef struct shape_attr {
    int rank;
    int64_t shape[HG_MAX_RANK];
} shape_attr;

static hg_status copy_shape_attr(hg_ctx *ctx, const char *who, int rank, const int64_t *shape, shape_attr *a)
{
    if (rank < 0 || rank > HG_MAX_RANK)
        return hg_op_error(ctx, HG_ERR_SHAPE, "%s: rank %d outside 0..%d", who, rank, HG_MAX_RANK);
    if (rank > 0 && !shape)
        return hg_op_error(ctx, HG_ERR_NULL, "%s: shape is NULL", who);
    a->rank = rank;
    if (rank)
        memcpy(a->shape, shape, sizeof(int64_t) * (size_t)rank);
    return HG_OK;
}

/* ---- broadcast_to ------------------------------------------------------ */

static hg_status broadcast_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const shape_attr *a = attr;
    char x[160], t[160];
    int r;
    int64_t sh[HG_MAX_RANK];
    if (!hg_is_float(in[0]->dtype))
        return hg_op_error(ctx, HG_ERR_DTYPE, "hg_broadcast_to: input is %s, expected f32 or f64",
                           hg_dtype_name(in[0]->dtype));
    bool ok = in[0]->rank <= a->rank && hg_broadcast_shapes(in[0]->rank, in[0]->shape, a->rank, a->shape, &r, sh);
    for (int i = 0; ok && i < r; i++)
        ok = sh[i] == a->shape[i] && a->shape[i] >= 0;
    if (!ok)
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_broadcast_to: cannot broadcast %s to %s", HG_SHAPE(in[0], x),
                           hg_shape_str(a->rank, a->shape, t, sizeof t));
    out->dtype = in[0]->dtype;
    out->rank = a->rank;
    memcpy(out->shape, a->shape, sizeof(int64_t) * (size_t)a->rank);
    return HG_OK;
}

static hg_status broadcast_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    (void)attr;
    hg_layout_broadcast(out[0], in[0]);
    return HG_OK;
}

/* dx = sum_to(g, shape(x)) */
static hg_status broadcast_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *x = hg_node_input(node, 0);
    if (!hg_node_needs_grad(node, 0))
        return HG_OK;
    gin[0] = hg_sum_to(ctx, gout[0], x->rank, x->shape);
    return HG_OK;
}

static const hg_opdef broadcast_def = {
    "hg_broadcast_to", 1, 1, sizeof(shape_attr), broadcast_shape, broadcast_forward, broadcast_vjp, NULL};

hg_tensor *hg_broadcast_to(hg_ctx *ctx, hg_tensor *x, int rank, const int64_t *shape)
{
    shape_attr a;
    if (!ctx || copy_shape_attr(ctx, "hg_broadcast_to", rank, shape, &a) != HG_OK)
        return NULL;
    return hg_apply(ctx, &broadcast_def, &x, &a);
}

/* ---- reshape ----------------------------------------------------------- */

static hg_status reshape_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const shape_attr *a = attr;
    char x[160], t[160];
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < a->rank; i++) {
        if (a->shape[i] == -1 && infer < 0) {
            infer = i;
        } else if (a->shape[i] < 0) {
            return hg_op_error(ctx, HG_ERR_SHAPE, "hg_reshape: invalid target shape %s",
                               hg_shape_str(a->rank, a->shape, t, sizeof t));
        } else {
            if (a->shape[i] && known > INT64_MAX / a->shape[i])
                return hg_op_error(ctx, HG_ERR_OVERFLOW, "hg_reshape: target shape overflows");
            known *= a->shape[i];
        }
    }
    out->rank = a->rank;
    memcpy(out->shape, a->shape, sizeof(int64_t) * (size_t)a->rank);
    if (infer >= 0) {
        if (known == 0 || in[0]->numel % known != 0)
            return hg_op_error(ctx, HG_ERR_SHAPE, "hg_reshape: cannot reshape %s to %s", HG_SHAPE(in[0], x),
                               hg_shape_str(a->rank, a->shape, t, sizeof t));
        out->shape[infer] = in[0]->numel / known;
        known = in[0]->numel;
    }
    if (known != in[0]->numel)
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_reshape: cannot reshape %s (%lld elements) to %s", HG_SHAPE(in[0], x),
                           (long long)in[0]->numel, hg_shape_str(a->rank, a->shape, t, sizeof t));
    out->dtype = in[0]->dtype;
    return HG_OK;
}

static hg_status reshape_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    (void)attr;
    if (in[0]->numel)
        memcpy(out[0]->data, in[0]->data, (size_t)in[0]->numel * hg_dtype_size(in[0]->dtype));
    return HG_OK;
}

/* dx = reshape(g, shape(x)) */
static hg_status reshape_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *x = hg_node_input(node, 0);
    if (!hg_node_needs_grad(node, 0))
        return HG_OK;
    gin[0] = hg_reshape(ctx, gout[0], x->rank, x->shape);
    return HG_OK;
}

static const hg_opdef reshape_def = {"hg_reshape",    1,           1,   sizeof(shape_attr), reshape_shape,
                                     reshape_forward, reshape_vjp, NULL};

hg_tensor *hg_reshape(hg_ctx *ctx, hg_tensor *x, int rank, const int64_t *shape)
{
    shape_attr a;
    if (!ctx || copy_shape_attr(ctx, "hg_reshape", rank, shape, &a) != HG_OK)
        return NULL;
    return hg_apply(ctx, &reshape_def, &x, &a);
}

/* ---- permute / transpose ------------------------------------------------ */

typedef struct perm_attr {
    int rank;
    int perm[HG_MAX_RANK];
} perm_attr;

static hg_status permute_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const perm_attr *p = attr;
    char x[160];
    if (p->rank != in[0]->rank)
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_permute: permutation of %d axes for shape %s", p->rank,
                           HG_SHAPE(in[0], x));
    bool seen[HG_MAX_RANK] = {false};
    for (int i = 0; i < p->rank; i++) {
        if (p->perm[i] < 0 || p->perm[i] >= p->rank || seen[p->perm[i]]) {
            char list[64];
            size_t len = 0;
            for (int k = 0; k < p->rank && len < sizeof list; k++)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", k ? "," : "", p->perm[k]);
            return hg_op_error(ctx, HG_ERR_RANGE, "hg_permute: (%s) is not a permutation of the axes of %s", list,
                               HG_SHAPE(in[0], x));
        }
        seen[p->perm[i]] = true;
        out->shape[i] = in[0]->shape[p->perm[i]];
    }
    out->rank = p->rank;
    out->dtype = in[0]->dtype;
    return HG_OK;
}

static hg_status permute_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    hg_layout_permute(out[0], in[0], ((const perm_attr *)attr)->perm);
    return HG_OK;
}

/* dx = permute(g, inverse(perm)) */
static hg_status permute_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const perm_attr *p = hg_node_attr(node);
    if (!hg_node_needs_grad(node, 0))
        return HG_OK;
    int inverse[HG_MAX_RANK];
    for (int i = 0; i < p->rank; i++)
        inverse[p->perm[i]] = i;
    gin[0] = hg_permute(ctx, gout[0], inverse);
    return HG_OK;
}

static const hg_opdef permute_def = {"hg_permute",    1,           1,   sizeof(perm_attr), permute_shape,
                                     permute_forward, permute_vjp, NULL};

hg_tensor *hg_permute(hg_ctx *ctx, hg_tensor *x, const int *perm)
{
    if (!ctx)
        return NULL;
    if (!perm) {
        hg_op_error(ctx, HG_ERR_NULL, "hg_permute: perm is NULL");
        return NULL;
    }
    if (hg_tensor_validate(ctx, x, "hg_permute") != HG_OK)
        return NULL;
    perm_attr a = {x->rank, {0}};
    memcpy(a.perm, perm, sizeof(int) * (size_t)x->rank);
    return hg_apply(ctx, &permute_def, &x, &a);
}

hg_tensor *hg_transpose(hg_ctx *ctx, hg_tensor *x)
{
    if (!ctx)
        return NULL;
    if (hg_tensor_validate(ctx, x, "hg_transpose") != HG_OK)
        return NULL;
    if (x->rank != 2) {
        char s[160];
        hg_op_error(ctx, HG_ERR_SHAPE, "hg_transpose: expected a 2-D tensor, got %s", HG_SHAPE(x, s));
        return NULL;
    }
    static const int swap[2] = {1, 0};
    return hg_permute(ctx, x, swap);
}

/* ---- concat ------------------------------------------------------------- */

typedef struct concat_attr {
    int n, axis; /* axis already normalised to 0..rank-1 */
} concat_attr;

static hg_status concat_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const concat_attr *a = attr;
    char s0[160], si[160];
    for (int i = 1; i < a->n; i++)
        if (in[i]->dtype != in[0]->dtype)
            return hg_op_error(ctx, HG_ERR_DTYPE, "hg_concat: mixed dtypes %s (input 0) and %s (input %d)",
                               hg_dtype_name(in[0]->dtype), hg_dtype_name(in[i]->dtype), i);
    int r = in[0]->rank;
    if (a->axis < 0 || a->axis >= r)
        return hg_op_error(ctx, HG_ERR_RANGE, "hg_concat: axis %d outside the rank of %s", a->axis,
                           HG_SHAPE(in[0], s0));
    out->dtype = in[0]->dtype;
    out->rank = r;
    memcpy(out->shape, in[0]->shape, sizeof(int64_t) * (size_t)r);
    for (int i = 1; i < a->n; i++) {
        bool ok = in[i]->rank == r;
        for (int d = 0; ok && d < r; d++)
            ok = d == a->axis || in[i]->shape[d] == in[0]->shape[d];
        if (!ok)
            return hg_op_error(ctx, HG_ERR_SHAPE, "hg_concat: input %d %s does not fit input 0 %s along axis %d", i,
                               HG_SHAPE(in[i], si), HG_SHAPE(in[0], s0), a->axis);
        if (out->shape[a->axis] > INT64_MAX - in[i]->shape[a->axis])
            return hg_op_error(ctx, HG_ERR_OVERFLOW, "hg_concat: extent along axis %d overflows", a->axis);
        out->shape[a->axis] += in[i]->shape[a->axis];
    }
    return HG_OK;
}

/* Rows before the axis, and the bytes of one row of t from the axis on. */
static int64_t outer_count(const hg_tensor *t, int axis)
{
    int64_t n = 1;
    for (int d = 0; d < axis; d++)
        n *= t->shape[d];
    return n;
}

static size_t row_bytes(const hg_tensor *t, int axis)
{
    size_t n = hg_dtype_size(t->dtype);
    for (int d = axis; d < t->rank; d++)
        n *= (size_t)t->shape[d];
    return n;
}

static hg_status concat_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const concat_attr *a = attr;
    if (out[0]->numel == 0)
        return HG_OK;
    int64_t outer = outer_count(out[0], a->axis);
    size_t orow = row_bytes(out[0], a->axis);
    size_t off = 0;
    for (int i = 0; i < a->n; i++) {
        size_t irow = row_bytes(in[i], a->axis);
        if (irow) {
            const unsigned char *src = in[i]->data;
            unsigned char *dst = (unsigned char *)out[0]->data + off;
            for (int64_t o = 0; o < outer; o++)
                memcpy(dst + (size_t)o * orow, src + (size_t)o * irow, irow);
        }
        off += irow;
    }
    return HG_OK;
}

/* dx_i = slice_axis(g, axis, offset_i, offset_i + n_i) */
static hg_status concat_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const concat_attr *a = hg_node_attr(node);
    int64_t off = 0;
    for (int i = 0; i < a->n; i++) {
        hg_tensor *x = hg_node_input(node, i);
        int64_t len = x->shape[a->axis];
        if (hg_node_needs_grad(node, i) && !(gin[i] = hg_narrow(ctx, gout[0], a->axis, off, len)))
            return hg_ctx_status(ctx);
        off += len;
    }
    return HG_OK;
}

#define CONCAT_DEF(n)                                                                          \
    {                                                                                          \
        "hg_concat", n, 1, sizeof(concat_attr), concat_shape, concat_forward, concat_vjp, NULL \
    }
static const hg_opdef concat_defs[HG_MAX_OP_INPUTS] = {CONCAT_DEF(1), CONCAT_DEF(2), CONCAT_DEF(3), CONCAT_DEF(4),
                                                       CONCAT_DEF(5), CONCAT_DEF(6), CONCAT_DEF(7), CONCAT_DEF(8)};
#undef CONCAT_DEF

/* Rank of the first live input, for axis normalisation; -1 after recording
 * the error. */
static int first_rank(hg_ctx *ctx, const char *who, int n, hg_tensor *const *xs)
{
    if (n < 1) {
        hg_op_error(ctx, HG_ERR_INVALID, "%s: need at least one tensor, got %d", who, n);
        return -1;
    }
    if (!xs) {
        hg_op_error(ctx, HG_ERR_NULL, "%s: tensor array is NULL", who);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (!xs[i]) {
            hg_op_error(ctx, HG_ERR_NULL, "%s: input %d is NULL", who, i);
            return -1;
        }
        if (hg_tensor_validate(ctx, xs[i], who) != HG_OK)
            return -1;
    }
    return xs[0]->rank;
}

static hg_tensor *concat_tree(hg_ctx *ctx, int n, hg_tensor *const *xs, int axis)
{
    if (n <= HG_MAX_OP_INPUTS) {
        concat_attr a = {n, axis};
        return hg_apply(ctx, &concat_defs[n - 1], xs, &a);
    }
    /* Concatenation is associative: groups of HG_MAX_OP_INPUTS, then those. */
    hg_tensor *parts[HG_MAX_OP_INPUTS];
    int groups = 0, per = (n + HG_MAX_OP_INPUTS - 1) / HG_MAX_OP_INPUTS;
    for (int i = 0; i < n; i += per) {
        int k = n - i < per ? n - i : per;
        if (!(parts[groups++] = concat_tree(ctx, k, xs + i, axis)))
            return NULL;
    }
    return concat_tree(ctx, groups, parts, axis);
}

hg_tensor *hg_concat(hg_ctx *ctx, int n, hg_tensor *const *xs, int axis)
{
    if (!ctx)
        return NULL;
    int r = first_rank(ctx, "hg_concat", n, xs);
    if (r < 0)
        return NULL;
    int ax = axis < 0 ? axis + r : axis;
    if (ax < 0 || ax >= r) {
        char s[160];
        hg_op_error(ctx, HG_ERR_RANGE, "hg_concat: axis %d outside the rank of %s", axis, HG_SHAPE(xs[0], s));
        return NULL;
    }
    return concat_tree(ctx, n, xs, ax);
}

hg_tensor *hg_stack(hg_ctx *ctx, int n, hg_tensor *const *xs, int axis)
{
    if (!ctx)
        return NULL;
    int r = first_rank(ctx, "hg_stack", n, xs);
    if (r < 0)
        return NULL;
    int ax = axis < 0 ? axis + r + 1 : axis;
    char s[160], t[160];
    if (ax < 0 || ax > r || r + 1 > HG_MAX_RANK) {
        hg_op_error(ctx, r + 1 > HG_MAX_RANK ? HG_ERR_SHAPE : HG_ERR_RANGE,
                    "hg_stack: cannot insert axis %d into %s (rank at most %d)", axis, HG_SHAPE(xs[0], s), HG_MAX_RANK);
        return NULL;
    }
    for (int i = 1; i < n; i++)
        if (!hg_same_shape(xs[i], xs[0])) {
            hg_op_error(ctx, HG_ERR_SHAPE, "hg_stack: input %d %s differs from input 0 %s", i, HG_SHAPE(xs[i], t),
                        HG_SHAPE(xs[0], s));
            return NULL;
        }
    int64_t shape[HG_MAX_RANK];
    for (int d = 0, k = 0; d <= r; d++)
        shape[d] = d == ax ? 1 : xs[0]->shape[k++];
    /* Each input gains a unit axis (a recorded reshape), then one concat. */
    hg_tensor *small[HG_MAX_OP_INPUTS];
    if (n <= HG_MAX_OP_INPUTS) {
        for (int i = 0; i < n; i++)
            if (!(small[i] = hg_reshape(ctx, xs[i], r + 1, shape)))
                return NULL;
        return hg_concat(ctx, n, small, ax);
    }
    hg_tensor **ex = hg_arena_alloc(ctx, sizeof *ex * (size_t)n);
    if (!ex) {
        hg_op_error(ctx, HG_ERR_OOM, "hg_stack: out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!(ex[i] = hg_reshape(ctx, xs[i], r + 1, shape)))
            return NULL;
    return hg_concat(ctx, n, ex, ax);
}

/* ---- slice and its adjoint (placement into zeros) ---------------------- */

typedef struct slice_attr {
    int rank;
    int64_t start[HG_MAX_RANK], step[HG_MAX_RANK], count[HG_MAX_RANK];
    int64_t full[HG_MAX_RANK]; /* shape of the sliced tensor */
} slice_attr;

/* Copies between a contiguous block (shape count) and the strided region
 * start + i*step of a contiguous tensor of shape full. to_block: region ->
 * block, else block -> region. */
static void slice_copy(const slice_attr *a, size_t es, unsigned char *full, unsigned char *block, bool to_block)
{
    int r = a->rank;
    int64_t numel = 1;
    for (int d = 0; d < r; d++)
        numel *= a->count[d];
    if (numel == 0)
        return;
    int64_t fstride[HG_MAX_RANK], s = 1;
    for (int d = r - 1; d >= 0; d--) {
        fstride[d] = s;
        s *= a->full[d];
    }
    int64_t base = 0;
    for (int d = 0; d < r; d++)
        base += a->start[d] * fstride[d];
    if (r == 0) {
        if (to_block)
            memcpy(block, full, es);
        else
            memcpy(full, block, es);
        return;
    }
    int last = r - 1;
    int64_t len = a->count[last], inner = a->step[last] * fstride[last];
    int64_t idx[HG_MAX_RANK] = {0};
    int64_t off = base, boff = 0;
    for (;;) {
        unsigned char *f = full + (size_t)off * es, *b = block + (size_t)boff * es;
        if (inner == 1) {
            if (to_block)
                memcpy(b, f, (size_t)len * es);
            else
                memcpy(f, b, (size_t)len * es);
        } else {
            for (int64_t i = 0; i < len; i++) {
                if (to_block)
                    memcpy(b + (size_t)i * es, f + (size_t)(i * inner) * es, es);
                else
                    memcpy(f + (size_t)(i * inner) * es, b + (size_t)i * es, es);
            }
        }
        boff += len;
        int d = last - 1;
        for (; d >= 0; d--) {
            off += a->step[d] * fstride[d];
            if (++idx[d] < a->count[d])
                break;
            off -= a->step[d] * fstride[d] * a->count[d];
            idx[d] = 0;
        }
        if (d < 0)
            return;
    }
}

static hg_status slice_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const slice_attr *a = attr;
    char s[160];
    if (a->rank != in[0]->rank)
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_slice: %d axes given for %s", a->rank, HG_SHAPE(in[0], s));
    for (int d = 0; d < a->rank; d++)
        if (a->full[d] != in[0]->shape[d])
            return hg_op_error(ctx, HG_ERR_SHAPE, "hg_slice: slice made for another shape than %s", HG_SHAPE(in[0], s));
    out->dtype = in[0]->dtype;
    out->rank = a->rank;
    memcpy(out->shape, a->count, sizeof(int64_t) * (size_t)a->rank);
    return HG_OK;
}

static hg_status slice_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    slice_copy(attr, hg_dtype_size(in[0]->dtype), in[0]->data, out[0]->data, true);
    return HG_OK;
}

static hg_tensor *slice_pad(hg_ctx *ctx, hg_tensor *g, const slice_attr *a);

/* dx = slice_pad(g): zeros of shape(x) with g placed at the sliced positions */
static hg_status slice_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    if (hg_node_needs_grad(node, 0) && !(gin[0] = slice_pad(ctx, gout[0], hg_node_attr(node))))
        return hg_ctx_status(ctx);
    return HG_OK;
}

/* Moves values (i32 too); differentiable for floats (i32 are constants). */
static const hg_opdef slice_def = {"hg_slice", 1, 1, sizeof(slice_attr), slice_shape, slice_forward, slice_vjp, NULL};

static hg_status slice_pad_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const slice_attr *a = attr;
    char s[160];
    bool ok = a->rank == in[0]->rank;
    for (int d = 0; ok && d < a->rank; d++)
        ok = a->count[d] == in[0]->shape[d];
    if (!ok)
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_slice_pad: cotangent %s does not match the slice",
                           HG_SHAPE(in[0], s));
    if (!hg_is_float(in[0]->dtype))
        return hg_op_error(ctx, HG_ERR_DTYPE, "hg_slice_pad: input is %s, expected f32 or f64",
                           hg_dtype_name(in[0]->dtype));
    out->dtype = in[0]->dtype;
    out->rank = a->rank;
    memcpy(out->shape, a->full, sizeof(int64_t) * (size_t)a->rank);
    return HG_OK;
}

static hg_status slice_pad_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    size_t es = hg_dtype_size(in[0]->dtype);
    if (out[0]->numel)
        memset(out[0]->data, 0, (size_t)out[0]->numel * es);
    slice_copy(attr, es, out[0]->data, in[0]->data, false);
    return HG_OK;
}

/* dg = slice(g') with the same start/step/count */
static hg_status slice_pad_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    if (hg_node_needs_grad(node, 0) && !(gin[0] = hg_apply(ctx, &slice_def, gout, hg_node_attr(node))))
        return hg_ctx_status(ctx);
    return HG_OK;
}

static const hg_opdef slice_pad_def = {"hg_slice_pad", 1,   1, sizeof(slice_attr), slice_pad_shape, slice_pad_forward,
                                       slice_pad_vjp,  NULL};

static hg_tensor *slice_pad(hg_ctx *ctx, hg_tensor *g, const slice_attr *a)
{
    return hg_apply(ctx, &slice_pad_def, &g, a);
}

/* Python's normalisation of one axis: negative bounds count from the end,
 * then both are clamped to [0, n]. */
static int64_t clamp_bound(int64_t v, int64_t n)
{
    if (v < 0)
        v = v < -n ? 0 : v + n;
    return v > n ? n : v;
}

hg_tensor *hg_slice(hg_ctx *ctx, hg_tensor *x, const int64_t *start, const int64_t *stop, const int64_t *step)
{
    if (!ctx || hg_tensor_validate(ctx, x, "hg_slice") != HG_OK)
        return NULL;
    slice_attr a;
    memset(&a, 0, sizeof a);
    a.rank = x->rank;
    for (int d = 0; d < x->rank; d++) {
        int64_t n = x->shape[d];
        int64_t st = step ? step[d] : 1;
        if (st < 1) {
            char s[160];
            hg_op_error(ctx, HG_ERR_RANGE, "hg_slice: step %lld on axis %d of %s (must be >= 1)", (long long)st, d,
                        HG_SHAPE(x, s));
            return NULL;
        }
        int64_t b = start ? clamp_bound(start[d], n) : 0, e = stop ? clamp_bound(stop[d], n) : n;
        a.start[d] = b;
        a.step[d] = st;
        a.count[d] = e > b ? (e - b - 1) / st + 1 : 0;
        a.full[d] = n;
        if (a.count[d] == 0)
            a.start[d] = 0;
    }
    return hg_apply(ctx, &slice_def, &x, &a);
}

hg_tensor *hg_slice_axis(hg_ctx *ctx, hg_tensor *x, int axis, int64_t start, int64_t stop, int64_t step)
{
    if (!ctx || hg_tensor_validate(ctx, x, "hg_slice_axis") != HG_OK)
        return NULL;
    int ax = axis < 0 ? axis + x->rank : axis;
    if (ax < 0 || ax >= x->rank) {
        char s[160];
        hg_op_error(ctx, HG_ERR_RANGE, "hg_slice_axis: axis %d outside the rank of %s", axis, HG_SHAPE(x, s));
        return NULL;
    }
    int64_t b[HG_MAX_RANK], e[HG_MAX_RANK], st[HG_MAX_RANK];
    for (int d = 0; d < x->rank; d++) {
        b[d] = 0;
        e[d] = x->shape[d];
        st[d] = 1;
    }
    b[ax] = start;
    e[ax] = stop;
    st[ax] = step;
    return hg_slice(ctx, x, b, e, st);
}

hg_tensor *hg_narrow(hg_ctx *ctx, hg_tensor *x, int axis, int64_t start, int64_t length)
{
    if (!ctx || hg_tensor_validate(ctx, x, "hg_narrow") != HG_OK)
        return NULL;
    int ax = axis < 0 ? axis + x->rank : axis;
    char s[160];
    if (ax < 0 || ax >= x->rank) {
        hg_op_error(ctx, HG_ERR_RANGE, "hg_narrow: axis %d outside the rank of %s", axis, HG_SHAPE(x, s));
        return NULL;
    }
    if (start < 0 || length < 0 || start > x->shape[ax] || length > x->shape[ax] - start) {
        hg_op_error(ctx, HG_ERR_RANGE, "hg_narrow: [%lld, %lld + %lld) outside axis %d of %s", (long long)start,
                    (long long)start, (long long)length, axis, HG_SHAPE(x, s));
        return NULL;
    }
    return hg_slice_axis(ctx, x, ax, start, start + length, 1);
}
