/* Matrix-free linear solves: (A + damping I) x = b where A is known only
 * through a callback that applies it to a vector (typically a Hessian-vector
 * product from hg_hvp, as in influence functions).
 *
 *   static hg_status apply(hg_ctx *ctx, const hg_tensor *v, hg_tensor **Av, void *user)
 *   {   // Av = H v by reverse-over-reverse on the training loss
 *       ...
 *       return hg_hvp(ctx, loss_fn, n, params, user, tangents, 0, NULL, hv);
 *   }
 *   hg_solve_options o = {.damping = 1e-3, .tol = 1e-8};
 *   hg_solve_report rep;
 *   hg_tensor *x;
 *   if (hg_cg_solve(ctx, apply, &problem, b, &o, &x, &rep) != HG_OK)
 *       fprintf(stderr, "%s\n", hg_ctx_error(ctx));
 *
 * Vectors: b is one f32 or f64 tensor of any shape (several parameter
 * tensors are flattened into one by the caller); the callback receives v
 * with b's shape and dtype and must return Av of the same shape and dtype,
 * made in ctx. Arithmetic inside the solvers is in double for either dtype.
 *
 * Memory: the solvers keep a few vectors of b's size; every callback call is
 * wrapped in a mark/rewind, so the arena in use is bounded by those vectors
 * plus one callback's own use, whatever the number of iterations. Tensors the
 * callback makes (and ops it records on tapes active around the call) are
 * released after each call: the result is a constant. The callback must end
 * every tape it begins.
 *
 * Errors: the status is returned, the first error is on the ctx (naming the
 * call), *x is NULL and nothing the call allocated stays in the arena. An
 * error returned by the callback is propagated as its status (if the
 * callback left no message, one naming the iteration is set). */
#ifndef HGRAD_SOLVE_H
#define HGRAD_SOLVE_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Av = A v for v of b's shape and dtype. Returns HG_OK and a new tensor in
 * *Av, or an error status. v must not be modified. */
typedef hg_status (*hg_apply_fn)(hg_ctx *ctx, const hg_tensor *v, hg_tensor **Av, void *user);

typedef struct hg_solve_options {
    double damping; /* lambda (finite): solve (A + lambda I) x = b; 0: none */
    double tol;     /* stop when ||b - (A + lambda I) x|| <= tol ||b||, tol >= 0;
                     * 0: 1e-10 for CG; for LiSSA 0 runs all max_iter steps */
    int max_iter;   /* >= 0; 0: CG 10 numel(b) (numel(b) suffices in exact arithmetic,
                     * rounding needs more when A is ill-conditioned), LiSSA 1000 */
    double scale;   /* LiSSA only: s > 0 with the spectrum of (A + lambda I)/s inside
                     * (0, 2), i.e. s > lambda_max/2; s > lambda_max converges
                     * monotonically. Ignored by CG. */
} hg_solve_options;

typedef struct hg_solve_report {
    int iterations;  /* callback calls made */
    double residual; /* ||b - (A + lambda I) x|| / ||b|| (CG: of the returned x, by
                      * the recurrence; LiSSA: of the iterate before the
                      * returned one, exactly) ; 0 for b = 0 */
    int converged;   /* 1 if residual <= tol was reached, else 0 (the best x so
                      * far is still returned with HG_OK) */
} hg_solve_report;

/* Conjugate gradient from x0 = 0 for symmetric positive definite A + lambda I.
 * Returns in *x (new tensor in ctx, b's shape and dtype) the last iterate.
 * opts may be NULL (defaults), report may be NULL.
 * Errors: HG_ERR_NULL (ctx returns without a message; apply, b or x NULL),
 * HG_ERR_STALE / HG_ERR_INVALID (b stale or of another ctx), HG_ERR_DTYPE (b
 * not f32/f64), HG_ERR_RANGE (bad options; a direction with p^T (A + lambda I) p
 * <= 0 or not finite: the operator is not positive definite, increase the
 * damping), HG_ERR_SHAPE / HG_ERR_DTYPE (the callback returned Av of another
 * shape/dtype, or NULL with HG_OK: HG_ERR_NULL), HG_ERR_OOM, or the callback's
 * own error. */
HG_API hg_status hg_cg_solve(hg_ctx *ctx, hg_apply_fn apply, void *user, const hg_tensor *b,
                             const hg_solve_options *opts, hg_tensor **x, hg_solve_report *report);

/* LiSSA (Agarwal et al. 2017): the Neumann series h_0 = b,
 * h_j = b + h_{j-1} - (A + lambda I) h_{j-1} / s, x = h / s, which converges to
 * (A + lambda I)^-1 b when the spectrum of (A + lambda I)/s lies in (0, 2).
 * A callback that samples a new minibatch on each call gives the stochastic
 * estimator of the paper (then the residual is measured on the sampled
 * operators). Same arguments, result and errors as hg_cg_solve; in addition
 * HG_ERR_RANGE when scale <= 0 or the iterate diverges (residual above 1e12
 * ||b|| or not finite: scale too small for A's largest eigenvalue). */
HG_API hg_status hg_lissa_solve(hg_ctx *ctx, hg_apply_fn apply, void *user, const hg_tensor *b,
                                const hg_solve_options *opts, hg_tensor **x, hg_solve_report *report);

#ifdef __cplusplus
}
#endif
#endif
