/* hg_tensor_copy_to (across ctxs), hg_tensor_print (small, summarised,
 * special values, errors), hg_version and the version macros. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

START_TEST(copy_between_ctxs)
{
    hg_ctx *a = hg_ctx_new(NULL), *b = hg_ctx_new(NULL);
    hg_tensor *x = T64(a, 2, SHAPE(2, 2), 1, 2, 3, 4);
    /* clone refuses another ctx's tensor; copy_to does not */
    ck_assert_ptr_null(hg_tensor_clone(b, x));
    ck_assert_int_eq(hg_ctx_status(b), HG_ERR_INVALID);
    hg_ctx_clear_error(b);
    hg_tensor *y = hg_tensor_copy_to(b, x);
    ck_assert_ctx_ok(b);
    ck_assert_ptr_eq(hg_tensor_ctx(y), b);
    ck_assert_int_eq(hg_tensor_dim(y, 1), 2);
    ck_assert_double_eq(hg_get(y, 3), 4);
    /* a copy, not a view, and it outlives the source ctx */
    hg_tensor_f64(x)[3] = 9;
    ck_assert_double_eq(hg_get(y, 3), 4);
    hg_tensor *l = hg_tensor_copy_to(b, hg_arange(a, HG_I32, 3, 5, 1));
    hg_ctx_free(a);
    ck_assert_double_eq(hg_get(y, 0), 1);
    ck_assert_int_eq(hg_tensor_ci32(l)[2], 7);
    /* usable in ops of b, untracked (a constant) */
    hg_tape *t = hg_tape_begin(b, 0);
    hg_tensor *w = hg_ones(b, HG_F64, 2, SHAPE(2, 2));
    hg_watch(t, w);
    hg_tensor *s = hg_sum(b, hg_mul(b, w, y)), *g[2];
    hg_tape_end(t);
    hg_tensor *src[2] = {w, y};
    ck_assert_int_eq(hg_gradient(t, s, 2, src, NULL, g), HG_OK);
    ck_assert_double_eq(hg_get(g[0], 2), 3);
    ck_assert_double_eq(hg_get(g[1], 2), 0); /* y is not watched: zero */
    /* errors */
    ck_assert_ptr_null(hg_tensor_copy_to(b, NULL));
    ck_assert_int_eq(hg_ctx_status(b), HG_ERR_NULL);
    hg_ctx_clear_error(b);
    hg_mark m = hg_ctx_mark(b);
    hg_tensor *gone = hg_ones(b, HG_F64, 1, SHAPE(2));
    hg_ctx_rewind(b, m);
    ck_assert_ptr_null(hg_tensor_copy_to(b, gone));
    ck_assert_int_eq(hg_ctx_status(b), HG_ERR_STALE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(b), "hg_tensor_copy_to"));
    ck_assert_ptr_null(hg_tensor_copy_to(NULL, y));
    hg_ctx_free(b);
}
END_TEST

/* Print into memory and return the text (freed by the caller). */
static char *printed(const hg_tensor *t, int edge, hg_status *st)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    *st = hg_tensor_print(f, t, edge);
    fclose(f);
    return buf;
}

START_TEST(printing)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_status st;
    char *s = printed(T64(ctx, 2, SHAPE(2, 3), 1, 2.5, -3, 4, 1e-7, 6), 0, &st);
    ck_assert_int_eq(st, HG_OK);
    ck_assert_str_eq(s, "[2,3] f64\n[[1, 2.5, -3],\n [4, 1e-07, 6]]\n");
    free(s);
    s = printed(hg_scalar(ctx, HG_F32, 0.25), 0, &st);
    ck_assert_str_eq(s, "[] f32\n0.25\n");
    free(s);
    s = printed(T64(ctx, 1, SHAPE(3), NAN, INFINITY, -INFINITY), 0, &st);
    ck_assert_str_eq(s, "[3] f64\n[nan, inf, -inf]\n");
    free(s);
    s = printed(hg_reshape(ctx, hg_arange(ctx, HG_I32, 8, 0, 1), 3, SHAPE(2, 2, 2)), 0, &st);
    ck_assert_str_eq(s, "[2,2,2] i32\n[[[0, 1],\n  [2, 3]],\n\n [[4, 5],\n  [6, 7]]]\n");
    free(s);
    s = printed(hg_zeros(ctx, HG_F64, 2, SHAPE(2, 0)), 0, &st);
    ck_assert_str_eq(s, "[2,0] f64\n[[],\n []]\n");
    free(s);
    /* Large: summarised, 2 edge items per axis */
    s = printed(hg_reshape(ctx, hg_arange(ctx, HG_F64, 2000, 0, 1), 2, SHAPE(40, 50)), 2, &st);
    ck_assert_int_eq(st, HG_OK);
    ck_assert_str_eq(s, "[40,50] f64\n[[0, 1, ..., 48, 49],\n [50, 51, ..., 98, 99],\n ...,\n"
                        " [1900, 1901, ..., 1948, 1949],\n [1950, 1951, ..., 1998, 1999]]\n");
    free(s);
    /* default edge items: 3 */
    s = printed(hg_arange(ctx, HG_F64, 1001, 0, 1), 0, &st);
    ck_assert_str_eq(s, "[1001] f64\n[0, 1, 2, ..., 998, 999, 1000]\n");
    free(s);
    ck_assert_ctx_ok(ctx);
    /* errors */
    ck_assert_int_eq(hg_tensor_print(stdout, NULL, 0), HG_ERR_NULL);
    ck_assert_int_eq(hg_tensor_print(NULL, hg_scalar(ctx, HG_F64, 1), 0), HG_ERR_NULL);
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    FILE *ro = fopen("/dev/null", "r");
    ck_assert_ptr_nonnull(ro);
    ck_assert_int_eq(hg_tensor_print(ro, hg_scalar(ctx, HG_F64, 1), 0), HG_ERR_IO);
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_IO);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_tensor_print"));
    fclose(ro);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(version)
{
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", HG_VERSION_MAJOR, HG_VERSION_MINOR, HG_VERSION_PATCH);
    ck_assert_str_eq(want, HG_VERSION_STRING);
    ck_assert_str_eq(hg_version(), HG_VERSION_STRING);
    ck_assert_str_eq(hg_version(), HG_PROJECT_VERSION); /* meson's project version */
    ck_assert_int_eq(hg_version_number(), HG_VERSION_NUMBER);
    ck_assert_int_eq(HG_VERSION_NUMBER, HG_VERSION_MAJOR * 10000 + HG_VERSION_MINOR * 100 + HG_VERSION_PATCH);
}
END_TEST

static Suite *util_suite(void)
{
    Suite *s = suite_create("tensor_util");
    TCase *tc = tcase_create("tensor_util");
    tcase_add_test(tc, copy_between_ctxs);
    tcase_add_test(tc, printing);
    tcase_add_test(tc, version);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(util_suite());
}
