/* Reductions and shape ops: values (hand-computed, and the collapsed fast
 * loops against naive index arithmetic over many shapes), derivatives to
 * third order (the ops are linear, so each check composes with x*x), and
 * errors. */
#include "testutil.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static void assert_shape(hg_tensor *t, int rank, const int64_t *shape)
{
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(hg_tensor_rank(t), rank);
    for (int i = 0; i < rank; i++)
        ck_assert_int_eq(hg_tensor_dim(t, i), shape[i]);
}

static void assert_values(hg_tensor *t, int n, const double *want)
{
    ck_assert_int_eq(hg_tensor_numel(t), n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(hg_get(t, i) == want[i], "element %d: %g, expected %g", i, hg_get(t, i), want[i]);
}

START_TEST(sum_mean_values)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 2, SHAPE(2, 3), 1, 2, 3, 4, 5, 6);
    hg_tensor *s = hg_sum(ctx, x);
    assert_shape(s, 0, NULL);
    ck_assert_double_eq(hg_item(s), 21);
    ck_assert_double_eq(hg_item(hg_mean(ctx, x)), 3.5);

    /* axis 0, 1, -1, with and without keepdim */
    hg_tensor *t = hg_sum_axis(ctx, x, 0, 0);
    assert_shape(t, 1, SHAPE(3));
    assert_values(t, 3, (const double[]){5, 7, 9});
    t = hg_sum_axis(ctx, x, 0, 1);
    assert_shape(t, 2, SHAPE(1, 3));
    assert_values(t, 3, (const double[]){5, 7, 9});
    t = hg_sum_axis(ctx, x, 1, 0);
    assert_shape(t, 1, SHAPE(2));
    assert_values(t, 2, (const double[]){6, 15});
    t = hg_sum_axis(ctx, x, 1, 1);
    assert_shape(t, 2, SHAPE(2, 1));
    assert_values(t, 2, (const double[]){6, 15});
    t = hg_sum_axis(ctx, x, -1, 0);
    assert_shape(t, 1, SHAPE(2));
    assert_values(t, 2, (const double[]){6, 15});
    t = hg_sum_axis(ctx, x, -2, 1);
    assert_shape(t, 2, SHAPE(1, 3));
    assert_values(t, 3, (const double[]){5, 7, 9});
    t = hg_mean_axis(ctx, x, 0, 0);
    assert_values(t, 3, (const double[]){2.5, 3.5, 4.5});
    t = hg_mean_axis(ctx, x, -1, 1);
    assert_shape(t, 2, SHAPE(2, 1));
    assert_values(t, 2, (const double[]){2, 5});
    /* rank 3, middle axis */
    hg_tensor *x3 = hg_reshape(ctx, hg_arange(ctx, HG_F64, 24, 0, 1), 3, SHAPE(2, 3, 4));
    t = hg_sum_axis(ctx, x3, 1, 0);
    assert_shape(t, 2, SHAPE(2, 4));
    /* t[1][2] = x[1][0][2] + x[1][1][2] + x[1][2][2] = 14 + 18 + 22 */
    ck_assert_double_eq(hg_get(t, 6), 54);

    /* sum_to */
    t = hg_sum_to(ctx, x, 1, SHAPE(3));
    assert_shape(t, 1, SHAPE(3));
    assert_values(t, 3, (const double[]){5, 7, 9});
    t = hg_sum_to(ctx, x, 2, SHAPE(2, 1));
    assert_shape(t, 2, SHAPE(2, 1));
    assert_values(t, 2, (const double[]){6, 15});
    t = hg_sum_to(ctx, x, 0, NULL);
    assert_shape(t, 0, NULL);
    ck_assert_double_eq(hg_item(t), 21);
    t = hg_sum_to(ctx, x, 2, SHAPE(1, 1));
    assert_values(t, 1, (const double[]){21});
    t = hg_sum_to(ctx, x, 2, SHAPE(2, 3));
    assert_values(t, 6, (const double[]){1, 2, 3, 4, 5, 6});

    /* Empty tensors: sum is 0, mean is NaN. */
    hg_tensor *e = hg_zeros(ctx, HG_F64, 2, SHAPE(0, 3));
    assert_values(hg_sum_axis(ctx, e, 0, 0), 3, (const double[]){0, 0, 0});
    ck_assert_int_eq(hg_tensor_numel(hg_sum_axis(ctx, e, 1, 0)), 0);
    ck_assert(isnan(hg_item(hg_mean(ctx, e))));

    /* f32 sums accumulate in double: whole tensor and leading axis. */
    hg_tensor *many = hg_full(ctx, HG_F32, 1, SHAPE(1000000), 0.1);
    ck_assert_double_eq_tol(hg_item(hg_sum(ctx, many)), 100000.0, 0.01);
    hg_tensor *cols = hg_full(ctx, HG_F32, 2, SHAPE(200000, 3), 0.1);
    hg_tensor *c = hg_sum_to(ctx, cols, 1, SHAPE(3));
    ck_assert_int_eq(hg_tensor_dtype(c), HG_F32);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(hg_get(c, i), 20000.0, 0.01);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(shape_values)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 2, SHAPE(2, 3), 1, 2, 3, 4, 5, 6);
    hg_tensor *b = hg_broadcast_to(ctx, T64(ctx, 1, SHAPE(3), 1, 2, 3), 2, SHAPE(2, 3));
    assert_values(b, 6, (const double[]){1, 2, 3, 1, 2, 3});
    b = hg_broadcast_to(ctx, T64(ctx, 2, SHAPE(2, 1), 7, 8), 2, SHAPE(2, 3));
    assert_values(b, 6, (const double[]){7, 7, 7, 8, 8, 8});
    b = hg_broadcast_to(ctx, hg_scalar(ctx, HG_F64, 4), 2, SHAPE(2, 2));
    assert_values(b, 4, (const double[]){4, 4, 4, 4});
    b = hg_broadcast_to(ctx, x, 3, SHAPE(2, 2, 3));
    assert_values(b, 12, (const double[]){1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6});

    hg_tensor *r = hg_reshape(ctx, x, 2, SHAPE(-1, 2));
    assert_shape(r, 2, SHAPE(3, 2));
    assert_values(r, 6, (const double[]){1, 2, 3, 4, 5, 6});
    r = hg_reshape(ctx, x, 3, SHAPE(3, 1, -1));
    assert_shape(r, 3, SHAPE(3, 1, 2));
    r = hg_reshape(ctx, x, 1, SHAPE(-1));
    assert_shape(r, 1, SHAPE(6));
    r = hg_reshape(ctx, hg_scalar(ctx, HG_F64, 2), 2, SHAPE(1, -1));
    assert_shape(r, 2, SHAPE(1, 1));

    hg_tensor *t = hg_transpose(ctx, x);
    assert_shape(t, 2, SHAPE(3, 2));
    assert_values(t, 6, (const double[]){1, 4, 2, 5, 3, 6});

    hg_tensor *x3 = hg_reshape(ctx, hg_arange(ctx, HG_F64, 24, 0, 1), 3, SHAPE(2, 3, 4));
    hg_tensor *p = hg_permute(ctx, x3, (const int[]){2, 0, 1});
    assert_shape(p, 3, SHAPE(4, 2, 3));
    /* p[i][j][k] = x3[j][k][i] = 12 j + 4 k + i */
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 3; k++)
                ck_assert_double_eq(hg_get(p, i * 6 + j * 3 + k), 12 * j + 4 * k + i);
    p = hg_permute(ctx, x3, (const int[]){1, 0, 2}); /* keeps the last axis: row copies */
    assert_shape(p, 3, SHAPE(3, 2, 4));
    ck_assert_double_eq(hg_get(p, 1 * 8 + 1 * 4 + 3), 12 + 4 + 3);
    /* i32 tensors can be reshaped and permuted (not differentiated). */
    hg_tensor *ip = hg_permute(ctx, hg_reshape(ctx, hg_arange(ctx, HG_I32, 6, 0, 1), 2, SHAPE(2, 3)),
                               (const int[]){1, 0});
    ck_assert_int_eq(hg_tensor_dtype(ip), HG_I32);
    ck_assert_double_eq(hg_get(ip, 1), 3);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- fast loops against naive index arithmetic ------------------------- */

/* Flat index of x (shape xs, rank rx) for the multi-index of big (rank rb)
 * under right-aligned broadcasting (extent 1 reads index 0). */
static int64_t bcast_index(int rb, const int64_t *idx, int rx, const int64_t *xs)
{
    int64_t f = 0;
    for (int i = 0; i < rx; i++) {
        int64_t k = xs[i] == 1 ? 0 : idx[i + rb - rx];
        f = f * xs[i] + k;
    }
    return f;
}

static bool next_index(int rank, const int64_t *shape, int64_t *idx)
{
    for (int d = rank - 1; d >= 0; d--) {
        if (++idx[d] < shape[d])
            return true;
        idx[d] = 0;
    }
    return false;
}

typedef struct pair_case {
    int rb;
    int64_t big[4];
    int rs;
    int64_t small[4];
} pair_case;

static const pair_case pair_cases[] = {
    {2, {5, 7}, 1, {7}},
    {2, {5, 7}, 2, {5, 1}},
    {2, {5, 7}, 0, {0}},
    {2, {5, 7}, 2, {1, 7}},
    {3, {3, 4, 5}, 2, {4, 1}},
    {3, {3, 4, 5}, 3, {3, 1, 5}},
    {3, {3, 4, 5}, 3, {1, 4, 1}},
    {3, {3, 1, 5}, 1, {5}},
    {4, {2, 3, 4, 5}, 4, {2, 1, 4, 1}},
    {4, {2, 3, 4, 5}, 3, {3, 1, 5}},
    {2, {3, 700}, 1, {700}},
    {3, {2, 3, 600}, 3, {2, 1, 600}},
    {3, {2, 3, 4}, 3, {2, 3, 4}},
    {1, {9}, 1, {1}},
    {3, {1, 1, 1}, 0, {0}},
};

START_TEST(sum_to_broadcast_match_naive)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 11);
    for (size_t c = 0; c < sizeof pair_cases / sizeof pair_cases[0]; c++) {
        const pair_case *pc = &pair_cases[c];
        for (int f32 = 0; f32 < 2; f32++) {
            hg_dtype dt = f32 ? HG_F32 : HG_F64;
            hg_tensor *big = hg_rand_uniform(ctx, &rng, dt, pc->rb, pc->big, -1, 1);
            hg_tensor *small = hg_rand_uniform(ctx, &rng, dt, pc->rs, pc->small, -1, 1);
            hg_tensor *sum = hg_sum_to(ctx, big, pc->rs, pc->small);
            hg_tensor *bc = hg_broadcast_to(ctx, small, pc->rb, pc->big);
            ck_assert_ctx_ok(ctx);
            int64_t ns = hg_tensor_numel(small);
            double want[4096] = {0};
            ck_assert_int_le(ns, 4096);
            int64_t idx[4] = {0};
            int64_t i = 0;
            do {
                int64_t k = bcast_index(pc->rb, idx, pc->rs, pc->small);
                want[k] += hg_get(big, i);
                ck_assert_msg(hg_get(bc, i) == hg_get(small, k), "case %zu broadcast element %lld", c, (long long)i);
                i++;
            } while (next_index(pc->rb, pc->big, idx));
            for (int64_t k = 0; k < ns; k++)
                ck_assert_msg(fabs(hg_get(sum, k) - want[k]) <= (f32 ? 1e-4 : 1e-12),
                              "case %zu %s sum_to element %lld: %g vs %g", c, f32 ? "f32" : "f64", (long long)k,
                              hg_get(sum, k), want[k]);
        }
    }
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(permute_matches_naive)
{
    static const struct {
        int rank;
        int64_t shape[4];
        int perm[4];
    } cases[] = {
        {2, {37, 45}, {1, 0}},           {3, {3, 4, 5}, {2, 0, 1}},       {3, {3, 4, 5}, {1, 2, 0}},
        {3, {3, 4, 5}, {0, 2, 1}},       {3, {3, 4, 5}, {2, 1, 0}},       {3, {3, 4, 5}, {1, 0, 2}},
        {4, {2, 3, 4, 5}, {0, 3, 1, 2}}, {4, {2, 1, 4, 5}, {3, 1, 0, 2}}, {4, {2, 3, 4, 5}, {2, 3, 0, 1}},
        {3, {1, 7, 1}, {2, 1, 0}},       {3, {2, 3, 4}, {0, 1, 2}},       {2, {70, 33}, {1, 0}},
    };
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 12);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int f32 = 0; f32 < 2; f32++) {
            int r = cases[c].rank;
            hg_tensor *x = hg_rand_uniform(ctx, &rng, f32 ? HG_F32 : HG_F64, r, cases[c].shape, -1, 1);
            hg_tensor *y = hg_permute(ctx, x, cases[c].perm);
            ck_assert_ctx_ok(ctx);
            int64_t oshape[4], idx[4] = {0}, i = 0;
            for (int d = 0; d < r; d++)
                oshape[d] = cases[c].shape[cases[c].perm[d]];
            do {
                int64_t xi[4], f = 0;
                for (int d = 0; d < r; d++)
                    xi[cases[c].perm[d]] = idx[d];
                for (int d = 0; d < r; d++)
                    f = f * cases[c].shape[d] + xi[d];
                ck_assert_msg(hg_get(y, i) == hg_get(x, f), "case %zu element %lld", c, (long long)i);
                i++;
            } while (next_index(r, oshape, idx));
            ck_assert_int_eq(i, hg_tensor_numel(x));
        }
    hg_ctx_free(ctx);
}
END_TEST

/* ---- derivatives -------------------------------------------------------- */

typedef struct spec {
    int which;
    int axis, keepdim;
} spec;

/* Each case applies the op to x*x (so higher derivatives are nontrivial);
 * x is [2,3]. */
static hg_tensor *call_spec(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    const spec *s = user;
    hg_tensor *x = hg_mul(ctx, in[0], in[0]);
    switch (s->which) {
    case 0: return hg_sum(ctx, x);
    case 1: return hg_mean(ctx, x);
    case 2: return hg_sum_axis(ctx, x, s->axis, s->keepdim);
    case 3: return hg_mean_axis(ctx, x, s->axis, s->keepdim);
    case 4: return hg_sum_to(ctx, x, 1, SHAPE(3));
    case 5: return hg_sum_to(ctx, x, 2, SHAPE(2, 1));
    case 6: return hg_sum_to(ctx, x, 0, NULL);
    case 7: return hg_broadcast_to(ctx, x, 3, SHAPE(4, 2, 3));
    case 8: return hg_broadcast_to(ctx, hg_sum_axis(ctx, x, 1, 1), 2, SHAPE(2, 5));
    case 9: return hg_reshape(ctx, x, 2, SHAPE(3, -1));
    case 10: return hg_transpose(ctx, x);
    case 11: return hg_permute(ctx, hg_reshape(ctx, x, 3, SHAPE(1, 2, 3)), (const int[]){2, 0, 1});
    /* rank 3: x[i,j] in[i,k] as a [2,3,3] tensor, permuted */
    case 12: {
        hg_tensor *outer = hg_mul(ctx, hg_reshape(ctx, x, 3, SHAPE(2, 3, 1)),
                                  hg_reshape(ctx, in[0], 3, SHAPE(2, 1, 3)));
        return hg_permute(ctx, outer, (const int[]){1, 2, 0});
    }
    /* rank 3: [2,1,3] broadcast to [2,4,3], summed to [4,1] */
    default:
        return hg_sum_to(ctx, hg_broadcast_to(ctx, hg_reshape(ctx, x, 3, SHAPE(2, 1, 3)), 3, SHAPE(2, 4, 3)), 2,
                         SHAPE(4, 1));
    }
}

START_TEST(derivatives)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 2, SHAPE(2, 3), 0.3, -1.2, 0.8, 1.5, -0.6, 2.2);
    const spec specs[] = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0},  {2, 0, 1},  {2, 1, 0},  {2, 1, 1}, {2, -1, 0}, {2, -1, 1},
                          {3, 0, 0}, {3, 0, 1}, {3, 1, 0},  {3, -1, 1}, {4, 0, 0},  {5, 0, 0}, {6, 0, 0},  {7, 0, 0},
                          {8, 0, 0}, {9, 0, 0}, {10, 0, 0}, {11, 0, 0}, {12, 0, 0}, {13, 0, 0}};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "case %d axis %d keepdim %d", specs[i].which, specs[i].axis, specs[i].keepdim);
        check_gradients(ctx, call_spec, 1, &x, (void *)&specs[i], 2, what);
    }
    /* Third order on a few (the vjps of vjps of vjps). */
    check_gradients(ctx, call_spec, 1, &x, (void *)&specs[3], 3, "sum_axis keepdim, order 3");
    check_gradients(ctx, call_spec, 1, &x, (void *)&specs[20], 3, "rank-3 permute, order 3");
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* Each call checked alone (the first error is sticky, so clear in between). */
#define EXPECT_ERROR(ctx, call, code, t1, t2)                                                                       \
    do {                                                                                                            \
        hg_ctx_clear_error(ctx);                                                                                    \
        ck_assert_ptr_null(call);                                                                                   \
        ck_assert_msg(hg_ctx_status(ctx) == (code), "%s: status %s: %s", #call, hg_status_name(hg_ctx_status(ctx)), \
                      hg_ctx_error(ctx));                                                                           \
        ck_assert_msg(strstr(hg_ctx_error(ctx), (t1)) && strstr(hg_ctx_error(ctx), (t2)),                           \
                      "%s: message \"%s\" lacks \"%s\" or \"%s\"", #call, hg_ctx_error(ctx), (t1), (t2));           \
        hg_ctx_clear_error(ctx);                                                                                    \
    } while (0)

START_TEST(error_cases)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = hg_ones(ctx, HG_F64, 2, SHAPE(2, 3));
    hg_tensor *ix = hg_arange(ctx, HG_I32, 3, 0, 1);
    EXPECT_ERROR(ctx, hg_sum_axis(ctx, x, 2, 0), HG_ERR_RANGE, "hg_sum_axis: axis 2", "[2,3]");
    EXPECT_ERROR(ctx, hg_mean_axis(ctx, x, -3, 1), HG_ERR_RANGE, "hg_mean_axis: axis -3", "[2,3]");
    EXPECT_ERROR(ctx, hg_sum_axis(ctx, hg_scalar(ctx, HG_F64, 1), 1, 0), HG_ERR_RANGE, "axis 1",
                 "[]"); /* rank 0: axis 0 or -1 only */
    EXPECT_ERROR(ctx, hg_sum_to(ctx, x, 1, SHAPE(2)), HG_ERR_SHAPE, "hg_sum_to", "[2,3] down to [2]");
    EXPECT_ERROR(ctx, hg_sum_to(ctx, x, 3, SHAPE(1, 2, 3)), HG_ERR_SHAPE, "hg_sum_to", "[1,2,3]");
    EXPECT_ERROR(ctx, hg_sum_to(ctx, x, 7, SHAPE(1, 1, 1, 1, 1, 2, 3)), HG_ERR_SHAPE, "hg_sum_to", "rank 7");
    EXPECT_ERROR(ctx, hg_sum_to(ctx, x, 1, NULL), HG_ERR_NULL, "hg_sum_to", "NULL");
    EXPECT_ERROR(ctx, hg_broadcast_to(ctx, x, 2, SHAPE(3, 3)), HG_ERR_SHAPE, "hg_broadcast_to", "[2,3] to [3,3]");
    EXPECT_ERROR(ctx, hg_broadcast_to(ctx, x, 1, SHAPE(3)), HG_ERR_SHAPE, "hg_broadcast_to", "[2,3] to [3]");
    EXPECT_ERROR(ctx, hg_broadcast_to(ctx, x, 2, NULL), HG_ERR_NULL, "hg_broadcast_to", "NULL");
    EXPECT_ERROR(ctx, hg_reshape(ctx, x, 2, SHAPE(4, 2)), HG_ERR_SHAPE, "hg_reshape", "[2,3]");
    EXPECT_ERROR(ctx, hg_reshape(ctx, x, 2, SHAPE(-1, -1)), HG_ERR_SHAPE, "hg_reshape", "[-1,-1]");
    EXPECT_ERROR(ctx, hg_reshape(ctx, x, 2, SHAPE(-1, 4)), HG_ERR_SHAPE, "hg_reshape", "[2,3]");
    EXPECT_ERROR(ctx, hg_reshape(ctx, x, 2, SHAPE(-2, -3)), HG_ERR_SHAPE, "hg_reshape", "[-2,-3]");
    EXPECT_ERROR(ctx, hg_reshape(ctx, x, 2, NULL), HG_ERR_NULL, "hg_reshape", "NULL");
    EXPECT_ERROR(ctx, hg_permute(ctx, x, (const int[]){0, 0}), HG_ERR_RANGE, "hg_permute: (0,0)", "[2,3]");
    EXPECT_ERROR(ctx, hg_permute(ctx, x, (const int[]){0, 2}), HG_ERR_RANGE, "hg_permute: (0,2)", "[2,3]");
    EXPECT_ERROR(ctx, hg_permute(ctx, x, NULL), HG_ERR_NULL, "hg_permute", "NULL");
    EXPECT_ERROR(ctx, hg_transpose(ctx, hg_ones(ctx, HG_F64, 1, SHAPE(3))), HG_ERR_SHAPE, "hg_transpose", "[3]");
    EXPECT_ERROR(ctx, hg_sum(ctx, ix), HG_ERR_DTYPE, "hg_sum:", "i32"); /* its own name, not hg_sum_to */
    EXPECT_ERROR(ctx, hg_mean(ctx, ix), HG_ERR_DTYPE, "hg_mean", "i32");
    EXPECT_ERROR(ctx, hg_sum_axis(ctx, ix, 0, 0), HG_ERR_DTYPE, "hg_sum_axis", "i32");
    EXPECT_ERROR(ctx, hg_broadcast_to(ctx, ix, 2, SHAPE(2, 3)), HG_ERR_DTYPE, "hg_broadcast_to", "i32");
    EXPECT_ERROR(ctx, hg_sum(ctx, NULL), HG_ERR_NULL, "hg_sum:", "NULL");
    EXPECT_ERROR(ctx, hg_reshape(ctx, NULL, 1, SHAPE(3)), HG_ERR_NULL, "hg_reshape", "NULL");
    EXPECT_ERROR(ctx, hg_mean_axis(ctx, NULL, 0, 0), HG_ERR_NULL, "hg_mean_axis", "NULL");
    /* A NULL input keeps the first error. */
    ck_assert_ptr_null(hg_sum_to(ctx, x, 1, SHAPE(2)));
    ck_assert_ptr_null(hg_mean(ctx, NULL));
    ck_assert_ptr_null(hg_sum_axis(ctx, NULL, 0, 0));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    /* NULL ctx: NULL, nothing else. */
    ck_assert_ptr_null(hg_sum_axis(NULL, x, 0, 0));
    ck_assert_ptr_null(hg_sum_to(NULL, x, 1, SHAPE(3)));
    ck_assert_ptr_null(hg_broadcast_to(NULL, x, 2, SHAPE(2, 3)));
    ck_assert_ptr_null(hg_reshape(NULL, x, 1, SHAPE(6)));
    ck_assert_ptr_null(hg_permute(NULL, x, (const int[]){1, 0}));
    ck_assert_ptr_null(hg_transpose(NULL, x));
    ck_assert_ptr_null(hg_mean(NULL, x));
    hg_ctx_free(ctx);
}
END_TEST

static Suite *reduce_shape_suite(void)
{
    Suite *s = suite_create("reduce_shape");
    TCase *tc = tcase_create("reduce_shape");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, sum_mean_values);
    tcase_add_test(tc, shape_values);
    tcase_add_test(tc, sum_to_broadcast_match_naive);
    tcase_add_test(tc, permute_matches_naive);
    tcase_add_test(tc, derivatives);
    tcase_add_test(tc, error_cases);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(reduce_shape_suite());
}
