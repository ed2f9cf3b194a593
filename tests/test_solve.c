/* Matrix-free solves (solve.h): conjugate gradient and LiSSA on known SPD
 * systems, checked against the explicit matrix; callbacks that fail or
 * misbehave; bad arguments; allocation failure; bounded arena use. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#define N 100

/* A dense symmetric matrix applied with hg_matmul. */
typedef struct dense_op {
    hg_tensor *A;    /* [n, n] */
    int fail_at;     /* return an error at this call (1-based), 0: never */
    int set_message; /* with fail_at: also leave an error on the ctx */
    int bad_kind;    /* 1 wrong shape, 2 wrong dtype, 3 NULL, 4 stale, 5 tape left active, 6 error on ctx + OK */
    int calls;
} dense_op;

static hg_status apply_dense(hg_ctx *ctx, const hg_tensor *v, hg_tensor **Av, void *user)
{
    dense_op *op = user;
    op->calls++;
    if (op->fail_at && op->calls == op->fail_at) {
        hg_tensor_new(ctx, HG_F64, 1, SHAPE(1000)); /* something to release */
        if (op->set_message)
            hg_op_error(ctx, HG_ERR_INVALID, "apply_dense: refusing call %d", op->calls);
        return HG_ERR_INVALID;
    }
    int64_t n = hg_tensor_dim(op->A, 0);
    hg_tensor *col = hg_reshape(ctx, hg_tensor_clone(ctx, v), 2, SHAPE(n, 1));
    hg_tensor *r = hg_reshape(ctx, hg_matmul(ctx, op->A, col), 1, &n);
    if (op->bad_kind && op->calls >= 2) {
        switch (op->bad_kind) {
        case 1: r = hg_reshape(ctx, r, 2, SHAPE(n, 1)); break;
        case 2: r = hg_cast(ctx, r, HG_F32); break;
        case 3: r = NULL; break;
        case 4: {
            hg_mark m = hg_ctx_mark(ctx);
            r = hg_identity(ctx, r);
            hg_ctx_rewind(ctx, m);
            break;
        }
        case 5: hg_tape_begin(ctx, 0); break;
        case 6: hg_op_error(ctx, HG_ERR_RANGE, "apply_dense: bad value"); break;
        }
    }
    *Av = r;
    return r || op->bad_kind == 3 ? HG_OK : hg_ctx_status(ctx);
}

/* SPD A = Q diag(d) Q^T with Q from Gram-Schmidt on random vectors and d
 * spread over [dmin, dmax]; written into a (row-major n x n). */
static void spd_matrix(double *a, int n, double dmin, double dmax, uint64_t seed)
{
    hg_rng rng;
    hg_rng_seed(&rng, seed);
    double *q = malloc(sizeof(double) * (size_t)n * (size_t)n);
    ck_assert_ptr_nonnull(q);
    for (int j = 0; j < n; j++) {
        double *c = q + (size_t)j * (size_t)n; /* column j stored as a row */
        for (int i = 0; i < n; i++)
            c[i] = hg_rng_normal(&rng);
        for (int k = 0; k < j; k++) {
            double *o = q + (size_t)k * (size_t)n, d = 0;
            for (int i = 0; i < n; i++)
                d += c[i] * o[i];
            for (int i = 0; i < n; i++)
                c[i] -= d * o[i];
        }
        double nn = 0;
        for (int i = 0; i < n; i++)
            nn += c[i] * c[i];
        for (int i = 0; i < n; i++)
            c[i] /= sqrt(nn);
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) {
                double dk = dmin * pow(dmax / dmin, (double)k / (n - 1));
                s += q[(size_t)(k * n + i)] * dk * q[(size_t)(k * n + j)];
            }
            a[(size_t)(i * n + j)] = s;
        }
    free(q);
}

/* ||b - (A + lambda I) x|| / ||b|| in double from the explicit matrix. */
static double true_residual(const double *a, int n, double lambda, hg_tensor *b, hg_tensor *x)
{
    double rr = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        double s = lambda * hg_get(x, i);
        for (int j = 0; j < n; j++)
            s += a[(size_t)(i * n + j)] * hg_get(x, j);
        double r = hg_get(b, i) - s;
        rr += r * r;
        bb += hg_get(b, i) * hg_get(b, i);
    }
    return sqrt(rr / bb);
}

typedef struct system {
    double a[N * N];
    dense_op op;
    hg_tensor *b;
} system_t;

static void make_system(hg_ctx *ctx, system_t *s, double dmin, double dmax)
{
    memset(&s->op, 0, sizeof s->op);
    spd_matrix(s->a, N, dmin, dmax, 11);
    s->op.A = hg_tensor_from(ctx, HG_F64, 2, SHAPE(N, N), s->a);
    hg_rng rng;
    hg_rng_seed(&rng, 5);
    s->b = hg_rand_normal(ctx, &rng, HG_F64, 1, SHAPE(N), 0, 1);
    ck_assert_ctx_ok(ctx);
}

START_TEST(cg_spd_100)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    static system_t s;
    make_system(ctx, &s, 0.01, 10.0); /* condition number 1e3 */
    hg_ctx_stats st0 = hg_ctx_get_stats(ctx);
    hg_solve_options o = {.tol = 1e-12, .max_iter = 1000};
    hg_solve_report rep;
    hg_tensor *x = NULL;
    ck_assert_int_eq(hg_cg_solve(ctx, apply_dense, &s.op, s.b, &o, &x, &rep), HG_OK);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(rep.converged, 1);
    ck_assert_int_eq(rep.iterations, s.op.calls);
    ck_assert(rep.residual <= 1e-12);
    double res = true_residual(s.a, N, 0.0, s.b, x);
    ck_assert_msg(res <= 1e-10, "true relative residual %g after %d iterations", res, rep.iterations);
    ck_assert_int_eq(hg_tensor_dtype(x), HG_F64);
    ck_assert_int_eq(hg_tensor_dim(x, 0), N);
    /* Only x remains in the arena: its header and data. */
    hg_ctx_stats st1 = hg_ctx_get_stats(ctx);
    ck_assert_uint_le(st1.bytes_in_use - st0.bytes_in_use, N * sizeof(double) + 512);
    ck_assert_uint_eq(st1.tensors, st0.tensors + 1);

    /* With damping: (A + 0.5 I) x = b. */
    o.damping = 0.5;
    ck_assert_int_eq(hg_cg_solve(ctx, apply_dense, &s.op, s.b, &o, &x, &rep), HG_OK);
    res = true_residual(s.a, N, 0.5, s.b, x);
    ck_assert_msg(res <= 1e-10, "damped: true relative residual %g", res);
    ck_assert_int_lt(rep.iterations, 60); /* condition 21: fast */

    /* Default options (tol 1e-10, max_iter 10 n). */
    ck_assert_int_eq(hg_cg_solve(ctx, apply_dense, &s.op, s.b, NULL, &x, &rep), HG_OK);
    ck_assert_msg(true_residual(s.a, N, 0.0, s.b, x) <= 1e-9, "defaults: %g", true_residual(s.a, N, 0.0, s.b, x));
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* The arena in use during a solve does not grow with the iteration count. */
START_TEST(cg_bounded_arena)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    static system_t s;
    make_system(ctx, &s, 1e-4, 10.0);
    size_t peak[2];
    int iters[2] = {5, 80};
    for (int k = 0; k < 2; k++) {
        hg_mark m = hg_ctx_mark(ctx);
        hg_ctx_reset_peak(ctx);
        hg_solve_options o = {.tol = 1e-14, .max_iter = iters[k]};
        hg_solve_report rep;
        hg_tensor *x;
        ck_assert_int_eq(hg_cg_solve(ctx, apply_dense, &s.op, s.b, &o, &x, &rep), HG_OK);
        ck_assert_int_eq(rep.iterations, iters[k]);
        ck_assert_int_eq(rep.converged, 0); /* not reached: still a result */
        peak[k] = hg_ctx_get_stats(ctx).peak_bytes;
        hg_ctx_rewind(ctx, m);
    }
    ck_assert_uint_eq(peak[0], peak[1]);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(cg_f32_and_zero_rhs)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    static system_t s;
    make_system(ctx, &s, 0.1, 10.0);
    hg_tensor *A64 = s.op.A;
    s.op.A = hg_cast(ctx, A64, HG_F32);
    hg_tensor *b32 = hg_cast(ctx, s.b, HG_F32), *x;
    hg_solve_options o = {.tol = 1e-5};
    hg_solve_report rep;
    ck_assert_int_eq(hg_cg_solve(ctx, apply_dense, &s.op, b32, &o, &x, &rep), HG_OK);
    ck_assert_int_eq(hg_tensor_dtype(x), HG_F32);
    ck_assert_int_eq(rep.converged, 1);
    ck_assert_msg(true_residual(s.a, N, 0.0, s.b, x) <= 1e-4, "f32 residual %g", true_residual(s.a, N, 0, s.b, x));

    /* b = 0: x = 0 without calling the operator. */
    s.op.A = A64;
    s.op.calls = 0;
    hg_tensor *z = hg_zeros(ctx, HG_F64, 1, SHAPE(N));
    ck_assert_int_eq(hg_cg_solve(ctx, apply_dense, &s.op, z, NULL, &x, &rep), HG_OK);
    ck_assert_int_eq(s.op.calls, 0);
    ck_assert_int_eq(rep.iterations, 0);
    ck_assert_int_eq(rep.converged, 1);
    for (int i = 0; i < N; i++)
        ck_assert(hg_get(x, i) == 0.0);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(lissa_converges_and_diverges)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    static system_t s;
    make_system(ctx, &s, 0.5, 10.0);
    hg_solve_options o = {.damping = 0.5, .scale = 12.0, .tol = 1e-10, .max_iter = 5000};
    hg_solve_report rep;
    hg_tensor *x, *xcg;
    ck_assert_int_eq(hg_lissa_solve(ctx, apply_dense, &s.op, s.b, &o, &x, &rep), HG_OK);
    ck_assert_int_eq(rep.converged, 1);
    ck_assert(rep.residual <= 1e-10);
    /* The reported residual is that of the previous iterate; the returned one
     * is better (scale > lambda_max: monotone). */
    ck_assert_msg(true_residual(s.a, N, 0.5, s.b, x) <= 1e-10, "lissa residual %g", true_residual(s.a, N, 0.5, s.b, x));
    ck_assert_int_eq(hg_cg_solve(ctx, apply_dense, &s.op, s.b, &o, &xcg, NULL), HG_OK);
    for (int i = 0; i < N; i++)
        ck_assert_close(hg_get(x, i), hg_get(xcg, i), 1e-8);

    /* A fixed depth without tol: runs all steps. */
    s.op.calls = 0;
    hg_solve_options d = {.damping = 0.5, .scale = 12.0, .max_iter = 7};
    ck_assert_int_eq(hg_lissa_solve(ctx, apply_dense, &s.op, s.b, &d, &x, &rep), HG_OK);
    ck_assert_int_eq(rep.iterations, 7);
    ck_assert_int_eq(s.op.calls, 7);
    ck_assert_int_eq(rep.converged, 0);

    /* scale below lambda_max / 2: diverges, an error, nothing kept. */
    hg_ctx_stats st0 = hg_ctx_get_stats(ctx);
    hg_solve_options bad = {.damping = 0.5, .scale = 2.0, .max_iter = 100000};
    ck_assert_int_eq(hg_lissa_solve(ctx, apply_dense, &s.op, s.b, &bad, &x, &rep), HG_ERR_RANGE);
    ck_assert_ptr_null(x);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "diverged"));
    ck_assert_uint_eq(hg_ctx_get_stats(ctx).bytes_in_use, st0.bytes_in_use);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(cg_not_positive_definite)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    double d[4] = {1, 0, 0, -2};
    dense_op op = {.A = T64(ctx, 2, SHAPE(2, 2), 1.0, 0.0, 0.0, -2.0)};
    (void)d;
    hg_tensor *b = T64(ctx, 1, SHAPE(2), 1.0, 1.0), *x = b;
    hg_ctx_stats st0 = hg_ctx_get_stats(ctx);
    ck_assert_int_eq(hg_cg_solve(ctx, apply_dense, &op, b, NULL, &x, NULL), HG_ERR_RANGE);
    ck_assert_ptr_null(x);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "positive definite"));
    ck_assert_uint_eq(hg_ctx_get_stats(ctx).bytes_in_use, st0.bytes_in_use);
    /* Enough damping makes it definite. */
    hg_ctx_clear_error(ctx);
    hg_solve_options o = {.damping = 3.0};
    ck_assert_int_eq(hg_cg_solve(ctx, apply_dense, &op, b, &o, &x, NULL), HG_OK);
    ck_assert_close(hg_get(x, 0), 0.25, 1e-12);
    ck_assert_close(hg_get(x, 1), 1.0, 1e-12);
    hg_ctx_free(ctx);
}
END_TEST

/* Every way a callback can fail: the error comes back, x is NULL, the arena
 * is back where it was, and the ctx names what happened. */
START_TEST(bad_callbacks)
{
    static const struct {
        int fail_at, set_message, bad_kind;
        hg_status want;
        const char *msg;
    } cases[] = {
        {3, 0, 0, HG_ERR_INVALID, "apply callback failed with HG_ERR_INVALID at iteration 2"},
        {1, 1, 0, HG_ERR_INVALID, "apply_dense: refusing call 1"},
        {0, 0, 1, HG_ERR_SHAPE, "returned [100,1] f64 for a vector [100] f64 at iteration 1"},
        {0, 0, 2, HG_ERR_DTYPE, "returned [100] f32 for a vector [100] f64"},
        {0, 0, 3, HG_ERR_NULL, "returned HG_OK and no tensor at iteration 1"},
        {0, 0, 4, HG_ERR_STALE, "stale"},
        {0, 0, 5, HG_ERR_TAPE, ""},
        {0, 0, 6, HG_ERR_RANGE, "apply_dense: bad value"},
    };
    for (int solver = 0; solver < 2; solver++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            hg_ctx *ctx = hg_ctx_new(NULL);
            static system_t s;
            make_system(ctx, &s, 0.5, 10.0);
            s.op.fail_at = cases[c].fail_at;
            s.op.set_message = cases[c].set_message;
            s.op.bad_kind = cases[c].bad_kind;
            hg_ctx_stats st0 = hg_ctx_get_stats(ctx);
            hg_tensor *x = s.b;
            hg_solve_options o = {.scale = 12.0, .max_iter = 50};
            hg_status st = solver ? hg_lissa_solve(ctx, apply_dense, &s.op, s.b, &o, &x, NULL)
                                  : hg_cg_solve(ctx, apply_dense, &s.op, s.b, &o, &x, NULL);
            ck_assert_msg(st == cases[c].want, "solver %d case %zu: %s (%s)", solver, c, hg_status_name(st),
                          hg_ctx_error(ctx));
            ck_assert_int_eq(hg_ctx_status(ctx), cases[c].want);
            ck_assert_ptr_null(x);
            ck_assert_msg(strstr(hg_ctx_error(ctx), cases[c].msg), "case %zu: message '%s'", c, hg_ctx_error(ctx));
            if (cases[c].bad_kind != 5) /* a tape the callback left active pins its region */
                ck_assert_uint_eq(hg_ctx_get_stats(ctx).bytes_in_use, st0.bytes_in_use);
            hg_ctx_free(ctx);
        }
}
END_TEST

START_TEST(bad_arguments)
{
    hg_ctx *ctx = hg_ctx_new(NULL), *other = hg_ctx_new(NULL);
    static system_t s;
    make_system(ctx, &s, 0.5, 10.0);
    hg_tensor *x = s.b;
    hg_solve_options lo = {.scale = 12};
    ck_assert_int_eq(hg_cg_solve(NULL, apply_dense, &s.op, s.b, NULL, &x, NULL), HG_ERR_NULL);
    ck_assert_int_eq(hg_lissa_solve(NULL, apply_dense, &s.op, s.b, &lo, &x, NULL), HG_ERR_NULL);

    typedef hg_status (*solve_fn)(hg_ctx *, hg_apply_fn, void *, const hg_tensor *, const hg_solve_options *,
                                  hg_tensor **, hg_solve_report *);
    solve_fn fns[2] = {hg_cg_solve, hg_lissa_solve};
    const char *names[2] = {"hg_cg_solve", "hg_lissa_solve"};
    hg_tensor *labels = hg_zeros(ctx, HG_I32, 1, SHAPE(N));
    hg_tensor *foreign = hg_zeros(other, HG_F64, 1, SHAPE(N));
    hg_tensor *nan_b = hg_full(ctx, HG_F64, 1, SHAPE(N), NAN);
    hg_mark m = hg_ctx_mark(ctx); /* last: nothing reuses its header before the checks */
    hg_tensor *stale = hg_zeros(ctx, HG_F64, 1, SHAPE(N));
    hg_ctx_rewind(ctx, m);
    for (int f = 0; f < 2; f++) {
        struct {
            hg_apply_fn apply;
            const hg_tensor *b;
            hg_solve_options o;
            int null_x;
            hg_status want;
        } cases[] = {
            {NULL, s.b, lo, 0, HG_ERR_NULL},
            {apply_dense, NULL, lo, 0, HG_ERR_NULL},
            {apply_dense, s.b, lo, 1, HG_ERR_NULL},
            {apply_dense, stale, lo, 0, HG_ERR_STALE},
            {apply_dense, labels, lo, 0, HG_ERR_DTYPE},
            {apply_dense, foreign, lo, 0, HG_ERR_INVALID},
            {apply_dense, nan_b, lo, 0, HG_ERR_RANGE},
            {apply_dense, s.b, {.scale = 12, .tol = -1}, 0, HG_ERR_RANGE},
            {apply_dense, s.b, {.scale = 12, .tol = NAN}, 0, HG_ERR_RANGE},
            {apply_dense, s.b, {.scale = 12, .damping = INFINITY}, 0, HG_ERR_RANGE},
            {apply_dense, s.b, {.scale = 12, .max_iter = -1}, 0, HG_ERR_RANGE},
        };
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            hg_ctx_clear_error(ctx);
            hg_ctx_stats st0 = hg_ctx_get_stats(ctx);
            x = s.b;
            hg_status st = fns[f](ctx, cases[c].apply, &s.op, cases[c].b, &cases[c].o, cases[c].null_x ? NULL : &x,
                                  NULL);
            ck_assert_msg(st == cases[c].want, "%s case %zu: %s", names[f], c, hg_status_name(st));
            ck_assert_int_eq(hg_ctx_status(ctx), cases[c].want);
            ck_assert_msg(strstr(hg_ctx_error(ctx), names[f]), "message names the call: %s", hg_ctx_error(ctx));
            if (!cases[c].null_x)
                ck_assert_ptr_null(x);
            ck_assert_uint_eq(hg_ctx_get_stats(ctx).bytes_in_use, st0.bytes_in_use);
        }
    }
    /* LiSSA needs a scale. */
    hg_ctx_clear_error(ctx);
    hg_solve_options noscale = {0};
    ck_assert_int_eq(hg_lissa_solve(ctx, apply_dense, &s.op, s.b, &noscale, &x, NULL), HG_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "scale"));
    ck_assert_int_eq(hg_lissa_solve(ctx, apply_dense, &s.op, s.b, NULL, &x, NULL), HG_ERR_RANGE);
    hg_ctx_free(other);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- allocation failure ------------------------------------------------------ */

typedef struct counting {
    long calls, fail_at, live;
} counting;

static void *c_alloc(size_t size, void *user)
{
    counting *c = user;
    if (++c->calls == c->fail_at)
        return NULL;
    void *p = malloc(size);
    if (p)
        c->live++;
    return p;
}

static void c_free(void *ptr, size_t size, void *user)
{
    (void)size;
    counting *c = user;
    if (ptr)
        c->live--;
    free(ptr);
}

/* The n-th allocation fails, for every n until a solve needs fewer: each
 * failure is HG_ERR_OOM with x NULL; after clearing, the same solve on the
 * same ctx gives bitwise the undisturbed result; nothing leaks. */
START_TEST(allocation_failure)
{
    static system_t s;
    double ref[2][N];
    for (long fail_at = 0;; fail_at++) {
        counting cnt = {0, fail_at, 0};
        hg_allocator al = {c_alloc, c_free, &cnt};
        hg_ctx_options co = {.allocator = &al, .chunk_bytes = 4096};
        hg_ctx *ctx = hg_ctx_new(&co);
        if (!ctx) { /* the ctx struct itself */
            ck_assert_int_eq(cnt.live, 0);
            continue;
        }
        hg_ctx_clear_error(ctx);
        int failed = 0;
        hg_tensor *A = NULL;
        hg_mark m0 = hg_ctx_mark(ctx);
        for (int solver = 0; solver < 2; solver++) {
            for (int attempt = 0; attempt < 2; attempt++) {
                if (!A) {
                    memset(&s.op, 0, sizeof s.op);
                    spd_matrix(s.a, N, 0.5, 10.0, 11);
                    A = hg_tensor_from(ctx, HG_F64, 2, SHAPE(N, N), s.a);
                    s.op.A = A;
                    s.b = A ? hg_full(ctx, HG_F64, 1, SHAPE(N), 1.0) : NULL;
                    if (!s.b) {
                        ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_OOM);
                        failed = 1;
                        hg_ctx_clear_error(ctx);
                        hg_ctx_rewind(ctx, m0);
                        A = NULL;
                        continue;
                    }
                }
                hg_tensor *x = s.b;
                hg_solve_options o = {.damping = 0.5, .scale = 12.0, .tol = 1e-10, .max_iter = 3000};
                hg_status st = solver ? hg_lissa_solve(ctx, apply_dense, &s.op, s.b, &o, &x, NULL)
                                      : hg_cg_solve(ctx, apply_dense, &s.op, s.b, &o, &x, NULL);
                if (st != HG_OK) {
                    ck_assert_msg(st == HG_ERR_OOM, "fail_at %ld: %s %s", fail_at, hg_status_name(st),
                                  hg_ctx_error(ctx));
                    ck_assert_ptr_null(x);
                    failed = 1;
                    hg_ctx_clear_error(ctx);
                    continue; /* retry on the same ctx: must now succeed */
                }
                for (int i = 0; i < N; i++) {
                    if (fail_at == 0)
                        ref[solver][i] = hg_get(x, i);
                    else
                        ck_assert_msg(hg_get(x, i) == ref[solver][i], "fail_at %ld: differs at %d", fail_at, i);
                }
                break;
            }
        }
        hg_ctx_free(ctx);
        ck_assert_int_eq(cnt.live, 0);
        if (fail_at > 0 && !failed)
            break; /* past the last allocation */
        ck_assert_int_lt(fail_at, 1000);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("solve");
    TCase *tc = tcase_create("solve");
    tcase_add_test(tc, cg_spd_100);
    tcase_add_test(tc, cg_bounded_arena);
    tcase_add_test(tc, cg_f32_and_zero_rhs);
    tcase_add_test(tc, lissa_converges_and_diverges);
    tcase_add_test(tc, cg_not_positive_definite);
    tcase_add_test(tc, bad_callbacks);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, allocation_failure);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
