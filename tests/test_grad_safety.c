/* Regressions for the sweep's safety rules (defects found in review):
 *  - an op that fails inside a vjp fails the whole gradient, even when the
 *    vjp returns HG_OK, naming the op whose vjp ran;
 *  - a target the tape did not record is HG_ERR_TAPE (zeros only with
 *    HG_TAPE_UNRECORDED_TARGET_ZERO); a watched target is its own gradient;
 *  - a tensor written in place after an op saved it is HG_ERR_MODIFIED
 *    (writable accessors and the training-form optimizer bump versions;
 *    read-only accessors do not);
 *  - hg_gradient's results are distinct tensors (never the seed or each
 *    other);
 *  - pow_scalar(x, p) for 0 < p < 1 has derivative 0 at exactly 0, as sqrt;
 *    messages say "an i32". */
#include "testutil.h"

#include <string.h>

#define HAS(msg, part) ck_assert_msg(strstr((msg), (part)) != NULL, "message \"%s\" lacks \"%s\"", (msg), (part))

/* ---- 1. a failing op inside a vjp ------------------------------------------------ */

static hg_status twice_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr)
{
    (void)ctx;
    (void)attr;
    const double *x = hg_tensor_cdata(in[0]);
    double *y = hg_tensor_data(out[0]);
    for (int64_t i = 0; i < hg_tensor_numel(in[0]); i++)
        y[i] = 2 * x[i];
    return HG_OK;
}

/* A careless vjp: the correction term comes from an hg_matmul with
 * mismatched shapes, which fails; the vjp ignores that and returns HG_OK
 * with the incomplete cotangent g (the right one is 2 g). */
static hg_status twice_careless_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_tensor *x = hg_node_input(node, 0);
    hg_tensor *bad = hg_matmul(ctx, hg_reshape(ctx, x, 2, SHAPE(1, 3)), hg_reshape(ctx, x, 2, SHAPE(1, 3)));
    gin[0] = bad ? hg_add(ctx, gout[0], hg_reshape(ctx, bad, 1, SHAPE(3))) : gout[0];
    return HG_OK;
}

static const hg_opdef twice_careless = {"twice_careless",   1,   1, 0, shape_like_input, twice_forward,
                                        twice_careless_vjp, NULL};

START_TEST(failed_op_inside_vjp_fails_the_gradient)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(3), 1, 2, 3);
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, x);
    hg_tensor *y = hg_sum(ctx, hg_apply(ctx, &twice_careless, &x, NULL));
    hg_tape_end(t);
    ck_assert_ctx_ok(ctx);
    hg_tensor *g = (hg_tensor *)1;
    ck_assert_int_eq(hg_gradient(t, y, 1, &x, NULL, &g), HG_ERR_SHAPE);
    ck_assert_ptr_null(g);
    HAS(hg_ctx_error(ctx), "hg_matmul");
    HAS(hg_ctx_error(ctx), "[1,3]");
    HAS(hg_ctx_error(ctx), "in the vjp of twice_careless");
    hg_ctx_free(ctx);
}
END_TEST

/* The same under an outer tape (the vjp's ops are recorded there) and with
 * an unrelated earlier error already on the ctx: still a failure. */
START_TEST(failed_op_inside_vjp_with_earlier_error)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(3), 1, 2, 3);
    hg_tape *outer = hg_tape_begin(ctx, 0);
    hg_watch(outer, x);
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, x);
    hg_tensor *y = hg_sum(ctx, hg_apply(ctx, &twice_careless, &x, NULL));
    hg_tape_end(t);
    ck_assert_ptr_null(hg_exp(ctx, NULL)); /* an earlier, unrelated error */
    ck_assert_int_eq(hg_ctx_status(ctx), HG_ERR_NULL);
    hg_tensor *g = NULL;
    ck_assert_int_ne(hg_gradient(t, y, 1, &x, NULL, &g), HG_OK);
    ck_assert_ptr_null(g);
    hg_tape_end(outer);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- 2. targets the tape did not record ------------------------------------------- */

START_TEST(unrecorded_target_is_an_error)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(2), 1, 2), *c = T64(ctx, 1, SHAPE(2), 3, 4), *g = NULL;
    /* computed after hg_tape_end: the probe's mistake */
    hg_tape *t = hg_tape_begin(ctx, HG_TAPE_PERSISTENT);
    hg_watch(t, x);
    hg_tensor *h = hg_mul(ctx, x, x);
    hg_tape_end(t);
    hg_tensor *late = hg_sum(ctx, h);
    ck_assert_int_eq(hg_gradient(t, late, 1, &x, NULL, &g), HG_ERR_TAPE);
    ck_assert_ptr_null(g);
    HAS(hg_ctx_error(ctx), "not recorded on this tape");
    HAS(hg_ctx_error(ctx), "HG_TAPE_UNRECORDED_TARGET_ZERO");
    hg_ctx_clear_error(ctx);
    /* from untracked inputs only */
    ck_assert_int_eq(hg_gradient(t, hg_sum(ctx, c), 1, &x, NULL, &g), HG_ERR_TAPE);
    hg_ctx_clear_error(ctx);
    /* while paused */
    hg_tape *p = hg_tape_begin(ctx, 0);
    hg_watch(p, x);
    hg_tape_pause(p);
    hg_tensor *paused = hg_sum(ctx, x);
    hg_tape_resume(p);
    hg_tape_end(p);
    ck_assert_int_eq(hg_gradient(p, paused, 1, &x, NULL, &g), HG_ERR_TAPE);
    hg_ctx_clear_error(ctx);
    /* a recorded target with an unconnected source still gives zeros */
    hg_tensor *y = hg_sum(ctx, h), *gs[2] = {0};
    (void)y;
    hg_tape *t2 = hg_tape_begin(ctx, 0);
    hg_watch(t2, x);
    hg_watch(t2, c);
    hg_tensor *z = hg_sum(ctx, hg_exp(ctx, x));
    hg_tape_end(t2);
    hg_tensor *src[2] = {x, c};
    ck_assert_int_eq(hg_gradient(t2, z, 2, src, NULL, gs), HG_OK);
    ck_assert_close(hg_get(gs[0], 1), exp(2.0), 1e-15);
    ck_assert_double_eq(hg_get(gs[1], 0), 0.0);
    ck_assert_double_eq(hg_get(gs[1], 1), 0.0);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(unrecorded_target_zero_flag)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(2), 1, 2), *g = NULL;
    hg_tape *t = hg_tape_begin(ctx, HG_TAPE_UNRECORDED_TARGET_ZERO | HG_TAPE_PERSISTENT);
    hg_watch(t, x);
    hg_tape_end(t);
    hg_tensor *late = hg_sum(ctx, x);
    ck_assert_int_eq(hg_gradient(t, late, 1, &x, NULL, &g), HG_OK);
    ck_assert_ctx_ok(ctx);
    ck_assert_double_eq(hg_get(g, 0), 0.0);
    ck_assert_double_eq(hg_get(g, 1), 0.0);
    hg_tape *tn = hg_tape_begin(ctx, HG_TAPE_UNRECORDED_TARGET_ZERO | HG_TAPE_UNCONNECTED_NULL);
    hg_watch(tn, x);
    hg_tape_end(tn);
    g = (hg_tensor *)1;
    ck_assert_int_eq(hg_gradient(tn, late, 1, &x, NULL, &g), HG_OK);
    ck_assert_ptr_null(g);
    hg_ctx_free(ctx);
}
END_TEST

/* A watched target is recorded: d target / d target = seed (a copy). */
START_TEST(watched_target_is_its_own_gradient)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(2), 1, 2), *seed = T64(ctx, 1, SHAPE(2), 5, -7), *g = NULL;
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, x);
    hg_tape_end(t);
    ck_assert_int_eq(hg_gradient(t, x, 1, &x, seed, &g), HG_OK);
    ck_assert_ptr_ne(g, seed);
    ck_assert_double_eq(hg_get(g, 0), 5.0);
    ck_assert_double_eq(hg_get(g, 1), -7.0);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- 3. in-place writes after recording ------------------------------------------ */

START_TEST(inplace_write_of_saved_input_is_detected)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(1), 3.0), *a = T64(ctx, 1, SHAPE(1), 1.0), *g = NULL;
    ck_assert_uint_eq(hg_tensor_version(a), 0);
    hg_tape *t = hg_tape_begin(ctx, HG_TAPE_PERSISTENT);
    hg_watch(t, x);
    hg_tensor *y = hg_sum(ctx, hg_mul(ctx, x, a)); /* dy/dx = a = 1 */
    hg_tape_end(t);
    /* Reading never trips the check. */
    ck_assert_double_eq(hg_tensor_cf64(a)[0], 1.0);
    ck_assert_ptr_nonnull(hg_tensor_cdata(a));
    ck_assert_uint_eq(hg_tensor_version(a), 0);
    ck_assert_int_eq(hg_gradient(t, y, 1, &x, NULL, &g), HG_OK);
    ck_assert_double_eq(hg_item(g), 1.0);
    /* The probe: writing a = 3 after recording would give 3, silently. */
    hg_tensor_f64(a)[0] = 3.0;
    ck_assert_uint_eq(hg_tensor_version(a), 1);
    ck_assert_int_eq(hg_gradient(t, y, 1, &x, NULL, &g), HG_ERR_MODIFIED);
    ck_assert_ptr_null(g);
    HAS(hg_ctx_error(ctx), "input 1");
    HAS(hg_ctx_error(ctx), "of hg_mul");
    HAS(hg_ctx_error(ctx), "modified by an in-place write");
    ck_assert_str_eq(hg_status_name(HG_ERR_MODIFIED), "HG_ERR_MODIFIED");
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(inplace_write_of_saved_output_is_detected)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = T64(ctx, 1, SHAPE(2), 0.5, 1.0), *g[1] = {0};
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, x);
    hg_tensor *e = hg_exp(ctx, x); /* the vjp reads e */
    hg_tape_end(t);
    ((double *)hg_tensor_data(e))[0] = 0; /* any writable access counts */
    ck_assert_int_eq(hg_gradient(t, e, 1, &x, hg_ones_like(ctx, e), g), HG_ERR_MODIFIED);
    HAS(hg_ctx_error(ctx), "output 0");
    HAS(hg_ctx_error(ctx), "of hg_exp");
    hg_ctx_free(ctx);
}
END_TEST

/* Writes before the op is recorded are fine; so is a custom op's forward
 * writing its fresh output. */
START_TEST(writes_before_recording_are_fine)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = hg_zeros(ctx, HG_F64, 1, SHAPE(3)), *g = NULL;
    double *xd = hg_tensor_f64(x);
    for (int i = 0; i < 3; i++)
        xd[i] = i + 1;
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, x);
    hg_tensor *y = hg_sum(ctx, hg_mul(ctx, hg_apply(ctx, &twice_careless, &x, NULL), x));
    hg_tape_end(t);
    ck_assert_ctx_ok(ctx);
    (void)y;
    hg_tape *t2 = hg_tape_begin(ctx, 0);
    hg_watch(t2, x);
    hg_tensor *y2 = hg_sum(ctx, hg_mul(ctx, x, x));
    hg_tape_end(t2);
    ck_assert_int_eq(hg_gradient(t2, y2, 1, &x, NULL, &g), HG_OK);
    ck_assert_double_eq(hg_get(g, 2), 6.0);
    hg_ctx_free(ctx);
}
END_TEST

/* The training-form optimizer writes parameters in place: a tape that saved
 * the old values must refuse to differentiate through them. */
START_TEST(optimizer_step_bumps_versions)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *w = T64(ctx, 1, SHAPE(2), 0.5, -0.5), *x = T64(ctx, 1, SHAPE(2), 1, 2), *g = NULL;
    hg_opt_config cfg = {.kind = HG_OPT_SGD, .lr = 0.1};
    hg_optimizer *opt = hg_optimizer_new(ctx, &cfg, 1, &w);
    hg_tape *t = hg_tape_begin(ctx, 0);
    hg_watch(t, x);
    hg_tensor *y = hg_sum(ctx, hg_mul(ctx, w, x));
    hg_tape_end(t);
    uint64_t v0 = hg_tensor_version(w);
    hg_tensor *gw = T64(ctx, 1, SHAPE(2), 1, 1);
    ck_assert_int_eq(hg_optimizer_step(opt, &gw), HG_OK);
    ck_assert_uint_eq(hg_tensor_version(w), v0 + 1);
    ck_assert_int_eq(hg_gradient(t, y, 1, &x, NULL, &g), HG_ERR_MODIFIED);
    HAS(hg_ctx_error(ctx), "input 0");
    HAS(hg_ctx_error(ctx), "hg_mul");
    hg_ctx_free(ctx);
}
END_TEST

/* ---- 4. distinct results ---------------------------------------------------------- */

START_TEST(gradients_are_distinct_tensors)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *a = T64(ctx, 1, SHAPE(2), 1, 2), *b = T64(ctx, 1, SHAPE(2), 3, 4);
    hg_tensor *seed = T64(ctx, 1, SHAPE(2), 1, 1);
    hg_tape *t = hg_tape_begin(ctx, HG_TAPE_PERSISTENT);
    hg_watch(t, a);
    hg_watch(t, b);
    hg_tensor *y = hg_add(ctx, a, b);
    hg_tape_end(t);
    hg_tensor *src[3] = {a, b, a}, *g[3] = {0};
    ck_assert_int_eq(hg_gradient(t, y, 3, src, seed, g), HG_OK);
    ck_assert_ptr_ne(g[0], g[1]);
    ck_assert_ptr_ne(g[0], g[2]);
    ck_assert_ptr_ne(g[1], g[2]);
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_ne(g[i], seed);
    /* Writing into one result changes no other, nor the seed. */
    hg_tensor_f64(g[0])[0] = 100;
    ck_assert_double_eq(hg_get(g[1], 0), 1.0);
    ck_assert_double_eq(hg_get(g[2], 0), 1.0);
    ck_assert_double_eq(hg_get(seed, 0), 1.0);
    hg_ctx_free(ctx);
}
END_TEST

/* The copies are recorded: second derivatives through them still work. */
START_TEST(distinct_results_stay_differentiable)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *x = hg_scalar(ctx, HG_F64, 1.5);
    hg_tape *outer = hg_tape_begin(ctx, 0);
    hg_watch(outer, x);
    hg_tape *inner = hg_tape_begin(ctx, 0);
    hg_watch(inner, x);
    hg_tensor *y = hg_mul(ctx, x, x), *seed = hg_mul(ctx, x, x); /* seed depends on x on outer */
    hg_tape_end(inner);
    hg_tensor *src[2] = {y, x}, *g[2] = {0};
    /* d<seed, y>/dy = seed (copied), d<seed, y>/dx = 2 x seed */
    ck_assert_int_eq(hg_gradient(inner, y, 2, src, seed, g), HG_OK);
    hg_tape_end(outer);
    ck_assert_ptr_ne(g[0], seed);
    hg_tensor *d = NULL;
    /* g[1] = 2 x seed = 2 x^3, recorded on outer: d/dx = 6 x^2 */
    ck_assert_int_eq(hg_gradient(outer, g[1], 1, &x, NULL, &d), HG_OK);
    ck_assert_close(hg_item(d), 6 * 1.5 * 1.5, 1e-14);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- 5. small ones ---------------------------------------------------------------- */

/* d^k/dx^k of f at x, k = 1..3, with nested tapes. */
static void derivatives(hg_ctx *ctx, hg_tensor *(*f)(hg_ctx *, hg_tensor *), double x0, double out[3])
{
    hg_tensor *x = hg_scalar(ctx, HG_F64, x0);
    hg_tape *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = hg_tape_begin(ctx, HG_TAPE_UNRECORDED_TARGET_ZERO);
        hg_watch(t[i], x);
    }
    hg_tensor *y = f(ctx, x);
    for (int k = 0; k < 3; k++) {
        hg_tape_end(t[2 - k]);
        ck_assert_int_eq(hg_gradient(t[2 - k], y, 1, &x, NULL, &y), HG_OK);
        out[k] = hg_item(y);
    }
}

static hg_tensor *pow_half(hg_ctx *ctx, hg_tensor *x)
{
    return hg_pow_scalar(ctx, x, 0.5);
}

static hg_tensor *pow_three_halves(hg_ctx *ctx, hg_tensor *x)
{
    return hg_pow_scalar(ctx, x, 1.5);
}

static hg_tensor *sqrt_cubed(hg_ctx *ctx, hg_tensor *x)
{
    return hg_mul(ctx, x, hg_sqrt(ctx, x));
}

START_TEST(pow_scalar_fractional_at_zero)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    double p[3], s[3];
    derivatives(ctx, pow_half, 0.0, p);
    derivatives(ctx, hg_sqrt, 0.0, s);
    for (int k = 0; k < 3; k++) {
        ck_assert_msg(p[k] == 0.0 && s[k] == 0.0, "order %d at 0: pow %g sqrt %g", k + 1, p[k], s[k]);
    }
    derivatives(ctx, pow_half, 0.49, p);
    derivatives(ctx, hg_sqrt, 0.49, s);
    ck_assert_close(p[0], 0.5 / 0.7, 1e-14);
    ck_assert_close(p[1], -0.25 / (0.49 * 0.7), 1e-14);
    ck_assert_close(p[2], 0.375 / (0.49 * 0.49 * 0.7), 1e-13);
    for (int k = 0; k < 3; k++)
        ck_assert_close(p[k], s[k], 1e-13);
    /* 1 < p < 2: finite first derivative 0 at 0, and the second (p-1 in
     * (0,1)) follows the same rule instead of being infinite. */
    derivatives(ctx, pow_three_halves, 0.0, p);
    derivatives(ctx, sqrt_cubed, 0.0, s);
    ck_assert_double_eq(p[0], 0.0);
    ck_assert_double_eq(p[1], 0.0);
    ck_assert(isfinite(p[2]));
    /* Negative x keeps the NaN of the value. */
    derivatives(ctx, pow_half, -1.0, p);
    ck_assert(isnan(p[0]));
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

START_TEST(messages_say_an_i32)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_tensor *i = hg_zeros(ctx, HG_I32, 1, SHAPE(2));
    hg_tape *t = hg_tape_begin(ctx, 0);
    ck_assert_int_eq(hg_watch(t, i), HG_ERR_DTYPE);
    HAS(hg_ctx_error(ctx), "an i32");
    hg_tape_end(t);
    hg_ctx_clear_error(ctx);
    ck_assert_ptr_null(hg_sum(ctx, i));
    HAS(hg_ctx_error(ctx), "hg_sum:");
    ck_assert_ptr_null(strstr(hg_ctx_error(ctx), "hg_sum_to"));
    hg_ctx_free(ctx);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grad_safety");
    TCase *tc = tcase_create("sweep");
    tcase_add_test(tc, failed_op_inside_vjp_fails_the_gradient);
    tcase_add_test(tc, failed_op_inside_vjp_with_earlier_error);
    tcase_add_test(tc, unrecorded_target_is_an_error);
    tcase_add_test(tc, unrecorded_target_zero_flag);
    tcase_add_test(tc, watched_target_is_its_own_gradient);
    tcase_add_test(tc, inplace_write_of_saved_input_is_detected);
    tcase_add_test(tc, inplace_write_of_saved_output_is_detected);
    tcase_add_test(tc, writes_before_recording_are_fine);
    tcase_add_test(tc, optimizer_step_bumps_versions);
    tcase_add_test(tc, gradients_are_distinct_tensors);
    tcase_add_test(tc, distinct_results_stay_differentiable);
    tcase_add_test(tc, pow_scalar_fractional_at_zero);
    tcase_add_test(tc, messages_say_an_i32);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
