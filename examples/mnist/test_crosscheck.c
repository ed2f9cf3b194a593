/* Test of mnist_hypergrad's cross-check mode: writes a tiny random case as
 * .npy files, runs `mnist_hypergrad --case DIR`, and compares DIR/dx.npy
 * with central finite differences of the validation loss (SGD, momentum
 * and Adam, f64) on a ladder of steps (fd.h), to 1e-6 relative where the
 * finite differences resolve the derivative: first from a fresh optimizer
 * state, then from a warm one given as files (t.npy, uW1.npy.., mW1.npy..,
 * vW1.npy..). Usage: test_crosscheck PATH_TO_MNIST_HYPERGRAD */
#include "fd.h"
#include "hyper.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HIDDEN 8

static int save(const char *dir, const char *name, hg_tensor *t, hg_npy_type type)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    return hg_npy_save_as(path, t, type) == HG_OK ? 0 : -1;
}

static int check(const char *exe, const char *dir, hg_ctx *ctx, hyper_problem *p, const char *opt, int steps)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s --case %s --opt %s --steps %d --repeat 2 --dtype f64", exe, dir, opt, steps);
    printf("$ %s\n", cmd);
    fflush(stdout);
    if (system(cmd) != 0) {
        printf("FAIL: the cross-check run failed\n");
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/dx.npy", dir);
    hg_tensor *dx = hg_npy_load(ctx, path);
    if (!dx || hg_tensor_dim(dx, 0) != hg_tensor_dim(p->x_train, 0) || hg_tensor_dim(dx, 1) != 784) {
        printf("FAIL: dx.npy missing or of the wrong shape: %s\n", hg_ctx_error(ctx));
        return 1;
    }
    hg_opt_kind kind;
    hg_opt_parse(opt, &kind);
    p->opt = (hg_opt_config){.kind = kind, .lr = kind == HG_OPT_ADAM ? 1e-3 : 0.1, .momentum = 0.9};
    p->steps = steps;
    hyper_target t = {ctx, p};
    double *x = hg_tensor_f64(p->x_train), worst = 0;
    int64_t n = hg_tensor_numel(p->x_train);
    int checked = 0, unresolved = 0;
    for (int64_t k = 5; k < n; k += 97) {
        fd_estimate fd = fd_derivative(&x[k], hyper_val_loss, &t, 1e-2, 1e-7);
        if (!(fd.uncertainty <= 3e-7 * fabs(fd.value))) {
            unresolved++;
            continue;
        }
        checked++;
        worst = fmax(worst, fd_relative_error(fd.value, hg_get(dx, k)));
    }
    printf("%s%s, %d step%s: %d pixels, worst relative error against finite differences %.2e"
           " (%d more not resolved by finite differences)\n",
           p->t0 ? "warm " : "", opt, steps, steps > 1 ? "s" : "", checked, worst, unresolved);
    if (checked < 10 || !(worst <= 1e-6)) {
        printf("FAIL: dx.npy does not match finite differences to 1e-6\n");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_crosscheck PATH_TO_MNIST_HYPERGRAD\n");
        return 2;
    }
    char dir[] = "/tmp/hgrad_case_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 42);
    hyper_problem p = {.spec = {3, {784, HIDDEN, HIDDEN, 10}, HG_ACT_RELU}, .loss = VAL_LOSS_CE};
    static const char *const names[N_PARAMS] = {"W1", "b1", "W2", "b2", "W3", "b3"};
    int rc = hg_mlp_init(ctx, &p.spec, HG_F64, HG_INIT_HE, &rng, p.params) == HG_OK ? 0 : 1;
    for (int i = 1; i < N_PARAMS; i += 2) /* nonzero biases */
        p.params[i] = hg_rand_uniform(ctx, &rng, HG_F64, 1, hg_tensor_shape(p.params[i]), -0.1, 0.1);
    int64_t ntr = 3, nval = 5;
    p.x_train = hg_rand_uniform(ctx, &rng, HG_F64, 2, (int64_t[]){ntr, 784}, 0, 1);
    p.x_val = hg_rand_uniform(ctx, &rng, HG_F64, 2, (int64_t[]){nval, 784}, 0, 1);
    p.y_train = hg_tensor_from(ctx, HG_I32, 1, &ntr, (const int32_t[]){3, 7, 1});
    p.y_val = hg_tensor_from(ctx, HG_I32, 1, &nval, (const int32_t[]){0, 7, 2, 3, 9});
    for (int i = 0; i < N_PARAMS && rc == 0; i++)
        rc = save(dir, names[i], p.params[i], HG_NPY_F64);
    if (rc == 0)
        rc = save(dir, "x_train", p.x_train, HG_NPY_F64) || save(dir, "x_val", p.x_val, HG_NPY_F64) ||
             save(dir, "y_train", p.y_train, HG_NPY_I64) || save(dir, "y_val", p.y_val, HG_NPY_I64);
    if (rc == 0)
        /* Adam from 2 steps on: on this case every gradient entry is far
         * from 0, so one Adam step from a fresh state is saturated
         * (lr * sign(g)) and its hypergradient is ~lr eps / g^2, below what
         * finite differences resolve; the example's own check covers one
         * step on real images, where small gradients exist. */
        rc = check(argv[1], dir, ctx, &p, "sgd", 1) || check(argv[1], dir, ctx, &p, "sgd", 3) ||
             check(argv[1], dir, ctx, &p, "adam", 2) || check(argv[1], dir, ctx, &p, "adam", 3);
    if (rc == 0) {
        /* A warm state, as training leaves it: 7 steps taken, moments of
         * the size of this case's gradients (v > 0 everywhere). */
        p.t0 = 7;
        int64_t one = 1;
        rc = save(dir, "t", hg_tensor_from(ctx, HG_I32, 1, &one, (const int32_t[]){7}), HG_NPY_I64);
        static const char *const slots[3] = {"u", "m", "v"};
        for (int s = 0; s < 3 && rc == 0; s++)
            for (int i = 0; i < N_PARAMS && rc == 0; i++) {
                hg_tensor *st = hg_rand_uniform(ctx, &rng, HG_F64, hg_tensor_rank(p.params[i]),
                                                hg_tensor_shape(p.params[i]), s == 2 ? 1e-6 : -1e-3,
                                                s == 2 ? 1e-4 : 1e-3);
                char name[16];
                snprintf(name, sizeof name, "%s%s", slots[s], names[i]);
                rc = save(dir, name, st, HG_NPY_F64);
                if (s == 0)
                    continue; /* momentum's u is checked below with its own state */
                p.state[(s - 1) * N_PARAMS + i] = st;
            }
        if (rc == 0)
            rc = check(argv[1], dir, ctx, &p, "adam", 1) || check(argv[1], dir, ctx, &p, "adam", 2);
        if (rc == 0) {
            char path[4096];
            for (int i = 0; i < N_PARAMS && rc == 0; i++) {
                snprintf(path, sizeof path, "%s/u%s.npy", dir, names[i]);
                p.state[i] = hg_npy_load(ctx, path);
                p.state[N_PARAMS + i] = NULL;
                rc = p.state[i] ? 0 : 1;
            }
            if (rc == 0)
                rc = check(argv[1], dir, ctx, &p, "momentum", 2);
        }
    }
    if (rc)
        printf("error state: %s\n", hg_ctx_error(ctx));
    hg_ctx_free(ctx);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
    printf(rc ? "FAILED\n" : "cross-check mode: ok\n");
    return rc;
}
