/* Optimizers: in-place training form and recorded, differentiable form. */
#include "internal.h"

#include <math.h>
#include <string.h>

static const char *const opt_names[] = {"sgd", "momentum", "adam"};

const char *hg_opt_name(hg_opt_kind kind)
{
    return (unsigned)kind < 3 ? opt_names[kind] : "?";
}

int hg_opt_parse(const char *name, hg_opt_kind *kind)
{
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, opt_names[i]) == 0) {
            if (kind)
                *kind = (hg_opt_kind)i;
            return 0;
        }
    return -1;
}

int hg_opt_state_count(hg_opt_kind kind, int n)
{
    switch (kind) {
    case HG_OPT_SGD: return 0;
    case HG_OPT_MOMENTUM: return n;
    case HG_OPT_ADAM: return 2 * n;
    }
    return -1;
}

/* Adam's defaults for zero fields. */
static hg_opt_config resolved(const hg_opt_config *cfg)
{
    hg_opt_config c = *cfg;
    if (c.beta1 == 0)
        c.beta1 = 0.9;
    if (c.beta2 == 0)
        c.beta2 = 0.999;
    if (c.eps == 0)
        c.eps = 1e-8;
    return c;
}

static hg_status check_config(hg_ctx *ctx, const char *who, const hg_opt_config *cfg, int n)
{
    if (!cfg)
        return hg_set_error(ctx, HG_ERR_NULL, "%s: config is NULL", who);
    if ((unsigned)cfg->kind > HG_OPT_ADAM)
        return hg_set_error(ctx, HG_ERR_INVALID, "%s: unknown optimizer kind %d", who, (int)cfg->kind);
    if (n < 0)
        return hg_set_error(ctx, HG_ERR_INVALID, "%s: negative parameter count %d", who, n);
    return HG_OK;
}

/* ---- training form ------------------------------------------------------ */

struct hg_optimizer {
    hg_ctx *ctx;
    hg_opt_config cfg;
    int n;
    int steps;
    hg_tensor **params;
    hg_tensor **state; /* momentum: u; Adam: m then v */
};

hg_optimizer *hg_optimizer_new(hg_ctx *ctx, const hg_opt_config *cfg, int n, hg_tensor *const *params)
{
    if (!ctx || check_config(ctx, "hg_optimizer_new", cfg, n) != HG_OK)
        return NULL;
    if (n > 0 && !params) {
        hg_set_error(ctx, HG_ERR_NULL, "hg_optimizer_new: params is NULL");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (hg_tensor_validate(ctx, params[i], "hg_optimizer_new") != HG_OK)
            return NULL;
        if (!hg_is_float(params[i]->dtype)) {
            hg_set_error(ctx, HG_ERR_DTYPE, "hg_optimizer_new: parameter %d is %s", i,
                         hg_dtype_name(params[i]->dtype));
            return NULL;
        }
    }
    int ns = hg_opt_state_count(cfg->kind, n);
    hg_optimizer *opt = hg_arena_alloc(ctx, sizeof *opt + (size_t)(n + ns) * sizeof(hg_tensor *));
    if (!opt) {
        hg_set_error(ctx, HG_ERR_OOM, "hg_optimizer_new: out of memory");
        return NULL;
    }
    opt->ctx = ctx;
    opt->cfg = resolved(cfg);
    opt->n = n;
    opt->steps = 0;
    opt->params = (hg_tensor **)(opt + 1);
    opt->state = opt->params + n;
    for (int i = 0; i < n; i++)
        opt->params[i] = params[i];
    for (int j = 0; j < ns; j++)
        if (!(opt->state[j] = hg_zeros_like(ctx, params[j % n])))
            return NULL;
    return opt;
}

/* Coefficients are rounded once from double (a1 = (T)(1 - beta1), ...),
 * exactly as the recorded form's hg_scale does, so that both forms agree to
 * the last bit. */
#define DEFINE_UPDATE(T, SQRT)                                                                                     \
    static void update_##T(const hg_opt_config *c, int t, T *p, const T *g, T *s1, T *s2, int64_t len)             \
    {                                                                                                              \
        const T lr = (T)c->lr;                                                                                     \
        switch (c->kind) {                                                                                         \
        case HG_OPT_SGD:                                                                                           \
            for (int64_t i = 0; i < len; i++)                                                                      \
                p[i] -= lr * g[i];                                                                                 \
            break;                                                                                                 \
        case HG_OPT_MOMENTUM: {                                                                                    \
            const T mu = (T)c->momentum;                                                                           \
            for (int64_t i = 0; i < len; i++) {                                                                    \
                s1[i] = mu * s1[i] + g[i];                                                                         \
                p[i] -= lr * s1[i];                                                                                \
            }                                                                                                      \
            break;                                                                                                 \
        }                                                                                                          \
        case HG_OPT_ADAM: {                                                                                        \
            const T b1 = (T)c->beta1, b2 = (T)c->beta2, eps = (T)c->eps;                                       \
            const T a1 = (T)(1 - c->beta1), a2 = (T)(1 - c->beta2);                                           \
            const T c1 = (T)(1.0 / (1.0 - pow(c->beta1, t))), c2 = (T)(1.0 / (1.0 - pow(c->beta2, t)));           \
            for (int64_t i = 0; i < len; i++) {                                                                    \
                s1[i] = b1 * s1[i] + a1 * g[i];                                                                    \
                s2[i] = b2 * s2[i] + a2 * (g[i] * g[i]);                                                       \
                p[i] -= lr * ((s1[i] * c1) / (SQRT(s2[i] * c2) + eps));                                              \
            }                                                                                                      \
            break;                                                                                                 \
        }                                                                                                          \
        }                                                                                                          \
    }

DEFINE_UPDATE(float, sqrtf)
DEFINE_UPDATE(double, sqrt)

hg_status hg_optimizer_step(hg_optimizer *opt, hg_tensor *const *grads)
{
    if (!opt)
        return HG_ERR_NULL;
    hg_ctx *ctx = opt->ctx;
    if (opt->n > 0 && !grads)
        return hg_set_error(ctx, HG_ERR_NULL, "hg_optimizer_step: grads is NULL");
    /* Validate everything before changing anything. */
    for (int i = 0; i < opt->n; i++) {
        hg_status s = hg_tensor_validate(ctx, grads[i], "hg_optimizer_step (gradient)");
        if (s == HG_OK)
            s = hg_tensor_validate(ctx, opt->params[i], "hg_optimizer_step (parameter)");
        if (s != HG_OK)
            return s;
        if (!hg_same_shape(grads[i], opt->params[i]) || grads[i]->dtype != opt->params[i]->dtype) {
            char a[160], b[160];
            return hg_set_error(ctx, hg_same_shape(grads[i], opt->params[i]) ? HG_ERR_DTYPE : HG_ERR_SHAPE,
                                "hg_optimizer_step: gradient %d is %s %s, parameter is %s %s", i,
                                HG_SHAPE(grads[i], a), hg_dtype_name(grads[i]->dtype), HG_SHAPE(opt->params[i], b),
                                hg_dtype_name(opt->params[i]->dtype));
        }
    }
    int t = ++opt->steps;
    for (int i = 0; i < opt->n; i++) {
        hg_tensor *p = opt->params[i];
        void *s1 = opt->cfg.kind == HG_OPT_SGD ? NULL : opt->state[i]->data;
        void *s2 = opt->cfg.kind == HG_OPT_ADAM ? opt->state[opt->n + i]->data : NULL;
        if (p->dtype == HG_F32)
            update_float(&opt->cfg, t, p->data, grads[i]->data, s1, s2, p->numel);
        else
            update_double(&opt->cfg, t, p->data, grads[i]->data, s1, s2, p->numel);
    }
    return HG_OK;
}

int hg_optimizer_steps(const hg_optimizer *opt)
{
    return opt ? opt->steps : -1;
}

/* ---- differentiable form ------------------------------------------------ */

/* lr * x with lr a rank-0 tensor (recorded) or the constant from cfg. */
static hg_tensor *times_lr(hg_ctx *ctx, hg_tensor *lr, double lr_const, hg_tensor *x)
{
    return lr ? hg_mul(ctx, lr, x) : hg_scale(ctx, x, lr_const);
}

hg_status hg_opt_step(hg_ctx *ctx, const hg_opt_config *cfg, hg_tensor *lr, int t, int n, hg_tensor *const *params,
                      hg_tensor *const *grads, hg_tensor **state, hg_tensor **new_params)
{
    if (!ctx)
        return HG_ERR_NULL;
    hg_status s = check_config(ctx, "hg_opt_step", cfg, n);
    if (s != HG_OK)
        return s;
    if (n > 0 && (!params || !grads || !new_params || (cfg->kind != HG_OPT_SGD && !state)))
        return hg_set_error(ctx, HG_ERR_NULL, "hg_opt_step: params, grads, state or new_params is NULL");
    if (cfg->kind == HG_OPT_ADAM && t < 1)
        return hg_set_error(ctx, HG_ERR_RANGE, "hg_opt_step: Adam step number %d must be >= 1", t);
    if (lr) {
        if ((s = hg_tensor_validate(ctx, lr, "hg_opt_step (lr)")) != HG_OK)
            return s;
        if (lr->numel != 1 || lr->rank != 0 || (n > 0 && params[0] && lr->dtype != params[0]->dtype)) {
            char a[160];
            return hg_set_error(ctx, HG_ERR_SHAPE, "hg_opt_step: lr must be a rank-0 tensor of the params' dtype, got %s %s",
                                HG_SHAPE(lr, a), hg_dtype_name(lr->dtype));
        }
    }
    for (int i = 0; i < n; i++)
        new_params[i] = NULL;
    hg_opt_config c = resolved(cfg);
    hg_tensor *out[64];
    if (n > 64)
        return hg_set_error(ctx, HG_ERR_RANGE, "hg_opt_step: at most 64 parameter tensors per call, got %d", n);
    for (int i = 0; i < n; i++) {
        hg_tensor *p = params[i], *g = grads[i], *upd = NULL;
        switch (c.kind) {
        case HG_OPT_SGD: /* p' = p - lr g */
            upd = g;
            break;
        case HG_OPT_MOMENTUM: { /* u' = mu u + g; p' = p - lr u' */
            hg_tensor *u = state[i];
            hg_tensor *u1 = u ? hg_add(ctx, hg_scale(ctx, u, c.momentum), g) : hg_identity(ctx, g);
            state[i] = u1;
            upd = u1;
            break;
        }
        case HG_OPT_ADAM: { /* m' = b1 m + (1-b1) g; v' = b2 v + (1-b2) g^2; p' = p - lr m^/(sqrt(v^) + eps) */
            hg_tensor *m = state[i], *v = state[n + i];
            hg_tensor *gm = hg_scale(ctx, g, 1 - c.beta1), *gv = hg_scale(ctx, hg_mul(ctx, g, g), 1 - c.beta2);
            hg_tensor *m1 = m ? hg_add(ctx, hg_scale(ctx, m, c.beta1), gm) : gm;
            hg_tensor *v1 = v ? hg_add(ctx, hg_scale(ctx, v, c.beta2), gv) : gv;
            state[i] = m1;
            state[n + i] = v1;
            hg_tensor *mhat = hg_scale(ctx, m1, 1.0 / (1.0 - pow(c.beta1, t)));
            hg_tensor *vhat = hg_scale(ctx, v1, 1.0 / (1.0 - pow(c.beta2, t)));
            upd = hg_div(ctx, mhat, hg_add_scalar(ctx, hg_sqrt(ctx, vhat), c.eps));
            break;
        }
        }
        out[i] = hg_sub(ctx, p, times_lr(ctx, lr, c.lr, upd));
        if (!out[i])
            return hg_ctx_status(ctx) != HG_OK ? hg_ctx_status(ctx) : HG_ERR_INVALID;
    }
    for (int i = 0; i < n; i++)
        new_params[i] = out[i];
    return HG_OK;
}
