/* Optimizers: in-place training form and recorded, differentiable form. */
#include "internal.h"
#include "ops/optim_ops.h"
#include "simd.h"

#include <math.h>
#include <string.h>

/* The training form must round exactly like the recorded ops: no fused
 * multiply-adds (GCC does not contract in ISO C mode; clang would). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

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

/* Kind, count and values (after defaults): finite lr and momentum, Adam's
 * betas in [0, 1) and eps > 0. */
static hg_status check_config(hg_ctx *ctx, const char *who, const hg_opt_config *cfg, int n)
{
    if (!cfg)
        return hg_set_error(ctx, HG_ERR_NULL, "%s: config is NULL", who);
    if ((unsigned)cfg->kind > HG_OPT_ADAM)
        return hg_set_error(ctx, HG_ERR_INVALID, "%s: unknown optimizer kind %d", who, (int)cfg->kind);
    if (n < 0)
        return hg_set_error(ctx, HG_ERR_INVALID, "%s: negative parameter count %d", who, n);
    hg_opt_config c = resolved(cfg);
    if (!isfinite(c.lr) || !isfinite(c.momentum))
        return hg_set_error(ctx, HG_ERR_RANGE, "%s: lr %g and momentum %g must be finite", who, c.lr, c.momentum);
    if (c.kind == HG_OPT_ADAM &&
        !(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1 && c.eps > 0 && isfinite(c.eps)))
        return hg_set_error(ctx, HG_ERR_RANGE, "%s: Adam needs beta1, beta2 in [0, 1) and eps > 0, got %g, %g, %g", who,
                            c.beta1, c.beta2, c.eps);
    return HG_OK;
}

/* p and g (and s, when given) live float tensors of one shape and dtype. */
static hg_status check_pair(hg_ctx *ctx, const char *who, int i, const hg_tensor *p, const hg_tensor *g,
                            const hg_tensor *s)
{
    hg_status st;
    if ((st = hg_tensor_validate(ctx, p, who)) != HG_OK || (st = hg_tensor_validate(ctx, g, who)) != HG_OK ||
        (s && (st = hg_tensor_validate(ctx, s, who)) != HG_OK))
        return st;
    if (!hg_is_float(p->dtype))
        return hg_set_error(ctx, HG_ERR_DTYPE, "%s: parameter %d is %s, not f32/f64", who, i, hg_dtype_name(p->dtype));
    const hg_tensor *o = s && (!hg_same_shape(s, p) || s->dtype != p->dtype) ? s : g;
    if (hg_same_shape(o, p) && o->dtype == p->dtype)
        return HG_OK;
    char a[160], b[160];
    return hg_set_error(ctx, hg_same_shape(o, p) ? HG_ERR_DTYPE : HG_ERR_SHAPE,
                        "%s: %s %d is %s %s, parameter is %s %s", who, o == g ? "gradient" : "state", i, HG_SHAPE(o, a),
                        hg_dtype_name(o->dtype), HG_SHAPE(p, b), hg_dtype_name(p->dtype));
}

/* ---- training form ------------------------------------------------------ */

struct hg_optimizer {
    hg_object obj; /* HG_OPT_MAGIC while live: a rewind past it marks it dead */
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
    for (int i = 0; i < n; i++)
        if (check_pair(ctx, "hg_optimizer_new", i, params[i], params[i], NULL) != HG_OK)
            return NULL;
    int ns = hg_opt_state_count(cfg->kind, n);
    hg_optimizer *opt = hg_arena_alloc(ctx, sizeof *opt + (size_t)(n + ns) * sizeof(hg_tensor *));
    if (!opt) {
        hg_set_error(ctx, HG_ERR_OOM, "hg_optimizer_new: out of memory");
        return NULL;
    }
    hg_arena_register(ctx, &opt->obj, HG_OPT_MAGIC);
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

/* One loop per rule and dtype. Coefficients are rounded once from double
 * (a1 = (T)(1 - beta1), c1 = (T)(1/(1 - beta1^t)), ...) and the operations
 * run in the same order as the recorded form's ops (hg_scale rounds its
 * scalar the same way), so both forms agree to the last bit. */
/* The in-place loops are the training step's hot spot (HG_SIMD_CLONES). */
#define DEFINE_UPDATE(T, SQRT)                                                                                        \
    HG_SIMD_CLONES static void update_##T(const hg_opt_config *c, int t, T *p, const T *g, T *s1, T *s2, int64_t len) \
    {                                                                                                                 \
        const T lr = (T)c->lr;                                                                                        \
        switch (c->kind) {                                                                                            \
        case HG_OPT_SGD: /* p' = p - lr g */                                                                          \
            for (int64_t i = 0; i < len; i++)                                                                         \
                p[i] -= lr * g[i];                                                                                    \
            break;                                                                                                    \
        case HG_OPT_MOMENTUM: { /* u' = mu u + g; p' = p - lr u' */                                                   \
            const T mu = (T)c->momentum;                                                                              \
            for (int64_t i = 0; i < len; i++) {                                                                       \
                s1[i] = mu * s1[i] + g[i];                                                                            \
                p[i] -= lr * s1[i];                                                                                   \
            }                                                                                                         \
            break;                                                                                                    \
        }                                                                                                             \
        case HG_OPT_ADAM: { /* m' = b1 m + (1-b1) g; v' = b2 v + (1-b2) g^2; p' = p - lr m^/(sqrt(v^) + eps) */       \
            const T b1 = (T)c->beta1, b2 = (T)c->beta2, eps = (T)c->eps;                                              \
            const T a1 = (T)(1 - c->beta1), a2 = (T)(1 - c->beta2);                                                   \
            const T c1 = (T)(1.0 / (1.0 - pow(c->beta1, t))), c2 = (T)(1.0 / (1.0 - pow(c->beta2, t)));               \
            for (int64_t i = 0; i < len; i++) {                                                                       \
                s1[i] = b1 * s1[i] + a1 * g[i];                                                                       \
                s2[i] = b2 * s2[i] + a2 * (g[i] * g[i]);                                                              \
                p[i] -= lr * ((s1[i] * c1) / (SQRT(s2[i] * c2) + eps));                                               \
            }                                                                                                         \
            break;                                                                                                    \
        }                                                                                                             \
        }                                                                                                             \
    }

DEFINE_UPDATE(float, sqrtf)
DEFINE_UPDATE(double, sqrt)

hg_status hg_optimizer_step(hg_optimizer *opt, hg_tensor *const *grads)
{
    if (!opt)
        return HG_ERR_NULL;
    /* Rewound past: its memory may hold anything now, ctx included, so
     * nothing is recorded (like a stale tensor given to hg_tensor_check). */
    if (opt->obj.magic != HG_OPT_MAGIC)
        return HG_ERR_STALE;
    hg_ctx *ctx = opt->ctx;
    const char *who = "hg_optimizer_step";
    if (hg_ctx_check_thread(ctx, who) != HG_OK)
        return HG_ERR_THREAD;
    if (opt->n > 0 && !grads)
        return hg_set_error(ctx, HG_ERR_NULL, "%s: grads is NULL", who);
    /* Validate everything before changing anything. */
    bool two = opt->cfg.kind == HG_OPT_ADAM;
    for (int i = 0; i < opt->n; i++) {
        hg_tensor *s1 = opt->cfg.kind == HG_OPT_SGD ? NULL : opt->state[i];
        hg_status s = check_pair(ctx, who, i, opt->params[i], grads[i], s1);
        if (s == HG_OK && two)
            s = check_pair(ctx, who, i, opt->params[i], grads[i], opt->state[opt->n + i]);
        if (s != HG_OK)
            return s;
    }
    int t = ++opt->steps;
    for (int i = 0; i < opt->n; i++) {
        hg_tensor *p = opt->params[i];
        hg_tensor_bump(p); /* in place: a tape that saved p must not use it */
        void *s1 = opt->cfg.kind == HG_OPT_SGD ? NULL : opt->state[i]->data;
        void *s2 = two ? opt->state[opt->n + i]->data : NULL;
        if (p->dtype == HG_F32)
            update_float(&opt->cfg, t, p->data, grads[i]->data, s1, s2, p->numel);
        else
            update_double(&opt->cfg, t, p->data, grads[i]->data, s1, s2, p->numel);
    }
    return HG_OK;
}

int hg_optimizer_steps(const hg_optimizer *opt)
{
    return opt && opt->obj.magic == HG_OPT_MAGIC ? opt->steps : -1;
}

/* Warm state: copies out in hg_opt_step's order, copies in after checks. */
hg_status hg_optimizer_export(const hg_optimizer *opt, hg_ctx *ctx, int *steps, hg_tensor **state)
{
    if (!opt || !ctx)
        return HG_ERR_NULL;
    const char *who = "hg_optimizer_export";
    int ns = hg_opt_state_count(opt->cfg.kind, opt->n);
    if (!steps || (ns > 0 && !state))
        return hg_set_error(ctx, HG_ERR_NULL, "%s: %s is NULL", who, steps ? "state" : "steps");
    for (int j = 0; j < ns; j++)
        state[j] = NULL;
    for (int j = 0; j < ns; j++) {
        hg_status s = hg_tensor_validate(opt->ctx, opt->state[j], who);
        if (s != HG_OK)
            return s;
        hg_tensor *c = hg_tensor_clone(ctx, opt->state[j]);
        if (!c) {
            for (int i = 0; i < j; i++)
                state[i] = NULL;
            return hg_ctx_status(ctx) != HG_OK ? hg_ctx_status(ctx)
                                               : hg_set_error(ctx, HG_ERR_OOM, "%s: out of memory", who);
        }
        state[j] = c;
    }
    *steps = opt->steps;
    return HG_OK;
}

hg_status hg_optimizer_import(hg_optimizer *opt, int steps, hg_tensor *const *state)
{
    if (!opt)
        return HG_ERR_NULL;
    hg_ctx *ctx = opt->ctx;
    const char *who = "hg_optimizer_import";
    int ns = hg_opt_state_count(opt->cfg.kind, opt->n);
    if (steps < 0)
        return hg_set_error(ctx, HG_ERR_RANGE, "%s: negative step count %d", who, steps);
    if (ns > 0 && !state)
        return hg_set_error(ctx, HG_ERR_NULL, "%s: state is NULL", who);
    for (int j = 0; j < ns; j++) {
        hg_tensor *p = opt->params[j % opt->n];
        hg_status s = check_pair(ctx, who, j % opt->n, p, p, state[j] ? state[j] : p);
        if (s == HG_OK)
            s = hg_tensor_validate(ctx, opt->state[j], who);
        if (s != HG_OK)
            return s;
    }
    for (int j = 0; j < ns; j++) {
        hg_tensor *d = opt->state[j];
        size_t bytes = (size_t)d->numel * hg_dtype_size(d->dtype);
        if (!state[j])
            memset(d->data, 0, bytes);
        else if (state[j] != d)
            memcpy(d->data, state[j]->data, bytes);
    }
    opt->steps = steps;
    return HG_OK;
}

/* ---- differentiable form ------------------------------------------------ */

/* Adam's bias corrections c1 = 1/(1 - b1^t), c2 = 1/(1 - b2^t). */
static double bias_correction(double beta, int t)
{
    return 1.0 / (1.0 - pow(beta, t));
}

/* One parameter's step with a constant lr, from the fused ops (one pass
 * each; same IEEE operations as the composed form and the training form):
 *   SGD:      p' = lincomb(p, g; 1, -lr)
 *   momentum: u' = lincomb(u, g; mu, 1) (u = 0: u' = g); p' = lincomb(p, u'; 1, -lr)
 *   Adam:     m' = lincomb(m, g; b1, 1-b1) (m = 0: (1-b1) g);
 *             v' = lincomb_prod(v, g, g; b2, 1-b2) (v = 0: prod(g, g; 1-b2));
 *             p' = adam_step(p, g, m, v; m', v') (its vjp for g one pass)
 * New state goes to st[i] (and st[n + i]). */
static hg_tensor *fused_step(hg_ctx *ctx, const hg_opt_config *c, int t, int n, int i, hg_tensor *p, hg_tensor *g,
                             hg_tensor *const *state, hg_tensor **st)
{
    switch (c->kind) {
    case HG_OPT_SGD: return hg_opt_lincomb(ctx, p, g, 1.0, -c->lr);
    case HG_OPT_MOMENTUM: {
        hg_tensor *u = state[i];
        st[i] = u ? hg_opt_lincomb(ctx, u, g, c->momentum, 1.0) : hg_identity(ctx, g);
        return hg_opt_lincomb(ctx, p, st[i], 1.0, -c->lr);
    }
    case HG_OPT_ADAM: {
        /* Where v^ is exactly 0 (g exactly 0 so far) the update's derivative
         * uses sqrt'(0) = 0: d(upd) = dm^/eps, the true one (adam_dv). */
        hg_tensor *m = state[i], *v = state[n + i];
        hg_tensor *m1 = st[i] = m ? hg_opt_lincomb(ctx, m, g, c->beta1, 1 - c->beta1) : hg_scale(ctx, g, 1 - c->beta1);
        hg_tensor *v1 = st[n + i] = v ? hg_opt_lincomb_prod(ctx, v, g, g, c->beta2, 1 - c->beta2)
                                      : hg_opt_prod(ctx, g, g, 1 - c->beta2);
        const double coef[8] = {c->lr,
                                bias_correction(c->beta1, t),
                                bias_correction(c->beta2, t),
                                c->eps,
                                c->beta1,
                                1 - c->beta1,
                                c->beta2,
                                1 - c->beta2};
        /* Both moments or neither (state entries may be NULL independently). */
        if (!m != !v) {
            m = m ? m : hg_zeros_like(ctx, p);
            v = v ? v : hg_zeros_like(ctx, p);
        }
        return hg_opt_adam_step(ctx, p, g, m, v, m1, v1, coef);
    }
    }
    return NULL;
}

/* The same step composed from elementwise ops, for a recorded lr tensor. */
static hg_tensor *composed_step(hg_ctx *ctx, const hg_opt_config *c, hg_tensor *lr, int t, int n, int i, hg_tensor *p,
                                hg_tensor *g, hg_tensor *const *state, hg_tensor **st)
{
    hg_tensor *upd = NULL;
    switch (c->kind) {
    case HG_OPT_SGD: /* p' = p - lr g */ upd = g; break;
    case HG_OPT_MOMENTUM: { /* u' = mu u + g (u = 0: u' = g); p' = p - lr u' */
        hg_tensor *u = state[i];
        upd = st[i] = u ? hg_add(ctx, hg_scale(ctx, u, c->momentum), g) : hg_identity(ctx, g);
        break;
    }
    case HG_OPT_ADAM: {
        /* m' = b1 m + (1-b1) g; v' = b2 v + (1-b2) g^2;
         * p' = p - lr m^ / (sqrt(v^) + eps), m^ = m' c1, v^ = v' c2, with
         * hg_sqrt's derivative 0 at 0 (see fused_step). */
        hg_tensor *m = state[i], *v = state[n + i];
        hg_tensor *gm = hg_scale(ctx, g, 1 - c->beta1), *gv = hg_scale(ctx, hg_mul(ctx, g, g), 1 - c->beta2);
        hg_tensor *m1 = st[i] = m ? hg_add(ctx, hg_scale(ctx, m, c->beta1), gm) : gm;
        hg_tensor *v1 = st[n + i] = v ? hg_add(ctx, hg_scale(ctx, v, c->beta2), gv) : gv;
        hg_tensor *mhat = hg_scale(ctx, m1, bias_correction(c->beta1, t));
        hg_tensor *vhat = hg_scale(ctx, v1, bias_correction(c->beta2, t));
        upd = hg_div(ctx, mhat, hg_add_scalar(ctx, hg_sqrt(ctx, vhat), c->eps));
        break;
    }
    }
    return hg_sub(ctx, p, hg_mul(ctx, lr, upd));
}

hg_status hg_opt_step(hg_ctx *ctx, const hg_opt_config *cfg, hg_tensor *lr, int t, int n, hg_tensor *const *params,
                      hg_tensor *const *grads, hg_tensor **state, hg_tensor **new_params)
{
    if (!ctx)
        return HG_ERR_NULL;
    const char *who = "hg_opt_step";
    hg_status s = check_config(ctx, who, cfg, n);
    if (s != HG_OK)
        return s;
    if (n > 0 && (!params || !grads || !new_params || (cfg->kind != HG_OPT_SGD && !state)))
        return hg_set_error(ctx, HG_ERR_NULL, "%s: params, grads, state or new_params is NULL", who);
    for (int i = 0; i < n; i++)
        new_params[i] = NULL;
    if (cfg->kind == HG_OPT_ADAM && t < 1)
        return hg_set_error(ctx, HG_ERR_RANGE, "%s: Adam step number %d must be >= 1", who, t);
    int ns = hg_opt_state_count(cfg->kind, n);
    for (int i = 0; i < n; i++) {
        if ((s = check_pair(ctx, who, i, params[i], grads[i], NULL)) != HG_OK)
            return s;
        for (int j = i; j < ns; j += n)
            if (state[j] && (s = check_pair(ctx, who, i, params[i], params[i], state[j])) != HG_OK)
                return s;
    }
    if (lr) {
        if ((s = hg_tensor_validate(ctx, lr, "hg_opt_step (lr)")) != HG_OK)
            return s;
        if (lr->rank != 0 || (n > 0 && lr->dtype != params[0]->dtype) || !hg_is_float(lr->dtype)) {
            char a[160];
            return hg_set_error(ctx, lr->rank != 0 ? HG_ERR_SHAPE : HG_ERR_DTYPE,
                                "%s: lr must be a rank-0 tensor of the params' dtype (%s), got %s %s", who,
                                n > 0 ? hg_dtype_name(params[0]->dtype) : "f32/f64", HG_SHAPE(lr, a),
                                hg_dtype_name(lr->dtype));
        }
    }
    /* Results go to scratch first: on error neither state nor new_params
     * changes (new_params stays NULL). */
    hg_tensor **out = hg_arena_alloc(ctx, (size_t)(n + ns + 1) * sizeof *out);
    if (!out)
        return hg_set_error(ctx, HG_ERR_OOM, "%s: out of memory", who);
    hg_tensor **st = out + n;
    hg_opt_config c = resolved(cfg);
    for (int i = 0; i < n; i++) {
        out[i] = lr ? composed_step(ctx, &c, lr, t, n, i, params[i], grads[i], state, st)
                    : fused_step(ctx, &c, t, n, i, params[i], grads[i], state, st);
        if (!out[i])
            return hg_ctx_status(ctx) != HG_OK ? hg_ctx_status(ctx)
                                               : hg_set_error(ctx, HG_ERR_INVALID, "%s: step %d failed", who, i);
    }
    for (int j = 0; j < ns; j++)
        state[j] = st[j];
    for (int i = 0; i < n; i++)
        new_params[i] = out[i];
    return HG_OK;
}

hg_status hg_opt_gradient_step(hg_tape *tape, hg_tensor *target, const hg_opt_config *cfg, hg_tensor *lr, int t, int n,
                               hg_tensor *const *params, hg_tensor **state, hg_tensor **new_params)
{
    if (new_params)
        for (int i = 0; i < n; i++)
            new_params[i] = NULL;
    if (!tape)
        return HG_ERR_NULL;
    if (tape->obj.magic != HG_TAPE_MAGIC)
        return HG_ERR_STALE;
    hg_ctx *ctx = tape->ctx;
    const char *who = "hg_opt_gradient_step";
    hg_status s = check_config(ctx, who, cfg, n);
    if (s != HG_OK)
        return s;
    if (n > 0 && (!params || !new_params || (cfg->kind != HG_OPT_SGD && !state)))
        return hg_set_error(ctx, HG_ERR_NULL, "%s: params, state or new_params is NULL", who);
    if (cfg->kind == HG_OPT_ADAM && t < 1) /* refused before the tape's gradient is taken */
        return hg_set_error(ctx, HG_ERR_RANGE, "%s: Adam step number %d must be >= 1", who, t);
    for (int i = 0; i < n; i++)
        if ((s = check_pair(ctx, who, i, params[i], params[i], NULL)) != HG_OK)
            return s;
    /* SGD with a constant lr: p' = p + (-lr) g accumulated by the sweep
     * itself, a product gradient as one gemm onto a copy of p. */
    if (cfg->kind == HG_OPT_SGD && !lr)
        return hg_gradient_axpy(tape, target, n, params, params, -cfg->lr, new_params);
    hg_tensor **grads = n > 0 ? hg_arena_alloc(ctx, (size_t)n * sizeof *grads) : NULL;
    if (n > 0 && !grads)
        return hg_set_error(ctx, HG_ERR_OOM, "%s: out of memory", who);
    if ((s = hg_gradient(tape, target, n, params, NULL, grads)) != HG_OK)
        return s;
    return hg_opt_step(ctx, cfg, lr, t, n, params, grads, state, new_params);
}
