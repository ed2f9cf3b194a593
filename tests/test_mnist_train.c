/* A 784-64-64-10 ReLU MLP trained with the training-form Adam on the real
 * MNIST test digits (first 8,000 to train, last 2,000 held out) reaches at
 * least 93% held-out accuracy, allocating nothing per step after the first.
 * Skips (and says so) when ../shared/data/mnist is absent. */
#include "testutil.h"

#include <string.h>
#include <time.h>

START_TEST(adam_reaches_93_percent)
{
    const char *dir = shared_mnist_dir();
    if (!dir) {
        printf("adam_reaches_93_percent: SKIPPED (../shared/data/mnist not present)\n");
        return;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *img, *lab;
    load_shared_mnist(ctx, dir, &img, &lab);
    const float *x = hg_tensor_cf32(img);
    const int32_t *y = hg_tensor_ci32(lab);
    hg_tensor *x_val = hg_tensor_from(ctx, HG_F32, 2, SHAPE(2000, 784), x + 8000 * 784);
    hg_tensor *y_val = hg_tensor_from(ctx, HG_I32, 1, SHAPE(2000), y + 8000);

    hg_mlp spec = {3, {784, 64, 64, 10}, HG_ACT_RELU};
    hg_rng rng;
    hg_rng_seed(&rng, 1);
    hg_tensor *params[6];
    ck_assert_int_eq(hg_mlp_init(ctx, &spec, HG_F32, HG_INIT_HE, &rng, params), HG_OK);
    hg_opt_config adam = {.kind = HG_OPT_ADAM, .lr = 1e-3};
    hg_optimizer *opt = hg_optimizer_new(ctx, &adam, 6, params);
    ck_assert_ptr_nonnull(opt);
    const int batch = 32, epochs = 5;
    hg_mark step = hg_ctx_mark(ctx);
    uint64_t allocs_after_first = 0;
    size_t peak_after_first = 0;
    int steps = 0;
    for (int e = 0; e < epochs; e++)
        for (int s = 0; s + batch <= 8000; s += batch, steps++) {
            hg_tensor *xb = hg_tensor_from(ctx, HG_F32, 2, SHAPE(batch, 784), x + (int64_t)s * 784);
            hg_tensor *yb = hg_tensor_from(ctx, HG_I32, 1, SHAPE(batch), y + s);
            hg_tape *tape = hg_tape_begin(ctx, 0);
            hg_watch_n(tape, 6, params);
            hg_tensor *loss = hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, &spec, params, xb), yb);
            hg_tape_end(tape);
            hg_tensor *grads[6];
            ck_assert_int_eq(hg_gradient(tape, loss, 6, params, NULL, grads), HG_OK);
            ck_assert_int_eq(hg_optimizer_step(opt, grads), HG_OK);
            ck_assert_int_eq(hg_ctx_rewind(ctx, step), HG_OK);
            hg_ctx_stats st = hg_ctx_get_stats(ctx);
            if (steps == 0) {
                allocs_after_first = st.chunk_allocs;
                peak_after_first = st.peak_bytes;
            }
            ck_assert_uint_eq(st.chunk_allocs, allocs_after_first);
            ck_assert_uint_eq(st.peak_bytes, peak_after_first);
        }
    double acc = hg_accuracy(ctx, hg_mlp_forward(ctx, &spec, params, x_val), y_val);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("held-out accuracy %.2f%% after %d epochs (%d Adam steps), %.2f s; arena %llu allocator calls, "
           "none after step 1\n",
           100 * acc, epochs, steps, secs, (unsigned long long)allocs_after_first);
    ck_assert_ctx_ok(ctx);
    ck_assert_double_ge(acc, 0.93);
    ck_assert_double_lt(secs, 60.0);
    hg_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mnist_train");
    TCase *tc = tcase_create("train");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, adam_reaches_93_percent);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
