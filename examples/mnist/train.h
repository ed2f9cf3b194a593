/* Training for mnist_hypergrad: the shuffled mini-batch schedule, one
 * step's inputs, the training loss, and the training loop itself (the
 * training-form optimizer, one mark/rewind per step). The hypergradient
 * (hypergrad.c) goes back through the same steps with the same inputs. */
#ifndef MNIST_TRAIN_H
#define MNIST_TRAIN_H

#include "data.h"
#include "distributed.h"
#include "hyper.h"

#include <stdint.h>

/* The order in which training visits the samples: a fresh shuffle per
 * epoch, batches of `batch` (the last one of an epoch may be smaller). */
typedef struct schedule {
    int64_t n, batch, steps_per_epoch;
    int epochs;
    int32_t *order; /* epochs * n sample indices (malloc'd) */
} schedule;

/* 0, or -1 (out of memory / too many samples, printed). */
int schedule_make(schedule *s, int64_t n, int64_t batch, int epochs, uint64_t seed);
void schedule_free(schedule *s);
int64_t schedule_steps(const schedule *s);
/* The samples of step k (0-based, over all epochs); *count of them. */
const int32_t *schedule_batch(const schedule *s, int64_t k, int64_t *count);

/* A change to one input of the training data, for finite differences:
 * pixel >= 0 adds delta to that pixel of sample `sample`;
 * PERTURB_WEIGHT adds delta to the sample's loss weight (1 otherwise);
 * PERTURB_BRIGHTNESS adds delta to every pixel of the sample. At every
 * appearance of the sample. sample < 0: none. */
#define PERTURB_WEIGHT (-1)
#define PERTURB_BRIGHTNESS (-2)
typedef struct perturbation {
    int64_t sample, pixel;
    double delta;
} perturbation;

/* The samples of step k this rank owns: its block of the batch (all of it
 * on one process); *count of them, *global in the whole batch. */
const int32_t *step_rows(const schedule *s, const dist *dd, int64_t k, int64_t *count, int64_t *global);

/* Step k's inputs on this rank (its rows, step_rows), new tensors in ctx:
 * x [count, pixels] in dtype, y i32 [count], w [count] in dtype (the
 * per-sample loss weights, 1). Returns the ctx status. */
hg_status step_inputs(hg_ctx *ctx, const dataset *d, const schedule *s, const dist *dd, int64_t k, hg_dtype dtype,
                      const perturbation *pert, hg_tensor **x, hg_tensor **y, hg_tensor **w);

/* The training loss of a batch of `global` samples, of which x holds this
 * rank's rows: (1/global) sum_i w_i CE_i over them, so that the sum over
 * ranks is the batch mean (hg_mean of w_i CE_i when x is the whole batch). */
hg_tensor *train_loss(hg_ctx *ctx, const hg_mlp *spec, hg_tensor *const *params, hg_tensor *x, hg_tensor *y,
                      hg_tensor *w, int64_t global);

/* The state of training at one step: parameters and optimizer state, in
 * hg_opt_step's layout (see hyper.h), t = steps taken with that state. */
typedef struct train_state {
    int np, ns;
    hg_tensor *params[HYPER_MAX_PARAMS];
    hg_tensor *opt[2 * HYPER_MAX_PARAMS];
    int t;
} train_state;

typedef struct train_report {
    double seconds;
    double accuracy;   /* on the test rows after the last epoch */
    double final_loss; /* mean training loss of the last epoch */
} train_report;

/* Trains from fresh weights (He init from seed, rank 0's on every rank)
 * with the training-form optimizer cfg over all steps of s, in dtype,
 * printing one line per epoch (test accuracy on x_test/y_test) and a
 * progress bar. Over MPI (dd) each rank computes the gradient of its part
 * of the batch loss, the parts are summed over the ranks in rank order and
 * every rank takes the same optimizer step; the accuracy is counted on each
 * rank's block of the test rows. At step `capture`
 * (0 <= capture <= steps: before that step runs) a copy of the state is
 * made in keep (weights and the optimizer's exported state). final gets
 * the trained weights (in ctx). Returns 0, or -1 with the error printed. */
int train(hg_ctx *ctx, hg_ctx *keep, const dist *dd, const dataset *d, const schedule *s, const hg_mlp *spec,
          const hg_opt_config *cfg, hg_dtype dtype, uint64_t seed, hg_tensor *x_test, hg_tensor *y_test,
          int64_t capture, train_state *captured, hg_tensor **final, train_report *rep);

#endif
