/* The ctx arena: chunked bump allocation, 64-byte alignment, mark/rewind,
 * statistics, stale-object detection. */
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static void *default_alloc(size_t size, void *user)
{
    (void)user;
    return malloc(size);
}

static void default_free(void *ptr, size_t size, void *user)
{
    (void)size;
    (void)user;
    free(ptr);
}

static const hg_allocator default_allocator = {default_alloc, default_free, NULL};

hg_ctx *hg_ctx_new(const hg_ctx_options *opts)
{
    const hg_allocator *a = opts && opts->allocator ? opts->allocator : &default_allocator;
    if (!a->alloc || !a->free)
        return NULL;
    hg_ctx *ctx = a->alloc(sizeof *ctx, a->user);
    if (!ctx)
        return NULL;
    memset(ctx, 0, sizeof *ctx);
    ctx->allocator = *a;
    ctx->chunk_bytes = opts && opts->chunk_bytes ? opts->chunk_bytes : (size_t)1 << 20;
    if (ctx->chunk_bytes < 4096)
        ctx->chunk_bytes = 4096;
    ctx->max_bytes = opts ? opts->max_bytes : 0;
    ctx->next_tape_id = 1;
    static atomic_uint_fast64_t next_ctx_id = 1;
    ctx->id = atomic_fetch_add(&next_ctx_id, 1);
    ctx->owner = pthread_self();
    return ctx;
}

void hg_ctx_free(hg_ctx *ctx)
{
    if (!ctx)
        return;
    hg_allocator a = ctx->allocator;
    for (size_t i = 0; i < ctx->n_chunks; i++)
        a.free(ctx->chunks[i].raw, ctx->chunks[i].raw_size, a.user);
    if (ctx->chunks)
        a.free(ctx->chunks, ctx->cap_chunks * sizeof *ctx->chunks, a.user);
    a.free(ctx, sizeof *ctx, a.user);
}

/* Largest chunk the geometric growth asks for (hg_arena_alloc). */
#define HG_CHUNK_GROW_MAX ((size_t)64 << 20)

static size_t align_up(size_t n)
{
    return (n + HG_ALIGN - 1) & ~(size_t)(HG_ALIGN - 1);
}

/* Obtain a new chunk of at least `size` usable bytes and append it. */
static bool add_chunk(hg_ctx *ctx, size_t size)
{
    if (size > SIZE_MAX - HG_ALIGN)
        return false;
    size_t raw_size = size + HG_ALIGN;
    if (ctx->max_bytes) {
        size_t held = ctx->reserved + ctx->temp_bytes;
        if (held > ctx->max_bytes || raw_size > ctx->max_bytes - held)
            return false;
    }
    if (ctx->n_chunks == ctx->cap_chunks) {
        size_t cap = ctx->cap_chunks ? 2 * ctx->cap_chunks : 16;
        hg_chunk *grown = ctx->allocator.alloc(cap * sizeof *grown, ctx->allocator.user);
        if (!grown)
            return false;
        if (ctx->chunks) {
            memcpy(grown, ctx->chunks, ctx->n_chunks * sizeof *grown);
            ctx->allocator.free(ctx->chunks, ctx->cap_chunks * sizeof *grown, ctx->allocator.user);
        }
        ctx->chunks = grown;
        ctx->cap_chunks = cap;
    }
    void *raw = ctx->allocator.alloc(raw_size, ctx->allocator.user);
    ctx->chunk_allocs++;
    if (!raw)
        return false;
    uintptr_t p = ((uintptr_t)raw + HG_ALIGN - 1) & ~(uintptr_t)(HG_ALIGN - 1);
    hg_chunk *c = &ctx->chunks[ctx->n_chunks++];
    c->raw = raw;
    c->raw_size = raw_size;
    c->base = (unsigned char *)p;
    c->size = raw_size - (size_t)(p - (uintptr_t)raw);
    ctx->reserved += raw_size;
    return true;
}

static size_t bytes_in_use(const hg_ctx *ctx)
{
    return ctx->in_use_before_cur + ctx->offset;
}

/* Chunks after `cur` that are already allocated are reused in order when they
 * are large enough; a request that fits none gets a new chunk of its own. */
void hg_ctx_set_owner(hg_ctx *ctx)
{
    if (ctx)
        ctx->owner = pthread_self();
}

hg_status hg_ctx_check_thread(hg_ctx *ctx, const char *who)
{
    if (pthread_equal(ctx->owner, pthread_self()))
        return HG_OK;
    return hg_set_error(ctx, HG_ERR_THREAD,
                        "%s: ctx used from a thread that does not own it (a ctx belongs to the thread that created "
                        "it, or that last called hg_ctx_set_owner; one thread at a time)",
                        who);
}

void *hg_arena_alloc(hg_ctx *ctx, size_t size)
{
    if (!pthread_equal(ctx->owner, pthread_self())) {
        hg_ctx_check_thread(ctx, "allocation");
        return NULL;
    }
    size = align_up(size ? size : 1);
    if (size == 0) /* overflow in align_up */
        return NULL;
    for (;;) {
        if (ctx->cur < ctx->n_chunks) {
            hg_chunk *c = &ctx->chunks[ctx->cur];
            if (c->size - ctx->offset >= size) {
                void *p = c->base + ctx->offset;
                ctx->offset += size;
                size_t used = bytes_in_use(ctx);
                if (used > ctx->peak)
                    ctx->peak = used;
                return p;
            }
            /* Move to the next chunk; the tail of this one is padding. */
            if (ctx->cur + 1 < ctx->n_chunks) {
                ctx->in_use_before_cur += c->size;
                ctx->cur++;
                ctx->offset = 0;
                continue;
            }
        }
        /* Geometric growth: a new chunk holds at least half of what the
         * arena already reserved (up to HG_CHUNK_GROW_MAX), so a large
         * computation spans a few chunks and leaves few unused tails;
         * within max_bytes, else the plain size. One allocator call. */
        size_t want = size > ctx->chunk_bytes ? size : ctx->chunk_bytes;
        size_t grown = ctx->reserved / 2 < HG_CHUNK_GROW_MAX ? ctx->reserved / 2 : HG_CHUNK_GROW_MAX;
        size_t held = ctx->reserved + ctx->temp_bytes;
        if (grown > want && (!ctx->max_bytes || (held <= ctx->max_bytes && grown + HG_ALIGN <= ctx->max_bytes - held)))
            want = grown;
        if (!add_chunk(ctx, want))
            return NULL;
        if (ctx->n_chunks > 1 && ctx->cur < ctx->n_chunks - 1) {
            /* Leave the current chunk; the new one is last. */
            ctx->in_use_before_cur += ctx->chunks[ctx->cur].size;
            ctx->cur = ctx->n_chunks - 1;
            ctx->offset = 0;
        }
    }
}

void hg_arena_register(hg_ctx *ctx, hg_object *obj, uint32_t magic)
{
    obj->magic = magic;
    obj->prev = ctx->last_object;
    ctx->last_object = obj;
}

hg_mark hg_ctx_mark(hg_ctx *ctx)
{
    hg_mark m = {0, 0, 0, NULL, 0};
    if (!ctx || hg_ctx_check_thread(ctx, "hg_ctx_mark") != HG_OK)
        return m;
    m.ctx_id = ctx->id;
    m.chunk = ctx->cur;
    m.offset = ctx->offset;
    m.serial = ++ctx->serial; /* unique, so a released mark can be recognised */
    m.last_object = ctx->last_object;
    return m;
}

static bool mark_released(const hg_ctx *ctx, uint64_t serial)
{
    for (int i = 0; i < ctx->n_released; i++)
        if (serial > ctx->released[i].start && serial < ctx->released[i].end)
            return true;
    return false;
}

/* Marks with serials in (start, now) are released by a rewind to `start`. */
static void note_released(hg_ctx *ctx, uint64_t start)
{
    uint64_t now = ++ctx->serial;
    while (ctx->n_released && ctx->released[ctx->n_released - 1].end >= start) {
        uint64_t prev_start = ctx->released[ctx->n_released - 1].start;
        if (prev_start < start)
            start = prev_start;
        ctx->n_released--;
    }
    if (ctx->n_released == (int)(sizeof ctx->released / sizeof ctx->released[0])) {
        /* Full: forget the oldest interval. A valid mark is never refused;
         * a mark released that long ago is still caught when its last
         * object has been marked dead (see hg_ctx_rewind). */
        memmove(&ctx->released[0], &ctx->released[1], (size_t)(ctx->n_released - 1) * sizeof ctx->released[0]);
        ctx->n_released--;
    }
    ctx->released[ctx->n_released].start = start;
    ctx->released[ctx->n_released].end = now;
    ctx->n_released++;
}

static hg_status rewind_as(hg_ctx *ctx, hg_mark mark, const char *who)
{
    if (!ctx)
        return HG_ERR_NULL;
    hg_status st = hg_ctx_check_thread(ctx, who);
    if (st != HG_OK)
        return st;
    /* Another ctx's mark would link its objects into this one. */
    if (mark.ctx_id != ctx->id)
        return hg_set_error(ctx, HG_ERR_INVALID, "%s: mark %s", who,
                            mark.ctx_id ? "belongs to another ctx" : "was not made by hg_ctx_mark (zeroed)");
    /* A vjp (custom op) that rewinds would free what the sweep walks. */
    if (ctx->in_sweep)
        return hg_set_error(ctx, HG_ERR_TAPE,
                            "%s: called during a gradient sweep of this ctx (from a "
                            "vjp); rewind after hg_gradient returns",
                            who);
    bool behind = mark.chunk < ctx->cur || (mark.chunk == ctx->cur && mark.offset <= ctx->offset);
    if (!behind || (ctx->n_chunks && mark.chunk >= ctx->n_chunks) || mark.serial > ctx->serial)
        return hg_set_error(ctx, HG_ERR_INVALID, "%s: mark is not behind the current position", who);
    const hg_object *last = mark.last_object;
    if (mark_released(ctx, mark.serial) || (last && last->magic != HG_TENSOR_MAGIC && last->magic != HG_TAPE_MAGIC &&
                                            last->magic != HG_FREE_MAGIC && last->magic != HG_OPT_MAGIC))
        return hg_set_error(ctx, HG_ERR_INVALID, "%s: mark was released by an earlier rewind to an older mark", who);
    for (int i = 0; i < ctx->depth; i++)
        if (ctx->tapes[i]->begin_serial > mark.serial)
            return hg_set_error(ctx, HG_ERR_TAPE, "%s: tape at level %d was begun after the mark and is still active",
                                who, i);
    /* Tapes begun after the mark die with it. A surviving tape forgets the
     * watches made after the mark, as if they had not happened: their records
     * are in the released memory (all of it still intact here). */
    while (ctx->newest_tape && ctx->newest_tape->begin_serial > mark.serial)
        ctx->newest_tape = ctx->newest_tape->older;
    for (hg_tape *t = ctx->newest_tape; t; t = t->older) {
        if (t->ended && t->end_serial < mark.serial)
            continue;
        for (; t->watched && t->watched->serial > mark.serial; t->watched = t->watched->next)
            if (t->watched->t->track[t->level] == t->id)
                t->watched->t->track[t->level] = 0;
    }
    for (hg_object *o = ctx->last_object; o && o != mark.last_object; o = o->prev) {
        if (o->magic == HG_TENSOR_MAGIC)
            ctx->n_tensors--;
        o->magic = HG_DEAD_MAGIC;
    }
    ctx->last_object = mark.last_object;
    note_released(ctx, mark.serial);
    size_t before = 0;
    for (size_t i = 0; i < mark.chunk && i < ctx->n_chunks; i++)
        before += ctx->chunks[i].size;
    ctx->cur = mark.chunk;
    ctx->offset = mark.offset;
    ctx->in_use_before_cur = before;
    return HG_OK;
}

hg_status hg_ctx_rewind(hg_ctx *ctx, hg_mark mark)
{
    if (!ctx)
        return HG_ERR_NULL;
    return rewind_as(ctx, mark, "hg_ctx_rewind");
}

hg_status hg_ctx_reset(hg_ctx *ctx)
{
    if (!ctx)
        return HG_ERR_NULL;
    hg_mark start = {0, 0, 0, NULL, ctx->id}; /* serial 0: every mark is released */
    return rewind_as(ctx, start, "hg_ctx_reset");
}

hg_ctx_stats hg_ctx_get_stats(const hg_ctx *ctx)
{
    hg_ctx_stats s;
    memset(&s, 0, sizeof s);
    if (!ctx)
        return s;
    s.bytes_in_use = bytes_in_use(ctx);
    s.peak_bytes = ctx->peak;
    s.bytes_reserved = ctx->reserved;
    s.chunk_allocs = ctx->chunk_allocs;
    s.tensors = ctx->n_tensors;
    return s;
}

void hg_ctx_reset_peak(hg_ctx *ctx)
{
    if (ctx)
        ctx->peak = bytes_in_use(ctx);
}
