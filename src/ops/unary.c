/* Elementwise unary ops. Each vjp is made of recorded ops. */
#include "../kernels/kernels.h"

typedef struct unary_attr {
    hg_unary_kind kind;
    double p; /* scale, shift or exponent */
} unary_attr;

static const char *unary_name(hg_unary_kind kind);

static hg_status unary_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const unary_attr *a = attr;
    if (!hg_is_float(in[0]->dtype))
        return hg_op_error(ctx, HG_ERR_DTYPE, "%s: input is %s, expected f32 or f64", unary_name(a->kind),
                           hg_dtype_name(in[0]->dtype));
    out->dtype = in[0]->dtype;
    out->rank = in[0]->rank;
    for (int i = 0; i < in[0]->rank; i++)
        out->shape[i] = in[0]->shape[i];
    return HG_OK;
}

static hg_status unary_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const unary_attr *a = attr;
    hg_kernel_unary(a->kind, a->p, out[0], in[0]);
    return HG_OK;
}

/* One formula per kind; x input, y output, g cotangent. */
static hg_tensor *unary_grad(hg_ctx *ctx, const unary_attr *a, hg_tensor *x, hg_tensor *y, hg_tensor *g)
{
    switch (a->kind) {
    case HG_UN_NEG: /* dx = -g */
        return hg_neg(ctx, g);
    case HG_UN_SCALE: /* dx = s g */
        return hg_scale(ctx, g, a->p);
    case HG_UN_ADD:  /* dx = g */
    case HG_UN_COPY: /* dx = g */
        return g;
    case HG_UN_POW: /* dx = g p x^(p-1) */
        if (a->p == 0)
            return hg_zeros_like(ctx, x);
        if (a->p == 1)
            return g;
        if (a->p == 2)
            return hg_mul(ctx, g, hg_scale(ctx, x, 2.0));
        return hg_mul(ctx, g, hg_scale(ctx, hg_pow_scalar(ctx, x, a->p - 1), a->p));
    case HG_UN_EXP: /* dx = g y */
        return hg_mul(ctx, g, y);
    case HG_UN_LOG: /* dx = g / x */
        return hg_div(ctx, g, x);
    case HG_UN_SQRT: { /* dx = g m 0.5 / (y + 1 - m), m = (y > 0): 0 at x = 0 */
        hg_tensor *zero = hg_zeros(ctx, y->dtype, 0, NULL);
        hg_tensor *m = hg_greater(ctx, y, zero);
        hg_tensor *safe = hg_add(ctx, y, hg_add_scalar(ctx, hg_neg(ctx, m), 1.0));
        return hg_mul(ctx, hg_mul(ctx, g, m), hg_div(ctx, hg_scale(ctx, m, 0.5), safe));
    }
    case HG_UN_TANH: /* dx = g (1 - y^2) */
        return hg_mul(ctx, g, hg_add_scalar(ctx, hg_neg(ctx, hg_mul(ctx, y, y)), 1.0));
    case HG_UN_SIGMOID: /* dx = g y (1 - y) */
        return hg_mul(ctx, g, hg_mul(ctx, y, hg_add_scalar(ctx, hg_neg(ctx, y), 1.0)));
    case HG_UN_RELU: { /* dx = g (x > 0) */
        hg_tensor *zero = hg_zeros(ctx, x->dtype, 0, NULL);
        return hg_mul(ctx, g, hg_greater(ctx, x, zero));
    }
    case HG_UN_ABS: /* dx = g sign(x) */
        return hg_mul(ctx, g, hg_sign(ctx, x));
    case HG_UN_SIGN: /* constant: no vjp is registered */
        return NULL;
    }
    return NULL;
}

static hg_status unary_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    gin[0] = unary_grad(ctx, hg_node_attr(node), hg_node_input(node, 0), hg_node_output(node, 0), gout[0]);
    return gin[0] ? HG_OK : hg_ctx_status(ctx);
}

/* One definition per public call (so errors and nodes carry its name); all
 * share the shape rule, kernel and vjp, switching on the kind attribute. */
static const struct {
    hg_unary_kind kind;
    hg_opdef def;
} unary_defs[] = {
#define UNARY_DEF(kind, name) {kind, {name, 1, 1, sizeof(unary_attr), unary_shape, unary_forward, unary_vjp, NULL}}
    UNARY_DEF(HG_UN_NEG, "hg_neg"),
    UNARY_DEF(HG_UN_SCALE, "hg_scale"),
    UNARY_DEF(HG_UN_ADD, "hg_add_scalar"),
    UNARY_DEF(HG_UN_POW, "hg_pow_scalar"),
    UNARY_DEF(HG_UN_EXP, "hg_exp"),
    UNARY_DEF(HG_UN_LOG, "hg_log"),
    UNARY_DEF(HG_UN_SQRT, "hg_sqrt"),
    UNARY_DEF(HG_UN_TANH, "hg_tanh"),
    UNARY_DEF(HG_UN_SIGMOID, "hg_sigmoid"),
    UNARY_DEF(HG_UN_RELU, "hg_relu"),
    UNARY_DEF(HG_UN_ABS, "hg_abs"),
    {HG_UN_SIGN, {"hg_sign", 1, 1, sizeof(unary_attr), unary_shape, unary_forward, NULL, NULL}},
    UNARY_DEF(HG_UN_COPY, "hg_identity"),
#undef UNARY_DEF
};

static const hg_opdef *def_of(hg_unary_kind kind)
{
    for (size_t i = 0; i < sizeof unary_defs / sizeof unary_defs[0]; i++)
        if (unary_defs[i].kind == kind)
            return &unary_defs[i].def;
    return NULL; /* every kind is in the table */
}

static const char *unary_name(hg_unary_kind kind)
{
    const hg_opdef *def = def_of(kind);
    return def ? def->name : "hg_unary";
}

static hg_tensor *unary(hg_ctx *ctx, hg_unary_kind kind, hg_tensor *x, double p)
{
    unary_attr a = {kind, p};
    return hg_apply(ctx, def_of(kind), &x, &a);
}

hg_tensor *hg_neg(hg_ctx *ctx, hg_tensor *x) { return unary(ctx, HG_UN_NEG, x, 0); }
hg_tensor *hg_scale(hg_ctx *ctx, hg_tensor *x, double s) { return unary(ctx, HG_UN_SCALE, x, s); }
hg_tensor *hg_add_scalar(hg_ctx *ctx, hg_tensor *x, double s) { return unary(ctx, HG_UN_ADD, x, s); }
hg_tensor *hg_pow_scalar(hg_ctx *ctx, hg_tensor *x, double p) { return unary(ctx, HG_UN_POW, x, p); }
hg_tensor *hg_exp(hg_ctx *ctx, hg_tensor *x) { return unary(ctx, HG_UN_EXP, x, 0); }
hg_tensor *hg_log(hg_ctx *ctx, hg_tensor *x) { return unary(ctx, HG_UN_LOG, x, 0); }
hg_tensor *hg_sqrt(hg_ctx *ctx, hg_tensor *x) { return unary(ctx, HG_UN_SQRT, x, 0); }
hg_tensor *hg_tanh(hg_ctx *ctx, hg_tensor *x) { return unary(ctx, HG_UN_TANH, x, 0); }
hg_tensor *hg_sigmoid(hg_ctx *ctx, hg_tensor *x) { return unary(ctx, HG_UN_SIGMOID, x, 0); }
hg_tensor *hg_relu(hg_ctx *ctx, hg_tensor *x) { return unary(ctx, HG_UN_RELU, x, 0); }
hg_tensor *hg_abs(hg_ctx *ctx, hg_tensor *x) { return unary(ctx, HG_UN_ABS, x, 0); }
hg_tensor *hg_sign(hg_ctx *ctx, hg_tensor *x) { return unary(ctx, HG_UN_SIGN, x, 0); }
hg_tensor *hg_identity(hg_ctx *ctx, hg_tensor *x) { return unary(ctx, HG_UN_COPY, x, 0); }
