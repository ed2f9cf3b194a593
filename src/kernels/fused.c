/* Fused elementwise loops of the optimizer-step ops (see fused.h). Plain
 * contiguous loops, compiled with AVX2/AVX-512 clones (HG_SIMD_CLONES); no
 * clone contracts into FMA (ISO C mode), so all give the same bits. */
#include "fused.h"
#include "../simd.h"

#include <math.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define DEFINE_FUSED(T, SQRT)                                                                                       \
    HG_SIMD_CLONES static void lincomb_##T(T *restrict y, const T *restrict x, const T *restrict z, int64_t n, T a, \
                                           T b)                                                                     \
    {                                                                                                               \
        for (int64_t i = 0; i < n; i++)                                                                             \
            y[i] = a * x[i] + b * z[i];                                                                             \
    }                                                                                                               \
    HG_SIMD_CLONES static void prod_##T(T *restrict y, const T *restrict z, const T *restrict w, int64_t n, T c)    \
    {                                                                                                               \
        for (int64_t i = 0; i < n; i++)                                                                             \
            y[i] = c * (z[i] * w[i]);                                                                               \
    }                                                                                                               \
    HG_SIMD_CLONES static void lincomb_prod_##T(T *restrict y, const T *restrict x, const T *restrict z,            \
                                                const T *restrict w, int64_t n, T a, T b)                           \
    {                                                                                                               \
        for (int64_t i = 0; i < n; i++)                                                                             \
            y[i] = a * x[i] + b * (z[i] * w[i]);                                                                    \
    }                                                                                                               \
    HG_SIMD_CLONES static void adam_update_##T(T *restrict y, const T *restrict p, const T *restrict m,             \
                                               const T *restrict v, int64_t n, T lr, T c1, T c2, T eps)             \
    {                                                                                                               \
        for (int64_t i = 0; i < n; i++)                                                                             \
            y[i] = p[i] - lr * ((m[i] * c1) / (SQRT(v[i] * c2) + eps));                                             \
    }                                                                                                               \
    HG_SIMD_CLONES static void adam_dm_##T(T *restrict y, const T *restrict g, const T *restrict v, int64_t n, T k, \
                                           T c2, T eps)                                                             \
    {                                                                                                               \
        for (int64_t i = 0; i < n; i++)                                                                             \
            y[i] = (k * g[i]) / (SQRT(v[i] * c2) + eps);                                                            \
    }                                                                                                               \
    HG_SIMD_CLONES static void adam_dv_##T(T *restrict y, const T *restrict g, const T *restrict m,                 \
                                           const T *restrict v, int64_t n, T k, T c2, T eps)                        \
    {                                                                                                               \
        for (int64_t i = 0; i < n; i++) {                                                                           \
            T s = SQRT(v[i] * c2);                                                                                  \
            T s_safe = s > 0 ? s : 1;                                                                               \
            T d = s_safe + eps;                                                                                     \
            T r = (k * (g[i] * m[i])) / ((d * d) * s_safe);                                                         \
            y[i] = s > 0 ? r : 0;                                                                                   \
        }                                                                                                           \
    }                                                                                                               \
    HG_SIMD_CLONES static void adam_dg_##T(T *restrict y, const T *restrict u, const T *restrict w,                 \
                                           const T *restrict m, const T *restrict v, int64_t n, T ka, T kb, T c2,   \
                                           T eps)                                                                   \
    {                                                                                                               \
        for (int64_t i = 0; i < n; i++) {                                                                           \
            T s = SQRT(v[i] * c2);                                                                                  \
            T s_safe = s > 0 ? s : 1;                                                                               \
            T d = s + eps;                                                                                          \
            T b = w[i] * ((kb * (u[i] * m[i])) / ((d * d) * s_safe));                                               \
            y[i] = (ka * u[i]) / d + (s > 0 ? b : 0);                                                               \
        }                                                                                                           \
    }

#define DEFINE_SWEEP(T)                                                                                          \
    HG_SIMD_CLONES static void accumulate_##T(T *restrict y, const T *restrict x, int64_t n)                     \
    {                                                                                                            \
        for (int64_t i = 0; i < n; i++)                                                                          \
            y[i] = y[i] + x[i];                                                                                  \
    }                                                                                                            \
    HG_SIMD_CLONES static void axpy_##T(T *restrict y, const T *restrict x, int64_t n, T b)                      \
    {                                                                                                            \
        for (int64_t i = 0; i < n; i++)                                                                          \
            y[i] = (T)1 * y[i] + b * x[i];                                                                       \
    }                                                                                                            \
    HG_SIMD_CLONES static void relu_mask_##T(T *restrict y, const T *restrict x, const T *restrict g, int64_t n) \
    {                                                                                                            \
        for (int64_t i = 0; i < n; i++)                                                                          \
            y[i] = x[i] > 0 ? g[i] : (T)0;                                                                       \
    }

#define DEFINE_BIAS(T)                                                                               \
    HG_SIMD_CLONES static void bias_row_##T(T *restrict y, const T *restrict b, int64_t n, int relu) \
    {                                                                                                \
        if (relu)                                                                                    \
            for (int64_t j = 0; j < n; j++) {                                                        \
                T a = y[j] + b[j];                                                                   \
                y[j] = a < 0 ? (T)0 : a;                                                             \
            }                                                                                        \
        else                                                                                         \
            for (int64_t j = 0; j < n; j++)                                                          \
                y[j] = y[j] + b[j];                                                                  \
    }

DEFINE_BIAS(float)
DEFINE_BIAS(double)
DEFINE_SWEEP(float)
DEFINE_SWEEP(double)
DEFINE_FUSED(float, sqrtf)
DEFINE_FUSED(double, sqrt)

#define F32(t) ((float *)(t)->data)
#define F64(t) ((double *)(t)->data)

void hg_fused_lincomb(hg_tensor *y, const hg_tensor *x, const hg_tensor *z, double a, double b)
{
    if (y->dtype == HG_F32)
        lincomb_float(F32(y), F32(x), F32(z), y->numel, (float)a, (float)b);
    else
        lincomb_double(F64(y), F64(x), F64(z), y->numel, a, b);
}

void hg_fused_prod(hg_tensor *y, const hg_tensor *z, const hg_tensor *w, double c)
{
    if (y->dtype == HG_F32)
        prod_float(F32(y), F32(z), F32(w), y->numel, (float)c);
    else
        prod_double(F64(y), F64(z), F64(w), y->numel, c);
}

void hg_fused_lincomb_prod(hg_tensor *y, const hg_tensor *x, const hg_tensor *z, const hg_tensor *w, double a, double b)
{
    if (y->dtype == HG_F32)
        lincomb_prod_float(F32(y), F32(x), F32(z), F32(w), y->numel, (float)a, (float)b);
    else
        lincomb_prod_double(F64(y), F64(x), F64(z), F64(w), y->numel, a, b);
}

void hg_fused_adam_update(hg_tensor *y, const hg_tensor *p, const hg_tensor *m, const hg_tensor *v, double lr,
                          double c1, double c2, double eps)
{
    if (y->dtype == HG_F32)
        adam_update_float(F32(y), F32(p), F32(m), F32(v), y->numel, (float)lr, (float)c1, (float)c2, (float)eps);
    else
        adam_update_double(F64(y), F64(p), F64(m), F64(v), y->numel, lr, c1, c2, eps);
}

void hg_fused_adam_dm(hg_tensor *y, const hg_tensor *g, const hg_tensor *v, double k, double c2, double eps)
{
    if (y->dtype == HG_F32)
        adam_dm_float(F32(y), F32(g), F32(v), y->numel, (float)k, (float)c2, (float)eps);
    else
        adam_dm_double(F64(y), F64(g), F64(v), y->numel, k, c2, eps);
}

void hg_fused_adam_dv(hg_tensor *y, const hg_tensor *g, const hg_tensor *m, const hg_tensor *v, double k, double c2,
                      double eps)
{
    if (y->dtype == HG_F32)
        adam_dv_float(F32(y), F32(g), F32(m), F32(v), y->numel, (float)k, (float)c2, (float)eps);
    else
        adam_dv_double(F64(y), F64(g), F64(m), F64(v), y->numel, k, c2, eps);
}

void hg_fused_adam_dg(hg_tensor *y, const hg_tensor *u, const hg_tensor *w, const hg_tensor *m, const hg_tensor *v,
                      double ka, double kb, double c2, double eps)
{
    if (y->dtype == HG_F32)
        adam_dg_float(F32(y), F32(u), F32(w), F32(m), F32(v), y->numel, (float)ka, (float)kb, (float)c2, (float)eps);
    else
        adam_dg_double(F64(y), F64(u), F64(w), F64(m), F64(v), y->numel, ka, kb, c2, eps);
}

void hg_fused_accumulate(hg_tensor *y, const hg_tensor *x)
{
    if (y->dtype == HG_F32)
        accumulate_float(F32(y), F32(x), y->numel);
    else
        accumulate_double(F64(y), F64(x), y->numel);
}

void hg_fused_axpy(hg_tensor *y, const hg_tensor *x, double b)
{
    if (y->dtype == HG_F32)
        axpy_float(F32(y), F32(x), y->numel, (float)b);
    else
        axpy_double(F64(y), F64(x), y->numel, b);
}

void hg_fused_relu_mask(hg_tensor *y, const hg_tensor *x, const hg_tensor *g)
{
    if (y->dtype == HG_F32)
        relu_mask_float(F32(y), F32(x), F32(g), y->numel);
    else
        relu_mask_double(F64(y), F64(x), F64(g), y->numel);
}

void hg_fused_bias_act(hg_tensor *y, const hg_tensor *b, bool relu)
{
    int64_t n = b->numel, rows = n ? y->numel / n : 0;
    for (int64_t r = 0; r < rows; r++) {
        if (y->dtype == HG_F32)
            bias_row_float(F32(y) + r * n, F32(b), n, relu);
        else
            bias_row_double(F64(y) + r * n, F64(b), n, relu);
    }
}
