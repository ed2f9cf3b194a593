/* The `epoch` case of hgrad_bench (bench/epoch.c): the hypergradient
 * through a whole training epoch or run with hg_unroll. */
#ifndef HGRAD_BENCH_EPOCH_H
#define HGRAD_BENCH_EPOCH_H

#include <hgrad.h>
#include <stdbool.h>

typedef struct epoch_options {
    const char *data_dir; /* NULL: /usr/share/datasets/fashion-mnist */
    int epochs;           /* training epochs (default 5) */
    int batch;            /* 32 */
    int64_t val;          /* validation images (default 1000) */
    bool through_all;     /* through every step from initialisation */
    int snapshots;        /* < 0: as many as fit in 48 MB */
    int check;            /* > 0: compare with one full tape on that many steps */
} epoch_options;

/* Runs the case and prints its figures; returns 0, 77 without the data, or
 * exits with 1 on a library error. */
int bench_epoch(const epoch_options *o);

#endif
