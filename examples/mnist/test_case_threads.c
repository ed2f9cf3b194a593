/* mnist_hypergrad --case DIR gives the same dx.npy bytes under
 * OPENBLAS_NUM_THREADS=1 and =2, in f64 and in f32: the example pins one
 * BLAS thread whatever the environment says. The case is of the reference
 * size (784-64-64-10 ReLU MLP, 100 training and 50 validation samples,
 * 3 Adam steps), whose products a multithreaded OpenBLAS splits between
 * threads; the same hypergradient computed here in-process with
 * hg_blas_set_threads(1) and (2) shows whether this BLAS changes the bits
 * with the thread count (if it does not, the comparison cannot catch a
 * missing pin here, and the output says so).
 * Usage: test_case_threads PATH_TO_MNIST_HYPERGRAD */
#define _POSIX_C_SOURCE 200809L /* setenv, mkdtemp */
#include "hyper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_TRAIN 100
#define N_VAL 50
#define STEPS 3

static const char *const names[N_PARAMS] = {"W1", "b1", "W2", "b2", "W3", "b3"};

static int save(const char *dir, const char *name, hg_tensor *t, hg_npy_type type)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    return hg_npy_save_as(path, t, type) == HG_OK ? 0 : -1;
}

/* Whole file into a malloc'd buffer; NULL on error. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            unsigned char *bigger = realloc(buf, cap *= 2);
            if (!bigger)
                free(buf);
            buf = bigger;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Runs the example on dir with OPENBLAS_NUM_THREADS=threads; returns the
 * bytes of dir/dx.npy (removed afterwards), or NULL. */
static unsigned char *run_case(const char *exe, const char *dir, const char *dtype, int threads, size_t *len)
{
    char cmd[8192], path[4096], n[16];
    snprintf(n, sizeof n, "%d", threads);
    setenv("OPENBLAS_NUM_THREADS", n, 1);
    setenv("OMP_NUM_THREADS", n, 1);
    snprintf(cmd, sizeof cmd, "%s --case %s --opt adam --steps %d --dtype %s", exe, dir, STEPS, dtype);
    printf("$ OPENBLAS_NUM_THREADS=%d %s\n", threads, cmd);
    fflush(stdout);
    int rc = system(cmd);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    if (rc != 0) {
        printf("FAIL: the run failed (status %d)\n", rc);
        return NULL;
    }
    snprintf(path, sizeof path, "%s/dx.npy", dir);
    unsigned char *bytes = slurp(path, len);
    if (!bytes || *len == 0)
        printf("FAIL: no %s\n", path);
    unlink(path);
    return bytes;
}

/* Elements of two f64 arrays that are not the same bits. */
static long differing(const unsigned char *a, const unsigned char *b, size_t bytes)
{
    long n = 0;
    for (size_t i = 0; i + 8 <= bytes; i += 8)
        n += memcmp(a + i, b + i, 8) != 0;
    return n;
}

/* In-process: does this BLAS change dx with the thread count? */
static int library_sensitive(hg_ctx *ctx, const hyper_problem *p64, hg_dtype dtype)
{
    hyper_problem q;
    if (hyper_convert(ctx, p64, dtype, &q) != HG_OK)
        return -1;
    hyper_result r[2];
    for (int k = 0; k < 2; k++) {
        hg_blas_set_threads(k + 1);
        if (hyper_run(ctx, &q, true, false, &r[k]) != HG_OK)
            return -1;
    }
    hg_blas_set_threads(1);
    size_t bytes = (size_t)hg_tensor_numel(r[0].dx) * hg_dtype_size(dtype);
    return memcmp(hg_tensor_cdata(r[0].dx), hg_tensor_cdata(r[1].dx), bytes) != 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_case_threads PATH_TO_MNIST_HYPERGRAD\n");
        return 2;
    }
    char dir[] = "/tmp/hgrad_case_threads_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 7);
    hyper_problem p = {.spec = {3, {784, 64, 64, 10}, HG_ACT_RELU}, .loss = VAL_LOSS_CE, .steps = STEPS};
    p.opt = (hg_opt_config){.kind = HG_OPT_ADAM, .lr = 1e-3};
    int rc = hg_mlp_init(ctx, &p.spec, HG_F64, HG_INIT_HE, &rng, p.params) == HG_OK ? 0 : 1;
    int64_t ntr = N_TRAIN, nval = N_VAL;
    p.x_train = hg_rand_uniform(ctx, &rng, HG_F64, 2, (int64_t[]){ntr, 784}, 0, 1);
    p.x_val = hg_rand_uniform(ctx, &rng, HG_F64, 2, (int64_t[]){nval, 784}, 0, 1);
    p.y_train = hg_tensor_new(ctx, HG_I32, 1, &ntr);
    p.y_val = hg_tensor_new(ctx, HG_I32, 1, &nval);
    for (int64_t i = 0; rc == 0 && i < ntr; i++)
        hg_tensor_i32(p.y_train)[i] = (int32_t)((i * 7) % 10);
    for (int64_t i = 0; rc == 0 && i < nval; i++)
        hg_tensor_i32(p.y_val)[i] = (int32_t)((i * 3 + 1) % 10);
    for (int i = 0; i < N_PARAMS && rc == 0; i++)
        rc = save(dir, names[i], p.params[i], HG_NPY_F64);
    if (rc == 0)
        rc = save(dir, "x_train", p.x_train, HG_NPY_F64) || save(dir, "x_val", p.x_val, HG_NPY_F64) ||
             save(dir, "y_train", p.y_train, HG_NPY_I64) || save(dir, "y_val", p.y_val, HG_NPY_I64);
    if (rc != 0)
        printf("FAIL: cannot write the case: %s\n", hg_ctx_error(ctx));
    static const char *const dtypes[2] = {"f64", "f32"};
    for (int d = 0; d < 2 && rc == 0; d++) {
        size_t len1 = 0, len2 = 0;
        unsigned char *one = run_case(argv[1], dir, dtypes[d], 1, &len1);
        unsigned char *two = one ? run_case(argv[1], dir, dtypes[d], 2, &len2) : NULL;
        if (!one || !two) {
            rc = 1;
        } else {
            int sensitive = library_sensitive(ctx, &p, d ? HG_F32 : HG_F64);
            int same = len1 == len2 && memcmp(one, two, len1) == 0;
            printf("%s: dx.npy (%zu bytes) under 1 and 2 BLAS threads: %s", dtypes[d], len1,
                   same ? "the same bytes" : "DIFFERENT");
            if (!same && len1 == len2)
                printf(" (%ld of %lld values differ)", differing(one, two, len1), (long long)ntr * 784);
            printf("; the library itself with 1 vs 2 BLAS threads on this case: %s\n",
                   sensitive < 0   ? "error"
                   : sensitive > 0 ? "different bits (so the example's pin is what makes them equal)"
                                   : "the same bits (this BLAS does not split these products: the "
                                     "comparison cannot catch a missing pin here)");
            if (!same) {
                printf("FAIL: the output depends on OPENBLAS_NUM_THREADS\n");
                rc = 1;
            }
            if (sensitive < 0) {
                printf("FAIL: in-process run: %s\n", hg_ctx_error(ctx));
                rc = 1;
            }
        }
        free(one);
        free(two);
    }
    hg_ctx_free(ctx);
    char path[4096];
    for (int i = 0; i < N_PARAMS; i++) {
        snprintf(path, sizeof path, "%s/%s.npy", dir, names[i]);
        unlink(path);
    }
    static const char *const data[4] = {"x_train", "x_val", "y_train", "y_val"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s.npy", dir, data[i]);
        unlink(path);
    }
    rmdir(dir);
    printf(rc ? "FAILED\n" : "dx.npy independent of OPENBLAS_NUM_THREADS: ok\n");
    return rc;
}
