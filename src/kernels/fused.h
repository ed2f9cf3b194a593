/* Fused elementwise loops of the optimizer-step ops (src/ops/optim_ops.c),
 * of relu's vjp and of the sweep's in-place accumulation (src/grad.c):
 * one pass over same-shaped contiguous operands where the composed form
 * would make several. Coefficients arrive as doubles and are rounded once to
 * the element type, as hg_scale rounds its scalar, and every loop performs
 * the IEEE operations of the composed form in the same order, so fused and
 * composed results are bitwise equal. Not installed. */
#ifndef HGRAD_FUSED_H
#define HGRAD_FUSED_H

#include "../internal.h"

/* y = a x + b z */
void hg_fused_lincomb(hg_tensor *y, const hg_tensor *x, const hg_tensor *z, double a, double b);
/* y = c (z w) */
void hg_fused_prod(hg_tensor *y, const hg_tensor *z, const hg_tensor *w, double c);
/* y = a x + b (z w) */
void hg_fused_lincomb_prod(hg_tensor *y, const hg_tensor *x, const hg_tensor *z, const hg_tensor *w, double a,
                           double b);
/* y = p - lr ((m c1) / (sqrt(v c2) + eps)) */
void hg_fused_adam_update(hg_tensor *y, const hg_tensor *p, const hg_tensor *m, const hg_tensor *v, double lr,
                          double c1, double c2, double eps);
/* s = sqrt(v c2), D = s + eps: y = (ka u) / D + (s > 0 ? w ((kb (u m)) / ((D D) s)) : 0) */
void hg_fused_adam_dg(hg_tensor *y, const hg_tensor *u, const hg_tensor *w, const hg_tensor *m, const hg_tensor *v,
                      double ka, double kb, double c2, double eps);
/* y = k g / (sqrt(v c2) + eps) */
void hg_fused_adam_dm(hg_tensor *y, const hg_tensor *g, const hg_tensor *v, double k, double c2, double eps);
/* s = sqrt(v c2), D = s + eps: y = s > 0 ? k (g m) / ((D D) s) : 0 */
void hg_fused_adam_dv(hg_tensor *y, const hg_tensor *g, const hg_tensor *m, const hg_tensor *v, double k, double c2,
                      double eps);

/* y = y + x in place (the sweep's unrecorded accumulation; same IEEE
 * operation as hg_add(y, x)); same shape and dtype. */
void hg_fused_accumulate(hg_tensor *y, const hg_tensor *x);
/* y = 1 y + b x in place (hg_gradient_axpy's unrecorded accumulation; the
 * IEEE operations of hg_fused_lincomb(y, y, x, 1, b)); same shape and dtype. */
void hg_fused_axpy(hg_tensor *y, const hg_tensor *x, double b);
/* y = x > 0 ? g : 0 (relu's vjp; as where(greater(x, 0), g, 0), NaN x gives 0) */
void hg_fused_relu_mask(hg_tensor *y, const hg_tensor *x, const hg_tensor *g);
/* Rows of y [rows, n] in place: y = y + b, then relu (a < 0 ? 0 : a, NaN
 * stays NaN) when asked; the IEEE operations of hg_add(y, b) and hg_relu. */
void hg_fused_bias_act(hg_tensor *y, const hg_tensor *b, bool relu);

#endif
