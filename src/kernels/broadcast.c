/* Strided iteration with broadcasting, and the elementwise loops. Loops are
 * written per dtype by macros so that each one is a plain, vectorisable
 * loop over contiguous or scalar operands. */
#include "kernels.h"

#include <math.h>
#include <string.h>

void hg_iter_init(hg_iter *it, int rank, const int64_t *shape, int n_ops, const hg_tensor *const *ops)
{
    int64_t st[HG_ITER_MAX_OPS][HG_MAX_RANK];
    for (int k = 0; k < n_ops; k++) {
        const hg_tensor *t = ops[k];
        int64_t s = 1;
        for (int d = rank - 1; d >= 0; d--) {
            int td = d - (rank - t->rank);
            int64_t extent = td >= 0 ? t->shape[td] : 1;
            st[k][d] = extent == 1 ? 0 : s;
            s *= extent;
        }
    }
    /* Drop unit axes, then merge axes contiguous for every operand. */
    it->rank = 0;
    it->n_ops = n_ops;
    for (int d = 0; d < rank; d++) {
        if (shape[d] == 1)
            continue;
        int r = it->rank;
        bool merge = r > 0;
        for (int k = 0; merge && k < n_ops; k++)
            merge = it->stride[k][r - 1] == st[k][d] * shape[d];
        if (merge) {
            it->shape[r - 1] *= shape[d];
            for (int k = 0; k < n_ops; k++)
                it->stride[k][r - 1] = st[k][d];
        } else {
            it->shape[r] = shape[d];
            for (int k = 0; k < n_ops; k++)
                it->stride[k][r] = st[k][d];
            it->rank++;
        }
    }
}

void hg_iter_rows(const hg_iter *it, hg_row_fn row, void *user)
{
    int64_t off[HG_ITER_MAX_OPS] = {0}, inner[HG_ITER_MAX_OPS] = {0};
    if (it->rank == 0) {
        row(user, off, inner, 1);
        return;
    }
    for (int d = 0; d < it->rank; d++)
        if (it->shape[d] == 0)
            return;
    int last = it->rank - 1;
    for (int k = 0; k < it->n_ops; k++)
        inner[k] = it->stride[k][last];
    int64_t idx[HG_MAX_RANK] = {0};
    for (;;) {
        row(user, off, inner, it->shape[last]);
        int d = last - 1;
        for (; d >= 0; d--) {
            for (int k = 0; k < it->n_ops; k++)
                off[k] += it->stride[k][d];
            if (++idx[d] < it->shape[d])
                break;
            for (int k = 0; k < it->n_ops; k++)
                off[k] -= it->stride[k][d] * it->shape[d];
            idx[d] = 0;
        }
        if (d < 0)
            return;
    }
}

/* ---- binary ---------------------------------------------------------- */

typedef struct binary_job {
    hg_binary_kind kind;
    void *out;
    const void *a, *b;
} binary_job;

#define BIN_ADD(x, y) ((x) + (y))
#define BIN_SUB(x, y) ((x) - (y))
#define BIN_MUL(x, y) ((x) * (y))
#define BIN_DIV(x, y) ((x) / (y))
#define BIN_MAX(x, y) ((x) >= (y) || (x) != (x) ? (x) : (y))
#define BIN_MIN(x, y) ((x) <= (y) || (x) != (x) ? (x) : (y))
#define BIN_GT(x, y) ((x) > (y) ? 1 : 0)
#define BIN_GE(x, y) ((x) >= (y) ? 1 : 0)

/* One row: strides are 0 (broadcast scalar) or 1 (contiguous) for a row of
 * a contiguous tensor, which gives three vectorisable cases. */
#define DEFINE_BINARY_ROW(T, OP)                                                                                   \
    static void row_##OP##_##T(T *restrict o, const T *restrict a, int64_t sa, const T *restrict b, int64_t sb,    \
                               int64_t n)                                                                          \
    {                                                                                                              \
        if (sa == 1 && sb == 1) {                                                                                  \
            for (int64_t i = 0; i < n; i++)                                                                        \
                o[i] = (T)OP(a[i], b[i]);                                                                          \
        } else if (sa == 1) {                                                                                      \
            const T y = b[0];                                                                                      \
            for (int64_t i = 0; i < n; i++)                                                                        \
                o[i] = (T)OP(a[i], y);                                                                             \
        } else if (sb == 1) {                                                                                      \
            const T x = a[0];                                                                                      \
            for (int64_t i = 0; i < n; i++)                                                                        \
                o[i] = (T)OP(x, b[i]);                                                                             \
        } else {                                                                                                   \
            const T v = (T)OP(a[0], b[0]);                                                                         \
            for (int64_t i = 0; i < n; i++)                                                                        \
                o[i] = v;                                                                                          \
        }                                                                                                          \
    }

#define DEFINE_BINARY_ROWS(T)                                                                                      \
    DEFINE_BINARY_ROW(T, BIN_ADD)                                                                                  \
    DEFINE_BINARY_ROW(T, BIN_SUB)                                                                                  \
    DEFINE_BINARY_ROW(T, BIN_MUL)                                                                                  \
    DEFINE_BINARY_ROW(T, BIN_DIV)                                                                                  \
    DEFINE_BINARY_ROW(T, BIN_MAX)                                                                                  \
    DEFINE_BINARY_ROW(T, BIN_MIN)                                                                                  \
    DEFINE_BINARY_ROW(T, BIN_GT)                                                                                   \
    DEFINE_BINARY_ROW(T, BIN_GE)                                                                                   \
    static void binary_row_##T(void *user, const int64_t *off, const int64_t *st, int64_t n)                       \
    {                                                                                                              \
        const binary_job *j = user;                                                                                \
        T *o = (T *)j->out + off[0];                                                                               \
        const T *a = (const T *)j->a + off[1], *b = (const T *)j->b + off[2];                                      \
        switch (j->kind) {                                                                                         \
        case HG_BIN_ADD: row_BIN_ADD_##T(o, a, st[1], b, st[2], n); break;                                         \
        case HG_BIN_SUB: row_BIN_SUB_##T(o, a, st[1], b, st[2], n); break;                                         \
        case HG_BIN_MUL: row_BIN_MUL_##T(o, a, st[1], b, st[2], n); break;                                         \
        case HG_BIN_DIV: row_BIN_DIV_##T(o, a, st[1], b, st[2], n); break;                                         \
        case HG_BIN_MAX: row_BIN_MAX_##T(o, a, st[1], b, st[2], n); break;                                         \
        case HG_BIN_MIN: row_BIN_MIN_##T(o, a, st[1], b, st[2], n); break;                                         \
        case HG_BIN_GT: row_BIN_GT_##T(o, a, st[1], b, st[2], n); break;                                           \
        case HG_BIN_GE: row_BIN_GE_##T(o, a, st[1], b, st[2], n); break;                                           \
        }                                                                                                          \
    }

DEFINE_BINARY_ROWS(float)
DEFINE_BINARY_ROWS(double)

void hg_kernel_binary(hg_binary_kind kind, hg_tensor *out, const hg_tensor *a, const hg_tensor *b)
{
    const hg_tensor *ops[3] = {out, a, b};
    hg_iter it;
    hg_iter_init(&it, out->rank, out->shape, 3, ops);
    binary_job job = {kind, out->data, a->data, b->data};
    hg_iter_rows(&it, out->dtype == HG_F32 ? binary_row_float : binary_row_double, &job);
}

/* ---- where ----------------------------------------------------------- */

typedef struct where_job {
    void *out;
    const void *m, *a, *b;
} where_job;

#define DEFINE_WHERE_ROW(T)                                                                                        \
    static void where_row_##T(void *user, const int64_t *off, const int64_t *st, int64_t n)                        \
    {                                                                                                              \
        const where_job *j = user;                                                                                 \
        T *o = (T *)j->out + off[0];                                                                               \
        const T *m = (const T *)j->m + off[1], *a = (const T *)j->a + off[2], *b = (const T *)j->b + off[3];       \
        for (int64_t i = 0; i < n; i++)                                                                            \
            o[i] = m[i * st[1]] != 0 ? a[i * st[2]] : b[i * st[3]];                                                \
    }

DEFINE_WHERE_ROW(float)
DEFINE_WHERE_ROW(double)

void hg_kernel_where(hg_tensor *out, const hg_tensor *mask, const hg_tensor *a, const hg_tensor *b)
{
    const hg_tensor *ops[4] = {out, mask, a, b};
    hg_iter it;
    hg_iter_init(&it, out->rank, out->shape, 4, ops);
    where_job job = {out->data, mask->data, a->data, b->data};
    hg_iter_rows(&it, out->dtype == HG_F32 ? where_row_float : where_row_double, &job);
}

/* ---- unary ----------------------------------------------------------- */

#define DEFINE_UNARY(T, EXP, LOG, SQRT, TANH, POW, FABS)                                                           \
    static void unary_##T(hg_unary_kind kind, T p, T *restrict y, const T *restrict x, int64_t n)                  \
    {                                                                                                              \
        switch (kind) {                                                                                            \
        case HG_UN_NEG: for (int64_t i = 0; i < n; i++) y[i] = -x[i]; break;                                       \
        case HG_UN_SCALE: for (int64_t i = 0; i < n; i++) y[i] = p * x[i]; break;                                  \
        case HG_UN_ADD: for (int64_t i = 0; i < n; i++) y[i] = x[i] + p; break;                                    \
        case HG_UN_POW:                                                                                            \
            if (p == 2)                                                                                            \
                for (int64_t i = 0; i < n; i++) y[i] = x[i] * x[i];                                                \
            else                                                                                                   \
                for (int64_t i = 0; i < n; i++) y[i] = POW(x[i], p);                                               \
            break;                                                                                                 \
        case HG_UN_EXP: for (int64_t i = 0; i < n; i++) y[i] = EXP(x[i]); break;                                   \
        case HG_UN_LOG: for (int64_t i = 0; i < n; i++) y[i] = LOG(x[i]); break;                                   \
        case HG_UN_SQRT: for (int64_t i = 0; i < n; i++) y[i] = SQRT(x[i]); break;                                 \
        case HG_UN_TANH: for (int64_t i = 0; i < n; i++) y[i] = TANH(x[i]); break;                                 \
        case HG_UN_SIGMOID:                                                                                        \
            for (int64_t i = 0; i < n; i++) {                                                                      \
                /* stable on both tails */                                                                         \
                T e = EXP(-FABS(x[i]));                                                                            \
                y[i] = x[i] >= 0 ? 1 / (1 + e) : e / (1 + e);                                                      \
            }                                                                                                      \
            break;                                                                                                 \
        case HG_UN_RELU: for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0; break;                        \
        case HG_UN_ABS: for (int64_t i = 0; i < n; i++) y[i] = FABS(x[i]); break;                                  \
        case HG_UN_SIGN: for (int64_t i = 0; i < n; i++) y[i] = (T)((x[i] > 0) - (x[i] < 0)); break;               \
        case HG_UN_COPY: memcpy(y, x, (size_t)n * sizeof(T)); break;                                               \
        }                                                                                                          \
    }

DEFINE_UNARY(float, expf, logf, sqrtf, tanhf, powf, fabsf)
DEFINE_UNARY(double, exp, log, sqrt, tanh, pow, fabs)

void hg_kernel_unary(hg_unary_kind kind, double p, hg_tensor *out, const hg_tensor *x)
{
    if (out->dtype == HG_F32)
        unary_float(kind, (float)p, out->data, x->data, x->numel);
    else
        unary_double(kind, p, out->data, x->data, x->numel);
}

/* ---- sum_to and broadcast ---------------------------------------------- */

typedef struct copy_job {
    void *out;
    const void *x;
} copy_job;

/* Rows of the broadcast iteration over x's shape: out[...] += x[...]. */
#define DEFINE_ACCUMULATE_ROW(T)                                                                                   \
    static void accumulate_row_##T(void *user, const int64_t *off, const int64_t *st, int64_t n)                   \
    {                                                                                                              \
        const copy_job *j = user;                                                                                  \
        T *o = (T *)j->out + off[1];                                                                               \
        const T *x = (const T *)j->x + off[0];                                                                     \
        if (st[1] == 1) {                                                                                          \
            for (int64_t i = 0; i < n; i++)                                                                        \
                o[i] += x[i];                                                                                      \
        } else {                                                                                                   \
            double acc = 0;                                                                                        \
            for (int64_t i = 0; i < n; i++)                                                                        \
                acc += x[i];                                                                                       \
            o[0] += (T)acc;                                                                                        \
        }                                                                                                          \
    }                                                                                                              \
    static void broadcast_row_##T(void *user, const int64_t *off, const int64_t *st, int64_t n)                    \
    {                                                                                                              \
        const copy_job *j = user;                                                                                  \
        T *o = (T *)j->out + off[0];                                                                               \
        const T *x = (const T *)j->x + off[1];                                                                     \
        if (st[1] == 1) {                                                                                          \
            memcpy(o, x, (size_t)n * sizeof(T));                                                                   \
        } else {                                                                                                   \
            const T v = x[0];                                                                                      \
            for (int64_t i = 0; i < n; i++)                                                                        \
                o[i] = v;                                                                                          \
        }                                                                                                          \
    }

DEFINE_ACCUMULATE_ROW(float)
DEFINE_ACCUMULATE_ROW(double)

void hg_kernel_sum_to(hg_tensor *out, const hg_tensor *x)
{
    memset(out->data, 0, (size_t)out->numel * hg_dtype_size(out->dtype));
    const hg_tensor *ops[2] = {x, out};
    hg_iter it;
    hg_iter_init(&it, x->rank, x->shape, 2, ops);
    copy_job job = {out->data, x->data};
    hg_iter_rows(&it, out->dtype == HG_F32 ? accumulate_row_float : accumulate_row_double, &job);
}

void hg_kernel_broadcast(hg_tensor *out, const hg_tensor *x)
{
    const hg_tensor *ops[2] = {out, x};
    hg_iter it;
    hg_iter_init(&it, out->rank, out->shape, 2, ops);
    copy_job job = {out->data, x->data};
    hg_iter_rows(&it, out->dtype == HG_F32 ? broadcast_row_float : broadcast_row_double, &job);
}
