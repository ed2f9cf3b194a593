/* The picture of mnist_hypergrad: the most helpful and most harmful
 * training images, each above its dE_val/dx heat map, written as a PNG with
 * libpng. */
#ifndef MNIST_PICTURE_H
#define MNIST_PICTURE_H

#include <stdint.h>

typedef struct picture_sample {
    const float *image; /* rows * cols values in [0, 1], row-major */
    const double *dx;   /* rows * cols values of dE_val/dx for this sample */
    char caption[24];   /* class name, e.g. "sneaker" or "7" */
    double influence;   /* dE_val/dw for the sample */
} picture_sample;

#define PICTURE_MAX_COLUMNS 12

/* Two sections (helpful, harmful) of up to PICTURE_MAX_COLUMNS samples
 * each, images of rows x cols pixels, under a title of up to two lines
 * ('\n' separates them). The file is written beside path and renamed over
 * it on success. Returns 0 on success, -1 with a message on stderr. Without
 * libpng (built with -Dpng=disabled) it says so and returns 1. */
int picture_write(const char *path, const char *title, int rows, int cols, const picture_sample *helpful, int n_helpful,
                  const picture_sample *harmful, int n_harmful);

#endif
