/* The bad-input matrix: every public call given what it must refuse.
 *
 *  - wrong shapes and dtypes for every op (ops.h) and for nn.h/optim.h;
 *  - NULL for every pointer argument of the public API (NULL ctx, NULL
 *    tensors, NULL arrays, NULL paths...);
 *  - tape misuse (order, reuse, depth, flags, recording, sweeps);
 *  - tensors and tapes from a rewound region as inputs, watched tensors,
 *    gradient targets, sources and seeds;
 *  - element and byte counts that overflow;
 *  - NaN and Inf inputs, which must propagate as IEEE arithmetic does.
 *
 * A refused call must return NULL (or an error status) and leave the
 * expected status and a non-empty message on the ctx; nothing aborts. The
 * number of bad inputs tried is printed at the end. The suite runs without
 * forking so that the count covers every test. */
#include "testutil.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long tried;

/* A call returning a tensor (or another pointer) must be refused with code. */
#define BAD(ctx, code, expr)                                                                                         \
    do {                                                                                                             \
        hg_ctx_clear_error(ctx);                                                                                     \
        const void *r_ = (expr);                                                                                     \
        tried++;                                                                                                     \
        ck_assert_msg(r_ == NULL, "line %d: %s was accepted", __LINE__, #expr);                                      \
        ck_assert_msg(hg_ctx_status(ctx) == (code), "line %d: %s: status %s (\"%s\"), expected %s", __LINE__, #expr, \
                      hg_status_name(hg_ctx_status(ctx)), hg_ctx_error(ctx), hg_status_name(code));                  \
        ck_assert_msg(hg_ctx_error(ctx)[0] != '\0', "line %d: %s: empty message", __LINE__, #expr);                  \
    } while (0)

/* A call returning hg_status must return code and leave it on the ctx. */
#define BAD_ST(ctx, code, expr)                                                                                 \
    do {                                                                                                        \
        hg_ctx_clear_error(ctx);                                                                                \
        hg_status s_ = (expr);                                                                                  \
        tried++;                                                                                                \
        ck_assert_msg(s_ == (code), "line %d: %s returned %s (\"%s\"), expected %s", __LINE__, #expr,           \
                      hg_status_name(s_), hg_ctx_error(ctx), hg_status_name(code));                             \
        ck_assert_msg(hg_ctx_status(ctx) == (code), "line %d: %s: ctx status %s, expected %s", __LINE__, #expr, \
                      hg_status_name(hg_ctx_status(ctx)), hg_status_name(code));                                \
        ck_assert_msg(hg_ctx_error(ctx)[0] != '\0', "line %d: %s: empty message", __LINE__, #expr);             \
    } while (0)

/* No ctx can be reached (NULL ctx, NULL or stale tape): only the return. */
#define BAD_NOCTX(cond)                                        \
    do {                                                       \
        tried++;                                               \
        ck_assert_msg((cond), "line %d: %s", __LINE__, #cond); \
    } while (0)

/* A NULL result with an earlier error: the earlier error stays. */
#define KEEPS_FIRST(ctx, expr)                                                                                     \
    do {                                                                                                           \
        hg_ctx_clear_error(ctx);                                                                                   \
        hg_op_error(ctx, HG_ERR_RANGE, "first");                                                                   \
        const void *r_ = (expr);                                                                                   \
        tried++;                                                                                                   \
        ck_assert_msg(r_ == NULL && hg_ctx_status(ctx) == HG_ERR_RANGE && strcmp(hg_ctx_error(ctx), "first") == 0, \
                      "line %d: %s overwrote the first error", __LINE__, #expr);                                   \
        hg_ctx_clear_error(ctx);                                                                                   \
    } while (0)

static hg_ctx *ctx;
/* f64 [2,3], f64 [3,2], f64 [3], f64 scalar, f32 [2,3], i32 [2] labels {0,1},
 * i32 [2,3], f64 [2,2], f64 [2,3,4] */
static hg_tensor *a, *b, *v, *sc, *f, *lab, *ia, *sq, *cube;

static void setup(void)
{
    /* A byte limit: oversized requests are refused before the allocator. */
    hg_ctx_options opts = {.max_bytes = (size_t)1 << 30};
    ctx = hg_ctx_new(&opts);
    a = T64(ctx, 2, SHAPE(2, 3), 1, 2, 3, 4, 5, 6);
    b = T64(ctx, 2, SHAPE(3, 2), 1, 2, 3, 4, 5, 6);
    v = T64(ctx, 1, SHAPE(3), 1, 2, 3);
    sc = hg_scalar(ctx, HG_F64, 2.0);
    f = hg_full(ctx, HG_F32, 2, SHAPE(2, 3), 0.5);
    lab = hg_tensor_from(ctx, HG_I32, 1, SHAPE(2), (const int32_t[]){0, 1});
    ia = hg_zeros(ctx, HG_I32, 2, SHAPE(2, 3));
    sq = T64(ctx, 2, SHAPE(2, 2), 1, 2, 3, 4);
    cube = hg_ones(ctx, HG_F64, 3, SHAPE(2, 3, 4));
    ck_assert_ctx_ok(ctx);
}

static void teardown(void)
{
    hg_ctx_free(ctx);
    ctx = NULL;
}

/* ---- wrong shapes and dtypes: ops.h ------------------------------------------- */

typedef hg_tensor *(*binary_fn)(hg_ctx *, hg_tensor *, hg_tensor *);
typedef hg_tensor *(*unary_fn)(hg_ctx *, hg_tensor *);

static hg_tensor *scale2(hg_ctx *c, hg_tensor *x)
{
    return hg_scale(c, x, 2.0);
}
static hg_tensor *add2(hg_ctx *c, hg_tensor *x)
{
    return hg_add_scalar(c, x, 2.0);
}
static hg_tensor *pow3(hg_ctx *c, hg_tensor *x)
{
    return hg_pow_scalar(c, x, 3.0);
}
static hg_tensor *sum0(hg_ctx *c, hg_tensor *x)
{
    return hg_sum_axis(c, x, 0, 0);
}
static hg_tensor *mean0(hg_ctx *c, hg_tensor *x)
{
    return hg_mean_axis(c, x, 0, 1);
}
static hg_tensor *softmax1(hg_ctx *c, hg_tensor *x)
{
    return hg_softmax(c, x, -1);
}
static hg_tensor *log_softmax1(hg_ctx *c, hg_tensor *x)
{
    return hg_log_softmax(c, x, -1);
}
static hg_tensor *matmul_tt(hg_ctx *c, hg_tensor *x, hg_tensor *y)
{
    return hg_matmul_t(c, x, y, 1, 1);
}
static hg_tensor *clamp01(hg_ctx *c, hg_tensor *x)
{
    return hg_clamp(c, x, 0.0, 1.0);
}
static hg_tensor *leaky01(hg_ctx *c, hg_tensor *x)
{
    return hg_leaky_relu(c, x, 0.01);
}
static hg_tensor *elu1(hg_ctx *c, hg_tensor *x)
{
    return hg_elu(c, x, 1.0);
}
static hg_tensor *max1(hg_ctx *c, hg_tensor *x)
{
    return hg_max_axis(c, x, 1, 0);
}
static hg_tensor *min0(hg_ctx *c, hg_tensor *x)
{
    return hg_min_axis(c, x, 0, 1);
}
static hg_tensor *argmax1(hg_ctx *c, hg_tensor *x)
{
    return hg_argmax(c, x, -1, 0);
}
static hg_tensor *argmin0(hg_ctx *c, hg_tensor *x)
{
    return hg_argmin(c, x, 0, 1);
}
static hg_tensor *lse1(hg_ctx *c, hg_tensor *x)
{
    return hg_logsumexp(c, x, 1, 0);
}
static hg_tensor *sum01(hg_ctx *c, hg_tensor *x)
{
    return hg_sum_axes(c, x, 2, (const int[]){0, 1}, 0);
}
static hg_tensor *mean10(hg_ctx *c, hg_tensor *x)
{
    return hg_mean_axes(c, x, 2, (const int[]){-1, 0}, 1);
}
static hg_tensor *where_aa(hg_ctx *c, hg_tensor *x, hg_tensor *y)
{
    return hg_where(c, x, x, y);
}

static const struct {
    const char *name;
    binary_fn fn;
    int broadcasting;
} binary_ops[] = {
    {"add", hg_add, 1},          {"sub", hg_sub, 1},
    {"mul", hg_mul, 1},          {"div", hg_div, 1},
    {"maximum", hg_maximum, 1},  {"minimum", hg_minimum, 1},
    {"greater", hg_greater, 1},  {"greater_equal", hg_greater_equal, 1},
    {"where", where_aa, 1},      {"matmul", hg_matmul, 0},
    {"matmul_tt", matmul_tt, 0},
};

static const struct {
    const char *name;
    unary_fn fn;
} unary_ops[] = {
    {"neg", hg_neg},
    {"scale", scale2},
    {"add_scalar", add2},
    {"pow_scalar", pow3},
    {"exp", hg_exp},
    {"log", hg_log},
    {"sqrt", hg_sqrt},
    {"tanh", hg_tanh},
    {"sigmoid", hg_sigmoid},
    {"relu", hg_relu},
    {"abs", hg_abs},
    {"sign", hg_sign},
    {"identity", hg_identity},
    {"sum", hg_sum},
    {"mean", hg_mean},
    {"sum_axis", sum0},
    {"mean_axis", mean0},
    {"softmax", softmax1},
    {"log_softmax", log_softmax1},
    {"transpose", hg_transpose},
    {"sin", hg_sin},
    {"cos", hg_cos},
    {"log1p", hg_log1p},
    {"expm1", hg_expm1},
    {"erf", hg_erf},
    {"softplus", hg_softplus},
    {"clamp", clamp01},
    {"leaky_relu", leaky01},
    {"elu", elu1},
    {"gelu", hg_gelu},
    {"gelu_tanh", hg_gelu_tanh},
    {"silu", hg_silu},
    {"max_axis", max1},
    {"min_axis", min0},
    {"argmax", argmax1},
    {"argmin", argmin0},
    {"logsumexp", lse1},
    {"sum_axes", sum01},
    {"mean_axes", mean10},
};

START_TEST(binary_ops_wrong_shapes_and_dtypes)
{
    hg_tensor *bad_shape = T64(ctx, 2, SHAPE(4, 5), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    hg_tensor *f32_b = hg_full(ctx, HG_F32, 2, SHAPE(3, 2), 1.0);
    for (size_t k = 0; k < sizeof binary_ops / sizeof binary_ops[0]; k++) {
        binary_fn op = binary_ops[k].fn;
        hg_tensor *rhs = binary_ops[k].broadcasting ? a : (op == matmul_tt ? b : b);
        /* Sanity: the good case works. */
        hg_ctx_clear_error(ctx);
        ck_assert_msg(op(ctx, a, rhs) != NULL, "%s: good inputs refused: %s", binary_ops[k].name, hg_ctx_error(ctx));
        BAD(ctx, HG_ERR_SHAPE, op(ctx, a, bad_shape));
        BAD(ctx, HG_ERR_DTYPE, op(ctx, a, binary_ops[k].broadcasting ? f : f32_b)); /* f64 with f32 */
        BAD(ctx, HG_ERR_DTYPE, op(ctx, ia, ia));                                    /* i32 */
        BAD(ctx, HG_ERR_DTYPE, op(ctx, a, binary_ops[k].broadcasting ? ia : hg_zeros(ctx, HG_I32, 2, SHAPE(3, 2))));
        BAD(ctx, HG_ERR_NULL, op(ctx, a, NULL));
        BAD(ctx, HG_ERR_NULL, op(ctx, NULL, a));
        KEEPS_FIRST(ctx, op(ctx, NULL, NULL));
        BAD_NOCTX(op(NULL, a, a) == NULL);
        if (!binary_ops[k].broadcasting) {
            BAD(ctx, HG_ERR_SHAPE, op(ctx, v, v));       /* rank 1 */
            BAD(ctx, HG_ERR_SHAPE, op(ctx, sc, sc));     /* rank 0 */
            BAD(ctx, HG_ERR_SHAPE, op(ctx, cube, cube)); /* rank 3 */
            BAD(ctx, HG_ERR_SHAPE, op(ctx, a, a));       /* inner extents differ */
        } else {
            BAD(ctx, HG_ERR_SHAPE, op(ctx, a, v == NULL ? a : T64(ctx, 1, SHAPE(2), 1, 2))); /* [2,3] vs [2] */
            BAD(ctx, HG_ERR_SHAPE, op(ctx, cube, sq));
        }
    }
    /* where: the mask must share the dtype and broadcast too. */
    BAD(ctx, HG_ERR_DTYPE, hg_where(ctx, ia, a, a));
    BAD(ctx, HG_ERR_SHAPE, hg_where(ctx, bad_shape, a, a));
    BAD(ctx, HG_ERR_NULL, hg_where(ctx, NULL, a, a));
    /* matmul_t: transposes change what fits. */
    BAD(ctx, HG_ERR_SHAPE, hg_matmul_t(ctx, a, b, 1, 0));
    BAD(ctx, HG_ERR_SHAPE, hg_matmul_t(ctx, a, b, 0, 1));
    ck_assert_ptr_nonnull(hg_matmul_t(ctx, a, a, 0, 1));
}
END_TEST

START_TEST(unary_ops_wrong_dtypes_and_shapes)
{
    for (size_t k = 0; k < sizeof unary_ops / sizeof unary_ops[0]; k++) {
        unary_fn op = unary_ops[k].fn;
        hg_ctx_clear_error(ctx);
        ck_assert_msg(op(ctx, a) != NULL, "%s: good input refused: %s", unary_ops[k].name, hg_ctx_error(ctx));
        if (op != hg_transpose) { /* layout ops move i32 too */
            BAD(ctx, HG_ERR_DTYPE, op(ctx, ia));
            BAD(ctx, HG_ERR_DTYPE, op(ctx, lab));
        }
        BAD(ctx, HG_ERR_NULL, op(ctx, NULL));
        KEEPS_FIRST(ctx, op(ctx, NULL));
        BAD_NOCTX(op(NULL, a) == NULL);
    }
    /* axis ops: axis outside the rank */
    BAD(ctx, HG_ERR_RANGE, hg_sum_axis(ctx, a, 2, 0));
    BAD(ctx, HG_ERR_RANGE, hg_sum_axis(ctx, a, -3, 0));
    BAD(ctx, HG_ERR_RANGE, hg_mean_axis(ctx, a, 7, 1));
    BAD(ctx, HG_ERR_RANGE, hg_mean_axis(ctx, sc, 1, 0)); /* rank 0: axis 0 or -1 only */
    BAD(ctx, HG_ERR_RANGE, hg_mean_axis(ctx, sc, -2, 0));
    BAD(ctx, HG_ERR_RANGE, hg_softmax(ctx, a, 2));
    BAD(ctx, HG_ERR_RANGE, hg_log_softmax(ctx, a, -3));
    BAD(ctx, HG_ERR_RANGE, hg_softmax(ctx, sc, 0));
    BAD(ctx, HG_ERR_RANGE, hg_sum_axis(ctx, a, INT32_MIN, 0));
    BAD(ctx, HG_ERR_RANGE, hg_max_axis(ctx, a, 2, 0));
    BAD(ctx, HG_ERR_RANGE, hg_min_axis(ctx, a, -3, 1));
    BAD(ctx, HG_ERR_RANGE, hg_argmax(ctx, a, INT32_MIN, 0));
    BAD(ctx, HG_ERR_RANGE, hg_argmin(ctx, sc, 1, 0));
    BAD(ctx, HG_ERR_RANGE, hg_logsumexp(ctx, a, INT32_MAX, 0));
    BAD(ctx, HG_ERR_RANGE, hg_sum_axes(ctx, a, 2, (const int[]){0, 2}, 0));
    BAD(ctx, HG_ERR_RANGE, hg_mean_axes(ctx, a, 2, (const int[]){1, -1}, 0)); /* repeated */
    BAD(ctx, HG_ERR_RANGE, hg_sum_axes(ctx, a, -1, (const int[]){0}, 0));
    BAD(ctx, HG_ERR_RANGE, hg_sum_axes(ctx, a, HG_MAX_RANK + 1, (const int[]){0, 1, 0, 1, 0, 1, 0}, 0));
    BAD(ctx, HG_ERR_NULL, hg_sum_axes(ctx, a, 1, NULL, 0));
    BAD(ctx, HG_ERR_NULL, hg_mean_axes(ctx, NULL, 1, (const int[]){0}, 0));
    /* no identity element: max/min/arg over an empty axis */
    hg_tensor *empty = hg_zeros(ctx, HG_F64, 2, SHAPE(2, 0));
    BAD(ctx, HG_ERR_SHAPE, hg_max_axis(ctx, empty, 1, 0));
    BAD(ctx, HG_ERR_SHAPE, hg_argmin(ctx, empty, -1, 1));
    /* parameters: clamp's interval, the slopes */
    BAD(ctx, HG_ERR_RANGE, hg_clamp(ctx, a, 1.0, 0.0));
    BAD(ctx, HG_ERR_RANGE, hg_clamp(ctx, a, NAN, 1.0));
    BAD(ctx, HG_ERR_RANGE, hg_clamp(ctx, a, 0.0, NAN));
    BAD(ctx, HG_ERR_RANGE, hg_leaky_relu(ctx, a, INFINITY));
    BAD(ctx, HG_ERR_RANGE, hg_elu(ctx, a, NAN));
    BAD(ctx, HG_ERR_NULL, hg_leaky_relu(ctx, NULL, NAN)); /* the NULL is reported first */
    ck_assert_ptr_nonnull(hg_clamp(ctx, a, -INFINITY, INFINITY));
    /* op.h broadcasting helpers */
    BAD(ctx, HG_ERR_NULL, hg_sum_to_like(ctx, a, NULL));
    BAD(ctx, HG_ERR_SHAPE, hg_sum_to_like(ctx, v, a)); /* [3]: a [2,3] does not broadcast to it */
    KEEPS_FIRST(ctx, hg_sum_to_like(ctx, NULL, a));
    BAD_NOCTX(hg_sum_to_like(NULL, a, v) == NULL);
    ck_assert_ptr_eq(hg_sum_to_like(ctx, a, a), a);
    hg_broadcast_iter it;
    hg_broadcast_iter_init(&it, NULL, 1, &a); /* refused: an empty iteration, no crash */
    ck_assert_int_eq(it.n, 0);
    hg_broadcast_iter_init(&it, a, HG_MAX_OP_INPUTS + 1, &a);
    ck_assert_int_eq(it.n, 0);
    /* transpose is 2-D only */
    BAD(ctx, HG_ERR_SHAPE, hg_transpose(ctx, v));
    BAD(ctx, HG_ERR_SHAPE, hg_transpose(ctx, cube));
    BAD(ctx, HG_ERR_SHAPE, hg_transpose(ctx, sc));
}
END_TEST

START_TEST(shape_ops_bad_arguments)
{
    /* sum_to */
    BAD(ctx, HG_ERR_SHAPE, hg_sum_to(ctx, a, 1, SHAPE(2)));
    BAD(ctx, HG_ERR_SHAPE, hg_sum_to(ctx, a, 2, SHAPE(4, 3)));
    BAD(ctx, HG_ERR_SHAPE, hg_sum_to(ctx, v, 2, SHAPE(2, 3))); /* would broadcast up, not sum */
    BAD(ctx, HG_ERR_SHAPE, hg_sum_to(ctx, a, 7, SHAPE(1, 1, 1, 1, 1, 2, 3)));
    BAD(ctx, HG_ERR_SHAPE, hg_sum_to(ctx, a, -1, SHAPE(1)));
    BAD(ctx, HG_ERR_NULL, hg_sum_to(ctx, a, 2, NULL));
    BAD(ctx, HG_ERR_DTYPE, hg_sum_to(ctx, ia, 1, SHAPE(3)));
    BAD(ctx, HG_ERR_SHAPE, hg_sum_to(ctx, a, 2, SHAPE(-2, 3)));
    /* broadcast_to */
    BAD(ctx, HG_ERR_SHAPE, hg_broadcast_to(ctx, a, 2, SHAPE(4, 3)));
    BAD(ctx, HG_ERR_SHAPE, hg_broadcast_to(ctx, a, 1, SHAPE(3)));
    BAD(ctx, HG_ERR_SHAPE, hg_broadcast_to(ctx, v, 2, SHAPE(2, -3)));
    BAD(ctx, HG_ERR_SHAPE, hg_broadcast_to(ctx, v, 7, SHAPE(1, 1, 1, 1, 1, 1, 3)));
    BAD(ctx, HG_ERR_NULL, hg_broadcast_to(ctx, v, 2, NULL));
    BAD(ctx, HG_ERR_DTYPE, hg_broadcast_to(ctx, lab, 2, SHAPE(3, 2)));
    /* reshape */
    BAD(ctx, HG_ERR_SHAPE, hg_reshape(ctx, a, 2, SHAPE(4, 2)));
    BAD(ctx, HG_ERR_SHAPE, hg_reshape(ctx, a, 2, SHAPE(-1, -1)));
    BAD(ctx, HG_ERR_SHAPE, hg_reshape(ctx, a, 2, SHAPE(-2, -3)));
    BAD(ctx, HG_ERR_SHAPE, hg_reshape(ctx, a, 2, SHAPE(-1, 4)));
    BAD(ctx, HG_ERR_SHAPE, hg_reshape(ctx, a, 7, SHAPE(1, 1, 1, 1, 1, 2, 3)));
    BAD(ctx, HG_ERR_NULL, hg_reshape(ctx, a, 2, NULL));
    /* permute */
    BAD(ctx, HG_ERR_RANGE, hg_permute(ctx, cube, (const int[]){0, 1, 3}));
    BAD(ctx, HG_ERR_RANGE, hg_permute(ctx, cube, (const int[]){0, 1, -1}));
    BAD(ctx, HG_ERR_RANGE, hg_permute(ctx, cube, (const int[]){0, 1, 1}));
    BAD(ctx, HG_ERR_NULL, hg_permute(ctx, cube, NULL));
    ck_assert_ptr_nonnull(hg_permute(ctx, ia, (const int[]){1, 0})); /* layout ops move i32 too */
    BAD(ctx, HG_ERR_RANGE, hg_permute(ctx, ia, (const int[]){2, 0}));
}
END_TEST

START_TEST(index_and_cast_bad_arguments)
{
    /* one_hot */
    BAD(ctx, HG_ERR_DTYPE, hg_one_hot(ctx, v, 3, HG_F64));
    BAD(ctx, HG_ERR_SHAPE, hg_one_hot(ctx, ia, 3, HG_F64));
    BAD(ctx, HG_ERR_RANGE, hg_one_hot(ctx, lab, 0, HG_F64));
    BAD(ctx, HG_ERR_RANGE, hg_one_hot(ctx, lab, -5, HG_F64));
    BAD(ctx, HG_ERR_RANGE, hg_one_hot(ctx, lab, 1, HG_F64)); /* label 1 outside [0, 1) */
    BAD(ctx, HG_ERR_DTYPE, hg_one_hot(ctx, lab, 3, HG_I32));
    BAD(ctx, HG_ERR_DTYPE, hg_one_hot(ctx, lab, 3, (hg_dtype)9));
    hg_tensor *neg = hg_tensor_from(ctx, HG_I32, 1, SHAPE(2), (const int32_t[]){0, -1});
    BAD(ctx, HG_ERR_RANGE, hg_one_hot(ctx, neg, 3, HG_F64));
    /* gather */
    BAD(ctx, HG_ERR_DTYPE, hg_gather(ctx, ia, lab));
    BAD(ctx, HG_ERR_DTYPE, hg_gather(ctx, a, v));
    BAD(ctx, HG_ERR_SHAPE, hg_gather(ctx, cube, lab));
    BAD(ctx, HG_ERR_SHAPE, hg_gather(ctx, b, lab)); /* 3 rows, 2 indices */
    BAD(ctx, HG_ERR_RANGE, hg_gather(ctx, a, hg_tensor_from(ctx, HG_I32, 1, SHAPE(2), (const int32_t[]){0, 3})));
    BAD(ctx, HG_ERR_RANGE, hg_gather(ctx, a, neg));
    /* cast */
    BAD(ctx, HG_ERR_DTYPE, hg_cast(ctx, a, HG_I32));
    BAD(ctx, HG_ERR_DTYPE, hg_cast(ctx, a, (hg_dtype)-1));
    BAD(ctx, HG_ERR_DTYPE, hg_cast(ctx, a, (hg_dtype)3));
    BAD(ctx, HG_ERR_NULL, hg_cast(ctx, NULL, HG_F32));
    ck_assert_ptr_nonnull(hg_cast(ctx, lab, HG_F64)); /* i32 -> float is allowed */
}
END_TEST

/* ---- layout, batched matmul, convolution, pooling ------------------------------- */

START_TEST(layout_ops_bad_arguments)
{
    hg_tensor *ab[2] = {a, b}, *aa[2] = {a, a}, *af[2] = {a, f}, *an[2] = {a, NULL};
    hg_tensor *i3 = hg_tensor_from(ctx, HG_I32, 1, SHAPE(2), (const int32_t[]){0, 3});
    hg_tensor *i2 = hg_tensor_from(ctx, HG_I32, 2, SHAPE(2, 1), (const int32_t[]){0, 1});
    /* concat */
    ck_assert_ptr_nonnull(hg_concat(ctx, 2, aa, 1));
    BAD(ctx, HG_ERR_SHAPE, hg_concat(ctx, 2, ab, 0));
    BAD(ctx, HG_ERR_DTYPE, hg_concat(ctx, 2, af, 0));
    BAD(ctx, HG_ERR_RANGE, hg_concat(ctx, 2, aa, 2));
    BAD(ctx, HG_ERR_RANGE, hg_concat(ctx, 2, aa, -3));
    BAD(ctx, HG_ERR_RANGE, hg_concat(ctx, 1, &sc, 0));
    BAD(ctx, HG_ERR_INVALID, hg_concat(ctx, 0, aa, 0));
    BAD(ctx, HG_ERR_NULL, hg_concat(ctx, 2, NULL, 0));
    BAD(ctx, HG_ERR_NULL, hg_concat(ctx, 2, an, 0));
    KEEPS_FIRST(ctx, hg_concat(ctx, 2, an, 0));
    BAD_NOCTX(hg_concat(NULL, 2, aa, 0) == NULL);
    /* stack */
    BAD(ctx, HG_ERR_SHAPE, hg_stack(ctx, 2, ab, 0));
    BAD(ctx, HG_ERR_RANGE, hg_stack(ctx, 2, aa, 3));
    BAD(ctx, HG_ERR_DTYPE, hg_stack(ctx, 2, af, 0));
    BAD(ctx, HG_ERR_INVALID, hg_stack(ctx, -1, aa, 0));
    BAD(ctx, HG_ERR_NULL, hg_stack(ctx, 2, an, 0));
    hg_tensor *r6 = hg_ones(ctx, HG_F64, 6, SHAPE(1, 1, 1, 1, 1, 2));
    BAD(ctx, HG_ERR_SHAPE, hg_stack(ctx, 1, &r6, 0));
    BAD_NOCTX(hg_stack(NULL, 2, aa, 0) == NULL);
    /* slice, slice_axis, narrow */
    BAD(ctx, HG_ERR_RANGE, hg_slice(ctx, a, NULL, NULL, SHAPE(1, 0)));
    BAD(ctx, HG_ERR_RANGE, hg_slice(ctx, a, NULL, NULL, SHAPE(-1, 1)));
    BAD(ctx, HG_ERR_NULL, hg_slice(ctx, NULL, NULL, NULL, NULL));
    KEEPS_FIRST(ctx, hg_slice(ctx, NULL, NULL, NULL, NULL));
    BAD(ctx, HG_ERR_RANGE, hg_slice_axis(ctx, a, 2, 0, 1, 1));
    BAD(ctx, HG_ERR_RANGE, hg_slice_axis(ctx, sc, 0, 0, 1, 1));
    BAD(ctx, HG_ERR_RANGE, hg_narrow(ctx, a, 1, 2, 2));
    BAD(ctx, HG_ERR_RANGE, hg_narrow(ctx, a, 1, -1, 1));
    BAD(ctx, HG_ERR_RANGE, hg_narrow(ctx, a, 1, 0, -1));
    BAD(ctx, HG_ERR_RANGE, hg_narrow(ctx, a, 1, INT64_MAX, INT64_MAX));
    BAD(ctx, HG_ERR_NULL, hg_narrow(ctx, NULL, 0, 0, 1));
    BAD_NOCTX(hg_slice(NULL, a, NULL, NULL, NULL) == NULL && hg_narrow(NULL, a, 0, 0, 1) == NULL);
    /* index_select / index_add */
    ck_assert_ptr_nonnull(hg_index_select(ctx, a, 1, lab));
    BAD(ctx, HG_ERR_RANGE, hg_index_select(ctx, a, 0, i3));
    BAD(ctx, HG_ERR_RANGE, hg_index_select(ctx, a, 2, lab));
    BAD(ctx, HG_ERR_DTYPE, hg_index_select(ctx, a, 0, v));
    BAD(ctx, HG_ERR_SHAPE, hg_index_select(ctx, a, 0, ia));
    BAD(ctx, HG_ERR_NULL, hg_index_select(ctx, a, 0, NULL));
    KEEPS_FIRST(ctx, hg_index_select(ctx, NULL, 0, lab));
    BAD_NOCTX(hg_index_select(NULL, a, 0, lab) == NULL);
    hg_tensor *src = hg_ones(ctx, HG_F64, 2, SHAPE(2, 3));
    ck_assert_ptr_nonnull(hg_index_add(ctx, a, 0, lab, src));
    BAD(ctx, HG_ERR_SHAPE, hg_index_add(ctx, a, 0, lab, b));
    BAD(ctx, HG_ERR_DTYPE, hg_index_add(ctx, a, 0, lab, f));
    BAD(ctx, HG_ERR_DTYPE, hg_index_add(ctx, ia, 0, lab, ia));
    BAD(ctx, HG_ERR_RANGE, hg_index_add(ctx, a, 0, i3, src));
    BAD(ctx, HG_ERR_NULL, hg_index_add(ctx, a, 0, lab, NULL));
    /* gather_axis / scatter_add */
    ck_assert_ptr_nonnull(hg_gather_axis(ctx, a, 1, i2));
    BAD(ctx, HG_ERR_SHAPE, hg_gather_axis(ctx, a, 0, i2));
    BAD(ctx, HG_ERR_SHAPE, hg_gather_axis(ctx, a, 1, lab));
    BAD(ctx, HG_ERR_DTYPE, hg_gather_axis(ctx, a, 1, hg_zeros(ctx, HG_F64, 2, SHAPE(2, 1))));
    BAD(ctx, HG_ERR_RANGE, hg_gather_axis(ctx, a, 1, hg_full(ctx, HG_I32, 2, SHAPE(2, 1), 3)));
    BAD(ctx, HG_ERR_RANGE, hg_gather_axis(ctx, a, 5, i2));
    BAD(ctx, HG_ERR_NULL, hg_gather_axis(ctx, NULL, 1, i2));
    BAD_NOCTX(hg_gather_axis(NULL, a, 1, i2) == NULL);
    hg_tensor *src2 = hg_ones(ctx, HG_F64, 2, SHAPE(2, 1));
    ck_assert_ptr_nonnull(hg_scatter_add(ctx, a, 1, i2, src2));
    BAD(ctx, HG_ERR_SHAPE, hg_scatter_add(ctx, a, 1, i2, a));
    BAD(ctx, HG_ERR_DTYPE, hg_scatter_add(ctx, a, 1, i2, hg_ones(ctx, HG_F32, 2, SHAPE(2, 1))));
    BAD(ctx, HG_ERR_RANGE, hg_scatter_add(ctx, a, 1, hg_full(ctx, HG_I32, 2, SHAPE(2, 1), -1), src2));
    BAD(ctx, HG_ERR_NULL, hg_scatter_add(ctx, a, 1, NULL, src2));
}
END_TEST

START_TEST(conv_pool_bmm_bad_arguments)
{
    hg_tensor *x = hg_ones(ctx, HG_F64, 4, SHAPE(2, 3, 6, 6)), *w = hg_ones(ctx, HG_F64, 4, SHAPE(4, 3, 3, 3));
    hg_tensor *xf = hg_ones(ctx, HG_F32, 4, SHAPE(2, 3, 6, 6)), *xi = hg_zeros(ctx, HG_I32, 4, SHAPE(2, 3, 6, 6));
    hg_tensor *bias = hg_ones(ctx, HG_F64, 1, SHAPE(4));
    hg_conv2d_params p = {{1, 1}, {1, 1}, {1, 1}}, neg = {{-1, 1}, {0, 0}, {1, 1}}, negd = {{1, 1}, {0, -2}, {0, 0}};
    hg_conv2d_params huge = {{1, 1}, {0, 0}, {1 << 30, 1}};
    /* conv2d */
    ck_assert_ptr_nonnull(hg_conv2d(ctx, x, w, bias, &p));
    BAD(ctx, HG_ERR_SHAPE, hg_conv2d(ctx, x, hg_ones(ctx, HG_F64, 4, SHAPE(4, 2, 3, 3)), NULL, &p));
    BAD(ctx, HG_ERR_SHAPE, hg_conv2d(ctx, x, hg_ones(ctx, HG_F64, 4, SHAPE(4, 3, 9, 3)), NULL, NULL));
    BAD(ctx, HG_ERR_SHAPE, hg_conv2d(ctx, x, hg_ones(ctx, HG_F64, 4, SHAPE(4, 3, 0, 3)), NULL, NULL));
    BAD(ctx, HG_ERR_SHAPE, hg_conv2d(ctx, x, w, NULL, &huge));
    /* an empty weight with a huge kernel extent: no overflow of the span */
    hg_conv2d_params maxdil = {{1, 1}, {0, 0}, {INT32_MAX, INT32_MAX}};
    BAD(ctx, HG_ERR_SHAPE,
        hg_conv2d(ctx, x, hg_zeros(ctx, HG_F64, 4, SHAPE(0, 3, (int64_t)1 << 40, 3)), NULL, &maxdil));
    BAD(ctx, HG_ERR_SHAPE,
        hg_conv2d_transpose(ctx, x, hg_zeros(ctx, HG_F64, 4, SHAPE(0, 3, (int64_t)1 << 40, 3)), 6, 6, &maxdil));
    BAD(ctx, HG_ERR_SHAPE, hg_conv2d(ctx, a, b, NULL, NULL));
    BAD(ctx, HG_ERR_SHAPE, hg_conv2d(ctx, x, w, v, &p));
    BAD(ctx, HG_ERR_DTYPE, hg_conv2d(ctx, x, w, hg_ones(ctx, HG_F32, 1, SHAPE(4)), &p));
    BAD(ctx, HG_ERR_DTYPE, hg_conv2d(ctx, xf, w, NULL, &p));
    BAD(ctx, HG_ERR_DTYPE, hg_conv2d(ctx, xi, hg_zeros(ctx, HG_I32, 4, SHAPE(4, 3, 3, 3)), NULL, &p));
    BAD(ctx, HG_ERR_RANGE, hg_conv2d(ctx, x, w, NULL, &neg));
    BAD(ctx, HG_ERR_RANGE, hg_conv2d(ctx, x, w, NULL, &negd));
    BAD(ctx, HG_ERR_NULL, hg_conv2d(ctx, NULL, w, NULL, &p));
    BAD(ctx, HG_ERR_NULL, hg_conv2d(ctx, x, NULL, NULL, &p));
    KEEPS_FIRST(ctx, hg_conv2d(ctx, NULL, w, NULL, &p));
    BAD_NOCTX(hg_conv2d(NULL, x, w, NULL, &p) == NULL);
    /* conv2d_transpose and conv2d_weight_grad: g [2,4,6,6] for x [2,3,6,6] with p */
    hg_tensor *g = hg_ones(ctx, HG_F64, 4, SHAPE(2, 4, 6, 6));
    ck_assert_ptr_nonnull(hg_conv2d_transpose(ctx, g, w, 6, 6, &p));
    ck_assert_ptr_nonnull(hg_conv2d_weight_grad(ctx, x, g, 3, 3, &p));
    BAD(ctx, HG_ERR_SHAPE, hg_conv2d_transpose(ctx, g, w, 7, 7, NULL));
    BAD(ctx, HG_ERR_SHAPE, hg_conv2d_transpose(ctx, g, w, 0, 6, &p));
    BAD(ctx, HG_ERR_SHAPE, hg_conv2d_transpose(ctx, g, w, -6, 6, &p));
    BAD(ctx, HG_ERR_SHAPE, hg_conv2d_transpose(ctx, x, w, 6, 6, &p));
    BAD(ctx, HG_ERR_SHAPE, hg_conv2d_transpose(ctx, v, w, 6, 6, &p));
    BAD(ctx, HG_ERR_DTYPE, hg_conv2d_transpose(ctx, hg_ones(ctx, HG_F32, 4, SHAPE(2, 4, 6, 6)), w, 6, 6, &p));
    BAD(ctx, HG_ERR_RANGE, hg_conv2d_transpose(ctx, g, w, 6, 6, &neg));
    BAD(ctx, HG_ERR_NULL, hg_conv2d_transpose(ctx, g, NULL, 6, 6, &p));
    BAD_NOCTX(hg_conv2d_transpose(NULL, g, w, 6, 6, &p) == NULL);
    BAD(ctx, HG_ERR_SHAPE, hg_conv2d_weight_grad(ctx, x, g, 2, 3, &p));
    BAD(ctx, HG_ERR_SHAPE, hg_conv2d_weight_grad(ctx, x, g, 0, 0, &p));
    BAD(ctx, HG_ERR_SHAPE, hg_conv2d_weight_grad(ctx, x, hg_ones(ctx, HG_F64, 4, SHAPE(1, 4, 6, 6)), 3, 3, &p));
    BAD(ctx, HG_ERR_DTYPE, hg_conv2d_weight_grad(ctx, xf, g, 3, 3, &p));
    BAD(ctx, HG_ERR_RANGE, hg_conv2d_weight_grad(ctx, x, g, 3, 3, &negd));
    BAD(ctx, HG_ERR_NULL, hg_conv2d_weight_grad(ctx, NULL, g, 3, 3, &p));
    BAD_NOCTX(hg_conv2d_weight_grad(NULL, x, g, 3, 3, &p) == NULL);
    /* pooling */
    hg_pool2d_params q = {{2, 2}, {0, 0}, {1, 1}};
    hg_pool2d_params k0 = {{0, 2}, {0, 0}, {0, 0}}, padbig = {{2, 2}, {1, 1}, {2, 0}};
    hg_pool2d_params kbig = {{7, 7}, {1, 1}, {0, 0}}, sneg = {{2, 2}, {-1, 1}, {0, 0}};
    for (int k = 0; k < 2; k++) {
        hg_tensor *(*pool)(hg_ctx *, hg_tensor *, const hg_pool2d_params *) = k ? hg_avg_pool2d : hg_max_pool2d;
        ck_assert_ptr_nonnull(pool(ctx, x, &q));
        BAD(ctx, HG_ERR_RANGE, pool(ctx, x, &k0));
        BAD(ctx, HG_ERR_RANGE, pool(ctx, x, &padbig));
        BAD(ctx, HG_ERR_RANGE, pool(ctx, x, &sneg));
        BAD(ctx, HG_ERR_SHAPE, pool(ctx, x, &kbig));
        BAD(ctx, HG_ERR_SHAPE, pool(ctx, a, &q));
        BAD(ctx, HG_ERR_DTYPE, pool(ctx, xi, &q));
        BAD(ctx, HG_ERR_NULL, pool(ctx, x, NULL));
        BAD(ctx, HG_ERR_NULL, pool(ctx, NULL, &q));
        KEEPS_FIRST(ctx, pool(ctx, NULL, &q));
        BAD_NOCTX(pool(NULL, x, &q) == NULL);
    }
    /* batched matmul */
    ck_assert_ptr_nonnull(hg_matmul_batched(ctx, cube, hg_ones(ctx, HG_F64, 2, SHAPE(4, 2)), 0, 0));
    BAD(ctx, HG_ERR_SHAPE, hg_matmul_batched(ctx, cube, cube, 0, 0));
    BAD(ctx, HG_ERR_SHAPE, hg_matmul_batched(ctx, v, cube, 0, 0));
    BAD(ctx, HG_ERR_SHAPE, hg_matmul_batched(ctx, cube, hg_ones(ctx, HG_F64, 3, SHAPE(3, 4, 2)), 0, 0));
    BAD(ctx, HG_ERR_SHAPE,
        hg_matmul_batched(ctx, hg_ones(ctx, HG_F64, 5, SHAPE(2, 1, 1, 2, 2)),
                          hg_ones(ctx, HG_F64, 6, SHAPE(1, 3, 1, 1, 2, 2)), 0, 0));
    BAD(ctx, HG_ERR_DTYPE, hg_matmul_batched(ctx, cube, hg_ones(ctx, HG_F32, 2, SHAPE(4, 2)), 0, 0));
    BAD(ctx, HG_ERR_DTYPE, hg_matmul_batched(ctx, ia, ia, 0, 1));
    BAD(ctx, HG_ERR_NULL, hg_matmul_batched(ctx, cube, NULL, 0, 0));
    KEEPS_FIRST(ctx, hg_matmul_batched(ctx, NULL, cube, 0, 0));
    BAD_NOCTX(hg_matmul_batched(NULL, cube, cube, 0, 1) == NULL);
    /* copy_to and print */
    BAD(ctx, HG_ERR_NULL, hg_tensor_copy_to(ctx, NULL));
    BAD_NOCTX(hg_tensor_copy_to(NULL, a) == NULL);
    BAD_ST(ctx, HG_ERR_NULL, hg_tensor_print(NULL, a, 0));
    BAD_NOCTX(hg_tensor_print(stderr, NULL, 0) == HG_ERR_NULL);
}
END_TEST

/* ---- nn.h, optim.h --------------------------------------------------------------- */

START_TEST(nn_bad_arguments)
{
    hg_tensor *W = hg_zeros(ctx, HG_F64, 2, SHAPE(3, 4)), *bias = hg_zeros(ctx, HG_F64, 1, SHAPE(4));
    ck_assert_ptr_nonnull(hg_dense(ctx, a, W, bias));
    BAD(ctx, HG_ERR_SHAPE, hg_dense(ctx, b, W, bias));
    BAD(ctx, HG_ERR_SHAPE, hg_dense(ctx, a, W, v));
    BAD(ctx, HG_ERR_SHAPE, hg_dense(ctx, v, W, bias));
    BAD(ctx, HG_ERR_DTYPE, hg_dense(ctx, f, W, bias));
    BAD(ctx, HG_ERR_DTYPE, hg_dense(ctx, ia, hg_zeros(ctx, HG_I32, 2, SHAPE(3, 4)), NULL));
    BAD(ctx, HG_ERR_NULL, hg_dense(ctx, a, NULL, bias));
    BAD(ctx, HG_ERR_NULL, hg_dense(ctx, NULL, W, bias));
    BAD(ctx, HG_ERR_INVALID, hg_activate(ctx, a, (hg_activation)17));
    BAD(ctx, HG_ERR_NULL, hg_activate(ctx, NULL, HG_ACT_NONE));
    BAD(ctx, HG_ERR_DTYPE, hg_activate(ctx, ia, HG_ACT_RELU));

    /* losses */
    hg_tensor *logits = T64(ctx, 2, SHAPE(2, 3), 1, 2, 3, 4, 5, 6);
    BAD(ctx, HG_ERR_SHAPE, hg_softmax_cross_entropy(ctx, v, lab));
    BAD(ctx, HG_ERR_SHAPE, hg_softmax_cross_entropy(ctx, b, lab));
    BAD(ctx, HG_ERR_DTYPE, hg_softmax_cross_entropy(ctx, logits, v));
    BAD(ctx, HG_ERR_DTYPE, hg_softmax_cross_entropy(ctx, ia, lab));
    BAD(ctx, HG_ERR_RANGE,
        hg_softmax_cross_entropy(ctx, logits, hg_tensor_from(ctx, HG_I32, 1, SHAPE(2), (const int32_t[]){0, 3})));
    BAD(ctx, HG_ERR_RANGE,
        hg_softmax_cross_entropy_each(ctx, logits, hg_tensor_from(ctx, HG_I32, 1, SHAPE(2), (const int32_t[]){-1, 0})));
    BAD(ctx, HG_ERR_SHAPE, hg_softmax_cross_entropy_each(ctx, hg_zeros(ctx, HG_F64, 2, SHAPE(2, 0)), lab));
    BAD(ctx, HG_ERR_SHAPE, hg_mse(ctx, a, b));
    BAD(ctx, HG_ERR_DTYPE, hg_mse(ctx, a, f));
    BAD(ctx, HG_ERR_DTYPE, hg_mse(ctx, ia, ia));
    BAD(ctx, HG_ERR_NULL, hg_mse(ctx, a, NULL));

    /* accuracy: NaN and an error */
    hg_ctx_clear_error(ctx);
    tried++;
    ck_assert(isnan(hg_accuracy(ctx, v, lab)) && hg_ctx_status(ctx) == HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    tried++;
    ck_assert(isnan(hg_accuracy(ctx, logits, T64(ctx, 1, SHAPE(2), 0, 1))) && hg_ctx_status(ctx) == HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    tried++;
    ck_assert(isnan(hg_accuracy(ctx, logits, NULL)) && hg_ctx_status(ctx) == HG_ERR_NULL);

    /* MLP specs */
    hg_rng rng;
    hg_rng_seed(&rng, 1);
    hg_tensor *params[2 * HG_MLP_MAX_LAYERS];
    hg_mlp good = {.n_layers = 2, .sizes = {3, 4, 2}, .hidden = HG_ACT_TANH};
    hg_mlp bad_layers = {.n_layers = 0}, too_many = {.n_layers = HG_MLP_MAX_LAYERS + 1};
    hg_mlp zero_size = {.n_layers = 2, .sizes = {3, 0, 2}}, bad_act = {.n_layers = 1, .sizes = {3, 2}, .hidden = 9};
    tried += 5;
    ck_assert_int_eq(hg_mlp_param_count(&bad_layers), -1);
    ck_assert_int_eq(hg_mlp_param_count(&too_many), -1);
    ck_assert_int_eq(hg_mlp_param_count(&zero_size), -1);
    ck_assert_int_eq(hg_mlp_param_count(&bad_act), -1);
    ck_assert_int_eq(hg_mlp_param_count(NULL), -1);
    BAD_ST(ctx, HG_ERR_INVALID, hg_mlp_init(ctx, &bad_layers, HG_F64, HG_INIT_HE, &rng, params));
    BAD_ST(ctx, HG_ERR_INVALID, hg_mlp_init(ctx, &too_many, HG_F64, HG_INIT_HE, &rng, params));
    BAD_ST(ctx, HG_ERR_INVALID, hg_mlp_init(ctx, &zero_size, HG_F64, HG_INIT_HE, &rng, params));
    BAD_ST(ctx, HG_ERR_INVALID, hg_mlp_init(ctx, &good, HG_F64, (hg_init)5, &rng, params));
    BAD_ST(ctx, HG_ERR_DTYPE, hg_mlp_init(ctx, &good, HG_I32, HG_INIT_HE, &rng, params));
    BAD_ST(ctx, HG_ERR_NULL, hg_mlp_init(ctx, NULL, HG_F64, HG_INIT_HE, &rng, params));
    BAD_ST(ctx, HG_ERR_NULL, hg_mlp_init(ctx, &good, HG_F64, HG_INIT_HE, NULL, params));
    BAD_ST(ctx, HG_ERR_NULL, hg_mlp_init(ctx, &good, HG_F64, HG_INIT_HE, &rng, NULL));
    BAD_NOCTX(hg_mlp_init(NULL, &good, HG_F64, HG_INIT_HE, &rng, params) == HG_ERR_NULL);
    ck_assert_int_eq(hg_mlp_init(ctx, &good, HG_F64, HG_INIT_HE, &rng, params), HG_OK);
    hg_tensor *x = hg_zeros(ctx, HG_F64, 2, SHAPE(5, 3));
    ck_assert_ptr_nonnull(hg_mlp_forward(ctx, &good, params, x));
    BAD(ctx, HG_ERR_SHAPE, hg_mlp_forward(ctx, &good, params, a == NULL ? x : b == NULL ? x : sq));
    BAD(ctx, HG_ERR_NULL, hg_mlp_forward(ctx, &good, params, NULL));
    BAD(ctx, HG_ERR_NULL, hg_mlp_forward(ctx, &good, NULL, x));
    BAD(ctx, HG_ERR_NULL, hg_mlp_forward(ctx, NULL, params, x));
    BAD(ctx, HG_ERR_INVALID, hg_mlp_forward(ctx, &bad_layers, params, x));
    hg_mlp wider = good;
    wider.sizes[2] = 3; /* params no longer match the spec */
    BAD(ctx, HG_ERR_SHAPE, hg_mlp_forward(ctx, &wider, params, x));
    hg_tensor *swapped[4] = {params[1], params[0], params[2], params[3]};
    BAD(ctx, HG_ERR_SHAPE, hg_mlp_forward(ctx, &good, swapped, x));
    hg_tensor *with_null[4] = {params[0], NULL, params[2], params[3]};
    BAD(ctx, HG_ERR_NULL, hg_mlp_forward(ctx, &good, with_null, x));
    BAD(ctx, HG_ERR_DTYPE, hg_mlp_forward(ctx, &good, params, hg_zeros(ctx, HG_F32, 2, SHAPE(5, 3))));
}
END_TEST

START_TEST(optim_bad_arguments)
{
    hg_tensor *p[2] = {hg_tensor_clone(ctx, a), hg_tensor_clone(ctx, v)};
    hg_tensor *g_ok[2] = {hg_ones_like(ctx, a), hg_ones_like(ctx, v)};
    hg_opt_config sgd = {.kind = HG_OPT_SGD, .lr = 0.1}, adam = {.kind = HG_OPT_ADAM, .lr = 0.1};
    hg_opt_config unknown = {.kind = (hg_opt_kind)7, .lr = 0.1};

    tried += 6;
    ck_assert_str_eq(hg_opt_name((hg_opt_kind)7), "?");
    ck_assert_str_eq(hg_opt_name((hg_opt_kind)-1), "?");
    hg_opt_kind k = HG_OPT_SGD;
    ck_assert_int_eq(hg_opt_parse("rmsprop", &k), -1);
    ck_assert_int_eq(hg_opt_parse(NULL, &k), -1);
    ck_assert_int_eq(hg_opt_state_count((hg_opt_kind)7, 3), -1);
    ck_assert_int_eq(hg_opt_parse("adam", NULL), 0);

    /* training form */
    BAD(ctx, HG_ERR_NULL, hg_optimizer_new(ctx, NULL, 2, p));
    BAD(ctx, HG_ERR_INVALID, hg_optimizer_new(ctx, &unknown, 2, p));
    BAD(ctx, HG_ERR_INVALID, hg_optimizer_new(ctx, &sgd, -1, p));
    BAD(ctx, HG_ERR_NULL, hg_optimizer_new(ctx, &sgd, 2, NULL));
    BAD(ctx, HG_ERR_DTYPE, hg_optimizer_new(ctx, &sgd, 1, &ia));
    hg_tensor *with_null[2] = {p[0], NULL};
    BAD(ctx, HG_ERR_NULL, hg_optimizer_new(ctx, &sgd, 2, with_null));
    BAD_NOCTX(hg_optimizer_new(NULL, &sgd, 2, p) == NULL);
    hg_optimizer *opt = hg_optimizer_new(ctx, &adam, 2, p);
    ck_assert_ptr_nonnull(opt);
    double before = hg_get(p[0], 0);
    hg_tensor *g_shape[2] = {g_ok[0], hg_ones(ctx, HG_F64, 1, SHAPE(4))};
    hg_tensor *g_dtype[2] = {g_ok[0], hg_ones(ctx, HG_F32, 1, SHAPE(3))};
    hg_tensor *g_null[2] = {g_ok[0], NULL};
    BAD_ST(ctx, HG_ERR_SHAPE, hg_optimizer_step(opt, g_shape));
    BAD_ST(ctx, HG_ERR_DTYPE, hg_optimizer_step(opt, g_dtype));
    BAD_ST(ctx, HG_ERR_NULL, hg_optimizer_step(opt, g_null));
    BAD_ST(ctx, HG_ERR_NULL, hg_optimizer_step(opt, NULL));
    BAD_NOCTX(hg_optimizer_step(NULL, g_ok) == HG_ERR_NULL);
    BAD_NOCTX(hg_optimizer_steps(NULL) == -1);
    /* On error nothing changed, not even the step count. */
    ck_assert(hg_get(p[0], 0) == before);
    ck_assert_int_eq(hg_optimizer_steps(opt), 0);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_optimizer_step(opt, g_ok), HG_OK);
    ck_assert_int_eq(hg_optimizer_steps(opt), 1);

    /* differentiable form */
    hg_tensor *np[2], *state[4] = {0};
    hg_tensor *lr = hg_scalar(ctx, HG_F64, 0.1);
    BAD_ST(ctx, HG_ERR_NULL, hg_opt_step(ctx, NULL, NULL, 1, 2, p, g_ok, state, np));
    BAD_ST(ctx, HG_ERR_INVALID, hg_opt_step(ctx, &unknown, NULL, 1, 2, p, g_ok, state, np));
    BAD_ST(ctx, HG_ERR_INVALID, hg_opt_step(ctx, &sgd, NULL, 1, -2, p, g_ok, state, np));
    BAD_ST(ctx, HG_ERR_RANGE, hg_opt_step(ctx, &adam, NULL, 0, 2, p, g_ok, state, np));
    BAD_ST(ctx, HG_ERR_NULL, hg_opt_step(ctx, &adam, NULL, 1, 2, p, g_ok, NULL, np));
    BAD_ST(ctx, HG_ERR_NULL, hg_opt_step(ctx, &sgd, NULL, 1, 2, NULL, g_ok, state, np));
    BAD_ST(ctx, HG_ERR_NULL, hg_opt_step(ctx, &sgd, NULL, 1, 2, p, NULL, state, np));
    BAD_ST(ctx, HG_ERR_NULL, hg_opt_step(ctx, &sgd, NULL, 1, 2, p, g_ok, state, NULL));
    BAD_ST(ctx, HG_ERR_SHAPE, hg_opt_step(ctx, &sgd, v, 1, 2, p, g_ok, state, np)); /* lr not rank 0 */
    BAD_ST(ctx, HG_ERR_DTYPE, hg_opt_step(ctx, &sgd, hg_scalar(ctx, HG_F32, 0.1), 1, 2, p, g_ok, state, np));
    BAD_ST(ctx, HG_ERR_SHAPE, hg_opt_step(ctx, &sgd, lr, 1, 2, p, g_shape, state, np));
    BAD_ST(ctx, HG_ERR_DTYPE, hg_opt_step(ctx, &sgd, lr, 1, 2, p, g_dtype, state, np));
    BAD_ST(ctx, HG_ERR_NULL, hg_opt_step(ctx, &sgd, lr, 1, 2, p, g_null, state, np));
    BAD_NOCTX(hg_opt_step(NULL, &sgd, lr, 1, 2, p, g_ok, state, np) == HG_ERR_NULL);
    hg_tensor *many[65];
    for (int i = 0; i < 65; i++)
        many[i] = sc;
    hg_tensor *many_out[65];
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_opt_step(ctx, &sgd, NULL, 1, 65, many, many, NULL, many_out), HG_OK); /* no fixed limit */
    hg_tensor *many_i32[65];
    for (int i = 0; i < 65; i++)
        many_i32[i] = i == 64 ? lab : sc;
    BAD_ST(ctx, HG_ERR_DTYPE, hg_opt_step(ctx, &sgd, NULL, 1, 65, many_i32, many_i32, NULL, many_out));
    /* Adam state of the wrong shape */
    hg_tensor *bad_state[4] = {hg_ones(ctx, HG_F64, 1, SHAPE(7)), NULL, NULL, NULL};
    BAD_ST(ctx, HG_ERR_SHAPE, hg_opt_step(ctx, &adam, lr, 1, 2, p, g_ok, bad_state, np));
}
END_TEST

/* ---- core, tensors, custom ops, io, func, check -------------------------------------- */

START_TEST(tensor_creation_bad_arguments)
{
    BAD(ctx, HG_ERR_SHAPE, hg_tensor_new(ctx, HG_F64, -1, SHAPE(1)));
    BAD(ctx, HG_ERR_SHAPE, hg_tensor_new(ctx, HG_F64, HG_MAX_RANK + 1, SHAPE(1, 1, 1, 1, 1, 1, 1)));
    BAD(ctx, HG_ERR_SHAPE, hg_tensor_new(ctx, HG_F64, 2, SHAPE(2, -1)));
    BAD(ctx, HG_ERR_SHAPE, hg_zeros(ctx, HG_F64, 1, SHAPE(INT64_MIN)));
    BAD(ctx, HG_ERR_DTYPE, hg_tensor_new(ctx, (hg_dtype)3, 1, SHAPE(2)));
    BAD(ctx, HG_ERR_DTYPE, hg_ones(ctx, (hg_dtype)-1, 1, SHAPE(2)));
    BAD(ctx, HG_ERR_NULL, hg_tensor_new(ctx, HG_F64, 2, NULL));
    BAD(ctx, HG_ERR_NULL, hg_tensor_from(ctx, HG_F64, 1, SHAPE(2), NULL));
    BAD(ctx, HG_ERR_NULL, hg_zeros(ctx, HG_F64, 1, NULL));
    BAD(ctx, HG_ERR_NULL, hg_full(ctx, HG_F64, 3, NULL, 1.0));
    BAD(ctx, HG_ERR_SHAPE, hg_arange(ctx, HG_F64, -3, 0, 1));
    BAD(ctx, HG_ERR_DTYPE, hg_scalar(ctx, (hg_dtype)5, 1.0));
    hg_rng rng;
    hg_rng_seed(&rng, 2);
    BAD(ctx, HG_ERR_DTYPE, hg_rand_uniform(ctx, &rng, HG_I32, 1, SHAPE(3), 0, 1));
    BAD(ctx, HG_ERR_DTYPE, hg_rand_normal(ctx, &rng, HG_I32, 1, SHAPE(3), 0, 1));
    BAD(ctx, HG_ERR_NULL, hg_rand_uniform(ctx, NULL, HG_F64, 1, SHAPE(3), 0, 1));
    BAD(ctx, HG_ERR_NULL, hg_rand_normal(ctx, NULL, HG_F64, 1, SHAPE(3), 0, 1));
    BAD(ctx, HG_ERR_SHAPE, hg_rand_normal(ctx, &rng, HG_F64, 1, SHAPE(-3), 0, 1));
    BAD(ctx, HG_ERR_NULL, hg_zeros_like(ctx, NULL));
    BAD(ctx, HG_ERR_NULL, hg_ones_like(ctx, NULL));
    BAD(ctx, HG_ERR_NULL, hg_tensor_clone(ctx, NULL));
    /* An empty tensor needs no data. */
    ck_assert_ptr_nonnull(hg_tensor_from(ctx, HG_F64, 1, SHAPE(0), NULL));

    /* Accessors: neutral values, an error where a ctx is reachable. */
    tried += 12;
    ck_assert_int_eq(hg_tensor_rank(NULL), -1);
    ck_assert_int_eq(hg_tensor_numel(NULL), -1);
    ck_assert_int_eq(hg_tensor_dim(NULL, 0), -1);
    ck_assert_int_eq(hg_tensor_dim(a, 2), -1);
    ck_assert_int_eq(hg_tensor_dim(a, -3), -1);
    ck_assert_ptr_null(hg_tensor_shape(NULL));
    ck_assert_ptr_null(hg_tensor_ctx(NULL));
    ck_assert_ptr_null(hg_tensor_data(NULL));
    ck_assert(isnan(hg_item(NULL)));
    ck_assert(isnan(hg_get(NULL, 0)));
    ck_assert_int_eq(hg_tensor_check(NULL), HG_ERR_NULL);
    ck_assert_ptr_null(hg_tensor_f64(NULL));
    ck_assert_ptr_null(hg_tensor_cf64(NULL));
    ck_assert_ptr_null(hg_tensor_cdata(NULL));
    hg_ctx_clear_error(ctx);
    tried++;
    ck_assert(isnan(hg_item(a)) && hg_ctx_status(ctx) == HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    tried++;
    ck_assert(isnan(hg_get(a, 6)) && hg_ctx_status(ctx) == HG_ERR_RANGE);
    hg_ctx_clear_error(ctx);
    tried++;
    ck_assert(isnan(hg_get(a, -1)) && hg_ctx_status(ctx) == HG_ERR_RANGE);
    BAD(ctx, HG_ERR_DTYPE, hg_tensor_f32(a));
    BAD(ctx, HG_ERR_DTYPE, hg_tensor_i32(a));
    BAD(ctx, HG_ERR_DTYPE, hg_tensor_f64(ia));
    /* describe: NULL buffer, zero size, tiny buffer */
    char buf[8];
    tried += 4;
    ck_assert_ptr_null(hg_tensor_describe(a, NULL, 10));
    ck_assert_ptr_eq(hg_tensor_describe(a, buf, 0), buf);
    hg_tensor_describe(cube, buf, sizeof buf);
    ck_assert_uint_lt(strlen(buf), sizeof buf);
    hg_tensor_describe(NULL, buf, sizeof buf);
    ck_assert_str_eq(buf, "<NULL>");
    /* names of invalid values */
    tried += 3;
    ck_assert_str_eq(hg_dtype_name((hg_dtype)9), "?");
    ck_assert_uint_eq(hg_dtype_size((hg_dtype)9), 0);
    ck_assert_str_eq(hg_status_name((hg_status)99), "HG_ERR_UNKNOWN");
}
END_TEST

static hg_status ok_shape(hg_ctx *c, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    (void)c;
    (void)attr;
    out->dtype = hg_tensor_dtype(in[0]);
    out->rank = hg_tensor_rank(in[0]);
    memcpy(out->shape, hg_tensor_shape(in[0]), sizeof(int64_t) * (size_t)out->rank);
    return HG_OK;
}

static hg_status bad_out_shape(hg_ctx *c, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    (void)c;
    (void)in;
    (void)attr;
    out->dtype = HG_F64;
    out->rank = 9; /* invalid output rank from a user shape rule */
    return HG_OK;
}

static hg_status copy_forward(hg_ctx *c, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)c;
    (void)attr;
    memcpy(hg_tensor_data(out[0]), hg_tensor_cdata(in[0]),
           (size_t)hg_tensor_numel(in[0]) * hg_dtype_size(hg_tensor_dtype(in[0])));
    return HG_OK;
}

static hg_status failing_forward(hg_ctx *c, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)in;
    (void)out;
    (void)attr;
    return hg_op_error(c, HG_ERR_RANGE, "failing_forward: value out of range");
}

static hg_status silent_failing_forward(hg_ctx *c, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)c;
    (void)in;
    (void)out;
    (void)attr;
    return HG_ERR_INVALID; /* no message: hg_apply must still leave one */
}

/* vjp with a cotangent of the wrong shape */
static hg_status wrong_vjp(hg_ctx *c, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    (void)gout;
    gin[0] = hg_sum(c, hg_node_input(node, 0));
    return HG_OK;
}

/* vjp that calls hg_gradient (re-entrant sweep) */
static hg_tape *reentrant_tape;
static hg_status reentrant_vjp(hg_ctx *c, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *x = hg_node_input(node, 0), *g;
    hg_status s = hg_gradient(reentrant_tape, x, 1, &x, NULL, &g);
    gin[0] = gout[0];
    (void)c;
    return s;
}

/* once-differentiable copy */
static hg_status copy_backward(hg_ctx *c, const hg_node *node, hg_tensor *const *gout, hg_tensor *const *gin)
{
    (void)c;
    (void)node;
    memcpy(hg_tensor_data(gin[0]), hg_tensor_cdata(gout[0]), (size_t)hg_tensor_numel(gin[0]) * 8);
    return HG_OK;
}

START_TEST(custom_op_bad_definitions)
{
    hg_opdef ok = {"ok", 1, 1, 0, ok_shape, copy_forward, NULL, NULL};
    hg_opdef no_shape = ok, no_forward = ok, zero_inputs = ok, many_inputs = ok, zero_outputs = ok, many_outputs = ok,
             both = ok, with_attr = ok, wide_out = ok, fails = ok, fails_silently = ok;
    no_shape.shape = NULL;
    no_forward.forward = NULL;
    zero_inputs.n_inputs = 0;
    many_inputs.n_inputs = HG_MAX_OP_INPUTS + 1;
    zero_outputs.n_outputs = 0;
    many_outputs.n_outputs = HG_MAX_OP_OUTPUTS + 1;
    both.vjp = wrong_vjp;
    both.backward = copy_backward;
    with_attr.attr_size = 8;
    wide_out.shape = bad_out_shape;
    fails.forward = failing_forward;
    fails_silently.forward = silent_failing_forward;
    hg_tensor *in[HG_MAX_OP_INPUTS] = {a, a, a, a, a, a, a, a};
    hg_tensor *outs[HG_MAX_OP_OUTPUTS + 1];
    ck_assert_ptr_nonnull(hg_apply(ctx, &ok, in, NULL));
    BAD(ctx, HG_ERR_INVALID, hg_apply(ctx, NULL, in, NULL));
    BAD(ctx, HG_ERR_INVALID, hg_apply(ctx, &no_shape, in, NULL));
    BAD(ctx, HG_ERR_INVALID, hg_apply(ctx, &no_forward, in, NULL));
    BAD(ctx, HG_ERR_INVALID, hg_apply(ctx, &zero_inputs, in, NULL));
    BAD(ctx, HG_ERR_INVALID, hg_apply(ctx, &many_inputs, in, NULL));
    BAD(ctx, HG_ERR_INVALID, hg_apply(ctx, &zero_outputs, in, NULL));
    BAD(ctx, HG_ERR_INVALID, hg_apply(ctx, &many_outputs, in, NULL));
    BAD(ctx, HG_ERR_INVALID, hg_apply(ctx, &both, in, NULL));
    BAD(ctx, HG_ERR_NULL, hg_apply(ctx, &with_attr, in, NULL));
    BAD(ctx, HG_ERR_NULL, hg_apply(ctx, &ok, NULL, NULL));
    BAD(ctx, HG_ERR_SHAPE, hg_apply(ctx, &wide_out, in, NULL));
    BAD(ctx, HG_ERR_RANGE, hg_apply(ctx, &fails, in, NULL));
    BAD(ctx, HG_ERR_INVALID, hg_apply(ctx, &fails_silently, in, NULL));
    BAD_NOCTX(hg_apply(NULL, &ok, in, NULL) == NULL);
    BAD_ST(ctx, HG_ERR_NULL, hg_apply_multi(ctx, &ok, in, NULL, NULL));
    hg_opdef two = ok;
    two.n_outputs = 2;
    BAD(ctx, HG_ERR_INVALID, hg_apply(ctx, &two, in, NULL)); /* single-output call of a two-output op */
    BAD_ST(ctx, HG_ERR_INVALID, hg_apply_multi(ctx, &many_outputs, in, NULL, outs));
    /* node accessors on NULL */
    tried += 5;
    ck_assert_ptr_null(hg_node_input(NULL, 0));
    ck_assert_ptr_null(hg_node_output(NULL, 0));
    ck_assert_ptr_null(hg_node_attr(NULL));
    ck_assert_ptr_null(hg_node_def(NULL));
    ck_assert_int_eq(hg_node_needs_grad(NULL, 0), 0);
    tried += 3;
    ck_assert_int_eq(hg_same_shape(NULL, a), 0);
    int r;
    int64_t out_shape[HG_MAX_RANK];
    ck_assert_int_eq(hg_broadcast_shapes(2, SHAPE(2, 3), 2, SHAPE(3, 2), &r, out_shape), 0);
    ck_assert_int_eq(hg_broadcast_shapes(7, SHAPE(1, 1, 1, 1, 1, 1, 1), 1, SHAPE(1), &r, out_shape), 0);
    BAD_NOCTX(hg_op_error(NULL, HG_ERR_SHAPE, "x") == HG_ERR_SHAPE);

    /* vjps that misbehave: wrong cotangent shape, re-entrant sweep */
    hg_opdef wrong = ok, reentrant = ok, once = ok;
    wrong.vjp = wrong_vjp;
    reentrant.vjp = reentrant_vjp;
    once.backward = copy_backward;
    hg_tape *t = hg_tape_begin(ctx, HG_TAPE_PERSISTENT);
    hg_watch(t, a);
    hg_tensor *y1 = hg_sum(ctx, hg_apply(ctx, &wrong, in, NULL));
    hg_tensor *y2 = hg_sum(ctx, hg_apply(ctx, &reentrant, in, NULL));
    hg_tape_end(t);
    reentrant_tape = t;
    hg_tensor *g = a;
    BAD_ST(ctx, HG_ERR_SHAPE, hg_gradient(t, y1, 1, &a, NULL, &g));
    ck_assert_ptr_null(g);
    BAD_ST(ctx, HG_ERR_TAPE, hg_gradient(t, y2, 1, &a, NULL, &g));
    /* once-differentiable: second order is HG_ERR_ONCE_DIFF naming the op */
    hg_tape *outer = hg_tape_begin(ctx, 0);
    hg_watch(outer, a);
    hg_tape *inner = hg_tape_begin(ctx, 0);
    hg_watch(inner, a);
    hg_tensor *y = hg_sum(ctx, hg_mul(ctx, hg_apply(ctx, &once, in, NULL), a));
    hg_tape_end(inner);
    ck_assert_int_eq(hg_gradient(inner, y, 1, &a, NULL, &g), HG_OK);
    hg_tensor *gs = hg_sum(ctx, g);
    hg_tape_end(outer);
    BAD_ST(ctx, HG_ERR_ONCE_DIFF, hg_gradient(outer, gs, 1, &a, NULL, &g));
    ck_assert_msg(strstr(hg_ctx_error(ctx), "ok") != NULL, "message does not name the op: %s", hg_ctx_error(ctx));
}
END_TEST

static hg_tensor *f_sum_sq(hg_ctx *c, hg_tensor *const *in, void *user)
{
    (void)user;
    return hg_sum(c, hg_mul(c, in[0], in[0]));
}

static hg_tensor *f_vector(hg_ctx *c, hg_tensor *const *in, void *user)
{
    (void)user;
    return hg_exp(c, in[0]);
}

static hg_tensor *f_cast(hg_ctx *c, hg_tensor *const *in, void *user)
{
    (void)user;
    return hg_cast(c, in[0], HG_F64);
}

static hg_tensor *f_null(hg_ctx *c, hg_tensor *const *in, void *user)
{
    (void)c;
    (void)in;
    (void)user;
    return NULL; /* fails without saying why */
}

static hg_tensor *f_error(hg_ctx *c, hg_tensor *const *in, void *user)
{
    (void)in;
    (void)user;
    hg_op_error(c, HG_ERR_RANGE, "f_error: deliberate");
    return NULL;
}

/* Operators for hg_cg_solve / hg_lissa_solve: Av = 2 v, and one that fails. */
static hg_status apply_twice(hg_ctx *c, const hg_tensor *vec, hg_tensor **Av, void *user)
{
    (void)user;
    *Av = hg_scale(c, hg_tensor_clone(c, vec), 2.0);
    return *Av ? HG_OK : hg_ctx_status(c);
}

static hg_status apply_error(hg_ctx *c, const hg_tensor *vec, hg_tensor **Av, void *user)
{
    (void)vec;
    (void)Av;
    (void)user;
    return hg_op_error(c, HG_ERR_RANGE, "apply_error: deliberate");
}

START_TEST(func_and_check_bad_arguments)
{
    hg_tensor *x = T64(ctx, 1, SHAPE(3), 1, 2, 3), *in1[1] = {x}, *out[2], *value;
    hg_tensor *xf = hg_full(ctx, HG_F32, 1, SHAPE(3), 1.0), *inf[1] = {xf};
    hg_tensor *ii[1] = {lab};
    hg_tensor *tan_bad[1] = {v == NULL ? x : a};
    /* vjp */
    BAD_ST(ctx, HG_ERR_NULL, hg_vjp(ctx, NULL, 1, in1, NULL, NULL, 0, &value, out));
    BAD_ST(ctx, HG_ERR_NULL, hg_vjp(ctx, f_sum_sq, 1, NULL, NULL, NULL, 0, &value, out));
    BAD_ST(ctx, HG_ERR_NULL, hg_vjp(ctx, f_sum_sq, 1, in1, NULL, NULL, 0, &value, NULL));
    BAD_ST(ctx, HG_ERR_INVALID, hg_vjp(ctx, f_sum_sq, -1, in1, NULL, NULL, 0, &value, out));
    BAD_ST(ctx, HG_ERR_SHAPE, hg_vjp(ctx, f_vector, 1, in1, NULL, NULL, 0, &value, out)); /* no cotangent */
    BAD_ST(ctx, HG_ERR_SHAPE, hg_vjp(ctx, f_vector, 1, in1, NULL, a, 0, &value, out));    /* wrong cotangent */
    BAD_ST(ctx, HG_ERR_RANGE, hg_vjp(ctx, f_error, 1, in1, NULL, NULL, 0, &value, out));
    BAD_ST(ctx, HG_ERR_INVALID, hg_vjp(ctx, f_null, 1, in1, NULL, NULL, 0, &value, out));
    BAD_ST(ctx, HG_ERR_NULL, hg_vjp(ctx, f_sum_sq, 1, (hg_tensor *[]){NULL}, NULL, NULL, 0, &value, out));
    BAD_ST(ctx, HG_ERR_INVALID, hg_vjp(ctx, f_sum_sq, 1, in1, NULL, NULL, 8, &value, out)); /* unknown flag */
    BAD_NOCTX(hg_vjp(NULL, f_sum_sq, 1, in1, NULL, NULL, 0, &value, out) == HG_ERR_NULL);
    /* jvp, hvp */
    BAD_ST(ctx, HG_ERR_SHAPE, hg_jvp(ctx, f_vector, 1, in1, NULL, tan_bad, 0, &value, out));
    BAD_ST(ctx, HG_ERR_NULL, hg_jvp(ctx, f_vector, 1, in1, NULL, in1, 0, &value, NULL));
    BAD_ST(ctx, HG_ERR_NULL, hg_jvp(ctx, NULL, 1, in1, NULL, in1, 0, &value, out));
    BAD_ST(ctx, HG_ERR_SHAPE, hg_hvp(ctx, f_vector, 1, in1, NULL, in1, 0, &value, out)); /* f not scalar */
    BAD_ST(ctx, HG_ERR_SHAPE, hg_hvp(ctx, f_sum_sq, 1, in1, NULL, tan_bad, 0, &value, out));
    BAD_ST(ctx, HG_ERR_NULL, hg_hvp(ctx, f_sum_sq, 1, in1, NULL, in1, 0, &value, NULL));
    BAD_ST(ctx, HG_ERR_RANGE, hg_hvp(ctx, f_error, 1, in1, NULL, in1, 0, &value, out));
    /* jacobian, hessian */
    BAD_ST(ctx, HG_ERR_INVALID, hg_jacobian(ctx, f_cast, 1, ii, NULL, 0, out)); /* no float input */
    BAD_ST(ctx, HG_ERR_SHAPE, hg_hessian(ctx, f_vector, 1, in1, NULL, 0, out));
    BAD_ST(ctx, HG_ERR_NULL, hg_jacobian(ctx, f_vector, 1, in1, NULL, 0, NULL));
    BAD_ST(ctx, HG_ERR_NULL, hg_hessian(ctx, NULL, 1, in1, NULL, 0, out));
    hg_tensor *mixed[2] = {x, xf};
    BAD_ST(ctx, HG_ERR_DTYPE, hg_jacobian(ctx, f_vector, 2, mixed, NULL, 0, out));
    /* gradcheck */
    hg_check_report rep;
    hg_check_options order9 = {.order = 9};
    BAD_ST(ctx, HG_ERR_DTYPE, hg_gradcheck(ctx, f_sum_sq, 1, inf, NULL, NULL, &rep));
    BAD_ST(ctx, HG_ERR_RANGE, hg_gradcheck(ctx, f_sum_sq, 1, in1, NULL, &order9, &rep));
    BAD_ST(ctx, HG_ERR_NULL, hg_gradcheck(ctx, NULL, 1, in1, NULL, NULL, &rep));
    BAD_ST(ctx, HG_ERR_NULL, hg_gradcheck(ctx, f_sum_sq, 1, in1, NULL, NULL, NULL));
    BAD_ST(ctx, HG_ERR_NULL, hg_gradcheck(ctx, f_sum_sq, 1, NULL, NULL, NULL, &rep));
    BAD_ST(ctx, HG_ERR_RANGE, hg_gradcheck(ctx, f_error, 1, in1, NULL, NULL, &rep));
    BAD_NOCTX(hg_gradcheck(NULL, f_sum_sq, 1, in1, NULL, NULL, &rep) == HG_ERR_NULL);
    /* solve.h: CG and LiSSA */
    hg_solve_options scaled = {.scale = 4.0}, neg_tol = {.tol = -1.0, .scale = 4.0};
    BAD_ST(ctx, HG_ERR_NULL, hg_cg_solve(ctx, NULL, NULL, x, NULL, out, NULL));
    BAD_ST(ctx, HG_ERR_NULL, hg_cg_solve(ctx, apply_twice, NULL, NULL, NULL, out, NULL));
    BAD_ST(ctx, HG_ERR_NULL, hg_cg_solve(ctx, apply_twice, NULL, x, NULL, NULL, NULL));
    BAD_ST(ctx, HG_ERR_DTYPE, hg_cg_solve(ctx, apply_twice, NULL, lab, NULL, out, NULL));
    BAD_ST(ctx, HG_ERR_RANGE, hg_cg_solve(ctx, apply_twice, NULL, x, &neg_tol, out, NULL));
    BAD_ST(ctx, HG_ERR_RANGE, hg_cg_solve(ctx, apply_error, NULL, x, NULL, out, NULL));
    BAD_ST(ctx, HG_ERR_RANGE, hg_lissa_solve(ctx, apply_twice, NULL, x, NULL, out, NULL)); /* no scale */
    BAD_ST(ctx, HG_ERR_DTYPE, hg_lissa_solve(ctx, apply_twice, NULL, lab, &scaled, out, NULL));
    BAD_ST(ctx, HG_ERR_RANGE, hg_lissa_solve(ctx, apply_error, NULL, x, &scaled, out, NULL));
    BAD_NOCTX(hg_cg_solve(NULL, apply_twice, NULL, x, NULL, out, NULL) == HG_ERR_NULL);
    BAD_NOCTX(hg_lissa_solve(NULL, apply_twice, NULL, x, &scaled, out, NULL) == HG_ERR_NULL);
}
END_TEST

START_TEST(io_bad_arguments)
{
    char dir[] = "/tmp/hgrad_badinput_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[600], missing[600], as_dir[600];
    snprintf(path, sizeof path, "%s/t.npy", dir);
    snprintf(missing, sizeof missing, "%s/missing.npy", dir);
    snprintf(as_dir, sizeof as_dir, "%s/no/such/dir/t.npy", dir);
    BAD(ctx, HG_ERR_IO, hg_npy_load(ctx, missing));
    ck_assert_msg(strstr(hg_ctx_error(ctx), "missing.npy"), "message does not name the file: %s", hg_ctx_error(ctx));
    BAD(ctx, HG_ERR_IO, hg_npy_load(ctx, dir)); /* a directory */
    BAD(ctx, HG_ERR_NULL, hg_npy_load(ctx, NULL));
    BAD(ctx, HG_ERR_NULL, hg_npy_load_buffer(ctx, NULL, 10));
    BAD(ctx, HG_ERR_FORMAT, hg_npy_load_buffer(ctx, "", 0));
    BAD(ctx, HG_ERR_FORMAT, hg_npy_load_buffer(ctx, "\x93NUMPY", 6));
    BAD_NOCTX(hg_npy_load(NULL, path) == NULL);
    BAD_NOCTX(hg_npy_load_buffer(NULL, "x", 1) == NULL);
    BAD(ctx, HG_ERR_IO, hg_idx_load(ctx, missing, HG_I32, 1, 0));
    BAD(ctx, HG_ERR_NULL, hg_idx_load(ctx, NULL, HG_I32, 1, 0));
    BAD(ctx, HG_ERR_NULL, hg_idx_load_buffer(ctx, NULL, 4, HG_I32, 1, 0));
    BAD(ctx, HG_ERR_DTYPE, hg_idx_load_buffer(ctx, "\0\0\x08\x01\0\0\0\0", 8, (hg_dtype)4, 1, 0));
    BAD(ctx, HG_ERR_FORMAT, hg_idx_load_buffer(ctx, "\0\0\x08\x01\0\0\0\x02", 8, HG_I32, 1, 0));      /* truncated */
    BAD(ctx, HG_ERR_FORMAT, hg_idx_load_buffer(ctx, "\0\0\x08\x01\0\0\0\x04zzzz", 12, HG_I32, 1, 3)); /* limit */
    BAD_NOCTX(hg_idx_load(NULL, path, HG_I32, 1, 0) == NULL);
    /* save */
    BAD_ST(ctx, HG_ERR_IO, hg_npy_save(as_dir, a));
    BAD_ST(ctx, HG_ERR_NULL, hg_npy_save(NULL, a));
    BAD_NOCTX(hg_npy_save(path, NULL) == HG_ERR_NULL);
    BAD_ST(ctx, HG_ERR_DTYPE, hg_npy_save_as(path, a, HG_NPY_I32));
    BAD_ST(ctx, HG_ERR_DTYPE, hg_npy_save_as(path, a, HG_NPY_U8));
    BAD_ST(ctx, HG_ERR_DTYPE, hg_npy_save_as(path, lab, HG_NPY_F32));
    BAD_ST(ctx, HG_ERR_DTYPE, hg_npy_save_as(path, a, (hg_npy_type)17));
    hg_tensor *big = hg_tensor_from(ctx, HG_I32, 1, SHAPE(2), (const int32_t[]){5, 300});
    BAD_ST(ctx, HG_ERR_RANGE, hg_npy_save_as(path, big, HG_NPY_U8));
    BAD_NOCTX(hg_npy_save_as(NULL, NULL, HG_NPY_F64) == HG_ERR_NULL);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* ---- NULL ctx for every call that takes one -------------------------------------------- */

START_TEST(null_ctx_everywhere)
{
    hg_rng rng;
    hg_rng_seed(&rng, 1);
    const int64_t *s2 = SHAPE(2, 3);
    int perm[2] = {1, 0};
    hg_tensor *const in1[1] = {a};
    hg_tensor *outs[4];
    const void *r[64];
    int n = 0;
    r[n++] = hg_tensor_new(NULL, HG_F64, 2, s2);
    r[n++] = hg_tensor_from(NULL, HG_F64, 1, SHAPE(1), (const double[]){1});
    r[n++] = hg_zeros(NULL, HG_F64, 2, s2);
    r[n++] = hg_ones(NULL, HG_F64, 2, s2);
    r[n++] = hg_full(NULL, HG_F64, 2, s2, 1);
    r[n++] = hg_scalar(NULL, HG_F64, 1);
    r[n++] = hg_arange(NULL, HG_F64, 3, 0, 1);
    r[n++] = hg_zeros_like(NULL, a);
    r[n++] = hg_ones_like(NULL, a);
    r[n++] = hg_tensor_clone(NULL, a);
    r[n++] = hg_rand_uniform(NULL, &rng, HG_F64, 2, s2, 0, 1);
    r[n++] = hg_rand_normal(NULL, &rng, HG_F64, 2, s2, 0, 1);
    r[n++] = hg_where(NULL, a, a, a);
    r[n++] = hg_matmul_t(NULL, a, a, 0, 1);
    r[n++] = hg_sum_to(NULL, a, 1, SHAPE(3));
    r[n++] = hg_broadcast_to(NULL, v, 2, s2);
    r[n++] = hg_reshape(NULL, a, 1, SHAPE(6));
    r[n++] = hg_permute(NULL, a, perm);
    r[n++] = hg_one_hot(NULL, lab, 3, HG_F64);
    r[n++] = hg_gather(NULL, a, lab);
    r[n++] = hg_cast(NULL, a, HG_F32);
    r[n++] = hg_softmax(NULL, a, 1);
    r[n++] = hg_sum_axis(NULL, a, 0, 0);
    r[n++] = hg_clamp(NULL, a, 0, 1);
    r[n++] = hg_leaky_relu(NULL, a, 0.1);
    r[n++] = hg_elu(NULL, a, 1);
    r[n++] = hg_max_axis(NULL, a, 0, 0);
    r[n++] = hg_argmin(NULL, a, 0, 0);
    r[n++] = hg_logsumexp(NULL, a, 0, 0);
    r[n++] = hg_sum_axes(NULL, a, 1, (const int[]){0}, 0);
    r[n++] = hg_mean_axes(NULL, a, 1, (const int[]){0}, 0);
    r[n++] = hg_dense(NULL, a, b, NULL);
    r[n++] = hg_activate(NULL, a, HG_ACT_RELU);
    r[n++] = hg_activate(NULL, a, (hg_activation)42);
    r[n++] = hg_softmax_cross_entropy(NULL, a, lab);
    r[n++] = hg_softmax_cross_entropy_each(NULL, a, lab);
    r[n++] = hg_mse(NULL, a, a);
    r[n++] = hg_npy_load_buffer(NULL, "", 0);
    r[n++] = hg_idx_load_buffer(NULL, "", 0, HG_I32, 1, 0);
    r[n++] = hg_tape_begin(NULL, 0);
    hg_mlp spec = {.n_layers = 1, .sizes = {3, 2}};
    r[n++] = hg_mlp_forward(NULL, &spec, in1, a);
    for (int i = 0; i < n; i++)
        ck_assert_msg(r[i] == NULL, "call %d with a NULL ctx returned non-NULL", i);
    tried += n;
    BAD_NOCTX(isnan(hg_accuracy(NULL, a, lab)));
    BAD_NOCTX(hg_apply_multi(NULL, NULL, in1, NULL, outs) == HG_ERR_NULL);
    BAD_NOCTX(hg_ctx_status(NULL) == HG_ERR_NULL);
    BAD_NOCTX(hg_ctx_error(NULL) != NULL);
    BAD_NOCTX(hg_ctx_rewind(NULL, hg_ctx_mark(NULL)) == HG_ERR_NULL);
    BAD_NOCTX(hg_ctx_reset(NULL) == HG_ERR_NULL);
    BAD_NOCTX(hg_ctx_get_stats(NULL).bytes_in_use == 0);
    BAD_NOCTX(hg_jvp(NULL, f_sum_sq, 1, in1, NULL, in1, 0, NULL, outs) == HG_ERR_NULL);
    BAD_NOCTX(hg_hvp(NULL, f_sum_sq, 1, in1, NULL, in1, 0, NULL, outs) == HG_ERR_NULL);
    BAD_NOCTX(hg_jacobian(NULL, f_sum_sq, 1, in1, NULL, 0, outs) == HG_ERR_NULL);
    BAD_NOCTX(hg_hessian(NULL, f_sum_sq, 1, in1, NULL, 0, outs) == HG_ERR_NULL);
    /* calls with nothing to return */
    hg_ctx_free(NULL);
    hg_ctx_clear_error(NULL);
    hg_ctx_reset_peak(NULL);
    tried += 3;
    /* hg_ctx_new: an incomplete allocator is refused */
    hg_allocator no_free = {NULL, NULL, NULL};
    hg_ctx_options o = {.allocator = &no_free};
    BAD_NOCTX(hg_ctx_new(&o) == NULL);
    /* ops taking a ctx of another tensor */
    hg_ctx *other = hg_ctx_new(NULL);
    hg_tensor *foreign = hg_ones(other, HG_F64, 2, s2);
    BAD(ctx, HG_ERR_INVALID, hg_add(ctx, a, foreign));
    BAD(ctx, HG_ERR_INVALID, hg_exp(ctx, foreign));
    BAD(ctx, HG_ERR_INVALID, hg_tensor_clone(ctx, foreign));
    hg_tape *t = hg_tape_begin(ctx, 0);
    BAD_ST(ctx, HG_ERR_INVALID, hg_watch(t, foreign));
    hg_tape_end(t);
    hg_ctx_free(other);
}
END_TEST

/* ---- tape misuse --------------------------------------------------------------------- */

START_TEST(tape_misuse)
{
    hg_tape *outer = hg_tape_begin(ctx, 0), *inner = hg_tape_begin(ctx, 0);
    hg_watch(inner, a);
    hg_tensor *y = hg_sum(ctx, hg_exp(ctx, a)), *g = NULL;
    BAD_ST(ctx, HG_ERR_TAPE, hg_tape_end(outer));                     /* not innermost */
    BAD_ST(ctx, HG_ERR_TAPE, hg_gradient(inner, y, 1, &a, NULL, &g)); /* still recording */
    ck_assert_ptr_null(g);
    BAD_ST(ctx, HG_ERR_TAPE, hg_tape_resume(inner)); /* not paused */
    BAD_ST(ctx, HG_ERR_DTYPE, hg_watch(inner, lab)); /* i32 */
    BAD_ST(ctx, HG_ERR_NULL, hg_watch(inner, NULL));
    BAD_ST(ctx, HG_ERR_NULL, hg_watch_n(inner, 2, NULL));
    BAD_ST(ctx, HG_ERR_NULL, hg_watch_n(inner, 2, (hg_tensor *[]){a, NULL}));
    BAD_NOCTX(hg_watch_n(NULL, 1, &a) == HG_ERR_NULL);
    BAD_NOCTX(hg_watch_n(NULL, 1, NULL) == HG_ERR_NULL);
    ck_assert_int_eq(hg_tape_end(inner), HG_OK);
    BAD_ST(ctx, HG_ERR_TAPE, hg_tape_end(inner)); /* twice */
    BAD_ST(ctx, HG_ERR_TAPE, hg_watch(inner, a)); /* ended */
    BAD_ST(ctx, HG_ERR_TAPE, hg_tape_pause(inner));
    BAD_ST(ctx, HG_ERR_TAPE, hg_tape_resume(inner));
    /* gradient argument errors */
    BAD_ST(ctx, HG_ERR_DTYPE, hg_gradient(inner, lab, 1, &a, NULL, &g));
    BAD_ST(ctx, HG_ERR_SHAPE, hg_gradient(inner, a, 1, &a, NULL, &g));                      /* non-scalar, no seed */
    BAD_ST(ctx, HG_ERR_SHAPE, hg_gradient(inner, y, 1, &a, a, &g));                         /* seed shape */
    BAD_ST(ctx, HG_ERR_SHAPE, hg_gradient(inner, y, 1, &a, hg_scalar(ctx, HG_F32, 1), &g)); /* seed dtype */
    BAD_ST(ctx, HG_ERR_INVALID, hg_gradient(inner, y, -1, &a, NULL, &g));
    BAD_ST(ctx, HG_ERR_NULL, hg_gradient(inner, y, 1, NULL, NULL, &g));
    BAD_ST(ctx, HG_ERR_NULL, hg_gradient(inner, y, 1, &a, NULL, NULL));
    BAD_ST(ctx, HG_ERR_NULL, hg_gradient(inner, NULL, 1, &a, NULL, &g));
    BAD_ST(ctx, HG_ERR_NULL, hg_gradient(inner, y, 1, (hg_tensor *[]){NULL}, NULL, &g));
    BAD_NOCTX(hg_gradient(NULL, y, 1, &a, NULL, &g) == HG_ERR_NULL && g == NULL);
    /* the errors above did not use up the one gradient of a non-persistent tape */
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_gradient(inner, y, 1, &a, NULL, &g), HG_OK);
    BAD_ST(ctx, HG_ERR_TAPE, hg_gradient(inner, y, 1, &a, NULL, &g)); /* second call */
    ck_assert_int_eq(hg_tape_end(outer), HG_OK);
    /* depth */
    hg_tape *tapes[HG_MAX_TAPES];
    for (int i = 0; i < HG_MAX_TAPES; i++)
        ck_assert_ptr_nonnull(tapes[i] = hg_tape_begin(ctx, 0));
    BAD(ctx, HG_ERR_TAPE, hg_tape_begin(ctx, 0));
    for (int i = HG_MAX_TAPES - 1; i >= 0; i--)
        ck_assert_int_eq(hg_tape_end(tapes[i]), HG_OK);
    BAD(ctx, HG_ERR_INVALID, hg_tape_begin(ctx, 8u));
    BAD(ctx, HG_ERR_INVALID, hg_tape_begin(ctx, 0x80000000u));
    /* NULL tapes */
    BAD_NOCTX(hg_tape_end(NULL) == HG_ERR_NULL);
    BAD_NOCTX(hg_watch(NULL, a) == HG_ERR_NULL);
    BAD_NOCTX(hg_tape_pause(NULL) == HG_ERR_NULL);
    BAD_NOCTX(hg_tape_resume(NULL) == HG_ERR_NULL);
    BAD_NOCTX(hg_tape_tracks(NULL, a) == 0);
    BAD_NOCTX(hg_tape_ctx(NULL) == NULL);
    /* a rewind across an active tape made after the mark is refused */
    hg_mark m = hg_ctx_mark(ctx);
    hg_tape *late = hg_tape_begin(ctx, 0);
    BAD_ST(ctx, HG_ERR_TAPE, hg_ctx_rewind(ctx, m));
    BAD_ST(ctx, HG_ERR_TAPE, hg_ctx_reset(ctx));
    ck_assert_ptr_eq(hg_tape_ctx(late), ctx);
    ck_assert_int_eq(hg_tape_end(late), HG_OK);
}
END_TEST

/* ---- tensors and tapes from a rewound region ------------------------------------------ */

START_TEST(stale_tensors_and_tapes)
{
    hg_tape *outer = hg_tape_begin(ctx, HG_TAPE_PERSISTENT);
    hg_watch(outer, a);
    hg_tensor *s = hg_sum(ctx, a);
    /* Nothing is allocated between the rewind and the uses of old, y and t
     * below: once their memory holds a new tensor header, a stale pointer is
     * indistinguishable from it (the documented limit of the detection). */
    hg_mark m = hg_ctx_mark(ctx);
    hg_tensor *old = hg_exp(ctx, a);
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_tape_end(t);
    hg_tensor *y = hg_sum(ctx, old);
    ck_assert_int_eq(hg_ctx_rewind(ctx, m), HG_OK);
    /* old, y and t are stale now (their memory is not reused yet) */
    tried += 4;
    ck_assert_int_eq(hg_tensor_check(old), HG_ERR_STALE);
    ck_assert_int_eq(hg_tensor_rank(old), -1);
    ck_assert_ptr_null(hg_tensor_data(old));
    ck_assert(isnan(hg_item(y)));
    BAD(ctx, HG_ERR_STALE, hg_exp(ctx, old));
    BAD(ctx, HG_ERR_STALE, hg_add(ctx, a, old));
    BAD(ctx, HG_ERR_STALE, hg_matmul(ctx, old, b));
    BAD(ctx, HG_ERR_STALE, hg_tensor_clone(ctx, old));
    BAD(ctx, HG_ERR_STALE, hg_zeros_like(ctx, old));
    BAD(ctx, HG_ERR_STALE, hg_softmax_cross_entropy(ctx, old, lab));
    BAD(ctx, HG_ERR_STALE, hg_dense(ctx, old, b, NULL));
    BAD_ST(ctx, HG_ERR_STALE, hg_watch(outer, old));
    hg_tape_end(outer);
    hg_tensor *g = a;
    BAD_ST(ctx, HG_ERR_STALE, hg_gradient(outer, y, 1, &a, NULL, &g)); /* target */
    ck_assert_ptr_null(g);
    BAD_ST(ctx, HG_ERR_STALE, hg_gradient(outer, s, 1, &old, NULL, &g)); /* source */
    BAD_ST(ctx, HG_ERR_STALE, hg_gradient(outer, a, 1, &a, old, &g));    /* seed */
    BAD_NOCTX(hg_npy_save("/tmp/never_written.npy", old) == HG_ERR_STALE);
    /* the tape begun after the mark */
    BAD_NOCTX(hg_tape_end(t) == HG_ERR_STALE);
    BAD_NOCTX(hg_watch(t, a) == HG_ERR_STALE);
    BAD_NOCTX(hg_tape_pause(t) == HG_ERR_STALE);
    BAD_NOCTX(hg_gradient(t, s, 1, &a, NULL, &g) == HG_ERR_STALE && g == NULL);
    BAD_NOCTX(hg_tape_ctx(t) == NULL);
    BAD_NOCTX(hg_tape_tracks(t, a) == 0);
    /* optimizer steps with stale gradients change nothing */
    hg_tensor *p = hg_tensor_clone(ctx, v);
    hg_opt_config sgd = {.kind = HG_OPT_SGD, .lr = 1};
    hg_optimizer *opt = hg_optimizer_new(ctx, &sgd, 1, &p);
    hg_mark m2 = hg_ctx_mark(ctx);
    hg_tensor *gv = hg_ones_like(ctx, v);
    ck_assert_int_eq(hg_ctx_rewind(ctx, m2), HG_OK);
    BAD_ST(ctx, HG_ERR_STALE, hg_optimizer_step(opt, &gv));
    ck_assert(hg_get(p, 0) == 1.0);
    /* marks: released, ahead of the position */
    hg_mark ahead = hg_ctx_mark(ctx);
    hg_tensor *filler = hg_zeros(ctx, HG_F64, 1, SHAPE(100));
    (void)filler;
    hg_mark later = hg_ctx_mark(ctx);
    ck_assert_int_eq(hg_ctx_rewind(ctx, ahead), HG_OK);
    BAD_ST(ctx, HG_ERR_INVALID, hg_ctx_rewind(ctx, later)); /* released by the rewind */
    ck_assert_int_eq(hg_ctx_rewind(ctx, m2), HG_OK);        /* older: still valid */
    BAD_ST(ctx, HG_ERR_INVALID, hg_ctx_rewind(ctx, ahead)); /* released now */
}
END_TEST

/* Regression (found by fuzz_ops): a tape begun before a mark that watched a
 * tensor after it kept a record in the released memory; after the memory was
 * reused, hg_tape_tracks and hg_gradient walked garbage. */
START_TEST(watch_after_mark_then_rewind)
{
    for (int ended = 0; ended < 2; ended++) {
        hg_ctx_options opts = {.chunk_bytes = 4096};
        hg_ctx *c = hg_ctx_new(&opts);
        hg_tensor *x = T64(c, 1, SHAPE(2), 1, 2), *w = T64(c, 1, SHAPE(2), 3, 4);
        hg_tape *tape = hg_tape_begin(c, HG_TAPE_PERSISTENT);
        hg_watch(tape, w);
        hg_mark m = hg_ctx_mark(c);
        hg_tensor *fresh = hg_ones(c, HG_F64, 1, SHAPE(2));
        hg_watch(tape, x);     /* record after the mark, tensor before it */
        hg_watch(tape, fresh); /* record and tensor after the mark */
        if (ended)
            hg_tape_end(tape);
        ck_assert_int_eq(hg_ctx_rewind(c, m), HG_OK);
        /* Reuse the released memory with bytes that look like pointers. */
        for (int i = 0; i < 50; i++) {
            hg_tensor *junk = hg_full(c, HG_F64, 1, SHAPE(64), 0);
            memset(hg_tensor_data(junk), 0x5a, 64 * sizeof(double));
        }
        ck_assert_int_eq(hg_tape_tracks(tape, x), 0); /* the watch was undone */
        ck_assert_int_eq(hg_tape_tracks(tape, w), 1);
        if (!ended) {
            hg_tensor *y = hg_sum(c, hg_mul(c, x, w));
            hg_tape_end(tape);
            hg_tensor *g[2];
            ck_assert_int_eq(hg_gradient(tape, y, 2, (hg_tensor *[]){x, w}, NULL, g), HG_OK);
            ck_assert(hg_get(g[0], 0) == 0.0 && hg_get(g[1], 1) == 2.0); /* x untracked, dy/dw = x */
        } else {
            hg_tensor *g;
            ck_assert_int_eq(hg_gradient(tape, w, 1, &x, hg_ones_like(c, w), &g), HG_OK);
        }
        ck_assert_ctx_ok(c);
        hg_ctx_free(c);
        tried++;
    }
}
END_TEST

/* ---- counts that overflow ----------------------------------------------------------------- */

START_TEST(overflowing_counts)
{
    const int64_t big = (int64_t)1 << 32, huge = INT64_MAX / 2;
    BAD(ctx, HG_ERR_OVERFLOW, hg_tensor_new(ctx, HG_F64, 2, SHAPE(big, big)));
    BAD(ctx, HG_ERR_OVERFLOW, hg_zeros(ctx, HG_F64, 3, SHAPE(huge, 2, 2)));
    BAD(ctx, HG_ERR_OVERFLOW, hg_zeros(ctx, HG_F64, 1, SHAPE(INT64_MAX))); /* bytes */
    BAD(ctx, HG_ERR_OVERFLOW, hg_zeros(ctx, HG_F32, 2, SHAPE((int64_t)1 << 62, 4)));
    BAD(ctx, HG_ERR_OVERFLOW,
        hg_zeros(ctx, HG_F64, 3, SHAPE(0, (int64_t)1 << 62, 4))); /* empty, but the rest overflows */
    BAD(ctx, HG_ERR_OVERFLOW, hg_arange(ctx, HG_F64, INT64_MAX, 0, 1));
    BAD(ctx, HG_ERR_OVERFLOW, hg_broadcast_to(ctx, v, 3, SHAPE(big, big, 3)));
    BAD(ctx, HG_ERR_OVERFLOW, hg_reshape(ctx, a, 2, SHAPE(big, big)));
    BAD(ctx, HG_ERR_OVERFLOW, hg_one_hot(ctx, lab, INT64_MAX / 2, HG_F64));
    BAD(ctx, HG_ERR_SHAPE, hg_sum_to(ctx, a, 3, SHAPE(big, big, 3)));
    /* fits the count but not the arena limit of this ctx (1 GiB) */
    BAD(ctx, HG_ERR_OOM, hg_zeros(ctx, HG_F64, 1, SHAPE((int64_t)1 << 28)));
    BAD(ctx, HG_ERR_OOM, hg_broadcast_to(ctx, v, 2, SHAPE((int64_t)1 << 27, 3)));
    BAD(ctx, HG_ERR_OOM, hg_one_hot(ctx, lab, (int64_t)1 << 30, HG_F64));
    /* headers that promise more than the file has */
    unsigned char npy[128] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'fortran_order': False, "
                             "'shape': (4294967296, 4294967296, 4294967296), }";
    size_t dict = strlen((const char *)npy + 10);
    memset(npy + 10 + dict, ' ', 118 - dict - 1);
    npy[127] = '\n';
    BAD(ctx, HG_ERR_FORMAT, hg_npy_load_buffer(ctx, npy, sizeof npy));
    unsigned char idx[20] = {0,    0,    8,    4,    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                             0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    BAD(ctx, HG_ERR_FORMAT, hg_idx_load_buffer(ctx, idx, sizeof idx, HG_I32, 1, 0));
    /* still fine: empty tensors with modest extents */
    hg_ctx_clear_error(ctx);
    hg_tensor *e = hg_zeros(ctx, HG_F64, 3, SHAPE(0, 3, 4));
    ck_assert_ptr_nonnull(hg_softmax(ctx, e, 1));
    ck_assert_ptr_nonnull(hg_sum_axis(ctx, e, 2, 0));
    ck_assert_ptr_nonnull(hg_matmul(ctx, hg_zeros(ctx, HG_F64, 2, SHAPE(0, 3)), b));
    ck_assert_ctx_ok(ctx);
}
END_TEST

/* Regression (found by fuzz_ops): i32 fills from doubles out of range were UB. */
START_TEST(i32_fill_saturates)
{
    tried += 5;
    ck_assert_int_eq(hg_tensor_ci32(hg_full(ctx, HG_I32, 1, SHAPE(1), NAN))[0], 0);
    ck_assert_int_eq(hg_tensor_ci32(hg_full(ctx, HG_I32, 1, SHAPE(1), 1e300))[0], INT32_MAX);
    ck_assert_int_eq(hg_tensor_ci32(hg_scalar(ctx, HG_I32, -INFINITY))[0], INT32_MIN);
    ck_assert_int_eq(hg_tensor_ci32(hg_scalar(ctx, HG_I32, -2.7))[0], -2);
    ck_assert_int_eq(hg_tensor_ci32(hg_arange(ctx, HG_I32, 3, 2147483646.0, 1.0))[2], INT32_MAX);
    ck_assert_ctx_ok(ctx);
}
END_TEST

/* ---- NaN and Inf propagate as IEEE arithmetic --------------------------------------------- */

static const double specials[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1.0, -1.0, DBL_MAX, -DBL_MAX, 4.9e-324, 0.5};
#define NSPECIAL ((int64_t)(sizeof specials / sizeof specials[0]))

static double sigmoid_ref(double x)
{
    return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
}

static double relu_ref(double x)
{
    return x < 0 ? 0 : x; /* NaN stays NaN */
}

static double sign_ref(double x)
{
    return x != x ? x : (x > 0) - (x < 0);
}

/* Same IEEE class (NaN, +-Inf, +-0, finite) and close value. */
static void ieee_match(double got, double want, const char *what, double x)
{
    tried++;
    if (isnan(want)) {
        ck_assert_msg(isnan(got), "%s(%g) = %g, expected NaN", what, x, got);
        return;
    }
    ck_assert_msg(!isnan(got), "%s(%g) = NaN, expected %g", what, x, want);
    if (isinf(want)) {
        ck_assert_msg(got == want, "%s(%g) = %g, expected %g", what, x, got, want);
        return;
    }
    ck_assert_msg(fabs(got - want) <= 1e-12 * fmax(1.0, fabs(want)), "%s(%g) = %.17g, expected %.17g", what, x, got,
                  want);
}

START_TEST(nan_and_inf_propagate)
{
    hg_tensor *x = hg_tensor_from(ctx, HG_F64, 1, &(int64_t){NSPECIAL}, specials);
    struct {
        const char *name;
        hg_tensor *(*op)(hg_ctx *, hg_tensor *);
        double (*ref)(double);
    } un[] = {{"exp", hg_exp, exp},
              {"log", hg_log, log},
              {"sqrt", hg_sqrt, sqrt},
              {"tanh", hg_tanh, tanh},
              {"sigmoid", hg_sigmoid, sigmoid_ref},
              {"relu", hg_relu, relu_ref},
              {"abs", hg_abs, fabs},
              {"sign", hg_sign, sign_ref},
              {"sin", hg_sin, sin},
              {"cos", hg_cos, cos},
              {"log1p", hg_log1p, log1p},
              {"expm1", hg_expm1, expm1},
              {"erf", hg_erf, erf}};
    for (size_t k = 0; k < sizeof un / sizeof un[0]; k++) {
        hg_tensor *y = un[k].op(ctx, x);
        ck_assert_ptr_nonnull(y);
        for (int64_t i = 0; i < NSPECIAL; i++)
            ieee_match(hg_get(y, i), un[k].ref(specials[i]), un[k].name, specials[i]);
    }
    hg_tensor *neg = hg_neg(ctx, x);
    for (int64_t i = 0; i < NSPECIAL; i++)
        ieee_match(hg_get(neg, i), -specials[i], "neg", specials[i]);
    /* binary: every pair, against the C operators */
    hg_tensor *col = hg_reshape(ctx, x, 2, SHAPE(NSPECIAL, 1)), *row = hg_reshape(ctx, x, 2, SHAPE(1, NSPECIAL));
    hg_tensor *sum = hg_add(ctx, col, row), *prod = hg_mul(ctx, col, row), *quot = hg_div(ctx, col, row);
    hg_tensor *mx = hg_maximum(ctx, col, row), *mn = hg_minimum(ctx, col, row);
    for (int64_t i = 0; i < NSPECIAL; i++)
        for (int64_t j = 0; j < NSPECIAL; j++) {
            double p = specials[i], q = specials[j];
            int64_t at = i * NSPECIAL + j;
            ieee_match(hg_get(sum, at), p + q, "add", p);
            ieee_match(hg_get(prod, at), p * q, "mul", p);
            ieee_match(hg_get(quot, at), p / q, "div", p);
            /* maximum/minimum propagate NaN (like NumPy), else the larger/smaller */
            ieee_match(hg_get(mx, at), isnan(p) || isnan(q) ? NAN : (p >= q ? p : q), "maximum", p);
            ieee_match(hg_get(mn, at), isnan(p) || isnan(q) ? NAN : (p <= q ? p : q), "minimum", p);
        }
    /* reductions, matmul, softmax, losses: a NaN or Inf spreads, nothing crashes */
    ck_assert(isnan(hg_item(hg_sum(ctx, x))));
    ck_assert(isnan(hg_item(hg_mean(ctx, x))));
    hg_tensor *inf_only = T64(ctx, 1, SHAPE(2), INFINITY, 1.0);
    ck_assert(hg_item(hg_sum(ctx, inf_only)) == INFINITY);
    hg_tensor *m = T64(ctx, 2, SHAPE(2, 2), NAN, 1, 2, 3);
    hg_tensor *mm = hg_matmul(ctx, m, sq);
    ck_assert(isnan(hg_get(mm, 0)) && isnan(hg_get(mm, 1)) && !isnan(hg_get(mm, 2)));
    hg_tensor *logits = T64(ctx, 2, SHAPE(2, 3), INFINITY, 0, 0, 1, 2, 3);
    hg_tensor *sm = hg_softmax(ctx, logits, 1);
    ck_assert(isnan(hg_get(sm, 0)) && !isnan(hg_get(sm, 3)));
    hg_tensor *ce = hg_softmax_cross_entropy_each(ctx, logits, lab);
    ck_assert(isnan(hg_get(ce, 0)) && isfinite(hg_get(ce, 1)));
    ck_assert_ctx_ok(ctx);
    tried += 6;
    /* gradients through NaN: NaN where it flows, finite elsewhere */
    hg_tensor *w = T64(ctx, 1, SHAPE(3), NAN, 2.0, INFINITY);
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, w);
    hg_tensor *l = hg_sum(ctx, hg_mul(ctx, w, w));
    hg_tape_end(t);
    hg_tensor *g;
    ck_assert_int_eq(hg_gradient(t, l, 1, &w, NULL, &g), HG_OK);
    ck_assert(isnan(hg_get(g, 0)) && hg_get(g, 1) == 4.0 && hg_get(g, 2) == INFINITY);
    /* f32 as well */
    hg_tensor *x32 = hg_cast(ctx, x, HG_F32);
    hg_tensor *e32 = hg_exp(ctx, x32), *t32 = hg_tanh(ctx, x32), *s32 = hg_sigmoid(ctx, x32);
    for (int64_t i = 0; i < NSPECIAL; i++) {
        double xi = (float)specials[i];
        tried += 3;
        ck_assert(isnan(hg_get(e32, i)) == isnan(xi) && isnan(hg_get(t32, i)) == isnan(xi) &&
                  isnan(hg_get(s32, i)) == isnan(xi));
        if (isinf(xi))
            ck_assert(hg_get(t32, i) == (xi > 0 ? 1.0 : -1.0) && hg_get(s32, i) == (xi > 0 ? 1.0 : 0.0) &&
                      hg_get(e32, i) == (xi > 0 ? INFINITY : 0.0));
    }
    ck_assert_ctx_ok(ctx);
    tried += 4;
}
END_TEST

static Suite *bad_input_suite(void)
{
    Suite *s = suite_create("bad_input");
    TCase *tc = tcase_create("matrix");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, binary_ops_wrong_shapes_and_dtypes);
    tcase_add_test(tc, unary_ops_wrong_dtypes_and_shapes);
    tcase_add_test(tc, shape_ops_bad_arguments);
    tcase_add_test(tc, index_and_cast_bad_arguments);
    tcase_add_test(tc, layout_ops_bad_arguments);
    tcase_add_test(tc, conv_pool_bmm_bad_arguments);
    tcase_add_test(tc, nn_bad_arguments);
    tcase_add_test(tc, optim_bad_arguments);
    tcase_add_test(tc, tensor_creation_bad_arguments);
    tcase_add_test(tc, custom_op_bad_definitions);
    tcase_add_test(tc, func_and_check_bad_arguments);
    tcase_add_test(tc, io_bad_arguments);
    tcase_add_test(tc, null_ctx_everywhere);
    tcase_add_test(tc, tape_misuse);
    tcase_add_test(tc, stale_tensors_and_tapes);
    tcase_add_test(tc, watch_after_mark_then_rewind);
    tcase_add_test(tc, overflowing_counts);
    tcase_add_test(tc, i32_fill_saturates);
    tcase_add_test(tc, nan_and_inf_propagate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(bad_input_suite());
    srunner_set_fork_status(sr, CK_NOFORK); /* one process: the count covers every test */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    printf("bad_input: %ld bad inputs tried, every one refused cleanly or propagated as IEEE\n", tried);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
