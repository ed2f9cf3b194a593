/* conv2d timings: the library's im2col + gemm ops against a direct
 * 7-loop convolution (written here, the obvious alternative), forward and
 * the two backward ops, f32 and f64. Prints the median of REPEATS runs and
 * the GFLOP/s (2 N O C KH KW OH OW per op). Not a test: it times things.
 *
 *   bench/conv_bench [REPEATS]    (default 9; OPENBLAS_NUM_THREADS=1 for
 *                                  single-core figures) */
#include <hgrad.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct shape {
    const char *name;
    int64_t n, c, h, w, o, k, pad;
} shape;

/* Direct convolution, stride 1: y[n,o,i,j] = sum x[n,c,i+a-p,j+b-p] w[o,c,a,b]. */
static void direct(const double *x, const double *w, double *y, const shape *s, int64_t oh, int64_t ow)
{
    for (int64_t n = 0; n < s->n; n++)
        for (int64_t o = 0; o < s->o; o++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double acc = 0;
                    for (int64_t c = 0; c < s->c; c++)
                        for (int64_t a = 0; a < s->k; a++) {
                            int64_t ih = i + a - s->pad;
                            if (ih < 0 || ih >= s->h)
                                continue;
                            for (int64_t b = 0; b < s->k; b++) {
                                int64_t iw = j + b - s->pad;
                                if (iw >= 0 && iw < s->w)
                                    acc += x[((n * s->c + c) * s->h + ih) * s->w + iw] *
                                           w[((o * s->c + c) * s->k + a) * s->k + b];
                            }
                        }
                    y[((n * s->o + o) * oh + i) * ow + j] = acc;
                }
}

int main(int argc, char **argv)
{
    int repeats = argc > 1 ? atoi(argv[1]) : 9;
    if (repeats < 1 || repeats > 1000)
        repeats = 9;
    static const shape shapes[] = {
        {"cnn-test 32x1x28x28 -> 8, 3x3", 32, 1, 28, 28, 8, 3, 1},
        {"32x16x32x32 -> 32, 3x3", 32, 16, 32, 32, 32, 3, 1},
        {"8x64x16x16 -> 64, 3x3", 8, 64, 16, 16, 64, 3, 1},
    };
    printf("libhgrad %s conv_bench, %d repeats, medians\n", hg_version(), repeats);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape *s = &shapes[si];
        hg_conv2d_params p = {{1, 1}, {(int)s->pad, (int)s->pad}, {1, 1}};
        int64_t oh = s->h + 2 * s->pad - s->k + 1, ow = s->w + 2 * s->pad - s->k + 1;
        double flops = 2.0 * (double)(s->n * s->o * s->c * s->k * s->k * oh * ow);
        for (int d = 0; d < 2; d++) {
            hg_dtype dt = d ? HG_F32 : HG_F64;
            hg_ctx *ctx = hg_ctx_new(NULL);
            hg_rng rng;
            hg_rng_seed(&rng, 1);
            hg_tensor *x = hg_rand_uniform(ctx, &rng, dt, 4, (const int64_t[]){s->n, s->c, s->h, s->w}, -1, 1);
            hg_tensor *w = hg_rand_uniform(ctx, &rng, dt, 4, (const int64_t[]){s->o, s->c, s->k, s->k}, -1, 1);
            hg_tensor *g = hg_rand_uniform(ctx, &rng, dt, 4, (const int64_t[]){s->n, s->o, oh, ow}, -1, 1);
            double t[4][1000];
            hg_mark m = hg_ctx_mark(ctx);
            for (int r = 0; r < repeats; r++) {
                double t0 = now();
                hg_conv2d(ctx, x, w, NULL, &p);
                double t1 = now();
                hg_conv2d_transpose(ctx, g, w, s->h, s->w, &p);
                double t2 = now();
                hg_conv2d_weight_grad(ctx, x, g, s->k, s->k, &p);
                double t3 = now();
                t[0][r] = t1 - t0;
                t[1][r] = t2 - t1;
                t[2][r] = t3 - t2;
                if (dt == HG_F64) {
                    double *y = malloc(sizeof(double) * (size_t)(s->n * s->o * oh * ow));
                    double t4 = now();
                    direct(hg_tensor_cf64(x), hg_tensor_cf64(w), y, s, oh, ow);
                    t[3][r] = now() - t4;
                    free(y);
                }
                hg_ctx_rewind(ctx, m);
            }
            if (hg_ctx_status(ctx) != HG_OK) {
                fprintf(stderr, "conv_bench: %s\n", hg_ctx_error(ctx));
                return 1;
            }
            double med[4];
            for (int k = 0; k < (dt == HG_F64 ? 4 : 3); k++) {
                qsort(t[k], (size_t)repeats, sizeof(double), cmp);
                med[k] = t[k][repeats / 2];
            }
            printf("%-32s %s  conv2d %8.3f ms (%5.1f GFLOP/s)  transpose %8.3f ms  weight_grad %8.3f ms", s->name,
                   hg_dtype_name(dt), 1e3 * med[0], flops / med[0] / 1e9, 1e3 * med[1], 1e3 * med[2]);
            if (dt == HG_F64)
                printf("  direct loops %8.3f ms (%.1fx slower)", 1e3 * med[3], med[3] / med[0]);
            printf("\n");
            hg_ctx_free(ctx);
        }
    }
    return 0;
}
