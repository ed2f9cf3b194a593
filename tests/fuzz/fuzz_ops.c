/* libFuzzer target: the input bytes are a small program over a pool of
 * tensors, tapes and marks. Each step reads an opcode and its operands from
 * the bytes and calls the public API: tensor creation with random shapes and
 * dtypes (f32, f64, i32, invalid; rank 0 to 7; zero-size, negative and huge
 * extents; NaN and Inf values), every built-in op (shape and dtype mismatches
 * included), nn, losses, optimizers (both forms), func helpers, custom ops
 * (once-differentiable and invalid definitions), nested tapes with watch,
 * pause/resume, gradients (seeded, persistent, unconnected-NULL), mark,
 * rewind, reset, and misuse of all of them (ending the wrong tape,
 * gradients of recording tapes, stale tensors and tapes). An allocator hook
 * can fail the n-th allocation.
 *
 * Checked: no crash and no sanitizer report (the build adds ASan and UBSan),
 * and errors are clean: a call that fails leaves a non-OK status and a
 * non-empty message on the ctx; a result is a live tensor whose shape and
 * element count agree, and all of its bytes can be read.
 *
 * Stale objects: after a rewind, tensors and tapes made after the mark stay
 * in the pool (their use must give HG_ERR_STALE) only while the arena has
 * not grown past the rewind point: once their memory can be reused, the
 * library's documented detection limit applies and they are dropped. */
#include "hgrad.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL 24
#define NTAPES 8
#define NMARKS 8
#define MAX_STEPS 96

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static uint8_t u8(reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

static int8_t s8(reader *r)
{
    return (int8_t)u8(r);
}

/* ---- allocator that can fail the n-th allocation ------------------------- */

typedef struct fail_alloc {
    long calls;
    long fail_at; /* 0: never */
    long live;
} fail_alloc;

static void *fa_alloc(size_t size, void *user)
{
    fail_alloc *f = user;
    if (++f->calls == f->fail_at)
        return NULL;
    void *p = malloc(size);
    if (p)
        f->live++;
    return p;
}

static void fa_free(void *p, size_t size, void *user)
{
    (void)size;
    fail_alloc *f = user;
    if (p)
        f->live--;
    free(p);
}

/* ---- state ---------------------------------------------------------------- */

typedef struct slot_t {
    hg_tensor *t;
    size_t stale_limit; /* SIZE_MAX while live; else usable while in_use <= this */
} slot_t;

typedef struct tape_slot {
    hg_tape *t;
    size_t stale_limit;
} tape_slot;

typedef struct state {
    hg_ctx *ctx;
    hg_rng rng;
    slot_t pool[POOL];
    tape_slot tapes[NTAPES];
    hg_mark marks[NMARKS];
    int n_marks;
    hg_optimizer *opt;
    hg_tensor *opt_params[2];
    int opt_n;
    int next; /* round-robin result slot */
} state;

static void fail(const char *what, hg_ctx *ctx)
{
    fprintf(stderr, "fuzz_ops: %s (status %s, message \"%s\")\n", what, hg_status_name(hg_ctx_status(ctx)),
            hg_ctx_error(ctx));
    abort();
}

/* An error must be on the ctx with a message. */
static void expect_error(state *s, const char *what)
{
    if (hg_ctx_status(s->ctx) == HG_OK || hg_ctx_error(s->ctx)[0] == '\0')
        fail(what, s->ctx);
}

static size_t in_use(state *s)
{
    return hg_ctx_get_stats(s->ctx).bytes_in_use;
}

/* Drop stale objects whose memory may have been reused. */
static void drop_reused(state *s)
{
    size_t u = in_use(s);
    for (int i = 0; i < POOL; i++)
        if (s->pool[i].t && s->pool[i].stale_limit != SIZE_MAX && u > s->pool[i].stale_limit)
            s->pool[i].t = NULL;
    for (int i = 0; i < NTAPES; i++)
        if (s->tapes[i].t && s->tapes[i].stale_limit != SIZE_MAX && u > s->tapes[i].stale_limit)
            s->tapes[i].t = NULL;
}

/* After a successful rewind: live objects that turned stale get a limit. */
static void note_rewind(state *s)
{
    size_t u = in_use(s);
    for (int i = 0; i < POOL; i++)
        if (s->pool[i].t && s->pool[i].stale_limit == SIZE_MAX && hg_tensor_check(s->pool[i].t) != HG_OK)
            s->pool[i].stale_limit = u;
    for (int i = 0; i < NTAPES; i++)
        if (s->tapes[i].t && s->tapes[i].stale_limit == SIZE_MAX && hg_tape_ctx(s->tapes[i].t) == NULL)
            s->tapes[i].stale_limit = u;
    /* The optimizer has no stale detection (documented): forget it. */
    s->opt = NULL;
}

static hg_tensor *pick(state *s, reader *r)
{
    uint8_t b = u8(r);
    if (b % (POOL + 2) >= POOL)
        return NULL;
    return s->pool[b % (POOL + 2)].t;
}

static hg_tape *pick_tape(state *s, reader *r)
{
    uint8_t b = u8(r) % (NTAPES + 1);
    return b < NTAPES ? s->tapes[b].t : NULL;
}

static int is_live(const hg_tensor *t)
{
    return hg_tensor_check(t) == HG_OK;
}

/* Read every byte of a result and check its description. */
static void check_tensor(state *s, hg_tensor *t, const char *what)
{
    if (hg_tensor_check(t) != HG_OK || hg_tensor_ctx(t) != s->ctx)
        fail(what, s->ctx);
    int rank = hg_tensor_rank(t);
    hg_dtype dt = hg_tensor_dtype(t);
    if (rank < 0 || rank > HG_MAX_RANK || hg_dtype_size(dt) == 0)
        fail(what, s->ctx);
    const int64_t *shape = hg_tensor_shape(t);
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0)
            fail(what, s->ctx);
        n *= shape[i];
    }
    if (n != hg_tensor_numel(t))
        fail(what, s->ctx);
    const unsigned char *d = hg_tensor_cdata(t);
    size_t bytes = (size_t)n * hg_dtype_size(dt);
    unsigned acc = 0;
    for (size_t i = 0; i < bytes; i++)
        acc += d[i];
    volatile unsigned sink = acc;
    (void)sink;
    char buf[64];
    hg_tensor_describe(t, buf, sizeof buf);
}

/* Store an op's result (NULL: an error must be on the ctx). */
static void put(state *s, hg_tensor *t, const char *what)
{
    if (!t) {
        expect_error(s, what);
        return;
    }
    check_tensor(s, t, what);
    s->pool[s->next].t = t;
    s->pool[s->next].stale_limit = SIZE_MAX;
    s->next = (s->next + 1) % POOL;
}

/* A status from a call whose ctx is known. */
static void status_ok_or_error(state *s, hg_status st, const char *what)
{
    if (st != HG_OK)
        expect_error(s, what);
}

static double value_of(uint8_t b)
{
    switch (b) {
    case 250: return NAN;
    case 251: return INFINITY;
    case 252: return -INFINITY;
    case 253: return 0.0;
    case 254: return -0.0;
    case 255: return 1e300;
    default: return ((int)b - 125) / 16.0;
    }
}

static int64_t extent(uint8_t b)
{
    switch (b) {
    case 255: return -1;
    case 254: return (int64_t)1 << 40;
    case 253: return INT64_MAX / 2;
    default: return b % 5;
    }
}

static hg_dtype dtype_of(uint8_t b)
{
    switch (b % 8) {
    case 0:
    case 1:
    case 2: return HG_F64;
    case 3:
    case 4: return HG_F32;
    case 5:
    case 6: return HG_I32;
    default: return (hg_dtype)7; /* invalid */
    }
}

static int read_shape(reader *r, int64_t *shape)
{
    uint8_t b = u8(r);
    int rank = b % 5;
    if (b >= 250)
        rank = b - 250 + 4; /* 4..9: includes ranks above HG_MAX_RANK */
    if (rank > 8)
        rank = -1;
    for (int i = 0; i < rank && i < 8; i++)
        shape[i] = extent(u8(r));
    return rank;
}

static void fill(hg_tensor *t, reader *r)
{
    int64_t n = hg_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        uint8_t b = u8(r);
        switch (hg_tensor_dtype(t)) {
        case HG_F64: ((double *)hg_tensor_data(t))[i] = value_of(b); break;
        case HG_F32: ((float *)hg_tensor_data(t))[i] = (float)value_of(b); break;
        case HG_I32: ((int32_t *)hg_tensor_data(t))[i] = (int32_t)(b % 7) - 1; break;
        }
    }
}

/* ---- custom ops ------------------------------------------------------------ */

static hg_status sq_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr, hg_out_spec *out)
{
    (void)attr;
    if (hg_tensor_dtype(in[0]) != HG_F64)
        return hg_op_error(ctx, HG_ERR_DTYPE, "fuzz_square: f64 only");
    out->dtype = HG_F64;
    out->rank = hg_tensor_rank(in[0]);
    memcpy(out->shape, hg_tensor_shape(in[0]), sizeof(int64_t) * (size_t)out->rank);
    return HG_OK;
}

static hg_status sq_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    (void)attr;
    const double *x = hg_tensor_cdata(in[0]);
    double *y = hg_tensor_data(out[0]);
    for (int64_t i = 0; i < hg_tensor_numel(in[0]); i++)
        y[i] = x[i] * x[i];
    return HG_OK;
}

/* gin = 2 x g, written by a raw kernel: once-differentiable. */
static hg_status sq_backward(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor *const *gin)
{
    (void)ctx;
    const double *x = hg_tensor_cdata(hg_node_input(node, 0));
    const double *g = hg_tensor_cdata(gout[0]);
    double *d = hg_tensor_data(gin[0]);
    for (int64_t i = 0; i < hg_tensor_numel(gin[0]); i++)
        d[i] = 2 * x[i] * g[i];
    return HG_OK;
}

/* A vjp that returns a wrong-shaped cotangent: must be a clean error. */
static hg_status bad_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    (void)gout;
    gin[0] = hg_sum(ctx, hg_node_input(node, 0));
    return gin[0] ? HG_OK : hg_ctx_status(ctx);
}

static const hg_opdef square_once = {"fuzz_square_once", 1, 1, 0, sq_shape, sq_forward, NULL, sq_backward};
static const hg_opdef square_badvjp = {"fuzz_square_badvjp", 1, 1, 0, sq_shape, sq_forward, bad_vjp, NULL};
static const hg_opdef invalid_def = {"fuzz_invalid", 0, 1, 0, sq_shape, sq_forward, NULL, NULL};

/* ---- functions for the func helpers ---------------------------------------- */

static hg_tensor *fn_sum_tanh(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    return hg_sum(ctx, hg_mul(ctx, hg_tanh(ctx, in[0]), in[0]));
}

static hg_tensor *fn_elementwise(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)user;
    return hg_mul(ctx, hg_exp(ctx, in[0]), in[1]);
}

static hg_tensor *fn_fail(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    (void)in;
    (void)user;
    hg_op_error(ctx, HG_ERR_INVALID, "fn_fail: deliberate failure");
    return NULL;
}

static const hg_fn fns[3] = {fn_sum_tanh, fn_elementwise, fn_fail};

/* ---- the interpreter -------------------------------------------------------- */

enum {
    OP_NEW,
    OP_CREATE,
    OP_BINARY,
    OP_UNARY,
    OP_REDUCE,
    OP_SHAPE,
    OP_SOFTMAX,
    OP_INDEX,
    OP_NN,
    OP_TAPE_BEGIN,
    OP_TAPE_END,
    OP_WATCH,
    OP_PAUSE,
    OP_GRADIENT,
    OP_MARK,
    OP_REWIND,
    OP_CLEAR,
    OP_QUERY,
    OP_OPT_STEP,
    OP_OPTIMIZER,
    OP_FUNC,
    OP_CUSTOM,
    OP_LAYOUT,
    OP_CONV,
    OP_COUNT
};

static void op_new(state *s, reader *r)
{
    hg_dtype dt = dtype_of(u8(r));
    int64_t shape[8];
    int rank = read_shape(r, shape);
    hg_tensor *t = hg_tensor_new(s->ctx, dt, rank, shape);
    if (t)
        fill(t, r);
    put(s, t, "hg_tensor_new");
}

static void op_create(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_dtype dt = dtype_of(u8(r));
    int64_t shape[8];
    int rank = read_shape(r, shape);
    double v = value_of(u8(r));
    hg_tensor *t = NULL;
    switch (k % 11) {
    case 0: t = hg_zeros(s->ctx, dt, rank, shape); break;
    case 1: t = hg_ones(s->ctx, dt, rank, shape); break;
    case 2: t = hg_full(s->ctx, dt, rank, shape, v); break;
    case 3: t = hg_scalar(s->ctx, dt, v); break;
    case 4: t = hg_arange(s->ctx, dt, extent(u8(r)), v, 0.5); break;
    case 5: t = hg_rand_uniform(s->ctx, &s->rng, dt, rank, shape, -1, 1); break;
    case 6: t = hg_rand_normal(s->ctx, &s->rng, dt, rank, shape, 0, 1); break;
    case 7: t = hg_zeros_like(s->ctx, pick(s, r)); break;
    case 8: t = hg_ones_like(s->ctx, pick(s, r)); break;
    case 9: t = hg_tensor_clone(s->ctx, pick(s, r)); break;
    case 10: {
        double data[64];
        for (int i = 0; i < 64; i++)
            data[i] = value_of((uint8_t)(i * 37));
        int64_t n = rank > 0 ? shape[0] : 1;
        int64_t sh[1] = {n};
        t = hg_tensor_from(s->ctx, HG_F64, 1, sh, n >= 0 && n <= 64 ? data : NULL);
        break;
    }
    }
    put(s, t, "create");
}

static void op_binary(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_tensor *a = pick(s, r), *b = pick(s, r);
    hg_tensor *t = NULL;
    switch (k % 11) {
    case 0: t = hg_add(s->ctx, a, b); break;
    case 1: t = hg_sub(s->ctx, a, b); break;
    case 2: t = hg_mul(s->ctx, a, b); break;
    case 3: t = hg_div(s->ctx, a, b); break;
    case 4: t = hg_maximum(s->ctx, a, b); break;
    case 5: t = hg_minimum(s->ctx, a, b); break;
    case 6: t = hg_greater(s->ctx, a, b); break;
    case 7: t = hg_greater_equal(s->ctx, a, b); break;
    case 8: t = hg_where(s->ctx, pick(s, r), a, b); break;
    case 9: t = hg_matmul(s->ctx, a, b); break;
    case 10: {
        uint8_t f = u8(r);
        t = hg_matmul_t(s->ctx, a, b, f & 1, (f >> 1) & 1);
        break;
    }
    }
    put(s, t, "binary op");
}

static void op_unary(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_tensor *x = pick(s, r);
    double v = value_of(u8(r));
    hg_tensor *t = NULL;
    switch (k % 27) {
    case 0: t = hg_neg(s->ctx, x); break;
    case 1: t = hg_scale(s->ctx, x, v); break;
    case 2: t = hg_add_scalar(s->ctx, x, v); break;
    case 3: t = hg_pow_scalar(s->ctx, x, fmod(v, 4.0)); break;
    case 4: t = hg_exp(s->ctx, x); break;
    case 5: t = hg_log(s->ctx, x); break;
    case 6: t = hg_sqrt(s->ctx, x); break;
    case 7: t = hg_tanh(s->ctx, x); break;
    case 8: t = hg_sigmoid(s->ctx, x); break;
    case 9: t = hg_relu(s->ctx, x); break;
    case 10: t = hg_abs(s->ctx, x); break;
    case 11: t = hg_sign(s->ctx, x); break;
    case 12: t = hg_identity(s->ctx, x); break;
    case 13: t = hg_cast(s->ctx, x, dtype_of(u8(r))); break;
    case 14: t = hg_pow_scalar(s->ctx, x, (double)(k % 5) - 1); break;
    case 15: t = hg_sin(s->ctx, x); break;
    case 16: t = hg_cos(s->ctx, x); break;
    case 17: t = hg_log1p(s->ctx, x); break;
    case 18: t = hg_expm1(s->ctx, x); break;
    case 19: t = hg_erf(s->ctx, x); break;
    case 20: t = hg_softplus(s->ctx, x); break;
    case 21: t = hg_clamp(s->ctx, x, v, value_of(u8(r))); break; /* often lo > hi or NaN: refused */
    case 22: t = hg_leaky_relu(s->ctx, x, v); break;
    case 23: t = hg_elu(s->ctx, x, v); break;
    case 24: t = hg_gelu(s->ctx, x); break;
    case 25: t = hg_gelu_tanh(s->ctx, x); break;
    case 26: t = hg_silu(s->ctx, x); break;
    }
    put(s, t, "unary op");
}

static void op_reduce(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_tensor *x = pick(s, r);
    int axis = s8(r) % 8;
    int keep = k >> 7;
    hg_tensor *t = NULL;
    switch (k % 12) {
    case 0: t = hg_sum(s->ctx, x); break;
    case 1: t = hg_mean(s->ctx, x); break;
    case 2: t = hg_sum_axis(s->ctx, x, axis, keep); break;
    case 3: t = hg_mean_axis(s->ctx, x, axis, keep); break;
    case 4: {
        int64_t shape[8];
        int rank = read_shape(r, shape);
        t = hg_sum_to(s->ctx, x, rank, shape);
        break;
    }
    case 5: {
        /* Sum to the shape of another tensor (often valid). */
        hg_tensor *y = pick(s, r);
        if (is_live(y))
            t = hg_sum_to(s->ctx, x, hg_tensor_rank(y), hg_tensor_shape(y));
        else
            t = hg_sum_to(s->ctx, x, 1, NULL);
        break;
    }
    case 6: t = hg_max_axis(s->ctx, x, axis, keep); break;
    case 7: t = hg_min_axis(s->ctx, x, axis, keep); break;
    case 8: t = (k & 0x40) ? hg_argmax(s->ctx, x, axis, keep) : hg_argmin(s->ctx, x, axis, keep); break;
    case 9: t = hg_logsumexp(s->ctx, x, axis, keep); break;
    case 10:
    case 11: {
        /* up to 8 axes, often repeated or out of range; sometimes NULL */
        int axes[8], n_axes = (int)(u8(r) % 9) - 1;
        for (int i = 0; i < 8; i++)
            axes[i] = s8(r) % 8;
        const int *list = (k & 0x40) ? NULL : axes;
        t = k % 12 == 10 ? hg_sum_axes(s->ctx, x, n_axes, list, keep) : hg_mean_axes(s->ctx, x, n_axes, list, keep);
        break;
    }
    }
    put(s, t, "reduction");
}

static void op_shape(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_tensor *x = pick(s, r);
    int64_t shape[8];
    hg_tensor *t = NULL;
    switch (k % 6) {
    case 0: {
        int rank = read_shape(r, shape);
        t = hg_reshape(s->ctx, x, rank, shape);
        break;
    }
    case 1: {
        /* reshape to [-1] or [n, -1] (often valid) */
        int64_t sh[2] = {-1, extent(u8(r))};
        if (k & 0x80) {
            sh[0] = sh[1];
            sh[1] = -1;
        }
        t = hg_reshape(s->ctx, x, 1 + (k >> 6 & 1), sh);
        break;
    }
    case 2: {
        int rank = read_shape(r, shape);
        t = hg_broadcast_to(s->ctx, x, rank, shape);
        break;
    }
    case 3: {
        /* Broadcast to the shape of another tensor. */
        hg_tensor *y = pick(s, r);
        t = is_live(y) ? hg_broadcast_to(s->ctx, x, hg_tensor_rank(y), hg_tensor_shape(y))
                       : hg_broadcast_to(s->ctx, x, -1, NULL);
        break;
    }
    case 4: t = hg_transpose(s->ctx, x); break;
    case 5: {
        int perm[HG_MAX_RANK];
        for (int i = 0; i < HG_MAX_RANK; i++)
            perm[i] = i;
        uint8_t m = u8(r);
        if (m & 1) {
            int tmp = perm[0];
            perm[0] = perm[1];
            perm[1] = tmp;
        }
        if (m & 2) {
            int tmp = perm[1];
            perm[1] = perm[2];
            perm[2] = tmp;
        }
        if (m & 4)
            perm[0] = perm[1]; /* repeated axis */
        if (m & 8)
            perm[(m >> 5) % HG_MAX_RANK] = (int)(m >> 4) - 8; /* out of range, maybe */
        t = hg_permute(s->ctx, x, (m & 16) ? NULL : perm);
        break;
    }
    }
    put(s, t, "shape op");
}

static void op_softmax(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_tensor *x = pick(s, r);
    int axis = s8(r) % 8;
    put(s, k & 1 ? hg_log_softmax(s->ctx, x, axis) : hg_softmax(s->ctx, x, axis), "softmax");
}

static void op_index(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_tensor *a = pick(s, r), *b = pick(s, r);
    if (k & 1)
        put(s, hg_one_hot(s->ctx, a, (int64_t)s8(r) % 8, dtype_of(u8(r))), "hg_one_hot");
    else
        put(s, hg_gather(s->ctx, a, b), "hg_gather");
}

/* Layout ops: concat/stack of pool tensors, slices with random
 * bounds, index_select/index_add and gather_axis/scatter_add with pool
 * tensors as indices (mostly refused: they must be i32 and in range). */
static void op_layout(state *s, reader *r)
{
    uint8_t k = u8(r);
    int axis = s8(r) % 8;
    hg_tensor *x = pick(s, r), *y = pick(s, r), *z = pick(s, r);
    hg_tensor *xs[3] = {x, y, z};
    int n = 1 + u8(r) % 3;
    int64_t b[8], e[8], st[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (int64_t)s8(r) % 6;
        e[i] = (int64_t)s8(r) % 7;
        st[i] = (int64_t)(u8(r) % 4);
    }
    switch (k % 9) {
    case 0: put(s, hg_concat(s->ctx, n, xs, axis), "hg_concat"); break;
    case 1: put(s, hg_stack(s->ctx, n, xs, axis), "hg_stack"); break;
    case 2:
        put(s, hg_slice(s->ctx, x, (k & 16) ? NULL : b, (k & 32) ? NULL : e, (k & 64) ? NULL : st), "hg_slice");
        break;
    case 3: put(s, hg_slice_axis(s->ctx, x, axis, b[0], e[0], st[0]), "hg_slice_axis"); break;
    case 4: put(s, hg_narrow(s->ctx, x, axis, b[0], e[0]), "hg_narrow"); break;
    case 5: put(s, hg_index_select(s->ctx, x, axis, y), "hg_index_select"); break;
    case 6: put(s, hg_index_add(s->ctx, x, axis, y, z), "hg_index_add"); break;
    case 7: put(s, hg_gather_axis(s->ctx, x, axis, y), "hg_gather_axis"); break;
    case 8: put(s, hg_scatter_add(s->ctx, x, axis, y, z), "hg_scatter_add"); break;
    }
}

/* Convolution, pooling and batched products with random
 * geometry (often refused: shapes, negative or huge strides). */
static void op_conv(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_tensor *x = pick(s, r), *w = pick(s, r), *bias = pick(s, r);
    hg_conv2d_params p;
    hg_pool2d_params q;
    for (int i = 0; i < 2; i++) {
        p.stride[i] = s8(r) % 4;
        p.padding[i] = s8(r) % 3;
        p.dilation[i] = s8(r) % 3;
        q.kernel[i] = s8(r) % 4;
        q.stride[i] = s8(r) % 3;
        q.padding[i] = s8(r) % 2;
    }
    int64_t h = s8(r) % 6, wd = s8(r) % 6;
    switch (k % 7) {
    case 0: put(s, hg_conv2d(s->ctx, x, w, (k & 8) ? bias : NULL, (k & 16) ? NULL : &p), "hg_conv2d"); break;
    case 1: put(s, hg_conv2d_transpose(s->ctx, x, w, h, wd, &p), "hg_conv2d_transpose"); break;
    case 2: put(s, hg_conv2d_weight_grad(s->ctx, x, w, h, wd, &p), "hg_conv2d_weight_grad"); break;
    case 3: put(s, hg_max_pool2d(s->ctx, x, (k & 16) ? NULL : &q), "hg_max_pool2d"); break;
    case 4: put(s, hg_avg_pool2d(s->ctx, x, &q), "hg_avg_pool2d"); break;
    case 5: put(s, hg_matmul_batched(s->ctx, x, w, k & 32, k & 64), "hg_matmul_batched"); break;
    case 6: put(s, hg_matmul_batched(s->ctx, x, w, 0, 0), "hg_matmul_batched"); break;
    }
}

static void op_nn(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_tensor *a = pick(s, r), *b = pick(s, r);
    switch (k % 7) {
    case 0: put(s, hg_softmax_cross_entropy(s->ctx, a, b), "hg_softmax_cross_entropy"); break;
    case 1: put(s, hg_softmax_cross_entropy_each(s->ctx, a, b), "hg_softmax_cross_entropy_each"); break;
    case 2: put(s, hg_mse(s->ctx, a, b), "hg_mse"); break;
    case 3: put(s, hg_dense(s->ctx, a, b, pick(s, r)), "hg_dense"); break;
    case 4: {
        hg_activation act = (hg_activation)(u8(r) % 5);
        hg_tensor *t = hg_activate(s->ctx, a, act);
        if (act == HG_ACT_NONE && t && t != a)
            fail("hg_activate(NONE) did not return its input", s->ctx);
        put(s, t, "hg_activate");
        break;
    }
    case 5: {
        double acc = hg_accuracy(s->ctx, a, b);
        if (isnan(acc) && hg_ctx_status(s->ctx) == HG_OK) {
            /* NaN without an error only for an empty batch. */
            if (!(is_live(a) && hg_tensor_rank(a) == 2 && hg_tensor_dim(a, 0) == 0))
                fail("hg_accuracy: NaN without an error", s->ctx);
        }
        break;
    }
    case 6: {
        hg_mlp spec = {.n_layers = 1 + u8(r) % 3, .hidden = (hg_activation)(u8(r) % 4)};
        for (int i = 0; i <= spec.n_layers; i++)
            spec.sizes[i] = u8(r) % 4; /* 0 is invalid */
        hg_tensor *params[2 * 3];
        hg_status st = hg_mlp_init(s->ctx, &spec, dtype_of(u8(r)), (hg_init)(k >> 7), &s->rng, params);
        status_ok_or_error(s, st, "hg_mlp_init");
        if (st == HG_OK) {
            for (int i = 0; i < 2 * spec.n_layers; i++)
                put(s, params[i], "hg_mlp_init param");
            put(s, hg_mlp_forward(s->ctx, &spec, params, a), "hg_mlp_forward");
        }
        break;
    }
    }
}

static void op_tape_begin(state *s, reader *r)
{
    uint8_t b = u8(r);
    unsigned flags = b % 4;
    if (b == 255)
        flags = 8; /* unknown flag */
    hg_tape *t = hg_tape_begin(s->ctx, flags);
    if (!t) {
        expect_error(s, "hg_tape_begin");
        return;
    }
    int i = u8(r) % NTAPES;
    s->tapes[i].t = t;
    s->tapes[i].stale_limit = SIZE_MAX;
}

static int tape_known(state *s, hg_tape *t)
{
    return t && hg_tape_ctx(t) == s->ctx;
}

static void op_tape_end(state *s, reader *r)
{
    hg_tape *t = pick_tape(s, r);
    hg_status st = hg_tape_end(t);
    if (tape_known(s, t))
        status_ok_or_error(s, st, "hg_tape_end");
    else if (st == HG_OK)
        fail("hg_tape_end of a NULL or stale tape succeeded", s->ctx);
}

static void op_watch(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_tape *t = pick_tape(s, r);
    hg_status st;
    if (k & 1) {
        hg_tensor *ts[3] = {pick(s, r), pick(s, r), pick(s, r)};
        st = hg_watch_n(t, (k >> 1) % 4, (k & 0x80) ? NULL : ts);
        if (tape_known(s, t))
            status_ok_or_error(s, st, "hg_watch_n");
    } else {
        hg_tensor *x = pick(s, r);
        st = hg_watch(t, x);
        if (tape_known(s, t))
            status_ok_or_error(s, st, "hg_watch");
        (void)hg_tape_tracks(t, x);
    }
}

static void op_pause(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_tape *t = pick_tape(s, r);
    hg_status st = k & 1 ? hg_tape_resume(t) : hg_tape_pause(t);
    if (tape_known(s, t))
        status_ok_or_error(s, st, "hg_tape_pause/resume");
}

static void op_gradient(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_tape *t = pick_tape(s, r);
    hg_tensor *target = pick(s, r);
    int n = k % 4;
    if (k == 255)
        n = -1;
    hg_tensor *src[3] = {pick(s, r), pick(s, r), pick(s, r)};
    hg_tensor *seed = (k & 0x10) ? pick(s, r) : NULL;
    if ((k & 0x20) && is_live(target))
        seed = hg_ones_like(s->ctx, target);
    hg_tensor *g[3] = {(hg_tensor *)1, (hg_tensor *)1, (hg_tensor *)1};
    hg_status st = hg_gradient(t, target, n, (k & 0x40) && n > 0 ? NULL : src, seed, (k & 0x80) ? NULL : g);
    if (tape_known(s, t))
        status_ok_or_error(s, st, "hg_gradient");
    if (k & 0x80)
        return;
    for (int i = 0; i < n; i++) {
        if (st != HG_OK) {
            if (g[i] != NULL)
                fail("hg_gradient failed but left a non-NULL result", s->ctx);
            continue;
        }
        if (!g[i])
            continue; /* HG_TAPE_UNCONNECTED_NULL */
        check_tensor(s, g[i], "hg_gradient result");
        if (hg_tensor_rank(g[i]) != hg_tensor_rank(src[i]) || hg_tensor_dtype(g[i]) != hg_tensor_dtype(src[i]) ||
            hg_tensor_numel(g[i]) != hg_tensor_numel(src[i]))
            fail("hg_gradient result does not match its source", s->ctx);
        put(s, g[i], "hg_gradient result");
    }
}

static void op_mark(state *s, reader *r)
{
    (void)r;
    hg_mark m = hg_ctx_mark(s->ctx);
    if (s->n_marks < NMARKS)
        s->marks[s->n_marks++] = m;
    else
        s->marks[u8(r) % NMARKS] = m;
}

static void op_rewind(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_status st;
    if (k % 5 == 0 || s->n_marks == 0)
        st = hg_ctx_reset(s->ctx);
    else
        st = hg_ctx_rewind(s->ctx, s->marks[k % s->n_marks]);
    if (st != HG_OK)
        expect_error(s, "hg_ctx_rewind");
    else
        note_rewind(s);
}

static void op_query(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_tensor *t = pick(s, r);
    switch (k % 8) {
    case 0: {
        double v = hg_item(t);
        if (isnan(v) && is_live(t) && hg_tensor_numel(t) != 1)
            expect_error(s, "hg_item");
        break;
    }
    case 1: {
        int64_t i = (int64_t)s8(r);
        double v = hg_get(t, i);
        if (isnan(v) && is_live(t) && (i < 0 || i >= hg_tensor_numel(t)))
            expect_error(s, "hg_get");
        break;
    }
    case 2: (void)hg_tensor_dim(t, s8(r)); break;
    case 3:
        if (!hg_tensor_f64(t) && is_live(t))
            expect_error(s, "hg_tensor_f64");
        break;
    case 4:
        if (!hg_tensor_f32(t) && is_live(t))
            expect_error(s, "hg_tensor_f32");
        break;
    case 5:
        if (!hg_tensor_i32(t) && is_live(t))
            expect_error(s, "hg_tensor_i32");
        break;
    case 6: {
        char small[4];
        hg_tensor_describe(t, small, sizeof small);
        if (small[3] != '\0' && strlen(small) > 3)
            fail("hg_tensor_describe overflowed", s->ctx);
        break;
    }
    case 7: {
        hg_ctx_stats st = hg_ctx_get_stats(s->ctx);
        if (st.bytes_in_use > st.bytes_reserved || st.peak_bytes < st.bytes_in_use)
            fail("inconsistent stats", s->ctx);
        hg_ctx_reset_peak(s->ctx);
        break;
    }
    }
}

static void op_opt_step(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_opt_config cfg = {.kind = (hg_opt_kind)(k % 4), .lr = value_of(u8(r)), .momentum = 0.9};
    int n = 1 + (k >> 2) % 2;
    hg_tensor *p[2] = {pick(s, r), pick(s, r)}, *g[2] = {pick(s, r), pick(s, r)};
    hg_tensor *state_[4] = {NULL, NULL, NULL, NULL};
    if (k & 0x10)
        state_[0] = pick(s, r);
    hg_tensor *lr = (k & 0x20) ? pick(s, r) : NULL;
    hg_tensor *np[2] = {NULL, NULL};
    int t = (int)(k >> 6) - 1;
    hg_status st = hg_opt_step(s->ctx, &cfg, lr, t, n, p, g, state_, np);
    status_ok_or_error(s, st, "hg_opt_step");
    if (st == HG_OK)
        for (int i = 0; i < n; i++)
            put(s, np[i], "hg_opt_step result");
}

static void op_optimizer(state *s, reader *r)
{
    uint8_t k = u8(r);
    if (k & 1 || !s->opt) {
        hg_opt_config cfg = {.kind = (hg_opt_kind)((k >> 1) % 4), .lr = 0.1, .momentum = 0.5};
        s->opt_params[0] = pick(s, r);
        s->opt_params[1] = pick(s, r);
        s->opt_n = (k >> 3) % 3;
        hg_optimizer *o = hg_optimizer_new(s->ctx, &cfg, s->opt_n, s->opt_params);
        if (!o)
            expect_error(s, "hg_optimizer_new");
        else
            s->opt = o;
    } else {
        hg_tensor *g[2] = {pick(s, r), pick(s, r)};
        /* The optimizer keeps pointers to its parameters: skip if one went stale. */
        for (int i = 0; i < s->opt_n; i++)
            if (!is_live(s->opt_params[i]))
                return;
        status_ok_or_error(s, hg_optimizer_step(s->opt, (k & 2) ? NULL : g), "hg_optimizer_step");
    }
}

static void op_func(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_fn f = fns[(k >> 4) % 3];
    hg_tensor *in[2] = {pick(s, r), pick(s, r)};
    int n = 1 + ((k >> 6) & 1);
    unsigned flags = k >> 7;
    hg_tensor *value = NULL, *out[2] = {NULL, NULL};
    hg_tensor *tan[2] = {pick(s, r), pick(s, r)};
    /* The Jacobian and Hessian are one sweep per row: keep them small. */
    for (int i = 0; i < n; i++)
        if (is_live(in[i]) && hg_tensor_numel(in[i]) > 16 && k % 5 >= 3)
            return;
    hg_status st = HG_OK;
    switch (k % 5) {
    case 0: st = hg_vjp(s->ctx, f, n, in, NULL, (k & 8) ? pick(s, r) : NULL, flags, &value, out); break;
    case 1: st = hg_jvp(s->ctx, f, n, in, NULL, tan, flags, &value, out); break;
    case 2: st = hg_hvp(s->ctx, f, n, in, NULL, tan, flags, &value, out); break;
    case 3: st = hg_jacobian(s->ctx, f, n, in, NULL, flags, out); break;
    case 4: st = hg_hessian(s->ctx, f, n, in, NULL, flags, out); break;
    }
    status_ok_or_error(s, st, "func helper");
    if (st == HG_OK) {
        if (value)
            put(s, value, "func value");
        int nout = k % 5 >= 3 ? 1 : n;
        for (int i = 0; i < nout; i++)
            if (out[i])
                put(s, out[i], "func result");
    }
}

static void op_custom(state *s, reader *r)
{
    uint8_t k = u8(r);
    hg_tensor *x = pick(s, r);
    hg_tensor *in[1] = {x};
    switch (k % 4) {
    case 0: put(s, hg_apply(s->ctx, &square_once, in, NULL), "fuzz_square_once"); break;
    case 1: put(s, hg_apply(s->ctx, &square_badvjp, in, NULL), "fuzz_square_badvjp"); break;
    case 2: put(s, hg_apply(s->ctx, &invalid_def, in, NULL), "invalid opdef"); break;
    case 3: put(s, hg_apply(s->ctx, &square_once, NULL, NULL), "hg_apply NULL inputs"); break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, size};
    fail_alloc fa = {0, 0, 0};
    uint8_t b0 = u8(&r);
    if (b0 & 0x80)
        fa.fail_at = 1 + (b0 & 0x7f);
    hg_allocator alloc = {fa_alloc, fa_free, &fa};
    hg_ctx_options opts = {.allocator = &alloc, .chunk_bytes = 4096, .max_bytes = (size_t)64 << 20};
    static state s;
    memset(&s, 0, sizeof s);
    s.ctx = hg_ctx_new(&opts);
    if (!s.ctx) {
        if (fa.live != 0)
            abort();
        return 0;
    }
    hg_rng_seed(&s.rng, 42);
    for (int step = 0; step < MAX_STEPS && r.n; step++) {
        drop_reused(&s);
        uint8_t op = u8(&r) % OP_COUNT;
        switch (op) {
        case OP_NEW: op_new(&s, &r); break;
        case OP_CREATE: op_create(&s, &r); break;
        case OP_BINARY: op_binary(&s, &r); break;
        case OP_UNARY: op_unary(&s, &r); break;
        case OP_REDUCE: op_reduce(&s, &r); break;
        case OP_SHAPE: op_shape(&s, &r); break;
        case OP_SOFTMAX: op_softmax(&s, &r); break;
        case OP_INDEX: op_index(&s, &r); break;
        case OP_NN: op_nn(&s, &r); break;
        case OP_TAPE_BEGIN: op_tape_begin(&s, &r); break;
        case OP_TAPE_END: op_tape_end(&s, &r); break;
        case OP_WATCH: op_watch(&s, &r); break;
        case OP_PAUSE: op_pause(&s, &r); break;
        case OP_GRADIENT: op_gradient(&s, &r); break;
        case OP_MARK: op_mark(&s, &r); break;
        case OP_REWIND: op_rewind(&s, &r); break;
        case OP_CLEAR: hg_ctx_clear_error(s.ctx); break;
        case OP_QUERY: op_query(&s, &r); break;
        case OP_OPT_STEP: op_opt_step(&s, &r); break;
        case OP_OPTIMIZER: op_optimizer(&s, &r); break;
        case OP_FUNC: op_func(&s, &r); break;
        case OP_CUSTOM: op_custom(&s, &r); break;
        case OP_LAYOUT: op_layout(&s, &r); break;
        case OP_CONV: op_conv(&s, &r); break;
        }
    }
    hg_ctx_free(s.ctx);
    if (fa.live != 0) {
        fprintf(stderr, "fuzz_ops: %ld allocations leaked\n", fa.live);
        abort();
    }
    return 0;
}
