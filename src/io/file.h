/* File access for the data readers and writers. Internal.
 *
 * Reading: a path is opened O_RDONLY|O_NONBLOCK|O_CLOEXEC and checked with
 * fstat before a byte is read, so a FIFO, a device or a directory is refused
 * (HG_ERR_IO) instead of blocking or reading without end. The readers then
 * stream from the descriptor (hg_src) straight into the result tensor: no
 * whole-file buffer. Writing goes through hg_atomic_* (include/hgrad/io.h):
 * a temporary file beside the target, renamed over it on success. */
#ifndef HGRAD_IO_FILE_H
#define HGRAD_IO_FILE_H

#include "../internal.h"

/* A byte source: a memory buffer or a regular file of known size. */
typedef struct hg_src {
    hg_ctx *ctx;
    const char *who;          /* call named in errors, e.g. "hg_npy_load" */
    const unsigned char *mem; /* memory source, or NULL */
    int fd;                   /* file source (mem == NULL), else -1 */
    uint64_t size;            /* total bytes (file size from fstat) */
    uint64_t pos;             /* bytes consumed */
} hg_src;

/* Memory source over buf[0..len). */
void hg_src_memory(hg_src *s, hg_ctx *ctx, const char *who, const void *buf, size_t len);
/* Opens path for reading as described above. Errors: HG_ERR_NULL (path),
 * HG_ERR_IO (cannot open, not a regular file), HG_ERR_FORMAT (larger than
 * max_bytes). On error nothing is left open. Close with hg_src_close. */
hg_status hg_src_open(hg_src *s, hg_ctx *ctx, const char *who, const char *path, uint64_t max_bytes);
void hg_src_close(hg_src *s);
/* Bytes not yet consumed. */
static inline uint64_t hg_src_left(const hg_src *s)
{
    return s->size - s->pos;
}
/* Exactly n bytes into buf. A memory source shorter than that is
 * HG_ERR_FORMAT (truncated); a file that ends early (changed while being
 * read) or a read error is HG_ERR_IO. */
hg_status hg_src_read(hg_src *s, void *buf, size_t n);
/* Up to n bytes (fewer only at the end); *got receives the count. */
hg_status hg_src_read_some(hg_src *s, void *buf, size_t n, size_t *got);

/* hg_atomic_open with errors naming `who`; *status receives the code. */
hg_atomic_file *hg_atomic_open_as(hg_ctx *ctx, const char *who, const char *path, hg_status *status);

/* FOR THE FUZZ TARGETS ONLY (tests/fuzz, which compile the library's
 * sources into each target; not exported, not in any public header):
 * false skips the fsync of a written file and of its directory, which
 * otherwise dominates the time of a fuzzed save. The rename still happens,
 * so nothing changes but durability across a power failure. Process-wide;
 * default true. */
void hg_io_sync_writes_for_fuzzing(bool on);

/* If this call made the ctx's first error (status was `before`), append
 * " (in PATH)" to its message so the caller sees which file failed. */
void hg_error_name_file(hg_ctx *ctx, hg_status before, const char *path);

/* Buffer from / back to the ctx's allocator hook (not the arena), for
 * temporary data such as a large header. Charged to the ctx's max_bytes
 * together with the arena's chunks while it is held: NULL if it would pass
 * the limit. */
void *hg_temp_alloc(hg_ctx *ctx, size_t size);
void hg_temp_free(hg_ctx *ctx, void *p, size_t size);

#endif
