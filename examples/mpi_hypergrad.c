/* Data-parallel training and a sharded hypergradient over MPI.
 *
 *   mpirun -np 2 ./build/examples/mpi_hypergrad [--epochs 1] [--batch 32] ...
 *
 * Every rank loads the data (from Debian's dataset-fashion-mnist), starts
 * from rank 0's weights and walks the same shuffled batches; each rank
 * takes its block of rows of every batch (hg_mpi_shard). Training: the
 * gradients of each rank's part of the batch-mean loss are summed over the
 * ranks in rank order (hg_mpi_allreduce_inplace), and every rank applies the
 * same Adam step, so the parameters stay identical. Hypergradient: the last
 * --steps K steps are replayed in the recorded form (warm Adam state from
 * the training run) with the gradients summed by hg_mpi_allreduce_sum, an
 * op whose vjp is again an all-reduce; the validation loss is split over the
 * ranks too. The outer gradient gives each rank dE_val/dx and dE_val/dw_i
 * of its own rows; rank 0 gathers dE_val/dw_i (in the order of the
 * window's batches, the same file whatever the number of ranks) and writes it. Prints
 * training steps per second and the communication volume per step. */
#include <hgrad.h>
#include <hgrad/mpi.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct options {
    const char *data;
    const char *out;
    int epochs, steps;
    int64_t batch, train_limit, val;
    uint64_t seed;
} options;

static int rank_ = 0;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mpirun -np N mpi_hypergrad [--data DIR] [--epochs E] [--batch B] [--steps K]\n"
               "                                 [--train-limit N] [--val M] [--seed S] [--out FILE.npy]\n"
               "  --data DIR         Fashion-MNIST/MNIST IDX files (default Debian's dataset-fashion-mnist)\n"
               "  --epochs E         data-parallel Adam epochs (default 1)\n"
               "  --batch B          global batch, split over the ranks (default 32)\n"
               "  --steps K          hypergradient through the last K training steps, K <= 1024 (default 8)\n"
               "  --train-limit N    use the first N training images (default all)\n"
               "  --val M            validation images from t10k (default 1000)\n"
               "  --out FILE.npy     rank 0 writes dE_val/dw_i of the window's samples (default: none)\n");
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){
        .data = "/usr/share/datasets/fashion-mnist", .epochs = 1, .steps = 8, .batch = 32, .val = 1000, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int64_t v;
        if (!strcmp(a, "--help")) {
            if (rank_ == 0)
                usage(stdout);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "error: %s needs a value\n", a);
            return 2;
        }
        const char *s = argv[++i];
        if (!strcmp(a, "--data"))
            o->data = s;
        else if (!strcmp(a, "--out"))
            o->out = s;
        else if (!strcmp(a, "--epochs") && !parse_int(s, 1, 1000, &v))
            o->epochs = (int)v;
        else if (!strcmp(a, "--steps") && !parse_int(s, 1, 1024, &v))
            o->steps = (int)v;
        else if (!strcmp(a, "--batch") && !parse_int(s, 1, 1 << 20, &v))
            o->batch = v;
        else if (!strcmp(a, "--train-limit") && !parse_int(s, 1, INT32_MAX, &v))
            o->train_limit = v;
        else if (!strcmp(a, "--val") && !parse_int(s, 1, INT32_MAX, &v))
            o->val = v;
        else if (!strcmp(a, "--seed") && !parse_int(s, 0, INT64_MAX, &v))
            o->seed = (uint64_t)v;
        else {
            fprintf(stderr, "error: bad option or value: %s %s\n", a, s);
            if (rank_ == 0)
                usage(stderr);
            return 2;
        }
    }
    return 0;
}

/* f64 images in [0, 1] and i32 labels of one IDX pair. */
static int load_pair(hg_ctx *ctx, const char *dir, const char *prefix, hg_tensor **x, hg_tensor **y)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    hg_tensor *img = hg_idx_load(ctx, p, HG_F64, 1.0 / 255.0, 0);
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    *y = hg_idx_load(ctx, p, HG_I32, 1.0, 0);
    if (!img || !*y) {
        fprintf(stderr, "rank %d: error: %s\n", rank_, hg_ctx_error(ctx));
        return -1;
    }
    int64_t n = hg_tensor_dim(img, 0);
    *x = hg_reshape(ctx, img, 2, (int64_t[]){n, hg_tensor_numel(img) / n});
    return *x ? 0 : -1;
}

/* Rows idx[0..count) of x (f64 [n, d]) and y. */
static void gather_rows(hg_ctx *ctx, hg_tensor *x, hg_tensor *y, const int32_t *idx, int64_t count, hg_tensor **xb,
                        hg_tensor **yb)
{
    int64_t d = hg_tensor_dim(x, 1);
    *xb = hg_tensor_new(ctx, HG_F64, 2, (int64_t[]){count, d});
    *yb = hg_tensor_new(ctx, HG_I32, 1, &count);
    if (!*xb || !*yb)
        return;
    const double *src = hg_tensor_cf64(x);
    const int32_t *lab = hg_tensor_ci32(y);
    double *dst = hg_tensor_f64(*xb);
    int32_t *dl = hg_tensor_i32(*yb);
    for (int64_t i = 0; i < count; i++) {
        memcpy(dst + i * d, src + (int64_t)idx[i] * d, (size_t)d * sizeof *dst);
        dl[i] = lab[idx[i]];
    }
}

enum { MAX_P = 2 * HG_MLP_MAX_LAYERS };

typedef struct run {
    hg_ctx *ctx;
    hg_mpi_comm *comm;
    const options *o;
    hg_mlp spec;
    int np; /* parameter tensors */
    int ns; /* optimizer state tensors */
    hg_opt_config cfg;
    hg_tensor *x, *y, *xv, *yv; /* training and validation data */
    int32_t *order;             /* the shuffled sample order of every epoch */
    int64_t n, steps_per_epoch;
} run;

/* Step k's global batch (sample indices) and this rank's block of it. */
static const int32_t *my_rows(const run *r, int64_t k, int64_t *count, int64_t *global)
{
    int64_t e = k / r->steps_per_epoch, j = k % r->steps_per_epoch, first = j * r->o->batch;
    *global = first + r->o->batch <= r->n ? r->o->batch : r->n - first;
    int64_t start;
    hg_mpi_shard(*global, hg_mpi_size(r->comm), hg_mpi_rank(r->comm), &start, count);
    return r->order + e * r->n + first + start;
}

/* This rank's part of the batch-mean loss, (1/B) sum over its rows of w_i CE_i. */
static hg_tensor *shard_loss(const run *r, hg_tensor *const *p, hg_tensor *x, hg_tensor *y, hg_tensor *w,
                             int64_t global)
{
    hg_tensor *ce = hg_softmax_cross_entropy_each(r->ctx, hg_mlp_forward(r->ctx, &r->spec, p, x), y);
    if (w)
        ce = hg_mul(r->ctx, w, ce);
    return hg_scale(r->ctx, hg_sum(r->ctx, ce), 1.0 / (double)global);
}

/* One training step: gradients of the rank's part, summed over the ranks,
 * then the recorded-form step (also what the window replays), copied back
 * into the persistent p and s. */
static hg_status train_step(run *r, int64_t k, hg_tensor **p, hg_tensor **s)
{
    hg_ctx *ctx = r->ctx;
    hg_mark m = hg_ctx_mark(ctx);
    int64_t count, global;
    const int32_t *idx = my_rows(r, k, &count, &global);
    hg_tensor *xb, *yb, *g[MAX_P], *np_[MAX_P], *ns_[MAX_P];
    gather_rows(ctx, r->x, r->y, idx, count, &xb, &yb);
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch_n(t, r->np, p);
    hg_tensor *loss = shard_loss(r, p, xb, yb, NULL, global);
    hg_tape_end(t);
    hg_status st = hg_gradient(t, loss, r->np, p, NULL, g);
    /* Every rank takes part in the sum, whatever happened above. */
    hg_status st2 = hg_mpi_allreduce_inplace(ctx, r->comm, r->np, g, 0);
    if (st == HG_OK && st2 == HG_OK) {
        memcpy(ns_, s, (size_t)r->ns * sizeof *s);
        st = hg_opt_step(ctx, &r->cfg, NULL, (int)(k + 1), r->np, p, g, ns_, np_);
    }
    if (st == HG_OK && st2 == HG_OK) {
        for (int i = 0; i < r->np; i++)
            memcpy(hg_tensor_data(p[i]), hg_tensor_cdata(np_[i]), (size_t)hg_tensor_numel(p[i]) * 8);
        for (int i = 0; i < r->ns; i++)
            memcpy(hg_tensor_data(s[i]), hg_tensor_cdata(ns_[i]), (size_t)hg_tensor_numel(s[i]) * 8);
    }
    hg_ctx_rewind(ctx, m);
    return hg_mpi_agree(ctx, r->comm);
}

/* E_val split over the ranks: this rank's rows of the validation set, /M. */
static hg_tensor *val_part(const run *r, hg_tensor *const *p)
{
    int64_t m = hg_tensor_dim(r->xv, 0), start, count;
    hg_mpi_shard(m, hg_mpi_size(r->comm), hg_mpi_rank(r->comm), &start, &count);
    int32_t *idx = malloc((size_t)(count ? count : 1) * sizeof *idx);
    if (!idx)
        return NULL;
    for (int64_t i = 0; i < count; i++)
        idx[i] = (int32_t)(start + i);
    hg_tensor *xb, *yb;
    gather_rows(r->ctx, r->xv, r->yv, idx, count, &xb, &yb);
    free(idx);
    return shard_loss(r, p, xb, yb, NULL, m);
}

/* The last K steps again, recorded, from the snapshot (p0, s0) taken before
 * them: dE_val/dw_i of this rank's rows of those steps into dw (K * rows). */
static hg_status window(run *r, int64_t first, int K, hg_tensor *const *p0, hg_tensor *const *s0, double *E,
                        hg_tensor **dws, int64_t *counts)
{
    hg_ctx *ctx = r->ctx;
    hg_tape *outer = hg_tape_begin(ctx, 0);
    hg_tensor *p[MAX_P], *s[MAX_P], *ws[1024], *xs[1024], *ys[1024];
    int64_t globals[1024];
    memcpy(p, p0, (size_t)r->np * sizeof *p);
    memcpy(s, s0, (size_t)r->ns * sizeof *s);
    for (int k = 0; k < K; k++) {
        const int32_t *idx = my_rows(r, first + k, &counts[k], &globals[k]);
        gather_rows(ctx, r->x, r->y, idx, counts[k], &xs[k], &ys[k]);
        ws[k] = hg_ones(ctx, HG_F64, 1, &counts[k]);
        hg_watch(outer, ws[k]);
    }
    for (int k = 0; k < K; k++) {
        hg_tape *inner = hg_tape_begin(ctx, 0);
        hg_watch_n(inner, r->np, p);
        hg_tensor *loss = shard_loss(r, p, xs[k], ys[k], ws[k], globals[k]);
        hg_tape_end(inner);
        hg_tensor *g[MAX_P], *next[MAX_P];
        hg_gradient(inner, loss, r->np, p, NULL, g);
        for (int i = 0; i < r->np; i++)
            g[i] = hg_mpi_allreduce_sum(ctx, r->comm, g[i]); /* vjp: all-reduce again */
        hg_opt_step(ctx, &r->cfg, NULL, (int)(first + k + 1), r->np, p, g, s, next);
        memcpy(p, next, (size_t)r->np * sizeof *p);
    }
    hg_tensor *Ep = val_part(r, p);
    hg_tape_end(outer);
    hg_tensor *Et = hg_mpi_allreduce_sum(ctx, r->comm, Ep);
    *E = Et ? hg_item(Et) : NAN;
    hg_status st = hg_gradient(outer, Ep, K, ws, NULL, dws);
    st = st == HG_OK ? hg_mpi_agree(ctx, r->comm) : hg_mpi_agree(ctx, r->comm);
    return st;
}

static int run_all(const options *o, hg_mpi_comm *comm)
{
    int size = hg_mpi_size(comm);
    run r = {.comm = comm,
             .o = o,
             .spec = {.n_layers = 3, .sizes = {784, 64, 64, 10}, .hidden = HG_ACT_RELU},
             .cfg = {.kind = HG_OPT_ADAM, .lr = 1e-3}};
    r.ctx = hg_ctx_new(NULL);
    hg_ctx *ctx = r.ctx;
    int rc = 1;
    if (load_pair(ctx, o->data, "train", &r.x, &r.y) || load_pair(ctx, o->data, "t10k", &r.xv, &r.yv))
        goto out;
    r.n = hg_tensor_dim(r.x, 0);
    if (o->train_limit && o->train_limit < r.n)
        r.n = o->train_limit;
    int64_t m = hg_tensor_dim(r.xv, 0) < o->val ? hg_tensor_dim(r.xv, 0) : o->val;
    r.xv = hg_slice_axis(ctx, r.xv, 0, 0, m, 1);
    r.yv = hg_slice_axis(ctx, r.yv, 0, 0, m, 1);
    r.spec.sizes[0] = hg_tensor_dim(r.x, 1);
    r.np = hg_mlp_param_count(&r.spec);
    r.ns = hg_opt_state_count(r.cfg.kind, r.np);
    r.steps_per_epoch = (r.n + o->batch - 1) / o->batch;
    int64_t total = r.steps_per_epoch * o->epochs;
    if (o->steps > total) {
        if (hg_mpi_rank(comm) == 0)
            fprintf(stderr, "error: --steps %d is more than the %lld training steps\n", o->steps, (long long)total);
        rc = 2;
        goto out;
    }
    /* The same shuffled order on every rank. */
    r.order = malloc((size_t)(r.n * o->epochs) * sizeof *r.order);
    if (!r.order)
        goto out;
    hg_rng rng;
    hg_rng_seed(&rng, o->seed);
    for (int e = 0; e < o->epochs; e++) {
        int32_t *ord = r.order + e * r.n;
        for (int64_t i = 0; i < r.n; i++)
            ord[i] = (int32_t)i;
        for (int64_t i = r.n - 1; i > 0; i--) {
            int64_t j = (int64_t)(hg_rng_next(&rng) % (uint64_t)(i + 1));
            int32_t t = ord[i];
            ord[i] = ord[j];
            ord[j] = t;
        }
    }
    /* Weights: rank 0's initialisation everywhere; state: zeros. */
    hg_tensor *p[MAX_P], *s[MAX_P], *p0[MAX_P], *s0[MAX_P];
    hg_mlp_init(ctx, &r.spec, HG_F64, HG_INIT_HE, &rng, p);
    if (hg_mpi_broadcast_inplace(ctx, comm, r.np, p, 0) != HG_OK)
        goto out;
    for (int i = 0; i < r.ns; i++)
        s[i] = hg_zeros_like(ctx, p[i % r.np]);
    for (int i = 0; i < r.np; i++)
        p0[i] = hg_zeros_like(ctx, p[i]);
    for (int i = 0; i < r.ns; i++)
        s0[i] = hg_zeros_like(ctx, s[i]);
    if (hg_ctx_status(ctx) != HG_OK)
        goto out;
    int64_t first = total - o->steps;
    double t0 = now(), t_first = 0;
    for (int64_t k = 0; k < total; k++) {
        if (k == first) { /* snapshot for the window */
            for (int i = 0; i < r.np; i++)
                memcpy(hg_tensor_data(p0[i]), hg_tensor_cdata(p[i]), (size_t)hg_tensor_numel(p[i]) * 8);
            for (int i = 0; i < r.ns; i++)
                memcpy(hg_tensor_data(s0[i]), hg_tensor_cdata(s[i]), (size_t)hg_tensor_numel(s[i]) * 8);
        }
        if (train_step(&r, k, p, s) != HG_OK) {
            fprintf(stderr, "rank %d: error in step %lld: %s\n", hg_mpi_rank(comm), (long long)k, hg_ctx_error(ctx));
            goto out;
        }
        if (k == 0)
            t_first = now();
        if (hg_mpi_rank(comm) == 0 && ((k + 1) % 200 == 0 || k + 1 == total))
            fprintf(stderr, "\rtraining: step %lld/%lld", (long long)(k + 1), (long long)total);
    }
    double t_end = now(), t_train = t_end - t0;
    double steps_per_s = total > 1 ? (double)(total - 1) / (t_end - t_first) : 0; /* after the first step */
    int64_t params = 0;
    for (int i = 0; i < r.np; i++)
        params += hg_tensor_numel(p[i]);
    if (hg_mpi_rank(comm) == 0) {
        /* Reduce-scatter + all-gather: each rank sends and receives (P-1)/P of
         * the gradient twice, plus one 72-byte header per rank. */
        double bytes = 2.0 * (size - 1) / size * (double)params * 8 + 72.0 * size;
        printf("\nranks %d, global batch %lld (%lld rows per rank at most), %lld steps: %.2f s, %.1f steps/s\n", size,
               (long long)o->batch, (long long)((o->batch + size - 1) / size), (long long)total, t_train, steps_per_s);
        printf("communication per training step and rank: %lld parameters, %.0f KB sent and as much received\n",
               (long long)params, bytes / 1024);
    }
    /* The window. */
    double E = NAN, t1 = now();
    hg_tensor *dws[1024];
    int64_t counts[1024];
    hg_mark mk = hg_ctx_mark(ctx);
    if (window(&r, first, o->steps, p0, s0, &E, dws, counts) != HG_OK) {
        fprintf(stderr, "rank %d: error in the hypergradient: %s\n", hg_mpi_rank(comm), hg_ctx_error(ctx));
        goto out;
    }
    /* Each step's batch in its order (the ranks hold consecutive blocks),
     * the steps one after another: the same layout as a run on one rank. */
    hg_tensor *per_step[1024];
    for (int k = 0; k < o->steps; k++)
        per_step[k] = hg_mpi_allgather(ctx, comm, dws[k]);
    hg_tensor *all = hg_concat(ctx, o->steps, per_step, 0);
    if (!all || hg_mpi_agree(ctx, comm) != HG_OK)
        goto out;
    if (hg_mpi_rank(comm) == 0) {
        printf("E_val %.6f after the last %d steps; dE_val/dw_i for %lld samples in %.2f s\n", E, o->steps,
               (long long)hg_tensor_numel(all), now() - t1);
        if (o->out && hg_npy_save(o->out, all) != HG_OK) {
            fprintf(stderr, "error: cannot write %s\n", o->out);
            goto out;
        }
    }
    hg_ctx_rewind(ctx, mk);
    rc = 0;
out:
    if (rc == 1 && hg_ctx_status(ctx) != HG_OK)
        fprintf(stderr, "rank %d: %s\n", hg_mpi_rank(comm), hg_ctx_error(ctx));
    free(r.order);
    hg_ctx_free(ctx);
    return rc;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    options o;
    int rc = parse(argc, argv, &o);
    if (rc == 0) {
        hg_status st;
        hg_mpi_comm *comm = hg_mpi_comm_new(MPI_COMM_WORLD, &st);
        if (!comm) {
            fprintf(stderr, "error: hg_mpi_comm_new: %s\n", hg_status_name(st));
            rc = 1;
        } else {
            rc = run_all(&o, comm);
            hg_mpi_comm_free(comm);
        }
    }
    MPI_Finalize();
    return rc == 1 ? 1 : rc == 2 ? 2 : 0;
}
