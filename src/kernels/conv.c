/* im2col / col2im loops. The inner loop runs over output columns ow of one
 * output row; rows of taps that fall in the vertical padding are zero-filled
 * (im2col) or skipped (col2im) as a whole. */
#include "conv.h"

#include <string.h>

#define DEFINE_IM2COL(T)                                                                 \
    static void im2col_##T(const hg_conv_geom *g, const T *restrict x, T *restrict cols) \
    {                                                                                    \
        int64_t plane = g->oh * g->ow;                                                   \
        for (int64_t c = 0; c < g->c; c++)                                               \
            for (int64_t i = 0; i < g->kh; i++)                                          \
                for (int64_t j = 0; j < g->kw; j++) {                                    \
                    T *dst = cols + ((c * g->kh + i) * g->kw + j) * plane;               \
                    int64_t col0 = j * g->dw - g->pw;                                    \
                    for (int64_t oh = 0; oh < g->oh; oh++) {                             \
                        T *d = dst + oh * g->ow;                                         \
                        int64_t ih = oh * g->sh - g->ph + i * g->dh;                     \
                        if (ih < 0 || ih >= g->h) {                                      \
                            for (int64_t ow = 0; ow < g->ow; ow++)                       \
                                d[ow] = 0;                                               \
                            continue;                                                    \
                        }                                                                \
                        const T *src = x + (c * g->h + ih) * g->w;                       \
                        if (g->sw == 1 && col0 >= 0 && col0 + g->ow <= g->w) {           \
                            memcpy(d, src + col0, sizeof(T) * (size_t)g->ow);            \
                            continue;                                                    \
                        }                                                                \
                        for (int64_t ow = 0; ow < g->ow; ow++) {                         \
                            int64_t iw = ow * g->sw + col0;                              \
                            d[ow] = iw >= 0 && iw < g->w ? src[iw] : 0;                  \
                        }                                                                \
                    }                                                                    \
                }                                                                        \
    }                                                                                    \
    static void col2im_##T(const hg_conv_geom *g, const T *restrict cols, T *restrict x) \
    {                                                                                    \
        int64_t plane = g->oh * g->ow;                                                   \
        for (int64_t c = 0; c < g->c; c++)                                               \
            for (int64_t i = 0; i < g->kh; i++)                                          \
                for (int64_t j = 0; j < g->kw; j++) {                                    \
                    const T *src = cols + ((c * g->kh + i) * g->kw + j) * plane;         \
                    int64_t col0 = j * g->dw - g->pw;                                    \
                    for (int64_t oh = 0; oh < g->oh; oh++) {                             \
                        int64_t ih = oh * g->sh - g->ph + i * g->dh;                     \
                        if (ih < 0 || ih >= g->h)                                        \
                            continue;                                                    \
                        const T *s = src + oh * g->ow;                                   \
                        T *dst = x + (c * g->h + ih) * g->w;                             \
                        for (int64_t ow = 0; ow < g->ow; ow++) {                         \
                            int64_t iw = ow * g->sw + col0;                              \
                            if (iw >= 0 && iw < g->w)                                    \
                                dst[iw] += s[ow];                                        \
                        }                                                                \
                    }                                                                    \
                }                                                                        \
    }

DEFINE_IM2COL(float)
DEFINE_IM2COL(double)

void hg_im2col(hg_dtype dtype, const hg_conv_geom *g, const void *x, void *cols)
{
    if (dtype == HG_F32)
        im2col_float(g, x, cols);
    else
        im2col_double(g, x, cols);
}

void hg_col2im_add(hg_dtype dtype, const hg_conv_geom *g, const void *cols, void *x)
{
    if (dtype == HG_F32)
        col2im_float(g, cols, x);
    else
        col2im_double(g, cols, x);
}
