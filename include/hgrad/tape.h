/* Tapes: record operations for reverse-mode differentiation.
 *
 * Active tapes form a stack on their ctx (a ctx is used by one thread at a
 * time, so this is a per-thread stack). An op records a node when any active,
 * unpaused tape tracks one of its inputs; a tape tracks what it watched and
 * what was computed from that while it recorded. hg_gradient sweeps an ended
 * tape backwards and builds every cotangent with ordinary hg_* ops, so the
 * sweep itself is recorded on the tapes still active: nesting tapes gives
 * derivatives of any order.
 *
 *   hg_tape *outer = hg_tape_begin(ctx, 0);
 *   hg_watch(outer, x);
 *   hg_tape *inner = hg_tape_begin(ctx, 0);
 *   hg_watch(inner, x);
 *   hg_tensor *y = hg_mul(ctx, x, hg_exp(ctx, x));
 *   hg_tape_end(inner);
 *   hg_tensor *dy;  hg_gradient(inner, y, 1, &x, NULL, &dy);  // recorded on outer
 *   hg_tape_end(outer);
 *   hg_tensor *d2y; hg_gradient(outer, dy, 1, &x, NULL, &d2y);
 *
 * Tapes live in the ctx arena; there is nothing to free. */
#ifndef HGRAD_TAPE_H
#define HGRAD_TAPE_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hg_tape hg_tape;

enum hg_tape_flags {
    HG_TAPE_PERSISTENT = 1,       /* allow any number of hg_gradient calls */
    HG_TAPE_UNCONNECTED_NULL = 2, /* unconnected sources give NULL, not zeros */
    /* A target the tape did not record gives zero gradients (NULL under
     * HG_TAPE_UNCONNECTED_NULL) instead of HG_ERR_TAPE: for code that
     * differentiates results that may legitimately be constant, e.g. the
     * derivative of a gradient that does not depend on x (PyTorch's
     * functional API with strict=False). */
    HG_TAPE_UNRECORDED_TARGET_ZERO = 4
};

/* Push a new tape (flags: hg_tape_flags). Returns NULL with HG_ERR_TAPE when
 * HG_MAX_TAPES tapes are already active, HG_ERR_OOM, HG_ERR_NULL. */
HG_API hg_tape *hg_tape_begin(hg_ctx *ctx, unsigned flags);
/* Pop the tape; it must be the innermost active tape (HG_ERR_TAPE otherwise,
 * and nothing changes). */
HG_API hg_status hg_tape_end(hg_tape *tape);
/* Track t (any float dtype) on this active tape. Errors: HG_ERR_NULL,
 * HG_ERR_TAPE (tape ended), HG_ERR_DTYPE (i32), HG_ERR_STALE. */
HG_API hg_status hg_watch(hg_tape *tape, hg_tensor *t);
HG_API hg_status hg_watch_n(hg_tape *tape, int n, hg_tensor *const *ts);
/* While paused, ops are not recorded on this tape (results are constants for
 * it). Pause/resume nest by count. HG_ERR_TAPE if the tape has ended. */
HG_API hg_status hg_tape_pause(hg_tape *tape);
HG_API hg_status hg_tape_resume(hg_tape *tape);
/* 1 if t is tracked by this (active) tape, else 0. */
HG_API int hg_tape_tracks(const hg_tape *tape, const hg_tensor *t);
HG_API hg_ctx *hg_tape_ctx(const hg_tape *tape);

/* Reverse sweep: grads[i] = d(<seed, target>)/d(sources[i]).
 *  - target: a float tensor this tape recorded: computed by an op recorded
 *    on it, or watched on it (then the gradient w.r.t. itself is the seed).
 *    Any other target (computed after hg_tape_end, while paused, or only
 *    from untracked inputs) is HG_ERR_TAPE "target was not recorded on this
 *    tape", unless the tape has HG_TAPE_UNRECORDED_TARGET_ZERO.
 *  - seed: a tensor of the target's shape and dtype, or NULL for a
 *    one-element target (seed 1).
 *  - sources: n tensors; each result has its source's shape and dtype. A
 *    source the tape does not track or the target does not depend on gives
 *    zeros (or NULL under HG_TAPE_UNCONNECTED_NULL).
 *  - Results are distinct tensors: none is the seed or another result (a
 *    source listed twice gets two tensors), so writing into one never
 *    changes another.
 *  - Every vjp the sweep runs must leave the ctx without a new error: if an
 *    op inside a vjp fails (even when the vjp returns HG_OK), the gradient
 *    fails with that error, its message extended with the op whose vjp ran.
 *  - A tensor that a recorded op saved (input or output) and that was
 *    written through a writable accessor since gives HG_ERR_MODIFIED naming
 *    the op and the input; nothing is returned.
 *  - The tape must have ended (HG_ERR_TAPE otherwise). A non-persistent tape
 *    allows one call; later calls return HG_ERR_TAPE.
 *  - The gradient ops are recorded on every tape still active, so results can
 *    be differentiated again (to any order).
 *  - On error every grads[i] is NULL and the first error is on the ctx. */
HG_API hg_status hg_gradient(hg_tape *tape, hg_tensor *target, int n, hg_tensor *const *sources, hg_tensor *seed,
                             hg_tensor **grads);

#ifdef __cplusplus
}
#endif
#endif
