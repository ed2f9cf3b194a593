/* The hypergradient in one call: how does the validation loss after K SGD
 * steps change with each training sample's loss weight, and with the
 * learning rate? hg_unroll runs the steps, keeps a few snapshots of the
 * weights and sweeps back one step at a time: memory does not grow with K. */
#include <hgrad.h>
#include <math.h>
#include <stdio.h>

enum { K = 12, B = 8, N = K * B, NV = 64, D = 4 };
static const hg_mlp spec = {.n_layers = 2, .sizes = {D, 16, 3}, .hidden = HG_ACT_TANH};
typedef struct data {
    hg_tensor *x, *y, *xv, *yv, *dw;
} data;

/* Step k's inputs: its batch, its per-sample loss weights (all 1) and labels. */
static hg_status batch(hg_ctx *ctx, int k, hg_tensor **in, void *user)
{
    data *d = user;
    in[0] = hg_tensor_from(ctx, HG_F64, 2, (int64_t[]){B, D}, hg_tensor_f64(d->x) + k * B * D);
    in[1] = hg_ones(ctx, HG_F64, 1, (int64_t[]){B});
    in[2] = hg_tensor_from(ctx, HG_I32, 1, (int64_t[]){B}, hg_tensor_i32(d->y) + k * B);
    return hg_ctx_status(ctx);
}
/* One SGD step on the weighted loss, exactly as training would do it. */
static hg_status step(hg_ctx *ctx, int k, hg_tensor *const *p, hg_tensor *const *in, hg_tensor *const *lr,
                      hg_tensor **p_out, void *user)
{
    (void)user;
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch_n(t, 4, p);
    hg_tensor *ce = hg_softmax_cross_entropy_each(ctx, hg_mlp_forward(ctx, &spec, p, in[0]), in[2]);
    hg_tensor *loss = hg_mean(ctx, hg_mul(ctx, in[1], ce)), *g[4];
    hg_tape_end(t);
    if (hg_gradient(t, loss, 4, p, NULL, g) != HG_OK)
        return hg_ctx_status(ctx);
    return hg_opt_step(ctx, &(hg_opt_config){.kind = HG_OPT_SGD}, lr[0], k + 1, 4, p, g, NULL, p_out);
}
static hg_tensor *val_loss(hg_ctx *ctx, hg_tensor *const *p, hg_tensor *const *lr, void *user)
{
    (void)lr;
    return hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, &spec, p, ((data *)user)->xv), ((data *)user)->yv);
}
/* dE/d(inputs of step k), as soon as they are final: keep dE/dw. */
static hg_status save(hg_ctx *ctx, int k, hg_tensor *const *in, hg_tensor *const *g, void *user)
{
    (void)ctx, (void)in;
    for (int i = 0; i < B; i++)
        hg_tensor_f64(((data *)user)->dw)[k * B + i] = hg_get(g[1], i);
    return HG_OK;
}
static hg_tensor *labels(hg_ctx *ctx, hg_tensor *x, int64_t n) /* class: how many of x0, x1 are > 0 */
{
    hg_tensor *y = hg_tensor_new(ctx, HG_I32, 1, &n);
    for (int64_t i = 0; i < n; i++)
        hg_tensor_i32(y)[i] = (hg_get(x, i * D) > 0) + (hg_get(x, i * D + 1) > 0);
    return y;
}
int main(void)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 1);
    data d = {.x = hg_rand_normal(ctx, &rng, HG_F64, 2, (int64_t[]){N, D}, 0, 1),
              .xv = hg_rand_normal(ctx, &rng, HG_F64, 2, (int64_t[]){NV, D}, 0, 1),
              .dw = hg_zeros(ctx, HG_F64, 1, (int64_t[]){N})};
    d.y = labels(ctx, d.x, N), d.yv = labels(ctx, d.xv, NV);
    hg_tensor *p[4], *lr = hg_scalar(ctx, HG_F64, 0.5), *E, *dlr;
    hg_mlp_init(ctx, &spec, HG_F64, HG_INIT_GLOROT, &rng, p);
    hg_unroll_spec u = {.steps = K,
                        .n_state = 4,
                        .state0 = p,
                        .n_inputs = 3,
                        .n_globals = 1,
                        .globals = &lr,
                        .snapshots = 3,
                        .inputs = batch,
                        .step = step,
                        .loss = val_loss,
                        .on_grad = save,
                        .user = &d};
    hg_unroll_stats st;
    if (hg_unroll(ctx, &u, &E, NULL, &dlr, &st) != HG_OK)
        return fprintf(stderr, "%s\n", hg_ctx_error(ctx)), 1;
    int best = 0, worst = 0;
    for (int i = 0; i < N; i++) {
        best = hg_get(d.dw, i) < hg_get(d.dw, best) ? i : best;
        worst = hg_get(d.dw, i) > hg_get(d.dw, worst) ? i : worst;
    }
    printf("E_val %.6f after %d steps (%d snapshots, %lld steps recomputed)\n", hg_item(E), K, st.snapshots_used,
           (long long)st.recomputed_steps);
    printf("most helpful sample %d (dE/dw %+.2e), most harmful %d (%+.2e)\n", best, hg_get(d.dw, best), worst,
           hg_get(d.dw, worst));
    /* dE/dlr against a central difference of two forward-only runs */
    hg_tensor *lr2[2] = {hg_scalar(ctx, HG_F64, 0.5 - 1e-6), hg_scalar(ctx, HG_F64, 0.5 + 1e-6)}, *E2[2];
    u.on_grad = NULL;
    for (int i = 0; i < 2; i++)
        u.globals = &lr2[i], hg_unroll(ctx, &u, &E2[i], NULL, NULL, NULL);
    double fd = (hg_item(E2[1]) - hg_item(E2[0])) / 2e-6;
    printf("dE/dlr %.8f, central difference %.8f\n", hg_item(dlr), fd);
    int bad = hg_ctx_status(ctx) != HG_OK || !(fabs(fd - hg_item(dlr)) <= 1e-6 * fmax(1, fabs(fd)));
    hg_ctx_free(ctx);
    return bad;
}
