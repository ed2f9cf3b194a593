/* Fused optimizer-step ops (src/ops/optim_ops.c): derivatives to third
 * order of each op and of hg_opt_step through them (f64), first order in
 * f32 against f64, bitwise equality of the fused and composed steps, and
 * shape/dtype errors naming the op. */
#include "testutil.h"

#include "ops/optim_ops.h"

#include <string.h>

/* ---- each fused op -------------------------------------------------------- */

typedef struct op_case {
    const char *name;
    int n_in;
    double lo[4], hi[4]; /* sample range per input */
} op_case;

static const op_case op_cases[] = {
    {"lincomb", 2, {-2, -2}, {2, 2}},
    {"prod", 2, {-2, -2}, {2, 2}},
    {"prod (z = w)", 1, {-2}, {2}},
    {"lincomb_prod", 3, {-2, -2, -2}, {2, 2, 2}},
    {"lincomb_prod (z = w)", 2, {-2, -2}, {2, 2}},
    {"adam_step", 4, {-2, 0.3, -1, 0.2}, {2, 2, 1, 2}},
    {"adam_step (first step)", 2, {-2, 0.3}, {2, 2}},
    {"adam_dg", 4, {-2, -2, -2, 0.2}, {2, 2, 2, 2}},
    {"adam_dm", 2, {-2, 0.2}, {2, 2}},
    {"adam_dv", 3, {-2, -2, 0.2}, {2, 2, 2}},
};
#define N_OP_CASES (sizeof op_cases / sizeof op_cases[0])

/* eps 0.3 and c2 1.7 keep the Adam ops smooth at the finite-difference scale. */
static hg_tensor *call_op(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    const op_case *c = user;
    int k = (int)(c - op_cases);
    switch (k) {
    case 0: return hg_opt_lincomb(ctx, in[0], in[1], 0.7, -1.3);
    case 1: return hg_opt_prod(ctx, in[0], in[1], -0.6);
    case 2: return hg_opt_prod(ctx, in[0], in[0], 0.4);
    case 3: return hg_opt_lincomb_prod(ctx, in[0], in[1], in[2], 0.9, 0.3);
    case 4: return hg_opt_lincomb_prod(ctx, in[0], in[1], in[1], 0.9, 0.3);
    case 5:
    case 6: { /* p, g, m, v with the new moments computed as hg_opt_step does */
        const double coef[8] = {0.5, 1.2, 1.7, 0.3, 0.8, 0.2, 0.9, 0.1};
        hg_tensor *m = k == 5 ? in[2] : NULL, *v = k == 5 ? in[3] : NULL;
        hg_tensor *m1 = m ? hg_opt_lincomb(ctx, m, in[1], 0.8, 0.2) : hg_scale(ctx, in[1], 0.2);
        hg_tensor *v1 = v ? hg_opt_lincomb_prod(ctx, v, in[1], in[1], 0.9, 0.1) : hg_opt_prod(ctx, in[1], in[1], 0.1);
        return hg_opt_adam_step(ctx, in[0], in[1], m, v, m1, v1, coef);
    }
    case 7: return hg_opt_adam_dg(ctx, in[0], in[1], in[2], in[3], -0.7, 1.1, 1.7, 0.3);
    case 8: return hg_opt_adam_dm(ctx, in[0], in[1], -0.8, 1.7, 0.3);
    case 9: return hg_opt_adam_dv(ctx, in[0], in[1], in[2], 0.9, 1.7, 0.3);
    }
    return NULL;
}

START_TEST(ops_third_order)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 5);
    for (size_t c = 0; c < N_OP_CASES; c++) {
        hg_tensor *in[4];
        for (int i = 0; i < op_cases[c].n_in; i++)
            in[i] = random_f64(ctx, &rng, 2, SHAPE(2, 3), op_cases[c].lo[i], op_cases[c].hi[i]);
        check_gradients(ctx, call_op, op_cases[c].n_in, in, (void *)&op_cases[c], 3, op_cases[c].name);
    }
    hg_ctx_free(ctx);
}
END_TEST

/* Forward values against the formulas, and sqrt'(0) = 0 in adam_dv. */
START_TEST(ops_values)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(3), 1.0, -2.0, 0.5);
    hg_tensor *z = T64(ctx, 1, SHAPE(3), 3.0, 0.25, -1.0);
    hg_tensor *v = T64(ctx, 1, SHAPE(3), 4.0, 0.0, 1.0);
    ck_assert_double_eq(hg_get(hg_opt_lincomb(ctx, x, z, 2.0, -1.0), 0), -1.0);
    ck_assert_double_eq(hg_get(hg_opt_prod(ctx, x, z, 2.0), 1), -1.0);
    ck_assert_double_eq(hg_get(hg_opt_lincomb_prod(ctx, x, z, z, 1.0, 0.5), 2), 1.0);
    /* adam_step reads the new moments m1 = z, v1 = v given to it */
    const double coef[8] = {0.1, 2.0, 1.0, 0.5, 0.9, 0.1, 0.99, 0.01};
    ck_assert_double_eq_tol(hg_get(hg_opt_adam_step(ctx, x, x, NULL, NULL, z, v, coef), 0), 1.0 - 0.1 * 6.0 / 2.5,
                            1e-15);
    /* adam_dg: at v = 0 only the first term, with D = eps */
    hg_tensor *dg = hg_opt_adam_dg(ctx, x, z, x, v, 2.0, 3.0, 1.0, 0.5);
    ck_assert_double_eq_tol(hg_get(dg, 0), 2.0 * 1.0 / 2.5 + 3.0 * 3.0 * 1.0 * 1.0 / (2.5 * 2.5 * 2.0), 1e-15);
    ck_assert_double_eq_tol(hg_get(dg, 1), 2.0 * -2.0 / 0.5, 1e-15);
    ck_assert_double_eq_tol(hg_get(hg_opt_adam_dm(ctx, x, v, 3.0, 1.0, 0.5), 2), 1.5 / 1.5, 1e-15);
    hg_tensor *dv = hg_opt_adam_dv(ctx, x, z, v, 2.0, 1.0, 0.5);
    ck_assert_double_eq_tol(hg_get(dv, 0), 2.0 * 3.0 / (2.5 * 2.5 * 2.0), 1e-15);
    ck_assert_double_eq(hg_get(dv, 1), 0.0); /* v = 0: sqrt'(0) = 0 */
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- hg_opt_step through the fused ops ------------------------------------ */

typedef struct step_case {
    hg_opt_config cfg;
    int t;
    bool first; /* state NULL (zeros) */
} step_case;

/* p' + 0.3 u' (momentum) or p' + 0.3 m' + 0.7 v' (Adam): every output. */
static hg_tensor *call_step(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    const step_case *c = user;
    hg_tensor *p = in[0], *g = in[1], *np = NULL;
    hg_tensor *state[2] = {NULL, NULL};
    if (!c->first)
        for (int j = 0; j < hg_opt_state_count(c->cfg.kind, 1); j++)
            state[j] = in[2 + j];
    if (hg_opt_step(ctx, &c->cfg, NULL, c->t, 1, &p, &g, state, &np) != HG_OK)
        return NULL;
    hg_tensor *y = np;
    if (c->cfg.kind != HG_OPT_SGD)
        y = hg_add(ctx, y, hg_scale(ctx, state[0], 0.3));
    if (c->cfg.kind == HG_OPT_ADAM)
        y = hg_add(ctx, y, hg_scale(ctx, state[1], 0.7));
    return y;
}

START_TEST(steps_third_order)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 9);
    const step_case cases[] = {
        {{.kind = HG_OPT_SGD, .lr = 0.3}, 1, false},
        {{.kind = HG_OPT_MOMENTUM, .lr = 0.3, .momentum = 0.8}, 2, false},
        {{.kind = HG_OPT_MOMENTUM, .lr = 0.3, .momentum = 0.8}, 1, true},
        {{.kind = HG_OPT_ADAM, .lr = 0.3, .eps = 0.2}, 3, false},
        {{.kind = HG_OPT_ADAM, .lr = 0.3, .eps = 0.2, .beta1 = 0.5, .beta2 = 0.7}, 1, true},
    };
    const char *names[] = {"sgd", "momentum", "momentum (first step)", "adam t=3", "adam (first step)"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        hg_tensor *in[4];
        in[0] = random_f64(ctx, &rng, 2, SHAPE(2, 2), -1, 1);
        in[1] = random_f64(ctx, &rng, 2, SHAPE(2, 2), 0.3, 1.5); /* |g| away from Adam's stiff point */
        in[2] = random_f64(ctx, &rng, 2, SHAPE(2, 2), -0.5, 0.5);
        in[3] = random_f64(ctx, &rng, 2, SHAPE(2, 2), 0.1, 1.0); /* v > 0 */
        int n = cases[c].first ? 2 : 2 + hg_opt_state_count(cases[c].cfg.kind, 1);
        check_gradients(ctx, call_step, n, in, (void *)&cases[c], 3, names[c]);
    }
    hg_ctx_free(ctx);
}
END_TEST

/* The constant-lr (fused) step equals the lr-tensor (composed) step bitwise,
 * values and state, f32 and f64, for several steps. */
START_TEST(fused_equals_composed_bitwise)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 3);
    const hg_opt_config cfgs[3] = {{.kind = HG_OPT_SGD, .lr = 0.07},
                                   {.kind = HG_OPT_MOMENTUM, .lr = 0.07, .momentum = 0.9},
                                   {.kind = HG_OPT_ADAM, .lr = 0.07}};
    for (int dt = 0; dt < 2; dt++) {
        hg_dtype dtype = dt ? HG_F32 : HG_F64;
        for (int k = 0; k < 3; k++) {
            hg_tensor *p0 = hg_cast(ctx, random_f64(ctx, &rng, 1, SHAPE(37), -1, 1), dtype);
            hg_tensor *pa = p0, *pb = p0, *sa[2] = {NULL, NULL}, *sb[2] = {NULL, NULL};
            hg_tensor *lr = hg_scalar(ctx, dtype, cfgs[k].lr);
            for (int t = 1; t <= 4; t++) {
                hg_tensor *g = hg_cast(ctx, random_f64(ctx, &rng, 1, SHAPE(37), -1, 1), dtype);
                if (t == 2)
                    dtype == HG_F64 ? (void)(hg_tensor_f64(g)[5] = 0) : (void)(hg_tensor_f32(g)[5] = 0);
                hg_tensor *na, *nb;
                ck_assert_int_eq(hg_opt_step(ctx, &cfgs[k], NULL, t, 1, &pa, &g, sa, &na), HG_OK);
                ck_assert_int_eq(hg_opt_step(ctx, &cfgs[k], lr, t, 1, &pb, &g, sb, &nb), HG_OK);
                pa = na;
                pb = nb;
                size_t bytes = 37 * hg_dtype_size(dtype);
                ck_assert_msg(memcmp(hg_tensor_cdata(pa), hg_tensor_cdata(pb), bytes) == 0, "%s %s step %d: p differs",
                              hg_opt_name(cfgs[k].kind), hg_dtype_name(dtype), t);
                for (int j = 0; j < hg_opt_state_count(cfgs[k].kind, 1); j++)
                    ck_assert_msg(memcmp(hg_tensor_cdata(sa[j]), hg_tensor_cdata(sb[j]), bytes) == 0,
                                  "%s %s step %d: state %d differs", hg_opt_name(cfgs[k].kind), hg_dtype_name(dtype), t,
                                  j);
            }
        }
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* d(sum(w * (p' + 0.3 m' + 0.7 v')))/d(p, g, m, v) of an Adam step in dtype. */
static void adam_vjp(hg_ctx *ctx, hg_dtype dtype, hg_tensor *const *in64, hg_tensor *w64, hg_tensor **out)
{
    hg_tensor *in[4];
    for (int i = 0; i < 4; i++)
        in[i] = hg_cast(ctx, in64[i], dtype);
    hg_tensor *w = hg_cast(ctx, w64, dtype);
    step_case c = {{.kind = HG_OPT_ADAM, .lr = 0.1, .eps = 1e-3}, 2, false};
    hg_tape *tape = hg_tape_begin(ctx, 0);
    hg_watch_n(tape, 4, in);
    hg_tensor *y = hg_sum(ctx, hg_mul(ctx, w, call_step(ctx, in, &c)));
    hg_tape_end(tape);
    ck_assert_int_eq(hg_gradient(tape, y, 4, in, NULL, out), HG_OK);
}

START_TEST(f32_first_order_matches_f64)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 17);
    hg_tensor *in[4] = {random_f64(ctx, &rng, 1, SHAPE(50), -1, 1), random_f64(ctx, &rng, 1, SHAPE(50), -1, 1),
                        random_f64(ctx, &rng, 1, SHAPE(50), -0.2, 0.2), random_f64(ctx, &rng, 1, SHAPE(50), 0.01, 0.5)};
    hg_tensor *w = random_f64(ctx, &rng, 1, SHAPE(50), -1, 1);
    hg_tensor *d64[4], *d32[4];
    adam_vjp(ctx, HG_F64, in, w, d64);
    adam_vjp(ctx, HG_F32, in, w, d32);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(hg_tensor_dtype(d32[i]), HG_F32);
        for (int j = 0; j < 50; j++)
            ck_assert_close(hg_get(d32[i], j), hg_get(d64[i], j), 2e-4);
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(errors_name_the_op)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *a = hg_ones(ctx, HG_F64, 1, SHAPE(3)), *b = hg_ones(ctx, HG_F64, 2, SHAPE(3, 1));
    ck_assert_ptr_null(hg_opt_lincomb(ctx, a, b, 1, 1));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    ck_assert_msg(strstr(hg_ctx_error(ctx), "hg_opt_lincomb") && strstr(hg_ctx_error(ctx), "[3,1]"), "%s",
                  hg_ctx_error(ctx));
    hg_ctx_clear_error(ctx);
    const double coef[8] = {1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5};
    ck_assert_ptr_null(hg_opt_adam_step(ctx, a, a, NULL, NULL, hg_cast(ctx, a, HG_F32), a, coef));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    ck_assert_msg(strstr(hg_ctx_error(ctx), "hg_opt_adam_step"), "%s", hg_ctx_error(ctx));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_opt_adam_step(ctx, a, a, a, NULL, a, a, coef));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_opt_adam_dv(ctx, a, NULL, a, 1, 1, 1));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_free(ctx);
}
END_TEST

static Suite *optim_ops_suite(void)
{
    Suite *s = suite_create("optim_ops");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, ops_values);
    tcase_add_test(tc, ops_third_order);
    tcase_add_test(tc, steps_third_order);
    tcase_add_test(tc, fused_equals_composed_bitwise);
    tcase_add_test(tc, f32_first_order_matches_f64);
    tcase_add_test(tc, errors_name_the_op);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(optim_ops_suite());
}
