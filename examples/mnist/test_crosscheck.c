/* Test of mnist_hypergrad's cross-check mode: writes a tiny random case as
 * .npy files, runs `mnist_hypergrad --case DIR`, and compares DIR/dx.npy
 * with central finite differences of the validation loss (SGD and Adam,
 * f64). Usage: test_crosscheck PATH_TO_MNIST_HYPERGRAD */
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
    p->opt = (hg_opt_config){.kind = kind, .lr = kind == HG_OPT_ADAM ? 1e-3 : 0.1};
    p->steps = steps;
    double *x = hg_tensor_f64(p->x_train), h = 1e-4, worst = 0;
    int64_t n = hg_tensor_numel(p->x_train);
    for (int64_t k = 0; k < n; k += 37) {
        /* 4th-order central differences */
        double saved = x[k], e[4];
        const double offsets[4] = {2, 1, -1, -2};
        for (int s = 0; s < 4; s++) {
            hg_mark m = hg_ctx_mark(ctx);
            hyper_result r;
            x[k] = saved + offsets[s] * h;
            e[s] = hyper_run(ctx, p, false, false, &r) == HG_OK ? r.val_loss : NAN;
            hg_ctx_rewind(ctx, m);
        }
        x[k] = saved;
        double fd = (-e[0] + 8 * e[1] - 8 * e[2] + e[3]) / (12 * h), exact = hg_get(dx, k);
        double err = fabs(fd - exact) / fmax(fabs(fd), 1e-6);
        worst = fmax(worst, err);
    }
    printf("%s, %d steps: worst relative error against finite differences %.2e\n", opt, steps, worst);
    if (!(worst < 1e-5)) {
        printf("FAIL: dx.npy does not match finite differences\n");
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
        rc = check(argv[1], dir, ctx, &p, "sgd", 2) || check(argv[1], dir, ctx, &p, "adam", 1) ||
             check(argv[1], dir, ctx, &p, "adam", 3);
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
