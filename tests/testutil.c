#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void check_gradients_tol(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, int order,
                         double atol, double rtol, const char *what)
{
    hg_check_options opts = {.order = order, .eps = 1e-6, .atol = atol, .rtol = rtol, .seed = 7};
    hg_check_report r;
    hg_status s = hg_gradcheck(ctx, f, n, inputs, user, &opts, &r);
    ck_assert_msg(s == HG_OK, "%s: gradcheck failed to run: %s: %s", what, hg_status_name(s), hg_ctx_error(ctx));
    ck_assert_msg(r.passed,
                  "%s: order %d input %d element %lld: analytic %.12g numeric %.12g (abs err %.3g, rel %.3g)", what,
                  r.worst_order, r.worst_input, (long long)r.worst_index, r.analytic, r.numeric, r.abs_error,
                  r.rel_error);
}

void check_gradients(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, int order,
                     const char *what)
{
    check_gradients_tol(ctx, f, n, inputs, user, order, 1e-6, 1e-5, what);
}

hg_tensor *random_f64(hg_ctx *ctx, hg_rng *rng, int rank, const int64_t *shape, double lo, double hi)
{
    return hg_rand_uniform(ctx, rng, HG_F64, rank, shape, lo, hi);
}

const char *fashion_mnist_dir(void)
{
    static char path[4096];
    const char *dir = getenv("HGRAD_FASHION_MNIST");
    snprintf(path, sizeof path, "%s", dir && *dir ? dir : "/usr/share/datasets/fashion-mnist");
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/t10k-images-idx3-ubyte.gz", path);
    if (access(probe, R_OK) != 0)
        return NULL;
    return path;
}

const char *fashion_subset_dir(void)
{
    static char path[4096];
    const char *root = getenv("HGRAD_SOURCE_ROOT");
    snprintf(path, sizeof path, "%s/tests/data/fashion-mnist", root ? root : ".");
    return path;
}

void load_fashion_mnist(hg_ctx *ctx, const char *dir, const char *set, hg_tensor **images, hg_tensor **labels)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, set);
    *images = hg_idx_load(ctx, path, HG_F32, 1.0 / 255, 0);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, set);
    *labels = hg_idx_load(ctx, path, HG_I32, 1, 0);
    ck_assert_msg(*images && *labels, "%s", hg_ctx_error(ctx));
}

int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
