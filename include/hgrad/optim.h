/* Optimizers, in two forms.
 *
 * Training form (hg_optimizer): updates parameter tensors in place, without
 * recording and without allocating after hg_optimizer_new: use it to train.
 * Each step bumps every parameter's version (see hg_tensor_version), so a
 * gradient through a tape that recorded the old values fails with
 * HG_ERR_MODIFIED instead of silently using the new ones.
 *
 * Differentiable form (hg_opt_step): one step that returns NEW parameter and
 * state tensors built from recorded ops, so K steps can be unrolled and
 * differentiated with respect to the training data (float inputs), initial
 * weights and hyperparameters (the learning rate as a tensor). Labels are
 * i32 constants: nothing is differentiable with respect to them.
 *
 * Update rules (t = 1, 2, ... is the step number, g the gradient):
 *   SGD:      p' = p - lr g
 *   momentum: u' = mu u + g;               p' = p - lr u'
 *   Adam:     m' = b1 m + (1-b1) g;  v' = b2 v + (1-b2) g^2;
 *             p' = p - lr (m'/(1-b1^t)) / (sqrt(v'/(1-b2^t)) + eps)
 * Adam's forward is standard. Its derivative where v' is exactly 0 (a
 * gradient entry exactly 0 so far, e.g. a dead ReLU unit) uses hg_sqrt's
 * convention sqrt'(0) = 0, which gives the true, finite derivative (the
 * naive rule gives 0 * inf = NaN); see docs/hypergradient.md. */
#ifndef HGRAD_OPTIM_H
#define HGRAD_OPTIM_H

#include "core.h"
#include "tape.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hg_opt_kind { HG_OPT_SGD = 0, HG_OPT_MOMENTUM, HG_OPT_ADAM } hg_opt_kind;

/* Checked by every call below: lr and momentum finite; for Adam, beta1 and
 * beta2 in [0, 1) and eps > 0 after the defaults (else HG_ERR_RANGE). */
typedef struct hg_opt_config {
    hg_opt_kind kind;
    double lr;
    double momentum; /* momentum: mu */
    double beta1;    /* Adam (0: 0.9) */
    double beta2;    /* Adam (0: 0.999) */
    double eps;      /* Adam (0: 1e-8) */
} hg_opt_config;

/* "sgd", "momentum", "adam"; parse returns -1 for an unknown name. */
HG_API const char *hg_opt_name(hg_opt_kind kind);
HG_API int hg_opt_parse(const char *name, hg_opt_kind *kind);

/* ---- training form ---------------------------------------------------- */
typedef struct hg_optimizer hg_optimizer;

/* Optimizer for n parameter tensors (f32 or f64, any shapes; it keeps the
 * pointers, the caller keeps ownership), its state (zeros) allocated in ctx
 * now. The optimizer lives in ctx's arena: create it before the per-step
 * mark; after a rewind past it (or a reset) it is stale: hg_optimizer_step
 * returns HG_ERR_STALE (detected like a stale tensor, reliably until its
 * memory is reused for a new object header at the same address). Errors: NULL return, error on ctx
 * (HG_ERR_NULL, HG_ERR_INVALID, HG_ERR_RANGE, HG_ERR_DTYPE, HG_ERR_STALE,
 * HG_ERR_OOM). */
HG_API hg_optimizer *hg_optimizer_new(hg_ctx *ctx, const hg_opt_config *cfg, int n, hg_tensor *const *params);
/* One in-place update with grads[i] (same shape/dtype as params[i]). No
 * recording, no allocation. Errors: HG_ERR_NULL, HG_ERR_SHAPE, HG_ERR_DTYPE,
 * HG_ERR_STALE (a stale optimizer: returned, not recorded on any ctx; or a
 * stale tensor), HG_ERR_THREAD; on error no parameter or state is changed and the step is
 * not counted. On success every parameter's version is bumped. */
HG_API hg_status hg_optimizer_step(hg_optimizer *opt, hg_tensor *const *grads);
/* Steps taken so far; -1 for NULL or a stale optimizer. */
HG_API int hg_optimizer_steps(const hg_optimizer *opt);

/* Warm state, for continuing a training run in the differentiable form (or
 * resuming training). hg_optimizer_export writes the step count to *steps
 * and copies of the state into state[0 .. hg_opt_state_count(kind, n) - 1],
 * new constant tensors in ctx (any ctx), in exactly the order of
 * hg_opt_step's state array (momentum: u_1..u_n; Adam: m_1..m_n then
 * v_1..v_n; SGD: none, state may be NULL). Then
 *   hg_opt_step(ctx, &cfg, lr, *steps + 1, n, params, grads, state, new)
 * (and the following steps with t = *steps + 2, ...) gives bit for bit the
 * parameters that hg_optimizer_step would. Errors: HG_ERR_NULL,
 * HG_ERR_STALE, HG_ERR_OOM (state entries are NULL then). */
HG_API hg_status hg_optimizer_export(const hg_optimizer *opt, hg_ctx *ctx, int *steps, hg_tensor **state);
/* The reverse: sets the step count (>= 0) and copies values into the
 * optimizer's state from state[] (same order; each entry of its
 * parameter's shape and dtype, or NULL for zeros; state may be NULL for
 * SGD). Parameters are not touched (write them through hg_tensor_data).
 * Errors: HG_ERR_NULL, HG_ERR_RANGE (steps < 0), HG_ERR_SHAPE,
 * HG_ERR_DTYPE, HG_ERR_STALE; nothing changes on error. */
HG_API hg_status hg_optimizer_import(hg_optimizer *opt, int steps, hg_tensor *const *state);

/* ---- differentiable form ---------------------------------------------- */

/* Number of state tensors per parameter list of n: SGD 0, momentum n (u),
 * Adam 2n (m then v). */
HG_API int hg_opt_state_count(hg_opt_kind kind, int n);

/* One recorded step. params[i], grads[i]: f32/f64 tensors of one shape and
 * dtype. lr: rank-0 tensor of the params' dtype (differentiable) or NULL to
 * use cfg->lr as a constant. t: 1-based step number (Adam's bias
 * correction; ignored by SGD and momentum). state: in/out array of
 * hg_opt_state_count entries (may be NULL for SGD); NULL entries mean zeros
 * (the first step), others have their parameter's shape and dtype; they are
 * replaced by the new state. new_params[i] receives p'. All results are new
 * tensors in ctx. Errors: HG_ERR_NULL, HG_ERR_SHAPE, HG_ERR_DTYPE,
 * HG_ERR_RANGE (t < 1 for Adam, bad config), HG_ERR_STALE, HG_ERR_OOM; first
 * error on ctx; on error state is unchanged and new_params[i] are NULL. */
HG_API hg_status hg_opt_step(hg_ctx *ctx, const hg_opt_config *cfg, hg_tensor *lr, int t, int n,
                             hg_tensor *const *params, hg_tensor *const *grads, hg_tensor **state,
                             hg_tensor **new_params);

/* One recorded step from the gradient of target: what
 *   hg_gradient(tape, target, n, params, NULL, grads);
 *   hg_opt_step(ctx, cfg, lr, t, n, params, grads, state, new_params);
 * gives, without handing out the gradients, so the library need not store
 * them. tape: ended, recorded target (a rank-0 or one-element float
 * tensor) and params, as for hg_gradient; the other arguments as for
 * hg_opt_step. For SGD with a constant lr (lr NULL) the sweep builds
 * p' = p - lr g itself: a gradient that is a matrix product (a dense
 * layer's weights, x^T G) becomes one product with alpha = -lr onto a copy
 * of p, so g is never stored (in an unrolled hypergradient that is one
 * weight-sized tensor fewer per step and layer, and the step's vjp needs no
 * scale pass). Such entries can differ from hg_opt_step's in the last bit
 * (the BLAS adds lr (x^T G) to p, possibly with a fused multiply-add,
 * instead of rounding g first); other gradients (a bias's, or a parameter
 * that is not a leaf of tape) give hg_opt_step's bits, and every other
 * optimizer or a tensor lr is exactly hg_gradient + hg_opt_step. A
 * parameter target does not depend on keeps its value (a copy). Errors: as
 * hg_gradient and hg_opt_step (HG_ERR_STALE for a stale tape); first error
 * on ctx; on error state is unchanged and new_params[i] are NULL. */
HG_API hg_status hg_opt_gradient_step(hg_tape *tape, hg_tensor *target, const hg_opt_config *cfg, hg_tensor *lr, int t,
                                      int n, hg_tensor *const *params, hg_tensor **state, hg_tensor **new_params);

#ifdef __cplusplus
}
#endif
#endif
