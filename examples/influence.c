/* Which training samples matter: influence estimators against leave-one-out.
 *
 * Setup (docs/influence.md): Fashion-MNIST, a 784-64-64-10 ReLU MLP in f64,
 * mini-batches of 32. Warm-up training on t10k images outside the validation
 * set gives the starting weights theta_0 (and, for Adam, a warm optimizer
 * state). The measured run is then ONE epoch over a training subset of n
 * samples in a fixed order: K = n / 32 steps. E_val is the mean cross-entropy
 * on the validation set after the epoch.
 *
 * Ground truth: for N chosen samples i, the same epoch re-run from the same
 * theta_0 and optimizer state with the same batches, sample i's loss weight
 * set to 0. The batch loss is (1/B) sum_j w_j CE_j with B fixed (the divisor
 * is not changed to B - 1): exactly the function the estimators
 * differentiate. Actual change: dE_i = E_val(w_i = 0) - E_val(w = 1).
 *
 * Estimators of dE_i (all predict the change when sample i is removed):
 *   exact      -dE_val/dw_i through the K unrolled steps (double backward)
 *   IF (CG)    (1/n) g_val^T (H + lambda I)^-1 g_i at the final weights, H the
 *              Hessian of the mean training loss, solved by conjugate gradient
 *   IF (LiSSA) the same solve by the LiSSA recursion on minibatch Hessians
 *   TracIn     (lr / (B C)) sum_c g_val(theta_c) . g_i(theta_c) over C
 *              checkpoints evenly spaced over the epoch
 *   TracIn@k_i (lr / B) g_val(theta_k) . g_i(theta_k) at the step that used i
 *
 * Then: a scan of w_i over [0, 1] counting jumps of E_val (Adam's dead-unit
 * steps), and mislabelled-sample detection by self-influence. Writes
 * OUT/influence.md (tables), OUT/influence_<opt>.csv (per sample) and
 * OUT/influence.png (predicted vs actual, one panel per estimator). */
#include <hgrad.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_PNG
#include <png.h>
#endif

#define NP 6   /* parameter tensors */
#define NEST 6 /* estimators compared with leave-one-out */
#define BIG 1e300

/* ---- options ------------------------------------------------------------------ */

typedef struct options {
    const char *data, *out, *opts, *act;
    int64_t train, loo, val, mislabel, warmup, hess;
    int batch, checkpoints, cg_iters, lissa_depth, lissa_batch, scan, scan_points, segment, snapshots, probe, loo_last;
    double lr_sgd, lr_adam, damping, lissa_scale;
    uint64_t seed;
    bool quiet, check_exact;
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: influence [options]\n"
            "  --data DIR        Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist)\n"
            "  --out DIR         output folder (default influence_out)\n"
            "  --opt LIST        sgd, adam or sgd,adam (default)\n"
            "  --train N         training subset: one epoch = N/batch steps (default 1024; 60000 = full epoch)\n"
            "  --loo N           leave-one-out samples (default 256)\n"
            "  --loo-last S      draw them from the last S steps of the epoch only (default 0: all of it)\n"
            "  --val N           validation samples from t10k (default 1000)\n"
            "  --warmup N        warm-up steps on t10k images outside the validation set (default 1400: 5 epochs)\n"
            "  --batch N         batch size (default 32)\n"
            "  --lr-sgd X        (default 0.01)    --lr-adam X   (default 0.001)\n"
            "  --checkpoints N   TracIn checkpoints (default 8)\n"
            "  --hess N          samples of the subset in the influence-function Hessian (default min(train, 2048))\n"
            "  --damping X       influence-function damping lambda (default 0.01; raised x10 until CG succeeds)\n"
            "  --cg-iters N      CG iterations (default 100)\n"
            "  --lissa-depth N   LiSSA recursion depth (default 300)   --lissa-batch N (default 128)\n"
            "  --lissa-scale X   LiSSA scale (default 2 x largest Hessian eigenvalue, by power iteration)\n"
            "  --scan N          samples whose weight is scanned over [0, 1] (default 16)  --scan-points N (20)\n"
            "  --mislabel N      mislabel-detection subset, 10%% flipped (default 1024; 0: skip)\n"
            "  --snapshots N     exact estimator (hg_unroll): states kept (default: about one recomputation\n"
            "                    per step, hg_unroll_snapshots_for(K, K))\n"
            "  --check-exact     also compute the exact estimator by reverse sweeps over segments of L steps\n"
            "                    from stored states and fail if the two differ by > 1e-9 (relative)\n"
            "  --segment L       segment length of --check-exact (default 16)\n"
            "  --probe N         samples whose E_val(w_i) is probed for linearity: w_i = 1 - h for h = 1e-12 .. 1,\n"
            "                    and the run with w_i = 1 - h beside the base run (relu' sign flips, drift)\n"
            "                    (default 4)\n"
            "  --act A           hidden activation: relu (default) or tanh (smooth: a control for the probe)\n"
            "  --seed N          (default 1)   --quiet   no progress bars\n");
}

static int parse_options(int argc, char **argv, options *o)
{
    *o = (options){.data = "/usr/share/datasets/fashion-mnist",
                   .out = "influence_out",
                   .opts = "sgd,adam",
                   .act = "relu",
                   .train = 1024,
                   .loo = 256,
                   .val = 1000,
                   .mislabel = 1024,
                   .warmup = 1400,
                   .hess = 0,
                   .batch = 32,
                   .checkpoints = 8,
                   .cg_iters = 100,
                   .lissa_depth = 300,
                   .lissa_batch = 128,
                   .scan = 16,
                   .scan_points = 20,
                   .segment = 16,
                   .snapshots = -1,
                   .probe = 4,
                   .lr_sgd = 0.01,
                   .lr_adam = 0.001,
                   .damping = 0.01,
                   .lissa_scale = 0,
                   .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--quiet")) {
            o->quiet = true;
            continue;
        }
        if (!strcmp(a, "--check-exact")) {
            o->check_exact = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "influence: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        bool num = *v && !*end && errno == 0 && isfinite(d);
        struct {
            const char *name;
            int64_t *i64;
            int *i32;
            double *dbl;
            double lo;
        } nums[] = {
            {"--train", &o->train, NULL, NULL, 1},
            {"--loo", &o->loo, NULL, NULL, 0},
            {"--val", &o->val, NULL, NULL, 1},
            {"--mislabel", &o->mislabel, NULL, NULL, 0},
            {"--warmup", &o->warmup, NULL, NULL, 0},
            {"--hess", &o->hess, NULL, NULL, 1},
            {"--batch", NULL, &o->batch, NULL, 1},
            {"--checkpoints", NULL, &o->checkpoints, NULL, 1},
            {"--cg-iters", NULL, &o->cg_iters, NULL, 1},
            {"--lissa-depth", NULL, &o->lissa_depth, NULL, 1},
            {"--lissa-batch", NULL, &o->lissa_batch, NULL, 1},
            {"--scan", NULL, &o->scan, NULL, 0},
            {"--scan-points", NULL, &o->scan_points, NULL, 2},
            {"--segment", NULL, &o->segment, NULL, 1},
            {"--snapshots", NULL, &o->snapshots, NULL, 0},
            {"--probe", NULL, &o->probe, NULL, 0},
            {"--loo-last", NULL, &o->loo_last, NULL, 0},
            {"--lr-sgd", NULL, NULL, &o->lr_sgd, 0},
            {"--lr-adam", NULL, NULL, &o->lr_adam, 0},
            {"--damping", NULL, NULL, &o->damping, 0},
            {"--lissa-scale", NULL, NULL, &o->lissa_scale, 0},
        };
        bool done = false;
        for (size_t k = 0; k < sizeof nums / sizeof nums[0] && !done; k++) {
            if (strcmp(a, nums[k].name))
                continue;
            done = true;
            bool integral = !nums[k].dbl;
            if (!num || d < nums[k].lo || (integral && (d != floor(d) || d > 1e9))) {
                fprintf(stderr, "influence: %s wants a%s number >= %g, got '%s'\n", a, integral ? "n integer" : "",
                        nums[k].lo, v);
                return -1;
            }
            if (nums[k].i64)
                *nums[k].i64 = (int64_t)d;
            else if (nums[k].i32)
                *nums[k].i32 = (int)d;
            else
                *nums[k].dbl = d;
        }
        if (done)
            continue;
        if (!strcmp(a, "--data"))
            o->data = v;
        else if (!strcmp(a, "--out"))
            o->out = v;
        else if (!strcmp(a, "--opt"))
            o->opts = v;
        else if (!strcmp(a, "--act") && (!strcmp(v, "relu") || !strcmp(v, "tanh")))
            o->act = v;
        else if (!strcmp(a, "--seed") && num && d >= 0)
            o->seed = (uint64_t)d;
        else {
            fprintf(stderr, "influence: unknown option or bad value: %s %s\n", a, v);
            usage(stderr);
            return -1;
        }
    }
    if (o->train % o->batch) {
        fprintf(stderr, "influence: --train %lld must be a multiple of --batch %d\n", (long long)o->train, o->batch);
        return -1;
    }
    if (o->mislabel % o->batch) {
        fprintf(stderr, "influence: --mislabel %lld must be a multiple of --batch %d\n", (long long)o->mislabel,
                o->batch);
        return -1;
    }
    if (o->loo_last > 0 && (int64_t)o->loo_last * o->batch > o->train) {
        fprintf(stderr, "influence: --loo-last %d is more than the epoch's %lld steps\n", o->loo_last,
                (long long)(o->train / o->batch));
        return -1;
    }
    int64_t pool = o->loo_last > 0 ? (int64_t)o->loo_last * o->batch : o->train;
    if (o->loo > pool) {
        fprintf(stderr, "influence: --loo %lld is more than the %lld samples it draws from\n", (long long)o->loo,
                (long long)pool);
        return -1;
    }
    if (o->scan > o->loo)
        o->scan = (int)o->loo;
    if (o->hess == 0)
        o->hess = o->train < 2048 ? o->train : 2048;
    if (o->hess > o->train)
        o->hess = o->train;
    return 0;
}

/* ---- small utilities ---------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool g_quiet;

/* One line redrawn in place on a terminal, a line per 25% otherwise. */
static void progress(const char *what, int64_t done, int64_t total, double t0)
{
    if (g_quiet || total <= 0)
        return;
    bool tty = isatty(fileno(stderr));
    int64_t q = total >= 4 ? total / 4 : 1;
    if (!tty && done != total && (done == 0 || done % q))
        return;
    char bar[31];
    int fill = (int)(30 * done / total);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    double el = now() - t0, eta = done > 0 ? el * (double)(total - done) / (double)done : 0;
    fprintf(stderr, "%s  %-28s [%s] %lld/%lld  %.1f s (eta %.0f s)%s", tty ? "\r" : "", what, bar, (long long)done,
            (long long)total, el, eta, tty && done != total ? "" : "\n");
    fflush(stderr);
}

static void die_ctx(hg_ctx *ctx, const char *where)
{
    fprintf(stderr, "influence: %s: %s: %s\n", where, hg_status_name(hg_ctx_status(ctx)), hg_ctx_error(ctx));
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "influence: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static double dotv(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static double pearson(const double *x, const double *y, int n)
{
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= n;
    my /= n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

static const double *g_sort_key;
static int by_key(const void *a, const void *b)
{
    double x = g_sort_key[*(const int *)a], y = g_sort_key[*(const int *)b];
    return x < y ? -1 : x > y ? 1 : 0;
}

/* Ranks 1..n, ties averaged. */
static void ranks(const double *x, int n, double *r)
{
    int *o = xmalloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++)
        o[i] = i;
    g_sort_key = x;
    qsort(o, (size_t)n, sizeof(int), by_key);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && x[o[j + 1]] == x[o[i]])
            j++;
        for (int k = i; k <= j; k++)
            r[o[k]] = 0.5 * (i + j) + 1;
        i = j + 1;
    }
    free(o);
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

static double spearman(const double *x, const double *y, int n)
{
    double *rx = xmalloc(sizeof(double) * (size_t)n), *ry = xmalloc(sizeof(double) * (size_t)n);
    ranks(x, n, rx);
    ranks(y, n, ry);
    double s = pearson(rx, ry, n);
    free(rx);
    free(ry);
    return s;
}

static void shuffle(int64_t *a, int64_t n, hg_rng *rng)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(hg_rng_next(rng) % (uint64_t)(i + 1)), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* ---- data and model ----------------------------------------------------------- */

typedef struct data {
    hg_ctx *ctx; /* holds the images (f32) for the whole program */
    const float *train_x, *test_x;
    const int32_t *train_y, *test_y;
    int64_t n_train, n_test;
} data;

static int load_data(const char *dir, data *d)
{
    char p[4][1024];
    const char *names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                            "t10k-labels-idx1-ubyte"};
    for (int i = 0; i < 4; i++) {
        snprintf(p[i], sizeof p[i], "%s/%s.gz", dir, names[i]);
        if (access(p[i], R_OK) != 0) {
            snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
            if (access(p[i], R_OK) != 0) {
                fprintf(stderr,
                        "influence: %s/%s[.gz] not found (Debian: apt-get install dataset-fashion-mnist); "
                        "skipping\n",
                        dir, names[i]);
                return 77;
            }
        }
    }
    d->ctx = hg_ctx_new(NULL);
    if (!d->ctx)
        return 1;
    hg_tensor *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = hg_idx_load(d->ctx, p[i], i % 2 ? HG_I32 : HG_F32, 1.0 / 255.0, 0);
    if (hg_ctx_status(d->ctx) != HG_OK)
        die_ctx(d->ctx, "loading Fashion-MNIST");
    if (hg_tensor_rank(t[0]) != 3 || hg_tensor_dim(t[0], 1) * hg_tensor_dim(t[0], 2) != 784 ||
        hg_tensor_dim(t[0], 0) != hg_tensor_dim(t[1], 0) || hg_tensor_dim(t[2], 0) != hg_tensor_dim(t[3], 0) ||
        hg_tensor_rank(t[2]) != 3 || hg_tensor_dim(t[2], 1) * hg_tensor_dim(t[2], 2) != 784) {
        fprintf(stderr, "influence: %s does not hold 28x28 images with matching labels\n", dir);
        return 1;
    }
    d->train_x = hg_tensor_f32(t[0]);
    d->train_y = hg_tensor_i32(t[1]);
    d->test_x = hg_tensor_f32(t[2]);
    d->test_y = hg_tensor_i32(t[3]);
    d->n_train = hg_tensor_dim(t[0], 0);
    d->n_test = hg_tensor_dim(t[2], 0);
    return 0;
}

/* A training sample: image row and (possibly flipped) label. */
typedef struct sample_ref {
    const float *x;
    int32_t y;
} sample_ref;

typedef struct model {
    hg_mlp spec;
    int64_t P;           /* parameters */
    int64_t off[NP + 1]; /* offsets of the tensors in a flat vector */
    hg_opt_config opt;
    int nstate; /* optimizer state tensors (0 SGD, 12 Adam) */
    int64_t S;  /* doubles of a full state: P (1 + nstate / NP) */
} model;

static void model_init(model *m, hg_opt_config opt, hg_activation act)
{
    m->spec = (hg_mlp){.n_layers = 3, .sizes = {784, 64, 64, 10}, .hidden = act};
    int64_t shapes[NP] = {784 * 64, 64, 64 * 64, 64, 64 * 10, 10};
    m->off[0] = 0;
    for (int i = 0; i < NP; i++)
        m->off[i + 1] = m->off[i] + shapes[i];
    m->P = m->off[NP];
    m->opt = opt;
    m->nstate = hg_opt_state_count(opt.kind, NP);
    m->S = m->P * (1 + m->nstate / NP);
}

static void tensor_shape(const model *m, int i, int *rank, int64_t shape[2])
{
    int layer = i / 2;
    if (i % 2 == 0) {
        *rank = 2;
        shape[0] = m->spec.sizes[layer];
        shape[1] = m->spec.sizes[layer + 1];
    } else {
        *rank = 1;
        shape[0] = m->spec.sizes[layer + 1];
    }
}

/* NP tensors (copies) from a flat vector. */
static void unflatten(hg_ctx *ctx, const model *m, const double *flat, hg_tensor **t)
{
    for (int i = 0; i < NP; i++) {
        int rank;
        int64_t shape[2];
        tensor_shape(m, i, &rank, shape);
        t[i] = hg_tensor_from(ctx, HG_F64, rank, shape, flat + m->off[i]);
    }
}

static void flatten(const model *m, hg_tensor *const *t, double *flat)
{
    for (int i = 0; i < NP; i++)
        memcpy(flat + m->off[i], hg_tensor_f64(t[i]), sizeof(double) * (size_t)(m->off[i + 1] - m->off[i]));
}

/* x [n, 784] f64 and y i32 [n] for n samples. */
static void make_batch(hg_ctx *ctx, const sample_ref *s, int64_t n, hg_tensor **x, hg_tensor **y)
{
    int64_t shape[2] = {n, 784};
    *x = hg_tensor_new(ctx, HG_F64, 2, shape);
    *y = hg_tensor_new(ctx, HG_I32, 1, &n);
    if (!*x || !*y)
        return;
    double *xd = hg_tensor_f64(*x);
    int32_t *yd = hg_tensor_i32(*y);
    for (int64_t i = 0; i < n; i++) {
        for (int p = 0; p < 784; p++)
            xd[i * 784 + p] = s[i].x[p];
        yd[i] = s[i].y;
    }
}

/* Weighted batch loss (1/B) sum_j w_j CE_j; w NULL: all ones. */
static hg_tensor *batch_loss(hg_ctx *ctx, const model *m, hg_tensor *const *params, hg_tensor *x, hg_tensor *y,
                             hg_tensor *w)
{
    hg_tensor *ce = hg_softmax_cross_entropy_each(ctx, hg_mlp_forward(ctx, &m->spec, params, x), y);
    return hg_mean(ctx, w ? hg_mul(ctx, w, ce) : ce);
}

/* One recorded training step: params/state (in) -> next/state (out). t is
 * the 1-based step number for Adam. The inner gradient is recorded on every
 * tape active around the call, so the step can be differentiated. */
static hg_status record_step(hg_ctx *ctx, const model *m, int t, hg_tensor *const *params, hg_tensor **state,
                             hg_tensor *x, hg_tensor *y, hg_tensor *w, hg_tensor **next)
{
    hg_tape *inner = hg_tape_begin(ctx, 0);
    if (!inner)
        return hg_ctx_status(ctx);
    hg_watch_n(inner, NP, params);
    hg_tensor *loss = batch_loss(ctx, m, params, x, y, w);
    hg_tape_end(inner);
    hg_tensor *g[NP];
    if (hg_gradient(inner, loss, NP, params, NULL, g) != HG_OK)
        return hg_ctx_status(ctx);
    return hg_opt_step(ctx, &m->opt, NULL, t, NP, params, g, state, next);
}

/* A full training state as flat doubles: params, then the optimizer state,
 * and the number of steps taken. */
typedef struct state {
    double *v; /* S doubles */
    int t;
} state;

static state state_new(const model *m)
{
    return (state){.v = xmalloc(sizeof(double) * (size_t)m->S), .t = 0};
}

static void state_copy(const model *m, state *dst, const state *src)
{
    memcpy(dst->v, src->v, sizeof(double) * (size_t)m->S);
    dst->t = src->t;
}

static void state_tensors(hg_ctx *ctx, const model *m, const state *s, hg_tensor **params, hg_tensor **st)
{
    unflatten(ctx, m, s->v, params);
    for (int j = 0; j < m->nstate / NP; j++)
        unflatten(ctx, m, s->v + m->P * (1 + j), st + NP * j);
}

/* One unrecorded training step on batch samples (w: B weights or NULL). */
static void train_step(hg_ctx *ctx, const model *m, state *s, const sample_ref *batch, int B, const double *w)
{
    hg_mark mk = hg_ctx_mark(ctx);
    hg_tensor *params[NP], *st[2 * NP] = {0}, *next[NP], *x, *y, *wt = NULL;
    state_tensors(ctx, m, s, params, st);
    make_batch(ctx, batch, B, &x, &y);
    if (w) {
        int64_t b = B;
        wt = hg_tensor_from(ctx, HG_F64, 1, &b, w);
    }
    if (hg_ctx_status(ctx) != HG_OK || record_step(ctx, m, s->t + 1, params, st, x, y, wt, next) != HG_OK)
        die_ctx(ctx, "training step");
    flatten(m, next, s->v);
    for (int j = 0; j < m->nstate / NP; j++)
        flatten(m, st + NP * j, s->v + m->P * (1 + j));
    s->t++;
    hg_ctx_rewind(ctx, mk);
}

/* Mean CE of params on samples; with grad, its gradient (flat, P). */
static double loss_and_grad(hg_ctx *ctx, const model *m, const double *theta, const sample_ref *s, int64_t n,
                            double *grad)
{
    hg_mark mk = hg_ctx_mark(ctx);
    hg_tensor *params[NP], *x, *y;
    unflatten(ctx, m, theta, params);
    make_batch(ctx, s, n, &x, &y);
    hg_tape *tape = grad ? hg_tape_begin(ctx, 0) : NULL;
    if (tape)
        hg_watch_n(tape, NP, params);
    hg_tensor *loss = batch_loss(ctx, m, params, x, y, NULL);
    if (tape)
        hg_tape_end(tape);
    double v = loss ? hg_item(loss) : NAN;
    hg_tensor *g[NP];
    if (grad && hg_gradient(tape, loss, NP, params, NULL, g) == HG_OK)
        flatten(m, g, grad);
    if (hg_ctx_status(ctx) != HG_OK)
        die_ctx(ctx, "loss and gradient");
    hg_ctx_rewind(ctx, mk);
    return v;
}

/* ---- a measured run: one epoch over a subset ----------------------------------- */

typedef struct run {
    const model *m;
    hg_ctx *ctx;
    int B, K;
    int64_t n;
    sample_ref *train; /* n samples in epoch order: batch k = [kB, (k+1)B) */
    sample_ref *val;   /* validation samples */
    int64_t n_val;
    state s0;    /* before the epoch (after warm-up) */
    state *snap; /* snap[k / every] = state before step k */
    int every, n_snap;
    state final;
    double E; /* E_val after the epoch */
} run;

static double val_loss(run *r, const double *theta, double *grad)
{
    return loss_and_grad(r->ctx, r->m, theta, r->val, r->n_val, grad);
}

/* The base epoch, keeping snapshots (budget: about 512 MB of them). */
static void run_base(run *r)
{
    const model *m = r->m;
    double bytes = (double)m->S * sizeof(double);
    r->every = (int)ceil((double)r->K * bytes / 512e6);
    if (r->every < 1)
        r->every = 1;
    r->n_snap = (r->K + r->every - 1) / r->every;
    r->snap = xmalloc(sizeof(state) * (size_t)r->n_snap);
    state s = state_new(m);
    state_copy(m, &s, &r->s0);
    for (int k = 0; k < r->K; k++) {
        if (k % r->every == 0) {
            r->snap[k / r->every] = state_new(m);
            state_copy(m, &r->snap[k / r->every], &s);
        }
        train_step(r->ctx, m, &s, r->train + (int64_t)k * r->B, r->B, NULL);
    }
    r->final = s;
    r->E = val_loss(r, s.v, NULL);
}

/* State before step k (nearest snapshot, then recompute). */
static void state_at(run *r, int k, state *out)
{
    state_copy(r->m, out, &r->snap[k / r->every]);
    for (int j = (k / r->every) * r->every; j < k; j++)
        train_step(r->ctx, r->m, out, r->train + (int64_t)j * r->B, r->B, NULL);
}

/* E_val after the epoch with sample i's weight set to w (others 1). */
static double val_with_weight(run *r, int64_t i, double w, state *tmp)
{
    int k = (int)(i / r->B);
    state_at(r, k, tmp);
    double *wb = xmalloc(sizeof(double) * (size_t)r->B);
    for (int j = 0; j < r->B; j++)
        wb[j] = 1.0;
    wb[i % r->B] = w;
    train_step(r->ctx, r->m, tmp, r->train + (int64_t)k * r->B, r->B, wb);
    for (int j = k + 1; j < r->K; j++)
        train_step(r->ctx, r->m, tmp, r->train + (int64_t)j * r->B, r->B, NULL);
    free(wb);
    return val_loss(r, tmp->v, NULL);
}

/* ---- probe: why E_val(w_i) is or is not linear ---------------------------------- */

/* Hidden units of batch j whose pre-activation has a different sign (> 0 or
 * not) under parameters a and b: where relu' differs between two runs. */
static int64_t sign_flips(run *r, const double *a, const double *b, int j)
{
    hg_ctx *ctx = r->ctx;
    const model *m = r->m;
    hg_mark mk = hg_ctx_mark(ctx);
    hg_tensor *pa[NP], *pb[NP], *x, *y;
    unflatten(ctx, m, a, pa);
    unflatten(ctx, m, b, pb);
    make_batch(ctx, r->train + (int64_t)j * r->B, r->B, &x, &y);
    hg_tensor *za = x, *zb = x;
    int64_t flips = 0;
    for (int l = 0; l + 1 < m->spec.n_layers; l++) {
        za = hg_dense(ctx, za, pa[2 * l], pa[2 * l + 1]);
        zb = hg_dense(ctx, zb, pb[2 * l], pb[2 * l + 1]);
        if (hg_ctx_status(ctx) != HG_OK)
            die_ctx(ctx, "probe: pre-activations");
        const double *da = hg_tensor_f64(za), *db = hg_tensor_f64(zb);
        for (int64_t e = 0; e < hg_tensor_numel(za); e++)
            flips += (da[e] > 0) != (db[e] > 0);
        za = hg_activate(ctx, za, m->spec.hidden);
        zb = hg_activate(ctx, zb, m->spec.hidden);
    }
    hg_ctx_rewind(ctx, mk);
    return flips;
}

static double dist(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (a[i] - b[i]) * (a[i] - b[i]);
    return sqrt(s);
}

#define NPROBE_H 9
#define NPROBE_T 6
static const double probe_h[NPROBE_H] = {0, 1e-12, 1e-9, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1};
static const int probe_t[NPROBE_T] = {1, 4, 16, 64, 256, 1024}; /* steps after the sample's step */

typedef struct probe_row {
    int64_t pos;
    int step;
    double dEdw;            /* exact */
    double ratio[NPROBE_H]; /* (E(1-h) - E) / (-h dE/dw); h = 0: E(1) - E itself */
    /* the run with w_i = 1 - h side by side with the base run, h = 1e-6 and 1 */
    double drift[2][NPROBE_T]; /* |theta - theta_base| / h after probe_t[] more steps (NaN past K) */
    int64_t flips[2];          /* units of later batches whose relu' differs from the base run */
    int first_flip[2];         /* steps after the sample's step to the first flip (-1: none) */
    double drift_end[2];       /* |theta_K - theta_K,base| / h */
} probe_row;

/* Sample i's run with weight 1 - h beside the base run. */
static void probe_trajectory(run *r, int64_t i, double h, probe_row *row, int slot, state *a, state *b)
{
    int k = (int)(i / r->B);
    state_at(r, k, a);
    state_copy(r->m, b, a);
    double *wb = xmalloc(sizeof(double) * (size_t)r->B);
    for (int j = 0; j < r->B; j++)
        wb[j] = 1.0;
    wb[i % r->B] = 1.0 - h;
    row->flips[slot] = 0;
    row->first_flip[slot] = -1;
    for (int t = 0; t < NPROBE_T; t++)
        row->drift[slot][t] = NAN;
    for (int j = k; j < r->K; j++) {
        if (j > k) {
            int64_t f = sign_flips(r, a->v, b->v, j);
            if (f && row->first_flip[slot] < 0)
                row->first_flip[slot] = j - k;
            row->flips[slot] += f;
        }
        train_step(r->ctx, r->m, a, r->train + (int64_t)j * r->B, r->B, j == k ? wb : NULL);
        train_step(r->ctx, r->m, b, r->train + (int64_t)j * r->B, r->B, NULL);
        for (int t = 0; t < NPROBE_T; t++)
            if (j - k + 1 == probe_t[t])
                row->drift[slot][t] = dist(a->v, b->v, r->m->P) / h;
    }
    row->drift_end[slot] = dist(a->v, b->v, r->m->P) / h;
    free(wb);
}

static void probe(run *r, const int64_t *pos, int n, const double *dw, probe_row *rows)
{
    state a = state_new(r->m), b = state_new(r->m);
    double t0 = now();
    for (int s = 0; s < n; s++) {
        probe_row *row = &rows[s];
        row->pos = pos[s];
        row->step = (int)(pos[s] / r->B);
        row->dEdw = dw[pos[s]];
        for (int q = 0; q < NPROBE_H; q++) {
            double dE = val_with_weight(r, pos[s], 1.0 - probe_h[q], &a) - r->E;
            row->ratio[q] = probe_h[q] > 0 ? dE / (-probe_h[q] * row->dEdw) : dE;
            if (probe_h[q] == 0 && dE != 0) { /* leave-one-out would measure noise, not the sample */
                fprintf(stderr,
                        "influence: the re-run with w_i = 1 from the stored state is not bitwise the base "
                        "run (E_val differs by %.3e): training is not deterministic here\n",
                        dE);
                exit(1);
            }
        }
        probe_trajectory(r, pos[s], 1e-6, row, 0, &a, &b);
        probe_trajectory(r, pos[s], 1.0, row, 1, &a, &b);
        progress("probe: linearity of E_val(w_i)", s + 1, n, t0);
    }
    free(a.v);
    free(b.v);
}

/* ---- exact: dE_val/dw through the recorded epoch --------------------------------- */

/* dw[i] = dE_val/dw_i for all n samples of the epoch with the library's
 * checkpointed unroll (hg_unroll): one forward sweep keeping a few states
 * on a binomial schedule, then one reverse sweep in which step k is
 * recorded (its inner gradient nested) and differentiated with the state
 * adjoint; the gradient of step k's loss weights arrives in a callback.
 * The step's only differentiated input is its weight vector w (ones); the
 * batch images and labels are constants built inside the step. */
typedef struct unroll_user {
    run *r;
    hg_tensor *xv, *yv; /* validation set, made before hg_unroll */
    double *dw;
    int done;
    double t0;
} unroll_user;

static hg_status unroll_inputs(hg_ctx *ctx, int k, hg_tensor **in, void *user)
{
    (void)k;
    int64_t B = ((unroll_user *)user)->r->B;
    in[0] = hg_ones(ctx, HG_F64, 1, &B);
    return hg_ctx_status(ctx);
}

static hg_status unroll_step(hg_ctx *ctx, int k, hg_tensor *const *s, hg_tensor *const *in, hg_tensor *const *glob,
                             hg_tensor **out, void *user)
{
    (void)glob;
    run *r = ((unroll_user *)user)->r;
    const model *m = r->m;
    hg_tensor *st[2 * NP] = {0}, *x, *y;
    memcpy(st, s + NP, sizeof(hg_tensor *) * (size_t)m->nstate);
    make_batch(ctx, r->train + (int64_t)k * r->B, r->B, &x, &y);
    if (hg_ctx_status(ctx) != HG_OK)
        return hg_ctx_status(ctx);
    hg_status rc = record_step(ctx, m, r->s0.t + k + 1, s, st, x, y, in[0], out);
    if (rc != HG_OK)
        return rc;
    memcpy(out + NP, st, sizeof(hg_tensor *) * (size_t)m->nstate);
    return HG_OK;
}

static hg_tensor *unroll_loss(hg_ctx *ctx, hg_tensor *const *s, hg_tensor *const *glob, void *user)
{
    (void)glob;
    unroll_user *u = user;
    return batch_loss(ctx, u->r->m, s, u->xv, u->yv, NULL);
}

static hg_status unroll_grad(hg_ctx *ctx, int k, hg_tensor *const *in, hg_tensor *const *g, void *user)
{
    (void)ctx, (void)in;
    unroll_user *u = user;
    const double *gd = hg_tensor_f64(g[0]);
    memcpy(u->dw + (int64_t)k * u->r->B, gd, sizeof(double) * (size_t)u->r->B);
    progress("exact: reverse sweep", ++u->done, u->r->K, u->t0);
    return HG_OK;
}

/* snapshots: the budget of stored states (besides s_0). Fills *st. */
static void exact_unroll(run *r, int snapshots, double *dw, hg_unroll_stats *st)
{
    hg_ctx *ctx = r->ctx;
    const model *m = r->m;
    hg_mark mk = hg_ctx_mark(ctx);
    int ns = NP + m->nstate;
    hg_tensor *s0[3 * NP], *E;
    state_tensors(ctx, m, &r->s0, s0, s0 + NP);
    unroll_user u = {.r = r, .dw = dw, .t0 = now()};
    make_batch(ctx, r->val, r->n_val, &u.xv, &u.yv);
    if (hg_ctx_status(ctx) != HG_OK)
        die_ctx(ctx, "exact (unroll): setup");
    hg_unroll_spec spec = {.steps = r->K,
                           .n_state = ns,
                           .state0 = s0,
                           .n_inputs = 1,
                           .snapshots = snapshots,
                           .inputs = unroll_inputs,
                           .step = unroll_step,
                           .loss = unroll_loss,
                           .on_grad = unroll_grad,
                           .user = &u};
    if (hg_unroll(ctx, &spec, &E, NULL, NULL, st) != HG_OK)
        die_ctx(ctx, "exact (unroll)");
    if (hg_item(E) != r->E)
        fprintf(stderr, "  exact (unroll): E_val %.17g differs from the base run's %.17g\n", hg_item(E), r->E);
    hg_ctx_rewind(ctx, mk);
}

/* The same dw by reverse sweeps over segments of L steps, last segment
 * first: each restores the state at its start from the snapshots, records
 * its steps on an outer tape with that state and its loss weights watched,
 * and sweeps once. The target is E_val for the last segment and <a, s_b>
 * for the others, a being the adjoint of the state s_b at the segment's end
 * (parameters and optimizer state) from the later segment's sweep. Memory:
 * one segment's tape plus the snapshots, whatever K is. */
static void exact_segments(run *r, int L, double *dw, size_t *peak)
{
    hg_ctx *ctx = r->ctx;
    const model *m = r->m;
    int nt = NP + m->nstate, nsrc = nt + L;
    double *adj = xmalloc(sizeof(double) * (size_t)m->S);
    hg_tensor **src = xmalloc(sizeof(hg_tensor *) * (size_t)nsrc), **g = xmalloc(sizeof(hg_tensor *) * (size_t)nsrc);
    state tmp = state_new(m);
    size_t base = hg_ctx_get_stats(ctx).bytes_in_use;
    *peak = 0;
    int64_t B = r->B;
    for (int b = r->K; b > 0; b -= L) {
        int a = b - L > 0 ? b - L : 0;
        state_at(r, a, &tmp);
        hg_mark mk = hg_ctx_mark(ctx);
        hg_ctx_reset_peak(ctx);
        hg_tensor *params[NP], *st[2 * NP] = {0}, *next[NP], *T = NULL;
        state_tensors(ctx, m, &tmp, params, st);
        hg_tape *outer = hg_tape_begin(ctx, 0);
        hg_watch_n(outer, NP, params);
        hg_watch_n(outer, m->nstate, st);
        memcpy(src, params, sizeof params);
        memcpy(src + NP, st, sizeof(hg_tensor *) * (size_t)m->nstate);
        for (int k = a; k < b; k++) {
            hg_tensor *x, *y, *w = hg_ones(ctx, HG_F64, 1, &B);
            hg_watch(outer, w);
            src[nt + k - a] = w;
            make_batch(ctx, r->train + (int64_t)k * B, r->B, &x, &y);
            if (record_step(ctx, m, tmp.t + (k - a) + 1, params, st, x, y, w, next) != HG_OK)
                die_ctx(ctx, "exact (segments): recorded step");
            memcpy(params, next, sizeof params);
        }
        if (b == r->K) {
            hg_tensor *xv, *yv;
            make_batch(ctx, r->val, r->n_val, &xv, &yv);
            T = batch_loss(ctx, m, params, xv, yv, NULL);
        } else { /* <a, s_b> over the parameters and the optimizer state */
            hg_tensor *at[3 * NP];
            for (int j = 0; j < nt / NP; j++)
                unflatten(ctx, m, adj + m->P * j, at + NP * j);
            for (int i = 0; i < nt; i++) {
                hg_tensor *term = hg_sum(ctx, hg_mul(ctx, at[i], i < NP ? params[i] : st[i - NP]));
                T = T ? hg_add(ctx, T, term) : term;
            }
        }
        hg_tape_end(outer);
        if (!T || hg_gradient(outer, T, nt + (b - a), src, NULL, g) != HG_OK)
            die_ctx(ctx, "exact (segments): sweep");
        for (int k = a; k < b; k++)
            for (int j = 0; j < r->B; j++)
                dw[(int64_t)k * B + j] = hg_get(g[nt + k - a], j);
        for (int j = 0; j < nt / NP; j++)
            flatten(m, g + NP * j, adj + m->P * j);
        size_t pk = hg_ctx_get_stats(ctx).peak_bytes - base;
        if (pk > *peak)
            *peak = pk;
        hg_ctx_rewind(ctx, mk);
    }
    free(tmp.v);
    free(adj);
    free(src);
    free(g);
}

/* ---- influence functions: (1/n) g_val^T (H + lambda I)^-1 g_i ------------------ */

typedef struct hvp_user {
    const model *m;
    int first, count;           /* parameter tensors differentiated: [first, first + count) */
    hg_tensor *params[NP];      /* where the Hessian is taken (constants) */
    hg_tensor *feat;            /* last-layer mode: penultimate features [n, 64] */
    hg_tensor *x, *y;           /* the batch of the current product */
    hg_tensor *full_x, *full_y; /* the whole Hessian sample */
    const sample_ref *pool;     /* LiSSA minibatches are drawn from here */
    int64_t n_pool;
    int minibatch; /* 0: deterministic (full sample) */
    hg_rng rng;
    int64_t dim; /* length of the flat vector */
} hvp_user;

/* Training loss as a function of the differentiated tensors. */
static hg_tensor *hess_loss(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    hvp_user *h = user;
    if (h->feat) /* last layer only: logits = features W3 + b3 */
        return hg_softmax_cross_entropy(ctx, hg_dense(ctx, h->x, in[0], in[1]), h->y);
    return batch_loss(ctx, h->m, in, h->x, h->y, NULL);
}

static void split(hg_ctx *ctx, const hvp_user *h, const double *flat, hg_tensor **t)
{
    int64_t off = h->m->off[h->first];
    for (int i = 0; i < h->count; i++) {
        int rank;
        int64_t shape[2];
        tensor_shape(h->m, h->first + i, &rank, shape);
        t[i] = hg_tensor_from(ctx, HG_F64, rank, shape, flat + h->m->off[h->first + i] - off);
    }
}

/* Av = H v (the solver adds lambda v). */
static hg_status hvp_apply(hg_ctx *ctx, const hg_tensor *v, hg_tensor **Av, void *user)
{
    hvp_user *h = user;
    h->x = h->full_x;
    h->y = h->full_y;
    if (h->minibatch) {
        int64_t mb = h->minibatch;
        if (h->feat) {
            int64_t shape[2] = {mb, 64};
            h->x = hg_tensor_new(ctx, HG_F64, 2, shape);
            h->y = hg_tensor_new(ctx, HG_I32, 1, &mb);
            if (!h->x || !h->y)
                return hg_ctx_status(ctx);
            for (int64_t j = 0; j < mb; j++) {
                int64_t s = (int64_t)(hg_rng_next(&h->rng) % (uint64_t)h->n_pool);
                memcpy(hg_tensor_f64(h->x) + j * 64, hg_tensor_f64(h->feat) + s * 64, 64 * sizeof(double));
                hg_tensor_i32(h->y)[j] = h->pool[s].y;
            }
        } else {
            sample_ref *b = xmalloc(sizeof(sample_ref) * (size_t)mb);
            for (int64_t j = 0; j < mb; j++)
                b[j] = h->pool[hg_rng_next(&h->rng) % (uint64_t)h->n_pool];
            make_batch(ctx, b, mb, &h->x, &h->y);
            free(b);
        }
    }
    hg_tensor *tang[NP], *hv[NP];
    split(ctx, h, hg_tensor_f64((hg_tensor *)v), tang);
    hg_status s = hg_hvp(ctx, hess_loss, h->count, h->params + h->first, h, tang, 0, NULL, hv);
    if (s != HG_OK)
        return s;
    hg_tensor *out = hg_tensor_new(ctx, HG_F64, 1, &h->dim);
    if (!out)
        return hg_ctx_status(ctx);
    double *o = hg_tensor_f64(out);
    for (int i = 0; i < h->count; i++) {
        int64_t a = h->m->off[h->first + i] - h->m->off[h->first];
        memcpy(o + a, hg_tensor_f64(hv[i]), sizeof(double) * (size_t)hg_tensor_numel(hv[i]));
    }
    *Av = out;
    return HG_OK;
}

/* Largest eigenvalue of the (deterministic) operator by power iteration. */
static double power_iteration(hg_ctx *ctx, hvp_user *h, int iters)
{
    hg_mark mk = hg_ctx_mark(ctx);
    int mb = h->minibatch;
    h->minibatch = 0;
    hg_rng rng;
    hg_rng_seed(&rng, 99);
    hg_tensor *v = hg_rand_normal(ctx, &rng, HG_F64, 1, &h->dim, 0, 1), *Av;
    double lambda = 0;
    for (int it = 0; it < iters && v; it++) {
        double *vd = hg_tensor_f64(v), nv = sqrt(dotv(vd, vd, h->dim));
        for (int64_t i = 0; i < h->dim; i++)
            vd[i] /= nv;
        hg_mark m2 = hg_ctx_mark(ctx);
        if (hvp_apply(ctx, v, &Av, h) != HG_OK)
            die_ctx(ctx, "power iteration");
        lambda = dotv(vd, hg_tensor_f64(Av), h->dim);
        memcpy(vd, hg_tensor_f64(Av), sizeof(double) * (size_t)h->dim);
        hg_ctx_rewind(ctx, m2);
    }
    h->minibatch = mb;
    hg_ctx_rewind(ctx, mk);
    return lambda;
}

typedef struct solve_info {
    double damping, scale, residual, seconds, lambda_max;
    int iterations, converged;
    size_t peak;
} solve_info;

/* x = (H + lambda I)^-1 b by CG (lissa = false) or LiSSA, written into x
 * (dim doubles). CG raises lambda x10 while H + lambda I is not positive
 * definite along a CG direction; LiSSA doubles the scale while it
 * diverges. */
static void solve_hvp(hg_ctx *ctx, hvp_user *h, const double *b, bool lissa, const options *o, double *x,
                      solve_info *info, bool self)
{
    double t0 = now();
    hg_mark mk = hg_ctx_mark(ctx);
    size_t base = hg_ctx_get_stats(ctx).bytes_in_use;
    hg_ctx_reset_peak(ctx);
    hg_tensor *bt = hg_tensor_from(ctx, HG_F64, 1, &h->dim, b), *xt = NULL;
    if (!bt)
        die_ctx(ctx, "solve");
    hg_solve_options so = {.damping = info->damping > 0 ? info->damping : o->damping};
    hg_solve_report rep;
    if (lissa) {
        if (info->scale <= 0)
            info->scale = o->lissa_scale > 0 ? o->lissa_scale : 2.0 * (info->lambda_max + so.damping);
        so.scale = info->scale;
        so.max_iter = self && o->lissa_depth > 100 ? 100 : o->lissa_depth;
        h->minibatch = o->lissa_batch;
    } else {
        so.max_iter = o->cg_iters;
        so.tol = self ? 1e-4 : 1e-6; /* a ranking of self-influences needs fewer digits */
        h->minibatch = 0;
    }
    for (int attempt = 0;; attempt++) {
        hg_status s = lissa ? hg_lissa_solve(ctx, hvp_apply, h, bt, &so, &xt, &rep)
                            : hg_cg_solve(ctx, hvp_apply, h, bt, &so, &xt, &rep);
        if (s == HG_OK)
            break;
        if (s != HG_ERR_RANGE || attempt == 6)
            die_ctx(ctx, lissa ? "LiSSA" : "CG");
        if (!self)
            fprintf(stderr, "  %s: %s; retrying with %s x%s\n", lissa ? "LiSSA" : "CG", hg_ctx_error(ctx),
                    lissa ? "scale" : "damping", lissa ? "2" : "10");
        hg_ctx_clear_error(ctx);
        if (lissa)
            so.scale *= 2;
        else
            so.damping *= 10;
    }
    memcpy(x, hg_tensor_f64(xt), sizeof(double) * (size_t)h->dim);
    info->damping = so.damping;
    info->scale = so.scale;
    info->iterations = rep.iterations;
    info->residual = rep.residual;
    info->converged = rep.converged;
    info->peak = hg_ctx_get_stats(ctx).peak_bytes - base;
    hg_ctx_rewind(ctx, mk);
    h->minibatch = 0;
    info->seconds = now() - t0;
}

/* ---- results ------------------------------------------------------------------- */

static const char *est_name[NEST] = {"leave-one-out", "exact (unrolled)",     "IF (CG)",
                                     "IF (LiSSA)",    "TracIn (checkpoints)", "TracIn (at the step)"};
static const char *est_short[NEST] = {"loo", "exact", "if_cg", "if_lissa", "tracin_cp", "tracin_step"};

typedef struct opt_result {
    const char *opt;
    int N;
    double *v[NEST]; /* v[0] actual change, v[1..] predictions, per chosen sample */
    int64_t *ids;    /* positions in the epoch */
    int B;
    double seconds[NEST];
    double mbytes[NEST];
    double pearson[NEST], spearman[NEST];
    double E, E0;
    char notes[NEST][160];
    /* weight scan */
    int scanned, with_jump, with_nonlinear, segments, jump_segments;
    double max_ratio, scan_unit;
    /* mislabel detection: fraction found at 5/10/20% per detector */
    int n_det;
    char det_name[8][40];
    char det_note[8][80];
    double found[8][3];
    double det_seconds[8];
    int64_t mis_n, mis_flipped;
    double mis_acc_val;
    int n_probe;
    probe_row *probe;
    double probe_seconds;
} opt_result;

/* Every output goes to a temporary file beside its target, renamed over it
 * only when complete (hg_atomic_*): a crash or a full disk never leaves a
 * half-written table, CSV or PNG. */
static int write_csv(hg_ctx *ctx, const char *dir, const opt_result *res)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/influence_%s.csv", dir, res->opt);
    hg_atomic_file *af = hg_atomic_open(ctx, path);
    FILE *f = hg_atomic_stream(af);
    if (!f) {
        fprintf(stderr, "influence: cannot write %s: %s\n", path, hg_ctx_error(ctx));
        hg_ctx_clear_error(ctx);
        return -1;
    }
    fprintf(f, "position,step");
    for (int e = 0; e < NEST; e++)
        fprintf(f, ",%s", est_short[e]);
    fprintf(f, "\n");
    for (int i = 0; i < res->N; i++) {
        fprintf(f, "%lld,%lld", (long long)res->ids[i], (long long)res->ids[i] / res->B);
        for (int e = 0; e < NEST; e++)
            fprintf(f, ",%.10e", res->v[e][i]);
        fprintf(f, "\n");
    }
    if (hg_atomic_commit(af) != HG_OK) {
        fprintf(stderr, "influence: cannot write %s: %s\n", path, hg_ctx_error(ctx));
        hg_ctx_clear_error(ctx);
        return -1;
    }
    return 0;
}

/* ---- the experiment for one optimizer ---------------------------------------------- */

typedef struct setup {
    const options *o;
    hg_ctx *ctx;
    sample_ref *train, *val, *warm, *mis;
    int64_t n_val, n_warm;
    bool *flipped;
    int64_t *loo; /* N positions in the epoch */
} setup;

static state warm_start(const setup *su, const model *m)
{
    hg_ctx *ctx = su->ctx;
    const options *o = su->o;
    hg_rng rng;
    hg_rng_seed(&rng, o->seed);
    hg_mark mk = hg_ctx_mark(ctx);
    hg_tensor *p[NP];
    if (hg_mlp_init(ctx, &m->spec, HG_F64, HG_INIT_HE, &rng, p) != HG_OK)
        die_ctx(ctx, "init");
    state s = state_new(m); /* optimizer state zero */
    flatten(m, p, s.v);
    hg_ctx_rewind(ctx, mk);
    int64_t cycle = su->n_warm / o->batch;
    double t0 = now();
    for (int64_t w = 0; w < o->warmup; w++) {
        train_step(ctx, m, &s, su->warm + (w % cycle) * o->batch, o->batch, NULL);
        progress("warm-up", w + 1, o->warmup, t0);
    }
    return s;
}

static void sample_grad(run *r, const double *theta, int64_t pos, double *g)
{
    loss_and_grad(r->ctx, r->m, theta, r->train + pos, 1, g);
}

static const double *g_score;
static int by_score_desc(const void *a, const void *b)
{
    double x = g_score[*(const int64_t *)a], y = g_score[*(const int64_t *)b];
    if (isnan(x))
        return isnan(y) ? 0 : 1;
    if (isnan(y))
        return -1;
    return x > y ? -1 : x < y ? 1 : 0;
}

/* Fractions of the flipped samples among the top 5/10/20% by score. */
static void found_fractions(const double *score, const bool *flipped, int64_t n, double out[3])
{
    int64_t *o = xmalloc(sizeof(int64_t) * (size_t)n), total = 0;
    for (int64_t i = 0; i < n; i++) {
        o[i] = i;
        total += flipped[i];
    }
    g_score = score;
    qsort(o, (size_t)n, sizeof(int64_t), by_score_desc);
    const double pct[3] = {0.05, 0.10, 0.20};
    for (int p = 0; p < 3; p++) {
        int64_t top = (int64_t)ceil(pct[p] * (double)n), hit = 0;
        for (int64_t i = 0; i < top; i++)
            hit += flipped[o[i]];
        out[p] = total ? (double)hit / (double)total : NAN;
    }
    free(o);
}

/* Self-influence scores on the mislabelled run. */
static void mislabel_experiment(const setup *su, const model *m, const state *s0, opt_result *res)
{
    const options *o = su->o;
    hg_ctx *ctx = su->ctx;
    run r = {.m = m,
             .ctx = ctx,
             .B = o->batch,
             .n = o->mislabel,
             .train = su->mis,
             .val = su->val,
             .n_val = su->n_val,
             .s0 = *s0};
    r.K = (int)(r.n / r.B);
    double t0 = now();
    run_base(&r);
    double t_train = now() - t0;
    int64_t n = r.n;
    res->mis_n = n;
    res->mis_flipped = 0;
    for (int64_t i = 0; i < n; i++)
        res->mis_flipped += su->flipped[i];
    {
        hg_mark mk = hg_ctx_mark(ctx);
        hg_tensor *params[NP], *xv, *yv;
        unflatten(ctx, m, r.final.v, params);
        make_batch(ctx, su->val, su->n_val, &xv, &yv);
        res->mis_acc_val = hg_accuracy(ctx, hg_mlp_forward(ctx, &m->spec, params, xv), yv);
        hg_ctx_rewind(ctx, mk);
    }
    double *score[8];
    for (int k = 0; k < 8; k++)
        score[k] = xmalloc(sizeof(double) * (size_t)n);
    int nd = 0;
    state tmp = state_new(m);

    /* exact: -dL_i(theta_K)/dw_i through the steps after i's batch, one
     * persistent tape per batch and one sweep per sample of it */
    t0 = now();
    int64_t B = r.B;
    for (int k = 0; k < r.K; k++) {
        hg_mark mk = hg_ctx_mark(ctx);
        state_at(&r, k, &tmp);
        hg_tensor *params[NP], *st[2 * NP] = {0}, *next[NP], *x, *y, *xk, *yk;
        state_tensors(ctx, m, &tmp, params, st);
        hg_tape *outer = hg_tape_begin(ctx, HG_TAPE_PERSISTENT);
        hg_tensor *w = hg_ones(ctx, HG_F64, 1, &B);
        hg_watch(outer, w);
        for (int j = k; j < r.K; j++) {
            make_batch(ctx, r.train + (int64_t)j * B, B, &x, &y);
            if (record_step(ctx, m, tmp.t + (j - k) + 1, params, st, x, y, j == k ? w : NULL, next) != HG_OK)
                die_ctx(ctx, "mislabel: exact");
            memcpy(params, next, sizeof params);
        }
        make_batch(ctx, r.train + (int64_t)k * B, B, &xk, &yk);
        hg_tensor *L = hg_softmax_cross_entropy_each(ctx, hg_mlp_forward(ctx, &m->spec, params, xk), yk);
        hg_tape_end(outer);
        for (int j = 0; j < B; j++) {
            hg_mark m2 = hg_ctx_mark(ctx);
            hg_tensor *seed = hg_zeros(ctx, HG_F64, 1, &B), *g;
            if (seed)
                hg_tensor_f64(seed)[j] = 1.0;
            if (!L || hg_gradient(outer, L, 1, &w, seed, &g) != HG_OK)
                die_ctx(ctx, "mislabel: exact sweep");
            score[nd][(int64_t)k * B + j] = -hg_get(g, j);
            hg_ctx_rewind(ctx, m2);
        }
        hg_ctx_rewind(ctx, mk);
        progress("mislabel: exact self-infl.", k + 1, r.K, t0);
    }
    snprintf(res->det_name[nd], sizeof res->det_name[nd], "exact (unrolled)");
    snprintf(res->det_note[nd], sizeof res->det_note[nd], "-dL_i(theta_K)/dw_i: a tape per batch, a sweep per sample");
    res->det_seconds[nd++] = now() - t0;

    /* influence functions on the last layer: g_i^T (H + lambda I)^-1 g_i */
    for (int lissa = 0; lissa < 2; lissa++) {
        t0 = now();
        hg_mark mk = hg_ctx_mark(ctx);
        hvp_user h = {.m = m, .first = 4, .count = 2, .dim = m->off[NP] - m->off[4], .pool = r.train, .n_pool = n};
        hg_rng_seed(&h.rng, o->seed + 17);
        hg_tensor *x, *y;
        unflatten(ctx, m, r.final.v, h.params);
        make_batch(ctx, r.train, n, &x, &y);
        h.feat = hg_activate(ctx,
                             hg_dense(ctx, hg_activate(ctx, hg_dense(ctx, x, h.params[0], h.params[1]), m->spec.hidden),
                                      h.params[2], h.params[3]),
                             m->spec.hidden);
        h.full_x = h.feat;
        h.full_y = y;
        if (!h.feat)
            die_ctx(ctx, "mislabel: features");
        solve_info info;
        memset(&info, 0, sizeof info);
        info.lambda_max = power_iteration(ctx, &h, 30);
        double *g = xmalloc(sizeof(double) * (size_t)h.dim), *sx = xmalloc(sizeof(double) * (size_t)h.dim);
        long iters = 0;
        for (int64_t i = 0; i < n; i++) {
            hg_mark m2 = hg_ctx_mark(ctx);
            int64_t shape[2] = {1, 64}, one = 1;
            hg_tensor *fi = hg_tensor_from(ctx, HG_F64, 2, shape, hg_tensor_f64(h.feat) + i * 64);
            hg_tensor *yi = hg_tensor_from(ctx, HG_I32, 1, &one, &r.train[i].y), *gi[2];
            hg_tape *tape = hg_tape_begin(ctx, 0);
            hg_watch_n(tape, 2, h.params + 4);
            hg_tensor *li = hg_softmax_cross_entropy(ctx, hg_dense(ctx, fi, h.params[4], h.params[5]), yi);
            hg_tape_end(tape);
            if (!li || hg_gradient(tape, li, 2, h.params + 4, NULL, gi) != HG_OK)
                die_ctx(ctx, "mislabel: last-layer gradient");
            memcpy(g, hg_tensor_f64(gi[0]), sizeof(double) * 640);
            memcpy(g + 640, hg_tensor_f64(gi[1]), sizeof(double) * 10);
            hg_ctx_rewind(ctx, m2);
            solve_hvp(ctx, &h, g, lissa, o, sx, &info, true);
            score[nd][i] = dotv(g, sx, h.dim);
            iters += info.iterations;
            progress(lissa ? "mislabel: IF LiSSA (last layer)" : "mislabel: IF CG (last layer)", i + 1, n, t0);
        }
        free(g);
        free(sx);
        hg_ctx_rewind(ctx, mk);
        snprintf(res->det_name[nd], sizeof res->det_name[nd], "IF (%s, last layer)", lissa ? "LiSSA" : "CG");
        snprintf(res->det_note[nd], sizeof res->det_note[nd], "%s, lambda %g, %.1f products per sample",
                 lissa ? "depth <= 100" : "CG to 1e-4", info.damping, (double)iters / (double)n);
        res->det_seconds[nd++] = now() - t0;
    }

    /* TracIn: sum over checkpoints / at the step of lr/B |g_i|^2; loss */
    t0 = now();
    double *g = xmalloc(sizeof(double) * (size_t)m->P);
    int C = o->checkpoints < r.K ? o->checkpoints : r.K;
    memset(score[nd], 0, sizeof(double) * (size_t)n);
    for (int c = 0; c < C; c++) {
        state_at(&r, c * r.K / C, &tmp);
        for (int64_t i = 0; i < n; i++) {
            sample_grad(&r, tmp.v, i, g);
            score[nd][i] += m->opt.lr / ((double)B * C) * dotv(g, g, m->P);
        }
        progress("mislabel: TracIn checkpoints", c + 1, C, t0);
    }
    snprintf(res->det_name[nd], sizeof res->det_name[nd], "TracIn (checkpoints)");
    snprintf(res->det_note[nd], sizeof res->det_note[nd], "%d checkpoints, sum_c lr/(B C) |g_i|^2", C);
    res->det_seconds[nd++] = now() - t0;
    t0 = now();
    for (int k = 0; k < r.K; k++) {
        state_at(&r, k, &tmp);
        for (int64_t i = (int64_t)k * B; i < (int64_t)(k + 1) * B; i++) {
            sample_grad(&r, tmp.v, i, g);
            score[nd][i] = m->opt.lr / (double)B * dotv(g, g, m->P);
        }
    }
    snprintf(res->det_name[nd], sizeof res->det_name[nd], "TracIn (at the step)");
    snprintf(res->det_note[nd], sizeof res->det_note[nd], "lr/B |g_i|^2 at the step that used i");
    res->det_seconds[nd++] = now() - t0;
    t0 = now();
    for (int64_t i = 0; i < n; i++)
        score[nd][i] = loss_and_grad(ctx, m, r.final.v, r.train + i, 1, NULL);
    snprintf(res->det_name[nd], sizeof res->det_name[nd], "training loss");
    snprintf(res->det_note[nd], sizeof res->det_note[nd], "CE_i at the final weights (not an influence: a baseline)");
    res->det_seconds[nd++] = now() - t0;
    hg_rng rng;
    hg_rng_seed(&rng, o->seed + 5);
    for (int64_t i = 0; i < n; i++)
        score[nd][i] = hg_rng_uniform(&rng);
    snprintf(res->det_name[nd], sizeof res->det_name[nd], "random inspection");
    snprintf(res->det_note[nd], sizeof res->det_note[nd], "one seeded random order");
    res->det_seconds[nd++] = 0;
    res->n_det = nd;
    for (int k = 0; k < nd; k++)
        found_fractions(score[k], su->flipped, n, res->found[k]);
    fprintf(stderr, "  mislabel run: %lld samples, %lld flipped, trained in %.1f s\n", (long long)n,
            (long long)res->mis_flipped, t_train);
    free(g);
    free(tmp.v);
    for (int k = 0; k < 8; k++)
        free(score[k]);
    for (int k = 0; k < r.n_snap; k++)
        free(r.snap[k].v);
    free(r.snap);
    free(r.final.v);
}

static void experiment(const setup *su, hg_opt_kind kind, opt_result *res)
{
    const options *o = su->o;
    hg_ctx *ctx = su->ctx;
    hg_opt_config cfg = {.kind = kind, .lr = kind == HG_OPT_SGD ? o->lr_sgd : o->lr_adam};
    model mdl, *m = &mdl;
    model_init(m, cfg, strcmp(o->act, "tanh") ? HG_ACT_RELU : HG_ACT_TANH);
    int N = (int)o->loo;
    res->opt = hg_opt_name(kind);
    res->N = N;
    res->B = o->batch;
    res->ids = su->loo;
    for (int e = 0; e < NEST; e++)
        res->v[e] = xmalloc(sizeof(double) * (size_t)(N ? N : 1));
    fprintf(stderr, "== %s (lr %g): warm-up %lld steps, one epoch over %lld samples (%lld steps)\n", res->opt, cfg.lr,
            (long long)o->warmup, (long long)o->train, (long long)(o->train / o->batch));

    run r = {.m = m, .ctx = ctx, .B = o->batch, .n = o->train, .train = su->train, .val = su->val, .n_val = su->n_val};
    r.K = (int)(r.n / r.B);
    r.s0 = warm_start(su, m);
    res->E0 = val_loss(&r, r.s0.v, NULL);
    double t0 = now();
    run_base(&r);
    double t_base = now() - t0;
    res->E = r.E;
    double snap_mb = (double)r.n_snap * (double)m->S * 8 / 1e6;
    state tmp = state_new(m);

    /* leave-one-out */
    t0 = now();
    for (int i = 0; i < N; i++) {
        res->v[0][i] = val_with_weight(&r, su->loo[i], 0.0, &tmp) - r.E;
        progress("leave-one-out re-runs", i + 1, N, t0);
    }
    res->seconds[0] = now() - t0 + t_base;
    res->mbytes[0] = snap_mb;
    snprintf(res->notes[0], sizeof res->notes[0],
             "%d re-runs from the snapshot before the sample's step; "
             "snapshots every %d step(s)",
             N, r.every);

    /* exact */
    t0 = now();
    double *dw = xmalloc(sizeof(double) * (size_t)r.n);
    int snaps = o->snapshots >= 0 ? o->snapshots : (int)hg_unroll_snapshots_for(r.K, r.K);
    hg_unroll_stats ust;
    exact_unroll(&r, snaps, dw, &ust);
    for (int i = 0; i < N; i++)
        res->v[1][i] = -dw[su->loo[i]];
    res->seconds[1] = now() - t0;
    res->mbytes[1] = (double)ust.arena_peak_bytes / 1e6;
    snprintf(res->notes[1], sizeof res->notes[1],
             "hg_unroll, one reverse sweep gives all %lld samples; %d snapshots, "
             "%lld steps recomputed",
             (long long)r.n, ust.snapshots_used, (long long)ust.recomputed_steps);
    if (o->check_exact) {
        double *dw2 = xmalloc(sizeof(double) * (size_t)r.n), worst = 0, scale = 0;
        size_t p2;
        double t2 = now();
        exact_segments(&r, o->segment, dw2, &p2);
        t2 = now() - t2;
        for (int64_t i = 0; i < r.n; i++) {
            worst = fmax(worst, fabs(dw[i] - dw2[i]));
            scale = fmax(scale, fabs(dw[i]));
        }
        free(dw2);
        fprintf(stderr,
                "  exact: hg_unroll vs segments of %d steps (%.1f s, %.0f MB): max |difference| %.3e (max "
                "|dE/dw| %.3e)\n",
                o->segment, t2, (double)p2 / 1e6, worst, scale);
        if (!(worst <= 1e-9 * scale)) {
            fprintf(stderr, "influence: the two exact methods disagree\n");
            exit(1);
        }
    }
    fprintf(stderr, "  exact: %.1f s, arena peak %.0f MB\n", res->seconds[1], res->mbytes[1]);

    /* probe */
    res->n_probe = (int)(o->probe < N ? o->probe : N);
    if (res->n_probe > 0) {
        t0 = now();
        res->probe = xmalloc(sizeof(probe_row) * (size_t)res->n_probe);
        probe(&r, su->loo, res->n_probe, dw, res->probe);
        res->probe_seconds = now() - t0;
    }

    /* influence functions */
    {
        hg_mark mk = hg_ctx_mark(ctx);
        hvp_user h = {.m = m, .first = 0, .count = NP, .dim = m->P, .pool = r.train, .n_pool = r.n};
        hg_rng_seed(&h.rng, o->seed + 7);
        unflatten(ctx, m, r.final.v, h.params);
        make_batch(ctx, r.train, o->hess, &h.full_x, &h.full_y);
        double *gval = xmalloc(sizeof(double) * (size_t)m->P), *g = xmalloc(sizeof(double) * (size_t)m->P);
        double *s[2] = {xmalloc(sizeof(double) * (size_t)m->P), xmalloc(sizeof(double) * (size_t)m->P)};
        val_loss(&r, r.final.v, gval);
        double tp = now();
        solve_info info[2];
        memset(info, 0, sizeof info);
        info[0].lambda_max = info[1].lambda_max = power_iteration(ctx, &h, 20);
        double t_power = now() - tp;
        for (int l = 0; l < 2; l++) {
            solve_hvp(ctx, &h, gval, l == 1, o, s[l], &info[l], false);
            res->mbytes[2 + l] = (double)info[l].peak / 1e6;
        }
        t0 = now();
        for (int i = 0; i < N; i++) {
            sample_grad(&r, r.final.v, su->loo[i], g);
            for (int l = 0; l < 2; l++)
                res->v[2 + l][i] = dotv(s[l], g, m->P) / (double)r.n;
        }
        double t_g = now() - t0;
        res->seconds[2] = info[0].seconds + t_g;
        res->seconds[3] = info[1].seconds + t_g + t_power;
        snprintf(res->notes[2], sizeof res->notes[2], "H on %lld samples, lambda %g, %d iterations, residual %.1e%s",
                 (long long)o->hess, info[0].damping, info[0].iterations, info[0].residual,
                 info[0].converged ? "" : " (not converged)");
        snprintf(res->notes[3], sizeof res->notes[3], "depth %d, batch %d, scale %.3g (lambda_max %.3g), lambda %g",
                 o->lissa_depth, o->lissa_batch, info[1].scale, info[1].lambda_max, info[1].damping);
        free(gval);
        free(g);
        free(s[0]);
        free(s[1]);
        hg_ctx_rewind(ctx, mk);
        fprintf(stderr, "  IF: CG %.1f s (%d it.), LiSSA %.1f s\n", res->seconds[2], info[0].iterations,
                res->seconds[3]);
    }

    /* TracIn */
    {
        double *gval = xmalloc(sizeof(double) * (size_t)m->P), *g = xmalloc(sizeof(double) * (size_t)m->P);
        int C = o->checkpoints < r.K ? o->checkpoints : r.K;
        t0 = now();
        for (int i = 0; i < N; i++)
            res->v[4][i] = 0;
        for (int c = 0; c < C; c++) {
            state_at(&r, c * r.K / C, &tmp);
            val_loss(&r, tmp.v, gval);
            for (int i = 0; i < N; i++) {
                sample_grad(&r, tmp.v, su->loo[i], g);
                res->v[4][i] += m->opt.lr / ((double)r.B * C) * dotv(gval, g, m->P);
            }
        }
        res->seconds[4] = now() - t0;
        res->mbytes[4] = (double)C * (double)m->P * 8 / 1e6;
        snprintf(res->notes[4], sizeof res->notes[4], "%d checkpoints, lr/(B C) sum_c g_val . g_i", C);
        t0 = now();
        for (int i = 0; i < N; i++) {
            state_at(&r, (int)(su->loo[i] / r.B), &tmp);
            val_loss(&r, tmp.v, gval);
            sample_grad(&r, tmp.v, su->loo[i], g);
            res->v[5][i] = m->opt.lr / (double)r.B * dotv(gval, g, m->P);
        }
        res->seconds[5] = now() - t0;
        res->mbytes[5] = snap_mb;
        snprintf(res->notes[5], sizeof res->notes[5], "lr/B g_val . g_i at the weights of the step that used i");
        free(gval);
        free(g);
    }
    for (int e = 0; e < NEST; e++) {
        res->pearson[e] = pearson(res->v[e], res->v[0], N);
        res->spearman[e] = spearman(res->v[e], res->v[0], N);
    }

    /* weight scan: E_val(w_i) on a grid from 1 to 0 */
    t0 = now();
    int G = o->scan_points;
    double *E = xmalloc(sizeof(double) * (size_t)(G + 1)), *absd = xmalloc(sizeof(double) * (size_t)(N ? N : 1));
    /* the unit: the typical linear effect of one grid step, median over the
     * leave-one-out samples of |dE/dw_i| / G */
    for (int i = 0; i < N; i++)
        absd[i] = fabs(res->v[1][i]);
    g_sort_key = absd;
    qsort(absd, (size_t)N, sizeof(double), by_value);
    double unit = N ? fmax(absd[N / 2] / G, 1e-300) : 1;
    res->scan_unit = unit;
    res->scanned = o->scan;
    for (int s = 0; s < o->scan; s++) {
        E[0] = r.E;
        for (int gi = 1; gi <= G; gi++)
            E[gi] = val_with_weight(&r, su->loo[s], 1.0 - (double)gi / G, &tmp);
        double lin = res->v[1][s] / G; /* this sample's predicted change per grid step */
        int jumps = 0, nonlinear = 0;
        for (int gi = 0; gi < G; gi++) {
            double dev = fabs(E[gi + 1] - E[gi] - lin) / unit;
            res->segments++;
            if (dev > 10)
                jumps++;
            if (dev > 1)
                nonlinear++;
            if (dev > res->max_ratio)
                res->max_ratio = dev;
        }
        res->jump_segments += jumps;
        res->with_jump += jumps > 0;
        res->with_nonlinear += nonlinear > 0;
        progress("weight scans", s + 1, o->scan, t0);
    }
    free(E);
    free(absd);

    if (o->mislabel > 0)
        mislabel_experiment(su, m, &r.s0, res);

    free(dw);
    free(tmp.v);
    for (int k = 0; k < r.n_snap; k++)
        free(r.snap[k].v);
    free(r.snap);
    free(r.final.v);
    free(r.s0.v);
}

/* ---- report -------------------------------------------------------------------- */

static void write_report(FILE *f, const options *o, const opt_result *res, int n_res, double total_s)
{
    fprintf(f, "# Influence estimators against leave-one-out\n\n");
    char from[64] = "";
    if (o->loo_last > 0)
        snprintf(from, sizeof from, " drawn from the last %d steps", o->loo_last);
    fprintf(f,
            "Fashion-MNIST, 784-64-64-10 %s MLP, f64, batch %d; warm-up %lld steps on t10k images outside the "
            "validation set; measured run: one epoch over %lld training samples (%lld steps); E_val: mean "
            "cross-entropy on %lld t10k images; %lld leave-one-out samples%s (loss weight 0, batch divisor kept "
            "at B). Total %.1f s.\n\n",
            strcmp(o->act, "tanh") ? "ReLU" : "tanh", o->batch, (long long)o->warmup, (long long)o->train,
            (long long)(o->train / o->batch), (long long)o->val, (long long)o->loo, from, total_s);
    for (int r = 0; r < n_res; r++) {
        const opt_result *x = &res[r];
        fprintf(f, "## %s (lr %g): E_val %.5f after warm-up, %.5f after the epoch\n\n", x->opt,
                !strcmp(x->opt, "sgd") ? o->lr_sgd : o->lr_adam, x->E0, x->E);
        fprintf(f, "| estimator | Pearson | Spearman | time (s) | memory (MB) | notes |\n|---|---|---|---|---|---|\n");
        for (int e = 0; e < NEST; e++)
            fprintf(f, "| %s | %.3f | %.3f | %.1f | %.1f | %s |\n", est_name[e], x->pearson[e], x->spearman[e],
                    x->seconds[e], x->mbytes[e], x->notes[e]);
        double lo = BIG, hi = -BIG;
        for (int i = 0; i < x->N; i++) {
            lo = fmin(lo, x->v[0][i]);
            hi = fmax(hi, x->v[0][i]);
        }
        fprintf(f, "\nActual changes range over [%.3e, %.3e].\n\n", lo, hi);
        fprintf(f,
                "Weight scan (E_val at w_i = 1, %.3g, ..., 0 for %d samples; unit u = median |dE/dw_i| / %d = "
                "%.2e, the typical linear change of one grid step): %d of %d samples have a jump (a grid step whose "
                "change differs from the sample's linear prediction by more than 10 u), %d of %d grid steps; %d of "
                "%d samples deviate by more than 1 u somewhere; largest deviation %.3g u.\n\n",
                1.0 - 1.0 / o->scan_points, x->scanned, o->scan_points, x->scan_unit, x->with_jump, x->scanned,
                x->jump_segments, x->segments, x->with_nonlinear, x->scanned, x->max_ratio);
        if (x->n_probe) {
            fprintf(f,
                    "Probe (%.1f s): E_val with w_i = 1 - h, as a multiple of the first-order prediction -h dE/dw_i "
                    "(1 = linear). Column h = 0 is E_val(w_i = 1) - E_val(base): 0 when the weighted path and its "
                    "replay from the stored state are bitwise the base run.\n\n| position | step | dE/dw_i | h = 0 |",
                    x->probe_seconds);
            for (int q = 1; q < NPROBE_H; q++)
                fprintf(f, " %g |", probe_h[q]);
            fprintf(f, "\n|---|---|---|---|");
            for (int q = 1; q < NPROBE_H; q++)
                fprintf(f, "---|");
            fprintf(f, "\n");
            for (int p = 0; p < x->n_probe; p++) {
                const probe_row *w = &x->probe[p];
                fprintf(f, "| %lld | %d | %.3e | %.1e |", (long long)w->pos, w->step, w->dEdw, w->ratio[0]);
                for (int q = 1; q < NPROBE_H; q++)
                    fprintf(f, " %.3g |", w->ratio[q]);
                fprintf(f, "\n");
            }
            fprintf(f, "\nThe same runs side by side with the base run: hidden units of later batches whose "
                       "pre-activation sign (relu') differs from the base run (total, and steps after the sample's "
                       "step to the first), and the parameter drift |theta - theta_base| / h after n more steps "
                       "(equal for both h while the run is linear in w_i).\n\n| position | h | flips | first flip |");
            for (int t = 0; t < NPROBE_T; t++)
                fprintf(f, " +%d |", probe_t[t]);
            fprintf(f, " end |\n|---|---|---|---|");
            for (int t = 0; t <= NPROBE_T; t++)
                fprintf(f, "---|");
            fprintf(f, "\n");
            for (int p = 0; p < x->n_probe; p++)
                for (int sl = 0; sl < 2; sl++) {
                    const probe_row *w = &x->probe[p];
                    fprintf(f, "| %lld | %g | %lld | %d |", (long long)w->pos, sl ? 1.0 : 1e-6, (long long)w->flips[sl],
                            w->first_flip[sl]);
                    for (int t = 0; t < NPROBE_T; t++)
                        if (isnan(w->drift[sl][t]))
                            fprintf(f, " |");
                        else
                            fprintf(f, " %.3g |", w->drift[sl][t]);
                    fprintf(f, " %.3g |\n", w->drift_end[sl]);
                }
            fprintf(f, "\n");
        }
        if (x->n_det) {
            fprintf(f,
                    "Mislabel detection: %lld samples, %lld labels flipped, one epoch; validation accuracy "
                    "afterwards %.1f%%. Fraction of the flipped samples found in the top k%% by self-influence:\n\n",
                    (long long)x->mis_n, (long long)x->mis_flipped, 100 * x->mis_acc_val);
            fprintf(f, "| ranking | top 5%% | top 10%% | top 20%% | time (s) | notes |\n|---|---|---|---|---|---|\n");
            for (int d = 0; d < x->n_det; d++)
                fprintf(f, "| %s | %.3f | %.3f | %.3f | %.1f | %s |\n", x->det_name[d], x->found[d][0], x->found[d][1],
                        x->found[d][2], x->det_seconds[d], x->det_note[d]);
            fprintf(f, "| (expected for random) | 0.050 | 0.100 | 0.200 | | |\n\n");
        }
    }
}

/* ---- plot: predicted (x) vs actual (y), one panel per estimator ------------------------ */

#ifdef HAVE_PNG
typedef unsigned char rgb[3];
typedef struct canvas {
    int w, h;
    unsigned char *px;
} canvas;

static void put(canvas *c, int x, int y, const rgb col)
{
    if (x >= 0 && y >= 0 && x < c->w && y < c->h)
        memcpy(c->px + 3 * ((size_t)y * (size_t)c->w + (size_t)x), col, 3);
}

/* 3x5 glyphs, rows top to bottom, 3 bits each (MSB left). */
static unsigned glyph(char ch)
{
    static const char *chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.-+:/=(),_%*<>";
    static const unsigned bits[] = {075557, 026227, 071747, 071717, 055711, 074717, 074757, 071111, 075757, 075717,
                                    025755, 065656, 034443, 065556, 074647, 074644, 034553, 055755, 072227, 011152,
                                    055655, 044447, 057755, 065555, 025552, 065644, 025563, 065655, 034216, 072222,
                                    055557, 055552, 055775, 055255, 055222, 071247, 000002, 000700, 002720, 002020,
                                    011244, 007070, 024442, 021112, 000024, 000007, 051245, 005250, 012421, 042124};
    const char *p = strchr(chars, ch);
    return p && ch ? bits[p - chars] : 0;
}

static void text(canvas *c, int x, int y, const char *s, int scale, const rgb col)
{
    for (; *s; s++, x += 4 * scale) {
        char ch = *s >= 'a' && *s <= 'z' ? (char)(*s - 32) : *s;
        unsigned b = glyph(ch);
        for (int r = 0; r < 5; r++)
            for (int k = 0; k < 3; k++)
                if (b >> (14 - 3 * r - k) & 1)
                    for (int dy = 0; dy < scale; dy++)
                        for (int dx = 0; dx < scale; dx++)
                            put(c, x + k * scale + dx, y + r * scale + dy, col);
    }
}

static int write_plot(hg_ctx *ctx, const char *path, const opt_result *res, int n_res)
{
    const int PW = 300, PH = 300, M = 40, TOP = 30, cols = NEST - 1;
    canvas c = {.w = cols * (PW + M) + M, .h = n_res * (PH + M + TOP) + M};
    c.px = xmalloc((size_t)c.w * (size_t)c.h * 3);
    memset(c.px, 255, (size_t)c.w * (size_t)c.h * 3);
    static const rgb black = {0, 0, 0}, grey = {200, 200, 200}, dot = {33, 102, 172}, red = {178, 24, 43};
    for (int r = 0; r < n_res; r++)
        for (int e = 1; e < NEST; e++) {
            const opt_result *x = &res[r];
            int x0 = M + (e - 1) * (PW + M), y0 = M / 2 + r * (PH + M + TOP) + TOP;
            char title[96];
            snprintf(title, sizeof title, "%s %s", x->opt, est_short[e]);
            text(&c, x0, y0 - 26, title, 2, black);
            snprintf(title, sizeof title, "PEARSON %.3f  SPEARMAN %.3f", x->pearson[e], x->spearman[e]);
            text(&c, x0, y0 - 12, title, 2, x->pearson[e] >= 0.9 ? dot : red);
            double xl = BIG, xh = -BIG, yl = BIG, yh = -BIG;
            for (int i = 0; i < x->N; i++) {
                xl = fmin(xl, x->v[e][i]);
                xh = fmax(xh, x->v[e][i]);
                yl = fmin(yl, x->v[0][i]);
                yh = fmax(yh, x->v[0][i]);
            }
            if (!(xh > xl))
                xh = xl + 1;
            if (!(yh > yl))
                yh = yl + 1;
            for (int k = 0; k < PW; k++) { /* frame */
                put(&c, x0 + k, y0, black);
                put(&c, x0 + k, y0 + PH - 1, black);
                put(&c, x0, y0 + k * PH / PW, black);
                put(&c, x0 + PW - 1, y0 + k * PH / PW, black);
            }
            if (xl < 0 && xh > 0) /* zero lines */
                for (int k = 1; k < PH - 1; k++)
                    put(&c, x0 + (int)((0 - xl) / (xh - xl) * (PW - 9)) + 4, y0 + k, grey);
            if (yl < 0 && yh > 0)
                for (int k = 1; k < PW - 1; k++)
                    put(&c, x0 + k, y0 + PH - 5 - (int)((0 - yl) / (yh - yl) * (PH - 9)), grey);
            for (int i = 0; i < x->N; i++) {
                int px = x0 + 4 + (int)((x->v[e][i] - xl) / (xh - xl) * (PW - 9));
                int py = y0 + PH - 5 - (int)((x->v[0][i] - yl) / (yh - yl) * (PH - 9));
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                        put(&c, px + dx, py + dy, dot);
            }
            text(&c, x0, y0 + PH + 4, "PREDICTED ->", 1, black);
            text(&c, x0 + PW - 70, y0 + PH + 4, "ACTUAL: UP", 1, black);
        }
    hg_atomic_file *af = hg_atomic_open(ctx, path);
    FILE *f = hg_atomic_stream(af);
    if (!f) {
        free(c.px);
        return -1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        hg_atomic_abort(af);
        free(c.px);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)c.w, (png_uint_32)c.h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < c.h; y++)
        png_write_row(png, c.px + (size_t)y * (size_t)c.w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(c.px);
    return hg_atomic_commit(af) == HG_OK ? 0 : -1;
}
#endif

/* ---- main ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    options o;
    if (parse_options(argc, argv, &o) != 0)
        return 2;
    g_quiet = o.quiet;
    /* One BLAS thread: a product split over threads differs in its last bits
     * between thread counts; every re-run must be bitwise the base run. */
    hg_blas_set_threads(1);
    data d;
    int rc = load_data(o.data, &d);
    if (rc)
        return rc;
    if (o.val >= d.n_test - o.batch) {
        fprintf(stderr, "influence: --val %lld leaves no t10k images for the warm-up\n", (long long)o.val);
        return 2;
    }
    if (o.train > d.n_train || o.mislabel > d.n_train) {
        fprintf(stderr, "influence: --train/--mislabel above the %lld training images\n", (long long)d.n_train);
        return 2;
    }
    if (mkdir(o.out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "influence: cannot create %s: %s\n", o.out, strerror(errno));
        return 1;
    }
    double t_start = now();
    setup su = {.o = &o, .ctx = hg_ctx_new(NULL)};
    if (!su.ctx)
        return 1;
    hg_rng rng;
    hg_rng_seed(&rng, o.seed + 1000);
    int64_t *perm = xmalloc(sizeof(int64_t) * (size_t)d.n_train);
    for (int64_t i = 0; i < d.n_train; i++)
        perm[i] = i;
    shuffle(perm, d.n_train, &rng);
    su.train = xmalloc(sizeof(sample_ref) * (size_t)o.train);
    for (int64_t i = 0; i < o.train; i++)
        su.train[i] = (sample_ref){d.train_x + perm[i] * 784, d.train_y[perm[i]]};
    /* the mislabel subset: the end of the permutation, 10% of its labels flipped */
    su.mis = xmalloc(sizeof(sample_ref) * (size_t)(o.mislabel ? o.mislabel : 1));
    su.flipped = xmalloc(sizeof(bool) * (size_t)(o.mislabel ? o.mislabel : 1));
    int64_t *pos = xmalloc(sizeof(int64_t) * (size_t)(o.mislabel > o.train ? o.mislabel : o.train));
    for (int64_t i = 0; i < o.mislabel; i++) {
        int64_t s = perm[d.n_train - o.mislabel + i];
        su.mis[i] = (sample_ref){d.train_x + s * 784, d.train_y[s]};
        pos[i] = i;
    }
    shuffle(pos, o.mislabel, &rng);
    for (int64_t i = 0; i < o.mislabel / 10; i++) {
        su.flipped[pos[i]] = true;
        su.mis[pos[i]].y = (int32_t)((su.mis[pos[i]].y + 1 + (int32_t)(hg_rng_next(&rng) % 9)) % 10);
    }
    su.n_val = o.val;
    su.val = xmalloc(sizeof(sample_ref) * (size_t)o.val);
    for (int64_t i = 0; i < o.val; i++)
        su.val[i] = (sample_ref){d.test_x + i * 784, d.test_y[i]};
    su.n_warm = d.n_test - o.val;
    su.warm = xmalloc(sizeof(sample_ref) * (size_t)su.n_warm);
    for (int64_t i = 0; i < su.n_warm; i++)
        su.warm[i] = (sample_ref){d.test_x + (o.val + i) * 784, d.test_y[o.val + i]};
    /* leave-one-out samples: random positions of the epoch (of its last
     * --loo-last steps) */
    int64_t first = o.loo_last > 0 ? o.train - (int64_t)o.loo_last * o.batch : 0;
    for (int64_t i = 0; i < o.train - first; i++)
        pos[i] = first + i;
    shuffle(pos, o.train - first, &rng);
    su.loo = xmalloc(sizeof(int64_t) * (size_t)(o.loo ? o.loo : 1));
    memcpy(su.loo, pos, sizeof(int64_t) * (size_t)o.loo);

    opt_result res[2];
    memset(res, 0, sizeof res);
    int write_failed = 0;
    int n_res = 0;
    const char *kinds[2] = {"sgd", "adam"};
    for (int k = 0; k < 2; k++) {
        if (!strstr(o.opts, kinds[k]))
            continue;
        experiment(&su, k == 0 ? HG_OPT_SGD : HG_OPT_ADAM, &res[n_res]);
        if (write_csv(su.ctx, o.out, &res[n_res]) != 0)
            write_failed = 1;
        n_res++;
    }
    if (!n_res) {
        fprintf(stderr, "influence: --opt %s names no optimizer (sgd, adam)\n", o.opts);
        return 2;
    }
    double total = now() - t_start;
    char path[1200];
    snprintf(path, sizeof path, "%s/influence.md", o.out);
    hg_atomic_file *af = hg_atomic_open(su.ctx, path);
    if (af)
        write_report(hg_atomic_stream(af), &o, res, n_res, total);
    if (!af || hg_atomic_commit(af) != HG_OK) {
        write_failed = 1;
        fprintf(stderr, "influence: cannot write %s: %s\n", path, hg_ctx_error(su.ctx));
        hg_ctx_clear_error(su.ctx);
    }
    write_report(stdout, &o, res, n_res, total);
#ifdef HAVE_PNG
    snprintf(path, sizeof path, "%s/influence.png", o.out);
    if (write_plot(su.ctx, path, res, n_res) != 0) {
        write_failed = 1;
        fprintf(stderr, "influence: cannot write %s: %s\n", path, hg_ctx_error(su.ctx));
        hg_ctx_clear_error(su.ctx);
    } else
        printf("wrote %s/influence.md, %s/influence_<opt>.csv and %s\n", o.out, o.out, path);
#endif
    for (int r = 0; r < n_res; r++)
        for (int e = 0; e < NEST; e++)
            free(res[r].v[e]);
    for (int r = 0; r < n_res; r++)
        free(res[r].probe);
    free(perm);
    free(pos);
    free(su.train);
    free(su.mis);
    free(su.flipped);
    free(su.val);
    free(su.warm);
    free(su.loo);
    hg_ctx_free(su.ctx);
    hg_ctx_free(d.ctx);
    return write_failed;
}
