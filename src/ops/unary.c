/* Elementwise unary ops. Each op is an hg_opdef with the shared shape rule;
 * its forward runs the op's kernel and its vjp is built from recorded hg_*
 * ops (so it can be differentiated again). The attribute of every unary op
 * is one double, its parameter p (scale, shift or exponent; 0 otherwise). */
#include "../kernels/kernels.h"

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

/* dx = where(x > 0, g, 0) */
static hg_tensor *relu_dx(hg_ctx *ctx, const hg_node *node, hg_tensor *g)
{
    hg_tensor *x = input(node), *zero = constant(ctx, x, 0.0);
    return hg_where(ctx, hg_greater(ctx, x, zero), g, zero);
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

/* ---- op definitions ----------------------------------------------------- */

/* Shape rule and forward of op, running `kernel`. */
#define UNARY_FORWARD(op, kernel)                                                                                  \
    static hg_status op##_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)             \
    {                                                                                                              \
        (void)attr;                                                                                                \
        return unary_shape(ctx, "hg_" #op, in, out);                                                               \
    }                                                                                                              \
    static hg_status op##_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)      \
    {                                                                                                              \
        (void)ctx;                                                                                                 \
        hg_kernel_unary(&kernel, *(const double *)attr, out[0], in[0]);                                            \
        return HG_OK;                                                                                              \
    }

/* An op differentiated by op##_dx. */
#define DIFFERENTIABLE_UNARY(op, kernel)                                                                           \
    UNARY_FORWARD(op, kernel)                                                                                      \
    static hg_status op##_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)           \
    {                                                                                                              \
        if (!hg_node_needs_grad(node, 0))                                                                          \
            return HG_OK;                                                                                          \
        gin[0] = op##_dx(ctx, node, gout[0]);                                                                      \
        return HG_OK;                                                                                              \
    }                                                                                                              \
    static const hg_opdef op##_def = {"hg_" #op, 1, 1, sizeof(double), op##_shape, op##_forward, op##_vjp, NULL};

/* An op whose output is a constant (no vjp, never recorded). */
#define CONSTANT_UNARY(op, kernel)                                                                                 \
    UNARY_FORWARD(op, kernel)                                                                                      \
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

static hg_tensor *apply_unary(hg_ctx *ctx, const hg_opdef *def, hg_tensor *x, double p)
{
    return ctx ? hg_apply(ctx, def, &x, &p) : NULL;
}

hg_tensor *hg_neg(hg_ctx *ctx, hg_tensor *x) { return apply_unary(ctx, &neg_def, x, 0); }
hg_tensor *hg_scale(hg_ctx *ctx, hg_tensor *x, double s) { return apply_unary(ctx, &scale_def, x, s); }
hg_tensor *hg_add_scalar(hg_ctx *ctx, hg_tensor *x, double s) { return apply_unary(ctx, &add_scalar_def, x, s); }
hg_tensor *hg_pow_scalar(hg_ctx *ctx, hg_tensor *x, double p) { return apply_unary(ctx, &pow_scalar_def, x, p); }
hg_tensor *hg_exp(hg_ctx *ctx, hg_tensor *x) { return apply_unary(ctx, &exp_def, x, 0); }
hg_tensor *hg_log(hg_ctx *ctx, hg_tensor *x) { return apply_unary(ctx, &log_def, x, 0); }
hg_tensor *hg_sqrt(hg_ctx *ctx, hg_tensor *x) { return apply_unary(ctx, &sqrt_def, x, 0); }
hg_tensor *hg_tanh(hg_ctx *ctx, hg_tensor *x) { return apply_unary(ctx, &tanh_def, x, 0); }
hg_tensor *hg_sigmoid(hg_ctx *ctx, hg_tensor *x) { return apply_unary(ctx, &sigmoid_def, x, 0); }
hg_tensor *hg_relu(hg_ctx *ctx, hg_tensor *x) { return apply_unary(ctx, &relu_def, x, 0); }
hg_tensor *hg_abs(hg_ctx *ctx, hg_tensor *x) { return apply_unary(ctx, &abs_def, x, 0); }
hg_tensor *hg_sign(hg_ctx *ctx, hg_tensor *x) { return apply_unary(ctx, &sign_def, x, 0); }
hg_tensor *hg_identity(hg_ctx *ctx, hg_tensor *x) { return apply_unary(ctx, &identity_def, x, 0); }
