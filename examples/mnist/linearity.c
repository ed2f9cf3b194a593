/* Linearity and leave-one-out (see linearity.h). */
#include "linearity.h"

#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* E_val with one perturbation, replayed from the sample's first step. */
static double replay_from_sample(hg_ctx *ctx, const hypergrad_problem *p, const perturbation *pert)
{
    int64_t k = hypergrad_first_step(p, pert->sample);
    if (k < 0)
        return NAN;
    hg_mark m = hg_ctx_mark(ctx);
    train_state at;
    hypergrad_problem from = *p;
    double e = NAN;
    if (hypergrad_state_at(ctx, p, k, &at) == 0) {
        from.k0 = k;
        from.start = &at;
        e = hypergrad_replay(ctx, &from, pert);
    }
    hg_ctx_rewind(ctx, m);
    return e;
}

static double pearson(const double *a, const double *b, int n)
{
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++)
        ma += a[i] / n, mb += b[i] / n;
    for (int i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return sab / sqrt(saa * sbb);
}

static void ranks(const double *v, double *r, int n)
{
    for (int i = 0; i < n; i++) {
        int below = 0, equal = 0;
        for (int j = 0; j < n; j++)
            below += v[j] < v[i], equal += v[j] == v[i];
        r[i] = below + (equal - 1) / 2.0;
    }
}

double linearity_report(hg_ctx *ctx, const hypergrad_problem *p, const hypergrad_result *r, int n)
{
    double t0 = now_seconds();
    if (r->n_maps < 1)
        return 0;
    static const double eps[] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1};
    int ne = (int)(sizeof eps / sizeof eps[0]);
    if (n > r->n_maps)
        n = r->n_maps;
    progress bar;
    progress_begin(&bar, "linearity replays", 4 * ne + 2 * n);
    int done = 0;
    for (int s = 0; s < 2; s++) {
        const sample_map *m = s ? &r->harmful[0] : &r->helpful[0];
        double brightness = 0;
        for (int64_t j = 0; j < hg_tensor_dim(p->d->x_train, 1); j++)
            brightness += m->dx[j];
        printf("  the most %s sample #%lld: change of E_val, predicted (first order) and replayed\n",
               s ? "harmful" : "helpful", (long long)m->index);
        printf("  %8s | %-35s | %-35s\n", "eps", "loss weight w_i += eps", "image brightness x_i += eps");
        double e0 = r->val_loss;
        char lines[8][128];
        for (int k = 0; k < ne; k++) {
            perturbation pw = {m->index, PERTURB_WEIGHT, eps[k]}, pb = {m->index, PERTURB_BRIGHTNESS, eps[k]};
            double aw = replay_from_sample(ctx, p, &pw) - e0;
            progress_update(&bar, ++done, NULL);
            double ab = replay_from_sample(ctx, p, &pb) - e0;
            progress_update(&bar, ++done, NULL);
            snprintf(lines[k], sizeof lines[k], "  %8.0e | % .3e % .3e ratio %7.4f | % .3e % .3e ratio %7.4f", eps[k],
                     eps[k] * m->dw, aw, aw / (eps[k] * m->dw), eps[k] * brightness, ab, ab / (eps[k] * brightness));
        }
        if (bar.tty)
            progress_end(&bar), bar.tty = true;
        for (int k = 0; k < ne; k++)
            printf("%s\n", lines[k]);
    }
    if (n > 0) {
        double *pred = malloc(2 * (size_t)n * sizeof *pred), *act = malloc(2 * (size_t)n * sizeof *act);
        double *rp = malloc(2 * (size_t)n * sizeof *rp), *ra = malloc(2 * (size_t)n * sizeof *ra);
        if (pred && act && rp && ra) {
            for (int k = 0; k < 2 * n; k++) {
                const sample_map *m = k % 2 ? &r->harmful[k / 2] : &r->helpful[k / 2];
                perturbation out = {m->index, PERTURB_WEIGHT, -1};
                pred[k] = -m->dw;
                act[k] = replay_from_sample(ctx, p, &out) - r->val_loss;
                progress_update(&bar, ++done, NULL);
            }
            progress_end(&bar);
            printf("  leave-one-out (w_i = 0) for the %d most helpful and %d most harmful samples:\n", n, n);
            for (int k = 0; k < 2 * n; k++) {
                const sample_map *m = k % 2 ? &r->harmful[k / 2] : &r->helpful[k / 2];
                printf("    #%-6lld predicted % .3e  replayed % .3e\n", (long long)m->index, pred[k], act[k]);
            }
            ranks(pred, rp, 2 * n);
            ranks(act, ra, 2 * n);
            printf("  leave-one-out: Pearson %.3f, Spearman %.3f between predicted and replayed changes (%d samples)\n",
                   pearson(pred, act, 2 * n), pearson(rp, ra, 2 * n), 2 * n);
        }
        free(pred);
        free(act);
        free(rp);
        free(ra);
    } else {
        progress_end(&bar);
    }
    return now_seconds() - t0;
}
