/* Functional higher-order helpers: vjp, jvp, hvp, Jacobian, Hessian.
 *
 * Each takes a user function f (hg_fn from check.h: inputs -> one output
 * tensor, built with hg_* ops in ctx) and its inputs. None of vjp, jvp and
 * hvp forms a Jacobian: each is a constant number of sweeps over f's tape,
 * so its memory is a small multiple of f's own.
 *
 * flags: HG_FUNC_CREATE_GRAPH keeps results differentiable: they are
 * recorded on the tapes active around the call, so helpers compose (the
 * gradient of an hvp, the Hessian of a vjp...). Without it, the tapes active
 * around the call are paused during it and the results are constants.
 *
 * Inputs: n tensors of ctx; float inputs (f32/f64) are differentiated, i32
 * inputs are passed through. Outputs are new tensors in ctx. Errors: the
 * status is returned, the first error is on the ctx, output pointers are NULL. */
#ifndef HGRAD_FUNC_H
#define HGRAD_FUNC_H

#include "core.h"
#include "check.h"

#ifdef __cplusplus
extern "C" {
#endif

enum hg_func_flags { HG_FUNC_CREATE_GRAPH = 1 };

/* value = f(inputs); grads[i] = d<cotangent, f>/d inputs[i] (J^T u).
 * cotangent: f's output shape, or NULL for a one-element output. value may
 * be NULL if not wanted. grads[i] is NULL for i32 inputs. */
HG_API hg_status hg_vjp(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, hg_tensor *cotangent,
                        unsigned flags, hg_tensor **value, hg_tensor **grads);

/* Forward-mode product: jv = sum_i J_i tangents[i] (f's output shape).
 * tangents[i] has inputs[i]'s shape and dtype (NULL: zero; ignored for i32).
 * Exact, by the double-vjp construction: jv = d/du <J^T u, t> (linear in u),
 * so every op with a composed vjp has it; through a once-differentiable op
 * it fails with HG_ERR_ONCE_DIFF. */
HG_API hg_status hg_jvp(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, hg_tensor *const *tangents,
                        unsigned flags, hg_tensor **value, hg_tensor **jv);

/* Hessian-vector product of a scalar (one-element) f: hv[i] = sum_j
 * H_ij tangents[j], by reverse-over-reverse; the Hessian is never formed. */
HG_API hg_status hg_hvp(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, hg_tensor *const *tangents,
                        unsigned flags, hg_tensor **value, hg_tensor **hv);

/* Jacobian of f, flattened: jac [numel(f), N] where N is the total element
 * count of the float inputs, concatenated in order (row-major each). Built
 * one row (one sweep of a persistent tape) at a time; without create-graph
 * each row's sweep is released once copied, so memory is jac plus one
 * sweep. The float inputs must have f's output dtype (HG_ERR_DTYPE) and
 * there must be at least one (HG_ERR_INVALID). To split the result per
 * input, input i owns columns [offset_i, offset_i + numel_i) where offset_i
 * sums the element counts of the float inputs before it:
 * hg_narrow(ctx, jac, 1, offset_i, numel_i) is d f / d inputs[i] ([numel(f),
 * numel_i]; hg_reshape it to [numel(f), shape of input i...] if wanted). */
HG_API hg_status hg_jacobian(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, unsigned flags,
                             hg_tensor **jac);

/* Hessian of a scalar f, flattened the same way: hess [N, N], symmetric up
 * to rounding. The gradient is computed once under a persistent tape, then
 * row r is one sweep of that tape seeded with e_r (an hvp per row without
 * recomputing the gradient). Same dtype rules and memory as hg_jacobian.
 * Block (i, j) = d2 f / d inputs[i] d inputs[j] is hg_narrow of the rows of
 * input i, then of the columns of input j (offsets as for hg_jacobian). */
HG_API hg_status hg_hessian(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, unsigned flags,
                            hg_tensor **hess);

#ifdef __cplusplus
}
#endif
#endif
