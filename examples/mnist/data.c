/* Data for mnist_hypergrad: MNIST-format IDX files or a synthetic set. */
#include "data.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEBIAN_FASHION "/usr/share/datasets/fashion-mnist"

/* path of DIR/NAME or DIR/NAME.gz, whichever exists; NULL if neither. */
static const char *find_file(const char *dir, const char *name, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s.gz", dir, name);
    if (n > 0 && (size_t)n < size && access(buf, R_OK) == 0)
        return buf;
    n = snprintf(buf, size, "%s/%s", dir, name);
    if (n > 0 && (size_t)n < size && access(buf, R_OK) == 0)
        return buf;
    return NULL; /* a path too long for buf is not found */
}

static bool has_test_files(const char *dir)
{
    char a[4096], b[4096];
    return find_file(dir, "t10k-images-idx3-ubyte", a, sizeof a) &&
           find_file(dir, "t10k-labels-idx1-ubyte", b, sizeof b);
}

/* Images [n,rows,cols] -> f32 [n,rows*cols] in [0,1]; labels i32 [n].
 * 1: files absent; -1: an error, printed. */
static int load_pair(hg_ctx *ctx, const char *dir, const char *prefix, hg_tensor **x, hg_tensor **y, int64_t *rows,
                     int64_t *cols)
{
    char ip[4096], lp[4096], name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    const char *images = find_file(dir, name, ip, sizeof ip);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    const char *labels = find_file(dir, name, lp, sizeof lp);
    if (!images || !labels)
        return 1;
    hg_tensor *img = hg_idx_load(ctx, images, HG_F32, 1.0 / 255.0, 0);
    hg_tensor *lab = hg_idx_load(ctx, labels, HG_I32, 1.0, 0);
    if (!img || !lab) {
        fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
        return -1;
    }
    if (hg_tensor_rank(img) != 3 || hg_tensor_rank(lab) != 1 || hg_tensor_dim(img, 0) != hg_tensor_dim(lab, 0)) {
        fprintf(stderr, "error: %s and %s do not hold matching images [n, rows, cols] and labels [n]\n", images,
                labels);
        return -1;
    }
    if (*rows && (hg_tensor_dim(img, 1) != *rows || hg_tensor_dim(img, 2) != *cols)) {
        fprintf(stderr, "error: %s holds %lld x %lld images, the other files %lld x %lld\n", images,
                (long long)hg_tensor_dim(img, 1), (long long)hg_tensor_dim(img, 2), (long long)*rows, (long long)*cols);
        return -1;
    }
    *rows = hg_tensor_dim(img, 1);
    *cols = hg_tensor_dim(img, 2);
    int64_t n = hg_tensor_dim(img, 0), shape[2] = {n, *rows * *cols};
    *x = hg_reshape(ctx, img, 2, shape);
    *y = lab;
    if (!*x) {
        fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
        return -1;
    }
    /* Labels index the classes: refuse what cannot be one. */
    const int32_t *l = hg_tensor_ci32(lab);
    for (int64_t i = 0; i < n; i++)
        if (l[i] < 0 || l[i] > 9999) {
            fprintf(stderr, "error: %s: label %d of sample %lld is not a class number 0..9999\n", labels, l[i],
                    (long long)i);
            return -1;
        }
    return 0;
}

hg_tensor *rows_f32(hg_ctx *ctx, hg_tensor *x, int64_t start, int64_t count)
{
    int64_t cols = hg_tensor_dim(x, 1), shape[2] = {count, cols};
    return hg_tensor_from(ctx, HG_F32, 2, shape, hg_tensor_cf32(x) + start * cols);
}

hg_tensor *rows_i32(hg_ctx *ctx, hg_tensor *y, int64_t start, int64_t count)
{
    return hg_tensor_from(ctx, HG_I32, 1, &count, hg_tensor_ci32(y) + start);
}

/* Ten classes of bars (horizontal for even classes, vertical for odd,
 * the position set by the class) with jitter, varying length and
 * brightness, and sparse speckle on an exactly-zero background like MNIST's.
 * Neighbouring classes overlap, so it is learnable but not trivial. */
static void synthetic(hg_ctx *ctx, uint64_t seed, int64_t n, hg_tensor **x, hg_tensor **y)
{
    hg_rng rng;
    hg_rng_seed(&rng, seed);
    int64_t shape[2] = {n, 28 * 28};
    *x = hg_zeros(ctx, HG_F32, 2, shape);
    *y = hg_zeros(ctx, HG_I32, 1, &n);
    if (!*x || !*y)
        return;
    float *xd = hg_tensor_f32(*x);
    int32_t *yd = hg_tensor_i32(*y);
    for (int64_t i = 0; i < n; i++) {
        int c = (int)(hg_rng_next(&rng) % 10);
        yd[i] = c;
        double centre = 5 + 2 * (c / 2) * 2.2 + 4 * (hg_rng_uniform(&rng) - 0.5);
        double from = 3 + 6 * hg_rng_uniform(&rng), to = 19 + 6 * hg_rng_uniform(&rng);
        double bright = 0.5 + 0.5 * hg_rng_uniform(&rng);
        for (int r = 0; r < 28; r++)
            for (int q = 0; q < 28; q++) {
                int along = (c % 2) ? r : q, across = (c % 2) ? q : r;
                double d = fabs(across - centre), v = 0;
                if (along >= from && along <= to && d < 2.5)
                    v = bright * (d < 1.5 ? 1 : 0.5);
                if (hg_rng_uniform(&rng) < 0.04)
                    v += 0.6 * hg_rng_uniform(&rng);
                xd[i * 28 * 28 + r * 28 + q] = (float)(v > 1 ? 1 : v);
            }
    }
}

/* Case-insensitive search for "fashion" in the folder's path. */
static bool looks_fashion(const char *dir)
{
    for (const char *s = dir; *s; s++) {
        const char *a = s, *b = "fashion";
        while (*a && *b && tolower((unsigned char)*a) == *b)
            a++, b++;
        if (!*b)
            return true;
    }
    return false;
}

const char *dataset_class_name(const dataset *d, int label, char *buf, size_t size)
{
    static const char *const fashion[10] = {"t-shirt/top", "trouser", "pullover", "dress", "coat",
                                            "sandal",      "shirt",   "sneaker",  "bag",   "ankle boot"};
    if (d->fashion && label >= 0 && label < 10)
        snprintf(buf, size, "%s", fashion[label]);
    else
        snprintf(buf, size, d->synthetic ? "bar %d" : "%d", label);
    return buf;
}

static int make_synthetic(hg_ctx *ctx, int64_t train_limit, uint64_t seed, dataset *d)
{
    int64_t n = train_limit > 0 && train_limit < 3000 ? train_limit : 3000;
    synthetic(ctx, seed, n, &d->x_train, &d->y_train);
    synthetic(ctx, seed + 1, 1000, &d->x_test, &d->y_test);
    snprintf(d->source, sizeof d->source, "SYNTHETIC (built-in bars with noise, not real images)");
    d->synthetic = true;
    d->rows = d->cols = 28;
    d->classes = 10;
    if (hg_ctx_status(ctx) != HG_OK) {
        fprintf(stderr, "error: %s\n", hg_ctx_error(ctx));
        return -1;
    }
    return 0;
}

int dataset_load(hg_ctx *ctx, const char *dir_option, bool force_synthetic, int64_t train_limit, uint64_t seed,
                 dataset *d)
{
    memset(d, 0, sizeof *d);
    if (force_synthetic)
        return make_synthetic(ctx, train_limit, seed, d);
    const char *env = getenv("HGRAD_DATA");
    const char *candidates[3] = {dir_option, env && *env ? env : NULL, DEBIAN_FASHION};
    const char *labels[3] = {"--data", "$HGRAD_DATA", "Debian's dataset-fashion-mnist"};
    const char *dir = NULL;
    for (int i = 0; i < 3 && !dir; i++) {
        if (!candidates[i])
            continue;
        if (has_test_files(candidates[i]))
            dir = candidates[i];
        else if (i == 0) {
            fprintf(stderr,
                    "error: --data %s holds no t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]\n"
                    "       (MNIST-format IDX files, gzip or raw; train-* files are optional)\n",
                    candidates[i]);
            return -2;
        } else if (i == 1)
            printf("  note: $HGRAD_DATA=%s holds no MNIST-format files; trying the default\n", candidates[i]);
    }
    if (!dir) {
        printf("  No MNIST-format data found. Looked in:\n");
        for (int i = 0; i < 3; i++)
            if (candidates[i])
                printf("    %-32s %s\n", labels[i], candidates[i]);
        printf("  Get Fashion-MNIST with:  sudo apt-get install dataset-fashion-mnist\n"
               "  or point --data DIR or $HGRAD_DATA at a folder with the MNIST IDX files\n"
               "  (t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz], optionally train-*).\n"
               "  Running on a small built-in SYNTHETIC data set instead.\n");
        return make_synthetic(ctx, train_limit, seed, d);
    }
    int rc = load_pair(ctx, dir, "t10k", &d->x_test, &d->y_test, &d->rows, &d->cols);
    if (rc != 0)
        return -1;
    rc = load_pair(ctx, dir, "train", &d->x_train, &d->y_train, &d->rows, &d->cols);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        /* Only the 10,000 test images: 8,000 for training, 2,000 held out. */
        int64_t n = hg_tensor_dim(d->x_test, 0), ntr = n * 4 / 5;
        hg_tensor *x = d->x_test, *y = d->y_test;
        d->x_train = rows_f32(ctx, x, 0, ntr);
        d->y_train = rows_i32(ctx, y, 0, ntr);
        d->x_test = rows_f32(ctx, x, ntr, n - ntr);
        d->y_test = rows_i32(ctx, y, ntr, n - ntr);
        d->split_from_test = true;
    }
    if (train_limit > 0 && train_limit < hg_tensor_dim(d->x_train, 0)) {
        d->x_train = rows_f32(ctx, d->x_train, 0, train_limit);
        d->y_train = rows_i32(ctx, d->y_train, 0, train_limit);
    }
    int64_t ntr = hg_tensor_dim(d->x_train, 0), nte = hg_tensor_dim(d->x_test, 0);
    if (ntr < 1 || nte < 1) {
        fprintf(stderr, "error: %s gives %lld training and %lld held-out images; at least one of each is needed%s\n",
                dir, (long long)ntr, (long long)nte,
                d->split_from_test ? " (only t10k files: 80% of them train, 20% are held out)" : "");
        return -2;
    }
    const int32_t *ys[2] = {hg_tensor_ci32(d->y_train), hg_tensor_ci32(d->y_test)};
    int64_t counts[2] = {ntr, nte};
    for (int s = 0; s < 2; s++)
        for (int64_t i = 0; i < counts[s]; i++)
            d->classes = ys[s][i] + 1 > d->classes ? ys[s][i] + 1 : d->classes;
    if (d->classes < 10)
        d->classes = 10;
    d->fashion = looks_fashion(dir);
    snprintf(d->source, sizeof d->source, "%s%s (%s)", dir, d->fashion ? ", Fashion-MNIST" : "",
             d->split_from_test ? "only the t10k files, split 80% for training, 20% held out" : "train + t10k files");
    return hg_ctx_status(ctx) == HG_OK ? 0 : -1;
}
