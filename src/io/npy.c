/* NumPy .npy files: a small strict header parser and writer. Nothing in the
 * header is trusted: every count is checked against the bytes present. */
#include "file.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest file read: 16 GiB (less where size_t is smaller). */
#define NPY_MAX_FILE (SIZE_MAX / 4 < ((uint64_t)1 << 34) ? SIZE_MAX / 4 : (size_t)((uint64_t)1 << 34))

typedef struct npy_header {
    hg_npy_type type;
    int fortran;
    int rank;
    int64_t shape[HG_MAX_RANK];
} npy_header;

typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_space(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static bool eat(cursor *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* A quoted string into out (at most size-1 chars). */
static bool parse_string(cursor *c, char *out, size_t size)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return false;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (n + 1 >= size || *c->p == '\0')
            return false;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return false;
    c->p++;
    out[n] = '\0';
    return true;
}

static bool parse_word(cursor *c, const char *word)
{
    skip_space(c);
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, word, n) == 0) {
        c->p += n;
        return true;
    }
    return false;
}

static bool parse_shape(cursor *c, npy_header *h)
{
    if (!eat(c, '('))
        return false;
    h->rank = 0;
    for (;;) {
        skip_space(c);
        if (eat(c, ')'))
            return true;
        if (h->rank == HG_MAX_RANK || c->p >= c->end || !isdigit((unsigned char)*c->p))
            return false;
        int64_t v = 0;
        while (c->p < c->end && isdigit((unsigned char)*c->p)) {
            if (v > (INT64_MAX - 9) / 10)
                return false;
            v = v * 10 + (*c->p++ - '0');
        }
        if (c->p < c->end && *c->p == 'L') /* Python 2 longs */
            c->p++;
        h->shape[h->rank++] = v;
        if (!eat(c, ',')) {
            return eat(c, ')');
        }
    }
}

static bool parse_descr(const char *d, hg_npy_type *t)
{
    static const struct {
        const char *name;
        hg_npy_type type;
    } known[] = {{"<f4", HG_NPY_F32}, {"<f8", HG_NPY_F64}, {"<i4", HG_NPY_I32},
                 {"<i8", HG_NPY_I64}, {"|u1", HG_NPY_U8},  {"<u1", HG_NPY_U8}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(d, known[i].name) == 0) {
            *t = known[i].type;
            return true;
        }
    return false;
}

static hg_status parse_header(hg_ctx *ctx, const char *text, size_t len, npy_header *h)
{
    /* NUL may only pad the end (after the dict); inside the dict it would
     * cut strings short ('<f8\0junk' read as '<f8'). */
    const char *nul = memchr(text, '\0', len), *close = nul ? memchr(text, '}', (size_t)(nul - text)) : NULL;
    if (nul) {
        bool padding = close != NULL;
        for (const char *q = nul; padding && q < text + len; q++)
            padding = *q == '\0' || *q == ' ' || *q == '\n';
        if (!padding)
            return hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: NUL byte at offset %zu inside the header dict",
                                (size_t)(nul - text));
    }
    cursor c = {text, text + len};
    bool have_descr = false, have_order = false, have_shape = false;
    if (!eat(&c, '{'))
        return hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: header is not a dict");
    while (!eat(&c, '}')) {
        char key[32], descr[32];
        if (!parse_string(&c, key, sizeof key) || !eat(&c, ':'))
            return hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: malformed header dict");
        if (strcmp(key, "descr") == 0 && !have_descr) {
            if (!parse_string(&c, descr, sizeof descr))
                return hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: malformed descr");
            if (!parse_descr(descr, &h->type))
                return hg_set_error(ctx, HG_ERR_FORMAT,
                                    "hg_npy_load: unsupported dtype '%s' (supported: <f4 <f8 <i4 <i8 |u1)", descr);
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
            if (parse_word(&c, "True"))
                h->fortran = 1;
            else if (parse_word(&c, "False"))
                h->fortran = 0;
            else
                return hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: malformed fortran_order");
            have_order = true;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            if (!parse_shape(&c, h))
                return hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: malformed shape or rank above %d", HG_MAX_RANK);
            have_shape = true;
        } else {
            return hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: unexpected or repeated key '%s'", key);
        }
        if (!eat(&c, ',')) {
            if (!eat(&c, '}'))
                return hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: malformed header dict");
            break;
        }
    }
    /* Only padding may follow. */
    while (c.p < c.end && (*c.p == ' ' || *c.p == '\n' || *c.p == '\0'))
        c.p++;
    if (c.p != c.end)
        return hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: garbage after the header dict");
    if (!have_descr || !have_order || !have_shape)
        return hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: header lacks descr, fortran_order or shape");
    if (h->fortran)
        return hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: Fortran-order arrays are not supported");
    return HG_OK;
}

static size_t npy_itemsize(hg_npy_type t)
{
    switch (t) {
    case HG_NPY_F32: return 4;
    case HG_NPY_F64: return 8;
    case HG_NPY_I32: return 4;
    case HG_NPY_I64: return 8;
    case HG_NPY_U8: return 1;
    }
    return 0;
}

static uint64_t read_le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void write_le(unsigned char *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static bool host_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Converts n elements of on-disk type `type` at d into t's data from
 * element `at` on. */
static hg_status convert(hg_ctx *ctx, hg_tensor *t, hg_npy_type type, const unsigned char *d, uint64_t at, size_t n)
{
    size_t isz = npy_itemsize(type);
    for (size_t k = 0; k < n; k++) {
        uint64_t i = at + k;
        uint64_t raw = read_le(d + k * isz, isz);
        switch (type) {
        case HG_NPY_F32: {
            uint32_t u = (uint32_t)raw;
            memcpy((float *)t->data + i, &u, 4);
            break;
        }
        case HG_NPY_F64: memcpy((double *)t->data + i, &raw, 8); break;
        case HG_NPY_I32: ((int32_t *)t->data)[i] = (int32_t)(uint32_t)raw; break;
        case HG_NPY_I64: {
            int64_t v = (int64_t)raw;
            if (v < INT32_MIN || v > INT32_MAX)
                return hg_set_error(ctx, HG_ERR_RANGE, "hg_npy_load: int64 value %lld at %llu does not fit in i32",
                                    (long long)v, (unsigned long long)i);
            ((int32_t *)t->data)[i] = (int32_t)v;
            break;
        }
        case HG_NPY_U8: ((int32_t *)t->data)[i] = (int32_t)raw; break;
        }
    }
    return HG_OK;
}

/* Header, then the data straight into the tensor (through an 8 KiB block
 * where it must be converted). Every size is checked against s->size before
 * anything is allocated. */
static hg_tensor *npy_read(hg_ctx *ctx, hg_src *s)
{
    unsigned char pre[12];
    uint64_t len = s->size;
    if (len < 10 || hg_src_read(s, pre, 10) != HG_OK || memcmp(pre, "\x93NUMPY", 6) != 0) {
        hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: not a .npy file (bad magic or too short)");
        return NULL;
    }
    int major = pre[6];
    uint64_t hlen, start;
    if (major == 1) {
        hlen = read_le(pre + 8, 2);
        start = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12 || hg_src_read(s, pre + 10, 2) != HG_OK) {
            hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: truncated header");
            return NULL;
        }
        hlen = read_le(pre + 8, 4);
        start = 12;
    } else {
        hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: unsupported format version %d.%d", major, pre[7]);
        return NULL;
    }
    if (hlen > len - start) {
        hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: header length %llu runs past the end (%llu bytes)",
                     (unsigned long long)hlen, (unsigned long long)len);
        return NULL;
    }
    /* hlen <= len, and len fits in size_t (a buffer, or a file below
     * NPY_MAX_FILE). A large header (format 2.0 allows 4 GiB) is a
     * temporary buffer charged to the ctx. */
    char small[4096];
    char *text = hlen <= sizeof small ? small : hg_temp_alloc(ctx, (size_t)hlen);
    if (!text) {
        hg_set_error(ctx, HG_ERR_OOM, "hg_npy_load: out of memory for a header of %llu bytes",
                     (unsigned long long)hlen);
        return NULL;
    }
    npy_header h;
    memset(&h, 0, sizeof h);
    hg_status st = hg_src_read(s, text, (size_t)hlen);
    if (st == HG_OK)
        st = parse_header(ctx, text, (size_t)hlen, &h);
    if (text != small)
        hg_temp_free(ctx, text, (size_t)hlen);
    if (st != HG_OK)
        return NULL;
    uint64_t numel = 1;
    for (int i = 0; i < h.rank; i++) {
        if (h.shape[i] && numel > UINT64_MAX / 16 / (uint64_t)h.shape[i]) {
            hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: shape overflows");
            return NULL;
        }
        numel *= (uint64_t)h.shape[i];
    }
    size_t isz = npy_itemsize(h.type);
    uint64_t data_len = len - start - hlen;
    if (numel > data_len / isz || numel * isz != data_len) {
        hg_set_error(ctx, HG_ERR_FORMAT, "hg_npy_load: data is %llu bytes, the header says %llu elements of %zu bytes",
                     (unsigned long long)data_len, (unsigned long long)numel, isz);
        return NULL;
    }
    hg_dtype dt = h.type == HG_NPY_F32 ? HG_F32 : h.type == HG_NPY_F64 ? HG_F64 : HG_I32;
    hg_tensor *t = hg_tensor_alloc(ctx, "hg_npy_load", dt, h.rank, h.shape);
    if (!t)
        return NULL;
    if (host_little_endian() && (h.type == HG_NPY_F32 || h.type == HG_NPY_F64 || h.type == HG_NPY_I32)) {
        /* Same layout as ours. */
        if (numel && hg_src_read(s, t->data, (size_t)(numel * isz)) != HG_OK)
            return NULL;
        return t;
    }
    unsigned char block[8192];
    for (uint64_t i = 0; i < numel;) {
        size_t n = numel - i < sizeof block / isz ? (size_t)(numel - i) : sizeof block / isz;
        if (hg_src_read(s, block, n * isz) != HG_OK || convert(ctx, t, h.type, block, i, n) != HG_OK)
            return NULL;
        i += n;
    }
    return t;
}

hg_tensor *hg_npy_load_buffer(hg_ctx *ctx, const void *buffer, size_t len)
{
    if (!ctx)
        return NULL;
    if (!buffer) {
        hg_set_error(ctx, HG_ERR_NULL, "hg_npy_load: buffer is NULL");
        return NULL;
    }
    hg_src s;
    hg_src_memory(&s, ctx, "hg_npy_load", buffer, len);
    return npy_read(ctx, &s);
}

hg_tensor *hg_npy_load(hg_ctx *ctx, const char *path)
{
    if (!ctx)
        return NULL;
    hg_status before = ctx->status;
    hg_src s;
    if (hg_src_open(&s, ctx, "hg_npy_load", path, NPY_MAX_FILE) != HG_OK)
        return NULL;
    hg_tensor *t = npy_read(ctx, &s);
    hg_src_close(&s);
    if (!t)
        hg_error_name_file(ctx, before, path);
    return t;
}

static const char *npy_descr(hg_npy_type t)
{
    switch (t) {
    case HG_NPY_F32: return "<f4";
    case HG_NPY_F64: return "<f8";
    case HG_NPY_I32: return "<i4";
    case HG_NPY_I64: return "<i8";
    case HG_NPY_U8: return "|u1";
    }
    return "?";
}

hg_status hg_npy_save_as(const char *path, const hg_tensor *t, hg_npy_type type)
{
    if (hg_tensor_check(t) != HG_OK)
        return hg_tensor_check(t);
    hg_ctx *ctx = t->ctx;
    if (!path)
        return hg_set_error(ctx, HG_ERR_NULL, "hg_npy_save: path is NULL");
    bool float_ok = hg_is_float(t->dtype) && (type == HG_NPY_F32 || type == HG_NPY_F64);
    bool int_ok = t->dtype == HG_I32 && (type == HG_NPY_I32 || type == HG_NPY_I64 || type == HG_NPY_U8);
    if (!float_ok && !int_ok)
        return hg_set_error(ctx, HG_ERR_DTYPE, "hg_npy_save: cannot write an %s tensor as %s", hg_dtype_name(t->dtype),
                            npy_descr(type));
    if (type == HG_NPY_U8)
        for (int64_t i = 0; i < t->numel; i++)
            if (((const int32_t *)t->data)[i] < 0 || ((const int32_t *)t->data)[i] > 255)
                return hg_set_error(ctx, HG_ERR_RANGE, "hg_npy_save: value %d at %lld does not fit in u8",
                                    ((const int32_t *)t->data)[i], (long long)i);
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", npy_descr(type));
    for (int i = 0; i < t->rank; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)t->shape[i], i + 1 < t->rank ? " " : "");
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    /* Pad with spaces and a newline so the data starts 64-byte aligned. (At
     * most 52 + 6 * 21 + 4 characters: dict never truncates, head fits.) */
    size_t total = 10 + (size_t)n + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t hlen = padded - 10;
    unsigned char head[10 + sizeof dict + 64];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    write_le(head + 8, hlen, 2);
    memcpy(head + 10, dict, (size_t)n);
    memset(head + 10 + n, ' ', hlen - (size_t)n - 1);
    head[10 + hlen - 1] = '\n';
    hg_status st;
    hg_atomic_file *af = hg_atomic_open_as(ctx, "hg_npy_save", path, &st);
    if (!af)
        return st;
    FILE *f = hg_atomic_stream(af);
    bool ok = fwrite(head, 1, padded, f) == padded;
    size_t isz = npy_itemsize(type);
    bool same = (t->dtype == HG_F32 && type == HG_NPY_F32) || (t->dtype == HG_F64 && type == HG_NPY_F64) ||
                (t->dtype == HG_I32 && type == HG_NPY_I32);
    if (same && host_little_endian()) {
        size_t bytes = (size_t)t->numel * isz;
        ok = ok && fwrite(t->data, 1, bytes, f) == bytes;
    } else {
        /* Convert through a block buffer (one fwrite per 8 KiB). */
        unsigned char block[8192];
        size_t used = 0;
        for (int64_t i = 0; ok && i < t->numel; i++) {
            uint64_t raw = 0;
            if (t->dtype == HG_F32 || t->dtype == HG_F64) {
                double v = t->dtype == HG_F32 ? ((const float *)t->data)[i] : ((const double *)t->data)[i];
                if (type == HG_NPY_F32) {
                    float fv = (float)v;
                    uint32_t u;
                    memcpy(&u, &fv, 4);
                    raw = u;
                } else {
                    memcpy(&raw, &v, 8);
                }
            } else {
                raw = (uint64_t)(int64_t)((const int32_t *)t->data)[i];
            }
            write_le(block + used, raw, isz);
            used += isz;
            if (used + 8 > sizeof block || i + 1 == t->numel) {
                ok = fwrite(block, 1, used, f) == used;
                used = 0;
            }
        }
    }
    if (!ok) {
        int e = errno;
        hg_atomic_abort(af); /* removes only the temporary file */
        return hg_set_error(ctx, HG_ERR_IO, "hg_npy_save: write to %s failed (%s); it is unchanged", path, strerror(e));
    }
    return hg_atomic_commit(af);
}

hg_status hg_npy_save(const char *path, const hg_tensor *t)
{
    if (hg_tensor_check(t) != HG_OK)
        return hg_tensor_check(t);
    hg_npy_type type = t->dtype == HG_F32 ? HG_NPY_F32 : t->dtype == HG_F64 ? HG_NPY_F64 : HG_NPY_I32;
    return hg_npy_save_as(path, t, type);
}
