/* Layout ops: concat, stack, slice (slice_axis, narrow), index_select /
 * index_add, gather_axis / scatter_add. Values against hand-computed
 * results, third-order gradcheck in f64, first order in f32, errors, and
 * splitting a Jacobian per input with hg_narrow. */
#include "testutil.h"

#include <string.h>

/* y^3 of a linear op's output, so that orders 2 and 3 are not trivially 0. */
static hg_tensor *cube_of(hg_ctx *ctx, hg_tensor *y)
{
    return hg_mul(ctx, y, hg_mul(ctx, y, y));
}

static hg_tensor *f_concat(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    int axis = *(const int *)user;
    return cube_of(ctx, hg_concat(ctx, 3, in, axis));
}

static hg_tensor *f_stack(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    int axis = *(const int *)user;
    return cube_of(ctx, hg_stack(ctx, 2, in, axis));
}

static hg_tensor *f_slice(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    /* x[1:, ::2, -3:-1] on [3,5,4] */
    return cube_of(ctx, hg_slice(ctx, in[0], SHAPE(1, 0, -3), SHAPE(HG_SLICE_END, HG_SLICE_END, -1), SHAPE(1, 2, 1)));
}

static hg_tensor *f_index_select(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    int axis = *(const int *)user;
    return cube_of(ctx, hg_index_select(ctx, in[0], axis, in[1]));
}

static hg_tensor *f_index_add(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    return cube_of(ctx, hg_index_add(ctx, in[0], 1, in[1], in[2]));
}

static hg_tensor *f_gather_axis(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    int axis = *(const int *)user;
    return cube_of(ctx, hg_gather_axis(ctx, in[0], axis, in[1]));
}

static hg_tensor *f_scatter_add(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    return cube_of(ctx, hg_scatter_add(ctx, in[0], 0, in[1], in[2]));
}

static hg_tensor *i32(hg_ctx *ctx, int rank, const int64_t *shape, const int32_t *v)
{
    return hg_tensor_from(ctx, HG_I32, rank, shape, v);
}

START_TEST(concat_stack_values)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *a = T64(ctx, 2, SHAPE(2, 2), 1, 2, 3, 4), *b = T64(ctx, 2, SHAPE(2, 1), 5, 6);
    hg_tensor *ab[2] = {a, b};
    hg_tensor *c = hg_concat(ctx, 2, ab, -1);
    ck_assert_ctx_ok(ctx);
    ck_assert_int_eq(hg_tensor_dim(c, 1), 3);
    const double want[6] = {1, 2, 5, 3, 4, 6};
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(hg_get(c, i), want[i]);
    hg_tensor *aa[2] = {a, a};
    hg_tensor *r0 = hg_concat(ctx, 2, aa, 0);
    ck_assert_int_eq(hg_tensor_dim(r0, 0), 4);
    ck_assert_double_eq(hg_get(r0, 6), 3);
    /* stack on a new last axis: [2,2,2] with s[i,j,k] = (k ? b' : a)[i,j] */
    hg_tensor *a2 = hg_scale(ctx, a, 10);
    hg_tensor *pair[2] = {a, a2};
    hg_tensor *s = hg_stack(ctx, 2, pair, -1);
    ck_assert_int_eq(hg_tensor_rank(s), 3);
    ck_assert_int_eq(hg_tensor_dim(s, 2), 2);
    ck_assert_double_eq(hg_get(s, 0), 1);
    ck_assert_double_eq(hg_get(s, 1), 10);
    ck_assert_double_eq(hg_get(s, 7), 40);
    hg_tensor *s0 = hg_stack(ctx, 2, pair, 0);
    ck_assert_int_eq(hg_tensor_dim(s0, 0), 2);
    ck_assert_double_eq(hg_get(s0, 4), 10);
    /* Many inputs (a tree of concats) and i32. */
    hg_tensor *many[20];
    for (int i = 0; i < 20; i++)
        many[i] = hg_full(ctx, HG_F64, 1, SHAPE(i % 3), i);
    hg_tensor *m = hg_concat(ctx, 20, many, 0);
    ck_assert_ctx_ok(ctx);
    int64_t k = 0;
    for (int i = 0; i < 20; i++)
        for (int j = 0; j < i % 3; j++)
            ck_assert_double_eq(hg_get(m, k++), i);
    ck_assert_int_eq(hg_tensor_numel(m), k);
    /* stack of more than HG_MAX_OP_INPUTS tensors */
    hg_tensor *rows[11];
    for (int i = 0; i < 11; i++)
        rows[i] = hg_full(ctx, HG_F64, 1, SHAPE(2), i);
    hg_tensor *st = hg_stack(ctx, 11, rows, 1);
    ck_assert_int_eq(hg_tensor_dim(st, 0), 2);
    ck_assert_int_eq(hg_tensor_dim(st, 1), 11);
    ck_assert_double_eq(hg_get(st, 11 + 7), 7);
    hg_tensor *l[2] = {i32(ctx, 1, SHAPE(2), (const int32_t[]){1, 2}), i32(ctx, 1, SHAPE(1), (const int32_t[]){3})};
    hg_tensor *lc = hg_concat(ctx, 2, l, 0);
    ck_assert_int_eq(hg_tensor_dtype(lc), HG_I32);
    ck_assert_int_eq(hg_tensor_ci32(lc)[2], 3);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(slice_values)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = hg_reshape(ctx, hg_arange(ctx, HG_F64, 60, 0, 1), 3, SHAPE(3, 5, 4));
    hg_tensor *y = hg_slice(ctx, x, SHAPE(1, 0, -3), SHAPE(HG_SLICE_END, HG_SLICE_END, -1), SHAPE(1, 2, 1));
    ck_assert_ctx_ok(ctx);
    ck_assert_int_eq(hg_tensor_dim(y, 0), 2);
    ck_assert_int_eq(hg_tensor_dim(y, 1), 3);
    ck_assert_int_eq(hg_tensor_dim(y, 2), 2);
    int64_t p = 0;
    for (int i = 1; i < 3; i++)
        for (int j = 0; j < 5; j += 2)
            for (int l = 1; l < 3; l++)
                ck_assert_double_eq(hg_get(y, p++), i * 20 + j * 4 + l);
    /* Python clamping: [7:100] of 5 is empty; [-100:2] is [0:2]. */
    ck_assert_int_eq(hg_tensor_dim(hg_slice_axis(ctx, x, 1, 7, 100, 1), 1), 0);
    hg_tensor *z = hg_slice_axis(ctx, x, 1, -100, 2, 1);
    ck_assert_int_eq(hg_tensor_dim(z, 1), 2);
    ck_assert_double_eq(hg_get(z, 4), 4);
    /* step 3 from 1 on extent 5: elements 1, 4 */
    hg_tensor *w = hg_slice_axis(ctx, x, -2, 1, HG_SLICE_END, 3);
    ck_assert_int_eq(hg_tensor_dim(w, 1), 2);
    ck_assert_double_eq(hg_get(w, 4), 16);
    /* NULL arrays: the whole tensor */
    hg_tensor *all = hg_slice(ctx, x, NULL, NULL, NULL);
    ck_assert_int_eq(hg_tensor_numel(all), 60);
    ck_assert_double_eq(hg_get(all, 59), 59);
    /* narrow is strict */
    hg_tensor *n = hg_narrow(ctx, x, 0, 2, 1);
    ck_assert_int_eq(hg_tensor_dim(n, 0), 1);
    ck_assert_double_eq(hg_get(n, 0), 40);
    ck_assert_ctx_ok(ctx);
    ck_assert_ptr_null(hg_narrow(ctx, x, 0, 2, 2));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_narrow"));
    hg_ctx_clear_error(ctx);
    /* i32 slices */
    hg_tensor *li = hg_slice_axis(ctx, hg_arange(ctx, HG_I32, 6, 0, 1), 0, 1, 6, 2);
    ck_assert_int_eq(hg_tensor_ci32(li)[2], 5);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(index_values)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = hg_reshape(ctx, hg_arange(ctx, HG_F64, 12, 0, 1), 2, SHAPE(3, 4));
    hg_tensor *ix = i32(ctx, 1, SHAPE(3), (const int32_t[]){2, 0, 2});
    hg_tensor *r = hg_index_select(ctx, x, 0, ix);
    ck_assert_int_eq(hg_tensor_dim(r, 0), 3);
    ck_assert_double_eq(hg_get(r, 0), 8);
    ck_assert_double_eq(hg_get(r, 5), 1);
    hg_tensor *c = hg_index_select(ctx, x, -1, ix);
    ck_assert_int_eq(hg_tensor_dim(c, 1), 3);
    ck_assert_double_eq(hg_get(c, 3), 6); /* x[1, 2] */
    /* index_add accumulates repeats */
    hg_tensor *acc = hg_index_add(ctx, hg_zeros(ctx, HG_F64, 2, SHAPE(3, 4)), 0, ix,
                                  hg_ones(ctx, HG_F64, 2, SHAPE(3, 4)));
    ck_assert_double_eq(hg_get(acc, 8), 2);
    ck_assert_double_eq(hg_get(acc, 0), 1);
    ck_assert_double_eq(hg_get(acc, 4), 0);
    /* gather_axis: y[i, j] = x[i, idx[i, j]] */
    hg_tensor *gi = i32(ctx, 2, SHAPE(3, 2), (const int32_t[]){3, 0, 1, 1, 2, 3});
    hg_tensor *g = hg_gather_axis(ctx, x, 1, gi);
    const double want[6] = {3, 0, 5, 5, 10, 11};
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(hg_get(g, i), want[i]);
    /* along axis 0: y[i, j] = x[idx[i, j], j] */
    hg_tensor *g0i = i32(ctx, 2, SHAPE(1, 4), (const int32_t[]){2, 1, 0, 2});
    hg_tensor *g0 = hg_gather_axis(ctx, x, 0, g0i);
    ck_assert_double_eq(hg_get(g0, 0), 8);
    ck_assert_double_eq(hg_get(g0, 1), 5);
    ck_assert_double_eq(hg_get(g0, 2), 2);
    ck_assert_double_eq(hg_get(g0, 3), 11);
    hg_tensor *sa = hg_scatter_add(ctx, hg_zeros(ctx, HG_F64, 2, SHAPE(3, 4)), 1, gi,
                                   hg_ones(ctx, HG_F64, 2, SHAPE(3, 2)));
    ck_assert_double_eq(hg_get(sa, 5), 2); /* row 1 index 1 twice */
    ck_assert_double_eq(hg_get(sa, 3), 1);
    ck_assert_double_eq(hg_get(sa, 4), 0);
    ck_assert_ctx_ok(ctx);
    /* ranges */
    ck_assert_ptr_null(hg_index_select(ctx, x, 0, i32(ctx, 1, SHAPE(1), (const int32_t[]){3})));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_index_select"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_gather_axis(ctx, x, 1, i32(ctx, 2, SHAPE(3, 1), (const int32_t[]){0, -1, 0})));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(derivatives)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 3);
    for (int axis = 0; axis < 2; axis++) {
        hg_tensor *in[3] = {random_f64(ctx, &rng, 2, axis ? SHAPE(2, 1) : SHAPE(1, 3), -1, 1),
                            random_f64(ctx, &rng, 2, SHAPE(2, 3), -1, 1),
                            random_f64(ctx, &rng, 2, axis ? SHAPE(2, 2) : SHAPE(2, 3), -1, 1)};
        if (axis == 0)
            in[0] = random_f64(ctx, &rng, 2, SHAPE(1, 3), -1, 1);
        check_gradients(ctx, f_concat, 3, in, &axis, 3, "concat");
        check_f32_first_order(ctx, f_concat, 3, in, &axis, 1e-5, "concat f32");
        hg_tensor *two[2] = {in[1], random_f64(ctx, &rng, 2, SHAPE(2, 3), -1, 1)};
        int saxis = axis ? -1 : 1;
        check_gradients(ctx, f_stack, 2, two, &saxis, 3, "stack");
        check_f32_first_order(ctx, f_stack, 2, two, &saxis, 1e-5, "stack f32");
    }
    hg_tensor *x = random_f64(ctx, &rng, 3, SHAPE(3, 5, 4), -1, 1);
    check_gradients(ctx, f_slice, 1, &x, NULL, 3, "slice");
    check_f32_first_order(ctx, f_slice, 1, &x, NULL, 1e-5, "slice f32");
    hg_tensor *m = random_f64(ctx, &rng, 2, SHAPE(3, 4), -1, 1);
    for (int axis = 0; axis < 2; axis++) {
        hg_tensor *sel[2] = {m, i32(ctx, 1, SHAPE(4), (const int32_t[]){2, 0, 2, 1})};
        check_gradients(ctx, f_index_select, 2, sel, &axis, 3, "index_select");
        check_f32_first_order(ctx, f_index_select, 2, sel, &axis, 1e-5, "index_select f32");
    }
    hg_tensor *ia[3] = {m, i32(ctx, 1, SHAPE(3), (const int32_t[]){3, 3, 0}),
                        random_f64(ctx, &rng, 2, SHAPE(3, 3), -1, 1)};
    check_gradients(ctx, f_index_add, 3, ia, NULL, 3, "index_add");
    check_f32_first_order(ctx, f_index_add, 3, ia, NULL, 1e-5, "index_add f32");
    for (int axis = 0; axis < 2; axis++) {
        hg_tensor *gi = axis ? i32(ctx, 2, SHAPE(3, 2), (const int32_t[]){3, 0, 1, 1, 2, 3})
                             : i32(ctx, 2, SHAPE(2, 4), (const int32_t[]){2, 1, 0, 2, 0, 0, 1, 2});
        hg_tensor *ga[2] = {m, gi};
        check_gradients(ctx, f_gather_axis, 2, ga, &axis, 3, "gather_axis");
        check_f32_first_order(ctx, f_gather_axis, 2, ga, &axis, 1e-5, "gather_axis f32");
    }
    hg_tensor *sc[3] = {m, i32(ctx, 2, SHAPE(2, 4), (const int32_t[]){2, 1, 0, 2, 2, 0, 1, 2}),
                        random_f64(ctx, &rng, 2, SHAPE(2, 4), -1, 1)};
    check_gradients(ctx, f_scatter_add, 3, sc, NULL, 3, "scatter_add");
    check_f32_first_order(ctx, f_scatter_add, 3, sc, NULL, 1e-5, "scatter_add f32");
    hg_ctx_free(ctx);
}
END_TEST

/* f(a, b) = [sum(a^2 b), a0 b1] : a Jacobian [2, 3 + 2] split per input. */
static hg_tensor *two_inputs(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    hg_tensor *s = hg_reshape(ctx, hg_sum(ctx, hg_mul(ctx, hg_mul(ctx, in[0], in[0]), hg_sum(ctx, in[1]))), 1,
                              SHAPE(1));
    hg_tensor *p = hg_mul(ctx, hg_narrow(ctx, in[0], 0, 0, 1), hg_narrow(ctx, in[1], 0, 1, 1));
    hg_tensor *parts[2] = {s, p};
    return hg_concat(ctx, 2, parts, 0);
}

START_TEST(jacobian_split_per_input)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *a = T64(ctx, 1, SHAPE(3), 1, 2, 3), *b = T64(ctx, 1, SHAPE(2), 4, 5);
    hg_tensor *in[2] = {a, b}, *jac;
    ck_assert_int_eq(hg_jacobian(ctx, two_inputs, 2, in, NULL, 0, &jac), HG_OK);
    /* Columns [0, 3) belong to a, [3, 5) to b. */
    hg_tensor *ja = hg_narrow(ctx, jac, 1, 0, 3), *jb = hg_narrow(ctx, jac, 1, 3, 2);
    ck_assert_ctx_ok(ctx);
    /* d sum(a^2) (b0 + b1) / da = 2 a (b0 + b1); d/db = sum(a^2) */
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq(hg_get(ja, i), 2 * (i + 1) * 9.0);
    ck_assert_double_eq(hg_get(jb, 0), 14);
    ck_assert_double_eq(hg_get(jb, 1), 14);
    /* d a0 b1: da = [b1, 0, 0], db = [0, a0] */
    ck_assert_double_eq(hg_get(ja, 3), 5);
    ck_assert_double_eq(hg_get(ja, 4), 0);
    ck_assert_double_eq(hg_get(jb, 2), 0);
    ck_assert_double_eq(hg_get(jb, 3), 1);
    /* Recorded (create-graph) Jacobians use the same concat and stay
     * differentiable: d/da of sum(J) once more through a tape. */
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch_n(t, 2, in);
    ck_assert_int_eq(hg_jacobian(ctx, two_inputs, 2, in, NULL, HG_FUNC_CREATE_GRAPH, &jac), HG_OK);
    hg_tensor *s = hg_sum(ctx, hg_narrow(ctx, jac, 1, 0, 3));
    hg_tape_end(t);
    hg_tensor *g[2];
    ck_assert_int_eq(hg_gradient(t, s, 2, in, NULL, g), HG_OK);
    /* sum over i of 2 a_i (b0+b1) + b1: d/da_i = 2 (b0+b1) = 18; d/db = 2 sum a + [0, 1] = 12, 13 */
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq(hg_get(g[0], i), 18);
    ck_assert_double_eq(hg_get(g[1], 0), 12);
    ck_assert_double_eq(hg_get(g[1], 1), 13);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* g(a, b) = sum(a^2) * sum(b) + a0 b1^2: the Hessian [5, 5] split into the
 * (a, a), (a, b), (b, b) blocks with hg_narrow. */
static hg_tensor *scalar_two_inputs(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    hg_tensor *s = hg_mul(ctx, hg_sum(ctx, hg_mul(ctx, in[0], in[0])), hg_sum(ctx, in[1]));
    hg_tensor *b1 = hg_narrow(ctx, in[1], 0, 1, 1);
    return hg_add(ctx, s, hg_sum(ctx, hg_mul(ctx, hg_narrow(ctx, in[0], 0, 0, 1), hg_mul(ctx, b1, b1))));
}

START_TEST(hessian_split_per_input)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *a = T64(ctx, 1, SHAPE(3), 1, 2, 3), *b = T64(ctx, 1, SHAPE(2), 4, 5);
    hg_tensor *in[2] = {a, b}, *H;
    ck_assert_int_eq(hg_hessian(ctx, scalar_two_inputs, 2, in, NULL, 0, &H), HG_OK);
    hg_tensor *rows_a = hg_narrow(ctx, H, 0, 0, 3), *rows_b = hg_narrow(ctx, H, 0, 3, 2);
    hg_tensor *Haa = hg_narrow(ctx, rows_a, 1, 0, 3), *Hab = hg_narrow(ctx, rows_a, 1, 3, 2);
    hg_tensor *Hbb = hg_narrow(ctx, rows_b, 1, 3, 2), *Hba = hg_narrow(ctx, rows_b, 1, 0, 3);
    ck_assert_ctx_ok(ctx);
    /* Haa = 2 (b0 + b1) I = 18 I; Hab[i][j] = 2 a_i + [i = 0][j = 1] 2 b1; Hbb = [[0,0],[0, 2 a0]] */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            ck_assert_double_eq(hg_get(Haa, i * 3 + j), i == j ? 18 : 0);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) {
            double want = 2 * (i + 1) + (i == 0 && j == 1 ? 10 : 0);
            ck_assert_double_eq(hg_get(Hab, i * 2 + j), want);
            ck_assert_double_eq(hg_get(Hba, j * 3 + i), want); /* symmetric */
        }
    ck_assert_double_eq(hg_get(Hbb, 0), 0);
    ck_assert_double_eq(hg_get(Hbb, 1), 0);
    ck_assert_double_eq(hg_get(Hbb, 3), 2);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(errors)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *a = hg_ones(ctx, HG_F64, 2, SHAPE(2, 3)), *b = hg_ones(ctx, HG_F64, 2, SHAPE(3, 3));
    hg_tensor *ab[2] = {a, b};
    ck_assert_ptr_null(hg_concat(ctx, 2, ab, 1));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx),
                                 "hg_concat: input 1 [3,3] does not fit input 0 [2,3] along axis 1"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_nonnull(hg_concat(ctx, 2, ab, 0));
    ck_assert_ptr_null(hg_stack(ctx, 2, ab, 0));
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_stack: input 1 [3,3] differs from input 0 [2,3]"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_index_select(ctx, a, -5, hg_zeros(ctx, HG_I32, 1, SHAPE(1))));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_index_select: axis -5 outside the rank of [2,3]"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_slice_axis(ctx, a, 0, 0, 1, 0));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "step 0"));
    hg_ctx_free(ctx);
}
END_TEST

static Suite *layout_suite(void)
{
    Suite *s = suite_create("layout");
    TCase *tc = tcase_create("layout");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, concat_stack_values);
    tcase_add_test(tc, slice_values);
    tcase_add_test(tc, index_values);
    tcase_add_test(tc, derivatives);
    tcase_add_test(tc, jacobian_split_per_input);
    tcase_add_test(tc, hessian_split_per_input);
    tcase_add_test(tc, errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(layout_suite());
}
