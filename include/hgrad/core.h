/* libhgrad core: status codes, dtypes, the ctx arena, tensors, random numbers.
 *
 * Ownership: every tensor lives in the arena of the hg_ctx that made it. There
 * is no per-tensor free; hg_ctx_rewind/hg_ctx_reset/hg_ctx_free release memory
 * in bulk. A ctx (and everything in it) must be used by one thread at a time.
 *
 * Errors: calls that build a tensor return NULL on failure and leave the first
 * error (code and a message naming the call and the shapes) sticky on the ctx;
 * read it with hg_ctx_status/hg_ctx_error. Other calls return an hg_status.
 * A NULL tensor argument makes a call return NULL without overwriting the
 * first error, so a chain of calls can be checked once at the end. */
#ifndef HGRAD_CORE_H
#define HGRAD_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(HG_BUILDING_LIBRARY) && defined(__GNUC__)
#define HG_API __attribute__((visibility("default")))
#else
#define HG_API
#endif

/* Largest tensor rank. */
#define HG_MAX_RANK 6
/* Deepest nesting of simultaneously active tapes. */
#define HG_MAX_TAPES 8

typedef enum hg_status {
    HG_OK = 0,
    HG_ERR_NULL,      /* a required pointer argument was NULL */
    HG_ERR_SHAPE,     /* shapes do not fit the operation */
    HG_ERR_DTYPE,     /* dtype not supported by the operation, or mixed */
    HG_ERR_OOM,       /* allocation failed (allocator hook or arena limit) */
    HG_ERR_TAPE,      /* tape misuse: order, reuse, still recording, depth */
    HG_ERR_STALE,     /* tensor from a rewound/reset region, or not a tensor */
    HG_ERR_RANGE,     /* index or argument out of range */
    HG_ERR_INVALID,   /* other invalid argument */
    HG_ERR_ONCE_DIFF, /* differentiating again through a once-differentiable op */
    HG_ERR_IO,        /* file could not be opened, read or written */
    HG_ERR_FORMAT,    /* file contents malformed, truncated or unsupported */
    HG_ERR_OVERFLOW,  /* element or byte count overflows */
    HG_ERR_MODIFIED,  /* a tensor a recorded op saved was written in place afterwards */
    HG_ERR_REMOTE,    /* another process failed, or MPI did (hgrad/mpi.h) */
    HG_ERR_THREAD     /* ctx used from a thread that does not own it (hg_ctx_set_owner) */
} hg_status;

/* Short fixed name of a status code ("HG_ERR_SHAPE"), never NULL. */
HG_API const char *hg_status_name(hg_status s);

typedef enum hg_dtype {
    HG_F32 = 0, /* float */
    HG_F64 = 1, /* double */
    HG_I32 = 2  /* int32_t: labels and indices; not differentiable */
} hg_dtype;

/* "f32", "f64", "i32"; "?" for an invalid value. */
HG_API const char *hg_dtype_name(hg_dtype d);
/* Bytes per element, 0 for an invalid value. */
HG_API size_t hg_dtype_size(hg_dtype d);

typedef struct hg_ctx hg_ctx;
typedef struct hg_tensor hg_tensor;

/* Allocator hook. alloc returns memory of at least `size` bytes (any
 * alignment; the arena aligns inside) or NULL; free releases it. */
typedef struct hg_allocator {
    void *(*alloc)(size_t size, void *user);
    void (*free)(void *ptr, size_t size, void *user);
    void *user;
} hg_allocator;

typedef struct hg_ctx_options {
    const hg_allocator *allocator; /* NULL: malloc/free */
    size_t chunk_bytes;            /* smallest chunk, 0: 1 MiB; a new chunk also holds at least half of the
                                      bytes already reserved (up to 64 MiB, less near max_bytes), and a
                                      larger request gets a chunk its size */
    size_t max_bytes;              /* 0: no limit on reserved bytes, else HG_ERR_OOM */
} hg_ctx_options;

/* New arena. opts may be NULL. Returns NULL only if the ctx struct itself
 * cannot be allocated. Free with hg_ctx_free. */
HG_API hg_ctx *hg_ctx_new(const hg_ctx_options *opts);
/* Frees every chunk and the ctx. NULL is ignored. Active tapes die with it. */
HG_API void hg_ctx_free(hg_ctx *ctx);

/* First error since the last hg_ctx_clear_error (HG_OK if none). NULL ctx:
 * HG_ERR_NULL. */
HG_API hg_status hg_ctx_status(const hg_ctx *ctx);
/* Message of the first error ("" if none); owned by the ctx, valid until the
 * next clear. */
HG_API const char *hg_ctx_error(const hg_ctx *ctx);
HG_API void hg_ctx_clear_error(hg_ctx *ctx);

/* A position in the arena. Rewinding to it releases (for reuse) everything
 * allocated after it; tensors made after the mark become invalid and any later
 * use of them is reported as HG_ERR_STALE (detected reliably until their memory
 * is reused for a new tensor header at the same address). */
typedef struct hg_mark {
    size_t chunk;
    size_t offset;
    uint64_t serial;
    void *last_object;
    uint64_t ctx_id; /* the ctx it belongs to (unique per hg_ctx_new in the process; 0: none) */
} hg_mark;

/* The current position, for hg_ctx_rewind. A NULL ctx gives an all-zero mark. */
HG_API hg_mark hg_ctx_mark(hg_ctx *ctx);
/* Errors (nothing is released then): HG_ERR_NULL; HG_ERR_INVALID for a mark
 * of another ctx (or a zeroed mark), a mark that is not behind the current
 * position, or one released by an earlier rewind to an older mark;
 * HG_ERR_TAPE if a tape made after the mark is still active, or if called
 * while a gradient sweep of this ctx is running (from a custom op's vjp);
 * HG_ERR_THREAD from a thread that does not own ctx. Chunks are kept for reuse, so a loop that
 * rewinds each step allocates nothing after its first step. */
HG_API hg_status hg_ctx_rewind(hg_ctx *ctx, hg_mark mark);
/* Rewind to the start. Same errors as hg_ctx_rewind. */
HG_API hg_status hg_ctx_reset(hg_ctx *ctx);

/* Threads. A ctx belongs to one thread at a time: the thread that created it,
 * until another thread takes it over with hg_ctx_set_owner (call it in the
 * new thread after the old one has finished with the ctx, with the usual
 * synchronisation between them, e.g. pthread_join or a mutex/queue hand-off).
 * Every call that allocates in the arena (every op, tensor constructor, tape
 * begin and watch, gradient, load) and hg_ctx_mark/rewind/reset and
 * hg_optimizer_step check the calling thread (a pthread_self comparison,
 * always on, release builds included): from another thread they fail with
 * HG_ERR_THREAD, recorded as the ctx's first error. This catches a ctx shared
 * by two threads even when their calls happen not to overlap in time.
 * Reading results (hg_ctx_status, hg_ctx_error, hg_tensor_data, hg_get, ...)
 * and hg_ctx_free are not checked: after joining a worker, its ctx can be
 * read and freed from any thread. Different ctxs in different threads need
 * no synchronisation. NULL ctx is ignored. */
HG_API void hg_ctx_set_owner(hg_ctx *ctx);

/* ---- BLAS threads: what to pin for bitwise reproducibility ------------- */

/* Products (hg_matmul and everything made of it: hg_linear, the MLP, conv)
 * call CBLAS. Everything else in the library is single-threaded and
 * deterministic, but a multithreaded BLAS (OpenBLAS) splits a product
 * differently for different thread counts, and the last bits of the result
 * then differ (measured: the MNIST example's dx under OPENBLAS_NUM_THREADS=1
 * and 2). For results that are the same bits on every run, pin the BLAS
 * thread count (1 is the safe choice; the library's products are mostly too
 * small to gain from more, see docs/performance.md) and use the same BLAS
 * build and CPU type. hg_blas_set_threads(n) calls OpenBLAS's
 * openblas_set_num_threads(n) when the process has it (looked up with
 * dlsym; process-wide: every thread and ctx) and returns HG_OK; with a BLAS
 * without thread control (the reference CBLAS is single-threaded) it does
 * nothing and returns HG_OK. n < 1: HG_ERR_RANGE (nothing recorded: there
 * is no ctx). Call it before starting threads that compute. */
HG_API hg_status hg_blas_set_threads(int n);
/* The BLAS thread count in effect: openblas_get_num_threads(), or 1 for a
 * BLAS without thread control. */
HG_API int hg_blas_threads(void);

typedef struct hg_ctx_stats {
    size_t bytes_in_use;   /* bytes handed out (with alignment padding) */
    size_t peak_bytes;     /* maximum of bytes_in_use since new or reset_peak */
    size_t bytes_reserved; /* bytes of all chunks obtained from the allocator */
    uint64_t chunk_allocs; /* number of calls to the allocator since new */
    uint64_t tensors;      /* live tensors */
} hg_ctx_stats;

/* Current statistics (all zero for a NULL ctx). hg_ctx_reset_peak restarts
 * peak_bytes from bytes_in_use; NULL is ignored. */
HG_API hg_ctx_stats hg_ctx_get_stats(const hg_ctx *ctx);
HG_API void hg_ctx_reset_peak(hg_ctx *ctx);

/* ---- tensors: contiguous, row-major, rank 0..HG_MAX_RANK ---------------- */

/* Uninitialised tensor. shape may be NULL for rank 0. Errors (NULL return):
 * HG_ERR_SHAPE for rank out of range or a negative extent, HG_ERR_DTYPE,
 * HG_ERR_OVERFLOW, HG_ERR_OOM. */
HG_API hg_tensor *hg_tensor_new(hg_ctx *ctx, hg_dtype dtype, int rank, const int64_t *shape);
/* Copy of `data` (numel elements of `dtype`). data may be NULL only if the
 * tensor is empty. */
HG_API hg_tensor *hg_tensor_from(hg_ctx *ctx, hg_dtype dtype, int rank, const int64_t *shape, const void *data);
HG_API hg_tensor *hg_zeros(hg_ctx *ctx, hg_dtype dtype, int rank, const int64_t *shape);
HG_API hg_tensor *hg_ones(hg_ctx *ctx, hg_dtype dtype, int rank, const int64_t *shape);
/* For i32, values (here and in hg_scalar, hg_arange) are truncated toward
 * zero and saturated to the int32 range; NaN gives 0. */
HG_API hg_tensor *hg_full(hg_ctx *ctx, hg_dtype dtype, int rank, const int64_t *shape, double value);
/* Rank-0 tensor holding value. */
HG_API hg_tensor *hg_scalar(hg_ctx *ctx, hg_dtype dtype, double value);
/* 1-D [n]: start, start+step, ... */
HG_API hg_tensor *hg_arange(hg_ctx *ctx, hg_dtype dtype, int64_t n, double start, double step);
/* Tensors of the same shape/dtype as `like` (which is not recorded). */
HG_API hg_tensor *hg_zeros_like(hg_ctx *ctx, const hg_tensor *like);
HG_API hg_tensor *hg_ones_like(hg_ctx *ctx, const hg_tensor *like);
/* Value copy of t in a new, untracked tensor (a constant for every tape). */
HG_API hg_tensor *hg_tensor_clone(hg_ctx *ctx, const hg_tensor *t);

/* Dtype and rank of t; HG_F64 and -1 for a NULL or stale t (hg_tensor_check
 * tells which). */
HG_API hg_dtype hg_tensor_dtype(const hg_tensor *t);
HG_API int hg_tensor_rank(const hg_tensor *t);
/* Extent of axis (negative counts from the end); -1 if out of range/NULL. */
HG_API int64_t hg_tensor_dim(const hg_tensor *t, int axis);
/* Pointer to the rank extents (owned by the tensor); NULL for NULL t. */
HG_API const int64_t *hg_tensor_shape(const hg_tensor *t);
/* Number of elements (1 for rank 0); -1 for a NULL or stale t. */
HG_API int64_t hg_tensor_numel(const hg_tensor *t);
/* The ctx whose arena holds t; NULL for a NULL or stale t. */
HG_API hg_ctx *hg_tensor_ctx(const hg_tensor *t);
/* Raw data (numel * dtype size bytes, 64-byte aligned) for WRITING. Every
 * call bumps t's version counter (see hg_tensor_version): a tape saves the
 * version of each input and output of an op when it records it, and
 * hg_gradient fails with HG_ERR_MODIFIED, naming the op and the input, if
 * the version changed since (the write would silently change the gradient,
 * as PyTorch's "modified by an inplace operation"). Fill a tensor before it
 * is used by recorded ops; to read, use hg_tensor_cdata & co. below, which
 * never bump. NULL for a NULL or stale t. */
HG_API void *hg_tensor_data(hg_tensor *t);
/* Typed writable views (bump the version like hg_tensor_data); NULL (and an
 * error on the ctx) if the dtype differs. */
HG_API double *hg_tensor_f64(hg_tensor *t);
HG_API float *hg_tensor_f32(hg_tensor *t);
HG_API int32_t *hg_tensor_i32(hg_tensor *t);
/* Read-only views of the same buffer: no version bump. NULL for a NULL or
 * stale t; the typed ones also for another dtype (with an error on the ctx). */
HG_API const void *hg_tensor_cdata(const hg_tensor *t);
HG_API const double *hg_tensor_cf64(const hg_tensor *t);
HG_API const float *hg_tensor_cf32(const hg_tensor *t);
HG_API const int32_t *hg_tensor_ci32(const hg_tensor *t);
/* Number of writable-accessor calls (and in-place optimizer updates) on t so
 * far; 0 for a fresh tensor whose data the library filled. 0 for NULL/stale. */
HG_API uint64_t hg_tensor_version(const hg_tensor *t);
/* Value of a one-element tensor as double; NAN (and an error) otherwise. */
HG_API double hg_item(const hg_tensor *t);
/* Element i (flat index) as double; NAN and an error if out of range. */
HG_API double hg_get(const hg_tensor *t, int64_t i);
/* HG_OK if t is a live tensor (not NULL, not from a rewound region). */
HG_API hg_status hg_tensor_check(const hg_tensor *t);
/* Writes "[2,3] f64" into buf (always NUL-terminated); returns buf. */
HG_API char *hg_tensor_describe(const hg_tensor *t, char *buf, size_t size);

/* ---- random numbers: explicit, seeded, reproducible ------------------- */

/* xoshiro256** state. Copyable; never shared between threads. */
typedef struct hg_rng {
    uint64_t s[4];
} hg_rng;

/* Seed the state (splitmix64 of seed); NULL is ignored. */
HG_API void hg_rng_seed(hg_rng *rng, uint64_t seed);
/* Next 64 random bits; 0 for a NULL rng. */
HG_API uint64_t hg_rng_next(hg_rng *rng);
/* Uniform in [0, 1). */
HG_API double hg_rng_uniform(hg_rng *rng);
/* Standard normal. */
HG_API double hg_rng_normal(hg_rng *rng);
/* Tensor of i.i.d. draws: uniform in [lo, hi) / normal(mean, std). f32/f64. */
HG_API hg_tensor *hg_rand_uniform(hg_ctx *ctx, hg_rng *rng, hg_dtype dtype, int rank, const int64_t *shape, double lo,
                                  double hi);
HG_API hg_tensor *hg_rand_normal(hg_ctx *ctx, hg_rng *rng, hg_dtype dtype, int rank, const int64_t *shape, double mean,
                                 double std);

/* ---- copying between ctxs, printing ------------------------------------ */

/* Value copy of t (a tensor of ANY ctx, possibly another one) into ctx: a
 * new untracked tensor (a constant for every tape of ctx). t's ctx is only
 * read, so it must not be used by another thread meanwhile. Errors (on
 * ctx): HG_ERR_NULL, HG_ERR_STALE for a NULL or stale t, HG_ERR_OOM. Use it
 * to keep results (trained parameters, a gradient) across an hg_ctx_reset
 * or hg_ctx_free of the ctx that computed them. */
HG_API hg_tensor *hg_tensor_copy_to(hg_ctx *ctx, const hg_tensor *t);

/* Print t to f as nested brackets after a header line ("[2,3] f64"):
 * floats with %.6g (NaN, inf, -inf), i32 with %d. A tensor of more than
 * 1000 elements is summarised as NumPy does: on each axis longer than
 * 2 * edgeitems only the first and last edgeitems entries are printed,
 * with "..." between. edgeitems <= 0 means 3. Returns HG_OK, HG_ERR_NULL
 * (NULL f or t), HG_ERR_STALE or HG_ERR_IO (a write failed); the error is
 * also recorded on t's ctx when t is live. Nothing is allocated. */
HG_API hg_status hg_tensor_print(FILE *f, const hg_tensor *t, int edgeitems);

#ifdef __cplusplus
}
#endif
#endif
