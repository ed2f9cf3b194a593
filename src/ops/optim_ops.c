/* Fused optimizer-step ops: SGD, momentum and Adam steps as one or two
 * passes per parameter instead of a chain of elementwise ops, and a vjp of
 * one or two such passes instead of a dozen. Every vjp is built from these
 * ops and public hg_* ops, so the steps stay differentiable to any order.
 * The forwards perform the IEEE operations of the composed form in its
 * order (src/kernels/fused.c), so results are bitwise unchanged. */
#include "optim_ops.h"
#include "../kernels/fused.h"

#include <string.h>

typedef struct coef_attr {
    double c[8];
} coef_attr;

/* Shape rule: every input float, one dtype, one shape; output alike. */
static hg_status same_shape_rule(hg_ctx *ctx, const char *name, int n, hg_tensor *const *in, hg_out_spec *out)
{
    hg_status s = hg_check_float_same(ctx, name, n, in);
    if (s != HG_OK)
        return s;
    for (int i = 1; i < n; i++)
        if (!hg_same_shape(in[i], in[0])) {
            char a[160], b[160];
            return hg_op_error(ctx, HG_ERR_SHAPE, "%s: input %d has shape %s, input 0 has %s (no broadcasting)", name,
                               i, HG_SHAPE(in[i], a), HG_SHAPE(in[0], b));
        }
    out->dtype = in[0]->dtype;
    out->rank = in[0]->rank;
    for (int d = 0; d < in[0]->rank; d++)
        out->shape[d] = in[0]->shape[d];
    return HG_OK;
}

/* Rank-0 constant of x's dtype. */
static hg_tensor *constant(hg_ctx *ctx, const hg_tensor *x, double value)
{
    return hg_scalar(ctx, x->dtype, value);
}

static const double *coefs(const hg_node *node)
{
    return ((const coef_attr *)hg_node_attr(node))->c;
}

/* Status of a vjp: an error if a requested cotangent could not be built
 * (skip[i]: input i's share was merged into another input's). */
static hg_status vjp_status(hg_ctx *ctx, const hg_node *node, int n, hg_tensor *const *gin, const bool *skip)
{
    for (int i = 0; i < n; i++)
        if (hg_node_needs_grad(node, i) && !gin[i] && !(skip && skip[i]))
            return hg_ctx_status(ctx) != HG_OK ? hg_ctx_status(ctx) : HG_ERR_INVALID;
    return HG_OK;
}

/* s g, or g itself for s = 1. */
static hg_tensor *scaled(hg_ctx *ctx, hg_tensor *g, double s)
{
    return s == 1 ? g : hg_scale(ctx, g, s);
}

static hg_tensor *apply(hg_ctx *ctx, const hg_opdef *def, hg_tensor *const *in, double c0, double c1, double c2,
                        double c3)
{
    coef_attr attr = {{c0, c1, c2, c3, 0, 0, 0, 0}};
    return ctx ? hg_apply(ctx, def, in, &attr) : NULL;
}

#define SHAPE_RULE(op, n)                                                                              \
    static hg_status op##_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out) \
    {                                                                                                  \
        (void)attr;                                                                                    \
        return same_shape_rule(ctx, "hg_opt_" #op, n, in, out);                                        \
    }

/* ---- lincomb: y = a x + b z -------------------------------------------- */

SHAPE_RULE(lincomb, 2)

static hg_status lincomb_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const double *c = ((const coef_attr *)attr)->c;
    hg_fused_lincomb(out[0], in[0], in[1], c[0], c[1]);
    return HG_OK;
}

/* dx = a g, dz = b g */
static hg_status lincomb_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const double *c = coefs(node);
    if (hg_node_needs_grad(node, 0))
        gin[0] = scaled(ctx, gout[0], c[0]);
    if (hg_node_needs_grad(node, 1))
        gin[1] = scaled(ctx, gout[0], c[1]);
    return vjp_status(ctx, node, 2, gin, NULL);
}

static const hg_opdef lincomb_def = {"hg_opt_lincomb", 2,           1,   sizeof(coef_attr), lincomb_shape,
                                     lincomb_forward,  lincomb_vjp, NULL};

hg_tensor *hg_opt_lincomb(hg_ctx *ctx, hg_tensor *x, hg_tensor *z, double a, double b)
{
    hg_tensor *in[2] = {x, z};
    return apply(ctx, &lincomb_def, in, a, b, 0, 0);
}

/* ---- prod: y = c (z w) ------------------------------------------------- */

SHAPE_RULE(prod, 2)

static hg_status prod_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    hg_fused_prod(out[0], in[0], in[1], ((const coef_attr *)attr)->c[0]);
    return HG_OK;
}

/* Cotangents of c (z w) for inputs iz, iw with coefficient c: dz = c g w,
 * dw = c g z; when z and w are one tensor, dz = 2c g z and dw is merged. */
static void prod_cotangents(hg_ctx *ctx, const hg_node *node, hg_tensor *g, int iz, int iw, double c, hg_tensor **gin,
                            bool *skip)
{
    hg_tensor *z = hg_node_input(node, iz), *w = hg_node_input(node, iw);
    if (z == w) {
        if (hg_node_needs_grad(node, iz))
            gin[iz] = hg_opt_prod(ctx, g, z, 2 * c);
        skip[iw] = true;
        return;
    }
    if (hg_node_needs_grad(node, iz))
        gin[iz] = hg_opt_prod(ctx, g, w, c);
    if (hg_node_needs_grad(node, iw))
        gin[iw] = hg_opt_prod(ctx, g, z, c);
}

/* dz = c g w, dw = c g z */
static hg_status prod_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    bool skip[2] = {false, false};
    prod_cotangents(ctx, node, gout[0], 0, 1, coefs(node)[0], gin, skip);
    return vjp_status(ctx, node, 2, gin, skip);
}

static const hg_opdef prod_def = {"hg_opt_prod", 2, 1, sizeof(coef_attr), prod_shape, prod_forward, prod_vjp, NULL};

hg_tensor *hg_opt_prod(hg_ctx *ctx, hg_tensor *z, hg_tensor *w, double c)
{
    hg_tensor *in[2] = {z, w};
    return apply(ctx, &prod_def, in, c, 0, 0, 0);
}

/* ---- lincomb_prod: y = a x + b (z w) ------------------------------------ */

SHAPE_RULE(lincomb_prod, 3)

static hg_status lincomb_prod_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const double *c = ((const coef_attr *)attr)->c;
    hg_fused_lincomb_prod(out[0], in[0], in[1], in[2], c[0], c[1]);
    return HG_OK;
}

/* dx = a g, dz = b g w, dw = b g z */
static hg_status lincomb_prod_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const double *c = coefs(node);
    bool skip[3] = {false, false, false};
    if (hg_node_needs_grad(node, 0))
        gin[0] = scaled(ctx, gout[0], c[0]);
    prod_cotangents(ctx, node, gout[0], 1, 2, c[1], gin, skip);
    return vjp_status(ctx, node, 3, gin, skip);
}

static const hg_opdef lincomb_prod_def = {
    "hg_opt_lincomb_prod", 3, 1, sizeof(coef_attr), lincomb_prod_shape, lincomb_prod_forward, lincomb_prod_vjp, NULL};

hg_tensor *hg_opt_lincomb_prod(hg_ctx *ctx, hg_tensor *x, hg_tensor *z, hg_tensor *w, double a, double b)
{
    hg_tensor *in[3] = {x, z, w};
    return apply(ctx, &lincomb_prod_def, in, a, b, 0, 0);
}

/* ---- adam_step: Adam's parameter update as a function of (p, g, m, v) ------ *
 * y = p - lr (M c1) / (sqrt(V c2) + eps), M = b1 m + a1 g, V = b2 v + a2 g g
 * (first step: M = a1 g, V = a2 g g, no m and v inputs). The new moments
 * m1 = M and v1 = V, which hg_opt_step computes anyway as the new state, are
 * passed as the last two inputs so that the forward and the vjp read them
 * instead of recomputing: they must hold exactly M and V of the other
 * inputs (the value and every derivative are those of the function of
 * p, g, m, v; m1 and v1 get no cotangent). Attributes: lr, c1, c2, eps, b1,
 * a1, b2, a2. */

static hg_status adam_step_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    (void)attr;
    return same_shape_rule(ctx, "hg_opt_adam_step", 6, in, out);
}

static hg_status adam_step1_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    (void)attr;
    return same_shape_rule(ctx, "hg_opt_adam_step", 4, in, out);
}

static hg_status adam_step_forward6(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const double *c = ((const coef_attr *)attr)->c;
    hg_fused_adam_update(out[0], in[0], in[4], in[5], c[0], c[1], c[2], c[3]);
    return HG_OK;
}

static hg_status adam_step_forward4(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const double *c = ((const coef_attr *)attr)->c;
    hg_fused_adam_update(out[0], in[0], in[2], in[3], c[0], c[1], c[2], c[3]);
    return HG_OK;
}

/* dp = g, dg = adam_dg(g, g_in, m1, v1; -lr c1 a1, lr c1 c2 a2), dm = adam_dm(g, v1; -lr c1 b1),
 * dv = adam_dv(g, m1, v1; lr c1 c2 b2 / 2); m1, v1: none */
static hg_status adam_step_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const double *c = coefs(node);
    double lr = c[0], c1 = c[1], c2 = c[2], eps = c[3], b1 = c[4], a1 = c[5], b2 = c[6], a2 = c[7];
    int n = node->n_in;
    hg_tensor *g = hg_node_input(node, 1), *m1 = hg_node_input(node, n - 2), *v1 = hg_node_input(node, n - 1);
    bool skip[6] = {false, false, false, false, false, false};
    skip[n - 2] = skip[n - 1] = true;
    if (hg_node_needs_grad(node, 0))
        gin[0] = gout[0];
    if (hg_node_needs_grad(node, 1))
        gin[1] = hg_opt_adam_dg(ctx, gout[0], g, m1, v1, -lr * c1 * a1, lr * c1 * c2 * a2, c2, eps);
    if (n == 6 && hg_node_needs_grad(node, 2))
        gin[2] = hg_opt_adam_dm(ctx, gout[0], v1, -lr * c1 * b1, c2, eps);
    if (n == 6 && hg_node_needs_grad(node, 3))
        gin[3] = hg_opt_adam_dv(ctx, gout[0], m1, v1, 0.5 * lr * c1 * c2 * b2, c2, eps);
    return vjp_status(ctx, node, n, gin, skip);
}

static const hg_opdef adam_step_def = {
    "hg_opt_adam_step", 6, 1, sizeof(coef_attr), adam_step_shape, adam_step_forward6, adam_step_vjp, NULL};
static const hg_opdef adam_step1_def = {
    "hg_opt_adam_step", 4, 1, sizeof(coef_attr), adam_step1_shape, adam_step_forward4, adam_step_vjp, NULL};

hg_tensor *hg_opt_adam_step(hg_ctx *ctx, hg_tensor *p, hg_tensor *g, hg_tensor *m, hg_tensor *v, hg_tensor *m1,
                            hg_tensor *v1, const double coef[8])
{
    coef_attr attr;
    memcpy(attr.c, coef, sizeof attr.c);
    if (!ctx)
        return NULL;
    if (!m != !v) {
        hg_op_error(ctx, HG_ERR_NULL, "hg_opt_adam_step: m and v must both be given or both be NULL");
        return NULL;
    }
    if (m) {
        hg_tensor *in[6] = {p, g, m, v, m1, v1};
        return hg_apply(ctx, &adam_step_def, in, &attr);
    }
    hg_tensor *in[4] = {p, g, m1, v1};
    return hg_apply(ctx, &adam_step1_def, in, &attr);
}

/* ---- adam_dg: y = ka u / D + kb w u m / (D^2 s) (second term where s > 0) - */

static hg_status adam_dg_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    (void)attr;
    return same_shape_rule(ctx, "hg_opt_adam_dg", 4, in, out);
}

static hg_status adam_dg_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const double *c = ((const coef_attr *)attr)->c;
    hg_fused_adam_dg(out[0], in[0], in[1], in[2], in[3], c[0], c[1], c[2], c[3]);
    return HG_OK;
}

static hg_tensor *adam_ddv(hg_ctx *ctx, hg_tensor *prod, hg_tensor *v, double k, double c2, double eps);

/* (u, w, m, v): du = adam_dg(g, w, m, v), dw = adam_dv(g u, m, v; kb), dm = adam_dv(g u, w, v; kb),
 * dv = adam_dv(g, u, v; -ka c2 / 2) + where(s > 0, -kb c2 g u w m (2s + D) / (2 D^3 s^3), 0) */
static hg_status adam_dg_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const double *c = coefs(node);
    double ka = c[0], kb = c[1], c2 = c[2], eps = c[3];
    hg_tensor *u = hg_node_input(node, 0), *w = hg_node_input(node, 1), *m = hg_node_input(node, 2),
              *v = hg_node_input(node, 3), *g = gout[0];
    if (hg_node_needs_grad(node, 0))
        gin[0] = hg_opt_adam_dg(ctx, g, w, m, v, ka, kb, c2, eps);
    hg_tensor *gu = hg_node_needs_grad(node, 1) || hg_node_needs_grad(node, 2) ? hg_mul(ctx, g, u) : NULL;
    if (hg_node_needs_grad(node, 1))
        gin[1] = hg_opt_adam_dv(ctx, gu, m, v, kb, c2, eps);
    if (hg_node_needs_grad(node, 2))
        gin[2] = hg_opt_adam_dv(ctx, gu, w, v, kb, c2, eps);
    if (hg_node_needs_grad(node, 3))
        gin[3] = hg_add(ctx, hg_opt_adam_dv(ctx, g, u, v, -0.5 * ka * c2, c2, eps),
                        adam_ddv(ctx, hg_mul(ctx, hg_mul(ctx, g, u), hg_mul(ctx, w, m)), v, kb, c2, eps));
    return vjp_status(ctx, node, 4, gin, NULL);
}

static const hg_opdef adam_dg_def = {"hg_opt_adam_dg", 4,           1,   sizeof(coef_attr), adam_dg_shape,
                                     adam_dg_forward,  adam_dg_vjp, NULL};

hg_tensor *hg_opt_adam_dg(hg_ctx *ctx, hg_tensor *u, hg_tensor *w, hg_tensor *m, hg_tensor *v, double ka, double kb,
                          double c2, double eps)
{
    hg_tensor *in[4] = {u, w, m, v};
    return apply(ctx, &adam_dg_def, in, ka, kb, c2, eps);
}

/* ---- adam_dm: y = k u / D ----------------------------------------------- */

SHAPE_RULE(adam_dm, 2)

static hg_status adam_dm_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const double *c = ((const coef_attr *)attr)->c;
    hg_fused_adam_dm(out[0], in[0], in[1], c[0], c[1], c[2]);
    return HG_OK;
}

/* du = adam_dm(g, v; k), dv = adam_dv(g, u, v; -k c2 / 2) */
static hg_status adam_dm_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const double *c = coefs(node);
    double k = c[0], c2 = c[1], eps = c[2];
    hg_tensor *u = hg_node_input(node, 0), *v = hg_node_input(node, 1);
    if (hg_node_needs_grad(node, 0))
        gin[0] = hg_opt_adam_dm(ctx, gout[0], v, k, c2, eps);
    if (hg_node_needs_grad(node, 1))
        gin[1] = hg_opt_adam_dv(ctx, gout[0], u, v, -0.5 * k * c2, c2, eps);
    return vjp_status(ctx, node, 2, gin, NULL);
}

static const hg_opdef adam_dm_def = {"hg_opt_adam_dm", 2,           1,   sizeof(coef_attr), adam_dm_shape,
                                     adam_dm_forward,  adam_dm_vjp, NULL};

hg_tensor *hg_opt_adam_dm(hg_ctx *ctx, hg_tensor *u, hg_tensor *v, double k, double c2, double eps)
{
    hg_tensor *in[2] = {u, v};
    return apply(ctx, &adam_dm_def, in, k, c2, eps, 0);
}

/* ---- adam_dv: y = k u m / (D^2 s) where s > 0, else 0 -------------------- */

SHAPE_RULE(adam_dv, 3)

static hg_status adam_dv_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const double *c = ((const coef_attr *)attr)->c;
    hg_fused_adam_dv(out[0], in[0], in[1], in[2], c[0], c[1], c[2]);
    return HG_OK;
}

/* d/dv of k P / (D^2 s) for a fixed product P, from public ops (used only
 * by third derivatives of a step): where(s > 0, -k c2 P (2s + D) / (2 D^3 s^3), 0) */
static hg_tensor *adam_ddv(hg_ctx *ctx, hg_tensor *prod, hg_tensor *v, double k, double c2, double eps)
{
    hg_tensor *zero = constant(ctx, v, 0.0);
    hg_tensor *s = hg_sqrt(ctx, hg_scale(ctx, v, c2));
    hg_tensor *mask = hg_greater(ctx, s, zero);
    hg_tensor *s_safe = hg_where(ctx, mask, s, constant(ctx, v, 1.0));
    hg_tensor *d = hg_add_scalar(ctx, s_safe, eps);
    hg_tensor *d3 = hg_mul(ctx, d, hg_mul(ctx, d, d)), *s3 = hg_mul(ctx, s_safe, hg_mul(ctx, s_safe, s_safe));
    hg_tensor *phi = hg_div(ctx, hg_add(ctx, hg_scale(ctx, s_safe, 2.0), d), hg_mul(ctx, d3, s3));
    return hg_where(ctx, mask, hg_scale(ctx, hg_mul(ctx, prod, phi), -0.5 * k * c2), zero);
}

/* du = adam_dv(g, m, v; k), dm = adam_dv(g, u, v; k),
 * dv = where(s > 0, -k c2 g u m (2s + D) / (2 D^3 s^3), 0) */
static hg_status adam_dv_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const double *c = coefs(node);
    double k = c[0], c2 = c[1], eps = c[2];
    hg_tensor *u = hg_node_input(node, 0), *m = hg_node_input(node, 1), *v = hg_node_input(node, 2), *g = gout[0];
    if (hg_node_needs_grad(node, 0))
        gin[0] = hg_opt_adam_dv(ctx, g, m, v, k, c2, eps);
    if (hg_node_needs_grad(node, 1))
        gin[1] = hg_opt_adam_dv(ctx, g, u, v, k, c2, eps);
    if (hg_node_needs_grad(node, 2))
        gin[2] = adam_ddv(ctx, hg_mul(ctx, hg_mul(ctx, g, u), m), v, k, c2, eps);
    return vjp_status(ctx, node, 3, gin, NULL);
}

static const hg_opdef adam_dv_def = {"hg_opt_adam_dv", 3,           1,   sizeof(coef_attr), adam_dv_shape,
                                     adam_dv_forward,  adam_dv_vjp, NULL};

hg_tensor *hg_opt_adam_dv(hg_ctx *ctx, hg_tensor *u, hg_tensor *m, hg_tensor *v, double k, double c2, double eps)
{
    hg_tensor *in[3] = {u, m, v};
    return apply(ctx, &adam_dv_def, in, k, c2, eps, 0);
}
