/* Whole-file reads for the data readers. */
#include "file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

void *hg_temp_alloc(hg_ctx *ctx, size_t size)
{
    return ctx->allocator.alloc(size ? size : 1, ctx->allocator.user);
}

void hg_temp_free(hg_ctx *ctx, void *p, size_t size)
{
    if (p)
        ctx->allocator.free(p, size ? size : 1, ctx->allocator.user);
}

hg_status hg_file_read(hg_ctx *ctx, const char *who, const char *path, size_t max_bytes, unsigned char **data,
                       size_t *len)
{
    *data = NULL;
    *len = 0;
    if (!path)
        return hg_set_error(ctx, HG_ERR_NULL, "%s: path is NULL", who);
    FILE *f = fopen(path, "rb");
    if (!f)
        return hg_set_error(ctx, HG_ERR_IO, "%s: cannot open %s: %s", who, path, strerror(errno));
    /* A directory opens on Linux and "seeks" to LONG_MAX: not a file to read. */
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return hg_set_error(ctx, HG_ERR_IO, "%s: %s is not a regular file", who, path);
    }
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return hg_set_error(ctx, HG_ERR_IO, "%s: cannot determine the size of %s", who, path);
    }
    if ((unsigned long)size > max_bytes) {
        fclose(f);
        return hg_set_error(ctx, HG_ERR_FORMAT, "%s: %s is %ld bytes, above the limit of %zu", who, path, size,
                            max_bytes);
    }
    unsigned char *buf = hg_temp_alloc(ctx, (size_t)size);
    if (!buf) {
        fclose(f);
        return hg_set_error(ctx, HG_ERR_OOM, "%s: out of memory reading %s (%ld bytes)", who, path, size);
    }
    size_t got = fread(buf, 1, (size_t)size, f);
    int err = ferror(f);
    fclose(f);
    if (got != (size_t)size || err) {
        hg_temp_free(ctx, buf, (size_t)size);
        return hg_set_error(ctx, HG_ERR_IO, "%s: short read of %s (%zu of %ld bytes)", who, path, got, size);
    }
    *data = buf;
    *len = (size_t)size;
    return HG_OK;
}

void hg_file_free(hg_ctx *ctx, unsigned char *data, size_t len)
{
    hg_temp_free(ctx, data, len);
}

void hg_error_name_file(hg_ctx *ctx, hg_status before, const char *path)
{
    if (before != HG_OK || ctx->status == HG_OK || !path || strstr(ctx->message, path))
        return;
    size_t used = strlen(ctx->message), room = sizeof ctx->message - used;
    if (room > 8)
        snprintf(ctx->message + used, room, " (in %.*s)", (int)(room - 7), path);
}
