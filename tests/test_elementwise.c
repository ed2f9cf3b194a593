/* Broadcasting binary ops: forward values, derivatives of order 1..3 by
 * finite differences, broadcasting cases, and errors. */
#include "testutil.h"

#include <string.h>

typedef hg_tensor *(*binary_fn)(hg_ctx *, hg_tensor *, hg_tensor *);

typedef struct binary_box {
    binary_fn f;
} binary_box;

static hg_tensor *call_binary(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    return ((binary_box *)user)->f(ctx, in[0], in[1]);
}

static hg_tensor *call_where(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    return hg_where(ctx, in[2], in[0], in[1]);
}

static const struct {
    const char *name;
    binary_fn f;
    double expect[6]; /* for a = [1,2,3;4,5,6], b = [0.5,-2,4;3,3,-1] */
} binary_cases[] = {
    {"add", hg_add, {1.5, 0, 7, 7, 8, 5}},
    {"sub", hg_sub, {0.5, 4, -1, 1, 2, 7}},
    {"mul", hg_mul, {0.5, -4, 12, 12, 15, -6}},
    {"div", hg_div, {2, -1, 0.75, 4.0 / 3, 5.0 / 3, -6}},
    {"maximum", hg_maximum, {1, 2, 4, 4, 5, 6}},
    {"minimum", hg_minimum, {0.5, -2, 3, 3, 3, -1}},
    {"greater", hg_greater, {1, 1, 0, 1, 1, 1}},
    {"greater_equal", hg_greater_equal, {1, 1, 0, 1, 1, 1}},
};

START_TEST(forward_values)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *a = T64(ctx, 2, SHAPE(2, 3), 1, 2, 3, 4, 5, 6);
    hg_tensor *b = T64(ctx, 2, SHAPE(2, 3), 0.5, -2, 4, 3, 3, -1);
    for (size_t c = 0; c < sizeof binary_cases / sizeof binary_cases[0]; c++) {
        hg_tensor *y = binary_cases[c].f(ctx, a, b);
        ck_assert_msg(y != NULL, "%s: %s", binary_cases[c].name, hg_ctx_error(ctx));
        for (int i = 0; i < 6; i++)
            ck_assert_msg(fabs(hg_get(y, i) - binary_cases[c].expect[i]) < 1e-15, "%s[%d] = %g", binary_cases[c].name,
                          i, hg_get(y, i));
    }
    hg_tensor *m = T64(ctx, 1, SHAPE(3), 1, 0, 2);
    hg_tensor *w = hg_where(ctx, m, a, b);
    const double we[6] = {1, -2, 3, 4, 3, 6};
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(hg_get(w, i), we[i]);
    /* f32 forward */
    hg_tensor *af = hg_cast(ctx, a, HG_F32), *bf = hg_cast(ctx, b, HG_F32);
    hg_tensor *pf = hg_mul(ctx, af, bf);
    ck_assert_int_eq(hg_tensor_dtype(pf), HG_F32);
    ck_assert_float_eq(hg_tensor_f32(pf)[5], -6.0f);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(broadcast_forward)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *a = T64(ctx, 2, SHAPE(2, 3), 1, 2, 3, 4, 5, 6);
    hg_tensor *row = T64(ctx, 1, SHAPE(3), 10, 20, 30);
    hg_tensor *col = T64(ctx, 2, SHAPE(2, 1), 100, 200);
    hg_tensor *s = hg_scalar(ctx, HG_F64, 0.5);
    hg_tensor *y = hg_add(ctx, a, row);
    ck_assert_double_eq(hg_get(y, 4), 25);
    y = hg_add(ctx, col, a);
    ck_assert_double_eq(hg_get(y, 4), 205);
    y = hg_mul(ctx, s, a);
    ck_assert_double_eq(hg_get(y, 5), 3);
    y = hg_sub(ctx, col, row); /* [2,1] - [3] -> [2,3] */
    ck_assert_int_eq(hg_tensor_dim(y, 0), 2);
    ck_assert_int_eq(hg_tensor_dim(y, 1), 3);
    ck_assert_double_eq(hg_get(y, 5), 170);
    hg_tensor *r3 = hg_ones(ctx, HG_F64, 3, SHAPE(2, 1, 4));
    hg_tensor *r2 = hg_arange(ctx, HG_F64, 12, 0, 1);
    y = hg_add(ctx, r3, hg_reshape(ctx, r2, 2, SHAPE(3, 4)));
    ck_assert_int_eq(hg_tensor_numel(y), 24);
    ck_assert_double_eq(hg_get(y, 23), 12);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(derivatives_to_third_order)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    /* Inputs away from ties and zeros. */
    hg_tensor *in[2] = {T64(ctx, 2, SHAPE(2, 3), 0.7, -1.3, 2.1, 1.6, -0.4, 0.9),
                        T64(ctx, 2, SHAPE(2, 3), 1.2, 0.8, -1.7, 0.5, 1.9, -2.3)};
    binary_box fs[] = {{hg_add}, {hg_sub}, {hg_mul}, {hg_div}, {hg_maximum}, {hg_minimum}};
    const char *names[] = {"add", "sub", "mul", "div", "maximum", "minimum"};
    for (int i = 0; i < 6; i++)
        check_gradients(ctx, call_binary, 2, in, &fs[i], 3, names[i]);
    hg_tensor *w[3] = {in[0], in[1], T64(ctx, 2, SHAPE(2, 3), 1, 0, 1, 0, 0, 1)};
    check_gradients(ctx, call_where, 3, w, NULL, 3, "where");
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(broadcast_derivatives)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 3);
    const struct {
        int ra;
        int64_t sa[2];
        int rb;
        int64_t sb[2];
    } cases[] = {{2, {2, 3}, 1, {3}}, {2, {2, 1}, 2, {1, 3}}, {0, {0}, 2, {2, 3}}, {2, {2, 3}, 2, {2, 1}}};
    binary_box fs[] = {{hg_add}, {hg_sub}, {hg_mul}, {hg_div}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        hg_tensor *in[2] = {random_f64(ctx, &rng, cases[c].ra, cases[c].sa, 0.5, 2.0),
                            random_f64(ctx, &rng, cases[c].rb, cases[c].sb, 0.5, 2.0)};
        for (int i = 0; i < 4; i++) {
            char what[64];
            snprintf(what, sizeof what, "broadcast case %zu op %d", c, i);
            check_gradients(ctx, call_binary, 2, in, &fs[i], 2, what);
        }
    }
    hg_tensor *w[3] = {random_f64(ctx, &rng, 1, SHAPE(3), -1, 1), random_f64(ctx, &rng, 2, SHAPE(2, 3), -1, 1),
                       T64(ctx, 2, SHAPE(2, 1), 1, 0)};
    check_gradients(ctx, call_where, 3, w, NULL, 2, "where broadcast");
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(errors)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *a = hg_ones(ctx, HG_F64, 2, SHAPE(2, 3));
    hg_tensor *b = hg_ones(ctx, HG_F64, 1, SHAPE(4));
    hg_tensor *f = hg_ones(ctx, HG_F32, 1, SHAPE(3));
    hg_tensor *i = hg_arange(ctx, HG_I32, 3, 0, 1);
    ck_assert_ptr_null(hg_mul(ctx, a, b));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_mul"));
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "[2,3]"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_add(ctx, a, f));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_cast"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_sub(ctx, i, i));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_where(ctx, b, a, a));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    /* NULL input: NULL out, earlier error kept. */
    hg_div(ctx, a, b);
    char first[512];
    snprintf(first, sizeof first, "%s", hg_ctx_error(ctx));
    ck_assert_ptr_null(hg_add(ctx, NULL, a));
    ck_assert_ptr_null(hg_maximum(ctx, a, NULL));
    ck_assert_str_eq(hg_ctx_error(ctx), first);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_add(ctx, NULL, a));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    ck_assert_ptr_null(hg_add(NULL, a, a));
    /* NaN and Inf propagate as IEEE. */
    hg_ctx_clear_error(ctx);
    hg_tensor *weird = T64(ctx, 1, SHAPE(3), NAN, INFINITY, -INFINITY);
    hg_tensor *y = hg_mul(ctx, weird, hg_ones(ctx, HG_F64, 1, SHAPE(3)));
    ck_assert(isnan(hg_get(y, 0)) && isinf(hg_get(y, 1)) && hg_get(y, 2) < 0);
    ck_assert(isnan(hg_get(hg_maximum(ctx, weird, hg_zeros(ctx, HG_F64, 0, NULL)), 0)));
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

static Suite *elementwise_suite(void)
{
    Suite *s = suite_create("elementwise");
    TCase *tc = tcase_create("binary");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, forward_values);
    tcase_add_test(tc, broadcast_forward);
    tcase_add_test(tc, derivatives_to_third_order);
    tcase_add_test(tc, broadcast_derivatives);
    tcase_add_test(tc, errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(elementwise_suite());
}
