/* A custom op written against the public op API (include/hgrad/op.h), the
 * same API the built-in ops use. The op is softplus with a sharpness
 * attribute beta:
 *
 *     y = log(1 + exp(beta x)) / beta,        dy/dx = sigmoid(beta x)
 *
 * Its forward kernel works on raw buffers (computed stably for any x); its
 * vjp is made of hg_* ops, so the backward is recorded like any other
 * computation and the op can be differentiated to any order. The program
 * takes the 1st, 2nd and 3rd derivatives under three nested tapes and
 * compares them with the closed forms, runs hg_gradcheck to order 3, gets a
 * forward-mode product for free with hg_jvp, and shows that a
 * once-differentiable variant (raw backward kernel) gives correct first
 * derivatives but refuses a second one with an error naming the op. A
 * second op, hypot(a, b), broadcasts its inputs with the helpers of op.h.
 *
 * docs/custom-ops.md walks through this file; its code blocks are copied
 * from here verbatim (a test checks that). Outside the tree:
 *
 *   cc custom_op.c $(pkg-config --cflags --libs hgrad) -lm -o custom_op
 */
#include <hgrad.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- the op --------------------------------------------------------------- */

typedef struct softplus_attr {
    double beta; /* sharpness, > 0 */
} softplus_attr;

static hg_status softplus_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const softplus_attr *a = attr;
    hg_dtype dt = hg_tensor_dtype(in[0]);
    if (dt != HG_F32 && dt != HG_F64)
        return hg_op_error(ctx, HG_ERR_DTYPE, "softplus: input is %s, expected f32 or f64", hg_dtype_name(dt));
    if (!(a->beta > 0))
        return hg_op_error(ctx, HG_ERR_RANGE, "softplus: beta must be > 0, got %g", a->beta);
    hg_out_like(&out[0], in[0]); /* dtype, rank and shape of the input */
    return HG_OK;
}

/* log(1 + e^z) without overflow: max(z, 0) + log1p(e^-|z|). */
static double softplus1(double x, double beta)
{
    double z = beta * x;
    return (fmax(z, 0.0) + log1p(exp(-fabs(z)))) / beta;
}

static hg_status softplus_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const softplus_attr *a = attr;
    int64_t n = hg_tensor_numel(in[0]);
    if (hg_tensor_dtype(in[0]) == HG_F64) {
        const double *x = hg_tensor_cdata(in[0]);
        double *y = hg_tensor_data(out[0]);
        for (int64_t i = 0; i < n; i++)
            y[i] = softplus1(x[i], a->beta);
    } else {
        const float *x = hg_tensor_cdata(in[0]);
        float *y = hg_tensor_data(out[0]);
        for (int64_t i = 0; i < n; i++)
            y[i] = (float)softplus1(x[i], a->beta);
    }
    return HG_OK;
}

/* dx = g * sigmoid(beta x) */
static hg_status softplus_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const softplus_attr *a = hg_node_attr(node);
    hg_tensor *x = hg_node_input(node, 0);
    gin[0] = hg_mul(ctx, gout[0], hg_sigmoid(ctx, hg_scale(ctx, x, a->beta)));
    return HG_OK;
}

static const hg_opdef softplus_def = {
    .name = "softplus",
    .n_inputs = 1,
    .n_outputs = 1,
    .attr_size = sizeof(softplus_attr),
    .shape = softplus_shape,
    .forward = softplus_forward,
    .vjp = softplus_vjp,
};

/* The public call: y = softplus(x; beta), same shape and dtype as x. */
static hg_tensor *softplus(hg_ctx *ctx, hg_tensor *x, double beta)
{
    softplus_attr a = {beta};
    return hg_apply(ctx, &softplus_def, &x, &a);
}

/* ---- a once-differentiable variant: raw backward kernel ------------------- */

/* gx = g * sigmoid(beta x), on raw buffers (gin[0] is allocated and zeroed). */
static hg_status softplus_backward(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor *const *gin)
{
    (void)ctx;
    const softplus_attr *a = hg_node_attr(node);
    hg_tensor *x = hg_node_input(node, 0);
    int64_t n = hg_tensor_numel(x);
    if (hg_tensor_dtype(x) == HG_F64) {
        const double *xv = hg_tensor_cdata(x), *g = hg_tensor_cdata(gout[0]);
        double *gx = hg_tensor_data(gin[0]);
        for (int64_t i = 0; i < n; i++)
            gx[i] = g[i] / (1.0 + exp(-a->beta * xv[i]));
    } else {
        const float *xv = hg_tensor_cdata(x), *g = hg_tensor_cdata(gout[0]);
        float *gx = hg_tensor_data(gin[0]);
        for (int64_t i = 0; i < n; i++)
            gx[i] = (float)(g[i] / (1.0 + exp(-a->beta * xv[i])));
    }
    return HG_OK;
}

static const hg_opdef softplus_once_def = {
    .name = "softplus_once",
    .n_inputs = 1,
    .n_outputs = 1,
    .attr_size = sizeof(softplus_attr),
    .shape = softplus_shape,
    .forward = softplus_forward,
    .backward = softplus_backward, /* instead of .vjp */
};

static hg_tensor *softplus_once(hg_ctx *ctx, hg_tensor *x, double beta)
{
    softplus_attr a = {beta};
    return hg_apply(ctx, &softplus_once_def, &x, &a);
}

/* ---- a broadcasting op: hypot(a, b) = sqrt(a^2 + b^2) ------------------- */

/* Shape rule: one float dtype for both inputs, NumPy broadcasting. */
static hg_status hypot_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    (void)attr;
    hg_status s = hg_check_float_same(ctx, "hypot", 2, in);
    if (s != HG_OK)
        return s;
    if (!hg_broadcast_shapes(hg_tensor_rank(in[0]), hg_tensor_shape(in[0]), hg_tensor_rank(in[1]),
                             hg_tensor_shape(in[1]), &out[0].rank, out[0].shape)) {
        char a[64], b[64];
        return hg_op_error(ctx, HG_ERR_SHAPE, "hypot: shapes %s and %s do not broadcast",
                           hg_tensor_describe(in[0], a, sizeof a), hg_tensor_describe(in[1], b, sizeof b));
    }
    out[0].dtype = hg_tensor_dtype(in[0]);
    return HG_OK;
}

/* Forward: the iterator gives each output element's offset in a and in b. */
static hg_status hypot_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    (void)attr;
    int64_t n = hg_tensor_numel(out[0]);
    hg_broadcast_iter it;
    hg_broadcast_iter_init(&it, out[0], 2, in);
    if (hg_tensor_dtype(out[0]) == HG_F64) {
        const double *a = hg_tensor_cdata(in[0]), *b = hg_tensor_cdata(in[1]);
        double *y = hg_tensor_data(out[0]);
        for (int64_t i = 0; i < n; i++, hg_broadcast_iter_next(&it))
            y[i] = hypot(a[it.offset[0]], b[it.offset[1]]);
    } else {
        const float *a = hg_tensor_cdata(in[0]), *b = hg_tensor_cdata(in[1]);
        float *y = hg_tensor_data(out[0]);
        for (int64_t i = 0; i < n; i++, hg_broadcast_iter_next(&it))
            y[i] = hypotf(a[it.offset[0]], b[it.offset[1]]);
    }
    return HG_OK;
}

/* da = sum_to(g a / y, a), db = sum_to(g b / y, b) */
static hg_status hypot_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *a = hg_node_input(node, 0), *b = hg_node_input(node, 1);
    hg_tensor *g_over_y = hg_div(ctx, gout[0], hg_node_output(node, 0));
    if (hg_node_needs_grad(node, 0))
        gin[0] = hg_sum_to_like(ctx, hg_mul(ctx, g_over_y, a), a);
    if (hg_node_needs_grad(node, 1))
        gin[1] = hg_sum_to_like(ctx, hg_mul(ctx, g_over_y, b), b);
    return HG_OK;
}

static const hg_opdef hypot_def = {
    .name = "hypot",
    .n_inputs = 2,
    .n_outputs = 1,
    .shape = hypot_shape,
    .forward = hypot_forward,
    .vjp = hypot_vjp,
};

static hg_tensor *hypot_op(hg_ctx *ctx, hg_tensor *a, hg_tensor *b)
{
    hg_tensor *in[2] = {a, b};
    return hg_apply(ctx, &hypot_def, in, NULL);
}

/* ---- checks ----------------------------------------------------------------- */

static int failures;

static void report(const char *what, double worst, double tol)
{
    int ok = worst <= tol;
    printf("check %-44s max |err| %.1e  %s\n", what, worst, ok ? "ok" : "MISMATCH");
    failures += !ok;
}

static double sigmoid1(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

/* Largest |got[i] - want(x[i])| relative to max(1, |want|). */
static double worst_error(hg_tensor *got, hg_tensor *x, double beta, int order)
{
    double worst = got ? 0.0 : INFINITY;
    for (int64_t i = 0; got && i < hg_tensor_numel(x); i++) {
        double s = sigmoid1(beta * hg_get(x, i)), want;
        if (order == 0)
            want = softplus1(hg_get(x, i), beta);
        else if (order == 1)
            want = s;
        else if (order == 2)
            want = beta * s * (1 - s);
        else
            want = beta * beta * s * (1 - s) * (1 - 2 * s);
        worst = fmax(worst, fabs(hg_get(got, i) - want) / fmax(1.0, fabs(want)));
    }
    return worst;
}

/* y = softplus(x), then d^k/dx^k for k = 1, 2, 3 by three nested tapes. The
 * op is elementwise, so the gradient of sum(d_k) is d_(k+1), elementwise. */
static void third_order(hg_ctx *ctx, hg_tensor *x, double beta)
{
    hg_tape *t1 = hg_tape_begin(ctx, 0), *t2 = hg_tape_begin(ctx, 0), *t3 = hg_tape_begin(ctx, 0);
    hg_watch(t1, x);
    hg_watch(t2, x);
    hg_watch(t3, x);
    hg_tensor *y = softplus(ctx, x, beta);
    hg_tensor *s0 = hg_sum(ctx, y), *d1, *d2, *d3;
    hg_tape_end(t3);
    hg_gradient(t3, s0, 1, &x, NULL, &d1); /* recorded on t1, t2 */
    hg_tensor *s1 = hg_sum(ctx, d1);       /* on t1, t2: before t2 ends */
    hg_tape_end(t2);
    hg_gradient(t2, s1, 1, &x, NULL, &d2); /* recorded on t1 */
    hg_tensor *s2 = hg_sum(ctx, d2);
    hg_tape_end(t1);
    hg_gradient(t1, s2, 1, &x, NULL, &d3);
    if (hg_ctx_status(ctx) != HG_OK)
        fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
    report("softplus value", worst_error(y, x, beta, 0), 1e-14);
    report("softplus 1st derivative (sigmoid)", worst_error(d1, x, beta, 1), 1e-14);
    report("softplus 2nd derivative", worst_error(d2, x, beta, 2), 1e-14);
    report("softplus 3rd derivative", worst_error(d3, x, beta, 3), 1e-14);
}

static hg_tensor *softplus_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    return softplus(ctx, in[0], *(const double *)user);
}

/* Finite differences to order 3 (f64, central differences). */
static void gradcheck(hg_ctx *ctx, hg_tensor *x, double beta)
{
    hg_check_options opts = {.order = 3};
    hg_check_report r;
    if (hg_gradcheck(ctx, softplus_fn, 1, &x, &beta, &opts, &r) != HG_OK) {
        fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
        failures++;
        return;
    }
    printf("check %-44s worst: order %d, element %lld, analytic %.9g, numeric %.9g  %s\n", "hg_gradcheck to order 3",
           r.worst_order, (long long)r.worst_index, r.analytic, r.numeric, r.passed ? "ok" : "MISMATCH");
    failures += !r.passed;
}

/* Forward mode for free: jv = dy/dx * t, by the double-vjp construction. */
static void forward_mode(hg_ctx *ctx, hg_tensor *x, double beta)
{
    hg_tensor *t = hg_ones_like(ctx, x), *jv = NULL;
    if (hg_jvp(ctx, softplus_fn, 1, &x, &beta, &t, 0, NULL, &jv) != HG_OK)
        fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
    report("hg_jvp (forward mode, no jvp written)", worst_error(jv, x, beta, 1), 1e-14);
}

/* First derivative through softplus_once works; a second one is refused. */
static void once_differentiable(hg_ctx *ctx, hg_tensor *x, double beta)
{
    hg_tape *t1 = hg_tape_begin(ctx, 0), *t2 = hg_tape_begin(ctx, 0);
    hg_watch(t1, x);
    hg_watch(t2, x);
    hg_tensor *y = softplus_once(ctx, x, beta);
    hg_tensor *s0 = hg_sum(ctx, y), *d1, *d2;
    hg_tape_end(t2);
    hg_gradient(t2, s0, 1, &x, NULL, &d1); /* raw kernel; marked on t1 */
    hg_tensor *s1 = hg_sum(ctx, d1);
    hg_tape_end(t1);
    report("softplus_once 1st derivative", worst_error(d1, x, beta, 1), 1e-14);
    hg_status s = hg_gradient(t1, s1, 1, &x, NULL, &d2);
    int ok = s == HG_ERR_ONCE_DIFF && strstr(hg_ctx_error(ctx), "softplus_once") != NULL;
    printf("check %-44s %s: \"%s\"  %s\n", "softplus_once 2nd derivative is refused", hg_status_name(s),
           hg_ctx_error(ctx), ok ? "ok" : "MISMATCH");
    failures += !ok;
    hg_ctx_clear_error(ctx);
}

/* hypot with a [2,3] and b [3] (broadcast over rows): values against libm,
 * the gradient of b summed over the rows, and gradcheck to order 3. */
static hg_tensor *hypot_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    return hypot_op(ctx, in[0], in[1]);
}

static void broadcasting(hg_ctx *ctx)
{
    const double av[] = {3.0, -1.0, 0.5, 2.0, 4.0, -2.5}, bv[] = {4.0, 1.5, -1.2};
    hg_tensor *a = hg_tensor_from(ctx, HG_F64, 2, (const int64_t[]){2, 3}, av);
    hg_tensor *b = hg_tensor_from(ctx, HG_F64, 1, (const int64_t[]){3}, bv);
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, b);
    hg_tensor *y = hypot_op(ctx, a, b), *s = hg_sum(ctx, y), *db = NULL;
    hg_tape_end(t);
    hg_gradient(t, s, 1, &b, NULL, &db);
    double worst = y && db ? 0.0 : INFINITY;
    for (int64_t i = 0; y && db && i < 6; i++)
        worst = fmax(worst, fabs(hg_get(y, i) - hypot(av[i], bv[i % 3])));
    for (int64_t j = 0; y && db && j < 3; j++) /* d/db_j = sum over rows of b_j / y */
        worst = fmax(worst, fabs(hg_get(db, j) - bv[j] / hypot(av[j], bv[j]) - bv[j] / hypot(av[3 + j], bv[j])));
    report("hypot (broadcasting) values and db", worst, 1e-15);
    hg_tensor *in[2] = {a, b};
    hg_check_options opts = {.order = 3};
    hg_check_report r;
    int ok = hg_gradcheck(ctx, hypot_fn, 2, in, NULL, &opts, &r) == HG_OK && r.passed;
    printf("check %-44s %s\n", "hypot gradcheck to order 3", ok ? "ok" : "MISMATCH");
    failures += !ok;
}

int main(void)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    if (!ctx)
        return 1;
    const double beta = 1.5;
    const double xs[] = {-30.0, -2.0, -0.5, 0.0, 0.7, 3.0, 40.0};
    hg_tensor *x = hg_tensor_from(ctx, HG_F64, 1, (const int64_t[]){7}, xs);
    third_order(ctx, x, beta);
    hg_tensor *small = hg_tensor_from(ctx, HG_F64, 1, (const int64_t[]){5}, xs + 1);
    gradcheck(ctx, small, beta);
    forward_mode(ctx, x, beta);
    once_differentiable(ctx, x, beta);
    broadcasting(ctx);
    if (hg_ctx_status(ctx) != HG_OK) {
        fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
        failures++;
    }
    hg_ctx_free(ctx);
    printf("%s\n", failures ? "FAILED" : "all checks ok");
    return failures ? 1 : 0;
}
