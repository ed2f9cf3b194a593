/* Functional higher-order helpers: vjp, jvp, hvp, Jacobian, Hessian.
 *
 * Each helper evaluates the user function f under tapes of its own (pushed on
 * the ctx's tape stack above the caller's) and sweeps them:
 *   vjp       one tape, one sweep seeded with the cotangent.
 *   jvp       the double-vjp construction: g(u) = J^T u is computed under an
 *             outer tape watching u = 0 (shape of f's output); g is linear in
 *             u, so d<g(u), t>/du = J t exactly, for any op with a vjp.
 *   hvp       reverse over reverse: grad <grad f, v>.
 *   jacobian  one persistent tape, one sweep per output element (row).
 *   hessian   the gradient is computed once, flattened, under a persistent
 *             outer tape, which is then swept once per row.
 * Without HG_FUNC_CREATE_GRAPH every active tape of the caller is paused for
 * the call, so results are constants; with it they are recorded on the
 * caller's tapes and can be differentiated again. Without it, jacobian and
 * hessian release each row's sweep (mark/rewind) once the row is copied, so
 * their memory is the output plus one sweep.
 *
 * Flattening and row assembly use the public hg_reshape and hg_concat, so
 * the results are differentiable to any order. A result is one matrix over
 * the concatenated inputs; hg_narrow/hg_slice_axis split it per input. */
#include "internal.h"

#include <string.h>

/* Flatten and concatenate n >= 1 tensors with the public hg_concat (its vjp
 * is hg_narrow, whose vjp is a placement into zeros, so the assembled rows
 * are differentiable to any order). Overwrites ts with the flattened
 * tensors. */
static hg_tensor *concat_all(hg_ctx *ctx, int64_t n, hg_tensor **ts)
{
    static const int64_t flat[1] = {-1};
    if (n > INT32_MAX) {
        hg_set_error(ctx, HG_ERR_OVERFLOW, "hg_func: %lld pieces to concatenate", (long long)n);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (!(ts[i] = hg_reshape(ctx, ts[i], 1, flat)))
            return NULL;
    return hg_concat(ctx, (int)n, ts, 0);
}

/* ---- one call of a helper: argument checks, tapes, pausing ------------- */

typedef struct call {
    hg_ctx *ctx;
    const char *who;
    hg_fn f;
    int n;
    hg_tensor *const *inputs;
    void *user;
    bool create_graph;
    hg_tensor **xs; /* the float inputs, in order */
    int n_float;
    int64_t n_elems; /* total elements of the float inputs */
    hg_tape *paused[HG_MAX_TAPES];
    int n_paused;
    hg_tape *own[3]; /* tapes this call began, outermost first */
    int n_own;
} call;

static hg_status fail_status(call *c)
{
    hg_status s = hg_ctx_status(c->ctx);
    return s != HG_OK ? s : hg_set_error(c->ctx, HG_ERR_INVALID, "%s: an operation failed", c->who);
}

static hg_status start(call *c, const char *who, hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user,
                       unsigned flags)
{
    memset(c, 0, sizeof *c);
    c->ctx = ctx;
    c->who = who;
    c->f = f;
    c->n = n;
    c->inputs = inputs;
    c->user = user;
    c->create_graph = flags & HG_FUNC_CREATE_GRAPH;
    if (!f)
        return hg_set_error(ctx, HG_ERR_NULL, "%s: function f is NULL", who);
    if (n < 0)
        return hg_set_error(ctx, HG_ERR_INVALID, "%s: negative input count %d", who, n);
    if (n > 0 && !inputs)
        return hg_set_error(ctx, HG_ERR_NULL, "%s: inputs array is NULL", who);
    if (flags & ~(unsigned)HG_FUNC_CREATE_GRAPH)
        return hg_set_error(ctx, HG_ERR_INVALID, "%s: unknown flags 0x%x", who, flags);
    if (ctx->in_sweep)
        return hg_set_error(ctx, HG_ERR_TAPE, "%s: called from inside a gradient sweep", who);
    if (n > 0 && !(c->xs = hg_arena_alloc(ctx, sizeof *c->xs * (size_t)n)))
        return hg_set_error(ctx, HG_ERR_OOM, "%s: out of memory", who);
    for (int i = 0; i < n; i++) {
        hg_status s = hg_tensor_validate(ctx, inputs[i], who);
        if (s != HG_OK)
            return s;
        if (hg_is_float(inputs[i]->dtype)) {
            c->xs[c->n_float++] = inputs[i];
            c->n_elems += inputs[i]->numel;
        }
    }
    if (!c->create_graph)
        for (int L = 0; L < ctx->depth; L++)
            if (hg_tape_pause(ctx->tapes[L]) == HG_OK)
                c->paused[c->n_paused++] = ctx->tapes[L];
    return HG_OK;
}

/* End this call's tapes that are still active and resume the caller's. */
static hg_status finish(call *c, hg_status s)
{
    for (int t = c->n_own - 1; t >= 0; t--)
        if (!c->own[t]->ended && hg_tape_end(c->own[t]) != HG_OK && s == HG_OK)
            s = fail_status(c);
    for (int t = 0; t < c->n_paused; t++)
        hg_tape_resume(c->paused[t]);
    return s;
}

/* Begin a tape that watches every float input. Its targets may be
 * unrecorded (f constant in x, or a derivative that is): zeros, as the
 * mathematics says, rather than an error. */
static hg_tape *push(call *c, unsigned flags)
{
    hg_tape *tape = hg_tape_begin(c->ctx, flags | HG_TAPE_UNRECORDED_TARGET_ZERO);
    if (!tape)
        return NULL;
    c->own[c->n_own++] = tape;
    return hg_watch_n(tape, c->n_float, c->xs) == HG_OK ? tape : NULL;
}

/* y = f(inputs), checked: a live float tensor (one element if scalar). */
static hg_tensor *eval(call *c, bool scalar)
{
    hg_ctx *ctx = c->ctx;
    hg_tensor *y = c->f(ctx, c->inputs, c->user);
    char b[160];
    if (!y) {
        if (hg_ctx_status(ctx) == HG_OK)
            hg_set_error(ctx, HG_ERR_INVALID, "%s: f returned NULL without an error", c->who);
        return NULL;
    }
    if (hg_tensor_validate(ctx, y, c->who) != HG_OK)
        return NULL;
    if (!hg_is_float(y->dtype)) {
        hg_set_error(ctx, HG_ERR_DTYPE, "%s: f returned an %s tensor, not f32/f64", c->who, hg_dtype_name(y->dtype));
        return NULL;
    }
    if (scalar && y->numel != 1) {
        hg_set_error(ctx, HG_ERR_SHAPE, "%s: f must return one element, got %s", c->who, HG_SHAPE(y, b));
        return NULL;
    }
    return y;
}

/* Per-input tangents: NULL or the input's shape and dtype. */
static hg_status check_tangents(call *c, hg_tensor *const *tangents)
{
    char a[160], b[160];
    if (c->n > 0 && !tangents)
        return hg_set_error(c->ctx, HG_ERR_NULL, "%s: tangents array is NULL", c->who);
    for (int i = 0; i < c->n; i++) {
        hg_tensor *x = c->inputs[i], *t = tangents[i];
        if (!t || !hg_is_float(x->dtype))
            continue;
        hg_status s = hg_tensor_validate(c->ctx, t, c->who);
        if (s != HG_OK)
            return s;
        if (!hg_same_shape(t, x) || t->dtype != x->dtype)
            return hg_set_error(c->ctx, HG_ERR_SHAPE, "%s: tangent %d is %s %s, input is %s %s", c->who, i,
                                HG_SHAPE(t, a), hg_dtype_name(t->dtype), HG_SHAPE(x, b), hg_dtype_name(x->dtype));
    }
    return HG_OK;
}

/* <g, t> summed over the float inputs with a tangent; NULL if none (or an
 * error, then the ctx has it). */
static hg_tensor *pair(call *c, hg_tensor *const *g, hg_tensor *const *tangents, bool *failed)
{
    hg_tensor *s = NULL;
    *failed = false;
    for (int i = 0, j = 0; i < c->n; i++) {
        if (!hg_is_float(c->inputs[i]->dtype))
            continue;
        hg_tensor *gj = g[j++];
        if (!tangents[i])
            continue;
        hg_tensor *d = hg_sum(c->ctx, hg_mul(c->ctx, gj, tangents[i]));
        s = s ? hg_add(c->ctx, s, d) : d;
        if (!s) {
            *failed = true;
            return NULL;
        }
    }
    return s;
}

/* Float-input results g[0..n_float) to per-input slots (NULL for i32). */
static void scatter(const call *c, hg_tensor *const *g, hg_tensor **out)
{
    for (int i = 0, j = 0; i < c->n; i++)
        out[i] = hg_is_float(c->inputs[i]->dtype) ? g[j++] : NULL;
}

static hg_tensor **scratch(call *c)
{
    hg_tensor **g = hg_arena_alloc(c->ctx, sizeof *g * (size_t)(c->n_float ? c->n_float : 1));
    if (!g)
        hg_set_error(c->ctx, HG_ERR_OOM, "%s: out of memory", c->who);
    return g;
}

/* ---- vjp, jvp, hvp ------------------------------------------------------ */

hg_status hg_vjp(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, hg_tensor *cotangent,
                 unsigned flags, hg_tensor **value, hg_tensor **grads)
{
    if (value)
        *value = NULL;
    for (int i = 0; grads && i < n; i++)
        grads[i] = NULL;
    if (!ctx)
        return HG_ERR_NULL;
    if (!grads && n > 0)
        return hg_set_error(ctx, HG_ERR_NULL, "hg_vjp: grads array is NULL");
    call c;
    hg_status s = start(&c, "hg_vjp", ctx, f, n, inputs, user, flags);
    if (s != HG_OK)
        return finish(&c, s);
    char a[160], b[160];
    hg_tape *tape = push(&c, 0);
    hg_tensor *y = tape ? eval(&c, false) : NULL;
    hg_tensor **g = y ? scratch(&c) : NULL;
    if (!g || hg_tape_end(tape) != HG_OK)
        return finish(&c, fail_status(&c));
    if (cotangent) {
        if ((s = hg_tensor_validate(ctx, cotangent, "hg_vjp (cotangent)")) != HG_OK)
            return finish(&c, s);
        if (!hg_same_shape(cotangent, y) || cotangent->dtype != y->dtype)
            return finish(&c, hg_set_error(ctx, HG_ERR_SHAPE, "hg_vjp: cotangent %s %s does not match f's output %s %s",
                                           HG_SHAPE(cotangent, a), hg_dtype_name(cotangent->dtype), HG_SHAPE(y, b),
                                           hg_dtype_name(y->dtype)));
    } else if (y->numel != 1) {
        return finish(&c, hg_set_error(ctx, HG_ERR_SHAPE, "hg_vjp: f's output %s has %lld elements; give a cotangent",
                                       HG_SHAPE(y, a), (long long)y->numel));
    }
    if ((s = hg_gradient(tape, y, c.n_float, c.xs, cotangent, g)) != HG_OK)
        return finish(&c, s);
    scatter(&c, g, grads);
    if (value)
        *value = y;
    return finish(&c, HG_OK);
}

hg_status hg_jvp(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, hg_tensor *const *tangents,
                 unsigned flags, hg_tensor **value, hg_tensor **jv)
{
    if (value)
        *value = NULL;
    if (jv)
        *jv = NULL;
    if (!ctx)
        return HG_ERR_NULL;
    if (!jv)
        return hg_set_error(ctx, HG_ERR_NULL, "hg_jvp: jv is NULL");
    call c;
    hg_status s = start(&c, "hg_jvp", ctx, f, n, inputs, user, flags);
    if (s != HG_OK || (s = check_tangents(&c, tangents)) != HG_OK)
        return finish(&c, s);
    /* y = f(x) under `inner`; g = J^T u under `outer`, which watches u = 0. */
    hg_tape *inner = push(&c, 0);
    hg_tensor *y = inner ? eval(&c, false) : NULL;
    hg_tensor **g = y ? scratch(&c) : NULL;
    if (!g || hg_tape_end(inner) != HG_OK)
        return finish(&c, fail_status(&c));
    hg_tape *outer = hg_tape_begin(ctx, HG_TAPE_UNRECORDED_TARGET_ZERO);
    if (!outer)
        return finish(&c, fail_status(&c));
    c.own[c.n_own++] = outer;
    hg_tensor *u = hg_zeros_like(ctx, y);
    if (!u || hg_watch(outer, u) != HG_OK || hg_gradient(inner, y, c.n_float, c.xs, u, g) != HG_OK)
        return finish(&c, fail_status(&c));
    /* s = <J^T u, t> is linear in u, so ds/du = J t exactly. */
    bool failed;
    hg_tensor *st = pair(&c, g, tangents, &failed);
    if (failed || hg_tape_end(outer) != HG_OK)
        return finish(&c, fail_status(&c));
    hg_tensor *r = NULL;
    if (st)
        s = hg_gradient(outer, st, 1, &u, NULL, &r);
    else if (!(r = hg_zeros_like(ctx, y)))
        s = fail_status(&c);
    if (s != HG_OK)
        return finish(&c, s);
    *jv = r;
    if (value)
        *value = y;
    return finish(&c, HG_OK);
}

hg_status hg_hvp(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, hg_tensor *const *tangents,
                 unsigned flags, hg_tensor **value, hg_tensor **hv)
{
    if (value)
        *value = NULL;
    for (int i = 0; hv && i < n; i++)
        hv[i] = NULL;
    if (!ctx)
        return HG_ERR_NULL;
    if (!hv && n > 0)
        return hg_set_error(ctx, HG_ERR_NULL, "hg_hvp: hv array is NULL");
    call c;
    hg_status s = start(&c, "hg_hvp", ctx, f, n, inputs, user, flags);
    if (s != HG_OK || (s = check_tangents(&c, tangents)) != HG_OK)
        return finish(&c, s);
    /* g = grad f under `inner`, recorded on `outer`; hv = grad <g, v>. */
    hg_tape *outer = push(&c, 0);
    hg_tape *inner = outer ? push(&c, 0) : NULL;
    hg_tensor *y = inner ? eval(&c, true) : NULL;
    hg_tensor **g = y ? scratch(&c) : NULL;
    if (!g || hg_tape_end(inner) != HG_OK || hg_gradient(inner, y, c.n_float, c.xs, NULL, g) != HG_OK)
        return finish(&c, fail_status(&c));
    bool failed;
    hg_tensor *st = pair(&c, g, tangents, &failed);
    if (failed || hg_tape_end(outer) != HG_OK)
        return finish(&c, fail_status(&c));
    if (st) {
        if ((s = hg_gradient(outer, st, c.n_float, c.xs, NULL, g)) != HG_OK)
            return finish(&c, s);
    } else {
        for (int j = 0; j < c.n_float; j++)
            if (!(g[j] = hg_zeros_like(ctx, c.xs[j])))
                return finish(&c, fail_status(&c));
    }
    scatter(&c, g, hv);
    if (value)
        *value = y;
    return finish(&c, HG_OK);
}

/* ---- Jacobian and Hessian: one sweep per row ---------------------------- */

static void set_element(hg_tensor *t, int64_t i, double v)
{
    if (t->dtype == HG_F64)
        ((double *)t->data)[i] = v;
    else
        ((float *)t->data)[i] = (float)v;
}

/* Rows r < m of d target / d inputs by sweeps of the ended, persistent
 * `tape` seeded with e_r, assembled into out [m, n_elems]. */
static hg_status rows(call *c, hg_tape *tape, hg_tensor *target, hg_tensor **out)
{
    hg_ctx *ctx = c->ctx;
    int64_t m = target->numel, shape[2] = {m, c->n_elems};
    hg_tensor **g = scratch(c);
    if (!g)
        return fail_status(c);
    if (!c->create_graph) {
        /* Constants: copy each row into the output, then release its sweep. */
        hg_tensor *jac = hg_zeros(ctx, target->dtype, 2, shape);
        if (!jac)
            return fail_status(c);
        size_t esize = hg_dtype_size(target->dtype);
        unsigned char *dst = jac->data;
        for (int64_t r = 0; r < m; r++) {
            hg_mark mark = hg_ctx_mark(ctx);
            hg_tensor *seed = hg_zeros_like(ctx, target);
            if (!seed)
                return fail_status(c);
            set_element(seed, r, 1.0);
            hg_status s = hg_gradient(tape, target, c->n_float, c->xs, seed, g);
            if (s != HG_OK)
                return s;
            for (int j = 0; j < c->n_float; j++) {
                size_t bytes = (size_t)g[j]->numel * esize;
                if (bytes)
                    memcpy(dst, g[j]->data, bytes);
                dst += bytes;
            }
            if ((s = hg_ctx_rewind(ctx, mark)) != HG_OK)
                return s;
        }
        *out = jac;
        return HG_OK;
    }
    /* Recorded: keep every row's pieces (and its seed), then concatenate. */
    size_t n_pieces = (size_t)m * (size_t)c->n_float;
    hg_tensor **pieces = hg_arena_alloc(ctx, sizeof *pieces * (n_pieces ? n_pieces : 1));
    if (!pieces)
        return hg_set_error(ctx, HG_ERR_OOM, "%s: out of memory", c->who);
    for (int64_t r = 0; r < m; r++) {
        hg_tensor *seed = hg_zeros_like(ctx, target);
        if (!seed)
            return fail_status(c);
        set_element(seed, r, 1.0);
        hg_status s = hg_gradient(tape, target, c->n_float, c->xs, seed, pieces + (size_t)r * (size_t)c->n_float);
        if (s != HG_OK)
            return s;
    }
    hg_tensor *flat = n_pieces ? concat_all(ctx, (int64_t)n_pieces, pieces) : hg_zeros(ctx, target->dtype, 1, shape);
    if (!(*out = hg_reshape(ctx, flat, 2, shape)))
        return fail_status(c);
    return HG_OK;
}

/* Float inputs must share f's output dtype (the result has one dtype). */
static hg_status check_dtypes(call *c, const hg_tensor *y)
{
    if (c->n_float == 0)
        return hg_set_error(c->ctx, HG_ERR_INVALID, "%s: no float inputs to differentiate", c->who);
    for (int j = 0; j < c->n_float; j++)
        if (c->xs[j]->dtype != y->dtype)
            return hg_set_error(c->ctx, HG_ERR_DTYPE, "%s: input is %s but f's output is %s (use hg_cast)", c->who,
                                hg_dtype_name(c->xs[j]->dtype), hg_dtype_name(y->dtype));
    return HG_OK;
}

hg_status hg_jacobian(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, unsigned flags,
                      hg_tensor **jac)
{
    if (jac)
        *jac = NULL;
    if (!ctx)
        return HG_ERR_NULL;
    if (!jac)
        return hg_set_error(ctx, HG_ERR_NULL, "hg_jacobian: jac is NULL");
    call c;
    hg_status s = start(&c, "hg_jacobian", ctx, f, n, inputs, user, flags);
    if (s != HG_OK)
        return finish(&c, s);
    hg_tape *tape = push(&c, HG_TAPE_PERSISTENT);
    hg_tensor *y = tape ? eval(&c, false) : NULL;
    if (!y || hg_tape_end(tape) != HG_OK)
        return finish(&c, fail_status(&c));
    if ((s = check_dtypes(&c, y)) != HG_OK || (s = rows(&c, tape, y, jac)) != HG_OK)
        *jac = NULL;
    return finish(&c, s);
}

hg_status hg_hessian(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, unsigned flags,
                     hg_tensor **hess)
{
    if (hess)
        *hess = NULL;
    if (!ctx)
        return HG_ERR_NULL;
    if (!hess)
        return hg_set_error(ctx, HG_ERR_NULL, "hg_hessian: hess is NULL");
    call c;
    hg_status s = start(&c, "hg_hessian", ctx, f, n, inputs, user, flags);
    if (s != HG_OK)
        return finish(&c, s);
    /* The flattened gradient G, recorded on the persistent `outer`; row r of
     * the Hessian is the sweep of `outer` from G seeded with e_r. */
    hg_tape *outer = push(&c, HG_TAPE_PERSISTENT);
    hg_tape *inner = outer ? push(&c, 0) : NULL;
    hg_tensor *y = inner ? eval(&c, true) : NULL;
    if (!y || hg_tape_end(inner) != HG_OK)
        return finish(&c, fail_status(&c));
    if ((s = check_dtypes(&c, y)) != HG_OK)
        return finish(&c, s);
    hg_tensor **g = scratch(&c);
    if (!g || hg_gradient(inner, y, c.n_float, c.xs, NULL, g) != HG_OK)
        return finish(&c, fail_status(&c));
    hg_tensor *grad = concat_all(ctx, c.n_float, g);
    if (!grad || hg_tape_end(outer) != HG_OK)
        return finish(&c, fail_status(&c));
    if ((s = rows(&c, outer, grad, hess)) != HG_OK)
        *hess = NULL;
    return finish(&c, s);
}
