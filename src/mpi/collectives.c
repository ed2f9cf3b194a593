/* Differentiable collectives over MPI, built on the public op API (hg_opdef,
 * hg_apply) exactly as a user's custom op would be. Every collective:
 *   1. agrees on every rank's inputs: an MPI_Allgather of a small header
 *      (local status, dtype, shape, root, row-count hash); every rank then
 *      takes the same decision, so a bad input on one rank fails the call on
 *      all of them instead of leaving them waiting;
 *   2. applies its op, whose forward first agrees that every rank has its
 *      output and scratch memory (an MPI_Allreduce of a flag), then moves the
 *      data. Sums are formed in rank order for every element: a
 *      reduce-scatter by MPI_Alltoallv followed by a local left-to-right sum,
 *      then (for all-reduce) an MPI_Allgatherv of the summed blocks. */
#include "hgrad/mpi.h"

#include <hgrad.h>

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hg_mpi_comm {
    MPI_Comm comm;
    int rank, size;
    int *counts, *displs, *rcounts, *rdispls; /* size entries each */
    int64_t *start, *count;                   /* size entries each: blocks */
    struct header *headers;                   /* size entries */
    unsigned char *buf;                       /* in-place forms' buffer */
    size_t buf_size;
};

/* What every rank tells the others before a collective. */
typedef struct header {
    int32_t status; /* hg_status of the local checks */
    int32_t dtype;
    int32_t rank;
    int32_t root;
    int64_t shape[HG_MAX_RANK];
    uint64_t extra; /* kind-specific: hash of row counts, or element total */
} header;

typedef enum coll_kind { ALLREDUCE = 0, BROADCAST, REDUCE, ALLGATHER, REDUCE_SCATTER } coll_kind;

static const char *const kind_names[] = {"hg_mpi_allreduce_sum", "hg_mpi_broadcast", "hg_mpi_reduce_sum",
                                         "hg_mpi_allgather", "hg_mpi_reduce_scatter"};

/* Attributes of a recorded collective. rows: P row counts (allgather: each
 * rank's rows; reduce-scatter: the split), an i32 tensor in the ctx that
 * outlives the node. entered: the caller's flag, valid only during hg_apply. */
typedef struct coll_attr {
    hg_mpi_comm *comm;
    coll_kind kind;
    int root;
    hg_tensor *rows;
    int *entered;
} coll_attr;

/* ---- communicator ------------------------------------------------------ */

hg_mpi_comm *hg_mpi_comm_new(MPI_Comm comm, hg_status *status)
{
    hg_status dummy;
    if (!status)
        status = &dummy;
    *status = HG_OK;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        *status = HG_ERR_INVALID;
        return NULL;
    }
    if (comm == MPI_COMM_NULL) {
        *status = HG_ERR_NULL;
        return NULL;
    }
    hg_mpi_comm *c = calloc(1, sizeof *c);
    MPI_Comm dup = MPI_COMM_NULL;
    /* Collective: every rank duplicates, whatever its allocation did. */
    int rc = MPI_Comm_dup(comm, &dup);
    if (rc != MPI_SUCCESS) {
        free(c);
        *status = HG_ERR_REMOTE;
        return NULL;
    }
    MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
    int ok = c != NULL;
    if (c) {
        c->comm = dup;
        MPI_Comm_rank(dup, &c->rank);
        MPI_Comm_size(dup, &c->size);
        size_t p = (size_t)c->size;
        c->counts = malloc(4 * p * sizeof(int));
        c->headers = malloc(p * sizeof(header));
        c->start = malloc(2 * p * sizeof(int64_t));
        ok = c->counts && c->headers && c->start;
        if (ok) {
            c->displs = c->counts + p;
            c->rcounts = c->counts + 2 * p;
            c->rdispls = c->counts + 3 * p;
            c->count = c->start + p;
        }
    }
    int all_ok = 0;
    rc = MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, dup);
    if (rc != MPI_SUCCESS || !all_ok) {
        *status = !ok ? HG_ERR_OOM : HG_ERR_REMOTE;
        if (c) {
            free(c->counts);
            free(c->headers);
            free(c->start);
            free(c);
        }
        MPI_Comm_free(&dup);
        return NULL;
    }
    return c;
}

void hg_mpi_comm_free(hg_mpi_comm *c)
{
    if (!c)
        return;
    MPI_Comm_free(&c->comm);
    free(c->counts);
    free(c->headers);
    free(c->start);
    free(c->buf);
    free(c);
}

int hg_mpi_rank(const hg_mpi_comm *c)
{
    return c ? c->rank : -1;
}

int hg_mpi_size(const hg_mpi_comm *c)
{
    return c ? c->size : -1;
}

void hg_mpi_shard(int64_t n, int size, int rank, int64_t *start, int64_t *count)
{
    int64_t s = 0, k = 0;
    if (n >= 0 && size >= 1 && rank >= 0 && rank < size) {
        int64_t base = n / size, extra = n % size;
        k = base + (rank < extra);
        s = rank * base + (rank < extra ? rank : extra);
    }
    if (start)
        *start = s;
    if (count)
        *count = k;
}

/* ---- agreement ----------------------------------------------------------- */

static hg_status mpi_failed(hg_ctx *ctx, const char *who, const char *what, int rc)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "MPI error %d", rc);
    return hg_op_error(ctx, HG_ERR_REMOTE, "%s: %s failed: %s", who, what, msg);
}

/* All ranks' headers into c->headers. On an MPI failure the error goes on
 * ctx; all ranks fail alike (MPI reports the failure everywhere). */
static hg_status exchange_headers(hg_ctx *ctx, hg_mpi_comm *c, const char *who, const header *mine)
{
    int rc = MPI_Allgather(mine, (int)sizeof *mine, MPI_BYTE, c->headers, (int)sizeof *mine, MPI_BYTE, c->comm);
    return rc == MPI_SUCCESS ? HG_OK : mpi_failed(ctx, who, "MPI_Allgather of the headers", rc);
}

/* First rank whose local checks failed, or -1. Ranks that did not fail get
 * HG_ERR_REMOTE naming it (the failing rank keeps its own first error). */
static hg_status first_failure(hg_ctx *ctx, const hg_mpi_comm *c, const char *who)
{
    for (int r = 0; r < c->size; r++)
        if (c->headers[r].status != HG_OK) {
            if (c->headers[c->rank].status == HG_OK)
                return hg_op_error(ctx, HG_ERR_REMOTE, "%s: rank %d of %d failed (%s); see that rank's error", who, r,
                                   c->size, hg_status_name((hg_status)c->headers[r].status));
            return (hg_status)c->headers[c->rank].status;
        }
    return HG_OK;
}

hg_status hg_mpi_agree(hg_ctx *ctx, hg_mpi_comm *c)
{
    if (!c)
        return ctx ? hg_op_error(ctx, HG_ERR_NULL, "hg_mpi_agree: comm is NULL") : HG_ERR_NULL;
    header mine;
    memset(&mine, 0, sizeof mine);
    mine.status = ctx ? (int32_t)hg_ctx_status(ctx) : HG_ERR_NULL;
    hg_status s = exchange_headers(ctx, c, "hg_mpi_agree", &mine);
    return s != HG_OK ? s : first_failure(ctx, c, "hg_mpi_agree");
}

static uint64_t hash_rows(const int64_t *rows, int n)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        h ^= (uint64_t)rows[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int64_t numel_of(const header *h)
{
    int64_t n = 1;
    for (int i = 0; i < h->rank; i++)
        n *= h->shape[i];
    return n;
}

static const char *shape_str(const header *h, char *buf, size_t size)
{
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < h->rank && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, i ? ",%lld" : "%lld", (long long)h->shape[i]);
    if (k < size)
        snprintf(buf + k, size - k, "] %s", hg_dtype_name((hg_dtype)h->dtype));
    return buf;
}

/* The same decision on every rank: do the headers fit the collective? */
static hg_status check_headers(hg_ctx *ctx, const hg_mpi_comm *c, coll_kind kind)
{
    const char *who = kind_names[kind];
    const header *h0 = &c->headers[0];
    char a[128], b[128];
    int64_t total_rows = 0;
    for (int r = 0; r < c->size; r++) {
        const header *h = &c->headers[r];
        bool same = h->dtype == h0->dtype && h->rank == h0->rank;
        if (kind == ALLGATHER) {
            for (int i = 1; same && i < h->rank; i++)
                same = h->shape[i] == h0->shape[i];
            total_rows += h->shape[0];
        } else {
            for (int i = 0; same && i < h->rank; i++)
                same = h->shape[i] == h0->shape[i];
        }
        if (!same)
            return hg_op_error(ctx, h->dtype != h0->dtype ? HG_ERR_DTYPE : HG_ERR_SHAPE,
                               "%s: rank %d has %s but rank 0 has %s%s", who, r, shape_str(h, a, sizeof a),
                               shape_str(h0, b, sizeof b),
                               kind == ALLGATHER ? " (only the first extent may differ)" : "");
        if (h->root != h0->root)
            return hg_op_error(ctx, HG_ERR_RANGE, "%s: rank %d uses root %d but rank 0 uses root %d", who, r, h->root,
                               h0->root);
        if (h->extra != h0->extra)
            return hg_op_error(ctx, HG_ERR_SHAPE, "%s: rank %d passed other row counts than rank 0", who, r);
    }
    /* Byte counts and displacements must fit an int. */
    int64_t esize = (int64_t)hg_dtype_size((hg_dtype)h0->dtype);
    int64_t bytes = numel_of(h0) * esize;
    if (kind == ALLGATHER) {
        int64_t row = 1;
        for (int i = 1; i < h0->rank; i++)
            row *= h0->shape[i];
        bytes = total_rows * row * esize;
    }
    if (bytes > INT_MAX || bytes < 0)
        return hg_op_error(ctx, HG_ERR_OVERFLOW, "%s: %lld bytes per rank do not fit MPI's int counts", who,
                           (long long)bytes);
    return HG_OK;
}

/* ---- the data movement ---------------------------------------------------- */

/* out[i] = in_0[i] + in_1[i] + ... (left to right), the P blocks of n
 * elements of `in` laid out one after another. */
static void sum_in_rank_order(hg_dtype dt, void *out, const void *in, int64_t n, int p)
{
    if (n == 0)
        return;
    if (dt == HG_F64) {
        double *o = out;
        const double *x = in;
        memcpy(o, x, (size_t)n * sizeof *o);
        for (int r = 1; r < p; r++)
            for (int64_t i = 0; i < n; i++)
                o[i] += x[(int64_t)r * n + i];
    } else if (dt == HG_F32) {
        float *o = out;
        const float *x = in;
        memcpy(o, x, (size_t)n * sizeof *o);
        for (int r = 1; r < p; r++)
            for (int64_t i = 0; i < n; i++)
                o[i] += x[(int64_t)r * n + i];
    } else {
        int32_t *o = out;
        const int32_t *x = in;
        memcpy(o, x, (size_t)n * sizeof *o);
        for (int r = 1; r < p; r++)
            for (int64_t i = 0; i < n; i++)
                o[i] = (int32_t)((uint32_t)o[i] + (uint32_t)x[(int64_t)r * n + i]); /* wraps, no UB */
    }
}

/* Block q of the send buffer is elements [start[q], start[q] + count[q]);
 * this rank receives its block from every rank and sums them in rank order
 * into out (count[me] elements). scratch: size * count[me] elements. */
static int reduce_blocks(hg_mpi_comm *c, hg_dtype dt, const void *send, const int64_t *start, const int64_t *count,
                         void *scratch, void *out)
{
    int esize = (int)hg_dtype_size(dt);
    int mine = (int)count[c->rank];
    for (int q = 0; q < c->size; q++) {
        c->counts[q] = (int)count[q] * esize;
        c->displs[q] = (int)start[q] * esize;
        c->rcounts[q] = mine * esize;
        c->rdispls[q] = q * mine * esize;
    }
    int rc = MPI_Alltoallv(send, c->counts, c->displs, MPI_BYTE, scratch, c->rcounts, c->rdispls, MPI_BYTE, c->comm);
    if (rc == MPI_SUCCESS)
        sum_in_rank_order(dt, out, scratch, mine, c->size);
    return rc;
}

/* Element blocks of an even split of n elements. */
static void even_blocks(const hg_mpi_comm *c, int64_t n, int64_t *start, int64_t *count)
{
    for (int q = 0; q < c->size; q++)
        hg_mpi_shard(n, c->size, q, &start[q], &count[q]);
}

/* Sum over ranks of n elements of `in`, into `out` on every rank. */
static int allreduce_data(hg_mpi_comm *c, hg_dtype dt, const void *in, void *out, int64_t n, void *scratch,
                          int64_t *start, int64_t *count)
{
    even_blocks(c, n, start, count);
    int esize = (int)hg_dtype_size(dt);
    unsigned char *mine = (unsigned char *)out + start[c->rank] * esize;
    int rc = reduce_blocks(c, dt, in, start, count, scratch, mine);
    if (rc != MPI_SUCCESS)
        return rc;
    for (int q = 0; q < c->size; q++) {
        c->counts[q] = (int)count[q] * esize;
        c->displs[q] = (int)start[q] * esize;
    }
    return MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_BYTE, out, c->counts, c->displs, MPI_BYTE, c->comm);
}

/* Scratch elements a collective needs on this rank. */
static int64_t scratch_elems(const hg_mpi_comm *c, coll_kind kind, int64_t n_in, const int32_t *rows, int64_t row)
{
    int64_t start, count;
    switch (kind) {
    case ALLREDUCE:
    case REDUCE:
        hg_mpi_shard(n_in, c->size, c->rank, &start, &count);
        return (int64_t)c->size * count + (kind == REDUCE ? count : 0);
    case REDUCE_SCATTER: return (int64_t)c->size * rows[c->rank] * row;
    default: return 0;
    }
}

static hg_status coll_forward(hg_ctx *ctx, hg_tensor *const *in, hg_tensor *const *out, const void *attr_)
{
    const coll_attr *at = attr_;
    hg_mpi_comm *c = at->comm;
    const char *who = kind_names[at->kind];
    *at->entered = 1;
    hg_tensor *x = in[0], *y = out[0];
    hg_dtype dt = hg_tensor_dtype(x);
    int esize = (int)hg_dtype_size(dt);
    int64_t n = hg_tensor_numel(x);
    int64_t row = 1; /* elements per row along axis 0 */
    for (int i = 1; i < hg_tensor_rank(x); i++)
        row *= hg_tensor_dim(x, i);
    const int32_t *rows = at->rows ? (const int32_t *)hg_tensor_cdata(at->rows) : NULL;
    /* Scratch: element blocks, plus P starts and counts. */
    int64_t need = scratch_elems(c, at->kind, n, rows, row);
    hg_tensor *scratch = need ? hg_tensor_new(ctx, dt, 1, &need) : NULL;
    int ok = !need || scratch, all_ok = 0;
    int rc = MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, c->comm);
    if (rc != MPI_SUCCESS)
        return mpi_failed(ctx, who, "MPI_Allreduce (ready)", rc);
    if (!all_ok)
        return ok ? hg_op_error(ctx, HG_ERR_REMOTE, "%s: another rank could not allocate its buffers", who)
                  : hg_ctx_status(ctx);
    int64_t *start = c->start, *count = c->count;
    void *sbuf = scratch ? hg_tensor_data(scratch) : NULL;
    switch (at->kind) {
    case ALLREDUCE: rc = allreduce_data(c, dt, hg_tensor_cdata(x), hg_tensor_data(y), n, sbuf, start, count); break;
    case BROADCAST:
        if (c->rank == at->root)
            memcpy(hg_tensor_data(y), hg_tensor_cdata(x), (size_t)n * (size_t)esize);
        rc = MPI_Bcast(hg_tensor_data(y), (int)(n * esize), MPI_BYTE, at->root, c->comm);
        break;
    case REDUCE: {
        even_blocks(c, n, start, count);
        void *mine = (unsigned char *)sbuf + (size_t)c->size * (size_t)count[c->rank] * (size_t)esize;
        rc = reduce_blocks(c, dt, hg_tensor_cdata(x), start, count, sbuf, mine);
        if (rc != MPI_SUCCESS)
            break;
        for (int q = 0; q < c->size; q++) {
            c->counts[q] = (int)count[q] * esize;
            c->displs[q] = (int)start[q] * esize;
        }
        rc = MPI_Gatherv(mine, c->counts[c->rank], MPI_BYTE, hg_tensor_data(y), c->counts, c->displs, MPI_BYTE,
                         at->root, c->comm);
        if (c->rank != at->root)
            memset(hg_tensor_data(y), 0, (size_t)n * (size_t)esize);
        break;
    }
    case ALLGATHER: {
        int64_t at_row = 0;
        for (int q = 0; q < c->size; q++) {
            c->counts[q] = (int)(rows[q] * row * esize);
            c->displs[q] = (int)(at_row * row * esize);
            at_row += rows[q];
        }
        rc = MPI_Allgatherv(hg_tensor_cdata(x), (int)(n * esize), MPI_BYTE, hg_tensor_data(y), c->counts, c->displs,
                            MPI_BYTE, c->comm);
        break;
    }
    case REDUCE_SCATTER: {
        int64_t at_row = 0;
        for (int q = 0; q < c->size; q++) {
            start[q] = at_row * row;
            count[q] = rows[q] * row;
            at_row += rows[q];
        }
        rc = reduce_blocks(c, dt, hg_tensor_cdata(x), start, count, sbuf, hg_tensor_data(y));
        break;
    }
    }
    return rc == MPI_SUCCESS ? HG_OK : mpi_failed(ctx, who, "data exchange", rc);
}

static hg_status coll_shape(hg_ctx *ctx, hg_tensor *const *in, const void *attr_, hg_out_spec *out)
{
    (void)ctx;
    const coll_attr *at = attr_;
    hg_tensor *x = in[0];
    out->dtype = hg_tensor_dtype(x);
    out->rank = hg_tensor_rank(x);
    for (int i = 0; i < out->rank; i++)
        out->shape[i] = hg_tensor_dim(x, i);
    const int32_t *rows = at->rows ? (const int32_t *)hg_tensor_cdata(at->rows) : NULL;
    if (at->kind == ALLGATHER) {
        int64_t total = 0;
        for (int q = 0; q < at->comm->size; q++)
            total += rows[q];
        out->shape[0] = total;
    } else if (at->kind == REDUCE_SCATTER) {
        out->shape[0] = rows[at->comm->rank];
    }
    return HG_OK;
}

static hg_status coll_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin);

/* dx = allreduce_sum(g) | reduce_sum(g, root) | broadcast(g, root) |
 *      reduce_scatter(g, rows) | allgather(g)   (see the table in mpi.h) */
static const hg_opdef collective_def = {
    .name = "mpi_collective",
    .n_inputs = 1,
    .n_outputs = 1,
    .attr_size = sizeof(coll_attr),
    .shape = coll_shape,
    .forward = coll_forward,
    .vjp = coll_vjp,
};

static hg_tensor *collective(hg_ctx *ctx, hg_mpi_comm *c, coll_kind kind, hg_tensor *x, int root,
                             const int64_t *rows_in);

static hg_status coll_vjp(hg_ctx *ctx, const hg_node *node, hg_tensor *const *gout, hg_tensor **gin)
{
    const coll_attr *at = hg_node_attr(node);
    switch (at->kind) {
    case ALLREDUCE: gin[0] = collective(ctx, at->comm, ALLREDUCE, gout[0], 0, NULL); break;
    case BROADCAST: gin[0] = collective(ctx, at->comm, REDUCE, gout[0], at->root, NULL); break;
    case REDUCE: gin[0] = collective(ctx, at->comm, BROADCAST, gout[0], at->root, NULL); break;
    case ALLGATHER:
    case REDUCE_SCATTER: {
        /* The same row split, read back from the forward's counts. */
        int p = at->comm->size;
        int64_t *split = at->kind == ALLGATHER ? malloc((size_t)p * sizeof *split) : NULL;
        if (split) {
            const int32_t *r32 = hg_tensor_ci32(at->rows);
            for (int q = 0; q < p; q++)
                split[q] = r32[q];
        }
        /* A failed malloc still takes part (as a NULL cotangent) so that the
         * other ranks fail instead of waiting. */
        if (at->kind == ALLGATHER && !split)
            hg_op_error(ctx, HG_ERR_OOM, "mpi allgather vjp: out of memory");
        gin[0] = at->kind == ALLGATHER ? collective(ctx, at->comm, REDUCE_SCATTER, split ? gout[0] : NULL, 0, split)
                                       : collective(ctx, at->comm, ALLGATHER, gout[0], 0, NULL);
        free(split);
        break;
    }
    }
    return gin[0] ? HG_OK : hg_ctx_status(ctx);
}

/* Local checks of this rank's arguments, recorded on ctx. */
static hg_status local_checks(hg_ctx *ctx, const hg_mpi_comm *c, coll_kind kind, hg_tensor *x, int root,
                              const int64_t *rows, header *h)
{
    const char *who = kind_names[kind];
    memset(h, 0, sizeof *h);
    if (!x)
        return HG_ERR_NULL; /* an earlier failure: its error is already on ctx */
    hg_status s = hg_tensor_check(x);
    if (s != HG_OK)
        return hg_op_error(ctx, s, "%s: input is not a live tensor", who);
    if (hg_tensor_ctx(x) != ctx)
        return hg_op_error(ctx, HG_ERR_INVALID, "%s: input belongs to another ctx", who);
    h->dtype = (int32_t)hg_tensor_dtype(x);
    h->rank = hg_tensor_rank(x);
    for (int i = 0; i < h->rank; i++)
        h->shape[i] = hg_tensor_dim(x, i);
    h->root = root;
    if ((kind == BROADCAST || kind == REDUCE) && (root < 0 || root >= c->size))
        return hg_op_error(ctx, HG_ERR_RANGE, "%s: root %d outside [0, %d)", who, root, c->size);
    if ((kind == ALLGATHER || kind == REDUCE_SCATTER) && h->rank < 1)
        return hg_op_error(ctx, HG_ERR_SHAPE, "%s: needs rank >= 1 (rows along axis 0), got a scalar", who);
    if (kind == REDUCE_SCATTER) {
        int64_t total = 0;
        for (int q = 0; q < c->size; q++) {
            int64_t k = 0;
            if (rows)
                k = rows[q];
            else
                hg_mpi_shard(h->shape[0], c->size, q, NULL, &k);
            if (k < 0 || k > INT32_MAX)
                return hg_op_error(ctx, HG_ERR_RANGE, "%s: row count %lld for rank %d out of range", who, (long long)k,
                                   q);
            total += k;
        }
        if (total != h->shape[0])
            return hg_op_error(ctx, HG_ERR_SHAPE, "%s: row counts sum to %lld, input has %lld rows", who,
                               (long long)total, (long long)h->shape[0]);
    }
    if (kind == ALLGATHER && h->shape[0] > INT32_MAX)
        return hg_op_error(ctx, HG_ERR_RANGE, "%s: %lld rows do not fit", who, (long long)h->shape[0]);
    return HG_OK;
}

static hg_tensor *collective(hg_ctx *ctx, hg_mpi_comm *c, coll_kind kind, hg_tensor *x, int root,
                             const int64_t *rows_in)
{
    const char *who = kind_names[kind];
    if (!c) {
        hg_op_error(ctx, HG_ERR_NULL, "%s: comm is NULL", who);
        return NULL;
    }
    header mine;
    memset(&mine, 0, sizeof mine);
    hg_status s = ctx ? local_checks(ctx, c, kind, x, root, rows_in, &mine) : HG_ERR_NULL;
    mine.status = (int32_t)s;
    if (s == HG_OK && kind == REDUCE_SCATTER) {
        /* Every rank must use the same split: compare a hash of it. */
        int64_t *tmp = malloc((size_t)c->size * sizeof *tmp);
        if (!tmp) {
            mine.status = (int32_t)hg_op_error(ctx, HG_ERR_OOM, "%s: out of memory", who);
        } else {
            for (int q = 0; q < c->size; q++) {
                if (rows_in)
                    tmp[q] = rows_in[q];
                else
                    hg_mpi_shard(mine.shape[0], c->size, q, NULL, &tmp[q]);
            }
            mine.extra = hash_rows(tmp, c->size);
            free(tmp);
        }
    }
    if ((s = exchange_headers(ctx, c, who, &mine)) != HG_OK || (s = first_failure(ctx, c, who)) != HG_OK ||
        (s = check_headers(ctx, c, kind)) != HG_OK)
        return NULL;
    coll_attr at = {.comm = c, .kind = kind, .root = root, .rows = NULL, .entered = NULL};
    int entered = 0;
    at.entered = &entered;
    if (kind == ALLGATHER || kind == REDUCE_SCATTER) {
        int64_t p = c->size;
        at.rows = hg_tensor_new(ctx, HG_I32, 1, &p);
        if (at.rows) {
            int32_t *r = hg_tensor_data(at.rows);
            for (int q = 0; q < c->size; q++) {
                int64_t k;
                if (kind == ALLGATHER)
                    k = c->headers[q].shape[0];
                else if (rows_in)
                    k = rows_in[q];
                else
                    hg_mpi_shard(mine.shape[0], c->size, q, NULL, &k);
                r[q] = (int32_t)k;
            }
        }
    }
    hg_tensor *y = NULL;
    if (kind != ALLGATHER && kind != REDUCE_SCATTER ? 1 : at.rows != NULL)
        y = hg_apply(ctx, &collective_def, &x, &at);
    if (!y && !entered) {
        /* Take part in the forward's readiness agreement as "not ready", so
         * the other ranks fail instead of waiting. */
        int ok = 0, all_ok = 0;
        MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, c->comm);
    }
    return y;
}

hg_tensor *hg_mpi_allreduce_sum(hg_ctx *ctx, hg_mpi_comm *comm, hg_tensor *x)
{
    return collective(ctx, comm, ALLREDUCE, x, 0, NULL);
}

hg_tensor *hg_mpi_allreduce_mean(hg_ctx *ctx, hg_mpi_comm *comm, hg_tensor *x)
{
    hg_tensor *s = collective(ctx, comm, ALLREDUCE, x, 0, NULL);
    return s ? hg_scale(ctx, s, 1.0 / comm->size) : NULL;
}

hg_tensor *hg_mpi_broadcast(hg_ctx *ctx, hg_mpi_comm *comm, hg_tensor *x, int root)
{
    return collective(ctx, comm, BROADCAST, x, root, NULL);
}

hg_tensor *hg_mpi_reduce_sum(hg_ctx *ctx, hg_mpi_comm *comm, hg_tensor *x, int root)
{
    return collective(ctx, comm, REDUCE, x, root, NULL);
}

hg_tensor *hg_mpi_allgather(hg_ctx *ctx, hg_mpi_comm *comm, hg_tensor *x)
{
    return collective(ctx, comm, ALLGATHER, x, 0, NULL);
}

hg_tensor *hg_mpi_reduce_scatter(hg_ctx *ctx, hg_mpi_comm *comm, hg_tensor *x, const int64_t *rows)
{
    return collective(ctx, comm, REDUCE_SCATTER, x, 0, rows);
}

/* ---- in-place forms --------------------------------------------------------- */

/* Local checks of an in-place list; fills the header with the dtype and the
 * element total and a hash of the shapes. */
static hg_status inplace_checks(hg_ctx *ctx, const char *who, int n, hg_tensor *const *ts, header *h)
{
    memset(h, 0, sizeof *h);
    if (n < 0)
        return hg_op_error(ctx, HG_ERR_INVALID, "%s: negative tensor count %d", who, n);
    if (n > 0 && !ts)
        return hg_op_error(ctx, HG_ERR_NULL, "%s: tensor array is NULL", who);
    uint64_t hash = 1469598103934665603ull;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        hg_status s = hg_tensor_check(ts[i]);
        if (s != HG_OK)
            return hg_op_error(ctx, s, "%s: tensor %d is %s", who, i, ts[i] ? "not a live tensor" : "NULL");
        if (hg_tensor_ctx(ts[i]) != ctx)
            return hg_op_error(ctx, HG_ERR_INVALID, "%s: tensor %d belongs to another ctx", who, i);
        hg_dtype d = hg_tensor_dtype(ts[i]);
        if (d != HG_F32 && d != HG_F64)
            return hg_op_error(ctx, HG_ERR_DTYPE, "%s: tensor %d is %s, not f32/f64", who, i, hg_dtype_name(d));
        if (i > 0 && d != hg_tensor_dtype(ts[0]))
            return hg_op_error(ctx, HG_ERR_DTYPE, "%s: tensor %d is %s, tensor 0 is %s", who, i, hg_dtype_name(d),
                               hg_dtype_name(hg_tensor_dtype(ts[0])));
        for (int k = 0; k < hg_tensor_rank(ts[i]); k++) {
            hash ^= (uint64_t)hg_tensor_dim(ts[i], k);
            hash *= 1099511628211ull;
        }
        hash ^= 0xffu;
        hash *= 1099511628211ull;
        total += hg_tensor_numel(ts[i]);
    }
    h->dtype = n ? (int32_t)hg_tensor_dtype(ts[0]) : HG_F64;
    h->rank = 1;
    h->shape[0] = total;
    h->extra = hash;
    return HG_OK;
}

static hg_status grow_buffer(hg_ctx *ctx, hg_mpi_comm *c, const char *who, size_t bytes)
{
    if (bytes <= c->buf_size)
        return HG_OK;
    unsigned char *b = realloc(c->buf, bytes);
    if (!b)
        return hg_op_error(ctx, HG_ERR_OOM, "%s: out of memory for a %zu-byte buffer", who, bytes);
    c->buf = b;
    c->buf_size = bytes;
    return HG_OK;
}

static hg_status inplace(hg_ctx *ctx, hg_mpi_comm *c, int n, hg_tensor *const *ts, int mean, int root, bool bcast)
{
    const char *who = bcast ? "hg_mpi_broadcast_inplace" : "hg_mpi_allreduce_inplace";
    if (!c)
        return ctx ? hg_op_error(ctx, HG_ERR_NULL, "%s: comm is NULL", who) : HG_ERR_NULL;
    header mine;
    memset(&mine, 0, sizeof mine);
    hg_status s = ctx ? inplace_checks(ctx, who, n, ts, &mine) : HG_ERR_NULL;
    if (s == HG_OK && bcast && (root < 0 || root >= c->size))
        s = hg_op_error(ctx, HG_ERR_RANGE, "%s: root %d outside [0, %d)", who, root, c->size);
    hg_dtype dt = (hg_dtype)mine.dtype;
    size_t esize = hg_dtype_size(dt);
    int64_t total = mine.shape[0];
    int64_t start, count;
    hg_mpi_shard(total, c->size, c->rank, &start, &count);
    /* Buffer: the packed tensors, then the P blocks this rank sums. */
    size_t need = ((size_t)total + (size_t)c->size * (size_t)count) * esize;
    if (s == HG_OK)
        s = grow_buffer(ctx, c, who, need);
    mine.status = (int32_t)s;
    mine.root = root;
    if ((s = exchange_headers(ctx, c, who, &mine)) != HG_OK || (s = first_failure(ctx, c, who)) != HG_OK)
        return s;
    if ((s = check_headers(ctx, c, ALLREDUCE)) != HG_OK)
        return s;
    unsigned char *packed = c->buf;
    int64_t *starts = c->start, *counts = c->count;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t b = (size_t)hg_tensor_numel(ts[i]) * esize;
        memcpy(packed + off, hg_tensor_cdata(ts[i]), b);
        off += b;
    }
    int rc;
    if (bcast) {
        rc = MPI_Bcast(packed, (int)off, MPI_BYTE, root, c->comm);
    } else {
        unsigned char *blocks = packed + (size_t)total * esize;
        rc = allreduce_data(c, dt, packed, packed, total, blocks, starts, counts);
        if (rc == MPI_SUCCESS && mean) {
            /* As hg_scale rounds: the factor rounded once to the dtype. */
            double f = 1.0 / c->size;
            if (dt == HG_F64)
                for (int64_t i = 0; i < total; i++)
                    ((double *)packed)[i] *= f;
            else
                for (int64_t i = 0; i < total; i++)
                    ((float *)packed)[i] *= (float)f;
        }
    }
    if (rc != MPI_SUCCESS)
        return mpi_failed(ctx, who, bcast ? "MPI_Bcast" : "data exchange", rc);
    off = 0;
    for (int i = 0; i < n; i++) {
        size_t b = (size_t)hg_tensor_numel(ts[i]) * esize;
        memcpy(hg_tensor_data(ts[i]), packed + off, b);
        off += b;
    }
    return HG_OK;
}

hg_status hg_mpi_allreduce_inplace(hg_ctx *ctx, hg_mpi_comm *comm, int n, hg_tensor *const *ts, int mean)
{
    return inplace(ctx, comm, n, ts, mean, 0, false);
}

hg_status hg_mpi_broadcast_inplace(hg_ctx *ctx, hg_mpi_comm *comm, int n, hg_tensor *const *ts, int root)
{
    return inplace(ctx, comm, n, ts, 0, root, true);
}
