/* IDX (MNIST-format) files, gzip-compressed or raw, read as a stream: the
 * header first (for gzip, from the first inflated bytes), every size checked
 * against the limit before the tensor is allocated, then the data inflated
 * and converted block by block straight into the tensor. Inflation never
 * goes past the size the header announced (plus one byte to detect excess),
 * so a gzip bomb is refused after a few bytes of output. */
#include "file.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

#define IDX_DEFAULT_MAX ((size_t)1 << 30)
#define WHO "hg_idx_load"

/* Decompressed (or raw) bytes, pulled on demand. */
typedef struct idx_stream {
    hg_src *src;
    hg_ctx *ctx;
    bool gz;
    bool ended; /* gzip: Z_STREAM_END seen */
    bool zinit;
    z_stream zs;
    unsigned char pre[2]; /* bytes read to detect gzip, replayed for raw data */
    size_t npre, ipre;
    unsigned char in[16384];
} idx_stream;

/* Up to n bytes of output; *got < n only at the end of the data. */
static hg_status stream_read(idx_stream *st, unsigned char *buf, size_t n, size_t *got)
{
    *got = 0;
    if (!st->gz) {
        while (*got < n && st->ipre < st->npre)
            buf[(*got)++] = st->pre[st->ipre++];
        size_t more;
        hg_status s = hg_src_read_some(st->src, buf + *got, n - *got, &more);
        *got += more;
        return s;
    }
    while (*got < n && !st->ended) {
        if (st->zs.avail_in == 0 && hg_src_left(st->src)) {
            size_t more;
            hg_status s = hg_src_read_some(st->src, st->in, sizeof st->in, &more);
            if (s != HG_OK)
                return s;
            st->zs.next_in = st->in;
            st->zs.avail_in = (unsigned)more;
        }
        size_t room = n - *got;
        st->zs.next_out = buf + *got;
        st->zs.avail_out = room > (1u << 30) ? 1u << 30 : (unsigned)room;
        unsigned in_before = st->zs.avail_in, out_before = st->zs.avail_out;
        int rc = inflate(&st->zs, Z_NO_FLUSH);
        *got += out_before - st->zs.avail_out;
        if (rc == Z_STREAM_END) {
            st->ended = true;
            break;
        }
        if (rc == Z_MEM_ERROR)
            return hg_set_error(st->ctx, HG_ERR_OOM, WHO ": out of memory for zlib's window");
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return hg_set_error(st->ctx, HG_ERR_FORMAT, WHO ": corrupt gzip data (%s)",
                                st->zs.msg ? st->zs.msg : "zlib error");
        if (st->zs.avail_in == in_before && st->zs.avail_out == out_before) {
            /* No progress: input exhausted before the end of the stream. */
            if (st->zs.avail_in == 0 && hg_src_left(st->src) == 0)
                return hg_set_error(st->ctx, HG_ERR_FORMAT, WHO ": truncated gzip data");
            return hg_set_error(st->ctx, HG_ERR_FORMAT, WHO ": corrupt gzip data (no progress)");
        }
    }
    return HG_OK;
}

/* Exactly n bytes, or HG_ERR_FORMAT naming what was short. */
static hg_status stream_need(idx_stream *st, unsigned char *buf, size_t n, const char *what, uint64_t expected)
{
    size_t got;
    hg_status s = stream_read(st, buf, n, &got);
    if (s != HG_OK)
        return s;
    if (got != n) {
        if (expected)
            return hg_set_error(st->ctx, HG_ERR_FORMAT, WHO ": header says %llu bytes of data, the %s has fewer",
                                (unsigned long long)expected, st->gz ? "decompressed stream" : "file");
        return hg_set_error(st->ctx, HG_ERR_FORMAT, WHO ": %s", what);
    }
    return HG_OK;
}

static hg_tensor *read_idx(idx_stream *st, hg_dtype dtype, double scale, size_t max_bytes)
{
    hg_ctx *ctx = st->ctx;
    unsigned char head[4 + 4 * 4];
    if (stream_need(st, head, 4, "bad magic number (not an IDX file)", 0) != HG_OK)
        return NULL;
    if (head[0] != 0 || head[1] != 0) {
        hg_set_error(ctx, HG_ERR_FORMAT, WHO ": bad magic number (not an IDX file)");
        return NULL;
    }
    if (head[2] != 0x08) {
        hg_set_error(ctx, HG_ERR_FORMAT, WHO ": element type 0x%02x unsupported (only unsigned byte, 0x08)", head[2]);
        return NULL;
    }
    int rank = head[3];
    if (rank < 1 || rank > 4) {
        hg_set_error(ctx, HG_ERR_FORMAT, WHO ": %d dimensions (1 to 4 supported)", rank);
        return NULL;
    }
    if (stream_need(st, head + 4, 4 * (size_t)rank, "truncated header", 0) != HG_OK)
        return NULL;
    int64_t shape[4];
    uint64_t numel = 1;
    for (int i = 0; i < rank; i++) {
        const unsigned char *d = head + 4 + 4 * i;
        uint32_t dim = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
        if (dim && numel > UINT64_MAX / 8 / dim) {
            hg_set_error(ctx, HG_ERR_FORMAT, WHO ": dimensions overflow");
            return NULL;
        }
        shape[i] = dim;
        numel *= dim;
    }
    /* Sizes against the limit before anything is allocated or inflated:
     * the data, and the result (numel * 8 cannot overflow, see above). */
    uint64_t at = 4 + 4 * (uint64_t)rank, out_bytes = numel * hg_dtype_size(dtype);
    if (at > max_bytes || numel > max_bytes - at || out_bytes > max_bytes) {
        hg_set_error(ctx, HG_ERR_FORMAT,
                     WHO ": header says %llu elements (%llu bytes of data, %llu bytes as %s), above the limit of %zu",
                     (unsigned long long)numel, (unsigned long long)(numel + at), (unsigned long long)out_bytes,
                     hg_dtype_name(dtype), max_bytes);
        return NULL;
    }
    if (!st->gz && numel != hg_src_left(st->src)) {
        hg_set_error(ctx, HG_ERR_FORMAT, WHO ": header says %llu bytes of data, the file has %llu",
                     (unsigned long long)numel, (unsigned long long)hg_src_left(st->src));
        return NULL;
    }
    hg_tensor *t = hg_tensor_alloc(ctx, WHO, dtype, rank, shape);
    if (!t)
        return NULL;
    float lut32[256];
    double lut64[256]; /* byte value -> scaled value */
    for (int v = 0; v < 256; v++) {
        lut32[v] = (float)(v * scale);
        lut64[v] = v * scale;
    }
    unsigned char block[16384];
    for (uint64_t i = 0; i < numel;) {
        size_t n = numel - i < sizeof block ? (size_t)(numel - i) : sizeof block;
        if (stream_need(st, block, n, NULL, numel) != HG_OK)
            return NULL;
        if (dtype == HG_I32) {
            int32_t *o = (int32_t *)t->data + i;
            for (size_t k = 0; k < n; k++)
                o[k] = block[k];
        } else if (dtype == HG_F32) {
            float *o = (float *)t->data + i;
            for (size_t k = 0; k < n; k++)
                o[k] = lut32[block[k]];
        } else {
            double *o = (double *)t->data + i;
            for (size_t k = 0; k < n; k++)
                o[k] = lut64[block[k]];
        }
        i += n;
    }
    if (st->gz) {
        /* The stream must end here: one more byte of output is excess. */
        size_t got;
        if (stream_read(st, block, 1, &got) != HG_OK)
            return NULL;
        if (got) {
            hg_set_error(ctx, HG_ERR_FORMAT,
                         WHO ": the decompressed stream has more than the %llu bytes of data the "
                             "header says",
                         (unsigned long long)numel);
            return NULL;
        }
        uint64_t trailing = st->zs.avail_in + hg_src_left(st->src);
        if (trailing) {
            hg_set_error(ctx, HG_ERR_FORMAT, WHO ": %llu bytes of trailing data after the gzip stream",
                         (unsigned long long)trailing);
            return NULL;
        }
    }
    return t;
}

/* zlib's state from the ctx's allocator, charged to its max_bytes. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    hg_ctx *ctx = opaque;
    if (size && items > (SIZE_MAX - 16) / size)
        return Z_NULL;
    size_t bytes = (size_t)items * size + 16;
    unsigned char *p = hg_temp_alloc(ctx, bytes);
    if (!p)
        return Z_NULL;
    memcpy(p, &bytes, sizeof bytes);
    return p + 16;
}

static void z_free(voidpf opaque, voidpf ptr)
{
    if (!ptr)
        return;
    unsigned char *p = (unsigned char *)ptr - 16;
    size_t bytes;
    memcpy(&bytes, p, sizeof bytes);
    hg_temp_free(opaque, p, bytes);
}

static hg_tensor *load(hg_ctx *ctx, hg_src *src, hg_dtype dtype, double scale, size_t max_bytes)
{
    if (dtype != HG_I32 && dtype != HG_F32 && dtype != HG_F64) {
        hg_set_error(ctx, HG_ERR_DTYPE, WHO ": invalid dtype %d (i32, f32 or f64)", (int)dtype);
        return NULL;
    }
    idx_stream *st = &(idx_stream){.src = src, .ctx = ctx};
    size_t got;
    if (hg_src_read_some(src, st->pre, 2, &got) != HG_OK)
        return NULL;
    st->npre = got;
    st->gz = got == 2 && st->pre[0] == 0x1f && st->pre[1] == 0x8b;
    if (st->gz) {
        st->zs.zalloc = z_alloc;
        st->zs.zfree = z_free;
        st->zs.opaque = ctx;
        if (inflateInit2(&st->zs, 15 + 32) != Z_OK) {
            hg_set_error(ctx, HG_ERR_OOM, WHO ": out of memory for zlib's state");
            return NULL;
        }
        st->zinit = true;
        memcpy(st->in, st->pre, 2);
        st->zs.next_in = st->in;
        st->zs.avail_in = 2;
    } else if (hg_src_left(src) + got > max_bytes) {
        hg_set_error(ctx, HG_ERR_FORMAT, WHO ": %llu bytes exceed the limit of %zu",
                     (unsigned long long)(hg_src_left(src) + got), max_bytes);
        return NULL;
    }
    hg_tensor *t = read_idx(st, dtype, scale, max_bytes);
    if (st->zinit)
        inflateEnd(&st->zs);
    return t;
}

hg_tensor *hg_idx_load_buffer(hg_ctx *ctx, const void *buffer, size_t len, hg_dtype dtype, double scale,
                              size_t max_bytes)
{
    if (!ctx)
        return NULL;
    if (!buffer) {
        hg_set_error(ctx, HG_ERR_NULL, WHO ": buffer is NULL");
        return NULL;
    }
    hg_src src;
    hg_src_memory(&src, ctx, WHO, buffer, len);
    return load(ctx, &src, dtype, scale, max_bytes ? max_bytes : IDX_DEFAULT_MAX);
}

hg_tensor *hg_idx_load(hg_ctx *ctx, const char *path, hg_dtype dtype, double scale, size_t max_bytes)
{
    if (!ctx)
        return NULL;
    hg_status before = ctx->status;
    if (!max_bytes)
        max_bytes = IDX_DEFAULT_MAX;
    hg_src src;
    if (hg_src_open(&src, ctx, WHO, path, max_bytes) != HG_OK)
        return NULL;
    hg_tensor *t = load(ctx, &src, dtype, scale, max_bytes);
    hg_src_close(&src);
    if (!t)
        hg_error_name_file(ctx, before, path);
    return t;
}
