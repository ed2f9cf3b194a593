/* Finding and loading MNIST-format data for mnist_hypergrad, with a small
 * synthetic fallback. */
#ifndef MNIST_DATA_H
#define MNIST_DATA_H

#include <hgrad.h>
#include <stdbool.h>

typedef struct dataset {
    hg_tensor *x_train, *y_train; /* f32 [n, rows * cols] in [0, 1], i32 [n] */
    hg_tensor *x_test, *y_test;
    int64_t rows, cols; /* the images' size, from the files */
    int classes;        /* 1 + the largest label (at least 10) */
    char source[512];   /* where it came from, for the output */
    bool synthetic;
    bool split_from_test; /* only t10k files: split into train/test */
    bool fashion;         /* Fashion-MNIST (by its folder name): class names */
} dataset;

/* "7" for digits, "sneaker" for Fashion-MNIST, "bar 3" for synthetic data. */
const char *dataset_class_name(const dataset *d, int label, char *buf, size_t size);

/* Directory from --data (dir_option), else $HGRAD_DATA, else Debian's
 * Fashion-MNIST. Loads train-* and t10k-* (gzip or raw); if only t10k-*
 * exist, splits them 80/20. If nothing is found (or force_synthetic), says
 * where it looked and builds a synthetic set. train_limit > 0 keeps only
 * that many training samples. Returns 0 on success; prints the error and
 * returns -2 for a usage error (a --data folder without the files, no
 * training or no held-out images) and -1 for others (a malformed file). */
int dataset_load(hg_ctx *ctx, const char *dir_option, bool force_synthetic, int64_t train_limit, uint64_t seed,
                 dataset *d);

/* Rows [start, start + count) of x (f32 [n, pixels]) / labels, as new tensors. */
hg_tensor *rows_f32(hg_ctx *ctx, hg_tensor *x, int64_t start, int64_t count);
hg_tensor *rows_i32(hg_ctx *ctx, hg_tensor *y, int64_t start, int64_t count);

#endif
