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
    {"add", hg_add, {1.5, 0, 7, 7, 8, 5}},       {"sub", hg_sub, {0.5, 4, -1, 1, 2, 7}},
    {"mul", hg_mul, {0.5, -4, 12, 12, 15, -6}},  {"div", hg_div, {2, -1, 0.75, 4.0 / 3, 5.0 / 3, -6}},
    {"maximum", hg_maximum, {1, 2, 4, 4, 5, 6}}, {"minimum", hg_minimum, {0.5, -2, 3, 3, 3, -1}},
    {"greater", hg_greater, {1, 1, 0, 1, 1, 1}}, {"greater_equal", hg_greater_equal, {1, 1, 0, 1, 1, 1}},
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
    ck_assert_float_eq(hg_tensor_cf32(pf)[5], -6.0f);
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

/* Naive broadcasting reference: element i of out (shape `shape`) reads
 * element of t at the right-aligned, unit-collapsed multi-index. */
static int64_t source_index(const hg_tensor *t, int rank, const int64_t *shape, int64_t i)
{
    int64_t idx = 0, stride = 1;
    int tr = hg_tensor_rank(t);
    const int64_t *ts = hg_tensor_shape(t);
    for (int d = rank - 1; d >= 0; d--) {
        int64_t coord = i % shape[d];
        i /= shape[d];
        int td = d - (rank - tr);
        if (td >= 0) {
            if (ts[td] != 1)
                idx += coord * stride;
            stride *= ts[td];
        }
    }
    return idx;
}

static double reference_binary(int op, double x, double y)
{
    switch (op) {
    case 0: return x + y;
    case 1: return x - y;
    case 2: return x * y;
    case 3: return x / y;
    case 4: return x >= y ? x : y;
    case 5: return x <= y ? x : y;
    case 6: return x > y;
    default: return x >= y;
    }
}

/* Every broadcasting pattern the iterator merges or splits, in f32 and f64,
 * against the naive reference (and where with all three operands). */
START_TEST(broadcast_patterns_against_reference)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 5);
    static const struct {
        int ra, rb, rm;
        int64_t sa[4], sb[4], sm[4];
    } cases[] = {
        {2, 2, 2, {37, 19}, {37, 19}, {37, 19}},    /* same shape */
        {2, 1, 1, {37, 19}, {19}, {19}},            /* bias row */
        {2, 2, 2, {37, 19}, {37, 1}, {1, 19}},      /* column */
        {0, 2, 0, {0}, {5, 7}, {0}},                /* scalar */
        {2, 0, 2, {5, 7}, {0}, {5, 1}},             /* scalar on the right */
        {3, 2, 1, {3, 1, 5}, {4, 1}, {5}},          /* both broadcast -> [3,4,5] */
        {4, 3, 2, {2, 3, 4, 5}, {3, 1, 5}, {4, 1}}, /* rank 4 */
        {1, 3, 3, {5}, {2, 1, 5}, {2, 1, 1}},
        {3, 3, 1, {1, 1, 1}, {2, 3, 1}, {1}}, /* unit axes only */
        {2, 2, 2, {0, 3}, {1, 3}, {0, 1}},    /* empty */
    };
    binary_fn fs[] = {hg_add, hg_sub, hg_mul, hg_div, hg_maximum, hg_minimum, hg_greater, hg_greater_equal};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        hg_tensor *a = random_f64(ctx, &rng, cases[c].ra, cases[c].sa, -2, 2);
        hg_tensor *b = random_f64(ctx, &rng, cases[c].rb, cases[c].sb, 0.5, 2);
        hg_tensor *m = hg_sign(ctx, random_f64(ctx, &rng, cases[c].rm, cases[c].sm, -1, 1));
        ck_assert_ctx_ok(ctx);
        for (int dt = 0; dt < 2; dt++) {
            hg_dtype dtype = dt ? HG_F32 : HG_F64;
            hg_tensor *ad = hg_cast(ctx, a, dtype), *bd = hg_cast(ctx, b, dtype), *md = hg_cast(ctx, m, dtype);
            double tol = dt ? 1e-6 : 1e-15;
            for (int op = 0; op < 8; op++) {
                hg_tensor *y = fs[op](ctx, ad, bd);
                ck_assert_msg(y != NULL, "case %zu op %d: %s", c, op, hg_ctx_error(ctx));
                int r = hg_tensor_rank(y);
                const int64_t *sh = hg_tensor_shape(y);
                for (int64_t i = 0; i < hg_tensor_numel(y); i++) {
                    double x = hg_get(ad, source_index(ad, r, sh, i)), z = hg_get(bd, source_index(bd, r, sh, i));
                    double want = reference_binary(op, x, z);
                    if (dt)
                        want = (float)reference_binary(op, (float)x, (float)z);
                    ck_assert_msg(fabs(hg_get(y, i) - want) <= tol * fmax(1, fabs(want)),
                                  "case %zu op %d dtype %d element %lld: %.9g vs %.9g", c, op, dt, (long long)i,
                                  hg_get(y, i), want);
                }
            }
            hg_tensor *w = hg_where(ctx, md, ad, bd);
            ck_assert_msg(w != NULL, "where case %zu: %s", c, hg_ctx_error(ctx));
            int r = hg_tensor_rank(w);
            const int64_t *sh = hg_tensor_shape(w);
            for (int64_t i = 0; i < hg_tensor_numel(w); i++) {
                double mv = hg_get(md, source_index(md, r, sh, i));
                double want = mv != 0 ? hg_get(ad, source_index(ad, r, sh, i)) : hg_get(bd, source_index(bd, r, sh, i));
                ck_assert_msg(hg_get(w, i) == want, "where case %zu element %lld", c, (long long)i);
            }
        }
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(max_min_broadcast_derivatives)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    /* Entries chosen so that no pair ties. */
    hg_tensor *m23 = T64(ctx, 2, SHAPE(2, 3), 0.7, -1.3, 2.1, 1.6, -0.4, 0.9);
    hg_tensor *r3 = T64(ctx, 1, SHAPE(3), 0.15, -0.55, 1.25);
    hg_tensor *c21 = T64(ctx, 2, SHAPE(2, 1), 0.35, -0.85);
    hg_tensor *r13 = T64(ctx, 2, SHAPE(1, 3), 1.05, -0.25, 0.05);
    hg_tensor *s = hg_scalar(ctx, HG_F64, 0.45);
    hg_tensor *pairs[][2] = {{m23, r3}, {c21, r13}, {s, m23}, {m23, c21}};
    binary_box fs[] = {{hg_maximum}, {hg_minimum}};
    for (size_t c = 0; c < sizeof pairs / sizeof pairs[0]; c++)
        for (int i = 0; i < 2; i++) {
            char what[64];
            snprintf(what, sizeof what, "%s broadcast case %zu", i ? "minimum" : "maximum", c);
            check_gradients(ctx, call_binary, 2, pairs[c], &fs[i], 2, what);
        }
    hg_ctx_free(ctx);
}
END_TEST

/* Gradients of sum(f(a, b)) with respect to a and b, one tape. */
static void grad_of_sum(hg_ctx *ctx, binary_fn f, hg_tensor *a, hg_tensor *b, hg_tensor **ga, hg_tensor **gb)
{
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, a);
    hg_watch(t, b);
    hg_tensor *y = hg_sum(ctx, f(ctx, a, b));
    hg_tape_end(t);
    hg_tensor *src[2] = {a, b}, *g[2];
    ck_assert_int_eq(hg_gradient(t, y, 2, src, NULL, g), HG_OK);
    *ga = g[0];
    *gb = g[1];
}

/* Ties send the whole cotangent to a, for maximum and minimum. */
START_TEST(ties_go_to_first_argument)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *a = T64(ctx, 1, SHAPE(3), 1, 2, 3);
    hg_tensor *b = T64(ctx, 1, SHAPE(3), 1, 5, 0);
    hg_tensor *ga, *gb;
    grad_of_sum(ctx, hg_maximum, a, b, &ga, &gb);
    const double max_a[3] = {1, 0, 1}, min_a[3] = {1, 1, 0};
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq(hg_get(ga, i), max_a[i]);
        ck_assert_double_eq(hg_get(gb, i), 1 - max_a[i]);
    }
    grad_of_sum(ctx, hg_minimum, a, b, &ga, &gb);
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq(hg_get(ga, i), min_a[i]);
        ck_assert_double_eq(hg_get(gb, i), 1 - min_a[i]);
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* Comparisons are constants: not recorded, zero derivative; where's mask
 * gets a zero cotangent. */
START_TEST(constants_and_mask)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(4), -1.5, 0.5, 2.0, -0.25);
    hg_tensor *zero = hg_scalar(ctx, HG_F64, 0);
    hg_tape *t = hg_tape_begin(ctx, HG_TAPE_PERSISTENT);
    hg_watch(t, x);
    hg_tensor *gt = hg_greater(ctx, x, zero), *ge = hg_greater_equal(ctx, x, zero);
    ck_assert(!hg_tape_tracks(t, gt));
    ck_assert(!hg_tape_tracks(t, ge));
    hg_tensor *y = hg_sum(ctx, hg_mul(ctx, x, gt)); /* sum of the positive entries */
    hg_tensor *w = hg_sum(ctx, hg_where(ctx, x, x, zero));
    hg_tape_end(t);
    hg_tensor *gy, *gw;
    ck_assert_int_eq(hg_gradient(t, y, 1, &x, NULL, &gy), HG_OK);
    /* x is both the mask and a: only a's share flows back. */
    ck_assert_int_eq(hg_gradient(t, w, 1, &x, NULL, &gw), HG_OK);
    const double expect[4] = {0, 1, 1, 0};
    for (int i = 0; i < 4; i++) {
        ck_assert_double_eq(hg_get(gy, i), expect[i]);
        ck_assert_double_eq(hg_get(gw, i), 1.0);
    }
    ck_assert_ctx_ok(ctx);
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
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_where"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_where(ctx, hg_ones(ctx, HG_F32, 1, SHAPE(3)), a, a));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    /* Every binary op names itself and both shapes. */
    for (size_t c = 0; c < sizeof binary_cases / sizeof binary_cases[0]; c++) {
        char name[64];
        snprintf(name, sizeof name, "hg_%s:", binary_cases[c].name);
        ck_assert_ptr_null(binary_cases[c].f(ctx, a, b));
        ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
        ck_assert_msg(strstr(hg_ctx_error(ctx), name) && strstr(hg_ctx_error(ctx), "[2,3] and [4]"), "%s",
                      hg_ctx_error(ctx));
        hg_ctx_clear_error(ctx);
        ck_assert_ptr_null(binary_cases[c].f(ctx, i, i));
        ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
        ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), name));
        hg_ctx_clear_error(ctx);
    }
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
    ck_assert_ptr_null(hg_where(NULL, a, a, a));
    ck_assert_ptr_null(hg_where(ctx, a, NULL, a));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
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
    tcase_add_test(tc, broadcast_patterns_against_reference);
    tcase_add_test(tc, max_min_broadcast_derivatives);
    tcase_add_test(tc, ties_go_to_first_argument);
    tcase_add_test(tc, constants_and_mask);
    tcase_add_test(tc, errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(elementwise_suite());
}
