/* Elementwise loops of sin, cos, log1p, expm1, erf and the activations, and
 * the axis reductions max/min/arg and logsumexp. Plain loops, one formula
 * per dtype; no allocation. */
#include "activation.h"

#include <math.h>

#define SQRT1_2 0.70710678118654752440
#define SQRT_2_OVER_PI 0.79788456080286535588
#define GELU_K 0.044715

/* y[i] = EXPR(v) with v = x[i] and the op parameter p, for both dtypes. */
#define LOOP(T, name, EXPR)                                                    \
    static void name##_##T(T *restrict y, const T *restrict x, int64_t n, T p) \
    {                                                                          \
        (void)p;                                                               \
        for (int64_t i = 0; i < n; i++) {                                      \
            const T v = x[i];                                                  \
            y[i] = (T)(EXPR);                                                  \
        }                                                                      \
    }

#define DEFINE(name, F32, F64) \
    LOOP(float, name, F32)     \
    LOOP(double, name, F64)    \
    const hg_unary_kernel hg_unary_##name = {name##_float, name##_double};

DEFINE(sin, sinf(v), sin(v))
DEFINE(cos, cosf(v), cos(v))
DEFINE(log1p, log1pf(v), log1p(v))
DEFINE(expm1, expm1f(v), expm1(v))
DEFINE(erf, erff(v), erf(v))
DEFINE(softplus, fmaxf(v, 0.0f) + log1pf(expf(-fabsf(v))), fmax(v, 0.0) + log1p(exp(-fabs(v))))
DEFINE(leaky_relu, v > 0 || v != v ? v : p * v, v > 0 || v != v ? v : p * v)
DEFINE(elu, v > 0 || v != v ? v : p * expm1f(v), v > 0 || v != v ? v : p * expm1(v))
DEFINE(gelu, 0.5f * v * (1.0f + erff(v * (float)SQRT1_2)), 0.5 * v * (1.0 + erf(v * SQRT1_2)))
DEFINE(gelu_tanh, 0.5f * v * (1.0f + tanhf((float)SQRT_2_OVER_PI * (v + (float)GELU_K * v * v * v))),
       0.5 * v * (1.0 + tanh(SQRT_2_OVER_PI * (v + GELU_K * v * v * v))))
/* x sigmoid(x) with e = exp(-|x|) <= 1: x / (1 + e) for x >= 0, x e / (1 + e) below */
DEFINE(silu, v >= 0 ? v / (1.0f + expf(-fabsf(v))) : v * expf(-fabsf(v)) / (1.0f + expf(-fabsf(v))),
       v >= 0 ? v / (1.0 + exp(-fabs(v))) : v * exp(-fabs(v)) / (1.0 + exp(-fabs(v))))

#define CLAMP(T)                                                                     \
    static void clamp_##T(T *restrict y, const T *restrict x, int64_t n, T lo, T hi) \
    {                                                                                \
        for (int64_t i = 0; i < n; i++) {                                            \
            const T v = x[i];                                                        \
            y[i] = v < lo ? lo : v > hi ? hi : v;                                    \
        }                                                                            \
    }
CLAMP(float)
CLAMP(double)

void hg_kernel_clamp(hg_tensor *y, const hg_tensor *x, double lo, double hi)
{
    if (y->dtype == HG_F32)
        clamp_float(y->data, x->data, x->numel, (float)lo, (float)hi);
    else
        clamp_double(y->data, x->data, x->numel, lo, hi);
}

/* ---- axis reductions --------------------------------------------------- */

#define EXTREME(T)                                                                                                 \
    static void extreme_##T(const T *x, int64_t outer, int64_t n, int64_t inner, int is_min, T *val, int32_t *idx, \
                            T *mask)                                                                               \
    {                                                                                                              \
        for (int64_t o = 0; o < outer; o++)                                                                        \
            for (int64_t j = 0; j < inner; j++) {                                                                  \
                const T *p = x + o * n * inner + j;                                                                \
                T best = p[0];                                                                                     \
                int64_t at = 0;                                                                                    \
                for (int64_t k = 1; k < n && best == best; k++) {                                                  \
                    const T v = p[k * inner];                                                                      \
                    if (v != v || (is_min ? v < best : v > best)) {                                                \
                        best = v;                                                                                  \
                        at = k;                                                                                    \
                    }                                                                                              \
                }                                                                                                  \
                if (val)                                                                                           \
                    val[o * inner + j] = best;                                                                     \
                if (idx)                                                                                           \
                    idx[o * inner + j] = (int32_t)at;                                                              \
                if (mask)                                                                                          \
                    for (int64_t k = 0; k < n; k++)                                                                \
                        mask[o * n * inner + k * inner + j] = k == at ? (T)1 : (T)0;                               \
            }                                                                                                      \
    }
EXTREME(float)
EXTREME(double)

void hg_kernel_axis_extreme(const hg_tensor *x, int64_t outer, int64_t n, int64_t inner, int is_min, void *val,
                            int32_t *idx, hg_tensor *mask)
{
    if (x->dtype == HG_F32)
        extreme_float(x->data, outer, n, inner, is_min, val, idx, mask ? mask->data : NULL);
    else
        extreme_double(x->data, outer, n, inner, is_min, val, idx, mask ? mask->data : NULL);
}

#define LSE(T, EXP, LOG)                                                           \
    static void lse_##T(T *y, const T *x, int64_t outer, int64_t n, int64_t inner) \
    {                                                                              \
        for (int64_t o = 0; o < outer; o++)                                        \
            for (int64_t j = 0; j < inner; j++) {                                  \
                const T *p = x + o * n * inner + j;                                \
                T m = -(T)INFINITY;                                                \
                for (int64_t k = 0; k < n && m == m; k++)                          \
                    if (p[k * inner] > m || p[k * inner] != p[k * inner])          \
                        m = p[k * inner];                                          \
                if (!isfinite(m)) { /* NaN, +inf, or every term -inf (or none) */  \
                    y[o * inner + j] = m;                                          \
                    continue;                                                      \
                }                                                                  \
                double s = 0;                                                      \
                for (int64_t k = 0; k < n; k++)                                    \
                    s += EXP(p[k * inner] - m);                                    \
                y[o * inner + j] = (T)(m + LOG((T)s));                             \
            }                                                                      \
    }
LSE(float, expf, logf)
LSE(double, exp, log)

void hg_kernel_logsumexp(hg_tensor *y, const hg_tensor *x, int64_t outer, int64_t n, int64_t inner)
{
    if (x->dtype == HG_F32)
        lse_float(y->data, x->data, outer, n, inner);
    else
        lse_double(y->data, x->data, outer, n, inner);
}
