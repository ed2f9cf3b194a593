/* softmax, log_softmax, one_hot, gather, cast: values, derivatives to third
 * order, errors. */
#include "testutil.h"

#include <stdbool.h>
#include <string.h>

typedef struct axis_case {
    bool log;
    int axis;
} axis_case;

static hg_tensor *call_softmax(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    const axis_case *c = user;
    return c->log ? hg_log_softmax(ctx, in[0], c->axis) : hg_softmax(ctx, in[0], c->axis);
}

static hg_tensor *call_gather(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    hg_tensor *x = hg_tanh(ctx, in[0]); /* nonlinear around the linear gather */
    return hg_gather(ctx, x, in[1]);
}

static hg_tensor *call_cast(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    /* f64 -> f32 -> f64 loses precision; check the f64 -> f64 cast path and
     * a round trip through f32 at a loose tolerance in values() instead. */
    return hg_exp(ctx, hg_cast(ctx, in[0], HG_F64));
}

START_TEST(values)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 2, SHAPE(2, 3), 1, 2, 3, -1, 0, 1000);
    hg_tensor *s = hg_softmax(ctx, x, 1);
    double z = exp(1) + exp(2) + exp(3);
    ck_assert_double_eq_tol(hg_get(s, 0), exp(1) / z, 1e-15);
    ck_assert_double_eq_tol(hg_get(s, 5), 1.0, 1e-15); /* stable with a large logit */
    ck_assert_double_eq(hg_get(s, 3), 0.0);
    hg_tensor *ls = hg_log_softmax(ctx, x, -1);
    ck_assert_double_eq_tol(hg_get(ls, 2), 3 - log(z), 1e-14);
    ck_assert_double_eq_tol(hg_get(ls, 3), -1001, 1e-12);
    /* Axis 0 */
    hg_tensor *s0 = hg_softmax(ctx, T64(ctx, 2, SHAPE(2, 2), 0, 1, 0, 1), 0);
    ck_assert_double_eq(hg_get(s0, 0), 0.5);
    /* one_hot and gather */
    hg_tensor *lab = hg_tensor_from(ctx, HG_I32, 1, SHAPE(3), (const int32_t[]){2, 0, 1});
    hg_tensor *oh = hg_one_hot(ctx, lab, 4, HG_F64);
    ck_assert_int_eq(hg_tensor_dim(oh, 1), 4);
    ck_assert_double_eq(hg_get(oh, 2), 1);
    ck_assert_double_eq(hg_get(oh, 4), 1);
    ck_assert_double_eq(hg_item(hg_sum(ctx, oh)), 3);
    hg_tensor *m = T64(ctx, 2, SHAPE(3, 3), 1, 2, 3, 4, 5, 6, 7, 8, 9);
    hg_tensor *gth = hg_gather(ctx, m, lab);
    ck_assert_double_eq(hg_get(gth, 0), 3);
    ck_assert_double_eq(hg_get(gth, 1), 4);
    ck_assert_double_eq(hg_get(gth, 2), 8);
    /* cast */
    hg_tensor *f = hg_cast(ctx, x, HG_F32);
    ck_assert_int_eq(hg_tensor_dtype(f), HG_F32);
    ck_assert_float_eq(hg_tensor_cf32(f)[1], 2.0f);
    hg_tensor *fromi = hg_cast(ctx, lab, HG_F64);
    ck_assert_double_eq(hg_get(fromi, 0), 2.0);
    /* f32 softmax */
    hg_tensor *sf = hg_softmax(ctx, f, 1);
    ck_assert_float_eq_tol(hg_tensor_cf32(sf)[0], (float)(exp(1) / z), 1e-6f);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(derivatives)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 9);
    hg_tensor *x = random_f64(ctx, &rng, 2, SHAPE(3, 4), -1.5, 1.5);
    const axis_case cases[] = {{false, 1}, {false, 0}, {true, 1}, {true, -2}};
    for (size_t i = 0; i < 4; i++) {
        char what[48];
        snprintf(what, sizeof what, "%s axis %d", cases[i].log ? "log_softmax" : "softmax", cases[i].axis);
        check_gradients(ctx, call_softmax, 1, &x, (void *)&cases[i], 3, what);
    }
    hg_tensor *x3 = random_f64(ctx, &rng, 3, SHAPE(2, 3, 2), -1, 1);
    axis_case mid = {false, 1};
    check_gradients(ctx, call_softmax, 1, &x3, &mid, 2, "softmax rank 3 middle axis");
    hg_tensor *g[2] = {x, hg_tensor_from(ctx, HG_I32, 1, SHAPE(3), (const int32_t[]){3, 0, 2})};
    check_gradients(ctx, call_gather, 2, g, NULL, 3, "gather");
    check_gradients(ctx, call_cast, 1, &x, NULL, 3, "cast");
    hg_ctx_free(ctx);
}
END_TEST

/* The f32 <-> f64 cast is differentiable: gradient through a round trip. */
START_TEST(cast_gradient_crosses_dtypes)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(2), 0.5, -1.0);
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, x);
    hg_tensor *y = hg_sum(ctx, hg_cast(ctx, hg_mul(ctx, hg_cast(ctx, x, HG_F32), hg_cast(ctx, x, HG_F32)), HG_F64));
    hg_tape_end(t);
    hg_tensor *dx;
    ck_assert_int_eq(hg_gradient(t, y, 1, &x, NULL, &dx), HG_OK);
    ck_assert_int_eq(hg_tensor_dtype(dx), HG_F64);
    ck_assert_double_eq(hg_get(dx, 0), 1.0);
    ck_assert_double_eq(hg_get(dx, 1), -2.0);
    hg_ctx_free(ctx);
}
END_TEST

/* Every axis of rank-3 tensors, f32 and f64, against a direct formula;
 * the [3,2,300] case sweeps more columns than one block. */
START_TEST(softmax_against_naive)
{
    static const int64_t shapes[][3] = {{2, 3, 4}, {4, 1, 5}, {3, 2, 300}, {1, 6, 1}};
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 31);
    for (size_t c = 0; c < 4; c++)
        for (int axis = -1; axis < 3; axis++)
            for (int f32 = 0; f32 < 2; f32++) {
                const int64_t *sh = shapes[c];
                hg_tensor *x = hg_rand_uniform(ctx, &rng, f32 ? HG_F32 : HG_F64, 3, sh, -30, 30);
                hg_tensor *y = hg_softmax(ctx, x, axis), *ly = hg_log_softmax(ctx, x, axis);
                ck_assert_ctx_ok(ctx);
                int ax = axis < 0 ? axis + 3 : axis;
                int64_t st[3] = {sh[1] * sh[2], sh[2], 1};
                for (int64_t i = 0; i < hg_tensor_numel(x); i++) {
                    int64_t pos = i / st[ax] % sh[ax], base = i - pos * st[ax];
                    double mx = -INFINITY, z = 0;
                    for (int64_t k = 0; k < sh[ax]; k++)
                        mx = fmax(mx, hg_get(x, base + k * st[ax]));
                    for (int64_t k = 0; k < sh[ax]; k++)
                        z += exp(hg_get(x, base + k * st[ax]) - mx);
                    double want_log = hg_get(x, i) - mx - log(z);
                    double tol = f32 ? 1e-5 : 1e-13;
                    ck_assert_msg(fabs(hg_get(y, i) - exp(want_log)) <= tol, "shape %zu axis %d f32 %d elem %lld", c,
                                  axis, f32, (long long)i);
                    ck_assert_msg(fabs(hg_get(ly, i) - want_log) <= tol * fmax(1, fabs(want_log)),
                                  "log: shape %zu axis %d f32 %d elem %lld", c, axis, f32, (long long)i);
                }
            }
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(errors)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = hg_ones(ctx, HG_F64, 2, SHAPE(3, 4));
    hg_tensor *lab = hg_tensor_from(ctx, HG_I32, 1, SHAPE(3), (const int32_t[]){1, 4, 0});
    ck_assert_ptr_null(hg_gather(ctx, x, lab));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_gather"));
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "index 4"));
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "position 1"));
    hg_ctx_clear_error(ctx);
    hg_tensor *neg = hg_tensor_from(ctx, HG_I32, 1, SHAPE(3), (const int32_t[]){0, 1, -1});
    ck_assert_ptr_null(hg_gather(ctx, x, neg));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "index -1 at position 2"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_one_hot(ctx, lab, 4, HG_F64));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_one_hot"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_one_hot(ctx, x, 4, HG_F64));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_one_hot(ctx, lab, 5, HG_I32));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_one_hot(ctx, lab, 0, HG_F64));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_gather(ctx, x, hg_arange(ctx, HG_I32, 2, 0, 1)));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_gather"));
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "[3,4] and [2]"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_gather(ctx, hg_cast(ctx, lab, HG_F64), lab));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_gather(ctx, x, hg_cast(ctx, lab, HG_F64)));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_softmax(ctx, x, 2));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_softmax: axis 2 out of range for shape [3,4]"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_log_softmax(ctx, x, -3));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_log_softmax: axis -3"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_log_softmax(ctx, lab, 0));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_log_softmax"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_cast(ctx, x, HG_I32));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_cast"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_cast(ctx, x, (hg_dtype)7));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_softmax(ctx, NULL, 0));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_softmax"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_gather(ctx, x, NULL));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_cast(ctx, NULL, HG_F32));
    ck_assert_ptr_null(hg_one_hot(ctx, NULL, 3, HG_F32));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    /* NULL ctx */
    ck_assert_ptr_null(hg_softmax(NULL, x, 0));
    ck_assert_ptr_null(hg_log_softmax(NULL, x, 0));
    ck_assert_ptr_null(hg_gather(NULL, x, lab));
    ck_assert_ptr_null(hg_one_hot(NULL, lab, 5, HG_F64));
    ck_assert_ptr_null(hg_cast(NULL, x, HG_F32));
    hg_ctx_free(ctx);
}
END_TEST

static Suite *softmax_index_suite(void)
{
    Suite *s = suite_create("softmax_index");
    TCase *tc = tcase_create("softmax_index");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, values);
    tcase_add_test(tc, derivatives);
    tcase_add_test(tc, cast_gradient_crosses_dtypes);
    tcase_add_test(tc, softmax_against_naive);
    tcase_add_test(tc, errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(softmax_index_suite());
}
