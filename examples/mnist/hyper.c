/* K unrolled optimizer steps under an outer tape: dE_val/dx_train is the
 * outer tape's gradient through the inner gradients (double backward). */
#include "hyper.h"

#include <math.h>
#include <string.h>

hg_tensor *hyper_val_loss_of(hg_ctx *ctx, const hg_mlp *spec, hg_tensor *const *params, hg_tensor *x_val,
                             hg_tensor *y_val, val_loss_kind loss)
{
    hg_tensor *logits = hg_mlp_forward(ctx, spec, params, x_val);
    if (loss == VAL_LOSS_MSE) {
        /* The original question's loss: squared error between the softmax
         * probabilities and the one-hot labels. */
        hg_tensor *probs = hg_softmax(ctx, logits, 1);
        int64_t classes = spec->sizes[spec->n_layers];
        return hg_mse(ctx, probs, hg_one_hot(ctx, y_val, classes, hg_tensor_dtype(logits)));
    }
    return hg_softmax_cross_entropy(ctx, logits, y_val);
}

hg_status hyper_run(hg_ctx *ctx, const hyper_problem *p, bool want_dx, bool want_dw, hyper_result *out)
{
    memset(out, 0, sizeof *out);
    int np = hg_mlp_param_count(&p->spec);
    if (np < 0)
        return hg_ctx_status(ctx) != HG_OK ? hg_ctx_status(ctx) : HG_ERR_INVALID;
    hg_dtype dt = hg_tensor_dtype(p->x_train);
    int64_t n = hg_tensor_dim(p->x_train, 0);
    hg_tensor *w = p->w ? p->w : want_dw ? hg_ones(ctx, dt, 1, &n) : NULL; /* per-sample loss weights */
    hg_tape *outer = hg_tape_begin(ctx, 0);
    if (!outer || (want_dw && !w))
        return hg_ctx_status(ctx);
    if (want_dx)
        hg_watch(outer, p->x_train);
    if (want_dw)
        hg_watch(outer, w);
    hg_tensor *params[HYPER_MAX_PARAMS], *state[2 * HYPER_MAX_PARAMS];
    memcpy(params, p->params, sizeof params);
    memcpy(state, p->state, sizeof state);
    for (int k = 1; k <= p->steps; k++) {
        hg_tape *inner = hg_tape_begin(ctx, 0);
        hg_watch_n(inner, np, params);
        hg_tensor *logits = hg_mlp_forward(ctx, &p->spec, params, p->x_train);
        hg_tensor *loss = w ? hg_mean(ctx, hg_mul(ctx, w, hg_softmax_cross_entropy_each(ctx, logits, p->y_train)))
                            : hg_softmax_cross_entropy(ctx, logits, p->y_train);
        hg_tape_end(inner);
        /* hg_gradient + hg_opt_step in one call: the gradients are never
         * handed out, so SGD's weight gradients need not be stored. */
        hg_tensor *next[HYPER_MAX_PARAMS];
        if (hg_opt_gradient_step(inner, loss, &p->opt, NULL, p->t0 + k, np, params, state, next) != HG_OK) {
            hg_tape_end(outer);
            return hg_ctx_status(ctx);
        }
        memcpy(params, next, (size_t)np * sizeof params[0]);
    }
    hg_tensor *E = hyper_val_loss_of(ctx, &p->spec, params, p->x_val, p->y_val, p->loss);
    hg_tape_end(outer);
    if (!E)
        return hg_ctx_status(ctx);
    out->val_loss = hg_item(E);
    out->forward_bytes = hg_ctx_get_stats(ctx).bytes_in_use;
    hg_tensor *sources[2];
    int ns = 0;
    if (want_dx)
        sources[ns++] = p->x_train;
    if (want_dw)
        sources[ns++] = w;
    hg_tensor *g[2] = {NULL, NULL};
    if (ns && hg_gradient(outer, E, ns, sources, NULL, g) != HG_OK)
        return hg_ctx_status(ctx);
    out->dx = want_dx ? g[0] : NULL;
    out->dw = want_dw ? g[want_dx ? 1 : 0] : NULL;
    return hg_ctx_status(ctx);
}

/* A constant copy of t (possibly from another ctx) in ctx, converted to
 * dtype (labels stay i32). */
hg_tensor *hyper_copy_as(hg_ctx *ctx, hg_tensor *t, hg_dtype dtype)
{
    if (!t)
        return NULL;
    hg_dtype from = hg_tensor_dtype(t);
    hg_tensor *c = hg_tensor_new(ctx, from == HG_I32 ? HG_I32 : dtype, hg_tensor_rank(t), hg_tensor_shape(t));
    if (!c)
        return NULL;
    int64_t n = hg_tensor_numel(t);
    if (from == HG_I32 || from == dtype) {
        memcpy(hg_tensor_data(c), hg_tensor_cdata(t), (size_t)n * hg_dtype_size(from));
    } else if (dtype == HG_F64) {
        const float *s = hg_tensor_cdata(t);
        double *d = hg_tensor_data(c);
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i];
    } else {
        const double *s = hg_tensor_cdata(t);
        float *d = hg_tensor_data(c);
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)s[i];
    }
    return c;
}

hg_status hyper_convert(hg_ctx *ctx, const hyper_problem *p, hg_dtype dtype, hyper_problem *out)
{
    *out = *p;
    for (int i = 0; i < HYPER_MAX_PARAMS; i++)
        out->params[i] = hyper_copy_as(ctx, p->params[i], dtype);
    for (int i = 0; i < 2 * HYPER_MAX_PARAMS; i++)
        out->state[i] = hyper_copy_as(ctx, p->state[i], dtype);
    out->x_train = hyper_copy_as(ctx, p->x_train, dtype);
    out->x_val = hyper_copy_as(ctx, p->x_val, dtype);
    out->w = hyper_copy_as(ctx, p->w, dtype);
    out->y_train = hyper_copy_as(ctx, p->y_train, dtype);
    out->y_val = hyper_copy_as(ctx, p->y_val, dtype);
    return hg_ctx_status(ctx);
}

double hyper_val_loss(void *user)
{
    const hyper_target *t = user;
    hg_mark m = hg_ctx_mark(t->ctx);
    hyper_result r;
    double e = hyper_run(t->ctx, t->p, false, false, &r) == HG_OK ? r.val_loss : NAN;
    hg_ctx_rewind(t->ctx, m);
    return e;
}
