/* libhgrad: reverse-mode automatic differentiation of any order on dense
 * tensors, in C11.
 *
 * Operations on tensors are recorded on tapes; the gradient computation is
 * built from the same recorded operations, so nested tapes give derivatives of
 * any order (gradient of a gradient, Hessian-vector products, hypergradients
 * through unrolled training steps).
 *
 *   hg_ctx *ctx = hg_ctx_new(NULL);
 *   hg_tensor *x = hg_scalar(ctx, HG_F64, 0.5);
 *   hg_tape *outer = hg_tape_begin(ctx, 0);
 *   hg_watch(outer, x);
 *   hg_tape *inner = hg_tape_begin(ctx, 0);
 *   hg_watch(inner, x);
 *   hg_tensor *y = hg_mul(ctx, x, hg_exp(ctx, x));      // y = x e^x
 *   hg_tape_end(inner);
 *   hg_tensor *dy, *d2y;
 *   hg_gradient(inner, y, 1, &x, NULL, &dy);            // (x+1) e^x, recorded
 *   hg_tape_end(outer);
 *   hg_gradient(outer, dy, 1, &x, NULL, &d2y);          // (x+2) e^x
 *   printf("%g\n", hg_item(d2y));
 *   hg_ctx_free(ctx);
 *
 * Headers: core (ctx, tensors, errors, rng), tape, ops (built-in ops), op
 * (defining ops), check (gradient checking), func (vjp/jvp/hvp/Jacobian/
 * Hessian), solve (matrix-free CG and LiSSA solves), nn (layers, losses), optim (optimizers), io (.npy, IDX),
 * unroll (checkpointed differentiation through many training steps). */
#ifndef HGRAD_H
#define HGRAD_H

#include "hgrad/core.h"
#include "hgrad/tape.h"
#include "hgrad/ops.h"
#include "hgrad/op.h"
#include "hgrad/check.h"
#include "hgrad/func.h"
#include "hgrad/solve.h"
#include "hgrad/nn.h"
#include "hgrad/optim.h"
#include "hgrad/io.h"
#include "hgrad/version.h"
#include "hgrad/unroll.h"

#endif
