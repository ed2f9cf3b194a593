/* Internal structures shared by the library's source files. Not installed. */
#ifndef HGRAD_INTERNAL_H
#define HGRAD_INTERNAL_H

#include "hgrad.h"

#include <pthread.h>
#include <stdbool.h>

#define HG_TENSOR_MAGIC 0x68677465u /* "hgte" */
#define HG_TAPE_MAGIC 0x68677461u   /* "hgta" */
#define HG_OPT_MAGIC 0x68676f70u    /* "hgop": an hg_optimizer (optim.c) */
#define HG_DEAD_MAGIC 0xdeadbeefu
#define HG_FREE_MAGIC 0x68676672u /* "hgfr": a dead cotangent's block on a sweep's free list (grad.c) */
#define HG_ALIGN 64
#define HG_FREE_CLASSES 64

/* Header of every arena object that can go stale (tensors, tapes): rewinding
 * walks the chain of objects made after the mark and marks them dead. */
typedef struct hg_object {
    uint32_t magic;
    struct hg_object *prev;
} hg_object;

struct hg_tensor {
    hg_object obj;
    hg_ctx *ctx;
    hg_dtype dtype;
    int rank;
    int64_t shape[HG_MAX_RANK];
    int64_t numel;
    void *data;
    /* Bumped by the writable accessors (in-place writes); see hg_record. */
    uint64_t version;
    /* Recording: node that produced this tensor (NULL for leaves/constants). */
    struct hg_node *creator;
    int out_index;
    /* track[L] == id of the tape at stack level L that tracks this tensor. */
    uint32_t track[HG_MAX_TAPES];
    /* Scratch for one gradient sweep (valid while sweep == ctx->sweep_id). */
    uint32_t sweep;
    int32_t slot;
    /* Cotangent reuse (grad.c): arena bytes of header + data, the reusing
     * sweep that allocated it (0: none), references from cotangent slots,
     * and the link of the ctx's born or free list. */
    size_t block_bytes;
    uint32_t born;
    int32_t refs;
    struct hg_tensor *link;
};

struct hg_node {
    const hg_opdef *def;
    uint64_t serial;
    uint32_t level_mask; /* stack levels of the tapes that recorded it */
    int n_in, n_out;
    hg_tensor *in[HG_MAX_OP_INPUTS];
    hg_tensor *out[HG_MAX_OP_OUTPUTS];
    void *attr;
    /* Versions of in[] and out[] when recorded; the sweep refuses a node
     * whose saved tensors were written in place since. */
    uint64_t in_version[HG_MAX_OP_INPUTS];
    uint64_t out_version[HG_MAX_OP_OUTPUTS];
    /* Sweep scratch. */
    uint32_t sweep;
    uint8_t needs_grad[HG_MAX_OP_INPUTS];
};

struct hg_tape {
    hg_object obj;
    hg_ctx *ctx;
    uint32_t id;
    int level;
    unsigned flags;
    int paused;
    bool ended;
    int gradients_taken;
    uint64_t begin_serial, end_serial;
    struct hg_watch_rec *watched; /* newest first */
    struct hg_tape *older;        /* the ctx's tapes, newest first */
};

typedef struct hg_watch_rec {
    hg_tensor *t;
    uint64_t serial; /* a rewind to an older mark drops the record */
    struct hg_watch_rec *next;
} hg_watch_rec;

typedef struct hg_chunk {
    unsigned char *base; /* aligned start */
    void *raw;           /* pointer from the allocator */
    size_t raw_size;
    size_t size; /* usable bytes from base */
} hg_chunk;

struct hg_ctx {
    hg_allocator allocator;
    uint64_t id;     /* unique per hg_ctx_new in the process; marks carry it */
    pthread_t owner; /* the only thread that may allocate or rewind (hg_ctx_set_owner) */
    size_t chunk_bytes;
    size_t max_bytes;
    hg_chunk *chunks;
    size_t n_chunks, cap_chunks;
    size_t cur;               /* index of the chunk being filled */
    size_t offset;            /* fill position in chunks[cur] */
    size_t in_use_before_cur; /* bytes used in chunks before cur */
    size_t peak;
    size_t reserved;
    size_t temp_bytes; /* held by hg_temp_alloc (io), charged with reserved to max_bytes */
    uint64_t chunk_allocs;
    uint64_t n_tensors;
    hg_object *last_object;
    uint64_t serial;
    /* Serial intervals (start, end) of marks released by rewinds, disjoint
     * and increasing; a mark whose serial falls inside one is invalid. */
    struct {
        uint64_t start, end;
    } released[32];
    int n_released;
    uint32_t next_tape_id;
    uint32_t sweep_id;
    bool in_sweep;
    /* Cotangent reuse during a sweep no tape records (grad.c): while
     * reuse_id != 0, tensors allocated get born = reuse_id and go on the
     * born list; hg_tensor_alloc takes blocks of dead ones from the free
     * lists (by size class, floor(log2(block_bytes))). */
    uint32_t reuse_id, next_reuse_id;
    hg_tensor *born_list;
    hg_tensor *free_blocks[HG_FREE_CLASSES];
    /* Accumulating products (grad.c, hg_sweep_take): the sweep in progress,
     * the node whose vjp runs, and the inputs whose current cotangent that
     * vjp took (bit i: its gin[i] already holds the sum). */
    void *sweep;
    const struct hg_node *vjp_node;
    uint32_t taken;
    hg_tape *tapes[HG_MAX_TAPES];
    int depth;
    hg_tape *newest_tape; /* every live tape, through hg_tape.older */
    hg_status status;
    uint64_t n_errors; /* hg_op_error calls, kept or not: the sweep sees a failure inside a vjp */
    char message[512];
};

/* arena.c */
/* NULL on failure: arena limit, allocator failure, or (HG_ERR_THREAD
 * recorded on ctx) a call from a thread that does not own ctx. */
void *hg_arena_alloc(hg_ctx *ctx, size_t size);
/* HG_OK if the calling thread owns ctx, else records HG_ERR_THREAD naming who. */
hg_status hg_ctx_check_thread(hg_ctx *ctx, const char *who);
void hg_arena_register(hg_ctx *ctx, hg_object *obj, uint32_t magic);

/* tensor.c */
/* Size class of a block of `bytes` for the sweep's free lists. */
int hg_free_class(size_t bytes);
/* Tensor header + data in the arena; records errors on ctx naming `who`. */
hg_tensor *hg_tensor_alloc(hg_ctx *ctx, const char *who, hg_dtype dtype, int rank, const int64_t *shape);
/* Live tensor of ctx? Records HG_ERR_NULL/HG_ERR_STALE naming `who`. */
hg_status hg_tensor_validate(hg_ctx *ctx, const hg_tensor *t, const char *who);
bool hg_is_float(hg_dtype d);
/* "[2,3]" into buf. */
const char *hg_shape_str(int rank, const int64_t *shape, char *buf, size_t size);
#define HG_SHAPE(t, buf) hg_shape_str((t)->rank, (t)->shape, (buf), sizeof(buf))

/* error.c: the library records errors through the public hg_op_error. */
#define hg_set_error hg_op_error

/* Writes into t in place (the optimizer's training form): bump its version. */
static inline void hg_tensor_bump(hg_tensor *t)
{
    t->version++;
}

/* tape.c: node recorded on this tape (level bit set, serial inside its window)? */
bool hg_tape_recorded(const hg_tape *tape, const hg_node *node);
/* t watched on this tape (ended or not), or computed by a node it recorded? */
bool hg_tape_has(const hg_tape *tape, const hg_tensor *t);

/* grad.c: accumulating products. During the vjp of `node` in a sweep, the
 * cotangent accumulated so far for input i (NULL if none yet, or if input i
 * appears twice among the node's inputs). A non-NULL result is "taken": the
 * vjp must return gin[i] = that cotangent + *scale times its own
 * contribution (built with recorded ops, e.g. hg_matmul_acc with alpha =
 * *scale), which replaces it instead of being added to it. *scale is 1 but
 * for the sources of hg_gradient_axpy. *owned is set when the taken tensor
 * may be written in place (no tape records the sweep, the sweep made it, and
 * only this slot refers to it). Either way the result has the same bits. */
hg_tensor *hg_sweep_take(hg_ctx *ctx, const hg_node *node, int i, bool *owned, double *scale);

/* grad.c: out[i] = init[i] + scale * d target / d sources[i] for a scalar
 * target, as recorded ops (on the tapes still active, like hg_gradient's
 * results), without making the gradients: the sweep starts each source's
 * cotangent at init[i] and adds every contribution times scale, a product
 * contribution as one gemm (alpha = scale, beta = 1) onto a copy of init[i]
 * (hg_matmul_acc), any other one as hg_opt_lincomb(acc, c; 1, scale). With
 * init = the parameters and scale = -lr that is an SGD step whose product
 * gradients (x^T G of a dense layer) are never stored. init[i] has
 * sources[i]'s shape and float dtype. Sources that are not leaves of the
 * tape (computed by a node it recorded), repeated sources, a source that is
 * the target: hg_gradient, then hg_opt_lincomb(init, g; 1,
 * scale). A source the target does not depend on gets a copy of init[i].
 * Errors as hg_gradient (out[i] NULL on error). */
hg_status hg_gradient_axpy(hg_tape *tape, hg_tensor *target, int n, hg_tensor *const *sources, hg_tensor *const *init,
                           double scale, hg_tensor **out);

/* ops/matmul.c: c + alpha op(a) op(b) (2-D, one float dtype), recorded like
 * any op; with in_place the product is added onto c itself and c is
 * returned, which only a sweep that no tape records may ask for
 * (hg_sweep_take's *owned). */
hg_tensor *hg_matmul_acc(hg_ctx *ctx, hg_tensor *c, hg_tensor *a, hg_tensor *b, int trans_a, int trans_b, double alpha,
                         bool in_place);
/* ops/matmul.c: alpha op(a) op(b) as one op (hg_matmul_t for alpha = 1);
 * its vjp is products with the same alpha. */
hg_tensor *hg_matmul_scaled(hg_ctx *ctx, hg_tensor *a, hg_tensor *b, int trans_a, int trans_b, double alpha);
/* In a vjp: input i's cotangent alpha op(x) op(y), as hg_matmul_scaled, or
 * accumulated onto the cotangent the sweep holds for input i
 * (hg_sweep_take). */
hg_tensor *hg_product_cotangent(hg_ctx *ctx, const hg_node *node, int i, hg_tensor *x, hg_tensor *y, int tx, int ty,
                                double alpha);

/* ops/unary.c: where(x > 0, g, 0) as one op (relu's vjp); x and g of one
 * float dtype and shape. */
hg_tensor *hg_relu_mask(hg_ctx *ctx, hg_tensor *x, hg_tensor *g);

/* ops/dense.c: y = x W + b, relu'd when asked (x [n,in], W [in,out], b [out],
 * checked by the caller), as one op; the values of hg_add(hg_matmul(x, W), b)
 * (and hg_relu of it) bit for bit. */
hg_tensor *hg_dense_op(hg_ctx *ctx, hg_tensor *x, hg_tensor *W, hg_tensor *b, bool relu);

/* op.c */
/* Record a node for outputs `out` of def on every active tape that tracks one
 * of `in` (no-op if none). */
hg_status hg_record(hg_ctx *ctx, const hg_opdef *def, int n_in, hg_tensor *const *in, int n_out, hg_tensor *const *out,
                    const void *attr);
/* Shape-rule helpers (hg_check_float_same, hg_broadcast_shapes, ...) are
 * public: include/hgrad/op.h. */

#endif
