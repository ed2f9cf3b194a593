/* --case DIR: the hypergradient on weights and data given as .npy files,
 * for comparison with other frameworks. */
#ifndef MNIST_CROSSCHECK_H
#define MNIST_CROSSCHECK_H

#include <hgrad.h>

typedef struct crosscheck_options {
    const char *dir;
    int steps;
    hg_opt_kind opt;
    double lr;     /* <= 0: 0.1 for SGD/momentum, 1e-3 for Adam */
    hg_dtype dtype;
    int repeat;
} crosscheck_options;

/* Returns the process exit code. */
int crosscheck_run(const crosscheck_options *o);

#endif
