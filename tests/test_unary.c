/* Unary ops: forward values, derivatives of order 1..3 by finite
 * differences, sqrt's convention at 0, f32, errors. */
#include "testutil.h"

#include <string.h>

typedef struct unary_case {
    const char *name;
    hg_tensor *(*f)(hg_ctx *, hg_tensor *);
    double (*ref)(double);
    double lo, hi; /* sample range for the derivative checks */
} unary_case;

static double ref_neg(double x)
{
    return -x;
}
static double ref_sigmoid(double x)
{
    return 1 / (1 + exp(-x));
}
static double ref_relu(double x)
{
    return x > 0 ? x : 0;
}
static double ref_identity(double x)
{
    return x;
}

static const unary_case cases[] = {
    {"neg", hg_neg, ref_neg, -2, 2},     {"exp", hg_exp, exp, -2, 2},
    {"log", hg_log, log, 0.5, 3},        {"sqrt", hg_sqrt, sqrt, 0.5, 3},
    {"tanh", hg_tanh, tanh, -2, 2},      {"sigmoid", hg_sigmoid, ref_sigmoid, -3, 3},
    {"relu", hg_relu, ref_relu, 0.2, 2}, /* and negative below */
    {"abs", hg_abs, fabs, 0.2, 2},       {"identity", hg_identity, ref_identity, -2, 2},
};
#define N_CASES (sizeof cases / sizeof cases[0])

static hg_tensor *call_case(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    return ((const unary_case *)user)->f(ctx, in[0]);
}

START_TEST(forward_values)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    const double xs[5] = {-1.5, -0.2, 0.3, 1.0, 2.5};
    hg_tensor *x = hg_tensor_from(ctx, HG_F64, 1, SHAPE(5), xs);
    for (size_t c = 0; c < N_CASES; c++) {
        hg_tensor *y = cases[c].f(ctx, cases[c].f == hg_log || cases[c].f == hg_sqrt ? hg_abs(ctx, x) : x);
        ck_assert_msg(y != NULL, "%s", cases[c].name);
        for (int i = 0; i < 5; i++) {
            double xi = cases[c].f == hg_log || cases[c].f == hg_sqrt ? fabs(xs[i]) : xs[i];
            ck_assert_msg(fabs(hg_get(y, i) - cases[c].ref(xi)) < 1e-15, "%s(%g) = %.17g", cases[c].name, xi,
                          hg_get(y, i));
        }
    }
    ck_assert_double_eq(hg_get(hg_scale(ctx, x, -2), 0), 3.0);
    ck_assert_double_eq(hg_get(hg_add_scalar(ctx, x, 1.5), 1), 1.3);
    ck_assert_double_eq_tol(hg_get(hg_pow_scalar(ctx, hg_abs(ctx, x), 1.5), 4), pow(2.5, 1.5), 1e-15);
    ck_assert_double_eq(hg_get(hg_pow_scalar(ctx, x, 2), 0), 2.25);
    hg_tensor *s = hg_sign(ctx, T64(ctx, 1, SHAPE(3), -3, 0, 0.1));
    ck_assert_double_eq(hg_get(s, 0), -1);
    ck_assert_double_eq(hg_get(s, 1), 0);
    ck_assert_double_eq(hg_get(s, 2), 1);
    /* Sigmoid is stable on both tails. */
    hg_tensor *big = hg_sigmoid(ctx, T64(ctx, 1, SHAPE(2), -800, 800));
    ck_assert_double_eq(hg_get(big, 0), 0.0);
    ck_assert_double_eq(hg_get(big, 1), 1.0);
    /* f32 kernels. */
    hg_tensor *xf = hg_cast(ctx, x, HG_F32);
    hg_tensor *ef = hg_exp(ctx, xf);
    ck_assert_int_eq(hg_tensor_dtype(ef), HG_F32);
    ck_assert_float_eq_tol(hg_tensor_cf32(ef)[4], expf(2.5f), 1e-5f);
    ck_assert_float_eq_tol(hg_tensor_cf32(hg_tanh(ctx, xf))[0], tanhf(-1.5f), 1e-6f);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(derivatives_to_third_order)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 11);
    for (size_t c = 0; c < N_CASES; c++) {
        hg_tensor *x = random_f64(ctx, &rng, 2, SHAPE(2, 3), cases[c].lo, cases[c].hi);
        check_gradients(ctx, call_case, 1, &x, (void *)&cases[c], 3, cases[c].name);
    }
    /* relu and abs on the negative side too. */
    hg_tensor *neg = random_f64(ctx, &rng, 1, SHAPE(4), -2, -0.2);
    check_gradients(ctx, call_case, 1, &neg, (void *)&cases[6], 3, "relu (negative)");
    check_gradients(ctx, call_case, 1, &neg, (void *)&cases[7], 3, "abs (negative)");
    hg_ctx_free(ctx);
}
END_TEST

typedef struct param_case {
    int kind; /* 0 scale, 1 add_scalar, 2 pow_scalar */
    double p;
} param_case;

static hg_tensor *call_param(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    const param_case *c = user;
    switch (c->kind) {
    case 0: return hg_scale(ctx, in[0], c->p);
    case 1: return hg_add_scalar(ctx, in[0], c->p);
    default: return hg_pow_scalar(ctx, in[0], c->p);
    }
}

START_TEST(parametrised_derivatives)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(4), 0.6, 1.1, 1.7, 2.4);
    const param_case pc[] = {{0, -1.5}, {1, 0.75}, {2, 3.0}, {2, 2.0}, {2, 0.5}, {2, -1.3}, {2, 1.0}, {2, 0.0}};
    for (size_t i = 0; i < sizeof pc / sizeof pc[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "kind %d p %g", pc[i].kind, pc[i].p);
        check_gradients(ctx, call_param, 1, &x, (void *)&pc[i], 3, what);
    }
    hg_ctx_free(ctx);
}
END_TEST

/* sqrt'(0) is taken as 0, and so are the higher derivatives at 0: finite,
 * never NaN, through three nested tapes. */
START_TEST(sqrt_at_zero)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(3), 0.0, 4.0, 0.0);
    hg_tape *t1 = hg_tape_begin(ctx, 0), *t2 = hg_tape_begin(ctx, 0), *t3 = hg_tape_begin(ctx, 0);
    hg_watch(t1, x);
    hg_watch(t2, x);
    hg_watch(t3, x);
    hg_tensor *y = hg_sum(ctx, hg_sqrt(ctx, x));
    hg_tensor *d1, *d2, *d3;
    hg_tape_end(t3);
    hg_gradient(t3, y, 1, &x, NULL, &d1);
    hg_tensor *s1 = hg_sum(ctx, d1); /* recorded on t2 and t1: before ending them */
    hg_tape_end(t2);
    hg_gradient(t2, s1, 1, &x, NULL, &d2);
    hg_tensor *s2 = hg_sum(ctx, d2);
    hg_tape_end(t1);
    hg_gradient(t1, s2, 1, &x, NULL, &d3);
    ck_assert_ctx_ok(ctx);
    ck_assert_double_eq(hg_get(d1, 0), 0.0);
    ck_assert_double_eq(hg_get(d2, 0), 0.0);
    ck_assert_double_eq(hg_get(d3, 0), 0.0);
    ck_assert_double_eq(hg_get(d1, 2), 0.0);
    ck_assert_double_eq_tol(hg_get(d1, 1), 0.25, 1e-15);                     /* 1/(2 sqrt x) */
    ck_assert_double_eq_tol(hg_get(d2, 1), -1.0 / 32, 1e-15);                /* -1/4 x^-3/2 */
    ck_assert_double_eq_tol(hg_get(d3, 1), 3.0 / 8 * pow(4.0, -2.5), 1e-15); /* 3/8 x^-5/2 */
    hg_ctx_free(ctx);
}
END_TEST

/* f32 kernels agree with the f64 ones (to f32 rounding) on every op, over a
 * length that is not a multiple of any vector width. */
START_TEST(f32_matches_f64)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 21);
    hg_tensor *x = random_f64(ctx, &rng, 2, SHAPE(13, 17), -3, 3);
    hg_tensor *pos = hg_add_scalar(ctx, hg_abs(ctx, x), 0.1);
    for (size_t c = 0; c < N_CASES; c++) {
        hg_tensor *in = cases[c].f == hg_log || cases[c].f == hg_sqrt ? pos : x;
        hg_tensor *y64 = cases[c].f(ctx, in);
        hg_tensor *y32 = cases[c].f(ctx, hg_cast(ctx, in, HG_F32));
        ck_assert_msg(y32 && hg_tensor_dtype(y32) == HG_F32, "%s: %s", cases[c].name, hg_ctx_error(ctx));
        for (int64_t i = 0; i < hg_tensor_numel(x); i++)
            ck_assert_msg(fabs(hg_get(y32, i) - hg_get(y64, i)) <= 1e-6 * fmax(1, fabs(hg_get(y64, i))),
                          "%s element %lld: %.9g vs %.9g", cases[c].name, (long long)i, hg_get(y32, i), hg_get(y64, i));
    }
    hg_tensor *x32 = hg_cast(ctx, pos, HG_F32);
    hg_tensor *pairs[][2] = {{hg_scale(ctx, pos, -1.5), hg_scale(ctx, x32, -1.5)},
                             {hg_add_scalar(ctx, pos, 0.25), hg_add_scalar(ctx, x32, 0.25)},
                             {hg_pow_scalar(ctx, pos, 2), hg_pow_scalar(ctx, x32, 2)},
                             {hg_pow_scalar(ctx, pos, -0.7), hg_pow_scalar(ctx, x32, -0.7)},
                             {hg_sign(ctx, x), hg_sign(ctx, hg_cast(ctx, x, HG_F32))}};
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++)
        for (int64_t i = 0; i < hg_tensor_numel(x); i++)
            ck_assert_msg(fabs(hg_get(pairs[k][1], i) - hg_get(pairs[k][0], i)) <=
                              1e-6 * fmax(1, fabs(hg_get(pairs[k][0], i))),
                          "pair %zu element %lld", k, (long long)i);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* sign is a constant: not recorded, and d/dx sum(sign(x) x) = sign(x). */
START_TEST(sign_is_constant)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(3), -2, 0.5, 3);
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, x);
    hg_tensor *s = hg_sign(ctx, x);
    ck_assert(!hg_tape_tracks(t, s));
    hg_tensor *y = hg_sum(ctx, hg_mul(ctx, s, x));
    hg_tape_end(t);
    hg_tensor *g;
    ck_assert_int_eq(hg_gradient(t, y, 1, &x, NULL, &g), HG_OK);
    ck_assert_double_eq(hg_get(g, 0), -1);
    ck_assert_double_eq(hg_get(g, 1), 1);
    ck_assert_double_eq(hg_get(g, 2), 1);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* Conventions at the kinks: relu'(0) = 0, abs'(0) = 0, x^0 has derivative 0. */
START_TEST(derivatives_at_kinks)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(2), 0.0, 0.0);
    hg_tensor *(*fs[])(hg_ctx *, hg_tensor *) = {hg_relu, hg_abs};
    for (int k = 0; k < 3; k++) {
        hg_tape *t = hg_tape_begin(ctx, 0);
        hg_watch(t, x);
        hg_tensor *y = hg_sum(ctx, k < 2 ? fs[k](ctx, x) : hg_pow_scalar(ctx, x, 0));
        hg_tape_end(t);
        hg_tensor *g;
        ck_assert_int_eq(hg_gradient(t, y, 1, &x, NULL, &g), HG_OK);
        ck_assert_double_eq(hg_get(g, 0), 0.0);
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* The f32 exp, tanh and sigmoid kernels (vectorised, not libm) against the
 * f64 libm values: a dense grid over the whole float range of interest,
 * plus overflow, underflow through subnormals, infinities, NaN, -0. */
START_TEST(f32_transcendentals_accuracy)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    enum { N = 200001 };
    static float xs[N + 8];
    for (int i = 0; i < N; i++)
        xs[i] = -110.0f + 220.0f * (float)i / (N - 1);
    const float special[8] = {0.0f, -0.0f, 88.7f, 88.75f, -87.5f, -103.0f, INFINITY, -INFINITY};
    for (int i = 0; i < 8; i++)
        xs[N + i] = special[i];
    hg_tensor *x = hg_tensor_from(ctx, HG_F32, 1, SHAPE(N + 8), xs);
    hg_tensor *(*fs[3])(hg_ctx *, hg_tensor *) = {hg_exp, hg_tanh, hg_sigmoid};
    const char *names[3] = {"exp", "tanh", "sigmoid"};
    for (int k = 0; k < 3; k++) {
        const float *y = hg_tensor_cf32(fs[k](ctx, x));
        ck_assert_ptr_nonnull(y);
        double worst = 0;
        int worst_i = 0;
        for (int i = 0; i < N + 8; i++) {
            double v = xs[i];
            double want = k == 0 ? exp(v) : k == 1 ? tanh(v) : 1 / (1 + exp(-v));
            double wantf = (float)want; /* correctly rounded to f32 (inf above FLT_MAX) */
            if (isinf(wantf) || wantf == 0) {
                ck_assert_msg(y[i] == wantf || fabs(y[i]) < 1e-37, "%s(%.9g) = %.9g, want %.9g", names[k], v,
                              (double)y[i], wantf);
                continue;
            }
            /* relative error, with subnormals judged in absolute terms */
            double err = fabs(y[i] - want) / fmax(fabs(want), 1e-37);
            if (err > worst) {
                worst = err;
                worst_i = i;
            }
        }
        ck_assert_msg(worst < 4e-7, "%s: worst relative error %.3g at x = %.9g", names[k], worst, (double)xs[worst_i]);
    }
    const float nan_in[2] = {NAN, -NAN};
    hg_tensor *xn = hg_tensor_from(ctx, HG_F32, 1, SHAPE(2), nan_in);
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 2; i++)
            ck_assert(isnan(hg_tensor_cf32(fs[k](ctx, xn))[i]));
    ck_assert(signbit(hg_tensor_cf32(hg_tanh(ctx, x))[N + 1])); /* tanh(-0) = -0 */
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(errors)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *i = hg_arange(ctx, HG_I32, 3, 0, 1);
    ck_assert_ptr_null(hg_exp(ctx, i));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_exp"));
    hg_ctx_clear_error(ctx);
    /* Every unary op names itself. */
    for (size_t c = 0; c < N_CASES; c++) {
        char name[64];
        snprintf(name, sizeof name, "hg_%s:", cases[c].name);
        ck_assert_ptr_null(cases[c].f(ctx, i));
        ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
        ck_assert_msg(strstr(hg_ctx_error(ctx), name) != NULL, "%s", hg_ctx_error(ctx));
        hg_ctx_clear_error(ctx);
    }
    ck_assert_ptr_null(hg_pow_scalar(ctx, i, 2));
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_pow_scalar:"));
    hg_ctx_clear_error(ctx);
    /* A NULL input keeps the earlier error. */
    hg_exp(ctx, i);
    ck_assert_ptr_null(hg_sqrt(ctx, NULL));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    ck_assert_ptr_null(hg_scale(NULL, NULL, 2));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_tanh(ctx, NULL));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    ck_assert_ptr_null(hg_relu(NULL, i));
    hg_ctx_clear_error(ctx);
    /* IEEE behaviour: log(0) = -inf, sqrt(-1) = NaN, no crash, no error. */
    hg_tensor *z = T64(ctx, 1, SHAPE(2), 0, -1);
    ck_assert(isinf(hg_get(hg_log(ctx, z), 0)));
    ck_assert(isnan(hg_get(hg_sqrt(ctx, z), 1)));
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

static Suite *unary_suite(void)
{
    Suite *s = suite_create("unary");
    TCase *tc = tcase_create("unary");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, forward_values);
    tcase_add_test(tc, derivatives_to_third_order);
    tcase_add_test(tc, parametrised_derivatives);
    tcase_add_test(tc, sqrt_at_zero);
    tcase_add_test(tc, f32_matches_f64);
    tcase_add_test(tc, f32_transcendentals_accuracy);
    tcase_add_test(tc, sign_is_constant);
    tcase_add_test(tc, derivatives_at_kinks);
    tcase_add_test(tc, errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(unary_suite());
}
