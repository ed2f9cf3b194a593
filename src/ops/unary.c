/* Elementwise unary ops. Each op is an hg_opdef with the shared shape rule;
 * its forward runs the op's kernel and its vjp is built from recorded hg_*
 * ops (so it can be differentiated again). The attribute of every unary op
 * is one double, its parameter p (scale, shift, exponent or slope; 0
 * otherwise); clamp has two (lo, hi) and its own definition. */
#include "../kernels/activation.h"
#include "../kernels/fused.h"

#include <math.h>

/* Shape rule: one float input; the output has its dtype and shape. */
static hg_status unary_shape(hg_ctx *ctx, const char *name, hg_tensor *const *in, hg_out_spec *out)
{
    if (!hg_is_float(in[0]->dtype))
        return hg_op_error(ctx, HG_ERR_DTYPE, "%s: input is %s, expected f32 or f64", name,
                           hg_dtype_name(in[0]->dtype));
    out->dtype = in[0]->dtype;
    out->rank = in[0]->rank;
    for (int i = 0; i < in[0]->rank; i++)
        out->shape[i] = in[0]->shape[i];
    return HG_OK;
}

static double param(const hg_node *node)
{
    return *(const double *)hg_node_attr(node);
}

static hg_tensor *input(const hg_node *node)
{
    return hg_node_input(node, 0);
}

static hg_tensor *output(const hg_node *node)
{
    return hg_node_output(node, 0);
}

/* Rank-0 constant of x's dtype. */
static hg_tensor *constant(hg_ctx *ctx, const hg_tensor *x, double value)
{
    return hg_scalar(ctx, x->dtype, value);
}

/* 1 - x */
static hg_tensor *one_minus(hg_ctx *ctx, hg_tensor *x)
{
    return hg_add_scalar(ctx, hg_neg(ctx, x), 1.0);
}

/* ---- input cotangents dx from the output cotangent g ------------------ */

/* dx = -g */
static hg_tensor *neg_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    (void)node;
    return hg_neg(ctx, g);
}

/* dx = s g */
static hg_tensor *scale_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    return hg_scale(ctx, g, param(node));
}

/* dx = g */
static hg_tensor *add_scalar_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    (void)ctx;
    (void)node;
    return g;
}

/* dx = g p x^(p-1); for 0 < p < 1: where(x == 0, 0, g p x_safe^(p-1)), x_safe = where(x == 0, 1, x) */
static hg_tensor *pow_scalar_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    double p = param(node);
    hg_tensor *x = input(node);
    if (p == 0)
        return hg_zeros_like(ctx, x);
    if (p == 1)
        return g;
    if (p == 2)
        return hg_mul(ctx, g, hg_scale(ctx, x, 2.0));
    if (p > 0 && p < 1) {
        /* x^(p-1) is infinite at 0; take the derivative there as 0, as for
         * hg_sqrt. The mask ge(x,0) - gt(x,0) is 1 exactly at x == 0 (0 for
         * NaN), so negative x keeps the NaN of the plain formula. */
        hg_tensor *zero = constant(ctx, x, 0.0);
        hg_tensor *at0 = hg_sub(ctx, hg_greater_equal(ctx, x, zero), hg_greater(ctx, x, zero));
        hg_tensor *x_safe = hg_where(ctx, at0, constant(ctx, x, 1.0), x);
        hg_tensor *d = hg_mul(ctx, g, hg_scale(ctx, hg_pow_scalar(ctx, x_safe, p - 1), p));
        return hg_where(ctx, at0, zero, d);
    }
    return hg_mul(ctx, g, hg_scale(ctx, hg_pow_scalar(ctx, x, p - 1), p));
}

/* dx = g y */
static hg_tensor *exp_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    return hg_mul(ctx, g, output(node));
}

/* dx = g / x */
static hg_tensor *log_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    return hg_div(ctx, g, input(node));
}

/* dx = where(m, 0.5 g / y_safe, 0), m = (y > 0), y_safe = where(m, y, 1): 0 at x = 0, finite at every order */
static hg_tensor *sqrt_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    hg_tensor *y = output(node);
    hg_tensor *zero = constant(ctx, y, 0.0);
    hg_tensor *m = hg_greater(ctx, y, zero);
    hg_tensor *y_safe = hg_where(ctx, m, y, constant(ctx, y, 1.0));
    return hg_where(ctx, m, hg_div(ctx, hg_scale(ctx, g, 0.5), y_safe), zero);
}

/* dx = g (1 - y^2) */
static hg_tensor *tanh_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    hg_tensor *y = output(node);
    return hg_mul(ctx, g, one_minus(ctx, hg_mul(ctx, y, y)));
}

/* dx = g y (1 - y) */
static hg_tensor *sigmoid_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    hg_tensor *y = output(node);
    return hg_mul(ctx, g, hg_mul(ctx, y, one_minus(ctx, y)));
}

/* dx = where(x > 0, g, 0), as one op: relu_mask(x, g) */
static hg_tensor *relu_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    return hg_relu_mask(ctx, input(node), g);
}

/* dx = g sign(x) */
static hg_tensor *abs_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    return hg_mul(ctx, g, hg_sign(ctx, input(node)));
}

/* dx = g */
static hg_tensor *identity_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    (void)ctx;
    (void)node;
    return g;
}

/* dx = g cos(x) */
static hg_tensor *sin_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    return hg_mul(ctx, g, hg_cos(ctx, input(node)));
}

/* dx = -g sin(x) */
static hg_tensor *cos_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    return hg_neg(ctx, hg_mul(ctx, g, hg_sin(ctx, input(node))));
}

/* dx = g / (1 + x) */
static hg_tensor *log1p_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    return hg_div(ctx, g, hg_add_scalar(ctx, input(node), 1.0));
}

/* dx = g (y + 1) */
static hg_tensor *expm1_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    return hg_mul(ctx, g, hg_add_scalar(ctx, output(node), 1.0));
}

/* dx = g (2 / sqrt(pi)) exp(-x^2) */
static hg_tensor *erf_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    hg_tensor *x = input(node);
    return hg_mul(ctx, g, hg_scale(ctx, hg_exp(ctx, hg_neg(ctx, hg_mul(ctx, x, x))), 1.12837916709551257390));
}

/* dx = g sigmoid(x) */
static hg_tensor *softplus_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    return hg_mul(ctx, g, hg_sigmoid(ctx, input(node)));
}

/* dx = where(x > 0, g, alpha g) */
static hg_tensor *leaky_relu_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    hg_tensor *x = input(node);
    return hg_where(ctx, hg_greater(ctx, x, constant(ctx, x, 0.0)), g, hg_scale(ctx, g, param(node)));
}

/* dx = where(x > 0, g, g (y + alpha)) */
static hg_tensor *elu_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    hg_tensor *x = input(node);
    return hg_where(ctx, hg_greater(ctx, x, constant(ctx, x, 0.0)), g,
                    hg_mul(ctx, g, hg_add_scalar(ctx, output(node), param(node))));
}

/* dx = g (Phi(x) + x phi(x)), Phi(x) = (1 + erf(x / sqrt 2)) / 2, phi(x) = exp(-x^2 / 2) / sqrt(2 pi) */
static hg_tensor *gelu_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    hg_tensor *x = input(node);
    hg_tensor *cdf = hg_scale(ctx, hg_add_scalar(ctx, hg_erf(ctx, hg_scale(ctx, x, 0.70710678118654752440)), 1.0), 0.5);
    hg_tensor *pdf = hg_scale(ctx, hg_exp(ctx, hg_scale(ctx, hg_mul(ctx, x, x), -0.5)), 0.39894228040143267794);
    return hg_mul(ctx, g, hg_add(ctx, cdf, hg_mul(ctx, x, pdf)));
}

/* dx = g ((1 + t) / 2 + x (1 - t^2) c (1 + 3k x^2) / 2), t = tanh(c (x + k x^3)), c = sqrt(2/pi), k = 0.044715 */
static hg_tensor *gelu_tanh_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    const double c = 0.79788456080286535588, k = 0.044715;
    hg_tensor *x = input(node), *x2 = hg_mul(ctx, x, x);
    hg_tensor *t = hg_tanh(ctx, hg_scale(ctx, hg_add(ctx, x, hg_scale(ctx, hg_mul(ctx, x2, x), k)), c));
    hg_tensor *du = hg_scale(ctx, hg_add_scalar(ctx, hg_scale(ctx, x2, 3 * k), 1.0), c);
    hg_tensor *d = hg_add(ctx, hg_scale(ctx, hg_add_scalar(ctx, t, 1.0), 0.5),
                          hg_mul(ctx, hg_scale(ctx, x, 0.5), hg_mul(ctx, one_minus(ctx, hg_mul(ctx, t, t)), du)));
    return hg_mul(ctx, g, d);
}

/* dx = g s (1 + x (1 - s)), s = sigmoid(x) */
static hg_tensor *silu_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    hg_tensor *x = input(node), *s = hg_sigmoid(ctx, x);
    return hg_mul(ctx, g, hg_mul(ctx, s, hg_add_scalar(ctx, hg_mul(ctx, x, one_minus(ctx, s)), 1.0)));
}

/* ---- op definitions ----------------------------------------------------- */

/* Shape rule and forward of op, running `kernel`. */
#define UNARY_FORWARD(op, kernel)                                                                             \
    static hg_status op##_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)        \
    {                                                                                                         \
        (void)attr;                                                                                           \
        return unary_shape(ctx, "hg_" #op, in, out);                                                          \
    }                                                                                                         \
    static hg_status op##_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr) \
    {                                                                                                         \
        (void)ctx;                                                                                            \
        hg_kernel_unary(&kernel, *(const double *)attr, out[0], in[0]);                                       \
        return HG_OK;                                                                                         \
    }

/* An op differentiated by op##_dx. */
#define DIFFERENTIABLE_UNARY(op, kernel)                                                                 \
    UNARY_FORWARD(op, kernel)                                                                            \
    static hg_status op##_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin) \
    {                                                                                                    \
        if (!hg_node_needs_grad(node, 0))                                                                \
            return HG_OK;                                                                                \
        gin[0] = op##_dx(ctx, node, gout[0]);                                                            \
        return HG_OK;                                                                                    \
    }                                                                                                    \
    static const hg_opdef op##_def = {"hg_" #op, 1, 1, sizeof(double), op##_shape, op##_forward, op##_vjp, NULL};

/* An op whose output is a constant (no vjp, never recorded). */
#define CONSTANT_UNARY(op, kernel) \
    UNARY_FORWARD(op, kernel)      \
    static const hg_opdef op##_def = {"hg_" #op, 1, 1, sizeof(double), op##_shape, op##_forward, NULL, NULL};

DIFFERENTIABLE_UNARY(neg, hg_unary_neg)
DIFFERENTIABLE_UNARY(scale, hg_unary_scale)
DIFFERENTIABLE_UNARY(add_scalar, hg_unary_add)
DIFFERENTIABLE_UNARY(pow_scalar, hg_unary_pow)
DIFFERENTIABLE_UNARY(exp, hg_unary_exp)
DIFFERENTIABLE_UNARY(log, hg_unary_log)
DIFFERENTIABLE_UNARY(sqrt, hg_unary_sqrt)
DIFFERENTIABLE_UNARY(tanh, hg_unary_tanh)
DIFFERENTIABLE_UNARY(sigmoid, hg_unary_sigmoid)
DIFFERENTIABLE_UNARY(relu, hg_unary_relu)
DIFFERENTIABLE_UNARY(abs, hg_unary_abs)
CONSTANT_UNARY(sign, hg_unary_sign)
DIFFERENTIABLE_UNARY(identity, hg_unary_copy)
DIFFERENTIABLE_UNARY(sin, hg_unary_sin)
DIFFERENTIABLE_UNARY(cos, hg_unary_cos)
DIFFERENTIABLE_UNARY(log1p, hg_unary_log1p)
DIFFERENTIABLE_UNARY(expm1, hg_unary_expm1)
DIFFERENTIABLE_UNARY(erf, hg_unary_erf)
DIFFERENTIABLE_UNARY(softplus, hg_unary_softplus)
DIFFERENTIABLE_UNARY(leaky_relu, hg_unary_leaky_relu)
DIFFERENTIABLE_UNARY(elu, hg_unary_elu)
DIFFERENTIABLE_UNARY(gelu, hg_unary_gelu)
DIFFERENTIABLE_UNARY(gelu_tanh, hg_unary_gelu_tanh)
DIFFERENTIABLE_UNARY(silu, hg_unary_silu)

/* ---- relu_mask(x, g) = where(x > 0, g, 0): relu's vjp in one pass -------- *
 * (as hg_where(hg_greater(x, 0), g, 0), without the mask tensor; NaN x gives
 * 0). Linear in g and piecewise constant in x. */

static hg_status relu_mask_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    (void)attr;
    hg_status s = hg_check_float_same(ctx, "hg_relu_mask", 2, in);
    if (s != HG_OK)
        return s;
    if (!hg_same_shape(in[0], in[1])) {
        char a[160], b[160];
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_relu_mask: x %s and g %s differ in shape", HG_SHAPE(in[0], a),
                           HG_SHAPE(in[1], b));
    }
    return unary_shape(ctx, "hg_relu_mask", in, out);
}

static hg_status relu_mask_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    (void)attr;
    hg_fused_relu_mask(out[0], in[0], in[1]);
    return HG_OK;
}

/* dx = 0 (piecewise constant), dg = relu_mask(x, gy) */
static hg_status relu_mask_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    if (hg_node_needs_grad(node, 1) && !(gin[1] = hg_relu_mask(ctx, input(node), gout[0])))
        return hg_ctx_status(ctx);
    return HG_OK;
}

static const hg_opdef relu_mask_def = {"hg_relu_mask", 2,   1, 0, relu_mask_shape, relu_mask_forward,
                                       relu_mask_vjp,  NULL};

hg_tensor *hg_relu_mask(hg_ctx *ctx, hg_tensor *x, hg_tensor *g)
{
    hg_tensor *in[2] = {x, g};
    return hg_apply(ctx, &relu_mask_def, in, NULL);
}

/* ---- clamp(x, lo, hi): two parameters ---------------------------------- */

typedef struct clamp_attr {
    double lo, hi;
} clamp_attr;

static hg_status clamp_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const clamp_attr *a = attr;
    if (isnan(a->lo) || isnan(a->hi) || a->lo > a->hi)
        return hg_op_error(ctx, HG_ERR_RANGE, "hg_clamp: bounds [%g, %g] are not an interval (need lo <= hi, no NaN)",
                           a->lo, a->hi);
    return unary_shape(ctx, "hg_clamp", in, out);
}

static hg_status clamp_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const clamp_attr *a = attr;
    hg_kernel_clamp(out[0], in[0], a->lo, a->hi);
    return HG_OK;
}

/* dx = where(lo <= x <= hi, g, 0) (bounds included, as PyTorch) */
static hg_status clamp_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const clamp_attr *a = hg_node_attr(node);
    hg_tensor *x = input(node);
    if (!hg_node_needs_grad(node, 0))
        return HG_OK;
    hg_tensor *inside = hg_mul(ctx, hg_greater_equal(ctx, x, constant(ctx, x, a->lo)),
                               hg_greater_equal(ctx, constant(ctx, x, a->hi), x));
    gin[0] = hg_where(ctx, inside, gout[0], constant(ctx, x, 0.0));
    return HG_OK;
}

static const hg_opdef clamp_def = {
    .name = "hg_clamp",
    .n_inputs = 1,
    .n_outputs = 1,
    .attr_size = sizeof(clamp_attr),
    .shape = clamp_shape,
    .forward = clamp_forward,
    .vjp = clamp_vjp,
};

static hg_tensor *apply_unary(hg_ctx *ctx, const hg_opdef *def, hg_tensor *x, double p)
{
    return ctx ? hg_apply(ctx, def, &x, &p) : NULL;
}

hg_tensor *hg_neg(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &neg_def, x, 0);
}
hg_tensor *hg_scale(hg_ctx *ctx, hg_tensor *x, double s)
{
    return apply_unary(ctx, &scale_def, x, s);
}
hg_tensor *hg_add_scalar(hg_ctx *ctx, hg_tensor *x, double s)
{
    return apply_unary(ctx, &add_scalar_def, x, s);
}
hg_tensor *hg_pow_scalar(hg_ctx *ctx, hg_tensor *x, double p)
{
    return apply_unary(ctx, &pow_scalar_def, x, p);
}
hg_tensor *hg_exp(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &exp_def, x, 0);
}
hg_tensor *hg_log(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &log_def, x, 0);
}
hg_tensor *hg_sqrt(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &sqrt_def, x, 0);
}
hg_tensor *hg_tanh(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &tanh_def, x, 0);
}
hg_tensor *hg_sigmoid(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &sigmoid_def, x, 0);
}
hg_tensor *hg_relu(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &relu_def, x, 0);
}
hg_tensor *hg_abs(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &abs_def, x, 0);
}
hg_tensor *hg_sign(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &sign_def, x, 0);
}
hg_tensor *hg_identity(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &identity_def, x, 0);
}
hg_tensor *hg_sin(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &sin_def, x, 0);
}
hg_tensor *hg_cos(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &cos_def, x, 0);
}
hg_tensor *hg_log1p(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &log1p_def, x, 0);
}
hg_tensor *hg_expm1(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &expm1_def, x, 0);
}
hg_tensor *hg_erf(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &erf_def, x, 0);
}
hg_tensor *hg_softplus(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &softplus_def, x, 0);
}
hg_tensor *hg_gelu(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &gelu_def, x, 0);
}
hg_tensor *hg_gelu_tanh(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &gelu_tanh_def, x, 0);
}
hg_tensor *hg_silu(hg_ctx *ctx, hg_tensor *x)
{
    return apply_unary(ctx, &silu_def, x, 0);
}

/* A slope that is not finite is refused (after a NULL x, which keeps the
 * earlier error). */
static hg_tensor *apply_sloped(hg_ctx *ctx, const hg_opdef *def, hg_tensor *x, double alpha)
{
    if (!ctx)
        return NULL;
    if (x && !isfinite(alpha)) {
        hg_op_error(ctx, HG_ERR_RANGE, "%s: alpha %g is not finite", def->name, alpha);
        return NULL;
    }
    return hg_apply(ctx, def, &x, &alpha);
}

hg_tensor *hg_leaky_relu(hg_ctx *ctx, hg_tensor *x, double alpha)
{
    return apply_sloped(ctx, &leaky_relu_def, x, alpha);
}
hg_tensor *hg_elu(hg_ctx *ctx, hg_tensor *x, double alpha)
{
    return apply_sloped(ctx, &elu_def, x, alpha);
}

hg_tensor *hg_clamp(hg_ctx *ctx, hg_tensor *x, double lo, double hi)
{
    clamp_attr a = {lo, hi};
    return ctx ? hg_apply(ctx, &clamp_def, &x, &a) : NULL;
}
