/* Matrix product: values, all four transpose variants to third order,
 * f32 and f64 against a naive loop, zero-sized operands, errors. */
#include "testutil.h"

#include <stdbool.h>
#include <string.h>

#include <string.h>

typedef struct flags {
    int ta, tb;
} flags;

static hg_tensor *call_matmul(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    const flags *f = user;
    /* Square the product so that the second and third derivatives are not
     * trivially zero (matmul itself is bilinear). */
    hg_tensor *c = hg_matmul_t(ctx, in[0], in[1], f->ta, f->tb);
    return hg_mul(ctx, c, c);
}

START_TEST(values)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *a = T64(ctx, 2, SHAPE(2, 3), 1, 2, 3, 4, 5, 6);
    hg_tensor *b = T64(ctx, 2, SHAPE(3, 2), 7, 8, 9, 10, 11, 12);
    hg_tensor *c = hg_matmul(ctx, a, b);
    const double want[4] = {58, 64, 139, 154};
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq(hg_get(c, i), want[i]);
    /* (A^T)^T B^T^T: the same product through the flags. */
    hg_tensor *at = hg_transpose(ctx, a), *bt = hg_transpose(ctx, b);
    hg_tensor *c2 = hg_matmul_t(ctx, at, bt, 1, 1);
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq(hg_get(c2, i), want[i]);
    ck_assert_double_eq(hg_get(hg_matmul_t(ctx, at, b, 1, 0), 3), 154);
    ck_assert_double_eq(hg_get(hg_matmul_t(ctx, a, bt, 0, 1), 1), 64);
    /* f32 */
    hg_tensor *cf = hg_matmul(ctx, hg_cast(ctx, a, HG_F32), hg_cast(ctx, b, HG_F32));
    ck_assert_int_eq(hg_tensor_dtype(cf), HG_F32);
    ck_assert_float_eq(hg_tensor_cf32(cf)[2], 139.0f);
    /* Zero-sized: [2,0] @ [0,3] = zeros [2,3]; [0,3] @ [3,2] = [0,2]. */
    hg_tensor *z = hg_matmul(ctx, hg_ones(ctx, HG_F64, 2, SHAPE(2, 0)), hg_ones(ctx, HG_F64, 2, SHAPE(0, 3)));
    ck_assert_int_eq(hg_tensor_numel(z), 6);
    ck_assert_double_eq(hg_item(hg_sum(ctx, hg_abs(ctx, z))), 0);
    ck_assert_int_eq(hg_tensor_numel(hg_matmul(ctx, hg_ones(ctx, HG_F64, 2, SHAPE(0, 3)), b)), 0);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(derivatives_all_transposes)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 5);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            /* op(A) [2,3], op(B) [3,4] */
            hg_tensor *in[2] = {random_f64(ctx, &rng, 2, ta ? SHAPE(3, 2) : SHAPE(2, 3), -1, 1),
                                random_f64(ctx, &rng, 2, tb ? SHAPE(4, 3) : SHAPE(3, 4), -1, 1)};
            flags f = {ta, tb};
            char what[32];
            snprintf(what, sizeof what, "matmul ta=%d tb=%d", ta, tb);
            check_gradients(ctx, call_matmul, 2, in, &f, 3, what);
        }
    hg_ctx_free(ctx);
}
END_TEST

/* Larger products in f32 and f64, all four flags, against a naive loop. */
START_TEST(against_naive)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 21);
    const int64_t m = 17, k = 23, n = 9;
    for (int f32 = 0; f32 < 2; f32++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                hg_dtype dt = f32 ? HG_F32 : HG_F64;
                hg_tensor *a = hg_rand_uniform(ctx, &rng, dt, 2, ta ? SHAPE(k, m) : SHAPE(m, k), -1, 1);
                hg_tensor *b = hg_rand_uniform(ctx, &rng, dt, 2, tb ? SHAPE(n, k) : SHAPE(k, n), -1, 1);
                hg_tensor *c = hg_matmul_t(ctx, a, b, ta, tb);
                ck_assert_ctx_ok(ctx);
                ck_assert_int_eq(hg_tensor_dtype(c), dt);
                ck_assert_int_eq(hg_tensor_dim(c, 0), m);
                ck_assert_int_eq(hg_tensor_dim(c, 1), n);
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j < n; j++) {
                        double want = 0;
                        for (int64_t p = 0; p < k; p++)
                            want += hg_get(a, ta ? p * m + i : i * k + p) * hg_get(b, tb ? j * k + p : p * n + j);
                        ck_assert_msg(fabs(hg_get(c, i * n + j) - want) <= (f32 ? 1e-5 : 1e-13),
                                      "f32=%d ta=%d tb=%d (%lld,%lld)", f32, ta, tb, (long long)i, (long long)j);
                    }
            }
    /* Zero-sized with transposes: [0,2]^T @ [0,3] = zeros [2,3]. */
    hg_tensor *z = hg_matmul_t(ctx, hg_ones(ctx, HG_F32, 2, SHAPE(0, 2)), hg_ones(ctx, HG_F32, 2, SHAPE(0, 3)), 1, 0);
    ck_assert_int_eq(hg_tensor_dim(z, 0), 2);
    ck_assert_int_eq(hg_tensor_dim(z, 1), 3);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(hg_tensor_cf32(z)[i], 0.0f);
    ck_assert_int_eq(hg_tensor_numel(hg_matmul_t(ctx, hg_ones(ctx, HG_F64, 2, SHAPE(3, 0)),
                                                 hg_ones(ctx, HG_F64, 2, SHAPE(4, 3)), 1, 1)),
                     0);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* The gradient of a zero-sized product is a zero-sized tensor, and the
 * gradient through [2,0] @ [0,3] is zero-sized too. */
START_TEST(zero_sized_gradient)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *a = hg_ones(ctx, HG_F64, 2, SHAPE(2, 0)), *b = hg_ones(ctx, HG_F64, 2, SHAPE(0, 3));
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_tensor *src[2] = {a, b}, *g[2];
    hg_watch_n(t, 2, src);
    hg_tensor *y = hg_sum(ctx, hg_matmul(ctx, a, b));
    hg_tape_end(t);
    ck_assert_int_eq(hg_gradient(t, y, 2, src, NULL, g), HG_OK);
    ck_assert_int_eq(hg_tensor_dim(g[0], 0), 2);
    ck_assert_int_eq(hg_tensor_dim(g[0], 1), 0);
    ck_assert_int_eq(hg_tensor_dim(g[1], 0), 0);
    ck_assert_int_eq(hg_tensor_dim(g[1], 1), 3);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(errors)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *a = hg_ones(ctx, HG_F64, 2, SHAPE(2, 3));
    hg_tensor *b = hg_ones(ctx, HG_F64, 2, SHAPE(4, 5));
    ck_assert_ptr_null(hg_matmul(ctx, a, b));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_matmul: inner dimensions differ: [2,3] @ [4,5]"));
    hg_ctx_clear_error(ctx);
    /* With flags the message shows the transposes. */
    ck_assert_ptr_null(hg_matmul_t(ctx, a, a, 0, 0));
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "[2,3] @ [2,3]"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_matmul_t(ctx, a, a, 1, 1));
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "[2,3]^T @ [2,3]^T"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_nonnull(hg_matmul_t(ctx, a, a, 0, 1)); /* [2,3] @ [3,2] */
    ck_assert_ptr_nonnull(hg_matmul_t(ctx, a, a, 1, 0)); /* [3,2] @ [2,3] */
    ck_assert_ptr_null(hg_matmul(ctx, a, hg_ones(ctx, HG_F64, 1, SHAPE(3))));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_matmul"));
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "2-D"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_matmul(ctx, a, hg_ones(ctx, HG_F32, 2, SHAPE(3, 2))));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_matmul: mixed dtypes f64 and f32"));
    hg_ctx_clear_error(ctx);
    hg_tensor *ia = hg_reshape(ctx, hg_arange(ctx, HG_I32, 6, 0, 1), 2, SHAPE(3, 2));
    ck_assert_ptr_null(hg_matmul(ctx, ia, ia));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "i32"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_matmul(ctx, NULL, a));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_matmul"));
    /* A NULL input keeps the first error. */
    ck_assert_ptr_null(hg_matmul(ctx, a, b));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    ck_assert_ptr_null(hg_matmul(NULL, a, a));
    ck_assert_ptr_null(hg_matmul_t(NULL, a, a, 0, 1));
    hg_ctx_free(ctx);
}
END_TEST

/* The backend: products small enough for libxsmm (when built with it) run
 * there, large ones and alpha/beta products CBLAS; both agree with a naive
 * product, and the same call gives the same bits twice. */
typedef struct seen {
    int n, xsmm;
    hg_gemm_event last;
} seen;

static void observe(void *user, const hg_gemm_event *ev)
{
    seen *s = user;
    s->n++;
    s->xsmm += ev->backend == 1;
    s->last = *ev;
}

START_TEST(backend_and_observer)
{
    const char *name = hg_matmul_backend();
    ck_assert_ptr_nonnull(name);
    bool xsmm = strncmp(name, "libxsmm", 7) == 0;
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 31);
    seen s = {0, 0, {0}};
    hg_set_gemm_observer(observe, &s);
    const int64_t sizes[2][3] = {{12, 40, 9}, {70, 80, 90}}; /* m, k, n: 4320 and 504000 multiply-adds */
    for (int big = 0; big < 2; big++)
        for (int f32 = 0; f32 < 2; f32++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++) {
                    int64_t m = sizes[big][0], k = sizes[big][1], n = sizes[big][2];
                    hg_dtype dt = f32 ? HG_F32 : HG_F64;
                    hg_tensor *a = hg_rand_uniform(ctx, &rng, dt, 2, ta ? SHAPE(k, m) : SHAPE(m, k), -1, 1);
                    hg_tensor *b = hg_rand_uniform(ctx, &rng, dt, 2, tb ? SHAPE(n, k) : SHAPE(k, n), -1, 1);
                    int before = s.xsmm;
                    hg_tensor *c = hg_matmul_t(ctx, a, b, ta, tb), *c2 = hg_matmul_t(ctx, a, b, ta, tb);
                    ck_assert_ctx_ok(ctx);
                    ck_assert_int_eq(s.last.m, m);
                    ck_assert_int_eq(s.last.n, n);
                    ck_assert_int_eq(s.last.k, k);
                    ck_assert_int_eq(s.last.trans_a, ta);
                    ck_assert_int_eq(s.last.trans_b, tb);
                    ck_assert_int_eq(s.xsmm - before, xsmm && !big ? 2 : 0);
                    size_t bytes = (size_t)(m * n) * (f32 ? 4 : 8);
                    ck_assert_int_eq(memcmp(hg_tensor_cdata(c), hg_tensor_cdata(c2), bytes), 0);
                    for (int64_t i = 0; i < m; i += 5)
                        for (int64_t j = 0; j < n; j += 3) {
                            double want = 0;
                            for (int64_t p = 0; p < k; p++)
                                want += hg_get(a, ta ? p * m + i : i * k + p) * hg_get(b, tb ? j * k + p : p * n + j);
                            ck_assert_msg(fabs(hg_get(c, i * n + j) - want) <= (f32 ? 1e-4 : 1e-12),
                                          "big=%d f32=%d ta=%d tb=%d", big, f32, ta, tb);
                        }
                }
    ck_assert_int_eq(s.n, 32);
    hg_set_gemm_observer(NULL, NULL);
    hg_matmul(ctx, hg_ones(ctx, HG_F64, 2, SHAPE(2, 2)), hg_ones(ctx, HG_F64, 2, SHAPE(2, 2)));
    ck_assert_int_eq(s.n, 32);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

static Suite *matmul_suite(void)
{
    Suite *s = suite_create("matmul");
    TCase *tc = tcase_create("matmul");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, values);
    tcase_add_test(tc, derivatives_all_transposes);
    tcase_add_test(tc, against_naive);
    tcase_add_test(tc, zero_sized_gradient);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, backend_and_observer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(matmul_suite());
}
