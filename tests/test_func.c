/* Functional helpers (func.h): vjp, jvp, hvp, Jacobian, Hessian, checked
 * against closed forms, against each other and against finite differences;
 * create-graph on (results differentiable, composing to third order) and off
 * (results constants); memory without a Jacobian; errors. */
#include "testutil.h"

#include <string.h>

/* ---- functions -------------------------------------------------------------- */

/* 0.5 x^T A x, x [n, 1], A (user) [n, n] symmetric. */
static hg_tensor *quadratic(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    hg_tensor *A = user;
    return hg_scale(ctx, hg_sum(ctx, hg_mul(ctx, in[0], hg_matmul(ctx, A, in[0]))), 0.5);
}

/* Vector function of two inputs: x [3], W [2, 3] ->
 * f = [tanh(W x) * sum(exp(x)), (W x)^2] stacked as [2, 2]. */
static hg_tensor *vecfn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    hg_tensor *x = hg_reshape(ctx, in[0], 2, SHAPE(3, 1));
    hg_tensor *wx = hg_matmul(ctx, in[1], x); /* [2, 1] */
    hg_tensor *a = hg_mul(ctx, hg_tanh(ctx, wx), hg_sum(ctx, hg_exp(ctx, in[0])));
    hg_tensor *b = hg_mul(ctx, wx, wx);
    /* [a b] as [2, 2]: a * [1 0] + b * [0 1] */
    hg_tensor *e0 = T64(ctx, 2, SHAPE(1, 2), 1.0, 0.0), *e1 = T64(ctx, 2, SHAPE(1, 2), 0.0, 1.0);
    return hg_add(ctx, hg_mul(ctx, a, e0), hg_mul(ctx, b, e1));
}

/* Scalar with nonzero third derivatives: sum(exp(A x)) + sum(tanh(x)^3),
 * x [3, 1], A (user) [3, 3]. */
static hg_tensor *cubic(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    hg_tensor *A = user, *x = in[0];
    hg_tensor *t = hg_tanh(ctx, x);
    return hg_add(ctx, hg_sum(ctx, hg_exp(ctx, hg_matmul(ctx, A, x))), hg_sum(ctx, hg_mul(ctx, hg_mul(ctx, t, t), t)));
}

/* MLP 3-4-2, tanh, softmax cross-entropy on a fixed batch; params
 * W1 [3,4], b1 [4], W2 [4,2], b2 [2]. */
typedef struct batch {
    hg_tensor *x;      /* [5, 3] */
    hg_tensor *onehot; /* [5, 2] */
} batch;

static hg_tensor *mlp_loss(hg_ctx *ctx, hg_tensor *const *p, void *user)
{
    batch *b = user;
    hg_tensor *h = hg_tanh(ctx, hg_add(ctx, hg_matmul(ctx, b->x, p[0]), p[1]));
    hg_tensor *z = hg_add(ctx, hg_matmul(ctx, h, p[2]), p[3]);
    hg_tensor *ll = hg_mul(ctx, b->onehot, hg_log_softmax(ctx, z, 1));
    return hg_scale(ctx, hg_sum(ctx, ll), -1.0 / 5.0);
}

static void make_mlp(hg_ctx *ctx, hg_tensor **p, batch *b)
{
    hg_rng rng;
    hg_rng_seed(&rng, 42);
    p[0] = random_f64(ctx, &rng, 2, SHAPE(3, 4), -1.0, 1.0);
    p[1] = random_f64(ctx, &rng, 1, SHAPE(4), -0.5, 0.5);
    p[2] = random_f64(ctx, &rng, 2, SHAPE(4, 2), -1.0, 1.0);
    p[3] = random_f64(ctx, &rng, 1, SHAPE(2), -0.5, 0.5);
    b->x = random_f64(ctx, &rng, 2, SHAPE(5, 3), -2.0, 2.0);
    b->onehot = T64(ctx, 2, SHAPE(5, 2), 1, 0, 0, 1, 0, 1, 1, 0, 1, 0);
}

/* Element k of the concatenation of the n tensors ts (flattened). */
static double *flat_elem(hg_tensor *const *ts, int n, int64_t k)
{
    for (int i = 0; i < n; i++) {
        if (k < hg_tensor_numel(ts[i]))
            return hg_tensor_f64(ts[i]) + k;
        k -= hg_tensor_numel(ts[i]);
    }
    return NULL;
}

static double flat_get(hg_tensor *const *ts, int n, int64_t k)
{
    return *flat_elem(ts, n, k);
}

static hg_tensor *sym_matrix(hg_ctx *ctx, int n, uint64_t seed)
{
    hg_rng rng;
    hg_rng_seed(&rng, seed);
    hg_tensor *B = random_f64(ctx, &rng, 2, SHAPE(n, n), -1.0, 1.0);
    return hg_add(ctx, B, hg_transpose(ctx, B));
}

/* ---- hvp ---------------------------------------------------------------------- */

START_TEST(hvp_of_quadratic_form_is_Av)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 3);
    hg_tensor *A = sym_matrix(ctx, 4, 5);
    hg_tensor *x = random_f64(ctx, &rng, 2, SHAPE(4, 1), -1.0, 1.0);
    hg_tensor *v = random_f64(ctx, &rng, 2, SHAPE(4, 1), -1.0, 1.0);
    hg_tensor *Av = hg_matmul(ctx, A, v);
    for (unsigned flags = 0; flags <= HG_FUNC_CREATE_GRAPH; flags++) {
        hg_tensor *hv = NULL, *value = NULL;
        ck_assert_int_eq(hg_hvp(ctx, quadratic, 1, &x, A, &v, flags, &value, &hv), HG_OK);
        ck_assert_int_eq(hg_tensor_rank(hv), 2);
        ck_assert_int_eq(hg_tensor_dim(hv, 0), 4);
        for (int i = 0; i < 4; i++)
            ck_assert_close(hg_get(hv, i), hg_get(Av, i), 1e-13);
        /* value = 0.5 x^T A x */
        double q = 0;
        hg_tensor *Ax = hg_matmul(ctx, A, x);
        for (int i = 0; i < 4; i++)
            q += 0.5 * hg_get(x, i) * hg_get(Ax, i);
        ck_assert_close(hg_item(value), q, 1e-13);
    }
    /* NULL tangent = zero direction. */
    hg_tensor *none = NULL, *hv = NULL;
    ck_assert_int_eq(hg_hvp(ctx, quadratic, 1, &x, A, &none, 0, NULL, &hv), HG_OK);
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq(hg_get(hv, i), 0.0);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* Memory: hvp of sum(exp(x)) for n = 4096 must not come near n^2 doubles. */
static hg_tensor *sum_exp(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    return hg_sum(ctx, hg_exp(ctx, in[0]));
}

START_TEST(hvp_and_vjp_never_form_a_jacobian)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    const int64_t n = 4096;
    hg_tensor *x = hg_arange(ctx, HG_F64, n, -1.0, 2.0 / (double)n);
    hg_tensor *v = hg_ones_like(ctx, x);
    hg_ctx_reset_peak(ctx);
    size_t before = hg_ctx_get_stats(ctx).bytes_in_use;
    hg_tensor *hv = NULL, *g = NULL;
    ck_assert_int_eq(hg_hvp(ctx, sum_exp, 1, &x, NULL, &v, 0, NULL, &hv), HG_OK);
    ck_assert_int_eq(hg_vjp(ctx, sum_exp, 1, &x, NULL, NULL, 0, NULL, &g), HG_OK);
    size_t used = hg_ctx_get_stats(ctx).peak_bytes - before;
    ck_assert_msg(used < 64 * (size_t)n * sizeof(double), "hvp+vjp used %zu bytes for n = %lld", used, (long long)n);
    for (int64_t i = 0; i < n; i += 511) {
        ck_assert_close(hg_get(hv, i), exp(hg_get(x, i)), 1e-14);
        ck_assert_close(hg_get(g, i), exp(hg_get(x, i)), 1e-14);
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

static hg_tensor *exp_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    return hg_exp(ctx, in[0]);
}

/* Without create-graph each row's sweep is released: memory is the output
 * plus about one sweep, however many rows. */
START_TEST(jacobian_rows_release_their_sweeps)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    const int64_t n = 300;
    hg_tensor *x = hg_arange(ctx, HG_F64, n, -1.0, 2.0 / (double)n), *J = NULL;
    hg_ctx_reset_peak(ctx);
    size_t before = hg_ctx_get_stats(ctx).bytes_in_use;
    ck_assert_int_eq(hg_jacobian(ctx, exp_fn, 1, &x, NULL, 0, &J), HG_OK);
    size_t used = hg_ctx_get_stats(ctx).peak_bytes - before, out = (size_t)(n * n) * sizeof(double);
    ck_assert_msg(used < out + 64 * (size_t)n * sizeof(double) + 65536, "jacobian used %zu bytes, output %zu", used,
                  out);
    for (int64_t i = 0; i < n; i += 37)
        for (int64_t j = 0; j < n; j += 13)
            ck_assert_close(hg_get(J, i * n + j), i == j ? exp(hg_get(x, i)) : 0.0, 1e-15);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- Hessian of an MLP loss ------------------------------------------------------ */

START_TEST(hessian_of_mlp_loss_symmetric_and_matches_fd)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *p[4];
    batch b;
    make_mlp(ctx, p, &b);
    const int64_t N = 12 + 4 + 8 + 2;
    hg_tensor *H = NULL;
    ck_assert_int_eq(hg_hessian(ctx, mlp_loss, 4, p, &b, 0, &H), HG_OK);
    ck_assert_int_eq(hg_tensor_dim(H, 0), N);
    ck_assert_int_eq(hg_tensor_dim(H, 1), N);
    const double *h = hg_tensor_cf64(H);
    double hmax = 0;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < N; j++) {
            ck_assert_msg(fabs(h[i * N + j] - h[j * N + i]) <= 1e-12, "H[%lld,%lld] = %.17g, H[%lld,%lld] = %.17g",
                          (long long)i, (long long)j, h[i * N + j], (long long)j, (long long)i, h[j * N + i]);
            hmax = fmax(hmax, fabs(h[i * N + j]));
        }
    ck_assert_double_gt(hmax, 1e-3); /* not trivially zero */
    /* Column j = central differences of the gradient (from hg_vjp). */
    const double eps = 1e-5;
    for (int64_t j = 0; j < N; j++) {
        hg_mark m = hg_ctx_mark(ctx);
        double *xj = flat_elem(p, 4, j), saved = *xj;
        hg_tensor *gp[4], *gm[4];
        *xj = saved + eps;
        ck_assert_int_eq(hg_vjp(ctx, mlp_loss, 4, p, &b, NULL, 0, NULL, gp), HG_OK);
        *xj = saved - eps;
        ck_assert_int_eq(hg_vjp(ctx, mlp_loss, 4, p, &b, NULL, 0, NULL, gm), HG_OK);
        *xj = saved;
        for (int64_t i = 0; i < N; i++) {
            double fd = (flat_get(gp, 4, i) - flat_get(gm, 4, i)) / (2 * eps);
            ck_assert_msg(fabs(h[i * N + j] - fd) <= 1e-7 + 1e-6 * fabs(fd), "H[%lld,%lld] = %.12g, fd %.12g",
                          (long long)i, (long long)j, h[i * N + j], fd);
        }
        hg_ctx_rewind(ctx, m);
    }
    /* Row-by-row Hessian agrees with hvp: H v. */
    hg_rng rng;
    hg_rng_seed(&rng, 9);
    hg_tensor *v[4], *hv[4];
    for (int i = 0; i < 4; i++)
        v[i] = random_f64(ctx, &rng, hg_tensor_rank(p[i]), hg_tensor_shape(p[i]), -1.0, 1.0);
    ck_assert_int_eq(hg_hvp(ctx, mlp_loss, 4, p, &b, v, 0, NULL, hv), HG_OK);
    for (int64_t i = 0; i < N; i++) {
        double want = 0;
        for (int64_t j = 0; j < N; j++)
            want += h[i * N + j] * flat_get(v, 4, j);
        ck_assert_close(flat_get(hv, 4, i), want, 1e-12);
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- Jacobian, jvp, vjp --------------------------------------------------------- */

START_TEST(jvp_is_J_t_and_vjp_is_uT_J)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *in[2] = {T64(ctx, 1, SHAPE(3), 0.3, -0.8, 0.5),
                        T64(ctx, 2, SHAPE(2, 3), 0.2, -0.4, 0.9, 1.1, 0.3, -0.6)};
    const int64_t M = 4, N = 9;
    hg_tensor *J = NULL;
    ck_assert_int_eq(hg_jacobian(ctx, vecfn, 2, in, NULL, 0, &J), HG_OK);
    ck_assert_int_eq(hg_tensor_dim(J, 0), M);
    ck_assert_int_eq(hg_tensor_dim(J, 1), N);
    const double *j = hg_tensor_cf64(J);
    /* Columns match central differences of f. */
    const double eps = 1e-6;
    for (int64_t c = 0; c < N; c++) {
        hg_mark m = hg_ctx_mark(ctx);
        double *xc = flat_elem(in, 2, c), saved = *xc;
        *xc = saved + eps;
        hg_tensor *fp = vecfn(ctx, in, NULL);
        *xc = saved - eps;
        hg_tensor *fm = vecfn(ctx, in, NULL);
        *xc = saved;
        for (int64_t r = 0; r < M; r++)
            ck_assert_close(j[r * N + c], (hg_get(fp, r) - hg_get(fm, r)) / (2 * eps), 1e-8);
        hg_ctx_rewind(ctx, m);
    }
    hg_rng rng;
    hg_rng_seed(&rng, 11);
    hg_tensor *t[2] = {random_f64(ctx, &rng, 1, SHAPE(3), -1, 1), random_f64(ctx, &rng, 2, SHAPE(2, 3), -1, 1)};
    hg_tensor *u = random_f64(ctx, &rng, 2, SHAPE(2, 2), -1, 1);
    for (unsigned flags = 0; flags <= HG_FUNC_CREATE_GRAPH; flags++) {
        hg_tensor *jv = NULL, *value = NULL, *g[2] = {0};
        ck_assert_int_eq(hg_jvp(ctx, vecfn, 2, in, NULL, t, flags, &value, &jv), HG_OK);
        ck_assert(hg_same_shape(jv, value));
        for (int64_t r = 0; r < M; r++) {
            double want = 0;
            for (int64_t c = 0; c < N; c++)
                want += j[r * N + c] * flat_get(t, 2, c);
            ck_assert_close(hg_get(jv, r), want, 1e-13);
        }
        ck_assert_int_eq(hg_vjp(ctx, vecfn, 2, in, NULL, u, flags, NULL, g), HG_OK);
        for (int64_t c = 0; c < N; c++) {
            double want = 0;
            for (int64_t r = 0; r < M; r++)
                want += hg_get(u, r) * j[r * N + c];
            ck_assert_close(flat_get(g, 2, c), want, 1e-13);
        }
    }
    /* A NULL tangent is zero: only x moves. */
    hg_tensor *tx[2] = {t[0], NULL}, *jv = NULL;
    ck_assert_int_eq(hg_jvp(ctx, vecfn, 2, in, NULL, tx, 0, NULL, &jv), HG_OK);
    for (int64_t r = 0; r < M; r++) {
        double want = 0;
        for (int64_t c = 0; c < 3; c++)
            want += j[r * N + c] * hg_get(t[0], c);
        ck_assert_close(hg_get(jv, r), want, 1e-13);
    }
    /* The Jacobian recorded (create-graph) has the same values. */
    hg_tensor *J2 = NULL;
    ck_assert_int_eq(hg_jacobian(ctx, vecfn, 2, in, NULL, HG_FUNC_CREATE_GRAPH, &J2), HG_OK);
    for (int64_t k = 0; k < M * N; k++)
        ck_assert_double_eq(hg_get(J2, k), j[k]);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* f32 and an i32 input passed through. */
static hg_tensor *f32_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    /* in[0] f32 [3]; in[1] i32 [3] labels (unused by the derivative) */
    hg_tensor *c = hg_cast(ctx, in[1], HG_F32);
    return hg_mul(ctx, hg_mul(ctx, in[0], in[0]), c);
}

START_TEST(f32_and_integer_inputs)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = hg_tensor_from(ctx, HG_F32, 1, SHAPE(3), (const float[]){0.5f, -1.0f, 2.0f});
    hg_tensor *lab = hg_tensor_from(ctx, HG_I32, 1, SHAPE(3), (const int32_t[]){1, 2, 3});
    hg_tensor *in[2] = {x, lab}, *t[2] = {hg_ones_like(ctx, x), NULL};
    hg_tensor *jv = NULL, *g[2] = {x, x}, *J = NULL;
    ck_assert_int_eq(hg_jvp(ctx, f32_fn, 2, in, NULL, t, 0, NULL, &jv), HG_OK);
    ck_assert_int_eq(hg_tensor_dtype(jv), HG_F32);
    ck_assert_int_eq(hg_vjp(ctx, f32_fn, 2, in, NULL, hg_ones_like(ctx, x), 0, NULL, g), HG_OK);
    ck_assert_ptr_null(g[1]);
    ck_assert_int_eq(hg_jacobian(ctx, f32_fn, 2, in, NULL, 0, &J), HG_OK);
    ck_assert_int_eq(hg_tensor_dim(J, 1), 3);
    for (int i = 0; i < 3; i++) {
        double want = 2.0 * hg_get(x, i) * (i + 1);
        ck_assert_close(hg_get(jv, i), want, 1e-6);
        ck_assert_close(hg_get(g[0], i), want, 1e-6);
        ck_assert_close(hg_get(J, i * 3 + i), want, 1e-6);
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- composing: create-graph ------------------------------------------------------ */

/* <w, hvp(x; v)> with create-graph, and its gradient under a user tape. */
static double w_dot_hvp(hg_ctx *ctx, hg_tensor *A, hg_tensor *x, hg_tensor *v, hg_tensor *w, unsigned flags,
                        hg_tensor **hv_out)
{
    hg_tensor *hv = NULL;
    ck_assert_int_eq(hg_hvp(ctx, cubic, 1, &x, A, &v, flags, NULL, &hv), HG_OK);
    hg_tensor *s = hg_sum(ctx, hg_mul(ctx, w, hv));
    if (hv_out)
        *hv_out = s;
    return hg_item(s);
}

START_TEST(gradient_of_hvp_matches_fd)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 21);
    hg_tensor *A = random_f64(ctx, &rng, 2, SHAPE(3, 3), -0.7, 0.7);
    hg_tensor *x = random_f64(ctx, &rng, 2, SHAPE(3, 1), -1, 1);
    hg_tensor *v = random_f64(ctx, &rng, 2, SHAPE(3, 1), -1, 1);
    hg_tensor *w = random_f64(ctx, &rng, 2, SHAPE(3, 1), -1, 1);
    /* d/dx <w, H(x) v>: a third-order quantity. */
    hg_tape *tape = hg_tape_begin(ctx, 0);
    hg_watch(tape, x);
    hg_tensor *s = NULL;
    w_dot_hvp(ctx, A, x, v, w, HG_FUNC_CREATE_GRAPH, &s);
    ck_assert(hg_tape_tracks(tape, s));
    hg_tape_end(tape);
    hg_tensor *d3 = NULL;
    ck_assert_int_eq(hg_gradient(tape, s, 1, &x, NULL, &d3), HG_OK);
    const double eps = 1e-5;
    double *xd = hg_tensor_f64(x), third_max = 0;
    for (int i = 0; i < 3; i++) {
        double saved = xd[i];
        xd[i] = saved + eps;
        double plus = w_dot_hvp(ctx, A, x, v, w, 0, NULL);
        xd[i] = saved - eps;
        double minus = w_dot_hvp(ctx, A, x, v, w, 0, NULL);
        xd[i] = saved;
        double fd = (plus - minus) / (2 * eps);
        ck_assert_msg(fabs(hg_get(d3, i) - fd) <= 1e-7 + 1e-6 * fabs(fd), "d3[%d] = %.12g, fd %.12g", i, hg_get(d3, i),
                      fd);
        third_max = fmax(third_max, fabs(fd));
    }
    ck_assert_double_gt(third_max, 1e-2);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

typedef struct hvp_user {
    hg_tensor *A, *v;
} hvp_user;

static hg_tensor *hvp_as_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    hvp_user *u = user;
    hg_tensor *hv = NULL;
    hg_hvp(ctx, cubic, 1, in, u->A, &u->v, HG_FUNC_CREATE_GRAPH, NULL, &hv);
    return hv;
}

static hg_tensor *jvp_as_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    hg_tensor **t = user, *jv = NULL;
    hg_jvp(ctx, vecfn, 2, in, NULL, t, HG_FUNC_CREATE_GRAPH, NULL, &jv);
    return jv;
}

static hg_tensor *jacobian_as_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    hg_tensor *J = NULL;
    hg_jacobian(ctx, vecfn, 2, in, NULL, HG_FUNC_CREATE_GRAPH, &J);
    return J;
}

static hg_tensor *hessian_as_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    hg_tensor *H = NULL;
    hg_hessian(ctx, cubic, 1, in, user, HG_FUNC_CREATE_GRAPH, &H);
    return H;
}

static hg_tensor *vjp_as_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    hg_tensor *g[2] = {0};
    hg_vjp(ctx, vecfn, 2, in, NULL, user, HG_FUNC_CREATE_GRAPH, NULL, g);
    return g[1];
}

START_TEST(create_graph_results_are_differentiable)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 23);
    hg_tensor *A = random_f64(ctx, &rng, 2, SHAPE(3, 3), -0.7, 0.7);
    hg_tensor *x = random_f64(ctx, &rng, 2, SHAPE(3, 1), -1, 1);
    hvp_user hu = {A, random_f64(ctx, &rng, 2, SHAPE(3, 1), -1, 1)};
    check_gradients(ctx, hvp_as_fn, 1, &x, &hu, 2, "hvp (create-graph) to order 2");
    check_gradients(ctx, hessian_as_fn, 1, &x, A, 1, "hessian (create-graph)");
    hg_tensor *in[2] = {T64(ctx, 1, SHAPE(3), 0.3, -0.8, 0.5),
                        T64(ctx, 2, SHAPE(2, 3), 0.2, -0.4, 0.9, 1.1, 0.3, -0.6)};
    hg_tensor *t[2] = {random_f64(ctx, &rng, 1, SHAPE(3), -1, 1), random_f64(ctx, &rng, 2, SHAPE(2, 3), -1, 1)};
    check_gradients(ctx, jvp_as_fn, 2, in, t, 2, "jvp (create-graph) to order 2");
    check_gradients(ctx, jacobian_as_fn, 2, in, NULL, 1, "jacobian (create-graph)");
    hg_tensor *u = random_f64(ctx, &rng, 2, SHAPE(2, 2), -1, 1);
    check_gradients(ctx, vjp_as_fn, 2, in, u, 2, "vjp (create-graph) to order 2");
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(without_create_graph_results_are_constants)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *A = sym_matrix(ctx, 3, 2);
    hg_tensor *x = T64(ctx, 2, SHAPE(3, 1), 0.1, -0.2, 0.3);
    hg_tensor *v = hg_ones_like(ctx, x);
    hg_tape *outer = hg_tape_begin(ctx, HG_TAPE_PERSISTENT);
    hg_watch(outer, x);
    for (unsigned flags = 0; flags <= HG_FUNC_CREATE_GRAPH; flags++) {
        int want = flags ? 1 : 0;
        hg_tensor *value = NULL, *g = NULL, *jv = NULL, *hv = NULL, *J = NULL, *H = NULL;
        ck_assert_int_eq(hg_vjp(ctx, cubic, 1, &x, A, NULL, flags, &value, &g), HG_OK);
        ck_assert_int_eq(hg_tape_tracks(outer, value), want);
        ck_assert_int_eq(hg_tape_tracks(outer, g), want);
        ck_assert_int_eq(hg_jvp(ctx, cubic, 1, &x, A, &v, flags, &value, &jv), HG_OK);
        ck_assert_int_eq(hg_tape_tracks(outer, value), want);
        ck_assert_int_eq(hg_tape_tracks(outer, jv), want);
        ck_assert_int_eq(hg_hvp(ctx, cubic, 1, &x, A, &v, flags, &value, &hv), HG_OK);
        ck_assert_int_eq(hg_tape_tracks(outer, hv), want);
        ck_assert_int_eq(hg_jacobian(ctx, cubic, 1, &x, A, flags, &J), HG_OK);
        ck_assert_int_eq(hg_tape_tracks(outer, J), want);
        ck_assert_int_eq(hg_hessian(ctx, cubic, 1, &x, A, flags, &H), HG_OK);
        ck_assert_int_eq(hg_tape_tracks(outer, H), want);
        /* The caller's tape records again after the call. */
        ck_assert(hg_tape_tracks(outer, hg_scale(ctx, x, 2.0)));
        ck_assert_ctx_ok(ctx);
    }
    /* Jacobian [1, 3] of a scalar is its gradient; Hessian rows are hvps. */
    hg_tensor *J = NULL, *H = NULL, *g = NULL;
    ck_assert_int_eq(hg_jacobian(ctx, cubic, 1, &x, A, 0, &J), HG_OK);
    ck_assert_int_eq(hg_vjp(ctx, cubic, 1, &x, A, NULL, 0, NULL, &g), HG_OK);
    ck_assert_int_eq(hg_hessian(ctx, cubic, 1, &x, A, 0, &H), HG_OK);
    ck_assert_int_eq(hg_tensor_dim(J, 0), 1);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq(hg_get(J, i), hg_get(g, i));
    for (int r = 0; r < 3; r++) {
        hg_tensor *e = hg_zeros_like(ctx, x), *hv = NULL;
        hg_tensor_f64(e)[r] = 1.0;
        ck_assert_int_eq(hg_hvp(ctx, cubic, 1, &x, A, &e, 0, NULL, &hv), HG_OK);
        for (int c = 0; c < 3; c++)
            ck_assert_close(hg_get(H, r * 3 + c), hg_get(hv, c), 1e-14);
    }
    hg_tape_end(outer);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- errors ---------------------------------------------------------------------- */

static hg_tensor *returns_null(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)ctx;
    (void)in;
    (void)user;
    return NULL;
}

static hg_tensor *bad_shapes(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    return hg_matmul(ctx, in[0], in[0]); /* [3,1] @ [3,1] */
}

static hg_tensor *identity_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)ctx;
    (void)user;
    return in[0];
}

/* The tape stack is back to where it was: a tape can be begun at depth 0
 * and the caller's tape records. */
static void assert_tapes_restored(hg_ctx *ctx, hg_tape *outer, hg_tensor *x)
{
    ck_assert(hg_tape_tracks(outer, hg_scale(ctx, x, 2.0)));
}

START_TEST(errors_are_reported_and_tapes_restored)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 2, SHAPE(3, 1), 0.1, -0.2, 0.3), *g = x, *hv = x, *value = x, *J = x;
    hg_tensor *A = sym_matrix(ctx, 3, 1);
    hg_tape *outer = hg_tape_begin(ctx, 0);
    hg_watch(outer, x);

    ck_assert_int_eq(hg_vjp(ctx, returns_null, 1, &x, NULL, NULL, 0, &value, &g), HG_ERR_INVALID);
    ck_assert_ptr_null(g);
    ck_assert_ptr_null(value);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_vjp"));
    hg_ctx_clear_error(ctx);
    assert_tapes_restored(ctx, outer, x);

    ck_assert_int_eq(hg_hvp(ctx, bad_shapes, 1, &x, NULL, &x, 0, NULL, &hv), HG_ERR_SHAPE);
    ck_assert_ptr_null(hv);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_matmul"));
    hg_ctx_clear_error(ctx);
    assert_tapes_restored(ctx, outer, x);

    /* Not scalar: hvp, hessian; no cotangent for a vector output. */
    ck_assert_int_eq(hg_hvp(ctx, identity_fn, 1, &x, NULL, &x, 0, NULL, &hv), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_hvp: f must return one element"));
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_hessian(ctx, identity_fn, 1, &x, NULL, 0, &J), HG_ERR_SHAPE);
    ck_assert_ptr_null(J);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_vjp(ctx, identity_fn, 1, &x, NULL, NULL, 0, NULL, &g), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "give a cotangent"));
    hg_ctx_clear_error(ctx);
    /* Mismatched cotangent and tangent. */
    hg_tensor *wrong = hg_zeros(ctx, HG_F64, 1, SHAPE(2));
    ck_assert_int_eq(hg_vjp(ctx, identity_fn, 1, &x, NULL, wrong, 0, NULL, &g), HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_jvp(ctx, identity_fn, 1, &x, NULL, &wrong, 0, NULL, &J), HG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_jvp: tangent 0"));
    hg_ctx_clear_error(ctx);
    assert_tapes_restored(ctx, outer, x);

    /* NULL arguments. */
    ck_assert_int_eq(hg_vjp(NULL, identity_fn, 1, &x, NULL, NULL, 0, NULL, &g), HG_ERR_NULL);
    ck_assert_int_eq(hg_vjp(ctx, NULL, 1, &x, NULL, NULL, 0, NULL, &g), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_vjp(ctx, identity_fn, 1, NULL, NULL, NULL, 0, NULL, &g), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_vjp(ctx, identity_fn, 1, &x, NULL, NULL, 0, NULL, NULL), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_jvp(ctx, identity_fn, 1, &x, NULL, NULL, 0, NULL, &J), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_hvp(ctx, quadratic, 1, &x, A, &x, 0, NULL, NULL), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_jacobian(ctx, identity_fn, 1, &x, NULL, 0, NULL), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    hg_tensor *null_in = NULL;
    ck_assert_int_eq(hg_jacobian(ctx, identity_fn, 1, &null_in, NULL, 0, &J), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_hessian(ctx, quadratic, 1, &x, A, 0x10, &J), HG_ERR_INVALID);
    hg_ctx_clear_error(ctx);
    /* Mixed dtypes in a Jacobian. */
    hg_tensor *x32 = hg_cast(ctx, x, HG_F32), *mixed[2] = {x, x32};
    ck_assert_int_eq(hg_jacobian(ctx, identity_fn, 2, mixed, NULL, 0, &J), HG_ERR_DTYPE);
    ck_assert_ptr_null(J);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "hg_jacobian: input is f32 but f's output is f64"));
    hg_ctx_clear_error(ctx);
    assert_tapes_restored(ctx, outer, x);
    hg_tape_end(outer);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* f(x) = x: Jacobian is the identity, jvp = t, vjp = u. */
START_TEST(identity_function)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(3), 1, 2, 3), *t = T64(ctx, 1, SHAPE(3), 4, 5, 6), *jv = NULL, *g = NULL,
              *J = NULL;
    ck_assert_int_eq(hg_jvp(ctx, identity_fn, 1, &x, NULL, &t, 0, NULL, &jv), HG_OK);
    ck_assert_int_eq(hg_vjp(ctx, identity_fn, 1, &x, NULL, t, 0, NULL, &g), HG_OK);
    ck_assert_int_eq(hg_jacobian(ctx, identity_fn, 1, &x, NULL, HG_FUNC_CREATE_GRAPH, &J), HG_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq(hg_get(jv, i), hg_get(t, i));
        ck_assert_double_eq(hg_get(g, i), hg_get(t, i));
        for (int j = 0; j < 3; j++)
            ck_assert_double_eq(hg_get(J, i * 3 + j), i == j);
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("func");
    TCase *tc = tcase_create("func");
    tcase_add_test(tc, hvp_of_quadratic_form_is_Av);
    tcase_add_test(tc, hvp_and_vjp_never_form_a_jacobian);
    tcase_add_test(tc, jacobian_rows_release_their_sweeps);
    tcase_add_test(tc, hessian_of_mlp_loss_symmetric_and_matches_fd);
    tcase_add_test(tc, jvp_is_J_t_and_vjp_is_uT_J);
    tcase_add_test(tc, f32_and_integer_inputs);
    tcase_add_test(tc, gradient_of_hvp_matches_fd);
    tcase_add_test(tc, create_graph_results_are_differentiable);
    tcase_add_test(tc, without_create_graph_results_are_constants);
    tcase_add_test(tc, errors_are_reported_and_tapes_restored);
    tcase_add_test(tc, identity_function);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
