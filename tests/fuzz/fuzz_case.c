/* libFuzzer target: the MNIST example's --case DIR loader and run
 * (examples/mnist/crosscheck.c) on a directory of fuzzed .npy files.
 *
 * Input: a first byte choosing the optimizer (sgd, momentum, adam) and the
 * dtype, then records [name index: 1 byte][length: 2 bytes LE][bytes]
 * written as DIR/<name>.npy (names below: weights, data, labels, warm
 * state). crosscheck_run must return 0 or 1 (never crash, leak, hang or
 * trip a sanitizer); on 0 it has written DIR/dx.npy, which must load with
 * x_train's shape. dx.npy is written without fsync
 * (hg_io_sync_writes_for_fuzzing): the library's default stays durable. */
#include "crosscheck.h"
#include "io/file.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const names[] = {"W1",    "b1", "W2",  "b2",  "W3",  "b3",  "x_train", "y_train", "x_val",
                                    "y_val", "t",  "uW1", "ub1", "mW1", "mb1", "vW1",     "vb1",     "dx"};
#define N_NAMES (sizeof names / sizeof names[0])

static char dir[] = "/tmp/hgrad_fuzz_case_XXXXXX";

static void clear_dir(void)
{
    char path[128];
    for (size_t i = 0; i < N_NAMES; i++) {
        snprintf(path, sizeof path, "%s/%s.npy", dir, names[i]);
        unlink(path);
    }
}

static void cleanup(void)
{
    clear_dir();
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (!mkdtemp(dir))
            abort();
        atexit(cleanup);
        hg_io_sync_writes_for_fuzzing(false);
        ready = 1;
    }
    if (size < 1)
        return 0;
    clear_dir();
    crosscheck_options o = {dir, 1, (hg_opt_kind)(data[0] % 3), 0, (data[0] / 3) % 2 ? HG_F32 : HG_F64, 1};
    size_t at = 1;
    char path[128];
    while (at + 3 <= size) {
        size_t which = data[at] % (N_NAMES - 1), len = (size_t)data[at + 1] | (size_t)data[at + 2] << 8;
        at += 3;
        if (len > size - at)
            len = size - at;
        snprintf(path, sizeof path, "%s/%s.npy", dir, names[which]);
        FILE *f = fopen(path, "wb");
        if (!f)
            abort();
        fwrite(data + at, 1, len, f);
        fclose(f);
        at += len;
    }
    int rc = crosscheck_run(&o);
    if (rc != 0 && rc != 1) {
        fprintf(stderr, "fuzz_case: crosscheck_run returned %d\n", rc);
        abort();
    }
    if (rc == 0) {
        hg_ctx *ctx = hg_ctx_new(NULL);
        snprintf(path, sizeof path, "%s/dx.npy", dir);
        hg_tensor *dx = hg_npy_load(ctx, path);
        snprintf(path, sizeof path, "%s/x_train.npy", dir);
        hg_tensor *x = hg_npy_load(ctx, path);
        if (!dx || !x || hg_tensor_rank(dx) != hg_tensor_rank(x) ||
            memcmp(hg_tensor_shape(dx), hg_tensor_shape(x), sizeof(int64_t) * (size_t)hg_tensor_rank(x)) != 0) {
            fprintf(stderr, "fuzz_case: success without a dx.npy of x_train's shape (%s)\n", hg_ctx_error(ctx));
            abort();
        }
        hg_ctx_free(ctx);
    }
    return 0;
}
