/* Whole-file reading into memory from the ctx's allocator. Internal. */
#ifndef HGRAD_IO_FILE_H
#define HGRAD_IO_FILE_H

#include "../internal.h"

/* Reads path into a buffer from ctx's allocator (free with hg_file_free).
 * Files larger than max_bytes are refused (HG_ERR_FORMAT). Errors name who. */
hg_status hg_file_read(hg_ctx *ctx, const char *who, const char *path, size_t max_bytes, unsigned char **data,
                       size_t *len);
/* If this call made the ctx's first error (status was `before`), append
 * " (in PATH)" to its message so the caller sees which file failed. */
void hg_error_name_file(hg_ctx *ctx, hg_status before, const char *path);
void hg_file_free(hg_ctx *ctx, unsigned char *data, size_t len);
/* Buffer from / back to the ctx's allocator hook (not the arena): for
 * temporary data such as a file or a decompressed stream. */
void *hg_temp_alloc(hg_ctx *ctx, size_t size);
void hg_temp_free(hg_ctx *ctx, void *p, size_t size);

#endif
