/* Finite differences on a ladder of step sizes (see fd.h). */
#include "fd.h"

#include <math.h>

static double stencil(double *x, fd_function f, void *user, double h)
{
    double saved = *x, e[4];
    static const double offsets[4] = {2, 1, -1, -2};
    for (int k = 0; k < 4; k++) {
        *x = saved + offsets[k] * h;
        e[k] = f(user);
    }
    *x = saved;
    return (-e[0] + 8 * e[1] - 8 * e[2] + e[3]) / (12 * h);
}

fd_estimate fd_derivative(double *x, fd_function f, void *user, double h_max, double h_min)
{
    return fd_derivative_until(x, f, user, h_max, h_min, 0);
}

fd_estimate fd_derivative_until(double *x, fd_function f, void *user, double h_max, double h_min, double enough)
{
    double d[FD_MAX_STEPS], h[FD_MAX_STEPS];
    int n = 0;
    for (double step = h_max; n < FD_MAX_STEPS && step >= h_min * 0.999; step /= sqrt(10.0), n++) {
        h[n] = step;
        d[n] = stencil(x, f, user, step);
        if (n >= 2 && enough > 0 && fmax(fabs(d[n] - d[n - 1]), fabs(d[n - 1] - d[n - 2])) <= enough * fabs(d[n - 1])) {
            n++;
            break; /* three consecutive steps agree: the smaller steps are not needed */
        }
    }
    fd_estimate best = {NAN, INFINITY, NAN, 4 * n};
    if (n < 3) {
        if (n > 0)
            best.value = d[n - 1], best.h = h[n - 1];
        return best;
    }
    for (int k = 0; k + 2 < n; k++) {
        double spread = fmax(fabs(d[k] - d[k + 1]), fabs(d[k + 1] - d[k + 2]));
        if (spread < best.uncertainty) { /* false for NaN */
            best.value = d[k + 1];
            best.uncertainty = spread;
            best.h = h[k + 1];
        }
    }
    return best;
}

double fd_relative_error(double a, double b)
{
    double scale = fmax(fabs(a), fabs(b));
    return scale > 0 ? fabs(a - b) / scale : 0;
}
