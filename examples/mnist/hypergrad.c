/* The hypergradient through training steps (see hypergrad.h).
 *
 * The library's part comes first: one training step as recorded ops (its
 * inner gradient nested inside), E_val, the callbacks that hand them to the
 * checkpointed unroll, and differentiate(), the one hg_unroll call that
 * differentiates E_val through all the steps. Everything after them is
 * bookkeeping (accumulating per-sample results, the maps for the picture).
 * Over MPI (distributed.h) the same code runs on every rank with that
 * rank's rows of each batch and of the validation set: the only
 * differences are the all-reduce of the step's gradient (dist_sum_n,
 * recorded ops whose vjp is an all-reduce again) and E_val being a sum of
 * the ranks' parts. */
#include "hypergrad.h"

#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct run {
    const hypergrad_problem *p;
    int np, ns;
    hypergrad_result *r;
    const perturbation *pert;
    progress bar;
    int64_t steps_done; /* progress of the unroll's current sweep */
    bool in_reverse;    /* the forward sweep is over */
    double t_phase;
} run;

/* Step k's batch: x (pixels), y (labels), w (per-sample loss weights, 1). */
static hg_status inputs(hg_ctx *ctx, const run *u, int64_t k, hg_tensor **in)
{
    return step_inputs(ctx, u->p->d, u->p->s, u->p->dist, k, u->p->dtype, u->pert, &in[0], &in[1], &in[2]);
}

/* One training step as recorded ops: state = {params..., optimizer state...}.
 * The inner tape's gradient is itself recorded on whatever tape is active,
 * so the step can be differentiated with respect to its inputs. Over MPI
 * `in` holds this rank's rows, and the gradient of its part of the batch
 * loss is summed over the ranks before the optimizer step. */
static hg_status step(hg_ctx *ctx, const run *u, int64_t k, hg_tensor *const *state, hg_tensor *const *in,
                      hg_tensor **next)
{
    const hypergrad_problem *p = u->p;
    hg_tensor *params[HYPER_MAX_PARAMS], *grads[HYPER_MAX_PARAMS], *opt[2 * HYPER_MAX_PARAMS] = {0};
    memcpy(params, state, (size_t)u->np * sizeof *params);
    memcpy(opt, state + u->np, (size_t)u->ns * sizeof *opt);
    hg_tape *inner = hg_tape_begin(ctx, 0);
    hg_watch_n(inner, u->np, params);
    int64_t count, global;
    step_rows(p->s, p->dist, k, &count, &global);
    hg_tensor *loss = train_loss(ctx, &p->spec, params, in[0], in[1], in[2], global);
    hg_tape_end(inner);
    int t = p->start->t + (int)(k - p->k0) + 1; /* Adam's step number */
    bool ok = hg_gradient(inner, loss, u->np, params, NULL, grads) == HG_OK;
    for (int i = 0; !ok && i < u->np; i++)
        grads[i] = NULL;                    /* then the sum fails on every rank */
    dist_sum_n(ctx, p->dist, u->np, grads); /* one recorded all-reduce of all the gradients */
    if (hg_opt_step(ctx, &p->opt, NULL, t, u->np, params, grads, opt, next) != HG_OK)
        return hg_ctx_status(ctx);
    memcpy(next + u->np, opt, (size_t)u->ns * sizeof *opt);
    return HG_OK;
}

/* E_val at the end of the window: this rank's part (its rows' mean loss
 * times its share of the rows; E_val itself on one process). */
static hg_tensor *val_loss(hg_ctx *ctx, const run *u, hg_tensor *const *state)
{
    const hypergrad_problem *p = u->p;
    hg_tensor *E = hyper_val_loss_of(ctx, &p->spec, state, p->x_val, p->y_val, p->loss);
    int64_t mine = hg_tensor_dim(p->x_val, 0);
    return mine == p->val_total ? E : hg_scale(ctx, E, (double)mine / (double)p->val_total);
}

static void on_grad(run *u, int64_t k, hg_tensor *dx, hg_tensor *dw);
static bool appears_once(const hypergrad_problem *p);

/* hg_unroll's callbacks: step k of the unroll is training step k0 + k. */
static hg_status unroll_inputs(hg_ctx *ctx, int k, hg_tensor **in, void *user)
{
    run *u = user;
    return inputs(ctx, u, u->p->k0 + k, in);
}

static hg_status unroll_step(hg_ctx *ctx, int k, hg_tensor *const *state, hg_tensor *const *in,
                             hg_tensor *const *globals, hg_tensor **next, void *user)
{
    (void)globals;
    run *u = user;
    hg_status s = step(ctx, u, u->p->k0 + k, state, in, next);
    if (!u->in_reverse)
        progress_update(&u->bar, ++u->steps_done, NULL);
    return s;
}

static hg_tensor *unroll_loss(hg_ctx *ctx, hg_tensor *const *state, hg_tensor *const *globals, void *user)
{
    (void)globals;
    return val_loss(ctx, user, state);
}

/* In the reverse sweep, for k = K-1 .. 0: in = {x, y, w} of the step,
 * g = {dE_val/dx, NULL (labels), dE_val/dw}. */
static hg_status unroll_grad(hg_ctx *ctx, int k, hg_tensor *const *in, hg_tensor *const *g, void *user)
{
    (void)ctx;
    (void)in;
    run *u = user;
    if (!u->in_reverse) {
        /* the first gradient: the forward sweep (with its snapshots) is over */
        u->in_reverse = true;
        u->steps_done = 0;
        progress_end(&u->bar);
        u->r->seconds_forward = now_seconds() - u->t_phase;
        u->t_phase = now_seconds();
        progress_begin(&u->bar, "reverse sweep", u->p->k1 - u->p->k0);
    }
    on_grad(u, u->p->k0 + k, g[0], g[2]);
    progress_update(&u->bar, ++u->steps_done, NULL);
    return HG_OK;
}

/* dE_val/d(each step's x and w) through the whole window with the
 * library's checkpointed unroll: the forward keeps `snapshots` states, the
 * reverse sweep recomputes each step from the nearest one, records it and
 * hands its batch's gradients to unroll_grad. Memory: the snapshots plus
 * one recorded step, whatever the number of steps. */
static hg_status differentiate(hg_ctx *ctx, run *u, hg_tensor *const *state0)
{
    const hypergrad_problem *p = u->p;
    int64_t K = p->k1 - p->k0;
    if (K > HG_UNROLL_MAX_STEPS) {
        fprintf(stderr, "error: %lld steps: hg_unroll takes at most %d\n", (long long)K, HG_UNROLL_MAX_STEPS);
        return HG_ERR_RANGE;
    }
    int nst = u->np + u->ns, snapshots = p->snapshots;
    if (snapshots <= 0) {
        snapshots = (int)hg_unroll_snapshots_within(K, nst, state0, HYPERGRAD_SNAPSHOT_BYTES);
        snapshots = snapshots < 1 ? 1 : snapshots;
    }
    hg_unroll_spec spec = {.steps = (int)K,
                           .n_state = nst,
                           .state0 = state0,
                           .n_inputs = 3,
                           .snapshots = snapshots,
                           .inputs = unroll_inputs,
                           .step = unroll_step,
                           .loss = unroll_loss,
                           .on_grad = unroll_grad,
                           .user = u};
    /* The forward sweep evaluates K steps, then the schedule's recomputations
     * run interleaved with the reverse sweep (counted there). */
    u->steps_done = 0;
    u->in_reverse = false;
    u->t_phase = now_seconds();
    progress_begin(&u->bar, "forward (snapshots)", K);
    hg_tensor *E = NULL;
    hg_unroll_stats st;
    hg_status s = hg_unroll(ctx, &spec, &E, NULL, NULL, &st);
    progress_end(&u->bar);
    u->r->seconds_reverse = now_seconds() - u->t_phase;
    u->r->recomputed = st.recomputed_steps;
    u->r->snapshots_used = st.snapshots_used;
    u->r->step_peak = st.step_peak_bytes;
    if (s == HG_OK)
        u->r->val_loss = hg_item(E); /* this rank's part */
    return s;
}

/* ---- bookkeeping ---------------------------------------------------------- */

/* Keeps the HYPERGRAD_TOP most negative (helpful) or positive (harmful) dw
 * with their maps; sign -1 for helpful. Only used when every sample
 * appears at most once, so a sample's values are final when they arrive. */
static void consider(sample_map *top, int *n, int sign, int64_t index, double dw, const double *dx, int64_t pixels)
{
    int slot = -1;
    if (*n < HYPERGRAD_TOP)
        slot = (*n)++;
    else {
        int weakest = 0;
        for (int i = 1; i < HYPERGRAD_TOP; i++)
            if (sign * top[i].dw < sign * top[weakest].dw)
                weakest = i;
        if (sign * dw > sign * top[weakest].dw)
            slot = weakest;
    }
    if (slot < 0)
        return;
    if (!top[slot].dx)
        top[slot].dx = malloc((size_t)pixels * sizeof(double));
    if (!top[slot].dx)
        return;
    top[slot].index = index;
    top[slot].dw = dw;
    memcpy(top[slot].dx, dx, (size_t)pixels * sizeof(double));
}

static void on_grad(run *u, int64_t k, hg_tensor *dx, hg_tensor *dw)
{
    hypergrad_result *r = u->r;
    int64_t count, global, pixels = hg_tensor_dim(u->p->d->x_train, 1);
    const int32_t *idx = step_rows(u->p->s, u->p->dist, k, &count, &global);
    bool once = appears_once(u->p);
    double row[4096], *rowp = pixels <= 4096 ? row : malloc((size_t)pixels * sizeof(double));
    if (!rowp)
        return;
    for (int64_t i = 0; i < count; i++) {
        double v = hg_get(dw, i);
        r->finite = r->finite && isfinite(v);
        r->dw[idx[i]] += v;
        for (int64_t j = 0; j < pixels; j++) {
            rowp[j] = hg_get(dx, i * pixels + j);
            r->finite = r->finite && isfinite(rowp[j]);
        }
        if (r->dx)
            for (int64_t j = 0; j < pixels; j++)
                r->dx[(int64_t)idx[i] * pixels + j] += (float)rowp[j];
        if (k == u->p->k0 && (r->first.index < 0 || fabs(v) > fabs(r->first.dw))) {
            int one = 0;
            r->first.dw = -INFINITY;
            consider(&r->first, &one, +1, idx[i], v, rowp, pixels);
        }
        if (once) {
            int nh = r->n_maps, nb = r->n_maps;
            consider(r->helpful, &nh, -1, idx[i], v, rowp, pixels);
            consider(r->harmful, &nb, +1, idx[i], v, rowp, pixels);
            r->n_maps = nh;
        }
    }
    if (rowp != row)
        free(rowp);
}

/* Over MPI each rank holds the values of its own rows: E_val's parts,
 * dw (and dx where kept) are summed over the ranks, and the samples for the
 * maps are chosen among every rank's candidates in rank order, so every
 * rank ends with the same result (a single process's, up to the order of
 * the sums). Collective; nothing to do on one process. */
static hg_status combine(hg_ctx *ctx, const run *u, bool once)
{
    const dist *dd = u->p->dist;
    hypergrad_result *r = u->r;
    if (dd->size == 1)
        return HG_OK;
    int64_t n = hg_tensor_dim(u->p->d->x_train, 0), pixels = hg_tensor_dim(u->p->d->x_train, 1);
    double scalars[2] = {r->val_loss, r->finite ? 0 : 1};
    hg_status s = dist_sum_f64(ctx, dd, scalars, 2);
    if (s == HG_OK)
        s = dist_sum_f64(ctx, dd, r->dw, n);
    if (s == HG_OK && r->dx)
        s = dist_sum_f32(ctx, dd, r->dx, n * pixels);
    r->val_loss = scalars[0];
    r->finite = scalars[1] == 0;
    /* Candidates: {index, dw, dx[pixels]} for the first-batch sample, then
     * the helpful and the harmful ones (index -1: none). */
    enum { SLOTS = 2 * HYPERGRAD_TOP + 1 };
    int64_t len = SLOTS * (2 + pixels);
    double *mine = calloc((size_t)len, sizeof *mine);
    double *all = malloc((size_t)(len * dd->size) * sizeof *all);
    if (mine) {
        for (int q = 0; q < SLOTS; q++) {
            const sample_map *m = q == 0               ? &r->first
                                  : q <= HYPERGRAD_TOP ? &r->helpful[q - 1]
                                                       : &r->harmful[q - 1 - HYPERGRAD_TOP];
            bool have = m->index >= 0 && m->dx;
            double *e = mine + q * (2 + pixels);
            e[0] = have ? (double)m->index : -1;
            e[1] = have ? m->dw : 0;
            if (have)
                memcpy(e + 2, m->dx, (size_t)pixels * sizeof *e);
        }
    }
    if (s == HG_OK)
        s = dist_gather_f64(ctx, dd, all ? mine : NULL, len, all);
    free(mine);
    if (s != HG_OK) {
        free(all);
        return s;
    }
    sample_map first = {.index = -1}, helpful[HYPERGRAD_TOP], harmful[HYPERGRAD_TOP];
    for (int i = 0; i < HYPERGRAD_TOP; i++)
        helpful[i] = harmful[i] = (sample_map){.index = -1};
    int nh = 0, nb = 0;
    for (int rank = 0; rank < dd->size; rank++)
        for (int q = 0; q < SLOTS; q++) {
            const double *e = all + (int64_t)rank * len + q * (2 + pixels);
            if (e[0] < 0)
                continue;
            if (q == 0) {
                if (first.index < 0 || fabs(e[1]) > fabs(first.dw)) {
                    int one = 0;
                    first.dw = -INFINITY;
                    consider(&first, &one, +1, (int64_t)e[0], e[1], e + 2, pixels);
                }
            } else if (once) {
                consider(q <= HYPERGRAD_TOP ? helpful : harmful, q <= HYPERGRAD_TOP ? &nh : &nb,
                         q <= HYPERGRAD_TOP ? -1 : +1, (int64_t)e[0], e[1], e + 2, pixels);
            }
        }
    free(all);
    for (int i = 0; i < HYPERGRAD_TOP; i++) {
        free(r->helpful[i].dx);
        free(r->harmful[i].dx);
        r->helpful[i] = helpful[i];
        r->harmful[i] = harmful[i];
    }
    free(r->first.dx);
    r->first = first;
    r->n_maps = nh < nb ? nh : nb;
    return HG_OK;
}

static int by_dw(const void *a, const void *b)
{
    double x = ((const sample_map *)a)->dw, y = ((const sample_map *)b)->dw;
    return x < y ? -1 : x > y;
}

/* Does every sample appear at most once in the window (within one epoch)? */
static bool appears_once(const hypergrad_problem *p)
{
    return p->k0 / p->s->steps_per_epoch == (p->k1 - 1) / p->s->steps_per_epoch;
}

/* The starting state in the computation's dtype (constants in ctx). */
static hg_status start_state(hg_ctx *ctx, const run *u, hg_tensor **state)
{
    for (int i = 0; i < u->np; i++)
        state[i] = hyper_copy_as(ctx, u->p->start->params[i], u->p->dtype);
    for (int i = 0; i < u->ns; i++)
        state[u->np + i] = i < u->p->start->ns && u->p->start->opt[i]
                               ? hyper_copy_as(ctx, u->p->start->opt[i], u->p->dtype)
                               : hg_zeros_like(ctx, state[i % u->np]);
    return hg_ctx_status(ctx);
}

int hypergrad_run(hg_ctx *ctx, const hypergrad_problem *p, bool want_dx, hypergrad_result *r)
{
    memset(r, 0, sizeof *r);
    r->finite = true;
    int64_t n = p->d->x_train ? hg_tensor_dim(p->d->x_train, 0) : 0, pixels = hg_tensor_dim(p->d->x_train, 1);
    run u = {.p = p, .np = hg_mlp_param_count(&p->spec), .r = r};
    u.ns = hg_opt_state_count(p->opt.kind, u.np);
    for (int i = 0; i < HYPERGRAD_TOP; i++)
        r->helpful[i].index = r->harmful[i].index = -1;
    r->first.index = -1;
    r->dw = calloc((size_t)n, sizeof *r->dw);
    bool once = appears_once(p);
    if (want_dx || !once)
        r->dx = calloc((size_t)(n * pixels), sizeof *r->dx);
    /* Samples the window touches. */
    int32_t *seen = calloc((size_t)n, sizeof *seen);
    if (!r->dw || !seen || ((want_dx || !once) && !r->dx))
        hg_op_error(ctx, HG_ERR_OOM, "out of memory for the per-sample results (%lld samples)", (long long)n);
    if (dist_agree(ctx, p->dist) != HG_OK) {
        free(seen);
        fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
        return -1;
    }
    for (int64_t k = p->k0; k < p->k1; k++) {
        int64_t count;
        const int32_t *idx = schedule_batch(p->s, k, &count);
        for (int64_t i = 0; i < count; i++)
            r->touched += !seen[idx[i]]++;
    }
    free(seen);
    hg_mark mark = hg_ctx_mark(ctx);
    hg_ctx_reset_peak(ctx);
    size_t base = hg_ctx_get_stats(ctx).bytes_in_use;
    hg_tensor *state0[4 * HYPER_MAX_PARAMS];
    start_state(ctx, &u, state0);
    hg_status s = dist_agree(ctx, p->dist); /* start_state's errors are on ctx */
    if (s == HG_OK)
        s = differentiate(ctx, &u, state0);
    r->arena_peak = hg_ctx_get_stats(ctx).peak_bytes - base;
    hg_status agreed = dist_agree(ctx, p->dist); /* every rank, whatever happened */
    if (s == HG_OK)
        s = agreed;
    if (s == HG_OK)
        s = combine(ctx, &u, once);
    if (s != HG_OK) {
        fprintf(stderr, "error: hypergradient: %s\n", hg_ctx_error(ctx));
        hg_ctx_rewind(ctx, mark);
        return -1;
    }
    hg_ctx_rewind(ctx, mark);
    r->finite = r->finite && isfinite(r->val_loss);
    if (!once) {
        /* A sample's values are sums over its appearances: the maps come
         * from the full dE_val/dx once the sweep is complete. */
        double *row = malloc((size_t)pixels * sizeof *row);
        if (!row)
            return -1;
        int nh = 0, nb = 0;
        for (int64_t i = 0; i < n; i++) {
            if (r->dw[i] == 0)
                continue; /* untouched */
            for (int64_t j = 0; j < pixels; j++)
                row[j] = r->dx[i * pixels + j];
            consider(r->helpful, &nh, -1, i, r->dw[i], row, pixels);
            consider(r->harmful, &nb, +1, i, r->dw[i], row, pixels);
        }
        r->n_maps = nh;
        /* the first batch's sample too: its sums, as the finite
         * differences perturb it at every appearance */
        if (r->first.index >= 0 && r->first.dx) {
            r->first.dw = r->dw[r->first.index];
            for (int64_t j = 0; j < pixels; j++)
                r->first.dx[j] = r->dx[r->first.index * pixels + j];
        }
        free(row);
    }
    /* most helpful first, most harmful first */
    qsort(r->helpful, (size_t)r->n_maps, sizeof *r->helpful, by_dw);
    qsort(r->harmful, (size_t)r->n_maps, sizeof *r->harmful, by_dw);
    for (int i = 0; i < r->n_maps / 2; i++) {
        sample_map t = r->harmful[i];
        r->harmful[i] = r->harmful[r->n_maps - 1 - i];
        r->harmful[r->n_maps - 1 - i] = t;
    }
    return 0;
}

void hypergrad_free(hypergrad_result *r)
{
    free(r->dw);
    free(r->dx);
    for (int i = 0; i < HYPERGRAD_TOP; i++) {
        free(r->helpful[i].dx);
        free(r->harmful[i].dx);
    }
    free(r->first.dx);
    memset(r, 0, sizeof *r);
}

/* Replays steps [from, to) unrecorded on state (persistent tensors, updated
 * in place; the arena is rewound after every step). */
static hg_status replay(hg_ctx *ctx, const run *u, hg_tensor **state, int64_t from, int64_t to)
{
    int nst = u->np + u->ns;
    hg_tensor *next[4 * HYPER_MAX_PARAMS], *in[3];
    hg_mark step_mark = hg_ctx_mark(ctx);
    for (int64_t k = from; k < to; k++) {
        /* The step runs even if its inputs failed (NULLs): its sums over the
         * ranks then fail on every rank, and every rank stops here. */
        in[0] = in[1] = in[2] = NULL;
        inputs(ctx, u, k, in);
        if (step(ctx, u, k, state, in, next) != HG_OK)
            return hg_ctx_status(ctx);
        for (int i = 0; i < nst; i++)
            memcpy(hg_tensor_data(state[i]), hg_tensor_cdata(next[i]),
                   (size_t)hg_tensor_numel(state[i]) * hg_dtype_size(u->p->dtype));
        hg_ctx_rewind(ctx, step_mark);
    }
    return HG_OK;
}

double hypergrad_replay(hg_ctx *ctx, const hypergrad_problem *p, const perturbation *pert)
{
    run u = {.p = p, .np = hg_mlp_param_count(&p->spec), .pert = pert};
    u.ns = hg_opt_state_count(p->opt.kind, u.np);
    hg_mark mark = hg_ctx_mark(ctx);
    hg_tensor *state[4 * HYPER_MAX_PARAMS];
    double E = NAN;
    /* Collective: every rank replays, whatever start_state did. */
    hg_status s0 = start_state(ctx, &u, state);
    if (replay(ctx, &u, state, p->k0, p->k1) == HG_OK) {
        hg_tensor *Et = dist_sum(ctx, p->dist, val_loss(ctx, &u, state));
        E = Et && s0 == HG_OK ? hg_item(Et) : NAN;
    }
    hg_ctx_rewind(ctx, mark);
    return E;
}

double hypergrad_val_loss(hg_ctx *ctx, const hypergrad_problem *p, hg_tensor *const *params)
{
    hg_mark mark = hg_ctx_mark(ctx);
    hypergrad_problem q = *p; /* the validation rows in params' ctx */
    q.x_val = hyper_copy_as(ctx, p->x_val, p->dtype);
    q.y_val = hyper_copy_as(ctx, p->y_val, HG_I32);
    run u = {.p = &q};
    hg_tensor *Et = dist_sum(ctx, p->dist, val_loss(ctx, &u, params));
    double E = Et ? hg_item(Et) : NAN;
    hg_ctx_rewind(ctx, mark);
    return E;
}

int hypergrad_state_at(hg_ctx *ctx, const hypergrad_problem *p, int64_t k, train_state *out)
{
    run u = {.p = p, .np = hg_mlp_param_count(&p->spec)};
    u.ns = hg_opt_state_count(p->opt.kind, u.np);
    hg_tensor *state[4 * HYPER_MAX_PARAMS];
    memset(out, 0, sizeof *out);
    hg_status s0 = start_state(ctx, &u, state); /* collective: every rank replays */
    if (replay(ctx, &u, state, p->k0, k) != HG_OK || s0 != HG_OK)
        return -1;
    out->np = u.np;
    out->ns = u.ns;
    memcpy(out->params, state, (size_t)u.np * sizeof *state);
    memcpy(out->opt, state + u.np, (size_t)u.ns * sizeof *state);
    out->t = p->start->t + (int)(k - p->k0);
    return 0;
}

int64_t hypergrad_first_step(const hypergrad_problem *p, int64_t sample)
{
    for (int64_t k = p->k0; k < p->k1; k++) {
        int64_t count;
        const int32_t *idx = schedule_batch(p->s, k, &count);
        for (int64_t i = 0; i < count; i++)
            if (idx[i] == sample)
                return k;
    }
    return -1;
}
