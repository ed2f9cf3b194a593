/* A one-line progress bar for the long phases of mnist_hypergrad (drawn
 * only when stdout is a terminal; otherwise silent). */
#ifndef MNIST_PROGRESS_H
#define MNIST_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct progress {
    const char *label;
    int64_t total;
    double start, last_draw;
    bool tty;
} progress;

double now_seconds(void);

void progress_begin(progress *p, const char *label, int64_t total);
/* done of total; note: a short text after the bar (may be NULL). Redraws at
 * most ten times a second. */
void progress_update(progress *p, int64_t done, const char *note);
/* Clears the bar; returns the seconds since progress_begin. */
double progress_end(progress *p);

#endif
