/* Finite-difference check (see fdcheck.h). */
#include "fdcheck.h"

#include "fd.h"
#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct target {
    hg_ctx *ctx;
    const hypergrad_problem *p;
    perturbation pert;
    progress *bar;
    int64_t done, total;
} target;

static double evaluate(void *user)
{
    target *t = user;
    double e = hypergrad_replay(t->ctx, t->p, &t->pert);
    progress_update(t->bar, ++t->done, NULL);
    return e;
}

static void check_one(fd_summary *s, const char *what, double exact, fd_estimate fd)
{
    double rel = fd_relative_error(exact, fd.value);
    double unc = fd.uncertainty / fmax(fabs(fd.value), 1e-300);
    bool resolved = fd.uncertainty <= FD_RESOLVED * fabs(fd.value) || (fd.value == 0 && exact == 0);
    printf("  %s exact % .10e  fd % .10e  (h %.0e, fd spread %.0e)  rel err %.1e%s\n", what, exact, fd.value, fd.h, unc,
           rel, resolved ? "" : "  ~ not resolved by fd, not counted");
    if (!resolved) {
        s->unresolved++;
        return;
    }
    s->checked++;
    s->worst = fmax(s->worst, rel);
}

/* The pixel of map m with the rank-th largest |dx| (0: the largest),
 * among pixels lit in the image when lit_only; -1 if there are fewer. */
static int64_t pick_pixel(const sample_map *m, const float *image, int64_t pixels, bool lit_only, int rank)
{
    int64_t best = -1;
    double below = INFINITY; /* the previous pick's |dx| */
    for (int q = 0; q <= rank; q++) {
        best = -1;
        for (int64_t j = 0; j < pixels; j++) {
            if (lit_only && !(image[j] > 0))
                continue;
            double v = fabs(m->dx[j]);
            if (v < below && (best < 0 || v > fabs(m->dx[best])))
                best = j;
        }
        if (best < 0)
            return -1;
        below = fabs(m->dx[best]);
    }
    return best;
}

typedef struct fd_target {
    const sample_map *m;
    int64_t pixel; /* PERTURB_WEIGHT: the sample's loss weight */
    const char *why;
} fd_target;

void fd_check(hg_ctx *ctx, const hypergrad_problem *p, const hypergrad_result *r, int pixels, double h_max,
              double h_min, fd_summary *out)
{
    *out = (fd_summary){0};
    int ladder = 0;
    for (double h = h_max; h >= h_min * 0.999; h /= sqrt(10.0))
        ladder++;
    int64_t npx = hg_tensor_dim(p->d->x_train, 1), cols = p->d->cols;
    bool adam = p->opt.kind == HG_OPT_ADAM;
    /* What is checked: the first batch's sample (through every step), then
     * the most helpful and most harmful samples, then more pixels of the
     * drawn samples in turn. */
    fd_target *list = calloc((size_t)pixels + 3, sizeof *list);
    int n = 0;
    if (!list || r->first.index < 0 || r->n_maps < 1) {
        free(list);
        printf("  nothing to check\n");
        return;
    }
    const float *images = hg_tensor_cf32(p->d->x_train);
    list[n++] = (fd_target){&r->first, PERTURB_WEIGHT, "first batch"};
    for (int q = 0; n < pixels + 3; q++) {
        if (q == 1)
            list[n++] = (fd_target){&r->helpful[0], PERTURB_WEIGHT, "most helpful"};
        if (q == 1 && n < pixels + 3)
            list[n++] = (fd_target){&r->harmful[0], PERTURB_WEIGHT, "most harmful"};
        if (n >= pixels + 3)
            break;
        const sample_map *m = q == 0  ? &r->first
                              : q % 2 ? &r->helpful[(q / 2) % r->n_maps]
                                      : &r->harmful[(q / 2 - 1) % r->n_maps];
        int rank = q == 0 ? 0 : (q - 1) / (2 * r->n_maps);
        int64_t j = pick_pixel(m, images + m->index * npx, npx, adam, rank);
        if (j < 0 && q > 4 * r->n_maps + 4)
            break;
        if (j >= 0)
            list[n++] = (fd_target){m, j, q == 0 ? "first batch" : q % 2 ? "helpful" : "harmful"};
    }
    progress bar;
    target t = {ctx, NULL, {0}, &bar, 0, 4 * ladder * n};
    progress_begin(&bar, "finite differences", t.total);
    double t0 = now_seconds();
    hg_mark mark = hg_ctx_mark(ctx);
    /* the same derivative twice (the first batch's sample may also be an extreme) */
    int m = 0;
    for (int k = 0; k < n; k++) {
        bool dup = false;
        for (int q = 0; q < m; q++)
            dup = dup || (list[q].m->index == list[k].m->index && list[q].pixel == list[k].pixel);
        if (!dup)
            list[m++] = list[k];
    }
    n = m;
    t.total = 4 * ladder * n;
    bar.total = t.total;
    for (int k = 0; k < n; k++) {
        const fd_target *f = &list[k];
        /* Steps before the sample's first appearance do not depend on it:
         * E is replayed from the state just before that step. */
        int64_t k_i = hypergrad_first_step(p, f->m->index);
        train_state at;
        hypergrad_problem from = *p;
        if (k_i < 0 || hypergrad_state_at(ctx, p, k_i, &at) != 0) {
            printf("  error: %s\n", hg_ctx_error(ctx));
            break;
        }
        from.k0 = k_i;
        from.start = &at;
        t.p = &from;
        const float *image = images + f->m->index * npx;
        char what[128];
        double exact;
        t.pert = (perturbation){f->m->index, f->pixel, 0};
        if (f->pixel < 0) {
            exact = f->m->dw;
            snprintf(what, sizeof what, "#%-6lld %-12s step %5lld, dE/dw:                ", (long long)f->m->index,
                     f->why, (long long)(k_i + 1));
        } else {
            exact = f->m->dx[f->pixel];
            snprintf(what, sizeof what, "#%-6lld %-12s step %5lld, pixel (%2lld,%2lld) x=%.2f:", (long long)f->m->index,
                     f->why, (long long)(k_i + 1), (long long)(f->pixel / cols), (long long)(f->pixel % cols),
                     image[f->pixel]);
        }
        fd_estimate fd = fd_derivative_until(&t.pert.delta, evaluate, &t, h_max, h_min, FD_RESOLVED / 3);
        out->evaluations += fd.evaluations;
        hg_ctx_rewind(ctx, mark);
        if (bar.tty) {
            progress_end(&bar);
            bar.tty = true;
        }
        check_one(out, what, exact, fd);
    }
    progress_end(&bar);
    free(list);
    out->seconds = now_seconds() - t0;
}
