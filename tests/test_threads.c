/* Threads and determinism.
 *
 * Each thread has its own ctx, tapes and rng (a ctx is used by one thread at
 * a time; the library has no other mutable state). Several threads compute
 * hypergradients at once: d(validation loss)/d(training inputs, lr) through
 * two recorded optimizer steps of a small MLP (SGD and Adam, f64 and f32),
 * plus a third derivative and a training run with the in-place optimizer.
 * Results must be bitwise equal to the same computations run on one thread,
 * to repeated runs, and to a run in another process. .ci/extra runs this
 * suite under ThreadSanitizer.
 *
 * OPENBLAS_NUM_THREADS=1 is set by the test environment: the comparison is of
 * this library's determinism, not of a threaded BLAS's reduction order. */
#include "testutil.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_RESULT 2048
#define N_CASES 6
#define N_THREADS 4
#define REPEATS 3

typedef struct result {
    size_t n;
    double v[MAX_RESULT];
    hg_status status;
    char error[256];
} result;

static void push(result *r, hg_tensor *t)
{
    int64_t n = hg_tensor_numel(t);
    for (int64_t i = 0; i < n && r->n < MAX_RESULT; i++)
        r->v[r->n++] = hg_get(t, i);
}

static hg_tensor *labels(hg_ctx *ctx, int64_t n, int classes, int shift)
{
    hg_tensor *y = hg_tensor_new(ctx, HG_I32, 1, &n);
    int32_t *d = hg_tensor_i32(y);
    for (int64_t i = 0; d && i < n; i++)
        d[i] = (int32_t)((i * 5 + shift) % classes);
    return y;
}

/* Case k: hypergradient through two recorded optimizer steps. */
static void hypergradient(int k, result *r)
{
    hg_opt_kind kind = k % 2 ? HG_OPT_ADAM : HG_OPT_SGD;
    hg_dtype dt = k % 3 == 2 ? HG_F32 : HG_F64;
    hg_ctx_options opts = {.chunk_bytes = 64 * 1024};
    hg_ctx *ctx = hg_ctx_new(&opts);
    hg_rng rng;
    hg_rng_seed(&rng, 100 + (uint64_t)k);
    hg_mlp spec = {.n_layers = 2, .sizes = {12, 16, 4}, .hidden = k % 2 ? HG_ACT_TANH : HG_ACT_RELU};
    hg_tensor *params[4], *state[8] = {0}, *p[4];
    hg_mlp_init(ctx, &spec, dt, HG_INIT_GLOROT, &rng, params);
    hg_tensor *xtr = hg_rand_uniform(ctx, &rng, dt, 2, SHAPE(24, 12), 0, 1);
    hg_tensor *xval = hg_rand_uniform(ctx, &rng, dt, 2, SHAPE(16, 12), 0, 1);
    hg_tensor *ytr = labels(ctx, 24, 4, k), *yval = labels(ctx, 16, 4, k + 1);
    hg_tensor *lr = hg_scalar(ctx, dt, kind == HG_OPT_ADAM ? 0.01 : 0.3);
    hg_opt_config cfg = {.kind = kind};
    /* Mark/rewind around the whole computation, twice: the second run reuses
     * the chunks and must give the same bits. */
    for (int round = 0; round < 2; round++) {
        hg_mark m = hg_ctx_mark(ctx);
        r->n = 0;
        hg_tape *outer = hg_tape_begin(ctx, 0);
        hg_watch(outer, xtr);
        hg_watch(outer, lr);
        memcpy(p, params, sizeof p);
        memset(state, 0, sizeof state);
        recorded_steps(ctx, &spec, &cfg, lr, 2, 4, p, state, xtr, ytr);
        hg_tensor *E = hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, &spec, p, xval), yval);
        hg_tape_end(outer);
        hg_tensor *src[2] = {xtr, lr}, *d[2];
        r->status = hg_gradient(outer, E, 2, src, NULL, d);
        if (r->status == HG_OK) {
            push(r, E);
            push(r, d[0]);
            push(r, d[1]);
        }
        snprintf(r->error, sizeof r->error, "%s", hg_ctx_error(ctx));
        hg_ctx_rewind(ctx, m);
    }
    hg_ctx_free(ctx);
}

/* Case 4: a third derivative through nested tapes (f64). */
static void third_derivative(result *r)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    r->n = 0;
    hg_tensor *x = T64(ctx, 1, SHAPE(5), -1.5, -0.2, 0.3, 0.9, 2.0);
    hg_tape *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = hg_tape_begin(ctx, 0);
        hg_watch(t[i], x);
    }
    hg_tensor *y = hg_sum(ctx, hg_mul(ctx, hg_tanh(ctx, x), hg_exp(ctx, hg_scale(ctx, x, 0.5))));
    for (int i = 2; i >= 0; i--) {
        hg_tape_end(t[i]);
        hg_tensor *g;
        hg_gradient(t[i], y, 1, &x, NULL, &g);
        push(r, g);
        y = hg_sum(ctx, g);
    }
    r->status = hg_ctx_status(ctx);
    snprintf(r->error, sizeof r->error, "%s", hg_ctx_error(ctx));
    hg_ctx_free(ctx);
}

/* Case 5: training with the in-place Adam, one mark/rewind per step (f32). */
static void training(result *r)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 7);
    hg_mlp spec = {.n_layers = 2, .sizes = {20, 32, 5}, .hidden = HG_ACT_RELU};
    hg_tensor *params[4];
    hg_mlp_init(ctx, &spec, HG_F32, HG_INIT_HE, &rng, params);
    hg_tensor *x = hg_rand_normal(ctx, &rng, HG_F32, 2, SHAPE(64, 20), 0, 1), *y = labels(ctx, 64, 5, 2);
    hg_opt_config cfg = {.kind = HG_OPT_ADAM, .lr = 1e-2};
    hg_optimizer *opt = hg_optimizer_new(ctx, &cfg, 4, params);
    for (int step = 0; step < 20; step++) {
        hg_mark m = hg_ctx_mark(ctx);
        hg_tape *tape = hg_tape_begin(ctx, 0);
        hg_watch_n(tape, 4, params);
        hg_tensor *loss = hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, &spec, params, x), y);
        hg_tape_end(tape);
        hg_tensor *g[4];
        if (hg_gradient(tape, loss, 4, params, NULL, g) == HG_OK)
            hg_optimizer_step(opt, g);
        hg_ctx_rewind(ctx, m);
    }
    r->n = 0;
    for (int i = 0; i < 4; i++)
        push(r, params[i]);
    r->status = hg_ctx_status(ctx);
    snprintf(r->error, sizeof r->error, "%s", hg_ctx_error(ctx));
    hg_ctx_free(ctx);
}

static void run_case(int k, result *r)
{
    memset(r, 0, sizeof *r);
    if (k < 4)
        hypergradient(k, r);
    else if (k == 4)
        third_derivative(r);
    else
        training(r);
}

static result reference[N_CASES];

static void compute_reference(void)
{
    for (int k = 0; k < N_CASES; k++) {
        run_case(k, &reference[k]);
        ck_assert_msg(reference[k].status == HG_OK, "case %d failed: %s", k, reference[k].error);
        ck_assert_uint_gt(reference[k].n, 0);
    }
}

static int same(const result *a, const result *b)
{
    return a->status == b->status && a->n == b->n && memcmp(a->v, b->v, a->n * sizeof a->v[0]) == 0;
}

typedef struct job {
    int thread;
    int mismatches;
    int runs;
    result r; /* per thread: no sharing */
} job;

static pthread_barrier_t start_line;

static void *worker(void *arg)
{
    job *j = arg;
    pthread_barrier_wait(&start_line); /* start together: maximal overlap */
    for (int rep = 0; rep < REPEATS; rep++)
        for (int c = 0; c < N_CASES; c++) {
            int k = (c + j->thread) % N_CASES; /* threads run different cases at once */
            run_case(k, &j->r);
            j->runs++;
            if (!same(&j->r, &reference[k]))
                j->mismatches++;
        }
    return NULL;
}

START_TEST(threads_match_single_threaded)
{
    compute_reference();
    pthread_t th[N_THREADS];
    job jobs[N_THREADS];
    memset(jobs, 0, sizeof jobs);
    ck_assert_int_eq(pthread_barrier_init(&start_line, NULL, N_THREADS), 0);
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i].thread = i;
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
    }
    int runs = 0;
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(jobs[i].mismatches == 0, "thread %d: %d of %d results differ from the single-threaded ones", i,
                      jobs[i].mismatches, jobs[i].runs);
        runs += jobs[i].runs;
    }
    pthread_barrier_destroy(&start_line);
    printf("threads: %d threads, %d computations (hypergradients through SGD/Adam in f64/f32, third derivative, "
           "training), all bitwise equal to the single-threaded results\n",
           N_THREADS, runs);
}
END_TEST

START_TEST(repeated_runs_are_bitwise_identical)
{
    compute_reference();
    static result again;
    for (int rep = 0; rep < 3; rep++)
        for (int k = 0; k < N_CASES; k++) {
            run_case(k, &again);
            ck_assert_msg(same(&again, &reference[k]), "case %d differs on repeat %d", k, rep);
        }
}
END_TEST

/* The results as hex words, for the cross-process comparison. */
static void emit(FILE *out)
{
    static result r;
    for (int k = 0; k < N_CASES; k++) {
        run_case(k, &r);
        fprintf(out, "case %d status %d n %zu\n", k, (int)r.status, r.n);
        for (size_t i = 0; i < r.n; i++) {
            uint64_t bits;
            memcpy(&bits, &r.v[i], 8);
            fprintf(out, "%016llx\n", (unsigned long long)bits);
        }
    }
}

static char self_path[4096];

START_TEST(another_process_gives_the_same_bits)
{
    char *mine = NULL, *theirs = NULL;
    size_t mine_len = 0, theirs_len = 0;
    FILE *m = open_memstream(&mine, &mine_len);
    emit(m);
    fclose(m);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "'%s' --emit", self_path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    FILE *t = open_memstream(&theirs, &theirs_len);
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, p)) > 0)
        fwrite(buf, 1, got, t);
    fclose(t);
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_uint_gt(mine_len, 100);
    ck_assert_msg(mine_len == theirs_len && memcmp(mine, theirs, mine_len) == 0,
                  "another process computed different bits (%zu vs %zu bytes of output)", mine_len, theirs_len);
    free(mine);
    free(theirs);
}
END_TEST

static Suite *threads_suite(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("determinism");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, threads_match_single_threaded);
    tcase_add_test(tc, repeated_runs_are_bitwise_identical);
    tcase_add_test(tc, another_process_gives_the_same_bits);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    ssize_t len = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (len > 0)
        self_path[len] = '\0';
    else
        snprintf(self_path, sizeof self_path, "%s", argv[0]);
    if (argc > 1 && strcmp(argv[1], "--emit") == 0) {
        emit(stdout);
        return 0;
    }
    return run_suite(threads_suite());
}
