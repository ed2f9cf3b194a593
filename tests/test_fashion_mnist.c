/* Real data through the IDX reader: the 100 Fashion-MNIST test images
 * committed under tests/data/fashion-mnist (always), and the full
 * Fashion-MNIST of Debian's dataset-fashion-mnist (10,000 test and 60,000
 * training images, gzip). Exits 77 (SKIP) after the committed-subset tests when
 * the installed set is absent. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

/* Sum of the raw bytes, count of zero bytes, and first labels of the subset,
 * computed from the IDX files with Python's gzip module. */
#define SUBSET_N 100
#define SUBSET_BYTE_SUM 5854180
#define SUBSET_ZERO_BYTES 39691
static const int subset_first_labels[20] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1, 2, 4, 8, 0};
static const int subset_class_counts[10] = {8, 13, 14, 9, 10, 9, 8, 11, 12, 6};

static void class_counts(const hg_tensor *labels, int counts[10])
{
    memset(counts, 0, 10 * sizeof counts[0]);
    int64_t n = hg_tensor_dim(labels, 0);
    for (int64_t i = 0; i < n; i++) {
        int32_t c = hg_tensor_ci32(labels)[i];
        ck_assert_msg(c >= 0 && c < 10, "label %d at row %lld", c, (long long)i);
        counts[c]++;
    }
}

START_TEST(committed_subset)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *img, *lab;
    load_fashion_mnist(ctx, fashion_subset_dir(), "t10k", &img, &lab);
    ck_assert_int_eq(hg_tensor_rank(img), 3);
    ck_assert_int_eq(hg_tensor_dim(img, 0), SUBSET_N);
    ck_assert_int_eq(hg_tensor_dim(img, 1), 28);
    ck_assert_int_eq(hg_tensor_dim(img, 2), 28);
    ck_assert_int_eq(hg_tensor_dim(lab, 0), SUBSET_N);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(hg_tensor_ci32(lab)[i], subset_first_labels[i]);
    int counts[10];
    class_counts(lab, counts);
    for (int c = 0; c < 10; c++)
        ck_assert_int_eq(counts[c], subset_class_counts[c]);
    /* Scaled by 1/255 on load: the byte values come back exactly. */
    long long sum = 0, zeros = 0;
    const float *x = hg_tensor_cf32(img);
    for (int64_t k = 0; k < SUBSET_N * 784; k++) {
        float b = x[k] * 255.0f;
        long long v = (long long)(b + 0.5f);
        ck_assert_msg(fabsf(b - (float)v) < 1e-3f, "pixel %lld = %g is not a byte / 255", (long long)k, (double)x[k]);
        sum += v;
        zeros += v == 0;
    }
    ck_assert_int_eq(sum, SUBSET_BYTE_SUM);
    ck_assert_int_eq(zeros, SUBSET_ZERO_BYTES);
    /* The same rows as raw bytes (scale 1, u8 stored as f64). */
    char path[4200];
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", fashion_subset_dir());
    hg_tensor *raw = hg_idx_load(ctx, path, HG_F64, 1, 0);
    ck_assert_ctx_ok(ctx);
    ck_assert_double_eq(hg_item(hg_sum(ctx, raw)), (double)SUBSET_BYTE_SUM);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(installed_test_set)
{
    const char *dir = fashion_mnist_dir();
    ck_assert_ptr_nonnull(dir);
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *img, *lab, *sub_img, *sub_lab;
    load_fashion_mnist(ctx, dir, "t10k", &img, &lab);
    ck_assert_int_eq(hg_tensor_dim(img, 0), 10000);
    ck_assert_int_eq(hg_tensor_dim(img, 1), 28);
    ck_assert_int_eq(hg_tensor_dim(img, 2), 28);
    int counts[10];
    class_counts(lab, counts);
    for (int c = 0; c < 10; c++)
        ck_assert_int_eq(counts[c], 1000);
    float lo = 1, hi = 0;
    const float *x = hg_tensor_cf32(img);
    for (int64_t k = 0; k < 10000 * 784; k++) {
        lo = x[k] < lo ? x[k] : lo;
        hi = x[k] > hi ? x[k] : hi;
    }
    ck_assert_float_eq(lo, 0.0f);
    ck_assert_float_eq(hi, 1.0f);
    /* The committed subset is the first rows of the installed set, unchanged. */
    load_fashion_mnist(ctx, fashion_subset_dir(), "t10k", &sub_img, &sub_lab);
    ck_assert_int_eq(memcmp(hg_tensor_cf32(sub_img), x, SUBSET_N * 784 * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(hg_tensor_ci32(sub_lab), hg_tensor_ci32(lab), SUBSET_N * sizeof(int32_t)), 0);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(installed_training_set)
{
    const char *dir = fashion_mnist_dir();
    ck_assert_ptr_nonnull(dir);
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *img, *lab;
    load_fashion_mnist(ctx, dir, "train", &img, &lab);
    ck_assert_int_eq(hg_tensor_dim(img, 0), 60000);
    ck_assert_int_eq(hg_tensor_dim(lab, 0), 60000);
    int counts[10];
    class_counts(lab, counts);
    for (int c = 0; c < 10; c++)
        ck_assert_int_eq(counts[c], 6000);
    hg_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fashion_mnist");
    TCase *tc = tcase_create("subset");
    tcase_add_test(tc, committed_subset);
    suite_add_tcase(s, tc);
    int rc = run_suite(s);
    if (rc != EXIT_SUCCESS)
        return rc;
    if (!fashion_mnist_dir()) {
        printf("SKIP: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist, or set "
               "HGRAD_FASHION_MNIST to a directory of its IDX .gz files); only the committed subset was read\n");
        return TEST_SKIP;
    }
    s = suite_create("fashion_mnist_installed");
    tc = tcase_create("installed");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, installed_test_set);
    tcase_add_test(tc, installed_training_set);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
