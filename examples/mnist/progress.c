/* Progress bar (see progress.h). */
#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_begin(progress *p, const char *label, int64_t total)
{
    p->label = label;
    p->total = total > 0 ? total : 1;
    p->start = now_seconds();
    p->last_draw = 0;
    p->tty = isatty(STDOUT_FILENO);
}

void progress_update(progress *p, int64_t done, const char *note)
{
    double t = now_seconds();
    if (!p->tty || (t - p->last_draw < 0.1 && done < p->total))
        return;
    p->last_draw = t;
    int width = 30, filled = (int)(width * done / p->total);
    double elapsed = t - p->start, eta = done > 0 ? elapsed * (double)(p->total - done) / (double)done : 0;
    printf("\r  %-22s [", p->label);
    for (int i = 0; i < width; i++)
        putchar(i < filled ? '#' : '.');
    printf("] %3d%%  %5.1f s", (int)(100 * done / p->total), elapsed);
    if (done > 0 && done < p->total)
        printf(", ~%.0f s left", eta);
    printf("  %s\033[K", note ? note : "");
    fflush(stdout);
}

double progress_end(progress *p)
{
    if (p->tty) {
        printf("\r\033[K");
        fflush(stdout);
    }
    return now_seconds() - p->start;
}
