/* Tape stack: begin/end, watch, pause/resume. */
#include "internal.h"

#include <string.h>

static hg_status validate_tape(const hg_tape *tape)
{
    if (!tape)
        return HG_ERR_NULL;
    if (tape->obj.magic != HG_TAPE_MAGIC)
        return HG_ERR_STALE;
    return HG_OK;
}

hg_tape *hg_tape_begin(hg_ctx *ctx, unsigned flags)
{
    if (!ctx)
        return NULL;
    if (ctx->in_sweep) {
        hg_set_error(ctx, HG_ERR_TAPE, "hg_tape_begin: called from inside a gradient sweep");
        return NULL;
    }
    if (ctx->depth >= HG_MAX_TAPES) {
        hg_set_error(ctx, HG_ERR_TAPE, "hg_tape_begin: %d tapes already active (HG_MAX_TAPES)", ctx->depth);
        return NULL;
    }
    if (flags & ~(unsigned)(HG_TAPE_PERSISTENT | HG_TAPE_UNCONNECTED_NULL | HG_TAPE_UNRECORDED_TARGET_ZERO)) {
        hg_set_error(ctx, HG_ERR_INVALID, "hg_tape_begin: unknown flags 0x%x", flags);
        return NULL;
    }
    hg_tape *tape = hg_arena_alloc(ctx, sizeof *tape);
    if (!tape) {
        hg_set_error(ctx, HG_ERR_OOM, "hg_tape_begin: out of memory");
        return NULL;
    }
    memset(tape, 0, sizeof *tape);
    hg_arena_register(ctx, &tape->obj, HG_TAPE_MAGIC);
    tape->ctx = ctx;
    tape->id = ctx->next_tape_id++;
    if (ctx->next_tape_id == 0)
        ctx->next_tape_id = 1;
    tape->level = ctx->depth;
    tape->flags = flags;
    tape->begin_serial = ++ctx->serial;
    tape->older = ctx->newest_tape;
    ctx->newest_tape = tape;
    ctx->tapes[ctx->depth++] = tape;
    return tape;
}

hg_status hg_tape_end(hg_tape *tape)
{
    hg_status s = validate_tape(tape);
    if (s != HG_OK)
        return s;
    hg_ctx *ctx = tape->ctx;
    if (tape->ended)
        return hg_set_error(ctx, HG_ERR_TAPE, "hg_tape_end: tape already ended");
    if (ctx->depth == 0 || ctx->tapes[ctx->depth - 1] != tape)
        return hg_set_error(ctx, HG_ERR_TAPE,
                            "hg_tape_end: tape at level %d is not the innermost active tape (level %d); end "
                            "inner tapes first",
                            tape->level, ctx->depth - 1);
    tape->ended = true;
    tape->end_serial = ++ctx->serial;
    ctx->tapes[--ctx->depth] = NULL;
    return HG_OK;
}

hg_status hg_watch(hg_tape *tape, hg_tensor *t)
{
    hg_status s = validate_tape(tape);
    if (s != HG_OK)
        return s;
    hg_ctx *ctx = tape->ctx;
    if (tape->ended)
        return hg_set_error(ctx, HG_ERR_TAPE, "hg_watch: tape has ended");
    s = hg_tensor_validate(ctx, t, "hg_watch");
    if (s != HG_OK)
        return s;
    if (!hg_is_float(t->dtype))
        return hg_set_error(ctx, HG_ERR_DTYPE, "hg_watch: cannot watch an %s tensor (not differentiable)",
                            hg_dtype_name(t->dtype));
    if (t->track[tape->level] == tape->id)
        return HG_OK;
    hg_watch_rec *rec = hg_arena_alloc(ctx, sizeof *rec);
    if (!rec)
        return hg_set_error(ctx, HG_ERR_OOM, "hg_watch: out of memory");
    rec->t = t;
    rec->serial = ++ctx->serial;
    rec->next = tape->watched;
    tape->watched = rec;
    t->track[tape->level] = tape->id;
    return HG_OK;
}

hg_status hg_watch_n(hg_tape *tape, int n, hg_tensor *const *ts)
{
    if (n > 0 && !ts)
        return tape && validate_tape(tape) == HG_OK ? hg_set_error(tape->ctx, HG_ERR_NULL, "hg_watch_n: array is NULL")
                                                    : HG_ERR_NULL;
    for (int i = 0; i < n; i++) {
        hg_status s = hg_watch(tape, ts[i]);
        if (s != HG_OK)
            return s;
    }
    return HG_OK;
}

hg_status hg_tape_pause(hg_tape *tape)
{
    hg_status s = validate_tape(tape);
    if (s != HG_OK)
        return s;
    if (tape->ended)
        return hg_set_error(tape->ctx, HG_ERR_TAPE, "hg_tape_pause: tape has ended");
    tape->paused++;
    return HG_OK;
}

hg_status hg_tape_resume(hg_tape *tape)
{
    hg_status s = validate_tape(tape);
    if (s != HG_OK)
        return s;
    if (tape->ended)
        return hg_set_error(tape->ctx, HG_ERR_TAPE, "hg_tape_resume: tape has ended");
    if (tape->paused == 0)
        return hg_set_error(tape->ctx, HG_ERR_TAPE, "hg_tape_resume: tape is not paused");
    tape->paused--;
    return HG_OK;
}

bool hg_tape_recorded(const hg_tape *tape, const hg_node *node)
{
    return node && (node->level_mask >> tape->level & 1u) && node->serial > tape->begin_serial &&
           (!tape->ended || node->serial < tape->end_serial);
}

bool hg_tape_has(const hg_tape *tape, const hg_tensor *t)
{
    if (hg_tape_recorded(tape, t->creator))
        return true;
    for (const hg_watch_rec *w = tape->watched; w; w = w->next)
        if (w->t == t)
            return true;
    return false;
}

int hg_tape_tracks(const hg_tape *tape, const hg_tensor *t)
{
    if (validate_tape(tape) != HG_OK || hg_tensor_check(t) != HG_OK)
        return 0;
    return hg_tape_has(tape, t);
}

hg_ctx *hg_tape_ctx(const hg_tape *tape)
{
    return validate_tape(tape) == HG_OK ? tape->ctx : NULL;
}
