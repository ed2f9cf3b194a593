/* libFuzzer target: hg_idx_load_buffer on arbitrary bytes, raw or gzip
 * (detected from the first two bytes), for each dtype, with a small
 * decompression limit (a gzip bomb must stop at it).
 *
 * Checked: no crash, no sanitizer report, no leak (zlib's buffers and the
 * reader's temporary buffer come back); a failure leaves a non-OK status and
 * a non-empty message; a success has the shape the header gives, rank 1 to
 * 4, values that are bytes (i32) or bytes times the scale (floats). */
#include "hgrad.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT ((size_t)1 << 20)

static void fail(hg_ctx *ctx, const char *what)
{
    fprintf(stderr, "fuzz_idx: %s (status %s, message \"%s\")\n", what, hg_status_name(hg_ctx_status(ctx)),
            hg_ctx_error(ctx));
    abort();
}

typedef struct counter {
    long live;
} counter;

static void *c_alloc(size_t size, void *user)
{
    void *p = malloc(size);
    if (p)
        ((counter *)user)->live++;
    return p;
}

static void c_free(void *p, size_t size, void *user)
{
    (void)size;
    if (p)
        ((counter *)user)->live--;
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const hg_dtype dtypes[3] = {HG_I32, HG_F32, HG_F64};
    counter c = {0};
    hg_allocator alloc = {c_alloc, c_free, &c};
    hg_ctx_options opts = {.allocator = &alloc, .chunk_bytes = 4096, .max_bytes = (size_t)64 << 20};
    hg_ctx *ctx = hg_ctx_new(&opts);
    if (!ctx)
        return 0;
    for (int k = 0; k < 3; k++) {
        hg_ctx_clear_error(ctx);
        double scale = k == 1 ? 1.0 / 255 : 2.0;
        hg_tensor *t = hg_idx_load_buffer(ctx, data, size, dtypes[k], scale, LIMIT);
        if (!t) {
            if (hg_ctx_status(ctx) == HG_OK || hg_ctx_error(ctx)[0] == '\0')
                fail(ctx, "NULL result without an error");
            continue;
        }
        if (hg_tensor_check(t) != HG_OK || hg_tensor_dtype(t) != dtypes[k])
            fail(ctx, "result not live or of the wrong dtype");
        int rank = hg_tensor_rank(t);
        if (rank < 1 || rank > 4)
            fail(ctx, "rank outside 1..4");
        int64_t n = 1;
        for (int i = 0; i < rank; i++)
            n *= hg_tensor_shape(t)[i];
        if (n != hg_tensor_numel(t) || (size_t)n > LIMIT)
            fail(ctx, "element count does not match or exceeds the limit");
        for (int64_t i = 0; i < n; i++) {
            double v = hg_get(t, i);
            double byte = dtypes[k] == HG_I32 ? v : v / scale;
            if (!(byte >= 0 && byte <= 255.5))
                fail(ctx, "value is not a byte");
        }
    }
    hg_ctx_clear_error(ctx);
    if (hg_idx_load_buffer(ctx, data, size, (hg_dtype)9, 1.0, LIMIT) != NULL || hg_ctx_status(ctx) != HG_ERR_DTYPE)
        fail(ctx, "invalid dtype accepted");
    hg_ctx_free(ctx);
    if (c.live != 0) {
        fprintf(stderr, "fuzz_idx: %ld allocations not returned\n", c.live);
        abort();
    }
    return 0;
}
