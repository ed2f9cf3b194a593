/* Allocation-failure injection through the hg_allocator hook.
 *
 * For each representative program (a training step with the training-form
 * optimizer, a two-step hypergradient through SGD and through Adam with
 * nested tapes, the checkpointed unroll, .npy and IDX loads from files written here, the func helpers
 * and gradcheck), the n-th allocation is made to fail for every n from 1 until
 * the program needs fewer than n allocations. Every failure must:
 *  - end in an error: the program reports failure and the ctx holds
 *    HG_ERR_OOM (the first error) with a message; nothing crashes;
 *  - leave the ctx usable: after rewinding to a mark taken at the start and
 *    clearing the error, the same program succeeds and gives bitwise the
 *    results of a run without failures;
 *  - leak nothing: the counting allocator is back to zero live blocks after
 *    hg_ctx_free.
 * A small chunk size (4096 bytes) makes the arena call the allocator often. */
#include "testutil.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_OUT 4096

typedef struct counting {
    long calls;
    long fail_at; /* 0: never fail */
    int sticky;   /* 1: every allocation from fail_at on fails too */
    long live;
    size_t live_bytes;
    int size_mismatch;
} counting;

static void *c_alloc(size_t size, void *user)
{
    counting *c = user;
    ++c->calls;
    if (c->fail_at && (c->calls == c->fail_at || (c->sticky && c->calls > c->fail_at)))
        return NULL;
    size_t *p = malloc(size + 16);
    if (!p)
        return NULL;
    p[0] = size;
    c->live++;
    c->live_bytes += size;
    return (char *)p + 16;
}

static void c_free(void *ptr, size_t size, void *user)
{
    counting *c = user;
    if (!ptr)
        return;
    size_t *p = (size_t *)((char *)ptr - 16);
    if (p[0] != size)
        c->size_mismatch = 1; /* the hook's free must get the size given to alloc */
    c->live--;
    c->live_bytes -= size;
    free(p);
}

/* A program writes its results (as doubles) into out and returns HG_OK, or
 * an error status; it ends every tape it begins, also on failure. */
typedef hg_status (*program)(hg_ctx *ctx, double *out, size_t *n_out);

static void copy_out(hg_tensor *t, double *out, size_t *n_out)
{
    int64_t n = hg_tensor_numel(t);
    for (int64_t i = 0; i < n && *n_out < MAX_OUT; i++)
        out[(*n_out)++] = hg_get(t, i);
}

static hg_tensor *labels(hg_ctx *ctx, int64_t n, int classes)
{
    hg_tensor *y = hg_tensor_new(ctx, HG_I32, 1, &n);
    int32_t *d = hg_tensor_i32(y);
    for (int64_t i = 0; d && i < n; i++)
        d[i] = (int32_t)((i * 7 + 1) % classes);
    return y;
}

/* ---- programs --------------------------------------------------------------- */

/* Three training steps of a small MLP with Adam (training form), each in a
 * mark/rewind region. */
static hg_status prog_train(hg_ctx *ctx, double *out, size_t *n_out)
{
    hg_rng rng;
    hg_rng_seed(&rng, 3);
    hg_mlp spec = {.n_layers = 3, .sizes = {10, 32, 16, 4}, .hidden = HG_ACT_RELU};
    hg_tensor *params[6];
    hg_status s = hg_mlp_init(ctx, &spec, HG_F32, HG_INIT_HE, &rng, params);
    if (s != HG_OK)
        return s;
    hg_tensor *x = hg_rand_uniform(ctx, &rng, HG_F32, 2, SHAPE(64, 10), -1, 1);
    hg_tensor *y = labels(ctx, 64, 4);
    hg_opt_config cfg = {.kind = HG_OPT_ADAM, .lr = 1e-2};
    hg_optimizer *opt = x && y ? hg_optimizer_new(ctx, &cfg, 6, params) : NULL;
    if (!opt)
        return hg_ctx_status(ctx);
    for (int step = 0; step < 3; step++) {
        hg_mark m = hg_ctx_mark(ctx);
        hg_tape *tape = hg_tape_begin(ctx, 0);
        hg_watch_n(tape, 6, params);
        hg_tensor *loss = hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, &spec, params, x), y);
        hg_tape_end(tape);
        hg_tensor *g[6];
        s = tape ? hg_gradient(tape, loss, 6, params, NULL, g) : HG_ERR_NULL;
        if (s == HG_OK)
            s = hg_optimizer_step(opt, g);
        hg_status rs = hg_ctx_rewind(ctx, m);
        if (s != HG_OK)
            return s;
        if (rs != HG_OK)
            return rs;
    }
    for (int i = 0; i < 6; i++)
        copy_out(params[i], out, n_out);
    return HG_OK;
}

/* d(validation loss)/d(training inputs, lr) through two recorded optimizer
 * steps (nested tapes: one outer, one inner per step); `one_call`: each step
 * is hg_opt_gradient_step with a constant lr (for SGD the sweep builds the
 * step itself; d/dlr is then 0). */
static hg_status hypergrad(hg_ctx *ctx, hg_opt_kind kind, bool one_call, double *out, size_t *n_out)
{
    hg_rng rng;
    hg_rng_seed(&rng, 11);
    hg_mlp spec = {.n_layers = 2, .sizes = {5, 6, 3}, .hidden = HG_ACT_TANH};
    hg_tensor *params[4];
    hg_status s = hg_mlp_init(ctx, &spec, HG_F64, HG_INIT_GLOROT, &rng, params);
    if (s != HG_OK)
        return s;
    hg_tensor *xtr = hg_rand_uniform(ctx, &rng, HG_F64, 2, SHAPE(8, 5), -1, 1);
    hg_tensor *xval = hg_rand_uniform(ctx, &rng, HG_F64, 2, SHAPE(6, 5), -1, 1);
    hg_tensor *ytr = labels(ctx, 8, 3), *yval = labels(ctx, 6, 3);
    hg_tensor *lr = hg_scalar(ctx, HG_F64, kind == HG_OPT_ADAM ? 0.01 : 0.5);
    hg_opt_config cfg = {.kind = kind, .lr = 0.5};
    hg_tape *outer = hg_tape_begin(ctx, 0);
    hg_watch(outer, xtr);
    hg_watch(outer, lr);
    hg_tensor *state[8] = {0}, *p[4], *g[4];
    memcpy(p, params, sizeof p);
    for (int t = 1; t <= 2; t++) {
        hg_tape *inner = hg_tape_begin(ctx, 0);
        hg_watch_n(inner, 4, p);
        hg_tensor *loss = hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, &spec, p, xtr), ytr);
        hg_tape_end(inner);
        hg_tensor *np[4] = {0};
        if (one_call) {
            hg_opt_gradient_step(inner, loss, &cfg, NULL, t, 4, p, state, np);
        } else {
            if (inner)
                hg_gradient(inner, loss, 4, p, NULL, g);
            else
                memset(g, 0, sizeof g);
            hg_opt_step(ctx, &cfg, lr, t, 4, p, g, state, np);
        }
        memcpy(p, np, sizeof p);
    }
    hg_tensor *E = hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, &spec, p, xval), yval);
    hg_tape_end(outer);
    hg_tensor *src[2] = {xtr, lr}, *d[2] = {0};
    if (outer)
        hg_gradient(outer, E, 2, src, NULL, d);
    if (hg_ctx_status(ctx) != HG_OK)
        return hg_ctx_status(ctx);
    ck_assert_ptr_nonnull(d[0]);
    copy_out(E, out, n_out);
    copy_out(d[0], out, n_out);
    copy_out(d[1], out, n_out);
    return HG_OK;
}

static hg_status prog_hyper_sgd(hg_ctx *ctx, double *out, size_t *n_out)
{
    return hypergrad(ctx, HG_OPT_SGD, false, out, n_out);
}

static hg_status prog_hyper_sgd_step(hg_ctx *ctx, double *out, size_t *n_out)
{
    return hypergrad(ctx, HG_OPT_SGD, true, out, n_out);
}

static hg_status prog_hyper_adam(hg_ctx *ctx, double *out, size_t *n_out)
{
    return hypergrad(ctx, HG_OPT_ADAM, false, out, n_out);
}

/* hg_unroll: 6 Adam steps of a small MLP with 2 snapshots (recomputation),
 * gradients of the batches, the initial state and lr. */
typedef struct unroll_data {
    hg_mlp spec;
    hg_tensor *x, *y;
    double dx_sum;
} unroll_data;

static hg_status u_inputs(hg_ctx *ctx, int k, hg_tensor **in, void *user)
{
    unroll_data *d = user;
    in[0] = hg_scale(ctx, d->x, 1.0 + 0.1 * k);
    return in[0] ? HG_OK : hg_ctx_status(ctx);
}

static hg_status u_step(hg_ctx *ctx, int k, hg_tensor *const *s, hg_tensor *const *in, hg_tensor *const *g,
                        hg_tensor **out, void *user)
{
    unroll_data *d = user;
    hg_tape *t = hg_tape_begin(ctx, 0);
    if (!t)
        return hg_ctx_status(ctx);
    hg_watch_n(t, 4, s);
    hg_tensor *loss = hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, &d->spec, s, in[0]), d->y);
    hg_tape_end(t);
    hg_tensor *gr[4], *st[8];
    if (hg_gradient(t, loss, 4, s, NULL, gr) != HG_OK)
        return hg_ctx_status(ctx);
    hg_opt_config cfg = {.kind = HG_OPT_ADAM, .lr = 0.01};
    for (int j = 0; j < 8; j++)
        st[j] = s[4 + j];
    hg_status r = hg_opt_step(ctx, &cfg, g[0], k + 1, 4, s, gr, st, out);
    for (int j = 0; j < 8; j++)
        out[4 + j] = st[j];
    return r;
}

static hg_tensor *u_loss(hg_ctx *ctx, hg_tensor *const *s, hg_tensor *const *g, void *user)
{
    (void)g;
    unroll_data *d = user;
    return hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, &d->spec, s, hg_scale(ctx, d->x, -1)), d->y);
}

static hg_status u_grad(hg_ctx *ctx, int k, hg_tensor *const *in, hg_tensor *const *gr, void *user)
{
    (void)ctx;
    (void)in;
    unroll_data *d = user;
    d->dx_sum += (k + 1) * hg_get(gr[0], 3);
    return HG_OK;
}

static hg_status prog_unroll(hg_ctx *ctx, double *out, size_t *n_out)
{
    hg_rng rng;
    hg_rng_seed(&rng, 8);
    unroll_data d = {.spec = {.n_layers = 2, .sizes = {5, 6, 3}, .hidden = HG_ACT_TANH}};
    hg_tensor *s0[12];
    hg_status s = hg_mlp_init(ctx, &d.spec, HG_F64, HG_INIT_GLOROT, &rng, s0);
    if (s != HG_OK)
        return s;
    for (int j = 0; j < 8; j++)
        if (!(s0[4 + j] = hg_zeros_like(ctx, s0[j % 4])))
            return hg_ctx_status(ctx);
    d.x = hg_rand_normal(ctx, &rng, HG_F64, 2, SHAPE(4, 5), 0, 1);
    d.y = labels(ctx, 4, 3);
    hg_tensor *lr = hg_scalar(ctx, HG_F64, 0.01);
    if (!d.x || !d.y || !lr)
        return hg_ctx_status(ctx);
    hg_unroll_spec sp = {.steps = 6,
                         .n_state = 12,
                         .state0 = s0,
                         .n_inputs = 1,
                         .n_globals = 1,
                         .globals = &lr,
                         .snapshots = 2,
                         .inputs = u_inputs,
                         .step = u_step,
                         .loss = u_loss,
                         .on_grad = u_grad,
                         .user = &d};
    hg_tensor *E, *d0[12], *dlr;
    if ((s = hg_unroll(ctx, &sp, &E, d0, &dlr, NULL)) != HG_OK)
        return s;
    copy_out(E, out, n_out);
    copy_out(dlr, out, n_out);
    for (int i = 0; i < 12; i++)
        copy_out(d0[i], out, n_out);
    out[(*n_out)++] = d.dx_sum;
    return HG_OK;
}

static char npy_path[512], idx_gz_path[512], idx_raw_path[512];

/* Files read through the ctx's allocator (whole-file and decompression
 * buffers). */
static hg_status prog_load(hg_ctx *ctx, double *out, size_t *n_out)
{
    hg_tensor *a = hg_npy_load(ctx, npy_path);
    hg_tensor *b = hg_idx_load(ctx, idx_gz_path, HG_F64, 1.0 / 255, 0);
    hg_tensor *c = hg_idx_load(ctx, idx_raw_path, HG_I32, 1.0, 0);
    if (!a || !b || !c)
        return hg_ctx_status(ctx);
    copy_out(a, out, n_out);
    copy_out(b, out, n_out);
    copy_out(c, out, n_out);
    return HG_OK;
}

static hg_tensor *f_cubic(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    return hg_sum(ctx, hg_mul(ctx, hg_tanh(ctx, in[0]), hg_mul(ctx, in[0], in[1])));
}

/* vjp, jvp, hvp, Jacobian, Hessian and a second-order gradcheck. */
static hg_status prog_func(hg_ctx *ctx, double *out, size_t *n_out)
{
    hg_tensor *x = T64(ctx, 1, SHAPE(3), 0.3, -0.7, 1.1);
    hg_tensor *y = T64(ctx, 1, SHAPE(3), 1.5, 0.5, -0.25);
    hg_tensor *in[2] = {x, y}, *tan[2] = {y, x};
    if (!x || !y)
        return hg_ctx_status(ctx);
    hg_tensor *v = NULL, *g[2] = {0}, *jv = NULL, *hv[2] = {0}, *jac = NULL, *hess = NULL;
    hg_status s = hg_vjp(ctx, f_cubic, 2, in, NULL, NULL, 0, &v, g);
    if (s == HG_OK)
        s = hg_jvp(ctx, f_cubic, 2, in, NULL, tan, 0, NULL, &jv);
    if (s == HG_OK)
        s = hg_hvp(ctx, f_cubic, 2, in, NULL, tan, HG_FUNC_CREATE_GRAPH, NULL, hv);
    if (s == HG_OK)
        s = hg_jacobian(ctx, f_cubic, 2, in, NULL, 0, &jac);
    if (s == HG_OK)
        s = hg_hessian(ctx, f_cubic, 2, in, NULL, 0, &hess);
    hg_check_report rep;
    hg_check_options opts = {.order = 2};
    if (s == HG_OK)
        s = hg_gradcheck(ctx, f_cubic, 2, in, NULL, &opts, &rep);
    if (s != HG_OK)
        return s;
    ck_assert_msg(rep.passed, "gradcheck did not pass: order %d input %d idx %lld analytic %g numeric %g",
                  rep.worst_order, rep.worst_input, (long long)rep.worst_index, rep.analytic, rep.numeric);
    hg_tensor *res[] = {v, g[0], g[1], jv, hv[0], hv[1], jac, hess};
    for (size_t i = 0; i < sizeof res / sizeof res[0]; i++)
        copy_out(res[i], out, n_out);
    return HG_OK;
}

/* A tiny CNN (conv2d with padding and bias, relu, max and avg pooling,
 * dense) and its hypergradient through one SGD step: conv2d, its two
 * backward ops, gather/scatter of max pooling and the layout ops all under
 * allocation failure. */
static hg_status prog_cnn(hg_ctx *ctx, double *out, size_t *n_out)
{
    hg_rng rng;
    hg_rng_seed(&rng, 4);
    hg_tensor *x = hg_rand_uniform(ctx, &rng, HG_F64, 4, SHAPE(2, 1, 6, 6), 0, 1);
    hg_tensor *p[4] = {hg_rand_normal(ctx, &rng, HG_F64, 4, SHAPE(3, 1, 3, 3), 0, 0.5),
                       hg_rand_normal(ctx, &rng, HG_F64, 1, SHAPE(3), 0, 0.1),
                       hg_rand_normal(ctx, &rng, HG_F64, 2, SHAPE(12, 3), 0, 0.3), NULL};
    hg_tensor *y = labels(ctx, 2, 3);
    if (!x || !p[0] || !p[1] || !p[2] || !y)
        return hg_ctx_status(ctx);
    const hg_conv2d_params cp = {{1, 1}, {1, 1}, {1, 1}};
    const hg_pool2d_params mp = {{2, 2}, {2, 2}, {0, 0}}, ap = {{2, 2}, {0, 0}, {1, 1}};
    hg_tape *outer = hg_tape_begin(ctx, 0);
    if (!outer)
        return hg_ctx_status(ctx);
    hg_watch(outer, x);
    hg_tape *inner = hg_tape_begin(ctx, 0);
    if (!inner) {
        hg_tape_end(outer);
        return hg_ctx_status(ctx);
    }
    hg_watch_n(inner, 3, p);
    hg_tensor *h = hg_relu(ctx, hg_conv2d(ctx, x, p[0], p[1], &cp));
    hg_tensor *m = hg_avg_pool2d(ctx, hg_max_pool2d(ctx, h, &mp), &ap); /* [2,3,2,2] */
    hg_tensor *logits = hg_matmul(ctx, hg_reshape(ctx, m, 2, SHAPE(2, 12)), p[2]);
    hg_tensor *loss = hg_softmax_cross_entropy(ctx, logits, y);
    hg_tape_end(inner);
    hg_tensor *g[3] = {0}, *E = NULL, *dx = NULL;
    hg_status s = loss ? hg_gradient(inner, loss, 3, p, NULL, g) : hg_ctx_status(ctx);
    if (s == HG_OK) {
        hg_tensor *w = hg_sub(ctx, p[0], hg_scale(ctx, g[0], 0.1));
        E = hg_sum(ctx, hg_max_pool2d(ctx, hg_conv2d(ctx, x, w, NULL, &cp), &mp));
    }
    hg_tape_end(outer);
    if (s == HG_OK)
        s = E ? hg_gradient(outer, E, 1, &x, NULL, &dx) : hg_ctx_status(ctx);
    if (s != HG_OK)
        return s;
    copy_out(E, out, n_out);
    copy_out(dx, out, n_out);
    return HG_OK;
}

/* ---- the sweep ---------------------------------------------------------------- */

static long sweep(program prog, const char *name, int sticky)
{
    static double ref[MAX_OUT], got[MAX_OUT];
    size_t n_ref = 0, n_got;
    counting c = {0};
    hg_allocator alloc = {c_alloc, c_free, &c};
    hg_ctx_options opts = {.allocator = &alloc, .chunk_bytes = 4096};

    /* Reference run, no failures. */
    hg_ctx *ctx = hg_ctx_new(&opts);
    ck_assert_ptr_nonnull(ctx);
    hg_status s = prog(ctx, ref, &n_ref);
    ck_assert_msg(s == HG_OK, "%s: reference run failed: %s", name, hg_ctx_error(ctx));
    long needed = c.calls;
    hg_ctx_free(ctx);
    ck_assert_msg(c.live == 0 && c.live_bytes == 0, "%s: %ld blocks leaked", name, c.live);
    ck_assert_int_gt((long)n_ref, 0);

    long points = 0;
    for (long n = 1;; n++) {
        memset(&c, 0, sizeof c);
        c.fail_at = n;
        c.sticky = sticky;
        ctx = hg_ctx_new(&opts);
        if (!ctx) {
            ck_assert_int_eq(n, 1); /* only the ctx struct itself */
            ck_assert_int_eq(c.live, 0);
            points++;
            continue;
        }
        hg_mark start = hg_ctx_mark(ctx);
        n_got = 0;
        s = prog(ctx, got, &n_got);
        if (c.calls < n) {
            /* The program needs fewer than n allocations: the sweep is over. */
            ck_assert_msg(s == HG_OK, "%s: run without failure failed: %s", name, hg_ctx_error(ctx));
            hg_ctx_free(ctx);
            ck_assert_int_eq(c.live, 0);
            break;
        }
        points++;
        ck_assert_msg(s != HG_OK, "%s: allocation %ld failed but the program succeeded", name, n);
        ck_assert_msg(hg_ctx_status(ctx) == HG_ERR_OOM, "%s: allocation %ld failed: first error %s (%s)", name, n,
                      hg_status_name(hg_ctx_status(ctx)), hg_ctx_error(ctx));
        ck_assert_msg(hg_ctx_error(ctx)[0] != '\0', "%s: no message", name);
        /* Still usable: rewind, clear, run again without failures. */
        c.fail_at = 0;
        ck_assert_msg(hg_ctx_rewind(ctx, start) == HG_OK, "%s: rewind after failure %ld: %s", name, n,
                      hg_ctx_error(ctx));
        hg_ctx_clear_error(ctx);
        n_got = 0;
        s = prog(ctx, got, &n_got);
        ck_assert_msg(s == HG_OK, "%s: rerun after failure %ld failed: %s", name, n, hg_ctx_error(ctx));
        ck_assert_uint_eq(n_got, n_ref);
        ck_assert_msg(memcmp(got, ref, n_ref * sizeof *ref) == 0, "%s: rerun after failure %ld differs", name, n);
        hg_ctx_free(ctx);
        ck_assert_msg(c.live == 0 && c.live_bytes == 0 && !c.size_mismatch,
                      "%s: failure at allocation %ld leaked %ld blocks (size mismatch %d)", name, n, c.live,
                      c.size_mismatch);
    }
    ck_assert_int_ge(points, needed);
    printf("alloc_fail: %-22s %4ld allocation points failed (%s), each ending in HG_ERR_OOM, no leak\n", name, points,
           sticky ? "that one and every later one" : "that one only");
    fflush(stdout);
    return points;
}

START_TEST(training_step)
{
    sweep(prog_train, "training step (Adam)", 0);
    sweep(prog_train, "training step (Adam)", 1);
}
END_TEST

START_TEST(hypergradient_sgd)
{
    sweep(prog_hyper_sgd, "hypergradient (SGD)", 0);
    sweep(prog_hyper_sgd, "hypergradient (SGD)", 1);
    sweep(prog_hyper_sgd_step, "hypergradient (SGD, hg_opt_gradient_step)", 0);
    sweep(prog_hyper_sgd_step, "hypergradient (SGD, hg_opt_gradient_step)", 1);
}
END_TEST

START_TEST(hypergradient_adam)
{
    sweep(prog_hyper_adam, "hypergradient (Adam)", 0);
    sweep(prog_hyper_adam, "hypergradient (Adam)", 1);
}
END_TEST

START_TEST(unroll)
{
    sweep(prog_unroll, "checkpointed unroll", 0);
    sweep(prog_unroll, "checkpointed unroll", 1);
}
END_TEST

START_TEST(data_loading)
{
    sweep(prog_load, "npy + IDX loads", 0);
    sweep(prog_load, "npy + IDX loads", 1);
}
END_TEST

START_TEST(func_helpers)
{
    sweep(prog_func, "func + gradcheck", 0);
    sweep(prog_func, "func + gradcheck", 1);
}
END_TEST

/* max_bytes is the other way to run out: refused before the allocator. */
START_TEST(cnn_hypergradient)
{
    sweep(prog_cnn, "CNN hypergradient", 0);
    sweep(prog_cnn, "CNN hypergradient", 1);
}
END_TEST

START_TEST(arena_limit)
{
    hg_ctx_options opts = {.chunk_bytes = 4096, .max_bytes = 64 * 1024};
    hg_ctx *ctx = hg_ctx_new(&opts);
    hg_mark m = hg_ctx_mark(ctx);
    ck_assert_ptr_null(hg_zeros(ctx, HG_F64, 1, SHAPE(100000)));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_OOM);
    ck_assert_int_eq(hg_ctx_rewind(ctx, m), HG_OK);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_nonnull(hg_zeros(ctx, HG_F64, 1, SHAPE(1000)));
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* The allocator hook is called for the ctx struct too and must be complete. */
START_TEST(bad_allocator)
{
    hg_allocator half = {c_alloc, NULL, NULL};
    hg_ctx_options opts = {.allocator = &half};
    ck_assert_ptr_null(hg_ctx_new(&opts));
}
END_TEST

static void write_files(void)
{
    static char dir[] = "/tmp/hgrad_allocfail_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(npy_path, sizeof npy_path, "%s/a.npy", dir);
    snprintf(idx_gz_path, sizeof idx_gz_path, "%s/images.idx.gz", dir);
    snprintf(idx_raw_path, sizeof idx_raw_path, "%s/labels.idx", dir);
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 5);
    hg_tensor *a = hg_rand_normal(ctx, &rng, HG_F64, 2, SHAPE(40, 30), 0, 1);
    ck_assert_int_eq(hg_npy_save(npy_path, a), HG_OK);
    hg_ctx_free(ctx);
    /* IDX: 20 images of 8x8 (gzip), 50 labels (raw). */
    unsigned char img[16 + 20 * 64];
    memcpy(img, "\0\0\x08\x03\0\0\0\x14\0\0\0\x08\0\0\0\x08", 16);
    for (int i = 0; i < 20 * 64; i++)
        img[16 + i] = (unsigned char)(i * 13);
    gzFile gz = gzopen(idx_gz_path, "wb");
    ck_assert_ptr_nonnull(gz);
    ck_assert_int_eq(gzwrite(gz, img, sizeof img), (int)sizeof img);
    gzclose(gz);
    unsigned char lab[8 + 50];
    memcpy(lab, "\0\0\x08\x01\0\0\0\x32", 8);
    for (int i = 0; i < 50; i++)
        lab[8 + i] = (unsigned char)(i % 10);
    FILE *f = fopen(idx_raw_path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(lab, 1, sizeof lab, f), sizeof lab);
    fclose(f);
}

static void remove_files(void)
{
    unlink(npy_path);
    unlink(idx_gz_path);
    unlink(idx_raw_path);
    char *slash = strrchr(npy_path, '/');
    if (slash) {
        *slash = '\0';
        rmdir(npy_path);
    }
}

static void setup_files(void)
{
    write_files();
}

static Suite *alloc_fail_suite(void)
{
    Suite *s = suite_create("alloc_fail");
    TCase *tc = tcase_create("sweeps");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, training_step);
    tcase_add_test(tc, hypergradient_sgd);
    tcase_add_test(tc, hypergradient_adam);
    tcase_add_test(tc, unroll);
    tcase_add_test(tc, func_helpers);
    tcase_add_test(tc, cnn_hypergradient);
    tcase_add_test(tc, arena_limit);
    tcase_add_test(tc, bad_allocator);
    suite_add_tcase(s, tc);
    TCase *io = tcase_create("io");
    tcase_add_unchecked_fixture(io, setup_files, remove_files);
    tcase_set_timeout(io, 600);
    tcase_add_test(io, data_loading);
    suite_add_tcase(s, io);
    return s;
}

int main(void)
{
    return run_suite(alloc_fail_suite());
}
