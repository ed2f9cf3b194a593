/* hg_gradcheck itself: passes on correct derivatives to order 3, fails on a
 * wrong one (so the op suites that use it can fail), restores inputs, and
 * reports bad arguments. */
#include "testutil.h"

#include <string.h>

/* f(x, y) = sum(x^2 * y) + sum(exp(x)) */
static hg_tensor *poly(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    hg_tensor *a = hg_mul(ctx, hg_mul(ctx, in[0], in[0]), in[1]);
    return hg_add(ctx, hg_sum(ctx, a), hg_sum(ctx, hg_exp(ctx, in[0])));
}

START_TEST(passes_to_third_order)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *in[2] = {T64(ctx, 1, SHAPE(3), 0.5, -1.0, 2.0), T64(ctx, 1, SHAPE(3), 1.5, 0.3, -0.7)};
    hg_check_options o = {.order = 3};
    hg_check_report r;
    ck_assert_int_eq(hg_gradcheck(ctx, poly, 2, in, NULL, &o, &r), HG_OK);
    ck_assert_msg(r.passed, "order %d err %g", r.worst_order, r.abs_error);
    for (int k = 0; k < 3; k++)
        ck_assert_double_le(r.max_abs_error[k], 1e-6);
    /* Inputs restored exactly. */
    ck_assert_double_eq(hg_get(in[0], 2), 2.0);
    ck_assert_double_eq(hg_get(in[1], 1), 0.3);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* A custom op with a deliberately wrong vjp: y = x^3, "dx = 2 g x^2". */
static hg_status cube_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    (void)attr;
    const double *x = hg_tensor_cdata(in[0]);
    double *y = hg_tensor_data(out[0]);
    for (int64_t i = 0; i < hg_tensor_numel(in[0]); i++)
        y[i] = x[i] * x[i] * x[i];
    return HG_OK;
}

/* dx = 2 g x^2 (WRONG on purpose: the truth is 3 g x^2) */
static hg_status cube_wrong_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *x = hg_node_input(node, 0);
    gin[0] = hg_mul(ctx, gout[0], hg_scale(ctx, hg_mul(ctx, x, x), 2.0));
    return gin[0] ? HG_OK : hg_ctx_status(ctx);
}

static const hg_opdef cube_wrong = {"cube_wrong", 1, 1, 0, shape_like_input, cube_forward, cube_wrong_vjp, NULL};

static hg_tensor *apply_cube_wrong(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    return hg_apply(ctx, &cube_wrong, in, NULL);
}

START_TEST(fails_on_a_wrong_vjp)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(2), 0.5, 1.5);
    hg_check_report r;
    ck_assert_int_eq(hg_gradcheck(ctx, apply_cube_wrong, 1, &x, NULL, NULL, &r), HG_OK);
    ck_assert(!r.passed);
    ck_assert_int_eq(r.worst_order, 1);
    /* With the random output direction u: analytic 2 u x^2, numeric 3 u x^2. */
    ck_assert_close(r.analytic / r.numeric, 2.0 / 3.0, 1e-6);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(bad_arguments)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(2), 0.5, 1.5);
    hg_tensor *xf = hg_ones(ctx, HG_F32, 1, SHAPE(2));
    hg_check_report r;
    ck_assert_int_eq(hg_gradcheck(ctx, NULL, 1, &x, NULL, NULL, &r), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_gradcheck(ctx, poly, 1, &x, NULL, NULL, NULL), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_gradcheck(ctx, apply_cube_wrong, 1, &xf, NULL, NULL, &r), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_gradcheck(ctx, apply_cube_wrong, 1, &x, NULL, &(hg_check_options){.order = 9}, &r),
                     HG_ERR_RANGE);
    ck_assert_int_eq(hg_gradcheck(NULL, poly, 1, &x, NULL, NULL, &r), HG_ERR_NULL);
    hg_ctx_free(ctx);
}
END_TEST

static Suite *gradcheck_suite(void)
{
    Suite *s = suite_create("gradcheck");
    TCase *tc = tcase_create("check");
    tcase_add_test(tc, passes_to_third_order);
    tcase_add_test(tc, fails_on_a_wrong_vjp);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(gradcheck_suite());
}
