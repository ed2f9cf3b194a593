/* Compiles the new regression tests against the library as it was before
 * the fixes: new accessor names mapped to old equivalents, genuinely new
 * API replaced by stubs that say "missing feature" and fail. */
#ifndef SHIM_OLD_H
#define SHIM_OLD_H
#define _XOPEN_SOURCE 700 /* as the tests define it, before any header */
#define _DEFAULT_SOURCE
#include <hgrad.h>
#include <stdio.h>

/* const accessors (added later): same data through the old ones */
#define hg_tensor_cdata(t) ((const void *)hg_tensor_data((hg_tensor *)(t)))
#define hg_tensor_cf64(t) ((const double *)hg_tensor_f64((hg_tensor *)(t)))
#define hg_tensor_cf32(t) ((const float *)hg_tensor_f32((hg_tensor *)(t)))
#define hg_tensor_ci32(t) ((const int32_t *)hg_tensor_i32((hg_tensor *)(t)))

/* new status codes: values the old library never returns */
#define HG_ERR_THREAD ((hg_status)100)
#define HG_ERR_MISSING ((hg_status)101)

static inline void shim_missing(const char *what)
{
    fprintf(stderr, "[shim] %s: missing feature in the old library\n", what);
}

/* atomic writes: missing */
typedef struct hg_atomic_file hg_atomic_file;
static inline hg_atomic_file *hg_atomic_open(hg_ctx *ctx, const char *path)
{
    (void)ctx, (void)path;
    shim_missing("hg_atomic_open");
    return NULL;
}
static inline FILE *hg_atomic_stream(hg_atomic_file *f)
{
    (void)f;
    shim_missing("hg_atomic_stream");
    return NULL;
}
static inline hg_status hg_atomic_commit(hg_atomic_file *f)
{
    (void)f;
    shim_missing("hg_atomic_commit");
    return HG_ERR_MISSING;
}
static inline void hg_atomic_abort(hg_atomic_file *f)
{
    (void)f;
    shim_missing("hg_atomic_abort");
}

/* thread ownership: missing (no owner, so a hand-off is a no-op) */
static inline void hg_ctx_set_owner(hg_ctx *ctx)
{
    (void)ctx;
    shim_missing("hg_ctx_set_owner");
}

/* BLAS thread control: missing */
#ifdef SHIM_BLAS_NOOP /* as if the pin existed but did nothing */
static inline hg_status hg_blas_set_threads(int n)
{
    return n < 1 ? HG_ERR_RANGE : HG_OK;
}
static inline int hg_blas_threads(void)
{
    return 1;
}
#else
static inline hg_status hg_blas_set_threads(int n)
{
    (void)n;
    shim_missing("hg_blas_set_threads");
    return HG_ERR_MISSING;
}
static inline int hg_blas_threads(void)
{
    shim_missing("hg_blas_threads");
    return -1;
}
#endif
#ifdef KEEP_GOING
#include "keep_going.h"
#endif
#endif
