/* mnist_hypergrad: how much does the validation error change when a
 * training sample is perturbed?
 *
 * Trains a 784-64-64-10 ReLU MLP with Adam, then computes the exact
 * hypergradient dE_val/dx_train through K unrolled optimizer steps (all
 * layers, all 784 pixels) by nested tapes, checks it against finite
 * differences in f64, ranks training samples by their influence on the
 * validation loss, and draws the most helpful and harmful ones beside their
 * heat maps. `mnist_hypergrad --help` lists the options; --case DIR runs the
 * cross-check mode. docs/hypergradient.md explains the mathematics. */
#include <hgrad.h>

#include "mnist/crosscheck.h"
#include "mnist/data.h"
#include "mnist/hyper.h"
#include "mnist/picture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct options {
    const char *data_dir;
    const char *out_png;
    const char *case_dir;
    int epochs;
    int64_t train_limit;
    int64_t batch;   /* training samples in the unrolled steps */
    int64_t val;     /* validation samples */
    int steps;
    hg_opt_kind opt;
    double lr;       /* <= 0: the optimizer's default */
    hg_dtype dtype;
    val_loss_kind loss;
    int fd_pixels;
    double fd_h;     /* <= 0: the default step for the optimizer */
    int repeat;
    uint64_t seed;
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mnist_hypergrad [options]\n"
            "  --data DIR        MNIST-format IDX files (default: $HGRAD_DATA, then\n"
            "                    /usr/share/datasets/fashion-mnist; synthetic if none)\n"
            "  --epochs N        training epochs (default 10)\n"
            "  --train-limit N   use only the first N training samples\n"
            "  --batch N         training samples in the unrolled steps (default 32)\n"
            "  --val N           validation samples (default 1000)\n"
            "  --steps K         unrolled optimizer steps (default 1)\n"
            "  --opt NAME        sgd | momentum | adam (default adam)\n"
            "  --lr X            step size (default 1e-3 for adam, 0.1 otherwise)\n"
            "  --dtype T         f32 | f64 for the hypergradient (default f64)\n"
            "  --loss L          ce | mse validation loss (default ce)\n"
            "  --fd-pixels N     pixels checked by finite differences (default 12)\n"
            "  --fd-h X          finite-difference step (default 1e-4; 1e-6 through adam)\n"
            "  --seed N          random seed (default 1)\n"
            "  --out FILE        picture (default mnist_hypergrad.png)\n"
            "  --case DIR        cross-check mode (see docs/hypergradient.md)\n"
            "  --repeat N        repeats in cross-check mode (default 1)\n");
}

static int parse_args(int argc, char **argv, options *o)
{
    *o = (options){.out_png = "mnist_hypergrad.png", .epochs = 10, .batch = 32, .val = 1000, .steps = 1,
                   .opt = HG_OPT_ADAM, .dtype = HG_F64, .loss = VAL_LOSS_CE, .fd_pixels = 12, .repeat = 1,
                   .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!v) {
            fprintf(stderr, "error: %s needs a value (or unknown option)\n", a);
            return -1;
        }
        i++;
        char *end = NULL;
        if (!strcmp(a, "--data"))
            o->data_dir = v;
        else if (!strcmp(a, "--out"))
            o->out_png = v;
        else if (!strcmp(a, "--case"))
            o->case_dir = v;
        else if (!strcmp(a, "--epochs"))
            o->epochs = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--train-limit"))
            o->train_limit = strtoll(v, &end, 10);
        else if (!strcmp(a, "--batch"))
            o->batch = strtoll(v, &end, 10);
        else if (!strcmp(a, "--val"))
            o->val = strtoll(v, &end, 10);
        else if (!strcmp(a, "--steps"))
            o->steps = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--fd-pixels"))
            o->fd_pixels = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--repeat"))
            o->repeat = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, &end, 10);
        else if (!strcmp(a, "--lr"))
            o->lr = strtod(v, &end);
        else if (!strcmp(a, "--fd-h"))
            o->fd_h = strtod(v, &end);
        else if (!strcmp(a, "--opt")) {
            if (hg_opt_parse(v, &o->opt) != 0) {
                fprintf(stderr, "error: --opt must be sgd, momentum or adam\n");
                return -1;
            }
        } else if (!strcmp(a, "--dtype")) {
            if (strcmp(v, "f32") && strcmp(v, "f64")) {
                fprintf(stderr, "error: --dtype must be f32 or f64\n");
                return -1;
            }
            o->dtype = strcmp(v, "f32") ? HG_F64 : HG_F32;
        } else if (!strcmp(a, "--loss")) {
            if (strcmp(v, "ce") && strcmp(v, "mse")) {
                fprintf(stderr, "error: --loss must be ce or mse\n");
                return -1;
            }
            o->loss = strcmp(v, "ce") ? VAL_LOSS_MSE : VAL_LOSS_CE;
        } else {
            fprintf(stderr, "error: unknown option %s\n", a);
            usage(stderr);
            return -1;
        }
        if (end && *end) {
            fprintf(stderr, "error: %s: not a number: %s\n", a, v);
            return -1;
        }
    }
    if (o->epochs < 0 || o->batch < 1 || o->val < 1 || o->steps < 1 || o->fd_pixels < 0 || o->repeat < 1) {
        fprintf(stderr, "error: sizes must be positive (epochs >= 0, fd-pixels >= 0)\n");
        return -1;
    }
    return 0;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void progress(int epoch, int epochs, int64_t done, int64_t total, double loss, bool tty)
{
    if (!tty)
        return;
    int width = 30, filled = (int)(width * done / (total ? total : 1));
    printf("\r  epoch %d/%d [", epoch, epochs);
    for (int i = 0; i < width; i++)
        putchar(i < filled ? '#' : '.');
    printf("] %3d%%  loss %.4f", (int)(100 * done / (total ? total : 1)), loss);
    fflush(stdout);
}

/* Phase 2: Adam training (training form, f32, one mark/rewind per step). */
static int train(hg_ctx *ctx, const options *o, const dataset *d, const hg_mlp *spec, hg_tensor **params)
{
    hg_rng rng;
    hg_rng_seed(&rng, o->seed);
    if (hg_mlp_init(ctx, spec, HG_F32, HG_INIT_HE, &rng, params) != HG_OK)
        return -1;
    hg_opt_config adam = {.kind = HG_OPT_ADAM, .lr = 1e-3};
    hg_optimizer *opt = hg_optimizer_new(ctx, &adam, N_PARAMS, params);
    if (!opt)
        return -1;
    int64_t n = hg_tensor_dim(d->x_train, 0), batch = 64;
    bool tty = isatty(STDOUT_FILENO);
    hg_mark step_mark = hg_ctx_mark(ctx);
    for (int e = 1; e <= o->epochs; e++) {
        double loss_sum = 0;
        int64_t batches = 0;
        for (int64_t s = 0; s + batch <= n; s += batch) {
            hg_tensor *xb = rows_f32(ctx, d->x_train, s, batch), *yb = rows_i32(ctx, d->y_train, s, batch);
            hg_tape *tape = hg_tape_begin(ctx, 0);
            hg_watch_n(tape, N_PARAMS, params);
            hg_tensor *loss = hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, spec, params, xb), yb);
            hg_tape_end(tape);
            hg_tensor *grads[N_PARAMS];
            if (hg_gradient(tape, loss, N_PARAMS, params, NULL, grads) != HG_OK ||
                hg_optimizer_step(opt, grads) != HG_OK)
                return -1;
            loss_sum += hg_item(loss);
            batches++;
            if (batches % 50 == 0)
                progress(e, o->epochs, s + batch, n, loss_sum / (double)batches, tty);
            hg_ctx_rewind(ctx, step_mark);
        }
        progress(e, o->epochs, n, n, loss_sum / (double)(batches ? batches : 1), tty);
        double acc = hg_accuracy(ctx, hg_mlp_forward(ctx, spec, params, d->x_test), d->y_test);
        hg_ctx_rewind(ctx, step_mark);
        printf("%s  epoch %d/%d  train loss %.4f  test accuracy %.2f%%\n", tty ? "\r" : "", e, o->epochs,
               loss_sum / (double)(batches ? batches : 1), 100 * acc);
    }
    return hg_ctx_status(ctx) == HG_OK ? 0 : -1;
}

/* Central differences of E_val with respect to x_train[i, j], 4th order:
 * (-E(+2h) + 8E(+h) - 8E(-h) + E(-2h)) / 12h, re-running the steps. */
static double finite_difference(hg_ctx *ctx, const hyper_problem *p64, int64_t i, int64_t j, double h)
{
    double *x = hg_tensor_f64(p64->x_train) + i * 784 + j, saved = *x, e[4];
    const double offsets[4] = {2, 1, -1, -2};
    for (int k = 0; k < 4; k++) {
        hg_mark m = hg_ctx_mark(ctx);
        hyper_result r;
        *x = saved + offsets[k] * h;
        e[k] = hyper_run(ctx, p64, false, false, &r) == HG_OK ? r.val_loss : NAN;
        hg_ctx_rewind(ctx, m);
    }
    *x = saved;
    return (-e[0] + 8 * e[1] - 8 * e[2] + e[3]) / (12 * h);
}

typedef struct ranked {
    int64_t index;
    double dw;
} ranked;

static int by_influence(const void *a, const void *b)
{
    double x = ((const ranked *)a)->dw, y = ((const ranked *)b)->dw;
    return x < y ? -1 : x > y;
}

static int run(const options *o)
{
    double t_start = now_seconds(), t_phase;
    hg_ctx *ctx = hg_ctx_new(NULL);
    if (!ctx)
        return 1;
    int rc = 1;
    dataset d;
    printf("== 1. data\n");
    t_phase = now_seconds();
    if (dataset_load(ctx, o->data_dir, o->train_limit, o->seed, &d) != 0)
        goto done;
    int64_t n_train = hg_tensor_dim(d.x_train, 0), n_test = hg_tensor_dim(d.x_test, 0);
    printf("  source: %s\n  %lld training and %lld test images\n", d.source, (long long)n_train, (long long)n_test);
    double t_data = now_seconds() - t_phase;

    printf("== 2. training a 784-64-64-10 ReLU MLP with Adam (lr 1e-3, batch 64, f32)\n");
    t_phase = now_seconds();
    hg_mlp spec = {3, {784, 64, 64, 10}, HG_ACT_RELU};
    hg_tensor *params[N_PARAMS];
    if (train(ctx, o, &d, &spec, params) != 0) {
        fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
        goto done;
    }
    double t_train = now_seconds() - t_phase;

    int64_t batch = o->batch < n_train ? o->batch : n_train;
    int64_t val = o->val < n_test ? o->val : n_test;
    hyper_problem p = {.spec = spec, .steps = o->steps, .loss = o->loss};
    memcpy(p.params, params, sizeof p.params);
    /* The training batch: a random window of the training set. */
    hg_rng rng;
    hg_rng_seed(&rng, o->seed + 7);
    int64_t start = (int64_t)(hg_rng_next(&rng) % (uint64_t)(n_train - batch + 1));
    p.x_train = rows_f32(ctx, d.x_train, start, batch);
    p.y_train = rows_i32(ctx, d.y_train, start, batch);
    p.x_val = rows_f32(ctx, d.x_test, 0, val);
    p.y_val = rows_i32(ctx, d.y_test, 0, val);
    p.opt = (hg_opt_config){.kind = o->opt, .lr = o->lr > 0 ? o->lr : (o->opt == HG_OPT_ADAM ? 1e-3 : 0.1),
                            .momentum = 0.9};
    printf("== 3. hypergradient dE_val/dx_train: %d %s step%s (lr %g) on %lld training samples, "
           "E_val = %s on %lld validation samples, %s\n",
           o->steps, hg_opt_name(o->opt), o->steps > 1 ? "s" : "", p.opt.lr, (long long)batch,
           o->loss == VAL_LOSS_CE ? "mean cross-entropy" : "MSE(softmax, one-hot)", (long long)val,
           hg_dtype_name(o->dtype));
    t_phase = now_seconds();
    hg_ctx *hctx = hg_ctx_new(NULL); /* its own arena: its peak is the hypergradient's memory */
    hyper_problem ph, p64;
    hyper_result res, res64;
    if (!hctx || hyper_convert(hctx, &p, o->dtype, &ph) != HG_OK) {
        fprintf(stderr, "error: %s\n", hctx ? hg_ctx_error(hctx) : "out of memory");
        hg_ctx_free(hctx);
        goto done;
    }
    hg_ctx_reset_peak(hctx);
    size_t base = hg_ctx_get_stats(hctx).bytes_in_use;
    double t_h0 = now_seconds();
    if (hyper_run(hctx, &ph, true, true, &res) != HG_OK) {
        fprintf(stderr, "error: %s\n", hg_ctx_error(hctx));
        hg_ctx_free(hctx);
        goto done;
    }
    double t_hyper = now_seconds() - t_h0;
    size_t peak = hg_ctx_get_stats(hctx).peak_bytes - base;
    double norm = 0, maxabs = 0;
    for (int64_t k = 0; k < batch * 784; k++) {
        double v = hg_get(res.dx, k);
        norm += v * v;
        maxabs = fmax(maxabs, fabs(v));
    }
    printf("  E_val after the step%s: %.6f\n", o->steps > 1 ? "s" : "", res.val_loss);
    printf("  dE_val/dx_train: %lld x 784 values, |dx| = %.4e, max |dx_ij| = %.4e\n", (long long)batch, sqrt(norm),
           maxabs);
    printf("  time %.3f s, peak memory %.2f MB (no Jacobian: one sweep through the recorded gradient)\n", t_hyper,
           (double)peak / 1e6);

    printf("== 4. check against finite differences (f64, 4th-order central differences)\n");
    double t_fd0 = now_seconds();
    if (hyper_convert(hctx, &p, HG_F64, &p64) != HG_OK ||
        (o->dtype == HG_F64 ? (res64 = res, HG_OK) : hyper_run(hctx, &p64, true, false, &res64)) != HG_OK) {
        fprintf(stderr, "error: %s\n", hg_ctx_error(hctx));
        hg_ctx_free(hctx);
        goto done;
    }
    /* Through Adam, a pixel that is 0 in every batch image leaves its weight
     * gradients exactly 0: Adam's first step is sign-like there, so finite
     * differences cannot resolve the (large, real) derivative. Check pixels
     * that are nonzero in their image; SGD has no such stiffness. */
    bool stiff = o->opt == HG_OPT_ADAM;
    double h = o->fd_h > 0 ? o->fd_h : stiff ? 1e-6 : 1e-4, worst = 0, err2 = 0, ref2 = 0;
    int checked = 0;
    const double *x64 = hg_tensor_f64(p64.x_train);
    for (int tries = 0; checked < o->fd_pixels && tries < 100000; tries++) {
        int64_t i = (int64_t)(hg_rng_next(&rng) % (uint64_t)batch), j = (int64_t)(hg_rng_next(&rng) % 784);
        if (stiff && x64[i * 784 + j] < 0.05)
            continue;
        double exact = hg_get(res64.dx, i * 784 + j);
        double fd = finite_difference(hctx, &p64, i, j, h);
        double rel = fabs(exact - fd) / fmax(fmax(fabs(exact), fabs(fd)), 1e-300);
        worst = fmax(worst, rel);
        err2 += (exact - fd) * (exact - fd);
        ref2 += fd * fd;
        printf("  sample %3lld pixel %3lld (x = %.3f): exact % .10e  finite diff % .10e  rel err %.1e\n",
               (long long)i, (long long)j, x64[i * 784 + j], exact, fd, rel);
        checked++;
    }
    printf("  relative error |exact - fd| / |fd| over the %d pixels: %.2e; worst single pixel %.2e (h = %g)\n",
           checked, sqrt(err2 / fmax(ref2, 1e-300)), worst, h);
    if (stiff)
        printf("  (foreground pixels only: through Adam, finite differences cannot resolve the stiff, sign-like\n"
               "   step at exactly-zero gradients; see docs/hypergradient.md. --opt sgd checks every pixel.)\n");
    if (o->dtype == HG_F32) {
        double diff = 0, ref = 0;
        for (int64_t k = 0; k < batch * 784; k++) {
            double a = hg_get(res.dx, k), b = hg_get(res64.dx, k);
            diff += (a - b) * (a - b);
            ref += b * b;
        }
        printf("  f32 hypergradient vs f64: relative difference %.2e\n", sqrt(diff / fmax(ref, 1e-300)));
    }
    double t_fd = now_seconds() - t_fd0;

    printf("== 5. ranking training samples by dE_val/dw_i (loss weight of sample i, at w = 1)\n");
    ranked *rank = malloc((size_t)batch * sizeof *rank);
    if (!rank) {
        hg_ctx_free(hctx);
        goto done;
    }
    for (int64_t i = 0; i < batch; i++)
        rank[i] = (ranked){i, hg_get(res.dw, i)};
    qsort(rank, (size_t)batch, sizeof *rank, by_influence);
    int top = batch >= 16 ? 8 : (int)(batch / 2 > 0 ? batch / 2 : 1);
    const int32_t *labels = hg_tensor_i32(p.y_train);
    printf("  most helpful (upweighting lowers E_val):");
    for (int k = 0; k < top; k++)
        printf(" #%lld(label %d, %+.2e)", (long long)(start + rank[k].index), labels[rank[k].index], rank[k].dw);
    printf("\n  most harmful (upweighting raises E_val):");
    for (int k = 0; k < top; k++) {
        const ranked *r = &rank[batch - 1 - k];
        printf(" #%lld(label %d, %+.2e)", (long long)(start + r->index), labels[r->index], r->dw);
    }
    printf("\n");

    printf("== 6. picture\n");
    picture_sample good[8], bad[8];
    const float *img = hg_tensor_f32(p.x_train);
    const double *dx64 = hg_tensor_f64(res64.dx);
    for (int k = 0; k < top; k++) {
        int64_t gi = rank[k].index, bi = rank[batch - 1 - k].index;
        good[k] = (picture_sample){img + gi * 784, dx64 + gi * 784, labels[gi], rank[k].dw};
        bad[k] = (picture_sample){img + bi * 784, dx64 + bi * 784, labels[bi], rank[batch - 1 - k].dw};
    }
    char title[160];
    snprintf(title, sizeof title, "DE_VAL/DX_TRAIN THROUGH %d %s STEP%s%s", o->steps, hg_opt_name(o->opt),
             o->steps > 1 ? "S" : "", d.synthetic ? " (SYNTHETIC DATA)" : "");
    if (picture_write(o->out_png, title, good, top, bad, top) == 0)
        printf("  wrote %s\n", o->out_png);
    free(rank);
    hg_ctx_free(hctx);

    printf("== 7. timings\n");
    printf("  data %.2f s, training %.2f s, hypergradient %.3f s, finite differences %.2f s, total %.2f s\n", t_data,
           t_train, t_hyper, t_fd, now_seconds() - t_start);
    printf("  hypergradient peak memory %.2f MB\n", (double)peak / 1e6);
    rc = 0;
done:
    hg_ctx_free(ctx);
    return rc;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    if (o.case_dir) {
        crosscheck_options c = {o.case_dir, o.steps, o.opt, o.lr, o.dtype, o.repeat};
        return crosscheck_run(&c);
    }
    return run(&o);
}
