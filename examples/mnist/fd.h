/* Central finite differences with an automatic choice of step size, for
 * checking hypergradients (mnist_hypergrad and its tests).
 *
 * One fixed step cannot serve every derivative here: rounding in f64 wants
 * a large step (its error is about eps_machine * |E| / h), while Adam's
 * stiff, sign-like first step wants a small one (a gradient entry near 0
 * must not be pushed across the region |g| < ~1e-8 where the update bends).
 * So the derivative is estimated at a ladder of steps h_max, h_max/sqrt(10),
 * ..., h_min, each with the 4th-order stencil
 *     (-E(x+2h) + 8E(x+h) - 8E(x-h) + E(x-2h)) / 12h,
 * and the estimate is taken where three consecutive steps agree best; the
 * largest difference among those three is reported as the estimate's own
 * uncertainty. */
#ifndef MNIST_FD_H
#define MNIST_FD_H

/* E at the current value of the perturbed variable. */
typedef double (*fd_function)(void *user);

typedef struct fd_estimate {
    double value;       /* the derivative estimate */
    double uncertainty; /* absolute: spread of the three agreeing estimates */
    double h;           /* the step of the middle one */
    int evaluations;    /* calls of f */
} fd_estimate;

#define FD_MAX_STEPS 16

/* dE/dx at *x (restored afterwards) with steps from h_max down to h_min. A
 * NaN from f makes that step's estimate NaN (never chosen unless all are). */
fd_estimate fd_derivative(double *x, fd_function f, void *user, double h_max, double h_min);

/* The same, stopping as soon as three consecutive steps agree to `enough`
 * relative (each step costs four evaluations of f; 0: never stop early). */
fd_estimate fd_derivative_until(double *x, fd_function f, void *user, double h_max, double h_min, double enough);

/* |a - b| / max(|a|, |b|), 0 if both are 0. */
double fd_relative_error(double a, double b);

#endif
