/* The picture of mnist_hypergrad: training images beside their
 * dE_val/dx heat maps, written as a PNG with libpng. */
#ifndef MNIST_PICTURE_H
#define MNIST_PICTURE_H

#include <stdint.h>

typedef struct picture_sample {
    const float *image;   /* 784 values in [0, 1] */
    const double *dx;     /* 784 values of dE_val/dx for this sample */
    int label;
    double influence;     /* dE_val/dw for the sample */
} picture_sample;

/* Two sections (helpful, harmful) of n samples each. Returns 0 on success,
 * -1 with a message on stderr. Without libpng (built with -Dpng=disabled)
 * it says so and returns 1. */
int picture_write(const char *path, const char *title, const picture_sample *helpful, int n_helpful,
                  const picture_sample *harmful, int n_harmful);

#endif
