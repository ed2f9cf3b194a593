/* mnist_hypergrad over MPI (see distributed.h). */
#define _GNU_SOURCE /* fopencookie: the rank prefix on stderr */
#include "distributed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t dist_hash(uint64_t h, const void *bytes, size_t n)
{
    const unsigned char *b = bytes;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

#ifdef HGRAD_WITH_MPI
#include <hgrad/mpi.h>
#include <unistd.h>

/* ---- stderr of ranks other than 0: "rank N: " before every line --------- */

/* The prefixer also keeps the last TAIL_BYTES of what the rank wrote, so
 * that rank 0 can repeat a failing rank's messages (dist_finish). */
#define TAIL_BYTES 2048

typedef struct prefixer {
    char prefix[32];
    bool at_line_start;
    char tail[TAIL_BYTES]; /* not NUL-terminated; tail_len bytes */
    size_t tail_len;
} prefixer;

static void keep_tail(prefixer *p, const char *buf, size_t size)
{
    if (size >= TAIL_BYTES) {
        memcpy(p->tail, buf + size - TAIL_BYTES, TAIL_BYTES);
        p->tail_len = TAIL_BYTES;
        return;
    }
    if (p->tail_len + size > TAIL_BYTES) {
        size_t drop = p->tail_len + size - TAIL_BYTES;
        memmove(p->tail, p->tail + drop, p->tail_len - drop);
        p->tail_len -= drop;
    }
    memcpy(p->tail + p->tail_len, buf, size);
    p->tail_len += size;
}

static void write_all(const char *buf, size_t size)
{
    while (size > 0) {
        ssize_t w = write(STDERR_FILENO, buf, size);
        if (w <= 0)
            return;
        buf += w;
        size -= (size_t)w;
    }
}

static void write_kept(prefixer *p, const char *buf, size_t size)
{
    write_all(buf, size);
    keep_tail(p, buf, size);
}

static ssize_t prefixed_write(void *cookie, const char *buf, size_t size)
{
    prefixer *p = cookie;
    size_t done = 0;
    while (done < size) {
        if (p->at_line_start)
            write_kept(p, p->prefix, strlen(p->prefix));
        const char *nl = memchr(buf + done, '\n', size - done);
        size_t len = nl ? (size_t)(nl - (buf + done)) + 1 : size - done;
        write_kept(p, buf + done, len);
        p->at_line_start = nl != NULL;
        done += len;
    }
    return (ssize_t)size;
}

static prefixer err_prefix;

static void quiet_other_ranks(int rank)
{
    if (rank == 0)
        return;
    if (!freopen("/dev/null", "w", stdout))
        fprintf(stderr, "rank %d: warning: cannot silence stdout\n", rank);
    snprintf(err_prefix.prefix, sizeof err_prefix.prefix, "rank %d: ", rank);
    err_prefix.at_line_start = true;
    FILE *f = fopencookie(&err_prefix, "w", (cookie_io_functions_t){.write = prefixed_write});
    if (f) {
        setvbuf(f, NULL, _IOLBF, 0);
        stderr = f;
    }
}

/* Launched by mpirun (Open MPI), or by a PMI/PMIx launcher? */
static bool launched_by_mpi(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return true;
    return false;
}

int dist_init(int *argc, char ***argv, dist *d)
{
    *d = (dist){.rank = 0, .size = 1};
    if (!launched_by_mpi())
        return 0;
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        fprintf(stderr, "error: MPI_Init failed\n");
        return -1;
    }
    d->mpi = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    quiet_other_ranks(d->rank);
    if (d->size == 1)
        return 0;
    hg_status st;
    d->comm = hg_mpi_comm_new(MPI_COMM_WORLD, &st);
    if (!d->comm) {
        fprintf(stderr, "error: hg_mpi_comm_new: %s\n", hg_status_name(st));
        return -1;
    }
    return 0;
}

int dist_max(const dist *d, int v)
{
    int all = v;
    if (d->mpi && d->size > 1 && MPI_Allreduce(&v, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS)
        return v > 1 ? v : 1;
    return all;
}

bool dist_same(const dist *d, uint64_t v)
{
    if (!d->mpi || d->size == 1)
        return true;
    uint64_t root = v;
    int rc = MPI_Bcast(&root, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    return dist_max(d, rc != MPI_SUCCESS || root != v) == 0;
}

/* Rank 0 prints the messages of every other rank that failed. Open MPI ends
 * the job at the first non-zero exit and can drop what the other ranks wrote
 * but mpirun had not yet read, so a rank's own stderr is not enough. */
static void repeat_failed_ranks(const dist *d, int mine)
{
    enum { TAG_STATUS = 7301, TAG_TAIL };
    if (d->rank != 0) {
        char text[TAIL_BYTES + 1] = {0};
        memcpy(text, err_prefix.tail, err_prefix.tail_len);
        if (MPI_Send(&mine, 1, MPI_INT, 0, TAG_STATUS, MPI_COMM_WORLD) == MPI_SUCCESS)
            MPI_Send(text, TAIL_BYTES + 1, MPI_CHAR, 0, TAG_TAIL, MPI_COMM_WORLD);
        return;
    }
    int told = 0;
    for (int r = 1; r < d->size; r++) {
        int status = 0;
        char text[TAIL_BYTES + 1];
        if (MPI_Recv(&status, 1, MPI_INT, r, TAG_STATUS, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS ||
            MPI_Recv(text, TAIL_BYTES + 1, MPI_CHAR, r, TAG_TAIL, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            break;
        text[TAIL_BYTES] = '\0';
        if (status == 0 || !text[0])
            continue;
        if (told++ == 0)
            fprintf(stderr, "error: what the other MPI ranks wrote to stderr:\n");
        /* line by line, indented; the rank's own "rank N: " prefix stays */
        for (char *line = text; *line;) {
            char *end = strchr(line, '\n');
            int len = end ? (int)(end - line) : (int)strlen(line);
            fprintf(stderr, "  %.*s\n", len, line);
            line += len + (end != NULL);
        }
    }
}

int dist_finish(dist *d, int status)
{
    if (!d->mpi)
        return status;
    int mine = status;
    status = dist_max(d, status);
    if (status != 0 && d->size > 1)
        repeat_failed_ranks(d, mine);
    hg_mpi_comm_free(d->comm);
    d->comm = NULL;
    fflush(stdout);
    fflush(stderr);
    MPI_Finalize();
    d->mpi = false;
    /* Only rank 0 exits with the status, for the same reason: a non-zero
     * exit of another rank could end the job before rank 0's report is out.
     * mpirun's exit status is then rank 0's. */
    return d->rank == 0 ? status : 0;
}

void dist_rows(const dist *d, int64_t n, int64_t *start, int64_t *count)
{
    hg_mpi_shard(n, d->size, d->rank, start, count);
}

hg_tensor *dist_sum(hg_ctx *ctx, const dist *d, hg_tensor *x)
{
    return d->comm ? hg_mpi_allreduce_sum(ctx, d->comm, x) : x;
}

hg_status dist_sum_n(hg_ctx *ctx, const dist *d, int n, hg_tensor **ts)
{
    if (!d->comm)
        return hg_ctx_status(ctx);
    /* Flatten, concatenate, one all-reduce, then the pieces back in their
     * shapes: all recorded ops, so the vjp is again one all-reduce. */
    hg_tensor *flat[2 * HG_MLP_MAX_LAYERS * 2];
    bool ok = n >= 1 && n <= (int)(sizeof flat / sizeof flat[0]);
    for (int i = 0; ok && i < n; i++) {
        int64_t len = ts[i] ? hg_tensor_numel(ts[i]) : 0;
        flat[i] = ts[i] ? hg_reshape(ctx, ts[i], 1, &len) : NULL;
        ok = flat[i] != NULL;
    }
    hg_tensor *sum = hg_mpi_allreduce_sum(ctx, d->comm, ok ? hg_concat(ctx, n, flat, 0) : NULL);
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (!sum) {
            ts[i] = NULL;
            continue;
        }
        int64_t len = hg_tensor_numel(ts[i]), shape[HG_MAX_RANK];
        int rank = hg_tensor_rank(ts[i]);
        for (int k = 0; k < rank; k++)
            shape[k] = hg_tensor_dim(ts[i], k);
        ts[i] = hg_reshape(ctx, hg_slice_axis(ctx, sum, 0, at, at + len, 1), rank, shape);
        at += len;
    }
    return sum ? hg_ctx_status(ctx) : (hg_ctx_status(ctx) != HG_OK ? hg_ctx_status(ctx) : HG_ERR_NULL);
}

hg_status dist_sum_inplace(hg_ctx *ctx, const dist *d, int n, hg_tensor *const *ts)
{
    return d->comm ? hg_mpi_allreduce_inplace(ctx, d->comm, n, ts, 0) : HG_OK;
}

hg_status dist_broadcast(hg_ctx *ctx, const dist *d, int n, hg_tensor *const *ts)
{
    return d->comm ? hg_mpi_broadcast_inplace(ctx, d->comm, n, ts, 0) : HG_OK;
}

hg_status dist_agree(hg_ctx *ctx, const dist *d)
{
    return d->comm ? hg_mpi_agree(ctx, d->comm) : hg_ctx_status(ctx);
}

/* Host arrays go through the in-place all-reduce in chunks of 1M elements,
 * so the extra memory stays small whatever n is. */
#define CHUNK (1 << 20)

static hg_status sum_host(hg_ctx *ctx, const dist *d, void *v, int64_t n, hg_dtype dt)
{
    if (!d->comm)
        return hg_ctx_status(ctx);
    size_t es = hg_dtype_size(dt);
    hg_status s = HG_OK;
    for (int64_t at = 0; at < n && s == HG_OK; at += CHUNK) {
        int64_t len = n - at < CHUNK ? n - at : CHUNK;
        hg_mark m = hg_ctx_mark(ctx);
        hg_tensor *t = v ? hg_tensor_from(ctx, dt, 1, &len, (char *)v + (size_t)at * es) : NULL;
        s = hg_mpi_allreduce_inplace(ctx, d->comm, 1, &t, 0);
        if (s == HG_OK)
            memcpy((char *)v + (size_t)at * es, hg_tensor_cdata(t), (size_t)len * es);
        hg_ctx_rewind(ctx, m);
    }
    return s;
}

hg_status dist_sum_f64(hg_ctx *ctx, const dist *d, double *v, int64_t n)
{
    return sum_host(ctx, d, v, n, HG_F64);
}

hg_status dist_sum_f32(hg_ctx *ctx, const dist *d, float *v, int64_t n)
{
    return sum_host(ctx, d, v, n, HG_F32);
}

hg_status dist_gather_f64(hg_ctx *ctx, const dist *d, const double *mine, int64_t n, double *all)
{
    if (!d->comm) {
        memcpy(all, mine, (size_t)n * sizeof *all);
        return HG_OK;
    }
    hg_mark m = hg_ctx_mark(ctx);
    hg_tensor *t = mine ? hg_tensor_from(ctx, HG_F64, 2, (int64_t[]){1, n}, mine) : NULL;
    hg_tensor *g = hg_mpi_allgather(ctx, d->comm, t);
    if (g)
        memcpy(all, hg_tensor_cdata(g), (size_t)(n * d->size) * sizeof *all);
    hg_ctx_rewind(ctx, m);
    return g ? HG_OK : hg_ctx_status(ctx);
}

#else /* one process: no MPI in this build */

int dist_init(int *argc, char ***argv, dist *d)
{
    (void)argc;
    (void)argv;
    *d = (dist){.rank = 0, .size = 1};
    return 0;
}

int dist_finish(dist *d, int status)
{
    (void)d;
    return status;
}

int dist_max(const dist *d, int v)
{
    (void)d;
    return v;
}

bool dist_same(const dist *d, uint64_t v)
{
    (void)d;
    (void)v;
    return true;
}

void dist_rows(const dist *d, int64_t n, int64_t *start, int64_t *count)
{
    (void)d;
    *start = 0;
    *count = n;
}

hg_tensor *dist_sum(hg_ctx *ctx, const dist *d, hg_tensor *x)
{
    (void)ctx;
    (void)d;
    return x;
}

hg_status dist_sum_n(hg_ctx *ctx, const dist *d, int n, hg_tensor **ts)
{
    (void)d;
    (void)n;
    (void)ts;
    return hg_ctx_status(ctx);
}

hg_status dist_sum_inplace(hg_ctx *ctx, const dist *d, int n, hg_tensor *const *ts)
{
    (void)ctx;
    (void)d;
    (void)n;
    (void)ts;
    return HG_OK;
}

hg_status dist_broadcast(hg_ctx *ctx, const dist *d, int n, hg_tensor *const *ts)
{
    return dist_sum_inplace(ctx, d, n, ts);
}

hg_status dist_agree(hg_ctx *ctx, const dist *d)
{
    (void)d;
    return hg_ctx_status(ctx);
}

hg_status dist_sum_f64(hg_ctx *ctx, const dist *d, double *v, int64_t n)
{
    (void)d;
    (void)v;
    (void)n;
    return hg_ctx_status(ctx);
}

hg_status dist_sum_f32(hg_ctx *ctx, const dist *d, float *v, int64_t n)
{
    (void)d;
    (void)v;
    (void)n;
    return hg_ctx_status(ctx);
}

hg_status dist_gather_f64(hg_ctx *ctx, const dist *d, const double *mine, int64_t n, double *all)
{
    (void)ctx;
    (void)d;
    memcpy(all, mine, (size_t)n * sizeof *all);
    return HG_OK;
}

#endif
