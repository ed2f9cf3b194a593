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

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* On-disk .npy element types. */
typedef enum hg_npy_type { HG_NPY_F32 = 0, HG_NPY_F64, HG_NPY_I32, HG_NPY_I64, HG_NPY_U8 } hg_npy_type;

/* Read a .npy file (format 1.0, 2.0 or 3.0 header; little-endian C order;
 * <f4 <f8 <i4 <i8 |u1). f4 -> f32, f8 -> f64, i4 -> i32, i8 -> i32 (each
 * value range-checked: HG_ERR_RANGE), u1 -> i32. Fortran order, other
 * dtypes, a NUL byte inside the header dict: HG_ERR_FORMAT. The path must
 * be a regular file (a FIFO, device or directory is HG_ERR_IO, refused
 * before any read, never blocking). The data is read straight into the
 * result: the only memory taken is the tensor in ctx's arena (so ctx's
 * max_bytes bounds it: HG_ERR_OOM) plus a header larger than 4 KiB. */
HG_API hg_tensor *hg_npy_load(hg_ctx *ctx, const char *path);
/* Same from memory (len bytes; the header length and the data size must
 * account for exactly len bytes). The file version reads at most 16 GiB. */
HG_API hg_tensor *hg_npy_load_buffer(hg_ctx *ctx, const void *buf, size_t len);
/* Write t in its own dtype (f32 -> <f4, f64 -> <f8, i32 -> <i4) as a
 * format 1.0 file, C order, data 64-byte aligned, through hg_atomic_open
 * below: the file at path is replaced only by a complete new one, and a
 * failed call leaves it (or its absence) as it was. Errors: HG_ERR_NULL,
 * HG_ERR_STALE, HG_ERR_IO (on t's ctx; also for a path that exists and is
 * not a regular file, e.g. a FIFO or a device, refused without blocking). */
HG_API hg_status hg_npy_save(const char *path, const hg_tensor *t);
/* Write t as `type`: f32/f64 to either float type; i32 to i32, i64 or u8 (u8
 * range-checked). Errors: HG_ERR_DTYPE for other pairs, HG_ERR_IO. */
HG_API hg_status hg_npy_save_as(const char *path, const hg_tensor *t, hg_npy_type type);

/* Read an IDX file (magic 00 00 08 rank: unsigned-byte data, 1 to 4
 * big-endian dimensions), gzip-compressed or raw (detected from the first
 * bytes; one gzip stream, trailing bytes after it are refused). dtype HG_I32
 * gives the raw byte values (labels; scale ignored); HG_F32/HG_F64 give
 * value * scale (e.g. 1.0/255 for images). Images [n, rows, cols] are
 * returned as read; reshape to [n, 784] with hg_reshape. The data must be
 * exactly the product of the dimensions.
 * max_bytes (0: 1 GiB; SIZE_MAX: no limit) bounds the file, the
 * decompressed data AND the result tensor's bytes (an f32 result is 4 bytes
 * per element): anything above it is HG_ERR_FORMAT. The header is read
 * first (for gzip, from the first inflated bytes) and the sizes are checked
 * before the tensor is allocated and before the rest is inflated, so a
 * gzip bomb costs neither memory nor time: inflation stops at the size the
 * header announced. The path must be a regular file (HG_ERR_IO otherwise,
 * refused before any read). Memory: the tensor in ctx's arena (bounded by
 * ctx's max_bytes) and zlib's state (about 50 KiB); no file buffer.
 * Errors: HG_ERR_NULL, HG_ERR_DTYPE (other dtypes), HG_ERR_IO, HG_ERR_FORMAT,
 * HG_ERR_OOM. */
HG_API hg_tensor *hg_idx_load(hg_ctx *ctx, const char *path, hg_dtype dtype, double scale, size_t max_bytes);
HG_API hg_tensor *hg_idx_load_buffer(hg_ctx *ctx, const void *buf, size_t len, hg_dtype dtype, double scale,
                                     size_t max_bytes);

/* ---- writing files so that nothing is lost -------------------------------
 *
 * Every file the library writes (hg_npy_save) goes through these calls, and
 * programs can use them for their own outputs (the MNIST example writes its
 * dx.npy and its PNG with them). hg_atomic_open creates a new temporary file
 * ".NAME.XXXXXX" in the target's directory (O_CREAT|O_EXCL|O_CLOEXEC, mode
 * 0666 & ~umask, or the permission bits of the regular file it will
 * replace); the caller writes to hg_atomic_stream; hg_atomic_commit flushes
 * it to disk (fsync) and renames it over the target, so a reader sees either
 * the old complete file or the new complete one, never a mixture.
 * hg_atomic_abort, or a failed commit, removes the temporary file and
 * nothing else. The target itself is never opened or removed: an existing
 * target that is not a regular file (FIFO, device, directory, socket) is
 * refused with HG_ERR_IO before anything is created, without blocking; a
 * symbolic link to a regular file is followed, and the file it points to is
 * replaced (the link stays). A crash or kill between open and commit leaves
 * the previous file intact and at worst a stray ".NAME.XXXXXX" beside it.
 * Not for a target on which several processes write at once (the last
 * commit wins). */
typedef struct hg_atomic_file hg_atomic_file;

/* Starts writing path. ctx receives errors and supplies the allocator for
 * the handle (not charged to its max_bytes). Errors (NULL return, first
 * error on ctx): HG_ERR_NULL (ctx NULL: no error recorded; path NULL),
 * HG_ERR_IO (directory missing or not writable, target not a regular file,
 * dangling symbolic link), HG_ERR_OOM. */
HG_API hg_atomic_file *hg_atomic_open(hg_ctx *ctx, const char *path);
/* The stream to write to (owned by f: do not fclose it); NULL for NULL f. */
HG_API FILE *hg_atomic_stream(hg_atomic_file *f);
/* Finishes: flush, fsync, close, rename over the target, fsync the
 * directory. Consumes f whatever the outcome. A write error seen on the
 * stream (ferror) or a failed flush, fsync, close or rename is HG_ERR_IO on
 * the ctx: the temporary file is removed and the target is untouched.
 * NULL f: HG_ERR_NULL. */
HG_API hg_status hg_atomic_commit(hg_atomic_file *f);
/* Abandons: closes and removes the temporary file; the target is untouched.
 * Consumes f. NULL is ignored. */
HG_API void hg_atomic_abort(hg_atomic_file *f);

#ifdef __cplusplus
}
#endif
#endif
