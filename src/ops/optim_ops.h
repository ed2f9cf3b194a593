/* Fused optimizer-step ops (optim_ops.c), used by hg_opt_step. Each is an
 * hg_opdef over same-shaped tensors of one float dtype, with a vjp made of
 * these ops and the public ones, so it is differentiable to any order. Errors
 * as for any op (NULL, first error on ctx naming the op and shapes). Not
 * installed. */
#ifndef HGRAD_OPTIM_OPS_H
#define HGRAD_OPTIM_OPS_H

#include "../internal.h"

/* a x + b z */
hg_tensor *hg_opt_lincomb(hg_ctx *ctx, hg_tensor *x, hg_tensor *z, double a, double b);
/* c (z w) */
hg_tensor *hg_opt_prod(hg_ctx *ctx, hg_tensor *z, hg_tensor *w, double c);
/* a x + b (z w) */
hg_tensor *hg_opt_lincomb_prod(hg_ctx *ctx, hg_tensor *x, hg_tensor *z, hg_tensor *w, double a, double b);
/* Adam's parameter update as a function of p, g and the old moments m, v
 * (both NULL on the first step: zeros): p - lr ((M c1) / (sqrt(V c2) + eps))
 * with M = b1 m + a1 g, V = b2 v + a2 (g g). m1 and v1 must hold exactly M
 * and V (hg_opt_lincomb(m, g; b1, a1) and hg_opt_lincomb_prod(v, g, g; b2,
 * a2), or hg_scale(g, a1) and hg_opt_prod(g, g, a2) on the first step): the
 * op reads them instead of recomputing; they get no cotangent. coef: lr, c1,
 * c2, eps, b1, a1, b2, a2 with c1 = 1/(1 - b1^t), c2 = 1/(1 - b2^t). */
hg_tensor *hg_opt_adam_step(hg_ctx *ctx, hg_tensor *p, hg_tensor *g, hg_tensor *m, hg_tensor *v, hg_tensor *m1,
                            hg_tensor *v1, const double coef[8]);
/* ka u / D + kb w u m / (D^2 s), the second term 0 where s = 0 (the update's
 * cotangent for g; D and s as below). */
hg_tensor *hg_opt_adam_dg(hg_ctx *ctx, hg_tensor *u, hg_tensor *w, hg_tensor *m, hg_tensor *v, double ka, double kb,
                          double c2, double eps);
/* k u / D with D = sqrt(v c2) + eps (the update's cotangent for m). */
hg_tensor *hg_opt_adam_dm(hg_ctx *ctx, hg_tensor *u, hg_tensor *v, double k, double c2, double eps);
/* k u m / (D^2 s) where s = sqrt(v c2) > 0, else 0 (the update's cotangent for
 * v, with sqrt'(0) = 0). */
hg_tensor *hg_opt_adam_dv(hg_ctx *ctx, hg_tensor *u, hg_tensor *m, hg_tensor *v, double k, double c2, double eps);

#endif
