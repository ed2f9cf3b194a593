/* How far the hypergradient predicts real changes (--linearity N): for the
 * most helpful and most harmful samples, E_val replayed with the sample's
 * loss weight changed by eps, and with its image brightened by eps, against
 * the first-order prediction eps * dE/dw (eps * sum_j dE/dx_j), for eps
 * from 1e-6 to 1; then leave-one-out (the weight set to 0, so the sample
 * drops out of every step it is in) for the N most helpful and N most
 * harmful samples against the prediction -dE/dw: Pearson and Spearman
 * correlations. Each value is one replay of the steps from the sample's
 * first one. */
#ifndef MNIST_LINEARITY_H
#define MNIST_LINEARITY_H

#include "hypergrad.h"

/* Prints the tables; returns the seconds it took. */
double linearity_report(hg_ctx *ctx, const hypergrad_problem *p, const hypergrad_result *r, int n);

#endif
