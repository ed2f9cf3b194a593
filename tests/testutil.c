#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void check_gradients_tol(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, int order, double atol,
                         double rtol, const char *what)
{
    hg_check_options opts = {.order = order, .eps = 1e-6, .atol = atol, .rtol = rtol, .seed = 7};
    hg_check_report r;
    hg_status s = hg_gradcheck(ctx, f, n, inputs, user, &opts, &r);
    ck_assert_msg(s == HG_OK, "%s: gradcheck failed to run: %s: %s", what, hg_status_name(s), hg_ctx_error(ctx));
    ck_assert_msg(r.passed, "%s: order %d input %d element %lld: analytic %.12g numeric %.12g (abs err %.3g, rel %.3g)",
                  what, r.worst_order, r.worst_input, (long long)r.worst_index, r.analytic, r.numeric, r.abs_error,
                  r.rel_error);
}

void check_gradients(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, int order, const char *what)
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

/* Gradient of <u, f(xs)> w.r.t. the float inputs; u from seed. */
static void f32_grads(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *xs, void *user, hg_tensor **g)
{
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_tensor *src[16];
    int m = 0;
    for (int i = 0; i < n; i++)
        if (hg_tensor_dtype(xs[i]) != HG_I32)
            src[m++] = xs[i];
    hg_watch_n(t, m, src);
    hg_tensor *y = f(ctx, xs, user);
    ck_assert_msg(y != NULL, "f failed: %s", hg_ctx_error(ctx));
    hg_rng rng;
    hg_rng_seed(&rng, 99);
    hg_tensor *u = hg_rand_uniform(ctx, &rng, hg_tensor_dtype(y), hg_tensor_rank(y), hg_tensor_shape(y), -1, 1);
    hg_tensor *s = hg_sum(ctx, hg_mul(ctx, y, u));
    hg_tape_end(t);
    ck_assert_msg(hg_gradient(t, s, m, src, NULL, g) == HG_OK, "gradient: %s", hg_ctx_error(ctx));
}

void check_f32_first_order(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user, double tol,
                           const char *what)
{
    ck_assert(n <= 16);
    hg_tensor *x32[16], *g64[16], *g32[16];
    for (int i = 0; i < n; i++)
        x32[i] = hg_tensor_dtype(inputs[i]) == HG_F64 ? hg_cast(ctx, inputs[i], HG_F32) : inputs[i];
    f32_grads(ctx, f, n, inputs, user, g64);
    f32_grads(ctx, f, n, x32, user, g32);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (hg_tensor_dtype(inputs[i]) != HG_I32)
            m++;
    for (int j = 0; j < m; j++) {
        ck_assert_msg(hg_tensor_dtype(g32[j]) == HG_F32, "%s: f32 gradient %d is not f32", what, j);
        double scale = 1;
        for (int64_t k = 0; k < hg_tensor_numel(g64[j]); k++)
            scale = fmax(scale, fabs(hg_get(g64[j], k)));
        for (int64_t k = 0; k < hg_tensor_numel(g64[j]); k++)
            ck_assert_msg(fabs(hg_get(g32[j], k) - hg_get(g64[j], k)) <= tol * scale,
                          "%s: f32 gradient %d element %lld: %.9g vs f64 %.9g", what, j, (long long)k,
                          hg_get(g32[j], k), hg_get(g64[j], k));
    }
}

hg_status shape_like_input(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    (void)ctx;
    (void)attr;
    hg_out_like(&out[0], in[0]);
    return HG_OK;
}

hg_status recorded_steps(hg_ctx *ctx, const hg_mlp *spec, const hg_opt_config *cfg, hg_tensor *lr, int steps, int n,
                         hg_tensor **p, hg_tensor **state, hg_tensor *x, hg_tensor *y)
{
    hg_tensor *g[2 * HG_MLP_MAX_LAYERS], *next[2 * HG_MLP_MAX_LAYERS];
    if (n > 2 * HG_MLP_MAX_LAYERS) /* no ck_assert: child processes call this outside a test */
        return HG_ERR_RANGE;
    for (int t = 1; t <= steps; t++) {
        hg_tape *inner = hg_tape_begin(ctx, 0);
        hg_watch_n(inner, n, p);
        hg_tensor *loss = hg_softmax_cross_entropy(ctx, hg_mlp_forward(ctx, spec, p, x), y);
        hg_tape_end(inner);
        hg_status s = hg_gradient(inner, loss, n, p, NULL, g);
        if (s != HG_OK || (s = hg_opt_step(ctx, cfg, lr, t, n, p, g, state, next)) != HG_OK)
            return s;
        memcpy(p, next, (size_t)n * sizeof *p);
    }
    return HG_OK;
}

bool same_bits(const hg_tensor *a, const hg_tensor *b)
{
    return hg_tensor_numel(a) == hg_tensor_numel(b) && hg_tensor_dtype(a) == hg_tensor_dtype(b) &&
           memcmp(hg_tensor_cdata(a), hg_tensor_cdata(b),
                  (size_t)hg_tensor_numel(a) * hg_dtype_size(hg_tensor_dtype(a))) == 0;
}
