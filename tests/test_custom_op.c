/* Custom ops through the public op API (op.h): composed vjps to third order
 * (hg_gradcheck), attributes, several inputs and outputs, jvp for free,
 * once-differentiable ops (first derivative right, second refused with
 * HG_ERR_ONCE_DIFF naming the op), errors, a checker that fails on a wrong
 * vjp, and docs/custom-ops.md kept in sync with examples/custom_op.c. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

/* ---- ops ---------------------------------------------------------------------- */

typedef struct beta_attr {
    double beta;
} beta_attr;

static hg_status same_shape_rule(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    (void)attr;
    if (hg_tensor_dtype(in[0]) != HG_F64)
        return hg_op_error(ctx, HG_ERR_DTYPE, "test op: input is %s, expected f64",
                           hg_dtype_name(hg_tensor_dtype(in[0])));
    hg_out_like(&out[0], in[0]);
    return HG_OK;
}

static double softplus1(double x, double beta)
{
    double z = beta * x;
    return (fmax(z, 0.0) + log1p(exp(-fabs(z)))) / beta;
}

static hg_status softplus_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const beta_attr *a = attr;
    const double *x = hg_tensor_cdata(in[0]);
    double *y = hg_tensor_data(out[0]);
    for (int64_t i = 0; i < hg_tensor_numel(in[0]); i++)
        y[i] = softplus1(x[i], a->beta);
    return HG_OK;
}

/* dx = g * sigmoid(beta x) */
static hg_status softplus_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const beta_attr *a = hg_node_attr(node);
    gin[0] = hg_mul(ctx, gout[0], hg_sigmoid(ctx, hg_scale(ctx, hg_node_input(node, 0), a->beta)));
    return gin[0] ? HG_OK : hg_ctx_status(ctx);
}

/* gx = g * sigmoid(beta x), raw */
static hg_status softplus_backward(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor *const *gin)
{
    (void)ctx;
    const beta_attr *a = hg_node_attr(node);
    hg_tensor *x = hg_node_input(node, 0);
    const double *xv = hg_tensor_cdata(x), *g = hg_tensor_cdata(gout[0]);
    double *gx = hg_tensor_data(gin[0]);
    for (int64_t i = 0; i < hg_tensor_numel(x); i++)
        gx[i] = g[i] / (1.0 + exp(-a->beta * xv[i]));
    return HG_OK;
}

/* dx = g * sigmoid(beta x) * 1.01 (WRONG on purpose) */
static hg_status softplus_wrong_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const beta_attr *a = hg_node_attr(node);
    hg_tensor *s = hg_sigmoid(ctx, hg_scale(ctx, hg_node_input(node, 0), a->beta));
    gin[0] = hg_scale(ctx, hg_mul(ctx, gout[0], s), 1.01);
    return gin[0] ? HG_OK : hg_ctx_status(ctx);
}

/* dx = g * c, c = sigmoid(beta x) as an untracked copy: right values, but
 * its own derivative is lost (WRONG from the second order on). */
static hg_status softplus_detached_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const beta_attr *a = hg_node_attr(node);
    hg_tensor *s = hg_sigmoid(ctx, hg_scale(ctx, hg_node_input(node, 0), a->beta));
    gin[0] = hg_mul(ctx, gout[0], hg_tensor_clone(ctx, s));
    return gin[0] ? HG_OK : hg_ctx_status(ctx);
}

#define SOFTPLUS_DEF(name, vjp, backward)                                               \
    {                                                                                   \
        name, 1, 1, sizeof(beta_attr), same_shape_rule, softplus_forward, vjp, backward \
    }
static const hg_opdef softplus_def = SOFTPLUS_DEF("softplus", softplus_vjp, NULL);
static const hg_opdef softplus_once_def = SOFTPLUS_DEF("softplus_once", NULL, softplus_backward);
static const hg_opdef softplus_wrong_def = SOFTPLUS_DEF("softplus_wrong", softplus_wrong_vjp, NULL);
static const hg_opdef softplus_detached_def = SOFTPLUS_DEF("softplus_detached", softplus_detached_vjp, NULL);
static const hg_opdef softplus_nograd_def = SOFTPLUS_DEF("softplus_nograd", NULL, NULL);
#undef SOFTPLUS_DEF

/* Two inputs, attribute: y = alpha * a * b^2 (a, b same shape). */
static hg_status mul_sq_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    char sa[64], sb[64];
    if (!hg_same_shape(in[0], in[1]))
        return hg_op_error(ctx, HG_ERR_SHAPE, "mul_sq: shapes %s and %s differ",
                           hg_tensor_describe(in[0], sa, sizeof sa), hg_tensor_describe(in[1], sb, sizeof sb));
    return same_shape_rule(ctx, in, attr, out);
}

static hg_status mul_sq_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    double alpha = *(const double *)attr;
    const double *a = hg_tensor_cdata(in[0]), *b = hg_tensor_cdata(in[1]);
    double *y = hg_tensor_data(out[0]);
    for (int64_t i = 0; i < hg_tensor_numel(in[0]); i++)
        y[i] = alpha * a[i] * b[i] * b[i];
    return HG_OK;
}

/* da = g alpha b^2, db = g 2 alpha a b */
static hg_status mul_sq_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    double alpha = *(const double *)hg_node_attr(node);
    hg_tensor *a = hg_node_input(node, 0), *b = hg_node_input(node, 1);
    if (hg_node_needs_grad(node, 0) && !(gin[0] = hg_mul(ctx, gout[0], hg_scale(ctx, hg_mul(ctx, b, b), alpha))))
        return hg_ctx_status(ctx);
    if (hg_node_needs_grad(node, 1) && !(gin[1] = hg_mul(ctx, gout[0], hg_scale(ctx, hg_mul(ctx, a, b), 2.0 * alpha))))
        return hg_ctx_status(ctx);
    return HG_OK;
}

static const hg_opdef mul_sq_def = {"mul_sq", 2, 1, sizeof(double), mul_sq_shape, mul_sq_forward, mul_sq_vjp, NULL};

/* Two outputs: (e^x, e^-x). */
static hg_status exps_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    hg_status s = same_shape_rule(ctx, in, attr, out);
    out[1] = out[0];
    return s;
}

static hg_status exps_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    (void)attr;
    const double *x = hg_tensor_cdata(in[0]);
    double *p = hg_tensor_data(out[0]), *m = hg_tensor_data(out[1]);
    for (int64_t i = 0; i < hg_tensor_numel(in[0]); i++) {
        p[i] = exp(x[i]);
        m[i] = exp(-x[i]);
    }
    return HG_OK;
}

/* dx = g0 y0 - g1 y1 */
static hg_status exps_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    gin[0] = hg_sub(ctx, hg_mul(ctx, gout[0], hg_node_output(node, 0)), hg_mul(ctx, gout[1], hg_node_output(node, 1)));
    return gin[0] ? HG_OK : hg_ctx_status(ctx);
}

static const hg_opdef exps_def = {"exps", 1, 2, 0, exps_shape, exps_forward, exps_vjp, NULL};

/* Failing pieces. */
static hg_status bad_shape_rule(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    (void)in;
    (void)attr;
    (void)out;
    return hg_op_error(ctx, HG_ERR_SHAPE, "broken_shape: refusing input");
}

static hg_status failing_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)in;
    (void)out;
    (void)attr;
    return hg_op_error(ctx, HG_ERR_RANGE, "broken_forward: value out of range");
}

static hg_status copy_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    (void)attr;
    memcpy(hg_tensor_data(out[0]), hg_tensor_cdata(in[0]), sizeof(double) * (size_t)hg_tensor_numel(in[0]));
    return HG_OK;
}

/* dx = sum(g) (WRONG shape on purpose) */
static hg_status wrong_shape_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    (void)node;
    gin[0] = hg_sum(ctx, gout[0]);
    return gin[0] ? HG_OK : hg_ctx_status(ctx);
}

static const hg_opdef broken_shape_def = {"broken_shape", 1,   1, 0, bad_shape_rule, softplus_forward,
                                          softplus_vjp,   NULL};
static const hg_opdef broken_forward_def = {"broken_forward", 1, 1, 0, same_shape_rule, failing_forward, NULL, NULL};
static const hg_opdef wrong_vjp_shape_def = {"wrong_vjp_shape", 1,   1, 0, same_shape_rule, copy_forward,
                                             wrong_shape_vjp,   NULL};
static const hg_opdef both_def = {
    "both", 1, 1, sizeof(beta_attr), same_shape_rule, softplus_forward, softplus_vjp, softplus_backward};

/* ---- functions for hg_gradcheck ---------------------------------------------------- */

static const beta_attr BETA = {1.5};

static hg_tensor *apply_def(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    return hg_apply(ctx, user, in, &BETA);
}

/* softplus composed with built-ins: sum(softplus(x * w) * w) */
static hg_tensor *softplus_composed(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    hg_tensor *xw = hg_mul(ctx, in[0], in[1]);
    return hg_sum(ctx, hg_mul(ctx, hg_apply(ctx, &softplus_def, &xw, &BETA), in[1]));
}

static hg_tensor *mul_sq_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    double alpha = 0.7;
    return hg_apply(ctx, &mul_sq_def, in, &alpha);
}

static hg_tensor *exps_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    hg_tensor *y[2];
    if (hg_apply_multi(ctx, &exps_def, in, NULL, y) != HG_OK)
        return NULL;
    return hg_add(ctx, hg_scale(ctx, y[0], 0.5), hg_mul(ctx, y[1], in[0]));
}

static hg_tensor *points(hg_ctx *ctx)
{
    return T64(ctx, 1, SHAPE(6), -3.0, -0.7, 0.0, 0.4, 1.3, 2.5);
}

/* ---- tests ------------------------------------------------------------------------ */

START_TEST(composed_vjp_to_third_order)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = points(ctx);
    check_gradients(ctx, apply_def, 1, &x, (void *)&softplus_def, 3, "softplus");
    hg_tensor *xw[2] = {x, T64(ctx, 1, SHAPE(6), 0.5, -1.2, 0.8, 1.1, -0.3, 0.9)};
    check_gradients(ctx, softplus_composed, 2, xw, NULL, 3, "softplus(x w) w");
    check_gradients(ctx, mul_sq_fn, 2, xw, NULL, 3, "mul_sq (two inputs, attribute)");
    check_gradients(ctx, exps_fn, 1, &x, NULL, 3, "exps (two outputs)");
    /* Forward values on raw buffers: stable at extreme arguments. */
    hg_tensor *big = T64(ctx, 1, SHAPE(3), -800.0, 0.0, 800.0);
    hg_tensor *y = hg_apply(ctx, &softplus_def, &big, &BETA);
    ck_assert_double_eq(hg_get(y, 0), 0.0);
    ck_assert_close(hg_get(y, 1), log(2.0) / 1.5, 1e-15);
    ck_assert_close(hg_get(y, 2), 800.0, 1e-15);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(closed_forms_under_three_tapes)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = points(ctx);
    hg_tape *t1 = hg_tape_begin(ctx, 0), *t2 = hg_tape_begin(ctx, 0), *t3 = hg_tape_begin(ctx, 0);
    hg_watch(t1, x);
    hg_watch(t2, x);
    hg_watch(t3, x);
    hg_tensor *s0 = hg_sum(ctx, hg_apply(ctx, &softplus_def, &x, &BETA)), *d1, *d2, *d3;
    hg_tape_end(t3);
    ck_assert_int_eq(hg_gradient(t3, s0, 1, &x, NULL, &d1), HG_OK);
    hg_tensor *s1 = hg_sum(ctx, d1);
    hg_tape_end(t2);
    ck_assert_int_eq(hg_gradient(t2, s1, 1, &x, NULL, &d2), HG_OK);
    hg_tensor *s2 = hg_sum(ctx, d2);
    hg_tape_end(t1);
    ck_assert_int_eq(hg_gradient(t1, s2, 1, &x, NULL, &d3), HG_OK);
    for (int i = 0; i < 6; i++) {
        double b = BETA.beta, s = 1.0 / (1.0 + exp(-b * hg_get(x, i)));
        ck_assert_close(hg_get(d1, i), s, 1e-15);
        ck_assert_close(hg_get(d2, i), b * s * (1 - s), 1e-15);
        ck_assert_close(hg_get(d3, i), b * b * s * (1 - s) * (1 - 2 * s), 1e-15);
    }
    /* Forward mode for free (no jvp in the opdef). */
    hg_tensor *t = T64(ctx, 1, SHAPE(6), 1, 2, 3, 4, 5, 6), *jv = NULL;
    ck_assert_int_eq(hg_jvp(ctx, apply_def, 1, &x, (void *)&softplus_def, &t, 0, NULL, &jv), HG_OK);
    for (int i = 0; i < 6; i++)
        ck_assert_close(hg_get(jv, i), hg_get(d1, i) * hg_get(t, i), 1e-15);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(once_differentiable)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = points(ctx);
    /* First order: right (and hg_gradcheck agrees). */
    check_gradients(ctx, apply_def, 1, &x, (void *)&softplus_once_def, 1, "softplus_once");
    hg_tape *t1 = hg_tape_begin(ctx, 0), *t2 = hg_tape_begin(ctx, 0);
    hg_watch(t1, x);
    hg_watch(t2, x);
    hg_tensor *s0 = hg_sum(ctx, hg_apply(ctx, &softplus_once_def, &x, &BETA)), *d1, *d2 = x;
    hg_tape_end(t2);
    ck_assert_int_eq(hg_gradient(t2, s0, 1, &x, NULL, &d1), HG_OK);
    for (int i = 0; i < 6; i++)
        ck_assert_close(hg_get(d1, i), 1.0 / (1.0 + exp(-BETA.beta * hg_get(x, i))), 1e-15);
    hg_tensor *s1 = hg_sum(ctx, d1);
    hg_tape_end(t1);
    ck_assert_int_eq(hg_gradient(t1, s1, 1, &x, NULL, &d2), HG_ERR_ONCE_DIFF);
    ck_assert_ptr_null(d2);
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_ONCE_DIFF);
    ck_assert_msg(strstr(hg_ctx_error(ctx), "softplus_once") != NULL, "message: %s", hg_ctx_error(ctx));
    hg_ctx_clear_error(ctx);
    /* hg_gradcheck at order 2 reports the same error; so does hg_hvp, and
     * hg_jvp (built from a vjp of the vjp). */
    hg_check_options o = {.order = 2};
    hg_check_report r;
    ck_assert_int_eq(hg_gradcheck(ctx, apply_def, 1, &x, (void *)&softplus_once_def, &o, &r), HG_ERR_ONCE_DIFF);
    hg_ctx_clear_error(ctx);
    hg_tensor *jv = NULL;
    ck_assert_int_eq(hg_jvp(ctx, apply_def, 1, &x, (void *)&softplus_once_def, &x, 0, NULL, &jv), HG_ERR_ONCE_DIFF);
    ck_assert(strstr(hg_ctx_error(ctx), "softplus_once") != NULL);
    hg_ctx_clear_error(ctx);
    /* vjp and the Jacobian need one derivative only. */
    hg_tensor *J = NULL;
    ck_assert_int_eq(hg_jacobian(ctx, apply_def, 1, &x, (void *)&softplus_once_def, 0, &J), HG_OK);
    for (int i = 0; i < 6; i++)
        ck_assert_close(hg_get(J, i * 6 + i), hg_get(d1, i), 1e-15);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(gradcheck_catches_wrong_vjps)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = points(ctx);
    hg_check_options o = {.order = 3};
    hg_check_report r;
    ck_assert_int_eq(hg_gradcheck(ctx, apply_def, 1, &x, (void *)&softplus_wrong_def, &o, &r), HG_OK);
    ck_assert(!r.passed);
    ck_assert_int_eq(r.worst_order, 1);
    ck_assert_double_gt(r.max_abs_error[0], 1e-4);
    /* Right first derivative, wrong second: caught at order 2 only. */
    ck_assert_int_eq(hg_gradcheck(ctx, apply_def, 1, &x, (void *)&softplus_detached_def, &o, &r), HG_OK);
    ck_assert(!r.passed);
    ck_assert_double_le(r.max_abs_error[0], 1e-7);
    ck_assert_double_gt(r.max_abs_error[1], 1e-3);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(custom_op_errors)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = points(ctx), *y32 = hg_cast(ctx, x, HG_F32);
    /* The shape rule's own error is the one kept. */
    ck_assert_ptr_null(hg_apply(ctx, &broken_shape_def, &x, NULL));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    ck_assert_str_eq(hg_ctx_error(ctx), "broken_shape: refusing input");
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_apply(ctx, &softplus_def, &y32, &BETA));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    ck_assert_str_eq(hg_ctx_error(ctx), "test op: input is f32, expected f64");
    hg_ctx_clear_error(ctx);
    hg_tensor *ab[2] = {x, T64(ctx, 1, SHAPE(2), 1, 2)};
    double alpha = 1;
    ck_assert_ptr_null(hg_apply(ctx, &mul_sq_def, ab, &alpha));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "mul_sq: shapes"));
    hg_ctx_clear_error(ctx);
    /* Forward failure. */
    ck_assert_ptr_null(hg_apply(ctx, &broken_forward_def, &x, NULL));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    ck_assert_str_eq(hg_ctx_error(ctx), "broken_forward: value out of range");
    hg_ctx_clear_error(ctx);
    /* The error propagates through a function: hg_vjp returns it. */
    hg_tensor *g = NULL;
    ck_assert_int_eq(hg_vjp(ctx, apply_def, 1, &x, (void *)&broken_shape_def, NULL, 0, NULL, &g), HG_ERR_SHAPE);
    ck_assert_str_eq(hg_ctx_error(ctx), "broken_shape: refusing input");
    hg_ctx_clear_error(ctx);
    /* NULL arguments: an earlier NULL does not overwrite the first error. */
    ck_assert_ptr_null(hg_apply(ctx, &softplus_def, NULL, &BETA));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    hg_tensor *none = NULL;
    ck_assert_ptr_null(hg_apply(ctx, &softplus_def, &none, &BETA));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_apply(ctx, &softplus_def, &x, NULL)); /* attr_size > 0 */
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_apply(ctx, NULL, &x, NULL));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_INVALID);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_apply(NULL, &softplus_def, &x, &BETA));
    /* vjp together with backward, and several outputs through hg_apply. */
    ck_assert_ptr_null(hg_apply(ctx, &both_def, &x, &BETA));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "both"));
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_apply(ctx, &exps_def, &x, NULL));
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_apply_multi"));
    hg_ctx_clear_error(ctx);
    /* A vjp returning a cotangent of the wrong shape is named at sweep time. */
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, x);
    hg_tensor *s = hg_sum(ctx, hg_apply(ctx, &wrong_vjp_shape_def, &x, NULL));
    hg_tape_end(t);
    ck_assert_int_eq(hg_gradient(t, s, 1, &x, NULL, &g), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "wrong_vjp_shape"));
    hg_ctx_clear_error(ctx);
    /* No vjp and no backward: a constant for every tape. */
    t = hg_tape_begin(ctx, 0);
    hg_watch(t, x);
    hg_tensor *c = hg_apply(ctx, &softplus_nograd_def, &x, &BETA);
    ck_assert(!hg_tape_tracks(t, c));
    hg_tape_end(t);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- the tutorial's code is the example's ------------------------------------------- */

static char *slurp(const char *rel)
{
    const char *root = getenv("HGRAD_SOURCE_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root ? root : ".", rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *bigger = realloc(buf, cap *= 2);
            if (!bigger)
                free(buf);
            buf = bigger;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

START_TEST(tutorial_code_is_from_the_example)
{
    char *doc = slurp("docs/custom-ops.md"), *src = slurp("examples/custom_op.c");
    ck_assert_msg(doc && src, "cannot read docs/custom-ops.md or examples/custom_op.c (HGRAD_SOURCE_ROOT)");
    int blocks = 0;
    for (char *p = doc; (p = strstr(p, "```c\n")) != NULL;) {
        char *body = p + 5, *end = strstr(body, "```");
        ck_assert_msg(end != NULL, "unterminated ```c block in docs/custom-ops.md");
        size_t len = (size_t)(end - body);
        char *block = malloc(len + 1);
        memcpy(block, body, len);
        block[len] = '\0';
        int line = 1;
        for (char *q = doc; q < p; q++)
            line += *q == '\n';
        ck_assert_msg(strstr(src, block) != NULL,
                      "docs/custom-ops.md line %d: ```c block is not verbatim in examples/custom_op.c:\n%s", line,
                      block);
        free(block);
        blocks++;
        p = end + 3;
    }
    ck_assert_int_ge(blocks, 5);
    free(doc);
    free(src);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("custom_op");
    TCase *tc = tcase_create("custom_op");
    tcase_add_test(tc, composed_vjp_to_third_order);
    tcase_add_test(tc, closed_forms_under_three_tapes);
    tcase_add_test(tc, once_differentiable);
    tcase_add_test(tc, gradcheck_catches_wrong_vjps);
    tcase_add_test(tc, custom_op_errors);
    tcase_add_test(tc, tutorial_code_is_from_the_example);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
