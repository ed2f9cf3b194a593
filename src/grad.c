/* The reverse sweep. hg_gradient walks the nodes a tape recorded, from the
 * target back to the sources, and builds each input cotangent with the op's
 * vjp, which is made of ordinary recorded ops: the sweep is itself recorded
 * on the tapes still active, which is what gives higher derivatives. */
#include "internal.h"
#include "kernels/fused.h"
#include "ops/optim_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Marks the result of a once-differentiable backward: differentiating
 * through it again is an error naming the original op. */
static hg_status once_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    (void)gout;
    (void)gin;
    const hg_opdef *orig = *(const hg_opdef *const *)node->attr;
    return hg_set_error(ctx, HG_ERR_ONCE_DIFF,
                        "%s: op is once-differentiable (raw backward kernel); its gradient cannot be "
                        "differentiated again",
                        orig->name);
}

static const hg_opdef once_marker = {
    .name = "once_differentiable_backward",
    .n_inputs = 1,
    .n_outputs = 1,
    .attr_size = sizeof(const hg_opdef *),
    .vjp = once_vjp,
};

typedef struct sweep {
    hg_ctx *ctx;
    hg_tape *tape;
    uint32_t id;
    hg_node **nodes; /* nodes reachable from the target on this tape */
    size_t n_nodes, cap_nodes;
    hg_tensor **cot; /* cotangent per relevant tensor slot */
    size_t n_slots, cap_slots;
    /* Reuse (no tape records the sweep): the sources, whose cotangents are
     * the results and stay. */
    bool reuse;
    int n_sources;
    hg_tensor *const *sources;
    /* hg_gradient_axpy: each source's cotangent starts at init[i] and
     * receives scale times every contribution (NULL: plain gradient). */
    hg_tensor *const *init;
    double scale;
} sweep;

/* ---- cotangent reuse ------------------------------------------------------
 * When no tape records the sweep, the tensors it makes are referenced only
 * by the cotangent slots (and, while a vjp runs, by that vjp). Slots count
 * their references; after each node, the tensors made during its vjp and
 * the cotangents it consumed or replaced that no slot references are dead,
 * and their blocks go to the ctx's size-class free lists, where the next
 * allocations of the sweep take them (tensor.c) instead of new arena
 * memory. The free lists end with the sweep; the blocks themselves are
 * released by the next rewind, like everything else. */

/* Could an op applied now be recorded (an active tape that is not paused)? */
static bool any_tape_recording(const hg_ctx *ctx)
{
    for (int L = 0; L < ctx->depth; L++)
        if (!ctx->tapes[L]->paused)
            return true;
    return false;
}

static void ref(hg_tensor *t)
{
    if (t)
        t->refs++;
}

/* Give t's block to the free lists if the sweep made it and nothing refers
 * to it. */
static void release(hg_ctx *ctx, hg_tensor *t)
{
    if (!t || t->born != ctx->reuse_id || t->refs != 0 || t->obj.magic != HG_TENSOR_MAGIC)
        return;
    t->obj.magic = HG_FREE_MAGIC;
    ctx->n_tensors--;
    int c = hg_free_class(t->block_bytes);
    t->link = ctx->free_blocks[c];
    ctx->free_blocks[c] = t;
}

static void unref(hg_tensor *t)
{
    if (t)
        t->refs--;
}

static bool is_source(const sweep *sw, const hg_tensor *t)
{
    for (int i = 0; i < sw->n_sources; i++)
        if (sw->sources[i] == t)
            return true;
    return false;
}

/* A source whose cotangent is an axpy accumulator (hg_gradient_axpy)? */
static bool scaled_slot(const sweep *sw, const hg_tensor *t)
{
    return sw->init && is_source(sw, t);
}

/* May the sweep write t in place? Only when nothing records it, the sweep
 * made t, and exactly one cotangent slot refers to it (so no other
 * cotangent, result or vjp operand shares it). */
static bool owned(const sweep *sw, const hg_tensor *t)
{
    return sw->reuse && t && t->born == sw->ctx->reuse_id && t->refs == 1 && t->obj.magic == HG_TENSOR_MAGIC;
}

hg_tensor *hg_sweep_take(hg_ctx *ctx, const hg_node *node, int i, bool *owned_out, double *scale)
{
    *owned_out = false;
    *scale = 1;
    sweep *sw = ctx ? ctx->sweep : NULL;
    if (!sw || ctx->vjp_node != node || i < 0 || i >= node->n_in || i >= 32 || !node->needs_grad[i])
        return NULL;
    hg_tensor *t = node->in[i];
    for (int j = 0; j < node->n_in; j++)
        if (j != i && node->in[j] == t)
            return NULL;
    if (t->sweep != sw->id || !sw->cot[t->slot])
        return NULL;
    ctx->taken |= 1u << i;
    *owned_out = owned(sw, sw->cot[t->slot]);
    if (scaled_slot(sw, t))
        *scale = sw->scale;
    return sw->cot[t->slot];
}

static bool grow(hg_ctx *ctx, void **array, size_t *cap, size_t elem)
{
    size_t ncap = *cap ? 2 * *cap : 64;
    void *p = hg_arena_alloc(ctx, ncap * elem);
    if (!p)
        return false;
    if (*cap)
        memcpy(p, *array, *cap * elem);
    *array = p;
    *cap = ncap;
    return true;
}

static hg_status oom(sweep *sw)
{
    return hg_set_error(sw->ctx, HG_ERR_OOM, "hg_gradient: out of memory during the sweep");
}

/* Depth-first collection of the tape's nodes reachable from target. */
static hg_status collect(sweep *sw, hg_tensor *target)
{
    hg_node **stack = NULL;
    size_t top = 0, cap = 0;
    if (!hg_tape_recorded(sw->tape, target->creator))
        return HG_OK;
    if (!grow(sw->ctx, (void **)&stack, &cap, sizeof *stack))
        return oom(sw);
    target->creator->sweep = sw->id;
    stack[top++] = target->creator;
    while (top) {
        hg_node *n = stack[--top];
        if (sw->n_nodes == sw->cap_nodes && !grow(sw->ctx, (void **)&sw->nodes, &sw->cap_nodes, sizeof *sw->nodes))
            return oom(sw);
        sw->nodes[sw->n_nodes++] = n;
        for (int i = 0; i < n->n_in; i++) {
            hg_node *c = n->in[i]->creator;
            if (c && c->sweep != sw->id && hg_tape_recorded(sw->tape, c)) {
                c->sweep = sw->id;
                if (top == cap && !grow(sw->ctx, (void **)&stack, &cap, sizeof *stack))
                    return oom(sw);
                stack[top++] = c;
            }
        }
    }
    return HG_OK;
}

static int by_serial(const void *a, const void *b)
{
    uint64_t x = (*(hg_node *const *)a)->serial, y = (*(hg_node *const *)b)->serial;
    return x < y ? -1 : x > y;
}

static bool relevant(const sweep *sw, const hg_tensor *t)
{
    return t->sweep == sw->id;
}

static hg_status make_relevant(sweep *sw, hg_tensor *t)
{
    if (relevant(sw, t))
        return HG_OK;
    if (sw->n_slots == sw->cap_slots && !grow(sw->ctx, (void **)&sw->cot, &sw->cap_slots, sizeof *sw->cot))
        return oom(sw);
    t->sweep = sw->id;
    t->slot = (int32_t)sw->n_slots;
    sw->cot[sw->n_slots++] = NULL;
    return HG_OK;
}

/* Add g into the cotangent of t (recorded, so outer tapes see the sum). A
 * replaced cotangent goes to *dropped (reuse candidates). */
static hg_status accumulate(sweep *sw, hg_tensor *t, hg_tensor *g, const hg_node *node, int i, bool taken,
                            hg_tensor **dropped)
{
    char a[160], b[160];
    if (hg_tensor_check(g) != HG_OK || g->ctx != sw->ctx)
        return hg_set_error(sw->ctx, HG_ERR_INVALID, "%s: vjp returned an invalid cotangent for input %d",
                            node->def->name, i);
    if (!hg_same_shape(g, t) || g->dtype != t->dtype)
        return hg_set_error(sw->ctx, HG_ERR_SHAPE, "%s: vjp returned cotangent %s %s for input %d of shape %s %s",
                            node->def->name, HG_SHAPE(g, a), hg_dtype_name(g->dtype), i, HG_SHAPE(t, b),
                            hg_dtype_name(t->dtype));
    hg_tensor **slot = &sw->cot[t->slot];
    if (taken) { /* g already includes *slot (hg_sweep_take) */
        if (g != *slot) {
            unref(*slot);
            *dropped = *slot;
            *slot = g;
            ref(g);
        }
        return HG_OK;
    }
    bool axpy = scaled_slot(sw, t); /* *slot is init + scale (earlier contributions) */
    if (!*slot) {
        *slot = g;
        ref(g);
        return HG_OK;
    }
    if (owned(sw, *slot) && g != *slot) {
        /* Unrecorded: add in place (the IEEE operations of hg_add, or of
         * hg_opt_lincomb(slot, g; 1, scale)). */
        if (axpy)
            hg_fused_axpy(*slot, g, sw->scale);
        else
            hg_fused_accumulate(*slot, g);
        *dropped = g;
        return HG_OK;
    }
    hg_tensor *sum = axpy ? hg_opt_lincomb(sw->ctx, *slot, g, 1.0, sw->scale) : hg_add(sw->ctx, *slot, g);
    if (!sum)
        return hg_ctx_status(sw->ctx);
    unref(*slot);
    *dropped = *slot;
    *slot = sum;
    ref(sum);
    return HG_OK;
}

/* Raw backward of a once-differentiable op, with a marker recorded on the
 * outer tapes so that a second derivative through it is a clear error. */
static hg_status run_raw_backward(sweep *sw, hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    hg_ctx *ctx = sw->ctx;
    for (int i = 0; i < node->n_in; i++) {
        gin[i] = NULL;
        if (node->needs_grad[i] && !(gin[i] = hg_zeros_like(ctx, node->in[i])))
            return hg_ctx_status(ctx);
    }
    hg_status s = node->def->backward(ctx, node, gout, gin);
    if (s != HG_OK)
        return hg_set_error(ctx, s, "%s: backward kernel failed", node->def->name);
    hg_tensor *deps[HG_MAX_OP_INPUTS + HG_MAX_OP_OUTPUTS];
    int n_deps = 0;
    for (int i = 0; i < node->n_in; i++)
        deps[n_deps++] = node->in[i];
    for (int k = 0; k < node->n_out && n_deps < HG_MAX_OP_INPUTS; k++)
        deps[n_deps++] = gout[k];
    const hg_opdef *orig = node->def;
    for (int i = 0; i < node->n_in; i++)
        if (gin[i] && (s = hg_record(ctx, &once_marker, n_deps, deps, 1, &gin[i], &orig)) != HG_OK)
            return s;
    return HG_OK;
}

/* A tensor the node saved that was written in place since it was recorded
 * (its version moved): the vjp would read the new values. */
static hg_status check_versions(hg_ctx *ctx, const hg_node *node)
{
    char a[160];
    for (int i = 0; i < node->n_in; i++)
        if (node->in[i]->version != node->in_version[i])
            return hg_set_error(ctx, HG_ERR_MODIFIED,
                                "hg_gradient: input %d (%s %s) of %s was modified by an in-place write (version "
                                "%llu, recorded at %llu) after the op was recorded; write tensors before "
                                "using them, or write into a copy (hg_tensor_clone)",
                                i, HG_SHAPE(node->in[i], a), hg_dtype_name(node->in[i]->dtype), node->def->name,
                                (unsigned long long)node->in[i]->version, (unsigned long long)node->in_version[i]);
    for (int k = 0; k < node->n_out; k++)
        if (node->out[k]->version != node->out_version[k])
            return hg_set_error(ctx, HG_ERR_MODIFIED,
                                "hg_gradient: output %d (%s %s) of %s was modified by an in-place write (version "
                                "%llu, recorded at %llu) after the op was recorded; write into a copy "
                                "(hg_tensor_clone) instead",
                                k, HG_SHAPE(node->out[k], a), hg_dtype_name(node->out[k]->dtype), node->def->name,
                                (unsigned long long)node->out[k]->version, (unsigned long long)node->out_version[k]);
    return HG_OK;
}

/* Did an error get recorded on the ctx since `errors` was read (by an op
 * inside a vjp, even if the vjp returned HG_OK)? Then the gradient fails:
 * returns the error's code, with the op named in the message if this error
 * is the ctx's first. */
static hg_status failed_inside(hg_ctx *ctx, uint64_t errors, hg_status before, const hg_node *node, const char *where)
{
    if (ctx->n_errors == errors)
        return HG_OK;
    if (ctx->status == HG_OK) /* cleared meanwhile: record our own */
        return hg_set_error(ctx, HG_ERR_INVALID, "hg_gradient: an op failed in the %s of %s", where, node->def->name);
    if (before == HG_OK) { /* the first error arose here: say where */
        size_t len = strlen(ctx->message);
        snprintf(ctx->message + len, sizeof ctx->message - len, " (in the %s of %s, during hg_gradient)", where,
                 node->def->name);
    }
    return ctx->status;
}

static hg_status backprop_node(sweep *sw, hg_node *node)
{
    hg_ctx *ctx = sw->ctx;
    hg_tensor *gout[HG_MAX_OP_OUTPUTS] = {0};
    bool any = false;
    for (int k = 0; k < node->n_out; k++) {
        hg_tensor *o = node->out[k];
        if (relevant(sw, o) && sw->cot[o->slot]) {
            gout[k] = sw->cot[o->slot];
            any = true;
        }
    }
    if (!any)
        return HG_OK;
    ctx->born_list = NULL;
    hg_status s = check_versions(ctx, node);
    if (s != HG_OK)
        return s;
    for (int k = 0; k < node->n_out; k++)
        if (!gout[k] && !(gout[k] = hg_zeros_like(ctx, node->out[k])))
            return hg_ctx_status(ctx);
    hg_tensor *gin[HG_MAX_OP_INPUTS] = {0};
    uint64_t errors = ctx->n_errors;
    hg_status before = ctx->status;
    ctx->vjp_node = node;
    ctx->taken = 0;
    if (node->def->vjp) {
        s = node->def->vjp(ctx, node, gout, gin);
        ctx->vjp_node = NULL;
        if ((s = s != HG_OK ? hg_set_error(ctx, s, "%s: vjp failed", node->def->name) : HG_OK) != HG_OK ||
            (s = failed_inside(ctx, errors, before, node, "vjp")) != HG_OK)
            return s;
    } else {
        s = run_raw_backward(sw, node, gout, gin);
        if (s != HG_OK || (s = failed_inside(ctx, errors, before, node, "backward")) != HG_OK)
            return s;
    }
    ctx->vjp_node = NULL;
    uint32_t taken = ctx->taken;
    hg_tensor *dropped[HG_MAX_OP_INPUTS + HG_MAX_OP_OUTPUTS] = {0};
    for (int i = 0; i < node->n_in; i++) {
        bool took = (taken >> i) & 1u;
        if (took && !gin[i])
            return hg_set_error(ctx, HG_ERR_INVALID,
                                "%s: vjp took the cotangent of input %d (hg_sweep_take) and returned none",
                                node->def->name, i);
        if (node->needs_grad[i] && gin[i] &&
            (s = accumulate(sw, node->in[i], gin[i], node, i, took, &dropped[i])) != HG_OK)
            return s;
    }
    if ((s = failed_inside(ctx, errors, before, node, "gradient accumulation")) != HG_OK || !sw->reuse)
        return s;
    /* The outputs' cotangents are consumed (unless a source's: a result). */
    for (int k = 0; k < node->n_out; k++) {
        hg_tensor *o = node->out[k];
        if (relevant(sw, o) && sw->cot[o->slot] && !is_source(sw, o)) {
            unref(sw->cot[o->slot]);
            dropped[HG_MAX_OP_INPUTS + k] = sw->cot[o->slot];
            sw->cot[o->slot] = NULL;
        }
    }
    /* Born list first: release() reuses the link field. */
    for (hg_tensor *t = ctx->born_list, *next; t; t = next) {
        next = t->link;
        release(ctx, t);
    }
    ctx->born_list = NULL;
    for (size_t j = 0; j < sizeof dropped / sizeof dropped[0]; j++)
        release(ctx, dropped[j]);
    return HG_OK;
}

static hg_status check_args(hg_tape *tape, hg_tensor *target, int n, hg_tensor *const *sources, hg_tensor *seed,
                            hg_tensor **grads)
{
    hg_ctx *ctx = tape->ctx;
    if (!grads && n > 0)
        return hg_set_error(ctx, HG_ERR_NULL, "hg_gradient: grads array is NULL");
    for (int i = 0; i < n && grads; i++)
        grads[i] = NULL;
    if (n < 0)
        return hg_set_error(ctx, HG_ERR_INVALID, "hg_gradient: negative source count %d", n);
    if (n > 0 && !sources)
        return hg_set_error(ctx, HG_ERR_NULL, "hg_gradient: sources array is NULL");
    if (!tape->ended)
        return hg_set_error(ctx, HG_ERR_TAPE, "hg_gradient: tape at level %d is still recording; end it first",
                            tape->level);
    if (!(tape->flags & HG_TAPE_PERSISTENT) && tape->gradients_taken)
        return hg_set_error(ctx, HG_ERR_TAPE, "hg_gradient: tape is not persistent and its gradient was already taken");
    if (ctx->in_sweep)
        return hg_set_error(ctx, HG_ERR_TAPE, "hg_gradient: called from inside another gradient sweep");
    hg_status s = hg_tensor_validate(ctx, target, "hg_gradient (target)");
    if (s != HG_OK)
        return s;
    if (!hg_is_float(target->dtype))
        return hg_set_error(ctx, HG_ERR_DTYPE, "hg_gradient: target is %s, not a float tensor",
                            hg_dtype_name(target->dtype));
    for (int i = 0; i < n; i++)
        if ((s = hg_tensor_validate(ctx, sources[i], "hg_gradient (source)")) != HG_OK)
            return s;
    char a[160], b[160];
    if (seed) {
        if ((s = hg_tensor_validate(ctx, seed, "hg_gradient (seed)")) != HG_OK)
            return s;
        if (!hg_same_shape(seed, target) || seed->dtype != target->dtype)
            return hg_set_error(ctx, HG_ERR_SHAPE, "hg_gradient: seed %s %s does not match target %s %s",
                                HG_SHAPE(seed, a), hg_dtype_name(seed->dtype), HG_SHAPE(target, b),
                                hg_dtype_name(target->dtype));
    } else if (target->numel != 1) {
        return hg_set_error(ctx, HG_ERR_SHAPE,
                            "hg_gradient: target %s has %lld elements; give a seed (output cotangent)",
                            HG_SHAPE(target, a), (long long)target->numel);
    }
    return HG_OK;
}

/* Would grads[i] alias the seed, the target, a source or an earlier result? */
static bool aliases(const hg_tensor *g, int i, hg_tensor *target, int n, hg_tensor *const *sources, hg_tensor *seed,
                    hg_tensor *const *grads)
{
    if (g == seed || g == target)
        return true;
    for (int j = 0; j < n; j++)
        if (g == sources[j] || (j < i && g == grads[j]))
            return true;
    return false;
}

static hg_status run_sweep(sweep *sw, hg_tensor *target, int n, hg_tensor *const *sources, hg_tensor *seed,
                           hg_tensor **grads)
{
    hg_ctx *ctx = sw->ctx;
    char a[160];
    if (!hg_tape_has(sw->tape, target) && !(sw->tape->flags & HG_TAPE_UNRECORDED_TARGET_ZERO))
        return hg_set_error(ctx, HG_ERR_TAPE,
                            "hg_gradient: target %s %s was not recorded on this tape (computed after "
                            "hg_tape_end, while the tape was paused, or only from inputs it does not track); "
                            "begin the tape with HG_TAPE_UNRECORDED_TARGET_ZERO to get zeros instead",
                            HG_SHAPE(target, a), hg_dtype_name(target->dtype));
    hg_status s = collect(sw, target);
    if (s != HG_OK)
        return s;
    if (sw->n_nodes > 1)
        qsort(sw->nodes, sw->n_nodes, sizeof *sw->nodes, by_serial);
    /* Relevance: sources the tape tracks, and everything computed from them
     * by the collected nodes (in recording order). */
    for (int i = 0; i < n; i++)
        if (hg_tape_has(sw->tape, sources[i]) && (s = make_relevant(sw, sources[i])) != HG_OK)
            return s;
    for (size_t j = 0; j < sw->n_nodes; j++) {
        hg_node *node = sw->nodes[j];
        bool any = false;
        for (int i = 0; i < node->n_in; i++) {
            node->needs_grad[i] = (uint8_t)(hg_is_float(node->in[i]->dtype) && relevant(sw, node->in[i]));
            any = any || node->needs_grad[i];
        }
        for (int k = 0; any && k < node->n_out; k++)
            if ((s = make_relevant(sw, node->out[k])) != HG_OK)
                return s;
    }
    if (relevant(sw, target)) {
        hg_tensor *g = seed ? seed : hg_ones_like(ctx, target);
        if (!g)
            return hg_ctx_status(ctx);
        sw->cot[target->slot] = g;
        ref(g);
        /* hg_gradient_axpy: the sources' accumulators start at init (never
         * written in place: the sweep did not make them). */
        for (int i = 0; sw->init && i < n; i++)
            if (relevant(sw, sources[i])) {
                sw->cot[sources[i]->slot] = sw->init[i];
                ref(sw->init[i]);
            }
        for (size_t j = sw->n_nodes; j-- > 0;)
            if ((s = backprop_node(sw, sw->nodes[j])) != HG_OK)
                return s;
    }
    for (int i = 0; i < n; i++) {
        hg_tensor *src = sources[i];
        hg_tensor *g = relevant(sw, src) ? sw->cot[src->slot] : NULL;
        if (sw->init) { /* init[i] itself when nothing was added: a copy */
            g = g ? g : sw->init[i];
            if ((g == sw->init[i] || aliases(g, i, target, n, sources, seed, grads)) && !(g = hg_identity(ctx, g)))
                return hg_ctx_status(ctx);
            grads[i] = g;
            continue;
        }
        if (!g && !(sw->tape->flags & HG_TAPE_UNCONNECTED_NULL) && !(g = hg_zeros_like(ctx, src)))
            return hg_ctx_status(ctx);
        /* Distinct results: a copy (recorded, so still differentiable) where
         * a cotangent passed straight through from the seed or is shared. */
        if (g && aliases(g, i, target, n, sources, seed, grads) && !(g = hg_identity(ctx, g)))
            return hg_ctx_status(ctx);
        grads[i] = g;
    }
    return HG_OK;
}

/* hg_gradient, or hg_gradient_axpy's sweep when init is given. */
static hg_status gradient(hg_tape *tape, hg_tensor *target, int n, hg_tensor *const *sources, hg_tensor *seed,
                          hg_tensor **grads, hg_tensor *const *init, double scale)
{
    if (!tape) {
        for (int i = 0; i < n && grads; i++)
            grads[i] = NULL;
        return HG_ERR_NULL;
    }
    if (tape->obj.magic != HG_TAPE_MAGIC) {
        for (int i = 0; i < n && grads; i++)
            grads[i] = NULL;
        return HG_ERR_STALE;
    }
    hg_ctx *ctx = tape->ctx;
    hg_status s = check_args(tape, target, n, sources, seed, grads);
    if (s != HG_OK)
        return s;
    tape->gradients_taken++;
    sweep sw;
    memset(&sw, 0, sizeof sw);
    sw.ctx = ctx;
    sw.tape = tape;
    if (++ctx->sweep_id == 0)
        ctx->sweep_id = 1;
    sw.id = ctx->sweep_id;
    /* Reuse cotangent blocks when no tape records the sweep. */
    sw.reuse = !any_tape_recording(ctx);
    sw.n_sources = n;
    sw.sources = sources;
    sw.init = init;
    sw.scale = scale;
    if (sw.reuse) {
        if (++ctx->next_reuse_id == 0)
            ctx->next_reuse_id = 1;
        ctx->reuse_id = ctx->next_reuse_id;
    }
    ctx->in_sweep = true;
    ctx->sweep = &sw;
    s = run_sweep(&sw, target, n, sources, seed, grads);
    ctx->in_sweep = false;
    ctx->sweep = NULL;
    ctx->vjp_node = NULL;
    ctx->reuse_id = 0;
    ctx->born_list = NULL;
    memset(ctx->free_blocks, 0, sizeof ctx->free_blocks);
    if (s != HG_OK)
        for (int i = 0; i < n; i++)
            grads[i] = NULL;
    return s;
}

hg_status hg_gradient(hg_tape *tape, hg_tensor *target, int n, hg_tensor *const *sources, hg_tensor *seed,
                      hg_tensor **grads)
{
    return gradient(tape, target, n, sources, seed, grads, NULL, 1.0);
}

/* Can the axpy sweep run (else: a gradient, then lincomb)? Each source a
 * leaf of the tape (its cotangent is a result, never consumed by a vjp),
 * distinct, and not the target (whose slot holds the seed). */
static bool axpy_sweep_applies(const hg_tape *tape, const hg_tensor *target, int n, hg_tensor *const *sources)
{
    for (int i = 0; i < n; i++) {
        if (sources[i] == target || (sources[i]->creator && hg_tape_recorded(tape, sources[i]->creator)))
            return false;
        for (int j = 0; j < i; j++)
            if (sources[j] == sources[i])
                return false;
    }
    return true;
}

hg_status hg_gradient_axpy(hg_tape *tape, hg_tensor *target, int n, hg_tensor *const *sources, hg_tensor *const *init,
                           double scale, hg_tensor **out)
{
    if (!tape || tape->obj.magic != HG_TAPE_MAGIC) {
        for (int i = 0; i < n && out; i++)
            out[i] = NULL;
        return !tape ? HG_ERR_NULL : HG_ERR_STALE;
    }
    hg_ctx *ctx = tape->ctx;
    if (n > 0 && (!out || !init || !sources)) {
        for (int i = 0; i < n && out; i++)
            out[i] = NULL;
        return hg_set_error(ctx, HG_ERR_NULL, "hg_gradient_axpy: %s is NULL",
                            !out    ? "out"
                            : !init ? "init"
                                    : "sources");
    }
    hg_status s = check_args(tape, target, n, sources, NULL, out);
    if (s != HG_OK)
        return s;
    for (int i = 0; i < n; i++) {
        char a[160], b[160];
        if ((s = hg_tensor_validate(ctx, init[i], "hg_gradient_axpy (init)")) != HG_OK)
            return s;
        if (!hg_same_shape(init[i], sources[i]) || init[i]->dtype != sources[i]->dtype || !hg_is_float(init[i]->dtype))
            return hg_set_error(ctx, HG_ERR_SHAPE, "hg_gradient_axpy: init %d is %s %s, source is %s %s", i,
                                HG_SHAPE(init[i], a), hg_dtype_name(init[i]->dtype), HG_SHAPE(sources[i], b),
                                hg_dtype_name(sources[i]->dtype));
    }
    if (axpy_sweep_applies(tape, target, n, sources))
        return gradient(tape, target, n, sources, NULL, out, init, scale);
    hg_tensor **g = n > 0 ? hg_arena_alloc(ctx, (size_t)n * sizeof *g) : NULL;
    if (n > 0 && !g)
        return hg_set_error(ctx, HG_ERR_OOM, "hg_gradient_axpy: out of memory");
    if ((s = gradient(tape, target, n, sources, NULL, g, NULL, 1.0)) != HG_OK)
        return s;
    for (int i = 0; i < n; i++)
        if (!(out[i] = g[i] ? hg_opt_lincomb(ctx, init[i], g[i], 1.0, scale) : hg_identity(ctx, init[i]))) {
            for (int j = 0; j < i; j++)
                out[j] = NULL;
            return hg_ctx_status(ctx);
        }
    return HG_OK;
}
