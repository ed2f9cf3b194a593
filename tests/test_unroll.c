/* Checkpointed unrolling (hgrad/unroll.h):
 *  - the schedule's cost against brute force over every split schedule and
 *    against the counts hg_unroll reports;
 *  - hg_unroll equal to one tape over all K steps (today's method) to 1e-12
 *    relative in f64, for SGD, momentum and Adam from a warm state, for the
 *    batches, per-sample loss weights, initial state and learning rate, with
 *    no snapshot reuse and with snapshots reused many times;
 *  - errors: enclosing tape, bad specs, failing callbacks (status returned,
 *    arena rewound, no tape left active). */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

/* ---- the schedule -------------------------------------------------------- */

/* Brute force: fewest unrecorded steps reversing l units from a stored
 * start with s free slots, over every split schedule. */
static int64_t brute[41][8];
static int64_t brute_cost(int l, int s)
{
    if (brute[l][s] >= 0)
        return brute[l][s];
    int64_t best;
    if (l <= 1)
        best = 0;
    else if (s == 0)
        best = (int64_t)l * (l - 1) / 2;
    else {
        best = INT64_MAX;
        for (int m = 1; m < l; m++) {
            int64_t c = m + brute_cost(l - m, s - 1) + brute_cost(m, s);
            if (c < best)
                best = c;
        }
    }
    return brute[l][s] = best;
}

START_TEST(cost_matches_brute_force)
{
    memset(brute, 0xff, sizeof brute);
    for (int K = 0; K < 40; K++)
        for (int s = 0; s < 8; s++)
            ck_assert_msg(hg_unroll_cost(K, s) == brute_cost(K + 1, s) - K, "K=%d s=%d: %lld vs brute force %lld", K, s,
                          (long long)hg_unroll_cost(K, s), (long long)(brute_cost(K + 1, s) - K));
    /* closed-form corner values */
    ck_assert_int_eq(hg_unroll_cost(1875, 1875), 0);
    ck_assert_int_eq(hg_unroll_cost(1875, 100000), 0);
    ck_assert_int_eq(hg_unroll_cost(100, 0), 101 * 100 / 2 - 100);
    ck_assert_int_eq(hg_unroll_cost(1875, 10), 5685);
    ck_assert_int_eq(hg_unroll_cost(-1, 3), -1);
    ck_assert_int_eq(hg_unroll_cost(3, -1), -1);
    for (int64_t K = 1; K < 3000; K += 97)
        for (int64_t budget = 0; budget < 4 * K; budget = budget * 2 + 1) {
            int64_t s = hg_unroll_snapshots_for(K, budget);
            ck_assert_int_le(hg_unroll_cost(K, s), budget);
            ck_assert(s == 0 || hg_unroll_cost(K, s - 1) > budget);
        }
}
END_TEST

/* The snapshot budget by memory: max_bytes over the state's data bytes. */
START_TEST(snapshots_within_bytes)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    ck_assert_ptr_nonnull(ctx);
    /* 784x64 f64 (401,408 bytes) and 10 f32 (40 bytes): 401,448 per snapshot */
    hg_tensor *state[2] = {hg_zeros(ctx, HG_F64, 2, (int64_t[]){784, 64}), hg_zeros(ctx, HG_F32, 1, (int64_t[]){10})};
    ck_assert_ptr_nonnull(state[0]);
    ck_assert_ptr_nonnull(state[1]);
    ck_assert_int_eq(hg_unroll_snapshots_within(1875, 2, state, 48 * 1000 * 1000), 48000000 / 401448);
    ck_assert_int_eq(hg_unroll_snapshots_within(1875, 2, state, 401448 * 3 - 1), 2);
    ck_assert_int_eq(hg_unroll_snapshots_within(1875, 2, state, 401447), 0);
    ck_assert_int_eq(hg_unroll_snapshots_within(1875, 1, state, 401408), 1);
    ck_assert_int_eq(hg_unroll_snapshots_within(10, 2, state, SIZE_MAX), 10); /* never more than the steps */
    ck_assert_int_eq(hg_unroll_snapshots_within(0, 2, state, SIZE_MAX), 0);
    /* bad arguments */
    hg_tensor *with_null[2] = {state[0], NULL};
    ck_assert_int_eq(hg_unroll_snapshots_within(-1, 2, state, 1000), -1);
    ck_assert_int_eq(hg_unroll_snapshots_within(HG_UNROLL_MAX_STEPS + 1, 2, state, 1000), -1);
    ck_assert_int_eq(hg_unroll_snapshots_within(10, 0, state, 1000), -1);
    ck_assert_int_eq(hg_unroll_snapshots_within(10, 2, NULL, 1000), -1);
    ck_assert_int_eq(hg_unroll_snapshots_within(10, 2, with_null, 1000), -1);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- a scalar chain: x' = x + tanh(c_k x) lr; E = x_K^2 ------------------ */

typedef struct chain {
    int calls_on_grad;
    int last_k;
    double dc[64];
    int fail_at;    /* step callback fails at this k (-1: never) */
    int leave_tape; /* step callback leaves a tape active at fail_at */
    int bad_shape;  /* step returns a wrong shape at fail_at */
} chain;

static hg_status chain_inputs(hg_ctx *ctx, int k, hg_tensor **in, void *user)
{
    (void)user;
    in[0] = hg_scalar(ctx, HG_F64, 0.3 + 0.1 * (k % 7));
    return in[0] ? HG_OK : hg_ctx_status(ctx);
}

static hg_status chain_step(hg_ctx *ctx, int k, hg_tensor *const *s, hg_tensor *const *in, hg_tensor *const *g,
                            hg_tensor **out, void *user)
{
    chain *c = user;
    if (k == c->fail_at) {
        if (c->leave_tape) {
            hg_tape_begin(ctx, 0);
            out[0] = hg_identity(ctx, s[0]);
            return HG_OK;
        }
        if (c->bad_shape) {
            out[0] = hg_zeros(ctx, HG_F64, 1, SHAPE(2));
            return HG_OK;
        }
        return HG_ERR_INVALID; /* silently: hg_unroll names it */
    }
    out[0] = hg_add(ctx, s[0], hg_mul(ctx, hg_tanh(ctx, hg_mul(ctx, in[0], s[0])), g[0]));
    return out[0] ? HG_OK : hg_ctx_status(ctx);
}

static hg_tensor *chain_loss(hg_ctx *ctx, hg_tensor *const *s, hg_tensor *const *g, void *user)
{
    (void)g;
    (void)user;
    return hg_mul(ctx, s[0], s[0]);
}

static hg_status chain_grad(hg_ctx *ctx, int k, hg_tensor *const *in, hg_tensor *const *gr, void *user)
{
    (void)ctx;
    (void)in;
    chain *c = user;
    ck_assert_int_eq(k, c->last_k - 1); /* K-1, ..., 0, once each */
    c->last_k = k;
    c->calls_on_grad++;
    c->dc[k] = hg_item(gr[0]);
    return HG_OK;
}

static hg_unroll_spec chain_spec(chain *c, int K, int snaps, hg_tensor **x0, hg_tensor **lr)
{
    c->last_k = K;
    c->calls_on_grad = 0;
    hg_unroll_spec sp = {.steps = K,
                         .n_state = 1,
                         .state0 = x0,
                         .n_inputs = 1,
                         .n_globals = 1,
                         .globals = lr,
                         .snapshots = snaps,
                         .inputs = chain_inputs,
                         .step = chain_step,
                         .loss = chain_loss,
                         .on_grad = chain_grad,
                         .user = c};
    return sp;
}

/* The same chain on one tape over all steps. */
static void chain_full(hg_ctx *ctx, chain *c, int K, hg_tensor *x0, hg_tensor *lr, double *E, double *dx0, double *dlr,
                       double *dc)
{
    hg_mark m = hg_ctx_mark(ctx);
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_tensor *x = hg_tensor_clone(ctx, x0), *l = hg_tensor_clone(ctx, lr), *in[64], *src[66], *g[66];
    hg_watch(t, x);
    hg_watch(t, l);
    hg_tensor *s = x;
    for (int k = 0; k < K; k++) {
        chain_inputs(ctx, k, &in[k], c);
        hg_watch(t, in[k]);
        hg_tensor *o;
        chain_step(ctx, k, &s, &in[k], &l, &o, c);
        s = o;
    }
    hg_tensor *e = chain_loss(ctx, &s, &l, c);
    hg_tape_end(t);
    src[0] = x;
    src[1] = l;
    for (int k = 0; k < K; k++)
        src[2 + k] = in[k];
    ck_assert_int_eq(hg_gradient(t, e, K + 2, src, NULL, g), HG_OK);
    *E = hg_item(e);
    *dx0 = hg_item(g[0]);
    *dlr = hg_item(g[1]);
    for (int k = 0; k < K; k++)
        dc[k] = hg_item(g[2 + k]);
    hg_ctx_rewind(ctx, m);
}

START_TEST(counts_and_values_every_budget)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x0 = T64(ctx, 1, SHAPE(1), 0.7), *lr = hg_scalar(ctx, HG_F64, 0.2);
    chain c = {.fail_at = -1};
    for (int K = 0; K <= 14; K++)
        for (int snaps = 0; snaps <= 6; snaps++) {
            double E, dx0, dlr, dc[64];
            chain_full(ctx, &c, K, x0, lr, &E, &dx0, &dlr, dc);
            hg_unroll_spec sp = chain_spec(&c, K, snaps, &x0, &lr);
            hg_tensor *e, *d0[1], *dl;
            hg_unroll_stats st;
            size_t before = hg_ctx_get_stats(ctx).bytes_in_use;
            ck_assert_int_eq(hg_unroll(ctx, &sp, &e, d0, &dl, &st), HG_OK);
            ck_assert_int_eq(st.recomputed_steps, hg_unroll_cost(K, snaps));
            ck_assert_int_eq(st.forward_steps, K + hg_unroll_cost(K, snaps));
            ck_assert_int_eq(st.recorded_steps, K);
            ck_assert_int_le(st.snapshots_used, snaps);
            ck_assert_int_eq(c.calls_on_grad, K);
            ck_assert_uint_le(st.arena_peak_bytes - before, st.buffer_bytes + st.step_peak_bytes + 4096);
            ck_assert_double_eq(hg_item(e), E);
            ck_assert_close(hg_item(d0[0]), dx0, 1e-13);
            ck_assert_close(hg_item(dl), dlr, 1e-13);
            for (int k = 0; k < K; k++)
                ck_assert_close(c.dc[k], dc[k], 1e-13);
            ck_assert_ctx_ok(ctx);
        }
    /* no gradient asked: forward only */
    hg_unroll_spec sp = chain_spec(&c, 9, 2, &x0, &lr);
    sp.on_grad = NULL;
    hg_tensor *e;
    hg_unroll_stats st;
    ck_assert_int_eq(hg_unroll(ctx, &sp, &e, NULL, NULL, &st), HG_OK);
    ck_assert_int_eq(st.forward_steps, 9);
    ck_assert_int_eq(st.recorded_steps, 0);
    ck_assert_int_eq(c.calls_on_grad, 0);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- the MLP case: batches, loss weights, warm optimizer state, lr ------- */

#define NP 6

typedef struct mlp_case {
    hg_mlp spec;
    hg_opt_config opt;
    int t0;        /* steps already taken (warm state) */
    int n_opt;     /* optimizer state tensors */
    int b;         /* batch */
    int n_batches; /* step k uses batch k % n_batches */
    hg_tensor *x, *y, *w, *xv, *yv;
    hg_tensor *dx, *dw; /* filled by on_grad: summed per sample */
    hg_dtype dt;
} mlp_case;

static hg_tensor *rows(hg_ctx *ctx, hg_tensor *t, int64_t from, int64_t n)
{
    int64_t shape[2] = {n, hg_tensor_rank(t) == 2 ? hg_tensor_dim(t, 1) : 1};
    size_t es = hg_dtype_size(hg_tensor_dtype(t));
    return hg_tensor_from(ctx, hg_tensor_dtype(t), hg_tensor_rank(t), shape,
                          (char *)hg_tensor_data(t) + (size_t)(from * shape[1]) * es);
}

static hg_status mlp_inputs(hg_ctx *ctx, int k, hg_tensor **in, void *user)
{
    mlp_case *mc = user;
    int64_t from = (int64_t)(k % mc->n_batches) * mc->b;
    in[0] = rows(ctx, mc->x, from, mc->b);
    in[1] = rows(ctx, mc->w, from, mc->b);
    in[2] = rows(ctx, mc->y, from, mc->b); /* i32 labels: passed through */
    return hg_ctx_status(ctx);
}

static hg_status mlp_step(hg_ctx *ctx, int k, hg_tensor *const *s, hg_tensor *const *in, hg_tensor *const *g,
                          hg_tensor **out, void *user)
{
    mlp_case *mc = user;
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch_n(t, NP, s);
    hg_tensor *ce = hg_softmax_cross_entropy_each(ctx, hg_mlp_forward(ctx, &mc->spec, s, in[0]), in[2]);
    hg_tensor *loss = hg_mean(ctx, hg_mul(ctx, in[1], ce));
    hg_tape_end(t);
    hg_tensor *grads[NP], *state[2 * NP];
    if (!t || hg_gradient(t, loss, NP, s, NULL, grads) != HG_OK)
        return hg_ctx_status(ctx);
    for (int j = 0; j < mc->n_opt; j++)
        state[j] = s[NP + j];
    hg_status st = hg_opt_step(ctx, &mc->opt, g[0], mc->t0 + k + 1, NP, s, grads, state, out);
    for (int j = 0; j < mc->n_opt; j++)
        out[NP + j] = state[j];
    return st;
}

static hg_tensor *mlp_loss(hg_ctx *ctx, hg_tensor *const *s, hg_tensor *const *g, void *user)
{
    (void)g;
    mlp_case *mc = user;
    return hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, &mc->spec, s, mc->xv), mc->yv);
}

static void add_rows(hg_tensor *dst, int64_t from, hg_tensor *g)
{
    int64_t n = hg_tensor_numel(g);
    if (hg_tensor_dtype(g) == HG_F64) {
        double *d = hg_tensor_f64(dst) + from * (n / hg_tensor_dim(g, 0));
        for (int64_t i = 0; i < n; i++)
            d[i] += hg_tensor_f64(g)[i];
    } else {
        float *d = hg_tensor_f32(dst) + from * (n / hg_tensor_dim(g, 0));
        for (int64_t i = 0; i < n; i++)
            d[i] += hg_tensor_f32(g)[i];
    }
}

static hg_status mlp_grad(hg_ctx *ctx, int k, hg_tensor *const *in, hg_tensor *const *gr, void *user)
{
    (void)ctx;
    (void)in;
    mlp_case *mc = user;
    ck_assert_ptr_null(gr[2]);
    int64_t from = (int64_t)(k % mc->n_batches) * mc->b;
    add_rows(mc->dx, from, gr[0]);
    add_rows(mc->dw, from, gr[1]);
    return HG_OK;
}

/* Data, weights, and the warm state after t0 training-form steps. */
static void mlp_setup(hg_ctx *ctx, mlp_case *mc, hg_opt_kind kind, hg_dtype dt, int t0, hg_tensor **state0,
                      hg_tensor **lr)
{
    memset(mc, 0, sizeof *mc);
    mc->spec = (hg_mlp){.n_layers = 3, .sizes = {7, 6, 5, 3}, .hidden = HG_ACT_RELU};
    mc->opt = (hg_opt_config){.kind = kind, .lr = kind == HG_OPT_ADAM ? 0.01 : 0.1, .momentum = 0.9};
    mc->t0 = t0;
    mc->n_opt = hg_opt_state_count(kind, NP);
    mc->b = 4;
    mc->n_batches = 5;
    mc->dt = dt;
    hg_rng rng;
    hg_rng_seed(&rng, 11);
    int64_t n = (int64_t)mc->b * mc->n_batches;
    mc->x = hg_rand_normal(ctx, &rng, dt, 2, SHAPE(n, 7), 0, 1);
    mc->w = hg_rand_uniform(ctx, &rng, dt, 1, SHAPE(n), 0.5, 1.5);
    mc->xv = hg_rand_normal(ctx, &rng, dt, 2, SHAPE(9, 7), 0, 1);
    mc->y = hg_tensor_new(ctx, HG_I32, 1, SHAPE(n));
    mc->yv = hg_tensor_new(ctx, HG_I32, 1, SHAPE(9));
    for (int64_t i = 0; i < n; i++)
        hg_tensor_i32(mc->y)[i] = (int32_t)(hg_rng_next(&rng) % 3);
    for (int64_t i = 0; i < 9; i++)
        hg_tensor_i32(mc->yv)[i] = (int32_t)(hg_rng_next(&rng) % 3);
    mc->dx = hg_zeros_like(ctx, mc->x);
    mc->dw = hg_zeros_like(ctx, mc->w);
    hg_tensor *params[NP];
    ck_assert_int_eq(hg_mlp_init(ctx, &mc->spec, dt, HG_INIT_HE, &rng, params), HG_OK);
    /* warm state: t0 training-form steps on the batches */
    hg_optimizer *opt = hg_optimizer_new(ctx, &mc->opt, NP, params);
    for (int k = 0; k < t0; k++) {
        hg_mark m = hg_ctx_mark(ctx);
        hg_tensor *in[3], *g[NP];
        mlp_inputs(ctx, k + 3, in, mc);
        hg_tape *t = hg_tape_begin(ctx, 0);
        hg_watch_n(t, NP, params);
        hg_tensor *loss = hg_mean(
            ctx, hg_mul(ctx, in[1],
                        hg_softmax_cross_entropy_each(ctx, hg_mlp_forward(ctx, &mc->spec, params, in[0]), in[2])));
        hg_tape_end(t);
        ck_assert_int_eq(hg_gradient(t, loss, NP, params, NULL, g), HG_OK);
        ck_assert_int_eq(hg_optimizer_step(opt, g), HG_OK);
        hg_ctx_rewind(ctx, m);
    }
    int steps;
    for (int i = 0; i < NP; i++)
        state0[i] = params[i];
    ck_assert_int_eq(hg_optimizer_export(opt, ctx, &steps, state0 + NP), HG_OK);
    ck_assert_int_eq(steps, t0);
    *lr = hg_scalar(ctx, dt, mc->opt.lr);
    ck_assert_ctx_ok(ctx);
}

static double rel_diff(hg_tensor *a, hg_tensor *b)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < hg_tensor_numel(b); i++) {
        num = fmax(num, fabs(hg_get(a, i) - hg_get(b, i)));
        den = fmax(den, fabs(hg_get(b, i)));
    }
    return den > 0 ? num / den : num;
}

/* The reference: one tape over all K steps. dx/dw summed per sample. */
static void mlp_full(hg_ctx *ctx, mlp_case *mc, int K, hg_tensor *const *state0, hg_tensor *lr, double *E,
                     hg_tensor **d_state0, hg_tensor **d_lr, hg_tensor *dx, hg_tensor *dw)
{
    int ns = NP + mc->n_opt, nsrc = ns + 1 + 2 * K;
    hg_tensor **src = malloc(sizeof *src * (size_t)nsrc), **g = malloc(sizeof *g * (size_t)nsrc);
    hg_tensor *s[3 * NP], *out[3 * NP];
    hg_tape *t = hg_tape_begin(ctx, 0);
    for (int i = 0; i < ns; i++) {
        src[i] = s[i] = hg_tensor_clone(ctx, state0[i]);
        hg_watch(t, s[i]);
    }
    src[ns] = hg_tensor_clone(ctx, lr);
    hg_watch(t, src[ns]);
    for (int k = 0; k < K; k++) {
        hg_tensor *in[3];
        mlp_inputs(ctx, k, in, mc);
        hg_watch(t, in[0]);
        hg_watch(t, in[1]);
        src[ns + 1 + 2 * k] = in[0];
        src[ns + 2 + 2 * k] = in[1];
        ck_assert_int_eq(mlp_step(ctx, k, s, in, &src[ns], out, mc), HG_OK);
        memcpy(s, out, sizeof(hg_tensor *) * (size_t)ns);
    }
    hg_tensor *e = mlp_loss(ctx, s, &src[ns], mc);
    hg_tape_end(t);
    ck_assert_int_eq(hg_gradient(t, e, nsrc, src, NULL, g), HG_OK);
    *E = hg_item(e);
    for (int i = 0; i < ns; i++)
        d_state0[i] = g[i];
    *d_lr = g[ns];
    for (int k = 0; k < K; k++) {
        int64_t from = (int64_t)(k % mc->n_batches) * mc->b;
        add_rows(dx, from, g[ns + 1 + 2 * k]);
        add_rows(dw, from, g[ns + 2 + 2 * k]);
    }
    free(src);
    free(g);
}

/* checkpointed == full tape for one optimizer, K and budget; returns the
 * worst relative difference. */
static double compare_mlp(hg_opt_kind kind, hg_dtype dt, int t0, int K, int snaps, hg_unroll_stats *st)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    mlp_case mc;
    hg_tensor *state0[3 * NP], *lr;
    mlp_setup(ctx, &mc, kind, dt, t0, state0, &lr);
    int ns = NP + mc.n_opt;
    double E_ref;
    hg_tensor *d0_ref[3 * NP], *dlr_ref, *dx_ref = hg_zeros_like(ctx, mc.x), *dw_ref = hg_zeros_like(ctx, mc.w);
    mlp_full(ctx, &mc, K, state0, lr, &E_ref, d0_ref, &dlr_ref, dx_ref, dw_ref);
    ck_assert_ctx_ok(ctx);
    hg_unroll_spec sp = {.steps = K,
                         .n_state = ns,
                         .state0 = state0,
                         .n_inputs = 3,
                         .n_globals = 1,
                         .globals = &lr,
                         .snapshots = snaps,
                         .inputs = mlp_inputs,
                         .step = mlp_step,
                         .loss = mlp_loss,
                         .on_grad = mlp_grad,
                         .user = &mc};
    hg_tensor *E, *d0[3 * NP], *dlr;
    ck_assert_int_eq(hg_unroll(ctx, &sp, &E, d0, &dlr, st), HG_OK);
    ck_assert_int_eq(st->recomputed_steps, hg_unroll_cost(K, snaps));
    double worst = fabs(hg_item(E) - E_ref) / fabs(E_ref);
    worst = fmax(worst, rel_diff(dlr, dlr_ref));
    worst = fmax(worst, rel_diff(mc.dx, dx_ref));
    worst = fmax(worst, rel_diff(mc.dw, dw_ref));
    for (int i = 0; i < ns; i++)
        worst = fmax(worst, rel_diff(d0[i], d0_ref[i]));
    /* the gradients are not trivially zero */
    ck_assert(fabs(hg_get(dlr, 0)) > 0 && fabs(hg_get(mc.dw, 0)) > 0 && fabs(hg_get(d0[0], 0)) > 0);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
    return worst;
}

START_TEST(equals_full_tape_f64)
{
    static const hg_opt_kind kinds[] = {HG_OPT_SGD, HG_OPT_MOMENTUM, HG_OPT_ADAM};
    /* K = 64 with every state kept (no recomputation), K = 64 with 4
     * snapshots (each reused many times), K = 13 with none (quadratic). */
    static const int cases[][2] = {{64, 64}, {64, 4}, {13, 0}};
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < 3; c++) {
            hg_unroll_stats st;
            double worst = compare_mlp(kinds[i], HG_F64, 5, cases[c][0], cases[c][1], &st);
            printf("unroll: %-8s K=%2d snapshots=%2d (used %d, recomputed %lld): max relative difference to the "
                   "full tape %.2e\n",
                   hg_opt_name(kinds[i]), cases[c][0], cases[c][1], st.snapshots_used, (long long)st.recomputed_steps,
                   worst);
            ck_assert_msg(worst <= 1e-12, "%s K=%d: relative difference %g", hg_opt_name(kinds[i]), cases[c][0], worst);
        }
    fflush(stdout);
}
END_TEST

START_TEST(equals_full_tape_f32)
{
    hg_unroll_stats st;
    double worst = compare_mlp(HG_OPT_ADAM, HG_F32, 3, 12, 2, &st);
    ck_assert_msg(worst <= 1e-4, "f32 Adam: relative difference %g", worst);
    worst = compare_mlp(HG_OPT_SGD, HG_F32, 0, 12, 2, &st);
    ck_assert_msg(worst <= 1e-4, "f32 SGD: relative difference %g", worst);
}
END_TEST

/* ---- errors ------------------------------------------------------------- */

static void expect_failure(hg_ctx *ctx, hg_unroll_spec *sp, hg_status want, const char *what)
{
    size_t before = hg_ctx_get_stats(ctx).bytes_in_use;
    uint64_t tensors = hg_ctx_get_stats(ctx).tensors;
    hg_tensor *E = (hg_tensor *)1, *d[1] = {(hg_tensor *)1};
    hg_status s = hg_unroll(ctx, sp, &E, d, NULL, NULL);
    ck_assert_msg(s == want, "%s: got %s (%s), want %s", what, hg_status_name(s), hg_ctx_error(ctx),
                  hg_status_name(want));
    ck_assert_int_eq(hg_ctx_status(ctx), want);
    /* the library's own errors name it; a callback's error is kept as it set it */
    ck_assert_msg(strstr(hg_ctx_error(ctx), want == HG_ERR_IO ? "on_grad" : "hg_unroll") != NULL, "%s: message '%s'",
                  what, hg_ctx_error(ctx));
    ck_assert_ptr_null(E);
    if (sp->n_state == 1)
        ck_assert_ptr_null(d[0]);
    ck_assert_uint_eq(hg_ctx_get_stats(ctx).bytes_in_use, before);
    ck_assert_uint_eq(hg_ctx_get_stats(ctx).tensors, tensors);
    /* no tape left active: a new one is at level 0 and rewinding works */
    hg_mark m = hg_ctx_mark(ctx);
    hg_tape *t = hg_tape_begin(ctx, 0);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(hg_tape_end(t), HG_OK);
    ck_assert_int_eq(hg_ctx_rewind(ctx, m), HG_OK);
    hg_ctx_clear_error(ctx);
}

START_TEST(errors)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x0 = T64(ctx, 1, SHAPE(1), 0.7), *lr = hg_scalar(ctx, HG_F64, 0.2);
    hg_tensor *E;
    chain c = {.fail_at = -1};
    hg_unroll_spec sp = chain_spec(&c, 6, 1, &x0, &lr);
    /* enclosing tape */
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, x0);
    ck_assert_int_eq(hg_unroll(ctx, &sp, &E, NULL, NULL, NULL), HG_ERR_TAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "tape"));
    hg_tape_end(t);
    hg_ctx_clear_error(ctx);
    /* NULLs and ranges */
    ck_assert_int_eq(hg_unroll(NULL, &sp, &E, NULL, NULL, NULL), HG_ERR_NULL);
    ck_assert_int_eq(hg_unroll(ctx, NULL, &E, NULL, NULL, NULL), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_unroll(ctx, &sp, NULL, NULL, NULL, NULL), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    hg_unroll_spec bad = sp;
    bad.step = NULL;
    expect_failure(ctx, &bad, HG_ERR_NULL, "NULL step");
    bad = sp;
    bad.loss = NULL;
    expect_failure(ctx, &bad, HG_ERR_NULL, "NULL loss");
    bad = sp;
    bad.inputs = NULL;
    expect_failure(ctx, &bad, HG_ERR_NULL, "NULL inputs");
    bad = sp;
    bad.state0 = NULL;
    expect_failure(ctx, &bad, HG_ERR_NULL, "NULL state0");
    bad = sp;
    bad.steps = -1;
    expect_failure(ctx, &bad, HG_ERR_RANGE, "negative steps");
    bad = sp;
    bad.snapshots = -2;
    expect_failure(ctx, &bad, HG_ERR_RANGE, "negative snapshots");
    bad = sp;
    bad.n_state = 0;
    expect_failure(ctx, &bad, HG_ERR_RANGE, "no state");
    hg_tensor *yi = hg_tensor_new(ctx, HG_I32, 1, SHAPE(1));
    bad = sp;
    bad.state0 = &yi;
    expect_failure(ctx, &bad, HG_ERR_DTYPE, "i32 state");
    /* failing step callbacks at every k (met first in the forward sweep) */
    for (int k = 0; k < 6; k++) {
        c.fail_at = k;
        expect_failure(ctx, &sp, HG_ERR_INVALID, "step fails");
        c.leave_tape = 1;
        expect_failure(ctx, &sp, HG_ERR_TAPE, "step leaves a tape active");
        c.leave_tape = 0;
        c.bad_shape = 1;
        expect_failure(ctx, &sp, HG_ERR_SHAPE, "step returns a wrong shape");
        c.bad_shape = 0;
    }
    c.fail_at = -1;
    ck_assert_int_eq(hg_unroll(ctx, &sp, &E, NULL, NULL, NULL), HG_OK);
    hg_ctx_free(ctx);
}
END_TEST

/* A failure that appears only in the reverse sweep (on_grad) and one in the
 * loss: same guarantees. */
static hg_status grad_fails(hg_ctx *ctx, int k, hg_tensor *const *in, hg_tensor *const *gr, void *user)
{
    (void)in;
    (void)gr;
    (void)user;
    if (k == 2)
        return hg_op_error(ctx, HG_ERR_IO, "on_grad: disk full at step %d", k);
    return HG_OK;
}

static hg_tensor *vector_loss(hg_ctx *ctx, hg_tensor *const *s, hg_tensor *const *g, void *user)
{
    (void)g;
    (void)user;
    return hg_broadcast_to(ctx, s[0], 1, SHAPE(3));
}

START_TEST(errors_in_reverse_and_loss)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x0 = T64(ctx, 1, SHAPE(1), 0.7), *lr = hg_scalar(ctx, HG_F64, 0.2);
    chain c = {.fail_at = -1};
    hg_unroll_spec sp = chain_spec(&c, 6, 2, &x0, &lr);
    sp.on_grad = grad_fails;
    expect_failure(ctx, &sp, HG_ERR_IO, "on_grad fails");
    sp = chain_spec(&c, 6, 2, &x0, &lr);
    sp.loss = vector_loss;
    expect_failure(ctx, &sp, HG_ERR_SHAPE, "loss of 3 elements");
    hg_ctx_free(ctx);
}
END_TEST

static Suite *unroll_suite(void)
{
    Suite *s = suite_create("unroll");
    TCase *tc = tcase_create("unroll");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, cost_matches_brute_force);
    tcase_add_test(tc, snapshots_within_bytes);
    tcase_add_test(tc, counts_and_values_every_budget);
    tcase_add_test(tc, equals_full_tape_f64);
    tcase_add_test(tc, equals_full_tape_f32);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, errors_in_reverse_and_loss);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(unroll_suite());
}
