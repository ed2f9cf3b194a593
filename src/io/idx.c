/* IDX (MNIST-format) files, gzip-compressed or raw. Sizes in the header are
 * checked against the bytes actually present; decompression is bounded. */
#include "file.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

#define IDX_DEFAULT_MAX ((size_t)1 << 30)

/* Inflate a gzip (or zlib) stream into a buffer from the ctx allocator,
 * refusing more than max_bytes of output. */
static hg_status gunzip(hg_ctx *ctx, const unsigned char *in, size_t in_len, size_t max_bytes, unsigned char **out,
                        size_t *out_len, size_t *out_cap)
{
    *out = NULL;
    *out_len = *out_cap = 0;
    if (in_len > UINT_MAX)
        return hg_set_error(ctx, HG_ERR_FORMAT, "hg_idx_load: compressed input too large");
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK)
        return hg_set_error(ctx, HG_ERR_OOM, "hg_idx_load: cannot initialise zlib");
    size_t cap = in_len * 4 + 1024;
    if (cap > max_bytes + 1)
        cap = max_bytes + 1;
    unsigned char *buf = hg_temp_alloc(ctx, cap);
    if (!buf) {
        inflateEnd(&zs);
        return hg_set_error(ctx, HG_ERR_OOM, "hg_idx_load: out of memory decompressing");
    }
    zs.next_in = (unsigned char *)in;
    zs.avail_in = (unsigned)in_len;
    size_t used = 0;
    int rc = Z_OK;
    hg_status s = HG_OK;
    while (rc != Z_STREAM_END) {
        if (used == cap) {
            if (cap > max_bytes) {
                s = hg_set_error(ctx, HG_ERR_FORMAT, "hg_idx_load: decompressed data exceeds the limit of %zu bytes",
                                 max_bytes);
                break;
            }
            size_t ncap = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
            unsigned char *grown = hg_temp_alloc(ctx, ncap);
            if (!grown) {
                s = hg_set_error(ctx, HG_ERR_OOM, "hg_idx_load: out of memory decompressing");
                break;
            }
            memcpy(grown, buf, used);
            hg_temp_free(ctx, buf, cap);
            buf = grown;
            cap = ncap;
        }
        size_t room = cap - used;
        zs.next_out = buf + used;
        zs.avail_out = room > UINT_MAX ? UINT_MAX : (unsigned)room;
        unsigned before = zs.avail_out;
        rc = inflate(&zs, Z_NO_FLUSH);
        used += before - zs.avail_out;
        if (rc == Z_STREAM_END)
            break;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            s = hg_set_error(ctx, HG_ERR_FORMAT, "hg_idx_load: corrupt gzip data (%s)", zs.msg ? zs.msg : "zlib error");
            break;
        }
        if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
            s = hg_set_error(ctx, HG_ERR_FORMAT, "hg_idx_load: truncated gzip data");
            break;
        }
    }
    if (s == HG_OK && zs.avail_in != 0)
        s = hg_set_error(ctx, HG_ERR_FORMAT, "hg_idx_load: %u bytes of trailing data after the gzip stream",
                         zs.avail_in);
    inflateEnd(&zs);
    if (s == HG_OK && used > max_bytes)
        s = hg_set_error(ctx, HG_ERR_FORMAT, "hg_idx_load: decompressed data exceeds the limit of %zu bytes",
                         max_bytes);
    if (s != HG_OK) {
        hg_temp_free(ctx, buf, cap);
        return s;
    }
    *out = buf;
    *out_len = used;
    *out_cap = cap;
    return HG_OK;
}

static hg_tensor *parse_idx(hg_ctx *ctx, const unsigned char *b, size_t len, hg_dtype dtype, double scale)
{
    if (len < 4 || b[0] != 0 || b[1] != 0) {
        hg_set_error(ctx, HG_ERR_FORMAT, "hg_idx_load: bad magic number (not an IDX file)");
        return NULL;
    }
    if (b[2] != 0x08) {
        hg_set_error(ctx, HG_ERR_FORMAT, "hg_idx_load: element type 0x%02x unsupported (only unsigned byte, 0x08)",
                     b[2]);
        return NULL;
    }
    int rank = b[3];
    if (rank < 1 || rank > 4) {
        hg_set_error(ctx, HG_ERR_FORMAT, "hg_idx_load: %d dimensions (1 to 4 supported)", rank);
        return NULL;
    }
    if (len < 4 + 4 * (size_t)rank) {
        hg_set_error(ctx, HG_ERR_FORMAT, "hg_idx_load: truncated header");
        return NULL;
    }
    int64_t shape[4];
    uint64_t numel = 1;
    for (int i = 0; i < rank; i++) {
        const unsigned char *d = b + 4 + 4 * i;
        uint32_t dim = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
        if (dim && numel > UINT64_MAX / dim) {
            hg_set_error(ctx, HG_ERR_FORMAT, "hg_idx_load: dimensions overflow");
            return NULL;
        }
        shape[i] = dim;
        numel *= dim;
    }
    size_t at = 4 + 4 * (size_t)rank;
    if (numel != len - at) {
        hg_set_error(ctx, HG_ERR_FORMAT, "hg_idx_load: header says %llu bytes of data, the file has %zu",
                     (unsigned long long)numel, len - at);
        return NULL;
    }
    hg_tensor *t = hg_tensor_alloc(ctx, "hg_idx_load", dtype, rank, shape);
    if (!t)
        return NULL;
    const unsigned char *d = b + at;
    if (dtype == HG_I32) {
        int32_t *o = t->data;
        for (uint64_t i = 0; i < numel; i++)
            o[i] = d[i];
    } else if (dtype == HG_F32) {
        float lut[256]; /* byte value -> scaled value */
        for (int v = 0; v < 256; v++)
            lut[v] = (float)(v * scale);
        float *o = t->data;
        for (uint64_t i = 0; i < numel; i++)
            o[i] = lut[d[i]];
    } else {
        double lut[256];
        for (int v = 0; v < 256; v++)
            lut[v] = v * scale;
        double *o = t->data;
        for (uint64_t i = 0; i < numel; i++)
            o[i] = lut[d[i]];
    }
    return t;
}

hg_tensor *hg_idx_load_buffer(hg_ctx *ctx, const void *buffer, size_t len, hg_dtype dtype, double scale,
                              size_t max_bytes)
{
    if (!ctx)
        return NULL;
    if (!buffer) {
        hg_set_error(ctx, HG_ERR_NULL, "hg_idx_load: buffer is NULL");
        return NULL;
    }
    if (dtype != HG_I32 && dtype != HG_F32 && dtype != HG_F64) {
        hg_set_error(ctx, HG_ERR_DTYPE, "hg_idx_load: invalid dtype %d (i32, f32 or f64)", (int)dtype);
        return NULL;
    }
    if (!max_bytes)
        max_bytes = IDX_DEFAULT_MAX;
    const unsigned char *b = buffer;
    if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
        unsigned char *raw;
        size_t raw_len, cap;
        if (gunzip(ctx, b, len, max_bytes, &raw, &raw_len, &cap) != HG_OK)
            return NULL;
        hg_tensor *t = parse_idx(ctx, raw, raw_len, dtype, scale);
        hg_temp_free(ctx, raw, cap);
        return t;
    }
    if (len > max_bytes) {
        hg_set_error(ctx, HG_ERR_FORMAT, "hg_idx_load: %zu bytes exceed the limit of %zu", len, max_bytes);
        return NULL;
    }
    return parse_idx(ctx, b, len, dtype, scale);
}

hg_tensor *hg_idx_load(hg_ctx *ctx, const char *path, hg_dtype dtype, double scale, size_t max_bytes)
{
    if (!ctx)
        return NULL;
    hg_status before = ctx->status;
    unsigned char *buf;
    size_t len;
    if (hg_file_read(ctx, "hg_idx_load", path, max_bytes ? max_bytes : IDX_DEFAULT_MAX, &buf, &len) != HG_OK)
        return NULL;
    hg_tensor *t = hg_idx_load_buffer(ctx, buf, len, dtype, scale, max_bytes);
    hg_file_free(ctx, buf, len);
    if (!t)
        hg_error_name_file(ctx, before, path);
    return t;
}
