/* hgrad_bench --cases epoch: the hypergradient through a whole training
 * epoch (or run) with hg_unroll, on the user's setting.
 *
 * Trains the 784-64-64-10 ReLU MLP (He init, seed 42, f64) on Debian's
 * Fashion-MNIST with Adam (lr 1e-3, batch 32, shuffled each epoch) for
 * --epochs N (default 5) in the training form, then differentiates the
 * validation loss (mean cross-entropy on the first --val N test images,
 * default 1000) through the last epoch (1,875 steps, from the optimizer
 * state training left: hg_optimizer_export), or through the whole run from
 * initialisation with --through all, with respect to every step's batch
 * and per-sample loss weights, the initial state and the learning rate.
 * Prints the wall time of each phase, the unroll's arena peak and
 * recomputation count. --snapshots N sets the budget (default: as many as
 * fit in 48 MB: 36 for Adam's state, 109 for SGD's).
 *
 * --check K: before that, on the first K steps of the last epoch, compares
 * hg_unroll (4 snapshots) with one tape over the K steps for SGD, momentum
 * and Adam: the worst relative difference of dx, dw, d(initial state) and
 * d(lr) (max |a-b| / max |b| per tensor). */
#include "epoch.h"

#include "../examples/mnist/hypergrad.h" /* HYPERGRAD_SNAPSHOT_BYTES */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NP 6
#define PIX 784

typedef struct run {
    const float *x; /* training images [60000, 784] in [0, 1] */
    const int32_t *y;
    int64_t n;
    const int32_t *order; /* sample of step k's row j: order[(k0 + k) * b + j] */
    int64_t k0;           /* global index of step 0 */
    int b;
    hg_mlp spec;
    hg_opt_config opt;
    int t0; /* optimizer steps before step 0 */
    int n_opt;
    hg_tensor *xv, *yv;
    double *influence; /* dE/dw per training sample, summed over appearances */
    double *dx_norm2;  /* sum over appearances of |dE/dx_i|^2 */
    /* --check: full-gradient sums per step position */
    hg_tensor **dx_steps, **dw_steps;
} run;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(hg_ctx *ctx, const char *what)
{
    fprintf(stderr, "hgrad_bench epoch: %s: %s\n", what, ctx ? hg_ctx_error(ctx) : "out of memory");
    exit(1);
}

static hg_status inputs(hg_ctx *ctx, int k, hg_tensor **in, void *user)
{
    run *r = user;
    int64_t shape[2] = {r->b, PIX};
    hg_tensor *x = hg_tensor_new(ctx, HG_F64, 2, shape), *y = hg_tensor_new(ctx, HG_I32, 1, shape);
    if (!x || !y)
        return hg_ctx_status(ctx);
    double *xd = hg_tensor_f64(x);
    int32_t *yd = hg_tensor_i32(y);
    for (int j = 0; j < r->b; j++) {
        int64_t i = r->order[(r->k0 + k) * r->b + j];
        for (int p = 0; p < PIX; p++)
            xd[j * PIX + p] = r->x[i * PIX + p];
        yd[j] = r->y[i];
    }
    in[0] = x;
    in[1] = hg_ones(ctx, HG_F64, 1, shape);
    in[2] = y;
    return hg_ctx_status(ctx);
}

/* One optimizer step on mean_j w_j CE_j (recorded ops only). */
static hg_status step(hg_ctx *ctx, int k, hg_tensor *const *s, hg_tensor *const *in, hg_tensor *const *g,
                      hg_tensor **out, void *user)
{
    run *r = user;
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch_n(t, NP, s);
    hg_tensor *ce = hg_softmax_cross_entropy_each(ctx, hg_mlp_forward(ctx, &r->spec, s, in[0]), in[2]);
    hg_tensor *loss = hg_mean(ctx, hg_mul(ctx, in[1], ce));
    hg_tape_end(t);
    hg_tensor *grads[NP], *state[2 * NP];
    if (!t || hg_gradient(t, loss, NP, s, NULL, grads) != HG_OK)
        return hg_ctx_status(ctx);
    for (int j = 0; j < r->n_opt; j++)
        state[j] = s[NP + j];
    hg_status st = hg_opt_step(ctx, &r->opt, g[0], r->t0 + k + 1, NP, s, grads, state, out);
    for (int j = 0; j < r->n_opt; j++)
        out[NP + j] = state[j];
    return st;
}

static hg_tensor *val_loss(hg_ctx *ctx, hg_tensor *const *s, hg_tensor *const *g, void *user)
{
    (void)g;
    run *r = user;
    return hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, &r->spec, s, r->xv), r->yv);
}

static hg_status on_grad(hg_ctx *ctx, int k, hg_tensor *const *in, hg_tensor *const *gr, void *user)
{
    (void)ctx;
    (void)in;
    run *r = user;
    const double *dx = hg_tensor_f64(gr[0]), *dw = hg_tensor_f64(gr[1]);
    for (int j = 0; j < r->b; j++) {
        int64_t i = r->order[(r->k0 + k) * r->b + j];
        r->influence[i] += dw[j];
        double n2 = 0;
        for (int p = 0; p < PIX; p++)
            n2 += dx[j * PIX + p] * dx[j * PIX + p];
        r->dx_norm2[i] += n2;
    }
    if (r->dx_steps) {
        memcpy(hg_tensor_f64(r->dx_steps[k]), dx, sizeof(double) * (size_t)r->b * PIX);
        memcpy(hg_tensor_f64(r->dw_steps[k]), dw, sizeof(double) * (size_t)r->b);
    }
    return HG_OK;
}

static double rel_diff(hg_tensor *a, hg_tensor *b)
{
    double num = 0, den = 0;
    const double *x = hg_tensor_f64(a), *y = hg_tensor_f64(b);
    for (int64_t i = 0; i < hg_tensor_numel(b); i++) {
        num = fmax(num, fabs(x[i] - y[i]));
        den = fmax(den, fabs(y[i]));
    }
    return den > 0 ? num / den : num;
}

/* A copy of t (from any ctx) in ctx. */
static hg_tensor *copy_to(hg_ctx *ctx, hg_tensor *t)
{
    return hg_tensor_from(ctx, hg_tensor_dtype(t), hg_tensor_rank(t), hg_tensor_shape(t), hg_tensor_data(t));
}

/* hg_unroll (4 snapshots) against one tape over K steps, from state0. */
static double check_kind(run *r, hg_opt_kind kind, int K, hg_tensor *const *params, hg_tensor *const *adam_state)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    run q = *r;
    q.opt.kind = kind;
    q.opt.lr = kind == HG_OPT_ADAM ? 1e-3 : 0.05;
    q.opt.momentum = 0.9;
    q.n_opt = hg_opt_state_count(kind, NP);
    q.t0 = kind == HG_OPT_ADAM ? r->t0 : 0;
    q.xv = copy_to(ctx, r->xv);
    q.yv = copy_to(ctx, r->yv);
    hg_tensor *s0[3 * NP], *lr = hg_scalar(ctx, HG_F64, q.opt.lr);
    for (int i = 0; i < NP; i++)
        s0[i] = copy_to(ctx, params[i]);
    for (int j = 0; j < q.n_opt; j++) /* Adam: the warm state; momentum: its m as u */
        s0[NP + j] = copy_to(ctx, adam_state[j]);
    int ns = NP + q.n_opt;
    q.dx_steps = malloc(sizeof(hg_tensor *) * (size_t)K);
    q.dw_steps = malloc(sizeof(hg_tensor *) * (size_t)K);
    q.influence = calloc((size_t)r->n, sizeof(double));
    q.dx_norm2 = calloc((size_t)r->n, sizeof(double));
    for (int k = 0; k < K; k++) {
        q.dx_steps[k] = hg_zeros(ctx, HG_F64, 2, (int64_t[]){r->b, PIX});
        q.dw_steps[k] = hg_zeros(ctx, HG_F64, 1, (int64_t[]){r->b});
    }
    hg_unroll_spec sp = {.steps = K,
                         .n_state = ns,
                         .state0 = s0,
                         .n_inputs = 3,
                         .n_globals = 1,
                         .globals = &lr,
                         .snapshots = 4,
                         .inputs = inputs,
                         .step = step,
                         .loss = val_loss,
                         .on_grad = on_grad,
                         .user = &q};
    hg_tensor *E, *d0[3 * NP], *dlr;
    hg_unroll_stats st;
    if (hg_unroll(ctx, &sp, &E, d0, &dlr, &st) != HG_OK)
        die(ctx, "hg_unroll (check)");
    /* the reference: one tape over the K steps */
    int nsrc = ns + 1 + 2 * K;
    hg_tensor **src = malloc(sizeof *src * (size_t)nsrc), **g = malloc(sizeof *g * (size_t)nsrc), *s[3 * NP],
              *out[3 * NP];
    hg_tape *t = hg_tape_begin(ctx, 0);
    for (int i = 0; i < ns; i++)
        hg_watch(t, src[i] = s[i] = hg_tensor_clone(ctx, s0[i]));
    hg_watch(t, src[ns] = hg_tensor_clone(ctx, lr));
    for (int k = 0; k < K; k++) {
        hg_tensor *in[3];
        inputs(ctx, k, in, &q);
        hg_watch(t, src[ns + 1 + 2 * k] = in[0]);
        hg_watch(t, src[ns + 2 + 2 * k] = in[1]);
        if (step(ctx, k, s, in, &src[ns], out, &q) != HG_OK)
            die(ctx, "full tape");
        memcpy(s, out, sizeof(hg_tensor *) * (size_t)ns);
    }
    hg_tensor *e = val_loss(ctx, s, &src[ns], &q);
    hg_tape_end(t);
    size_t tape_bytes = hg_ctx_get_stats(ctx).bytes_in_use;
    if (hg_gradient(t, e, nsrc, src, NULL, g) != HG_OK)
        die(ctx, "full tape gradient");
    double worst = fabs(hg_item(E) - hg_item(e)) / fabs(hg_item(e)), w;
    printf("  %-8s K=%d: E %.12f vs %.12f;", hg_opt_name(kind), K, hg_item(E), hg_item(e));
    w = rel_diff(dlr, g[ns]);
    printf(" d(lr) %.1e", w);
    worst = fmax(worst, w);
    w = 0;
    for (int i = 0; i < ns; i++)
        w = fmax(w, rel_diff(d0[i], g[i]));
    printf(", d(state0) %.1e", w);
    worst = fmax(worst, w);
    double wx = 0, ww = 0;
    for (int k = 0; k < K; k++) {
        wx = fmax(wx, rel_diff(q.dx_steps[k], g[ns + 1 + 2 * k]));
        ww = fmax(ww, rel_diff(q.dw_steps[k], g[ns + 2 + 2 * k]));
    }
    printf(", dx %.1e, dw %.1e (recomputed %lld; full tape %.0f MB, unroll peak %.0f MB)\n", wx, ww,
           (long long)st.recomputed_steps, (double)tape_bytes / 1e6, (double)st.arena_peak_bytes / 1e6);
    worst = fmax(worst, fmax(wx, ww));
    free(src);
    free(g);
    free(q.dx_steps);
    free(q.dw_steps);
    free(q.influence);
    free(q.dx_norm2);
    hg_ctx_free(ctx);
    return worst;
}

static uint64_t rng_below(hg_rng *rng, uint64_t n)
{
    return hg_rng_next(rng) % n;
}

int bench_epoch(const epoch_options *o)
{
    const char *dir = o->data_dir ? o->data_dir : "/usr/share/datasets/fashion-mnist";
    char path[1024];
    hg_ctx *data = hg_ctx_new(NULL);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    hg_tensor *xt = hg_idx_load(data, path, HG_F32, 1.0 / 255, 0);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", dir);
    hg_tensor *yt = hg_idx_load(data, path, HG_I32, 1, 0);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", dir);
    hg_tensor *xs = hg_idx_load(data, path, HG_F32, 1.0 / 255, 0);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", dir);
    hg_tensor *ys = hg_idx_load(data, path, HG_I32, 1, 0);
    if (!xt || !yt || !xs || !ys) {
        fprintf(stderr, "hgrad_bench epoch: cannot load Fashion-MNIST from %s: %s\n", dir, hg_ctx_error(data));
        hg_ctx_free(data);
        return 77;
    }
    const int b = o->batch;
    int64_t n = hg_tensor_dim(xt, 0), per_epoch = n / b;
    int epochs = o->epochs;
    int64_t total = per_epoch * epochs;
    int32_t *order = malloc(sizeof(int32_t) * (size_t)(total * b));
    hg_rng rng;
    hg_rng_seed(&rng, 42);
    for (int e = 0; e < epochs; e++) { /* a fresh shuffle per epoch (Fisher-Yates) */
        int32_t *p = order + (int64_t)e * per_epoch * b, *perm = malloc(sizeof(int32_t) * (size_t)n);
        for (int64_t i = 0; i < n; i++)
            perm[i] = (int32_t)i;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)rng_below(&rng, (uint64_t)i + 1);
            int32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        memcpy(p, perm, sizeof(int32_t) * (size_t)(per_epoch * b));
        free(perm);
    }
    run r = {.x = hg_tensor_f32(xt),
             .y = hg_tensor_i32(yt),
             .n = n,
             .order = order,
             .b = b,
             .spec = {.n_layers = 3, .sizes = {PIX, 64, 64, 10}, .hidden = HG_ACT_RELU},
             .opt = {.kind = HG_OPT_ADAM, .lr = 1e-3}};
    r.n_opt = hg_opt_state_count(HG_OPT_ADAM, NP);
    hg_ctx *ctx = hg_ctx_new(NULL); /* everything the hypergradient holds */
    hg_tensor *params[NP];
    if (hg_mlp_init(ctx, &r.spec, HG_F64, HG_INIT_HE, &rng, params) != HG_OK)
        die(ctx, "init");
    /* the validation set: the first --val test images, f64 */
    int64_t nv = o->val;
    r.xv = hg_tensor_new(ctx, HG_F64, 2, (int64_t[]){nv, PIX});
    r.yv = hg_tensor_from(ctx, HG_I32, 1, &nv, hg_tensor_i32(ys));
    for (int64_t i = 0; r.xv && i < nv * PIX; i++)
        hg_tensor_f64(r.xv)[i] = hg_tensor_f32(xs)[i];
    hg_optimizer *opt = hg_optimizer_new(ctx, &r.opt, NP, params);
    if (!opt || !r.yv)
        die(ctx, "setup");
    bool through_all = o->through_all;
    int64_t train_steps = through_all ? 0 : total - per_epoch;
    double t_train = now();
    for (int64_t k = 0; k < train_steps; k++) {
        hg_mark m = hg_ctx_mark(ctx);
        hg_tensor *in[3], *g[NP];
        r.k0 = 0;
        inputs(ctx, (int)k, in, &r);
        hg_tape *t = hg_tape_begin(ctx, 0);
        hg_watch_n(t, NP, params);
        hg_tensor *loss = hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, &r.spec, params, in[0]), in[2]);
        hg_tape_end(t);
        if (hg_gradient(t, loss, NP, params, NULL, g) != HG_OK || hg_optimizer_step(opt, g) != HG_OK)
            die(ctx, "training");
        hg_ctx_rewind(ctx, m);
    }
    t_train = now() - t_train;
    if (train_steps)
        printf("epoch: trained %lld Adam steps (%d epochs, batch %d) in %.1f s (%.2f ms/step)\n",
               (long long)train_steps, epochs - 1, b, t_train, 1e3 * t_train / (double)train_steps);
    /* the warm state: the unroll's s_0 is the weights and Adam's m and v */
    hg_tensor *state0[3 * NP];
    int t0;
    for (int i = 0; i < NP; i++)
        state0[i] = params[i];
    if (hg_optimizer_export(opt, ctx, &t0, state0 + NP) != HG_OK)
        die(ctx, "export");
    r.t0 = t0;
    r.k0 = train_steps;
    int K = (int)(total - train_steps);
    if (o->check > 0) {
        printf("epoch: check against one full tape on the first %d steps (784-64-64-10, batch %d, f64):\n", o->check,
               b);
        double worst = 0;
        static const hg_opt_kind kinds[] = {HG_OPT_SGD, HG_OPT_MOMENTUM, HG_OPT_ADAM};
        for (int i = 0; i < 3; i++)
            worst = fmax(worst, check_kind(&r, kinds[i], o->check, params, state0 + NP));
        printf("epoch: check worst relative difference %.2e (%s 1e-12)\n", worst, worst <= 1e-12 ? "<=" : "ABOVE");
    }
    r.influence = calloc((size_t)n, sizeof(double));
    r.dx_norm2 = calloc((size_t)n, sizeof(double));
    hg_tensor *lr = hg_scalar(ctx, HG_F64, r.opt.lr);
    /* Default budget: mnist_hypergrad's, as many snapshots as fit in 48 MB,
     * so that snapshots plus one recorded step stay under 100 MB. */
    int snaps = o->snapshots >= 0 ? o->snapshots
                                  : (int)hg_unroll_snapshots_within(K, NP + r.n_opt, state0, HYPERGRAD_SNAPSHOT_BYTES);
    hg_unroll_spec sp = {.steps = K,
                         .n_state = NP + r.n_opt,
                         .state0 = state0,
                         .n_inputs = 3,
                         .n_globals = 1,
                         .globals = &lr,
                         .snapshots = snaps,
                         .inputs = inputs,
                         .step = step,
                         .loss = val_loss,
                         .on_grad = on_grad,
                         .user = &r};
    hg_tensor *E, *d0[3 * NP], *dlr;
    hg_unroll_stats st;
    size_t before = hg_ctx_get_stats(ctx).bytes_in_use;
    double t_un = now();
    if (hg_unroll(ctx, &sp, &E, d0, &dlr, &st) != HG_OK)
        die(ctx, "hg_unroll");
    t_un = now() - t_un;
    double sum_inf = 0, max_dx = 0;
    int64_t touched = 0, most = 0, least = 0;
    for (int64_t i = 0; i < n; i++) {
        sum_inf += r.influence[i];
        touched += r.dx_norm2[i] > 0;
        max_dx = fmax(max_dx, sqrt(r.dx_norm2[i]));
        most = r.influence[i] < r.influence[most] ? i : most;
        least = r.influence[i] > r.influence[least] ? i : least;
    }
    printf("epoch: hypergradient through %s: K=%d steps from t=%d (%s state), E_val %.6f on %lld images\n",
           through_all ? "the whole run" : "the last epoch", K, t0, t0 ? "warm" : "fresh", hg_item(E), (long long)nv);
    printf("epoch:   wall %.1f s (%.1f ms/step); forward steps %lld (recomputed %lld, %.2f per step), "
           "snapshots %d of %d\n",
           t_un, 1e3 * t_un / K, (long long)st.forward_steps, (long long)st.recomputed_steps,
           (double)st.recomputed_steps / K, st.snapshots_used, snaps);
    printf("epoch:   arena peak %.1f MB (%.1f MB before the call: weights, Adam state, validation set; buffers "
           "%.1f MB; largest step %.1f MB)\n",
           (double)st.arena_peak_bytes / 1e6, (double)before / 1e6, (double)st.buffer_bytes / 1e6,
           (double)st.step_peak_bytes / 1e6);
    printf("epoch:   dE/dlr %.6e; %lld samples touched; sum dE/dw %.6e; most helpful %lld (%.3e), most harmful "
           "%lld (%.3e); max |dE/dx_i| %.3e\n",
           hg_item(dlr), (long long)touched, sum_inf, (long long)most, r.influence[most], (long long)least,
           r.influence[least], max_dx);
    printf("RESULT case=epoch through=%s K=%d snapshots=%d recomputed=%lld wall_s=%.2f peak_mb=%.1f\n",
           through_all ? "all" : "last", K, snaps, (long long)st.recomputed_steps, t_un,
           (double)st.arena_peak_bytes / 1e6);
    free(r.influence);
    free(r.dx_norm2);
    free(order);
    hg_ctx_free(ctx);
    hg_ctx_free(data);
    return 0;
}
