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
#include "mnist/fd.h"
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
    bool synthetic;  /* --synthetic: the built-in set even if data exist */
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
    int repeat;
    uint64_t seed;
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mnist_hypergrad [options]\n"
            "       mnist_hypergrad --case DIR [--steps K] [--opt sgd|adam] [--lr LR] [--dtype f32|f64] [--repeat N]\n"
            "\n"
            "Trains a 784-64-64-10 ReLU MLP, then computes dE_val/dx_train, the gradient of the\n"
            "validation loss with respect to every pixel of a training batch through K unrolled\n"
            "optimizer steps (double backward), checks it against finite differences, ranks the\n"
            "training samples by their influence and draws the result. See docs/hypergradient.md.\n"
            "\n"
            "  --data DIR        MNIST-format IDX files, gzip or raw (default: $HGRAD_DATA, then\n"
            "                    /usr/share/datasets/fashion-mnist; a synthetic set if none).\n"
            "                    Only t10k-* files: they are split 80/20 into training and held out\n"
            "  --synthetic       use the small built-in synthetic set (no files needed)\n"
            "  --epochs N        training epochs (default 10)\n"
            "  --train-limit N   train on the first N training images only\n"
            "  --batch N         training samples in the unrolled steps (default 32)\n"
            "  --val N           held-out images in the validation loss (default 1000)\n"
            "  --steps K         unrolled optimizer steps (default 1)\n"
            "  --opt NAME        sgd | momentum | adam (default adam, fresh state, as in the question)\n"
            "  --lr X            step size of the unrolled steps (default 1e-3 for adam, 0.1 otherwise)\n"
            "  --dtype T         f32 | f64 for the hypergradient (default f64)\n"
            "  --loss L          ce | mse: validation loss, cross-entropy or squared error of the\n"
            "                    softmax against one-hot labels (default ce)\n"
            "  --fd-pixels N     pixels checked by finite differences (default 12; 0: no check)\n"
            "  --seed N          random seed (default 1)\n"
            "  --out FILE        the picture (default mnist_hypergrad.png)\n"
            "  --case DIR        cross-check mode: DIR/{W1,b1,W2,b2,W3,b3,x_train,y_train,x_val,y_val}.npy\n"
            "                    in, DIR/dx.npy out; prints val_loss, median_seconds, peak_bytes\n"
            "  --repeat N        timing repeats in cross-check mode (default 1)\n"
            "  --help            this text\n"
            "\n"
            "Exit status: 0 success, 1 error, 2 bad usage, 3 the finite-difference check failed.\n");
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
        if (!strcmp(a, "--synthetic")) {
            o->synthetic = true;
            continue;
        }
        static const char *const with_value[] = {"--data", "--out",   "--case", "--epochs", "--train-limit",
                                                 "--batch", "--val",  "--steps", "--fd-pixels", "--repeat",
                                                 "--seed",  "--lr",   "--opt",  "--dtype",  "--loss"};
        bool known = false;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            known = known || !strcmp(a, with_value[k]);
        if (!known) {
            fprintf(stderr, "error: unknown option %s (--help lists them)\n", a);
            return -1;
        }
        if (!v) {
            fprintf(stderr, "error: %s needs a value\n", a);
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
    const char *bad = o->epochs < 0        ? "--epochs must be >= 0"
                      : o->train_limit < 0 ? "--train-limit must be >= 0"
                      : o->batch < 1       ? "--batch must be >= 1"
                      : o->val < 1         ? "--val must be >= 1"
                      : o->steps < 1       ? "--steps must be >= 1"
                      : o->steps > 10000   ? "--steps must be <= 10000"
                      : o->fd_pixels < 0   ? "--fd-pixels must be >= 0"
                      : o->repeat < 1      ? "--repeat must be >= 1"
                      : !(o->lr >= 0) || !isfinite(o->lr) ? "--lr must be a positive number"
                                                          : NULL;
    if (bad) {
        fprintf(stderr, "error: %s\n", bad);
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
static int train(hg_ctx *ctx, const options *o, const dataset *d, const hg_mlp *spec, hg_tensor **params,
                 double *accuracy)
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
    double t0 = now_seconds();
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
        if (isnan(acc))
            return -1;
        printf("%s  epoch %2d/%d  train loss %.4f  test accuracy %.2f%%  (%.1f s)%s\n", tty ? "\r" : "", e,
               o->epochs, loss_sum / (double)(batches ? batches : 1), 100 * acc, now_seconds() - t0,
               tty ? "            " : "");
        *accuracy = acc;
    }
    if (o->epochs == 0) {
        *accuracy = hg_accuracy(ctx, hg_mlp_forward(ctx, spec, params, d->x_test), d->y_test);
        hg_ctx_rewind(ctx, step_mark);
    }
    return hg_ctx_status(ctx) == HG_OK ? 0 : -1;
}

/* Finite differences are trusted for a derivative when three consecutive
 * steps agree to this (relative); the check asks for 1e-6 on those. */
#define FD_RESOLVED 3e-7
#define CHECK_TARGET 1e-6
#define CHECK_FAILED 1e-4 /* a resolved pixel this far off is a bug: exit status 3 */

typedef struct check_summary {
    int checked, unresolved;
    double worst, err2, ref2;
} check_summary;

/* One derivative against finite differences; prints a line. */
static void check_one(check_summary *s, const char *what, double exact, fd_estimate fd)
{
    double rel = fd_relative_error(exact, fd.value);
    double unc = fd.uncertainty / fmax(fabs(fd.value), 1e-300);
    bool resolved = fd.uncertainty <= FD_RESOLVED * fabs(fd.value) || (fd.value == 0 && exact == 0);
    printf("  %s exact % .10e  fd % .10e  (h %.0e, fd spread %.0e)  rel err %.1e%s\n", what, exact, fd.value, fd.h,
           unc, rel, resolved ? "" : "  ~ not resolved by fd, not counted");
    if (!resolved) {
        s->unresolved++;
        return;
    }
    s->checked++;
    s->worst = fmax(s->worst, rel);
    s->err2 += (exact - fd.value) * (exact - fd.value);
    s->ref2 += fd.value * fd.value;
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

static const char *human_bytes(double b, char *buf, size_t size)
{
    if (b >= 1e9)
        snprintf(buf, size, "%.1f GB", b / 1e9);
    else if (b >= 1e6)
        snprintf(buf, size, "%.1f MB", b / 1e6);
    else
        snprintf(buf, size, "%.1f kB", b / 1e3);
    return buf;
}

static int run(const options *o)
{
    double t_start = now_seconds(), t0;
    hg_ctx *ctx = hg_ctx_new(NULL), *hctx = NULL;
    if (!ctx) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    int rc = 1;
    ranked *rank = NULL;
    dataset d;
    char name[64], buf[64];

    printf("== 1. data\n");
    t0 = now_seconds();
    if (dataset_load(ctx, o->data_dir, o->synthetic, o->train_limit, o->seed, &d) != 0)
        goto done;
    int64_t n_train = hg_tensor_dim(d.x_train, 0), n_test = hg_tensor_dim(d.x_test, 0);
    printf("  source: %s\n  %lld training and %lld held-out images, 28 x 28%s\n", d.source, (long long)n_train,
           (long long)n_test, d.synthetic ? "  ** SYNTHETIC DATA, NOT REAL IMAGES **" : "");
    double t_data = now_seconds() - t0;

    printf("\n== 2. training a 784-64-64-10 ReLU MLP with Adam (lr 1e-3, batch 64, f32, %d epoch%s)\n", o->epochs,
           o->epochs == 1 ? "" : "s");
    t0 = now_seconds();
    hg_mlp spec = {3, {784, 64, 64, 10}, HG_ACT_RELU};
    hg_tensor *params[N_PARAMS];
    double accuracy = 0;
    if (train(ctx, o, &d, &spec, params, &accuracy) != 0) {
        fprintf(stderr, "error: training failed: %s\n", hg_ctx_error(ctx));
        goto done;
    }
    printf("  test accuracy %.2f%% on %lld held-out images%s\n", 100 * accuracy, (long long)n_test,
           d.synthetic ? " (SYNTHETIC)" : d.fashion ? " (about 87% is typical for this network on Fashion-MNIST)" : "");
    double t_train = now_seconds() - t0;

    /* The problem: one training batch (a random window of the training
     * set), the first `val` held-out images as the validation set. */
    int64_t batch = o->batch < n_train ? o->batch : n_train;
    int64_t val = o->val < n_test ? o->val : n_test;
    hyper_problem p = {.spec = spec, .steps = o->steps, .loss = o->loss};
    memcpy(p.params, params, sizeof p.params);
    hg_rng rng;
    hg_rng_seed(&rng, o->seed + 7);
    int64_t start = (int64_t)(hg_rng_next(&rng) % (uint64_t)(n_train - batch + 1));
    p.x_train = rows_f32(ctx, d.x_train, start, batch);
    p.y_train = rows_i32(ctx, d.y_train, start, batch);
    p.x_val = rows_f32(ctx, d.x_test, 0, val);
    p.y_val = rows_i32(ctx, d.y_test, 0, val);
    p.opt = (hg_opt_config){.kind = o->opt, .lr = o->lr > 0 ? o->lr : (o->opt == HG_OPT_ADAM ? 1e-3 : 0.1),
                            .momentum = 0.9};
    if (hg_ctx_status(ctx) != HG_OK) {
        fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
        goto done;
    }
    printf("\n== 3. hypergradient dE_val/dx_train through %d unrolled %s step%s (lr %g%s), in %s\n", o->steps,
           hg_opt_name(o->opt), o->steps > 1 ? "s" : "", p.opt.lr,
           o->opt == HG_OPT_ADAM ? ", fresh state from t = 1" : o->opt == HG_OPT_MOMENTUM ? ", mu 0.9" : "",
           hg_dtype_name(o->dtype));
    printf("  training batch: samples #%lld..#%lld (%lld), all 784 pixels, all layers\n", (long long)start,
           (long long)(start + batch - 1), (long long)batch);
    printf("  E_val: %s on %lld held-out images\n",
           o->loss == VAL_LOSS_CE ? "mean cross-entropy" : "mean squared error of softmax vs one-hot (--loss mse)",
           (long long)val);
    /* Its own arena, so that its peak is the hypergradient's memory. */
    hctx = hg_ctx_new(NULL);
    hyper_problem ph, p64, p0;
    hyper_result res, res64, r0;
    if (!hctx || hyper_convert(hctx, &p, o->dtype, &ph) != HG_OK) {
        fprintf(stderr, "error: %s\n", hctx ? hg_ctx_error(hctx) : "out of memory");
        goto done;
    }
    p0 = ph;
    p0.steps = 0; /* E_val at the trained weights, before the steps */
    hg_mark before = hg_ctx_mark(hctx);
    if (hyper_run(hctx, &p0, false, false, &r0) != HG_OK) {
        fprintf(stderr, "error: %s\n", hg_ctx_error(hctx));
        goto done;
    }
    hg_ctx_rewind(hctx, before);
    size_t base = hg_ctx_get_stats(hctx).bytes_in_use;
    hg_ctx_reset_peak(hctx);
    t0 = now_seconds();
    if (hyper_run(hctx, &ph, true, true, &res) != HG_OK) {
        fprintf(stderr, "error: hypergradient: %s\n", hg_ctx_error(hctx));
        goto done;
    }
    double t_hyper = now_seconds() - t0;
    size_t peak = hg_ctx_get_stats(hctx).peak_bytes - base;
    double norm = 0, maxabs = 0;
    bool finite = true;
    for (int64_t k = 0; k < batch * 784; k++) {
        double v = hg_get(res.dx, k);
        finite = finite && isfinite(v);
        norm += v * v;
        maxabs = fmax(maxabs, fabs(v));
    }
    printf("  E_val %.8f before the step%s, %.8f after\n", r0.val_loss, o->steps > 1 ? "s" : "", res.val_loss);
    printf("  dE_val/dx_train: %lld x 784 values, norm %.4e, max |value| %.4e%s\n", (long long)batch, sqrt(norm),
           maxabs, finite ? "" : "  ** NOT FINITE **");
    int64_t n_params = 784 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10;
    char hb[32], jb[32];
    printf("  one outer reverse sweep through the recorded steps: %.3f s, arena peak %s\n", t_hyper,
           human_bytes((double)peak, hb, sizeof hb));
    printf("  (the explicit Jacobian dgrad/dx_train would hold %lld x %lld entries: %s in %s)\n",
           (long long)n_params, (long long)(batch * 784),
           human_bytes((double)n_params * (double)(batch * 784) * (double)hg_dtype_size(o->dtype), jb, sizeof jb),
           hg_dtype_name(o->dtype));

    printf("\n== 4. check against central finite differences in f64 (re-running the %d step%s for each value)\n",
           o->steps, o->steps > 1 ? "s" : "");
    double t_fd0 = now_seconds();
    if (hyper_convert(hctx, &p, HG_F64, &p64) != HG_OK) {
        fprintf(stderr, "error: %s\n", hg_ctx_error(hctx));
        goto done;
    }
    if (o->dtype == HG_F64)
        res64 = res;
    else if (hyper_run(hctx, &p64, true, true, &res64) != HG_OK) {
        fprintf(stderr, "error: %s\n", hg_ctx_error(hctx));
        goto done;
    }
    printf("  4th-order stencil at steps h = 1e-2, 3e-3, ..., 1e-7; each estimate is taken where three\n"
           "  consecutive steps agree best, and counted when they agree to %.0e (the fd spread)\n",
           FD_RESOLVED);
    /* Through Adam, a pixel that is 0 in its image moves W1 gradient entries
     * that are exactly 0 (no other batch image lights that pixel for that
     * hidden unit): Adam's stiff point, where the derivative is large and
     * real but central differences err by about h |dg/dx| / eps for any h.
     * Such pixels are not drawn. SGD and momentum are smooth: any pixel. */
    bool adam = o->opt == HG_OPT_ADAM;
    double *x64 = hg_tensor_f64(p64.x_train);
    int64_t n_fg = 0;
    for (int64_t k = 0; k < batch * 784; k++)
        n_fg += x64[k] > 0;
    if (adam)
        printf("  through Adam, pixels are drawn from the foreground of their image (x > 0: %.0f%% of the\n"
               "  batch's pixels); a background pixel moves W1 gradient entries that are exactly 0, Adam's\n"
               "  stiff point, where the derivative is large and real but finite differences cannot\n"
               "  resolve it (docs/hypergradient.md)\n",
               100.0 * (double)n_fg / (double)(batch * 784));
    hyper_target target = {hctx, &p64};
    check_summary cs = {0};
    for (int tries = 0; cs.checked < o->fd_pixels && tries < 3 * o->fd_pixels && (!adam || n_fg); tries++) {
        int64_t i = (int64_t)(hg_rng_next(&rng) % (uint64_t)batch);
        int j = (int)(hg_rng_next(&rng) % 784);
        if (adam && !(x64[i * 784 + j] > 0)) {
            tries--;
            continue;
        }
        fd_estimate fd = fd_derivative(&x64[i * 784 + j], hyper_val_loss, &target, 1e-2, 1e-7);
        char what[96];
        snprintf(what, sizeof what, "sample %3lld pixel (%2d,%2d) x=%.2f:", (long long)i, j / 28, j % 28,
                 x64[i * 784 + j]);
        check_one(&cs, what, hg_get(res64.dx, i * 784 + j), fd);
    }
    check_summary pixels = cs;
    printf("  pixels: %d checked, worst relative error %.1e, relative error of the checked vector %.1e",
           pixels.checked, pixels.worst, sqrt(pixels.err2 / fmax(pixels.ref2, 1e-300)));
    if (pixels.unresolved)
        printf("; %d not resolved by finite differences", pixels.unresolved);
    printf("\n");
    if (o->dtype == HG_F32) {
        double diff = 0, ref = 0;
        for (int64_t k = 0; k < batch * 784; k++) {
            double a = hg_get(res.dx, k), b = hg_get(res64.dx, k);
            diff += (a - b) * (a - b);
            ref += b * b;
        }
        printf("  the f32 hypergradient differs from the f64 one by %.1e (relative, whole array)\n",
               sqrt(diff / fmax(ref, 1e-300)));
    }
    double t_fd = now_seconds() - t_fd0;

    printf("\n== 5. ranking the training samples by dE_val/dw_i (training loss mean_i w_i CE_i, at w = 1)\n");
    rank = malloc((size_t)batch * sizeof *rank);
    if (!rank) {
        fprintf(stderr, "error: out of memory\n");
        goto done;
    }
    for (int64_t i = 0; i < batch; i++)
        rank[i] = (ranked){i, hg_get(res.dw, i)};
    qsort(rank, (size_t)batch, sizeof *rank, by_influence);
    int top = (int)(batch / 2 < 8 ? batch / 2 : 8);
    if (top < 1)
        top = 1;
    const int32_t *labels = hg_tensor_ci32(p.y_train);
    printf("  dE_val/dw_i < 0: sample i helps (weighing it more lowers E_val); > 0: it hurts\n");
    printf("  %-38s %s\n", "most helpful", "most harmful");
    for (int k = 0; k < top; k++) {
        const ranked *g = &rank[k], *b = &rank[batch - 1 - k];
        char left[64];
        snprintf(left, sizeof left, "#%-6lld %-12s %+.3e", (long long)(start + g->index),
                 dataset_class_name(&d, labels[g->index], name, sizeof name), g->dw);
        printf("  %-38s #%-6lld %-12s %+.3e\n", left, (long long)(start + b->index),
               dataset_class_name(&d, labels[b->index], buf, sizeof buf), b->dw);
    }
    /* The ranking's derivatives are checked like the pixels. */
    double *w64 = NULL;
    if (o->fd_pixels > 0) {
        p64.w = hg_ones(hctx, HG_F64, 1, &batch);
        if (!p64.w) {
            fprintf(stderr, "error: %s\n", hg_ctx_error(hctx));
            goto done;
        }
        w64 = hg_tensor_f64(p64.w);
        t0 = now_seconds();
        int64_t pick[2] = {rank[0].index, rank[batch - 1].index};
        for (int k = 0; k < (batch > 1 ? 2 : 1); k++) {
            fd_estimate fd = fd_derivative(&w64[pick[k]], hyper_val_loss, &target, 1e-2, 1e-7);
            char what[64];
            snprintf(what, sizeof what, "check dE_val/dw of #%lld:", (long long)(start + pick[k]));
            check_one(&cs, what, hg_get(res64.dw, pick[k]), fd);
        }
        t_fd += now_seconds() - t0;
    }
    bool pass = cs.checked > 0 && cs.worst <= CHECK_TARGET, failed = cs.worst > CHECK_FAILED;
    if (o->fd_pixels > 0)
        printf("\n  finite-difference check: %d derivatives, worst relative error %.1e: %s\n", cs.checked,
               cs.worst,
               failed ? "CHECK FAILED"
               : pass ? "agrees to 1e-6"
                      : cs.checked ? "above 1e-6, below 1e-4 (see the fd spreads above)" : "nothing resolved");

    printf("\n== 6. picture\n");
    t0 = now_seconds();
    picture_sample good[8], bad[8];
    const float *img = hg_tensor_cf32(p.x_train);
    const double *dx64 = hg_tensor_cf64(res64.dx);
    for (int k = 0; k < top; k++) {
        const ranked *g = &rank[k], *b = &rank[batch - 1 - k];
        good[k] = (picture_sample){.image = img + g->index * 784, .dx = dx64 + g->index * 784, .influence = g->dw};
        bad[k] = (picture_sample){.image = img + b->index * 784, .dx = dx64 + b->index * 784, .influence = b->dw};
        dataset_class_name(&d, labels[g->index], good[k].caption, sizeof good[k].caption);
        dataset_class_name(&d, labels[b->index], bad[k].caption, sizeof bad[k].caption);
    }
    char title[320];
    snprintf(title, sizeof title,
             "DE_VAL/DX_TRAIN THROUGH %d %s STEP%s (LR %g) ON %lld TRAINING SAMPLES, %s\n"
             "E_VAL: %s ON %lld HELD-OUT IMAGES%s",
             o->steps, hg_opt_name(o->opt), o->steps > 1 ? "S" : "", p.opt.lr, (long long)batch,
             d.synthetic ? "SYNTHETIC DATA (NOT REAL IMAGES)" : d.fashion ? "FASHION-MNIST" : "MNIST-FORMAT DATA",
             o->loss == VAL_LOSS_CE ? "CROSS-ENTROPY" : "MSE OF SOFTMAX VS ONE-HOT", (long long)val,
             o->dtype == HG_F32 ? " (MAPS FROM THE F64 RUN)" : "");
    int pic = picture_write(o->out_png, title, good, top, bad, top);
    if (pic == 0)
        printf("  wrote %s: the %d most helpful and %d most harmful samples above their heat maps\n", o->out_png,
               top, top);
    double t_pic = now_seconds() - t0;

    printf("\n== 7. timings and memory\n");
    printf("  data %.2f s | training %.2f s | hypergradient %.3f s | finite differences %.2f s | picture %.2f s"
           " | total %.2f s\n",
           t_data, t_train, t_hyper, t_fd, t_pic, now_seconds() - t_start);
    printf("  hypergradient arena peak %s (above its inputs)\n", human_bytes((double)peak, hb, sizeof hb));
    rc = pic < 0 ? 1 : failed ? 3 : 0;
done:
    free(rank);
    hg_ctx_free(hctx);
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
