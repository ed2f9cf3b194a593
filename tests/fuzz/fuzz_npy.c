/* libFuzzer target: hg_npy_load_buffer on arbitrary bytes.
 *
 * Checked: no crash, no sanitizer report, no leak; a failure leaves a non-OK
 * status and a non-empty message on the ctx; a success is a live tensor whose
 * element count matches its shape and the bytes the header promised, and all
 * of whose data can be read. */
#include "hgrad.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(hg_ctx *ctx, const char *what)
{
    fprintf(stderr, "fuzz_npy: %s (status %s, message \"%s\")\n", what, hg_status_name(hg_ctx_status(ctx)),
            hg_ctx_error(ctx));
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hg_ctx_options opts = {.chunk_bytes = 4096, .max_bytes = (size_t)256 << 20};
    hg_ctx *ctx = hg_ctx_new(&opts);
    if (!ctx)
        return 0;
    hg_tensor *t = hg_npy_load_buffer(ctx, data, size);
    if (!t) {
        if (hg_ctx_status(ctx) == HG_OK || hg_ctx_error(ctx)[0] == '\0')
            fail(ctx, "NULL result without an error");
    } else {
        if (hg_tensor_check(t) != HG_OK || hg_ctx_status(ctx) != HG_OK)
            fail(ctx, "result not live or error left on success");
        int rank = hg_tensor_rank(t);
        if (rank < 0 || rank > HG_MAX_RANK)
            fail(ctx, "bad rank");
        int64_t n = 1;
        for (int i = 0; i < rank; i++)
            n *= hg_tensor_shape(t)[i];
        if (n != hg_tensor_numel(t) || (size_t)n > size)
            fail(ctx, "element count does not match the shape or the input size");
        size_t bytes = (size_t)n * hg_dtype_size(hg_tensor_dtype(t));
        const unsigned char *d = hg_tensor_cdata(t);
        unsigned acc = 0;
        for (size_t i = 0; i < bytes; i++)
            acc += d[i];
        volatile unsigned sink = acc;
        (void)sink;
    }
    /* The buffer API must refuse NULL cleanly too. */
    hg_ctx_clear_error(ctx);
    if (hg_npy_load_buffer(ctx, NULL, size) != NULL || hg_ctx_status(ctx) == HG_OK)
        fail(ctx, "NULL buffer accepted");
    hg_ctx_free(ctx);
    return 0;
}
