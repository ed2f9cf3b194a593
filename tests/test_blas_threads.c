/* BLAS threads and bitwise reproducibility.
 *
 * A hypergradient dE_val/dx_train through 3 recorded Adam steps of a
 * 784-64-64-10 ReLU MLP on 100 samples (f64 and f32): products of the
 * reference size, which a multithreaded OpenBLAS splits between threads.
 * The result must be the same bits whenever the BLAS is pinned to one thread
 * with hg_blas_set_threads(1):
 *  - in this process after running with hg_blas_set_threads(2);
 *  - in a new process started with OPENBLAS_NUM_THREADS=2 that pins itself
 *    (this is what fails if the pin does nothing: the child then computes
 *    with two threads).
 * Two threads do not give the same bits as one on OpenBLAS 0.3.21 (measured:
 * [100,784]x[784,64] products differ in the last bits), so 1 vs 2 threads is
 * reported, not asserted: the library documents that the thread count must
 * be pinned (core.h, hg_blas_set_threads), it does not promise results
 * independent of it. With a BLAS without thread control every run is
 * single-threaded and all of this holds trivially (said in the output). */
#define _POSIX_C_SOURCE 200809L /* setenv, mkdtemp */
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_TRAIN 100
#define N_VAL 50
#define N_IN 784
#define RESULT_BYTES(dt) ((size_t)N_TRAIN * N_IN * hg_dtype_size(dt))

static hg_tensor *labels(hg_ctx *ctx, int64_t n, int shift)
{
    hg_tensor *y = hg_tensor_new(ctx, HG_I32, 1, &n);
    int32_t *d = hg_tensor_i32(y);
    for (int64_t i = 0; d && i < n; i++)
        d[i] = (int32_t)((i * 7 + shift) % 10);
    return y;
}

/* dE_val/dx_train through 3 Adam steps, copied into out (RESULT_BYTES). */
static hg_status hypergradient(hg_dtype dt, void *out)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 5);
    hg_mlp spec = {.n_layers = 3, .sizes = {N_IN, 64, 64, 10}, .hidden = HG_ACT_RELU};
    hg_tensor *params[6], *p[6], *state[12] = {0};
    hg_mlp_init(ctx, &spec, dt, HG_INIT_HE, &rng, params);
    hg_tensor *xtr = hg_rand_uniform(ctx, &rng, dt, 2, SHAPE(N_TRAIN, N_IN), 0, 1);
    hg_tensor *xval = hg_rand_uniform(ctx, &rng, dt, 2, SHAPE(N_VAL, N_IN), 0, 1);
    hg_tensor *ytr = labels(ctx, N_TRAIN, 0), *yval = labels(ctx, N_VAL, 3);
    hg_opt_config cfg = {.kind = HG_OPT_ADAM, .lr = 1e-3};
    hg_tape *outer = hg_tape_begin(ctx, 0);
    hg_watch(outer, xtr);
    memcpy(p, params, sizeof p);
    recorded_steps(ctx, &spec, &cfg, NULL, 3, 6, p, state, xtr, ytr);
    hg_tensor *E = hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, &spec, p, xval), yval);
    hg_tape_end(outer);
    hg_tensor *dx = NULL;
    hg_status st = hg_gradient(outer, E, 1, &xtr, NULL, &dx);
    if (st == HG_OK)
        memcpy(out, hg_tensor_cdata(dx), RESULT_BYTES(dt));
    else
        fprintf(stderr, "hypergradient: %s\n", hg_ctx_error(ctx));
    hg_ctx_free(ctx);
    return st;
}

/* Elements that differ (not bitwise equal). */
static int64_t differing(hg_dtype dt, const void *a, const void *b)
{
    size_t w = hg_dtype_size(dt);
    int64_t n = 0;
    for (size_t i = 0; i < (size_t)N_TRAIN * N_IN; i++)
        n += memcmp((const char *)a + i * w, (const char *)b + i * w, w) != 0;
    return n;
}

static const hg_dtype dtypes[2] = {HG_F64, HG_F32};

/* Child mode: argv = {exe, "--child", "pinned"|"free", OUTFILE}. Writes the
 * f64 then the f32 result to OUTFILE. */
static int child(const char *mode, const char *outfile)
{
    if (strcmp(mode, "pinned") == 0 && hg_blas_set_threads(1) != HG_OK)
        return 3;
    FILE *f = fopen(outfile, "wb");
    if (!f)
        return 3;
    int rc = 0;
    for (int d = 0; d < 2 && rc == 0; d++) {
        void *r = malloc(RESULT_BYTES(dtypes[d]));
        rc = r && hypergradient(dtypes[d], r) == HG_OK &&
                     fwrite(r, 1, RESULT_BYTES(dtypes[d]), f) == RESULT_BYTES(dtypes[d])
                 ? 0
                 : 3;
        free(r);
    }
    return fclose(f) == 0 ? rc : 3;
}

static char self_exe[4096];

/* Runs this program as a child with OPENBLAS_NUM_THREADS=2; reads back its
 * two results into r[0] (f64) and r[1] (f32). */
static void run_child(const char *mode, void *r[2])
{
    char dir[] = "/tmp/hgrad_blas_threads_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char out[256];
    snprintf(out, sizeof out, "%s/result.bin", dir);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setenv("OPENBLAS_NUM_THREADS", "2", 1);
        setenv("OMP_NUM_THREADS", "2", 1);
        execl(self_exe, self_exe, "--child", mode, out, (char *)NULL);
        _exit(127);
    }
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child (%s) failed: status %d", mode, ws);
    FILE *f = fopen(out, "rb");
    ck_assert_ptr_nonnull(f);
    for (int d = 0; d < 2; d++)
        ck_assert_uint_eq(fread(r[d], 1, RESULT_BYTES(dtypes[d]), f), RESULT_BYTES(dtypes[d]));
    fclose(f);
    unlink(out);
    rmdir(dir);
}

START_TEST(pinned_blas_gives_the_same_bits)
{
    void *one[2], *two[2], *again[2], *pinned[2], *free_run[2];
    for (int d = 0; d < 2; d++) {
        size_t n = RESULT_BYTES(dtypes[d]);
        one[d] = malloc(n), two[d] = malloc(n), again[d] = malloc(n), pinned[d] = malloc(n), free_run[d] = malloc(n);
    }
    /* In this process: 1, then 2, then 1 again. */
    ck_assert_int_eq(hg_blas_set_threads(2), HG_OK);
    int control = hg_blas_threads() == 2;
    for (int d = 0; d < 2; d++) {
        ck_assert_int_eq(hg_blas_set_threads(1), HG_OK);
        ck_assert_int_eq(hypergradient(dtypes[d], one[d]), HG_OK);
        ck_assert_int_eq(hg_blas_set_threads(2), HG_OK);
        ck_assert_int_eq(hypergradient(dtypes[d], two[d]), HG_OK);
        ck_assert_int_eq(hg_blas_set_threads(1), HG_OK);
        ck_assert_int_eq(hg_blas_threads(), 1);
        ck_assert_int_eq(hypergradient(dtypes[d], again[d]), HG_OK);
        ck_assert_msg(differing(dtypes[d], one[d], again[d]) == 0, "%s: pinned to 1 thread again, %lld elements differ",
                      hg_dtype_name(dtypes[d]), (long long)differing(dtypes[d], one[d], again[d]));
    }
    /* New processes started with OPENBLAS_NUM_THREADS=2. */
    run_child("pinned", pinned);
    run_child("free", free_run);
    for (int d = 0; d < 2; d++) {
        int64_t pin_diff = differing(dtypes[d], one[d], pinned[d]);
        printf("%s: dx [%d,%d] through 3 Adam steps; elements differing from 1 BLAS thread: "
               "2 threads in-process %lld, a process started with 2 threads that pins 1: %lld, "
               "one that does not: %lld\n",
               hg_dtype_name(dtypes[d]), N_TRAIN, N_IN, (long long)differing(dtypes[d], one[d], two[d]),
               (long long)pin_diff, (long long)differing(dtypes[d], one[d], free_run[d]));
        ck_assert_msg(pin_diff == 0,
                      "%s: a process started with OPENBLAS_NUM_THREADS=2 and pinned to 1 thread "
                      "differs in %lld elements",
                      hg_dtype_name(dtypes[d]), (long long)pin_diff);
    }
    if (!control)
        printf("no BLAS thread control here (every run single-threaded): the comparisons hold trivially\n");
    else if (differing(HG_F64, one[0], free_run[0]) == 0 && differing(HG_F32, one[1], free_run[1]) == 0)
        printf("this BLAS gave the same bits with 2 threads: the pin is not tested by this case here\n");
    for (int d = 0; d < 2; d++)
        free(one[d]), free(two[d]), free(again[d]), free(pinned[d]), free(free_run[d]);
}
END_TEST

static Suite *blas_threads_suite(void)
{
    Suite *s = suite_create("blas_threads");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, pinned_blas_gives_the_same_bits);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--child") == 0)
        return child(argv[2], argv[3]);
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0) {
        fprintf(stderr, "test_blas_threads: cannot find its own executable\n");
        return 1;
    }
    self_exe[n] = '\0';
    return run_suite(blas_threads_suite());
}
