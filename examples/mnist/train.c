/* Training for mnist_hypergrad (see train.h). */
#include "train.h"

#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int schedule_make(schedule *s, int64_t n, int64_t batch, int epochs, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    if (n < 1 || n > INT32_MAX || batch < 1 || epochs < 1 || (uint64_t)n * (uint64_t)epochs > SIZE_MAX / 8) {
        fprintf(stderr, "error: cannot schedule %lld samples over %d epochs\n", (long long)n, epochs);
        return -1;
    }
    s->order = malloc((size_t)n * (size_t)epochs * sizeof *s->order);
    if (!s->order) {
        fprintf(stderr, "error: out of memory for the training order\n");
        return -1;
    }
    s->n = n;
    s->batch = batch;
    s->epochs = epochs;
    s->steps_per_epoch = (n + batch - 1) / batch;
    hg_rng rng;
    hg_rng_seed(&rng, seed ^ 0x5eed5eedULL);
    for (int e = 0; e < epochs; e++) {
        int32_t *o = s->order + (size_t)e * (size_t)n;
        for (int64_t i = 0; i < n; i++)
            o[i] = (int32_t)i;
        for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
            int64_t j = (int64_t)(hg_rng_next(&rng) % (uint64_t)(i + 1));
            int32_t t = o[i];
            o[i] = o[j];
            o[j] = t;
        }
    }
    return 0;
}

void schedule_free(schedule *s)
{
    free(s->order);
    s->order = NULL;
}

int64_t schedule_steps(const schedule *s)
{
    return s->steps_per_epoch * s->epochs;
}

const int32_t *schedule_batch(const schedule *s, int64_t k, int64_t *count)
{
    int64_t e = k / s->steps_per_epoch, j = k % s->steps_per_epoch, first = j * s->batch;
    *count = first + s->batch <= s->n ? s->batch : s->n - first;
    return s->order + e * s->n + first;
}

const int32_t *step_rows(const schedule *s, const dist *dd, int64_t k, int64_t *count, int64_t *global)
{
    int64_t start;
    const int32_t *idx = schedule_batch(s, k, global);
    dist_rows(dd, *global, &start, count);
    return idx + start;
}

hg_status step_inputs(hg_ctx *ctx, const dataset *d, const schedule *s, const dist *dd, int64_t k, hg_dtype dtype,
                      const perturbation *pert, hg_tensor **x, hg_tensor **y, hg_tensor **w)
{
    int64_t count, global, pixels = hg_tensor_dim(d->x_train, 1);
    const int32_t *idx = step_rows(s, dd, k, &count, &global);
    *x = hg_tensor_new(ctx, dtype, 2, (int64_t[]){count, pixels});
    *y = hg_tensor_new(ctx, HG_I32, 1, &count);
    *w = hg_ones(ctx, dtype, 1, &count);
    if (!*x || !*y || !*w)
        return hg_ctx_status(ctx);
    const float *src = hg_tensor_cf32(d->x_train);
    const int32_t *labels = hg_tensor_ci32(d->y_train);
    int32_t *yd = hg_tensor_i32(*y);
    for (int64_t i = 0; i < count; i++) {
        const float *row = src + (int64_t)idx[i] * pixels;
        if (dtype == HG_F64) {
            double *xd = hg_tensor_f64(*x) + i * pixels;
            for (int64_t j = 0; j < pixels; j++)
                xd[j] = row[j];
        } else {
            memcpy(hg_tensor_f32(*x) + i * pixels, row, (size_t)pixels * sizeof(float));
        }
        yd[i] = labels[idx[i]];
        if (pert && pert->sample == idx[i]) {
            /* In the dtype of the computation: a step of 1e-6 survives in f64. */
            int64_t from = pert->pixel >= 0 ? i * pixels + pert->pixel : i * pixels;
            int64_t to = pert->pixel >= 0 ? from + 1 : from + pixels;
            hg_tensor *t = *x;
            if (pert->pixel == PERTURB_WEIGHT)
                t = *w, from = i, to = i + 1;
            for (int64_t at = from; at < to; at++) {
                if (dtype == HG_F64)
                    hg_tensor_f64(t)[at] += pert->delta;
                else
                    hg_tensor_f32(t)[at] += (float)pert->delta;
            }
        }
    }
    return HG_OK;
}

hg_tensor *train_loss(hg_ctx *ctx, const hg_mlp *spec, hg_tensor *const *params, hg_tensor *x, hg_tensor *y,
                      hg_tensor *w, int64_t global)
{
    hg_tensor *each = hg_softmax_cross_entropy_each(ctx, hg_mlp_forward(ctx, spec, params, x), y);
    if (x && hg_tensor_dim(x, 0) == global)
        return hg_mean(ctx, hg_mul(ctx, w, each));
    return hg_scale(ctx, hg_sum(ctx, hg_mul(ctx, w, each)), 1.0 / (double)global);
}

/* The accuracy on x_test/y_test, each rank counting its block of rows. */
static double accuracy(hg_ctx *ctx, const dist *dd, const hg_mlp *spec, hg_tensor *const *params, hg_tensor *x,
                       hg_tensor *y)
{
    int64_t n = hg_tensor_dim(x, 0), start, count;
    dist_rows(dd, n, &start, &count);
    if (count == n)
        return hg_accuracy(ctx, hg_mlp_forward(ctx, spec, params, x), y);
    double correct = 0;
    if (count > 0) {
        hg_tensor *xs = hg_slice_axis(ctx, x, 0, start, start + count, 1);
        hg_tensor *ys = hg_slice_axis(ctx, y, 0, start, start + count, 1);
        correct = round(hg_accuracy(ctx, hg_mlp_forward(ctx, spec, params, xs), ys) * (double)count);
    }
    /* NaN (a failure on any rank) survives the sum */
    return dist_sum_f64(ctx, dd, &correct, 1) == HG_OK ? correct / (double)n : NAN;
}

/* A copy of the training state (weights, optimizer state, step count) in keep. */
static int capture_state(hg_ctx *keep, int np, int ns, hg_tensor *const *params, hg_tensor *const *opt, int t,
                         train_state *st)
{
    memset(st, 0, sizeof *st);
    st->np = np;
    st->ns = ns;
    st->t = t;
    for (int i = 0; i < np; i++)
        st->params[i] = hyper_copy_as(keep, params[i], hg_tensor_dtype(params[i]));
    for (int i = 0; i < ns; i++)
        st->opt[i] = hyper_copy_as(keep, opt[i], hg_tensor_dtype(opt[i]));
    if (hg_ctx_status(keep) != HG_OK) {
        fprintf(stderr, "error: keeping the training state: %s\n", hg_ctx_error(keep));
        return -1;
    }
    return 0;
}

int train(hg_ctx *ctx, hg_ctx *keep, const dist *dd, const dataset *d, const schedule *s, const hg_mlp *spec,
          const hg_opt_config *cfg, hg_dtype dtype, uint64_t seed, hg_tensor *x_test, hg_tensor *y_test,
          int64_t capture, train_state *captured, hg_tensor **final, train_report *rep)
{
    memset(rep, 0, sizeof *rep);
    int np = hg_mlp_param_count(spec), ns = np < 0 ? 0 : hg_opt_state_count(cfg->kind, np);
    hg_tensor *params[HYPER_MAX_PARAMS] = {0}, *opt[2 * HYPER_MAX_PARAMS];
    hg_rng rng;
    hg_rng_seed(&rng, seed);
    hg_status init = np < 0 ? HG_ERR_INVALID : hg_mlp_init(ctx, spec, dtype, HG_INIT_HE, &rng, params);
    if (np < 0 || (init != HG_OK && dd->size == 1) || dist_broadcast(ctx, dd, np, params) != HG_OK) {
        fprintf(stderr, "error: initialising the MLP: %s\n", hg_ctx_error(ctx));
        return -1;
    }
    /* The optimizer state as explicit tensors (zeros: a fresh state), so
     * that the state before any step can be kept and continued from. */
    for (int i = 0; i < ns; i++)
        opt[i] = hg_zeros_like(ctx, params[i % np]);
    hg_tensor *xt = hyper_copy_as(ctx, x_test, dtype);
    if (!xt || hg_ctx_status(ctx) != HG_OK) {
        fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
        return -1;
    }
    int64_t steps = schedule_steps(s);
    progress bar;
    double t0 = now_seconds();
    hg_mark step_mark = hg_ctx_mark(ctx);
    /* A rank that fails on its own (out of memory) sets `failed`: its next
     * sum over the ranks then fails on every rank, so no rank waits. */
    bool failed = false;
    for (int64_t k = 0; k < steps; k++) {
        if (k == capture && capture_state(keep, np, ns, params, opt, (int)k, captured) != 0)
            failed = true;
        int epoch = (int)(k / s->steps_per_epoch) + 1;
        if (k % s->steps_per_epoch == 0) {
            progress_begin(&bar, "", s->steps_per_epoch);
            rep->final_loss = 0;
        }
        /* One step: the same code the hypergradient differentiates
         * (hypergrad.c), run without an outer tape. Over MPI: this rank's
         * part of the batch loss, its gradient summed over the ranks (with
         * the loss, for the progress line), the same step on every rank. */
        hg_tensor *x, *y, *w, *grads[HYPER_MAX_PARAMS + 1], *next[HYPER_MAX_PARAMS], *state[2 * HYPER_MAX_PARAMS];
        int64_t count, global;
        step_rows(s, dd, k, &count, &global);
        memcpy(state, opt, (size_t)ns * sizeof *state);
        step_inputs(ctx, d, s, dd, k, dtype, NULL, &x, &y, &w);
        hg_tape *tape = hg_tape_begin(ctx, 0);
        hg_watch_n(tape, np, params);
        hg_tensor *loss = train_loss(ctx, spec, params, x, y, w, global);
        hg_tape_end(tape);
        hg_status st = failed ? HG_ERR_INVALID : hg_gradient(tape, loss, np, params, NULL, grads);
        for (int i = 0; i < np; i++)
            grads[i] = st == HG_OK ? grads[i] : NULL;
        grads[np] = hyper_copy_as(ctx, loss, dtype);
        if (dist_sum_inplace(ctx, dd, np + 1, grads) != HG_OK || st != HG_OK) {
            if (!failed)
                fprintf(stderr, "error: training step %lld: %s\n", (long long)k + 1, hg_ctx_error(ctx));
            return -1;
        }
        if (hg_opt_step(ctx, cfg, NULL, (int)k + 1, np, params, grads, state, next) != HG_OK) {
            fprintf(stderr, "error: training step %lld: %s\n", (long long)k + 1, hg_ctx_error(ctx));
            failed = true;
            hg_ctx_rewind(ctx, step_mark);
            continue;
        }
        for (int i = 0; i < np; i++)
            memcpy(hg_tensor_data(params[i]), hg_tensor_cdata(next[i]),
                   (size_t)hg_tensor_numel(params[i]) * hg_dtype_size(dtype));
        for (int i = 0; i < ns; i++)
            memcpy(hg_tensor_data(opt[i]), hg_tensor_cdata(state[i]),
                   (size_t)hg_tensor_numel(opt[i]) * hg_dtype_size(dtype));
        int64_t j = k % s->steps_per_epoch + 1;
        rep->final_loss += hg_item(grads[np]);
        hg_ctx_rewind(ctx, step_mark);
        char note[64], label[32];
        snprintf(label, sizeof label, "epoch %d/%d", epoch, s->epochs);
        bar.label = label;
        snprintf(note, sizeof note, "loss %.4f", rep->final_loss / (double)j);
        progress_update(&bar, j, note);
        if (j == s->steps_per_epoch) {
            progress_end(&bar);
            rep->final_loss /= (double)j;
            rep->accuracy = accuracy(ctx, dd, spec, params, xt, y_test);
            hg_ctx_rewind(ctx, step_mark);
            if (isnan(rep->accuracy)) {
                fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
                return -1;
            }
            printf("  epoch %2d/%d  train loss %.4f  test accuracy %.2f%%  (%.1f s)\n", epoch, s->epochs,
                   rep->final_loss, 100 * rep->accuracy, now_seconds() - t0);
            fflush(stdout);
        }
    }
    if (!failed && capture == steps && capture_state(keep, np, ns, params, opt, (int)steps, captured) != 0)
        failed = true;
    if (dist_max(dd, failed) != 0) {
        if (!failed)
            fprintf(stderr, "error: training failed on another rank (see its message)\n");
        return -1;
    }
    memcpy(final, params, (size_t)np * sizeof *final);
    rep->seconds = now_seconds() - t0;
    return 0;
}
