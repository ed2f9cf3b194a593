/* Convolution, pooling and batched products: values against naive loops
 * (f32 and f64, stride/padding/dilation), the adjoint identities that tie
 * conv2d, conv2d_transpose and conv2d_weight_grad together, third-order
 * gradcheck in f64 and first order in f32, pooling ties and NaN, errors. */
#include "testutil.h"

#include <string.h>

static double naive_conv(hg_tensor *x, hg_tensor *w, const hg_conv2d_params *p, int64_t n, int64_t o, int64_t i,
                         int64_t j)
{
    int64_t C = hg_tensor_dim(x, 1), H = hg_tensor_dim(x, 2), W = hg_tensor_dim(x, 3);
    int64_t KH = hg_tensor_dim(w, 2), KW = hg_tensor_dim(w, 3);
    int sh = p->stride[0] ? p->stride[0] : 1, sw = p->stride[1] ? p->stride[1] : 1;
    int dh = p->dilation[0] ? p->dilation[0] : 1, dw = p->dilation[1] ? p->dilation[1] : 1;
    double s = 0;
    for (int64_t c = 0; c < C; c++)
        for (int64_t a = 0; a < KH; a++)
            for (int64_t b = 0; b < KW; b++) {
                int64_t ih = i * sh - p->padding[0] + a * dh, iw = j * sw - p->padding[1] + b * dw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                    continue;
                s += hg_get(x, ((n * C + c) * H + ih) * W + iw) * hg_get(w, ((o * C + c) * KH + a) * KW + b);
            }
    return s;
}

static const hg_conv2d_params geoms[] = {
    {{0, 0}, {0, 0}, {0, 0}},
    {{2, 1}, {1, 2}, {1, 1}},
    {{1, 2}, {2, 0}, {2, 1}},
    {{3, 2}, {1, 1}, {1, 2}},
};

START_TEST(conv_against_naive)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 11);
    for (size_t gi = 0; gi < sizeof geoms / sizeof geoms[0]; gi++)
        for (int f32 = 0; f32 < 2; f32++) {
            hg_dtype dt = f32 ? HG_F32 : HG_F64;
            hg_tensor *x = hg_rand_uniform(ctx, &rng, dt, 4, SHAPE(2, 3, 9, 8), -1, 1);
            hg_tensor *w = hg_rand_uniform(ctx, &rng, dt, 4, SHAPE(4, 3, 3, 2), -1, 1);
            hg_tensor *bias = hg_rand_uniform(ctx, &rng, dt, 1, SHAPE(4), -1, 1);
            hg_tensor *y = hg_conv2d(ctx, x, w, bias, &geoms[gi]);
            ck_assert_ctx_ok(ctx);
            ck_assert_int_eq(hg_tensor_dtype(y), dt);
            int64_t OH = hg_tensor_dim(y, 2), OW = hg_tensor_dim(y, 3);
            int sh = geoms[gi].stride[0] ? geoms[gi].stride[0] : 1;
            int dh = geoms[gi].dilation[0] ? geoms[gi].dilation[0] : 1;
            ck_assert_int_eq(OH, (9 + 2 * geoms[gi].padding[0] - dh * 2 - 1) / sh + 1);
            for (int64_t n = 0; n < 2; n++)
                for (int64_t o = 0; o < 4; o++)
                    for (int64_t i = 0; i < OH; i++)
                        for (int64_t j = 0; j < OW; j++) {
                            double want = naive_conv(x, w, &geoms[gi], n, o, i, j) + hg_get(bias, o);
                            double got = hg_get(y, ((n * 4 + o) * OH + i) * OW + j);
                            ck_assert_msg(fabs(got - want) <= (f32 ? 1e-5 : 1e-13), "geom %zu f32=%d: %g vs %g", gi,
                                          f32, got, want);
                        }
        }
    /* 1x1 kernel (the direct path) */
    hg_tensor *x = random_f64(ctx, &rng, 4, SHAPE(2, 3, 4, 5), -1, 1),
              *w = random_f64(ctx, &rng, 4, SHAPE(2, 3, 1, 1), -1, 1);
    hg_tensor *y = hg_conv2d(ctx, x, w, NULL, NULL);
    hg_conv2d_params p0 = {{0, 0}, {0, 0}, {0, 0}};
    ck_assert_double_eq_tol(hg_get(y, ((1 * 2 + 0) * 4 + 1) * 5 + 2), naive_conv(x, w, &p0, 1, 0, 1, 2), 1e-14);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

static double dot(hg_ctx *ctx, hg_tensor *a, hg_tensor *b)
{
    return hg_item(hg_sum(ctx, hg_mul(ctx, a, b)));
}

/* <conv(x, w), g> = <x, T_w(g)> = <w, W(x, g)> */
START_TEST(adjoint_identities)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 12);
    for (size_t gi = 0; gi < sizeof geoms / sizeof geoms[0]; gi++) {
        hg_tensor *x = random_f64(ctx, &rng, 4, SHAPE(2, 3, 9, 8), -1, 1);
        hg_tensor *w = random_f64(ctx, &rng, 4, SHAPE(4, 3, 3, 2), -1, 1);
        hg_tensor *y = hg_conv2d(ctx, x, w, NULL, &geoms[gi]);
        hg_tensor *g = hg_rand_uniform(ctx, &rng, HG_F64, 4, hg_tensor_shape(y), -1, 1);
        hg_tensor *z = hg_conv2d_transpose(ctx, g, w, 9, 8, &geoms[gi]);
        hg_tensor *dw = hg_conv2d_weight_grad(ctx, x, g, 3, 2, &geoms[gi]);
        ck_assert_ctx_ok(ctx);
        double lhs = dot(ctx, y, g);
        ck_assert_double_eq_tol(dot(ctx, x, z), lhs, 1e-12 * fmax(1, fabs(lhs)));
        ck_assert_double_eq_tol(dot(ctx, w, dw), lhs, 1e-12 * fmax(1, fabs(lhs)));
    }
    hg_ctx_free(ctx);
}
END_TEST

typedef struct conv_case {
    hg_conv2d_params p;
    int which; /* 0 conv2d (+bias), 1 transpose, 2 weight grad */
    int64_t s0, s1;
} conv_case;

static hg_tensor *cube_of(hg_ctx *ctx, hg_tensor *y)
{
    return hg_mul(ctx, y, hg_mul(ctx, y, y));
}

static hg_tensor *f_conv(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    const conv_case *c = user;
    hg_tensor *y = NULL;
    switch (c->which) {
    case 0: y = hg_conv2d(ctx, in[0], in[1], in[2], &c->p); break;
    case 1: y = hg_conv2d_transpose(ctx, in[0], in[1], c->s0, c->s1, &c->p); break;
    case 2: y = hg_conv2d_weight_grad(ctx, in[0], in[1], c->s0, c->s1, &c->p); break;
    }
    return cube_of(ctx, y);
}

START_TEST(conv_derivatives)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 13);
    for (size_t gi = 0; gi < sizeof geoms / sizeof geoms[0]; gi++) {
        conv_case c = {geoms[gi], 0, 0, 0};
        hg_tensor *x = random_f64(ctx, &rng, 4, SHAPE(2, 2, 5, 4), -1, 1);
        hg_tensor *w = random_f64(ctx, &rng, 4, SHAPE(2, 2, 2, 2), -1, 1);
        hg_tensor *in[3] = {x, w, random_f64(ctx, &rng, 1, SHAPE(2), -1, 1)};
        check_gradients(ctx, f_conv, 3, in, &c, 3, "conv2d");
        check_f32_first_order(ctx, f_conv, 3, in, &c, 1e-5, "conv2d f32");
        hg_tensor *y = hg_conv2d(ctx, x, w, NULL, &c.p);
        hg_tensor *g = hg_rand_uniform(ctx, &rng, HG_F64, 4, hg_tensor_shape(y), -1, 1);
        conv_case t = {geoms[gi], 1, 5, 4};
        hg_tensor *tin[2] = {g, w};
        check_gradients(ctx, f_conv, 2, tin, &t, 3, "conv2d_transpose");
        check_f32_first_order(ctx, f_conv, 2, tin, &t, 1e-5, "conv2d_transpose f32");
        conv_case wg = {geoms[gi], 2, 2, 2};
        hg_tensor *win[2] = {x, g};
        check_gradients(ctx, f_conv, 2, win, &wg, 3, "conv2d_weight_grad");
        check_f32_first_order(ctx, f_conv, 2, win, &wg, 1e-5, "conv2d_weight_grad f32");
    }
    hg_ctx_free(ctx);
}
END_TEST

static hg_tensor *f_pool(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    const hg_pool2d_params *p = user;
    hg_tensor *m = hg_max_pool2d(ctx, in[0], p), *a = hg_avg_pool2d(ctx, in[0], p);
    return hg_add(ctx, cube_of(ctx, m), cube_of(ctx, a));
}

START_TEST(pooling)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    /* 2x2 windows, stride 2, on a 1x1x4x4 plane with a tie */
    hg_tensor *x = T64(ctx, 4, SHAPE(1, 1, 4, 4), 1, 5, 2, 2, 3, 5, 0, 1, -1, -2, 7, 7, -3, -4, 7, 8);
    hg_pool2d_params p = {{2, 2}, {0, 0}, {0, 0}};
    hg_tensor *m = hg_max_pool2d(ctx, x, &p), *a = hg_avg_pool2d(ctx, x, &p);
    ck_assert_ctx_ok(ctx);
    const double wm[4] = {5, 2, -1, 8}, wa[4] = {3.5, 1.25, -2.5, 7.25};
    for (int i = 0; i < 4; i++) {
        ck_assert_double_eq(hg_get(m, i), wm[i]);
        ck_assert_double_eq(hg_get(a, i), wa[i]);
    }
    /* Gradient of sum(max_pool): 1 at each window's first maximum. */
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, x);
    hg_tensor *s = hg_sum(ctx, hg_max_pool2d(ctx, x, &p)), *dx;
    hg_tape_end(t);
    ck_assert_int_eq(hg_gradient(t, s, 1, &x, NULL, &dx), HG_OK);
    const double wd[16] = {0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1};
    for (int i = 0; i < 16; i++)
        ck_assert_double_eq(hg_get(dx, i), wd[i]);
    /* 3x3 windows, stride 2, padding 1: padding never wins, even for
     * all-negative windows; avg counts the padding. */
    hg_pool2d_params q = {{3, 3}, {2, 2}, {1, 1}};
    hg_tensor *neg = hg_full(ctx, HG_F64, 4, SHAPE(1, 1, 3, 3), -2.0);
    hg_tensor *mn = hg_max_pool2d(ctx, neg, &q), *an = hg_avg_pool2d(ctx, neg, &q);
    ck_assert_int_eq(hg_tensor_dim(mn, 2), 2);
    ck_assert_double_eq(hg_get(mn, 0), -2);
    ck_assert_double_eq_tol(hg_get(an, 0), -2.0 * 4 / 9, 1e-15);
    /* NaN wins and propagates. */
    hg_tensor *xn = T64(ctx, 4, SHAPE(1, 1, 2, 2), 1, NAN, 3, 4);
    ck_assert(isnan(hg_get(hg_max_pool2d(ctx, xn, &p), 0)));
    ck_assert_ctx_ok(ctx);
    /* Derivatives to third order (random values: no ties). */
    hg_rng rng;
    hg_rng_seed(&rng, 14);
    hg_tensor *r = random_f64(ctx, &rng, 4, SHAPE(2, 2, 5, 6), -1, 1);
    check_gradients(ctx, f_pool, 1, &r, &p, 3, "pool 2x2");
    check_gradients(ctx, f_pool, 1, &r, &q, 3, "pool 3x3 s2 p1");
    hg_pool2d_params o = {{2, 3}, {1, 2}, {1, 0}};
    check_gradients(ctx, f_pool, 1, &r, &o, 3, "pool 2x3 s1,2 p1,0");
    check_f32_first_order(ctx, f_pool, 1, &r, &q, 1e-5, "pool f32");
    hg_ctx_free(ctx);
}
END_TEST

typedef struct bmm_case {
    int ta, tb;
} bmm_case;

static hg_tensor *f_bmm(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    const bmm_case *c = user;
    return cube_of(ctx, hg_matmul_batched(ctx, in[0], in[1], c->ta, c->tb));
}

START_TEST(batched_matmul)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 15);
    /* a [2,1,3,4] @ b [3,4,5] -> [2,3,3,5], against per-batch hg_matmul */
    for (int f32 = 0; f32 < 2; f32++) {
        hg_dtype dt = f32 ? HG_F32 : HG_F64;
        hg_tensor *a = hg_rand_uniform(ctx, &rng, dt, 4, SHAPE(2, 1, 3, 4), -1, 1);
        hg_tensor *b = hg_rand_uniform(ctx, &rng, dt, 3, SHAPE(3, 4, 5), -1, 1);
        hg_tensor *c = hg_matmul_batched(ctx, a, b, 0, 0);
        ck_assert_ctx_ok(ctx);
        ck_assert_int_eq(hg_tensor_rank(c), 4);
        ck_assert_int_eq(hg_tensor_dim(c, 1), 3);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) {
                hg_tensor *ai = hg_reshape(ctx, hg_narrow(ctx, a, 0, i, 1), 2, SHAPE(3, 4));
                hg_tensor *bj = hg_reshape(ctx, hg_narrow(ctx, b, 0, j, 1), 2, SHAPE(4, 5));
                hg_tensor *want = hg_matmul(ctx, ai, bj);
                hg_tensor *got = hg_narrow(ctx, hg_narrow(ctx, c, 0, i, 1), 1, j, 1);
                for (int k = 0; k < 15; k++)
                    ck_assert_double_eq_tol(hg_get(got, k), hg_get(want, k), f32 ? 1e-6 : 1e-15);
            }
    }
    /* rank 2 with rank 3, both transposes */
    hg_tensor *m2 = random_f64(ctx, &rng, 2, SHAPE(4, 3), -1, 1), *b3 = random_f64(ctx, &rng, 3, SHAPE(2, 5, 4), -1, 1);
    hg_tensor *c2 = hg_matmul_batched(ctx, m2, b3, 1, 1);
    ck_assert_int_eq(hg_tensor_dim(c2, 0), 2);
    hg_tensor *w1 = hg_matmul_t(ctx, m2, hg_reshape(ctx, hg_narrow(ctx, b3, 0, 1, 1), 2, SHAPE(5, 4)), 1, 1);
    for (int k = 0; k < 15; k++)
        ck_assert_double_eq_tol(hg_get(c2, 15 + k), hg_get(w1, k), 1e-15);
    ck_assert_ctx_ok(ctx);
    /* derivatives: broadcasting batch axes, every transpose */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            bmm_case bc = {ta, tb};
            hg_tensor *in[2] = {random_f64(ctx, &rng, 4, ta ? SHAPE(2, 1, 3, 2) : SHAPE(2, 1, 2, 3), -1, 1),
                                random_f64(ctx, &rng, 3, tb ? SHAPE(2, 2, 3) : SHAPE(2, 3, 2), -1, 1)};
            check_gradients(ctx, f_bmm, 2, in, &bc, 3, "matmul_batched");
            check_f32_first_order(ctx, f_bmm, 2, in, &bc, 1e-5, "matmul_batched f32");
            hg_tensor *in2[2] = {random_f64(ctx, &rng, 2, ta ? SHAPE(3, 2) : SHAPE(2, 3), -1, 1), in[1]};
            check_gradients(ctx, f_bmm, 2, in2, &bc, 3, "matmul_batched rank 2 @ rank 3");
        }
    /* errors */
    ck_assert_ptr_null(hg_matmul_batched(ctx, hg_ones(ctx, HG_F64, 3, SHAPE(2, 3, 4)),
                                         hg_ones(ctx, HG_F64, 3, SHAPE(3, 4, 5)), 0, 0));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "batch axes of [2,3,4] and [3,4,5] do not broadcast"));
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(errors)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = hg_ones(ctx, HG_F64, 4, SHAPE(1, 3, 5, 5)), *w = hg_ones(ctx, HG_F64, 4, SHAPE(2, 2, 3, 3));
    ck_assert_ptr_null(hg_conv2d(ctx, x, w, NULL, NULL));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_conv2d: x [1,3,5,5] has 3 channels, w [2,2,3,3] expects 2"));
    hg_ctx_clear_error(ctx);
    hg_tensor *big = hg_ones(ctx, HG_F64, 4, SHAPE(2, 3, 7, 7));
    ck_assert_ptr_null(hg_conv2d(ctx, x, big, NULL, NULL));
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "does not fit input [1,3,5,5]"));
    hg_ctx_clear_error(ctx);
    hg_tensor *w3 = hg_ones(ctx, HG_F64, 4, SHAPE(2, 3, 3, 3));
    ck_assert_ptr_null(hg_conv2d(ctx, x, w3, hg_ones(ctx, HG_F64, 1, SHAPE(3)), NULL));
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "bias [3] does not match w [2,3,3,3]"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_conv2d_transpose(ctx, hg_ones(ctx, HG_F64, 4, SHAPE(1, 2, 3, 3)), w3, 6, 5, NULL));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_conv2d_transpose: an input of 6x5"));
    hg_ctx_clear_error(ctx);
    hg_pool2d_params p = {{3, 3}, {1, 1}, {2, 0}};
    ck_assert_ptr_null(hg_max_pool2d(ctx, x, &p));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_max_pool2d"));
    hg_ctx_free(ctx);
}
END_TEST

static Suite *conv_suite(void)
{
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("conv");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, conv_against_naive);
    tcase_add_test(tc, adjoint_identities);
    tcase_add_test(tc, conv_derivatives);
    tcase_add_test(tc, pooling);
    tcase_add_test(tc, batched_matmul);
    tcase_add_test(tc, errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(conv_suite());
}
