/* Applying an op definition: validate inputs, infer output shapes, allocate,
 * run the kernel, and record a node on every active tape that tracks an
 * input. */
#include "internal.h"

#include <string.h>

static bool def_is_valid(const hg_opdef *def)
{
    return def && def->name && def->shape && def->forward && def->n_inputs >= 1 && def->n_inputs <= HG_MAX_OP_INPUTS &&
           def->n_outputs >= 1 && def->n_outputs <= HG_MAX_OP_OUTPUTS && !(def->vjp && def->backward);
}

/* Levels of the active, unpaused tapes that track one of the inputs. */
static uint32_t recording_levels(const hg_ctx *ctx, int n_in, hg_tensor *const *in)
{
    uint32_t levels = 0;
    for (int L = 0; L < ctx->depth; L++) {
        const hg_tape *tape = ctx->tapes[L];
        if (tape->paused)
            continue;
        for (int i = 0; i < n_in; i++)
            if (in[i]->track[L] == tape->id) {
                levels |= 1u << L;
                break;
            }
    }
    return levels;
}

hg_status hg_record(hg_ctx *ctx, const hg_opdef *def, int n_in, hg_tensor *const *in, int n_out, hg_tensor *const *out,
                    const void *attr)
{
    uint32_t levels = recording_levels(ctx, n_in, in);
    if (!levels)
        return HG_OK;
    hg_node *node = hg_arena_alloc(ctx, sizeof *node + def->attr_size);
    if (!node)
        return hg_set_error(ctx, HG_ERR_OOM, "%s: out of memory recording the op", def->name);
    memset(node, 0, sizeof *node);
    node->def = def;
    node->serial = ++ctx->serial;
    node->level_mask = levels;
    node->n_in = n_in;
    node->n_out = n_out;
    for (int i = 0; i < n_in; i++) {
        node->in[i] = in[i];
        node->in_version[i] = in[i]->version;
    }
    if (def->attr_size) {
        node->attr = node + 1;
        memcpy(node->attr, attr, def->attr_size);
    }
    for (int k = 0; k < n_out; k++) {
        hg_tensor *t = out[k];
        node->out[k] = t;
        node->out_version[k] = t->version;
        t->creator = node;
        t->out_index = k;
        for (int L = 0; L < ctx->depth; L++)
            if (levels & (1u << L))
                t->track[L] = ctx->tapes[L]->id;
    }
    return HG_OK;
}

hg_status hg_apply_multi(hg_ctx *ctx, const hg_opdef *def, hg_tensor *const *inputs, const void *attr,
                         hg_tensor **outputs)
{
    if (!ctx)
        return HG_ERR_NULL;
    if (!def_is_valid(def))
        return hg_set_error(ctx, HG_ERR_INVALID, "hg_apply: invalid op definition%s%s", def && def->name ? " " : "",
                            def && def->name ? def->name : "");
    if (!outputs)
        return hg_set_error(ctx, HG_ERR_NULL, "%s: outputs array is NULL", def->name);
    for (int k = 0; k < def->n_outputs; k++)
        outputs[k] = NULL;
    if (!inputs)
        return hg_set_error(ctx, HG_ERR_NULL, "%s: inputs array is NULL", def->name);
    if (def->attr_size && !attr)
        return hg_set_error(ctx, HG_ERR_NULL, "%s: attributes are NULL", def->name);
    for (int i = 0; i < def->n_inputs; i++) {
        if (!inputs[i]) {
            /* A NULL input is usually an earlier failure: keep that error. */
            return hg_set_error(ctx, HG_ERR_NULL, "%s: input %d is NULL", def->name, i);
        }
        hg_status s = hg_tensor_validate(ctx, inputs[i], def->name);
        if (s != HG_OK)
            return s;
    }
    hg_out_spec spec[HG_MAX_OP_OUTPUTS];
    memset(spec, 0, sizeof spec);
    hg_status s = def->shape(ctx, inputs, attr, spec);
    if (s != HG_OK)
        return hg_set_error(ctx, s, "%s: shape rule failed", def->name);
    hg_tensor *out[HG_MAX_OP_OUTPUTS] = {0};
    for (int k = 0; k < def->n_outputs; k++) {
        out[k] = hg_tensor_alloc(ctx, def->name, spec[k].dtype, spec[k].rank, spec[k].shape);
        if (!out[k])
            return hg_ctx_status(ctx);
    }
    s = def->forward(ctx, inputs, out, attr);
    if (s != HG_OK)
        return hg_set_error(ctx, s, "%s: forward kernel failed", def->name);
    if (def->vjp || def->backward) {
        s = hg_record(ctx, def, def->n_inputs, inputs, def->n_outputs, out, attr);
        if (s != HG_OK)
            return s;
    }
    for (int k = 0; k < def->n_outputs; k++)
        outputs[k] = out[k];
    return HG_OK;
}

hg_tensor *hg_apply(hg_ctx *ctx, const hg_opdef *def, hg_tensor *const *inputs, const void *attr)
{
    hg_tensor *out[HG_MAX_OP_OUTPUTS] = {0};
    if (def && def->n_outputs != 1) {
        hg_set_error(ctx, HG_ERR_INVALID, "hg_apply: op %s has %d outputs; use hg_apply_multi",
                     def->name ? def->name : "?", def->n_outputs);
        return NULL;
    }
    if (hg_apply_multi(ctx, def, inputs, attr, out) != HG_OK)
        return NULL;
    return out[0];
}

hg_tensor *hg_node_input(const hg_node *node, int i)
{
    return node && i >= 0 && i < node->n_in ? node->in[i] : NULL;
}

hg_tensor *hg_node_output(const hg_node *node, int k)
{
    return node && k >= 0 && k < node->n_out ? node->out[k] : NULL;
}

const void *hg_node_attr(const hg_node *node)
{
    return node ? node->attr : NULL;
}

const hg_opdef *hg_node_def(const hg_node *node)
{
    return node ? node->def : NULL;
}

int hg_node_needs_grad(const hg_node *node, int i)
{
    return node && i >= 0 && i < node->n_in ? node->needs_grad[i] : 0;
}

int hg_same_shape(const hg_tensor *a, const hg_tensor *b)
{
    if (!a || !b || a->rank != b->rank)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

void hg_out_like(hg_out_spec *out, const hg_tensor *t)
{
    out->dtype = t->dtype;
    out->rank = t->rank;
    memcpy(out->shape, t->shape, sizeof(int64_t) * (size_t)t->rank);
}

int hg_broadcast_shapes(int ra, const int64_t *sa, int rb, const int64_t *sb, int *rank_out, int64_t *shape_out)
{
    int r = ra > rb ? ra : rb;
    if (r > HG_MAX_RANK)
        return 0;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - ra), ib = i - (r - rb);
        int64_t da = ia >= 0 ? sa[ia] : 1, db = ib >= 0 ? sb[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return 0;
        shape_out[i] = da == 1 ? db : da;
    }
    *rank_out = r;
    return 1;
}

hg_status hg_check_float_same(hg_ctx *ctx, const char *op, int n, hg_tensor *const *in)
{
    for (int i = 0; i < n; i++) {
        if (!hg_is_float(in[i]->dtype))
            return hg_set_error(ctx, HG_ERR_DTYPE, "%s: input %d is %s, expected f32 or f64", op, i,
                                hg_dtype_name(in[i]->dtype));
        if (in[i]->dtype != in[0]->dtype)
            return hg_set_error(ctx, HG_ERR_DTYPE, "%s: mixed dtypes %s and %s (use hg_cast)", op,
                                hg_dtype_name(in[0]->dtype), hg_dtype_name(in[i]->dtype));
    }
    return HG_OK;
}

void hg_broadcast_iter_init(hg_broadcast_iter *it, const hg_tensor *out, int n, hg_tensor *const *in)
{
    memset(it, 0, sizeof *it);
    if (!out || n < 0 || n > HG_MAX_OP_INPUTS || (n > 0 && !in))
        return;
    it->rank = out->rank;
    it->n = n;
    for (int d = 0; d < out->rank; d++)
        it->shape[d] = out->shape[d];
    for (int k = 0; k < n; k++) {
        const hg_tensor *t = in[k];
        int64_t s = 1;
        for (int d = out->rank - 1; d >= 0; d--) {
            int td = d - (out->rank - t->rank);
            int64_t extent = td >= 0 ? t->shape[td] : 1;
            it->stride[k][d] = extent == 1 ? 0 : s;
            s *= extent;
        }
    }
}

void hg_broadcast_iter_next(hg_broadcast_iter *it)
{
    for (int d = it->rank - 1; d >= 0; d--) {
        for (int k = 0; k < it->n; k++)
            it->offset[k] += it->stride[k][d];
        if (++it->index[d] < it->shape[d])
            return;
        for (int k = 0; k < it->n; k++)
            it->offset[k] -= it->stride[k][d] * it->shape[d];
        it->index[d] = 0;
    }
}

hg_tensor *hg_sum_to_like(hg_ctx *ctx, hg_tensor *g, const hg_tensor *like)
{
    if (!ctx || !g)
        return NULL;
    if (hg_tensor_validate(ctx, like, "hg_sum_to_like") != HG_OK)
        return NULL;
    if (hg_same_shape(g, like))
        return g;
    return hg_sum_to(ctx, g, like->rank, like->shape);
}
