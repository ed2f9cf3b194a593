/* Third derivative of f(x) = x e^x by three nested tapes, checked against
 * the closed form f'''(x) = (x + 3) e^x. Built in the tree and, by the tests,
 * outside it against the installed library with pkg-config:
 *
 *   cc third_derivative.c $(pkg-config --cflags --libs hgrad) -o third_derivative
 */
#include <hgrad.h>

#include <math.h>
#include <stdio.h>

/* d^3/dx^3 of x e^x at x, or NAN with a message on error. */
static double third_derivative(hg_ctx *ctx, double x0)
{
    hg_tensor *x = hg_scalar(ctx, HG_F64, x0);
    hg_tape *t1 = hg_tape_begin(ctx, 0), *t2 = hg_tape_begin(ctx, 0), *t3 = hg_tape_begin(ctx, 0);
    hg_watch(t1, x);
    hg_watch(t2, x);
    hg_watch(t3, x);
    hg_tensor *y = hg_mul(ctx, x, hg_exp(ctx, x)); /* y = x e^x */
    hg_tensor *d1, *d2, *d3;
    hg_tape_end(t3);
    hg_gradient(t3, y, 1, &x, NULL, &d1); /* (x + 1) e^x, recorded on t1, t2 */
    hg_tape_end(t2);
    hg_gradient(t2, d1, 1, &x, NULL, &d2); /* (x + 2) e^x, recorded on t1 */
    hg_tape_end(t1);
    hg_gradient(t1, d2, 1, &x, NULL, &d3); /* (x + 3) e^x */
    if (hg_ctx_status(ctx) != HG_OK) {
        fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
        return NAN;
    }
    return hg_item(d3);
}

int main(void)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    if (!ctx)
        return 1;
    int failures = 0;
    const double points[] = {-2.0, -0.5, 0.0, 0.7, 1.5, 3.0};
    for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
        double x = points[i];
        double got = third_derivative(ctx, x);
        double want = (x + 3.0) * exp(x);
        double err = fabs(got - want);
        int ok = err <= 1e-10 * fmax(1.0, fabs(want));
        printf("x = %5.2f  f'''(x) = %.15f  closed form %.15f  |err| %.1e  %s\n", x, got, want, err,
               ok ? "ok" : "MISMATCH");
        failures += !ok;
        hg_ctx_reset(ctx);
    }
    hg_ctx_free(ctx);
    return failures ? 1 : 0;
}
