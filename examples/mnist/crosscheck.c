/* Cross-check mode: read DIR/{W1,b1,W2,b2,W3,b3,x_train,y_train,x_val,y_val}.npy,
 * compute dE_val/dx_train through K steps, write DIR/dx.npy, print the
 * validation loss, the median time over the repeats and the peak memory. */
#include "crosscheck.h"

#include "hyper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static hg_tensor *load(hg_ctx *ctx, const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    hg_tensor *t = hg_npy_load(ctx, path);
    if (!t)
        fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
    return t;
}

int crosscheck_run(const crosscheck_options *o)
{
    hg_ctx *data_ctx = hg_ctx_new(NULL);
    if (!data_ctx)
        return 1;
    static const char *const names[N_PARAMS] = {"W1", "b1", "W2", "b2", "W3", "b3"};
    hyper_problem p;
    memset(&p, 0, sizeof p);
    int rc = 1;
    for (int i = 0; i < N_PARAMS; i++)
        if (!(p.params[i] = load(data_ctx, o->dir, names[i])))
            goto done;
    if (!(p.x_train = load(data_ctx, o->dir, "x_train")) || !(p.y_train = load(data_ctx, o->dir, "y_train")) ||
        !(p.x_val = load(data_ctx, o->dir, "x_val")) || !(p.y_val = load(data_ctx, o->dir, "y_val")))
        goto done;
    /* The layer sizes come from the weights: W_l is [in, out]. */
    p.spec.n_layers = 3;
    p.spec.hidden = HG_ACT_RELU;
    for (int l = 0; l < 3; l++) {
        if (hg_tensor_rank(p.params[2 * l]) != 2) {
            fprintf(stderr, "error: W%d.npy must be 2-D [in, out]\n", l + 1);
            goto done;
        }
        p.spec.sizes[l] = hg_tensor_dim(p.params[2 * l], 0);
        p.spec.sizes[l + 1] = hg_tensor_dim(p.params[2 * l], 1);
    }
    p.opt.kind = o->opt;
    p.opt.lr = o->lr > 0 ? o->lr : (o->opt == HG_OPT_ADAM ? 1e-3 : 0.1);
    p.opt.beta1 = 0.9;
    p.opt.beta2 = 0.999;
    p.opt.eps = 1e-8;
    p.steps = o->steps;
    p.loss = VAL_LOSS_CE;
    int repeat = o->repeat > 0 ? o->repeat : 1;
    double *times = calloc((size_t)repeat, sizeof *times);
    hg_ctx *ctx = hg_ctx_new(NULL);
    hyper_problem q;
    if (!times || !ctx || hyper_convert(ctx, &p, o->dtype, &q) != HG_OK) {
        fprintf(stderr, "error: %s\n", ctx ? hg_ctx_error(ctx) : "out of memory");
        free(times);
        hg_ctx_free(ctx);
        goto done;
    }
    /* Peak memory of the computation alone: above the converted inputs. */
    hg_mark inputs = hg_ctx_mark(ctx);
    size_t base = hg_ctx_get_stats(ctx).bytes_in_use;
    hyper_result r;
    size_t peak = 0;
    for (int k = 0; k < repeat; k++) {
        hg_ctx_rewind(ctx, inputs);
        hg_ctx_reset_peak(ctx);
        double t0 = now_seconds();
        hg_status s = hyper_run(ctx, &q, true, false, &r);
        times[k] = now_seconds() - t0;
        if (s != HG_OK) {
            fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
            free(times);
            hg_ctx_free(ctx);
            goto done;
        }
        peak = hg_ctx_get_stats(ctx).peak_bytes - base;
    }
    char out[4096];
    snprintf(out, sizeof out, "%s/dx.npy", o->dir);
    if (hg_npy_save_as(out, r.dx, HG_NPY_F64) != HG_OK) {
        fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
    } else {
        qsort(times, (size_t)repeat, sizeof *times, by_value);
        printf("val_loss %.12f\n", r.val_loss);
        printf("median_seconds %.6f\n", times[repeat / 2]);
        printf("min_seconds %.6f\n", times[0]);
        printf("peak_bytes %zu\n", peak);
        printf("wrote %s\n", out);
        rc = 0;
    }
    free(times);
    hg_ctx_free(ctx);
done:
    hg_ctx_free(data_ctx);
    return rc;
}
