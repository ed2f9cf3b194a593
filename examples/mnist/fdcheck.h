/* The finite-difference check of mnist_hypergrad: a few derivatives of
 * E_val with respect to one input (a pixel or a sample's loss weight),
 * each estimated on a ladder of steps (fd.h) by replaying the training
 * steps, compared with the hypergradient. */
#ifndef MNIST_FDCHECK_H
#define MNIST_FDCHECK_H

#include "hypergrad.h"

/* Counted when three consecutive steps agree to this (relative); the check
 * asks for 1e-6 on those. */
#define FD_RESOLVED 3e-7
#define FD_TARGET 1e-6
#define FD_FAILED 1e-4 /* --fd-tolerance's default: a resolved derivative this far off is a bug (exit 3) */

typedef struct fd_summary {
    int checked, unresolved;
    double worst;
    double seconds;
    int evaluations;
} fd_summary;

/* Checks dE/dw of the most helpful and most harmful samples, and `pixels`
 * pixels of those samples (the largest |dE/dx| of each map; through Adam
 * only pixels lit in their image, see docs/hypergradient.md), printing a
 * line per derivative and a progress bar. h_max..h_min: the ladder. */
void fd_check(hg_ctx *ctx, const hypergrad_problem *p, const hypergrad_result *r, int pixels, double h_max,
              double h_min, fd_summary *out);

#endif
