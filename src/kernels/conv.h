/* im2col and col2im for 2-D convolutions (NCHW, one sample at a time).
 * Not installed.
 *
 * The column matrix of one sample x [C,H,W] is cols [C*KH*KW, OH*OW]: row
 * (c, i, j) holds, for each output position (oh, ow), the input value under
 * tap (i, j), x[c, oh*sh - ph + i*dh, ow*sw - pw + j*dw], or 0 in the
 * padding. A convolution is then one gemm, w [O, C*KH*KW] @ cols. */
#ifndef HGRAD_CONV_KERNELS_H
#define HGRAD_CONV_KERNELS_H

#include "../internal.h"

typedef struct hg_conv_geom {
    int64_t c, h, w; /* input channels and extents */
    int64_t kh, kw;  /* kernel */
    int64_t oh, ow;  /* output extents */
    int64_t sh, sw;  /* strides */
    int64_t ph, pw;  /* padding */
    int64_t dh, dw;  /* dilation */
} hg_conv_geom;

/* cols = im2col(x) for one sample; dtype f32 or f64. */
void hg_im2col(hg_dtype dtype, const hg_conv_geom *g, const void *x, void *cols);
/* x += col2im(cols) for one sample (the adjoint of im2col): every column
 * entry is added to the input position it was read from. */
void hg_col2im_add(hg_dtype dtype, const hg_conv_geom *g, const void *cols, void *x);

#endif
