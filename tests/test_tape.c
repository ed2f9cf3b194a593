/* Tape semantics: nesting, persistence, pause, unconnected sources, seeds,
 * accumulation, and every misuse reported as an error. */
#include "testutil.h"

#include <string.h>

/* y = x e^x: derivatives (x + k) e^x. */
START_TEST(three_nested_tapes_give_third_derivative)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    double x0 = 0.7;
    hg_tensor *x = hg_scalar(ctx, HG_F64, x0);
    hg_tape *t1 = hg_tape_begin(ctx, 0), *t2 = hg_tape_begin(ctx, 0), *t3 = hg_tape_begin(ctx, 0);
    ck_assert_int_eq(hg_watch(t1, x), HG_OK);
    ck_assert_int_eq(hg_watch(t2, x), HG_OK);
    ck_assert_int_eq(hg_watch(t3, x), HG_OK);
    hg_tensor *y = hg_mul(ctx, x, hg_exp(ctx, x));
    hg_tensor *d1, *d2, *d3;
    ck_assert_int_eq(hg_tape_end(t3), HG_OK);
    ck_assert_int_eq(hg_gradient(t3, y, 1, &x, NULL, &d1), HG_OK);
    ck_assert(hg_tape_tracks(t2, d1) && hg_tape_tracks(t1, d1));
    ck_assert_int_eq(hg_tape_end(t2), HG_OK);
    ck_assert_int_eq(hg_gradient(t2, d1, 1, &x, NULL, &d2), HG_OK);
    ck_assert_int_eq(hg_tape_end(t1), HG_OK);
    ck_assert_int_eq(hg_gradient(t1, d2, 1, &x, NULL, &d3), HG_OK);
    ck_assert_close(hg_item(d1), (x0 + 1) * exp(x0), 1e-14);
    ck_assert_close(hg_item(d2), (x0 + 2) * exp(x0), 1e-14);
    ck_assert_close(hg_item(d3), (x0 + 3) * exp(x0), 1e-14);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(persistent_and_one_shot_tapes)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = hg_scalar(ctx, HG_F64, 3.0);
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, x);
    hg_tensor *y = hg_mul(ctx, x, x);
    hg_tape_end(t);
    hg_tensor *g;
    ck_assert_int_eq(hg_gradient(t, y, 1, &x, NULL, &g), HG_OK);
    ck_assert_double_eq(hg_item(g), 6.0);
    ck_assert_int_eq(hg_gradient(t, y, 1, &x, NULL, &g), HG_ERR_TAPE);
    ck_assert_ptr_null(g);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "persistent"));
    hg_ctx_clear_error(ctx);

    hg_tape *p = hg_tape_begin(ctx, HG_TAPE_PERSISTENT);
    hg_watch(p, x);
    hg_tensor *z = hg_exp(ctx, x);
    hg_tensor *w = hg_mul(ctx, x, x);
    hg_tape_end(p);
    ck_assert_int_eq(hg_gradient(p, z, 1, &x, NULL, &g), HG_OK);
    ck_assert_close(hg_item(g), exp(3.0), 1e-15);
    ck_assert_int_eq(hg_gradient(p, w, 1, &x, NULL, &g), HG_OK);
    ck_assert_double_eq(hg_item(g), 6.0);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(pause_makes_constants)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = hg_scalar(ctx, HG_F64, 2.0);
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, x);
    ck_assert_int_eq(hg_tape_pause(t), HG_OK);
    hg_tensor *c = hg_mul(ctx, x, x); /* constant 4 for the tape */
    ck_assert(!hg_tape_tracks(t, c));
    ck_assert_int_eq(hg_tape_resume(t), HG_OK);
    hg_tensor *y = hg_mul(ctx, c, x); /* d/dx = c = 4, not 3x^2 = 12 */
    ck_assert(hg_tape_tracks(t, y));
    ck_assert_int_eq(hg_tape_resume(t), HG_ERR_TAPE); /* not paused */
    hg_ctx_clear_error(ctx);
    hg_tape_end(t);
    hg_tensor *g;
    ck_assert_int_eq(hg_gradient(t, y, 1, &x, NULL, &g), HG_OK);
    ck_assert_double_eq(hg_item(g), 4.0);
    ck_assert_int_eq(hg_tape_pause(t), HG_ERR_TAPE); /* ended */
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(unconnected_and_unwatched_sources)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(2), 1, 2);
    hg_tensor *u = T64(ctx, 1, SHAPE(3), 1, 2, 3); /* watched, unused */
    hg_tensor *v = T64(ctx, 1, SHAPE(2), 5, 6);    /* used, never watched */
    hg_tape *t = hg_tape_begin(ctx, HG_TAPE_PERSISTENT);
    hg_watch(t, x);
    hg_watch(t, u);
    hg_tensor *y = hg_sum(ctx, hg_mul(ctx, x, v));
    hg_tape_end(t);
    hg_tensor *srcs[3] = {x, u, v}, *g[3];
    ck_assert_int_eq(hg_gradient(t, y, 3, srcs, NULL, g), HG_OK);
    ck_assert_double_eq(hg_get(g[0], 0), 5.0);
    ck_assert_double_eq(hg_get(g[0], 1), 6.0);
    ck_assert_int_eq(hg_tensor_numel(g[1]), 3);
    ck_assert_double_eq(hg_item(hg_sum(ctx, hg_abs(ctx, g[1]))), 0.0);
    ck_assert_double_eq(hg_item(hg_sum(ctx, hg_abs(ctx, g[2]))), 0.0);

    hg_tape *tn = hg_tape_begin(ctx, HG_TAPE_UNCONNECTED_NULL);
    hg_watch(tn, x);
    hg_watch(tn, u);
    hg_tensor *y2 = hg_sum(ctx, hg_exp(ctx, x));
    hg_tape_end(tn);
    ck_assert_int_eq(hg_gradient(tn, y2, 2, srcs, NULL, g), HG_OK);
    ck_assert_ptr_nonnull(g[0]);
    ck_assert_ptr_null(g[1]);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(accumulation_intermediates_and_seeds)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(3), 1, 2, 3);
    hg_tape *t = hg_tape_begin(ctx, HG_TAPE_PERSISTENT);
    hg_watch(t, x);
    hg_tensor *h = hg_mul(ctx, x, x); /* x^2 */
    hg_tensor *y = hg_add(ctx, h, x); /* x^2 + x: x used twice */
    hg_tape_end(t);
    hg_tensor *seed = T64(ctx, 1, SHAPE(3), 1, 10, 100);
    hg_tensor *srcs[2] = {x, h}, *g[2];
    ck_assert_int_eq(hg_gradient(t, y, 2, srcs, seed, g), HG_OK);
    for (int i = 0; i < 3; i++) {
        double xi = i + 1, si = pow(10, i);
        ck_assert_double_eq(hg_get(g[0], i), si * (2 * xi + 1));
        ck_assert_double_eq(hg_get(g[1], i), si);
    }
    /* Non-scalar target without a seed, and a seed of the wrong shape. */
    ck_assert_int_eq(hg_gradient(t, y, 1, &x, NULL, g), HG_ERR_SHAPE);
    ck_assert_ptr_null(g[0]);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_gradient(t, y, 1, &x, hg_ones(ctx, HG_F64, 1, SHAPE(2)), g), HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_gradient(t, y, 1, &x, hg_ones(ctx, HG_F32, 1, SHAPE(3)), g), HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    /* The target itself as a source gets the seed. */
    ck_assert_int_eq(hg_gradient(t, y, 1, &y, seed, g), HG_OK);
    ck_assert_double_eq(hg_get(g[0], 2), 100.0);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(misuse_is_reported)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = hg_scalar(ctx, HG_F64, 1.0), *g;
    hg_tape *outer = hg_tape_begin(ctx, 0);
    hg_tape *inner = hg_tape_begin(ctx, 0);
    /* Ending out of order changes nothing. */
    ck_assert_int_eq(hg_tape_end(outer), HG_ERR_TAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "innermost"));
    hg_ctx_clear_error(ctx);
    hg_watch(inner, x);
    hg_tensor *y = hg_exp(ctx, x);
    /* Differentiating a tape still recording. */
    ck_assert_int_eq(hg_gradient(inner, y, 1, &x, NULL, &g), HG_ERR_TAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "still recording"));
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_tape_end(inner), HG_OK);
    ck_assert_int_eq(hg_tape_end(inner), HG_ERR_TAPE);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_watch(inner, x), HG_ERR_TAPE);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_tape_end(outer), HG_OK);
    /* NULL and i32 arguments. */
    ck_assert_int_eq(hg_gradient(NULL, y, 1, &x, NULL, &g), HG_ERR_NULL);
    ck_assert_ptr_null(g);
    ck_assert_int_eq(hg_gradient(inner, NULL, 1, &x, NULL, &g), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_gradient(inner, y, 1, NULL, NULL, &g), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_watch(NULL, x), HG_ERR_NULL);
    ck_assert_ptr_null(hg_tape_begin(NULL, 0));
    hg_tape *t = hg_tape_begin(ctx, 0);
    ck_assert_int_eq(hg_watch(t, NULL), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_watch(t, hg_arange(ctx, HG_I32, 3, 0, 1)), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_tape_end(t), HG_OK);
    ck_assert_ptr_null(hg_tape_begin(ctx, 0x100));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_INVALID);
    hg_ctx_clear_error(ctx);
    /* Too deep. */
    hg_tape *stack[HG_MAX_TAPES];
    for (int i = 0; i < HG_MAX_TAPES; i++)
        ck_assert_ptr_nonnull(stack[i] = hg_tape_begin(ctx, 0));
    ck_assert_ptr_null(hg_tape_begin(ctx, 0));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_TAPE);
    for (int i = HG_MAX_TAPES - 1; i >= 0; i--)
        ck_assert_int_eq(hg_tape_end(stack[i]), HG_OK);
    /* A stale tape after reset. */
    hg_ctx_clear_error(ctx);
    hg_ctx_reset(ctx);
    ck_assert_int_eq(hg_tape_end(t), HG_ERR_STALE);
    hg_ctx_free(ctx);
}
END_TEST

/* Tapes at the same stack level at different times stay distinct, and a
 * persistent tape can still be differentiated after a later tape reused its
 * level. */
START_TEST(same_level_tapes_are_distinct)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = hg_scalar(ctx, HG_F64, 2.0);
    hg_tape *a = hg_tape_begin(ctx, HG_TAPE_PERSISTENT);
    hg_watch(a, x);
    hg_tensor *ya = hg_mul(ctx, x, x);
    hg_tape_end(a);
    hg_tape *b = hg_tape_begin(ctx, 0);
    hg_watch(b, ya);
    hg_tensor *yb = hg_mul(ctx, ya, x); /* x^3, but b only sees ya */
    hg_tape_end(b);
    hg_tensor *g;
    ck_assert_int_eq(hg_gradient(b, yb, 1, &ya, NULL, &g), HG_OK);
    ck_assert_double_eq(hg_item(g), 2.0);
    ck_assert_int_eq(hg_gradient(a, ya, 1, &x, NULL, &g), HG_OK);
    ck_assert_double_eq(hg_item(g), 4.0);
    /* a did not record yb: an error naming the cause, not silent zeros. */
    ck_assert_int_eq(hg_gradient(a, yb, 1, &x, NULL, &g), HG_ERR_TAPE);
    ck_assert_ptr_null(g);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "not recorded on this tape"));
    hg_ctx_free(ctx);
}
END_TEST

/* The hypergradient pattern (docs/design.md) in miniature: d(validation loss)/d(training input)
 * through one SGD step of linear regression, against the closed form.
 * w1 = w - lr * 2 (w x - y) x;  E = (w1 xv - yv)^2;
 * dE/dx = 2 (w1 xv - yv) xv * dw1/dx, dw1/dx = -2 lr (2 w x - y). */
START_TEST(hypergradient_through_one_sgd_step)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    double w0 = 0.3, x0 = 1.7, y0 = 0.4, xv = -0.8, yv = 0.9, lr = 0.1;
    hg_tensor *x = hg_scalar(ctx, HG_F64, x0), *w = hg_scalar(ctx, HG_F64, w0);
    hg_tensor *y = hg_scalar(ctx, HG_F64, y0);
    hg_tape *outer = hg_tape_begin(ctx, 0);
    hg_watch(outer, x);
    hg_tape *inner = hg_tape_begin(ctx, 0);
    hg_watch(inner, w);
    hg_tensor *r = hg_sub(ctx, hg_mul(ctx, w, x), y);
    hg_tensor *loss = hg_mul(ctx, r, r);
    hg_tape_end(inner);
    hg_tensor *gw;
    ck_assert_int_eq(hg_gradient(inner, loss, 1, &w, NULL, &gw), HG_OK);
    hg_tensor *w1 = hg_sub(ctx, w, hg_scale(ctx, gw, lr));
    hg_tensor *rv = hg_add_scalar(ctx, hg_scale(ctx, w1, xv), -yv);
    hg_tensor *E = hg_mul(ctx, rv, rv);
    hg_tape_end(outer);
    hg_tensor *dx;
    ck_assert_int_eq(hg_gradient(outer, E, 1, &x, NULL, &dx), HG_OK);
    double w1v = w0 - lr * 2 * (w0 * x0 - y0) * x0;
    double want = 2 * (w1v * xv - yv) * xv * (-2 * lr * (2 * w0 * x0 - y0));
    ck_assert_close(hg_item(dx), want, 1e-14);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

static Suite *tape_suite(void)
{
    Suite *s = suite_create("tape");
    TCase *tc = tcase_create("semantics");
    tcase_add_test(tc, three_nested_tapes_give_third_derivative);
    tcase_add_test(tc, persistent_and_one_shot_tapes);
    tcase_add_test(tc, pause_makes_constants);
    tcase_add_test(tc, unconnected_and_unwatched_sources);
    tcase_add_test(tc, accumulation_intermediates_and_seeds);
    tcase_add_test(tc, misuse_is_reported);
    tcase_add_test(tc, same_level_tapes_are_distinct);
    tcase_add_test(tc, hypergradient_through_one_sgd_step);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(tape_suite());
}
