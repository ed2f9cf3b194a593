/* The further elementwise ops and axis reductions (sin ... argmax): values
 * against libm / brute force in f64 and f32, first and second derivatives
 * against closed forms in f64, first derivatives against closed forms in
 * f32, hg_gradcheck to third order in f64, and the documented edge cases
 * (clamp's bounds, kinks, ties, NaN, infinities, empty axes, rank 0). */
#include "testutil.h"

#include <string.h>

#define N 9
#define PI 3.14159265358979323846
/* Away from every kink used below (0, clamp's -0.5 and 0.7). */
static const double xs[N] = {-2.3, -1.1, -0.6, -0.25, 0.15, 0.45, 0.9, 1.7, 3.2};

static double sigmoid_ref(double x)
{
    return 1 / (1 + exp(-x));
}
static double phi(double x)
{
    return exp(-x * x / 2) / sqrt(2 * PI);
}
static double Phi(double x)
{
    return 0.5 * (1 + erf(x / sqrt(2.0)));
}
static const double GC = 0.79788456080286535588, GK = 0.044715;

typedef struct unary_case {
    const char *name;
    hg_tensor *(*op)(hg_ctx *, hg_tensor *);
    double (*f)(double);
    double (*d1)(double);
    double lo; /* inputs must exceed this (log1p) */
} unary_case;

static hg_tensor *leaky(hg_ctx *c, hg_tensor *x)
{
    return hg_leaky_relu(c, x, 0.1);
}
static hg_tensor *elu13(hg_ctx *c, hg_tensor *x)
{
    return hg_elu(c, x, 1.3);
}
static hg_tensor *clamp_ab(hg_ctx *c, hg_tensor *x)
{
    return hg_clamp(c, x, -0.5, 0.7);
}

static double sin_d(double x)
{
    return cos(x);
}
static double cos_d(double x)
{
    return -sin(x);
}
static double log1p_d(double x)
{
    return 1 / (1 + x);
}
static double erf_d(double x)
{
    return 2 / sqrt(PI) * exp(-x * x);
}
static double softplus_f(double x)
{
    return log1p(exp(x));
}
static double leaky_f(double x)
{
    return x > 0 ? x : 0.1 * x;
}
static double leaky_d(double x)
{
    return x > 0 ? 1 : 0.1;
}
static double elu_f(double x)
{
    return x > 0 ? x : 1.3 * expm1(x);
}
static double elu_d(double x)
{
    return x > 0 ? 1 : 1.3 * exp(x);
}
static double gelu_f(double x)
{
    return x * Phi(x);
}
static double gelu_d(double x)
{
    return Phi(x) + x * phi(x);
}
static double gelu_tanh_f(double x)
{
    return 0.5 * x * (1 + tanh(GC * (x + GK * x * x * x)));
}
static double gelu_tanh_d(double x)
{
    double t = tanh(GC * (x + GK * x * x * x));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GC * (1 + 3 * GK * x * x);
}
static double silu_f(double x)
{
    return x * sigmoid_ref(x);
}
static double silu_d(double x)
{
    return sigmoid_ref(x) * (1 + x * (1 - sigmoid_ref(x)));
}
static double clamp_f(double x)
{
    return x < -0.5 ? -0.5 : x > 0.7 ? 0.7 : x;
}
static double clamp_d(double x)
{
    return x >= -0.5 && x <= 0.7 ? 1 : 0;
}

static const unary_case cases[] = {
    {"sin", hg_sin, sin, sin_d, -1e9},
    {"cos", hg_cos, cos, cos_d, -1e9},
    {"log1p", hg_log1p, log1p, log1p_d, -1},
    {"expm1", hg_expm1, expm1, exp, -1e9},
    {"erf", hg_erf, erf, erf_d, -1e9},
    {"softplus", hg_softplus, softplus_f, sigmoid_ref, -1e9},
    {"leaky_relu", leaky, leaky_f, leaky_d, -1e9},
    {"elu", elu13, elu_f, elu_d, -1e9},
    {"gelu", hg_gelu, gelu_f, gelu_d, -1e9},
    {"gelu_tanh", hg_gelu_tanh, gelu_tanh_f, gelu_tanh_d, -1e9},
    {"silu", hg_silu, silu_f, silu_d, -1e9},
    {"clamp", clamp_ab, clamp_f, clamp_d, -1e9},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* The case's inputs (those above its domain bound) as a [n] tensor. */
static hg_tensor *inputs(hg_ctx *ctx, const unary_case *c, hg_dtype dt, double *vals, int64_t *n)
{
    *n = 0;
    for (int i = 0; i < N; i++)
        if (xs[i] > c->lo)
            vals[(*n)++] = xs[i];
    return hg_cast(ctx, hg_tensor_from(ctx, HG_F64, 1, n, vals), dt);
}

/* dy/dx and d2y/dx2 elementwise (y summed: the op is elementwise). */
static void derivatives(hg_ctx *ctx, hg_tensor *(*op)(hg_ctx *, hg_tensor *), hg_tensor *x, hg_tensor **d1,
                        hg_tensor **d2)
{
    hg_tape *outer = hg_tape_begin(ctx, HG_TAPE_UNRECORDED_TARGET_ZERO);
    hg_watch(outer, x);
    hg_tape *inner = hg_tape_begin(ctx, 0);
    hg_watch(inner, x);
    hg_tensor *y = hg_sum(ctx, op(ctx, x));
    hg_tape_end(inner);
    ck_assert_int_eq(hg_gradient(inner, y, 1, &x, NULL, d1), HG_OK);
    hg_tensor *s = hg_sum(ctx, *d1);
    hg_tape_end(outer);
    if (d2)
        ck_assert_int_eq(hg_gradient(outer, s, 1, &x, NULL, d2), HG_OK);
}

START_TEST(unary_values_and_closed_form_derivatives_f64)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    for (size_t k = 0; k < NCASES; k++) {
        const unary_case *c = &cases[k];
        double vals[N];
        int64_t n;
        hg_tensor *x = inputs(ctx, c, HG_F64, vals, &n), *d1, *d2;
        hg_tensor *y = c->op(ctx, x);
        ck_assert_ctx_ok(ctx);
        derivatives(ctx, c->op, x, &d1, &d2);
        for (int64_t i = 0; i < n; i++) {
            double v = vals[i], h = 1e-5;
            ck_assert_msg(fabs(hg_get(y, i) - c->f(v)) <= 1e-15 * fmax(1, fabs(c->f(v))), "%s(%g) = %.17g, want %.17g",
                          c->name, v, hg_get(y, i), c->f(v));
            ck_assert_msg(fabs(hg_get(d1, i) - c->d1(v)) <= 1e-14 * fmax(1, fabs(c->d1(v))),
                          "%s'(%g) = %.17g, want %.17g", c->name, v, hg_get(d1, i), c->d1(v));
            /* second derivative: central difference of the closed-form first */
            double d2_ref = (c->d1(v + h) - c->d1(v - h)) / (2 * h);
            ck_assert_msg(fabs(hg_get(d2, i) - d2_ref) <= 1e-8 * fmax(1, fabs(d2_ref)), "%s''(%g) = %.12g, want %.12g",
                          c->name, v, hg_get(d2, i), d2_ref);
        }
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

static hg_tensor *apply_case(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    return ((const unary_case *)user)->op(ctx, in[0]);
}

START_TEST(unary_gradcheck_third_order_f64)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    for (size_t k = 0; k < NCASES; k++) {
        double vals[N];
        int64_t n;
        hg_tensor *x = inputs(ctx, &cases[k], HG_F64, vals, &n);
        check_gradients(ctx, apply_case, 1, &x, (void *)&cases[k], 3, cases[k].name);
    }
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(unary_f32_first_order_against_closed_forms)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    for (size_t k = 0; k < NCASES; k++) {
        const unary_case *c = &cases[k];
        double vals[N];
        int64_t n;
        hg_tensor *x = inputs(ctx, c, HG_F32, vals, &n), *d1;
        hg_tensor *y = c->op(ctx, x);
        derivatives(ctx, c->op, x, &d1, NULL);
        ck_assert_int_eq(hg_tensor_dtype(y), HG_F32);
        ck_assert_int_eq(hg_tensor_dtype(d1), HG_F32);
        for (int64_t i = 0; i < n; i++) {
            double v = (float)vals[i];
            ck_assert_msg(fabs(hg_tensor_cf32(y)[i] - c->f(v)) <= 2e-6 * fmax(1, fabs(c->f(v))), "f32 %s(%g)", c->name,
                          v);
            ck_assert_msg(fabs(hg_tensor_cf32(d1)[i] - c->d1(v)) <= 1e-5 * fmax(1, fabs(c->d1(v))),
                          "f32 %s'(%g) = %.9g, want %.9g", c->name, v, hg_tensor_cf32(d1)[i], c->d1(v));
        }
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* Documented edge values: kinks, bounds, tails, NaN. */
START_TEST(unary_edges)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    /* derivatives at the kinks */
    hg_tensor *z = T64(ctx, 1, SHAPE(3), 0.0, -0.5, 0.7), *d;
    derivatives(ctx, leaky, z, &d, NULL);
    ck_assert_double_eq(hg_get(d, 0), 0.1); /* alpha at exactly 0 */
    derivatives(ctx, elu13, z, &d, NULL);
    ck_assert_double_eq(hg_get(d, 0), 1.3);
    derivatives(ctx, clamp_ab, z, &d, NULL);
    ck_assert_double_eq(hg_get(d, 1), 1.0); /* bounds included */
    ck_assert_double_eq(hg_get(d, 2), 1.0);
    /* clamp with infinite bounds, and lo == hi */
    hg_tensor *w = T64(ctx, 1, SHAPE(3), -1e300, 2.0, NAN);
    hg_tensor *c1 = hg_clamp(ctx, w, -INFINITY, 1.0), *c2 = hg_clamp(ctx, w, 0.5, 0.5);
    ck_assert_double_eq(hg_get(c1, 0), -1e300);
    ck_assert_double_eq(hg_get(c1, 1), 1.0);
    ck_assert(isnan(hg_get(c1, 2)));
    ck_assert_double_eq(hg_get(c2, 0), 0.5);
    ck_assert_double_eq(hg_get(c2, 1), 0.5);
    /* softplus and silu are stable on both tails, in both dtypes */
    hg_tensor *t = T64(ctx, 1, SHAPE(4), -800.0, -40.0, 40.0, 800.0);
    hg_tensor *sp = hg_softplus(ctx, t), *si = hg_silu(ctx, t), *sp32 = hg_softplus(ctx, hg_cast(ctx, t, HG_F32));
    ck_assert_double_eq(hg_get(sp, 0), 0.0);
    ck_assert_close(hg_get(sp, 1), exp(-40.0), 1e-15);
    ck_assert_double_eq(hg_get(sp, 3), 800.0);
    ck_assert(isfinite(hg_get(sp32, 3)) && hg_get(sp32, 3) == 800.0f);
    ck_assert(hg_get(si, 0) == 0.0 && signbit(hg_get(si, 0))); /* -800 e^-800 / (1 + e^-800) = -0 */
    ck_assert_double_eq(hg_get(si, 3), 800.0);
    hg_tensor *dsp;
    derivatives(ctx, hg_softplus, t, &dsp, NULL);
    ck_assert_double_eq(hg_get(dsp, 0), 0.0);
    ck_assert_double_eq(hg_get(dsp, 3), 1.0);
    /* log1p and expm1 keep precision near 0 */
    hg_tensor *tiny = T64(ctx, 1, SHAPE(1), 1e-17);
    ck_assert_double_eq(hg_item(hg_log1p(ctx, tiny)), 1e-17);
    ck_assert_double_eq(hg_item(hg_expm1(ctx, tiny)), 1e-17);
    /* NaN stays NaN */
    hg_tensor *nan = T64(ctx, 1, SHAPE(1), NAN);
    hg_tensor *(*ops[])(hg_ctx *, hg_tensor *) = {hg_sin, hg_cos, hg_log1p, hg_expm1,     hg_erf,  hg_softplus,
                                                  leaky,  elu13,  hg_gelu,  hg_gelu_tanh, hg_silu, clamp_ab};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        ck_assert_msg(isnan(hg_item(ops[k](ctx, nan))), "op %zu: NaN did not propagate", k);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- reductions ------------------------------------------------------------------- */

/* x [2,3,4] with distinct values (no ties), a fixed permutation of 0..23. */
static hg_tensor *cube(hg_ctx *ctx, hg_dtype dt)
{
    double v[24];
    for (int i = 0; i < 24; i++)
        v[i] = (double)((i * 7 + 3) % 24) / 8.0 - 1.4;
    return hg_cast(ctx, hg_tensor_from(ctx, HG_F64, 3, SHAPE(2, 3, 4), v), dt);
}

static double at3(const hg_tensor *x, int i, int j, int k)
{
    return hg_get(x, (i * 3 + j) * 4 + k);
}

START_TEST(max_min_argmax_values_and_shapes)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    for (int dt = 0; dt < 2; dt++) {
        hg_tensor *x = cube(ctx, dt ? HG_F32 : HG_F64);
        for (int axis = -3; axis < 3; axis++)
            for (int keep = 0; keep < 2; keep++) {
                int ax = axis < 0 ? axis + 3 : axis;
                hg_tensor *mx = hg_max_axis(ctx, x, axis, keep), *mn = hg_min_axis(ctx, x, axis, keep);
                hg_tensor *amx = hg_argmax(ctx, x, axis, keep), *amn = hg_argmin(ctx, x, axis, keep);
                ck_assert_ctx_ok(ctx);
                ck_assert_int_eq(hg_tensor_rank(mx), keep ? 3 : 2);
                ck_assert_int_eq(hg_tensor_dtype(amx), HG_I32);
                ck_assert_int_eq(hg_tensor_numel(mx), 24 / hg_tensor_dim(x, ax));
                if (keep)
                    ck_assert_int_eq(hg_tensor_dim(mx, ax), 1);
                int64_t ext[3] = {2, 3, 4}, r = 0;
                int64_t o[3];
                for (o[0] = 0; o[0] < (ax == 0 ? 1 : 2); o[0]++)
                    for (o[1] = 0; o[1] < (ax == 1 ? 1 : 3); o[1]++)
                        for (o[2] = 0; o[2] < (ax == 2 ? 1 : 4); o[2]++, r++) {
                            double best = -INFINITY, worst = INFINITY;
                            int bi = -1, wi = -1;
                            for (int k = 0; k < ext[ax]; k++) {
                                int64_t p[3] = {o[0], o[1], o[2]};
                                p[ax] = k;
                                double v = at3(x, (int)p[0], (int)p[1], (int)p[2]);
                                if (v > best)
                                    best = v, bi = k;
                                if (v < worst)
                                    worst = v, wi = k;
                            }
                            ck_assert_double_eq(hg_get(mx, r), best);
                            ck_assert_double_eq(hg_get(mn, r), worst);
                            ck_assert_double_eq(hg_get(amx, r), bi);
                            ck_assert_double_eq(hg_get(amn, r), wi);
                        }
            }
    }
    hg_ctx_free(ctx);
}
END_TEST

static hg_tensor *f_max(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    int axis = *(const int *)user;
    return hg_mul(ctx, hg_max_axis(ctx, in[0], axis, 0), hg_min_axis(ctx, hg_tanh(ctx, in[0]), axis, 0));
}

static hg_tensor *f_lse(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    int axis = *(const int *)user;
    return hg_logsumexp(ctx, hg_mul(ctx, in[0], in[0]), axis, axis & 1);
}

static hg_tensor *f_axes(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    const int *a = user; /* n, keepdim, mean, axes... */
    hg_tensor *x3 = hg_mul(ctx, in[0], hg_mul(ctx, in[0], in[0]));
    return a[2] ? hg_mean_axes(ctx, x3, a[0], a + 3, a[1]) : hg_sum_axes(ctx, x3, a[0], a + 3, a[1]);
}

START_TEST(reductions_gradcheck_third_order)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = cube(ctx, HG_F64);
    for (int axis = -1; axis < 3; axis++) {
        char what[64];
        snprintf(what, sizeof what, "max/min axis %d", axis);
        check_gradients(ctx, f_max, 1, &x, &axis, 3, what);
        snprintf(what, sizeof what, "logsumexp axis %d", axis);
        check_gradients(ctx, f_lse, 1, &x, &axis, 3, what);
    }
    int lists[][6] = {{2, 0, 0, 0, 2}, {2, 1, 1, -1, 1}, {1, 0, 1, 1},   {3, 0, 0, 2, 0, 1},
                      {0, 0, 0},       {2, 1, 0, 0, 1},  {2, 0, 1, 1, 2}};
    for (size_t k = 0; k < sizeof lists / sizeof lists[0]; k++) {
        char what[64];
        snprintf(what, sizeof what, "sum/mean_axes list %zu", k);
        check_gradients(ctx, f_axes, 1, &x, lists[k], 3, what);
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* Closed forms: d max = one-hot of argmax; d logsumexp = softmax; d sum_axes
 * = 1, d mean_axes = 1 / count. f64 and f32. */
START_TEST(reductions_closed_form_first_derivatives)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    for (int dt = 0; dt < 2; dt++) {
        double tol = dt ? 1e-6 : 1e-15;
        hg_tensor *x = cube(ctx, dt ? HG_F32 : HG_F64), *g[3];
        hg_tape *t = hg_tape_begin(ctx, HG_TAPE_PERSISTENT);
        hg_watch(t, x);
        hg_tensor *m = hg_sum(ctx, hg_max_axis(ctx, x, 1, 0));
        hg_tensor *l = hg_sum(ctx, hg_logsumexp(ctx, x, 2, 1));
        hg_tensor *s = hg_sum(ctx, hg_mean_axes(ctx, x, 2, (const int[]){0, 2}, 0));
        hg_tape_end(t);
        ck_assert_int_eq(hg_gradient(t, m, 1, &x, NULL, &g[0]), HG_OK);
        ck_assert_int_eq(hg_gradient(t, l, 1, &x, NULL, &g[1]), HG_OK);
        ck_assert_int_eq(hg_gradient(t, s, 1, &x, NULL, &g[2]), HG_OK);
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 4; k++) {
                int best = 0;
                for (int j = 1; j < 3; j++)
                    if (at3(x, i, j, k) > at3(x, i, best, k))
                        best = j;
                for (int j = 0; j < 3; j++) {
                    ck_assert_double_eq(at3(g[0], i, j, k), j == best ? 1.0 : 0.0);
                    ck_assert_double_eq_tol(at3(g[2], i, j, k), 1.0 / 8.0, tol);
                    double z = 0;
                    for (int q = 0; q < 4; q++)
                        z += exp(at3(x, i, j, q));
                    ck_assert_double_eq_tol(at3(g[1], i, j, k), exp(at3(x, i, j, k)) / z, tol);
                }
            }
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(reductions_edges)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    /* ties: the cotangent goes to the first extreme, argmax says which */
    hg_tensor *x = T64(ctx, 2, SHAPE(2, 3), 1.0, 5.0, 5.0, -2.0, -2.0, 0.0), *g;
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, x);
    hg_tensor *y = hg_sub(ctx, hg_sum(ctx, hg_max_axis(ctx, x, 1, 0)), hg_sum(ctx, hg_min_axis(ctx, x, -1, 1)));
    hg_tape_end(t);
    ck_assert_int_eq(hg_gradient(t, y, 1, &x, NULL, &g), HG_OK);
    const double want[6] = {-1, 1, 0, -1, 0, 1};
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(hg_get(g, i), want[i]);
    ck_assert_double_eq(hg_get(hg_argmax(ctx, x, 1, 0), 0), 1);
    ck_assert_double_eq(hg_get(hg_argmin(ctx, x, 1, 0), 1), 0);
    /* NaN counts as the extreme: first NaN wins */
    hg_tensor *n = T64(ctx, 1, SHAPE(4), 1.0, NAN, 7.0, NAN);
    ck_assert(isnan(hg_item(hg_max_axis(ctx, n, 0, 0))));
    ck_assert(isnan(hg_item(hg_min_axis(ctx, n, 0, 0))));
    ck_assert_double_eq(hg_item(hg_argmax(ctx, n, 0, 0)), 1);
    /* logsumexp is stable and handles infinities */
    hg_tensor *big = T64(ctx, 2, SHAPE(3, 2), 1000.0, 1000.0, -INFINITY, -INFINITY, INFINITY, 1.0);
    hg_tensor *l = hg_logsumexp(ctx, big, 1, 0);
    ck_assert_close(hg_get(l, 0), 1000 + log(2.0), 1e-15);
    ck_assert(hg_get(l, 1) == -INFINITY && hg_get(l, 2) == INFINITY);
    hg_tensor *l32 = hg_logsumexp(ctx, hg_cast(ctx, big, HG_F32), 1, 0);
    ck_assert_close(hg_get(l32, 0), 1000 + log(2.0), 1e-6);
    hg_tensor *empty = hg_zeros(ctx, HG_F64, 2, SHAPE(2, 0));
    hg_tensor *le = hg_logsumexp(ctx, empty, 1, 0);
    ck_assert(hg_get(le, 0) == -INFINITY && hg_tensor_numel(le) == 2);
    ck_assert_ptr_nonnull(hg_sum_axes(ctx, empty, 1, (const int[]){1}, 0));
    ck_assert(isnan(hg_get(hg_mean_axes(ctx, empty, 1, (const int[]){1}, 0), 0)));
    ck_assert_ctx_ok(ctx);
    /* no identity element: max over an empty axis is an error naming it */
    ck_assert_ptr_null(hg_max_axis(ctx, empty, 1, 0));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_max_axis"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_nonnull(hg_max_axis(ctx, empty, 0, 0)); /* the nonempty axis 0 -> [0] */
    hg_ctx_free(ctx);
}
END_TEST

/* Every reduction works on a rank-0 tensor: its one element, rank 0. */
START_TEST(reductions_on_rank0)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = hg_scalar(ctx, HG_F64, -1.25), *g[9];
    hg_tape *t = hg_tape_begin(ctx, HG_TAPE_PERSISTENT);
    hg_watch(t, x);
    hg_tensor *r[9] = {hg_sum(ctx, x),
                       hg_mean(ctx, x),
                       hg_sum_axis(ctx, x, 0, 0),
                       hg_mean_axis(ctx, x, -1, 1),
                       hg_max_axis(ctx, x, 0, 1),
                       hg_min_axis(ctx, x, -1, 0),
                       hg_logsumexp(ctx, x, 0, 0),
                       hg_sum_axes(ctx, x, 1, (const int[]){0}, 0),
                       hg_mean_axes(ctx, x, 1, (const int[]){-1}, 1)};
    hg_tape_end(t);
    ck_assert_ctx_ok(ctx);
    for (int i = 0; i < 9; i++) {
        ck_assert_msg(hg_tensor_rank(r[i]) == 0, "reduction %d: rank %d", i, hg_tensor_rank(r[i]));
        ck_assert_double_eq(hg_item(r[i]), -1.25);
        ck_assert_int_eq(hg_gradient(t, r[i], 1, &x, NULL, &g[i]), HG_OK);
        ck_assert_double_eq(hg_item(g[i]), 1.0);
    }
    ck_assert_double_eq(hg_item(hg_argmax(ctx, x, 0, 0)), 0);
    ck_assert_int_eq(hg_tensor_rank(hg_argmin(ctx, x, -1, 1)), 0);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(sum_axes_matches_nested_sum_axis)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = cube(ctx, HG_F64);
    hg_tensor *a = hg_sum_axes(ctx, x, 2, (const int[]){2, 0}, 0);
    hg_tensor *b = hg_sum_axis(ctx, hg_sum_axis(ctx, x, 2, 0), 0, 0);
    hg_tensor *c = hg_sum_axes(ctx, x, 2, (const int[]){-1, 0}, 1);
    ck_assert_int_eq(hg_tensor_rank(a), 1);
    ck_assert_int_eq(hg_tensor_rank(c), 3);
    ck_assert_int_eq(hg_tensor_dim(c, 1), 3);
    for (int j = 0; j < 3; j++) {
        ck_assert_double_eq_tol(hg_get(a, j), hg_get(b, j), 1e-14);
        ck_assert_double_eq_tol(hg_get(c, j), hg_get(b, j), 1e-14);
    }
    hg_tensor *all = hg_sum_axes(ctx, x, 3, (const int[]){0, 1, 2}, 0), *none = hg_sum_axes(ctx, x, 0, NULL, 0);
    ck_assert_double_eq_tol(hg_item(all), hg_item(hg_sum(ctx, x)), 1e-14);
    ck_assert_int_eq(hg_tensor_rank(none), 3);
    ck_assert_ptr_ne(none, x);
    ck_assert_double_eq(hg_get(none, 5), hg_get(x, 5));
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ops_more");
    TCase *tc = tcase_create("elementwise");
    tcase_add_test(tc, unary_values_and_closed_form_derivatives_f64);
    tcase_add_test(tc, unary_gradcheck_third_order_f64);
    tcase_add_test(tc, unary_f32_first_order_against_closed_forms);
    tcase_add_test(tc, unary_edges);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("reductions");
    tcase_add_test(tr, max_min_argmax_values_and_shapes);
    tcase_add_test(tr, reductions_gradcheck_third_order);
    tcase_add_test(tr, reductions_closed_form_first_derivatives);
    tcase_add_test(tr, reductions_edges);
    tcase_add_test(tr, reductions_on_rank0);
    tcase_add_test(tr, sum_axes_matches_nested_sum_axis);
    suite_add_tcase(s, tr);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
