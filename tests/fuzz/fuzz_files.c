/* libFuzzer target: the file entry points and the save path.
 *
 * Each input is written to a memfd and read back by path (/proc/self/fd/N):
 * hg_npy_load and hg_idx_load (i32 and f32, a 1 MiB limit) must agree with
 * their _buffer forms on the status and, on success, on every byte of the
 * result. A loaded .npy is then saved with hg_npy_save over the previous
 * output (temporary file + rename) and must read back bit-identical; saving
 * onto a directory and onto a FIFO must fail with HG_ERR_IO at once (a hang
 * is a libFuzzer timeout), leaving them in place. Saves skip fsync
 * (hg_io_sync_writes_for_fuzzing): the library's default stays durable. */
#define _GNU_SOURCE /* memfd_create */
#include "hgrad.h"
#include "io/file.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/hgrad_fuzz_files_XXXXXX";
static char out_path[64], fifo_path[64];

static void fail(hg_ctx *ctx, const char *what)
{
    fprintf(stderr, "fuzz_files: %s (status %s, message \"%s\")\n", what, hg_status_name(hg_ctx_status(ctx)),
            hg_ctx_error(ctx));
    abort();
}

static void cleanup(void)
{
    unlink(out_path);
    unlink(fifo_path);
    rmdir(dir);
}

static void same_tensor(hg_ctx *ctx, hg_tensor *a, hg_tensor *b, const char *what)
{
    if (hg_tensor_dtype(a) != hg_tensor_dtype(b) || hg_tensor_rank(a) != hg_tensor_rank(b) ||
        memcmp(hg_tensor_shape(a), hg_tensor_shape(b), sizeof(int64_t) * (size_t)hg_tensor_rank(a)) != 0 ||
        memcmp(hg_tensor_data(a), hg_tensor_data(b), (size_t)hg_tensor_numel(a) * hg_dtype_size(hg_tensor_dtype(a))) !=
            0)
        fail(ctx, what);
}

/* The path load and the buffer load agree. */
static hg_tensor *agree(hg_ctx *ctx, hg_ctx *ref, hg_tensor *by_path, hg_tensor *by_buffer, const char *what)
{
    if ((by_path == NULL) != (by_buffer == NULL) || hg_ctx_status(ctx) != hg_ctx_status(ref)) {
        fprintf(stderr, "path: %s; buffer: %s\n", hg_ctx_error(ctx), hg_ctx_error(ref));
        fail(ctx, what);
    }
    if (by_path)
        same_tensor(ctx, by_path, by_buffer, what);
    return by_path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!out_path[0]) {
        if (!mkdtemp(dir))
            abort();
        snprintf(out_path, sizeof out_path, "%s/out.npy", dir);
        snprintf(fifo_path, sizeof fifo_path, "%s/fifo.npy", dir);
        if (mkfifo(fifo_path, 0600) != 0)
            abort();
        atexit(cleanup);
        hg_io_sync_writes_for_fuzzing(false);
    }
    int fd = memfd_create("fuzz_files", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) {
            close(fd);
            return 0;
        }
        done += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    hg_ctx_options opts = {.chunk_bytes = 4096, .max_bytes = (size_t)256 << 20};
    hg_ctx *ctx = hg_ctx_new(&opts), *ref = hg_ctx_new(&opts);
    if (!ctx || !ref)
        abort();
    hg_tensor *t = agree(ctx, ref, hg_npy_load(ctx, path), hg_npy_load_buffer(ref, data, size), "npy: path != buffer");
    if (t) {
        if (hg_npy_save(out_path, t) != HG_OK)
            fail(ctx, "hg_npy_save of a loaded tensor failed");
        hg_tensor *back = hg_npy_load(ctx, out_path);
        if (!back)
            fail(ctx, "the saved file does not load");
        same_tensor(ctx, t, back, "save/load round trip differs");
        if (hg_npy_save(dir, t) != HG_ERR_IO || hg_npy_save(fifo_path, t) != HG_ERR_IO)
            fail(ctx, "saving onto a directory or a FIFO was not refused");
        struct stat st;
        if (stat(fifo_path, &st) != 0 || !S_ISFIFO(st.st_mode))
            fail(ctx, "the FIFO was removed");
    }
    hg_ctx_clear_error(ctx);
    hg_ctx_clear_error(ref);
    for (int k = 0; k < 2; k++) {
        hg_dtype dt = k ? HG_F32 : HG_I32;
        /* 1 MiB: the limit logic is the same at any size, and a unit then
         * inflates at most 4 x 1 MiB (with 16 MiB, a 2 KB gzip input took
         * 0.9 s under the sanitizers, and timed out on a loaded machine). */
        agree(ctx, ref, hg_idx_load(ctx, path, dt, 1.0 / 255, (size_t)1 << 20),
              hg_idx_load_buffer(ref, data, size, dt, 1.0 / 255, (size_t)1 << 20), "idx: path != buffer");
        hg_ctx_clear_error(ctx);
        hg_ctx_clear_error(ref);
    }
    close(fd);
    hg_ctx_free(ctx);
    hg_ctx_free(ref);
    return 0;
}
