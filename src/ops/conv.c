/* 2-D convolution (NCHW input, OIHW weight) and pooling.
 *
 * Three ops, closed under differentiation:
 *   conv2d(x, w)              y [N,O,OH,OW]   im2col + gemm per sample
 *   conv2d_transpose(g, w)    z [N,C,H,W]     gemm + col2im per sample
 *   conv2d_weight_grad(x, g)  dw [O,C,KH,KW]  im2col + gemm, summed over N
 * conv2d is linear in x (adjoint: conv2d_transpose) and in w (adjoint:
 * conv2d_weight_grad); the other two are bilinear too, and each one's vjp is
 * made of the three, so every order of derivative works.
 *
 * Pooling is composed: max_pool2d = a constant argmax op + hg_gather_axis
 * (vjp: hg_scatter_add), avg_pool2d = a depthwise conv2d. */
#include "../kernels/conv.h"
#include "../kernels/gemm.h"

#include <math.h>
#include <string.h>

typedef struct conv_attr {
    int64_t stride[2], pad[2], dil[2];
    int64_t size[2]; /* conv2d_transpose: output extents; weight_grad: kernel extents */
} conv_attr;

/* Output extent of a convolution; < 1 if the kernel does not fit. */
static int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d)
{
    /* extents come from tensors (< 2^62 each), p and d from ints: only the
     * span d (k - 1) can overflow, and then nothing fits anyway */
    if (k < 1 || k - 1 > (INT64_MAX - 1) / d)
        return 0;
    int64_t span = d * (k - 1) + 1;
    int64_t room = in + 2 * p - span;
    return room < 0 ? 0 : room / s + 1;
}

static bool blas_int(int64_t v)
{
    return v <= INT32_MAX;
}

/* Geometry of one sample: input [C,H,W], kernel [KH,KW], output [OH,OW]. */
static hg_conv_geom geom(const conv_attr *a, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t oh,
                         int64_t ow)
{
    hg_conv_geom g = {c, h, w, kh, kw, oh, ow, a->stride[0], a->stride[1], a->pad[0], a->pad[1], a->dil[0], a->dil[1]};
    return g;
}

static hg_status check_pair(hg_ctx *ctx, const char *who, hg_tensor *const *in, const char *n0, const char *n1)
{
    char s0[160], s1[160];
    hg_status s = hg_check_float_same(ctx, who, 2, in);
    if (s != HG_OK)
        return s;
    if (in[0]->rank != 4 || in[1]->rank != 4)
        return hg_op_error(ctx, HG_ERR_SHAPE, "%s: %s %s and %s %s must both be 4-D", who, n0, HG_SHAPE(in[0], s0), n1,
                           HG_SHAPE(in[1], s1));
    return HG_OK;
}

/* Scratch for one sample's column matrix, from the arena. */
static void *cols_scratch(hg_ctx *ctx, const char *who, const hg_conv_geom *g, hg_dtype dt)
{
    size_t n = (size_t)(g->c * g->kh * g->kw) * (size_t)(g->oh * g->ow) * hg_dtype_size(dt);
    void *p = hg_arena_alloc(ctx, n ? n : 1);
    if (!p)
        hg_op_error(ctx, HG_ERR_OOM, "%s: out of memory for the column matrix (%zu bytes)", who, n);
    return p;
}

static bool cols_overflow(int64_t c, int64_t kh, int64_t kw, int64_t oh, int64_t ow)
{
    int64_t rows = c, cols = oh;
    if (kh && rows > INT64_MAX / kh)
        return true;
    rows *= kh;
    if (kw && rows > INT64_MAX / kw)
        return true;
    rows *= kw;
    if (ow && cols > INT64_MAX / ow)
        return true;
    cols *= ow;
    if (!blas_int(rows) || !blas_int(cols))
        return true;
    return cols && rows > (int64_t)(SIZE_MAX / 8) / cols;
}

/* ---- conv2d ------------------------------------------------------------- */

static hg_status conv2d_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const conv_attr *a = attr;
    char s0[160], s1[160];
    hg_status s = check_pair(ctx, "hg_conv2d", in, "x", "w");
    if (s != HG_OK)
        return s;
    const int64_t *x = in[0]->shape, *w = in[1]->shape;
    if (x[1] != w[1])
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_conv2d: x %s has %lld channels, w %s expects %lld",
                           HG_SHAPE(in[0], s0), (long long)x[1], HG_SHAPE(in[1], s1), (long long)w[1]);
    int64_t oh = conv_out(x[2], w[2], a->stride[0], a->pad[0], a->dil[0]);
    int64_t ow = conv_out(x[3], w[3], a->stride[1], a->pad[1], a->dil[1]);
    if (oh < 1 || ow < 1 || w[2] < 1 || w[3] < 1)
        return hg_op_error(ctx, HG_ERR_SHAPE,
                           "hg_conv2d: kernel %s does not fit input %s (stride %lld,%lld padding %lld,%lld dilation "
                           "%lld,%lld)",
                           HG_SHAPE(in[1], s1), HG_SHAPE(in[0], s0), (long long)a->stride[0], (long long)a->stride[1],
                           (long long)a->pad[0], (long long)a->pad[1], (long long)a->dil[0], (long long)a->dil[1]);
    if (cols_overflow(x[1], w[2], w[3], oh, ow) || !blas_int(w[0]))
        return hg_op_error(ctx, HG_ERR_OVERFLOW, "hg_conv2d: x %s with w %s exceeds the BLAS int range",
                           HG_SHAPE(in[0], s0), HG_SHAPE(in[1], s1));
    out->dtype = in[0]->dtype;
    out->rank = 4;
    out->shape[0] = x[0];
    out->shape[1] = w[0];
    out->shape[2] = oh;
    out->shape[3] = ow;
    return HG_OK;
}

static hg_status conv2d_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    const hg_tensor *x = in[0], *w = in[1];
    hg_tensor *y = out[0];
    if (y->numel == 0)
        return HG_OK;
    hg_conv_geom g = geom(attr, x->shape[1], x->shape[2], x->shape[3], w->shape[2], w->shape[3], y->shape[2],
                          y->shape[3]);
    int64_t ckk = g.c * g.kh * g.kw, plane = g.oh * g.ow, o = w->shape[0];
    size_t es = hg_dtype_size(x->dtype);
    /* A 1x1 kernel with unit stride and no padding reads x as it is. */
    bool direct = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
    void *cols = direct ? NULL : cols_scratch(ctx, "hg_conv2d", &g, x->dtype);
    if (!direct && !cols)
        return HG_ERR_OOM;
    for (int64_t n = 0; n < x->shape[0]; n++) {
        const unsigned char *xn = (const unsigned char *)x->data + (size_t)(n * g.c * g.h * g.w) * es;
        if (!direct)
            hg_im2col(x->dtype, &g, xn, cols);
        hg_kernel_gemm_raw(x->dtype, false, false, o, plane, ckk, 1.0, w->data, ckk, direct ? xn : cols, plane, 0.0,
                           (unsigned char *)y->data + (size_t)(n * o * plane) * es, plane);
    }
    return HG_OK;
}

static hg_tensor *conv_apply(hg_ctx *ctx, const hg_opdef *def, hg_tensor *a, hg_tensor *b, const conv_attr *attr)
{
    hg_tensor *in[2] = {a, b};
    return hg_apply(ctx, def, in, attr);
}

static const hg_opdef conv2d_def, conv2d_transpose_def, conv2d_weight_def;

static conv_attr with_size(const conv_attr *a, int64_t s0, int64_t s1)
{
    conv_attr r = *a;
    r.size[0] = s0;
    r.size[1] = s1;
    return r;
}

/* dx = conv2d_transpose(g, w, H, W), dw = conv2d_weight_grad(x, g, KH, KW) */
static hg_status conv2d_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const conv_attr *a = hg_node_attr(node);
    hg_tensor *x = hg_node_input(node, 0), *w = hg_node_input(node, 1);
    if (hg_node_needs_grad(node, 0)) {
        conv_attr t = with_size(a, x->shape[2], x->shape[3]);
        if (!(gin[0] = conv_apply(ctx, &conv2d_transpose_def, gout[0], w, &t)))
            return hg_ctx_status(ctx);
    }
    if (hg_node_needs_grad(node, 1)) {
        conv_attr t = with_size(a, w->shape[2], w->shape[3]);
        if (!(gin[1] = conv_apply(ctx, &conv2d_weight_def, x, gout[0], &t)))
            return hg_ctx_status(ctx);
    }
    return HG_OK;
}

static const hg_opdef conv2d_def = {"hg_conv2d",    2,          1,   sizeof(conv_attr), conv2d_shape,
                                    conv2d_forward, conv2d_vjp, NULL};

/* ---- conv2d_transpose: (g [N,O,OH,OW], w [O,C,KH,KW]) -> [N,C,size] ---- */

static hg_status conv2d_transpose_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const conv_attr *a = attr;
    char s0[160], s1[160];
    hg_status s = check_pair(ctx, "hg_conv2d_transpose", in, "g", "w");
    if (s != HG_OK)
        return s;
    const int64_t *g = in[0]->shape, *w = in[1]->shape;
    if (g[1] != w[0])
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_conv2d_transpose: g %s has %lld channels, w %s has %lld outputs",
                           HG_SHAPE(in[0], s0), (long long)g[1], HG_SHAPE(in[1], s1), (long long)w[0]);
    if (a->size[0] < 1 || a->size[1] < 1 || w[2] < 1 || w[3] < 1 ||
        conv_out(a->size[0], w[2], a->stride[0], a->pad[0], a->dil[0]) != g[2] ||
        conv_out(a->size[1], w[3], a->stride[1], a->pad[1], a->dil[1]) != g[3])
        return hg_op_error(ctx, HG_ERR_SHAPE,
                           "hg_conv2d_transpose: an input of %lldx%lld convolved with w %s (stride %lld,%lld padding "
                           "%lld,%lld dilation %lld,%lld) does not give g %s",
                           (long long)a->size[0], (long long)a->size[1], HG_SHAPE(in[1], s1), (long long)a->stride[0],
                           (long long)a->stride[1], (long long)a->pad[0], (long long)a->pad[1], (long long)a->dil[0],
                           (long long)a->dil[1], HG_SHAPE(in[0], s0));
    if (cols_overflow(w[1], w[2], w[3], g[2], g[3]) || !blas_int(w[0]))
        return hg_op_error(ctx, HG_ERR_OVERFLOW, "hg_conv2d_transpose: g %s with w %s exceeds the BLAS int range",
                           HG_SHAPE(in[0], s0), HG_SHAPE(in[1], s1));
    out->dtype = in[0]->dtype;
    out->rank = 4;
    out->shape[0] = g[0];
    out->shape[1] = w[1];
    out->shape[2] = a->size[0];
    out->shape[3] = a->size[1];
    return HG_OK;
}

static hg_status conv2d_transpose_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    const hg_tensor *gt = in[0], *w = in[1];
    hg_tensor *z = out[0];
    size_t es = hg_dtype_size(z->dtype);
    if (z->numel)
        memset(z->data, 0, (size_t)z->numel * es);
    if (z->numel == 0 || gt->numel == 0)
        return HG_OK;
    hg_conv_geom g = geom(attr, w->shape[1], z->shape[2], z->shape[3], w->shape[2], w->shape[3], gt->shape[2],
                          gt->shape[3]);
    int64_t ckk = g.c * g.kh * g.kw, plane = g.oh * g.ow, o = w->shape[0];
    void *cols = cols_scratch(ctx, "hg_conv2d_transpose", &g, z->dtype);
    if (!cols)
        return HG_ERR_OOM;
    for (int64_t n = 0; n < gt->shape[0]; n++) {
        /* cols [CKK, plane] = w^T [CKK, O] @ g_n [O, plane] */
        hg_kernel_gemm_raw(z->dtype, true, false, ckk, plane, o, 1.0, w->data, ckk,
                           (const unsigned char *)gt->data + (size_t)(n * o * plane) * es, plane, 0.0, cols, plane);
        hg_col2im_add(z->dtype, &g, cols, (unsigned char *)z->data + (size_t)(n * g.c * g.h * g.w) * es);
    }
    return HG_OK;
}

/* z = T_w(g): dg = conv2d(z', w), dw = conv2d_weight_grad(z', g, KH, KW) */
static hg_status conv2d_transpose_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const conv_attr *a = hg_node_attr(node);
    hg_tensor *g = hg_node_input(node, 0), *w = hg_node_input(node, 1);
    if (hg_node_needs_grad(node, 0) && !(gin[0] = conv_apply(ctx, &conv2d_def, gout[0], w, a)))
        return hg_ctx_status(ctx);
    if (hg_node_needs_grad(node, 1)) {
        conv_attr t = with_size(a, w->shape[2], w->shape[3]);
        if (!(gin[1] = conv_apply(ctx, &conv2d_weight_def, gout[0], g, &t)))
            return hg_ctx_status(ctx);
    }
    return HG_OK;
}

static const hg_opdef conv2d_transpose_def = {
    "hg_conv2d_transpose", 2,   1, sizeof(conv_attr), conv2d_transpose_shape, conv2d_transpose_forward,
    conv2d_transpose_vjp,  NULL};

/* ---- conv2d_weight_grad: (x [N,C,H,W], g [N,O,OH,OW]) -> [O,C,size] ---- */

static hg_status conv2d_weight_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const conv_attr *a = attr;
    char s0[160], s1[160];
    hg_status s = check_pair(ctx, "hg_conv2d_weight_grad", in, "x", "g");
    if (s != HG_OK)
        return s;
    const int64_t *x = in[0]->shape, *g = in[1]->shape;
    if (x[0] != g[0] || a->size[0] < 1 || a->size[1] < 1 ||
        conv_out(x[2], a->size[0], a->stride[0], a->pad[0], a->dil[0]) != g[2] ||
        conv_out(x[3], a->size[1], a->stride[1], a->pad[1], a->dil[1]) != g[3])
        return hg_op_error(ctx, HG_ERR_SHAPE,
                           "hg_conv2d_weight_grad: x %s convolved with a %lldx%lld kernel (stride %lld,%lld padding "
                           "%lld,%lld dilation %lld,%lld) does not give g %s",
                           HG_SHAPE(in[0], s0), (long long)a->size[0], (long long)a->size[1], (long long)a->stride[0],
                           (long long)a->stride[1], (long long)a->pad[0], (long long)a->pad[1], (long long)a->dil[0],
                           (long long)a->dil[1], HG_SHAPE(in[1], s1));
    if (cols_overflow(x[1], a->size[0], a->size[1], g[2], g[3]) || !blas_int(g[1]))
        return hg_op_error(ctx, HG_ERR_OVERFLOW, "hg_conv2d_weight_grad: x %s with g %s exceeds the BLAS int range",
                           HG_SHAPE(in[0], s0), HG_SHAPE(in[1], s1));
    out->dtype = in[0]->dtype;
    out->rank = 4;
    out->shape[0] = g[1];
    out->shape[1] = x[1];
    out->shape[2] = a->size[0];
    out->shape[3] = a->size[1];
    return HG_OK;
}

static hg_status conv2d_weight_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    const hg_tensor *x = in[0], *gt = in[1];
    hg_tensor *dw = out[0];
    size_t es = hg_dtype_size(dw->dtype);
    if (dw->numel)
        memset(dw->data, 0, (size_t)dw->numel * es);
    if (dw->numel == 0 || gt->numel == 0)
        return HG_OK;
    hg_conv_geom g = geom(attr, x->shape[1], x->shape[2], x->shape[3], dw->shape[2], dw->shape[3], gt->shape[2],
                          gt->shape[3]);
    int64_t ckk = g.c * g.kh * g.kw, plane = g.oh * g.ow, o = gt->shape[1];
    void *cols = cols_scratch(ctx, "hg_conv2d_weight_grad", &g, x->dtype);
    if (!cols)
        return HG_ERR_OOM;
    for (int64_t n = 0; n < x->shape[0]; n++) {
        hg_im2col(x->dtype, &g, (const unsigned char *)x->data + (size_t)(n * g.c * g.h * g.w) * es, cols);
        /* dw [O, CKK] += g_n [O, plane] @ cols^T [plane, CKK] */
        hg_kernel_gemm_raw(x->dtype, false, true, o, ckk, plane, 1.0,
                           (const unsigned char *)gt->data + (size_t)(n * o * plane) * es, plane, cols, plane, 1.0,
                           dw->data, ckk);
    }
    return HG_OK;
}

/* dw = W(x, g): dx = conv2d_transpose(g, dw', H, W), dg = conv2d(x, dw') */
static hg_status conv2d_weight_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const conv_attr *a = hg_node_attr(node);
    hg_tensor *x = hg_node_input(node, 0), *g = hg_node_input(node, 1);
    if (hg_node_needs_grad(node, 0)) {
        conv_attr t = with_size(a, x->shape[2], x->shape[3]);
        if (!(gin[0] = conv_apply(ctx, &conv2d_transpose_def, g, gout[0], &t)))
            return hg_ctx_status(ctx);
    }
    if (hg_node_needs_grad(node, 1) && !(gin[1] = conv_apply(ctx, &conv2d_def, x, gout[0], a)))
        return hg_ctx_status(ctx);
    return HG_OK;
}

static const hg_opdef conv2d_weight_def = {
    "hg_conv2d_weight_grad", 2,   1, sizeof(conv_attr), conv2d_weight_shape, conv2d_weight_forward,
    conv2d_weight_vjp,       NULL};

/* ---- public calls ------------------------------------------------------- */

static hg_status conv_params(hg_ctx *ctx, const char *who, const hg_conv2d_params *p, conv_attr *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < 2; i++) {
        int s = p ? p->stride[i] : 0, pad = p ? p->padding[i] : 0, d = p ? p->dilation[i] : 0;
        if (s < 0 || pad < 0 || d < 0)
            return hg_op_error(ctx, HG_ERR_RANGE, "%s: negative stride %d, padding %d or dilation %d (axis %d)", who, s,
                               pad, d, i);
        a->stride[i] = s ? s : 1;
        a->pad[i] = pad;
        a->dil[i] = d ? d : 1;
    }
    return HG_OK;
}

hg_tensor *hg_conv2d(hg_ctx *ctx, hg_tensor *x, hg_tensor *w, hg_tensor *bias, const hg_conv2d_params *params)
{
    conv_attr a;
    if (!ctx || conv_params(ctx, "hg_conv2d", params, &a) != HG_OK)
        return NULL;
    hg_tensor *y = conv_apply(ctx, &conv2d_def, x, w, &a);
    if (!y || !bias)
        return y;
    char sb[160], sw[160];
    if (hg_tensor_validate(ctx, bias, "hg_conv2d (bias)") != HG_OK)
        return NULL;
    if (bias->dtype != y->dtype) {
        hg_op_error(ctx, HG_ERR_DTYPE, "hg_conv2d: bias is %s, w is %s", hg_dtype_name(bias->dtype),
                    hg_dtype_name(y->dtype));
        return NULL;
    }
    if (bias->rank != 1 || bias->shape[0] != w->shape[0]) {
        hg_op_error(ctx, HG_ERR_SHAPE, "hg_conv2d: bias %s does not match w %s (expected [%lld])", HG_SHAPE(bias, sb),
                    HG_SHAPE(w, sw), (long long)w->shape[0]);
        return NULL;
    }
    const int64_t col[4] = {1, w->shape[0], 1, 1};
    return hg_add(ctx, y, hg_reshape(ctx, bias, 4, col));
}

hg_tensor *hg_conv2d_transpose(hg_ctx *ctx, hg_tensor *g, hg_tensor *w, int64_t out_h, int64_t out_w,
                               const hg_conv2d_params *params)
{
    conv_attr a;
    if (!ctx || conv_params(ctx, "hg_conv2d_transpose", params, &a) != HG_OK)
        return NULL;
    a.size[0] = out_h;
    a.size[1] = out_w;
    return conv_apply(ctx, &conv2d_transpose_def, g, w, &a);
}

hg_tensor *hg_conv2d_weight_grad(hg_ctx *ctx, hg_tensor *x, hg_tensor *g, int64_t kh, int64_t kw,
                                 const hg_conv2d_params *params)
{
    conv_attr a;
    if (!ctx || conv_params(ctx, "hg_conv2d_weight_grad", params, &a) != HG_OK)
        return NULL;
    a.size[0] = kh;
    a.size[1] = kw;
    return conv_apply(ctx, &conv2d_weight_def, x, g, &a);
}

/* ---- pooling ------------------------------------------------------------ */

typedef struct pool_attr {
    int64_t kernel[2], stride[2], pad[2];
} pool_attr;

/* Checks x (live, float, 4-D) and the window; fills a and the output size. */
static hg_status pool_setup(hg_ctx *ctx, const char *who, hg_tensor *x, const hg_pool2d_params *p, pool_attr *a,
                            int64_t *oh, int64_t *ow)
{
    char s[160];
    hg_status st = hg_tensor_validate(ctx, x, who);
    if (st != HG_OK)
        return st;
    if (!p)
        return hg_op_error(ctx, HG_ERR_NULL, "%s: params is NULL (the kernel size is required)", who);
    if (!hg_is_float(x->dtype))
        return hg_op_error(ctx, HG_ERR_DTYPE, "%s: x is %s, expected f32 or f64", who, hg_dtype_name(x->dtype));
    if (x->rank != 4)
        return hg_op_error(ctx, HG_ERR_SHAPE, "%s: x must be 4-D [N,C,H,W], got %s", who, HG_SHAPE(x, s));
    for (int i = 0; i < 2; i++) {
        int k = p->kernel[i], sd = p->stride[i], pad = p->padding[i];
        if (k < 1 || sd < 0 || pad < 0 || pad > k / 2)
            return hg_op_error(ctx, HG_ERR_RANGE,
                               "%s: kernel %d (>= 1), stride %d (>= 0) and padding %d (0..kernel/2) on axis %d", who, k,
                               sd, pad, i);
        a->kernel[i] = k;
        a->stride[i] = sd ? sd : k;
        a->pad[i] = pad;
    }
    *oh = conv_out(x->shape[2], a->kernel[0], a->stride[0], a->pad[0], 1);
    *ow = conv_out(x->shape[3], a->kernel[1], a->stride[1], a->pad[1], 1);
    if (*oh < 1 || *ow < 1)
        return hg_op_error(ctx, HG_ERR_SHAPE, "%s: a %lldx%lld window (padding %lld,%lld) does not fit x %s", who,
                           (long long)a->kernel[0], (long long)a->kernel[1], (long long)a->pad[0], (long long)a->pad[1],
                           HG_SHAPE(x, s));
    return HG_OK;
}

/* Constant op: x [N,C,H,W] -> i32 [N,C,OH*OW], the flat index (ih*W + iw)
 * of each window's maximum: the first in row-major order among ties, the
 * first NaN if any. Padding never wins (at most half a window is padding). */
static hg_status argmax_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    const pool_attr *a = attr;
    char s[160];
    if (!hg_is_float(in[0]->dtype) || in[0]->rank != 4)
        return hg_op_error(ctx, HG_ERR_SHAPE, "hg_max_pool2d: x must be a 4-D float tensor, got %s %s",
                           HG_SHAPE(in[0], s), hg_dtype_name(in[0]->dtype));
    if (in[0]->shape[2] * in[0]->shape[3] > INT32_MAX)
        return hg_op_error(ctx, HG_ERR_OVERFLOW, "hg_max_pool2d: planes of %s exceed i32 indices", HG_SHAPE(in[0], s));
    out->dtype = HG_I32;
    out->rank = 3;
    out->shape[0] = in[0]->shape[0];
    out->shape[1] = in[0]->shape[1];
    out->shape[2] = conv_out(in[0]->shape[2], a->kernel[0], a->stride[0], a->pad[0], 1) *
                    conv_out(in[0]->shape[3], a->kernel[1], a->stride[1], a->pad[1], 1);
    return HG_OK;
}

#define ARGMAX_LOOP(T)                                                          \
    for (int64_t p = 0; p < planes; p++) {                                      \
        const T *xp = (const T *)x->data + p * h * w;                           \
        int32_t *ip = idx + p * oh * ow;                                        \
        for (int64_t i = 0; i < oh; i++)                                        \
            for (int64_t j = 0; j < ow; j++) {                                  \
                int64_t best = -1;                                              \
                T bv = 0;                                                       \
                for (int64_t ki = 0; ki < a->kernel[0]; ki++) {                 \
                    int64_t ih = i * a->stride[0] - a->pad[0] + ki;             \
                    if (ih < 0 || ih >= h)                                      \
                        continue;                                               \
                    for (int64_t kj = 0; kj < a->kernel[1]; kj++) {             \
                        int64_t iw = j * a->stride[1] - a->pad[1] + kj;         \
                        if (iw < 0 || iw >= w)                                  \
                            continue;                                           \
                        T v = xp[ih * w + iw];                                  \
                        if (best < 0 || (!isnan(bv) && (v > bv || isnan(v)))) { \
                            best = ih * w + iw;                                 \
                            bv = v;                                             \
                        }                                                       \
                    }                                                           \
                }                                                               \
                ip[i * ow + j] = (int32_t)best;                                 \
            }                                                                   \
    }

static hg_status argmax_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    const pool_attr *a = attr;
    const hg_tensor *x = in[0];
    int64_t planes = x->shape[0] * x->shape[1], h = x->shape[2], w = x->shape[3];
    int64_t oh = conv_out(h, a->kernel[0], a->stride[0], a->pad[0], 1);
    int64_t ow = conv_out(w, a->kernel[1], a->stride[1], a->pad[1], 1);
    int32_t *idx = out[0]->data;
    if (x->dtype == HG_F32) {
        ARGMAX_LOOP(float)
    } else {
        ARGMAX_LOOP(double)
    }
    return HG_OK;
}

static const hg_opdef max_pool_argmax_def = {"hg_max_pool2d_argmax", 1,    1,   sizeof(pool_attr), argmax_shape,
                                             argmax_forward,         NULL, NULL};

hg_tensor *hg_max_pool2d(hg_ctx *ctx, hg_tensor *x, const hg_pool2d_params *params)
{
    pool_attr a;
    int64_t oh, ow;
    if (!ctx || (x && pool_setup(ctx, "hg_max_pool2d", x, params, &a, &oh, &ow) != HG_OK))
        return NULL;
    if (!x) {
        hg_op_error(ctx, HG_ERR_NULL, "hg_max_pool2d: input 0 is NULL");
        return NULL;
    }
    /* y = reshape(gather_axis(reshape(x, [N,C,H*W]), 2, argmax), [N,C,OH,OW]) */
    const int64_t flat[3] = {x->shape[0], x->shape[1], x->shape[2] * x->shape[3]};
    const int64_t shape[4] = {x->shape[0], x->shape[1], oh, ow};
    hg_tensor *idx = hg_apply(ctx, &max_pool_argmax_def, &x, &a);
    return hg_reshape(ctx, hg_gather_axis(ctx, hg_reshape(ctx, x, 3, flat), 2, idx), 4, shape);
}

hg_tensor *hg_avg_pool2d(hg_ctx *ctx, hg_tensor *x, const hg_pool2d_params *params)
{
    pool_attr a;
    int64_t oh, ow;
    if (!ctx || (x && pool_setup(ctx, "hg_avg_pool2d", x, params, &a, &oh, &ow) != HG_OK))
        return NULL;
    if (!x) {
        hg_op_error(ctx, HG_ERR_NULL, "hg_avg_pool2d: input 0 is NULL");
        return NULL;
    }
    /* Each channel on its own: [N*C, 1, H, W] convolved with 1/(KH KW). */
    const int64_t planes[4] = {x->shape[0] * x->shape[1], 1, x->shape[2], x->shape[3]};
    const int64_t kshape[4] = {1, 1, a.kernel[0], a.kernel[1]};
    const int64_t shape[4] = {x->shape[0], x->shape[1], oh, ow};
    hg_tensor *k = hg_full(ctx, x->dtype, 4, kshape, 1.0 / (double)(a.kernel[0] * a.kernel[1]));
    hg_conv2d_params p = {{(int)a.stride[0], (int)a.stride[1]}, {(int)a.pad[0], (int)a.pad[1]}, {1, 1}};
    return hg_reshape(ctx, hg_conv2d(ctx, hg_reshape(ctx, x, 4, planes), k, NULL, &p), 4, shape);
}
