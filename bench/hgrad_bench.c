/* hgrad_bench: timing of the hypergradient dE_val/dx_train of the
 * 784-64-64-10 ReLU MLP (mean cross-entropy) through K unrolled,
 * differentiable optimizer steps, and of plain training steps.
 *
 * Cases (docs/performance.md):
 *   seed-sgd, seed-adam  1 training sample, 5 validation, 1 step
 *   adam-step            one recorded Adam step on 32 training samples (256
 *                        validation) and its vjp: the arena a checkpointed
 *                        unroll needs per step
 *   standard             32 training, 256 validation, 10 SGD steps, lr 0.1
 *   long                 standard with 100 steps
 *   large                256 training, 1000 validation, 10 SGD steps
 *   training             training-form Adam steps on batches of 32
 *
 * Per case and dtype it prints the median and spread of the time over the
 * repeats, the arena's peak bytes above the inputs, and the "GEMM limit":
 * the time of the same sequence of cblas_?gemm calls alone (recorded from a
 * real run by interposition, see gemm_trace.h, and replayed). A line
 * starting with RESULT carries the same figures as key=value pairs for
 * bench/compare_torch.py.
 *
 * Inputs: by default the weights are He-initialised (seed 42) and the data
 * are real Fashion-MNIST images from Debian's dataset-fashion-mnist
 * (/usr/share/datasets/fashion-mnist; t10k files: training rows from 0,
 * validation rows from 5000; --data DIR or $HGRAD_DATA for another IDX
 * directory), or uniform random images if the files are absent.
 * --export DIR writes these inputs as .npy files (W1,b1,W2,b2,
 * W3,b3 f64 with W [in,out]; x_train, x_val f64 [n,784]; y_train, y_val
 * int64) and --dir DIR reads them back (the layout of mnist_hypergrad
 * --case DIR) and writes DIR/dx_<dtype>.npy and DIR/dx.npy. */
#include <hgrad.h>

#include "epoch.h"
#include "gemm_trace.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The computation is the flagship's (cross-check mode), shared, not copied. */
#include "../examples/mnist/hyper.h"

typedef struct bench_case {
    const char *name;
    int n_train, n_val, steps;
    hg_opt_kind opt;
    double lr;
    bool training;
    int default_repeat;
} bench_case;

static const bench_case all_cases[] = {
    {"seed-sgd", 1, 5, 1, HG_OPT_SGD, 0.1, false, 200},
    {"seed-adam", 1, 5, 1, HG_OPT_ADAM, 1e-3, false, 200},
    /* one recorded Adam step on a batch of 32 and its vjp (the per-step
     * memory of a checkpointed unroll) */
    {"adam-step", 32, 256, 1, HG_OPT_ADAM, 1e-3, false, 50},
    {"standard", 32, 256, 10, HG_OPT_SGD, 0.1, false, 30},
    {"long", 32, 256, 100, HG_OPT_SGD, 0.1, false, 7},
    {"large", 256, 1000, 10, HG_OPT_SGD, 0.1, false, 11},
    /* training: n_train is the pool of samples cycled through in batches */
    {"training", 1024, 256, 0, HG_OPT_ADAM, 1e-3, true, 7},
};
#define N_CASES (int)(sizeof all_cases / sizeof all_cases[0])

typedef struct options {
    bool selected[N_CASES];
    bool dtypes[2]; /* f32, f64 */
    int repeat;     /* 0: per-case default */
    int warmup;
    const char *dir;
    const char *export_dir;
    const char *data_dir;
    int train_steps;
    int batch;
    bool no_gemm;
    hg_ctx_options ctx_opts; /* chunk_bytes from --chunk-mb */
    bool epoch;              /* the epoch case (bench/epoch.c), not part of "all" */
    epoch_options eo;
} options;

/* One problem's inputs (constants in some ctx): the flagship's. */
typedef hyper_problem problem;

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

typedef struct summary {
    double median, min, max, q1, q3;
} summary;

/* Sorts v. Quartiles by nearest rank. */
static summary summarize(double *v, int n)
{
    summary s = {0, 0, 0, 0, 0};
    if (n <= 0)
        return s;
    qsort(v, (size_t)n, sizeof *v, by_value);
    s.min = v[0];
    s.max = v[n - 1];
    s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    s.q1 = v[(n - 1) / 4];
    s.q3 = v[(3 * (n - 1) + 3) / 4];
    return s;
}

static void die_ctx(hg_ctx *ctx, const char *what)
{
    fprintf(stderr, "hgrad_bench: %s: %s\n", what, ctx ? hg_ctx_error(ctx) : "out of memory");
    exit(1);
}

/* ---- inputs -------------------------------------------------------------- */

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Directory holding t10k-images-idx3-ubyte(.gz), or NULL. */
static const char *find_mnist(const char *option, char *buf, size_t size)
{
    /* $HGRAD_DATA as for the examples; $HGRAD_MNIST is its older name here */
    const char *candidates[4] = {option, getenv("HGRAD_DATA"), getenv("HGRAD_MNIST"),
                                 "/usr/share/datasets/fashion-mnist"};
    for (int i = 0; i < 4; i++) {
        if (!candidates[i])
            continue;
        snprintf(buf, size, "%s/t10k-images-idx3-ubyte.gz", candidates[i]);
        if (file_exists(buf))
            return candidates[i];
        snprintf(buf, size, "%s/t10k-images-idx3-ubyte", candidates[i]);
        if (file_exists(buf))
            return candidates[i];
    }
    return NULL;
}

/* rows [start, start+count) of images f64 [N,28,28] as f64 [count,784]. */
static hg_tensor *image_rows(hg_ctx *ctx, hg_tensor *images, int64_t start, int64_t count)
{
    int64_t shape[2] = {count, 784};
    int64_t total = hg_tensor_dim(images, 0);
    hg_tensor *t = hg_tensor_new(ctx, HG_F64, 2, shape);
    if (!t)
        return NULL;
    const double *src = hg_tensor_cdata(images);
    double *dst = hg_tensor_data(t);
    for (int64_t i = 0; i < count; i++)
        memcpy(dst + i * 784, src + ((start + i) % total) * 784, 784 * sizeof(double));
    return t;
}

static hg_tensor *label_rows(hg_ctx *ctx, hg_tensor *labels, int64_t start, int64_t count)
{
    int64_t total = hg_tensor_dim(labels, 0);
    hg_tensor *t = hg_tensor_new(ctx, HG_I32, 1, &count);
    if (!t)
        return NULL;
    const int32_t *src = hg_tensor_cdata(labels);
    int32_t *dst = hg_tensor_data(t);
    for (int64_t i = 0; i < count; i++)
        dst[i] = src[(start + i) % total];
    return t;
}

static char data_source[600];

/* Default inputs of a case, f64 weights and data, in ctx. */
static void default_problem(hg_ctx *ctx, const options *o, const bench_case *c, problem *p)
{
    memset(p, 0, sizeof *p);
    p->spec = (hg_mlp){3, {784, 64, 64, 10}, HG_ACT_RELU};
    hg_rng rng;
    hg_rng_seed(&rng, 42);
    if (hg_mlp_init(ctx, &p->spec, HG_F64, HG_INIT_HE, &rng, p->params) != HG_OK)
        die_ctx(ctx, "weights");
    char buf[600];
    const char *dir = find_mnist(o->data_dir, buf, sizeof buf);
    hg_tensor *images = NULL, *labels = NULL;
    if (dir) {
        char lab[600];
        snprintf(lab, sizeof lab, "%s/t10k-labels-idx1-ubyte%s", dir, strstr(buf, ".gz") ? ".gz" : "");
        images = hg_idx_load(ctx, buf, HG_F64, 1.0 / 255.0, 0);
        labels = images ? hg_idx_load(ctx, lab, HG_I32, 1.0, 0) : NULL;
        if (!images || !labels)
            die_ctx(ctx, "reading MNIST");
        snprintf(data_source, sizeof data_source, "images from %s", dir);
    } else {
        int64_t shape[3] = {10000, 28, 28}, n = 10000;
        images = hg_rand_uniform(ctx, &rng, HG_F64, 3, shape, 0.0, 1.0);
        labels = hg_tensor_new(ctx, HG_I32, 1, &n);
        if (!images || !labels)
            die_ctx(ctx, "random data");
        int32_t *y = hg_tensor_data(labels);
        for (int64_t i = 0; i < n; i++)
            y[i] = (int32_t)(hg_rng_next(&rng) % 10);
        snprintf(data_source, sizeof data_source, "random images (no MNIST files found)");
    }
    p->x_train = image_rows(ctx, images, 0, c->n_train);
    p->y_train = label_rows(ctx, labels, 0, c->n_train);
    p->x_val = image_rows(ctx, images, 5000, c->n_val);
    p->y_val = label_rows(ctx, labels, 5000, c->n_val);
    if (hg_ctx_status(ctx) != HG_OK)
        die_ctx(ctx, "inputs");
}

static const char *const param_names[N_PARAMS] = {"W1", "b1", "W2", "b2", "W3", "b3"};

static hg_tensor *load_npy(hg_ctx *ctx, const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    hg_tensor *t = hg_npy_load(ctx, path);
    if (!t)
        die_ctx(ctx, path);
    return t;
}

static void dir_problem(hg_ctx *ctx, const char *dir, problem *p)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < N_PARAMS; i++)
        p->params[i] = load_npy(ctx, dir, param_names[i]);
    p->x_train = load_npy(ctx, dir, "x_train");
    p->y_train = load_npy(ctx, dir, "y_train");
    p->x_val = load_npy(ctx, dir, "x_val");
    p->y_val = load_npy(ctx, dir, "y_val");
    p->spec.n_layers = 3;
    p->spec.hidden = HG_ACT_RELU;
    for (int l = 0; l < 3; l++) {
        if (hg_tensor_rank(p->params[2 * l]) != 2) {
            fprintf(stderr, "hgrad_bench: %s.npy must be 2-D [in, out]\n", param_names[2 * l]);
            exit(1);
        }
        p->spec.sizes[l] = hg_tensor_dim(p->params[2 * l], 0);
        p->spec.sizes[l + 1] = hg_tensor_dim(p->params[2 * l], 1);
    }
    snprintf(data_source, sizeof data_source, "inputs from %s", dir);
}

static void save(const char *dir, const char *name, const hg_tensor *t, hg_npy_type type)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    if (hg_npy_save_as(path, t, type) != HG_OK) {
        fprintf(stderr, "hgrad_bench: cannot write %s\n", path);
        exit(1);
    }
}

static void export_problem(const char *dir, const problem *p)
{
    mkdir(dir, 0777);
    for (int i = 0; i < N_PARAMS; i++)
        save(dir, param_names[i], p->params[i], HG_NPY_F64);
    save(dir, "x_train", p->x_train, HG_NPY_F64);
    save(dir, "x_val", p->x_val, HG_NPY_F64);
    save(dir, "y_train", p->y_train, HG_NPY_I64);
    save(dir, "y_val", p->y_val, HG_NPY_I64);
}

static void convert_problem(hg_ctx *ctx, const problem *p, hg_dtype dtype, problem *q)
{
    if (hyper_convert(ctx, p, dtype, q) != HG_OK)
        die_ctx(ctx, "converting inputs");
}

/* ---- the hypergradient ---------------------------------------------------- */

static hg_opt_config opt_config(const bench_case *c)
{
    hg_opt_config cfg = {c->opt, c->lr, 0.0, 0.9, 0.999, 1e-8};
    return cfg;
}

/* Arena bytes in use when the recorded forward computation (steps and
 * E_val) is complete, before the outer sweep. */
static size_t forward_bytes_in_use;

/* dE_val/dx_train through `steps` unrolled steps of the case's optimizer
 * (examples/mnist/hyper.c: nested tapes, mean cross-entropy). */
static hg_status hypergradient(hg_ctx *ctx, const problem *p, const bench_case *c, int steps, hg_tensor **dx,
                               double *val_loss)
{
    problem q = *p;
    q.opt = opt_config(c);
    q.steps = steps;
    q.loss = VAL_LOSS_CE;
    q.w = NULL;
    hyper_result r;
    hg_status s = hyper_run(ctx, &q, true, false, &r);
    *dx = r.dx;
    *val_loss = r.val_loss;
    forward_bytes_in_use = r.forward_bytes;
    return s;
}

/* ---- reporting ------------------------------------------------------------ */

typedef struct result {
    summary time;      /* seconds per run (hypergradient) or per step (training) */
    double gemm_limit; /* replay median, seconds (-1: not measured) */
    double gemm_inrun; /* seconds inside BLAS in a traced run */
    size_t gemm_calls;
    size_t gemm_xsmm_calls; /* of gemm_calls: run by libxsmm */
    double gemm_madds;
    size_t peak_bytes;
    size_t forward_bytes; /* of peak_bytes: held by the recorded forward (before the outer sweep) */
    double val_loss;
    int repeats;
    /* training only */
    summary steps_per_s;
    long long steady_chunk_allocs, steady_bytes_reserved, steady_in_use_drift;
} result;

/* The matrix-product backend as one token: "cblas" or "libxsmm+cblas". */
static const char *backend_token(void)
{
    return strncmp(hg_matmul_backend(), "libxsmm", 7) == 0 ? "libxsmm+cblas" : "cblas";
}

static void print_result(const bench_case *c, hg_dtype dt, const result *r, int steps)
{
    const char *d = hg_dtype_name(dt);
    if (c->training) {
        printf("%-9s %s  %.1f steps/s median (min %.1f, max %.1f, IQR %.1f-%.1f) over %d repeats; "
               "%.1f us/step\n",
               c->name, d, r->steps_per_s.median, r->steps_per_s.min, r->steps_per_s.max, r->steps_per_s.q1,
               r->steps_per_s.q3, r->repeats, 1e6 * r->time.median);
        printf("          after the first step: %lld chunk allocations, %lld bytes reserved, bytes-in-use "
               "drift %lld => %s\n",
               r->steady_chunk_allocs, r->steady_bytes_reserved, r->steady_in_use_drift,
               r->steady_chunk_allocs == 0 && r->steady_bytes_reserved == 0 && r->steady_in_use_drift == 0
                   ? "no allocation per step"
                   : "ALLOCATES PER STEP");
        printf("          peak arena %.3f MB per step; GEMM limit %.1f us/step (%zu calls, %zu by libxsmm), "
               "time/GEMM %.2fx; backend %s\n",
               (double)r->peak_bytes / 1e6, 1e6 * r->gemm_limit, r->gemm_calls, r->gemm_xsmm_calls,
               r->gemm_limit > 0 ? r->time.median / r->gemm_limit : 0.0, backend_token());
    } else {
        printf("%-9s %s  median %.3f ms (min %.3f, max %.3f, IQR %.3f-%.3f) over %d repeats, K=%d\n", c->name, d,
               1e3 * r->time.median, 1e3 * r->time.min, 1e3 * r->time.max, 1e3 * r->time.q1, 1e3 * r->time.q3,
               r->repeats, steps);
        printf("          GEMM limit %.3f ms (%zu calls, %zu by libxsmm, %.1f Mmadd; %.3f ms inside the products in a "
               "traced run): time/GEMM limit %.2fx; backend %s\n",
               1e3 * r->gemm_limit, r->gemm_calls, r->gemm_xsmm_calls, r->gemm_madds / 1e6, 1e3 * r->gemm_inrun,
               r->gemm_limit > 0 ? r->time.median / r->gemm_limit : 0.0, backend_token());
        printf("          arena peak %.2f MB (%zu bytes; %.2f MB recorded forward, %.2f MB outer sweep); "
               "E_val %.12g\n",
               (double)r->peak_bytes / 1e6, r->peak_bytes, (double)r->forward_bytes / 1e6,
               (double)(r->peak_bytes - r->forward_bytes) / 1e6, r->val_loss);
    }
    printf("RESULT case=%s dtype=%s repeats=%d steps=%d median_s=%.9g min_s=%.9g max_s=%.9g q1_s=%.9g q3_s=%.9g "
           "gemm_limit_s=%.9g gemm_inrun_s=%.9g gemm_calls=%zu gemm_xsmm_calls=%zu backend=%s peak_bytes=%zu "
           "forward_bytes=%zu val_loss=%.17g",
           c->name, d, r->repeats, steps, r->time.median, r->time.min, r->time.max, r->time.q1, r->time.q3,
           r->gemm_limit, r->gemm_inrun, r->gemm_calls, r->gemm_xsmm_calls, backend_token(), r->peak_bytes,
           r->forward_bytes, r->val_loss);
    if (c->training)
        printf(" steps_per_s=%.6g steady_chunk_allocs=%lld steady_bytes_reserved=%lld steady_in_use_drift=%lld",
               r->steps_per_s.median, r->steady_chunk_allocs, r->steady_bytes_reserved, r->steady_in_use_drift);
    printf("\n");
    fflush(stdout);
}

static double replay_median(int n)
{
    if (n < 3)
        n = 3;
    double *t = calloc((size_t)n, sizeof *t);
    if (!t)
        return -1;
    for (int i = 0; i < n; i++)
        t[i] = gemm_replay();
    summary s = summarize(t, n);
    free(t);
    return s.median;
}

/* ---- hypergradient cases --------------------------------------------------- */

static result run_hyper_case(const options *o, const bench_case *c, const problem *input, hg_dtype dt,
                             const char *dx_dir)
{
    result r;
    memset(&r, 0, sizeof r);
    r.gemm_limit = -1;
    int repeat = o->repeat > 0 ? o->repeat : c->default_repeat;
    hg_ctx *ctx = hg_ctx_new(&o->ctx_opts);
    if (!ctx)
        die_ctx(NULL, "ctx");
    problem p;
    convert_problem(ctx, input, dt, &p);
    hg_mark inputs = hg_ctx_mark(ctx);
    size_t base = hg_ctx_get_stats(ctx).bytes_in_use;
    hg_tensor *dx = NULL;
    /* Warm-up runs, then one traced run (warm) for the GEMM list and the
     * peak; its dx is the one written. */
    int warmup = o->warmup > 0 ? o->warmup : 0;
    for (int w = 0; w <= warmup; w++) {
        bool traced = w == warmup;
        hg_ctx_rewind(ctx, inputs);
        hg_ctx_reset_peak(ctx);
        if (traced && !o->no_gemm)
            gemm_trace_start();
        hg_status s = hypergradient(ctx, &p, c, c->steps, &dx, &r.val_loss);
        gemm_trace_stop();
        if (s != HG_OK)
            die_ctx(ctx, c->name);
        r.peak_bytes = hg_ctx_get_stats(ctx).peak_bytes - base;
        r.forward_bytes = forward_bytes_in_use - base;
    }
    if (!o->no_gemm) {
        r.gemm_calls = gemm_trace_count();
        r.gemm_xsmm_calls = gemm_trace_xsmm_count();
        r.gemm_inrun = gemm_trace_seconds();
        r.gemm_madds = gemm_trace_flops();
    }
    if (dx_dir) {
        char name[64];
        snprintf(name, sizeof name, "dx_%s", hg_dtype_name(dt));
        save(dx_dir, name, dx, HG_NPY_F64);
        save(dx_dir, "dx", dx, HG_NPY_F64);
    }
    double *times = calloc((size_t)repeat, sizeof *times);
    if (!times)
        die_ctx(NULL, "times");
    for (int k = 0; k < repeat; k++) {
        hg_ctx_rewind(ctx, inputs);
        double t0 = now_seconds();
        hg_status s = hypergradient(ctx, &p, c, c->steps, &dx, &r.val_loss);
        times[k] = now_seconds() - t0;
        if (s != HG_OK)
            die_ctx(ctx, c->name);
    }
    r.time = summarize(times, repeat);
    r.repeats = repeat;
    free(times);
    if (!o->no_gemm)
        r.gemm_limit = replay_median(repeat < 50 ? repeat : 50);
    hg_ctx_free(ctx);
    return r;
}

/* ---- training case ------------------------------------------------------- */

/* One training step on batch b (forward, gradient, in-place Adam). */
static hg_status train_step(hg_ctx *ctx, const hg_mlp *spec, hg_tensor **params, hg_optimizer *opt, hg_tensor *xb,
                            hg_tensor *yb, double *loss_out)
{
    hg_tape *tape = hg_tape_begin(ctx, 0);
    hg_watch_n(tape, N_PARAMS, params);
    hg_tensor *loss = hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, spec, params, xb), yb);
    hg_tape_end(tape);
    hg_tensor *grads[N_PARAMS];
    if (!loss || hg_gradient(tape, loss, N_PARAMS, params, NULL, grads) != HG_OK ||
        hg_optimizer_step(opt, grads) != HG_OK)
        return hg_ctx_status(ctx) != HG_OK ? hg_ctx_status(ctx) : HG_ERR_INVALID;
    if (loss_out)
        *loss_out = hg_item(loss);
    return HG_OK;
}

static result run_training_case(const options *o, const bench_case *c, const problem *input, hg_dtype dt, int steps)
{
    result r;
    memset(&r, 0, sizeof r);
    r.gemm_limit = -1;
    int repeat = o->repeat > 0 ? o->repeat : c->default_repeat;
    int batch = o->batch;
    hg_ctx *ctx = hg_ctx_new(&o->ctx_opts);
    if (!ctx)
        die_ctx(NULL, "ctx");
    problem p;
    convert_problem(ctx, input, dt, &p);
    int64_t pool = hg_tensor_dim(p.x_train, 0);
    int n_batches = (int)(pool / batch);
    if (n_batches < 1) {
        fprintf(stderr, "hgrad_bench: training needs at least %d training rows\n", batch);
        exit(1);
    }
    /* The batches as tensors of their own, made once (as PyTorch slices). */
    hg_tensor **xb = calloc((size_t)n_batches, sizeof *xb), **yb = calloc((size_t)n_batches, sizeof *yb);
    int64_t xs[2] = {batch, hg_tensor_dim(p.x_train, 1)}, ys = batch;
    size_t esz = hg_dtype_size(dt), row = (size_t)xs[1] * esz;
    for (int b = 0; b < n_batches; b++) {
        xb[b] = hg_tensor_from(ctx, dt, 2, xs,
                               (const char *)hg_tensor_cdata(p.x_train) + (size_t)b * (size_t)batch * row);
        yb[b] = hg_tensor_from(ctx, HG_I32, 1, &ys,
                               (const int32_t *)hg_tensor_cdata(p.y_train) + (size_t)b * (size_t)batch);
    }
    hg_tensor *params[N_PARAMS];
    for (int i = 0; i < N_PARAMS; i++)
        params[i] = hg_tensor_clone(ctx, p.params[i]);
    if (hg_ctx_status(ctx) != HG_OK)
        die_ctx(ctx, "training setup");
    hg_opt_config cfg = opt_config(c);
    hg_mark setup = hg_ctx_mark(ctx);
    double *times = calloc((size_t)repeat, sizeof *times), *rates = calloc((size_t)repeat, sizeof *rates);
    long long worst_chunks = 0, worst_reserved = 0, worst_drift = 0;
    for (int k = -2; k < repeat; k++) { /* k = -2: warm-up; k = -1: traced */
        hg_ctx_rewind(ctx, setup);
        for (int i = 0; i < N_PARAMS; i++)
            memcpy(hg_tensor_data(params[i]), hg_tensor_cdata(p.params[i]), (size_t)hg_tensor_numel(p.params[i]) * esz);
        hg_optimizer *opt = hg_optimizer_new(ctx, &cfg, N_PARAMS, params);
        if (!opt)
            die_ctx(ctx, "hg_optimizer_new");
        hg_mark step_mark = hg_ctx_mark(ctx);
        size_t before = hg_ctx_get_stats(ctx).bytes_in_use;
        hg_ctx_reset_peak(ctx);
        /* First step outside the timing: it may obtain chunks. */
        if (train_step(ctx, &p.spec, params, opt, xb[0], yb[0], &r.val_loss) != HG_OK)
            die_ctx(ctx, "training step");
        hg_ctx_stats first = hg_ctx_get_stats(ctx);
        r.peak_bytes = first.peak_bytes - before;
        long long drift = 0;
        if (k == -1 && !o->no_gemm)
            gemm_trace_start();
        double t0 = now_seconds();
        for (int s = 1; s <= steps; s++) {
            hg_ctx_rewind(ctx, step_mark);
            if (train_step(ctx, &p.spec, params, opt, xb[s % n_batches], yb[s % n_batches], NULL) != HG_OK)
                die_ctx(ctx, "training step");
            long long d = (long long)hg_ctx_get_stats(ctx).bytes_in_use - (long long)first.bytes_in_use;
            drift = llabs(d) > llabs(drift) ? d : drift;
        }
        double t = now_seconds() - t0;
        if (k == -1) {
            gemm_trace_stop();
            if (!o->no_gemm) {
                r.gemm_calls = gemm_trace_count() / (size_t)steps;
                r.gemm_xsmm_calls = gemm_trace_xsmm_count() / (size_t)steps;
                r.gemm_inrun = gemm_trace_seconds() / steps;
            }
        }
        hg_ctx_stats last = hg_ctx_get_stats(ctx);
        long long chunks = (long long)(last.chunk_allocs - first.chunk_allocs);
        long long reserved = (long long)last.bytes_reserved - (long long)first.bytes_reserved;
        worst_chunks = chunks > worst_chunks ? chunks : worst_chunks;
        worst_reserved = llabs(reserved) > llabs(worst_reserved) ? reserved : worst_reserved;
        worst_drift = llabs(drift) > llabs(worst_drift) ? drift : worst_drift;
        if (k >= 0) {
            times[k] = t / steps;
            rates[k] = steps / t;
        }
    }
    r.time = summarize(times, repeat);
    r.steps_per_s = summarize(rates, repeat);
    r.repeats = repeat;
    r.steady_chunk_allocs = worst_chunks;
    r.steady_bytes_reserved = worst_reserved;
    r.steady_in_use_drift = worst_drift;
    if (!o->no_gemm) {
        double total = replay_median(repeat < 20 ? repeat : 20);
        r.gemm_limit = total / steps;
    }
    free(times);
    free(rates);
    free(xb);
    free(yb);
    hg_ctx_free(ctx);
    return r;
}

/* ---- main ------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f, "usage: hgrad_bench [options]\n"
               "  --cases LIST      comma-separated: seed (= seed-sgd,seed-adam), seed-sgd, seed-adam,\n"
               "                    adam-step, standard, long, large, training, all (default all);\n"
               "                    epoch (not in all): train 784-64-64-10 on Fashion-MNIST with Adam, then\n"
               "                    the hypergradient through the last epoch with hg_unroll (bench/epoch.c)\n"
               "  --dtypes LIST     f32,f64 (default both)\n"
               "  --repeat N        timed repeats per case (default per case: 200 seed, 30 standard,\n"
               "                    7 long, 11 large, 7 training)\n"
               "  --warmup N        untimed runs before the traced run and the timing (default 1)\n"
               "  --dir DIR         read W1..b3, x_train, y_train, x_val, y_val .npy from DIR and\n"
               "                    write DIR/dx_<dtype>.npy and DIR/dx.npy (one case at a time)\n"
               "  --export DIR      write the default inputs of the selected case to DIR and exit\n"
               "  --data DIR        IDX directory (default $HGRAD_DATA, then /usr/share/datasets/fashion-mnist,\n"
               "                    then random data)\n"
               "  --train-steps N   timed steps per training repeat (default 200)\n"
               "  --batch N         training batch size (default 32)\n"
               "  --chunk-mb X      smallest arena chunk in MiB (default: the library's, 1 MiB; later\n"
               "                    chunks grow with the arena); unused chunk tails count in the peak\n"
               "  --no-gemm         skip the GEMM trace and replay\n"
               "  epoch case: --epochs N (5), --through last|all, --snapshots N (default: as many as\n"
               "                    fit in 48 MB), --val N validation images (1000),\n"
               "                    --check K (compare with one full tape on K steps first)\n");
}

static bool select_case(options *o, const char *name)
{
    if (!strcmp(name, "epoch")) {
        o->epoch = true;
        return true;
    }
    if (!strcmp(name, "all")) {
        for (int i = 0; i < N_CASES; i++)
            o->selected[i] = true;
        return true;
    }
    if (!strcmp(name, "seed")) {
        o->selected[0] = o->selected[1] = true;
        return true;
    }
    for (int i = 0; i < N_CASES; i++)
        if (!strcmp(name, all_cases[i].name)) {
            o->selected[i] = true;
            return true;
        }
    return false;
}

static void parse(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->warmup = 1;
    o->train_steps = 200;
    o->batch = 32;
    o->eo = (epoch_options){.epochs = 5, .val = 1000, .snapshots = -1};
    bool any_case = false, any_dtype = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--no-gemm")) {
            o->no_gemm = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "hgrad_bench: %s needs a value\n", a);
            usage(stderr);
            exit(2);
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--cases")) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ","))
                if (!select_case(o, tok)) {
                    fprintf(stderr, "hgrad_bench: unknown case '%s'\n", tok);
                    exit(2);
                }
            any_case = true;
        } else if (!strcmp(a, "--dtypes")) {
            char buf[64];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
                if (!strcmp(tok, "f32"))
                    o->dtypes[0] = true;
                else if (!strcmp(tok, "f64"))
                    o->dtypes[1] = true;
                else {
                    fprintf(stderr, "hgrad_bench: unknown dtype '%s'\n", tok);
                    exit(2);
                }
            }
            any_dtype = true;
        } else if (!strcmp(a, "--repeat")) {
            o->repeat = atoi(v);
        } else if (!strcmp(a, "--warmup")) {
            o->warmup = atoi(v);
        } else if (!strcmp(a, "--dir")) {
            o->dir = v;
        } else if (!strcmp(a, "--export")) {
            o->export_dir = v;
        } else if (!strcmp(a, "--data")) {
            o->data_dir = v;
        } else if (!strcmp(a, "--train-steps")) {
            o->train_steps = atoi(v);
        } else if (!strcmp(a, "--batch")) {
            o->batch = atoi(v);
        } else if (!strcmp(a, "--epochs")) {
            o->eo.epochs = atoi(v);
        } else if (!strcmp(a, "--through")) {
            o->eo.through_all = !strcmp(v, "all");
            if (!o->eo.through_all && strcmp(v, "last")) {
                fprintf(stderr, "hgrad_bench: --through takes last or all\n");
                exit(2);
            }
        } else if (!strcmp(a, "--snapshots")) {
            o->eo.snapshots = atoi(v);
        } else if (!strcmp(a, "--val")) {
            o->eo.val = atoi(v);
        } else if (!strcmp(a, "--check")) {
            o->eo.check = atoi(v);
        } else if (!strcmp(a, "--chunk-mb")) {
            o->ctx_opts.chunk_bytes = (size_t)(atof(v) * 1048576.0);
        } else {
            fprintf(stderr, "hgrad_bench: unknown option %s\n", a);
            usage(stderr);
            exit(2);
        }
    }
    if (!any_case)
        select_case(o, "all");
    if (!any_dtype)
        o->dtypes[0] = o->dtypes[1] = true;
    if (o->train_steps < 1 || o->batch < 1) {
        fprintf(stderr, "hgrad_bench: --train-steps and --batch must be positive\n");
        exit(2);
    }
    int n_sel = 0;
    for (int i = 0; i < N_CASES; i++)
        n_sel += o->selected[i];
    if ((o->dir || o->export_dir) && n_sel != 1) {
        fprintf(stderr, "hgrad_bench: --dir and --export take exactly one case (--cases NAME)\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    /* One BLAS thread. OpenBLAS starts its thread pool when it is loaded,
     * from OPENBLAS_NUM_THREADS: if that is not 1, set it and start again,
     * so that no idle BLAS threads compete for the cores. */
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    if (!env || strcmp(env, "1") != 0) {
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        setenv("OMP_NUM_THREADS", "1", 1);
        execv("/proc/self/exe", argv); /* returns only on failure: carry on */
    }
    options o;
    parse(argc, argv, &o);
    blas_set_threads(1);
    if (!o.no_gemm && gemm_trace_init() != 0)
        o.no_gemm = true;
    if (!o.export_dir)
        printf("hgrad_bench: BLAS %s, 1 thread; matrix products: %s\n", blas_description(), hg_matmul_backend());
    if (o.epoch) {
        o.eo.data_dir = o.data_dir;
        o.eo.batch = o.batch;
        if (o.eo.epochs < 1 || o.eo.val < 1) {
            fprintf(stderr, "hgrad_bench: --epochs and --val must be positive\n");
            return 2;
        }
        int rc = bench_epoch(&o.eo);
        bool others = false;
        for (int i = 0; i < N_CASES; i++)
            others |= o.selected[i];
        if (rc != 0 || !others)
            return rc;
    }

    double standard_median[2] = {0, 0}, long_median[2] = {0, 0};
    for (int ci = 0; ci < N_CASES; ci++) {
        if (!o.selected[ci])
            continue;
        const bench_case *c = &all_cases[ci];
        hg_ctx *data = hg_ctx_new(NULL);
        if (!data)
            die_ctx(NULL, "ctx");
        problem input;
        if (o.dir)
            dir_problem(data, o.dir, &input);
        else
            default_problem(data, &o, c, &input);
        if (o.export_dir) {
            export_problem(o.export_dir, &input);
            printf("wrote the %s inputs (%s) to %s\n", c->name, data_source, o.export_dir);
            hg_ctx_free(data);
            return 0;
        }
        printf("# %s: %lld train, %lld val, %s, lr %g; %s\n", c->name, (long long)hg_tensor_dim(input.x_train, 0),
               (long long)hg_tensor_dim(input.x_val, 0), hg_opt_name(c->opt), c->lr, data_source);
        for (int d = 0; d < 2; d++) {
            if (!o.dtypes[d])
                continue;
            hg_dtype dt = d ? HG_F64 : HG_F32;
            if (c->training) {
                result r = run_training_case(&o, c, &input, dt, o.train_steps);
                print_result(c, dt, &r, o.train_steps);
            } else {
                result r = run_hyper_case(&o, c, &input, dt, o.dir);
                print_result(c, dt, &r, c->steps);
                if (!strcmp(c->name, "standard"))
                    standard_median[d] = r.time.median;
                if (!strcmp(c->name, "long"))
                    long_median[d] = r.time.median;
            }
        }
        hg_ctx_free(data);
    }
    for (int d = 0; d < 2; d++)
        if (standard_median[d] > 0 && long_median[d] > 0)
            printf("long/standard (100 vs 10 steps) %s: %.2fx (linear would be 10x)\n", d ? "f64" : "f32",
                   long_median[d] / standard_median[d]);
    return 0;
}
