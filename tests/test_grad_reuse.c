/* Cotangent reuse in the sweep (src/grad.c): a sweep that no tape records
 * gives dead cotangent blocks to a free list and takes them for its next
 * tensors, so its arena peak stays near one step's worth; results equal a
 * recorded sweep's bit for bit; the results stay intact; marks and rewinds
 * after such a sweep work; a recorded sweep still differentiates again. */
#include "testutil.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define STEPS 40

/* A chain of STEPS elementwise layers over a [64, 64] tensor, summed. */
static hg_tensor *chain(hg_ctx *ctx, hg_tensor *x, hg_tensor *w)
{
    hg_tensor *h = x;
    for (int k = 0; k < STEPS; k++)
        h = hg_tanh(ctx, hg_add(ctx, hg_mul(ctx, h, w), hg_scale(ctx, h, 0.5)));
    return hg_sum(ctx, hg_mul(ctx, h, h));
}

/* dL/dx and dL/dw of the chain; `recorded` keeps a second tape active (and
 * tracking x) so that the sweep is recorded and reuses nothing. Returns the
 * arena bytes the sweep added at its peak. */
static size_t sweep_peak(hg_ctx *ctx, hg_tensor *x, hg_tensor *w, bool recorded, hg_tensor **g)
{
    hg_tape *outer = recorded ? hg_tape_begin(ctx, 0) : NULL;
    if (outer)
        hg_watch(outer, x);
    hg_tape *tape = hg_tape_begin(ctx, 0);
    hg_tensor *src[2] = {x, w};
    hg_watch_n(tape, 2, src);
    hg_tensor *L = chain(ctx, x, w);
    hg_tape_end(tape);
    size_t before = hg_ctx_get_stats(ctx).bytes_in_use;
    hg_ctx_reset_peak(ctx);
    ck_assert_int_eq(hg_gradient(tape, L, 2, src, NULL, g), HG_OK);
    size_t peak = hg_ctx_get_stats(ctx).peak_bytes - before;
    if (outer)
        hg_tape_end(outer);
    return peak;
}

START_TEST(unrecorded_sweep_reuses_and_matches)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 21);
    hg_tensor *x = random_f64(ctx, &rng, 2, SHAPE(64, 64), -1, 1);
    hg_tensor *w = random_f64(ctx, &rng, 2, SHAPE(64, 64), -0.5, 0.5);
    hg_tensor *a[2], *b[2];
    size_t reused = sweep_peak(ctx, x, w, false, a);
    size_t fresh = sweep_peak(ctx, x, w, true, b);
    /* Each layer's backward makes about 10 tensors of 32 KB: the recorded
     * sweep keeps them all, the reusing one about one layer's worth. */
    ck_assert_msg(fresh > (size_t)STEPS * 5 * 32768, "recorded sweep peak %zu", fresh);
    ck_assert_msg(reused * 8 < fresh, "reusing sweep peak %zu, recorded %zu", reused, fresh);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(hg_tensor_check(a[i]), HG_OK);
        ck_assert_msg(memcmp(hg_tensor_cdata(a[i]), hg_tensor_cdata(b[i]), 64 * 64 * sizeof(double)) == 0,
                      "result %d differs between the reusing and the recorded sweep", i);
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* The results survive later work, and marks after the sweep rewind. */
START_TEST(results_intact_and_rewind_after_reuse)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 22);
    hg_tensor *x = random_f64(ctx, &rng, 2, SHAPE(64, 64), -1, 1);
    hg_tensor *w = random_f64(ctx, &rng, 2, SHAPE(64, 64), -0.5, 0.5);
    hg_tensor *g[2];
    sweep_peak(ctx, x, w, false, g);
    double *copy = malloc(64 * 64 * sizeof(double));
    memcpy(copy, hg_tensor_cdata(g[0]), 64 * 64 * sizeof(double));
    hg_mark m = hg_ctx_mark(ctx);
    for (int k = 0; k < 5; k++) /* more sweeps and tensors after it */
        ck_assert_ptr_nonnull(hg_tanh(ctx, hg_add(ctx, x, w)));
    hg_tensor *h[2];
    sweep_peak(ctx, x, w, false, h);
    ck_assert_int_eq(memcmp(copy, hg_tensor_cdata(g[0]), 64 * 64 * sizeof(double)), 0);
    ck_assert_int_eq(memcmp(hg_tensor_cdata(h[0]), hg_tensor_cdata(g[0]), 64 * 64 * sizeof(double)), 0);
    ck_assert_int_eq(hg_ctx_rewind(ctx, m), HG_OK);
    ck_assert_int_eq(hg_tensor_check(h[0]), HG_ERR_STALE);
    ck_assert_int_eq(hg_tensor_check(g[0]), HG_OK);
    /* a mark taken right after a reusing sweep (its last object may be a
     * freed block) still rewinds */
    sweep_peak(ctx, x, w, false, h);
    hg_mark m2 = hg_ctx_mark(ctx);
    ck_assert_ptr_nonnull(hg_exp(ctx, x));
    ck_assert_int_eq(hg_ctx_rewind(ctx, m2), HG_OK);
    free(copy);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

static hg_tensor *chain_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    hg_tensor *h = in[0];
    for (int k = 0; k < 3; k++)
        h = hg_tanh(ctx, hg_add(ctx, hg_mul(ctx, h, in[1]), hg_scale(ctx, h, 0.5)));
    return h;
}

/* Nested tapes: inner sweeps are recorded (no reuse), the outermost sweep
 * reuses; derivatives to third order still agree with finite differences. */
START_TEST(higher_orders_unchanged)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 23);
    hg_tensor *in[2] = {random_f64(ctx, &rng, 2, SHAPE(3, 2), -1, 1), random_f64(ctx, &rng, 2, SHAPE(3, 2), -1, 1)};
    check_gradients(ctx, chain_fn, 2, in, NULL, 3, "chain");
    hg_ctx_free(ctx);
}
END_TEST

/* Products whose operands collect several cotangents (the sweep adds each
 * later product onto the cotangent it holds, hg_matmul_acc): x, W and V
 * feed a product at every layer, x^T x has one operand twice (no
 * accumulation there), relu's vjp is relu_mask. */
static hg_tensor *products_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    hg_tensor *x = in[0], *W = in[1], *V = in[2];
    hg_tensor *xx = hg_matmul_t(ctx, x, x, 1, 0);
    hg_tensor *h = x;
    for (int k = 0; k < 3; k++)
        h = hg_relu(ctx, hg_add(ctx, hg_matmul(ctx, h, W), hg_matmul_t(ctx, x, V, 0, k == 1)));
    return hg_matmul(ctx, h, xx);
}

/* d sum(products_fn)/d(x, W, V); `recorded`: a second tape keeps the sweep
 * recorded (no in-place accumulation). */
static void products_grad(hg_ctx *ctx, hg_tensor *const *in, bool recorded, hg_tensor **g)
{
    hg_tape *outer = recorded ? hg_tape_begin(ctx, 0) : NULL;
    if (outer)
        hg_watch(outer, in[0]);
    hg_tape *tape = hg_tape_begin(ctx, 0);
    hg_watch_n(tape, 3, in);
    hg_tensor *L = hg_sum(ctx, products_fn(ctx, in, NULL));
    hg_tape_end(tape);
    ck_assert_int_eq(hg_gradient(tape, L, 3, in, NULL, g), HG_OK);
    if (outer)
        hg_tape_end(outer);
}

/* In place or as recorded ops, the accumulated product cotangents have the
 * same bits, in f64 and f32, and are the derivatives (third order). */
START_TEST(accumulated_products_match_and_differentiate)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 24);
    for (int d = 0; d < 2; d++) {
        hg_tensor *in[3] = {random_f64(ctx, &rng, 2, SHAPE(96, 48), -1, 1),
                            random_f64(ctx, &rng, 2, SHAPE(48, 48), -0.3, 0.3),
                            random_f64(ctx, &rng, 2, SHAPE(48, 48), -0.3, 0.3)};
        if (d == 0)
            for (int i = 0; i < 3; i++)
                in[i] = hg_cast(ctx, in[i], HG_F32);
        hg_tensor *a[3], *b[3];
        products_grad(ctx, in, false, a);
        products_grad(ctx, in, true, b);
        for (int i = 0; i < 3; i++) {
            size_t bytes = (size_t)hg_tensor_numel(in[i]) * (d ? sizeof(double) : sizeof(float));
            ck_assert_int_eq(hg_tensor_check(a[i]), HG_OK);
            ck_assert_msg(memcmp(hg_tensor_cdata(a[i]), hg_tensor_cdata(b[i]), bytes) == 0,
                          "%s: cotangent %d differs between in-place and recorded accumulation", d ? "f64" : "f32", i);
        }
    }
    hg_tensor *small[3] = {random_f64(ctx, &rng, 2, SHAPE(4, 3), -1, 1), random_f64(ctx, &rng, 2, SHAPE(3, 3), -1, 1),
                           random_f64(ctx, &rng, 2, SHAPE(3, 3), -1, 1)};
    check_gradients(ctx, products_fn, 3, small, NULL, 3, "accumulated products");
    check_f32_first_order(ctx, products_fn, 3, small, NULL, 1e-4, "accumulated products (f32)");
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

static Suite *reuse_suite(void)
{
    Suite *s = suite_create("grad_reuse");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, unrecorded_sweep_reuses_and_matches);
    tcase_add_test(tc, results_intact_and_rewind_after_reuse);
    tcase_add_test(tc, higher_orders_unchanged);
    tcase_add_test(tc, accumulated_products_match_and_differentiate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(reuse_suite());
}
