/* Cross-check mode (see crosscheck.h): dE_val/dx_train through K steps on
 * inputs read from .npy files; prints the validation loss, the median time
 * over the repeats and the peak memory, writes DIR/dx.npy. */
#include "crosscheck.h"

#include "hyper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* DIR/NAME.npy into buf; false (and a message) if it does not fit. */
static bool path_of(const char *dir, const char *name, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s.npy", dir, name);
    if (n < 0 || (size_t)n >= size) {
        fprintf(stderr, "error: --case: the path %s/%s.npy is too long\n", dir, name);
        return false;
    }
    return true;
}

static bool exists(const char *dir, const char *name)
{
    char path[4096];
    return path_of(dir, name, path, sizeof path) && access(path, F_OK) == 0;
}

static hg_tensor *load(hg_ctx *ctx, const char *dir, const char *name)
{
    char path[4096];
    if (!path_of(dir, name, path, sizeof path))
        return NULL;
    hg_tensor *t = hg_npy_load(ctx, path);
    if (!t)
        fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
    return t;
}

/* Parameter names W1, b1, W2, ... */
static void param_name(int i, char *buf, size_t size)
{
    snprintf(buf, size, "%c%d", i % 2 ? 'b' : 'W', i / 2 + 1);
}

/* The optional warm optimizer state of p (see crosscheck.h). 0 on success. */
static int load_state(hg_ctx *ctx, const char *dir, hg_opt_kind kind, int np, hyper_problem *p)
{
    if (exists(dir, "t")) {
        hg_tensor *t = load(ctx, dir, "t");
        if (!t)
            return -1;
        double v = hg_tensor_numel(t) == 1 ? hg_get(t, 0) : -1;
        if (!(v >= 0 && v <= 1e9) || v != (double)(int)v) {
            fprintf(stderr, "error: %s/t.npy must hold one integer step count >= 0\n", dir);
            return -1;
        }
        p->t0 = (int)v;
    }
    const char *slots = kind == HG_OPT_ADAM ? "mv" : kind == HG_OPT_MOMENTUM ? "u" : "";
    for (int s = 0; slots[s]; s++)
        for (int i = 0; i < np; i++) {
            char pname[16], name[24];
            param_name(i, pname, sizeof pname);
            snprintf(name, sizeof name, "%c%s", slots[s], pname);
            if (!exists(dir, name))
                continue; /* zeros */
            hg_tensor *st = load(ctx, dir, name);
            if (!st)
                return -1;
            if (hg_tensor_rank(st) != hg_tensor_rank(p->params[i]) ||
                hg_tensor_numel(st) != hg_tensor_numel(p->params[i])) {
                fprintf(stderr, "error: %s/%s.npy must have the shape of %s.npy\n", dir, name, pname);
                return -1;
            }
            p->state[s * np + i] = st;
        }
    return 0;
}

int crosscheck_run(const crosscheck_options *o)
{
    if (strlen(o->dir) > CROSSCHECK_MAX_DIR) {
        fprintf(stderr, "error: --case: the folder name is longer than %d characters\n", CROSSCHECK_MAX_DIR);
        return 2;
    }
    hg_ctx *data_ctx = hg_ctx_new(NULL);
    if (!data_ctx)
        return 1;
    hyper_problem p;
    memset(&p, 0, sizeof p);
    int rc = 1;
    /* The layers come from the W files: W_l is [in, out]. */
    p.spec.hidden = HG_ACT_RELU;
    int layers = 0;
    char name[16];
    for (int l = 0; l < HG_MLP_MAX_LAYERS; l++) {
        param_name(2 * l, name, sizeof name);
        if (!exists(o->dir, name))
            break;
        hg_tensor *W = load(data_ctx, o->dir, name);
        param_name(2 * l + 1, name, sizeof name);
        hg_tensor *b = W ? load(data_ctx, o->dir, name) : NULL;
        if (!b)
            goto done;
        if (hg_tensor_rank(W) != 2 || (layers && hg_tensor_dim(W, 0) != p.spec.sizes[l])) {
            fprintf(stderr, "error: W%d.npy must be 2-D [in, out], in = the previous layer's out\n", l + 1);
            goto done;
        }
        p.params[2 * l] = W;
        p.params[2 * l + 1] = b;
        p.spec.sizes[l] = hg_tensor_dim(W, 0);
        p.spec.sizes[l + 1] = hg_tensor_dim(W, 1);
        layers = p.spec.n_layers = l + 1;
    }
    if (!layers) {
        fprintf(stderr, "error: --case %s: no W1.npy\n", o->dir);
        goto done;
    }
    if (!(p.x_train = load(data_ctx, o->dir, "x_train")) || !(p.y_train = load(data_ctx, o->dir, "y_train")) ||
        !(p.x_val = load(data_ctx, o->dir, "x_val")) || !(p.y_val = load(data_ctx, o->dir, "y_val")) ||
        load_state(data_ctx, o->dir, o->opt, 2 * layers, &p) != 0)
        goto done;
    p.opt.kind = o->opt;
    p.opt.lr = o->lr > 0 ? o->lr : (o->opt == HG_OPT_ADAM ? 1e-3 : 0.1);
    p.opt.momentum = 0.9;
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
    if (!path_of(o->dir, "dx", out, sizeof out)) {
    } else if (hg_npy_save_as(out, r.dx, HG_NPY_F64) != HG_OK) {
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
