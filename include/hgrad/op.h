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
    int n_inputs;   /* 1..HG_MAX_OP_INPUTS */
    int n_outputs;  /* 1..HG_MAX_OP_OUTPUTS */
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
HG_API hg_status hg_apply_multi(hg_ctx *ctx, const hg_opdef *def, hg_tensor *const *inputs,
                                const void *attr, hg_tensor **outputs);

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

/* Helpers for shape rules: identical shape/dtype checks with messages. */
HG_API int hg_same_shape(const hg_tensor *a, const hg_tensor *b);
/* NumPy broadcast of a and b into out (rank, shape); 0 if incompatible. */
HG_API int hg_broadcast_shapes(int ra, const int64_t *sa, int rb, const int64_t *sb,
                               int *rank_out, int64_t *shape_out);

#ifdef __cplusplus
}
#endif
#endif
