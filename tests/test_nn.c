/* nn and losses: dense/MLP forward values, initialisation, softmax
 * cross-entropy and MSE against hand-computed values and to third order,
 * accuracy, errors. */
#include "testutil.h"

#include <stdbool.h>
#include <string.h>

START_TEST(dense_and_mlp)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 2, SHAPE(2, 2), 1, 2, 3, 4);
    hg_tensor *W = T64(ctx, 2, SHAPE(2, 3), 1, 0, -1, 0, 1, 1);
    hg_tensor *b = T64(ctx, 1, SHAPE(3), 0.5, -0.5, 0);
    hg_tensor *y = hg_dense(ctx, x, W, b);
    const double want[6] = {1.5, 1.5, 1, 3.5, 3.5, 1};
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(hg_get(y, i), want[i]);
    ck_assert_double_eq(hg_get(hg_dense(ctx, x, W, NULL), 2), 1);
    ck_assert_double_eq(hg_get(hg_activate(ctx, T64(ctx, 1, SHAPE(2), -1, 2), HG_ACT_RELU), 0), 0);
    ck_assert_ptr_null(hg_activate(ctx, x, (hg_activation)42));
    hg_ctx_clear_error(ctx);

    hg_mlp spec = {3, {784, 64, 64, 10}, HG_ACT_RELU};
    ck_assert_int_eq(hg_mlp_param_count(&spec), 6);
    hg_rng rng;
    hg_rng_seed(&rng, 1);
    hg_tensor *p[6];
    ck_assert_int_eq(hg_mlp_init(ctx, &spec, HG_F32, HG_INIT_HE, &rng, p), HG_OK);
    ck_assert_int_eq(hg_tensor_dim(p[0], 0), 784);
    ck_assert_int_eq(hg_tensor_dim(p[4], 1), 10);
    ck_assert_int_eq(hg_tensor_numel(p[5]), 10);
    /* He: std sqrt(2/784) = 0.0505 */
    hg_tensor *w64 = hg_cast(ctx, p[0], HG_F64);
    double var = hg_item(hg_mean(ctx, hg_mul(ctx, w64, w64)));
    ck_assert_double_le(fabs(sqrt(var) - sqrt(2.0 / 784)), 0.002);
    ck_assert_double_eq(hg_item(hg_sum(ctx, hg_abs(ctx, hg_cast(ctx, p[1], HG_F64)))), 0);
    hg_mlp tanh_spec = {2, {4, 5, 3}, HG_ACT_TANH};
    hg_tensor *q[4];
    ck_assert_int_eq(hg_mlp_init(ctx, &tanh_spec, HG_F64, HG_INIT_GLOROT, &rng, q), HG_OK);
    double a = sqrt(6.0 / 9);
    for (int i = 0; i < 20; i++)
        ck_assert(fabs(hg_get(q[0], i)) <= a);
    hg_tensor *logits = hg_mlp_forward(ctx, &spec, p, hg_zeros(ctx, HG_F32, 2, SHAPE(5, 784)));
    ck_assert_int_eq(hg_tensor_dim(logits, 0), 5);
    ck_assert_int_eq(hg_tensor_dim(logits, 1), 10);
    ck_assert_ctx_ok(ctx);
    /* Bad specs and inputs. */
    hg_mlp bad = {0, {0}, HG_ACT_RELU};
    ck_assert_int_eq(hg_mlp_param_count(&bad), -1);
    ck_assert_int_eq(hg_mlp_init(ctx, &bad, HG_F32, HG_INIT_HE, &rng, p), HG_ERR_INVALID);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_mlp_init(ctx, &spec, HG_I32, HG_INIT_HE, &rng, p), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_mlp_init(ctx, &spec, HG_F32, HG_INIT_HE, NULL, p), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_mlp_forward(ctx, &spec, p, hg_zeros(ctx, HG_F32, 2, SHAPE(5, 700))));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(cross_entropy_values)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *z = T64(ctx, 2, SHAPE(2, 3), 1, 2, 3, 0, 0, 1000);
    hg_tensor *y = hg_tensor_from(ctx, HG_I32, 1, SHAPE(2), (const int32_t[]){0, 2});
    hg_tensor *each = hg_softmax_cross_entropy_each(ctx, z, y);
    double lse = log(exp(1) + exp(2) + exp(3));
    ck_assert_double_eq_tol(hg_get(each, 0), lse - 1, 1e-15);
    ck_assert_double_eq_tol(hg_get(each, 1), 0, 1e-15); /* stable with 1000 */
    ck_assert_double_eq_tol(hg_item(hg_softmax_cross_entropy(ctx, z, y)), (lse - 1) / 2, 1e-15);
    hg_tensor *f = hg_softmax_cross_entropy_each(ctx, hg_cast(ctx, z, HG_F32), y);
    ck_assert_float_eq_tol(hg_tensor_cf32(f)[0], (float)(lse - 1), 1e-6f);
    /* MSE */
    ck_assert_double_eq(hg_item(hg_mse(ctx, T64(ctx, 1, SHAPE(2), 1, 2), T64(ctx, 1, SHAPE(2), 0, 4))), 2.5);
    /* accuracy */
    hg_tensor *lab = hg_tensor_from(ctx, HG_I32, 1, SHAPE(2), (const int32_t[]){2, 0});
    ck_assert_double_eq(hg_accuracy(ctx, z, lab), 0.5);
    ck_assert_ctx_ok(ctx);
    /* errors */
    hg_tensor *bad = hg_tensor_from(ctx, HG_I32, 1, SHAPE(2), (const int32_t[]){0, 3});
    ck_assert_ptr_null(hg_softmax_cross_entropy(ctx, z, bad));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "label 3"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_softmax_cross_entropy(ctx, z, z));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_mse(ctx, z, hg_ones(ctx, HG_F64, 1, SHAPE(3))));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    ck_assert(isnan(hg_accuracy(ctx, z, z)));
    ck_assert_int_ne(hg_ctx_status(ctx), HG_OK);
    hg_ctx_free(ctx);
}
END_TEST

/* d(mean CE)/dz = (softmax(z) - onehot(y)) / n, by hand. */
START_TEST(cross_entropy_gradient_by_hand)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *z = T64(ctx, 2, SHAPE(2, 3), 1, 2, 3, 0, 0, 0);
    hg_tensor *y = hg_tensor_from(ctx, HG_I32, 1, SHAPE(2), (const int32_t[]){0, 2});
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, z);
    hg_tensor *loss = hg_softmax_cross_entropy(ctx, z, y);
    hg_tape_end(t);
    hg_tensor *dz;
    ck_assert_int_eq(hg_gradient(t, loss, 1, &z, NULL, &dz), HG_OK);
    double s = exp(1) + exp(2) + exp(3);
    const double want[6] = {(exp(1) / s - 1) / 2, exp(2) / s / 2, exp(3) / s / 2, 1.0 / 6, 1.0 / 6, (1.0 / 3 - 1) / 2};
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq_tol(hg_get(dz, i), want[i], 1e-15);
    /* f32 with huge logits stays finite and matches f64 */
    hg_tensor *big = T64(ctx, 2, SHAPE(1, 3), 1e4, -1e4, 3e4);
    hg_tensor *y0 = hg_tensor_from(ctx, HG_I32, 1, SHAPE(1), (const int32_t[]){0});
    hg_tensor *l32 = hg_softmax_cross_entropy_each(ctx, hg_cast(ctx, big, HG_F32), y0);
    ck_assert_float_eq(hg_tensor_cf32(l32)[0], 2e4f);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* Every entry point rejects bad input with a clean error (never aborts). */
START_TEST(nn_errors)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 2, SHAPE(2, 2), 1, 2, 3, 4);
    hg_tensor *W = T64(ctx, 2, SHAPE(2, 3), 1, 0, -1, 0, 1, 1);
    hg_tensor *b = T64(ctx, 1, SHAPE(3), 0.5, -0.5, 0);
    /* hg_dense: bias of the wrong shape (would broadcast), mixed dtypes, NULL */
    ck_assert_ptr_null(hg_dense(ctx, x, W, hg_zeros(ctx, HG_F64, 2, SHAPE(2, 3))));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_dense"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_dense(ctx, x, hg_cast(ctx, W, HG_F32), NULL));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_dense(ctx, NULL, W, b));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_dense(NULL, x, W, b));
    ck_assert_ptr_null(hg_activate(ctx, NULL, HG_ACT_NONE));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    /* hg_mlp_forward: parameters that multiply but do not match the spec */
    hg_mlp spec = {2, {2, 3, 2}, HG_ACT_RELU};
    hg_tensor *p[4] = {W, b, hg_zeros(ctx, HG_F64, 2, SHAPE(3, 4)), hg_zeros(ctx, HG_F64, 1, SHAPE(4))};
    ck_assert_ptr_null(hg_mlp_forward(ctx, &spec, p, x));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "layer 2"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_mlp_forward(ctx, &spec, NULL, x));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    hg_mlp bad_act = {2, {2, 3, 2}, (hg_activation)9};
    ck_assert_int_eq(hg_mlp_param_count(&bad_act), -1);
    ck_assert_ptr_null(hg_mlp_forward(ctx, &bad_act, p, x));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_INVALID);
    hg_ctx_clear_error(ctx);
    hg_mlp too_deep = {HG_MLP_MAX_LAYERS + 1, {1}, HG_ACT_RELU};
    ck_assert_int_eq(hg_mlp_param_count(&too_deep), -1);
    ck_assert_int_eq(hg_mlp_param_count(NULL), -1);
    hg_rng rng;
    hg_rng_seed(&rng, 3);
    ck_assert_int_eq(hg_mlp_init(ctx, &spec, HG_F64, (hg_init)5, &rng, p), HG_ERR_INVALID);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_mlp_init(NULL, &spec, HG_F64, HG_INIT_HE, &rng, p), HG_ERR_NULL);
    /* losses: NULL inputs, rank, NaN accuracy for an empty batch */
    hg_tensor *y = hg_tensor_from(ctx, HG_I32, 1, SHAPE(2), (const int32_t[]){0, 1});
    ck_assert_ptr_null(hg_softmax_cross_entropy(ctx, NULL, y));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_softmax_cross_entropy(ctx, hg_reshape(ctx, x, 1, SHAPE(4)), y));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    hg_tensor *neg = hg_tensor_from(ctx, HG_I32, 1, SHAPE(2), (const int32_t[]){-1, 0});
    ck_assert_ptr_null(hg_softmax_cross_entropy(ctx, x, neg));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_mse(ctx, x, NULL));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert(isnan(hg_accuracy(ctx, hg_zeros(ctx, HG_F64, 2, SHAPE(0, 3)),
                                hg_tensor_from(ctx, HG_I32, 1, SHAPE(0), (const int32_t[]){0}))));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    ck_assert(isnan(hg_accuracy(NULL, x, y)));
    /* f32 accuracy, with a tie going to the first class */
    hg_tensor *z32 = hg_cast(ctx, T64(ctx, 2, SHAPE(2, 2), 1, 1, 0, 2), HG_F32);
    ck_assert_double_eq(hg_accuracy(ctx, z32, y), 1.0);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

static hg_tensor *ce_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    return hg_softmax_cross_entropy_each(ctx, in[0], in[1]);
}

static hg_tensor *mse_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    return hg_mse(ctx, hg_tanh(ctx, in[0]), in[1]);
}

/* A tiny MLP loss as a function of all its parameters and the input. */
static hg_tensor *mlp_loss(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    const hg_mlp *spec = user;
    return hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, spec, in, in[4]), in[5]);
}

START_TEST(loss_derivatives)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 4);
    hg_tensor *ce[2] = {random_f64(ctx, &rng, 2, SHAPE(3, 4), -2, 2),
                        hg_tensor_from(ctx, HG_I32, 1, SHAPE(3), (const int32_t[]){1, 3, 0})};
    check_gradients(ctx, ce_fn, 2, ce, NULL, 3, "softmax cross-entropy");
    hg_tensor *ms[2] = {random_f64(ctx, &rng, 2, SHAPE(2, 3), -1, 1), random_f64(ctx, &rng, 2, SHAPE(2, 3), -1, 1)};
    check_gradients(ctx, mse_fn, 2, ms, NULL, 3, "mse");
    hg_mlp spec = {2, {3, 4, 3}, HG_ACT_TANH};
    hg_tensor *in[6];
    hg_mlp_init(ctx, &spec, HG_F64, HG_INIT_GLOROT, &rng, in);
    in[1] = random_f64(ctx, &rng, 1, SHAPE(4), -0.3, 0.3);
    in[4] = random_f64(ctx, &rng, 2, SHAPE(2, 3), -1, 1);
    in[5] = hg_tensor_from(ctx, HG_I32, 1, SHAPE(2), (const int32_t[]){2, 0});
    check_gradients(ctx, mlp_loss, 6, in, &spec, 2, "tanh MLP loss");
    hg_ctx_free(ctx);
}
END_TEST

/* The relu MLP with hg_dense and hg_relu as separate ops (matmul, add,
 * relu): the composed form of the fused dense op. */
static hg_tensor *composed_mlp(hg_ctx *ctx, const hg_mlp *spec, hg_tensor *const *p, hg_tensor *x)
{
    hg_tensor *h = x;
    for (int l = 0; l < spec->n_layers; l++) {
        h = hg_add(ctx, hg_matmul(ctx, h, p[2 * l]), p[2 * l + 1]);
        if (l + 1 < spec->n_layers)
            h = hg_relu(ctx, h);
    }
    return h;
}

/* d loss / d(params, x) with the fused or the composed layers. */
static void mlp_grads(hg_ctx *ctx, const hg_mlp *spec, hg_tensor *const *in, bool fused, hg_tensor **g)
{
    hg_tape *tape = hg_tape_begin(ctx, 0);
    hg_watch_n(tape, 7, in);
    hg_tensor *z = fused ? hg_mlp_forward(ctx, spec, in, in[6]) : composed_mlp(ctx, spec, in, in[6]);
    hg_tensor *L = hg_softmax_cross_entropy(ctx, z, in[7]);
    hg_tape_end(tape);
    ck_assert_int_eq(hg_gradient(tape, L, 7, in, NULL, g), HG_OK);
}

/* Loss of the MLP `user` with params in[0 .. 2L), x in[2L], labels in[2L + 1]. */
static hg_tensor *relu_mlp_loss(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    const hg_mlp *spec = user;
    int n = 2 * spec->n_layers;
    return hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, spec, in, in[n]), in[n + 1]);
}

/* hg_dense and the relu layers of hg_mlp_forward are one op each
 * (src/ops/dense.c): values and cotangents equal the composed ops' bit for
 * bit, and the op differentiates to third order (f64) and first (f32). */
START_TEST(dense_op_matches_composed)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 11);
    hg_mlp spec = {3, {20, 16, 12, 5}, HG_ACT_RELU};
    hg_tensor *in[8];
    ck_assert_int_eq(hg_mlp_init(ctx, &spec, HG_F64, HG_INIT_HE, &rng, in), HG_OK);
    for (int l = 0; l < 3; l++)
        in[2 * l + 1] = random_f64(ctx, &rng, 1, SHAPE(spec.sizes[l + 1]), -0.2, 0.2);
    in[6] = random_f64(ctx, &rng, 2, SHAPE(9, 20), -1, 1);
    int32_t lab[9] = {0, 1, 2, 3, 4, 0, 1, 2, 3};
    in[7] = hg_tensor_from(ctx, HG_I32, 1, SHAPE(9), lab);
    hg_tensor *zf = hg_mlp_forward(ctx, &spec, in, in[6]), *zc = composed_mlp(ctx, &spec, in, in[6]);
    ck_assert_int_eq(memcmp(hg_tensor_cdata(zf), hg_tensor_cdata(zc), 9 * 5 * sizeof(double)), 0);
    hg_tensor *gf[7], *gc[7];
    mlp_grads(ctx, &spec, in, true, gf);
    mlp_grads(ctx, &spec, in, false, gc);
    for (int i = 0; i < 7; i++)
        ck_assert_msg(memcmp(hg_tensor_cdata(gf[i]), hg_tensor_cdata(gc[i]),
                             (size_t)hg_tensor_numel(gf[i]) * sizeof(double)) == 0,
                      "cotangent %d of the fused dense layers differs from the composed ops'", i);
    /* hg_dense alone (no relu) */
    hg_tensor *yd = hg_dense(ctx, in[6], in[0], in[1]);
    hg_tensor *yc = hg_add(ctx, hg_matmul(ctx, in[6], in[0]), in[1]);
    ck_assert_int_eq(memcmp(hg_tensor_cdata(yd), hg_tensor_cdata(yc), 9 * 16 * sizeof(double)), 0);
    /* third order on a small relu MLP (biases keep units away from the kink) */
    hg_mlp small = {2, {3, 4, 2}, HG_ACT_RELU};
    hg_tensor *s[6];
    ck_assert_int_eq(hg_mlp_init(ctx, &small, HG_F64, HG_INIT_HE, &rng, s), HG_OK);
    s[1] = random_f64(ctx, &rng, 1, SHAPE(4), 0.1, 0.5);
    s[3] = random_f64(ctx, &rng, 1, SHAPE(2), -0.3, 0.3);
    s[4] = random_f64(ctx, &rng, 2, SHAPE(2, 3), -1, 1);
    s[5] = hg_tensor_from(ctx, HG_I32, 1, SHAPE(2), (const int32_t[]){1, 0});
    check_gradients(ctx, relu_mlp_loss, 6, s, &small, 3, "relu MLP (fused dense + relu)");
    check_f32_first_order(ctx, relu_mlp_loss, 6, s, &small, 1e-4, "relu MLP (fused dense + relu), f32");
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

static Suite *nn_suite(void)
{
    Suite *s = suite_create("nn");
    TCase *tc = tcase_create("nn");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, dense_and_mlp);
    tcase_add_test(tc, cross_entropy_values);
    tcase_add_test(tc, loss_derivatives);
    tcase_add_test(tc, dense_op_matches_composed);
    tcase_add_test(tc, cross_entropy_gradient_by_hand);
    tcase_add_test(tc, nn_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(nn_suite());
}
