/* Tensor helpers outside the op set: a copy from another ctx, printing,
 * and the library's version. */
#include "internal.h"

#include <math.h>
#include <string.h>

hg_tensor *hg_tensor_copy_to(hg_ctx *ctx, const hg_tensor *t)
{
    if (!ctx)
        return NULL;
    hg_status s = hg_tensor_check(t);
    if (s == HG_ERR_NULL)
        return hg_set_error(ctx, s, "hg_tensor_copy_to: tensor argument is NULL"), NULL;
    if (s != HG_OK)
        return hg_set_error(ctx, s,
                            "hg_tensor_copy_to: tensor is stale (from a rewound or reset region) or not a "
                            "tensor"),
               NULL;
    hg_tensor *c = hg_tensor_alloc(ctx, "hg_tensor_copy_to", t->dtype, t->rank, t->shape);
    if (c && c->numel)
        memcpy(c->data, t->data, (size_t)c->numel * hg_dtype_size(c->dtype));
    return c;
}

/* ---- printing ----------------------------------------------------------- */

#define PRINT_THRESHOLD 1000

typedef struct printer {
    FILE *f;
    const hg_tensor *t;
    int64_t edge; /* 0: print everything */
    int64_t stride[HG_MAX_RANK];
    bool failed;
} printer;

static void put(printer *p, const char *s)
{
    if (fputs(s, p->f) == EOF)
        p->failed = true;
}

static void put_value(printer *p, int64_t i)
{
    char buf[64];
    double v;
    switch (p->t->dtype) {
    case HG_I32:
        snprintf(buf, sizeof buf, "%d", ((const int32_t *)p->t->data)[i]);
        put(p, buf);
        return;
    case HG_F32: v = ((const float *)p->t->data)[i]; break;
    default: v = ((const double *)p->t->data)[i]; break;
    }
    if (isnan(v))
        snprintf(buf, sizeof buf, "nan");
    else if (isinf(v))
        snprintf(buf, sizeof buf, v > 0 ? "inf" : "-inf");
    else
        snprintf(buf, sizeof buf, "%.6g", v);
    put(p, buf);
}

/* Axis d at flat offset off; indent is the column of its opening bracket. */
static void print_axis(printer *p, int d, int64_t off, int indent)
{
    const hg_tensor *t = p->t;
    if (d == t->rank) {
        put_value(p, off);
        return;
    }
    int64_t n = t->shape[d];
    bool cut = p->edge && n > 2 * p->edge;
    put(p, "[");
    for (int64_t i = 0; i < n; i++) {
        if (cut && i == p->edge) {
            put(p, "...");
            i = n - p->edge - 1;
            if (d + 1 < t->rank) {
                put(p, ",\n");
                for (int k = 0; k <= indent; k++)
                    put(p, " ");
            } else {
                put(p, ", ");
            }
            continue;
        }
        print_axis(p, d + 1, off + i * p->stride[d], indent + 1);
        if (i + 1 < n) {
            if (d + 1 < t->rank) {
                /* one blank line per extra level of nesting, as NumPy */
                put(p, ",\n");
                for (int k = d + 2; k < t->rank; k++)
                    put(p, "\n");
                for (int k = 0; k <= indent; k++)
                    put(p, " ");
            } else {
                put(p, ", ");
            }
        }
    }
    put(p, "]");
}

hg_status hg_tensor_print(FILE *f, const hg_tensor *t, int edgeitems)
{
    hg_status s = hg_tensor_check(t);
    if (s != HG_OK)
        return s;
    if (!f)
        return hg_set_error(t->ctx, HG_ERR_NULL, "hg_tensor_print: FILE is NULL");
    printer p = {f, t, 0, {0}, false};
    if (t->numel > PRINT_THRESHOLD)
        p.edge = edgeitems > 0 ? edgeitems : 3;
    int64_t st = 1;
    for (int d = t->rank - 1; d >= 0; d--) {
        p.stride[d] = st;
        st *= t->shape[d];
    }
    char desc[200];
    hg_tensor_describe(t, desc, sizeof desc);
    put(&p, desc);
    put(&p, "\n");
    print_axis(&p, 0, 0, 0);
    put(&p, "\n");
    if (p.failed || ferror(f))
        return hg_set_error(t->ctx, HG_ERR_IO, "hg_tensor_print: writing %s failed", desc);
    return HG_OK;
}

/* ---- version ------------------------------------------------------------ */

const char *hg_version(void)
{
    return HG_VERSION_STRING;
}

int hg_version_number(void)
{
    return HG_VERSION_NUMBER;
}
