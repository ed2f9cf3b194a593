/* --case DIR: the hypergradient on weights, data and (optionally) a warm
 * optimizer state given as .npy files, for comparison with other
 * frameworks. */
#ifndef MNIST_CROSSCHECK_H
#define MNIST_CROSSCHECK_H

#include <hgrad.h>

/* Longest DIR accepted: DIR plus the longest file name must fit a path. */
#define CROSSCHECK_MAX_DIR 4000

typedef struct crosscheck_options {
    const char *dir;
    int steps;
    hg_opt_kind opt;
    double lr; /* <= 0: 0.1 for SGD/momentum, 1e-3 for Adam */
    hg_dtype dtype;
    int repeat;
} crosscheck_options;

/* Reads DIR/W1.npy, b1.npy, ... WL.npy, bL.npy (L = 1..HG_MLP_MAX_LAYERS,
 * as many layers as there are W files; ReLU between layers), x_train.npy
 * [n, in], y_train.npy, x_val.npy, y_val.npy, and the optional warm state:
 * t.npy (an integer, the steps the state has taken), uW1.npy ... (momentum)
 * or mW1.npy ... and vW1.npy ... (Adam), each the shape of its parameter.
 * Writes DIR/dx.npy (float64, the shape of x_train). Returns the process
 * exit code: 0, 1 on an error (printed). */
int crosscheck_run(const crosscheck_options *o);

#endif
