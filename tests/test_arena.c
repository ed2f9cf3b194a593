/* Arena and tensor basics: alignment, mark/rewind reuse, peak statistics,
 * stale-tensor detection, allocator hook, limits, creation and accessors. */
#include "testutil.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

START_TEST(data_is_64_byte_aligned)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    for (int64_t n = 0; n < 40; n += 3) {
        hg_tensor *t = hg_zeros(ctx, HG_F32, 1, &n);
        ck_assert_ptr_nonnull(t);
        ck_assert_uint_eq((uintptr_t)hg_tensor_cdata(t) % 64, 0);
    }
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(rewind_reuses_memory_without_new_chunks)
{
    hg_ctx *ctx = hg_ctx_new(&(hg_ctx_options){.chunk_bytes = 64 * 1024});
    hg_tensor *keep = hg_ones(ctx, HG_F64, 1, SHAPE(10));
    hg_mark m = hg_ctx_mark(ctx);
    hg_ctx_stats before = hg_ctx_get_stats(ctx);
    size_t first_peak = 0;
    uint64_t first_allocs = 0;
    for (int step = 0; step < 20; step++) {
        for (int i = 0; i < 50; i++)
            ck_assert_ptr_nonnull(hg_zeros(ctx, HG_F64, 2, SHAPE(16, 16)));
        ck_assert_ptr_nonnull(hg_zeros(ctx, HG_F64, 1, SHAPE(100000))); /* larger than a chunk */
        hg_ctx_stats s = hg_ctx_get_stats(ctx);
        if (step == 0) {
            first_peak = s.peak_bytes;
            first_allocs = s.chunk_allocs;
        }
        ck_assert_uint_eq(s.chunk_allocs, first_allocs); /* nothing new after step 0 */
        ck_assert_uint_eq(s.peak_bytes, first_peak);
        ck_assert_int_eq(hg_ctx_rewind(ctx, m), HG_OK);
        ck_assert_uint_eq(hg_ctx_get_stats(ctx).bytes_in_use, before.bytes_in_use);
    }
    hg_ctx_stats after = hg_ctx_get_stats(ctx);
    /* All chunk allocations happened in the first step. */
    hg_ctx_stats one_more;
    for (int i = 0; i < 50; i++)
        hg_zeros(ctx, HG_F64, 2, SHAPE(16, 16));
    hg_zeros(ctx, HG_F64, 1, SHAPE(100000));
    one_more = hg_ctx_get_stats(ctx);
    ck_assert_uint_eq(one_more.chunk_allocs, after.chunk_allocs);
    ck_assert_uint_eq(after.peak_bytes, first_peak);
    ck_assert_double_eq(hg_item(hg_sum(ctx, keep)), 10.0);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(peak_and_in_use_statistics)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_ctx_stats s0 = hg_ctx_get_stats(ctx);
    ck_assert_uint_eq(s0.bytes_in_use, 0);
    hg_mark m = hg_ctx_mark(ctx);
    hg_zeros(ctx, HG_F64, 1, SHAPE(1000));
    hg_ctx_stats s1 = hg_ctx_get_stats(ctx);
    ck_assert_uint_ge(s1.bytes_in_use, 8000);
    ck_assert_uint_eq(s1.peak_bytes, s1.bytes_in_use);
    ck_assert_uint_eq(s1.tensors, 1);
    hg_ctx_rewind(ctx, m);
    hg_ctx_stats s2 = hg_ctx_get_stats(ctx);
    ck_assert_uint_eq(s2.bytes_in_use, 0);
    ck_assert_uint_eq(s2.peak_bytes, s1.peak_bytes);
    ck_assert_uint_eq(s2.tensors, 0);
    hg_ctx_reset_peak(ctx);
    ck_assert_uint_eq(hg_ctx_get_stats(ctx).peak_bytes, 0);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(use_after_rewind_is_an_error)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *old = hg_ones(ctx, HG_F64, 1, SHAPE(3));
    hg_mark m = hg_ctx_mark(ctx);
    hg_tensor *t = hg_ones(ctx, HG_F64, 1, SHAPE(3));
    ck_assert_int_eq(hg_tensor_check(t), HG_OK);
    ck_assert_int_eq(hg_ctx_rewind(ctx, m), HG_OK);
    ck_assert_int_eq(hg_tensor_check(t), HG_ERR_STALE);
    ck_assert_int_eq(hg_tensor_check(old), HG_OK);
    ck_assert_ptr_null(hg_add(ctx, t, old));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_STALE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "stale"));
    ck_assert_ptr_null(hg_tensor_data(t));
    ck_assert(isnan(hg_item(t)));
    hg_ctx_clear_error(ctx);
    /* Reset kills everything, including tensors from before the mark. */
    ck_assert_int_eq(hg_ctx_reset(ctx), HG_OK);
    ck_assert_int_eq(hg_tensor_check(old), HG_ERR_STALE);
    hg_tape *tape = hg_tape_begin(ctx, 0);
    ck_assert_int_eq(hg_watch(tape, old), HG_ERR_STALE);
    hg_tape_end(tape);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(rewind_errors)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_zeros(ctx, HG_F64, 1, SHAPE(4));
    hg_mark m = hg_ctx_mark(ctx);
    hg_ctx_reset(ctx);
    ck_assert_int_eq(hg_ctx_rewind(ctx, m), HG_ERR_INVALID); /* mark ahead of position */
    hg_ctx_clear_error(ctx);
    hg_mark m2 = hg_ctx_mark(ctx);
    hg_tape *tape = hg_tape_begin(ctx, 0);
    ck_assert_int_eq(hg_ctx_rewind(ctx, m2), HG_ERR_TAPE); /* would free an active tape */
    ck_assert_int_eq(hg_tape_end(tape), HG_OK);
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_ctx_rewind(ctx, m2), HG_OK);
    ck_assert_int_eq(hg_ctx_rewind(NULL, m2), HG_ERR_NULL);

    /* A mark released by a rewind to an older mark is refused, even once the
     * position has grown past it again. */
    hg_mark outer = hg_ctx_mark(ctx);
    hg_zeros(ctx, HG_F64, 1, SHAPE(10));
    hg_mark inner = hg_ctx_mark(ctx);
    hg_zeros(ctx, HG_F64, 1, SHAPE(10));
    ck_assert_int_eq(hg_ctx_rewind(ctx, outer), HG_OK);
    hg_tensor *live = hg_zeros(ctx, HG_F64, 1, SHAPE(100));
    ck_assert_int_eq(hg_ctx_rewind(ctx, inner), HG_ERR_INVALID);
    ck_assert_int_eq(hg_tensor_check(live), HG_OK);
    hg_ctx_clear_error(ctx);
    /* Rewinding to the same mark again and again stays valid. */
    for (int i = 0; i < 100; i++) {
        hg_zeros(ctx, HG_F64, 1, SHAPE(10));
        ck_assert_int_eq(hg_ctx_rewind(ctx, outer), HG_OK);
    }
    ck_assert_int_eq(hg_ctx_reset(NULL), HG_ERR_NULL);
    hg_ctx_free(ctx);
}
END_TEST

typedef struct counting {
    long live;
    long calls;
    long fail_after; /* fail every call after this many; -1 never */
} counting;

static void *count_alloc(size_t size, void *user)
{
    counting *c = user;
    if (c->fail_after >= 0 && c->calls >= c->fail_after)
        return NULL;
    c->calls++;
    void *p = malloc(size);
    if (p)
        c->live++;
    return p;
}

static void count_free(void *p, size_t size, void *user)
{
    (void)size;
    counting *c = user;
    c->live--;
    free(p);
}

START_TEST(allocator_hook_and_limits)
{
    counting c = {0, 0, -1};
    hg_allocator a = {count_alloc, count_free, &c};
    hg_ctx *ctx = hg_ctx_new(&(hg_ctx_options){.allocator = &a, .chunk_bytes = 8192});
    for (int i = 0; i < 100; i++)
        hg_zeros(ctx, HG_F64, 1, SHAPE(500));
    ck_assert_int_gt(c.live, 2);
    hg_ctx_free(ctx);
    ck_assert_int_eq(c.live, 0);

    /* Allocation failure: a clean HG_ERR_OOM, and the ctx works after rewind. */
    c = (counting){0, 0, 3};
    ctx = hg_ctx_new(&(hg_ctx_options){.allocator = &a, .chunk_bytes = 8192});
    hg_mark m = hg_ctx_mark(ctx);
    hg_tensor *t = NULL;
    for (int i = 0; i < 100 && (t = hg_zeros(ctx, HG_F64, 1, SHAPE(500))); i++)
        ;
    ck_assert_ptr_null(t);
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_OOM);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "out of memory"));
    hg_ctx_clear_error(ctx);
    hg_ctx_rewind(ctx, m);
    ck_assert_ptr_nonnull(hg_zeros(ctx, HG_F64, 1, SHAPE(500)));
    hg_ctx_free(ctx);
    ck_assert_int_eq(c.live, 0);

    /* max_bytes limit. */
    ctx = hg_ctx_new(&(hg_ctx_options){.max_bytes = 1 << 20});
    ck_assert_ptr_null(hg_zeros(ctx, HG_F64, 1, SHAPE(1 << 20)));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_OOM);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(creation_and_accessors)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *a = T64(ctx, 2, SHAPE(2, 3), 1, 2, 3, 4, 5, 6);
    ck_assert_int_eq(hg_tensor_rank(a), 2);
    ck_assert_int_eq(hg_tensor_dim(a, 0), 2);
    ck_assert_int_eq(hg_tensor_dim(a, -1), 3);
    ck_assert_int_eq(hg_tensor_dim(a, 2), -1);
    ck_assert_int_eq(hg_tensor_numel(a), 6);
    ck_assert_int_eq(hg_tensor_dtype(a), HG_F64);
    ck_assert_double_eq(hg_get(a, 4), 5.0);
    ck_assert_ptr_eq(hg_tensor_ctx(a), ctx);
    ck_assert_ptr_nonnull(hg_tensor_f64(a));
    ck_assert_ptr_null(hg_tensor_f32(a));
    ck_assert_ptr_nonnull(hg_tensor_cf64(a));
    ck_assert_ptr_null(hg_tensor_cf32(a));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    char buf[64];
    ck_assert_str_eq(hg_tensor_describe(a, buf, sizeof buf), "[2,3] f64");
    ck_assert(isnan(hg_item(a)));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    ck_assert(isnan(hg_get(a, 6)));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_RANGE);
    hg_ctx_clear_error(ctx);

    hg_tensor *r = hg_arange(ctx, HG_I32, 5, 2, 3);
    ck_assert_int_eq(hg_tensor_ci32(r)[4], 14);
    ck_assert_double_eq(hg_item(hg_scalar(ctx, HG_F32, 2.5)), 2.5);
    ck_assert_double_eq(hg_get(hg_full(ctx, HG_F32, 1, SHAPE(3), -1.5), 2), -1.5);
    ck_assert_double_eq(hg_get(hg_ones_like(ctx, a), 5), 1.0);
    ck_assert_double_eq(hg_get(hg_zeros_like(ctx, a), 5), 0.0);
    hg_tensor *c = hg_tensor_clone(ctx, a);
    ck_assert_double_eq(hg_get(c, 5), 6.0);
    hg_tensor *empty = hg_zeros(ctx, HG_F64, 2, SHAPE(0, 4));
    ck_assert_int_eq(hg_tensor_numel(empty), 0);
    ck_assert_ctx_ok(ctx);

    /* Bad shapes. */
    ck_assert_ptr_null(hg_zeros(ctx, HG_F64, 2, SHAPE(-1, 2)));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_zeros(ctx, HG_F64, HG_MAX_RANK + 1, SHAPE(1, 1, 1, 1, 1, 1, 1)));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_zeros(ctx, HG_F64, 3, SHAPE(INT64_MAX / 2, 4, 4)));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_OVERFLOW);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_zeros(ctx, HG_F64, 2, NULL));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_zeros(ctx, (hg_dtype)7, 1, SHAPE(2)));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_DTYPE);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_tensor_from(ctx, HG_F64, 1, SHAPE(2), NULL));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    ck_assert_ptr_null(hg_zeros(NULL, HG_F64, 1, SHAPE(2)));
    ck_assert_int_eq(hg_tensor_rank(NULL), -1);
    ck_assert_ptr_null(hg_tensor_shape(NULL));
    ck_assert_int_eq(hg_ctx_status(NULL), HG_ERR_NULL);
    hg_ctx_free(NULL);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(first_error_is_sticky)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *a = hg_ones(ctx, HG_F64, 1, SHAPE(3));
    hg_tensor *b = hg_ones(ctx, HG_F64, 1, SHAPE(4));
    hg_tensor *bad = hg_add(ctx, a, b);
    ck_assert_ptr_null(bad);
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_SHAPE);
    char first[512];
    snprintf(first, sizeof first, "%s", hg_ctx_error(ctx));
    ck_assert_ptr_nonnull(strstr(first, "hg_add"));
    ck_assert_ptr_nonnull(strstr(first, "[3]"));
    ck_assert_ptr_nonnull(strstr(first, "[4]"));
    /* A chain through the NULL keeps the first message. */
    ck_assert_ptr_null(hg_exp(ctx, hg_mul(ctx, bad, a)));
    ck_assert_str_eq(hg_ctx_error(ctx), first);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(rng_is_seeded_and_reproducible)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng r1, r2;
    hg_rng_seed(&r1, 42);
    hg_rng_seed(&r2, 42);
    hg_tensor *a = hg_rand_normal(ctx, &r1, HG_F64, 1, SHAPE(20000), 1.0, 2.0);
    hg_tensor *b = hg_rand_normal(ctx, &r2, HG_F64, 1, SHAPE(20000), 1.0, 2.0);
    ck_assert_int_eq(memcmp(hg_tensor_cdata(a), hg_tensor_cdata(b), 20000 * sizeof(double)), 0);
    double mean = hg_item(hg_mean(ctx, a));
    ck_assert_double_le(fabs(mean - 1.0), 0.05);
    hg_tensor *u = hg_rand_uniform(ctx, &r1, HG_F32, 1, SHAPE(1000), -1, 3);
    for (int i = 0; i < 1000; i++)
        ck_assert(hg_get(u, i) >= -1 && hg_get(u, i) < 3);
    ck_assert_ptr_null(hg_rand_uniform(ctx, NULL, HG_F32, 1, SHAPE(2), 0, 1));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_ctx_free(ctx);
}
END_TEST

/* Regression: a mark from another ctx linked that
 * ctx's objects into this one (heap use-after-free on reset under ASan). */
START_TEST(mark_from_another_ctx_is_refused)
{
    hg_ctx *a = hg_ctx_new(NULL), *b = hg_ctx_new(NULL);
    hg_tensor *ta = hg_zeros(a, HG_F64, 1, SHAPE(4));
    hg_mark ma = hg_ctx_mark(a);
    hg_tensor *ta2 = hg_ones(a, HG_F64, 1, SHAPE(4));
    hg_tensor *tb = hg_ones(b, HG_F64, 1, SHAPE(1000));
    /* b has taken a mark of its own (a per-step mark, say), so a's mark
     * looks plausible to b by position and serial alone: only its owner
     * tells them apart. */
    hg_mark mb = hg_ctx_mark(b);
    hg_tensor *tb2 = hg_ones(b, HG_F64, 1, SHAPE(1000));
    ck_assert_uint_le(ma.serial, mb.serial);
    ck_assert_uint_le(ma.offset, mb.offset);
    ck_assert_int_eq(hg_ctx_rewind(b, ma), HG_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(b), "another ctx"));
    hg_ctx_clear_error(b);
    ck_assert_int_eq(hg_tensor_check(tb2), HG_OK); /* nothing released */
    ck_assert_int_eq(hg_tensor_check(ta2), HG_OK);
    hg_mark zero;
    memset(&zero, 0, sizeof zero);
    ck_assert_int_eq(hg_ctx_rewind(b, zero), HG_ERR_INVALID);
    hg_ctx_clear_error(b);
    ck_assert_int_eq(hg_ctx_rewind(b, mb), HG_OK); /* b's own mark works */
    ck_assert_int_eq(hg_tensor_check(tb2), HG_ERR_STALE);
    ck_assert_int_eq(hg_tensor_check(tb), HG_OK);
    ck_assert_int_eq(hg_ctx_reset(b), HG_OK);
    ck_assert_int_eq(hg_tensor_check(tb), HG_ERR_STALE);
    ck_assert_int_eq(hg_tensor_check(ta), HG_OK);
    ck_assert_int_eq(hg_ctx_rewind(a, ma), HG_OK); /* its own mark still works */
    ck_assert_int_eq(hg_tensor_check(ta2), HG_ERR_STALE);
    ck_assert_int_eq(hg_tensor_check(ta), HG_OK);
    hg_ctx_free(a);
    hg_ctx_free(b);
}
END_TEST

/* A custom op whose vjp tries to rewind/reset the ctx being swept. */
static hg_status rewind_in_vjp, reset_in_vjp;
static hg_mark vjp_mark;

static hg_status copy_fwd(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    (void)attr;
    memcpy(hg_tensor_data(out[0]), hg_tensor_data(in[0]),
           (size_t)hg_tensor_numel(in[0]) * hg_dtype_size(hg_tensor_dtype(in[0])));
    return HG_OK;
}

/* dx = g (after trying to release the sweep's memory) */
static hg_status rewinding_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    (void)node;
    rewind_in_vjp = hg_ctx_rewind(ctx, vjp_mark);
    reset_in_vjp = hg_ctx_reset(ctx);
    gin[0] = gout[0];
    return HG_OK;
}

static const hg_opdef rewinding_op = {"rewinding_identity", 1, 1, 0, shape_like_input, copy_fwd, rewinding_vjp, NULL};

/* Regression (finding 6): hg_ctx_reset/hg_ctx_rewind inside a vjp were
 * accepted and the sweep then walked released memory. */
START_TEST(rewind_during_sweep_is_refused)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(3), 1, 2, 3);
    vjp_mark = hg_ctx_mark(ctx);
    hg_tape *tape = hg_tape_begin(ctx, 0);
    hg_watch(tape, x);
    hg_tensor *y = hg_sum(ctx, hg_mul(ctx, hg_apply(ctx, &rewinding_op, &x, NULL), x));
    hg_tape_end(tape);
    hg_tensor *g = NULL;
    rewind_in_vjp = reset_in_vjp = HG_OK;
    hg_gradient(tape, y, 1, &x, NULL, &g);
    ck_assert_int_eq(rewind_in_vjp, HG_ERR_TAPE);
    ck_assert_int_eq(reset_in_vjp, HG_ERR_TAPE);
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_TAPE);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "gradient sweep"));
    ck_assert_int_eq(hg_tensor_check(y), HG_OK); /* nothing was released */
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_ctx_rewind(ctx, vjp_mark), HG_OK); /* after the sweep: fine */
    hg_ctx_free(ctx);
}
END_TEST

/* Regression (finding 7): an optimizer used after a rewind past it followed
 * a wild pointer. */
START_TEST(optimizer_rewound_past_is_stale)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *p = T64(ctx, 1, SHAPE(2), 1, 2), *g = T64(ctx, 1, SHAPE(2), 0.5, 0.5);
    hg_opt_config cfg = {.kind = HG_OPT_ADAM, .lr = 0.1};
    hg_optimizer *kept = hg_optimizer_new(ctx, &cfg, 1, &p);
    hg_mark m = hg_ctx_mark(ctx);
    hg_optimizer *opt = hg_optimizer_new(ctx, &cfg, 1, &p);
    ck_assert_int_eq(hg_optimizer_step(opt, &g), HG_OK);
    ck_assert_int_eq(hg_optimizer_steps(opt), 1);
    ck_assert_int_eq(hg_ctx_rewind(ctx, m), HG_OK);
    /* Reuse the released memory so that its old contents are gone. */
    hg_tensor *junk = hg_full(ctx, HG_F64, 1, SHAPE(64), 12345.0);
    ck_assert_ptr_nonnull(junk);
    double before = hg_get(p, 0);
    ck_assert_int_eq(hg_optimizer_step(opt, &g), HG_ERR_STALE);
    ck_assert_int_eq(hg_optimizer_steps(opt), -1);
    ck_assert_double_eq(hg_get(p, 0), before);
    /* One made before the mark is untouched by the rewind. */
    ck_assert_int_eq(hg_optimizer_step(kept, &g), HG_OK);
    ck_assert_int_eq(hg_optimizer_steps(kept), 1);
    ck_assert_int_eq(hg_ctx_reset(ctx), HG_OK);
    ck_assert_int_eq(hg_optimizer_step(kept, &g), HG_ERR_STALE);
    hg_ctx_free(ctx);
}
END_TEST

typedef struct thread_job {
    hg_ctx *ctx;
    int take_over;
    hg_tensor *made;
    hg_status rewind;
} thread_job;

static void *use_ctx(void *arg)
{
    thread_job *j = arg;
    if (j->take_over)
        hg_ctx_set_owner(j->ctx);
    j->made = hg_zeros(j->ctx, HG_F64, 1, SHAPE(8));
    j->rewind = hg_ctx_reset(j->ctx);
    return NULL;
}

/* Regression (finding 10): one ctx used by two threads gave data races and
 * spurious errors silently. The check is deterministic: it does not need the
 * calls to overlap in time. */
START_TEST(ctx_used_from_another_thread)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = hg_ones(ctx, HG_F64, 1, SHAPE(8));
    thread_job j = {ctx, 0, NULL, HG_OK};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, use_ctx, &j), 0);
    pthread_join(th, NULL);
    ck_assert_ptr_null(j.made);
    ck_assert_int_eq(j.rewind, HG_ERR_THREAD);
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_THREAD);
    ck_assert_ptr_nonnull(strstr(hg_ctx_error(ctx), "thread"));
    ck_assert_int_eq(hg_tensor_check(x), HG_OK); /* the foreign reset released nothing */
    hg_ctx_clear_error(ctx);
    /* A deliberate hand-off: the other thread takes the ctx over... */
    j.take_over = 1;
    ck_assert_int_eq(pthread_create(&th, NULL, use_ctx, &j), 0);
    pthread_join(th, NULL);
    ck_assert_ptr_nonnull(j.made);
    ck_assert_int_eq(j.rewind, HG_OK);
    ck_assert_ctx_ok(ctx);
    /* ...so this thread is now the foreign one until it takes it back. */
    ck_assert_ptr_null(hg_zeros(ctx, HG_F64, 1, SHAPE(2)));
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_THREAD);
    hg_ctx_clear_error(ctx);
    hg_ctx_set_owner(ctx);
    ck_assert_ptr_nonnull(hg_zeros(ctx, HG_F64, 1, SHAPE(2)));
    ck_assert_ctx_ok(ctx);
    hg_ctx_set_owner(NULL);
    hg_ctx_free(ctx);
}
END_TEST

/* hg_blas_set_threads: OpenBLAS's count follows it (a BLAS without thread
 * control stays at 1); n < 1 is refused. */
START_TEST(blas_thread_count)
{
    ck_assert_int_eq(hg_blas_set_threads(0), HG_ERR_RANGE);
    ck_assert_int_eq(hg_blas_set_threads(2), HG_OK);
    int two = hg_blas_threads();
    ck_assert(two == 2 || two == 1);
    ck_assert_int_eq(hg_blas_set_threads(1), HG_OK);
    ck_assert_int_eq(hg_blas_threads(), 1);
    printf("blas_thread_count: BLAS thread control %s\n", two == 2 ? "present (OpenBLAS)" : "absent (count stays 1)");
}
END_TEST

static Suite *arena_suite(void)
{
    Suite *s = suite_create("arena");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, data_is_64_byte_aligned);
    tcase_add_test(tc, rewind_reuses_memory_without_new_chunks);
    tcase_add_test(tc, peak_and_in_use_statistics);
    tcase_add_test(tc, use_after_rewind_is_an_error);
    tcase_add_test(tc, rewind_errors);
    tcase_add_test(tc, allocator_hook_and_limits);
    tcase_add_test(tc, creation_and_accessors);
    tcase_add_test(tc, first_error_is_sticky);
    tcase_add_test(tc, rng_is_seeded_and_reproducible);
    tcase_add_test(tc, mark_from_another_ctx_is_refused);
    tcase_add_test(tc, rewind_during_sweep_is_refused);
    tcase_add_test(tc, optimizer_rewound_past_is_stale);
    tcase_add_test(tc, ctx_used_from_another_thread);
    tcase_add_test(tc, blas_thread_count);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(arena_suite());
}
