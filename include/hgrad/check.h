/* Gradient checking against central finite differences, to any order.
 *
 * f maps input tensors to one output tensor (any shape). With fixed random
 * directions u, v1, v2, ... (seeded), the checked scalars are
 *     s0(x) = <u, f(x)>,   s_k(x) = <v_k, grad_x s_{k-1}(x)>,
 * and order k compares grad_x s_{k-1} (reverse mode through k nested tapes)
 * with central differences of s_{k-1} (itself computed with k-1 tapes). So
 * order 1 is the vjp, order 2 a Hessian-vector product, order 3 the next.
 * Every element of every float input is perturbed; use f64 inputs and small
 * tensors (the cost is 2 evaluations per element and order). */
#ifndef HGRAD_CHECK_H
#define HGRAD_CHECK_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A function of tensors: returns its output (built with hg_* ops in ctx) or
 * NULL on error. Must be deterministic. */
typedef hg_tensor *(*hg_fn)(hg_ctx *ctx, hg_tensor *const *inputs, void *user);

typedef struct hg_check_options {
    int order;   /* highest order checked, 1.. (0: 1) */
    double eps;  /* finite-difference step (0: 1e-6) */
    double atol; /* pass if |a-n| <= atol + rtol*|n| (0: 1e-7, 1e-5) */
    double rtol;
    uint64_t seed; /* directions u, v_k (0: 1) */
} hg_check_options;

typedef struct hg_check_report {
    int passed;      /* 1 if every compared element passed */
    int worst_order; /* where the largest violation is */
    int worst_input;
    int64_t worst_index;
    double analytic; /* values at the worst element */
    double numeric;
    double abs_error;
    double rel_error;        /* abs_error / max(|numeric|, 1e-12) */
    double max_abs_error[8]; /* per order 1..8 (index order-1) */
} hg_check_report;

/* Inputs: n tensors of ctx, float inputs must be f64 (i32 inputs are passed
 * through unperturbed). The inputs' values are restored on return. Returns
 * HG_OK when the check ran (see report->passed), otherwise an error
 * (HG_ERR_NULL, HG_ERR_DTYPE, HG_ERR_RANGE for order > 8, or an error of f).
 * Scratch tensors are released by rewinding ctx to its state at entry, so
 * tensors made before the call stay valid. */
HG_API hg_status hg_gradcheck(hg_ctx *ctx, hg_fn f, int n, hg_tensor *const *inputs, void *user,
                              const hg_check_options *opts, hg_check_report *report);

#ifdef __cplusplus
}
#endif
#endif
