/* sum_to, broadcast and permute loops. Each first collapses the shapes:
 * unit axes are dropped and neighbouring axes that behave alike are merged,
 * so the common cases ([n,m] <-> [m], [n,m] <-> [n,1], whole-tensor sums,
 * 2-D transposes) reach one or two plain contiguous loops. */
#include "layout.h"

#include <string.h>

/* Odometer over up to HG_MAX_RANK axes with two offsets (x and out). */
typedef struct odo {
    int n;
    int64_t ext[HG_MAX_RANK];
    int64_t sx[HG_MAX_RANK], so[HG_MAX_RANK];
    int64_t idx[HG_MAX_RANK];
    int64_t ox, oo;
} odo;

static void odo_reset(odo *o)
{
    memset(o->idx, 0, sizeof o->idx);
    o->ox = o->oo = 0;
}

/* Advance; false after the last position (offsets are back at 0 then). */
static inline bool odo_next(odo *o)
{
    for (int d = o->n - 1; d >= 0; d--) {
        o->ox += o->sx[d];
        o->oo += o->so[d];
        if (++o->idx[d] < o->ext[d])
            return true;
        o->ox -= o->sx[d] * o->ext[d];
        o->oo -= o->so[d] * o->ext[d];
        o->idx[d] = 0;
    }
    return false;
}

/* ---- collapsing a big shape against a small one (broadcast pairs) ------- */

/* big's axes, unit axes dropped, runs of kept (small has the extent) or
 * spread (small has 1 or nothing) axes merged. Strides are in elements:
 * big[] of the contiguous big tensor, small[] of the small one (0 when
 * spread). */
typedef struct pair_axes {
    int n;
    int64_t ext[HG_MAX_RANK];
    bool keep[HG_MAX_RANK];
    int64_t big[HG_MAX_RANK], small[HG_MAX_RANK];
} pair_axes;

static void collapse_pair(pair_axes *a, int rb, const int64_t *big, int rs, const int64_t *small)
{
    a->n = 0;
    for (int i = 0; i < rb; i++) {
        int j = i - (rb - rs);
        int64_t s = j >= 0 ? small[j] : 1;
        if (big[i] == 1)
            continue;
        bool keep = s == big[i];
        if (a->n > 0 && a->keep[a->n - 1] == keep) {
            a->ext[a->n - 1] *= big[i];
        } else {
            a->ext[a->n] = big[i];
            a->keep[a->n] = keep;
            a->n++;
        }
    }
    int64_t sb = 1, ss = 1;
    for (int d = a->n - 1; d >= 0; d--) {
        a->big[d] = sb;
        sb *= a->ext[d];
        a->small[d] = a->keep[d] ? ss : 0;
        if (a->keep[d])
            ss *= a->ext[d];
    }
}

/* Odometer over axes [0, n) of a whose keep flag equals `keep`. */
static void odo_subset(odo *o, const pair_axes *a, int n, bool keep)
{
    o->n = 0;
    for (int d = 0; d < n; d++)
        if (a->keep[d] == keep) {
            o->ext[o->n] = a->ext[d];
            o->sx[o->n] = a->big[d];
            o->so[o->n] = a->small[d];
            o->n++;
        }
    odo_reset(o);
}

/* ---- sum_to ----------------------------------------------------------- */

/* Columns summed per pass when the last axis is kept (a 16 KiB block of
 * double accumulators on the stack): up to this width the reduced rows are
 * streamed once, in order. */
#define SUM_BLOCK 2048

#define DEFINE_SUM_TO(T)                                                                                  \
    static double sum_row_##T(const T *x, int64_t n)                                                      \
    {                                                                                                     \
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                                            \
        int64_t i = 0;                                                                                    \
        for (; i + 4 <= n; i += 4) {                                                                      \
            s0 += x[i];                                                                                   \
            s1 += x[i + 1];                                                                               \
            s2 += x[i + 2];                                                                               \
            s3 += x[i + 3];                                                                               \
        }                                                                                                 \
        for (; i < n; i++)                                                                                \
            s0 += x[i];                                                                                   \
        return (s0 + s1) + (s2 + s3);                                                                     \
    }                                                                                                     \
    /* acc[j] += sum of the nr (1..4) rows, one load-store of acc per 4 rows. */                          \
    static void add_rows_##T(double *restrict acc, const T *const *rows, int nr, int64_t nb)              \
    {                                                                                                     \
        const T *restrict r0 = rows[0], *restrict r1 = rows[nr > 1], *restrict r2 = rows[nr > 2 ? 2 : 0], \
                          *restrict r3 = rows[nr > 3 ? 3 : 0];                                            \
        switch (nr) {                                                                                     \
        case 4:                                                                                           \
            for (int64_t j = 0; j < nb; j++)                                                              \
                acc[j] += ((double)r0[j] + (double)r1[j]) + ((double)r2[j] + (double)r3[j]);              \
            break;                                                                                        \
        case 3:                                                                                           \
            for (int64_t j = 0; j < nb; j++)                                                              \
                acc[j] += ((double)r0[j] + (double)r1[j]) + (double)r2[j];                                \
            break;                                                                                        \
        case 2:                                                                                           \
            for (int64_t j = 0; j < nb; j++)                                                              \
                acc[j] += (double)r0[j] + (double)r1[j];                                                  \
            break;                                                                                        \
        default:                                                                                          \
            for (int64_t j = 0; j < nb; j++)                                                              \
                acc[j] += r0[j];                                                                          \
        }                                                                                                 \
    }                                                                                                     \
    static void sum_to_##T(T *out, const T *x, const pair_axes *a)                                        \
    {                                                                                                     \
        int last = a->n - 1;                                                                              \
        odo kept, spread;                                                                                 \
        odo_subset(&kept, a, last, true);                                                                 \
        odo_subset(&spread, a, last, false);                                                              \
        int64_t len = a->ext[last];                                                                       \
        if (a->keep[last]) {                                                                              \
            /* out rows of len += x rows, accumulated in double per block. */                             \
            double acc[SUM_BLOCK];                                                                        \
            do {                                                                                          \
                for (int64_t j0 = 0; j0 < len; j0 += SUM_BLOCK) {                                         \
                    int64_t nb = len - j0 < SUM_BLOCK ? len - j0 : SUM_BLOCK;                             \
                    for (int64_t j = 0; j < nb; j++)                                                      \
                        acc[j] = 0;                                                                       \
                    const T *rows[4];                                                                     \
                    int nr = 0;                                                                           \
                    bool more;                                                                            \
                    do {                                                                                  \
                        rows[nr++] = x + kept.ox + spread.ox + j0;                                        \
                        more = odo_next(&spread);                                                         \
                        if (nr == 4 || !more) {                                                           \
                            add_rows_##T(acc, rows, nr, nb);                                              \
                            nr = 0;                                                                       \
                        }                                                                                 \
                    } while (more);                                                                       \
                    T *o = out + kept.oo + j0;                                                            \
                    for (int64_t j = 0; j < nb; j++)                                                      \
                        o[j] = (T)acc[j];                                                                 \
                }                                                                                         \
            } while (odo_next(&kept));                                                                    \
        } else {                                                                                          \
            /* one out element per kept position: sums of contiguous rows. */                             \
            do {                                                                                          \
                double acc = 0;                                                                           \
                do                                                                                        \
                    acc += sum_row_##T(x + kept.ox + spread.ox, len);                                     \
                while (odo_next(&spread));                                                                \
                out[kept.oo] = (T)acc;                                                                    \
            } while (odo_next(&kept));                                                                    \
        }                                                                                                 \
    }

DEFINE_SUM_TO(float)
DEFINE_SUM_TO(double)

void hg_layout_sum_to(hg_tensor *out, const hg_tensor *x)
{
    size_t es = hg_dtype_size(out->dtype);
    if (x->numel == 0) {
        if (out->numel)
            memset(out->data, 0, (size_t)out->numel * es);
        return;
    }
    pair_axes a;
    collapse_pair(&a, x->rank, x->shape, out->rank, out->shape);
    if (a.n == 0 || (a.n == 1 && a.keep[0])) {
        memcpy(out->data, x->data, (size_t)x->numel * es);
        return;
    }
    if (out->dtype == HG_F32)
        sum_to_float(out->data, x->data, &a);
    else
        sum_to_double(out->data, x->data, &a);
}

/* ---- broadcast ---------------------------------------------------------- */

#define DEFINE_FILL(T)                         \
    static void fill_##T(T *o, T v, int64_t n) \
    {                                          \
        for (int64_t i = 0; i < n; i++)        \
            o[i] = v;                          \
    }
DEFINE_FILL(uint32_t)
DEFINE_FILL(uint64_t)

void hg_layout_broadcast(hg_tensor *out, const hg_tensor *x)
{
    size_t es = hg_dtype_size(out->dtype);
    if (out->numel == 0)
        return;
    pair_axes a;
    collapse_pair(&a, out->rank, out->shape, x->rank, x->shape);
    if (a.n == 0 || (a.n == 1 && a.keep[0])) {
        memcpy(out->data, x->data, (size_t)out->numel * es);
        return;
    }
    /* Walk out's rows in order; x's offset follows with stride 0 on the
     * spread axes. */
    int last = a.n - 1;
    odo o = {.n = last};
    for (int d = 0; d < last; d++) {
        o.ext[d] = a.ext[d];
        o.sx[d] = a.small[d];
        o.so[d] = a.big[d];
    }
    odo_reset(&o);
    int64_t len = a.ext[last];
    unsigned char *dst = out->data;
    const unsigned char *src = x->data;
    if (a.keep[last]) {
        do
            memcpy(dst + (size_t)o.oo * es, src + (size_t)o.ox * es, (size_t)len * es);
        while (odo_next(&o));
    } else if (es == 4) {
        do
            fill_uint32_t((uint32_t *)out->data + o.oo, ((const uint32_t *)x->data)[o.ox], len);
        while (odo_next(&o));
    } else {
        do
            fill_uint64_t((uint64_t *)out->data + o.oo, ((const uint64_t *)x->data)[o.ox], len);
        while (odo_next(&o));
    }
}

/* ---- permute ------------------------------------------------------------ */

#define TILE 16

/* out (contiguous [.., r, .., c]) with out stride os_r on axis r and 1 on c;
 * x stride 1 on r and xs_c on c: a tiled transpose of one [nr, nc] block. */
#define DEFINE_TRANSPOSE(T)                                                                                           \
    static void transpose_##T(T *restrict o, const T *restrict x, int64_t nr, int64_t nc, int64_t os_r, int64_t xs_c) \
    {                                                                                                                 \
        for (int64_t r0 = 0; r0 < nr; r0 += TILE)                                                                     \
            for (int64_t c0 = 0; c0 < nc; c0 += TILE) {                                                               \
                int64_t r1 = r0 + TILE < nr ? r0 + TILE : nr, c1 = c0 + TILE < nc ? c0 + TILE : nc;                   \
                for (int64_t r = r0; r < r1; r++)                                                                     \
                    for (int64_t c = c0; c < c1; c++)                                                                 \
                        o[r * os_r + c] = x[r + c * xs_c];                                                            \
            }                                                                                                         \
    }
DEFINE_TRANSPOSE(uint32_t)
DEFINE_TRANSPOSE(uint64_t)

void hg_layout_permute(hg_tensor *out, const hg_tensor *x, const int *perm)
{
    size_t es = hg_dtype_size(x->dtype);
    if (out->numel == 0)
        return;
    /* Non-unit input axes, renumbered 0..q-1. */
    int map[HG_MAX_RANK], q = 0;
    int64_t e[HG_MAX_RANK];
    for (int i = 0; i < x->rank; i++) {
        map[i] = x->shape[i] == 1 ? -1 : q;
        if (x->shape[i] != 1)
            e[q++] = x->shape[i];
    }
    int64_t xstride[HG_MAX_RANK], s = 1;
    for (int i = q - 1; i >= 0; i--) {
        xstride[i] = s;
        s *= e[i];
    }
    /* Output axes in order, merged while they read consecutive input axes:
     * group g has extent ext[g] and x stride sx[g] (of its last axis). */
    int ng = 0, prev = -2;
    int64_t ext[HG_MAX_RANK], sx[HG_MAX_RANK], so[HG_MAX_RANK];
    for (int d = 0; d < out->rank; d++) {
        int k = map[perm[d]];
        if (k < 0)
            continue;
        if (k == prev + 1) {
            ext[ng - 1] *= e[k];
            sx[ng - 1] = xstride[k];
        } else {
            ext[ng] = e[k];
            sx[ng] = xstride[k];
            ng++;
        }
        prev = k;
    }
    if (ng <= 1) {
        memcpy(out->data, x->data, (size_t)out->numel * es);
        return;
    }
    s = 1;
    for (int g = ng - 1; g >= 0; g--) {
        so[g] = s;
        s *= ext[g];
    }
    unsigned char *dst = out->data;
    const unsigned char *src = x->data;
    int last = ng - 1;
    odo o;
    if (sx[last] == 1) {
        /* The last axis stays last: copy rows. */
        o.n = last;
        for (int g = 0; g < last; g++) {
            o.ext[g] = ext[g];
            o.sx[g] = sx[g];
            o.so[g] = so[g];
        }
        odo_reset(&o);
        do
            memcpy(dst + (size_t)o.oo * es, src + (size_t)o.ox * es, (size_t)ext[last] * es);
        while (odo_next(&o));
        return;
    }
    /* Batched transposes between the group that reads x contiguously (r) and
     * the last output group (c); the other groups index the batch. */
    int r = 0;
    while (sx[r] != 1)
        r++;
    o.n = 0;
    for (int g = 0; g < last; g++)
        if (g != r) {
            o.ext[o.n] = ext[g];
            o.sx[o.n] = sx[g];
            o.so[o.n] = so[g];
            o.n++;
        }
    odo_reset(&o);
    do {
        if (es == 4)
            transpose_uint32_t((uint32_t *)out->data + o.oo, (const uint32_t *)x->data + o.ox, ext[r], ext[last], so[r],
                               sx[last]);
        else
            transpose_uint64_t((uint64_t *)out->data + o.oo, (const uint64_t *)x->data + o.ox, ext[r], ext[last], so[r],
                               sx[last]);
    } while (odo_next(&o));
}
