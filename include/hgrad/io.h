/* Data I/O: NumPy .npy files and IDX (MNIST-format) files.
 *
 * Readers never trust header sizes: every count is checked against the
 * bytes actually present and against overflow before anything is read, and
 * a malformed, truncated or oversized file gives HG_ERR_FORMAT (HG_ERR_IO if
 * it cannot be opened or read) with a message, never an out-of-bounds read.
 * Results are new tensors in ctx; on error NULL and the first error on ctx. */
#ifndef HGRAD_IO_H
#define HGRAD_IO_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* On-disk .npy element types. */
typedef enum hg_npy_type { HG_NPY_F32 = 0, HG_NPY_F64, HG_NPY_I32, HG_NPY_I64, HG_NPY_U8 } hg_npy_type;

/* Read a .npy file (format 1.0, 2.0 or 3.0 header; little-endian C order;
 * <f4 <f8 <i4 <i8 |u1). f4 -> f32, f8 -> f64, i4 -> i32, i8 -> i32 (each
 * value range-checked: HG_ERR_RANGE), u1 -> i32. Fortran order and other
 * dtypes: HG_ERR_FORMAT. */
HG_API hg_tensor *hg_npy_load(hg_ctx *ctx, const char *path);
/* Same from memory (len bytes; the header length and the data size must
 * account for exactly len bytes). The file version reads at most 16 GiB. */
HG_API hg_tensor *hg_npy_load_buffer(hg_ctx *ctx, const void *buf, size_t len);
/* Write t in its own dtype (f32 -> <f4, f64 -> <f8, i32 -> <i4) as a
 * format 1.0 file, C order, data 64-byte aligned; a failed write removes the
 * partial file. Errors: HG_ERR_NULL, HG_ERR_STALE, HG_ERR_IO (on t's ctx). */
HG_API hg_status hg_npy_save(const char *path, const hg_tensor *t);
/* Write t as `type`: f32/f64 to either float type; i32 to i32, i64 or u8 (u8
 * range-checked). Errors: HG_ERR_DTYPE for other pairs, HG_ERR_IO. */
HG_API hg_status hg_npy_save_as(const char *path, const hg_tensor *t, hg_npy_type type);

/* Read an IDX file (magic 00 00 08 rank: unsigned-byte data, 1 to 4
 * big-endian dimensions), gzip-compressed or raw (detected from the first
 * bytes; one gzip stream, trailing bytes after it are refused). dtype HG_I32
 * gives the raw byte values (labels; scale ignored); HG_F32/HG_F64 give
 * value * scale (e.g. 1.0/255 for images). Images [n, rows, cols] are
 * returned as read; reshape to [n, 784] with hg_reshape. Files (and
 * decompressed data) larger than max_bytes (0: 1 GiB) are rejected with
 * HG_ERR_FORMAT; the data must be exactly the product of the dimensions.
 * Errors: HG_ERR_NULL, HG_ERR_DTYPE (other dtypes), HG_ERR_IO, HG_ERR_FORMAT,
 * HG_ERR_OOM. */
HG_API hg_tensor *hg_idx_load(hg_ctx *ctx, const char *path, hg_dtype dtype, double scale, size_t max_bytes);
HG_API hg_tensor *hg_idx_load_buffer(hg_ctx *ctx, const void *buf, size_t len, hg_dtype dtype, double scale,
                                     size_t max_bytes);

#ifdef __cplusplus
}
#endif
#endif
