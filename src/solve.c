/* Matrix-free solves of (A + lambda I) x = b: conjugate gradient and LiSSA.
 *
 * The iteration vectors are f64 arrays in the arena (allocated once); each
 * callback call runs between a mark and a rewind, so a solve of any length
 * uses a bounded arena. */
#include "internal.h"

#include <limits.h>
#include <math.h>
#include <string.h>

typedef struct solver {
    hg_ctx *ctx;
    const char *who;
    hg_apply_fn apply;
    void *user;
    const hg_tensor *b;
    hg_tensor *v; /* b's shape and dtype: what the callback sees */
    int64_t n;
    double lambda;
    int calls;
} solver;

static void load(const hg_tensor *t, double *out)
{
    if (t->dtype == HG_F64) {
        memcpy(out, t->data, (size_t)t->numel * sizeof(double));
    } else {
        const float *s = t->data;
        for (int64_t i = 0; i < t->numel; i++)
            out[i] = s[i];
    }
}

static void store(hg_tensor *t, const double *in)
{
    if (t->dtype == HG_F64) {
        memcpy(t->data, in, (size_t)t->numel * sizeof(double));
    } else {
        float *d = t->data;
        for (int64_t i = 0; i < t->numel; i++)
            d[i] = (float)in[i];
    }
}

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* out = (A + lambda I) p, the callback's tensors released before returning. */
static hg_status apply_damped(solver *s, const double *p, double *out)
{
    hg_ctx *ctx = s->ctx;
    store(s->v, p);
    hg_status before = hg_ctx_status(ctx);
    hg_mark m = hg_ctx_mark(ctx);
    hg_tensor *Av = NULL;
    int iter = s->calls++;
    hg_status st = s->apply(ctx, s->v, &Av, s->user);
    char want[64], got[64];
    if (st != HG_OK) {
        hg_set_error(ctx, st, "%s: the apply callback failed with %s at iteration %d", s->who, hg_status_name(st),
                     iter);
    } else if (before == HG_OK && hg_ctx_status(ctx) != HG_OK) {
        st = hg_ctx_status(ctx); /* the callback returned HG_OK over an error on the ctx */
    } else if (!Av) {
        st = hg_set_error(ctx, HG_ERR_NULL, "%s: the apply callback returned HG_OK and no tensor at iteration %d",
                          s->who, iter);
    } else if ((st = hg_tensor_validate(ctx, Av, s->who)) != HG_OK) {
        /* message set */
    } else if (Av->dtype != s->b->dtype) {
        st = hg_set_error(ctx, HG_ERR_DTYPE, "%s: the apply callback returned %s for a vector %s at iteration %d",
                          s->who, hg_tensor_describe(Av, got, sizeof got), hg_tensor_describe(s->b, want, sizeof want),
                          iter);
    } else if (Av->rank != s->b->rank || memcmp(Av->shape, s->b->shape, (size_t)Av->rank * sizeof(int64_t)) != 0) {
        st = hg_set_error(ctx, HG_ERR_SHAPE, "%s: the apply callback returned %s for a vector %s at iteration %d",
                          s->who, hg_tensor_describe(Av, got, sizeof got), hg_tensor_describe(s->b, want, sizeof want),
                          iter);
    } else {
        load(Av, out);
        for (int64_t i = 0; i < s->n; i++)
            out[i] += s->lambda * p[i];
    }
    hg_status rs = hg_ctx_rewind(ctx, m);
    if (st == HG_OK && rs != HG_OK)
        st = hg_set_error(ctx, rs,
                          "%s: cannot release the callback's tensors at iteration %d (%s: a tape it began "
                          "is still active?)",
                          s->who, iter, hg_status_name(rs));
    return st;
}

/* Checks the arguments and allocates the result (returned) and `nvec` work
 * vectors of n doubles after it; mark0 is the position before the result. */
static hg_tensor *setup(solver *s, hg_ctx *ctx, const char *who, hg_apply_fn apply, void *user, const hg_tensor *b,
                        const hg_solve_options *o, int nvec, double **vec, hg_mark *mark0, hg_mark *mark1)
{
    memset(s, 0, sizeof *s);
    s->ctx = ctx;
    s->who = who;
    s->apply = apply;
    s->user = user;
    s->b = b;
    if (!apply) {
        hg_set_error(ctx, HG_ERR_NULL, "%s: apply callback is NULL", who);
        return NULL;
    }
    if (hg_tensor_validate(ctx, b, who) != HG_OK)
        return NULL;
    if (!hg_is_float(b->dtype)) {
        hg_set_error(ctx, HG_ERR_DTYPE, "%s: b is %s; f32 or f64 expected", who, hg_dtype_name(b->dtype));
        return NULL;
    }
    if (!isfinite(o->damping) || !isfinite(o->tol) || o->tol < 0 || o->max_iter < 0) {
        hg_set_error(ctx, HG_ERR_RANGE,
                     "%s: options out of range (damping %g must be finite, tol %g >= 0, "
                     "max_iter %d >= 0)",
                     who, o->damping, o->tol, o->max_iter);
        return NULL;
    }
    s->n = b->numel;
    s->lambda = o->damping;
    *mark0 = hg_ctx_mark(ctx);
    hg_tensor *x = hg_tensor_alloc(ctx, who, b->dtype, b->rank, b->shape);
    *mark1 = hg_ctx_mark(ctx);
    s->v = x ? hg_tensor_alloc(ctx, who, b->dtype, b->rank, b->shape) : NULL;
    for (int i = 0; i < nvec; i++) {
        hg_tensor *t = s->v ? hg_tensor_alloc(ctx, who, HG_F64, 1, &s->n) : NULL;
        vec[i] = t ? t->data : NULL;
        if (!t) {
            hg_ctx_rewind(ctx, *mark0);
            return NULL;
        }
    }
    if (!s->v) {
        hg_ctx_rewind(ctx, *mark0);
        return NULL;
    }
    return x;
}

/* On success keeps x (allocated between mark0 and mark1) and releases the
 * work vectors after mark1; on failure releases everything. */
static hg_status finish(hg_ctx *ctx, hg_tensor *x, const double *xv, hg_mark mark0, hg_mark mark1, hg_status st,
                        hg_tensor **out)
{
    if (st == HG_OK) {
        store(x, xv);
        st = hg_ctx_rewind(ctx, mark1);
        if (st == HG_OK) {
            *out = x;
            return HG_OK;
        }
    }
    hg_ctx_rewind(ctx, mark0);
    return st;
}

static hg_solve_options defaults(const hg_solve_options *opts)
{
    hg_solve_options o = {0};
    if (opts)
        o = *opts;
    return o;
}

/* The start of both solvers: clear the report and the result, and refuse a
 * NULL ctx or result pointer. */
static hg_status start_call(hg_ctx *ctx, const char *who, hg_tensor **x, hg_solve_report *report)
{
    if (report)
        memset(report, 0, sizeof *report);
    if (!ctx)
        return HG_ERR_NULL;
    if (!x)
        return hg_set_error(ctx, HG_ERR_NULL, "%s: x (result pointer) is NULL", who);
    *x = NULL;
    return HG_OK;
}

HG_API hg_status hg_cg_solve(hg_ctx *ctx, hg_apply_fn apply, void *user, const hg_tensor *b,
                             const hg_solve_options *opts, hg_tensor **x, hg_solve_report *report)
{
    static const char *who = "hg_cg_solve";
    hg_status started = start_call(ctx, who, x, report);
    if (started != HG_OK)
        return started;
    hg_solve_options o = defaults(opts);
    solver s;
    double *v[4];
    hg_mark mark0, mark1;
    hg_tensor *xt = setup(&s, ctx, who, apply, user, b, &o, 4, v, &mark0, &mark1);
    if (!xt)
        return hg_ctx_status(ctx) != HG_OK ? hg_ctx_status(ctx) : HG_ERR_OOM;
    double *xv = v[0], *r = v[1], *p = v[2], *Ap = v[3];
    int64_t n = s.n;
    double tol = o.tol > 0 ? o.tol : 1e-10;
    int max_iter = o.max_iter > 0 ? o.max_iter : (n > INT_MAX / 10 ? INT_MAX : 10 * (int)n);
    load(b, r);
    memset(xv, 0, (size_t)n * sizeof(double));
    memcpy(p, r, (size_t)n * sizeof(double));
    double rr = dot(r, r, n), bnorm = sqrt(rr);
    hg_status st = HG_OK;
    int converged = 0;
    if (!isfinite(bnorm)) {
        st = hg_set_error(ctx, HG_ERR_RANGE, "%s: b has a non-finite entry", who);
    } else if (bnorm == 0.0) {
        converged = 1;
    } else {
        for (int it = 0;; it++) {
            if (sqrt(rr) <= tol * bnorm) {
                converged = 1;
                break;
            }
            if (it == max_iter)
                break;
            if ((st = apply_damped(&s, p, Ap)) != HG_OK)
                break;
            double pAp = dot(p, Ap, n);
            if (!(pAp > 0.0) || !isfinite(pAp)) {
                st = hg_set_error(ctx, HG_ERR_RANGE,
                                  "%s: p^T (A + %g I) p = %g at iteration %d: the operator is not "
                                  "positive definite (increase the damping)",
                                  who, s.lambda, pAp, it);
                break;
            }
            double alpha = rr / pAp;
            for (int64_t i = 0; i < n; i++) {
                xv[i] += alpha * p[i];
                r[i] -= alpha * Ap[i];
            }
            double rr_new = dot(r, r, n), beta = rr_new / rr;
            for (int64_t i = 0; i < n; i++)
                p[i] = r[i] + beta * p[i];
            rr = rr_new;
        }
    }
    if (report) {
        report->iterations = s.calls;
        report->residual = bnorm > 0 && isfinite(bnorm) ? sqrt(rr) / bnorm : 0.0;
        report->converged = st == HG_OK && converged;
    }
    return finish(ctx, xt, xv, mark0, mark1, st, x);
}

HG_API hg_status hg_lissa_solve(hg_ctx *ctx, hg_apply_fn apply, void *user, const hg_tensor *b,
                                const hg_solve_options *opts, hg_tensor **x, hg_solve_report *report)
{
    static const char *who = "hg_lissa_solve";
    hg_status started = start_call(ctx, who, x, report);
    if (started != HG_OK)
        return started;
    hg_solve_options o = defaults(opts);
    if (!(o.scale > 0.0) || !isfinite(o.scale))
        return hg_set_error(ctx, HG_ERR_RANGE,
                            "%s: scale %g must be finite and > 0 (above half the largest "
                            "eigenvalue of A + lambda I)",
                            who, o.scale);
    solver s;
    double *v[4];
    hg_mark mark0, mark1;
    hg_tensor *xt = setup(&s, ctx, who, apply, user, b, &o, 4, v, &mark0, &mark1);
    if (!xt)
        return hg_ctx_status(ctx) != HG_OK ? hg_ctx_status(ctx) : HG_ERR_OOM;
    double *bv = v[0], *h = v[1], *Ah = v[2], *xv = v[3];
    int64_t n = s.n;
    int max_iter = o.max_iter > 0 ? o.max_iter : 1000;
    load(b, bv);
    memcpy(h, bv, (size_t)n * sizeof(double));
    double bnorm = sqrt(dot(bv, bv, n)), res = 0.0;
    hg_status st = HG_OK;
    int converged = 0;
    if (!isfinite(bnorm)) {
        st = hg_set_error(ctx, HG_ERR_RANGE, "%s: b has a non-finite entry", who);
    } else if (bnorm == 0.0) {
        converged = 1;
    } else {
        res = 1.0; /* of x = 0 */
        for (int it = 0; it < max_iter; it++) {
            if ((st = apply_damped(&s, h, Ah)) != HG_OK)
                break;
            /* d = b - (A + lambda I) h / s is the residual of x = h / s, and
             * the next iterate is h + d. */
            double dd = 0.0;
            for (int64_t i = 0; i < n; i++) {
                double d = bv[i] - Ah[i] / o.scale;
                h[i] += d;
                dd += d * d;
            }
            res = sqrt(dd) / bnorm;
            if (!isfinite(res) || res > 1e12) {
                st = hg_set_error(ctx, HG_ERR_RANGE,
                                  "%s: diverged at iteration %d (relative residual %g): scale %g "
                                  "is too small for the operator's largest eigenvalue",
                                  who, it, res, o.scale);
                break;
            }
            if (o.tol > 0 && res <= o.tol) {
                converged = 1;
                break;
            }
        }
    }
    for (int64_t i = 0; i < n; i++)
        xv[i] = h[i] / o.scale;
    if (report) {
        report->iterations = s.calls;
        report->residual = res;
        report->converged = st == HG_OK && converged;
    }
    return finish(ctx, xt, xv, mark0, mark1, st, x);
}
