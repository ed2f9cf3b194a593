/* Defining operations. Every built-in op is an hg_opdef applied with
 * hg_apply; user code defines custom ops the same way. Nothing is registered
 * globally: an op is a const struct passed to hg_apply.
 *
 * Contract:
 *  - shape: check the inputs and fill out[k] (dtype, rank, shape) for each
 *    output. On a bad input call hg_op_error(ctx, code, "...") and return its
 *    result. Inputs are non-NULL and live when it is called.
 *  - forward: compute outputs (allocated, uninitialised) from inputs on raw
 *    buffers (hg_tensor_data). May fail with hg_op_error (e.g. index range).
 *  - vjp: given the output cotangents gout[k] (never NULL: zeros are filled
 *    in), set gin[i] for each input i with hg_node_needs_grad(node, i), using
 *    only hg_* ops so the backward is differentiable again. Leaving gin[i]
 *    NULL means a zero cotangent. The formula goes in a comment above it.
 *  - backward (instead of vjp, for once-differentiable ops): write the input
 *    cotangents into gin[i] (already allocated with the input's shape and
 *    dtype, zero-filled) from raw buffers. Differentiating through the result
 *    again fails with HG_ERR_ONCE_DIFF naming the op.
 *  - An op with neither vjp nor backward is non-differentiable: its outputs
 *    are constants (like comparisons and one_hot).
 *  - attr: attr_size bytes copied into the node; read with hg_node_attr. */
#ifndef HGRAD_OP_H
#define HGRAD_OP_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HG_MAX_OP_INPUTS 8
#define HG_MAX_OP_OUTPUTS 4

typedef struct hg_node hg_node;

/* Output description filled by an op's shape rule. */
typedef struct hg_out_spec {
    hg_dtype dtype;
    int rank;
    int64_t shape[HG_MAX_RANK];
} hg_out_spec;

typedef struct hg_opdef {
    const char *name;
    int n_inputs;  /* 1..HG_MAX_OP_INPUTS */
    int n_outputs; /* 1..HG_MAX_OP_OUTPUTS */
    size_t attr_size;
    hg_status (*shape)(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out);
    hg_status (*forward)(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr);
    hg_status (*vjp)(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin);
    hg_status (*backward)(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor *const *gin);
} hg_opdef;

/* Apply a single-output op. inputs: def->n_inputs tensors; attr: NULL or
 * def->attr_size bytes. Returns the output or NULL (first error on ctx). */
HG_API hg_tensor *hg_apply(hg_ctx *ctx, const hg_opdef *def, hg_tensor *const *inputs, const void *attr);
/* Any number of outputs; outputs[k] are set (all NULL on error). */
HG_API hg_status hg_apply_multi(hg_ctx *ctx, const hg_opdef *def, hg_tensor *const *inputs, const void *attr,
                                hg_tensor **outputs);

/* Node accessors, for vjp/backward. */
HG_API hg_tensor *hg_node_input(const hg_node *node, int i);
HG_API hg_tensor *hg_node_output(const hg_node *node, int k);
HG_API const void *hg_node_attr(const hg_node *node);
HG_API const hg_opdef *hg_node_def(const hg_node *node);
/* 1 if the current sweep needs the cotangent of input i. */
HG_API int hg_node_needs_grad(const hg_node *node, int i);

/* Record an error on ctx (kept only if it is the first) and return code.
 * The message should name the op and the shapes involved. */
HG_API hg_status hg_op_error(hg_ctx *ctx, hg_status code, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- helpers for ops, the same ones the built-in ops use --------------
 * Broadcasting (NumPy rules) in a custom op takes three steps, one helper
 * each (docs/custom-ops.md, section 10, shows a whole op):
 *   shape rule  hg_check_float_same + hg_broadcast_shapes
 *   forward     hg_broadcast_iter: offsets of each output element in every
 *               (broadcast) input
 *   vjp         hg_sum_to_like: the cotangent summed back to an input's shape */

/* 1 if a and b have the same rank and extents (dtype not compared); 0 for
 * NULL. */
HG_API int hg_same_shape(const hg_tensor *a, const hg_tensor *b);
/* For a shape rule whose output is shaped like an input (elementwise ops):
 * fills *out with t's dtype, rank and shape. Both non-NULL (a shape rule's
 * inputs always are); out is the caller's, t only read. Nothing to fail. */
HG_API void hg_out_like(hg_out_spec *out, const hg_tensor *t);
/* NumPy broadcast of shapes sa (rank ra) and sb (rank rb), right-aligned:
 * fills *rank_out and shape_out[0 .. rank_out) (room for HG_MAX_RANK) and
 * returns 1; returns 0 (nothing written that matters) if they do not
 * broadcast or the result would exceed HG_MAX_RANK. */
HG_API int hg_broadcast_shapes(int ra, const int64_t *sa, int rb, const int64_t *sb, int *rank_out, int64_t *shape_out);
/* For a shape rule: every in[0 .. n) is f32 or f64, all of one dtype. On
 * failure records HG_ERR_DTYPE naming `op` and the input ("use hg_cast" for
 * mixed dtypes) and returns it; HG_OK otherwise. Inputs must be live. */
HG_API hg_status hg_check_float_same(hg_ctx *ctx, const char *op, int n, hg_tensor *const *in);

/* Iteration over the elements of an output, in row-major order, with the
 * element offset of the matching element of each input broadcast to it.
 *
 *   hg_broadcast_iter it;
 *   hg_broadcast_iter_init(&it, out[0], 2, in);
 *   for (int64_t i = 0; i < hg_tensor_numel(out[0]); i++, hg_broadcast_iter_next(&it))
 *       y[i] = f(a[it.offset[0]], b[it.offset[1]]);
 *
 * n: 1 .. HG_MAX_OP_INPUTS inputs whose shapes broadcast to out's (as the
 * shape rule checked with hg_broadcast_shapes); nothing is allocated, and
 * the struct may live on the stack. Offsets are in elements (not bytes). */
typedef struct hg_broadcast_iter {
    int rank;                                      /* out's rank */
    int n;                                         /* number of inputs */
    int64_t shape[HG_MAX_RANK];                    /* out's shape */
    int64_t index[HG_MAX_RANK];                    /* current multi-index in out */
    int64_t stride[HG_MAX_OP_INPUTS][HG_MAX_RANK]; /* per input, 0 on broadcast axes */
    int64_t offset[HG_MAX_OP_INPUTS];              /* current element offset in each input */
} hg_broadcast_iter;
HG_API void hg_broadcast_iter_init(hg_broadcast_iter *it, const hg_tensor *out, int n, hg_tensor *const *in);
/* Advance to the next output element (after the last one: back to the
 * first). */
HG_API void hg_broadcast_iter_next(hg_broadcast_iter *it);

/* For a vjp: the cotangent g of a broadcast result, summed down to the
 * shape of input `like` (hg_sum_to, recorded, so differentiable again); g
 * itself when the shapes already match. NULL if g is NULL (keeping the
 * earlier error) or on error (HG_ERR_SHAPE if like's shape does not
 * broadcast to g's). */
HG_API hg_tensor *hg_sum_to_like(hg_ctx *ctx, hg_tensor *g, const hg_tensor *like);

#ifdef __cplusplus
}
#endif
#endif
