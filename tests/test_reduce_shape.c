/* Reductions and shape ops: values, derivatives (second order; the
 * reductions are linear, so each check composes with a nonlinearity), and
 * errors. */
#include "testutil.h"

#include <string.h>

typedef struct spec {
    int which;
    int axis, keepdim;
} spec;

/* Each case applies the op to x*x (so higher derivatives are nontrivial). */
static hg_tensor *call_spec(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    const spec *s = user;
    hg_tensor *x = hg_mul(ctx, in[0], in[0]);
    static const int perm[3] = {2, 0, 1};
    switch (s->which) {
    case 0: return hg_sum(ctx, x);
    case 1: return hg_mean(ctx, x);
    case 2: return hg_sum_axis(ctx, x, s->axis, s->keepdim);
    case 3: return hg_mean_axis(ctx, x, s->axis, s->keepdim);
    case 4: return hg_sum_to(ctx, x, 1, SHAPE(3));
    case 5: return hg_sum_to(ctx, x, 2, SHAPE(2, 1));
    case 6: return hg_sum_to(ctx, x, 0, NULL);
    case 7: return hg_broadcast_to(ctx, x, 3, SHAPE(4, 2, 3));
    case 8: return hg_reshape(ctx, x, 2, SHAPE(3, -1));
    case 9: return hg_transpose(ctx, x);
    default: return hg_permute(ctx, hg_reshape(ctx, x, 3, SHAPE(1, 2, 3)), perm);
    }
}

START_TEST(values)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 2, SHAPE(2, 3), 1, 2, 3, 4, 5, 6);
    ck_assert_double_eq(hg_item(hg_sum(ctx, x)), 21);
    ck_assert_double_eq(hg_item(hg_mean(ctx, x)), 3.5);
    hg_tensor *s0 = hg_sum_axis(ctx, x, 0, 0);
    ck_assert_int_eq(hg_tensor_rank(s0), 1);
    ck_assert_double_eq(hg_get(s0, 2), 9);
    hg_tensor *s1 = hg_sum_axis(ctx, x, -1, 1);
    ck_assert_int_eq(hg_tensor_rank(s1), 2);
    ck_assert_int_eq(hg_tensor_dim(s1, 1), 1);
    ck_assert_double_eq(hg_get(s1, 1), 15);
    ck_assert_double_eq(hg_get(hg_mean_axis(ctx, x, 1, 0), 0), 2);
    ck_assert_double_eq(hg_get(hg_sum_to(ctx, x, 1, SHAPE(3)), 1), 7);
    ck_assert_double_eq(hg_get(hg_sum_to(ctx, x, 2, SHAPE(2, 1)), 1), 15);
    hg_tensor *b = hg_broadcast_to(ctx, T64(ctx, 1, SHAPE(3), 1, 2, 3), 2, SHAPE(2, 3));
    ck_assert_double_eq(hg_get(b, 4), 2);
    hg_tensor *r = hg_reshape(ctx, x, 2, SHAPE(-1, 2));
    ck_assert_int_eq(hg_tensor_dim(r, 0), 3);
    hg_tensor *t = hg_transpose(ctx, x);
    ck_assert_double_eq(hg_get(t, 1), 4); /* t[0][1] = x[1][0] */
    hg_tensor *x3 = hg_reshape(ctx, hg_arange(ctx, HG_F64, 24, 0, 1), 3, SHAPE(2, 3, 4));
    hg_tensor *p = hg_permute(ctx, x3, (const int[]){2, 0, 1}); /* [4,2,3] */
    ck_assert_int_eq(hg_tensor_dim(p, 0), 4);
    /* p[i][j][k] = x3[j][k][i] : p[1][1][2] = x3[1][2][1] = 12+8+1 = 21 */
    ck_assert_double_eq(hg_get(p, 1 * 6 + 1 * 3 + 2), 21);
    /* f32 sum accumulates accurately. */
    hg_tensor *many = hg_full(ctx, HG_F32, 1, SHAPE(1000000), 0.1);
    ck_assert_double_eq_tol(hg_item(hg_sum(ctx, many)), 100000.0, 1.0);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(derivatives)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 2, SHAPE(2, 3), 0.3, -1.2, 0.8, 1.5, -0.6, 2.2);
    const spec specs[] = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}, {2, 1, 1}, {2, -1, 0}, {3, 0, 1}, {3, 1, 0},
                          {4, 0, 0}, {5, 0, 0}, {6, 0, 0}, {7, 0, 0}, {8, 0, 0}, {9, 0, 0}, {10, 0, 0}};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "case %d axis %d keepdim %d", specs[i].which, specs[i].axis, specs[i].keepdim);
        check_gradients(ctx, call_spec, 1, &x, (void *)&specs[i], 3, what);
    }
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(errors)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = hg_ones(ctx, HG_F64, 2, SHAPE(2, 3));
    ck_assert_ptr_null(hg_sum_axis(ctx, x, 2, 0));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "axis"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_sum_to(ctx, x, 1, SHAPE(2)));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_broadcast_to(ctx, x, 2, SHAPE(3, 3)));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_reshape(ctx, x, 2, SHAPE(4, 2)));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "[2,3]"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_reshape(ctx, x, 2, SHAPE(-1, -1)));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_reshape(ctx, x, 2, NULL));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_permute(ctx, x, (const int[]){0, 0}));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_permute(ctx, x, NULL));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_sum(ctx, hg_arange(ctx, HG_I32, 3, 0, 1)));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_mean(ctx, NULL));
    ck_assert_ptr_null(hg_sum_axis(NULL, x, 0, 0));
    hg_ctx_free(ctx);
}
END_TEST

static Suite *reduce_shape_suite(void)
{
    Suite *s = suite_create("reduce_shape");
    TCase *tc = tcase_create("reduce_shape");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, values);
    tcase_add_test(tc, derivatives);
    tcase_add_test(tc, errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(reduce_shape_suite());
}
