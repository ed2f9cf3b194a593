/* Checkpointed unrolling: the gradient of a loss at the end of K training
 * steps with respect to every step's inputs (batches, per-sample loss
 * weights), the initial state (weights, optimizer state) and global
 * hyperparameters (the learning rate), in memory that does not grow with K.
 *
 * The caller describes one training step as a callback (the same code that
 * trains: it takes its own inner gradient on its own tape) and the loss at
 * the end. hg_unroll runs the steps forward without recording, keeping only
 * snapshots of the state on a binomial ("revolve", Griewank & Walther, ACM
 * TOMS Alg. 799) schedule, evaluates the loss, then sweeps back one step at a
 * time: it restores the state s_k from the nearest snapshot by recomputing,
 * records step k on a tape of its own (the step's inner gradient nested
 * inside), and takes one vector-Jacobian product with the state adjoint
 * a_{k+1} = dE/ds_{k+1}, which gives a_k and the gradients of step k's
 * inputs (handed to a callback at once) and adds to the globals' gradients.
 * The arena is rewound after every step. The result equals differentiating
 * one tape recorded over all K steps (up to the order of floating-point
 * sums).
 *
 *   static hg_status step(hg_ctx *ctx, int k, hg_tensor *const *s, hg_tensor *const *in,
 *                         hg_tensor *const *g, hg_tensor **s_out, void *user)
 *   {   // s = {W1, b1, ...}: one SGD step on batch in[0] with loss weights in[1]
 *       hg_tape *t = hg_tape_begin(ctx, 0);
 *       hg_watch_n(t, 6, s);
 *       hg_tensor *loss = weighted_loss(ctx, s, in[0], in[1]);
 *       hg_tape_end(t);
 *       hg_tensor *d[6];
 *       hg_gradient(t, loss, 6, s, NULL, d);
 *       hg_opt_config sgd = {.kind = HG_OPT_SGD};
 *       return hg_opt_step(ctx, &sgd, g[0], k + 1, 6, s, d, NULL, s_out);
 *   }
 *   ...
 *   hg_unroll_spec spec = {.steps = K, .n_state = 6, .state0 = params, .n_inputs = 2,
 *                          .n_globals = 1, .globals = &lr, .snapshots = 20,
 *                          .inputs = batch, .step = step, .loss = val_loss,
 *                          .on_grad = save_grads, .user = &data};
 *   hg_tensor *E, *d_lr;
 *   hg_unroll_stats st;
 *   if (hg_unroll(ctx, &spec, &E, NULL, &d_lr, &st) != HG_OK)
 *       fprintf(stderr, "%s\n", hg_ctx_error(ctx));
 *
 * Cost model. Let l = K + 1 (the K steps and the loss) and S = snapshots + 1
 * (the stored states, counting the caller's s_0). With r the smallest integer
 * such that C(S + r, S) >= l, the schedule evaluates
 *     F(K, snapshots) = r l - C(S + r, r - 1)
 * unrecorded steps (the first forward sweep included; F = l(l-1)/2 when
 * snapshots = 0; F = K when snapshots >= K), which is the minimum over all
 * schedules with that many snapshots (Griewank 1992). The reverse sweep
 * records each step once more. So each of the K steps is evaluated
 * 1 + F/K times unrecorded (about r, the number of "repetitions") and once
 * recorded with its vjp. hg_unroll_cost gives F - K, the recomputed steps.
 * Examples: K = 1875 with 10 snapshots recomputes 5,685 steps (r = 5), with
 * 40 snapshots 2,807 (r = 3).
 *
 * Memory (ctx arena): the snapshots the schedule actually uses (at most
 * min(snapshots, K), each a copy of the state), two more state-sized buffers
 * (the working state and the adjoint), the requested d_state0 and d_globals,
 * plus the largest single step: one recorded step with its inner gradient
 * and vjp. Nothing else grows with K.
 *
 * Enclosing tapes: hg_unroll cannot be differentiated itself (its snapshots
 * are copies, not recorded). Called while any tape is active it returns
 * HG_ERR_TAPE and does nothing: end the tape first (to differentiate through
 * a few steps again, record them on one tape as usual). The callbacks, in
 * turn, run both with no tape active (forward sweep, recomputation) and
 * under hg_unroll's own tape (reverse sweep): write them as for training.
 */
#ifndef HGRAD_UNROLL_H
#define HGRAD_UNROLL_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest K accepted (HG_ERR_RANGE above it). */
#define HG_UNROLL_MAX_STEPS 100000000

/* Step k's inputs (k = 0..K-1): writes n_inputs tensors into inputs[],
 * made in ctx (they are released when the step is done) or persistent
 * tensors of the caller (e.g. one batch used by every step). Float inputs
 * are differentiated; i32 ones (labels) are passed through with a NULL
 * gradient. Called once per evaluation of step k (several times when the
 * step is recomputed): it must give the same values every time. Return
 * HG_OK, or an error status (with an error set on ctx) to stop hg_unroll. */
typedef hg_status (*hg_unroll_inputs_fn)(hg_ctx *ctx, int k, hg_tensor **inputs, void *user);

/* One training step k: state_out[i] = new tensors for s_{k+1} (each of the
 * shape and dtype of state[i]; may be state[i] itself for a constant entry)
 * from state (s_k), inputs (step k's) and globals. It takes its inner
 * gradient with a tape of its own (begun and ended inside), and must work
 * both with no tape active and under hg_unroll's tape: use recorded hg_*
 * ops only, never write into its arguments. Must be deterministic: a
 * recomputed step must reproduce s_{k+1} bit for bit. Return HG_OK or an
 * error status. */
typedef hg_status (*hg_unroll_step_fn)(hg_ctx *ctx, int k, hg_tensor *const *state, hg_tensor *const *inputs,
                                       hg_tensor *const *globals, hg_tensor **state_out, void *user);

/* The loss E at the end from s_K: a one-element f32/f64 tensor in ctx, or
 * NULL on error. */
typedef hg_tensor *(*hg_unroll_loss_fn)(hg_ctx *ctx, hg_tensor *const *state, hg_tensor *const *globals, void *user);

/* Called in the reverse sweep for k = K-1, ..., 0 with grads[i] =
 * dE/d(inputs[i] of step k) (shape and dtype of inputs[i]; NULL for an i32
 * input), final at that point. inputs and grads are valid only during the
 * call: copy what is to be kept into memory that outlives it (a tensor made
 * before hg_unroll, written through hg_tensor_data, or a file). Anything the
 * callback allocates in ctx is released when it returns. Return HG_OK or an
 * error status. */
typedef hg_status (*hg_unroll_grad_fn)(hg_ctx *ctx, int k, hg_tensor *const *inputs, hg_tensor *const *grads,
                                       void *user);

typedef struct hg_unroll_spec {
    int steps;                  /* K >= 0 */
    int n_state;                /* >= 1: parameters, then optimizer state */
    hg_tensor *const *state0;   /* s_0: n_state live f32/f64 tensors, read only */
    int n_inputs;               /* per-step inputs (0..HG_UNROLL_MAX_ARGS) */
    int n_globals;              /* 0..HG_UNROLL_MAX_ARGS */
    hg_tensor *const *globals;  /* constant across steps (e.g. lr, rank 0); f32/f64 */
    int snapshots;              /* budget of stored states besides s_0, >= 0 */
    hg_unroll_inputs_fn inputs; /* required when n_inputs > 0 */
    hg_unroll_step_fn step;     /* required */
    hg_unroll_loss_fn loss;     /* required */
    hg_unroll_grad_fn on_grad;  /* optional: gradients of the inputs */
    void *user;                 /* passed to every callback */
} hg_unroll_spec;

/* Bound on n_inputs and n_globals (and on n_state). */
#define HG_UNROLL_MAX_ARGS 64

typedef struct hg_unroll_stats {
    int64_t forward_steps;    /* unrecorded step evaluations: K + recomputed */
    int64_t recomputed_steps; /* forward_steps - K (= hg_unroll_cost) */
    int64_t recorded_steps;   /* steps recorded in the reverse sweep (K, or 0) */
    int snapshots_used;       /* most snapshots held at once (<= budget) */
    size_t state_bytes;       /* bytes of one state copy */
    size_t buffer_bytes;      /* snapshots, working state, adjoint, results */
    size_t step_peak_bytes;   /* most arena bytes one step (or the loss) used */
    size_t arena_peak_bytes;  /* ctx bytes in use at most during the call */
} hg_unroll_stats;

/* Runs the unroll described by spec.
 *  - E (required): receives a new constant one-element tensor in ctx with
 *    the loss, in the loss's dtype and shape.
 *  - d_state0: NULL, or an array of n_state that receives dE/ds_0 (new
 *    tensors in ctx, shapes and dtypes of state0).
 *  - d_globals: NULL, or an array of n_globals that receives dE/dglobals.
 *  - on_grad (in spec) receives the inputs' gradients step by step.
 *  With no gradient asked for (both arrays NULL, no on_grad) only the
 *  forward runs (K steps, no snapshots, no recording) and E is the loss.
 *  - stats: NULL or filled (also on error, as far as it got).
 * Results are valid until the ctx is rewound behind them. Errors (the
 * first on ctx, every output NULL, and the arena rewound to where it was on
 * entry): HG_ERR_NULL (ctx, spec, E, state0/globals entries, a required
 * callback), HG_ERR_RANGE (steps, snapshots, counts), HG_ERR_DTYPE (an i32
 * state or global, a non-float loss), HG_ERR_SHAPE (a step's output not
 * shaped like the state, a loss of more than one element), HG_ERR_TAPE (a
 * tape is active on entry; a callback leaves a tape active), HG_ERR_STALE,
 * HG_ERR_OOM, or whatever a callback returned (a callback's failure with no
 * error on ctx is reported as HG_ERR_INVALID naming the callback and k). */
HG_API hg_status hg_unroll(hg_ctx *ctx, const hg_unroll_spec *spec, hg_tensor **E, hg_tensor **d_state0,
                           hg_tensor **d_globals, hg_unroll_stats *stats);

/* Recomputed steps of the reverse sweep for K steps and a snapshot budget
 * (F(K, snapshots) - K in the cost model above): the minimum possible, and
 * what hg_unroll's stats report. -1 for K < 0, K > HG_UNROLL_MAX_STEPS or
 * snapshots < 0. */
HG_API int64_t hg_unroll_cost(int64_t steps, int64_t snapshots);

/* The smallest snapshot budget whose recomputation is at most
 * max_recomputed steps (hg_unroll_cost(K, s) <= max_recomputed); -1 on bad
 * arguments. E.g. max_recomputed = K gives about one recomputation per
 * step. */
HG_API int64_t hg_unroll_snapshots_for(int64_t steps, int64_t max_recomputed);

/* The largest snapshot budget whose snapshots fit in max_bytes: one
 * snapshot holds a copy of every state tensor, so this is max_bytes divided
 * by the data bytes of state[0 .. n_state) (numel x dtype size, summed; each
 * copy also has a header of under 200 bytes), at most steps (more are never
 * used). 0 when not even one fits (hg_unroll then recomputes from state0).
 * Pass it as hg_unroll_spec.snapshots to bound the sweep's memory rather
 * than its time. state is borrowed, only its shapes and dtypes are read.
 * -1 on bad arguments: steps < 0 or > HG_UNROLL_MAX_STEPS, n_state < 1,
 * state or an entry NULL. */
HG_API int64_t hg_unroll_snapshots_within(int64_t steps, int n_state, hg_tensor *const *state, size_t max_bytes);

#ifdef __cplusplus
}
#endif
#endif
