/* Checkpointed unrolling (include/hgrad/unroll.h): forward without
 * recording, snapshots on a binomial schedule, reverse one recorded step at
 * a time with the state adjoint carried between steps. Built on tapes and
 * hg_gradient only. */
#include "internal.h"

#include <string.h>

/* ---- the schedule ------------------------------------------------------- */

/* C(S + r, S), computed up to `cap` (returns cap once it reaches it). */
static int64_t beta(int64_t S, int64_t r, int64_t cap)
{
    int64_t b = 1;
    for (int64_t i = 1; i <= r && b < cap; i++)
        b = b * (S + i) / i; /* exact: b * (S+i) = C(S+i, i) * i */
    return b < cap ? b : cap;
}

/* Fewest unrecorded step evaluations that reverse l units (steps, or the
 * loss as the last unit) when the state at the first one is stored and s
 * more states can be stored: 0 for l <= 1, l(l-1)/2 for s = 0, else
 * r l - C(S + r, r - 1) with S = s + 1 and r the least with C(S + r, S) >= l
 * (Griewank 1992; tests/test_unroll.c checks it against brute force). */
static int64_t forward_cost(int64_t l, int64_t s)
{
    if (l <= 1)
        return 0;
    if (s == 0)
        return l * (l - 1) / 2;
    if (s >= l - 1)
        return l - 1;
    int64_t S = s + 1, r = 0;
    while (beta(S, r, l) < l)
        r++;
    /* C(S + r, r - 1) = C((S + 1) + (r - 1), S + 1) <= r l: no overflow. */
    return r * l - beta(S + 1, r - 1, INT64_MAX / (S + r + 1));
}

/* Best first snapshot for units [0, l) with s >= 1 free slots: the m that
 * minimises m + cost(l - m, s - 1) + cost(m, s), a convex function of m
 * (both costs are convex, piecewise linear in their length), by bisection
 * on its forward difference. */
static int64_t best_split(int64_t l, int64_t s)
{
    int64_t lo = 1, hi = l - 1; /* the answer is in [lo, hi] */
    while (lo < hi) {
        int64_t m = lo + (hi - lo) / 2;
        int64_t f0 = m + forward_cost(l - m, s - 1) + forward_cost(m, s);
        int64_t f1 = m + 1 + forward_cost(l - m - 1, s - 1) + forward_cost(m + 1, s);
        if (f1 >= f0)
            hi = m;
        else
            lo = m + 1;
    }
    return lo;
}

int64_t hg_unroll_cost(int64_t steps, int64_t snapshots)
{
    if (steps < 0 || steps > HG_UNROLL_MAX_STEPS || snapshots < 0)
        return -1;
    return forward_cost(steps + 1, snapshots) - steps;
}

int64_t hg_unroll_snapshots_for(int64_t steps, int64_t max_recomputed)
{
    if (steps < 0 || steps > HG_UNROLL_MAX_STEPS || max_recomputed < 0)
        return -1;
    int64_t lo = 0, hi = steps; /* cost(steps, steps) = 0 */
    while (lo < hi) {
        int64_t m = lo + (hi - lo) / 2;
        if (hg_unroll_cost(steps, m) <= max_recomputed)
            hi = m;
        else
            lo = m + 1;
    }
    return lo;
}

int64_t hg_unroll_snapshots_within(int64_t steps, int n_state, hg_tensor *const *state, size_t max_bytes)
{
    if (steps < 0 || steps > HG_UNROLL_MAX_STEPS || n_state < 1 || !state)
        return -1;
    size_t bytes = 0;
    for (int i = 0; i < n_state; i++) {
        if (!state[i])
            return -1;
        bytes += (size_t)hg_tensor_numel(state[i]) * hg_dtype_size(hg_tensor_dtype(state[i]));
    }
    if (bytes == 0) /* empty tensors: any number fits */
        return steps;
    size_t fit = max_bytes / bytes;
    return fit >= (size_t)steps ? steps : (int64_t)fit;
}

/* ---- the run ------------------------------------------------------------ */

typedef struct unroll {
    hg_ctx *ctx;
    const hg_unroll_spec *sp;
    int n;    /* n_state */
    bool dry; /* count only */
    bool want_inputs, want_globals;
    hg_tensor ***slot; /* slot[0] = state0, slot[d] = snapshot d */
    hg_tensor **work;  /* working state after an advance */
    hg_tensor **adj;   /* a_{k+1} */
    hg_tensor **dglob; /* accumulated dE/dglobals (or NULL) */
    int depth_used;
    int64_t forward_steps, recorded;
    size_t step_peak;
    double E; /* the loss's value, dtype and shape */
    hg_dtype E_dtype;
    int E_rank;
    int64_t E_shape[HG_MAX_RANK];
    int base_depth; /* tapes active on entry (0) */
} unroll;

/* A callback's status: its own, or HG_ERR_INVALID if it failed silently. */
static hg_status callback_status(unroll *u, hg_status s, const char *what, int k)
{
    if (s == HG_OK)
        return HG_OK;
    if (hg_ctx_status(u->ctx) != HG_OK)
        return s;
    return hg_set_error(u->ctx, s, "hg_unroll: %s callback failed at step %d (%s)", what, k, hg_status_name(s));
}

/* Tapes a callback left active above `level` are an error; they are ended. */
static hg_status check_tapes(unroll *u, int level, const char *fmt, int k)
{
    hg_ctx *ctx = u->ctx;
    if (ctx->depth <= level)
        return HG_OK;
    while (ctx->depth > level)
        hg_tape_end(ctx->tapes[ctx->depth - 1]);
    return hg_set_error(ctx, HG_ERR_TAPE, fmt, k);
}

static void note_step_peak(unroll *u, size_t at_mark)
{
    size_t used = u->ctx->peak > at_mark ? u->ctx->peak - at_mark : 0;
    if (used > u->step_peak)
        u->step_peak = used;
}

/* Step k's inputs into in[] (validated). */
static hg_status get_inputs(unroll *u, int k, hg_tensor **in)
{
    const hg_unroll_spec *sp = u->sp;
    for (int i = 0; i < sp->n_inputs; i++)
        in[i] = NULL;
    if (sp->n_inputs == 0)
        return HG_OK;
    hg_status s = callback_status(u, sp->inputs(u->ctx, k, in, sp->user), "inputs", k);
    if (s != HG_OK)
        return s;
    for (int i = 0; i < sp->n_inputs; i++)
        if ((s = hg_tensor_validate(u->ctx, in[i], "hg_unroll (an input from the inputs callback)")) != HG_OK)
            return s;
    return HG_OK;
}

/* state_out of step k against the state's shapes and dtypes. */
static hg_status check_out(unroll *u, int k, hg_tensor *const *out)
{
    for (int i = 0; i < u->n; i++) {
        hg_status s = hg_tensor_validate(u->ctx, out[i], "hg_unroll (a state from the step callback)");
        if (s != HG_OK)
            return s;
        const hg_tensor *ref = u->sp->state0[i];
        if (!hg_same_shape(out[i], ref) || out[i]->dtype != ref->dtype) {
            char a[160], b[160];
            return hg_set_error(u->ctx, HG_ERR_SHAPE,
                                "hg_unroll: step %d returned state %d as %s %s, the state is %s %s", k, i,
                                HG_SHAPE(out[i], a), hg_dtype_name(out[i]->dtype), HG_SHAPE(ref, b),
                                hg_dtype_name(ref->dtype));
        }
    }
    return HG_OK;
}

static void copy_state(int n, hg_tensor **dst, hg_tensor *const *src)
{
    for (int i = 0; i < n; i++)
        if (dst[i] != src[i])
            memcpy(dst[i]->data, src[i]->data, (size_t)src[i]->numel * hg_dtype_size(src[i]->dtype));
}

/* Advance from s_a (in slot d) to s_b without recording; returns the
 * buffer holding s_b (slot d itself when b == a, else work). */
static hg_status advance(unroll *u, int d, int a, int b, hg_tensor ***where)
{
    if (u->dry) { /* counting only: no buffers exist yet */
        u->forward_steps += b - a;
        *where = NULL;
        return HG_OK;
    }
    hg_tensor **cur = u->slot[d];
    for (int k = a; k < b; k++) {
        u->forward_steps++;
        hg_ctx *ctx = u->ctx;
        size_t at = hg_ctx_get_stats(ctx).bytes_in_use;
        hg_mark m = hg_ctx_mark(ctx);
        hg_tensor *in[HG_UNROLL_MAX_ARGS], *out[HG_UNROLL_MAX_ARGS];
        for (int i = 0; i < u->n; i++)
            out[i] = NULL;
        hg_status s = get_inputs(u, k, in);
        if (s == HG_OK)
            s = callback_status(u, u->sp->step(ctx, k, cur, in, u->sp->globals, out, u->sp->user), "step", k);
        if (s == HG_OK)
            s = check_tapes(u, u->base_depth, "hg_unroll: the step callback left a tape active at step %d", k);
        if (s == HG_OK)
            s = check_out(u, k, out);
        if (s != HG_OK)
            return s;
        copy_state(u->n, u->work, out);
        note_step_peak(u, at);
        hg_ctx_rewind(ctx, m);
        cur = u->work;
    }
    *where = cur;
    return HG_OK;
}

/* sum_i <a_i, s_i> as an f64 scalar (exact seed: d/ds_i = a_i). */
static hg_tensor *adjoint_dot(hg_ctx *ctx, int n, hg_tensor *const *a, hg_tensor *const *s)
{
    hg_tensor *acc = NULL;
    for (int i = 0; i < n; i++) {
        hg_tensor *d = hg_sum(ctx, hg_mul(ctx, a[i], s[i]));
        if (d && d->dtype != HG_F64)
            d = hg_cast(ctx, d, HG_F64);
        acc = acc ? hg_add(ctx, acc, d) : d;
        if (!acc)
            return NULL;
    }
    return acc;
}

static void accumulate(hg_tensor *dst, const hg_tensor *g)
{
    if (dst->dtype == HG_F64) {
        double *d = dst->data;
        const double *s = g->data;
        for (int64_t i = 0; i < dst->numel; i++)
            d[i] += s[i];
    } else {
        float *d = dst->data;
        const float *s = g->data;
        for (int64_t i = 0; i < dst->numel; i++)
            d[i] += s[i];
    }
}

/* Reverse unit k (a step, or the loss when k == K) from s_k in `state`:
 * record it on a tape with the state (and the wanted inputs and globals)
 * watched, one vjp seeded with the adjoint, a_k into adj. */
static hg_status reverse_unit(unroll *u, int k, hg_tensor *const *state)
{
    const hg_unroll_spec *sp = u->sp;
    bool is_loss = k == sp->steps;
    if (!is_loss)
        u->recorded++;
    if (u->dry)
        return HG_OK;
    hg_ctx *ctx = u->ctx;
    int n = u->n, ni = is_loss ? 0 : sp->n_inputs, ng = sp->n_globals;
    size_t at = hg_ctx_get_stats(ctx).bytes_in_use;
    hg_mark m = hg_ctx_mark(ctx);
    hg_status s = HG_OK;
    hg_tensor *S[HG_UNROLL_MAX_ARGS], *in[HG_UNROLL_MAX_ARGS], *G[HG_UNROLL_MAX_ARGS], *out[HG_UNROLL_MAX_ARGS];
    hg_tensor *src[3 * HG_UNROLL_MAX_ARGS], *grad[3 * HG_UNROLL_MAX_ARGS];
    int idx_in[HG_UNROLL_MAX_ARGS], idx_g = 0, nsrc = 0;
    hg_tape *tape = hg_tape_begin(ctx, 0);
    if (!tape)
        return hg_ctx_status(ctx);
    for (int i = 0; i < n && s == HG_OK; i++)
        if (!(S[i] = hg_tensor_clone(ctx, state[i])) || (s = hg_watch(tape, S[i])) != HG_OK)
            s = hg_ctx_status(ctx);
    for (int i = 0; i < n; i++)
        src[nsrc++] = S[i];
    for (int i = 0; i < ng && s == HG_OK; i++) {
        G[i] = sp->globals[i];
        if (u->want_globals && (!(G[i] = hg_tensor_clone(ctx, sp->globals[i])) || (s = hg_watch(tape, G[i])) != HG_OK))
            s = hg_ctx_status(ctx);
    }
    if (u->want_globals) {
        idx_g = nsrc;
        for (int i = 0; i < ng; i++)
            src[nsrc++] = G[i];
    }
    if (s == HG_OK && ni)
        s = get_inputs(u, k, in);
    for (int i = 0; i < ni && s == HG_OK; i++) {
        idx_in[i] = -1;
        if (u->want_inputs && hg_is_float(in[i]->dtype)) {
            if ((s = hg_watch(tape, in[i])) == HG_OK) {
                idx_in[i] = nsrc;
                src[nsrc++] = in[i];
            }
        }
    }
    hg_tensor *target = NULL;
    if (s == HG_OK && is_loss) {
        hg_tensor *E = sp->loss(ctx, S, G, sp->user);
        if ((s = check_tapes(u, tape->level + 1, "hg_unroll: the loss callback left a tape active", k)) == HG_OK) {
            if (!E)
                s = callback_status(u, HG_ERR_INVALID, "loss", k);
            else if ((s = hg_tensor_validate(ctx, E, "hg_unroll (the loss)")) == HG_OK) {
                if (!hg_is_float(E->dtype) || E->numel != 1) {
                    char a[160];
                    s = hg_set_error(ctx, hg_is_float(E->dtype) ? HG_ERR_SHAPE : HG_ERR_DTYPE,
                                     "hg_unroll: the loss must be one f32/f64 element, got %s %s", HG_SHAPE(E, a),
                                     hg_dtype_name(E->dtype));
                } else {
                    u->E = hg_item(E);
                    u->E_dtype = E->dtype;
                    u->E_rank = E->rank;
                    memcpy(u->E_shape, E->shape, sizeof u->E_shape);
                    target = E;
                }
            }
        }
    } else if (s == HG_OK) {
        for (int i = 0; i < n; i++)
            out[i] = NULL;
        s = callback_status(u, sp->step(ctx, k, S, in, G, out, sp->user), "step", k);
        if (s == HG_OK)
            s = check_tapes(u, tape->level + 1, "hg_unroll: the step callback left a tape active at step %d", k);
        if (s == HG_OK && (s = check_out(u, k, out)) == HG_OK)
            if (!(target = adjoint_dot(ctx, n, u->adj, out)))
                s = hg_ctx_status(ctx);
    }
    if (hg_tape_end(tape) != HG_OK && s == HG_OK)
        s = hg_ctx_status(ctx);
    if (s == HG_OK && hg_gradient(tape, target, nsrc, src, NULL, grad) != HG_OK)
        s = hg_ctx_status(ctx);
    if (s == HG_OK) {
        if (ni && u->want_inputs) {
            hg_tensor *gin[HG_UNROLL_MAX_ARGS];
            for (int i = 0; i < ni; i++)
                gin[i] = idx_in[i] >= 0 ? grad[idx_in[i]] : NULL;
            s = callback_status(u, sp->on_grad(ctx, k, in, gin, sp->user), "on_grad", k);
            if (s == HG_OK)
                s = check_tapes(u, u->base_depth, "hg_unroll: the on_grad callback left a tape active at step %d", k);
        }
    }
    if (s == HG_OK) {
        copy_state(n, u->adj, grad);
        for (int i = 0; u->want_globals && i < ng; i++)
            accumulate(u->dglob[i], grad[idx_g + i]);
        note_step_peak(u, at);
    }
    if (s == HG_OK)
        hg_ctx_rewind(ctx, m);
    return s;
}

/* Reverse units [a, b) given s_a in slot d and `free` slots above it. */
static hg_status reverse_range(unroll *u, int a, int b, int d, int64_t free)
{
    hg_status s;
    hg_tensor **st;
    while (b > a) {
        if (b - a == 1 || free == 0) {
            /* One unit, or none to spare: recompute from s_a for each. */
            for (int j = b - 1; j >= a; j--)
                if ((s = advance(u, d, a, j, &st)) != HG_OK || (s = reverse_unit(u, j, st)) != HG_OK)
                    return s;
            return HG_OK;
        }
        int m = a + (int)best_split(b - a, free);
        if ((s = advance(u, d, a, m, &st)) != HG_OK)
            return s;
        if (d + 1 > u->depth_used)
            u->depth_used = d + 1;
        if (!u->dry)
            copy_state(u->n, u->slot[d + 1], st);
        if ((s = reverse_range(u, m, b, d + 1, free - 1)) != HG_OK)
            return s;
        b = m;
    }
    return HG_OK;
}

/* ---- entry -------------------------------------------------------------- */

static hg_status check_spec(hg_ctx *ctx, const hg_unroll_spec *sp, hg_tensor **E)
{
    const char *who = "hg_unroll";
    if (!sp || !E)
        return hg_set_error(ctx, HG_ERR_NULL, "%s: %s is NULL", who, sp ? "E" : "spec");
    if (sp->steps < 0 || sp->steps > HG_UNROLL_MAX_STEPS)
        return hg_set_error(ctx, HG_ERR_RANGE, "%s: steps %d outside 0..%d", who, sp->steps, HG_UNROLL_MAX_STEPS);
    if (sp->snapshots < 0)
        return hg_set_error(ctx, HG_ERR_RANGE, "%s: negative snapshot budget %d", who, sp->snapshots);
    if (sp->n_state < 1 || sp->n_state > HG_UNROLL_MAX_ARGS || sp->n_inputs < 0 || sp->n_inputs > HG_UNROLL_MAX_ARGS ||
        sp->n_globals < 0 || sp->n_globals > HG_UNROLL_MAX_ARGS)
        return hg_set_error(ctx, HG_ERR_RANGE,
                            "%s: n_state %d (1..%d), n_inputs %d and n_globals %d (0..%d) out of range", who,
                            sp->n_state, HG_UNROLL_MAX_ARGS, sp->n_inputs, sp->n_globals, HG_UNROLL_MAX_ARGS);
    if (!sp->state0 || (sp->n_globals && !sp->globals))
        return hg_set_error(ctx, HG_ERR_NULL, "%s: %s is NULL", who, sp->state0 ? "globals" : "state0");
    if (!sp->step || !sp->loss || (sp->n_inputs && !sp->inputs))
        return hg_set_error(ctx, HG_ERR_NULL, "%s: the %s callback is NULL", who,
                            !sp->step   ? "step"
                            : !sp->loss ? "loss"
                                        : "inputs");
    for (int j = 0; j < sp->n_state + sp->n_globals; j++) {
        bool st = j < sp->n_state;
        hg_tensor *t = st ? sp->state0[j] : sp->globals[j - sp->n_state];
        hg_status s = hg_tensor_validate(ctx, t, st ? "hg_unroll (state0)" : "hg_unroll (globals)");
        if (s != HG_OK)
            return s;
        if (!hg_is_float(t->dtype))
            return hg_set_error(ctx, HG_ERR_DTYPE, "%s: %s %d is %s, not f32/f64", who, st ? "state" : "global",
                                st ? j : j - sp->n_state, hg_dtype_name(t->dtype));
    }
    if (ctx->depth > 0 || ctx->in_sweep)
        return hg_set_error(ctx, HG_ERR_TAPE,
                            "%s: %d tape(s) active; the unroll is not recorded on enclosing tapes (end them first)",
                            who, ctx->depth);
    return HG_OK;
}

/* n tensors shaped like ref[] (zeros) into out[]. */
static hg_status buffers(hg_ctx *ctx, int n, hg_tensor *const *ref, hg_tensor **out)
{
    for (int i = 0; i < n; i++)
        if (!(out[i] = hg_zeros_like(ctx, ref[i])))
            return hg_ctx_status(ctx) != HG_OK ? hg_ctx_status(ctx)
                                               : hg_set_error(ctx, HG_ERR_OOM, "hg_unroll: out of memory");
    return HG_OK;
}

static hg_tensor **array(hg_ctx *ctx, size_t n)
{
    hg_tensor **a = hg_arena_alloc(ctx, (n ? n : 1) * sizeof *a);
    if (!a)
        hg_set_error(ctx, HG_ERR_OOM, "hg_unroll: out of memory");
    return a;
}

hg_status hg_unroll(hg_ctx *ctx, const hg_unroll_spec *sp, hg_tensor **E, hg_tensor **d_state0, hg_tensor **d_globals,
                    hg_unroll_stats *stats)
{
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (E)
        *E = NULL;
    if (!ctx)
        return HG_ERR_NULL;
    if (sp) {
        for (int i = 0; d_state0 && i < sp->n_state && i < HG_UNROLL_MAX_ARGS; i++)
            d_state0[i] = NULL;
        for (int i = 0; d_globals && i < sp->n_globals && i < HG_UNROLL_MAX_ARGS; i++)
            d_globals[i] = NULL;
    }
    hg_status s = check_spec(ctx, sp, E);
    if (s != HG_OK)
        return s;
    unroll u;
    memset(&u, 0, sizeof u);
    u.ctx = ctx;
    u.sp = sp;
    u.n = sp->n_state;
    u.want_inputs = sp->on_grad && sp->n_inputs > 0;
    u.want_globals = d_globals && sp->n_globals > 0;
    bool reverse = u.want_inputs || u.want_globals || d_state0;
    int K = sp->steps;
    int64_t budget = sp->snapshots < K ? sp->snapshots : K;
    size_t state_bytes = 0;
    for (int i = 0; i < u.n; i++)
        state_bytes += (size_t)sp->state0[i]->numel * hg_dtype_size(sp->state0[i]->dtype);

    /* Dry run: the schedule's counts and the snapshots it uses. */
    u.dry = true;
    if (reverse)
        reverse_range(&u, 0, K + 1, 0, budget);
    int depth = u.depth_used;
    u.dry = false;
    u.forward_steps = u.recorded = 0;
    u.depth_used = 0;

    size_t peak_before = ctx->peak;
    ctx->peak = hg_ctx_get_stats(ctx).bytes_in_use;
    size_t at_entry = hg_ctx_get_stats(ctx).bytes_in_use, buffers_end = at_entry;
    hg_mark m0 = hg_ctx_mark(ctx);
    hg_tensor **res = array(ctx, (size_t)(u.n + sp->n_globals));
    if (!res || (d_state0 && (s = buffers(ctx, u.n, sp->state0, res)) != HG_OK) ||
        (u.want_globals && (s = buffers(ctx, sp->n_globals, sp->globals, res + u.n)) != HG_OK))
        goto out;
    u.dglob = res + u.n;
    hg_mark m1 = hg_ctx_mark(ctx);
    u.slot = hg_arena_alloc(ctx, (size_t)(depth + 1) * sizeof *u.slot);
    if (!u.slot) {
        s = hg_set_error(ctx, HG_ERR_OOM, "hg_unroll: out of memory");
        goto out;
    }
    u.slot[0] = (hg_tensor **)sp->state0;
    for (int d = 1; d <= depth + 2; d++) {
        hg_tensor **b = array(ctx, (size_t)u.n);
        if (!b || (s = buffers(ctx, u.n, sp->state0, b)) != HG_OK) {
            s = hg_ctx_status(ctx);
            goto out;
        }
        if (d <= depth)
            u.slot[d] = b;
        else if (d == depth + 1)
            u.work = b;
        else
            u.adj = b;
    }
    buffers_end = hg_ctx_get_stats(ctx).bytes_in_use;
    if (reverse) {
        s = reverse_range(&u, 0, K + 1, 0, budget);
    } else {
        hg_tensor **st;
        s = advance(&u, 0, 0, K, &st);
        if (s == HG_OK) {
            size_t at = hg_ctx_get_stats(ctx).bytes_in_use;
            hg_mark m = hg_ctx_mark(ctx);
            hg_tensor *e = sp->loss(ctx, st, sp->globals, sp->user);
            if ((s = check_tapes(&u, 0, "hg_unroll: the loss callback left a tape active", K)) == HG_OK) {
                if (!e)
                    s = callback_status(&u, HG_ERR_INVALID, "loss", K);
                else if ((s = hg_tensor_validate(ctx, e, "hg_unroll (the loss)")) == HG_OK) {
                    if (!hg_is_float(e->dtype) || e->numel != 1) {
                        char a[160];
                        s = hg_set_error(ctx, hg_is_float(e->dtype) ? HG_ERR_SHAPE : HG_ERR_DTYPE,
                                         "hg_unroll: the loss must be one f32/f64 element, got %s %s", HG_SHAPE(e, a),
                                         hg_dtype_name(e->dtype));
                    } else {
                        u.E = hg_item(e);
                        u.E_dtype = e->dtype;
                        u.E_rank = e->rank;
                        memcpy(u.E_shape, e->shape, sizeof u.E_shape);
                    }
                }
            }
            note_step_peak(&u, at);
            if (s == HG_OK)
                hg_ctx_rewind(ctx, m);
        }
    }
    if (s == HG_OK) {
        hg_ctx_rewind(ctx, m1);
        if (d_state0)
            copy_state(u.n, res, u.adj);
        hg_tensor *e = hg_tensor_new(ctx, u.E_dtype, u.E_rank, u.E_shape);
        if (!e) {
            s = hg_ctx_status(ctx);
            goto out;
        }
        if (e->dtype == HG_F64)
            *(double *)e->data = u.E;
        else
            *(float *)e->data = (float)u.E;
        *E = e;
        for (int i = 0; d_state0 && i < u.n; i++)
            d_state0[i] = res[i];
        for (int i = 0; u.want_globals && i < sp->n_globals; i++)
            d_globals[i] = u.dglob[i];
    }
out:
    if (stats) {
        stats->forward_steps = u.forward_steps;
        stats->recomputed_steps = u.forward_steps > K ? u.forward_steps - K : 0;
        stats->recorded_steps = u.recorded;
        stats->snapshots_used = u.depth_used;
        stats->state_bytes = state_bytes;
        stats->buffer_bytes = buffers_end - at_entry;
        stats->step_peak_bytes = u.step_peak;
        stats->arena_peak_bytes = ctx->peak;
    }
    if (ctx->peak < peak_before)
        ctx->peak = peak_before;
    if (s != HG_OK) {
        while (ctx->depth > 0)
            hg_tape_end(ctx->tapes[ctx->depth - 1]);
        hg_ctx_rewind(ctx, m0);
        *E = NULL;
        if (hg_ctx_status(ctx) == HG_OK)
            s = hg_set_error(ctx, s, "hg_unroll: failed (%s)", hg_status_name(s));
        return s;
    }
    return HG_OK;
}
