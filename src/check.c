/* Gradient checking to any order against central finite differences.
 *
 * s0(x) = <u, f(x)>, s_k(x) = <v_k, grad_x s_{k-1}(x)>; order k compares
 * grad_x s_{k-1} (k nested tapes) with central differences of s_{k-1}. */
#include "internal.h"

#include <math.h>
#include <string.h>

#define MAX_ORDER 8

typedef struct checker {
    hg_ctx *ctx;
    hg_fn f;
    int n;
    hg_tensor *const *inputs;
    void *user;
    hg_tensor *u;                              /* direction for the output */
    hg_tensor *v[MAX_ORDER][HG_MAX_OP_INPUTS]; /* directions per order and input */
    hg_tensor *inner[HG_MAX_OP_INPUTS];        /* float inputs */
    int n_float;
} checker;

static hg_tensor *dot(hg_ctx *ctx, hg_tensor *a, hg_tensor *b)
{
    return hg_sum(ctx, hg_mul(ctx, a, b));
}

/* End every tape of `tapes` that is still active, innermost first. */
static void end_open_tapes(hg_tape **tapes, int n)
{
    for (int t = n - 1; t >= 0; t--)
        if (tapes[t] && !tapes[t]->ended)
            hg_tape_end(tapes[t]);
}

/* s_k into *value; with grads != NULL also grad_x s_k (one more tape). */
static hg_status eval_s(checker *c, int k, hg_tensor **value, hg_tensor **grads)
{
    hg_ctx *ctx = c->ctx;
    int n_tapes = k + (grads ? 1 : 0);
    hg_tape *tapes[MAX_ORDER + 1] = {0};
    hg_status s = HG_OK;
    for (int t = 0; t < n_tapes && s == HG_OK; t++) {
        /* A derivative that is constant in x (order above the degree of f)
         * is unrecorded on the next tape: its derivative is zero. */
        tapes[t] = hg_tape_begin(ctx, HG_TAPE_UNRECORDED_TARGET_ZERO);
        s = tapes[t] ? hg_watch_n(tapes[t], c->n_float, c->inner) : hg_ctx_status(ctx);
    }
    hg_tensor *y = s == HG_OK ? c->f(ctx, c->inputs, c->user) : NULL;
    hg_tensor *sk = y ? dot(ctx, c->u, y) : NULL;
    /* Peel one tape per order: s_level = <v_level, grad s_{level-1}>. */
    for (int level = 1; level <= k && sk; level++) {
        hg_tape *tape = tapes[n_tapes - level];
        hg_tensor *g[HG_MAX_OP_INPUTS];
        if (hg_tape_end(tape) != HG_OK || hg_gradient(tape, sk, c->n_float, c->inner, NULL, g) != HG_OK) {
            sk = NULL;
            break;
        }
        hg_tensor *acc = NULL;
        for (int i = 0; i < c->n_float && (i == 0 || acc); i++) {
            hg_tensor *d = dot(ctx, c->v[level][i], g[i]);
            if (!d) { /* a failed term must not be dropped from the sum */
                acc = NULL;
                break;
            }
            acc = acc ? hg_add(ctx, acc, d) : d;
        }
        /* A failed term (acc NULL) must fail the check, not drop the term. */
        sk = acc;
    }
    if (sk && grads &&
        (hg_tape_end(tapes[0]) != HG_OK || hg_gradient(tapes[0], sk, c->n_float, c->inner, NULL, grads) != HG_OK))
        sk = NULL;
    end_open_tapes(tapes, n_tapes);
    *value = sk;
    if (sk)
        return HG_OK;
    return hg_ctx_status(ctx) != HG_OK ? hg_ctx_status(ctx)
                                       : hg_set_error(ctx, HG_ERR_INVALID, "hg_gradcheck: f returned NULL");
}

static double value_of_s(checker *c, int k, hg_status *st)
{
    hg_mark m = hg_ctx_mark(c->ctx);
    hg_tensor *v;
    *st = eval_s(c, k, &v, NULL);
    double value = *st == HG_OK ? hg_item(v) : NAN;
    hg_ctx_rewind(c->ctx, m);
    return value;
}

hg_status hg_gradcheck(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, const hg_check_options *opts,
                       hg_check_report *report)
{
    if (!ctx)
        return HG_ERR_NULL;
    if (!f || !report || (n > 0 && !inputs) || n < 0)
        return hg_set_error(ctx, HG_ERR_NULL, "hg_gradcheck: f, inputs or report is NULL");
    memset(report, 0, sizeof *report);
    int order = opts && opts->order > 0 ? opts->order : 1;
    double eps = opts && opts->eps > 0 ? opts->eps : 1e-6;
    double atol = opts && opts->atol > 0 ? opts->atol : 1e-7;
    double rtol = opts && opts->rtol > 0 ? opts->rtol : 1e-5;
    uint64_t seed = opts && opts->seed ? opts->seed : 1;
    if (order > MAX_ORDER)
        return hg_set_error(ctx, HG_ERR_RANGE, "hg_gradcheck: order %d above %d", order, MAX_ORDER);
    checker c;
    memset(&c, 0, sizeof c);
    c.ctx = ctx;
    c.f = f;
    c.n = n;
    c.inputs = inputs;
    c.user = user;
    for (int i = 0; i < n; i++) {
        hg_status s = hg_tensor_validate(ctx, inputs[i], "hg_gradcheck");
        if (s != HG_OK)
            return s;
        if (inputs[i]->dtype == HG_F32)
            return hg_set_error(ctx, HG_ERR_DTYPE, "hg_gradcheck: input %d is f32; check in f64", i);
        if (inputs[i]->dtype == HG_F64) {
            if (c.n_float == HG_MAX_OP_INPUTS)
                return hg_set_error(ctx, HG_ERR_RANGE, "hg_gradcheck: more than %d float inputs", HG_MAX_OP_INPUTS);
            c.inner[c.n_float++] = inputs[i];
        }
    }
    hg_mark entry = hg_ctx_mark(ctx);
    hg_rng rng;
    hg_rng_seed(&rng, seed);
    hg_status s = HG_OK;
    hg_tensor *y = f(ctx, inputs, user);
    if (!y) {
        s = hg_ctx_status(ctx) != HG_OK ? hg_ctx_status(ctx) : HG_ERR_INVALID;
        goto done;
    }
    c.u = hg_rand_normal(ctx, &rng, y->dtype, y->rank, y->shape, 0.0, 1.0);
    for (int k = 1; k < order; k++)
        for (int i = 0; i < c.n_float; i++)
            c.v[k][i] = hg_rand_normal(ctx, &rng, HG_F64, c.inner[i]->rank, c.inner[i]->shape, 0.0, 1.0);
    if ((s = hg_ctx_status(ctx)) != HG_OK)
        goto done;
    report->passed = 1;
    double worst = -1.0;
    for (int k = 0; k < order; k++) {
        hg_mark m = hg_ctx_mark(ctx);
        hg_tensor *g[HG_MAX_OP_INPUTS], *sk;
        if ((s = eval_s(&c, k, &sk, g)) != HG_OK)
            goto done;
        for (int i = 0; i < c.n_float; i++) {
            hg_tensor *x = c.inner[i];
            double *xd = x->data;
            for (int64_t j = 0; j < x->numel; j++) {
                double analytic = hg_get(g[i], j);
                double saved = xd[j];
                xd[j] = saved + eps;
                double plus = value_of_s(&c, k, &s);
                xd[j] = saved - eps;
                double minus = s == HG_OK ? value_of_s(&c, k, &s) : NAN;
                xd[j] = saved;
                if (s != HG_OK)
                    goto done;
                double numeric = (plus - minus) / (2 * eps);
                double err = fabs(analytic - numeric);
                double allowed = atol + rtol * fabs(numeric);
                double ratio = err / allowed;
                if (!(err <= allowed))
                    report->passed = 0;
                if (err > report->max_abs_error[k] || isnan(err))
                    report->max_abs_error[k] = err;
                if (ratio > worst || isnan(ratio)) {
                    worst = isnan(ratio) ? INFINITY : ratio;
                    report->worst_order = k + 1;
                    report->worst_input = i;
                    report->worst_index = j;
                    report->analytic = analytic;
                    report->numeric = numeric;
                    report->abs_error = err;
                    report->rel_error = err / (fabs(numeric) > 1e-12 ? fabs(numeric) : 1e-12);
                }
            }
        }
        hg_ctx_rewind(ctx, m);
    }
done:
    hg_ctx_rewind(ctx, entry);
    return s;
}
