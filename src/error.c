/* Sticky first-error reporting on the ctx, and status/dtype names. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

/* The first error is kept; later ones only return their code. */
hg_status hg_op_error(hg_ctx *ctx, hg_status code, const char *fmt, ...)
{
    if (!ctx || code == HG_OK)
        return code;
    ctx->n_errors++;
    if (ctx->status != HG_OK)
        return code;
    ctx->status = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->message, sizeof ctx->message, fmt, ap);
    va_end(ap);
    return code;
}

hg_status hg_ctx_status(const hg_ctx *ctx)
{
    return ctx ? ctx->status : HG_ERR_NULL;
}

const char *hg_ctx_error(const hg_ctx *ctx)
{
    return ctx ? ctx->message : "hg_ctx_error: ctx is NULL";
}

void hg_ctx_clear_error(hg_ctx *ctx)
{
    if (!ctx)
        return;
    ctx->status = HG_OK;
    ctx->message[0] = '\0';
}

const char *hg_status_name(hg_status s)
{
    switch (s) {
    case HG_OK: return "HG_OK";
    case HG_ERR_NULL: return "HG_ERR_NULL";
    case HG_ERR_SHAPE: return "HG_ERR_SHAPE";
    case HG_ERR_DTYPE: return "HG_ERR_DTYPE";
    case HG_ERR_OOM: return "HG_ERR_OOM";
    case HG_ERR_TAPE: return "HG_ERR_TAPE";
    case HG_ERR_STALE: return "HG_ERR_STALE";
    case HG_ERR_RANGE: return "HG_ERR_RANGE";
    case HG_ERR_INVALID: return "HG_ERR_INVALID";
    case HG_ERR_ONCE_DIFF: return "HG_ERR_ONCE_DIFF";
    case HG_ERR_IO: return "HG_ERR_IO";
    case HG_ERR_FORMAT: return "HG_ERR_FORMAT";
    case HG_ERR_OVERFLOW: return "HG_ERR_OVERFLOW";
    case HG_ERR_MODIFIED: return "HG_ERR_MODIFIED";
    case HG_ERR_REMOTE: return "HG_ERR_REMOTE";
    case HG_ERR_THREAD: return "HG_ERR_THREAD";
    }
    return "HG_ERR_UNKNOWN";
}

const char *hg_dtype_name(hg_dtype d)
{
    switch (d) {
    case HG_F32: return "f32";
    case HG_F64: return "f64";
    case HG_I32: return "i32";
    }
    return "?";
}

size_t hg_dtype_size(hg_dtype d)
{
    switch (d) {
    case HG_F32: return 4;
    case HG_F64: return 8;
    case HG_I32: return 4;
    }
    return 0;
}
