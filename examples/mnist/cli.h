/* The command line of mnist_hypergrad: options, range-checked parsing,
 * usage text, and the checks that can be made before the long run (output
 * files writable, option combinations). Bad usage is exit status 2 and
 * touches no file. */
#ifndef MNIST_CLI_H
#define MNIST_CLI_H

#include "hyper.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Which training steps the hypergradient goes through. */
typedef enum through_kind {
    THROUGH_LAST_EPOCH = 0, /* default: every step of the last epoch */
    THROUGH_ALL,            /* --through all: every step from initialisation */
    THROUGH_STEPS           /* --steps K: the last K steps */
} through_kind;

typedef struct options {
    const char *data_dir;
    bool synthetic; /* --synthetic: the built-in set */
    const char *out_png;
    const char *influence_path; /* dE_val/dw_i for every training sample (.npy) */
    const char *dx_path;        /* dE_val/dx for every training image (.npy, f32), or NULL */
    const char *case_dir;
    hg_mlp spec; /* input and output sizes filled in from the data */
    int epochs;
    int64_t train_limit;
    int64_t batch;
    int64_t val;
    through_kind through;
    int64_t steps;    /* THROUGH_STEPS: K */
    bool fresh_state; /* the unrolled steps start from a fresh optimizer state */
    int snapshots;    /* the unroll's snapshot budget (0: HYPERGRAD_SNAPSHOT_BYTES' worth) */
    hg_opt_kind opt;
    double lr; /* 0: the optimizer's default */
    hg_dtype dtype;
    val_loss_kind loss;
    int fd_pixels;
    double fd_tolerance;     /* exit status 3 above it */
    bool fd_tolerance_given; /* then also when nothing is resolved */
    int linearity;           /* --linearity N: leave-one-out for N samples each way (-1: off) */
    int repeat;
    bool repeat_given, steps_given;
    uint64_t seed;
} options;

/* Fills o from argv. Returns 0 to run, 1 when --help was printed (exit 0),
 * -1 after printing a clear message on stderr (exit 2). Checks ranges,
 * combinations and, unless in --case mode or check_outputs is false (MPI
 * ranks that write nothing), that every output file can be written
 * (without touching it). */
int cli_parse(int argc, char **argv, options *o, bool check_outputs);

/* The learning rate in effect (the option, or the optimizer's default). */
double cli_lr(const options *o);

void cli_usage(FILE *f);

#endif
