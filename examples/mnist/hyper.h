/* The hypergradient of mnist_hypergrad on one recorded tape (full tape):
 * the validation loss after K optimizer steps on one training batch, and its
 * gradient with respect to the training inputs and per-sample loss weights.
 * Used by the cross-check mode (--case DIR), its test and bench/hgrad_bench;
 * the flagship's long runs go through hg_unroll instead (unrolled.c). Any
 * hg_mlp spec: the parameter count comes from hg_mlp_param_count. */
#ifndef MNIST_HYPER_H
#define MNIST_HYPER_H

#include <hgrad.h>
#include <stdbool.h>

/* Room for the parameters of any hg_mlp, and for its optimizer state. */
#define HYPER_MAX_PARAMS (2 * HG_MLP_MAX_LAYERS)
/* The parameter count of the three-layer reference case (784-64-64-10)
 * that bench/hgrad_bench reads and writes as W1, b1, ..., b3. */
#define N_PARAMS 6

typedef enum val_loss_kind { VAL_LOSS_CE = 0, VAL_LOSS_MSE } val_loss_kind;

typedef struct hyper_problem {
    hg_mlp spec;
    hg_tensor *params[HYPER_MAX_PARAMS]; /* starting weights (constants), hg_mlp_param_count of them */
    hg_tensor *x_train;                  /* [n, spec.sizes[0]] */
    hg_tensor *y_train;                  /* i32 [n] */
    hg_tensor *x_val;                    /* [m, spec.sizes[0]] */
    hg_tensor *y_val;                    /* i32 [m] */
    hg_tensor *w;                        /* per-sample loss weights [n], or NULL (all 1) */
    hg_opt_config opt;
    /* Optional warm optimizer state (constants) in hg_opt_step's layout:
     * momentum u per parameter; Adam m per parameter then v per parameter.
     * NULL entries are zeros. t0: steps already taken (Adam's bias
     * correction continues at t0 + 1); 0 for a fresh state. */
    hg_tensor *state[2 * HYPER_MAX_PARAMS];
    int t0;
    int steps;
    val_loss_kind loss;
} hyper_problem;

typedef struct hyper_result {
    double val_loss;      /* E_val after the steps */
    hg_tensor *dx;        /* dE_val/dx_train [n, in], or NULL if not asked */
    hg_tensor *dw;        /* dE_val/dw [n] for per-sample loss weights at w = 1 */
    size_t forward_bytes; /* arena bytes in use once the recorded forward
                           * (steps and E_val) is complete, before the sweep */
} hyper_result;

/* E_val = mean cross-entropy (or, with VAL_LOSS_MSE, the squared error of
 * the softmax against one-hot labels) of the MLP on (x_val, y_val). */
hg_tensor *hyper_val_loss_of(hg_ctx *ctx, const hg_mlp *spec, hg_tensor *const *params, hg_tensor *x_val,
                             hg_tensor *y_val, val_loss_kind loss);

/* Runs the K steps and E_val. The training loss is mean_i CE_i, or
 * mean_i w_i CE_i when p->w is set or want_dw is asked (then w = 1 unless
 * p->w gives other values). want_dx / want_dw select the outer sweep's
 * sources; with neither, only the value is computed (the inner gradients
 * are still taken, nothing is recorded on the outer tape). Results live in
 * ctx. Returns the ctx status (HG_ERR_INVALID for a bad spec). */
hg_status hyper_run(hg_ctx *ctx, const hyper_problem *p, bool want_dx, bool want_dw, hyper_result *out);

/* E_val of a problem alone (nothing kept in the arena afterwards), as a
 * callback for finite differences (fd.h): user is a hyper_target. NAN on
 * error. */
typedef struct hyper_target {
    hg_ctx *ctx;
    const hyper_problem *p;
} hyper_target;
double hyper_val_loss(void *user);

/* The same problem converted to dtype (copies in ctx; labels stay i32). */
hg_status hyper_convert(hg_ctx *ctx, const hyper_problem *p, hg_dtype dtype, hyper_problem *out);

/* A constant copy of t (possibly from another ctx) in ctx, in dtype (i32
 * stays i32); NULL for NULL. */
hg_tensor *hyper_copy_as(hg_ctx *ctx, hg_tensor *t, hg_dtype dtype);

#endif
