/* The hypergradient of mnist_hypergrad: the validation loss after K
 * unrolled optimizer steps on a training batch, and its gradient with
 * respect to the training inputs and per-sample loss weights. */
#ifndef MNIST_HYPER_H
#define MNIST_HYPER_H

#include <hgrad.h>
#include <stdbool.h>

#define N_PARAMS 6

typedef enum val_loss_kind { VAL_LOSS_CE = 0, VAL_LOSS_MSE } val_loss_kind;

typedef struct hyper_problem {
    hg_mlp spec;
    hg_tensor *params[N_PARAMS]; /* starting weights (constants) */
    hg_tensor *x_train;          /* [n, 784] */
    hg_tensor *y_train;          /* i32 [n] */
    hg_tensor *x_val;            /* [m, 784] */
    hg_tensor *y_val;            /* i32 [m] */
    hg_tensor *w;                /* per-sample loss weights [n], or NULL (all 1) */
    hg_opt_config opt;
    int steps;
    val_loss_kind loss;
} hyper_problem;

typedef struct hyper_result {
    double val_loss;  /* E_val after the steps */
    hg_tensor *dx;    /* dE_val/dx_train [n, 784], or NULL if not asked */
    hg_tensor *dw;    /* dE_val/dw [n] for per-sample loss weights at w = 1 */
    size_t forward_bytes; /* arena bytes in use once the recorded forward
                           * (steps and E_val) is complete, before the sweep */
} hyper_result;

/* Runs the K steps and E_val. The training loss is mean_i CE_i, or
 * mean_i w_i CE_i when p->w is set or want_dw is asked (then w = 1 unless
 * p->w gives other values). want_dx / want_dw select the outer sweep's
 * sources; with neither, only the value is computed (the inner gradients
 * are still taken, nothing is recorded on the outer tape). Results live in
 * ctx. Returns the ctx status. */
hg_status hyper_run(hg_ctx *ctx, const hyper_problem *p, bool want_dx, bool want_dw, hyper_result *out);

/* The same problem converted to dtype (copies in ctx). */
/* E_val of a problem alone (nothing kept in the arena afterwards), as a
 * callback for finite differences (fd.h): user is a hyper_target. NAN on
 * error. */
typedef struct hyper_target {
    hg_ctx *ctx;
    const hyper_problem *p;
} hyper_target;
double hyper_val_loss(void *user);

hg_status hyper_convert(hg_ctx *ctx, const hyper_problem *p, hg_dtype dtype, hyper_problem *out);

#endif
