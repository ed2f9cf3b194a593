/* Optimizers: hand-computed steps, training form equal to the
 * differentiable form, no allocation per step, second-order checks of
 * unrolled steps (data, weights, learning rate), and Adam's finite
 * hypergradient at an exactly-zero gradient. */
#include "testutil.h"

#include <string.h>

START_TEST(hand_computed_steps)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *p = T64(ctx, 1, SHAPE(2), 1.0, -2.0);
    hg_tensor *g = T64(ctx, 1, SHAPE(2), 0.5, -4.0);
    hg_tensor *np;
    hg_opt_config sgd = {.kind = HG_OPT_SGD, .lr = 0.1};
    ck_assert_int_eq(hg_opt_step(ctx, &sgd, NULL, 1, 1, &p, &g, NULL, &np), HG_OK);
    ck_assert_double_eq_tol(hg_get(np, 0), 0.95, 1e-15);
    ck_assert_double_eq_tol(hg_get(np, 1), -1.6, 1e-15);
    /* momentum, two steps with the same gradient: u1 = g, u2 = 0.9 g + g */
    hg_opt_config mom = {.kind = HG_OPT_MOMENTUM, .lr = 0.1, .momentum = 0.9};
    hg_tensor *state[2] = {NULL, NULL}, *p1, *p2;
    hg_opt_step(ctx, &mom, NULL, 1, 1, &p, &g, state, &p1);
    hg_opt_step(ctx, &mom, NULL, 2, 1, &p1, &g, state, &p2);
    ck_assert_double_eq_tol(hg_get(p2, 0), 1.0 - 0.1 * 0.5 - 0.1 * 1.9 * 0.5, 1e-15);
    ck_assert_double_eq_tol(hg_get(state[0], 1), -4.0 * 1.9, 1e-15);
    /* Adam step 1 moves by lr g / (|g| + eps) */
    hg_opt_config adam = {.kind = HG_OPT_ADAM, .lr = 0.01};
    hg_tensor *st[2] = {NULL, NULL};
    ck_assert_int_eq(hg_opt_step(ctx, &adam, NULL, 1, 1, &p, &g, st, &p1), HG_OK);
    ck_assert_double_eq_tol(hg_get(p1, 0), 1.0 - 0.01 * 0.5 / (0.5 + 1e-8), 1e-15);
    ck_assert_double_eq_tol(hg_get(p1, 1), -2.0 + 0.01 * 4.0 / (4.0 + 1e-8), 1e-15);
    ck_assert_double_eq_tol(hg_get(st[0], 0), 0.1 * 0.5, 1e-15);    /* m = (1-b1) g */
    ck_assert_double_eq_tol(hg_get(st[1], 1), 0.001 * 16.0, 1e-15); /* v = (1-b2) g^2 */
    /* Adam step 2 with gradient g2, closed form. */
    hg_tensor *g2 = T64(ctx, 1, SHAPE(2), -1.0, 2.0);
    ck_assert_int_eq(hg_opt_step(ctx, &adam, NULL, 2, 1, &p1, &g2, st, &p2), HG_OK);
    double m = 0.9 * 0.05 + 0.1 * -1.0, v = 0.999 * 0.001 * 0.25 + 0.001 * 1.0;
    double mh = m / (1 - 0.81), vh = v / (1 - 0.999 * 0.999);
    ck_assert_double_eq_tol(hg_get(p2, 0), hg_get(p1, 0) - 0.01 * mh / (sqrt(vh) + 1e-8), 1e-14);
    /* lr as a tensor gives the same values */
    hg_tensor *lr = hg_scalar(ctx, HG_F64, 0.1), *q;
    hg_opt_step(ctx, &sgd, lr, 1, 1, &p, &g, NULL, &q);
    ck_assert_double_eq(hg_get(q, 1), hg_get(np, 1));
    ck_assert_ctx_ok(ctx);
    /* errors */
    ck_assert_int_eq(hg_opt_step(ctx, &adam, NULL, 0, 1, &p, &g, st, &q), HG_ERR_RANGE);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_opt_step(ctx, &mom, NULL, 1, 1, &p, &g, NULL, &q), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_opt_step(ctx, &sgd, hg_ones(ctx, HG_F64, 1, SHAPE(2)), 1, 1, &p, &g, NULL, &q), HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_opt_step(ctx, &sgd, NULL, 1, 1, &p, (hg_tensor *[]){hg_ones(ctx, HG_F64, 1, SHAPE(3))}, NULL,
                                 &q),
                     HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_opt_step(ctx, NULL, NULL, 1, 1, &p, &g, NULL, &q), HG_ERR_NULL);
    ck_assert_int_eq(hg_opt_parse("adam", &adam.kind), 0);
    ck_assert_int_eq(hg_opt_parse("lbfgs", &adam.kind), -1);
    ck_assert_str_eq(hg_opt_name(HG_OPT_MOMENTUM), "momentum");
    hg_ctx_free(ctx);
}
END_TEST

/* The in-place training form equals the recorded form bitwise, step by
 * step (same roundings, no contraction), and allocates nothing per step. */
START_TEST(training_form_matches_and_allocates_nothing)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 8);
    for (int kind = 0; kind < 3; kind++) {
        for (int dt = 0; dt < 2; dt++) {
            hg_dtype dtype = dt ? HG_F64 : HG_F32;
            hg_opt_config cfg = {.kind = (hg_opt_kind)kind, .lr = 0.05, .momentum = 0.8};
            hg_tensor *pa = hg_rand_normal(ctx, &rng, dtype, 2, SHAPE(3, 4), 0, 1);
            hg_tensor *pb = hg_tensor_clone(ctx, pa);
            hg_tensor *grads[5];
            for (int s = 0; s < 5; s++)
                grads[s] = hg_rand_normal(ctx, &rng, dtype, 2, SHAPE(3, 4), 0, 1);
            hg_optimizer *opt = hg_optimizer_new(ctx, &cfg, 1, &pb);
            ck_assert_ptr_nonnull(opt);
            hg_tensor *state[2] = {NULL, NULL}, *cur = pa;
            for (int s = 0; s < 5; s++) {
                hg_tensor *next;
                ck_assert_int_eq(hg_opt_step(ctx, &cfg, NULL, s + 1, 1, &cur, &grads[s], state, &next), HG_OK);
                cur = next;
                hg_ctx_stats before = hg_ctx_get_stats(ctx);
                ck_assert_int_eq(hg_optimizer_step(opt, &grads[s]), HG_OK);
                hg_ctx_stats after = hg_ctx_get_stats(ctx);
                ck_assert_uint_eq(after.bytes_in_use, before.bytes_in_use);
                ck_assert_uint_eq(after.chunk_allocs, before.chunk_allocs);
                for (int i = 0; i < 12; i++)
                    ck_assert_msg(hg_get(cur, i) == hg_get(pb, i), /* bitwise: same roundings */
                                  "kind %d dtype %d step %d element %d: %.17g vs %.17g", kind, dt, s, i, hg_get(cur, i),
                                  hg_get(pb, i));
            }
            ck_assert_int_eq(hg_optimizer_steps(opt), 5);
        }
    }
    /* A wrong gradient changes nothing. */
    hg_tensor *p = hg_ones(ctx, HG_F64, 1, SHAPE(2));
    hg_opt_config cfg = {.kind = HG_OPT_SGD, .lr = 1};
    hg_optimizer *opt = hg_optimizer_new(ctx, &cfg, 1, &p);
    hg_tensor *bad = hg_ones(ctx, HG_F32, 1, SHAPE(2));
    ck_assert_int_eq(hg_optimizer_step(opt, &bad), HG_ERR_DTYPE);
    ck_assert_double_eq(hg_get(p, 0), 1.0);
    ck_assert_int_eq(hg_optimizer_step(NULL, &bad), HG_ERR_NULL);
    hg_ctx_free(ctx);
}
END_TEST

/* K unrolled steps of a linear softmax classifier; the validation loss after
 * them as a function of (training data, initial weights, learning rate). */
typedef struct unroll {
    hg_opt_config cfg;
    int steps;
    hg_tensor *y_train, *x_val, *y_val;
} unroll;

static hg_tensor *unrolled_loss(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    const unroll *u = user;
    hg_tensor *x = in[0], *W = in[1], *lr = in[2];
    hg_tensor *state[2] = {NULL, NULL};
    for (int k = 1; k <= u->steps; k++) {
        hg_tape *t = hg_tape_begin(ctx, 0);
        hg_watch(t, W);
        hg_tensor *loss = hg_softmax_cross_entropy(ctx, hg_tanh(ctx, hg_matmul(ctx, x, W)), u->y_train);
        hg_tape_end(t);
        hg_tensor *g, *next;
        if (hg_gradient(t, loss, 1, &W, NULL, &g) != HG_OK ||
            hg_opt_step(ctx, &u->cfg, lr, k, 1, &W, &g, state, &next) != HG_OK)
            return NULL;
        W = next;
    }
    return hg_softmax_cross_entropy(ctx, hg_matmul(ctx, u->x_val, W), u->y_val);
}

START_TEST(unrolled_steps_second_order)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 21);
    unroll u = {.steps = 2,
                .y_train = hg_tensor_from(ctx, HG_I32, 1, SHAPE(4), (const int32_t[]){0, 2, 1, 2}),
                .x_val = random_f64(ctx, &rng, 2, SHAPE(3, 3), -1, 1),
                .y_val = hg_tensor_from(ctx, HG_I32, 1, SHAPE(3), (const int32_t[]){1, 0, 2})};
    hg_tensor *in[3] = {random_f64(ctx, &rng, 2, SHAPE(4, 3), -1, 1), random_f64(ctx, &rng, 2, SHAPE(3, 3), -1, 1),
                        hg_scalar(ctx, HG_F64, 0.3)};
    u.cfg = (hg_opt_config){.kind = HG_OPT_SGD};
    check_gradients(ctx, unrolled_loss, 3, in, &u, 2, "2 SGD steps");
    u.cfg = (hg_opt_config){.kind = HG_OPT_MOMENTUM, .momentum = 0.9};
    check_gradients(ctx, unrolled_loss, 3, in, &u, 2, "2 momentum steps");
    /* Adam: every gradient entry here is far from 0 (|g| > 1e-3), so the
     * sign-like step is smooth at the finite-difference scale; a large eps
     * makes its data dependence substantial as well. */
    u.cfg = (hg_opt_config){.kind = HG_OPT_ADAM, .eps = 1e-2};
    check_gradients(ctx, unrolled_loss, 3, in, &u, 2, "2 Adam steps (eps 1e-2)");
    /* Standard eps 1e-8: every |g| here is above 1e-3, far from the stiff
     * region near g = 0 (slope 1/eps, docs/hypergradient.md), so central differences with h = 1e-6
     * are accurate; checked to second order as well. */
    u.cfg = (hg_opt_config){.kind = HG_OPT_ADAM};
    check_gradients_tol(ctx, unrolled_loss, 3, in, &u, 2, 1e-6, 1e-4, "2 Adam steps (eps 1e-8)");
    /* d(loss after K steps)/d(lr) alone, K = 3, against finite differences */
    u.steps = 3;
    u.cfg = (hg_opt_config){.kind = HG_OPT_SGD};
    check_gradients(ctx, unrolled_loss, 3, in, &u, 2, "3 SGD steps");
    hg_ctx_free(ctx);
}
END_TEST

/* Adam where a gradient entry is exactly 0 (an input feature that is 0):
 * v = 0 there, and the hypergradient must be the finite closed form, not
 * NaN. Scalar model: train loss (w x - y)^2 / 2 at x = 0 gives g = 0 and
 * dg/dx = -y; step 1 has d(update)/dg = 1/eps at g = 0, so
 * dE/dx = (w xv - yv) xv (lr / eps) y for E = (w1 xv - yv)^2 / 2. */
START_TEST(adam_zero_gradient_is_finite)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    double w0 = 0.7, y0 = 1.3, xv = 0.4, yv = -0.2, lr = 1e-3, eps = 1e-8;
    hg_tensor *x = hg_scalar(ctx, HG_F64, 0.0), *w = hg_scalar(ctx, HG_F64, w0);
    hg_tensor *y = hg_scalar(ctx, HG_F64, y0);
    hg_tape *outer = hg_tape_begin(ctx, 0);
    hg_watch(outer, x);
    hg_tape *inner = hg_tape_begin(ctx, 0);
    hg_watch(inner, w);
    hg_tensor *r = hg_sub(ctx, hg_mul(ctx, w, x), y);
    hg_tensor *loss = hg_scale(ctx, hg_mul(ctx, r, r), 0.5);
    hg_tape_end(inner);
    hg_tensor *g, *w1, *state[2] = {NULL, NULL};
    hg_gradient(inner, loss, 1, &w, NULL, &g);
    ck_assert_double_eq(hg_item(g), 0.0);
    hg_opt_config adam = {.kind = HG_OPT_ADAM, .lr = lr, .eps = eps};
    hg_opt_step(ctx, &adam, NULL, 1, 1, &w, &g, state, &w1);
    hg_tensor *rv = hg_add_scalar(ctx, hg_scale(ctx, w1, xv), -yv);
    hg_tensor *E = hg_scale(ctx, hg_mul(ctx, rv, rv), 0.5);
    hg_tape_end(outer);
    hg_tensor *dx;
    ck_assert_int_eq(hg_gradient(outer, E, 1, &x, NULL, &dx), HG_OK);
    double want = (w0 * xv - yv) * xv * (lr / eps) * y0;
    ck_assert_msg(isfinite(hg_item(dx)), "hypergradient is %g", hg_item(dx));
    ck_assert_double_eq_tol(hg_item(dx), want, 1e-9 * fabs(want));
    hg_ctx_free(ctx);
}
END_TEST

/* The same through an MLP with a dead ReLU unit and zero input features,
 * over 3 Adam steps: every entry finite. */
START_TEST(adam_dead_units_multi_step_finite)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 5);
    hg_mlp spec = {2, {6, 5, 3}, HG_ACT_RELU};
    hg_tensor *p[4];
    hg_mlp_init(ctx, &spec, HG_F64, HG_INIT_HE, &rng, p);
    double *b1 = hg_tensor_f64(p[1]);
    b1[0] = -100; /* unit 0 is dead for every input */
    hg_tensor *x = hg_rand_uniform(ctx, &rng, HG_F64, 2, SHAPE(4, 6), 0, 1);
    double *xd = hg_tensor_f64(x);
    for (int i = 0; i < 4; i++)
        xd[i * 6 + 5] = 0; /* feature 5 is zero everywhere */
    hg_tensor *y = hg_tensor_from(ctx, HG_I32, 1, SHAPE(4), (const int32_t[]){0, 1, 2, 1});
    hg_tape *outer = hg_tape_begin(ctx, 0);
    hg_watch(outer, x);
    hg_tensor *state[8] = {0};
    hg_opt_config adam = {.kind = HG_OPT_ADAM, .lr = 1e-3};
    ck_assert_int_eq(recorded_steps(ctx, &spec, &adam, NULL, 3, 4, p, state, x, y), HG_OK);
    hg_tensor *E = hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, &spec, p, x), y);
    hg_tape_end(outer);
    hg_tensor *dx;
    ck_assert_int_eq(hg_gradient(outer, E, 1, &x, NULL, &dx), HG_OK);
    for (int i = 0; i < 24; i++)
        ck_assert_msg(isfinite(hg_get(dx, i)), "dx[%d] = %g", i, hg_get(dx, i));
    ck_assert_double_gt(fabs(hg_get(dx, 5)), 0.0); /* the zero feature's derivative is real and nonzero */
    hg_ctx_free(ctx);
}
END_TEST

/* Bad configurations and inputs: clean errors, and on error neither the
 * state nor new_params change. */
START_TEST(errors_leave_state_alone)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *p[2] = {T64(ctx, 1, SHAPE(2), 1, 2), T64(ctx, 2, SHAPE(1, 3), 1, 2, 3)};
    hg_tensor *g[2] = {T64(ctx, 1, SHAPE(2), 0.5, 0.5), T64(ctx, 2, SHAPE(1, 3), 1, 1, 1)};
    hg_tensor *st[4] = {NULL, NULL, NULL, NULL}, *np[2];
    const struct {
        hg_opt_config cfg;
        hg_status want;
    } cfgs[] = {
        {{.kind = HG_OPT_ADAM, .lr = 0.1, .beta1 = 1.0}, HG_ERR_RANGE},
        {{.kind = HG_OPT_ADAM, .lr = 0.1, .beta2 = -0.5}, HG_ERR_RANGE},
        {{.kind = HG_OPT_ADAM, .lr = 0.1, .eps = -1e-8}, HG_ERR_RANGE},
        {{.kind = HG_OPT_SGD, .lr = NAN}, HG_ERR_RANGE},
        {{.kind = HG_OPT_MOMENTUM, .lr = 0.1, .momentum = INFINITY}, HG_ERR_RANGE},
        {{.kind = (hg_opt_kind)7, .lr = 0.1}, HG_ERR_INVALID},
    };
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        ck_assert_int_eq(hg_opt_step(ctx, &cfgs[c].cfg, NULL, 1, 2, p, g, st, np), cfgs[c].want);
        hg_ctx_clear_error(ctx);
        ck_assert_ptr_null(hg_optimizer_new(ctx, &cfgs[c].cfg, 2, p));
        ck_assert_int_eq(hg_ctx_status(ctx), cfgs[c].want);
        hg_ctx_clear_error(ctx);
    }
    hg_opt_config adam = {.kind = HG_OPT_ADAM, .lr = 0.1};
    /* second gradient of the wrong shape: nothing changes */
    hg_tensor *bad_g[2] = {g[0], T64(ctx, 1, SHAPE(3), 1, 1, 1)};
    np[0] = np[1] = p[0];
    ck_assert_int_eq(hg_opt_step(ctx, &adam, NULL, 1, 2, p, bad_g, st, np), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "gradient 1"));
    hg_ctx_clear_error(ctx);
    for (int j = 0; j < 4; j++)
        ck_assert_ptr_null(st[j]);
    ck_assert_ptr_null(np[0]);
    ck_assert_ptr_null(np[1]);
    /* a state tensor of the wrong shape or dtype */
    st[3] = T64(ctx, 1, SHAPE(2), 0, 0);
    ck_assert_int_eq(hg_opt_step(ctx, &adam, NULL, 1, 2, p, g, st, np), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "state 1"));
    hg_ctx_clear_error(ctx);
    st[3] = hg_zeros(ctx, HG_F32, 2, SHAPE(1, 3));
    ck_assert_int_eq(hg_opt_step(ctx, &adam, NULL, 1, 2, p, g, st, np), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    st[3] = NULL;
    /* lr of another dtype or rank, integer parameters, NULL and stale tensors */
    ck_assert_int_eq(hg_opt_step(ctx, &adam, hg_scalar(ctx, HG_F32, 0.1f), 1, 2, p, g, st, np), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    hg_tensor *ip = hg_tensor_from(ctx, HG_I32, 1, SHAPE(2), (const int32_t[]){1, 2});
    ck_assert_int_eq(hg_opt_step(ctx, &adam, NULL, 1, 1, &ip, &ip, st, np), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_optimizer_new(ctx, &adam, 1, &ip));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    hg_tensor *null_g[2] = {g[0], NULL};
    ck_assert_int_eq(hg_opt_step(ctx, &adam, NULL, 1, 2, p, null_g, st, np), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    hg_mark m = hg_ctx_mark(ctx);
    hg_tensor *gone = hg_ones(ctx, HG_F64, 1, SHAPE(2));
    hg_ctx_rewind(ctx, m);
    ck_assert_int_eq(hg_opt_step(ctx, &adam, NULL, 1, 1, &gone, &g[0], st, np), HG_ERR_STALE);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_opt_step(NULL, &adam, NULL, 1, 2, p, g, st, np), HG_ERR_NULL);
    /* still fine afterwards, and more than 64 tensors in one call */
    ck_assert_int_eq(hg_opt_step(ctx, &adam, NULL, 1, 2, p, g, st, np), HG_OK);
    ck_assert_ptr_nonnull(st[0]);
    ck_assert_ptr_nonnull(st[3]);
    enum { N = 100 };
    hg_tensor *many[N], *mg[N], *ms[N], *mn[N];
    for (int i = 0; i < N; i++) {
        many[i] = hg_scalar(ctx, HG_F64, i);
        mg[i] = hg_scalar(ctx, HG_F64, 1);
        ms[i] = NULL;
    }
    hg_opt_config mom = {.kind = HG_OPT_MOMENTUM, .lr = 0.5, .momentum = 0.9};
    ck_assert_int_eq(hg_opt_step(ctx, &mom, NULL, 1, N, many, mg, ms, mn), HG_OK);
    ck_assert_double_eq(hg_item(mn[N - 1]), N - 1 - 0.5);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* The training form against hand-computed values, f32 and f64. */
START_TEST(training_form_hand_computed)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    for (int dt = 0; dt < 2; dt++) {
        hg_dtype dtype = dt ? HG_F64 : HG_F32;
        double tol = dt ? 1e-15 : 1e-6;
        hg_tensor *p = hg_cast(ctx, T64(ctx, 1, SHAPE(2), 1.0, -2.0), dtype);
        hg_tensor *g = hg_cast(ctx, T64(ctx, 1, SHAPE(2), 0.5, -4.0), dtype);
        hg_opt_config adam = {.kind = HG_OPT_ADAM, .lr = 0.01};
        hg_optimizer *opt = hg_optimizer_new(ctx, &adam, 1, &p);
        ck_assert_int_eq(hg_optimizer_step(opt, &g), HG_OK);
        ck_assert_close(hg_get(p, 0), 1.0 - 0.01 * 0.5 / (0.5 + 1e-8), tol);
        ck_assert_close(hg_get(p, 1), -2.0 + 0.01 * 4.0 / (4.0 + 1e-8), tol);
        /* step 2 with the same gradient: m^ = g, v^ = g^2, so again lr g/(|g| + eps) */
        ck_assert_int_eq(hg_optimizer_step(opt, &g), HG_OK);
        ck_assert_close(hg_get(p, 0), 1.0 - 2 * 0.01 * 0.5 / (0.5 + 1e-8), tol);
        hg_tensor *q = hg_cast(ctx, T64(ctx, 1, SHAPE(2), 1.0, -2.0), dtype);
        hg_opt_config mom = {.kind = HG_OPT_MOMENTUM, .lr = 0.1, .momentum = 0.9};
        opt = hg_optimizer_new(ctx, &mom, 1, &q);
        hg_optimizer_step(opt, &g);
        hg_optimizer_step(opt, &g);
        ck_assert_close(hg_get(q, 0), 1.0 - 0.1 * 0.5 - 0.1 * 1.9 * 0.5, tol);
        hg_opt_config sgd = {.kind = HG_OPT_SGD, .lr = 0.1};
        opt = hg_optimizer_new(ctx, &sgd, 1, &q);
        hg_optimizer_step(opt, &g);
        ck_assert_close(hg_get(q, 1), -2.0 + 0.4 + 0.1 * 1.9 * 4.0 + 0.4, tol);
        ck_assert_int_eq(hg_optimizer_steps(opt), 1);
    }
    /* n = 0 is a valid, empty optimizer */
    hg_opt_config sgd = {.kind = HG_OPT_SGD, .lr = 0.1};
    hg_optimizer *empty = hg_optimizer_new(ctx, &sgd, 0, NULL);
    ck_assert_ptr_nonnull(empty);
    ck_assert_int_eq(hg_optimizer_step(empty, NULL), HG_OK);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* Warm state: N training-form steps, export, then K more steps both in the
 * training form and with hg_opt_step from the exported state (t = N+1...),
 * and with a fresh optimizer that imported it: bitwise equal parameters. */
START_TEST(warm_state_round_trip)
{
    static const hg_opt_kind kinds[] = {HG_OPT_SGD, HG_OPT_MOMENTUM, HG_OPT_ADAM};
    for (int d = 0; d < 2; d++)
        for (int ki = 0; ki < 3; ki++) {
            hg_dtype dt = d ? HG_F64 : HG_F32;
            hg_ctx *ctx = hg_ctx_new(NULL);
            hg_rng rng;
            hg_rng_seed(&rng, 21);
            hg_opt_config cfg = {.kind = kinds[ki], .lr = 0.05, .momentum = 0.8};
            hg_tensor *p[2] = {hg_rand_normal(ctx, &rng, dt, 2, SHAPE(3, 4), 0, 1),
                               hg_rand_normal(ctx, &rng, dt, 1, SHAPE(4), 0, 1)};
            hg_tensor *g[9][2];
            for (int k = 0; k < 9; k++)
                for (int i = 0; i < 2; i++) {
                    g[k][i] = hg_rand_normal(ctx, &rng, dt, hg_tensor_rank(p[i]), hg_tensor_shape(p[i]), 0, 1);
                    if (k == 2) /* an exact zero entry: v stays 0 there for a while */
                        memset(hg_tensor_data(g[k][i]), 0, hg_dtype_size(dt));
                }
            hg_optimizer *opt = hg_optimizer_new(ctx, &cfg, 2, p);
            for (int k = 0; k < 5; k++)
                ck_assert_int_eq(hg_optimizer_step(opt, g[k]), HG_OK);
            int steps = -1, ns = hg_opt_state_count(cfg.kind, 2);
            hg_tensor *st[4] = {NULL, NULL, NULL, NULL};
            ck_assert_int_eq(hg_optimizer_export(opt, ctx, &steps, st), HG_OK);
            ck_assert_int_eq(steps, 5);
            for (int j = 0; j < ns; j++)
                ck_assert(st[j] && hg_tensor_numel(st[j]) == hg_tensor_numel(p[j % 2]));
            hg_tensor *q[2] = {hg_tensor_clone(ctx, p[0]), hg_tensor_clone(ctx, p[1])};
            /* a second training-form optimizer resumed by import */
            hg_tensor *r[2] = {hg_tensor_clone(ctx, p[0]), hg_tensor_clone(ctx, p[1])};
            hg_optimizer *opt2 = hg_optimizer_new(ctx, &cfg, 2, r);
            ck_assert_int_eq(hg_optimizer_import(opt2, steps, st), HG_OK);
            ck_assert_int_eq(hg_optimizer_steps(opt2), 5);
            hg_tensor *sd[4];
            memcpy(sd, st, sizeof sd);
            for (int k = 5; k < 9; k++) {
                ck_assert_int_eq(hg_optimizer_step(opt, g[k]), HG_OK);
                ck_assert_int_eq(hg_optimizer_step(opt2, g[k]), HG_OK);
                hg_tensor *nq[2];
                ck_assert_int_eq(hg_opt_step(ctx, &cfg, NULL, steps + 1 + (k - 5), 2, q, g[k], sd, nq), HG_OK);
                q[0] = nq[0];
                q[1] = nq[1];
                for (int i = 0; i < 2; i++) {
                    ck_assert_msg(same_bits(p[i], q[i]), "%s %s step %d: recorded form differs", hg_opt_name(cfg.kind),
                                  hg_dtype_name(dt), k);
                    ck_assert_msg(same_bits(p[i], r[i]), "%s %s step %d: imported optimizer differs",
                                  hg_opt_name(cfg.kind), hg_dtype_name(dt), k);
                }
            }
            /* the export is a copy: training on did not change it */
            hg_tensor *st2[4];
            ck_assert_int_eq(hg_optimizer_export(opt, ctx, &steps, st2), HG_OK);
            ck_assert_int_eq(steps, 9);
            for (int j = 0; j < ns; j++)
                ck_assert(same_bits(st2[j], sd[j]));
            /* import errors change nothing */
            ck_assert_int_eq(hg_optimizer_import(opt2, -1, st), HG_ERR_RANGE);
            hg_ctx_clear_error(ctx);
            if (ns) {
                hg_tensor *wrong[4] = {st[1], st[0], st[1], st[0]};
                ck_assert_int_eq(hg_optimizer_import(opt2, 2, wrong), HG_ERR_SHAPE);
                hg_ctx_clear_error(ctx);
                ck_assert_int_eq(hg_optimizer_import(opt2, 2, NULL), HG_ERR_NULL);
                hg_ctx_clear_error(ctx);
                ck_assert_int_eq(hg_optimizer_export(opt, ctx, &steps, NULL), HG_ERR_NULL);
                hg_ctx_clear_error(ctx);
            }
            ck_assert_int_eq(hg_optimizer_steps(opt2), 9);
            /* NULL entries import as zeros (a fresh state) */
            hg_tensor *none[4] = {NULL, NULL, NULL, NULL};
            ck_assert_int_eq(hg_optimizer_import(opt2, 0, none), HG_OK);
            hg_tensor *z[4];
            ck_assert_int_eq(hg_optimizer_export(opt2, ctx, &steps, z), HG_OK);
            ck_assert_int_eq(steps, 0);
            for (int j = 0; j < ns; j++)
                ck_assert_double_eq(hg_get(z[j], 0), 0.0);
            ck_assert_int_eq(hg_optimizer_export(NULL, ctx, &steps, z), HG_ERR_NULL);
            ck_assert_int_eq(hg_optimizer_import(NULL, 0, z), HG_ERR_NULL);
            ck_assert_ctx_ok(ctx);
            hg_ctx_free(ctx);
        }
}
END_TEST

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, hand_computed_steps);
    tcase_add_test(tc, warm_state_round_trip);
    tcase_add_test(tc, training_form_matches_and_allocates_nothing);
    tcase_add_test(tc, unrolled_steps_second_order);
    tcase_add_test(tc, adam_zero_gradient_is_finite);
    tcase_add_test(tc, adam_dead_units_multi_step_finite);
    tcase_add_test(tc, errors_leave_state_alone);
    tcase_add_test(tc, training_form_hand_computed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(optim_suite());
}
