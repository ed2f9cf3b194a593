/* Shared helpers for the Check suites. */
#ifndef HGRAD_TESTUTIL_H
#define HGRAD_TESTUTIL_H

#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#include "hgrad.h"

/* Fail the test with the ctx's error message if its status is not HG_OK. */
#define ck_assert_ctx_ok(ctx)                                                                          \
    ck_assert_msg(hg_ctx_status(ctx) == HG_OK, "ctx error %s: %s", hg_status_name(hg_ctx_status(ctx)), \
                  hg_ctx_error(ctx))

/* |a - b| <= tol * max(1, |b|) */
#define ck_assert_close(a, b, tol)                                                                                   \
    do {                                                                                                             \
        double a_ = (a), b_ = (b);                                                                                   \
        ck_assert_msg(fabs(a_ - b_) <= (tol)*fmax(1.0, fabs(b_)), "%s = %.17g, expected %.17g (tol %g)", #a, a_, b_, \
                      (double)(tol));                                                                                \
    } while (0)

/* Shape literal: SHAPE(2, 3) -> (const int64_t[]){2, 3} */
#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

/* f64 tensor from a literal list. */
#define T64(ctx, rank, shape, ...) hg_tensor_from((ctx), HG_F64, (rank), (shape), (const double[]){__VA_ARGS__})

/* Run hg_gradcheck to `order` and fail with the worst element on mismatch. */
void check_gradients(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, int order, const char *what);
/* Same with explicit tolerances. */
void check_gradients_tol(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, int order, double atol,
                         double rtol, const char *what);

/* First order in f32: the gradient of <u, f(x)> with the float inputs cast
 * to f32 must match the one in f64 (itself checked by hg_gradcheck) within
 * |d| <= tol * max(1, max |g64|). inputs are f64 (i32 passed through); u is
 * a fixed random direction. */
void check_f32_first_order(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, double tol,
                           const char *what);

/* A shape rule for test ops whose one output is shaped like in[0]
 * (hg_out_like). */
hg_status shape_like_input(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out);

/* `steps` recorded training steps of the MLP spec on (x, y): each takes the
 * loss's gradient on an inner tape (hg_gradient), then hg_opt_step with
 * step numbers t = 1 .. steps and lr as hg_opt_step takes it. p[0 .. n) is
 * replaced by the new parameters and state (NULL for SGD) updated. Returns
 * the first failing status (the error stays on ctx); HG_ERR_RANGE for n >
 * 2 * HG_MLP_MAX_LAYERS. Safe outside a Check test (no ck_assert). */
hg_status recorded_steps(hg_ctx *ctx, const hg_mlp *spec, const hg_opt_config *cfg, hg_tensor *lr, int steps, int n,
                         hg_tensor **p, hg_tensor **state, hg_tensor *x, hg_tensor *y);

/* Same dtype, element count and bytes (bitwise equal values). */
bool same_bits(const hg_tensor *a, const hg_tensor *b);

/* Random f64 tensor with entries in [lo, hi). */
hg_tensor *random_f64(hg_ctx *ctx, hg_rng *rng, int rank, const int64_t *shape, double lo, double hi);

/* Exit code of a test program that cannot run here (meson reports SKIP). */
#define TEST_SKIP 77

/* Directory of the real Fashion-MNIST IDX files (gzip): $HGRAD_FASHION_MNIST
 * if set, else Debian's /usr/share/datasets/fashion-mnist (package
 * dataset-fashion-mnist); NULL if its t10k-images-idx3-ubyte.gz is not
 * readable. */
const char *fashion_mnist_dir(void);

/* The first 100 test images of Fashion-MNIST, committed with their license
 * under tests/data/fashion-mnist (found through $HGRAD_SOURCE_ROOT). */
const char *fashion_subset_dir(void);

/* Set "t10k" (10,000 test images) or "train" (60,000) from dir: images f32
 * [N,28,28] scaled to [0,1] and labels i32 [N]. Fails the test on a read
 * error. */
void load_fashion_mnist(hg_ctx *ctx, const char *dir, const char *set, hg_tensor **images, hg_tensor **labels);

/* Run a suite; returns the process exit code. */
int run_suite(Suite *s);

#endif
