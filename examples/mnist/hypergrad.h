/* The hypergradient of mnist_hypergrad: dE_val/dx and dE_val/dw for every
 * training sample, through a window of the training steps [k0, k1) that
 * train.c ran, from the state training had before step k0. */
#ifndef MNIST_HYPERGRAD_H
#define MNIST_HYPERGRAD_H

#include "train.h"

#include <stdbool.h>

typedef struct hypergrad_problem {
    const dataset *d;
    const schedule *s;
    hg_mlp spec;
    hg_opt_config opt;
    hg_dtype dtype;
    int64_t k0, k1;           /* the steps differentiated through */
    const train_state *start; /* the state before step k0 (ns = 0: a fresh optimizer state) */
    const dist *dist;         /* the ranks (one process: rank 0 of 1) */
    hg_tensor *x_val, *y_val; /* this rank's block of E_val's images (any dtype) and labels */
    int64_t val_total;        /* E_val's images on all ranks (E_val is their mean loss) */
    val_loss_kind loss;
    int snapshots; /* the unroll's snapshot budget; 0: as many as fit in
                                * HYPERGRAD_SNAPSHOT_BYTES (at least 1) */
} hypergrad_problem;

/* The default memory for snapshots: with the recorded step (~11 MB for the
 * 784-64-64-10 Adam step of a batch of 32 in f64) and the rest of the
 * unroll's buffers, the whole-epoch hypergradient stays under 100 MB. */
#define HYPERGRAD_SNAPSHOT_BYTES (48 * 1000 * 1000)

#define HYPERGRAD_TOP 8 /* samples drawn in each direction */

/* One sample's map for the picture. */
typedef struct sample_map {
    int64_t index; /* the training sample, -1 if none */
    double dw;
    double *dx; /* [pixels] (malloc'd) */
} sample_map;

typedef struct hypergrad_result {
    double val_loss; /* E_val after step k1 */
    double *dw;      /* [n] dE_val/dw_i, summed over the sample's appearances (malloc'd) */
    float *dx;       /* [n, pixels] dE_val/dx (malloc'd) if asked, else NULL */
    int64_t touched; /* samples that appear in the window */
    sample_map helpful[HYPERGRAD_TOP], harmful[HYPERGRAD_TOP]; /* most negative / positive dw */
    int n_maps;                                                /* entries filled in each */
    sample_map first; /* the sample of the window's first batch with the largest |dw| */
    bool finite;      /* every value computed is finite */
    double seconds_forward, seconds_reverse;
    size_t arena_peak;  /* bytes of the hypergradient's arena */
    int64_t recomputed; /* steps recomputed by the checkpointed sweep */
    int snapshots_used; /* states the sweep kept at most */
    size_t step_peak;   /* arena bytes of the largest single step */
} hypergrad_result;

/* Computes everything above in ctx's arena (rewound afterwards), with
 * progress bars. want_dx: keep the full dE_val/dx. Over MPI every rank
 * differentiates its rows of every batch (the steps' gradients summed by a
 * recorded all-reduce), then the per-sample results are summed over the
 * ranks: every rank ends with the same complete result. Returns 0, or -1
 * with the error printed. hypergrad_free releases the malloc'd parts. */
int hypergrad_run(hg_ctx *ctx, const hypergrad_problem *p, bool want_dx, hypergrad_result *r);
void hypergrad_free(hypergrad_result *r);

/* E_val of the MLP with these parameters (tensors in ctx; each rank its
 * part, summed over the ranks). NAN on error. */
double hypergrad_val_loss(hg_ctx *ctx, const hypergrad_problem *p, hg_tensor *const *params);

/* E_val after replaying steps [k0, k1) from p->start with one input
 * perturbed (no recording; for finite differences). NAN on error. Over
 * MPI a collective: every rank replays its rows and gets the same E_val. */
double hypergrad_replay(hg_ctx *ctx, const hypergrad_problem *p, const perturbation *pert);

/* The (unperturbed) state before step k of the window, k0 <= k <= k1, as
 * tensors in ctx. 0, or -1 with the error on ctx. */
int hypergrad_state_at(hg_ctx *ctx, const hypergrad_problem *p, int64_t k, train_state *out);

/* The first step of the window whose batch holds sample, or -1. */
int64_t hypergrad_first_step(const hypergrad_problem *p, int64_t sample);

#endif
