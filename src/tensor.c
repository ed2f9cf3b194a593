/* Tensor creation, validation and accessors. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

bool hg_is_float(hg_dtype d)
{
    return d == HG_F32 || d == HG_F64;
}

const char *hg_shape_str(int rank, const int64_t *shape, char *buf, size_t size)
{
    size_t n = 0;
    if (size == 0)
        return buf;
    buf[0] = '\0';
    n += (size_t)snprintf(buf + n, size - n, "[");
    for (int i = 0; i < rank && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
    return buf;
}

char *hg_tensor_describe(const hg_tensor *t, char *buf, size_t size)
{
    if (!buf || size == 0)
        return buf;
    if (hg_tensor_check(t) != HG_OK) {
        snprintf(buf, size, t ? "<stale tensor>" : "<NULL>");
        return buf;
    }
    char s[160];
    snprintf(buf, size, "%s %s", HG_SHAPE(t, s), hg_dtype_name(t->dtype));
    return buf;
}

hg_status hg_tensor_check(const hg_tensor *t)
{
    if (!t)
        return HG_ERR_NULL;
    if (t->obj.magic != HG_TENSOR_MAGIC)
        return HG_ERR_STALE;
    return HG_OK;
}

hg_status hg_tensor_validate(hg_ctx *ctx, const hg_tensor *t, const char *who)
{
    hg_status s = hg_tensor_check(t);
    if (s == HG_ERR_NULL)
        return hg_set_error(ctx, s, "%s: tensor argument is NULL", who);
    if (s == HG_ERR_STALE)
        return hg_set_error(ctx, s, "%s: tensor is stale (from a rewound or reset region) or not a tensor", who);
    if (t->ctx != ctx)
        return hg_set_error(ctx, HG_ERR_INVALID, "%s: tensor belongs to another ctx", who);
    return HG_OK;
}

int hg_free_class(size_t bytes)
{
    int c = 0;
    while (bytes > 1 && c < HG_FREE_CLASSES - 1) {
        bytes >>= 1;
        c++;
    }
    return c;
}

/* A dead cotangent's block of at least `need` bytes from the sweep's free
 * lists (first fit in need's class, else the head of the next class, at
 * most 4x larger), or NULL. The block keeps its place in the arena's
 * object chain. */
static hg_tensor *reuse_block(hg_ctx *ctx, size_t need)
{
    int c = hg_free_class(need);
    for (hg_tensor **pp = &ctx->free_blocks[c]; *pp; pp = &(*pp)->link)
        if ((*pp)->block_bytes >= need) {
            hg_tensor *t = *pp;
            *pp = t->link;
            return t;
        }
    if (c + 1 < HG_FREE_CLASSES && ctx->free_blocks[c + 1]) {
        hg_tensor *t = ctx->free_blocks[c + 1];
        ctx->free_blocks[c + 1] = t->link;
        return t;
    }
    return NULL;
}

/* Fill a tensor header (its obj.prev and block_bytes already set). */
static hg_tensor *init_tensor(hg_ctx *ctx, hg_tensor *t, unsigned char *data, hg_dtype dtype, int rank,
                              const int64_t *shape, int64_t numel)
{
    hg_object obj = t->obj;
    size_t block = t->block_bytes;
    memset(t, 0, sizeof *t);
    t->obj = obj;
    t->obj.magic = HG_TENSOR_MAGIC;
    t->block_bytes = block;
    t->ctx = ctx;
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++)
        t->shape[i] = shape[i];
    t->numel = numel;
    t->data = data;
    if (ctx->reuse_id) {
        t->born = ctx->reuse_id;
        t->link = ctx->born_list;
        ctx->born_list = t;
    }
    ctx->n_tensors++;
    return t;
}

hg_tensor *hg_tensor_alloc(hg_ctx *ctx, const char *who, hg_dtype dtype, int rank, const int64_t *shape)
{
    if (!ctx)
        return NULL;
    if (rank < 0 || rank > HG_MAX_RANK) {
        hg_set_error(ctx, HG_ERR_SHAPE, "%s: rank %d is outside 0..%d", who, rank, HG_MAX_RANK);
        return NULL;
    }
    if (rank > 0 && !shape) {
        hg_set_error(ctx, HG_ERR_NULL, "%s: shape is NULL for rank %d", who, rank);
        return NULL;
    }
    size_t esize = hg_dtype_size(dtype);
    if (esize == 0) {
        hg_set_error(ctx, HG_ERR_DTYPE, "%s: invalid dtype %d", who, (int)dtype);
        return NULL;
    }
    /* The product of the nonzero extents must fit too, even when another
     * extent is 0 (as NumPy requires): kernels multiply sub-extents of empty
     * tensors, and [0, 2^62, 4] must not overflow them. */
    int64_t numel = 1, nonzero = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0) {
            char s[160];
            hg_set_error(ctx, HG_ERR_SHAPE, "%s: negative extent in shape %s", who,
                         hg_shape_str(rank, shape, s, sizeof s));
            return NULL;
        }
        if (shape[i] && nonzero > INT64_MAX / shape[i]) {
            hg_set_error(ctx, HG_ERR_OVERFLOW, "%s: element count overflows", who);
            return NULL;
        }
        numel *= shape[i];
        if (shape[i])
            nonzero *= shape[i];
    }
    if ((uint64_t)nonzero > (SIZE_MAX - 2 * HG_ALIGN - sizeof(hg_tensor)) / esize) {
        char s[160];
        hg_set_error(ctx, HG_ERR_OVERFLOW, "%s: shape %s of %s overflows the byte count", who,
                     hg_shape_str(rank, shape, s, sizeof s), hg_dtype_name(dtype));
        return NULL;
    }
    size_t header = (sizeof(hg_tensor) + HG_ALIGN - 1) & ~(size_t)(HG_ALIGN - 1);
    size_t need = header + (size_t)numel * esize;
    if (ctx->reuse_id) {
        hg_tensor *t = reuse_block(ctx, need);
        if (t)
            return init_tensor(ctx, t, (unsigned char *)t + header, dtype, rank, shape, numel);
    }
    unsigned char *mem = hg_arena_alloc(ctx, need);
    if (!mem) {
        char s[160];
        hg_set_error(ctx, HG_ERR_OOM, "%s: out of memory for a %s %s tensor", who,
                     hg_shape_str(rank, shape, s, sizeof s), hg_dtype_name(dtype));
        return NULL;
    }
    hg_tensor *t = (hg_tensor *)mem;
    memset(t, 0, sizeof *t);
    t->block_bytes = need;
    hg_arena_register(ctx, &t->obj, HG_TENSOR_MAGIC);
    return init_tensor(ctx, t, mem + header, dtype, rank, shape, numel);
}

hg_tensor *hg_tensor_new(hg_ctx *ctx, hg_dtype dtype, int rank, const int64_t *shape)
{
    return hg_tensor_alloc(ctx, "hg_tensor_new", dtype, rank, shape);
}

hg_tensor *hg_tensor_from(hg_ctx *ctx, hg_dtype dtype, int rank, const int64_t *shape, const void *data)
{
    hg_tensor *t = hg_tensor_alloc(ctx, "hg_tensor_from", dtype, rank, shape);
    if (!t)
        return NULL;
    if (t->numel && !data) {
        hg_set_error(ctx, HG_ERR_NULL, "hg_tensor_from: data is NULL");
        return NULL;
    }
    if (t->numel)
        memcpy(t->data, data, (size_t)t->numel * hg_dtype_size(dtype));
    return t;
}

/* double -> int32_t without undefined behaviour: truncates toward zero,
 * saturates out-of-range values, NaN gives 0. */
static int32_t to_i32(double v)
{
    if (v != v)
        return 0;
    if (v >= 2147483647.0)
        return INT32_MAX;
    if (v <= -2147483648.0)
        return INT32_MIN;
    return (int32_t)v;
}

static void fill(hg_tensor *t, double v)
{
    switch (t->dtype) {
    case HG_F32: {
        float *p = t->data;
        for (int64_t i = 0; i < t->numel; i++)
            p[i] = (float)v;
        break;
    }
    case HG_F64: {
        double *p = t->data;
        for (int64_t i = 0; i < t->numel; i++)
            p[i] = v;
        break;
    }
    case HG_I32: {
        int32_t *p = t->data;
        const int32_t iv = to_i32(v);
        for (int64_t i = 0; i < t->numel; i++)
            p[i] = iv;
        break;
    }
    }
}

hg_tensor *hg_full(hg_ctx *ctx, hg_dtype dtype, int rank, const int64_t *shape, double value)
{
    hg_tensor *t = hg_tensor_alloc(ctx, "hg_full", dtype, rank, shape);
    if (t)
        fill(t, value);
    return t;
}

hg_tensor *hg_zeros(hg_ctx *ctx, hg_dtype dtype, int rank, const int64_t *shape)
{
    hg_tensor *t = hg_tensor_alloc(ctx, "hg_zeros", dtype, rank, shape);
    if (t)
        memset(t->data, 0, (size_t)t->numel * hg_dtype_size(dtype));
    return t;
}

hg_tensor *hg_ones(hg_ctx *ctx, hg_dtype dtype, int rank, const int64_t *shape)
{
    hg_tensor *t = hg_tensor_alloc(ctx, "hg_ones", dtype, rank, shape);
    if (t)
        fill(t, 1.0);
    return t;
}

hg_tensor *hg_scalar(hg_ctx *ctx, hg_dtype dtype, double value)
{
    hg_tensor *t = hg_tensor_alloc(ctx, "hg_scalar", dtype, 0, NULL);
    if (t)
        fill(t, value);
    return t;
}

hg_tensor *hg_arange(hg_ctx *ctx, hg_dtype dtype, int64_t n, double start, double step)
{
    hg_tensor *t = hg_tensor_alloc(ctx, "hg_arange", dtype, 1, &n);
    if (!t)
        return NULL;
    for (int64_t i = 0; i < n; i++) {
        double v = start + step * (double)i;
        switch (dtype) {
        case HG_F32: ((float *)t->data)[i] = (float)v; break;
        case HG_F64: ((double *)t->data)[i] = v; break;
        case HG_I32: ((int32_t *)t->data)[i] = to_i32(v); break;
        }
    }
    return t;
}

static hg_tensor *like(hg_ctx *ctx, const hg_tensor *l, const char *who, double v)
{
    if (!ctx || hg_tensor_validate(ctx, l, who) != HG_OK)
        return NULL;
    hg_tensor *t = hg_tensor_alloc(ctx, who, l->dtype, l->rank, l->shape);
    if (t)
        fill(t, v);
    return t;
}

hg_tensor *hg_zeros_like(hg_ctx *ctx, const hg_tensor *l)
{
    return like(ctx, l, "hg_zeros_like", 0.0);
}

hg_tensor *hg_ones_like(hg_ctx *ctx, const hg_tensor *l)
{
    return like(ctx, l, "hg_ones_like", 1.0);
}

hg_tensor *hg_tensor_clone(hg_ctx *ctx, const hg_tensor *src)
{
    if (!ctx || hg_tensor_validate(ctx, src, "hg_tensor_clone") != HG_OK)
        return NULL;
    hg_tensor *t = hg_tensor_alloc(ctx, "hg_tensor_clone", src->dtype, src->rank, src->shape);
    if (t && t->numel)
        memcpy(t->data, src->data, (size_t)t->numel * hg_dtype_size(t->dtype));
    return t;
}

/* Accessors: a stale or NULL tensor gives a neutral value (and an error on its
 * ctx when the ctx can be trusted, i.e. the tensor is live). */
hg_dtype hg_tensor_dtype(const hg_tensor *t)
{
    return hg_tensor_check(t) == HG_OK ? t->dtype : HG_F64;
}

int hg_tensor_rank(const hg_tensor *t)
{
    return hg_tensor_check(t) == HG_OK ? t->rank : -1;
}

int64_t hg_tensor_dim(const hg_tensor *t, int axis)
{
    if (hg_tensor_check(t) != HG_OK)
        return -1;
    if (axis < 0)
        axis += t->rank;
    if (axis < 0 || axis >= t->rank)
        return -1;
    return t->shape[axis];
}

const int64_t *hg_tensor_shape(const hg_tensor *t)
{
    return hg_tensor_check(t) == HG_OK ? t->shape : NULL;
}

int64_t hg_tensor_numel(const hg_tensor *t)
{
    return hg_tensor_check(t) == HG_OK ? t->numel : -1;
}

hg_ctx *hg_tensor_ctx(const hg_tensor *t)
{
    return hg_tensor_check(t) == HG_OK ? t->ctx : NULL;
}

void *hg_tensor_data(hg_tensor *t)
{
    if (hg_tensor_check(t) != HG_OK)
        return NULL;
    hg_tensor_bump(t);
    return t->data;
}

const void *hg_tensor_cdata(const hg_tensor *t)
{
    return hg_tensor_check(t) == HG_OK ? t->data : NULL;
}

uint64_t hg_tensor_version(const hg_tensor *t)
{
    return hg_tensor_check(t) == HG_OK ? t->version : 0;
}

/* Data of t if it has dtype want (else an error naming who); no bump. */
static void *typed(const hg_tensor *t, hg_dtype want, const char *who)
{
    if (hg_tensor_check(t) != HG_OK)
        return NULL;
    if (t->dtype != want) {
        hg_set_error(t->ctx, HG_ERR_DTYPE, "%s: tensor is %s, not %s", who, hg_dtype_name(t->dtype),
                     hg_dtype_name(want));
        return NULL;
    }
    return t->data;
}

/* Writable typed view: bumps the version when it succeeds. */
static void *typed_w(hg_tensor *t, hg_dtype want, const char *who)
{
    void *p = typed(t, want, who);
    if (p)
        hg_tensor_bump(t);
    return p;
}

double *hg_tensor_f64(hg_tensor *t)
{
    return typed_w(t, HG_F64, "hg_tensor_f64");
}

float *hg_tensor_f32(hg_tensor *t)
{
    return typed_w(t, HG_F32, "hg_tensor_f32");
}

int32_t *hg_tensor_i32(hg_tensor *t)
{
    return typed_w(t, HG_I32, "hg_tensor_i32");
}

const double *hg_tensor_cf64(const hg_tensor *t)
{
    return typed(t, HG_F64, "hg_tensor_cf64");
}

const float *hg_tensor_cf32(const hg_tensor *t)
{
    return typed(t, HG_F32, "hg_tensor_cf32");
}

const int32_t *hg_tensor_ci32(const hg_tensor *t)
{
    return typed(t, HG_I32, "hg_tensor_ci32");
}

static double element(const hg_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case HG_F32: return ((const float *)t->data)[i];
    case HG_F64: return ((const double *)t->data)[i];
    case HG_I32: return ((const int32_t *)t->data)[i];
    }
    return NAN;
}

double hg_get(const hg_tensor *t, int64_t i)
{
    if (hg_tensor_check(t) != HG_OK)
        return NAN;
    if (i < 0 || i >= t->numel) {
        hg_set_error(t->ctx, HG_ERR_RANGE, "hg_get: index %lld outside [0, %lld)", (long long)i, (long long)t->numel);
        return NAN;
    }
    return element(t, i);
}

double hg_item(const hg_tensor *t)
{
    if (hg_tensor_check(t) != HG_OK)
        return NAN;
    if (t->numel != 1) {
        char s[160];
        hg_set_error(t->ctx, HG_ERR_SHAPE, "hg_item: tensor %s has %lld elements, not 1", HG_SHAPE(t, s),
                     (long long)t->numel);
        return NAN;
    }
    return element(t, 0);
}
