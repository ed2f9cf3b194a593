/* Shape ops: broadcast_to, reshape, transpose, permute. Each makes a new
 * contiguous tensor (tensors never alias: their data is writable). The
 * loops are in kernels/layout.c. */
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

static const hg_opdef broadcast_def = {"hg_broadcast_to", 1, 1, sizeof(shape_attr), broadcast_shape,
                                       broadcast_forward, broadcast_vjp, NULL};

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
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_reshape: cannot reshape %s (%lld elements) to %s",
                           HG_SHAPE(in[0], x), (long long)in[0]->numel, hg_shape_str(a->rank, a->shape, t, sizeof t));
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

static const hg_opdef reshape_def = {"hg_reshape", 1, 1, sizeof(shape_attr), reshape_shape, reshape_forward,
                                     reshape_vjp, NULL};

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

static const hg_opdef permute_def = {"hg_permute", 1, 1, sizeof(perm_attr), permute_shape, permute_forward,
                                     permute_vjp, NULL};

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
