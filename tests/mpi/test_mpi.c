/* libhgrad-mpi under mpirun (np 2 and 3 in the test suite; any np works):
 * collective values against local reconstructions, gradients and second
 * derivatives across ranks against lockstep finite differences,
 * data-parallel training against single-process training (bitwise against
 * the same shard sums, to rounding against the full batch), the sharded
 * hypergradient against the single-process full tape, and error paths (a
 * failure on one rank fails the call on every rank; meson's timeout catches a
 * hang). Every rank prints its failures; rank 0 prints the summary line. */
#include <hgrad.h>
#include <hgrad/mpi.h>
#include <hgrad/unroll.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank_, size_;
static int passed, failed;

#define CHECK(cond, ...)                                                \
    do {                                                                \
        if (cond) {                                                     \
            passed++;                                                   \
        } else {                                                        \
            failed++;                                                   \
            printf("rank %d: FAIL %s:%d: ", rank_, __FILE__, __LINE__); \
            printf(__VA_ARGS__);                                        \
            printf("\n");                                               \
        }                                                               \
    } while (0)

/* A deterministic value for (rank, index, salt), the same on every process. */
static double val(int r, int64_t i, int salt)
{
    uint64_t h = (uint64_t)(r + 1) * UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t)(i + 7) * UINT64_C(0xBF58476D1CE4E5B9) ^
                 (uint64_t)(salt + 3) * UINT64_C(0x94D049BB133111EB);
    h ^= h >> 31;
    h *= 0xD6E9F8CC1B5E4F2Dull;
    h ^= h >> 29;
    return (double)(h >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static hg_tensor *filled(hg_ctx *ctx, hg_dtype dt, int rank, const int64_t *shape, int r, int salt)
{
    hg_tensor *t = hg_tensor_new(ctx, dt, rank, shape);
    if (!t)
        return NULL;
    int64_t n = hg_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        if (dt == HG_F64)
            ((double *)hg_tensor_data(t))[i] = val(r, i, salt);
        else
            ((float *)hg_tensor_data(t))[i] = (float)val(r, i, salt);
    }
    return t;
}

/* ---- forward values ------------------------------------------------------ */

static void test_values(hg_mpi_comm *comm, hg_dtype dt)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    int64_t shape[2] = {5, 3};
    hg_tensor *x = filled(ctx, dt, 2, shape, rank_, 1);
    hg_tensor *sum = hg_mpi_allreduce_sum(ctx, comm, x);
    hg_tensor *mean = hg_mpi_allreduce_mean(ctx, comm, x);
    hg_tensor *bc = hg_mpi_broadcast(ctx, comm, x, size_ - 1);
    hg_tensor *red = hg_mpi_reduce_sum(ctx, comm, x, 0);
    CHECK(sum && mean && bc && red, "collectives failed: %s", hg_ctx_error(ctx));
    /* The same sums formed locally, left to right. */
    hg_tensor *ref = filled(ctx, dt, 2, shape, 0, 1);
    for (int r = 1; r < size_; r++)
        ref = hg_add(ctx, ref, filled(ctx, dt, 2, shape, r, 1));
    hg_tensor *ref_mean = hg_scale(ctx, ref, 1.0 / size_);
    hg_tensor *ref_bc = filled(ctx, dt, 2, shape, size_ - 1, 1);
    size_t bytes = 15 * hg_dtype_size(dt);
    if (sum && mean && bc && red) {
        CHECK(memcmp(hg_tensor_data(sum), hg_tensor_data(ref), bytes) == 0, "allreduce_sum not bitwise rank-order");
        CHECK(memcmp(hg_tensor_data(mean), hg_tensor_data(ref_mean), bytes) == 0, "allreduce_mean differs");
        CHECK(memcmp(hg_tensor_data(bc), hg_tensor_data(ref_bc), bytes) == 0, "broadcast differs");
        if (rank_ == 0)
            CHECK(memcmp(hg_tensor_data(red), hg_tensor_data(ref), bytes) == 0, "reduce_sum differs on root");
        else
            CHECK(hg_item(hg_sum(ctx, hg_abs(ctx, red))) == 0, "reduce_sum not zero off root");
    }
    /* Uneven rows: rank r holds r + 1 rows (allgather), and a split of
     * 2r + 1 rows per rank (reduce_scatter). */
    int64_t mine[2] = {rank_ + 1, 2};
    hg_tensor *g = hg_mpi_allgather(ctx, comm, filled(ctx, dt, 2, mine, rank_, 2));
    int64_t total = (int64_t)size_ * (size_ + 1) / 2;
    CHECK(g && hg_tensor_dim(g, 0) == total && hg_tensor_dim(g, 1) == 2, "allgather shape");
    if (g) {
        int64_t row = 0;
        bool same = true;
        for (int r = 0; r < size_; r++) {
            for (int64_t i = 0; i < (r + 1) * 2; i++)
                same = same && hg_get(g, row * 2 + i) == hg_get(filled(ctx, dt, 2, (int64_t[]){r + 1, 2}, r, 2), i);
            row += r + 1;
        }
        CHECK(same, "allgather values");
    }
    int64_t *split = malloc((size_t)size_ * sizeof *split), n_rows = 0;
    for (int r = 0; r < size_; r++)
        n_rows += split[r] = 2 * r + 1;
    int64_t full[2] = {n_rows, 2};
    hg_tensor *rs = hg_mpi_reduce_scatter(ctx, comm, filled(ctx, dt, 2, full, rank_, 3), split);
    CHECK(rs && hg_tensor_dim(rs, 0) == split[rank_], "reduce_scatter shape");
    if (rs) {
        hg_tensor *all = filled(ctx, dt, 2, full, 0, 3);
        for (int r = 1; r < size_; r++)
            all = hg_add(ctx, all, filled(ctx, dt, 2, full, r, 3));
        int64_t first = 0;
        for (int r = 0; r < rank_; r++)
            first += split[r];
        bool same = true;
        for (int64_t i = 0; i < split[rank_] * 2; i++)
            same = same && hg_get(rs, i) == hg_get(all, first * 2 + i);
        CHECK(same, "reduce_scatter values (bitwise rank-order sums)");
    }
    free(split);
    hg_ctx_free(ctx);
}

/* ---- derivatives across ranks ---------------------------------------------- */

/* The rank's part L_r of a global objective F = sum_r L_r that goes through
 * every collective. x: [r + 1, 3] on rank r (uneven). */
static hg_tensor *local_objective(hg_ctx *ctx, hg_mpi_comm *comm, hg_tensor *x)
{
    hg_tensor *u = hg_mul(ctx, x, hg_tanh(ctx, x));
    hg_tensor *g = hg_mpi_allgather(ctx, comm, u); /* [P(P+1)/2, 3] */
    int64_t gshape[2] = {(int64_t)size_ * (size_ + 1) / 2, 3};
    hg_tensor *c = filled(ctx, HG_F64, 2, gshape, rank_, 4);
    hg_tensor *s = hg_mpi_reduce_scatter(ctx, comm, hg_mul(ctx, g, c), NULL);
    hg_tensor *a = hg_mpi_allreduce_sum(ctx, comm, hg_sum(ctx, hg_exp(ctx, hg_scale(ctx, s, 0.5))));
    hg_tensor *b = hg_mpi_broadcast(ctx, comm, hg_mul(ctx, a, hg_sum(ctx, hg_sigmoid(ctx, x))), size_ - 1);
    hg_tensor *d = hg_mpi_reduce_sum(ctx, comm, hg_mul(ctx, b, b), 0);
    hg_tensor *m = hg_mpi_allreduce_mean(ctx, comm, hg_sum(ctx, hg_mul(ctx, x, x)));
    /* Every rank's part uses every collective's output (see mpi.h). */
    return hg_add(ctx, hg_add(ctx, hg_scale(ctx, a, 0.3 + 0.1 * rank_), hg_scale(ctx, b, 0.2)),
                  hg_add(ctx, hg_scale(ctx, d, 0.05), hg_mul(ctx, m, a)));
}

/* F = sum over ranks of L_r (every rank gets the value). */
static double global_value(hg_ctx *ctx, hg_mpi_comm *comm, hg_tensor *x)
{
    hg_mark mark = hg_ctx_mark(ctx);
    hg_tensor *L = local_objective(ctx, comm, x);
    hg_tensor *F = L ? hg_mpi_allreduce_sum(ctx, comm, L) : NULL;
    double v = F ? hg_item(F) : NAN;
    hg_ctx_rewind(ctx, mark);
    return v;
}

/* Phi = sum_r <v_r, dF/dx_r>: its gradient is (H v)_r. order 1 returns dF/dx
 * (grad_out) and F; order 2 returns dPhi/dx and Phi. */
static double value_and_grad(hg_ctx *ctx, hg_mpi_comm *comm, hg_tensor *x, hg_tensor *v, int order, hg_tensor **grad)
{
    hg_tape *outer = order == 2 ? hg_tape_begin(ctx, 0) : NULL;
    if (outer)
        hg_watch(outer, x);
    hg_tape *inner = hg_tape_begin(ctx, 0);
    hg_watch(inner, x);
    hg_tensor *L = local_objective(ctx, comm, x);
    hg_tape_end(inner);
    hg_tensor *g = NULL;
    hg_gradient(inner, L, 1, &x, NULL, &g);
    if (order == 1) {
        *grad = g;
        hg_tensor *F = hg_mpi_allreduce_sum(ctx, comm, L);
        return F ? hg_item(F) : NAN;
    }
    hg_tensor *phi = hg_sum(ctx, hg_mul(ctx, v, g));
    hg_tape_end(outer);
    hg_gradient(outer, phi, 1, &x, NULL, grad);
    hg_tensor *P = hg_mpi_allreduce_sum(ctx, comm, phi);
    return P ? hg_item(P) : NAN;
}

static void test_derivatives(hg_mpi_comm *comm)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    int64_t shape[2] = {rank_ + 1, 3};
    hg_tensor *x = filled(ctx, HG_F64, 2, shape, rank_, 5);
    hg_tensor *v = filled(ctx, HG_F64, 2, shape, rank_, 6);
    for (int order = 1; order <= 2; order++) {
        hg_mark mark = hg_ctx_mark(ctx);
        hg_tensor *grad = NULL;
        value_and_grad(ctx, comm, x, v, order, &grad);
        CHECK(grad != NULL, "order %d gradient failed: %s", order, hg_ctx_error(ctx));
        if (!grad)
            break;
        /* Lockstep central differences: rank q perturbs its element i while
         * every rank evaluates the global value. */
        double worst = 0;
        const double h = 1e-5;
        for (int q = 0; q < size_; q++) {
            for (int64_t i = 0; i < (q + 1) * 3; i++) {
                double *xi = rank_ == q ? &((double *)hg_tensor_data(x))[i] : NULL;
                double saved = xi ? *xi : 0, fp, fm;
                hg_tensor *dummy;
                if (xi)
                    *xi = saved + h;
                hg_mark m2 = hg_ctx_mark(ctx);
                fp = order == 1 ? global_value(ctx, comm, x) : value_and_grad(ctx, comm, x, v, 2, &dummy);
                hg_ctx_rewind(ctx, m2);
                if (xi)
                    *xi = saved - h;
                fm = order == 1 ? global_value(ctx, comm, x) : value_and_grad(ctx, comm, x, v, 2, &dummy);
                hg_ctx_rewind(ctx, m2);
                if (xi) {
                    *xi = saved;
                    double fd = (fp - fm) / (2 * h), exact = hg_get(grad, i);
                    double err = fabs(fd - exact) / fmax(1.0, fabs(exact));
                    worst = fmax(worst, err);
                }
            }
        }
        CHECK(worst < 1e-7, "order %d: worst error against finite differences %.3g", order, worst);
        if (rank_ == 0)
            printf("derivatives order %d: worst relative error vs central differences %.2g (rank 0)\n", order, worst);
        hg_ctx_rewind(ctx, mark);
    }
    CHECK(hg_ctx_status(ctx) == HG_OK, "ctx error: %s", hg_ctx_error(ctx));
    hg_ctx_free(ctx);
}

/* ---- data-parallel training -------------------------------------------------- */

enum { N_IN = 12, N_HID = 8, N_OUT = 4, BATCH = 7, STEPS = 5 };

static const hg_mlp spec = {.n_layers = 2, .sizes = {N_IN, N_HID, N_OUT}, .hidden = HG_ACT_TANH};

/* Rows [start, start + count) of a global batch for step k. */
static hg_tensor *batch_x(hg_ctx *ctx, int k, int64_t start, int64_t count)
{
    hg_tensor *t = hg_tensor_new(ctx, HG_F64, 2, (int64_t[]){count, N_IN});
    for (int64_t i = 0; i < count * N_IN; i++)
        ((double *)hg_tensor_data(t))[i] = val(1000 + k, start * N_IN + i, 7);
    return t;
}

static hg_tensor *batch_y(hg_ctx *ctx, int k, int64_t start, int64_t count)
{
    hg_tensor *t = hg_tensor_new(ctx, HG_I32, 1, &count);
    for (int64_t i = 0; i < count; i++)
        ((int32_t *)hg_tensor_data(t))[i] = (int32_t)((start + i) * 7 + k) % N_OUT;
    return t;
}

/* Gradients of (1/BATCH) sum over the rows of the shard of CE, in grads. */
static void shard_grads(hg_ctx *ctx, hg_tensor **params, int k, int64_t start, int64_t count, hg_tensor **grads)
{
    hg_tape *tape = hg_tape_begin(ctx, 0);
    hg_watch_n(tape, 4, params);
    hg_tensor *logits = hg_mlp_forward(ctx, &spec, params, batch_x(ctx, k, start, count));
    hg_tensor *loss = hg_scale(ctx,
                               hg_sum(ctx, hg_softmax_cross_entropy_each(ctx, logits, batch_y(ctx, k, start, count))),
                               1.0 / BATCH);
    hg_tape_end(tape);
    hg_gradient(tape, loss, 4, params, NULL, grads);
}

static void test_data_parallel(hg_mpi_comm *comm)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 42 + (uint64_t)rank_); /* different weights on every rank, then */
    hg_tensor *p_dp[4], *p_ref[4], *p_full[4];
    hg_mlp_init(ctx, &spec, HG_F64, HG_INIT_GLOROT, &rng, p_dp);
    /* every rank starts from rank 0's weights */
    CHECK(hg_mpi_broadcast_inplace(ctx, comm, 4, p_dp, 0) == HG_OK, "broadcast_inplace: %s", hg_ctx_error(ctx));
    for (int i = 0; i < 4; i++) {
        p_ref[i] = hg_tensor_clone(ctx, p_dp[i]);
        p_full[i] = hg_tensor_clone(ctx, p_dp[i]);
    }
    hg_opt_config cfg = {.kind = HG_OPT_ADAM, .lr = 0.01};
    hg_optimizer *o_dp = hg_optimizer_new(ctx, &cfg, 4, p_dp);
    hg_optimizer *o_ref = hg_optimizer_new(ctx, &cfg, 4, p_ref);
    hg_optimizer *o_full = hg_optimizer_new(ctx, &cfg, 4, p_full);
    hg_mark mark = hg_ctx_mark(ctx);
    size_t reserved_after_first = 0;
    for (int k = 0; k < STEPS; k++) {
        int64_t start, count;
        hg_mpi_shard(BATCH, size_, rank_, &start, &count);
        hg_tensor *g[4], *acc[4], *gr[4], *gf[4];
        shard_grads(ctx, p_dp, k, start, count, g);
        CHECK(hg_mpi_allreduce_inplace(ctx, comm, 4, g, 0) == HG_OK, "allreduce_inplace: %s", hg_ctx_error(ctx));
        hg_optimizer_step(o_dp, g);
        /* One process, the same shards summed left to right. */
        for (int r = 0; r < size_; r++) {
            hg_mpi_shard(BATCH, size_, r, &start, &count);
            shard_grads(ctx, p_ref, k, start, count, gr);
            for (int i = 0; i < 4; i++)
                acc[i] = r == 0 ? gr[i] : hg_add(ctx, acc[i], gr[i]);
        }
        hg_optimizer_step(o_ref, acc);
        /* One process, the whole batch at once. */
        shard_grads(ctx, p_full, k, 0, BATCH, gf);
        hg_optimizer_step(o_full, gf);
        hg_ctx_rewind(ctx, mark);
        if (k == 0)
            reserved_after_first = hg_ctx_get_stats(ctx).bytes_reserved;
    }
    CHECK(hg_ctx_get_stats(ctx).bytes_reserved == reserved_after_first, "training allocated after its first step");
    double worst_full = 0;
    bool bitwise = true;
    for (int i = 0; i < 4; i++) {
        int64_t n = hg_tensor_numel(p_dp[i]);
        bitwise = bitwise && memcmp(hg_tensor_data(p_dp[i]), hg_tensor_data(p_ref[i]), (size_t)n * 8) == 0;
        for (int64_t j = 0; j < n; j++)
            worst_full = fmax(worst_full, fabs(hg_get(p_dp[i], j) - hg_get(p_full[i], j)));
    }
    CHECK(bitwise, "data-parallel parameters differ from the single-process shard sums");
    CHECK(worst_full < 1e-12, "data-parallel vs full batch: max abs difference %.3g", worst_full);
    if (rank_ == 0)
        printf("data-parallel Adam, %d steps: bitwise equal to shard sums; max |diff| vs full batch %.2g\n", STEPS,
               worst_full);
    CHECK(hg_ctx_status(ctx) == HG_OK, "ctx error: %s", hg_ctx_error(ctx));
    hg_ctx_free(ctx);
}

/* ---- sharded hypergradient --------------------------------------------------- */

enum { VAL = 10, K = 3 };

/* E after K recorded steps from params0; sharded: this rank's rows of every
 * batch, gradients all-reduced, its rows of the validation set; or whole
 * (single process, no MPI). dx: gradient w.r.t. this rank's (or all) rows of
 * the K batches, one [rows, N_IN] tensor per step in dx[0..K-1]; dlr: w.r.t. lr. */
static double hyper(hg_ctx *ctx, hg_mpi_comm *comm, hg_opt_kind kind, hg_tensor *const *params0, bool sharded,
                    hg_tensor **dx, double *dlr)
{
    int64_t start = 0, count = BATCH, vstart = 0, vcount = VAL;
    if (sharded) {
        hg_mpi_shard(BATCH, size_, rank_, &start, &count);
        hg_mpi_shard(VAL, size_, rank_, &vstart, &vcount);
    }
    hg_tensor *xs[K], *lr = hg_scalar(ctx, HG_F64, 0.05);
    for (int k = 0; k < K; k++)
        xs[k] = batch_x(ctx, k, start, count);
    hg_tape *outer = hg_tape_begin(ctx, 0);
    hg_watch_n(outer, K, xs);
    hg_watch(outer, lr);
    hg_tensor *p[4], *state[8] = {0}, *next[4];
    memcpy(p, params0, sizeof p);
    hg_opt_config cfg = {.kind = kind, .lr = 0.05, .momentum = 0.9};
    for (int k = 0; k < K; k++) {
        hg_tape *inner = hg_tape_begin(ctx, 0);
        hg_watch_n(inner, 4, p);
        hg_tensor *logits = hg_mlp_forward(ctx, &spec, p, xs[k]);
        hg_tensor *loss = hg_scale(
            ctx, hg_sum(ctx, hg_softmax_cross_entropy_each(ctx, logits, batch_y(ctx, k, start, count))), 1.0 / BATCH);
        hg_tape_end(inner);
        hg_tensor *g[4];
        hg_gradient(inner, loss, 4, p, NULL, g);
        for (int i = 0; sharded && i < 4; i++)
            g[i] = hg_mpi_allreduce_sum(ctx, comm, g[i]);
        hg_opt_step(ctx, &cfg, lr, k + 1, 4, p, g, state, next);
        memcpy(p, next, sizeof p);
    }
    hg_tensor *vx = batch_x(ctx, 99, vstart, vcount);
    hg_tensor *E = hg_scale(ctx,
                            hg_sum(ctx, hg_softmax_cross_entropy_each(ctx, hg_mlp_forward(ctx, &spec, p, vx),
                                                                      batch_y(ctx, 99, vstart, vcount))),
                            1.0 / VAL);
    hg_tape_end(outer);
    hg_tensor *sources[K + 1], *grads[K + 1];
    memcpy(sources, xs, sizeof xs);
    sources[K] = lr;
    if (hg_gradient(outer, E, K + 1, sources, NULL, grads) != HG_OK)
        return NAN;
    memcpy(dx, grads, K * sizeof *dx);
    hg_tensor *dlr_t = sharded ? hg_mpi_allreduce_sum(ctx, comm, grads[K]) : grads[K];
    hg_tensor *Et = sharded ? hg_mpi_allreduce_sum(ctx, comm, E) : E;
    *dlr = dlr_t ? hg_item(dlr_t) : NAN;
    return Et ? hg_item(Et) : NAN;
}

static void test_sharded_hypergradient(hg_mpi_comm *comm)
{
    for (int kind = HG_OPT_SGD; kind <= HG_OPT_ADAM; kind++) {
        hg_ctx *ctx = hg_ctx_new(NULL);
        hg_rng rng;
        hg_rng_seed(&rng, 7);
        hg_tensor *p0[4];
        hg_mlp_init(ctx, &spec, HG_F64, HG_INIT_GLOROT, &rng, p0);
        hg_tensor *dx_s[K] = {0}, *dx_1[K] = {0};
        double dlr_s = NAN, dlr_1 = NAN;
        double E_s = hyper(ctx, comm, (hg_opt_kind)kind, p0, true, dx_s, &dlr_s);
        double E_1 = hyper(ctx, comm, (hg_opt_kind)kind, p0, false, dx_1, &dlr_1);
        CHECK(dx_s[0] && dx_1[0], "%s: hypergradient failed: %s", hg_opt_name((hg_opt_kind)kind), hg_ctx_error(ctx));
        if (dx_s[0] && dx_1[0]) {
            int64_t start, count;
            hg_mpi_shard(BATCH, size_, rank_, &start, &count);
            double worst = 0, scale = 0;
            for (int k = 0; k < K; k++)
                for (int64_t i = 0; i < count * N_IN; i++) {
                    double a = hg_get(dx_s[k], i);
                    double b = hg_get(dx_1[k], start * N_IN + i);
                    worst = fmax(worst, fabs(a - b));
                    scale = fmax(scale, fabs(b));
                }
            CHECK(worst <= 1e-12 * scale, "%s: sharded dx differs from single-process by %.3g (scale %.3g)",
                  hg_opt_name((hg_opt_kind)kind), worst, scale);
            CHECK(fabs(E_s - E_1) <= 1e-13 * fabs(E_1), "%s: E %.17g vs %.17g", hg_opt_name((hg_opt_kind)kind), E_s,
                  E_1);
            CHECK(fabs(dlr_s - dlr_1) <= 1e-12 * fabs(dlr_1), "%s: dE/dlr %.17g vs %.17g",
                  hg_opt_name((hg_opt_kind)kind), dlr_s, dlr_1);
            if (rank_ == 0)
                printf("sharded hypergradient (%s, K=%d): max |dx diff| %.2g of scale %.2g; dE/dlr %.6g vs %.6g\n",
                       hg_opt_name((hg_opt_kind)kind), K, worst, scale, dlr_s, dlr_1);
        }
        hg_ctx_free(ctx);
    }
}

/* ---- the same, through the checkpointed unroll -------------------------------- */

typedef struct unroll_case {
    hg_mpi_comm *comm;
    hg_opt_kind kind;
    int64_t start, count, vstart, vcount;
    hg_tensor *dx[K]; /* persistent copies of dE/dx_k (this rank's rows) */
} unroll_case;

static hg_status u_inputs(hg_ctx *ctx, int k, hg_tensor **in, void *user)
{
    unroll_case *u = user;
    in[0] = batch_x(ctx, k, u->start, u->count);
    in[1] = batch_y(ctx, k, u->start, u->count);
    return hg_ctx_status(ctx);
}

/* s = {params[4], optimizer state...}: one sharded step. */
static hg_status u_step(hg_ctx *ctx, int k, hg_tensor *const *s, hg_tensor *const *in, hg_tensor *const *glob,
                        hg_tensor **out, void *user)
{
    unroll_case *u = user;
    hg_tensor *p[4], *state[8] = {0}, *g[4];
    memcpy(p, s, sizeof p);
    int ns = hg_opt_state_count(u->kind, 4);
    memcpy(state, s + 4, (size_t)ns * sizeof *state);
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch_n(t, 4, p);
    hg_tensor *logits = hg_mlp_forward(ctx, &spec, p, in[0]);
    hg_tensor *loss = hg_scale(ctx, hg_sum(ctx, hg_softmax_cross_entropy_each(ctx, logits, in[1])), 1.0 / BATCH);
    hg_tape_end(t);
    hg_gradient(t, loss, 4, p, NULL, g);
    for (int i = 0; i < 4; i++)
        g[i] = hg_mpi_allreduce_sum(ctx, u->comm, g[i]);
    hg_opt_config cfg = {.kind = u->kind, .lr = 0.05, .momentum = 0.9};
    hg_status st = hg_opt_step(ctx, &cfg, glob[0], k + 1, 4, p, g, state, out);
    memcpy(out + 4, state, (size_t)ns * sizeof *state);
    return st;
}

static hg_tensor *u_loss(hg_ctx *ctx, hg_tensor *const *s, hg_tensor *const *glob, void *user)
{
    (void)glob;
    unroll_case *u = user;
    hg_tensor *vx = batch_x(ctx, 99, u->vstart, u->vcount);
    return hg_scale(ctx,
                    hg_sum(ctx, hg_softmax_cross_entropy_each(ctx, hg_mlp_forward(ctx, &spec, s, vx),
                                                              batch_y(ctx, 99, u->vstart, u->vcount))),
                    1.0 / VAL);
}

static hg_status u_grad(hg_ctx *ctx, int k, hg_tensor *const *in, hg_tensor *const *grads, void *user)
{
    (void)ctx;
    (void)in;
    unroll_case *u = user;
    memcpy(hg_tensor_data(u->dx[k]), hg_tensor_cdata(grads[0]), (size_t)hg_tensor_numel(grads[0]) * 8);
    return HG_OK;
}

/* hg_unroll with the collectives inside the step, 1 snapshot (so steps are
 * recomputed), against the single-process full tape. */
static void test_sharded_unroll(hg_mpi_comm *comm)
{
    for (int kind = HG_OPT_SGD; kind <= HG_OPT_ADAM; kind += 2) {
        hg_ctx *ctx = hg_ctx_new(NULL);
        hg_rng rng;
        hg_rng_seed(&rng, 7);
        hg_tensor *p0[4];
        hg_mlp_init(ctx, &spec, HG_F64, HG_INIT_GLOROT, &rng, p0);
        hg_tensor *dx_1[K] = {0};
        double dlr_1 = NAN;
        double E_1 = hyper(ctx, comm, (hg_opt_kind)kind, p0, false, dx_1, &dlr_1);
        unroll_case u = {.comm = comm, .kind = (hg_opt_kind)kind};
        hg_mpi_shard(BATCH, size_, rank_, &u.start, &u.count);
        hg_mpi_shard(VAL, size_, rank_, &u.vstart, &u.vcount);
        for (int k = 0; k < K; k++)
            u.dx[k] = hg_zeros(ctx, HG_F64, 2, (int64_t[]){u.count, N_IN});
        int ns = hg_opt_state_count((hg_opt_kind)kind, 4);
        hg_tensor *s0[12];
        memcpy(s0, p0, sizeof p0);
        for (int i = 0; i < ns; i++)
            s0[4 + i] = hg_zeros_like(ctx, p0[i % 4]);
        hg_tensor *lr = hg_scalar(ctx, HG_F64, 0.05), *E = NULL, *dlr = NULL;
        hg_unroll_spec us = {.steps = K,
                             .n_state = 4 + ns,
                             .state0 = s0,
                             .n_inputs = 2,
                             .n_globals = 1,
                             .globals = &lr,
                             .snapshots = 1,
                             .inputs = u_inputs,
                             .step = u_step,
                             .loss = u_loss,
                             .on_grad = u_grad,
                             .user = &u};
        hg_unroll_stats st;
        hg_status s = hg_unroll(ctx, &us, &E, NULL, &dlr, &st);
        CHECK(s == HG_OK, "%s: hg_unroll under MPI failed: %s", hg_opt_name((hg_opt_kind)kind), hg_ctx_error(ctx));
        if (s == HG_OK && dx_1[0]) {
            hg_tensor *Et = hg_mpi_allreduce_sum(ctx, comm, E), *dlr_t = hg_mpi_allreduce_sum(ctx, comm, dlr);
            double worst = 0, scale = 0;
            for (int k = 0; k < K; k++)
                for (int64_t i = 0; i < u.count * N_IN; i++) {
                    double a = hg_get(u.dx[k], i), b = hg_get(dx_1[k], u.start * N_IN + i);
                    worst = fmax(worst, fabs(a - b));
                    scale = fmax(scale, fabs(b));
                }
            CHECK(st.recomputed_steps > 0, "the schedule recomputed no step");
            CHECK(worst <= 1e-12 * scale, "%s: unrolled sharded dx differs by %.3g (scale %.3g)",
                  hg_opt_name((hg_opt_kind)kind), worst, scale);
            CHECK(Et && fabs(hg_item(Et) - E_1) <= 1e-13 * fabs(E_1), "unrolled E");
            CHECK(dlr_t && fabs(hg_item(dlr_t) - dlr_1) <= 1e-12 * fabs(dlr_1), "%s: unrolled dE/dlr %.17g vs %.17g",
                  hg_opt_name((hg_opt_kind)kind), dlr_t ? hg_item(dlr_t) : NAN, dlr_1);
            if (rank_ == 0)
                printf("sharded hg_unroll (%s, K=%d, 1 snapshot, %lld recomputed): max |dx diff| %.2g of %.2g\n",
                       hg_opt_name((hg_opt_kind)kind), K, (long long)st.recomputed_steps, worst, scale);
        }
        hg_ctx_free(ctx);
    }
}

/* ---- errors: one rank fails, every rank returns ---------------------------- */

static void test_errors(hg_mpi_comm *comm)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    int last = size_ - 1;
    /* A shape that differs on the last rank. */
    int64_t shape[1] = {rank_ == last ? 4 : 3};
    hg_tensor *y = hg_mpi_allreduce_sum(ctx, comm, hg_zeros(ctx, HG_F64, 1, shape));
    CHECK(!y && hg_ctx_status(ctx) == HG_ERR_SHAPE, "mismatched shapes: got %s", hg_status_name(hg_ctx_status(ctx)));
    hg_ctx_clear_error(ctx);
    /* A NULL input (an earlier failure) on the last rank only. */
    hg_tensor *x = rank_ == last ? NULL : hg_ones(ctx, HG_F64, 1, (int64_t[]){3});
    y = hg_mpi_broadcast(ctx, comm, x, 0);
    CHECK(!y, "NULL on one rank must fail everywhere");
    if (rank_ != last)
        CHECK(hg_ctx_status(ctx) == HG_ERR_REMOTE && strstr(hg_ctx_error(ctx), "rank"), "others: %s",
              hg_ctx_error(ctx));
    hg_ctx_clear_error(ctx);
    /* A root out of range on one rank. */
    y = hg_mpi_reduce_sum(ctx, comm, hg_ones(ctx, HG_F64, 1, (int64_t[]){3}), rank_ == 0 ? size_ : 0);
    CHECK(!y && hg_ctx_status(ctx) == (rank_ == 0 ? HG_ERR_RANGE : HG_ERR_REMOTE), "root: %s",
          hg_status_name(hg_ctx_status(ctx)));
    hg_ctx_clear_error(ctx);
    /* Mismatched dtypes. */
    y = hg_mpi_allgather(ctx, comm, hg_ones(ctx, rank_ == last ? HG_F32 : HG_F64, 1, (int64_t[]){2}));
    CHECK(!y && hg_ctx_status(ctx) == HG_ERR_DTYPE, "dtypes: %s", hg_status_name(hg_ctx_status(ctx)));
    hg_ctx_clear_error(ctx);
    /* Row counts that differ between ranks. */
    int64_t *rows = malloc((size_t)size_ * sizeof *rows);
    for (int r = 0; r < size_; r++)
        rows[r] = r == 0 ? size_ : 1;
    rows[0] -= rank_ == last ? 1 : 0, rows[last] += rank_ == last ? 1 : 0;
    y = hg_mpi_reduce_scatter(ctx, comm, hg_ones(ctx, HG_F64, 2, (int64_t[]){2 * size_ - 1, 2}), rows);
    CHECK(!y && hg_ctx_status(ctx) == HG_ERR_SHAPE, "row counts: %s", hg_status_name(hg_ctx_status(ctx)));
    hg_ctx_clear_error(ctx);
    free(rows);
    /* In-place forms with another length on one rank. */
    hg_tensor *t = hg_ones(ctx, HG_F64, 1, (int64_t[]){rank_ == last ? 5 : 6});
    CHECK(hg_mpi_allreduce_inplace(ctx, comm, 1, &t, 0) != HG_OK, "inplace mismatch must fail");
    CHECK(hg_get(t, 0) == 1, "nothing changed on error");
    hg_ctx_clear_error(ctx);
    /* An allocation failure on one rank (a tiny arena limit). */
    hg_ctx *tiny = hg_ctx_new(&(hg_ctx_options){.max_bytes = rank_ == last ? 1 : 0, .chunk_bytes = 4096});
    hg_tensor *big = rank_ == last ? NULL : hg_ones(tiny, HG_F64, 1, (int64_t[]){100000});
    if (rank_ == last)
        hg_op_error(tiny, HG_ERR_OOM, "simulated earlier allocation failure");
    y = hg_mpi_allreduce_sum(tiny, comm, big);
    CHECK(!y && hg_ctx_status(tiny) != HG_OK, "allocation failure on one rank must fail everywhere");
    hg_ctx_free(tiny);
    /* hg_mpi_agree. */
    if (rank_ == last)
        hg_op_error(ctx, HG_ERR_INVALID, "something went wrong on the last rank");
    hg_status s = hg_mpi_agree(ctx, comm);
    CHECK(s == (rank_ == last ? HG_ERR_INVALID : HG_ERR_REMOTE), "agree: %s", hg_status_name(s));
    hg_ctx_clear_error(ctx);
    /* The communicator still works afterwards. */
    y = hg_mpi_allreduce_sum(ctx, comm, hg_ones(ctx, HG_F64, 1, (int64_t[]){2}));
    CHECK(y && hg_get(y, 1) == size_, "comm unusable after errors: %s", hg_ctx_error(ctx));
    CHECK(hg_mpi_agree(ctx, comm) == HG_OK, "agree after success");
    /* Bad arguments. */
    CHECK(hg_mpi_allreduce_sum(ctx, NULL, y) == NULL && hg_ctx_status(ctx) == HG_ERR_NULL, "NULL comm");
    hg_ctx_clear_error(ctx);
    int64_t s0, c0;
    hg_mpi_shard(10, 0, 0, &s0, &c0);
    CHECK(s0 == 0 && c0 == 0, "shard with size 0");
    hg_ctx_free(ctx);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    hg_status st;
    hg_mpi_comm *comm = hg_mpi_comm_new(MPI_COMM_WORLD, &st);
    if (!comm) {
        fprintf(stderr, "hg_mpi_comm_new: %s\n", hg_status_name(st));
        MPI_Finalize();
        return 1;
    }
    rank_ = hg_mpi_rank(comm);
    size_ = hg_mpi_size(comm);
    test_values(comm, HG_F64);
    test_values(comm, HG_F32);
    test_derivatives(comm);
    test_data_parallel(comm);
    test_sharded_hypergradient(comm);
    test_sharded_unroll(comm);
    test_errors(comm);
    int totals[2] = {passed, failed}, sums[2] = {0, 0};
    MPI_Reduce(totals, sums, 2, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    hg_mpi_comm_free(comm);
    MPI_Finalize();
    if (rank_ == 0)
        printf("mpi (%d ranks): %d passed, %d failed\n", size_, sums[0], sums[1]);
    return failed ? 1 : 0;
}
