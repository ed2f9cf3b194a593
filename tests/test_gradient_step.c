/* hg_opt_gradient_step (src/optim.c) and the sweep it runs for SGD
 * (hg_gradient_axpy, src/grad.c): p' = p - lr g built by the sweep itself, a
 * product gradient as one gemm with alpha = -lr onto a copy of p
 * (hg_matmul_acc), so g is never stored. Checked: the scaled products are
 * derivatives to third order (f64) and first order (f32); the step equals
 * hg_gradient + hg_opt_step (bitwise for non-product gradients and for every
 * other optimizer, to rounding for product gradients), in place or recorded
 * with the same bits; hypergradients through it equal the composed ones and
 * are derivatives to third order; the fallbacks; the errors; and that the
 * recorded step keeps less memory. */
#include "testutil.h"
#include "../src/internal.h"

#include <stdbool.h>
#include <string.h>

/* ---- the scaled products as ops --------------------------------------------- */

typedef struct prod_case {
    int ta, tb;
    double alpha;
    bool acc; /* hg_matmul_acc (c + alpha op(a) op(b)) instead of hg_matmul_scaled */
} prod_case;

/* in: c [3,2] (acc only), a, b stored for op(a) [3,4], op(b) [4,2] */
static hg_tensor *call_prod(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    const prod_case *c = user;
    if (c->acc)
        return hg_matmul_acc(ctx, in[0], in[1], in[2], c->ta, c->tb, c->alpha, false);
    return hg_matmul_scaled(ctx, in[0], in[1], c->ta, c->tb, c->alpha);
}

START_TEST(scaled_products_third_order)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 41);
    for (int acc = 0; acc < 2; acc++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                prod_case c = {ta, tb, acc ? -0.3 : 1.7, acc != 0};
                hg_tensor *in[3];
                int k = 0;
                if (acc)
                    in[k++] = random_f64(ctx, &rng, 2, SHAPE(3, 2), -1, 1);
                in[k++] = random_f64(ctx, &rng, 2, ta ? SHAPE(4, 3) : SHAPE(3, 4), -1, 1);
                in[k++] = random_f64(ctx, &rng, 2, tb ? SHAPE(2, 4) : SHAPE(4, 2), -1, 1);
                char what[64];
                snprintf(what, sizeof what, "%s ta=%d tb=%d", acc ? "matmul_acc" : "matmul_scaled", ta, tb);
                check_gradients(ctx, call_prod, k, in, &c, 3, what);
                check_f32_first_order(ctx, call_prod, k, in, &c, 1e-4, what);
            }
    /* Values: alpha op(a) op(b) against alpha times the plain product, for
     * a small product (libxsmm when built with it: alpha goes into a copy
     * of b) and one beyond its threshold (CBLAS alpha), transposed b. */
    for (int big = 0; big < 2; big++) {
        int64_t m = big ? 70 : 5, k = big ? 71 : 7, n = big ? 72 : 3;
        hg_tensor *a = random_f64(ctx, &rng, 2, SHAPE(m, k), -1, 1), *b = random_f64(ctx, &rng, 2, SHAPE(n, k), -1, 1);
        hg_tensor *c = random_f64(ctx, &rng, 2, SHAPE(m, n), -1, 1);
        hg_tensor *s = hg_matmul_scaled(ctx, a, b, 0, 1, -0.3), *p = hg_matmul_t(ctx, a, b, 0, 1);
        hg_tensor *q = hg_matmul_acc(ctx, c, a, b, 0, 1, -0.3, false);
        for (int64_t i = 0; i < m * n; i++) {
            ck_assert_close(hg_get(s, i), -0.3 * hg_get(p, i), 1e-14);
            ck_assert_close(hg_get(q, i), hg_get(c, i) - 0.3 * hg_get(p, i), 1e-14);
        }
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- the step against hg_gradient + hg_opt_step ----------------------------- */

/* A loss in which W (params[0]) gets two product contributions (x W and
 * h W^T) and, with decay, an elementwise one (0.1 sum W W), V (params[1])
 * one product, b (params[2]) a sum_to: every path of the axpy sweep. */
static hg_tensor *loss_decay(hg_ctx *ctx, hg_tensor *const *p, hg_tensor *x, bool decay)
{
    hg_tensor *W = p[0], *V = p[1], *b = p[2];
    hg_tensor *h = hg_tanh(ctx, hg_add(ctx, hg_matmul(ctx, x, W), b));
    hg_tensor *r = hg_tanh(ctx, hg_matmul_t(ctx, h, W, 0, 1));
    hg_tensor *o = hg_matmul(ctx, r, V);
    hg_tensor *L = hg_mean(ctx, hg_mul(ctx, o, o));
    return decay ? hg_add(ctx, L, hg_scale(ctx, hg_sum(ctx, hg_mul(ctx, W, W)), 0.1)) : L;
}

static hg_tensor *loss_of(hg_ctx *ctx, hg_tensor *const *p, hg_tensor *x)
{
    return loss_decay(ctx, p, x, true);
}

enum { NP = 3 };

/* One step from params p on batch x; `fused`: hg_opt_gradient_step, else
 * hg_gradient + hg_opt_step; `recorded`: an outer tape watching x is
 * active (the sweep is recorded, nothing in place). */
static void one_step(hg_ctx *ctx, const hg_opt_config *cfg, hg_tensor *lr, int t, hg_tensor *const *p, hg_tensor *x,
                     bool fused, bool recorded, hg_tensor **state, hg_tensor **out)
{
    hg_tape *outer = recorded ? hg_tape_begin(ctx, 0) : NULL;
    if (outer)
        hg_watch(outer, x);
    hg_tape *tape = hg_tape_begin(ctx, 0);
    hg_watch_n(tape, NP, p);
    hg_tensor *L = loss_of(ctx, p, x);
    hg_tape_end(tape);
    if (fused) {
        ck_assert_int_eq(hg_opt_gradient_step(tape, L, cfg, lr, t, NP, p, state, out), HG_OK);
    } else {
        hg_tensor *g[NP];
        ck_assert_int_eq(hg_gradient(tape, L, NP, p, NULL, g), HG_OK);
        ck_assert_int_eq(hg_opt_step(ctx, cfg, lr, t, NP, p, g, state, out), HG_OK);
    }
    if (outer)
        hg_tape_end(outer);
}

static hg_tensor *rand_as(hg_ctx *ctx, hg_rng *rng, hg_dtype dt, int rank, const int64_t *shape, double s)
{
    return hg_cast(ctx, random_f64(ctx, rng, rank, shape, -s, s), dt);
}

static void make_params(hg_ctx *ctx, hg_rng *rng, hg_dtype dt, hg_tensor **p, hg_tensor **x)
{
    p[0] = rand_as(ctx, rng, dt, 2, SHAPE(40, 24), 0.3);
    p[1] = rand_as(ctx, rng, dt, 2, SHAPE(40, 6), 0.3);
    p[2] = rand_as(ctx, rng, dt, 1, SHAPE(24), 0.3);
    *x = rand_as(ctx, rng, dt, 2, SHAPE(16, 40), 1.0);
}

/* SGD, constant lr: in place and recorded give the same bits; against the
 * composed step the product-gradient entries agree to rounding (a few ulps
 * of p), the bias (a sum_to gradient) bitwise; three steps in a row. */
START_TEST(sgd_step_matches_composed)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 42);
    hg_opt_config cfg = {.kind = HG_OPT_SGD, .lr = 0.1};
    for (int d = 0; d < 2; d++) {
        hg_dtype dt = d ? HG_F32 : HG_F64;
        double tol = d ? 1e-6 : 1e-14;
        hg_tensor *p0[NP], *x;
        make_params(ctx, &rng, dt, p0, &x);
        hg_tensor *pa[NP], *pb[NP], *pc[NP];
        memcpy(pa, p0, sizeof pa);
        memcpy(pb, p0, sizeof pb);
        memcpy(pc, p0, sizeof pc);
        for (int t = 1; t <= 3; t++) {
            hg_tensor *na[NP], *nb[NP], *nc[NP];
            one_step(ctx, &cfg, NULL, t, pa, x, true, false, NULL, na);
            one_step(ctx, &cfg, NULL, t, pb, x, true, true, NULL, nb);
            one_step(ctx, &cfg, NULL, t, pc, x, false, false, NULL, nc);
            for (int i = 0; i < NP; i++) {
                ck_assert_msg(same_bits(na[i], nb[i]), "%s step %d param %d: in place and recorded differ",
                              hg_dtype_name(dt), t, i);
                ck_assert_ptr_ne(na[i], pa[i]);
                for (int64_t j = 0; j < hg_tensor_numel(na[i]); j++)
                    ck_assert_close(hg_get(na[i], j), hg_get(nc[i], j), tol);
            }
            /* Same inputs: the bias step is hg_opt_step's bit for bit. */
            hg_tensor *nd[NP];
            one_step(ctx, &cfg, NULL, t, pa, x, false, false, NULL, nd);
            ck_assert_msg(same_bits(nd[2], na[2]), "%s step %d: bias differs from hg_opt_step", hg_dtype_name(dt), t);
            memcpy(pa, na, sizeof pa);
            memcpy(pb, nb, sizeof pb);
            memcpy(pc, nc, sizeof pc);
        }
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* Momentum, Adam and SGD with an lr tensor are hg_gradient + hg_opt_step,
 * values and state bit for bit. */
START_TEST(other_optimizers_bitwise)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 43);
    const hg_opt_config cfgs[3] = {{.kind = HG_OPT_SGD, .lr = 0.1},
                                   {.kind = HG_OPT_MOMENTUM, .lr = 0.1, .momentum = 0.9},
                                   {.kind = HG_OPT_ADAM, .lr = 0.01}};
    for (int k = 0; k < 3; k++) {
        hg_tensor *p[NP], *x;
        make_params(ctx, &rng, HG_F64, p, &x);
        hg_tensor *lr = k == 0 ? hg_scalar(ctx, HG_F64, 0.1) : NULL;
        hg_tensor *sa[2 * NP] = {0}, *sb[2 * NP] = {0}, *pa[NP], *pb[NP];
        memcpy(pa, p, sizeof pa);
        memcpy(pb, p, sizeof pb);
        for (int t = 1; t <= 2; t++) {
            hg_tensor *na[NP], *nb[NP];
            one_step(ctx, &cfgs[k], lr, t, pa, x, true, true, sa, na);
            one_step(ctx, &cfgs[k], lr, t, pb, x, false, true, sb, nb);
            for (int i = 0; i < NP; i++)
                ck_assert_msg(same_bits(na[i], nb[i]), "%s step %d param %d differs", hg_opt_name(cfgs[k].kind), t, i);
            for (int j = 0; j < hg_opt_state_count(cfgs[k].kind, NP); j++)
                ck_assert_msg(same_bits(sa[j], sb[j]), "%s step %d state %d differs", hg_opt_name(cfgs[k].kind), t, j);
            memcpy(pa, na, sizeof pa);
            memcpy(pb, nb, sizeof pb);
        }
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* Sources the axpy sweep does not take (a parameter computed on the tape, a
 * repeated parameter) fall back to hg_gradient + lincomb: hg_opt_step's
 * bits; a parameter the loss does not use keeps its value. */
START_TEST(fallbacks)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 44);
    hg_opt_config cfg = {.kind = HG_OPT_SGD, .lr = 0.1};
    hg_tensor *p[NP], *x;
    make_params(ctx, &rng, HG_F64, p, &x);
    for (int mode = 0; mode < 2; mode++) {
        hg_tensor *q[NP + 1] = {p[0], p[1], p[2], p[2]};
        hg_tape *tape = hg_tape_begin(ctx, 0);
        hg_watch_n(tape, NP, p);
        if (mode == 0) /* q[1] computed on the tape */
            q[1] = hg_scale(ctx, p[1], 1.0);
        hg_tensor *L = loss_of(ctx, q, x);
        hg_tape_end(tape);
        int n = mode == 0 ? NP : NP + 1; /* mode 1: b twice */
        hg_tensor *a[NP + 1], *g[NP + 1], *b[NP + 1];
        ck_assert_int_eq(hg_opt_gradient_step(tape, L, &cfg, NULL, 1, n, q, NULL, a), HG_OK);
        hg_tape *t2 = hg_tape_begin(ctx, 0);
        hg_watch_n(t2, NP, p);
        if (mode == 0)
            q[1] = hg_scale(ctx, p[1], 1.0);
        L = loss_of(ctx, q, x);
        hg_tape_end(t2);
        ck_assert_int_eq(hg_gradient(t2, L, n, q, NULL, g), HG_OK);
        ck_assert_int_eq(hg_opt_step(ctx, &cfg, NULL, 1, n, q, g, NULL, b), HG_OK);
        for (int i = 0; i < n; i++)
            ck_assert_msg(same_bits(a[i], b[i]), "fallback %d: param %d differs", mode, i);
    }
    /* Unused parameter: its value, in a new tensor. */
    hg_tensor *u = rand_as(ctx, &rng, HG_F64, 1, SHAPE(5), 1.0);
    hg_tensor *q[NP + 1] = {p[0], p[1], p[2], u}, *out[NP + 1];
    hg_tape *tape = hg_tape_begin(ctx, 0);
    hg_watch_n(tape, NP + 1, q);
    hg_tensor *L = loss_of(ctx, q, x);
    hg_tape_end(tape);
    ck_assert_int_eq(hg_opt_gradient_step(tape, L, &cfg, NULL, 1, NP + 1, q, NULL, out), HG_OK);
    ck_assert_ptr_ne(out[NP], u);
    ck_assert(same_bits(out[NP], u));
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- hypergradients through the step ----------------------------------------- */

typedef struct hyper_case {
    int steps;
    bool fused;
    bool no_decay;
} hyper_case;

/* E_val(params after `steps` SGD steps on x) as a function of x, W, V, b
 * (in[0..3]); smooth (tanh) so that finite differences apply. */
static hg_tensor *hyper_fn(hg_ctx *ctx, hg_tensor *const *in, void *user)
{
    const hyper_case *c = user;
    hg_opt_config cfg = {.kind = HG_OPT_SGD, .lr = 0.3};
    hg_tensor *x = in[0], *p[NP] = {in[1], in[2], in[3]};
    for (int t = 1; t <= c->steps; t++) {
        hg_tape *tape = hg_tape_begin(ctx, 0);
        hg_watch_n(tape, NP, p);
        hg_tensor *L = loss_decay(ctx, p, x, !c->no_decay);
        hg_tape_end(tape);
        hg_tensor *np[NP], *g[NP];
        hg_status s = c->fused ? hg_opt_gradient_step(tape, L, &cfg, NULL, t, NP, p, NULL, np)
                               : (hg_gradient(tape, L, NP, p, NULL, g) == HG_OK
                                      ? hg_opt_step(ctx, &cfg, NULL, t, NP, p, g, NULL, np)
                                      : hg_ctx_status(ctx));
        if (s != HG_OK)
            return NULL;
        memcpy(p, np, sizeof p);
    }
    return loss_of(ctx, p, hg_scale(ctx, x, -0.5));
}

START_TEST(hypergradient_third_order)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 45);
    hg_tensor *in[4] = {random_f64(ctx, &rng, 2, SHAPE(3, 4), -1, 1), random_f64(ctx, &rng, 2, SHAPE(4, 3), -0.5, 0.5),
                        random_f64(ctx, &rng, 2, SHAPE(4, 2), -0.5, 0.5),
                        random_f64(ctx, &rng, 1, SHAPE(3), -0.5, 0.5)};
    hyper_case c = {2, true, false};
    check_gradients(ctx, hyper_fn, 4, in, &c, 3, "two fused SGD steps");
    check_f32_first_order(ctx, hyper_fn, 4, in, &c, 1e-4, "two fused SGD steps (f32)");
    hg_ctx_free(ctx);
}
END_TEST

/* d E / d(x, W, V, b) through 4 steps, fused against composed: equal to
 * 1e-13 relative (f64); without the decay term (whose elementwise
 * contribution to W would come first and be stored anyway) the recorded
 * forward keeps at least one W- and one V-sized tensor fewer per step. */
START_TEST(hypergradient_matches_composed)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 46);
    hg_tensor *p[NP], *x;
    make_params(ctx, &rng, HG_F64, p, &x);
    hg_tensor *in[4] = {x, p[0], p[1], p[2]};
    hg_tensor *d[2][4];
    size_t held[2];
    for (int f = 0; f < 2; f++) {
        hyper_case c = {4, f == 1, true};
        size_t before = hg_ctx_get_stats(ctx).bytes_in_use;
        hg_tape *outer = hg_tape_begin(ctx, 0);
        hg_watch_n(outer, 4, in);
        hg_tensor *E = hyper_fn(ctx, in, &c);
        hg_tape_end(outer);
        held[f] = hg_ctx_get_stats(ctx).bytes_in_use - before;
        ck_assert_int_eq(hg_gradient(outer, E, 4, in, NULL, d[f]), HG_OK);
    }
    for (int i = 0; i < 4; i++) {
        double scale = 0;
        for (int64_t j = 0; j < hg_tensor_numel(in[i]); j++)
            scale = fmax(scale, fabs(hg_get(d[0][i], j)));
        for (int64_t j = 0; j < hg_tensor_numel(in[i]); j++)
            ck_assert_msg(fabs(hg_get(d[1][i], j) - hg_get(d[0][i], j)) <= 1e-13 * scale,
                          "input %d entry %lld: fused %.17g, composed %.17g", i, (long long)j, hg_get(d[1][i], j),
                          hg_get(d[0][i], j));
    }
    size_t wv = (40 * 24 + 40 * 6) * sizeof(double);
    ck_assert_msg(held[1] + 4 * wv <= held[0], "recorded forward: fused %zu bytes, composed %zu", held[1], held[0]);
    /* Deterministic: the same bits again, also after running with two BLAS
     * threads and pinning one again. */
    for (int threads = 2; threads >= 1; threads--) {
        hg_blas_set_threads(threads);
        hyper_case c = {4, true, true};
        hg_tape *outer = hg_tape_begin(ctx, 0);
        hg_watch_n(outer, 4, in);
        hg_tensor *E = hyper_fn(ctx, in, &c), *again[4];
        hg_tape_end(outer);
        ck_assert_int_eq(hg_gradient(outer, E, 4, in, NULL, again), HG_OK);
        for (int i = 0; i < 4 && threads == 1; i++)
            ck_assert_msg(same_bits(again[i], d[1][i]), "input %d: a second run differs", i);
    }
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

/* ---- errors ------------------------------------------------------------------ */

START_TEST(errors)
{
    hg_ctx *ctx = hg_ctx_new(NULL);
    hg_rng rng;
    hg_rng_seed(&rng, 47);
    hg_tensor *p[NP], *x, *out[NP];
    make_params(ctx, &rng, HG_F64, p, &x);
    hg_opt_config cfg = {.kind = HG_OPT_SGD, .lr = 0.1};
    ck_assert_int_eq(hg_opt_gradient_step(NULL, x, &cfg, NULL, 1, NP, p, NULL, out), HG_ERR_NULL);
    ck_assert_ptr_null(out[0]);
    hg_tape *tape = hg_tape_begin(ctx, 0);
    hg_watch_n(tape, NP, p);
    hg_tensor *L = loss_of(ctx, p, x);
    /* Still recording. */
    ck_assert_int_eq(hg_opt_gradient_step(tape, L, &cfg, NULL, 1, NP, p, NULL, out), HG_ERR_TAPE);
    ck_assert_ptr_null(out[1]);
    ck_assert_msg(strstr(hg_ctx_error(ctx), "still recording"), "%s", hg_ctx_error(ctx));
    hg_tape_end(tape);
    hg_ctx_clear_error(ctx);
    hg_opt_config bad = {.kind = HG_OPT_SGD, .lr = INFINITY};
    ck_assert_int_eq(hg_opt_gradient_step(tape, L, &bad, NULL, 1, NP, p, NULL, out), HG_ERR_RANGE);
    ck_assert_msg(strstr(hg_ctx_error(ctx), "hg_opt_gradient_step"), "%s", hg_ctx_error(ctx));
    hg_ctx_clear_error(ctx);
    ck_assert_int_eq(hg_opt_gradient_step(tape, L, &cfg, NULL, 1, NP, p, NULL, NULL), HG_ERR_NULL);
    hg_ctx_clear_error(ctx);
    hg_opt_config mom = {.kind = HG_OPT_MOMENTUM, .lr = 0.1, .momentum = 0.9};
    ck_assert_int_eq(hg_opt_gradient_step(tape, L, &mom, NULL, 1, NP, p, NULL, out), HG_ERR_NULL); /* no state */
    hg_ctx_clear_error(ctx);
    hg_opt_config adam = {.kind = HG_OPT_ADAM, .lr = 0.01};
    hg_tensor *st[2 * NP] = {0};
    ck_assert_int_eq(hg_opt_gradient_step(tape, L, &adam, NULL, 0, NP, p, st, out), HG_ERR_RANGE); /* t < 1 */
    hg_ctx_clear_error(ctx);
    /* A non-scalar target. */
    ck_assert_int_eq(hg_opt_gradient_step(tape, x, &cfg, NULL, 1, NP, p, NULL, out), HG_ERR_SHAPE);
    hg_ctx_clear_error(ctx);
    /* An i32 parameter. */
    hg_tensor *lab = hg_tensor_new(ctx, HG_I32, 1, SHAPE(3));
    hg_tensor *q[NP] = {p[0], lab, p[2]};
    ck_assert_int_eq(hg_opt_gradient_step(tape, L, &cfg, NULL, 1, NP, q, NULL, out), HG_ERR_DTYPE);
    ck_assert_ptr_null(out[0]);
    hg_ctx_clear_error(ctx);
    /* The tape is still usable after the refusals above. */
    ck_assert_int_eq(hg_opt_gradient_step(tape, L, &cfg, NULL, 1, NP, p, NULL, out), HG_OK);
    /* Not persistent: a second gradient is refused. */
    ck_assert_int_eq(hg_opt_gradient_step(tape, L, &cfg, NULL, 1, NP, p, NULL, out), HG_ERR_TAPE);
    ck_assert_ptr_null(out[2]);
    /* No parameters: nothing to do (NULL arrays allowed, as for hg_opt_step). */
    hg_ctx_clear_error(ctx);
    tape = hg_tape_begin(ctx, 0);
    hg_watch_n(tape, NP, p);
    L = loss_of(ctx, p, x);
    hg_tape_end(tape);
    ck_assert_int_eq(hg_opt_gradient_step(tape, L, &cfg, NULL, 1, 0, NULL, NULL, NULL), HG_OK);
    ck_assert_ctx_ok(ctx);
    hg_ctx_free(ctx);
}
END_TEST

static Suite *gradient_step_suite(void)
{
    Suite *s = suite_create("gradient_step");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, scaled_products_third_order);
    tcase_add_test(tc, sgd_step_matches_composed);
    tcase_add_test(tc, other_optimizers_bitwise);
    tcase_add_test(tc, fallbacks);
    tcase_add_test(tc, hypergradient_third_order);
    tcase_add_test(tc, hypergradient_matches_composed);
    tcase_add_test(tc, errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(gradient_step_suite());
}
